/* libFuzzer target for reports/jws.c and reports/jcs.c: the input is a
 * compact JWS for rpt_jws_verify (no trust anchors: parsing, base64, JSON,
 * x5c and the signature check); a payload that decodes is put through
 * rpt_jcs, and the canonical text must decode to an equal document and be
 * its own canonical form (JCS is idempotent). Aborts otherwise. */
#include "common/hr_err.h"
#include "reports/jws.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpt_verify_result r;
    char *c1 = NULL, *c2 = NULL;
    size_t l1 = 0, l2 = 0;
    int rc = rpt_jws_verify((const char *)data, size, NULL, &r);
    if (rc == 0 && r.sig != 1)
        abort(); /* success without a verified signature */
    if (r.payload && rpt_jcs(r.payload, &c1, &l1) == 0) {
        json_t *again = json_loadb(c1, l1, JSON_ALLOW_NUL, NULL);
        if (!again || !json_equal(again, r.payload) || rpt_jcs(again, &c2, &l2) != 0 || l1 != l2 ||
            memcmp(c1, c2, l1) != 0)
            abort();
        json_decref(again);
    }
    free(c1);
    free(c2);
    json_decref(r.payload);
    return 0;
}
