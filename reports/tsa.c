/* RFC 3161 timestamp requests (libcurl) and token checks (OpenSSL TS). */
#include "tsa.h"
#include "../common/hr_buf.h"
#include "../common/hr_err.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t cap, int rc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && cap)
        vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return rc;
}

/* libcurl's global state, once per process (curl_easy_init would do it on
 * first use, racily when two pool threads get there together). */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t collect(char *p, size_t size, size_t nm, void *arg)
{
    hr_buf *b = arg;
    size_t n = size * nm;
    return hr_buf_append(b, p, n) == 0 ? n : 0; /* 0 aborts past the cap */
}

/* A TimeStampReq for the SHA-256 of jws, with a random nonce and the TSA's
 * certificate requested. */
static TS_REQ *make_req(const char *jws, size_t len)
{
    unsigned char md[32], nonce_b[8];
    TS_REQ *req = TS_REQ_new();
    TS_MSG_IMPRINT *imp = TS_MSG_IMPRINT_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_INTEGER *nonce = NULL;
    BIGNUM *bn = NULL;
    int ok = 0;
    if (!req || !imp || !alg || EVP_Digest(jws, len, md, NULL, EVP_sha256(), NULL) != 1 ||
        RAND_bytes(nonce_b, sizeof(nonce_b)) != 1)
        goto out;
    nonce_b[0] &= 0x7F; /* positive */
    nonce_b[0] |= 0x01; /* and 8 bytes long */
    bn = BN_bin2bn(nonce_b, sizeof(nonce_b), NULL);
    nonce = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!nonce || X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
        TS_MSG_IMPRINT_set_algo(imp, alg) != 1 || TS_MSG_IMPRINT_set_msg(imp, md, 32) != 1 ||
        TS_REQ_set_version(req, 1) != 1 || TS_REQ_set_msg_imprint(req, imp) != 1 ||
        TS_REQ_set_nonce(req, nonce) != 1 || TS_REQ_set_cert_req(req, 1) != 1)
        goto out;
    ok = 1;
out:
    BN_free(bn);
    ASN1_INTEGER_free(nonce);
    X509_ALGOR_free(alg);
    TS_MSG_IMPRINT_free(imp);
    if (!ok) {
        TS_REQ_free(req);
        req = NULL;
    }
    return req;
}

static long long tst_time(TS_TST_INFO *ti)
{
    struct tm tm;
    const ASN1_GENERALIZEDTIME *t = ti ? TS_TST_INFO_get_time(ti) : NULL;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (long long)timegm(&tm);
}

int rpt_tsa_request(const char *url, int timeout_ms, const char *jws, size_t len, char **token_b64,
                    long long *gen_s, char *why, size_t cap)
{
    TS_REQ *req = make_req(jws, len);
    TS_RESP *resp = NULL;
    TS_VERIFY_CTX *vctx = NULL;
    unsigned char *der = NULL, *tok = NULL;
    struct curl_slist *hdr = NULL;
    CURL *c = NULL;
    hr_buf body;
    long status = 0;
    int rc, n;
    hr_buf_init(&body, RPT_TSR_MAX);
    *token_b64 = NULL;
    *gen_s = 0;
    if (!req || (n = i2d_TS_REQ(req, &der)) <= 0) {
        rc = fail(why, cap, -ENOMEM, "cannot build the timestamp request");
        goto out;
    }
    pthread_once(&g_curl_once, curl_init);
    c = curl_easy_init();
    hdr = curl_slist_append(NULL, "Content-Type: application/timestamp-query");
    if (!c || !hdr) {
        rc = fail(why, cap, -ENOMEM, "libcurl init failed");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)der);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = fail(why, cap, -ETIMEDOUT, "TSA %s: no answer within %d ms", url, timeout_ms);
        goto out;
    }
    if (cc == CURLE_WRITE_ERROR) {
        rc = fail(why, cap, HR_ETOOBIG, "TSA response larger than %u KiB", RPT_TSR_MAX >> 10);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = fail(why, cap, -EIO, "TSA %s: %s", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        rc = fail(why, cap, -EIO, "TSA %s answered HTTP %ld", url, status);
        goto out;
    }
    const unsigned char *p = body.data;
    resp = d2i_TS_RESP(NULL, &p, (long)body.len);
    if (!resp || p != body.data + body.len) {
        rc = fail(why, cap, HR_EPARSE, "TSA response is not a TimeStampResp");
        goto out;
    }
    /* status granted, version, our imprint and our nonce */
    vctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
    if (!vctx) {
        rc = fail(why, cap, -ENOMEM, "out of memory");
        goto out;
    }
    /* the signature is checked where the TSA's anchors are known
     * (rpt_tsa_check_token); here: that this answers our request */
    TS_VERIFY_CTX_set_flags(vctx, TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_NONCE);
    if (TS_RESP_verify_response(vctx, resp) != 1) {
        unsigned long e = ERR_peek_last_error();
        char buf[160];
        ERR_error_string_n(e, buf, sizeof(buf));
        rc = fail(why, cap, HR_EMISMATCH, "TSA response refused: %s", buf);
        goto out;
    }
    PKCS7 *token = TS_RESP_get_token(resp);
    STACK_OF(X509) *certs = token && PKCS7_type_is_signed(token) ? token->d.sign->cert : NULL;
    if (!certs || sk_X509_num(certs) == 0) {
        rc = fail(why, cap, HR_EMISMATCH, "TSA token carries no certificate");
        goto out;
    }
    int tn = i2d_PKCS7(token, &tok);
    char *b64 = tn > 0 ? malloc((size_t)(tn + 2) / 3 * 4 + 1) : NULL;
    if (!b64) {
        rc = fail(why, cap, -ENOMEM, "out of memory");
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)b64, tok, tn);
    *token_b64 = b64;
    *gen_s = tst_time(TS_RESP_get_tst_info(resp));
    rc = 0;
out:
    hr_buf_free(&body);
    curl_slist_free_all(hdr);
    if (c)
        curl_easy_cleanup(c);
    TS_VERIFY_CTX_free(vctx);
    TS_RESP_free(resp);
    TS_REQ_free(req);
    OPENSSL_free(der);
    OPENSSL_free(tok);
    ERR_clear_error();
    return rc;
}

int rpt_tsa_check_token(const uint8_t *der, size_t n, const char *jws, size_t len,
                        const char *trust_pem, long long *gen_s, char *why, size_t cap)
{
    const unsigned char *p = der;
    PKCS7 *token = n <= RPT_TSR_MAX ? d2i_PKCS7(NULL, &p, (long)n) : NULL;
    TS_TST_INFO *ti = NULL;
    TS_VERIFY_CTX *vctx = NULL;
    unsigned char md[32];
    int rc;
    *gen_s = 0;
    if (!token || p != der + n || !(ti = PKCS7_to_TS_TST_INFO(token))) {
        rc = fail(why, cap, HR_EPARSE, "not an RFC 3161 TimeStampToken");
        goto out;
    }
    *gen_s = tst_time(ti);
    TS_MSG_IMPRINT *imp = TS_TST_INFO_get_msg_imprint(ti);
    ASN1_OCTET_STRING *msg = TS_MSG_IMPRINT_get_msg(imp);
    if (OBJ_obj2nid(TS_MSG_IMPRINT_get_algo(imp)->algorithm) != NID_sha256) {
        rc = fail(why, cap, HR_EDIGEST, "timestamp imprint is not SHA-256");
        goto out;
    }
    EVP_Digest(jws, len, md, NULL, EVP_sha256(), NULL);
    if (ASN1_STRING_length(msg) != 32 || memcmp(ASN1_STRING_get0_data(msg), md, 32) != 0) {
        rc = fail(why, cap, HR_EDIGEST, "timestamp is of another document");
        goto out;
    }
    if (!trust_pem) {
        rc = 0;
        goto out;
    }
    vctx = TS_VERIFY_CTX_new();
    X509_STORE *store = X509_STORE_new();
    if (!vctx || !store) {
        X509_STORE_free(store);
        rc = fail(why, cap, -ENOMEM, "out of memory");
        goto out;
    }
    TS_VERIFY_CTX_set_store(vctx, store); /* vctx owns store */
    if (X509_STORE_load_file(store, trust_pem) != 1) {
        rc = fail(why, cap, -EIO, "cannot read trust anchors from %s", trust_pem);
        goto out;
    }
    TS_VERIFY_CTX_set_flags(vctx, TS_VFY_SIGNATURE | TS_VFY_VERSION);
    if (TS_RESP_verify_token(vctx, token) != 1) {
        rc = fail(why, cap, HR_ESIG, "timestamp signature or TSA certificate does not verify");
        goto out;
    }
    rc = 0;
out:
    TS_VERIFY_CTX_free(vctx);
    TS_TST_INFO_free(ti);
    PKCS7_free(token);
    ERR_clear_error();
    return rc;
}
