#include "assoc.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *gw_refusal_name(enum gw_refusal r)
{
    static const char *const k[GW_REFUSALS] = {"address", "per_address", "reserve", "capacity"};
    return (unsigned)r < GW_REFUSALS ? k[r] : "?";
}

/* The peer address as 16 bytes, IPv4 mapped into IPv6, so that a host counts
 * once whichever family it arrives on. */
static void peer_ip(const struct sockaddr_storage *ss, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static int allowed_anywhere(const hr_config *cfg, const struct sockaddr *peer)
{
    for (size_t i = 0; i < cfg->n_hospitals; i++)
        if (hr_hospital_allows(&cfg->hospitals[i], peer))
            return 1;
    return 0;
}

/* Admitted connections open from a's address, a excluded. The list holds
 * at most twice dicom.max_associations: a scan per accept is cheap. */
static int open_from(const gw_dicom_server *s, const gw_assoc *a)
{
    int n = 0;
    for (const gw_assoc *o = s->assocs; o; o = o->next)
        if (o != a && o->admitted && memcmp(o->peer_ip, a->peer_ip, 16) == 0)
            n++;
    return n;
}

/* Admission at accept (decision 0012): -1 to admit, or the refusal. *k gets
 * the connections already open from the peer's address. */
static int admission(const gw_dicom_server *s, const gw_assoc *a, int *k)
{
    const hr_config *c = s->cfg;
    int open = s->stats.connections_open;
    *k = 0;
    if (!allowed_anywhere(c, (const struct sockaddr *)&a->peer_addr))
        return GW_REFUSED_ADDRESS;
    if (open >= 2 * c->dicom.max_associations)
        return GW_REFUSED_CAPACITY;
    *k = open_from(s, a);
    if (*k >= c->dicom.max_per_address)
        return GW_REFUSED_PER_ADDRESS;
    /* the last reserved slots: only for an address with nothing open, so
     * that an address holding idle sockets or associations cannot take them */
    if (*k > 0 && c->dicom.reserved_associations > 0 &&
        open >= c->dicom.max_associations - c->dicom.reserved_associations)
        return GW_REFUSED_RESERVE;
    return -1;
}

/* One log line per second at most: a flood of refusals must not flood the log. */
static void log_refusal(gw_dicom_server *s, const gw_assoc *a, enum gw_refusal why, int k)
{
    const hr_config *c = s->cfg;
    uint64_t now = uv_now(s->loop);
    char what[160];
    if (s->refusal_logged_ms && now - s->refusal_logged_ms < 1000) {
        s->refusals_unlogged++;
        return;
    }
    switch (why) {
    case GW_REFUSED_ADDRESS:
        snprintf(what, sizeof(what), "the address is in no hospital's addresses");
        break;
    case GW_REFUSED_PER_ADDRESS:
        snprintf(what, sizeof(what),
                 "%d connections from this address already "
                 "(dicom.max_per_address)",
                 k);
        break;
    case GW_REFUSED_RESERVE:
        snprintf(what, sizeof(what),
                 "%d connections open, the last %d are reserved for "
                 "addresses with none, and this one has %d",
                 s->stats.connections_open, c->dicom.reserved_associations, k);
        break;
    default:
        snprintf(what, sizeof(what), "%d connections open (twice dicom.max_associations)",
                 s->stats.connections_open);
        break;
    }
    hr_warn("dicom", "%s: connection refused: %s; %llu more refused since the last such line",
            a->peer, what, (unsigned long long)s->refusals_unlogged);
    s->refusal_logged_ms = now ? now : 1;
    s->refusals_unlogged = 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
    gw_dicom_server *s = listener->data;
    int k;
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
    hr_sockaddr_format(&a->peer_addr, a->peer, sizeof(a->peer));
    peer_ip(&a->peer_addr, a->peer_ip);
    if (s->stopping) {
        gw__assoc_close(a);
        return;
    }
    /* decided before any byte is read: a refused peer costs no PDU buffer,
     * no ARTIM wait and no slot */
    int why = admission(s, a, &k);
    if (why >= 0) {
        s->stats.connections_refused[why]++;
        log_refusal(s, a, (enum gw_refusal)why, k);
        a->reset = 1;
        gw__assoc_close(a);
        return;
    }
    a->admitted = 1;
    s->stats.connections_open++;
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
