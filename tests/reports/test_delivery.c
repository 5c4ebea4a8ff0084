/* reports/delivery.c against a real redis-server (one per test): expansion
 * of a version into deliveries, claims with leases (one winner among
 * concurrent claimers), results, backoff, repair of the due set, listing. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/delivery.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0    1800000000000LL
#define LEASE 60000
#define RPT   "r1-1.2.826.0.1.3680043.2.1143.1"

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

static const char k_cfg[] =
    "{\"hospitals\": ["
    "  {\"id\": \"county\", \"level\": \"county\"},"
    "  {\"id\": \"township1\", \"ae_titles\": [\"T1\"], \"addresses\": [\"127.0.0.1\"],"
    "   \"destinations\": [{\"ae_title\": \"T1PACS\", \"host\": \"127.0.0.1\", \"port\": 1}]},"
    "  {\"id\": \"township2\"}, {\"id\": \"township3\"}],"
    " \"delivery\": {\"retry_initial_s\": 10, \"retry_max_s\": 3600, \"failing_after\": 3,"
    "  \"hospitals\": {"
    "   \"township1\": {\"hl7\": {\"host\": \"127.0.0.1\", \"port\": 2575},"
    "                 \"dicom\": {\"ae_title\": \"T1PACS\", \"what\": [\"sr\", \"pdf\"]},"
    "                 \"webhook\": {\"url\": \"http://127.0.0.1:9/hook\"}},"
    "   \"township2\": {\"webhook\": {\"url\": \"https://t2.example.org/hook\"}},"
    "   \"township3\": {}}}}";

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

TestSuite(delivery, .init = setup, .fini = teardown, .timeout = 120);

static long long zcard(const char *key)
{
    char v[64];
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "ZCARD %s", key), 0);
    return atoll(v);
}

static long long zscore(const char *key, const char *member)
{
    char v[64];
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "ZSCORE %s %s", key, member), 0);
    return v[0] ? atoll(v) : -1;
}

static int claim(long long now, rpt_dlv_claim *out, int max)
{
    int n = -1;
    cr_assert_eq(rpt_delivery_claim(rc_, now, LEASE, max, out, &n), 0);
    return n;
}

Test(delivery, expand_is_idempotent)
{
    int created = -1;
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 1, "township1", T0, &created), 0);
    cr_expect_eq(created, 3);
    cr_expect_eq(zcard(RPT_DLV_DUE), 3);
    cr_expect_eq(zcard(RPT_DLV_PENDING), 3);
    cr_expect_eq(zscore(RPT_DLV_DUE, RPT "/1/hl7"), T0);
    char v[256];
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:dlv:{%s}:1:1:hl7 state", RPT + 3), 0);
    cr_expect_str_eq(v, "pending");
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v), "HGET hr:dlv:{%s}:1:1:dicom control_id", RPT + 3), 0);
    char cid[RPT_HL7_CONTROL_ID_MAX];
    rpt_delivery_control_id(RPT, 1, cid);
    cr_expect_str_eq(v, cid);
    cr_expect_eq(strlen(cid), 20);
    cr_expect(strncmp(cid, "HR", 2) == 0);
    char cid2[RPT_HL7_CONTROL_ID_MAX];
    rpt_delivery_control_id(RPT, 2, cid2);
    cr_expect_str_neq(cid, cid2, "each version its own control id");

    /* again, later, after one was leased: nothing new, nothing moved */
    rpt_dlv_claim cl[4];
    cr_assert_eq(claim(T0, cl, 1), 1);
    long long leased = zscore(RPT_DLV_DUE, cl[0].id);
    cr_expect_eq(leased, T0 + LEASE);
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 1, "township1", T0 + 5, &created), 0);
    cr_expect_eq(created, 0);
    cr_expect_eq(zcard(RPT_DLV_DUE), 3);
    cr_expect_eq(zscore(RPT_DLV_DUE, cl[0].id), leased, "a lease is not undone");

    /* a hospital with one channel, one with none, bad ids */
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, "r2-1.2.3", 1, "township2", T0, &created), 0);
    cr_expect_eq(created, 1);
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, "r3-1.2.3", 1, "township3", T0, &created), 0);
    cr_expect_eq(created, 0);
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, "r3-1.2.3", 1, "nowhere", T0, &created), 0);
    cr_expect_eq(created, 0);
    const char *bad[] = {"1-1.2.3", "r0-1.2.3", "r1-", "r1-1.2.x", "r1_1.2", "r1-1.2.3}x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(rpt_delivery_expand(rc_, &cfg, bad[i], 1, "township1", T0, &created), -EINVAL,
                     "%s", bad[i]);
    cr_expect_eq(rpt_delivery_expand(rc_, &cfg, RPT, 0, "township1", T0, &created), -EINVAL);
    cr_expect_eq(zcard(RPT_DLV_DUE), 4);
}

Test(delivery, claim_lease_and_results)
{
    rpt_dlv_claim cl[8];
    rpt_dlv_outcome o;
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 1, "township1", T0, NULL), 0);
    cr_expect_eq(claim(T0 - 1, cl, 8), 0, "nothing is due before its time");
    cr_assert_eq(claim(T0, cl, 8), 3);
    for (int i = 0; i < 3; i++) {
        cr_expect_str_eq(cl[i].report, RPT);
        cr_expect_eq(cl[i].version, 1);
        cr_expect_str_eq(cl[i].hospital, "township1");
        cr_expect_eq(cl[i].attempts, 0);
        cr_expect_eq(cl[i].created_ms, T0);
        cr_expect_eq(strlen(cl[i].token), 32);
    }
    rpt_dlv_claim again[8];
    cr_expect_eq(claim(T0 + 1000, again, 8), 0, "leased ones are not claimed twice");

    /* a failure: due again after the backoff (10 s, jitter 0.5..1) */
    rpt_dlv_claim *h = NULL;
    for (int i = 0; i < 3; i++)
        if (cl[i].channel == RPT_DLV_HL7)
            h = &cl[i];
    cr_assert_not_null(h);
    cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, h, 0, "connect:\tconnection refused\n",
                                     T0 + 2000, &o),
                 0);
    cr_expect(!o.delivered);
    cr_expect_eq(o.attempts, 1);
    cr_expect(o.next_ms >= T0 + 2000 + 5000 && o.next_ms <= T0 + 2000 + 10000, "%lld",
              o.next_ms - T0);
    cr_expect_eq(zscore(RPT_DLV_DUE, h->id), o.next_ms);
    cr_expect(!o.failing);
    cr_expect_eq(claim(o.next_ms - 1, again, 8), 0);
    cr_assert_eq(claim(o.next_ms, again, 8), 1);
    cr_expect_str_eq(again[0].id, h->id);
    cr_expect_eq(again[0].attempts, 1);
    cr_expect_str_neq(again[0].token, h->token);

    /* success: out of every set */
    cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, &again[0], 1, "AA", o.next_ms + 10, &o), 0);
    cr_expect(o.delivered);
    cr_expect_eq(o.attempts, 2);
    cr_expect_eq(zscore(RPT_DLV_DUE, h->id), -1);
    cr_expect_eq(zscore(RPT_DLV_PENDING, h->id), -1);

    /* a node stops mid-attempt: after the lease another claims it */
    cr_expect_eq(claim(T0 + LEASE - 1, again, 8), 0);
    cr_assert_eq(claim(T0 + LEASE, again, 8), 2);
    /* the first holder's late failure does not reschedule */
    rpt_dlv_claim *late = cl[0].channel == RPT_DLV_HL7 ? &cl[1] : &cl[0];
    cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, late, 0, "timeout", T0 + LEASE + 1, &o), 0);
    cr_expect_eq(zscore(RPT_DLV_DUE, late->id), T0 + 2 * LEASE, "still the new lease's end");
    /* ... but its late success counts: the receiver has it */
    cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, late, 1, "200", T0 + LEASE + 2, &o), 0);
    cr_expect(o.delivered);
    cr_expect_eq(zscore(RPT_DLV_DUE, late->id), -1);
    /* the new holder's result after that is only logged */
    for (int i = 0; i < 2; i++)
        if (strcmp(again[i].id, late->id) == 0) {
            cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, &again[i], 1, "200 again",
                                             T0 + LEASE + 3, &o),
                         0);
            cr_expect(o.delivered);
        }
    rpt_dlv_stats st;
    cr_assert_eq(rpt_delivery_stats(rc_, &st), 0);
    cr_expect_eq(st.pending, 1);
    cr_expect_eq(st.oldest_pending_ms, T0);
}

Test(delivery, failing_and_backoff)
{
    struct dlv_config *d = cfg.delivery;
    cr_expect_eq(rpt_delivery_backoff_ms(d, 1, 0.999999), 9999);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 1, 0), 5000);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 2, 0), 10000);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 3, 0), 20000);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 9, 0), 1280000);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 10, 0), 1800000, "capped at retry_max_s");
    cr_expect_eq(rpt_delivery_backoff_ms(d, 1000000, 0), 1800000);
    cr_expect_eq(rpt_delivery_backoff_ms(d, 1000000, 0.9999999), 3599999);

    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, "r1-1.2.3", 1, "township2", T0, NULL), 0);
    long long now = T0;
    rpt_dlv_claim cl;
    rpt_dlv_outcome o;
    for (int i = 1; i <= 150; i++) {
        cr_assert_eq(claim(now, &cl, 1), 1, "attempt %d", i);
        cr_assert_eq(rpt_delivery_finish(rc_, d, &cl, 0, "HTTP 503", now, &o), 0);
        cr_expect_eq(o.failing, i >= 3);
        cr_expect_leq(o.next_ms - now, 3600000);
        now = o.next_ms;
    }
    rpt_dlv_stats st;
    cr_assert_eq(rpt_delivery_stats(rc_, &st), 0);
    cr_expect_eq(st.pending, 1);
    cr_expect_eq(st.failing, 1);
    char v[32];
    ts_redis_get(&redis, v, sizeof(v), "LLEN hr:dlv:{1.2.3}:1:1:webhook:log");
    cr_expect_eq(atoi(v), RPT_DLV_LOG_KEEP, "the log keeps the last %d", RPT_DLV_LOG_KEEP);
    /* delivered at last: no longer failing nor pending */
    cr_assert_eq(claim(now, &cl, 1), 1);
    cr_assert_eq(rpt_delivery_finish(rc_, d, &cl, 1, "HTTP 200", now, &o), 0);
    cr_assert_eq(rpt_delivery_stats(rc_, &st), 0);
    cr_expect_eq(st.pending + st.failing, 0);
    cr_expect_eq(st.oldest_pending_ms, 0);
}

Test(delivery, due_set_is_repaired)
{
    rpt_dlv_claim cl[8];
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 1, "township1", T0, NULL), 0);
    char v[64];
    /* a delivered one still in the set (a node stopped between the script
     * and the set update), a rescheduled one with an old score, garbage */
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v), "HSET hr:dlv:{%s}:1:1:hl7 state delivered", RPT + 3), 0);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HSET hr:dlv:{%s}:1:1:dicom next_ms %lld",
                              RPT + 3, T0 + 99000),
                 0);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "ZADD %s %lld garbage/x", RPT_DLV_DUE, T0), 0);
    cr_assert_eq(claim(T0, cl, 8), 1);
    cr_expect_eq(cl[0].channel, RPT_DLV_WEBHOOK);
    cr_expect_eq(zscore(RPT_DLV_DUE, RPT "/1/hl7"), -1);
    cr_expect_eq(zscore(RPT_DLV_PENDING, RPT "/1/hl7"), -1);
    cr_expect_eq(zscore(RPT_DLV_DUE, RPT "/1/dicom"), T0 + 99000);
    cr_expect_eq(zscore(RPT_DLV_DUE, "garbage/x"), -1);
}

/* Several claimers at once on their own connections: each delivery is
 * claimed exactly once. */
#define N_RACE 60
typedef struct racer {
    int got[N_RACE];
    int n;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    redisContext *c = ts_redis_connect(redis.sock, 10000);
    rpt_dlv_claim cl[7];
    for (int round = 0; round < 40; round++) {
        int n = 0;
        if (rpt_delivery_claim(c, T0, LEASE, 7, cl, &n) != 0)
            break;
        for (int i = 0; i < n; i++) {
            int k = -1;
            sscanf(cl[i].report, "r%d-", &k);
            if (k >= 1 && k <= N_RACE)
                r->got[k - 1]++;
            r->n++;
        }
    }
    redisFree(c);
    return NULL;
}

Test(delivery, concurrent_claims)
{
    for (int i = 1; i <= N_RACE; i++) {
        char id[64];
        snprintf(id, sizeof(id), "r%d-1.2.3.%d", i, i % 5);
        cr_assert_eq(rpt_delivery_expand(rc_, &cfg, id, 1, "township2", T0, NULL), 0);
    }
    racer r[4];
    pthread_t t[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int total = 0;
    for (int k = 0; k < N_RACE; k++) {
        int c = 0;
        for (int i = 0; i < 4; i++)
            c += r[i].got[k];
        cr_expect_eq(c, 1, "r%d claimed %d times", k + 1, c);
        total += c;
    }
    cr_expect_eq(total, N_RACE);
}

typedef struct listed {
    int n;
    rpt_delivery d[8];
    char first_outcome[8][24];
    size_t n_log[8];
    char last_detail[8][64];
} listed;

static int on_delivery(void *arg, const rpt_delivery *d)
{
    listed *l = arg;
    if (l->n < 8) {
        l->d[l->n] = *d;
        l->n_log[l->n] = d->n_log;
        snprintf(l->first_outcome[l->n], 24, "%s", d->n_log ? d->log[0].outcome : "");
        snprintf(l->last_detail[l->n], 64, "%s", d->n_log ? d->log[d->n_log - 1].detail : "");
    }
    l->n++;
    return 0;
}

Test(delivery, list)
{
    rpt_dlv_claim cl[8];
    rpt_dlv_outcome o;
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 1, "township1", T0, NULL), 0);
    cr_assert_eq(claim(T0, cl, 8), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rpt_delivery_finish(rc_, cfg.delivery, &cl[i], cl[i].channel != RPT_DLV_HL7,
                                         cl[i].channel == RPT_DLV_HL7 ? "AE: 未知患者" : "ok",
                                         T0 + 10, &o),
                     0);
    cr_assert_eq(rpt_delivery_expand(rc_, &cfg, RPT, 2, "township1", T0 + 100, NULL), 0);
    cr_assert_eq(claim(T0 + 100, cl, 1), 1); /* one of version 2 is under way */
    listed l;
    memset(&l, 0, sizeof(l));
    cr_assert_eq(rpt_delivery_list(rc_, RPT, T0 + 200, on_delivery, &l), 0);
    cr_assert_eq(l.n, 6);
    const char *order[] = {"dicom", "hl7", "webhook"};
    int leased = 0;
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(l.d[i].version, i < 3 ? 1 : 2);
        cr_expect_str_eq(rpt_dlv_channel_name(l.d[i].channel), order[i % 3]);
        cr_expect_str_eq(l.d[i].hospital, "township1");
        cr_expect_str_eq(l.first_outcome[i], "queued");
        leased += l.d[i].leased;
    }
    cr_expect_eq(leased, 1);
    cr_expect(l.d[0].delivered && !l.d[1].delivered && l.d[2].delivered);
    cr_expect_eq(l.d[1].attempts, 1);
    cr_expect_str_eq(l.d[1].last_error, "AE: 未知患者");
    cr_expect_eq(l.n_log[1], 2);
    cr_expect_str_eq(l.last_detail[1], "AE: 未知患者");
    cr_expect_eq(l.d[0].delivered_ms, T0 + 10);
    memset(&l, 0, sizeof(l));
    cr_assert_eq(rpt_delivery_list(rc_, "r9-1.2.3", T0, on_delivery, &l), 0);
    cr_expect_eq(l.n, 0);
    cr_expect_eq(rpt_delivery_list(rc_, "bogus", T0, on_delivery, &l), -EINVAL);
}

/* The outbox the report script fills: delivered versions become deliveries,
 * others are dropped with a warning, an entry whose version cannot be read
 * waits without blocking the rest. Versions are written as the report
 * script stores them (hr:rpt:{S}:<n>:v:<k>: status and compact JWS). */
static void put_version(const char *study, int k, const char *status, const char *jws)
{
    char v[64];
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v),
                     "HSET hr:rpt:{%s}:1:v:%d status %s jws %s digest 00 signed_ms 1 tsr \"\"",
                     study, k, status, jws),
        0);
}

static void put_entry(const char *entry, long long score)
{
    char v[64];
    cr_assert_eq(
        ts_redis_get(&redis, v, sizeof(v), "ZADD %s %lld %s", RPT_DLV_OUTBOX, score, entry), 0);
}

#define P_T1                                                                                       \
    "eyJleGFtIjogeyJob3NwaXRhbCI6ICJ0b3duc2hpcDEifX0" /* {"exam": {"hospital": "township1"}} */
#define P_T3 "eyJleGFtIjogeyJob3NwaXRhbCI6ICJ0b3duc2hpcDMifX0" /* ... "township3" */

Test(delivery, outbox)
{
    put_version("1.2.3", 2, "final", "e30." P_T1 ".c2ln");
    put_version("1.2.4", 1, "preliminary", "e30." P_T1 ".c2ln");
    put_version("1.2.6", 1, "final", "e30.!!!.c2ln");
    put_version("1.2.7", 1, "amended", "e30." P_T3 ".c2ln");
    put_entry("r1-1.2.6/1", T0 - 10); /* first: it must not block the others */
    put_entry("r1-1.2.3/2", T0 - 5);
    put_entry("r1-1.2.4/1", T0 - 4);
    put_entry("r1-1.2.5/1", T0 - 3); /* no such version */
    put_entry("garbage", T0 - 2);
    put_entry("r1-1.2.7/1", T0 - 1);
    put_entry("r1-1.2.8/1", T0 + 1000); /* not yet */
    int taken = -1;
    cr_assert_eq(rpt_delivery_take_outbox(rc_, &cfg, T0, 100, &taken), 0);
    cr_expect_eq(taken, 5);
    cr_expect_eq(zcard(RPT_DLV_DUE), 3, "township1's three channels for r1-1.2.3/2");
    cr_expect_eq(zscore(RPT_DLV_DUE, "r1-1.2.3/2/webhook"), T0);
    cr_expect_eq(zcard(RPT_DLV_OUTBOX), 2);
    cr_expect_eq(zscore(RPT_DLV_OUTBOX, "r1-1.2.6/1"), T0 + RPT_DLV_OUTBOX_RETRY_S * 1000LL,
                 "the unreadable one waits");
    cr_expect_eq(zscore(RPT_DLV_OUTBOX, "r1-1.2.8/1"), T0 + 1000);
    cr_assert_eq(rpt_delivery_take_outbox(rc_, &cfg, T0 + 1, 100, &taken), 0);
    cr_expect_eq(taken, 0);
    rpt_dlv_stats st;
    cr_assert_eq(rpt_delivery_stats(rc_, &st), 0);
    cr_expect_eq(st.outbox, 2);
    cr_expect_eq(st.pending, 3);
    /* taken twice (two nodes, or a stop between expansion and removal) */
    put_entry("r1-1.2.3/2", T0 + 5);
    cr_assert_eq(rpt_delivery_take_outbox(rc_, &cfg, T0 + 10, 100, &taken), 0);
    cr_expect_eq(taken, 1);
    cr_expect_eq(zcard(RPT_DLV_DUE), 3, "no second set of deliveries");
}
