#include "wl_stats.h"
#include "worklist.h"
#include "../common/hr_err.h"
#include "../common/hr_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 256

/* Called per counter of a day's hash: day index in the range, field, value. */
typedef int (*field_fn)(void *arg, int di, char *field, long long v);

/* The days from..to into days[] (*n of them); -EINVAL when the range is not
 * valid or longer than WL_STATS_DAYS_MAX. */
static int range_days(int from, int to, int *days, int *n)
{
    *n = 0;
    if (!from || !to || from > to)
        return -EINVAL;
    for (int d = from; d && d <= to; d = hr_day_add(d, 1)) {
        if (*n == WL_STATS_DAYS_MAX)
            return -EINVAL;
        days[(*n)++] = d;
    }
    return 0;
}

/* One pipelined HGETALL per day; fn on every field. */
static int read_days(redisContext *c, const int *days, int n, field_fn fn, void *arg)
{
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (redisAppendCommand(c, "HGETALL hr:stat:%d", days[i]) != REDIS_OK)
            return HR_EREDIS;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS; /* the connection is unusable: nothing left to drain */
        if (r->type != REDIS_REPLY_ARRAY && !rc)
            rc = HR_EREDIS;
        for (size_t k = 0; !rc && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2) {
            char field[FIELD_MAX];
            if (r->element[k]->type != REDIS_REPLY_STRING || r->element[k]->len >= sizeof(field))
                continue;
            memcpy(field, r->element[k]->str, r->element[k]->len + 1);
            rc = fn(arg, i, field, strtoll(r->element[k + 1]->str, NULL, 10));
        }
        freeReplyObject(r);
    }
    return rc;
}

/* obj[key] += v (a new integer member when absent). */
static int add_to(json_t *obj, const char *key, long long v)
{
    json_t *x = json_object_get(obj, key);
    if (x)
        return json_integer_set(x, json_integer_value(x) + v);
    return json_object_set_new(obj, key, json_integer(v));
}

/* ---- volumes ---- */

static const char *const k_vol_maps[] = {"received_by_hospital", "received_by_center",
                                         "finalized_by_center", "remote_by_center",
                                         "remote_by_hospital"};
#define N_VOL_MAPS 5

static json_t *vol_bucket(void)
{
    json_t *b = json_pack("{s:I, s:I}", "received", (json_int_t)0, "remote", (json_int_t)0);
    for (int i = 0; b && i < N_VOL_MAPS; i++)
        if (json_object_set_new(b, k_vol_maps[i], json_object())) {
            json_decref(b);
            return NULL;
        }
    return b;
}

typedef struct vol_ctx {
    const hr_config *cfg;
    json_t *days; /* array of buckets, one per day */
    json_t *total;
} vol_ctx;

static int vol_add(json_t *b, const hr_config *cfg, char *field, long long v)
{
    char *p1 = strchr(field, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
    if (!p1)
        return 0;
    *p1 = '\0';
    if (strcmp(field, "rx") == 0 && p2) {
        *p2 = '\0';
        const char *g = p1 + 1, *key = p2 + 1;
        if (strcmp(g, "t") == 0)
            return add_to(b, "received", v);
        if (strcmp(g, "h") == 0)
            return add_to(json_object_get(b, "received_by_hospital"), key, v);
        if (strcmp(g, "c") == 0)
            return add_to(json_object_get(b, "received_by_center"), key, v);
        return 0;
    }
    if (strcmp(field, "fh") == 0 && p2) { /* fh|<center>|<source hospital> */
        *p2 = '\0';
        const char *center = p1 + 1, *hosp = p2 + 1;
        int rc = add_to(json_object_get(b, "finalized_by_center"), center, v);
        const hr_center *ce = hr_config_center(cfg, center);
        if (!rc && ce && hosp[0] && strcmp(ce->hospital, hosp) != 0) {
            rc = add_to(b, "remote", v) ||
                 add_to(json_object_get(b, "remote_by_center"), center, v) ||
                 add_to(json_object_get(b, "remote_by_hospital"), hosp, v);
        }
        return rc;
    }
    return 0;
}

static int vol_field(void *arg, int di, char *field, long long v)
{
    vol_ctx *x = arg;
    char copy[FIELD_MAX];
    snprintf(copy, sizeof(copy), "%s", field);
    int rc = vol_add(json_array_get(x->days, (size_t)di), x->cfg, field, v);
    return rc || vol_add(x->total, x->cfg, copy, v) ? -ENOMEM : 0;
}

static int range_doc(int from, int to, json_t **doc)
{
    char f[11], t[11];
    hr_day_iso(from, f);
    hr_day_iso(to, t);
    *doc = json_pack("{s:s, s:s}", "from", f, "to", t);
    return *doc ? 0 : -ENOMEM;
}

int wl_stats_volumes(redisContext *c, const hr_config *cfg, int from, int to, json_t **out)
{
    int days[WL_STATS_DAYS_MAX], n = 0;
    vol_ctx x = {cfg, NULL, NULL};
    json_t *doc = NULL;
    *out = NULL;
    int rc = range_days(from, to, days, &n);
    if (rc)
        return rc;
    rc = -ENOMEM;
    x.days = json_array();
    x.total = vol_bucket();
    if (!x.days || !x.total)
        goto out;
    for (int i = 0; i < n; i++) {
        char iso[11];
        json_t *b = vol_bucket();
        hr_day_iso(days[i], iso);
        if (!b || json_object_set_new(b, "day", json_string(iso)) ||
            json_array_append_new(x.days, b))
            goto out;
    }
    rc = read_days(c, days, n, vol_field, &x);
    if (rc)
        goto out;
    rc = range_doc(from, to, &doc);
    if (rc || json_object_set(doc, "days", x.days) || json_object_set(doc, "total", x.total)) {
        rc = -ENOMEM;
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    json_decref(x.days);
    json_decref(x.total);
    return rc;
}

/* ---- turnaround ---- */

typedef struct tat_row {
    long long count, sum_ms, ok, overdue;
    long long bucket[WL_TAT_BUCKETS];
} tat_row;

typedef struct tat_ctx {
    const hr_config *cfg;
    tat_row *rows; /* n_centers x HR_PRIORITIES */
} tat_ctx;

static int tat_field(void *arg, int di, char *field, long long v)
{
    (void)di;
    tat_ctx *x = arg;
    char *parts[5] = {field};
    int n = 1;
    for (char *p = field; *p && n < 5; p++)
        if (*p == '|') {
            *p = '\0';
            parts[n++] = p + 1;
        }
    if (n < 3)
        return 0;
    const hr_center *ce = hr_config_center(x->cfg, parts[1]);
    int prio = hr_priority_parse(parts[2]);
    if (!ce || prio < 0)
        return 0;
    tat_row *row = &x->rows[(size_t)(ce - x->cfg->centers) * HR_PRIORITIES + (size_t)prio];
    if (strcmp(parts[0], "fin") == 0)
        row->count += v;
    else if (strcmp(parts[0], "sum") == 0)
        row->sum_ms += v;
    else if (strcmp(parts[0], "ok") == 0)
        row->ok += v;
    else if (strcmp(parts[0], "od") == 0)
        row->overdue += v;
    else if (strcmp(parts[0], "b") == 0 && n == 4) {
        int k = atoi(parts[3]);
        if (k >= 0 && k < WL_TAT_BUCKETS)
            row->bucket[k] += v;
    }
    return 0;
}

/* The median estimated from the histogram: linear within its bucket. */
static long long tat_median(const tat_row *row)
{
    long long total = 0, cum = 0;
    for (int k = 0; k < WL_TAT_BUCKETS; k++)
        total += row->bucket[k];
    if (total <= 0)
        return -1;
    double half = total / 2.0;
    for (int k = 0; k < WL_TAT_BUCKETS; k++) {
        if (row->bucket[k] > 0 && cum + row->bucket[k] >= half) {
            double lo = k ? 1000.0 * (double)(1LL << (k - 1)) : 0, hi = 1000.0 * (double)(1LL << k);
            return (long long)(lo + (hi - lo) * (half - (double)cum) / (double)row->bucket[k]);
        }
        cum += row->bucket[k];
    }
    return -1;
}

int wl_stats_turnaround(redisContext *c, const hr_config *cfg, int from, int to, json_t **out)
{
    int days[WL_STATS_DAYS_MAX], n = 0;
    tat_ctx x = {cfg, NULL};
    json_t *doc = NULL, *rows = NULL;
    *out = NULL;
    int rc = range_days(from, to, days, &n);
    if (rc)
        return rc;
    rc = -ENOMEM;
    x.rows = calloc(cfg->n_centers * HR_PRIORITIES + 1, sizeof(*x.rows));
    rows = json_array();
    if (!x.rows || !rows)
        goto out;
    rc = read_days(c, days, n, tat_field, &x);
    if (rc)
        goto out;
    rc = -ENOMEM;
    for (size_t i = 0; i < cfg->n_centers; i++) {
        const hr_center *ce = &cfg->centers[i];
        for (int p = 0; p < HR_PRIORITIES; p++) {
            const tat_row *row = &x.rows[i * HR_PRIORITIES + (size_t)p];
            long long med = tat_median(row);
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "center", ce->id,
                                  "center_name", ce->name, "kind", hr_center_kind_name(ce->kind),
                                  "priority", hr_priority_name((enum hr_priority)p), "count",
                                  (json_int_t)row->count, "target_ms",
                                  (json_int_t)wl_turnaround_ms(cfg, ce->kind, (enum hr_priority)p),
                                  "within_target", (json_int_t)row->ok, "overdue_flagged",
                                  (json_int_t)row->overdue, "sum_ms", (json_int_t)row->sum_ms);
            if (!o || json_array_append_new(rows, o))
                goto out;
            json_object_set_new(o, "mean_ms",
                                row->count > 0 ? json_integer(row->sum_ms / row->count)
                                               : json_null());
            json_object_set_new(o, "median_ms", med >= 0 ? json_integer(med) : json_null());
            json_object_set_new(o, "within_target_share",
                                row->count > 0 ? json_real((double)row->ok / (double)row->count)
                                               : json_null());
        }
    }
    rc = range_doc(from, to, &doc);
    if (rc || json_object_set(doc, "rows", rows)) {
        rc = -ENOMEM;
        goto out;
    }
    *out = doc;
    doc = NULL;
    rc = 0;
out:
    free(x.rows);
    json_decref(rows);
    json_decref(doc);
    return rc;
}

/* ---- overdue ---- */

static const char *const k_od_fields[] = {"study",    "priority",   "state",     "hospital",
                                          "modality", "accession",  "procedure", "arrived_ms",
                                          "due_ms",   "overdue_ms", "claimed_by"};
#define N_OD_FIELDS   11
#define OD_NUMERIC(i) ((i) >= 7 && (i) <= 9)

static int overdue_center(redisContext *c, const hr_center *ce, int limit, json_t *list)
{
    int rc = HR_EREDIS;
    json_t *items = json_array();
    redisReply *r = redisCommand(c, "ZRANGE hr:wl:c:%s:overdue 0 %d", ce->id, limit - 1);
    redisReply *n = r ? redisCommand(c, "ZCARD hr:wl:c:%s:overdue", ce->id) : NULL;
    if (!items) {
        rc = -ENOMEM;
        goto out;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || !n || n->type != REDIS_REPLY_INTEGER)
        goto out;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        if (m->type != REDIS_REPLY_STRING)
            continue;
        redisReply *h = redisCommand(c,
                                     "HMGET hr:wl:{%s} study priority state hospital modality "
                                     "accession procedure arrived_ms due_ms overdue_ms claimed_by",
                                     m->str);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != N_OD_FIELDS) {
            freeReplyObject(h);
            goto out;
        }
        json_t *o = json_object();
        for (int k = 0; o && k < N_OD_FIELDS; k++) {
            const redisReply *e = h->element[k];
            const char *v = e->type == REDIS_REPLY_STRING ? e->str : "";
            json_object_set_new(o, k_od_fields[k],
                                OD_NUMERIC(k) ? json_integer(strtoll(v, NULL, 10))
                                              : json_string(v));
        }
        freeReplyObject(h);
        if (!o || json_array_append_new(items, o)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:O}", "center", ce->id, "center_name", ce->name,
                          "count", (json_int_t)n->integer, "items", items);
    rc = o && !json_array_append_new(list, o) ? 0 : -ENOMEM;
out:
    freeReplyObject(r);
    freeReplyObject(n);
    json_decref(items);
    return rc;
}

int wl_stats_overdue(redisContext *c, const hr_config *cfg, const char *center, int limit,
                     json_t **out)
{
    *out = NULL;
    const hr_center *only = center ? hr_config_center(cfg, center) : NULL;
    if ((center && !only) || limit < 1 || limit > WL_OVERDUE_LIMIT)
        return -EINVAL;
    json_t *list = json_array();
    int rc = list ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < cfg->n_centers; i++)
        if (!only || only == &cfg->centers[i])
            rc = overdue_center(c, &cfg->centers[i], limit, list);
    if (!rc) {
        *out = json_pack("{s:O}", "centers", list);
        rc = *out ? 0 : -ENOMEM;
    }
    json_decref(list);
    return rc;
}
