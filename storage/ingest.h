/* Streaming ingest of one DICOM object, shared by C-STORE and STOW-RS:
 *   feed(bytes) -> SHA-256 + dataset scan on the loop, bytes buffered and
 *   written to a temp file on the thread pool (two buffers: one filling, one
 *   being written) -> end(): validate -> fdatasync -> rename -> fsync dir ->
 *   index commit -> done callback. Success is reported only after all of it.
 * Memory per ingest: two buffers of STO_INGEST_CHUNK plus one PDU. */
#ifndef STO_INGEST_H
#define STO_INGEST_H

#include "audit.h"
#include "index.h"
#include "objstore.h"
#include "../common/hr_pool.h"
#include "../dicom/dcm_attrs.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define STO_INGEST_CHUNK (256 * 1024)
#define STO_INGEST_SPARE 16 /* buffers kept for reuse; more are freed */
/* durable ingest's own workers in huren serve (decision 0019): as many as
 * libuv's pool had for it, so concurrent fsyncs still group their commits */
#define STO_INGEST_THREADS 16
/* sto_ingest_busy stays true this long after the last object ended */
#define STO_INGEST_BUSY_TAIL_MS 1000

typedef struct sto_ingest_meta sto_ingest_meta;
typedef struct sto_ingest_result sto_ingest_result;

/* Completion of an after-index hook: rc 0 lets the acknowledgement go out;
 * any other value turns the result into STO_ERR_RESOURCES (the sender keeps
 * its copy and retries; the retry is IDENTICAL and runs the hook again). Call
 * it exactly once, on the loop; it may be called before the hook returns. */
typedef void (*sto_hook_done_cb)(void *token, int rc);

/* Runs on the loop after the index commit of every accepted object (STORED,
 * IDENTICAL or NEW_VERSION) and before the done callback, so an
 * acknowledgement also means the hook's work was done (the worklist: cli/
 * wires wl_arrive here; storage knows nothing of it). res is the outcome
 * so far (res->status: a repeat is STO_IDENTICAL; res->patient_conflict).
 * attrs, meta and res are borrowed: valid until done(token, rc) is called. */
typedef void (*sto_ingest_hook)(void *arg, const dcm_attrs *attrs, const sto_ingest_meta *meta,
                                const sto_ingest_result *res, sto_hook_done_cb done, void *token);

/* Shared by every ingest of a server; owned by the caller. */
typedef struct sto_ctx {
    uv_loop_t *loop;
    sto_objstore store;
    sto_index *index;
    sto_redis_addr redis_addr; /* for sto_worker_redis() on the thread pool */
    int redis_timeout_ms;
    sto_audit *audit; /* every read of patient data is recorded here */
    /* durable ingest's own workers (write, fsync, rename, discard): nothing an
     * HTTP client sends queues ahead of them (decision 0019). NULL = libuv's
     * pool (tools, tests); a job it refuses or cancels (closing) runs on
     * libuv's pool instead. Owned by the caller, who sets it to NULL in
     * hr_pool_close's callback */
    hr_pool *pool;
    uint64_t max_object_bytes;
    uint32_t max_feed; /* largest single feed() (max PDU); bounds the buffers */
    /* recycled data buffers (each STO_INGEST_CHUNK + max_feed bytes): a fresh
     * allocation per object costs a page fault per 4 KiB on every object */
    void *spare[STO_INGEST_SPARE];
    int n_spare;
    /* optional hook between the index commit and the acknowledgement; NULL =
     * none. Set before the first ingest; arg must outlive every ingest */
    sto_ingest_hook after_index;
    void *after_index_arg;
    /* counters (read by /metrics later) */
    uint64_t stored, duplicates, failed, bytes;
    uint64_t hook_failures; /* objects refused because the hook failed */
    uint64_t refused;       /* objects refused: the study belongs to another hospital */
    int active;
    /* for other threads (sto_ingest_busy): objects in progress and when the
     * last one ended (uv_hrtime ns); accessed only with __atomic builtins */
    int busy_objects;
    uint64_t busy_ended_ns;
    /* sidecar builds (storage/meta.h) queued after acknowledged objects; each holds
     * only the ctx, so the ctx must outlive them: run the loop until they finish
     * (uv_run(UV_RUN_DEFAULT) does) before sto_ctx_release */
    int meta_jobs;
} sto_ctx;

struct sto_ingest_meta {
    char sop_class[65];    /* declared by the sender (command / part headers) */
    char sop_instance[65]; /* declared SOP Instance UID; the data set must match */
    char ts[65];           /* transfer syntax of the bytes fed */
    char source_ae[17];    /* calling AE, "" for HTTP */
    char hospital[64];     /* source hospital id */
    char study[65];        /* "" or the Study Instance UID the data set must carry */
    int hub_hospital;      /* the sender is the hub's own hospital (dicom.hospital): it may add
                              derived objects to other hospitals' studies (decision 0009) */
};

enum sto_ingest_status {
    STO_STORED,        /* new instance, durable and indexed */
    STO_IDENTICAL,     /* same UID and bytes as stored before: nothing new written */
    STO_NEW_VERSION,   /* same UID, different bytes: both kept, this one indexed */
    STO_ERR_PARSE,     /* data cannot be parsed (truncated, malformed) */
    STO_ERR_MISMATCH,  /* data does not match the declared SOP class/instance, or lacks UIDs */
    STO_ERR_RESOURCES, /* disk, index or size limit: sender should retry later */
    STO_ERR_REFUSED,   /* the study belongs to another hospital (decision 0009): not stored */
};

struct sto_ingest_result {
    enum sto_ingest_status status;
    int rc;                 /* underlying error code for failures */
    int patient_conflict;   /* accepted, but its patient attributes differ from the study's
                               (kept; the study is flagged): a warning for the sender */
    char reason[320];       /* human-readable, for DIMSE Error Comment / JSON */
    char sha[65];           /* object name when stored */
    char owner[64];         /* the study's owning hospital (once admitted) */
    const dcm_attrs *attrs; /* valid only during the callback */
};

typedef struct sto_ingest sto_ingest;

/* Called once from end(); the ingest is freed after it returns. */
typedef void (*sto_ingest_done_cb)(void *arg, const sto_ingest_result *r);
/* Called when a paused ingest (feed returned 1) can take more data. */
typedef void (*sto_ingest_resume_cb)(void *arg);

/* 1 while an object is being ingested or one ended less than
 * STO_INGEST_BUSY_TAIL_MS ago (now_ns: uv_hrtime()). Any thread. */
int sto_ingest_busy(const sto_ctx *ctx, uint64_t now_ns);

/* Frees the recycled buffers (at shutdown, after the last ingest). */
void sto_ctx_release(sto_ctx *ctx);

/* Starts an ingest. meta is copied. 0, HR_EPARSE (invalid UIDs in meta),
 * HR_EUNSUP (transfer syntax) or -ENOMEM. */
int sto_ingest_begin(sto_ctx *ctx, const sto_ingest_meta *meta, sto_ingest_resume_cb resume,
                     void *arg, sto_ingest **out);
/* Feeds dataset bytes (n <= ctx->max_feed). Returns 0, or 1 when the caller
 * should stop reading until the resume callback. Errors in the data are
 * recorded and reported by end(); feed itself never fails. */
int sto_ingest_feed(sto_ingest *ig, const uint8_t *p, size_t n);
/* Declares the end of the object. done runs exactly once, always from a later
 * loop callback (never inside this call). */
void sto_ingest_end(sto_ingest *ig, sto_ingest_done_cb done, void *arg);
/* Abandons the object (association aborted): the temp file is removed, no
 * callback runs, the ingest frees itself. */
void sto_ingest_abort(sto_ingest *ig);

#endif
