/* The delivery queue (delivery.h) over delivery_script.lua. */
#include "delivery.h"
#include "delivery_script.h"
#include "../common/hr_assert.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../storage/sto_script.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX  (HR_UID_MAX + 64)
#define NUM_MAX  24
#define ARGS_MAX 32

static const char *const k_channels[RPT_DLV_CHANNELS] = {"hl7", "dicom", "webhook"};

const char *rpt_dlv_channel_name(enum rpt_dlv_channel ch)
{
    return (unsigned)ch < RPT_DLV_CHANNELS ? k_channels[ch] : "?";
}

int rpt_dlv_channel_parse(const char *s)
{
    for (int i = 0; s && i < RPT_DLV_CHANNELS; i++)
        if (strcmp(s, k_channels[i]) == 0)
            return i;
    return -1;
}

/* "r<n>-<study UID>": n (1..999999) and the study (digits and dots). 0 or
 * -EINVAL. */
static int id_split(const char *id, int *n, char *study)
{
    const char *p = id;
    long v = 0;
    if (!id || *p++ != 'r' || *p < '1' || *p > '9')
        return -EINVAL;
    while (*p >= '0' && *p <= '9' && v < 1000000)
        v = v * 10 + (*p++ - '0');
    if (*p++ != '-' || v >= 1000000)
        return -EINVAL;
    size_t len = strlen(p);
    if (len == 0 || len >= HR_UID_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.'))
            return -EINVAL;
    *n = (int)v;
    memcpy(study, p, len + 1);
    return 0;
}

/* "<report>/<version>/<channel>" -> parts. 0 or -EINVAL. */
static int dlv_id_split(const char *id, char *report, int *version, int *channel)
{
    const char *s2 = strrchr(id, '/');
    if (!s2)
        return -EINVAL;
    const char *s1 = s2 - 1;
    while (s1 > id && *s1 != '/')
        s1--;
    if (s1 <= id || (size_t)(s1 - id) >= RPT_ID_MAX)
        return -EINVAL;
    char *end;
    long v = strtol(s1 + 1, &end, 10);
    if (end != s2 || v < 1 || v > 1000000)
        return -EINVAL;
    *channel = rpt_dlv_channel_parse(s2 + 1);
    if (*channel < 0)
        return -EINVAL;
    memcpy(report, id, (size_t)(s1 - id));
    report[s1 - id] = '\0';
    *version = (int)v;
    return 0;
}

/* The hash and log keys of a delivery; -EINVAL for a bad report id. */
static int dlv_keys(const char *report, int version, int channel, char *hash, char *log)
{
    char study[HR_UID_MAX];
    int n;
    if (id_split(report, &n, study))
        return -EINVAL;
    snprintf(hash, KEY_MAX, "hr:dlv:{%s}:%d:%d:%s", study, n, version, k_channels[channel]);
    snprintf(log, KEY_MAX, "%s:log", hash);
    return 0;
}

void rpt_delivery_control_id(const char *report, int version, char *out)
{
    char in[RPT_ID_MAX + 16], hex[65];
    unsigned char md[SHA256_DIGEST_LENGTH];
    int n = snprintf(in, sizeof(in), "%s/%d", report, version);
    SHA256((const unsigned char *)in, (size_t)n, md);
    hr_hex_encode(md, 9, hex);
    snprintf(out, RPT_HL7_CONTROL_ID_MAX, "HR%s", hex);
}

/* ---- the script ---- */

static char g_sha[41];
static pthread_once_t g_sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    sto_script_sha1(k_delivery_script, g_sha);
}

typedef struct call {
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    int argc, nkeys_at; /* argv index of numkeys */
    char nkeys[8];
    char nums[8][NUM_MAX];
    int n_nums;
} call;

static void call_init(call *k)
{
    pthread_once(&g_sha_once, sha_init);
    memset(k, 0, sizeof(*k));
    k->argv[k->argc++] = "EVALSHA";
    k->argv[k->argc++] = g_sha;
    k->nkeys_at = k->argc;
    k->argv[k->argc++] = k->nkeys;
}

static void call_key(call *k, const char *key)
{
    HR_ASSERT(k->argc < ARGS_MAX);
    k->argv[k->argc++] = key;
    snprintf(k->nkeys, sizeof(k->nkeys), "%d", k->argc - k->nkeys_at - 1);
}

static void call_str(call *k, const char *s)
{
    HR_ASSERT(k->argc < ARGS_MAX);
    if (!k->nkeys[0])
        snprintf(k->nkeys, sizeof(k->nkeys), "0");
    k->argv[k->argc++] = s ? s : "";
}

static void call_num(call *k, long long v)
{
    HR_ASSERT(k->n_nums < (int)HR_ARRAY_LEN(k->nums));
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", v);
    call_str(k, k->nums[k->n_nums++]);
}

/* The reply (caller frees) or NULL when Redis failed (logged). */
static redisReply *call_run(redisContext *c, call *k)
{
    for (int i = 0; i < k->argc; i++)
        k->len[i] = strlen(k->argv[i]);
    redisReply *r = sto_script_call(c, k_delivery_script, k->argc, k->argv, k->len);
    if (r && r->type == REDIS_REPLY_ERROR) {
        hr_error("delivery", "script failed: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    if (!r)
        hr_error("delivery", "redis: %s", c->errstr[0] ? c->errstr : "no reply");
    return r;
}

/* One single-key command; 0 or HR_EREDIS. */
static int cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : HR_EREDIS;
    if (r && r->type == REDIS_REPLY_ERROR)
        hr_error("delivery", "redis: %s", r->str);
    freeReplyObject(r);
    return rc;
}

static const char *rstr(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return "";
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
        return e->str;
    return "";
}

static long long rnum(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    return e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

/* ---- expand ---- */

int rpt_delivery_expand(redisContext *c, const hr_config *cfg, const char *report, int version,
                        const char *hospital, long long now_ms, int *created)
{
    char study[HR_UID_MAX], index[KEY_MAX], hash[RPT_DLV_CHANNELS][KEY_MAX],
        log[RPT_DLV_CHANNELS][KEY_MAX], cid[RPT_HL7_CONTROL_ID_MAX];
    char member[RPT_DLV_CHANNELS][RPT_DLV_ID_MAX];
    int n, chans[RPT_DLV_CHANNELS], nch = 0, rc = 0;
    redisReply *r = NULL;
    if (created)
        *created = 0;
    if (id_split(report, &n, study) || version < 1 || version > 1000000 || !hospital)
        return -EINVAL;
    const dlv_hospital *h = rpt_dlv_config_hospital(cfg->delivery, hospital);
    if (h && h->hl7.on)
        chans[nch++] = RPT_DLV_HL7;
    if (h && h->dicom.on)
        chans[nch++] = RPT_DLV_DICOM;
    if (h && h->webhook.on)
        chans[nch++] = RPT_DLV_WEBHOOK;
    if (nch == 0)
        return 0;
    rpt_delivery_control_id(report, version, cid);
    call k;
    call_init(&k);
    snprintf(index, sizeof(index), "hr:dlv:{%s}:%d", study, n);
    call_key(&k, index);
    for (int i = 0; i < nch; i++) {
        dlv_keys(report, version, chans[i], hash[i], log[i]);
        call_key(&k, hash[i]);
        call_key(&k, log[i]);
    }
    call_str(&k, "expand");
    call_num(&k, now_ms);
    call_str(&k, report);
    call_num(&k, version);
    call_str(&k, hospital);
    call_num(&k, RPT_DLV_LOG_KEEP);
    for (int i = 0; i < nch; i++) {
        call_str(&k, k_channels[chans[i]]);
        call_str(&k, cid);
    }
    r = call_run(c, &k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)nch) {
        rc = HR_EREDIS;
        goto out;
    }
    /* the global sets: NX, so a delivery already leased or rescheduled
     * keeps its score when an entry is expanded again */
    for (int i = 0; i < nch && !rc; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4) {
            rc = HR_EREDIS;
            break;
        }
        snprintf(member[i], sizeof(member[i]), "%s/%d/%s", report, version, k_channels[chans[i]]);
        if (strcmp(rstr(e, 1), "pending") != 0)
            continue;
        rc = cmd(c, "ZADD %s NX %s %s", RPT_DLV_DUE, rstr(e, 2), member[i]);
        if (!rc)
            rc = cmd(c, "ZADD %s NX %s %s", RPT_DLV_PENDING, rstr(e, 3), member[i]);
        if (!rc && created && rnum(e, 0) == 1)
            (*created)++;
    }
out:
    freeReplyObject(r);
    return rc;
}

/* ---- claim ---- */

static int token_new(char out[33])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return -EIO;
    hr_hex_encode(b, sizeof(b), out);
    return 0;
}

/* Drops member from every global set (delivered, gone or malformed). */
static int forget(redisContext *c, const char *member)
{
    int rc = cmd(c, "ZREM %s %s", RPT_DLV_DUE, member);
    if (!rc)
        rc = cmd(c, "ZREM %s %s", RPT_DLV_PENDING, member);
    if (!rc)
        rc = cmd(c, "ZREM %s %s", RPT_DLV_FAILING, member);
    return rc;
}

int rpt_delivery_claim(redisContext *c, long long now_ms, int lease_ms, int max, rpt_dlv_claim *out,
                       int *n)
{
    int rc = 0;
    *n = 0;
    if (max < 1)
        max = 1;
    if (max > 1000)
        max = 1000;
    redisReply *due =
        redisCommand(c, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", RPT_DLV_DUE, now_ms, max);
    if (!due || due->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(due);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < due->elements && !rc; i++) {
        const char *member = rstr(due, i);
        rpt_dlv_claim *cl = &out[*n];
        char hash[KEY_MAX], log[KEY_MAX];
        int channel;
        memset(cl, 0, sizeof(*cl));
        if (strlen(member) >= sizeof(cl->id) ||
            dlv_id_split(member, cl->report, &cl->version, &channel) ||
            dlv_keys(cl->report, cl->version, channel, hash, log)) {
            hr_warn("delivery", "dropping a malformed member \"%.80s\" of %s", member, RPT_DLV_DUE);
            rc = forget(c, member);
            continue;
        }
        rc = token_new(cl->token);
        if (rc)
            break;
        call k;
        call_init(&k);
        call_key(&k, hash);
        call_str(&k, "claim");
        call_num(&k, now_ms);
        call_num(&k, lease_ms);
        call_str(&k, cl->token);
        redisReply *r = call_run(c, &k);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
            freeReplyObject(r);
            rc = HR_EREDIS;
            break;
        }
        const char *what = rstr(r, 0);
        if (strcmp(what, "ok") == 0 && r->elements == 9) {
            snprintf(cl->id, sizeof(cl->id), "%s", member);
            cl->channel = (enum rpt_dlv_channel)channel;
            snprintf(cl->hospital, sizeof(cl->hospital), "%s", rstr(r, 4));
            cl->attempts = (int)rnum(r, 5);
            snprintf(cl->control_id, sizeof(cl->control_id), "%s", rstr(r, 6));
            cl->created_ms = rnum(r, 7);
            cl->lease_until_ms = rnum(r, 8);
            /* back in the set at the lease end: retried if this node stops */
            rc = cmd(c, "ZADD %s XX %lld %s", RPT_DLV_DUE, cl->lease_until_ms, member);
            if (!rc)
                (*n)++;
        } else if (strcmp(what, "gone") == 0) {
            rc = forget(c, member);
        } else if (strcmp(what, "later") == 0 || strcmp(what, "leased") == 0) {
            rc = cmd(c, "ZADD %s XX %s %s", RPT_DLV_DUE, rstr(r, 1), member);
        } else {
            rc = HR_EREDIS;
        }
        freeReplyObject(r);
    }
    freeReplyObject(due);
    return rc;
}

/* ---- finish ---- */

long long rpt_delivery_backoff_ms(const struct dlv_config *d, int failures, double rnd)
{
    long long ms = (long long)d->retry_initial_s * 1000, max = (long long)d->retry_max_s * 1000;
    for (int i = 1; i < failures && ms < max; i++)
        ms *= 2;
    if (ms > max)
        ms = max;
    if (rnd < 0 || rnd >= 1)
        rnd = 0;
    ms = (long long)((double)ms * (0.5 + rnd / 2));
    return ms < 1000 ? 1000 : ms;
}

/* Detail as stored: tabs and line breaks are spaces, at most
 * RPT_DLV_DETAIL_MAX - 1 bytes, cut at a UTF-8 boundary. */
static void clean_detail(const char *in, char *out)
{
    size_t n = 0;
    for (; in && in[n] && n < RPT_DLV_DETAIL_MAX - 1; n++)
        out[n] = (in[n] == '\t' || in[n] == '\r' || in[n] == '\n') ? ' ' : in[n];
    if (in && in[n])
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
            n--; /* out[n] would continue a character cut off */
    out[n] = '\0';
}

static double random_unit(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        return 0.5;
    return (double)v / 4294967296.0;
}

int rpt_delivery_finish(redisContext *c, const struct dlv_config *d, const rpt_dlv_claim *cl,
                        int ok, const char *detail, long long now_ms, rpt_dlv_outcome *out)
{
    char hash[KEY_MAX], log[KEY_MAX], text[RPT_DLV_DETAIL_MAX];
    rpt_dlv_outcome o = {0, 0, 0, 0};
    int rc = 0;
    if (dlv_keys(cl->report, cl->version, cl->channel, hash, log))
        return -EINVAL;
    clean_detail(detail, text);
    long long next = now_ms + rpt_delivery_backoff_ms(d, cl->attempts + 1, random_unit());
    call k;
    call_init(&k);
    call_key(&k, hash);
    call_key(&k, log);
    call_str(&k, "finish");
    call_num(&k, now_ms);
    call_str(&k, cl->token);
    call_str(&k, ok ? "1" : "0");
    call_str(&k, text);
    call_num(&k, next);
    call_num(&k, RPT_DLV_LOG_KEEP);
    redisReply *r = call_run(c, &k);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        rc = HR_EREDIS;
        goto out;
    }
    if (strcmp(rstr(r, 0), "gone") == 0) {
        rc = forget(c, cl->id);
        if (!rc)
            rc = HR_ENOTFOUND;
        goto out;
    }
    if (r->elements != 4) {
        rc = HR_EREDIS;
        goto out;
    }
    o.delivered = strcmp(rstr(r, 0), "delivered") == 0;
    o.attempts = (int)rnum(r, 1);
    o.next_ms = rnum(r, 2);
    o.failing = !o.delivered && o.attempts >= d->failing_after;
    if (rnum(r, 3) != 1)
        goto out; /* another holder's attempt decides the sets */
    if (o.delivered) {
        rc = forget(c, cl->id);
    } else {
        rc = cmd(c, "ZADD %s %lld %s", RPT_DLV_DUE, o.next_ms, cl->id);
        if (!rc && o.failing)
            rc = cmd(c, "ZADD %s NX %lld %s", RPT_DLV_FAILING, now_ms, cl->id);
    }
out:
    freeReplyObject(r);
    if (out)
        *out = o;
    return rc;
}

/* ---- stats ---- */

int rpt_delivery_stats(redisContext *c, rpt_dlv_stats *st)
{
    int rc = 0;
    memset(st, 0, sizeof(*st));
    redisAppendCommand(c, "ZCARD %s", RPT_DLV_PENDING);
    redisAppendCommand(c, "ZCARD %s", RPT_DLV_FAILING);
    redisAppendCommand(c, "ZRANGE %s 0 0 WITHSCORES", RPT_DLV_PENDING);
    redisAppendCommand(c, "ZCARD %s", RPT_DLV_OUTBOX);
    for (int i = 0; i < 4; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            return HR_EREDIS; /* the connection is unusable now */
        }
        if (r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        else if (i == 0)
            st->pending = r->integer;
        else if (i == 1)
            st->failing = r->integer;
        else if (i == 2 && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
            st->oldest_pending_ms = rnum(r, 1);
        else if (i == 3)
            st->outbox = r->integer;
        freeReplyObject(r);
    }
    return rc;
}

/* ---- list ---- */

static int parse_event(const char *s, rpt_dlv_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    const char *t1 = strchr(s, '\t');
    const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    const char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
    if (!t3)
        return -EINVAL;
    ev->time_ms = strtoll(s, NULL, 10);
    size_t n = (size_t)(t2 - t1 - 1);
    if (n >= sizeof(ev->outcome))
        n = sizeof(ev->outcome) - 1;
    memcpy(ev->outcome, t1 + 1, n);
    ev->attempt = (int)strtol(t2 + 1, NULL, 10);
    snprintf(ev->detail, sizeof(ev->detail), "%s", t3 + 1);
    return 0;
}

static const char *field_of(const redisReply *h, const char *name)
{
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : "";
    return "";
}

int rpt_delivery_list(redisContext *c, const char *report, long long now_ms,
                      int (*cb)(void *arg, const rpt_delivery *d), void *arg)
{
    char study[HR_UID_MAX], index[KEY_MAX];
    int n, rc = 0;
    if (id_split(report, &n, study))
        return -EINVAL;
    snprintf(index, sizeof(index), "hr:dlv:{%s}:%d", study, n);
    redisReply *ids = redisCommand(c, "ZRANGE %s 0 %d", index, RPT_PER_REPORT_DLV_MAX - 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(ids);
        return HR_EREDIS;
    }
    rpt_dlv_event *evs = calloc(RPT_DLV_LOG_KEEP, sizeof(*evs));
    if (!evs) {
        freeReplyObject(ids);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ids->elements && !rc; i++) {
        const char *m = rstr(ids, i);
        char *end;
        long v = strtol(m, &end, 10);
        int ch = *end == ':' ? rpt_dlv_channel_parse(end + 1) : -1;
        char hash[KEY_MAX], log[KEY_MAX];
        if (ch < 0 || v < 1 || v > 1000000 || dlv_keys(report, (int)v, ch, hash, log))
            continue;
        redisAppendCommand(c, "HGETALL %s", hash);
        redisAppendCommand(c, "LRANGE %s %d -1", log, -RPT_DLV_LOG_KEEP);
        redisReply *h = NULL, *l = NULL;
        if (redisGetReply(c, (void **)&h) != REDIS_OK ||
            redisGetReply(c, (void **)&l) != REDIS_OK) {
            freeReplyObject(h);
            rc = HR_EREDIS;
            break;
        }
        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0 && l->type == REDIS_REPLY_ARRAY) {
            rpt_delivery d;
            memset(&d, 0, sizeof(d));
            snprintf(d.report, sizeof(d.report), "%s", report);
            d.version = (int)v;
            d.channel = (enum rpt_dlv_channel)ch;
            snprintf(d.hospital, sizeof(d.hospital), "%s", field_of(h, "hospital"));
            d.delivered = strcmp(field_of(h, "state"), "delivered") == 0;
            d.attempts = atoi(field_of(h, "attempts"));
            d.created_ms = strtoll(field_of(h, "created_ms"), NULL, 10);
            d.next_ms = strtoll(field_of(h, "next_ms"), NULL, 10);
            d.delivered_ms = strtoll(field_of(h, "delivered_ms"), NULL, 10);
            d.last_ms = strtoll(field_of(h, "last_ms"), NULL, 10);
            d.leased = strtoll(field_of(h, "lease_until"), NULL, 10) > now_ms;
            snprintf(d.last_error, sizeof(d.last_error), "%s", field_of(h, "last_error"));
            for (size_t j = 0; j < l->elements && d.n_log < RPT_DLV_LOG_KEEP; j++)
                if (l->element[j]->type == REDIS_REPLY_STRING &&
                    parse_event(l->element[j]->str, &evs[d.n_log]) == 0)
                    d.n_log++;
            d.log = evs;
            rc = cb(arg, &d);
        } else if (h->type == REDIS_REPLY_ERROR || l->type == REDIS_REPLY_ERROR) {
            rc = HR_EREDIS;
        }
        freeReplyObject(h);
        freeReplyObject(l);
    }
    free(evs);
    freeReplyObject(ids);
    return rc;
}
