#include "redis_proc.h"
#include "index.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 1024
#define N_ARGS   24

struct sto_redis_proc {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_timer_t restart;
    char server[PATH_CAP], dir[PATH_CAP], fsync_mode[16];
    int running;
    int proc_open; /* process handle not yet closed */
    int stopping;
    void (*stop_cb)(void *);
    void *stop_arg;
};

typedef struct redis_argv {
    char sock[PATH_CAP], pid[PATH_CAP], log[PATH_CAP];
    char *argv[N_ARGS];
} redis_argv;

void sto_redis_socket_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/redis.sock", dir);
}

static void build_argv(const sto_redis_opts *o, redis_argv *a)
{
    int i = 0;
    sto_redis_socket_path(o->dir, a->sock, sizeof(a->sock));
    snprintf(a->pid, sizeof(a->pid), "%s/redis.pid", o->dir);
    snprintf(a->log, sizeof(a->log), "%s/redis.log", o->dir);
    a->argv[i++] = (char *)o->server;
    a->argv[i++] = "--port";
    a->argv[i++] = "0";
    a->argv[i++] = "--unixsocket";
    a->argv[i++] = a->sock;
    a->argv[i++] = "--unixsocketperm";
    a->argv[i++] = "700";
    a->argv[i++] = "--dir";
    a->argv[i++] = (char *)o->dir;
    a->argv[i++] = "--appendonly";
    a->argv[i++] = "yes";
    a->argv[i++] = "--appendfsync";
    a->argv[i++] = (char *)o->appendfsync;
    a->argv[i++] = "--save";
    a->argv[i++] = "";
    a->argv[i++] = "--daemonize";
    a->argv[i++] = "no";
    a->argv[i++] = "--pidfile";
    a->argv[i++] = a->pid;
    a->argv[i++] = "--logfile";
    a->argv[i++] = a->log;
    a->argv[i] = NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A redis-server left behind by a huren that was killed: stop it, it holds
 * the AOF and the socket. */
static void stop_stale(const char *dir)
{
    char path[PATH_CAP], comm[PATH_CAP], name[64] = "";
    snprintf(path, sizeof(path), "%s/redis.pid", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1)
        return;
    snprintf(comm, sizeof(comm), "/proc/%ld/comm", pid);
    f = fopen(comm, "r");
    if (!f)
        return;
    if (!fgets(name, sizeof(name), f))
        name[0] = '\0';
    fclose(f);
    if (strncmp(name, "redis-server", 12) != 0)
        return;
    hr_warn("redis", "stopping redis-server %ld left by a previous run", pid);
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
        sleep_ms(100);
    if (kill((pid_t)pid, 0) == 0)
        kill((pid_t)pid, SIGKILL);
    for (int i = 0; i < 50 && kill((pid_t)pid, 0) == 0; i++)
        sleep_ms(100);
}

static int wait_ping(const char *sock, int timeout_ms)
{
    sto_redis_addr a = {.port = 0};
    int err;
    snprintf(a.host, sizeof(a.host), "%s", sock);
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        redisContext *c = sto_index_connect_sync(&a, 1000, &err);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        sleep_ms(50);
    }
    return HR_EREDIS;
}

static int prepare_dir(const char *dir)
{
    if (mkdir(dir, 0700) && errno != EEXIST)
        return -errno;
    stop_stale(dir);
    return 0;
}

static int spawn(sto_redis_proc *p);
static void on_proc_closed(uv_handle_t *h);

static void on_timer_closed(uv_handle_t *h)
{
    sto_redis_proc *p = h->data;
    if (p->stop_cb)
        p->stop_cb(p->stop_arg);
    free(p);
}

static void on_restart(uv_timer_t *t)
{
    spawn(t->data); /* a failure closes the handle and re-arms this timer */
}

/* The process handle is closed after every exit; the timer lives until stop. */
static void on_proc_closed(uv_handle_t *h)
{
    sto_redis_proc *p = h->data;
    p->proc_open = 0;
    if (p->stopping)
        uv_close((uv_handle_t *)&p->restart, on_timer_closed);
    else
        uv_timer_start(&p->restart, on_restart, 1000, 0);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    sto_redis_proc *p = proc->data;
    p->running = 0;
    if (!p->stopping)
        hr_error("redis",
                 "embedded redis-server exited (status %lld, signal %d); restarting in 1 s",
                 (long long)status, sig);
    uv_close((uv_handle_t *)proc, on_proc_closed);
}

static int spawn(sto_redis_proc *p)
{
    redis_argv a;
    sto_redis_opts o = {p->server, p->dir, p->fsync_mode};
    build_argv(&o, &a);
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t opt = {
        .file = p->server, .args = a.argv, .exit_cb = on_exit_cb, .stdio_count = 3, .stdio = stdio};
    p->proc.data = p;
    int rc = uv_spawn(p->loop, &p->proc, &opt);
    if (rc) {
        hr_error("redis", "cannot start %s: %s", p->server, uv_strerror(rc));
        /* libuv requires closing a failed spawn; on_proc_closed then retries
         * (or, when stopping, frees) so the handle is never reused while closing */
        p->proc_open = 1;
        uv_close((uv_handle_t *)&p->proc, on_proc_closed);
        return rc;
    }
    p->running = 1;
    p->proc_open = 1;
    return 0;
}

int sto_redis_proc_start(uv_loop_t *loop, const sto_redis_opts *opts, int timeout_ms,
                         sto_redis_proc **out)
{
    int rc = prepare_dir(opts->dir);
    if (rc)
        return rc;
    sto_redis_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    snprintf(p->server, sizeof(p->server), "%s", opts->server);
    snprintf(p->dir, sizeof(p->dir), "%s", opts->dir);
    snprintf(p->fsync_mode, sizeof(p->fsync_mode), "%s", opts->appendfsync);
    uv_timer_init(loop, &p->restart);
    p->restart.data = p;
    rc = spawn(p);
    if (rc) {
        p->stopping = 1; /* on_proc_closed frees p once the loop runs */
        return rc;
    }
    char sock[PATH_CAP];
    sto_redis_socket_path(opts->dir, sock, sizeof(sock));
    /* the exit callback cannot run while we block here, so poll the pid */
    rc = wait_ping(sock, timeout_ms);
    if (rc) {
        hr_error("redis", "redis-server did not answer within %d ms (see %s/redis.log)", timeout_ms,
                 opts->dir);
        sto_redis_proc_stop(p, NULL, NULL);
        return rc;
    }
    *out = p;
    return 0;
}

void sto_redis_proc_stop(sto_redis_proc *p, void (*cb)(void *), void *arg)
{
    p->stopping = 1;
    p->stop_cb = cb;
    p->stop_arg = arg;
    uv_timer_stop(&p->restart);
    if (p->running) {
        uv_process_kill(&p->proc, SIGTERM); /* on_exit_cb -> on_proc_closed frees */
        return;
    }
    if (p->proc_open)
        return; /* on_proc_closed sees stopping and frees */
    uv_close((uv_handle_t *)&p->restart, on_timer_closed);
}

int sto_redis_start_blocking(const sto_redis_opts *opts, int timeout_ms)
{
    int rc = prepare_dir(opts->dir);
    if (rc)
        return rc;
    redis_argv a;
    build_argv(opts, &a);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* dies with its parent: a crashed reindex or test leaves no orphan */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp(opts->server, a.argv);
        _exit(127);
    }
    rc = wait_ping(a.sock, timeout_ms);
    if (rc) {
        sto_redis_stop_blocking(pid, 2000);
        return rc;
    }
    return pid;
}

void sto_redis_stop_blocking(int pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
