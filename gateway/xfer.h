/* Sending one stored object as a C-STORE-RQ (C-MOVE and C-GET
 * sub-operations): the command, then the data set read from the object file
 * (the bytes after its File Meta Information) with uv_fs_read in chunks of
 * about GW_XFER_CHUNK, each written as P-DATA-TF PDUs within the peer's
 * maximum PDU length. Two chunk buffers: one being read while the other is
 * written; the next write waits for the previous one (TCP backpressure), so
 * memory stays 2 x GW_XFER_CHUNK whatever the object size. Optionally the
 * object is first decompressed by DCMTK on the thread pool into a temp file,
 * which is sent and then removed. Internal to gateway/. */
#ifndef GW_XFER_H
#define GW_XFER_H

#include "../dicom/dimse.h"
#include "../storage/objstore.h"

#include <stdint.h>
#include <uv.h>

#define GW_XFER_CHUNK (256 * 1024)

/* rc 0: the whole message was queued and written. Otherwise wrote tells
 * whether any byte of the message reached the stream (then the association
 * cannot carry another message). rc HR_ESTATE after gw_xfer_stop(). */
typedef void (*gw_xfer_done_cb)(void *arg, int rc, int wrote);
/* A chunk was written (progress for timeouts). May be NULL. */
typedef void (*gw_xfer_progress_cb)(void *arg);

typedef struct gw_xfer_chunk {
    uint8_t *data;
    size_t len;
    int state; /* free, reading, ready, writing */
    uint64_t at;
    uv_write_t wr;
    struct gw_xfer *x;
} gw_xfer_chunk;

/* One object at a time; reusable (the buffers are kept between objects). */
typedef struct gw_xfer {
    uv_loop_t *loop;
    uv_stream_t *stream;
    uint32_t room; /* PDV data bytes per PDU */
    uint8_t pc_id;
    dcm_command rq;
    char src[STO_PATH_MAX];
    char tmp[STO_PATH_MAX]; /* decompressed copy, "" when none */
    char tmp_dir[STO_PATH_MAX];
    char target_ts[65]; /* decompress into this syntax, "" = send as stored */
    uv_work_t work;
    uv_fs_t fs;
    uv_file fd;
    int work_rc;
    uint64_t pos, end; /* next file offset to read, end of file */
    gw_xfer_chunk ch[2];
    int next_read, next_write; /* chunk indexes (alternating) */
    uint8_t (*hdrs)[12];       /* per chunk: PDU headers */
    uv_buf_t *bufs;            /* per chunk: header, data, header, data, ... */
    size_t n_pdv;              /* PDUs per chunk capacity */
    size_t chunk_bytes;
    int fs_busy, work_busy, writes, cmd_sent;
    int running, stopping, closing, wrote;
    int rc;
    gw_xfer_done_cb done;
    gw_xfer_progress_cb progress;
    void *arg;
} gw_xfer;

/* Zeroes x; nothing allocated yet. */
void gw_xfer_init(gw_xfer *x, uv_loop_t *loop);
/* Starts sending the object at src as a C-STORE-RQ (rq: command field,
 * message id, classes, move originator) on pc_id of stream. target_ts NULL or
 * "": the stored data set as is; else decompress to it first (Explicit or
 * Implicit VR LE) in tmp_dir. done runs exactly once, from a later loop
 * callback. 0, or HR_ESTATE (already running), -ENOMEM or a libuv error: then
 * done is not called. */
int gw_xfer_start(gw_xfer *x, uv_stream_t *stream, uint32_t peer_max_pdu, uint8_t pc_id,
                  const dcm_command *rq, const char *src, const char *target_ts,
                  const char *tmp_dir, gw_xfer_done_cb done, gw_xfer_progress_cb progress,
                  void *arg);
/* Stops at the next safe point (no new writes); done follows with
 * HR_ESTATE once outstanding I/O has completed. No-op when not running. */
void gw_xfer_stop(gw_xfer *x);
/* 1 while running (done not yet called). */
int gw_xfer_running(const gw_xfer *x);
/* 1 while the thread pool works for it (decompression). */
int gw_xfer_working(const gw_xfer *x);
/* Frees the buffers; x must not be running. */
void gw_xfer_free(gw_xfer *x);

#endif
