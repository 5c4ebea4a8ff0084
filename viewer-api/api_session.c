/* /healthz, /metrics, and the session endpoints: POST /api/v1/login,
 * POST /api/v1/logout[?all=1], GET /api/v1/me, POST /api/v1/me/password. */
#include "va.h"
#include "../common/hr_err.h"
#include "../storage/index.h"

#include <openssl/crypto.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

/* ---- /healthz: loop alive, Redis reachable (no patient data, no token) ---- */

static void healthz_work(va_req *r, redisContext *c)
{
    if (!c)
        return;
    redisReply *rep = redisCommand(c, "PING");
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        r->redis_down = 1;
        sto_worker_redis_failed();
    }
    freeReplyObject(rep);
}

static void healthz_done(va_req *r)
{
    if (va_req_gone(r))
        return;
    int ok = !r->redis_down;
    json_t *doc =
        json_pack("{s:s, s:s}", "status", ok ? "ok" : "degraded", "redis", ok ? "up" : "down");
    va_send_json(r, ok ? 200 : 503, doc);
}

void va_handle_healthz(va_req *r)
{
    va_req_run(r, healthz_work, healthz_done);
}

/* ---- /metrics (Prometheus text format; admin or auditor token) ---- */

static void nop_work(va_req *r, redisContext *c)
{
}

static void metrics_done(va_req *r)
{
    if (va_req_gone(r))
        return;
    if (r->who.role != STO_ROLE_ADMIN && r->who.role != STO_ROLE_AUDITOR) {
        va_send_error(r, 403, "forbidden", "metrics need an admin or auditor token");
        return;
    }
    hr_buf out;
    hr_buf_init(&out, 4 << 20);
    va_metrics_http(r->srv, &out);
    if (r->srv->metrics)
        r->srv->metrics(r->srv->metrics_arg, &out);
    va_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", (const char *)out.data, out.len);
    hr_buf_free(&out);
}

void va_handle_metrics(va_req *r)
{
    va_req_run(r, nop_work, metrics_done);
}

/* ---- login ----
 * The whole login (rate limit, lockout, KDF, token) runs on srv->kdf_pool,
 * never on libuv's pool, which makes ingest durable (decision 0013). */

typedef struct login_state {
    char user[VA_USER_MAX + 8];
    uint64_t sent_ms; /* uv_now when handed to the pool (before Redis saw it) */
    char *password;
    char token[VA_TOKEN_LEN + 1];
    int rc;
    int retry_after_s; /* -EBUSY: until the rate-limit window ends */
    const char *limit; /* -EBUSY: "address" or "user" */
    char why[128];     /* -EPERM: the account does not fit the configuration */
} login_state;

static void login_state_free(login_state *st)
{
    if (st->password) {
        OPENSSL_cleanse(st->password, strlen(st->password));
        free(st->password);
    }
    free(st);
}

/* While ingest is busy, a hash that took d is followed by a rest in which no
 * other starts, so that the KDF threads hash at most auth.kdf_share_ingesting
 * percent of the time (decision 0019, addendum). */
void va__kdf_rest(va_server *s, uint64_t t0_ns)
{
    const int share = s->cfg->auth.kdf_share_ingesting;
    uint64_t t1 = uv_hrtime();
    if (share >= 100 || !s->sto || !sto_ingest_busy(s->sto, t1))
        return;
    uint64_t until = t1 + (t1 - t0_ns) * (uint64_t)(100 - share) / (uint64_t)share;
    if (until > __atomic_load_n(&s->kdf_rest_until_ns, __ATOMIC_RELAXED))
        __atomic_store_n(&s->kdf_rest_until_ns, until, __ATOMIC_RELAXED);
}

static void login_work(va_req *r, redisContext *c)
{
    login_state *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    uint64_t t0 = uv_hrtime();
    va_login_limits lim = {.window_s = cfg->auth.login_window_s,
                           .per_address = cfg->auth.login_per_address,
                           .per_user = cfg->auth.login_per_user};
    st->rc =
        c ? va_login_admit(c, &lim, r->peer, st->user, &st->retry_after_s, &st->limit) : HR_EREDIS;
    if (st->rc == 0) {
        st->rc = va_auth_login(c, st->user, st->password, cfg->http.token_ttl_s,
                               cfg->auth.kdf_iterations, &r->who, st->token);
        va__kdf_rest(r->srv, t0);
    }
    if (st->rc == 0 && r->who.center[0] &&
        va_center_check(cfg, r->who.hospital, r->who.center, st->why, sizeof(st->why))) {
        /* the account no longer fits the configuration: no session */
        va_auth_logout(c, st->token);
        st->rc = -EPERM;
    }
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

int va__kdf_max_running(void *arg)
{
    const va_server *s = arg;
    const hr_config *cfg = s->cfg; /* read-only while the server runs */
    uint64_t now = uv_hrtime();
    if (s->sto && sto_ingest_busy(s->sto, now))
        return now < __atomic_load_n(&s->kdf_rest_until_ns, __ATOMIC_RELAXED)
                   ? 0
                   : cfg->auth.kdf_threads_ingesting;
    return cfg->auth.kdf_threads;
}

/* ---- the node's login gate ----
 * Attempts per client address in the current window of auth.login_window_s
 * that this node handed to the KDF pool, where each is counted in Redis
 * (va_login_admit) too. This count never exceeds the shared one, so refusing
 * here once it reaches auth.login_per_address refuses only what Redis would
 * refuse too, at the cost of an HTTP exchange: no Redis call, no pool hop. Refusals (429 here and
 * below, 503 busy) are audited once per address and window, the rest counted in /metrics, so a
 * flood cannot turn into an audit-log flood. Open addressing over a fixed
 * table: an address whose slot is taken by a live window of another address
 * is not gated here (Redis still is). */
#define GATE_SLOTS 4096
/* Per user name, the gate remembers Redis's own verdict instead of counting:
 * once the shared limit refused a name (va_login_admit, limit "user"), its key
 * stays over the limit until it expires, so every attempt before then is
 * refused here (no Redis call, no pool hop) and audited once per name and
 * window. Only refused names take a slot (a random-name flood takes none);
 * a name finding no free slot is not gated here (Redis still is). */
#define NAME_SLOTS 1024

typedef struct gate_slot {
    char addr[VA_ADDR_MAX];
    uint64_t window;   /* index of the window (ms / window length) */
    int count;         /* attempts in that window */
    int refusals_seen; /* a refusal of this window was audited */
} gate_slot;

typedef struct name_slot {
    char user[VA_USER_MAX + 1];
    uint64_t until_ms; /* uv_now before which Redis refuses the name; free once passed */
    int audited;       /* a refusal here was audited in this window */
} name_slot;

struct va_login_gate {
    gate_slot slot[GATE_SLOTS];
    name_slot name[NAME_SLOTS];
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (const char *p = s; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static struct va_login_gate *gate_get(va_server *s)
{
    if (!s->login_gate)
        s->login_gate = calloc(1, sizeof(*s->login_gate));
    return s->login_gate;
}

static gate_slot *gate_find(va_server *s, const char *addr, uint64_t window)
{
    if (!gate_get(s))
        return NULL;
    uint32_t h = fnv1a(addr);
    for (int probe = 0; probe < 8; probe++) {
        gate_slot *g = &s->login_gate->slot[(h + (uint32_t)probe) % GATE_SLOTS];
        if (strcmp(g->addr, addr) == 0 || g->window != window || !g->addr[0]) {
            if (strcmp(g->addr, addr) != 0 || g->window != window) {
                snprintf(g->addr, sizeof(g->addr), "%s", addr);
                g->window = window;
                g->count = 0;
                g->refusals_seen = 0;
            }
            return g;
        }
    }
    return NULL;
}

/* 1 when this refusal is the first of its address and window (audit it). */
static int gate_first_refusal(va_req *r)
{
    const hr_config *cfg = r->srv->cfg;
    uint64_t w = cfg->auth.login_window_s > 0 ? (uint64_t)cfg->auth.login_window_s * 1000 : 60000;
    gate_slot *g = gate_find(r->srv, r->peer, uv_now(r->srv->loop) / w);
    if (!g || g->refusals_seen)
        return !g;
    g->refusals_seen = 1;
    return 1;
}

/* The address's slot of the current window, or NULL (gate off or full). */
static gate_slot *gate_slot_of(va_req *r, uint64_t *w, uint64_t *now)
{
    const hr_config *cfg = r->srv->cfg;
    if (cfg->auth.login_per_address <= 0 || cfg->auth.login_window_s <= 0)
        return NULL;
    *w = (uint64_t)cfg->auth.login_window_s * 1000;
    *now = uv_now(r->srv->loop);
    return gate_find(r->srv, r->peer, *now / *w);
}

/* 1 when the address used up its attempts on this node alone
 * (*retry_after_s set). */
static int gate_over(va_req *r, int *retry_after_s)
{
    uint64_t w, now;
    gate_slot *g = gate_slot_of(r, &w, &now);
    if (!g || g->count < r->srv->cfg->auth.login_per_address)
        return 0;
    *retry_after_s = (int)((w - now % w + 999) / 1000);
    return 1;
}

/* An attempt went to the KDF pool (where Redis counts it too). */
static void gate_count(va_req *r)
{
    uint64_t w, now;
    gate_slot *g = gate_slot_of(r, &w, &now);
    if (g)
        g->count++;
}

/* The name's slot while Redis refuses it, else NULL. */
static name_slot *name_find(va_server *s, const char *user, uint64_t now)
{
    if (!s->login_gate)
        return NULL;
    uint32_t h = fnv1a(user);
    for (int probe = 0; probe < 8; probe++) {
        name_slot *n = &s->login_gate->name[(h + (uint32_t)probe) % NAME_SLOTS];
        if (n->until_ms > now && strcmp(n->user, user) == 0)
            return n;
    }
    return NULL;
}

/* Redis refused the name for retry_after_s more seconds, counted from no
 * earlier than sent_ms. Its TTL is rounded to the nearest second, so the key
 * may expire half a second early: the gate keeps one second less. */
static void name_refused(va_server *s, const char *user, uint64_t sent_ms, int retry_after_s)
{
    uint64_t now = uv_now(s->loop), until = sent_ms + (uint64_t)(retry_after_s - 1) * 1000;
    if (retry_after_s <= 1 || until <= now || !va_user_name_valid(user) || !gate_get(s))
        return;
    uint32_t h = fnv1a(user);
    name_slot *free_slot = NULL;
    for (int probe = 0; probe < 8; probe++) {
        name_slot *n = &s->login_gate->name[(h + (uint32_t)probe) % NAME_SLOTS];
        if (n->until_ms > now && strcmp(n->user, user) == 0) {
            if (until > n->until_ms)
                n->until_ms = until;
            return;
        }
        if (!free_slot && n->until_ms <= now)
            free_slot = n;
    }
    if (!free_slot)
        return; /* a full neighbourhood: Redis keeps gating this name */
    snprintf(free_slot->user, sizeof(free_slot->user), "%s", user);
    free_slot->until_ms = until;
    free_slot->audited = 0;
}

/* 1 when Redis would refuse this name now (*retry_after_s set); *audit is 1
 * for the first such refusal of the name's window. */
static int name_over(va_req *r, const char *user, int *retry_after_s, int *audit)
{
    uint64_t now = uv_now(r->srv->loop);
    name_slot *n = name_find(r->srv, user, now);
    if (!n)
        return 0;
    *retry_after_s = (int)((n->until_ms - now + 999) / 1000) + 1;
    *audit = !n->audited;
    n->audited = 1;
    return 1;
}

/* A login refused by a rate limit or the lockout (429), or for a full KDF
 * queue (503), is answered auth.refusal_delay_ms later (a tarpit): a
 * flooding client waits for each refusal before it sends the next attempt,
 * so it costs the node a few requests per second instead of thousands. */
static void tarpit(va_req *r)
{
    va_req_defer(r, (unsigned)r->srv->cfg->auth.refusal_delay_ms);
}

/* 503 + Retry-After: no KDF slot (the pool is full or closing). Audited
 * once per address and window. */
static void login_busy(va_req *r, const char *user)
{
    char detail[128];
    snprintf(detail, sizeof(detail), "user %s; too many logins in progress", user);
    r->srv->login_busy++;
    memset(&r->who, 0, sizeof(r->who));
    if (gate_first_refusal(r))
        va_audit(r, "login", NULL, NULL, detail, "busy");
    va_add_header(r, "Retry-After", "2");
    tarpit(r); /* else a client over the queue would retry at once, thousands a second */
    va_send_error(r, 503, "busy", "too many logins in progress; retry in a few seconds");
}

static void login_done(va_req *r)
{
    login_state *st = r->state;
    r->state = NULL;
    char detail[160];
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (r->pool_status) {
        login_busy(r, st->user); /* the server is stopping */
    } else if (st->rc == 0) {
        json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "token", st->token,
                                "token_type", "Bearer", "expires_at", (json_int_t)r->who.expires,
                                "user", r->who.user, "role", sto_role_name(r->who.role), "hospital",
                                r->who.hospital, "center", r->who.center);
        va_audit(r, "login", NULL, NULL, NULL, "success");
        /* browsers keep the session in an HttpOnly cookie (EventSource and
         * <img> cannot send a bearer header); API clients use the token */
        va_set_session_cookie(r, st->token, r->srv->cfg->http.token_ttl_s);
        va_send_json(r, 200, doc);
    } else if (st->rc == -EPERM) {
        snprintf(detail, sizeof(detail), "user %s; %s", st->user, st->why);
        va_audit(r, "login", NULL, NULL, detail, "denied");
        memset(&r->who, 0, sizeof(r->who));
        va_send_error(r, 403, "account_misconfigured", "%s; ask an administrator", st->why);
    } else if (st->rc == -EBUSY) {
        char secs[16];
        if (strcmp(st->limit, "user") == 0)
            name_refused(r->srv, st->user, st->sent_ms, st->retry_after_s);
        snprintf(detail, sizeof(detail), "user %s; rate limit per %s", st->user, st->limit);
        snprintf(secs, sizeof(secs), "%d", st->retry_after_s);
        r->srv->login_limited++;
        memset(&r->who, 0, sizeof(r->who));
        if (gate_first_refusal(r))
            va_audit(r, "login", NULL, NULL, detail, "limited");
        va_add_header(r, "Retry-After", secs);
        tarpit(r);
        va_send_error(r, 429, "rate_limited", "too many logins from this %s; retry in %d s",
                      strcmp(st->limit, "user") == 0 ? "user name" : "address", st->retry_after_s);
    } else {
        /* the name tried is recorded as the detail, not as the actor */
        snprintf(detail, sizeof(detail), "user %s", st->user);
        memset(&r->who, 0, sizeof(r->who));
        va_audit(r, "login", NULL, NULL, detail,
                 st->rc == -EAGAIN   ? "locked"
                 : st->rc == -EACCES ? "denied"
                                     : "failure");
        if (st->rc == -EACCES) {
            va_send_error(r, 401, "invalid_credentials", "wrong user name or password");
        } else if (st->rc == -EAGAIN) {
            va_add_header(r, "Retry-After", STR(VA_LOCK_S));
            tarpit(r);
            va_send_error(r, 429, "locked", "too many failed logins; try again in 15 minutes");
        } else {
            va_send_rc(r, st->rc, "login");
        }
    }
    login_state_free(st);
}

void va_handle_login(va_req *r)
{
    int retry_after_s;
    if (gate_over(r, &retry_after_s)) {
        char secs[16];
        r->srv->login_limited++;
        if (gate_first_refusal(r))
            va_audit(r, "login", NULL, NULL, "rate limit per address (node)", "limited");
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        va_add_header(r, "Retry-After", secs);
        tarpit(r);
        va_send_error(r, 429, "rate_limited", "too many logins from this address; retry in %d s",
                      retry_after_s);
        return;
    }
    va_iovec body = va_body(r);
    if (body.len > 16384) {
        va_send_error(r, 413, "too_large", "login body over 16 KiB");
        return;
    }
    json_error_t je;
    json_t *doc = json_loadb(body.base ? body.base : "", body.len, 0, &je);
    const char *user = NULL, *password = NULL;
    if (!doc || json_unpack(doc, "{s:s, s:s}", "user", &user, "password", &password) != 0) {
        json_decref(doc);
        va_send_error(r, 400, "bad_request",
                      "expected a JSON body {\"user\": \"...\", \"password\": \"...\"}");
        return;
    }
    login_state *st = calloc(1, sizeof(*st));
    if (!st || strlen(user) > VA_USER_MAX) {
        free(st);
        json_decref(doc);
        va_send_error(r, st ? 401 : 500, st ? "invalid_credentials" : "internal",
                      "wrong user name or password");
        return;
    }
    snprintf(st->user, sizeof(st->user), "%s", user);
    st->password = strdup(password);
    json_decref(doc);
    if (!st->password) {
        free(st);
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    int audit;
    if (name_over(r, st->user, &retry_after_s, &audit)) {
        char secs[16];
        r->srv->login_limited++;
        if (audit) {
            char detail[128];
            snprintf(detail, sizeof(detail), "user %s; rate limit per user name (node)", st->user);
            va_audit(r, "login", NULL, NULL, detail, "limited");
        }
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        va_add_header(r, "Retry-After", secs);
        tarpit(r);
        va_send_error(r, 429, "rate_limited", "too many logins for this user name; retry in %d s",
                      retry_after_s);
        login_state_free(st);
        return;
    }
    st->sent_ms = uv_now(r->srv->loop);
    r->state = st;
    if (va_req_run_on(r, r->srv->kdf_pool, login_work, login_done) != 0) {
        r->state = NULL;
        login_busy(r, st->user);
        login_state_free(st);
        return;
    }
    gate_count(r);
}

/* ---- logout, me ---- */

/* ?all=1: every session of the user (logout everywhere), else this one. */
static int logout_all(const va_req *r)
{
    const char *all = va_param_get(r, "all");
    return all && strcmp(all, "1") == 0;
}

static void logout_work(va_req *r, redisContext *c)
{
    intptr_t rc = !c              ? HR_EREDIS
                  : logout_all(r) ? va_auth_revoke_all(c, r->who.user)
                                  : va_auth_logout(c, r->token);
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    r->state = (void *)rc;
}

static void logout_done(va_req *r)
{
    if (va_req_gone(r))
        return;
    intptr_t rc = (intptr_t)r->state;
    r->state = NULL;
    int all = logout_all(r);
    va_audit(r, "logout", NULL, NULL, all ? "all sessions" : NULL, rc == 0 ? "success" : "failure");
    if (rc == 0 || rc == -EACCES || (all && rc == HR_ENOTFOUND)) {
        va_set_session_cookie(r, "", 0); /* the browser forgets it too */
        va_send(r, 204, NULL, "", 0);    /* the token is gone either way */
    } else {
        va_send_rc(r, (int)rc, "logout");
    }
}

void va_handle_logout(va_req *r)
{
    const char *all = va_param_get(r, "all");
    if (all && strcmp(all, "1") != 0 && strcmp(all, "0") != 0) {
        va_send_error(r, 400, "bad_request", "all: 1 or 0");
        return;
    }
    va_req_run(r, logout_work, logout_done);
}

/* ---- POST /api/v1/me/password {old, new} ----
 * On srv->kdf_pool like the login (one or two KDF runs). A wrong old
 * password counts toward the login lockout; success revokes every session,
 * this one too (decision 0033). */

typedef struct passwd_state {
    char *old_pw, *new_pw;
    int rc;
    char why[128];
} passwd_state;

static void passwd_state_free(passwd_state *st)
{
    if (!st)
        return;
    if (st->old_pw) {
        OPENSSL_cleanse(st->old_pw, strlen(st->old_pw));
        free(st->old_pw);
    }
    if (st->new_pw) {
        OPENSSL_cleanse(st->new_pw, strlen(st->new_pw));
        free(st->new_pw);
    }
    free(st);
}

static void passwd_work(va_req *r, redisContext *c)
{
    passwd_state *st = r->state;
    uint64_t t0 = uv_hrtime();
    st->rc = va_auth_password_change(c, r->who.user, st->old_pw, st->new_pw,
                                     r->srv->cfg->auth.kdf_iterations, st->why, sizeof(st->why));
    va__kdf_rest(r->srv, t0);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void passwd_done(va_req *r)
{
    passwd_state *st = r->state;
    r->state = NULL;
    if (va_req_gone(r))
        goto out;
    if (r->pool_status) {
        va_add_header(r, "Retry-After", "2");
        va_send_error(r, 503, "busy", "too many logins in progress; retry in a few seconds");
        goto out;
    }
    switch (st->rc) {
    case 0:
        va_audit(r, "password-change", NULL, NULL, "every session revoked", "success");
        va_set_session_cookie(r, "", 0);
        va_send(r, 204, NULL, "", 0);
        break;
    case -EINVAL:
        va_audit(r, "password-change", NULL, NULL, "new password refused", "denied");
        va_send_error(r, 400, "weak_password", "%s", st->why[0] ? st->why : "password refused");
        break;
    case -EACCES:
        va_audit(r, "password-change", NULL, NULL, "wrong current password", "denied");
        va_send_error(r, 403, "wrong_password", "the current password is wrong");
        break;
    case -EAGAIN:
        va_audit(r, "password-change", NULL, NULL, "locked out", "locked");
        va_add_header(r, "Retry-After", STR(VA_LOCK_S));
        va_send_error(r, 429, "locked", "too many failed logins; try again in 15 minutes");
        break;
    default:
        va_audit(r, "password-change", NULL, NULL, NULL, "failure");
        va_send_rc(r, st->rc, "password change");
    }
out:
    passwd_state_free(st);
}

void va_handle_password(va_req *r)
{
    va_iovec body = va_body(r);
    json_error_t je;
    const char *old_pw = NULL, *new_pw = NULL;
    if (body.len > 16384) {
        va_send_error(r, 413, "too_large", "body over 16 KiB");
        return;
    }
    json_t *doc = json_loadb(body.base ? body.base : "", body.len, 0, &je);
    if (!doc || json_unpack(doc, "{s:s, s:s}", "old", &old_pw, "new", &new_pw) != 0) {
        json_decref(doc);
        va_send_error(r, 400, "bad_request",
                      "expected a JSON body {\"old\": \"...\", \"new\": \"...\"}");
        return;
    }
    passwd_state *st = calloc(1, sizeof(*st));
    if (st) {
        st->old_pw = strdup(old_pw);
        st->new_pw = strdup(new_pw);
    }
    json_decref(doc);
    if (!st || !st->old_pw || !st->new_pw) {
        passwd_state_free(st);
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    r->state = st;
    if (va_req_run_on(r, r->srv->kdf_pool, passwd_work, passwd_done) != 0) {
        r->state = NULL;
        passwd_state_free(st);
        va_add_header(r, "Retry-After", "2");
        va_send_error(r, 503, "busy", "too many logins in progress; retry in a few seconds");
    }
}

static void me_done(va_req *r)
{
    if (va_req_gone(r))
        return;
    const char *scope = r->scope.none ? "none" : r->scope.all ? "all" : "hospital";
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s, s:s}}", "user", r->who.user,
                            "display_name", r->who.display_name, "role", sto_role_name(r->who.role),
                            "hospital", r->who.hospital, "center", r->who.center, "expires_at",
                            (json_int_t)r->who.expires, "scope", "kind", scope, "hospital",
                            r->scope.all ? "" : r->scope.hospital);
    va_send_json(r, 200, doc);
}

void va_handle_me(va_req *r)
{
    va_req_run(r, nop_work, me_done);
}
