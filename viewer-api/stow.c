/* STOW-RS (PS3.18 10.5): POST /dicomweb/studies[/{study}] with a
 * multipart/related; type="application/dicom" body. Each part (a Part 10
 * file) goes through the same durable ingest path as C-STORE
 * (storage/ingest.h), one part at a time, with backpressure from the ingest
 * into the multipart parser and from there into the connection: the body is
 * read as it is parsed (the connection is suspended while the ingest makes
 * an object durable), so it never sits in memory whole (decision 0018). The
 * token and the caller's role are checked before the first body byte. The answer is the PS3.18
 * Store Instances Response: ReferencedSOPSequence, FailedSOPSequence with reasons. 200: all stored;
 * 202: some failed or with warnings; 409: none stored. */
#include "multipart.h"
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/p10.h"
#include "../dicom/uids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* PS3.18 Table 10.5.3-? failure reasons (as C-STORE statuses) */
#define R_PROCESSING 0x0110 /* processing failure */
#define R_RESOURCES  0xA700
#define R_MISMATCH   0xA900
#define R_UNDERSTAND 0xC000
#define R_SOP_CLASS  0x0122 /* SOP class not supported */
#define R_REFUSED    0x0124 /* refused: not authorized (another hospital's study) */
#define R_COERCION   0xB000 /* warning */

typedef struct stow_state {
    va_req *r;
    char study[65]; /* from the path, "" for POST /studies */
    char base_url[512];
    va_mp_parser mp;
    /* current part */
    int in_part;
    int skip; /* part refused before ingest: its data is dropped */
    uint16_t skip_reason;
    hr_buf head; /* Part 10 header bytes until the File Meta is complete */
    dcm_p10_info info;
    sto_ingest *ig;
    hr_buf pend; /* dataset bytes the ingest has not taken yet (it paused) */
    size_t pend_pos;
    int waiting;   /* paused: ingest resume or ingest end pending */
    int parse_end; /* the close delimiter was read, or the body is malformed */
    int body_end;  /* the whole body was read */
    /* response */
    json_t *ok, *failed;
    int n_ok, n_failed, n_warn;
    char first_error[160];
    int done;
} stow_state;

static void stow_continue(stow_state *st);

static json_t *us_value(unsigned v)
{
    return json_pack("{s:s, s:[i]}", "vr", "US", "Value", (int)v);
}

static json_t *ui_value(const char *v)
{
    return v && *v ? json_pack("{s:s, s:[s]}", "vr", "UI", "Value", v)
                   : json_pack("{s:s}", "vr", "UI");
}

static void add_failed(stow_state *st, const char *sop_class, const char *sop, unsigned reason,
                       const char *why)
{
    json_t *item = json_pack("{s:o, s:o, s:o}", "00081150", ui_value(sop_class), "00081155",
                             ui_value(sop), "00081197", us_value(reason));
    json_array_append_new(st->failed, item);
    st->n_failed++;
    if (!st->first_error[0])
        snprintf(st->first_error, sizeof(st->first_error), "%s", why);
    hr_warn("http", "%s: STOW part refused (%04X): %s", st->r->id, reason, why);
}

/* warning: a Warning Reason (0008,1196) or 0; why: its explanation, sent as
 * an HTTP Warning header (299, the first 10 warnings of a request). */
static void add_ok(stow_state *st, const dcm_attrs *a, unsigned warning, const char *why)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/dicomweb/studies/%s/series/%s/instances/%s", st->base_url,
             a->study_instance_uid, a->series_instance_uid, a->sop_instance_uid);
    json_t *item =
        json_pack("{s:o, s:o, s:{s:s, s:[s]}}", "00081150", ui_value(a->sop_class_uid), "00081155",
                  ui_value(a->sop_instance_uid), "00081190", "vr", "UR", "Value", url);
    if (warning) {
        json_object_set_new(item, "00081196", us_value(warning));
        if (why && *why && st->n_warn < 10) {
            char w[512];
            snprintf(w, sizeof(w), "299 huren \"%s: %s\"", a->sop_instance_uid, why);
            for (char *q = w + 11; *q; q++) /* a well-formed ASCII quoted-string */
                if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
                    *q = (unsigned char)*q > 0x7e ? '?' : '\'';
            w[strlen(w) - 1] = '"';
            va_add_header(st->r, "Warning", w);
        }
        st->n_warn++;
    }
    json_array_append_new(st->ok, item);
    st->n_ok++;
    va_audit(st->r, "stow", NULL, a->study_instance_uid, a->sop_instance_uid, "success");
}

static unsigned reason_of(enum sto_ingest_status s)
{
    switch (s) {
    case STO_ERR_PARSE:
        return R_UNDERSTAND;
    case STO_ERR_MISMATCH:
        return R_MISMATCH;
    case STO_ERR_RESOURCES:
        return R_RESOURCES;
    case STO_ERR_REFUSED:
        return R_REFUSED;
    default:
        return R_PROCESSING;
    }
}

/* ---- ingest callbacks ---- */

static void on_resume(void *arg)
{
    stow_state *st = arg;
    st->waiting = 0;
    stow_continue(st);
}

static void on_stored(void *arg, const sto_ingest_result *res)
{
    stow_state *st = arg;
    st->ig = NULL;
    st->waiting = 0;
    if (res->status == STO_STORED || res->status == STO_IDENTICAL)
        add_ok(st, res->attrs, res->patient_conflict ? R_COERCION : 0, res->reason);
    else if (res->status == STO_NEW_VERSION)
        add_ok(st, res->attrs, R_COERCION, res->reason);
    else
        add_failed(st, st->info.sop_class, st->info.sop_instance, reason_of(res->status),
                   res->reason);
    if (res->status == STO_ERR_REFUSED)
        va_audit(st->r, "stow", NULL, res->attrs->study_instance_uid, st->info.sop_instance,
                 "denied");
    stow_continue(st);
}

/* Feeds data to the ingest in pieces of at most max_feed; 1 when it asks to
 * pause (the rest, at most one chunk of the connection, is copied to pend:
 * data is MHD's buffer, valid only during this call). */
static int feed(stow_state *st, const uint8_t *p, size_t n)
{
    size_t max = st->r->srv->sto->max_feed;
    while (n) {
        size_t k = n < max ? n : max;
        int pause = sto_ingest_feed(st->ig, p, k);
        p += k;
        n -= k;
        if (pause) {
            hr_buf_reset(&st->pend);
            st->pend_pos = 0;
            if (n && hr_buf_append(&st->pend, p, n) != 0) {
                /* cannot happen: a chunk is at most MHD's read buffer */
                hr_error("http", "%s: STOW: %zu bytes left after an ingest pause", st->r->id, n);
                while (n) {
                    k = n < max ? n : max;
                    sto_ingest_feed(st->ig, p, k);
                    p += k;
                    n -= k;
                }
            }
            st->waiting = 1;
            return 1;
        }
    }
    return 0;
}

/* Feeds what the ingest left in pend; 1 when it pauses again. */
static int feed_pending(stow_state *st)
{
    size_t max = st->r->srv->sto->max_feed;
    int pause = 0;
    while (st->pend_pos < st->pend.len) {
        size_t n = st->pend.len - st->pend_pos;
        size_t k = n < max ? n : max;
        pause = sto_ingest_feed(st->ig, (const uint8_t *)st->pend.data + st->pend_pos, k);
        st->pend_pos += k;
        if (pause)
            break;
    }
    if (st->pend_pos == st->pend.len) {
        hr_buf_reset(&st->pend);
        st->pend_pos = 0;
    }
    if (pause) {
        st->waiting = 1;
        return 1;
    }
    return 0;
}

/* ---- multipart callbacks ---- */

static int on_part_begin(void *arg, const va_mp_part *part)
{
    stow_state *st = arg;
    st->in_part = 1;
    st->skip = 0;
    hr_buf_reset(&st->head);
    memset(&st->info, 0, sizeof(st->info));
    char media[VA_MP_TYPE_MAX + 1] = "application/dicom";
    if (part->content_type[0] &&
        va_mp_media_type(part->content_type, strlen(part->content_type), media, sizeof(media)))
        media[0] = '\0';
    if (strcmp(media, "application/dicom") != 0) {
        st->skip = 1;
        add_failed(st, NULL, NULL, R_SOP_CLASS, "part is not application/dicom");
    }
    return 0;
}

static int start_ingest(stow_state *st)
{
    sto_ingest_meta meta;
    memset(&meta, 0, sizeof(meta));
    snprintf(meta.sop_class, sizeof(meta.sop_class), "%s", st->info.sop_class);
    snprintf(meta.sop_instance, sizeof(meta.sop_instance), "%s", st->info.sop_instance);
    snprintf(meta.ts, sizeof(meta.ts), "%s", st->info.ts);
    snprintf(meta.hospital, sizeof(meta.hospital), "%s", st->r->who.hospital);
    meta.hub_hospital = strcmp(st->r->who.hospital, st->r->srv->cfg->dicom.hospital) == 0;
    snprintf(meta.study, sizeof(meta.study), "%s", st->study);
    if (!dcm_storage_accepted(meta.sop_class, st->r->srv->cfg->dicom.accept_unknown_storage)) {
        add_failed(st, meta.sop_class, meta.sop_instance, R_SOP_CLASS,
                   "SOP class is not a supported storage SOP class");
        return -1;
    }
    int rc = sto_ingest_begin(st->r->srv->sto, &meta, on_resume, st, &st->ig);
    if (rc) {
        add_failed(st, meta.sop_class, meta.sop_instance,
                   rc == HR_EUNSUP ? R_UNDERSTAND : R_PROCESSING,
                   rc == HR_EUNSUP ? "transfer syntax not supported" : "cannot start ingest");
        return -1;
    }
    return 0;
}

static int on_part_data(void *arg, const va_mp_part *part, const uint8_t *data, size_t len)
{
    stow_state *st = arg;
    if (st->skip)
        return 0;
    if (!st->ig) {
        /* the File Meta Information first: read in place when this chunk
         * holds all of it, else collected (bounded) across chunks */
        size_t before = st->head.len;
        int rc = before ? HR_ETRUNC : dcm_p10_read_meta(data, len, &st->info);
        if (rc == HR_ETRUNC) {
            size_t room = st->head.cap - st->head.len;
            size_t take = len < room ? len : room;
            if (hr_buf_append(&st->head, data, take) == 0)
                rc = dcm_p10_read_meta(st->head.data, st->head.len, &st->info);
            if (rc == HR_ETRUNC && take < len)
                rc = HR_ETOOBIG;
        }
        if (rc == HR_ETRUNC)
            return 0;
        if (rc) {
            st->skip = 1;
            add_failed(st, NULL, NULL, R_UNDERSTAND,
                       "not a DICOM Part 10 file (preamble, DICM, File Meta Information)");
            return 0;
        }
        if (start_ingest(st)) {
            st->skip = 1;
            return 0;
        }
        /* the dataset bytes of this call: those after the File Meta */
        size_t off = st->info.dataset_offset;
        size_t from = off > before ? off - before : 0;
        hr_buf_reset(&st->head);
        return from < len ? feed(st, data + from, len - from) : 0;
    }
    return feed(st, data, len);
}

static int on_part_end(void *arg, const va_mp_part *part)
{
    stow_state *st = arg;
    st->in_part = 0;
    if (st->skip)
        return 0;
    if (!st->ig) {
        add_failed(st, NULL, NULL, R_UNDERSTAND, "part ends inside the File Meta Information");
        return 0;
    }
    st->waiting = 1;
    sto_ingest_end(st->ig, on_stored, st);
    return 1; /* one object at a time: continue when it is stored */
}

static void on_end(void *arg, unsigned parts)
{
}

/* ---- the response ---- */

static void respond(stow_state *st)
{
    va_req *r = st->r;
    json_t *doc = json_object();
    char url[1024];
    if (st->study[0]) {
        snprintf(url, sizeof(url), "%s/dicomweb/studies/%s", st->base_url, st->study);
        json_object_set_new(doc, "00081190", json_pack("{s:s, s:[s]}", "vr", "UR", "Value", url));
    }
    if (st->n_failed)
        json_object_set_new(doc, "00081198",
                            json_pack("{s:s, s:O}", "vr", "SQ", "Value", st->failed));
    if (st->n_ok)
        json_object_set_new(doc, "00081199", json_pack("{s:s, s:O}", "vr", "SQ", "Value", st->ok));
    int status = st->n_ok == 0 ? 409 : (st->n_failed || st->n_warn) ? 202 : 200;
    if (st->n_failed)
        va_audit(r, "stow", NULL, st->study[0] ? st->study : NULL, st->first_error, "failure");
    hr_info("http", "%s: STOW %d stored, %d failed, %d warnings", r->id, st->n_ok, st->n_failed,
            st->n_warn);
    va_send_json_type(r, status, "application/dicom+json", doc);
}

static void stow_free(stow_state *st)
{
    if (st->ig)
        sto_ingest_abort(st->ig);
    va_mp_free(&st->mp);
    hr_buf_free(&st->head);
    hr_buf_free(&st->pend);
    json_decref(st->ok);
    json_decref(st->failed);
    free(st);
}

static void stow_end(stow_state *st)
{
    va_req *r = st->r;
    r->state = NULL;
    stow_free(st);
    va_req_stream_end(r);
}

/* The whole body was read and nothing waits: the answer. */
static void stow_answer(stow_state *st)
{
    va_req *r = st->r;
    int rc = va_mp_finish(&st->mp);
    if (rc && st->n_ok + st->n_failed > 0) {
        /* parts before the damage are stored: say which, and why the rest is not */
        char why[160];
        snprintf(why, sizeof(why), "multipart body: %s",
                 va_mp_error(&st->mp)[0] ? va_mp_error(&st->mp)
                                         : "ends before its close delimiter");
        add_failed(st, NULL, NULL, R_UNDERSTAND, why);
        respond(st);
    } else if (rc) {
        va_send_error(r, rc == HR_ETOOBIG ? 413 : 400,
                      rc == HR_ETOOBIG ? "too_large" : "bad_request", "multipart body: %s",
                      va_mp_error(&st->mp)[0] ? va_mp_error(&st->mp) : "no close delimiter");
    } else if (st->n_ok + st->n_failed == 0) {
        va_send_error(r, 400, "bad_request", "multipart body has no parts");
    } else {
        respond(st);
    }
    stow_end(st);
}

/* The body consumer (va_body_fn): parses what arrived until the parser
 * pauses for the ingest, ends or fails; the rest stays with MHD. */
static void stow_body(va_req *r, const uint8_t *data, size_t *len)
{
    stow_state *st = r->state;
    size_t n = *len, off = 0;
    if (!data)
        st->body_end = 1;
    while (!st->waiting && !st->parse_end) {
        size_t used = 0;
        int rc = va_mp_feed(&st->mp, data ? data + off : NULL, n - off, &used);
        off += used;
        if (rc == VA_MP_PAUSED)
            continue; /* waiting is set: the ingest pauses us */
        if (rc == VA_MP_MORE)
            break;
        st->parse_end = 1; /* DONE (the epilogue follows) or an error (sticky) */
    }
    if (st->parse_end && !st->waiting)
        off = n; /* the epilogue, or what follows the damage: dropped */
    *len = n - off;
    if (st->waiting) {
        va_body_pause(r);
        return;
    }
    if (st->body_end)
        stow_answer(st);
}

/* Continues after the ingest resumed or stored an object (loop). */
static void stow_continue(stow_state *st)
{
    va_req *r = st->r;
    if (!r->h) {
        /* the client went away: abandon the object in progress */
        stow_end(st);
        return;
    }
    if (st->waiting)
        return;
    if (st->pend_pos < st->pend.len && feed_pending(st))
        return;
    /* MHD offers what it holds (or the end of the body) again */
    va_body_resume(r);
}

/* The client went away (MHD closed the request) while we hold it. */
static void stow_gone(va_req *r)
{
    stow_state *st = r->state;
    if (st->waiting)
        return; /* the ingest callback ends it (r->h is NULL) */
    stow_end(st);
}

void va_handle_stow(va_req *r)
{
    const char *ct = va_header(r, "content-type");
    va_mp_content_type mct;
    if (!ct || va_mp_content_type_parse(ct, strlen(ct), &mct) != 0 ||
        strcmp(mct.media, "multipart/related") != 0 ||
        (mct.type[0] && strcmp(mct.type, "application/dicom") != 0)) {
        va_send_error(r, 415, "unsupported_media_type",
                      "STOW-RS takes multipart/related; type=\"application/dicom\"; boundary=...");
        return;
    }
    if (r->n_segs == 1 && !dcm_uid_valid(r->segs[0])) {
        va_send_error(r, 400, "bad_uid", "\"%.64s\" is not a valid DICOM UID", r->segs[0]);
        return;
    }
    /* the token was checked before the body (http_server.c); so is the role */
    if (r->who.role != STO_ROLE_TECHNICIAN && r->who.role != STO_ROLE_ADMIN) {
        va_audit(r, "stow", NULL, NULL, "role may not store", "denied");
        va_send_error(r, 403, "forbidden", "only technicians and administrators store studies");
        return;
    }
    stow_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->r = r;
    if (r->n_segs == 1)
        snprintf(st->study, sizeof(st->study), "%s", r->segs[0]);
    hr_buf_init(&st->head, DCM_P10_META_MAX + 256);
    hr_buf_init(&st->pend, 256u << 10);
    st->ok = json_array();
    st->failed = json_array();
    va_mp_callbacks cb = {on_part_begin, on_part_data, on_part_end, on_end};
    if (va_mp_init(&st->mp, mct.boundary, NULL, &cb, st) != 0) {
        stow_free(st);
        va_send_error(r, 400, "bad_request", "invalid multipart boundary");
        return;
    }
    va_base_url(r, st->base_url, sizeof(st->base_url));
    r->state = st;
    va_body_stream(r, stow_body, stow_gone);
}
