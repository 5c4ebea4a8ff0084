/* The query engine against a real redis-server holding a small archive
 * indexed by the same commit path as ingest and reindex. */
#include "common/hr_err.h"
#include "storage/index.h"
#include "storage/query.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))

static char dir[512];
static ts_redis redis;
static redisContext *rc_;

/* patients: P1 (two studies, township1), P2 (one study, township2) */
static void add(const char *hosp, const char *pid, const char *name, const char *study,
                const char *date, const char *acc, const char *series, const char *mod,
                const char *sop, const char *num)
{
    dcm_attrs a;
    memset(&a, 0, sizeof(a));
    snprintf(a.sop_class_uid, sizeof(a.sop_class_uid), "1.2.840.10008.5.1.4.1.1.2");
    snprintf(a.sop_instance_uid, sizeof(a.sop_instance_uid), "%s", sop);
    snprintf(a.study_instance_uid, sizeof(a.study_instance_uid), "%s", study);
    snprintf(a.series_instance_uid, sizeof(a.series_instance_uid), "%s", series);
    snprintf(a.patient_id, sizeof(a.patient_id), "%s", pid);
    snprintf(a.patient_name, sizeof(a.patient_name), "%s", name);
    snprintf(a.study_date, sizeof(a.study_date), "%s", date);
    snprintf(a.accession_number, sizeof(a.accession_number), "%s", acc);
    snprintf(a.modality, sizeof(a.modality), "%s", mod);
    snprintf(a.instance_number, sizeof(a.instance_number), "%s", num);
    snprintf(a.series_number, sizeof(a.series_number), "1");
    char sha[65];
    snprintf(sha, sizeof(sha), "%064zx", strlen(sop) * 7919 + (size_t)sop[strlen(sop) - 1]);
    sto_instance_rec rec = {&a, sha, 1000, hosp, "AE", 1700000000000LL, NULL, 0, 0};
    sto_index_result out;
    cr_assert_eq(sto_index_commit_sync(rc_, &rec, &out), 0);
}

static void setup(void)
{
    int err;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    rc_ = sto_index_connect_sync(&addr, 2000, &err);
    cr_assert_not_null(rc_);
    add("township1", "P1", "Zhang^San=张^三", "1.1", "20261101", "ACC1", "1.1.1", "CT", "1.1.1.1",
        "1");
    add("township1", "P1", "Zhang^San=张^三", "1.1", "20261101", "ACC1", "1.1.1", "CT", "1.1.1.2",
        "2");
    add("township1", "P1", "Zhang^San=张^三", "1.1", "20261101", "ACC1", "1.1.2", "MR", "1.1.2.1",
        "1");
    add("township1", "P1", "Zhang^San=张^三", "1.2", "20261120", "ACC2", "1.2.1", "DX", "1.2.1.1",
        "1");
    add("township2", "P2", "Doe^John", "2.1", "20250615", "ACC3", "2.1.1", "CT", "2.1.1.1", "1");
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
}

TestSuite(query, .init = setup, .fini = teardown, .timeout = 60);

typedef struct rows {
    int n;
    char first[8][256]; /* value of the first key of each row */
    char second[8][256];
    int stop_after;
} rows;

static int collect(void *arg, const sto_qrow *row)
{
    rows *r = arg;
    if (r->n < 8) {
        snprintf(r->first[r->n], 256, "%s", row->n > 0 ? row->v[0].value : "");
        snprintf(r->second[r->n], 256, "%s", row->n > 1 ? row->v[1].value : "");
    }
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

static sto_query make(enum sto_qlevel level)
{
    sto_query q;
    memset(&q, 0, sizeof(q));
    q.level = level;
    return q;
}

static void key(sto_query *q, uint32_t tag, const char *v)
{
    q->keys[q->n_keys].tag = tag;
    snprintf(q->keys[q->n_keys].value, sizeof(q->keys[0].value), "%s", v);
    q->n_keys++;
}

static rows run_q(const sto_query *q, int expect_rc)
{
    rows r;
    memset(&r, 0, sizeof(r));
    long matched = -1;
    cr_assert_eq(sto_query_run(rc_, q, collect, &r, &matched), expect_rc);
    if (!expect_rc)
        cr_expect_eq(matched, r.n);
    return r;
}

Test(query, study_by_patient_id_and_return_keys)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0020), "P1");
    key(&q, TAG(0x0020, 0x1208), "");
    key(&q, TAG(0x0008, 0x0061), "");
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 2);
    cr_expect_str_eq(r.first[0], "1.1");
    cr_expect_str_eq(r.second[0], "P1");
}

Test(query, study_matching_kinds)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x0020), "20261101-20261130");
    cr_expect_eq(run_q(&q, 0).n, 2, "date range");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0010), "张*");
    cr_expect_eq(run_q(&q, 0).n, 2, "wildcard on the ideographic group");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0010), "doe^*");
    cr_expect_eq(run_q(&q, 0).n, 1, "PN case-insensitive");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "2.1\\1.2\\9.9");
    cr_expect_eq(run_q(&q, 0).n, 2, "UID list");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x0050), "ACC2");
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 1, "accession");
    cr_expect_str_eq(r.first[0], "1.2");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x0061), "MR");
    r = run_q(&q, 0);
    cr_assert_eq(r.n, 1, "modalities in study");
    cr_expect_str_eq(r.first[0], "1.1");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    cr_expect_eq(run_q(&q, 0).n, 3, "universal: every study");
}

Test(query, hospital_scope_paging_and_stop)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    q.hospital = "township2";
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 1);
    cr_expect_str_eq(r.first[0], "2.1");
    q.hospital = "township2";
    key(&q, TAG(0x0010, 0x0020), "P1");
    cr_expect_eq(run_q(&q, 0).n, 0, "another hospital's patient is invisible");

    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    q.offset = 1;
    q.limit = 1;
    cr_expect_eq(run_q(&q, 0).n, 1);
    q.offset = 2;
    q.limit = 5;
    cr_expect_eq(run_q(&q, 0).n, 1, "offset beyond two leaves one of three");

    rows s;
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    cr_assert_eq(sto_query_run(rc_, &q, collect, &s, NULL), 0);
    cr_expect_eq(s.n, 1, "the callback stops the query (C-CANCEL)");
}

Test(query, series_and_image_levels_are_hierarchical)
{
    sto_query q = make(STO_Q_SERIES);
    key(&q, TAG(0x0020, 0x000E), "");
    key(&q, TAG(0x0008, 0x0060), "");
    run_q(&q, HR_EMISSING);

    key(&q, TAG(0x0020, 0x000D), "1.1");
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 2);
    cr_expect_str_eq(r.second[0], "CT");

    q.keys[1].value[0] = 'M', q.keys[1].value[1] = 'R', q.keys[1].value[2] = 0;
    cr_expect_eq(run_q(&q, 0).n, 1, "modality filter");

    q = make(STO_Q_IMAGE);
    key(&q, TAG(0x0008, 0x0018), "");
    key(&q, TAG(0x0020, 0x0013), "");
    key(&q, TAG(0x0020, 0x000D), "1.1");
    run_q(&q, HR_EMISSING);
    key(&q, TAG(0x0020, 0x000E), "1.1.1");
    r = run_q(&q, 0);
    cr_assert_eq(r.n, 2);
    cr_expect_str_eq(r.first[0], "1.1.1.1");
    cr_expect_str_eq(r.second[1], "2");
}

Test(query, patient_level)
{
    sto_query q = make(STO_Q_PATIENT);
    key(&q, TAG(0x0010, 0x0020), "");
    key(&q, TAG(0x0020, 0x1200), "");
    key(&q, TAG(0x0010, 0x0010), "Zhang*");
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 1);
    cr_expect_str_eq(r.first[0], "P1");
    cr_expect_str_eq(r.second[0], "2", "number of patient related studies");
    q.hospital = "township2";
    cr_expect_eq(run_q(&q, 0).n, 0, "seen only through visible studies");
}
