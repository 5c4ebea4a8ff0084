#include "report.h"
#include "alert.h"
#include "jws.h"
#include "keystore.h"
#include "lab.h"
#include "recognition_items.h"
#include "report_script.h"
#include "rpt_config.h"
#include "signer.h"
#include "tsa.h"
#include "../common/hr_assert.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_io.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"
#include "../storage/sto_script.h"
#include "../worklist/worklist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ARGS_MAX 40
#define NUM_MAX  24

/* Script codes (report_script.lua). */
enum { S_OK, S_NOTFOUND, S_STATE, S_BUSY, S_STALE, S_TOOMANY, S_PERM, S_TOOBIG, S_OPEN };

static const char *const k_status[RPT_STATUS_COUNT] = {
    "draft", "preliminary", "final", "amended", "corrected", "entered-in-error"};

const char *rpt_status_name(enum rpt_status s)
{
    return (unsigned)s < RPT_STATUS_COUNT ? k_status[s] : "?";
}

int rpt_status_parse(const char *s)
{
    for (int i = 0; s && i < RPT_STATUS_COUNT; i++)
        if (strcmp(s, k_status[i]) == 0)
            return i;
    return -1;
}

int rpt_id_parse(const char *id, int *n, char *study)
{
    if (!id || id[0] != 'r' || id[1] < '1' || id[1] > '9')
        return -EINVAL;
    long v = 0;
    const char *p = id + 1;
    while (*p >= '0' && *p <= '9' && v <= RPT_PER_STUDY_MAX)
        v = v * 10 + (*p++ - '0');
    if (*p != '-' || v < 1 || v > RPT_PER_STUDY_MAX || !dcm_uid_key_valid(p + 1))
        return -EINVAL;
    *n = (int)v;
    snprintf(study, HR_UID_MAX, "%s", p + 1);
    return 0;
}

void rpt_keys_dir(const hr_config *cfg, char *out, size_t cap)
{
    if (cfg->reports && cfg->reports->keys_dir[0])
        snprintf(out, cap, "%s", cfg->reports->keys_dir);
    else
        snprintf(out, cap, "%s/keys", cfg->data_dir);
}

static void why_set(rpt_why *w, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(rpt_why *w, const char *code, const char *fmt, ...)
{
    va_list ap;
    w->code = code;
    va_start(ap, fmt);
    vsnprintf(w->detail, sizeof(w->detail), fmt, ap);
    va_end(ap);
}

/* ---- the script ---- */

static char g_sha[41];
static pthread_once_t g_sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    sto_script_sha1(k_report_script, g_sha);
}

typedef struct rpt_call {
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    int argc;
    char key1[HR_UID_MAX + 96], key2[HR_UID_MAX + 96];
    char nums[12][NUM_MAX];
    int n_nums;
} rpt_call;

/* EVALSHA of op with key1 (and key2 when not NULL); subject is the study
 * (or the user of the PIN operations). */
static void call_init(rpt_call *k, const char *op, const char *subject, long long now_ms)
{
    pthread_once(&g_sha_once, sha_init);
    memset(k, 0, sizeof(*k));
    k->argv[k->argc++] = "EVALSHA";
    k->argv[k->argc++] = g_sha;
    k->argv[k->argc++] = "1";
    k->argv[k->argc++] = k->key1;
    k->argv[k->argc++] = op;
    k->argv[k->argc++] = subject;
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", now_ms);
    k->argv[k->argc++] = k->nums[k->n_nums++];
}

/* The study's keys: KEYS[1] = hr:rpt:{S}, and the outbox when with_outbox. */
static void call_study(rpt_call *k, const char *op, const char *study, long long now_ms,
                       int with_outbox)
{
    call_init(k, op, study, now_ms);
    snprintf(k->key1, sizeof(k->key1), "hr:rpt:{%s}", study);
    if (with_outbox) {
        k->argv[2] = "2";
        memmove(&k->argv[5], &k->argv[4], (size_t)(k->argc - 4) * sizeof(k->argv[0]));
        snprintf(k->key2, sizeof(k->key2), "hr:rpt:outbox");
        k->argv[4] = k->key2;
        k->argc++;
    }
}

static void call_str(rpt_call *k, const char *s)
{
    HR_ASSERT(k->argc < ARGS_MAX);
    k->argv[k->argc++] = s ? s : "";
}

static void call_num(rpt_call *k, long long v)
{
    HR_ASSERT(k->n_nums < (int)HR_ARRAY_LEN(k->nums));
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", v);
    call_str(k, k->nums[k->n_nums++]);
}

/* The reply (caller frees), NULL when the connection failed; a script
 * error is logged and returned as NULL too. */
static redisReply *call_run(redisContext *c, rpt_call *k)
{
    for (int i = 0; i < k->argc; i++)
        k->len[i] = strlen(k->argv[i]);
    redisReply *r = sto_script_call(c, k_report_script, k->argc, k->argv, k->len);
    int op = k->argv[2][0] == '2' ? 5 : 4;
    if (r && r->type == REDIS_REPLY_ERROR) {
        hr_error("reports", "%s failed: %s", k->argv[op], r->str);
        freeReplyObject(r);
        r = NULL;
    } else if (!r) {
        hr_error("reports", "redis: %s", c->errstr[0] ? c->errstr : "no reply");
    }
    return r;
}

/* The code of an array reply {code, ...}; -1 when malformed. */
static int reply_code(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    return (int)r->element[0]->integer;
}

static const char *reply_str(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING)
        return "";
    return r->element[i]->str;
}

static long long to_ll(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

/* ---- content ---- */

/* 1 when s is 1..cap bytes of [A-Za-z0-9._-] */
static int code_ok(const char *s, size_t cap)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '/'))
            return 0;
    }
    return 1;
}

/* 1 when a text field has no control characters but tab, CR, LF (jansson
 * has checked UTF-8 and refused NUL). */
static int text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7F)
            return 0;
    }
    return 1;
}

static int text_member(const json_t *in, const json_t *base, const char *key, size_t cap,
                       json_t *out, rpt_why *why)
{
    const json_t *v = in ? json_object_get(in, key) : NULL;
    if (!v)
        v = base ? json_object_get(base, key) : NULL;
    if (!v) {
        json_object_set_new(out, key, json_string(""));
        return 0;
    }
    if (!json_is_string(v)) {
        why_set(why, "bad_content", "%s: a string", key);
        return -EINVAL;
    }
    size_t n = json_string_length(v);
    if (n > cap) {
        why_set(why, "too_large", "%s: at most %zu bytes (UTF-8), got %zu", key, cap, n);
        return -EINVAL;
    }
    if (!text_ok(json_string_value(v), n)) {
        why_set(why, "bad_content", "%s: control characters", key);
        return -EINVAL;
    }
    return json_object_set(out, key, (json_t *)v) ? -ENOMEM : 0;
}

static const json_t *member_or_base(const json_t *in, const json_t *base, const char *key)
{
    const json_t *v = in ? json_object_get(in, key) : NULL;
    return v ? v : base ? json_object_get(base, key) : NULL;
}

static int codes_member(const json_t *in, const json_t *base, json_t *out, rpt_why *why)
{
    const json_t *v = member_or_base(in, base, "codes");
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    json_object_set_new(out, "codes", arr);
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > RPT_ITEMS_MAX) {
        why_set(why, "bad_content", "codes: an array of at most %d {system, code, display}",
                RPT_ITEMS_MAX);
        return -EINVAL;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *sys = NULL, *code = NULL, *disp = "";
        if (!json_is_object(e) || json_object_size(e) > 3 ||
            json_unpack((json_t *)e, "{s:s, s:s, s?:s}", "system", &sys, "code", &code, "display",
                        &disp) != 0 ||
            !code_ok(sys, RPT_CODE_MAX) || !code_ok(code, RPT_CODE_MAX) ||
            strlen(disp) > RPT_DISPLAY_MAX || !text_ok(disp, strlen(disp))) {
            why_set(why, "bad_content",
                    "codes[%zu]: {\"system\", \"code\" (1..%d of A-Z a-z 0-9 . _ - : /), "
                    "\"display\" (<= %d bytes)}",
                    i, RPT_CODE_MAX, RPT_DISPLAY_MAX);
            return -EINVAL;
        }
        json_t *c = json_pack("{s:s, s:s, s:s}", "system", sys, "code", code, "display", disp);
        if (!c || json_array_append_new(arr, c))
            return -ENOMEM;
    }
    return 0;
}

static int recognition_member(const hr_config *cfg, const json_t *in, const json_t *base,
                              json_t *out, rpt_why *why)
{
    const json_t *v = member_or_base(in, base, "recognition");
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    json_object_set_new(out, "recognition", arr);
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > RPT_ITEMS_MAX) {
        why_set(why, "bad_content", "recognition: an array of at most %d item codes",
                RPT_ITEMS_MAX);
        return -EINVAL;
    }
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || !code_ok(json_string_value(e), RPT_CODE_MAX)) {
            why_set(why, "bad_content",
                    "recognition[%zu]: an item code (1..%d of A-Z a-z 0-9 . _ -)", i, RPT_CODE_MAX);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(v, j), (json_t *)e)) {
                why_set(why, "bad_content", "recognition[%zu]: \"%s\" twice", i,
                        json_string_value(e));
                return -EINVAL;
            }
        if (json_array_append(arr, (json_t *)e))
            return -ENOMEM;
    }
    if (json_array_size(arr) == 0)
        return 0;
    /* the catalogue must know every item: fill a copy now, as signing will */
    json_t *items = json_array();
    int rc = items ? 0 : -ENOMEM;
    json_array_foreach(arr, i, e)
    {
        if (!rc && json_array_append_new(items, json_pack("{s:O}", "item", e)))
            rc = -ENOMEM;
    }
    if (!rc)
        rc = rpt_fill_recognition(cfg, items, 0);
    json_decref(items);
    if (rc == -EINVAL) {
        if (!cfg->recognition)
            why_set(why, "recognition_not_configured",
                    "recognition catalogue not configured: no item can be named");
        else
            why_set(why, "unknown_item", "recognition: an item is not in the catalogue");
    }
    return rc;
}

int rpt_content_check(const hr_config *cfg, const json_t *in, const json_t *base, json_t **out,
                      rpt_why *why)
{
    static const char *const k_members[] = {"findings", "impression", "critical", "codes",
                                            "recognition"};
    json_t *o = NULL;
    int rc = -EINVAL;
    *out = NULL;
    if (in && !json_is_object(in)) {
        why_set(why, "bad_content", "the content is a JSON object");
        goto out;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        size_t i = 0;
        while (i < HR_ARRAY_LEN(k_members) && strcmp(key, k_members[i]) != 0)
            i++;
        if (i == HR_ARRAY_LEN(k_members)) {
            why_set(why, "bad_content", "unknown member \"%.64s\"", key);
            goto out;
        }
    }
    rc = -ENOMEM;
    o = json_object();
    if (!o)
        goto out;
    rc = text_member(in, base, "findings", RPT_TEXT_MAX, o, why);
    if (!rc)
        rc = text_member(in, base, "impression", RPT_TEXT_MAX, o, why);
    if (rc)
        goto out;
    v = member_or_base(in, base, "critical");
    if (v && !json_is_boolean(v)) {
        why_set(why, "bad_content", "critical: true or false");
        rc = -EINVAL;
        goto out;
    }
    json_object_set_new(o, "critical", json_boolean(v && json_is_true(v)));
    rc = codes_member(in, base, o, why);
    if (!rc)
        rc = recognition_member(cfg, in, base, o, why);
    if (rc)
        goto out;
    *out = o;
    o = NULL;
out:
    json_decref(o);
    return rc;
}

/* ---- reading ---- */

static void copy_cut(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int rpt_get(redisContext *c, const char *id, rpt_info *out)
{
    char study[HR_UID_MAX];
    int n;
    memset(out, 0, sizeof(*out));
    if (rpt_id_parse(id, &n, study))
        return -EINVAL;
    redisReply *r = redisCommand(c, "HGETALL hr:rpt:{%s}:%d", study, n);
    int rc = HR_EREDIS;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        goto out;
    rc = HR_ENOTFOUND;
    if (r->elements < 2)
        goto out;
    rc = 0;
    copy_cut(out->id, sizeof(out->id), id);
    copy_cut(out->study, sizeof(out->study), study);
    out->n = n;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (r->element[i]->type != REDIS_REPLY_STRING ||
            r->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k, "center") == 0)
            copy_cut(out->center, sizeof(out->center), v);
        else if (strcmp(k, "hospital") == 0)
            copy_cut(out->hospital, sizeof(out->hospital), v);
        else if (strcmp(k, "status") == 0 && rpt_status_parse(v) >= 0)
            out->status = (enum rpt_status)rpt_status_parse(v);
        else if (strcmp(k, "versions") == 0)
            out->versions = (int)to_ll(v);
        else if (strcmp(k, "current") == 0)
            out->current = (int)to_ll(v);
        else if (strcmp(k, "pending") == 0)
            out->pending = (int)to_ll(v);
        else if (strcmp(k, "author") == 0)
            copy_cut(out->author, sizeof(out->author), v);
        else if (strcmp(k, "created_by") == 0)
            copy_cut(out->created_by, sizeof(out->created_by), v);
        else if (strcmp(k, "created_ms") == 0)
            out->created_ms = to_ll(v);
        else if (strcmp(k, "updated_ms") == 0)
            out->updated_ms = to_ll(v);
        else if (strcmp(k, "rev") == 0)
            out->rev = to_ll(v);
        else if (strcmp(k, "draft_by") == 0)
            copy_cut(out->draft_by, sizeof(out->draft_by), v);
        else if (strcmp(k, "draft_ms") == 0)
            out->draft_ms = to_ll(v);
        else if (strcmp(k, "draft") == 0 && v[0])
            out->draft = json_loadb(v, r->element[i + 1]->len, 0, NULL);
    }
    if (out->status == RPT_DRAFT && !out->draft)
        out->draft = json_object(); /* a new draft: nothing saved yet */
out:
    freeReplyObject(r);
    return rc;
}

void rpt_info_free(rpt_info *r)
{
    json_decref(r->draft);
    r->draft = NULL;
}

/* The payload of a compact JWS (a new reference), NULL when malformed. */
static json_t *jws_payload(const char *jws)
{
    const char *a = strchr(jws, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!b)
        return NULL;
    size_t n = (size_t)(b - a - 1), len;
    uint8_t *p = malloc(3 * (n / 4) + 2);
    json_t *doc = NULL;
    if (p && rpt_b64url_decode(a + 1, n, p, &len) == 0)
        doc = json_loadb((const char *)p, len, 0, NULL);
    free(p);
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

int rpt_version_get(redisContext *c, const char *id, int k, rpt_version *out)
{
    char study[HR_UID_MAX];
    int n;
    redisReply *r = NULL;
    memset(out, 0, sizeof(*out));
    if (rpt_id_parse(id, &n, study) || k < 0 || k > RPT_VERSIONS_MAX)
        return -EINVAL;
    int rc = HR_EREDIS;
    if (k == 0) {
        r = redisCommand(c, "HMGET hr:rpt:{%s}:%d versions current", study, n);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            goto out;
        rc = HR_ENOTFOUND;
        if (r->element[0]->type != REDIS_REPLY_STRING)
            goto out;
        k = (int)to_ll(reply_str(r, 1));
        if (k == 0)
            k = (int)to_ll(reply_str(r, 0));
        if (k == 0)
            goto out;
        freeReplyObject(r);
    }
    rc = HR_EREDIS;
    r = redisCommand(c, "HMGET hr:rpt:{%s}:%d:v:%d status jws digest signed_ms tsr", study, n, k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        goto out;
    rc = HR_ENOTFOUND;
    if (r->element[1]->type != REDIS_REPLY_STRING)
        goto out;
    rc = -ENOMEM;
    copy_cut(out->report, sizeof(out->report), id);
    out->version = k;
    out->status = rpt_status_parse(reply_str(r, 0)) >= 0
                      ? (enum rpt_status)rpt_status_parse(reply_str(r, 0))
                      : RPT_DRAFT;
    copy_cut(out->digest, sizeof(out->digest), reply_str(r, 2));
    out->signed_ms = to_ll(reply_str(r, 3));
    out->jws = strdup(reply_str(r, 1));
    out->tsr = strdup(reply_str(r, 4));
    if (!out->jws || !out->tsr)
        goto out;
    rc = HR_EREDIS; /* a stored version always decodes */
    out->payload = jws_payload(out->jws);
    if (!out->payload) {
        hr_error("reports", "version %d of %s: the stored JWS does not decode", k, id);
        goto out;
    }
    rc = 0;
out:
    freeReplyObject(r);
    if (rc)
        rpt_version_free(out);
    return rc;
}

void rpt_version_free(rpt_version *v)
{
    free(v->jws);
    free(v->tsr);
    json_decref(v->payload);
    v->jws = v->tsr = NULL;
    v->payload = NULL;
}

int rpt_study_reports(redisContext *c, const char *study,
                      int (*cb)(void *arg, const char *id, enum rpt_status st), void *arg)
{
    if (!dcm_uid_key_valid(study))
        return -EINVAL;
    redisReply *r = redisCommand(c, "LRANGE hr:rpt:{%s}:ids 0 %d", study, RPT_PER_STUDY_MAX - 1),
               *s = NULL;
    int rc = HR_EREDIS;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        goto out;
    rc = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            redisAppendCommand(c, "HGET hr:rpt:{%s}:%d status", study, (int)i + 1);
    for (size_t i = 0; i < r->elements && !rc; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if (redisGetReply(c, (void **)&s) != REDIS_OK) {
            rc = HR_EREDIS;
            break;
        }
        int st = s && s->type == REDIS_REPLY_STRING ? rpt_status_parse(s->str) : -1;
        freeReplyObject(s);
        s = NULL;
        rc = cb(arg, r->element[i]->str, st < 0 ? RPT_DRAFT : (enum rpt_status)st);
        if (rc) { /* drain the replies still pending */
            for (size_t j = i + 1; j < r->elements; j++)
                if (r->element[j]->type == REDIS_REPLY_STRING &&
                    redisGetReply(c, (void **)&s) == REDIS_OK) {
                    freeReplyObject(s);
                    s = NULL;
                }
        }
    }
out:
    freeReplyObject(r);
    return rc;
}

int rpt_latest(redisContext *c, const char *const *studies, size_t n, char (*ids)[RPT_ID_MAX],
               enum rpt_status *st)
{
    int rc = 0;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i][0] = '\0';
        st[i] = RPT_DRAFT;
        if (dcm_uid_key_valid(studies[i]) &&
            redisAppendCommand(c, "HMGET hr:rpt:{%s} latest status", studies[i]) == REDIS_OK)
            sent++;
    }
    for (size_t i = 0, got = 0; i < n && got < sent; i++) {
        redisReply *r = NULL;
        if (!dcm_uid_key_valid(studies[i]))
            continue;
        got++;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            rc = HR_EREDIS;
            break;
        }
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING) {
            copy_cut(ids[i], RPT_ID_MAX, r->element[0]->str);
            int s = rpt_status_parse(reply_str(r, 1));
            st[i] = s < 0 ? RPT_DRAFT : (enum rpt_status)s;
        } else if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = HR_EREDIS;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* ---- who may act ---- */

static int is_member(const rpt_actor *w, const char *center)
{
    return (w->role == STO_ROLE_READER || w->role == STO_ROLE_AUDITOR) && w->center &&
           strcmp(w->center, center) == 0;
}

/* The worklist claim: 0 when who holds a live lease on the study. */
static int claim_held(redisContext *c, const char *study, const rpt_actor *who, long long now_ms,
                      rpt_why *why)
{
    wl_item *it = malloc(sizeof(*it));
    int rc = -ENOMEM;
    if (!it)
        goto out;
    rc = wl_get(c, study, it);
    if (rc == HR_ENOTFOUND)
        why_set(why, "no_worklist_item", "the study is on no worklist");
    if (rc)
        goto out;
    rc = -EBUSY;
    if (it->state != WL_CLAIMED || strcmp(it->claimed_by, who->user) != 0 ||
        it->lease_until_ms <= now_ms) {
        if (it->state == WL_CLAIMED && it->lease_until_ms > now_ms && it->claimed_by[0])
            why_set(why, "not_claim_holder", "the exam is claimed by %s, not by you",
                    it->claimed_by);
        else
            why_set(why, "not_claim_holder", "claim the exam on the worklist first (it is %s)",
                    wl_state_name(it->state));
        goto out;
    }
    rc = 0;
out:
    free(it);
    return rc;
}

/* Maps a script code of create, save or commit to a project code. */
static int script_rc(int code, rpt_why *why)
{
    switch (code) {
    case S_OK:
        return 0;
    case S_NOTFOUND:
        return HR_ENOTFOUND;
    case S_STATE:
        why_set(why, "changed", "the report changed meanwhile; reload it");
        return HR_ESTATE;
    case S_BUSY:
        why_set(why, "not_claim_holder", "you no longer hold the exam's claim");
        return -EBUSY;
    case S_STALE:
        why_set(why, "stale_rev", "the draft was saved meanwhile (newer revision)");
        return HR_ESTATE;
    case S_TOOMANY:
        why_set(why, "too_many_reports", "at most %d reports per study", RPT_PER_STUDY_MAX);
        return HR_ETOOBIG;
    case S_PERM:
        why_set(why, "forbidden", "the exam was routed to another center");
        return -EPERM;
    case S_TOOBIG:
        return HR_ETOOBIG;
    case S_OPEN:
        why_set(why, "open_report", "the study has an open report");
        return HR_ESTATE;
    }
    return HR_EREDIS;
}

/* ---- drafts ---- */

int rpt_create(redisContext *c, const hr_config *cfg, const char *study, const rpt_actor *who,
               long long now_ms, char *id, long long *rev, rpt_why *why)
{
    rpt_call k;
    redisReply *r = NULL;
    int rc = -EINVAL;
    memset(why, 0, sizeof(*why));
    id[0] = '\0';
    *rev = 0;
    if (!dcm_uid_key_valid(study)) {
        why_set(why, "bad_request", "study: a Study Instance UID");
        goto out;
    }
    rc = -EPERM;
    if (who->role != STO_ROLE_READER && who->role != STO_ROLE_AUDITOR) {
        why_set(why, "forbidden", "only a center's readers and auditors write reports");
        goto out;
    }
    rc = claim_held(c, study, who, now_ms, why);
    if (rc)
        goto out;
    call_study(&k, "create", study, now_ms, 0);
    call_str(&k, who->user);
    call_str(&k, who->center);
    call_num(&k, RPT_PER_STUDY_MAX);
    r = call_run(c, &k);
    int code = reply_code(r);
    rc = script_rc(code, why);
    if (code == S_NOTFOUND)
        why_set(why, "no_worklist_item", "the study is on no worklist");
    if (code == S_OK || code == S_OPEN)
        copy_cut(id, RPT_ID_MAX, reply_str(r, 1));
    if (code == S_OPEN)
        why_set(why, "open_report", "the study already has an open report, %s", id);
    (void)cfg;
out:
    freeReplyObject(r);
    return rc;
}

int rpt_save(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
             long long rev, const json_t *content, long long now_ms, long long *new_rev,
             rpt_why *why)
{
    rpt_info info;
    json_t *merged = NULL;
    char *text = NULL;
    redisReply *r = NULL;
    rpt_call k;
    memset(why, 0, sizeof(*why));
    *new_rev = rev;
    int rc = rpt_get(c, id, &info);
    if (rc)
        goto out;
    rc = -EPERM;
    if (!is_member(who, info.center)) {
        why_set(why, "forbidden", "only readers and auditors of center %s edit its reports",
                info.center);
        goto out;
    }
    rc = HR_ESTATE;
    if (info.status != RPT_DRAFT || info.pending) {
        why_set(why, "not_draft", "the report is %s: signed versions are never edited",
                rpt_status_name(info.status));
        goto out;
    }
    rc = claim_held(c, info.study, who, now_ms, why);
    if (rc)
        goto out;
    rc = HR_ESTATE;
    if (rev != info.rev) {
        why_set(why, "stale_rev", "revision %lld is not the saved one (%lld)", rev, info.rev);
        *new_rev = info.rev;
        goto out;
    }
    rc = rpt_content_check(cfg, content, info.draft, &merged, why);
    if (rc)
        goto out;
    rc = -ENOMEM;
    text = json_dumps(merged, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        goto out;
    char revs[NUM_MAX];
    snprintf(revs, sizeof(revs), "%lld", rev);
    call_study(&k, "save", info.study, now_ms, 0);
    call_num(&k, info.n);
    call_str(&k, who->user);
    call_str(&k, revs);
    call_str(&k, text);
    r = call_run(c, &k);
    int code = reply_code(r);
    rc = script_rc(code, why);
    if (code == S_OK)
        *new_rev = to_ll(reply_str(r, 1));
    else if (code == S_STALE)
        *new_rev = to_ll(reply_str(r, 1));
out:
    freeReplyObject(r);
    free(text);
    json_decref(merged);
    rpt_info_free(&info);
    return rc;
}

/* ---- the payload (decision 0022) ---- */

typedef struct image {
    const char *sop, *sha; /* in the reply */
} image;

static int image_cmp(const void *a, const void *b)
{
    return strcmp(((const image *)a)->sop, ((const image *)b)->sop);
}

static int sha_hex_ok(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A field of an HGETALL array, "" when absent. */
static const char *field(const redisReply *h, const char *name)
{
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : "";
    return "";
}

/* A JSON string of s (index text is UTF-8); NULL marks a failure the
 * builder reports once (invalid UTF-8 or no memory). */
static int put(json_t *o, const char *key, const char *s, int *bad)
{
    json_t *v = json_string(s ? s : "");
    if (!v || json_object_set_new(o, key, v)) {
        *bad = 1;
        return -1;
    }
    return 0;
}

/* payload.exam, .patient and .images of the study as indexed now. */
static int build_study(redisContext *c, const hr_config *cfg, const char *study, json_t *payload,
                       rpt_why *why)
{
    rpt_call k;
    image *img = NULL;
    wl_item *it = NULL;
    hr_sha256 *h = NULL;
    int rc, bad = 0;
    call_study(&k, "images", study, 0, 0);
    call_num(&k, RPT_INSTANCES_MAX);
    redisReply *r = call_run(c, &k);
    int code = reply_code(r);
    if (code == S_TOOBIG) {
        rc = HR_ETOOBIG;
        why_set(why, "too_many_instances",
                "the study has %lld instances; at most %d are signed over",
                r->elements > 1 && r->element[1]->type == REDIS_REPLY_INTEGER
                    ? (long long)r->element[1]->integer
                    : 0LL,
                RPT_INSTANCES_MAX);
        goto out;
    }
    if (code == S_NOTFOUND) {
        rc = HR_ENOTFOUND;
        why_set(why, "no_study", "the study is not in the index");
        goto out;
    }
    rc = HR_EREDIS;
    if (code != S_OK || r->elements < 2 || r->element[1]->type != REDIS_REPLY_ARRAY ||
        (r->elements - 2) % 2)
        goto out;
    rc = -ENOMEM;
    it = malloc(sizeof(*it));
    size_t n = (r->elements - 2) / 2;
    img = calloc(n ? n : 1, sizeof(*img));
    h = hr_sha256_new();
    if (!it || !img || !h)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const redisReply *a = r->element[2 + 2 * i], *b = r->element[3 + 2 * i];
        rc = HR_EREDIS;
        if (a->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_STRING || !sha_hex_ok(b->str) ||
            !dcm_uid_key_valid(a->str))
            goto out;
        img[i].sop = a->str;
        img[i].sha = b->str;
    }
    qsort(img, n, sizeof(*img), image_cmp);
    rc = wl_get(c, study, it);
    if (rc == HR_ENOTFOUND)
        memset(it, 0, sizeof(*it));
    else if (rc)
        goto out;
    const redisReply *st = r->element[1];
    const hr_center *ce = hr_config_center(cfg, it->center);
    const hr_hospital *ho = hr_config_hospital(cfg, field(st, "hospital"));
    rc = -ENOMEM;
    json_t *exam = json_object(), *pat = json_object(), *images = json_object(),
           *list = json_array();
    if (json_object_set_new(payload, "exam", exam) ||
        json_object_set_new(payload, "patient", pat) ||
        json_object_set_new(payload, "images", images) ||
        json_object_set_new(images, "instances", list))
        goto out;
    put(exam, "study_uid", study, &bad);
    put(exam, "accession", field(st, "accession"), &bad);
    put(exam, "hospital", field(st, "hospital"), &bad);
    put(exam, "hospital_name", ho ? ho->name : "", &bad);
    put(exam, "modality", it->modality, &bad);
    put(exam, "procedure", it->procedure[0] ? it->procedure : field(st, "description"), &bad);
    put(exam, "study_date", field(st, "date"), &bad);
    put(exam, "center", it->center, &bad);
    put(exam, "center_name", ce ? ce->name : "", &bad);
    put(pat, "id", field(st, "patient_id"), &bad);
    put(pat, "issuer", field(st, "issuer"), &bad);
    put(pat, "name", field(st, "patient_name"), &bad);
    put(pat, "sex", field(st, "sex"), &bad);
    put(pat, "birth_date", field(st, "birth_date"), &bad);
    size_t count = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        if (i > 0 && strcmp(img[i].sop, img[i - 1].sop) == 0)
            continue; /* one instance listed in two series */
        hr_sha256_update(h, img[i].sop, strlen(img[i].sop));
        hr_sha256_update(h, " ", 1);
        hr_sha256_update(h, img[i].sha, 64);
        hr_sha256_update(h, "\n", 1);
        json_t *e = json_pack("{s:s, s:s}", "sop", img[i].sop, "sha256", img[i].sha);
        if (!e || json_array_append_new(list, e))
            bad = 1;
        count++;
    }
    char digest[65];
    hr_sha256_final_hex(h, digest);
    json_object_set_new(images, "count", json_integer((json_int_t)count));
    put(images, "order", "sop-uid-bytewise", &bad);
    put(images, "digest", digest, &bad);
    /* a lab report (decision 0041): its observations and the SHA-256 of
     * the raw HL7 messages they came from are signed over too */
    json_t *lab = NULL;
    int lrc = bad ? 0 : lab_get(c, study, &lab);
    if (lrc == 0 && lab) {
        json_t *l = lab_payload(lab);
        json_decref(lab);
        if (!l || json_object_set_new(payload, "lab", l))
            bad = 1;
    } else if (lrc != HR_ENOTFOUND && lrc != 0) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = bad ? -ENOMEM : 0;
out:
    if (rc == HR_EREDIS && !why->code)
        why_set(why, "index", "the index could not be read");
    freeReplyObject(r);
    free(img);
    free(it);
    hr_sha256_free(h);
    return rc;
}

/* "2026-12-03T07:00:00.123Z" */
static void iso_ms(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* A signers[] entry for who signing now in function fn. */
static json_t *signer_json(const rpt_actor *who, const char *fn, long long now_ms)
{
    char at[32];
    iso_ms(now_ms, at);
    json_t *o = json_object();
    int bad = 0;
    if (!o)
        return NULL;
    put(o, "user", who->user, &bad);
    put(o, "name", who->name ? who->name : "", &bad);
    put(o, "role", sto_role_name(who->role), &bad);
    put(o, "function", fn, &bad);
    put(o, "center", who->center, &bad);
    put(o, "hospital", who->hospital, &bad);
    put(o, "signed_at", at, &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* payload.content from a checked content object (no recognition member). */
static json_t *content_json(const json_t *content)
{
    return json_pack("{s:O, s:O, s:O, s:O}", "findings", json_object_get(content, "findings"),
                     "impression", json_object_get(content, "impression"), "critical",
                     json_object_get(content, "critical"), "codes",
                     json_object_get(content, "codes"));
}

/* payload.recognition from item codes, filled by the catalogue; every
 * item's category must be the kind of the report's center (rec_fill). */
static int recognition_json(const hr_config *cfg, const char *center, const json_t *codes,
                            long long now_ms, json_t **out, rpt_why *why)
{
    json_t *items = json_array();
    size_t i;
    const json_t *e;
    char detail[sizeof(why->detail)] = "";
    int rc = items ? 0 : -ENOMEM;
    json_array_foreach(codes, i, e)
    {
        if (!rc && json_array_append_new(items, json_pack("{s:O}", "item", e)))
            rc = -ENOMEM;
    }
    if (!rc)
        rc =
            rec_fill(cfg, center && *center ? center : NULL, items, now_ms, detail, sizeof(detail));
    if (rc == -EINVAL && !cfg->recognition)
        why_set(why, "recognition_not_configured",
                "recognition catalogue not configured: no item can be named");
    else if (rc == -EINVAL)
        why_set(why, "unknown_item", "%s", detail);
    if (rc) {
        json_decref(items);
        items = NULL;
    }
    *out = items;
    return rc;
}

/* The item codes of a payload's recognition[] (a new array). */
static json_t *item_codes(const json_t *payload)
{
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(payload, "recognition"), i, e)
    {
        const json_t *code = json_object_get(e, "item");
        if (out && json_is_string(code))
            json_array_append(out, (json_t *)code);
    }
    return out;
}

/* A checked content object from a signed payload (base of amendments). */
static json_t *content_of(const json_t *payload)
{
    const json_t *c = json_object_get(payload, "content");
    json_t *codes = item_codes(payload);
    json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:o}", "findings", json_object_get(c, "findings"),
                          "impression", json_object_get(c, "impression"), "critical",
                          json_object_get(c, "critical"), "codes", json_object_get(c, "codes"),
                          "recognition", codes);
    return o;
}

/* report.supersedes of a version: {version, digest}. */
static json_t *supersedes_json(const rpt_version *v)
{
    return json_pack("{s:i, s:s}", "version", v->version, "digest", v->digest);
}

/* ---- signing ---- */

static void pin_keys(const char *user, char *fail, char *lock, size_t cap)
{
    snprintf(fail, cap, "hr:rpt:pin:{%s}:fail", user);
    snprintf(lock, cap, "hr:rpt:pin:{%s}:lock", user);
}

/* -EAGAIN while the user's signing is locked by PIN failures. */
static int pin_locked(redisContext *c, const rpt_actor *who, rpt_why *why)
{
    char fail[160], lock[160];
    pin_keys(who->user, fail, lock, sizeof(fail));
    redisReply *r = redisCommand(c, "TTL %s", lock);
    int rc = HR_EREDIS;
    if (!r || r->type != REDIS_REPLY_INTEGER)
        goto out;
    rc = 0;
    if (r->integer == -2)
        goto out;
    rc = -EAGAIN;
    why->retry_after_s = r->integer > 0 ? (int)r->integer : RPT_PIN_LOCK_S;
    why_set(why, "pin_locked", "signing is locked after %d wrong PINs; retry in %d s",
            RPT_PIN_FAILURES, why->retry_after_s);
out:
    freeReplyObject(r);
    return rc;
}

/* Counts a wrong PIN (the RPT_PIN_FAILURES-th locks signing). */
static void pin_failed(redisContext *c, const rpt_actor *who, long long now_ms, rpt_why *why)
{
    rpt_call k;
    call_init(&k, "pin_fail", who->user, now_ms);
    k.argv[2] = "2";
    memmove(&k.argv[5], &k.argv[4], (size_t)(k.argc - 4) * sizeof(k.argv[0]));
    k.argc++;
    pin_keys(who->user, k.key1, k.key2, sizeof(k.key1));
    k.argv[3] = k.key1;
    k.argv[4] = k.key2;
    call_num(&k, RPT_PIN_FAILURES);
    call_num(&k, RPT_PIN_WINDOW_S);
    call_num(&k, RPT_PIN_LOCK_S);
    redisReply *r = call_run(c, &k);
    long long n = 0, locked = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        n = r->element[0]->integer;
        locked = r->element[1]->integer;
    }
    freeReplyObject(r);
    why->retry_after_s = locked ? RPT_PIN_LOCK_S : 0;
    if (locked)
        why_set(why, "wrong_pin", "wrong signing PIN; signing is now locked for %d s",
                RPT_PIN_LOCK_S);
    else
        why_set(why, "wrong_pin", "wrong signing PIN (%lld of %d before signing is locked)", n,
                RPT_PIN_FAILURES);
}

/* A signed payload: the compact JWS, its digest, its RFC 3161 token. */
typedef struct sealed {
    char *jws;       /* malloc'd */
    char digest[65]; /* SHA-256 hex of jws */
    char *tsr;       /* base64 TimeStampToken (malloc'd), NULL without a TSA */
} sealed;

static void sealed_free(sealed *sd)
{
    free(sd->jws);
    free(sd->tsr);
    sd->jws = sd->tsr = NULL;
}

/* The TSA's token of the JWS when reports.tsa_url is set: a TSA that does
 * not answer signs nothing (decision 0024). */
static int timestamp(const hr_config *cfg, sealed *sd, rpt_why *why)
{
    const struct rpt_config *rc_ = cfg->reports;
    char msg[200];
    long long gen_s;
    if (!rc_ || !rc_->tsa_url[0])
        return 0;
    int rc = rpt_tsa_request(rc_->tsa_url, rc_->tsa_timeout_ms, sd->jws, strlen(sd->jws), &sd->tsr,
                             &gen_s, msg, sizeof(msg));
    if (rc) {
        hr_warn("reports", "timestamp of a signature refused: %s", msg);
        why_set(why, "tsa_unavailable", "the timestamp authority did not answer: %s", msg);
        return -EHOSTUNREACH;
    }
    return 0;
}

/* Signs payload as who (PIN pin) at now_ms into *sd (sealed_free). */
static int sign_payload(redisContext *c, const hr_config *cfg, const rpt_actor *who,
                        const char *pin, const json_t *payload, long long now_ms, sealed *sd,
                        rpt_why *why)
{
    char dir[HR_PATH_MAX + 8];
    rpt_signer *s = NULL;
    hr_sha256 *h = NULL;
    char **jws = &sd->jws;
    char *digest = sd->digest;
    memset(sd, 0, sizeof(*sd));
    int rc = -EINVAL;
    if (!pin || !*pin || strlen(pin) > RPT_PIN_MAX) {
        why_set(why, "bad_request", "pin: the signing PIN (1..%d bytes)", RPT_PIN_MAX);
        goto out;
    }
    rpt_keys_dir(cfg, dir, sizeof(dir));
    rc = rpt_local_signer_open(dir, who->user, pin, &s);
    if (rc == -EACCES) {
        pin_failed(c, who, now_ms, why);
        goto out;
    }
    if (rc == HR_ENOTFOUND) {
        why_set(why, "no_signing_key", "%s has no signing key (huren keygen)", who->user);
        rc = HR_ECERT;
    } else if (rc == HR_ECERT) {
        why_set(why, "certificate_invalid",
                "the signing key does not match its certificate, or the certificate expired");
    } else if (rc) {
        why_set(why, "signer", "the signing key could not be opened (%s)", hr_strerror(rc));
    }
    if (rc)
        goto out;
    redisReply *r = redisCommand(c, "DEL hr:rpt:pin:{%s}:fail", who->user);
    freeReplyObject(r);
    rc = rpt_jws_sign(s, payload, now_ms / 1000, jws);
    if (rc) {
        why_set(why, "signer", "signing failed (%s)", hr_strerror(rc));
        goto out;
    }
    rc = -ENOMEM;
    h = hr_sha256_new();
    if (!h)
        goto out;
    hr_sha256_update(h, *jws, strlen(*jws));
    hr_sha256_final_hex(h, digest);
    rc = timestamp(cfg, sd, why);
out:
    if (rc)
        sealed_free(sd);
    if (s)
        s->free(s);
    hr_sha256_free(h);
    return rc;
}

/* What a commit writes and what it expects to find. */
typedef struct commit {
    const rpt_info *info;
    int guard_rev;          /* check the draft revision info->rev */
    const char *claim_user; /* check the claim (NULL: no) */
    int k;                  /* the new version */
    enum rpt_status vstatus;
    const char *jws, *digest;
    long long signed_ms;
    const char *signer;     /* also the user who moves the worklist item */
    const char *tsr;        /* NULL: none */
    enum rpt_status status; /* the report's status after */
    int current, pending;
    const char *pending_kind;
    const char *author;
    int clear_draft, clear_open, outbox;
    const json_t *payload; /* signers, supersedes, cosigns, reason copied for listings */
    enum wl_state to[2];   /* the worklist item follows the report ... */
    int n_to;              /* ... through to[0..n_to) */
    const char *signers;   /* copied from payload by commit_run (or from a record) */
    long long supersedes;  /* likewise */
    int cosigned;          /* likewise */
    const char *reason;    /* likewise ("" when none) */
} commit;

/* The worklist follows the report; the report is committed already, so a
 * failure here is logged, not returned (the item can be moved again). */
static void follow(redisContext *c, const char *study, const enum wl_state *to, int n,
                   const char *user, long long now_ms)
{
    for (int i = 0; i < n; i++) {
        int rc = wl_set_state(c, study, to[i], user, now_ms);
        if (rc)
            hr_warn("reports", "study %s: worklist item not moved to %s: %s", study,
                    wl_state_name(to[i]), hr_strerror(rc));
    }
}

/* The EVALSHA of a commit (op "commit") or of its replay (op "replay": no
 * draft-revision or claim guard, and the report's identity for recreating a
 * report lost with its first version). */
static redisReply *commit_eval(redisContext *c, const commit *m, const char *op, long long now_ms)
{
    rpt_call k;
    char revs[NUM_MAX];
    int replay = strcmp(op, "replay") == 0;
    snprintf(revs, sizeof(revs), "%lld", m->info->rev);
    call_study(&k, op, m->info->study, now_ms, 1);
    call_num(&k, m->info->n);
    call_num(&k, m->info->versions);
    call_num(&k, m->info->pending);
    call_str(&k, m->guard_rev && !replay ? revs : "");
    call_str(&k, m->claim_user && !replay ? m->claim_user : "");
    call_num(&k, m->k);
    call_str(&k, rpt_status_name(m->vstatus));
    call_str(&k, m->jws);
    call_str(&k, m->digest);
    call_num(&k, m->signed_ms);
    call_str(&k, m->signer);
    call_str(&k, m->tsr ? m->tsr : "");
    call_str(&k, rpt_status_name(m->status));
    call_num(&k, m->current);
    call_num(&k, m->pending);
    call_str(&k, m->pending_kind ? m->pending_kind : "");
    call_str(&k, m->author);
    call_str(&k, m->clear_draft ? "1" : "0");
    call_str(&k, m->clear_open ? "clear" : "keep");
    call_str(&k, m->outbox ? "1" : "0");
    call_str(&k, m->signers);
    call_num(&k, m->supersedes);
    call_str(&k, m->cosigned ? "1" : "0");
    call_str(&k, m->reason);
    if (replay) {
        call_str(&k, m->info->center);
        call_str(&k, m->info->hospital);
        call_str(&k, m->info->created_by);
        call_num(&k, m->info->created_ms);
    }
    return call_run(c, &k);
}

/* ---- version record files (decision 0024: durable before visible) ---- */

#define RECORD_MAX (RPT_JWS_MAX + 4 * RPT_TSR_MAX + (1u << 20))

static int mkdir_new(const char *dir, int *created)
{
    *created = 0;
    if (mkdir(dir, 0750) == 0) {
        *created = 1;
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* <data_dir>/reports[/aa[/bb[/<digest>.json]]] into out (cap HR_PATH_MAX + 96). */
static void record_path(const hr_config *cfg, const char *digest, int depth, char *out)
{
    size_t cap = HR_PATH_MAX + 96;
    if (depth == 0)
        snprintf(out, cap, "%s/reports", cfg->data_dir);
    else if (depth == 1)
        snprintf(out, cap, "%s/reports/%.2s", cfg->data_dir, digest);
    else if (depth == 2)
        snprintf(out, cap, "%s/reports/%.2s/%.2s", cfg->data_dir, digest, digest + 2);
    else
        snprintf(out, cap, "%s/reports/%.2s/%.2s/%s.json", cfg->data_dir, digest, digest + 2,
                 digest);
}

/* The record of m: everything the commit's script was given. */
static json_t *record_json(const commit *m, long long now_ms)
{
    json_t *to = json_array();
    for (int i = 0; to && i < m->n_to; i++)
        if (json_array_append_new(to, json_string(wl_state_name(m->to[i]))))
            goto fail;
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:i, s:i, s:i, s:I, s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:i, s:i, "
        "s:s, s:s, s:b, s:b, s:b, s:s, s:I, s:b, s:s, s:o, s:s, s:s, s:s, s:I, s:I}",
        "record", 1, "report", m->info->id, "study", m->info->study, "n", m->info->n,
        "guard_versions", m->info->versions, "guard_pending", m->info->pending, "guard_rev",
        (json_int_t)m->info->rev, "version", m->k, "vstatus", rpt_status_name(m->vstatus), "jws",
        m->jws, "digest", m->digest, "signed_ms", (json_int_t)m->signed_ms, "signer", m->signer,
        "tsr", m->tsr ? m->tsr : "", "status", rpt_status_name(m->status), "current", m->current,
        "pending", m->pending, "pending_kind", m->pending_kind ? m->pending_kind : "", "author",
        m->author, "clear_draft", m->clear_draft, "clear_open", m->clear_open, "outbox", m->outbox,
        "signers", m->signers, "supersedes", (json_int_t)m->supersedes, "cosigned", m->cosigned,
        "reason", m->reason, "worklist", to, "center", m->info->center, "hospital",
        m->info->hospital, "created_by", m->info->created_by, "created_ms",
        (json_int_t)m->info->created_ms, "committed_ms", (json_int_t)now_ms);
    return o;
fail:
    json_decref(to);
    return NULL;
}

/* Writes the record of m durably (temp file, fdatasync, rename without
 * replacing, directory fsync) into path. An existing record of that name
 * (the same JWS) is left as it is. 0 or -errno. */
static int record_write(const hr_config *cfg, const commit *m, long long now_ms, char *path)
{
    static atomic_ulong seq;
    char d0[HR_PATH_MAX + 96], d1[HR_PATH_MAX + 96], d2[HR_PATH_MAX + 96];
    char tmp[HR_PATH_MAX + 160];
    char *text = NULL;
    int fd = -1, new0 = 0, new1 = 0, new2 = 0, rc;
    json_t *o = record_json(m, now_ms);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return -ENOMEM;
    record_path(cfg, m->digest, 0, d0);
    record_path(cfg, m->digest, 1, d1);
    record_path(cfg, m->digest, 2, d2);
    record_path(cfg, m->digest, 3, path);
    snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.%lu.part", d2, m->digest, (long)getpid(),
             (unsigned long)atomic_fetch_add(&seq, 1));
    rc = mkdir_new(d0, &new0);
    if (!rc)
        rc = mkdir_new(d1, &new1);
    if (!rc)
        rc = mkdir_new(d2, &new2);
    if (!rc && new0)
        rc = fsync_dir(cfg->data_dir);
    if (!rc && new1)
        rc = fsync_dir(d0);
    if (!rc && new2)
        rc = fsync_dir(d1);
    if (rc)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = hr_write_all(fd, text, strlen(text));
    if (!rc && fdatasync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    fd = -1;
    if (rc)
        goto out;
    rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) ? -errno : 0;
    if (rc == -EINVAL) /* no RENAME_NOREPLACE here: link is exclusive too */
        rc = link(tmp, path) ? -errno : 0;
    if (rc == -EEXIST)
        rc = 0; /* the same JWS recorded already: records are never rewritten */
    if (!rc)
        rc = fsync_dir(d2);
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(text);
    if (rc)
        hr_error("reports", "version record %s not written: %s", path, hr_strerror(rc));
    return rc;
}

/* Drops the record of a commit the script refused (it never became
 * visible), making the removal durable too. */
static void record_drop(const hr_config *cfg, const char *path, const char *digest)
{
    char d2[HR_PATH_MAX + 96];
    record_path(cfg, digest, 2, d2);
    if (unlink(path) == 0)
        fsync_dir(d2);
}

/* 1 when version k of the report holds digest (a commit that went through
 * although its reply says otherwise: the start-up replay of its record). */
static int version_is(redisContext *c, const commit *m)
{
    redisReply *r =
        redisCommand(c, "HGET hr:rpt:{%s}:%d:v:%d digest", m->info->study, m->info->n, m->k);
    int yes = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, m->digest) == 0;
    freeReplyObject(r);
    return yes;
}

/* Writes the version record, then commits; the worklist follows. */
static int commit_run(redisContext *c, const hr_config *cfg, commit *m, long long now_ms,
                      rpt_why *why)
{
    char path[HR_PATH_MAX + 96];
    const json_t *rep = json_object_get(m->payload, "report");
    char *signers = json_dumps(json_object_get(m->payload, "signers"), JSON_COMPACT);
    if (!signers)
        return -ENOMEM;
    m->signers = signers;
    m->supersedes =
        json_integer_value(json_object_get(json_object_get(rep, "supersedes"), "version"));
    m->cosigned = json_object_get(m->payload, "cosigns") != NULL;
    m->reason = json_string_value(json_object_get(rep, "reason"));
    if (!m->reason)
        m->reason = "";
    int rc = record_write(cfg, m, now_ms, path);
    if (rc) {
        why_set(why, "storage", "the signed version could not be made durable (%s)",
                hr_strerror(rc));
        goto out;
    }
    redisReply *r = commit_eval(c, m, "commit", now_ms);
    int code = reply_code(r);
    freeReplyObject(r);
    rc = script_rc(code, why);
    if (rc && code > S_OK && version_is(c, m)) {
        memset(why, 0, sizeof(*why));
        rc = 0;
    } else if (rc && code > S_OK) {
        record_drop(cfg, path, m->digest); /* refused: never visible, never to be replayed */
    } /* no answer: the commit may have run; the record stays for the replay */
    if (!rc)
        follow(c, m->info->study, m->to, m->n_to, m->signer, now_ms);
    if (!rc) {
        /* a reader's critical finding: its alert (decision 0040); the
         * outbox raises it again (idempotent) if this one fails */
        int arc = alr_raise_report(c, cfg, m->payload, now_ms, NULL);
        if (arc)
            hr_error("report", "%s: the critical-finding alert could not be raised now: %s",
                     m->info->id, hr_strerror(arc));
    }
out:
    free(signers);
    m->signers = NULL;
    return rc;
}

/* The skeleton of a payload: typ, schema, report, and the study's exam,
 * patient and images as indexed now. */
static int payload_new(redisContext *c, const hr_config *cfg, const rpt_info *info, int k,
                       enum rpt_status st, json_t *supersedes, json_t **out, rpt_why *why)
{
    json_t *p = json_pack("{s:s, s:i, s:{s:s, s:i, s:s, s:o}}", "typ", "huren-report", "schema", 1,
                          "report", "id", info->id, "version", k, "status", rpt_status_name(st),
                          "supersedes", supersedes ? supersedes : json_null());
    int rc = p ? build_study(c, cfg, info->study, p, why) : -ENOMEM;
    if (rc) {
        json_decref(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

/* Common start of a signing transition: the report, the PIN lock. */
static int begin(redisContext *c, const char *id, const rpt_actor *who, rpt_info *info,
                 rpt_why *why)
{
    memset(why, 0, sizeof(*why));
    int rc = rpt_get(c, id, info);
    if (rc)
        return rc;
    if (!is_member(who, info->center)) {
        why_set(why, "forbidden", "only readers and auditors of center %s sign its reports",
                info->center);
        return -EPERM;
    }
    return pin_locked(c, who, why);
}

int rpt_sign(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
             const char *pin, long long rev, long long now_ms, int *version, rpt_why *why)
{
    rpt_info info;
    rpt_version returned = {.jws = NULL};
    json_t *content = NULL, *p = NULL, *rec = NULL;
    sealed sd = {.jws = NULL};
    *version = 0;
    int rc = begin(c, id, who, &info, why);
    if (rc)
        goto out;
    rc = HR_ESTATE;
    if (info.status != RPT_DRAFT || info.pending) {
        why_set(why, "not_draft", "the report is %s, not a draft", rpt_status_name(info.status));
        goto out;
    }
    /* a draft returned for revision (decision 0034) keeps its earlier
     * versions: the new one supersedes the returned one; room is left for
     * its co-signature and a retraction */
    if (info.versions + 3 > RPT_VERSIONS_MAX) {
        why_set(why, "too_many_versions", "at most %d versions per report", RPT_VERSIONS_MAX);
        goto out;
    }
    if (info.versions) {
        rc = rpt_version_get(c, id, info.versions, &returned);
        if (rc)
            goto out;
        rc = HR_ESTATE;
    }
    if (rev >= 0 && rev != info.rev) {
        why_set(why, "stale_rev", "revision %lld is not the saved one (%lld)", rev, info.rev);
        goto out;
    }
    rc = claim_held(c, info.study, who, now_ms, why);
    if (rc)
        goto out;
    rc = rpt_content_check(cfg, NULL, info.draft, &content, why);
    if (rc)
        goto out;
    rc = -EINVAL;
    if (!json_string_length(json_object_get(content, "findings")) &&
        !json_string_length(json_object_get(content, "impression"))) {
        why_set(why, "empty_report", "the draft has neither findings nor an impression");
        goto out;
    }
    const hr_center *ce = hr_config_center(cfg, info.center);
    int audit = ce && ce->audit_signoff;
    enum rpt_status st = audit ? RPT_PRELIMINARY : RPT_FINAL;
    int k = info.versions + 1;
    rc = payload_new(c, cfg, &info, k, st, info.versions ? supersedes_json(&returned) : NULL, &p,
                     why);
    if (!rc)
        rc = recognition_json(cfg, info.center, json_object_get(content, "recognition"), now_ms,
                              &rec, why);
    if (rc)
        goto out;
    char at[32];
    iso_ms(now_ms, at);
    rc = -ENOMEM;
    if (json_object_set_new(p, "content", content_json(content)) ||
        json_object_set_new(p, "recognition", rec) ||
        json_object_set_new(p, "signers", json_pack("[o]", signer_json(who, "author", now_ms))) ||
        json_object_set_new(p, "signed_at", json_string(at)))
        goto out;
    rec = NULL;
    rc = sign_payload(c, cfg, who, pin, p, now_ms, &sd, why);
    if (rc)
        goto out;
    commit m = {.info = &info,
                .guard_rev = 1,
                .claim_user = who->user,
                .k = k,
                .vstatus = st,
                .jws = sd.jws,
                .digest = sd.digest,
                .tsr = sd.tsr,
                .signed_ms = now_ms,
                .signer = who->user,
                .status = st,
                .current = audit ? 0 : k,
                .pending = audit ? k : 0,
                .pending_kind = audit ? "final" : "",
                .author = who->user,
                .clear_draft = 1,
                .clear_open = !audit,
                .outbox = !audit,
                .payload = p,
                .to = {WL_REPORTED, WL_FINAL},
                .n_to = audit ? 1 : 2};
    rc = commit_run(c, cfg, &m, now_ms, why);
    if (rc)
        goto out;
    *version = k;
out:
    sealed_free(&sd);
    json_decref(p);
    json_decref(rec);
    json_decref(content);
    rpt_version_free(&returned);
    rpt_info_free(&info);
    return rc;
}

int rpt_cosign(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
               const char *pin, long long now_ms, int *version, rpt_why *why)
{
    rpt_info info;
    rpt_version pre = {.jws = NULL};
    json_t *p = NULL, *rec = NULL, *codes = NULL, *signers = NULL;
    sealed sd = {.jws = NULL};
    *version = 0;
    int rc = begin(c, id, who, &info, why);
    if (rc)
        goto out;
    rc = -EPERM;
    if (who->role != STO_ROLE_AUDITOR) {
        why_set(why, "forbidden", "only an auditor co-signs");
        goto out;
    }
    rc = HR_ESTATE;
    if (!info.pending || info.pending != info.versions) {
        why_set(why, "nothing_to_cosign", "no version of the report awaits a co-signature");
        goto out;
    }
    rc = rpt_version_get(c, id, info.pending, &pre);
    if (rc)
        goto out;
    const json_t *pre_signers = json_object_get(pre.payload, "signers");
    const char *pre_user =
        json_string_value(json_object_get(json_array_get(pre_signers, 0), "user"));
    rc = HR_ESTATE;
    if (!pre_user || strcmp(pre_user, who->user) == 0) {
        why_set(why, "own_report", "an auditor cannot co-sign a version they signed");
        goto out;
    }
    /* the pending kind: the initial preliminary becomes final; a reader's
     * amendment becomes amended or corrected */
    enum rpt_status st = RPT_FINAL;
    if (info.current) {
        redisReply *r = redisCommand(c, "HGET hr:rpt:{%s}:%d pending_kind", info.study, info.n);
        int s = r && r->type == REDIS_REPLY_STRING ? rpt_status_parse(r->str) : -1;
        freeReplyObject(r);
        st = s == RPT_CORRECTED ? RPT_CORRECTED : RPT_AMENDED;
    }
    rc = -ENOMEM;
    p = json_deep_copy(pre.payload);
    codes = item_codes(pre.payload);
    signers = json_deep_copy(pre_signers);
    if (!p || !codes || !signers)
        goto out;
    rc = recognition_json(cfg, info.center, codes, now_ms, &rec, why);
    if (rc)
        goto out;
    char at[32];
    iso_ms(now_ms, at);
    rc = -ENOMEM;
    json_t *rep = json_object_get(p, "report");
    if (!json_is_object(rep) ||
        json_array_append_new(signers, signer_json(who, "authenticator", now_ms)) ||
        json_object_set_new(rep, "version", json_integer(info.versions + 1)) ||
        json_object_set_new(rep, "status", json_string(rpt_status_name(st))) ||
        json_object_set_new(p, "recognition", rec) || json_object_set(p, "signers", signers) ||
        json_object_set_new(p, "signed_at", json_string(at)) ||
        json_object_set_new(p, "cosigns", json_string(pre.jws)))
        goto out;
    rec = NULL;
    rc = sign_payload(c, cfg, who, pin, p, now_ms, &sd, why);
    if (rc)
        goto out;
    commit m = {.info = &info,
                .k = info.versions + 1,
                .vstatus = st,
                .jws = sd.jws,
                .digest = sd.digest,
                .tsr = sd.tsr,
                .signed_ms = now_ms,
                .signer = who->user,
                .status = st,
                .current = info.versions + 1,
                .pending = 0,
                .author = info.author,
                .clear_open = 1,
                .outbox = 1,
                .payload = p,
                .to = {st == RPT_FINAL ? WL_FINAL : WL_AMENDED},
                .n_to = 1};
    rc = commit_run(c, cfg, &m, now_ms, why);
    if (rc)
        goto out;
    *version = m.k;
out:
    sealed_free(&sd);
    json_decref(p);
    json_decref(rec);
    json_decref(codes);
    json_decref(signers);
    rpt_version_free(&pre);
    rpt_info_free(&info);
    return rc;
}

static int reason_ok(const char *reason, int required, rpt_why *why)
{
    size_t n = reason ? strlen(reason) : 0;
    if ((required && n == 0) || n > RPT_REASON_MAX || !text_ok(reason ? reason : "", n)) {
        why_set(why, "bad_request", "reason: %s text of at most %d bytes",
                required ? "a non-empty" : "a", RPT_REASON_MAX);
        return -EINVAL;
    }
    return 0;
}

int rpt_amend(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
              const char *pin, const json_t *content, int correction, const char *reason,
              long long now_ms, int *version, rpt_why *why)
{
    rpt_info info;
    rpt_version cur = {.jws = NULL};
    json_t *base = NULL, *merged = NULL, *p = NULL, *rec = NULL;
    sealed sd = {.jws = NULL};
    *version = 0;
    int rc = begin(c, id, who, &info, why);
    if (rc)
        goto out;
    rc = reason_ok(reason, 0, why);
    if (rc)
        goto out;
    rc = HR_ESTATE;
    if (info.status != RPT_FINAL && info.status != RPT_AMENDED && info.status != RPT_CORRECTED) {
        why_set(why, "not_final", "only a final, amended or corrected report is amended (it is %s)",
                rpt_status_name(info.status));
        goto out;
    }
    if (info.pending) {
        why_set(why, "amendment_pending", "version %d awaits an auditor's co-signature",
                info.pending);
        goto out;
    }
    if (info.versions + 3 > RPT_VERSIONS_MAX) { /* room for its co-sign and a retraction */
        why_set(why, "too_many_versions", "at most %d versions per report", RPT_VERSIONS_MAX);
        goto out;
    }
    rc = rpt_version_get(c, id, info.current, &cur);
    if (rc)
        goto out;
    rc = -ENOMEM;
    base = content_of(cur.payload);
    if (!base)
        goto out;
    rc = rpt_content_check(cfg, content, base, &merged, why);
    if (rc)
        goto out;
    const hr_center *ce = hr_config_center(cfg, info.center);
    int effective = !(ce && ce->audit_signoff && who->role == STO_ROLE_READER);
    enum rpt_status kind = correction ? RPT_CORRECTED : RPT_AMENDED;
    enum rpt_status st = effective ? kind : RPT_PRELIMINARY;
    rc = payload_new(c, cfg, &info, info.versions + 1, st, supersedes_json(&cur), &p, why);
    if (!rc)
        rc = recognition_json(cfg, info.center, json_object_get(merged, "recognition"), now_ms,
                              &rec, why);
    if (rc)
        goto out;
    char at[32];
    iso_ms(now_ms, at);
    rc = -ENOMEM;
    if ((reason && *reason &&
         json_object_set_new(json_object_get(p, "report"), "reason", json_string(reason))) ||
        json_object_set_new(p, "content", content_json(merged)) ||
        json_object_set_new(p, "recognition", rec) ||
        json_object_set_new(p, "signers", json_pack("[o]", signer_json(who, "author", now_ms))) ||
        json_object_set_new(p, "signed_at", json_string(at)))
        goto out;
    rec = NULL;
    rc = sign_payload(c, cfg, who, pin, p, now_ms, &sd, why);
    if (rc)
        goto out;
    commit m = {.info = &info,
                .k = info.versions + 1,
                .vstatus = st,
                .jws = sd.jws,
                .digest = sd.digest,
                .tsr = sd.tsr,
                .signed_ms = now_ms,
                .signer = who->user,
                .status = effective ? kind : info.status,
                .current = effective ? info.versions + 1 : info.current,
                .pending = effective ? 0 : info.versions + 1,
                .pending_kind = effective ? "" : rpt_status_name(kind),
                .author = info.author,
                .outbox = effective,
                .payload = p,
                .to = {WL_AMENDED},
                .n_to = effective ? 1 : 0};
    rc = commit_run(c, cfg, &m, now_ms, why);
    if (rc)
        goto out;
    *version = m.k;
out:
    sealed_free(&sd);
    json_decref(p);
    json_decref(rec);
    json_decref(base);
    json_decref(merged);
    rpt_version_free(&cur);
    rpt_info_free(&info);
    return rc;
}

int rpt_retract(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
                const char *pin, const char *reason, long long now_ms, int *version, rpt_why *why)
{
    rpt_info info;
    rpt_version last = {.jws = NULL};
    json_t *p = NULL;
    sealed sd = {.jws = NULL};
    *version = 0;
    int rc = begin(c, id, who, &info, why);
    if (rc)
        goto out;
    rc = -EPERM;
    if (who->role != STO_ROLE_AUDITOR && strcmp(who->user, info.author) != 0) {
        why_set(why, "forbidden", "only an auditor of the center or the report's author retracts");
        goto out;
    }
    rc = reason_ok(reason, 1, why);
    if (rc)
        goto out;
    rc = HR_ESTATE;
    if (info.versions == 0 || info.status == RPT_ENTERED_IN_ERROR) {
        why_set(why, info.versions ? "retracted" : "not_signed",
                info.versions ? "the report is already entered-in-error"
                              : "a draft is not retracted: nothing was signed");
        goto out;
    }
    if (info.versions >= RPT_VERSIONS_MAX) {
        why_set(why, "too_many_versions", "at most %d versions per report", RPT_VERSIONS_MAX);
        goto out;
    }
    rc = rpt_version_get(c, id, info.versions, &last);
    if (rc)
        goto out;
    rc = payload_new(c, cfg, &info, info.versions + 1, RPT_ENTERED_IN_ERROR, supersedes_json(&last),
                     &p, why);
    if (rc)
        goto out;
    char at[32];
    iso_ms(now_ms, at);
    rc = -ENOMEM;
    if (json_object_set_new(json_object_get(p, "report"), "reason", json_string(reason)) ||
        json_object_set(p, "content", json_object_get(last.payload, "content")) ||
        json_object_set_new(p, "recognition", json_array()) ||
        json_object_set_new(p, "signers", json_pack("[o]", signer_json(who, "author", now_ms))) ||
        json_object_set_new(p, "signed_at", json_string(at)))
        goto out;
    rc = sign_payload(c, cfg, who, pin, p, now_ms, &sd, why);
    if (rc)
        goto out;
    commit m = {.info = &info,
                .k = info.versions + 1,
                .vstatus = RPT_ENTERED_IN_ERROR,
                .jws = sd.jws,
                .digest = sd.digest,
                .tsr = sd.tsr,
                .signed_ms = now_ms,
                .signer = who->user,
                .status = RPT_ENTERED_IN_ERROR,
                .current = info.versions + 1,
                .pending = 0,
                .author = info.author,
                .clear_open = 1,
                .outbox = info.current > 0,
                .payload = p,
                .to = {WL_READY},
                .n_to = 1};
    rc = commit_run(c, cfg, &m, now_ms, why);
    if (rc)
        goto out;
    *version = m.k;
out:
    sealed_free(&sd);
    json_decref(p);
    rpt_version_free(&last);
    rpt_info_free(&info);
    return rc;
}

/* ---- return for revision (decision 0034) ---- */

int rpt_return(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
               const char *comment, long long now_ms, int *version, long long *new_rev,
               rpt_why *why)
{
    rpt_info info;
    rpt_version pre = {.jws = NULL};
    json_t *draft = NULL, *record = NULL;
    char *draft_text = NULL, *record_text = NULL;
    redisReply *r = NULL;
    rpt_call k;
    char at[32];
    *version = 0;
    *new_rev = 0;
    memset(why, 0, sizeof(*why));
    int rc = rpt_get(c, id, &info);
    if (rc)
        goto out;
    rc = -EPERM;
    if (who->role != STO_ROLE_AUDITOR || !is_member(who, info.center)) {
        why_set(why, "forbidden", "only an auditor of center %s returns its reports", info.center);
        goto out;
    }
    rc = reason_ok(comment, 1, why);
    if (rc) {
        why_set(why, "bad_request", "comment: a non-empty text of at most %d bytes",
                RPT_REASON_MAX);
        goto out;
    }
    rc = HR_ESTATE;
    if (!info.pending || info.pending != info.versions) {
        why_set(why, "nothing_to_return", "no version of the report awaits a co-signature");
        goto out;
    }
    rc = rpt_version_get(c, id, info.pending, &pre);
    if (rc)
        goto out;
    const char *author = json_string_value(
        json_object_get(json_array_get(json_object_get(pre.payload, "signers"), 0), "user"));
    rc = -ENOMEM;
    draft = content_of(pre.payload);
    iso_ms(now_ms, at);
    record =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "version", info.pending, "digest",
                  pre.digest, "by", who->user, "name", who->name ? who->name : "", "comment",
                  comment, "at_ms", (json_int_t)now_ms, "at", at, "to", author ? author : "");
    if (!draft || !record)
        goto out;
    draft_text = json_dumps(draft, JSON_COMPACT | JSON_SORT_KEYS);
    record_text = json_dumps(record, JSON_COMPACT);
    if (!draft_text || !record_text)
        goto out;
    call_study(&k, "return", info.study, now_ms, 0);
    call_num(&k, info.n);
    call_num(&k, info.versions);
    call_num(&k, info.pending);
    call_str(&k, record_text);
    call_str(&k, draft_text);
    call_num(&k, RPT_VERSIONS_MAX);
    r = call_run(c, &k);
    int code = reply_code(r);
    rc = script_rc(code, why);
    if (rc)
        goto out;
    *version = info.pending;
    *new_rev = to_ll(reply_str(r, 1));
    /* the exam goes back to its reader (the initial preliminary only: an
     * amendment's item stays final); the report is the truth, a failure
     * here is logged and the move can be made again by a claim */
    if (!info.current && author) {
        int wrc = wl_return(c, cfg, info.study, author, who->user, now_ms);
        if (wrc)
            hr_warn("reports", "study %s: worklist item not returned to %s: %s", info.study, author,
                    hr_strerror(wrc));
    }
out:
    freeReplyObject(r);
    free(draft_text);
    free(record_text);
    json_decref(draft);
    json_decref(record);
    rpt_version_free(&pre);
    rpt_info_free(&info);
    return rc;
}

int rpt_returns(redisContext *c, const char *id, json_t **out)
{
    char study[HR_UID_MAX];
    int n;
    *out = NULL;
    if (rpt_id_parse(id, &n, study))
        return -EINVAL;
    redisReply *r =
        redisCommand(c, "LRANGE hr:rpt:{%s}:%d:returns 0 %d", study, n, RPT_VERSIONS_MAX - 1);
    int rc = HR_EREDIS;
    json_t *arr = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        goto out;
    rc = -ENOMEM;
    arr = json_array();
    if (!arr)
        goto out;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        json_t *e = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
        if (e && json_is_object(e))
            json_array_append_new(arr, e);
        else
            json_decref(e);
    }
    *out = arr;
    arr = NULL;
    rc = 0;
out:
    json_decref(arr);
    freeReplyObject(r);
    return rc;
}

/* ---- start-up replay of version records (decision 0024) ---- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static int jbool(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static int hex_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Checks a record against its name and itself; fills info and m (pointing
 * into rec). 0 or HR_EPARSE. */
static int record_parse(const json_t *rec, const char *digest, rpt_info *info, commit *m)
{
    char hex[65];
    memset(info, 0, sizeof(*info));
    memset(m, 0, sizeof(*m));
    const char *id = jstr(rec, "report"), *jws = jstr(rec, "jws");
    const char *sv[5] = {jstr(rec, "vstatus"), jstr(rec, "status"), jstr(rec, "signer"),
                         jstr(rec, "author"), jstr(rec, "signers")};
    int vst = rpt_status_parse(sv[0]), st = rpt_status_parse(sv[1]);
    const json_t *to = json_object_get(rec, "worklist");
    if (jint(rec, "record") != 1 || !id || !jws || vst < 0 || st < 0 || !sv[2] || !sv[3] ||
        !sv[4] || rpt_id_parse(id, &info->n, info->study) || !json_is_array(to) ||
        json_array_size(to) > 2 || strlen(jws) > RPT_JWS_MAX)
        return HR_EPARSE;
    hr_sha256 *h = hr_sha256_new();
    if (!h)
        return -ENOMEM;
    hr_sha256_update(h, jws, strlen(jws));
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
    const char *dg = jstr(rec, "digest");
    if (strcmp(hex, digest) != 0 || !dg || strcmp(dg, digest) != 0)
        return HR_EPARSE;
    long long k = jint(rec, "version");
    if (k < 1 || k > RPT_VERSIONS_MAX || jint(rec, "guard_versions") != k - 1)
        return HR_EPARSE;
    for (size_t i = 0; i < json_array_size(to); i++) {
        int w = wl_state_parse(json_string_value(json_array_get(to, i)));
        if (w < 0)
            return HR_EPARSE;
        m->to[i] = (enum wl_state)w;
    }
    m->n_to = (int)json_array_size(to);
    copy_cut(info->id, sizeof(info->id), id);
    copy_cut(info->center, sizeof(info->center), jstr(rec, "center"));
    copy_cut(info->hospital, sizeof(info->hospital), jstr(rec, "hospital"));
    copy_cut(info->created_by, sizeof(info->created_by), jstr(rec, "created_by"));
    info->created_ms = jint(rec, "created_ms");
    info->versions = (int)k - 1;
    info->pending = (int)jint(rec, "guard_pending");
    info->rev = jint(rec, "guard_rev");
    m->info = info;
    m->k = (int)k;
    m->vstatus = (enum rpt_status)vst;
    m->jws = jws;
    m->digest = digest;
    m->signed_ms = jint(rec, "signed_ms");
    m->signer = sv[2];
    m->tsr = jstr(rec, "tsr");
    m->status = (enum rpt_status)st;
    m->current = (int)jint(rec, "current");
    m->pending = (int)jint(rec, "pending");
    m->pending_kind = jstr(rec, "pending_kind");
    m->author = sv[3];
    m->clear_draft = jbool(rec, "clear_draft");
    m->clear_open = jbool(rec, "clear_open");
    m->outbox = jbool(rec, "outbox");
    m->signers = sv[4];
    m->supersedes = jint(rec, "supersedes");
    m->cosigned = jbool(rec, "cosigned");
    m->reason = jstr(rec, "reason") ? jstr(rec, "reason") : "";
    return 0;
}

/* Replays one record file. *later is set when its report is not (yet) in
 * the state the commit found (an earlier lost version is replayed first).
 * 0, or HR_EREDIS (fatal). */
static int replay_file(redisContext *c, const char *path, rpt_reconcile_stats *st, int *later)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    json_t *rec = NULL;
    rpt_info info;
    commit m;
    char digest[65];
    *later = 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(digest, sizeof(digest), "%.64s", base);
    int rc = hr_read_file(path, RECORD_MAX, &buf, &len);
    if (rc) {
        hr_error("reports", "version record %s: %s", path, hr_strerror(rc));
        if (rc == HR_ETOOBIG)
            st->corrupt++;
        else
            st->errors++;
        return 0;
    }
    rec = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!rec || (rc = record_parse(rec, digest, &info, &m)) != 0) {
        hr_error("reports", "version record %s: malformed, or not the version its name says", path);
        st->corrupt++;
        rc = 0;
        goto out;
    }
    long long at = jint(rec, "committed_ms");
    redisReply *r = commit_eval(c, &m, "replay", at);
    if (!r) {
        rc = HR_EREDIS;
        goto out;
    }
    int code = reply_code(r);
    if (code == S_OK) {
        st->applied++;
        hr_warn("reports", "signed version %d of %s (%s) was lost by the index: restored", m.k,
                info.id, digest);
        follow(c, info.study, m.to, m.n_to, m.signer, at);
    } else if (code == S_STATE && strcmp(reply_str(r, 1), "present") == 0) {
        st->present++;
    } else if (code == S_STATE || code == S_NOTFOUND) {
        *later = 1;
    } else {
        hr_error("reports", "version record %s: replay refused (code %d)", path, code);
        st->refused++;
    }
    freeReplyObject(r);
out:
    json_decref(rec);
    free(buf);
    return rc;
}

#define REPLAY_LATER_MAX 4096

static long long mtime_ms(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (long long)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

int rpt_reconcile(redisContext *c, const hr_config *cfg, int all, rpt_reconcile_stats *st)
{
    char root[HR_PATH_MAX + 96];
    char *later[REPLAY_LATER_MAX];
    int n_later = 0, rc = 0;
    long long since = 0;
    memset(st, 0, sizeof(*st));
    if (!all) {
        redisReply *r = redisCommand(c, "GET hr:meta:checkpoint");
        if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
            freeReplyObject(r);
            return HR_EREDIS;
        }
        if (r->type == REDIS_REPLY_STRING) { /* else: no checkpoint, every record */
            since = strtoll(r->str, NULL, 10) - RPT_RECONCILE_MARGIN_MS;
            since = since > 0 ? since : 1;
        }
        freeReplyObject(r);
    }
    record_path(cfg, "", 0, root);
    DIR *d1 = opendir(root);
    if (!d1)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e1;
    while (!rc && (e1 = readdir(d1)) != NULL) {
        if (strlen(e1->d_name) != 2 || !hex_name(e1->d_name, 2))
            continue;
        char p1[HR_PATH_MAX + 100];
        snprintf(p1, sizeof(p1), "%s/%s", root, e1->d_name);
        DIR *d2 = opendir(p1);
        if (!d2)
            continue;
        struct dirent *e2;
        while (!rc && (e2 = readdir(d2)) != NULL) {
            if (strlen(e2->d_name) != 2 || !hex_name(e2->d_name, 2))
                continue;
            char p2[HR_PATH_MAX + 104];
            snprintf(p2, sizeof(p2), "%s/%s", p1, e2->d_name);
            if (since > 0 && mtime_ms(p2) < since)
                continue;
            DIR *d3 = opendir(p2);
            if (!d3)
                continue;
            struct dirent *e3;
            while (!rc && (e3 = readdir(d3)) != NULL) {
                const char *nm = e3->d_name;
                if (strlen(nm) != 69 || !hex_name(nm, 64) || strcmp(nm + 64, ".json") != 0)
                    continue;
                char p3[HR_PATH_MAX + 180];
                snprintf(p3, sizeof(p3), "%s/%s", p2, nm);
                if (since > 0 && mtime_ms(p3) < since)
                    continue;
                st->files++;
                int again = 0;
                rc = replay_file(c, p3, st, &again);
                if (!rc && again) {
                    char *dup = n_later < REPLAY_LATER_MAX ? strdup(p3) : NULL;
                    if (dup)
                        later[n_later++] = dup;
                    else {
                        hr_error("reports", "version record %s: not replayed (too many)", p3);
                        st->errors++;
                    }
                }
            }
            closedir(d3);
        }
        closedir(d2);
    }
    closedir(d1);
    /* versions lost together are replayed in their order: each round
     * applies those whose predecessor is back */
    for (int round = 0; !rc && n_later > 0 && round <= RPT_VERSIONS_MAX; round++) {
        int kept = 0;
        long long applied = st->applied;
        for (int i = 0; i < n_later; i++) {
            int again = 0;
            if (!rc)
                rc = replay_file(c, later[i], st, &again);
            if (!rc && again)
                later[kept++] = later[i];
            else
                free(later[i]);
        }
        n_later = kept;
        if (st->applied == applied)
            break;
    }
    for (int i = 0; i < n_later; i++) {
        hr_warn("reports",
                "version record %s: not replayed, its report has moved on (or is gone) since "
                "(the commit never happened)",
                later[i]);
        st->refused++;
        free(later[i]);
    }
    return rc;
}
