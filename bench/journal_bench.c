/* huren-bench-journal [dir] [seconds] [record bytes]: durable records per
 * second through the group-commit journal (storage/journal.c, decision
 * 0036) with 1, 8, 64 and 512 appends in flight (each completion appends
 * again), and the fdatasync calls it took, next to the ceiling of the same
 * disk: write + fdatasync of one record at a time on this thread. Prints
 * only; the ratio of interest is records/s over syncs/s (the batch size). */
#include "storage/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct run {
    sto_journal *j;
    uint8_t *data;
    size_t len;
    long long stop_at, done;
    int failed;
} run;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_done(void *arg, int rc, const sto_journal_pos *pos)
{
    run *r = arg;
    if (rc) {
        r->failed++;
        return;
    }
    r->done++;
    if (now_ms() < r->stop_at &&
        sto_journal_append(r->j, 1, r->data, r->len, now_ms(), on_done, r) != 0)
        r->failed++;
}

static void on_closed(void *arg)
{
}

/* Removes the segment files of a journal directory and the directory. */
static void remove_journal(const char *dir)
{
    char p[4400];
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".jnl")) {
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/huren-bench-journal.XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    int secs = argc > 2 ? atoi(argv[2]) : 3;
    size_t len = argc > 3 ? (size_t)atol(argv[3]) : 2048;
    if (!dir || secs < 1 || len < 1 || len > STO_JOURNAL_RECORD_MAX) {
        fprintf(stderr, "usage: %s [dir] [seconds] [record bytes]\n", argv[0]);
        return 2;
    }
    uint8_t *data = malloc(len);
    if (!data)
        return 1;
    memset(data, 'x', len);

    /* the ceiling: one record, one fdatasync */
    char path[4096];
    snprintf(path, sizeof(path), "%s/ceiling.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    long long t0 = now_ms(), n = 0;
    while (now_ms() - t0 < secs * 1000LL) {
        if (write(fd, data, len) != (ssize_t)len || fdatasync(fd) != 0) {
            perror("write");
            return 1;
        }
        n++;
    }
    double el = (double)(now_ms() - t0) / 1000.0;
    close(fd);
    unlink(path);
    printf("%-28s %10.0f records/s  %10.0f syncs/s\n", "write+fdatasync each", n / el, n / el);

    int inflight[] = {1, 8, 64, 512};
    for (size_t k = 0; k < sizeof(inflight) / sizeof(inflight[0]); k++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        char jdir[4200];
        snprintf(jdir, sizeof(jdir), "%s/j%d", dir, inflight[k]);
        run r = {.data = data, .len = len};
        if (sto_journal_open(&loop, jdir, "bench", &r.j) != 0) {
            fprintf(stderr, "open %s failed\n", jdir);
            return 1;
        }
        t0 = now_ms();
        r.stop_at = t0 + secs * 1000LL;
        for (int i = 0; i < inflight[k]; i++)
            if (sto_journal_append(r.j, 1, data, len, t0, on_done, &r) != 0)
                r.failed++;
        while (now_ms() < r.stop_at)
            uv_run(&loop, UV_RUN_ONCE);
        sto_journal_stats st;
        el = (double)(now_ms() - t0) / 1000.0;
        sto_journal_stats_get(r.j, &st);
        sto_journal_close(r.j, on_closed, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        remove_journal(jdir);
        printf("journal, %3d in flight        %10.0f records/s  %10.0f syncs/s  %6.1f records/sync"
               "  (%d failed)\n",
               inflight[k], r.done / el, (double)st.syncs / el,
               st.syncs ? (double)st.records / (double)st.syncs : 0.0, r.failed);
    }
    free(data);
    if (argc <= 1)
        rmdir(dir);
    return 0;
}
