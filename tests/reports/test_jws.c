/* reports/jws.c, signer.c, keystore.c, ca.c: a regional CA and signer keys
 * made into a temp dir, signatures of every alg round-tripped, and every
 * kind of tampering refused with its reason. */
#include "common/hr_err.h"
#include "reports/ca.h"
#include "reports/jws.h"
#include "reports/keystore.h"
#include "reports/pkey.h"
#include "reports/signer.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CA_PASS "correct horse battery staple"
#define PIN     "246810"

static char g_dir[512], g_ca[600], g_keys[600], g_trust[700];

static void setup(void)
{
    /* keys of 2048 iterations: the suite runs under ASan, where OpenSSL's
     * PBKDF2 costs about 1 s at the product's 100000 (one test keeps it) */
    rpt_key_set_kdf_iter(2048);
    cr_assert_eq(ts_tmpdir(g_dir), 0);
    snprintf(g_ca, sizeof(g_ca), "%s/ca", g_dir);
    snprintf(g_keys, sizeof(g_keys), "%s/keys", g_dir);
    snprintf(g_trust, sizeof(g_trust), "%s/trust.pem", g_ca);
    rpt_subject ca = {.cn = "湖北示范医共体 Test CA", .o = "county"};
    cr_assert_eq(rpt_ca_init(g_ca, RPT_ALG_ES256, CA_PASS, &ca, 30), 0);
}

static void teardown(void)
{
    ts_rmrf(g_dir);
}

TestSuite(jws, .init = setup, .fini = teardown);

/* A payload shaped as decision 0022's. */
static json_t *payload(void)
{
    json_t *p = json_pack(
        "{s:s, s:i, s:{s:s, s:i, s:s, s:n}, s:{s:s, s:s, s:s}, s:{s:i, s:s, "
        "s:[{s:s, s:s}]}, s:{s:s, s:s, s:b, s:[]}, s:s}",
        "typ", "huren-report", "schema", 1, "report", "id", "r1-1.2.3", "version", 1, "status",
        "preliminary", "supersedes", "exam", "study_uid", "1.2.3", "hospital", "township1",
        "modality", "CT", "images", "count", 1, "order", "sop-uid-bytewise", "instances", "sop",
        "1.2.3.4", "sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "content", "findings", "双肺纹理清晰，未见明显实变。", "impression", "胸部CT未见异常。",
        "critical", 0, "codes", "signed_at", "2026-12-03T07:00:00.123Z");
    cr_assert_not_null(p);
    return p;
}

static rpt_signer *open_user(const char *user, enum rpt_alg alg)
{
    rpt_subject s = {.cn = "李医生", .o = "county", .ou = "imaging", .uid = user};
    cr_assert_eq(rpt_keygen(g_keys, g_ca, CA_PASS, user, alg, &s, 30, PIN), 0);
    rpt_signer *sg = NULL;
    cr_assert_eq(rpt_local_signer_open(g_keys, user, PIN, &sg), 0);
    cr_assert_eq(sg->alg, alg);
    cr_assert_eq(sg->n_x5c, 2, "leaf and CA");
    return sg;
}

static char *sign(rpt_signer *s, long long iat)
{
    json_t *p = payload();
    char *jws = NULL;
    cr_assert_eq(rpt_jws_sign(s, p, iat, &jws), 0);
    json_decref(p);
    return jws;
}

static int verify(const char *jws, const char *trust, rpt_verify_result *r)
{
    int rc = rpt_jws_verify(jws, strlen(jws), trust, r);
    json_decref(r->payload);
    r->payload = NULL;
    return rc;
}

static void round_trip(const char *user, enum rpt_alg alg)
{
    rpt_signer *s = open_user(user, alg);
    long long now = (long long)time(NULL);
    char *jws = sign(s, now);
    rpt_verify_result r;
    int rc = rpt_jws_verify(jws, strlen(jws), g_trust, &r);
    cr_expect_eq(rc, 0, "%s: %s", rpt_alg_name(alg), r.why);
    cr_expect_str_eq(r.why, "");
    cr_expect_eq(r.sig, 1);
    cr_expect_eq(r.valid, 1);
    cr_expect_eq(r.chain, 1);
    cr_expect_eq(r.alg, alg);
    cr_expect_eq(r.signed_s, now);
    cr_expect(strstr(r.signer_subject, "李医生") != NULL, "%s", r.signer_subject);
    cr_expect(strstr(r.signer_subject, user) != NULL, "%s", r.signer_subject);
    /* the payload that comes back is the one signed, canonically equal */
    json_t *p = payload();
    cr_expect(json_equal(r.payload, p));
    json_decref(p);
    json_decref(r.payload);
    /* without anchors the chain is not checked, and says so */
    rc = rpt_jws_verify(jws, strlen(jws), NULL, &r);
    cr_expect_eq(rc, 0);
    cr_expect_eq(r.chain, -1);
    json_decref(r.payload);
    /* the header names the alg and carries typ, x5c and iat */
    char *dot = strchr(jws, '.');
    uint8_t hdr[8192];
    size_t hl = 0;
    cr_assert_eq(rpt_b64url_decode(jws, (size_t)(dot - jws), hdr, &hl), 0);
    json_t *h = json_loadb((char *)hdr, hl, 0, NULL);
    cr_assert_not_null(h);
    /* the header is written in its canonical (JCS) form */
    char *canon = NULL;
    size_t cl = 0;
    cr_assert_eq(rpt_jcs(h, &canon, &cl), 0);
    cr_expect(cl == hl && memcmp(canon, hdr, hl) == 0, "header not canonical: %.*s", (int)hl,
              (char *)hdr);
    free(canon);
    cr_expect_str_eq(json_string_value(json_object_get(h, "alg")), rpt_alg_name(alg));
    cr_expect_str_eq(json_string_value(json_object_get(h, "typ")), "JOSE");
    cr_expect_eq(json_array_size(json_object_get(h, "x5c")), 2);
    cr_expect_eq(json_integer_value(json_object_get(h, "iat")), now);
    json_decref(h);
    free(jws);
    s->free(s);
}

Test(jws, round_trip_es256)
{
    round_trip("li.es", RPT_ALG_ES256);
}

Test(jws, round_trip_eddsa)
{
    round_trip("li.ed", RPT_ALG_EDDSA);
}

Test(jws, round_trip_sm2)
{
    round_trip("li.sm2", RPT_ALG_SM2);
}

/* An SM2 CA issues SM2 signer certificates whose chain verifies (the SM2
 * signature on the certificate, with the default distinguishing ID). */
Test(jws, sm2_ca_chain)
{
    char ca2[700];
    snprintf(ca2, sizeof(ca2), "%s/ca-sm2", g_dir);
    rpt_subject ca = {.cn = "SM2 Test CA"};
    cr_assert_eq(rpt_ca_init(ca2, RPT_ALG_SM2, CA_PASS, &ca, 30), 0);
    for (int a = RPT_ALG_ES256; a <= RPT_ALG_SM2; a++) {
        char user[32], trust[800];
        snprintf(user, sizeof(user), "sm2ca-%d", a);
        snprintf(trust, sizeof(trust), "%s/trust.pem", ca2);
        rpt_subject s = {.cn = user, .uid = user};
        cr_assert_eq(rpt_keygen(g_keys, ca2, CA_PASS, user, (enum rpt_alg)a, &s, 30, PIN), 0);
        rpt_signer *sg = NULL;
        cr_assert_eq(rpt_local_signer_open(g_keys, user, PIN, &sg), 0);
        char *jws = sign(sg, (long long)time(NULL));
        rpt_verify_result r;
        cr_expect_eq(verify(jws, trust, &r), 0, "%s: %s", rpt_alg_name((enum rpt_alg)a), r.why);
        /* and not against the ES256 CA */
        cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
        cr_expect_str_eq(r.why, "certificate not issued by a trusted CA");
        free(jws);
        sg->free(sg);
    }
}

/* Key files: 0600, an encrypted PKCS#8 PEM; the wrong PIN opens nothing. */
Test(jws, key_files_and_wrong_pin)
{
    rpt_key_set_kdf_iter(0); /* the product's count */
    rpt_signer *s = open_user("wang", RPT_ALG_ES256);
    s->free(s);
    char path[800];
    struct stat st;
    snprintf(path, sizeof(path), "%s/wang/key.p8", g_keys);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    size_t len = 0;
    unsigned char *text = ts_read_file(path, &len);
    cr_expect(strstr((char *)text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL);
    free(text);
    snprintf(path, sizeof(path), "%s/wang/chain.pem", g_keys);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);

    rpt_signer *none = (rpt_signer *)1;
    cr_expect_eq(rpt_local_signer_open(g_keys, "wang", "246811", &none), -EACCES);
    cr_expect_null(none);
    cr_expect_eq(rpt_local_signer_open(g_keys, "wang", "24681", &none), -EACCES, "too short");
    cr_expect_eq(rpt_local_signer_open(g_keys, "wang", "", &none), -EACCES);
    cr_expect_eq(rpt_local_pin_check(g_keys, "wang", PIN), 0);
    cr_expect_eq(rpt_local_pin_check(g_keys, "wang", "wrong-pin"), -EACCES);
    cr_expect_eq(rpt_local_signer_open(g_keys, "zhao", PIN, &none), HR_ENOTFOUND);
    cr_expect_eq(rpt_local_signer_open(g_keys, "../keys/wang", PIN, &none), HR_ENOTFOUND);
    cr_expect_eq(rpt_local_signer_open(g_keys, "..", PIN, &none), HR_ENOTFOUND);
    /* openssl itself reads the key with the PIN (standard PBES2) */
    snprintf(path, sizeof(path), "%s/wang/key.p8", g_keys);
    EVP_PKEY *k = NULL;
    cr_expect_eq(rpt_key_read(path, PIN, &k), 0);
    EVP_PKEY_free(k);
    /* an unencrypted key is refused */
    char plain[800];
    snprintf(plain, sizeof(plain), "%s/plain.pem", g_dir);
    EVP_PKEY *g = NULL;
    cr_assert_eq(rpt_pkey_generate(RPT_ALG_EDDSA, &g), 0);
    FILE *f = fopen(plain, "w");
    PEM_write_PrivateKey(f, g, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    cr_expect_eq(rpt_key_read(plain, PIN, &k), -EIO);
    EVP_PKEY_free(g);
}

/* A key that is not the certificate's: HR_ECERT, nothing signs. */
Test(jws, key_cert_mismatch)
{
    rpt_signer *a = open_user("ma", RPT_ALG_ES256), *b = open_user("niu", RPT_ALG_ES256);
    a->free(a);
    b->free(b);
    char from[800], to[800];
    snprintf(from, sizeof(from), "%s/niu/chain.pem", g_keys);
    snprintf(to, sizeof(to), "%s/ma/chain.pem", g_keys);
    cr_assert_eq(rename(from, to), 0);
    rpt_signer *s = NULL;
    cr_expect_eq(rpt_local_signer_open(g_keys, "ma", PIN, &s), HR_ECERT);
    cr_expect_null(s);
}

/* Replaces the payload part of jws by base64url(text). */
static char *with_payload(const char *jws, const char *text)
{
    const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
    char *b = malloc(strlen(text) * 2 + 8);
    rpt_b64url_encode((const uint8_t *)text, strlen(text), b);
    char *out = malloc(strlen(jws) + strlen(b) + 4);
    sprintf(out, "%.*s.%s%s", (int)(d1 - jws), jws, b, d2);
    free(b);
    return out;
}

static char *payload_text(const char *jws)
{
    const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
    uint8_t *p = malloc((size_t)(d2 - d1) + 4);
    size_t n = 0;
    cr_assert_eq(rpt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), p, &n), 0);
    p[n] = 0;
    return (char *)p;
}

Test(jws, tampered_payload)
{
    rpt_signer *s = open_user("chen", RPT_ALG_EDDSA);
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    /* one byte of an instance hash changed */
    char *text = payload_text(jws), *h = strstr(text, "9f86d0");
    cr_assert_not_null(h);
    h[0] = '8';
    char *bad = with_payload(jws, text);
    cr_expect_eq(verify(bad, g_trust, &r), HR_ESIG);
    cr_expect_str_eq(r.why, "signature does not match the payload");
    cr_expect_eq(r.sig, 0);
    cr_expect_eq(r.chain, 1, "the certificate itself is fine");
    free(bad);
    /* one byte of the Chinese findings changed */
    h[0] = '9';
    h = strstr(text, "清晰");
    cr_assert_not_null(h);
    h[2] ^= 1;
    bad = with_payload(jws, text);
    cr_expect_eq(verify(bad, g_trust, &r), HR_ESIG);
    free(bad);
    free(text);
    /* any one character of the compact form changed: never verifies */
    size_t n = strlen(jws);
    for (size_t i = 0; i < n; i += 7) {
        if (jws[i] == '.')
            continue;
        char c = jws[i];
        jws[i] = c == 'A' ? 'B' : 'A';
        cr_expect_neq(verify(jws, g_trust, &r), 0, "character %zu", i);
        jws[i] = c;
    }
    /* the last character of the signature, whose low bits are unused */
    char c = jws[n - 1];
    jws[n - 1] = c ^ 1;
    cr_expect_neq(verify(jws, g_trust, &r), 0);
    jws[n - 1] = c;
    cr_expect_eq(verify(jws, g_trust, &r), 0);
    free(jws);
    s->free(s);
}

Test(jws, tampered_signature)
{
    rpt_signer *s = open_user("liu", RPT_ALG_ES256);
    char *jws = sign(s, (long long)time(NULL));
    char *d2 = strrchr(jws, '.');
    uint8_t sig[RPT_SIG_MAX + 4];
    size_t n = 0;
    cr_assert_eq(rpt_b64url_decode(d2 + 1, strlen(d2 + 1), sig, &n), 0);
    cr_assert_eq(n, 64);
    sig[40] ^= 0x10;
    rpt_b64url_encode(sig, n, d2 + 1);
    rpt_verify_result r;
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    cr_expect_str_eq(r.why, "signature does not match the payload");
    /* a truncated signature */
    rpt_b64url_encode(sig, 63, d2 + 1);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    /* no signature */
    d2[1] = '\0';
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    free(jws);
    s->free(s);
}

/* Signs header and payload with key into "h.p.s" (the JWS any attacker who
 * holds a key can make). */
static char *forge(json_t *hdr, EVP_PKEY *key, enum rpt_alg alg)
{
    char *h = NULL, *p = NULL;
    size_t hl, pl;
    json_t *pay = payload();
    cr_assert_eq(rpt_jcs(hdr, &h, &hl), 0);
    cr_assert_eq(rpt_jcs(pay, &p, &pl), 0);
    char *out = malloc(hl * 2 + pl * 2 + 300);
    size_t n = rpt_b64url_encode((uint8_t *)h, hl, out);
    out[n++] = '.';
    n += rpt_b64url_encode((uint8_t *)p, pl, out + n);
    uint8_t sig[RPT_SIG_MAX];
    size_t sl = 0;
    if (key)
        cr_assert_eq(rpt_pkey_sign(key, alg, (uint8_t *)out, n, sig, &sl), 0);
    out[n++] = '.';
    rpt_b64url_encode(sig, sl, out + n);
    free(h);
    free(p);
    json_decref(pay);
    return out;
}

static EVP_PKEY *user_key(const char *user)
{
    char path[800];
    EVP_PKEY *k = NULL;
    snprintf(path, sizeof(path), "%s/%s/key.p8", g_keys, user);
    cr_assert_eq(rpt_key_read(path, PIN, &k), 0);
    return k;
}

static STACK_OF(X509) * user_chain(const char *user)
{
    char path[800];
    STACK_OF(X509) *c = NULL;
    snprintf(path, sizeof(path), "%s/%s/chain.pem", g_keys, user);
    cr_assert_eq(rpt_certs_read(path, 8, &c), 0);
    return c;
}

/* A certificate changed by its holder (one byte of its subject) and the JWS
 * re-signed with the same key: the signature matches, the certificate's
 * own signature does not. */
Test(jws, tampered_certificate)
{
    rpt_signer *s = open_user("sun", RPT_ALG_ES256);
    s->free(s);
    EVP_PKEY *key = user_key("sun");
    STACK_OF(X509) *chain = user_chain("sun");
    unsigned char *der = NULL;
    int n = i2d_X509(sk_X509_value(chain, 0), &der);
    unsigned char *at = memmem(der, (size_t)n, "sun", 3);
    cr_assert_not_null(at);
    at[0] = 'r'; /* UID "run" */
    const unsigned char *p = der;
    X509 *forged = d2i_X509(NULL, &p, n);
    cr_assert_not_null(forged);
    OPENSSL_free(der);
    X509_free(sk_X509_value(chain, 0));
    sk_X509_set(chain, 0, forged);
    cr_assert_eq(rpt_pkey_signer_new(key, chain, &s), 0);
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    cr_expect_eq(r.sig, 1);
    cr_expect_eq(r.chain, 0);
    cr_expect_str_eq(r.why, "certificate signature does not verify (the certificate was altered)");
    free(jws);
    s->free(s);

    /* one character of x5c changed in a genuine JWS: the header is signed */
    s = open_user("zhou", RPT_ALG_ES256);
    jws = sign(s, (long long)time(NULL));
    char *x = strstr(jws, "."); /* header: change a character in its middle */
    size_t mid = (size_t)(x - jws) / 2;
    jws[mid] = jws[mid] == 'Q' ? 'R' : 'Q';
    cr_expect_neq(verify(jws, g_trust, &r), 0);
    free(jws);
    s->free(s);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
}

/* Certificates valid only before, or only after, the signing time. */
Test(jws, validity_at_signing_time)
{
    rpt_signer *s = open_user("qian", RPT_ALG_EDDSA);
    s->free(s);
    EVP_PKEY *key = user_key("qian"), *ca_key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    cr_expect_eq(rpt_ca_load(g_ca, "not the passphrase", &ca_key, &ca), -EACCES);
    cr_expect_null(ca_key);
    cr_assert_eq(rpt_ca_load(g_ca, CA_PASS, &ca_key, &ca), 0);
    long long now = (long long)time(NULL);
    rpt_subject subj = {.cn = "qian", .uid = "qian"};
    /* expired an hour ago */
    cr_assert_eq(rpt_cert_issue(ca, ca_key, key, &subj, now - 7200, now - 3600, &leaf), 0);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    cr_assert_eq(rpt_pkey_signer_new(key, chain, &s), 0);
    char *jws = sign(s, now);
    rpt_verify_result r;
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    cr_expect_eq(r.sig, 1);
    cr_expect_eq(r.valid, 0);
    cr_expect(strncmp(r.why, "certificate expired at signing time", 35) == 0, "%s", r.why);
    free(jws);
    s->free(s);
    /* the local signer refuses an expired certificate outright */
    char path[800];
    snprintf(path, sizeof(path), "%s/qian/chain.pem", g_keys);
    cr_assert_eq(rpt_certs_write(path, chain, 0600, 0), 0);
    cr_expect_eq(rpt_local_signer_open(g_keys, "qian", PIN, &s), HR_ECERT);
    X509_free(leaf);
    sk_X509_zero(chain);
    /* valid only from tomorrow */
    cr_assert_eq(rpt_cert_issue(ca, ca_key, key, &subj, now + 86400, now + 2 * 86400, &leaf), 0);
    sk_X509_push(chain, leaf);
    cr_assert_eq(rpt_pkey_signer_new(key, chain, &s), 0);
    jws = sign(s, now);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    cr_expect(strncmp(r.why, "certificate not yet valid at signing time", 41) == 0, "%s", r.why);
    free(jws);
    s->free(s);
    sk_X509_pop_free(chain, X509_free);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
}

/* The CA's own certificate as a signer: keyUsage keyCertSign only. */
Test(jws, key_usage)
{
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    rpt_signer *s = NULL;
    cr_assert_eq(rpt_ca_load(g_ca, CA_PASS, &ca_key, &ca), 0);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, ca);
    cr_assert_eq(rpt_pkey_signer_new(ca_key, chain, &s), 0);
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    cr_expect_str_eq(r.why, "certificate key usage does not allow signing");
    free(jws);
    s->free(s);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(ca_key);
}

static json_t *header(const char *alg, rpt_signer *s, long long iat)
{
    json_t *x5c = json_array();
    for (size_t i = 0; i < s->n_x5c; i++)
        json_array_append_new(x5c, json_string(s->x5c[i]));
    return json_pack("{s:s, s:s, s:o, s:I}", "alg", alg, "typ", "JOSE", "x5c", x5c, "iat",
                     (json_int_t)iat);
}

/* "none", HS256 keyed with the certificate, and an alg that is not the
 * key's: refused before any signature is trusted. */
Test(jws, alg_confusion)
{
    rpt_signer *es = open_user("he", RPT_ALG_ES256), *ed = open_user("lu", RPT_ALG_EDDSA);
    EVP_PKEY *edkey = user_key("lu");
    long long now = (long long)time(NULL);
    rpt_verify_result r;

    json_t *h = header("none", es, now);
    char *jws = forge(h, NULL, RPT_ALG_ES256);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    cr_expect(strstr(r.why, "algorithm \"none\" refused") != NULL, "%s", r.why);
    cr_expect_eq(r.sig, -1);
    free(jws);
    json_decref(h);

    /* HS256 with the certificate's bytes as the HMAC secret */
    h = header("HS256", es, now);
    jws = forge(h, NULL, RPT_ALG_ES256);
    size_t n = strlen(jws) - 1; /* up to the last dot */
    uint8_t mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), es->x5c[0], (int)strlen(es->x5c[0]), (uint8_t *)jws, n, mac, &ml);
    char *full = malloc(n + 64);
    memcpy(full, jws, n + 1);
    rpt_b64url_encode(mac, ml, full + n + 1);
    cr_expect_eq(verify(full, g_trust, &r), HR_ESIG);
    cr_expect(strstr(r.why, "algorithm \"HS256\" refused") != NULL, "%s", r.why);
    free(full);
    free(jws);
    json_decref(h);

    /* an Ed25519 signature under "ES256", with the Ed25519 certificate */
    h = header("ES256", ed, now);
    uint8_t sig[RPT_SIG_MAX];
    size_t sl;
    cr_expect_eq(rpt_pkey_sign(edkey, RPT_ALG_ES256, (uint8_t *)"x", 1, sig, &sl), -EINVAL);
    jws = forge(h, NULL, RPT_ALG_ES256);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    cr_expect(strstr(r.why, "does not match the certificate's key (an Ed25519 key)") != NULL, "%s",
              r.why);
    free(jws);
    json_decref(h);
    /* a genuine EdDSA signature relabelled "SM2" */
    h = header("SM2", ed, now);
    jws = forge(h, edkey, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    free(jws);
    json_decref(h);
    /* and labelled correctly it passes: the forge helper is sound */
    h = header("EdDSA", ed, now);
    jws = forge(h, edkey, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), 0, "%s", r.why);
    free(jws);
    json_decref(h);
    /* lowercase names are not JOSE names */
    h = header("es256", es, now);
    jws = forge(h, NULL, RPT_ALG_ES256);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ESIG);
    free(jws);
    json_decref(h);
    /* "crit" is refused */
    h = header("EdDSA", ed, now);
    json_object_set_new(h, "crit", json_pack("[s]", "exp"));
    jws = forge(h, edkey, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), HR_EPARSE);
    free(jws);
    json_decref(h);
    EVP_PKEY_free(edkey);
    es->free(es);
    ed->free(ed);
}

Test(jws, bounds_and_garbage)
{
    rpt_verify_result r;
    size_t big = RPT_JWS_MAX + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[big] = '\0';
    huge[10] = huge[20] = '.';
    cr_expect_eq(rpt_jws_verify(huge, big, g_trust, &r), HR_ETOOBIG);
    cr_expect_null(r.payload);
    free(huge);

    const char *garbage[] = {"",         "abc",       "a.b",       "a.b.c.d",      "...",
                             "e30.e30.", "!!.e30.AA", "e30.e30.A", "W10.e30.AAAA", "e30.W10.AAAA"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
        int rc = verify(garbage[i], g_trust, &r);
        cr_expect(rc == HR_EPARSE || rc == HR_ESIG, "\"%s\": %d %s", garbage[i], rc, r.why);
        cr_expect_neq(r.why[0], '\0');
    }

    /* nine certificates in x5c */
    rpt_signer *s = open_user("tang", RPT_ALG_EDDSA);
    EVP_PKEY *key = user_key("tang");
    json_t *h = header("EdDSA", s, (long long)time(NULL));
    json_t *x5c = json_object_get(h, "x5c");
    while (json_array_size(x5c) < 9)
        json_array_append_new(x5c, json_string(s->x5c[1]));
    char *jws = forge(h, key, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ETOOBIG);
    cr_expect(strstr(r.why, "more than 8 certificates") != NULL, "%s", r.why);
    free(jws);
    json_decref(h);
    /* x5c empty, or not base64 DER */
    h = header("EdDSA", s, (long long)time(NULL));
    json_array_clear(json_object_get(h, "x5c"));
    jws = forge(h, key, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    free(jws);
    json_array_append_new(json_object_get(h, "x5c"), json_string("AAAA"));
    jws = forge(h, key, RPT_ALG_EDDSA);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    free(jws);
    json_decref(h);
    EVP_PKEY_free(key);
    s->free(s);
}

/* A CA nobody trusts: the signature verifies, the chain does not. */
Test(jws, untrusted_ca)
{
    char other[700], trust[800];
    snprintf(other, sizeof(other), "%s/other-ca", g_dir);
    snprintf(trust, sizeof(trust), "%s/trust.pem", other);
    rpt_subject ca = {.cn = "Other CA"};
    cr_assert_eq(rpt_ca_init(other, RPT_ALG_EDDSA, CA_PASS, &ca, 30), 0);
    cr_expect_eq(rpt_ca_init(other, RPT_ALG_EDDSA, CA_PASS, &ca, 30), -EEXIST);
    cr_expect_eq(rpt_ca_init(g_dir, RPT_ALG_EDDSA, "short", &ca, 30), -EINVAL);
    rpt_signer *s = open_user("yang", RPT_ALG_SM2);
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    cr_expect_eq(verify(jws, trust, &r), HR_ECERT);
    cr_expect_eq(r.sig, 1);
    cr_expect_str_eq(r.why, "certificate not issued by a trusted CA");
    char missing[800];
    snprintf(missing, sizeof(missing), "%s/none.pem", g_dir);
    cr_expect_eq(verify(jws, missing, &r), -EIO);
    free(jws);
    s->free(s);
}

/* cert import: a chain issued elsewhere (another CA's root in the file) and
 * its key; the root lands in trust.pem once. */
Test(jws, cert_import)
{
    char other[700], chainf[800], keyf[800], why[256];
    snprintf(other, sizeof(other), "%s/real-ca", g_dir);
    rpt_subject ca = {.cn = "Real CA"};
    cr_assert_eq(rpt_ca_init(other, RPT_ALG_ES256, CA_PASS, &ca, 30), 0);
    /* a key and certificate made "at the real CA" */
    char okeys[800];
    snprintf(okeys, sizeof(okeys), "%s/real-keys", g_dir);
    rpt_subject subj = {.cn = "赵医生", .uid = "zhao"};
    cr_assert_eq(rpt_keygen(okeys, other, CA_PASS, "zhao", RPT_ALG_ES256, &subj, 30, "exportpw"),
                 0);
    snprintf(chainf, sizeof(chainf), "%s/zhao/chain.pem", okeys);
    snprintf(keyf, sizeof(keyf), "%s/zhao/key.p8", okeys);
    /* the wrong PIN for the key file */
    cr_expect_eq(
        rpt_cert_import(g_keys, g_trust, "zhao", chainf, keyf, "nope-nope", why, sizeof(why)),
        -EACCES);
    cr_expect_eq(
        rpt_cert_import(g_keys, g_trust, "zhao", chainf, keyf, "exportpw", why, sizeof(why)), 0,
        "%s", why);
    rpt_signer *s = NULL;
    cr_assert_eq(rpt_local_signer_open(g_keys, "zhao", "exportpw", &s), 0);
    cr_expect_eq(s->n_x5c, 1, "the root went to trust.pem, not into x5c");
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    cr_expect_eq(verify(jws, g_trust, &r), 0, "%s", r.why);
    free(jws);
    s->free(s);
    /* importing again adds no second copy of the root */
    STACK_OF(X509) *t = NULL;
    cr_assert_eq(rpt_certs_read(g_trust, 100, &t), 0);
    cr_expect_eq(sk_X509_num(t), 2);
    sk_X509_pop_free(t, X509_free);
    cr_expect_eq(
        rpt_cert_import(g_keys, g_trust, "zhao", chainf, NULL, "exportpw", why, sizeof(why)), 0,
        "%s", why);
    cr_assert_eq(rpt_certs_read(g_trust, 100, &t), 0);
    cr_expect_eq(sk_X509_num(t), 2);
    sk_X509_pop_free(t, X509_free);
    /* a chain whose leaf is not the key's */
    rpt_signer *o = open_user("wu", RPT_ALG_ES256);
    o->free(o);
    cr_expect_eq(rpt_cert_import(g_keys, g_trust, "wu", chainf, NULL, PIN, why, sizeof(why)),
                 HR_ECERT);
    cr_expect_str_eq(why, "the key does not match the leaf certificate");
}

/* The caches of verification: a chain found good is not trusted any longer
 * once the trust file changes. */
Test(jws, caches_follow_the_trust_file)
{
    rpt_signer *s = open_user("cache", RPT_ALG_ES256);
    char *jws = sign(s, (long long)time(NULL));
    rpt_verify_result r;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(verify(jws, g_trust, &r), 0, "%s", r.why);
    /* the trust file now holds another CA only */
    char other[700], otrust[800];
    snprintf(other, sizeof(other), "%s/other", g_dir);
    snprintf(otrust, sizeof(otrust), "%s/trust.pem", other);
    rpt_subject ca = {.cn = "Replacement CA"};
    cr_assert_eq(rpt_ca_init(other, RPT_ALG_ES256, CA_PASS, &ca, 30), 0);
    STACK_OF(X509) *t = NULL;
    cr_assert_eq(rpt_certs_read(otrust, 8, &t), 0);
    cr_assert_eq(rpt_certs_write(g_trust, t, 0644, 0), 0);
    sk_X509_pop_free(t, X509_free);
    cr_expect_eq(verify(jws, g_trust, &r), HR_ECERT);
    cr_expect_str_eq(r.why, "certificate not issued by a trusted CA");
    /* and the original anchor back: good again */
    EVP_PKEY *ck = NULL;
    X509 *c = NULL;
    cr_assert_eq(rpt_ca_load(g_ca, CA_PASS, &ck, &c), 0);
    t = sk_X509_new_null();
    sk_X509_push(t, c);
    cr_assert_eq(rpt_certs_write(g_trust, t, 0644, 0), 0);
    sk_X509_pop_free(t, X509_free);
    EVP_PKEY_free(ck);
    cr_expect_eq(verify(jws, g_trust, &r), 0, "%s", r.why);
    free(jws);
    s->free(s);
}
