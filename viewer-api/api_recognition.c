/* Mutual recognition (decision 0027), over reports/recognition.h:
 *   GET  /api/v1/recognition?id_type=&id= | ?person=   external doctors,
 *        readers and auditors: the person's results, recognizable now and
 *        not (with the reason); grants the caller the studies of the
 *        recognizable ones for recognition.grant_hours
 *   POST /api/v1/recognition/{result}/decision   accept / reject, by a
 *        caller holding a live grant of the result's study
 *   GET  /api/v1/recognition/{result}/decisions  the result's decisions
 *   GET  /api/v1/recognition/decisions?person=   the person's decisions
 *   GET  /api/v1/recognition/catalogue           the catalogue and QC today
 *   GET  /api/v1/stats/recognition?from=&to=&group=  admins and auditors
 * Every lookup, grant, decision and listing is audited. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../reports/recognition.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRANTED_MAX        200 /* studies granted by one lookup (one per result at most) */
#define DECISIONS_DEFAULT  100
#define DECISIONS_MAX      1000
#define STATS_DEFAULT_DAYS 30

/* Answers a refused or failed step (and audits it); 1 when the caller answers. */
static int answer_or_refuse(va_req *r, const va_denial *d, int rc, const char *action,
                            const char *patient, const char *study, const char *detail,
                            const char *what)
{
    if (d->status) {
        va_audit(r, action, patient, study, detail, "denied");
        va_send_error(r, d->status, d->code, "%s", d->detail);
        return 0;
    }
    if (rc) {
        va_audit(r, action, patient, study, detail, "failure");
        if (rc == HR_EUNSUP)
            va_send_error(r, 503, "reports_unavailable", "signed reports are not available");
        else
            va_send_rc(r, rc, what);
        return 0;
    }
    return 1;
}

/* ---- GET /api/v1/recognition ---- */

typedef struct lookup_state {
    int by_person; /* else by number */
    enum rpt_id_type type;
    char hmac[65];
    char person[RPT_PERSON_ID_LEN + 1]; /* "" when unknown */
    char base[512];
    va_denial d;
    int rc, truncated;
    json_t *ok, *not_ok, *lab; /* lab: rec_lab_results (decision 0041) */
    long long now_ms, until_ms;
    char (*granted)[HR_UID_MAX];
    int n_granted;
} lookup_state;

static int may_look_up(const va_principal *w)
{
    return w->role == STO_ROLE_EXTERNAL || w->role == STO_ROLE_READER ||
           w->role == STO_ROLE_AUDITOR;
}

static void lookup_work(va_req *r, redisContext *c)
{
    lookup_state *st = r->state;
    if (!may_look_up(&r->who)) {
        va__deny(&st->d, 403, "forbidden", "role %s may not look up results for recognition",
                 sto_role_name(r->who.role));
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->now_ms = hr_wall_ms();
    if (!st->by_person) {
        st->rc = rpt_person_by_id(c, st->type, st->hmac, st->person);
        if (st->rc == HR_ENOTFOUND) {
            st->rc = 0; /* unknown: answered like a person without results */
            st->person[0] = '\0';
        }
    }
    if (!st->rc && st->person[0])
        st->rc = rec_lookup(c, r->srv->cfg, st->person, st->now_ms, st->base, &st->ok, &st->not_ok,
                            &st->truncated);
    if (!st->rc && st->person[0])
        st->rc = rec_lab_results(c, r->srv->cfg, st->person, st->now_ms, &st->lab);
    if (!st->rc && !st->lab)
        st->lab = json_array();
    if (!st->rc && !st->lab)
        st->rc = -ENOMEM;
    if (!st->rc && !st->ok) {
        st->ok = json_array();
        st->not_ok = json_array();
        if (!st->ok || !st->not_ok)
            st->rc = -ENOMEM;
    }
    /* the grants: the study of each recognizable result, once */
    size_t i;
    json_t *e;
    json_array_foreach(st->ok, i, e)
    {
        const char *study = json_string_value(json_object_get(e, "study"));
        int dup = 0;
        if (st->rc || !study || !*study || strlen(study) >= HR_UID_MAX)
            continue;
        for (int k = 0; k < st->n_granted && !dup; k++)
            dup = strcmp(st->granted[k], study) == 0;
        if (dup || st->n_granted == GRANTED_MAX)
            continue;
        st->rc = rec_grant(c, r->srv->cfg, r->who.user, st->person, study, st->now_ms);
        if (!st->rc)
            snprintf(st->granted[st->n_granted++], HR_UID_MAX, "%s", study);
    }
    json_array_foreach(st->lab, i, e)
    {
        const char *study = json_string_value(json_object_get(e, "study"));
        int dup = 0;
        if (st->rc || !json_is_true(json_object_get(e, "recognizable")) || !study || !*study ||
            strlen(study) >= HR_UID_MAX)
            continue;
        for (int k = 0; k < st->n_granted && !dup; k++)
            dup = strcmp(st->granted[k], study) == 0;
        if (dup || st->n_granted == GRANTED_MAX)
            continue;
        st->rc = rec_grant(c, r->srv->cfg, r->who.user, st->person, study, st->now_ms);
        if (!st->rc)
            snprintf(st->granted[st->n_granted++], HR_UID_MAX, "%s", study);
    }
    st->until_ms = st->now_ms + rec_grant_ms(r->srv->cfg);
    if (!st->rc)
        st->rc = rec_stats_lookup(c, r->who.hospital, st->ok, st->now_ms);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void lookup_done(va_req *r)
{
    lookup_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[200];
        snprintf(detail, sizeof(detail), "by %s: %zu recognizable, %zu not; %d studies granted",
                 st->by_person ? "person" : rpt_id_type_name(st->type), json_array_size(st->ok),
                 json_array_size(st->not_ok), st->n_granted);
        /* each grant is its own record, even when the answer fails later */
        for (int k = 0; k < st->n_granted; k++) {
            char g[64];
            snprintf(g, sizeof(g), "until_ms=%lld", st->until_ms);
            va_audit(r, "recognition-grant", st->person, st->granted[k], g, "success");
        }
        if (answer_or_refuse(r, &st->d, st->rc, "recognition", st->person, NULL, detail,
                             "lookup")) {
            va_audit(r, "recognition", st->person, NULL, detail, "success");
            json_t *studies = json_array();
            for (int k = 0; studies && k < st->n_granted; k++)
                json_array_append_new(studies, json_string(st->granted[k]));
            /* the person id only with results: no oracle of who is known */
            int any =
                json_array_size(st->ok) + json_array_size(st->not_ok) + json_array_size(st->lab) >
                0;
            json_t *doc =
                json_pack("{s:o, s:O, s:O, s:b, s:{s:I, s:o}}", "person",
                          any ? json_string(st->person) : json_null(), "results", st->ok,
                          "not_recognizable", st->not_ok, "truncated", st->truncated, "grant",
                          "until_ms", (json_int_t)(st->n_granted ? st->until_ms : 0), "studies",
                          studies ? studies : json_array());
            if (doc)
                json_object_set(doc, "lab_results", st->lab);
            if (doc)
                va_send_json(r, 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    json_decref(st->ok);
    json_decref(st->not_ok);
    json_decref(st->lab);
    free(st->granted);
    OPENSSL_cleanse(st->hmac, sizeof(st->hmac));
    free(st);
}

void va_handle_recognition(va_req *r)
{
    const char *type = va_param_get(r, "id_type"), *id = va_param_get(r, "id");
    const char *person = va_param_get(r, "person");
    char norm[RPT_ID_NUMBER_MAX] = "";
    lookup_state *st = calloc(1, sizeof(*st));
    if (st)
        st->granted = calloc(GRANTED_MAX, sizeof(*st->granted));
    if (!st || !st->granted) {
        va_send_error(r, 500, "internal", "out of memory");
        goto fail;
    }
    for (int i = 0; i < r->n_params; i++) {
        const char *n = r->params[i].name;
        if (strcmp(n, "id_type") && strcmp(n, "id") && strcmp(n, "person")) {
            va_send_error(r, 400, "bad_request", "unknown query parameter \"%.40s\"", n);
            goto fail;
        }
    }
    if (person && !type && !id) {
        if (!rpt_person_id_valid(person)) {
            va_send_error(r, 400, "bad_request", "person: \"p\" and 24 hex digits");
            goto fail;
        }
        st->by_person = 1;
        snprintf(st->person, sizeof(st->person), "%s", person);
    } else if (!person && type && id) {
        int t = rpt_id_type_parse(type);
        if (t < 0) {
            va_send_error(r, 400, "bad_request", "id_type: national_id or health_card");
            goto fail;
        }
        if (rpt_id_normalize((enum rpt_id_type)t, id, norm, sizeof(norm))) {
            va_send_error(r, 400, "bad_id",
                          t == RPT_ID_NATIONAL
                              ? "id: not a national ID number (17 digits and the check character)"
                              : "id: not a health card number (4-32 of A-Z, 0-9, '-')");
            goto fail;
        }
        st->type = (enum rpt_id_type)t;
        if (rpt_id_hmac(r->srv->cfg->persons, st->type, norm, st->hmac)) {
            va_send_error(r, 503, "persons_unavailable", "the person-id key is not loaded");
            goto fail;
        }
    } else {
        va_send_error(r, 400, "bad_request", "give id_type and id, or person");
        goto fail;
    }
    OPENSSL_cleanse(norm, sizeof(norm));
    va_base_url(r, st->base, sizeof(st->base));
    r->state = st;
    va_req_run(r, lookup_work, lookup_done);
    return;
fail:
    OPENSSL_cleanse(norm, sizeof(norm));
    if (st)
        free(st->granted);
    free(st);
}

/* ---- POST /api/v1/recognition/{result}/decision ---- */

typedef struct decide_state {
    char result[REC_RESULT_MAX];
    char study[HR_UID_MAX];
    int accept, reason;
    char *text;
    char doctor[HR_NAME_MAX];
    json_t *rec;
    int rc;
} decide_state;

static void decide_work(va_req *r, redisContext *c)
{
    decide_state *st = r->state;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    rec_actor a = {.user = r->who.user,
                   .role = sto_role_name(r->who.role),
                   .hospital = r->who.hospital,
                   .doctor = st->doctor[0]            ? st->doctor
                             : r->who.display_name[0] ? r->who.display_name
                                                      : r->who.user};
    st->rc = rec_decide(c, r->srv->cfg, &a, st->result, st->accept, st->reason, st->text,
                        hr_wall_ms(), &st->rec);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void decide_done(va_req *r)
{
    decide_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[200];
        const char *person = st->rec ? json_string_value(json_object_get(st->rec, "person")) : NULL;
        snprintf(detail, sizeof(detail), "result=%s %s%s%s", st->result,
                 st->accept ? "accept" : "reject", st->accept ? "" : " ",
                 st->accept ? "" : rec_reject_name(st->reason));
        va_denial d = {0};
        if (st->rc == HR_ESTATE)
            va__deny(&d, 409, "not_recognizable",
                     "the result is not recognizable now: only a "
                     "rejection can be recorded");
        else if (st->rc == HR_ETOOBIG)
            va__deny(&d, 409, "too_many_decisions", "the result has %d decisions",
                     REC_DECISIONS_PER_RESULT);
        else if (st->rc == HR_ENOTFOUND)
            va__deny(&d, 404, "not_found",
                     "no such result, or no live grant of it: look the person up first");
        if (answer_or_refuse(r, &d, d.status ? 0 : st->rc, "recognition-decision", person,
                             st->study, detail, "decision")) {
            va_audit(r, "recognition-decision", person, st->study, detail, "success");
            va_send_json(r, 201, st->rec);
            st->rec = NULL;
        }
    }
    json_decref(st->rec);
    free(st->text);
    free(st);
}

void va_handle_recognition_decision(va_req *r)
{
    char report[RPT_ID_MAX], item[REC_CODE_MAX];
    va_iovec body = va_body(r);
    json_error_t je;
    decide_state *st = calloc(1, sizeof(*st));
    json_t *doc = NULL;
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    if (rec_result_parse(r->segs[0], report, st->study, item)) {
        va_send_error(r, 400, "bad_request",
                      "not a result id (\"<report id>~<item code>\", from a lookup)");
        goto fail;
    }
    snprintf(st->result, sizeof(st->result), "%s", r->segs[0]);
    doc = body.len <= 8192 ? json_loadb(body.base ? body.base : "", body.len, 0, &je) : NULL;
    json_t *dv = json_object_get(doc, "decision"), *rv = json_object_get(doc, "reason");
    json_t *tv = json_object_get(doc, "text"), *ov = json_object_get(doc, "doctor");
    const char *decision = json_string_value(dv);
    if (!json_is_object(doc) || !decision ||
        (strcmp(decision, "accept") != 0 && strcmp(decision, "reject") != 0) ||
        (tv && !json_is_string(tv)) || (ov && !json_is_string(ov)) ||
        (rv && !json_is_string(rv) && !json_is_null(rv))) {
        va_send_error(r, 400, "bad_request",
                      "expected a JSON body {\"decision\": \"accept\" | \"reject\", \"reason\", "
                      "\"text\", \"doctor\"}");
        goto fail;
    }
    st->accept = strcmp(decision, "accept") == 0;
    const char *text = tv ? json_string_value(tv) : "";
    const char *reason = json_string_value(rv);
    if (st->accept && reason) {
        va_send_error(r, 400, "bad_request", "reason: only with \"decision\": \"reject\"");
        goto fail;
    }
    st->reason = st->accept ? -1 : reason ? rec_reject_parse(reason) : -1;
    if (!st->accept && st->reason < 0) {
        va_send_error(r, 400, "bad_reason",
                      "reason: one of condition_changed, fast_changing_value, "
                      "before_major_procedure, emergency, forensic_or_disability_assessment, "
                      "patient_request, issuer_failed_eqa, too_old, physician_judgement, other");
        goto fail;
    }
    if (st->reason == REC_REJ_OTHER && !*text) {
        va_send_error(r, 400, "bad_reason", "reason other: text is required");
        goto fail;
    }
    if (strlen(text) > REC_DECISION_TEXT_MAX) {
        va_send_error(r, 400, "bad_request", "text: at most %d bytes", REC_DECISION_TEXT_MAX);
        goto fail;
    }
    const char *doctor = ov ? json_string_value(ov) : "";
    if (strlen(doctor) >= sizeof(st->doctor)) {
        va_send_error(r, 400, "bad_request", "doctor: at most %zu bytes", sizeof(st->doctor) - 1);
        goto fail;
    }
    snprintf(st->doctor, sizeof(st->doctor), "%s", doctor);
    st->text = strdup(text);
    if (!st->text) {
        va_send_error(r, 500, "internal", "out of memory");
        goto fail;
    }
    json_decref(doc);
    r->state = st;
    va_req_run(r, decide_work, decide_done);
    return;
fail:
    json_decref(doc);
    free(st->text);
    free(st);
}

/* ---- GET .../{result}/decisions and .../decisions?person= ---- */

typedef struct list_state {
    char result[REC_RESULT_MAX]; /* "" for the person's list */
    char study[HR_UID_MAX];
    char person[RPT_PERSON_ID_LEN + 1];
    int limit;
    va_denial d;
    json_t *items;
    int rc;
} list_state;

static int oversees(const va_principal *w)
{
    return w->role == STO_ROLE_ADMIN || w->role == STO_ROLE_AUDITOR || w->role == STO_ROLE_OFFICE;
}

static void list_work(va_req *r, redisContext *c)
{
    list_state *st = r->state;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (st->result[0]) {
        char grant_of[RPT_PERSON_ID_LEN + 1];
        if (!oversees(&r->who)) {
            int rc = rec_grant_get(c, r->who.user, st->study, grant_of);
            if (rc == HR_ENOTFOUND) {
                va__deny(&st->d, 404, "not_found", "no such result, or no live grant of it");
                return;
            }
            if (rc) {
                st->rc = rc;
                goto out;
            }
        }
        st->rc = rec_decisions_of_result(c, st->result, &st->items);
    } else {
        if (!oversees(&r->who)) {
            int rc = rec_looked_up(c, r->who.user, st->person);
            if (rc < 0) {
                st->rc = rc;
                goto out;
            }
            if (rc == 0) {
                va__deny(&st->d, 404, "not_found", "no such person, or no recent lookup of it");
                return;
            }
        }
        st->rc = rec_decisions_of_person(c, st->person, st->limit, &st->items);
    }
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void list_done(va_req *r)
{
    list_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s%s",
                 st->result[0] ? "result=" : "person=", st->result[0] ? st->result : st->person);
        if (answer_or_refuse(r, &st->d, st->rc, "recognition-decisions",
                             st->person[0] ? st->person : NULL, st->study[0] ? st->study : NULL,
                             detail, "decisions")) {
            va_audit(r, "recognition-decisions", st->person[0] ? st->person : NULL,
                     st->study[0] ? st->study : NULL, detail, "success");
            json_t *doc = json_pack("{s:O}", "decisions", st->items);
            if (doc)
                va_send_json(r, 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    json_decref(st->items);
    free(st);
}

void va_handle_recognition_decisions(va_req *r)
{
    char report[RPT_ID_MAX], item[REC_CODE_MAX];
    list_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->limit = DECISIONS_DEFAULT;
    if (r->n_segs == 1) { /* /api/v1/recognition/{result}/decisions */
        if (rec_result_parse(r->segs[0], report, st->study, item)) {
            free(st);
            va_send_error(r, 400, "bad_request", "not a result id");
            return;
        }
        snprintf(st->result, sizeof(st->result), "%s", r->segs[0]);
    } else {
        const char *p = va_param_get(r, "person"), *l = va_param_get(r, "limit");
        char *end = NULL;
        long n = l ? strtol(l, &end, 10) : DECISIONS_DEFAULT;
        if (!p || !rpt_person_id_valid(p) || (l && (!*l || *end || n < 1 || n > DECISIONS_MAX))) {
            free(st);
            va_send_error(r, 400, "bad_request", "person: a person id; limit: 1..%d",
                          DECISIONS_MAX);
            return;
        }
        snprintf(st->person, sizeof(st->person), "%s", p);
        st->limit = (int)n;
    }
    r->state = st;
    va_req_run(r, list_work, list_done);
}

/* ---- GET /api/v1/recognition/catalogue ---- */

void va_handle_recognition_catalogue(va_req *r)
{
    const hr_config *cfg = r->srv->cfg;
    const rec_config *rc = cfg->recognition;
    int today = rec_day_of(hr_wall_ms());
    json_t *items = json_array(), *qc = json_array();
    for (size_t i = 0; rc && items && i < rc->n_items; i++) {
        const rec_item *it = &rc->items[i];
        char yuan[32];
        snprintf(yuan, sizeof(yuan), "%lld.%02lld", it->price_fen / 100, it->price_fen % 100);
        json_t *m = json_object();
        const hr_strlist *lists[] = {&it->match.modalities, &it->match.body_parts,
                                     &it->match.procedures, &it->match.codes};
        const char *names[] = {"modalities", "body_parts", "procedures", "codes"};
        for (int k = 0; m && k < 4; k++) {
            if (!lists[k]->n)
                continue;
            json_t *a = json_array();
            for (size_t j = 0; a && j < lists[k]->n; j++)
                json_array_append_new(a, json_string(lists[k]->v[j]));
            json_object_set_new(m, names[k], a ? a : json_array());
        }
        json_array_append_new(
            items,
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:s, s:s, s:I}", "code", it->code,
                      "loinc", it->loinc, "name", it->name, "category",
                      hr_center_kind_name(it->category), "match", m ? m : json_object(), "scope",
                      rec_scope_name(it->scope), "validity_days", it->validity_days, "hr_mark",
                      it->hr_mark, "price_yuan", yuan, "price_fen", (json_int_t)it->price_fen));
    }
    for (size_t i = 0; rc && qc && i < rc->n_qc; i++) {
        const rec_qc *q = &rc->qc[i];
        char from[11], to[11];
        rec_day_iso(q->from, from);
        rec_day_iso(q->to, to);
        json_t *codes = json_array();
        for (size_t j = 0; codes && j < q->items.n; j++)
            json_array_append_new(codes, json_string(q->items.v[j]));
        json_array_append_new(qc,
                              json_pack("{s:s, s:o, s:s, s:s, s:b}", "center", q->center, "items",
                                        q->all_items ? json_string("*")
                                        : codes      ? codes
                                                     : json_array(),
                                        "passed_from", from, "passed_to", to, "valid_today",
                                        today >= q->from && today <= q->to));
        if (q->all_items)
            json_decref(codes);
    }
    json_t *doc = items && qc ? json_pack("{s:O, s:O}", "items", items, "qc", qc) : NULL;
    json_decref(items);
    json_decref(qc);
    if (doc)
        va_send_json(r, 200, doc);
    else
        va_send_error(r, 500, "internal", "out of memory");
}

/* ---- GET /api/v1/stats/recognition ---- */

typedef struct stats_state {
    int from, to, csv;
    enum rec_group group;
    va_denial d;
    json_t *doc;
    int rc;
} stats_state;

static void stats_work(va_req *r, redisContext *c)
{
    stats_state *st = r->state;
    if (!oversees(&r->who)) {
        va__deny(&st->d, 403, "forbidden",
                 "only admins, auditors and the office read recognition statistics");
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = rec_stats(c, r->srv->cfg, st->from, st->to, st->group, &st->doc);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

/* The total and each group as CSV rows (decision 0031). */
static void stats_csv(va_req *r, stats_state *st)
{
    static const char *const cols[] = {"lookups",          "accepts",          "rejections",
                                       "recognition_rate", "cost_avoided_fen", "cost_avoided_yuan"};
    const size_t n = sizeof(cols) / sizeof(cols[0]);
    hr_buf b;
    char name[64], f[11], t[11];
    va__csv_begin(&b);
    va__csv_str(&b, "group", 0);
    va__csv_str(&b, "key", 0);
    va__csv_str(&b, "name", 0);
    for (size_t i = 0; i < n; i++)
        va__csv_str(&b, cols[i], i + 1 == n);
    json_t *tot = json_object_get(st->doc, "total");
    va__csv_str(&b, "total", 0);
    va__csv_str(&b, "", 0);
    va__csv_str(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        va__csv_json(&b, json_object_get(tot, cols[i]), i + 1 == n);
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(st->doc, "groups"), k, g)
    {
        va__csv_json(&b, json_object_get(st->doc, "group"), 0);
        va__csv_json(&b, json_object_get(g, "key"), 0);
        va__csv_json(&b, json_object_get(g, "name"), 0);
        for (size_t i = 0; i < n; i++)
            va__csv_json(&b, json_object_get(g, cols[i]), i + 1 == n);
    }
    rec_day_iso(st->from, f);
    rec_day_iso(st->to, t);
    snprintf(name, sizeof(name), "huren-recognition-%s-%s", f, t);
    va__csv_send(r, &b, name);
    hr_buf_free(&b);
}

static void stats_done(va_req *r)
{
    stats_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "from=%d to=%d", st->from, st->to);
        if (answer_or_refuse(r, &st->d, st->rc, "recognition-stats", NULL, NULL, detail,
                             "statistics")) {
            va_audit(r, "recognition-stats", NULL, NULL, detail, "success");
            if (st->csv) {
                stats_csv(r, st);
            } else {
                va_send_json(r, 200, st->doc);
                st->doc = NULL;
            }
        }
    }
    json_decref(st->doc);
    free(st);
}

void va_handle_recognition_stats(va_req *r)
{
    static const char *const groups[] = {"none", "item", "center", "hospital", "month"};
    const char *f = va_param_get(r, "from"), *t = va_param_get(r, "to");
    const char *g = va_param_get(r, "group");
    int to = t ? rec_day_parse(t) : rec_day_of(hr_wall_ms());
    int from = f ? rec_day_parse(f) : rec_day_add(to, -(STATS_DEFAULT_DAYS - 1));
    int group = g ? -1 : REC_GROUP_NONE;
    for (int i = 0; g && i < 5; i++)
        if (strcmp(g, groups[i]) == 0)
            group = i;
    if (!from || !to || from > to || rec_day_add(from, REC_STATS_DAYS_MAX - 1) < to) {
        va_send_error(r, 400, "bad_request",
                      "from, to: dates YYYY-MM-DD, from <= to, at most %d days",
                      REC_STATS_DAYS_MAX);
        return;
    }
    if (group < 0) {
        va_send_error(r, 400, "bad_request", "group: item, center, hospital or month");
        return;
    }
    int csv = va__want_csv(r);
    if (csv < 0) {
        va_send_error(r, 400, "bad_request", "format: csv or json");
        return;
    }
    stats_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->csv = csv;
    st->from = from;
    st->to = to;
    st->group = (enum rec_group)group;
    r->state = st;
    va_req_run(r, stats_work, stats_done);
}
