/* The embedded, private redis-server huren starts when no Redis URL is
 * configured: unix socket <dir>/redis.sock only (no TCP), AOF on, data in
 * <dir>. A redis left running by a crashed huren (pid file) is stopped first. */
#ifndef STO_REDIS_PROC_H
#define STO_REDIS_PROC_H

#include <uv.h>

typedef struct sto_redis_opts {
    const char *server;      /* redis-server binary (PATH lookup) */
    const char *dir;         /* working dir, created if missing */
    const char *appendfsync; /* "always" or "everysec" */
} sto_redis_opts;

/* Socket path for dir into out (cap). */
void sto_redis_socket_path(const char *dir, char *out, size_t cap);

/* Supervised by the loop: restarted (after 1 s) if it exits unexpectedly. */
typedef struct sto_redis_proc sto_redis_proc;

/* Stops a stale instance, spawns redis-server and waits (blocking, up to
 * timeout_ms) until it answers PING. 0, -errno or HR_EREDIS. opts strings are
 * copied. */
int sto_redis_proc_start(uv_loop_t *loop, const sto_redis_opts *opts, int timeout_ms,
                         sto_redis_proc **out);
/* Asks redis to shut down (SIGTERM: it finishes the AOF) and frees p when
 * the child has exited and handles are closed; cb (may be NULL) runs then. */
void sto_redis_proc_stop(sto_redis_proc *p, void (*cb)(void *), void *arg);

/* For one-shot commands (reindex) without a supervising loop: starts redis
 * the same way and returns its pid (> 0) or a negative error. */
int sto_redis_start_blocking(const sto_redis_opts *opts, int timeout_ms);
/* SIGTERM and wait (up to timeout_ms, then SIGKILL). */
void sto_redis_stop_blocking(int pid, int timeout_ms);

#endif
