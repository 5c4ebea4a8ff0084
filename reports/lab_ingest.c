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

/* ---- the asynchronous pipeline ---- */

enum job_step { STEP_CHECK, STEP_COMMIT };

typedef struct lab_job {
    lab_ctx *x;
    enum job_step step;
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
    uv_work_t work;
    hr_pool_job pjob;
} lab_job;

struct lab_ctx {
    lab_opts o;
    char hub[HR_NAME_MAX];
    sto_journal *journal;
    int inflight;
    int closing;
    void (*closed)(void *arg);
    void *closed_arg;
    int journal_closed;
};

static void job_submit(lab_job *j);

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

static void job_run(lab_job *j)
{
    lab_ctx *x = j->x;
    long long now = hr_wall_ms();
    lab_source src = {.hospital = j->hospital, .peer = j->peer};
    redisContext *c = sto_worker_redis(&x->o.redis_addr, x->o.redis_timeout_ms);
    if (j->step == STEP_CHECK) {
        int seen = 0;
        j->rc = lab_msg_check(x->o.cfg, j->msg, j->len, &src, x->hub, now, &j->m, &j->ack);
        if (j->rc == HR_EPARSE) {
            j->answered = 1;
            return;
        }
        if (j->rc)
            return;
        j->rc = c ? lab_msg_seen(c, j->m, &seen) : HR_EREDIS;
        if (!j->rc && seen == LAB_SEEN_REUSED) {
            hr_warn("lab", "%s: %s reuses a control id with other content: AR, not stored", j->peer,
                    lab_msg_id(j->m));
            j->rc = lab_msg_ack_reused(j->m, x->hub, now, &j->ack);
            j->answered = 1;
        } else if (!j->rc && seen) {
            hr_info("lab", "%s: duplicate %s acknowledged again", j->peer, lab_msg_id(j->m));
            j->rc = lab_msg_ack(j->m, "AA", x->hub, now, &j->ack);
            j->answered = 1;
        }
    } else {
        int crit = 0;
        j->rc =
            c ? lab_msg_commit(c, x->o.cfg, j->m, &j->stored, j->received_ms, &crit) : HR_EREDIS;
        if (j->rc == HR_EFORBIDDEN)
            lab_msg_ack_taken(j->m, x->hub, now, &j->ack);
        else if (j->rc == HR_ETOOBIG) {
            hr_warn("lab", "%s: %s: a lab report is full: AR, not stored", j->peer,
                    lab_msg_id(j->m));
            lab_msg_ack_full(j->m, x->hub, now, &j->ack);
        } else if (j->rc)
            hr_warn("lab", "%s: %s not committed (%s): AE, the sender retries", j->peer,
                    lab_msg_id(j->m), hr_strerror(j->rc));
        if (j->rc != HR_EFORBIDDEN && j->rc != HR_ETOOBIG)
            lab_msg_ack(j->m, j->rc ? "AE" : "AA", x->hub, now, &j->ack);
        j->answered = 1;
    }
    if (j->rc == HR_EREDIS)
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
    j->step = STEP_COMMIT;
    job_submit(j);
}

static void job_done(lab_job *j)
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

static void uv_run_cb(uv_work_t *w)
{
    job_run(w->data);
}

static void uv_done_cb(uv_work_t *w, int status)
{
    (void)status;
    job_done(w->data);
}

static void pool_run_cb(hr_pool_job *p)
{
    job_run(p->data);
}

static void pool_done_cb(hr_pool_job *p, int status)
{
    lab_job *j = p->data;
    if (status == -ECANCELED) {
        j->work.data = j;
        HR_ASSERT(uv_queue_work(j->x->o.loop, &j->work, uv_run_cb, uv_done_cb) == 0);
        return;
    }
    job_done(j);
}

static void job_submit(lab_job *j)
{
    j->pjob.data = j;
    j->work.data = j;
    if (j->x->o.pool && hr_pool_submit(j->x->o.pool, &j->pjob, pool_run_cb, pool_done_cb) == 0)
        return;
    HR_ASSERT(uv_queue_work(j->x->o.loop, &j->work, uv_run_cb, uv_done_cb) == 0);
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
    job_submit(j);
    return 0;
}

int lab_open(const lab_opts *o, lab_ctx **out)
{
    lab_ctx *x = calloc(1, sizeof(*x));
    *out = NULL;
    if (!x)
        return -ENOMEM;
    x->o = *o;
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
