/* The audit log on a real libuv loop in a temp dir, with an injected clock. */
#include "common/hr_err.h"
#include "common/hr_hash.h"
#include "storage/audit.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[512];
static uv_loop_t loop;
static long long fake_now;

static long long fake_clock(void)
{
    return fake_now;
}

/* ms since the epoch of a UTC time */
static long long utc_ms(int y, int mo, int d, int h, int mi, int s, int ms)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = s;
    return (long long)timegm(&tm) * 1000 + ms;
}

static void setup(void)
{
    umask(027);
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    fake_now = utc_ms(2026, 11, 22, 10, 0, 0, 0);
    sto__audit_set_clock(fake_clock);
}

static void teardown(void)
{
    sto__audit_set_clock(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle leaked");
    ts_rmrf(dir);
}

TestSuite(audit, .init = setup, .fini = teardown, .timeout = 120);

#define DAY1 "audit-2026-11-22.jsonl"
#define DAY2 "audit-2026-11-23.jsonl"

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static sto_audit *open_log(void)
{
    sto_audit *a = NULL;
    cr_assert_eq(sto_audit_open(&loop, dir, &a), 0);
    cr_assert_not_null(a);
    return a;
}

static void close_log(sto_audit *a)
{
    int closed = 0;
    sto_audit_close(a, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 1, "close callback called once");
}

/* Logs n events user<first>..., 1 ms apart. */
static void log_n(sto_audit *a, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char actor[32], detail[64];
        snprintf(actor, sizeof(actor), "user%d", i);
        snprintf(detail, sizeof(detail), "PatientID=P%d", i);
        sto_audit_event ev = {.actor = actor,
                              .role = "reader",
                              .hospital = "",
                              .action = "qido",
                              .detail = detail,
                              .outcome = "success"};
        sto_audit_log(a, &ev);
        fake_now++;
    }
}

static void write_lines(sto_audit *a, int first, int n)
{
    log_n(a, first, n);
    close_log(a);
}

static void path_of(const char *name, char *out)
{
    snprintf(out, 700, "%s/audit/%s", dir, name);
}

/* The file's lines (without '\n'; a last line without '\n' counts). */
typedef struct lines {
    char *buf;
    int n;
    char *line[64];
    size_t len[64];
    int terminated; /* the file ends with '\n' */
} lines;

static void read_lines(const char *name, lines *l)
{
    char path[700];
    size_t n;
    path_of(name, path);
    memset(l, 0, sizeof(*l));
    l->buf = (char *)ts_read_file(path, &n);
    cr_assert_not_null(l->buf, "%s readable", path);
    l->terminated = n > 0 && l->buf[n - 1] == '\n';
    for (size_t pos = 0; pos < n;) {
        char *nl = memchr(l->buf + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - l->buf) : n;
        cr_assert_lt(l->n, 64);
        l->line[l->n] = l->buf + pos;
        l->len[l->n++] = end - pos;
        pos = end + 1;
    }
}

static void rewrite(const char *name, const lines *l, const int *order, int n)
{
    char path[700];
    path_of(name, path);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) {
        fwrite(l->line[order[i]], 1, l->len[order[i]], f);
        fputc('\n', f);
    }
    fclose(f);
}

static void append_raw(const char *name, const char *text)
{
    char path[700];
    path_of(name, path);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *record(const lines *l, int i)
{
    json_error_t je;
    json_t *o = json_loadb(l->line[i], l->len[i], 0, &je);
    cr_assert_not_null(o, "line %d is JSON: %s", i + 1, je.text);
    return o;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The contract of audit.h, computed here independently. */
static void expect_hash_ok(json_t *o)
{
    char hex[65];
    json_t *c = json_deep_copy(o);
    json_object_del(c, "hash");
    char *canon = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    hr_sha256 *h = hr_sha256_new();
    hr_sha256_update(h, canon, strlen(canon));
    hr_sha256_final_hex(h, hex);
    cr_expect_str_eq(str(o, "hash"), hex);
    hr_sha256_free(h);
    free(canon);
    json_decref(c);
}

static void expect_verify(long long records, const char *note)
{
    long long n = -1;
    char err[1024];
    int rc = sto_audit_verify(dir, &n, err, sizeof(err));
    cr_assert_eq(rc, 0, "verify: %s (%s)", hr_err_name(rc), err);
    cr_expect_eq(n, records);
    if (note)
        cr_expect(strstr(err, note) != NULL, "note \"%s\" in \"%s\"", note, err);
    else
        cr_expect_str_eq(err, "");
}

static void expect_broken(const char *where, const char *why)
{
    long long n = -1;
    char err[1024];
    cr_assert_eq(sto_audit_verify(dir, &n, err, sizeof(err)), HR_EMISMATCH);
    cr_expect(strstr(err, where) != NULL, "\"%s\" in \"%s\"", where, err);
    cr_expect(strstr(err, why) != NULL, "\"%s\" in \"%s\"", why, err);
}

Test(audit, records_appear_in_order_with_their_chain)
{
    sto_audit *a = open_log();
    log_n(a, 1, 5);
    for (int i = 0; i < 1000 && sto_audit_records(a) < 5; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_expect_eq(sto_audit_records(a), 5, "written before close");
    cr_expect_eq(sto_audit_errors(a), 0);
    close_log(a);

    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 5);
    cr_expect(l.terminated);
    const char *prev = "0000000000000000000000000000000000000000000000000000000000000000";
    json_t *last = NULL;
    for (int i = 0; i < 5; i++) {
        char want[64];
        json_t *o = record(&l, i);
        cr_expect_eq(json_integer_value(json_object_get(o, "seq")), i + 1);
        snprintf(want, sizeof(want), "2026-11-22T10:00:00.00%dZ", i);
        cr_expect_str_eq(str(o, "time"), want);
        snprintf(want, sizeof(want), "user%d", i + 1);
        cr_expect_str_eq(str(o, "actor"), want);
        cr_expect_str_eq(str(o, "role"), "reader");
        cr_expect_str_eq(str(o, "action"), "qido");
        cr_expect_str_eq(str(o, "outcome"), "success");
        cr_expect_null(json_object_get(o, "hospital"), "empty fields are not recorded");
        cr_expect_null(json_object_get(o, "study"));
        cr_expect_eq(json_object_size(o), 9);
        cr_expect_str_eq(str(o, "prev"), prev);
        expect_hash_ok(o);
        json_decref(last);
        last = o;
        prev = str(o, "hash");
    }
    json_decref(last);
    cr_expect_eq(strncmp(l.line[0], "{\"seq\":1,\"time\":", 16), 0, "seq first: %.40s", l.line[0]);
    free(l.buf);

    struct stat st;
    char path[700];
    path_of(DAY1, path);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0640);
    snprintf(path, sizeof(path), "%s/audit", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0750);
    expect_verify(5, NULL);
}

Test(audit, written_without_close_and_synced_within_a_second)
{
    sto_audit *a = open_log();
    log_n(a, 1, 1);
    uint64_t t0 = uv_hrtime();
    /* the loop only runs out once the write is done and the 1 s sync timer has fired */
    uv_run(&loop, UV_RUN_DEFAULT);
    double s = (double)(uv_hrtime() - t0) / 1e9;
    cr_expect_geq(s, 0.9, "the fdatasync waits for its tick (%.3f s)", s);
    cr_expect_lt(s, 5.0);
    cr_expect_eq(sto_audit_records(a), 1);
    expect_verify(1, NULL);
    log_n(a, 2, 1);
    close_log(a);
    expect_verify(2, NULL);
}

Test(audit, reopen_continues_the_chain)
{
    write_lines(open_log(), 1, 3);
    write_lines(open_log(), 4, 2);
    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 5);
    json_t *r3 = record(&l, 2), *r4 = record(&l, 3);
    cr_expect_eq(json_integer_value(json_object_get(r4, "seq")), 4);
    cr_expect_str_eq(str(r4, "prev"), str(r3, "hash"));
    cr_expect_str_eq(str(r4, "actor"), "user4", "no restart record after a clean close");
    json_decref(r3);
    json_decref(r4);
    free(l.buf);
    expect_verify(5, NULL);
}

Test(audit, an_edited_byte_names_its_line)
{
    write_lines(open_log(), 1, 6);
    lines l;
    read_lines(DAY1, &l);
    char *u = strstr(l.line[2], "user3");
    cr_assert_not_null(u);
    u[4] = '9';
    int order[] = {0, 1, 2, 3, 4, 5};
    rewrite(DAY1, &l, order, 6);
    free(l.buf);
    expect_broken(DAY1 ":3:", "hash does not match");
}

Test(audit, an_edited_hash_names_its_line)
{
    write_lines(open_log(), 1, 6);
    lines l;
    read_lines(DAY1, &l);
    char *h = strstr(l.line[3], "\"hash\":\"");
    cr_assert_not_null(h);
    h[8] = h[8] == 'a' ? 'b' : 'a';
    int order[] = {0, 1, 2, 3, 4, 5};
    rewrite(DAY1, &l, order, 6);
    free(l.buf);
    expect_broken(DAY1 ":4:", "hash does not match");
}

Test(audit, a_deleted_line_names_the_next_one)
{
    write_lines(open_log(), 1, 6);
    lines l;
    read_lines(DAY1, &l);
    int order[] = {0, 1, 3, 4, 5};
    rewrite(DAY1, &l, order, 5);
    free(l.buf);
    expect_broken(DAY1 ":3:", "record 4 where 3 was expected");
}

Test(audit, reordered_lines_are_named)
{
    write_lines(open_log(), 1, 6);
    lines l;
    read_lines(DAY1, &l);
    int order[] = {0, 1, 3, 2, 4, 5};
    rewrite(DAY1, &l, order, 6);
    free(l.buf);
    expect_broken(DAY1 ":3:", "record 4 where 3 was expected");
}

Test(audit, a_broken_line_in_the_middle_is_not_a_torn_tail)
{
    write_lines(open_log(), 1, 6);
    lines l;
    read_lines(DAY1, &l);
    l.len[2] -= 1; /* drop the closing brace */
    int order[] = {0, 1, 2, 3, 4, 5};
    rewrite(DAY1, &l, order, 6);
    free(l.buf);
    expect_broken(DAY1 ":3:", "not an audit record");
}

Test(audit, a_record_whose_prev_skips_is_named)
{
    /* a consistent record with a wrong prev: rebuilt with its own valid hash */
    write_lines(open_log(), 1, 4);
    lines l;
    read_lines(DAY1, &l);
    json_t *o = record(&l, 2);
    json_object_set_new(o, "prev", json_string(str(o, "hash")));
    json_object_del(o, "hash");
    char hex[65];
    char *canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    hr_sha256 *h = hr_sha256_new();
    hr_sha256_update(h, canon, strlen(canon));
    hr_sha256_final_hex(h, hex);
    json_object_set_new(o, "hash", json_string(hex));
    char *line = json_dumps(o, JSON_COMPACT);
    l.line[2] = line;
    l.len[2] = strlen(line);
    int order[] = {0, 1, 2, 3};
    rewrite(DAY1, &l, order, 4);
    expect_broken(DAY1 ":3:", "prev is not the hash of record 2");
    free(line);
    free(canon);
    hr_sha256_free(h);
    json_decref(o);
    free(l.buf);
}

Test(audit, a_torn_tail_is_followed_by_a_restart_record_and_verifies)
{
    write_lines(open_log(), 1, 3);
    append_raw(DAY1, "{\"seq\":4,\"time\":\"2026-11-22T1"); /* crash in mid-write */
    expect_verify(3, DAY1 ":4: 1 line(s) at the end are not records");

    sto_audit *a = open_log();
    log_n(a, 4, 1);
    close_log(a);
    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 6);
    cr_expect_eq(strncmp(l.line[3], "{\"seq\":4,\"time\":\"2026-11-22T1", l.len[3]), 0,
                 "the torn bytes are left as they were");
    json_t *r3 = record(&l, 2), *rs = record(&l, 4), *r5 = record(&l, 5);
    cr_expect_str_eq(str(rs, "action"), "audit-restart");
    cr_expect_eq(json_integer_value(json_object_get(rs, "seq")), 4);
    cr_expect_str_eq(str(rs, "prev"), str(r3, "hash"), "the restart links to the last record");
    cr_expect(strstr(str(rs, "detail"), "torn tail") != NULL, "%s", str(rs, "detail"));
    cr_expect(strstr(str(rs, "detail"), "after record 3") != NULL, "%s", str(rs, "detail"));
    cr_expect_eq(json_integer_value(json_object_get(r5, "seq")), 5);
    cr_expect_str_eq(str(r5, "prev"), str(rs, "hash"));
    json_decref(r3);
    json_decref(rs);
    json_decref(r5);
    free(l.buf);
    expect_verify(5, NULL);

    /* the same restart record pattern with a normal record instead is refused */
    read_lines(DAY1, &l);
    json_t *bad = record(&l, 4);
    cr_assert_not_null(bad);
    json_decref(bad);
    char *act = strstr(l.line[4], "audit-restart");
    cr_assert_not_null(act);
    memcpy(act, "audit-restarT", 13);
    int order[] = {0, 1, 2, 3, 4, 5};
    rewrite(DAY1, &l, order, 6);
    free(l.buf);
    expect_broken(DAY1 ":4:", "not an audit record");
}

Test(audit, a_crash_during_the_restart_record_is_recovered_too)
{
    write_lines(open_log(), 1, 2);
    append_raw(DAY1, "{\"seq\":3,\"ti");
    append_raw(DAY1, "\n{\"seq\":3,\"time\":\"2026"); /* the restart write, torn again */
    sto_audit *a = open_log();
    log_n(a, 3, 1);
    close_log(a);
    expect_verify(4, NULL);
    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 6);
    json_t *rs = record(&l, 4);
    cr_expect_str_eq(str(rs, "action"), "audit-restart");
    cr_expect(strstr(str(rs, "detail"), "2 line(s)") != NULL, "%s", str(rs, "detail"));
    json_decref(rs);
    free(l.buf);
}

Test(audit, a_torn_first_record_restarts_the_chain_from_zero)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/audit", dir);
    cr_assert_eq(mkdir(path, 0750), 0);
    append_raw(DAY1, "{\"seq\":1,\"time\":\"20"); /* the very first write, torn */
    expect_verify(0, DAY1 ":1:");
    write_lines(open_log(), 1, 1);
    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 3);
    json_t *rs = record(&l, 1);
    cr_expect_str_eq(str(rs, "action"), "audit-restart");
    cr_expect_eq(json_integer_value(json_object_get(rs, "seq")), 1);
    cr_expect_str_eq(str(rs, "prev"),
                     "0000000000000000000000000000000000000000000000000000000000000000");
    json_decref(rs);
    free(l.buf);
    expect_verify(2, NULL);
}

Test(audit, a_complete_last_record_without_newline_is_kept)
{
    write_lines(open_log(), 1, 3);
    lines l;
    read_lines(DAY1, &l);
    char path[700];
    path_of(DAY1, path);
    cr_assert_eq(truncate(path, (off_t)(l.line[2] - l.buf + l.len[2])), 0);
    free(l.buf);
    write_lines(open_log(), 4, 1);
    read_lines(DAY1, &l);
    cr_expect_eq(l.n, 4, "a fresh line, no restart record");
    free(l.buf);
    expect_verify(4, NULL);
}

Test(audit, records_roll_over_to_the_next_day_and_never_back)
{
    fake_now = utc_ms(2026, 11, 22, 23, 59, 59, 998);
    sto_audit *a = open_log();
    log_n(a, 1, 2);
    fake_now = utc_ms(2026, 11, 23, 0, 0, 0, 0);
    log_n(a, 3, 2);
    fake_now = utc_ms(2026, 11, 22, 23, 59, 59, 0); /* the clock steps back */
    log_n(a, 5, 1);
    close_log(a);
    fake_now = utc_ms(2026, 11, 22, 23, 59, 59, 500);
    write_lines(open_log(), 6, 1); /* reopened with the clock still behind */

    lines l1, l2;
    read_lines(DAY1, &l1);
    read_lines(DAY2, &l2);
    cr_assert_eq(l1.n, 2);
    cr_assert_eq(l2.n, 4);
    json_t *last = record(&l1, 1), *first = record(&l2, 0), *back = record(&l2, 2);
    cr_expect_str_eq(str(first, "prev"), str(last, "hash"), "the chain crosses files");
    cr_expect_str_eq(str(first, "time"), "2026-11-23T00:00:00.000Z");
    cr_expect_str_eq(str(back, "time"), "2026-11-22T23:59:59.000Z");
    json_decref(last);
    json_decref(first);
    json_decref(back);
    free(l1.buf);
    free(l2.buf);
    expect_verify(6, NULL);

    /* deleting a whole day file breaks the chain at the next one */
    char path[700];
    path_of(DAY1, path);
    cr_assert_eq(unlink(path), 0);
    expect_broken(DAY2 ":1:", "record 3 where 1 was expected");
}

Test(audit, a_torn_tail_in_yesterdays_file_restarts_in_todays)
{
    write_lines(open_log(), 1, 2);
    append_raw(DAY1, "{\"seq\":3");
    fake_now = utc_ms(2026, 11, 23, 8, 0, 0, 0);
    write_lines(open_log(), 3, 1);
    lines l1, l2;
    read_lines(DAY1, &l1);
    read_lines(DAY2, &l2);
    cr_expect_eq(l1.n, 3);
    cr_expect_not(l1.terminated, "yesterday's file is not touched");
    cr_assert_eq(l2.n, 2);
    json_t *rs = record(&l2, 0);
    cr_expect_str_eq(str(rs, "action"), "audit-restart");
    json_decref(rs);
    free(l1.buf);
    free(l2.buf);
    expect_verify(4, NULL);
}

Test(audit, fields_are_made_utf8_and_bounded)
{
    char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sto_audit *a = open_log();
    sto_audit_event ev = {.actor = "AE\xff\xfe"
                                   "1",
                          .detail = big,
                          .study = "1.2.3\n4"};
    sto_audit_log(a, &ev);
    close_log(a);
    lines l;
    read_lines(DAY1, &l);
    cr_assert_eq(l.n, 1, "a newline in a field stays inside the JSON string");
    json_t *o = record(&l, 0);
    cr_expect_str_eq(str(o, "actor"), "AE\xEF\xBF\xBD\xEF\xBF\xBD"
                                      "1");
    cr_expect_str_eq(str(o, "study"), "1.2.3\n4");
    cr_expect_eq(strlen(str(o, "detail")), 4096 + 3);
    cr_expect_eq(strcmp(str(o, "detail") + 4096, "..."), 0);
    json_decref(o);
    free(l.buf);
    expect_verify(1, NULL);
}

Test(audit, a_failed_write_is_counted_and_retried)
{
    char path[700];
    sto_audit *a = open_log();
    path_of(DAY1, path);
    cr_assert_eq(mkdir(path, 0700), 0); /* the day file cannot be opened (even as root) */
    log_n(a, 1, 2);
    for (int i = 0; i < 1000 && sto_audit_errors(a) == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_geq(sto_audit_errors(a), 1);
    cr_expect_eq(sto_audit_records(a), 0);
    cr_assert_eq(rmdir(path), 0);
    for (int i = 0; i < 1000 && sto_audit_records(a) < 2; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_expect_eq(sto_audit_records(a), 2, "written once the cause is gone");
    close_log(a);
    expect_verify(2, NULL);
}

typedef struct final_counts {
    sto_audit *a;
    unsigned long long records, errors;
    int closed;
} final_counts;

static void on_closed_counts(void *arg)
{
    final_counts *f = arg;
    f->records = sto_audit_records(f->a);
    f->errors = sto_audit_errors(f->a);
    f->closed++;
}

Test(audit, a_failure_at_close_drops_and_counts)
{
    char path[700];
    sto_audit *a = open_log();
    path_of(DAY1, path);
    cr_assert_eq(mkdir(path, 0700), 0);
    log_n(a, 1, 3);
    final_counts f = {.a = a};
    sto_audit_close(a, on_closed_counts, &f);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(f.closed, 1);
    cr_expect_eq(f.records, 0);
    cr_expect_eq(f.errors, 4, "the failed open and the 3 lost records");
}

Test(audit, the_queue_is_bounded_and_refusals_keep_the_chain)
{
    static char detail[4000];
    memset(detail, 'q', sizeof(detail) - 1);
    sto_audit *a = open_log();
    int accepted = 0;
    /* without running the loop nothing is written: the queue fills */
    for (int i = 0; i < 40000 && sto_audit_errors(a) == 0; i++) {
        sto_audit_event ev = {.actor = "bulk", .action = "wado", .detail = detail};
        sto_audit_log(a, &ev);
        if (sto_audit_errors(a) == 0)
            accepted++;
    }
    cr_assert_eq(sto_audit_errors(a), 1, "refused once the queue holds 64 MiB");
    cr_expect_gt(accepted, 15000);
    cr_expect_lt(accepted, 17000);
    close_log(a);
    expect_verify(accepted, NULL);
}

Test(audit, close_without_records_creates_no_file)
{
    sto_audit *a = open_log();
    close_log(a);
    char path[700];
    path_of(DAY1, path);
    cr_expect_neq(access(path, F_OK), 0);
    expect_verify(0, NULL);
}

Test(audit, verify_without_a_log_is_an_error)
{
    long long n;
    char err[256];
    cr_expect_eq(sto_audit_verify(dir, &n, err, sizeof(err)), -ENOENT);
    cr_expect(strstr(err, "/audit") != NULL, "%s", err);
}
