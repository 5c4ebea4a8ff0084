/* reports/alert.c against a real redis-server (one per test): idempotent
 * raise, acknowledgement by the right and wrong hospital's users, read-back
 * checks, escalation step by step over time, bounded sweeps, notices,
 * listings and gauges. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "common/hr_time.h"
#include "reports/alert.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0   1800000000000LL
#define EXAM "1.2.826.0.1.3680043.2.1143.7"

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

static const char k_cfg[] =
    "{\"hospitals\": ["
    "  {\"id\": \"county\", \"level\": \"county\"},"
    "  {\"id\": \"township1\"}, {\"id\": \"township2\"}],"
    " \"centers\": [{\"id\": \"img\", \"kind\": \"imaging\", \"hospital\": \"county\"}],"
    " \"routing\": {\"rules\": [], \"default\": {\"center\": \"img\"}},"
    " \"alerts\": {\"ack_timeout_s\": 600, \"hospitals\": {"
    "   \"township1\": {\"ack_timeout_s\": 5, \"contacts\": ["
    "      {\"user\": \"doc1\", \"name\": \"Dr One\", \"channels\": [\"sse\", \"hl7\"]},"
    "      {\"user\": \"doc2\", \"channels\": [\"webhook\"]}],"
    "    \"hl7\": {\"host\": \"127.0.0.1\", \"port\": 2575},"
    "    \"webhook\": {\"url\": \"http://127.0.0.1:9/hook\"}}},"
    "  \"duty\": {\"imaging\": \"dutydoc\", \"lab\": \"labduty\"}}}";

static void setup(void)
{
    char err[256];
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    rc_ = ts_redis_connect(redis.sock, 10000);
    cr_assert_not_null(rc_);
    cr_assert_eq(hr_config_load_string(k_cfg, &cfg, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

TestSuite(alert, .init = setup, .fini = teardown, .timeout = 120);

static alr_source src(const char *ref, const char *value)
{
    alr_source s = {.kind = "lab",
                    .exam = EXAM,
                    .ref = ref,
                    .hospital = "township1",
                    .center = "img",
                    .patient = "township1|P1",
                    .patient_name = "张三",
                    .item = "K",
                    .item_name = "Potassium",
                    .value = value,
                    .flag = "HH",
                    .detail = "3.5-5.5",
                    .now_ms = T0};
    return s;
}

static long long zcard(const char *key)
{
    char v[64];
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "ZCARD %s", key), 0);
    return atoll(v);
}

static const char *state_of(const char *id, char *buf, size_t cap)
{
    json_t *a = NULL;
    cr_assert_eq(alr_get(rc_, id, 0, &a), 0);
    snprintf(buf, cap, "%s", json_string_value(json_object_get(a, "state")));
    json_decref(a);
    return buf;
}

static const char *target_of(const char *id, char *buf, size_t cap)
{
    json_t *a = NULL;
    cr_assert_eq(alr_get(rc_, id, 0, &a), 0);
    snprintf(buf, cap, "%s", json_string_value(json_object_get(a, "target")));
    json_decref(a);
    return buf;
}

Test(alert, raise_is_idempotent)
{
    char id[ALR_ID_MAX], id2[ALR_ID_MAX], st[32];
    int created = -1;
    alr_source s = src("obx:1", "6.8 mmol/L");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    cr_assert_eq(created, 1);
    cr_assert_eq(strlen(id), 25);
    cr_assert_eq(id[0], 'A');
    s.now_ms += 1000;
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id2, &created), 0);
    cr_assert_eq(created, 0);
    cr_assert_str_eq(id, id2);
    cr_assert_eq(zcard(ALR_TIME_KEY), 1);
    cr_assert_eq(zcard("hr:alr:ix:h:township1"), 1);
    cr_assert_eq(zcard(ALR_DUE_KEY), 1);
    /* sse is a channel of step 0: notified at once; hl7 queued */
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "notified");
    cr_assert_eq(zcard(ALR_NOTIFY_KEY), 1);
    /* another observation: another alert */
    s = src("obx:2", "1.9 mmol/L");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id2, &created), 0);
    cr_assert_eq(created, 1);
    cr_assert_str_neq(id, id2);
    /* garbage refused */
    s.exam = "1.2.3}x";
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id2, &created), -EINVAL);
    s = src("obx:3", "");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id2, &created), -EINVAL);
    alr_stats st2;
    cr_assert_eq(alr_stats_get(rc_, T0, &st2), 0);
    cr_assert_eq(st2.raised, 2);
    cr_assert_eq(st2.open, 2);
}

Test(alert, readback_rules)
{
    cr_assert(alr_readback_matches("6.8 mmol/L", "6.8 mmol/L"));
    cr_assert(alr_readback_matches("6.8 mmol/L", "  6.80MMOL/l "));
    cr_assert(alr_readback_matches("6.8 mmol/L", "钾 6.8 mmol/L"));
    cr_assert(alr_readback_matches("6.8 mmol/L", "６.８ ｍｍｏｌ／Ｌ"));
    cr_assert(alr_readback_matches("12 µmol/L", "12 umol/l"));
    cr_assert(alr_readback_matches("<0.5 g/L", "0.5 g/L"));
    cr_assert(alr_readback_matches("<0.5 g/L", "<0.5 g/L"));
    cr_assert(alr_readback_matches("<0.5 g/L", "小于 0.5 g/L"));
    /* review: the comparison turned round is another result */
    cr_assert_not(alr_readback_matches("<0.5 g/L", ">0.5 g/L"));
    cr_assert_not(alr_readback_matches("<0.5 g/L", "大于0.5 g/L"));
    cr_assert_not(alr_readback_matches("<0.5 g/L", "＞0.5 g/L"));
    cr_assert_not(alr_readback_matches(">35 mmol/L", "<35 mmol/L"));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", "<6.8 mmol/L"));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", "6.3 mmol/L"));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", "6.8"));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", "6.8 mg/dL"));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", ""));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", NULL));
    cr_assert_not(alr_readback_matches("6.8 mmol/L", "收到"));
    /* a reader's finding: the text, without spaces, punctuation and case */
    cr_assert(alr_readback_matches("左侧张力性气胸", "左侧 张力性气胸。"));
    cr_assert(alr_readback_matches("Tension pneumothorax, left", "tension pneumothorax left"));
    cr_assert_not(alr_readback_matches("左侧张力性气胸", "收到"));
    cr_assert_not(alr_readback_matches("左侧张力性气胸", "右侧张力性气胸"));
}

Test(alert, ack_rules)
{
    char id[ALR_ID_MAX], st[32];
    int created, res = -1;
    alr_source s = src("obx:1", "6.8 mmol/L");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    /* another hospital's user: refused, nothing changes */
    cr_assert_eq(alr_ack(rc_, &cfg, id, "t2doc", "township2", "6.8 mmol/L", T0 + 10, &res), 0);
    cr_assert_eq(res, ALR_ACK_FORBIDDEN);
    /* the right hospital, a wrong read-back: refused and counted */
    cr_assert_eq(alr_ack(rc_, &cfg, id, "nurse", "township1", "6.3 mmol/L", T0 + 20, &res), 0);
    cr_assert_eq(res, ALR_ACK_READBACK);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "notified");
    cr_assert_eq(zcard(ALR_DUE_KEY), 1);
    /* unknown / malformed ids */
    cr_assert_eq(alr_ack(rc_, &cfg, "A000000000000000000000000", "nurse", "township1", "6.8 mmol/L",
                         T0, &res),
                 HR_ENOTFOUND);
    cr_assert_eq(alr_ack(rc_, &cfg, "../x", "nurse", "township1", "6.8", T0, &res), -EINVAL);
    /* right */
    cr_assert_eq(alr_ack(rc_, &cfg, id, "nurse", "township1", "6.8 mmol/l", T0 + 30, &res), 0);
    cr_assert_eq(res, ALR_ACK_OK);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "acknowledged");
    cr_assert_eq(zcard(ALR_DUE_KEY), 0);
    cr_assert_eq(alr_ack(rc_, &cfg, id, "nurse", "township1", "6.8 mmol/l", T0 + 40, &res), 0);
    cr_assert_eq(res, ALR_ACK_ALREADY);
    json_t *a = NULL;
    cr_assert_eq(alr_get(rc_, id, 1, &a), 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "acked_by")), "nurse");
    cr_assert_eq(json_integer_value(json_object_get(a, "readback_refused")), 1);
    json_t *log = json_object_get(a, "log");
    cr_assert(json_array_size(log) >= 4); /* raised, notify sse, refused, acknowledged */
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(log, json_array_size(log) - 1), "event")),
        "acknowledged");
    json_decref(a);
    alr_stats st2;
    cr_assert_eq(alr_stats_get(rc_, T0, &st2), 0);
    cr_assert_eq(st2.acked, 1);
    cr_assert_eq(st2.readback_refused, 1);
    cr_assert_eq(st2.open, 0);
    char v[32];
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v), "HGET hr:stat:%d al|ok|township1", hr_day_of(T0)), 0);
    cr_assert_str_eq(v, "1");
}

Test(alert, escalation_by_time)
{
    char id[ALR_ID_MAX], st[32], t[64];
    int created, moved = -1, res;
    alr_source s = src("obx:1", "6.8 mmol/L");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    cr_assert_str_eq(target_of(id, t, sizeof(t)), "doc1");
    /* not due yet */
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 4999, 10, &moved), 0);
    cr_assert_eq(moved, 0);
    /* step 1: doc2 (webhook only: escalated until it is delivered) */
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 5000, 10, &moved), 0);
    cr_assert_eq(moved, 1);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "escalated");
    cr_assert_str_eq(target_of(id, t, sizeof(t)), "doc2");
    /* the step's target may acknowledge whatever its hospital */
    /* step 2: the duty doctor of the imaging center */
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 10000, 10, &moved), 0);
    cr_assert_eq(moved, 1);
    cr_assert_str_eq(target_of(id, t, sizeof(t)), "dutydoc");
    cr_assert_eq(zcard("hr:alr:ix:u:dutydoc"), 1);
    alr_stats gs;
    cr_assert_eq(alr_stats_get(rc_, T0 + 15001, &gs), 0);
    cr_assert_eq(gs.overdue_now, 1);
    cr_assert_eq(gs.escalations, 2);
    /* after the last step: overdue_final, still open */
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 15000, 10, &moved), 0);
    cr_assert_eq(moved, 1);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "overdue_final");
    cr_assert_eq(zcard(ALR_DUE_KEY), 0);
    cr_assert_eq(zcard(ALR_FINAL_KEY), 1);
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 99000, 10, &moved), 0);
    cr_assert_eq(moved, 0);
    /* the duty doctor (no hospital of township1) acknowledges: late */
    cr_assert_eq(alr_ack(rc_, &cfg, id, "dutydoc", "county", "6.8 mmol/L", T0 + 20000, &res), 0);
    cr_assert_eq(res, ALR_ACK_OK);
    cr_assert_eq(zcard(ALR_FINAL_KEY), 0);
    char v[32];
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v), "HGET hr:stat:%d al|late|township1", hr_day_of(T0)), 0);
    cr_assert_str_eq(v, "1");
    json_t *q = NULL;
    cr_assert_eq(alr_stats_days(rc_, hr_day_of(T0), hr_day_of(T0), &q), 0);
    json_t *tot = json_object_get(q, "total");
    cr_assert_eq(json_integer_value(json_object_get(tot, "raised")), 1);
    cr_assert_eq(json_integer_value(json_object_get(tot, "acked_late")), 1);
    cr_assert_eq(json_integer_value(json_object_get(tot, "overdue_final")), 1);
    cr_assert_eq(json_integer_value(json_object_get(tot, "acked_in_time")), 0);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(tot, "by_hospital"), "township1"), "raised")),
                 1);
    cr_assert_eq(json_array_size(json_object_get(q, "days")), 1);
    json_decref(q);
    cr_assert_eq(alr_stats_days(rc_, hr_day_of(T0), hr_day_add(hr_day_of(T0), 400), &q), -EINVAL);
    /* another user of the county (not the target) may not */
    s = src("obx:9", "7.0 mmol/L");
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    cr_assert_eq(alr_ack(rc_, &cfg, id, "dutydoc", "county", "7.0 mmol/L", T0 + 1, &res), 0);
    cr_assert_eq(res, ALR_ACK_FORBIDDEN);
}

Test(alert, sweep_is_bounded)
{
    char id[ALR_ID_MAX], ref[32];
    int created, moved;
    for (int i = 0; i < 30; i++) {
        snprintf(ref, sizeof(ref), "obx:%d", i);
        alr_source s = src(ref, "6.8 mmol/L");
        cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    }
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 6000, 7, &moved), 0);
    cr_assert_eq(moved, 7);
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 6000, 100, &moved), 0);
    cr_assert_eq(moved, 23);
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 6000, 100, &moved), 0);
    cr_assert_eq(moved, 0);
}

Test(alert, notices_and_listing)
{
    char id[ALR_ID_MAX], st[32];
    int created, n = 0;
    alr_source s = src("obx:1", "6.8 mmol/L");
    s.now_ms = T0;
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    alr_notice nt[8];
    cr_assert_eq(alr_notice_claim(rc_, T0, 8, nt, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(nt[0].channel, "hl7");
    cr_assert_eq(nt[0].step, 0);
    cr_assert_eq(nt[0].stale, 0);
    cr_assert_eq(alr_notice_done(rc_, &nt[0], 0, "connection refused", T0 + 1, 1000), 0);
    alr_notice_free(&nt[0]);
    /* one claimer only; the retry comes later */
    cr_assert_eq(alr_notice_claim(rc_, T0 + 500, 8, nt, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(alr_notice_claim(rc_, T0 + 1001, 8, nt, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(nt[0].attempt, 2);
    cr_assert_eq(alr_notice_done(rc_, &nt[0], 1, "AA", T0 + 1002, 1000), 0);
    alr_notice_free(&nt[0]);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "notified");
    /* escalation to the webhook contact queues its notice */
    int moved;
    cr_assert_eq(alr_sweep(rc_, &cfg, T0 + 5000, 10, &moved), 0);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "escalated");
    cr_assert_eq(alr_notice_claim(rc_, T0 + 5000, 8, nt, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(nt[0].channel, "webhook");
    cr_assert_str_eq(nt[0].target, "doc2");
    cr_assert_eq(alr_notice_done(rc_, &nt[0], 1, "200", T0 + 5001, 1000), 0);
    alr_notice_free(&nt[0]);
    cr_assert_str_eq(state_of(id, st, sizeof(st)), "notified");

    /* listing: by hospital, newest first, paged on the index; three raised
     * in the same ms are not split nor lost at a page boundary */
    for (int i = 2; i <= 6; i++) {
        char ref[16];
        snprintf(ref, sizeof(ref), "obx:%d", i);
        s = src(ref, "6.8 mmol/L");
        s.now_ms = T0 + (i <= 4 ? 20 : i * 10);
        cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    }
    alr_query q = {.hospital = "township1", .limit = 3};
    json_t *page = NULL, *seen = json_object();
    char next[ALR_CURSOR_MAX];
    cr_assert_eq(alr_list(rc_, &q, &page, next), 0);
    cr_assert_eq(json_array_size(page), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(page, 0), "created_ms")),
                 T0 + 60);
    cr_assert_neq(next[0], '\0');
    int pages = 1, total = 0;
    for (;;) {
        size_t i;
        json_t *a;
        json_array_foreach(page, i, a)
        {
            cr_assert_null(json_object_get(seen, json_string_value(json_object_get(a, "id"))));
            json_object_set_new(seen, json_string_value(json_object_get(a, "id")), json_true());
            total++;
        }
        json_decref(page);
        if (!next[0])
            break;
        char cur[ALR_CURSOR_MAX];
        snprintf(cur, sizeof(cur), "%s", next);
        q.cursor = cur;
        cr_assert_eq(alr_list(rc_, &q, &page, next), 0);
        cr_assert(++pages < 10);
    }
    cr_assert_eq(total, 6, "every alert once: %d", total);
    json_decref(seen);
    q.cursor = "12-x";
    cr_assert_eq(alr_list(rc_, &q, &page, next), -EINVAL);
    /* another hospital sees none; a state filter */
    alr_query q2 = {.hospital = "township2", .limit = 10};
    cr_assert_eq(alr_list(rc_, &q2, &page, next), 0);
    cr_assert_eq(json_array_size(page), 0);
    json_decref(page);
    alr_query q3 = {.state = "escalated", .limit = 10};
    cr_assert_eq(alr_list(rc_, &q3, &page, next), 0);
    cr_assert_eq(json_array_size(page), 0);
    json_decref(page);
}

Test(alert, lab_without_center_goes_to_the_lab_duty)
{
    char id[ALR_ID_MAX];
    int created;
    alr_source s = src("obx:1", "6.8 mmol/L");
    s.center = "";
    s.hospital = "township2"; /* no contacts: the duty doctor is the only step */
    cr_assert_eq(alr_raise(rc_, &cfg, &s, id, &created), 0);
    json_t *a = NULL;
    cr_assert_eq(alr_get(rc_, id, 1, &a), 0);
    json_t *steps = json_object_get(a, "steps");
    cr_assert_eq(json_array_size(steps), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(steps, 0), "user")),
                     "labduty");
    cr_assert_str_eq(json_string_value(json_object_get(a, "target")), "labduty");
    json_decref(a);
}
