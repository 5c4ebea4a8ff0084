/* The asynchronous pipeline of lab_ingest and the journal replay (the
 * journal's users; the blocking steps are in lab.c). */
#include "lab.h"
#include "hl7.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../storage/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reindex ---- */

typedef struct reindex_arg {
    redisContext *c;
    const hr_config *cfg;
    long messages, refused;
} reindex_arg;

static int reindex_one(void *arg, uint32_t type, const uint8_t *data, size_t len, long long ms,
                       const sto_journal_pos *pos)
{
    reindex_arg *a = arg;
    lab_msg *m = NULL;
    hr_buf ack;
    lab_stored st;
    int rc;
    if (type != LAB_JOURNAL_TYPE)
        return 0;
    hr_buf_init(&ack, RPT_HL7_ACK_MAX);
    rc = lab_msg_check(a->cfg, data, len, NULL, NULL, ms, &m, &ack);
    hr_buf_free(&ack);
    if (rc == HR_EPARSE) {
        a->refused++;
        return 0;
    }
    if (rc)
        return rc;
    snprintf(st.segment, sizeof(st.segment), "%s", pos->segment);
    st.offset = pos->offset;
    st.len = pos->len;
    rc = lab_msg_commit(a->c, a->cfg, m, &st, ms, NULL);
    lab_msg_free(m);
    if (rc == HR_EFORBIDDEN || rc == HR_ETOOBIG) {
        a->refused++; /* refused live too: the UID is another's study, a report is full */
        return 0;
    }
    if (!rc)
        a->messages++;
    return rc;
}

int lab_reindex(redisContext *c, const hr_config *cfg, const char *journal_dir, long *messages,
                long *refused)
{
    reindex_arg a = {.c = c, .cfg = cfg};
    int rc = sto_journal_scan(journal_dir, reindex_one, &a, NULL);
    *messages = a.messages;
    *refused = a.refused;
    return rc;
}

/* ---- the asynchronous pipeline ----
 *
 * Two steps on the worker pool, each taking every message waiting for it
 * (up to LAB_BATCH_MAX) in one job with one pipelined round of Redis
 * commands per step:
 *   check:  parse and check, duplicate markers (lab_msg_seen_batch);
 *           new messages go to the journal (its writer groups them under
 *           one fdatasync), the others are answered at once;
 *   commit: the messages journaled meanwhile (lab_msg_commit_batch), then
 *           each one's AA (or AE).
 * At most one job of each step runs at a time; messages arriving
 * meanwhile wait for the next one, so the batches grow with the load. */

#define LAB_BATCH_MAX 256

typedef struct lab_job lab_job;

struct lab_job {
    lab_ctx *x;
    lab_job *next; /* in the ctx's list of messages waiting for a step */
    uint8_t *msg;
    size_t len;
    char hospital[HR_ID_MAX];
    char peer[HR_ADDR_MAX + 8];
    lab_ingest_cb cb;
    void *arg;
    lab_msg *m;
    lab_stored stored;
    hr_buf ack;
    int rc;                /* of the step */
    int answered;          /* the ACK is ready */
    long long received_ms; /* the journal record's time: the commit's (reindex uses it too) */
};

enum batch_step { STEP_CHECK, STEP_COMMIT };

/* One job of a step for up to LAB_BATCH_MAX messages. */
typedef struct lab_batch {
    lab_ctx *x;
    enum batch_step step;
    size_t n;
    lab_job *jobs[LAB_BATCH_MAX];
    lab_msg *ms[LAB_BATCH_MAX];
    lab_stored stored[LAB_BATCH_MAX];
    long long received_ms[LAB_BATCH_MAX];
    int res[LAB_BATCH_MAX]; /* check: seen; commit: rc */
    uv_work_t work;
    hr_pool_job pjob;
} lab_batch;

/* The messages waiting for one step. */
typedef struct lab_queue {
    lab_job *head, **tail;
    int running; /* a batch of this step is on a worker */
} lab_queue;

struct lab_ctx {
    lab_opts o;
    char hub[HR_NAME_MAX];
    sto_journal *journal;
    int inflight;
    int closing;
    void (*closed)(void *arg);
    void *closed_arg;
    int journal_closed;
    lab_queue q[2]; /* by enum batch_step */
};

static void batch_start(lab_ctx *x, enum batch_step step);

static void maybe_free(lab_ctx *x)
{
    if (x->closing && x->journal_closed && x->inflight == 0) {
        void (*closed)(void *) = x->closed;
        void *arg = x->closed_arg;
        free(x);
        if (closed)
            closed(arg);
    }
}

static void job_finish(lab_job *j)
{
    lab_ctx *x = j->x;
    int rc = j->ack.len ? 0 : (j->rc ? j->rc : -EIO);
    j->cb(j->arg, rc, j->ack.data, j->ack.len);
    hr_buf_free(&j->ack);
    lab_msg_free(j->m);
    free(j->msg);
    free(j);
    x->inflight--;
    maybe_free(x);
}

/* Queues j for a step; a batch starts when none of that step runs. */
static void enqueue(lab_job *j, enum batch_step step)
{
    lab_queue *q = &j->x->q[step];
    j->next = NULL;
    *q->tail = j;
    q->tail = &j->next;
    if (!q->running)
        batch_start(j->x, step);
}

/* Worker: parse and check each message, then the duplicate markers. */
static void check_run(lab_batch *b)
{
    lab_ctx *x = b->x;
    long long now = hr_wall_ms();
    size_t checked = 0;
    for (size_t i = 0; i < b->n; i++) {
        lab_job *j = b->jobs[i];
        lab_source src = {.hospital = j->hospital, .peer = j->peer};
        j->rc = lab_msg_check(x->o.cfg, j->msg, j->len, &src, x->hub, now, &j->m, &j->ack);
        if (j->rc == HR_EPARSE)
            j->answered = 1;
        b->ms[i] = j->rc ? NULL : j->m;
        checked += !j->rc;
    }
    if (!checked)
        return;
    redisContext *c = sto_worker_redis(&x->o.redis_addr, x->o.redis_timeout_ms);
    int rc = c ? lab_msg_seen_batch(c, b->ms, b->n, b->res) : HR_EREDIS;
    for (size_t i = 0; i < b->n; i++) {
        lab_job *j = b->jobs[i];
        if (!b->ms[i])
            continue;
        if (rc) {
            j->rc = rc;
        } else if (b->res[i] == LAB_SEEN_REUSED) {
            hr_warn("lab", "%s: %s reuses a control id with other content: AR, not stored", j->peer,
                    lab_msg_id(j->m));
            j->rc = lab_msg_ack_reused(j->m, x->hub, now, &j->ack);
            j->answered = 1;
        } else if (b->res[i] > 0) {
            hr_info("lab", "%s: duplicate %s acknowledged again", j->peer, lab_msg_id(j->m));
            j->rc = lab_msg_ack(j->m, "AA", x->hub, now, &j->ack);
            j->answered = 1;
        }
    }
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
}

/* Worker: commit the journaled messages, then the ACK of each. */
static void commit_run(lab_batch *b)
{
    lab_ctx *x = b->x;
    redisContext *c = sto_worker_redis(&x->o.redis_addr, x->o.redis_timeout_ms);
    int failed = !c;
    if (c)
        lab_msg_commit_batch(c, x->o.cfg, b->ms, b->stored, b->received_ms, b->n, b->res);
    long long now = hr_wall_ms();
    for (size_t i = 0; i < b->n; i++) {
        lab_job *j = b->jobs[i];
        j->rc = c ? b->res[i] : HR_EREDIS;
        failed |= j->rc == HR_EREDIS;
        if (j->rc == HR_EFORBIDDEN) {
            lab_msg_ack_taken(j->m, x->hub, now, &j->ack);
        } else if (j->rc == HR_ETOOBIG) {
            hr_warn("lab", "%s: %s: a lab report is full: AR, not stored", j->peer,
                    lab_msg_id(j->m));
            lab_msg_ack_full(j->m, x->hub, now, &j->ack);
        } else {
            if (j->rc)
                hr_warn("lab", "%s: %s not committed (%s): AE, the sender retries", j->peer,
                        lab_msg_id(j->m), hr_strerror(j->rc));
            lab_msg_ack(j->m, j->rc ? "AE" : "AA", x->hub, now, &j->ack);
        }
        j->answered = 1;
    }
    if (failed)
        sto_worker_redis_failed();
}

static void journal_done(void *arg, int rc, const sto_journal_pos *pos)
{
    lab_job *j = arg;
    if (rc) {
        hr_warn("lab", "%s: %s not journaled (%s): AE", j->peer, lab_msg_id(j->m), hr_strerror(rc));
        lab_msg_ack(j->m, "AE", j->x->hub, hr_wall_ms(), &j->ack);
        job_finish(j);
        return;
    }
#ifndef NDEBUG
    /* TEST HOOK (debug builds only; tests/integration/test_hl7_ingest.sh,
     * decision 0037): die like a kill -9 between the journal's fdatasync and
     * the index commit, to show that the sender's resend is stored once */
    if (getenv("HUREN_TEST_CRASH_AFTER_JOURNAL"))
        _exit(137);
#endif
    snprintf(j->stored.segment, sizeof(j->stored.segment), "%s", pos->segment);
    j->stored.offset = pos->offset;
    j->stored.len = pos->len;
    /* committed with the others journaled meanwhile */
    enqueue(j, STEP_COMMIT);
}

/* Loop: a checked message is answered, or goes into the journal. */
static void checked(lab_job *j)
{
    if (j->answered || j->rc) {
        if (!j->answered && j->m)
            lab_msg_ack(j->m, "AE", j->x->hub, hr_wall_ms(), &j->ack);
        job_finish(j);
        return;
    }
    /* checked and new: into the journal (none once closing) */
    j->received_ms = hr_wall_ms();
    int rc = j->x->closing ? -ESHUTDOWN
                           : sto_journal_append(j->x->journal, LAB_JOURNAL_TYPE, j->msg, j->len,
                                                j->received_ms, journal_done, j);
    if (rc) {
        hr_warn("lab", "%s: journal refused %s (%s): AE", j->peer, lab_msg_id(j->m),
                hr_strerror(rc));
        lab_msg_ack(j->m, "AE", j->x->hub, hr_wall_ms(), &j->ack);
        job_finish(j);
    }
}

static void batch_run(lab_batch *b)
{
    if (b->step == STEP_CHECK)
        check_run(b);
    else
        commit_run(b);
}

/* Loop: each message of the batch goes on, the next batch starts. */
static void batch_done(lab_batch *b)
{
    lab_ctx *x = b->x;
    x->inflight++; /* x lives until the next batch is started */
    x->q[b->step].running = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->step == STEP_CHECK)
            checked(b->jobs[i]);
        else
            job_finish(b->jobs[i]);
    }
    if (x->q[b->step].head)
        batch_start(x, b->step);
    free(b);
    x->inflight--;
    maybe_free(x);
}

static void batch_uv_run(uv_work_t *w)
{
    batch_run(w->data);
}

static void batch_uv_done(uv_work_t *w, int status)
{
    (void)status;
    batch_done(w->data);
}

static void batch_pool_run(hr_pool_job *p)
{
    batch_run(p->data);
}

static void batch_pool_done(hr_pool_job *p, int status)
{
    lab_batch *b = p->data;
    if (status == -ECANCELED) {
        HR_ASSERT(uv_queue_work(b->x->o.loop, &b->work, batch_uv_run, batch_uv_done) == 0);
        return;
    }
    batch_done(b);
}

/* Takes the messages waiting for a step (up to LAB_BATCH_MAX) to a worker. */
static void batch_start(lab_ctx *x, enum batch_step step)
{
    lab_queue *q = &x->q[step];
    lab_batch *b = malloc(sizeof(*b));
    if (!b) {
        /* no memory for the batch: each waiting message is answered AE
         * (or, refused before a check, -ENOMEM) */
        while (q->head) {
            lab_job *j = q->head;
            q->head = j->next;
            j->rc = -ENOMEM;
            if (j->m)
                lab_msg_ack(j->m, "AE", x->hub, hr_wall_ms(), &j->ack);
            job_finish(j);
        }
        q->tail = &q->head;
        return;
    }
    b->x = x;
    b->step = step;
    b->n = 0;
    while (q->head && b->n < LAB_BATCH_MAX) {
        lab_job *j = q->head;
        q->head = j->next;
        b->jobs[b->n] = j;
        b->ms[b->n] = j->m;
        b->stored[b->n] = j->stored;
        b->received_ms[b->n] = j->received_ms;
        b->n++;
    }
    if (!q->head)
        q->tail = &q->head;
    q->running = 1;
    b->pjob.data = b;
    b->work.data = b;
    if (x->o.pool && hr_pool_submit(x->o.pool, &b->pjob, batch_pool_run, batch_pool_done) == 0)
        return;
    HR_ASSERT(uv_queue_work(x->o.loop, &b->work, batch_uv_run, batch_uv_done) == 0);
}

int lab_ingest(lab_ctx *x, const uint8_t *msg, size_t len, const lab_source *src, lab_ingest_cb cb,
               void *arg)
{
    if (x->closing)
        return -ESHUTDOWN;
    lab_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->msg = malloc(len ? len : 1);
    if (!j->msg) {
        free(j);
        return -ENOMEM;
    }
    memcpy(j->msg, msg, len);
    j->len = len;
    j->x = x;
    j->cb = cb;
    j->arg = arg;
    snprintf(j->hospital, sizeof(j->hospital), "%s", src && src->hospital ? src->hospital : "");
    snprintf(j->peer, sizeof(j->peer), "%s", src && src->peer ? src->peer : "");
    hr_buf_init(&j->ack, RPT_HL7_ACK_MAX);
    x->inflight++;
    enqueue(j, STEP_CHECK);
    return 0;
}

int lab_open(const lab_opts *o, lab_ctx **out)
{
    lab_ctx *x = calloc(1, sizeof(*x));
    *out = NULL;
    if (!x)
        return -ENOMEM;
    x->o = *o;
    x->q[STEP_CHECK].tail = &x->q[STEP_CHECK].head;
    x->q[STEP_COMMIT].tail = &x->q[STEP_COMMIT].head;
    snprintf(x->hub, sizeof(x->hub), "%s",
             o->hub_facility && *o->hub_facility ? o->hub_facility : "HUREN");
    int rc = sto_journal_open(o->loop, o->journal_dir, o->node && *o->node ? o->node : "node",
                              &x->journal);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    return 0;
}

static void journal_closed(void *arg)
{
    lab_ctx *x = arg;
    x->journal_closed = 1;
    maybe_free(x);
}

void lab_close(lab_ctx *x, void (*closed)(void *arg), void *arg)
{
    x->closing = 1;
    x->closed = closed;
    x->closed_arg = arg;
    sto_journal_close(x->journal, journal_closed, x);
}
