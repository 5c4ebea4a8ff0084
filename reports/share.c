/* Patient share links (decision 0032): reports/share.h. */
#include "share.h"
#include "jws.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../dicom/uids.h"
#include "../storage/retrieve.h"

#include <cairo.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QR_MODULE_PX 8 /* pixels per QR module */
#define QR_QUIET     4 /* modules of quiet zone */
#define QR_TEXT_MAX  1024

void rpt_share_free(rpt_share *s)
{
    if (s) {
        json_decref(s->images);
        s->images = NULL;
    }
}

int rpt_share_id_parse(const char *id, int *n, char *study)
{
    long v = 0;
    const char *p;
    if (!id || id[0] != 's' || id[1] < '1' || id[1] > '9')
        return -EINVAL;
    p = id + 1;
    while (*p >= '0' && *p <= '9' && v <= RPT_SHARE_N_MAX)
        v = v * 10 + (*p++ - '0');
    if (*p != '-' || v < 1 || v > RPT_SHARE_N_MAX || !dcm_uid_key_valid(p + 1))
        return -EINVAL;
    *n = (int)v;
    snprintf(study, HR_UID_MAX, "%s", p + 1);
    return 0;
}

/* ---- key images ---- */

/* 1 when a SOP class has no pixels to show. */
static int no_pixels(const char *cls)
{
    static const char *const k[] = {
        "1.2.840.10008.5.1.4.1.1.88.",  /* structured reports, key object selection */
        "1.2.840.10008.5.1.4.1.1.9.",   /* waveforms (ECG) */
        "1.2.840.10008.5.1.4.1.1.11.",  /* presentation states */
        "1.2.840.10008.5.1.4.1.1.104.", /* encapsulated PDF, CDA */
        "1.2.840.10008.5.1.4.1.1.66",   /* raw data, registrations, segmentations */
        "1.2.840.10008.5.1.4.1.1.481.", /* RT objects but images: below */
    };
    if (strcmp(cls, "1.2.840.10008.5.1.4.1.1.481.1") == 0) /* RT image */
        return 0;
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (strncmp(cls, k[i], strlen(k[i])) == 0)
            return 1;
    return 0;
}

static int add_image(json_t *a, const sto_rinst *it)
{
    /* a multi-frame object shows its middle frame */
    unsigned frame = it->frames > 1 ? it->frames / 2 + 1 : 1;
    json_t *o =
        json_pack("{s:s, s:s, s:i}", "series", it->series, "sop", it->sop, "frame", (int)frame);
    return o && json_array_append_new(a, o) == 0 ? 0 : -ENOMEM;
}

int rpt_share_images(redisContext *c, const hr_config *cfg, const char *study, json_t **out)
{
    const shr_config *sc = cfg->share;
    sto_rlist l;
    json_t *a = json_array();
    int rc, max = sc ? sc->images_max : 24;
    size_t i = 0;

    memset(&l, 0, sizeof(l));
    *out = NULL;
    if (!a)
        return -ENOMEM;
    rc = sto_retrieve_list(c, NULL, study, NULL, NULL, RPT_INSTANCES_MAX, &l);
    if (rc)
        goto out;
    while (i < l.n && (int)json_array_size(a) < max) {
        size_t j = i, n_img = 0, pick, k;
        while (j < l.n && strcmp(l.v[j].series, l.v[i].series) == 0) {
            if (!no_pixels(l.v[j].sop_class))
                n_img++;
            j++;
        }
        if (sc && sc->images == SHR_IMAGES_ALL) {
            for (k = i; k < j && (int)json_array_size(a) < max && !rc; k++)
                if (!no_pixels(l.v[k].sop_class))
                    rc = add_image(a, &l.v[k]);
        } else if (n_img) {
            /* the middle image of the series, in instance number order */
            pick = n_img / 2;
            for (k = i; k < j; k++) {
                if (no_pixels(l.v[k].sop_class))
                    continue;
                if (pick-- == 0) {
                    rc = add_image(a, &l.v[k]);
                    break;
                }
            }
        }
        if (rc)
            goto out;
        i = j;
    }
    *out = a;
    a = NULL;
out:
    json_decref(a);
    sto_rlist_free(&l);
    return rc;
}

/* ---- the records ---- */

static void token_hash(const char *token, char hex[65])
{
    hr_sha256 *h = hr_sha256_new();
    hex[0] = '\0';
    if (!h)
        return;
    hr_sha256_update(h, token, strlen(token));
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
}

int rpt_share_create(redisContext *c, const hr_config *cfg, const char *study, const char *report,
                     const json_t *images, const char *by, const char *role, const char *hospital,
                     long long now_ms, long long expires_ms, char *token, rpt_share *out)
{
    int per_study = cfg->share ? cfg->share->per_study : 32;
    unsigned char secret[32];
    char b64[48], hex[65], id[RPT_SHARE_ID_MAX];
    char *img = NULL;
    redisReply *rp = NULL;
    long long n;
    int rc = 0;

    if (!dcm_uid_key_valid(study) || !report || !images || expires_ms <= now_ms)
        return -EINVAL;
    img = json_dumps(images, JSON_COMPACT);
    if (!img)
        return -ENOMEM;
    /* the live links of the study (a bound, checked before the counter) */
    rp = redisCommand(c, "ZCOUNT hr:share:{%s}:ids (%lld +inf", study, now_ms);
    if (!rp || rp->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    if (rp->integer >= per_study) {
        rc = HR_ETOOBIG;
        goto out;
    }
    freeReplyObject(rp);
    rp = redisCommand(c, "INCR hr:share:{%s}:seq", study);
    if (!rp || rp->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    n = rp->integer;
    if (n < 1 || n > RPT_SHARE_N_MAX) {
        rc = HR_ETOOBIG;
        goto out;
    }
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        rc = -EIO;
        goto out;
    }
    rpt_b64url_encode(secret, sizeof(secret), b64);
    OPENSSL_cleanse(secret, sizeof(secret));
    snprintf(id, sizeof(id), "s%lld-%s", n, study);
    snprintf(token, RPT_SHARE_TOKEN_MAX, "%s.%s", b64, id);
    OPENSSL_cleanse(b64, sizeof(b64));
    token_hash(token, hex);
    if (!hex[0]) {
        rc = -ENOMEM;
        goto out;
    }
    freeReplyObject(rp);
    rp = NULL;
    /* one slot: the record, the index, their lives */
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c,
                       "HSET hr:share:{%s}:%lld tok %s report %s by %s role %s hospital %s "
                       "created_ms %lld expires_ms %lld revoked_ms 0 revoked_by %s images %s",
                       study, n, hex, report, by, role, hospital, now_ms, expires_ms, "", img);
    redisAppendCommand(c, "PEXPIREAT hr:share:{%s}:%lld %lld", study, n,
                       expires_ms + RPT_SHARE_KEEP_MS);
    redisAppendCommand(c, "ZADD hr:share:{%s}:ids %lld %lld", study, expires_ms, n);
    redisAppendCommand(c, "ZREMRANGEBYSCORE hr:share:{%s}:ids -inf (%lld", study,
                       now_ms - RPT_SHARE_KEEP_MS);
    /* the index lives as long as its longest-lived record */
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "seq" : "ids";
        /* NX: a key without a life yet; GT: a longer one */
        redisAppendCommand(c, "PEXPIREAT hr:share:{%s}:%s %lld NX", study, k,
                           expires_ms + RPT_SHARE_KEEP_MS);
        redisAppendCommand(c, "PEXPIREAT hr:share:{%s}:%s %lld GT", study, k,
                           expires_ms + RPT_SHARE_KEEP_MS);
    }
    redisAppendCommand(c, "EXEC");
    for (int i = 0; i < 10; i++) {
        if (redisGetReply(c, (void **)&rp) != REDIS_OK || !rp) {
            rc = HR_EREDIS;
            goto out;
        }
        if (i == 9 && (rp->type != REDIS_REPLY_ARRAY || rp->elements != 8))
            rc = HR_EREDIS;
        freeReplyObject(rp);
        rp = NULL;
    }
    if (rc)
        goto out;
    if (out) {
        memset(out, 0, sizeof(*out));
        snprintf(out->id, sizeof(out->id), "%s", id);
        snprintf(out->study, sizeof(out->study), "%s", study);
        out->n = (int)n;
        snprintf(out->report, sizeof(out->report), "%s", report);
        snprintf(out->by, sizeof(out->by), "%s", by);
        snprintf(out->role, sizeof(out->role), "%s", role);
        snprintf(out->hospital, sizeof(out->hospital), "%s", hospital);
        out->created_ms = now_ms;
        out->expires_ms = expires_ms;
        out->images = json_deep_copy(images);
        if (!out->images)
            rc = -ENOMEM;
    }
out:
    freeReplyObject(rp);
    free(img);
    if (rc)
        token[0] = '\0';
    return rc;
}

/* Reads record n of study into out, its token hash into hex (may be NULL). */
static int read_record(redisContext *c, const char *study, int n, rpt_share *out, char *hex)
{
    static const char *const f[] = {"tok",        "report",     "by",         "role",
                                    "hospital",   "created_ms", "expires_ms", "revoked_ms",
                                    "revoked_by", "images"};
    enum { N_F = sizeof(f) / sizeof(f[0]) };
    redisReply *rp;
    const char *v[N_F];
    int rc = 0;

    memset(out, 0, sizeof(*out));
    rp = redisCommand(c,
                      "HMGET hr:share:{%s}:%d tok report by role hospital created_ms expires_ms "
                      "revoked_ms revoked_by images",
                      study, n);
    if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != N_F) {
        rc = HR_EREDIS;
        goto out;
    }
    for (size_t i = 0; i < N_F; i++)
        v[i] = rp->element[i]->type == REDIS_REPLY_STRING ? rp->element[i]->str : NULL;
    if (!v[0] || strlen(v[0]) != 64 || !v[1]) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    snprintf(out->id, sizeof(out->id), "s%d-%s", n, study);
    snprintf(out->study, sizeof(out->study), "%s", study);
    out->n = n;
    snprintf(out->report, sizeof(out->report), "%s", v[1]);
    snprintf(out->by, sizeof(out->by), "%s", v[2] ? v[2] : "");
    snprintf(out->role, sizeof(out->role), "%s", v[3] ? v[3] : "");
    snprintf(out->hospital, sizeof(out->hospital), "%s", v[4] ? v[4] : "");
    out->created_ms = v[5] ? strtoll(v[5], NULL, 10) : 0;
    out->expires_ms = v[6] ? strtoll(v[6], NULL, 10) : 0;
    out->revoked_ms = v[7] ? strtoll(v[7], NULL, 10) : 0;
    snprintf(out->revoked_by, sizeof(out->revoked_by), "%s", v[8] ? v[8] : "");
    out->images = v[9] ? json_loads(v[9], 0, NULL) : NULL;
    if (!json_is_array(out->images)) {
        json_decref(out->images);
        out->images = json_array();
        if (!out->images)
            rc = -ENOMEM;
    }
    if (hex)
        memcpy(hex, v[0], 65);
out:
    freeReplyObject(rp);
    return rc;
}

int rpt_share_get(redisContext *c, const char *id, rpt_share *out)
{
    char study[HR_UID_MAX];
    int n;
    memset(out, 0, sizeof(*out));
    if (rpt_share_id_parse(id, &n, study))
        return HR_ENOTFOUND;
    return read_record(c, study, n, out, NULL);
}

/* 1 when s is exactly len characters of base64url. */
static int b64url_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

int rpt_share_resolve(redisContext *c, const char *token, long long now_ms, rpt_share *out)
{
    char study[HR_UID_MAX], want[65], got[65];
    size_t len;
    int n, rc;

    memset(out, 0, sizeof(*out));
    len = token ? strnlen(token, RPT_SHARE_TOKEN_MAX) : 0;
    if (len <= RPT_SHARE_SECRET_LEN + 1 || len >= RPT_SHARE_TOKEN_MAX ||
        token[RPT_SHARE_SECRET_LEN] != '.' || !b64url_chars(token, RPT_SHARE_SECRET_LEN) ||
        rpt_share_id_parse(token + RPT_SHARE_SECRET_LEN + 1, &n, study))
        return HR_ENOTFOUND;
    rc = read_record(c, study, n, out, want);
    if (rc)
        goto out;
    token_hash(token, got);
    if (!got[0]) {
        rc = -ENOMEM;
        goto out;
    }
    if (CRYPTO_memcmp(want, got, 64) != 0 || out->revoked_ms > 0 || out->expires_ms <= now_ms)
        rc = HR_ENOTFOUND;
out:
    if (rc)
        rpt_share_free(out);
    return rc;
}

int rpt_share_revoke(redisContext *c, const char *id, const char *by, long long now_ms,
                     long long *revoked_ms)
{
    /* in the share's slot: a revoked share keeps its first revocation; the
     * index scores its end */
    static const char k_script[] =
        "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
        "local t = tonumber(redis.call('HGET', KEYS[1], 'revoked_ms') or '0')\n"
        "if t and t > 0 then return t end\n"
        "redis.call('HSET', KEYS[1], 'revoked_ms', ARGV[1], 'revoked_by', ARGV[2])\n"
        "if redis.call('ZSCORE', KEYS[2], ARGV[3]) then\n"
        "  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])\n"
        "end\n"
        "return tonumber(ARGV[1])\n";
    char study[HR_UID_MAX], k1[160], k2[160], nbuf[16];
    redisReply *rp;
    int n, rc = 0;

    if (rpt_share_id_parse(id, &n, study))
        return HR_ENOTFOUND;
    snprintf(k1, sizeof(k1), "hr:share:{%s}:%d", study, n);
    snprintf(k2, sizeof(k2), "hr:share:{%s}:ids", study);
    snprintf(nbuf, sizeof(nbuf), "%d", n);
    rp = redisCommand(c, "EVAL %s 2 %s %s %lld %s %s", k_script, k1, k2, now_ms, by, nbuf);
    if (!rp || rp->type != REDIS_REPLY_INTEGER)
        rc = HR_EREDIS;
    else if (rp->integer < 0)
        rc = HR_ENOTFOUND;
    else if (revoked_ms)
        *revoked_ms = rp->integer;
    freeReplyObject(rp);
    return rc;
}

int rpt_share_list(redisContext *c, const char *study, long long now_ms,
                   int (*cb)(void *arg, const rpt_share *s), void *arg)
{
    redisReply *rp;
    int rc = 0;

    if (!dcm_uid_key_valid(study))
        return HR_ENOTFOUND;
    rp = redisCommand(c, "ZRANGEBYSCORE hr:share:{%s}:ids %lld +inf LIMIT 0 %d", study,
                      now_ms - RPT_SHARE_KEEP_MS, RPT_SHARE_LIST_MAX);
    if (!rp || rp->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(rp);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < rp->elements && !rc; i++) {
        rpt_share s;
        int n;
        if (rp->element[i]->type != REDIS_REPLY_STRING)
            continue;
        n = atoi(rp->element[i]->str);
        if (n < 1)
            continue;
        rc = read_record(c, study, n, &s, NULL);
        if (rc == HR_ENOTFOUND) { /* expired meanwhile */
            rc = 0;
            continue;
        }
        if (rc == 0)
            rc = cb(arg, &s);
        rpt_share_free(&s);
    }
    freeReplyObject(rp);
    return rc;
}

/* ---- the QR code ---- */

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len)
{
    return hr_buf_append(closure, data, len) ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

int rpt_share_qr_png(const char *text, hr_buf *out)
{
    QRcode *qr = NULL;
    cairo_surface_t *s = NULL;
    cairo_t *cr = NULL;
    int rc = 0, side;

    if (!text || strlen(text) > QR_TEXT_MAX)
        return -EINVAL;
    qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return errno == ERANGE || errno == EINVAL ? -EINVAL : -ENOMEM;
    side = (qr->width + 2 * QR_QUIET) * QR_MODULE_PX;
    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, side, side);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        rc = -ENOMEM;
        goto out;
    }
    cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int y = 0; y < qr->width; y++)
        for (int x = 0; x < qr->width; x++)
            if (qr->data[y * qr->width + x] & 1)
                cairo_rectangle(cr, (x + QR_QUIET) * QR_MODULE_PX, (y + QR_QUIET) * QR_MODULE_PX,
                                QR_MODULE_PX, QR_MODULE_PX);
    cairo_fill(cr);
    cairo_surface_flush(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rc = -EIO;
        goto out;
    }
    if (cairo_surface_write_to_png_stream(s, png_write, out) != CAIRO_STATUS_SUCCESS)
        rc = out->len >= out->cap ? HR_ETOOBIG : -EIO;
out:
    if (cr)
        cairo_destroy(cr);
    if (s)
        cairo_surface_destroy(s);
    QRcode_free(qr);
    return rc;
}
