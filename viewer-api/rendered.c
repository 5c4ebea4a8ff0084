/* PS3.18 rendered and thumbnail resources (decision 0029):
 *   GET /dicomweb/studies/{s}[/series/{se}[/instances/{i}[/frames/{f}]]]/thumbnail
 *   GET /dicomweb/studies/{s}/series/{se}/instances/{i}[/frames/{f}]/rendered
 * one frame as image/jpeg (default) or image/png, rendered with DCMTK
 * (dicom/render.h). Study and series `rendered` (a multipart of every
 * instance in PS3.18) are not offered: 406, pointing at /thumbnail or the
 * instance level.
 *
 * Which frame: frame level: that frame; instance `rendered`: frame 1;
 * instance `thumbnail`: the middle frame; series `thumbnail`: the middle
 * instance of the series (instance number order), its middle frame; study
 * `thumbnail`: the same in the first series whose instance renders (at most
 * RENDER_TRIES series are tried).
 *
 * Query: window=center,width[,linear] (VOI LUT function linear only),
 * viewport=vw,vh (each 1..HR_RENDER_MAX_SIDE; the image fits within it,
 * aspect kept, never enlarged; a thumbnail without one fits 128x128),
 * quality=1..100 (JPEG), accept=<media type> (overrides the Accept header,
 * as OHIF sends it). Anything else malformed: 400.
 *
 * Scope: as WADO-RS (sto_retrieve_list): out of scope answers the 404 of an
 * absent study. Every answer past the token is audited ("rendered" or
 * "thumbnail"). The pool step (token, index, render) runs on the server's
 * render pool (srv->render_pool: VA_RENDER_THREADS at once, VA_RENDER_QUEUE
 * waiting at most; beyond: 503 with Retry-After), never on the loop nor on
 * libuv's pool that makes ingest durable. Thumbnails of the default sizes
 * are cached under <data_dir>/rendered/ (objects never change). */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_io.h"
#include "../common/hr_log.h"
#include "../dicom/render.h"
#include "../dicom/uids.h"
#include "../storage/index.h"
#include "../storage/retrieve.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define RENDER_MAX_INSTANCES 100000     /* listed for a study or series thumbnail (as WADO-RS) */
#define RENDER_TRIES         4          /* series tried for a study thumbnail */
#define THUMB_SIDE           128        /* a thumbnail's box without viewport */
#define RENDER_CACHE_MAX     (4u << 20) /* a cached thumbnail read back */
#define RENDER_WINDOW_MAX    1e7        /* |center| and width */
#define RENDER_RETRY_AFTER   "1"
#define RENDER_MAX_AGE       "private, max-age=600"

enum level { L_STUDY, L_SERIES, L_INSTANCE, L_FRAME };

typedef struct rstate {
    int thumbnail; /* the thumbnail resource (else rendered) */
    enum level level;
    char study[STO_UID_BUF], series[STO_UID_BUF], sop[STO_UID_BUF];
    hr_render_req rq; /* frame 0: chosen in the pool step */
    int viewport_set;
    int cacheable;
    /* results */
    int rc;
    int denied; /* out of scope */
    sto_rlist list;
    char used_series[STO_UID_BUF], used_sop[STO_UID_BUF]; /* what was rendered */
    unsigned used_frame;
    unsigned char *img; /* malloc'd */
    size_t len;
    const char *ctype;
    int cached;
} rstate;

static void rstate_free(rstate *st)
{
    if (st) {
        sto_rlist_free(&st->list);
        free(st->img);
        free(st);
    }
}

/* ---- the disk cache of thumbnails ---- */

/* <data_dir>/rendered/<sha>-<16 hex of the parameters>.<jpg|png> */
static int cache_path(const hr_config *cfg, const char *sha, const hr_render_req *rq, char *out,
                      size_t cap)
{
    char key[160], hex[65];
    hr_sha256 *h = hr_sha256_new();
    if (!h)
        return -ENOMEM;
    snprintf(key, sizeof(key), "thumb|%u|%d|%u|%u|%d", rq->frame, (int)rq->fmt, rq->max_w,
             rq->max_h, rq->quality);
    hr_sha256_update(h, key, strlen(key));
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
    if ((size_t)snprintf(out, cap, "%s/rendered/%s-%.16s.%s", cfg->data_dir, sha, hex,
                         rq->fmt == HR_RENDER_PNG ? "png" : "jpg") >= cap)
        return HR_ETOOBIG;
    return 0;
}

/* ---- the pool step ---- */

/* Renders frame (0: the middle one for a thumbnail, else 1) of instance it
 * into st (from the cache when allowed). */
static int render_instance(va_req *r, rstate *st, const sto_rinst *it, unsigned frame)
{
    const hr_config *cfg = r->srv->cfg;
    char path[HR_PATH_MAX + 128], cpath[HR_PATH_MAX + 160];
    hr_render_req rq = st->rq;
    int rc;

    if (frame == 0)
        frame = st->thumbnail && it->frames > 1 ? (it->frames + 1) / 2 : 1;
    rq.frame = frame;
    snprintf(st->used_series, sizeof(st->used_series), "%s", it->series);
    snprintf(st->used_sop, sizeof(st->used_sop), "%s", it->sop);
    st->used_frame = frame;
    if (it->frames && frame > it->frames)
        return -ENOENT; /* the index knows: no file is opened */
    if (st->cacheable && cache_path(cfg, it->sha, &rq, cpath, sizeof(cpath)) == 0) {
        if (hr_read_file(cpath, RENDER_CACHE_MAX, &st->img, &st->len) == 0 && st->len > 0) {
            st->cached = 1;
            st->ctype = rq.fmt == HR_RENDER_PNG ? "image/png" : "image/jpeg";
            return 0;
        }
        free(st->img);
        st->img = NULL;
    } else {
        cpath[0] = '\0';
    }
    sto_objstore_path(&r->srv->sto->store, it->sha, path);
    rc = hr_render_frame(path, &rq, &st->img, &st->len, &st->ctype);
    if (rc == 0 && st->cacheable && cpath[0])
        va__cache_store(cfg, cpath, st->img, st->len, "rendered");
    return rc;
}

/* The middle instance of the series starting at index i of the list; *next
 * receives the index of the next series. */
static const sto_rinst *middle_of_series(const sto_rlist *l, size_t i, size_t *next)
{
    size_t j = i;
    while (j < l->n && strcmp(l->v[j].series, l->v[i].series) == 0)
        j++;
    *next = j;
    return &l->v[i + (j - i) / 2];
}

static void render_work(va_req *r, redisContext *c)
{
    rstate *st = r->state;
    int rc;

    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    rc = sto_retrieve_list(c, &r->scope, st->study, st->series[0] ? st->series : NULL,
                           st->sop[0] ? st->sop : NULL, RENDER_MAX_INSTANCES, &st->list);
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    if (rc == HR_EFORBIDDEN) {
        /* outside the caller's scope: answered like an absent study */
        st->denied = 1;
        rc = HR_ENOTFOUND;
    }
    if (rc == 0 && st->list.n == 0)
        rc = HR_ENOTFOUND;
    if (rc)
        goto out;
    if (st->level >= L_INSTANCE) {
        rc = render_instance(r, st, &st->list.v[0], st->rq.frame);
        goto out;
    }
    /* a representative instance: the middle of its series; for a study,
     * the next series while the chosen instance is no image */
    rc = -ENOTSUP;
    for (size_t i = 0, tries = 0; i < st->list.n && tries < RENDER_TRIES; tries++) {
        size_t next;
        const sto_rinst *it = middle_of_series(&st->list, i, &next);
        rc = render_instance(r, st, it, 0);
        if (rc != -ENOTSUP || st->level == L_SERIES)
            break;
        i = next;
    }
out:
    st->rc = rc;
}

static void render_done(va_req *r)
{
    rstate *st = r->state;
    const char *action = st->thumbnail ? "thumbnail" : "rendered";
    char detail[320];

    r->state = NULL;
    if (va_req_gone(r)) {
        rstate_free(st);
        return;
    }
    if (r->pool_status == -ECANCELED) {
        va_add_header(r, "Retry-After", RENDER_RETRY_AFTER);
        va_send_error(r, 503, "busy", "the server is stopping");
        rstate_free(st);
        return;
    }
    snprintf(detail, sizeof(detail), "series %s sop %s frame %u%s", st->used_series, st->used_sop,
             st->used_frame, st->denied ? "; outside scope" : "");
    const char *outcome = st->rc == 0                                   ? "success"
                          : st->denied                                  ? "denied"
                          : st->rc == HR_ENOTFOUND || st->rc == -ENOENT ? "not-found"
                                                                        : "failure";
    va_audit(r, action, st->list.patient[0] ? st->list.patient : NULL, st->study, detail, outcome);
    if (st->rc == 0) {
        va_add_header(r, "Cache-Control", RENDER_MAX_AGE);
        va_add_header(r, "Vary", "Accept");
        va_add_header(r, "X-Huren-Cache", st->cached ? "hit" : "miss");
        va_send(r, 200, st->ctype, (const char *)st->img, st->len);
    } else if (st->rc == HR_ENOTFOUND) {
        va_send_error(r, 404, "not_found", "no such %s",
                      st->level == L_STUDY    ? "study"
                      : st->level == L_SERIES ? "series"
                                              : "instance");
    } else if (st->rc == -ENOENT) {
        va_send_error(r, 404, "not_found", "no frame %u in this instance", st->used_frame);
    } else if (st->rc == -ENOTSUP) {
        va_send_error(r, 422, "not_renderable",
                      "this object cannot be rendered (no pixel data, or a transfer syntax or "
                      "photometric interpretation without a decoder)");
    } else if (st->rc == -E2BIG) {
        va_send_error(r, 422, "not_renderable", "the frame exceeds %u samples",
                      (unsigned)HR_RENDER_MAX_PIXELS);
    } else if (st->rc == -EINVAL) {
        va_send_error(r, 400, "bad_request", "the window cannot be applied to this image");
    } else {
        va_send_rc(r, st->rc, "render");
    }
    rstate_free(st);
}

/* ---- request parsing (on the loop) ---- */

/* Splits s at commas into at most max fields; the count, or -1 when more. */
static int split(char *s, char **f, int max)
{
    int n = 0;
    for (char *p = s;; p++) {
        if (n == max)
            return -1;
        f[n++] = p;
        p = strchr(p, ',');
        if (!p)
            return n;
        *p = '\0';
    }
}

static int parse_double(const char *s, double *out)
{
    char *end;
    if (!*s)
        return -1;
    *out = strtod(s, &end);
    return *end || !isfinite(*out) ? -1 : 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The query parameters into st; 0, or -1 when answered (400). */
static int parse_params(va_req *r, rstate *st)
{
    char buf[128], *f[8];
    const char *v;
    int n;

    v = va_param_get(r, "window");
    if (v) {
        snprintf(buf, sizeof(buf), "%s", v);
        n = strlen(v) < sizeof(buf) ? split(buf, f, 3) : -1;
        if (n < 2 || parse_double(f[0], &st->rq.center) || parse_double(f[1], &st->rq.width) ||
            fabs(st->rq.center) > RENDER_WINDOW_MAX || st->rq.width < 1 ||
            st->rq.width > RENDER_WINDOW_MAX) {
            va_send_error(r, 400, "bad_request",
                          "window=center,width,function: numbers, width at least 1");
            return -1;
        }
        if (n == 3 && strcasecmp(f[2], "linear") != 0) {
            va_send_error(r, 400, "bad_request",
                          "window function \"%.32s\" is not supported (linear only)", f[2]);
            return -1;
        }
        st->rq.window_set = 1;
    }
    v = va_param_get(r, "viewport");
    if (v) {
        snprintf(buf, sizeof(buf), "%s", v);
        n = strlen(v) < sizeof(buf) ? split(buf, f, 6) : -1;
        if (n != 2 || parse_uint(f[0], 1, HR_RENDER_MAX_SIDE, &st->rq.max_w) ||
            parse_uint(f[1], 1, HR_RENDER_MAX_SIDE, &st->rq.max_h)) {
            va_send_error(r, 400, "bad_request",
                          "viewport=vw,vh with each side 1..%u (no source region)",
                          HR_RENDER_MAX_SIDE);
            return -1;
        }
        st->viewport_set = 1;
    }
    v = va_param_get(r, "quality");
    if (v) {
        unsigned q;
        if (parse_uint(v, 1, 100, &q)) {
            va_send_error(r, 400, "bad_request", "quality is 1..100");
            return -1;
        }
        st->rq.quality = (int)q;
    }
    return 0;
}

/* 1 when the parameters [semi, end) of a media range say q=0 (refused). */
static int q_zero(const char *semi, const char *end)
{
    const char *p = semi;
    while (p && p < end) {
        const char *k = p + 1;
        while (k < end && *k == ' ')
            k++;
        if (end - k >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
            char num[16];
            size_t n = (size_t)(end - k - 2);
            if (n > sizeof(num) - 1)
                n = sizeof(num) - 1;
            memcpy(num, k + 2, n);
            num[n] = '\0';
            return strtod(num, NULL) <= 0.0;
        }
        p = k < end ? memchr(k, ';', (size_t)(end - k)) : NULL;
    }
    return 0;
}

/* The media type: the accept parameter, else the Accept header; image/jpeg
 * when neither says. 0, or -1 when answered (406). */
static int negotiate(va_req *r, rstate *st)
{
    const char *a = va_param_get(r, "accept");
    if (!a)
        a = va_header(r, "accept");
    st->rq.fmt = HR_RENDER_JPEG;
    if (!a || !*a)
        return 0;
    for (const char *p = a; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *semi = memchr(p, ';', len);
        size_t tl = semi ? (size_t)(semi - p) : len;
        while (tl && (*p == ' ' || *p == '\t')) {
            p++;
            tl--;
            len--;
        }
        while (tl && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
            tl--;
        if (!q_zero(semi, p + len)) {
            if (tl == 10 && strncasecmp(p, "image/jpeg", 10) == 0)
                return 0;
            if (tl == 9 && strncasecmp(p, "image/png", 9) == 0) {
                st->rq.fmt = HR_RENDER_PNG;
                return 0;
            }
            if ((tl == 7 && strncasecmp(p, "image/*", 7) == 0) ||
                (tl == 3 && strncmp(p, "*/*", 3) == 0))
                return 0;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    va_send_error(r, 406, "not_acceptable", "rendered images are image/jpeg or image/png");
    return -1;
}

static void handle(va_req *r, int thumbnail)
{
    rstate *st;
    char *dst[3];
    int rc = -1;

    /* segments: study, series, instance, frames (as many as the route has) */
    if (!thumbnail && r->n_segs < 3) {
        va_send_error(r, 406, "not_acceptable",
                      "a rendered %s (a multipart of every instance) is not offered; ask for "
                      "its /thumbnail or an instance's /rendered",
                      r->n_segs == 1 ? "study" : "series");
        return;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    st->thumbnail = thumbnail;
    st->level = (enum level)(r->n_segs - 1);
    dst[0] = st->study;
    dst[1] = st->series;
    dst[2] = st->sop;
    for (int i = 0; i < r->n_segs && i < 3; i++) {
        if (!dcm_uid_valid(r->segs[i])) {
            va_send_error(r, 400, "bad_uid", "\"%.64s\" is not a valid DICOM UID", r->segs[i]);
            goto out;
        }
        snprintf(dst[i], STO_UID_BUF, "%s", r->segs[i]);
    }
    if (st->level == L_FRAME && parse_uint(r->segs[3], 1, 0x7fffffffu, &st->rq.frame)) {
        va_send_error(r, 400, "bad_request",
                      "one frame number (1-based) per rendered or thumbnail request");
        goto out;
    }
    if (parse_params(r, st) || negotiate(r, st))
        goto out;
    if (thumbnail && !st->viewport_set)
        st->rq.max_w = st->rq.max_h = THUMB_SIDE;
    /* the disk cache holds the default thumbnail sizes only: a bounded number
     * of files per frame whatever clients ask */
    st->cacheable = thumbnail && !st->rq.window_set && !st->rq.quality &&
                    st->rq.max_w == st->rq.max_h &&
                    (st->rq.max_w == THUMB_SIDE || st->rq.max_w == 2 * THUMB_SIDE);
    r->state = st;
    rc = va_req_run_on(r, r->srv->render_pool, render_work, render_done);
    if (rc) {
        /* the queue is full (or the server stops): nothing was read */
        r->state = NULL;
        va_add_header(r, "Retry-After", RENDER_RETRY_AFTER);
        va_send_error(r, 503, "busy", "images are being rendered; retry");
    }
out:
    if (rc)
        rstate_free(st); /* else render_done frees it */
}

void va_handle_rendered(va_req *r)
{
    handle(r, 0);
}

void va_handle_thumbnail(va_req *r)
{
    handle(r, 1);
}
