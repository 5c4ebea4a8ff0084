/* The critical-value register and acknowledgement (decision 0040,
 * reports/alert.h):
 *   GET  /api/v1/alerts?state=&hospital=&from=&to=&cursor=&limit=
 *   GET  /api/v1/alerts/{id}
 *   POST /api/v1/alerts/{id}/ack   {"readback": "..."}
 *   GET  /api/v1/alerts/events     (sse.c, alert mode)
 * Who sees an alert: admins and the office (the register is a clinical
 * record the office reads for quality control: without the patient's name
 * and id), the users of the ordering hospital, the readers and auditors of
 * the reading center, and every user who was one of its steps' targets.
 * To anyone else it does not exist (404). Who acknowledges: a user of the
 * ordering hospital or the current step's target, with a read-back that
 * matches the value (422 otherwise, counted and logged). Every answer is
 * audited; each listing walks one index (never a scan of all alerts). */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_time.h"
#include "../reports/alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { AOP_LIST, AOP_GET, AOP_ACK };

typedef struct astate {
    int op;
    char id[ALR_ID_MAX];
    char readback[ALR_TEXT_MAX];
    char state[24];
    char hospital[HR_ID_MAX];
    long long from_ms, to_ms;
    char cursor[ALR_CURSOR_MAX];
    int limit;
    int result;
    int allowed;
    json_t *doc;
    char exam[HR_UID_MAX];
    int rc;
} astate;

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* 1 when user was the target of one of a's steps. */
static int was_target(const json_t *a, const char *user)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(a, "steps"), i, s)
    {
        if (i > (size_t)json_integer_value(json_object_get(a, "step")))
            break;
        if (strcmp(jstr(s, "user"), user) == 0)
            return 1;
    }
    return 0;
}

static int may_see(const va_principal *w, const json_t *a)
{
    if (w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_OFFICE)
        return 1;
    if (was_target(a, w->user))
        return 1;
    if ((w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && w->center[0] &&
        strcmp(w->center, jstr(a, "center")) == 0)
        return 1;
    return w->role != STO_ROLE_DICOM_PEER && w->hospital[0] &&
           strcmp(w->hospital, jstr(a, "hospital")) == 0;
}

/* The office reads the register without who the patient is. */
static void shape(const va_principal *w, json_t *a)
{
    if (w->role == STO_ROLE_OFFICE) {
        json_object_del(a, "patient");
        json_object_del(a, "patient_name");
    }
    json_object_del(a, "timeout_ms");
}

static void alerts_work(va_req *r, redisContext *c)
{
    astate *st = r->state;
    const va_principal *w = &r->who;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (st->op == AOP_LIST) {
        alr_query q = {.state = st->state,
                       .from_ms = st->from_ms,
                       .to_ms = st->to_ms,
                       .cursor = st->cursor,
                       .limit = st->limit};
        if (w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_OFFICE) {
            q.hospital = st->hospital; /* "" = all, on the global index */
        } else if ((w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && w->center[0]) {
            q.center = w->center;
            if (strcmp(st->hospital, "me") == 0) {
                q.center = "";
                q.user = w->user; /* alerts where the user was a step's target */
            }
        } else if (strcmp(st->hospital, "me") == 0) {
            q.user = w->user;
        } else {
            q.hospital = w->hospital;
        }
        json_t *items = NULL;
        char next[ALR_CURSOR_MAX];
        st->rc = alr_list(c, &q, &items, next);
        if (st->rc)
            goto out;
        json_t *out = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(items, i, a)
        {
            if (!may_see(w, a))
                continue;
            shape(w, a);
            json_array_append(out, a);
        }
        json_decref(items);
        st->doc = json_pack("{s:o, s:o}", "alerts", out ? out : json_array(), "next_cursor",
                            next[0] ? json_string(next) : json_null());
        st->rc = st->doc ? 0 : -ENOMEM;
        goto out;
    }
    json_t *a = NULL;
    st->rc = alr_get(c, st->id, st->op == AOP_GET, &a);
    if (st->rc == -EINVAL)
        st->rc = HR_ENOTFOUND;
    if (st->rc)
        goto out;
    snprintf(st->exam, sizeof(st->exam), "%s", jstr(a, "exam"));
    if (!may_see(w, a)) {
        json_decref(a);
        st->rc = HR_ENOTFOUND; /* as if absent */
        goto out;
    }
    st->allowed = 1;
    if (st->op == AOP_GET) {
        shape(w, a);
        st->doc = a;
        goto out;
    }
    json_decref(a);
    if (w->role == STO_ROLE_OFFICE) {
        st->result = ALR_ACK_FORBIDDEN;
        goto out;
    }
    st->rc = alr_ack(c, r->srv->cfg, st->id, w->user, w->hospital, st->readback, hr_wall_ms(),
                     &st->result);
    if (!st->rc && (st->result == ALR_ACK_OK || st->result == ALR_ACK_ALREADY)) {
        st->rc = alr_get(c, st->id, 1, &st->doc);
        if (!st->rc)
            shape(w, st->doc);
    }
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void alerts_done(va_req *r)
{
    astate *st = r->state;
    r->state = NULL;
    const char *action = st->op == AOP_LIST ? "alerts" : st->op == AOP_GET ? "alert" : "alert-ack";
    char detail[ALR_ID_MAX + 64];
    const char *exam = st->exam[0] ? st->exam : NULL;
    if (st->op == AOP_LIST)
        snprintf(detail, sizeof(detail), "state=%s hospital=%s", st->state, st->hospital);
    else
        snprintf(detail, sizeof(detail), "alert=%s", st->id);
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc == HR_ENOTFOUND) {
        va_audit(r, action, NULL, exam, detail, st->allowed ? "not-found" : "denied");
        va_send_error(r, 404, "not_found", "no alert \"%s\"", st->id);
    } else if (st->rc == -EINVAL) {
        va_audit(r, action, NULL, exam, detail, "failure");
        va_send_error(r, 400, "bad_request", "bad alert query");
    } else if (st->rc) {
        va_audit(r, action, NULL, exam, detail, "failure");
        va_send_rc(r, st->rc, action);
    } else if (st->op == AOP_ACK && st->result == ALR_ACK_FORBIDDEN) {
        va_audit(r, action, NULL, exam, detail, "denied");
        va_send_error(r, 403, "forbidden",
                      "only a user of the ordering hospital or the alert's current contact may "
                      "acknowledge it");
    } else if (st->op == AOP_ACK && st->result == ALR_ACK_READBACK) {
        va_audit(r, action, NULL, exam, "read-back does not match", "denied");
        va_send_error(r, 422, "readback_mismatch",
                      "the read-back does not repeat the critical value (number and unit, or "
                      "the finding's text); nothing was acknowledged");
    } else {
        va_audit(r, action, NULL, exam, detail, "success");
        if (st->op == AOP_ACK)
            json_object_set_new(st->doc, "already", json_boolean(st->result == ALR_ACK_ALREADY));
        va_send_json(r, 200, st->doc);
        st->doc = NULL;
    }
    json_decref(st->doc);
    free(st);
}

static astate *state_new(va_req *r, int op)
{
    astate *st = calloc(1, sizeof(*st));
    if (!st)
        va_send_error(r, 500, "internal", "out of memory");
    else
        st->op = op;
    return st;
}

/* A time parameter: ms since the epoch (absent: 0). 0 or -1. */
static int time_param(const char *s, long long *out)
{
    char *e;
    if (!s || !*s)
        return 0;
    long long v = strtoll(s, &e, 10);
    if (*e || v < 0)
        return -1;
    *out = v;
    return 0;
}

void va_handle_alerts(va_req *r)
{
    astate *st = state_new(r, AOP_LIST);
    const char *v;
    if (!st)
        return;
    v = va_param_get(r, "state");
    if (v && strcmp(v, "") != 0 && strcmp(v, "open") != 0 && strcmp(v, "raised") != 0 &&
        strcmp(v, "notified") != 0 && strcmp(v, "escalated") != 0 &&
        strcmp(v, "acknowledged") != 0 && strcmp(v, "overdue_final") != 0) {
        va_send_error(r, 400, "bad_request",
                      "state: open, raised, notified, escalated, acknowledged or overdue_final");
        free(st);
        return;
    }
    snprintf(st->state, sizeof(st->state), "%s", v ? v : "");
    v = va_param_get(r, "hospital");
    if (v && strlen(v) >= sizeof(st->hospital)) {
        va_send_error(r, 400, "bad_request", "hospital: a hospital id");
        free(st);
        return;
    }
    snprintf(st->hospital, sizeof(st->hospital), "%s", v ? v : "");
    v = NULL;
    v = va_param_get(r, "cursor");
    if (time_param(va_param_get(r, "from"), &st->from_ms) ||
        time_param(va_param_get(r, "to"), &st->to_ms) || (v && strlen(v) >= sizeof(st->cursor))) {
        va_send_error(r, 400, "bad_request",
                      "from, to: milliseconds since the epoch; cursor: a next_cursor");
        free(st);
        return;
    }
    snprintf(st->cursor, sizeof(st->cursor), "%s", v ? v : "");
    v = va_param_get(r, "limit");
    st->limit = v ? atoi(v) : 50;
    if (st->limit < 1 || st->limit > ALR_PAGE_MAX) {
        va_send_error(r, 400, "bad_request", "limit: 1..%d", ALR_PAGE_MAX);
        free(st);
        return;
    }
    r->state = st;
    va_req_run(r, alerts_work, alerts_done);
}

static int id_param(va_req *r, astate *st)
{
    const char *id = r->n_segs > 0 ? r->segs[0] : "";
    if (strlen(id) >= sizeof(st->id)) {
        va_send_error(r, 404, "not_found", "no such alert");
        return -1;
    }
    snprintf(st->id, sizeof(st->id), "%s", id);
    return 0;
}

void va_handle_alert(va_req *r)
{
    astate *st = state_new(r, AOP_GET);
    if (!st)
        return;
    if (id_param(r, st)) {
        free(st);
        return;
    }
    r->state = st;
    va_req_run(r, alerts_work, alerts_done);
}

void va_handle_alert_ack(va_req *r)
{
    va_iovec b = va_body(r);
    json_error_t jerr;
    json_t *doc = NULL;
    astate *st = state_new(r, AOP_ACK);
    if (!st)
        return;
    if (id_param(r, st))
        goto fail;
    doc = b.len ? json_loadb(b.base, b.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *rb = json_string_value(json_object_get(doc, "readback"));
    if (!json_is_object(doc) || !rb || !*rb || strlen(rb) >= sizeof(st->readback)) {
        va_send_error(r, 400, "bad_request",
                      "the body must be a JSON object {\"readback\": \"the value as heard\"}");
        goto fail;
    }
    snprintf(st->readback, sizeof(st->readback), "%s", rb);
    json_decref(doc);
    r->state = st;
    va_req_run(r, alerts_work, alerts_done);
    return;
fail:
    json_decref(doc);
    free(st);
}
