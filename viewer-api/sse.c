/* GET /api/v1/events: worklist events as server-sent events (sse.h). */
#include "sse.h"
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../storage/index.h"
#include "auth.h"
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
#define SSE_RING      4096 /* events the node keeps for its streams (a power of two) */
#define SSE_HUB_BATCH 256  /* events the shared reader takes per pool job */
#define SSE_BLOCK     4096 /* MHD's response buffer (chunks are built in its write buffer) */

typedef struct va_sse va_sse;

/* One event as read by the shared reader: formatted once for every stream. */
typedef struct sse_slot {
    uint64_t ms, sq; /* the id, parsed */
    char id[SSE_ID_MAX];
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX];
    char type[16];
    char user[65]; /* an alert's current target */
    char *text;    /* the event's text/event-stream lines; NULL: not sendable */
    size_t len;
} sse_slot;

/* The node's shared reader: one pool job reads what follows the newest
 * event it has read, into a ring every live stream sends from. */
typedef struct sse_hub {
    va_server *srv;
    sto_redis_addr addr;
    int redis_timeout_ms;
    uv_work_t work;
    int init;    /* cursor and base are set */
    int running; /* a pool job runs */
    int again;   /* woken while it ran: read once more */
    int closed;  /* va_sse_close_all ran */
    int logged_err;
    char cursor[SSE_ID_MAX]; /* the newest event read */
    char base[SSE_ID_MAX];   /* the ring holds every event after this one */
    uint64_t first, head;    /* ring sequence numbers [first, head) */
    sse_slot ring[SSE_RING];
    /* pool job results */
    sse_slot job[SSE_HUB_BATCH];
    int job_n, job_gap, job_rc;
    char job_tip[SSE_ID_MAX];
} sse_hub;

static sse_hub g_hub;

struct va_sse {
    va_req *r;
    va_server *srv; /* NULL once unlinked (request disposed) */
    struct va_sse *prev, *next;
    uv_loop_t *loop;
    sto_redis_addr addr; /* copies: a pool job may outlive the request */
    int redis_timeout_ms;
    uv_timer_t beat;
    uv_work_t work;
    /* which events the principal sees */
    int alerts; /* GET /api/v1/alerts/events: only critical-value alerts (decision 0040) */
    enum sto_role role;
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX];
    /* the session: the stream lives only as long as its token */
    char user[VA_USER_MAX + 1];
    char token[VA_TOKEN_LEN + 8];
    long long expires; /* s since the epoch; 0 = unknown */
    uv_work_t auth_work;
    int checking;            /* a token check runs on the pool */
    int auth_rc;             /* its result */
    char cursor[SSE_ID_MAX]; /* the last event read (sent or filtered out) */
    uint64_t cur_ms, cur_sq; /* cursor, parsed */
    int live;                /* sends from the shared ring, from ring sequence pos */
    uint64_t pos;
    int caught_up; /* its own read reached the end of the stream */
    /* the bytes being sent: filled by the pool job, or on the loop while no
     * job runs; MHD's content reader copies them from out_pos */
    hr_buf out;
    size_t out_pos;
    /* pool job results */
    char job_cursor[SSE_ID_MAX];
    int job_rc, job_gap, job_n, job_full;
    int job_sent; /* events formatted into out */
    /* state */
    int sending;     /* out is being copied out by MHD */
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

/* Alert events ("alert.*", reports/alert.h) go only to alert streams: to
 * the ordering hospital's users, the step's target, the readers and
 * auditors of the reading center, admins and the office. */
static int visible(const va_sse *c, const char *type, const char *center, const char *hospital,
                   const char *user)
{
    int alert = strncmp(type, "alert.", 6) == 0;
    if (alert != c->alerts)
        return 0;
    if (alert) {
        if (c->role == STO_ROLE_ADMIN || c->role == STO_ROLE_OFFICE)
            return 1;
        if (strcmp(user, c->user) == 0)
            return 1;
        if ((c->role == STO_ROLE_READER || c->role == STO_ROLE_AUDITOR) && c->center[0])
            return strcmp(center, c->center) == 0;
        return c->role != STO_ROLE_DICOM_PEER && c->hospital[0] &&
               strcmp(hospital, c->hospital) == 0;
    }
    switch (c->role) {
    case STO_ROLE_ADMIN:
        return 1;
    case STO_ROLE_READER:
    case STO_ROLE_AUDITOR:
        return strcmp(center, c->center) == 0;
    case STO_ROLE_TECHNICIAN:
        return strcmp(hospital, c->hospital) == 0;
    default:
        return 0;
    }
}

/* One event in the text/event-stream format into line (SSE_EVENT_MAX + 128
 * bytes): its length, or HR_EPARSE (not UTF-8: skipped, never sent broken). */
static int format_line(const wl_event *ev, char *line, size_t cap)
{
    char data[SSE_EVENT_MAX];
    int alert = strncmp(ev->type, "alert.", 6) == 0;
    json_t *d =
        alert ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", ev->id, "type",
                          ev->type, "alert", ev->reader, "exam", ev->study, "center", ev->center,
                          "hospital", ev->hospital, "state", ev->state, "target", ev->user,
                          "time_ms", (json_int_t)ev->time_ms)
              : json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", ev->id,
                          "type", ev->type, "study", ev->study, "center", ev->center, "hospital",
                          ev->hospital, "state", ev->state, "priority", ev->priority, "user",
                          ev->user, "reader", ev->reader, "time_ms", (json_int_t)ev->time_ms);
    if (!d)
        return HR_EPARSE;
    size_t n = json_dumpb(d, data, sizeof(data), JSON_COMPACT);
    json_decref(d);
    if (n == 0 || n >= sizeof(data))
        return HR_EPARSE;
    int k =
        snprintf(line, cap, "id: %s\nevent: %s\ndata: %.*s\n\n", ev->id, ev->type, (int)n, data);
    if (k < 0 || (size_t)k >= cap)
        return HR_EPARSE;
    return k;
}

/* Appends one event in the text/event-stream format. 0 or HR_ETOOBIG / -ENOMEM. */
static int format_event(hr_buf *out, const wl_event *ev)
{
    char line[SSE_EVENT_MAX + 128];
    int k = format_line(ev, line, sizeof(line));
    if (k < 0)
        return k;
    return hr_buf_append(out, line, (size_t)k);
}

/* "<ms>-<seq>" or "<ms>" ("0": before every event). Unparsable: 0-0. */
static void id_parse(const char *id, uint64_t *ms, uint64_t *sq)
{
    char *end;
    *ms = strtoull(id, &end, 10);
    *sq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

static int id_cmp(uint64_t ams, uint64_t asq, uint64_t bms, uint64_t bsq)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return asq < bsq ? -1 : asq > bsq;
}

static void set_cursor(va_sse *c, const char *id)
{
    snprintf(c->cursor, sizeof(c->cursor), "%s", id);
    id_parse(c->cursor, &c->cur_ms, &c->cur_sq);
}

static int on_event(void *arg, const wl_event *ev)
{
    va_sse *c = arg;
    if (visible(c, ev->type, ev->center, ev->hospital, ev->user)) {
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

/* ---- the shared reader's pool job ---- */

static int hub_on_event(void *arg, const wl_event *ev)
{
    sse_hub *h = arg;
    char line[SSE_EVENT_MAX + 128];
    sse_slot *e = &h->job[h->job_n];
    int k = format_line(ev, line, sizeof(line));
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", ev->id);
    id_parse(e->id, &e->ms, &e->sq);
    snprintf(e->center, sizeof(e->center), "%s", ev->center);
    snprintf(e->hospital, sizeof(e->hospital), "%s", ev->hospital);
    snprintf(e->type, sizeof(e->type), "%s", ev->type);
    snprintf(e->user, sizeof(e->user), "%s", ev->user);
    if (k < 0) {
        hr_warn("sse", "event %s of %s not sent: not valid UTF-8", ev->id, ev->study);
    } else {
        e->text = malloc((size_t)k);
        if (!e->text)
            return -ENOMEM; /* the cursor stays before this event */
        memcpy(e->text, line, (size_t)k);
        e->len = (size_t)k;
    }
    h->job_n++;
    return h->job_n < SSE_HUB_BATCH ? 0 : 1;
}

/* The newest event's id into tip ("0" when none). 0 or HR_EREDIS. */
static int read_tip(redisContext *c, char *tip, size_t cap)
{
    redisReply *rep = redisCommand(c, "XREVRANGE %s + - COUNT 1", WL_EVENTS_KEY);
    int rc = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        rc = HR_EREDIS;
    } else if (rep->elements == 0) {
        snprintf(tip, cap, "0");
    } else {
        redisReply *e = rep->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
            e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < cap)
            snprintf(tip, cap, "%s", e->element[0]->str);
        else
            rc = HR_EREDIS;
    }
    freeReplyObject(rep);
    return rc;
}

static void hub_free_job(sse_hub *h)
{
    for (int i = 0; i < h->job_n; i++) {
        free(h->job[i].text);
        h->job[i].text = NULL;
    }
    h->job_n = 0;
}

static void hub_run(uv_work_t *w)
{
    sse_hub *h = w->data;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *rc = sto_worker_redis(&h->addr, h->redis_timeout_ms);
        hub_free_job(h);
        h->job_gap = 0;
        h->job_tip[0] = '\0';
        if (!rc) {
            h->job_rc = HR_EREDIS;
            return;
        }
        if (!h->init)
            h->job_rc = read_tip(rc, h->job_tip, sizeof(h->job_tip));
        else
            h->job_rc = wl_events_since(rc, h->cursor, SSE_HUB_BATCH, hub_on_event, h, &h->job_gap);
        if (h->job_rc != HR_EREDIS)
            break;
        sto_worker_redis_failed();
    }
    if (h->job_rc == 1)
        h->job_rc = 0; /* a full batch */
    if (h->job_rc == -ENOMEM && h->job_n)
        h->job_rc = 0; /* the rest comes next */
}

/* ---- the loop side ---- */

static void pump(va_sse *c);

static void maybe_free(va_sse *c)
{
    if (!c->gone || !c->beat_closed || c->fetching || c->checking)
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
        set_cursor(c, c->job_cursor);
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
        else
            c->caught_up = 1; /* may join the shared reader */
    }
    pump(c);
}

/* Hands out to MHD (final: then the end of the response). */
static void send_out(va_sse *c, int final)
{
    c->sending = 1;
    c->out_pos = 0;
    if (final)
        c->final_sent = 1;
    /* MHD calls on_read again (a no-op inside on_read itself) */
    va_req_resume(c->r);
}

/* The stream sends from the ring from now on if the ring holds every event
 * after its cursor. Events up to the cursor are skipped there. */
static int try_join(va_sse *c)
{
    sse_hub *h = &g_hub;
    uint64_t bms, bsq;
    if (!h->init || h->closed || h->srv != c->srv)
        return 0;
    id_parse(h->base, &bms, &bsq);
    if (id_cmp(c->cur_ms, c->cur_sq, bms, bsq) < 0)
        return 0;
    c->live = 1;
    c->pos = h->first;
    c->caught_up = 0;
    c->dirty = 0;
    return 1;
}

/* Appends what the ring holds past pos and the cursor, at most one batch.
 * A stream left behind by the ring reads on its own from its cursor. */
static void fill(va_sse *c)
{
    sse_hub *h = &g_hub;
    int sent = 0;
    if (c->pos < h->first || h->closed) {
        c->live = 0;
        c->dirty = 1;
        return;
    }
    while (c->pos < h->head && sent < VA_SSE_BATCH) {
        const sse_slot *e = &h->ring[c->pos & (SSE_RING - 1)];
        if (id_cmp(e->ms, e->sq, c->cur_ms, c->cur_sq) > 0) {
            if (e->text && visible(c, e->type, e->center, e->hospital, e->user)) {
                if (hr_buf_append(&c->out, e->text, e->len))
                    break; /* full: the rest once the client took this */
                sent++;
            }
            snprintf(c->cursor, sizeof(c->cursor), "%s", e->id);
            c->cur_ms = e->ms;
            c->cur_sq = e->sq;
        }
        c->pos++;
    }
    if (c->srv)
        c->srv->sse_events += (uint64_t)sent;
}

/* Moves the stream forward: sends what is pending, ends it, or reads more.
 * One of sending / fetching at a time. */
static void pump(va_sse *c)
{
    if (c->gone || c->sending || c->fetching || c->final_sent)
        return;
    if (c->ending) {
        send_out(c, 1);
        return;
    }
    if (!c->live && c->caught_up && !c->dirty)
        try_join(c); /* then catches up from the ring below */
    if (c->live)
        fill(c);
    if (c->out.len) {
        send_out(c, 0);
        return;
    }
    if (!c->live && c->dirty) {
        c->dirty = 0;
        c->caught_up = 0;
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
            send_out(c, 0);
    }
}

/* ---- the shared reader, loop side ---- */

static void hub_done(uv_work_t *w, int status);

static void hub_wake(va_server *s)
{
    sse_hub *h = &g_hub;
    if (h->closed || h->srv != s)
        return;
    if (h->running) {
        h->again = 1;
        return;
    }
    h->addr = s->sto->redis_addr;
    h->redis_timeout_ms = s->sto->redis_timeout_ms;
    h->again = 0;
    h->running = 1;
    h->work.data = h;
    if (uv_queue_work(s->loop, &h->work, hub_run, hub_done) != 0) {
        h->running = 0;
        hr_warn("sse", "cannot queue a read of the event stream");
    }
}

static void hub_clear(sse_hub *h)
{
    for (uint64_t q = h->first; q < h->head; q++) {
        sse_slot *e = &h->ring[q & (SSE_RING - 1)];
        free(e->text);
        e->text = NULL;
    }
    h->first = h->head;
}

static void hub_done(uv_work_t *w, int status)
{
    sse_hub *h = w->data;
    va_server *s = h->srv;
    int more = 0;
    h->running = 0;
    if (h->closed) {
        hub_free_job(h);
        hub_clear(h);
        return;
    }
    if (h->job_rc) {
        /* Redis is down: the next notification or heartbeat tries again */
        if (!h->logged_err)
            hr_warn("sse", "cannot read worklist events after %s: %s",
                    h->init ? h->cursor : "the newest", hr_strerror(h->job_rc));
        h->logged_err = 1;
        hub_free_job(h);
        if (h->again)
            h->again = 0; /* no retry loop while Redis is away */
        return;
    }
    h->logged_err = 0;
    if (!h->init) {
        snprintf(h->cursor, sizeof(h->cursor), "%s", h->job_tip);
        snprintf(h->base, sizeof(h->base), "%s", h->job_tip);
        h->init = 1;
        more = 1; /* what followed the tip meanwhile */
    } else if (h->job_gap) {
        /* events were trimmed before this node read them: streams read on
         * their own, which announces the gap to their clients */
        if (h->job_n)
            snprintf(h->cursor, sizeof(h->cursor), "%s", h->job[h->job_n - 1].id);
        hub_clear(h);
        snprintf(h->base, sizeof(h->base), "%s", h->cursor);
        hub_free_job(h);
        for (va_sse *c = s->sse_head; c; c = c->next)
            if (c->live) {
                c->live = 0;
                c->dirty = 1;
            }
        more = 1;
    } else {
        for (int i = 0; i < h->job_n; i++) {
            if (h->head - h->first == SSE_RING) {
                sse_slot *old = &h->ring[h->first & (SSE_RING - 1)];
                snprintf(h->base, sizeof(h->base), "%s", old->id);
                free(old->text);
                old->text = NULL;
                h->first++;
            }
            h->ring[h->head & (SSE_RING - 1)] = h->job[i];
            h->job[i].text = NULL;
            h->head++;
        }
        if (h->job_n)
            snprintf(h->cursor, sizeof(h->cursor), "%s", h->job[h->job_n - 1].id);
        more = h->job_n >= SSE_HUB_BATCH;
        h->job_n = 0;
    }
    va_sse *next;
    for (va_sse *c = s->sse_head; c; c = next) {
        next = c->next;
        pump(c); /* may dispose c: it unlinks only itself */
    }
    if (more || h->again)
        hub_wake(s);
}

/* MHD's content reader (chunked): copies what is pending; once the client
 * took it all, moves the stream on; with nothing to send, suspends the
 * connection until send_out. */
static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    va_sse *c = cls;
    if (c->gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    for (;;) {
        if (c->sending) {
            size_t left = c->out.len - c->out_pos;
            if (left) {
                size_t k = left < max ? left : max;
                memcpy(buf, c->out.data + c->out_pos, k);
                c->out_pos += k;
                return (ssize_t)k;
            }
            c->sending = 0;
            hr_buf_reset(&c->out);
            hr_buf_shrink(&c->out, 4096);
            c->out_pos = 0;
            if (c->final_sent)
                return MHD_CONTENT_READER_END_OF_STREAM;
            pump(c);
            if (c->sending)
                continue;
        } else if (c->final_sent) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        va_req_suspend(c->r);
        return 0;
    }
}

/* Ends a stream whose session ended: an `end` event, then the final chunk. */
static void end_session(va_sse *c, const char *why)
{
    if (c->ending || c->gone)
        return;
    char line[128];
    int n = snprintf(line, sizeof(line), "event: end\ndata: {\"reason\":\"%s\"}\n\n", why);
    hr_info("sse", "%s: event stream of %s ended: %s", c->r->id, c->user, why);
    /* out belongs to MHD while sending and to a pool job while fetching: the
     * end event is added only when neither holds it (the stream ends anyway) */
    if (!c->sending && !c->fetching) {
        hr_buf_reset(&c->out);
        hr_buf_append(&c->out, line, (size_t)n);
    }
    c->ending = 1;
    pump(c);
}

/* The token is checked again every heartbeat: a revoked token (logout, a
 * password change, a disabled user) ends the stream within one heartbeat. */
static void auth_run(uv_work_t *w)
{
    va_sse *c = w->data;
    va_principal p;
    redisContext *rc = sto_worker_redis(&c->addr, c->redis_timeout_ms);
    c->auth_rc = rc ? va_auth_check(rc, c->token, &p) : HR_EREDIS;
    if (c->auth_rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void auth_done(uv_work_t *w, int status)
{
    va_sse *c = w->data;
    c->checking = 0;
    if (c->gone) {
        maybe_free(c);
        return;
    }
    if (c->auth_rc == -EACCES)
        end_session(c, "session ended");
    /* Redis down: the stream stays; the next heartbeat checks again */
}

static void check_session(va_sse *c)
{
    if (c->expires && hr_wall_ms() / 1000 >= c->expires) {
        end_session(c, "session expired");
        return;
    }
    if (c->checking || c->ending || !c->token[0])
        return;
    c->checking = 1;
    c->auth_work.data = c;
    if (uv_queue_work(c->loop, &c->auth_work, auth_run, auth_done) != 0)
        c->checking = 0;
}

static void on_beat(uv_timer_t *t)
{
    va_sse *c = t->data;
    check_session(c);
    if (c->ending)
        return;
    c->beat_due = 1;
    /* also catches a notification lost with a Redis reconnect */
    if (!c->live)
        c->dirty = 1;
    if (c->srv)
        hub_wake(c->srv);
    pump(c);
}

static void on_beat_closed(uv_handle_t *h)
{
    va_sse *c = h->data;
    c->beat_closed = 1;
    maybe_free(c);
}

/* MHD is done with the response (client away, or the final chunk was sent). */
static void on_disposed(void *p)
{
    va_sse *c = p;
    c->gone = 1;
    unlink_sse(c);
    uv_close((uv_handle_t *)&c->beat, on_beat_closed);
}

void va_sse_wake(va_server *s)
{
    va_sse *next;
    hub_wake(s);
    /* streams not (yet) on the shared reader read on their own */
    for (va_sse *c = s->sse_head; c; c = next) {
        next = c->next;
        if (c->live)
            continue;
        c->dirty = 1;
        pump(c);
    }
}

void va_sse_close_all(va_server *s)
{
    va_sse *next;
    s->sse_closed = 1;
    if (g_hub.srv == s) {
        g_hub.closed = 1;
        if (!g_hub.running)
            hub_clear(&g_hub);
    }
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
    int alerts;               /* GET /api/v1/alerts/events */
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
    if (o->alerts
            ? w->role == STO_ROLE_DICOM_PEER
            : !(w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_TECHNICIAN ||
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
    o->rc = read_tip(c, o->tip, sizeof(o->tip));
    if (o->rc)
        sto_worker_redis_failed();
    else if (!event_id_valid(o->tip))
        o->rc = HR_EREDIS;
}

static void open_done(va_req *r)
{
    sse_open *o = r->state;
    r->state = NULL;
    va_server *s = r->srv;
    const char *action = o->alerts ? "alert-events" : "events";
    char detail[96];
    snprintf(detail, sizeof(detail), "after=%s", o->last_id[0] ? o->last_id : "now");
    if (va_req_gone(r)) {
        free(o);
        return;
    }
    if (o->denied) {
        va_audit(r, action, NULL, NULL, detail, "denied");
        va_send_error(r, 403, "forbidden", "role %s has no worklist events",
                      sto_role_name(r->who.role));
        free(o);
        return;
    }
    if (o->rc) {
        va_audit(r, action, NULL, NULL, detail, "failure");
        va_send_rc(r, o->rc, action);
        free(o);
        return;
    }
    if (s->sse_closed || s->stopping) {
        va_send_error(r, 503, "unavailable", "the server is stopping; reconnect to another node");
        free(o);
        return;
    }
    int mine = 0;
    for (va_sse *o2 = s->sse_head; o2; o2 = o2->next)
        mine += strcmp(o2->user, r->who.user) == 0 && !o2->ending;
    if (mine >= VA_SSE_PER_USER) {
        va_audit(r, action, NULL, NULL, "too many streams", "denied");
        va_add_header(r, "Retry-After", "15");
        va_send_error(r, 429, "too_many_streams",
                      "user %s has %d event streams open on this node (at most %d)", r->who.user,
                      mine, VA_SSE_PER_USER);
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
    c->alerts = o->alerts;
    snprintf(c->center, sizeof(c->center), "%s", r->who.center);
    snprintf(c->hospital, sizeof(c->hospital), "%s", r->who.hospital);
    snprintf(c->user, sizeof(c->user), "%s", r->who.user);
    snprintf(c->token, sizeof(c->token), "%s", r->token);
    c->expires = r->who.expires;
    set_cursor(c, o->last_id[0] ? o->last_id : o->tip);
    sse_hub *hub = &g_hub;
    if (hub->closed || (hub->srv && hub->srv != s)) {
        /* not this server's reader: this stream reads on its own */
    } else {
        hub->srv = s;
        if (!hub->init && !hub->running && o->tip[0]) {
            /* the reader starts at the newest event, as this stream */
            snprintf(hub->cursor, sizeof(hub->cursor), "%s", o->tip);
            snprintf(hub->base, sizeof(hub->base), "%s", o->tip);
            hub->init = 1;
        }
    }
    int alerts = o->alerts;
    free(o);
    hr_buf_init(&c->out, SSE_OUT_CAP);
    va_audit(r, action, NULL, NULL, detail, "success");

    va_add_header(r, "Cache-Control", "no-cache");
    va_add_header(r, "X-Accel-Buffering", "no");
    uv_timer_init(c->loop, &c->beat);
    c->beat.data = c;
    if (va_send_stream(r, 200, "text/event-stream; charset=utf-8", MHD_SIZE_UNKNOWN, SSE_BLOCK,
                       on_read, c, on_disposed) != 0) {
        c->gone = 1;
        uv_close((uv_handle_t *)&c->beat, on_beat_closed);
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    uv_timer_start(&c->beat, on_beat, VA_SSE_HEARTBEAT_MS, VA_SSE_HEARTBEAT_MS);
    link_sse(s, c);
    char prelude[64];
    int n = snprintf(prelude, sizeof(prelude), "retry: %d\n: huren %s events\n\n", VA_SSE_RETRY_MS,
                     alerts ? "alert" : "worklist");
    hr_buf_append(&c->out, prelude, (size_t)n);
    /* events after the cursor: a replay, or those since the tip was read;
     * from the ring when it holds them all, else read on its own */
    if (!try_join(c))
        c->dirty = 1;
    hub_wake(s);
    pump(c);
}

static void open_events(va_req *r, int alerts)
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
    o->alerts = alerts;
    r->state = o;
    va_req_run(r, open_work, open_done);
}

void va_handle_events(va_req *r)
{
    open_events(r, 0);
}

void va_handle_alert_events(va_req *r)
{
    open_events(r, 1);
}
