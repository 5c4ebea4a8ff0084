#include "assoc.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        port = ntohs(v4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        port = ntohs(v6->sin6_port);
    }
    snprintf(out, cap, "%s:%d", host, port);
}

static void on_listener_closed(uv_handle_t *h)
{
    gw_dicom_server *s = h->data;
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    free(s);
    if (cb)
        cb(arg);
}

void gw__server_maybe_done(gw_dicom_server *s)
{
    if (s->stopping == 1 && s->n_conns == 0) {
        s->stopping = 2;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    gw_dicom_server *s = listener->data;
    if (status < 0) {
        hr_warn("dicom", "accept failed: %s", uv_strerror(status));
        return;
    }
    gw_assoc *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    uv_tcp_init(s->loop, &a->tcp);
    uv_timer_init(s->loop, &a->timer);
    s->n_conns++;
    a->srv = s;
    a->tcp.data = a->timer.data = a;
    a->next = s->assocs;
    if (s->assocs)
        s->assocs->prev = a;
    s->assocs = a;
    if (uv_accept(listener, (uv_stream_t *)&a->tcp) != 0) {
        gw__assoc_close(a);
        return;
    }
    int len = sizeof(a->peer_addr);
    uv_tcp_getpeername(&a->tcp, (struct sockaddr *)&a->peer_addr, &len);
    format_peer(&a->peer_addr, a->peer, sizeof(a->peer));
    /* beyond twice the association limit, connections are closed at once:
     * each one costs memory before it can be told "no" politely */
    if (s->n_conns > 2 * s->cfg->dicom.max_associations || s->stopping) {
        hr_warn("dicom", "%s: too many connections (%d), closing", a->peer, s->n_conns);
        s->stats.associations_rejected++;
        gw__assoc_close(a);
        return;
    }
    gw__assoc_start(s, a);
}

int gw_dicom_server_start(uv_loop_t *loop, const hr_config *cfg, sto_ctx *sto,
                          gw_dicom_server **out)
{
    struct sockaddr_storage addr;
    int rc;
    gw_dicom_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->sto = sto;
    if (strchr(cfg->dicom.listen.host, ':'))
        rc = uv_ip6_addr(cfg->dicom.listen.host, cfg->dicom.listen.port,
                         (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(cfg->dicom.listen.host, cfg->dicom.listen.port,
                         (struct sockaddr_in *)&addr);
    if (rc)
        goto fail;
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
fail:
    free(s);
    return rc;
}

void gw_dicom_server_stop(gw_dicom_server *s, void (*cb)(void *), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    uv_read_stop((uv_stream_t *)&s->listener);
    for (gw_assoc *a = s->assocs, *next; a; a = next) {
        next = a->next;
        gw__assoc_close(a);
    }
    gw__server_maybe_done(s);
}

const gw_dicom_stats *gw_dicom_server_stats(const gw_dicom_server *s)
{
    return &s->stats;
}
