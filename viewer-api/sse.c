/* GET /api/v1/events: worklist events as server-sent events (sse.h). */
#include "sse.h"
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../storage/index.h"
#include "../worklist/worklist.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef WL_EVENTS_KEY
#define WL_EVENTS_KEY "hr:wl:events" /* worklist/worklist.h, "events" */
#endif
#define SSE_EVENT_MAX 1536 /* one formatted event: bounded ids, names and a UID */
#define SSE_OUT_CAP   ((VA_SSE_BATCH + 2) * SSE_EVENT_MAX)
#define SSE_ID_MAX    32

typedef struct va_sse va_sse;

struct va_sse {
    h2o_generator_t gen; /* first: h2o hands it back */
    va_req *r;
    va_server *srv; /* NULL once unlinked (request disposed) */
    struct va_sse *prev, *next;
    uv_loop_t *loop;
    sto_redis_addr addr; /* copies: a pool job may outlive the request */
    int redis_timeout_ms;
    uv_timer_t beat;
    uv_work_t work;
    /* which events the principal sees */
    enum sto_role role;
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX];
    char cursor[SSE_ID_MAX]; /* the last event read (sent or filtered out) */
    /* the bytes being sent: filled by the pool job, or on the loop while no
     * job runs; h2o holds them until proceed */
    hr_buf out;
    /* pool job results */
    char job_cursor[SSE_ID_MAX];
    int job_rc, job_gap, job_n, job_full;
    int job_sent; /* events formatted into out */
    /* state */
    int sending;     /* h2o has our bytes; proceed is due */
    int fetching;    /* a pool job runs */
    int dirty;       /* the stream may hold events past the cursor */
    int beat_due;    /* a heartbeat comment is due */
    int ending;      /* server stop: send the final chunk */
    int final_sent;  /* nothing more may be sent */
    int gone;        /* the request is disposed (or stopped) */
    int beat_closed; /* the timer handle is closed */
    int logged_err;
};

/* ---- list of open streams ---- */

static void link_sse(va_server *s, va_sse *c)
{
    c->srv = s;
    c->prev = NULL;
    c->next = s->sse_head;
    if (s->sse_head)
        s->sse_head->prev = c;
    s->sse_head = c;
    s->n_sse++;
}

static void unlink_sse(va_sse *c)
{
    va_server *s = c->srv;
    if (!s)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->sse_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->srv = NULL;
    s->n_sse--;
}

int va_sse_count(const va_server *s)
{
    return s->n_sse;
}

void va_sse_stats(const va_server *s, int *streams, uint64_t *held_bytes, uint64_t *events)
{
    uint64_t held = 0;
    for (const va_sse *c = s->sse_head; c; c = c->next)
        held += c->out.len;
    *streams = s->n_sse;
    *held_bytes = held;
    *events = s->sse_events;
}

/* ---- the pool job: read past the cursor ---- */

static int visible(const va_sse *c, const wl_event *ev)
{
    switch (c->role) {
    case STO_ROLE_ADMIN:
        return 1;
    case STO_ROLE_READER:
    case STO_ROLE_AUDITOR:
        return strcmp(ev->center, c->center) == 0;
    case STO_ROLE_TECHNICIAN:
        return strcmp(ev->hospital, c->hospital) == 0;
    default:
        return 0;
    }
}

/* Appends one event in the text/event-stream format. 0 or HR_ETOOBIG / -ENOMEM. */
static int format_event(hr_buf *out, const wl_event *ev)
{
    char data[SSE_EVENT_MAX], line[SSE_EVENT_MAX + 128];
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", ev->id,
                          "type", ev->type, "study", ev->study, "center", ev->center, "hospital",
                          ev->hospital, "state", ev->state, "priority", ev->priority, "user",
                          ev->user, "reader", ev->reader, "time_ms", (json_int_t)ev->time_ms);
    if (!d)
        return HR_EPARSE; /* not UTF-8: skipped, never sent broken */
    size_t n = json_dumpb(d, data, sizeof(data), JSON_COMPACT);
    json_decref(d);
    if (n == 0 || n >= sizeof(data))
        return HR_EPARSE;
    int k = snprintf(line, sizeof(line), "id: %s\nevent: %s\ndata: %.*s\n\n", ev->id, ev->type,
                     (int)n, data);
    if (k < 0 || (size_t)k >= sizeof(line))
        return HR_EPARSE;
    return hr_buf_append(out, line, (size_t)k);
}

static int on_event(void *arg, const wl_event *ev)
{
    va_sse *c = arg;
    if (visible(c, ev)) {
        int rc = format_event(&c->out, ev);
        if (rc == HR_ETOOBIG || rc == -ENOMEM) {
            c->job_full = 1;
            return rc; /* the cursor stays before this event */
        }
        if (rc)
            hr_warn("sse", "event %s of %s not sent: not valid UTF-8", ev->id, ev->study);
        else
            c->job_sent++;
    }
    snprintf(c->job_cursor, sizeof(c->job_cursor), "%s", ev->id);
    c->job_n++;
    return 0;
}

/* Puts text before what out holds. 0 or HR_ETOOBIG / -ENOMEM. */
static int prepend(hr_buf *out, const char *text)
{
    size_t n = strlen(text);
    int rc = hr_buf_reserve(out, n);
    if (rc)
        return rc;
    memmove(out->data + n, out->data, out->len);
    memcpy(out->data, text, n);
    out->len += n;
    return 0;
}

static void fetch_run(uv_work_t *w)
{
    va_sse *c = w->data;
    /* a second try on a new connection: this thread's may be stale (Redis
     * restarted since it was last used); reading is harmless to repeat */
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *rc = sto_worker_redis(&c->addr, c->redis_timeout_ms);
        c->job_n = c->job_gap = c->job_full = c->job_sent = 0;
        snprintf(c->job_cursor, sizeof(c->job_cursor), "%s", c->cursor);
        hr_buf_reset(&c->out); /* empty when a job starts */
        if (!rc) {
            c->job_rc = HR_EREDIS;
            return;
        }
        c->job_rc = wl_events_since(rc, c->cursor, VA_SSE_BATCH, on_event, c, &c->job_gap);
        if (c->job_rc != HR_EREDIS)
            break;
        sto_worker_redis_failed();
    }
    if (c->job_full)
        c->job_rc = 0; /* a full batch: the rest comes next */
    if (c->job_gap) {
        /* the client missed events that are no longer kept: it reloads its lists */
        char gap[160];
        snprintf(gap, sizeof(gap), "event: gap\ndata: {\"after\":\"%s\"}\n\n", c->cursor);
        if (prepend(&c->out, gap))
            hr_warn("sse", "gap after %s not announced: out of buffer", c->cursor);
    }
}

/* ---- the loop side ---- */

static void pump(va_sse *c);

static void maybe_free(va_sse *c)
{
    if (!c->gone || !c->beat_closed || c->fetching)
        return;
    hr_buf_free(&c->out);
    va_req_stream_end(c->r);
    free(c);
}

static void fetch_done(uv_work_t *w, int status)
{
    va_sse *c = w->data;
    c->fetching = 0;
    if (c->gone) {
        maybe_free(c);
        return;
    }
    if (c->job_n)
        snprintf(c->cursor, sizeof(c->cursor), "%s", c->job_cursor);
    if (c->srv)
        c->srv->sse_events += (uint64_t)c->job_sent;
    if (c->job_rc) {
        /* Redis is down or the cursor is unusable: the next heartbeat or
         * notification tries again */
        if (!c->logged_err)
            hr_warn("sse", "%s: cannot read worklist events after %s: %s", c->r->id, c->cursor,
                    hr_strerror(c->job_rc));
        c->logged_err = 1;
    } else {
        c->logged_err = 0;
        if (c->job_full || c->job_n >= VA_SSE_BATCH)
            c->dirty = 1; /* more is waiting: read it once the client took this */
    }
    pump(c);
}

static void send_out(va_sse *c, h2o_send_state_t state)
{
    h2o_iovec_t buf = h2o_iovec_init(c->out.data, c->out.len);
    c->sending = 1;
    if (state == H2O_SEND_STATE_FINAL)
        c->final_sent = 1;
    /* with FINAL, h2o may dispose the request inside this call: c stays
     * allocated until its timer is closed, but r->h must not be used after */
    h2o_send(c->r->h, &buf, buf.len ? 1 : 0, state);
}

/* Moves the stream forward: sends what is pending, ends it, or reads more.
 * One of sending / fetching at a time. */
static void pump(va_sse *c)
{
    if (c->gone || c->sending || c->fetching || c->final_sent)
        return;
    if (c->ending) {
        send_out(c, H2O_SEND_STATE_FINAL);
        return;
    }
    if (c->out.len) {
        send_out(c, H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (c->dirty) {
        c->dirty = 0;
        c->fetching = 1;
        c->work.data = c;
        if (uv_queue_work(c->loop, &c->work, fetch_run, fetch_done) != 0) {
            c->fetching = 0;
            hr_warn("sse", "%s: cannot queue a read of the event stream", c->r->id);
        }
        return;
    }
    if (c->beat_due) {
        static const char k_beat[] = ": keep-alive\n\n";
        c->beat_due = 0;
        if (hr_buf_append(&c->out, k_beat, sizeof(k_beat) - 1) == 0)
            send_out(c, H2O_SEND_STATE_IN_PROGRESS);
    }
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *h)
{
    va_sse *c = (va_sse *)g;
    c->sending = 0;
    hr_buf_reset(&c->out);
    hr_buf_shrink(&c->out, 4096);
    pump(c);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *h)
{
    va_sse *c = (va_sse *)g;
    c->gone = 1; /* the dispose hook follows */
}

static void on_beat(uv_timer_t *t)
{
    va_sse *c = t->data;
    c->beat_due = 1;
    c->dirty = 1; /* also catches a notification lost with a Redis reconnect */
    pump(c);
}

static void on_beat_closed(uv_handle_t *h)
{
    va_sse *c = h->data;
    c->beat_closed = 1;
    maybe_free(c);
}

/* The request is gone (client away, or the final chunk was sent). */
static void on_disposed(void *p)
{
    va_sse *c = *(va_sse **)p;
    c->gone = 1;
    unlink_sse(c);
    uv_close((uv_handle_t *)&c->beat, on_beat_closed);
}

void va_sse_wake(va_server *s)
{
    va_sse *next;
    for (va_sse *c = s->sse_head; c; c = next) {
        next = c->next;
        c->dirty = 1;
        pump(c);
    }
}

void va_sse_close_all(va_server *s)
{
    va_sse *next;
    s->sse_closed = 1;
    if (s->n_sse)
        hr_info("sse", "ending %d event streams", s->n_sse);
    for (va_sse *c = s->sse_head; c; c = next) {
        next = c->next;
        c->ending = 1;
        pump(c); /* may dispose c: it unlinks only itself */
    }
}

/* ---- opening a stream ---- */

typedef struct sse_open {
    char last_id[SSE_ID_MAX]; /* Last-Event-ID, or "" */
    char tip[SSE_ID_MAX];     /* otherwise: the newest event now ("0" when none) */
    int denied;
    int rc;
} sse_open;

/* "<ms>-<seq>" as Redis stream ids are, or "<ms>". */
static int event_id_valid(const char *s)
{
    size_t n = strlen(s), i = 0, a = 0, b = 0;
    if (n == 0 || n >= SSE_ID_MAX)
        return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, a++;
    if (a == 0 || a > 20)
        return 0;
    if (i == n)
        return 1; /* "<ms>" */
    if (s[i] != '-')
        return 0;
    i++;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, b++;
    return i == n && b > 0 && b <= 20;
}

static void open_work(va_req *r, redisContext *c)
{
    sse_open *o = r->state;
    const va_principal *w = &r->who;
    if (!(w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_TECHNICIAN ||
          ((w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && w->center[0]))) {
        o->denied = 1;
        return;
    }
    if (o->last_id[0])
        return;
    if (!c) {
        o->rc = HR_EREDIS;
        return;
    }
    /* a new client starts at the newest event: what follows is new to it */
    redisReply *rep = redisCommand(c, "XREVRANGE %s + - COUNT 1", WL_EVENTS_KEY);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        o->rc = HR_EREDIS;
        sto_worker_redis_failed();
    } else if (rep->elements == 0) {
        snprintf(o->tip, sizeof(o->tip), "0");
    } else {
        redisReply *e = rep->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
            e->element[0]->type == REDIS_REPLY_STRING && event_id_valid(e->element[0]->str))
            snprintf(o->tip, sizeof(o->tip), "%s", e->element[0]->str);
        else
            o->rc = HR_EREDIS;
    }
    freeReplyObject(rep);
}

static void open_done(va_req *r)
{
    sse_open *o = r->state;
    r->state = NULL;
    va_server *s = r->srv;
    char detail[96];
    snprintf(detail, sizeof(detail), "after=%s", o->last_id[0] ? o->last_id : "now");
    if (va_req_gone(r)) {
        free(o);
        return;
    }
    if (o->denied) {
        va_audit(r, "events", NULL, NULL, detail, "denied");
        va_send_error(r, 403, "forbidden", "role %s has no worklist events",
                      sto_role_name(r->who.role));
        free(o);
        return;
    }
    if (o->rc) {
        va_audit(r, "events", NULL, NULL, detail, "failure");
        va_send_rc(r, o->rc, "events");
        free(o);
        return;
    }
    if (s->sse_closed || s->stopping) {
        va_send_error(r, 503, "unavailable", "the server is stopping; reconnect to another node");
        free(o);
        return;
    }
    va_sse *c = calloc(1, sizeof(*c));
    if (!c) {
        va_send_error(r, 500, "internal", "out of memory");
        free(o);
        return;
    }
    c->r = r;
    c->loop = s->loop;
    c->addr = s->sto->redis_addr;
    c->redis_timeout_ms = s->sto->redis_timeout_ms;
    c->role = r->who.role;
    snprintf(c->center, sizeof(c->center), "%s", r->who.center);
    snprintf(c->hospital, sizeof(c->hospital), "%s", r->who.hospital);
    snprintf(c->cursor, sizeof(c->cursor), "%s", o->last_id[0] ? o->last_id : o->tip);
    free(o);
    hr_buf_init(&c->out, SSE_OUT_CAP);
    va_audit(r, "events", NULL, NULL, detail, "success");

    h2o_req_t *h = r->h;
    r->streaming = 1;
    r->status = 200;
    h->res.status = 200;
    h->res.reason = "OK";
    va_add_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    va_add_header(r, "Cache-Control", "no-cache");
    va_add_header(r, "X-Accel-Buffering", "no");
    va_sse **hook = h2o_mem_alloc_shared(&h->pool, sizeof(*hook), on_disposed);
    *hook = c;
    c->gen.proceed = on_proceed;
    c->gen.stop = on_stop;
    uv_timer_init(c->loop, &c->beat);
    c->beat.data = c;
    uv_timer_start(&c->beat, on_beat, VA_SSE_HEARTBEAT_MS, VA_SSE_HEARTBEAT_MS);
    link_sse(s, c);
    h2o_start_response(h, &c->gen);
    char prelude[64];
    int n = snprintf(prelude, sizeof(prelude), "retry: %d\n: huren worklist events\n\n",
                     VA_SSE_RETRY_MS);
    hr_buf_append(&c->out, prelude, (size_t)n);
    c->dirty = 1; /* events after the cursor: a replay, or those since the tip was read */
    pump(c);
}

void va_handle_events(va_req *r)
{
    if (r->srv->sse_closed || r->srv->stopping) {
        va_send_error(r, 503, "unavailable", "the server is stopping; reconnect to another node");
        return;
    }
    const char *last = va_header(r, "last-event-id");
    if (!last)
        last = va_param_get(r, "lastEventId");
    if (last && *last && !event_id_valid(last)) {
        va_send_error(r, 400, "bad_request", "Last-Event-ID must be an event id (<ms>-<seq>)");
        return;
    }
    sse_open *o = calloc(1, sizeof(*o));
    if (!o) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    if (last)
        snprintf(o->last_id, sizeof(o->last_id), "%s", last);
    r->state = o;
    va_req_run(r, open_work, open_done);
}
