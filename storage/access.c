#include "access.h"

#include <stdio.h>
#include <string.h>

static const char *const k_roles[STO_ROLE_COUNT] = {
    "technician", "reader", "auditor", "external", "admin", "dicom-peer", "office",
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

void sto_scope_for(const hr_config *cfg, enum sto_role role, const char *hospital,
                   const char *center, sto_scope *out)
{
    memset(out, 0, sizeof(*out));
    const hr_hospital *h = hospital ? hr_config_hospital(cfg, hospital) : NULL;
    if (role == STO_ROLE_ADMIN) {
        out->all = 1;
        return;
    }
    if (!h || role == STO_ROLE_EXTERNAL || role == STO_ROLE_OFFICE ||
        (unsigned)role >= STO_ROLE_COUNT) {
        out->none = 1;
        return;
    }
    /* the county hospital's PACS peers see the community (they pull what
     * their hospital reads); readers and auditors see their hospital's
     * studies and those routed to their center (decision 0005) */
    if (h->level == HR_LEVEL_COUNTY && role == STO_ROLE_DICOM_PEER) {
        out->all = 1;
        return;
    }
    snprintf(out->hospital, sizeof(out->hospital), "%s", h->id);
    const hr_center *ce = center && *center ? hr_config_center(cfg, center) : NULL;
    if ((role == STO_ROLE_READER || role == STO_ROLE_AUDITOR) && ce &&
        strcmp(ce->hospital, h->id) == 0)
        snprintf(out->center, sizeof(out->center), "%s", ce->id);
}

int sto_scope_allows(const sto_scope *s, const char *study_hospital)
{
    if (s->none)
        return 0;
    if (s->all)
        return 1;
    return study_hospital && strcmp(s->hospital, study_hospital) == 0;
}

void sto_scope_grant_user(sto_scope *s, const char *user)
{
    snprintf(s->grantee, sizeof(s->grantee), "%s", user ? user : "");
}

int sto_scope_allows_study(redisContext *c, const sto_scope *s, const char *study,
                           const char *study_hospital)
{
    if (sto_scope_allows(s, study_hospital))
        return 1;
    if (!s->none && s->center[0]) {
        redisReply *r = redisCommand(c, "HGET " STO_ROUTE_KEY_FMT " " STO_ROUTE_FIELD, study);
        int rc = !r || r->type == REDIS_REPLY_ERROR ? -1
                 : r->type == REDIS_REPLY_STRING    ? strcmp(r->str, s->center) == 0
                                                    : 0;
        freeReplyObject(r);
        if (rc)
            return rc;
    }
    if (!s->grantee[0] || s->all)
        return 0;
    redisReply *r = redisCommand(c, "EXISTS " STO_GRANT_KEY_FMT, study, s->grantee);
    int rc = !r || r->type != REDIS_REPLY_INTEGER ? -1 : r->integer > 0;
    freeReplyObject(r);
    return rc;
}

const char *sto_scope_filter(const sto_scope *s)
{
    return s->all ? NULL : s->hospital;
}

const char *sto_scope_center(const sto_scope *s)
{
    return !s->all && s->center[0] ? s->center : NULL;
}
