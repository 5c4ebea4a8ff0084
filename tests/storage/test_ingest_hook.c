/* The after-index hook of storage/ingest.c (sto_ctx.after_index) on a real
 * libuv loop with a real redis-server: it runs between the index commit and
 * the done callback, for every accepted object, and its failure turns the
 * outcome into STO_ERR_RESOURCES. */
#include "common/hr_err.h"
#include "dicom/uids.h"
#include "storage/ingest.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static char dir[512];
static ts_redis redis;
static uv_loop_t loop;
static sto_ctx ctx;

#define CT    "1.2.840.10008.5.1.4.1.1.2"
#define STUDY "1.2.826.0.1.3680043.2.1125.91"

/* What the hook saw, and how it answers. */
typedef struct hook_state {
    int calls;
    int status[8];
    char study[65];
    char hospital[64];
    char source_ae[17];
    int indexed_when_called; /* the instance was in Redis when the hook ran */
    int answer;              /* rc given to done */
    int defer;               /* answer from a timer, not inside the hook */
    int done_seen_early;     /* the done callback ran before the hook answered */
    sto_hook_done_cb pending_done;
    void *pending_token;
    uv_timer_t timer;
} hook_state;

static hook_state hs;

typedef struct outcome {
    int done;
    sto_ingest_result r;
} outcome;

static outcome *current;

static void answer(hook_state *h)
{
    sto_hook_done_cb done = h->pending_done;
    h->pending_done = NULL;
    done(h->pending_token, h->answer);
}

static void on_timer(uv_timer_t *t)
{
    hook_state *h = t->data;
    if (current && current->done)
        h->done_seen_early = 1;
    answer(h);
}

static void hook(void *arg, const dcm_attrs *a, const sto_ingest_meta *m,
                 const sto_ingest_result *res, sto_hook_done_cb done, void *token)
{
    hook_state *h = arg;
    char v[64];
    if (h->calls < 8)
        h->status[h->calls] = (int)res->status;
    h->calls++;
    snprintf(h->study, sizeof(h->study), "%s", a->study_instance_uid);
    snprintf(h->hospital, sizeof(h->hospital), "%s", m->hospital);
    snprintf(h->source_ae, sizeof(h->source_ae), "%s", m->source_ae);
    ts_redis_get(&redis, v, sizeof(v), "HEXISTS hr:ix:sop %s", a->sop_instance_uid);
    h->indexed_when_called = strcmp(v, "1") == 0;
    h->pending_done = done;
    h->pending_token = token;
    if (h->defer)
        uv_timer_start(&h->timer, on_timer, 20, 0);
    else
        answer(h);
}

static void setup(void)
{
    int removed;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0, "redis-server must be installed");
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&ctx, 0, sizeof(ctx));
    memset(&hs, 0, sizeof(hs));
    ctx.loop = &loop;
    ctx.max_object_bytes = 1 << 20;
    ctx.max_feed = 16384;
    ctx.after_index = hook;
    ctx.after_index_arg = &hs;
    uv_timer_init(&loop, &hs.timer);
    hs.timer.data = &hs;
    cr_assert_eq(sto_objstore_open(&ctx.store, dir, &removed), 0);
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    cr_assert_eq(sto_index_open(&loop, &addr, &ctx.index), 0);
    for (int i = 0; i < 500 && !sto_index_ready(ctx.index); i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(sto_index_ready(ctx.index));
}

static void teardown(void)
{
    uv_close((uv_handle_t *)&hs.timer, NULL);
    sto_index_close(ctx.index);
    uv_run(&loop, UV_RUN_DEFAULT);
    sto_ctx_release(&ctx);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle leaked");
    ts_redis_stop(&redis);
    ts_rmrf(dir);
}

TestSuite(ingest_hook, .init = setup, .fini = teardown, .timeout = 60);

static size_t el(unsigned char *p, unsigned g, unsigned e, const char *vr, const char *v)
{
    size_t n = strlen(v), len = n + (n & 1);
    p[0] = g & 0xFF, p[1] = g >> 8, p[2] = e & 0xFF, p[3] = e >> 8;
    p[4] = vr[0], p[5] = vr[1], p[6] = len & 0xFF, p[7] = len >> 8;
    memcpy(p + 8, v, n);
    if (n & 1)
        p[8 + n] = strcmp(vr, "UI") == 0 ? 0 : ' ';
    return 8 + len;
}

static size_t dataset(unsigned char *p, const char *sop, const char *desc)
{
    size_t n = 0;
    n += el(p + n, 0x0008, 0x0016, "UI", CT);
    n += el(p + n, 0x0008, 0x0018, "UI", sop);
    n += el(p + n, 0x0008, 0x0060, "CS", "CT");
    n += el(p + n, 0x0008, 0x1030, "LO", desc);
    n += el(p + n, 0x0010, 0x0020, "LO", "PID1");
    n += el(p + n, 0x0020, 0x000D, "UI", STUDY);
    n += el(p + n, 0x0020, 0x000E, "UI", STUDY ".1");
    return n;
}

static void on_done(void *arg, const sto_ingest_result *r)
{
    outcome *o = arg;
    o->done = 1;
    o->r = *r;
    o->r.attrs = NULL;
}

static void on_resume(void *arg)
{
    (void)arg;
}

static outcome run(const char *sop, const unsigned char *buf, size_t n)
{
    sto_ingest_meta m = {.sop_class = CT,
                         .ts = DCM_TS_EXPLICIT_LE,
                         .source_ae = "TOWNSHIP1",
                         .hospital = "township1"};
    snprintf(m.sop_instance, sizeof(m.sop_instance), "%s", sop);
    sto_ingest *ig;
    outcome o = {0};
    current = &o;
    cr_assert_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), 0);
    cr_assert_eq(sto_ingest_feed(ig, buf, n), 0);
    sto_ingest_end(ig, on_done, &o);
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    current = NULL;
    return o;
}

static unsigned char buf[4096];

Test(ingest_hook, runs_after_the_index_commit_for_every_accepted_object)
{
    size_t n = dataset(buf, "1.2.3.9.1", "First");
    hs.defer = 1; /* the acknowledgement waits for the hook */
    outcome o = run("1.2.3.9.1", buf, n);
    cr_expect_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_eq(hs.calls, 1);
    cr_expect_eq(hs.status[0], STO_STORED);
    cr_expect(hs.indexed_when_called, "the hook runs after the index commit");
    cr_expect(!hs.done_seen_early, "done waits for the hook");
    cr_expect_str_eq(hs.study, STUDY);
    cr_expect_str_eq(hs.hospital, "township1");
    cr_expect_str_eq(hs.source_ae, "TOWNSHIP1");
    cr_expect_eq(ctx.stored, 1);

    hs.defer = 0; /* done called inside the hook also works */
    o = run("1.2.3.9.1", buf, n);
    cr_expect_eq(o.r.status, STO_IDENTICAL);
    cr_expect_eq(hs.calls, 2, "an identical resend runs the hook again");
    cr_expect_eq(hs.status[1], STO_IDENTICAL);
    cr_expect_eq(ctx.duplicates, 1);

    n = dataset(buf, "1.2.3.9.1", "Second");
    o = run("1.2.3.9.1", buf, n);
    cr_expect_eq(o.r.status, STO_NEW_VERSION);
    cr_expect_eq(hs.calls, 3);
    cr_expect_eq(hs.status[2], STO_NEW_VERSION);
}

Test(ingest_hook, a_failure_refuses_the_object_until_the_retry)
{
    size_t n = dataset(buf, "1.2.3.9.2", "x");
    hs.defer = 1;
    hs.answer = HR_EREDIS;
    outcome o = run("1.2.3.9.2", buf, n);
    cr_expect_eq(o.r.status, STO_ERR_RESOURCES);
    cr_expect_eq(o.r.rc, HR_EREDIS);
    cr_expect(strstr(o.r.reason, "worklist unavailable") != NULL, "%s", o.r.reason);
    cr_expect_eq(ctx.hook_failures, 1);
    cr_expect_eq(ctx.failed, 1);
    cr_expect_eq(ctx.stored, 0, "not counted as stored: not acknowledged");

    hs.answer = 0; /* the sender retries the same bytes */
    o = run("1.2.3.9.2", buf, n);
    cr_expect_eq(o.r.status, STO_IDENTICAL, "%s", o.r.reason);
    cr_expect_eq(hs.calls, 2);
    cr_expect_eq(hs.status[1], STO_IDENTICAL);
}

Test(ingest_hook, not_called_for_refused_objects)
{
    size_t n = dataset(buf, "1.2.3.9.3", "x");
    outcome o = run("1.2.3.9.4", buf, n); /* declared UID differs */
    cr_expect_eq(o.r.status, STO_ERR_MISMATCH);
    ts_redis_stop(&redis);
    for (int i = 0; i < 100 && sto_index_ready(ctx.index); i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(10000);
    o = run("1.2.3.9.3", buf, n); /* not indexed */
    cr_expect_eq(o.r.status, STO_ERR_RESOURCES);
    cr_expect_eq(hs.calls, 0);
}
