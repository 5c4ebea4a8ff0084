/* Compact JWS with x5c: signing and verification (decision 0022). */
#include "jws.h"
#include "jws_cache.h"
#include "pkey.h"
#include "../common/hr_buf.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER_B64_MAX (256u << 10) /* 8 certificates of 16 KiB in base64, twice */
#define SIG_B64_MAX    ((RPT_SIG_MAX * 4 + 2) / 3)

/* ---- base64 ---- */

size_t rpt_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[len] = '\0';
    return (size_t)len;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int rpt_b64url_decode(const char *in, size_t n, uint8_t *out, size_t *olen)
{
    size_t rem = n % 4, pad = rem ? 4 - rem : 0;
    int rc = HR_EPARSE;
    if (rem == 1 || n > (size_t)RPT_JWS_MAX)
        return HR_EPARSE;
    for (size_t i = 0; i < n; i++)
        if (b64url_value(in[i]) < 0)
            return HR_EPARSE;
    /* unused low bits of the last character must be zero (one encoding per
     * byte string: a changed character always changes the bytes) */
    if (rem == 2 && (b64url_value(in[n - 1]) & 0x0F))
        return HR_EPARSE;
    if (rem == 3 && (b64url_value(in[n - 1]) & 0x03))
        return HR_EPARSE;
    char *tmp = malloc(n + pad + 1);
    if (!tmp)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    memset(tmp + n, '=', pad);
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)(n + pad));
    if (len >= 0 && (size_t)len >= pad) {
        *olen = (size_t)len - pad;
        rc = 0;
    }
    free(tmp);
    return rc;
}

/* ---- signing ---- */

/* The protected header in its JCS form, written directly (it is the same
 * signature after signature but for iat): the members sort as alg < iat <
 * typ < x5c, and base64 text needs no escaping (checked). */
static int header_jcs(const rpt_signer *s, long long iat, hr_buf *b)
{
    char head[96];
    int n = snprintf(head, sizeof(head), "{\"alg\":\"%s\",\"iat\":%lld,\"typ\":\"JOSE\",\"x5c\":[",
                     rpt_alg_name(s->alg), iat);
    int rc = hr_buf_append(b, head, (size_t)n);
    for (size_t i = 0; !rc && i < s->n_x5c; i++) {
        size_t len = strlen(s->x5c[i]);
        if (len == 0 || strspn(s->x5c[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789+/=") != len)
            return -EINVAL;
        rc = hr_buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
        if (!rc)
            rc = hr_buf_append(b, s->x5c[i], len);
        if (!rc)
            rc = hr_buf_append(b, "\"", 1);
    }
    if (!rc)
        rc = hr_buf_append(b, "]}", 2);
    return rc;
}

int rpt_jws_sign(rpt_signer *s, const json_t *payload, long long signed_s, char **compact)
{
    char *pjcs = NULL, *out = NULL, *hjcs;
    size_t hlen, plen, sig_len = 0;
    uint8_t sig[RPT_SIG_MAX];
    hr_buf hb;
    int rc;
    *compact = NULL;
    if (!s || !s->sign || s->n_x5c == 0 || s->n_x5c > RPT_X5C_MAX || !json_is_object(payload) ||
        signed_s < 0 || signed_s > 9007199254740991LL)
        return -EINVAL;
    hr_buf_init(&hb, HEADER_B64_MAX);
    rc = header_jcs(s, signed_s, &hb);
    if (!rc)
        rc = rpt_jcs(payload, &pjcs, &plen);
    if (rc)
        goto out;
    hjcs = (char *)hb.data;
    hlen = hb.len;
    size_t cap = (hlen + 2) / 3 * 4 + 1 + (plen + 2) / 3 * 4 + 1 + SIG_B64_MAX + 8;
    out = malloc(cap);
    if (!out) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n = rpt_b64url_encode((const uint8_t *)hjcs, hlen, out);
    out[n++] = '.';
    n += rpt_b64url_encode((const uint8_t *)pjcs, plen, out + n);
    rc = s->sign(s, (const uint8_t *)out, n, sig, &sig_len);
    if (rc)
        goto out;
    if (sig_len == 0 || sig_len > RPT_SIG_MAX) {
        rc = -EIO;
        goto out;
    }
    out[n++] = '.';
    rpt_b64url_encode(sig, sig_len, out + n);
    *compact = out;
    out = NULL;
out:
    hr_buf_free(&hb);
    free(pjcs);
    free(out);
    return rc == HR_ETOOBIG ? -EINVAL : rc;
}

/* ---- verification ---- */

/* Appends one line to buf (cap). */
static void add_line(char *buf, size_t cap, const char *line)
{
    size_t used = strlen(buf);
    if (used && used + 1 < cap)
        buf[used++] = '\n';
    if (used + 1 < cap)
        snprintf(buf + used, cap - used, "%s", line);
}

/* One reason of a failure: a line of res->why, and of why_valid (cat 1) or
 * why_chain (cat 2); keeps the first code in *rc. */
__attribute__((format(printf, 5, 6))) static void fail(rpt_verify_result *res, int *rc, int cat,
                                                       int code, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (!*rc)
        *rc = code;
    add_line(res->why, sizeof(res->why), line);
    if (cat == 1)
        add_line(res->why_valid, sizeof(res->why_valid), line);
    else if (cat == 2)
        add_line(res->why_chain, sizeof(res->why_chain), line);
}

static const char *key_kind(EVP_PKEY *k)
{
    switch (rpt_pkey_alg(k)) {
    case RPT_ALG_ES256:
        return "an EC P-256 key";
    case RPT_ALG_EDDSA:
        return "an Ed25519 key";
    case RPT_ALG_SM2:
        return "an SM2 key";
    }
    return EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "an unknown key";
}

/* The certificates of header "x5c": *chain (leaf first; its own references)
 * and the cache entries in ents (cap RPT_X5C_MAX; release them), *id the
 * SHA-256 of their texts after gen (filled by check_chain). */
static int parse_x5c(json_t *x5c, STACK_OF(X509) * *chain, rpt__cert **ents, rpt_verify_result *res,
                     int *rc)
{
    size_t n = json_array_size(x5c);
    if (!json_is_array(x5c) || n == 0) {
        fail(res, rc, 0, HR_ECERT, "no signer certificate (header \"x5c\" missing or empty)");
        return -1;
    }
    if (n > RPT_X5C_MAX) {
        fail(res, rc, 0, HR_ETOOBIG, "more than %d certificates in \"x5c\"", RPT_X5C_MAX);
        return -1;
    }
    *chain = sk_X509_new_null();
    if (!*chain) {
        fail(res, rc, 0, -ENOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(x5c, i);
        ents[i] =
            json_is_string(v) ? rpt__cert_get(json_string_value(v), json_string_length(v)) : NULL;
        if (!ents[i] || X509_up_ref(ents[i]->cert) != 1) {
            fail(res, rc, 0, HR_ECERT, "certificate %zu of \"x5c\" is not a DER certificate",
                 i + 1);
            return -1;
        }
        if (!sk_X509_push(*chain, ents[i]->cert)) {
            X509_free(ents[i]->cert);
            fail(res, rc, 0, -ENOMEM, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Validity at t of every certificate, and the leaf's key usage. */
static void check_validity(STACK_OF(X509) * chain, time_t t, rpt_verify_result *res, int *rc)
{
    res->valid = 1;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        const char *who = i == 0 ? "certificate" : "issuer certificate";
        if (X509_cmp_time(X509_get0_notAfter(c), &t) < 0) {
            fail(res, rc, 1, HR_ECERT, "%s expired at signing time", who);
            res->valid = 0;
        } else if (X509_cmp_time(X509_get0_notBefore(c), &t) > 0) {
            fail(res, rc, 1, HR_ECERT, "%s not yet valid at signing time", who);
            res->valid = 0;
        }
    }
    X509 *leaf = sk_X509_value(chain, 0);
    if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
        !(X509_get_key_usage(leaf) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
        fail(res, rc, 1, HR_ECERT, "certificate key usage does not allow signing");
        res->valid = 0;
    }
}

static const char *chain_error(int err)
{
    switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "certificate not issued by a trusted CA";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return "certificate signature does not verify (the certificate was altered)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "certificate chain: a certificate expired at signing time";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate chain: a certificate not yet valid at signing time";
    case X509_V_ERR_INVALID_CA:
        return "certificate chain: an issuer is not a CA";
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        return "certificate chain: an issuer may not sign certificates";
    }
    return NULL;
}

static long long asn1_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    return t && ASN1_TIME_to_tm(t, &tm) == 1 ? (long long)timegm(&tm) : -1;
}

/* The chain of x5c up to an anchor of trust_pem, at time t; a chain found
 * good before (same texts, same trust file) is not verified again while t
 * is within the validity of every certificate of its path. */
static void check_chain(STACK_OF(X509) * chain, json_t *x5c, const char *trust_pem, time_t t,
                        rpt_verify_result *res, int *rc)
{
    unsigned long long gen = 0;
    X509_STORE *store = rpt__store_get(trust_pem, &gen);
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    uint8_t id[32];
    res->chain = 0;
    if (!store) {
        fail(res, rc, 2, -EIO, "cannot read trust anchors from %s", trust_pem);
        goto out;
    }
    /* id: SHA-256 of gen and the length-prefixed x5c texts */
    size_t total = sizeof(gen);
    for (size_t i = 0; i < json_array_size(x5c); i++)
        total += sizeof(uint64_t) + json_string_length(json_array_get(x5c, i));
    uint8_t *idin = malloc(total);
    int ok = idin != NULL;
    if (ok) {
        size_t at = 0;
        memcpy(idin, &gen, sizeof(gen));
        at += sizeof(gen);
        for (size_t i = 0; i < json_array_size(x5c); i++) {
            uint64_t n = json_string_length(json_array_get(x5c, i));
            memcpy(idin + at, &n, sizeof(n));
            memcpy(idin + at + sizeof(n), json_string_value(json_array_get(x5c, i)), n);
            at += sizeof(n) + n;
        }
        rpt__sha256(idin, total, id);
        free(idin);
    }
    if (ok && rpt__chain_known(id, (long long)t)) {
        res->chain = 1;
        goto out;
    }
    ctx = X509_STORE_CTX_new();
    untrusted = sk_X509_new_null();
    if (!ctx || !untrusted) {
        fail(res, rc, 2, -ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 1; i < sk_X509_num(chain); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(chain, i))) {
            fail(res, rc, 2, -ENOMEM, "out of memory");
            goto out;
        }
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1) {
        fail(res, rc, 2, -ENOMEM, "out of memory");
        goto out;
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), t);
    if (X509_verify_cert(ctx) == 1) {
        res->chain = 1;
        STACK_OF(X509) *path = X509_STORE_CTX_get0_chain(ctx);
        long long nb = LLONG_MIN, na = LLONG_MAX;
        for (int i = 0; i < sk_X509_num(path); i++) {
            long long b = asn1_epoch(X509_get0_notBefore(sk_X509_value(path, i)));
            long long a = asn1_epoch(X509_get0_notAfter(sk_X509_value(path, i)));
            nb = b > nb ? b : nb;
            na = a < na ? a : na;
        }
        if (ok && nb >= 0 && na >= nb)
            rpt__chain_add(id, nb, na);
        goto out;
    }
    int err = X509_STORE_CTX_get_error(ctx);
    const char *why = chain_error(err);
    if (why)
        fail(res, rc, 2, HR_ECERT, "%s", why);
    else
        fail(res, rc, 2, HR_ECERT, "certificate chain: %s", X509_verify_cert_error_string(err));
out:
    sk_X509_free(untrusted); /* the certificates belong to chain */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
}

/* Decodes one base64url part into a malloc'd buffer (with a NUL after). */
static int decode_part(const char *p, size_t n, uint8_t **out, size_t *olen)
{
    *out = malloc(n / 4 * 3 + 3);
    if (!*out)
        return -ENOMEM;
    int rc = rpt_b64url_decode(p, n, *out, olen);
    if (rc) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[*olen] = '\0';
    return 0;
}

int rpt_jws_verify(const char *compact, size_t len, const char *trust_pem, rpt_verify_result *res)
{
    uint8_t *hraw = NULL, *praw = NULL, sig[RPT_SIG_MAX + 4];
    size_t hlen = 0, plen = 0, slen = 0;
    json_t *hdr = NULL;
    STACK_OF(X509) *chain = NULL;
    rpt__cert *ents[RPT_X5C_MAX] = {NULL};
    int rc = 0;
    memset(res, 0, sizeof(*res));
    res->sig = res->valid = res->chain = -1;
    if (len > RPT_JWS_MAX) {
        fail(res, &rc, 0, HR_ETOOBIG, "JWS larger than %u MiB", RPT_JWS_MAX >> 20);
        goto out;
    }
    /* a compact JWS: three base64url parts, two dots, nothing else */
    const char *d1 = memchr(compact, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - compact)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - compact))) {
        fail(res, &rc, 0, HR_EPARSE, "not a compact JWS (three parts separated by dots)");
        goto out;
    }
    size_t hn = (size_t)(d1 - compact), pn = (size_t)(d2 - d1 - 1),
           sn = len - (size_t)(d2 + 1 - compact);
    if (hn > HEADER_B64_MAX) {
        fail(res, &rc, 0, HR_ETOOBIG, "JWS header larger than %u KiB", HEADER_B64_MAX >> 10);
        goto out;
    }
    if (sn > SIG_B64_MAX || rpt_b64url_decode(d2 + 1, sn, sig, &slen) != 0) {
        fail(res, &rc, 0, HR_EPARSE, "JWS signature is not base64url of at most %d bytes",
             RPT_SIG_MAX);
        goto out;
    }
    if (decode_part(compact, hn, &hraw, &hlen) != 0 || decode_part(d1 + 1, pn, &praw, &plen)) {
        fail(res, &rc, 0, HR_EPARSE, "JWS header or payload is not base64url");
        goto out;
    }
    json_error_t je;
    hdr = json_loadb((const char *)hraw, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(hdr)) {
        fail(res, &rc, 0, HR_EPARSE, "JWS header is not a JSON object");
        goto out;
    }
    res->payload = json_loadb((const char *)praw, plen, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(res->payload)) {
        json_decref(res->payload);
        res->payload = NULL;
        fail(res, &rc, 0, HR_EPARSE, "JWS payload is not a JSON object");
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        fail(res, &rc, 0, HR_EPARSE, "JWS header has critical extensions (\"crit\") huren ignores");
        goto out;
    }
    json_t *jalg = json_object_get(hdr, "alg"), *jiat = json_object_get(hdr, "iat");
    const char *alg = json_string_value(jalg);
    int a = -1;
    for (int i = RPT_ALG_ES256; alg && i <= RPT_ALG_SM2; i++)
        if (strcmp(alg, rpt_alg_name((enum rpt_alg)i)) == 0)
            a = i;
    if (!alg) {
        fail(res, &rc, 0, HR_EPARSE, "JWS header has no \"alg\"");
        goto out;
    }
    if (a < 0) {
        fail(res, &rc, 0, HR_ESIG, "algorithm \"%.32s\" refused (only ES256, EdDSA, SM2)", alg);
        goto out;
    }
    res->alg = (enum rpt_alg)a;
    if (!json_is_integer(jiat) || json_integer_value(jiat) < 0) {
        fail(res, &rc, 0, HR_EPARSE, "JWS header has no signing time (\"iat\")");
        goto out;
    }
    res->signed_s = json_integer_value(jiat);
    json_t *x5c = json_object_get(hdr, "x5c");
    if (parse_x5c(x5c, &chain, ents, res, &rc) != 0)
        goto out;
    X509 *leaf = sk_X509_value(chain, 0);
    EVP_PKEY *key = X509_get0_pubkey(leaf);
    snprintf(res->signer_subject, sizeof(res->signer_subject), "%s", ents[0]->subject);
    if (!key || ents[0]->alg != a) {
        fail(res, &rc, 0, HR_ESIG, "algorithm %s does not match the certificate's key (%s)", alg,
             key ? key_kind(key) : "unreadable");
        res->sig = 0;
    } else {
        int v = rpt_pkey_ctx_verify(ents[0]->vctx, (const uint8_t *)compact, (size_t)(d2 - compact),
                                    sig, slen);
        res->sig = v == 0;
        if (v)
            fail(res, &rc, 0, HR_ESIG, "signature does not match the payload");
    }
    time_t t = (time_t)res->signed_s;
    check_validity(chain, t, res, &rc);
    if (trust_pem)
        check_chain(chain, x5c, trust_pem, t, res, &rc);
out:
    for (int i = 0; i < RPT_X5C_MAX; i++)
        rpt__cert_put(ents[i]);
    json_decref(hdr);
    sk_X509_pop_free(chain, X509_free);
    free(hraw);
    free(praw);
    ERR_clear_error();
    return rc;
}
