/* Caches of rpt_jws_verify (internal to reports/; decision 0023): parsed
 * x5c certificates with a prepared verifying context, trust stores per
 * file, and chains already verified. A hospital verifies many reports of
 * few signers: without them every verification would re-read the trust
 * file and re-verify the same certificate signatures. All thread-safe;
 * bounded (least recently used entries are dropped). */
#ifndef RPT_JWS_CACHE_H
#define RPT_JWS_CACHE_H

#include "pkey.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* A certificate of x5c, shared: read-only for its holders. */
typedef struct rpt__cert {
    X509 *cert;
    int alg;            /* rpt_pkey_alg of its key, -1 for another key */
    rpt_pkey_ctx *vctx; /* verifying context of its key (NULL when alg < 0) */
    char subject[256];  /* one line, UTF-8 */
    int refs;           /* the cache's and holders' (under the cache lock) */
    uint8_t id[32];     /* SHA-256 of its base64 text */
    unsigned long long used;
} rpt__cert;

/* The certificate of the standard base64 DER b64[0..n) (at most
 * RPT_X5C_CERT_MAX bytes of DER), parsed once. A reference: release with
 * rpt__cert_put. NULL when it is not one whole DER certificate (or out of
 * memory). */
rpt__cert *rpt__cert_get(const char *b64, size_t n);
void rpt__cert_put(rpt__cert *c);

/* The anchors of the PEM file path as a store (a reference: X509_STORE_free)
 * and *gen, a number that changes whenever the file is reloaded (it is, when
 * its inode, size or modification time change). NULL when unreadable. */
X509_STORE *rpt__store_get(const char *path, unsigned long long *gen);

/* Chains verified: id (SHA-256 of the store's gen and the x5c texts) with
 * the window [nb, na] in which every certificate of the verified path,
 * anchor included, is valid. 1 when id is known and t in its window. */
int rpt__chain_known(const uint8_t id[32], long long t);
void rpt__chain_add(const uint8_t id[32], long long nb, long long na);

/* SHA-256 of n bytes into md (a prefetched digest; thread-safe). */
void rpt__sha256(const void *p, size_t n, uint8_t md[32]);

#endif
