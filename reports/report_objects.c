/* DICOM objects of a report version (report_objects.h, decision 0025): the
 * payload is mapped onto dcm_report_obj, each value bounded to its VR. */
#include "report_objects.h"

#include "render_pdf.h"

#include "../common/hr_err.h"
#include "../dicom/dcmtk_shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIPELINE 256 /* index reads in flight */

int rpt_obj_uids(const char *report_id, int version, enum rpt_obj_kind kind,
                 char series[RPT_OBJ_UID_MAX], char sop[RPT_OBJ_UID_MAX])
{
    const char *k = kind == RPT_OBJ_SR ? "sr" : "pdf";
    char *name;
    int n, rc = 0;

    if (!report_id || !report_id[0] || version < 1 || strlen(report_id) > 4096)
        return -EINVAL;
    name = malloc(strlen(report_id) + 64);
    if (!name)
        return -ENOMEM;
    n = sprintf(name, "huren-report-object\n%s\n%s", k, report_id);
    if (series)
        rc = dcm_uid_named(name, (size_t)n, series, RPT_OBJ_UID_MAX);
    n += sprintf(name + n, "\n%d", version);
    if (!rc && sop)
        rc = dcm_uid_named(name, (size_t)n, sop, RPT_OBJ_UID_MAX);
    free(name);
    return rc;
}

/* ---- the payload ---- */

static const char *jstr(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

/* Copies at most max_chars UTF-8 characters of src into dst (cap bytes),
 * never splitting one, with backslashes (the value separator) and control
 * characters made spaces: a single value of a short VR (PS3.5 6.2). */
static void clip(char *dst, size_t cap, const char *src, size_t max_chars)
{
    size_t i = 0, o = 0, chars = 0;

    while (src[i] && chars < max_chars) {
        size_t len = 1;
        unsigned char c = (unsigned char)src[i];
        if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        if (o + len >= cap)
            break;
        for (size_t j = 1; j < len; j++)
            if (!src[i + j]) /* truncated sequence: stop */
                goto out;
        if (len == 1)
            dst[o++] = (c == '\\' || c < 0x20 || c == 0x7F) ? ' ' : (char)c;
        else
            memcpy(dst + o, src + i, len), o += len;
        i += len;
        chars++;
    }
out:
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* "YYYYMMDD" when s is 8 digits, else "". */
static void clip_date(char *dst, const char *s)
{
    if (strlen(s) == 8 && strspn(s, "0123456789") == 8)
        memcpy(dst, s, 9);
    else
        dst[0] = '\0';
}

#define LO 64 /* characters of LO, of a PN component group */

typedef struct obj_text {
    char patient_name[LO * 4 + 1], patient_id[LO * 4 + 1], issuer[LO * 4 + 1];
    char birth[9], sex[2], study_date[9], accession[16 * 4 + 1];
    char institution[LO * 4 + 1], department[LO * 4 + 1], title[LO * 4 + 1];
    char author[LO * 4 + 1], verifier[LO * 4 + 1], verifier_org[LO * 4 + 1];
    char content_date[9], content_time[7], verify_dt[24];
    char comment[512];
    char series[RPT_OBJ_UID_MAX], sop[RPT_OBJ_UID_MAX], predecessor[RPT_OBJ_UID_MAX];
} obj_text;

static const char *hospital_name(const hr_config *cfg, const char *id)
{
    const hr_hospital *h = cfg && id[0] ? hr_config_hospital(cfg, id) : NULL;
    return h ? h->name : id;
}

/* 1 for the status of a signed version. */
static int signed_status(const char *s)
{
    static const char *const k[] = {"preliminary", "final", "amended", "corrected",
                                    "entered-in-error"};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (!strcmp(s, k[i]))
            return 1;
    return 0;
}

/* Maps payload onto o (its strings in t). 0 or -EINVAL. */
static int fill(const hr_config *cfg, const json_t *p, enum rpt_obj_kind kind, dcm_report_obj *o,
                obj_text *t)
{
    const json_t *rep = json_object_get(p, "report"), *exam = json_object_get(p, "exam");
    const json_t *pt = json_object_get(p, "patient"), *content = json_object_get(p, "content");
    const json_t *signers = json_object_get(p, "signers"), *sup, *verifier = NULL;
    const char *status, *id, *sex;
    json_int_t version;
    const hr_center *center;
    struct tm tm;
    char title[sizeof(t->title) + 64];
    size_t i;
    int rc;

    memset(o, 0, sizeof(*o));
    memset(t, 0, sizeof(*t));
    if (!json_is_object(p) || strcmp(jstr(p, "typ"), "huren-report") != 0 ||
        json_integer_value(json_object_get(p, "schema")) != 1 || !json_is_object(rep) ||
        !json_is_object(exam) || !json_is_object(pt) || !json_is_object(content) ||
        !json_is_array(signers))
        return -EINVAL;
    id = jstr(rep, "id");
    status = jstr(rep, "status");
    version = json_integer_value(json_object_get(rep, "version"));
    if (!id[0] || version < 1 || version > 1000000 || !signed_status(status))
        return -EINVAL;
    rc = rpt_obj_uids(id, (int)version, kind, t->series, t->sop);
    if (rc)
        return rc;
    o->series_uid = t->series;
    o->sop_uid = t->sop;
    o->series_number = kind == RPT_OBJ_SR ? RPT_OBJ_SR_SERIES : RPT_OBJ_PDF_SERIES;
    o->instance_number = (int)version;

    /* patient and study, as the exam has them */
    o->study_uid = jstr(exam, "study_uid");
    if (!dcm_uid_valid(o->study_uid))
        return -EINVAL;
    clip(t->patient_name, sizeof(t->patient_name), jstr(pt, "name"), LO);
    clip(t->patient_id, sizeof(t->patient_id), jstr(pt, "id"), LO);
    clip(t->issuer, sizeof(t->issuer), jstr(pt, "issuer"), LO);
    clip_date(t->birth, jstr(pt, "birth_date"));
    sex = jstr(pt, "sex");
    if (!strcmp(sex, "M") || !strcmp(sex, "F") || !strcmp(sex, "O"))
        memcpy(t->sex, sex, 2);
    clip_date(t->study_date, jstr(exam, "study_date"));
    clip(t->accession, sizeof(t->accession), jstr(exam, "accession"), 16);
    o->patient_name = t->patient_name;
    o->patient_id = t->patient_id;
    o->issuer_of_patient_id = t->issuer;
    o->birth_date = t->birth;
    o->sex = t->sex;
    o->study_date = t->study_date;
    o->study_time = "";
    o->accession = t->accession;

    /* who read it, when */
    center = cfg ? hr_config_center(cfg, jstr(exam, "center")) : NULL;
    clip(t->institution, sizeof(t->institution), center ? hospital_name(cfg, center->hospital) : "",
         LO);
    clip(t->department, sizeof(t->department),
         jstr(exam, "center_name")[0] ? jstr(exam, "center_name") : (center ? center->name : ""),
         LO);
    o->institution = t->institution;
    o->department = t->department;
    if (rpt__beijing_time(jstr(p, "signed_at"), &tm))
        return -EINVAL;
    strftime(t->content_date, sizeof(t->content_date), "%Y%m%d", &tm);
    strftime(t->content_time, sizeof(t->content_time), "%H%M%S", &tm);
    o->content_date = t->content_date;
    o->content_time = t->content_time;
    o->tz_offset = "+0800";
    snprintf(title, sizeof(title), "%s 第%d版 %s", t->department[0] ? t->department : "诊断报告",
             (int)version, rpt_render_status_label(status));
    clip(t->title, sizeof(t->title), title, LO);
    o->title = t->title;

    /* SR content */
    o->findings = jstr(content, "findings");
    o->impression = jstr(content, "impression");
    for (i = 0; i < json_array_size(signers); i++) {
        const json_t *s = json_array_get(signers, i);
        if (!strcmp(jstr(s, "function"), "author") && !t->author[0])
            clip(t->author, sizeof(t->author),
                 jstr(s, "name")[0] ? jstr(s, "name") : jstr(s, "user"), LO);
        verifier = s; /* the last one signed last */
    }
    o->author = t->author;
    o->preliminary = !strcmp(status, "preliminary");
    o->verified = !o->preliminary && verifier;
    if (o->verified) {
        clip(t->verifier, sizeof(t->verifier),
             jstr(verifier, "name")[0] ? jstr(verifier, "name") : jstr(verifier, "user"), LO);
        clip(t->verifier_org, sizeof(t->verifier_org),
             hospital_name(cfg, jstr(verifier, "hospital")), LO);
        if (!t->verifier_org[0])
            memcpy(t->verifier_org, "huren", 6);
        if (rpt__beijing_time(jstr(verifier, "signed_at"), &tm) &&
            rpt__beijing_time(jstr(p, "signed_at"), &tm))
            return -EINVAL;
        strftime(t->verify_dt, sizeof(t->verify_dt), "%Y%m%d%H%M%S+0800", &tm);
        o->verifier = t->verifier;
        o->verifier_org = t->verifier_org;
        o->verify_datetime = t->verify_dt;
        o->verified = t->verifier[0] != '\0';
    }
    sup = json_object_get(rep, "supersedes");
    if (json_is_object(sup)) {
        json_int_t sv = json_integer_value(json_object_get(sup, "version"));
        if (sv < 1 || sv >= version)
            return -EINVAL;
        rc = rpt_obj_uids(id, (int)sv, RPT_OBJ_SR, NULL, t->predecessor);
        if (rc)
            return rc;
        o->predecessor_sop_uid = t->predecessor;
        snprintf(t->comment, sizeof(t->comment), "本报告为第%d版，取代第%d版。", (int)version,
                 (int)sv);
    }
    if (!strcmp(status, "entered-in-error"))
        snprintf(t->comment, sizeof(t->comment), "本报告已撤回（entered-in-error），请勿使用。");
    o->comment = t->comment;
    return 0;
}

int rpt_obj_write_sr(const hr_config *cfg, const json_t *payload, const rpt_obj_ref *ev,
                     size_t n_ev, const char *path)
{
    dcm_report_obj o;
    dcm_report_ref *refs = NULL;
    obj_text *t = malloc(sizeof(*t));
    int rc;

    if (!t)
        return -ENOMEM;
    rc = fill(cfg, payload, RPT_OBJ_SR, &o, t);
    if (rc)
        goto out;
    if (n_ev > RPT_OBJ_EVIDENCE_MAX) {
        rc = HR_ETOOBIG;
        goto out;
    }
    if (n_ev) {
        refs = calloc(n_ev, sizeof(*refs));
        if (!refs) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n_ev; i++) {
            refs[i].series_uid = ev[i].series;
            refs[i].sop_class_uid = ev[i].sop_class;
            refs[i].sop_uid = ev[i].sop;
        }
        o.evidence = refs;
        o.n_evidence = n_ev;
    }
    rc = dcm_shim_write_text_sr(&o, path);
out:
    free(refs);
    free(t);
    return rc;
}

int rpt_obj_write_pdf(const hr_config *cfg, const json_t *payload, const uint8_t *pdf, size_t len,
                      const char *path)
{
    dcm_report_obj o;
    obj_text *t = malloc(sizeof(*t));
    int rc;

    if (!t)
        return -ENOMEM;
    rc = fill(cfg, payload, RPT_OBJ_PDF, &o, t);
    if (!rc)
        rc = dcm_shim_write_pdf(&o, pdf, len, path);
    free(t);
    return rc;
}

/* ---- evidence from the index ---- */

static void copy_uid(char dst[HR_UID_MAX], const redisReply *r)
{
    dst[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING && r->len < HR_UID_MAX) {
        memcpy(dst, r->str, r->len);
        dst[r->len] = '\0';
    }
}

int rpt_obj_evidence(redisContext *c, const json_t *payload, rpt_obj_ref **out, size_t *n)
{
    const json_t *inst = json_object_get(json_object_get(payload, "images"), "instances");
    const char *study =
        json_string_value(json_object_get(json_object_get(payload, "exam"), "study_uid"));
    size_t total = json_array_size(inst), got = 0, sent, i;
    rpt_obj_ref *refs = NULL;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (!study || !dcm_uid_valid(study) || !json_is_array(inst))
        return -EINVAL;
    if (total > RPT_OBJ_EVIDENCE_MAX)
        return HR_ETOOBIG;
    if (!total)
        return 0;
    refs = calloc(total, sizeof(*refs));
    if (!refs)
        return -ENOMEM;
    for (i = 0; i < total; i = sent) {
        size_t j;
        for (sent = i; sent < total && sent < i + PIPELINE; sent++) {
            const char *sop = json_string_value(json_object_get(json_array_get(inst, sent), "sop"));
            if (!sop || !dcm_uid_valid(sop)) {
                rc = -EINVAL;
                break;
            }
            if (redisAppendCommand(c, "HMGET hr:{%s}:i:%s series sop_class", study, sop) !=
                REDIS_OK) {
                rc = HR_EREDIS;
                break;
            }
        }
        for (j = i; j < sent; j++) { /* drain every reply sent, even after an error */
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
                rc = HR_EREDIS;
                goto out; /* the connection is broken: nothing more to read */
            }
            if (!rc && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                rpt_obj_ref *e = &refs[got];
                copy_uid(e->series, r->element[0]);
                copy_uid(e->sop_class, r->element[1]);
                snprintf(e->sop, sizeof(e->sop), "%s",
                         json_string_value(json_object_get(json_array_get(inst, j), "sop")));
                if (dcm_uid_valid(e->series) && dcm_uid_valid(e->sop_class))
                    got++; /* else no longer indexed: left out */
            } else if (!rc) {
                rc = HR_EREDIS;
            }
            freeReplyObject(r);
        }
        if (rc)
            goto out;
    }
out:
    if (rc || !got) {
        free(refs);
        return rc;
    }
    *out = refs;
    *n = got;
    return 0;
}
