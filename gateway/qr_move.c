/* C-MOVE and C-GET SCP (Patient Root and Study Root, PS3.4 C.4.2 and C.4.3).
 * The identifier's UIDs become a list of instances (sto_retrieve_list on the
 * thread pool, filtered by the caller's scope: a forbidden study is absent).
 * Each instance is one C-STORE sub-operation: over a new association to the
 * move destination (gw_scu), or over the requesting association itself for
 * C-GET (contexts the peer proposed with the SCP role). A sub-operation sends
 * the stored data set as is when a context with its transfer syntax was
 * accepted, else decompresses it to an accepted uncompressed syntax first; a
 * pending response with the counts follows each one; C-CANCEL-RQ is honoured
 * between sub-operations. */
#include "qr.h"
#include "scu.h"
#include "xfer.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/match.h"
#include "../dicom/uids.h"
#include "../storage/query.h"
#include "../storage/retrieve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG(g, e) DCM_TAG(g, e)

typedef struct study_sum {
    char study[STO_UID_BUF];
    char patient[192];
    unsigned completed, failed, warning, total;
} study_sum;

struct gw_retr {
    enum sto_qlevel level;
    char *study, *series, *sop, *pid; /* request keys (UID lists), "" when absent */
    hr_destination dest;              /* C-MOVE */
    uint32_t our_max_pdu;
    int connect_timeout_ms, progress_timeout_ms;
    sto_objstore store;
    /* the list, built on the thread pool */
    uv_work_t work;
    int working;
    int list_rc;
    sto_rinst *v;
    size_t n;
    study_sum *studies;
    size_t n_studies;
    /* progress */
    size_t next;
    unsigned completed, failed, warning;
    hr_buf failed_uids; /* '\'-joined */
    int in_subop, waiting_rsp, early_rsp;
    uint16_t msg_id, early_status;
    gw_xfer xfer;
    /* C-MOVE destination association */
    gw_scu *scu;
    int scu_ready, scu_lost;
    int finished; /* the final response is being or was sent */
    char scu_why[128];
};

static void next_subop(gw_op *op);
static void finish(gw_op *op, const char *comment);

/* ---- lifecycle ---- */

int gw__retr_idle(const gw_op *op)
{
    const gw_retr *r = op->retr;
    return !r->working && !gw_xfer_running(&r->xfer) && !r->scu;
}

int gw__retr_busy(const gw_op *op)
{
    const gw_retr *r = op->retr;
    /* C-MOVE: the requestor waits for us and our destination, whose own
     * association has connect and progress timeouts; C-GET: the peer's
     * silence counts, our decompression does not */
    return op->kind == GW_QR_MOVE || r->working || gw_xfer_working(&r->xfer);
}

void gw__retr_free(gw_op *op)
{
    gw_retr *r = op->retr;
    free(r->study);
    free(r->series);
    free(r->sop);
    free(r->pid);
    free(r->v);
    free(r->studies);
    hr_buf_free(&r->failed_uids);
    gw_xfer_free(&r->xfer);
    free(r);
    op->retr = NULL;
}

static const char *action(const gw_op *op)
{
    return op->kind == GW_QR_MOVE ? "c-move" : "c-get";
}

/* One audit record per study (or one for the request when nothing matched). */
static void audit_studies(gw_op *op, const char *outcome_override)
{
    gw_retr *r = op->retr;
    char detail[1400];
    for (size_t i = 0; i < r->n_studies; i++) {
        const study_sum *s = &r->studies[i];
        snprintf(detail, sizeof(detail), "%s%s%s instances=%u completed=%u failed=%u warning=%u",
                 op->keys, op->kind == GW_QR_MOVE ? " destination=" : "",
                 op->kind == GW_QR_MOVE ? r->dest.ae_title : "", s->total, s->completed, s->failed,
                 s->warning);
        const char *outcome = outcome_override ? outcome_override
                              : s->failed == 0 && s->warning == 0 && s->completed == s->total
                                  ? "success"
                              : s->completed + s->warning == 0 ? "failure"
                                                               : "partial";
        gw__qr_audit(op, action(op), s->patient[0] ? s->patient : NULL, s->study, detail, outcome);
    }
    if (r->n_studies == 0) {
        snprintf(detail, sizeof(detail), "%s%s%s instances=0", op->keys,
                 op->kind == GW_QR_MOVE ? " destination=" : "",
                 op->kind == GW_QR_MOVE ? r->dest.ae_title : "");
        gw__qr_audit(op, action(op), NULL, NULL, detail,
                     outcome_override ? outcome_override : "not-found");
    }
}

void gw__retr_audit_aborted(gw_op *op)
{
    audit_studies(op, "aborted");
}

void gw__retr_detach(gw_op *op)
{
    gw_retr *r = op->retr;
    gw_xfer_stop(&r->xfer);
    if (r->scu)
        gw_scu_abort(r->scu);
}

void gw__retr_cancel(gw_op *op)
{
    /* honoured between sub-operations; nothing to interrupt here */
}

/* ---- responses ---- */

static study_sum *study_of(gw_retr *r, const sto_rinst *in)
{
    for (size_t i = 0; i < r->n_studies; i++)
        if (strcmp(r->studies[i].study, in->study) == 0)
            return &r->studies[i];
    return NULL;
}

static void rsp_counts(gw_op *op, dcm_command *c, uint16_t status, unsigned remaining)
{
    gw_retr *r = op->retr;
    gw__qr_rsp_init(op, c, status);
    c->flags |= DCM_CMD_HAS_COUNTS;
    c->n_remaining = (uint16_t)remaining;
    c->n_completed = (uint16_t)r->completed;
    c->n_failed = (uint16_t)r->failed;
    c->n_warning = (uint16_t)r->warning;
}

enum outcome { OK, WARN, FAILED };

/* Counts one finished sub-operation and reports progress. */
static void count(gw_op *op, const sto_rinst *in, enum outcome o)
{
    gw_retr *r = op->retr;
    study_sum *s = study_of(r, in);
    if (o == OK) {
        r->completed++;
        if (s)
            s->completed++;
    } else if (o == WARN) {
        r->warning++;
        if (s)
            s->warning++;
    } else {
        r->failed++;
        if (s)
            s->failed++;
        size_t len = strlen(in->sop);
        if (r->failed_uids.len + len + 1 <= GW_FAILED_UIDS_MAX) {
            if (r->failed_uids.len)
                hr_buf_append(&r->failed_uids, "\\", 1);
            hr_buf_append(&r->failed_uids, in->sop, len);
        }
    }
}

static void pending_rsp(gw_op *op)
{
    gw_retr *r = op->retr;
    dcm_command c;
    rsp_counts(op, &c, DCM_STATUS_PENDING, (unsigned)(r->n - r->next));
    gw__qr_send(op, &c, NULL, 0, 0);
}

static void finish(gw_op *op, const char *comment)
{
    gw_retr *r = op->retr;
    if (r->finished)
        return;
    r->finished = 1; /* the destination's callbacks below must not finish again */
    int cancelled = gw__qr_cancelled(op);
    uint16_t status;
    if (cancelled && r->next < r->n)
        status = DCM_STATUS_CANCEL;
    else if (r->failed == 0 && r->warning == 0)
        status = DCM_STATUS_SUCCESS;
    else if (r->completed == 0 && r->warning == 0)
        status = GW_STATUS_RETR_NO_SUBOPS;
    else
        status = GW_STATUS_RETR_SOME_FAILED;
    if (r->scu) {
        if (r->scu_ready && !r->scu_lost)
            gw_scu_release(r->scu);
        else
            gw_scu_abort(r->scu);
    }
    if (op->a)
        hr_info("dicom",
                "%s: %s %s%s%s: %zu instances, %u completed, %u failed, %u warnings, "
                "%04X in %llu ms",
                op->a->peer, op->kind == GW_QR_MOVE ? "C-MOVE" : "C-GET", op->keys,
                op->kind == GW_QR_MOVE ? " to " : "",
                op->kind == GW_QR_MOVE ? r->dest.ae_title : "", r->n, r->completed, r->failed,
                r->warning, status, (unsigned long long)(uv_now(op->loop) - op->started_ms));
    audit_studies(op, status == DCM_STATUS_CANCEL ? "cancelled" : NULL);
    dcm_command c;
    rsp_counts(op, &c, status, status == DCM_STATUS_CANCEL ? (unsigned)(r->n - r->next) : 0);
    if (comment && status != DCM_STATUS_SUCCESS)
        snprintf(c.error_comment, sizeof(c.error_comment), "%s", comment);
    hr_buf ds;
    hr_buf_init(&ds, 1 << 20);
    int with_ds = 0;
    if (r->failed_uids.len) {
        dcm_ds *id = dcm_ds_new();
        if (id &&
            dcm_ds_put_stringn(id, TAG(0x0008, 0x0058), "UI", (const char *)r->failed_uids.data,
                               r->failed_uids.len) == 0 &&
            dcm_ds_encode(id, op->ts, &ds) == 0)
            with_ds = 1;
        dcm_ds_free(id);
    }
    gw__qr_final(op, &c, with_ds ? ds.data : NULL, ds.len);
    hr_buf_free(&ds);
}

/* Everything not yet attempted fails (the destination is gone). */
static void fail_remaining(gw_op *op)
{
    gw_retr *r = op->retr;
    while (r->next < r->n)
        count(op, &r->v[r->next++], FAILED);
}

/* ---- sub-operations ---- */

static enum outcome classify(uint16_t status)
{
    if (status == DCM_STATUS_SUCCESS)
        return OK;
    if ((status & 0xF000) == 0xB000 || status == 0x0001)
        return WARN;
    return FAILED;
}

static void subop_done(gw_op *op, enum outcome o)
{
    gw_retr *r = op->retr;
    r->in_subop = r->waiting_rsp = r->early_rsp = 0;
    if (r->scu)
        gw_scu_busy(r->scu, 0);
    count(op, &r->v[r->next], o);
    r->next++;
    pending_rsp(op);
    next_subop(op);
}

static void on_store_rsp(gw_op *op, uint16_t status)
{
    gw_retr *r = op->retr;
    if (status != DCM_STATUS_SUCCESS)
        hr_warn("dicom", "%s: C-STORE of %s answered %04X", op->calling_ae, r->v[r->next].sop,
                status);
    if (!r->waiting_rsp) {
        r->early_rsp = 1; /* before our last write completed: counted then */
        r->early_status = status;
        return;
    }
    subop_done(op, classify(status));
}

static void on_xfer_done(void *arg, int rc, int wrote)
{
    gw_op *op = arg;
    gw_retr *r = op->retr;
    if (!op->a) {
        gw__qr_maybe_free(op);
        return;
    }
    const sto_rinst *in = &r->v[r->next];
    if (rc == 0) {
        r->waiting_rsp = 1;
        if (r->early_rsp)
            subop_done(op, classify(r->early_status));
        return;
    }
    if (rc == HR_ESTATE && (r->scu_lost || gw__qr_cancelled(op)) && !wrote) {
        subop_done(op, FAILED);
        return;
    }
    hr_warn("dicom", "%s: cannot send %s (%s, %s): %s", op->calling_ae, in->sop, in->sop_class,
            in->ts, hr_strerror(rc));
    if (!wrote) {
        subop_done(op, FAILED); /* nothing reached the peer: the next one may go */
        return;
    }
    /* a message broke off half-way: the association cannot carry another */
    if (op->kind == GW_QR_GET) {
        gw__assoc_abort(op->a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_NOT_SPECIFIED);
        return; /* the abort detached the operation */
    }
    r->in_subop = 0;
    r->scu_lost = 1;
    snprintf(r->scu_why, sizeof(r->scu_why), "transfer to %s broke off", r->dest.ae_title);
    if (r->scu)
        gw_scu_abort(r->scu);
    fail_remaining(op);
    finish(op, r->scu_why);
}

static void on_xfer_progress(void *arg)
{
    gw_op *op = arg;
    if (op->retr->scu)
        gw_scu_busy(op->retr->scu, 1);
    if (op->a)
        gw__assoc_touch(op->a);
}

/* Picks the context for an instance: its own transfer syntax, else an
 * uncompressed one (*target set: decompress first). 0 when none. */
static uint8_t pick_context(gw_op *op, const sto_rinst *in, const char **target)
{
    gw_retr *r = op->retr;
    uint8_t expl = 0, impl = 0;
    *target = NULL;
    if (op->kind == GW_QR_MOVE) {
        int n;
        const gw_scu_pc *pc = gw_scu_pcs(r->scu, &n);
        for (int i = 0; i < n; i++) {
            if (pc[i].result != DCM_PC_ACCEPT || strcmp(pc[i].abstract_syntax, in->sop_class))
                continue;
            if (strcmp(pc[i].accepted_ts, in->ts) == 0)
                return pc[i].id;
            if (!expl && strcmp(pc[i].accepted_ts, DCM_TS_EXPLICIT_LE) == 0)
                expl = pc[i].id;
            if (!impl && strcmp(pc[i].accepted_ts, DCM_TS_IMPLICIT_LE) == 0)
                impl = pc[i].id;
        }
    } else {
        const gw_assoc *a = op->a;
        for (int i = 0; i < a->n_pcs; i++) {
            const gw_pc *pc = &a->pcs[i];
            if (!pc->accepted || !pc->peer_scp || strcmp(pc->abstract_syntax, in->sop_class))
                continue;
            if (strcmp(pc->ts, in->ts) == 0)
                return pc->id;
            if (!expl && strcmp(pc->ts, DCM_TS_EXPLICIT_LE) == 0)
                expl = pc->id;
            if (!impl && strcmp(pc->ts, DCM_TS_IMPLICIT_LE) == 0)
                impl = pc->id;
        }
    }
    if (expl) {
        *target = DCM_TS_EXPLICIT_LE;
        return expl;
    }
    if (impl) {
        *target = DCM_TS_IMPLICIT_LE;
        return impl;
    }
    return 0;
}

static int start_subop(gw_op *op)
{
    gw_retr *r = op->retr;
    const sto_rinst *in = &r->v[r->next];
    const char *target;
    uint8_t pc = pick_context(op, in, &target);
    if (!pc) {
        hr_warn("dicom", "%s: no accepted presentation context for %s (%s in %s)%s", op->calling_ae,
                in->sop, in->sop_class, in->ts, op->kind == GW_QR_MOVE ? "" : " with the SCP role");
        return HR_EUNSUP;
    }
    uv_stream_t *stream;
    uint32_t peer_max;
    uint16_t id;
    if (op->kind == GW_QR_MOVE) {
        stream = gw_scu_stream(r->scu);
        peer_max = gw_scu_peer_max_pdu(r->scu);
        id = ++r->msg_id;
    } else {
        stream = (uv_stream_t *)&op->a->tcp;
        peer_max = op->a->peer_max_pdu;
        id = ++op->a->next_msg_id;
    }
    dcm_command c;
    memset(&c, 0, sizeof(c));
    c.command_field = DCM_C_STORE_RQ;
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY;
    c.message_id = id;
    c.data_set_type = 0x0102;
    snprintf(c.affected_sop_class, sizeof(c.affected_sop_class), "%s", in->sop_class);
    snprintf(c.affected_sop_instance, sizeof(c.affected_sop_instance), "%s", in->sop);
    if (op->kind == GW_QR_MOVE) {
        c.flags |= DCM_CMD_HAS_MOVE_ORIGINATOR;
        snprintf(c.move_originator_ae, sizeof(c.move_originator_ae), "%s", op->calling_ae);
        c.move_originator_id = op->rq.message_id;
    }
    char path[STO_PATH_MAX];
    sto_objstore_path(&r->store, in->sha, path);
    int rc = gw_xfer_start(&r->xfer, stream, peer_max, pc, &c, path, target, r->store.tmp,
                           on_xfer_done, on_xfer_progress, op);
    if (rc)
        return rc;
    if (target)
        hr_info("dicom", "%s: %s is %s: decompressing to %s for %s", op->calling_ae, in->sop,
                in->ts, target, op->kind == GW_QR_MOVE ? r->dest.ae_title : "C-GET");
    r->in_subop = 1;
    r->msg_id = id;
    if (r->scu)
        gw_scu_busy(r->scu, 1);
    return 0;
}

static void next_subop(gw_op *op)
{
    gw_retr *r = op->retr;
    while (op->a) {
        if (gw__qr_cancelled(op) || r->next >= r->n) {
            finish(op, NULL);
            return;
        }
        if (r->scu_lost) {
            fail_remaining(op);
            finish(op, r->scu_why);
            return;
        }
        if (start_subop(op) == 0)
            return;
        count(op, &r->v[r->next], FAILED);
        r->next++;
        pending_rsp(op);
    }
}

int gw__retr_command(gw_op *op, const dcm_command *c, uint8_t pc_id)
{
    gw_retr *r = op->retr;
    if (!r->in_subop || c->message_id_responded != r->msg_id)
        return HR_EPROTO; /* a response to nothing we sent */
    on_store_rsp(op, c->status);
    return 0;
}

void gw__retr_sent(gw_op *op, int status)
{
    /* responses are sent without a completion callback */
}

/* ---- the destination association (C-MOVE) ---- */

static void scu_associated(void *arg, int rc, const char *why)
{
    gw_op *op = arg;
    gw_retr *r = op->retr;
    if (!op->a || r->finished)
        return;
    if (rc) {
        r->scu_lost = 1;
        snprintf(r->scu_why, sizeof(r->scu_why), "%s: %s", r->dest.ae_title, why);
        hr_warn("dicom", "%s: C-MOVE to %s: %s", op->a->peer, r->dest.ae_title, why);
        fail_remaining(op);
        finish(op, r->scu_why);
        return;
    }
    r->scu_ready = 1;
    next_subop(op);
}

static void scu_command(void *arg, const dcm_command *c, uint8_t pc_id)
{
    gw_op *op = arg;
    gw_retr *r = op->retr;
    if (!op->a)
        return;
    if (c->command_field != DCM_C_STORE_RSP || !r->in_subop ||
        c->message_id_responded != r->msg_id) {
        hr_warn("dicom", "%s: unexpected response %04X from %s", op->a->peer, c->command_field,
                r->dest.ae_title);
        return;
    }
    on_store_rsp(op, c->status);
}

static void scu_lost(void *arg, const char *why)
{
    gw_op *op = arg;
    gw_retr *r = op->retr;
    r->scu_lost = 1;
    snprintf(r->scu_why, sizeof(r->scu_why), "%s: %s", r->dest.ae_title, why);
    if (!op->a || r->finished)
        return;
    hr_warn("dicom", "%s: C-MOVE to %s: %s", op->a->peer, r->dest.ae_title, why);
    if (gw_xfer_running(&r->xfer)) {
        gw_xfer_stop(&r->xfer); /* its done callback counts it */
        return;
    }
    if (r->in_subop) {
        r->in_subop = 0;
        count(op, &r->v[r->next++], FAILED);
    }
    fail_remaining(op);
    finish(op, r->scu_why);
}

static void scu_closed(void *arg)
{
    gw_op *op = arg;
    op->retr->scu = NULL;
    gw__qr_maybe_free(op);
}

static int add_context(gw_scu_pc *pcs, int *n, const char *sop_class, const char *ts1,
                       const char *ts2)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(pcs[i].abstract_syntax, sop_class) == 0 && strcmp(pcs[i].ts[0], ts1) == 0)
            return 0;
    if (*n == DCM_MAX_PCS)
        return HR_ETOOBIG;
    gw_scu_pc *p = &pcs[(*n)++];
    memset(p, 0, sizeof(*p));
    snprintf(p->abstract_syntax, sizeof(p->abstract_syntax), "%s", sop_class);
    snprintf(p->ts[p->n_ts++], sizeof(p->ts[0]), "%s", ts1);
    if (ts2)
        snprintf(p->ts[p->n_ts++], sizeof(p->ts[0]), "%s", ts2);
    return 0;
}

/* Per SOP class: Explicit then Implicit VR LE; per other stored syntax
 * (Implicit VR LE included): that syntax alone, so the destination can accept
 * both and the stored bytes go as they are whenever it can take them. */
static void open_destination(gw_op *op)
{
    gw_retr *r = op->retr;
    gw_scu_pc *pcs = calloc(DCM_MAX_PCS, sizeof(*pcs));
    int n = 0, full = 0;
    if (!pcs) {
        finish(op, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        const sto_rinst *in = &r->v[i];
        full |= add_context(pcs, &n, in->sop_class, DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE) != 0;
        if (strcmp(in->ts, DCM_TS_EXPLICIT_LE) != 0 && in->ts[0])
            full |= add_context(pcs, &n, in->sop_class, in->ts, NULL) != 0;
    }
    if (full)
        hr_warn("dicom",
                "%s: more than %d presentation contexts needed for %s; some instances "
                "will fail",
                op->calling_ae, DCM_MAX_PCS, r->dest.ae_title);
    gw_scu_params p = {
        .host = r->dest.host,
        .port = r->dest.port,
        .calling_ae = op->our_ae,
        .called_ae = r->dest.ae_title,
        .max_pdu = r->our_max_pdu,
        .connect_timeout_ms = r->connect_timeout_ms,
        .progress_timeout_ms = r->progress_timeout_ms,
        .n_pc = n,
        .pc = pcs,
    };
    gw_scu_cbs cbs = {scu_associated, scu_command, scu_lost, scu_closed};
    int rc = gw_scu_open(op->loop, &p, &cbs, op, &r->scu);
    free(pcs);
    if (rc) {
        r->scu = NULL;
        snprintf(r->scu_why, sizeof(r->scu_why), "%s: cannot connect: %s", r->dest.ae_title,
                 hr_strerror(rc));
        fail_remaining(op);
        finish(op, r->scu_why);
    }
}

/* ---- the list of instances (thread pool) ---- */

static int add_instances(redisContext *c, gw_op *op, const char *study, const char *series,
                         const char *sop)
{
    gw_retr *r = op->retr;
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    if (r->n >= GW_RETRIEVE_MAX)
        return HR_ETOOBIG;
    int rc = sto_retrieve_list(c, &op->scope, study, series, sop, GW_RETRIEVE_MAX - r->n, &l);
    if (rc == HR_ENOTFOUND || rc == HR_EFORBIDDEN) {
        sto_rlist_free(&l); /* absent, or as if absent */
        return 0;
    }
    if (rc) {
        sto_rlist_free(&l);
        return rc;
    }
    sto_rinst *nv = realloc(r->v, (r->n + l.n) * sizeof(*nv));
    study_sum *s = NULL;
    for (size_t i = 0; nv && i < r->n_studies; i++)
        if (strcmp(r->studies[i].study, study) == 0)
            s = &r->studies[i];
    if (nv && !s && l.n) {
        study_sum *ns = realloc(r->studies, (r->n_studies + 1) * sizeof(*ns));
        if (ns) {
            r->studies = ns;
            s = &ns[r->n_studies++];
            memset(s, 0, sizeof(*s));
            snprintf(s->study, sizeof(s->study), "%s", study);
            snprintf(s->patient, sizeof(s->patient), "%s", l.patient);
        }
    }
    if (!nv || (!s && l.n)) {
        if (nv)
            r->v = nv;
        sto_rlist_free(&l);
        return -ENOMEM;
    }
    r->v = nv;
    memcpy(r->v + r->n, l.v, l.n * sizeof(*l.v));
    r->n += l.n;
    if (s)
        s->total += (unsigned)l.n;
    sto_rlist_free(&l);
    return 0;
}

/* Calls f for each '\'-separated value of list. */
static int each_uid(const char *list, int (*f)(void *, const char *), void *arg)
{
    char uid[STO_UID_BUF];
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, '\\');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && n < sizeof(uid)) {
            memcpy(uid, p, n);
            uid[n] = '\0';
            int rc = f(arg, uid);
            if (rc)
                return rc;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

typedef struct list_ctx {
    redisContext *c;
    gw_op *op;
} list_ctx;

static int add_study(void *arg, const char *uid)
{
    list_ctx *l = arg;
    return add_instances(l->c, l->op, uid, NULL, NULL);
}

static int add_series(void *arg, const char *uid)
{
    list_ctx *l = arg;
    return add_instances(l->c, l->op, l->op->retr->study, uid, NULL);
}

static int add_sop(void *arg, const char *uid)
{
    list_ctx *l = arg;
    gw_retr *r = l->op->retr;
    char study[STO_UID_BUF];
    if (r->study[0]) {
        snprintf(study, sizeof(study), "%s", r->study);
    } else {
        int rc = sto_retrieve_study_of(l->c, uid, study);
        if (rc == HR_ENOTFOUND)
            return 0;
        if (rc)
            return rc;
    }
    return add_instances(l->c, l->op, study, r->series[0] ? r->series : NULL, uid);
}

/* The studies of a patient, collected first: the query's replies are
 * pipelined on the connection the instance lookups then use. */
typedef struct pt_ctx {
    char **v;
    size_t n;
    int rc;
} pt_ctx;

static int on_patient_study(void *arg, const sto_qrow *row)
{
    pt_ctx *p = arg;
    char **nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
    char *s = nv ? strdup(row->v[0].value) : NULL;
    if (nv)
        p->v = nv;
    if (!s) {
        p->rc = -ENOMEM;
        return 1;
    }
    p->v[p->n++] = s;
    return 0;
}

static int patient_studies(list_ctx *l)
{
    gw_op *op = l->op;
    sto_query *q = calloc(1, sizeof(*q));
    pt_ctx p = {NULL, 0, 0};
    if (!q)
        return -ENOMEM;
    q->level = STO_Q_STUDY;
    q->hospital = sto_scope_filter(&op->scope);
    q->n_keys = 2;
    q->keys[0].tag = TAG(0x0020, 0x000D);
    q->keys[1].tag = TAG(0x0010, 0x0020);
    snprintf(q->keys[1].value, sizeof(q->keys[1].value), "%s", op->retr->pid);
    int rc = sto_query_run(l->c, q, on_patient_study, &p, NULL);
    if (!rc)
        rc = p.rc;
    for (size_t i = 0; i < p.n; i++) {
        if (!rc)
            rc = add_study(l, p.v[i]);
        free(p.v[i]);
    }
    free(p.v);
    free(q);
    return rc;
}

static void list_work(uv_work_t *w)
{
    gw_op *op = w->data;
    gw_retr *r = op->retr;
    list_ctx l = {sto_worker_redis(&op->redis, op->redis_timeout_ms), op};
    int rc = 0;
    if (!l.c) {
        r->list_rc = HR_EREDIS;
        return;
    }
    switch (r->level) {
    case STO_Q_PATIENT:
        rc = patient_studies(&l);
        break;
    case STO_Q_STUDY:
        rc = each_uid(r->study, add_study, &l);
        break;
    case STO_Q_SERIES:
        rc = each_uid(r->series, add_series, &l);
        break;
    case STO_Q_IMAGE:
        rc = each_uid(r->sop, add_sop, &l);
        break;
    }
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    r->list_rc = rc;
}

static void list_done(uv_work_t *w, int status)
{
    gw_op *op = w->data;
    gw_retr *r = op->retr;
    r->working = 0;
    op->pending--;
    if (!op->a) {
        gw__qr_maybe_free(op);
        return;
    }
    int rc = status < 0 ? status : r->list_rc;
    if (rc) {
        r->n = 0;
        r->n_studies = 0;
        gw__qr_audit(op, action(op), NULL, NULL, op->keys, "failure");
        gw__qr_final_status(op,
                            rc == HR_EREDIS || rc == HR_ETOOBIG ? GW_STATUS_RETR_NO_MATCH_COUNT
                                                                : DCM_STATUS_CANNOT_UNDERSTAND,
                            rc == HR_EREDIS    ? "index unavailable"
                            : rc == HR_ETOOBIG ? "more than 65535 instances: retrieve by series"
                                               : hr_strerror(rc));
        return;
    }
    hr_debug("dicom", "%s: %s %s: %zu instances in %zu studies", op->a->peer, action(op), op->keys,
             r->n, r->n_studies);
    if (r->n == 0 || gw__qr_cancelled(op)) {
        finish(op, NULL);
        return;
    }
    if (op->kind == GW_QR_MOVE)
        open_destination(op);
    else
        next_subop(op);
}

/* ---- start ---- */

static char *get_value(const dcm_ds *ds, uint32_t tag)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    size_t cap = (e ? e->len : 0) + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    if (e && dcm_elem_string(e, DCM_ALL_VALUES, s, cap) != 0)
        s[0] = '\0';
    return s;
}

static int is_uids(const char *v, int allow_list)
{
    enum dcm_match_kind k = dcm_match_kind("UI", v);
    return k == DCM_MATCH_SINGLE || (allow_list && k == DCM_MATCH_LIST);
}

/* Checks the identifier (PS3.4 C.4.2.2.1: unique keys; a list of UIDs at the
 * retrieve level). 0 or a status with comment. */
static uint16_t check_keys(gw_op *op, gw_retr *r, char comment[65])
{
    switch (r->level) {
    case STO_Q_PATIENT:
        if (op->model != GW_QR_PATIENT_ROOT) {
            snprintf(comment, 65, "PATIENT level is not part of the Study Root model");
            return DCM_STATUS_DS_MISMATCH;
        }
        if (dcm_match_kind("LO", r->pid) != DCM_MATCH_SINGLE) {
            snprintf(comment, 65, "PATIENT level needs one Patient ID");
            return DCM_STATUS_DS_MISMATCH;
        }
        return 0;
    case STO_Q_STUDY:
        if (!is_uids(r->study, 1)) {
            snprintf(comment, 65, "STUDY level needs Study Instance UIDs");
            return DCM_STATUS_DS_MISMATCH;
        }
        return 0;
    case STO_Q_SERIES:
        if (!is_uids(r->study, 0) || !is_uids(r->series, 1)) {
            snprintf(comment, 65, "SERIES level needs a Study and Series Instance UIDs");
            return DCM_STATUS_DS_MISMATCH;
        }
        return 0;
    case STO_Q_IMAGE:
        if ((r->study[0] && !is_uids(r->study, 0)) || (r->series[0] && !is_uids(r->series, 0)) ||
            !is_uids(r->sop, 1)) {
            snprintf(comment, 65, "IMAGE level needs SOP Instance UIDs");
            return DCM_STATUS_DS_MISMATCH;
        }
        return 0;
    }
    return DCM_STATUS_DS_MISMATCH;
}

static void note(gw_op *op, const char *name, const char *v)
{
    size_t n = strlen(op->keys);
    if (*v && n + 1 < sizeof(op->keys))
        snprintf(op->keys + n, sizeof(op->keys) - n, " %s=%s", name, v);
}

void gw__retr_start(gw_op *op, dcm_ds *ident)
{
    char comment[65] = "";
    gw_retr *r = calloc(1, sizeof(*r));
    if (!r) {
        dcm_ds_free(ident);
        gw__qr_final_status(op, DCM_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    op->retr = r;
    gw_xfer_init(&r->xfer, op->loop);
    hr_buf_init(&r->failed_uids, GW_FAILED_UIDS_MAX);
    const gw_dicom_server *srv = op->a->srv;
    r->our_max_pdu = srv->cfg->dicom.max_pdu;
    r->connect_timeout_ms = srv->cfg->dicom.artim_timeout_s * 1000;
    r->progress_timeout_ms = srv->cfg->dicom.idle_timeout_s * 1000;
    r->store = srv->sto->store;
    r->level = (enum sto_qlevel)gw__qr_level(op->level);
    r->study = get_value(ident, TAG(0x0020, 0x000D));
    r->series = get_value(ident, TAG(0x0020, 0x000E));
    r->sop = get_value(ident, TAG(0x0008, 0x0018));
    r->pid = get_value(ident, TAG(0x0010, 0x0020));
    dcm_ds_free(ident);
    if (!r->study || !r->series || !r->sop || !r->pid) {
        gw__qr_final_status(op, DCM_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    snprintf(op->keys, sizeof(op->keys), "level=%s", op->level);
    note(op, "PatientID", r->pid);
    note(op, "StudyInstanceUID", r->study);
    note(op, "SeriesInstanceUID", r->series);
    note(op, "SOPInstanceUID", r->sop);
    uint16_t st = check_keys(op, r, comment);
    if (st) {
        gw__qr_audit(op, action(op), NULL, NULL, op->keys, "failure");
        gw__qr_final_status(op, st, comment);
        return;
    }
    if (op->kind == GW_QR_MOVE) {
        const hr_hospital *owner = NULL;
        const hr_destination *d = hr_config_destination(srv->cfg, op->rq.move_destination, &owner);
        /* decision 0005: own hospital's destinations; county level: any */
        int allowed = d && (op->a->hospital->level == HR_LEVEL_COUNTY || owner == op->a->hospital);
        if (!allowed) {
            char detail[1200];
            snprintf(detail, sizeof(detail), "%s destination=%s (%s)", op->keys,
                     op->rq.move_destination, d ? "not permitted" : "unknown");
            gw__qr_audit(op, action(op), NULL, NULL, detail, "denied");
            gw__qr_final_status(op, GW_STATUS_MOVE_UNKNOWN_DEST,
                                d ? "Move Destination not permitted for this AE"
                                  : "Move Destination unknown");
            return;
        }
        r->dest = *d;
    }
    if (op->scope.none) {
        finish(op, NULL); /* sees nothing: no sub-operations */
        return;
    }
    r->work.data = op;
    int rc = uv_queue_work(op->loop, &r->work, list_work, list_done);
    if (rc) {
        gw__qr_final_status(op, GW_STATUS_RETR_NO_MATCH_COUNT, "cannot queue the lookup");
        return;
    }
    r->working = 1;
    op->pending++;
}
