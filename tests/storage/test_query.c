/* The query engine against a real redis-server holding a small archive
 * indexed by the same commit path as ingest and reindex. */
#include "common/hr_err.h"
#include "dicom/match.h"
#include "storage/index.h"
#include "storage/query.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- an archive of 5,000 studies: what a query costs Redis ---- */

#define BIG_N 5000

static char big_names[BIG_N][96];
static char big_uids[BIG_N][32];

static void big_name(int i, char *out, size_t cap)
{
    if (i % 500 == 7)
        snprintf(out, cap, "ABC^Tester%d", i);
    else if (i == 11)
        snprintf(out, cap, "abcd^lower");
    else if (i % 250 == 3)
        snprintf(out, cap, "Wang^XABCY=王^小明");
    else if (i % 1000 == 5) /* four-byte GB18030 / UTF-8 (U+20000), U+9FB4 */
        snprintf(out, cap, "Li^Ming=\xf0\xa0\x80\x80\xe6\x98\x8e^\xe9\xbe\xb4");
    else if (i % 100 == 1)
        snprintf(out, cap, "Zhang^San%d=张^三%d", i, i);
    else
        snprintf(out, cap, "Name%05d^Other", i);
}

static void big_setup(void)
{
    int err;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    rc_ = sto_index_connect_sync(&addr, 2000, &err);
    cr_assert_not_null(rc_);
    for (int i = 0; i < BIG_N; i++) {
        char date[16], pid[16], acc[16], series[40], sop[48];
        big_name(i, big_names[i], sizeof(big_names[i]));
        snprintf(big_uids[i], sizeof(big_uids[i]), "9.%d", i);
        snprintf(date, sizeof(date), "%04d%02d%02d", 2010 + i / 500, (i / 40) % 12 + 1, i % 28 + 1);
        snprintf(pid, sizeof(pid), "Q%d", i / 2);
        snprintf(acc, sizeof(acc), "B%d", i);
        snprintf(series, sizeof(series), "%s.1", big_uids[i]);
        snprintf(sop, sizeof(sop), "%s.1.1", big_uids[i]);
        add(i % 2 ? "township2" : "township1", pid, big_names[i], big_uids[i], date, acc, series,
            i % 4 == 3 ? "MR" : "CT", sop, "1");
    }
}

TestSuite(query_big, .init = big_setup, .fini = teardown, .timeout = 300);

/* Calls of one command and bytes Redis sent since the last reset. */
static long long stat_of(const char *section, const char *field)
{
    redisReply *r = redisCommand(rc_, "INFO %s", section);
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, field);
    long long v = 0;
    if (p)
        v = atoll(p + strlen(field));
    freeReplyObject(r);
    return v;
}

static void reset_stats(void)
{
    redisReply *r = redisCommand(rc_, "CONFIG RESETSTAT");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static long long hgetall_calls(void)
{
    return stat_of("commandstats", "cmdstat_hgetall:calls=");
}

static long long sent_bytes(void)
{
    return stat_of("stats", "total_net_output_bytes:");
}

typedef struct uidrows {
    int n;
    char (*uid)[32];
    int stop_at; /* STO_Q_STOP_BEFORE on this row (1-based), 0 = never */
} uidrows;

static int collect_uid(void *arg, const sto_qrow *row)
{
    uidrows *u = arg;
    if (u->stop_at && u->n + 1 == u->stop_at)
        return STO_Q_STOP_BEFORE;
    cr_assert_lt(u->n, BIG_N);
    snprintf(u->uid[u->n], 32, "%s", row->v[0].value);
    u->n++;
    return STO_Q_NEXT;
}

static sto_query name_query(const char *name)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0010), name);
    return q;
}

Test(query_big, name_prefix_reads_only_matching_studies)
{
    sto_query q = name_query("ABC*");
    rows r;
    memset(&r, 0, sizeof(r));
    reset_stats();
    cr_assert_eq(sto_query_run(rc_, &q, collect, &r, NULL), 0);
    long long calls = hgetall_calls(), bytes = sent_bytes();
    cr_expect_eq(r.n, 11, "ABC^Tester x10 and abcd^lower (case-insensitive)");
    cr_expect_leq(calls, 11, "studies read: %lld (archive of %d)", calls, BIG_N);
    cr_expect_lt(bytes, 20000, "bytes from redis: %lld", bytes);
}

Test(query_big, name_infix_reads_only_matching_studies)
{
    sto_query q = name_query("*abc*");
    rows r;
    memset(&r, 0, sizeof(r));
    reset_stats();
    cr_assert_eq(sto_query_run(rc_, &q, collect, &r, NULL), 0);
    long long calls = hgetall_calls(), bytes = sent_bytes();
    cr_expect_eq(r.n, 31);
    cr_expect_leq(calls, 31, "studies read: %lld", calls);
    cr_expect_lt(bytes, 40000, "bytes from redis: %lld", bytes);
}

Test(query_big, no_key_is_newest_first_and_reads_the_limit)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x0020), "");
    q.limit = 10;
    rows r;
    memset(&r, 0, sizeof(r));
    reset_stats();
    cr_assert_eq(sto_query_run(rc_, &q, collect, &r, NULL), 0);
    long long calls = hgetall_calls(), bytes = sent_bytes();
    cr_assert_eq(r.n, 10);
    cr_expect_str_eq(r.second[0], "20191228", "newest first");
    cr_expect_leq(calls, 16, "studies read: %lld", calls);
    cr_expect_lt(bytes, 20000, "bytes from redis: %lld", bytes);
}

/* Pages of 7 resumed from the cursor: the same rows as one page, and
 * each page reads only its own studies. */
static void check_paging(sto_query q, const char *what)
{
    uidrows all = {0, calloc(BIG_N, 32), 0}, paged = {0, calloc(BIG_N, 32), 0};
    sto_qresult res;
    cr_assert_eq(sto_query_page(rc_, &q, collect_uid, &all, &res), 0);
    cr_assert_str_eq(res.next, "", "%s: one page reaches the end", what);
    cr_assert_gt(all.n, 20, "%s: %d rows", what, all.n);
    char cursor[STO_Q_CURSOR_MAX] = "";
    int pages = 0;
    reset_stats();
    do {
        q.limit = 7;
        q.cursor = cursor;
        paged.stop_at = 0;
        cr_assert_eq(sto_query_page(rc_, &q, collect_uid, &paged, &res), 0);
        cr_assert_leq(res.matched, 7);
        snprintf(cursor, sizeof(cursor), "%s", res.next);
        pages++;
    } while (cursor[0] && pages < 1000);
    long long calls = hgetall_calls();
    cr_assert_eq(paged.n, all.n, "%s: %d rows paged, %d in one page", what, paged.n, all.n);
    for (int i = 0; i < all.n; i++)
        cr_assert_str_eq(paged.uid[i], all.uid[i], "%s: row %d", what, i);
    for (int i = 0; i < all.n; i++)
        for (int j = i + 1; j < all.n; j++)
            cr_assert_str_neq(all.uid[i], all.uid[j], "%s: %s twice", what, all.uid[i]);
    cr_expect_leq(calls, 2 * all.n + 8 * pages, "%s: %lld studies read in %d pages of %d rows",
                  what, calls, pages, all.n);
    /* a callback that refuses a row leaves the cursor in front of it */
    uidrows two = {0, calloc(BIG_N, 32), 3};
    q.limit = 0;
    q.cursor = NULL;
    cr_assert_eq(sto_query_page(rc_, &q, collect_uid, &two, &res), 0);
    cr_assert_eq(two.n, 2);
    q.cursor = res.next;
    two.stop_at = 0;
    cr_assert_eq(sto_query_page(rc_, &q, collect_uid, &two, &res), 0);
    cr_assert_eq(two.n, all.n, "%s: resumed before the refused row: %d of %d (%s)", what, two.n,
                 all.n, q.cursor);
    cr_assert_str_eq(two.uid[2], all.uid[2]);
    free(all.uid);
    free(paged.uid);
    free(two.uid);
}

Test(query_big, cursor_pages_equal_one_page)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x0061), "MR");
    key(&q, TAG(0x0008, 0x0020), "20110101-20111231");
    check_paging(q, "modality + date");
    check_paging(name_query("*an*"), "infix name (several entries per study)");
    check_paging(name_query("zhang*"), "name prefix");
    q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    q.hospital = "township2";
    key(&q, TAG(0x0008, 0x0020), "20120101-20121231");
    check_paging(q, "hospital scope + date");
}

/* Name keys against dcm_match over every stored name: the index finds all
 * of them, once each, whatever the case, groups and UTF-8. */
Test(query_big, name_keys_find_what_matching_finds)
{
    static const char *const keys[] = {"ABC*",
                                       "abc*",
                                       "*abc*",
                                       "zhang*",
                                       "ZHANG^SAN1*",
                                       "张*",
                                       "*三*",
                                       "*三1",
                                       "\xf0\xa0\x80\x80*",
                                       "*明",
                                       "*\xf0\xa0\x80\x80明*",
                                       "*\xe9\xbe\xb4",
                                       "?hang*",
                                       "zhang^san101",
                                       "Zhang^San101=张^三101",
                                       "*=张^三1*",
                                       "Li^Ming=*",
                                       "wang^xabcy",
                                       "*^tester1?07",
                                       "N*0^O*"};
    uidrows u = {0, calloc(BIG_N, 32), 0};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        int want = 0;
        for (int i = 0; i < BIG_N; i++)
            want += dcm_match("PN", keys[k], big_names[i]);
        sto_query q = name_query(keys[k]);
        u.n = 0;
        reset_stats();
        cr_assert_eq(sto_query_run(rc_, &q, collect_uid, &u, NULL), 0);
        long long calls = hgetall_calls();
        cr_expect_eq(u.n, want, "%s: %d rows, %d names match", keys[k], u.n, want);
        for (int i = 0; i < u.n; i++)
            for (int j = i + 1; j < u.n; j++)
                cr_assert_str_neq(u.uid[i], u.uid[j], "%s: %s twice", keys[k], u.uid[i]);
        /* candidates are the names with the key's literal prefix or its
         * longest literal run: "*三1" reads the 12 names holding "三1" */
        if (strcmp(keys[k], "N*0^O*") != 0 && strcmp(keys[k], "*三1") != 0)
            cr_expect_leq(calls, 3 * want + 8, "%s: %lld studies read for %d", keys[k], calls,
                          want);
    }
    free(u.uid);
}

Test(query_big, scan_budget_stops_with_a_cursor)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0008, 0x1030), "matches nothing");
    q.scan_max = 100;
    rows r;
    memset(&r, 0, sizeof(r));
    sto_qresult res;
    reset_stats();
    cr_assert_eq(sto_query_page(rc_, &q, collect, &r, &res), 0);
    cr_expect_eq(r.n, 0);
    cr_expect(res.partial, "stopped by the budget");
    cr_expect_eq(res.examined, 100);
    cr_expect_leq(hgetall_calls(), 164);
    cr_assert_neq(res.next[0], '\0', "a cursor to continue");
    char next[STO_Q_CURSOR_MAX];
    snprintf(next, sizeof(next), "%s", res.next);
    q.cursor = next;
    cr_assert_eq(sto_query_page(rc_, &q, collect, &r, &res), 0);
    cr_expect(res.partial);
    cr_expect_str_neq(res.next, next, "the next page moved on");
    q.cursor = "12.0.zz";
    cr_expect_eq(sto_query_page(rc_, &q, collect, &r, &res), HR_EPARSE, "a forged cursor");
}

Test(query, image_level_pages_resume_from_the_cursor)
{
    sto_query q = make(STO_Q_IMAGE);
    key(&q, TAG(0x0008, 0x0018), "");
    key(&q, TAG(0x0020, 0x000D), "1.1");
    key(&q, TAG(0x0020, 0x000E), "1.1.1\\1.1.2");
    char cursor[STO_Q_CURSOR_MAX] = "";
    const char *want[] = {"1.1.1.1", "1.1.1.2", "1.1.2.1"};
    sto_qresult res;
    for (int page = 0; page < 3; page++) {
        rows r;
        memset(&r, 0, sizeof(r));
        q.limit = 1;
        q.cursor = cursor;
        cr_assert_eq(sto_query_page(rc_, &q, collect, &r, &res), 0);
        cr_assert_eq(r.n, 1, "page %d", page);
        cr_expect_str_eq(r.first[0], want[page]);
        snprintf(cursor, sizeof(cursor), "%s", res.next);
    }
    rows r;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(sto_query_page(rc_, &q, collect, &r, &res), 0);
    cr_expect_eq(r.n, 0, "after the last page");
    cr_expect_str_eq(res.next, "");
}

Test(query, offset_cursors_are_kept_per_query_and_scope)
{
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0010), "张*");
    q.hospital = "township1";
    char out[STO_Q_CURSOR_MAX];
    cr_assert_eq(sto_qcursor_save(rc_, &q, 200, "5.0.6162"), 0);
    cr_assert_eq(sto_qcursor_load(rc_, &q, 200, out), 0);
    cr_expect_str_eq(out, "5.0.6162");
    cr_expect_eq(sto_qcursor_load(rc_, &q, 100, out), HR_ENOTFOUND, "another offset");
    q.hospital = "township2";
    cr_expect_eq(sto_qcursor_load(rc_, &q, 200, out), HR_ENOTFOUND, "another scope");
    q.hospital = "township1";
    q.keys[1].value[0] = 'x';
    cr_expect_eq(sto_qcursor_load(rc_, &q, 200, out), HR_ENOTFOUND, "another key");
}

Test(query, reindex_of_an_older_index_fills_the_name_indexes)
{
    redisReply *d = redisCommand(rc_, "DEL hr:ix:pn hr:ix:pns");
    freeReplyObject(d);
    sto_query q = make(STO_Q_STUDY);
    key(&q, TAG(0x0020, 0x000D), "");
    key(&q, TAG(0x0010, 0x0010), "*oh*");
    cr_expect_eq(run_q(&q, 0).n, 0, "no name index yet");
    /* the same instance again, as huren reindex commits it */
    add("township2", "P2", "Doe^John", "2.1", "20250615", "ACC3", "2.1.1", "CT", "2.1.1.1", "1");
    rows r = run_q(&q, 0);
    cr_assert_eq(r.n, 1);
    cr_expect_str_eq(r.first[0], "2.1");
}
