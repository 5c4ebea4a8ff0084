/* Reports against a real redis-server (one per test) and real keys made by
 * the openssl command: drafts and their revisions, the claim rule, signing
 * with a PIN (wrong PINs, the lock), co-signing, amendments (a reader's
 * awaiting an auditor), retraction, the worklist following, the outbox, and
 * the signed payload (decision 0022) with its image digest computed here
 * independently of reports/report.c. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "common/hr_time.h"
#include "reports/jws.h"
#include "reports/report.h"
#include "support/support.h"
#include "worklist/worklist.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PIN    "246810"
#define STUDY  "1.2.826.0.1.3680043.2.1"
#define STUDY2 "1.2.826.0.1.3680043.2.2"
#define CT_SOP "1.2.840.10008.5.1.4.1.1.2"

static char dir[512];
static ts_redis redis;
static redisContext *c_;
static hr_config cfg;
static long long t0;

/* imaging needs an auditor's co-signature, ecg does not (the defaults) */
static const char k_cfg_fmt[] =
    "{\"data_dir\": \"%s\", \"worklist\": {\"quiet_s\": 30, \"lease_s\": 600},"
    " \"routing\": {\"rules\": [{\"modalities\": [\"ECG\"], \"center\": \"ecg\","
    "  \"priority\": \"routine\"}],"
    "  \"default\": {\"center\": \"imaging\", \"priority\": \"routine\"}}}";

static const rpt_actor k_reader = {"rd1", "李医生", STO_ROLE_READER, "imaging", "county"};
static const rpt_actor k_reader2 = {"rd2", "王医生", STO_ROLE_READER, "imaging", "county"};
static const rpt_actor k_auditor = {"aud1", "赵主任", STO_ROLE_AUDITOR, "imaging", "county"};
static const rpt_actor k_ecg = {"ecg1", "心电医生", STO_ROLE_READER, "ecg", "county"};
static const rpt_actor k_tech = {"tech1", "", STO_ROLE_TECHNICIAN, "", "township1"};

static void run(const char *cmd)
{
    int st = system(cmd);
    cr_assert_eq(st, 0, "%s: exit %d", cmd, st);
}

/* A key (P-256, PKCS#8 encrypted under PIN) and a self-signed certificate
 * with digitalSignature, made by the openssl command. */
static void make_key(const char *user)
{
    char d[700], cmd[2400];
    snprintf(d, sizeof(d), "%s/keys/%s", dir, user);
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && cd '%s' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout plain.pem -out chain.pem -days 30 -subj '/CN=%s' "
             "-addext keyUsage=critical,digitalSignature 2>/dev/null && "
             "openssl pkcs8 -topk8 -in plain.pem -out key.p8 -v2 aes-256-cbc -v2prf "
             "hmacWithSHA256 -iter 1000 -passout pass:" PIN " && rm plain.pem && chmod 600 key.p8",
             d, d, user);
    run(cmd);
}

static void cmd_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c_, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "redis: %s", r ? r->str : c_->errstr);
    freeReplyObject(r);
}

/* The index of a study as storage writes it (docs/index-schema.md): the
 * study hash, two series, n instances with content hashes. */
static void index_study(const char *study, int n, const char *modality)
{
    cmd_ok("HSET hr:{%s}:st uid %s date 20270115 accession ACC-7 description 头颅平扫 "
           "patient_id P1 issuer township1 patient_name 张^三 sex M birth_date 19600101 "
           "hospital township1 instances %d",
           study, study, n);
    for (int i = 0; i < n; i++) {
        char se[96], sop[96], sha[65];
        snprintf(se, sizeof(se), "%s.%d", study, 1 + i % 2);
        /* SOP UIDs whose byte order differs from their numeric order */
        snprintf(sop, sizeof(sop), "%s.%d.%d", study, 1 + i % 2, 100 - i * 7);
        for (int j = 0; j < 64; j++)
            sha[j] = "0123456789abcdef"[(i * 7 + j * 3) % 16];
        sha[64] = '\0';
        cmd_ok("ZADD hr:{%s}:se %d %s", study, 1 + i % 2, se);
        cmd_ok("ZADD hr:{%s}:se:%s:i %d %s", study, se, i, sop);
        cmd_ok("HSET hr:{%s}:i:%s sha %s sop %s series %s", study, sop, sha, sop, se);
    }
    wl_arrival a = {.study = study,
                    .sop_class = CT_SOP,
                    .modality = modality,
                    .body_part = "",
                    .procedure = "CT HEAD",
                    .hospital = "township1",
                    .calling_ae = "TOWNSHIP1",
                    .patient = "township1|P1",
                    .patient_name = "张^三",
                    .accession = "ACC-7",
                    .study_date = "20270115",
                    .now_ms = t0};
    cr_assert_eq(wl_arrive(c_, &cfg, &a, NULL), 0);
    cr_assert_eq(wl_complete(c_, study, "tech1", t0), 0);
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SHA-256 hex of the lines "<sop> <sha>\n" of the study's instances, sorted
 * bytewise, read back from Redis here (not through reports/). */
static void images_digest(const char *study, char hex[65], int *count)
{
    redisReply *se = redisCommand(c_, "ZRANGE hr:{%s}:se 0 -1", study);
    char **sops = NULL;
    size_t n = 0;
    for (size_t i = 0; i < se->elements; i++) {
        redisReply *m = redisCommand(c_, "ZRANGE hr:{%s}:se:%s:i 0 -1", study, se->element[i]->str);
        for (size_t j = 0; j < m->elements; j++) {
            sops = realloc(sops, (n + 1) * sizeof(*sops));
            sops[n++] = strdup(m->element[j]->str);
        }
        freeReplyObject(m);
    }
    freeReplyObject(se);
    qsort(sops, n, sizeof(*sops), strcmp_ptr);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; i < n; i++) {
        redisReply *h = redisCommand(c_, "HGET hr:{%s}:i:%s sha", study, sops[i]);
        char line[256];
        int len = snprintf(line, sizeof(line), "%s %s\n", sops[i], h->str);
        EVP_DigestUpdate(md, line, (size_t)len);
        freeReplyObject(h);
        free(sops[i]);
    }
    free(sops);
    unsigned char d[32];
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    *count = (int)n;
}

static void setup(void)
{
    char err[256], text[2048];
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    c_ = ts_redis_connect(redis.sock, 10000);
    cr_assert(c_);
    snprintf(text, sizeof(text), k_cfg_fmt, dir);
    cr_assert_eq(hr_config_load_string(text, &cfg, err, sizeof(err)), 0, "%s", err);
    t0 = hr_wall_ms();
}

static void teardown(void)
{
    redisFree(c_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 120);

static void claim(const char *study, const rpt_actor *who)
{
    int rc = wl_claim(c_, &cfg, study, who->user, t0);
    cr_assert_eq(rc, 0, "claim %s by %s: %s", study, who->user, hr_strerror(rc));
}

static wl_item item(const char *study)
{
    wl_item it;
    cr_assert_eq(wl_get(c_, study, &it), 0);
    return it;
}

static json_t *content(const char *findings, const char *impression)
{
    return json_pack("{s:s, s:s, s:b}", "findings", findings, "impression", impression, "critical",
                     0);
}

/* A draft of STUDY by k_reader, saved once (rev 1). */
static void drafted(char *id)
{
    long long rev, nrev;
    rpt_why why;
    index_study(STUDY, 5, "CT");
    claim(STUDY, &k_reader);
    cr_assert_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, id, &rev, &why), 0, "%s", why.detail);
    json_t *ct = content("脑实质未见异常密度影。", "颅脑CT平扫未见异常。");
    cr_assert_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0 + 1, &nrev, &why), 0, "%s",
                 why.detail);
    json_decref(ct);
    cr_assert_eq(nrev, 1);
}

static long long zcard(const char *key)
{
    redisReply *r = redisCommand(c_, "ZCARD %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static int in_outbox(const char *member)
{
    redisReply *r = redisCommand(c_, "ZSCORE hr:rpt:outbox %s", member);
    int yes = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return yes;
}

/* ---- ids and names ---- */

Test(report, ids_and_status_names)
{
    char study[HR_UID_MAX];
    int n;
    cr_expect_eq(rpt_id_parse("r3-1.2.3", &n, study), 0);
    cr_expect_eq(n, 3);
    cr_expect_str_eq(study, "1.2.3");
    cr_expect_eq(rpt_id_parse("r0-1.2.3", &n, study), -EINVAL);
    cr_expect_eq(rpt_id_parse("r1-", &n, study), -EINVAL);
    cr_expect_eq(rpt_id_parse("r1-1.2.x", &n, study), -EINVAL);
    cr_expect_eq(rpt_id_parse("r99999999999999999999-1.2", &n, study), -EINVAL);
    cr_expect_eq(rpt_id_parse("x1-1.2", &n, study), -EINVAL);
    cr_expect_eq(rpt_id_parse("r65-1.2", &n, study), -EINVAL); /* > RPT_PER_STUDY_MAX */
    cr_expect_str_eq(rpt_status_name(RPT_ENTERED_IN_ERROR), "entered-in-error");
    cr_expect_eq(rpt_status_parse("corrected"), RPT_CORRECTED);
    cr_expect_eq(rpt_status_parse("cancelled"), -1);
}

/* ---- drafts ---- */

Test(report, only_the_claim_holder_creates_and_edits)
{
    char id[RPT_ID_MAX], other[RPT_ID_MAX];
    long long rev, nrev;
    rpt_why why;
    index_study(STUDY, 3, "CT");
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, id, &rev, &why), -EBUSY,
                 "no claim yet");
    cr_expect_str_eq(why.code, "not_claim_holder");
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_tech, t0, id, &rev, &why), -EPERM);
    claim(STUDY, &k_reader);
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_reader2, t0, id, &rev, &why), -EBUSY);
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_ecg, t0, id, &rev, &why), -EBUSY,
                 "another center's reader holds no claim here");
    cr_assert_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, id, &rev, &why), 0, "%s", why.detail);
    cr_expect_str_eq(id, "r1-" STUDY);
    cr_expect_eq(rev, 0);
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, other, &rev, &why), HR_ESTATE);
    cr_expect_str_eq(why.code, "open_report");
    cr_expect_str_eq(other, id, "the open report is named");

    json_t *ct = content("所见", "印象");
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader2, 0, ct, t0, &nrev, &why), -EBUSY);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_ecg, 0, ct, t0, &nrev, &why), -EPERM);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0 + 600 * 1000, &nrev, &why), -EBUSY,
                 "the lease has ended at that time");
    cr_assert_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0, &nrev, &why), 0, "%s", why.detail);
    cr_expect_eq(nrev, 1);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0, &nrev, &why), HR_ESTATE,
                 "a stale revision");
    cr_expect_str_eq(why.code, "stale_rev");
    cr_expect_eq(nrev, 1, "the current revision is returned");
    json_decref(ct);
    /* a partial save keeps the other members */
    json_t *part = json_pack("{s:b}", "critical", 1);
    cr_assert_eq(rpt_save(c_, &cfg, id, &k_reader, 1, part, t0, &nrev, &why), 0);
    json_decref(part);
    rpt_info info;
    cr_assert_eq(rpt_get(c_, id, &info), 0);
    cr_expect_eq(info.rev, 2);
    cr_expect_eq(info.status, RPT_DRAFT);
    cr_expect_str_eq(json_string_value(json_object_get(info.draft, "findings")), "所见");
    cr_expect(json_is_true(json_object_get(info.draft, "critical")));
    rpt_info_free(&info);
    /* the worklist item is untouched by drafts */
    cr_expect_eq(item(STUDY).state, WL_CLAIMED);
}

Test(report, draft_content_is_bounded)
{
    char id[RPT_ID_MAX];
    long long rev, nrev;
    rpt_why why;
    index_study(STUDY, 1, "CT");
    claim(STUDY, &k_reader);
    cr_assert_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, id, &rev, &why), 0);
    char *big = malloc(RPT_TEXT_MAX + 2);
    memset(big, 'a', RPT_TEXT_MAX + 1);
    big[RPT_TEXT_MAX + 1] = '\0';
    json_t *ct = json_pack("{s:s}", "findings", big);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0, &nrev, &why), -EINVAL);
    cr_expect_str_eq(why.code, "too_large");
    json_decref(ct);
    big[RPT_TEXT_MAX] = '\0'; /* exactly the limit */
    ct = json_pack("{s:s}", "impression", big);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 0, ct, t0, &nrev, &why), 0);
    json_decref(ct);
    free(big);
    json_t *codes = json_array();
    for (int i = 0; i < RPT_ITEMS_MAX + 1; i++)
        json_array_append_new(codes, json_pack("{s:s, s:s}", "system", "icd10", "code", "R93.0"));
    ct = json_pack("{s:o}", "codes", codes);
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 1, ct, t0, &nrev, &why), -EINVAL);
    json_decref(ct);
    ct = json_pack("{s:s}", "summary", "x");
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 1, ct, t0, &nrev, &why), -EINVAL);
    cr_expect_str_eq(why.code, "bad_content");
    json_decref(ct);
    ct = json_pack("{s:s}", "findings", "bell\a");
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 1, ct, t0, &nrev, &why), -EINVAL);
    json_decref(ct);
    ct = json_pack("{s:[s]}", "recognition", "CT-HEAD");
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 1, ct, t0, &nrev, &why), -EINVAL);
    cr_expect_str_eq(why.code, "recognition_not_configured");
    json_decref(ct);
    rpt_info info;
    cr_assert_eq(rpt_get(c_, id, &info), 0);
    cr_expect_eq(info.rev, 1, "refused saves change nothing");
    rpt_info_free(&info);
}

/* ---- signing ---- */

Test(report, wrong_pin_signs_nothing_and_locks)
{
    char id[RPT_ID_MAX];
    int k;
    rpt_why why;
    make_key("rd1");
    drafted(id);
    for (int i = 1; i < RPT_PIN_FAILURES; i++) {
        cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, "000000", -1, t0, &k, &why), -EACCES);
        cr_expect_str_eq(why.code, "wrong_pin");
    }
    rpt_info info;
    cr_assert_eq(rpt_get(c_, id, &info), 0);
    cr_expect_eq(info.versions, 0, "nothing signed");
    cr_expect_eq(info.status, RPT_DRAFT);
    rpt_info_free(&info);
    cr_expect_eq(zcard("hr:rpt:outbox"), 0);
    cr_expect_eq(item(STUDY).state, WL_CLAIMED);
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, "000000", -1, t0, &k, &why), -EACCES,
                 "the 5th wrong PIN");
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, -1, t0, &k, &why), -EAGAIN,
                 "locked: even the right PIN");
    cr_expect_str_eq(why.code, "pin_locked");
    cr_expect_gt(why.retry_after_s, RPT_PIN_LOCK_S - 5);
    cmd_ok("DEL hr:rpt:pin:{rd1}:lock");
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, -1, t0, &k, &why), 0, "%s", why.detail);
}

Test(report, no_key_and_no_claim_sign_nothing)
{
    char id[RPT_ID_MAX];
    int k;
    rpt_why why;
    drafted(id);
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, -1, t0, &k, &why), HR_ECERT);
    cr_expect_str_eq(why.code, "no_signing_key");
    make_key("rd2");
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader2, PIN, -1, t0, &k, &why), -EBUSY,
                 "rd2 holds no claim");
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, 0, t0, &k, &why), HR_ESTATE,
                 "a stale revision");
    cr_expect_str_eq(why.code, "stale_rev");
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_tech, PIN, -1, t0, &k, &why), -EPERM);
}

/* A string member of a JSON object, "" when absent. */
static const char *js(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *v = o;
    for (char *p = strtok(buf, "."); p && v; p = strtok(NULL, "."))
        v = json_object_get(v, p);
    return json_is_string(v) ? json_string_value(v) : "";
}

Test(report, sign_builds_the_payload_of_decision_0022)
{
    char id[RPT_ID_MAX], digest[65];
    int k, count;
    rpt_why why;
    make_key("rd1");
    drafted(id);
    cr_assert_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, 1, t0 + 5, &k, &why), 0, "%s", why.detail);
    cr_expect_eq(k, 1);
    rpt_version v;
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.version, 1);
    cr_expect_eq(v.status, RPT_PRELIMINARY, "imaging has audit_signoff");
    /* verified by jws.c, the payload checked member by member */
    rpt_verify_result res;
    cr_assert_eq(rpt_jws_verify(v.jws, strlen(v.jws), NULL, &res), 0, "%s", res.why);
    json_t *p = res.payload;
    cr_expect(json_equal(p, v.payload));
    cr_expect_str_eq(js(p, "typ"), "huren-report");
    cr_expect_eq(json_integer_value(json_object_get(p, "schema")), 1);
    cr_expect_str_eq(js(p, "report.id"), id);
    cr_expect_str_eq(js(p, "report.status"), "preliminary");
    cr_expect(json_is_null(json_object_get(json_object_get(p, "report"), "supersedes")));
    cr_expect_str_eq(js(p, "exam.study_uid"), STUDY);
    cr_expect_str_eq(js(p, "exam.accession"), "ACC-7");
    cr_expect_str_eq(js(p, "exam.hospital"), "township1");
    cr_expect_str_eq(js(p, "exam.center"), "imaging");
    cr_expect_str_eq(js(p, "exam.modality"), "CT");
    cr_expect_str_eq(js(p, "exam.study_date"), "20270115");
    cr_expect_str_eq(js(p, "patient.id"), "P1");
    cr_expect_str_eq(js(p, "patient.name"), "张^三");
    cr_expect_str_eq(js(p, "content.impression"), "颅脑CT平扫未见异常。");
    images_digest(STUDY, digest, &count);
    cr_expect_eq(count, 5);
    cr_expect_str_eq(js(p, "images.digest"), digest, "the images digest over sorted lines");
    cr_expect_str_eq(js(p, "images.order"), "sop-uid-bytewise");
    json_t *inst = json_object_get(json_object_get(p, "images"), "instances");
    cr_expect_eq(json_array_size(inst), 5);
    for (size_t i = 1; i < json_array_size(inst); i++)
        cr_expect_lt(
            strcmp(js(json_array_get(inst, i - 1), "sop"), js(json_array_get(inst, i), "sop")), 0,
            "bytewise order");
    json_t *signers = json_object_get(p, "signers");
    cr_expect_eq(json_array_size(signers), 1);
    cr_expect_str_eq(js(json_array_get(signers, 0), "user"), "rd1");
    cr_expect_str_eq(js(json_array_get(signers, 0), "name"), "李医生");
    cr_expect_str_eq(js(json_array_get(signers, 0), "function"), "author");
    cr_expect_str_eq(js(json_array_get(signers, 0), "hospital"), "county");
    cr_expect_eq(strlen(js(p, "signed_at")), 24);
    json_decref(res.payload);
    /* the digest is that of the compact JWS */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[32];
    char hex[65];
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, v.jws, strlen(v.jws));
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    cr_expect_str_eq(v.digest, hex);
    rpt_version_free(&v);
    /* the worklist: reported, the claim ended; a preliminary is not delivered */
    wl_item it = item(STUDY);
    cr_expect_eq(it.state, WL_REPORTED);
    cr_expect_str_eq(it.reported_by, "rd1");
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zcard("hr:rpt:outbox"), 0);
    /* the draft is no longer editable */
    long long nrev;
    json_t *ct = content("x", "y");
    cr_expect_eq(rpt_save(c_, &cfg, id, &k_reader, 1, ct, t0, &nrev, &why), HR_ESTATE);
    json_decref(ct);
}

Test(report, cosign_amend_retract)
{
    char id[RPT_ID_MAX], id2[RPT_ID_MAX];
    int k;
    long long rev;
    rpt_why why;
    rpt_version v;
    make_key("rd1");
    make_key("rd2");
    make_key("aud1");
    drafted(id);
    cr_expect_eq(rpt_cosign(c_, &cfg, id, &k_auditor, PIN, t0, &k, &why), HR_ESTATE,
                 "nothing to co-sign yet");
    cr_assert_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, -1, t0 + 10, &k, &why), 0, "%s",
                 why.detail);
    cr_expect_eq(rpt_cosign(c_, &cfg, id, &k_reader2, PIN, t0, &k, &why), -EPERM,
                 "a reader does not co-sign");
    cr_expect_eq(rpt_create(c_, &cfg, STUDY, &k_reader, t0, id2, &rev, &why), -EBUSY);
    cr_assert_eq(rpt_cosign(c_, &cfg, id, &k_auditor, PIN, t0 + 20, &k, &why), 0, "%s", why.detail);
    cr_expect_eq(k, 2);
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.version, 2);
    cr_expect_eq(v.status, RPT_FINAL);
    rpt_version v1;
    cr_assert_eq(rpt_version_get(c_, id, 1, &v1), 0);
    cr_expect_str_eq(js(v.payload, "cosigns"), v1.jws, "the final carries the preliminary's JWS");
    json_t *signers = json_object_get(v.payload, "signers");
    cr_expect_eq(json_array_size(signers), 2);
    cr_expect_str_eq(js(json_array_get(signers, 1), "user"), "aud1");
    cr_expect_str_eq(js(json_array_get(signers, 1), "function"), "authenticator");
    cr_expect_str_eq(js(v.payload, "content.findings"), js(v1.payload, "content.findings"));
    cr_expect_str_eq(js(v.payload, "images.digest"), js(v1.payload, "images.digest"));
    rpt_version_free(&v1);
    char v2digest[65];
    snprintf(v2digest, sizeof(v2digest), "%s", v.digest);
    rpt_version_free(&v);
    cr_expect_eq(item(STUDY).state, WL_FINAL);
    cr_expect(in_outbox("r1-" STUDY "/2"));
    cr_expect_eq(zcard("hr:rpt:outbox"), 1);

    /* a reader's amendment at an audit_signoff center awaits a co-signature */
    json_t *ct = json_pack("{s:s}", "impression", "补充：左侧基底节区腔隙灶。");
    cr_expect_eq(rpt_amend(c_, &cfg, id, &k_ecg, PIN, ct, 0, NULL, t0, &k, &why), -EPERM);
    cr_assert_eq(rpt_amend(c_, &cfg, id, &k_reader2, PIN, ct, 0, "补充", t0 + 30, &k, &why), 0,
                 "%s", why.detail);
    cr_expect_eq(k, 3);
    rpt_info info;
    cr_assert_eq(rpt_get(c_, id, &info), 0);
    cr_expect_eq(info.status, RPT_FINAL, "still final until co-signed");
    cr_expect_eq(info.current, 2);
    cr_expect_eq(info.pending, 3);
    rpt_info_free(&info);
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.version, 2, "k 0 is the current version, not the pending one");
    rpt_version_free(&v);
    cr_expect_eq(zcard("hr:rpt:outbox"), 1, "a pending amendment is not delivered");
    cr_expect_eq(rpt_amend(c_, &cfg, id, &k_auditor, PIN, ct, 0, NULL, t0, &k, &why), HR_ESTATE);
    cr_expect_str_eq(why.code, "amendment_pending");
    cr_expect_eq(rpt_cosign(c_, &cfg, id, &k_reader2, PIN, t0, &k, &why), -EPERM);
    cr_assert_eq(rpt_cosign(c_, &cfg, id, &k_auditor, PIN, t0 + 40, &k, &why), 0, "%s", why.detail);
    cr_expect_eq(k, 4);
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.version, 4);
    cr_expect_eq(v.status, RPT_AMENDED);
    cr_expect_str_eq(js(v.payload, "report.status"), "amended");
    json_t *sup = json_object_get(json_object_get(v.payload, "report"), "supersedes");
    cr_expect_eq(json_integer_value(json_object_get(sup, "version")), 2);
    cr_expect_str_eq(js(sup, "digest"), v2digest, "supersedes names version 2 by digest");
    cr_expect_str_eq(js(v.payload, "content.impression"), "补充：左侧基底节区腔隙灶。");
    cr_expect_str_eq(js(v.payload, "content.findings"), "脑实质未见异常密度影。", "kept");
    rpt_version_free(&v);
    cr_expect_eq(item(STUDY).state, WL_AMENDED);
    cr_expect(in_outbox("r1-" STUDY "/4"));
    json_decref(ct);

    /* an auditor's correction takes effect at once */
    ct = json_pack("{s:b}", "critical", 1);
    cr_assert_eq(rpt_amend(c_, &cfg, id, &k_auditor, PIN, ct, 1, "危急值", t0 + 50, &k, &why), 0);
    json_decref(ct);
    cr_expect_eq(k, 5);
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.status, RPT_CORRECTED);
    cr_expect_str_eq(js(v.payload, "report.reason"), "危急值");
    rpt_version_free(&v);
    cr_expect(in_outbox("r1-" STUDY "/5"));

    /* every earlier version stays readable and verifies */
    for (int i = 1; i <= 5; i++) {
        rpt_verify_result res;
        cr_assert_eq(rpt_version_get(c_, id, i, &v), 0);
        cr_expect_eq(rpt_jws_verify(v.jws, strlen(v.jws), NULL, &res), 0, "v%d: %s", i, res.why);
        json_decref(res.payload);
        rpt_version_free(&v);
    }

    /* retraction: not by another reader; by the author, with a reason */
    cr_expect_eq(rpt_retract(c_, &cfg, id, &k_reader2, PIN, "wrong patient", t0, &k, &why), -EPERM);
    cr_expect_eq(rpt_retract(c_, &cfg, id, &k_reader, PIN, "", t0, &k, &why), -EINVAL);
    cr_assert_eq(rpt_retract(c_, &cfg, id, &k_reader, PIN, "wrong patient", t0 + 60, &k, &why), 0,
                 "%s", why.detail);
    cr_expect_eq(k, 6);
    cr_assert_eq(rpt_version_get(c_, id, 0, &v), 0);
    cr_expect_eq(v.status, RPT_ENTERED_IN_ERROR);
    cr_expect_str_eq(js(v.payload, "report.reason"), "wrong patient");
    cr_expect_eq(json_array_size(json_object_get(v.payload, "recognition")), 0);
    rpt_version_free(&v);
    cr_expect(in_outbox("r1-" STUDY "/6"));
    cr_expect_eq(rpt_retract(c_, &cfg, id, &k_auditor, PIN, "again", t0, &k, &why), HR_ESTATE);
    cr_expect_eq(item(STUDY).state, WL_READY, "the exam is read again");

    /* a new report after a new claim */
    claim(STUDY, &k_reader2);
    cr_assert_eq(rpt_create(c_, &cfg, STUDY, &k_reader2, t0 + 70, id2, &rev, &why), 0, "%s",
                 why.detail);
    cr_expect_str_eq(id2, "r2-" STUDY);
    char ids[2][RPT_ID_MAX];
    enum rpt_status sts[2];
    const char *studies[2] = {STUDY, STUDY2};
    cr_assert_eq(rpt_latest(c_, studies, 2, ids, sts), 0);
    cr_expect_str_eq(ids[0], id2);
    cr_expect_eq(sts[0], RPT_DRAFT);
    cr_expect_str_eq(ids[1], "");
}

static int collect(void *arg, const char *id, enum rpt_status st)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s%s:%s", n ? " " : "", id, rpt_status_name(st));
    return 0;
}

Test(report, own_report_and_no_audit_center)
{
    char id[RPT_ID_MAX];
    int k;
    long long rev, nrev;
    rpt_why why;
    make_key("aud1");
    make_key("ecg1");
    /* the auditor reads and signs an exam himself: he cannot co-sign it */
    index_study(STUDY, 2, "CT");
    claim(STUDY, &k_auditor);
    cr_assert_eq(rpt_create(c_, &cfg, STUDY, &k_auditor, t0, id, &rev, &why), 0);
    json_t *ct = content("f", "i");
    cr_assert_eq(rpt_save(c_, &cfg, id, &k_auditor, 0, ct, t0, &nrev, &why), 0);
    cr_assert_eq(rpt_sign(c_, &cfg, id, &k_auditor, PIN, -1, t0, &k, &why), 0, "%s", why.detail);
    cr_expect_eq(rpt_cosign(c_, &cfg, id, &k_auditor, PIN, t0, &k, &why), HR_ESTATE);
    cr_expect_str_eq(why.code, "own_report");

    /* ecg has no audit_signoff: final at the first signature, delivered */
    char eid[RPT_ID_MAX];
    index_study(STUDY2, 1, "ECG");
    cr_expect_str_eq(item(STUDY2).center, "ecg");
    claim(STUDY2, &k_ecg);
    cr_assert_eq(rpt_create(c_, &cfg, STUDY2, &k_ecg, t0, eid, &rev, &why), 0);
    cr_assert_eq(rpt_save(c_, &cfg, eid, &k_ecg, 0, ct, t0, &nrev, &why), 0);
    cr_assert_eq(rpt_sign(c_, &cfg, eid, &k_ecg, PIN, 1, t0, &k, &why), 0, "%s", why.detail);
    json_decref(ct);
    rpt_version v;
    cr_assert_eq(rpt_version_get(c_, eid, 0, &v), 0);
    cr_expect_eq(v.status, RPT_FINAL);
    rpt_version_free(&v);
    cr_expect_eq(item(STUDY2).state, WL_FINAL);
    cr_expect(in_outbox("r1-" STUDY2 "/1"));
    /* a reader of a center without audit amends at once */
    ct = json_pack("{s:s}", "impression", "窦性心律");
    cr_assert_eq(rpt_amend(c_, &cfg, eid, &k_ecg, PIN, ct, 0, NULL, t0, &k, &why), 0);
    json_decref(ct);
    cr_assert_eq(rpt_version_get(c_, eid, 0, &v), 0);
    cr_expect_eq(v.status, RPT_AMENDED);
    rpt_version_free(&v);
    char list[512] = "";
    cr_assert_eq(rpt_study_reports(c_, STUDY2, collect, list), 0);
    cr_expect_str_eq(list, "r1-" STUDY2 ":amended");
    list[0] = '\0';
    cr_assert_eq(rpt_study_reports(c_, STUDY, collect, list), 0);
    cr_expect_str_eq(list, "r1-" STUDY ":preliminary");
}

Test(report, studies_over_the_instance_bound_are_not_signed)
{
    char id[RPT_ID_MAX];
    int k;
    rpt_why why;
    make_key("rd1");
    drafted(id);
    /* 50,001 instances in one series (their hashes need not exist: the
     * count is refused before any is read) */
    redisReply *r = redisCommand(
        c_, "EVAL %s 0 %s %d",
        "for i = 1, tonumber(ARGV[2]) do redis.call('ZADD', 'hr:{' .. ARGV[1] .. '}:se:big:i', i, "
        "ARGV[1] .. '.9.' .. i) end redis.call('ZADD', 'hr:{' .. ARGV[1] .. '}:se', 9, 'big') "
        "return 0",
        STUDY, RPT_INSTANCES_MAX - 4);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    cr_expect_eq(rpt_sign(c_, &cfg, id, &k_reader, PIN, -1, t0, &k, &why), HR_ETOOBIG,
                 "5 + 49,996 = 50,001 instances");
    cr_expect_str_eq(why.code, "too_many_instances");
    rpt_info info;
    cr_assert_eq(rpt_get(c_, id, &info), 0);
    cr_expect_eq(info.versions, 0);
    rpt_info_free(&info);
}
