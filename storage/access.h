/* Who may see which studies: one rule for DICOMweb users and DIMSE peers
 * (docs/decisions/0005-access-scope.md). A scope is "nothing", "everything",
 * or "studies received from one hospital". */
#ifndef STO_ACCESS_H
#define STO_ACCESS_H

#include "../common/hr_config.h"

#include <hiredis/hiredis.h>

enum sto_role {
    STO_ROLE_TECHNICIAN, /* township or county technician: own hospital */
    STO_ROLE_READER,     /* county center reader */
    STO_ROLE_AUDITOR,    /* county center auditor (审核医师) */
    STO_ROLE_EXTERNAL,   /* doctor at another hospital: nothing yet (recognition issue) */
    STO_ROLE_ADMIN,      /* everything */
    STO_ROLE_DICOM_PEER, /* a calling AE title of a configured hospital */
    STO_ROLE_OFFICE,     /* the 医共体 office (质控与统计): aggregate statistics and the
                            overdue list, no patient data (decision 0031) */
    STO_ROLE_COUNT
};

#define STO_USER_MAX 65 /* a user name (viewer-api/auth.h: 1..64 of [a-z0-9._-]) + NUL */

typedef struct sto_scope {
    int none;                   /* sees nothing (but its grants, below) */
    int all;                    /* sees every study */
    char hospital[HR_ID_MAX];   /* otherwise: studies received from this hospital */
    char center[HR_ID_MAX];     /* and, when not "", studies routed to this center */
    char grantee[STO_USER_MAX]; /* when not "": also the studies a mutual-recognition
                                   lookup granted this user (STO_GRANT_KEY_FMT) */
} sto_scope;

/* Where the worklist records a study's routing (worklist/worklist_script.lua,
 * field `center` of the item, set once by its first instance): the access
 * rule reads it, storage never writes it. Same hash slot as the study. */
#define STO_ROUTE_KEY_FMT "hr:wl:{%s}"
#define STO_ROUTE_FIELD   "center"

/* A live grant of a study to a user (reports/recognition.h writes it with a
 * TTL: its existence is the grant); the access rule reads it, storage never
 * writes it. Same hash slot as the study. */
#define STO_GRANT_KEY_FMT "hr:grant:{%s}:%s"

/* "technician", "reader", ... -> role; -1 when unknown. */
int sto_role_parse(const char *name);
const char *sto_role_name(enum sto_role role);

/* The scope of a principal with this role at this hospital (an id of
 * cfg->hospitals; an unknown hospital sees nothing) and center (readers and
 * auditors: a center of cfg run by that hospital; NULL or "" otherwise). */
void sto_scope_for(const hr_config *cfg, enum sto_role role, const char *hospital,
                   const char *center, sto_scope *out);
/* 1 when a study received from study_hospital is visible in scope by its
 * owner alone (a center scope may see more: sto_scope_allows_study). */
int sto_scope_allows(const sto_scope *s, const char *study_hospital);
/* Adds the grants of user (an HTTP principal's name; cut at STO_USER_MAX - 1)
 * to the scope: sto_scope_allows_study then also admits the studies a
 * recognition lookup granted the user. NULL or "": none. */
void sto_scope_grant_user(sto_scope *s, const char *user);
/* 1 when the study (owned by study_hospital) is visible in scope: by its
 * owner, or, for a center scope, because the worklist routed it to the
 * center (one HGET), or because a live grant of the study to the scope's
 * grantee exists (one EXISTS). 0, or -1 when Redis fails. Blocking (pool). */
int sto_scope_allows_study(redisContext *c, const sto_scope *s, const char *study,
                           const char *study_hospital);
/* A hospital filter for sto_query that no study passes by its owner
 * (hospital ids never hold a space): a scope that sees nothing but its
 * grants queries with it and sto_query.grantee. */
#define STO_NO_HOSPITAL " "
/* The hospital filter for sto_query (NULL = no filter). Only meaningful when
 * !s->none. */
const char *sto_scope_filter(const sto_scope *s);
/* The center of a center scope for sto_query.center, or NULL. */
const char *sto_scope_center(const sto_scope *s);

#endif
