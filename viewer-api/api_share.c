/* Patient share links (云胶片, decision 0032) over reports/share.h:
 *   POST /api/v1/shares              {study, expires_in_s} -> token, link, QR code
 *   GET  /api/v1/shares?study=S      the study's links (never their tokens)
 *   POST /api/v1/shares/{id}/revoke  effective at once
 * by a technician of the study's hospital or a reader / auditor of the
 * center it was routed to (the admin lists and revokes); anyone else gets
 * the 404 of an absent study. And, public, for the holder of a token:
 *   GET  /api/v1/share/{token}             the final report's text, the images' list
 *   GET  /api/v1/share/{token}/images/{n}  key image n as a JPEG (?size=thumb: small)
 *   GET  /api/v1/share/{token}/pdf         the report's PDF
 * A malformed, unknown, wrong, revoked or expired token, and a report no
 * longer final, get the same 404. Public requests are counted on the loop
 * per address and per token in bounded tables (429 beyond share.per_address
 * / share.per_token per window) before any pool step; every answer is
 * audited with the share's id (never the token). */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/render.h"
#include "../dicom/uids.h"
#include "../reports/render_pdf.h"
#include "../reports/report.h"
#include "../reports/share.h"
#include "../storage/ingest.h"
#include "../storage/objstore.h"
#include "../storage/retrieve.h"
#include "../worklist/worklist.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHARE_GATE_SLOTS 4096 /* per table: addresses, tokens */
#define SHARE_GATE_PROBE 8
#define SHARE_RETRY_BUSY "2"

enum sop { SOP_CREATE, SOP_LIST, SOP_REVOKE, SOP_READ, SOP_IMAGE, SOP_PDF };

static const char *const k_actions[] = {"share-create", "shares-list", "share-revoke",
                                        "share-read",   "share-image", "share-pdf"};

static atomic_int g_renders; /* share images being rendered in the process */

typedef struct sstate {
    enum sop op;
    char token[RPT_SHARE_TOKEN_MAX + 1]; /* public routes */
    char id[RPT_SHARE_ID_MAX];           /* SOP_REVOKE; the share's once known */
    char study[HR_UID_MAX];
    long long expires_in_s; /* SOP_CREATE */
    int image;              /* SOP_IMAGE: index */
    int thumb;              /* SOP_IMAGE: ?size=thumb */
    char base[512];         /* "http(s)://host" of the request */
    /* results */
    int rc;
    const char *why; /* refusal code for 409 */
    char patient[192];
    int have_patient;
    json_t *doc;
    unsigned char *bytes; /* image, PDF (malloc'd) */
    size_t len;
    const char *ctype;
    int cached;
} sstate;

static void sstate_free(sstate *st)
{
    if (!st)
        return;
    OPENSSL_cleanse(st->token, sizeof(st->token));
    json_decref(st->doc);
    free(st->bytes);
    free(st);
}

static sstate *sstate_new(va_req *r, enum sop op)
{
    sstate *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return NULL;
    }
    st->op = op;
    return st;
}

static void iso_time(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the rate gate of the public routes (on the loop) ---- */

typedef struct sg_slot {
    uint64_t key;    /* FNV-1a 64 of the address or the token; 0: free */
    uint64_t window; /* index of the window */
    int count;
    int audited; /* a refusal of this window was audited */
} sg_slot;

struct va_share_gate {
    sg_slot addr[SHARE_GATE_SLOTS];
    sg_slot tok[SHARE_GATE_SLOTS];
};

static uint64_t fnv64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = s; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h ? h : 1;
}

/* The slot of key in this window; NULL when its neighbourhood is taken by
 * other keys of this window (a flood of distinct keys: refused). */
static sg_slot *gate_slot(sg_slot *tab, uint64_t key, uint64_t window)
{
    for (int probe = 0; probe < SHARE_GATE_PROBE; probe++) {
        sg_slot *g = &tab[(key + (uint64_t)probe) % SHARE_GATE_SLOTS];
        if (g->key == key && g->window == window)
            return g;
        if (g->key == 0 || g->window != window) {
            g->key = key;
            g->window = window;
            g->count = 0;
            g->audited = 0;
            return g;
        }
    }
    return NULL;
}

/* Counts a public request of r; 1 when it is over a limit (answered 429
 * here, audited once per key and window). */
static int gate_refuse(va_req *r, const char *token)
{
    const shr_config *sc = r->srv->cfg->share;
    uint64_t w, now, window;
    sg_slot *a = NULL, *t = NULL;
    int over = 0, audit = 1;
    char secs[16];

    if (!sc || (sc->per_address <= 0 && sc->per_token <= 0))
        return 0;
    if (!r->srv->share_gate)
        r->srv->share_gate = calloc(1, sizeof(*r->srv->share_gate));
    if (!r->srv->share_gate) {
        over = 1;
        goto refuse;
    }
    w = (uint64_t)sc->window_s * 1000;
    now = uv_now(r->srv->loop);
    window = now / w;
    if (sc->per_address > 0) {
        a = gate_slot(r->srv->share_gate->addr, fnv64(r->peer), window);
        if (!a || ++a->count > sc->per_address)
            over = 1;
    }
    if (!over && sc->per_token > 0) {
        t = gate_slot(r->srv->share_gate->tok, fnv64(token), window);
        if (!t || ++t->count > sc->per_token)
            over = 1;
    }
    if (!over)
        return 0;
    snprintf(secs, sizeof(secs), "%d", (int)((w - now % w + 999) / 1000));
    va_add_header(r, "Retry-After", secs);
    if (t && t->audited)
        audit = 0;
    else if (!t && a && a->audited)
        audit = 0;
    if (t)
        t->audited = 1;
    else if (a)
        a->audited = 1;
refuse:
    if (audit)
        va_audit(r,
                 k_actions[r->route->handle == va_handle_share_read    ? SOP_READ
                           : r->route->handle == va_handle_share_image ? SOP_IMAGE
                                                                       : SOP_PDF],
                 NULL, NULL, "share=- rate limited", "denied");
    va_add_header(r, "Cache-Control", "no-store");
    va_send_error(r, 429, "rate_limited", "too many requests for this link; retry later");
    return 1;
}

/* ---- who may manage a study's links ---- */

/* The study's worklist item and whether the principal may manage its
 * links (create: admin excluded). 0; HR_ENOTFOUND (absent or not theirs);
 * HR_EREDIS. */
static int managed_study(va_req *r, redisContext *c, sstate *st, int creating)
{
    const va_principal *w = &r->who;
    wl_item *it = malloc(sizeof(*it));
    int rc, ok = 0;
    if (!it)
        return -ENOMEM;
    rc = wl_get(c, st->study, it);
    if (rc == -EINVAL)
        rc = HR_ENOTFOUND;
    if (rc)
        goto out;
    snprintf(st->patient, sizeof(st->patient), "%s", it->patient);
    st->have_patient = 1;
    if (w->role == STO_ROLE_TECHNICIAN && it->hospital[0] && strcmp(w->hospital, it->hospital) == 0)
        ok = 1;
    if ((w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && it->center[0] &&
        strcmp(w->center, it->center) == 0)
        ok = 1;
    if (w->role == STO_ROLE_ADMIN && !creating)
        ok = 1;
    if (!ok)
        rc = HR_ENOTFOUND;
out:
    free(it);
    return rc;
}

/* The newest report of the study whose current version is final, amended
 * or corrected. */
typedef struct final_pick {
    char id[RPT_ID_MAX];
} final_pick;

static int final_cb(void *arg, const char *id, enum rpt_status s)
{
    final_pick *p = arg;
    if (s == RPT_FINAL || s == RPT_AMENDED || s == RPT_CORRECTED)
        snprintf(p->id, sizeof(p->id), "%s", id);
    else if (s == RPT_ENTERED_IN_ERROR && strcmp(p->id, id) == 0)
        p->id[0] = '\0';
    return 0;
}

static json_t *share_json(const rpt_share *s, long long now_ms)
{
    char exp[32];
    const char *state = s->revoked_ms > 0         ? "revoked"
                        : s->expires_ms <= now_ms ? "expired"
                                                  : "live";
    iso_time(s->expires_ms, exp);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:i}", "id", s->id, "study",
                  s->study, "report", s->report, "created_by", s->by, "created_role", s->role,
                  "created_ms", (json_int_t)s->created_ms, "expires_ms", (json_int_t)s->expires_ms,
                  "expires_at", exp, "state", state, "images", (int)json_array_size(s->images));
    if (o && s->revoked_ms > 0) {
        json_object_set_new(o, "revoked_ms", json_integer(s->revoked_ms));
        json_object_set_new(o, "revoked_by", va__jstr(s->revoked_by));
    }
    return o;
}

/* A PNG as a data: URL. */
static json_t *png_data_url(const hr_buf *png)
{
    size_t n = 22 + 4 * ((png->len + 2) / 3) + 1;
    char *s = malloc(n);
    json_t *o;
    if (!s)
        return NULL;
    memcpy(s, "data:image/png;base64,", 22);
    EVP_EncodeBlock((unsigned char *)s + 22, png->data, (int)png->len);
    o = json_string(s);
    free(s);
    return o;
}

static void create_work(va_req *r, redisContext *c)
{
    sstate *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    final_pick pick;
    json_t *images = NULL, *qr = NULL;
    rpt_share sh;
    hr_buf png;
    char token[RPT_SHARE_TOKEN_MAX], link[RPT_SHARE_TOKEN_MAX + 600], rel[RPT_SHARE_TOKEN_MAX + 8];
    char exp[32];
    long long now = hr_wall_ms();
    int rc;

    memset(&sh, 0, sizeof(sh));
    memset(&pick, 0, sizeof(pick));
    token[0] = '\0';
    hr_buf_init(&png, RPT_SHARE_QR_MAX);
    if (!c) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = managed_study(r, c, st, 1);
    if (rc)
        goto out;
    rc = rpt_study_reports(c, st->study, final_cb, &pick);
    if (rc)
        goto out;
    if (!pick.id[0]) {
        rc = HR_ESTATE;
        st->why = "not_final";
        goto out;
    }
    rc = rpt_share_images(c, cfg, st->study, &images);
    if (rc == HR_ENOTFOUND) { /* no instance indexed (yet): a report alone */
        images = json_array();
        rc = images ? 0 : -ENOMEM;
    }
    if (rc)
        goto out;
    rc = rpt_share_create(c, cfg, st->study, pick.id, images, r->who.user,
                          sto_role_name(r->who.role), r->who.hospital, now,
                          now + st->expires_in_s * 1000, token, &sh);
    if (rc == HR_ETOOBIG)
        st->why = "too_many_links";
    if (rc)
        goto out;
    snprintf(st->id, sizeof(st->id), "%s", sh.id);
    snprintf(rel, sizeof(rel), "/s/%s", token);
    snprintf(link, sizeof(link), "%s%s", st->base, rel);
    rc = rpt_share_qr_png(link, &png);
    if (rc)
        goto out;
    qr = png_data_url(&png);
    iso_time(sh.expires_ms, exp);
    st->doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:i, s:s}", "id", sh.id, "token",
                        token, "url", rel, "link", link, "study", st->study, "expires_ms",
                        (json_int_t)sh.expires_ms, "expires_at", exp, "qr", qr ? qr : json_null(),
                        "images", (int)json_array_size(sh.images), "report", sh.report);
    qr = NULL;
    if (!st->doc)
        rc = -ENOMEM;
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(link, sizeof(link));
    OPENSSL_cleanse(rel, sizeof(rel));
    json_decref(images);
    json_decref(qr);
    hr_buf_free(&png);
    rpt_share_free(&sh);
    st->rc = rc;
}

typedef struct list_acc {
    json_t *a;
    long long now;
} list_acc;

static int list_cb(void *arg, const rpt_share *s)
{
    list_acc *l = arg;
    json_t *o = share_json(s, l->now);
    return o && json_array_append_new(l->a, o) == 0 ? 0 : -ENOMEM;
}

static void list_work(va_req *r, redisContext *c)
{
    sstate *st = r->state;
    list_acc l = {.a = NULL, .now = hr_wall_ms()};
    int rc;
    if (!c) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = managed_study(r, c, st, 0);
    if (rc)
        goto out;
    l.a = json_array();
    rc = l.a ? rpt_share_list(c, st->study, l.now, list_cb, &l) : -ENOMEM;
    if (rc)
        goto out;
    st->doc = json_pack("{s:s, s:o}", "study", st->study, "shares", l.a);
    l.a = NULL;
    if (!st->doc)
        rc = -ENOMEM;
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    json_decref(l.a);
    st->rc = rc;
}

static void revoke_work(va_req *r, redisContext *c)
{
    sstate *st = r->state;
    rpt_share sh;
    long long when = 0;
    int rc;
    memset(&sh, 0, sizeof(sh));
    if (!c) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = managed_study(r, c, st, 0);
    if (rc)
        goto out;
    rc = rpt_share_revoke(c, st->id, r->who.user, hr_wall_ms(), &when);
    if (rc)
        goto out;
    rc = rpt_share_get(c, st->id, &sh);
    if (rc)
        goto out;
    st->doc = share_json(&sh, hr_wall_ms());
    if (!st->doc)
        rc = -ENOMEM;
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    rpt_share_free(&sh);
    st->rc = rc;
}

static void manage_done(va_req *r)
{
    sstate *st = r->state;
    char detail[160];
    r->state = NULL;
    snprintf(detail, sizeof(detail), "share=%s", st->id[0] ? st->id : "-");
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc) {
        va_audit(r, k_actions[st->op], st->have_patient ? st->patient : NULL, st->study, detail,
                 st->rc == HR_ENOTFOUND ? "denied" : "failure");
        if (st->rc == HR_ESTATE || (st->rc == HR_ETOOBIG && st->why))
            va_send_error(r, 409, st->why ? st->why : "conflict", "%s",
                          st->rc == HR_ESTATE ? "the study has no final report to share"
                                              : "the study has too many live links; revoke one");
        else
            va_send_rc(r, st->rc, st->op == SOP_REVOKE ? "share" : "study");
    } else {
        va_audit(r, k_actions[st->op], st->have_patient ? st->patient : NULL, st->study, detail,
                 "success");
        va_add_header(r, "Cache-Control", "no-store");
        va_send_json(r, st->op == SOP_CREATE ? 201 : 200, st->doc);
        st->doc = NULL;
    }
    sstate_free(st);
}

void va_handle_share_create(va_req *r)
{
    const shr_config *sc = r->srv->cfg->share;
    va_iovec b = va_body(r);
    json_error_t jerr;
    json_t *doc = NULL, *v;
    sstate *st = sstate_new(r, SOP_CREATE);
    const char *key;

    if (!st)
        return;
    doc = b.len ? json_loadb(b.base, b.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(doc)) {
        va_send_error(r, 400, "bad_request",
                      "the body must be a JSON object {study, expires_in_s}");
        goto fail;
    }
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "study") != 0 && strcmp(key, "expires_in_s") != 0) {
            va_send_error(r, 400, "bad_request", "unknown member \"%.40s\"", key);
            goto fail;
        }
    }
    v = json_object_get(doc, "study");
    if (!json_is_string(v) || !dcm_uid_key_valid(json_string_value(v))) {
        va_send_error(r, 400, "bad_request", "study: a Study Instance UID is required");
        goto fail;
    }
    snprintf(st->study, sizeof(st->study), "%s", json_string_value(v));
    v = json_object_get(doc, "expires_in_s");
    st->expires_in_s = sc ? sc->default_expires_s : 604800;
    if (v) {
        if (!json_is_integer(v) || !sc || json_integer_value(v) < sc->min_expires_s ||
            json_integer_value(v) > sc->max_expires_s) {
            va_send_error(r, 400, "bad_request", "expires_in_s: an integer from %lld to %lld",
                          sc ? sc->min_expires_s : 0, sc ? sc->max_expires_s : 0);
            goto fail;
        }
        st->expires_in_s = json_integer_value(v);
    }
    json_decref(doc);
    va_base_url(r, st->base, sizeof(st->base));
    r->state = st;
    va_req_run(r, create_work, manage_done);
    return;
fail:
    json_decref(doc);
    sstate_free(st);
}

void va_handle_shares(va_req *r)
{
    const char *study = va_param_get(r, "study");
    sstate *st;
    if (!study || !dcm_uid_key_valid(study)) {
        va_send_error(r, 400, "bad_request", "study: a Study Instance UID is required");
        return;
    }
    st = sstate_new(r, SOP_LIST);
    if (!st)
        return;
    snprintf(st->study, sizeof(st->study), "%s", study);
    r->state = st;
    va_req_run(r, list_work, manage_done);
}

void va_handle_share_revoke(va_req *r)
{
    sstate *st = sstate_new(r, SOP_REVOKE);
    int n;
    if (!st)
        return;
    if (rpt_share_id_parse(r->segs[0], &n, st->study)) {
        sstate_free(st);
        va_send_error(r, 404, "not_found", "share not found");
        return;
    }
    snprintf(st->id, sizeof(st->id), "%s", r->segs[0]);
    r->state = st;
    va_req_run(r, revoke_work, manage_done);
}

/* ---- the public routes ---- */

/* The share of st->token and the current version of its report, final,
 * amended or corrected: else HR_ENOTFOUND. */
static int open_share(redisContext *c, sstate *st, rpt_share *sh, rpt_version *v)
{
    rpt_info info;
    wl_item *it;
    int rc;

    memset(&info, 0, sizeof(info));
    rc = rpt_share_resolve(c, st->token, hr_wall_ms(), sh);
    if (rc)
        return rc;
    snprintf(st->id, sizeof(st->id), "%s", sh->id);
    snprintf(st->study, sizeof(st->study), "%s", sh->study);
    it = malloc(sizeof(*it));
    if (it && wl_get(c, sh->study, it) == 0) {
        snprintf(st->patient, sizeof(st->patient), "%s", it->patient);
        st->have_patient = 1;
    }
    free(it);
    rc = rpt_get(c, sh->report, &info);
    if (rc == -EINVAL)
        rc = HR_ENOTFOUND;
    if (rc)
        goto out;
    if (info.status != RPT_FINAL && info.status != RPT_AMENDED && info.status != RPT_CORRECTED) {
        rc = HR_ENOTFOUND; /* retracted since: the link shows nothing */
        goto out;
    }
    rc = rpt_version_get(c, sh->report, 0, v);
    if (rc == 0 && v->status != RPT_FINAL && v->status != RPT_AMENDED &&
        v->status != RPT_CORRECTED) {
        rpt_version_free(v);
        rc = HR_ENOTFOUND;
    }
out:
    rpt_info_free(&info);
    return rc;
}

static const char *jget(const json_t *o, const char *a, const char *b)
{
    const json_t *x = json_object_get(json_object_get(o, a), b);
    return json_is_string(x) ? json_string_value(x) : "";
}

/* What the patient's page shows of a version's payload. */
static json_t *read_doc(const sstate *st, const rpt_share *sh, const rpt_version *v)
{
    const json_t *p = v->payload, *signers = json_object_get(p, "signers");
    const json_t *content = json_object_get(p, "content");
    json_t *sg = json_array(), *imgs = json_array(), *doc = NULL;
    char exp[32], url[RPT_SHARE_TOKEN_MAX + 64];
    size_t i;
    const json_t *s;

    if (!sg || !imgs)
        goto out;
    json_array_foreach(signers, i, s)
    {
        const json_t *nm = json_object_get(s, "name"), *u = json_object_get(s, "user");
        const char *name = json_is_string(nm) && json_string_length(nm) ? json_string_value(nm)
                           : json_is_string(u)                          ? json_string_value(u)
                                                                        : "";
        const json_t *f = json_object_get(s, "function"), *ro = json_object_get(s, "role"),
                     *at = json_object_get(s, "signed_at");
        json_array_append_new(sg, json_pack("{s:o, s:o, s:o, s:o}", "name", va__jstr(name), "role",
                                            va__jstr(json_string_value(ro)), "function",
                                            va__jstr(json_string_value(f)), "signed_at",
                                            va__jstr(json_string_value(at))));
    }
    for (i = 0; i < json_array_size(sh->images); i++) {
        snprintf(url, sizeof(url), "/api/v1/share/%s/images/%zu", st->token, i);
        json_array_append_new(imgs, json_pack("{s:i, s:s, s:s+}", "n", (int)i, "url", url, "thumb",
                                              url, "?size=thumb"));
    }
    iso_time(sh->expires_ms, exp);
    snprintf(url, sizeof(url), "/api/v1/share/%s/pdf", st->token);
    const json_t *crit = json_object_get(content, "critical");
    doc = json_pack(
        "{s:{s:s, s:I, s:s}, s:{s:i, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:O*},"
        " s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o}, s:{s:o, s:o}, s:o, s:s}",
        "share", "id", sh->id, "expires_ms", (json_int_t)sh->expires_ms, "expires_at", exp,
        "report", "version", v->version, "status", rpt_status_name(v->status), "status_label",
        rpt_render_status_label(rpt_status_name(v->status)), "findings",
        va__jstr(jget(p, "content", "findings")), "impression",
        va__jstr(jget(p, "content", "impression")), "critical", json_is_true(crit), "signed_at",
        va__jstr(json_string_value(json_object_get(p, "signed_at"))), "signers", sg, "recognition",
        json_object_get(p, "recognition"), "exam", "hospital",
        va__jstr(jget(p, "exam", "hospital_name")[0] ? jget(p, "exam", "hospital_name")
                                                     : jget(p, "exam", "hospital")),
        "center", va__jstr(jget(p, "exam", "center_name")), "modality",
        va__jstr(jget(p, "exam", "modality")), "procedure", va__jstr(jget(p, "exam", "procedure")),
        "study_date", va__jstr(jget(p, "exam", "study_date")), "accession",
        va__jstr(jget(p, "exam", "accession")), "study_uid", va__jstr(sh->study), "patient", "name",
        va__jstr(jget(p, "patient", "name")), "sex", va__jstr(jget(p, "patient", "sex")), "images",
        imgs, "pdf", url);
    sg = imgs = NULL;
out:
    json_decref(sg);
    json_decref(imgs);
    return doc;
}

/* Renders image st->image of the share (bounded: share.renders at once). */
static int image_of(va_req *r, redisContext *c, sstate *st, const rpt_share *sh)
{
    const shr_config *sc = r->srv->cfg->share;
    const json_t *e = json_array_get(sh->images, (size_t)st->image);
    const char *series = json_string_value(json_object_get(e, "series"));
    const char *sop = json_string_value(json_object_get(e, "sop"));
    json_int_t frame = json_integer_value(json_object_get(e, "frame"));
    hr_render_req rq = {.fmt = HR_RENDER_JPEG, .frame = frame > 0 ? (unsigned)frame : 1};
    char path[STO_PATH_MAX];
    sto_rlist l;
    int rc, side;

    memset(&l, 0, sizeof(l));
    if (!e || !series || !sop || st->image < 0)
        return HR_ENOTFOUND;
    rc = sto_retrieve_list(c, NULL, sh->study, series, sop, 1, &l);
    if (rc == HR_ETOOBIG)
        rc = HR_ENOTFOUND;
    if (rc)
        goto out;
    if (l.n != 1) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    sto_objstore_path(&r->srv->sto->store, l.v[0].sha, path);
    side = st->thumb ? (sc ? sc->thumb_side : 256) : (sc ? sc->image_side : 1024);
    rq.max_w = rq.max_h = (unsigned)side;
    rq.quality = st->thumb ? 80 : 90;
    if (atomic_fetch_add(&g_renders, 1) >= (sc ? sc->renders : 2)) {
        atomic_fetch_sub(&g_renders, 1);
        rc = -EAGAIN;
        goto out;
    }
    rc = hr_render_frame(path, &rq, &st->bytes, &st->len, &st->ctype);
    atomic_fetch_sub(&g_renders, 1);
    if (rc == -ENOENT || rc == -ENOTSUP)
        rc = HR_EUNSUP;
out:
    sto_rlist_free(&l);
    return rc;
}

static void public_work(va_req *r, redisContext *c)
{
    sstate *st = r->state;
    rpt_share sh;
    rpt_version v;
    char url[RPT_RENDER_URL_MAX + 1];
    int rc;

    memset(&sh, 0, sizeof(sh));
    memset(&v, 0, sizeof(v));
    if (!c) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = open_share(c, st, &sh, &v);
    if (rc)
        goto out;
    switch (st->op) {
    case SOP_READ:
        st->doc = read_doc(st, &sh, &v);
        rc = st->doc ? 0 : -ENOMEM;
        break;
    case SOP_IMAGE:
        rc = image_of(r, c, st, &sh);
        break;
    case SOP_PDF:
        /* the verification URL of the version, as GET .../versions/{n}/pdf prints it */
        snprintf(url, sizeof(url), "%s/verify?report=%s&v=%d&d=%.16s", st->base, sh.report,
                 v.version, v.digest);
        rc = va__report_pdf(r->srv->cfg, &v, url, &st->bytes, &st->len, &st->cached);
        st->ctype = "application/pdf";
        break;
    default:
        rc = -EINVAL;
    }
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    rpt_version_free(&v);
    rpt_share_free(&sh);
    st->rc = rc;
}

static void public_done(va_req *r)
{
    sstate *st = r->state;
    char detail[160];
    r->state = NULL;
    if (st->op == SOP_IMAGE)
        snprintf(detail, sizeof(detail), "share=%s image=%d", st->id[0] ? st->id : "-", st->image);
    else
        snprintf(detail, sizeof(detail), "share=%s", st->id[0] ? st->id : "-");
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else {
        va_add_header(r, "Cache-Control", "no-store");
        va_add_header(r, "Referrer-Policy", "no-referrer");
        va_add_header(r, "X-Robots-Tag", "noindex");
        if (st->rc == -EAGAIN) {
            va_audit(r, k_actions[st->op], st->have_patient ? st->patient : NULL,
                     st->study[0] ? st->study : NULL, detail, "failure");
            va_add_header(r, "Retry-After", SHARE_RETRY_BUSY);
            va_send_error(r, 503, "busy", "images are being prepared; retry");
        } else if (st->rc) {
            va_audit(r, k_actions[st->op], st->have_patient ? st->patient : NULL,
                     st->study[0] ? st->study : NULL, detail,
                     st->rc == HR_ENOTFOUND ? "denied" : "failure");
            if (st->rc == HR_ENOTFOUND)
                va_send_error(r, 404, "not_found", "this link is unknown, expired or revoked");
            else if (st->rc == HR_EUNSUP)
                va_send_error(r, 422, "not_renderable", "this image cannot be shown");
            else
                va_send_rc(r, st->rc, "share");
        } else {
            va_audit(r, k_actions[st->op], st->have_patient ? st->patient : NULL, st->study, detail,
                     "success");
            if (st->op == SOP_READ) {
                va_send_json(r, 200, st->doc);
                st->doc = NULL;
            } else {
                if (st->op == SOP_PDF)
                    va_add_header(r, "Content-Disposition", "inline; filename=\"report.pdf\"");
                va_send(r, 200, st->ctype, (const char *)st->bytes, st->len);
            }
        }
    }
    sstate_free(st);
}

static void public_start(va_req *r, enum sop op)
{
    const char *tok = r->segs[0];
    sstate *st;
    if (gate_refuse(r, tok))
        return;
    st = sstate_new(r, op);
    if (!st)
        return;
    if (strlen(tok) >= sizeof(st->token)) {
        va_audit(r, k_actions[op], NULL, NULL, "share=-", "denied");
        va_add_header(r, "Cache-Control", "no-store");
        va_send_error(r, 404, "not_found", "this link is unknown, expired or revoked");
        sstate_free(st);
        return;
    }
    snprintf(st->token, sizeof(st->token), "%s", tok);
    if (op == SOP_IMAGE) {
        const char *n = r->segs[1], *size = va_param_get(r, "size");
        char *end;
        long k = strtol(n, &end, 10);
        if (!n[0] || *end || k < 0 || k >= 1000 || (n[0] == '0' && n[1])) {
            va_audit(r, k_actions[op], NULL, NULL, "share=- bad image number", "denied");
            va_send_error(r, 404, "not_found", "no such image");
            sstate_free(st);
            return;
        }
        st->image = (int)k;
        st->thumb = size && strcmp(size, "thumb") == 0;
    }
    va_base_url(r, st->base, sizeof(st->base));
    r->state = st;
    va_req_run(r, public_work, public_done);
}

void va_handle_share_read(va_req *r)
{
    public_start(r, SOP_READ);
}

void va_handle_share_image(va_req *r)
{
    public_start(r, SOP_IMAGE);
}

void va_handle_share_pdf(va_req *r)
{
    public_start(r, SOP_PDF);
}
