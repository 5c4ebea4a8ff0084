/* reports/lab.c: ORU^R01 checks and their ACKs, the exam UID, commit and
 * indexes, duplicates, corrections, critical values (alerts), review
 * routing, persons, and exactly-once after a crash between the index commit
 * and the duplicate marker, against a real redis-server. */
#include "common/hr_buf.h"
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/lab.h"
#include "reports/lab_config.h"
#include "reports/person.h"
#include "reports/recognition.h"
#include "storage/index.h"
#include "storage/journal.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0  1764000000000LL
#define HUB "HUREN"
#define NID "11010519491231002X"
#define MSH(ctl, fac, type, ver)                                                                   \
    "MSH|^~\\&|LIS|" fac "|HUREN|COUNTY|20251201083000||" type "|" ctl "|P|" ver "\r"
#define PID_ "PID|1||P123^^^^MR~" NID "^^^^ID||张^三||19700101|M\r"
#define OBR_(placer, filler, code)                                                                 \
    "OBR|1|" placer "|" filler "|" code "|||20251201080000||||||||DR1||||||20251201083000|||F\r"
#define OBX_K(seq, val, flag, st)                                                                  \
    "OBX|" seq "|NM|2823-3^Potassium^LN||" val "|mmol/L|3.5-5.3|" flag "|||" st                    \
    "|||20251201080000|||||||||TOWNLAB\r"
#define OBX_NA "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|137-147|N|||F|||20251201080000\r"

static char dir[512];
static ts_redis redis;
static redisContext *c;
static hr_config cfg;

static void load(const char *json)
{
    char err[256];
    hr_config_free(&cfg);
    memset(&cfg, 0, sizeof(cfg));
    cr_assert_eq(hr_config_load_string(json, &cfg, err, sizeof(err)), 0, "%s", err);
}

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    c = ts_redis_connect(redis.sock, 10000);
    cr_assert(c);
    memset(&cfg, 0, sizeof(cfg));
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}}}");
}

static void teardown(void)
{
    redisFree(c);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

TestSuite(lab, .init = setup, .fini = teardown, .timeout = 60);

static const lab_stored k_stored = {.segment = "1-node-1.jnl", .offset = 16, .len = 100};

/* Checks msg: 0 with *m, or HR_EPARSE with the ACK text in ack (cap 4096). */
static int check(const char *msg, const char *peer_hospital, lab_msg **m, char *ack)
{
    hr_buf b;
    lab_source src = {.hospital = peer_hospital, .peer = "127.0.0.1:1"};
    hr_buf_init(&b, 1 << 16);
    int rc = lab_msg_check(&cfg, (const uint8_t *)msg, strlen(msg), &src, HUB, T0, m, &b);
    snprintf(ack, 4096, "%.*s", (int)b.len, b.len ? (const char *)b.data : "");
    hr_buf_free(&b);
    return rc;
}

/* The whole blocking pipeline: check, seen?, commit, ACK. */
static void ingest(const char *msg, const char *peer_hospital, char *ack, long long now)
{
    lab_msg *m = NULL;
    int seen = 0, rc = check(msg, peer_hospital, &m, ack);
    if (rc == HR_EPARSE)
        return;
    cr_assert_eq(rc, 0, "%s", hr_strerror(rc));
    cr_assert_eq(lab_msg_seen(c, m, &seen), 0);
    if (!seen)
        cr_assert_eq(lab_msg_commit(c, &cfg, m, &k_stored, now, NULL), 0);
    hr_buf b;
    hr_buf_init(&b, 1 << 16);
    cr_assert_eq(lab_msg_ack(m, "AA", HUB, now, &b), 0);
    snprintf(ack, 4096, "%.*s", (int)b.len, (const char *)b.data);
    hr_buf_free(&b);
    lab_msg_free(m);
}

static long long integer(const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "%s", fmt);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void str(char *out, size_t cap, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s", fmt);
    snprintf(out, cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static const char *k_msg1 = MSH("CTL1", "TOWN1LIS", "ORU^R01^ORU_R01", "2.5.1")
    PID_ OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "6.8", "HH", "F") OBX_NA;

Test(lab, uid_is_a_dicom_uid_of_the_order)
{
    char a[HR_UID_MAX], b[HR_UID_MAX], d[HR_UID_MAX];
    lab_uid("township1", "FI1", "BMP", a);
    lab_uid("township1", "FI1", "BMP", b);
    lab_uid("township2", "FI1", "BMP", d);
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, d);
    cr_expect(strncmp(a, "2.25.", 5) == 0);
    cr_expect(strlen(a) <= 64 && strlen(a) > 10);
    cr_expect(strspn(a + 5, "0123456789") == strlen(a + 5));
    cr_expect(a[5] != '0' || a[6] == 0, "no leading zero");
}

Test(lab, ingest_commits_indexes_and_acks)
{
    char ack[4096], uid[HR_UID_MAX], v[256];
    ingest(k_msg1, "township1", ack, T0);
    cr_expect(strstr(ack, "MSA|AA|CTL1"), "%s", ack);
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_str_eq(jstr(r, "hospital"), "township1");
    cr_expect_str_eq(jstr(r, "filler"), "FI1");
    cr_expect_str_eq(jstr(r, "placer"), "PL1");
    cr_expect_str_eq(jstr(r, "date"), "20251201");
    cr_expect_str_eq(jstr(json_object_get(r, "patient"), "name"), "张^三");
    cr_expect_str_eq(jstr(json_object_get(r, "patient"), "key"), "township1|P123");
    json_t *obs = json_object_get(r, "obs");
    cr_assert_eq(json_array_size(obs), 2);
    json_t *k = json_array_get(obs, 0);
    cr_expect_str_eq(jstr(json_object_get(k, "code"), "system"), "LN");
    cr_expect_str_eq(jstr(k, "unit"), "mmol/L");
    cr_expect_str_eq(jstr(k, "performer"), "TOWNLAB");
    cr_expect_eq(json_real_value(json_object_get(k, "num")), 6.8);
    cr_expect_eq(json_real_value(json_object_get(k, "low")), 3.5);
    cr_expect_eq(json_real_value(json_object_get(k, "high")), 5.3);
    json_t *crit = json_object_get(r, "critical");
    cr_assert_eq(json_array_size(crit), 1);
    cr_expect_str_eq(jstr(json_array_get(crit, 0), "flag"), "HH");
    cr_expect_str_eq(jstr(json_array_get(crit, 0), "code"), "2823-3");
    json_t *msgs = json_object_get(r, "messages");
    cr_assert_eq(json_array_size(msgs), 1);
    cr_expect_eq(strlen(jstr(json_array_get(msgs, 0), "sha256")), 64);
    cr_expect_str_eq(jstr(json_object_get(json_array_get(msgs, 0), "journal"), "segment"),
                     "1-node-1.jnl");
    json_decref(r);
    /* the owner, like a study's */
    str(v, sizeof(v), "HGET hr:{%s}:st hospital", uid);
    cr_expect_str_eq(v, "township1");
    /* the indexes */
    cr_expect(integer("EXISTS hr:lab:ix:pt:township1|P123", "") == 1);
    redisReply *z = redisCommand(c, "ZSCORE hr:lab:ix:pt:township1|P123 %s", uid);
    cr_expect(z && z->type == REDIS_REPLY_STRING && strcmp(z->str, "20251201") == 0);
    freeReplyObject(z);
    cr_expect_eq(integer("ZCARD hr:lab:ix:date", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:test:2823-3", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:test:BMP", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:filler:township1|FI1", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:placer:township1|PL1", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:hosp:township1", ""), 1);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 1);
    /* the critical value became an alert before the ACK */
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 1);
    /* not reviewed: no worklist item */
    cr_expect_eq(integer("EXISTS hr:wl:{%s}", uid), 0);
}

Test(lab, duplicate_is_acked_again_without_a_second_copy)
{
    char ack[4096], uid[HR_UID_MAX], rev[32], rev2[32];
    lab_msg *m = NULL;
    int seen = -1;
    ingest(k_msg1, "township1", ack, T0);
    lab_uid("township1", "FI1", "BMP", uid);
    str(rev, sizeof(rev), "HGET hr:lab:{%s} rev", uid);
    cr_assert_eq(check(k_msg1, "township1", &m, ack), 0);
    cr_assert_eq(lab_msg_seen(c, m, &seen), 0);
    cr_expect_eq(seen, 1);
    /* even committed again (a race of two connections) nothing changes */
    cr_assert_eq(lab_msg_commit(c, &cfg, m, &k_stored, T0 + 5000, NULL), 0);
    lab_msg_free(m);
    ingest(k_msg1, "township1", ack, T0 + 6000);
    cr_expect(strstr(ack, "MSA|AA|CTL1"), "%s", ack);
    str(rev2, sizeof(rev2), "HGET hr:lab:{%s} rev", uid);
    cr_expect_str_eq(rev, rev2);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 1);
    cr_expect_eq(json_array_size(json_object_get(r, "obs")), 2);
    json_decref(r);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 1);
}

Test(lab, correction_supersedes_and_keeps_the_earlier_value)
{
    char ack[4096], uid[HR_UID_MAX];
    static const char *msg2 = MSH("CTL2", "TOWN1LIS", "ORU^R01", "2.4")
        PID_ OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "4.1", "N", "C");
    ingest(k_msg1, "township1", ack, T0);
    ingest(msg2, "township1", ack, T0 + 60000);
    cr_expect(strstr(ack, "MSA|AA|CTL2"), "%s", ack);
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    json_t *obs = json_object_get(r, "obs");
    cr_assert_eq(json_array_size(obs), 2, "the sodium stays, the potassium is replaced");
    json_t *k = json_array_get(obs, 0);
    cr_expect_str_eq(jstr(k, "value"), "4.1");
    cr_expect_str_eq(jstr(k, "status"), "C");
    cr_expect_str_eq(jstr(k, "msg"), "CTL2");
    json_t *hist = json_object_get(k, "history");
    cr_assert_eq(json_array_size(hist), 1);
    cr_expect_str_eq(jstr(json_array_get(hist, 0), "value"), "6.8");
    cr_expect_str_eq(jstr(json_array_get(hist, 0), "msg"), "CTL1");
    cr_expect_eq(json_array_size(json_object_get(r, "critical")), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 2);
    json_decref(r);
    cr_expect_eq(integer("ZCARD hr:lab:{%s}:msgs", uid), 2);
}

static void refused(const char *msg, const char *peer, const char *code, const char *err)
{
    char ack[4096];
    lab_msg *m = NULL;
    cr_expect_eq(check(msg, peer, &m, ack), HR_EPARSE, "%s", msg);
    cr_expect_null(m);
    cr_expect(strstr(ack, code), "want %s in %s", code, ack);
    cr_expect(strstr(ack, err), "want %s in %s", err, ack);
}

Test(lab, refusals_answer_ae_or_ar_with_the_location)
{
    refused(MSH("C1", "TOWN1LIS", "ADT^A01", "2.5.1") PID_, NULL, "MSA|AR|C1", "|200^");
    refused(MSH("C2", "TOWN1LIS", "ORU^R03", "2.5.1") PID_, NULL, "MSA|AR|C2", "|201^");
    refused(MSH("C3", "NOBODY", "ORU^R01", "2.5.1") PID_ OBR_("P", "F", "X"), NULL, "MSA|AR|C3",
            "|MSH^1^4|204^");
    /* a known facility, but not the peer's hospital */
    refused(MSH("C4", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("P", "F", "X"), "township2",
            "MSA|AR|C4", "|MSH^1^4|204^");
    refused(MSH("C5", "TOWN1LIS", "ORU^R01", "2.5.1") OBR_("P", "F", "X"), NULL, "MSA|AE|C5",
            "|PID^1|100^");
    refused(MSH("C6", "TOWN1LIS", "ORU^R01", "2.5.1") PID_, NULL, "MSA|AE|C6", "|OBR^1|100^");
    refused(MSH("C7", "TOWN1LIS", "ORU^R01", "2.5.1")
                PID_ OBR_("P", "F", "X") "OBX|1|NM|||5||||||F\r",
            NULL, "MSA|AE|C7", "|OBX^1^3|101^");
    refused(MSH("C8", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("P", "F", "X")
                OBX_K("1", "high", "", "F"),
            NULL, "MSA|AE|C8", "|OBX^1^5|102^");
    refused(MSH("C9", "TOWN1LIS", "ORU^R01", "2.5.1")
                PID_ OBR_("P", "F", "X") "OBX|1|ED|X^Y^L||AAA||||||F\r",
            NULL, "MSA|AE|C9", "|OBX^1^2|102^");
    refused(MSH("C10", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("P", "F", "X")
                OBX_K("1", "5", "", ""),
            NULL, "MSA|AE|C10", "|OBX^1^11|101^");
    refused(MSH("C11", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("", "", "X"), NULL, "MSA|AE|C11",
            "|OBR^1^3|101^");
    refused(MSH("C12", "TOWN1LIS", "ORU^R01", "2.6") PID_ OBR_("P", "F", "X"), NULL, "MSA|AR|C12",
            "|203^");
    refused("garbage without any MSH\r", NULL, "MSA|AR|", "ERR|");
    /* an OBX before any OBR */
    refused(MSH("C13", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBX_NA, NULL, "MSA|AE|C13",
            "|OBX^1|100^");
    /* default: MSH-4 equal to a hospital id */
    lab_msg *m = NULL;
    char ack[4096];
    cr_expect_eq(check(MSH("C14", "township2", "ORU^R01", "2.3") PID_ OBR_("P", "F", "X") OBX_NA,
                       "township2", &m, ack),
                 0, "%s", ack);
    lab_msg_free(m);
    /* nothing was stored by any of them */
    cr_expect_eq(integer("DBSIZE", ""), 0);
}

Test(lab, critical_flags_and_ranges_from_the_config)
{
    char ack[4096], uid[HR_UID_MAX];
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}, \"critical_flags\": [\"AA\"],"
         " \"critical_ranges\": [{\"test\": \"2345-7\", \"low\": 2.8, \"high\": 25,"
         " \"unit\": \"mmol/L\"}]}}");
    static const char *msg = MSH("CR1", "TOWN1LIS", "ORU^R01", "2.5.1")
        PID_ OBR_("P9", "F9",
                  "GLU^Glucose^L") "OBX|1|NM|2345-7^Glucose^LN||31.5|mmol/L|3.9-6.1|H|||F\r"
                                   "OBX|2|NM|2345-7^Glucose^LN|2|30|mg/dL|70-110|H|||F\r"
                                   "OBX|3|CWE|600-7^Blood culture^LN||POS^Positive^L||NEG|AA|||F\r"
                                   "OBX|4|SN|5803-2^pH^LN||<^4.5|||L|||F\r";
    ingest(msg, "township1", ack, T0);
    lab_uid("township1", "F9", "GLU", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    json_t *crit = json_object_get(r, "critical");
    cr_assert_eq(json_array_size(crit), 2, "%s", json_dumps(crit, 0));
    cr_expect_str_eq(jstr(json_array_get(crit, 0), "flag"), "range");
    cr_expect_str_eq(jstr(json_array_get(crit, 0), "seq"), "1");
    cr_expect_str_eq(jstr(json_array_get(crit, 1), "flag"), "AA");
    json_t *ph = json_array_get(json_object_get(r, "obs"), 3);
    cr_expect_str_eq(jstr(ph, "comparator"), "<");
    cr_expect_str_eq(jstr(ph, "value"), "<4.5");
    json_t *cx = json_array_get(json_object_get(r, "obs"), 2);
    cr_expect_str_eq(jstr(json_object_get(cx, "coded"), "code"), "POS");
    json_decref(r);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 2);
    /* without the config, AA is no critical value */
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}}}");
    ingest(MSH("CR2", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_(
               "P8", "F8", "CUL") "OBX|1|CWE|600-7^Blood culture^LN||POS^Positive^L||NEG|AA|||F\r",
           "township1", ack, T0);
    lab_uid("township1", "F8", "CUL", uid);
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "critical")), 0);
    json_decref(r);
}

Test(lab, exactly_once_after_a_crash_before_the_marker)
{
    char ack[4096], uid[HR_UID_MAX];
    lab_msg *m = NULL;
    int seen = -1;
    /* the journal has the message, the index commit ran, then kill -9:
     * no marker, no alert, no ACK */
    cr_assert_eq(check(k_msg1, "township1", &m, ack), 0);
    cr_assert_eq(lab_msg_commit_index(c, &cfg, m, &k_stored, T0), 0);
    lab_msg_free(m);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 0);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 0);
    /* the sender resends: not seen, committed again, same state once */
    cr_assert_eq(check(k_msg1, "township1", &m, ack), 0);
    cr_assert_eq(lab_msg_seen(c, m, &seen), 0);
    cr_expect_eq(seen, 0);
    lab_msg_free(m);
    ingest(k_msg1, "township1", ack, T0 + 30000);
    cr_expect(strstr(ack, "MSA|AA|CTL1"), "%s", ack);
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 1);
    cr_expect_eq(json_array_size(json_object_get(r, "obs")), 2);
    cr_expect_eq(
        json_array_size(json_object_get(json_array_get(json_object_get(r, "obs"), 0), "history")),
        0);
    json_decref(r);
    cr_expect_eq(integer("ZCARD hr:lab:{%s}:msgs", uid), 1);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 1);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 1);
}

Test(lab, review_rule_routes_to_the_lab_center_ready)
{
    char ack[4096], uid[HR_UID_MAX], v[64];
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}, \"review\": ["
         "{\"hospitals\": [\"township2\"], \"tests\": [\"2823-3\"], \"center\": \"lab\","
         " \"priority\": \"urgent\"}]}}");
    ingest(k_msg1, "township1", ack, T0);
    lab_uid("township1", "FI1", "BMP", uid);
    cr_expect_eq(integer("EXISTS hr:wl:{%s}", uid), 0, "township1 is not reviewed");
    ingest(MSH("R1", "township2", "ORU^R01", "2.5.1") PID_ OBR_("PL7", "FI7", "BMP")
               OBX_K("1", "4.0", "N", "F"),
           "township2", ack, T0);
    lab_uid("township2", "FI7", "BMP", uid);
    str(v, sizeof(v), "HGET hr:wl:{%s} center", uid);
    cr_expect_str_eq(v, "lab");
    str(v, sizeof(v), "HGET hr:wl:{%s} state", uid);
    cr_expect_str_eq(v, "ready");
    str(v, sizeof(v), "HGET hr:wl:{%s} priority", uid);
    cr_expect_str_eq(v, "urgent");
    str(v, sizeof(v), "HGET hr:wl:{%s} modality", uid);
    cr_expect_str_eq(v, "LAB");
    /* a bad rule is refused at load */
    char err[256];
    hr_config bad;
    memset(&bad, 0, sizeof(bad));
    cr_expect_eq(hr_config_load_string("{\"lab\": {\"review\": [{\"center\": \"imaging\"}]}}", &bad,
                                       err, sizeof(err)),
                 HR_ECONFIG);
    cr_expect(strstr(err, "lab.review[0].center"), "%s", err);
    hr_config_free(&bad);
}

Test(lab, person_index_by_national_id)
{
    char ack[4096], uid[HR_UID_MAX], person[RPT_PERSON_ID_LEN + 1];
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}}}");
    for (int i = 0; i < PIX_KEY_LEN; i++)
        cfg.persons->key[i] = (unsigned char)i;
    cfg.persons->have_key = 1;
    ingest(k_msg1, "township1", ack, T0);
    lab_uid("township1", "FI1", "BMP", uid);
    cr_assert_eq(rpt_person_by_patient(c, "township1|P123", person), 0);
    cr_expect_eq(integer("ZCARD hr:person:{%s}:lab", person), 1);
    json_t *list = NULL;
    cr_assert_eq(lab_person_reports(c, person, 10, &list), 0);
    cr_assert_eq(json_array_size(list), 1);
    cr_expect_str_eq(jstr(json_array_get(list, 0), "uid"), uid);
    json_decref(list);
    /* garbage ids */
    json_t *r = NULL;
    cr_expect_eq(lab_get(c, "1.2.3}x", &r), -EINVAL);
    cr_expect_eq(lab_get(c, "1.2.3", &r), HR_ENOTFOUND);
}

/* lab_msg_commit_batch: a batch is applied as the messages one by one
 * would be: in order for one report (a correction after its original in
 * the same batch), every index, person, alert and marker; again, nothing
 * changes. */
Test(lab, batch_commits_like_one_by_one)
{
    char ack[4096], uid1[HR_UID_MAX], uid2[HR_UID_MAX], person[RPT_PERSON_ID_LEN + 1];
    static const char *corr = MSH("CTL2", "TOWN1LIS", "ORU^R01", "2.4")
        PID_ OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "4.1", "N", "C");
    static const char *other = MSH("CTL3", "TOWN1LIS", "ORU^R01", "2.5.1")
        PID_ OBR_("PL2", "FI2", "K^Potassium^L") OBX_K("1", "2.1", "LL", "F");
    const char *msgs[] = {k_msg1, other, corr};
    lab_msg *ms[3];
    lab_stored st[3] = {k_stored, k_stored, k_stored};
    long long now[3] = {T0, T0 + 1, T0 + 2};
    int rcs[3] = {-1, -1, -1};
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}}}");
    for (int i = 0; i < PIX_KEY_LEN; i++)
        cfg.persons->key[i] = (unsigned char)i;
    cfg.persons->have_key = 1;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(check(msgs[i], "township1", &ms[i], ack), 0, "%s", ack);
    cr_assert_eq(lab_msg_commit_batch(c, &cfg, ms, st, now, 3, rcs), 0);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(rcs[i], 0, "message %d: %s", i, hr_strerror(rcs[i]));
    lab_uid("township1", "FI1", "BMP", uid1);
    lab_uid("township1", "FI2", "K", uid2);
    /* the correction after its original */
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid1, &r), 0);
    json_t *k = json_array_get(json_object_get(r, "obs"), 0);
    cr_expect_str_eq(jstr(k, "value"), "4.1");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(k, "history"), 0), "value"), "6.8");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r, "messages"), 0), "id"), "CTL1");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r, "messages"), 1), "id"), "CTL2");
    json_decref(r);
    cr_assert_eq(lab_get(c, uid2, &r), 0);
    cr_expect_str_eq(jstr(r, "filler"), "FI2");
    json_decref(r);
    /* indexes, person, alerts (CTL1's HH and CTL3's LL), markers */
    cr_expect_eq(integer("ZCARD hr:lab:ix:date", ""), 2);
    cr_expect_eq(integer("ZCARD hr:lab:ix:filler:township1|FI2", ""), 1);
    cr_expect_eq(integer("ZCARD hr:lab:ix:test:2823-3", ""), 2);
    cr_assert_eq(rpt_person_by_patient(c, "township1|P123", person), 0);
    cr_expect_eq(integer("ZCARD hr:person:{%s}:lab", person), 2);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 2);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 1);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL2", ""), 1);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL3", ""), 1);
    /* again (a resend after a crash before the ACKs): nothing changes */
    char rev[32], rev2[32];
    str(rev, sizeof(rev), "HGET hr:lab:{%s} rev", uid1);
    cr_expect_str_eq(rev, "2");
    for (int i = 0; i < 3; i++)
        rcs[i] = -1;
    cr_assert_eq(lab_msg_commit_batch(c, &cfg, ms, st, now, 3, rcs), 0);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(rcs[i], 0);
    str(rev2, sizeof(rev2), "HGET hr:lab:{%s} rev", uid1);
    cr_expect_str_eq(rev2, rev);
    cr_expect_eq(integer("ZCARD hr:lab:{%s}:msgs", uid1), 2);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 2);
    for (int i = 0; i < 3; i++)
        lab_msg_free(ms[i]);
    /* a person found by patient (no national-ID key): pipelined */
    static const char *third =
        MSH("CTL4", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL3", "FI3", "NA^Sodium^L") OBX_NA;
    cfg.persons->have_key = 0;
    cr_assert_eq(check(third, "township1", &ms[0], ack), 0, "%s", ack);
    cr_assert_eq(lab_msg_commit_batch(c, &cfg, ms, st, now, 1, rcs), 0);
    cr_expect_eq(rcs[0], 0);
    cr_expect_eq(integer("ZCARD hr:person:{%s}:lab", person), 3);
    lab_msg_free(ms[0]);
}

/* The report read with the duplicate check is stale by the commit (its
 * original was committed in between): the correction still applies after
 * it, nothing is lost. */
Test(lab, batch_with_a_stale_read_reads_again)
{
    char ack[4096], uid[HR_UID_MAX];
    static const char *corr = MSH("CTL2", "TOWN1LIS", "ORU^R01", "2.4")
        PID_ OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "4.1", "N", "C");
    lab_msg *ms[2];
    lab_stored st[2] = {k_stored, k_stored};
    long long now[2] = {T0, T0 + 1};
    int seen[2] = {-1, -1}, rcs[2] = {-1, -1};
    cr_assert_eq(check(k_msg1, "township1", &ms[0], ack), 0, "%s", ack);
    cr_assert_eq(check(corr, "township1", &ms[1], ack), 0, "%s", ack);
    cr_assert_eq(lab_msg_seen_batch(c, ms, 2, seen), 0);
    cr_expect(seen[0] == 0 && seen[1] == 0);
    cr_assert_eq(lab_msg_commit_batch(c, &cfg, ms, st, now, 1, rcs), 0);
    cr_expect_eq(rcs[0], 0);
    cr_assert_eq(lab_msg_commit_batch(c, &cfg, ms + 1, st + 1, now + 1, 1, rcs + 1), 0);
    cr_expect_eq(rcs[1], 0);
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    json_t *k = json_array_get(json_object_get(r, "obs"), 0);
    cr_expect_str_eq(jstr(k, "value"), "4.1");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(k, "history"), 0), "value"), "6.8");
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 2);
    json_decref(r);
    cr_assert_eq(lab_msg_seen_batch(c, ms, 2, seen), 0);
    cr_expect(seen[0] == 1 && seen[1] == 1);
    lab_msg_free(ms[0]);
    lab_msg_free(ms[1]);
}

/* ---- the asynchronous pipeline over a real journal ---- */

typedef struct ack_box {
    int calls, rc;
    char ack[4096];
} ack_box;

static void on_ack(void *arg, int rc, const uint8_t *ack, size_t len)
{
    ack_box *b = arg;
    b->calls++;
    b->rc = rc;
    snprintf(b->ack, sizeof(b->ack), "%.*s", (int)len, (const char *)ack);
}

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static int count_record(void *arg, uint32_t type, const uint8_t *data, size_t len, long long ms,
                        const sto_journal_pos *pos)
{
    (void)data, (void)len, (void)ms, (void)pos;
    if (type == LAB_JOURNAL_TYPE)
        (*(int *)arg)++;
    return 0;
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 20000 && !*flag; i++)
        uv_run(loop, UV_RUN_ONCE);
    cr_assert(*flag, "callback never ran");
}

Test(lab, ingest_journals_before_the_ack_and_reindex_rebuilds)
{
    uv_loop_t loop;
    lab_ctx *x = NULL;
    char jdir[600], uid[HR_UID_MAX];
    ack_box a = {0}, b = {0}, g = {0};
    int closed = 0, records = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(jdir, sizeof(jdir), "%s/journal/lab", dir);
    lab_opts o = {.loop = &loop,
                  .cfg = &cfg,
                  .redis_timeout_ms = 10000,
                  .journal_dir = jdir,
                  .node = "t",
                  .hub_facility = "HUB"};
    snprintf(o.redis_addr.host, sizeof(o.redis_addr.host), "%s", redis.sock);
    cr_assert_eq(lab_open(&o, &x), 0);
    lab_source src = {.hospital = "township1", .peer = "127.0.0.1:9"};
    cr_assert_eq(lab_ingest(x, (const uint8_t *)k_msg1, strlen(k_msg1), &src, on_ack, &a), 0);
    cr_expect_eq(a.calls, 0, "never from inside lab_ingest");
    run_until(&loop, &a.calls);
    cr_expect_eq(a.rc, 0);
    cr_expect(strstr(a.ack, "MSA|AA|CTL1"), "%s", a.ack);
    cr_expect(strstr(a.ack, "|HUB|"), "%s", a.ack);
    /* the duplicate: AA again, nothing journaled */
    cr_assert_eq(lab_ingest(x, (const uint8_t *)k_msg1, strlen(k_msg1), &src, on_ack, &b), 0);
    run_until(&loop, &b.calls);
    cr_expect(strstr(b.ack, "MSA|AA|CTL1"), "%s", b.ack);
    /* garbage: AR, nothing journaled */
    cr_assert_eq(lab_ingest(x, (const uint8_t *)"\x01\x02garbage", 9, &src, on_ack, &g), 0);
    run_until(&loop, &g.calls);
    cr_expect(strstr(g.ack, "MSA|AR"), "%s", g.ack);
    lab_close(x, on_closed, &closed);
    run_until(&loop, &closed);
    cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_assert_eq(sto_journal_scan(jdir, count_record, &records, NULL), 0);
    cr_expect_eq(records, 1, "the message once, byte for byte");
    /* the journal alone rebuilds the lab reports */
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *before = NULL, *after = NULL;
    cr_assert_eq(lab_get(c, uid, &before), 0);
    redisReply *r = redisCommand(c, "EVAL %s 0",
                                 "for _, k in ipairs(redis.call('KEYS', 'hr:lab*')) do "
                                 "redis.call('DEL', k) end return 0");
    freeReplyObject(r);
    cr_assert_eq(lab_get(c, uid, &after), HR_ENOTFOUND);
    long n = 0, refused_n = 0;
    cr_assert_eq(lab_reindex(c, &cfg, jdir, &n, &refused_n), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(refused_n, 0);
    cr_assert_eq(lab_get(c, uid, &after), 0);
    cr_expect(json_equal(json_object_get(before, "obs"), json_object_get(after, "obs")));
    json_t *m1 = json_array_get(json_object_get(before, "messages"), 0);
    json_t *m2 = json_array_get(json_object_get(after, "messages"), 0);
    cr_expect(json_equal(json_object_get(m1, "journal"), json_object_get(m2, "journal")));
    cr_expect_str_eq(jstr(m1, "sha256"), jstr(m2, "sha256"));
    json_decref(before);
    json_decref(after);
    cr_expect_eq(integer("ZCARD hr:alr:ix:time", ""), 1, "the alert is not raised twice");
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 1);
}

/* ---- recognition of lab items (decision 0041) ---- */

Test(lab, recognition_lists_lab_items_with_validity)
{
    char ack[4096], uid[HR_UID_MAX], person[RPT_PERSON_ID_LEN + 1];
    /* the default catalogue: K 7 days, glucose 30 days; reviewed by the lab
     * center, which passed QC for K and glucose */
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}, \"review\": ["
         "{\"hospitals\": [\"township1\"], \"center\": \"lab\"}]},"
         " \"recognition\": {\"qc\": [{\"center\": \"lab\", \"items\": [\"LAB-K\", \"LAB-GLU\"],"
         " \"passed_from\": \"2025-01-01\", \"passed_to\": \"2026-12-31\"}]}}");
    for (int i = 0; i < PIX_KEY_LEN; i++)
        cfg.persons->key[i] = (unsigned char)i;
    cfg.persons->have_key = 1;
    ingest(MSH("RC1", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_(
               "PL5", "FI5",
               "BMP") "OBX|1|NM|2823-3^Potassium^LN||4.4|mmol/L|3.5-5.3|N|||F|||20251201080000\r"
                      "OBX|2|NM|2345-7^Glucose^LN||5.1|mmol/L|3.9-6.1|N|||F|||20251201080000\r"
                      "OBX|3|NM|9999-9^Unknown^LN||1|U||N|||F|||20251201080000\r"
                      "OBX|4|NM|2951-2^Sodium^LN||139|mmol/L|137-147|N|||P|||20251201080000\r",
           "township1", ack, T0);
    lab_uid("township1", "FI5", "BMP", uid);
    cr_assert_eq(rpt_person_by_patient(c, "township1|P123", person), 0);
    json_t *out = NULL;
    /* judged on 2025-12-05: both valid */
    long long dec5 = 1764900000000LL; /* 2025-12-05 02:00 UTC */
    cr_assert_eq(rec_lab_results(c, &cfg, person, dec5, &out), 0);
    cr_assert_eq(json_array_size(out), 3, "K, glucose and the preliminary sodium; not 9999-9");
    json_t *k = json_array_get(out, 0), *g = json_array_get(out, 1), *na = json_array_get(out, 2);
    cr_expect_str_eq(jstr(k, "item"), "LAB-K");
    cr_expect_str_eq(jstr(k, "value"), "4.4");
    cr_expect_str_eq(jstr(k, "unit"), "mmol/L");
    cr_expect_str_eq(jstr(k, "range"), "3.5-5.3");
    cr_expect_str_eq(jstr(k, "observed"), "2025-12-01");
    cr_expect_str_eq(jstr(k, "valid_until"), "2025-12-08");
    cr_expect_str_eq(jstr(k, "study"), uid);
    cr_expect_str_eq(jstr(k, "center"), "lab");
    cr_expect(json_is_true(json_object_get(k, "recognizable")));
    cr_expect_str_eq(jstr(g, "item"), "LAB-GLU");
    cr_expect_str_eq(jstr(g, "valid_until"), "2025-12-31");
    cr_expect_str_eq(jstr(na, "reason"), "not_final");
    cr_expect(json_is_false(json_object_get(na, "recognizable")));
    json_decref(out);
    /* decisions on lab results (result id "<lab UID>~<item>"): only with a
       grant of the lab report; accept only of a recognizable one */
    char kres[HR_UID_MAX + 16], nares[HR_UID_MAX + 16];
    snprintf(kres, sizeof(kres), "%s~LAB-K", uid);
    snprintf(nares, sizeof(nares), "%s~LAB-NA", uid);
    rec_actor doc = {.user = "dr", .role = "reader", .hospital = "county", .doctor = "Dr"};
    json_t *d = NULL;
    cr_expect_eq(rec_decide(c, &cfg, &doc, kres, 1, 0, NULL, dec5, &d), HR_ENOTFOUND,
                 "no grant yet");
    cr_assert_eq(rec_grant(c, &cfg, "dr", person, uid, dec5), 0);
    cr_assert_eq(rec_decide(c, &cfg, &doc, kres, 1, 0, NULL, dec5, &d), 0);
    cr_expect_str_eq(jstr(d, "decision"), "accept");
    cr_expect_str_eq(jstr(d, "study"), uid);
    cr_expect_str_eq(jstr(d, "item"), "LAB-K");
    cr_expect_str_eq(jstr(d, "report"), "");
    cr_expect_str_eq(jstr(d, "center"), "lab");
    cr_expect(json_is_true(json_object_get(d, "recognizable")));
    json_decref(d);
    cr_expect_eq(rec_decide(c, &cfg, &doc, nares, 1, 0, NULL, dec5, &d), HR_ESTATE,
                 "a preliminary value is not accepted");
    cr_assert_eq(rec_decide(c, &cfg, &doc, nares, 0, REC_REJ_CONDITION_CHANGED, NULL, dec5, &d), 0);
    cr_expect_str_eq(jstr(d, "reason"), "condition_changed");
    json_decref(d);
    char other[HR_UID_MAX + 16];
    snprintf(other, sizeof(other), "%s~LAB-HBA1C", uid);
    cr_expect_eq(rec_decide(c, &cfg, &doc, other, 0, REC_REJ_CONDITION_CHANGED, NULL, dec5, &d),
                 HR_ENOTFOUND, "an item the report does not have");
    cr_assert_eq(rec_decisions_of_result(c, kres, &out), 0);
    cr_expect_eq(json_array_size(out), 1);
    json_decref(out);
    /* judged on 2025-12-20: K expired, glucose still valid */
    long long dec20 = dec5 + 15LL * 86400000LL;
    cr_assert_eq(rec_lab_results(c, &cfg, person, dec20, &out), 0);
    cr_expect_str_eq(jstr(json_array_get(out, 0), "reason"), "expired");
    cr_expect_str_eq(jstr(json_array_get(out, 1), "reason"), "recognizable");
    json_decref(out);
    /* a person without lab reports: empty */
    cr_assert_eq(rec_lab_results(c, &cfg, "p000000000000000000000000", dec5, &out), 0);
    cr_expect_eq(json_array_size(out), 0);
    json_decref(out);
    /* without the center's QC: qc_lapsed */
    load("{\"lab\": {\"facilities\": {\"TOWN1LIS\": \"township1\"}}}");
    cr_assert_eq(rec_lab_results(c, &cfg, person, dec5, &out), 0);
    cr_expect_str_eq(jstr(json_array_get(out, 0), "reason"), "qc_lapsed");
    json_decref(out);
}

Test(lab, two_obr_of_one_order_in_one_message_are_both_applied)
{
    char ack[4096], uid[HR_UID_MAX];
    ingest(MSH("TW1", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL6", "FI6", "BMP")
               OBX_K("1", "4.0", "N", "F") OBR_("PL6", "FI6", "BMP") OBX_NA,
           "township1", ack, T0);
    cr_expect(strstr(ack, "MSA|AA|TW1"), "%s", ack);
    lab_uid("township1", "FI6", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_eq(json_array_size(json_object_get(r, "obs")), 2);
    json_decref(r);
    /* and a resend changes nothing */
    ingest(MSH("TW1", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL6", "FI6", "BMP")
               OBX_K("1", "4.0", "N", "F") OBR_("PL6", "FI6", "BMP") OBX_NA,
           "township1", ack, T0 + 1000);
    cr_expect_eq(integer("ZCARD hr:lab:{%s}:msgs", uid), 2);
}

/* ---- review: a reused MSH-10, a report id taken by another hospital ---- */

/* Runs one message through the asynchronous pipeline (lab_ingest) over a
 * real journal; returns the ACK in b and the journal's lab records. */
static int pipeline(const char *msg, const char *peer_hospital, ack_box *b)
{
    uv_loop_t loop;
    lab_ctx *x = NULL;
    char jdir[600];
    int closed = 0, records = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(jdir, sizeof(jdir), "%s/journal/lab", dir);
    lab_opts o = {.loop = &loop,
                  .cfg = &cfg,
                  .redis_timeout_ms = 10000,
                  .journal_dir = jdir,
                  .node = "t",
                  .hub_facility = "HUB"};
    snprintf(o.redis_addr.host, sizeof(o.redis_addr.host), "%s", redis.sock);
    cr_assert_eq(lab_open(&o, &x), 0);
    lab_source src = {.hospital = peer_hospital, .peer = "127.0.0.1:9"};
    cr_assert_eq(lab_ingest(x, (const uint8_t *)msg, strlen(msg), &src, on_ack, b), 0);
    run_until(&loop, &b->calls);
    lab_close(x, on_closed, &closed);
    run_until(&loop, &closed);
    cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_assert_eq(sto_journal_scan(jdir, count_record, &records, NULL), 0);
    return records;
}

Test(lab, a_reused_control_id_with_other_content_is_refused_not_acked)
{
    char uid[HR_UID_MAX];
    ack_box a = {0}, b = {0}, d = {0};
    /* CTL1 again, another potassium: the LIS reused its control id (counter
     * reset, second analyser); an AA would tell it that 3.9 was stored */
    static const char *other = MSH("CTL1", "TOWN1LIS", "ORU^R01^ORU_R01", "2.5.1")
        PID_ OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "3.9", "N", "F") OBX_NA;
    /* the same message resent with a new MSH-7 is still a duplicate */
    static const char *resent =
        "MSH|^~\\&|LIS|TOWN1LIS|HUREN|COUNTY|20251201083512||ORU^R01^ORU_R01|CTL1|P|2.5.1\r" PID_
            OBR_("PL1", "FI1", "BMP^Basic metabolic panel^L") OBX_K("1", "6.8", "HH", "F") OBX_NA;
    cr_expect_eq(pipeline(k_msg1, "township1", &a), 1);
    cr_expect(strstr(a.ack, "MSA|AA|CTL1"), "%s", a.ack);
    cr_expect_eq(pipeline(other, "township1", &b), 1, "nothing more journaled");
    cr_expect(strstr(b.ack, "MSA|AR|CTL1"), "not AA: %s", b.ack);
    cr_expect(strstr(b.ack, "|205^"), "duplicate key identifier: %s", b.ack);
    cr_expect(strstr(b.ack, "|MSH^1^10|"), "at MSH-10: %s", b.ack);
    cr_expect_eq(pipeline(resent, "township1", &d), 1);
    cr_expect(strstr(d.ack, "MSA|AA|CTL1"), "%s", d.ack);
    /* and with LF line ends and no last CR (python3-hl7's mllp_send) */
    char lf[2048];
    ack_box e = {0};
    snprintf(lf, sizeof(lf), "%s", k_msg1);
    for (char *p = lf; *p; p++)
        if (*p == '\r')
            *p = '\n';
    lf[strlen(lf) - 1] = 0;
    cr_expect_eq(pipeline(lf, "township1", &e), 1);
    cr_expect(strstr(e.ack, "MSA|AA|CTL1"), "%s", e.ack);
    lab_uid("township1", "FI1", "BMP", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r, "obs"), 0), "value"), "6.8");
    cr_expect_eq(json_array_size(json_object_get(r, "messages")), 1);
    json_decref(r);
}

Test(lab, a_report_id_held_by_another_hospitals_study_is_not_taken_over)
{
    char uid[HR_UID_MAX], owner[64], v[64];
    ack_box a = {0};
    /* the lab report's UID is a public function of hospital, order number
     * and test code: township2 sends a DICOM study with township1's next
     * one first (sto_index_admit makes township2 its owner) */
    lab_uid("township1", "FI1", "BMP", uid);
    cr_assert_eq(sto_index_admit_sync(c, uid, "township2", 0, owner), 0);
    cr_expect_eq(pipeline(k_msg1, "township1", &a), 1, "journaled before the commit");
    cr_expect(strstr(a.ack, "MSA|AR|CTL1"), "refused for good, not AA nor AE: %s", a.ack);
    str(v, sizeof(v), "HGET hr:{%s}:st hospital", uid);
    cr_expect_str_eq(v, "township2", "the owner is unchanged");
    str(v, sizeof(v), "HGET hr:{%s}:st kind", uid);
    cr_expect_str_eq(v, "", "township2's study did not become a lab report");
    cr_expect_eq(integer("EXISTS hr:lab:{%s}", uid), 0, "township1's results not under it");
    cr_expect_eq(integer("EXISTS hr:lab:ix:pt:township1|P123", ""), 0);
    cr_expect_eq(integer("EXISTS hr:lab:msg:township1%%7CCTL1", ""), 0);
    cr_expect_eq(integer("EXISTS hr:alr:ix:time", ""), 0);
    /* two OBR, the second's UID taken: the first is not stored either */
    ack_box b = {0};
    char uid2[HR_UID_MAX];
    lab_uid("township1", "FI2", "BMP", uid2);
    cr_expect_eq(pipeline(MSH("CTL2", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL2", "FI2", "BMP")
                              OBX_NA OBR_("PL1", "FI1", "BMP") OBX_NA,
                          "township1", &b),
                 2);
    cr_expect(strstr(b.ack, "MSA|AR|CTL2"), "%s", b.ack);
    cr_expect(strstr(b.ack, "|OBR^2^3|205^"), "%s", b.ack);
    cr_expect_eq(integer("EXISTS hr:lab:{%s}", uid2), 0);
    cr_expect_eq(integer("EXISTS hr:{%s}:st", uid2), 0);
    /* the journal replay counts them refused and goes on */
    char jdir[600];
    long n = -1, refused_n = -1;
    snprintf(jdir, sizeof(jdir), "%s/journal/lab", dir);
    cr_expect_eq(lab_reindex(c, &cfg, jdir, &n, &refused_n), 0);
    cr_expect_eq(n, 0);
    cr_expect_eq(refused_n, 2);
    cr_expect_eq(integer("EXISTS hr:lab:{%s}", uid), 0);
    cr_expect_eq(integer("EXISTS hr:lab:{%s}", uid2), 0);
}

Test(lab, a_batch_writes_no_report_of_a_message_whose_other_report_is_taken)
{
    char uid[HR_UID_MAX], uid2[HR_UID_MAX], owner[64];
    ack_box a = {0}, b = {0};
    /* a first message loads the commit script: the next one is committed
     * by the batch (a script not loaded yet sends its message down the
     * sequential path, which checks every owner first) */
    pipeline(MSH("CTL0", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL9", "FI9", "BMP") OBX_NA,
             "township1", &a);
    cr_expect(strstr(a.ack, "MSA|AA|CTL0"), "%s", a.ack);
    lab_uid("township1", "FI1", "BMP", uid);
    cr_assert_eq(sto_index_admit_sync(c, uid, "township2", 0, owner), 0);
    lab_uid("township1", "FI2", "BMP", uid2);
    pipeline(MSH("CTL2", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL2", "FI2", "BMP")
                 OBX_NA OBR_("PL1", "FI1", "BMP") OBX_NA,
             "township1", &b);
    cr_expect(strstr(b.ack, "MSA|AR|CTL2"), "%s", b.ack);
    cr_expect_eq(integer("EXISTS hr:lab:{%s}", uid2), 0, "the report it owns is not written");
    cr_expect_eq(integer("EXISTS hr:{%s}:st", uid2), 0);
}

Test(lab, a_critical_coded_value_without_code_or_text_is_refused_at_the_check)
{
    char ack[4096];
    lab_msg *m = NULL;
    /* OBX-5 "^^L": not empty as a field, but no code and no text; flagged
     * HH it became an alert without a value, which alr_raise refuses: the
     * commit failed after the journal, AE, and the resend failed the same
     * way for ever (the LIS's queue stuck behind it) */
    static const char *msg = MSH("CE1", "TOWN1LIS", "ORU^R01", "2.5.1")
        PID_ OBR_("P7", "F7", "CUL") "OBX|1|CWE|600-7^Blood culture^LN||^^L||NEG|HH|||F\r";
    int rc = check(msg, "township1", &m, ack);
    if (rc == 0) {
        int r2 = lab_msg_commit(c, &cfg, m, &k_stored, T0, NULL);
        lab_msg_free(m);
        cr_assert_eq(r2, 0, "accepted at the check, then the commit fails: %s", hr_strerror(r2));
        return;
    }
    cr_expect_eq(rc, HR_EPARSE);
    cr_expect(strstr(ack, "MSA|AE|CE1"), "%s", ack);
    cr_expect(strstr(ack, "|OBX^1^5|"), "%s", ack);
}

Test(lab, an_observation_beyond_the_reports_cap_is_not_dropped_behind_an_aa)
{
    char uid[HR_UID_MAX];
    ack_box a = {0}, b = {0};
    /* 500 observations (the cap of one report) in a first message, then a
     * second message of the same order with a 501st: it used to be skipped
     * by the merge and acknowledged AA */
    char *m1 = NULL, *m2 = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *f = open_memstream(&m1, &n1);
    fputs(MSH("CAP1", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_("PL9", "FI9", "PANEL"), f);
    for (int i = 0; i < LAB_OBX_MAX; i++)
        fprintf(f, "OBX|%d|NM|T%d^Test %d^L||%d|U||N|||F\r", i + 1, i, i, i);
    fclose(f);
    f = open_memstream(&m2, &n2);
    fputs(MSH("CAP2", "TOWN1LIS", "ORU^R01", "2.5.1") PID_ OBR_(
              "PL9", "FI9", "PANEL") "OBX|1|NM|2823-3^Potassium^LN||7.1|mmol/L|3.5-5.3|HH|||F\r",
          f);
    fclose(f);
    pipeline(m1, "township1", &a);
    cr_expect(strstr(a.ack, "MSA|AA|CAP1"), "%s", a.ack);
    pipeline(m2, "township1", &b);
    lab_uid("township1", "FI9", "PANEL", uid);
    json_t *r = NULL;
    cr_assert_eq(lab_get(c, uid, &r), 0);
    size_t nobs = json_array_size(json_object_get(r, "obs"));
    json_decref(r);
    if (strstr(b.ack, "MSA|AA|CAP2"))
        cr_expect_eq(nobs, LAB_OBX_MAX + 1, "AA, but the potassium was dropped");
    else
        cr_expect(strstr(b.ack, "MSA|AR|CAP2") && strstr(b.ack, "|207^"),
                  "refused for good (not AE: the resend would fail the same way): %s", b.ack);
    free(m1);
    free(m2);
}
