/* Reports of an exam: drafts, signed versions, sign-off (decision 0022).
 * Status after FHIR DiagnosticReport: draft (not signed) -> preliminary
 * (signed by the reporting doctor) -> final (co-signed by an auditor when
 * the center has audit_signoff, else final at the first signature) ->
 * amended / corrected (a new signed version superseding the previous) or
 * entered-in-error. No version is ever changed or deleted.
 *
 * Report id: "r<n>-<Study Instance UID>" (n = 1, 2, ... per study), so the
 * study's hash tag, and its Redis slot, follow from the id.
 *
 * Redis keys (hash tag {S} = Study Instance UID; docs/index-schema.md):
 *   hr:rpt:{S}:ids        list of the study's report ids, oldest first
 *   hr:rpt:{S}:<n>        hash: the report (status, author, center, draft, ...)
 *   hr:rpt:{S}:<n>:v:<k>  hash: signed version k (1, 2, ...): status, jws,
 *                         digest (SHA-256 hex of the compact JWS), signed_ms,
 *                         signer, tsr (RFC 3161 token, base64, "" when none)
 *   hr:rpt:outbox         zset: "<report id>/<k>" of versions to deliver
 *                         (final, amended, corrected, entered-in-error),
 *                         score = ms; written in the same script as the
 *                         version; reports/delivery.c consumes it.
 *
 * The signed payload's JSON schema is in decision 0022; consumers (PDF,
 * HL7 ORU, DICOM SR, recognition) read a version through its payload.
 * Blocking (hiredis): call on the thread pool or from the CLI. */
#ifndef RPT_REPORT_H
#define RPT_REPORT_H

#include "../common/hr_config.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define RPT_ID_MAX 96 /* "r" + digits + "-" + UID + NUL */

enum rpt_status {
    RPT_DRAFT,
    RPT_PRELIMINARY,
    RPT_FINAL,
    RPT_AMENDED,
    RPT_CORRECTED,
    RPT_ENTERED_IN_ERROR,
    RPT_STATUS_COUNT
};
const char *rpt_status_name(enum rpt_status s); /* FHIR code: "entered-in-error", ... */
int rpt_status_parse(const char *s);            /* -1 when unknown */

/* Splits a report id into its number and study UID (study cap HR_UID_MAX).
 * 0 or -EINVAL. */
int rpt_id_parse(const char *id, int *n, char *study);

/* One signed version as stored. */
typedef struct rpt_version {
    char report[RPT_ID_MAX];
    int version; /* 1, 2, ... */
    enum rpt_status status;
    long long signed_ms;
    char digest[65]; /* SHA-256 hex of jws */
    char *jws;       /* compact JWS (malloc'd) */
    char *tsr;       /* RFC 3161 token, base64 (malloc'd; "" when none) */
    json_t *payload; /* the decoded payload (a reference) */
} rpt_version;

/* Reads version k of report id (k 0: the newest signed version). 0,
 * HR_ENOTFOUND, HR_EREDIS, -ENOMEM. Free with rpt_version_free. */
int rpt_version_get(redisContext *c, const char *id, int k, rpt_version *out);
void rpt_version_free(rpt_version *v);

/* Calls cb with each report id of the study, oldest first (at most
 * RPT_PER_STUDY_MAX). 0, HR_EREDIS, or cb's non-zero value. */
#define RPT_PER_STUDY_MAX 64
int rpt_study_reports(redisContext *c, const char *study,
                      int (*cb)(void *arg, const char *id, enum rpt_status st), void *arg);

#endif
