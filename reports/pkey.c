/* ES256, EdDSA and SM2 signatures in their JWS encoding (decision 0022). */
#include "pkey.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <stdlib.h>
#include <string.h>

int rpt_pkey_generate(enum rpt_alg alg, EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = NULL;
    int rc = -EIO;
    *out = NULL;
    switch (alg) {
    case RPT_ALG_ES256:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        break;
    case RPT_ALG_EDDSA:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
        break;
    case RPT_ALG_SM2:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
        break;
    }
    if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0)
        goto out;
    if (alg == RPT_ALG_ES256 && EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0)
        goto out;
    if (EVP_PKEY_keygen(ctx, out) <= 0)
        goto out;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int rpt_pkey_alg(EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    if (!key)
        return -1;
    if (EVP_PKEY_is_a(key, "ED25519"))
        return RPT_ALG_EDDSA;
    if (EVP_PKEY_is_a(key, "SM2"))
        return RPT_ALG_SM2;
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1)
        return -1;
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
        return RPT_ALG_ES256;
    if (strcmp(group, "SM2") == 0)
        return RPT_ALG_SM2;
    return -1;
}

/* A digest-sign/verify context for key under alg (SM2: with the ID). The
 * caller frees *mctx and *pctx (the latter is not owned by *mctx). */
static int init_ctx(EVP_PKEY *key, enum rpt_alg alg, int sign, EVP_MD_CTX **mctx,
                    EVP_PKEY_CTX **pctx)
{
    const EVP_MD *md = alg == RPT_ALG_ES256 ? EVP_sha256() : alg == RPT_ALG_SM2 ? EVP_sm3() : NULL;
    *pctx = NULL;
    *mctx = EVP_MD_CTX_new();
    if (!*mctx)
        return -ENOMEM;
    if (alg == RPT_ALG_SM2) {
        *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        if (!*pctx || EVP_PKEY_CTX_set1_id(*pctx, RPT_SM2_ID, RPT_SM2_ID_LEN) <= 0)
            return -EIO;
        EVP_MD_CTX_set_pkey_ctx(*mctx, *pctx);
    }
    int ok = sign ? EVP_DigestSignInit(*mctx, NULL, md, NULL, key)
                  : EVP_DigestVerifyInit(*mctx, NULL, md, NULL, key);
    return ok == 1 ? 0 : -EIO;
}

/* A DER ECDSA-Sig-Value (ECDSA and SM2) into R||S of 32 bytes each. */
static int der_to_raw(const uint8_t *der, size_t dlen, uint8_t *raw)
{
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    int rc = -EIO;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    if (!sig)
        return -EIO;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32)
        rc = 0;
    ECDSA_SIG_free(sig);
    return rc;
}

/* R||S (64 bytes) into a DER ECDSA-Sig-Value in der (cap >= 80). */
static int raw_to_der(const uint8_t *raw, uint8_t *der, size_t *dlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    int rc = -ENOMEM;
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by sig */
    int n = i2d_ECDSA_SIG(sig, NULL);
    if (n <= 0 || n > 80) {
        rc = -EIO;
        goto out;
    }
    unsigned char *p = der;
    *dlen = (size_t)i2d_ECDSA_SIG(sig, &p);
    rc = 0;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return rc;
}

struct rpt_pkey_ctx {
    enum rpt_alg alg;
    int sign;
    EVP_MD_CTX *tpl;    /* initialized once, copied for each use */
    EVP_PKEY_CTX *pctx; /* SM2: the context holding the ID (tpl does not own it) */
};

void rpt_pkey_ctx_free(rpt_pkey_ctx *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->tpl);
    EVP_PKEY_CTX_free(c->pctx);
    free(c);
}

int rpt_pkey_ctx_new(EVP_PKEY *key, enum rpt_alg alg, int sign, rpt_pkey_ctx **out)
{
    rpt_pkey_ctx *c;
    int rc;
    *out = NULL;
    if (rpt_pkey_alg(key) != (int)alg)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->alg = alg;
    c->sign = sign;
    rc = init_ctx(key, alg, sign, &c->tpl, &c->pctx);
    ERR_clear_error();
    if (rc) {
        rpt_pkey_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* A fresh copy of the template (the template itself is never consumed). */
static EVP_MD_CTX *ctx_copy(const rpt_pkey_ctx *c)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (m && EVP_MD_CTX_copy_ex(m, c->tpl) != 1) {
        EVP_MD_CTX_free(m);
        m = NULL;
    }
    return m;
}

int rpt_pkey_ctx_sign(const rpt_pkey_ctx *c, const uint8_t *in, size_t n, uint8_t *sig,
                      size_t *sig_len)
{
    uint8_t der[RPT_SIG_MAX];
    size_t dlen = sizeof(der);
    int rc = -EIO;
    EVP_MD_CTX *m = c->sign ? ctx_copy(c) : NULL;
    if (!m || EVP_DigestSign(m, der, &dlen, in, n) != 1)
        goto out;
    if (c->alg == RPT_ALG_EDDSA) {
        if (dlen != 64)
            goto out;
        memcpy(sig, der, 64);
        rc = 0;
    } else {
        rc = der_to_raw(der, dlen, sig);
    }
    if (!rc)
        *sig_len = 64;
out:
    EVP_MD_CTX_free(m);
    OPENSSL_cleanse(der, sizeof(der));
    ERR_clear_error();
    return rc;
}

int rpt_pkey_ctx_verify(const rpt_pkey_ctx *c, const uint8_t *in, size_t n, const uint8_t *sig,
                        size_t sig_len)
{
    uint8_t der[96];
    size_t dlen = 0;
    int rc;
    if (sig_len != 64)
        return HR_ESIG;
    if (c->alg == RPT_ALG_EDDSA) {
        memcpy(der, sig, 64);
        dlen = 64;
    } else {
        rc = raw_to_der(sig, der, &dlen);
        if (rc)
            return rc;
    }
    EVP_MD_CTX *m = !c->sign ? ctx_copy(c) : NULL;
    if (!m)
        return -EIO;
    rc = EVP_DigestVerify(m, der, dlen, in, n) == 1 ? 0 : HR_ESIG;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return rc;
}

int rpt_pkey_sign(EVP_PKEY *key, enum rpt_alg alg, const uint8_t *in, size_t n, uint8_t *sig,
                  size_t *sig_len)
{
    rpt_pkey_ctx *c = NULL;
    int rc = rpt_pkey_ctx_new(key, alg, 1, &c);
    if (!rc)
        rc = rpt_pkey_ctx_sign(c, in, n, sig, sig_len);
    rpt_pkey_ctx_free(c);
    return rc;
}

int rpt_pkey_verify(EVP_PKEY *key, enum rpt_alg alg, const uint8_t *in, size_t n,
                    const uint8_t *sig, size_t sig_len)
{
    rpt_pkey_ctx *c = NULL;
    int rc = rpt_pkey_ctx_new(key, alg, 0, &c);
    if (!rc)
        rc = rpt_pkey_ctx_verify(c, in, n, sig, sig_len);
    rpt_pkey_ctx_free(c);
    return rc;
}

int rpt_x509_set_sm2_id(X509 *cert)
{
    if (X509_get_signature_nid(cert) != NID_SM2_with_SM3)
        return 0;
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    if (!id || ASN1_OCTET_STRING_set(id, (const unsigned char *)RPT_SM2_ID, RPT_SM2_ID_LEN) != 1) {
        ASN1_OCTET_STRING_free(id);
        return -ENOMEM;
    }
    X509_set0_distinguishing_id(cert, id); /* cert owns id */
    return 0;
}

int rpt_x509_sign(X509 *cert, EVP_PKEY *key)
{
    EVP_MD_CTX *m = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    int alg = rpt_pkey_alg(key), rc;
    if (alg < 0)
        return -EINVAL;
    rc = init_ctx(key, (enum rpt_alg)alg, 1, &m, &pctx);
    if (!rc && X509_sign_ctx(cert, m) <= 0)
        rc = -EIO;
    EVP_MD_CTX_free(m);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
    return rc;
}
