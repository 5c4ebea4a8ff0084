/* What the reading workbench needs beside the report routes (issue 10,
 * decision 0034):
 *   GET /api/v1/report-templates[?modality=M]  the templates and phrase
 *       library of reports.templates / reports.phrases (readers, auditors)
 *   GET /api/v1/exams/{study}/priors  the other exams of the study's
 *       regional person (decision 0027) that the caller may see: the
 *       center's readers and auditors, admins
 * Both authenticate in the pool step; priors reads Redis there and is
 * audited like every read of patient data. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"
#include "../reports/person.h"
#include "../reports/report.h"
#include "../reports/rpt_config.h"
#include "../storage/index.h"
#include "../worklist/worklist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PRIORS_SCAN 200 /* newest studies of the person examined */
#define PRIORS_MAX  50  /* priors answered */

/* ---- GET /api/v1/report-templates ---- */

typedef struct tpl_state {
    char modality[17]; /* "" = all */
    va_denial d;
} tpl_state;

static void tpl_work(va_req *r, redisContext *c)
{
    tpl_state *st = r->state;
    (void)c;
    if (r->who.role != STO_ROLE_READER && r->who.role != STO_ROLE_AUDITOR)
        va__deny(&st->d, 403, "forbidden", "role %s writes no reports", sto_role_name(r->who.role));
}

/* 1 when entry e applies to modality m ("" = all; an entry without
 * modalities applies to every modality). */
static int applies(const json_t *e, const char *m)
{
    const json_t *mods = json_object_get(e, "modalities");
    if (!m[0] || json_array_size(mods) == 0)
        return 1;
    size_t i;
    const json_t *v;
    json_array_foreach(mods, i, v)
    {
        if (strcasecmp(json_string_value(v), m) == 0)
            return 1;
    }
    return 0;
}

static json_t *filtered(const json_t *arr, const char *m)
{
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (out && applies(e, m) && json_array_append((json_t *)out, (json_t *)e)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static void tpl_done(va_req *r)
{
    tpl_state *st = r->state;
    r->state = NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->d.status) {
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else {
        const struct rpt_config *rc = r->srv->cfg->reports;
        json_t *doc =
            json_pack("{s:o, s:o}", "templates", filtered(rc ? rc->templates : NULL, st->modality),
                      "phrases", filtered(rc ? rc->phrases : NULL, st->modality));
        if (doc)
            va_send_json(r, 200, doc);
        else
            va_send_error(r, 500, "internal", "out of memory");
    }
    free(st);
}

void va_handle_report_templates(va_req *r)
{
    const char *m = va_param_get(r, "modality");
    if (m && (!*m || !hr_cs_valid(m))) {
        va_send_error(r, 400, "bad_request", "modality: a DICOM modality (1-16 characters)");
        return;
    }
    tpl_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->modality, sizeof(st->modality), "%s", m ? m : "");
    r->state = st;
    va_req_run(r, tpl_work, tpl_done);
}

/* ---- GET /api/v1/exams/{study}/priors ---- */

typedef struct priors_state {
    char study[HR_UID_MAX];
    char patient[192];
    int have_item;
    char person[RPT_PERSON_ID_LEN + 1];
    va_denial d;
    json_t *priors;
    int rc;
} priors_state;

/* One prior: its index summary, worklist state and latest report. */
static json_t *prior_json(redisContext *c, const hr_config *cfg, const char *study,
                          const redisReply *st, const wl_item *it, int have_item)
{
    const char *f[6];
    for (int i = 0; i < 6; i++)
        f[i] = i < (int)st->elements && st->element[i]->type == REDIS_REPLY_STRING
                   ? st->element[i]->str
                   : "";
    const hr_hospital *ho = hr_config_hospital(cfg, f[1]);
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "study", va__jstr(study));
    json_object_set_new(o, "study_date", va__jstr(f[0]));
    json_object_set_new(o, "hospital", va__jstr(f[1]));
    json_object_set_new(o, "hospital_name", va__jstr(ho ? ho->name : ""));
    json_object_set_new(o, "accession", va__jstr(f[2]));
    json_object_set_new(o, "description", va__jstr(f[3]));
    json_object_set_new(o, "patient_name", va__jstr(f[4]));
    json_object_set_new(o, "instances", json_integer(strtoll(f[5], NULL, 10)));
    json_object_set_new(o, "modality", va__jstr(have_item ? it->modality : ""));
    json_object_set_new(o, "center", va__jstr(have_item ? it->center : ""));
    json_object_set_new(o, "state", have_item ? va__jstr(wl_state_name(it->state)) : json_null());
    char id[1][RPT_ID_MAX];
    enum rpt_status rs;
    const char *one[1] = {study};
    if (rpt_latest(c, one, 1, id, &rs) == 0 && id[0][0])
        json_object_set_new(o, "report",
                            json_pack("{s:s, s:s}", "id", id[0], "status", rpt_status_name(rs)));
    else
        json_object_set_new(o, "report", json_null());
    return o;
}

static void priors_work(va_req *r, redisContext *c)
{
    priors_state *st = r->state;
    const va_principal *w = &r->who;
    const hr_config *cfg = r->srv->cfg;
    wl_item *it = NULL;
    char(*studies)[HR_UID_MAX] = NULL;
    if (w->role != STO_ROLE_READER && w->role != STO_ROLE_AUDITOR && w->role != STO_ROLE_ADMIN) {
        va__deny(&st->d, 403, "forbidden", "role %s reads no exams", sto_role_name(w->role));
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = -ENOMEM;
    it = malloc(sizeof(*it));
    studies = calloc(PRIORS_SCAN, sizeof(*studies));
    st->priors = json_array();
    if (!it || !studies || !st->priors)
        goto out;
    st->rc = wl_get(c, st->study, it);
    if (st->rc == -EINVAL)
        st->rc = HR_ENOTFOUND;
    if (st->rc)
        goto out;
    /* another center's exam is answered like an absent one */
    if (w->role != STO_ROLE_ADMIN && strcmp(w->center, it->center) != 0) {
        st->rc = HR_ENOTFOUND;
        goto out;
    }
    snprintf(st->patient, sizeof(st->patient), "%s", it->patient);
    st->have_item = 1;
    if (!it->patient[0])
        goto done;
    st->rc = rpt_person_by_patient(c, it->patient, st->person);
    if (st->rc == HR_ENOTFOUND) {
        st->person[0] = '\0';
        goto done;
    }
    if (st->rc)
        goto out;
    int n = 0;
    st->rc = rpt_person_studies(c, st->person, PRIORS_SCAN, studies, &n);
    if (st->rc)
        goto out;
    for (int i = 0; i < n; i++) {
        if (strcmp(studies[i], st->study) == 0 || !dcm_uid_key_valid(studies[i]))
            continue;
        redisReply *sr = redisCommand(c,
                                      "HMGET hr:{%s}:st date hospital accession description "
                                      "patient_name instances",
                                      studies[i]);
        if (!sr || sr->type != REDIS_REPLY_ARRAY || sr->elements != 6) {
            freeReplyObject(sr);
            st->rc = HR_EREDIS;
            goto out;
        }
        const char *hosp = sr->element[1]->type == REDIS_REPLY_STRING ? sr->element[1]->str : "";
        int ok = sto_scope_allows_study(c, &r->scope, studies[i], hosp);
        if (ok < 0) {
            freeReplyObject(sr);
            st->rc = HR_EREDIS;
            goto out;
        }
        /* exams the caller may not see are left out, unmentioned */
        if (!ok || json_array_size(st->priors) >= PRIORS_MAX) {
            freeReplyObject(sr);
            continue;
        }
        wl_item *p = malloc(sizeof(*p));
        int have = p && wl_get(c, studies[i], p) == 0;
        json_t *o = p ? prior_json(c, cfg, studies[i], sr, p, have) : NULL;
        free(p);
        freeReplyObject(sr);
        if (!o || json_array_append_new(st->priors, o)) {
            st->rc = -ENOMEM;
            goto out;
        }
    }
done:
    st->rc = 0;
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
    free(it);
    free(studies);
}

static void priors_done(va_req *r)
{
    priors_state *st = r->state;
    r->state = NULL;
    char detail[160];
    snprintf(detail, sizeof(detail), "priors person=%s", st->person[0] ? st->person : "-");
    const char *patient = st->have_item ? st->patient : NULL;
    if (va_req_gone(r)) {
        /* nothing */
    } else if (st->d.status) {
        va_audit(r, "exam-priors", NULL, st->study, st->d.detail, "denied");
        va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
    } else if (st->rc) {
        va_audit(r, "exam-priors", patient, st->study, detail,
                 st->rc == HR_ENOTFOUND ? "denied" : "failure");
        va_send_rc(r, st->rc, "exam");
    } else {
        va_audit(r, "exam-priors", patient, st->study, detail, "success");
        json_t *doc =
            json_pack("{s:s, s:o, s:O}", "study", st->study, "person",
                      st->person[0] ? va__jstr(st->person) : json_null(), "priors", st->priors);
        if (doc)
            va_send_json(r, 200, doc);
        else
            va_send_error(r, 500, "internal", "out of memory");
    }
    json_decref(st->priors);
    free(st);
}

void va_handle_exam_priors(va_req *r)
{
    const char *study = r->segs[0];
    if (!dcm_uid_valid(study)) {
        va_send_error(r, 400, "bad_uid", "the exam: a Study Instance UID");
        return;
    }
    priors_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->study, sizeof(st->study), "%s", study);
    r->state = st;
    va_req_run(r, priors_work, priors_done);
}
