/* Association sessions: bytes from the socket -> PDU framing -> PS3.8 state
 * table -> actions. DIMSE messages are handed to dimse_scp.c. The
 * association's lifecycle state is a->st (assoc_state.c); this file applies
 * its transitions: reading, A-RELEASE-RP, A-ABORT, deferred free. */
#include "assoc.h"
#include "qr.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (64 * 1024)

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void run_event(gw_assoc *a, enum dcm_event evt, uint8_t type, const uint8_t *body,
                      uint32_t len);

/* Established associations tick once a second: the idle timeout counts only
 * time spent waiting for the peer, and an association quiet for a second
 * gives back its big input buffer (idle associations stay small). */
static void on_timer(uv_timer_t *t)
{
    gw_assoc *a = t->data;
    enum dcm_state sta = gw__as_sta(&a->st);
    if (sta != DCM_STA6 && sta != DCM_STA8) {
        run_event(a, DCM_EVT18, 0, NULL, 0); /* ARTIM */
        return;
    }
    uint64_t now = uv_now(a->tcp.loop);
    const gw_op *op = gw__as_op(&a->st);
    if (gw__as_held(&a->st) || (op && gw__qr_busy(op)))
        a->last_activity = now; /* we are the slow side */
    uint64_t idle = now - a->last_activity;
    if (idle >= (uint64_t)a->srv->cfg->dicom.idle_timeout_s * 1000) {
        hr_warn("dicom", "%s: idle for %d s, aborting", a->peer, a->srv->cfg->dicom.idle_timeout_s);
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_NOT_SPECIFIED);
        return;
    }
    if (idle >= 1000 && gw__as_work(&a->st) == GW_WORK_NONE && a->in.pos == a->in.len) {
        hr_buf_shrink(&a->in, 0);
        hr_buf_shrink(&a->cmd, 0);
        hr_buf_shrink(&a->out, 0);
    }
}

static void artim_start(gw_assoc *a)
{
    uv_timer_start(&a->timer, on_timer, (uint64_t)a->srv->cfg->dicom.artim_timeout_s * 1000, 0);
}

static void idle_start(gw_assoc *a)
{
    a->last_activity = uv_now(a->tcp.loop);
    uv_timer_start(&a->timer, on_timer, 1000, 1000);
}

static int send_bytes(gw_assoc *a, const uint8_t *p, size_t n)
{
    if (gw__as_closing(&a->st))
        return HR_ESTATE;
    return gw__write_copy((uv_stream_t *)&a->tcp, p, n, NULL, NULL);
}

/* Sends whatever was encoded into a->out, then empties it. */
static int flush_out(gw_assoc *a)
{
    int rc = send_bytes(a, a->out.data, a->out.len);
    hr_buf_reset(&a->out);
    return rc;
}

int gw__assoc_send_message(gw_assoc *a, uint8_t pc_id, const dcm_command *c, const uint8_t *ds,
                           size_t ds_len, gw_sent_cb cb, void *arg)
{
    if (!gw__as_can_send(&a->st))
        return HR_ESTATE;
    /* one PDV per P-DATA-TF, each within the peer's maximum PDU length
     * (0 = unlimited; negotiation refuses maxima below GW_PEER_MIN_PDU) */
    hr_buf_reset(&a->out);
    int rc = gw__encode_message(&a->out, a->peer_max_pdu, pc_id, c, ds, ds_len);
    if (!rc)
        rc = gw__write_copy((uv_stream_t *)&a->tcp, a->out.data, a->out.len, cb, arg);
    hr_buf_reset(&a->out);
    return rc;
}

int gw__assoc_send_command(gw_assoc *a, uint8_t pc_id, const dcm_command *c)
{
    return gw__assoc_send_message(a, pc_id, c, NULL, 0, NULL, NULL);
}

/* ---- lifecycle ---- */

static void assoc_free(gw_assoc *a)
{
    gw_dicom_server *srv = a->srv;
    hr_buf_free(&a->in);
    hr_buf_free(&a->cmd);
    hr_buf_free(&a->out);
    if (a->admitted)
        srv->stats.connections_open--;
    free(a);
    srv->n_conns--;
    gw__server_maybe_done(srv);
}

static void on_closed(uv_handle_t *h)
{
    gw_assoc *a = h->data;
    if (gw__as_handle_closed(&a->st) == GW_AS_FREE)
        assoc_free(a);
}

/* The work is let go: a Q/R operation is detached, an object still being
 * received is dropped; one being made durable completes (its done callback
 * then finds the association aborted or closing). */
static void let_go(gw_op *detach, sto_ingest *drop)
{
    if (detach)
        gw__qr_detach(detach);
    if (drop)
        sto_ingest_abort(drop);
}

void gw__assoc_close(gw_assoc *a)
{
    gw_op *detach;
    sto_ingest *drop;
    if (gw__as_close(&a->st, 2, &detach, &drop) != 0)
        return; /* closing already */
    let_go(detach, drop);
    if (a->counted) {
        a->srv->stats.associations_active--;
        a->counted = 0;
    }
    if (a->prev)
        a->prev->next = a->next;
    else
        a->srv->assocs = a->next;
    if (a->next)
        a->next->prev = a->prev;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, on_closed);
    /* a refused connection is reset: no TIME_WAIT left behind on our side */
    if (!a->reset || uv_tcp_close_reset(&a->tcp, on_closed) != 0)
        uv_close((uv_handle_t *)&a->tcp, on_closed);
}

void gw__assoc_abort(gw_assoc *a, uint8_t source, uint8_t reason)
{
    gw_op *detach;
    sto_ingest *drop;
    if (gw__as_abort(&a->st, &detach, &drop) != 0)
        return; /* closing */
    a->srv->stats.associations_aborted++;
    let_go(detach, drop);
    hr_buf_reset(&a->out);
    if (dcm_pdu_encode_abort(source, reason, &a->out) == 0)
        flush_out(a);
    artim_start(a);
}

static void stop_reading(gw_assoc *a)
{
    if (a->reading) {
        uv_read_stop((uv_stream_t *)&a->tcp);
        a->reading = 0;
    }
}

int gw__assoc_store_full(gw_assoc *a)
{
    int rc = gw__as_store_full(&a->st);
    if (!rc)
        stop_reading(a);
    return rc;
}

int gw__assoc_store_end(gw_assoc *a)
{
    int rc = gw__as_store_end(&a->st);
    if (!rc)
        stop_reading(a);
    return rc;
}

enum gw_as_do gw__assoc_store_done(gw_assoc *a)
{
    enum gw_as_do d = gw__as_store_done(&a->st);
    if (d == GW_AS_FREE)
        assoc_free(a);
    return d;
}

static void do_release_response(gw_assoc *a);

void gw__assoc_resume(gw_assoc *a)
{
    enum gw_as_do d = gw__as_resume(&a->st);
    if (d == GW_AS_NOTHING)
        return; /* closing */
    a->last_activity = uv_now(a->tcp.loop);
    if (d == GW_AS_RELEASE_RP) {
        do_release_response(a);
        return;
    }
    gw__assoc_process(a);
    if (gw__as_may_process(&a->st) && !a->reading) {
        a->reading = 1;
        uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_read);
    }
}

void gw__assoc_op_done(gw_assoc *a, const gw_op *op)
{
    if (gw__as_closing(&a->st))
        return;
    a->last_activity = uv_now(a->tcp.loop);
    if (gw__as_op_end(&a->st, op) == GW_AS_RELEASE_RP)
        do_release_response(a);
}

void gw__assoc_touch(gw_assoc *a)
{
    a->last_activity = uv_now(a->tcp.loop);
}

/* ---- state machine actions ---- */

static void do_associate(gw_assoc *a, const uint8_t *body, uint32_t len)
{
    uint8_t rj[3];
    dcm_assoc_rq *rq = malloc(sizeof(*rq));
    dcm_assoc_ac *ac = malloc(sizeof(*ac));
    if (!rq || !ac) {
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_NOT_SPECIFIED);
        goto out;
    }
    int rc = dcm_pdu_parse_assoc_rq(body, len, rq);
    if (rc) {
        hr_warn("dicom", "%s: malformed A-ASSOCIATE-RQ: %s", a->peer, hr_strerror(rc));
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_INVALID_PARAM);
        goto out;
    }
    hr_buf_reset(&a->out);
    if (gw__negotiate(a, rq, ac, rj) == 0) {
        /* AE-7 */
        rc = dcm_pdu_encode_assoc_ac(ac, &a->out);
        if (rc == 0)
            rc = flush_out(a);
        if (rc) {
            gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_NOT_SPECIFIED);
            goto out;
        }
        rc = gw__as_associated(&a->st);
        HR_ASSERT(rc == 0); /* AE-6 runs in Sta2 only */
        a->counted = 1;
        a->srv->stats.associations_active++;
        a->srv->stats.associations_total++;
        idle_start(a);
    } else {
        /* AE-8 */
        a->srv->stats.associations_rejected++;
        if (dcm_pdu_encode_assoc_rj(rj[0], rj[1], rj[2], &a->out) == 0)
            flush_out(a);
        rc = gw__as_rejected(&a->st);
        HR_ASSERT(rc == 0);
        artim_start(a);
    }
out:
    free(rq);
    free(ac);
}

/* AR-4: send A-RELEASE-RP, start ARTIM (a->st is in Sta13 already). */
static void do_release_response(gw_assoc *a)
{
    hr_buf_reset(&a->out);
    if (dcm_pdu_encode_release_rp(&a->out) == 0)
        flush_out(a);
    artim_start(a);
    hr_debug("dicom", "%s: released", a->peer);
}

static void do_data(gw_assoc *a, const uint8_t *body, uint32_t len)
{
    uint32_t off = 0;
    dcm_pdv pdv;
    int rc;
    while ((rc = dcm_pdata_next(body, len, &off, &pdv)) == 1) {
        rc = gw__dimse_pdv(a, &pdv);
        if (rc) {
            hr_warn("dicom", "%s: aborting: %s", a->peer, hr_strerror(rc));
            gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_INVALID_PARAM);
            return;
        }
        if (gw__as_closing(&a->st) || gw__as_sta(&a->st) != DCM_STA6)
            return;
    }
    if (rc < 0) {
        hr_warn("dicom", "%s: malformed P-DATA-TF", a->peer);
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_INVALID_PARAM);
    }
}

static void run_event(gw_assoc *a, enum dcm_event evt, uint8_t type, const uint8_t *body,
                      uint32_t len)
{
    enum dcm_state sta = gw__as_sta(&a->st);
    dcm_transition t = dcm_fsm_next(sta, evt);
    hr_debug("dicom", "%s: %s %s -> %s", a->peer, dcm_state_name(sta), dcm_event_name(evt),
             dcm_action_name(t.action));
    switch (t.action) {
    case DCM_AE_6:
        uv_timer_stop(&a->timer);
        do_associate(a, body, len);
        return;
    case DCM_DT_2:
        do_data(a, body, len);
        return;
    case DCM_AR_2:
        /* A-RELEASE indication; our response (AR-4) follows at once unless
         * work is under way (assoc_state.c) */
        if (gw__as_work(&a->st) == GW_WORK_STORE)
            /* release in the middle of a data set: the object can never
             * complete, so the association is aborted and the object dropped */
            hr_warn("dicom", "%s: A-RELEASE-RQ in the middle of an object; aborting", a->peer);
        else if (gw__as_op(&a->st))
            /* the operation ends as cancelled; in the middle of its
             * identifier nothing can be answered: abort */
            hr_warn("dicom", "%s: A-RELEASE-RQ during a query/retrieve; cancelling it", a->peer);
        switch (gw__as_release_rq(&a->st)) {
        case GW_AS_RELEASE_RP:
            do_release_response(a);
            return;
        case GW_AS_CANCEL_OP:
            if (gw__qr_cancel(gw__as_op(&a->st)) != 0)
                gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_UNEXPECTED_PDU);
            return;
        case GW_AS_ABORT:
            gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_UNEXPECTED_PDU);
            return;
        default:
            return; /* answered once the object is durable */
        }
    case DCM_AA_3: /* peer aborted */
    case DCM_AA_4: /* transport closed */
    case DCM_AA_5:
    case DCM_AA_2:
    case DCM_AR_5:
        if (t.action == DCM_AA_3 || (t.action == DCM_AA_4 && sta != DCM_STA13)) {
            a->srv->stats.associations_aborted += t.action == DCM_AA_3;
            if (gw__as_has_object(&a->st))
                hr_warn("dicom", "%s: association ended during an object; nothing of it is kept",
                        a->peer);
        }
        gw__assoc_close(a);
        return;
    case DCM_AA_6:
        return; /* ignore PDU in Sta13 */
    case DCM_AA_7:
        /* Sta13: answer with an A-ABORT PDU, ARTIM keeps running */
        hr_buf_reset(&a->out);
        if (dcm_pdu_encode_abort(DCM_ABORT_SRC_PROVIDER, DCM_ABORT_UNEXPECTED_PDU, &a->out) == 0)
            flush_out(a);
        return;
    case DCM_AA_1:
        gw__assoc_abort(a, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED);
        return;
    case DCM_AA_8:
    case DCM_ACT_INVALID:
    default:
        hr_warn("dicom", "%s: unexpected %s (PDU type %u) in %s", a->peer, dcm_event_name(evt),
                type, dcm_state_name(sta));
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER,
                        evt == DCM_EVT19 ? DCM_ABORT_UNRECOGNIZED_PDU : DCM_ABORT_UNEXPECTED_PDU);
        return;
    }
}

/* Handles every whole PDU in the input buffer until paused or closing. */
void gw__assoc_process(gw_assoc *a)
{
    while (gw__as_may_process(&a->st)) {
        uint8_t type;
        uint32_t body_len;
        /* until associated, only a small A-ASSOCIATE-RQ is worth buffering */
        uint32_t max = a->counted ? a->srv->cfg->dicom.max_pdu : GW_RQ_MAX_LEN;
        int rc =
            dcm_pdu_frame(a->in.data + a->in.pos, a->in.len - a->in.pos, max, &type, &body_len);
        if (rc == 0)
            break;
        if (rc < 0) {
            hr_warn("dicom", "%s: %s PDU (%s), aborting", a->peer,
                    rc == HR_ETOOBIG ? "oversized" : "unrecognized", hr_strerror(rc));
            a->in.pos = a->in.len;
            if (gw__as_sta(&a->st) == DCM_STA13)
                break;
            if (gw__as_sta(&a->st) == DCM_STA2) {
                /* not associated: no need to be polite beyond an A-ABORT */
                gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_UNRECOGNIZED_PDU);
                break;
            }
            run_event(a, DCM_EVT19, 0, NULL, 0);
            break;
        }
        const uint8_t *body = a->in.data + a->in.pos + DCM_PDU_HEADER_LEN;
        a->in.pos += DCM_PDU_HEADER_LEN + body_len;
        run_event(a, dcm_pdu_event(type), type, body, body_len);
    }
    if (a->in.pos == a->in.len) {
        hr_buf_reset(&a->in); /* storage kept for the next PDU; the tick shrinks it */
    } else if (a->in.pos > 0 && a->in.pos >= a->in.len / 2) {
        hr_buf_compact(&a->in);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    gw_assoc *a = h->data;
    size_t want = READ_CHUNK;
    /* when a big PDU is under way, make room for all of it at once */
    size_t have = a->in.len - a->in.pos;
    if (have >= DCM_PDU_HEADER_LEN) {
        const uint8_t *p = a->in.data + a->in.pos;
        size_t total = DCM_PDU_HEADER_LEN +
                       ((size_t)p[2] << 24 | (size_t)p[3] << 16 | (size_t)p[4] << 8 | (size_t)p[5]);
        if (total > have && total - have > want)
            want = total - have;
    }
    if (a->in.pos && a->in.alloc - a->in.len < want)
        hr_buf_compact(&a->in);
    if (hr_buf_reserve(&a->in, want) != 0 && hr_buf_reserve(&a->in, 1) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)a->in.data + a->in.len;
    buf->len = a->in.alloc - a->in.len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_assoc *a = s->data;
    if (nread == UV_ENOBUFS) {
        /* the input buffer is at its cap: the frame check aborts */
        gw__assoc_process(a);
        gw__assoc_abort(a, DCM_ABORT_SRC_PROVIDER, DCM_ABORT_NOT_SPECIFIED);
        return;
    }
    if (nread < 0) {
        run_event(a, DCM_EVT17, 0, NULL, 0);
        return;
    }
    a->in.len += (size_t)nread;
    a->last_activity = uv_now(s->loop);
    gw__assoc_process(a);
}

void gw__assoc_start(gw_dicom_server *srv, gw_assoc *a)
{
    a->srv = srv;
    gw__as_start(&a->st); /* AE-5: connection accepted, ARTIM started */
    a->tcp.data = a;
    a->timer.data = a;
    hr_buf_init(&a->in, (size_t)srv->cfg->dicom.max_pdu + DCM_PDU_HEADER_LEN + READ_CHUNK);
    hr_buf_init(&a->cmd, DCM_CMD_MAX_LEN);
    hr_buf_init(&a->out, 1024 * 1024);
    uv_tcp_nodelay(&a->tcp, 1);
    artim_start(a);
    a->reading = 1;
    uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_read);
}
