/* The critical-value notifier (alert_notify.h): sweep, claim, send, record. */
#include "alert_notify.h"
#include "mllp_client.h"
#include "webhook.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../reports/alert.h"
#include "../reports/alr_config.h"
#include "../storage/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETAIL_MAX 512

typedef struct an_send an_send;

struct gw_alert_notify {
    uv_loop_t *loop;
    const hr_config *cfg;
    const struct alr_config *ac;
    sto_redis_addr redis;
    int redis_timeout_ms;
    uv_timer_t timer;
    gw_webhook *wh;
    uv_work_t poll_work;
    int poll_busy, poll_rc, poll_logged;
    int want;
    alr_notice *claims; /* ac->batch */
    int n_claims;
    int moved;
    alr_stats gauges, poll_gauges;
    int gauges_ok;
    an_send *head;
    int n_sends;
    int jobs;
    uint64_t sent_ok, sent_failed, escalated;
    int stopping, handles;
    void (*stopped)(void *);
    void *stopped_arg;
};

struct an_send {
    gw_alert_notify *n;
    an_send *prev, *next;
    alr_notice nt;
    uv_work_t work;
    hr_buf msg;
    char control_id[24];
    gw_mllp_client *mllp;
    gw_webhook_xfer *xfer;
    int sending, cancelled, ok, finish_rc;
    char detail[DETAIL_MAX];
};

static void maybe_stopped(gw_alert_notify *n);

static redisContext *worker_redis(gw_alert_notify *n)
{
    return sto_worker_redis(&n->redis, n->redis_timeout_ms);
}

static void send_free(an_send *a)
{
    gw_alert_notify *n = a->n;
    if (a->prev)
        a->prev->next = a->next;
    else
        n->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    n->n_sends--;
    alr_notice_free(&a->nt);
    hr_buf_free(&a->msg);
    free(a);
}

/* ---- recording ---- */

static void finish_run(uv_work_t *w)
{
    an_send *a = w->data;
    redisContext *c = worker_redis(a->n);
    if (a->cancelled)
        return;
    if (!c) {
        a->finish_rc = HR_EREDIS;
        return;
    }
    a->finish_rc = alr_notice_done(c, &a->nt, a->ok, a->detail, hr_wall_ms(),
                                   (long long)a->n->ac->retry_s * 1000);
    if (a->finish_rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void finish_done(uv_work_t *w, int status)
{
    an_send *a = w->data;
    gw_alert_notify *n = a->n;
    n->jobs--;
    if (!a->cancelled) {
        if (a->ok)
            n->sent_ok++;
        else
            n->sent_failed++;
        if (a->finish_rc)
            hr_warn("alert", "%s: the %s result could not be recorded: %s", a->nt.id, a->nt.channel,
                    hr_strerror(a->finish_rc));
        else
            hr_info("alert", "%s step %d %s to %s: %s (%s)", a->nt.id, a->nt.step, a->nt.channel,
                    a->nt.hospital, a->ok ? "delivered" : "failed", a->detail);
    }
    send_free(a);
    maybe_stopped(n);
}

static void record(an_send *a, int ok, const char *detail)
{
    gw_alert_notify *n = a->n;
    a->sending = 0;
    a->ok = ok;
    if (detail != a->detail)
        snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
    a->work.data = a;
    if (uv_queue_work(n->loop, &a->work, finish_run, finish_done) == 0) {
        n->jobs++;
        return;
    }
    send_free(a);
    maybe_stopped(n);
}

static void on_mllp(void *arg, int rc, const rpt_hl7_ack *ack, const char *detail)
{
    an_send *a = arg;
    a->mllp = NULL;
    if (rc == -ECANCELED)
        a->cancelled = 1;
    record(a, rc == 0, detail);
}

static void on_webhook(void *arg, int rc, long status, const char *detail)
{
    an_send *a = arg;
    a->xfer = NULL;
    if (rc == -ECANCELED)
        a->cancelled = 1;
    record(a, rc == 0 && status >= 200 && status < 300, detail);
}

/* ---- sending ---- */

static void start_send(gw_alert_notify *n, const alr_notice *nt)
{
    an_send *a = calloc(1, sizeof(*a));
    if (!a) {
        alr_notice nt2 = *nt;
        alr_notice_free(&nt2);
        return;
    }
    a->n = n;
    a->nt = *nt;
    hr_buf_init(&a->msg, 1u << 20);
    a->next = n->head;
    if (n->head)
        n->head->prev = a;
    n->head = a;
    n->n_sends++;
    const alr_hospital *h = rpt_alr_config_hospital(n->ac, nt->hospital);
    int rc = -EINVAL;
    if (nt->stale) {
        /* acknowledged, or its step is over: nothing to send nor record */
        send_free(a);
        return;
    }
    if (strcmp(nt->channel, "hl7") == 0 && h && h->hl7_on) {
        alr_control_id(nt->id, nt->step, a->control_id);
        rc = alr_oru_build(nt->alert, n->cfg->dicom.hospital, h->hl7_application, h->hl7_facility,
                           a->control_id, hr_wall_ms(), &a->msg);
        if (!rc) {
            gw_mllp_params p = {.host = h->hl7_host,
                                .port = h->hl7_port,
                                .msg = a->msg.data,
                                .len = a->msg.len,
                                .control_id = a->control_id,
                                .timeout_ms = n->ac->hl7_timeout_s * 1000};
            rc = gw_mllp_send(n->loop, &p, on_mllp, a, &a->mllp);
        }
    } else if (strcmp(nt->channel, "webhook") == 0 && h && h->webhook_on) {
        json_t *body = json_pack("{s:s, s:O}", "type", "critical_value", "alert", nt->alert);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        rc = text ? hr_buf_append(&a->msg, text, strlen(text)) : -ENOMEM;
        free(text);
        if (!rc) {
            char h_id[ALR_ID_MAX + 32], h_step[48];
            snprintf(h_id, sizeof(h_id), "X-Huren-Alert: %s", nt->id);
            snprintf(h_step, sizeof(h_step), "X-Huren-Alert-Step: %d", nt->step);
            gw_webhook_req q = {.url = h->webhook_url,
                                .content_type = "application/json",
                                .bearer = h->webhook_bearer,
                                .headers = {h_id, h_step, NULL},
                                .body = (const char *)a->msg.data,
                                .len = a->msg.len,
                                .timeout_ms = n->ac->webhook_timeout_s * 1000};
            rc = gw_webhook_post(n->wh, &q, on_webhook, a, &a->xfer);
        }
    } else {
        snprintf(a->detail, sizeof(a->detail), "alerts.hospitals.%s.%s is not configured",
                 nt->hospital, nt->channel);
        record(a, 0, a->detail);
        return;
    }
    if (rc) {
        snprintf(a->detail, sizeof(a->detail), "cannot start: %s", hr_strerror(rc));
        record(a, 0, a->detail);
        return;
    }
    a->sending = 1;
}

/* ---- the poll ---- */

static void poll_run(uv_work_t *w)
{
    gw_alert_notify *n = w->data;
    long long now = hr_wall_ms();
    int rc;
    n->n_claims = 0;
    n->moved = 0;
    redisContext *c = worker_redis(n);
    if (!c) {
        n->poll_rc = HR_EREDIS;
        return;
    }
    rc = alr_sweep(c, n->cfg, now, n->ac->batch, &n->moved);
    if (!rc && n->want > 0)
        rc = alr_notice_claim(c, now, n->want, n->claims, &n->n_claims);
    if (!rc)
        rc = alr_stats_get(c, now, &n->poll_gauges);
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    n->poll_rc = rc;
}

static void poll_done(uv_work_t *w, int status)
{
    gw_alert_notify *n = w->data;
    n->poll_busy = 0;
    n->jobs--;
    n->escalated += (uint64_t)n->moved;
    if (n->poll_rc) {
        n->gauges_ok = 0;
        if (!n->poll_logged)
            hr_warn("alert", "cannot poll the alerts: %s; retrying", hr_strerror(n->poll_rc));
        n->poll_logged = 1;
    } else {
        n->poll_logged = 0;
        n->gauges = n->poll_gauges;
        n->gauges_ok = 1;
    }
    for (int i = 0; i < n->n_claims; i++) {
        if (n->stopping)
            alr_notice_free(&n->claims[i]);
        else
            start_send(n, &n->claims[i]);
    }
    n->n_claims = 0;
    maybe_stopped(n);
}

static void on_tick(uv_timer_t *t)
{
    gw_alert_notify *n = t->data;
    if (n->poll_busy || n->stopping)
        return;
    n->want = n->ac->batch - n->n_sends;
    if (n->want < 0)
        n->want = 0;
    n->poll_busy = 1;
    n->poll_work.data = n;
    if (uv_queue_work(n->loop, &n->poll_work, poll_run, poll_done) != 0) {
        n->poll_busy = 0;
        return;
    }
    n->jobs++;
}

/* ---- start, stop, metrics ---- */

int gw_alert_notify_start(uv_loop_t *loop, const hr_config *cfg, const sto_ctx *sto,
                          gw_alert_notify **out)
{
    gw_alert_notify *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->loop = loop;
    n->cfg = cfg;
    n->ac = cfg->alerts;
    n->redis = sto->redis_addr;
    n->redis_timeout_ms = sto->redis_timeout_ms;
    n->claims = calloc((size_t)n->ac->batch, sizeof(*n->claims));
    if (!n->claims) {
        free(n);
        return -ENOMEM;
    }
    int rc = gw_webhook_open(loop, &n->wh);
    if (rc) {
        free(n->claims);
        free(n);
        return rc;
    }
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    n->handles = 1;
    uv_timer_start(&n->timer, on_tick, (uint64_t)n->ac->poll_ms, (uint64_t)n->ac->poll_ms);
    *out = n;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    gw_alert_notify *n = h->data;
    n->handles--;
    maybe_stopped(n);
}

static void on_webhook_closed(void *arg)
{
    gw_alert_notify *n = arg;
    n->handles--;
    maybe_stopped(n);
}

static void maybe_stopped(gw_alert_notify *n)
{
    if (!n->stopping || n->jobs || n->n_sends || n->handles)
        return;
    void (*cb)(void *) = n->stopped;
    void *arg = n->stopped_arg;
    free(n->claims);
    free(n);
    if (cb)
        cb(arg);
}

void gw_alert_notify_stop(gw_alert_notify *n, void (*stopped)(void *arg), void *arg)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    n->stopped = stopped;
    n->stopped_arg = arg;
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, on_timer_closed);
    for (an_send *a = n->head; a; a = a->next) {
        if (!a->sending)
            continue;
        a->cancelled = 1;
        if (a->mllp)
            gw_mllp_cancel(a->mllp);
    }
    n->handles++;
    gw_webhook_close(n->wh, on_webhook_closed, n);
    n->wh = NULL;
}

void gw_alert_notify_metrics(gw_alert_notify *n, hr_buf *out)
{
    char t[1536];
    const alr_stats *g = &n->gauges;
    int k =
        snprintf(t, sizeof(t),
                 "# TYPE huren_alerts_raised_total counter\nhuren_alerts_raised_total %lld\n"
                 "# TYPE huren_alerts_acknowledged_total counter\n"
                 "huren_alerts_acknowledged_total %lld\n"
                 "# TYPE huren_alerts_escalations_total counter\n"
                 "huren_alerts_escalations_total %lld\n"
                 "# TYPE huren_alerts_readback_refused_total counter\n"
                 "huren_alerts_readback_refused_total %lld\n"
                 "# TYPE huren_alerts_open gauge\nhuren_alerts_open %lld\n"
                 "# TYPE huren_alerts_overdue gauge\nhuren_alerts_overdue %lld\n"
                 "# TYPE huren_alerts_up gauge\nhuren_alerts_up %d\n"
                 "# TYPE huren_alert_notifications_total counter\n"
                 "huren_alert_notifications_total{outcome=\"delivered\"} %llu\n"
                 "huren_alert_notifications_total{outcome=\"failed\"} %llu\n",
                 g->raised, g->acked, g->escalations, g->readback_refused, g->open, g->overdue_now,
                 n->gauges_ok, (unsigned long long)n->sent_ok, (unsigned long long)n->sent_failed);
    if (k > 0)
        hr_buf_append(out, t, (size_t)k < sizeof(t) ? (size_t)k : sizeof(t) - 1);
}
