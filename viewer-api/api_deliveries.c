/* GET /api/v1/deliveries?report=<id>: where a report's signed versions went
 * (decision 0026) - each delivery with its channel, state, attempts and
 * attempt log (reports/delivery.h). Who may look: admins, the readers and
 * auditors of the report's center, the technicians of the exam's source
 * hospital; to anyone else the report does not exist (404). Audited. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_time.h"
#include "../reports/delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dlv_state {
    char report[RPT_ID_MAX];
    char study[HR_UID_MAX];
    int allowed;
    json_t *items;
    int rc;
} dlv_state;

static int may_see(const va_principal *w, const rpt_info *ri)
{
    switch (w->role) {
    case STO_ROLE_ADMIN:
        return 1;
    case STO_ROLE_READER:
    case STO_ROLE_AUDITOR:
        return w->center[0] && strcmp(w->center, ri->center) == 0;
    case STO_ROLE_TECHNICIAN:
        return strcmp(w->hospital, ri->hospital) == 0;
    default:
        return 0;
    }
}

static int on_delivery(void *arg, const rpt_delivery *d)
{
    dlv_state *st = arg;
    json_t *log = json_array();
    json_t *o = json_object();
    if (!log || !o) {
        json_decref(log);
        json_decref(o);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->n_log; i++) {
        const rpt_dlv_event *e = &d->log[i];
        json_t *x = json_object();
        if (!x || json_array_append_new(log, x)) {
            json_decref(log);
            json_decref(o);
            return -ENOMEM;
        }
        json_object_set_new(x, "time_ms", json_integer(e->time_ms));
        json_object_set_new(x, "outcome", va__jstr(e->outcome));
        json_object_set_new(x, "attempt", json_integer(e->attempt));
        json_object_set_new(x, "detail", va__jstr(e->detail));
    }
    json_object_set_new(o, "version", json_integer(d->version));
    json_object_set_new(o, "channel", va__jstr(rpt_dlv_channel_name(d->channel)));
    json_object_set_new(o, "hospital", va__jstr(d->hospital));
    json_object_set_new(o, "state", va__jstr(d->delivered ? "delivered" : "pending"));
    json_object_set_new(o, "attempts", json_integer(d->attempts));
    json_object_set_new(o, "in_progress", json_boolean(d->leased));
    json_object_set_new(o, "created_ms", json_integer(d->created_ms));
    json_object_set_new(o, "next_ms", d->delivered ? json_null() : json_integer(d->next_ms));
    json_object_set_new(o, "delivered_ms",
                        d->delivered ? json_integer(d->delivered_ms) : json_null());
    json_object_set_new(o, "last_attempt_ms", d->last_ms ? json_integer(d->last_ms) : json_null());
    json_object_set_new(o, "last_error", va__jstr(d->last_error));
    json_object_set_new(o, "log", log);
    return json_array_append_new(st->items, o) ? -ENOMEM : 0;
}

static void dlv_work(va_req *r, redisContext *c)
{
    dlv_state *st = r->state;
    rpt_info ri;
    memset(&ri, 0, sizeof(ri));
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = rpt_get(c, st->report, &ri);
    if (st->rc)
        goto out;
    snprintf(st->study, sizeof(st->study), "%s", ri.study);
    if (!may_see(&r->who, &ri)) {
        st->rc = HR_ENOTFOUND; /* as if absent */
        goto out;
    }
    st->allowed = 1;
    st->items = json_array();
    st->rc = st->items ? rpt_delivery_list(c, st->report, hr_wall_ms(), on_delivery, st) : -ENOMEM;
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
    rpt_info_free(&ri);
}

static void dlv_done(va_req *r)
{
    dlv_state *st = r->state;
    r->state = NULL;
    char detail[RPT_ID_MAX + 16];
    snprintf(detail, sizeof(detail), "report=%s", st->report);
    const char *study = st->study[0] ? st->study : NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc == HR_ENOTFOUND) {
        va_audit(r, "deliveries", NULL, study, detail, st->allowed ? "not-found" : "denied");
        va_send_error(r, 404, "not_found", "no report \"%s\"", st->report);
    } else if (st->rc) {
        va_audit(r, "deliveries", NULL, study, detail, "failure");
        va_send_rc(r, st->rc, "deliveries");
    } else {
        va_audit(r, "deliveries", NULL, study, detail, "success");
        json_t *doc = json_pack("{s:s, s:O}", "report", st->report, "deliveries", st->items);
        if (doc)
            va_send_json(r, 200, doc);
        else
            va_send_error(r, 500, "internal", "out of memory");
    }
    json_decref(st->items);
    free(st);
}

/* "r<n>-<UID>": r, 1-6 digits, '-', digits and dots. */
static int report_id_ok(const char *s)
{
    size_t n = strlen(s), i = 1;
    if (n < 4 || n >= RPT_ID_MAX || s[0] != 'r' || s[1] < '1' || s[1] > '9')
        return 0;
    while (i < n && i < 8 && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i >= n || s[i] != '-' || i > 7)
        return 0;
    for (i++; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return 0;
    return s[n - 1] != '-';
}

void va_handle_deliveries(va_req *r)
{
    const char *id = va_param_get(r, "report");
    if (!id || !report_id_ok(id)) {
        va_send_error(r, 400, "bad_request", "report: a report id (r<n>-<Study Instance UID>)");
        return;
    }
    dlv_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->report, sizeof(st->report), "%s", id);
    r->state = st;
    va_req_run(r, dlv_work, dlv_done);
}
