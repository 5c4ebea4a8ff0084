/* Internal to viewer-api/: the request context shared by the server core and
 * the handlers. A handler parses and validates on the loop, then usually runs
 * a blocking step on the thread pool (Redis through sto_worker_redis, file
 * reads) with va_req_run(); the principal is authenticated in that same
 * step, before the handler's own work. */
#ifndef VA_VA_H
#define VA_VA_H

#include "auth.h"
#include "http.h"
#include "../common/hr_buf.h"
#include "../common/hr_pool.h"
#include "../storage/access.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#define VA_MAX_PARAMS 64
#define VA_MAX_SEGS   12
/* Request bodies (decision 0018). Before the token is checked, no route
 * reads more than VA_UNAUTH_BODY_MAX bytes of a body: a non-public route
 * authenticates from the headers alone, and a public one (login) takes at
 * most this much. Authenticated JSON bodies are collected up to
 * VA_SMALL_BODY_MAX; only streaming routes (STOW) take up to
 * http.max_body_bytes, fed to the handler chunk by chunk. */
#define VA_UNAUTH_BODY_MAX        (64u << 10)
#define VA_SMALL_BODY_MAX         (64u << 10)
#define VA_LARGE_BODY_MAX         (320u << 10) /* two texts of RPT_TEXT_MAX, escaped */
#define VA_MAX_RESP_HEADERS_BYTES (16u << 10)  /* response headers added by handlers */

/* A byte range owned by someone else (the request, a buffer). */
typedef struct va_iovec {
    const char *base;
    size_t len;
} va_iovec;

typedef struct va_req va_req;

/* Runs on the thread pool with this thread's Redis connection (NULL when
 * Redis is unreachable: the handler answers 503). */
typedef void (*va_work_fn)(va_req *r, redisContext *c);
/* Runs on the loop after the work; r->h is NULL when the client went away
 * (the handler frees its state and returns). */
typedef void (*va_done_fn)(va_req *r);
/* A streaming route's body consumer, called on the loop with each piece of
 * the body as it arrives (data, *len bytes; chunked or not): it sets *len to
 * the bytes it did not take (they are offered again, first, with what
 * follows). data NULL and *len 0: the body is complete, and only then may it
 * answer. It calls va_body_pause to stop reading and va_body_resume later. */
typedef void (*va_body_fn)(va_req *r, const uint8_t *data, size_t *len);

/* What a route takes as a request body. */
enum va_body_kind {
    VA_BODY_NONE,  /* none: a request with a body gets 413 before it is read */
    VA_BODY_SMALL, /* collected (va_body) up to VA_SMALL_BODY_MAX, or VA_UNAUTH_BODY_MAX if public
                    */
    VA_BODY_LARGE, /* collected like VA_BODY_SMALL up to VA_LARGE_BODY_MAX (authenticated
                      routes whose documents carry long texts: report content) */
    VA_BODY_STREAM /* fed to the handler's va_body_fn, up to http.max_body_bytes */
};

/* The session cookie the login sets for browsers (decision 0017): the same
 * token as the bearer one, HttpOnly, SameSite=Strict, Path=/, Secure with
 * TLS. A request authenticated by it that is not GET/HEAD must also carry
 * X-Requested-With (a custom header: another site cannot send it without a
 * CORS preflight huren refuses), else 403 csrf. */
#define VA_SESSION_COOKIE "huren_session"
/* Adds the Set-Cookie header of a session (token, max_age_s; an empty token
 * and 0 clear it). */
void va_set_session_cookie(va_req *r, const char *token, long long max_age_s);

typedef struct va_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/dicomweb/studies/{}/series" : {} = one segment */
    int public_;         /* no bearer token needed */
    void (*handle)(va_req *r);
    const char *metric; /* label for /metrics */
    enum va_body_kind body;
} va_route;

typedef struct va_param {
    char *name;
    char *value; /* percent-decoded */
} va_param;

struct va_server {
    uv_loop_t *loop;
    const hr_config *cfg;
    sto_ctx *sto;
    va_metrics_fn metrics;
    void *metrics_arg;
    struct MHD_Daemon *mhd; /* libmicrohttpd, driven by this loop (decision 0018) */
    int listen_fd;          /* ours; -1 once closed */
    int tls;
    char *tls_cert_pem, *tls_key_pem;
    uv_poll_t poll;       /* MHD's epoll descriptor */
    uv_timer_t run_timer; /* MHD's next timeout, or 0 after a resume */
    int run_wanted;       /* a connection was resumed: MHD_run on the next turn */
    uv_timer_t stop_timer;
    int n_active; /* requests past their headers and not completed */
    /* every va_req not yet freed (pool work and streams may hold one past
     * its connection): the server is freed only once this list is empty */
    struct va_req *reqs;
    int n_reqs;
    int free_wanted; /* the handles are closed; freed when the last request is */
    int stopping;
    int stopping_final; /* MHD is stopped, the handles are closing */
    void (*stop_cb)(void *);
    void *stop_arg;
    uint64_t next_id;
    char id_prefix[9];
    /* metrics */
    struct va_route_stats *stats; /* one per route + "unmatched" */
    /* server-sent event streams (sse.c) */
    struct va_sse *sse_head; /* open streams, doubly linked */
    int n_sse;
    int sse_closed;      /* va_sse_close_all ran: new streams get 503 */
    uint64_t sse_events; /* events sent on all streams */
    /* password hashing apart from libuv's pool (decision 0013); NULL once closed */
    hr_pool *kdf_pool;
    /* rendered and thumbnail resources (rendered.c, decision 0029): the whole
     * pool step (token, index, render) of each; NULL once closed */
    hr_pool *render_pool;
    int n_ecg_imports; /* aECG imports holding a document (api_ecg_import.c), loop only */
    int finish_wanted; /* finish_stop waits for kdf_pool's close */
    uint64_t login_limited, login_busy; /* logins refused: 429 rate limit, 503 pool full */
    /* while ingest is busy, no hash starts before this uv_hrtime (a KDF
     * thread's duty cycle, auth.kdf_share_ingesting); atomic, any thread */
    uint64_t kdf_rest_until_ns;
    /* per-address login windows counted on this node (api_session.c): a
     * flood is refused on the loop, before Redis, the KDF pool or the audit
     * log are touched; NULL until the first login */
    struct va_login_gate *login_gate;
    /* per-address and per-token windows of the public share routes
     * (api_share.c), bounded tables; NULL until the first request */
    struct va_share_gate *share_gate;
    /* responses held back (va_req_defer), in order of release; one timer */
    struct va_req *held_first, *held_last;
    int n_held;
    uv_timer_t held_timer;
    uint64_t deferred, deferred_overflow; /* held; answered at once, the bound reached */
    /* connections still sending a request head, oldest first (header deadline) */
    struct va_conn *head_first, *head_last;
    uv_timer_t head_timer;
    uint64_t head_timeouts; /* connections closed at the header deadline */
    int n_closing;          /* handles not closed yet at the final stop */
    uint64_t mhd_log_ms;    /* rate limit of libmicrohttpd's log lines */
    unsigned mhd_log_skipped;
};

struct va_req {
    struct MHD_Connection *h; /* NULL once the request completed or the client went away */
    va_server *srv;
    struct va_req *prev_req, *next_req; /* srv->reqs */
    const va_route *route;
    char id[32];
    char peer[64];
    char *uri;       /* the request target as sent (path and query) */
    size_t path_len; /* of uri, before any '?' */
    /* the exchange with libmicrohttpd (http_server.c) */
    int phase;
    int counted;                  /* in srv->n_active */
    int in_ahc;                   /* inside MHD's access handler for this request */
    int suspended;                /* MHD_suspend_connection is in effect */
    int paused;                   /* the body consumer asked to stop reading */
    int queued;                   /* a response was handed to MHD */
    struct MHD_Response *pending; /* answered outside MHD's callbacks: queued on resume */
    unsigned pending_status;
    hr_buf resp_headers;     /* "name\0value\0" pairs added before the response */
    int has_body;            /* Content-Length > 0 or chunked */
    long long body_declared; /* Content-Length, -1 when chunked or absent */
    uint64_t body_cap, body_read;
    hr_buf body;                /* VA_BODY_SMALL */
    va_body_fn body_fn;         /* VA_BODY_STREAM */
    void (*on_gone)(va_req *r); /* the client went away while the body consumer holds r */
    int authed; /* the token was checked before the body (not again in va_req_run) */
    uint64_t t0_ns;
    int status; /* sent status, for the log and metrics */
    /* path segments matched by {} and query parameters (decoded copies) */
    int n_segs;
    char *segs[VA_MAX_SEGS];
    int n_params;
    va_param params[VA_MAX_PARAMS];
    /* auth */
    char token[VA_TOKEN_LEN + 8];
    int by_cookie; /* the token came from the session cookie (VA_SESSION_COOKIE) */
    va_principal who;
    int auth_rc;
    sto_scope scope;
    /* the pool step */
    uv_work_t work;
    hr_pool_job job; /* the step on a dedicated pool (va_req_run_on) */
    int pool_status; /* -ECANCELED: that pool closed before the step ran */
    va_work_fn work_fn;
    va_done_fn done_fn;
    int in_work;
    int redis_down;
    int answered; /* a response was sent before done_fn (refused token) */
    /* handler state: freed by the handler (done_fn or its generator) */
    void *state;
    /* a streaming response holds the request until it ends */
    int streaming;
    /* va_req_defer: the response waits in srv's held list until release_ms */
    unsigned defer_ms;
    int held;
    uint64_t release_ms;
    struct va_req *held_prev, *held_next;
};

/* 1 when done_fn must only free its state: the client went away, or the
 * core already answered (refused token). */
static inline int va_req_gone(const va_req *r)
{
    return !r->h || r->answered;
}

/* ---- server core (http_server.c) ---- */
/* Queues auth + work on the pool, then done on the loop. */
void va_req_run(va_req *r, va_work_fn work, va_done_fn done);
/* The same on a dedicated pool (srv->kdf_pool for password hashing) instead
 * of libuv's. 0; -EAGAIN when the pool is full or HR_ESTATE when it is closed
 * (or NULL): nothing was queued and the caller answers (503). When the pool
 * closes before work ran, done runs with r->pool_status = -ECANCELED. */
int va_req_run_on(va_req *r, hr_pool *pool, va_work_fn work, va_done_fn done);
/* Bound on responses held back by va_req_defer at once, per server. */
#define VA_HELD_MAX 4096
/* The response r sends next (va_send and the like) goes out ms later, its
 * connection suspended meanwhile (a tarpit for refusals: a client that waits
 * for its answer sends nothing else). 0: at once. Not held while the server
 * is stopping; beyond VA_HELD_MAX held responses it goes out at once with
 * Connection: close. Held responses go out at a graceful stop's start (with
 * Connection: close). A client that goes away meanwhile is noticed when its
 * response is released. */
void va_req_defer(va_req *r, unsigned ms);
/* Sends a complete response (body copied). Inside MHD's callbacks it is
 * queued at once; otherwise (after pool work) the connection is resumed and
 * the response queued from there. One response per request: later calls
 * only record the status. */
void va_send(va_req *r, int status, const char *content_type, const char *body, size_t len);
/* Sends a JSON document (steals the reference). */
void va_send_json(va_req *r, int status, json_t *doc);
/* Same with another media type (application/dicom+json). */
void va_send_json_type(va_req *r, int status, const char *content_type, json_t *doc);
/* Sends {"error": code, "detail": ...} with status. */
void va_send_error(va_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a response header (copied into the request's pool). */
void va_add_header(va_req *r, const char *name, const char *value);
/* The first value of a request header, NUL-terminated in the pool; NULL when absent. */
const char *va_header(va_req *r, const char *name);
/* Query parameter value (first occurrence) or NULL. */
const char *va_param_get(const va_req *r, const char *name);
/* Records an audit event for r (actor, role, hospital, address, request id
 * filled from r). */
void va_audit(va_req *r, const char *action, const char *patient, const char *study,
              const char *detail, const char *outcome);
/* Maps an hr_err/errno code of the pool step to a JSON error response. */
void va_send_rc(va_req *r, int rc, const char *what);
/* The request's body of a VA_BODY_SMALL route (collected, chunked or not,
 * within its cap); valid until the response. */
va_iovec va_body(va_req *r);
/* The request target as sent (path and query, not decoded), for logs. */
const char *va_path(const va_req *r, size_t *len);
/* "http://host" or "https://host" into out (cap >= 272 holds any): the
 * scheme of the listener and the Host header, or, when the peer is one of
 * http.trusted_proxies, the host and proto of its Forwarded element or else
 * X-Forwarded-Host / X-Forwarded-Proto (the last value of each: the one the
 * proxy in front set). A host that is not host[:port] (letters, digits, '-',
 * '.', '_', a bracketed IPv6 literal, port digits; at most 255 bytes) is ignored:
 * an invalid Host gives "" (links become origin-relative), a missing one
 * "localhost" (decision 0030). */
void va_base_url(va_req *r, char *out, size_t cap);
/* VA_BODY_STREAM routes: the handler (called once the token was checked,
 * before any body byte is read) installs its consumer; on_gone runs instead
 * of it when the client goes away (the handler frees its state and calls
 * va_req_stream_end). The request is held (r->streaming) until then. */
void va_body_stream(va_req *r, va_body_fn fn, void (*on_gone)(va_req *r));
/* Stop reading the body (the connection is suspended once the current
 * callback returns) / read on (from the loop, any time). */
void va_body_pause(va_req *r);
void va_body_resume(va_req *r);
/* Starts a streamed response: size bytes (MHD_SIZE_UNKNOWN: chunked)
 * produced by crc with MHD's buffer of block bytes; crfc(cls) runs when MHD
 * is done with it (sent, or the client went away). The request is held
 * until va_req_stream_end. crc returns 0 only after va_req_suspend; the
 * producer calls va_req_resume once it has data. 0, or -ENOMEM (nothing
 * sent, crfc not called). */
int va_send_stream(va_req *r, int status, const char *content_type, uint64_t size, size_t block,
                   MHD_ContentReaderCallback crc, void *cls, MHD_ContentReaderFreeCallback crfc);
/* Sends size bytes of the open file fd (MHD takes it and closes it when
 * done; on failure the caller still owns it). 0 or -ENOMEM. */
int va_send_fd(va_req *r, int status, const char *content_type, int fd, uint64_t size);
/* Inside a content reader of r only: no more calls until va_req_resume. */
void va_req_suspend(va_req *r);
/* From the loop: MHD calls the content reader (or access handler) again soon. */
void va_req_resume(va_req *r);
/* For streaming responses and bodies: the request is finished (called by the
 * producer when MHD freed its response, or by the body consumer at its end). */
void va_req_stream_end(va_req *r);

/* After a KDF run on srv->kdf_pool that started at t0_ns (uv_hrtime): while
 * ingest is busy, no other starts for a rest proportional to its length
 * (auth.kdf_share_ingesting, decision 0019). Any thread. */
void va__kdf_rest(va_server *s, uint64_t t0_ns);

/* hr_pool max_running of srv->kdf_pool (arg: the va_server): KDF runs allowed
 * at once, auth.kdf_threads_ingesting while ingest is busy (decision 0019).
 * Any thread. */
int va__kdf_max_running(void *arg);

/* ---- shared by handlers (api_common.c) ---- */

/* Why a pool step refused a request, answered later on the loop. */
typedef struct va_denial {
    int status; /* 0 = allowed */
    const char *code;
    char detail[200];
} va_denial;

/* Fills *d: HTTP status, error code (static string, borrowed) and a detail
 * formatted into d->detail (truncated to its size). Any thread. */
void va__deny(va_denial *d, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stores p (len bytes) at path, a file of the cache <data_dir>/rendered
 * (rendered images, report PDFs): a temporary file beside it, renamed. Not
 * fsync'd: a failure only costs a later render (logged with what). Pool. */
void va__cache_store(const hr_config *cfg, const char *path, const unsigned char *p, size_t len,
                     const char *what);

/* A new JSON string of s (NULL counts as ""); "" when s is not valid UTF-8,
 * so it never fails the document. NULL only when out of memory. */
json_t *va__jstr(const char *s);

/* ---- CSV answers (UTF-8 with a BOM, so that Excel reads Chinese text) ---- */

/* 1 when r asks for CSV (?format=csv, or Accept: text/csv without format),
 * 0 for JSON (?format=json or neither), -1 for another format value. */
int va__want_csv(va_req *r);
/* Initialises b (capped at 64 MiB) with the UTF-8 BOM. The caller frees it. */
void va__csv_begin(hr_buf *b);
/* Appends one cell, then "," or, when last, CRLF: quoted when it holds a
 * comma, quote or line break; a text starting like a formula (= + - @ tab
 * CR) gets a leading ' (spreadsheet formula injection). NULL counts as "". */
void va__csv_str(hr_buf *b, const char *s, int last);
void va__csv_num(hr_buf *b, long long v, int last);
/* A JSON value as a cell: strings as is, numbers, booleans, null as "". */
void va__csv_json(hr_buf *b, json_t *v, int last);
/* Sends b as text/csv, attachment "<name>.csv" (b is copied; the caller
 * still frees it). */
void va__csv_send(va_req *r, hr_buf *b, const char *name);

/* ---- handlers ---- */
/* The pages, their libraries and OHIF from web.root (static.c, decision
 * 0028): 1 when path [0, len) is one of theirs (a file type served). */
int va_static_path(const hr_config *cfg, const char *path, size_t len);
void va_handle_static(va_req *r);
/* GET /viewer/app-config.js: OHIF's configuration for the session. */
void va_handle_viewer_config(va_req *r);
void va_handle_healthz(va_req *r);
void va_handle_metrics(va_req *r);
void va_handle_login(va_req *r);
void va_handle_logout(va_req *r);
void va_handle_me(va_req *r);
void va_handle_password(va_req *r); /* POST /api/v1/me/password */
void va_handle_qido(va_req *r);
void va_handle_wado(va_req *r);
void va_handle_metadata(va_req *r);
void va_handle_frames(va_req *r);
void va_handle_bulk(va_req *r);
void va_handle_wado_uri(va_req *r);
void va_handle_stow(va_req *r);
/* POST /api/v1/ecg: an HL7 aECG document imported as a DICOM ECG (api_ecg_import.c).
 * At most VA_ECG_IMPORTS_MAX at once per server (each holds up to ~8x the
 * document in memory while it is read and built); more: 503 Retry-After. */
#define VA_ECG_IMPORTS_MAX 2
void va_handle_ecg_import(va_req *r);
/* worklists and exams (api_worklist.c) */
void va_handle_worklist(va_req *r);
void va_handle_worklist_claim(va_req *r);
void va_handle_worklist_release(va_req *r);
void va_handle_worklist_renew(va_req *r);
void va_handle_worklist_reassign(va_req *r);
void va_handle_exams(va_req *r);
void va_handle_exam_complete(va_req *r);
/* reports (api_reports.c) */
void va_handle_report_create(va_req *r);
void va_handle_report_save(va_req *r);
void va_handle_report_sign(va_req *r);
void va_handle_report_cosign(va_req *r);
void va_handle_report_amend(va_req *r);
void va_handle_report_retract(va_req *r);
void va_handle_report_return(va_req *r);
/* the reading workbench (api_workbench.c) */
void va_handle_report_templates(va_req *r);
void va_handle_exam_priors(va_req *r);
void va_handle_report_get(va_req *r);
void va_handle_report_jws(va_req *r);
void va_handle_report_verify(va_req *r); /* GET .../versions/{n}/verify */
/* GET /api/v1/reports/{id}/versions/{n}/pdf (api_report_pdf.c) */
void va_handle_report_pdf(va_req *r);
/* GET /api/v1/ecg/{instance}: a waveform object as the ECG waveform JSON (api_ecg.c). */
void va_handle_ecg(va_req *r);
/* The PDF of signed version v with the verification URL url: from the cache
 * <data_dir>/rendered, else rendered (at most VA_PDF_RENDERS at once in the
 * process) and stored there. *pdf (malloc'd, the caller frees), *len,
 * *cached (1: from the cache). 0; -EAGAIN (renders busy); the codes of
 * rpt_render_pdf. Blocking (pool step). */
struct rpt_version;
int va__report_pdf(const hr_config *cfg, const struct rpt_version *v, const char *url,
                   unsigned char **pdf, size_t *len, int *cached);
void va_handle_reports(va_req *r);
void va_handle_exam(va_req *r);
/* How much of a study's reports the principal of r may see: the one access
 * rule of reports (decision 0024): a live recognition grant of the study
 * (decision 0027) gives its signed versions.
 * center: where the study was routed; hospital: the study's source
 * hospital. Blocking (pool step). */
enum va_report_access {
    VA_RPT_NONE,   /* nothing (answered like an absent report: 404) */
    VA_RPT_SIGNED, /* signed versions only, never drafts */
    VA_RPT_FULL    /* drafts too */
};
enum va_report_access va_report_access(const va_req *r, redisContext *c, const char *study,
                                       const char *center, const char *hospital);
/* persons (api_persons.c) */
void va_handle_persons_link(va_req *r);
void va_handle_person(va_req *r);
/* api_lab.c: lab reports as FHIR DiagnosticReport (decision 0035) */
void va_handle_lab_reports(va_req *r);
void va_handle_lab_report(va_req *r);
/* mutual recognition (api_recognition.c) */
void va_handle_recognition(va_req *r);
void va_handle_recognition_decision(va_req *r);
void va_handle_recognition_decisions(va_req *r);
void va_handle_recognition_catalogue(va_req *r);
void va_handle_recognition_stats(va_req *r);
/* GET /api/v1/events (sse.c) */
void va_handle_events(va_req *r);
/* GET /api/v1/deliveries?report= (api_deliveries.c) */
void va_handle_deliveries(va_req *r);
/* critical-value alerts (api_alerts.c, sse.c; decision 0040) */
void va_handle_alerts(va_req *r);
void va_handle_alert(va_req *r);
void va_handle_alert_ack(va_req *r);
void va_handle_alert_events(va_req *r);
void va_handle_stats_alerts(va_req *r); /* api_office.c */
/* PS3.18 rendered and thumbnail resources of a study, series, instance or
 * frame (rendered.c, decision 0029) */
void va_handle_rendered(va_req *r);
void va_handle_thumbnail(va_req *r);
/* srv->render_pool: renders at once, and requests waiting beyond them
 * (more: 503 with Retry-After) */
#define VA_RENDER_THREADS 2
#define VA_RENDER_QUEUE   32

/* the office and admin API (api_office.c, decision 0031) */
void va_handle_stats_volumes(va_req *r);
void va_handle_stats_turnaround(va_req *r);
void va_handle_stats_overdue(va_req *r);
void va_handle_audit_search(va_req *r);
void va_handle_users(va_req *r);
void va_handle_user_create(va_req *r);
void va_handle_user_disable(va_req *r);
void va_handle_user_enable(va_req *r);
void va_handle_user_password(va_req *r);
void va_handle_config_hospitals(va_req *r);
void va_handle_config_centers(va_req *r);
/* patient share links (api_share.c, decision 0032) */
void va_handle_share_create(va_req *r);
void va_handle_shares(va_req *r);
void va_handle_share_revoke(va_req *r);
/* public: the holder of a share token */
void va_handle_share_read(va_req *r);
void va_handle_share_image(va_req *r);
void va_handle_share_pdf(va_req *r);

/* metrics text of the HTTP layer (http_server.c) */
void va_metrics_http(va_server *s, hr_buf *out);

#endif
