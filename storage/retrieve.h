/* What to send for a retrieval (C-MOVE, C-GET, WADO-RS, WADO-URI): the current
 * version of every instance of a study, of one series, or one instance, in
 * series then instance number order, read from the index only. Blocking
 * (hiredis sync): run on the thread pool. */
#ifndef STO_RETRIEVE_H
#define STO_RETRIEVE_H

#include "access.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define STO_UID_BUF 65

typedef struct sto_rinst {
    char study[STO_UID_BUF];
    char series[STO_UID_BUF];
    char sop[STO_UID_BUF];
    char sop_class[STO_UID_BUF];
    char ts[STO_UID_BUF];
    char sha[65];
    uint64_t size;     /* object file bytes */
    char hospital[64]; /* source hospital */
    uint32_t frames;   /* Number of Frames (0 when absent) */
} sto_rinst;

typedef struct sto_rlist {
    sto_rinst *v;
    size_t n, cap;
    /* the study (all instances share it) */
    char patient[192]; /* patient key issuer|id, "" when unknown */
    char hospital[64]; /* source hospital of the study */
} sto_rlist;

/* Appends the instances of study (series may be NULL = all series; sop may
 * be NULL = all instances of the series; sop without series is allowed and
 * looked up through the study). Returns 0; HR_ENOTFOUND when the study,
 * series or instance is not indexed; HR_EFORBIDDEN when scope (NULL = no
 * check) may not see the study: decided from the study's owner alone, before
 * any series or instance is read, so it costs what an absent study costs
 * (callers answer both alike); HR_EREDIS; -ENOMEM. At most max instances
 * (0 = no limit; HR_ETOOBIG beyond). */
int sto_retrieve_list(redisContext *c, const sto_scope *scope, const char *study,
                      const char *series, const char *sop, size_t max, sto_rlist *out);
/* Looks up the study of a SOP Instance UID (hr:ix:sop). 0, HR_ENOTFOUND, HR_EREDIS. */
int sto_retrieve_study_of(redisContext *c, const char *sop, char study[STO_UID_BUF]);
/* The study's source hospital and patient key only (a cheap permission check).
 * 0, HR_ENOTFOUND, HR_EREDIS. */
int sto_retrieve_study_owner(redisContext *c, const char *study, char hospital[64],
                             char patient[192]);
void sto_rlist_free(sto_rlist *l);

#endif
