/* Who may see which studies: one rule for DICOMweb users and DIMSE peers
 * (docs/decisions/0005-access-scope.md). A scope is "nothing", "everything",
 * or "studies received from one hospital". */
#ifndef STO_ACCESS_H
#define STO_ACCESS_H

#include "../common/hr_config.h"

enum sto_role {
    STO_ROLE_TECHNICIAN, /* township or county technician: own hospital */
    STO_ROLE_READER,     /* county center reader */
    STO_ROLE_AUDITOR,    /* county center auditor (审核医师) */
    STO_ROLE_EXTERNAL,   /* doctor at another hospital: nothing yet (recognition issue) */
    STO_ROLE_ADMIN,      /* everything */
    STO_ROLE_DICOM_PEER, /* a calling AE title of a configured hospital */
    STO_ROLE_COUNT
};

typedef struct sto_scope {
    int none;                 /* sees nothing */
    int all;                  /* sees every study */
    char hospital[HR_ID_MAX]; /* otherwise: only studies received from this hospital */
} sto_scope;

/* "technician", "reader", ... -> role; -1 when unknown. */
int sto_role_parse(const char *name);
const char *sto_role_name(enum sto_role role);

/* The scope of a principal with this role at this hospital (an id of
 * cfg->hospitals; an unknown hospital sees nothing). */
void sto_scope_for(const hr_config *cfg, enum sto_role role, const char *hospital, sto_scope *out);
/* 1 when a study received from study_hospital is visible in scope. */
int sto_scope_allows(const sto_scope *s, const char *study_hospital);
/* The hospital filter for sto_query (NULL = no filter). Only meaningful when
 * !s->none. */
const char *sto_scope_filter(const sto_scope *s);

#endif
