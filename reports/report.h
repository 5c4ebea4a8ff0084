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
#include "../storage/access.h"

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

/* Reads version k of report id (k 0: the current version, i.e. the newest
 * final / amended / corrected / entered-in-error one, or the newest version
 * when none is: a report signed only as preliminary; an amendment awaiting
 * its co-signature (a newer preliminary) is not the current version, see
 * decision 0024). 0, HR_ENOTFOUND, HR_EREDIS, -ENOMEM. Free with
 * rpt_version_free. */
int rpt_version_get(redisContext *c, const char *id, int k, rpt_version *out);
void rpt_version_free(rpt_version *v);

/* Calls cb with each report id of the study, oldest first (at most
 * RPT_PER_STUDY_MAX), and the report's status: that of its current version
 * (see rpt_version_get), RPT_DRAFT before the first signature. 0, -EINVAL
 * (study), HR_EREDIS, or cb's non-zero value. */
#define RPT_PER_STUDY_MAX 64
int rpt_study_reports(redisContext *c, const char *study,
                      int (*cb)(void *arg, const char *id, enum rpt_status st), void *arg);

/* ---- the lifecycle (decision 0024) ----
 * Each transition below reads what it needs, then commits with one EVALSHA
 * of reports/report_script.lua that re-checks, in the study's slot, that
 * nothing changed in between (else HR_ESTATE, why "changed"), and writes
 * the version, the report and (one global key) the outbox together; the
 * worklist item follows with wl_set_state. Times are ms since the epoch,
 * passed by the caller. Blocking: call on a worker thread. Signing
 * functions open the signer's key with the PIN (a KDF: call them on the
 * server's KDF pool). */

#define RPT_TEXT_MAX      32768 /* bytes of findings, and of impression (UTF-8) */
#define RPT_ITEMS_MAX     32    /* codes, and recognition items, per report */
#define RPT_CODE_MAX      64    /* bytes of a code's system or code, of an item code */
#define RPT_DISPLAY_MAX   256   /* bytes of a code's display text */
#define RPT_REASON_MAX    1024  /* bytes of a retraction's or amendment's reason */
#define RPT_VERSIONS_MAX  64    /* signed versions per report */
#define RPT_INSTANCES_MAX 50000 /* a study with more instances is not signed */
/* Signing PIN failures (per user, all nodes): RPT_PIN_FAILURES wrong PINs
 * within RPT_PIN_WINDOW_S lock the user's signing for RPT_PIN_LOCK_S. */
#define RPT_PIN_FAILURES 5
#define RPT_PIN_WINDOW_S 900
#define RPT_PIN_LOCK_S   900

/* Who acts: the authenticated principal (strings borrowed for the call). */
typedef struct rpt_actor {
    const char *user;     /* account name */
    const char *name;     /* display name ("" when none) */
    enum sto_role role;   /* reader and auditor act; others are refused */
    const char *center;   /* the reader's or auditor's center */
    const char *hospital; /* the account's hospital */
} rpt_actor;

/* Why a transition was refused: code is a static string for the JSON error
 * ("not_claim_holder", "wrong_pin", ...), detail a sentence. Filled on
 * refusals (code NULL otherwise); retry_after_s when the PIN is locked. */
typedef struct rpt_why {
    const char *code;
    char detail[256];
    int retry_after_s;
} rpt_why;

/* Checks a draft's or amendment's content: {"findings", "impression"
 * (strings, UTF-8, <= RPT_TEXT_MAX bytes each), "critical" (boolean),
 * "codes" ([{"system", "code", "display"}], <= RPT_ITEMS_MAX),
 * "recognition" ([item code], <= RPT_ITEMS_MAX)}; absent members are
 * taken from base (may be NULL: "", false, []). Other members are refused.
 * *out: a new object holding exactly those five members (json_decref). 0
 * or -EINVAL with why filled. */
int rpt_content_check(const hr_config *cfg, const json_t *in, const json_t *base, json_t **out,
                      rpt_why *why);

/* A new draft of study by who, who must hold the study's worklist claim
 * (claimed, lease not expired) and read for the center it was routed to.
 * One open report (a draft, or signed only as preliminary) per study at a
 * time. id (cap RPT_ID_MAX) and *rev (0) set. 0; -EPERM (role or center);
 * -EBUSY (not the claim holder); HR_ESTATE (another report is open: its id
 * in id); HR_ETOOBIG (RPT_PER_STUDY_MAX reports); HR_ENOTFOUND (no
 * worklist item); -EINVAL; HR_EREDIS. */
int rpt_create(redisContext *c, const hr_config *cfg, const char *study, const rpt_actor *who,
               long long now_ms, char *id, long long *rev, rpt_why *why);

/* Saves the draft's content (rpt_content_check, absent members kept from
 * the saved draft) if its revision is still rev; *new_rev = rev + 1. Only
 * the claim holder edits the draft (taking it over from an earlier holder
 * whose claim ended). 0; -EPERM; -EBUSY; HR_ESTATE (not a draft; or a
 * stale rev: why->code "stale_rev", *new_rev = the current revision);
 * HR_ENOTFOUND; -EINVAL; HR_EREDIS. */
int rpt_save(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
             long long rev, const json_t *content, long long now_ms, long long *new_rev,
             rpt_why *why);

/* Signs the draft (its revision rev, or the saved one when rev < 0) with
 * who's key and pin: version 1, preliminary when the center has
 * audit_signoff, else final; the worklist item becomes reported (then
 * final). Only the claim holder signs. *version = 1. 0; -EPERM; -EBUSY;
 * HR_ESTATE; HR_ENOTFOUND; -EINVAL (content, recognition); HR_ETOOBIG (more
 * than RPT_INSTANCES_MAX instances); -EACCES (wrong PIN: nothing signed,
 * the failure counted); -EAGAIN (signing locked by PIN failures:
 * why->retry_after_s); HR_ECERT (the key or certificate is unusable);
 * -EHOSTUNREACH (reports.tsa_url is set and the TSA gave no timestamp:
 * nothing signed); -EIO; HR_EREDIS. why->code names the refusal. */
int rpt_sign(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
             const char *pin, long long rev, long long now_ms, int *version, rpt_why *why);

/* Co-signs the pending preliminary version k (an auditor of the report's
 * center who did not sign it): version k+1, final (or amended / corrected
 * for a reader's amendment), carrying version k's JWS in "cosigns" and both
 * signers. Codes as rpt_sign; HR_ESTATE when nothing awaits a co-signature
 * or the auditor signed it. */
int rpt_cosign(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
               const char *pin, long long now_ms, int *version, rpt_why *why);

/* Amends (correction 0: status amended) or corrects (1: corrected) the
 * current final / amended / corrected version with new content (members
 * absent from content are kept) and an optional reason (may be NULL): a new
 * version superseding it. By a reader or auditor of the center; at a center
 * with audit_signoff, a reader's amendment is a preliminary version that
 * takes effect when an auditor co-signs it (decision 0024). Codes as
 * rpt_sign. */
int rpt_amend(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
              const char *pin, const json_t *content, int correction, const char *reason,
              long long now_ms, int *version, rpt_why *why);

/* Retracts the report (entered-in-error) with a reason (required): a signed
 * version superseding the newest one, by an auditor of the center or the
 * report's author; the worklist item returns to ready. Codes as rpt_sign. */
int rpt_retract(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
                const char *pin, const char *reason, long long now_ms, int *version, rpt_why *why);

/* Returns the pending preliminary version for revision (decision 0034), by
 * an auditor of the report's center, with a comment (required, <=
 * RPT_REASON_MAX bytes of text): the signed version stays as it is; the
 * return {version, digest, by, name, comment, at_ms, at, to} is kept in the
 * report's returns (hr:rpt:{S}:<n>:returns). The initial preliminary (no
 * current version) becomes a draft again holding its content, with a new
 * revision (*new_rev), and the worklist item goes back to its reader (the
 * version's signer) as claimed with a new lease (wl_return); the next
 * signature supersedes the returned version. A pending amendment is
 * dropped (the current version stays in force; *new_rev = the report's
 * revision). *version = the returned version. 0; -EPERM; -EINVAL
 * (comment); HR_ESTATE (nothing awaits a co-signature; the report changed
 * meanwhile); HR_ENOTFOUND; HR_EREDIS. Blocking. */
int rpt_return(redisContext *c, const hr_config *cfg, const char *id, const rpt_actor *who,
               const char *comment, long long now_ms, int *version, long long *new_rev,
               rpt_why *why);

/* The report's returns for revision, oldest first (a new array, at most
 * RPT_VERSIONS_MAX objects as rpt_return describes). 0, -EINVAL,
 * HR_EREDIS, -ENOMEM. */
int rpt_returns(redisContext *c, const char *id, json_t **out);

/* A report as stored (not its versions). */
typedef struct rpt_info {
    char id[RPT_ID_MAX];
    char study[HR_UID_MAX];
    int n;
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX]; /* the study's source hospital */
    enum rpt_status status;   /* as in rpt_study_reports */
    int versions;             /* signed versions 1..versions */
    int current;              /* the current version, 0 before the first signature */
    int pending;              /* a preliminary awaiting a co-signature, else 0 */
    char author[65];          /* the first signer (before: the draft's last editor) */
    char created_by[65];
    long long created_ms, updated_ms;
    long long rev; /* draft revision */
    json_t *draft; /* the draft's content (a reference; NULL once signed) */
    char draft_by[65];
    long long draft_ms;
} rpt_info;

/* Reads report id. 0, HR_ENOTFOUND, -EINVAL, HR_EREDIS. Free with
 * rpt_info_free. */
int rpt_get(redisContext *c, const char *id, rpt_info *out);
void rpt_info_free(rpt_info *r);

/* The latest report of each of n studies (pipelined, one round trip): ids[i]
 * (cap RPT_ID_MAX; "" when the study has none) and st[i]. 0, HR_EREDIS. */
int rpt_latest(redisContext *c, const char *const *studies, size_t n, char (*ids)[RPT_ID_MAX],
               enum rpt_status *st);

/* The directory of the users' signing keys: reports.keys_dir, by default
 * <data_dir>/keys (cap >= HR_PATH_MAX). */
void rpt_keys_dir(const hr_config *cfg, char *out, size_t cap);

/* Start-up reconciliation of signed versions (decision 0024). Each signed
 * version is first written to <data_dir>/reports/aa/bb/<digest>.json (fsync,
 * rename, directory fsync) and only then committed to Redis; this replays the
 * records whose version Redis lost (its AOF's last second): the version hash,
 * the report's fields, the outbox entry and the worklist move, as the commit
 * did, and only when the report is still where the commit found it. all: every
 * record; else those in directories and files modified since hr:meta:checkpoint
 * - RPT_RECONCILE_MARGIN_MS (all of them without a checkpoint). Blocking (CLI,
 * thread pool). 0 (malformed records are counted), HR_EREDIS, -errno. */
#define RPT_RECONCILE_MARGIN_MS (120 * 1000)
typedef struct rpt_reconcile_stats {
    long long files;   /* records examined */
    long long applied; /* versions restored */
    long long present; /* versions Redis has */
    long long refused; /* not applicable: the report moved on (a commit that never ran) */
    long long corrupt; /* malformed, or not matching their name */
    long long errors;  /* unreadable */
} rpt_reconcile_stats;
int rpt_reconcile(redisContext *c, const hr_config *cfg, int all, rpt_reconcile_stats *st);

#endif
