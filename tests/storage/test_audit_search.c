/* sto_audit_search over day files written by the real audit log (a real
 * libuv loop, an injected clock): filters, the time window, paging by cursor
 * (every match once, in order), the record budget, torn and overlong lines,
 * and the argument bounds. */
#include "common/hr_err.h"
#include "storage/audit.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char dir[512];
static uv_loop_t loop;
static long long fake_now;

static long long fake_clock(void)
{
    return fake_now;
}

static long long utc_ms(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (long long)timegm(&tm) * 1000;
}

static void setup(void)
{
    umask(027);
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    sto__audit_set_clock(fake_clock);
}

static void teardown(void)
{
    sto__audit_set_clock(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle leaked");
    ts_rmrf(dir);
}

TestSuite(audit_search, .init = setup, .fini = teardown, .timeout = 120);

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

/* Day 1 (2026-11-22, 10:00 UTC on): 6 records, rd1 and rd2 reading studies
 * 1.2.1 / 1.2.2 of patients h|P1 / h|P2 alternately; day 3 (2026-11-24):
 * 2 more of rd1 on 1.2.1. Day 2 has no file. */
static void write_log(void)
{
    sto_audit *a = NULL;
    cr_assert_eq(sto_audit_open(&loop, dir, &a), 0);
    fake_now = utc_ms(2026, 11, 22, 10, 0);
    for (int i = 0; i < 6; i++) {
        sto_audit_event ev = {.actor = i % 2 ? "rd2" : "rd1",
                              .role = "reader",
                              .action = i == 5 ? "report-sign" : "wado",
                              .patient = i % 2 ? "h|P2" : "h|P1",
                              .study = i % 2 ? "1.2.2" : "1.2.1",
                              .outcome = "success"};
        sto_audit_log(a, &ev);
        fake_now += 60000;
    }
    fake_now = utc_ms(2026, 11, 24, 9, 0);
    for (int i = 0; i < 2; i++) {
        sto_audit_event ev = {
            .actor = "rd1", .action = "wado", .patient = "h|P1", .study = "1.2.1"};
        sto_audit_log(a, &ev);
        fake_now += 1000;
    }
    int closed = 0;
    sto_audit_close(a, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 1);
}

typedef struct hits {
    int n;
    long long seq[64];
} hits;

static int on_hit(void *arg, json_t *rec)
{
    hits *h = arg;
    cr_assert_lt(h->n, 64);
    h->seq[h->n++] = json_integer_value(json_object_get(rec, "seq"));
    return 0;
}

static sto_audit_query window(void)
{
    sto_audit_query q = {.from_ms = utc_ms(2026, 11, 22, 0, 0),
                         .to_ms = utc_ms(2026, 11, 25, 0, 0),
                         .limit = 100,
                         .max_records = 1000};
    return q;
}

static int run(const sto_audit_query *q, hits *h, long *scanned, char *next)
{
    return sto_audit_search(dir, q, on_hit, h, scanned, next, STO_AUDIT_CURSOR_MAX);
}

Test(audit_search, filters_and_window)
{
    write_log();
    hits h = {0};
    long scanned = 0;
    char next[STO_AUDIT_CURSOR_MAX];
    sto_audit_query q = window();
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 8, "every record of the window");
    cr_expect_eq(scanned, 8);
    cr_expect_str_empty(next, "read to the end");

    memset(&h, 0, sizeof(h));
    q.actor = "rd1";
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 5, "rd1: 3 on day 1, 2 on day 3");
    cr_expect_eq(h.seq[0], 1);
    cr_expect_eq(h.seq[4], 8);

    memset(&h, 0, sizeof(h));
    q.actor = NULL;
    q.patient = "h|P2";
    q.action = "report-sign";
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 1, "P2's report signature");
    cr_expect_eq(h.seq[0], 6);

    memset(&h, 0, sizeof(h));
    q = window();
    q.study = "1.2";
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 0, "filters are exact, not substrings");

    /* the window cuts by record time inside a day file */
    memset(&h, 0, sizeof(h));
    q = window();
    q.from_ms = utc_ms(2026, 11, 22, 10, 2);
    q.to_ms = utc_ms(2026, 11, 22, 10, 4);
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 2, "10:02 and 10:03 only");
    cr_expect_eq(h.seq[0], 3);
}

Test(audit_search, cursor_pages_every_match_once)
{
    write_log();
    sto_audit_query q = window();
    q.actor = "rd1";
    q.limit = 1;
    char cursor[STO_AUDIT_CURSOR_MAX] = "", next[STO_AUDIT_CURSOR_MAX];
    long long seen[16];
    int n = 0;
    for (int call = 0; call < 16; call++) {
        hits h = {0};
        long scanned = 0;
        q.cursor = cursor;
        cr_assert_eq(run(&q, &h, &scanned, next), 0);
        for (int i = 0; i < h.n; i++)
            seen[n++] = h.seq[i];
        if (!next[0])
            break;
        snprintf(cursor, sizeof(cursor), "%s", next);
    }
    cr_assert_eq(n, 5, "five matches over the pages");
    for (int i = 1; i < n; i++)
        cr_expect_gt(seen[i], seen[i - 1], "in order, none twice");
}

Test(audit_search, budget_bounds_each_call)
{
    write_log();
    sto_audit_query q = window();
    q.max_records = 3;
    hits h = {0};
    long scanned = 0;
    char next[STO_AUDIT_CURSOR_MAX];
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(scanned, 3, "no more records read than the budget");
    cr_expect_eq(h.n, 3);
    cr_expect_eq(strncmp(next, "20261122:", 9), 0, "a cursor into day 1: %s", next);
}

Test(audit_search, torn_and_overlong_lines)
{
    write_log();
    char path[700];
    snprintf(path, sizeof(path), "%s/audit/audit-2026-11-24.jsonl", dir);
    /* an overlong line in the middle, a torn one at the end */
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    for (int i = 0; i < 600 * 1024; i++)
        fputc('x', f);
    fputs("\n{\"seq\":99,\"time\":\"2026-11-24T09:30:00.000Z\",\"actor\":\"rd9\"}\n", f);
    fputs("{\"seq\":100,\"time\":\"2026-11-24T09:31:00.000Z\",\"actor\":\"rd9\"", f);
    fclose(f);
    sto_audit_query q = window();
    q.actor = "rd9";
    hits h = {0};
    long scanned = 0;
    char next[STO_AUDIT_CURSOR_MAX];
    cr_assert_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(h.n, 1, "the record after the overlong line; not the torn one");
    cr_expect_eq(h.seq[0], 99);
}

Test(audit_search, bounds)
{
    write_log();
    hits h = {0};
    long scanned = 0;
    char next[STO_AUDIT_CURSOR_MAX];
    sto_audit_query q = window();
    q.to_ms = q.from_ms + (long long)STO_AUDIT_SEARCH_DAYS * 86400000 + 1;
    cr_expect_eq(run(&q, &h, &scanned, next), -EINVAL, "a window over the day limit");
    q = window();
    q.to_ms = q.from_ms;
    cr_expect_eq(run(&q, &h, &scanned, next), -EINVAL, "an empty window");
    q = window();
    q.limit = 0;
    cr_expect_eq(run(&q, &h, &scanned, next), -EINVAL);
    q = window();
    q.max_records = STO_AUDIT_SEARCH_RECORDS + 1;
    cr_expect_eq(run(&q, &h, &scanned, next), -EINVAL);
    const char *bad[] = {"x",           "20261122",    "20261122:",
                         "20261122:-1", "20261122:1x", "20201122:0" /* before the window */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        q = window();
        q.cursor = bad[i];
        cr_expect_eq(run(&q, &h, &scanned, next), -EINVAL, "cursor %s", bad[i]);
    }
    cr_expect_eq(h.n, 0, "nothing read on refused arguments");
    /* no audit directory at all: nothing, no error */
    q = window();
    q.from_ms = utc_ms(2027, 1, 1, 0, 0);
    q.to_ms = utc_ms(2027, 1, 2, 0, 0);
    cr_expect_eq(run(&q, &h, &scanned, next), 0);
    cr_expect_eq(scanned, 0);
}
