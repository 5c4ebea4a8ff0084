#include "access.h"

#include <stdio.h>
#include <string.h>

static const char *const k_roles[STO_ROLE_COUNT] = {
    "technician", "reader", "auditor", "external", "admin", "dicom-peer",
};

int sto_role_parse(const char *name)
{
    for (int i = 0; i < STO_ROLE_COUNT; i++)
        if (strcmp(name, k_roles[i]) == 0)
            return i;
    return -1;
}

const char *sto_role_name(enum sto_role role)
{
    return (unsigned)role < STO_ROLE_COUNT ? k_roles[role] : "unknown";
}

void sto_scope_for(const hr_config *cfg, enum sto_role role, const char *hospital, sto_scope *out)
{
    memset(out, 0, sizeof(*out));
    const hr_hospital *h = hospital ? hr_config_hospital(cfg, hospital) : NULL;
    if (role == STO_ROLE_ADMIN) {
        out->all = 1;
        return;
    }
    if (!h || role == STO_ROLE_EXTERNAL || (unsigned)role >= STO_ROLE_COUNT) {
        out->none = 1;
        return;
    }
    /* The county centers read every township's exams; until routing rules
     * (worklist issue) narrow this to the studies routed to a reader's center,
     * county-level readers, auditors and PACS peers see the whole community. */
    if (h->level == HR_LEVEL_COUNTY &&
        (role == STO_ROLE_READER || role == STO_ROLE_AUDITOR || role == STO_ROLE_DICOM_PEER)) {
        out->all = 1;
        return;
    }
    snprintf(out->hospital, sizeof(out->hospital), "%s", h->id);
}

int sto_scope_allows(const sto_scope *s, const char *study_hospital)
{
    if (s->none)
        return 0;
    if (s->all)
        return 1;
    return study_hospital && strcmp(s->hospital, study_hospital) == 0;
}

const char *sto_scope_filter(const sto_scope *s)
{
    return s->all ? NULL : s->hospital;
}
