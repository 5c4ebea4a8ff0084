/* Reports (issue 9, decisions 0022 and 0024) over reports/report.h:
 *   POST /api/v1/reports                        {study} -> a draft
 *   PUT  /api/v1/reports/{id}                   the draft's content, {rev}
 *   POST /api/v1/reports/{id}/sign | cosign | amend | retract   {pin, ...}
 *   GET  /api/v1/reports/{id}                   the report and its versions
 *   GET  /api/v1/reports/{id}/versions/{n}/jws  the compact JWS
 *   GET  /api/v1/reports?study=S                the study's reports
 *   GET  /api/v1/exams/{study}                  the exam, its reports and texts
 * Bodies are parsed on the loop; who may see what (va_report_access) and
 * the Redis work run in the pool step; signing (the PIN's KDF, the
 * signature) runs on the KDF pool, never on libuv's, which makes ingest
 * durable. A report one may not see is answered like an absent one (404). */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/uids.h"
#include "../reports/jws.h"
#include "../reports/keystore.h"
#include "../reports/report.h"
#include "../reports/rpt_config.h"
#include "../reports/signer.h"
#include "../storage/index.h"
#include "../worklist/worklist.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op {
    OP_CREATE,
    OP_SAVE,
    OP_SIGN,
    OP_COSIGN,
    OP_AMEND,
    OP_RETRACT,
    OP_GET,
    OP_JWS,
    OP_LIST,
    OP_EXAM,
    OP_VERIFY
};

static const char *const k_actions[] = {"report-create", "report-save",  "report-sign",
                                        "report-cosign", "report-amend", "report-retract",
                                        "report-read",   "report-jws",   "reports-list",
                                        "exam-read",     "report-verify"};

typedef struct rstate {
    enum op op;
    char id[RPT_ID_MAX];
    char study[HR_UID_MAX];
    int k;           /* OP_JWS */
    json_t *content; /* OP_SAVE, OP_AMEND: the content members of the body */
    long long rev;   /* OP_SAVE; OP_SIGN: -1 = the saved one */
    char *pin;       /* signing operations (cleansed when freed) */
    char *reason;    /* OP_AMEND, OP_RETRACT */
    int correction;  /* OP_AMEND */
    uint64_t t0_ns;  /* the KDF run's start */
    /* results */
    int rc;
    rpt_why why;
    int version;
    long long new_rev;
    json_t *doc;          /* the answer */
    char *jws;            /* OP_JWS */
    rpt_verify_result vr; /* OP_VERIFY */
    int vrc;              /* OP_VERIFY: rpt_jws_verify's code */
    char patient[192];
    int have_item;
} rstate;

static void rstate_free(rstate *st)
{
    if (!st)
        return;
    if (st->pin) {
        OPENSSL_cleanse(st->pin, strlen(st->pin));
        free(st->pin);
    }
    free(st->reason);
    free(st->jws);
    json_decref(st->vr.payload);
    json_decref(st->content);
    json_decref(st->doc);
    free(st);
}

/* ---- access ---- */

enum va_report_access va_report_access(const va_req *r, redisContext *c, const char *study,
                                       const char *center, const char *hospital)
{
    const va_principal *w = &r->who;
    if (w->role == STO_ROLE_ADMIN)
        return VA_RPT_FULL;
    if ((w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && center && center[0] &&
        strcmp(w->center, center) == 0)
        return VA_RPT_FULL;
    if (w->role == STO_ROLE_TECHNICIAN && hospital && hospital[0] &&
        strcmp(w->hospital, hospital) == 0)
        return VA_RPT_SIGNED;
    /* a live recognition grant of the study (decision 0027): its signed
     * versions, as the images; a Redis failure grants nothing */
    if (c && study && r->scope.grantee[0]) {
        redisReply *g = redisCommand(c, "EXISTS " STO_GRANT_KEY_FMT, study, r->scope.grantee);
        int granted = g && g->type == REDIS_REPLY_INTEGER && g->integer > 0;
        freeReplyObject(g);
        if (granted)
            return VA_RPT_SIGNED;
    }
    return VA_RPT_NONE;
}

/* The worklist item of the study (for the access rule and the audit
 * record's patient). 0, HR_ENOTFOUND, HR_EREDIS. */
static int item_of(rstate *st, redisContext *c, wl_item *it)
{
    int rc = wl_get(c, st->study, it);
    if (rc == 0) {
        snprintf(st->patient, sizeof(st->patient), "%s", it->patient);
        st->have_item = 1;
    }
    return rc == -EINVAL ? HR_ENOTFOUND : rc;
}

static json_t *k_or_null(int k)
{
    return k ? json_integer(k) : json_null();
}

static void link_of(char *out, size_t cap, const char *id, int k, const char *what)
{
    snprintf(out, cap, "/api/v1/reports/%s/versions/%d/%s", id, k, what);
}

static json_t *links_json(const char *id, int k)
{
    char jws[192], pdf[192];
    link_of(jws, sizeof(jws), id, k, "jws");
    link_of(pdf, sizeof(pdf), id, k, "pdf");
    return json_pack("{s:s, s:s}", "jws", jws, "pdf", pdf);
}

/* One entry of "versions": from the version hash, without decoding the JWS. */
static json_t *version_json(redisContext *c, const rpt_info *info, int k)
{
    redisReply *r = redisCommand(c,
                                 "HMGET hr:rpt:{%s}:%d:v:%d status digest signed_ms signer "
                                 "signers supersedes cosigned reason tsr",
                                 info->study, info->n, k);
    json_t *o = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 9 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        goto out;
    const char *f[9];
    for (int i = 0; i < 9; i++)
        f[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
    json_t *signers = f[4][0] ? json_loads(f[4], 0, NULL) : NULL;
    long long sup = strtoll(f[5], NULL, 10);
    o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:o, s:o, s:b, s:o}", "version", k, "status", f[0],
                  "digest", f[1], "signed_ms", (json_int_t)strtoll(f[2], NULL, 10), "signer", f[3],
                  "signers", signers ? signers : json_array(), "supersedes",
                  sup ? json_integer(sup) : json_null(), "cosigned", f[6][0] == '1', "links",
                  links_json(info->id, k));
    if (o && f[7][0])
        json_object_set_new(o, "reason", va__jstr(f[7]));
    if (o) /* the RFC 3161 token of the JWS (base64 DER), null without a TSA */
        json_object_set_new(o, "timestamp_token", f[8][0] ? va__jstr(f[8]) : json_null());
out:
    freeReplyObject(r);
    return o;
}

/* The content a version signed (decoded from its JWS). */
static json_t *version_content(redisContext *c, const char *id, int k, int *rc)
{
    rpt_version v;
    *rc = rpt_version_get(c, id, k, &v);
    if (*rc)
        return NULL;
    json_t *o =
        json_pack("{s:i, s:s, s:O, s:O}", "version", v.version, "status", rpt_status_name(v.status),
                  "content", json_object_get(v.payload, "content"), "recognition",
                  json_object_get(v.payload, "recognition"));
    rpt_version_free(&v);
    if (!o)
        *rc = -ENOMEM;
    return o;
}

/* The report as the caller may see it. */
static int report_json(redisContext *c, const rpt_info *info, enum va_report_access acc,
                       json_t **out)
{
    json_t *versions = json_array(), *cur = NULL;
    int rc = -ENOMEM;
    *out = NULL;
    if (!versions)
        goto out;
    for (int k = 1; k <= info->versions && k <= RPT_VERSIONS_MAX; k++) {
        json_t *v = version_json(c, info, k);
        if (!v) {
            rc = HR_EREDIS;
            goto out;
        }
        json_array_append_new(versions, v);
    }
    int shown = info->current ? info->current : info->versions;
    if (shown) {
        cur = version_content(c, info->id, shown, &rc);
        if (!cur)
            goto out;
    }
    rc = -ENOMEM;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "id",
                          info->id, "study", info->study, "center", info->center, "hospital",
                          info->hospital, "status", rpt_status_name(info->status), "author",
                          info->author, "created_by", info->created_by, "created_ms",
                          (json_int_t)info->created_ms, "updated_ms", (json_int_t)info->updated_ms,
                          "current", k_or_null(info->current), "pending", k_or_null(info->pending),
                          "versions", versions, "signed", cur ? cur : json_null());
    versions = cur = NULL;
    if (!o)
        goto out;
    if (acc == VA_RPT_FULL && info->status == RPT_DRAFT && info->draft) {
        json_t *d = json_deep_copy(info->draft);
        if (d) {
            json_object_set_new(d, "rev", json_integer(info->rev));
            json_object_set_new(d, "saved_by", va__jstr(info->draft_by));
            json_object_set_new(d, "saved_ms", json_integer(info->draft_ms));
            json_object_set_new(o, "draft", d);
        }
    }
    *out = o;
    rc = 0;
out:
    json_decref(versions);
    json_decref(cur);
    return rc;
}

/* ---- the pool steps ---- */

static void actor_of(const va_req *r, rpt_actor *a)
{
    a->user = r->who.user;
    a->name = r->who.display_name;
    a->role = r->who.role;
    a->center = r->who.center;
    a->hospital = r->who.hospital;
}

/* The report of st->id, visible to the caller: 0 with *acc, else the
 * answer's code (absent and invisible alike: HR_ENOTFOUND). */
static int visible_report(va_req *r, redisContext *c, rstate *st, rpt_info *info,
                          enum va_report_access *acc)
{
    wl_item *it = malloc(sizeof(*it));
    int rc = it ? rpt_get(c, st->id, info) : -ENOMEM;
    if (rc == 0) {
        int wrc = item_of(st, c, it);
        if (wrc && wrc != HR_ENOTFOUND)
            rc = wrc;
    }
    free(it);
    if (rc)
        return rc;
    *acc = va_report_access(r, c, info->study, info->center, info->hospital);
    return *acc == VA_RPT_NONE ? HR_ENOTFOUND : 0;
}

static void action_work(va_req *r, redisContext *c)
{
    rstate *st = r->state;
    const hr_config *cfg = r->srv->cfg;
    rpt_info info;
    rpt_actor who;
    enum va_report_access acc;
    wl_item *it = NULL;
    char newid[RPT_ID_MAX];
    memset(&info, 0, sizeof(info));
    actor_of(r, &who);
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    long long now = hr_wall_ms();
    if (st->op == OP_CREATE) {
        st->rc = -ENOMEM;
        it = malloc(sizeof(*it));
        if (!it)
            goto out;
        st->rc = item_of(st, c, it);
        if (st->rc)
            goto out;
        if (va_report_access(r, c, st->study, it->center, it->hospital) == VA_RPT_NONE) {
            st->rc = HR_ENOTFOUND;
            goto out;
        }
        st->rc = rpt_create(c, cfg, st->study, &who, now, newid, &st->new_rev, &st->why);
        snprintf(st->id, sizeof(st->id), "%s", newid);
        goto out;
    }
    st->rc = visible_report(r, c, st, &info, &acc);
    if (st->rc)
        goto out;
    switch (st->op) {
    case OP_SAVE:
        st->rc = rpt_save(c, cfg, st->id, &who, st->rev, st->content, now, &st->new_rev, &st->why);
        break;
    case OP_SIGN:
        st->rc = rpt_sign(c, cfg, st->id, &who, st->pin, st->rev, now, &st->version, &st->why);
        break;
    case OP_COSIGN:
        st->rc = rpt_cosign(c, cfg, st->id, &who, st->pin, now, &st->version, &st->why);
        break;
    case OP_AMEND:
        st->rc = rpt_amend(c, cfg, st->id, &who, st->pin, st->content, st->correction, st->reason,
                           now, &st->version, &st->why);
        break;
    case OP_RETRACT:
        st->rc =
            rpt_retract(c, cfg, st->id, &who, st->pin, st->reason, now, &st->version, &st->why);
        break;
    default:
        break;
    }
    if (st->rc == 0 && st->version) {
        rpt_info_free(&info);
        if (rpt_get(c, st->id, &info) == 0)
            report_json(c, &info, acc, &st->doc);
    }
out:
    if (st->t0_ns)
        va__kdf_rest(r->srv, st->t0_ns);
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
    rpt_info_free(&info);
    free(it);
}

static void sign_work(va_req *r, redisContext *c)
{
    rstate *st = r->state;
    st->t0_ns = uv_hrtime();
    action_work(r, c);
}

/* {"error": code, "detail": ..., more} with status. */
static void send_why(va_req *r, int status, const char *code, const char *detail, json_t *more)
{
    json_t *doc = more ? more : json_object();
    if (!doc) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    json_object_set_new(doc, "error", va__jstr(code));
    json_object_set_new(doc, "detail", va__jstr(detail));
    json_object_set_new(doc, "request_id", va__jstr(r->id));
    va_send_json(r, status, doc);
}

/* The refusal of a transition (st->rc != 0). */
static void send_refusal(va_req *r, rstate *st, const char *what)
{
    const char *code = st->why.code;
    const char *detail = st->why.detail;
    json_t *more = NULL;
    int status;
    switch (st->rc) {
    case -EPERM:
        status = 403;
        break;
    case -EACCES:
        status = 403;
        break;
    case -EAGAIN: {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", st->why.retry_after_s > 0 ? st->why.retry_after_s : 1);
        va_add_header(r, "Retry-After", secs);
        status = 429;
        break;
    }
    case -EBUSY:
    case HR_ESTATE:
    case HR_ECERT:
        status = 409;
        if (code && strcmp(code, "stale_rev") == 0 && st->op == OP_SAVE)
            more = json_pack("{s:I}", "rev", (json_int_t)st->new_rev);
        else if (code && strcmp(code, "open_report") == 0 && st->id[0])
            more = json_pack("{s:s}", "id", st->id);
        break;
    case HR_ETOOBIG:
        status = 409;
        break;
    case -EINVAL:
        status = 400;
        break;
    case -EHOSTUNREACH: /* the TSA gave no timestamp: nothing signed */
        va_add_header(r, "Retry-After", "30");
        status = 503;
        break;
    default:
        va_send_rc(r, st->rc, what);
        return;
    }
    send_why(r, status, code ? code : "refused", detail[0] ? detail : hr_strerror(st->rc), more);
}

static void action_done(va_req *r)
{
    rstate *st = r->state;
    r->state = NULL;
    const char *action = k_actions[st->op];
    char detail[160];
    snprintf(detail, sizeof(detail), "report=%s%s%s", st->id[0] ? st->id : "-",
             st->why.code ? " refused=" : "", st->why.code ? st->why.code : "");
    const char *patient = st->have_item ? st->patient : NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (r->pool_status) {
        va_add_header(r, "Retry-After", "2");
        va_send_error(r, 503, "busy", "signing is busy; retry in a few seconds");
    } else if (st->rc) {
        const char *outcome =
            st->rc == -EPERM || st->rc == -EACCES || st->rc == HR_ENOTFOUND ? "denied" : "failure";
        va_audit(r, action, patient, st->study, detail, outcome);
        send_refusal(r, st, "report");
    } else {
        va_audit(r, action, patient, st->study, detail, "success");
        json_t *doc = NULL;
        if (st->op == OP_CREATE)
            doc = json_pack("{s:s, s:s, s:I}", "id", st->id, "study", st->study, "rev",
                            (json_int_t)st->new_rev);
        else if (st->op == OP_SAVE)
            doc = json_pack("{s:s, s:I}", "id", st->id, "rev", (json_int_t)st->new_rev);
        else if (st->doc) {
            doc = st->doc;
            st->doc = NULL;
            json_object_set_new(doc, "version", json_integer(st->version));
        }
        if (doc)
            va_send_json(r, st->op == OP_CREATE ? 201 : 200, doc);
        else if (st->op != OP_CREATE && st->op != OP_SAVE)
            va_send_json(r, 200, json_pack("{s:s, s:i}", "id", st->id, "version", st->version));
        else
            va_send_error(r, 500, "internal", "out of memory");
    }
    rstate_free(st);
}

/* ---- handlers: parsing on the loop ---- */

static rstate *rstate_new(va_req *r, enum op op)
{
    rstate *st = calloc(1, sizeof(*st));
    if (!st)
        va_send_error(r, 500, "internal", "out of memory");
    else
        st->op = op;
    return st;
}

/* The {id} segment: a report id. */
static int take_id(va_req *r, rstate *st)
{
    int n;
    if (rpt_id_parse(r->segs[0], &n, st->study)) {
        va_send_error(r, 404, "not_found", "no report \"%.96s\"", r->segs[0]);
        return -1;
    }
    snprintf(st->id, sizeof(st->id), "%s", r->segs[0]);
    return 0;
}

/* The JSON object body (cap bytes at most; the route's cap bounds it first). */
static json_t *body_object(va_req *r, size_t cap)
{
    va_iovec b = va_body(r);
    json_error_t je;
    if (b.len > cap) {
        va_send_error(r, 413, "too_large", "body over %zu bytes", cap);
        return NULL;
    }
    json_t *doc = json_loadb(b.base ? b.base : "", b.len, JSON_REJECT_DUPLICATES, &je);
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        va_send_error(r, 400, "bad_json", "expected a JSON object body");
        return NULL;
    }
    return doc;
}

/* Moves the string member key of doc into *out (strdup; NULL when absent).
 * 0, or -1 when present but not a string (answered). */
static int take_string(va_req *r, json_t *doc, const char *key, char **out)
{
    json_t *v = json_object_get(doc, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        va_send_error(r, 400, "bad_request", "%s: a string", key);
        return -1;
    }
    *out = strdup(json_string_value(v));
    json_object_del(doc, key);
    if (!*out) {
        va_send_error(r, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

static void run_sign(va_req *r, rstate *st)
{
    r->state = st;
    if (va_req_run_on(r, r->srv->kdf_pool, sign_work, action_done) != 0) {
        r->state = NULL;
        rstate_free(st);
        va_add_header(r, "Retry-After", "2");
        va_send_error(r, 503, "busy", "too many signatures in progress; retry in a few seconds");
    }
}

void va_handle_report_create(va_req *r)
{
    rstate *st = rstate_new(r, OP_CREATE);
    json_t *doc = st ? body_object(r, 4096) : NULL;
    const char *study = NULL;
    if (!doc)
        goto fail;
    if (json_unpack(doc, "{s:s !}", "study", &study) != 0 || !dcm_uid_valid(study)) {
        va_send_error(r, 400, "bad_request", "expected {\"study\": \"<Study Instance UID>\"}");
        goto fail;
    }
    snprintf(st->study, sizeof(st->study), "%s", study);
    json_decref(doc);
    r->state = st;
    va_req_run(r, action_work, action_done);
    return;
fail:
    json_decref(doc);
    rstate_free(st);
}

void va_handle_report_save(va_req *r)
{
    rstate *st = rstate_new(r, OP_SAVE);
    json_t *doc = NULL;
    if (!st || take_id(r, st))
        goto fail;
    doc = body_object(r, VA_LARGE_BODY_MAX);
    if (!doc)
        goto fail;
    json_t *rev = json_object_get(doc, "rev");
    if (!json_is_integer(rev) || json_integer_value(rev) < 0) {
        va_send_error(r, 400, "bad_request", "rev: the revision the edit started from (integer)");
        goto fail;
    }
    st->rev = json_integer_value(rev);
    json_object_del(doc, "rev");
    st->content = doc;
    r->state = st;
    va_req_run(r, action_work, action_done);
    return;
fail:
    json_decref(doc);
    rstate_free(st);
}

/* {pin, ...}: the PIN taken out of doc. */
static int take_pin(va_req *r, rstate *st, json_t *doc)
{
    if (take_string(r, doc, "pin", &st->pin))
        return -1;
    if (!st->pin || !st->pin[0] || strlen(st->pin) > RPT_PIN_MAX) {
        va_send_error(r, 400, "bad_request", "pin: the signing PIN (1..%d bytes)", RPT_PIN_MAX);
        return -1;
    }
    return 0;
}

/* The members left in doc must be among allowed (NULL-terminated). */
static int only(va_req *r, json_t *doc, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            va_send_error(r, 400, "bad_request", "unknown member \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

static void sign_like(va_req *r, enum op op)
{
    static const char *const k_none[] = {NULL};
    static const char *const k_rev[] = {"rev", NULL};
    rstate *st = rstate_new(r, op);
    json_t *doc = NULL;
    if (!st || take_id(r, st))
        goto fail;
    doc = body_object(r, 16384);
    if (!doc || take_pin(r, st, doc))
        goto fail;
    st->rev = -1;
    if (op == OP_SIGN) {
        json_t *rev = json_object_get(doc, "rev");
        if (rev && (!json_is_integer(rev) || json_integer_value(rev) < 0)) {
            va_send_error(r, 400, "bad_request", "rev: the draft revision to sign (integer)");
            goto fail;
        }
        if (rev)
            st->rev = json_integer_value(rev);
    }
    if (op == OP_RETRACT) {
        if (take_string(r, doc, "reason", &st->reason))
            goto fail;
        if (!st->reason || !st->reason[0]) {
            va_send_error(r, 400, "bad_request", "reason: why the report is retracted");
            goto fail;
        }
    }
    if (only(r, doc, op == OP_SIGN ? k_rev : k_none))
        goto fail;
    json_decref(doc);
    run_sign(r, st);
    return;
fail:
    json_decref(doc);
    rstate_free(st);
}

void va_handle_report_sign(va_req *r)
{
    sign_like(r, OP_SIGN);
}

void va_handle_report_cosign(va_req *r)
{
    sign_like(r, OP_COSIGN);
}

void va_handle_report_retract(va_req *r)
{
    sign_like(r, OP_RETRACT);
}

void va_handle_report_amend(va_req *r)
{
    rstate *st = rstate_new(r, OP_AMEND);
    json_t *doc = NULL;
    char *kind = NULL;
    if (!st || take_id(r, st))
        goto fail;
    doc = body_object(r, VA_LARGE_BODY_MAX);
    if (!doc || take_pin(r, st, doc) || take_string(r, doc, "reason", &st->reason) ||
        take_string(r, doc, "kind", &kind))
        goto fail;
    if (kind && strcmp(kind, "amendment") != 0 && strcmp(kind, "correction") != 0) {
        va_send_error(r, 400, "bad_request", "kind: \"amendment\" or \"correction\"");
        goto fail;
    }
    st->correction = kind && strcmp(kind, "correction") == 0;
    free(kind);
    kind = NULL;
    st->content = doc;
    r->state = NULL;
    run_sign(r, st);
    return;
fail:
    free(kind);
    json_decref(doc);
    rstate_free(st);
}

/* ---- reads ---- */

static void read_work(va_req *r, redisContext *c)
{
    rstate *st = r->state;
    rpt_info info;
    enum va_report_access acc;
    memset(&info, 0, sizeof(info));
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = visible_report(r, c, st, &info, &acc);
    if (st->rc)
        goto out;
    if (st->op == OP_GET) {
        st->rc = report_json(c, &info, acc, &st->doc);
    } else { /* OP_JWS, OP_VERIFY */
        rpt_version v;
        st->rc = st->k >= 1 && st->k <= info.versions ? rpt_version_get(c, st->id, st->k, &v)
                                                      : HR_ENOTFOUND;
        if (st->rc == 0) {
            st->jws = v.jws;
            v.jws = NULL;
            rpt_version_free(&v);
        }
        if (st->rc == 0 && st->op == OP_VERIFY) {
            /* against the hub's trust anchors, as `huren verify` does
             * (decision 0023); the x5c and trust caches keep it cheap */
            char trust[HR_PATH_MAX + 16];
            int trc = rpt_config_trust_path(r->srv->cfg, trust, sizeof(trust));
            st->vrc = rpt_jws_verify(st->jws, strlen(st->jws), trc ? NULL : trust, &st->vr);
            if (trc)
                st->vr.chain = -1;
        }
    }
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
    rpt_info_free(&info);
}

static void read_done(va_req *r)
{
    rstate *st = r->state;
    r->state = NULL;
    char detail[160];
    if (st->op == OP_JWS || st->op == OP_VERIFY)
        snprintf(detail, sizeof(detail), "report=%s version=%d", st->id, st->k);
    else
        snprintf(detail, sizeof(detail), "report=%s", st->id);
    const char *patient = st->have_item ? st->patient : NULL;
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc) {
        va_audit(r, k_actions[st->op], patient, st->study, detail,
                 st->rc == HR_ENOTFOUND ? "denied" : "failure");
        va_send_rc(r, st->rc, st->op == OP_GET ? "report" : "report version");
    } else {
        va_audit(r, k_actions[st->op], patient, st->study, detail, "success");
        if (st->op == OP_VERIFY) {
            const rpt_verify_result *v = &st->vr;
            json_t *doc =
                json_pack("{s:s, s:i, s:b, s:i, s:i, s:i, s:s, s:s, s:I, s:s}", "report", st->id,
                          "version", st->k, "ok", st->vrc == 0 && v->chain == 1, "signature",
                          v->sig, "certificates", v->valid, "chain", v->chain, "alg",
                          v->sig >= 0 ? rpt_alg_name(v->alg) : "", "signer", v->signer_subject,
                          "signed_ms", (json_int_t)v->signed_s * 1000, "why", v->why);
            va_send_json(r, doc ? 200 : 500, doc);
        } else if (st->op == OP_JWS) {
            char name[160];
            snprintf(name, sizeof(name), "attachment; filename=\"%s-v%d.jws\"", st->id, st->k);
            va_add_header(r, "Content-Disposition", name);
            va_send(r, 200, "application/jose", st->jws, strlen(st->jws));
        } else {
            va_send_json(r, 200, st->doc);
            st->doc = NULL;
        }
    }
    rstate_free(st);
}

void va_handle_report_get(va_req *r)
{
    rstate *st = rstate_new(r, OP_GET);
    if (!st || take_id(r, st)) {
        rstate_free(st);
        return;
    }
    r->state = st;
    va_req_run(r, read_work, read_done);
}

void va_handle_report_jws(va_req *r)
{
    rstate *st = rstate_new(r, OP_JWS);
    if (!st || take_id(r, st)) {
        rstate_free(st);
        return;
    }
    char *end;
    long k = strtol(r->segs[1], &end, 10);
    if (!r->segs[1][0] || *end || k < 1 || k > RPT_VERSIONS_MAX) {
        rstate_free(st);
        va_send_error(r, 404, "not_found", "no such version");
        return;
    }
    st->k = (int)k;
    r->state = st;
    va_req_run(r, read_work, read_done);
}

/* GET /api/v1/reports/{id}/versions/{n}/verify: the version's signature,
 * certificates and chain checked against the hub's trust anchors (what the
 * township and recognition pages show as a badge). Who may fetch the JWS may
 * ask; others get 404. */
void va_handle_report_verify(va_req *r)
{
    rstate *st = rstate_new(r, OP_VERIFY);
    if (!st || take_id(r, st)) {
        rstate_free(st);
        return;
    }
    char *end;
    long k = strtol(r->segs[1], &end, 10);
    if (!r->segs[1][0] || *end || k < 1 || k > RPT_VERSIONS_MAX) {
        rstate_free(st);
        va_send_error(r, 404, "not_found", "no such version");
        return;
    }
    st->k = (int)k;
    r->state = st;
    va_req_run(r, read_work, read_done);
}

/* ---- a study's reports: GET /api/v1/reports?study=S, GET /api/v1/exams/{S} ---- */

typedef struct list_ctx {
    redisContext *c;
    enum va_report_access acc;
    int with_text; /* OP_EXAM: each report's signed text */
    json_t *arr;
    int rc;
} list_ctx;

static int list_cb(void *arg, const char *id, enum rpt_status s)
{
    list_ctx *x = arg;
    rpt_info info;
    json_t *o = NULL;
    int rc = rpt_get(x->c, id, &info);
    if (rc == HR_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = report_json(x->c, &info, x->acc, &o);
    if (rc == 0 && !x->with_text) {
        /* the listing: a summary, no texts */
        json_object_del(o, "signed");
        json_object_del(o, "draft");
    }
    if (rc == 0 && json_array_append_new(x->arr, o))
        rc = -ENOMEM;
    rpt_info_free(&info);
    (void)s;
    return rc;
}

static void study_work(va_req *r, redisContext *c)
{
    rstate *st = r->state;
    wl_item *it = NULL;
    json_t *arr = NULL;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    st->rc = -ENOMEM;
    it = malloc(sizeof(*it));
    arr = json_array();
    if (!it || !arr)
        goto out;
    st->rc = item_of(st, c, it);
    if (st->rc)
        goto out;
    enum va_report_access acc = va_report_access(r, c, st->study, it->center, it->hospital);
    if (acc == VA_RPT_NONE) {
        st->rc = HR_ENOTFOUND;
        goto out;
    }
    list_ctx x = {.c = c, .acc = acc, .with_text = st->op == OP_EXAM, .arr = arr};
    st->rc = rpt_study_reports(c, st->study, list_cb, &x);
    if (st->rc)
        goto out;
    st->rc = -ENOMEM;
    if (st->op == OP_LIST) {
        st->doc = json_pack("{s:s, s:O}", "study", st->study, "reports", arr);
    } else {
        const hr_center *ce = hr_config_center(r->srv->cfg, it->center);
        st->doc = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:b, s:s, "
            "s:O}",
            "study", it->study, "state", wl_state_name(it->state), "center", it->center,
            "center_name", ce ? ce->name : "", "priority", wl_priority_name(it->priority),
            "hospital", it->hospital, "modality", it->modality, "patient", it->patient, "accession",
            it->accession, "study_date", it->study_date, "instances", it->instances, "arrived_ms",
            (json_int_t)it->arrived_ms, "ready_ms", (json_int_t)it->ready_ms, "due_ms",
            (json_int_t)it->due_ms, "overdue", it->overdue, "procedure", it->procedure, "reports",
            arr);
        if (st->doc)
            json_object_set_new(st->doc, "patient_name", va__jstr(it->patient_name));
    }
    st->rc = st->doc ? 0 : -ENOMEM;
out:
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
    json_decref(arr);
    free(it);
}

static void study_done(va_req *r)
{
    rstate *st = r->state;
    r->state = NULL;
    char detail[128];
    snprintf(detail, sizeof(detail), "study=%s", st->study);
    const char *patient = st->have_item ? st->patient : NULL;
    if (va_req_gone(r)) {
        /* nothing */
    } else if (st->rc) {
        va_audit(r, k_actions[st->op], patient, st->study, detail,
                 st->rc == HR_ENOTFOUND ? "denied" : "failure");
        va_send_rc(r, st->rc, st->op == OP_EXAM ? "exam" : "study");
    } else {
        va_audit(r, k_actions[st->op], patient, st->study, detail, "success");
        va_send_json(r, 200, st->doc);
        st->doc = NULL;
    }
    rstate_free(st);
}

static void study_start(va_req *r, enum op op, const char *study)
{
    if (!study || !dcm_uid_valid(study)) {
        va_send_error(r, 400, "bad_uid", "%s: a Study Instance UID",
                      op == OP_LIST ? "study" : "the exam");
        return;
    }
    rstate *st = rstate_new(r, op);
    if (!st)
        return;
    snprintf(st->study, sizeof(st->study), "%s", study);
    r->state = st;
    va_req_run(r, study_work, study_done);
}

void va_handle_reports(va_req *r)
{
    study_start(r, OP_LIST, va_param_get(r, "study"));
}

void va_handle_exam(va_req *r)
{
    study_start(r, OP_EXAM, r->segs[0]);
}
