/* Helpers for unit tests: temp dirs and a real redis-server per test. */
#ifndef HR_TEST_SUPPORT_H
#define HR_TEST_SUPPORT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Creates a fresh directory under $TMPDIR; writes its path (cap 512). 0 or -errno. */
int ts_tmpdir(char *out);
/* rm -rf dir (bounded: only below $TMPDIR/huren-ut.*). */
void ts_rmrf(const char *dir);

/* A real redis-server on a unix socket inside dir (AOF off: speed). */
typedef struct ts_redis {
    int pid;
    char sock[600];
} ts_redis;
/* 0 when redis answers PING within 5 s. */
int ts_redis_start(ts_redis *r, const char *dir);
void ts_redis_stop(ts_redis *r);
/* Runs a redis command (printf-style) and copies the reply as text (string,
 * integer or status) into out (cap); "" for nil. 0 or -1. */
/* A sync connection to the unix socket sock (storage's one connect path,
 * sto_index_connect_sync), NULL on failure; the caller redisFree()s it. */
redisContext *ts_redis_connect(const char *sock, int timeout_ms);
int ts_redis_get(const ts_redis *r, char *out, size_t cap, const char *fmt, ...);

/* Reads a whole file (malloc'd with one spare byte, caller frees) up to 64 MB;
 * NULL on error. */
unsigned char *ts_read_file(const char *path, size_t *len);

#endif
