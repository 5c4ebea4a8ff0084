/* HTTP server core: libmicrohttpd (HTTP/1.1) driven by the libuv loop,
 * routing, request ids, JSON errors, CORS, bearer-token authentication on
 * the thread pool (before any body byte is read), bounded request bodies,
 * access log and metrics (decision 0018). Handlers live in their own files
 * (va.h). */
#include "va.h"
#include "../common/hr_io.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../storage/index.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define VA_CONN_TIMEOUT_S 60          /* an idle connection (not suspended) is closed */
#define VA_MHD_LOG_GAP_MS 1000        /* at most one libmicrohttpd log line per second */
#define VA_CONN_MEMORY    (64u << 10) /* MHD's per-connection pool: headers, read buffer */
#define VA_TLS_FILE_MAX   (1u << 20)  /* PEM files */
#define VA_STOP_GRACE_MS  10000

static const va_route k_routes[] = {
    {"GET", "/healthz", 1, va_handle_healthz, "healthz", VA_BODY_NONE},
    {"GET", "/metrics", 0, va_handle_metrics, "metrics", VA_BODY_NONE},
    {"POST", "/api/v1/login", 1, va_handle_login, "login", VA_BODY_SMALL},
    {"POST", "/api/v1/logout", 0, va_handle_logout, "logout", VA_BODY_SMALL},
    {"GET", "/api/v1/me", 0, va_handle_me, "me", VA_BODY_NONE},
    {"POST", "/api/v1/me/password", 0, va_handle_password, "password", VA_BODY_SMALL},
    {"GET", "/dicomweb/studies", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/series", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/instances", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/instances", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances", 0, va_handle_qido, "qido", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}", 0, va_handle_wado, "wado", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}", 0, va_handle_wado, "wado", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}", 0, va_handle_wado, "wado", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/metadata", 0, va_handle_metadata, "metadata", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/metadata", 0, va_handle_metadata, "metadata",
     VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/metadata", 0, va_handle_metadata,
     "metadata", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/frames/{}", 0, va_handle_frames, "frames",
     VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/bulk/{}", 0, va_handle_bulk, "bulk",
     VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/rendered", 0, va_handle_rendered, "rendered", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/rendered", 0, va_handle_rendered, "rendered",
     VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/rendered", 0, va_handle_rendered,
     "rendered", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/frames/{}/rendered", 0, va_handle_rendered,
     "rendered", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/thumbnail", 0, va_handle_thumbnail, "thumbnail", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/thumbnail", 0, va_handle_thumbnail, "thumbnail",
     VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/thumbnail", 0, va_handle_thumbnail,
     "thumbnail", VA_BODY_NONE},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/frames/{}/thumbnail", 0,
     va_handle_thumbnail, "thumbnail", VA_BODY_NONE},
    {"POST", "/dicomweb/studies", 0, va_handle_stow, "stow", VA_BODY_STREAM},
    {"POST", "/dicomweb/studies/{}", 0, va_handle_stow, "stow", VA_BODY_STREAM},
    {"POST", "/api/v1/ecg", 0, va_handle_ecg_import, "ecg-import", VA_BODY_STREAM},
    {"GET", "/wado", 0, va_handle_wado_uri, "wado-uri", VA_BODY_NONE},
    {"GET", "/dicomweb/wado", 0, va_handle_wado_uri, "wado-uri", VA_BODY_NONE},
    {"GET", "/dicomweb", 0, va_handle_wado_uri, "wado-uri", VA_BODY_NONE},
    {"GET", "/api/v1/worklists/{}", 0, va_handle_worklist, "worklist", VA_BODY_NONE},
    {"POST", "/api/v1/worklists/{}/items/{}/claim", 0, va_handle_worklist_claim, "worklist-claim",
     VA_BODY_SMALL},
    {"POST", "/api/v1/worklists/{}/items/{}/release", 0, va_handle_worklist_release,
     "worklist-release", VA_BODY_SMALL},
    {"POST", "/api/v1/worklists/{}/items/{}/renew", 0, va_handle_worklist_renew, "worklist-renew",
     VA_BODY_SMALL},
    {"POST", "/api/v1/worklists/{}/items/{}/reassign", 0, va_handle_worklist_reassign,
     "worklist-reassign", VA_BODY_SMALL},
    {"GET", "/api/v1/exams", 0, va_handle_exams, "exams", VA_BODY_NONE},
    {"POST", "/api/v1/exams/{}/complete", 0, va_handle_exam_complete, "exam-complete",
     VA_BODY_SMALL},
    {"GET", "/api/v1/exams/{}", 0, va_handle_exam, "exam", VA_BODY_NONE},
    {"GET", "/api/v1/exams/{}/priors", 0, va_handle_exam_priors, "exam-priors", VA_BODY_NONE},
    {"GET", "/api/v1/report-templates", 0, va_handle_report_templates, "report-templates",
     VA_BODY_NONE},
    {"POST", "/api/v1/reports", 0, va_handle_report_create, "report-create", VA_BODY_SMALL},
    {"GET", "/api/v1/reports", 0, va_handle_reports, "reports", VA_BODY_NONE},
    {"GET", "/api/v1/reports/{}", 0, va_handle_report_get, "report", VA_BODY_NONE},
    {"PUT", "/api/v1/reports/{}", 0, va_handle_report_save, "report-save", VA_BODY_LARGE},
    {"POST", "/api/v1/reports/{}/sign", 0, va_handle_report_sign, "report-sign", VA_BODY_SMALL},
    {"POST", "/api/v1/reports/{}/cosign", 0, va_handle_report_cosign, "report-cosign",
     VA_BODY_SMALL},
    {"POST", "/api/v1/reports/{}/amend", 0, va_handle_report_amend, "report-amend", VA_BODY_LARGE},
    {"POST", "/api/v1/reports/{}/return", 0, va_handle_report_return, "report-return",
     VA_BODY_SMALL},
    {"POST", "/api/v1/reports/{}/retract", 0, va_handle_report_retract, "report-retract",
     VA_BODY_SMALL},
    {"GET", "/api/v1/reports/{}/versions/{}/jws", 0, va_handle_report_jws, "report-jws",
     VA_BODY_NONE},
    {"GET", "/api/v1/reports/{}/versions/{}/pdf", 0, va_handle_report_pdf, "report-pdf",
     VA_BODY_NONE},
    {"GET", "/api/v1/ecg/{}", 0, va_handle_ecg, "ecg", VA_BODY_NONE},
    {"GET", "/api/v1/reports/{}/versions/{}/verify", 0, va_handle_report_verify, "report-verify",
     VA_BODY_NONE},
    {"GET", "/api/v1/events", 0, va_handle_events, "events", VA_BODY_NONE},
    {"POST", "/api/v1/persons/link", 0, va_handle_persons_link, "persons-link", VA_BODY_SMALL},
    {"GET", "/api/v1/persons/{}", 0, va_handle_person, "persons", VA_BODY_NONE},
    {"GET", "/api/v1/lab-reports", 0, va_handle_lab_reports, "lab-reports", VA_BODY_NONE},
    {"GET", "/api/v1/lab-reports/{}", 0, va_handle_lab_report, "lab-report", VA_BODY_NONE},
    {"GET", "/api/v1/recognition", 0, va_handle_recognition, "recognition", VA_BODY_NONE},
    {"GET", "/api/v1/recognition/catalogue", 0, va_handle_recognition_catalogue,
     "recognition-catalogue", VA_BODY_NONE},
    {"GET", "/api/v1/recognition/decisions", 0, va_handle_recognition_decisions,
     "recognition-decisions", VA_BODY_NONE},
    {"POST", "/api/v1/recognition/{}/decision", 0, va_handle_recognition_decision,
     "recognition-decision", VA_BODY_SMALL},
    {"GET", "/api/v1/recognition/{}/decisions", 0, va_handle_recognition_decisions,
     "recognition-decisions", VA_BODY_NONE},
    {"GET", "/api/v1/stats/recognition", 0, va_handle_recognition_stats, "recognition-stats",
     VA_BODY_NONE},
    {"GET", "/api/v1/deliveries", 0, va_handle_deliveries, "deliveries", VA_BODY_NONE},
    {"GET", "/api/v1/alerts", 0, va_handle_alerts, "alerts", VA_BODY_NONE},
    {"GET", "/api/v1/alerts/events", 0, va_handle_alert_events, "alert-events", VA_BODY_NONE},
    {"GET", "/api/v1/alerts/{}", 0, va_handle_alert, "alert", VA_BODY_NONE},
    {"POST", "/api/v1/alerts/{}/ack", 0, va_handle_alert_ack, "alert-ack", VA_BODY_SMALL},
    {"GET", "/api/v1/stats/volumes", 0, va_handle_stats_volumes, "stats-volumes", VA_BODY_NONE},
    {"GET", "/api/v1/stats/turnaround", 0, va_handle_stats_turnaround, "stats-turnaround",
     VA_BODY_NONE},
    {"GET", "/api/v1/stats/overdue", 0, va_handle_stats_overdue, "stats-overdue", VA_BODY_NONE},
    {"GET", "/api/v1/stats/alerts", 0, va_handle_stats_alerts, "stats-alerts", VA_BODY_NONE},
    {"GET", "/api/v1/audit", 0, va_handle_audit_search, "audit-search", VA_BODY_NONE},
    {"GET", "/api/v1/users", 0, va_handle_users, "users", VA_BODY_NONE},
    {"POST", "/api/v1/users", 0, va_handle_user_create, "user-add", VA_BODY_SMALL},
    {"POST", "/api/v1/users/{}/disable", 0, va_handle_user_disable, "user-disable", VA_BODY_SMALL},
    {"POST", "/api/v1/users/{}/enable", 0, va_handle_user_enable, "user-enable", VA_BODY_SMALL},
    {"POST", "/api/v1/users/{}/password", 0, va_handle_user_password, "user-password",
     VA_BODY_SMALL},
    {"GET", "/api/v1/config/hospitals", 0, va_handle_config_hospitals, "config-hospitals",
     VA_BODY_NONE},
    {"GET", "/api/v1/config/centers", 0, va_handle_config_centers, "config-centers", VA_BODY_NONE},
    {"POST", "/api/v1/shares", 0, va_handle_share_create, "share-create", VA_BODY_SMALL},
    {"GET", "/api/v1/shares", 0, va_handle_shares, "shares", VA_BODY_NONE},
    {"POST", "/api/v1/shares/{}/revoke", 0, va_handle_share_revoke, "share-revoke", VA_BODY_SMALL},
    {"GET", "/api/v1/share/{}", 1, va_handle_share_read, "share-read", VA_BODY_NONE},
    {"GET", "/api/v1/share/{}/images/{}", 1, va_handle_share_image, "share-image", VA_BODY_NONE},
    {"GET", "/api/v1/share/{}/pdf", 1, va_handle_share_pdf, "share-pdf", VA_BODY_NONE},
    {"GET", "/viewer/app-config.js", 0, va_handle_viewer_config, "viewer-config", VA_BODY_NONE},
    /* the pages and the viewer (static.c): chosen by va_static_path when no
     * route matched; these patterns match no request path */
    {"GET", "(static)", 1, va_handle_static, "static", VA_BODY_NONE},
    {"HEAD", "(static)", 1, va_handle_static, "static", VA_BODY_NONE},
};
#define ROUTE_STATIC_GET  (N_ROUTES - 2)
#define ROUTE_STATIC_HEAD (N_ROUTES - 1)
#define N_ROUTES          (sizeof(k_routes) / sizeof(k_routes[0]))

/* Routes whose answers hold patient data: refused while the audit log cannot
 * record them (fail closed). */
static int reads_patient_data(const va_route *rt)
{
    static const char *const k[] = {"qido",
                                    "wado",
                                    "metadata",
                                    "frames",
                                    "bulk",
                                    "wado-uri",
                                    "worklist",
                                    "exams",
                                    "events",
                                    "exam",
                                    "reports",
                                    "report",
                                    "report-jws",
                                    "report-create",
                                    "report-save",
                                    "report-sign",
                                    "report-cosign",
                                    "report-amend",
                                    "report-retract",
                                    "report-return",
                                    "exam-priors",
                                    "persons",
                                    "persons-link",
                                    "lab-reports",
                                    "lab-report",
                                    "recognition",
                                    "recognition-decision",
                                    "recognition-decisions",
                                    "deliveries",
                                    "alerts",
                                    "alert",
                                    "alert-ack",
                                    "alert-events",
                                    "report-pdf",
                                    "ecg",
                                    "stats-overdue",
                                    "audit-search",
                                    "rendered",
                                    "thumbnail",
                                    "share-create",
                                    "shares",
                                    "share-revoke",
                                    "share-read",
                                    "share-image",
                                    "share-pdf"};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (strcmp(rt->metric, k[i]) == 0)
            return 1;
    return 0;
}

/* latency histogram buckets (seconds) for /metrics */
static const double k_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof(k_buckets) / sizeof(k_buckets[0]))

typedef struct va_route_stats {
    uint64_t by_class[6]; /* 1xx..5xx responses, [0] unused */
    uint64_t bucket[N_BUCKETS];
    uint64_t count;
    double sum_s;
} va_route_stats;

/* Where a request is in its exchange with MHD (r->phase). */
enum {
    PH_NEW,     /* request line read (URI log callback); headers not seen */
    PH_PREAUTH, /* suspended at the headers: the token is checked on the pool */
    PH_COLLECT, /* reading a VA_BODY_SMALL or VA_BODY_LARGE body */
    PH_STREAM,  /* feeding a VA_BODY_STREAM body to r->body_fn */
    PH_FINAL,   /* no body: the handler runs on MHD's final call */
    PH_HANDLER  /* the handler runs (pool work, or a response is out) */
};

static void kick(va_server *s);
static void maybe_finish_stop(va_server *s);
static void unhold(va_req *r);

/* ---- request lifetime ----
 * A va_req is malloc'ed by the URI log callback and given to MHD as the
 * request's context. MHD's completion callback (response sent, client gone,
 * connection closed) clears r->h; the request is freed once nothing else
 * holds it: pool work (in_work) or a streamed body or response (streaming). */

static void server_release(va_server *s);

static void req_free(va_req *r)
{
    va_server *s = r->srv;
    if (r->prev_req)
        r->prev_req->next_req = r->next_req;
    else
        s->reqs = r->next_req;
    if (r->next_req)
        r->next_req->prev_req = r->prev_req;
    s->n_reqs--;
    if (r->held)
        unhold(r);
    for (int i = 0; i < r->n_segs; i++)
        free(r->segs[i]);
    for (int i = 0; i < r->n_params; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    if (r->pending)
        MHD_destroy_response(r->pending);
    hr_buf_free(&r->resp_headers);
    hr_buf_free(&r->body);
    free(r->uri);
    free(r);
    if (s->free_wanted && s->n_reqs == 0)
        server_release(s);
}

static void record(va_req *r)
{
    va_server *s = r->srv;
    if (r->phase == PH_NEW && !r->status) {
        /* MHD refused it before its headers were complete (malformed,
         * too large, client gone): no route, no response of ours */
        hr_debug("http", "%s %s request not completed (%.80s)", r->id, r->peer,
                 r->uri ? r->uri : "");
        return;
    }
    size_t idx = r->route ? (size_t)(r->route - k_routes) : N_ROUTES;
    va_route_stats *st = &s->stats[idx];
    double secs = (double)(uv_hrtime() - r->t0_ns) / 1e9;
    int cls = r->status / 100;
    if (cls >= 1 && cls <= 5)
        st->by_class[cls]++;
    st->count++;
    st->sum_s += secs;
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (secs <= k_buckets[i])
            st->bucket[i]++;
    hr_info("http", "%s %s %s %s %d %.1f ms%s%s%s", r->id, r->peer,
            r->route ? r->route->method : "-", r->route ? r->route->pattern : "(no route)",
            r->status, secs * 1000.0, r->who.user[0] ? " user=" : "", r->who.user,
            r->queued ? "" : " (no response: connection closed)");
}

void va_req_stream_end(va_req *r)
{
    r->streaming = 0;
    r->on_gone = NULL;
    if (!r->h && !r->in_work)
        req_free(r);
}

/* ---- talking to MHD ----
 * MHD calls us (access handler, content readers) from MHD_run on the loop.
 * Waiting for the pool or for ingest, a connection is suspended; it is
 * resumed from the loop, and MHD then calls again: a response made in the
 * meantime (r->pending) is queued from the access handler, as MHD wants. */

static void conn_resume(va_req *r)
{
    if (!r->suspended || !r->h)
        return;
    r->suspended = 0;
    MHD_resume_connection(r->h);
    kick(r->srv);
}

void va_req_suspend(va_req *r)
{
    if (r->suspended || !r->h)
        return;
    r->suspended = 1;
    MHD_suspend_connection(r->h);
}

void va_req_resume(va_req *r)
{
    conn_resume(r);
}

void va_body_pause(va_req *r)
{
    r->paused = 1; /* the access handler suspends on return */
}

void va_body_resume(va_req *r)
{
    r->paused = 0;
    if (!r->in_ahc)
        conn_resume(r);
}

/* Applies the headers handlers added. */
static void apply_headers(va_req *r, struct MHD_Response *resp)
{
    const char *p = (const char *)r->resp_headers.data, *end = p + r->resp_headers.len;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        MHD_add_response_header(resp, p, v);
        p = v + strlen(v) + 1;
    }
    if (r->srv->stopping)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* ---- held responses (va_req_defer) ----
 * A held request keeps its response in r->pending and its connection
 * suspended; srv->held_first..held_last is ordered by release time, and one
 * timer releases them: the connection is resumed and MHD's next call of the
 * access handler queues the response. */

static void on_held_timer(uv_timer_t *t);

static void arm_held(va_server *s)
{
    if (s->stopping_final)
        return;
    if (!s->held_first) {
        uv_timer_stop(&s->held_timer);
        return;
    }
    uint64_t now = uv_now(s->loop), at = s->held_first->release_ms;
    uv_timer_start(&s->held_timer, on_held_timer, at > now ? at - now : 0, 0);
}

static void unhold(va_req *r)
{
    va_server *s = r->srv;
    if (r->held_prev)
        r->held_prev->held_next = r->held_next;
    else
        s->held_first = r->held_next;
    if (r->held_next)
        r->held_next->held_prev = r->held_prev;
    else
        s->held_last = r->held_prev;
    r->held_prev = r->held_next = NULL;
    r->held = 0;
    s->n_held--;
}

static void on_held_timer(uv_timer_t *t)
{
    va_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    while (s->held_first && s->held_first->release_ms <= now) {
        va_req *r = s->held_first;
        unhold(r);
        conn_resume(r); /* a client gone meanwhile is found by MHD now */
    }
    arm_held(s);
}

/* At a graceful stop: every held response goes out now, closing. */
static void release_held(va_server *s)
{
    int n = 0;
    while (s->held_first) {
        va_req *r = s->held_first;
        unhold(r);
        if (r->pending)
            MHD_add_response_header(r->pending, MHD_HTTP_HEADER_CONNECTION, "close");
        conn_resume(r);
        n++;
    }
    if (n)
        hr_info("http", "stopping: %d held responses released", n);
    arm_held(s);
}

void va_req_defer(va_req *r, unsigned ms)
{
    r->defer_ms = ms;
}

/* Keeps resp back for r->defer_ms (va_req_defer). 1 when held; 0 when it
 * goes out at once (stopping, delay 0, or the bound reached: then closing). */
static int hold(va_req *r, unsigned status, struct MHD_Response *resp)
{
    va_server *s = r->srv;
    unsigned ms = r->defer_ms;
    r->defer_ms = 0;
    if (!ms || s->stopping || !r->h)
        return 0;
    if (s->n_held >= VA_HELD_MAX) {
        s->deferred_overflow++;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        return 0;
    }
    r->pending = resp;
    r->pending_status = status;
    r->held = 1;
    r->release_ms = uv_now(s->loop) + ms;
    /* ordered by release time, searched from the end (one delay: appended) */
    va_req *p = s->held_last;
    while (p && p->release_ms > r->release_ms)
        p = p->held_prev;
    r->held_prev = p;
    r->held_next = p ? p->held_next : s->held_first;
    if (r->held_next)
        r->held_next->held_prev = r;
    else
        s->held_last = r;
    if (p)
        p->held_next = r;
    else
        s->held_first = r;
    s->n_held++;
    s->deferred++;
    if (s->held_first == r)
        arm_held(s);
    /* after a pool step the connection is suspended already; inside MHD's
     * access handler, on_request suspends it on return */
    return 1;
}

/* Queues resp (status) now when inside MHD's access handler in a state
 * that takes it, else keeps it for the next call (and resumes). */
static void respond(va_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->defer_ms && hold(r, status, resp))
        return;
    if (r->in_ahc && MHD_queue_response(r->h, status, resp) == MHD_YES) {
        r->queued = 1;
        MHD_destroy_response(resp);
        return;
    }
    r->pending = resp;
    r->pending_status = status;
    if (!r->in_ahc)
        conn_resume(r);
}

/* From the access handler: the response kept for it. 1 when queued. */
static int queue_pending(va_req *r)
{
    if (!r->pending)
        return 0;
    if (MHD_queue_response(r->h, r->pending_status, r->pending) != MHD_YES)
        return 0; /* MHD takes it once the body is read (its final call) */
    MHD_destroy_response(r->pending);
    r->pending = NULL;
    r->queued = 1;
    return 1;
}

/* ---- responses ---- */

void va_add_header(va_req *r, const char *name, const char *value)
{
    if (!r->h)
        return;
    size_t nl = strlen(name), vl = strlen(value);
    if (r->resp_headers.len + nl + vl + 2 > VA_MAX_RESP_HEADERS_BYTES) {
        hr_warn("http", "%s: response header %s dropped (headers too large)", r->id, name);
        return;
    }
    if (!r->resp_headers.cap)
        hr_buf_init(&r->resp_headers, VA_MAX_RESP_HEADERS_BYTES);
    hr_buf_append(&r->resp_headers, name, nl + 1);
    hr_buf_append(&r->resp_headers, value, vl + 1);
}

const char *va_header(va_req *r, const char *name)
{
    if (!r->h)
        return NULL;
    return MHD_lookup_connection_value(r->h, MHD_HEADER_KIND, name);
}

typedef struct cookie_find {
    char *out;
    size_t cap;
    int found;
} cookie_find;

/* One Cookie header: "a=b; huren_session=...; c=d". */
static enum MHD_Result cookie_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    static const char name[] = VA_SESSION_COOKIE "=";
    const size_t nl = sizeof(name) - 1;
    cookie_find *f = cls;
    if (strcasecmp(key, "cookie") != 0 || !value)
        return MHD_YES;
    size_t len = strlen(value), p = 0;
    while (p < len) {
        while (p < len && (value[p] == ' ' || value[p] == ';'))
            p++;
        size_t e = p;
        while (e < len && value[e] != ';')
            e++;
        if (e - p > nl && memcmp(value + p, name, nl) == 0) {
            size_t tl = e - p - nl;
            while (tl && value[p + nl + tl - 1] == ' ')
                tl--;
            if (tl == 0 || tl >= f->cap)
                return MHD_NO; /* unusable: stop, not found */
            memcpy(f->out, value + p + nl, tl);
            f->out[tl] = '\0';
            f->found = 1;
            return MHD_NO;
        }
        p = e;
    }
    return MHD_YES;
}

/* The session cookie's token into out (cap bytes); 1 when present and usable. */
static int session_cookie(va_req *r, char *out, size_t cap)
{
    cookie_find f = {out, cap, 0};
    if (!r->h)
        return 0;
    MHD_get_connection_values(r->h, MHD_HEADER_KIND, cookie_header, &f);
    return f.found;
}

static int safe_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

void va_set_session_cookie(va_req *r, const char *token, long long max_age_s)
{
    char v[VA_TOKEN_LEN + 160];
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
             VA_SESSION_COOKIE, token, max_age_s, r->srv->tls ? "; Secure" : "");
    va_add_header(r, "Set-Cookie", v);
}

void va_send(va_req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->queued || r->pending)
        return;
    r->status = status;
    if (!r->h)
        return;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        hr_error("http", "%s: cannot create a response (out of memory)", r->id);
        return;
    }
    if (content_type)
        va_add_header(r, "Content-Type", content_type);
    apply_headers(r, resp);
    respond(r, (unsigned)status, resp);
}

int va_send_stream(va_req *r, int status, const char *content_type, uint64_t size, size_t block,
                   MHD_ContentReaderCallback crc, void *cls, MHD_ContentReaderFreeCallback crfc)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(size, block, crc, cls, crfc);
    if (!resp)
        return -ENOMEM;
    r->status = status;
    r->streaming = 1;
    if (content_type)
        va_add_header(r, "Content-Type", content_type);
    apply_headers(r, resp);
    respond(r, (unsigned)status, resp);
    return 0;
}

int va_send_fd(va_req *r, int status, const char *content_type, int fd, uint64_t size)
{
    if (r->queued || r->pending) {
        close(fd);
        return 0;
    }
    r->status = status;
    if (!r->h) {
        close(fd);
        return 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp)
        return -ENOMEM;
    if (content_type)
        va_add_header(r, "Content-Type", content_type);
    apply_headers(r, resp);
    respond(r, (unsigned)status, resp);
    return 0;
}

va_iovec va_body(va_req *r)
{
    va_iovec v = {(const char *)r->body.data, r->body.len};
    return v;
}

const char *va_path(const va_req *r, size_t *len)
{
    *len = r->uri ? strlen(r->uri) : 0;
    return r->uri ? r->uri : "";
}

/* 1 when h (len bytes) is host[:port]: a DNS name or IPv4 literal of
 * letters, digits, '-', '.' and '_' (container names), or an IPv6 literal in brackets, then an
 * optional port of 1-5 digits; at most 255 bytes. Nothing else can reach a
 * URL or a JSON document. */
static int host_valid(const char *h, size_t len)
{
    size_t i = 0;
    if (len == 0 || len > 255)
        return 0;
    if (h[0] == '[') {
        for (i = 1; i < len && h[i] != ']'; i++)
            if (!strchr("0123456789abcdefABCDEF:.", h[i]))
                return 0;
        if (i == len || i == 1)
            return 0;
        i++;
    } else {
        for (; i < len && h[i] != ':'; i++)
            if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
                  (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.' || h[i] == '_'))
                return 0;
        if (i == 0)
            return 0;
    }
    if (i == len)
        return 1;
    if (h[i] != ':' || len - i < 2 || len - i > 6)
        return 0;
    for (i++; i < len; i++)
        if (h[i] < '0' || h[i] > '9')
            return 0;
    return 1;
}

/* The last comma-separated element of a header value, blanks trimmed. */
static void last_element(const char *v, const char **p, size_t *len)
{
    const char *c = strrchr(v, ',');
    const char *b = c ? c + 1 : v;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
        n--;
    *p = b;
    *len = n;
}

/* Parameter name (host, proto) of a Forwarded element (RFC 7239), quotes
 * removed, into out; 1 when present and it fits. */
static int forwarded_param(const char *el, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), i = 0;
    while (i < len) {
        while (i < len && (el[i] == ' ' || el[i] == ';'))
            i++;
        size_t j = i;
        while (j < len && el[j] != ';')
            j++;
        if (j - i > nl && strncasecmp(el + i, name, nl) == 0 && el[i + nl] == '=') {
            const char *v = el + i + nl + 1;
            size_t vl = j - i - nl - 1;
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            if (vl >= cap)
                return 0;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        i = j;
    }
    return 0;
}

void va_base_url(va_req *r, char *out, size_t cap)
{
    const char *scheme = r->srv->tls ? "https" : "http";
    const char *host = va_header(r, "host");
    size_t host_len = host ? strlen(host) : 0;
    char fhost[256] = "", fproto[16] = "";
    const hr_config *cfg = r->srv->cfg;
    if (cfg->http.n_trusted_proxies &&
        hr_cidr_list_has(cfg->http.trusted_proxies, cfg->http.n_trusted_proxies, r->peer)) {
        /* set by the trusted proxy in front of huren: its own element is the last */
        const char *fwd = va_header(r, "forwarded");
        const char *xh = va_header(r, "x-forwarded-host");
        const char *xp = va_header(r, "x-forwarded-proto");
        const char *p;
        size_t n;
        if (fwd) {
            last_element(fwd, &p, &n);
            forwarded_param(p, n, "host", fhost, sizeof(fhost));
            forwarded_param(p, n, "proto", fproto, sizeof(fproto));
        }
        if (!fhost[0] && xh) {
            last_element(xh, &p, &n);
            if (n < sizeof(fhost)) {
                memcpy(fhost, p, n);
                fhost[n] = '\0';
            }
        }
        if (!fproto[0] && xp) {
            last_element(xp, &p, &n);
            if (n < sizeof(fproto)) {
                memcpy(fproto, p, n);
                fproto[n] = '\0';
            }
        }
        if (fhost[0] && host_valid(fhost, strlen(fhost))) {
            host = fhost;
            host_len = strlen(fhost);
        } else if (fhost[0]) {
            hr_warn("http", "%s %s: forwarded host ignored (not host[:port])", r->id, r->peer);
        }
        if (strcasecmp(fproto, "https") == 0)
            scheme = "https";
        else if (strcasecmp(fproto, "http") == 0)
            scheme = "http";
    }
    if (!host) {
        host = "localhost";
    } else if (!host_valid(host, host_len)) {
        out[0] = '\0'; /* a forged Host: links stay origin-relative */
        return;
    }
    snprintf(out, cap, "%s://%s", scheme, host);
}

void va_body_stream(va_req *r, va_body_fn fn, void (*on_gone)(va_req *r))
{
    r->body_fn = fn;
    r->on_gone = on_gone;
    r->streaming = 1;
}
void va_send_json(va_req *r, int status, json_t *doc)
{
    va_send_json_type(r, status, "application/json", doc);
}

void va_send_json_type(va_req *r, int status, const char *content_type, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text) {
        va_send(r, 500, "application/json", "{\"error\":\"internal\",\"detail\":\"out of memory\"}",
                45);
        return;
    }
    va_send(r, status, content_type, text, strlen(text));
    free(text);
}

void va_send_error(va_req *r, int status, const char *code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_t *doc =
        json_pack("{s:s, s:s, s:s}", "error", code, "detail", detail, "request_id", r->id);
    if (status == 401)
        va_add_header(r, "WWW-Authenticate", "Bearer realm=\"huren\"");
    va_send_json(r, status, doc);
}

void va_send_rc(va_req *r, int rc, const char *what)
{
    if (rc == HR_ENOTFOUND)
        va_send_error(r, 404, "not_found", "%s not found", what);
    else if (rc == HR_EREDIS)
        va_send_error(r, 503, "index_unavailable", "the index (Redis) is not reachable; retry");
    else if (rc == HR_ETOOBIG)
        va_send_error(r, 413, "too_large", "%s: too many results or too large", what);
    else if (rc == HR_EPARSE || rc == -EINVAL)
        va_send_error(r, 400, "bad_request", "%s: invalid", what);
    else
        va_send_error(r, 500, "internal", "%s: %s", what, hr_strerror(rc));
}

const char *va_param_get(const va_req *r, const char *name)
{
    for (int i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

void va_audit(va_req *r, const char *action, const char *patient, const char *study,
              const char *detail, const char *outcome)
{
    sto_audit_event ev = {
        .actor = r->who.user,
        .role = r->who.user[0] ? sto_role_name(r->who.role) : "",
        .hospital = r->who.hospital,
        .address = r->peer,
        .action = action,
        .patient = patient,
        .study = study,
        .detail = detail,
        .outcome = outcome,
        .request_id = r->id,
    };
    sto_audit_log(r->srv->sto->audit, &ev);
}

/* ---- the pool step ---- */

static void req_work(va_req *r)
{
    const sto_ctx *sto = r->srv->sto;
    redisContext *c = sto_worker_redis(&sto->redis_addr, sto->redis_timeout_ms);
    r->redis_down = c == NULL;
    if (!r->route->public_ && !r->authed) {
        r->auth_rc = c ? va_auth_check(c, r->token, &r->who) : HR_EREDIS;
        if (r->auth_rc == HR_EREDIS)
            sto_worker_redis_failed();
        if (r->auth_rc)
            return;
        sto_scope_for(r->srv->cfg, r->who.role, r->who.hospital, r->who.center, &r->scope);
        /* a user sees, besides the scope of the role, what a recognition
         * lookup granted them (decision 0027) */
        sto_scope_grant_user(&r->scope, r->who.user);
    }
    if (r->work_fn)
        r->work_fn(r, c);
}

static void work_run(uv_work_t *w)
{
    req_work(w->data);
}

static void req_done(va_req *r)
{
    r->in_work = 0;
    if (r->h && !r->route->public_ && !r->authed && r->auth_rc) {
        if (r->auth_rc == HR_EREDIS)
            va_send_error(r, 503, "index_unavailable", "cannot check the token: Redis is down");
        else
            va_send_error(r, 401, "unauthorized", "missing, invalid or expired bearer token");
        va_audit(r, r->route->metric, NULL, NULL, "token refused", "denied");
        r->answered = 1; /* done_fn only frees its state */
    }
    if (r->done_fn)
        r->done_fn(r);
    if (!r->h && !r->streaming && !r->in_work)
        req_free(r);
}

static void work_done(uv_work_t *w, int status)
{
    req_done(w->data);
}

static void pool_run(hr_pool_job *j)
{
    req_work(j->data);
}

static void pool_done(hr_pool_job *j, int status)
{
    va_req *r = j->data;
    r->pool_status = status;
    req_done(r);
}

int va_req_run_on(va_req *r, hr_pool *pool, va_work_fn work, va_done_fn done)
{
    if (!pool)
        return HR_ESTATE;
    r->work_fn = work;
    r->done_fn = done;
    r->pool_status = 0;
    r->job.data = r;
    int rc = hr_pool_submit(pool, &r->job, pool_run, pool_done);
    if (rc == 0)
        r->in_work = 1;
    return rc;
}

void va_req_run(va_req *r, va_work_fn work, va_done_fn done)
{
    r->work_fn = work;
    r->done_fn = done;
    r->in_work = 1;
    r->work.data = r;
    if (uv_queue_work(r->srv->loop, &r->work, work_run, work_done) != 0) {
        r->in_work = 0;
        va_send_error(r, 500, "internal", "cannot queue work");
    }
}
/* ---- parsing ---- */

/* Percent-decodes [p, p+n) into a new string; NULL on a bad escape or NUL. */
static char *pct_decode(const char *p, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            int a = i + 2 < n ? hr_hex_value(p[i + 1]) : -1;
            int b = i + 2 < n ? hr_hex_value(p[i + 2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(a * 16 + b);
            i += 2;
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

static int parse_query(va_req *r, const char *q, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            if (r->n_params == VA_MAX_PARAMS)
                return -1;
            const char *eq = memchr(q + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (q + i)) : j - i;
            va_param *pm = &r->params[r->n_params];
            pm->name = pct_decode(q + i, kl);
            pm->value = eq ? pct_decode(eq + 1, (size_t)(q + j - eq - 1)) : strdup("");
            if (!pm->name || !pm->value) {
                free(pm->name);
                free(pm->value);
                return -1;
            }
            r->n_params++;
        }
        i = j + 1;
    }
    return 0;
}

/* Matches path against pattern, capturing {} segments. 1 on a match. */
static int match_route(va_req *r, const char *pattern, const char *path, size_t plen)
{
    int n = 0;
    char *caps[VA_MAX_SEGS];
    const char *p = pattern, *s = path, *end = path + plen;
    int ok = 1;
    while (*p && ok) {
        if (p[0] == '{' && p[1] == '}') {
            const char *e = s;
            while (e < end && *e != '/')
                e++;
            if (e == s || n == VA_MAX_SEGS) {
                ok = 0;
                break;
            }
            caps[n] = pct_decode(s, (size_t)(e - s));
            if (!caps[n]) {
                ok = 0;
                break;
            }
            n++;
            s = e;
            p += 2;
        } else if (s < end && *p == *s) {
            p++;
            s++;
        } else {
            ok = 0;
        }
    }
    /* a trailing slash is tolerated */
    if (ok && !(s == end || (s + 1 == end && *s == '/')))
        ok = 0;
    if (!ok) {
        for (int i = 0; i < n; i++)
            free(caps[i]);
        return 0;
    }
    for (int i = 0; i < n; i++)
        r->segs[i] = caps[i];
    r->n_segs = n;
    return 1;
}

static int origin_allowed(const va_server *s, const char *origin)
{
    for (size_t i = 0; i < s->cfg->http.n_cors; i++)
        if (strcmp(s->cfg->http.cors_origins[i], "*") == 0 ||
            strcmp(s->cfg->http.cors_origins[i], origin) == 0)
            return 1;
    return 0;
}

static void finish_stop(va_server *s);
static void on_kdf_pool_closed(void *arg);
static void on_stop_tick(uv_timer_t *t);

static void peer_name(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* ---- the header deadline ----
 * A connection must send a complete request head within
 * http.header_timeout_s of its accept or of its previous response, however
 * slowly it trickles bytes (MHD's own timeout is an idle one that every byte
 * resets). Connections in that phase are listed oldest first; one timer
 * shuts down the socket of the oldest when its time is up, and MHD then
 * closes the connection as one the client closed. Past the head (a request
 * running, a body or a response streaming) a connection is not listed. */

typedef struct va_conn {
    va_server *srv;
    struct MHD_Connection *c;
    uint64_t since_ms; /* uv_now when the head phase began */
    int in_head;
    struct va_conn *prev, *next; /* srv->head_first .. head_last */
} va_conn;

static void on_head_timer(uv_timer_t *t);

static uint64_t head_timeout_ms(const va_server *s)
{
    return (uint64_t)s->cfg->http.header_timeout_s * 1000;
}

static void arm_head(va_server *s)
{
    if (s->stopping_final)
        return;
    if (!s->head_first) {
        uv_timer_stop(&s->head_timer);
        return;
    }
    uint64_t now = uv_now(s->loop), at = s->head_first->since_ms + head_timeout_ms(s);
    uv_timer_start(&s->head_timer, on_head_timer, at > now ? at - now : 0, 0);
}

static void head_leave(va_conn *k)
{
    if (!k || !k->in_head)
        return;
    va_server *s = k->srv;
    if (k->prev)
        k->prev->next = k->next;
    else
        s->head_first = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        s->head_last = k->prev;
    k->prev = k->next = NULL;
    k->in_head = 0;
}

static void head_enter(va_conn *k)
{
    if (!k || k->in_head)
        return;
    va_server *s = k->srv;
    k->since_ms = uv_now(s->loop);
    k->in_head = 1;
    k->prev = s->head_last;
    if (s->head_last)
        s->head_last->next = k;
    else
        s->head_first = k;
    s->head_last = k;
    if (s->head_first == k)
        arm_head(s);
}

static va_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_head_timer(uv_timer_t *t)
{
    va_server *s = t->data;
    uint64_t now = uv_now(s->loop), limit = head_timeout_ms(s);
    int n = 0;
    while (s->head_first && s->head_first->since_ms + limit <= now) {
        va_conn *k = s->head_first;
        head_leave(k);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(k->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && ci->connect_fd != MHD_INVALID_SOCKET)
            shutdown(ci->connect_fd, SHUT_RDWR); /* MHD reads the end and closes */
        s->head_timeouts++;
        n++;
    }
    if (n) {
        hr_debug("http", "%d connections closed: no complete request head within %d s", n,
                 s->cfg->http.header_timeout_s);
        kick(s);
    }
    arm_head(s);
}

/* MHD accepted a connection / closed one. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    va_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        va_conn *k = calloc(1, sizeof(*k));
        *socket_context = k;
        if (!k)
            return; /* not tracked: MHD's idle timeout still applies */
        k->srv = s;
        k->c = c;
        head_enter(k);
        return;
    }
    va_conn *k = *socket_context;
    *socket_context = NULL;
    head_leave(k);
    free(k);
}

/* MHD read a request line: the request starts here (its id, the raw URI). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    va_server *s = cls;
    va_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->srv = s;
    r->t0_ns = uv_hrtime();
    r->body_declared = -1;
    snprintf(r->id, sizeof(r->id), "%s-%06llx", s->id_prefix, (unsigned long long)++s->next_id);
    r->uri = strdup(uri ? uri : "");
    if (!r->uri) {
        free(r);
        return NULL;
    }
    const char *q = strchr(r->uri, '?');
    r->path_len = q ? (size_t)(q - r->uri) : strlen(r->uri);
    peer_name(c, r->peer, sizeof(r->peer));
    r->next_req = s->reqs;
    if (s->reqs)
        s->reqs->prev_req = r;
    s->reqs = r;
    s->n_reqs++;
    return r;
}

/* MHD is done with the request: response sent, or the client went away. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    va_server *s = cls;
    va_req *r = *con_cls;
    *con_cls = NULL;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        head_enter(conn_of(c)); /* kept alive: the next request head is due */
    if (!r)
        return;
    r->h = NULL;
    r->suspended = 0;
    if (r->counted) {
        r->counted = 0;
        s->n_active--;
    }
    record(r);
    struct MHD_Response *resp = r->pending;
    void (*gone)(va_req *) = r->on_gone;
    r->pending = NULL;
    r->on_gone = NULL;
    if (!r->in_work && !r->streaming)
        req_free(r);
    else if (gone)
        gone(r); /* the body consumer frees its state, then va_req_stream_end */
    /* last: a streamed response's free callback may end (free) r */
    if (resp)
        MHD_destroy_response(resp);
    if (s->stopping)
        maybe_finish_stop(s);
}

typedef struct framing_count {
    int content_length, transfer_encoding;
} framing_count;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    framing_count *n = cls;
    if (strcasecmp(key, "content-length") == 0)
        n->content_length++;
    else if (strcasecmp(key, "transfer-encoding") == 0)
        n->transfer_encoding++;
    return MHD_YES;
}

/* How the request body is delimited, checked before routing. libmicrohttpd
 * honours one Transfer-Encoding header whose value is exactly "chunked";
 * any other value (identity, gzip, "gzip, chunked") makes it read the body
 * until the connection closes, past every cap counted here. Both headers,
 * or either twice, are how requests are smuggled past a proxy that picks
 * the other one. NULL when the framing is usable, else the reason
 * (answered 400, or 501 for a coding other than chunked). */
static const char *bad_framing(va_req *r, int *status)
{
    framing_count n = {0, 0};
    MHD_get_connection_values(r->h, MHD_HEADER_KIND, count_framing, &n);
    *status = 400;
    if (n.content_length > 1)
        return "more than one Content-Length header";
    if (n.transfer_encoding > 1)
        return "more than one Transfer-Encoding header";
    if (n.transfer_encoding && n.content_length)
        return "both Content-Length and Transfer-Encoding";
    if (n.transfer_encoding) {
        const char *te = va_header(r, "transfer-encoding");
        if (!te || strcasecmp(te, "chunked") != 0) {
            *status = 501;
            return "Transfer-Encoding other than chunked";
        }
    }
    return NULL;
}

/* Content-Length / Transfer-Encoding: chunked of the request (bad_framing
 * passed: at most one of them, and chunked alone). */
static void body_headers(va_req *r)
{
    const char *te = va_header(r, "transfer-encoding");
    const char *cl = va_header(r, "content-length");
    if (te) {
        r->has_body = 1;
        r->body_declared = -1;
    } else if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        r->body_declared = errno || end == cl ? -1 : (long long)(v > LLONG_MAX ? LLONG_MAX : v);
        r->has_body = r->body_declared != 0;
    }
}

/* The route's cap on the request body (0: none taken). */
static uint64_t body_cap(const va_req *r)
{
    switch (r->route->body) {
    case VA_BODY_SMALL:
        return r->route->public_ ? VA_UNAUTH_BODY_MAX : VA_SMALL_BODY_MAX;
    case VA_BODY_LARGE:
        return r->route->public_ ? VA_UNAUTH_BODY_MAX : VA_LARGE_BODY_MAX;
    case VA_BODY_STREAM:
        return r->srv->cfg->http.max_body_bytes;
    default:
        return 0;
    }
}

static void preauth_done(va_req *r);

/* The token is good (or not needed): get ready for the body. */
static void after_auth(va_req *r)
{
    if (r->route->body == VA_BODY_STREAM) {
        r->phase = PH_STREAM;
        r->route->handle(r); /* installs its consumer, or answers */
        if (!r->body_fn && !r->queued && !r->pending && !r->in_work)
            va_send_error(r, 500, "internal", "no body consumer");
        return;
    }
    if (r->has_body) {
        r->phase = PH_COLLECT;
        hr_buf_init(&r->body, (size_t)r->body_cap);
        return;
    }
    r->phase = PH_FINAL;
}

static void preauth_done(va_req *r)
{
    if (va_req_gone(r))
        return; /* refused: answered by req_done */
    r->authed = 1;
    /* MHD calls the access handler again, still before the body */
    conn_resume(r);
}

/* First call of the access handler: headers only, no body byte read yet. */
static void begin(va_req *r, const char *method)
{
    va_server *s = r->srv;
    va_add_header(r, "X-Request-Id", r->id);
    const char *origin = va_header(r, "origin");
    int cors = origin && origin_allowed(s, origin);
    if (cors) {
        va_add_header(r, "Access-Control-Allow-Origin", origin);
        va_add_header(r, "Vary", "Origin");
        va_add_header(r, "Access-Control-Expose-Headers",
                      "X-Request-Id, Content-Type, Content-Length, Warning");
    }
    int bad_status;
    const char *bad = bad_framing(r, &bad_status);
    if (bad) {
        /* answered from the headers: MHD reads no body and closes */
        va_send_error(r, bad_status, bad_status == 501 ? "not_implemented" : "bad_request",
                      "request body framing refused: %s", bad);
        return;
    }
    const char *q = r->uri[r->path_len] == '?' ? r->uri + r->path_len + 1 : NULL;
    if (q && parse_query(r, q, strlen(q))) {
        va_send_error(r, 400, "bad_request", "malformed query string");
        return;
    }
    int path_known = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match_route(r, k_routes[i].pattern, r->uri, r->path_len))
            continue;
        path_known = 1;
        if (strcmp(method, k_routes[i].method) == 0) {
            r->route = &k_routes[i];
            break;
        }
        for (int k = 0; k < r->n_segs; k++)
            free(r->segs[k]);
        r->n_segs = 0;
    }
    if (strcmp(method, "OPTIONS") == 0) {
        if (cors) {
            va_add_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS");
            va_add_header(r, "Access-Control-Allow-Headers",
                          "Authorization, Content-Type, Accept, Accept-Encoding");
            va_add_header(r, "Access-Control-Max-Age", "600");
        }
        va_send(r, 204, NULL, "", 0);
        return;
    }
    if (!r->route && !path_known && va_static_path(r->srv->cfg, r->uri, r->path_len)) {
        if (strcmp(method, "GET") == 0)
            r->route = &k_routes[ROUTE_STATIC_GET];
        else if (strcmp(method, "HEAD") == 0)
            r->route = &k_routes[ROUTE_STATIC_HEAD];
        else
            path_known = 1;
    }
    if (!r->route) {
        if (path_known)
            va_send_error(r, 405, "method_not_allowed", "%.16s is not allowed here", method);
        else
            va_send_error(r, 404, "not_found", "no such resource");
        return;
    }
    /* the body: bounded by the headers alone, before anything is read */
    body_headers(r);
    r->body_cap = body_cap(r);
    if (r->has_body && r->body_cap == 0) {
        va_send_error(r, 413, "too_large", "%s %s takes no request body", r->route->method,
                      r->route->pattern);
        return;
    }
    if (r->body_declared > 0 && (uint64_t)r->body_declared > r->body_cap) {
        va_send_error(r, 413, "too_large", "request body of %lld bytes; at most %llu here",
                      r->body_declared, (unsigned long long)r->body_cap);
        return;
    }
    if (!r->route->public_) {
        const char *auth = va_header(r, "authorization");
        if (auth) {
            if (strncasecmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) >= sizeof(r->token)) {
                va_send_error(r, 401, "unauthorized", "a bearer token is required");
                va_audit(r, r->route->metric, NULL, NULL, "no bearer token", "denied");
                return;
            }
            snprintf(r->token, sizeof(r->token), "%s", auth + 7);
        } else if (session_cookie(r, r->token, sizeof(r->token))) {
            r->by_cookie = 1;
            if (!safe_method(method) && !va_header(r, "x-requested-with")) {
                va_send_error(r, 403, "csrf",
                              "a request authenticated by the session cookie must carry "
                              "X-Requested-With");
                va_audit(r, r->route->metric, NULL, NULL, "cookie without X-Requested-With",
                         "denied");
                return;
            }
        } else {
            va_send_error(r, 401, "unauthorized", "a bearer token or session cookie is required");
            va_audit(r, r->route->metric, NULL, NULL, "no bearer token", "denied");
            return;
        }
    }
    if (reads_patient_data(r->route) && sto_audit_admit_read(r->srv->sto->audit, r->id)) {
        va_send_error(r, 503, "audit_unavailable",
                      "the audit log cannot record this read of patient data; try again later");
        return;
    }
    if (!r->route->public_ && (r->has_body || r->route->body == VA_BODY_STREAM)) {
        /* the token first: a refused one is answered before any body byte
         * is read (MHD then closes the connection) */
        r->phase = PH_PREAUTH;
        va_req_run(r, NULL, preauth_done);
        return;
    }
    after_auth(r);
}

/* One call of the access handler past the first. 0: close the connection. */
static int step(va_req *r, const char *upload, size_t *size)
{
    switch (r->phase) {
    case PH_PREAUTH:
        after_auth(r);
        return 1;
    case PH_COLLECT:
        if (*size) {
            if (r->body.len + *size > r->body_cap) {
                hr_warn("http", "%s: %s body over %llu bytes (chunked): connection closed", r->id,
                        r->route->pattern, (unsigned long long)r->body_cap);
                r->status = 413;
                return 0;
            }
            hr_buf_append(&r->body, upload, *size);
            *size = 0;
            return 1;
        }
        r->phase = PH_HANDLER;
        r->route->handle(r);
        return 1;
    case PH_STREAM:
        if (*size) {
            size_t n = *size;
            if (r->body_read + n > r->body_cap) {
                hr_warn("http", "%s: %s body over %llu bytes (chunked): connection closed", r->id,
                        r->route->pattern, (unsigned long long)r->body_cap);
                r->status = 413;
                return 0;
            }
            if (r->body_fn)
                r->body_fn(r, (const uint8_t *)upload, size);
            else
                *size = 0;
            r->body_read += n - *size;
            return 1;
        }
        /* the end of the body: called again after a pause until it answers */
        if (r->body_fn) {
            size_t zero = 0;
            r->body_fn(r, NULL, &zero);
        }
        return 1;
    case PH_FINAL:
        *size = 0;
        r->phase = PH_HANDLER;
        r->route->handle(r);
        return 1;
    default:
        /* the handler runs; nothing is expected from MHD meanwhile */
        *size = 0;
        return 1;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *size, void **con_cls)
{
    va_server *s = cls;
    va_req *r = *con_cls;
    if (!r) {
        r = on_uri(s, url, c);
        if (!r)
            return MHD_NO;
        *con_cls = r;
    }
    r->h = c;
    r->in_ahc = 1;
    int ok = 1;
    if (r->phase == PH_NEW)
        head_leave(conn_of(c)); /* the head is complete */
    if (r->held) {
        *size = 0; /* its response waits (va_req_defer) */
    } else if (r->pending) {
        queue_pending(r);
        *size = 0; /* not taken: the rest of a body already answered */
    } else if (r->phase == PH_NEW) {
        r->counted = 1;
        s->n_active++;
        begin(r, method);
    } else if (!r->queued) {
        ok = step(r, upload, size);
    } else {
        *size = 0;
    }
    r->in_ahc = 0;
    if (!ok)
        return MHD_NO;
    if (!r->queued && (r->held || (!r->pending && (r->in_work || r->paused))))
        va_req_suspend(r);
    return MHD_YES;
}

/* ---- MHD on the loop ---- */

static void on_run_timer(uv_timer_t *t);

/* Runs MHD's work that is due, then arms the timer for the next. */
static void run_mhd(va_server *s)
{
    if (!s->mhd)
        return;
    s->run_wanted = 0;
    MHD_run(s->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (s->run_wanted)
        ms = 0; /* resumed inside the run: once more */
    else if (MHD_get_timeout(s->mhd, &ms) != MHD_YES) {
        uv_timer_stop(&s->run_timer);
        return;
    }
    uv_timer_start(&s->run_timer, on_run_timer, ms > 3600000 ? 3600000 : (uint64_t)ms, 0);
}

static void on_run_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    run_mhd(p->data);
}

/* MHD_run on the next loop turn (a connection was resumed). */
static void kick(va_server *s)
{
    s->run_wanted = 1;
    if (s->mhd && !s->stopping_final)
        uv_timer_start(&s->run_timer, on_run_timer, 0, 0);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    va_server *s = cls;
    uint64_t now = uv_now(s->loop);
    if (s->mhd_log_ms && now - s->mhd_log_ms < VA_MHD_LOG_GAP_MS) {
        /* a flood (refused connections, say) does not flood the log */
        s->mhd_log_skipped++;
        return;
    }
    s->mhd_log_ms = now;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    unsigned skipped = s->mhd_log_skipped;
    s->mhd_log_skipped = 0;
    if (skipped)
        hr_warn("http", "libmicrohttpd: %s (and %u more lines in the last second)", line, skipped);
    else
        hr_warn("http", "libmicrohttpd: %s", line);
}

/* Reads a PEM file (at most VA_TLS_FILE_MAX bytes) into a new string;
 * -errno, or HR_ECONFIG for an empty, oversized or shrinking file. */
static int read_pem(const char *path, char **out)
{
    size_t len;
    int rc = hr_read_file(path, VA_TLS_FILE_MAX, (unsigned char **)out, &len);
    return rc == HR_ETOOBIG || rc == HR_ETRUNC ? HR_ECONFIG : rc;
}

static int setup_tls(va_server *s)
{
    const hr_config *c = s->cfg;
    if (!c->http.tls_cert[0])
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        hr_error("http", "this libmicrohttpd has no TLS support (GnuTLS)");
        return HR_ECONFIG;
    }
    int rc = read_pem(c->http.tls_cert, &s->tls_cert_pem);
    if (!rc)
        rc = read_pem(c->http.tls_key, &s->tls_key_pem);
    if (rc) {
        hr_error("http", "TLS certificate %s / key %s: %s", c->http.tls_cert, c->http.tls_key,
                 rc == HR_ECONFIG ? "empty or too large" : hr_strerror(rc));
        return HR_ECONFIG;
    }
    s->tls = 1;
    return 0;
}

/* A listening socket on cfg->http.listen: ours, so the bind rules stay
 * huren's (decision 0012); MHD accepts on it. fd or a negative errno. */
static int open_listener(const hr_config *cfg)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    memset(&addr, 0, sizeof(addr));
    int v6 = strchr(cfg->http.listen.host, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)cfg->http.listen.port);
        if (inet_pton(AF_INET6, cfg->http.listen.host, &a->sin6_addr) != 1)
            return -EINVAL;
        alen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)cfg->http.listen.port);
        if (inet_pton(AF_INET, cfg->http.listen.host, &a->sin_addr) != 1)
            return -EINVAL;
        alen = sizeof(*a);
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, rc = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, alen) != 0 || listen(fd, 511) != 0)
        rc = -errno;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static void free_server(va_server *s)
{
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s->stats);
    free(s->login_gate);
    free(s->share_gate);
    free(s);
}

int va_server_start(uv_loop_t *loop, const hr_config *cfg, sto_ctx *sto, va_metrics_fn metrics,
                    void *metrics_arg, va_server **out)
{
    va_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->listen_fd = -1;
    s->stats = calloc(N_ROUTES + 1, sizeof(*s->stats));
    if (!s->stats) {
        free(s);
        return -ENOMEM;
    }
    s->loop = loop;
    s->cfg = cfg;
    s->sto = sto;
    s->metrics = metrics;
    s->metrics_arg = metrics_arg;
    uint8_t rnd[4];
    RAND_bytes(rnd, sizeof(rnd));
    snprintf(s->id_prefix, sizeof(s->id_prefix), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3]);
    int rc = setup_tls(s);
    if (rc) {
        free_server(s);
        return rc;
    }
    s->listen_fd = open_listener(cfg);
    if (s->listen_fd < 0) {
        rc = s->listen_fd;
        free_server(s);
        return rc;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (s->tls)
        flags |= MHD_USE_TLS;
    static char k_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE";
    struct MHD_OptionItem tls_ops[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, k_priorities},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_ops[] = {{MHD_OPTION_END, 0, NULL}};
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->http.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->http.max_per_address, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)VA_CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VA_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_ARRAY,
        s->tls ? tls_ops : no_ops, MHD_OPTION_END);
    if (!s->mhd) {
        if (s->tls)
            hr_error("http", "TLS certificate %s / key %s: not usable (GnuTLS refused them)",
                     cfg->http.tls_cert, cfg->http.tls_key);
        close(s->listen_fd);
        free_server(s);
        return s->tls ? HR_ECONFIG : -EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_timer_init(loop, &s->run_timer);
    s->run_timer.data = s;
    uv_timer_init(loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_timer_init(loop, &s->held_timer);
    s->held_timer.data = s;
    uv_timer_init(loop, &s->head_timer);
    s->head_timer.data = s;
    rc = uv_poll_init(loop, &s->poll, di ? di->epoll_fd : -1);
    s->poll.data = s;
    if (!rc)
        rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
    if (!rc) {
        hr_pool_opts po = {.name = "kdf",
                           .threads = cfg->auth.kdf_threads,
                           .max_jobs = cfg->auth.kdf_queue,
                           .nice = 10,                 /* ingest and the loop win a contested CPU */
                           .idle = cfg->auth.kdf_idle, /* ... or take only idle CPU */
                           .max_running = va__kdf_max_running, /* fewer while ingest is busy */
                           .max_running_arg = s,
                           .on_thread_exit = sto_worker_redis_failed};
        rc = hr_pool_start(loop, &po, &s->kdf_pool);
    }
    if (!rc) {
        hr_pool_opts ro = {.name = "render",
                           .threads = VA_RENDER_THREADS,
                           .max_jobs = VA_RENDER_THREADS + VA_RENDER_QUEUE,
                           .nice = 5, /* ingest and the loop win a contested CPU */
                           .on_thread_exit = sto_worker_redis_failed};
        rc = hr_pool_start(loop, &ro, &s->render_pool);
    }
    if (rc) {
        s->stopping = 1;
        if (s->kdf_pool)
            hr_pool_close(s->kdf_pool, on_kdf_pool_closed, s);
        finish_stop(s);
        return rc;
    }
    run_mhd(s);
    hr_info("http", "listening on %s:%d (%s)", cfg->http.listen.host, cfg->http.listen.port,
            s->tls ? "HTTPS, HTTP/1.1" : "HTTP/1.1");
    if (!s->tls && !hr_addr_is_loopback(cfg->http.listen.host))
        hr_warn("http",
                "plain HTTP on %s (http.insecure_listen): passwords and tokens cross "
                "the network in clear; configure http.tls_cert and http.tls_key",
                cfg->http.listen.host);
    *out = s;
    return 0;
}

/* Frees the server and reports the stop, once its handles are closed and
 * no request is held any more. */
static void server_release(va_server *s)
{
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    free_server(s);
    if (cb)
        cb(arg);
}

static void on_closed_last(uv_handle_t *h)
{
    va_server *s = h->data;
    if (s->n_reqs) {
        /* requests whose connection MHD closed are still held by pool work
         * or a stream's pool job: the last one to end frees the server */
        s->free_wanted = 1;
        return;
    }
    server_release(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    va_server *s = h->data;
    if (--s->n_closing == 0)
        on_closed_last(h);
}

static void finish_stop(va_server *s)
{
    if (s->stopping_final)
        return;
    uv_timer_stop(&s->stop_timer);
    if (s->kdf_pool || s->render_pool) {
        s->finish_wanted = 1; /* on_kdf_pool_closed / on_render_pool_closed come back */
        return;
    }
    s->stopping_final = 1;
    uv_timer_stop(&s->run_timer);
    if (uv_is_active((uv_handle_t *)&s->poll))
        uv_poll_stop(&s->poll);
    if (s->mhd) {
        /* MHD may not be stopped with a suspended connection (it aborts):
         * after the grace period requests may still wait for the pool, for
         * the ingest or for their next window, so their connections are
         * resumed first; MHD_stop_daemon then closes every connection (the
         * completion callback runs for each, its response is freed) */
        int resumed = 0;
        for (va_req *r = s->reqs; r; r = r->next_req)
            if (r->h && r->suspended) {
                r->suspended = 0;
                MHD_resume_connection(r->h);
                resumed++;
            }
        if (resumed)
            hr_info("http", "closing %d connections that wait for the pool or the ingest", resumed);
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    uv_timer_stop(&s->held_timer);
    uv_timer_stop(&s->head_timer);
    s->n_closing = 5;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    uv_close((uv_handle_t *)&s->run_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->stop_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->held_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->head_timer, on_handle_closed);
}

static void maybe_finish_stop(va_server *s)
{
    if (s->stopping && s->n_active == 0 && !s->stopping_final)
        uv_timer_start(&s->stop_timer, on_stop_tick, 0, 0);
}

static void on_stop_tick(uv_timer_t *t)
{
    va_server *s = t->data;
    if (s->n_active == 0) {
        finish_stop(s);
        return;
    }
    /* requests still running after the grace period (a client that stopped
     * reading, a slow upload): their connections are closed now, so that a
     * client cannot hold the stop; the server is freed once the pool work
     * and stream jobs that still hold requests are done */
    hr_warn("http", "%d requests still running after 10 s; closing their connections", s->n_active);
    finish_stop(s);
}

static void on_kdf_pool_closed(void *arg)
{
    va_server *s = arg;
    s->kdf_pool = NULL;
    if (s->finish_wanted)
        finish_stop(s);
}

static void on_render_pool_closed(void *arg)
{
    va_server *s = arg;
    s->render_pool = NULL;
    if (s->finish_wanted)
        finish_stop(s);
}

void va_server_stop(va_server *s, void (*cb)(void *), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    /* no new connections; the socket is ours to close */
    if (s->mhd) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET && (int)fd == s->listen_fd) {
            close(s->listen_fd);
            s->listen_fd = -1;
        }
        kick(s);
    }
    /* held refusals are answered now (and their connections closed) */
    release_held(s);
    /* waiting logins and renders get 503; running ones finish */
    if (s->kdf_pool)
        hr_pool_close(s->kdf_pool, on_kdf_pool_closed, s);
    if (s->render_pool)
        hr_pool_close(s->render_pool, on_render_pool_closed, s);
    /* requests finish (their responses say Connection: close); the rest are
     * cut after 10 s */
    uv_timer_start(&s->stop_timer, on_stop_tick, s->n_active ? VA_STOP_GRACE_MS : 0, 0);
}
/* ---- /metrics text of the HTTP layer ---- */

static void appendf(hr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(hr_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        hr_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Sums the stats of every route sharing route i's metric label (i ==
 * N_ROUTES: unmatched requests). 0 when an earlier route has the label: it
 * was reported there. */
static int label_stats(const va_server *s, size_t i, const char **label, va_route_stats *sum)
{
    *label = i < N_ROUTES ? k_routes[i].metric : "unmatched";
    for (size_t j = 0; j < i && i < N_ROUTES; j++)
        if (strcmp(k_routes[j].metric, *label) == 0)
            return 0;
    memset(sum, 0, sizeof(*sum));
    for (size_t j = i; j <= N_ROUTES; j++) {
        if (j != i && (j == N_ROUTES || strcmp(k_routes[j].metric, *label) != 0))
            continue;
        const va_route_stats *st = &s->stats[j];
        for (int c = 1; c <= 5; c++)
            sum->by_class[c] += st->by_class[c];
        for (size_t b = 0; b < N_BUCKETS; b++)
            sum->bucket[b] += st->bucket[b];
        sum->count += st->count;
        sum->sum_s += st->sum_s;
    }
    return 1;
}

void va_metrics_http(va_server *s, hr_buf *out)
{
    const char *label;
    va_route_stats sum;
    appendf(out, "# HELP huren_http_requests_total HTTP requests by route and status class.\n"
                 "# TYPE huren_http_requests_total counter\n");
    for (size_t i = 0; i <= N_ROUTES; i++)
        for (int cls = 1; cls <= 5 && label_stats(s, i, &label, &sum); cls++)
            appendf(out, "huren_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", label, cls,
                    (unsigned long long)sum.by_class[cls]);
    appendf(out, "# HELP huren_http_request_duration_seconds Time from request to response end.\n"
                 "# TYPE huren_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= N_ROUTES; i++) {
        if (!label_stats(s, i, &label, &sum))
            continue;
        for (size_t b = 0; b < N_BUCKETS; b++)
            appendf(out,
                    "huren_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    label, k_buckets[b], (unsigned long long)sum.bucket[b]);
        appendf(out, "huren_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                label, (unsigned long long)sum.count);
        appendf(out, "huren_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label,
                sum.sum_s);
        appendf(out, "huren_http_request_duration_seconds_count{route=\"%s\"} %llu\n", label,
                (unsigned long long)sum.count);
    }
    const union MHD_DaemonInfo *di =
        s->mhd ? MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    appendf(out, "# TYPE huren_http_connections gauge\nhuren_http_connections %u\n",
            di ? di->num_connections : 0u);
    appendf(out, "# TYPE huren_http_requests_active gauge\nhuren_http_requests_active %d\n",
            s->n_active);
    appendf(out,
            "# HELP huren_http_held Responses held back now (refused logins).\n"
            "# TYPE huren_http_held gauge\nhuren_http_held %d\n"
            "# TYPE huren_http_held_total counter\nhuren_http_held_total %llu\n",
            s->n_held, (unsigned long long)s->deferred);
    appendf(out,
            "# HELP huren_http_held_overflow_total Answered at once, closing: too many held.\n"
            "# TYPE huren_http_held_overflow_total counter\nhuren_http_held_overflow_total %llu\n",
            (unsigned long long)s->deferred_overflow);
    appendf(out,
            "# HELP huren_http_header_timeouts_total Connections closed without a complete "
            "request head within http.header_timeout_s.\n"
            "# TYPE huren_http_header_timeouts_total counter\n"
            "huren_http_header_timeouts_total %llu\n",
            (unsigned long long)s->head_timeouts);
    if (s->kdf_pool) {
        hr_pool_stats ps;
        hr_pool_stats_get(s->kdf_pool, &ps);
        appendf(out,
                "# HELP huren_kdf_running Logins hashing a password now (at most kdf_threads).\n"
                "# TYPE huren_kdf_running gauge\nhuren_kdf_running %d\n"
                "# TYPE huren_kdf_running_max gauge\nhuren_kdf_running_max %d\n"
                "# TYPE huren_kdf_threads gauge\nhuren_kdf_threads %d\n"
                "# TYPE huren_kdf_pending gauge\nhuren_kdf_pending %d\n"
                "# TYPE huren_kdf_jobs_total counter\nhuren_kdf_jobs_total %llu\n"
                "# TYPE huren_kdf_wait_seconds_max gauge\nhuren_kdf_wait_seconds_max %.3f\n",
                ps.running, ps.running_max, ps.threads, ps.pending,
                (unsigned long long)ps.completed, (double)ps.wait_ns_max / 1e9);
    }
    if (s->render_pool) {
        hr_pool_stats ps;
        hr_pool_stats_get(s->render_pool, &ps);
        appendf(out,
                "# HELP huren_render_running Rendered and thumbnail requests running now.\n"
                "# TYPE huren_render_running gauge\nhuren_render_running %d\n"
                "# TYPE huren_render_pending gauge\nhuren_render_pending %d\n"
                "# TYPE huren_render_jobs_total counter\nhuren_render_jobs_total %llu\n"
                "# TYPE huren_render_rejected_total counter\nhuren_render_rejected_total %llu\n"
                "# TYPE huren_render_wait_seconds_max gauge\nhuren_render_wait_seconds_max %.3f\n",
                ps.running, ps.pending, (unsigned long long)ps.completed,
                (unsigned long long)ps.rejected, (double)ps.wait_ns_max / 1e9);
    }
    appendf(out,
            "# HELP huren_login_refused_total Logins refused before any password check.\n"
            "# TYPE huren_login_refused_total counter\n"
            "huren_login_refused_total{reason=\"rate-limit\"} %llu\n"
            "huren_login_refused_total{reason=\"busy\"} %llu\n",
            (unsigned long long)s->login_limited, (unsigned long long)s->login_busy);
    const sto_ctx *sto = s->sto;
    appendf(out,
            "# TYPE huren_ingest_stored_total counter\nhuren_ingest_stored_total %llu\n"
            "# TYPE huren_ingest_duplicates_total counter\nhuren_ingest_duplicates_total %llu\n"
            "# TYPE huren_ingest_failed_total counter\nhuren_ingest_failed_total %llu\n"
            "# TYPE huren_ingest_bytes_total counter\nhuren_ingest_bytes_total %llu\n"
            "# TYPE huren_ingest_active gauge\nhuren_ingest_active %d\n",
            (unsigned long long)sto->stored, (unsigned long long)sto->duplicates,
            (unsigned long long)sto->failed, (unsigned long long)sto->bytes, sto->active);
    appendf(out, "# TYPE huren_redis_errors_total counter\nhuren_redis_errors_total %llu\n",
            (unsigned long long)(sto->index ? sto_index_errors(sto->index) : 0));
    if (sto->audit)
        appendf(out,
                "# TYPE huren_audit_records_total counter\nhuren_audit_records_total %llu\n"
                "# TYPE huren_audit_errors_total counter\nhuren_audit_errors_total %llu\n"
                "# TYPE huren_audit_read_refusals_total counter\n"
                "huren_audit_read_refusals_total %llu\n",
                sto_audit_records(sto->audit), sto_audit_errors(sto->audit),
                sto_audit_read_refusals(sto->audit));
}
