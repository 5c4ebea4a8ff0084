/* libFuzzer target for dicom/dataset.c and dicom/dicom_json.c: the input is
 * parsed as a bare dataset in each of the three uncompressed transfer
 * syntaxes; when it parses, it is converted to DICOM JSON and back, and
 * re-encoded. Aborts when re-encoding a re-parsed encoding is not
 * byte-identical (encode/parse must be inverse on their own output). */
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/dicom_json.h"
#include "dicom/uids.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENC_CAP (4u << 20)

static const char *const k_ts[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, DCM_TS_EXPLICIT_BE};

static void one(const uint8_t *data, size_t size, const char *ts)
{
    dcm_ds *ds = NULL, *again = NULL, *back = NULL;
    json_t *j = NULL;
    hr_buf a, b;
    hr_buf_init(&a, ENC_CAP);
    hr_buf_init(&b, ENC_CAP);
    if (dcm_ds_parse(data, size, ts, 0, &ds))
        goto out;
    int rc = dcm_ds_encode(ds, ts, &a);
    if (rc == 0) {
        if (dcm_ds_parse(a.data, a.len, ts, ENC_CAP, &again))
            abort(); /* our own encoding must parse */
        if (dcm_ds_encode(again, ts, &b) || a.len != b.len || memcmp(a.data, b.data, a.len))
            abort();
    } else if (rc != HR_ETOOBIG) {
        abort();
    }
    if (dcm_json_from_ds(ds, NULL, &j))
        goto out;
    rc = dcm_json_to_ds(j, &back);
    if (rc && rc != HR_ETOOBIG && rc != -ENOMEM)
        abort();
    if (back) {
        hr_buf_reset(&b);
        (void)dcm_ds_encode(back, k_ts[size % 3], &b);
    }
out:
    json_decref(j);
    dcm_ds_free(back);
    dcm_ds_free(again);
    dcm_ds_free(ds);
    hr_buf_free(&a);
    hr_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t t = 0; t < 3; t++)
        one(data, size, k_ts[t]);
    return 0;
}
