/* HL7 v2 MLLP listener (hl7_server.h, decision 0037). */
#include "hl7_server.h"
#include "mllp.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../reports/hl7.h"
#include "../reports/oru.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_HL7_READ_BUF (64 * 1024) /* bytes read at once per connection */
#define GW_HL7_ACK_MAX  (64 * 1024) /* an ACK longer than this is the handler's bug */
#define GW_HL7_HEAD     4096        /* first bytes of a refused message given to refuse() */
#define GW_HL7_KEEP     (16 * 1024) /* message buffer kept between messages */
#define GW_HL7_DRAIN_MS                                                                            \
    2000 /* after the AR of a refused message: its rest is read and                                \
            dropped this long at most, so that closing with unread                                 \
            bytes (a reset) cannot destroy the AR before it is read */

typedef struct gw_hl7_conn gw_hl7_conn;

struct gw_hl7_server {
    uv_loop_t *loop;
    const hr_config *cfg;
    gw_hl7_handler h;
    uv_tcp_t listener;
    gw_hl7_conn *conns; /* every connection not yet freed */
    int n_conns;
    int stopping; /* 1: stop requested; 2: listener closing */
    void (*stop_cb)(void *);
    void *stop_arg;
    gw_hl7_stats stats;
    uint64_t refusal_logged_ms, refusals_unlogged;
};

struct gw_hl7_conn {
    gw_hl7_server *srv;
    gw_hl7_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t idle;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    int handles;     /* open libuv handles (tcp, idle) */
    int admitted;    /* counted in connections_open */
    int closing;     /* uv_close called */
    int busy;        /* a message is with the handler: its reply has not come */
    int reading;     /* uv_read_start in effect */
    int writing;     /* the ACK's write is under way */
    int close_after; /* close once the write is done (an AR before closing) */
    int draining;    /* the AR is out: the rest is read and dropped until EOF or the timer */
    const char *hospital;
    char peer[INET6_ADDRSTRLEN + 8];
    gw_mllp_dec dec;
    hr_buf out; /* the framed ACK being written */
    size_t rpos, rend;
    uint8_t rbuf[GW_HL7_READ_BUF]; /* bytes read and not yet fed: [rpos, rend) */
};

static void conn_process(gw_hl7_conn *c);

void gw_hl7_control_id(const uint8_t *head, size_t len, char *id, size_t cap)
{
    size_t field = 1, n = 0;
    id[0] = '\0';
    if (cap == 0 || len < 8 || memcmp(head, "MSH", 3) != 0)
        return;
    uint8_t sep = head[3];
    /* a field separator is a printable non-alphanumeric character */
    if (sep < 0x21 || sep > 0x7e || (sep >= '0' && sep <= '9') || (sep >= 'A' && sep <= 'Z') ||
        (sep >= 'a' && sep <= 'z'))
        return;
    for (size_t i = 3; i < len; i++) {
        uint8_t b = head[i];
        if (b == '\r' || b == '\n')
            break;
        if (b == sep) {
            if (++field > 10)
                break;
            continue;
        }
        if (field == 10) {
            if (b < 0x20 || b > 0x7e || n + 1 >= cap) {
                n = 0; /* not a usable control id: none rather than a cut one */
                break;
            }
            id[n++] = (char)b;
        }
    }
    /* the id is usable only if the field ended within the bytes seen */
    id[field > 10 ? n : 0] = '\0';
}

int gw_hl7_refusal(const uint8_t *head, size_t len, int code, const char *text,
                   const char *facility, long long now_ms, hr_buf *out)
{
    rpt_hl7_msg *m = NULL;
    rpt_hl7_err err;
    memset(&err, 0, sizeof(err));
    /* the MSH alone, when the first bytes hold all of it */
    const uint8_t *cr = memchr(head, '\r', len), *lf = memchr(head, '\n', len);
    const uint8_t *end = cr && (!lf || cr < lf) ? cr : lf;
    if (end && rpt_hl7_parse(head, (size_t)(end - head) + 1, NULL, &m, &err) != 0)
        m = NULL;
    if (!m && !err.control_id[0])
        gw_hl7_control_id(head, len, err.control_id, sizeof(err.control_id));
    rpt_hl7_err_set(&err, "AR", code, "", 0, 0, "%s", text);
    int rc = rpt_hl7_ack_build(m, "AR", &err, facility, now_ms, out);
    rpt_hl7_free(m);
    return rc;
}

/* ---- connections: deferred destruction (conventions #9) ---- */

static void server_maybe_done(gw_hl7_server *s);

static void conn_free_if_done(gw_hl7_conn *c)
{
    if (c->handles > 0 || c->busy)
        return;
    gw_hl7_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw_mllp_dec_free(&c->dec);
    hr_buf_free(&c->out);
    free(c);
    s->n_conns--;
    server_maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    gw_hl7_conn *c = h->data;
    c->handles--;
    conn_free_if_done(c);
}

static void conn_close(gw_hl7_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->admitted) {
        c->srv->stats.connections_open--;
        c->admitted = 0;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_handle_closed);
}

static void on_idle(uv_timer_t *t)
{
    gw_hl7_conn *c = t->data;
    if (c->draining) {
        conn_close(c);
        return;
    }
    c->srv->stats.idle_closed++;
    hr_info("hl7", "%s: closed after %d s without a complete message", c->peer,
            c->srv->cfg->hl7.idle_timeout_s);
    conn_close(c);
}

static void idle_restart(gw_hl7_conn *c)
{
    uv_timer_start(&c->idle, on_idle, (uint64_t)c->srv->cfg->hl7.idle_timeout_s * 1000, 0);
}

/* ---- writing an ACK ---- */

static void reading(gw_hl7_conn *c, int on);

static void on_shutdown(uv_shutdown_t *r, int status)
{
    (void)r;
    (void)status; /* the drain timer closes in any case */
}

static void on_written(uv_write_t *w, int status)
{
    gw_hl7_conn *c = w->data;
    c->writing = 0;
    hr_buf_reset(&c->out);
    if (c->closing)
        return;
    if (status < 0) {
        hr_debug("hl7", "%s: writing the ACK failed: %s", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->close_after) {
        /* FIN after the AR, then drop what the peer still sends until it
         * closes too or the timer ends it */
        c->draining = 1;
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
            conn_close(c);
            return;
        }
        uv_timer_start(&c->idle, on_idle, GW_HL7_DRAIN_MS, 0);
        reading(c, 1);
        return;
    }
    conn_process(c); /* the next message, from what was read already or a new read */
}

/* Frames ack and writes it; counts its MSA-1. */
static int conn_send_ack(gw_hl7_conn *c, const uint8_t *ack, size_t len)
{
    rpt_hl7_ack a;
    if (rpt_hl7_ack_parse(ack, len, &a) == 0) {
        if (strcmp(a.code, "AA") == 0 || strcmp(a.code, "CA") == 0)
            c->srv->stats.acks[0]++;
        else if (strcmp(a.code, "AE") == 0 || strcmp(a.code, "CE") == 0)
            c->srv->stats.acks[1]++;
        else
            c->srv->stats.acks[2]++;
    }
    hr_buf_reset(&c->out);
    int rc = gw_mllp_frame(ack, len, &c->out);
    if (rc)
        return rc;
    uv_buf_t b = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    c->wreq.data = c;
    rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc == 0)
        c->writing = 1;
    return rc;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_hl7_conn *c = h->data;
    /* reading runs only once every byte read before was fed */
    c->rpos = c->rend = 0;
    *buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    gw_hl7_conn *c = st->data;
    if (c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            hr_debug("hl7", "%s: read failed: %s", c->peer, uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread == 0 || c->draining)
        return; /* a refused message's rest: dropped */
    c->rpos = 0;
    c->rend = (size_t)nread;
    conn_process(c); /* a read does not restart the idle timer: a message must
                        complete within hl7.idle_timeout_s (no slowloris) */
}

static void reading(gw_hl7_conn *c, int on)
{
    if (on && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            conn_close(c);
    } else if (!on && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_reply(void *arg, int rc, const uint8_t *ack, size_t len)
{
    gw_hl7_conn *c = arg;
    c->busy = 0;
    c->srv->stats.in_flight--;
    /* the message is answered: a large one's buffer is not kept while the
     * connection waits for the next */
    gw_mllp_dec_reset(&c->dec);
    hr_buf_shrink(&c->dec.msg, GW_HL7_KEEP);
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (rc < 0 || !ack || len == 0 || len > GW_HL7_ACK_MAX) {
        hr_warn("hl7", "%s: the message could not be handled (%s); closing without an ACK", c->peer,
                hr_strerror(rc < 0 ? rc : HR_EPARSE));
        conn_close(c);
        return;
    }
    rc = conn_send_ack(c, ack, len);
    if (rc) {
        hr_warn("hl7", "%s: cannot send the ACK: %s", c->peer, hr_strerror(rc));
        conn_close(c);
    }
}

/* The message is over hl7.max_message_bytes: AR, then close. */
static void conn_too_long(gw_hl7_conn *c)
{
    gw_hl7_server *s = c->srv;
    char text[128];
    hr_buf ack;
    int rc = -EINVAL;
    s->stats.too_long++;
    s->stats.messages_total++;
    hr_warn("hl7", "%s: message longer than hl7.max_message_bytes (%llu); refused, closing",
            c->peer, (unsigned long long)s->cfg->hl7.max_message_bytes);
    snprintf(text, sizeof(text), "Message too long: more than %llu bytes.",
             (unsigned long long)s->cfg->hl7.max_message_bytes);
    /* the message's first bytes: what the decoder collected, then the run
     * of this read it refused (its MSH when they reach that far) */
    uint8_t head[GW_HL7_HEAD];
    size_t hn = c->dec.msg.len < sizeof(head) ? c->dec.msg.len : sizeof(head);
    if (hn)
        memcpy(head, c->dec.msg.data, hn);
    size_t more = c->rend - c->rpos < sizeof(head) - hn ? c->rend - c->rpos : sizeof(head) - hn;
    memcpy(head + hn, c->rbuf + c->rpos, more);
    hn += more;
    hr_buf_init(&ack, GW_HL7_ACK_MAX);
    if (s->h.refuse)
        rc = s->h.refuse(s->h.ctx, head, hn, 207, text, &ack);
    else
        rc = gw_hl7_refusal(head, hn, 207, text, s->cfg->hl7.facility, hr_wall_ms(), &ack);
    if (rc == 0 && ack.len > 0)
        rc = conn_send_ack(c, ack.data, ack.len);
    hr_buf_free(&ack);
    if (rc)
        conn_close(c);
    else
        c->close_after = 1;
}

/* Feeds what was read until a message is complete, then hands it on with
 * reading stopped; reads again once every byte was fed. */
static void conn_process(gw_hl7_conn *c)
{
    gw_hl7_server *s = c->srv;
    while (!c->closing && !c->busy && !c->writing && c->rpos < c->rend) {
        size_t used = 0;
        int rc = gw_mllp_feed(&c->dec, c->rbuf + c->rpos, c->rend - c->rpos, &used);
        c->rpos += used;
        if (rc == GW_MLLP_NEED_MORE)
            continue;
        if (rc == HR_ETOOBIG) {
            reading(c, 0);
            uv_timer_stop(&c->idle);
            conn_too_long(c);
            return;
        }
        if (rc < 0) {
            s->stats.framing_errors++;
            hr_warn("hl7", "%s: MLLP framing error (%s); closing", c->peer, hr_strerror(rc));
            conn_close(c);
            return;
        }
        /* a message: one at a time per connection */
        size_t len;
        const uint8_t *msg = gw_mllp_message(&c->dec, &len);
        gw_hl7_peer p = {.hospital = c->hospital, .peer = c->peer};
        s->stats.messages_total++;
        reading(c, 0);
        uv_timer_stop(&c->idle);
        c->busy = 1;
        s->stats.in_flight++;
        rc = s->h.ingest(s->h.ctx, msg, len, &p, on_reply, c);
        if (rc) {
            c->busy = 0;
            s->stats.in_flight--;
            hr_warn("hl7", "%s: the message could not be handed on (%s); closing", c->peer,
                    hr_strerror(rc));
            conn_close(c);
        }
        return;
    }
    if (!c->closing && !c->busy && !c->writing && c->rpos >= c->rend) {
        reading(c, 1);
        /* started at accept and after each ACK (stopped while a message is
         * stored), never by a read: hl7.idle_timeout_s bounds the time to
         * the next complete message, however slowly its bytes trickle */
        if (!c->closing && !uv_is_active((uv_handle_t *)&c->idle))
            idle_restart(c);
    }
}

/* ---- accepting ---- */

static const char *peer_hospital(const hr_config *cfg, const struct sockaddr *peer)
{
    for (size_t i = 0; i < cfg->n_hospitals; i++)
        if (hr_hospital_allows(&cfg->hospitals[i], peer))
            return cfg->hospitals[i].id;
    return NULL;
}

/* One log line per second at most: a flood of refusals must not flood the log. */
static void log_refusal(gw_hl7_server *s, const gw_hl7_conn *c, const char *why)
{
    uint64_t now = uv_now(s->loop);
    if (s->refusal_logged_ms && now - s->refusal_logged_ms < 1000) {
        s->refusals_unlogged++;
        return;
    }
    hr_warn("hl7", "%s: connection refused: %s; %llu more refused since the last such line",
            c->peer, why, (unsigned long long)s->refusals_unlogged);
    s->refusal_logged_ms = now ? now : 1;
    s->refusals_unlogged = 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
    gw_hl7_server *s = listener->data;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (status < 0) {
        hr_warn("hl7", "accept failed: %s", uv_strerror(status));
        return;
    }
    gw_hl7_conn *c = malloc(sizeof(*c));
    if (!c)
        return;
    memset(c, 0, offsetof(gw_hl7_conn, rbuf));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->idle);
    c->handles = 2;
    c->tcp.data = c->idle.data = c;
    gw_mllp_dec_init(&c->dec, (size_t)s->cfg->hl7.max_message_bytes);
    hr_buf_init(&c->out, GW_HL7_ACK_MAX + 3);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->stopping) {
        conn_close(c);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    hr_sockaddr_format(&ss, c->peer, sizeof(c->peer));
    /* decided before any byte is read: a refused peer costs nothing more */
    c->hospital = peer_hospital(s->cfg, (const struct sockaddr *)&ss);
    if (!c->hospital || s->stats.connections_open >= s->cfg->hl7.max_connections) {
        s->stats.connections_refused++;
        log_refusal(s, c,
                    !c->hospital ? "the address is in no hospital's addresses"
                                 : "hl7.max_connections connections open");
        conn_close(c);
        return;
    }
    c->admitted = 1;
    s->stats.connections_open++;
    s->stats.connections_total++;
    uv_tcp_nodelay(&c->tcp, 1);
    hr_debug("hl7", "%s: connected (hospital %s)", c->peer, c->hospital);
    conn_process(c); /* starts reading and the idle timer */
}

/* ---- the server ---- */

static void on_listener_closed(uv_handle_t *h)
{
    gw_hl7_server *s = h->data;
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    free(s);
    if (cb)
        cb(arg);
}

static void server_maybe_done(gw_hl7_server *s)
{
    if (s->stopping == 1 && s->n_conns == 0) {
        s->stopping = 2;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    }
}

int gw_hl7_server_start(uv_loop_t *loop, const hr_config *cfg, const gw_hl7_handler *h,
                        gw_hl7_server **out)
{
    struct sockaddr_storage addr;
    int rc;
    if (!h || !h->ingest)
        return UV_EINVAL;
    gw_hl7_server *s = calloc(1, sizeof(*s));
    if (!s)
        return UV_ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->h = *h;
    if (strchr(cfg->hl7.host, ':'))
        rc = uv_ip6_addr(cfg->hl7.host, cfg->hl7.port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(cfg->hl7.host, cfg->hl7.port, (struct sockaddr_in *)&addr);
    if (rc) {
        free(s);
        return rc;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc) {
        s->stopping = 2;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return rc;
    }
    *out = s;
    return 0;
}

int gw_hl7_server_port(const gw_hl7_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (rc)
        return rc;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void gw_hl7_server_stop(gw_hl7_server *s, void (*cb)(void *), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    for (gw_hl7_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c); /* a busy one is freed when its reply comes */
    }
    server_maybe_done(s);
}

const gw_hl7_stats *gw_hl7_server_stats(const gw_hl7_server *s)
{
    return &s->stats;
}

void gw_hl7_server_metrics(const gw_hl7_server *s, hr_buf *out)
{
    const gw_hl7_stats *st = &s->stats;
    char text[1536];
    int n = snprintf(
        text, sizeof(text),
        "# TYPE huren_hl7_connections gauge\nhuren_hl7_connections %d\n"
        "# TYPE huren_hl7_connections_total counter\nhuren_hl7_connections_total %llu\n"
        "# TYPE huren_hl7_connections_refused_total counter\n"
        "huren_hl7_connections_refused_total %llu\n"
        "# TYPE huren_hl7_in_flight gauge\nhuren_hl7_in_flight %d\n"
        "# TYPE huren_hl7_messages_total counter\nhuren_hl7_messages_total %llu\n"
        "# TYPE huren_hl7_acks_total counter\n"
        "huren_hl7_acks_total{code=\"AA\"} %llu\n"
        "huren_hl7_acks_total{code=\"AE\"} %llu\n"
        "huren_hl7_acks_total{code=\"AR\"} %llu\n"
        "# TYPE huren_hl7_framing_errors_total counter\nhuren_hl7_framing_errors_total %llu\n"
        "# TYPE huren_hl7_too_long_total counter\nhuren_hl7_too_long_total %llu\n"
        "# TYPE huren_hl7_idle_closed_total counter\nhuren_hl7_idle_closed_total %llu\n",
        st->connections_open, (unsigned long long)st->connections_total,
        (unsigned long long)st->connections_refused, st->in_flight,
        (unsigned long long)st->messages_total, (unsigned long long)st->acks[0],
        (unsigned long long)st->acks[1], (unsigned long long)st->acks[2],
        (unsigned long long)st->framing_errors, (unsigned long long)st->too_long,
        (unsigned long long)st->idle_closed);
    if (n > 0)
        hr_buf_append(out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}
