/* huren serve: the hub process. One libuv loop; blocking work on its pool. */
#include "cli.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../gateway/alert_notify.h"
#include "../gateway/deliver.h"
#include "../gateway/dicom_server.h"
#include "../gateway/hl7_server.h"
#include "../reports/lab.h"
#include "../reports/person.h"
#include "../reports/alr_config.h"
#include "../reports/dlv_config.h"
#include "../reports/report.h"
#include "../storage/index.h"
#include "../storage/ingest.h"
#include "../storage/keys.h"
#include "../storage/redis_proc.h"
#include "../storage/reindex.h"
#include "../viewer-api/http.h"
#include "../viewer-api/sse.h"
#include "../worklist/worklist.h"

#include <hiredis/async.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define WL_SWEEP_MS       250  /* the sweeper's period */
#define WL_SWEEP_MAX      200  /* deadlines applied per wl_sweep call */
#define WL_SWEEP_ROUNDS   10   /* calls per tick at most */
#define WL_SUB_RETRY_MS   500  /* reconnect delay of the subscription */
#define WL_SUB_CONNECT_MS 2000 /* ... and its connect timeout */

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
    gw_hl7_server *hl7; /* the MLLP listener (decision 0037); NULL once stopped */
    lab_ctx *lab;       /* lab results over HL7 (decision 0035); NULL once closed */
    va_server *http;
    uv_signal_t sigint, sigterm;
    int stopping;
    /* worklist: arrivals (ingest hook), the sweeper, SSE wake-ups */
    uv_timer_t sweep_timer;
    uv_work_t sweep_work;
    int sweep_busy;
    wl_sweep_stats sweep_st;
    int sweep_rc, sweep_logged;
    gw_deliver *deliver;     /* report delivery (decision 0026); NULL once stopped */
    int deliver_join;        /* the stop reached the index's close and waits for the sender */
    gw_alert_notify *alerts; /* critical-value notifier (decision 0040); NULL once stopped */
    redisAsyncContext *sub;  /* SUBSCRIBE WL_NOTIFY_CHANNEL */
    uv_timer_t sub_retry;
    int sub_logged;
    /* persons linked at ingest (decision 0027); pool threads: __atomic */
    uint64_t person_links, person_link_failures, person_numbers_invalid;
} serve_state;

static void on_redis_stopped(void *arg)
{
    hr_info("serve", "stopped");
}

static void on_audit_closed(void *arg)
{
    serve_state *s = arg;
    if (s->deliver || s->alerts) {
        /* the senders' pool jobs use the index's Redis: wait for them */
        s->deliver_join = 1;
        return;
    }
    sto_index_close(s->sto.index);
    s->sto.index = NULL;
    if (s->redis)
        sto_redis_proc_stop(s->redis, on_redis_stopped, s);
    else
        uv_stop(s->loop); /* connections cut after the grace period may remain */
}

static void on_ingest_pool_closed(void *arg);

static void on_http_stopped(void *arg)
{
    serve_state *s = arg;
    s->http = NULL;
    if (s->sto.pool) {
        /* no new ingest after DICOM and HTTP stopped; a job it cancels runs
         * on libuv's pool instead (storage/ingest.c) */
        hr_pool_close(s->sto.pool, on_ingest_pool_closed, s);
        return;
    }
    if (s->sto.audit) {
        sto_audit_close(s->sto.audit, on_audit_closed, s);
        s->sto.audit = NULL;
    } else {
        on_audit_closed(s);
    }
}

static void on_ingest_pool_closed(void *arg)
{
    serve_state *s = arg;
    s->sto.pool = NULL;
    on_http_stopped(s);
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

/* The HL7 side stops first (its messages in flight are answered by the lab
 * ingest, which needs the ingest pool and the index), then DICOM, HTTP and
 * the rest. */
static void on_lab_closed(void *arg)
{
    serve_state *s = arg;
    s->lab = NULL;
    if (s->dicom)
        gw_dicom_server_stop(s->dicom, on_dicom_stopped, s);
    else
        on_dicom_stopped(s);
}

static void on_hl7_stopped(void *arg)
{
    serve_state *s = arg;
    s->hl7 = NULL;
    if (s->lab)
        lab_close(s->lab, on_lab_closed, s);
    else
        on_lab_closed(s);
}

static void stop_listeners(serve_state *s)
{
    if (s->hl7)
        gw_hl7_server_stop(s->hl7, on_hl7_stopped, s);
    else
        on_hl7_stopped(s);
}

/* The MLLP listener's handler: each complete message into the lab ingest,
 * with the hospital of the peer's address. */
static int hl7_ingest(void *ctx, const uint8_t *msg, size_t len, const gw_hl7_peer *peer,
                      gw_hl7_reply_cb reply, void *arg)
{
    lab_source src = {.hospital = peer->hospital, .peer = peer->peer};
    return lab_ingest(ctx, msg, len, &src, reply, arg);
}

/* Opens the lab ingest (its journal under <data>/journal/lab) and the MLLP
 * listener. 0, or 1 after saying on stderr why. */
static int hl7_start(serve_state *s)
{
    char dir[HR_PATH_MAX + 32], node[64] = "node";
    if (!s->cfg.hl7.enabled) {
        hr_info("serve", "HL7 (MLLP) listener off (hl7.enabled is false)");
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/journal", s->cfg.data_dir);
    if (mkdir(dir, 0750) && errno != EEXIST) {
        fprintf(stderr, "huren: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/journal/%s", s->cfg.data_dir, LAB_JOURNAL_NAME);
    if (gethostname(node, sizeof(node) - 1) != 0)
        snprintf(node, sizeof(node), "node");
    lab_opts o = {.loop = s->loop,
                  .cfg = &s->cfg,
                  .redis_addr = s->sto.redis_addr,
                  .redis_timeout_ms = s->cfg.redis.connect_timeout_ms,
                  .pool = s->sto.pool,
                  .journal_dir = dir,
                  .node = node,
                  .hub_facility = s->cfg.hl7.facility};
    int rc = lab_open(&o, &s->lab);
    if (rc) {
        fprintf(stderr, "huren: cannot open the lab journal %s: %s\n", dir, hr_strerror(rc));
        s->lab = NULL;
        return 1;
    }
    gw_hl7_handler h = {.ingest = hl7_ingest, .ctx = s->lab};
    rc = gw_hl7_server_start(s->loop, &s->cfg, &h, &s->hl7);
    if (rc) {
        fprintf(stderr, "huren: cannot listen for HL7 (MLLP) on %s:%d: %s\n", s->cfg.hl7.host,
                s->cfg.hl7.port, uv_strerror(rc));
        s->hl7 = NULL;
        return 1;
    }
    return 0;
}

/* /metrics lines of the DICOM and HL7 sides, the event streams and the worklist hook */
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
    n = snprintf(text, sizeof(text),
                 "# TYPE huren_dicom_connections gauge\nhuren_dicom_connections %d\n"
                 "# TYPE huren_dicom_connections_refused_total counter\n",
                 st->connections_open);
    for (int r = 0; r < GW_REFUSALS && n > 0 && (size_t)n < sizeof(text); r++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "huren_dicom_connections_refused_total{reason=\"%s\"} %llu\n",
                      gw_refusal_name((enum gw_refusal)r),
                      (unsigned long long)st->connections_refused[r]);
    if (n > 0)
        hr_buf_append(out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
    n = snprintf(text, sizeof(text),
                 "# TYPE huren_person_links_total counter\nhuren_person_links_total %llu\n"
                 "# TYPE huren_person_link_failures_total counter\n"
                 "huren_person_link_failures_total %llu\n"
                 "# TYPE huren_person_numbers_invalid_total counter\n"
                 "huren_person_numbers_invalid_total %llu\n",
                 (unsigned long long)__atomic_load_n(&s->person_links, __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&s->person_link_failures, __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&s->person_numbers_invalid, __ATOMIC_RELAXED));
    if (n > 0)
        hr_buf_append(out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
    if (s->deliver)
        gw_deliver_metrics(s->deliver, out);
    if (s->alerts)
        gw_alert_notify_metrics(s->alerts, out);
    if (s->hl7)
        gw_hl7_server_metrics(s->hl7, out);
    if (!s->http)
        return;
    int streams;
    uint64_t held, events;
    va_sse_stats(s->http, &streams, &held, &events);
    n = snprintf(text, sizeof(text),
                 "# TYPE huren_sse_streams gauge\nhuren_sse_streams %d\n"
                 "# TYPE huren_sse_held_bytes gauge\nhuren_sse_held_bytes %llu\n"
                 "# TYPE huren_sse_events_total counter\nhuren_sse_events_total %llu\n"
                 "# TYPE huren_ingest_worklist_failures_total counter\n"
                 "huren_ingest_worklist_failures_total %llu\n",
                 streams, (unsigned long long)held, (unsigned long long)events,
                 (unsigned long long)s->sto.hook_failures);
    if (n > 0)
        hr_buf_append(out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* ---- worklist wiring: arrivals, sweeper, notifications ---- */

/* One accepted object on its way to the worklist: wl_arrive on the pool
 * between the index commit and the acknowledgement (sto_ctx.after_index). */
typedef struct arrive_job {
    hr_pool_job pjob; /* on the ingest pool (s->sto.pool) */
    uv_work_t work;   /* ... or libuv's once that is closing */
    serve_state *s;
    const dcm_attrs *a;       /* borrowed from the ingest until done() */
    const sto_ingest_meta *m; /* same */
    int status;               /* enum sto_ingest_status so far */
    int patient_conflict;     /* flagged by the index */
    char owner[64];           /* the study's owning hospital */
    sto_hook_done_cb done;
    void *token;
    int rc;
} arrive_job;

/* The worklist's view of an indexed object (pkey: STO_PKEY_MAX bytes for the
 * patient key; hospital: the study's owner). */
static void make_arrival(const dcm_attrs *a, const char *hospital, const char *source_ae,
                         long long now_ms, int repeat, char *pkey, wl_arrival *arr)
{
    sto_patient_key(a, hospital, pkey); /* the patient key of the index */
    /* no Requested Procedure Description in the scanned attributes: Study
     * Description is usually filled from it (IHE scheduled workflow) */
    *arr = (wl_arrival){
        .study = a->study_instance_uid,
        .sop_class = a->sop_class_uid,
        .modality = a->modality,
        .body_part = a->body_part,
        .procedure = a->study_description,
        .hospital = hospital,
        .calling_ae = source_ae,
        .patient = pkey,
        .patient_name = a->patient_name,
        .accession = a->accession_number,
        .study_date = a->study_date,
        .now_ms = now_ms,
        .repeat = repeat,
    };
}

/* The patient of an indexed object and its person (decision 0027): linked
 * through the number the sender's hospital puts in its objects, and the
 * study added to the person's. A failure is logged and counted, never
 * refused: the next instance of the patient, start-up reconciliation or
 * POST /api/v1/persons/link link it again. */
static void person_arrive(serve_state *s, redisContext *c, const dcm_attrs *a,
                          const char *source_hospital, const char *pkey, long long now_ms)
{
    rpt_arrival_result ar;
    int rc = rpt_person_arrive(c, &s->cfg, a, source_hospital, pkey, now_ms, &ar);
    if (ar.invalid) {
        __atomic_fetch_add(&s->person_numbers_invalid, 1, __ATOMIC_RELAXED);
        hr_debug("persons", "%s: the number in the object is not valid; not linked",
                 a->study_instance_uid);
    }
    if (ar.linked)
        __atomic_fetch_add(&s->person_links, 1, __ATOMIC_RELAXED);
    if (rc) {
        __atomic_fetch_add(&s->person_link_failures, 1, __ATOMIC_RELAXED);
        hr_warn("persons",
                "%s: patient not linked to its person (%s); retried by its next "
                "instance",
                a->study_instance_uid,
                rc == -EEXIST ? "linked to another person" : hr_strerror(rc));
    }
}

static void arrive_run(arrive_job *j)
{
    serve_state *s = j->s;
    char pkey[STO_PKEY_MAX];
    wl_arrival arr;
    long long now = hr_wall_ms();
    /* a resend (IDENTICAL) is no new instance */
    make_arrival(j->a, j->owner, j->m->source_ae, now, j->status == STO_IDENTICAL, pkey, &arr);
    arr.patient_conflict = j->patient_conflict;
    redisContext *c = sto_worker_redis(&s->sto.redis_addr, s->sto.redis_timeout_ms);
    j->rc = c ? wl_arrive(c, &s->cfg, &arr, NULL) : HR_EREDIS;
    if (j->rc == HR_EREDIS)
        sto_worker_redis_failed();
    if (j->rc == 0)
        person_arrive(s, c, j->a, j->m->hospital, pkey, now);
}

static void arrive_done(arrive_job *j)
{
    if (j->rc)
        hr_warn("worklist", "%s: arrival not recorded (%s); the sender is asked to retry",
                j->a->study_instance_uid, hr_strerror(j->rc));
    j->done(j->token, j->rc);
    free(j);
}

static void arrive_uv_run(uv_work_t *w)
{
    arrive_run(w->data);
}

static void arrive_uv_done(uv_work_t *w, int status)
{
    arrive_done(w->data);
}

static void arrive_pool_run(hr_pool_job *pj)
{
    arrive_run(pj->data);
}

static int arrive_on_libuv(arrive_job *j)
{
    j->work.data = j;
    return uv_queue_work(j->s->loop, &j->work, arrive_uv_run, arrive_uv_done);
}

static void arrive_pool_done(hr_pool_job *pj, int status)
{
    arrive_job *j = pj->data;
    if (status == -ECANCELED && arrive_on_libuv(j) == 0)
        return; /* the ingest pool closed before the job ran */
    if (status == -ECANCELED)
        j->rc = -ECANCELED;
    arrive_done(j);
}

static void on_after_index(void *arg, const dcm_attrs *a, const sto_ingest_meta *m,
                           const sto_ingest_result *res, sto_hook_done_cb done, void *token)
{
    serve_state *s = arg;
    arrive_job *j = calloc(1, sizeof(*j));
    if (!j) {
        done(token, -ENOMEM);
        return;
    }
    j->s = s;
    j->a = a;
    j->m = m;
    j->status = res->status;
    j->patient_conflict = res->patient_conflict;
    snprintf(j->owner, sizeof(j->owner), "%s", res->owner[0] ? res->owner : m->hospital);
    j->done = done;
    j->token = token;
    j->pjob.data = j;
    /* on the ingest pool too: it is on the way to the acknowledgement */
    if (s->sto.pool &&
        hr_pool_submit(s->sto.pool, &j->pjob, arrive_pool_run, arrive_pool_done) == 0)
        return;
    if (arrive_on_libuv(j) != 0) {
        free(j);
        done(token, -ENOMEM);
        return;
    }
}

static void sweep_run(uv_work_t *w)
{
    serve_state *s = w->data;
    int rc = 0, retried = 0;
    memset(&s->sweep_st, 0, sizeof(s->sweep_st));
    redisContext *c = sto_worker_redis(&s->sto.redis_addr, s->sto.redis_timeout_ms);
    if (!c) {
        s->sweep_rc = HR_EREDIS;
        return;
    }
    /* wl_sweep logs each escalation (hr_warn "escalation") itself */
    for (int i = 0; i < WL_SWEEP_ROUNDS; i++) {
        wl_sweep_stats st = {0, 0, 0};
        rc = wl_sweep(c, hr_wall_ms(), WL_SWEEP_MAX, &st);
        if (rc == HR_EREDIS && !retried) {
            /* this thread's connection may be stale (Redis restarted since
             * its last use): one more try on a new one; sweeps are safe to
             * repeat */
            retried = 1;
            sto_worker_redis_failed();
            c = sto_worker_redis(&s->sto.redis_addr, s->sto.redis_timeout_ms);
            if (!c)
                break;
            i--;
            continue;
        }
        if (rc)
            break;
        s->sweep_st.completed += st.completed;
        s->sweep_st.expired += st.expired;
        s->sweep_st.overdue += st.overdue;
        if (st.completed < WL_SWEEP_MAX && st.expired < WL_SWEEP_MAX && st.overdue < WL_SWEEP_MAX)
            break;
    }
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    s->sweep_rc = rc;
}

static void sweep_done(uv_work_t *w, int status)
{
    serve_state *s = w->data;
    s->sweep_busy = 0;
    if (s->sweep_rc) {
        if (!s->sweep_logged)
            hr_warn("worklist", "deadline sweep failed: %s; retrying", hr_strerror(s->sweep_rc));
        s->sweep_logged = 1;
        return;
    }
    if (s->sweep_logged)
        hr_info("worklist", "deadline sweeps work again");
    s->sweep_logged = 0;
    const wl_sweep_stats *st = &s->sweep_st;
    if (st->completed || st->expired || st->overdue)
        hr_debug("worklist", "sweep: %d studies complete, %d leases expired, %d overdue",
                 st->completed, st->expired, st->overdue);
}

static void on_sweep_tick(uv_timer_t *t)
{
    serve_state *s = t->data;
    if (s->sweep_busy || s->stopping)
        return;
    s->sweep_busy = 1;
    s->sweep_work.data = s;
    if (uv_queue_work(s->loop, &s->sweep_work, sweep_run, sweep_done) != 0)
        s->sweep_busy = 0;
}

/* Every node subscribes to the worklist's notifications: any node's change
 * wakes this node's event streams. */
static void sub_connect(serve_state *s);

/* The retry timer, also the connect watchdog: hiredis 0.14's libuv adapter
 * drops the poll error of a refused TCP connect, so a connection that is
 * not up in time is given up and made again. */
static void on_sub_retry(uv_timer_t *t)
{
    serve_state *s = t->data;
    if (s->sub) {
        if (!sto_redis_async_expire(&s->sub))
            return; /* connected */
        if (!s->sub_logged)
            hr_warn("worklist", "cannot subscribe to event notifications: connect timed out; "
                                "retrying");
        s->sub_logged = 1;
    }
    sub_connect(s);
}

static void sub_schedule(serve_state *s)
{
    if (!s->stopping)
        uv_timer_start(&s->sub_retry, on_sub_retry, WL_SUB_RETRY_MS, 0);
}

static void on_notify(redisAsyncContext *ac, void *reply, void *priv)
{
    serve_state *s = priv;
    redisReply *r = reply;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return; /* NULL: the context is being freed */
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        if (s->sub_logged)
            hr_info("worklist", "event notifications subscribed again");
        s->sub_logged = 0;
    }
    /* a message, or a (re)subscription after which missed events are read */
    if (s->http && !s->stopping)
        va_sse_wake(s->http);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    serve_state *s = ac->data;
    uv_timer_stop(&s->sub_retry);
    if (status != REDIS_OK) {
        s->sub = NULL; /* hiredis frees the context after this callback */
        if (!s->sub_logged)
            hr_warn("worklist", "cannot subscribe to event notifications: %s; retrying",
                    ac->errstr);
        s->sub_logged = 1;
        sub_schedule(s);
        return;
    }
    redisAsyncCommand(s->sub, on_notify, s, "SUBSCRIBE %s", WL_NOTIFY_CHANNEL);
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    serve_state *s = ac->data;
    s->sub = NULL;
    if (s->stopping)
        return;
    if (!s->sub_logged)
        hr_warn("worklist", "lost the event notification subscription; reconnecting");
    s->sub_logged = 1;
    sub_schedule(s);
}

static void sub_connect(serve_state *s)
{
    char err[128];
    if (s->stopping)
        return;
    s->sub =
        sto_redis_async_connect(s->loop, &s->sto.redis_addr, s, on_sub_connect, on_sub_disconnect,
                                &s->sub_retry, on_sub_retry, WL_SUB_CONNECT_MS, err, sizeof(err));
    if (!s->sub) {
        if (!s->sub_logged)
            hr_warn("worklist", "cannot subscribe to event notifications: %s; retrying", err);
        s->sub_logged = 1;
        sub_schedule(s);
    }
}

static void worklist_start(serve_state *s)
{
    uv_timer_init(s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_start(&s->sweep_timer, on_sweep_tick, WL_SWEEP_MS, WL_SWEEP_MS);
    uv_timer_init(s->loop, &s->sub_retry);
    s->sub_retry.data = s;
    sub_connect(s);
}

static void worklist_stop(serve_state *s)
{
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_close((uv_handle_t *)&s->sub_retry, NULL);
    sto_redis_async_close(&s->sub); /* connected: on_sub_disconnect runs later */
    if (s->http)
        va_sse_close_all(s->http);
}

/* The report sender stops beside DICOM and HTTP (what it abandons is retried
 * after its lease, by this node after a restart or by another one); a pool
 * job of its that waits on a frozen Redis must not delay their graceful stop.
 * The index and Redis are closed only once it has stopped. */
static void on_deliver_stopped(void *arg)
{
    serve_state *s = arg;
    s->deliver = NULL;
    if (s->deliver_join && !s->alerts)
        on_audit_closed(s);
}

static void on_alerts_stopped(void *arg)
{
    serve_state *s = arg;
    s->alerts = NULL;
    if (s->deliver_join && !s->deliver)
        on_audit_closed(s);
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
    worklist_stop(s);
    if (s->deliver)
        gw_deliver_stop(s->deliver, on_deliver_stopped, s);
    if (s->alerts)
        gw_alert_notify_stop(s->alerts, on_alerts_stopped, s);
    stop_listeners(s);
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

/* An object reconciliation re-indexed: its worklist arrival may have been lost
 * with the same second of Redis' AOF. Its receive time keeps the quiet period
 * and turnaround honest; repeat=0 since Redis had lost the instance. */
static int reconciled_arrival(void *arg, redisContext *c, const dcm_attrs *a, const char *hospital,
                              const char *source_ae, long long received_ms)
{
    serve_state *s = arg;
    char pkey[STO_PKEY_MAX];
    wl_arrival arr;
    make_arrival(a, hospital, source_ae, received_ms, 0, pkey, &arr);
    int rc = wl_arrive(c, &s->cfg, &arr, NULL);
    if (rc == 0)
        person_arrive(s, c, a, hospital, pkey, received_ms);
    return rc;
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
    int rc = sto_reconcile_hook(&s->sto.store, c, s->cfg.dicom.hospital, &st, &full,
                                reconciled_arrival, s);
    /* worklist items routed before the listing indexes (decision 0015): index
     * them now rather than 1000 per listing */
    long left = 1, upgraded_rounds = 0;
    while (!rc && left > 0 && upgraded_rounds++ < 1000000)
        rc = wl_upgrade(c, &s->cfg, 1000, &left);
    if (upgraded_rounds > 1)
        hr_info("serve", "worklist items of before decision 0015 indexed (%ld rounds)",
                upgraded_rounds - 1);
    /* signed report versions the index lost with the same second (decision 0024) */
    rpt_reconcile_stats rs;
    if (!rc)
        rc = rpt_reconcile(c, &s->cfg, 0, &rs);
    if (!rc && (rs.applied || rs.refused || rs.corrupt || rs.errors))
        hr_warn("serve",
                "reconciled signed report versions: %lld records examined, %lld restored, "
                "%lld not applicable, %lld corrupt, %lld unreadable",
                rs.files, rs.applied, rs.refused, rs.corrupt, rs.errors);
    else if (!rc)
        hr_info("serve", "reconciled signed report versions: %lld records examined, none lost",
                rs.files);
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

/* 1 when objects/ holds an object (one of its 256 directories has an entry). */
static int objects_exist(const char *objects)
{
    char dir[HR_PATH_MAX + 8];
    for (int i = 0; i < 256; i++) {
        snprintf(dir, sizeof(dir), "%s/%02x", objects, i);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        int any = 0;
        while (!any && (e = readdir(d)) != NULL)
            any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        if (any)
            return 1;
    }
    return 0;
}

/* The person-id key (decision 0027): loaded, or made at the first start;
 * never made once data exists (objects, or an index with studies, patients
 * or persons), since links made under the lost key could no longer be found.
 * Checked against the index's record of it. 0, or 1 after saying on stderr
 * why huren cannot start. */
static int persons_key(serve_state *s)
{
    pix_config *p = s->cfg.persons;
    int created = 0, err = 0, has = 0;
    redisContext *c = sto_index_connect_sync(&s->addr, s->cfg.redis.connect_timeout_ms, &err);
    int rc = rpt_person_key_open(s->cfg.data_dir, 0, p->key, &created);
    if (rc == HR_ENOTFOUND) {
        const char *what = NULL;
        if (objects_exist(s->sto.store.objects))
            what = "objects";
        else if (!c || rpt_person_index_has_data(c, &has))
            what = NULL, rc = HR_EREDIS;
        else if (has)
            what = "an index";
        if (what) {
            fprintf(stderr,
                    "huren: %s/%s is missing, but %s holds %s: persons were linked under that "
                    "key, and a new key would not find them. Restore the key file from a "
                    "backup (32 bytes, mode 0600); huren does not start without it\n",
                    s->cfg.data_dir, RPT_PIX_KEY_FILE, s->cfg.data_dir, what);
            goto fail;
        }
        if (rc == HR_EREDIS) {
            fprintf(stderr,
                    "huren: %s/%s is missing and Redis is not reachable to tell whether the "
                    "index holds data: not making a new person-id key; start again once Redis "
                    "is up\n",
                    s->cfg.data_dir, RPT_PIX_KEY_FILE);
            goto fail;
        }
        rc = rpt_person_key_open(s->cfg.data_dir, 1, p->key, &created);
    }
    if (rc) {
        fprintf(stderr, "huren: cannot use the person-id key %s/%s: %s\n", s->cfg.data_dir,
                RPT_PIX_KEY_FILE, hr_strerror(rc));
        goto fail;
    }
    if (created)
        hr_info("serve", "made the person-id key %s/%s (back it up)", s->cfg.data_dir,
                RPT_PIX_KEY_FILE);
    rc = c ? rpt_person_key_check(c, p->key) : HR_EREDIS;
    if (rc == HR_EMISMATCH) {
        fprintf(stderr,
                "huren: %s/%s is not the key the index's persons were linked with: restore "
                "the right key file; huren does not start with another\n",
                s->cfg.data_dir, RPT_PIX_KEY_FILE);
        goto fail;
    }
    if (rc)
        hr_warn("serve", "could not compare the person-id key with the index's (%s)",
                hr_strerror(rc));
    p->have_key = 1;
    if (c)
        redisFree(c);
    return 0;
fail:
    if (c)
        redisFree(c);
    return 1;
}

/* File descriptors the configured limits can hold open at once (decision
 * 0012): admitted DICOM connections (up to twice max_associations); per
 * association an ingest temp file, an outbound C-MOVE/C-GET association and
 * the object it sends; per HTTP connection its socket and one file; per
 * report delivery under way a socket, a temp file and its converted copy
 * (decision 0026); per critical-value notification under way a socket
 * (decision 0040); per MLLP connection its socket, and the lab journal, when
 * hl7.enabled (decision 0037); Redis connections (one per pool thread, the loop's own);
 * a file per pool thread; the process' own (stdio, loop, signals, lock,
 * audit log, the embedded redis' pipes). A quarter more as margin. */
static rlim_t fds_needed(const hr_config *c)
{
    rlim_t assoc = (rlim_t)c->dicom.max_associations, http = (rlim_t)c->http.max_connections;
    rlim_t dlv = c->delivery ? (rlim_t)c->delivery->batch : 0;
    /* the critical-value notifier: one socket per HL7 / webhook attempt */
    rlim_t alr = c->alerts ? (rlim_t)c->alerts->batch : 0;
    /* the MLLP listener's connections and the lab journal, when it runs */
    rlim_t hl7 = c->hl7.enabled ? (rlim_t)c->hl7.max_connections + 8 : 0;
    rlim_t n = 2 * assoc + 3 * assoc + 2 * http + 3 * dlv + alr + hl7 + 32 /* redis */ +
               16 /* pool */ + 64 /* own */;
    return n + n / 4;
}

/* Raises the soft RLIMIT_NOFILE to fds_needed(), within the hard limit. 0, or
 * 1 after saying on stderr why huren cannot start. */
static int raise_fd_limit(const hr_config *c)
{
    struct rlimit rl;
    rlim_t need = fds_needed(c), was;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        hr_warn("serve", "cannot read the open-file limit: %s", strerror(errno));
        return 0;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        hr_debug("serve", "open-file limit %llu (%llu needed)", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)need);
        return 0;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "huren: this configuration needs %llu open files (dicom.max_associations %d, "
                "http.max_connections %d, Redis, files), but the hard limit is %llu: raise it "
                "(ulimit -Hn, systemd LimitNOFILE=, docker --ulimit nofile=) or lower "
                "dicom.max_associations / http.max_connections / delivery.batch\n",
                (unsigned long long)need, c->dicom.max_associations, c->http.max_connections,
                (unsigned long long)rl.rlim_max);
        return 1;
    }
    was = rl.rlim_cur;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "huren: cannot raise the open-file limit from %llu to %llu: %s\n",
                (unsigned long long)was, (unsigned long long)need, strerror(errno));
        return 1;
    }
    hr_info("serve", "open-file limit raised from %llu to %llu, what the configuration needs",
            (unsigned long long)was, (unsigned long long)need);
    return 0;
}

int cli_serve(int argc, char **argv)
{
    static serve_state s;
    int rc, removed = 0, lock_fd = -1;
    rc = cli_load_config(argc, argv, "usage: huren serve [--config FILE]", &s.cfg, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    /* before anything is opened or spawned: the embedded redis inherits it */
    if (raise_fd_limit(&s.cfg)) {
        hr_config_free(&s.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* libuv's pool serves queries, retrievals, the audit log and sidecars;
     * durable ingest has its own (decision 0019) */
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
    /* the person-id key before reconciliation, which links persons too */
    int no_key = persons_key(&s);
    /* reconcile before any new checkpoint can overwrite the surviving one */
    rc = no_key ? 0 : reconcile(&s);
    sto_index_open(s.loop, addr, &s.sto.index);
    uv_timer_init(s.loop, &s.reconcile_timer);
    s.reconcile_timer.data = &s;
    if (no_key) {
        uv_close((uv_handle_t *)&s.reconcile_timer, NULL);
        on_dicom_stopped(&s); /* closes the audit log, the index, the embedded redis */
        uv_run(s.loop, UV_RUN_DEFAULT);
        return 1;
    }
    if (rc == 0) {
        sto_index_enable_checkpoints(s.sto.index);
    } else {
        hr_warn("serve", "start-up reconciliation could not run (%s); retrying every 5 s",
                hr_strerror(rc));
        uv_timer_start(&s.reconcile_timer, on_reconcile_timer, 5000, 5000);
    }
    s.sto.redis_addr = *addr;
    s.sto.redis_timeout_ms = s.cfg.redis.connect_timeout_ms;
    /* every accepted object reaches the worklist before it is acknowledged */
    s.sto.after_index = on_after_index;
    s.sto.after_index_arg = &s;
    /* durable ingest's own workers: a flood of HTTP work on libuv's pool
     * cannot queue ahead of an fsync or a worklist arrival (decision 0019) */
    hr_pool_opts io = {.name = "ingest",
                       .threads = STO_INGEST_THREADS,
                       .max_jobs = 1 << 20, /* one job per object in progress: never reached */
                       .on_thread_exit = sto_worker_redis_failed};
    rc = hr_pool_start(s.loop, &io, &s.sto.pool);
    if (rc) {
        hr_warn("serve", "cannot start the ingest threads (%s); ingest uses libuv's pool",
                hr_strerror(rc));
        s.sto.pool = NULL;
    }
    wait_index_ready(&s, s.cfg.redis.connect_timeout_ms);
    if (!sto_index_ready(s.sto.index))
        hr_warn("serve", "redis is not reachable yet; C-STORE answers A700 until it is");

    /* signals before any port opens: whoever sees a port open may stop us at
     * once (a background process inherits SIGINT ignored, so a SIGINT before
     * libuv's handler was lost and huren ran on). The loop does not run
     * before the servers are up, so on_signal always finds them. */
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    rc = gw_dicom_server_start(s.loop, &s.cfg, &s.sto, &s.dicom);
    if (rc) {
        fprintf(stderr, "huren: cannot listen for DICOM on %s:%d: %s\n", s.cfg.dicom.listen.host,
                s.cfg.dicom.listen.port, uv_strerror(rc));
        uv_close((uv_handle_t *)&s.sigint, NULL);
        uv_close((uv_handle_t *)&s.sigterm, NULL);
        uv_close((uv_handle_t *)&s.reconcile_timer, NULL);
        on_dicom_stopped(&s); /* closes the index and stops the embedded redis */
        uv_run(s.loop, UV_RUN_DEFAULT);
        return 1;
    }
    rc = hl7_start(&s);
    if (!rc) {
        rc = va_server_start(s.loop, &s.cfg, &s.sto, dicom_metrics, &s, &s.http);
        if (rc)
            fprintf(stderr, "huren: cannot serve HTTP on %s:%d: %s\n", s.cfg.http.listen.host,
                    s.cfg.http.listen.port,
                    rc == HR_ECONFIG ? "TLS certificate or key unusable" : uv_strerror(rc));
    }
    if (rc) {
        s.stopping = 1;
        uv_close((uv_handle_t *)&s.sigint, NULL);
        uv_close((uv_handle_t *)&s.sigterm, NULL);
        uv_close((uv_handle_t *)&s.reconcile_timer, NULL);
        stop_listeners(&s);
        uv_run(s.loop, UV_RUN_DEFAULT);
        return 1;
    }
    worklist_start(&s);
    rc = gw_deliver_start(s.loop, &s.cfg, &s.sto, &s.deliver);
    if (rc) {
        hr_warn("serve", "cannot start the report sender (%s); reports are not delivered",
                hr_strerror(rc));
        s.deliver = NULL;
    }
    rc = gw_alert_notify_start(s.loop, &s.cfg, &s.sto, &s.alerts);
    if (rc) {
        hr_warn("serve", "cannot start the critical-value notifier (%s)", hr_strerror(rc));
        s.alerts = NULL;
    }

    printf("huren: DICOM listening on %s:%d, AE title %s\n", s.cfg.dicom.listen.host,
           s.cfg.dicom.listen.port, s.cfg.dicom.ae_title);
    if (s.hl7)
        printf("huren: HL7 (MLLP) listening on %s:%d\n", s.cfg.hl7.host, s.cfg.hl7.port);
    printf("huren: HTTP listening on %s:%d (DICOMweb at /dicomweb)\n", s.cfg.http.listen.host,
           s.cfg.http.listen.port);
    printf("huren: open %s://%s:%d/ in a browser (the pages; OHIF at /viewer/)\n",
           s.cfg.http.tls_cert[0] ? "https" : "http",
           strcmp(s.cfg.http.listen.host, "0.0.0.0") == 0 ? "127.0.0.1" : s.cfg.http.listen.host,
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
