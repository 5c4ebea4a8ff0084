/* HTTP server core: libh2o on the libuv loop, routing, request ids, JSON
 * errors, CORS, bearer-token authentication on the thread pool, access log
 * and metrics. Handlers live in their own files (va.h). */
#include "va.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../storage/index.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const va_route k_routes[] = {
    {"GET", "/healthz", 1, va_handle_healthz, "healthz"},
    {"GET", "/metrics", 0, va_handle_metrics, "metrics"},
    {"POST", "/api/v1/login", 1, va_handle_login, "login"},
    {"POST", "/api/v1/logout", 0, va_handle_logout, "logout"},
    {"GET", "/api/v1/me", 0, va_handle_me, "me"},
    {"GET", "/dicomweb/studies", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/series", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/instances", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/studies/{}/series", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/studies/{}/instances", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/studies/{}/series/{}/instances", 0, va_handle_qido, "qido"},
    {"GET", "/dicomweb/studies/{}", 0, va_handle_wado, "wado"},
    {"GET", "/dicomweb/studies/{}/series/{}", 0, va_handle_wado, "wado"},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}", 0, va_handle_wado, "wado"},
    {"GET", "/dicomweb/studies/{}/metadata", 0, va_handle_metadata, "metadata"},
    {"GET", "/dicomweb/studies/{}/series/{}/metadata", 0, va_handle_metadata, "metadata"},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/metadata", 0, va_handle_metadata,
     "metadata"},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/frames/{}", 0, va_handle_frames, "frames"},
    {"GET", "/dicomweb/studies/{}/series/{}/instances/{}/bulk/{}", 0, va_handle_bulk, "bulk"},
    {"POST", "/dicomweb/studies", 0, va_handle_stow, "stow"},
    {"POST", "/dicomweb/studies/{}", 0, va_handle_stow, "stow"},
    {"GET", "/wado", 0, va_handle_wado_uri, "wado-uri"},
    {"GET", "/dicomweb/wado", 0, va_handle_wado_uri, "wado-uri"},
    {"GET", "/api/v1/worklists/{}", 0, va_handle_worklist, "worklist"},
    {"POST", "/api/v1/worklists/{}/items/{}/claim", 0, va_handle_worklist_claim, "worklist-claim"},
    {"POST", "/api/v1/worklists/{}/items/{}/release", 0, va_handle_worklist_release,
     "worklist-release"},
    {"POST", "/api/v1/worklists/{}/items/{}/renew", 0, va_handle_worklist_renew, "worklist-renew"},
    {"POST", "/api/v1/worklists/{}/items/{}/reassign", 0, va_handle_worklist_reassign,
     "worklist-reassign"},
    {"GET", "/api/v1/exams", 0, va_handle_exams, "exams"},
    {"POST", "/api/v1/exams/{}/complete", 0, va_handle_exam_complete, "exam-complete"},
    {"GET", "/api/v1/events", 0, va_handle_events, "events"},
};
#define N_ROUTES (sizeof(k_routes) / sizeof(k_routes[0]))

/* Routes whose answers hold patient data: refused while the audit log cannot
 * record them (fail closed). */
static int reads_patient_data(const va_route *rt)
{
    static const char *const k[] = {"qido",     "wado",     "metadata", "frames", "bulk",
                                    "wado-uri", "worklist", "exams",    "events"};
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

/* ---- request lifetime ----
 * A va_req is malloc'ed: h2o frees its request (and pool) when the response
 * ends or the client goes away, possibly while our work is on the pool. The
 * pool's dispose hook clears r->h; the request is freed once nothing holds it. */

typedef struct dispose_hook {
    va_req *r;
} dispose_hook;

static void req_free(va_req *r)
{
    for (int i = 0; i < r->n_segs; i++)
        free(r->segs[i]);
    for (int i = 0; i < r->n_params; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    free(r);
}

static void record(va_req *r)
{
    va_server *s = r->srv;
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
    hr_info("http", "%s %s %s %s %d %.1f ms%s%s", r->id, r->peer, r->route ? r->route->method : "-",
            r->route ? r->route->pattern : "(no route)", r->status, secs * 1000.0,
            r->who.user[0] ? " user=" : "", r->who.user);
}

static void on_dispose(void *p)
{
    dispose_hook *d = p;
    va_req *r = d->r;
    r->h = NULL;
    record(r);
    if (!r->in_work && !r->streaming)
        req_free(r);
}

void va_req_stream_end(va_req *r)
{
    r->streaming = 0;
    if (!r->h && !r->in_work)
        req_free(r);
}

/* ---- responses ---- */

void va_add_header(va_req *r, const char *name, const char *value)
{
    if (!r->h)
        return;
    size_t nl = strlen(name), vl = strlen(value);
    char *n = h2o_mem_alloc_pool(&r->h->pool, nl + 1);
    char *v = h2o_mem_alloc_pool(&r->h->pool, vl + 1);
    memcpy(n, name, nl + 1);
    memcpy(v, value, vl + 1);
    for (size_t i = 0; i < nl; i++)
        n[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    h2o_add_header_by_str(&r->h->pool, &r->h->res.headers, n, nl, 1, NULL, v, vl);
}

const char *va_header(va_req *r, const char *name)
{
    if (!r->h)
        return NULL;
    ssize_t i = h2o_find_header_by_str(&r->h->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = r->h->headers.entries[i].value;
    char *s = h2o_mem_alloc_pool(&r->h->pool, v.len + 1);
    memcpy(s, v.base, v.len);
    s[v.len] = '\0';
    return s;
}

/* The session cookie's token (every Cookie header: HTTP/2 may split them).
 * 1 when found and of a valid length. */
static int session_cookie(va_req *r, char *out, size_t cap)
{
    static const char name[] = VA_SESSION_COOKIE "=";
    const size_t nl = sizeof(name) - 1;
    if (!r->h)
        return 0;
    for (ssize_t i = -1; (i = h2o_find_header(&r->h->headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        h2o_iovec_t v = r->h->headers.entries[i].value;
        size_t p = 0;
        while (p < v.len) {
            while (p < v.len && (v.base[p] == ' ' || v.base[p] == ';'))
                p++;
            size_t e = p;
            while (e < v.len && v.base[e] != ';')
                e++;
            if (e - p > nl && memcmp(v.base + p, name, nl) == 0) {
                size_t tl = e - p - nl;
                while (tl && v.base[p + nl + tl - 1] == ' ')
                    tl--;
                if (tl == 0 || tl >= cap)
                    return 0;
                memcpy(out, v.base + p + nl, tl);
                out[tl] = '\0';
                return 1;
            }
            p = e;
        }
    }
    return 0;
}

static int safe_method(const h2o_req_t *h)
{
    return h2o_memis(h->method.base, h->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD"));
}

void va_set_session_cookie(va_req *r, const char *token, long long max_age_s)
{
    char v[VA_TOKEN_LEN + 160];
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
             VA_SESSION_COOKIE, token, max_age_s, r->srv->cfg->http.tls_cert[0] ? "; Secure" : "");
    va_add_header(r, "Set-Cookie", v);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

void va_send(va_req *r, int status, const char *content_type, const char *body, size_t len)
{
    r->status = status;
    if (!r->h)
        return;
    r->h->res.status = status;
    r->h->res.reason = reason_of(status);
    if (content_type)
        va_add_header(r, "Content-Type", content_type);
    r->h->res.content_length = len;
    char *copy = h2o_mem_alloc_pool(&r->h->pool, len ? len : 1);
    if (len)
        memcpy(copy, body, len);
    h2o_send_inline(r->h, copy, len);
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

h2o_iovec_t va_body(va_req *r)
{
    return r->h ? r->h->entity : h2o_iovec_init(NULL, 0);
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
    if (!r->route->public_) {
        r->auth_rc = c ? va_auth_check(c, r->token, &r->who) : HR_EREDIS;
        if (r->auth_rc == HR_EREDIS)
            sto_worker_redis_failed();
        if (r->auth_rc)
            return;
        sto_scope_for(r->srv->cfg, r->who.role, r->who.hospital, r->who.center, &r->scope);
    }
    r->work_fn(r, c);
}

static void work_run(uv_work_t *w)
{
    req_work(w->data);
}

static void req_done(va_req *r)
{
    r->in_work = 0;
    if (r->h && !r->route->public_ && r->auth_rc) {
        if (r->auth_rc == HR_EREDIS)
            va_send_error(r, 503, "index_unavailable", "cannot check the token: Redis is down");
        else
            va_send_error(r, 401, "unauthorized", "missing, invalid or expired bearer token");
        va_audit(r, r->route->metric, NULL, NULL, "token refused", "denied");
        r->answered = 1; /* done_fn only frees its state */
    }
    if (r->done_fn)
        r->done_fn(r);
    if (!r->h && !r->streaming)
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

static void peer_name(h2o_req_t *h, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = h->conn->callbacks->get_peername(h->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (len == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}

static int on_req(h2o_handler_t *self, h2o_req_t *h)
{
    va_server *s = *(va_server **)(self + 1);
    va_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->h = h;
    r->srv = s;
    r->t0_ns = uv_hrtime();
    snprintf(r->id, sizeof(r->id), "%s-%06llx", s->id_prefix, (unsigned long long)++s->next_id);
    peer_name(h, r->peer, sizeof(r->peer));
    dispose_hook *d = h2o_mem_alloc_shared(&h->pool, sizeof(*d), on_dispose);
    d->r = r;
    va_add_header(r, "X-Request-Id", r->id);

    const char *origin = va_header(r, "origin");
    int cors = origin && origin_allowed(s, origin);
    if (cors) {
        va_add_header(r, "Access-Control-Allow-Origin", origin);
        va_add_header(r, "Vary", "Origin");
        va_add_header(r, "Access-Control-Expose-Headers",
                      "X-Request-Id, Content-Type, Content-Length, Warning");
    }
    size_t plen = h->query_at != SIZE_MAX ? h->query_at : h->path.len;
    h2o_iovec_t path = h2o_iovec_init(h->path.base, plen);
    if (h->query_at != SIZE_MAX &&
        parse_query(r, h->path.base + h->query_at + 1, h->path.len - h->query_at - 1)) {
        va_send_error(r, 400, "bad_request", "malformed query string");
        return 0;
    }
    int path_known = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!match_route(r, k_routes[i].pattern, path.base, path.len))
            continue;
        path_known = 1;
        if (h2o_memis(h->method.base, h->method.len, k_routes[i].method,
                      strlen(k_routes[i].method))) {
            r->route = &k_routes[i];
            break;
        }
        for (int k = 0; k < r->n_segs; k++)
            free(r->segs[k]);
        r->n_segs = 0;
    }
    if (h2o_memis(h->method.base, h->method.len, H2O_STRLIT("OPTIONS"))) {
        if (cors) {
            va_add_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            va_add_header(r, "Access-Control-Allow-Headers",
                          "Authorization, Content-Type, Accept, Accept-Encoding");
            va_add_header(r, "Access-Control-Max-Age", "600");
        }
        va_send(r, 204, NULL, "", 0);
        return 0;
    }
    if (!r->route) {
        if (path_known)
            va_send_error(r, 405, "method_not_allowed", "%.*s is not allowed here",
                          (int)h->method.len, h->method.base);
        else
            va_send_error(r, 404, "not_found", "no such resource");
        return 0;
    }
    if (!r->route->public_) {
        const char *auth = va_header(r, "authorization");
        if (auth) {
            if (strncasecmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) >= sizeof(r->token)) {
                va_send_error(r, 401, "unauthorized", "a bearer token is required");
                va_audit(r, r->route->metric, NULL, NULL, "no bearer token", "denied");
                return 0;
            }
            snprintf(r->token, sizeof(r->token), "%s", auth + 7);
        } else if (session_cookie(r, r->token, sizeof(r->token))) {
            r->by_cookie = 1;
            if (!safe_method(h) && !va_header(r, "x-requested-with")) {
                va_send_error(r, 403, "csrf",
                              "a request authenticated by the session cookie must carry "
                              "X-Requested-With");
                va_audit(r, r->route->metric, NULL, NULL, "cookie without X-Requested-With",
                         "denied");
                return 0;
            }
        } else {
            va_send_error(r, 401, "unauthorized", "a bearer token or session cookie is required");
            va_audit(r, r->route->metric, NULL, NULL, "no bearer token", "denied");
            return 0;
        }
    }
    if (reads_patient_data(r->route) && sto_audit_admit_read(r->srv->sto->audit, r->id)) {
        va_send_error(r, 503, "audit_unavailable",
                      "the audit log cannot record this read of patient data; try again later");
        return 0;
    }
    r->route->handle(r);
    return 0;
}

/* ---- connections ---- */

static void finish_stop(va_server *s);

/* h2o owns handle->data of a connection; ours rides next to the handle */
typedef struct va_conn {
    uv_tcp_t tcp;
    va_server *srv;
} va_conn;

static void on_conn_closed(uv_handle_t *h)
{
    va_server *s = ((va_conn *)h)->srv;
    free(h);
    s->n_conns--;
    if (s->stopping && s->n_conns == 0)
        finish_stop(s);
}

static void on_connect(uv_stream_t *listener, int status)
{
    va_server *s = listener->data;
    if (status != 0)
        return;
    va_conn *vc = malloc(sizeof(*vc));
    if (!vc)
        return;
    vc->srv = s;
    uv_tcp_t *conn = &vc->tcp;
    uv_tcp_init(s->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    if (s->n_conns >= s->cfg->http.max_connections) {
        hr_warn("http", "connection limit (%d) reached: closing a new connection",
                s->cfg->http.max_connections);
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    s->n_conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
    h2o_accept(&s->accept, sock);
}

static int setup_tls(va_server *s)
{
    const hr_config *c = s->cfg;
    if (!c->http.tls_cert[0])
        return 0;
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl)
        return HR_ECONFIG;
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, c->http.tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ssl, c->http.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        hr_error("http", "TLS certificate %s / key %s: %s", c->http.tls_cert, c->http.tls_key, e);
        SSL_CTX_free(s->ssl);
        s->ssl = NULL;
        return HR_ECONFIG;
    }
    h2o_ssl_register_alpn_protocols(s->ssl, h2o_http2_alpn_protocols);
    return 0;
}

int va_server_start(uv_loop_t *loop, const hr_config *cfg, sto_ctx *sto, va_metrics_fn metrics,
                    void *metrics_arg, va_server **out)
{
    va_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
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
        free(s->stats);
        free(s->login_gate);
        free(s);
        return rc;
    }

    h2o_config_init(&s->config);
    s->config.max_request_entity_size = (size_t)cfg->http.max_body_bytes;
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("huren"));
    s->config.http1.upgrade_to_http2 = 1;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler) + sizeof(va_server *));
    handler->on_req = on_req;
    *(va_server **)(handler + 1) = s;

    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept.ctx = &s->ctx;
    s->accept.hosts = s->config.hosts;
    s->accept.ssl_ctx = s->ssl;

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(loop, &s->stop_timer);
    s->stop_timer.data = s;
    struct sockaddr_storage addr;
    if (strchr(cfg->http.listen.host, ':'))
        uv_ip6_addr(cfg->http.listen.host, cfg->http.listen.port, (struct sockaddr_in6 *)&addr);
    else
        uv_ip4_addr(cfg->http.listen.host, cfg->http.listen.port, (struct sockaddr_in *)&addr);
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connect);
    if (!rc) {
        hr_pool_opts po = {.name = "kdf",
                           .threads = cfg->auth.kdf_threads,
                           .max_jobs = cfg->auth.kdf_queue,
                           .nice = 10, /* ingest and the loop win a contested CPU */
                           .on_thread_exit = sto_worker_redis_failed};
        rc = hr_pool_start(loop, &po, &s->kdf_pool);
    }
    if (rc) {
        s->stopping = 1;
        finish_stop(s);
        return rc;
    }
    hr_info("http", "listening on %s:%d (%s)", cfg->http.listen.host, cfg->http.listen.port,
            s->ssl ? "HTTPS, HTTP/2 via ALPN" : "HTTP/1.1 and h2c");
    if (!s->ssl && !hr_addr_is_loopback(cfg->http.listen.host))
        hr_warn("http",
                "plain HTTP on %s (http.insecure_listen): passwords and tokens cross "
                "the network in clear; configure http.tls_cert and http.tls_key",
                cfg->http.listen.host);
    *out = s;
    return 0;
}

static void on_closed_last(uv_handle_t *h)
{
    va_server *s = h->data;
    /* h2o_context_request_shutdown armed HTTP/2's graceful-shutdown timer;
     * with every connection gone it has nothing left to do */
    if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&s->ctx);
    h2o_config_dispose(&s->config);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    free(s->stats);
    free(s->login_gate);
    free(s);
    if (cb)
        cb(arg);
}

static void on_listener_closed(uv_handle_t *h)
{
    va_server *s = h->data;
    uv_close((uv_handle_t *)&s->stop_timer, on_closed_last);
}

static void finish_stop(va_server *s)
{
    uv_timer_stop(&s->stop_timer);
    if (s->kdf_pool) {
        s->finish_wanted = 1; /* on_kdf_pool_closed comes back */
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    else if (!uv_is_closing((uv_handle_t *)&s->stop_timer))
        uv_close((uv_handle_t *)&s->stop_timer, on_closed_last);
}

static void on_stop_tick(uv_timer_t *t)
{
    va_server *s = t->data;
    if (s->n_conns == 0) {
        finish_stop(s);
        return;
    }
    /* connections still open after the grace period: the process is about
     * to exit; h2o keeps its context until then */
    hr_warn("http", "%d connections still open after 10 s; stopping without them", s->n_conns);
    uv_close((uv_handle_t *)&s->listener, NULL);
    void (*cb)(void *) = s->stop_cb;
    s->stop_cb = NULL;
    if (cb)
        cb(s->stop_arg);
}

static void on_kdf_pool_closed(void *arg)
{
    va_server *s = arg;
    s->kdf_pool = NULL;
    if (s->finish_wanted)
        finish_stop(s);
}

void va_server_stop(va_server *s, void (*cb)(void *), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    uv_read_stop((uv_stream_t *)&s->listener);
    h2o_context_request_shutdown(&s->ctx);
    /* waiting logins get 503; running ones finish */
    if (s->kdf_pool)
        hr_pool_close(s->kdf_pool, on_kdf_pool_closed, s);
    /* connections finish their requests; the rest are cut after 10 s (the
     * process exits then; open sockets are closed by the kernel) */
    uv_timer_start(&s->stop_timer, on_stop_tick, s->n_conns ? 10000 : 0, 0);
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
    appendf(out, "# TYPE huren_http_connections gauge\nhuren_http_connections %d\n", s->n_conns);
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
