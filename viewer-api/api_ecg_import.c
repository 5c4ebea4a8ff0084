/* POST /api/v1/ecg: one HL7 aECG document (application/xml or text/xml, at
 * most DCM_AECG_DOC_MAX bytes: 413 beyond, from Content-Length before any
 * byte is read, or once a chunked body passes it) from a technician or an
 * administrator. On the pool the document is read (dicom/aecg.h) and turned
 * into a DICOM ECG waveform object (dcm_shim_ecg_encode) with UIDs named
 * after the user's hospital and the aECG id; on the loop the object goes
 * through the durable ingest path as a STOW part would (storage/ingest.h),
 * the user's hospital as its source, so the worklist routes it like a
 * C-STORE'd ECG. 200 {study, series, instance, sop_class, retrieve_url} only
 * after the object is durable and indexed (decision 0039). */
#include "multipart.h"
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/aecg.h"
#include "../dicom/dcmtk_shim.h"
#include "../dicom/p10.h"
#include "../dicom/uids.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum ecg_phase { ECG_READING, ECG_WORKING, ECG_INGESTING };

typedef struct ecg_state {
    va_req *r;
    enum ecg_phase phase;
    hr_buf body; /* the document, capped at DCM_AECG_DOC_MAX */
    int too_big;
    char base_url[512];
    /* pool results */
    int rc;
    char why[DCM_AECG_WHY_MAX];
    char study[DCM_UID_NAMED_MAX], series[DCM_UID_NAMED_MAX], sop[DCM_UID_NAMED_MAX];
    char patient[96];
    const char *sop_class;
    int lossy;
    uint8_t *obj;
    size_t obj_len;
    /* ingest */
    sto_ingest *ig;
    size_t pos;
} ecg_state;

static void ecg_end(ecg_state *st)
{
    va_req *r = st->r;
    r->srv->n_ecg_imports--;
    if (st->ig)
        sto_ingest_abort(st->ig);
    hr_buf_free(&st->body);
    free(st->obj);
    free(st);
    r->state = NULL;
    va_req_stream_end(r);
}

/* ---- the pool step: read, build ---- */

/* "2.25..." named after kind and base. */
static int named_uid(const char *kind, const char *base, char *out)
{
    char name[512];
    int n = snprintf(name, sizeof(name), "huren-aecg|%s|%s", kind, base);
    return dcm_uid_named(name, (size_t)n, out, DCM_UID_NAMED_MAX);
}

static void ecg_work(va_req *r, redisContext *c)
{
    ecg_state *st = r->state;
    dcm_aecg *e = NULL;
    st->rc =
        dcm_aecg_parse((const uint8_t *)st->body.data, st->body.len, &e, st->why, sizeof(st->why));
    if (st->rc)
        goto out;
    /* the identity of the ECG: the user's hospital and the document's id,
     * or its digest when it has none; the same document posted again names
     * the same object (the ingest answers IDENTICAL) */
    char base[HR_ID_MAX + 200];
    if (e->id[0]) {
        snprintf(base, sizeof(base), "%s|%s", r->who.hospital, e->id);
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        if (!EVP_Digest(st->body.data, st->body.len, md, &mdlen, EVP_sha256(), NULL)) {
            st->rc = -ENOMEM;
            goto out;
        }
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        snprintf(base, sizeof(base), "%s|sha256:%s", r->who.hospital, hex);
    }
    st->rc = named_uid("study", base, st->study);
    if (!st->rc)
        st->rc = named_uid("series", base, st->series);
    if (!st->rc)
        st->rc = named_uid("instance", base, st->sop);
    if (st->rc)
        goto out;
    snprintf(st->patient, sizeof(st->patient), "%s", e->patient_id);
    hr_buf_free(&st->body); /* not needed any more: memory back before the object */
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y%m%d%H%M%S", &tm);
    const hr_hospital *h = hr_config_hospital(r->srv->cfg, r->who.hospital);
    dcm_ecg_ids ids = {st->study, st->series, st->sop, h ? h->name : r->who.hospital, now};
    st->rc = dcm_shim_ecg_encode(e, &ids, &st->obj, &st->obj_len, &st->sop_class, &st->lossy);
    if (st->rc)
        snprintf(st->why, sizeof(st->why), "cannot build the DICOM ECG object: %s",
                 hr_strerror(st->rc));
out:
    dcm_aecg_free(e);
}

/* ---- the ingest (loop) ---- */

static void on_stored(void *arg, const sto_ingest_result *res)
{
    ecg_state *st = arg;
    va_req *r = st->r;
    st->ig = NULL;
    if (!r->h) {
        ecg_end(st);
        return;
    }
    switch (res->status) {
    case STO_STORED:
    case STO_IDENTICAL:
    case STO_NEW_VERSION: {
        char url[1024];
        snprintf(url, sizeof(url), "%s/dicomweb/studies/%s/series/%s/instances/%s", st->base_url,
                 st->study, st->series, st->sop);
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "study", st->study, "series",
                                st->series, "instance", st->sop, "sop_class", st->sop_class,
                                "retrieve_url", url, "status",
                                res->status == STO_STORED      ? "stored"
                                : res->status == STO_IDENTICAL ? "identical"
                                                               : "new_version",
                                "lossy", st->lossy);
        va_audit(r, "ecg-import", st->patient, st->study, st->sop, "success");
        hr_info("http", "%s: aECG imported as %s (%s)", r->id, st->sop, st->sop_class);
        va_send_json(r, 200, doc);
        break;
    }
    case STO_ERR_REFUSED:
        va_audit(r, "ecg-import", st->patient, st->study, res->reason, "denied");
        va_send_error(r, 409, "conflict", "%s", res->reason);
        break;
    case STO_ERR_RESOURCES:
        va_audit(r, "ecg-import", st->patient, st->study, res->reason, "failure");
        va_add_header(r, "Retry-After", "30");
        va_send_error(r, 503, "unavailable", "not stored: %s", res->reason);
        break;
    default:
        va_audit(r, "ecg-import", st->patient, st->study, res->reason, "failure");
        va_send_error(r, 500, "internal", "the built object was refused: %s", res->reason);
        break;
    }
    ecg_end(st);
}

static void feed_more(ecg_state *st)
{
    const size_t max = st->r->srv->sto->max_feed;
    while (st->pos < st->obj_len) {
        size_t k = st->obj_len - st->pos < max ? st->obj_len - st->pos : max;
        int pause = sto_ingest_feed(st->ig, st->obj + st->pos, k);
        st->pos += k;
        if (pause)
            return; /* on_resume continues */
    }
    sto_ingest_end(st->ig, on_stored, st);
}

static void on_resume(void *arg)
{
    ecg_state *st = arg;
    if (!st->r->h) {
        ecg_end(st); /* aborts the ingest */
        return;
    }
    feed_more(st);
}

static void ecg_work_done(va_req *r)
{
    ecg_state *st = r->state;
    if (va_req_gone(r)) {
        ecg_end(st);
        return;
    }
    if (st->rc) {
        int status = st->rc == HR_EPARSE || st->rc == HR_EUNSUP ? 400
                     : st->rc == HR_ETOOBIG                     ? 413
                                                                : 500;
        va_audit(r, "ecg-import", st->patient[0] ? st->patient : NULL, NULL, st->why, "failure");
        if (status == 500)
            va_send_error(r, 500, "internal", "%s", st->why[0] ? st->why : hr_strerror(st->rc));
        else
            va_send_error(r, status, status == 413 ? "too_large" : "bad_aecg", "%s", st->why);
        ecg_end(st);
        return;
    }
    dcm_p10_info info;
    sto_ingest_meta meta;
    memset(&meta, 0, sizeof(meta));
    int rc = dcm_p10_read_meta(st->obj, st->obj_len, &info);
    if (!rc) {
        snprintf(meta.sop_class, sizeof(meta.sop_class), "%s", info.sop_class);
        snprintf(meta.sop_instance, sizeof(meta.sop_instance), "%s", info.sop_instance);
        snprintf(meta.ts, sizeof(meta.ts), "%s", info.ts);
        snprintf(meta.hospital, sizeof(meta.hospital), "%s", r->who.hospital);
        meta.hub_hospital = strcmp(r->who.hospital, r->srv->cfg->dicom.hospital) == 0;
        rc = sto_ingest_begin(r->srv->sto, &meta, on_resume, st, &st->ig);
    }
    if (rc) {
        va_audit(r, "ecg-import", st->patient, st->study, "cannot start ingest", "failure");
        va_send_error(r, 500, "internal", "cannot start the ingest: %s", hr_strerror(rc));
        ecg_end(st);
        return;
    }
    st->phase = ECG_INGESTING;
    st->pos = info.dataset_offset;
    feed_more(st);
}

/* ---- the body ---- */

static void ecg_body(va_req *r, const uint8_t *data, size_t *len)
{
    ecg_state *st = r->state;
    if (st->phase != ECG_READING) {
        va_body_pause(r); /* offered again while the pool or the ingest works */
        return;
    }
    if (data) {
        if (!st->too_big && hr_buf_append(&st->body, data, *len) != 0) {
            st->too_big = 1; /* the rest is read and dropped; 413 at the end */
            hr_buf_free(&st->body);
        }
        *len = 0;
        return;
    }
    if (st->too_big) {
        va_audit(r, "ecg-import", NULL, NULL, "document too large", "failure");
        va_send_error(r, 413, "too_large", "an aECG document is at most %u bytes",
                      DCM_AECG_DOC_MAX);
        ecg_end(st);
        return;
    }
    st->phase = ECG_WORKING;
    va_req_run(r, ecg_work, ecg_work_done);
}

/* The client went away while we hold r. */
static void ecg_gone(va_req *r)
{
    ecg_state *st = r->state;
    if (st->phase != ECG_READING)
        return; /* the pool's done or the ingest callback ends it (r->h is NULL) */
    ecg_end(st);
}

void va_handle_ecg_import(va_req *r)
{
    /* the token was checked before the body (http_server.c); so is the role */
    if (r->who.role != STO_ROLE_TECHNICIAN && r->who.role != STO_ROLE_ADMIN) {
        va_audit(r, "ecg-import", NULL, NULL, "role may not import", "denied");
        va_send_error(r, 403, "forbidden", "only technicians and administrators import ECGs");
        return;
    }
    const char *ct = va_header(r, "content-type");
    char media[VA_MP_TYPE_MAX + 1];
    if (!ct || va_mp_media_type(ct, strlen(ct), media, sizeof(media)) != 0 ||
        (strcmp(media, "application/xml") != 0 && strcmp(media, "text/xml") != 0)) {
        va_send_error(r, 415, "unsupported_media_type",
                      "an aECG import takes application/xml or text/xml");
        return;
    }
    if (r->body_declared > (long long)DCM_AECG_DOC_MAX) {
        va_audit(r, "ecg-import", NULL, NULL, "document too large", "failure");
        va_send_error(r, 413, "too_large", "an aECG document is at most %u bytes",
                      DCM_AECG_DOC_MAX);
        return;
    }
    if (!r->has_body) {
        va_send_error(r, 400, "bad_aecg", "the request has no body");
        return;
    }
    if (r->srv->n_ecg_imports >= VA_ECG_IMPORTS_MAX) {
        va_add_header(r, "Retry-After", "5");
        va_send_error(r, 503, "busy", "%d aECG imports are in progress: retry later",
                      r->srv->n_ecg_imports);
        return;
    }
    ecg_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    r->srv->n_ecg_imports++; /* ecg_end gives it back */
    st->r = r;
    hr_buf_init(&st->body, DCM_AECG_DOC_MAX);
    va_base_url(r, st->base_url, sizeof(st->base_url));
    r->state = st;
    va_body_stream(r, ecg_body, ecg_gone);
}
