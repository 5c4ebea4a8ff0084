#include "index.h"
#include "admit_script.h"
#include "index_script.h"
#include "keys.h"
#include "../common/hr_assert.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"

#include <hiredis/adapters/libuv.h>
#include <openssl/sha.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_KEYS  21
#define N_ARGV  35
#define KEY_MAX (STO_PKEY_MAX + 64)

/* Arguments of one EVAL: "EVAL", script, numkeys, keys..., argv... */
typedef struct index_args {
    char keys[N_KEYS][KEY_MAX];
    char nkeys[8], received[24], size[24];
    char pkey[STO_PKEY_MAX]; /* "<issuer>|<patient id>" escaped, or "" */
    char part[STO_KEY_PART_MAX];
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

/* SHA1 of a script as EVALSHA wants it (40 hex) into hex. */
static void sha1_hex(const char *script, char hex[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script, strlen(script), md);
    hr_hex_encode(md, sizeof(md), hex);
}

static const char *script_sha(void)
{
    static char hex[41];
    if (!hex[0])
        sha1_hex(k_index_script, hex);
    return hex;
}

static const char *admit_sha(void)
{
    static char hex[41];
    if (!hex[0])
        sha1_hex(k_admit_script, hex);
    return hex;
}

int sto_sop_class_derived(const char *uid)
{
    static const char *const prefixes[] = {
        "1.2.840.10008.5.1.4.1.1.88.",  /* structured reports, key object selection */
        "1.2.840.10008.5.1.4.1.1.11.",  /* presentation states */
        "1.2.840.10008.5.1.4.1.1.104.", /* encapsulated PDF, CDA, STL, ... */
    };
    static const char *const exact[] = {
        "1.2.840.10008.5.1.4.1.1.66.4", /* segmentation */
        "1.2.840.10008.5.1.4.1.1.66.5", /* surface segmentation */
        "1.2.840.10008.5.1.4.1.1.66.7", /* label map segmentation */
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(uid, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(uid, exact[i]) == 0)
            return 1;
    return 0;
}

static void add(index_args *a, const char *s)
{
    a->argv[a->argc] = s;
    a->len[a->argc] = strlen(s);
    a->argc++;
}

/* key = prefix + escaped value (sto_key_part); 1 when it does not fit. */
static int key_with(index_args *a, char *key, const char *prefix, const char *value)
{
    if (sto_key_part(value, a->part, sizeof(a->part)))
        return 1;
    return snprintf(key, KEY_MAX, "%s%s", prefix, a->part) >= KEY_MAX;
}

/* by_sha: EVALSHA (the server has the script loaded) instead of EVAL. */
static int index_args_build(const sto_instance_rec *r, index_args *a, int by_sha)
{
    const dcm_attrs *d = r->a;
    const char *study = d->study_instance_uid, *series = d->series_instance_uid;
    const char *sop = d->sop_instance_uid;
    const char *owner = r->owner ? r->owner : r->hospital;
    if (!*study || !*series || !*sop || !*d->sop_class_uid)
        return HR_EMISSING;
    sto_patient_key(d, owner, a->pkey);
    int n = 0;
    n |= snprintf(a->keys[0], KEY_MAX, "hr:{%s}:i:%s", study, sop) >= KEY_MAX;
    n |= snprintf(a->keys[1], KEY_MAX, "hr:{%s}:i:%s:v", study, sop) >= KEY_MAX;
    n |= snprintf(a->keys[2], KEY_MAX, "hr:{%s}:se:%s", study, series) >= KEY_MAX;
    n |= snprintf(a->keys[3], KEY_MAX, "hr:{%s}:se:%s:i", study, series) >= KEY_MAX;
    n |= snprintf(a->keys[4], KEY_MAX, "hr:{%s}:st", study) >= KEY_MAX;
    n |= snprintf(a->keys[5], KEY_MAX, "hr:{%s}:se", study) >= KEY_MAX;
    n |= snprintf(a->keys[6], KEY_MAX, "hr:{%s}:mods", study) >= KEY_MAX;
    /* patient and secondary index keys: sender values escaped (storage/keys.h) */
    n |= snprintf(a->keys[7], KEY_MAX, "hr:pt:%s", a->pkey) >= KEY_MAX;
    n |= snprintf(a->keys[8], KEY_MAX, "hr:pt:%s:st", a->pkey) >= KEY_MAX;
    n |= key_with(a, a->keys[9], "hr:ix:acc:", d->accession_number);
    snprintf(a->keys[10], KEY_MAX, "hr:ix:date");
    n |= key_with(a, a->keys[11], "hr:ix:mod:", d->modality);
    n |= key_with(a, a->keys[12], "hr:ix:hosp:", owner);
    snprintf(a->keys[13], KEY_MAX, "hr:ix:sop");
    snprintf(a->keys[14], KEY_MAX, "hr:stats");
    n |= key_with(a, a->keys[15], "hr:ix:pid:", d->patient_id);
    snprintf(a->keys[16], KEY_MAX, "hr:ix:patients");
    n |= snprintf(a->keys[17], KEY_MAX, "hr:{%s}:i:%s:rc", study, sop) >= KEY_MAX;
    n |= snprintf(a->keys[18], KEY_MAX, "hr:{%s}:conflicts", study) >= KEY_MAX;
    snprintf(a->keys[19], KEY_MAX, "hr:ix:pn");
    snprintf(a->keys[20], KEY_MAX, "hr:ix:pns");
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
                                a->pkey,
                                d->patient_id,
                                d->issuer_of_patient_id,
                                d->patient_name,
                                d->patient_birth_date,
                                d->patient_sex,
                                d->charset_used,
                                d->charset_guessed ? "1" : "",
                                owner,
                                r->receipt ? "1" : ""};
    for (int i = 0; i < N_ARGV; i++)
        add(a, vals[i]);
    return 0;
}

/* {code, detail} of the index script. */
static int reply_outcome(const redisReply *rep, sto_index_result *res)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER || rep->element[1]->type != REDIS_REPLY_STRING)
        return HR_EREDIS;
    long long code = rep->element[0]->integer;
    if (code < 0 || (code & 7) > 3 || code > 15)
        return HR_EREDIS;
    res->outcome = (enum sto_index_outcome)(code & 7);
    res->patient_conflict = (code & 8) != 0;
    snprintf(res->detail, sizeof(res->detail), "%s", rep->element[1]->str);
    return 0;
}

/* {admitted, owner} of the admit script: 0, HR_EFORBIDDEN or HR_EREDIS. */
static int reply_admit(const redisReply *rep, char owner[64])
{
    owner[0] = '\0';
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER || rep->element[1]->type != REDIS_REPLY_STRING)
        return HR_EREDIS;
    snprintf(owner, 64, "%s", rep->element[1]->str);
    return rep->element[0]->integer == 1 ? 0 : HR_EFORBIDDEN;
}

/* The admit script's arguments; study must be a UID (validated by callers). */
typedef struct admit_args {
    char key[128];
    const char *argv[6];
    size_t len[6];
} admit_args;

static int admit_args_build(admit_args *a, const char *study, const char *hospital, int hub_derived,
                            int by_sha)
{
    if (!*study || snprintf(a->key, sizeof(a->key), "hr:{%s}:st", study) >= (int)sizeof(a->key))
        return HR_EMISSING;
    const char *v[6] = {
        by_sha ? "EVALSHA" : "EVAL", by_sha ? admit_sha() : k_admit_script, "1", a->key, hospital,
        hub_derived ? "1" : "0"};
    for (int i = 0; i < 6; i++) {
        a->argv[i] = v[i];
        a->len[i] = strlen(v[i]);
    }
    return 0;
}

int sto_index_admit_sync(redisContext *c, const char *study, const char *hospital, int hub_derived,
                         char owner[64])
{
    admit_args a;
    owner[0] = '\0';
    int rc = admit_args_build(&a, study, hospital, hub_derived, 0);
    if (rc)
        return rc;
    redisReply *rep = redisCommandArgv(c, 6, a.argv, a.len);
    rc = reply_admit(rep, owner);
    if (rc == HR_EREDIS && rep && rep->type == REDIS_REPLY_ERROR)
        hr_error("index", "admission failed: %s", rep->str);
    freeReplyObject(rep);
    return rc;
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

redisAsyncContext *sto_redis_async_connect(uv_loop_t *loop, const sto_redis_addr *addr, void *data,
                                           redisConnectCallback *on_connect,
                                           redisDisconnectCallback *on_disconnect,
                                           uv_timer_t *watchdog, uv_timer_cb on_timeout,
                                           uint64_t timeout_ms, char *err, size_t cap)
{
    redisAsyncContext *ac =
        addr->port ? redisAsyncConnect(addr->host, addr->port) : redisAsyncConnectUnix(addr->host);
    if (!ac || ac->err) {
        snprintf(err, cap, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = data;
    redisLibuvAttach(ac, loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(watchdog, on_timeout, timeout_ms, 0);
    return ac;
}

int sto_redis_async_expire(redisAsyncContext **ac)
{
    redisAsyncContext *c = *ac;
    if (!c || (c->c.flags & REDIS_CONNECTED))
        return 0;
    *ac = NULL;
    redisAsyncFree(c); /* never connected: no callback runs */
    return 1;
}

int sto_redis_async_close(redisAsyncContext **ac)
{
    if (sto_redis_async_expire(ac) || !*ac)
        return 1;
    redisAsyncDisconnect(*ac);
    return 0;
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

int sto_index_commit_sync(redisContext *c, const sto_instance_rec *r, sto_index_result *res)
{
    sto_index_result tmp;
    sto_instance_rec admitted;
    char owner[64];
    int rc;
    if (!res)
        res = &tmp;
    if (!r->owner) {
        rc = sto_index_admit_sync(c, r->a->study_instance_uid, r->hospital, r->hub_derived, owner);
        if (rc)
            return rc;
        admitted = *r;
        admitted.owner = owner;
        r = &admitted;
    }
    index_args *a = malloc(sizeof(*a));
    if (!a)
        return -ENOMEM;
    rc = index_args_build(r, a, 0);
    if (rc)
        goto out;
    redisReply *rep = redisCommandArgv(c, a->argc, a->argv, a->len);
    rc = reply_outcome(rep, res);
    if (rc && rep && rep->type == REDIS_REPLY_ERROR)
        hr_error("index", "commit failed: %s", rep->str);
    freeReplyObject(rep);
out:
    free(a);
    return rc;
}

/* Keys under hr: that the object files cannot rebuild (accounts, sessions,
 * worklists, reports, persons and their links, recognition grants,
 * decisions and counters): a flush of the index leaves them alone. */
static int flush_keeps(const char *k, size_t n)
{
    static const char *const keep[] = {
        "hr:user:", "hr:users",  "hr:tok:",    "hr:wl:",  "hr:rpt:",     "hr:person:",
        "hr:pix:",  "hr:grant:", "hr:grants:", "hr:rec:", "hr:recstat:", "hr:alr:"};
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

typedef struct pend_req pend_req;

struct sto_index {
    uv_loop_t *loop;
    sto_redis_addr addr;
    redisAsyncContext *ac;
    int ready;
    int closing;
    uv_timer_t retry;
    uv_timer_t tick; /* writes hr:meta:checkpoint every second */
    int open_timers;
    pend_req *head, *tail; /* commits and admissions sent, oldest first */
    int checkpoints;       /* enabled after reconciliation */
    int scripts_loaded;    /* of the two (index, admit): ready at 2 */
    uint64_t errors;
    int logged_down;
};

/* A commit or an admission waiting for its reply. Redis answers in order,
 * so the oldest is the head of a FIFO: its age is the stall detector. */
struct pend_req {
    struct pend_req *next;
    uint64_t sent_ms; /* uv_now */
    sto_index_cb commit_cb;
    sto_admit_cb admit_cb;
    void *arg;
};

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

/* Every command executed before this SET is in the AOF before it: when the
 * checkpoint survives a power loss, so did every earlier commit (decision 0002). */
static void schedule_retry(sto_index *ix);

static void pend_push(sto_index *ix, pend_req *req)
{
    req->next = NULL;
    req->sent_ms = uv_now(ix->loop);
    if (ix->tail)
        ix->tail->next = req;
    else
        ix->head = req;
    ix->tail = req;
}

/* The reply of req arrived (or the connection went): replies come in order. */
static void pend_pop(sto_index *ix, pend_req *req)
{
    HR_ASSERT(ix->head == req);
    ix->head = req->next;
    if (!ix->head)
        ix->tail = NULL;
}

/* A Redis that accepts commands and never answers (stopped, swapping, a
 * blocked script) would hold every ingest forever: past the deadline the
 * connection is dropped, every waiting commit fails (A700 / 503: the sender
 * keeps its copy; an object already stored is indexed by the retry or by
 * start-up reconciliation) and the usual reconnect takes over. */
static void check_stall(sto_index *ix)
{
    if (!ix->head || !ix->ac || uv_now(ix->loop) - ix->head->sent_ms < STO_INDEX_DEADLINE_MS)
        return;
    hr_error("index", "redis has not answered for %llu ms: dropping the connection",
             (unsigned long long)(uv_now(ix->loop) - ix->head->sent_ms));
    ix->errors++;
    ix->ready = 0;
    redisAsyncContext *ac = ix->ac;
    redisAsyncFree(ac); /* pending callbacks run with no reply, then on_disconnect */
    if (ix->ac == ac) { /* no disconnect callback (not connected): reconnect ourselves */
        ix->ac = NULL;
        schedule_retry(ix);
    }
}

static void on_tick(uv_timer_t *t)
{
    sto_index *ix = t->data;
    if (ix->ready && ix->ac && ix->checkpoints)
        redisAsyncCommand(ix->ac, NULL, NULL, "SET hr:meta:checkpoint %lld", hr_wall_ms());
    check_stall(ix);
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
        if (!sto_redis_async_expire(&ix->ac))
            return; /* connected */
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

/* Both scripts are loaded before we are ready: commits use EVALSHA. The
 * admit script's reply comes second (same connection, in order). */
static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv);

static void load_scripts(sto_index *ix)
{
    ix->ready = 0;
    ix->scripts_loaded = 0;
    redisAsyncCommand(ix->ac, on_script_loaded, ix, "SCRIPT LOAD %s", k_index_script);
    redisAsyncCommand(ix->ac, on_script_loaded, ix, "SCRIPT LOAD %s", k_admit_script);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
    sto_index *ix = priv;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_STRING &&
        (strcmp(r->str, script_sha()) == 0 || strcmp(r->str, admit_sha()) == 0)) {
        if (++ix->scripts_loaded < 2)
            return;
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
    redisAsyncCommand(ix->ac, on_selected, ix, "SELECT %d", ix->addr.db);
    load_scripts(ix);
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
    char err[128];
    if (ix->closing)
        return;
    ix->ac = sto_redis_async_connect(ix->loop, &ix->addr, ix, on_connect, on_disconnect, &ix->retry,
                                     on_retry, STO_INDEX_CONNECT_MS, err, sizeof(err));
    if (!ix->ac) {
        if (!ix->logged_down)
            hr_warn("index", "cannot reach redis: %s; retrying", err);
        ix->logged_down = 1;
        ix->errors++;
        schedule_retry(ix);
    }
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

/* A failed script call: counted and logged; a flushed script cache is
 * loaded again. */
static void script_failed(sto_index *ix, const redisReply *r, const char *what)
{
    ix->errors++;
    hr_error("index", "%s failed: %s", what,
             r && r->type == REDIS_REPLY_ERROR ? r->str : "connection lost");
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && ix->ready)
        load_scripts(ix);
}

static void on_commit(redisAsyncContext *ac, void *reply, void *priv)
{
    pend_req *req = priv;
    sto_index *ix = ac->data;
    sto_index_result res;
    memset(&res, 0, sizeof(res));
    pend_pop(ix, req);
    int rc = reply_outcome(reply, &res);
    if (rc)
        script_failed(ix, reply, "commit");
    req->commit_cb(req->arg, rc, rc ? NULL : &res);
    free(req);
}

static void on_admit(redisAsyncContext *ac, void *reply, void *priv)
{
    pend_req *req = priv;
    sto_index *ix = ac->data;
    char owner[64];
    pend_pop(ix, req);
    int rc = reply_admit(reply, owner);
    if (rc == HR_EREDIS)
        script_failed(ix, reply, "admission");
    req->admit_cb(req->arg, rc, owner);
    free(req);
}

void sto_index_admit(sto_index *ix, const char *study, const char *hospital, int hub_derived,
                     sto_admit_cb cb, void *arg)
{
    admit_args a;
    pend_req *req = NULL;
    int rc = HR_EREDIS;
    if (!ix->ready || !ix->ac)
        goto fail;
    rc = admit_args_build(&a, study, hospital, hub_derived, 1);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    req = calloc(1, sizeof(*req));
    if (!req)
        goto fail;
    req->admit_cb = cb;
    req->arg = arg;
    if (redisAsyncCommandArgv(ix->ac, on_admit, req, 6, a.argv, a.len) != REDIS_OK) {
        rc = HR_EREDIS;
        goto fail;
    }
    pend_push(ix, req);
    return;
fail:
    free(req);
    ix->errors += rc == HR_EREDIS;
    cb(arg, rc, "");
}

void sto_index_commit(sto_index *ix, const sto_instance_rec *r, sto_index_cb cb, void *arg)
{
    index_args *a = NULL;
    pend_req *req = NULL;
    int rc = HR_EREDIS;
    if (!ix->ready || !ix->ac)
        goto fail;
    rc = -ENOMEM;
    a = malloc(sizeof(*a));
    req = calloc(1, sizeof(*req));
    if (!a || !req)
        goto fail;
    rc = index_args_build(r, a, 1);
    if (rc)
        goto fail;
    req->commit_cb = cb;
    req->arg = arg;
    if (redisAsyncCommandArgv(ix->ac, on_commit, req, a->argc, a->argv, a->len) != REDIS_OK) {
        rc = HR_EREDIS;
        goto fail;
    }
    pend_push(ix, req);
    free(a);
    return;
fail:
    free(a);
    free(req);
    ix->errors += rc == HR_EREDIS;
    cb(arg, rc, NULL);
}

void sto_index_close(sto_index *ix)
{
    ix->closing = 1;
    uv_timer_stop(&ix->retry);
    uv_timer_stop(&ix->tick);
    if (ix->ac) {
        if (ix->ready && ix->checkpoints) /* a clean stop leaves a fresh checkpoint */
            redisAsyncCommand(ix->ac, NULL, NULL, "SET hr:meta:checkpoint %lld", hr_wall_ms());
        if (!sto_redis_async_close(&ix->ac))
            return; /* on_disconnect closes the timers */
    }
    close_timers(ix);
}
