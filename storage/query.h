/* Queries over the Redis index at PATIENT, STUDY, SERIES or IMAGE level, the
 * common engine behind C-FIND and QIDO-RS. Candidates come from the secondary
 * indexes (study UID, accession, patient id, study date range, hospital,
 * modality), so keyed queries cost the same whatever the archive size; every
 * candidate is then checked against all keys with dcm_match (PS3.4 C.2.2.2).
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

typedef struct sto_qkey {
    uint32_t tag;                /* (group << 16) | element */
    char value[STO_Q_VALUE_MAX]; /* UTF-8 matching value; "" = universal / return key */
} sto_qkey;

typedef struct sto_query {
    enum sto_qlevel level;
    int n_keys;
    sto_qkey keys[STO_Q_MAX_KEYS];
    const char *hospital; /* non-NULL: only studies received from this hospital */
    long offset;          /* matches to skip */
    long limit;           /* 0 = all */
} sto_query;

/* One result: the requested keys (in request order) with their values. */
typedef struct sto_qrow {
    int n;
    struct {
        uint32_t tag;
        const char *vr;
        const char *value; /* "" when absent; valid during the callback only */
    } v[STO_Q_MAX_KEYS];
} sto_qrow;

/* Called per match; a non-zero return stops the query (C-CANCEL, a full page). */
typedef int (*sto_qrow_cb)(void *arg, const sto_qrow *row);

/* VR huren uses for an indexed attribute at this level, or NULL when the
 * attribute is not indexed there. */
const char *sto_query_vr(enum sto_qlevel level, uint32_t tag);

/* Runs q. Returns 0 (also when stopped by cb), HR_EMISSING when a SERIES or
 * IMAGE query lacks the unique keys of the levels above it, HR_EREDIS. *matched
 * (may be NULL) receives the number of matches passed to cb. */
int sto_query_run(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg, long *matched);

#endif
