#include "xfer.h"
#include "assoc.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/dcmtk_shim.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CH_FREE, CH_READING, CH_READY, CH_WRITING };

#define P10_HEAD 144 /* preamble, "DICM", (0002,0000) UL group length */

static void pump(gw_xfer *x);

void gw_xfer_init(gw_xfer *x, uv_loop_t *loop)
{
    memset(x, 0, sizeof(*x));
    x->loop = loop;
    x->fd = -1;
    x->work.data = x->fs.data = x;
    x->ch[0].x = x->ch[1].x = x;
}

void gw_xfer_free(gw_xfer *x)
{
    free(x->ch[0].data);
    free(x->ch[1].data);
    free(x->hdrs);
    free(x->bufs);
    x->ch[0].data = x->ch[1].data = NULL;
    x->hdrs = NULL;
    x->bufs = NULL;
    x->chunk_bytes = x->n_pdv = 0;
}

int gw_xfer_running(const gw_xfer *x)
{
    return x->running;
}

int gw_xfer_working(const gw_xfer *x)
{
    return x->work_busy;
}

/* Buffers for chunks of n_pdv PDUs of room bytes. */
static int reserve(gw_xfer *x, uint32_t room)
{
    size_t n_pdv = GW_XFER_CHUNK / room ? GW_XFER_CHUNK / room : 1;
    size_t bytes = n_pdv * room;
    if (bytes > x->chunk_bytes || n_pdv > x->n_pdv) {
        gw_xfer_free(x);
        x->ch[0].data = malloc(bytes);
        x->ch[1].data = malloc(bytes);
        x->hdrs = malloc(2 * n_pdv * sizeof(*x->hdrs));
        x->bufs = malloc(2 * 2 * n_pdv * sizeof(*x->bufs));
        if (!x->ch[0].data || !x->ch[1].data || !x->hdrs || !x->bufs) {
            gw_xfer_free(x);
            return -ENOMEM;
        }
        x->n_pdv = n_pdv;
    }
    x->chunk_bytes = n_pdv * room;
    return 0;
}

/* ---- completion: close the file, remove the temp copy, report ---- */

static void complete(gw_xfer *x)
{
    int rc = x->rc;
    if (!rc && x->stopping)
        rc = HR_ESTATE;
    int wrote = x->wrote;
    x->running = x->closing = x->stopping = 0;
    x->done(x->arg, rc, wrote);
}

static void on_unlinked(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    uv_fs_req_cleanup(req);
    x->tmp[0] = '\0';
    complete(x);
}

static void remove_tmp(gw_xfer *x)
{
    if (x->tmp[0] && uv_fs_unlink(x->loop, &x->fs, x->tmp, on_unlinked) == 0)
        return;
    x->tmp[0] = '\0';
    complete(x);
}

static void on_file_closed(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    uv_fs_req_cleanup(req);
    x->fd = -1;
    remove_tmp(x);
}

static void finish(gw_xfer *x)
{
    x->closing = 1;
    if (x->fd >= 0 && uv_fs_close(x->loop, &x->fs, x->fd, on_file_closed) == 0)
        return;
    x->fd = -1;
    remove_tmp(x);
}

static void fail(gw_xfer *x, int rc)
{
    if (!x->rc)
        x->rc = rc;
    pump(x);
}

/* ---- data ---- */

static void on_chunk_written(uv_write_t *req, int status)
{
    gw_xfer_chunk *c = req->data;
    gw_xfer *x = c->x;
    x->writes--;
    c->state = CH_FREE;
    if (status < 0 && !x->rc)
        x->rc = status;
    else if (x->progress)
        x->progress(x->arg);
    pump(x);
}

static void write_chunk(gw_xfer *x, int i)
{
    gw_xfer_chunk *c = &x->ch[i];
    uint8_t(*hdrs)[12] = x->hdrs + (size_t)i * x->n_pdv;
    uv_buf_t *bufs = x->bufs + (size_t)i * 2 * x->n_pdv;
    unsigned nb = 0;
    size_t off = 0, k = 0;
    while (off < c->len) {
        uint32_t len = c->len - off > x->room ? x->room : (uint32_t)(c->len - off);
        dcm_pdata_header(hdrs[k], x->pc_id, 0, c->at + off + len == x->end, len);
        bufs[nb++] = uv_buf_init((char *)hdrs[k], 12);
        bufs[nb++] = uv_buf_init((char *)c->data + off, len);
        off += len;
        k++;
    }
    c->wr.data = c;
    c->state = CH_WRITING;
    x->writes++;
    int rc = uv_write(&c->wr, x->stream, bufs, nb, on_chunk_written);
    if (rc) {
        x->writes--;
        c->state = CH_FREE;
        if (!x->rc)
            x->rc = rc;
    }
}

static void on_chunk_read(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    gw_xfer_chunk *c = x->ch[0].state == CH_READING ? &x->ch[0] : &x->ch[1];
    ssize_t n = req->result;
    size_t want = c->len;
    uv_fs_req_cleanup(req);
    x->fs_busy = 0;
    if (n < 0 || (size_t)n != want) {
        c->state = CH_FREE;
        fail(x, n < 0 ? (int)n : HR_ETRUNC); /* the file changed under us */
        return;
    }
    c->state = CH_READY;
    pump(x);
}

/* Starts what can start: the next read, the next write; finishes when all is
 * written, or once nothing is outstanding after an error or a stop. */
static void pump(gw_xfer *x)
{
    if (x->closing)
        return;
    if (x->rc || x->stopping) {
        if (!x->fs_busy && !x->writes && !x->work_busy)
            finish(x);
        return;
    }
    gw_xfer_chunk *r = &x->ch[x->next_read];
    if (!x->fs_busy && x->pos < x->end && r->state == CH_FREE) {
        uint64_t left = x->end - x->pos;
        r->len = left < x->chunk_bytes ? (size_t)left : x->chunk_bytes;
        r->at = x->pos;
        r->state = CH_READING;
        uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)r->len);
        int rc = uv_fs_read(x->loop, &x->fs, x->fd, &b, 1, (int64_t)x->pos, on_chunk_read);
        if (rc) {
            r->state = CH_FREE;
            fail(x, rc);
            return;
        }
        x->fs_busy = 1;
        x->pos += r->len;
        x->next_read ^= 1;
    }
    gw_xfer_chunk *w = &x->ch[x->next_write];
    if (w->state == CH_READY && x->ch[x->next_write ^ 1].state != CH_WRITING) {
        write_chunk(x, x->next_write);
        x->next_write ^= 1;
        if (x->rc) {
            pump(x);
            return;
        }
    }
    if (x->pos == x->end && !x->fs_busy && !x->writes && x->ch[0].state == CH_FREE &&
        x->ch[1].state == CH_FREE)
        finish(x);
}

static void on_cmd_written(void *arg, int status)
{
    gw_xfer *x = arg;
    x->writes--;
    if (status < 0 && !x->rc)
        x->rc = status;
    pump(x);
}

static void on_stat(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    int rc = (int)req->result;
    uint64_t size = req->statbuf.st_size;
    uv_fs_req_cleanup(req);
    x->fs_busy = 0;
    if (rc < 0) {
        fail(x, rc);
        return;
    }
    if (x->stopping) {
        pump(x);
        return;
    }
    x->end = size;
    if (x->pos >= x->end) {
        fail(x, HR_EPARSE); /* no data set */
        return;
    }
    hr_buf b;
    hr_buf_init(&b, DCM_CMD_MAX_LEN + 1024);
    rc = gw__encode_message(&b, x->room + 6, x->pc_id, &x->rq, NULL, 0);
    if (!rc)
        rc = gw__write_copy(x->stream, b.data, b.len, on_cmd_written, x);
    hr_buf_free(&b);
    if (rc) {
        fail(x, rc);
        return;
    }
    x->writes++;
    x->wrote = 1;
    pump(x);
}

static void on_head(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    ssize_t n = req->result;
    const uint8_t *p = x->ch[0].data;
    uv_fs_req_cleanup(req);
    x->fs_busy = 0;
    if (n < 0) {
        fail(x, (int)n);
        return;
    }
    if (n != P10_HEAD || memcmp(p + 128, "DICM", 4) != 0 ||
        memcmp(p + 132, "\x02\x00\x00\x00UL\x04\x00", 8) != 0) {
        fail(x, HR_EPARSE);
        return;
    }
    uint32_t glen = hr_rd32(p + 140, 0);
    x->pos = P10_HEAD + (uint64_t)glen;
    if (x->stopping) {
        pump(x);
        return;
    }
    int rc = uv_fs_fstat(x->loop, &x->fs, x->fd, on_stat);
    if (rc) {
        fail(x, rc);
        return;
    }
    x->fs_busy = 1;
}

static void on_open(uv_fs_t *req)
{
    gw_xfer *x = req->data;
    int fd = (int)req->result;
    uv_fs_req_cleanup(req);
    x->fs_busy = 0;
    if (fd < 0) {
        fail(x, fd);
        return;
    }
    x->fd = fd;
    if (x->stopping) {
        pump(x);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)x->ch[0].data, P10_HEAD);
    int rc = uv_fs_read(x->loop, &x->fs, x->fd, &b, 1, 0, on_head);
    if (rc) {
        fail(x, rc);
        return;
    }
    x->fs_busy = 1;
}

static void open_file(gw_xfer *x, const char *path)
{
    int rc = uv_fs_open(x->loop, &x->fs, path, O_RDONLY | O_CLOEXEC, 0, on_open);
    if (rc) {
        fail(x, rc);
        return;
    }
    x->fs_busy = 1;
}

/* ---- decompression on the thread pool ---- */

static void decompress_work(uv_work_t *w)
{
    gw_xfer *x = w->data;
    snprintf(x->tmp, sizeof(x->tmp), "%s/xfer-XXXXXX", x->tmp_dir);
    int fd = mkstemp(x->tmp);
    if (fd < 0) {
        x->work_rc = -errno;
        x->tmp[0] = '\0';
        return;
    }
    close(fd);
    x->work_rc = dcm_shim_decompress(x->src, x->tmp, x->target_ts);
    if (x->work_rc) {
        unlink(x->tmp);
        x->tmp[0] = '\0';
    }
}

static void decompress_done(uv_work_t *w, int status)
{
    gw_xfer *x = w->data;
    x->work_busy = 0;
    if (status < 0) {
        fail(x, status); /* cancelled before it ran */
        return;
    }
    if (x->work_rc) {
        fail(x, x->work_rc);
        return;
    }
    if (x->stopping) {
        pump(x);
        return;
    }
    open_file(x, x->tmp);
}

int gw_xfer_start(gw_xfer *x, uv_stream_t *stream, uint32_t peer_max_pdu, uint8_t pc_id,
                  const dcm_command *rq, const char *src, const char *target_ts,
                  const char *tmp_dir, gw_xfer_done_cb done, gw_xfer_progress_cb progress,
                  void *arg)
{
    if (x->running)
        return HR_ESTATE;
    x->room = gw__pdv_room(peer_max_pdu);
    int rc = reserve(x, x->room);
    if (rc)
        return rc;
    x->stream = stream;
    x->pc_id = pc_id;
    x->rq = *rq;
    snprintf(x->src, sizeof(x->src), "%s", src);
    snprintf(x->target_ts, sizeof(x->target_ts), "%s", target_ts ? target_ts : "");
    snprintf(x->tmp_dir, sizeof(x->tmp_dir), "%s", tmp_dir ? tmp_dir : "/tmp");
    x->tmp[0] = '\0';
    x->fd = -1;
    x->pos = x->end = 0;
    x->next_read = x->next_write = 0;
    x->ch[0].state = x->ch[1].state = CH_FREE;
    x->fs_busy = x->work_busy = x->writes = 0;
    x->stopping = x->closing = x->wrote = x->rc = 0;
    x->done = done;
    x->progress = progress;
    x->arg = arg;
    x->running = 1;
    if (x->target_ts[0]) {
        x->work_busy = 1;
        rc = uv_queue_work(x->loop, &x->work, decompress_work, decompress_done);
        if (rc) {
            x->work_busy = 0;
            x->running = 0;
            return rc;
        }
        return 0;
    }
    rc = uv_fs_open(x->loop, &x->fs, x->src, O_RDONLY | O_CLOEXEC, 0, on_open);
    if (rc) {
        x->running = 0;
        return rc;
    }
    x->fs_busy = 1;
    return 0;
}

void gw_xfer_stop(gw_xfer *x)
{
    if (!x->running || x->closing || x->stopping)
        return;
    x->stopping = 1;
    if (x->work_busy)
        uv_cancel((uv_req_t *)&x->work); /* fails harmlessly once it runs */
    /* something is always outstanding while running (a file operation, the
     * decompression or a write): its callback finishes */
}
