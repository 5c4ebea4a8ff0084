/* Rebuilds the index from the object files alone: every objects/aa/bb/<sha>
 * is scanned (Part 10), its dataset hashed and checked against its name, and
 * committed with the same script as live ingest. Blocking (CLI). */
#ifndef STO_REINDEX_H
#define STO_REINDEX_H

#include "objstore.h"
#include "../dicom/dcm_attrs.h"

#include <hiredis/hiredis.h>

typedef struct sto_reindex_stats {
    long long files;    /* object files seen */
    long long added;    /* newly indexed (were missing) */
    long long present;  /* already indexed with the same bytes */
    long long versions; /* other versions of an indexed SOP instance */
    long long corrupt;  /* content does not match its name, or unparseable */
    long long errors;   /* I/O or index errors */
    long long refused;  /* another hospital's object in a study (not indexed) */
} sto_reindex_stats;

/* Walks s->objects. 0 when every file was handled (corrupt files are counted,
 * not fatal), or the first fatal error (HR_EREDIS). hub: the hub's own
 * hospital id (dicom.hospital), whose derived objects may sit in other
 * hospitals' studies (decision 0009); NULL = none. */
int sto_reindex(const sto_objstore *s, redisContext *c, const char *hub, sto_reindex_stats *st);

/* Start-up reconciliation (decision 0002): indexes the objects that may have
 * been acknowledged after the last index checkpoint that reached Redis' disk.
 * Reads hr:meta:checkpoint; with none, and objects present, does a full
 * sto_reindex. Otherwise only second-level directories and files modified
 * since checkpoint - STO_RECONCILE_MARGIN_MS are examined, and a file already
 * indexed under its name is skipped after reading its header. *full is set
 * when a full reindex was done. */
#define STO_RECONCILE_MARGIN_MS (120 * 1000)
int sto_reconcile(const sto_objstore *s, redisContext *c, const char *hub, sto_reindex_stats *st,
                  int *full);

/* Called for every object reconciliation newly indexed (a new instance or a
 * new version), with the same connection: what the live path does after the
 * index commit (the worklist arrival) is redone for what Redis had lost; not
 * on a full reindex (an archive new to this Redis is not a set of arrivals). A
 * non-zero return is logged and counted in st->errors; the walk goes on. */
typedef int (*sto_reindexed_fn)(void *arg, redisContext *c, const dcm_attrs *a,
                                const char *hospital, const char *source_ae, long long received_ms);
int sto_reconcile_hook(const sto_objstore *s, redisContext *c, const char *hub,
                       sto_reindex_stats *st, int *full, sto_reindexed_fn fn, void *arg);

#endif
