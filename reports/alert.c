/* Critical-value alerts (alert.h) over alert_script.lua. */
#include "alert.h"
#include "alert_script.h"
#include "alr_config.h"
#include "../common/hr_assert.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/uids.h"
#include "../storage/keys.h"
#include "../storage/sto_script.h"
#include "oru.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX  (HR_UID_MAX + ALR_ID_MAX + 32)
#define IX_MAX   (3 * HR_ID_MAX + 32)
#define ARGS_MAX 48
#define NUM_MAX  24

/* ---- ids and keys ---- */

void alr_id(const char *exam, const char *ref, const char *item, char out[ALR_ID_MAX])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t n = strlen(exam ? exam : "") + strlen(ref ? ref : "") + strlen(item ? item : "") + 3;
    char *in = malloc(n);
    if (!in) {
        snprintf(out, ALR_ID_MAX, "A%024d", 0);
        return;
    }
    int k = snprintf(in, n, "%s|%s|%s", exam ? exam : "", ref ? ref : "", item ? item : "");
    SHA256((const unsigned char *)in, (size_t)k, md);
    free(in);
    out[0] = 'A';
    hr_hex_encode(md, 12, out + 1);
    out[25] = '\0';
}

static int id_valid(const char *id)
{
    if (!id || id[0] != 'A' || strlen(id) != 25)
        return 0;
    for (int i = 1; i < 25; i++)
        if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
            return 0;
    return 1;
}

static void alert_keys(const char *exam, const char *id, char *hash, char *log)
{
    snprintf(hash, KEY_MAX, "hr:alr:{%s}:%s", exam, id);
    snprintf(log, KEY_MAX, "hr:alr:{%s}:%s:log", exam, id);
}

/* "<prefix><escaped part>"; -EINVAL when it does not fit. */
static int ix_key(char *out, const char *prefix, const char *part)
{
    char esc[3 * HR_ID_MAX + 1];
    if (sto_key_part(part, esc, sizeof(esc)))
        return -EINVAL;
    snprintf(out, IX_MAX, "%s%s", prefix, esc);
    return 0;
}

/* ---- redis helpers ---- */

static char g_sha[41];
static pthread_once_t g_sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    sto_script_sha1(k_alert_script, g_sha);
}

typedef struct call {
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    int argc;
    char nums[8][NUM_MAX];
    int n_nums;
} call;

/* EVALSHA sha 2 hash log */
static void call_init(call *k, const char *hash, const char *log)
{
    pthread_once(&g_sha_once, sha_init);
    memset(k, 0, sizeof(*k));
    k->argv[k->argc++] = "EVALSHA";
    k->argv[k->argc++] = g_sha;
    k->argv[k->argc++] = "2";
    k->argv[k->argc++] = hash;
    k->argv[k->argc++] = log;
}

static void call_str(call *k, const char *s)
{
    HR_ASSERT(k->argc < ARGS_MAX);
    k->argv[k->argc++] = s ? s : "";
}

static void call_num(call *k, long long v)
{
    HR_ASSERT(k->n_nums < (int)HR_ARRAY_LEN(k->nums));
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", v);
    call_str(k, k->nums[k->n_nums++]);
}

static redisReply *call_run(redisContext *c, call *k)
{
    for (int i = 0; i < k->argc; i++)
        k->len[i] = strlen(k->argv[i]);
    redisReply *r = sto_script_call(c, k_alert_script, k->argc, k->argv, k->len);
    if (r && r->type == REDIS_REPLY_ERROR) {
        hr_error("alert", "script failed: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    if (!r)
        hr_error("alert", "redis: %s", c->errstr[0] ? c->errstr : "no reply");
    return r;
}

static int cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : HR_EREDIS;
    if (r && r->type == REDIS_REPLY_ERROR)
        hr_error("alert", "redis: %s", r->str);
    freeReplyObject(r);
    return rc;
}

static const char *rstr(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return "";
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

static long long rnum(const redisReply *r, size_t i)
{
    const char *s = rstr(r, i);
    if (r && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
        r->element[i]->type == REDIS_REPLY_INTEGER)
        return r->element[i]->integer;
    return strtoll(s, NULL, 10);
}

/* The exam (slot) of alert id. 0, HR_ENOTFOUND, -EINVAL, HR_EREDIS. */
static int exam_of(redisContext *c, const char *id, char exam[HR_UID_MAX])
{
    if (!id_valid(id))
        return -EINVAL;
    redisReply *r = redisCommand(c, "GET hr:alr:id:%s", id);
    int rc = 0;
    if (!r || r->type == REDIS_REPLY_ERROR)
        rc = HR_EREDIS;
    else if (r->type != REDIS_REPLY_STRING || !dcm_uid_key_valid(r->str))
        rc = HR_ENOTFOUND;
    else
        snprintf(exam, HR_UID_MAX, "%s", r->str);
    freeReplyObject(r);
    return rc;
}

/* Queues the notifications of a step: channels "hl7,webhook". */
static int queue_notices(redisContext *c, const char *id, int step, const char *chs, long long when)
{
    int rc = 0;
    char ch[16];
    while (chs && *chs && !rc) {
        size_t n = strcspn(chs, ",");
        if (n > 0 && n < sizeof(ch)) {
            memcpy(ch, chs, n);
            ch[n] = '\0';
            rc = cmd(c, "ZADD %s NX %lld %s|%d|%s|1", ALR_NOTIFY_KEY, when, id, step, ch);
        }
        chs += n;
        if (*chs == ',')
            chs++;
    }
    return rc;
}

static int stat_incr(redisContext *c, long long now_ms, const char *what, const char *hospital)
{
    char h[3 * HR_ID_MAX + 1];
    int day = hr_day_of(now_ms);
    if (!day || sto_key_part(hospital ? hospital : "", h, sizeof(h)))
        return 0;
    int rc = cmd(c, "HINCRBY hr:stat:%d al|%s|%s 1", day, what, h);
    if (!rc)
        rc = cmd(c, "HINCRBY hr:stat:%d al|%s| 1", day, what); /* the total */
    return rc;
}

/* ---- raise ---- */

/* The steps of an alert for hospital and center: JSON array text (malloc). */
static char *steps_json(const hr_config *cfg, const char *kind, const char *hospital,
                        const char *center, long long *timeout_ms)
{
    const struct alr_config *a = cfg->alerts;
    const alr_hospital *h = rpt_alr_config_hospital(a, hospital);
    const char *duty = rpt_alr_config_duty(cfg, center);
    /* a lab report without a center: the duty doctor of the lab kind */
    for (size_t i = 0; !duty && a && strcmp(kind, "lab") == 0 && i < a->n_duty; i++)
        if (strcmp(a->duty[i].key, "lab") == 0)
            duty = a->duty[i].user;
    json_t *arr = json_array();
    *timeout_ms = 1000LL * (h && h->ack_timeout_s ? h->ack_timeout_s : a ? a->ack_timeout_s : 600);
    for (size_t i = 0; arr && h && i < h->n_contacts; i++) {
        const alr_contact *ct = &h->contacts[i];
        json_t *chs = json_array();
        if (ct->channels & ALR_CH_SSE)
            json_array_append_new(chs, json_string("sse"));
        if (ct->channels & ALR_CH_HL7)
            json_array_append_new(chs, json_string("hl7"));
        if (ct->channels & ALR_CH_WEBHOOK)
            json_array_append_new(chs, json_string("webhook"));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "user", ct->user, "name",
                                             ct->name[0] ? ct->name : ct->user, "role", "contact",
                                             "channels", chs));
    }
    if (arr && duty)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:[s]}", "user", duty, "name", duty,
                                             "role", "duty", "channels", "sse"));
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

/* A string cut to ALR_TEXT_MAX - 1 bytes at a UTF-8 boundary, into buf. */
static const char *cut(const char *s, char *buf)
{
    size_t n = strlen(s ? s : "");
    if (n < ALR_TEXT_MAX)
        return s ? s : "";
    n = ALR_TEXT_MAX - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* The global indexes of a raised alert: idempotent (repairs a raise cut
 * between its script and these). */
static int index_alert(redisContext *c, const char *id, const char *exam, const char *hospital,
                       const char *center, const char *target, long long created_ms)
{
    char k[IX_MAX];
    int rc = cmd(c, "SET hr:alr:id:%s %s", id, exam);
    if (!rc)
        rc = cmd(c, "ZADD %s NX %lld %s", ALR_TIME_KEY, created_ms, id);
    if (!rc && !ix_key(k, "hr:alr:ix:h:", hospital))
        rc = cmd(c, "ZADD %s NX %lld %s", k, created_ms, id);
    if (!rc && center && *center && !ix_key(k, "hr:alr:ix:c:", center))
        rc = cmd(c, "ZADD %s NX %lld %s", k, created_ms, id);
    if (!rc && target && *target && !ix_key(k, "hr:alr:ix:u:", target))
        rc = cmd(c, "ZADD %s NX %lld %s", k, created_ms, id);
    return rc;
}

int alr_raise(redisContext *c, const hr_config *cfg, const alr_source *s, char id[ALR_ID_MAX],
              int *created)
{
    char hash[KEY_MAX], log[KEY_MAX], b[6][ALR_TEXT_MAX];
    long long timeout_ms = 0, now = s->now_ms;
    redisReply *r = NULL;
    char *steps = NULL;
    int rc = 0;
    if (created)
        *created = 0;
    if (!s->exam || !dcm_uid_key_valid(s->exam) || !s->kind ||
        (strcmp(s->kind, "lab") != 0 && strcmp(s->kind, "report") != 0) || !s->hospital ||
        !*s->hospital || strlen(s->hospital) >= HR_ID_MAX ||
        (s->center && strlen(s->center) >= HR_ID_MAX) || !s->value || !*s->value || !s->item ||
        !*s->item)
        return -EINVAL;
    alr_id(s->exam, s->ref, s->item, id);
    alert_keys(s->exam, id, hash, log);
    /* the slot of the id first: the raise's event may be read at once
     * (a pure function of the id: harmless when the raise fails) */
    rc = cmd(c, "SET hr:alr:id:%s %s", id, s->exam);
    if (rc)
        return rc;
    steps = steps_json(cfg, s->kind, s->hospital, s->center, &timeout_ms);
    if (!steps)
        return -ENOMEM;
    call k;
    call_init(&k, hash, log);
    call_str(&k, "raise");
    call_num(&k, now);
    call_str(&k, steps);
    call_num(&k, timeout_ms);
    call_str(&k, "14");
    const char *f[][2] = {{"id", id},
                          {"exam", s->exam},
                          {"kind", s->kind},
                          {"ref", cut(s->ref, b[0])},
                          {"hospital", s->hospital},
                          {"center", s->center ? s->center : ""},
                          {"patient", cut(s->patient, b[1])},
                          {"patient_name", cut(s->patient_name, b[2])},
                          {"item", cut(s->item, b[3])},
                          {"item_name", cut(s->item_name, b[4])},
                          {"value", cut(s->value, b[5])},
                          {"flag", s->flag ? s->flag : ""},
                          {"detail", ""},
                          {"acked_by", ""}};
    char detail[ALR_TEXT_MAX];
    f[12][1] = cut(s->detail, detail);
    for (size_t i = 0; i < HR_ARRAY_LEN(f); i++) {
        call_str(&k, f[i][0]);
        call_str(&k, f[i][1]);
    }
    r = call_run(c, &k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        rc = HR_EREDIS;
        goto out;
    }
    if (strcmp(rstr(r, 0), "created") == 0 && r->elements == 5) {
        long long deadline = rnum(r, 2);
        rc = index_alert(c, id, s->exam, s->hospital, s->center, rstr(r, 3), now);
        if (!rc)
            rc = cmd(c, "ZADD %s %lld %s", ALR_DUE_KEY, deadline, id);
        if (!rc)
            rc = queue_notices(c, id, 0, rstr(r, 4), now);
        if (!rc)
            rc = cmd(c, "HINCRBY %s raised 1", ALR_COUNT_KEY);
        if (!rc)
            rc = stat_incr(c, now, "r", s->hospital);
        if (!rc && created)
            *created = 1;
        if (!rc)
            hr_info("alert", "%s raised: %s %s %s for %s (exam %s)", id, s->kind, s->item, s->value,
                    s->hospital, s->exam);
    } else if (strcmp(rstr(r, 0), "exists") == 0 && r->elements == 7) {
        /* the same alert again: repair what a cut raise may have left out */
        const char *state = rstr(r, 1);
        rc = index_alert(c, id, s->exam, rstr(r, 4), rstr(r, 5), rstr(r, 3), now);
        if (!rc && strcmp(state, "acknowledged") != 0 && strcmp(state, "overdue_final") != 0)
            rc = cmd(c, "ZADD %s NX %s %s", ALR_DUE_KEY, rstr(r, 2), id);
    } else {
        rc = HR_EREDIS;
    }
out:
    freeReplyObject(r);
    free(steps);
    return rc;
}

/* ---- read-back ---- */

/* Normalised copy: full-width ASCII forms to ASCII, U+3000 and ASCII
 * spaces dropped, micro signs to 'u', ASCII lower-cased; with punct, ASCII
 * punctuation and CJK punctuation (U+3001..U+303F) dropped too. */
static void norm(const char *in, char *out, size_t cap, int punct)
{
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    size_t n = 0;
    while (*p && n + 4 < cap) {
        unsigned int cp = *p;
        size_t len = 1;
        if (cp >= 0xF0 && p[1] && p[2] && p[3]) {
            cp = ((cp & 7u) << 18) | ((p[1] & 63u) << 12) | ((p[2] & 63u) << 6) | (p[3] & 63u);
            len = 4;
        } else if (cp >= 0xE0 && p[1] && p[2]) {
            cp = ((cp & 15u) << 12) | ((p[1] & 63u) << 6) | (p[2] & 63u);
            len = 3;
        } else if (cp >= 0xC0 && p[1]) {
            cp = ((cp & 31u) << 6) | (p[1] & 63u);
            len = 2;
        }
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFEE0;
        if (cp == 0xB5 || cp == 0x3BC)
            cp = 'u';
        if (cp < 0x80) {
            int ch = tolower((int)cp);
            if (!isspace(ch) && !(punct && ispunct(ch)))
                out[n++] = (char)ch;
        } else if (cp == 0x3000 || (punct && cp >= 0x3001 && cp <= 0x303F)) {
            /* dropped */
        } else {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = '\0';
}

/* The first number of s (normalised) and what follows it: 0, or -1 when s
 * holds no number. */
static int split_number(const char *s, double *v, const char **unit, int anywhere,
                        const char **start)
{
    const char *p = s;
    while (*p && !isdigit((unsigned char)*p)) {
        if (!anywhere && !strchr("<>=+-.", *p))
            return -1;
        p++;
    }
    if (!*p)
        return -1;
    if (p > s && (p[-1] == '-' || p[-1] == '.'))
        p--;
    char *end;
    *v = strtod(p, &end);
    if (end == p)
        return -1;
    *unit = end;
    *start = p;
    return 0;
}

/* The comparison stated right before the number at p of s: -1 less than
 * ("<", "<=", "≤", 小于, 低于), 1 greater than (">", ">=", "≥", 大于, 高于),
 * 0 none. */
static int direction(const char *s, const char *p)
{
    static const struct {
        const char *w;
        int dir;
    } k[] = {{"<", -1},
             {">", 1},
             {"\u2264", -1},
             {"\u2265", 1},
             {"\u5c0f\u4e8e", -1},
             {"\u4f4e\u4e8e", -1},
             {"\u5927\u4e8e", 1},
             {"\u9ad8\u4e8e", 1}};
    while (p > s && p[-1] == '=')
        p--;
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        size_t n = strlen(k[i].w);
        if ((size_t)(p - s) >= n && memcmp(p - n, k[i].w, n) == 0)
            return k[i].dir;
    }
    return 0;
}

int alr_readback_matches(const char *value, const char *readback)
{
    char a[ALR_TEXT_MAX * 2], b[ALR_TEXT_MAX * 2];
    double va, vb;
    const char *ua, *ub, *sa, *sb;
    if (!readback || !*readback)
        return 0;
    norm(value, a, sizeof(a), 0);
    norm(readback, b, sizeof(b), 0);
    if (split_number(a, &va, &ua, 0, &sa) == 0) {
        if (split_number(b, &vb, &ub, 1, &sb))
            return 0;
        double tol = 1e-9 * (fabs(va) > 1 ? fabs(va) : 1);
        /* a comparison may be left out ("<0.5" read back "0.5"), not turned
         * round ("<0.5" read back ">0.5" is another result) */
        int db = direction(b, sb);
        if (db && db != direction(a, sa))
            return 0;
        return fabs(va - vb) <= tol && strcmp(ua, ub) == 0;
    }
    norm(value, a, sizeof(a), 1);
    norm(readback, b, sizeof(b), 1);
    return a[0] && strcmp(a, b) == 0;
}

/* ---- ack ---- */

int alr_ack(redisContext *c, const hr_config *cfg, const char *id, const char *user,
            const char *hospital, const char *readback, long long now_ms, int *result)
{
    char exam[HR_UID_MAX], hash[KEY_MAX], log[KEY_MAX], rb[ALR_TEXT_MAX];
    redisReply *v = NULL, *r = NULL;
    (void)cfg;
    *result = ALR_ACK_FORBIDDEN;
    int rc = exam_of(c, id, exam);
    if (rc)
        return rc;
    alert_keys(exam, id, hash, log);
    v = redisCommand(c, "HGET %s value", hash);
    if (!v || v->type == REDIS_REPLY_ERROR) {
        rc = HR_EREDIS;
        goto out;
    }
    if (v->type != REDIS_REPLY_STRING) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    int match = alr_readback_matches(v->str, readback);
    call k;
    call_init(&k, hash, log);
    call_str(&k, "ack");
    call_num(&k, now_ms);
    call_str(&k, user);
    call_str(&k, hospital);
    call_str(&k, cut(readback, rb));
    call_str(&k, match ? "1" : "0");
    r = call_run(c, &k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        rc = HR_EREDIS;
        goto out;
    }
    const char *what = rstr(r, 0);
    if (strcmp(what, "gone") == 0) {
        rc = HR_ENOTFOUND;
    } else if (strcmp(what, "forbidden") == 0) {
        *result = ALR_ACK_FORBIDDEN;
    } else if (strcmp(what, "already") == 0) {
        *result = ALR_ACK_ALREADY;
    } else if (strcmp(what, "readback") == 0) {
        *result = ALR_ACK_READBACK;
        rc = cmd(c, "HINCRBY %s readback_refused 1", ALR_COUNT_KEY);
    } else if (strcmp(what, "ok") == 0 && r->elements == 3) {
        *result = ALR_ACK_OK;
        rc = cmd(c, "ZREM %s %s", ALR_DUE_KEY, id);
        if (!rc)
            rc = cmd(c, "ZREM %s %s", ALR_FINAL_KEY, id);
        if (!rc)
            rc = cmd(c, "HINCRBY %s acked 1", ALR_COUNT_KEY);
        if (!rc)
            rc = stat_incr(c, now_ms, rnum(r, 1) ? "ok" : "late", rstr(r, 2));
        if (!rc)
            hr_info("alert", "%s acknowledged by %s (%s)%s", id, user, hospital,
                    rnum(r, 1) ? "" : " late");
    } else {
        rc = HR_EREDIS;
    }
out:
    freeReplyObject(v);
    freeReplyObject(r);
    return rc;
}

/* ---- sweep ---- */

int alr_sweep(redisContext *c, const hr_config *cfg, long long now_ms, int max, int *moved)
{
    int rc = 0;
    (void)cfg;
    if (moved)
        *moved = 0;
    if (max < 1)
        max = 1;
    if (max > 1000)
        max = 1000;
    redisReply *due =
        redisCommand(c, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", ALR_DUE_KEY, now_ms, max);
    if (!due || due->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(due);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < due->elements && !rc; i++) {
        const char *id = rstr(due, i);
        char exam[HR_UID_MAX], hash[KEY_MAX], log[KEY_MAX], k2[IX_MAX];
        rc = exam_of(c, id, exam);
        if (rc == HR_ENOTFOUND || rc == -EINVAL) {
            rc = cmd(c, "ZREM %s %s", ALR_DUE_KEY, id);
            continue;
        }
        if (rc)
            break;
        alert_keys(exam, id, hash, log);
        call k;
        call_init(&k, hash, log);
        call_str(&k, "escalate");
        call_num(&k, now_ms);
        redisReply *r = call_run(c, &k);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
            freeReplyObject(r);
            rc = HR_EREDIS;
            break;
        }
        const char *what = rstr(r, 0);
        if (strcmp(what, "gone") == 0 || strcmp(what, "done") == 0) {
            rc = cmd(c, "ZREM %s %s", ALR_DUE_KEY, id);
        } else if (strcmp(what, "later") == 0) {
            rc = cmd(c, "ZADD %s XX %s %s", ALR_DUE_KEY, rstr(r, 1), id);
        } else if (strcmp(what, "escalated") == 0 && r->elements == 6) {
            rc = cmd(c, "ZADD %s %s %s", ALR_DUE_KEY, rstr(r, 3), id);
            if (!rc && *rstr(r, 2) && !ix_key(k2, "hr:alr:ix:u:", rstr(r, 2)))
                rc = cmd(c, "ZADD %s NX %lld %s", k2, now_ms, id);
            if (!rc)
                rc = queue_notices(c, id, (int)rnum(r, 1), rstr(r, 4), now_ms);
            if (!rc)
                rc = cmd(c, "HINCRBY %s escalations 1", ALR_COUNT_KEY);
            if (!rc && moved)
                (*moved)++;
            if (!rc)
                hr_warn("alert", "%s not acknowledged in time: step %lld, now %s", id, rnum(r, 1),
                        rstr(r, 2));
        } else if (strcmp(what, "final") == 0 && r->elements == 2) {
            rc = cmd(c, "ZADD %s NX %lld %s", ALR_FINAL_KEY, now_ms, id);
            if (!rc)
                rc = cmd(c, "ZREM %s %s", ALR_DUE_KEY, id);
            if (!rc)
                rc = stat_incr(c, now_ms, "od", rstr(r, 1));
            if (!rc && moved)
                (*moved)++;
            if (!rc)
                hr_warn("alert", "%s not acknowledged after its last step: overdue_final", id);
        } else {
            rc = HR_EREDIS;
        }
        freeReplyObject(r);
    }
    freeReplyObject(due);
    return rc;
}

/* ---- notifications ---- */

int alr_notice_claim(redisContext *c, long long now_ms, int max, alr_notice *out, int *n)
{
    int rc = 0;
    *n = 0;
    if (max < 1)
        max = 1;
    if (max > 1000)
        max = 1000;
    redisReply *due =
        redisCommand(c, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", ALR_NOTIFY_KEY, now_ms, max);
    if (!due || due->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(due);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < due->elements && !rc; i++) {
        const char *m = rstr(due, i);
        redisReply *z = redisCommand(c, "ZREM %s %s", ALR_NOTIFY_KEY, m);
        long long took = z && z->type == REDIS_REPLY_INTEGER ? z->integer : -1;
        freeReplyObject(z);
        if (took < 0) {
            rc = HR_EREDIS;
            break;
        }
        if (took == 0)
            continue; /* another node's */
        alr_notice *nt = &out[*n];
        memset(nt, 0, sizeof(*nt));
        char id[ALR_ID_MAX] = "", ch[16] = "";
        int step = 0, attempt = 0;
        if (sscanf(m, "%39[^|]|%d|%15[^|]|%d", id, &step, ch, &attempt) != 4 || !id_valid(id)) {
            hr_warn("alert", "dropping a malformed notification \"%.80s\"", m);
            continue;
        }
        snprintf(nt->id, sizeof(nt->id), "%s", id);
        snprintf(nt->channel, sizeof(nt->channel), "%s", ch);
        nt->step = step;
        nt->attempt = attempt;
        rc = alr_get(c, id, 0, &nt->alert);
        if (rc == HR_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        const char *state = json_string_value(json_object_get(nt->alert, "state"));
        snprintf(nt->hospital, sizeof(nt->hospital), "%s",
                 json_string_value(json_object_get(nt->alert, "hospital")));
        snprintf(nt->target, sizeof(nt->target), "%s",
                 json_string_value(json_object_get(nt->alert, "target")));
        nt->stale = (state && strcmp(state, "acknowledged") == 0) ||
                    json_integer_value(json_object_get(nt->alert, "step")) != step;
        (*n)++;
    }
    freeReplyObject(due);
    return rc;
}

int alr_notice_done(redisContext *c, const alr_notice *nt, int ok, const char *detail,
                    long long now_ms, long long retry_ms)
{
    char exam[HR_UID_MAX], hash[KEY_MAX], log[KEY_MAX], d[ALR_TEXT_MAX];
    int rc = exam_of(c, nt->id, exam);
    if (rc)
        return rc == HR_EREDIS ? rc : 0;
    alert_keys(exam, nt->id, hash, log);
    call k;
    call_init(&k, hash, log);
    call_str(&k, "notified");
    call_num(&k, now_ms);
    call_num(&k, nt->step);
    call_str(&k, nt->channel);
    call_str(&k, ok ? "1" : "0");
    call_str(&k, cut(detail, d));
    call_num(&k, nt->attempt);
    redisReply *r = call_run(c, &k);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    freeReplyObject(r);
    if (!ok && nt->attempt < ALR_NOTIFY_TRIES && !nt->stale)
        rc = cmd(c, "ZADD %s NX %lld %s|%d|%s|%d", ALR_NOTIFY_KEY, now_ms + retry_ms, nt->id,
                 nt->step, nt->channel, nt->attempt + 1);
    return rc;
}

void alr_notice_free(alr_notice *nt)
{
    json_decref(nt->alert);
    nt->alert = NULL;
}

/* ---- reading ---- */

static const char *const k_int_fields[] = {
    "step",     "created_ms", "deadline_ms",   "acked_ms", "escalations", "readback_refused",
    "final_ms", "timeout_ms", "acked_in_time", NULL};

static int is_int_field(const char *f)
{
    for (int i = 0; k_int_fields[i]; i++)
        if (strcmp(k_int_fields[i], f) == 0)
            return 1;
    return 0;
}

/* The alert object of an HGETALL reply (+ log when l). NULL on -ENOMEM. */
static json_t *alert_json(const redisReply *h, const redisReply *l)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!f || !v)
            continue;
        if (strcmp(f, "steps") == 0) {
            json_t *s = json_loads(v, 0, NULL);
            json_object_set_new(o, "steps", s ? s : json_array());
        } else if (is_int_field(f)) {
            json_object_set_new(o, f, json_integer(strtoll(v, NULL, 10)));
        } else {
            json_object_set_new(o, f, json_string(v));
        }
    }
    if (o && l && l->type == REDIS_REPLY_ARRAY) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < l->elements; i++) {
            json_t *e = l->element[i]->str ? json_loads(l->element[i]->str, 0, NULL) : NULL;
            if (e)
                json_array_append_new(arr, e);
        }
        json_object_set_new(o, "log", arr ? arr : json_array());
    }
    return o;
}

int alr_get(redisContext *c, const char *id, int with_log, json_t **out)
{
    char exam[HR_UID_MAX], hash[KEY_MAX], log[KEY_MAX];
    redisReply *h = NULL, *l = NULL;
    *out = NULL;
    int rc = exam_of(c, id, exam);
    if (rc)
        return rc;
    alert_keys(exam, id, hash, log);
    redisAppendCommand(c, "HGETALL %s", hash);
    if (with_log)
        redisAppendCommand(c, "LRANGE %s %d -1", log, -ALR_LOG_KEEP);
    if (redisGetReply(c, (void **)&h) != REDIS_OK ||
        (with_log && redisGetReply(c, (void **)&l) != REDIS_OK)) {
        rc = HR_EREDIS;
        goto out;
    }
    if (!h || h->type != REDIS_REPLY_ARRAY || (l && l->type == REDIS_REPLY_ERROR)) {
        rc = HR_EREDIS;
        goto out;
    }
    if (h->elements == 0) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    *out = alert_json(h, l);
    if (!*out)
        rc = -ENOMEM;
out:
    freeReplyObject(h);
    freeReplyObject(l);
    return rc;
}

static int state_ok(const char *want, json_t *a)
{
    const char *st = json_string_value(json_object_get(a, "state"));
    if (!want || !*want)
        return 1;
    if (!st)
        return 0;
    if (strcmp(want, "open") == 0)
        return strcmp(st, "acknowledged") != 0;
    return strcmp(want, st) == 0;
}

/* Reads one page of index key below the cursor (score cs, member cid: the
 * members of score cs that sort at or above cid were sent); appends the
 * matching alerts to arr; next = the cursor after the last member read. */
static int walk(redisContext *c, const char *key, const alr_query *q, long long cs, const char *cid,
                json_t *arr, int want, char *next)
{
    long long hi = cid[0] ? cs : (q->to_ms > 0 ? q->to_ms : LLONG_MAX);
    if (q->to_ms > 0 && hi > q->to_ms)
        hi = q->to_ms;
    long long lo = q->from_ms > 0 ? q->from_ms : 0;
    int batch = want * 4 + ALR_TIES_MAX;
    redisReply *r =
        redisCommand(c, "ZREVRANGEBYSCORE %s %lld %lld WITHSCORES LIMIT 0 %d", key, hi, lo, batch);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int rc = 0, full = 0;
    next[0] = '\0';
    for (size_t i = 0; i + 1 < r->elements && !rc; i += 2) {
        const char *m = rstr(r, i);
        long long score = rnum(r, i + 1);
        /* in reverse order, members of one score come by descending id */
        if (cid[0] && score == cs && strcmp(m, cid) >= 0)
            continue;
        json_t *a = NULL;
        snprintf(next, ALR_CURSOR_MAX, "%lld-%s", score, m);
        rc = alr_get(c, m, 0, &a);
        if (rc == HR_ENOTFOUND || rc == -EINVAL) {
            rc = 0;
            continue;
        }
        if (!rc && state_ok(q->state, a))
            json_array_append(arr, a);
        json_decref(a);
        if ((int)json_array_size(arr) >= want) {
            full = 1;
            break;
        }
    }
    if (!full && r->elements < (size_t)batch * 2)
        next[0] = '\0'; /* the index is exhausted */
    freeReplyObject(r);
    return rc;
}

int alr_list(redisContext *c, const alr_query *q, json_t **out, char next[ALR_CURSOR_MAX])
{
    char key[IX_MAX], cid[ALR_ID_MAX] = "";
    long long cs = 0;
    int rc;
    int limit = q->limit < 1 ? 50 : q->limit > ALR_PAGE_MAX ? ALR_PAGE_MAX : q->limit;
    *out = NULL;
    next[0] = '\0';
    if (q->cursor && *q->cursor) {
        char *end;
        cs = strtoll(q->cursor, &end, 10);
        if (end == q->cursor || *end != '-' || cs < 0 || !id_valid(end + 1))
            return -EINVAL;
        snprintf(cid, sizeof(cid), "%s", end + 1);
    }
    if (q->hospital && *q->hospital) {
        if (ix_key(key, "hr:alr:ix:h:", q->hospital))
            return -EINVAL;
    } else if (q->center && *q->center) {
        if (ix_key(key, "hr:alr:ix:c:", q->center))
            return -EINVAL;
    } else if (q->user && *q->user) {
        if (ix_key(key, "hr:alr:ix:u:", q->user))
            return -EINVAL;
    } else {
        snprintf(key, sizeof(key), "%s", ALR_TIME_KEY);
    }
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    rc = walk(c, key, q, cs, cid, arr, limit, next);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---- HL7 ---- */

void alr_control_id(const char *id, int step, char out[21])
{
    char in[ALR_ID_MAX + 16], hex[65];
    unsigned char md[SHA256_DIGEST_LENGTH];
    int n = snprintf(in, sizeof(in), "%s/%d", id, step);
    SHA256((const unsigned char *)in, (size_t)n, md);
    hr_hex_encode(md, 9, hex);
    snprintf(out, 21, "AL%s", hex);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* An HL7 DTM (UTC) of ms. */
static void dtm(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d%02d%02d%02d%02d%02d+0000", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int alr_oru_build(const json_t *alert, const char *sending_facility, const char *recv_app,
                  const char *recv_facility, const char *control_id, long long now_ms, hr_buf *out)
{
    char t[32], raised[32], pid[ALR_TEXT_MAX], *bar;
    int rc = 0;
    if (!alert || !control_id || !*control_id || strlen(control_id) >= 21 ||
        strpbrk(control_id, "|^~\\&\r\n"))
        return -EINVAL;
    dtm(now_ms, t);
    dtm(json_integer_value(json_object_get(alert, "created_ms")), raised);
    /* the patient key is "<issuer>|<id>" */
    snprintf(pid, sizeof(pid), "%s", jstr(alert, "patient"));
    bar = strchr(pid, '|');
    const char *issuer = bar ? pid : "", *idv = bar ? bar + 1 : pid;
    if (bar)
        *bar = '\0';
#define LIT(s)                                                                                     \
    do {                                                                                           \
        if (!rc)                                                                                   \
            rc = hr_buf_append(out, (s), strlen(s));                                               \
    } while (0)
#define ESC(s)                                                                                     \
    do {                                                                                           \
        if (!rc)                                                                                   \
            rc = rpt_hl7_escape((s), out);                                                         \
    } while (0)
    LIT("MSH|^~\\&|HUREN|");
    ESC(sending_facility ? sending_facility : "");
    LIT("|");
    ESC(recv_app ? recv_app : "");
    LIT("|");
    ESC(recv_facility ? recv_facility : "");
    LIT("|");
    LIT(t);
    LIT("||ORU^R01^ORU_R01|");
    LIT(control_id);
    LIT("|P|2.5.1|||||CHN|UNICODE UTF-8\r");
    LIT("PID|1||");
    ESC(idv);
    if (*issuer) {
        LIT("^^^");
        ESC(issuer);
    }
    LIT("||");
    ESC(jstr(alert, "patient_name"));
    LIT("\rOBR|1||");
    ESC(*jstr(alert, "ref") ? jstr(alert, "ref") : jstr(alert, "exam"));
    LIT("|");
    ESC(jstr(alert, "item"));
    LIT("^");
    ESC(jstr(alert, "item_name"));
    LIT("^99HUREN|||");
    LIT(raised);
    LIT("||||||||||||||||||F\rOBX|1|ST|"); /* OBR-25 result status */
    ESC(jstr(alert, "item"));
    LIT("^");
    ESC(jstr(alert, "item_name"));
    LIT("^99HUREN|1|");
    ESC(jstr(alert, "value"));
    LIT("||");
    ESC(jstr(alert, "detail"));
    LIT("|");
    ESC(strcmp(jstr(alert, "flag"), "reader") == 0 ? "AA" : jstr(alert, "flag"));
    LIT("|||F\rNTE|1|L|");
    ESC("CRITICAL VALUE ");
    ESC(jstr(alert, "id"));
    ESC(": acknowledge with a read-back of the value in huren (危急值, 请回读确认)");
    LIT("\r");
#undef LIT
#undef ESC
    return rc;
}

/* ---- stats ---- */

int alr_stats_get(redisContext *c, long long now_ms, alr_stats *st)
{
    int rc = 0;
    memset(st, 0, sizeof(*st));
    redisAppendCommand(c, "HMGET %s raised acked escalations readback_refused", ALR_COUNT_KEY);
    redisAppendCommand(c, "ZCARD %s", ALR_DUE_KEY);
    redisAppendCommand(c, "ZCARD %s", ALR_FINAL_KEY);
    redisAppendCommand(c, "ZCOUNT %s -inf %lld", ALR_DUE_KEY, now_ms);
    for (int i = 0; i < 4; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            return HR_EREDIS;
        if (r->type == REDIS_REPLY_ERROR) {
            rc = HR_EREDIS;
        } else if (i == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
            st->raised = rnum(r, 0);
            st->acked = rnum(r, 1);
            st->escalations = rnum(r, 2);
            st->readback_refused = rnum(r, 3);
        } else if (i == 1) {
            st->open = r->integer;
        } else if (i == 2) {
            st->open += r->integer;
            st->overdue_now = r->integer;
        } else if (i == 3) {
            st->overdue_now += r->integer;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* ---- quality statistics ---- */

static const char *const k_stat_names[][2] = {
    {"r", "raised"}, {"ok", "acked_in_time"}, {"late", "acked_late"}, {"od", "overdue_final"}};

static json_t *stat_bucket(void)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "raised", (json_int_t)0, "acked_in_time",
                     (json_int_t)0, "acked_late", (json_int_t)0, "overdue_final", (json_int_t)0);
}

static void stat_add(json_t *b, const char *name, long long v)
{
    json_t *x = json_object_get(b, name);
    if (x)
        json_integer_set(x, json_integer_value(x) + v);
}

int alr_stats_days(redisContext *c, int from, int to, json_t **out)
{
    int days[ALR_STATS_DAYS_MAX], n = 0, rc = 0;
    char iso[11];
    *out = NULL;
    if (!from || !to || from > to)
        return -EINVAL;
    for (int d = from; d && d <= to; d = hr_day_add(d, 1)) {
        if (n == ALR_STATS_DAYS_MAX)
            return -EINVAL;
        days[n++] = d;
    }
    json_t *arr = json_array(), *total = stat_bucket(), *by = json_object();
    if (!arr || !total || !by) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (redisAppendCommand(c, "HGETALL hr:stat:%d", days[i]) != REDIS_OK) {
            rc = HR_EREDIS;
            goto out;
        }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            rc = HR_EREDIS;
            goto out;
        }
        json_t *b = stat_bucket(), *bh = json_object();
        hr_day_iso(days[i], iso);
        json_object_set_new(b, "day", json_string(iso));
        json_object_set_new(b, "by_hospital", bh);
        for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2) {
            const char *f = r->element[k]->str;
            long long v = strtoll(r->element[k + 1]->str ? r->element[k + 1]->str : "0", NULL, 10);
            if (!f || strncmp(f, "al|", 3) != 0)
                continue;
            const char *what = f + 3, *bar = strchr(what, '|');
            if (!bar)
                continue;
            const char *name = NULL;
            for (size_t j = 0; j < HR_ARRAY_LEN(k_stat_names); j++)
                if (strlen(k_stat_names[j][0]) == (size_t)(bar - what) &&
                    strncmp(what, k_stat_names[j][0], (size_t)(bar - what)) == 0)
                    name = k_stat_names[j][1];
            if (!name)
                continue;
            const char *h = bar + 1;
            if (!*h) { /* the total */
                stat_add(b, name, v);
                stat_add(total, name, v);
                continue;
            }
            json_t *x = json_object_get(bh, h);
            if (!x) {
                x = stat_bucket();
                json_object_set_new(bh, h, x);
            }
            stat_add(x, name, v);
            json_t *y = json_object_get(by, h);
            if (!y) {
                y = stat_bucket();
                json_object_set_new(by, h, y);
            }
            stat_add(y, name, v);
        }
        if (r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        freeReplyObject(r);
        json_array_append_new(arr, b);
    }
    if (rc)
        goto out;
    long long raised = json_integer_value(json_object_get(total, "raised"));
    json_object_set_new(
        total, "in_time_rate",
        raised ? json_real((double)json_integer_value(json_object_get(total, "acked_in_time")) /
                           (double)raised)
               : json_null());
    json_object_set_new(total, "by_hospital", by);
    by = NULL;
    char f[11], t[11];
    hr_day_iso(from, f);
    hr_day_iso(to, t);
    *out = json_pack("{s:s, s:s, s:o, s:o}", "from", f, "to", t, "days", arr, "total", total);
    arr = total = NULL;
    if (!*out)
        rc = -ENOMEM;
out:
    json_decref(arr);
    json_decref(total);
    json_decref(by);
    return rc;
}
