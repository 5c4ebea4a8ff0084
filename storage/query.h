/* Queries over the Redis index at PATIENT, STUDY, SERIES or IMAGE level, the
 * common engine behind C-FIND and QIDO-RS. Candidate studies are walked, a
 * batch at a time, in the order of one index (decision 0014): study UIDs,
 * accession, patient id, the patient-name indexes (prefix, or a literal run
 * of a leading-wildcard key), modality + date, date range, hospital, or the
 * date index newest first; among the usable ones the smallest (ZCOUNT /
 * ZLEXCOUNT, O(log N)) is taken. Every candidate is checked against all keys
 * with dcm_match (PS3.4 C.2.2.2). A run stops after `limit` matches, or after
 * scan_max candidates that did not match (partial), and says where it
 * stopped as a cursor that the next page resumes from, so no page re-reads
 * earlier ones and no query costs more than O(log N + examined).
 * Synchronous (hiredis): run it on the thread pool or in the CLI.
 * Keys huren does not index are returned empty and not used for matching
 * (PS3.4 lets an SCP not support matching on optional keys). */
#ifndef STO_QUERY_H
#define STO_QUERY_H

#include <hiredis/hiredis.h>
#include <stdint.h>

enum sto_qlevel { STO_Q_PATIENT, STO_Q_STUDY, STO_Q_SERIES, STO_Q_IMAGE };

#define STO_Q_MAX_KEYS  64
#define STO_Q_VALUE_MAX 1024
/* Non-matching candidates one run examines at most (q->scan_max = 0). */
#define STO_Q_SCAN_MAX 20000
/* A cursor (sto_qresult.next): printable ASCII, NUL-terminated. */
#define STO_Q_CURSOR_MAX 1200

/* Callback answers: continue, stop after this row, stop before it (the row
 * is not taken: the cursor stays in front of it). */
#define STO_Q_NEXT        0
#define STO_Q_STOP        1
#define STO_Q_STOP_BEFORE 2

typedef struct sto_qkey {
    uint32_t tag;                /* (group << 16) | element */
    char value[STO_Q_VALUE_MAX]; /* UTF-8 matching value; "" = universal / return key */
} sto_qkey;

typedef struct sto_query {
    enum sto_qlevel level;
    int n_keys;
    sto_qkey keys[STO_Q_MAX_KEYS];
    const char *hospital;   /* non-NULL: only studies received from this hospital */
    const char *center;     /* non-NULL (with hospital): also studies routed to this center
                               (sto_scope_allows_study; decision 0005) */
    const char *grantee;    /* non-NULL (with hospital): also studies granted to this user
                               (STO_GRANT_KEY_FMT; decision 0027). One more read per candidate:
                               set it only for queries that name their studies */
    long offset;            /* matches to skip (after the cursor, if any) */
    long limit;             /* 0 = all */
    const char *cursor;     /* non-NULL and non-empty: resume after it (a run's next) */
    long scan_max;          /* non-matching candidates to examine; 0 = STO_Q_SCAN_MAX */
    struct sto_qseen *seen; /* PATIENT level: patients already returned (kept
                             * across pages by the caller), or NULL */
} sto_query;

/* Where a run stopped. */
typedef struct sto_qresult {
    long matched;  /* rows passed to the callback and taken */
    long examined; /* candidate records read */
    int partial;   /* stopped by scan_max with candidates left */
    /* resume point: "" when every candidate was examined (no more pages) */
    char next[STO_Q_CURSOR_MAX];
} sto_qresult;

/* A set of strings (patient keys) that outlives one run: PATIENT-level
 * C-FIND pages skip patients an earlier page returned. */
typedef struct sto_qseen sto_qseen;
sto_qseen *sto_qseen_new(void);
void sto_qseen_free(sto_qseen *s);

/* One result: the requested keys (in request order) with their values. */
typedef struct sto_qrow {
    int n;
    struct {
        uint32_t tag;
        const char *vr;
        const char *value; /* "" when absent; valid during the callback only */
    } v[STO_Q_MAX_KEYS];
} sto_qrow;

/* Called per match: STO_Q_NEXT, STO_Q_STOP (C-CANCEL, a full page) or
 * STO_Q_STOP_BEFORE (any other non-zero value counts as STO_Q_STOP). */
typedef int (*sto_qrow_cb)(void *arg, const sto_qrow *row);

/* VR huren uses for an indexed attribute at this level, or NULL when the
 * attribute is not indexed there. */
const char *sto_query_vr(enum sto_qlevel level, uint32_t tag);

/* Runs q. Returns 0 (also when stopped by cb), HR_EMISSING when a SERIES or
 * IMAGE query lacks the unique keys of the levels above it, HR_EREDIS. *matched
 * (may be NULL) receives the number of matches passed to cb. */
int sto_query_run(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg, long *matched);

/* Same, reporting where the run stopped into *res (required): pass
 * res->next as q->cursor of the next page. HR_EPARSE for a cursor that is
 * not one of this query's. */
int sto_query_page(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg,
                   sto_qresult *res);

/* Paging by offset (QIDO-RS): the cursor where a page of q stopped after
 * `offset` matches is kept in Redis (hr:qc:<SHA-256 of level, hospital,
 * keys and offset>, STO_Q_CURSOR_TTL_S) so that the request for the next
 * offset resumes there. q's own offset, limit and cursor are not part of
 * the key. load: 0, HR_ENOTFOUND (expired, never saved) or HR_EREDIS. */
#define STO_Q_CURSOR_TTL_S 600
int sto_qcursor_save(redisContext *c, const sto_query *q, long offset, const char *cursor);
int sto_qcursor_load(redisContext *c, const sto_query *q, long offset, char out[STO_Q_CURSOR_MAX]);

/* The normalized patient-name form the name indexes hold (index_script.lua
 * writes the same): ASCII letters lower-cased, other bytes unchanged. */
void sto_pn_norm(const char *in, char *out, size_t cap);

#endif
