/* libFuzzer target for dicom/dimse.c: parse, re-encode, parse again. */
#include "dicom/dimse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_command c, back;
    hr_buf out;

    if (dcm_command_parse(data, size, &c) != 0)
        return 0;
    hr_buf_init(&out, DCM_CMD_MAX_LEN + 1024);
    if (dcm_command_encode(&c, &out) != 0)
        abort();
    if (out.len < 12 ||
        out.data[8] + (out.data[9] << 8) + (out.data[10] << 16) + ((uint32_t)out.data[11] << 24) !=
            out.len - 12)
        abort();
    if (dcm_command_parse(out.data, out.len, &back) != 0 || memcmp(&c, &back, sizeof(c)) != 0)
        abort();
    hr_buf_free(&out);
    return 0;
}
