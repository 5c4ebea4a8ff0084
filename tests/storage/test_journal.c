/* storage/journal.c: group commit (one fdatasync per batch), completions on
 * the loop, scanning in order, torn tails, reading by position, bounds. */
#include "common/hr_err.h"
#include "storage/journal.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[512], dir[600];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(base), 0);
    snprintf(dir, sizeof(dir), "%s/journal/lab", base);
}

static void teardown(void)
{
    ts_rmrf(base);
}

TestSuite(journal, .init = setup, .fini = teardown);

#define N 300

typedef struct done {
    int calls, rc;
    sto_journal_pos pos;
} done;

static void on_done(void *arg, int rc, const sto_journal_pos *pos)
{
    done *d = arg;
    d->calls++;
    d->rc = rc;
    if (pos)
        d->pos = *pos;
}

static int closed_calls;
static void on_closed(void *arg)
{
    closed_calls++;
}

/* Record i's data: i-dependent bytes, length i * 7 % 1000 (0 for i = 0). */
static size_t rec_data(int i, uint8_t *buf)
{
    size_t n = (size_t)(i * 7 % 1000);
    for (size_t k = 0; k < n; k++)
        buf[k] = (uint8_t)(i * 31 + k);
    return n;
}

typedef struct seen {
    int n;
    sto_journal_pos pos[2 * N];
    int bad;
} seen;

static int on_rec(void *arg, uint32_t type, const uint8_t *data, size_t len, long long ms,
                  const sto_journal_pos *pos)
{
    seen *s = arg;
    uint8_t want[1000];
    int k = s->n % N;
    size_t wl = rec_data(k, want);
    if (type != (uint32_t)(k % 5 + 1) || ms != 1000000 + k || len != wl ||
        (len && memcmp(data, want, len) != 0))
        s->bad++;
    if (s->n < 2 * N)
        s->pos[s->n] = *pos;
    s->n++;
    return 0;
}

/* Appends records [from, to) from the loop; runs the loop until all are done. */
static void append_range(uv_loop_t *loop, sto_journal *j, done *d, int from, int to)
{
    uint8_t buf[1000];
    for (int i = from; i < to; i++) {
        size_t n = rec_data(i, buf);
        cr_assert_eq(
            sto_journal_append(j, (uint32_t)(i % 5 + 1), buf, n, 1000000 + i, on_done, &d[i]), 0,
            "append %d", i);
    }
}

static void run_until(uv_loop_t *loop, done *d, int from, int to)
{
    for (int guard = 0; guard < 100000; guard++) {
        int all = 1;
        for (int i = from; i < to && all; i++)
            all = d[i].calls > 0;
        if (all)
            return;
        uv_run(loop, UV_RUN_ONCE);
    }
    cr_assert_fail("appends did not complete");
}

static void close_journal(uv_loop_t *loop, sto_journal *j)
{
    closed_calls = 0;
    sto_journal_close(j, on_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_expect_eq(closed_calls, 1);
}

Test(journal, group_commit_scan_and_read)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sto_journal *j;
    static done d[N];
    memset(d, 0, sizeof(d));
    cr_assert_eq(sto_journal_open(&loop, dir, "node-1", &j), 0);

    /* held: all N appends form one batch: exactly one fdatasync */
    sto_journal_hold(j, 1);
    append_range(&loop, j, d, 0, N);
    sto_journal_stats st;
    sto_journal_stats_get(j, &st);
    cr_expect_eq(st.queued, N);
    cr_expect_eq(st.syncs, 0);
    for (int i = 0; i < N; i++)
        cr_expect_eq(d[i].calls, 0, "nothing completes before it is durable");
    sto_journal_hold(j, 0);
    run_until(&loop, d, 0, N);
    sto_journal_stats_get(j, &st);
    cr_expect_eq(st.syncs, 1, "one fdatasync for the batch of %d", N);
    cr_expect_eq(st.batches, 1);
    cr_expect_eq(st.records, N);
    cr_expect_eq(st.segments, 1);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(d[i].calls, 1);
        cr_expect_eq(d[i].rc, 0);
        cr_expect_eq(d[i].pos.len, (uint32_t)(i * 7 % 1000));
        if (i)
            cr_expect_gt(d[i].pos.offset, d[i - 1].pos.offset, "in order");
    }

    /* unheld: fewer syncs than records */
    static done d2[N];
    memset(d2, 0, sizeof(d2));
    append_range(&loop, j, d2, 0, N);
    run_until(&loop, d2, 0, N);
    sto_journal_stats_get(j, &st);
    cr_expect_lt(st.syncs, 1 + N, "batched: %llu syncs", (unsigned long long)st.syncs);
    close_journal(&loop, j);
    cr_expect_eq(uv_loop_close(&loop), 0);

    /* scan: both runs in order with the right bytes */
    seen *s = calloc(1, sizeof(*s));
    int torn = -1;
    cr_assert_eq(sto_journal_scan(dir, on_rec, s, &torn), 0);
    cr_expect_eq(torn, 0);
    cr_expect_eq(s->n, 2 * N, "both runs");
    cr_expect_eq(s->bad, 0, "each record in order with its type, time and bytes");
    for (int i = 0; i < N; i++) {
        cr_expect_str_eq(s->pos[i].segment, d[i].pos.segment);
        cr_expect_eq(s->pos[i].offset, d[i].pos.offset);
        cr_expect_eq(s->pos[N + i].offset, d2[i].pos.offset);
    }

    /* read by position */
    for (int i = 0; i < N; i += 37) {
        uint8_t *data, want[1000];
        size_t len, wl = rec_data(i, want);
        cr_assert_eq(sto_journal_read(dir, &d[i].pos, &data, &len), 0);
        cr_expect_eq(len, wl);
        cr_expect(wl == 0 || memcmp(data, want, wl) == 0);
        free(data);
        cr_assert_eq(sto_journal_read(dir, &d2[i].pos, &data, &len), 0);
        cr_expect(len == wl && (wl == 0 || memcmp(data, want, wl) == 0));
        free(data);
    }
    /* a wrong position is refused, not read as data */
    sto_journal_pos p = d[5].pos;
    uint8_t *data;
    size_t len;
    p.offset += 1;
    cr_expect_eq(sto_journal_read(dir, &p, &data, &len), HR_EPARSE);
    p = d[5].pos;
    p.len += 1;
    cr_expect_eq(sto_journal_read(dir, &p, &data, &len), HR_EPARSE);
    p = d[5].pos;
    snprintf(p.segment, sizeof(p.segment), "../x.jnl");
    cr_expect_eq(sto_journal_read(dir, &p, &data, &len), -EINVAL);
    snprintf(p.segment, sizeof(p.segment), "0000000000000-none-0.jnl");
    cr_expect_eq(sto_journal_read(dir, &p, &data, &len), HR_ENOTFOUND);
    free(s);
}

/* The path of the only (or last) segment of dir. */
static void last_segment(char *out, size_t cap)
{
    DIR *dd = opendir(dir);
    cr_assert_not_null(dd);
    struct dirent *de;
    char best[256] = "";
    while ((de = readdir(dd)) != NULL)
        if (strstr(de->d_name, ".jnl") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(dd);
    cr_assert(best[0]);
    snprintf(out, cap, "%s/%s", dir, best);
}

Test(journal, torn_tail_and_new_segment_per_open)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sto_journal *j;
    static done d[20];
    memset(d, 0, sizeof(d));
    cr_assert_eq(sto_journal_open(&loop, dir, "n1", &j), 0);
    append_range(&loop, j, d, 0, 10);
    run_until(&loop, d, 0, 10);
    close_journal(&loop, j);

    /* tear the last record: cut the file in its middle */
    char path[1024];
    last_segment(path, sizeof(path));
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    uint64_t cut = d[9].pos.offset + STO_JOURNAL_HEADER + d[9].pos.len / 2;
    cr_assert_eq(truncate(path, (off_t)cut), 0);

    /* reopening never appends to the torn file: a new segment */
    cr_assert_eq(sto_journal_open(&loop, dir, "n1", &j), 0);
    append_range(&loop, j, d, 10, 20);
    run_until(&loop, d, 10, 20);
    close_journal(&loop, j);
    cr_expect_str_neq(d[10].pos.segment, d[9].pos.segment);
    cr_expect_eq(uv_loop_close(&loop), 0);

    seen *s = calloc(1, sizeof(*s));
    int torn = 0;
    cr_assert_eq(sto_journal_scan(dir, on_rec, s, &torn), 0);
    cr_expect_eq(torn, 1, "the torn tail is reported");
    /* records 0..8, then 10..19: the scan's counter shifts at the gap */
    cr_expect_eq(s->n, 19);
    cr_expect_eq(s->bad, 10, "records 10..19 come after the lost 9");
    cr_expect_str_eq(s->pos[9].segment, d[10].pos.segment);

    /* a corrupt byte in a record's data ends that segment there too */
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "X", 1, (off_t)(d[4].pos.offset + STO_JOURNAL_HEADER)), 1);
    close(fd);
    memset(s, 0, sizeof(*s));
    cr_assert_eq(sto_journal_scan(dir, on_rec, s, &torn), 0);
    cr_expect_eq(torn, 1);
    cr_expect_eq(s->n, 4 + 10);
    uint8_t *data;
    size_t len;
    cr_expect_eq(sto_journal_read(dir, &d[4].pos, &data, &len), HR_EDIGEST);
    cr_assert_eq(sto_journal_read(dir, &d[3].pos, &data, &len), 0);
    free(data);
    free(s);

    /* a missing directory scans as empty */
    memset(s = calloc(1, sizeof(*s)), 0, sizeof(*s));
    char none[700];
    snprintf(none, sizeof(none), "%s/none", base);
    cr_expect_eq(sto_journal_scan(none, on_rec, s, NULL), 0);
    cr_expect_eq(s->n, 0);
    free(s);
}

Test(journal, roll_and_bounds)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sto_journal *j;
    static done d[N];
    memset(d, 0, sizeof(d));
    sto_journal_opts o = {.segment_max = 20000, .queue_bytes = 50000, .queue_count = 100};
    cr_expect_eq(sto_journal_open_opts(&loop, dir, "bad/node", &o, &j), -EINVAL);
    cr_expect_eq(sto_journal_open_opts(&loop, dir, "", &o, &j), -EINVAL);
    cr_assert_eq(sto_journal_open_opts(&loop, dir, "n1", &o, &j), 0);

    /* the queue is bounded by count and bytes: -EAGAIN beyond */
    uint8_t big[1000] = {0};
    sto_journal_hold(j, 1);
    int i = 0, again = 0;
    for (; i < N; i++) {
        size_t n = rec_data(i, big);
        int rc = sto_journal_append(j, (uint32_t)(i % 5 + 1), big, n, 1000000 + i, on_done, &d[i]);
        if (rc == -EAGAIN) {
            again = 1;
            break;
        }
        cr_assert_eq(rc, 0);
    }
    cr_expect(again);
    cr_expect_leq(i, 100);
    sto_journal_stats st;
    sto_journal_stats_get(j, &st);
    cr_expect_eq(st.queued, (size_t)i);
    cr_expect_eq(sto_journal_append(j, 1, big, STO_JOURNAL_RECORD_MAX + 1, 0, on_done, &d[0]),
                 HR_ETOOBIG);
    sto_journal_hold(j, 0);
    run_until(&loop, d, 0, i);
    for (int k = 0; k < i; k++)
        cr_expect_eq(d[k].rc, 0);
    /* 20 000-byte segments: the batch rolled, each roll with its own sync */
    sto_journal_stats_get(j, &st);
    cr_expect_gt(st.segments, 1);
    cr_expect_eq(st.syncs, st.segments, "one per segment written in this one batch");
    cr_expect_str_neq(d[0].pos.segment, d[i - 1].pos.segment);
    closed_calls = 0;
    sto_journal_close(j, on_closed, NULL);
    cr_expect_eq(sto_journal_append(j, 1, big, 1, 0, on_done, &d[0]), HR_ESTATE, "closing");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(closed_calls, 1);
    cr_expect_eq(uv_loop_close(&loop), 0);

    seen *s = calloc(1, sizeof(*s));
    int torn = -1;
    cr_assert_eq(sto_journal_scan(dir, on_rec, s, &torn), 0);
    cr_expect_eq(torn, 0);
    cr_expect_eq(s->n, i, "every record over the rolled segments");
    cr_expect_eq(s->bad, 0);
    free(s);
}
