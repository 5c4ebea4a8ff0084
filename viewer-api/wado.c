/* WADO-RS (PS3.18 10.4): instances of a study/series/instance as
 * multipart/related application/dicom, metadata (from the sidecar JSON built
 * at ingest), frames, bulk data; and WADO-URI (PS3.18 9) for older viewers.
 * Objects and frames are sent as stored (docs/decisions/0007-dicomweb-choices.md)
 * unless the request asks for Explicit VR Little Endian (transfer-syntax=
 * 1.2.840.10008.1.2.1, or application/octet-stream frames without a
 * transfer-syntax, PS3.18 8.7.3.3.2) of a compressed object: then it is
 * decoded with DCMTK on the pool, one object at a time, within
 * http.transcode_max_bytes and http.transcode_concurrency (decision 0030).
 * Any other transfer syntax gets 406 with the reason. */
#include "stream.h"
#include "../common/hr_err.h"
#include "../dicom/dcmtk_shim.h"
#include "../dicom/uids.h"
#include "../storage/index.h"
#include "../storage/meta.h"
#include "../storage/retrieve.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WADO_MAX_INSTANCES 100000
#define WADO_MAX_FRAMES    4096 /* frame numbers in one request (decision 0016) */

enum wado_kind { W_INSTANCES, W_METADATA, W_FRAMES, W_BULK, W_URI };

typedef struct wado_state {
    enum wado_kind kind;
    char study[STO_UID_BUF], series[STO_UID_BUF], sop[STO_UID_BUF];
    /* negotiated */
    int single_part;     /* Accept: application/dicom (one instance) or octet-stream */
    char want_ts[65];    /* "" or "*" = as stored; else this TS only */
    char frame_type[64]; /* requested part media type for frames/bulk, "" = any */
    uint32_t frames[WADO_MAX_FRAMES];
    int n_frames;
    uint64_t bulk_off, bulk_len;
    /* results of the pool step */
    int rc;
    char detail[256];
    sto_rlist list;
    va_stream *stream;
    char ctype[160];
    int status;
    int transcoded; /* the answer was decoded (audit detail) */
} wado_state;

/* Objects being decoded for WADO-RS now, all servers of the process. */
static atomic_int g_transcoding;

static void state_free(wado_state *st)
{
    sto_rlist_free(&st->list);
    va_stream_free(st->stream);
    free(st);
}

/* ---- Accept negotiation ---- */

/* Copies parameter `name` of one media range (text up to ',') into out. */
static int media_param(const char *range, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len; i++) {
        if (range[i] != ';')
            continue;
        size_t j = i + 1;
        while (j < len && range[j] == ' ')
            j++;
        if (len - j > nl && strncasecmp(range + j, name, nl) == 0 && range[j + nl] == '=') {
            j += nl + 1;
            int q = j < len && range[j] == '"';
            j += (size_t)q;
            size_t k = 0;
            while (j < len && range[j] != ';' && range[j] != '"' && range[j] != ' ' && k + 1 < cap)
                out[k++] = range[j++];
            out[k] = '\0';
            return 1;
        }
    }
    return 0;
}

static int media_is(const char *range, size_t len, const char *type)
{
    size_t tl = strlen(type);
    size_t i = 0;
    while (i < len && range[i] == ' ')
        i++;
    return len - i >= tl && strncasecmp(range + i, type, tl) == 0 &&
           (i + tl == len || range[i + tl] == ';' || range[i + tl] == ' ');
}

/* A transfer-syntax parameter is "*" or a UID; anything else is refused
 * (406 with why) before any lookup. */
static int ts_param_ok(const char *ts, wado_state *st)
{
    if (!ts[0] || strcmp(ts, "*") == 0 || dcm_uid_valid(ts))
        return 1;
    snprintf(st->detail, sizeof(st->detail),
             "transfer-syntax=\"%.64s\" is neither * nor a transfer syntax UID", ts);
    return 0;
}

/* Accept for instances: multipart/related; type="application/dicom"
 * [; transfer-syntax=...], application/dicom (single instance), or any.
 * Returns 0 or -1 (406). */
static int negotiate_instances(const char *accept, wado_state *st, int single_allowed)
{
    if (!accept || !*accept)
        return 0;
    const char *p = accept;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char type[64] = "", ts[65] = "";
        media_param(p, len, "transfer-syntax", ts, sizeof(ts));
        if (!ts_param_ok(ts, st))
            return -1;
        if (media_is(p, len, "*/*") || media_is(p, len, "multipart/*")) {
            return 0;
        }
        if (media_is(p, len, "multipart/related")) {
            if (!media_param(p, len, "type", type, sizeof(type)) ||
                strcasecmp(type, "application/dicom") == 0) {
                snprintf(st->want_ts, sizeof(st->want_ts), "%s", ts);
                return 0;
            }
        } else if (single_allowed && media_is(p, len, "application/dicom")) {
            st->single_part = 1;
            snprintf(st->want_ts, sizeof(st->want_ts), "%s", ts);
            return 0;
        }
        p = e ? e + 1 : p + len;
    }
    return -1;
}

/* Media type of a frame / bulk value in transfer syntax ts. */
static const char *frame_media(const char *ts, int encapsulated)
{
    if (!encapsulated)
        return "application/octet-stream";
    if (!strncmp(ts, "1.2.840.10008.1.2.4.5", 21) || !strcmp(ts, "1.2.840.10008.1.2.4.70") ||
        !strcmp(ts, "1.2.840.10008.1.2.4.57"))
        return "image/jpeg";
    if (!strcmp(ts, "1.2.840.10008.1.2.4.80") || !strcmp(ts, "1.2.840.10008.1.2.4.81"))
        return "image/jls";
    if (!strcmp(ts, "1.2.840.10008.1.2.4.90") || !strcmp(ts, "1.2.840.10008.1.2.4.91"))
        return "image/jp2";
    if (!strcmp(ts, "1.2.840.10008.1.2.5"))
        return "image/x-dicom-rle";
    return "application/octet-stream";
}

/* Transfer syntax of a frame's bytes as sent: compressed as stored; native
 * pixels are the same bytes in implicit and explicit VR little endian, and
 * big-endian objects keep their byte order. */
static const char *frame_ts(const sto_frame *f)
{
    if (f->encapsulated || strcmp(f->ts, "1.2.840.10008.1.2.2") == 0)
        return f->ts;
    return "1.2.840.10008.1.2.1";
}

/* Accept for frames/bulk: multipart/related with a type (application/
 * octet-stream, image/jpeg, ...) and transfer-syntax, single-part
 * application/octet-stream, or any. The choice is checked against the
 * stored encoding after the lookup. */
static int negotiate_frames(const char *accept, wado_state *st)
{
    if (!accept || !*accept)
        return 0;
    const char *p = accept;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char type[64] = "", ts[65] = "";
        media_param(p, len, "transfer-syntax", ts, sizeof(ts));
        if (!ts_param_ok(ts, st))
            return -1;
        if (media_is(p, len, "*/*") || media_is(p, len, "multipart/*"))
            return 0;
        if (media_is(p, len, "multipart/related")) {
            media_param(p, len, "type", type, sizeof(type));
            snprintf(st->frame_type, sizeof(st->frame_type), "%s", type);
            snprintf(st->want_ts, sizeof(st->want_ts), "%s", ts);
            return 0;
        }
        if (media_is(p, len, "application/octet-stream")) {
            st->single_part = 1;
            snprintf(st->frame_type, sizeof(st->frame_type), "application/octet-stream");
            snprintf(st->want_ts, sizeof(st->want_ts), "%s", ts);
            return 0;
        }
        p = e ? e + 1 : p + len;
    }
    return -1;
}

/* ---- the pool step ---- */

static int ts_ok(const wado_state *st, const char *stored)
{
    return !st->want_ts[0] || strcmp(st->want_ts, "*") == 0 || strcmp(st->want_ts, stored) == 0;
}

static void boundary_new(char out[40])
{
    uint8_t rnd[12];
    RAND_bytes(rnd, sizeof(rnd));
    int n = snprintf(out, 40, "huren-");
    for (int i = 0; i < 12; i++)
        n += snprintf(out + n, (size_t)(40 - n), "%02x", rnd[i]);
}

/* ---- transcoding (decision 0030) ---- */

/* Takes one of the http.transcode_concurrency decoding slots; 0 or -EBUSY. */
static int slot_take(const va_req *r)
{
    int limit = r->srv->cfg->http.transcode_concurrency;
    if (atomic_fetch_add(&g_transcoding, 1) >= limit) {
        atomic_fetch_sub(&g_transcoding, 1);
        return -EBUSY;
    }
    return 0;
}

static void slot_give(void)
{
    atomic_fetch_sub(&g_transcoding, 1);
}

/* Maps the decoder's refusals to -EPROTO (406, st->detail says why);
 * HR_ENOTFOUND, -EBUSY and -ENOMEM pass. */
static int decode_refused(const va_req *r, wado_state *st, int rc, const char *ts)
{
    if (rc == HR_ETOOBIG)
        snprintf(st->detail, sizeof(st->detail),
                 "decoded, this object would exceed http.transcode_max_bytes (%llu bytes); ask "
                 "for transfer-syntax=* (as stored, %s)",
                 (unsigned long long)r->srv->cfg->http.transcode_max_bytes, ts);
    else if (rc == HR_EUNSUP)
        snprintf(st->detail, sizeof(st->detail),
                 "transfer syntax %s cannot be decoded by this server; ask for "
                 "transfer-syntax=* (as stored)",
                 ts);
    else if (rc == HR_EPARSE)
        snprintf(st->detail, sizeof(st->detail),
                 "the pixel data (transfer syntax %s) could not be decoded; ask for "
                 "transfer-syntax=* (as stored)",
                 ts);
    else
        return rc;
    return -EPROTO;
}

/* The one instance of st->list as a Part 10 file in Explicit VR Little Endian. */
static int build_transcoded_instance(va_req *r, wado_state *st, const char *path)
{
    sto_rinst *it = &st->list.v[0];
    if (!dcm_shim_can_decode(it->ts))
        return decode_refused(r, st, HR_EUNSUP, it->ts);
    int rc = slot_take(r);
    if (rc)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = dcm_shim_transcode(path, r->srv->cfg->http.transcode_max_bytes, &buf, &len);
    slot_give();
    if (rc)
        return decode_refused(r, st, rc, it->ts);
    st->transcoded = 1;
    char bnd[40];
    if (st->single_part) {
        snprintf(st->ctype, sizeof(st->ctype), "application/dicom; transfer-syntax=%s",
                 DCM_TS_EXPLICIT_LE);
        return va_stream_take(st->stream, buf, len);
    }
    boundary_new(bnd);
    rc = va_stream_printf(st->stream,
                          "--%s\r\nContent-Type: application/dicom; transfer-syntax=%s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          bnd, DCM_TS_EXPLICIT_LE, len);
    if (rc) {
        free(buf);
        return rc;
    }
    rc = va_stream_take(st->stream, buf, len);
    if (!rc)
        rc = va_stream_printf(st->stream, "\r\n--%s--\r\n", bnd);
    snprintf(st->ctype, sizeof(st->ctype),
             "multipart/related; type=\"application/dicom\"; boundary=%s", bnd);
    return rc;
}

/* Frames st->frames of the object at path, decoded to native Explicit VR
 * Little Endian (stored in transfer syntax ts). */
static int build_transcoded_frames(va_req *r, wado_state *st, const char *path, const char *ts)
{
    if (!dcm_shim_can_decode(ts))
        return decode_refused(r, st, HR_EUNSUP, ts);
    if (st->single_part && st->n_frames != 1) {
        snprintf(st->detail, sizeof(st->detail),
                 "several frames need multipart/related; one frame may be octet-stream");
        return -EPROTO;
    }
    int rc = slot_take(r);
    if (rc)
        return rc;
    uint8_t *frames = NULL;
    size_t flen = 0;
    rc = dcm_shim_decode_frames(path, st->frames, (size_t)st->n_frames,
                                r->srv->cfg->http.transcode_max_bytes, &frames, &flen);
    slot_give();
    if (rc)
        return decode_refused(r, st, rc, ts);
    st->transcoded = 1;
    if (st->single_part) {
        snprintf(st->ctype, sizeof(st->ctype), "application/octet-stream");
        return va_stream_take(st->stream, frames, flen);
    }
    /* one body: each frame with its part header (frames are at most
     * transcode_max_bytes in all, checked by the decoder) */
    char bnd[40], head[160];
    boundary_new(bnd);
    int hl = snprintf(head, sizeof(head),
                      "--%s\r\nContent-Type: application/octet-stream; transfer-syntax=%s\r\n\r\n",
                      bnd, DCM_TS_EXPLICIT_LE);
    size_t tail = strlen(bnd) + 6, n = (size_t)st->n_frames;
    size_t total = n * ((size_t)hl + flen + 2) + tail;
    uint8_t *body = malloc(total);
    if (!body) {
        free(frames);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(body + k, head, (size_t)hl);
        k += (size_t)hl;
        memcpy(body + k, frames + i * flen, flen);
        k += flen;
        memcpy(body + k, "\r\n", 2);
        k += 2;
    }
    free(frames);
    memcpy(body + k, "--", 2);
    memcpy(body + k + 2, bnd, strlen(bnd));
    memcpy(body + k + 2 + strlen(bnd), "--\r\n", 4);
    k += tail;
    snprintf(st->ctype, sizeof(st->ctype),
             "multipart/related; type=\"application/octet-stream\"; boundary=%s", bnd);
    return va_stream_take(st->stream, body, k);
}

static int build_instances(va_req *r, wado_state *st)
{
    const sto_objstore *store = &r->srv->sto->store;
    int transcode = 0;
    for (size_t i = 0; i < st->list.n; i++)
        if (!ts_ok(st, st->list.v[i].ts)) {
            if (strcmp(st->want_ts, DCM_TS_EXPLICIT_LE) == 0 && st->list.n == 1 && st->sop[0]) {
                transcode = 1;
                break;
            }
            snprintf(st->detail, sizeof(st->detail),
                     "instance %s is stored in transfer syntax %s; only one instance at a time "
                     "is transcoded, to %s (ask for transfer-syntax=* or that syntax)",
                     st->list.v[i].sop, st->list.v[i].ts, DCM_TS_EXPLICIT_LE);
            return -EPROTO;
        }
    st->stream = va_stream_new();
    if (!st->stream)
        return -ENOMEM;
    char path[HR_PATH_MAX + 128], bnd[40];
    if (transcode) {
        sto_objstore_path(store, st->list.v[0].sha, path);
        return build_transcoded_instance(r, st, path);
    }
    if (st->single_part) {
        sto_rinst *it = &st->list.v[0];
        sto_objstore_path(store, it->sha, path);
        snprintf(st->ctype, sizeof(st->ctype), "application/dicom; transfer-syntax=%s", it->ts);
        return va_stream_file(st->stream, path, 0, it->size);
    }
    boundary_new(bnd);
    int rc = 0;
    for (size_t i = 0; i < st->list.n && !rc; i++) {
        sto_rinst *it = &st->list.v[i];
        sto_objstore_path(store, it->sha, path);
        rc = va_stream_printf(st->stream,
                              "--%s\r\nContent-Type: application/dicom; transfer-syntax=%s\r\n"
                              "Content-Length: %llu\r\n\r\n",
                              bnd, it->ts, (unsigned long long)it->size);
        if (!rc)
            rc = va_stream_file(st->stream, path, 0, it->size);
        if (!rc)
            rc = va_stream_text(st->stream, "\r\n", 2);
    }
    if (!rc)
        rc = va_stream_printf(st->stream, "--%s--\r\n", bnd);
    snprintf(st->ctype, sizeof(st->ctype),
             "multipart/related; type=\"application/dicom\"; boundary=%s", bnd);
    return rc;
}

/* The metadata array streamed from the sidecar files (each checked first, one
 * at a time): memory is one stream window whatever the number of instances. */
static int build_metadata(va_req *r, wado_state *st)
{
    const sto_objstore *store = &r->srv->sto->store;
    char path[STO_PATH_MAX];
    uint64_t size = 0;
    st->stream = va_stream_new();
    if (!st->stream)
        return -ENOMEM;
    int rc = va_stream_text(st->stream, "[", 1);
    for (size_t i = 0; i < st->list.n && !rc; i++) {
        rc = sto_meta_json_file(store, st->list.v[i].sha, path, &size);
        if (!rc && i)
            rc = va_stream_text(st->stream, ",", 1);
        if (!rc)
            rc = va_stream_file(st->stream, path, 0, size);
    }
    if (!rc)
        rc = va_stream_text(st->stream, "]", 1);
    snprintf(st->ctype, sizeof(st->ctype), "application/dicom+json");
    return rc;
}

/* Frames or one bulk range of the single instance in st->list. */
static int build_ranges(va_req *r, wado_state *st)
{
    const sto_objstore *store = &r->srv->sto->store;
    sto_rinst *it = &st->list.v[0];
    char path[HR_PATH_MAX + 128], bnd[40];
    sto_objstore_path(store, it->sha, path);
    st->stream = va_stream_new();
    if (!st->stream)
        return -ENOMEM;
    boundary_new(bnd);
    if (st->kind == W_BULK) {
        if (st->bulk_len == 0 || st->bulk_off > it->size || st->bulk_len > it->size - st->bulk_off)
            return HR_ENOTFOUND;
        if (st->frame_type[0] && strcasecmp(st->frame_type, "application/octet-stream") != 0) {
            snprintf(st->detail, sizeof(st->detail), "bulk data is application/octet-stream");
            return -EPROTO;
        }
        if (st->single_part) {
            snprintf(st->ctype, sizeof(st->ctype), "application/octet-stream");
            return va_stream_file(st->stream, path, st->bulk_off, st->bulk_len);
        }
        int rc = va_stream_printf(st->stream,
                                  "--%s\r\nContent-Type: application/octet-stream\r\n\r\n", bnd);
        if (!rc)
            rc = va_stream_file(st->stream, path, st->bulk_off, st->bulk_len);
        if (!rc)
            rc = va_stream_printf(st->stream, "\r\n--%s--\r\n", bnd);
        snprintf(st->ctype, sizeof(st->ctype),
                 "multipart/related; type=\"application/octet-stream\"; boundary=%s", bnd);
        return rc;
    }
    sto_frames *t = NULL;
    int rc = sto_frames_load(store, it->sha, &t);
    if (rc)
        return rc;
    const sto_pixel_info *pi = sto_frames_info(t);
    int enc = pi->kind == STO_PIXEL_ENCAPSULATED;
    const char *media = frame_media(pi->ts, enc);
    const char *ft = st->frame_type;
    int octet = !ft[0] || strcasecmp(ft, "application/octet-stream") == 0;
    if (enc && octet &&
        (strcmp(st->want_ts, DCM_TS_EXPLICIT_LE) == 0 || (ft[0] && !st->want_ts[0]))) {
        /* native frames of a compressed object: decoded */
        char ts[65];
        snprintf(ts, sizeof(ts), "%s", pi->ts);
        for (int i = 0; i < st->n_frames && !rc; i++)
            if (st->frames[i] > pi->n_frames)
                rc = HR_ENOTFOUND;
        sto_frames_free(t);
        return rc ? rc : build_transcoded_frames(r, st, path, ts);
    }
    if (ft[0] && strcasecmp(ft, media) != 0 &&
        !(strcasecmp(ft, "application/octet-stream") == 0 && strcmp(st->want_ts, "*") == 0)) {
        snprintf(st->detail, sizeof(st->detail),
                 "frames are stored as %s (transfer syntax %s); they are sent as stored or "
                 "decoded to application/octet-stream (transfer syntax %s) only",
                 media, pi->ts, DCM_TS_EXPLICIT_LE);
        sto_frames_free(t);
        return -EPROTO;
    }
    int native_le = !enc && strcmp(pi->ts, "1.2.840.10008.1.2.2") != 0;
    if (!ts_ok(st, pi->ts) && !(strcmp(st->want_ts, "1.2.840.10008.1.2.1") == 0 && native_le)) {
        snprintf(st->detail, sizeof(st->detail),
                 "frames are stored in transfer syntax %s; they are sent as stored or decoded "
                 "to %s only",
                 pi->ts, DCM_TS_EXPLICIT_LE);
        sto_frames_free(t);
        return -EPROTO;
    }
    if (st->single_part && st->n_frames != 1) {
        sto_frames_free(t);
        snprintf(st->detail, sizeof(st->detail),
                 "several frames need multipart/related; one frame may be octet-stream");
        return -EPROTO;
    }
    for (int i = 0; i < st->n_frames && !rc; i++) {
        sto_frame f;
        rc = sto_frames_get(t, st->frames[i], &f);
        if (rc)
            break;
        if (f.bit_offset != 0) {
            sto_frame_free(&f);
            snprintf(st->detail, sizeof(st->detail),
                     "frame %u of this 1-bit image does not start on a byte boundary; not "
                     "supported",
                     st->frames[i]);
            rc = -EPROTO;
            break;
        }
        if (!st->single_part)
            rc =
                va_stream_printf(st->stream, "--%s\r\nContent-Type: %s; transfer-syntax=%s\r\n\r\n",
                                 bnd, media, frame_ts(&f));
        for (size_t k = 0; k < f.n_ranges && !rc; k++)
            rc = va_stream_file(st->stream, path, f.ranges[k].offset, f.ranges[k].length);
        if (!rc && !st->single_part)
            rc = va_stream_text(st->stream, "\r\n", 2);
        sto_frame_free(&f);
    }
    sto_frames_free(t);
    if (rc)
        return rc;
    if (st->single_part) {
        snprintf(st->ctype, sizeof(st->ctype), "%s", media);
        return 0;
    }
    snprintf(st->ctype, sizeof(st->ctype), "multipart/related; type=\"%s\"; boundary=%s", media,
             bnd);
    return va_stream_printf(st->stream, "--%s--\r\n", bnd);
}

static void wado_work(va_req *r, redisContext *c)
{
    wado_state *st = r->state;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (!st->study[0]) {
        st->rc = sto_retrieve_study_of(c, st->sop, st->study);
        if (st->rc == HR_EREDIS)
            sto_worker_redis_failed();
        if (st->rc)
            return;
    }
    int one =
        st->kind == W_FRAMES || st->kind == W_BULK || st->kind == W_URI || (st->sop[0] != '\0');
    st->rc = sto_retrieve_list(c, &r->scope, st->study, st->series[0] ? st->series : NULL,
                               st->sop[0] ? st->sop : NULL, WADO_MAX_INSTANCES, &st->list);
    if (st->rc == HR_EREDIS) {
        sto_worker_redis_failed();
        return;
    }
    if (st->rc == HR_EFORBIDDEN) {
        /* outside the caller's scope: answered like an absent study, at its cost */
        st->rc = HR_ENOTFOUND;
        snprintf(st->detail, sizeof(st->detail), "outside scope");
        return;
    }
    if (st->rc)
        return;
    if (one && st->list.n != 1) {
        st->rc = HR_ENOTFOUND;
        return;
    }
    switch (st->kind) {
    case W_INSTANCES:
    case W_URI:
        st->rc = build_instances(r, st);
        break;
    case W_METADATA:
        st->rc = build_metadata(r, st);
        break;
    case W_FRAMES:
    case W_BULK:
        st->rc = build_ranges(r, st);
        break;
    }
}

static const char *k_actions[] = {"wado", "metadata", "frames", "bulk", "wado-uri"};

static void wado_done(va_req *r)
{
    wado_state *st = r->state;
    r->state = NULL;
    if (va_req_gone(r)) {
        state_free(st);
        return;
    }
    char detail[320];
    snprintf(detail, sizeof(detail), "%s%s%s %zu instance(s)%s%s%s", st->series[0] ? "series " : "",
             st->series, st->sop[0] ? " sop " : "", st->list.n,
             st->transcoded ? "; decoded to " DCM_TS_EXPLICIT_LE : "", st->detail[0] ? "; " : "",
             st->detail);
    const char *outcome = st->rc == 0              ? "success"
                          : st->rc == HR_ENOTFOUND ? "not-found"
                                                   : "failure";
    if (st->rc == HR_ENOTFOUND && strcmp(st->detail, "outside scope") == 0)
        outcome = "denied";
    va_audit(r, k_actions[st->kind], st->list.patient[0] ? st->list.patient : NULL,
             st->study[0] ? st->study : NULL, detail, outcome);
    if (st->rc == -EPROTO) {
        va_send_error(r, 406, "not_acceptable", "%s", st->detail);
    } else if (st->rc == -EBUSY) {
        va_add_header(r, "Retry-After", "1");
        va_send_error(r, 503, "busy", "%d objects are being decoded; retry",
                      r->srv->cfg->http.transcode_concurrency);
    } else if (st->rc == HR_ENOTFOUND) {
        va_send_error(r, 404, "not_found", "no such %s",
                      st->kind == W_FRAMES ? "frame or instance"
                      : st->sop[0]         ? "instance"
                      : st->series[0]      ? "series"
                                           : "study");
    } else if (st->rc == HR_EUNSUP) {
        va_send_error(r, 406, "not_acceptable", "frames of this object cannot be located");
    } else if (st->rc) {
        va_send_rc(r, st->rc, "retrieve");
    } else {
        va_stream *s = st->stream;
        st->stream = NULL;
        va_stream_start(s, r, 200, st->ctype);
    }
    state_free(st);
}

/* ---- request parsing ---- */

/* The request's state with the UIDs of its first three path segments
 * (study, series, instance; a fourth is frames or a range), validated;
 * NULL when answered (400, 500). */
static wado_state *begin(va_req *r, enum wado_kind kind)
{
    wado_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return NULL;
    }
    st->kind = kind;
    char *dst[3] = {st->study, st->series, st->sop};
    for (int i = 0; i < r->n_segs && i < 3; i++) {
        if (!dcm_uid_valid(r->segs[i])) {
            free(st);
            va_send_error(r, 400, "bad_uid", "\"%.64s\" is not a valid DICOM UID", r->segs[i]);
            return NULL;
        }
        snprintf(dst[i], STO_UID_BUF, "%s", r->segs[i]);
    }
    return st;
}

/* Starts the pool step, or answers 406 (with why) when negotiation refused. */
static void run_negotiated(va_req *r, wado_state *st, int refused, const char *why)
{
    if (refused) {
        va_send_error(r, 406, "not_acceptable", "%s", st->detail[0] ? st->detail : why);
        free(st);
        return;
    }
    r->state = st;
    va_req_run(r, wado_work, wado_done);
}

void va_handle_wado(va_req *r)
{
    wado_state *st = begin(r, W_INSTANCES);
    if (st)
        run_negotiated(r, st, negotiate_instances(va_header(r, "accept"), st, st->sop[0] != '\0'),
                       "supported: multipart/related; type=\"application/dicom\" (and "
                       "application/dicom for one instance)");
}

void va_handle_metadata(va_req *r)
{
    wado_state *st = begin(r, W_METADATA);
    const char *accept = va_header(r, "accept");
    if (st)
        run_negotiated(r, st,
                       accept && *accept && !strstr(accept, "application/dicom+json") &&
                           !strstr(accept, "application/json") && !strstr(accept, "*/*"),
                       "metadata is application/dicom+json");
}

void va_handle_frames(va_req *r)
{
    char *list = r->segs[3]; /* the route has four segments */
    wado_state *st = begin(r, W_FRAMES);
    if (!st)
        return;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long n = strtoul(t, &end, 10);
        if (*end || n == 0 || n > UINT32_MAX || st->n_frames == WADO_MAX_FRAMES) {
            free(st);
            va_send_error(r, 400, "bad_request",
                          "frame list must be 1-based numbers separated by commas (at most %d)",
                          WADO_MAX_FRAMES);
            return;
        }
        st->frames[st->n_frames++] = (uint32_t)n;
    }
    run_negotiated(r, st, negotiate_frames(va_header(r, "accept"), st),
                   "supported: multipart/related with the stored media type, or "
                   "transfer-syntax=*, or application/octet-stream (decoded to "
                   "1.2.840.10008.1.2.1)");
}

void va_handle_bulk(va_req *r)
{
    unsigned long long off, len; /* the route has four segments */
    char tail;
    if (sscanf(r->segs[3], "%llu-%llu%c", &off, &len, &tail) != 2) {
        va_send_error(r, 400, "bad_request", "bulk data is addressed as {offset}-{length}");
        return;
    }
    wado_state *st = begin(r, W_BULK);
    if (!st)
        return;
    st->bulk_off = off;
    st->bulk_len = len;
    run_negotiated(r, st, negotiate_frames(va_header(r, "accept"), st),
                   "bulk data is application/octet-stream");
}

/* WADO-URI: ?requestType=WADO&studyUID=&seriesUID=&objectUID=&contentType= */
void va_handle_wado_uri(va_req *r)
{
    const char *rt = va_param_get(r, "requestType");
    const char *study = va_param_get(r, "studyUID");
    const char *series = va_param_get(r, "seriesUID");
    const char *sop = va_param_get(r, "objectUID");
    const char *ct = va_param_get(r, "contentType");
    const char *ts = va_param_get(r, "transferSyntax");
    if (!rt || strcmp(rt, "WADO") != 0) {
        va_send_error(r, 400, "bad_request", "requestType=WADO is required");
        return;
    }
    if (!study || !series || !sop || !dcm_uid_valid(study) || !dcm_uid_valid(series) ||
        !dcm_uid_valid(sop)) {
        va_send_error(r, 400, "bad_uid", "studyUID, seriesUID and objectUID must be valid UIDs");
        return;
    }
    if (!ct || strcmp(ct, "application/dicom") != 0) {
        va_send_error(r, 406, "not_acceptable",
                      "only contentType=application/dicom is supported (no rendering to %s)",
                      ct ? ct : "image/jpeg, the WADO-URI default");
        return;
    }
    if (ts && strcmp(ts, "*") != 0 && !dcm_uid_valid(ts)) {
        va_send_error(r, 406, "not_acceptable",
                      "transferSyntax=\"%.64s\" is neither * nor a transfer syntax UID", ts);
        return;
    }
    wado_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->kind = W_URI;
    st->single_part = 1;
    snprintf(st->study, sizeof(st->study), "%s", study);
    snprintf(st->series, sizeof(st->series), "%s", series);
    snprintf(st->sop, sizeof(st->sop), "%s", sop);
    if (ts)
        snprintf(st->want_ts, sizeof(st->want_ts), "%s", ts);
    r->state = st;
    va_req_run(r, wado_work, wado_done);
}
