#include "audit.h"
#include "objstore.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FIELD_MAX     4096                /* bytes kept of each event field */
#define FIELD_BUF     (3 * FIELD_MAX + 8) /* worst case: every byte becomes U+FFFD */
#define LINE_MAX_LEN  (512 * 1024)        /* longest line the readers accept */
#define TAIL_WINDOW   (4 * 1024 * 1024)   /* bytes read back from a file's end on open */
#define QUEUE_MAX     (64u << 20)         /* pending text beyond which events are refused */
#define TICK_MS       1000                /* fdatasync delay and retry delay */
#define BATCH         64                  /* records per write */
#define DAY_LEN       10                  /* YYYY-MM-DD */
#define FILE_NAME_LEN 22                  /* audit-YYYY-MM-DD.jsonl */

static const char ZERO_HASH[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* Event fields in record order, with their JSON names. */
static const struct {
    const char *name;
    size_t off;
} k_fields[] = {
    {"actor", offsetof(sto_audit_event, actor)},
    {"role", offsetof(sto_audit_event, role)},
    {"hospital", offsetof(sto_audit_event, hospital)},
    {"address", offsetof(sto_audit_event, address)},
    {"action", offsetof(sto_audit_event, action)},
    {"patient", offsetof(sto_audit_event, patient)},
    {"study", offsetof(sto_audit_event, study)},
    {"detail", offsetof(sto_audit_event, detail)},
    {"outcome", offsetof(sto_audit_event, outcome)},
    {"request_id", offsetof(sto_audit_event, request_id)},
};

typedef struct rec {
    struct rec *next;
    char day[DAY_LEN + 1];
    size_t len; /* text bytes, '\n' included */
    char text[];
} rec;

enum op { OP_NONE, OP_WRITE, OP_SYNC, OP_OPEN, OP_CLOSE, OP_DONE };

struct sto_audit {
    uv_loop_t *loop;
    char dir[STO_PATH_MAX]; /* <data_dir>/audit */
    hr_sha256 *sha;
    /* chain: last queued record */
    unsigned long long seq;
    char prev[65];
    char day_floor[DAY_LEN + 1]; /* newest day file: never write into an older one */
    /* records not yet written, oldest first */
    rec *head, *tail;
    size_t queued;   /* bytes */
    size_t head_off; /* bytes of head already written */
    /* file being appended */
    uv_file fd;
    char day[DAY_LEN + 1];
    int dirty; /* written since the last fdatasync */
    /* the one operation in flight */
    enum op op;
    uv_fs_t fs;
    uv_buf_t iov[BATCH];
    uv_work_t work;
    uv_file job_old_fd; /* open job: file to sync (job_sync) and close first */
    int job_sync, job_old_err, job_fd;
    char job_day[DAY_LEN + 1];
    uv_timer_t timer;
    int sync_due, retry_wait, closing;
    void (*close_cb)(void *);
    void *close_arg;
    unsigned long long records, errors, refused;
    int failing;                      /* from a failed write or sync until a write succeeds */
    unsigned long long read_refusals; /* reads refused because records could not be written */
    uint64_t refusal_logged_ms;       /* rate limit of the refusal log line */
};

/* ---- clock ---------------------------------------------------------------- */

static long long (*g_now_ms)(void) = hr_wall_ms;

void sto__audit_set_clock(long long (*now_ms)(void))
{
    g_now_ms = now_ms ? now_ms : hr_wall_ms;
}

/* "2026-11-22T10:00:00.123Z" into when[25] and "2026-11-22" into day. */
static void format_time(long long ms, char when[32], char day[DAY_LEN + 1])
{
    time_t sec = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(when, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    memcpy(day, when, DAY_LEN);
    day[DAY_LEN] = '\0';
}

/* ---- records -------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Copies up to FIELD_MAX bytes of s into out[FIELD_BUF] as UTF-8 (ill-formed
 * bytes become U+FFFD, a cut field ends in "..."); returns the length. */
static size_t clean_field(const char *s, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, o = 0;
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (i + (l ? l : 1) > FIELD_MAX)
            break;
        if (l) {
            memcpy(out + o, p + i, l);
            o += l;
            i += l;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    return o;
}

/* Canonical text of o (which has no "hash"): JSON_COMPACT | JSON_SORT_KEYS;
 * its SHA-256 into hex. 0 or -ENOMEM. */
static int canon_hash(const json_t *o, hr_sha256 *sha, char hex[65])
{
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    if (n == 0)
        return -ENOMEM;
    char *text = malloc(n);
    if (!text)
        return -ENOMEM;
    int rc = json_dumpb(o, text, n, JSON_COMPACT | JSON_SORT_KEYS) == n ? 0 : -ENOMEM;
    if (!rc && (rc = hr_sha256_reset(sha)) == 0) {
        hr_sha256_update(sha, text, n);
        hr_sha256_final_hex(sha, hex);
    }
    free(text);
    return rc;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    if (!s || !*s)
        return 0;
    char buf[FIELD_BUF];
    size_t n = clean_field(s, buf);
    json_t *v = json_stringn(buf, n);
    return v && json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

/* Builds the next record of the chain (seq, prev of a) as a queued line; does
 * not advance the chain. 0, -ENOMEM or HR_ETOOBIG (line too long). */
static int build_record(sto_audit *a, const sto_audit_event *ev, rec **out, char hash[65])
{
    char when[32], day[DAY_LEN + 1];
    int rc = -ENOMEM;
    char *line = NULL;
    json_t *o = json_object();
    *out = NULL;
    format_time(g_now_ms(), when, day);
    if (!o || json_object_set_new(o, "seq", json_integer((json_int_t)(a->seq + 1))) ||
        json_object_set_new(o, "time", json_string(when)))
        goto out;
    for (size_t f = 0; f < HR_ARRAY_LEN(k_fields); f++)
        if (set_str(o, k_fields[f].name,
                    *(const char *const *)((const char *)ev + k_fields[f].off)))
            goto out;
    if (json_object_set_new(o, "prev", json_string(a->prev)))
        goto out;
    rc = canon_hash(o, a->sha, hash);
    if (rc)
        goto out;
    rc = -ENOMEM;
    if (json_object_set_new(o, "hash", json_string(hash)))
        goto out;
    line = json_dumps(o, JSON_COMPACT);
    if (!line)
        goto out;
    size_t n = strlen(line);
    if (n >= LINE_MAX_LEN) {
        rc = HR_ETOOBIG;
        goto out;
    }
    rec *r = malloc(sizeof(*r) + n + 1);
    if (!r)
        goto out;
    r->next = NULL;
    memcpy(r->text, line, n);
    r->text[n] = '\n';
    r->len = n + 1;
    /* day files follow the newest one: a clock going back stays in it */
    snprintf(r->day, sizeof(r->day), "%s", strcmp(day, a->day_floor) < 0 ? a->day_floor : day);
    *out = r;
    rc = 0;
out:
    free(line);
    json_decref(o);
    return rc;
}

/* Parses one line as a record: a JSON object with integer seq >= 1 and
 * 64-hex "hash" and "prev". The object (caller decrefs), or NULL. */
static json_t *parse_record(const char *p, size_t n)
{
    json_error_t je;
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return NULL;
    json_t *seq = json_object_get(o, "seq");
    const char *keys[] = {"hash", "prev"};
    int ok = json_is_object(o) && json_is_integer(seq) && json_integer_value(seq) >= 1;
    for (int k = 0; ok && k < 2; k++) {
        const char *h = json_string_value(json_object_get(o, keys[k]));
        ok = h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- writing -------------------------------------------------------------- */

static void pump(sto_audit *a);

static void free_queue(sto_audit *a)
{
    while (a->head) {
        rec *r = a->head;
        a->head = r->next;
        free(r);
    }
    a->tail = NULL;
    a->queued = 0;
    a->head_off = 0;
}

static void arm_timer(sto_audit *a);

/* A write or an open failed: retry on the next tick, or give up when closing. */
static void failed(sto_audit *a, const char *what, int err)
{
    a->errors++;
    a->failing = 1;
    if (!a->closing) {
        hr_error("audit", "%s failed: %s; %zu bytes waiting, retrying in 1 s", what,
                 hr_strerror(err), a->queued);
        a->retry_wait = 1;
        arm_timer(a);
        return;
    }
    unsigned long long lost = 0;
    for (rec *r = a->head; r; r = r->next)
        lost++;
    hr_error("audit", "%s failed: %s; closing: %llu audit records lost", what, hr_strerror(err),
             lost);
    a->errors += lost;
    free_queue(a);
}

static void on_timer(uv_timer_t *t)
{
    sto_audit *a = t->data;
    a->sync_due = 1;
    a->retry_wait = 0;
    pump(a);
}

static void arm_timer(sto_audit *a)
{
    if (!uv_is_active((uv_handle_t *)&a->timer))
        uv_timer_start(&a->timer, on_timer, TICK_MS, 0);
}

static void on_write(uv_fs_t *req)
{
    sto_audit *a = req->data;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    a->op = OP_NONE;
    if (res <= 0) {
        failed(a, "audit write", res < 0 ? (int)res : -EIO);
        pump(a);
        return;
    }
    a->dirty = 1;
    a->failing = 0;
    /* a short write leaves the rest of the batch queued, head_off into head */
    size_t done = (size_t)res;
    while (done > 0) {
        rec *r = a->head;
        HR_ASSERT(r);
        size_t left = r->len - a->head_off;
        if (done < left) {
            a->head_off += done;
            break;
        }
        done -= left;
        a->head = r->next;
        if (!a->head)
            a->tail = NULL;
        a->queued -= r->len;
        a->head_off = 0;
        a->records++;
        free(r);
    }
    arm_timer(a);
    pump(a);
}

static void start_write(sto_audit *a)
{
    unsigned n = 0;
    size_t off = a->head_off;
    for (rec *r = a->head; r && n < BATCH && strcmp(r->day, a->day) == 0; r = r->next) {
        a->iov[n++] = uv_buf_init(r->text + off, (unsigned)(r->len - off));
        off = 0;
    }
    a->op = OP_WRITE;
    a->fs.data = a;
    int rc = uv_fs_write(a->loop, &a->fs, a->fd, a->iov, n, -1, on_write);
    if (rc) {
        a->op = OP_NONE;
        failed(a, "audit write", rc);
        pump(a);
    }
}

static void on_sync(uv_fs_t *req)
{
    sto_audit *a = req->data;
    int res = (int)req->result;
    uv_fs_req_cleanup(req);
    a->op = OP_NONE;
    /* after a failed fdatasync the pages may be clean but lost: a retry
     * proves nothing, so count it and go on */
    if (res < 0) {
        a->errors++;
        a->failing = 1;
        hr_error("audit", "fdatasync of audit-%s.jsonl failed: %s", a->day, hr_strerror(res));
    }
    a->dirty = 0;
    a->sync_due = 0;
    pump(a);
}

static void on_fd_closed(uv_fs_t *req)
{
    sto_audit *a = req->data;
    int res = (int)req->result;
    uv_fs_req_cleanup(req);
    a->op = OP_NONE;
    if (res < 0) {
        a->errors++;
        hr_error("audit", "close of audit-%s.jsonl failed: %s", a->day, hr_strerror(res));
    }
    pump(a);
}

/* Thread pool: syncs and closes the previous file, opens (creates) the day
 * file O_APPEND and starts it on a fresh line if a crash left it torn. */
static void open_job(uv_work_t *w)
{
    sto_audit *a = w->data;
    char path[STO_PATH_MAX + 32];
    a->job_old_err = 0;
    if (a->job_old_fd >= 0) {
        if (a->job_sync && fdatasync(a->job_old_fd))
            a->job_old_err = -errno;
        if (close(a->job_old_fd) && !a->job_old_err)
            a->job_old_err = -errno;
    }
    snprintf(path, sizeof(path), "%s/audit-%s.jsonl", a->dir, a->job_day);
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    int fd = open(path, flags | O_EXCL, 0640);
    if (fd >= 0) {
        int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = dfd < 0 || fsync(dfd) ? -errno : 0;
        if (dfd >= 0)
            close(dfd);
        if (rc) {
            close(fd);
            fd = rc;
        }
        a->job_fd = fd;
        return;
    }
    if (errno != EEXIST || (fd = open(path, flags, 0640)) < 0) {
        a->job_fd = -errno;
        return;
    }
    a->job_fd = fd;
    char last = '\n';
    struct stat st;
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = rfd < 0 || fstat(rfd, &st) ? -errno : 0;
    if (!rc && st.st_size > 0 && pread(rfd, &last, 1, st.st_size - 1) != 1)
        rc = -EIO;
    if (!rc && last != '\n' && write(fd, "\n", 1) != 1)
        rc = -EIO;
    if (rfd >= 0)
        close(rfd);
    if (rc) {
        close(fd);
        a->job_fd = rc;
    }
}

static void open_done(uv_work_t *w, int status)
{
    sto_audit *a = w->data;
    a->op = OP_NONE;
    if (a->job_old_err) {
        a->errors++;
        hr_error("audit", "closing audit-%s.jsonl: %s", a->day, hr_strerror(a->job_old_err));
    }
    if (status == 0 && a->job_fd >= 0) {
        a->fd = a->job_fd;
        memcpy(a->day, a->job_day, sizeof(a->day));
    } else {
        char what[64];
        snprintf(what, sizeof(what), "opening audit-%s.jsonl", a->job_day);
        failed(a, what, status ? status : a->job_fd);
    }
    pump(a);
}

static void start_open(sto_audit *a, const char *day)
{
    a->job_old_fd = a->fd;
    a->job_sync = a->dirty;
    a->fd = -1;
    a->dirty = 0;
    memcpy(a->job_day, day, sizeof(a->job_day));
    a->work.data = a;
    a->op = OP_OPEN;
    HR_ASSERT(uv_queue_work(a->loop, &a->work, open_job, open_done) == 0);
}

static void on_timer_closed(uv_handle_t *h)
{
    sto_audit *a = h->data;
    if (a->close_cb)
        a->close_cb(a->close_arg);
    hr_sha256_free(a->sha);
    free(a);
}

/* Starts the next operation: a due fdatasync, the next write (opening the day
 * file first), or the steps of closing. One at a time, in this order. */
static void pump(sto_audit *a)
{
    if (a->op != OP_NONE)
        return;
    if (a->sync_due && a->dirty && a->fd >= 0) {
        a->op = OP_SYNC;
        a->fs.data = a;
        if (uv_fs_fdatasync(a->loop, &a->fs, a->fd, on_sync) == 0)
            return;
        a->op = OP_NONE;
        a->errors++;
        a->dirty = 0;
    }
    a->sync_due = 0;
    if (a->head && !a->retry_wait) {
        if (a->fd < 0 || strcmp(a->head->day, a->day) != 0)
            start_open(a, a->head->day);
        else
            start_write(a);
        return;
    }
    if (!a->closing || a->head)
        return;
    if (a->dirty && a->fd >= 0) {
        a->sync_due = 1;
        pump(a);
        return;
    }
    if (a->fd >= 0) {
        a->op = OP_CLOSE;
        a->fs.data = a;
        uv_file fd = a->fd;
        a->fd = -1;
        if (uv_fs_close(a->loop, &a->fs, fd, on_fd_closed) == 0)
            return;
        a->op = OP_NONE;
    }
    a->op = OP_DONE;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

/* Queues the record of ev and advances the chain. 0 or an error (not queued). */
static int append(sto_audit *a, const sto_audit_event *ev)
{
    rec *r;
    char hash[65];
    int rc = build_record(a, ev, &r, hash);
    if (rc)
        return rc;
    if (a->queued + r->len > QUEUE_MAX) {
        free(r);
        return HR_ETOOBIG;
    }
    if (a->tail)
        a->tail->next = r;
    else
        a->head = r;
    a->tail = r;
    a->queued += r->len;
    a->seq++;
    memcpy(a->prev, hash, sizeof(a->prev));
    memcpy(a->day_floor, r->day, sizeof(a->day_floor));
    return 0;
}

void sto_audit_log(sto_audit *a, const sto_audit_event *ev)
{
    int rc = a->closing ? HR_ESTATE : append(a, ev);
    if (rc) {
        /* a full queue means the disk has been failing: say so at 1, 2, 4, ... */
        a->errors++;
        a->refused++;
        if ((a->refused & (a->refused - 1)) == 0)
            hr_error("audit", "audit event \"%s\" by \"%s\" not recorded: %s (%llu so far)",
                     ev->action ? ev->action : "", ev->actor ? ev->actor : "", hr_strerror(rc),
                     a->refused);
        return;
    }
    pump(a);
}

unsigned long long sto_audit_records(const sto_audit *a)
{
    return a->records;
}

unsigned long long sto_audit_errors(const sto_audit *a)
{
    return a->errors;
}

int sto_audit_admit_read(sto_audit *a, const char *what)
{
    if (!a)
        return 0; /* auditing off (tests of other modules) */
    if (!a->failing && !a->closing && a->queued <= QUEUE_MAX / 2)
        return 0;
    a->read_refusals++;
    uint64_t now = uv_now(a->loop);
    if (now - a->refusal_logged_ms >= 1000 || !a->refusal_logged_ms) {
        a->refusal_logged_ms = now;
        hr_error("audit",
                 "%s refused: the audit log cannot record it (%zu bytes waiting; %llu "
                 "reads refused so far)",
                 what, a->queued, a->read_refusals);
    }
    return -EIO;
}

unsigned long long sto_audit_read_refusals(const sto_audit *a)
{
    return a ? a->read_refusals : 0;
}

void sto_audit_close(sto_audit *a, void (*cb)(void *), void *arg)
{
    HR_DEBUG_ASSERT(!a->closing);
    a->closing = 1;
    a->close_cb = cb;
    a->close_arg = arg;
    a->retry_wait = 0; /* one last attempt */
    pump(a);
}

/* ---- opening -------------------------------------------------------------- */

static int is_day_file(const char *name)
{
    static const char pat[] = "audit-####-##-##.jsonl";
    if (strlen(name) != FILE_NAME_LEN)
        return 0;
    for (int i = 0; i < FILE_NAME_LEN; i++)
        if (pat[i] == '#' ? name[i] < '0' || name[i] > '9' : name[i] != pat[i])
            return 0;
    return 1;
}

static int day_filter(const struct dirent *e)
{
    return is_day_file(e->d_name);
}

static void free_names(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The last record of one file. *found, with its seq and hash; *torn_bytes and
 * *torn_lines count what follows it (or the whole window when none).
 * HR_EPARSE when no record is found within the last TAIL_WINDOW bytes of a
 * longer file, -errno on I/O errors. */
static int tail_scan(const char *path, int *found, unsigned long long *seq, char hash[65],
                     size_t *torn_bytes, unsigned *torn_lines)
{
    int rc = 0;
    char *buf = NULL;
    struct stat st;
    *found = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st)) {
        rc = -errno;
        goto out;
    }
    size_t n = st.st_size < TAIL_WINDOW ? (size_t)st.st_size : TAIL_WINDOW;
    int whole = (off_t)n == st.st_size;
    buf = malloc(n + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(fd, buf + got, n - got, st.st_size - (off_t)n + (off_t)got);
        if (r <= 0) {
            rc = r < 0 ? -errno : HR_ETRUNC;
            goto out;
        }
        got += (size_t)r;
    }
    /* walk lines back from the end; the last one may lack its '\n' */
    size_t end = n;
    while (end > 0) {
        size_t line_end = buf[end - 1] == '\n' ? end - 1 : end;
        size_t start = line_end;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (start == 0 && !whole) {
            rc = HR_EPARSE; /* the line may begin before the window */
            goto out;
        }
        json_t *o = parse_record(buf + start, line_end - start);
        if (o) {
            *seq = (unsigned long long)json_integer_value(json_object_get(o, "seq"));
            memcpy(hash, json_string_value(json_object_get(o, "hash")), 65);
            json_decref(o);
            *found = 1;
            goto out;
        }
        *torn_bytes += line_end - start;
        (*torn_lines)++;
        end = start;
    }
out:
    free(buf);
    close(fd);
    return rc;
}

int sto_audit_open(uv_loop_t *loop, const char *data_dir, sto_audit **out)
{
    struct dirent **names = NULL;
    int n = 0, rc, found = 0;
    unsigned long long seq = 0;
    size_t torn_bytes = 0;
    unsigned torn_lines = 0;
    char hash[65], torn_file[FILE_NAME_LEN + 1] = "";
    *out = NULL;
    sto_audit *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->loop = loop;
    a->fd = -1;
    memcpy(a->prev, ZERO_HASH, sizeof(a->prev));
    if ((size_t)snprintf(a->dir, sizeof(a->dir), "%s/audit", data_dir) >= sizeof(a->dir) - 32) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    if (mkdir(a->dir, 0750) == 0) {
        int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = dfd < 0 || fsync(dfd) ? -errno : 0;
        if (dfd >= 0)
            close(dfd);
        if (rc)
            goto out;
    } else if (errno != EEXIST) {
        rc = -errno;
        goto out;
    }
    a->sha = hr_sha256_new();
    if (!a->sha) {
        rc = -ENOMEM;
        goto out;
    }
    n = scandir(a->dir, &names, day_filter, alphasort);
    if (n < 0) {
        rc = -errno;
        n = 0;
        goto out;
    }
    if (n > 0)
        memcpy(a->day_floor, names[n - 1]->d_name + 6, DAY_LEN);
    /* newest file first; an empty or wholly torn file sends us to the one before */
    for (int i = n - 1; i >= 0 && !found; i--) {
        char path[STO_PATH_MAX + 32];
        size_t before = torn_bytes;
        snprintf(path, sizeof(path), "%s/%s", a->dir, names[i]->d_name);
        rc = tail_scan(path, &found, &seq, hash, &torn_bytes, &torn_lines);
        if (rc) {
            hr_error("audit", "%s: cannot read the last record: %s", path, hr_strerror(rc));
            goto out;
        }
        if (torn_bytes > before && !torn_file[0])
            snprintf(torn_file, sizeof(torn_file), "%s", names[i]->d_name);
    }
    if (found) {
        a->seq = seq;
        memcpy(a->prev, hash, sizeof(a->prev));
    }
    if (torn_lines) {
        char detail[256];
        snprintf(detail, sizeof(detail),
                 "torn tail: %zu bytes in %u line(s) of %s after record %llu are not a record "
                 "(crash during a write)",
                 torn_bytes, torn_lines, torn_file, seq);
        hr_warn("audit", "%s", detail);
        sto_audit_event ev = {.actor = "huren", .action = "audit-restart", .detail = detail};
        rc = append(a, &ev);
        if (rc)
            goto out;
    }
    rc = uv_timer_init(loop, &a->timer);
    if (rc)
        goto out;
    a->timer.data = a;
    *out = a;
    a = NULL;
out:
    if (a) {
        free_queue(a);
        hr_sha256_free(a->sha);
        free(a);
    }
    free_names(names, n);
    return rc;
}

/* ---- verification --------------------------------------------------------- */

typedef struct verifier {
    hr_sha256 *sha;
    unsigned long long expect; /* seq of the next record */
    char prev[65];             /* hash of the last good record */
    long long records;
    unsigned torn;                    /* lines since the last good record that are not records */
    char torn_at[FILE_NAME_LEN + 32]; /* "file:line" of the first of them */
    char *err;
    size_t cap;
} verifier;

/* Checks one line. 0, HR_EMISMATCH (err set) or -ENOMEM. */
static int check_line(verifier *v, const char *file, long long lineno, const char *p, size_t n)
{
    char where[FILE_NAME_LEN + 32], hash[65], claimed[65];
    snprintf(where, sizeof(where), "%s:%lld", file, lineno);
    json_t *o = n <= LINE_MAX_LEN ? parse_record(p, n) : NULL;
    if (!o) {
        if (n > LINE_MAX_LEN) {
            snprintf(v->err, v->cap, "%s: line longer than %d bytes", where, LINE_MAX_LEN);
            return HR_EMISMATCH;
        }
        if (v->torn++ == 0)
            snprintf(v->torn_at, sizeof(v->torn_at), "%s", where);
        return 0;
    }
    int rc = 0;
    unsigned long long seq = (unsigned long long)json_integer_value(json_object_get(o, "seq"));
    const char *action = json_string_value(json_object_get(o, "action"));
    int restart = action && strcmp(action, "audit-restart") == 0;
    memcpy(claimed, json_string_value(json_object_get(o, "hash")), sizeof(claimed));
    const char *prev = json_string_value(json_object_get(o, "prev"));
    int prev_ok = strcmp(prev, v->prev) == 0;
    json_object_del(o, "hash");
    rc = canon_hash(o, v->sha, hash);
    if (rc)
        goto out;
    int hash_ok = strcmp(hash, claimed) == 0;
    rc = HR_EMISMATCH;
    if (v->torn && !(restart && hash_ok && seq == v->expect && prev_ok))
        snprintf(v->err, v->cap,
                 "%s: not an audit record (edited, or torn by a crash and not followed by an "
                 "audit-restart record continuing the chain)",
                 v->torn_at);
    else if (!hash_ok)
        snprintf(v->err, v->cap, "%s: record %llu: hash does not match its content (edited)", where,
                 seq);
    else if (seq != v->expect)
        snprintf(v->err, v->cap,
                 "%s: record %llu where %llu was expected (records missing, added or reordered)",
                 where, seq, v->expect);
    else if (!prev_ok)
        snprintf(v->err, v->cap, "%s: record %llu: prev is not the hash of record %llu", where, seq,
                 v->expect - 1);
    else
        rc = 0;
    if (rc)
        goto out;
    v->expect++;
    v->records++;
    v->torn = 0;
    memcpy(v->prev, hash, sizeof(v->prev));
out:
    json_decref(o);
    return rc;
}

/* Checks the lines of one file, the last one possibly without '\n'. */
static int check_file(verifier *v, int dfd, const char *name, char *buf, size_t cap)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(v->err, v->cap, "%s: %s", name, strerror(e));
        return -e;
    }
    int rc = 0;
    size_t have = 0;
    long long lineno = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0) {
            rc = -errno;
            snprintf(v->err, v->cap, "%s: %s", name, strerror(-rc));
            break;
        }
        size_t len = have + (size_t)r, pos = 0;
        if (r == 0) {
            if (len > 0)
                rc = check_line(v, name, ++lineno, buf, len);
            break;
        }
        char *nl;
        while (!rc && (nl = memchr(buf + pos, '\n', len - pos)) != NULL) {
            rc = check_line(v, name, ++lineno, buf + pos, (size_t)(nl - (buf + pos)));
            pos = (size_t)(nl - buf) + 1;
        }
        if (rc)
            break;
        have = len - pos;
        memmove(buf, buf + pos, have);
        if (have > LINE_MAX_LEN) {
            snprintf(v->err, v->cap, "%s:%lld: line longer than %d bytes", name, lineno + 1,
                     LINE_MAX_LEN);
            rc = HR_EMISMATCH;
            break;
        }
    }
    close(fd);
    return rc;
}

int sto_audit_verify(const char *data_dir, long long *records, char *err, size_t cap)
{
    char dir[STO_PATH_MAX + 8];
    struct dirent **names = NULL;
    size_t bufcap = LINE_MAX_LEN + 65536;
    char *buf = NULL;
    int n = 0, rc, dfd = -1;
    verifier v = {.expect = 1, .err = err, .cap = cap};
    memcpy(v.prev, ZERO_HASH, sizeof(v.prev));
    *records = 0;
    err[0] = '\0';
    snprintf(dir, sizeof(dir), "%s/audit", data_dir);
    n = scandir(dir, &names, day_filter, alphasort);
    if (n < 0) {
        rc = -errno;
        n = 0;
        snprintf(err, cap, "%s: %s", dir, strerror(-rc));
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    v.sha = hr_sha256_new();
    buf = malloc(bufcap);
    if (dfd < 0 || !v.sha || !buf) {
        rc = dfd < 0 ? -errno : -ENOMEM;
        snprintf(err, cap, "%s: %s", dir, hr_strerror(rc));
        goto out;
    }
    rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = check_file(&v, dfd, names[i]->d_name, buf, bufcap);
    if (rc && !err[0])
        snprintf(err, cap, "%s", hr_strerror(rc));
    if (rc)
        goto out;
    *records = v.records;
    if (v.torn)
        snprintf(err, cap,
                 "note: %s: %u line(s) at the end are not records (torn by a crash; the next "
                 "start records an audit-restart)",
                 v.torn_at, v.torn);
out:
    if (dfd >= 0)
        close(dfd);
    free(buf);
    hr_sha256_free(v.sha);
    free_names(names, n);
    return rc;
}
