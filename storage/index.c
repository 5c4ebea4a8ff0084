#include "index.h"
#include "index_script.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <hiredis/adapters/libuv.h>
#include <openssl/sha.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_KEYS  17
#define N_ARGV  33
#define KEY_MAX 640

/* Arguments of one EVAL: "EVAL", script, numkeys, keys..., argv... */
typedef struct index_args {
    char keys[N_KEYS][KEY_MAX];
    char nkeys[8], received[24], size[24];
    char pkey[DCM_LO_MAX * 2 + 2]; /* "<issuer>|<patient id>" or "" */
    const char *argv[3 + N_KEYS + N_ARGV];
    size_t len[3 + N_KEYS + N_ARGV];
    int argc;
} index_args;

int sto_redis_addr_parse(const char *url, sto_redis_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        if (*p != '/' || strlen(p) >= sizeof(out->host))
            return HR_ECONFIG;
        strcpy(out->host, p);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return HR_ECONFIG;
    const char *h = url + 8;
    const char *colon = strrchr(h, ':');
    const char *slash = strchr(h, '/');
    size_t hl = colon ? (size_t)(colon - h) : (slash ? (size_t)(slash - h) : strlen(h));
    if (hl == 0 || hl >= sizeof(out->host))
        return HR_ECONFIG;
    memcpy(out->host, h, hl);
    out->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port < 1 || port > 65535 || (*end && *end != '/'))
            return HR_ECONFIG;
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (db < 0 || db > 15 || *end)
            return HR_ECONFIG;
        out->db = (int)db;
    }
    return 0;
}

/* SHA1 of the script as EVALSHA wants it (40 hex), computed once. */
static const char *script_sha(void)
{
    static char hex[41];
    if (!hex[0]) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)k_index_script, strlen(k_index_script), md);
        for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return hex;
}

static void add(index_args *a, const char *s)
{
    a->argv[a->argc] = s;
    a->len[a->argc] = strlen(s);
    a->argc++;
}

/* by_sha: EVALSHA (the server has the script loaded) instead of EVAL. */
static int index_args_build(const sto_instance_rec *r, index_args *a, int by_sha)
{
    const dcm_attrs *d = r->a;
    const char *study = d->study_instance_uid, *series = d->series_instance_uid;
    const char *sop = d->sop_instance_uid;
    if (!*study || !*series || !*sop || !*d->sop_class_uid)
        return HR_EMISSING;
    char *pkey = a->pkey;
    pkey[0] = '\0';
    if (*d->patient_id)
        snprintf(pkey, sizeof(a->pkey), "%s|%s",
                 *d->issuer_of_patient_id ? d->issuer_of_patient_id : r->hospital, d->patient_id);
    int n = 0;
    n |= snprintf(a->keys[0], KEY_MAX, "hr:{%s}:i:%s", study, sop) >= KEY_MAX;
    n |= snprintf(a->keys[1], KEY_MAX, "hr:{%s}:i:%s:v", study, sop) >= KEY_MAX;
    n |= snprintf(a->keys[2], KEY_MAX, "hr:{%s}:se:%s", study, series) >= KEY_MAX;
    n |= snprintf(a->keys[3], KEY_MAX, "hr:{%s}:se:%s:i", study, series) >= KEY_MAX;
    n |= snprintf(a->keys[4], KEY_MAX, "hr:{%s}:st", study) >= KEY_MAX;
    n |= snprintf(a->keys[5], KEY_MAX, "hr:{%s}:se", study) >= KEY_MAX;
    n |= snprintf(a->keys[6], KEY_MAX, "hr:{%s}:mods", study) >= KEY_MAX;
    /* patient and secondary index keys: long values are bounded by the
     * attribute sizes, but a key must still fit */
    snprintf(a->keys[7], KEY_MAX, "hr:pt:%s", pkey);
    snprintf(a->keys[8], KEY_MAX, "hr:pt:%s:st", pkey);
    snprintf(a->keys[9], KEY_MAX, "hr:ix:acc:%s", d->accession_number);
    snprintf(a->keys[10], KEY_MAX, "hr:ix:date");
    snprintf(a->keys[11], KEY_MAX, "hr:ix:mod:%s", d->modality);
    snprintf(a->keys[12], KEY_MAX, "hr:ix:hosp:%s", r->hospital);
    snprintf(a->keys[13], KEY_MAX, "hr:ix:sop");
    snprintf(a->keys[14], KEY_MAX, "hr:stats");
    snprintf(a->keys[15], KEY_MAX, "hr:ix:pid:%s", d->patient_id);
    snprintf(a->keys[16], KEY_MAX, "hr:ix:patients");
    if (n)
        return HR_ETOOBIG;
    snprintf(a->nkeys, sizeof(a->nkeys), "%d", N_KEYS);
    snprintf(a->received, sizeof(a->received), "%lld", r->received_ms);
    snprintf(a->size, sizeof(a->size), "%llu", (unsigned long long)r->size);
    a->argc = 0;
    add(a, by_sha ? "EVALSHA" : "EVAL");
    add(a, by_sha ? script_sha() : k_index_script);
    add(a, a->nkeys);
    for (int i = 0; i < N_KEYS; i++)
        add(a, a->keys[i]);
    const char *vals[N_ARGV] = {r->sha,
                                a->received,
                                a->size,
                                d->transfer_syntax_uid,
                                d->sop_class_uid,
                                sop,
                                series,
                                study,
                                d->instance_number,
                                d->number_of_frames,
                                r->source_ae,
                                r->hospital,
                                d->modality,
                                d->series_number,
                                d->series_description,
                                d->series_date,
                                d->body_part,
                                d->study_date,
                                d->study_time,
                                d->accession_number,
                                d->study_description,
                                d->study_id,
                                d->referring_physician,
                                d->institution_name,
                                d->performing_physician,
                                pkey,
                                d->patient_id,
                                d->issuer_of_patient_id,
                                d->patient_name,
                                d->patient_birth_date,
                                d->patient_sex,
                                d->charset_used,
                                d->charset_guessed ? "1" : ""};
    for (int i = 0; i < N_ARGV; i++)
        add(a, vals[i]);
    return 0;
}

static int reply_outcome(const redisReply *rep, enum sto_index_outcome *outcome)
{
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer < 0 || rep->integer > 3)
        return HR_EREDIS;
    *outcome = (enum sto_index_outcome)rep->integer;
    return 0;
}

redisContext *sto_index_connect_sync(const sto_redis_addr *addr, int timeout_ms, int *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = addr->port ? redisConnectWithTimeout(addr->host, addr->port, tv)
                                 : redisConnectUnixWithTimeout(addr->host, tv);
    *err = 0;
    if (!c || c->err) {
        if (c)
            redisFree(c);
        *err = HR_EREDIS;
        return NULL;
    }
    if (addr->db) {
        redisReply *r = redisCommand(c, "SELECT %d", addr->db);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            *err = HR_EREDIS;
            return NULL;
        }
    }
    return c;
}

static __thread redisContext *t_worker_redis;

redisContext *sto_worker_redis(const sto_redis_addr *addr, int timeout_ms)
{
    if (t_worker_redis && t_worker_redis->err)
        sto_worker_redis_failed();
    if (!t_worker_redis) {
        int err;
        t_worker_redis = sto_index_connect_sync(addr, timeout_ms, &err);
        /* a hung (not dead) Redis must not hold a pool thread forever */
        struct timeval tv = {STO_WORKER_REDIS_TIMEOUT_S, 0};
        if (t_worker_redis)
            redisSetTimeout(t_worker_redis, tv);
    }
    return t_worker_redis;
}

void sto_worker_redis_failed(void)
{
    if (t_worker_redis)
        redisFree(t_worker_redis);
    t_worker_redis = NULL;
}

int sto_index_commit_sync(redisContext *c, const sto_instance_rec *r,
                          enum sto_index_outcome *outcome)
{
    index_args *a = malloc(sizeof(*a));
    if (!a)
        return -ENOMEM;
    int rc = index_args_build(r, a, 0);
    if (rc)
        goto out;
    redisReply *rep = redisCommandArgv(c, a->argc, a->argv, a->len);
    rc = reply_outcome(rep, outcome);
    if (rc && rep && rep->type == REDIS_REPLY_ERROR)
        hr_error("index", "commit failed: %s", rep->str);
    freeReplyObject(rep);
out:
    free(a);
    return rc;
}

/* Keys under hr: that the object files cannot rebuild (accounts, sessions):
 * a flush of the index leaves them alone. */
static int flush_keeps(const char *k, size_t n)
{
    static const char *const keep[] = {"hr:user:", "hr:users", "hr:tok:", "hr:wl:"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        size_t l = strlen(keep[i]);
        if (n >= l && memcmp(k, keep[i], l) == 0)
            return 1;
    }
    return 0;
}

int sto_index_flush_sync(redisContext *c, long long *deleted)
{
    char cursor[32] = "0";
    *deleted = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH hr:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            return HR_EREDIS;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (flush_keeps(keys->element[i]->str, (size_t)keys->element[i]->len))
                continue;
            redisReply *d =
                redisCommand(c, "UNLINK %b", keys->element[i]->str, (size_t)keys->element[i]->len);
            if (d && d->type == REDIS_REPLY_INTEGER)
                *deleted += d->integer;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* ---- async client ---- */

struct sto_index {
    uv_loop_t *loop;
    sto_redis_addr addr;
    redisAsyncContext *ac;
    int ready;
    int closing;
    uv_timer_t retry;
    uv_timer_t tick; /* writes hr:meta:checkpoint every second */
    int open_timers;
    int checkpoints; /* enabled after reconciliation */
    uint64_t errors;
    int logged_down;
};

typedef struct commit_req {
    sto_index_cb cb;
    void *arg;
} commit_req;

static void connect_now(sto_index *ix);

static void free_index(uv_handle_t *h)
{
    sto_index *ix = h->data;
    if (--ix->open_timers == 0)
        free(ix);
}

static void close_timers(sto_index *ix)
{
    uv_close((uv_handle_t *)&ix->retry, free_index);
    uv_close((uv_handle_t *)&ix->tick, free_index);
}

static long long wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Every command executed before this SET is in the AOF before it: when the
 * checkpoint survives a power loss, so did every earlier commit (decision 0002). */
static void on_tick(uv_timer_t *t)
{
    sto_index *ix = t->data;
    if (ix->ready && ix->ac && ix->checkpoints)
        redisAsyncCommand(ix->ac, NULL, NULL, "SET hr:meta:checkpoint %lld", wall_ms());
}

void sto_index_enable_checkpoints(sto_index *ix)
{
    ix->checkpoints = 1;
}

/* The retry timer, also the connect watchdog: hiredis 0.14's libuv adapter
 * drops the poll error of a refused TCP connect, so its connect callback
 * never runs; a connection not up in time is given up and made again. */
#define STO_INDEX_CONNECT_MS 2000

static void on_retry(uv_timer_t *t)
{
    sto_index *ix = t->data;
    if (ix->ac) {
        if (ix->ac->c.flags & REDIS_CONNECTED)
            return;
        redisAsyncContext *ac = ix->ac;
        ix->ac = NULL;
        redisAsyncFree(ac); /* never connected: no callback runs */
        ix->errors++;
        if (!ix->logged_down)
            hr_warn("index", "cannot reach redis: connect timed out; retrying");
        ix->logged_down = 1;
    }
    connect_now(ix);
}

static void schedule_retry(sto_index *ix)
{
    if (!ix->closing)
        uv_timer_start(&ix->retry, on_retry, 500, 0);
}

/* A connection that cannot be made ready (Redis still loading its AOF, a
 * failed SELECT) is dropped; the normal reconnect path tries again. */
static void drop_connection(sto_index *ix, const char *why)
{
    if (!ix->logged_down)
        hr_warn("index", "redis not ready: %s; retrying", why);
    ix->logged_down = 1;
    ix->ready = 0;
    if (ix->ac && !ix->closing)
        redisAsyncDisconnect(ix->ac);
}

static void on_selected(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR)
        drop_connection(priv, r->str);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    sto_index *ix = priv;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_STRING && strcmp(r->str, script_sha()) == 0) {
        ix->ready = 1;
        if (ix->logged_down)
            hr_info("index", "redis is back");
        ix->logged_down = 0;
    } else if (r) {
        drop_connection(ix, r->type == REDIS_REPLY_ERROR ? r->str : "SCRIPT LOAD failed");
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sto_index *ix = ac->data;
    if (status != REDIS_OK) {
        ix->ac = NULL; /* hiredis frees the context after this callback */
        ix->errors++;
        if (!ix->logged_down)
            hr_warn("index", "cannot reach redis: %s; retrying", ac->errstr);
        ix->logged_down = 1;
        schedule_retry(ix);
        return;
    }
    uv_timer_stop(&ix->retry); /* connected: the watchdog has nothing to do */
    /* the script is loaded before we are ready: commits use EVALSHA */
    redisAsyncCommand(ix->ac, on_selected, ix, "SELECT %d", ix->addr.db);
    redisAsyncCommand(ix->ac, on_script_loaded, ix, "SCRIPT LOAD %s", k_index_script);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    sto_index *ix = ac->data;
    ix->ac = NULL;
    ix->ready = 0;
    if (ix->closing) {
        close_timers(ix);
        return;
    }
    ix->errors++;
    hr_warn("index", "lost redis connection; reconnecting");
    ix->logged_down = 1;
    schedule_retry(ix);
}

static void connect_now(sto_index *ix)
{
    redisAsyncContext *ac = ix->addr.port ? redisAsyncConnect(ix->addr.host, ix->addr.port)
                                          : redisAsyncConnectUnix(ix->addr.host);
    if (!ac || ac->err) {
        if (!ix->logged_down)
            hr_warn("index", "cannot reach redis: %s; retrying", ac ? ac->errstr : "oom");
        ix->logged_down = 1;
        ix->errors++;
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(ix);
        return;
    }
    ac->data = ix;
    ix->ac = ac;
    redisLibuvAttach(ac, ix->loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!ix->closing)
        uv_timer_start(&ix->retry, on_retry, STO_INDEX_CONNECT_MS, 0);
}

int sto_index_open(uv_loop_t *loop, const sto_redis_addr *addr, sto_index **out)
{
    sto_index *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->loop = loop;
    ix->addr = *addr;
    uv_timer_init(loop, &ix->retry);
    uv_timer_init(loop, &ix->tick);
    ix->retry.data = ix->tick.data = ix;
    ix->open_timers = 2;
    uv_timer_start(&ix->tick, on_tick, 1000, 1000);
    connect_now(ix);
    *out = ix;
    return 0;
}

int sto_index_ready(const sto_index *ix)
{
    return ix->ready;
}

uint64_t sto_index_errors(const sto_index *ix)
{
    return ix->errors;
}

static void on_commit(redisAsyncContext *ac, void *reply, void *priv)
{
    commit_req *req = priv;
    sto_index *ix = ac->data;
    enum sto_index_outcome outcome = STO_INDEX_NEW;
    int rc = reply_outcome(reply, &outcome);
    if (rc) {
        ix->errors++;
        redisReply *r = reply;
        hr_error("index", "commit failed: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "connection lost");
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && ix->ready) {
            /* someone flushed the script cache: load it again */
            ix->ready = 0;
            redisAsyncCommand(ix->ac, on_script_loaded, ix, "SCRIPT LOAD %s", k_index_script);
        }
    }
    req->cb(req->arg, rc, outcome);
    free(req);
}

void sto_index_commit(sto_index *ix, const sto_instance_rec *r, sto_index_cb cb, void *arg)
{
    index_args *a = NULL;
    commit_req *req = NULL;
    int rc = HR_EREDIS;
    if (!ix->ready || !ix->ac)
        goto fail;
    rc = -ENOMEM;
    a = malloc(sizeof(*a));
    req = malloc(sizeof(*req));
    if (!a || !req)
        goto fail;
    rc = index_args_build(r, a, 1);
    if (rc)
        goto fail;
    req->cb = cb;
    req->arg = arg;
    if (redisAsyncCommandArgv(ix->ac, on_commit, req, a->argc, a->argv, a->len) != REDIS_OK) {
        rc = HR_EREDIS;
        goto fail;
    }
    free(a);
    return;
fail:
    free(a);
    free(req);
    ix->errors += rc == HR_EREDIS;
    cb(arg, rc, STO_INDEX_NEW);
}

void sto_index_close(sto_index *ix)
{
    ix->closing = 1;
    uv_timer_stop(&ix->retry);
    uv_timer_stop(&ix->tick);
    if (ix->ac) {
        if (ix->ready && ix->checkpoints) /* a clean stop leaves a fresh checkpoint */
            redisAsyncCommand(ix->ac, NULL, NULL, "SET hr:meta:checkpoint %lld", wall_ms());
        if (!(ix->ac->c.flags & REDIS_CONNECTED)) {
            /* still connecting: hiredis frees it without a disconnect callback */
            redisAsyncFree(ix->ac);
            ix->ac = NULL;
            close_timers(ix);
            return;
        }
        redisAsyncDisconnect(ix->ac); /* on_disconnect closes the timers */
        return;
    }
    close_timers(ix);
}
