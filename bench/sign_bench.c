/* huren-bench-sign: reports signed and verified per second on one core, per
 * algorithm, next to `openssl speed` for the same algorithms in the same run
 * (the ceiling). The payload is a realistic report of 30 instances; verify
 * is the whole rpt_jws_verify (signature, validity, chain to trust.pem).
 *
 *   huren-bench-sign [-n N] [--seconds S] [--no-openssl] [--alg es256|ed25519|sm2]
 */
#include "common/hr_err.h"
#include "reports/ca.h"
#include "reports/jws.h"
#include "reports/keystore.h"
#include "reports/pkey.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of the process (user + system): openssl speed counts user CPU
 * time too (not -elapsed), so both sides are measured alike on a loaded
 * machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hex(char *out, size_t n)
{
    unsigned char b[64];
    RAND_bytes(b, (int)(n / 2));
    for (size_t i = 0; i < n / 2; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* A final report of a 30-image CT study, shaped as decision 0022's payload. */
static json_t *payload(void)
{
    json_t *inst = json_array();
    char sop[80], sha[65];
    for (int i = 0; i < 30; i++) {
        snprintf(sop, sizeof(sop), "1.2.826.0.1.3680043.8.498.1234567890.%d", 1000 + i);
        hex(sha, 64);
        json_array_append_new(inst, json_pack("{s:s, s:s}", "sop", sop, "sha256", sha));
    }
    hex(sha, 64);
    return json_pack(
        "{s:s, s:i, s:{s:s, s:i, s:s, s:n}, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s},"
        " s:{s:s, s:s, s:s, s:s, s:s}, s:{s:i, s:s, s:s, s:o},"
        " s:{s:s, s:s, s:b, s:[]}, s:[{s:s, s:s, s:s, s:s, s:s}],"
        " s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}], s:s}",
        "typ", "huren-report", "schema", 1, "report", "id",
        "r1-1.2.826.0.1.3680043.8.498.1234567890", "version", 1, "status", "final", "supersedes",
        "exam", "study_uid", "1.2.826.0.1.3680043.8.498.1234567890", "accession", "A20261203001",
        "hospital", "township1", "hospital_name", "示范镇卫生院", "modality", "CT", "procedure",
        "头颅CT平扫", "study_date", "20261203", "center", "imaging", "center_name",
        "县医院影像诊断中心", "patient", "id", "P000123", "issuer", "township1", "name", "张三",
        "sex", "M", "birth_date", "19600101", "images", "count", 30, "order", "sop-uid-bytewise",
        "digest", sha, "instances", inst, "content", "findings",
        "双侧大脑半球对称，脑实质内未见异常密度影。脑室系统大小形态正常，中线结构居中。",
        "impression", "头颅CT平扫未见明显异常。", "critical", 0, "codes", "recognition", "item",
        "CT-HEAD", "name", "头颅CT", "hr_mark", "鄂HR", "scope", "community", "valid_until",
        "2027-06-03", "signers", "user", "li", "name", "李医生", "role", "reader", "function",
        "author", "center", "imaging", "hospital", "county", "signed_at",
        "2026-12-03T07:00:00.123Z", "signed_at", "2026-12-03T07:00:00.123Z");
}

typedef struct ossl_rate {
    double sign, verify;
} ossl_rate;

/* sign/s and verify/s of `openssl speed -seconds S ecdsap256 ed25519 sm2`. */
static int openssl_speed(int seconds, ossl_rate r[3])
{
    char cmd[128], line[512];
    snprintf(cmd, sizeof(cmd), "openssl speed -seconds %d ecdsap256 ed25519 sm2 2>/dev/null",
             seconds);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    memset(r, 0, 3 * sizeof(*r));
    while (fgets(line, sizeof(line), p)) {
        int k = strstr(line, "ecdsa (nistp256)")  ? 0
                : strstr(line, "EdDSA (Ed25519)") ? 1
                : strstr(line, "SM2 (CurveSM2)")  ? 2
                                                  : -1;
        if (k < 0)
            continue;
        char *q = strchr(line, ')');
        double a, b;
        if (q && sscanf(q + 1, " %lfs %lfs %lf %lf", &a, &b, &r[k].sign, &r[k].verify) != 4)
            r[k].sign = r[k].verify = 0;
    }
    return pclose(p) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = 3000, seconds = 3, with_openssl = 1, only = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-openssl") == 0)
            with_openssl = 0;
        else if (strcmp(argv[i], "--alg") == 0 && i + 1 < argc)
            only = rpt_alg_parse(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: huren-bench-sign [-n N] [--seconds S] [--no-openssl] [--alg A]\n");
            return 2;
        }
    }
    char dir[] = "/tmp/huren-bench-sign.XXXXXX", trust[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(trust, sizeof(trust), "%s/trust.pem", dir);
    rpt_subject cas = {.cn = "bench CA"};
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    if (rpt_ca_make(RPT_ALG_ES256, &cas, 30, &ca_key, &ca) != 0)
        return 1;
    STACK_OF(X509) *one = sk_X509_new_null();
    sk_X509_push(one, ca);
    rpt_certs_write(trust, one, 0644, 0);
    sk_X509_free(one);

    json_t *p = payload();
    char *text = NULL;
    size_t tl = 0;
    rpt_jcs(p, &text, &tl);
    printf("payload: %zu bytes canonical (30 instances), %d reports per algorithm, one core\n", tl,
           n);
    free(text);
    double rate[3][3] = {{0}}, raw[3][2] = {{0}};
    long long iat = (long long)time(NULL);
    size_t sign_input = 0;
    for (int a = RPT_ALG_ES256; a <= RPT_ALG_SM2; a++) {
        if (only >= 0 && a != only)
            continue;
        EVP_PKEY *key = NULL;
        X509 *leaf = NULL;
        rpt_subject s = {.cn = "李医生", .o = "县医院", .ou = "影像诊断中心", .uid = "li"};
        rpt_signer *sg = NULL;
        STACK_OF(X509) *chain = sk_X509_new_null();
        if (rpt_pkey_generate((enum rpt_alg)a, &key) ||
            rpt_cert_issue(ca, ca_key, key, &s, iat - 60, iat + 86400, &leaf))
            return 1;
        sk_X509_push(chain, leaf);
        X509_up_ref(ca);
        sk_X509_push(chain, ca);
        if (rpt_pkey_signer_new(key, chain, &sg) != 0)
            return 1;
        int count = a == RPT_ALG_SM2 ? n / 4 : n;
        if (count < 1)
            count = 1;
        char **jws = calloc((size_t)count, sizeof(char *));
        double t0 = now_s();
        for (int i = 0; i < count; i++)
            if (rpt_jws_sign(sg, p, iat, &jws[i]) != 0)
                return 1;
        double t1 = now_s();
        for (int i = 0; i < count; i++) {
            rpt_verify_result r;
            int rc = rpt_jws_verify(jws[i], strlen(jws[i]), trust, &r);
            json_decref(r.payload);
            if (rc) {
                fprintf(stderr, "verify failed: %s\n", r.why);
                return 1;
            }
        }
        double t2 = now_s();
        sign_input = (size_t)(strrchr(jws[0], '.') - jws[0]);
        rate[a][0] = count / (t1 - t0);
        rate[a][1] = count / (t2 - t1);
        rate[a][2] = count / (t2 - t0);
        /* the signature alone over the same signing input (header.payload) */
        rpt_pkey_ctx *sc = NULL, *vc = NULL;
        const char *in = jws[0];
        size_t in_len = (size_t)(strrchr(in, '.') - in);
        uint8_t sig[RPT_SIG_MAX];
        size_t sl = 0;
        rpt_pkey_ctx_new(key, (enum rpt_alg)a, 1, &sc);
        rpt_pkey_ctx_new(key, (enum rpt_alg)a, 0, &vc);
        double t3 = now_s();
        for (int i = 0; i < count; i++)
            rpt_pkey_ctx_sign(sc, (const uint8_t *)in, in_len, sig, &sl);
        double t4 = now_s();
        for (int i = 0; i < count; i++)
            rpt_pkey_ctx_verify(vc, (const uint8_t *)in, in_len, sig, sl);
        double t5 = now_s();
        raw[a][0] = count / (t4 - t3);
        raw[a][1] = count / (t5 - t4);
        rpt_pkey_ctx_free(sc);
        rpt_pkey_ctx_free(vc);
        for (int i = 0; i < count; i++)
            free(jws[i]);
        free(jws);
        sg->free(sg);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(key);
    }
    ossl_rate os[3] = {{0}};
    if (with_openssl && openssl_speed(seconds, os) != 0)
        fprintf(stderr, "openssl speed failed\n");
    printf("%-6s %10s %10s %12s | %12s %12s %12s | %6s\n", "alg", "sign/s", "verify/s",
           "sign+verify/s", "openssl s/s", "openssl v/s", "openssl s+v/s", "ratio");
    for (int a = 0; a < 3; a++) {
        double osv =
            os[a].sign > 0 && os[a].verify > 0 ? 1.0 / (1.0 / os[a].sign + 1.0 / os[a].verify) : 0;
        printf("%-6s %10.0f %10.0f %12.0f | %12.0f %12.0f %12.0f | %5.0f%%\n",
               rpt_alg_name((enum rpt_alg)a), rate[a][0], rate[a][1], rate[a][2], os[a].sign,
               os[a].verify, osv, osv > 0 ? 100.0 * rate[a][2] / osv : 0.0);
    }
    for (int a = 0; a < 3; a++)
        if (raw[a][0] > 0)
            printf("%-6s signature alone over the %zu-byte signing input: %.0f sign/s, %.0f "
                   "verify/s\n",
                   rpt_alg_name((enum rpt_alg)a), sign_input, raw[a][0], raw[a][1]);
    /* what is not the signature: the payload's canonical form and decoding */
    {
        char *c = NULL;
        size_t cl = 0;
        int reps = 2000;
        double t0 = now_s();
        for (int i = 0; i < reps; i++) {
            rpt_jcs(p, &c, &cl);
            free(c);
        }
        double t1 = now_s();
        rpt_jcs(p, &c, &cl);
        for (int i = 0; i < reps; i++)
            json_decref(json_loadb(c, cl, JSON_REJECT_DUPLICATES, NULL));
        double t2 = now_s();
        free(c);
        printf("per report: JCS of the payload %.1f us (sign), JSON decoding of the payload "
               "(jansson) %.1f us (verify)\n",
               (t1 - t0) / reps * 1e6, (t2 - t1) / reps * 1e6);
    }
    printf("(verify = rpt_jws_verify: JSON and base64 decoding, x5c parsing, the signature, "
           "validity at iat, the chain to trust.pem; rates per CPU second, as openssl speed's)\n");
    json_decref(p);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    unlink(trust);
    rmdir(dir);
    return 0;
}
