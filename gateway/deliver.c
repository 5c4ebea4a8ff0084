/* The report sender (deliver.h): poll, prepare, send, record. */
#include "deliver.h"
#include "mllp_client.h"
#include "webhook.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../storage/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_PER_POLL 100 /* outbox entries expanded per poll, at most */
#define CLAIMS_MAX      1000

enum { JOB_PREPARE, JOB_FINISH };

typedef struct dlv_attempt dlv_attempt;

struct gw_deliver {
    uv_loop_t *loop;
    const hr_config *cfg;
    const struct dlv_config *dc;
    sto_redis_addr redis;
    int redis_timeout_ms;
    char tmp_dir[HR_PATH_MAX + 8];
    uv_timer_t timer;
    gw_webhook *wh;
    /* the poll step on the pool */
    uv_work_t poll_work;
    int poll_busy;
    int poll_rc;
    int want;              /* claims asked for */
    rpt_dlv_claim *claims; /* dc->batch of them */
    int n_claims;
    int taken; /* outbox entries expanded */
    rpt_dlv_stats gauges, poll_gauges;
    int gauges_ok;
    /* attempts, from their claim to their recorded result */
    dlv_attempt *head;
    int n_attempts;
    int jobs; /* pool jobs under way (poll, prepare, finish) */
    /* counters of this node */
    uint64_t delivered[RPT_DLV_CHANNELS], failed[RPT_DLV_CHANNELS];
    uint64_t poll_errors, record_errors;
    int poll_logged;
    /* stop */
    int stopping, handles;
    void (*stopped)(void *);
    void *stopped_arg;
};

struct dlv_attempt {
    gw_deliver *d;
    dlv_attempt *prev, *next;
    rpt_dlv_claim cl;
    const dlv_hospital *h;
    uv_work_t work;
    int job;
    /* prepared on the pool */
    int prep_rc;
    hr_buf msg;      /* HL7: the ORU; webhook: the compact JWS */
    char status[24]; /* the version's status (webhook header) */
    gw__dlv_dicom *dicom;
    /* sending */
    gw_mllp_client *mllp;
    gw_webhook_xfer *xfer;
    int sending;
    int cancelled; /* abandoned by a stop: nothing is recorded */
    uint64_t started_ms;
    /* the result */
    int ok;
    char detail[RPT_DLV_DETAIL_MAX];
    int finish_rc;
    rpt_dlv_outcome outcome;
};

static void maybe_stopped(gw_deliver *d);
static void record(dlv_attempt *a, int ok, const char *detail);

/* ---- attempts ---- */

static dlv_attempt *attempt_new(gw_deliver *d, const rpt_dlv_claim *cl)
{
    dlv_attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->d = d;
    a->cl = *cl;
    a->h = rpt_dlv_config_hospital(d->dc, cl->hospital);
    hr_buf_init(&a->msg, RPT_ORU_MAX + (1u << 20));
    a->work.data = a;
    a->next = d->head;
    if (d->head)
        d->head->prev = a;
    d->head = a;
    d->n_attempts++;
    return a;
}

static void attempt_free(dlv_attempt *a)
{
    gw_deliver *d = a->d;
    if (a->prev)
        a->prev->next = a->next;
    else
        d->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    d->n_attempts--;
    hr_buf_free(&a->msg);
    free(a);
}

static redisContext *worker_redis(gw_deliver *d)
{
    return sto_worker_redis(&d->redis, d->redis_timeout_ms);
}

/* The hub's public base URL: delivery.report_base_url without trailing
 * slashes, else http://<http.listen>:<http.port> (IPv6 in brackets). */
static void base_url(const hr_config *cfg, char *out, size_t cap)
{
    const char *base = cfg->delivery->report_base_url;
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    if (n) {
        snprintf(out, cap, "%.*s", (int)n, base);
        return;
    }
    const char *h = cfg->http.listen.host;
    if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0)
        h = "127.0.0.1";
    snprintf(out, cap, strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h,
             cfg->http.listen.port);
}

/* OBR-24 (HL7 Table 0074) of the center that read the exam. */
static const char *diag_section(const hr_config *cfg, const char *center)
{
    const hr_center *c = hr_config_center(cfg, center);
    if (!c)
        return "";
    switch (c->kind) {
    case HR_CENTER_IMAGING:
        return "RAD";
    case HR_CENTER_ECG:
        return "EC";
    case HR_CENTER_PATHOLOGY:
        return "SP";
    case HR_CENTER_LAB:
        return "LAB";
    }
    return "";
}

/* Pool: reads the version and builds what the channel sends. */
static void prepare(dlv_attempt *a, redisContext *c)
{
    gw_deliver *d = a->d;
    const hr_config *cfg = d->cfg;
    rpt_version v;
    char base[DLV_URL_MAX + HR_ADDR_MAX + 16], url[sizeof(base) + RPT_ID_MAX + 64],
        verify[sizeof(url)];
    memset(&v, 0, sizeof(v));
    int on = !a->h                              ? 0
             : a->cl.channel == RPT_DLV_HL7     ? a->h->hl7.on
             : a->cl.channel == RPT_DLV_DICOM   ? a->h->dicom.on
             : a->cl.channel == RPT_DLV_WEBHOOK ? a->h->webhook.on
                                                : 0;
    if (!on) {
        /* the configuration changed since it was queued: it waits (never
         * dropped) until the channel is configured again */
        a->prep_rc = HR_ECONFIG;
        snprintf(a->detail, sizeof(a->detail), "delivery.hospitals.%s.%s is not configured",
                 a->cl.hospital, rpt_dlv_channel_name(a->cl.channel));
        return;
    }
    if (!c) {
        a->prep_rc = HR_EREDIS;
        snprintf(a->detail, sizeof(a->detail), "index unavailable");
        return;
    }
    int rc = rpt_version_get(c, a->cl.report, a->cl.version, &v);
    if (rc) {
        if (rc == HR_EREDIS)
            sto_worker_redis_failed();
        a->prep_rc = rc;
        snprintf(a->detail, sizeof(a->detail), "cannot read the version: %s", hr_strerror(rc));
        goto out;
    }
    snprintf(a->status, sizeof(a->status), "%s", rpt_status_name(v.status));
    /* the JWS (ORU), and the verification URL printed on the PDF: the same
     * as GET .../versions/<k>/pdf prints (decision 0025) */
    base_url(cfg, base, sizeof(base));
    snprintf(url, sizeof(url), "%s/api/v1/reports/%s/versions/%d/jws", base, a->cl.report,
             a->cl.version);
    snprintf(verify, sizeof(verify), "%s/verify?report=%s&v=%d&d=%.16s", base, a->cl.report,
             a->cl.version, v.digest);
    switch (a->cl.channel) {
    case RPT_DLV_HL7: {
        const char *center =
            json_string_value(json_object_get(json_object_get(v.payload, "exam"), "center"));
        rpt_oru_params p = {.sending_facility = cfg->dicom.hospital,
                            .receiving_application = a->h->hl7.receiving_application,
                            .receiving_facility = a->h->hl7.receiving_facility,
                            .control_id = a->cl.control_id,
                            .now_ms = hr_wall_ms(),
                            .report_url = url,
                            .diag_section = diag_section(cfg, center ? center : "")};
        rc = rpt_oru_build(v.payload, &p, &a->msg);
        if (rc)
            snprintf(a->detail, sizeof(a->detail), "cannot build the ORU: %s", hr_strerror(rc));
        break;
    }
    case RPT_DLV_WEBHOOK:
        rc = hr_buf_append(&a->msg, v.jws, strlen(v.jws));
        if (rc)
            snprintf(a->detail, sizeof(a->detail), "JWS too large: %s", hr_strerror(rc));
        break;
    case RPT_DLV_DICOM:
        rc = gw__dlv_dicom_prepare(cfg, d->tmp_dir, c, &v, a->h, verify, &a->dicom, a->detail,
                                   sizeof(a->detail));
        break;
    default:
        rc = -EINVAL;
    }
    a->prep_rc = rc;
out:
    rpt_version_free(&v);
}

/* Pool: records the result. */
static void finish(dlv_attempt *a, redisContext *c)
{
    gw_deliver *d = a->d;
    gw__dlv_dicom_cleanup(a->dicom);
    a->dicom = NULL;
    if (a->cancelled)
        return;
    if (!c) {
        a->finish_rc = HR_EREDIS;
        return;
    }
    a->finish_rc =
        rpt_delivery_finish(c, d->dc, &a->cl, a->ok, a->detail, hr_wall_ms(), &a->outcome);
    if (a->finish_rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void job_run(uv_work_t *w)
{
    dlv_attempt *a = w->data;
    redisContext *c = worker_redis(a->d);
    if (a->job == JOB_PREPARE)
        prepare(a, c);
    else
        finish(a, c);
}

static void send_attempt(dlv_attempt *a);

static void job_done(uv_work_t *w, int status)
{
    dlv_attempt *a = w->data;
    gw_deliver *d = a->d;
    d->jobs--;
    if (a->job == JOB_PREPARE) {
        if (d->stopping) {
            a->cancelled = 1;
            record(a, 0, "abandoned: huren is stopping");
        } else if (a->prep_rc) {
            record(a, 0, a->detail);
        } else {
            send_attempt(a);
        }
    } else {
        const char *ch = rpt_dlv_channel_name(a->cl.channel);
        if (a->cancelled) {
            /* its lease runs out; another attempt follows */
        } else if (a->finish_rc) {
            d->record_errors++;
            hr_warn("delivery",
                    "%s: the result of attempt %d (%s: %s) could not be recorded (%s); it is "
                    "attempted again when its lease ends",
                    a->cl.id, a->cl.attempts + 1, a->ok ? "delivered" : "failed", a->detail,
                    hr_strerror(a->finish_rc));
        } else if (a->ok) {
            d->delivered[a->cl.channel]++;
            hr_info("delivery", "%s delivered to %s by %s (attempt %d): %s", a->cl.id,
                    a->cl.hospital, ch, a->outcome.attempts, a->detail);
        } else {
            d->failed[a->cl.channel]++;
            hr_warn("delivery", "%s to %s by %s: attempt %d failed (%s); next in %lld s%s",
                    a->cl.id, a->cl.hospital, ch, a->outcome.attempts, a->detail,
                    (a->outcome.next_ms - hr_wall_ms() + 999) / 1000,
                    a->outcome.failing ? " (failing)" : "");
        }
        attempt_free(a);
        maybe_stopped(d);
    }
}

static void queue_job(dlv_attempt *a, int job)
{
    gw_deliver *d = a->d;
    a->job = job;
    if (uv_queue_work(d->loop, &a->work, job_run, job_done) == 0) {
        d->jobs++;
        return;
    }
    /* cannot happen with a valid loop; the lease runs out */
    hr_error("delivery", "%s: cannot queue work", a->cl.id);
    attempt_free(a);
    maybe_stopped(d);
}

/* The channel's outcome (or a preparation failure): recorded on the pool. */
static void record(dlv_attempt *a, int ok, const char *detail)
{
    a->sending = 0;
    a->ok = ok;
    if (detail != a->detail)
        snprintf(a->detail, sizeof(a->detail), "%s", detail);
    queue_job(a, JOB_FINISH);
}

/* ---- channels ---- */

static void on_mllp(void *arg, int rc, const rpt_hl7_ack *ack, const char *detail)
{
    dlv_attempt *a = arg;
    a->mllp = NULL;
    if (rc == -ECANCELED)
        a->cancelled = 1;
    record(a, rc == 0, detail);
}

static void on_webhook(void *arg, int rc, long status, const char *detail)
{
    dlv_attempt *a = arg;
    a->xfer = NULL;
    if (rc == -ECANCELED)
        a->cancelled = 1;
    record(a, rc == 0 && status >= 200 && status < 300, detail);
}

static void on_dicom(void *arg, int ok, const char *detail)
{
    dlv_attempt *a = arg;
    record(a, ok, detail);
}

static void send_attempt(dlv_attempt *a)
{
    gw_deliver *d = a->d;
    int rc = -EINVAL;
    a->sending = 1;
    a->started_ms = uv_now(d->loop);
    switch (a->cl.channel) {
    case RPT_DLV_HL7: {
        gw_mllp_params p = {.host = a->h->hl7.host,
                            .port = a->h->hl7.port,
                            .msg = a->msg.data,
                            .len = a->msg.len,
                            .control_id = a->cl.control_id,
                            .timeout_ms = d->dc->hl7_timeout_s * 1000};
        rc = gw_mllp_send(d->loop, &p, on_mllp, a, &a->mllp);
        break;
    }
    case RPT_DLV_WEBHOOK: {
        char h_report[RPT_ID_MAX + 32], h_version[48], h_status[64], h_id[RPT_DLV_ID_MAX + 32];
        snprintf(h_report, sizeof(h_report), "X-Huren-Report: %s", a->cl.report);
        snprintf(h_version, sizeof(h_version), "X-Huren-Version: %d", a->cl.version);
        snprintf(h_status, sizeof(h_status), "X-Huren-Status: %s", a->status);
        snprintf(h_id, sizeof(h_id), "X-Huren-Delivery: %s", a->cl.id);
        gw_webhook_req q = {.url = a->h->webhook.url,
                            .content_type = "application/jose",
                            .bearer = a->h->webhook.bearer,
                            .ca_file = a->h->webhook.ca_file,
                            .headers = {h_report, h_version, h_status, h_id, NULL},
                            .body = (const char *)a->msg.data,
                            .len = a->msg.len,
                            .timeout_ms = d->dc->webhook_timeout_s * 1000};
        rc = gw_webhook_post(d->wh, &q, on_webhook, a, &a->xfer);
        break;
    }
    case RPT_DLV_DICOM:
        rc = gw__dlv_dicom_send(d->loop, d->cfg, a->dicom, a->h, d->dc->dicom_timeout_s * 1000,
                                on_dicom, a);
        break;
    default:
        break;
    }
    if (rc) {
        char why[128];
        snprintf(why, sizeof(why), "cannot start: %s", hr_strerror(rc));
        record(a, 0, why);
    }
}

/* ---- the poll ---- */

static void poll_run(uv_work_t *w)
{
    gw_deliver *d = w->data;
    long long now = hr_wall_ms();
    int rc;
    d->n_claims = 0;
    d->taken = 0;
    redisContext *c = worker_redis(d);
    if (!c) {
        d->poll_rc = HR_EREDIS;
        return;
    }
    rc = rpt_delivery_take_outbox(c, d->cfg, now, OUTBOX_PER_POLL, &d->taken);
    if (!rc)
        rc = rpt_delivery_stats(c, &d->poll_gauges);
    if (!rc && d->want > 0)
        rc = rpt_delivery_claim(c, now, d->dc->lease_s * 1000, d->want, d->claims, &d->n_claims);
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    d->poll_rc = rc;
}

static void poll_done(uv_work_t *w, int status)
{
    gw_deliver *d = w->data;
    d->poll_busy = 0;
    d->jobs--;
    if (d->poll_rc) {
        d->poll_errors++;
        d->gauges_ok = 0;
        if (!d->poll_logged)
            hr_warn("delivery", "cannot poll the delivery queue: %s; retrying",
                    hr_strerror(d->poll_rc));
        d->poll_logged = 1;
    } else {
        if (d->poll_logged)
            hr_info("delivery", "the delivery queue is reachable again");
        d->poll_logged = 0;
        d->gauges = d->poll_gauges;
        d->gauges_ok = 1;
    }
    /* claims made before an error are attempted all the same */
    for (int i = 0; i < d->n_claims; i++) {
        if (d->stopping)
            break; /* the leases run out */
        dlv_attempt *a = attempt_new(d, &d->claims[i]);
        if (!a)
            break;
        queue_job(a, JOB_PREPARE);
    }
    d->n_claims = 0;
    maybe_stopped(d);
}

static void on_tick(uv_timer_t *t)
{
    gw_deliver *d = t->data;
    if (d->poll_busy || d->stopping)
        return;
    d->want = d->dc->batch - d->n_attempts;
    if (d->want < 0)
        d->want = 0;
    d->poll_busy = 1;
    d->poll_work.data = d;
    if (uv_queue_work(d->loop, &d->poll_work, poll_run, poll_done) != 0) {
        d->poll_busy = 0;
        return;
    }
    d->jobs++;
}

/* ---- start, stop, metrics ---- */

int gw_deliver_start(uv_loop_t *loop, const hr_config *cfg, const sto_ctx *sto, gw_deliver **out)
{
    gw_deliver *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->loop = loop;
    d->cfg = cfg;
    d->dc = cfg->delivery;
    d->redis = sto->redis_addr;
    d->redis_timeout_ms = sto->redis_timeout_ms;
    snprintf(d->tmp_dir, sizeof(d->tmp_dir), "%s", sto->store.tmp);
    d->claims = calloc((size_t)d->dc->batch, sizeof(*d->claims));
    if (!d->claims) {
        free(d);
        return -ENOMEM;
    }
    int rc = gw_webhook_open(loop, &d->wh);
    if (rc) {
        free(d->claims);
        free(d);
        return rc;
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->handles = 1;
    uv_timer_start(&d->timer, on_tick, (uint64_t)d->dc->poll_ms, (uint64_t)d->dc->poll_ms);
    *out = d;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    gw_deliver *d = h->data;
    d->handles--;
    maybe_stopped(d);
}

static void on_webhook_closed(void *arg)
{
    gw_deliver *d = arg;
    d->handles--;
    maybe_stopped(d);
}

static void maybe_stopped(gw_deliver *d)
{
    if (!d->stopping || d->jobs || d->n_attempts || d->handles)
        return;
    void (*cb)(void *) = d->stopped;
    void *arg = d->stopped_arg;
    free(d->claims);
    free(d);
    if (cb)
        cb(arg);
}

void gw_deliver_stop(gw_deliver *d, void (*stopped)(void *arg), void *arg)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    d->stopped = stopped;
    d->stopped_arg = arg;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    int n = 0;
    for (dlv_attempt *a = d->head; a; a = a->next) {
        if (!a->sending)
            continue; /* preparing or recording: its job ends soon */
        n++;
        a->cancelled = 1;
        if (a->mllp)
            gw_mllp_cancel(a->mllp);
        else if (a->cl.channel == RPT_DLV_DICOM && a->dicom)
            gw__dlv_dicom_cancel(a->dicom);
    }
    if (n)
        hr_info("delivery", "stopping: %d attempts abandoned, attempted again after their lease",
                n);
    /* cancels the webhook transfers (their callbacks run now) */
    d->handles++;
    gw_webhook_close(d->wh, on_webhook_closed, d);
    d->wh = NULL;
}

void gw_deliver_metrics(gw_deliver *d, hr_buf *out)
{
    char t[2048];
    long long now = hr_wall_ms();
    const rpt_dlv_stats *g = &d->gauges;
    long long oldest = g->oldest_pending_ms && now > g->oldest_pending_ms
                           ? (now - g->oldest_pending_ms) / 1000
                           : 0;
    int n = snprintf(t, sizeof(t),
                     "# TYPE huren_deliveries_pending gauge\nhuren_deliveries_pending %lld\n"
                     "# TYPE huren_deliveries_failing gauge\nhuren_deliveries_failing %lld\n"
                     "# TYPE huren_deliveries_oldest_pending_seconds gauge\n"
                     "huren_deliveries_oldest_pending_seconds %lld\n"
                     "# TYPE huren_deliveries_outbox gauge\nhuren_deliveries_outbox %lld\n"
                     "# TYPE huren_deliveries_queue_up gauge\nhuren_deliveries_queue_up %d\n"
                     "# TYPE huren_delivery_attempts_in_flight gauge\n"
                     "huren_delivery_attempts_in_flight %d\n"
                     "# TYPE huren_deliveries_delivered_total counter\n",
                     g->pending, g->failing, oldest, g->outbox, d->gauges_ok, d->n_attempts);
    for (int c = 0; c < RPT_DLV_CHANNELS && n > 0 && (size_t)n < sizeof(t); c++)
        n += snprintf(
            t + n, sizeof(t) - (size_t)n, "huren_deliveries_delivered_total{channel=\"%s\"} %llu\n",
            rpt_dlv_channel_name((enum rpt_dlv_channel)c), (unsigned long long)d->delivered[c]);
    if (n > 0 && (size_t)n < sizeof(t))
        n += snprintf(t + n, sizeof(t) - (size_t)n,
                      "# TYPE huren_delivery_attempts_failed_total counter\n");
    for (int c = 0; c < RPT_DLV_CHANNELS && n > 0 && (size_t)n < sizeof(t); c++)
        n += snprintf(t + n, sizeof(t) - (size_t)n,
                      "huren_delivery_attempts_failed_total{channel=\"%s\"} %llu\n",
                      rpt_dlv_channel_name((enum rpt_dlv_channel)c),
                      (unsigned long long)d->failed[c]);
    if (n > 0)
        hr_buf_append(out, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}
