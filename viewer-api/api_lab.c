/* Lab reports as FHIR R4 (decision 0035), over reports/lab.h:
 *   GET /api/v1/lab-reports?patient=<issuer|id> | person=<id> | hospital=<id>
 *        [&limit=&cursor=]
 *        a Bundle (searchset) of DiagnosticReport, newest first, paged
 *   GET /api/v1/lab-reports/{uid}
 *        one DiagnosticReport
 * Each DiagnosticReport carries its Observations as contained resources
 * (result references "#obs-<n>"). Scope as for studies (storage/access.h:
 * the sending hospital, the lab center it was routed to, recognition
 * grants, admin); anything else is 404, like an absent report. Audited. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"
#include "../reports/lab.h"
#include "../reports/person.h"
#include "../storage/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAB_PAGE_DEFAULT 20
#define LAB_PAGE_MAX     100
#define LAB_SCAN_MAX     500 /* index members examined per request, at most */
#define LAB_CURSOR_MAX   1000000
/* Observation extension: a value a correction replaced (decision 0035) */
#define LAB_SUPERSEDED_URL "urn:huren:fhir:lab-superseded-value"

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* HL7 TS (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) -> FHIR dateTime; "" when
 * not a date. A time without a zone gets the server's local offset (FHIR
 * requires a zone with a time). */
static void fhir_time(const char *ts, char *out, size_t cap)
{
    size_t n = strspn(ts, "0123456789");
    const char *zone = ts + n;
    char z[8] = "";
    out[0] = 0;
    if (*zone == '.') {
        zone++;
        zone += strspn(zone, "0123456789");
    }
    if ((*zone == '+' || *zone == '-') && strspn(zone + 1, "0123456789") == 4)
        snprintf(z, sizeof(z), "%c%.2s:%.2s", zone[0], zone + 1, zone + 3);
    if (n < 4)
        return;
    if (n < 8) {
        snprintf(out, cap, "%.4s", ts);
        return;
    }
    if (n < 12) {
        snprintf(out, cap, "%.4s-%.2s-%.2s", ts, ts + 4, ts + 6);
        return;
    }
    if (!z[0]) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        long off = tm.tm_gmtoff / 60;
        snprintf(z, sizeof(z), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 60,
                 labs(off) % 60);
    }
    snprintf(out, cap, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%s", ts, ts + 4, ts + 6, ts + 8, ts + 10,
             n >= 14 ? ts + 12 : "00", z);
}

static void fhir_instant(long long ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* OBX-11 (table 0085) -> Observation.status. */
static const char *obs_status(const char *s)
{
    switch (s[0]) {
    case 'C':
        return "corrected";
    case 'P':
    case 'R':
    case 'S':
        return "preliminary";
    case 'D':
    case 'W':
        return "entered-in-error";
    case 'X':
        return "cancelled";
    case 'I':
        return "registered";
    default:
        return "final";
    }
}

/* OBR-25 (table 0123) -> DiagnosticReport.status. */
static const char *report_status(const char *s)
{
    switch (s[0]) {
    case 'C':
        return "corrected";
    case 'P':
    case 'R':
        return "preliminary";
    case 'A':
        return "partial";
    case 'X':
        return "cancelled";
    case 'I':
    case 'O':
    case 'S':
        return "registered";
    case 'F':
        return "final";
    default:
        return "unknown";
    }
}

/* {coding: [{system, code, display}], text}: LN is LOINC. */
static json_t *concept(const json_t *c, const char *hospital)
{
    const char *sys = jstr(c, "system");
    char local[HR_ID_MAX + 96];
    if (!strcmp(sys, "LN"))
        snprintf(local, sizeof(local), "http://loinc.org");
    else if (*sys)
        snprintf(local, sizeof(local), "urn:huren:code-system:%s", sys);
    else
        snprintf(local, sizeof(local), "urn:huren:code-system:local:%s", hospital);
    json_t *coding = json_pack("{s:s, s:s}", "system", local, "code", jstr(c, "code"));
    if (coding && *jstr(c, "display"))
        json_object_set_new(coding, "display", json_string(jstr(c, "display")));
    return json_pack("{s:[o], s:s}", "coding", coding, "text",
                     *jstr(c, "display") ? jstr(c, "display") : jstr(c, "code"));
}

static json_t *quantity(double v, const char *unit)
{
    json_t *q = json_pack("{s:f}", "value", v);
    if (q && *unit)
        json_object_set_new(q, "unit", json_string(unit));
    return q;
}

static json_t *observation(const json_t *o, int n, const char *hospital)
{
    char id[32], t[40];
    const char *type = jstr(o, "type"), *unit = jstr(o, "unit");
    snprintf(id, sizeof(id), "obs-%d", n);
    json_t *ob = json_pack("{s:s, s:s, s:s, s:o}", "resourceType", "Observation", "id", id,
                           "status", obs_status(jstr(o, "status")), "code",
                           concept(json_object_get(o, "code"), hospital));
    if (!ob)
        return NULL;
    json_t *num = json_object_get(o, "num");
    if ((!strcmp(type, "NM") || !strcmp(type, "SN")) && num) {
        json_t *q = quantity(json_number_value(num), unit);
        const char *cmp = jstr(o, "comparator");
        if (!strcmp(cmp, "<") || !strcmp(cmp, "<=") || !strcmp(cmp, ">=") || !strcmp(cmp, ">"))
            json_object_set_new(q, "comparator", json_string(cmp));
        json_object_set_new(ob, "valueQuantity", q);
    } else if (!strcmp(type, "CE") || !strcmp(type, "CWE")) {
        json_object_set_new(ob, "valueCodeableConcept",
                            concept(json_object_get(o, "coded"), hospital));
    } else if (*jstr(o, "value")) {
        json_object_set_new(ob, "valueString", json_string(jstr(o, "value")));
    }
    json_t *low = json_object_get(o, "low"), *high = json_object_get(o, "high");
    if (low || high || *jstr(o, "range")) {
        json_t *rr = json_object();
        if (low)
            json_object_set_new(rr, "low", quantity(json_number_value(low), unit));
        if (high)
            json_object_set_new(rr, "high", quantity(json_number_value(high), unit));
        if (*jstr(o, "range"))
            json_object_set_new(rr, "text", json_string(jstr(o, "range")));
        json_object_set_new(ob, "referenceRange", json_pack("[o]", rr));
    }
    json_t *flags = json_object_get(o, "flags"), *f;
    size_t i;
    if (json_array_size(flags)) {
        json_t *codings = json_array();
        json_array_foreach(flags, i, f)
        {
            json_array_append_new(
                codings,
                json_pack("{s:s, s:s}", "system",
                          "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                          "code", json_string_value(f)));
        }
        json_object_set_new(ob, "interpretation", json_pack("[{s:o}]", "coding", codings));
    }
    fhir_time(jstr(o, "time"), t, sizeof(t));
    if (*t)
        json_object_set_new(ob, "effectiveDateTime", json_string(t));
    json_t *rx = json_object_get(o, "received_ms");
    if (json_is_integer(rx)) {
        fhir_instant(json_integer_value(rx), t, sizeof(t));
        json_object_set_new(ob, "issued", json_string(t));
    }
    if (*jstr(o, "performer"))
        json_object_set_new(ob, "performer", json_pack("[{s:s}]", "display", jstr(o, "performer")));
    /* the values this one replaced (corrections), oldest first: a complex
       extension per earlier version {value (as shown, with unit), status, time} */
    json_t *hist = json_object_get(o, "history"), *hv;
    if (json_array_size(hist)) {
        json_t *ext = json_array();
        json_array_foreach(hist, i, hv)
        {
            char shown[512];
            const char *v = jstr(hv, "value"), *u = jstr(hv, "unit");
            snprintf(shown, sizeof(shown), "%s%s%s", v, *u ? " " : "", u);
            json_t *parts =
                json_pack("[{s:s, s:s}, {s:s, s:s}]", "url", "value", "valueString", shown, "url",
                          "status", "valueCode", obs_status(jstr(hv, "status")));
            fhir_time(jstr(hv, "time"), t, sizeof(t));
            if (parts && *t)
                json_array_append_new(parts,
                                      json_pack("{s:s, s:s}", "url", "time", "valueDateTime", t));
            json_array_append_new(
                ext, json_pack("{s:s, s:o}", "url", LAB_SUPERSEDED_URL, "extension", parts));
        }
        json_object_set_new(ob, "extension", ext);
    }
    return ob;
}

/* The lab report (internal JSON) as a FHIR DiagnosticReport. */
static json_t *diagnostic_report(const hr_config *cfg, const json_t *rep)
{
    const char *hospital = jstr(rep, "hospital");
    const hr_hospital *h = hr_config_hospital(cfg, hospital);
    const json_t *pt = json_object_get(rep, "patient");
    char t[40];
    json_t *dr =
        json_pack("{s:s, s:s, s:s, s:[{s:[{s:s, s:s}]}], s:o}", "resourceType", "DiagnosticReport",
                  "id", jstr(rep, "uid"), "status", report_status(jstr(rep, "status")), "category",
                  "coding", "system", "http://terminology.hl7.org/CodeSystem/v2-0074", "code",
                  "LAB", "code", concept(json_object_get(rep, "code"), hospital));
    if (!dr)
        return NULL;
    json_t *ids = json_array();
    json_array_append_new(
        ids, json_pack("{s:s, s:s}", "system", "urn:dicom:uid", "value", jstr(rep, "uid")));
    if (*jstr(rep, "placer"))
        json_array_append_new(ids,
                              json_pack("{s:{s:[{s:s, s:s}]}, s:s}", "type", "coding", "system",
                                        "http://terminology.hl7.org/CodeSystem/v2-0203", "code",
                                        "PLAC", "value", jstr(rep, "placer")));
    if (*jstr(rep, "filler"))
        json_array_append_new(ids,
                              json_pack("{s:{s:[{s:s, s:s}]}, s:s}", "type", "coding", "system",
                                        "http://terminology.hl7.org/CodeSystem/v2-0203", "code",
                                        "FILL", "value", jstr(rep, "filler")));
    json_object_set_new(dr, "identifier", ids);
    char sys[HR_NAME_MAX + 32];
    snprintf(sys, sizeof(sys), "urn:huren:patient-id:%s", jstr(pt, "issuer"));
    json_object_set_new(dr, "subject",
                        json_pack("{s:{s:s, s:s}, s:s}", "identifier", "system", sys, "value",
                                  jstr(pt, "id"), "display", jstr(pt, "name")));
    fhir_time(jstr(rep, "observed"), t, sizeof(t));
    if (*t)
        json_object_set_new(dr, "effectiveDateTime", json_string(t));
    fhir_time(jstr(rep, "issued"), t, sizeof(t));
    if (!*t && json_is_integer(json_object_get(rep, "updated_ms")))
        fhir_instant(json_integer_value(json_object_get(rep, "updated_ms")), t, sizeof(t));
    if (*t)
        json_object_set_new(dr, "issued", json_string(t));
    json_object_set_new(dr, "performer", json_pack("[{s:s}]", "display", h ? h->name : hospital));
    json_t *contained = json_array(), *results = json_array(), *o;
    size_t i;
    char ref[32];
    json_array_foreach(json_object_get(rep, "obs"), i, o)
    {
        snprintf(ref, sizeof(ref), "#obs-%zu", i + 1);
        json_array_append_new(contained, observation(o, (int)i + 1, hospital));
        json_array_append_new(results, json_pack("{s:s}", "reference", ref));
    }
    json_object_set_new(dr, "contained", contained);
    json_object_set_new(dr, "result", results);
    return dr;
}

/* ---- GET /api/v1/lab-reports/{uid} ---- */

typedef struct one_state {
    char uid[HR_UID_MAX];
    char patient[STO_PKEY_MAX];
    json_t *doc;
    int rc;
} one_state;

static void one_work(va_req *r, redisContext *c)
{
    one_state *st = r->state;
    json_t *rep = NULL;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = lab_get(c, st->uid, &rep);
    if (!st->rc) {
        int ok = sto_scope_allows_study(c, &r->scope, st->uid, jstr(rep, "hospital"));
        if (ok < 0)
            st->rc = HR_EREDIS;
        else if (!ok)
            st->rc = HR_ENOTFOUND; /* another's: as absent */
        else {
            snprintf(st->patient, sizeof(st->patient), "%s",
                     jstr(json_object_get(rep, "patient"), "key"));
            st->doc = diagnostic_report(r->srv->cfg, rep);
            st->rc = st->doc ? 0 : -ENOMEM;
        }
    }
    json_decref(rep);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void one_done(va_req *r)
{
    one_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        va_audit(r, "lab-report", st->patient[0] ? st->patient : NULL, st->uid, NULL,
                 st->rc == HR_ENOTFOUND ? "denied"
                 : st->rc               ? "failure"
                                        : "success");
        if (st->rc == HR_ENOTFOUND)
            va_send_error(r, 404, "not_found", "no such lab report");
        else if (st->rc)
            va_send_rc(r, st->rc, "lab report");
        else {
            va_send_json_type(r, 200, "application/fhir+json", st->doc);
            st->doc = NULL;
        }
    }
    json_decref(st->doc);
    free(st);
}

void va_handle_lab_report(va_req *r)
{
    if (!dcm_uid_key_valid(r->segs[0])) {
        va_send_error(r, 404, "not_found", "no such lab report");
        return;
    }
    one_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->uid, sizeof(st->uid), "%s", r->segs[0]);
    r->state = st;
    va_req_run(r, one_work, one_done);
}

/* ---- GET /api/v1/lab-reports ---- */

typedef struct list_state {
    char key[STO_PKEY_MAX + 64]; /* the index set */
    char what[STO_PKEY_MAX + 16];
    char hospital[HR_ID_MAX]; /* hospital=: "" when not; "me" until resolved */
    int denied;               /* another's or an unknown hospital: 404 */
    long cursor, limit, next;
    json_t *entries;
    int rc;
} list_state;

static void list_work(va_req *r, redisContext *c)
{
    list_state *st = r->state;
    long pos = st->cursor, seen = 0, card = 0;
    st->next = -1;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (st->hospital[0]) {
        /* a hospital's own list (its staff) or an admin's; another's or an
           unknown hospital looks absent */
        char hpart[3 * HR_ID_MAX + 1];
        if (!strcmp(st->hospital, "me"))
            snprintf(st->hospital, sizeof(st->hospital), "%s", r->who.hospital);
        if (!hr_config_hospital(r->srv->cfg, st->hospital) ||
            !sto_scope_allows(&r->scope, st->hospital)) {
            st->denied = 1;
            return;
        }
        sto_key_part(st->hospital, hpart, sizeof(hpart));
        snprintf(st->key, sizeof(st->key), "hr:lab:ix:hosp:%s", hpart);
        snprintf(st->what, sizeof(st->what), "hospital:%s", st->hospital);
    }
    redisReply *n = redisCommand(c, "ZCARD %s", st->key);
    if (!n || n->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(n);
        st->rc = HR_EREDIS;
        goto out;
    }
    card = (long)n->integer;
    freeReplyObject(n);
    /* bounded: at most LAB_SCAN_MAX members examined, whatever is visible */
    while (!st->rc && json_array_size(st->entries) < (size_t)st->limit && seen < LAB_SCAN_MAX &&
           pos < card) {
        long batch = LAB_SCAN_MAX - seen < 50 ? LAB_SCAN_MAX - seen : 50;
        redisReply *z = redisCommand(c, "ZREVRANGE %s %ld %ld", st->key, pos, pos + batch - 1);
        if (!z || z->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(z);
            st->rc = HR_EREDIS;
            break;
        }
        if (z->elements == 0)
            card = pos; /* shrank meanwhile */
        for (size_t i = 0; i < z->elements && json_array_size(st->entries) < (size_t)st->limit;
             i++) {
            json_t *rep = NULL;
            const char *uid = z->element[i]->str;
            pos++;
            seen++;
            int rc = z->element[i]->type == REDIS_REPLY_STRING ? lab_get(c, uid, &rep) : -EINVAL;
            if (rc == HR_EREDIS) {
                st->rc = rc;
                break;
            }
            if (rc)
                continue;
            int ok = sto_scope_allows_study(c, &r->scope, uid, jstr(rep, "hospital"));
            if (ok < 0)
                st->rc = HR_EREDIS;
            else if (ok)
                json_array_append_new(st->entries, json_pack("{s:o, s:{s:s}}", "resource",
                                                             diagnostic_report(r->srv->cfg, rep),
                                                             "search", "mode", "match"));
            json_decref(rep);
        }
        freeReplyObject(z);
    }
    st->next = pos < card ? pos : -1;
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void list_done(va_req *r)
{
    list_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "results=%zu", json_array_size(st->entries));
        va_audit(r, "lab-reports", st->what[0] ? st->what : NULL, NULL, detail,
                 st->denied ? "denied"
                 : st->rc   ? "failure"
                            : "success");
        if (st->denied)
            va_send_error(r, 404, "not_found", "no such hospital");
        else if (st->rc)
            va_send_rc(r, st->rc, "lab reports");
        else {
            json_t *b = json_pack("{s:s, s:s, s:o}", "resourceType", "Bundle", "type", "searchset",
                                  "entry", st->entries);
            st->entries = NULL;
            if (b && st->next >= 0 && st->next < LAB_CURSOR_MAX) {
                char next[32];
                snprintf(next, sizeof(next), "%ld", st->next);
                json_object_set_new(b, "next_cursor", json_string(next));
            }
            if (b)
                va_send_json_type(r, 200, "application/fhir+json", b);
            else
                va_send_error(r, 500, "internal", "out of memory");
        }
    }
    json_decref(st->entries);
    free(st);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (!s || !*s)
        return 0;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

void va_handle_lab_reports(va_req *r)
{
    const char *patient = va_param_get(r, "patient"), *person = va_param_get(r, "person");
    list_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->limit = LAB_PAGE_DEFAULT;
    if (parse_long(va_param_get(r, "limit"), 1, LAB_PAGE_MAX, &st->limit) ||
        parse_long(va_param_get(r, "cursor"), 0, LAB_CURSOR_MAX, &st->cursor)) {
        va_send_error(r, 400, "bad_request", "limit: 1..%d; cursor: a next_cursor value",
                      LAB_PAGE_MAX);
        goto fail;
    }
    const char *hospital = va_param_get(r, "hospital");
    if (((patient && *patient) + (person && *person) + (hospital && *hospital)) != 1) {
        va_send_error(r, 400, "bad_request",
                      "give exactly one of patient=<issuer|id>, person=<id>, hospital=<id>");
        goto fail;
    }
    if (hospital && *hospital) {
        /* resolved and checked in the pool step (list_work), where the
           caller's scope is known */
        if (strlen(hospital) >= sizeof(st->hospital)) {
            va_audit(r, "lab-reports", NULL, NULL, "hospital", "denied");
            va_send_error(r, 404, "not_found", "no such hospital");
            goto fail;
        }
        snprintf(st->hospital, sizeof(st->hospital), "%s", hospital);
    } else if (patient && *patient) {
        char issuer[256], pkey[STO_PKEY_MAX];
        const char *bar = strchr(patient, '|');
        size_t n = bar ? (size_t)(bar - patient) : 0;
        if (!bar || n == 0 || n >= sizeof(issuer) || !bar[1]) {
            va_send_error(r, 400, "bad_request", "patient: <issuer>|<patient id>");
            goto fail;
        }
        memcpy(issuer, patient, n);
        issuer[n] = 0;
        if (rpt_patient_key(issuer, "", bar + 1, pkey)) {
            va_send_error(r, 400, "bad_request", "patient: each part at most 64 characters");
            goto fail;
        }
        snprintf(st->key, sizeof(st->key), "hr:lab:ix:pt:%s", pkey);
        snprintf(st->what, sizeof(st->what), "%s", pkey);
    } else {
        if (!rpt_person_id_valid(person)) {
            va_send_error(r, 400, "bad_request", "person: \"p\" and 24 hex digits");
            goto fail;
        }
        snprintf(st->key, sizeof(st->key), "hr:person:{%s}:lab", person);
        snprintf(st->what, sizeof(st->what), "person:%s", person);
    }
    st->entries = json_array();
    if (!st->entries) {
        va_send_error(r, 500, "internal", "out of memory");
        goto fail;
    }
    r->state = st;
    va_req_run(r, list_work, list_done);
    return;
fail:
    free(st);
}
