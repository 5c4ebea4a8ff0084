/* /healthz, /metrics, and the session endpoints: POST /api/v1/login,
 * POST /api/v1/logout, GET /api/v1/me. */
#include "va.h"
#include "../common/hr_err.h"
#include "../storage/index.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- login ---- */

typedef struct login_state {
    char user[VA_USER_MAX + 8];
    char *password;
    char token[VA_TOKEN_LEN + 1];
    int rc;
} login_state;

static void login_work(va_req *r, redisContext *c)
{
    login_state *st = r->state;
    st->rc = c ? va_auth_login(c, st->user, st->password, r->srv->cfg->http.token_ttl_s, &r->who,
                               st->token)
               : HR_EREDIS;
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void login_done(va_req *r)
{
    login_state *st = r->state;
    r->state = NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc == 0) {
        json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "token", st->token,
                                "token_type", "Bearer", "expires_at", (json_int_t)r->who.expires,
                                "user", r->who.user, "role", sto_role_name(r->who.role), "hospital",
                                r->who.hospital, "center", r->who.center);
        va_audit(r, "login", NULL, NULL, NULL, "success");
        va_send_json(r, 200, doc);
    } else {
        /* the name tried is recorded as the detail, not as the actor */
        char detail[128];
        snprintf(detail, sizeof(detail), "user %s", st->user);
        memset(&r->who, 0, sizeof(r->who));
        va_audit(r, "login", NULL, NULL, detail,
                 st->rc == -EAGAIN   ? "locked"
                 : st->rc == -EACCES ? "denied"
                                     : "failure");
        if (st->rc == -EACCES)
            va_send_error(r, 401, "invalid_credentials", "wrong user name or password");
        else if (st->rc == -EAGAIN)
            va_send_error(r, 429, "locked", "too many failed logins; try again in 15 minutes");
        else
            va_send_rc(r, st->rc, "login");
    }
    if (st->password) {
        OPENSSL_cleanse(st->password, strlen(st->password));
        free(st->password);
    }
    free(st);
}

void va_handle_login(va_req *r)
{
    h2o_iovec_t body = va_body(r);
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
    r->state = st;
    va_req_run(r, login_work, login_done);
}

/* ---- logout, me ---- */

static void logout_work(va_req *r, redisContext *c)
{
    intptr_t rc = c ? va_auth_logout(c, r->token) : HR_EREDIS;
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
    va_audit(r, "logout", NULL, NULL, NULL, rc == 0 ? "success" : "failure");
    if (rc == 0 || rc == -EACCES)
        va_send(r, 204, NULL, "", 0); /* the token is gone either way */
    else
        va_send_rc(r, (int)rc, "logout");
}

void va_handle_logout(va_req *r)
{
    va_req_run(r, logout_work, logout_done);
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
