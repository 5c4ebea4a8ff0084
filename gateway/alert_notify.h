/* The critical-value notifier of huren serve (decision 0040). A timer every
 * alerts.poll_ms runs one pool job that escalates overdue alerts
 * (alr_sweep, bounded by alerts.batch), claims due notifications
 * (alr_notice_claim) and reads the gauges; each claimed notification is
 * sent on the loop -- the HL7 ORU over MLLP (gateway/mllp_client.h) to the
 * ordering hospital's alerts.hospitals.<id>.hl7, or a JSON POST to its
 * webhook (gateway/webhook.h) -- and its result recorded in the alert's
 * step log on the pool (alr_notice_done). The SSE channel needs no sender:
 * the alert's events are on the node's event stream. A stop abandons the
 * sends under way (their notification is not retried: the alert's step
 * escalates all the same if nobody acknowledges). */
#ifndef GW_ALERT_NOTIFY_H
#define GW_ALERT_NOTIFY_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"
#include "../storage/ingest.h"

#include <uv.h>

typedef struct gw_alert_notify gw_alert_notify;

/* Starts the notifier on loop; cfg and sto must outlive it. 0, -ENOMEM, -EIO. */
int gw_alert_notify_start(uv_loop_t *loop, const hr_config *cfg, const sto_ctx *sto,
                          gw_alert_notify **out);
/* Stops; once its pool jobs have returned and its handles are closed, n is
 * freed and stopped(arg) runs. */
void gw_alert_notify_stop(gw_alert_notify *n, void (*stopped)(void *arg), void *arg);
/* Appends the /metrics lines (Prometheus text): huren_alerts_*. */
void gw_alert_notify_metrics(gw_alert_notify *n, hr_buf *out);

#endif
