/* Mutual recognition (检查检验结果互认, decision 0027): which signed results of
 * a person are recognizable now, the time-limited access a lookup grants to
 * their studies, the receiving doctor's decisions, and the statistics.
 *
 * A result is one recognition item of a signed report version: id
 * "<report id>~<item code>" (report id "r<n>-<Study Instance UID>", so the
 * study, and the Redis slot of everything kept with the result, follow from
 * it). It is recognizable now when the report's newest signed version is
 * final, amended or corrected, carries the item, the item is in the
 * catalogue, its valid_until (signing date + validity_days, in the payload)
 * is today or later, and the issuing center's QC covers the item today.
 *
 * Redis keys (docs/index-schema.md, "Mutual recognition"):
 *   hr:grant:{S}:<user>          string: person id; PX = the grant (rec_grant_ms)
 *   hr:grants:<user>             zset: studies granted to the user, score = expiry ms
 *                                (expired members trimmed, at most REC_GRANTS_PER_USER)
 *   hr:rec:look:{P}:<user>       string "1"; PX = the grant: the user looked the person up
 *   hr:rec:{S}:dec:<result>      list: decisions on the result, JSON, oldest first
 *   hr:person:{P}:dec            zset: the person's decisions, JSON, score = ms
 *   hr:recstat:<YYYYMMDD>        hash: counters of one local day (rec_stats)
 *
 * Days are local calendar days (TZ) as YYYYMMDD numbers. Redis functions are
 * synchronous (hiredis): thread pool or CLI. Codes: HR_ENOTFOUND, HR_EREDIS,
 * -EINVAL, -ENOMEM, HR_ESTATE (a decision
 * that is not allowed: accept of a result that is not recognizable now),
 * HR_ETOOBIG (REC_DECISIONS_PER_RESULT reached). */
#ifndef RPT_RECOGNITION_H
#define RPT_RECOGNITION_H

#include "person.h"
#include "rec_config.h"
#include "recognition_items.h"
#include "report.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define REC_RESULT_MAX           (RPT_ID_MAX + 1 + REC_CODE_MAX)
#define REC_GRANTS_PER_USER      1000 /* live grants listed per user */
#define REC_DECISIONS_PER_RESULT 1000 /* decisions kept per result; more are refused */
#define REC_DECISION_TEXT_MAX    1000 /* bytes of free text */
#define REC_VERSIONS_MAX         1000 /* signed versions one lookup reads at most */
#define REC_STATS_DAYS_MAX       366  /* days one statistics query reads at most */

/* Why a result is not recognizable (or REC_RECOGNIZABLE). */
enum rec_reason {
    REC_RECOGNIZABLE,
    REC_EXPIRED,          /* valid_until is before today */
    REC_SUPERSEDED,       /* an amendment dropped the item */
    REC_ENTERED_IN_ERROR, /* the report was retracted */
    REC_QC_LAPSED,        /* the issuing center's QC does not cover the item today */
    REC_PRELIMINARY,      /* not final yet (awaiting the auditor) */
    REC_NOT_IN_CATALOGUE, /* the item is no longer in the catalogue */
    REC_REASONS
};
/* "recognizable" "expired" "superseded" "entered-in-error" "qc_lapsed"
 * "preliminary" "not_in_catalogue". */
const char *rec_reason_name(enum rec_reason r);

/* The national reasons for a repeat exam (requirements.md). */
enum rec_reject {
    REC_REJ_CONDITION_CHANGED,
    REC_REJ_FAST_CHANGING_VALUE,
    REC_REJ_BEFORE_MAJOR_PROCEDURE,
    REC_REJ_EMERGENCY,
    REC_REJ_FORENSIC,
    REC_REJ_PATIENT_REQUEST,
    REC_REJ_ISSUER_FAILED_EQA,
    REC_REJ_TOO_OLD,
    REC_REJ_PHYSICIAN_JUDGEMENT,
    REC_REJ_OTHER, /* free text required */
    REC_REJECTS
};
const char *rec_reject_name(enum rec_reject r); /* "condition_changed", ... */
int rec_reject_parse(const char *s);            /* -1 when unknown */

/* ---- days ---- */

/* The local day (TZ) of a time in ms since the epoch, as YYYYMMDD. */
int rec_day_of(long long ms);
/* day + n days (n may be negative). 0 when day is not a date. */
int rec_day_add(int day, int n);
/* "YYYY-MM-DD" -> YYYYMMDD, 0 when malformed or not a calendar date. */
int rec_day_parse(const char *iso);
/* YYYYMMDD -> "YYYY-MM-DD". */
void rec_day_iso(int day, char out[11]);

/* ---- the rules (pure) ---- */

/* An exam as the catalogue's match sees it. Strings may be "" (absent). */
typedef struct rec_exam {
    const char *modality;
    const char *body_part;
    const char *procedure;
    const char *const *codes; /* n_codes codes of the exam */
    size_t n_codes;
} rec_exam;
/* 1 when the exam matches the item's match lists (like routing rules). */
int rec_item_matches(const rec_item *it, const rec_exam *e);
/* 1 when some QC entry of the center covers the item on day. */
int rec_qc_covers(const hr_config *cfg, const char *center, const char *item, int day);
/* The judgement of one payload entry (valid_until "YYYY-MM-DD") of a report
 * version with this status, issued by center, on day today. Superseded is
 * decided by the caller (it needs two versions). */
enum rec_reason rec_judge(const hr_config *cfg, enum rpt_status status, const char *item,
                          const char *valid_until, const char *center, int today);

/* rec_fill and rpt_fill_recognition (the contract with report.c) are
 * declared in recognition_items.h. */

/* Splits a result id into its report id, study and item code. 0 or -EINVAL.
 * A report's result is "r<n>-<study>~<item>"; a lab result (decision 0041)
 * "<lab report UID>~<item>", whose report is "" and study the lab UID. */
int rec_result_parse(const char *result, char report[RPT_ID_MAX], char study[HR_UID_MAX],
                     char item[REC_CODE_MAX]);

/* The results of one report from its newest signed version (status, payload)
 * and, when it is an amendment, a correction or a retraction, the version
 * before it (prev_status, prev_payload; NULL when none). Appends to ok and
 * not_ok (arrays) one object per recognition entry: {result, report,
 * version, item, name, category, hr_mark, scope, valid_until, study,
 * accession, modality, procedure, study_date, center, center_name,
 * issuing_hospital, source_hospital, source_hospital_name, signed_at,
 * signers, status, links} plus {reason} in not_ok. base: "" or
 * "http://host" prefixed to the links. Pure. 0 or -ENOMEM. */
int rec_report_results(const hr_config *cfg, const char *report, int version,
                       enum rpt_status status, json_t *payload, enum rpt_status prev_status,
                       json_t *prev_payload, int today, const char *base, json_t *ok,
                       json_t *not_ok);

/* ---- lookup, grants (Redis) ---- */

#define REC_LAB_REPORTS_MAX 100 /* a person's newest lab reports a lookup reads */

/* The person's lab results (decision 0041) of the catalogue's lab items
 * (rec_item.tests), from the person's newest REC_LAB_REPORTS_MAX lab
 * reports, each current observation once: a new array in *out of
 * {result ("<lab uid>~<item>"), kind "lab", study (the lab report's UID),
 * hospital, item, name, hr_mark, code, display, value, unit, range, low,
 * high, flags, status, observed (YYYY-MM-DD), valid_until (observed +
 * validity_days), center, recognizable, reason ("recognizable", "expired",
 * "not_final", "qc_lapsed")}. Final (F) and corrected (C) results within
 * validity whose issuing center (the lab center that reviewed the report,
 * lab.review) passed QC for the item today are recognizable; a result
 * final at the township has no center: qc_lapsed. 0, HR_EREDIS, -ENOMEM. */
int rec_lab_results(redisContext *c, const hr_config *cfg, const char *person, long long now_ms,
                    json_t **out);

/* The results of the person's newest cfg lookup_studies studies, newest
 * first: *ok and *not_ok new arrays. *truncated = 1 when REC_VERSIONS_MAX
 * versions were read before the end. 0, HR_EREDIS, -ENOMEM. */
int rec_lookup(redisContext *c, const hr_config *cfg, const char *person, long long now_ms,
               const char *base, json_t **ok, json_t **not_ok, int *truncated);
/* Grants user access to the study for rec_grant_ms (renewing a live grant),
 * for a lookup of person; records that user looked person up. 0, HR_EREDIS. */
int rec_grant(redisContext *c, const hr_config *cfg, const char *user, const char *person,
              const char *study, long long now_ms);
/* The person of the user's live grant of the study. HR_ENOTFOUND when none. */
int rec_grant_get(redisContext *c, const char *user, const char *study,
                  char person[RPT_PERSON_ID_LEN + 1]);
/* 1 when user looked person up within the grant time, else 0; HR_EREDIS. */
int rec_looked_up(redisContext *c, const char *user, const char *person);

/* ---- decisions ---- */

/* Who records a decision. */
typedef struct rec_actor {
    const char *user, *role, *hospital, *doctor; /* doctor: display name */
} rec_actor;

/* Records a decision on result by actor, who must hold a live grant of its
 * study (else HR_ENOTFOUND). decision "accept" (only of a result
 * recognizable now, else HR_ESTATE) or "reject" with reason (enum
 * rec_reject; text required for other). *out: the stored record (new
 * reference). Counts it in the day's statistics. 0, HR_ENOTFOUND, HR_ESTATE,
 * HR_ETOOBIG, HR_EREDIS, -EINVAL, -ENOMEM. */
int rec_decide(redisContext *c, const hr_config *cfg, const rec_actor *actor, const char *result,
               int accept, int reason, const char *text, long long now_ms, json_t **out);
/* The decisions on a result, oldest first (new array). 0, HR_EREDIS. */
int rec_decisions_of_result(redisContext *c, const char *result, json_t **out);
/* The person's newest decisions, at most limit (new array). 0, HR_EREDIS. */
int rec_decisions_of_person(redisContext *c, const char *person, int limit, json_t **out);

/* ---- statistics ---- */

/* Counts a lookup by a user of hospital that showed these recognizable
 * results (ok: rec_lookup's array) on the day of now_ms. 0, HR_EREDIS. */
int rec_stats_lookup(redisContext *c, const char *hospital, const json_t *ok, long long now_ms);

/* Counts a decision on the day of now_ms: an accept (and the item's price,
 * the cost of the repeat exam avoided) or a rejection with its reason, by
 * item, issuing center, and the deciding user's hospital. 0, HR_EREDIS. */
int rec_stats_decision(redisContext *c, const hr_config *cfg, const char *item, const char *center,
                       const char *hospital, int accept, int reason, long long now_ms);

enum rec_group {
    REC_GROUP_NONE,
    REC_GROUP_ITEM,
    REC_GROUP_CENTER,
    REC_GROUP_HOSPITAL,
    REC_GROUP_MONTH
};
/* The statistics of days from..to (YYYYMMDD, to - from < REC_STATS_DAYS_MAX
 * days) grouped: {from, to, group, total: {lookups, accepts, rejections,
 * rejections_by_reason, recognition_rate, cost_avoided_fen,
 * cost_avoided_yuan}, groups: [{key, name, ...the same}]}. Reads one hash
 * per day. 0, -EINVAL, HR_EREDIS, -ENOMEM. */
int rec_stats(redisContext *c, const hr_config *cfg, int from, int to, enum rec_group g,
              json_t **out);

#endif
