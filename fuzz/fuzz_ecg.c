/* libFuzzer target for dicom/ecg.c: the input is decoded as a whole Part 10
 * waveform object; when it decodes, its JSON is written (bounded buffer) and
 * must parse back with jansson with as many groups as decoded. */
#include "common/hr_buf.h"
#include "dicom/ecg.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_ecg *e = NULL;
    char err[256];
    hr_buf b;
    json_t *j;

    if (dcm_ecg_decode(data, size, &e, err, sizeof err) != 0) {
        if (e || !err[0])
            abort(); /* an error leaves no object and says why */
        return 0;
    }
    hr_buf_init(&b, 64u << 20);
    if (dcm_ecg_to_json(e, &b) == 0) {
        j = json_loadb((const char *)b.data, b.len, 0, NULL);
        if (!j || json_array_size(json_object_get(j, "groups")) != e->n_groups)
            abort(); /* our JSON must be JSON */
        json_decref(j);
    }
    hr_buf_free(&b);
    dcm_ecg_free(e);
    return 0;
}
