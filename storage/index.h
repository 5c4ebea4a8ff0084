/* The Redis index of stored instances (key schema: docs/index-schema.md).
 * One Lua script commits one instance atomically: instance, series, study,
 * patient and the secondary indexes. The same argument builder serves the
 * async path (ingest, hiredis on the libuv loop) and the sync path (reindex). */
#ifndef STO_INDEX_H
#define STO_INDEX_H

#include "../dicom/dcm_attrs.h"

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
    const char *hospital;  /* source hospital id */
    const char *source_ae; /* calling AE title ("" for HTTP) */
    long long received_ms; /* ms since the epoch */
} sto_instance_rec;

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
/* For work on the libuv thread pool: this thread's own sync connection,
 * made on first use and kept (hiredis contexts are not thread-safe). NULL when
 * Redis is unreachable. After a command on it fails, call
 * sto_worker_redis_failed() so the next call reconnects. */
#define STO_WORKER_REDIS_TIMEOUT_S 10 /* per command; then the call fails with HR_EREDIS */
redisContext *sto_worker_redis(const sto_redis_addr *addr, int timeout_ms);
void sto_worker_redis_failed(void);

/* Sync commit (reindex). 0 with *outcome set, or HR_EREDIS / HR_EMISSING. */
int sto_index_commit_sync(redisContext *c, const sto_instance_rec *r,
                          enum sto_index_outcome *outcome);
/* Deletes every key of the index (hr:*, except user accounts, sessions and
 * worklist state, which the objects cannot rebuild:
 * hr:users, hr:user:*, hr:tok:*, hr:wl:*) with SCAN + UNLINK. 0 or HR_EREDIS. */
int sto_index_flush_sync(redisContext *c, long long *deleted);

/* Async index client on a libuv loop; reconnects by itself (every 500 ms)
 * after Redis goes away. */
typedef struct sto_index sto_index;

typedef void (*sto_index_cb)(void *arg, int rc, enum sto_index_outcome outcome);

/* Starts connecting; *out is usable at once (commits fail with HR_EREDIS until
 * connected). Free with sto_index_close. */
int sto_index_open(uv_loop_t *loop, const sto_redis_addr *addr, sto_index **out);
/* Checkpoints (hr:meta:checkpoint, decision 0002) are written only once
 * enabled: after start-up reconciliation has succeeded. */
void sto_index_enable_checkpoints(sto_index *ix);
/* 1 while connected and ready. */
int sto_index_ready(const sto_index *ix);
/* Commits r; cb runs exactly once on the loop (possibly before this returns
 * when not connected). Nothing in r is referenced after the call returns. */
void sto_index_commit(sto_index *ix, const sto_instance_rec *r, sto_index_cb cb, void *arg);
/* Number of redis errors seen (connection losses, failed commands). */
uint64_t sto_index_errors(const sto_index *ix);
/* Disconnects; pending callbacks run with HR_EREDIS. Frees ix once its
 * handles are closed (run the loop). */
void sto_index_close(sto_index *ix);

#endif
