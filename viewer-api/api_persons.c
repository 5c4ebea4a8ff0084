/* Regional persons (decision 0027), over reports/person.h:
 *   POST /api/v1/persons/link   {hospital, patient_id, issuer, id_type, id}
 *        admin, or a technician of that hospital for a patient with a study
 *        the hospital owns
 *   GET  /api/v1/persons/{id}   admin: the linked patients and their studies
 * No response, log line or audit record holds an ID number in clear. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../reports/person.h"
#include "../storage/keys.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERSON_STUDIES_MAX 200 /* studies listed by GET /api/v1/persons/{id} */
#define OWNED_CHECK_MAX    50  /* newest studies of a patient checked for the hospital */

/* ---- POST /api/v1/persons/link ---- */

typedef struct link_state {
    char hospital[HR_ID_MAX];
    char pkey[STO_PKEY_MAX];
    enum rpt_id_type type;
    char hmac[65];
    va_denial d;
    rpt_link_result res;
    int rc;
} link_state;

/* 1 when one of the patient's newest studies is owned by hospital; 0; or
 * HR_EREDIS; HR_ENOTFOUND when the patient is not in the index. */
static int patient_of_hospital(redisContext *c, const char *pkey, const char *hospital)
{
    redisReply *r = redisCommand(c, "ZREVRANGE hr:pt:%s:st 0 %d", pkey, OWNED_CHECK_MAX - 1);
    int rc = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    if (r->elements == 0) {
        freeReplyObject(r);
        return HR_ENOTFOUND;
    }
    for (size_t i = 0; i < r->elements; i++)
        redisAppendCommand(c, "HGET hr:{%s}:st hospital", r->element[i]->str);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *h = NULL;
        if (redisGetReply(c, (void **)&h) != REDIS_OK) {
            rc = HR_EREDIS;
            break;
        }
        if (rc == 0 && h->type == REDIS_REPLY_STRING && strcmp(h->str, hospital) == 0)
            rc = 1;
        freeReplyObject(h);
    }
    freeReplyObject(r);
    return rc;
}

static void link_work(va_req *r, redisContext *c)
{
    link_state *st = r->state;
    const va_principal *w = &r->who;
    if (w->role != STO_ROLE_ADMIN && w->role != STO_ROLE_TECHNICIAN) {
        va__deny(&st->d, 403, "forbidden", "role %s may not link persons", sto_role_name(w->role));
        return;
    }
    if (w->role == STO_ROLE_TECHNICIAN && strcmp(w->hospital, st->hospital) != 0) {
        /* another hospital's patient: as absent */
        va__deny(&st->d, 404, "not_found", "no such patient");
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    int own = patient_of_hospital(c, st->pkey, st->hospital);
    if (own == HR_EREDIS) {
        st->rc = HR_EREDIS;
        sto_worker_redis_failed();
        return;
    }
    if (own == HR_ENOTFOUND || (own == 0 && w->role == STO_ROLE_TECHNICIAN)) {
        va__deny(&st->d, 404, "not_found", "no such patient");
        return;
    }
    st->rc = rpt_person_link(c, st->pkey, st->type, st->hmac, hr_wall_ms(), &st->res);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void link_done(va_req *r)
{
    link_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[160];
        snprintf(detail, sizeof(detail), "hospital=%s id_type=%s person=%s%s", st->hospital,
                 rpt_id_type_name(st->type), st->res.person[0] ? st->res.person : "-",
                 st->res.created ? " (new)" : "");
        if (st->d.status) {
            va_audit(r, "persons-link", st->pkey, NULL, detail, "denied");
            va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
        } else if (st->rc == -EEXIST) {
            va_audit(r, "persons-link", st->pkey, NULL, detail, "failure");
            va_send_error(r, 409, "conflict",
                          "the patient, or the person's number of this type, is linked to "
                          "another person");
        } else if (st->rc == HR_ETOOBIG) {
            va_audit(r, "persons-link", st->pkey, NULL, detail, "failure");
            va_send_error(r, 409, "too_many_patients", "the person has %d linked patients",
                          RPT_PERSON_PTS_MAX);
        } else if (st->rc) {
            va_audit(r, "persons-link", st->pkey, NULL, detail, "failure");
            va_send_rc(r, st->rc, "link");
        } else {
            va_audit(r, "persons-link", st->pkey, NULL, detail, "success");
            json_t *doc =
                json_pack("{s:s, s:s, s:b, s:b, s:I}", "person", st->res.person, "patient",
                          st->pkey, "created", st->res.created, "linked", st->res.linked,
                          "studies_added", (json_int_t)st->res.studies_added);
            if (doc)
                va_send_json(r, st->res.created ? 201 : 200, doc);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    OPENSSL_cleanse(st, sizeof(*st));
    free(st);
}

/* A string member, "" when absent; NULL when present but not a string. */
static const char *member(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return !v ? "" : json_is_string(v) ? json_string_value(v) : NULL;
}

void va_handle_persons_link(va_req *r)
{
    const pix_config *p = r->srv->cfg->persons;
    va_iovec body = va_body(r);
    json_error_t je;
    char norm[RPT_ID_NUMBER_MAX];
    json_t *doc =
        body.len <= 4096 ? json_loadb(body.base ? body.base : "", body.len, 0, &je) : NULL;
    const char *hospital = doc ? member(doc, "hospital") : NULL;
    const char *pid = doc ? member(doc, "patient_id") : NULL;
    const char *issuer = doc ? member(doc, "issuer") : NULL;
    const char *type = doc ? member(doc, "id_type") : NULL;
    const char *id = doc ? member(doc, "id") : NULL;
    int t = type ? rpt_id_type_parse(type) : -1;
    link_state *st = NULL;
    if (!json_is_object(doc) || !hospital || !pid || !issuer || !type || !id || !*hospital ||
        !*pid || t < 0) {
        va_send_error(r, 400, "bad_request",
                      "expected a JSON body {\"hospital\", \"patient_id\", \"issuer\" (optional), "
                      "\"id_type\": \"national_id\" | \"health_card\", \"id\"}");
        goto out;
    }
    if (!hr_config_hospital(r->srv->cfg, hospital)) {
        va_send_error(r, 400, "bad_request", "hospital: not one of the configured hospitals");
        goto out;
    }
    if (rpt_id_normalize((enum rpt_id_type)t, id, norm, sizeof(norm))) {
        va_send_error(r, 400, "bad_id",
                      t == RPT_ID_NATIONAL
                          ? "id: not a national ID number (17 digits and the check character)"
                          : "id: not a health card number (4-32 of A-Z, 0-9, '-')");
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        goto out;
    }
    if (rpt_patient_key(hospital, issuer, pid, st->pkey)) {
        va_send_error(r, 400, "bad_request", "patient_id and issuer: at most 64 characters each");
        goto out;
    }
    if (rpt_id_hmac(p, (enum rpt_id_type)t, norm, st->hmac)) {
        va_send_error(r, 503, "persons_unavailable", "the person-id key is not loaded");
        goto out;
    }
    snprintf(st->hospital, sizeof(st->hospital), "%s", hospital);
    st->type = (enum rpt_id_type)t;
    r->state = st;
    st = NULL;
    va_req_run(r, link_work, link_done);
out:
    OPENSSL_cleanse(norm, sizeof(norm));
    free(st);
    json_decref(doc);
}

/* ---- GET /api/v1/persons/{id} ---- */

typedef struct person_state {
    char person[RPT_PERSON_ID_LEN + 1];
    va_denial d;
    json_t *doc;
    int rc;
} person_state;

static void person_work(va_req *r, redisContext *c)
{
    person_state *st = r->state;
    if (r->who.role != STO_ROLE_ADMIN) {
        va__deny(&st->d, 403, "forbidden", "only an admin may read persons");
        return;
    }
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = rpt_person_json(c, st->person, PERSON_STUDIES_MAX, &st->doc);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void person_done(va_req *r)
{
    person_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        const char *outcome = st->d.status ? "denied" : st->rc ? "failure" : "success";
        va_audit(r, "persons", st->person, NULL, NULL, outcome);
        if (st->d.status)
            va_send_error(r, st->d.status, st->d.code, "%s", st->d.detail);
        else if (st->rc)
            va_send_rc(r, st->rc, "person");
        else {
            va_send_json(r, 200, st->doc);
            st->doc = NULL;
        }
    }
    json_decref(st->doc);
    free(st);
}

void va_handle_person(va_req *r)
{
    if (!rpt_person_id_valid(r->segs[0])) {
        va_send_error(r, 400, "bad_request", "not a person id (\"p\" and 24 hex digits)");
        return;
    }
    person_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->person, sizeof(st->person), "%s", r->segs[0]);
    r->state = st;
    va_req_run(r, person_work, person_done);
}
