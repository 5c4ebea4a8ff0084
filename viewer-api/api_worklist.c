/* Worklists of the county centers and the township's view of its exams
 * (issue 4), over worklist/worklist.h:
 *   GET  /api/v1/worklists/{center}                      list + counts
 *   POST /api/v1/worklists/{center}/items/{study}/claim  | release | renew | reassign
 *   GET  /api/v1/exams?hospital=me                       a hospital's exams
 *   POST /api/v1/exams/{study}/complete                  explicit completion
 * Query and body are checked on the loop; the role and center checks and
 * the Redis work run in the pool step (the principal is known there); the
 * answer and the audit record are made on the loop. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/uids.h"
#include "../reports/report.h"
#include "../storage/index.h"
#include "../worklist/worklist.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WL_PAGE_DEFAULT 100
#define WL_PAGE_MAX     500

enum wl_action { ACT_CLAIM, ACT_RELEASE, ACT_RENEW, ACT_REASSIGN, ACT_COMPLETE };

static const char *const k_action_names[] = {"worklist-claim", "worklist-release", "worklist-renew",
                                             "worklist-reassign", "exam-complete"};

static int is_center_member(const va_principal *w, const char *center)
{
    return (w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) &&
           strcmp(w->center, center) == 0;
}

/* May see the worklist of center: its readers and auditors, and admins. */
static int may_view(const va_principal *w, const char *center, va_denial *d)
{
    if (w->role == STO_ROLE_ADMIN || is_center_member(w, center))
        return 1;
    if (w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR)
        va__deny(d, 403, "forbidden", "%s is a %s of center \"%s\", not of \"%s\"", w->user,
                 sto_role_name(w->role), w->center, center);
    else
        va__deny(d, 403, "forbidden", "role %s has no worklist", sto_role_name(w->role));
    return 0;
}

static json_t *item_json(const wl_item *it)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "study", va__jstr(it->study));
    json_object_set_new(o, "center", va__jstr(it->center));
    json_object_set_new(o, "state", va__jstr(wl_state_name(it->state)));
    json_object_set_new(o, "priority", va__jstr(wl_priority_name(it->priority)));
    json_object_set_new(o, "hospital", va__jstr(it->hospital));
    json_object_set_new(o, "modality", va__jstr(it->modality));
    json_object_set_new(o, "patient", va__jstr(it->patient));
    json_object_set_new(o, "patient_name", va__jstr(it->patient_name));
    json_object_set_new(o, "accession", va__jstr(it->accession));
    json_object_set_new(o, "study_date", va__jstr(it->study_date));
    json_object_set_new(o, "procedure", va__jstr(it->procedure));
    json_object_set_new(o, "rule", json_integer(it->rule));
    json_object_set_new(o, "instances", json_integer(it->instances));
    json_object_set_new(o, "arrived_ms", json_integer(it->arrived_ms));
    json_object_set_new(o, "last_ms", json_integer(it->last_ms));
    json_object_set_new(o, "ready_ms", json_integer(it->ready_ms));
    json_object_set_new(o, "due_ms", json_integer(it->due_ms));
    json_object_set_new(o, "overdue", json_boolean(it->overdue));
    json_object_set_new(o, "changed_after_ready", json_boolean(it->changed_after_ready));
    json_object_set_new(o, "changed_since_read", json_boolean(it->changed_since_read));
    json_object_set_new(o, "patient_conflict", json_boolean(it->patient_conflict));
    json_object_set_new(o, "claimed_by", va__jstr(it->claimed_by));
    json_object_set_new(o, "lease_until_ms", json_integer(it->lease_until_ms));
    json_object_set_new(o, "reported_by", va__jstr(it->reported_by));
    return o;
}

/* ---- query parameters ---- */

/* limit, offset and cursor (cap WL_CURSOR_MAX; "" when absent): 0 or
 * -EINVAL with the reason in why. offset is deprecated (decision 0015): it
 * still works, on the index, but a client pages with `next` / `cursor`. */
static int parse_page(const va_req *r, long *limit, long *offset, char *cursor, char *why,
                      size_t cap)
{
    *limit = WL_PAGE_DEFAULT;
    *offset = 0;
    cursor[0] = '\0';
    const char *v = va_param_get(r, "limit");
    char *end;
    if (v) {
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > WL_PAGE_MAX) {
            snprintf(why, cap, "limit must be 1..%d", WL_PAGE_MAX);
            return -EINVAL;
        }
        *limit = n;
    }
    v = va_param_get(r, "offset");
    if (v) {
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 0 || n > 100000000) {
            snprintf(why, cap, "offset must be a non-negative integer");
            return -EINVAL;
        }
        *offset = n;
    }
    v = va_param_get(r, "cursor");
    if (v) {
        if (!*v || strlen(v) >= WL_CURSOR_MAX) {
            snprintf(why, cap, "cursor: the \"next\" of a previous page");
            return -EINVAL;
        }
        if (*offset) {
            snprintf(why, cap, "cursor and offset: one or the other");
            return -EINVAL;
        }
        snprintf(cursor, WL_CURSOR_MAX, "%s", v);
    }
    return 0;
}

/* The next page's cursor, null after the last page. */
static json_t *next_json(const char *next)
{
    return next[0] ? va__jstr(next) : json_null();
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A date (YYYYMMDD or YYYY-MM-DD, local time; end: the last ms of that day)
 * or an ISO 8601 date-time (YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM],
 * local time without a zone) into ms since the epoch. 0 or -EINVAL. */
static int parse_when(const char *s, int end, long long *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, n = (int)strlen(s);
    const char *p;
    if (n == 8) {
        if (digits(s, 4, &y) || digits(s + 4, 2, &mo) || digits(s + 6, 2, &d))
            return -EINVAL;
        p = s + 8;
    } else if (n >= 10 && s[4] == '-' && s[7] == '-') {
        if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d))
            return -EINVAL;
        p = s + 10;
    } else {
        return -EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1900 || y > 9999)
        return -EINVAL;
    int date_only = *p == '\0';
    int zone = 0, utc = 0, off_min = 0;
    if (!date_only) {
        if ((*p != 'T' && *p != ' ') || digits(p + 1, 2, &h) || p[3] != ':' ||
            digits(p + 4, 2, &mi))
            return -EINVAL;
        p += 6;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec))
                return -EINVAL;
            p += 3;
            if (*p == '.') {
                int k = 0;
                p++;
                while (isdigit((unsigned char)*p)) {
                    if (k < 3)
                        frac = frac * 10 + (*p - '0');
                    k++;
                    p++;
                }
                if (k == 0)
                    return -EINVAL;
                for (; k < 3; k++)
                    frac *= 10;
            }
        }
        if (*p == 'Z') {
            zone = utc = 1;
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
                return -EINVAL;
            off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
            zone = 1;
            p += 6;
        }
        if (*p || h > 23 || mi > 59 || sec > 60)
            return -EINVAL;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    time_t t;
    if (zone) {
        t = timegm(&tm);
        if (!utc)
            t -= (time_t)off_min * 60;
    } else {
        t = mktime(&tm);
    }
    if (t == (time_t)-1)
        return -EINVAL;
    *ms = (long long)t * 1000 + frac;
    if (date_only && end) {
        /* the last ms of that day (local): the next day's midnight - 1 */
        tm.tm_mday += 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        time_t next = mktime(&tm);
        if (next == (time_t)-1)
            return -EINVAL;
        *ms = (long long)next * 1000 - 1;
    }
    return 0;
}

static int is_true(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* ---- GET /api/v1/worklists/{center} ---- */

typedef struct list_state {
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX];
    char modality[17];
    char cursor[WL_CURSOR_MAX];
    int want_mine;
    wl_filter f;
    /* results */
    va_denial d;
    json_t *items;
    wl_counts counts;
    int rc;
} list_state;

static int list_cb(void *arg, const wl_item *it)
{
    list_state *st = arg;
    json_t *o = item_json(it);
    if (!o || json_array_append_new(st->items, o))
        return -ENOMEM;
    return 0;
}

static void list_work(va_req *r, redisContext *c)
{
    list_state *st = r->state;
    if (!may_view(&r->who, st->center, &st->d))
        return;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->f.center = st->center;
    st->f.claimed_by = st->want_mine ? r->who.user : NULL;
    st->items = json_array();
    if (!st->items) {
        st->rc = -ENOMEM;
        return;
    }
    st->rc = wl_list(c, r->srv->cfg, &st->f, list_cb, st, &st->counts);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static json_t *counts_json(const wl_counts *k)
{
    json_t *by = json_object();
    for (int i = 0; i < WL_STATE_COUNT; i++)
        json_object_set_new(by, wl_state_name((enum wl_state)i), json_integer(k->by_state[i]));
    /* matched: null when a filter checked per item ran over more than the
     * scan budget (not counted, decision 0015) */
    return json_pack("{s:o, s:I, s:o}", "by_state", by, "overdue", (json_int_t)k->overdue,
                     "matched", k->matched < 0 ? json_null() : json_integer(k->matched));
}

/* The common answers of a listing: nothing when the client left, the
 * refusal, the failure, or (returns 1) the caller sends the document.
 * Each outcome is audited as action with detail. */
static int list_answer(va_req *r, const va_denial *d, int rc, const char *action,
                       const char *detail, const char *what)
{
    if (va_req_gone(r))
        return 0;
    if (d->status) {
        va_audit(r, action, NULL, NULL, detail, "denied");
        va_send_error(r, d->status, d->code, "%s", d->detail);
        return 0;
    }
    if (rc) {
        va_audit(r, action, NULL, NULL, detail, "failure");
        va_send_rc(r, rc, what);
        return 0;
    }
    va_audit(r, action, NULL, NULL, detail, "success");
    return 1;
}

/* Sends doc (NULL: out of memory). */
static void send_doc(va_req *r, json_t *doc)
{
    if (doc)
        va_send_json(r, 200, doc);
    else
        va_send_error(r, 500, "internal", "out of memory");
}

static void list_done(va_req *r)
{
    list_state *st = r->state;
    r->state = NULL;
    char detail[128];
    snprintf(detail, sizeof(detail), "center=%s", st->center);
    const char *what = st->cursor[0] && st->rc == -EINVAL ? "cursor" : "center";
    if (list_answer(r, &st->d, st->rc, "worklist", detail, what))
        send_doc(r,
                 json_pack("{s:O, s:o, s:o, s:I, s:I}", "items", st->items, "counts",
                           counts_json(&st->counts), "next", next_json(st->counts.next), "offset",
                           (json_int_t)st->f.offset, "limit", (json_int_t)st->f.limit));
    json_decref(st->items);
    free(st);
}

void va_handle_worklist(va_req *r)
{
    char why[160];
    const char *center = r->segs[0];
    if (!hr_config_center(r->srv->cfg, center)) {
        va_send_error(r, 404, "not_found", "no center \"%.64s\"", center);
        return;
    }
    list_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->center, sizeof(st->center), "%s", center);
    wl_filter *f = &st->f;
    f->state = -1;
    f->priority = -1;
    const char *v;
    why[0] = '\0';
    if ((v = va_param_get(r, "state")) && (f->state = wl_state_parse(v)) < 0)
        snprintf(why, sizeof(why), "state: unknown \"%.32s\"", v);
    else if ((v = va_param_get(r, "priority")) && (f->priority = wl_priority_parse(v)) < 0)
        snprintf(why, sizeof(why), "priority: unknown \"%.32s\"", v);
    else if ((v = va_param_get(r, "hospital")) && (!*v || strlen(v) >= sizeof(st->hospital)))
        snprintf(why, sizeof(why), "hospital: invalid");
    else if ((v = va_param_get(r, "modality")) && (!*v || strlen(v) >= sizeof(st->modality)))
        snprintf(why, sizeof(why), "modality: invalid");
    else if ((v = va_param_get(r, "from")) && parse_when(v, 0, &f->from_ms))
        snprintf(why, sizeof(why), "from: expected YYYYMMDD or an ISO 8601 date or date-time");
    else if ((v = va_param_get(r, "to")) && parse_when(v, 1, &f->to_ms))
        snprintf(why, sizeof(why), "to: expected YYYYMMDD or an ISO 8601 date or date-time");
    else if ((v = va_param_get(r, "order")) && strcmp(v, "priority") && strcmp(v, "arrival"))
        snprintf(why, sizeof(why), "order: priority or arrival");
    else if ((v = va_param_get(r, "overdue")) && strcmp(v, "true") && strcmp(v, "false"))
        snprintf(why, sizeof(why), "overdue: true or false");
    else if ((v = va_param_get(r, "mine")) && strcmp(v, "true") && strcmp(v, "false"))
        snprintf(why, sizeof(why), "mine: true or false");
    else if (parse_page(r, &f->limit, &f->offset, st->cursor, why, sizeof(why)) == 0 &&
             f->from_ms && f->to_ms && f->from_ms > f->to_ms)
        snprintf(why, sizeof(why), "from is after to");
    if (why[0]) {
        free(st);
        va_send_error(r, 400, "bad_request", "%s", why);
        return;
    }
    if ((v = va_param_get(r, "hospital"))) {
        snprintf(st->hospital, sizeof(st->hospital), "%s", v);
        f->hospital = st->hospital;
    }
    if ((v = va_param_get(r, "modality"))) {
        snprintf(st->modality, sizeof(st->modality), "%s", v);
        f->modality = st->modality;
    }
    f->cursor = st->cursor;
    f->overdue_only = is_true(va_param_get(r, "overdue"));
    st->want_mine = is_true(va_param_get(r, "mine"));
    v = va_param_get(r, "order");
    f->order_arrival = v && strcmp(v, "arrival") == 0;
    r->state = st;
    va_req_run(r, list_work, list_done);
}

/* ---- item actions: claim, release, renew, reassign, complete ---- */

typedef struct act_state {
    enum wl_action act;
    char center[HR_ID_MAX]; /* "" for complete */
    char study[65];
    char to[VA_USER_MAX + 1]; /* reassign */
    va_denial d;
    int rc;
    wl_item it;
    int have_item;
} act_state;

/* The user a lead reassigns to must be an enabled reader or auditor of the
 * center (keys of auth.h). 0, HR_ENOTFOUND (not such a user), HR_EREDIS. */
static int check_assignee(redisContext *c, const char *user, const char *center)
{
    redisReply *rep = redisCommand(c, "HMGET hr:user:%s role center disabled", user);
    int rc = HR_EREDIS;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        goto out;
    rc = HR_ENOTFOUND;
    redisReply **e = rep->element;
    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING)
        goto out;
    int role = sto_role_parse(e[0]->str);
    if ((role != STO_ROLE_READER && role != STO_ROLE_AUDITOR) || strcmp(e[1]->str, center) != 0)
        goto out;
    if (e[2]->type == REDIS_REPLY_STRING && e[2]->str[0] && strcmp(e[2]->str, "0") != 0)
        goto out;
    rc = 0;
out:
    freeReplyObject(rep);
    return rc;
}

/* Role and center rules; 1 when allowed. */
static int may_act(const va_principal *w, const act_state *st, va_denial *d)
{
    switch (st->act) {
    case ACT_CLAIM:
    case ACT_RELEASE:
    case ACT_RENEW:
        if (w->role == STO_ROLE_ADMIN || is_center_member(w, st->center))
            return 1;
        if (w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR)
            va__deny(d, 403, "forbidden", "%s reads for center \"%s\", not \"%s\"", w->user,
                     w->center, st->center);
        else
            va__deny(d, 403, "forbidden", "role %s does not read exams", sto_role_name(w->role));
        return 0;
    case ACT_REASSIGN:
        if (w->role == STO_ROLE_ADMIN ||
            (w->role == STO_ROLE_AUDITOR && strcmp(w->center, st->center) == 0))
            return 1;
        va__deny(d, 403, "forbidden",
                 "only an auditor (lead) of center \"%s\" or an admin reassigns", st->center);
        return 0;
    case ACT_COMPLETE:
        if (w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_TECHNICIAN)
            return 1;
        va__deny(d, 403, "forbidden",
                 "only the sending hospital's technicians or an admin complete an exam");
        return 0;
    }
    return 0;
}

static void act_work(va_req *r, redisContext *c)
{
    act_state *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    const char *me = r->who.user;
    long long now = hr_wall_ms();
    if (!may_act(&r->who, st, &st->d))
        return;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = wl_get(c, st->study, &st->it);
    if (st->rc)
        goto out;
    /* an item of another center, or (technicians) of another hospital, is
     * answered like an absent one (decision 0005) */
    if ((st->center[0] && strcmp(st->it.center, st->center) != 0) ||
        (st->act == ACT_COMPLETE && r->who.role == STO_ROLE_TECHNICIAN &&
         strcmp(st->it.hospital, r->who.hospital) != 0)) {
        st->rc = HR_ENOTFOUND;
        goto out;
    }
    st->have_item = 1;
    switch (st->act) {
    case ACT_CLAIM:
        st->rc = wl_claim(c, cfg, st->study, me, now);
        break;
    case ACT_RELEASE:
        st->rc = wl_release(c, st->study, me, now);
        break;
    case ACT_RENEW:
        st->rc = wl_renew(c, cfg, st->study, me, now);
        break;
    case ACT_REASSIGN:
        st->rc = check_assignee(c, st->to, st->center);
        if (st->rc == HR_ENOTFOUND) {
            va__deny(&st->d, 400, "bad_request",
                     "\"%s\" is not an enabled reader or auditor of center \"%s\"", st->to,
                     st->center);
            st->rc = 0;
            return;
        }
        if (st->rc == 0)
            st->rc = wl_reassign(c, cfg, st->study, st->to, me, now);
        break;
    case ACT_COMPLETE:
        st->rc = wl_complete(c, st->study, me, now);
        break;
    }
    if (st->rc == 0 || st->rc == -EBUSY || st->rc == HR_ESTATE) {
        /* the item as it is now (its holder, for a conflict) */
        int rc = wl_get(c, st->study, &st->it);
        if (rc && st->rc == 0)
            st->rc = rc;
    }
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void act_done(va_req *r)
{
    act_state *st = r->state;
    r->state = NULL;
    const char *action = k_action_names[st->act];
    char detail[200];
    if (st->act == ACT_REASSIGN)
        snprintf(detail, sizeof(detail), "center=%s to=%s", st->center, st->to);
    else if (st->center[0])
        snprintf(detail, sizeof(detail), "center=%s", st->center);
    else
        detail[0] = '\0';
    const char *patient = st->have_item ? st->it.patient : NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->d.status) {
        va_audit(r, action, patient, st->study, detail[0] ? detail : st->d.detail, "denied");
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else if (st->rc == -EBUSY) {
        va_audit(r, action, patient, st->study, detail, "failure");
        va_send_error(r, 409, "claimed", "the item is claimed by %s",
                      st->it.claimed_by[0] ? st->it.claimed_by : "another reader");
    } else if (st->rc == HR_ESTATE) {
        va_audit(r, action, patient, st->study, detail, "failure");
        va_send_error(r, 409, "invalid_state", "not possible while the item is %s",
                      wl_state_name(st->it.state));
    } else if (st->rc == -EPERM) {
        va_audit(r, action, patient, st->study, detail, "denied");
        va_send_error(r, 403, "forbidden", "not allowed on this item");
    } else if (st->rc) {
        va_audit(r, action, patient, st->study, detail, "failure");
        va_send_rc(r, st->rc, st->center[0] ? "worklist item" : "exam");
    } else {
        va_audit(r, action, patient, st->study, detail, "success");
        json_t *doc = item_json(&st->it);
        if (doc)
            va_send_json(r, 200, doc);
        else
            va_send_error(r, 500, "internal", "out of memory");
    }
    free(st);
}

static void act_start(va_req *r, enum wl_action act)
{
    const char *center = act == ACT_COMPLETE ? "" : r->segs[0];
    const char *study = act == ACT_COMPLETE ? r->segs[0] : r->segs[1];
    if (center[0] && !hr_config_center(r->srv->cfg, center)) {
        va_send_error(r, 404, "not_found", "no center \"%.64s\"", center);
        return;
    }
    if (!dcm_uid_valid(study)) {
        va_send_error(r, 400, "bad_uid", "\"%.64s\" is not a valid DICOM UID", study);
        return;
    }
    act_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->act = act;
    snprintf(st->center, sizeof(st->center), "%s", center);
    snprintf(st->study, sizeof(st->study), "%s", study);
    if (act == ACT_REASSIGN) {
        va_iovec body = va_body(r);
        json_error_t je;
        const char *to = NULL;
        json_t *doc =
            body.len <= 4096 ? json_loadb(body.base ? body.base : "", body.len, 0, &je) : NULL;
        if (!doc || json_unpack(doc, "{s:s}", "to", &to) != 0 || !va_user_name_valid(to)) {
            json_decref(doc);
            free(st);
            va_send_error(r, 400, "bad_request",
                          "expected a JSON body {\"to\": \"<user name>\"} (at most 4 KiB)");
            return;
        }
        snprintf(st->to, sizeof(st->to), "%s", to);
        json_decref(doc);
    }
    r->state = st;
    va_req_run(r, act_work, act_done);
}

void va_handle_worklist_claim(va_req *r)
{
    act_start(r, ACT_CLAIM);
}

void va_handle_worklist_release(va_req *r)
{
    act_start(r, ACT_RELEASE);
}

void va_handle_worklist_renew(va_req *r)
{
    act_start(r, ACT_RENEW);
}

void va_handle_worklist_reassign(va_req *r)
{
    act_start(r, ACT_REASSIGN);
}

void va_handle_exam_complete(va_req *r)
{
    act_start(r, ACT_COMPLETE);
}

/* ---- GET /api/v1/exams?hospital=me ---- */

/* What a township sees of an exam's worklist state. */
static const char *exam_status(enum wl_state s)
{
    switch (s) {
    case WL_RECEIVING:
        return "received";
    case WL_READY:
        return "waiting";
    case WL_CLAIMED:
        return "being_read";
    default:
        return "reported";
    }
}

/* What a township sees once a report is final or later. */
static const char *report_status(enum rpt_status s)
{
    switch (s) {
    case RPT_AMENDED:
    case RPT_CORRECTED:
        return "amended";
    case RPT_ENTERED_IN_ERROR:
        return "retracted";
    default:
        return "reported";
    }
}

typedef struct exams_state {
    char hospital[HR_ID_MAX]; /* "me" until resolved in the pool step */
    long limit, offset;
    char cursor[WL_CURSOR_MAX];
    char next[WL_CURSOR_MAX];
    va_denial d;
    json_t *items;
    long total;
    int rc;
} exams_state;

static int exams_cb(void *arg, const wl_item *it)
{
    exams_state *st = arg;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    json_object_set_new(o, "study", va__jstr(it->study));
    json_object_set_new(o, "status", va__jstr(exam_status(it->state)));
    json_object_set_new(o, "state", va__jstr(wl_state_name(it->state)));
    json_object_set_new(o, "center", va__jstr(it->center));
    json_object_set_new(o, "priority", va__jstr(wl_priority_name(it->priority)));
    json_object_set_new(o, "modality", va__jstr(it->modality));
    json_object_set_new(o, "patient", va__jstr(it->patient));
    json_object_set_new(o, "patient_name", va__jstr(it->patient_name));
    json_object_set_new(o, "accession", va__jstr(it->accession));
    json_object_set_new(o, "study_date", va__jstr(it->study_date));
    json_object_set_new(o, "instances", json_integer(it->instances));
    json_object_set_new(o, "arrived_ms", json_integer(it->arrived_ms));
    json_object_set_new(o, "ready_ms", json_integer(it->ready_ms));
    json_object_set_new(o, "due_ms", json_integer(it->due_ms));
    json_object_set_new(o, "overdue", json_boolean(it->overdue));
    /* the township page highlights these (decision 0033) */
    json_object_set_new(o, "patient_conflict", json_boolean(it->patient_conflict));
    json_object_set_new(o, "changed_after_ready", json_boolean(it->changed_after_ready));
    if (json_array_append_new(st->items, o))
        return -ENOMEM;
    return 0;
}

/* Each exam's latest report: "report": {"id", "status"} or null (one
 * pipelined round trip for the page). */
static int add_reports(redisContext *c, json_t *items)
{
    size_t n = json_array_size(items);
    const char **studies = calloc(n ? n : 1, sizeof(*studies));
    char(*ids)[RPT_ID_MAX] = calloc(n ? n : 1, sizeof(*ids));
    enum rpt_status *sts = calloc(n ? n : 1, sizeof(*sts));
    int rc = -ENOMEM;
    if (!studies || !ids || !sts)
        goto out;
    for (size_t i = 0; i < n; i++)
        studies[i] = json_string_value(json_object_get(json_array_get(items, i), "study"));
    rc = rpt_latest(c, studies, n, ids, sts);
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *o = json_array_get(items, i);
        json_object_set_new(
            o, "report",
            ids[i][0] ? json_pack("{s:s, s:s}", "id", ids[i], "status", rpt_status_name(sts[i]))
                      : json_null());
        if (ids[i][0] && sts[i] != RPT_DRAFT && sts[i] != RPT_PRELIMINARY)
            json_object_set_new(o, "status", va__jstr(report_status(sts[i])));
    }
out:
    free(studies);
    free(ids);
    free(sts);
    return rc;
}

static void exams_work(va_req *r, redisContext *c)
{
    exams_state *st = r->state;
    if (strcmp(st->hospital, "me") == 0)
        snprintf(st->hospital, sizeof(st->hospital), "%s", r->who.hospital);
    if (!hr_config_hospital(r->srv->cfg, st->hospital)) {
        va__deny(&st->d, 404, "not_found", "no hospital \"%s\"", st->hospital);
        return;
    }
    if (!sto_scope_allows(&r->scope, st->hospital)) {
        va__deny(&st->d, 403, "forbidden", "%s may not see the exams of %s", r->who.user,
                 st->hospital);
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->items = json_array();
    if (!st->items) {
        st->rc = -ENOMEM;
        return;
    }
    st->rc = wl_list_hospital(c, st->hospital, st->cursor, st->offset, st->limit, exams_cb, st,
                              &st->total, st->next, sizeof(st->next));
    if (st->rc == 0)
        st->rc = add_reports(c, st->items);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void exams_done(va_req *r)
{
    exams_state *st = r->state;
    r->state = NULL;
    char detail[128];
    snprintf(detail, sizeof(detail), "hospital=%s", st->hospital);
    const char *what = st->cursor[0] && st->rc == -EINVAL ? "cursor" : "exams";
    if (list_answer(r, &st->d, st->rc, "exams", detail, what))
        send_doc(r,
                 json_pack("{s:s, s:O, s:I, s:o, s:I, s:I}", "hospital", st->hospital, "items",
                           st->items, "total", (json_int_t)st->total, "next", next_json(st->next),
                           "offset", (json_int_t)st->offset, "limit", (json_int_t)st->limit));
    json_decref(st->items);
    free(st);
}

void va_handle_exams(va_req *r)
{
    char why[160];
    const char *h = va_param_get(r, "hospital");
    if (!h)
        h = "me";
    if (!*h || strlen(h) >= HR_ID_MAX) {
        va_send_error(r, 400, "bad_request", "hospital: \"me\" or a hospital id");
        return;
    }
    exams_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    if (parse_page(r, &st->limit, &st->offset, st->cursor, why, sizeof(why))) {
        free(st);
        va_send_error(r, 400, "bad_request", "%s", why);
        return;
    }
    snprintf(st->hospital, sizeof(st->hospital), "%s", h);
    r->state = st;
    va_req_run(r, exams_work, exams_done);
}
