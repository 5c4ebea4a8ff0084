/* Mutual recognition (recognition.h, decision 0027). */
#include "recognition.h"
#include "lab.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REC_ENTRIES_MAX 64 /* recognition entries read from one payload */

static const char *const k_reasons[REC_REASONS] = {"recognizable",     "expired",   "superseded",
                                                   "entered-in-error", "qc_lapsed", "preliminary",
                                                   "not_in_catalogue"};

static const char *const k_rejects[REC_REJECTS] = {"condition_changed",
                                                   "fast_changing_value",
                                                   "before_major_procedure",
                                                   "emergency",
                                                   "forensic_or_disability_assessment",
                                                   "patient_request",
                                                   "issuer_failed_eqa",
                                                   "too_old",
                                                   "physician_judgement",
                                                   "other"};

/* FHIR DiagnosticReport codes of enum rpt_status (report.h). */
static const char *const k_status[RPT_STATUS_COUNT] = {
    "draft", "preliminary", "final", "amended", "corrected", "entered-in-error"};

const char *rec_reason_name(enum rec_reason r)
{
    return (unsigned)r < REC_REASONS ? k_reasons[r] : "?";
}

const char *rec_reject_name(enum rec_reject r)
{
    return (unsigned)r < REC_REJECTS ? k_rejects[r] : "?";
}

int rec_reject_parse(const char *s)
{
    for (int i = 0; s && i < REC_REJECTS; i++)
        if (strcmp(s, k_rejects[i]) == 0)
            return i;
    return -1;
}

static const char *status_name(enum rpt_status s)
{
    return (unsigned)s < RPT_STATUS_COUNT ? k_status[s] : "?";
}

static int signed_final(enum rpt_status s)
{
    return s == RPT_FINAL || s == RPT_AMENDED || s == RPT_CORRECTED;
}

/* ---- days ---- */

int rec_day_of(long long ms)
{
    return hr_day_of(ms);
}

int rec_day_add(int day, int n)
{
    return hr_day_add(day, n);
}

int rec_day_parse(const char *s)
{
    return hr_day_parse(s);
}

void rec_day_iso(int day, char out[11])
{
    hr_day_iso(day, out);
}

/* ---- rules ---- */

/* One value of the list equals v (ASCII case-insensitive); an absent list
 * matches anything, an absent value no list. */
static int list_has(const hr_strlist *l, const char *v, int substring)
{
    if (l->n == 0)
        return 1;
    if (!v || !*v)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        if (substring ? strcasestr(v, l->v[i]) != NULL : strcasecmp(v, l->v[i]) == 0)
            return 1;
    }
    return 0;
}

int rec_item_matches(const rec_item *it, const rec_exam *e)
{
    const rec_match *m = &it->match;
    if (!list_has(&m->modalities, e->modality, 0) || !list_has(&m->body_parts, e->body_part, 0) ||
        !list_has(&m->procedures, e->procedure, 1))
        return 0;
    if (m->codes.n == 0)
        return 1;
    for (size_t i = 0; i < e->n_codes; i++)
        for (size_t k = 0; k < m->codes.n; k++)
            if (e->codes[i] && strcmp(e->codes[i], m->codes.v[k]) == 0)
                return 1;
    return 0;
}

int rec_qc_covers(const hr_config *cfg, const char *center, const char *item, int day)
{
    const rec_config *rc = cfg->recognition;
    for (size_t i = 0; rc && center && i < rc->n_qc; i++) {
        const rec_qc *q = &rc->qc[i];
        if (strcmp(q->center, center) != 0 || day < q->from || day > q->to)
            continue;
        if (q->all_items)
            return 1;
        for (size_t k = 0; k < q->items.n; k++)
            if (strcmp(q->items.v[k], item) == 0)
                return 1;
    }
    return 0;
}

enum rec_reason rec_judge(const hr_config *cfg, enum rpt_status status, const char *item,
                          const char *valid_until, const char *center, int today)
{
    if (status == RPT_ENTERED_IN_ERROR)
        return REC_ENTERED_IN_ERROR;
    if (!signed_final(status))
        return REC_PRELIMINARY;
    if (!rec_item_find(cfg, item))
        return REC_NOT_IN_CATALOGUE;
    int until = rec_day_parse(valid_until);
    if (!until || until < today)
        return REC_EXPIRED;
    if (!rec_qc_covers(cfg, center, item, today))
        return REC_QC_LAPSED;
    return REC_RECOGNIZABLE;
}

static void whyf(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (!why || !cap)
        return;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static const char *entry_code(json_t *e)
{
    if (json_is_string(e))
        return json_string_value(e);
    if (json_is_object(e) && json_is_string(json_object_get(e, "item")))
        return json_string_value(json_object_get(e, "item"));
    return NULL;
}

int rec_fill(const hr_config *cfg, const char *center, json_t *items, long long signed_ms,
             char *why, size_t cap)
{
    const hr_center *ce = NULL;
    if (!json_is_array(items) || json_array_size(items) > REC_ENTRIES_MAX) {
        whyf(why, cap, "recognition: must be an array of at most %d item codes", REC_ENTRIES_MAX);
        return -EINVAL;
    }
    if (center) {
        ce = hr_config_center(cfg, center);
        if (!ce) {
            whyf(why, cap, "no center \"%.64s\"", center);
            return -EINVAL;
        }
    }
    int day = rec_day_of(signed_ms);
    /* everything checked before anything is replaced */
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *code = entry_code(json_array_get(items, i));
        const rec_item *it = code ? rec_item_find(cfg, code) : NULL;
        if (!it) {
            whyf(why, cap,
                 "recognition[%zu]: \"%.40s\" is not an item of the recognition catalogue", i,
                 code ? code : "(not a code)");
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(entry_code(json_array_get(items, j)), code) == 0) {
                whyf(why, cap, "recognition[%zu]: \"%s\" is given twice", i, code);
                return -EINVAL;
            }
        if (ce && it->category != ce->kind) {
            whyf(why, cap, "recognition[%zu]: \"%s\" is a %s item; center \"%s\" reads %s exams", i,
                 code, hr_center_kind_name(it->category), ce->id, hr_center_kind_name(ce->kind));
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        const rec_item *it = rec_item_find(cfg, entry_code(json_array_get(items, i)));
        char until[11];
        rec_day_iso(rec_day_add(day, it->validity_days), until);
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "item", it->code, "name", it->name, "hr_mark",
                      it->hr_mark, "scope", rec_scope_name(it->scope), "valid_until", until);
        if (!o || json_array_set_new(items, i, o)) {
            whyf(why, cap, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

int rpt_fill_recognition(const hr_config *cfg, json_t *items, long long signed_ms)
{
    return rec_fill(cfg, NULL, items, signed_ms, NULL, 0);
}

/* A UID of len bytes: digits and dots, components without leading zeros. */
static int uid_span_valid(const char *u, size_t ulen)
{
    int start = 1;
    if (ulen == 0 || ulen >= HR_UID_MAX)
        return 0;
    for (size_t i = 0; i < ulen; i++) {
        if (u[i] == '.') {
            if (start)
                return 0;
            start = 1;
        } else if (u[i] >= '0' && u[i] <= '9') {
            if (start && u[i] == '0' && i + 1 < ulen && u[i + 1] != '.')
                return 0;
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

int rec_result_parse(const char *result, char report[RPT_ID_MAX], char study[HR_UID_MAX],
                     char item[REC_CODE_MAX])
{
    const char *tilde = result ? strrchr(result, '~') : NULL;
    const char *u;
    if (!tilde || !rec_code_valid(tilde + 1))
        return -EINVAL;
    if (result[0] >= '1' && result[0] <= '9') {
        /* a lab result (decision 0041): "<lab report UID>~<item>", no report */
        u = result;
        report[0] = '\0';
    } else {
        if (result[0] != 'r' || (size_t)(tilde - result) >= RPT_ID_MAX)
            return -EINVAL;
        const char *p = result + 1, *dash;
        for (dash = p; dash < tilde && *dash >= '0' && *dash <= '9'; dash++)
            ;
        if (dash == p || dash - p > 9 || *p == '0' || *dash != '-')
            return -EINVAL;
        u = dash + 1;
    }
    size_t ulen = (size_t)(tilde - u);
    if (!uid_span_valid(u, ulen))
        return -EINVAL;
    if (u != result) {
        memcpy(report, result, (size_t)(tilde - result));
        report[tilde - result] = '\0';
    }
    memcpy(study, u, ulen);
    study[ulen] = '\0';
    snprintf(item, REC_CODE_MAX, "%s", tilde + 1);
    return 0;
}

/* ---- results of a report (pure) ---- */

static const char *jget(json_t *o, const char *k)
{
    json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

/* One result object (reason REC_REASONS: none). */
static json_t *result_json(const hr_config *cfg, const char *report, int version,
                           enum rpt_status status, json_t *payload, json_t *entry,
                           enum rec_reason reason, const char *base)
{
    json_t *exam = json_object_get(payload, "exam");
    const char *item = jget(entry, "item");
    const char *center = jget(exam, "center");
    const char *study = jget(exam, "study_uid");
    const rec_item *it = rec_item_find(cfg, item);
    const hr_center *ce = hr_config_center(cfg, center);
    const hr_hospital *ih = ce ? hr_config_hospital(cfg, ce->hospital) : NULL;
    char result[REC_RESULT_MAX + 8], url[3][512];
    snprintf(result, sizeof(result), "%s~%s", report, item);
    snprintf(url[0], sizeof(url[0]), "%s/api/v1/reports/%s/versions/%d/jws", base, report, version);
    snprintf(url[1], sizeof(url[1]), "%s/api/v1/reports/%s/versions/%d/pdf", base, report, version);
    snprintf(url[2], sizeof(url[2]), "%s/dicomweb/studies/%s", base, study);
    json_t *signers = json_object_get(payload, "signers");
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "result", jstr(result));
    json_object_set_new(o, "report", jstr(report));
    json_object_set_new(o, "version", json_integer(version));
    json_object_set_new(o, "status", jstr(status_name(status)));
    json_object_set_new(o, "item", jstr(item));
    json_object_set_new(o, "name",
                        jstr(*jget(entry, "name") ? jget(entry, "name")
                             : it                 ? it->name
                                                  : ""));
    json_object_set_new(o, "category", jstr(it ? hr_center_kind_name(it->category) : ""));
    json_object_set_new(o, "loinc", jstr(it ? it->loinc : ""));
    json_object_set_new(o, "hr_mark", jstr(jget(entry, "hr_mark")));
    json_object_set_new(o, "scope", jstr(jget(entry, "scope")));
    json_object_set_new(o, "valid_until", jstr(jget(entry, "valid_until")));
    json_object_set_new(o, "study", jstr(study));
    json_object_set_new(o, "accession", jstr(jget(exam, "accession")));
    json_object_set_new(o, "modality", jstr(jget(exam, "modality")));
    json_object_set_new(o, "procedure", jstr(jget(exam, "procedure")));
    json_object_set_new(o, "study_date", jstr(jget(exam, "study_date")));
    json_object_set_new(o, "center", jstr(center));
    json_object_set_new(o, "center_name",
                        jstr(*jget(exam, "center_name") ? jget(exam, "center_name")
                             : ce                       ? ce->name
                                                        : ""));
    json_object_set_new(o, "issuing_hospital", jstr(ih ? ih->id : ""));
    json_object_set_new(o, "issuing_hospital_name", jstr(ih ? ih->name : ""));
    json_object_set_new(o, "source_hospital", jstr(jget(exam, "hospital")));
    json_object_set_new(o, "source_hospital_name", jstr(jget(exam, "hospital_name")));
    json_object_set_new(o, "signed_at", jstr(jget(payload, "signed_at")));
    json_object_set_new(o, "signers",
                        json_is_array(signers) ? json_deep_copy(signers) : json_array());
    json_object_set_new(
        o, "links", json_pack("{s:s, s:s, s:s}", "jws", url[0], "pdf", url[1], "study", url[2]));
    if (reason != REC_REASONS)
        json_object_set_new(o, "reason", jstr(rec_reason_name(reason)));
    return o;
}

static int has_item(json_t *entries, const char *item)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        if (i >= REC_ENTRIES_MAX)
            break;
        if (strcmp(jget(e, "item"), item) == 0)
            return 1;
    }
    return 0;
}

static int add(json_t *to, json_t *o)
{
    return o && json_array_append_new(to, o) == 0 ? 0 : -ENOMEM;
}

int rec_report_results(const hr_config *cfg, const char *report, int version,
                       enum rpt_status status, json_t *payload, enum rpt_status prev_status,
                       json_t *prev_payload, int today, const char *base, json_t *ok,
                       json_t *not_ok)
{
    json_t *entries = json_object_get(payload, "recognition");
    json_t *src = payload;
    int src_version = version, rc = 0;
    size_t i;
    json_t *e;
    base = base ? base : "";
    if (!json_is_array(entries))
        entries = NULL;
    /* a retraction that does not repeat the items: the retracted version's */
    if (status == RPT_ENTERED_IN_ERROR && (!entries || json_array_size(entries) == 0) &&
        prev_payload && json_is_array(json_object_get(prev_payload, "recognition"))) {
        src = prev_payload;
        src_version = version - 1;
        entries = json_object_get(prev_payload, "recognition");
    }
    json_array_foreach(entries, i, e)
    {
        if (i >= REC_ENTRIES_MAX || rc)
            break;
        const char *item = jget(e, "item");
        if (!rec_code_valid(item))
            continue;
        const char *center = jget(json_object_get(src, "exam"), "center");
        enum rec_reason why = rec_judge(cfg, status, item, jget(e, "valid_until"), center, today);
        if (why == REC_RECOGNIZABLE)
            rc = add(ok, result_json(cfg, report, src_version, status, src, e, REC_REASONS, base));
        else
            rc = add(not_ok, result_json(cfg, report, src_version, status, src, e, why, base));
    }
    /* an amendment that dropped an item: the earlier result is superseded */
    json_t *prev = prev_payload ? json_object_get(prev_payload, "recognition") : NULL;
    if (!rc && json_is_array(prev) && (status == RPT_AMENDED || status == RPT_CORRECTED) &&
        signed_final(prev_status)) {
        json_array_foreach(prev, i, e)
        {
            if (i >= REC_ENTRIES_MAX || rc)
                break;
            const char *item = jget(e, "item");
            if (!rec_code_valid(item) || (entries && has_item(entries, item)))
                continue;
            rc = add(not_ok, result_json(cfg, report, version - 1, prev_status, prev_payload, e,
                                         REC_SUPERSEDED, base));
        }
    }
    return rc;
}

/* ---- lookup (Redis, through reports/report.h) ---- */

typedef struct id_list {
    char ids[RPT_PER_STUDY_MAX][RPT_ID_MAX];
    int n;
} id_list;

static int collect_id(void *arg, const char *id, enum rpt_status st)
{
    id_list *l = arg;
    if (l->n < RPT_PER_STUDY_MAX && strlen(id) < RPT_ID_MAX)
        snprintf(l->ids[l->n++], RPT_ID_MAX, "%s", id);
    return 0;
}

/* The results of one report into ok / not_ok; *reads += versions read. */
static int report_results(redisContext *c, const hr_config *cfg, const char *id, int today,
                          const char *base, json_t *ok, json_t *not_ok, int *reads)
{
    rpt_version v, p;
    int have_prev = 0;
    memset(&v, 0, sizeof(v));
    memset(&p, 0, sizeof(p));
    int rc = rpt_version_get(c, id, 0, &v);
    (*reads)++;
    if (rc == HR_ENOTFOUND)
        return 0; /* nothing signed yet */
    if (rc)
        return rc;
    /* an amendment, correction or retraction: the version it replaced too */
    if (v.version > 1 && (v.status == RPT_AMENDED || v.status == RPT_CORRECTED ||
                          v.status == RPT_ENTERED_IN_ERROR)) {
        rc = rpt_version_get(c, id, v.version - 1, &p);
        (*reads)++;
        if (rc == 0)
            have_prev = 1;
        else if (rc != HR_ENOTFOUND)
            goto out;
    }
    rc = rec_report_results(cfg, id, v.version, v.status, v.payload,
                            have_prev ? p.status : RPT_DRAFT, have_prev ? p.payload : NULL, today,
                            base, ok, not_ok);
out:
    rpt_version_free(&v);
    if (have_prev)
        rpt_version_free(&p);
    return rc;
}

int rec_lookup(redisContext *c, const hr_config *cfg, const char *person, long long now_ms,
               const char *base, json_t **ok, json_t **not_ok, int *truncated)
{
    const rec_config *rcfg = cfg->recognition;
    int max = rcfg ? rcfg->lookup_studies : 200, n = 0, rc, reads = 0;
    char(*studies)[HR_UID_MAX] = NULL;
    id_list *ids = NULL;
    *ok = *not_ok = NULL;
    *truncated = 0;
    studies = calloc((size_t)max, sizeof(*studies));
    ids = malloc(sizeof(*ids));
    *ok = json_array();
    *not_ok = json_array();
    if (!studies || !ids || !*ok || !*not_ok) {
        rc = -ENOMEM;
        goto out;
    }
    rc = rpt_person_studies(c, person, max, studies, &n);
    int today = rec_today(cfg, now_ms);
    for (int s = 0; !rc && s < n; s++) {
        ids->n = 0;
        rc = rpt_study_reports(c, studies[s], collect_id, ids);
        for (int k = 0; !rc && k < ids->n; k++) {
            if (reads >= REC_VERSIONS_MAX) {
                *truncated = 1;
                goto out;
            }
            rc = report_results(c, cfg, ids->ids[k], today, base, *ok, *not_ok, &reads);
        }
    }
out:
    free(studies);
    free(ids);
    if (rc) {
        json_decref(*ok);
        json_decref(*not_ok);
        *ok = *not_ok = NULL;
    }
    return rc;
}

static const char *lstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int rec_lab_results(redisContext *c, const hr_config *cfg, const char *person, long long now_ms,
                    json_t **out)
{
    json_t *reps = NULL, *rep, *o;
    size_t i, k;
    int today = rec_today(cfg, now_ms);
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    int rc = lab_person_reports(c, person, REC_LAB_REPORTS_MAX, &reps);
    json_array_foreach(reps, i, rep)
    {
        /* the issuing center: the lab center that reviewed it (its QC, like
         * an imaging center's); a township-final result has none */
        char center[HR_ID_MAX] = "";
        redisReply *w = rc ? NULL : redisCommand(c, "HGET hr:wl:{%s} center", lstr(rep, "uid"));
        if (!rc && (!w || w->type == REDIS_REPLY_ERROR))
            rc = HR_EREDIS;
        else if (w && w->type == REDIS_REPLY_STRING)
            snprintf(center, sizeof(center), "%s", w->str);
        freeReplyObject(w);
        json_array_foreach(json_object_get(rep, "obs"), k, o)
        {
            const json_t *code = json_object_get(o, "code");
            const rec_item *it = rec_item_by_test(cfg, lstr(code, "code"));
            if (rc || !it)
                continue;
            char day8[9], result[HR_UID_MAX + REC_CODE_MAX + 2], obs_iso[11], until_iso[11];
            const char *t = *lstr(o, "time") ? lstr(o, "time") : lstr(rep, "observed");
            snprintf(day8, sizeof(day8), "%s", t);
            int day = strlen(day8) == 8
                          ? atoi(day8)
                          : rec_day_of(json_integer_value(json_object_get(o, "received_ms")));
            int until = rec_day_add(day, it->validity_days);
            const char *st = lstr(o, "status");
            int final = !strcmp(st, "F") || !strcmp(st, "C");
            const char *reason = !final                                         ? "not_final"
                                 : today > until                                ? "expired"
                                 : !rec_qc_covers(cfg, center, it->code, today) ? "qc_lapsed"
                                                                                : "recognizable";
            rec_day_iso(day, obs_iso);
            rec_day_iso(until, until_iso);
            snprintf(result, sizeof(result), "%s~%s", lstr(rep, "uid"), it->code);
            json_t *r = json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:s, "
                "s:b, s:s}",
                "result", result, "kind", "lab", "study", lstr(rep, "uid"), "hospital",
                lstr(rep, "hospital"), "item", it->code, "name", it->name, "hr_mark", it->hr_mark,
                "code", lstr(code, "code"), "display", lstr(code, "display"), "value",
                lstr(o, "value"), "unit", lstr(o, "unit"), "range", lstr(o, "range"), "flags",
                json_object_get(o, "flags") ? json_object_get(o, "flags") : json_null(), "status",
                st, "observed", obs_iso, "valid_until", until_iso, "recognizable",
                !strcmp(reason, "recognizable"), "reason", reason);
            if (r)
                json_object_set_new(r, "center", json_string(center));
            if (r && json_object_get(o, "low"))
                json_object_set(r, "low", json_object_get(o, "low"));
            if (r && json_object_get(o, "high"))
                json_object_set(r, "high", json_object_get(o, "high"));
            if (!r || json_array_append_new(*out, r))
                rc = -ENOMEM;
        }
    }
    json_decref(reps);
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int rec_grant(redisContext *c, const hr_config *cfg, const char *user, const char *person,
              const char *study, long long now_ms)
{
    long long ms = rec_grant_ms(cfg);
    redisReply *r = NULL;
    int rc = 0;
    if (ms <= 0 || !rpt_person_id_valid(person))
        return -EINVAL;
    redisAppendCommand(c, "SET hr:grant:{%s}:%s %s PX %lld", study, user, person, ms);
    redisAppendCommand(c, "ZADD hr:grants:%s %lld %s", user, now_ms + ms, study);
    redisAppendCommand(c, "ZREMRANGEBYSCORE hr:grants:%s -inf %lld", user, now_ms);
    redisAppendCommand(c, "ZREMRANGEBYRANK hr:grants:%s 0 %d", user, -(REC_GRANTS_PER_USER + 1));
    redisAppendCommand(c, "SET hr:rec:look:{%s}:%s 1 PX %lld", person, user, ms);
    for (int i = 0; i < 5; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS;
        if (r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        freeReplyObject(r);
    }
    return rc;
}

int rec_grant_get(redisContext *c, const char *user, const char *study,
                  char person[RPT_PERSON_ID_LEN + 1])
{
    redisReply *r = redisCommand(c, "GET hr:grant:{%s}:%s", study, user);
    int rc = !r                              ? HR_EREDIS
             : r->type == REDIS_REPLY_NIL    ? HR_ENOTFOUND
             : r->type != REDIS_REPLY_STRING ? HR_EREDIS
             : !rpt_person_id_valid(r->str)  ? HR_ENOTFOUND
                                             : 0;
    if (!rc)
        snprintf(person, RPT_PERSON_ID_LEN + 1, "%s", r->str);
    freeReplyObject(r);
    return rc;
}

int rec_looked_up(redisContext *c, const char *user, const char *person)
{
    redisReply *r = redisCommand(c, "EXISTS hr:rec:look:{%s}:%s", person, user);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* ---- statistics counters ---- */

/* HINCRBY of each field in one MULTI on the day's hash. */
static int stats_incr(redisContext *c, int day, const char *const *fields, int n,
                      long long by_value, const long long *values)
{
    redisReply *r = NULL;
    int rc = 0;
    redisAppendCommand(c, "MULTI");
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "HINCRBY hr:recstat:%d %s %lld", day, fields[i],
                           values ? values[i] : by_value);
    redisAppendCommand(c, "EXEC");
    for (int i = 0; i < n + 2; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS;
        if (r->type == REDIS_REPLY_ERROR || (i == n + 1 && r->type != REDIS_REPLY_ARRAY))
            rc = HR_EREDIS;
        freeReplyObject(r);
    }
    return rc;
}

#define STAT_FIELD_MAX 160
#define LOOKUP_KEYS    64 /* distinct items and centers counted per lookup */

int rec_stats_lookup(redisContext *c, const char *hospital, const json_t *ok, long long now_ms)
{
    char(*f)[STAT_FIELD_MAX] = calloc(2 + 2 * LOOKUP_KEYS, STAT_FIELD_MAX);
    const char **fields = calloc(2 + 2 * LOOKUP_KEYS, sizeof(*fields));
    int n = 0, rc;
    size_t i;
    json_t *e;
    if (!f || !fields) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(f[n++], STAT_FIELD_MAX, "lk|t|");
    snprintf(f[n++], STAT_FIELD_MAX, "lk|h|%s", hospital);
    json_array_foreach((json_t *)ok, i, e)
    {
        const char *keys[2] = {jget(e, "item"), jget(e, "center")};
        const char *g[2] = {"i", "c"};
        for (int k = 0; k < 2; k++) {
            char want[STAT_FIELD_MAX];
            int dup = 0;
            snprintf(want, sizeof(want), "lk|%s|%s", g[k], keys[k]);
            for (int j = 0; j < n && !dup; j++)
                dup = strcmp(f[j], want) == 0;
            if (!dup && n < 2 + 2 * LOOKUP_KEYS && *keys[k])
                snprintf(f[n++], STAT_FIELD_MAX, "%s", want);
        }
    }
    for (int j = 0; j < n; j++)
        fields[j] = f[j];
    rc = stats_incr(c, rec_day_of(now_ms), fields, n, 1, NULL);
out:
    free(f);
    free(fields);
    return rc;
}

/* ---- decisions ---- */

/* The result (ok or not) of this item among a report's results, or NULL;
 * *recognizable tells which. A borrowed reference of ok / not_ok. */
static json_t *find_result(json_t *ok, json_t *not_ok, const char *result, int *recognizable)
{
    size_t i;
    json_t *e;
    json_array_foreach(ok, i, e)
    {
        if (strcmp(jget(e, "result"), result) == 0) {
            *recognizable = 1;
            return e;
        }
    }
    json_array_foreach(not_ok, i, e)
    {
        if (strcmp(jget(e, "result"), result) == 0) {
            *recognizable = 0;
            return e;
        }
    }
    return NULL;
}

int rec_stats_decision(redisContext *c, const hr_config *cfg, const char *item, const char *center,
                       const char *hospital, int accept, int reason, long long now_ms)
{
    char f[8][STAT_FIELD_MAX];
    const char *fields[8];
    long long values[8];
    const rec_item *it = rec_item_find(cfg, item);
    long long fen = it ? it->price_fen : 0;
    int n = 0;
    if (accept) {
        snprintf(f[n++], STAT_FIELD_MAX, "acc|t|");
        snprintf(f[n++], STAT_FIELD_MAX, "acc|i|%s", item);
        snprintf(f[n++], STAT_FIELD_MAX, "acc|c|%s", center);
        snprintf(f[n++], STAT_FIELD_MAX, "acc|h|%s", hospital);
        snprintf(f[n++], STAT_FIELD_MAX, "fen|t|");
        snprintf(f[n++], STAT_FIELD_MAX, "fen|i|%s", item);
        snprintf(f[n++], STAT_FIELD_MAX, "fen|c|%s", center);
        snprintf(f[n++], STAT_FIELD_MAX, "fen|h|%s", hospital);
    } else {
        const char *why = rec_reject_name((enum rec_reject)reason);
        snprintf(f[n++], STAT_FIELD_MAX, "rej|t||%s", why);
        snprintf(f[n++], STAT_FIELD_MAX, "rej|i|%s|%s", item, why);
        snprintf(f[n++], STAT_FIELD_MAX, "rej|c|%s|%s", center, why);
        snprintf(f[n++], STAT_FIELD_MAX, "rej|h|%s|%s", hospital, why);
    }
    for (int i = 0; i < n; i++) {
        fields[i] = f[i];
        values[i] = strncmp(f[i], "fen|", 4) == 0 ? fen : 1;
    }
    return stats_incr(c, rec_day_of(now_ms), fields, n, 0, values);
}

int rec_decide(redisContext *c, const hr_config *cfg, const rec_actor *actor, const char *result,
               int accept, int reason, const char *text, long long now_ms, json_t **out)
{
    char report[RPT_ID_MAX], study[HR_UID_MAX], item[REC_CODE_MAX];
    char person[RPT_PERSON_ID_LEN + 1], rid[48], at[32];
    unsigned char nonce[6];
    json_t *ok = NULL, *not_ok = NULL, *rec = NULL;
    char *text_json = NULL;
    redisReply *r = NULL;
    int rc, recognizable = 0, reads = 0;
    *out = NULL;
    if (rec_result_parse(result, report, study, item) ||
        (!accept && (reason < 0 || reason >= REC_REJECTS)))
        return -EINVAL;
    if (!accept && reason == REC_REJ_OTHER && (!text || !*text))
        return -EINVAL;
    if (text && strlen(text) > REC_DECISION_TEXT_MAX)
        return -EINVAL;
    rc = rec_grant_get(c, actor->user, study, person);
    if (rc)
        return rc;
    ok = json_array();
    not_ok = json_array();
    if (!ok || !not_ok) {
        rc = -ENOMEM;
        goto out;
    }
    json_t *res = NULL;
    if (report[0]) {
        rc = report_results(c, cfg, report, rec_today(cfg, now_ms), "", ok, not_ok, &reads);
        if (rc)
            goto out;
        res = find_result(ok, not_ok, result, &recognizable);
    } else {
        /* a lab result: as the person's lookup shows it now (the grant's
           person: the lab report is one of theirs) */
        json_t *lab = NULL, *e;
        size_t i;
        rc = rec_lab_results(c, cfg, person, now_ms, &lab);
        if (rc)
            goto out;
        json_array_foreach(lab, i, e)
        {
            if (!strcmp(jget(e, "result"), result)) {
                res = e;
                recognizable = json_is_true(json_object_get(e, "recognizable"));
                json_array_append(json_is_true(json_object_get(e, "recognizable")) ? ok : not_ok,
                                  e); /* kept alive by ok/not_ok after lab goes */
                break;
            }
        }
        json_decref(lab);
    }
    if (!res) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    if (accept && !recognizable) {
        rc = HR_ESTATE;
        goto out;
    }
    r = redisCommand(c, "LLEN hr:rec:{%s}:dec:%s", study, result);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    if (r->integer >= REC_DECISIONS_PER_RESULT) {
        rc = HR_ETOOBIG;
        goto out;
    }
    freeReplyObject(r);
    r = NULL;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        rc = -EIO;
        goto out;
    }
    char hex[13];
    hr_hex_encode(nonce, sizeof(nonce), hex);
    snprintf(rid, sizeof(rid), "d%lld-%s", now_ms, hex);
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now_ms % 1000);
    rec = json_object();
    if (!rec) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_set_new(rec, "id", jstr(rid));
    json_object_set_new(rec, "result", jstr(result));
    json_object_set_new(rec, "report", jstr(report));
    json_object_set_new(rec, "study", jstr(study));
    json_object_set_new(rec, "item", jstr(item));
    json_object_set_new(rec, "center", jstr(jget(res, "center")));
    json_object_set_new(rec, "person", jstr(person));
    json_object_set_new(rec, "decision", jstr(accept ? "accept" : "reject"));
    json_object_set_new(rec, "reason", accept ? json_null() : jstr(rec_reject_name(reason)));
    json_object_set_new(rec, "text", jstr(text ? text : ""));
    json_object_set_new(rec, "doctor",
                        jstr(actor->doctor && *actor->doctor ? actor->doctor : actor->user));
    json_object_set_new(rec, "user", jstr(actor->user));
    json_object_set_new(rec, "role", jstr(actor->role));
    json_object_set_new(rec, "hospital", jstr(actor->hospital));
    json_object_set_new(rec, "recognizable", json_boolean(recognizable));
    json_object_set_new(rec, "at_ms", json_integer(now_ms));
    json_object_set_new(rec, "at", jstr(at));
    text_json = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text_json) {
        rc = -ENOMEM;
        goto out;
    }
    /* with the result first (its study's slot), then the person's list and
     * the day's counters (other slots) */
    r = redisCommand(c, "RPUSH hr:rec:{%s}:dec:%s %s", study, result, text_json);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    freeReplyObject(r);
    r = redisCommand(c, "ZADD hr:person:{%s}:dec %lld %s", person, now_ms, text_json);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = rec_stats_decision(c, cfg, item, jget(res, "center"), actor->hospital, accept, reason,
                            now_ms);
    if (!rc) {
        *out = rec;
        rec = NULL;
    }
out:
    freeReplyObject(r);
    free(text_json);
    json_decref(rec);
    json_decref(ok);
    json_decref(not_ok);
    return rc;
}

/* Parsed JSON members of a list or zset reply into a new array. */
static int decode_members(redisReply *r, json_t **out)
{
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        json_t *d = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
        if (d && json_array_append_new(*out, d)) {
            json_decref(*out);
            *out = NULL;
            return -ENOMEM;
        }
    }
    return 0;
}

int rec_decisions_of_result(redisContext *c, const char *result, json_t **out)
{
    char report[RPT_ID_MAX], study[HR_UID_MAX], item[REC_CODE_MAX];
    *out = NULL;
    if (rec_result_parse(result, report, study, item))
        return -EINVAL;
    redisReply *r = redisCommand(c, "LRANGE hr:rec:{%s}:dec:%s 0 %d", study, result,
                                 REC_DECISIONS_PER_RESULT - 1);
    int rc = r && r->type == REDIS_REPLY_ARRAY ? decode_members(r, out) : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

int rec_decisions_of_person(redisContext *c, const char *person, int limit, json_t **out)
{
    *out = NULL;
    if (!rpt_person_id_valid(person) || limit < 1)
        return -EINVAL;
    redisReply *r = redisCommand(c, "ZREVRANGE hr:person:{%s}:dec 0 %d", person, limit - 1);
    int rc = r && r->type == REDIS_REPLY_ARRAY ? decode_members(r, out) : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* ---- statistics queries ---- */

/* The bucket object of key in groups (created on first use). */
static json_t *bucket(json_t *groups, const char *key)
{
    json_t *b = json_object_get(groups, key);
    if (b)
        return b;
    b = json_pack("{s:I, s:I, s:I, s:{}, s:I}", "lookups", (json_int_t)0, "accepts", (json_int_t)0,
                  "rejections", (json_int_t)0, "rejections_by_reason", "cost_avoided_fen",
                  (json_int_t)0);
    if (!b || json_object_set_new(groups, key, b))
        return NULL;
    return b;
}

static void bump(json_t *o, const char *k, long long v)
{
    json_object_set_new(o, k, json_integer(json_integer_value(json_object_get(o, k)) + v));
}

/* Adds one counter (metric, reason) to b. */
static void tally(json_t *b, const char *metric, const char *reason, long long v)
{
    if (strcmp(metric, "lk") == 0)
        bump(b, "lookups", v);
    else if (strcmp(metric, "acc") == 0)
        bump(b, "accepts", v);
    else if (strcmp(metric, "fen") == 0)
        bump(b, "cost_avoided_fen", v);
    else if (strcmp(metric, "rej") == 0 && reason && rec_reject_parse(reason) >= 0) {
        bump(b, "rejections", v);
        bump(json_object_get(b, "rejections_by_reason"), reason, v);
    }
}

/* Rate and yuan of a finished bucket. */
static void finish(json_t *b)
{
    long long acc = json_integer_value(json_object_get(b, "accepts"));
    long long rej = json_integer_value(json_object_get(b, "rejections"));
    long long fen = json_integer_value(json_object_get(b, "cost_avoided_fen"));
    char yuan[32];
    snprintf(yuan, sizeof(yuan), "%lld.%02lld", fen / 100, fen % 100);
    json_object_set_new(b, "decisions", json_integer(acc + rej));
    json_object_set_new(b, "recognition_rate",
                        acc + rej ? json_real((double)acc / (double)(acc + rej)) : json_null());
    json_object_set_new(b, "cost_avoided_yuan", jstr(yuan));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *group_name(const hr_config *cfg, enum rec_group g, const char *key)
{
    if (g == REC_GROUP_ITEM) {
        const rec_item *it = rec_item_find(cfg, key);
        return it ? it->name : "";
    }
    if (g == REC_GROUP_CENTER) {
        const hr_center *ce = hr_config_center(cfg, key);
        return ce ? ce->name : "";
    }
    if (g == REC_GROUP_HOSPITAL) {
        const hr_hospital *h = hr_config_hospital(cfg, key);
        return h ? h->name : "";
    }
    return "";
}

int rec_stats(redisContext *c, const hr_config *cfg, int from, int to, enum rec_group g,
              json_t **out)
{
    static const char letters[] = {'t', 'i', 'c', 'h', 't'}; /* per enum rec_group */
    json_t *groups = NULL, *total = NULL, *doc = NULL, *list = NULL;
    int days[REC_STATS_DAYS_MAX], n = 0, rc = 0;
    *out = NULL;
    if (!from || !to || from > to || (unsigned)g > REC_GROUP_MONTH)
        return -EINVAL;
    for (int d = from; d && d <= to; d = rec_day_add(d, 1)) {
        if (n == REC_STATS_DAYS_MAX)
            return -EINVAL;
        days[n++] = d;
    }
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "HGETALL hr:recstat:%d", days[i]);
    groups = json_object();
    total = json_object();
    if (!groups || !total) {
        rc = -ENOMEM;
        goto drain;
    }
    json_t *tb = bucket(total, "total");
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            rc = HR_EREDIS;
            goto out; /* the connection is unusable: nothing left to drain */
        }
        if (r->type != REDIS_REPLY_ARRAY)
            rc = HR_EREDIS;
        for (size_t k = 0; !rc && k + 1 < r->elements; k += 2) {
            char field[STAT_FIELD_MAX], month[8];
            const char *metric, *grp, *key, *reason;
            if (r->element[k]->len >= sizeof(field))
                continue;
            snprintf(field, sizeof(field), "%s", r->element[k]->str);
            long long v = atoll(r->element[k + 1]->str);
            char *save = field, *p1 = strchr(save, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
            if (!p1 || !p2)
                continue;
            *p1 = *p2 = '\0';
            metric = field;
            grp = p1 + 1;
            key = p2 + 1;
            char *p3 = strchr(p2 + 1, '|');
            reason = NULL;
            if (p3) {
                *p3 = '\0';
                reason = p3 + 1;
            }
            if (strcmp(grp, "t") == 0 && tb)
                tally(tb, metric, reason, v);
            if (g == REC_GROUP_NONE || grp[0] != letters[g] || grp[1])
                continue;
            if (g == REC_GROUP_MONTH) {
                snprintf(month, sizeof(month), "%04d-%02d", days[i] / 10000, days[i] / 100 % 100);
                key = month;
            }
            json_t *b = bucket(groups, key);
            if (!b) {
                rc = -ENOMEM;
                break;
            }
            tally(b, metric, reason, v);
        }
        freeReplyObject(r);
    }
    if (rc)
        goto out;
    char f[11], t[11];
    rec_day_iso(from, f);
    rec_day_iso(to, t);
    static const char *const gnames[] = {"none", "item", "center", "hospital", "month"};
    list = json_array();
    doc = json_pack("{s:s, s:s, s:s}", "from", f, "to", t, "group", gnames[g]);
    if (!doc || !list || !tb) {
        rc = -ENOMEM;
        goto out;
    }
    finish(tb);
    json_object_set(doc, "total", tb);
    /* groups in key order (months in time order) */
    size_t ng = json_object_size(groups), k = 0;
    const char **keys = calloc(ng + 1, sizeof(*keys));
    const char *key;
    json_t *b;
    if (!keys) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_foreach(groups, key, b) keys[k++] = key;
    qsort(keys, ng, sizeof(*keys), cmp_str);
    for (k = 0; k < ng; k++) {
        b = json_object_get(groups, keys[k]);
        finish(b);
        json_object_set_new(b, "key", jstr(keys[k]));
        json_object_set_new(b, "name", jstr(group_name(cfg, g, keys[k])));
        json_array_append(list, b);
    }
    free(keys);
    json_object_set(doc, "groups", list);
    *out = doc;
    doc = NULL;
    goto out;
drain:
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            break;
        freeReplyObject(r);
    }
out:
    json_decref(groups);
    json_decref(total);
    json_decref(doc);
    json_decref(list);
    return rc;
}
