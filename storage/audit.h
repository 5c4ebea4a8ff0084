/* Append-only, tamper-evident audit log of every access to patient data
 * (queries, retrievals, stores, logins). One JSON object per line in
 * <data_dir>/audit/audit-YYYY-MM-DD.jsonl (UTC day); each record carries the
 * SHA-256 of the previous record ("prev") and its own ("hash"), chained across
 * files, so removing or editing a line is detected by sto_audit_verify.
 * Records are written in order from the loop thread, flushed to the device at
 * most a second later (fdatasync batched).
 *
 * Record: {"seq":N,"time":"2026-11-22T10:00:00.123Z",<non-empty event fields
 * under the names of sto_audit_event>,"prev":"<64 hex>","hash":"<64 hex>"}.
 * seq starts at 1 and grows by one; prev of record 1 is 64 zeros. hash is the
 * lowercase hex SHA-256 of the record's canonical text: the object without
 * "hash" serialized by jansson with JSON_COMPACT | JSON_SORT_KEYS (UTF-8, no
 * spaces, keys in byte order). Event fields are kept up to 4096 bytes each
 * (cut fields end in "..."); bytes that are not UTF-8 become U+FFFD. A record's
 * day file is that of its time, or the newest existing file if later (a clock
 * going back never writes into an older file).
 *
 * A crash can tear the last line. sto_audit_open never modifies what is
 * there: it continues after the last complete record and, when bytes that are
 * not a record follow it, first appends {"action":"audit-restart",...} whose
 * seq and prev continue from that record (on a fresh line). The verifier
 * accepts lines that are not records only when the next record is such an
 * audit-restart, or at the very end of the log (a crash not yet followed by a
 * restart; reported as a note). Truncating the tail of the log is not
 * detectable from the log alone. */
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
 * Blocking (reads at most the last 4 MiB of the newest file): call it at
 * start-up. 0 or a negative errno / HR_EPARSE when the last record cannot be
 * read (more than 4 MiB of bytes that are not records at the end). */
int sto_audit_open(uv_loop_t *loop, const char *data_dir, sto_audit **out);
/* Appends one record (time = now, UTC, ms). Loop thread only; ev is copied.
 * An event that cannot be queued (more than 64 MiB waiting, out of memory,
 * log closing) is counted in sto_audit_errors and logged; it takes no seq, so
 * the chain stays whole. A failed write is counted, logged and retried a
 * second later (dropped, counted, only when the log is closing). */
void sto_audit_log(sto_audit *a, const sto_audit_event *ev);
/* Records written since open, and write errors seen (for /metrics). */
unsigned long long sto_audit_records(const sto_audit *a);
unsigned long long sto_audit_errors(const sto_audit *a);
/* Fail closed: call before serving a read of patient data (what names it in
 * the log). 0 when records are being written; -EIO while the log cannot
 * record (from a failed write or fdatasync until a write succeeds, while
 * closing, or with more than half the queue limit waiting): the caller
 * refuses the read (HTTP 503, DIMSE A700/A701). Each refusal is counted
 * (sto_audit_read_refusals, /metrics) and logged at most once a second.
 * Records of reads already served stay queued and are retried. a may be
 * NULL (auditing off): 0. Loop thread only. */
int sto_audit_admit_read(sto_audit *a, const char *what);
unsigned long long sto_audit_read_refusals(const sto_audit *a);
/* Flushes what is queued, fsyncs, closes; then calls cb (may be NULL), which
 * may still read the counters, and frees a. No sto_audit_log after this call. */
void sto_audit_close(sto_audit *a, void (*cb)(void *), void *arg);

/* Checks every record of every file under data_dir/audit in order. Blocking
 * (CLI). 0 with *records counted, or HR_EMISMATCH with a description of the
 * first broken record (file and line) in err. On success err is "" or a note
 * on a torn tail at the end of the log. -ENOENT when data_dir/audit does not
 * exist, another -errno when a file cannot be read. Lines longer than 512 KiB
 * are broken records. */
int sto_audit_verify(const char *data_dir, long long *records, char *err, size_t cap);

/* ---- bounded search (GET /api/v1/audit, decision 0031) ---- */

struct json_t; /* jansson's */

#define STO_AUDIT_SEARCH_LIMIT   1000   /* matches one call returns at most */
#define STO_AUDIT_SEARCH_RECORDS 200000 /* records one call reads at most */
#define STO_AUDIT_SEARCH_DAYS    92     /* UTC day files one query may span */
#define STO_AUDIT_CURSOR_MAX     32     /* "YYYYMMDD:<byte offset>" + NUL */

/* What to look for; every filter is optional (NULL or "" = any) and exact. */
typedef struct sto_audit_query {
    const char *actor;   /* user name or calling AE title */
    const char *patient; /* patient key (issuer|id) */
    const char *study;   /* Study Instance UID */
    const char *action;
    long long from_ms, to_ms; /* record times in [from_ms, to_ms); the day files of these UTC
                                 days are read (at most STO_AUDIT_SEARCH_DAYS) */
    const char *cursor;       /* NULL or "": from from_ms; else the next of a previous call with
                                 the same query */
    int limit;                /* 1..STO_AUDIT_SEARCH_LIMIT matches */
    long max_records;         /* 1..STO_AUDIT_SEARCH_RECORDS records read (the budget) */
} sto_audit_query;

/* Reads the day files of data_dir/audit in order from the cursor and calls
 * cb (borrowed record, valid during the call) per matching record, oldest
 * first, until limit matches, the budget of records, or the end of the
 * window. *scanned = records read; next (cap >= STO_AUDIT_CURSOR_MAX) = the
 * cursor to continue after the last record read, "" when the window was read
 * to its end. Lines longer than 512 KiB and torn lines are skipped. Missing
 * day files are empty. Blocking (thread pool): the cost is bounded by
 * max_records whatever the size of the log. 0, -EINVAL (window, limit,
 * budget or cursor), -ENOMEM, another -errno when a file cannot be read, or
 * cb's non-zero value. */
int sto_audit_search(const char *data_dir, const sto_audit_query *q,
                     int (*cb)(void *arg, struct json_t *rec), void *arg, long *scanned, char *next,
                     size_t next_cap);

/* Tests only: replaces the clock (milliseconds since the epoch, UTC) used for
 * record times and day files; NULL restores the real clock. Process-wide, not
 * thread-safe: set it before sto_audit_open. */
void sto__audit_set_clock(long long (*now_ms)(void));

#endif
