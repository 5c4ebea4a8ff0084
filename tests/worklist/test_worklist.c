/* The worklist against a real redis-server (one per test): arrival and
 * completeness, claims and leases, overdue flags, listings, events. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "common/hr_log.h"
#include "support/support.h"
#include "worklist/worklist.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0     1800000000000LL
#define MIN    60000LL
#define CT_SOP "1.2.840.10008.5.1.4.1.1.2"
#define ECG12  "1.2.840.10008.5.1.4.1.1.9.1.1"

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

/* Default centers; rules chosen so tests pick a priority by procedure. */
static const char k_cfg[] =
    "{\"worklist\": {\"quiet_s\": 30, \"quiet_by_modality\": {\"ECG\": 5}, \"lease_s\": 600,"
    "  \"turnaround_min\": {\"ecg\": {\"stat\": 1}}},"
    " \"routing\": {\"rules\": ["
    "  {\"modalities\": [\"ECG\"], \"procedures\": [\"chest pain\"], \"center\": \"ecg\","
    "   \"priority\": \"stat\"},"
    "  {\"modalities\": [\"ECG\"], \"center\": \"ecg\", \"priority\": \"routine\"},"
    "  {\"procedures\": [\"[stat]\"], \"center\": \"imaging\", \"priority\": \"stat\"},"
    "  {\"procedures\": [\"[urgent]\"], \"center\": \"imaging\", \"priority\": \"urgent\"}],"
    "  \"default\": {\"center\": \"imaging\", \"priority\": \"routine\"}}}";

static redisContext *connect_redis(void)
{
    redisContext *c = ts_redis_connect(redis.sock, 10000);
    cr_assert(c, "connect %s", redis.sock);
    return c;
}

static void setup(void)
{
    char err[256];
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    rc_ = connect_redis();
    cr_assert_eq(hr_config_load_string(k_cfg, &cfg, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

TestSuite(worklist, .init = setup, .fini = teardown, .timeout = 120);

static int arrive_rep(const char *study, const char *modality, const char *procedure,
                      const char *hospital, long long now, int repeat)
{
    wl_arrival a = {.study = study,
                    .sop_class = strcmp(modality, "ECG") == 0 ? ECG12 : CT_SOP,
                    .modality = modality,
                    .body_part = "",
                    .procedure = procedure,
                    .hospital = hospital,
                    .calling_ae = "TOWNSHIP1",
                    .patient = "township1|P1",
                    .patient_name = "张^三",
                    .accession = "A1",
                    .study_date = "20270115",
                    .now_ms = now,
                    .repeat = repeat};
    int created = -1;
    int rc = wl_arrive(rc_, &cfg, &a, &created);
    cr_assert_eq(rc, 0, "arrive %s: %s", study, hr_strerror(rc));
    return created;
}

static int arrive_full(const char *study, const char *modality, const char *procedure,
                       const char *hospital, long long now)
{
    return arrive_rep(study, modality, procedure, hospital, now, 0);
}

static int arrive(const char *study, const char *modality, long long now)
{
    return arrive_full(study, modality, "", "township1", now);
}

static wl_item get(const char *study)
{
    wl_item it;
    int rc = wl_get(rc_, study, &it);
    cr_assert_eq(rc, 0, "get %s: %s", study, hr_strerror(rc));
    return it;
}

static wl_sweep_stats sweep(long long now)
{
    wl_sweep_stats st;
    cr_assert_eq(wl_sweep(rc_, now, 100, &st), 0);
    return st;
}

/* ---- events ---- */

#define EV_MAX 4096
typedef struct evlist {
    int n;
    wl_event ev[EV_MAX];
} evlist;

static int collect_ev(void *arg, const wl_event *ev)
{
    evlist *l = arg;
    if (l->n < EV_MAX)
        l->ev[l->n++] = *ev;
    return 0;
}

/* Every kept event after after (paging through wl_events_since). */
static evlist *events_after(const char *after, int *gap)
{
    evlist *l = calloc(1, sizeof(*l));
    cr_assert_not_null(l);
    char cursor[32];
    snprintf(cursor, sizeof(cursor), "%s", after);
    int g = 0, first = 1;
    for (;;) {
        int before = l->n, gp = 0;
        cr_assert_eq(wl_events_since(rc_, cursor, 1000, collect_ev, l, &gp), 0);
        if (first)
            g = gp;
        first = 0;
        if (l->n == before)
            break;
        snprintf(cursor, sizeof(cursor), "%s", l->ev[l->n - 1].id);
    }
    if (gap)
        *gap = g;
    return l;
}

static int count_type(const evlist *l, const char *type, const char *study)
{
    int n = 0;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->ev[i].type, type) == 0 && (!study || strcmp(l->ev[i].study, study) == 0))
            n++;
    return n;
}

static int events_of(const char *type, const char *study)
{
    evlist *l = events_after("", NULL);
    int n = count_type(l, type, study);
    free(l);
    return n;
}

static long long zscore(const char *key, const char *member)
{
    char out[64];
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "ZSCORE %s %s", key, member), 0);
    return out[0] ? atoll(out) : -1;
}

static long long zcard(const char *key)
{
    char out[64];
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "ZCARD %s", key), 0);
    return atoll(out);
}

/* ---- arrival and completeness ---- */

Test(worklist, arrive_creates_receiving_item)
{
    cr_expect_eq(arrive("1.2.1", "CT", T0), 1);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_RECEIVING);
    cr_expect_str_eq(it.study, "1.2.1");
    cr_expect_str_eq(it.center, "imaging");
    cr_expect_eq(it.priority, HR_PRIO_ROUTINE);
    cr_expect_eq(it.rule, -1);
    cr_expect_str_eq(it.hospital, "township1");
    cr_expect_str_eq(it.modality, "CT");
    cr_expect_str_eq(it.patient, "township1|P1");
    cr_expect_str_eq(it.patient_name, "张^三");
    cr_expect_str_eq(it.accession, "A1");
    cr_expect_str_eq(it.study_date, "20270115");
    cr_expect_eq(it.arrived_ms, T0);
    cr_expect_eq(it.last_ms, T0);
    cr_expect_eq(it.ready_ms, 0);
    cr_expect_eq(it.due_ms, T0 + 1440 * MIN);
    cr_expect_eq(it.instances, 1);
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.1"), T0 + 30000);
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), T0 + 1440 * MIN);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:receiving"), 1);
    cr_expect_eq(zscore("hr:wl:c:imaging:a:receiving", "1.2.1"), T0);
    cr_expect_eq(zscore("hr:wl:h:township1", "1.2.1"), T0);

    cr_expect_eq(arrive("1.2.1", "CT", T0 + 1000), 0);
    it = get("1.2.1");
    cr_expect_eq(it.instances, 2);
    cr_expect_eq(it.last_ms, T0 + 1000);
    cr_expect_eq(it.arrived_ms, T0);
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.1"), T0 + 31000, "deadline pushed back");
    cr_expect_eq(events_of("received", "1.2.1"), 1);

    /* routing by the first instance: ECG chest pain is stat on the ECG center */
    cr_expect_eq(arrive_full("1.2.2", "ECG", "Chest pain 胸痛", "township2", T0), 1);
    it = get("1.2.2");
    cr_expect_str_eq(it.center, "ecg");
    cr_expect_eq(it.priority, HR_PRIO_STAT);
    cr_expect_eq(it.rule, 0);
    cr_expect_eq(it.due_ms, T0 + 1 * MIN);
    cr_expect_str_eq(it.procedure, "Chest pain 胸痛");
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.2"), T0 + 5000, "ECG quiet period");

    wl_item missing;
    cr_expect_eq(wl_get(rc_, "9.9.9", &missing), HR_ENOTFOUND);
    cr_expect_eq(wl_get(rc_, "not a uid", &missing), -EINVAL);
    wl_arrival bad = {.study = "1.2.3}x", .now_ms = T0};
    cr_expect_eq(wl_arrive(rc_, &cfg, &bad, NULL), -EINVAL);
}

Test(worklist, long_values_are_cut_at_utf8_boundaries)
{
    char name[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(name, "张"); /* 300 bytes */
    wl_arrival a = {.study = "1.2.9", .modality = "CT", .patient_name = name, .now_ms = T0};
    cr_assert_eq(wl_arrive(rc_, &cfg, &a, NULL), 0);
    wl_item it = get("1.2.9");
    cr_expect_eq(strlen(it.patient_name), 255 - 255 % 3, "whole characters only");
    cr_expect_eq(strncmp(it.patient_name, name, strlen(it.patient_name)), 0);
    cr_expect_str_eq(it.hospital, "");
}

Test(worklist, sweep_completes_after_quiet_period)
{
    arrive("1.2.1", "CT", T0);
    arrive("1.2.1", "CT", T0 + 10000);
    arrive("1.2.2", "ECG", T0 + 10000);
    long long next = 0;
    cr_assert_eq(wl_next_deadline(rc_, &next), 0);
    cr_expect_eq(next, T0 + 15000, "the ECG's deadline comes first");

    wl_sweep_stats st = sweep(T0 + 14999);
    cr_expect_eq(st.completed, 0);
    cr_expect_eq(get("1.2.2").state, WL_RECEIVING);
    st = sweep(T0 + 15000);
    cr_expect_eq(st.completed, 1);
    cr_expect_eq(get("1.2.2").state, WL_READY);
    cr_expect_eq(get("1.2.2").ready_ms, T0 + 15000);

    /* a new node (connection) picks up where the old one left: no in-process timers */
    redisFree(rc_);
    rc_ = connect_redis();
    cr_assert_eq(wl_next_deadline(rc_, &next), 0);
    cr_expect_eq(next, T0 + 40000);
    st = sweep(T0 + 39999);
    cr_expect_eq(st.completed, 0);
    cr_expect_eq(get("1.2.1").state, WL_RECEIVING);
    st = sweep(T0 + 40000);
    cr_expect_eq(st.completed, 1);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY);
    cr_expect_eq(it.ready_ms, T0 + 40000);
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.1"), -1);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:receiving"), 0);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:ready"), 1);
    cr_expect_eq(zcard("hr:wl:c:imaging:work"), 1);
    cr_expect_eq(events_of("ready", NULL), 2);
    st = sweep(T0 + 50000);
    cr_expect_eq(st.completed, 0);
    cr_expect_eq(events_of("ready", NULL), 2);
    /* only the due times are left */
    cr_assert_eq(wl_next_deadline(rc_, &next), 0);
    cr_expect_eq(next, T0 + 10000 + 240 * MIN + 1);
}

Test(worklist, explicit_completion_is_immediate_and_idempotent)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_complete(rc_, "1.2.1", "tech1", T0 + 100), 0);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY);
    cr_expect_eq(it.ready_ms, T0 + 100);
    cr_expect_eq(wl_complete(rc_, "1.2.1", "tech1", T0 + 200), 0);
    cr_expect_eq(get("1.2.1").ready_ms, T0 + 100);
    cr_expect_eq(sweep(T0 + 60000).completed, 0);
    evlist *l = events_after("", NULL);
    cr_expect_eq(count_type(l, "ready", "1.2.1"), 1);
    cr_expect_str_eq(l->ev[l->n - 1].user, "tech1");
    free(l);
    cr_expect_eq(wl_complete(rc_, "9.9", "tech1", T0), HR_ENOTFOUND);
    cr_expect_eq(wl_complete(rc_, "", "tech1", T0), -EINVAL);
    /* still idempotent once claimed */
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 300), 0);
    cr_expect_eq(wl_complete(rc_, "1.2.1", "tech1", T0 + 400), 0);
    cr_expect_eq(get("1.2.1").state, WL_CLAIMED);
}

Test(worklist, late_instances_flag_changed)
{
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 10), 0);
    arrive("1.2.1", "CT", T0 + 20);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY, "a late instance does not move the item back");
    cr_expect_eq(it.changed_after_ready, 1);
    cr_expect_eq(it.changed_since_read, 0);
    cr_expect_eq(it.instances, 2);
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.1"), -1);
    cr_expect_eq(events_of("changed", "1.2.1"), 1);
    arrive("1.2.1", "CT", T0 + 30);
    cr_expect_eq(events_of("changed", "1.2.1"), 1, "flag already set: no new event");

    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 40), 0);
    arrive("1.2.1", "CT", T0 + 50);
    it = get("1.2.1");
    cr_expect_eq(it.state, WL_CLAIMED);
    cr_expect_eq(it.changed_since_read, 1);
    cr_expect_eq(it.instances, 4);
    evlist *l = events_after("", NULL);
    cr_expect_eq(count_type(l, "changed", "1.2.1"), 2);
    cr_expect_str_eq(l->ev[l->n - 1].type, "changed");
    cr_expect_str_eq(l->ev[l->n - 1].reader, "alice");
    cr_expect_str_eq(l->ev[l->n - 1].state, "claimed");
    free(l);
}

Test(worklist, identical_resend_is_not_a_new_instance)
{
    cr_expect_eq(arrive_rep("1.2.2", "CT", "", "township1", T0, 1), 1,
                 "a retry still creates a missing item");
    arrive("1.2.2", "CT", T0 + 10);
    arrive_rep("1.2.2", "CT", "", "township1", T0 + 20, 1);
    cr_expect_eq(get("1.2.2").instances, 2 - 1 + 1, "the retry did not count");
    cr_expect_eq(zscore("hr:wl:receiving", "1.2.2"), T0 + 20 + wl_quiet_ms(&cfg, "CT"),
                 "but it is activity while receiving");
    cr_assert_eq(wl_complete(rc_, "1.2.2", "", T0 + 30), 0);
    arrive_rep("1.2.2", "CT", "", "township1", T0 + 40, 1);
    wl_item it = get("1.2.2");
    cr_expect_eq(it.changed_after_ready, 0, "a retry after ready changes nothing");
    cr_expect_eq(events_of("changed", "1.2.2"), 0);
}

/* ---- claims ---- */

#define CLAIMERS 50

typedef struct claimer {
    pthread_barrier_t *barrier;
    const char *sock;
    char user[16];
    int rc;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    redisContext *ctx = ts_redis_connect(c->sock, 10000);
    c->rc = 1;
    pthread_barrier_wait(c->barrier);
    if (ctx)
        c->rc = wl_claim(ctx, &cfg, "1.2.1", c->user, T0 + 1000);
    if (ctx)
        redisFree(ctx);
    return NULL;
}

Test(worklist, fifty_concurrent_claimers_one_winner)
{
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0), 0);
    pthread_barrier_t barrier;
    pthread_t th[CLAIMERS];
    static claimer cl[CLAIMERS];
    pthread_barrier_init(&barrier, NULL, CLAIMERS);
    for (int i = 0; i < CLAIMERS; i++) {
        cl[i].barrier = &barrier;
        cl[i].sock = redis.sock;
        snprintf(cl[i].user, sizeof(cl[i].user), "reader%02d", i);
        cr_assert_eq(pthread_create(&th[i], NULL, claim_thread, &cl[i]), 0);
    }
    for (int i = 0; i < CLAIMERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    int won = 0, busy = 0, winner = -1;
    for (int i = 0; i < CLAIMERS; i++) {
        if (cl[i].rc == 0) {
            won++;
            winner = i;
        } else if (cl[i].rc == -EBUSY) {
            busy++;
        }
    }
    cr_expect_eq(won, 1);
    cr_expect_eq(busy, CLAIMERS - 1);
    cr_assert_geq(winner, 0);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_CLAIMED);
    cr_expect_str_eq(it.claimed_by, cl[winner].user);
    cr_expect_eq(it.lease_until_ms, T0 + 1000 + 600000);
    cr_expect_eq(events_of("claimed", "1.2.1"), 1);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:claimed"), 1);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:ready"), 0);
}

Test(worklist, claim_refusals)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 1), HR_ESTATE, "still receiving");
    cr_expect_eq(wl_claim(rc_, &cfg, "9.9", "alice", T0 + 1), HR_ENOTFOUND);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "", T0 + 1), -EINVAL);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bad\tname", T0 + 1), -EINVAL);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 2), 0);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 3), 0);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 4), -EBUSY);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 5), 0, "own claim renews");
    cr_expect_eq(get("1.2.1").lease_until_ms, T0 + 5 + 600000);
    cr_expect_eq(events_of("renewed", "1.2.1"), 1);
}

Test(worklist, lease_expiry_returns_the_item)
{
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 1000), 0);
    cr_expect_eq(zscore("hr:wl:leases", "1.2.1"), T0 + 601000);
    cr_expect_eq(sweep(T0 + 600999).expired, 0);
    cr_expect_eq(get("1.2.1").state, WL_CLAIMED);
    cr_expect_eq(sweep(T0 + 601000).expired, 1);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY);
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zscore("hr:wl:leases", "1.2.1"), -1);
    evlist *l = events_after("", NULL);
    cr_assert_eq(count_type(l, "expired", "1.2.1"), 1);
    cr_expect_str_eq(l->ev[l->n - 1].type, "expired");
    cr_expect_str_eq(l->ev[l->n - 1].reader, "alice");
    cr_expect_str_eq(l->ev[l->n - 1].user, "");
    cr_expect_str_eq(l->ev[l->n - 1].state, "ready");
    free(l);
    cr_expect_eq(sweep(T0 + 700000).expired, 0);

    /* a dead lease is dead before any sweep: bob may take the item */
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 800000), 0);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 800000 + 599999), -EBUSY);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 800000 + 600000), 0);
    cr_expect_str_eq(get("1.2.1").claimed_by, "bob");
    cr_expect_eq(events_of("expired", "1.2.1"), 2);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "alice", T0 + 800000 + 600001), -EBUSY);
}

Test(worklist, renew_extends_the_lease)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "alice", T0), HR_ESTATE);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0), 0);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "alice", T0), HR_ESTATE, "not claimed");
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0), 0);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "bob", T0 + 1), -EBUSY);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "alice", T0 + 500000), 0);
    cr_expect_eq(get("1.2.1").lease_until_ms, T0 + 1100000);
    cr_expect_eq(zscore("hr:wl:leases", "1.2.1"), T0 + 1100000);
    cr_expect_eq(sweep(T0 + 600000).expired, 0);
    cr_expect_eq(get("1.2.1").state, WL_CLAIMED);
    cr_expect_eq(sweep(T0 + 1100000).expired, 1);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "alice", T0 + 1100001), HR_ESTATE);
    cr_expect_eq(wl_renew(rc_, &cfg, "9.9", "alice", T0), HR_ENOTFOUND);
}

Test(worklist, release_returns_to_queue)
{
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 10), 0);
    cr_expect_eq(wl_release(rc_, "1.2.1", "bob", T0 + 20), -EBUSY);
    cr_expect_eq(wl_release(rc_, "1.2.1", "alice", T0 + 30), 0);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY);
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zscore("hr:wl:leases", "1.2.1"), -1);
    cr_expect_eq(zcard("hr:wl:c:imaging:work"), 1);
    cr_expect_eq(wl_release(rc_, "1.2.1", "alice", T0 + 40), HR_ESTATE);
    cr_expect_eq(wl_release(rc_, "9.9", "alice", T0 + 40), HR_ENOTFOUND);
    evlist *l = events_after("", NULL);
    cr_expect_str_eq(l->ev[l->n - 1].type, "released");
    cr_expect_str_eq(l->ev[l->n - 1].user, "alice");
    free(l);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 50), 0);
}

Test(worklist, reassign_by_lead)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_reassign(rc_, &cfg, "1.2.1", "bob", "lead", T0 + 1), HR_ESTATE);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 2), 0);
    cr_expect_eq(wl_reassign(rc_, &cfg, "1.2.1", "bob", "lead", T0 + 3), 0, "ready -> bob");
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_CLAIMED);
    cr_expect_str_eq(it.claimed_by, "bob");
    cr_expect_eq(it.lease_until_ms, T0 + 3 + 600000);
    cr_expect_eq(wl_reassign(rc_, &cfg, "1.2.1", "carol", "lead", T0 + 4), 0, "bob -> carol");
    cr_expect_str_eq(get("1.2.1").claimed_by, "carol");
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 5), -EBUSY);
    cr_expect_eq(wl_renew(rc_, &cfg, "1.2.1", "carol", T0 + 6), 0);
    evlist *l = events_after("", NULL);
    cr_assert_eq(count_type(l, "reassigned", "1.2.1"), 2);
    const wl_event *e = &l->ev[l->n - 2];
    cr_expect_str_eq(e->type, "reassigned");
    cr_expect_str_eq(e->user, "lead");
    cr_expect_str_eq(e->reader, "carol");
    free(l);
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "carol", T0 + 7), 0);
    cr_expect_eq(wl_reassign(rc_, &cfg, "1.2.1", "bob", "lead", T0 + 8), HR_ESTATE);
    cr_expect_eq(wl_reassign(rc_, &cfg, "9.9", "bob", "lead", T0 + 8), HR_ENOTFOUND);
}

typedef struct hist {
    int n;
    wl_event ev[32];
} hist;

static int collect_hist(void *arg, const wl_event *ev)
{
    hist *h = arg;
    if (h->n < 32)
        h->ev[h->n++] = *ev;
    return 0;
}

/* A retracted report sends the item back to ready (decision 0024). */
Test(worklist, reopen_after_retraction)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_READY, "alice", T0 + 1), HR_ESTATE, "receiving");
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 2), 0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_READY, "alice", T0 + 3), HR_ESTATE, "ready");
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 4), 0);
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "alice", T0 + 5), 0);
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_FINAL, "lead", T0 + 6), 0);
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), -1);
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_READY, "lead", T0 + 7), 0);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_READY);
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), T0 + 1440 * MIN, "due again");
    cr_expect_eq(zcard("hr:wl:c:imaging:s:final"), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:work", "1.2.1") > 0, 1, "on the working list");
    cr_expect_eq(events_of("reopened", "1.2.1"), 1);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 8), 0, "read again");
    /* from reported too (a retracted preliminary), and an overdue item stays
     * out of the due set */
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "bob", T0 + 9), 0);
    cr_assert_eq(sweep(T0 + 1441 * MIN).overdue, 1);
    cr_assert_eq(wl_set_state(rc_, "1.2.1", WL_READY, "lead", T0 + 1442 * MIN), 0);
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), -1, "flagged once, not due again");
    cr_expect_eq(zcard("hr:wl:c:imaging:overdue"), 1, "still listed as overdue");
    cr_expect_eq(get("1.2.1").state, WL_READY);
}

Test(worklist, set_state_transitions_and_refusals)
{
    arrive("1.2.1", "CT", T0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "alice", T0 + 1), HR_ESTATE);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 2), 0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "alice", T0 + 3), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_FINAL, "alice", T0 + 3), HR_ESTATE);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 4), 0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "bob", T0 + 5), -EBUSY);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_FINAL, "alice", T0 + 5), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_AMENDED, "alice", T0 + 5), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_READY, "alice", T0 + 5), HR_ESTATE,
                 "reopening is for reported, final and amended items");
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_CLAIMED, "alice", T0 + 5), -EINVAL);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "alice", T0 + 6), 0);
    wl_item it = get("1.2.1");
    cr_expect_eq(it.state, WL_REPORTED);
    cr_expect_str_eq(it.reported_by, "alice");
    cr_expect_str_eq(it.claimed_by, "");
    cr_expect_eq(zscore("hr:wl:leases", "1.2.1"), -1, "the claim ended");
    cr_expect_eq(zcard("hr:wl:c:imaging:work"), 0);
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), T0 + 1440 * MIN, "still due until final");
    cr_expect_eq(sweep(T0 + 700000).expired, 0, "no lease to expire");
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_REPORTED, "alice", T0 + 7), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_AMENDED, "alice", T0 + 7), HR_ESTATE);
    cr_expect_eq(wl_claim(rc_, &cfg, "1.2.1", "bob", T0 + 7), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_FINAL, "auditor", T0 + 8), 0);
    cr_expect_eq(get("1.2.1").state, WL_FINAL);
    cr_expect_eq(zscore("hr:wl:due", "1.2.1"), -1);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_FINAL, "auditor", T0 + 9), HR_ESTATE);
    cr_expect_eq(wl_release(rc_, "1.2.1", "alice", T0 + 9), HR_ESTATE);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_AMENDED, "auditor", T0 + 10), 0);
    cr_expect_eq(wl_set_state(rc_, "1.2.1", WL_AMENDED, "alice", T0 + 11), 0);
    cr_expect_eq(get("1.2.1").state, WL_AMENDED);
    cr_expect_eq(wl_set_state(rc_, "9.9", WL_FINAL, "auditor", T0), HR_ENOTFOUND);
    cr_expect_eq(sweep(T0 + 1441 * MIN).overdue, 0, "final items are never overdue");
    cr_expect_eq(zcard("hr:wl:c:imaging:s:amended"), 1);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:final"), 0);

    evlist *l = events_after("", NULL);
    const wl_event *e = &l->ev[l->n - 3];
    cr_expect_str_eq(e->type, "final");
    cr_expect_str_eq(e->user, "auditor");
    cr_expect_str_eq(e->reader, "alice", "the author of the report");
    free(l);

    /* every transition with who and when */
    hist h = {0};
    cr_assert_eq(wl_history(rc_, "1.2.1", collect_hist, &h), 0);
    const char *types[] = {"received", "ready",   "claimed", "reported",
                           "final",    "amended", "amended"};
    const char *users[] = {"", "", "alice", "alice", "auditor", "auditor", "alice"};
    long long times[] = {T0, T0 + 2, T0 + 4, T0 + 6, T0 + 8, T0 + 10, T0 + 11};
    cr_assert_eq(h.n, 7);
    for (int i = 0; i < 7; i++) {
        cr_expect_str_eq(h.ev[i].type, types[i]);
        cr_expect_str_eq(h.ev[i].user, users[i]);
        cr_expect_eq(h.ev[i].time_ms, times[i]);
        cr_expect_str_eq(h.ev[i].study, "1.2.1");
    }
    cr_expect_eq(wl_history(rc_, "9.9", collect_hist, &h), HR_ENOTFOUND);

    /* reporting after the lease ran out is refused: the claim is gone */
    arrive("1.2.2", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.2", "", T0), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.2", "alice", T0), 0);
    cr_expect_eq(wl_set_state(rc_, "1.2.2", WL_REPORTED, "alice", T0 + 600000), HR_ESTATE);
    cr_expect_eq(get("1.2.2").state, WL_READY);
}

Test(worklist, overdue_is_flagged_once)
{
    arrive("1.2.1", "ECG", T0);                                 /* ECG routine: 240 min */
    arrive_full("1.2.2", "ECG", "chest pain", "township1", T0); /* ECG stat: 1 min */
    cr_assert_eq(wl_complete(rc_, "1.2.2", "", T0 + 10), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.2", "alice", T0 + 20), 0);
    cr_expect_eq(sweep(T0 + MIN).overdue, 0, "due, not yet over");
    cr_expect_eq(sweep(T0 + MIN + 1).overdue, 1);
    wl_item it = get("1.2.2");
    cr_expect_eq(it.overdue, 1);
    cr_expect_eq(it.state, WL_CLAIMED);
    cr_expect_eq(get("1.2.1").overdue, 0);
    cr_expect_eq(sweep(T0 + 2 * MIN).overdue, 0);
    cr_expect_eq(sweep(T0 + 3 * MIN).overdue, 0);
    evlist *l = events_after("", NULL);
    cr_expect_eq(count_type(l, "overdue", NULL), 1);
    const wl_event *e = &l->ev[l->n - 1];
    cr_expect_str_eq(e->type, "overdue");
    cr_expect_str_eq(e->study, "1.2.2");
    cr_expect_str_eq(e->center, "ecg");
    cr_expect_str_eq(e->priority, "stat");
    cr_expect_str_eq(e->reader, "alice");
    free(l);
    wl_filter f = {.center = "ecg", .state = -1, .priority = -1};
    wl_counts counts;
    cr_assert_eq(wl_list(rc_, &cfg, &f, NULL, NULL, &counts), 0);
    cr_expect_eq(counts.overdue, 1);
    /* signing clears it from the overdue count */
    cr_assert_eq(wl_set_state(rc_, "1.2.2", WL_REPORTED, "alice", T0 + 4 * MIN), 0);
    cr_assert_eq(wl_set_state(rc_, "1.2.2", WL_FINAL, "alice", T0 + 5 * MIN), 0);
    cr_assert_eq(wl_list(rc_, &cfg, &f, NULL, NULL, &counts), 0);
    cr_expect_eq(counts.overdue, 0);
    cr_expect_eq(get("1.2.2").overdue, 1, "the flag stays on the item");
    /* the routine ECG is overdue after 240 min, even while still receiving */
    cr_expect_eq(sweep(T0 + 240 * MIN + 1).overdue, 1);
    cr_expect_eq(events_of("overdue", NULL), 2);
}

/* ---- listings ---- */

typedef struct page {
    int n;
    char ids[32][65];
    wl_item last;
} page;

static int collect_item(void *arg, const wl_item *it)
{
    page *p = arg;
    if (p->n < 32)
        snprintf(p->ids[p->n++], 65, "%s", it->study);
    p->last = *it;
    return 0;
}

static void expect_page(const wl_filter *f, const char *expected, long matched)
{
    page p = {0};
    wl_counts counts;
    cr_assert_eq(wl_list(rc_, &cfg, f, collect_item, &p, &counts), 0);
    char got[512] = "";
    for (int i = 0; i < p.n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, p.ids[i]);
    }
    cr_expect_str_eq(got, expected);
    cr_expect_eq(counts.matched, matched, "%s: matched %ld", expected, counts.matched);
}

static int stop_after_one(void *arg, const wl_item *it)
{
    (*(int *)arg)++;
    return 42;
}

Test(worklist, listing_order_filters_and_counts)
{
    /* A routine, B stat, C urgent, D routine (due after A), E stat (due after B) */
    arrive_full("1.1", "CT", "abdomen", "township1", T0);
    arrive_full("1.2", "CT", "head [stat]", "township1", T0 + 1000);
    arrive_full("1.3", "MR", "knee [urgent]", "township2", T0 + 2000);
    arrive_full("1.4", "CT", "chest", "township2", T0 + 3000);
    arrive_full("1.5", "DX", "hip [stat]", "township2", T0 + 4000);
    arrive_full("1.6", "CT", "still coming", "township2", T0 + 5000);
    const char *done[] = {"1.5", "1.4", "1.3", "1.2", "1.1"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(wl_complete(rc_, done[i], "", T0 + 6000), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.3", "alice", T0 + 7000), 0);

    wl_filter f = {.center = "imaging", .state = -1, .priority = -1};
    expect_page(&f, "1.2 1.5 1.3 1.1 1.4", 5);
    wl_counts counts;
    cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &(page){0}, &counts), 0);
    cr_expect_eq(counts.by_state[WL_RECEIVING], 1);
    cr_expect_eq(counts.by_state[WL_READY], 4);
    cr_expect_eq(counts.by_state[WL_CLAIMED], 1);
    cr_expect_eq(counts.by_state[WL_REPORTED], 0);
    cr_expect_eq(counts.overdue, 0);

    f.priority = HR_PRIO_STAT;
    expect_page(&f, "1.2 1.5", 2);
    f.priority = -1;
    f.state = WL_CLAIMED;
    expect_page(&f, "1.3", 1);
    f.state = WL_READY;
    expect_page(&f, "1.2 1.5 1.1 1.4", 4);
    f.state = WL_RECEIVING;
    expect_page(&f, "1.6", 1);
    f.state = -1;
    f.hospital = "township2";
    expect_page(&f, "1.5 1.3 1.4", 3);
    f.hospital = NULL;
    f.modality = "CT";
    expect_page(&f, "1.2 1.1 1.4", 3);
    f.modality = NULL;
    f.claimed_by = "alice";
    expect_page(&f, "1.3", 1);
    f.claimed_by = "bob";
    expect_page(&f, "", 0);
    f.claimed_by = NULL;
    f.from_ms = T0 + 2000;
    expect_page(&f, "1.5 1.3 1.4", 3);
    f.to_ms = T0 + 3000;
    expect_page(&f, "1.3 1.4", 2);
    f.from_ms = f.to_ms = 0;
    f.offset = 1;
    f.limit = 2;
    expect_page(&f, "1.5 1.3", 5);
    f.offset = 5;
    expect_page(&f, "", 5);
    f.offset = 0;
    f.limit = 0;

    f.order_arrival = 1;
    expect_page(&f, "1.1 1.2 1.3 1.4 1.5", 5);
    f.from_ms = T0 + 1000;
    f.to_ms = T0 + 3000;
    expect_page(&f, "1.2 1.3 1.4", 3);
    f.priority = HR_PRIO_STAT;
    expect_page(&f, "1.2", 1);
    f.priority = -1;
    f.from_ms = f.to_ms = 0;
    f.state = WL_RECEIVING;
    expect_page(&f, "1.6", 1);
    f.state = -1;
    f.order_arrival = 0;

    /* items carry their fields; callbacks can stop the walk */
    page p = {0};
    f.state = WL_CLAIMED;
    cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &p, NULL), 0);
    cr_expect_str_eq(p.last.claimed_by, "alice");
    cr_expect_eq(p.last.priority, HR_PRIO_URGENT);
    cr_expect_str_eq(p.last.procedure, "knee [urgent]");
    f.state = -1;
    int calls = 0;
    cr_expect_eq(wl_list(rc_, &cfg, &f, stop_after_one, &calls, NULL), 42);
    cr_expect_eq(calls, 1);

    /* overdue: B (stat, due T0+1000+30 min) */
    /* (the sweep also ends alice's lease and completes 1.6) */
    cr_expect_eq(sweep(T0 + 1000 + 30 * MIN + 1).overdue, 1);
    f.overdue_only = 1;
    expect_page(&f, "1.2", 1);
    f.overdue_only = 0;
    cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &(page){0}, &counts), 0);
    cr_expect_eq(counts.overdue, 1);

    wl_filter other = {.center = "ecg", .state = -1, .priority = -1};
    cr_assert_eq(wl_list(rc_, &cfg, &other, collect_item, &(page){0}, &counts), 0);
    cr_expect_eq(counts.matched, 0);
    cr_expect_eq(counts.by_state[WL_READY], 0);
    wl_filter none = {.center = "radiology", .state = -1, .priority = -1};
    cr_expect_eq(wl_list(rc_, &cfg, &none, collect_item, NULL, NULL), HR_ENOTFOUND);
    wl_filter bad = {.center = "imaging", .state = 9, .priority = -1};
    cr_expect_eq(wl_list(rc_, &cfg, &bad, collect_item, NULL, NULL), -EINVAL);
}

Test(worklist, hospital_listing_newest_first)
{
    arrive_full("1.1", "CT", "", "township1", T0);
    arrive_full("1.2", "ECG", "", "township2", T0 + 1000);
    arrive_full("1.3", "CT", "", "township2", T0 + 2000);
    arrive_full("1.4", "CT", "", "township2", T0 + 3000);
    arrive_full("1.2", "ECG", "", "township2", T0 + 9000); /* a later instance: same place */
    page p = {0};
    long total = 0;
    cr_assert_eq(wl_list_hospital(rc_, "township2", NULL, 0, 0, collect_item, &p, &total, NULL, 0),
                 0);
    cr_expect_eq(total, 3);
    cr_assert_eq(p.n, 3);
    cr_expect_str_eq(p.ids[0], "1.4");
    cr_expect_str_eq(p.ids[1], "1.3");
    cr_expect_str_eq(p.ids[2], "1.2");
    cr_expect_str_eq(p.last.center, "ecg", "items of every center");
    p.n = 0;
    cr_assert_eq(wl_list_hospital(rc_, "township2", NULL, 1, 1, collect_item, &p, &total, NULL, 0),
                 0);
    cr_assert_eq(p.n, 1);
    cr_expect_str_eq(p.ids[0], "1.3");
    p.n = 0;
    cr_assert_eq(wl_list_hospital(rc_, "county", NULL, 0, 10, collect_item, &p, &total, NULL, 0),
                 0);
    cr_expect_eq(total, 0);
    cr_expect_eq(p.n, 0);
    cr_expect_eq(wl_list_hospital(rc_, "", NULL, 0, 10, collect_item, &p, &total, NULL, 0),
                 -EINVAL);
}

/* ---- events ---- */

Test(worklist, events_order_replay_and_gap)
{
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "tech1", T0 + 1), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "1.2.1", "alice", T0 + 2), 0);
    cr_assert_eq(wl_release(rc_, "1.2.1", "alice", T0 + 3), 0);
    int gap = -1;
    evlist *all = events_after("", &gap);
    cr_expect_eq(gap, 0);
    cr_assert_eq(all->n, 4);
    const char *types[] = {"received", "ready", "claimed", "released"};
    const char *states[] = {"receiving", "ready", "claimed", "ready"};
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(all->ev[i].type, types[i]);
        cr_expect_str_eq(all->ev[i].state, states[i]);
        cr_expect_str_eq(all->ev[i].study, "1.2.1");
        cr_expect_str_eq(all->ev[i].center, "imaging");
        cr_expect_str_eq(all->ev[i].hospital, "township1");
        cr_expect_str_eq(all->ev[i].priority, "routine");
        cr_expect_eq(all->ev[i].time_ms, T0 + i);
    }
    cr_expect_str_eq(all->ev[1].user, "tech1");
    cr_expect_str_eq(all->ev[2].user, "alice");
    cr_expect_str_eq(all->ev[2].reader, "alice");

    /* Last-Event-ID replay */
    evlist *after = events_after(all->ev[1].id, &gap);
    cr_expect_eq(gap, 0);
    cr_assert_eq(after->n, 2);
    cr_expect_str_eq(after->ev[0].id, all->ev[2].id);
    cr_expect_str_eq(after->ev[1].id, all->ev[3].id);
    free(after);
    evlist one = {0};
    cr_assert_eq(wl_events_since(rc_, all->ev[0].id, 1, collect_ev, &one, &gap), 0);
    cr_assert_eq(one.n, 1);
    cr_expect_str_eq(one.ev[0].type, "ready");
    after = events_after(all->ev[3].id, &gap);
    cr_expect_eq(after->n, 0);
    cr_expect_eq(gap, 0);
    free(after);
    cr_expect_eq(wl_events_since(rc_, "abc", 10, collect_ev, &one, &gap), -EINVAL);
    cr_expect_eq(wl_events_since(rc_, "1-x", 10, collect_ev, &one, &gap), -EINVAL);

    /* the retention window moves past a client: gap, and the kept events */
    char out[32];
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "XTRIM hr:wl:events MAXLEN 1"), 0);
    cr_expect_str_eq(out, "3");
    after = events_after(all->ev[0].id, &gap);
    cr_expect_eq(gap, 1);
    cr_assert_eq(after->n, 1);
    cr_expect_str_eq(after->ev[0].type, "released");
    free(after);
    after = events_after(all->ev[2].id, &gap);
    cr_expect_eq(gap, 1, "its own id was trimmed: conservatively a gap");
    cr_expect_eq(after->n, 1);
    free(after);
    after = events_after(all->ev[3].id, &gap);
    cr_expect_eq(gap, 0);
    cr_expect_eq(after->n, 0);
    free(after);
    after = events_after("0", &gap);
    cr_expect_eq(gap, 0, "a fresh client has lost nothing");
    cr_expect_eq(after->n, 1);
    free(after);
    free(all);
}

Test(worklist, events_are_published)
{
    redisContext *sub = connect_redis();
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", WL_NOTIFY_CHANNEL);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    arrive("1.2.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "1.2.1", "", T0 + 1), 0);
    evlist *all = events_after("", NULL);
    cr_assert_eq(all->n, 2);
    for (int i = 0; i < 2; i++) {
        void *reply = NULL;
        cr_assert_eq(redisGetReply(sub, &reply), REDIS_OK);
        r = reply;
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
        cr_expect_str_eq(r->element[0]->str, "message");
        cr_expect_str_eq(r->element[1]->str, WL_NOTIFY_CHANNEL);
        cr_expect_str_eq(r->element[2]->str, all->ev[i].id);
        freeReplyObject(r);
    }
    free(all);
    redisFree(sub);
}

/* ---- several nodes ---- */

#define RACE_ITEMS 200

typedef struct sweeper {
    pthread_barrier_t *barrier;
    const char *sock;
    long long now;
    int completed, overdue, rounds, rc;
} sweeper;

static void *sweep_thread(void *arg)
{
    sweeper *s = arg;
    redisContext *ctx = ts_redis_connect(s->sock, 10000);
    pthread_barrier_wait(s->barrier);
    s->rc = ctx ? 0 : -1;
    while (!s->rc) {
        wl_sweep_stats st;
        s->rc = wl_sweep(ctx, s->now, 7, &st);
        s->completed += st.completed;
        s->overdue += st.overdue;
        s->rounds++;
        if (st.completed < 7 && st.overdue < 7)
            break;
    }
    if (ctx)
        redisFree(ctx);
    return NULL;
}

Test(worklist, racing_sweeps_never_double_complete)
{
    char study[32];
    hr_log_set_level(HR_LOG_ERROR); /* 200 escalation lines */
    for (int i = 0; i < RACE_ITEMS; i++) {
        snprintf(study, sizeof(study), "1.9.%d", i);
        arrive(study, "CT", T0 + i);
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    sweeper s[2] = {{&barrier, redis.sock, T0 + 1441 * MIN, 0, 0, 0, 0},
                    {&barrier, redis.sock, T0 + 1441 * MIN, 0, 0, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, sweep_thread, &s[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    cr_expect_eq(s[0].rc, 0);
    cr_expect_eq(s[1].rc, 0);
    cr_expect_eq(s[0].completed + s[1].completed, RACE_ITEMS, "%d + %d", s[0].completed,
                 s[1].completed);
    cr_expect_eq(s[0].overdue + s[1].overdue, RACE_ITEMS);
    cr_expect_geq(s[0].rounds + s[1].rounds, RACE_ITEMS / 7, "bounded batches");
    evlist *l = events_after("", NULL);
    cr_expect_eq(count_type(l, "ready", NULL), RACE_ITEMS);
    cr_expect_eq(count_type(l, "overdue", NULL), RACE_ITEMS);
    free(l);
    cr_expect_eq(zcard("hr:wl:c:imaging:s:ready"), RACE_ITEMS);
    cr_expect_eq(zcard("hr:wl:receiving"), 0);
    cr_expect_eq(zcard("hr:wl:due"), 0);
    wl_sweep_stats st = sweep(T0 + 1442 * MIN);
    cr_expect_eq(st.completed + st.expired + st.overdue, 0);
}

/* ---- listings with a long history (issue 8, decision 0015) ---- */

#define PAST_ITEMS 20000
#define TA         (T0 + 30000000LL) /* the active items arrive after the history */

/* PAST_ITEMS final items of imaging, arrived T0 + i s: hospital township1
 * (even i) or township2, modality CT (i % 4 < 2) or MR, reported by alice
 * (i % 3 == 0) or bob; one in 100 amended. */
static void fill_past(void)
{
    char study[32];
    for (int i = 0; i < PAST_ITEMS; i++) {
        long long t = T0 + i * 1000LL;
        const char *reader = i % 3 == 0 ? "alice" : "bob";
        snprintf(study, sizeof(study), "2.%d", i);
        arrive_full(study, i % 4 < 2 ? "CT" : "MR", "", i % 2 ? "township2" : "township1", t);
        cr_assert_eq(wl_complete(rc_, study, "", t + 1), 0);
        cr_assert_eq(wl_claim(rc_, &cfg, study, reader, t + 2), 0);
        cr_assert_eq(wl_set_state(rc_, study, WL_REPORTED, reader, t + 3), 0);
        cr_assert_eq(wl_set_state(rc_, study, WL_FINAL, reader, t + 4), 0);
        if (i % 100 == 99)
            cr_assert_eq(wl_set_state(rc_, study, WL_AMENDED, reader, t + 5), 0);
    }
}

/* 10 active items 3.0..3.9 arrived TA + i s: township1 for i < 6, CT for
 * even i, stat for i < 3 (overdue after 30 min); 3.0 and 3.1 claimed by
 * alice, 3.2 by bob. */
static void fill_active(void)
{
    char study[32];
    for (int i = 0; i < 10; i++) {
        snprintf(study, sizeof(study), "3.%d", i);
        arrive_full(study, i % 2 ? "MR" : "CT", i < 3 ? "head [stat]" : "",
                    i < 6 ? "township1" : "township2", TA + i * 1000);
        cr_assert_eq(wl_complete(rc_, study, "", TA + 10000), 0);
    }
    cr_assert_eq(sweep(TA + 31 * MIN).overdue, 3);
    cr_assert_eq(wl_claim(rc_, &cfg, "3.0", "alice", TA + 32 * MIN), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "3.1", "alice", TA + 32 * MIN), 0);
    cr_assert_eq(wl_claim(rc_, &cfg, "3.2", "bob", TA + 32 * MIN), 0);
}

/* Redis commands run since the last call (scripts' commands included):
 * INFO commandstats after CONFIG RESETSTAT, without those two. */
static long commands_since_reset(void)
{
    redisReply *r = redisCommand(rc_, "INFO commandstats");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    long total = 0;
    for (const char *p = r->str; (p = strstr(p, "cmdstat_")); p++) {
        const char *calls = strstr(p, ":calls=");
        if (!calls)
            break;
        if (strncmp(p, "cmdstat_info", 12) && strncmp(p, "cmdstat_config", 14))
            total += atol(calls + 7);
    }
    freeReplyObject(r);
    r = redisCommand(rc_, "CONFIG RESETSTAT");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return total;
}

/* Lists f (at most 32 ids kept in p) and returns the Redis commands it took. */
static long list_cost(const wl_filter *f, page *p, wl_counts *counts)
{
    commands_since_reset();
    int rc = wl_list(rc_, &cfg, f, collect_item, p, counts);
    cr_assert_eq(rc, 0, "%s", hr_strerror(rc));
    return commands_since_reset();
}

static char *ids_of(const page *p, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < p->n && i < 32; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", i ? " " : "", p->ids[i]);
    }
    return buf;
}

/* One listing: its page and cost (at most max_cmds Redis commands). */
static void expect_listing(const char *what, const wl_filter *f, const char *ids, long max_cmds)
{
    page p = {0};
    wl_counts counts;
    char got[1024];
    long cost = list_cost(f, &p, &counts);
    cr_log_info("%s: %ld Redis commands", what, cost);
    cr_expect_str_eq(ids_of(&p, got, sizeof(got)), ids, "%s", what);
    cr_expect_leq(cost, max_cmds, "%s: %ld Redis commands for a page of %d among %d past items",
                  what, cost, p.n, PAST_ITEMS);
}

Test(worklist, listing_cost_does_not_grow_with_history, .timeout = 600)
{
    hr_log_set_level(HR_LOG_ERROR);
    fill_past();
    fill_active();
    /* a page of n items: its HGETALLs, counts and a few index reads */
    const long small = 60;
    wl_filter f = {.center = "imaging", .state = -1, .priority = -1, .limit = 20};
    expect_listing("working list", &f, "3.0 3.1 3.2 3.3 3.4 3.5 3.6 3.7 3.8 3.9", small);
    f.order_arrival = 1;
    expect_listing("working list by arrival", &f, "3.0 3.1 3.2 3.3 3.4 3.5 3.6 3.7 3.8 3.9", small);
    f.from_ms = TA + 2000;
    f.to_ms = TA + 4000;
    expect_listing("... arrived in a range", &f, "3.2 3.3 3.4", small);
    f.order_arrival = 0;
    expect_listing("... by priority", &f, "3.2 3.3 3.4", small);
    f.from_ms = f.to_ms = 0;
    f.claimed_by = "alice";
    expect_listing("mine (claimed)", &f, "3.0 3.1", small);
    f.order_arrival = 1;
    expect_listing("mine by arrival", &f, "3.0 3.1", small);
    f.order_arrival = 0;
    f.claimed_by = NULL;
    f.hospital = "township2";
    expect_listing("hospital", &f, "3.6 3.7 3.8 3.9", small);
    f.hospital = NULL;
    f.modality = "MR";
    expect_listing("modality", &f, "3.1 3.3 3.5 3.7 3.9", small);
    f.order_arrival = 1;
    expect_listing("modality by arrival", &f, "3.1 3.3 3.5 3.7 3.9", small);
    f.modality = NULL;
    f.order_arrival = 0;
    f.overdue_only = 1;
    expect_listing("overdue", &f, "3.0 3.1 3.2", small);
    f.overdue_only = 0;

    /* the history: a page of it costs a page */
    f.state = WL_FINAL;
    f.limit = 3;
    expect_listing("final, by priority", &f, "2.0 2.1 2.2", small);
    f.order_arrival = 1;
    expect_listing("final, by arrival", &f, "2.0 2.1 2.2", small);
    f.from_ms = T0 + 15000 * 1000LL;
    expect_listing("final, arrived since", &f, "2.15000 2.15001 2.15002", small);
    f.from_ms = 0;
    f.hospital = "township2";
    expect_listing("final from a hospital", &f, "2.1 2.3 2.5", small);
    f.hospital = NULL;
    f.modality = "MR";
    expect_listing("final of a modality", &f, "2.2 2.3 2.6", small);
    f.modality = NULL;
    f.claimed_by = "alice";
    expect_listing("final, mine (reported by me)", &f, "2.0 2.3 2.6", small);
    f.state = WL_AMENDED;
    expect_listing("amended, mine", &f, "2.99 2.399 2.699", small);
    f.claimed_by = NULL;
    /* two filters on one index: the rest is checked per item, within a budget */
    f.state = WL_FINAL;
    f.hospital = "township2";
    f.modality = "MR";
    expect_listing("final, hospital and modality", &f, "2.3 2.7 2.11", 1200);
}

/* The per-center list indexes follow the item: the working list's, then
 * the history's only (docs/index-schema.md). */
Test(worklist, list_indexes_follow_the_item)
{
    const long long p = 2 * 10000000000000LL + T0 + 1440 * MIN; /* routine, due */
    arrive("7.1", "CT", T0);
    cr_assert_eq(wl_complete(rc_, "7.1", "", T0 + 1), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:work", "7.1"), p);
    cr_expect_eq(zscore("hr:wl:c:imaging:a:work", "7.1"), T0);
    cr_expect_eq(zscore("hr:wl:c:imaging:h:township1:work", "7.1"), p);
    cr_expect_eq(zscore("hr:wl:c:imaging:m:CT:work", "7.1"), p);
    cr_expect_eq(zscore("hr:wl:c:imaging:a:receiving", "7.1"), -1);
    cr_assert_eq(wl_claim(rc_, &cfg, "7.1", "alice", T0 + 2), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:alice:work", "7.1"), p);
    cr_assert_eq(wl_reassign(rc_, &cfg, "7.1", "bob", "lead", T0 + 3), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:alice:work", "7.1"), -1);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:bob:work", "7.1"), p);
    cr_assert_eq(wl_set_state(rc_, "7.1", WL_REPORTED, "bob", T0 + 4), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:bob:work", "7.1"), -1);
    cr_expect_eq(zscore("hr:wl:c:imaging:work", "7.1"), -1);
    cr_expect_eq(zscore("hr:wl:c:imaging:m:CT:work", "7.1"), -1);
    cr_assert_eq(wl_set_state(rc_, "7.1", WL_FINAL, "bob", T0 + 5), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:s:final", "7.1"), p);
    cr_expect_eq(zscore("hr:wl:c:imaging:a:final", "7.1"), T0);
    cr_expect_eq(zscore("hr:wl:c:imaging:h:township1:final", "7.1"), T0);
    cr_expect_eq(zscore("hr:wl:c:imaging:m:CT:final", "7.1"), T0);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:bob:final", "7.1"), T0);
    cr_assert_eq(wl_set_state(rc_, "7.1", WL_AMENDED, "carol", T0 + 6), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:bob:final", "7.1"), -1);
    cr_expect_eq(zscore("hr:wl:c:imaging:u:bob:amended", "7.1"), T0, "the report's author");
    cr_expect_eq(zscore("hr:wl:c:imaging:a:amended", "7.1"), T0);
    /* a modality learnt from a later instance */
    arrive_full("7.2", "", "", "township1", T0);
    cr_assert_eq(wl_complete(rc_, "7.2", "", T0 + 1), 0);
    arrive_full("7.2", "MR", "", "township1", T0 + 2);
    cr_expect_geq(zscore("hr:wl:c:imaging:m:MR:work", "7.2"), 0);
}

/* Items indexed before decision 0015 (only in s:<state>, work and arr) are
 * indexed by wl_upgrade, or by the first listings of their center. */
Test(worklist, items_of_before_the_indexes_are_upgraded)
{
    char out[64];
    arrive("8.1", "CT", T0);
    arrive("8.2", "MR", T0 + 1000);
    cr_assert_eq(wl_complete(rc_, "8.1", "", T0 + 1), 0);
    cr_assert_eq(wl_complete(rc_, "8.2", "", T0 + 1), 0);
    /* as the code before it left them */
    const char *newer[] = {"a:ready", "a:work", "h:township1:work", "m:CT:work", "m:MR:work"};
    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++)
        cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "DEL hr:wl:c:imaging:%s", newer[i]), 0);
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out),
                              "ZADD hr:wl:c:imaging:arr %lld 8.1 %lld 8.2", T0, T0 + 1000),
                 0);
    wl_filter f = {.center = "imaging", .state = -1, .priority = -1, .order_arrival = 1};
    expect_page(&f, "8.1 8.2", 2);
    cr_expect_eq(zcard("hr:wl:c:imaging:arr"), 0);
    cr_expect_eq(zscore("hr:wl:c:imaging:m:MR:work", "8.2"), zscore("hr:wl:c:imaging:work", "8.2"));
    long left = -1;
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "ZADD hr:wl:c:ecg:arr %lld 8.1", T0), 0);
    cr_expect_eq(wl_upgrade(rc_, &cfg, 10, &left), 0);
    cr_expect_eq(left, 0);
    cr_expect_eq(zcard("hr:wl:c:ecg:a:ready"), 0, "an item of another center is only dropped");
}

/* Every page of f by cursor (each of at most f->limit items) into ids (in
 * order), calling between(k) before page k > 0; returns the number of ids. */
#define WALK_MAX 30000
typedef struct walk {
    int n;
    char (*ids)[65];
} walk;

static int walk_cb(void *arg, const wl_item *it)
{
    walk *w = arg;
    cr_assert_lt(w->n, WALK_MAX);
    snprintf(w->ids[w->n++], 65, "%s", it->study);
    return 0;
}

static walk walk_pages(wl_filter f, void (*between)(int k), int *pages)
{
    walk w = {0, calloc(WALK_MAX, 65)};
    cr_assert_not_null(w.ids);
    char cur[WL_CURSOR_MAX] = "";
    wl_counts counts;
    int k = 0;
    for (;; k++) {
        cr_assert_lt(k, 2000, "pages end");
        if (k && between)
            between(k);
        f.cursor = cur;
        int before = w.n;
        int rc = wl_list(rc_, &cfg, &f, walk_cb, &w, &counts);
        cr_assert_eq(rc, 0, "page %d: %s", k, hr_strerror(rc));
        cr_assert_leq(w.n - before, f.limit ? f.limit : 100);
        cr_assert_leq(counts.examined, WL_SCAN_BUDGET);
        if (!counts.next[0])
            break;
        snprintf(cur, sizeof(cur), "%s", counts.next);
    }
    if (pages)
        *pages = k + 1;
    return w;
}

static int index_of(const walk *w, const char *id)
{
    int at = -1;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->ids[i], id) == 0) {
            cr_expect_eq(at, -1, "%s listed twice", id);
            at = i;
        }
    return at;
}

/* 40 ready items 4.0..4.39, all routine with the same due time (one score:
 * the order among them is the UID's bytes), and 5.0..5.9 stat. */
static void fill_ties(void)
{
    char study[32];
    for (int i = 0; i < 40; i++) {
        snprintf(study, sizeof(study), "4.%d", i);
        arrive_full(study, "CT", "", "township1", T0);
        cr_assert_eq(wl_complete(rc_, study, "", T0 + 1), 0);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(study, sizeof(study), "5.%d", i);
        arrive_full(study, "CT", "x [stat]", "township2", T0 + i);
        cr_assert_eq(wl_complete(rc_, study, "", T0 + 10), 0);
    }
}

/* Between pages: items already listed and items still to come are claimed,
 * released, reported (they leave the working list) and new ones arrive. */
static void churn(int k)
{
    char study[32];
    static const char *const left[] = {"4.0", "4.25", "4.31", "4.9"}; /* after listing */
    if (k == 1) {
        cr_assert_eq(wl_claim(rc_, &cfg, "4.1", "alice", T0 + 100), 0);  /* listed, stays */
        cr_assert_eq(wl_claim(rc_, &cfg, "4.35", "alice", T0 + 100), 0); /* to come, stays */
        cr_assert_eq(wl_claim(rc_, &cfg, "5.0", "bob", T0 + 100), 0);    /* listed: leaves */
        cr_assert_eq(wl_set_state(rc_, "5.0", WL_REPORTED, "bob", T0 + 101), 0);
    }
    if (k == 2) {
        cr_assert_eq(wl_release(rc_, "4.35", "alice", T0 + 200), 0);
        for (int i = 0; i < 4; i++) { /* 4.0 listed, the others maybe not yet */
            cr_assert_eq(wl_claim(rc_, &cfg, left[i], "bob", T0 + 200), 0);
            cr_assert_eq(wl_set_state(rc_, left[i], WL_REPORTED, "bob", T0 + 201), 0);
        }
        snprintf(study, sizeof(study), "4.99"); /* a new routine one: after the others */
        arrive_full(study, "CT", "", "township1", T0 + 60000);
        cr_assert_eq(wl_complete(rc_, study, "", T0 + 60001), 0);
    }
}

Test(worklist, cursor_pages_return_each_item_once_in_order)
{
    fill_ties();
    wl_filter f = {.center = "imaging", .state = -1, .priority = -1, .limit = 7};
    /* unchanged data: the same as one big page */
    int pages = 0;
    walk all = walk_pages(f, NULL, &pages);
    cr_expect_eq(all.n, 50);
    cr_expect_eq(pages, 8);
    cr_expect_str_eq(all.ids[0], "5.0");
    cr_expect_str_eq(all.ids[10], "4.0");
    cr_expect_str_eq(all.ids[11], "4.1");
    cr_expect_str_eq(all.ids[12], "4.10", "equal scores: byte order of the UIDs");
    /* items changing state between pages */
    walk w = walk_pages(f, churn, NULL);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "4.%d", i);
        int at = index_of(&w, id);
        if (i == 25 || i == 31 || i == 9) /* reported before their page (or not) */
            continue;
        cr_expect_geq(at, 0, "%s, in the working list all along, was listed", id);
    }
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "5.%d", i);
        cr_expect_geq(index_of(&w, id), 0, "%s listed", id);
    }
    cr_expect_geq(index_of(&w, "4.99"), 0, "a new item after the cursor is listed");
    /* in the listing's order: the same relative order as the first walk */
    int prev = -1;
    for (int i = 0; i < w.n; i++) {
        int at = index_of(&all, w.ids[i]);
        if (at < 0)
            continue;
        cr_expect_gt(at, prev, "%s out of order", w.ids[i]);
        prev = at;
    }
    free(all.ids);
    free(w.ids);

    /* arrival order, a filter checked per item (priority by arrival) */
    f.order_arrival = 1;
    f.priority = HR_PRIO_STAT;
    f.limit = 3;
    w = walk_pages(f, NULL, NULL);
    cr_expect_eq(w.n, 9, "the stat ones still in the working list");
    cr_expect_str_eq(w.ids[0], "5.1");
    cr_expect_str_eq(w.ids[8], "5.9");
    free(w.ids);

    /* a cursor is for the order it came from; malformed ones are refused */
    wl_counts counts;
    f.priority = -1;
    f.cursor = "p:20000000000000:0:4.1";
    cr_expect_eq(wl_list(rc_, &cfg, &f, NULL, NULL, &counts), -EINVAL);
    f.cursor = "a:1:0:4.1 ";
    cr_expect_eq(wl_list(rc_, &cfg, &f, NULL, NULL, &counts), -EINVAL);
    f.cursor = "a:x:0:4.1";
    cr_expect_eq(wl_list(rc_, &cfg, &f, NULL, NULL, &counts), -EINVAL);
    f.cursor = "a:1800000000005:0:5.4"; /* after 5.4 by arrival */
    page p = {0};
    cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &p, &counts), 0);
    cr_expect_str_eq(p.ids[0], "5.5");
}

Test(worklist, cursor_pages_over_a_long_history, .timeout = 600)
{
    hr_log_set_level(HR_LOG_ERROR);
    fill_past();
    /* two filters: one is an index, the other checked within the budget;
     * pages may be short, the walk still sees every match exactly once */
    wl_filter f = {.center = "imaging",
                   .state = WL_FINAL,
                   .priority = -1,
                   .limit = 500,
                   .order_arrival = 1,
                   .hospital = "township2",
                   .modality = "MR"};
    int pages = 0;
    walk w = walk_pages(f, NULL, &pages);
    int n = 0;
    for (int i = 0; i < PAST_ITEMS; i++)
        if (i % 4 == 3 && i % 100 != 99) {
            char id[16];
            snprintf(id, sizeof(id), "2.%d", i);
            cr_assert_lt(n, w.n);
            cr_expect_str_eq(w.ids[n], id);
            n++;
        }
    cr_expect_eq(w.n, n);
    cr_expect_geq(pages, 10, "at most WL_SCAN_BUDGET examined per page");
    free(w.ids);
    /* an offset (deprecated) on an index: ranks, not a walk */
    f.hospital = f.modality = NULL;
    f.offset = 15000;
    f.limit = 2;
    wl_counts counts;
    page p = {0};
    cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &p, &counts), 0);
    cr_expect_eq(counts.examined, 2);
    cr_expect_eq(counts.matched, PAST_ITEMS - PAST_ITEMS / 100);
    cr_expect_str_eq(p.ids[0], "2.15151", "15000 finals skipped (one in 100 amended)");
    /* an offset with a filter checked per item: continued by the cursor */
    f.hospital = "township1";
    f.modality = "CT";
    f.offset = 4000;
    f.limit = 1;
    char cur[WL_CURSOR_MAX] = "";
    int k = 0;
    p.n = 0;
    do {
        f.cursor = cur;
        cr_assert_eq(wl_list(rc_, &cfg, &f, collect_item, &p, &counts), 0);
        cr_assert_leq(counts.examined, WL_SCAN_BUDGET);
        snprintf(cur, sizeof(cur), "%s", counts.next);
        f.offset = 0;
    } while (p.n == 0 && cur[0] && ++k < 100);
    cr_assert_eq(p.n, 1);
    cr_expect_str_eq(p.ids[0], "2.16000", "the 4001st final CT item of township1 (i % 4 == 0)");
}

Test(worklist, hospital_cursor_pages_newest_first)
{
    char study[32];
    for (int i = 0; i < 9; i++) {
        snprintf(study, sizeof(study), "6.%d", i);
        arrive_full(study, "CT", "", "township1", T0 + i * 1000);
    }
    char next[WL_CURSOR_MAX] = "", cur[WL_CURSOR_MAX] = "";
    page p = {0};
    long total = 0;
    for (int k = 0; k < 10; k++) {
        cr_assert_eq(wl_list_hospital(rc_, "township1", cur, 0, 4, collect_item, &p, &total, next,
                                      sizeof(next)),
                     0);
        if (!next[0])
            break;
        snprintf(cur, sizeof(cur), "%s", next);
        /* newer exams arrive while the technician pages: not repeated */
        snprintf(study, sizeof(study), "6.%d", 100 + k);
        arrive_full(study, "CT", "", "township1", T0 + 100000 + k);
    }
    cr_expect_eq(total, 11);
    cr_assert_eq(p.n, 9);
    for (int i = 0; i < 9; i++) {
        snprintf(study, sizeof(study), "6.%d", 8 - i);
        cr_expect_str_eq(p.ids[i], study);
    }
    cr_expect_eq(wl_list_hospital(rc_, "township1", "a:1:0:6.1", 0, 4, collect_item, &p, &total,
                                  next, sizeof(next)),
                 -EINVAL, "a cursor of another listing");
}
