/* Lab results over HL7 v2 (decision 0035): each OBR of an ORU^R01 is a lab
 * report, an exam with its own UID, so worklists, reports, grants and the
 * access rule treat it like a study.
 *
 * Exam UID: "2.25." + the decimal of the first 128 bits of
 * SHA-256("<hospital id>|<filler order number, else placer>|<OBR-4 code>").
 * A later message for the same order (preliminary -> final, a correction)
 * updates the same lab report.
 *
 * Ingest of one message: parse (reports/hl7.h) -> checks (ORU^R01, version
 * 2.3-2.5.1, facility, PID, OBR, OBX) -> duplicate? (hospital + MSH-10
 * committed: AA again, nothing stored) -> the raw message into the journal
 * "lab" (group commit, fdatasync) -> one commit script per lab report (its
 * slot, idempotent per message) + global indexes -> critical values raised
 * -> routing (lab.review: the lab center's worklist) -> duplicate marker,
 * last -> AA. A crash anywhere before the marker makes the sender's resend
 * redo the steps; each is idempotent, so the state is the same exactly once.
 *
 * Redis keys: docs/index-schema.md, "Lab reports". {U} = the exam UID. */
#ifndef RPT_LAB_H
#define RPT_LAB_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"
#include "../common/hr_pool.h"
#include "../storage/index.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define LAB_MSG_MAX        (1024 * 1024) /* bytes of one HL7 message accepted */
#define LAB_OBR_MAX        64            /* lab reports (OBR) of one message */
#define LAB_OBX_MAX        500           /* observations of one lab report */
#define LAB_HISTORY_MAX    20            /* superseded values kept per observation */
#define LAB_MESSAGES_MAX   200           /* messages applied to one lab report */
#define LAB_JOURNAL_NAME   "lab"         /* <data_dir>/journal/lab */
#define LAB_JOURNAL_TYPE   1             /* journal record type of a raw HL7 message */
#define LAB_CONTROL_ID_MAX 200           /* bytes of MSH-10 kept */

typedef struct lab_ctx lab_ctx; /* created by cli/serve.c; owns the journal "lab" */

/* What lab_open needs. Borrowed: cfg and the strings outlive the context. */
typedef struct lab_opts {
    uv_loop_t *loop;
    const hr_config *cfg;
    sto_redis_addr redis_addr; /* for sto_worker_redis() on the worker threads */
    int redis_timeout_ms;
    hr_pool *pool;            /* where the blocking steps run; NULL: libuv's pool */
    const char *journal_dir;  /* "<data_dir>/journal/lab" */
    const char *node;         /* this node's name (journal segment names) */
    const char *hub_facility; /* MSH-4 of our ACKs ("" = "HUREN") */
} lab_opts;

/* Opens the journal and the context. 0 or the journal's code; *out freed by
 * lab_close. Loop thread. */
int lab_open(const lab_opts *o, lab_ctx **out);
/* Closes the journal once the messages in progress are done; closed (may be
 * NULL) runs on the loop afterwards. Loop thread. */
void lab_close(lab_ctx *x, void (*closed)(void *arg), void *arg);

typedef struct lab_source {
    const char *hospital; /* hospital of the peer address (NULL or "": any configured one) */
    const char *peer;     /* "ip:port" for the audit/log */
} lab_source;

/* One complete HL7 message from MLLP. cb runs exactly once on the loop, from
 * a later callback, with the ACK to send (AA only after the raw message is in
 * the journal (fdatasync) AND the index commit is done; AE/AR with ERR
 * otherwise; a duplicate sending facility + MSH-10 is re-ACKed AA without a
 * second copy). ack is owned by lab (valid during cb). rc 0 when an ACK is
 * given (whatever its code), < 0 when none could be built (close the
 * connection). msg is copied: the caller may free it on return. Loop thread.
 * 0, or -ENOMEM / -ESHUTDOWN (closing): then cb never runs. */
typedef void (*lab_ingest_cb)(void *arg, int rc, const uint8_t *ack, size_t ack_len);
int lab_ingest(lab_ctx *x, const uint8_t *msg, size_t len, const lab_source *src, lab_ingest_cb cb,
               void *arg);

/* The stored lab report (internal JSON, decision 0035), for the API,
 * recognition, alerts, report payloads. Blocking (pool). 0, HR_ENOTFOUND,
 * HR_EREDIS, -EINVAL (uid). *out: a new reference. */
int lab_get(redisContext *c, const char *uid, json_t **out);

/* The part of a lab report a signed report's payload carries (decision
 * 0041): {uid, code, placer, filler, status, observed, observations: [{seq,
 * code, system, display, type, value, unit, range, flags, status, time}],
 * messages: [{id, sha256}]}. A new reference, NULL when out of memory. */
json_t *lab_payload(const json_t *report);
/* The exam UID of a lab report (out: HR_UID_MAX bytes). */
void lab_uid(const char *hospital, const char *order, const char *code, char *out);
/* 1 when uid is a lab report (hr:lab:{uid} exists), 0, -1 on a Redis error. */
int lab_exists(redisContext *c, const char *uid);

/* ---- the blocking steps (the pipeline above runs them; tests and
 * `huren reindex` call them directly) ---- */

typedef struct lab_msg lab_msg; /* one checked message and its lab reports */

/* Where the raw message is in the journal. */
typedef struct lab_stored {
    char segment[96];
    uint64_t offset;
    uint32_t len;
} lab_stored;

/* Parses and checks a message. 0 with *out (lab_msg_free); HR_EPARSE when
 * refused: *ack holds the AE/AR (appended), *out NULL; -ENOMEM, HR_ETOOBIG.
 * src->hospital "" or NULL: any configured facility. */
int lab_msg_check(const hr_config *cfg, const uint8_t *msg, size_t len, const lab_source *src,
                  const char *hub_facility, long long now_ms, lab_msg **out, hr_buf *ack);
void lab_msg_free(lab_msg *m);
/* "<hospital>|<MSH-10>" of the message (valid while m lives). */
const char *lab_msg_id(const lab_msg *m);
/* Number of lab reports and the UID of the i-th. */
size_t lab_msg_reports(const lab_msg *m);
const char *lab_msg_uid(const lab_msg *m, size_t i);
#define LAB_SEEN_REUSED 2 /* lab_msg_seen: the control id came with other content */
/* *seen = 1 when the message was committed before (its duplicate marker
 * exists and its content after the MSH segment is the same: a resend with a
 * new MSH-7 is a duplicate), LAB_SEEN_REUSED when the marker holds another
 * message's (answer lab_msg_ack_reused: it must not be acknowledged), 0 when
 * new. 0 or HR_EREDIS. */
int lab_msg_seen(redisContext *c, const lab_msg *m, int *seen);
/* lab_msg_seen for n messages (ms[i] NULL: skipped) in one pipelined
 * round: seen[i] 1, LAB_SEEN_REUSED or 0 (-1: an id that cannot be a key, refused by
 * lab_msg_check already). The same round reads each report's current
 * state into ms[i], which lab_msg_commit_batch uses instead of reading it
 * again (the commit script's revision guard catches a change since). 0 or
 * HR_EREDIS. */
int lab_msg_seen_batch(redisContext *c, lab_msg *const *ms, size_t n, int *seen);
/* Commits the lab reports of m (stored: where the raw message is): the
 * per-report scripts, the indexes and persons, critical values, routing,
 * then the marker. Idempotent: a message already applied changes nothing.
 * *critical (may be NULL) = critical observations found. 0, HR_EREDIS,
 * -ENOMEM, HR_ESTATE (a report changed concurrently too often),
 * HR_EFORBIDDEN (a report's UID is held by another hospital's study:
 * refused for good, lab_msg_ack_taken), HR_ETOOBIG (a report is full:
 * lab_msg_ack_full). */
int lab_msg_commit(redisContext *c, const hr_config *cfg, lab_msg *m, const lab_stored *stored,
                   long long now_ms, int *critical);
/* lab_msg_commit for n messages (ms[i] stored at stored[i], received at
 * now_ms[i]) with one pipelined round of commands per step on c, in this
 * order for every message: scripts, indexes and persons, routing and
 * critical values, markers last. Messages sharing a report are applied in
 * order. rcs[i] = the i-th message's result (as lab_msg_commit's). 0, or
 * HR_EREDIS (connection lost: every unfinished rcs[i] HR_EREDIS), -ENOMEM. */
int lab_msg_commit_batch(redisContext *c, const hr_config *cfg, lab_msg *const *ms,
                         const lab_stored *stored, const long long *now_ms, size_t n, int *rcs);
/* Only the per-report scripts and the indexes (no critical values, routing
 * or marker): the state a crash between them leaves (tests). */
int lab_msg_commit_index(redisContext *c, const hr_config *cfg, lab_msg *m,
                         const lab_stored *stored, long long now_ms);
/* Appends the ACK code ("AA", "AE", "AR") answering m to ack. 0, -ENOMEM. */
int lab_msg_ack(const lab_msg *m, const char *code, const char *hub_facility, long long now_ms,
                hr_buf *ack);
/* Appends the AR (205 at MSH-10) answering a message whose control id its
 * hospital already used for another message (LAB_SEEN_REUSED). 0, -ENOMEM. */
int lab_msg_ack_reused(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack);
/* Appends the AR (205 at the OBR) answering a message lab_msg_commit
 * refused with HR_EFORBIDDEN: a lab report's UID is held by a study of
 * another hospital, or by one that is not a lab report. 0, -ENOMEM. */
int lab_msg_ack_taken(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack);
/* Appends the AR (207) answering a message lab_msg_commit refused with
 * HR_ETOOBIG: a report would exceed LAB_OBX_MAX observations or
 * LAB_MESSAGES_MAX messages (a resend would fail the same way). 0, -ENOMEM. */
int lab_msg_ack_full(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack);

/* `huren reindex`: applies every message of the journal directory again
 * (idempotent). *messages counts those applied, *refused those refused.
 * Blocking. 0, or the journal's / Redis' code. */
int lab_reindex(redisContext *c, const hr_config *cfg, const char *journal_dir, long *messages,
                long *refused);

/* The lab results of a person for recognition (newest first, at most max
 * lab reports): a new JSON array of the lab reports (lab_get form) in *out.
 * 0, HR_EREDIS, -ENOMEM. */
int lab_person_reports(redisContext *c, const char *person, int max, json_t **out);

#endif
