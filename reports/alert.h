/* Critical values (危急值) closed loop (decision 0040).
 *
 * An alert is raised once per (exam, ref, item) -- a lab observation past a
 * critical limit, or a reader's critical-finding flag on a signed report --
 * and must be acknowledged, with a read-back of the value, by the ordering
 * (source) hospital. Its contacts are a list of steps fixed at raise time
 * from the configuration (cfg->alerts, reports/alr_config.h): the
 * hospital's contacts in order, then the reading center's duty doctor.
 * Each step has ack_timeout_s; the sweep moves an unacknowledged alert to
 * the next step (escalated) and, after the last, marks it overdue_final
 * (still open: it may be acknowledged later, counted as overdue).
 *
 * States: raised -> notified (a channel of the current step delivered) ->
 * escalated (next step; notified again) -> ... -> acknowledged, or
 * overdue_final. Every transition is one EVALSHA of alert_script.lua in
 * the exam's slot; the global indexes (below) are single-key commands
 * after it, as the delivery queue does (docs/index-schema.md, "Critical
 * value alerts").
 *
 * Redis keys ({E} = the exam UID: a study UID or a lab report's UID):
 *   hr:alr:{E}:<id>        hash: the alert (fields in docs/index-schema.md)
 *   hr:alr:{E}:<id>:log    list: the step log, JSON per entry, oldest first
 *   hr:alr:id:<id>         string: E (the slot of an id)
 *   hr:alr:ix:time         zset: every alert, score = raised ms
 *   hr:alr:ix:h:<H>        zset: alerts of ordering hospital H, score = raised ms
 *   hr:alr:ix:c:<C>        zset: alerts of reading center C, score = raised ms
 *   hr:alr:ix:u:<user>     zset: alerts where user was a step's target
 *   hr:alr:due             zset: open alerts with a step running, score = its deadline
 *   hr:alr:final           zset: overdue_final alerts still open, score = when
 *   hr:alr:notify          zset: "<id>|<step>|<channel>|<try>" to send, score = ms
 *   hr:alr:count           hash: raised acked escalations readback_refused
 *   hr:stat:<YYYYMMDD>     hash: al|r|<H> raised, al|ok|<H> acked in time,
 *                          al|late|<H> acked late, al|od|<H> went overdue_final;
 *                          al|<what>| (no hospital) the day's totals
 *
 * Every function is synchronous (hiredis): call it on the thread pool
 * (sto_worker_redis) or from the CLI. Times are ms since the epoch, passed
 * in. Codes: HR_EREDIS, -EINVAL, -ENOMEM, HR_ENOTFOUND. */
#ifndef RPT_ALERT_H
#define RPT_ALERT_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define ALR_ID_MAX       40  /* "A" + 24 hex digits + NUL, with room */
#define ALR_TEXT_MAX     512 /* bytes kept of value, detail, item_name, patient_name */
#define ALR_LOG_KEEP     200 /* step log entries kept per alert */
#define ALR_NOTIFY_KEY   "hr:alr:notify"
#define ALR_DUE_KEY      "hr:alr:due"
#define ALR_FINAL_KEY    "hr:alr:final"
#define ALR_TIME_KEY     "hr:alr:ix:time"
#define ALR_COUNT_KEY    "hr:alr:count"
#define ALR_PAGE_MAX     200 /* alerts of one listing page at most */
#define ALR_NOTIFY_TRIES 3   /* attempts per channel and step */

/* What raised an alert. Every string is UTF-8; NULL counts as "". */
typedef struct alr_source {
    const char *kind;     /* "lab" | "report" */
    const char *exam;     /* exam UID: study UID, or the lab report's UID (hash tag) */
    const char *ref;      /* report id "r1-<UID>" / lab observation "obx:<seq>" */
    const char *hospital; /* ordering (source) hospital: who must acknowledge */
    const char *center;   /* "" or the reading center */
    const char *patient;  /* patient key issuer|id */
    const char *patient_name;
    const char *item;      /* test code, or "finding" for a reader's flag */
    const char *item_name; /* display */
    const char *value;     /* value with unit as shown ("6.8 mmol/L"): the read-back */
    const char *flag;      /* "HH" "LL" "AA" ">" "<" "range" "reader" */
    const char *detail;    /* reference range or impression excerpt */
    long long now_ms;
} alr_source;

/* The id of (exam, ref, item): "A" + 24 hex digits of SHA-256 of
 * "<exam>|<ref>|<item>". out cap ALR_ID_MAX. */
void alr_id(const char *exam, const char *ref, const char *item, char out[ALR_ID_MAX]);

/* Raises the alert of s (idempotent on (exam, ref, item): an existing
 * alert is left as it is, *created 0), with its steps from cfg->alerts for
 * s->hospital and s->center (a lab alert without a center: the duty
 * doctor of alerts.duty.lab), the first step's notifications queued. id:
 * the alert's id; *created (may be NULL) 1 when new. Blocking. 0, -EINVAL
 * (no valid exam UID, kind, hospital or value), HR_EREDIS. */
int alr_raise(redisContext *c, const hr_config *cfg, const alr_source *s, char id[ALR_ID_MAX],
              int *created);

/* A reader's critical-finding flag: when payload (a signed report
 * version, decision 0022 schema) is preliminary, final, amended or
 * corrected with content.critical true, raises the alert of kind "report",
 * ref = the report id (one alert per report, whatever its later versions),
 * item "finding", value = the first line of the impression (else of the
 * findings), flag "reader", for the exam's source hospital and center.
 * *raised (may be NULL) 1 when a new alert was raised. 0 (also when not
 * critical), or alr_raise's codes. */
int alr_raise_report(redisContext *c, const hr_config *cfg, const json_t *payload, long long now_ms,
                     int *raised);

/* Whether a read-back repeats value: for a value with a number, the first
 * number (equal as numbers) and the unit after it (spaces, case, "μ"/"u"
 * and full-width characters normalised) must agree; for text (a reader's
 * finding), the texts with spaces, punctuation and case removed must be
 * equal. 1 or 0. */
int alr_readback_matches(const char *value, const char *readback);

/* Ack refusals (the API maps them). */
#define ALR_ACK_OK        0
#define ALR_ACK_READBACK  1 /* the read-back does not match: refused, counted, logged */
#define ALR_ACK_FORBIDDEN 2 /* not a user of the ordering hospital nor the current target */
#define ALR_ACK_ALREADY   3 /* already acknowledged (by *already_by): not an error for the API */

/* Acknowledges alert id by user of hospital (the caller's account) with
 * readback. *result one of ALR_ACK_*. An acknowledged alert leaves the
 * deadline and final sets. 0 (see *result), HR_ENOTFOUND, -EINVAL,
 * HR_EREDIS. */
int alr_ack(redisContext *c, const hr_config *cfg, const char *id, const char *user,
            const char *hospital, const char *readback, long long now_ms, int *result);

/* Escalation: takes up to max (1..1000) alerts of the deadline set whose
 * step is overdue at now_ms: each moves to its next step (event, log, the
 * step's notifications queued), or after the last step to overdue_final.
 * *moved (may be NULL) = alerts moved. Bounded: at most max scripts. 0,
 * HR_EREDIS. */
int alr_sweep(redisContext *c, const hr_config *cfg, long long now_ms, int max, int *moved);

/* One notification to send, claimed from hr:alr:notify. */
typedef struct alr_notice {
    char id[ALR_ID_MAX];
    int step;
    char channel[12]; /* "sse" "hl7" "webhook" */
    int attempt;      /* 1.. */
    char hospital[HR_ID_MAX];
    char target[HR_ID_MAX]; /* the step's user */
    int stale;              /* the alert was acknowledged or moved on: just record nothing */
    json_t *alert;          /* alr_get's object; owned, freed by alr_notice_free */
} alr_notice;

/* Claims up to max due notifications (each removed from the set: one
 * claimer). out: caller's array of max; *n claimed. Each must be passed
 * to alr_notice_done and alr_notice_free. 0, HR_EREDIS. */
int alr_notice_claim(redisContext *c, long long now_ms, int max, alr_notice *out, int *n);
/* Records an attempt's result in the alert's step log; the first success
 * of the current step moves raised/escalated to notified; a failure before
 * ALR_NOTIFY_TRIES is queued again retry_ms later. 0, HR_EREDIS. */
int alr_notice_done(redisContext *c, const alr_notice *nt, int ok, const char *detail,
                    long long now_ms, long long retry_ms);
void alr_notice_free(alr_notice *nt);

/* The alert as JSON (caller decrefs): {id exam kind ref hospital center
 * patient patient_name item item_name value flag detail state step steps
 * target created_ms deadline_ms acked_ms acked_by acked_readback
 * escalations readback_refused final_ms, log: [...]} (log only when
 * with_log). 0, HR_ENOTFOUND, -EINVAL, HR_EREDIS, -ENOMEM. */
int alr_get(redisContext *c, const char *id, int with_log, json_t **out);

/* Which index a listing walks. */
typedef struct alr_query {
    const char *hospital;     /* "" or the ordering hospital: hr:alr:ix:h:<H> */
    const char *center;       /* "" or the center: hr:alr:ix:c:<C> */
    const char *user;         /* "" or also alerts where user was a target (with hospital) */
    const char *state;        /* "" | "open" | "acknowledged" | "overdue_final" | a state */
    long long from_ms, to_ms; /* raised within [from, to]; 0 = unbounded */
    const char *cursor;       /* NULL/"", or the previous page's next: "<score>-<alert id>" */
    int limit;                /* 1..ALR_PAGE_MAX */
} alr_query;

/* Newest first, walking one index by (score, id) from q->cursor (alerts of
 * the same ms are not skipped at a page boundary), reading at most 4 x
 * limit + ALR_TIES_MAX members (a state filter may return fewer; next says
 * where to go on): array of alr_get objects without log. next (cap
 * ALR_CURSOR_MAX) = the cursor of the next page, "" at the end. 0,
 * -EINVAL (a bad cursor), HR_EREDIS, -ENOMEM. */
#define ALR_CURSOR_MAX 64
#define ALR_TIES_MAX   64
int alr_list(redisContext *c, const alr_query *q, json_t **out, char next[ALR_CURSOR_MAX]);

/* The HL7 message of a notice: an ORU^R01 (v2.5.1, UTF-8) carrying the
 * critical value as one OBX with its abnormal flag (OBX-8) and range
 * (OBX-7), OBR-4 the item, PID the patient, an NTE with the alert id and
 * what to do; the same MSH as reports/oru.h's. control_id: "AL" + 18 hex
 * of SHA-256("<id>/<step>"), the same on every attempt of a step (cap
 * RPT_HL7_CONTROL_ID_MAX = 21). Appends to out. 0, -EINVAL, -ENOMEM,
 * HR_ETOOBIG. */
void alr_control_id(const char *id, int step, char out[21]);
int alr_oru_build(const json_t *alert, const char *sending_facility, const char *recv_app,
                  const char *recv_facility, const char *control_id, long long now_ms, hr_buf *out);

/* Gauges for /metrics: counters (raised, acked, escalations, refused
 * read-backs) and the alerts overdue now (a step's deadline passed or
 * overdue_final). 0, HR_EREDIS. */
typedef struct alr_stats {
    long long raised, acked, escalations, readback_refused;
    long long open, overdue_now;
} alr_stats;
int alr_stats_get(redisContext *c, long long now_ms, alr_stats *st);

/* Quality statistics of days from..to (YYYYMMDD, local; at most 366 days):
 * one pipelined HGETALL of hr:stat:<day> per day. {from, to, days: [{day,
 * raised, acked_in_time, acked_late, overdue_final, by_hospital: {H: {the
 * same}}}], total: {the same, in_time_rate}} (in_time_rate: acked_in_time /
 * raised, null when none). Caller decrefs. 0, -EINVAL, HR_EREDIS, -ENOMEM. */
#define ALR_STATS_DAYS_MAX 366
int alr_stats_days(redisContext *c, int from, int to, json_t **out);

#endif
