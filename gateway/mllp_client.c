/* MLLP client (mllp_client.h). */
#include "mllp_client.h"
#include "mllp.h"
#include "../common/hr_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (16 * 1024)

struct gw_mllp_client {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t timer;
    hr_buf frame;
    gw_mllp_dec dec;
    char host[256];
    char port[8];
    char control_id[RPT_HL7_CONTROL_ID_MAX];
    char rbuf[READ_CHUNK];
    gw_mllp_cb cb;
    void *arg;
    int gai_pending, tcp_open, closing, done;
    int rc;
    int have_ack;
    rpt_hl7_ack ack;
    char detail[600];
};

static void maybe_free(gw_mllp_client *c)
{
    if (c->closing || c->gai_pending)
        return;
    c->cb(c->arg, c->rc, c->have_ack ? &c->ack : NULL, c->detail);
    hr_buf_free(&c->frame);
    gw_mllp_dec_free(&c->dec);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    gw_mllp_client *c = h->data;
    c->closing--;
    maybe_free(c);
}

/* Decides the outcome once and closes everything; cb runs when all is closed. */
static void finish(gw_mllp_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(gw_mllp_client *c, int rc, const char *fmt, ...)
{
    if (c->done)
        return;
    c->done = 1;
    c->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);
    uv_timer_stop(&c->timer);
    c->closing++;
    uv_close((uv_handle_t *)&c->timer, on_closed);
    if (c->tcp_open) {
        c->closing++;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

static void on_timeout(uv_timer_t *t)
{
    gw_mllp_client *c = t->data;
    finish(c, -ETIMEDOUT, "no ACK from %s:%s within the timeout", c->host, c->port);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_mllp_client *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_ack(gw_mllp_client *c, const uint8_t *m, size_t n)
{
    if (rpt_hl7_ack_parse(m, n, &c->ack) != 0) {
        finish(c, HR_EPARSE, "%s:%s answered something that is not an HL7 ACK (%zu bytes)", c->host,
               c->port, n);
        return;
    }
    c->have_ack = 1;
    if (rpt_hl7_ack_ok(&c->ack, c->control_id)) {
        finish(c, 0, "ACK %s %s%s%s", c->ack.code, c->ack.control_id, c->ack.text[0] ? ": " : "",
               c->ack.text);
        return;
    }
    if (strcmp(c->ack.control_id, c->control_id) != 0 &&
        (strcmp(c->ack.code, "AA") == 0 || strcmp(c->ack.code, "CA") == 0))
        finish(c, HR_EPROTO, "ACK %s of another message (MSA-2 \"%s\", ours %s)", c->ack.code,
               c->ack.control_id, c->control_id);
    else
        finish(c, HR_EPROTO, "ACK %s%s%s", c->ack.code, c->ack.text[0] ? ": " : "", c->ack.text);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_mllp_client *c = s->data;
    if (c->done)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            finish(c, -ECONNRESET, "%s:%s closed the connection before the ACK", c->host, c->port);
        else
            finish(c, (int)nread, "%s:%s: %s", c->host, c->port, uv_strerror((int)nread));
        return;
    }
    size_t off = 0;
    while (off < (size_t)nread && !c->done) {
        size_t used = 0;
        int rc =
            gw_mllp_feed(&c->dec, (const uint8_t *)buf->base + off, (size_t)nread - off, &used);
        off += used;
        if (rc == GW_MLLP_MESSAGE) {
            size_t n;
            const uint8_t *m = gw_mllp_message(&c->dec, &n);
            on_ack(c, m, n);
        } else if (rc == HR_ETOOBIG) {
            finish(c, HR_ETOOBIG, "%s:%s: reply longer than %zu bytes", c->host, c->port,
                   c->dec.msg.cap);
        } else if (rc < 0) {
            finish(c, HR_EPARSE, "%s:%s: reply is not MLLP-framed", c->host, c->port);
        }
    }
}

static void on_written(uv_write_t *w, int status)
{
    gw_mllp_client *c = w->data;
    if (c->done)
        return;
    if (status < 0)
        finish(c, status, "%s:%s: write: %s", c->host, c->port, uv_strerror(status));
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_mllp_client *c = req->data;
    if (c->done)
        return;
    if (status < 0) {
        finish(c, status, "connect %s:%s: %s", c->host, c->port, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_buf_t b = uv_buf_init((char *)c->frame.data, (unsigned)c->frame.len);
    c->wr.data = c;
    int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (!rc)
        rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc)
        finish(c, rc, "%s:%s: %s", c->host, c->port, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_mllp_client *c = req->data;
    c->gai_pending = 0;
    if (c->done || status < 0) {
        if (!c->done)
            finish(c, status, "resolve %s: %s", c->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        maybe_free(c);
        return;
    }
    int rc = uv_tcp_init(c->loop, &c->tcp);
    if (!rc) {
        c->tcp.data = c;
        c->tcp_open = 1;
        c->conn.data = c;
        rc = uv_tcp_connect(&c->conn, &c->tcp, res->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (rc)
        finish(c, rc, "connect %s:%s: %s", c->host, c->port, uv_strerror(rc));
}

int gw_mllp_send(uv_loop_t *loop, const gw_mllp_params *p, gw_mllp_cb cb, void *arg,
                 gw_mllp_client **out)
{
    if (!p->host || strlen(p->host) >= 256 || p->port < 1 || p->port > 65535 || !p->control_id ||
        strlen(p->control_id) >= RPT_HL7_CONTROL_ID_MAX || p->timeout_ms < 1)
        return -EINVAL;
    gw_mllp_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    snprintf(c->host, sizeof(c->host), "%s", p->host);
    snprintf(c->port, sizeof(c->port), "%d", p->port);
    snprintf(c->control_id, sizeof(c->control_id), "%s", p->control_id);
    hr_buf_init(&c->frame, p->len + 3);
    gw_mllp_dec_init(&c->dec, p->max_reply ? p->max_reply : 64 * 1024);
    int rc = gw_mllp_frame(p->msg, p->len, &c->frame);
    if (rc) {
        hr_buf_free(&c->frame);
        free(c);
        return rc;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timeout, (uint64_t)p->timeout_ms, 0);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    rc = uv_getaddrinfo(loop, &c->gai, on_resolved, c->host, c->port, &hints);
    if (rc) {
        finish(c, rc, "resolve %s: %s", c->host, uv_strerror(rc));
    } else {
        c->gai_pending = 1;
    }
    if (out)
        *out = c;
    return 0;
}

void gw_mllp_cancel(gw_mllp_client *c)
{
    finish(c, -ECANCELED, "cancelled (huren is stopping)");
}
