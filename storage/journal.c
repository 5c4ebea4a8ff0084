/* Group-commit journal (decision 0036): one writer thread per journal, one
 * fdatasync per batch. */
#include "journal.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REC_MAGIC  "HRJ1"
#define FILE_MAGIC "HRJOURN1"
#define IOV_BATCH  512

typedef struct jrec {
    struct jrec *next;
    sto_journal_cb cb;
    void *arg;
    int rc;
    sto_journal_pos pos;
    uint32_t type;
    long long ms;
    size_t len;
    uint8_t hdr[STO_JOURNAL_HEADER];
    uint8_t data[];
} jrec;

struct sto_journal {
    uv_loop_t *loop;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    char dir[PATH_MAX];
    char node[48];
    sto_journal_opts o;
    /* shared, under mu */
    jrec *q_head, **q_tail;
    jrec *d_head, **d_tail;
    size_t q_count, q_bytes;
    int stop, exited, hold;
    sto_journal_stats st;
    /* writer thread only (and open, before it starts) */
    int fd;
    int seg_bad;
    char seg[96];
    uint64_t seg_off;
    unsigned seq;
    EVP_MD_CTX *md;
    /* loop only */
    int closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* SHA-256 of hdr[0..24) then data into out. 0 or -ENOMEM. */
static int digest(EVP_MD_CTX *md, const uint8_t *hdr, const uint8_t *data, size_t len,
                  uint8_t out[32])
{
    unsigned int n = 0;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, hdr, 24) != 1 ||
        (len && EVP_DigestUpdate(md, data, len) != 1) || EVP_DigestFinal_ex(md, out, &n) != 1)
        return -ENOMEM;
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* mkdir path (and its parent) when missing, fsyncing the directory above. */
static int make_dir(const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *sl = strrchr(parent, '/');
    if (sl && sl != parent)
        *sl = '\0';
    else
        snprintf(parent, sizeof(parent), "%s", sl ? "/" : ".");
    int rc = 0;
    if (depth > 0)
        rc = make_dir(parent, depth - 1);
    if (rc)
        return rc;
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return -errno;
    return fsync_path(parent);
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Creates a new segment file, writes its header, fsyncs it and the directory. */
static int new_segment(sto_journal *j)
{
    char path[PATH_MAX + 128];
    int fd = -1, rc;
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    long long ms = wall_ms();
    for (int tries = 0;; tries++) {
        snprintf(j->seg, sizeof(j->seg), "%013lld-%s-%06u.jnl", ms, j->node, j->seq++);
        snprintf(path, sizeof(path), "%s/%s", j->dir, j->seg);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0 || errno != EEXIST || tries > 1000)
            break;
    }
    if (fd < 0)
        return -errno;
    uint8_t h[STO_JOURNAL_FILE_HEADER];
    memcpy(h, FILE_MAGIC, 8);
    put64(h + 8, (uint64_t)ms);
    ssize_t w = write(fd, h, sizeof(h));
    rc = w == (ssize_t)sizeof(h) ? 0 : w < 0 ? -errno : -EIO;
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (!rc)
        rc = fsync_path(j->dir);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    j->fd = fd;
    j->seg_off = sizeof(h);
    j->seg_bad = 0;
    uv_mutex_lock(&j->mu);
    j->st.segments++;
    uv_mutex_unlock(&j->mu);
    return 0;
}

/* Writes recs [a, b) (their headers and data) at the end of the segment. */
static int write_run(sto_journal *j, jrec *a, jrec *b)
{
    struct iovec iov[IOV_BATCH];
    while (a != b) {
        int n = 0;
        jrec *r = a;
        for (; r != b && n + 2 <= IOV_BATCH; r = r->next) {
            iov[n++] = (struct iovec){r->hdr, STO_JOURNAL_HEADER};
            if (r->len)
                iov[n++] = (struct iovec){r->data, r->len};
        }
        struct iovec *v = iov;
        while (n > 0) {
            ssize_t w = writev(j->fd, v, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            if (w == 0)
                return -EIO;
            j->seg_off += (uint64_t)w;
            while (n > 0 && (size_t)w >= v->iov_len) {
                w -= (ssize_t)v->iov_len;
                v++;
                n--;
            }
            if (n > 0) {
                v->iov_base = (uint8_t *)v->iov_base + w;
                v->iov_len -= (size_t)w;
            }
        }
        a = r;
    }
    return 0;
}

/* fdatasync of the current segment, counted. */
static int sync_seg(sto_journal *j)
{
    int rc = fdatasync(j->fd) ? -errno : 0;
    uv_mutex_lock(&j->mu);
    j->st.syncs++;
    uv_mutex_unlock(&j->mu);
    return rc;
}

/* Sets rc on recs [a, b). */
static void set_rc(jrec *a, jrec *b, int rc)
{
    for (; a != b; a = a->next)
        a->rc = rc;
}

/* Writes one batch: runs that fit the segment, rolling between them; one
 * fdatasync per run (one per batch unless a roll falls inside it). */
static void write_batch(sto_journal *j, jrec *batch)
{
    int rc = 0;
    jrec *run = batch;
    uint64_t off = 0, bytes = 0, records = 0;
    if (j->fd < 0 || j->seg_bad)
        rc = new_segment(j);
    if (rc) {
        set_rc(batch, NULL, rc);
        return;
    }
    off = j->seg_off;
    for (jrec *r = batch; r; r = r->next) {
        uint8_t *h = r->hdr;
        memcpy(h, REC_MAGIC, 4);
        put32(h + 4, r->type);
        put32(h + 8, (uint32_t)r->len);
        put32(h + 12, 0);
        put64(h + 16, (uint64_t)r->ms);
        if (digest(j->md, h, r->data, r->len, h + 24) != 0) {
            set_rc(run, NULL, -ENOMEM);
            return;
        }
        uint64_t sz = STO_JOURNAL_HEADER + r->len;
        if (off + sz > j->o.segment_max && off > STO_JOURNAL_FILE_HEADER) {
            /* flush what fits, then roll */
            rc = write_run(j, run, r);
            if (!rc && run != r)
                rc = sync_seg(j);
            if (rc) {
                j->seg_bad = 1;
                set_rc(run, NULL, rc);
                return;
            }
            rc = new_segment(j);
            if (rc) {
                set_rc(r, NULL, rc);
                return;
            }
            run = r;
            off = j->seg_off;
        }
        snprintf(r->pos.segment, sizeof(r->pos.segment), "%s", j->seg);
        r->pos.offset = off;
        r->pos.len = (uint32_t)r->len;
        off += sz;
        bytes += sz;
        records++;
    }
    rc = write_run(j, run, NULL);
    if (!rc)
        rc = sync_seg(j);
    if (rc) {
        j->seg_bad = 1; /* a torn or unsynced tail: never written after */
        set_rc(run, NULL, rc);
        hr_log(HR_LOG_ERROR, "journal", "%s/%s: write failed: %s", j->dir, j->seg, hr_strerror(rc));
        return;
    }
    uv_mutex_lock(&j->mu);
    j->st.batches++;
    j->st.records += records;
    j->st.bytes += bytes;
    uv_mutex_unlock(&j->mu);
}

static void writer(void *arg)
{
    sto_journal *j = arg;
    for (;;) {
        uv_mutex_lock(&j->mu);
        while ((!j->q_head || (j->hold && !j->stop)) && !j->stop)
            uv_cond_wait(&j->cond, &j->mu);
        if (!j->q_head && j->stop) {
            j->exited = 1;
            uv_mutex_unlock(&j->mu);
            uv_async_send(&j->async);
            break;
        }
        jrec *batch = j->q_head;
        j->q_head = NULL;
        j->q_tail = &j->q_head;
        j->q_count = 0;
        j->q_bytes = 0;
        uv_mutex_unlock(&j->mu);

        write_batch(j, batch);

        uv_mutex_lock(&j->mu);
        *j->d_tail = batch;
        jrec *last = batch;
        while (last->next)
            last = last->next;
        j->d_tail = &last->next;
        uv_mutex_unlock(&j->mu);
        uv_async_send(&j->async);
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
}

static void on_closed(uv_handle_t *h)
{
    sto_journal *j = h->data;
    void (*closed)(void *) = j->closed;
    void *arg = j->closed_arg;
    uv_mutex_destroy(&j->mu);
    uv_cond_destroy(&j->cond);
    EVP_MD_CTX_free(j->md);
    free(j);
    if (closed)
        closed(arg);
}

static void on_async(uv_async_t *a)
{
    sto_journal *j = a->data;
    uv_mutex_lock(&j->mu);
    jrec *done = j->d_head;
    j->d_head = NULL;
    j->d_tail = &j->d_head;
    int exited = j->exited;
    uv_mutex_unlock(&j->mu);
    while (done) {
        jrec *nx = done->next;
        done->cb(done->arg, done->rc, done->rc ? NULL : &done->pos);
        free(done);
        done = nx;
    }
    if (exited && j->closing == 1) {
        j->closing = 2;
        uv_thread_join(&j->thread);
        uv_close((uv_handle_t *)&j->async, on_closed);
    }
}

static int node_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 40)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int sto_journal_open_opts(uv_loop_t *loop, const char *dir, const char *node,
                          const sto_journal_opts *o, sto_journal **out)
{
    int rc;
    *out = NULL;
    if (!dir || !*dir || strlen(dir) >= PATH_MAX - 128 || !node || !node_ok(node))
        return -EINVAL;
    sto_journal *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->loop = loop;
    j->fd = -1;
    snprintf(j->dir, sizeof(j->dir), "%s", dir);
    snprintf(j->node, sizeof(j->node), "%s", node);
    if (o)
        j->o = *o;
    if (!j->o.segment_max)
        j->o.segment_max = STO_JOURNAL_SEGMENT_MAX;
    if (!j->o.queue_bytes)
        j->o.queue_bytes = STO_JOURNAL_QUEUE_BYTES;
    if (!j->o.queue_count)
        j->o.queue_count = STO_JOURNAL_QUEUE_COUNT;
    j->q_tail = &j->q_head;
    j->d_tail = &j->d_head;
    j->md = EVP_MD_CTX_new();
    if (!j->md) {
        free(j);
        return -ENOMEM;
    }
    if (uv_mutex_init(&j->mu) != 0) {
        EVP_MD_CTX_free(j->md);
        free(j);
        return -ENOMEM;
    }
    if (uv_cond_init(&j->cond) != 0) {
        rc = -ENOMEM;
        goto out_mu;
    }
    rc = make_dir(j->dir, 1);
    if (!rc)
        rc = new_segment(j);
    if (rc)
        goto out_cond;
    rc = uv_async_init(loop, &j->async, on_async);
    if (rc)
        goto out_fd;
    j->async.data = j;
    rc = uv_thread_create(&j->thread, writer, j);
    if (rc) {
        /* the handle is closed through the loop; free then */
        j->closing = 2;
        uv_close((uv_handle_t *)&j->async, on_closed);
        close(j->fd);
        return rc;
    }
    *out = j;
    return 0;
out_fd:
    close(j->fd);
out_cond:
    uv_cond_destroy(&j->cond);
out_mu:
    uv_mutex_destroy(&j->mu);
    EVP_MD_CTX_free(j->md);
    free(j);
    return rc;
}

int sto_journal_open(uv_loop_t *loop, const char *dir, const char *node, sto_journal **out)
{
    return sto_journal_open_opts(loop, dir, node, NULL, out);
}

int sto_journal_append(sto_journal *j, uint32_t type, const uint8_t *data, size_t len,
                       long long now_ms, sto_journal_cb cb, void *arg)
{
    if (!cb || (len && !data))
        return -EINVAL;
    if (len > STO_JOURNAL_RECORD_MAX)
        return HR_ETOOBIG;
    if (j->closing)
        return HR_ESTATE;
    uv_mutex_lock(&j->mu);
    int full =
        j->q_head && (j->q_count + 1 > j->o.queue_count || j->q_bytes + len > j->o.queue_bytes);
    uv_mutex_unlock(&j->mu);
    if (full)
        return -EAGAIN;
    jrec *r = malloc(sizeof(*r) + len);
    if (!r)
        return -ENOMEM;
    memset(r, 0, sizeof(*r));
    r->cb = cb;
    r->arg = arg;
    r->type = type;
    r->ms = now_ms;
    r->len = len;
    if (len)
        memcpy(r->data, data, len);
    uv_mutex_lock(&j->mu);
    *j->q_tail = r;
    j->q_tail = &r->next;
    j->q_count++;
    j->q_bytes += len;
    uv_cond_signal(&j->cond);
    uv_mutex_unlock(&j->mu);
    return 0;
}

void sto_journal_stats_get(sto_journal *j, sto_journal_stats *st)
{
    uv_mutex_lock(&j->mu);
    *st = j->st;
    st->queued = j->q_count;
    uv_mutex_unlock(&j->mu);
}

void sto_journal_hold(sto_journal *j, int on)
{
    uv_mutex_lock(&j->mu);
    j->hold = on;
    uv_cond_signal(&j->cond);
    uv_mutex_unlock(&j->mu);
}

void sto_journal_close(sto_journal *j, void (*closed)(void *arg), void *arg)
{
    if (j->closing)
        return;
    j->closing = 1;
    j->closed = closed;
    j->closed_arg = arg;
    uv_mutex_lock(&j->mu);
    j->stop = 1;
    uv_cond_signal(&j->cond);
    uv_mutex_unlock(&j->mu);
}

/* ---- reading ---- */

static int seg_name_ok(const char *s)
{
    size_t n = strnlen(s, 96);
    return n > 4 && n < 96 && !strchr(s, '/') && s[0] != '.' && strcmp(s + n - 4, ".jnl") == 0;
}

/* Reads exactly n bytes at off (pread). 0, HR_ETRUNC (end of file first), -errno. */
static int read_at(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return HR_ETRUNC;
        got += (size_t)r;
    }
    return 0;
}

/* Reads and verifies the record at off: header into h, data into *buf (grown
 * as needed, *cap its size). 0, HR_ETRUNC (torn), HR_EPARSE / HR_EDIGEST
 * (corrupt), -errno, -ENOMEM. */
static int read_record(int fd, EVP_MD_CTX *md, uint64_t off, uint8_t h[STO_JOURNAL_HEADER],
                       uint8_t **buf, size_t *cap)
{
    int rc = read_at(fd, h, STO_JOURNAL_HEADER, off);
    if (rc)
        return rc;
    if (memcmp(h, REC_MAGIC, 4) != 0 || get32(h + 12) != 0)
        return HR_EPARSE;
    uint32_t len = get32(h + 8);
    if (len > STO_JOURNAL_RECORD_MAX)
        return HR_EPARSE;
    if (len + 1 > *cap) {
        uint8_t *nb = realloc(*buf, len + 1);
        if (!nb)
            return -ENOMEM;
        *buf = nb;
        *cap = len + 1;
    }
    rc = read_at(fd, *buf, len, off + STO_JOURNAL_HEADER);
    if (rc)
        return rc;
    uint8_t d[32];
    rc = digest(md, h, *buf, len, d);
    if (rc)
        return rc;
    return memcmp(d, h + 24, 32) == 0 ? 0 : HR_EDIGEST;
}

int sto_journal_read(const char *dir, const sto_journal_pos *pos, uint8_t **data, size_t *len)
{
    char path[PATH_MAX + 128];
    uint8_t h[STO_JOURNAL_HEADER];
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc, fd = -1;
    EVP_MD_CTX *md = NULL;
    *data = NULL;
    *len = 0;
    if (!seg_name_ok(pos->segment) || pos->offset < STO_JOURNAL_FILE_HEADER ||
        pos->len > STO_JOURNAL_RECORD_MAX)
        return -EINVAL;
    snprintf(path, sizeof(path), "%s/%s", dir, pos->segment);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? HR_ENOTFOUND : -errno;
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md) {
        rc = -ENOMEM;
        goto out;
    }
    rc = read_record(fd, md, pos->offset, h, &buf, &cap);
    if (rc == HR_ETRUNC)
        rc = HR_EPARSE;
    if (!rc && get32(h + 8) != pos->len)
        rc = HR_EPARSE;
    if (rc)
        goto out;
    *data = buf;
    *len = pos->len;
    buf = NULL;
out:
    free(buf);
    EVP_MD_CTX_free(md);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Scans one segment file. */
static int scan_segment(const char *dir, const char *name, EVP_MD_CTX *md, uint8_t **buf,
                        size_t *cap,
                        int (*cb)(void *, uint32_t, const uint8_t *, size_t, long long,
                                  const sto_journal_pos *),
                        void *arg, int *torn)
{
    char path[PATH_MAX + 128];
    uint8_t fh[STO_JOURNAL_FILE_HEADER], h[STO_JOURNAL_HEADER];
    int rc;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = read_at(fd, fh, sizeof(fh), 0);
    if (rc == HR_ETRUNC || (!rc && memcmp(fh, FILE_MAGIC, 8) != 0)) {
        hr_log(HR_LOG_WARN, "journal", "%s: no valid segment header, skipped", path);
        (*torn)++;
        rc = 0;
        goto out;
    }
    uint64_t off = STO_JOURNAL_FILE_HEADER;
    for (;;) {
        rc = read_record(fd, md, off, h, buf, cap);
        if (rc == HR_ETRUNC) {
            uint8_t one;
            if (read_at(fd, &one, 1, off) == HR_ETRUNC) { /* clean end */
                rc = 0;
                break;
            }
        }
        if (rc == HR_ETRUNC || rc == HR_EPARSE || rc == HR_EDIGEST) {
            hr_log(HR_LOG_WARN, "journal", "%s: %s record at offset %llu: the rest is ignored",
                   path, rc == HR_ETRUNC ? "torn" : "corrupt", (unsigned long long)off);
            (*torn)++;
            rc = 0;
            break;
        }
        if (rc)
            break;
        sto_journal_pos pos;
        snprintf(pos.segment, sizeof(pos.segment), "%s", name);
        pos.offset = off;
        pos.len = get32(h + 8);
        rc = cb(arg, get32(h + 4), *buf, pos.len, (long long)get64(h + 16), &pos);
        if (rc)
            break;
        off += STO_JOURNAL_HEADER + pos.len;
    }
out:
    close(fd);
    return rc;
}

int sto_journal_scan(const char *dir,
                     int (*cb)(void *arg, uint32_t type, const uint8_t *data, size_t len,
                               long long ms, const sto_journal_pos *pos),
                     void *arg, int *torn)
{
    int rc = 0, torn_ = 0;
    char **names = NULL;
    size_t n = 0, alloc = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    EVP_MD_CTX *md = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        rc = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!seg_name_ok(de->d_name))
            continue;
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 16;
            char **nn = realloc(names, na * sizeof(*nn));
            if (!nn) {
                rc = -ENOMEM;
                goto out;
            }
            names = nn;
            alloc = na;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            rc = -ENOMEM;
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    md = EVP_MD_CTX_new();
    if (!md) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = scan_segment(dir, names[i], md, &buf, &cap, cb, arg, &torn_);
out:
    if (torn)
        *torn = torn_;
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(buf);
    EVP_MD_CTX_free(md);
    return rc;
}
