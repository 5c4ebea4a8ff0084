/* The signer interface and its local-key implementation (decision 0022). */
#include "signer.h"
#include "jws.h"
#include "keystore.h"
#include "pkey.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *rpt_alg_name(enum rpt_alg a)
{
    switch (a) {
    case RPT_ALG_ES256:
        return "ES256";
    case RPT_ALG_EDDSA:
        return "EdDSA";
    case RPT_ALG_SM2:
        return "SM2";
    }
    return "?";
}

int rpt_alg_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "ES256") == 0 || strcmp(s, "es256") == 0)
        return RPT_ALG_ES256;
    if (strcmp(s, "EdDSA") == 0 || strcmp(s, "eddsa") == 0 || strcmp(s, "ed25519") == 0)
        return RPT_ALG_EDDSA;
    if (strcmp(s, "SM2") == 0 || strcmp(s, "sm2") == 0)
        return RPT_ALG_SM2;
    return -1;
}

typedef struct key_impl {
    EVP_PKEY *key;
    rpt_pkey_ctx *ctx;
} key_impl;

static int key_sign(rpt_signer *s, const uint8_t *in, size_t n, uint8_t *sig, size_t *sig_len)
{
    key_impl *k = s->impl;
    return rpt_pkey_ctx_sign(k->ctx, in, n, sig, sig_len) ? -EIO : 0;
}

static void key_free(rpt_signer *s)
{
    if (!s)
        return;
    key_impl *k = s->impl;
    if (k) {
        rpt_pkey_ctx_free(k->ctx);
        EVP_PKEY_free(k->key);
    }
    free(k);
    for (size_t i = 0; i < s->n_x5c; i++)
        free(s->x5c[i]);
    free(s->x5c);
    free(s);
}

/* Standard padded base64 of a certificate's DER (malloc'd), NULL on failure. */
static char *cert_b64(X509 *c)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    char *out = n > 0 ? malloc((size_t)(n + 2) / 3 * 4 + 1) : NULL;
    if (out)
        EVP_EncodeBlock((unsigned char *)out, der, n);
    OPENSSL_free(der);
    return out;
}

int rpt_pkey_signer_new(EVP_PKEY *key, STACK_OF(X509) * chain, rpt_signer **out)
{
    int n = sk_X509_num(chain), alg = rpt_pkey_alg(key), rc = -ENOMEM;
    rpt_signer *s = NULL;
    *out = NULL;
    if (alg < 0)
        return HR_EUNSUP;
    if (n < 1 || n > RPT_X5C_MAX || X509_check_private_key(sk_X509_value(chain, 0), key) != 1) {
        ERR_clear_error();
        return HR_ECERT;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->alg = (enum rpt_alg)alg;
    s->sign = key_sign;
    s->free = key_free;
    s->impl = calloc(1, sizeof(key_impl));
    s->x5c = calloc((size_t)n, sizeof(char *));
    if (!s->impl || !s->x5c)
        goto out;
    for (int i = 0; i < n; i++) {
        s->x5c[i] = cert_b64(sk_X509_value(chain, i));
        if (!s->x5c[i])
            goto out;
        s->n_x5c++;
    }
    if (EVP_PKEY_up_ref(key) != 1)
        goto out;
    ((key_impl *)s->impl)->key = key;
    rc = rpt_pkey_ctx_new(key, s->alg, 1, &((key_impl *)s->impl)->ctx);
    if (rc)
        goto out;
    *out = s;
    s = NULL;
    rc = 0;
out:
    key_free(s);
    return rc;
}

int rpt_local_signer_open(const char *keys_dir, const char *user, const char *pin, rpt_signer **out)
{
    char kpath[4096], cpath[4096];
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc;
    *out = NULL;
    if (!rpt_pin_valid(pin, NULL, 0))
        return -EACCES;
    rc = rpt_key_path(keys_dir, user, "key.p8", kpath, sizeof(kpath));
    if (!rc)
        rc = rpt_key_path(keys_dir, user, "chain.pem", cpath, sizeof(cpath));
    if (rc)
        return rc == -EINVAL ? HR_ENOTFOUND : rc;
    rc = rpt_key_read(kpath, pin, &key);
    if (rc)
        goto out;
    rc = rpt_certs_read(cpath, RPT_X5C_MAX, &chain);
    if (rc) {
        rc = rc == HR_ENOTFOUND ? HR_ENOTFOUND : rc == -EIO || rc == -ENOMEM ? rc : HR_ECERT;
        goto out;
    }
    X509 *leaf = sk_X509_value(chain, 0);
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0 ||
        X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        rc = HR_ECERT;
        goto out;
    }
    rc = rpt_pkey_signer_new(key, chain, out);
out:
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    return rc;
}

int rpt_local_pin_check(const char *keys_dir, const char *user, const char *pin)
{
    rpt_signer *s = NULL;
    int rc = rpt_local_signer_open(keys_dir, user, pin, &s);
    if (s)
        s->free(s);
    return rc;
}
