/* Office statistics of the worklist (decision 0031): exam volumes per day,
 * turnaround against target, and the current overdue items. The counters
 * are written by worklist_script.lua at the moment each event happens (an
 * exam's first instance, its first final report, an overdue flag) into one
 * hash per local day, hr:stat:<YYYYMMDD> (docs/index-schema.md,
 * "Statistics"); a query reads one hash per day of its range (at most
 * WL_STATS_DAYS_MAX), whatever the number of exams. The overdue listing reads
 * the centers' overdue sets by rank, at most a limit per center.
 *
 * Days are local calendar days (TZ) as YYYYMMDD numbers (common/hr_time.h).
 * Synchronous (hiredis): thread pool or CLI. Codes: -EINVAL, HR_EREDIS,
 * -ENOMEM. Each *out is a new JSON document the caller owns (json_decref). */
#ifndef WL_STATS_H
#define WL_STATS_H

#include "../common/hr_config.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define WL_STATS_DAYS_MAX 366 /* days one query reads at most */
#define WL_OVERDUE_LIMIT  200 /* items listed per center at most (the default: 50) */
#define WL_TAT_BUCKETS    25  /* turnaround histogram: 0 below 1 s, k: [2^(k-1), 2^k) s */

/* Exams received per day from..to (inclusive): in total, per source
 * hospital and per center, and the exams finalized per center with the
 * remote-diagnosis part (read by a center run by another hospital than the
 * exam's). {from, to, days: [{day, received, received_by_hospital{},
 * received_by_center{}, finalized_by_center{}, remote, remote_by_center{},
 * remote_by_hospital{}}], total: {the same without day}}. */
int wl_stats_volumes(redisContext *c, const hr_config *cfg, int from, int to, json_t **out);

/* Turnaround of the exams whose first final report was signed from..to,
 * per center and priority: {from, to, rows: [{center, center_name, kind,
 * priority, count, mean_ms, median_ms (estimated from the power-of-two
 * histogram, interpolated), target_ms, within_target, within_target_share,
 * overdue_flagged}]}, one row per configured center and priority. */
int wl_stats_turnaround(redisContext *c, const hr_config *cfg, int from, int to, json_t **out);

/* The items flagged overdue now, per center (center NULL: every configured
 * center), most urgent first, at most limit (1..WL_OVERDUE_LIMIT) each, with
 * the count of all: {centers: [{center, center_name, count, items: [{study,
 * priority, state, hospital, modality, accession, procedure, arrived_ms,
 * due_ms, overdue_ms, claimed_by}]}]}. No patient name or id. -EINVAL when
 * center is not configured or limit is out of range. */
int wl_stats_overdue(redisContext *c, const hr_config *cfg, const char *center, int limit,
                     json_t **out);

#endif
