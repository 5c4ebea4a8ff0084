/* The regional CA, signer certificates, and imported chains (decision 0023). */
#include "ca.h"
#include "jws.h"
#include "keystore.h"
#include "pkey.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int add_name(X509_NAME *n, const char *field, const char *v)
{
    if (!v || !*v)
        return 0;
    return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)v, -1, -1,
                                      0) == 1
               ? 0
               : -EINVAL;
}

static int set_subject(X509 *c, const rpt_subject *s)
{
    X509_NAME *n = X509_NAME_new();
    int rc = n ? 0 : -ENOMEM;
    if (!rc)
        rc = add_name(n, "CN", s->cn);
    if (!rc)
        rc = add_name(n, "O", s->o);
    if (!rc)
        rc = add_name(n, "OU", s->ou);
    if (!rc)
        rc = add_name(n, "UID", s->uid);
    if (!rc && X509_NAME_entry_count(n) == 0)
        rc = -EINVAL;
    if (!rc && X509_set_subject_name(c, n) != 1)
        rc = -ENOMEM;
    X509_NAME_free(n);
    return rc;
}

/* A random positive 127-bit serial number. */
static int set_serial(X509 *c)
{
    BIGNUM *bn = BN_new();
    int rc = -EIO;
    if (bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)))
        rc = 0;
    BN_free(bn);
    return rc;
}

static int add_ext(X509 *c, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int rc = e && X509_add_ext(c, e, -1) == 1 ? 0 : -EIO;
    X509_EXTENSION_free(e);
    return rc;
}

/* The common part of a CA and a leaf certificate. */
static int build(X509 *c, X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
                 const rpt_subject *subj, long long nb, long long na, int ca)
{
    X509V3_CTX v3;
    int rc = -EIO;
    if (X509_set_version(c, 2) != 1 || X509_set_pubkey(c, pub) != 1)
        return -EIO;
    rc = set_serial(c);
    if (!rc)
        rc = set_subject(c, subj);
    if (rc)
        return rc;
    if (!X509_time_adj_ex(X509_getm_notBefore(c), 0, (long)0, &(time_t){(time_t)nb}) ||
        !X509_time_adj_ex(X509_getm_notAfter(c), 0, (long)0, &(time_t){(time_t)na}))
        return -EIO;
    if (X509_set_issuer_name(c, X509_get_subject_name(issuer ? issuer : c)) != 1)
        return -EIO;
    X509V3_set_ctx(&v3, issuer ? issuer : c, c, NULL, NULL, 0);
    rc = add_ext(c, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (!rc)
        rc = add_ext(c, &v3, NID_key_usage,
                     ca ? "critical,keyCertSign,cRLSign"
                        : "critical,digitalSignature,nonRepudiation");
    if (!rc)
        rc = add_ext(c, &v3, NID_subject_key_identifier, "hash");
    if (!rc)
        rc = add_ext(c, &v3, NID_authority_key_identifier, "keyid:always");
    if (!rc)
        rc = rpt_x509_sign(c, issuer_key);
    if (!rc)
        rc = rpt_x509_set_sm2_id(c);
    return rc;
}

int rpt_ca_make(enum rpt_alg alg, const rpt_subject *subj, int days, EVP_PKEY **key, X509 **cert)
{
    X509 *c = X509_new();
    long long now = (long long)time(NULL);
    int rc = c ? 0 : -ENOMEM;
    *key = NULL;
    *cert = NULL;
    if (days < 1)
        rc = -EINVAL;
    if (!rc)
        rc = rpt_pkey_generate(alg, key);
    if (!rc)
        rc = build(c, NULL, *key, *key, subj, now - 300, now + 86400LL * days, 1);
    if (rc) {
        EVP_PKEY_free(*key);
        *key = NULL;
        X509_free(c);
    } else {
        *cert = c;
    }
    ERR_clear_error();
    return rc;
}

int rpt_cert_issue(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *pub, const rpt_subject *subj,
                   long long not_before, long long not_after, X509 **out)
{
    X509 *c = X509_new();
    int rc = c ? 0 : -ENOMEM;
    *out = NULL;
    if (!rc && not_after <= not_before)
        rc = -EINVAL;
    if (!rc)
        rc = build(c, ca_cert, ca_key, pub, subj, not_before, not_after, 0);
    if (rc)
        X509_free(c);
    else
        *out = c;
    ERR_clear_error();
    return rc;
}

static int ca_file(const char *ca_dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", ca_dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int rpt_ca_init(const char *ca_dir, enum rpt_alg alg, const char *pass, const rpt_subject *subj,
                int days)
{
    char kpath[4096], cpath[4096], tpath[4096];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *one = NULL;
    int rc;
    size_t plen = pass ? strnlen(pass, RPT_CA_PASS_MAX + 1) : 0;
    if (plen < RPT_CA_PASS_MIN || plen > RPT_CA_PASS_MAX)
        return -EINVAL;
    rc = ca_file(ca_dir, "ca.key", kpath, sizeof(kpath));
    if (!rc)
        rc = ca_file(ca_dir, "ca.pem", cpath, sizeof(cpath));
    if (!rc)
        rc = ca_file(ca_dir, "trust.pem", tpath, sizeof(tpath));
    if (rc)
        return rc;
    if (access(cpath, F_OK) == 0)
        return -EEXIST;
    rc = rpt_mkdirs(ca_dir, 0700);
    if (!rc)
        rc = rpt_ca_make(alg, subj, days, &key, &cert);
    if (rc)
        goto out;
    one = sk_X509_new_null();
    if (!one || !sk_X509_push(one, cert)) {
        rc = -ENOMEM;
        goto out;
    }
    /* the key first: a ca.pem without its key would block a new init */
    rc = rpt_key_write(kpath, key, pass);
    if (!rc)
        rc = rpt_certs_write(cpath, one, 0644, 0);
    if (!rc)
        rc = rpt_certs_write(tpath, one, 0644, 1);
out:
    sk_X509_free(one);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int rpt_ca_load(const char *ca_dir, const char *pass, EVP_PKEY **key, X509 **cert)
{
    char kpath[4096], cpath[4096];
    STACK_OF(X509) *certs = NULL;
    int rc;
    *key = NULL;
    *cert = NULL;
    rc = ca_file(ca_dir, "ca.key", kpath, sizeof(kpath));
    if (!rc)
        rc = ca_file(ca_dir, "ca.pem", cpath, sizeof(cpath));
    if (!rc)
        rc = rpt_certs_read(cpath, 1, &certs);
    if (rc)
        return rc == HR_ENOTFOUND ? rc : rc == -ENOMEM ? rc : -EIO;
    rc = rpt_key_read(kpath, pass, key);
    if (rc)
        goto out;
    if (X509_check_private_key(sk_X509_value(certs, 0), *key) != 1) {
        rc = -EIO;
        goto out;
    }
    *cert = sk_X509_shift(certs);
out:
    if (rc) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return rc;
}

/* Keeps an existing file also as <path>.<time> (a hard link: the atomic
 * write that follows replaces path, never the old contents). */
static int keep_old(const char *path, long long now)
{
    char old[4096 + 32];
    if (access(path, F_OK) != 0)
        return 0;
    snprintf(old, sizeof(old), "%s.%lld", path, now);
    return link(path, old) == 0 || errno == EEXIST ? 0 : -errno;
}

/* The user's directory, key.p8 under pin and chain.pem (mode 0600). */
static int store_user(const char *keys_dir, const char *user, EVP_PKEY *key, const char *pin,
                      STACK_OF(X509) * chain)
{
    char dir[4096], kpath[4096], cpath[4096];
    long long now = (long long)time(NULL);
    int rc = rpt_key_path(keys_dir, user, NULL, dir, sizeof(dir));
    if (!rc)
        rc = rpt_key_path(keys_dir, user, "key.p8", kpath, sizeof(kpath));
    if (!rc)
        rc = rpt_key_path(keys_dir, user, "chain.pem", cpath, sizeof(cpath));
    if (!rc)
        rc = rpt_mkdirs(dir, 0700);
    if (!rc && key)
        rc = keep_old(kpath, now);
    if (!rc)
        rc = keep_old(cpath, now);
    if (!rc && key)
        rc = rpt_key_write(kpath, key, pin);
    if (!rc)
        rc = rpt_certs_write(cpath, chain, 0600, 0);
    return rc;
}

int rpt_keygen(const char *keys_dir, const char *ca_dir, const char *ca_pass, const char *user,
               enum rpt_alg alg, const rpt_subject *subj, int days, const char *pin)
{
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca_cert = NULL, *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    long long now = (long long)time(NULL);
    int rc;
    if (!rpt_user_name_valid(user) || !rpt_pin_valid(pin, NULL, 0) || days < 1)
        return -EINVAL;
    rc = rpt_ca_load(ca_dir, ca_pass, &ca_key, &ca_cert);
    if (!rc)
        rc = rpt_pkey_generate(alg, &key);
    if (!rc)
        rc = rpt_cert_issue(ca_cert, ca_key, key, subj, now - 300, now + 86400LL * days, &leaf);
    if (rc)
        goto out;
    chain = sk_X509_new_null();
    if (!chain || !sk_X509_push(chain, leaf)) {
        rc = -ENOMEM;
        goto out;
    }
    leaf = NULL;
    if (!sk_X509_push(chain, ca_cert)) {
        rc = -ENOMEM;
        goto out;
    }
    ca_cert = NULL;
    rc = store_user(keys_dir, user, key, pin, chain);
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

__attribute__((format(printf, 4, 5))) static int why_fail(char *why, size_t cap, int rc,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && cap)
        vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int self_signed(X509 *c)
{
    return X509_check_issued(c, c) == X509_V_OK;
}

/* 1 when the certificate's DER is in certs. */
static int contains(STACK_OF(X509) * certs, X509 *c)
{
    for (int i = 0; certs && i < sk_X509_num(certs); i++)
        if (X509_cmp(sk_X509_value(certs, i), c) == 0)
            return 1;
    return 0;
}

/* The chain (leaf first) verifies now up to the anchors of trust plus roots. */
static int chain_ok(STACK_OF(X509) * chain, STACK_OF(X509) * trust, STACK_OF(X509) * roots,
                    char *why, size_t cap)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int rc = -ENOMEM;
    if (!store || !ctx || !untrusted)
        goto out;
    for (int i = 0; trust && i < sk_X509_num(trust); i++)
        X509_STORE_add_cert(store, sk_X509_value(trust, i));
    for (int i = 0; i < sk_X509_num(roots); i++)
        X509_STORE_add_cert(store, sk_X509_value(roots, i));
    for (int i = 1; i < sk_X509_num(chain); i++)
        sk_X509_push(untrusted, sk_X509_value(chain, i));
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1)
        goto out;
    if (X509_verify_cert(ctx) == 1) {
        rc = 0;
    } else {
        rc = why_fail(why, cap, HR_ECERT, "the chain does not verify: %s",
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
out:
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

int rpt_cert_import(const char *keys_dir, const char *trust_pem, const char *user,
                    const char *chain_file, const char *key_file, const char *pin, char *why,
                    size_t cap)
{
    STACK_OF(X509) *in = NULL, *chain = sk_X509_new_null(), *roots = sk_X509_new_null(),
                   *trust = NULL;
    EVP_PKEY *key = NULL;
    char kpath[4096];
    int rc;
    if (why && cap)
        why[0] = '\0';
    if (!chain || !roots) {
        rc = -ENOMEM;
        goto out;
    }
    if (!rpt_user_name_valid(user)) {
        rc = why_fail(why, cap, -EINVAL, "invalid user name");
        goto out;
    }
    rc = rpt_certs_read(chain_file, RPT_X5C_MAX + 1, &in);
    if (rc) {
        rc = why_fail(why, cap, rc, "%s: %s", chain_file,
                      rc == HR_ETOOBIG ? "too many certificates" : "no readable PEM certificate");
        goto out;
    }
    rc = rpt_certs_read(trust_pem, 1000, &trust);
    if (rc && rc != HR_ENOTFOUND) {
        rc = why_fail(why, cap, rc, "%s: unreadable trust anchors", trust_pem);
        goto out;
    }
    for (int i = 0; i < sk_X509_num(in); i++) {
        X509 *c = sk_X509_value(in, i);
        rpt_x509_set_sm2_id(c);
        int ok = i > 0 && self_signed(c) ? sk_X509_push(roots, c) : sk_X509_push(chain, c);
        if (!ok) {
            rc = -ENOMEM;
            goto out;
        }
    }
    X509 *leaf = sk_X509_value(chain, 0);
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0 ||
        X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        rc = why_fail(why, cap, HR_ECERT, "the leaf certificate is not valid now");
        goto out;
    }
    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
        !(X509_get_key_usage(leaf) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
        rc = why_fail(why, cap, HR_ECERT, "the leaf's key usage does not allow signing");
        goto out;
    }
    if (rpt_pkey_alg(X509_get0_pubkey(leaf)) < 0) {
        rc = why_fail(why, cap, HR_ECERT, "the leaf's key is not P-256, Ed25519 or SM2");
        goto out;
    }
    rc = key_file ? rpt_key_read(key_file, pin, &key)
                  : rpt_key_path(keys_dir, user, "key.p8", kpath, sizeof(kpath));
    if (!rc && !key_file)
        rc = rpt_key_read(kpath, pin, &key);
    if (rc) {
        rc = why_fail(why, cap, rc, "%s",
                      rc == -EACCES        ? "the PIN does not open the key"
                      : rc == HR_ENOTFOUND ? "no key: give --key"
                                           : "the key is not an encrypted PKCS#8 PEM");
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        rc = why_fail(why, cap, HR_ECERT, "the key does not match the leaf certificate");
        goto out;
    }
    rc = chain_ok(chain, trust, roots, why, cap);
    if (rc)
        goto out;
    rc = store_user(keys_dir, user, key_file ? key : NULL, pin, chain);
    if (rc) {
        why_fail(why, cap, rc, "cannot write the user's files: %s", strerror(-rc));
        goto out;
    }
    /* the roots the chain needs, once */
    STACK_OF(X509) *fresh = sk_X509_new_null();
    for (int i = 0; fresh && i < sk_X509_num(roots); i++)
        if (!contains(trust, sk_X509_value(roots, i)))
            sk_X509_push(fresh, sk_X509_value(roots, i));
    rc = !fresh ? -ENOMEM : sk_X509_num(fresh) ? rpt_certs_write(trust_pem, fresh, 0644, 1) : 0;
    sk_X509_free(fresh);
    if (rc)
        why_fail(why, cap, rc, "cannot append to %s", trust_pem);
out:
    sk_X509_free(chain);
    sk_X509_free(roots);
    sk_X509_pop_free(in, X509_free);
    sk_X509_pop_free(trust, X509_free);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}
