/* Compact JWS (RFC 7515) over a canonical JSON payload (RFC 8785 JCS), with
 * the signer's certificate chain in "x5c" (decision 0022). Pure functions of
 * their inputs (no Redis, no files): tests and `huren verify` call them
 * directly. */
#ifndef RPT_JWS_H
#define RPT_JWS_H

#include "signer.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8785 canonical form of doc into a malloc'd NUL-terminated string
 * (*out, *len). Numbers: integers only (the payload has no fractions);
 * a real gets -EINVAL. 0, -EINVAL, -ENOMEM. */
int rpt_jcs(const json_t *doc, char **out, size_t *len);

/* Signs JCS(payload) with s: protected header {"alg","typ":"JOSE","x5c"}
 * (plus "iat" = signed_s). *compact: malloc'd "h.p.s". 0, -EINVAL, -EIO,
 * -ENOMEM. */
int rpt_jws_sign(rpt_signer *s, const json_t *payload, long long signed_s, char **compact);

/* What verification found; fields valid when rc is 0 or the failure is past
 * the step that fills them. */
typedef struct rpt_verify_result {
    enum rpt_alg alg;
    json_t *payload;          /* decoded payload (caller json_decref), NULL on a parse failure */
    char signer_subject[256]; /* leaf certificate subject, one line */
    long long signed_s;       /* protected header "iat" */
    char why[256];            /* one-line reason of a failure, "" on success */
} rpt_verify_result;

/* Verifies a compact JWS: the signature with the leaf key of x5c, the chain up
 * to an anchor of trust (a PEM bundle file; NULL: the chain is not checked,
 * why says so), each certificate valid at iat, digitalSignature usage. 0;
 * HR_EPARSE (not a JWS, bad base64, bad JSON); HR_ESIG; HR_ECERT. res->why
 * explains a failure in one line. Free res->payload. */
int rpt_jws_verify(const char *compact, size_t len, const char *trust_pem, rpt_verify_result *res);

#endif
