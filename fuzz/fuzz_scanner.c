/* libFuzzer target for dicom/scanner.c: the input is fed in AUTO mode in two
 * chunks split at a position derived from data[0], then finished; the
 * extracted strings must be NUL-terminated within their fields. */
#include "dicom/scanner.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_attrs a;
    size_t split = size ? ((size_t)data[0] * size) / 256 : 0;
    dcm_scanner *s = dcm_scanner_new(DCM_SCAN_AUTO, NULL, &a);
    if (!s)
        return 0;
    int rc = dcm_scanner_feed(s, data, split);
    if (rc == 0)
        rc = dcm_scanner_feed(s, data + split, size - split);
    rc = dcm_scanner_finish(s);
    if (rc == DCM_SCAN_END) {
        /* touch every string so ASan checks termination */
        volatile size_t n = strlen(a.patient_name) + strlen(a.patient_id) +
                            strlen(a.sop_instance_uid) + strlen(a.charset_used) +
                            strlen(a.transfer_syntax_uid) + strlen(a.institution_name);
        (void)n;
    }
    (void)dcm_scanner_error(s);
    dcm_scanner_free(s);
    return 0;
}
