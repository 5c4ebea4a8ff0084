/* Append-only, tamper-evident audit log of every access to patient data
 * (queries, retrievals, stores, logins). One JSON object per line in
 * <data_dir>/audit/audit-YYYY-MM-DD.jsonl (UTC day); each record carries the
 * SHA-256 of the previous record ("prev") and its own ("hash"), chained across
 * files, so removing or editing a line is detected by sto_audit_verify.
 * Records are written in order from the loop thread, flushed to the device at
 * most a second later (fdatasync batched). */
#ifndef STO_AUDIT_H
#define STO_AUDIT_H

#include <stddef.h>
#include <uv.h>

typedef struct sto_audit sto_audit;

/* Every field is optional (NULL or "" = not recorded). */
typedef struct sto_audit_event {
    const char *actor;      /* user name, or calling AE title */
    const char *role;       /* sto_role_name(), e.g. "reader", "dicom-peer" */
    const char *hospital;   /* the actor's hospital id */
    const char *address;    /* peer IP address */
    const char *action;     /* "c-find", "c-move", "c-get", "qido", "wado", "stow", "login", ... */
    const char *patient;    /* patient key (issuer|id) when known */
    const char *study;      /* Study Instance UID when known */
    const char *detail;     /* query keys, object, destination, reason (free text) */
    const char *outcome;    /* "success", "denied", "failure", "not-found", ... */
    const char *request_id; /* HTTP request id or association id */
} sto_audit_event;

/* Opens (creates) the log under data_dir and continues its hash chain.
 * 0 or a negative errno / HR_EPARSE when the last record cannot be read. */
int sto_audit_open(uv_loop_t *loop, const char *data_dir, sto_audit **out);
/* Appends one record (time = now, UTC, ms). Loop thread only; ev is copied. */
void sto_audit_log(sto_audit *a, const sto_audit_event *ev);
/* Records written since open, and write errors seen (for /metrics). */
unsigned long long sto_audit_records(const sto_audit *a);
unsigned long long sto_audit_errors(const sto_audit *a);
/* Flushes what is queued, fsyncs, closes; then cb (may be NULL). */
void sto_audit_close(sto_audit *a, void (*cb)(void *), void *arg);

/* Checks every record of every file under data_dir/audit in order. Blocking
 * (CLI). 0 with *records counted, or HR_EMISMATCH with a description of the
 * first broken record (file and line) in err. */
int sto_audit_verify(const char *data_dir, long long *records, char *err, size_t cap);

#endif
