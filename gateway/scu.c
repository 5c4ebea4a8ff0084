/* Outbound association: bytes -> PDU framing -> PS3.8 state table -> actions,
 * the requestor's half of the table (AE-1..AE-4, DT-2, AR-1, AR-3, AA-*). */
#include "scu.h"
#include "assoc.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/assoc_fsm.h"
#include "../dicom/uids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS       250
#define READ_CHUNK    (64 * 1024)
#define SCU_MAX_ADDRS 8

struct gw_scu {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    gw_scu_cbs cbs;
    void *arg;
    enum dcm_state state;
    char host[256];
    char port[8];
    char calling[DCM_AE_MAX], called[DCM_AE_MAX];
    char peer[300]; /* "AE@host:port" for logs */
    uint32_t max_pdu, peer_max_pdu;
    int connect_timeout_ms, progress_timeout_ms;
    int n_pc;
    gw_scu_pc pc[DCM_MAX_PCS];
    hr_buf in, cmd;
    uint8_t cmd_pc;
    uint64_t deadline;      /* Sta4/5/7/13: give up at this loop time */
    uint64_t last_progress; /* Sta6 */
    int busy;
    int reported;      /* associated() was called */
    int associated_ok; /* ... with 0 */
    int lost_reported;
    int user_abort; /* gw_scu_abort(): no lost() */
    int gai_pending;
    int reading;
    int closing; /* handles being closed: count of close callbacks due + 1 */
    /* every address the name resolved to, tried in order until one connects
     * ("localhost" is often ::1 first while a peer listens on IPv4 only) */
    struct sockaddr_storage addrs[SCU_MAX_ADDRS];
    int n_addrs, next_addr;
    int reconnecting; /* tcp is being closed to try the next address */
    int close_now;    /* close once the A-ABORT PDU is written */
};

static void run_event(gw_scu *s, enum dcm_event evt, uint8_t type, const uint8_t *body,
                      uint32_t len);

/* ---- lifecycle ---- */

static void maybe_free(gw_scu *s)
{
    if (s->closing != 1 || s->gai_pending)
        return;
    gw_scu_cbs cbs = s->cbs;
    void *arg = s->arg;
    hr_buf_free(&s->in);
    hr_buf_free(&s->cmd);
    free(s);
    if (cbs.closed)
        cbs.closed(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    gw_scu *s = h->data;
    s->closing--;
    maybe_free(s);
}

static void report_associated(gw_scu *s, int rc, const char *why)
{
    if (s->reported)
        return;
    s->reported = 1;
    s->associated_ok = rc == 0;
    if (s->cbs.associated)
        s->cbs.associated(s->arg, rc, why);
}

/* The association can carry nothing more. */
static void report_lost(gw_scu *s, const char *why)
{
    if (!s->reported) {
        report_associated(s, HR_EPROTO, why);
        return;
    }
    if (!s->associated_ok || s->lost_reported || s->user_abort)
        return;
    s->lost_reported = 1;
    if (s->cbs.lost)
        s->cbs.lost(s->arg, why);
}

static void scu_close(gw_scu *s, const char *why)
{
    if (s->closing)
        return;
    report_lost(s, why);
    s->state = DCM_STA1;
    s->closing = 3; /* two handles; freed when the count reaches 1 */
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->gai);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    if (!s->reconnecting) /* else its close is under way and counts */
        uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

static void on_abort_written(void *arg, int status)
{
    gw_scu *s = arg;
    if (s->close_now)
        scu_close(s, "aborted");
}

/* AA-1 / AA-8: A-ABORT PDU, then the transport goes (Sta13 without waiting
 * for the peer: we are the requestor and want nothing more from it). */
static void send_abort(gw_scu *s, uint8_t source, uint8_t reason, const char *why)
{
    if (s->closing || s->close_now)
        return;
    report_lost(s, why);
    hr_buf b;
    hr_buf_init(&b, 64);
    s->state = DCM_STA13;
    s->close_now = 1;
    s->deadline = uv_now(s->loop) + 1000;
    if (dcm_pdu_encode_abort(source, reason, &b) != 0 ||
        gw__write_copy((uv_stream_t *)&s->tcp, b.data, b.len, on_abort_written, s) != 0)
        scu_close(s, why);
    hr_buf_free(&b);
}

static int send_pdu(gw_scu *s, hr_buf *b)
{
    return gw__write_copy((uv_stream_t *)&s->tcp, b->data, b->len, NULL, NULL);
}

/* ---- actions ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* AE-2: send A-ASSOCIATE-RQ. */
static void do_send_rq(gw_scu *s)
{
    dcm_assoc_rq *rq = calloc(1, sizeof(*rq));
    hr_buf b;
    hr_buf_init(&b, 1 << 20);
    int rc = rq ? 0 : -ENOMEM;
    if (!rc) {
        rq->protocol_version = 1;
        snprintf(rq->called_ae, sizeof(rq->called_ae), "%s", s->called);
        snprintf(rq->calling_ae, sizeof(rq->calling_ae), "%s", s->calling);
        snprintf(rq->app_context, sizeof(rq->app_context), "%s", DCM_UID_APP_CONTEXT);
        rq->max_pdu = s->max_pdu;
        snprintf(rq->impl_class_uid, sizeof(rq->impl_class_uid), "%s", HR_IMPL_CLASS_UID);
        snprintf(rq->impl_version, sizeof(rq->impl_version), "%s", HR_IMPL_VERSION);
        rq->n_pc = s->n_pc;
        for (int i = 0; i < s->n_pc; i++) {
            rq->pc[i].id = s->pc[i].id;
            snprintf(rq->pc[i].abstract_syntax, sizeof(rq->pc[i].abstract_syntax), "%s",
                     s->pc[i].abstract_syntax);
            rq->pc[i].n_ts = (uint8_t)s->pc[i].n_ts;
            for (int j = 0; j < s->pc[i].n_ts; j++)
                snprintf(rq->pc[i].ts[j], sizeof(rq->pc[i].ts[j]), "%s", s->pc[i].ts[j]);
        }
        rc = dcm_pdu_encode_assoc_rq(rq, &b);
    }
    if (!rc)
        rc = send_pdu(s, &b);
    free(rq);
    hr_buf_free(&b);
    if (rc) {
        scu_close(s, "cannot send A-ASSOCIATE-RQ");
        return;
    }
    s->state = DCM_STA5;
    s->reading = 1;
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
}

/* AE-3: A-ASSOCIATE-AC received. */
static void do_accepted(gw_scu *s, const uint8_t *body, uint32_t len)
{
    dcm_assoc_ac *ac = calloc(1, sizeof(*ac));
    if (!ac || dcm_pdu_parse_assoc_ac(body, len, ac) != 0) {
        free(ac);
        send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED, "malformed A-ASSOCIATE-AC");
        return;
    }
    s->peer_max_pdu = ac->max_pdu;
    if (s->peer_max_pdu != 0 && s->peer_max_pdu < GW_PEER_MIN_PDU) {
        free(ac);
        send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED,
                   "peer's maximum PDU length is too small");
        return;
    }
    int n_ok = 0;
    for (int i = 0; i < s->n_pc; i++) {
        s->pc[i].result = DCM_PC_NO_REASON;
        for (int j = 0; j < ac->n_pc; j++) {
            if (ac->pc[j].id != s->pc[i].id)
                continue;
            s->pc[i].result = ac->pc[j].result;
            if (ac->pc[j].result == DCM_PC_ACCEPT) {
                /* the accepted syntax must be one we proposed */
                int proposed = 0;
                for (int k = 0; k < s->pc[i].n_ts; k++)
                    proposed |= strcmp(s->pc[i].ts[k], ac->pc[j].ts) == 0;
                if (!proposed)
                    s->pc[i].result = DCM_PC_NO_REASON;
                snprintf(s->pc[i].accepted_ts, sizeof(s->pc[i].accepted_ts), "%s", ac->pc[j].ts);
            }
        }
        n_ok += s->pc[i].result == DCM_PC_ACCEPT;
    }
    free(ac);
    s->state = DCM_STA6;
    s->last_progress = uv_now(s->loop);
    hr_info("dicom", "%s: associated, %d of %d contexts accepted", s->peer, n_ok, s->n_pc);
    report_associated(s, 0, NULL);
}

/* AE-4: A-ASSOCIATE-RJ received. */
static void do_rejected(gw_scu *s, const uint8_t *body, uint32_t len)
{
    uint8_t result = 0, source = 0, reason = 0;
    char why[96];
    dcm_pdu_parse_assoc_rj(body, len, &result, &source, &reason);
    snprintf(why, sizeof(why), "association rejected (result %u, source %u, reason %u)", result,
             source, reason);
    report_associated(s, HR_EPROTO, why);
    scu_close(s, why);
}

static int on_pdv(gw_scu *s, const dcm_pdv *pdv)
{
    if (!pdv->is_command)
        return HR_EPROTO; /* a C-STORE SCU expects no data sets */
    if (s->cmd.len && pdv->pc_id != s->cmd_pc)
        return HR_EPROTO;
    s->cmd_pc = pdv->pc_id;
    int rc = hr_buf_append(&s->cmd, pdv->data, pdv->len);
    if (rc || !pdv->is_last)
        return rc;
    dcm_command c;
    rc = dcm_command_parse(s->cmd.data, s->cmd.len, &c);
    hr_buf_reset(&s->cmd);
    if (rc)
        return rc;
    if (!dcm_command_is_response(c.command_field) || c.data_set_type != DCM_DATASET_NONE)
        return HR_EPROTO;
    s->last_progress = uv_now(s->loop);
    if (s->cbs.command)
        s->cbs.command(s->arg, &c, pdv->pc_id);
    return 0;
}

/* DT-2 (Sta6) and AR-6 (Sta7). */
static void do_data(gw_scu *s, const uint8_t *body, uint32_t len)
{
    uint32_t off = 0;
    dcm_pdv pdv;
    int rc;
    while ((rc = dcm_pdata_next(body, len, &off, &pdv)) == 1) {
        rc = on_pdv(s, &pdv);
        if (rc)
            break;
        if (s->closing || s->close_now)
            return;
    }
    if (rc < 0)
        send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED,
                   "unexpected or malformed P-DATA");
}

static void run_event(gw_scu *s, enum dcm_event evt, uint8_t type, const uint8_t *body,
                      uint32_t len)
{
    if (s->closing)
        return;
    dcm_transition t = dcm_fsm_next(s->state, evt);
    hr_debug("dicom", "%s: %s %s -> %s", s->peer, dcm_state_name(s->state), dcm_event_name(evt),
             dcm_action_name(t.action));
    switch (t.action) {
    case DCM_AE_2:
        do_send_rq(s);
        return;
    case DCM_AE_3:
        do_accepted(s, body, len);
        return;
    case DCM_AE_4:
        do_rejected(s, body, len);
        return;
    case DCM_DT_2:
    case DCM_AR_6:
        do_data(s, body, len);
        return;
    case DCM_AR_1: {
        hr_buf b;
        hr_buf_init(&b, 64);
        int rc = dcm_pdu_encode_release_rq(&b);
        if (!rc)
            rc = send_pdu(s, &b);
        hr_buf_free(&b);
        if (rc) {
            scu_close(s, "cannot send A-RELEASE-RQ");
            return;
        }
        s->state = DCM_STA7;
        s->deadline = uv_now(s->loop) + (uint64_t)s->connect_timeout_ms;
        return;
    }
    case DCM_AR_3:         /* A-RELEASE-RP: done */
        s->user_abort = 1; /* a completed release is no loss */
        scu_close(s, "released");
        return;
    case DCM_AR_2: {
        /* the peer asks to release: answer (AR-4) and go */
        report_lost(s, "the peer released the association");
        hr_buf b;
        hr_buf_init(&b, 64);
        if (dcm_pdu_encode_release_rp(&b) == 0)
            send_pdu(s, &b);
        hr_buf_free(&b);
        s->state = DCM_STA13;
        s->deadline = uv_now(s->loop) + (uint64_t)s->connect_timeout_ms;
        return;
    }
    case DCM_AA_1:
        send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED, "aborted");
        return;
    case DCM_AA_2:
    case DCM_AA_3:
    case DCM_AA_4:
    case DCM_AA_5:
    case DCM_AR_5:
        scu_close(s, t.action == DCM_AA_3   ? "the peer aborted the association"
                     : t.action == DCM_AA_2 ? "timed out"
                                            : "the connection closed");
        return;
    case DCM_AA_6:
        return; /* ignore PDUs in Sta13 */
    case DCM_AA_7:
    case DCM_AA_8:
    case DCM_ACT_INVALID:
    default:
        hr_warn("dicom", "%s: unexpected %s (PDU type %u) in %s", s->peer, dcm_event_name(evt),
                type, dcm_state_name(s->state));
        if (s->state == DCM_STA13) {
            scu_close(s, "unexpected PDU");
            return;
        }
        send_abort(s, DCM_ABORT_SRC_PROVIDER,
                   evt == DCM_EVT19 ? DCM_ABORT_UNRECOGNIZED_PDU : DCM_ABORT_UNEXPECTED_PDU,
                   "unexpected PDU");
        return;
    }
}

static void process(gw_scu *s)
{
    while (!s->closing && !s->close_now) {
        uint8_t type;
        uint32_t body_len;
        int rc = dcm_pdu_frame(s->in.data + s->in.pos, s->in.len - s->in.pos, s->max_pdu, &type,
                               &body_len);
        if (rc == 0)
            break;
        if (rc < 0) {
            s->in.pos = s->in.len;
            run_event(s, DCM_EVT19, 0, NULL, 0);
            break;
        }
        const uint8_t *body = s->in.data + s->in.pos + DCM_PDU_HEADER_LEN;
        s->in.pos += DCM_PDU_HEADER_LEN + body_len;
        run_event(s, dcm_pdu_event(type), type, body, body_len);
    }
    if (s->closing)
        return;
    if (s->in.pos == s->in.len)
        hr_buf_reset(&s->in);
    else if (s->in.pos > 0 && s->in.pos >= s->in.len / 2)
        hr_buf_compact(&s->in);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    gw_scu *s = h->data;
    if (s->in.pos && s->in.alloc - s->in.len < READ_CHUNK)
        hr_buf_compact(&s->in);
    if (hr_buf_reserve(&s->in, READ_CHUNK) != 0 && hr_buf_reserve(&s->in, 1) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)s->in.data + s->in.len;
    buf->len = s->in.alloc - s->in.len;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    gw_scu *s = st->data;
    if (s->closing)
        return;
    if (nread == UV_ENOBUFS) {
        send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED, "input buffer full");
        return;
    }
    if (nread < 0) {
        run_event(s, DCM_EVT17, 0, NULL, 0);
        return;
    }
    s->in.len += (size_t)nread;
    process(s);
}

static void on_connect(uv_connect_t *req, int status);

/* Connects to the next resolved address. 0 or a libuv error. */
static int connect_next(gw_scu *s)
{
    if (s->next_addr >= s->n_addrs)
        return UV_EAI_NONAME;
    return uv_tcp_connect(&s->conn, &s->tcp, (const struct sockaddr *)&s->addrs[s->next_addr++],
                          on_connect);
}

static void connect_failed(gw_scu *s, int rc)
{
    char why[300];
    snprintf(why, sizeof(why), "cannot connect to %s:%s: %s", s->host, s->port, uv_strerror(rc));
    report_associated(s, rc, why);
    scu_close(s, why);
}

/* The socket of a refused address is closed: a new one for the next. */
static void on_reconnect_closed(uv_handle_t *h)
{
    gw_scu *s = h->data;
    s->reconnecting = 0;
    if (s->closing) { /* closed meanwhile: this was the tcp handle's close */
        on_handle_closed(h);
        return;
    }
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    int rc = connect_next(s);
    if (rc)
        connect_failed(s, rc);
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_scu *s = req->data;
    if (s->closing)
        return;
    if (status < 0 && s->next_addr < s->n_addrs && status != UV_ECANCELED) {
        hr_debug("dicom", "%s: %s; trying the next address", s->peer, uv_strerror(status));
        s->reconnecting = 1;
        uv_close((uv_handle_t *)&s->tcp, on_reconnect_closed);
        return;
    }
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "cannot connect: %s", uv_strerror(status));
        report_associated(s, status, why);
        run_event(s, DCM_EVT17, 0, NULL, 0);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    run_event(s, DCM_EVT2, 0, NULL, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_scu *s = req->data;
    s->gai_pending = 0;
    if (s->closing) {
        uv_freeaddrinfo(res);
        maybe_free(s);
        return;
    }
    int rc = status;
    for (struct addrinfo *a = res; !rc && a && s->n_addrs < SCU_MAX_ADDRS; a = a->ai_next)
        if (a->ai_addrlen <= sizeof(s->addrs[0]))
            memcpy(&s->addrs[s->n_addrs++], a->ai_addr, a->ai_addrlen);
    uv_freeaddrinfo(res);
    if (!rc)
        rc = connect_next(s);
    if (rc)
        connect_failed(s, rc);
}

static void on_tick(uv_timer_t *t)
{
    gw_scu *s = t->data;
    uint64_t now = uv_now(s->loop);
    switch (s->state) {
    case DCM_STA6:
        if (s->busy && now - s->last_progress >= (uint64_t)s->progress_timeout_ms) {
            hr_warn("dicom", "%s: no progress for %d ms, aborting", s->peer,
                    s->progress_timeout_ms);
            send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED, "timed out");
        }
        return;
    case DCM_STA4:
    case DCM_STA5:
    case DCM_STA7:
        if (now >= s->deadline) {
            hr_warn("dicom", "%s: timed out in %s", s->peer, dcm_state_name(s->state));
            if (s->state == DCM_STA4)
                scu_close(s, "timed out connecting");
            else
                send_abort(s, DCM_ABORT_SRC_USER, DCM_ABORT_NOT_SPECIFIED, "timed out");
        }
        return;
    case DCM_STA13:
        if (now >= s->deadline)
            run_event(s, DCM_EVT18, 0, NULL, 0);
        return;
    default:
        return;
    }
}

int gw_scu_open(uv_loop_t *loop, const gw_scu_params *p, const gw_scu_cbs *cbs, void *arg,
                gw_scu **out)
{
    if (p->n_pc < 1 || p->n_pc > DCM_MAX_PCS || strlen(p->calling_ae) >= DCM_AE_MAX ||
        strlen(p->called_ae) >= DCM_AE_MAX || p->port < 1 || p->port > 65535)
        return HR_EPARSE;
    gw_scu *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cbs = *cbs;
    s->arg = arg;
    s->state = DCM_STA1;
    snprintf(s->host, sizeof(s->host), "%s", p->host);
    snprintf(s->port, sizeof(s->port), "%d", p->port);
    snprintf(s->calling, sizeof(s->calling), "%s", p->calling_ae);
    snprintf(s->called, sizeof(s->called), "%s", p->called_ae);
    snprintf(s->peer, sizeof(s->peer), "%s@%s:%d", p->called_ae, p->host, p->port);
    s->max_pdu = p->max_pdu;
    s->connect_timeout_ms = p->connect_timeout_ms;
    s->progress_timeout_ms = p->progress_timeout_ms;
    s->n_pc = p->n_pc;
    for (int i = 0; i < p->n_pc; i++) {
        s->pc[i] = p->pc[i];
        s->pc[i].id = (uint8_t)(2 * i + 1);
        s->pc[i].result = DCM_PC_NO_REASON;
        s->pc[i].accepted_ts[0] = '\0';
    }
    hr_buf_init(&s->in, (size_t)s->max_pdu + DCM_PDU_HEADER_LEN + READ_CHUNK);
    hr_buf_init(&s->cmd, DCM_CMD_MAX_LEN);
    uv_tcp_init(loop, &s->tcp);
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->gai.data = s->conn.data = s;
    /* AE-1: issue a transport connect request (resolve first) */
    s->state = DCM_STA4;
    s->deadline = uv_now(loop) + (uint64_t)s->connect_timeout_ms;
    uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai_pending = 1;
    int rc = uv_getaddrinfo(loop, &s->gai, on_resolved, s->host, s->port, &hints);
    if (rc) {
        s->gai_pending = 0;
        s->reported = 1; /* the caller gets the error instead */
        s->cbs.closed = NULL;
        scu_close(s, "cannot resolve");
        return rc;
    }
    *out = s;
    return 0;
}

void gw_scu_release(gw_scu *s)
{
    if (s->closing || s->close_now)
        return;
    if (s->state == DCM_STA6) {
        run_event(s, DCM_EVT11, 0, NULL, 0);
        return;
    }
    gw_scu_abort(s);
}

void gw_scu_abort(gw_scu *s)
{
    if (s->closing)
        return;
    s->user_abort = 1;
    if (!s->reported)
        report_associated(s, HR_ESTATE, "aborted");
    if (s->close_now)
        return;
    if (s->state == DCM_STA4 || s->state == DCM_STA13) {
        scu_close(s, "aborted"); /* AA-2: no association to tell */
        return;
    }
    run_event(s, DCM_EVT15, 0, NULL, 0);
}

void gw_scu_busy(gw_scu *s, int busy)
{
    s->busy = busy;
    if (busy)
        s->last_progress = uv_now(s->loop);
}

uv_stream_t *gw_scu_stream(gw_scu *s)
{
    return (uv_stream_t *)&s->tcp;
}

uint32_t gw_scu_peer_max_pdu(const gw_scu *s)
{
    return s->peer_max_pdu;
}

const gw_scu_pc *gw_scu_pcs(const gw_scu *s, int *n)
{
    *n = s->n_pc;
    return s->pc;
}
