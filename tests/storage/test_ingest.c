/* The ingest pipeline on a real libuv loop with a real redis-server. */
#include "common/hr_err.h"
#include "dicom/uids.h"
#include "storage/ingest.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
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

#define STUDY "1.2.826.0.1.3680043.2.1125.77"

/* What varies between the data sets of these tests. */
typedef struct ds_opts {
    const char *sop_class; /* NULL: CT */
    const char *patient_name;
    const char *patient_id;
    const char *issuer; /* NULL: none */
    const char *study;  /* NULL: STUDY */
} ds_opts;

/* Explicit VR LE data set with the index attributes and some pixel bytes. */
static size_t dataset_opts(unsigned char *p, const char *sop, const char *desc, size_t pixels,
                           const ds_opts *o)
{
    size_t n = 0;
    n += el(p + n, 0x0008, 0x0016, "UI", o->sop_class ? o->sop_class : CT);
    n += el(p + n, 0x0008, 0x0018, "UI", sop);
    n += el(p + n, 0x0008, 0x0020, "DA", "20261122");
    n += el(p + n, 0x0008, 0x0050, "SH", "ACC9");
    n += el(p + n, 0x0008, 0x0060, "CS", "CT");
    n += el(p + n, 0x0008, 0x1030, "LO", desc);
    n += el(p + n, 0x0010, 0x0010, "PN", o->patient_name);
    n += el(p + n, 0x0010, 0x0020, "LO", o->patient_id);
    if (o->issuer)
        n += el(p + n, 0x0010, 0x0021, "LO", o->issuer);
    n += el(p + n, 0x0020, 0x000D, "UI", o->study ? o->study : STUDY);
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

static size_t dataset(unsigned char *p, const char *sop, const char *desc, size_t pixels)
{
    ds_opts o = {.patient_name = "Test^Patient", .patient_id = "PID9"};
    return dataset_opts(p, sop, desc, pixels, &o);
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

/* Feeds buf in chunks like PDVs, honouring pauses by running the loop; as
 * the sender described by m0 (sop_instance filled from cmd_sop). */
static outcome run_as(const sto_ingest_meta *m0, const char *cmd_sop, const unsigned char *buf,
                      size_t n, size_t chunk)
{
    sto_ingest_meta m = *m0;
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

static outcome run(const char *cmd_sop, const unsigned char *buf, size_t n, size_t chunk)
{
    sto_ingest_meta m = {
        .sop_class = CT, .ts = DCM_TS_EXPLICIT_LE, .source_ae = "TESTAE", .hospital = "township1"};
    return run_as(&m, cmd_sop, buf, n, chunk);
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
    cr_expect_eq(count_files("objects"), 0,
                 "admission to the study needs the index: nothing is stored before it");
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

#define KOS   "1.2.840.10008.5.1.4.1.1.88.59"
#define ST(f) "HGET hr:{" STUDY "}:st " f

/* A study belongs to the hospital of its first instance (decision 0009). */
Test(ingest, another_hospital_cannot_add_to_a_study)
{
    char v[128];
    size_t n = dataset(buf, "1.2.3.5.1", "owner", 1000);
    outcome o = run("1.2.3.5.1", buf, n, 16384);
    cr_assert_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_str_eq(o.r.owner, "township1");

    /* township2 sends an instance into township1's study: refused, nothing kept */
    sto_ingest_meta t2 = {
        .sop_class = CT, .ts = DCM_TS_EXPLICIT_LE, .source_ae = "T2", .hospital = "township2"};
    ds_opts intruder = {.patient_name = "Other^Person", .patient_id = "X1"};
    n = dataset_opts(buf, "1.2.3.5.2", "intruder", 1000, &intruder);
    o = run_as(&t2, "1.2.3.5.2", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_REFUSED, "%s", o.r.reason);
    cr_expect(strstr(o.r.reason, "another hospital") != NULL, "%s", o.r.reason);
    cr_expect_eq(count_files("objects"), 1, "the refused object is not stored");
    cr_expect_eq(count_files("tmp"), 0);
    ts_redis_get(&redis, v, sizeof(v), ST("hospital"));
    cr_expect_str_eq(v, "township1", "the owner stays");
    ts_redis_get(&redis, v, sizeof(v), ST("patient_name"));
    cr_expect_str_eq(v, "Test^Patient");
    ts_redis_get(&redis, v, sizeof(v), "HEXISTS hr:ix:sop 1.2.3.5.2");
    cr_expect_str_eq(v, "0", "not indexed");
    ts_redis_get(&redis, v, sizeof(v), "ZSCORE hr:ix:hosp:township2 " STUDY);
    cr_expect_str_eq(v, "", "not in township2's studies");

    /* the same bytes as the owner's instance, sent by township2: refused too */
    n = dataset(buf, "1.2.3.5.1", "owner", 1000);
    o = run_as(&t2, "1.2.3.5.1", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_REFUSED, "%s", o.r.reason);

    /* the hub's own hospital may add a derived object (KOS), not an image */
    sto_ingest_meta hub = {.sop_class = KOS,
                           .ts = DCM_TS_EXPLICIT_LE,
                           .source_ae = "COUNTY",
                           .hospital = "county",
                           .hub_hospital = 1};
    ds_opts kos = {.sop_class = KOS, .patient_name = "Test^Patient", .patient_id = "PID9"};
    n = dataset_opts(buf, "1.2.3.5.3", "key images", 100, &kos);
    o = run_as(&hub, "1.2.3.5.3", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_str_eq(o.r.owner, "township1");
    ts_redis_get(&redis, v, sizeof(v), ST("hospital"));
    cr_expect_str_eq(v, "township1", "a derived object does not change the owner");
    ts_redis_get(&redis, v, sizeof(v), "ZSCORE hr:ix:hosp:county " STUDY);
    cr_expect_str_eq(v, "", "nor puts the study among the county's");
    hub.sop_class[0] = '\0';
    snprintf(hub.sop_class, sizeof(hub.sop_class), "%s", CT);
    n = dataset(buf, "1.2.3.5.4", "county image", 1000);
    o = run_as(&hub, "1.2.3.5.4", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_REFUSED, "an image from the hub is refused: %s", o.r.reason);
}

/* Later instances never overwrite the study's patient silently. */
Test(ingest, patient_conflict_is_stored_flagged_and_reported)
{
    char v[256];
    size_t n = dataset(buf, "1.2.3.6.1", "first", 1000);
    outcome o = run("1.2.3.6.1", buf, n, 16384);
    cr_assert_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_eq(o.r.patient_conflict, 0);

    ds_opts other = {.patient_name = "Wrong^Name", .patient_id = "PID9"};
    n = dataset_opts(buf, "1.2.3.6.2", "second", 1000, &other);
    o = run("1.2.3.6.2", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    cr_expect_eq(o.r.patient_conflict, 1);
    cr_expect(strstr(o.r.reason, "PatientName study 'Test^Patient' instance 'Wrong^Name'") != NULL,
              "%s", o.r.reason);
    ts_redis_get(&redis, v, sizeof(v), ST("patient_name"));
    cr_expect_str_eq(v, "Test^Patient", "the study keeps its patient");
    ts_redis_get(&redis, v, sizeof(v), ST("patient_conflict"));
    cr_expect_str_eq(v, "YES");
    ts_redis_get(&redis, v, sizeof(v), "LINDEX hr:{" STUDY "}:conflicts 0");
    cr_expect(strstr(v, "1.2.3.6.2\tPatientName\tTest^Patient\tWrong^Name") != NULL, "%s", v);
    ts_redis_get(&redis, v, sizeof(v), ST("instances"));
    cr_expect_str_eq(v, "2", "the instance is stored and counted");

    /* another Patient ID: the study is not indexed under that patient */
    ds_opts pid = {.patient_name = "Test^Patient", .patient_id = "PID10"};
    n = dataset_opts(buf, "1.2.3.6.3", "third", 1000, &pid);
    o = run("1.2.3.6.3", buf, n, 16384);
    cr_expect_eq(o.r.patient_conflict, 1);
    cr_expect(strstr(o.r.reason, "PatientID study 'township1|PID9' instance 'township1|PID10'"),
              "%s", o.r.reason);
    ts_redis_get(&redis, v, sizeof(v), "EXISTS hr:pt:township1|PID10:st");
    cr_expect_str_eq(v, "0");
    /* trailing separators are not a difference */
    ds_opts pad = {.patient_name = "Test^Patient^^", .patient_id = "PID9"};
    n = dataset_opts(buf, "1.2.3.6.4", "fourth", 1000, &pad);
    o = run("1.2.3.6.4", buf, n, 16384);
    cr_expect_eq(o.r.patient_conflict, 0, "%s", o.r.reason);
}

/* Patient keys are made of escaped components: values with '|' cannot
 * collide, and a '{' cannot change a key's cluster slot. */
Test(ingest, patient_keys_are_injective)
{
    char v[256];
    ds_opts a = {.patient_name = "A", .patient_id = "b|c", .issuer = "x", .study = "1.2.3.7"};
    ds_opts b = {.patient_name = "B", .patient_id = "c", .issuer = "x|b", .study = "1.2.3.8"};
    size_t n = dataset_opts(buf, "1.2.3.7.1", "a", 100, &a);
    cr_assert_eq(run("1.2.3.7.1", buf, n, 16384).r.status, STO_STORED);
    n = dataset_opts(buf, "1.2.3.8.1", "b", 100, &b);
    cr_assert_eq(run("1.2.3.8.1", buf, n, 16384).r.status, STO_STORED);
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.3.7}:st patient");
    cr_expect_str_eq(v, "x|b%7Cc");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.3.8}:st patient");
    cr_expect_str_eq(v, "x%7Cb|c");
    ts_redis_get(&redis, v, sizeof(v), "ZCARD hr:pt:x|b%%7Cc:st");
    cr_expect_str_eq(v, "1", "one study per patient");
    ds_opts c = {.patient_name = "C", .patient_id = "{tag} 张", .study = "1.2.3.9"};
    n = dataset_opts(buf, "1.2.3.9.1", "c", 100, &c);
    cr_assert_eq(run("1.2.3.9.1", buf, n, 16384).r.status, STO_STORED);
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{1.2.3.9}:st patient");
    cr_expect_str_eq(v, "township1|%7Btag%7D%20%E5%BC%A0");
    ts_redis_get(&redis, v, sizeof(v), "SCARD hr:ix:pid:%%7Btag%%7D%%20%%E5%%BC%%A0");
    cr_expect_str_eq(v, "1");
}

/* A script error part-way must not leave an instance that a retry takes for
 * an identical copy; counters are not doubled by the retry. */
Test(ingest, a_failed_commit_leaves_nothing_a_retry_would_call_identical)
{
    char v[128];
    ts_redis_get(&redis, v, sizeof(v), "SET hr:ix:mod:CT not-a-zset");
    size_t n = dataset(buf, "1.2.3.10.1", "x", 1000);
    outcome o = run("1.2.3.10.1", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_ERR_RESOURCES, "%s", o.r.reason);
    ts_redis_get(&redis, v, sizeof(v), "EXISTS hr:{" STUDY "}:i:1.2.3.10.1");
    cr_expect_str_eq(v, "0", "no instance record");
    ts_redis_get(&redis, v, sizeof(v), "DEL hr:ix:mod:CT");
    o = run("1.2.3.10.1", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_STORED, "the retry is a first store: %s", o.r.reason);
    ts_redis_get(&redis, v, sizeof(v), ST("instances"));
    cr_expect_str_eq(v, "1");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:stats instances");
    cr_expect_str_eq(v, "1");
}

/* The same data set with another File Meta header (another AE, so another
 * header length): the first file stays, the resend is a receipt. */
Test(ingest, an_identical_resend_is_a_receipt_and_never_replaces_the_file)
{
    char v[128], path[STO_PATH_MAX];
    size_t n = dataset(buf, "1.2.3.11.1", "x", 5000), len1, len2;
    outcome o = run("1.2.3.11.1", buf, n, 16384);
    cr_assert_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    sto_objstore_path(&ctx.store, o.r.sha, path);
    unsigned char *first = ts_read_file(path, &len1);
    cr_assert_not_null(first);
    sto_ingest_meta other = {.sop_class = CT,
                             .ts = DCM_TS_EXPLICIT_LE,
                             .source_ae = "A_LONGER_AE_NAME",
                             .hospital = "township1"};
    o = run_as(&other, "1.2.3.11.1", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_IDENTICAL, "%s", o.r.reason);
    unsigned char *now = ts_read_file(path, &len2);
    cr_assert_not_null(now);
    cr_expect_eq(len1, len2);
    cr_expect_eq(memcmp(first, now, len1), 0, "the stored file is unchanged");
    free(first);
    free(now);
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{" STUDY "}:i:1.2.3.11.1 size");
    cr_expect_eq(strtoull(v, NULL, 10), len1, "the index size describes the file");
    ts_redis_get(&redis, v, sizeof(v), "HGET hr:{" STUDY "}:i:1.2.3.11.1 source_ae");
    cr_expect_str_eq(v, "TESTAE", "provenance of the first receipt");
    ts_redis_get(&redis, v, sizeof(v), "LINDEX hr:{" STUDY "}:i:1.2.3.11.1:rc 0");
    cr_expect(strstr(v, "\ttownship1\tA_LONGER_AE_NAME") != NULL, "%s", v);
    cr_expect_eq(count_files("tmp"), 0);
}

/* libuv's pool held by other work (a flood of queries, say) */
static pthread_mutex_t blk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t blk_cv = PTHREAD_COND_INITIALIZER;
static int blk_open, blk_done;

static void blocker_run(uv_work_t *w)
{
    pthread_mutex_lock(&blk_mu);
    while (!blk_open)
        pthread_cond_wait(&blk_cv, &blk_mu);
    pthread_mutex_unlock(&blk_mu);
}

static void blocker_done(uv_work_t *w, int status)
{
    blk_done++;
}

static int pool_closed;
static void on_pool_closed(void *arg)
{
    pool_closed = 1;
    ctx.pool = NULL; /* freed: later jobs go to libuv's pool */
}

Test(ingest, runs_on_its_own_pool_while_libuvs_is_saturated)
{
    enum { BLOCKERS = 64 }; /* more than libuv's threads (UV_THREADPOOL_SIZE <= 64 here) */
    static uv_work_t blockers[BLOCKERS];
    hr_pool_opts po = {.name = "ingest", .threads = 4, .max_jobs = 1 << 20};
    cr_assert_eq(hr_pool_start(&loop, &po, &ctx.pool), 0);
    blk_open = 0;
    blk_done = 0;
    for (int i = 0; i < BLOCKERS; i++)
        cr_assert_eq(uv_queue_work(&loop, &blockers[i], blocker_run, blocker_done), 0);

    cr_expect_not(sto_ingest_busy(&ctx, uv_hrtime()), "nothing ingested yet");
    size_t n = dataset(buf, "1.2.3.4.77", "Own pool", 600000);
    outcome o = run("1.2.3.4.77", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_STORED, "durable and indexed with libuv's pool held: %s",
                 o.r.reason);
    cr_expect_eq(count_files("objects"), 1);
    cr_expect_eq(count_files("tmp"), 0);
    cr_expect_eq(blk_done, 0, "libuv's pool was held all along");
    cr_expect(sto_ingest_busy(&ctx, uv_hrtime()), "busy just after an object");
    cr_expect_not(sto_ingest_busy(&ctx, uv_hrtime() + (STO_INGEST_BUSY_TAIL_MS + 1) * 1000000ull),
                  "idle a while after the last object");
    hr_pool_stats st;
    hr_pool_stats_get(ctx.pool, &st);
    cr_expect_geq(st.completed, 2, "the writes and the commit ran on the ingest pool");

    /* a closing pool refuses: the next object runs on libuv's pool instead */
    pthread_mutex_lock(&blk_mu);
    blk_open = 1;
    pthread_cond_broadcast(&blk_cv);
    pthread_mutex_unlock(&blk_mu);
    pool_closed = 0;
    hr_pool_close(ctx.pool, on_pool_closed, NULL);
    n = dataset(buf, "1.2.3.4.78", "Closing pool", 600000);
    o = run("1.2.3.4.78", buf, n, 16384);
    cr_expect_eq(o.r.status, STO_STORED, "%s", o.r.reason);
    while (!pool_closed || blk_done < BLOCKERS)
        uv_run(&loop, UV_RUN_ONCE);
    cr_expect_eq(count_files("objects"), 2);
}
