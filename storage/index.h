/* The Redis index of stored instances (key schema: docs/index-schema.md).
 * One Lua script commits one instance atomically: instance, series, study,
 * patient and the secondary indexes. The same argument builder serves the
 * async path (ingest, hiredis on the libuv loop) and the sync path (reindex). */
#ifndef STO_INDEX_H
#define STO_INDEX_H

#include "../dicom/dcm_attrs.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <uv.h>

/* Outcome of committing one instance. */
enum sto_index_outcome {
    STO_INDEX_NEW = 0,           /* first time this SOP Instance UID is indexed */
    STO_INDEX_IDENTICAL = 1,     /* same SOP Instance UID, same bytes: nothing changed */
    STO_INDEX_NEW_VERSION = 2,   /* same UID, different bytes: this one is now current */
    STO_INDEX_OLDER_VERSION = 3, /* same UID, different bytes, received earlier (reindex) */
};

typedef struct sto_instance_rec {
    const dcm_attrs *a;
    const char *sha;       /* 64 hex: object name */
    uint64_t size;         /* file size in bytes */
    const char *hospital;  /* source (sending) hospital id */
    const char *source_ae; /* calling AE title ("" for HTTP) */
    long long received_ms; /* ms since the epoch */
    /* the study's owner as admitted (sto_index_admit); NULL: the sync commit
     * admits first, as hospital (with hub_derived) */
    const char *owner;
    int hub_derived; /* sent by the hub's own hospital, derived SOP class */
    int receipt;     /* a live receipt: an identical resend is recorded */
} sto_instance_rec;

/* What a commit found besides its outcome. */
typedef struct sto_index_result {
    enum sto_index_outcome outcome;
    int patient_conflict; /* patient attributes differ from the study's (kept) */
    char detail[256];     /* what differs, e.g. "PatientName study 'A' instance 'B'" */
} sto_index_result;

/* 1 for SOP classes the hub's own hospital may add to any hospital's study
 * without owning it (decision 0009): structured reports, key object
 * selection, presentation states, encapsulated documents, segmentations. */
int sto_sop_class_derived(const char *sop_class);

/* Redis endpoint parsed from "redis://host:port[/db]" or "unix:///path". */
typedef struct sto_redis_addr {
    char host[256]; /* or socket path when unix */
    int port;       /* 0 = unix socket */
    int db;
} sto_redis_addr;

/* 0 or HR_ECONFIG. */
int sto_redis_addr_parse(const char *url, sto_redis_addr *out);

/* Sync: connects with a timeout (ms); NULL on failure with *err set. The
 * caller frees with redisFree. */
redisContext *sto_index_connect_sync(const sto_redis_addr *addr, int timeout_ms, int *err);
/* Async: starts a connection to addr attached to loop, with ac->data = data
 * and the two callbacks set, and arms the caller's connect watchdog: the timer
 * (initialised by the caller, owned by it) runs on_timeout after timeout_ms,
 * where the caller calls sto_redis_async_expire(). hiredis 0.14's libuv
 * adapter drops the poll error of a refused TCP connect, so without the
 * watchdog a connect callback may never run. Returns the context (hiredis
 * owns and frees it after a failed connect or a disconnect callback), or
 * NULL with the reason in err (cap bytes) when the connection cannot start;
 * the watchdog is then not armed. */
redisAsyncContext *sto_redis_async_connect(uv_loop_t *loop, const sto_redis_addr *addr, void *data,
                                           redisConnectCallback *on_connect,
                                           redisDisconnectCallback *on_disconnect,
                                           uv_timer_t *watchdog, uv_timer_cb on_timeout,
                                           uint64_t timeout_ms, char *err, size_t cap);
/* The watchdog's check: when *ac is still connecting it is given up (freed,
 * no callback runs), *ac becomes NULL and 1 is returned (the caller logs and
 * connects again); 0 when *ac is NULL or connected. */
int sto_redis_async_expire(redisAsyncContext **ac);
/* Ends a connection: one still connecting is freed at once (no callback
 * runs; *ac becomes NULL, returns 1), a connected one is disconnected (its
 * disconnect callback runs later; returns 0). NULL *ac: 1. */
int sto_redis_async_close(redisAsyncContext **ac);

/* For work on the libuv thread pool: this thread's own sync connection,
 * made on first use and kept (hiredis contexts are not thread-safe). NULL when
 * Redis is unreachable. After a command on it fails, call
 * sto_worker_redis_failed() so the next call reconnects. */
#define STO_WORKER_REDIS_TIMEOUT_S 10 /* per command; then the call fails with HR_EREDIS */
redisContext *sto_worker_redis(const sto_redis_addr *addr, int timeout_ms);
void sto_worker_redis_failed(void);

/* Admission of an object into its study (decision 0009): the study belongs
 * to the hospital of its first object; another hospital may not add to it,
 * except the hub's own hospital adding a derived object (hub_derived). Sync
 * form: 0 with owner (cap 64) set, HR_EFORBIDDEN (owner set to the study's
 * owner), HR_EREDIS. */
int sto_index_admit_sync(redisContext *c, const char *study, const char *hospital, int hub_derived,
                         char owner[64]);

/* Sync commit (reindex, reconciliation). Admits first when r->owner is NULL.
 * 0 with *res set (res may be NULL), or HR_EFORBIDDEN / HR_EREDIS /
 * HR_EMISSING / HR_ETOOBIG. */
int sto_index_commit_sync(redisContext *c, const sto_instance_rec *r, sto_index_result *res);
/* Deletes every key of the index (hr:*, except user accounts, sessions and
 * worklist state, which the objects cannot rebuild:
 * hr:users, hr:user:*, hr:tok:*, hr:wl:*) with SCAN + UNLINK. 0 or HR_EREDIS. */
int sto_index_flush_sync(redisContext *c, long long *deleted);

/* Async index client on a libuv loop; reconnects by itself (every 500 ms)
 * after Redis goes away. A Redis that stops answering is given up after
 * STO_INDEX_DEADLINE_MS (checked every second): the connection is dropped and
 * every waiting admission and commit fails with HR_EREDIS. */
#define STO_INDEX_DEADLINE_MS 5000
typedef struct sto_index sto_index;

/* res is valid during the call only; NULL when rc != 0. */
typedef void (*sto_index_cb)(void *arg, int rc, const sto_index_result *res);
/* owner is valid during the call only ("" when rc is HR_EREDIS). */
typedef void (*sto_admit_cb)(void *arg, int rc, const char *owner);

/* Starts connecting; *out is usable at once (commits fail with HR_EREDIS until
 * connected). Free with sto_index_close. */
int sto_index_open(uv_loop_t *loop, const sto_redis_addr *addr, sto_index **out);
/* Checkpoints (hr:meta:checkpoint, decision 0002) are written only once
 * enabled: after start-up reconciliation has succeeded. */
void sto_index_enable_checkpoints(sto_index *ix);
/* 1 while connected and ready. */
int sto_index_ready(const sto_index *ix);
/* Admission (as sto_index_admit_sync): cb runs exactly once on the loop with
 * 0, HR_EFORBIDDEN or HR_EREDIS (possibly before this returns). */
void sto_index_admit(sto_index *ix, const char *study, const char *hospital, int hub_derived,
                     sto_admit_cb cb, void *arg);
/* Commits r (r->owner must be set: admit first); cb runs exactly once on
 * the loop (possibly before this returns when not connected). Nothing in r
 * is referenced after the call returns. */
void sto_index_commit(sto_index *ix, const sto_instance_rec *r, sto_index_cb cb, void *arg);
/* Number of redis errors seen (connection losses, failed commands). */
uint64_t sto_index_errors(const sto_index *ix);
/* Disconnects; pending callbacks run with HR_EREDIS. Frees ix once its
 * handles are closed (run the loop). */
void sto_index_close(sto_index *ix);

#endif
