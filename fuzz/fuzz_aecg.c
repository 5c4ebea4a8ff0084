/* libFuzzer target for dicom/aecg.c: the input is read as one aECG document;
 * a refusal leaves no object and says why; an accepted one has equally long
 * leads within the bounds, and the DICOM object built from it (the shim)
 * either is built or fails with one of its documented codes. */
#include "common/hr_err.h"
#include "dicom/aecg.h"
#include "dicom/dcmtk_shim.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    if (dcm_aecg_parse(data, size, &e, why, sizeof why) != 0) {
        if (e || !why[0])
            abort();
        return 0;
    }
    if (e->n_leads == 0 || e->n_leads > DCM_AECG_LEADS_MAX || e->n_samples == 0 ||
        e->n_samples > DCM_AECG_SAMPLES_MAX)
        abort();
    for (size_t i = 0; i < e->n_leads; i++)
        if (e->leads[i].n != e->n_samples || !(e->leads[i].scale_uv > 0))
            abort();
    dcm_ecg_ids ids = {"2.25.1", "2.25.2", "2.25.3", "fuzz", "20260101000000"};
    uint8_t *obj = NULL;
    size_t len = 0;
    const char *cls = NULL;
    int lossy = 0;
    int rc = dcm_shim_ecg_encode(e, &ids, &obj, &len, &cls, &lossy);
    if (rc != 0 && rc != HR_EPARSE && rc != -ENOMEM)
        abort();
    free(obj);
    dcm_aecg_free(e);
    return 0;
}
