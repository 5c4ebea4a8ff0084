#include "ingest.h"
#include "../common/hr_assert.h"
#include "../common/hr_buf.h"
#include "../common/hr_err.h"
#include "../common/hr_io.h"
#include "../common/hr_hash.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "meta.h"
#include "../dicom/p10.h"
#include "../dicom/scanner.h"
#include "../dicom/uids.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

enum job_kind { JOB_WRITE, JOB_COMMIT, JOB_DISCARD };

struct sto_ingest {
    sto_ctx *ctx;
    sto_ingest_meta meta;
    long long received_ms;
    sto_ingest_resume_cb resume;
    void *resume_arg;
    sto_ingest_done_cb done;
    void *done_arg;

    hr_sha256 *sha;
    dcm_scanner *scan;
    dcm_attrs attrs;
    uint64_t dataset_bytes;
    uint64_t meta_bytes;

    hr_buf bufs[2];
    int filling; /* index of the buffer being filled */

    /* thread-pool job (ctx->pool, else libuv's); one in flight at a time */
    hr_pool_job pjob;
    uv_work_t work;
    int in_flight;
    enum job_kind job;
    hr_buf *job_buf;
    int job_rc;
    int fd;
    uint64_t written; /* bytes written to the temp file (pool side) */
    char tmp_path[STO_PATH_MAX];
    uint64_t file_bytes;

    int paused;
    int in_hook; /* the after-index hook runs: done() is due */
    int ended;
    int aborted;
    int data_error; /* sticky failure found while feeding */
    enum sto_ingest_status fail_status;
    char fail_reason[320];
    sto_ingest_result result;
};

static void set_failure(sto_ingest *ig, enum sto_ingest_status st, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_failure(sto_ingest *ig, enum sto_ingest_status st, int rc, const char *fmt, ...)
{
    if (ig->data_error)
        return;
    ig->data_error = rc ? rc : HR_EPARSE;
    ig->fail_status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ig->fail_reason, sizeof(ig->fail_reason), fmt, ap);
    va_end(ap);
}

static size_t buf_cap(const sto_ctx *ctx)
{
    return STO_INGEST_CHUNK + ctx->max_feed + 4096;
}

/* A buffer of the full capacity, recycled when possible; never grows. */
static int buf_take(sto_ctx *ctx, hr_buf *b)
{
    hr_buf_init(b, buf_cap(ctx));
    b->data = ctx->n_spare ? ctx->spare[--ctx->n_spare] : malloc(b->cap);
    if (!b->data)
        return -ENOMEM;
    b->alloc = b->cap;
    return 0;
}

static void buf_give(sto_ctx *ctx, hr_buf *b)
{
    if (b->data && b->alloc == buf_cap(ctx) && ctx->n_spare < STO_INGEST_SPARE)
        ctx->spare[ctx->n_spare++] = b->data;
    else
        free(b->data);
    b->data = NULL;
}

void sto_ctx_release(sto_ctx *ctx)
{
    while (ctx->n_spare)
        free(ctx->spare[--ctx->n_spare]);
}

int sto_ingest_busy(const sto_ctx *ctx, uint64_t now_ns)
{
    if (__atomic_load_n(&ctx->busy_objects, __ATOMIC_RELAXED) > 0)
        return 1;
    uint64_t ended = __atomic_load_n(&ctx->busy_ended_ns, __ATOMIC_RELAXED);
    return ended && now_ns - ended < (uint64_t)STO_INGEST_BUSY_TAIL_MS * 1000000u;
}

static void ingest_free(sto_ingest *ig)
{
    ig->ctx->active--;
    __atomic_store_n(&ig->ctx->busy_ended_ns, uv_hrtime(), __ATOMIC_RELAXED);
    __atomic_sub_fetch(&ig->ctx->busy_objects, 1, __ATOMIC_RELAXED);
    buf_give(ig->ctx, &ig->bufs[0]);
    buf_give(ig->ctx, &ig->bufs[1]);
    hr_sha256_free(ig->sha);
    dcm_scanner_free(ig->scan);
    free(ig);
}

/* ---- thread pool side: only touches fd, tmp_path, job_* ---- */

static void job_run(sto_ingest *ig)
{
    const sto_objstore *st = &ig->ctx->store;
    int rc = 0;
    if (ig->job == JOB_DISCARD) {
        if (ig->fd >= 0 || ig->tmp_path[0])
            sto_objstore_discard(ig->fd, ig->tmp_path);
        ig->fd = -1;
        ig->job_rc = 0;
        return;
    }
    if (ig->fd < 0) {
        ig->fd = sto_objstore_tmp_create(st, ig->tmp_path);
        if (ig->fd < 0) {
            rc = ig->fd;
            ig->tmp_path[0] = '\0';
            goto out;
        }
    }
    if (ig->job_buf && ig->job_buf->len) {
        rc = hr_write_all(ig->fd, ig->job_buf->data, ig->job_buf->len);
        if (rc)
            goto out;
        /* start writeback now, while the next chunk is being received, so
         * the fdatasync at the end has little left to flush (advisory) */
        if (ig->job == JOB_WRITE)
            sync_file_range(ig->fd, (off_t)ig->written, (off_t)ig->job_buf->len,
                            SYNC_FILE_RANGE_WRITE);
        ig->written += ig->job_buf->len;
    }
    if (ig->job == JOB_COMMIT) {
        rc = sto_objstore_commit(st, ig->fd, ig->tmp_path, ig->result.sha, NULL);
        ig->fd = -1;
    }
out:
    if (rc && ig->fd >= 0) {
        sto_objstore_discard(ig->fd, ig->tmp_path);
        ig->fd = -1;
    }
    ig->job_rc = rc;
}

static void uv_job_run(uv_work_t *w)
{
    job_run(w->data);
}

static void pool_job_run(hr_pool_job *j)
{
    job_run(j->data);
}

/* ---- loop side ---- */

static void job_done(sto_ingest *ig);

static void uv_job_done(uv_work_t *w, int status)
{
    job_done(w->data);
}

static void queue_on_libuv(sto_ingest *ig)
{
    ig->work.data = ig;
    HR_ASSERT(uv_queue_work(ig->ctx->loop, &ig->work, uv_job_run, uv_job_done) == 0);
}

static void pool_job_done(hr_pool_job *j, int status)
{
    sto_ingest *ig = j->data;
    if (status == -ECANCELED) {
        queue_on_libuv(ig); /* the pool closed before the job ran: run it there */
        return;
    }
    job_done(ig);
}

static void submit(sto_ingest *ig, enum job_kind kind, hr_buf *buf)
{
    HR_ASSERT(!ig->in_flight);
    ig->in_flight = 1;
    ig->job = kind;
    ig->job_buf = buf;
    ig->pjob.data = ig;
    /* the ingest pool is bounded far above the one job per object in
     * progress; refused (closing) means libuv's pool */
    if (ig->ctx->pool && hr_pool_submit(ig->ctx->pool, &ig->pjob, pool_job_run, pool_job_done) == 0)
        return;
    queue_on_libuv(ig);
}

static void finish(sto_ingest *ig)
{
    if (ig->result.status == STO_ERR_REFUSED)
        ig->ctx->refused++;
    else if (ig->result.status != STO_STORED && ig->result.status != STO_IDENTICAL &&
             ig->result.status != STO_NEW_VERSION)
        ig->ctx->failed++;
    ig->result.attrs = &ig->attrs;
    ig->done(ig->done_arg, &ig->result);
    ingest_free(ig);
}

static void fail_and_discard(sto_ingest *ig)
{
    ig->result.status = ig->fail_status;
    ig->result.rc = ig->data_error;
    snprintf(ig->result.reason, sizeof(ig->result.reason), "%s", ig->fail_reason);
    /* always through the pool, even with no temp file: done() must never run
     * inside the caller's end() (the caller may be mid-PDU) */
    submit(ig, JOB_DISCARD, NULL);
}

/* WADO-RS sidecars of an acknowledged object, built on the pool off the latency path of
 * the acknowledgement; failures are only logged (readers rebuild them lazily). The job
 * copies the sha: the ingest is freed after its done callback. */
typedef struct meta_job {
    uv_work_t work;
    sto_ctx *ctx;
    int rc;
    char sha[65];
} meta_job;

static void meta_run(uv_work_t *w)
{
    meta_job *j = w->data;
    j->rc = sto_meta_ensure(&j->ctx->store, j->sha, NULL);
}

static void meta_done(uv_work_t *w, int status)
{
    meta_job *j = w->data;
    j->ctx->meta_jobs--;
    if (j->rc)
        hr_warn("ingest", "%s: WADO-RS sidecars not built: %s", j->sha, hr_strerror(j->rc));
    free(j);
}

static void queue_meta(sto_ctx *ctx, const char *sha)
{
    meta_job *j = calloc(1, sizeof(*j));
    if (!j) {
        hr_warn("ingest", "%s: WADO-RS sidecars not built: out of memory", sha);
        return;
    }
    j->ctx = ctx;
    snprintf(j->sha, sizeof(j->sha), "%s", sha);
    j->work.data = j;
    if (uv_queue_work(ctx->loop, &j->work, meta_run, meta_done)) {
        hr_warn("ingest", "%s: WADO-RS sidecars not built: cannot queue", sha);
        free(j);
        return;
    }
    ctx->meta_jobs++;
}

/* Counters of an accepted object, once it is acknowledged. */
static void count_accepted(sto_ingest *ig)
{
    if (ig->result.status == STO_IDENTICAL) {
        ig->ctx->duplicates++;
    } else {
        ig->ctx->stored++;
        ig->ctx->bytes += ig->file_bytes;
    }
}

static void on_hook_done(void *token, int rc)
{
    sto_ingest *ig = token;
    HR_ASSERT(ig->in_hook);
    ig->in_hook = 0;
    if (rc) {
        /* durable and indexed but not acknowledged: the retry (same bytes) is
         * IDENTICAL and runs the hook again */
        ig->ctx->hook_failures++;
        ig->result.status = STO_ERR_RESOURCES;
        ig->result.rc = rc;
        snprintf(ig->result.reason, sizeof(ig->result.reason), "worklist unavailable: %s",
                 hr_strerror(rc));
    } else {
        count_accepted(ig);
    }
    finish(ig);
}

static void on_indexed(void *arg, int rc, const sto_index_result *res)
{
    sto_ingest *ig = arg;
    if (rc == HR_EFORBIDDEN) {
        /* admitted a moment ago: only a concurrent owner change gets here */
        ig->result.status = STO_ERR_REFUSED;
        ig->result.rc = rc;
        snprintf(ig->result.reason, sizeof(ig->result.reason), "study belongs to another hospital");
        finish(ig);
        return;
    }
    if (rc) {
        /* the object is durable but not indexed: not acknowledged, so the
         * sender retries; the retry (same bytes, same name) indexes it, and
         * `huren reindex` finds it in any case */
        ig->result.status = STO_ERR_RESOURCES;
        ig->result.rc = rc;
        snprintf(ig->result.reason, sizeof(ig->result.reason), "index unavailable: %s",
                 hr_strerror(rc));
        finish(ig);
        return;
    }
    enum sto_index_outcome outcome = res->outcome;
    if (outcome == STO_INDEX_IDENTICAL) {
        ig->result.status = STO_IDENTICAL;
    } else if (outcome == STO_INDEX_NEW_VERSION || outcome == STO_INDEX_OLDER_VERSION) {
        ig->result.status = STO_NEW_VERSION;
        snprintf(ig->result.reason, sizeof(ig->result.reason),
                 outcome == STO_INDEX_NEW_VERSION
                     ? "SOP Instance UID stored before with different content; both versions "
                       "kept, this one is current"
                     : "SOP Instance UID stored later with different content; both versions "
                       "kept, the later one stays current");
    } else {
        ig->result.status = STO_STORED;
    }
    if (res->patient_conflict) {
        ig->result.patient_conflict = 1;
        /* the details first: a DIMSE Error Comment keeps 64 characters */
        snprintf(ig->result.reason, sizeof(ig->result.reason),
                 "%s (stored; the study keeps its patient and is flagged patient_conflict)",
                 res->detail);
    }
    queue_meta(ig->ctx, ig->result.sha);
    if (ig->ctx->after_index) {
        ig->in_hook = 1;
        ig->ctx->after_index(ig->ctx->after_index_arg, &ig->attrs, &ig->meta, &ig->result,
                             on_hook_done, ig);
        return;
    }
    count_accepted(ig);
    finish(ig);
}

static void commit_index(sto_ingest *ig)
{
    sto_instance_rec rec = {
        .a = &ig->attrs,
        .sha = ig->result.sha,
        .size = ig->file_bytes,
        .hospital = ig->meta.hospital,
        .source_ae = ig->meta.source_ae,
        .received_ms = ig->received_ms,
        .owner = ig->result.owner,
        .receipt = 1,
    };
    sto_index_commit(ig->ctx->index, &rec, on_indexed, ig);
}

static int hub_derived(const sto_ingest *ig)
{
    return ig->meta.hub_hospital && sto_sop_class_derived(ig->attrs.sop_class_uid);
}

/* Admission decided (before anything is stored): store, or refuse. */
static void on_admitted(void *arg, int rc, const char *owner)
{
    sto_ingest *ig = arg;
    ig->in_flight = 0;
    if (rc == HR_EFORBIDDEN) {
        set_failure(ig, STO_ERR_REFUSED, rc, "study belongs to another hospital");
        hr_warn("ingest", "%s from %s (%s) refused: study %s belongs to %s",
                ig->attrs.sop_instance_uid, ig->meta.hospital,
                ig->meta.source_ae[0] ? ig->meta.source_ae : "HTTP", ig->attrs.study_instance_uid,
                owner);
    } else if (rc) {
        set_failure(ig, STO_ERR_RESOURCES, rc, "index unavailable: %s", hr_strerror(rc));
    }
    if (ig->aborted) {
        submit(ig, JOB_DISCARD, NULL);
        return;
    }
    if (ig->data_error) {
        fail_and_discard(ig);
        return;
    }
    snprintf(ig->result.owner, sizeof(ig->result.owner), "%s", owner);
    submit(ig, JOB_COMMIT, &ig->bufs[ig->filling]);
}

static void maybe_flush(sto_ingest *ig);

static void job_done(sto_ingest *ig)
{
    ig->in_flight = 0;
    if (ig->job_buf)
        hr_buf_reset(ig->job_buf);
    if (ig->job == JOB_DISCARD) {
        ig->tmp_path[0] = '\0';
        if (ig->aborted)
            ingest_free(ig);
        else
            finish(ig);
        return;
    }
    if (ig->job_rc && !ig->data_error)
        set_failure(ig, STO_ERR_RESOURCES, ig->job_rc, "storage failure: %s",
                    hr_strerror(ig->job_rc));
    if (ig->aborted) {
        submit(ig, JOB_DISCARD, NULL);
        return;
    }
    if (ig->job == JOB_COMMIT) {
        if (ig->job_rc) {
            ig->tmp_path[0] = '\0';
            fail_and_discard(ig);
            return;
        }
        commit_index(ig);
        return;
    }
    if (ig->ended) {
        /* end() arrived while a write was in flight: continue it now */
        sto_ingest_end(ig, ig->done, ig->done_arg);
        return;
    }
    if (ig->data_error) {
        /* the write failed (disk full, I/O error): the object fails, so what
         * is buffered is dropped and the rest of it drained; a paused sender
         * must resume or its association would wait forever */
        hr_buf_reset(&ig->bufs[ig->filling]);
    } else {
        maybe_flush(ig);
    }
    /* the other buffer is free again (or being written): take more data */
    if (ig->paused && ig->bufs[ig->filling].len < STO_INGEST_CHUNK) {
        ig->paused = 0;
        ig->resume(ig->resume_arg);
    }
}

/* Submits the filling buffer when it holds a chunk and nothing is in flight. */
static void maybe_flush(sto_ingest *ig)
{
    hr_buf *b = &ig->bufs[ig->filling];
    if (ig->in_flight || b->len < STO_INGEST_CHUNK || ig->data_error)
        return;
    ig->filling ^= 1;
    submit(ig, JOB_WRITE, b);
}

int sto_ingest_begin(sto_ctx *ctx, const sto_ingest_meta *meta, sto_ingest_resume_cb resume,
                     void *arg, sto_ingest **out)
{
    int rc = HR_EPARSE;
    char priv[128];
    if (!dcm_uid_valid(meta->sop_class) || !dcm_uid_valid(meta->sop_instance))
        return HR_EPARSE;
    if (!dcm_transfer_syntax(meta->ts))
        return HR_EUNSUP;
    sto_ingest *ig = calloc(1, sizeof(*ig));
    if (!ig)
        return -ENOMEM;
    ctx->active++;
    __atomic_add_fetch(&ctx->busy_objects, 1, __ATOMIC_RELAXED);
    ig->ctx = ctx;
    ig->meta = *meta;
    ig->resume = resume;
    ig->resume_arg = arg;
    ig->fd = -1;
    ig->received_ms = hr_wall_ms();
    ig->sha = hr_sha256_new();
    ig->scan = dcm_scanner_new(DCM_SCAN_DATASET, meta->ts, &ig->attrs);
    rc = -ENOMEM;
    if (!ig->sha || !ig->scan || buf_take(ctx, &ig->bufs[0]) || buf_take(ctx, &ig->bufs[1]))
        goto fail;
    snprintf(priv, sizeof(priv), "hospital=%s;received=%lld", meta->hospital, ig->received_ms);
    dcm_p10_meta m = {meta->sop_class, meta->sop_instance, meta->ts, meta->source_ae, priv};
    rc = dcm_p10_encode_meta(&m, &ig->bufs[0]);
    if (rc)
        goto fail;
    ig->meta_bytes = ig->bufs[0].len;
    *out = ig;
    return 0;
fail:
    ingest_free(ig);
    return rc;
}

int sto_ingest_feed(sto_ingest *ig, const uint8_t *p, size_t n)
{
    HR_DEBUG_ASSERT(!ig->ended && n <= ig->ctx->max_feed);
    if (ig->data_error)
        return 0; /* drain: the rest of the object is discarded */
    ig->dataset_bytes += n;
    if (ig->dataset_bytes > ig->ctx->max_object_bytes) {
        set_failure(ig, STO_ERR_RESOURCES, HR_ETOOBIG,
                    "object larger than the configured limit of %llu bytes",
                    (unsigned long long)ig->ctx->max_object_bytes);
        return 0;
    }
    int rc = dcm_scanner_feed(ig->scan, p, n);
    if (rc < 0) {
        set_failure(ig, STO_ERR_PARSE, rc, "cannot parse data set: %s",
                    dcm_scanner_error(ig->scan));
        return 0;
    }
    hr_sha256_update(ig->sha, p, n);
    hr_buf *b = &ig->bufs[ig->filling];
    rc = hr_buf_append(b, p, n);
    HR_ASSERT(rc == 0); /* cap = chunk + max_feed, and we pause at a full chunk */
    maybe_flush(ig);
    if (ig->bufs[ig->filling].len >= STO_INGEST_CHUNK) {
        ig->paused = 1;
        return 1;
    }
    return 0;
}

/* Required attributes and consistency with what the sender declared. */
static void validate(sto_ingest *ig)
{
    const dcm_attrs *a = &ig->attrs;
    const sto_ingest_meta *m = &ig->meta;
    if (!dcm_uid_valid(a->sop_class_uid) || !dcm_uid_valid(a->sop_instance_uid))
        set_failure(ig, STO_ERR_MISMATCH, HR_EMISSING,
                    "SOP Class UID or SOP Instance UID missing or invalid in the data set");
    else if (strcmp(a->sop_class_uid, m->sop_class))
        set_failure(ig, STO_ERR_MISMATCH, HR_EMISMATCH,
                    "data set SOP Class UID %s differs from the declared %s", a->sop_class_uid,
                    m->sop_class);
    else if (strcmp(a->sop_instance_uid, m->sop_instance))
        set_failure(ig, STO_ERR_MISMATCH, HR_EMISMATCH,
                    "data set SOP Instance UID %s differs from the declared %s",
                    a->sop_instance_uid, m->sop_instance);
    else if (!dcm_uid_valid(a->study_instance_uid) || !dcm_uid_valid(a->series_instance_uid))
        set_failure(ig, STO_ERR_MISMATCH, HR_EMISSING,
                    "Study or Series Instance UID missing or invalid");
    else if (m->study[0] && strcmp(a->study_instance_uid, m->study))
        set_failure(ig, STO_ERR_MISMATCH, HR_EMISMATCH,
                    "data set Study Instance UID %s differs from the requested %s",
                    a->study_instance_uid, m->study);
}

void sto_ingest_end(sto_ingest *ig, sto_ingest_done_cb done, void *arg)
{
    ig->ended = 1;
    ig->done = done;
    ig->done_arg = arg;
    if (ig->in_flight)
        return; /* job_done continues here */
    if (!ig->data_error) {
        int rc = dcm_scanner_finish(ig->scan);
        if (rc != DCM_SCAN_END)
            set_failure(ig, STO_ERR_PARSE, rc < 0 ? rc : HR_ETRUNC, "cannot parse data set: %s",
                        dcm_scanner_error(ig->scan));
        else
            validate(ig);
    }
    if (ig->data_error) {
        fail_and_discard(ig);
        return;
    }
    hr_sha256_final_hex(ig->sha, ig->result.sha);
    ig->file_bytes = ig->meta_bytes + ig->dataset_bytes;
    /* the study's owner decides before anything becomes visible; the last
     * buffer is written with the commit */
    ig->in_flight = 1;
    sto_index_admit(ig->ctx->index, ig->attrs.study_instance_uid, ig->meta.hospital,
                    hub_derived(ig), on_admitted, ig);
}

void sto_ingest_abort(sto_ingest *ig)
{
    ig->aborted = 1;
    if (ig->in_flight)
        return; /* job_done discards */
    if (ig->fd >= 0 || ig->tmp_path[0]) {
        submit(ig, JOB_DISCARD, NULL);
        return;
    }
    ingest_free(ig);
}
