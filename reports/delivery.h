/* The durable delivery queue of signed report versions (decision 0026).
 *
 * The report script puts "<report id>/<version>" into hr:rpt:outbox when a
 * version becomes final, amended, corrected or entered-in-error. The queue
 * expands each entry into one delivery per channel configured for the
 * exam's source hospital (cfg->delivery), each a Redis hash with its own
 * attempt log; a global sorted set orders them by their next attempt. A
 * sender (gateway/deliver.c, on any node) claims due deliveries with a
 * short lease, attempts them, and records the result: delivered, or a
 * failure with the next attempt after a backoff doubling from
 * retry_initial_s to retry_max_s, with jitter. Nothing is ever dropped: no
 * maximum number of attempts; after failing_after failures a delivery is
 * counted as failing.
 *
 * Redis keys (hash tag {S} = the Study Instance UID of the report id;
 * docs/index-schema.md, "Report deliveries"), <n> the report number, <k>
 * the version, <ch> hl7 | dicom | webhook:
 *   hr:dlv:{S}:<n>:<k>:<ch>      hash: report version channel hospital state
 *                                (pending | delivered) attempts next_ms
 *                                created_ms delivered_ms last_ms last_error
 *                                control_id lease lease_until
 *   hr:dlv:{S}:<n>:<k>:<ch>:log  list: one entry per event, oldest first,
 *                                last RPT_DLV_LOG_KEEP: "<ms>\t<outcome>\t
 *                                <attempt>\t<detail>"
 *   hr:dlv:{S}:<n>               zset: "<k>:<ch>" of the report's
 *                                deliveries, score = created_ms
 *   hr:dlv:due                   zset: "<report id>/<k>/<ch>" of pending
 *                                deliveries, score = next attempt (ms), or
 *                                the lease end while one is being attempted
 *   hr:dlv:pending               zset: the same members, score = created_ms
 *   hr:dlv:failing               zset: pending ones with >= failing_after
 *                                failures, score = the first time counted
 *
 * Every function is synchronous (hiredis): call it on the thread pool
 * (sto_worker_redis) or from the CLI. Times are ms since the epoch, passed
 * in so tests control the clock. Codes: HR_EREDIS, -EINVAL, -ENOMEM,
 * HR_ENOTFOUND. */
#ifndef RPT_DELIVERY_H
#define RPT_DELIVERY_H

#include "dlv_config.h"
#include "oru.h"
#include "report.h"

#include <hiredis/hiredis.h>

enum rpt_dlv_channel { RPT_DLV_HL7, RPT_DLV_DICOM, RPT_DLV_WEBHOOK, RPT_DLV_CHANNELS };
const char *rpt_dlv_channel_name(enum rpt_dlv_channel ch); /* "hl7" "dicom" "webhook" */
int rpt_dlv_channel_parse(const char *s);                  /* -1 when unknown */

#define RPT_DLV_LOG_KEEP   100
#define RPT_DLV_ID_MAX     (RPT_ID_MAX + 24) /* "<report id>/<version>/<channel>" */
#define RPT_DLV_DETAIL_MAX 512               /* bytes of an attempt's detail kept */
#define RPT_DLV_OUTBOX     "hr:rpt:outbox"
#define RPT_DLV_DUE        "hr:dlv:due"
#define RPT_DLV_PENDING    "hr:dlv:pending"
#define RPT_DLV_FAILING    "hr:dlv:failing"

/* The MSH-10 of the HL7 delivery of report/version: "HR" and 18 hex digits
 * of SHA-256("<report>/<version>"), the same on every attempt so that the
 * receiver can drop a resend. out cap RPT_HL7_CONTROL_ID_MAX. */
void rpt_delivery_control_id(const char *report, int version, char *out);

/* Creates the deliveries of report/version for hospital: one per channel
 * of cfg->delivery for it, pending and due now (one script; idempotent: an
 * existing delivery is left as it is), and puts the pending ones into the
 * due and pending sets. *created (may be NULL) = deliveries made now; a
 * hospital without channels gets none (0). 0, -EINVAL (bad report id or
 * version), HR_EREDIS. */
int rpt_delivery_expand(redisContext *c, const hr_config *cfg, const char *report, int version,
                        const char *hospital, long long now_ms, int *created);

/* Takes up to max entries of hr:rpt:outbox whose score is <= now_ms,
 * oldest first: reads each version (rpt_version_get) for its source
 * hospital, expands it and removes the entry. An entry whose version does
 * not exist or is not delivered (draft, preliminary) is removed with a
 * warning; one that cannot be read or expanded while the connection is fine
 * (a stored version that does not decode) stays, its score moved
 * RPT_DLV_OUTBOX_RETRY_S ahead, so that it never blocks the others.
 * *taken (may be NULL) = entries removed. 0, HR_EREDIS. */
#define RPT_DLV_OUTBOX_RETRY_S 3600
int rpt_delivery_take_outbox(redisContext *c, const hr_config *cfg, long long now_ms, int max,
                             int *taken);

/* One claimed attempt. */
typedef struct rpt_dlv_claim {
    char id[RPT_DLV_ID_MAX]; /* "<report id>/<version>/<channel>" */
    char report[RPT_ID_MAX];
    int version;
    enum rpt_dlv_channel channel;
    char hospital[HR_ID_MAX];
    char control_id[RPT_HL7_CONTROL_ID_MAX];
    int attempts; /* attempts made before this one */
    long long created_ms;
    long long lease_until_ms;
    char token[33]; /* the lease's holder: random hex */
} rpt_dlv_claim;

/* Claims up to max (1..1000) due deliveries at now_ms, each leased for
 * lease_ms: no other caller claims it before the lease ends or this one
 * finishes. Stale members of the due set (delivered, or rescheduled by a
 * node that stopped in between) are repaired on the way. out: caller's
 * array of max; *n = claimed. 0, HR_EREDIS. */
int rpt_delivery_claim(redisContext *c, long long now_ms, int lease_ms, int max, rpt_dlv_claim *out,
                       int *n);

/* Delay (ms) before the attempt after the failures-th failure (>= 1):
 * retry_initial_s x 2^(failures-1), at most retry_max_s, then scaled by
 * 0.5 + rnd / 2 (rnd in [0, 1): jitter) and at least 1000. */
long long rpt_delivery_backoff_ms(const struct dlv_config *d, int failures, double rnd);

/* What rpt_delivery_finish did. */
typedef struct rpt_dlv_outcome {
    int delivered;     /* the delivery is delivered now */
    int attempts;      /* attempts recorded */
    long long next_ms; /* next attempt (pending), 0 when delivered */
    int failing;       /* pending with >= failing_after failures */
} rpt_dlv_outcome;

/* Records the result of a claimed attempt (detail: the receiver's answer or
 * the error, cut to RPT_DLV_DETAIL_MAX, tabs and newlines replaced) in the
 * delivery and its log, and updates the sets: delivered ones leave them; a
 * failure is due again after rpt_delivery_backoff_ms. out may be NULL. 0,
 * HR_ENOTFOUND (the delivery is gone), HR_EREDIS. */
int rpt_delivery_finish(redisContext *c, const struct dlv_config *d, const rpt_dlv_claim *cl,
                        int ok, const char *detail, long long now_ms, rpt_dlv_outcome *out);

/* Gauges for /metrics. */
typedef struct rpt_dlv_stats {
    long long pending;           /* deliveries not delivered yet */
    long long failing;           /* of which failing */
    long long oldest_pending_ms; /* created_ms of the oldest pending one, 0 when none */
    long long outbox;            /* versions not expanded yet */
} rpt_dlv_stats;
/* Four O(1)/O(log N) reads. 0, HR_EREDIS. */
int rpt_delivery_stats(redisContext *c, rpt_dlv_stats *st);

/* One attempt or event of a delivery's log. */
typedef struct rpt_dlv_event {
    long long time_ms;
    char outcome[24]; /* queued delivered failed failed-late delivered-again */
    int attempt;      /* 0 for queued */
    char detail[RPT_DLV_DETAIL_MAX];
} rpt_dlv_event;

/* A delivery as stored (for the API). */
typedef struct rpt_delivery {
    char report[RPT_ID_MAX];
    int version;
    enum rpt_dlv_channel channel;
    char hospital[HR_ID_MAX];
    int delivered; /* state: delivered, else pending */
    int attempts;
    long long created_ms, next_ms, delivered_ms, last_ms;
    char last_error[RPT_DLV_DETAIL_MAX];
    int leased; /* an attempt is under way (lease not over at the time of reading) */
    size_t n_log;
    rpt_dlv_event *log; /* oldest first; owned by the callee, valid during the callback */
} rpt_delivery;

/* Calls cb for every delivery of report, by version then channel (at most
 * RPT_PER_REPORT_DLV_MAX). now_ms decides "leased". 0, -EINVAL (bad
 * report id), HR_EREDIS, -ENOMEM, or cb's non-zero value. */
#define RPT_PER_REPORT_DLV_MAX 300
int rpt_delivery_list(redisContext *c, const char *report, long long now_ms,
                      int (*cb)(void *arg, const rpt_delivery *d), void *arg);

#endif
