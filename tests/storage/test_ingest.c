/* The ingest pipeline on a real libuv loop with a real redis-server. */
#include "common/hr_err.h"
#include "dicom/uids.h"
#include "storage/ingest.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

static char dir[512];
static ts_redis redis;
static uv_loop_t loop;
static sto_ctx ctx;

static void setup(void)
{
    int removed;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0, "redis-server must be installed");
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&ctx, 0, sizeof(ctx));
    ctx.loop = &loop;
    ctx.max_object_bytes = 1 << 20;
    ctx.max_feed = 16384;
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
    sto_index_close(ctx.index);
    uv_run(&loop, UV_RUN_DEFAULT);
    sto_ctx_release(&ctx);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle leaked");
    ts_redis_stop(&redis);
    ts_rmrf(dir);
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 60);

#define CT "1.2.840.10008.5.1.4.1.1.2"

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

/* Explicit VR LE data set with the index attributes and some pixel bytes. */
static size_t dataset(unsigned char *p, const char *sop, const char *desc, size_t pixels)
{
    size_t n = 0;
    n += el(p + n, 0x0008, 0x0016, "UI", CT);
    n += el(p + n, 0x0008, 0x0018, "UI", sop);
    n += el(p + n, 0x0008, 0x0020, "DA", "20261122");
    n += el(p + n, 0x0008, 0x0050, "SH", "ACC9");
    n += el(p + n, 0x0008, 0x0060, "CS", "CT");
    n += el(p + n, 0x0008, 0x1030, "LO", desc);
    n += el(p + n, 0x0010, 0x0010, "PN", "Test^Patient");
    n += el(p + n, 0x0010, 0x0020, "LO", "PID9");
    n += el(p + n, 0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.2.1125.77");
    n += el(p + n, 0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.2.1125.78");
    n += el(p + n, 0x0020, 0x0013, "IS", "1");
    unsigned char hdr[12] = {0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0};
    hdr[8] = pixels & 0xFF, hdr[9] = (pixels >> 8) & 0xFF, hdr[10] = (pixels >> 16) & 0xFF;
    memcpy(p + n, hdr, 12);
    n += 12;
    for (size_t i = 0; i < pixels; i++)
        p[n + i] = (unsigned char)(i * 7);
    return n + pixels;
}

typedef struct outcome {
    int done;
    sto_ingest_result r;
    char sop[65];
} outcome;

static void on_done(void *arg, const sto_ingest_result *r)
{
    outcome *o = arg;
    o->done = 1;
    o->r = *r;
    snprintf(o->sop, sizeof(o->sop), "%s", r->attrs->sop_instance_uid);
    o->r.attrs = NULL;
}

static void on_resume(void *arg)
{
    (void)arg;
}

/* Feeds buf in chunks like PDVs, honouring pauses by running the loop. */
static outcome run(const char *cmd_sop, const unsigned char *buf, size_t n, size_t chunk)
{
    sto_ingest_meta m = {
        .sop_class = CT, .ts = DCM_TS_EXPLICIT_LE, .source_ae = "TESTAE", .hospital = "township1"};
    snprintf(m.sop_instance, sizeof(m.sop_instance), "%s", cmd_sop);
    sto_ingest *ig;
    outcome o = {0};
    cr_assert_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), 0);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (sto_ingest_feed(ig, buf + off, k) == 1)
            uv_run(&loop, UV_RUN_ONCE);
    }
    sto_ingest_end(ig, on_done, &o);
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    return o;
}

static int count_files(const char *sub)
{
    char cmd[700], line[32] = "0";
    snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f | wc -l", dir, sub);
    FILE *f = popen(cmd, "r");
    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        pclose(f);
    }
    return atoi(line);
}

static unsigned char buf[1 << 20];

Test(ingest, stores_then_recognises_identical_and_new_versions)
{
    char v[128];
    size_t n = dataset(buf, "1.2.3.4.1", "First", 600000);
    outcome o = run("1.2.3.4.1", buf, n, 16384);
    cr_assert_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_eq(count_files("objects"), 1);
    cr_expect_eq(count_files("tmp"), 0);
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.826.0.1.3680043.2.1125.77}:i:1.2.3.4.1 sha");
    cr_expect_str_eq(v, o.r.sha);
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:pt:township1|PID9 name");
    cr_expect_str_eq(v, "Test^Patient");
    ts_redis_get(&redis, v, sizeof(v), "SISMEMBER hr:ix:pid:PID9 township1|PID9");
    cr_expect_str_eq(v, "1");
    ts_redis_get(&redis, v, sizeof(v), "SISMEMBER hr:ix:patients township1|PID9");
    cr_expect_str_eq(v, "1");
    ts_redis_get(&redis, v, sizeof(v), "SISMEMBER hr:ix:acc:ACC9 1.2.826.0.1.3680043.2.1125.77");
    cr_expect_str_eq(v, "1");
    ts_redis_get(&redis, v, sizeof(v), "ZSCORE hr:ix:date 1.2.826.0.1.3680043.2.1125.77");
    cr_expect_str_eq(v, "20261122");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:ix:sop 1.2.3.4.1");
    cr_expect_str_eq(v, "1.2.826.0.1.3680043.2.1125.77");

    outcome again = run("1.2.3.4.1", buf, n, 7000);
    cr_expect_eq(again.r.status, STO_IDENTICAL);
    cr_expect_str_eq(again.r.sha, o.r.sha);
    cr_expect_eq(count_files("objects"), 1, "no second copy");

    n = dataset(buf, "1.2.3.4.1", "Second", 600000);
    outcome changed = run("1.2.3.4.1", buf, n, 16384);
    cr_expect_eq(changed.r.status, STO_NEW_VERSION);
    cr_expect_eq(count_files("objects"), 2, "both versions kept");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.826.0.1.3680043.2.1125.77}:i:1.2.3.4.1 sha");
    cr_expect_str_eq(v, changed.r.sha, "newest indexed");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.826.0.1.3680043.2.1125.77}:st instances");
    cr_expect_str_eq(v, "1", "still one instance");
}

Test(ingest, refuses_mismatch_truncation_and_oversize_without_keeping_anything)
{
    size_t n = dataset(buf, "1.2.3.4.2", "x", 1000);
    outcome o = run("1.2.3.4.99", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_MISMATCH, "%s", o.r.reason);
    cr_expect(strstr(o.r.reason, "1.2.3.4.99") != NULL, "%s", o.r.reason);

    o = run("1.2.3.4.2", buf, n - 5, 16384);
    cr_expect_eq(o.r.status, STO_ERR_PARSE, "%s", o.r.reason);

    ctx.max_object_bytes = 300000;
    n = dataset(buf, "1.2.3.4.3", "big", 400000);
    o = run("1.2.3.4.3", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_RESOURCES, "%s", o.r.reason);
    cr_expect_eq(o.r.rc, HR_ETOOBIG);

    cr_expect_eq(count_files("objects"), 0);
    cr_expect_eq(count_files("tmp"), 0);
    char v[64];
    ts_redis_get(&redis, v, sizeof(v), "HLEN hr:ix:sop");
    cr_expect_str_eq(v, "0");
}

Test(ingest, abort_discards_the_temp_file)
{
    size_t n = dataset(buf, "1.2.3.4.5", "x", 800000);
    sto_ingest_meta m = {.sop_class = CT,
                         .sop_instance = "1.2.3.4.5",
                         .ts = DCM_TS_EXPLICIT_LE,
                         .hospital = "township1"};
    sto_ingest *ig;
    cr_assert_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), 0);
    for (size_t off = 0; off < n / 2; off += 16384)
        if (sto_ingest_feed(ig, buf + off, 16384) == 1)
            uv_run(&loop, UV_RUN_ONCE);
    sto_ingest_abort(ig);
    while (ctx.active)
        uv_run(&loop, UV_RUN_ONCE);
    cr_expect_eq(count_files("tmp"), 0);
    cr_expect_eq(count_files("objects"), 0);
}

Test(ingest, redis_down_means_failure_not_success)
{
    size_t n = dataset(buf, "1.2.3.4.6", "x", 1000);
    ts_redis_stop(&redis);
    for (int i = 0; i < 100 && sto_index_ready(ctx.index); i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(10000);
    outcome o = run("1.2.3.4.6", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_RESOURCES, "%s", o.r.reason);
    cr_expect_eq(count_files("objects"), 1, "the object is durable, just not acknowledged");
    cr_expect_eq(count_files("tmp"), 0);
}

Test(ingest, rejects_invalid_declared_uids_and_unknown_transfer_syntax)
{
    sto_ingest *ig;
    sto_ingest_meta m = {.sop_class = CT, .sop_instance = "1.2.03", .ts = DCM_TS_EXPLICIT_LE};
    cr_expect_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), HR_EPARSE);
    snprintf(m.sop_instance, sizeof(m.sop_instance), "1.2.3");
    snprintf(m.ts, sizeof(m.ts), "1.2.3.4.5.6");
    cr_expect_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), HR_EUNSUP);
    cr_expect_eq(ctx.active, 0);
}
