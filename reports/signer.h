/* Who signs a report: an interface (decision 0022). The local implementation
 * holds the signer's own key, stored encrypted (PKCS#8) under a signing PIN
 * that is not the login password; a CA signing service over HTTPS can
 * implement the same interface later. Blocking: call on a worker thread (the
 * PIN's KDF is slow work, like a password hash). */
#ifndef RPT_SIGNER_H
#define RPT_SIGNER_H

#include <stddef.h>
#include <stdint.h>

/* JOSE "alg" values huren signs with. SM2 with SM3 has no registered JOSE
 * name: huren writes "SM2" (decision 0022 documents the encoding). */
enum rpt_alg { RPT_ALG_ES256, RPT_ALG_EDDSA, RPT_ALG_SM2 };
#define RPT_SIG_MAX 160 /* bytes of a raw signature, any alg */

const char *rpt_alg_name(enum rpt_alg a); /* "ES256" "EdDSA" "SM2" */
int rpt_alg_parse(const char *s);         /* -1 when unknown; also "es256" "ed25519" "sm2" */

typedef struct rpt_signer rpt_signer;
struct rpt_signer {
    enum rpt_alg alg;
    /* The certificate chain, leaf first: base64 (standard, padded) DER, as
     * in a JWS "x5c" header. Owned by the signer. */
    size_t n_x5c;
    char **x5c;
    /* Signs in (the JWS signing input) into sig (cap >= RPT_SIG_MAX), the
     * JWS encoding of the alg (ES256 and SM2: R||S, 32 bytes each). 0, -EIO. */
    int (*sign)(rpt_signer *s, const uint8_t *in, size_t n, uint8_t *sig, size_t *sig_len);
    void (*free)(rpt_signer *s);
    void *impl;
};

/* Opens the local signer of user from <keys_dir>/<user>/ (key.p8: encrypted
 * PKCS#8 PEM; chain.pem: leaf first) with pin. 0; -EACCES wrong PIN;
 * HR_ENOTFOUND no key for the user; HR_ECERT the key does not match the
 * certificate, or the certificate has expired now; -EIO. *out: free with
 * s->free(s). */
int rpt_local_signer_open(const char *keys_dir, const char *user, const char *pin,
                          rpt_signer **out);

/* Checks pin against the user's key without signing (the same cost and
 * answers as rpt_local_signer_open). */
int rpt_local_pin_check(const char *keys_dir, const char *user, const char *pin);

#endif
