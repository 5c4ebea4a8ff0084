/* Rebuilds the index from the object files alone: every objects/aa/bb/<sha>
 * is scanned (Part 10), its dataset hashed and checked against its name, and
 * committed with the same script as live ingest. Blocking (CLI). */
#ifndef STO_REINDEX_H
#define STO_REINDEX_H

#include "objstore.h"

#include <hiredis/hiredis.h>

typedef struct sto_reindex_stats {
    long long files;     /* object files seen */
    long long added;     /* newly indexed (were missing) */
    long long present;   /* already indexed with the same bytes */
    long long versions;  /* other versions of an indexed SOP instance */
    long long corrupt;   /* content does not match its name, or unparseable */
    long long errors;    /* I/O or index errors */
} sto_reindex_stats;

/* Walks s->objects. 0 when every file was handled (corrupt files are counted,
 * not fatal), or the first fatal error (HR_EREDIS). */
int sto_reindex(const sto_objstore *s, redisContext *c, sto_reindex_stats *st);

#endif
