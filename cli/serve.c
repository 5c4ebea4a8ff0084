/* huren serve: the hub process. One libuv loop; blocking work on its pool. */
#include "cli.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../gateway/dicom_server.h"
#include "../storage/index.h"
#include "../storage/ingest.h"
#include "../storage/redis_proc.h"
#include "../storage/reindex.h"
#include "../viewer-api/http.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct serve_state {
    uv_loop_t *loop;
    sto_redis_addr addr;
    uv_timer_t reconcile_timer; /* retries a reconciliation that could not run */
    uv_work_t reconcile_work;
    int reconcile_rc;
    int reconcile_busy;
    hr_config cfg;
    sto_ctx sto;
    sto_redis_proc *redis;
    gw_dicom_server *dicom;
    va_server *http;
    uv_signal_t sigint, sigterm;
    int stopping;
} serve_state;

static void on_redis_stopped(void *arg)
{
    hr_info("serve", "stopped");
}

static void on_audit_closed(void *arg)
{
    serve_state *s = arg;
    sto_index_close(s->sto.index);
    s->sto.index = NULL;
    if (s->redis)
        sto_redis_proc_stop(s->redis, on_redis_stopped, s);
    else
        uv_stop(s->loop); /* connections cut after the grace period may remain */
}

static void on_http_stopped(void *arg)
{
    serve_state *s = arg;
    s->http = NULL;
    if (s->sto.audit) {
        sto_audit_close(s->sto.audit, on_audit_closed, s);
        s->sto.audit = NULL;
    } else {
        on_audit_closed(s);
    }
}

static void on_dicom_stopped(void *arg)
{
    serve_state *s = arg;
    s->dicom = NULL;
    if (s->http)
        va_server_stop(s->http, on_http_stopped, s);
    else
        on_http_stopped(s);
}

/* /metrics lines of the DICOM side */
static void dicom_metrics(void *arg, hr_buf *out)
{
    serve_state *s = arg;
    if (!s->dicom)
        return;
    const gw_dicom_stats *st = gw_dicom_server_stats(s->dicom);
    char text[1024];
    int n = snprintf(text, sizeof(text),
                     "# TYPE huren_dicom_associations_active gauge\n"
                     "huren_dicom_associations_active %d\n"
                     "# TYPE huren_dicom_associations_total counter\n"
                     "huren_dicom_associations_total %llu\n"
                     "# TYPE huren_dicom_associations_rejected_total counter\n"
                     "huren_dicom_associations_rejected_total %llu\n"
                     "# TYPE huren_dicom_associations_aborted_total counter\n"
                     "huren_dicom_associations_aborted_total %llu\n"
                     "# TYPE huren_dicom_stores_total counter\n"
                     "huren_dicom_stores_total{outcome=\"ok\"} %llu\n"
                     "huren_dicom_stores_total{outcome=\"failed\"} %llu\n",
                     st->associations_active, (unsigned long long)st->associations_total,
                     (unsigned long long)st->associations_rejected,
                     (unsigned long long)st->associations_aborted,
                     (unsigned long long)st->stores_ok, (unsigned long long)st->stores_failed);
    if (n > 0)
        hr_buf_append(out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve_state *s = h->data;
    if (s->stopping++) {
        hr_warn("serve", "second signal: exiting now");
        exit(1);
    }
    hr_info("serve", "signal %d: stopping", signum);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->reconcile_timer, NULL);
    gw_dicom_server_stop(s->dicom, on_dicom_stopped, s);
}

static void wait_index_ready(serve_state *s, int timeout_ms)
{
    uint64_t deadline = uv_now(s->loop) + (uint64_t)timeout_ms;
    while (!sto_index_ready(s->sto.index) && uv_now(s->loop) < deadline) {
        uv_run(s->loop, UV_RUN_NOWAIT);
        usleep(10000);
        uv_update_time(s->loop);
    }
}

/* Brings the index up to date with objects that may have been acknowledged
 * after the last checkpoint that reached Redis' disk (decision 0002). Blocking:
 * called before the loop runs, or on the thread pool. */
static int reconcile(serve_state *s)
{
    int err, full = 0;
    sto_reindex_stats st;
    redisContext *c = sto_index_connect_sync(&s->addr, s->cfg.redis.connect_timeout_ms, &err);
    if (!c)
        return HR_EREDIS;
    uint64_t t0 = uv_hrtime();
    int rc = sto_reconcile(&s->sto.store, c, &st, &full);
    redisFree(c);
    if (rc)
        return rc;
    hr_info("serve",
            "reconciled the index with %s objects in %.0f ms: %lld examined, %lld added, "
            "%lld versions, %lld corrupt",
            full ? "all" : "recent", (double)(uv_hrtime() - t0) / 1e6, st.files, st.added,
            st.versions, st.corrupt + st.errors);
    return 0;
}

static void reconcile_run(uv_work_t *w)
{
    serve_state *s = w->data;
    s->reconcile_rc = reconcile(s);
}

static void reconcile_done(uv_work_t *w, int status)
{
    serve_state *s = w->data;
    s->reconcile_busy = 0;
    if (s->reconcile_rc == 0 && s->sto.index) {
        uv_timer_stop(&s->reconcile_timer);
        sto_index_enable_checkpoints(s->sto.index);
    }
}

static void on_reconcile_timer(uv_timer_t *t)
{
    serve_state *s = t->data;
    if (s->reconcile_busy || s->stopping)
        return;
    s->reconcile_busy = 1;
    s->reconcile_work.data = s;
    uv_queue_work(s->loop, &s->reconcile_work, reconcile_run, reconcile_done);
}

int cli_serve(int argc, char **argv)
{
    static serve_state s;
    int rc, removed = 0, lock_fd = -1;
    rc = cli_load_config(argc, argv, "usage: huren serve [--config FILE]", &s.cfg, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    /* the thread pool does the fsyncs: with many associations more threads
     * let the filesystem journal group their commits (decision 0004) */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    s.loop = uv_default_loop();
    s.sto.loop = s.loop;
    s.sto.max_object_bytes = s.cfg.dicom.max_object_bytes;
    s.sto.max_feed = s.cfg.dicom.max_pdu;

    /* the lock comes first: opening the store removes temp files, which
     * must never be those of another running huren */
    if (mkdir(s.cfg.data_dir, 0750) && errno != EEXIST) {
        fprintf(stderr, "huren: cannot create data directory %s: %s\n", s.cfg.data_dir,
                strerror(errno));
        return 1;
    }
    lock_fd = cli_lock_data_dir(s.cfg.data_dir);
    if (lock_fd < 0) {
        fprintf(stderr, "huren: data directory %s is in use by another huren (%s)\n",
                s.cfg.data_dir, hr_strerror(lock_fd));
        return 1;
    }
    rc = sto_objstore_open(&s.sto.store, s.cfg.data_dir, &removed);
    if (rc) {
        fprintf(stderr, "huren: cannot use data directory %s: %s\n", s.cfg.data_dir,
                hr_strerror(rc));
        return 1;
    }
    if (removed)
        hr_info("serve", "removed %d unfinished objects left in %s (never acknowledged)", removed,
                s.sto.store.tmp);
    rc = sto_audit_open(s.loop, s.cfg.data_dir, &s.sto.audit);
    if (rc) {
        fprintf(stderr, "huren: cannot open the audit log under %s/audit: %s\n", s.cfg.data_dir,
                hr_strerror(rc));
        return 1;
    }

    sto_redis_addr *addr = &s.addr;
    if (s.cfg.redis.url[0]) {
        rc = sto_redis_addr_parse(s.cfg.redis.url, addr);
        if (rc) {
            fprintf(stderr, "huren: redis.url: cannot parse \"%s\"\n", s.cfg.redis.url);
            return 1;
        }
    } else {
        char dir[HR_PATH_MAX + 8];
        cli_redis_dir(&s.cfg, dir, sizeof(dir));
        sto_redis_opts ro = {s.cfg.redis.server, dir, s.cfg.redis.appendfsync};
        rc = sto_redis_proc_start(s.loop, &ro, s.cfg.redis.connect_timeout_ms, &s.redis);
        if (rc) {
            fprintf(stderr, "huren: cannot start the embedded redis-server (%s): %s\n",
                    s.cfg.redis.server, hr_strerror(rc));
            return 1;
        }
        memset(addr, 0, sizeof(*addr));
        sto_redis_socket_path(dir, addr->host, sizeof(addr->host));
        hr_info("serve", "embedded redis on %s (appendfsync %s)", addr->host,
                s.cfg.redis.appendfsync);
    }
    /* reconcile before any new checkpoint can overwrite the surviving one */
    rc = reconcile(&s);
    sto_index_open(s.loop, addr, &s.sto.index);
    uv_timer_init(s.loop, &s.reconcile_timer);
    s.reconcile_timer.data = &s;
    if (rc == 0) {
        sto_index_enable_checkpoints(s.sto.index);
    } else {
        hr_warn("serve", "start-up reconciliation could not run (%s); retrying every 5 s",
                hr_strerror(rc));
        uv_timer_start(&s.reconcile_timer, on_reconcile_timer, 5000, 5000);
    }
    s.sto.redis_addr = *addr;
    s.sto.redis_timeout_ms = s.cfg.redis.connect_timeout_ms;
    wait_index_ready(&s, s.cfg.redis.connect_timeout_ms);
    if (!sto_index_ready(s.sto.index))
        hr_warn("serve", "redis is not reachable yet; C-STORE answers A700 until it is");

    rc = gw_dicom_server_start(s.loop, &s.cfg, &s.sto, &s.dicom);
    if (rc) {
        fprintf(stderr, "huren: cannot listen for DICOM on %s:%d: %s\n", s.cfg.dicom.listen.host,
                s.cfg.dicom.listen.port, uv_strerror(rc));
        uv_close((uv_handle_t *)&s.reconcile_timer, NULL);
        on_dicom_stopped(&s); /* closes the index and stops the embedded redis */
        uv_run(s.loop, UV_RUN_DEFAULT);
        return 1;
    }
    rc = va_server_start(s.loop, &s.cfg, &s.sto, dicom_metrics, &s, &s.http);
    if (rc) {
        fprintf(stderr, "huren: cannot serve HTTP on %s:%d: %s\n", s.cfg.http.listen.host,
                s.cfg.http.listen.port,
                rc == HR_ECONFIG ? "TLS certificate or key unusable" : uv_strerror(rc));
        s.stopping = 1;
        uv_close((uv_handle_t *)&s.reconcile_timer, NULL);
        gw_dicom_server_stop(s.dicom, on_dicom_stopped, &s);
        uv_run(s.loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);

    printf("huren: DICOM listening on %s:%d, AE title %s\n", s.cfg.dicom.listen.host,
           s.cfg.dicom.listen.port, s.cfg.dicom.ae_title);
    printf("huren: HTTP listening on %s:%d (DICOMweb at /dicomweb)\n", s.cfg.http.listen.host,
           s.cfg.http.listen.port);
    printf("huren: data in %s; stop with Ctrl-C\n", s.cfg.data_dir);
    fflush(stdout);

    uv_run(s.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(s.loop);
    if (rc)
        hr_warn("serve", "loop closed with handles still open: %s", uv_strerror(rc));
    sto_ctx_release(&s.sto);
    hr_config_free(&s.cfg);
    close(lock_fd);
    return 0;
}
