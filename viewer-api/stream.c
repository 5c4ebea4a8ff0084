#include "stream.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct piece {
    char *text; /* literal, or NULL for a file range */
    size_t text_len;
    int sealed;   /* a buffer taken whole (va_stream_take): nothing is appended to it */
    char *path;   /* file range: shared with the previous range of the same file */
    int own_path; /* this piece frees path */
    uint64_t offset, length;
} piece;

struct va_stream {
    va_req *r;
    piece *v;
    size_t n, cap;
    uint64_t total;
    /* position (advanced by the pool job while busy, by the loop otherwise) */
    size_t cur;    /* piece being sent */
    uint64_t done; /* bytes of the current piece sent or prepared */
    int fd;        /* open file of fd_path */
    const char *fd_path;
    /* what the last pool job prepared: a mapped window or a batch */
    uv_work_t work;
    void *map;
    size_t map_len;  /* mapped length (page aligned start) */
    size_t map_skip; /* bytes before the wanted offset in the map */
    size_t want;     /* bytes of the window to send */
    uint8_t *batch;  /* VA_STREAM_BATCH bytes, allocated on the pool */
    size_t batch_len;
    int err;
    const char *err_path;
    int busy;    /* a pool job is in flight */
    int stopped; /* MHD is done with the response (sent, or the client went away) */
    /* what MHD copies from next (a literal, the window or the batch) */
    const uint8_t *rd;
    size_t rd_len;
};

static long page_size(void)
{
    static long ps;
    if (!ps)
        ps = sysconf(_SC_PAGESIZE);
    return ps;
}

va_stream *va_stream_new(void)
{
    va_stream *s = calloc(1, sizeof(*s));
    if (s)
        s->fd = -1;
    return s;
}

static piece *add(va_stream *s)
{
    if (s->n == VA_STREAM_MAX_PIECES)
        return NULL;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        piece *nv = realloc(s->v, nc * sizeof(*nv));
        if (!nv)
            return NULL;
        s->v = nv;
        s->cap = nc;
    }
    piece *p = &s->v[s->n++];
    memset(p, 0, sizeof(*p));
    return p;
}

static int add_failed(const va_stream *s)
{
    return s->n == VA_STREAM_MAX_PIECES ? HR_ETOOBIG : -ENOMEM;
}

int va_stream_text(va_stream *s, const char *text, size_t len)
{
    /* consecutive literals are merged */
    if (s->n && s->v[s->n - 1].text && !s->v[s->n - 1].sealed) {
        piece *p = &s->v[s->n - 1];
        char *t = realloc(p->text, p->text_len + len);
        if (!t)
            return -ENOMEM;
        memcpy(t + p->text_len, text, len);
        p->text = t;
        p->text_len += len;
        s->total += len;
        return 0;
    }
    piece *p = add(s);
    if (!p)
        return add_failed(s);
    p->text = malloc(len ? len : 1);
    if (!p->text) {
        s->n--;
        return -ENOMEM;
    }
    memcpy(p->text, text, len);
    p->text_len = len;
    s->total += len;
    return 0;
}

int va_stream_take(va_stream *s, uint8_t *buf, size_t len)
{
    piece *p = add(s);
    if (!p) {
        free(buf);
        return add_failed(s);
    }
    p->text = (char *)buf;
    p->text_len = len;
    p->sealed = 1;
    s->total += len;
    return 0;
}

int va_stream_printf(va_stream *s, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EINVAL;
    return va_stream_text(s, buf, (size_t)n);
}

int va_stream_file(va_stream *s, const char *path, uint64_t offset, uint64_t length)
{
    /* the last range of a file, if the last pieces are that file and texts */
    piece *prev = NULL;
    for (size_t i = s->n; i > 0 && i + 2 > s->n; i--)
        if (!s->v[i - 1].text) {
            prev = &s->v[i - 1];
            break;
        }
    int same = prev && strcmp(prev->path, path) == 0;
    if (same && prev == &s->v[s->n - 1] && prev->offset + prev->length == offset) {
        prev->length += length;
        s->total += length;
        return 0;
    }
    piece *p = add(s);
    if (!p)
        return add_failed(s);
    if (same) {
        p->path = prev->path;
    } else {
        p->path = strdup(path);
        p->own_path = 1;
        if (!p->path) {
            s->n--;
            return -ENOMEM;
        }
    }
    p->offset = offset;
    p->length = length;
    s->total += length;
    return 0;
}

uint64_t va_stream_length(const va_stream *s)
{
    return s->total;
}

static void unmap(va_stream *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    s->map = NULL;
}

void va_stream_free(va_stream *s)
{
    if (!s)
        return;
    unmap(s);
    if (s->fd >= 0)
        close(s->fd);
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].text);
        if (s->v[i].own_path)
            free(s->v[i].path);
    }
    free(s->v);
    free(s->batch);
    free(s);
}

static void finish(va_stream *s)
{
    va_req *r = s->r;
    va_stream_free(s);
    va_req_stream_end(r);
}

/* ---- pool side: only touches the position, fd, map and batch ---- */

/* The file of piece p open on s->fd (kept open for the next range of it). */
static int use_file(va_stream *s, const piece *p)
{
    if (s->fd >= 0 && s->fd_path == p->path)
        return 0;
    if (s->fd >= 0)
        close(s->fd);
    s->fd_path = p->path;
    s->fd = open(p->path, O_RDONLY | O_CLOEXEC);
    return s->fd < 0 ? -errno : 0;
}

/* Moves past n prepared bytes of the current piece. */
static void advance(va_stream *s, uint64_t n)
{
    const piece *p = &s->v[s->cur];
    s->done += n;
    if (s->done == (p->text ? p->text_len : p->length)) {
        s->cur++;
        s->done = 0;
    }
}

/* One window of a large range, mapped with its pages in. */
static int map_window(va_stream *s)
{
    const piece *p = &s->v[s->cur];
    int rc = use_file(s, p);
    if (rc)
        return rc;
    uint64_t off = p->offset + s->done;
    uint64_t aligned = off - off % (uint64_t)page_size();
    uint64_t left = p->length - s->done;
    s->want = left < VA_STREAM_WINDOW ? (size_t)left : VA_STREAM_WINDOW;
    s->map_skip = (size_t)(off - aligned);
    s->map_len = s->map_skip + s->want;
    s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, s->fd, (off_t)aligned);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        return -errno;
    }
    madvise(s->map, s->map_len, MADV_SEQUENTIAL);
    advance(s, s->want);
    return 0;
}

/* Copies consecutive texts and small ranges into the batch buffer, up to its
 * size or the next large range. */
static int fill_batch(va_stream *s)
{
    if (!s->batch) {
        s->batch = malloc(VA_STREAM_BATCH);
        if (!s->batch)
            return -ENOMEM;
    }
    s->batch_len = 0;
    while (s->cur < s->n && s->batch_len < VA_STREAM_BATCH) {
        const piece *p = &s->v[s->cur];
        size_t room = VA_STREAM_BATCH - s->batch_len;
        uint64_t left = (p->text ? p->text_len : p->length) - s->done;
        size_t k = left < room ? (size_t)left : room;
        if (p->text) {
            memcpy(s->batch + s->batch_len, p->text + s->done, k);
        } else {
            if (left >= VA_STREAM_SMALL && s->batch_len)
                break; /* mapped by the next job */
            int rc = use_file(s, p);
            for (size_t got = 0; !rc && got < k;) {
                ssize_t m = pread(s->fd, s->batch + s->batch_len + got, k - got,
                                  (off_t)(p->offset + s->done + got));
                if (m < 0 && errno == EINTR)
                    continue;
                if (m <= 0)
                    rc = m < 0 ? -errno : -EIO; /* shorter than announced */
                else
                    got += (size_t)m;
            }
            if (rc)
                return rc;
        }
        s->batch_len += k;
        advance(s, k);
    }
    return 0;
}

static void job_run(uv_work_t *w)
{
    va_stream *s = w->data;
    const piece *p = &s->v[s->cur];
    s->batch_len = 0;
    s->want = 0;
    s->err_path = p->path;
    if (!p->text && p->length - s->done >= VA_STREAM_SMALL)
        s->err = map_window(s);
    else
        s->err = fill_batch(s);
    if (s->err && s->cur < s->n)
        s->err_path = s->v[s->cur].path;
}

static void job_done(uv_work_t *w, int status)
{
    va_stream *s = w->data;
    s->busy = 0;
    if (s->stopped) {
        finish(s);
        return;
    }
    if (s->err) {
        hr_error("http", "%s: cannot read %s: %s; response cut", s->r->id,
                 s->err_path ? s->err_path : "a file", strerror(-s->err));
    } else if (s->map) {
        s->rd = (const uint8_t *)s->map + s->map_skip;
        s->rd_len = s->want;
    } else {
        s->rd = s->batch;
        s->rd_len = s->batch_len;
    }
    /* MHD calls on_read again: the status line is gone, so an error aborts
     * the response and the client sees an incomplete body, never a
     * silently short one */
    va_req_resume(s->r);
}

static int is_large(const piece *p)
{
    return !p->text && p->length >= VA_STREAM_SMALL;
}

/* MHD's content reader: copies from the prepared buffer (loop thread; the
 * pages were faulted in on the pool); when it is used up, prepares the next
 * on the pool and suspends the connection until then. */
static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    va_stream *s = cls;
    if (s->err)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    while (s->rd_len == 0) {
        if (s->busy) {
            va_req_suspend(s->r);
            return 0;
        }
        unmap(s);
        if (s->cur == s->n)
            return MHD_CONTENT_READER_END_OF_STREAM;
        piece *p = &s->v[s->cur];
        if (p->text && s->done == 0 && (s->cur + 1 == s->n || is_large(&s->v[s->cur + 1]))) {
            /* a literal before a large range (or the end): no pool step */
            s->rd = (const uint8_t *)p->text;
            s->rd_len = p->text_len;
            s->cur++;
            break;
        }
        s->busy = 1;
        s->work.data = s;
        if (uv_queue_work(s->r->srv->loop, &s->work, job_run, job_done) != 0) {
            s->busy = 0;
            s->err = -ENOMEM;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        va_req_suspend(s->r);
        return 0;
    }
    size_t k = s->rd_len < max ? s->rd_len : max;
    memcpy(buf, s->rd, k);
    s->rd += k;
    s->rd_len -= k;
    return (ssize_t)k;
}

/* MHD is done with the response (sent, or the client went away): free once
 * no pool job holds the stream. */
static void on_free(void *cls)
{
    va_stream *s = cls;
    s->stopped = 1;
    if (!s->busy)
        finish(s);
}

void va_stream_start(va_stream *s, va_req *r, int status, const char *content_type)
{
    s->r = r;
    if (va_send_stream(r, status, content_type, s->total, VA_STREAM_BLOCK, on_read, s, on_free) !=
        0) {
        va_stream_free(s);
        va_send_error(r, 500, "internal", "out of memory");
    }
}
