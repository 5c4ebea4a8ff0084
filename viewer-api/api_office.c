/* The 医共体 office and admin API (decision 0031):
 *   GET  /api/v1/stats/volumes?from=&to=        office, admin
 *   GET  /api/v1/stats/turnaround?from=&to=     office, admin
 *   GET  /api/v1/stats/overdue?center=&limit=   office, admin
 *   GET  /api/v1/stats/alerts?from=&to=         office, admin (critical values, decision 0040)
 *   GET  /api/v1/audit?user=&patient=&study=&action=&from=&to=&limit=&cursor=
 *                                               auditor, admin
 *   GET  /api/v1/users                          admin
 *   POST /api/v1/users                          admin (the rules of `huren user add`)
 *   POST /api/v1/users/{name}/disable|enable|password   admin
 *   GET  /api/v1/config/hospitals, /centers     office, auditor, admin (no secrets)
 * Statistics, the overdue list and the audit search answer CSV (UTF-8 with a
 * BOM, for Excel) with ?format=csv or Accept: text/csv. Another role gets
 * 403 (the statistics rule of the codebase); every call is audited. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_time.h"
#include "../reports/alert.h"
#include "../storage/audit.h"
#include "../worklist/wl_stats.h"
#include "../worklist/worklist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_DEFAULT_DAYS 30
#define USERS_MAX          10000 /* users one listing returns at most */

/* ---- shared ---- */

static int role_in(const va_principal *w, int a, int b, int c)
{
    return (int)w->role == a || (int)w->role == b || (int)w->role == c;
}

/* Local time "YYYY-MM-DD HH:MM:SS" of ms ("" for 0). */
static void local_time(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !localtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

/* from/to (YYYY-MM-DD, default: the last STATS_DEFAULT_DAYS days) within
 * WL_STATS_DAYS_MAX days; 0 or -1 after a 400. */
static int parse_days(va_req *r, int *from, int *to)
{
    const char *f = va_param_get(r, "from"), *t = va_param_get(r, "to");
    *to = t ? hr_day_parse(t) : hr_day_of(hr_wall_ms());
    *from = f ? hr_day_parse(f) : hr_day_add(*to, -(STATS_DEFAULT_DAYS - 1));
    if (!*from || !*to || *from > *to || hr_day_add(*from, WL_STATS_DAYS_MAX - 1) < *to) {
        va_send_error(r, 400, "bad_request",
                      "from, to: dates YYYY-MM-DD, from <= to, at most %d days", WL_STATS_DAYS_MAX);
        return -1;
    }
    return 0;
}

/* ---- statistics ---- */

enum stat_kind { ST_VOLUMES, ST_TURNAROUND, ST_OVERDUE, ST_ALERTS };
static const char *const k_stat_action[] = {"stats-volumes", "stats-turnaround", "stats-overdue",
                                            "stats-alerts"};

typedef struct stat_state {
    enum stat_kind kind;
    int from, to, csv, limit;
    char center[HR_ID_MAX]; /* "" = every center */
    va_denial d;
    json_t *doc;
    int rc;
} stat_state;

static void stat_work(va_req *r, redisContext *c)
{
    stat_state *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    if (!role_in(&r->who, STO_ROLE_ADMIN, STO_ROLE_OFFICE, -1)) {
        va__deny(&st->d, 403, "forbidden", "only the office and admins read these statistics");
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (st->kind == ST_VOLUMES)
        st->rc = wl_stats_volumes(c, cfg, st->from, st->to, &st->doc);
    else if (st->kind == ST_TURNAROUND)
        st->rc = wl_stats_turnaround(c, cfg, st->from, st->to, &st->doc);
    else if (st->kind == ST_ALERTS)
        st->rc = alr_stats_days(c, st->from, st->to, &st->doc);
    else
        st->rc = wl_stats_overdue(c, cfg, st->center[0] ? st->center : NULL, st->limit, &st->doc);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void volumes_csv(const hr_config *cfg, json_t *doc, hr_buf *b)
{
    va__csv_str(b, "day", 0);
    va__csv_str(b, "received", 0);
    va__csv_str(b, "remote_diagnosis", 0);
    char h[HR_NAME_MAX + 64];
    for (size_t i = 0; i < cfg->n_hospitals; i++) {
        snprintf(h, sizeof(h), "received %s (%s)", cfg->hospitals[i].name, cfg->hospitals[i].id);
        va__csv_str(b, h, 0);
    }
    for (size_t i = 0; i < cfg->n_centers; i++) {
        const hr_center *ce = &cfg->centers[i];
        snprintf(h, sizeof(h), "received %s (%s)", ce->name, ce->id);
        va__csv_str(b, h, 0);
        snprintf(h, sizeof(h), "finalized %s (%s)", ce->name, ce->id);
        va__csv_str(b, h, 0);
        snprintf(h, sizeof(h), "remote %s (%s)", ce->name, ce->id);
        va__csv_str(b, h, i + 1 == cfg->n_centers);
    }
    if (!cfg->n_centers)
        hr_buf_append(b, "\r\n", 2);
    size_t k;
    json_t *day;
    json_array_foreach(json_object_get(doc, "days"), k, day)
    {
        va__csv_json(b, json_object_get(day, "day"), 0);
        va__csv_json(b, json_object_get(day, "received"), 0);
        va__csv_json(b, json_object_get(day, "remote"), 0);
        json_t *rh = json_object_get(day, "received_by_hospital");
        json_t *rc = json_object_get(day, "received_by_center");
        json_t *fc = json_object_get(day, "finalized_by_center");
        json_t *mc = json_object_get(day, "remote_by_center");
        for (size_t i = 0; i < cfg->n_hospitals; i++)
            va__csv_num(b, json_integer_value(json_object_get(rh, cfg->hospitals[i].id)), 0);
        for (size_t i = 0; i < cfg->n_centers; i++) {
            const char *id = cfg->centers[i].id;
            va__csv_num(b, json_integer_value(json_object_get(rc, id)), 0);
            va__csv_num(b, json_integer_value(json_object_get(fc, id)), 0);
            va__csv_num(b, json_integer_value(json_object_get(mc, id)), i + 1 == cfg->n_centers);
        }
        if (!cfg->n_centers)
            hr_buf_append(b, "\r\n", 2);
    }
}

static void turnaround_csv(json_t *doc, hr_buf *b)
{
    static const char *const cols[] = {
        "center",         "center_name", "kind",      "priority",      "count",
        "mean_ms",        "median_ms",   "target_ms", "within_target", "within_target_share",
        "overdue_flagged"};
    const size_t n = sizeof(cols) / sizeof(cols[0]);
    for (size_t i = 0; i < n; i++)
        va__csv_str(b, cols[i], i + 1 == n);
    size_t k;
    json_t *row;
    json_array_foreach(json_object_get(doc, "rows"), k, row)
    {
        for (size_t i = 0; i < n; i++)
            va__csv_json(b, json_object_get(row, cols[i]), i + 1 == n);
    }
}

static void overdue_csv(json_t *doc, hr_buf *b)
{
    static const char *const cols[] = {"study",    "priority",  "state",     "hospital",
                                       "modality", "accession", "procedure", "claimed_by"};
    const size_t n = sizeof(cols) / sizeof(cols[0]);
    va__csv_str(b, "center", 0);
    va__csv_str(b, "center_name", 0);
    for (size_t i = 0; i < n; i++)
        va__csv_str(b, cols[i], 0);
    va__csv_str(b, "arrived", 0);
    va__csv_str(b, "due", 0);
    va__csv_str(b, "overdue_since", 1);
    size_t k, j;
    json_t *ce, *it;
    json_array_foreach(json_object_get(doc, "centers"), k, ce)
    {
        json_array_foreach(json_object_get(ce, "items"), j, it)
        {
            char t[32];
            va__csv_json(b, json_object_get(ce, "center"), 0);
            va__csv_json(b, json_object_get(ce, "center_name"), 0);
            for (size_t i = 0; i < n; i++)
                va__csv_json(b, json_object_get(it, cols[i]), 0);
            local_time(json_integer_value(json_object_get(it, "arrived_ms")), t);
            va__csv_str(b, t, 0);
            local_time(json_integer_value(json_object_get(it, "due_ms")), t);
            va__csv_str(b, t, 0);
            local_time(json_integer_value(json_object_get(it, "overdue_ms")), t);
            va__csv_str(b, t, 1);
        }
    }
}

/* day, raised, acked in time, acked late, overdue_final: one row per day. */
static void alerts_csv(json_t *doc, hr_buf *b)
{
    static const char *const cols[] = {"day", "raised", "acked_in_time", "acked_late",
                                       "overdue_final"};
    size_t i, k;
    json_t *d;
    for (k = 0; k < 5; k++)
        va__csv_str(b, cols[k], k == 4);
    json_array_foreach(json_object_get(doc, "days"), i, d)
    {
        for (k = 0; k < 5; k++)
            va__csv_json(b, json_object_get(d, cols[k]), k == 4);
    }
}

static void stat_done(va_req *r)
{
    stat_state *st = r->state;
    r->state = NULL;
    char detail[96];
    if (st->kind == ST_OVERDUE)
        snprintf(detail, sizeof(detail), "center=%s limit=%d", st->center, st->limit);
    else
        snprintf(detail, sizeof(detail), "from=%d to=%d", st->from, st->to);
    const char *action = k_stat_action[st->kind];
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->d.status) {
        va_audit(r, action, NULL, NULL, detail, "denied");
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else if (st->rc) {
        va_audit(r, action, NULL, NULL, detail, "failure");
        va_send_rc(r, st->rc, "statistics");
    } else {
        va_audit(r, action, NULL, NULL, detail, "success");
        if (st->csv) {
            hr_buf b;
            char name[64], f[11], t[11];
            va__csv_begin(&b);
            hr_day_iso(st->from, f);
            hr_day_iso(st->to, t);
            if (st->kind == ST_VOLUMES) {
                volumes_csv(r->srv->cfg, st->doc, &b);
                snprintf(name, sizeof(name), "huren-volumes-%s-%s", f, t);
            } else if (st->kind == ST_TURNAROUND) {
                turnaround_csv(st->doc, &b);
                snprintf(name, sizeof(name), "huren-turnaround-%s-%s", f, t);
            } else if (st->kind == ST_ALERTS) {
                alerts_csv(st->doc, &b);
                snprintf(name, sizeof(name), "huren-critical-values-%s-%s", f, t);
            } else {
                overdue_csv(st->doc, &b);
                snprintf(name, sizeof(name), "huren-overdue");
            }
            va__csv_send(r, &b, name);
            hr_buf_free(&b);
        } else {
            va_send_json(r, 200, st->doc);
            st->doc = NULL;
        }
    }
    json_decref(st->doc);
    free(st);
}

static void stat_start(va_req *r, enum stat_kind kind)
{
    stat_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->kind = kind;
    st->csv = va__want_csv(r);
    if (st->csv < 0) {
        free(st);
        va_send_error(r, 400, "bad_request", "format: csv or json");
        return;
    }
    if (kind == ST_OVERDUE) {
        const char *c = va_param_get(r, "center"), *l = va_param_get(r, "limit");
        char *end = NULL;
        long lim = l ? strtol(l, &end, 10) : 50;
        if (l && (!*l || *end || lim < 1 || lim > WL_OVERDUE_LIMIT)) {
            free(st);
            va_send_error(r, 400, "bad_request", "limit: 1..%d", WL_OVERDUE_LIMIT);
            return;
        }
        if (c && !hr_config_center(r->srv->cfg, c)) {
            free(st);
            va_send_error(r, 400, "bad_request", "center: not a configured center");
            return;
        }
        st->limit = (int)lim;
        snprintf(st->center, sizeof(st->center), "%s", c ? c : "");
    } else if (parse_days(r, &st->from, &st->to)) {
        free(st);
        return;
    }
    r->state = st;
    va_req_run(r, stat_work, stat_done);
}

void va_handle_stats_volumes(va_req *r)
{
    stat_start(r, ST_VOLUMES);
}

void va_handle_stats_turnaround(va_req *r)
{
    stat_start(r, ST_TURNAROUND);
}

void va_handle_stats_overdue(va_req *r)
{
    stat_start(r, ST_OVERDUE);
}

void va_handle_stats_alerts(va_req *r)
{
    stat_start(r, ST_ALERTS);
}

/* ---- GET /api/v1/audit ---- */

#define AUDIT_DEFAULT_DAYS 7

typedef struct audit_state {
    char actor[VA_USER_MAX + 1], patient[200], study[HR_UID_MAX], action[40];
    char cursor[STO_AUDIT_CURSOR_MAX], next[STO_AUDIT_CURSOR_MAX];
    long long from_ms, to_ms;
    int limit, csv;
    long scanned;
    va_denial d;
    json_t *records;
    int rc;
} audit_state;

static int audit_hit(void *arg, json_t *rec)
{
    audit_state *st = arg;
    return json_array_append(st->records, rec) ? -ENOMEM : 0;
}

static void audit_work(va_req *r, redisContext *c)
{
    (void)c;
    audit_state *st = r->state;
    if (!role_in(&r->who, STO_ROLE_ADMIN, STO_ROLE_AUDITOR, -1)) {
        va__deny(&st->d, 403, "forbidden", "only auditors and admins search the audit log");
        return;
    }
    st->records = json_array();
    if (!st->records) {
        st->rc = -ENOMEM;
        return;
    }
    sto_audit_query q = {
        .actor = st->actor,
        .patient = st->patient,
        .study = st->study,
        .action = st->action,
        .from_ms = st->from_ms,
        .to_ms = st->to_ms,
        .cursor = st->cursor,
        .limit = st->limit,
        .max_records = STO_AUDIT_SEARCH_RECORDS,
    };
    st->rc = sto_audit_search(r->srv->cfg->data_dir, &q, audit_hit, st, &st->scanned, st->next,
                              sizeof(st->next));
}

static void audit_csv(json_t *records, hr_buf *b)
{
    static const char *const cols[] = {"time",    "actor",   "role",       "hospital",
                                       "address", "action",  "patient",    "study",
                                       "detail",  "outcome", "request_id", "seq"};
    const size_t n = sizeof(cols) / sizeof(cols[0]);
    for (size_t i = 0; i < n; i++)
        va__csv_str(b, cols[i], i + 1 == n);
    size_t k;
    json_t *rec;
    json_array_foreach(records, k, rec)
    {
        for (size_t i = 0; i < n; i++)
            va__csv_json(b, json_object_get(rec, cols[i]), i + 1 == n);
    }
}

static void audit_done(va_req *r)
{
    audit_state *st = r->state;
    r->state = NULL;
    char detail[600];
    snprintf(detail, sizeof(detail),
             "audit search user=%s patient=%s study=%s action=%s from=%lld "
             "to=%lld cursor=%s",
             st->actor, st->patient, st->study, st->action, st->from_ms, st->to_ms, st->cursor);
    const char *patient = st->patient[0] ? st->patient : NULL;
    const char *study = st->study[0] ? st->study : NULL;
    if (va_req_gone(r)) {
        /* nothing */
    } else if (st->d.status) {
        va_audit(r, "audit-search", patient, study, detail, "denied");
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else if (st->rc) {
        va_audit(r, "audit-search", patient, study, detail, "failure");
        if (st->rc == -EINVAL)
            va_send_error(r, 400, "bad_request", "cursor: not a cursor of this search");
        else
            va_send_rc(r, st->rc, "audit search");
    } else {
        va_audit(r, "audit-search", patient, study, detail, "success");
        if (st->csv) {
            hr_buf b;
            va__csv_begin(&b);
            audit_csv(st->records, &b);
            if (st->next[0])
                va_add_header(r, "X-Huren-Next", st->next);
            va__csv_send(r, &b, "huren-audit");
            hr_buf_free(&b);
        } else {
            json_t *doc = json_pack("{s:O, s:I, s:b, s:o}", "records", st->records, "scanned",
                                    (json_int_t)st->scanned, "complete", !st->next[0], "next",
                                    st->next[0] ? json_string(st->next) : json_null());
            if (doc)
                va_send_json(r, 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    json_decref(st->records);
    free(st);
}

/* A filter parameter: absent or 1..cap-1 printable bytes (no control
 * characters); copied into out. 0 or -1. */
static int text_param(va_req *r, const char *name, char *out, size_t cap)
{
    const char *v = va_param_get(r, name);
    out[0] = '\0';
    if (!v)
        return 0;
    size_t n = strlen(v);
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memcpy(out, v, n + 1);
    return 0;
}

/* Local midnight of a YYYYMMDD day, ms. */
static long long day_start_ms(int day)
{
    struct tm tm = {0};
    tm.tm_year = day / 10000 - 1900;
    tm.tm_mon = day / 100 % 100 - 1;
    tm.tm_mday = day % 100;
    tm.tm_isdst = -1;
    return (long long)mktime(&tm) * 1000;
}

void va_handle_audit_search(va_req *r)
{
    audit_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *bad = NULL;
    if (text_param(r, "user", st->actor, sizeof(st->actor)))
        bad = "user: 1..64 printable bytes";
    else if (text_param(r, "patient", st->patient, sizeof(st->patient)))
        bad = "patient: 1..199 printable bytes";
    else if (text_param(r, "study", st->study, sizeof(st->study)))
        bad = "study: a Study Instance UID";
    else if (text_param(r, "action", st->action, sizeof(st->action)))
        bad = "action: 1..39 printable bytes";
    else if (text_param(r, "cursor", st->cursor, sizeof(st->cursor)))
        bad = "cursor: a next of a previous answer";
    const char *f = va_param_get(r, "from"), *t = va_param_get(r, "to");
    const char *l = va_param_get(r, "limit");
    int to = t ? hr_day_parse(t) : hr_day_of(hr_wall_ms());
    int from = f ? hr_day_parse(f) : hr_day_add(to, -(AUDIT_DEFAULT_DAYS - 1));
    char *end = NULL;
    long lim = l ? strtol(l, &end, 10) : 100;
    if (!bad && (!from || !to || from > to || hr_day_add(from, STO_AUDIT_SEARCH_DAYS - 2) < to))
        bad = "from, to: local dates YYYY-MM-DD, from <= to, at most 91 days";
    if (!bad && l && (!*l || *end || lim < 1 || lim > STO_AUDIT_SEARCH_LIMIT))
        bad = "limit: 1..1000";
    st->csv = va__want_csv(r);
    if (!bad && st->csv < 0)
        bad = "format: csv or json";
    if (bad) {
        free(st);
        va_send_error(r, 400, "bad_request", "%s", bad);
        return;
    }
    st->from_ms = day_start_ms(from);
    st->to_ms = day_start_ms(hr_day_add(to, 1));
    st->limit = (int)lim;
    r->state = st;
    va_req_run(r, audit_work, audit_done);
}

/* ---- users ---- */

typedef struct users_state {
    int act; /* U_LIST, ... */
    char name[VA_USER_MAX + 1];
    char why[200];
    va_denial d;
    json_t *body; /* POST bodies, parsed on the loop */
    json_t *list;
    int truncated;
    int rc;
} users_state;

enum { U_LIST, U_ADD, U_DISABLE, U_ENABLE, U_PASSWORD };
static const char *const k_user_action[] = {"users", "user-add", "user-disable", "user-enable",
                                            "user-password"};

static int on_user(void *arg, const va_user_info *u)
{
    users_state *st = arg;
    if (json_array_size(st->list) >= USERS_MAX) {
        st->truncated = 1;
        return 1;
    }
    json_t *o =
        json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:b}", "name", u->name, "display_name",
                  va__jstr(u->display_name), "role", u->role, "hospital", u->hospital, "center",
                  u->center, "created", (json_int_t)u->created, "disabled", u->disabled);
    return !o || json_array_append_new(st->list, o) ? -ENOMEM : 0;
}

static const char *jget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void users_work(va_req *r, redisContext *c)
{
    users_state *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    if (r->who.role != STO_ROLE_ADMIN) {
        va__deny(&st->d, 403, "forbidden", "only admins manage users");
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    switch (st->act) {
    case U_LIST:
        st->list = json_array();
        st->rc = st->list ? va_user_list(c, on_user, st) : -ENOMEM;
        if (st->rc == 1)
            st->rc = 0;
        break;
    case U_ADD: {
        va_user_spec s = {jget(st->body, "name"),   jget(st->body, "display_name"),
                          jget(st->body, "role"),   jget(st->body, "hospital"),
                          jget(st->body, "center"), jget(st->body, "password")};
        snprintf(st->name, sizeof(st->name), "%s",
                 s.name && va_user_name_valid(s.name) ? s.name : "");
        st->rc = va_user_validate(cfg, &s, st->why, sizeof(st->why));
        if (!st->rc)
            st->rc = va_user_add(c, cfg, &s);
        break;
    }
    case U_DISABLE:
        if (strcmp(st->name, r->who.user) == 0) {
            va__deny(&st->d, 400, "bad_request", "an admin cannot disable their own account");
            return;
        }
        st->rc = va_user_disable(c, st->name);
        break;
    case U_ENABLE:
        st->rc = va_user_enable(c, st->name);
        break;
    case U_PASSWORD: {
        const char *pw = jget(st->body, "password");
        st->rc = va_password_validate(pw, st->why, sizeof(st->why));
        if (!st->rc)
            st->rc = va_user_passwd(c, st->name, pw, cfg->auth.kdf_iterations);
        break;
    }
    }
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void users_done(va_req *r)
{
    users_state *st = r->state;
    r->state = NULL;
    char detail[160];
    snprintf(detail, sizeof(detail), "user=%s", st->name);
    const char *action = k_user_action[st->act];
    if (va_req_gone(r)) {
        /* nothing */
    } else if (r->pool_status == -ECANCELED) {
        va_send_error(r, 503, "busy", "the server is stopping");
    } else if (st->d.status) {
        va_audit(r, action, NULL, NULL, detail, "denied");
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else if (st->rc) {
        va_audit(r, action, NULL, NULL, detail, "failure");
        if (st->rc == -EINVAL)
            va_send_error(r, 400, "bad_request", "%s", st->why[0] ? st->why : "invalid");
        else if (st->rc == -EEXIST)
            va_send_error(r, 409, "exists", "user \"%s\" exists", st->name);
        else
            va_send_rc(r, st->rc, "user");
    } else {
        va_audit(r, action, NULL, NULL, detail, "success");
        if (st->act == U_LIST) {
            json_t *doc = json_pack("{s:O, s:b}", "users", st->list, "truncated", st->truncated);
            if (doc)
                va_send_json(r, 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        } else {
            json_t *doc = json_pack("{s:s, s:s}", "user", st->name, "done", action);
            if (doc)
                va_send_json(r, st->act == U_ADD ? 201 : 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    json_decref(st->body);
    json_decref(st->list);
    free(st);
}

static void users_start(va_req *r, int act)
{
    users_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->act = act;
    if (act != U_LIST && act != U_ADD) {
        const char *n = r->n_segs > 0 ? r->segs[0] : "";
        if (!va_user_name_valid(n)) {
            free(st);
            va_send_error(r, 400, "bad_request", "name: 1..64 of a-z, 0-9, '.', '_' and '-'");
            return;
        }
        snprintf(st->name, sizeof(st->name), "%s", n);
    }
    if (act == U_ADD || act == U_PASSWORD) {
        va_iovec b = va_body(r);
        st->body = b.len ? json_loadb(b.base, b.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(st->body)) {
            json_decref(st->body);
            free(st);
            va_send_error(r, 400, "bad_request", "body: a JSON object");
            return;
        }
    }
    r->state = st;
    if (act == U_ADD || act == U_PASSWORD) {
        /* password hashing: the KDF pool, never libuv's (decision 0013) */
        if (va_req_run_on(r, r->srv->kdf_pool, users_work, users_done) != 0) {
            r->state = NULL;
            json_decref(st->body);
            free(st);
            va_send_error(r, 503, "busy", "password hashing is busy; retry");
        }
        return;
    }
    va_req_run(r, users_work, users_done);
}

void va_handle_users(va_req *r)
{
    users_start(r, U_LIST);
}

void va_handle_user_create(va_req *r)
{
    users_start(r, U_ADD);
}

void va_handle_user_disable(va_req *r)
{
    users_start(r, U_DISABLE);
}

void va_handle_user_enable(va_req *r)
{
    users_start(r, U_ENABLE);
}

void va_handle_user_password(va_req *r)
{
    users_start(r, U_PASSWORD);
}

/* ---- configuration (read-only, no secrets) ---- */

static void cfg_work(va_req *r, redisContext *c)
{
    (void)c;
    (void)r;
}

static json_t *hospitals_doc(const hr_config *cfg)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_hospitals; i++) {
        const hr_hospital *h = &cfg->hospitals[i];
        json_t *aes = json_array();
        for (size_t k = 0; aes && k < h->n_ae; k++)
            json_array_append_new(aes, va__jstr(h->ae_titles[k]));
        json_t *centers = json_array();
        for (size_t k = 0; centers && k < cfg->n_centers; k++)
            if (strcmp(cfg->centers[k].hospital, h->id) == 0)
                json_array_append_new(centers, va__jstr(cfg->centers[k].id));
        json_t *o =
            json_pack("{s:o, s:o, s:s, s:o, s:o}", "id", va__jstr(h->id), "name", va__jstr(h->name),
                      "level", h->level == HR_LEVEL_COUNTY ? "county" : "township", "ae_titles",
                      aes ? aes : json_array(), "centers", centers ? centers : json_array());
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            return NULL;
        }
    }
    return list ? json_pack("{s:o}", "hospitals", list) : NULL;
}

static json_t *centers_doc(const hr_config *cfg)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_centers; i++) {
        const hr_center *ce = &cfg->centers[i];
        json_t *tgt = json_object();
        for (int p = 0; tgt && p < HR_PRIORITIES; p++)
            json_object_set_new(tgt, hr_priority_name((enum hr_priority)p),
                                json_integer(wl_turnaround_ms(cfg, ce->kind, (enum hr_priority)p)));
        json_t *hours = ce->open_min < 0 ? json_null()
                                         : json_pack("{s:i, s:i}", "open_min", ce->open_min,
                                                     "close_min", ce->close_min);
        json_t *o =
            json_pack("{s:o, s:o, s:s, s:o, s:b, s:o, s:o}", "id", va__jstr(ce->id), "name",
                      va__jstr(ce->name), "kind", hr_center_kind_name(ce->kind), "hospital",
                      va__jstr(ce->hospital), "audit_signoff", ce->audit_signoff, "hours",
                      hours ? hours : json_null(), "turnaround_ms", tgt ? tgt : json_object());
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            return NULL;
        }
    }
    return list ? json_pack("{s:o}", "centers", list) : NULL;
}

static void cfg_done(va_req *r, int centers)
{
    if (va_req_gone(r))
        return;
    const char *action = centers ? "config-centers" : "config-hospitals";
    if (!role_in(&r->who, STO_ROLE_ADMIN, STO_ROLE_OFFICE, STO_ROLE_AUDITOR)) {
        va_audit(r, action, NULL, NULL, NULL, "denied");
        va_send_error(r, 403, "forbidden", "only the office, auditors and admins read this");
        return;
    }
    json_t *doc = centers ? centers_doc(r->srv->cfg) : hospitals_doc(r->srv->cfg);
    va_audit(r, action, NULL, NULL, NULL, doc ? "success" : "failure");
    if (doc)
        va_send_json(r, 200, doc);
    else
        va_send_error(r, 500, "internal", "out of memory");
}

static void hospitals_done(va_req *r)
{
    cfg_done(r, 0);
}

static void centers_done(va_req *r)
{
    cfg_done(r, 1);
}

void va_handle_config_hospitals(va_req *r)
{
    va_req_run(r, cfg_work, hospitals_done);
}

void va_handle_config_centers(va_req *r)
{
    va_req_run(r, cfg_work, centers_done);
}
