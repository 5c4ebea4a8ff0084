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

/* Bounds of what rpt_jws_verify accepts (larger input is refused unread). */
#define RPT_JWS_MAX      (16u << 20) /* bytes of a compact JWS */
#define RPT_X5C_MAX      8           /* certificates in x5c */
#define RPT_X5C_CERT_MAX (16u << 10) /* bytes of one DER certificate */

/* What verification found. Each check is 1 passed, 0 failed, -1 not done
 * (not reached, or chain: no trust anchors given). The other fields are set
 * once the step that fills them is reached. */
typedef struct rpt_verify_result {
    enum rpt_alg alg;
    json_t *payload;          /* decoded payload (caller json_decref), NULL before the
                                 payload parsed; trust it only when rc is 0 */
    char signer_subject[256]; /* leaf certificate subject, one line, UTF-8 */
    long long signed_s;       /* protected header "iat" */
    int sig;                  /* the signature matches header and payload with the leaf key */
    int valid;                /* every x5c certificate valid at iat, leaf usage allows signing */
    int chain;                /* x5c chains to a trust anchor at iat */
    char why[512];            /* one line ('\n'-separated) per failure reason, "" on success */
    char why_valid[256];      /* the lines of why about validity at iat and key usage */
    char why_chain[256];      /* the lines of why about the chain to the anchors */
} rpt_verify_result;

/* Verifies a compact JWS: the signature with the leaf key of x5c (alg must be
 * the leaf key's: ES256 P-256, EdDSA Ed25519, SM2 SM2; "none" and others are
 * refused), each certificate valid at iat, the leaf's keyUsage (when present)
 * digitalSignature or nonRepudiation, and the chain up to an anchor of trust
 * (a PEM bundle file; NULL: not checked, res->chain is -1 and rc may be 0).
 * All checks run even after one fails; rc is the first failure: HR_ETOOBIG
 * (over the bounds above), HR_EPARSE (not a JWS, bad base64, bad JSON),
 * HR_ESIG, HR_ECERT, -EIO (trust file unreadable), -ENOMEM; 0 when all pass.
 * Free res->payload (also on failure). Blocking (CPU, reads trust_pem). */
int rpt_jws_verify(const char *compact, size_t len, const char *trust_pem, rpt_verify_result *res);

/* base64url without padding (RFC 7515 section 2) of in[0..n) into out (cap
 * >= 4 * ((n + 2) / 3) + 1), NUL-terminated; returns its length. */
size_t rpt_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Decodes n characters of canonical base64url (no padding, no other
 * characters, zero unused bits) into out (cap >= 3 * (n / 4) + 2). 0 and
 * *olen, or HR_EPARSE. */
int rpt_b64url_decode(const char *in, size_t n, uint8_t *out, size_t *olen);

#endif
