/* libcurl multi on libuv (webhook.h), after libcurl's docs/examples/multi-uv.c. */
#include "webhook.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw_webhook {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_idle_t idle; /* runs finished transfers' callbacks outside libcurl's */
    gw_webhook_xfer *head;
    int n_active;
    int closing, handles;
    void (*closed)(void *);
    void *closed_arg;
};

struct gw_webhook_xfer {
    gw_webhook *w;
    gw_webhook_xfer *prev, *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    char keep[GW_WEBHOOK_KEEP];
    size_t kept, total;
    char errbuf[CURL_ERROR_SIZE];
    gw_webhook_cb cb;
    void *arg;
    int done; /* outcome decided; cb due from the idle handle */
    int rc;
    long status;
    char detail[GW_WEBHOOK_KEEP + 160];
};

/* A socket libcurl asked us to watch. */
typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    gw_webhook *w;
} sock_ctx;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static int g_curl_rc;

static void curl_init_once(void)
{
    g_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

/* ---- finishing ---- */

static void on_idle(uv_idle_t *h);

static void unlink_xfer(gw_webhook_xfer *x)
{
    gw_webhook *w = x->w;
    if (x->prev)
        x->prev->next = x->next;
    else
        w->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    w->n_active--;
}

static void xfer_free(gw_webhook_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    free(x->body);
    free(x);
}

/* Takes x out of libcurl and decides its outcome; the callback runs from
 * the idle handle (never inside a libcurl callback or socket_action). */
static void settle(gw_webhook_xfer *x, int rc, long status, const char *detail)
{
    if (x->done)
        return;
    x->done = 1;
    x->rc = rc;
    x->status = status;
    snprintf(x->detail, sizeof(x->detail), "%s", detail);
    if (x->easy) {
        curl_multi_remove_handle(x->w->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    uv_idle_start(&x->w->idle, on_idle);
}

static void on_idle(uv_idle_t *h)
{
    gw_webhook *w = h->data;
    uv_idle_stop(h);
    gw_webhook_xfer *x = w->head;
    while (x) {
        gw_webhook_xfer *next = x->next;
        if (x->done) {
            unlink_xfer(x);
            x->cb(x->arg, x->rc, x->status, x->detail);
            xfer_free(x);
        }
        x = next;
    }
}

static int map_curl(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        return HR_ECERT;
    case CURLE_WRITE_ERROR:
        return HR_ETOOBIG;
    default:
        return -EIO;
    }
}

static void check_done(gw_webhook *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        gw_webhook_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x)
            continue;
        CURLcode res = m->data.result;
        char detail[GW_WEBHOOK_KEEP + 160];
        long status = 0;
        if (res == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
            /* the body's start, one line */
            for (size_t i = 0; i < x->kept; i++)
                if ((unsigned char)x->keep[i] < 0x20)
                    x->keep[i] = ' ';
            snprintf(detail, sizeof(detail), "HTTP %ld%s%.*s", status, x->kept ? ": " : "",
                     (int)x->kept, x->keep);
        } else {
            snprintf(detail, sizeof(detail), "%s",
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
        }
        settle(x, map_curl(res), status, detail);
    }
}

/* ---- libcurl <-> libuv ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *s = h->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (!status && (events & UV_READABLE))
        flags |= CURL_CSELECT_IN;
    if (!status && (events & UV_WRITABLE))
        flags |= CURL_CSELECT_OUT;
    gw_webhook *w = s->w;
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    check_done(w);
}

static void on_timer(uv_timer_t *t)
{
    gw_webhook *w = t->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    gw_webhook *w = h->data;
    if (--w->handles == 0 && w->closing) {
        void (*cb)(void *) = w->closed;
        void *arg = w->closed_arg;
        free(w);
        if (cb)
            cb(arg);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx *s = (sock_ctx *)h;
    gw_webhook *w = s->w;
    free(s);
    w->handles--;
    if (w->handles == 0 && w->closing) {
        void (*cb)(void *) = w->closed;
        void *arg = w->closed_arg;
        free(w);
        if (cb)
            cb(arg);
    }
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    gw_webhook *w = userp;
    sock_ctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(w->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->w = w;
        if (uv_poll_init_socket(w->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        w->handles++;
        curl_multi_assign(w->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static int on_timeout_change(CURLM *multi, long timeout_ms, void *userp)
{
    gw_webhook *w = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&w->timer);
    else
        uv_timer_start(&w->timer, on_timer, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    gw_webhook_xfer *x = arg;
    size_t len = size * n;
    if (x->total + len > GW_WEBHOOK_BODY_MAX)
        return 0; /* CURLE_WRITE_ERROR: the answer is far too long */
    x->total += len;
    size_t room = sizeof(x->keep) - x->kept;
    size_t k = len < room ? len : room;
    memcpy(x->keep + x->kept, p, k);
    x->kept += k;
    return len;
}

/* ---- API ---- */

int gw_webhook_open(uv_loop_t *loop, gw_webhook **out)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_rc)
        return g_curl_rc;
    gw_webhook *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->multi = curl_multi_init();
    if (!w->multi) {
        free(w);
        return -EIO;
    }
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timeout_change);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    uv_timer_init(loop, &w->timer);
    uv_idle_init(loop, &w->idle);
    w->timer.data = w->idle.data = w;
    w->handles = 2;
    *out = w;
    return 0;
}

static int url_ok(const char *url)
{
    return url && (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0);
}

int gw_webhook_post(gw_webhook *w, const gw_webhook_req *r, gw_webhook_cb cb, void *arg,
                    gw_webhook_xfer **out)
{
    char h[1024];
    int rc = 0;
    if (w->closing)
        return HR_ESTATE;
    if (!url_ok(r->url) || r->timeout_ms < 1)
        return -EINVAL;
    gw_webhook_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->w = w;
    x->cb = cb;
    x->arg = arg;
    x->body = malloc(r->len ? r->len : 1);
    x->easy = curl_easy_init();
    if (!x->body || !x->easy) {
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(x->body, r->body, r->len);
    snprintf(h, sizeof(h), "Content-Type: %s",
             r->content_type ? r->content_type : "application/octet-stream");
    struct curl_slist *l = curl_slist_append(NULL, h);
    x->hdrs = l;
    if (l && r->bearer && *r->bearer) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", r->bearer);
        l = curl_slist_append(x->hdrs, h);
    }
    if (l)
        l = curl_slist_append(x->hdrs, "Expect:"); /* no 100-continue round trip */
    for (int i = 0; l && r->headers[i]; i++) {
        if (i >= GW_WEBHOOK_HEADERS) {
            rc = -EINVAL;
            goto fail;
        }
        l = curl_slist_append(x->hdrs, r->headers[i]);
    }
    if (!l) {
        rc = -ENOMEM;
        goto fail;
    }
    CURL *e = x->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "huren") != CURLE_OK;
    if (r->ca_file && *r->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file) != CURLE_OK;
    if (bad) {
        rc = -EIO;
        goto fail;
    }
    x->next = w->head;
    if (w->head)
        w->head->prev = x;
    w->head = x;
    w->n_active++;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        unlink_xfer(x);
        rc = -EIO;
        goto fail;
    }
    if (out)
        *out = x;
    return 0;
fail:
    if (x->easy)
        curl_easy_cleanup(x->easy);
    xfer_free(x);
    return rc;
}

void gw_webhook_cancel(gw_webhook_xfer *x)
{
    settle(x, -ECANCELED, 0, "cancelled (huren is stopping)");
}

int gw_webhook_active(const gw_webhook *w)
{
    return w->n_active;
}

void gw_webhook_close(gw_webhook *w, void (*closed)(void *arg), void *arg)
{
    w->closed = closed;
    w->closed_arg = arg;
    for (gw_webhook_xfer *x = w->head; x; x = x->next)
        settle(x, -ECANCELED, 0, "cancelled (huren is stopping)");
    on_idle(&w->idle); /* the callbacks now, before the handles go */
    w->closing = 1;
    curl_multi_cleanup(w->multi); /* removes every socket (CURL_POLL_REMOVE) */
    w->multi = NULL;
    uv_close((uv_handle_t *)&w->timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->idle, on_handle_closed);
}
