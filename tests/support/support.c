#include "support.h"
#include "../../storage/index.h"
#include "../../storage/redis_proc.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int ts_tmpdir(char *out)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, 512, "%s/huren-ut.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(out) ? 0 : -errno;
}

void ts_rmrf(const char *dir)
{
    if (!strstr(dir, "/huren-ut."))
        return;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int ts_redis_start(ts_redis *r, const char *dir)
{
    char rdir[560];
    snprintf(rdir, sizeof(rdir), "%s/redis", dir);
    sto_redis_opts o = {"redis-server", rdir, "everysec"};
    sto_redis_socket_path(rdir, r->sock, sizeof(r->sock));
    r->pid = sto_redis_start_blocking(&o, 5000);
    return r->pid > 0 ? 0 : -1;
}

void ts_redis_stop(ts_redis *r)
{
    if (r->pid > 0)
        sto_redis_stop_blocking(r->pid, 5000);
    r->pid = 0;
}

redisContext *ts_redis_connect(const char *sock, int timeout_ms)
{
    sto_redis_addr a = {.port = 0};
    int err;
    snprintf(a.host, sizeof(a.host), "%s", sock);
    return sto_index_connect_sync(&a, timeout_ms, &err);
}

int ts_redis_get(const ts_redis *r, char *out, size_t cap, const char *fmt, ...)
{
    redisContext *c = ts_redis_connect(r->sock, 2000);
    if (!c)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = 0;
    out[0] = '\0';
    if (!rep)
        rc = -1;
    else if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS)
        snprintf(out, cap, "%s", rep->str);
    else if (rep->type == REDIS_REPLY_INTEGER)
        snprintf(out, cap, "%lld", rep->integer);
    else if (rep->type == REDIS_REPLY_ERROR)
        rc = -1;
    freeReplyObject(rep);
    redisFree(c);
    return rc;
}

unsigned char *ts_read_file(const char *path, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 && st.st_size <= (64 << 20)) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (buf)
        *len = (size_t)st.st_size;
    return buf;
}
