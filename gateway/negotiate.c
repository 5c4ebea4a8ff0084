/* A-ASSOCIATE-RQ policy: who may associate, and which presentation contexts
 * and transfer syntaxes huren accepts. */
#include "assoc.h"
#include "qr.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"

#include <arpa/inet.h>
#include <string.h>

/* Picks a transfer syntax for one context: the sender's first supported
 * proposal (compressed data is stored as sent), except that Explicit VR
 * Little Endian wins over the other uncompressed encodings when offered. */
static const char *choose_ts(const dcm_pc_rq *pc, int verification)
{
    const char *first = NULL;
    int has_explicit_le = 0;
    for (int i = 0; i < pc->n_ts; i++) {
        const dcm_ts_info *ts = dcm_transfer_syntax(pc->ts[i]);
        if (!ts)
            continue;
        if (verification && (ts->encapsulated || ts->deflated))
            continue;
        if (!first)
            first = ts->uid;
        if (strcmp(ts->uid, DCM_TS_EXPLICIT_LE) == 0)
            has_explicit_le = 1;
    }
    if (!first)
        return NULL;
    const dcm_ts_info *f = dcm_transfer_syntax(first);
    if (has_explicit_le && !f->encapsulated && !f->deflated)
        return DCM_TS_EXPLICIT_LE;
    return first;
}

static int qr_sop_class(const char *uid)
{
    static const char *const k[] = {GW_UID_PATIENT_FIND, GW_UID_STUDY_FIND,  GW_UID_PATIENT_MOVE,
                                    GW_UID_STUDY_MOVE,   GW_UID_PATIENT_GET, GW_UID_STUDY_GET};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (strcmp(uid, k[i]) == 0)
            return 1;
    return 0;
}

/* SCP/SCU role selection (PS3.7 D.3.3.4): for storage SOP classes (the
 * table, and with dicom.accept_unknown_storage the candidates) the peer may
 * take the SCP role (it receives C-GET sub-operations); every proposed item
 * is answered, a role we do not take as 0. */
static void negotiate_roles(gw_assoc *a, const dcm_assoc_rq *rq, dcm_assoc_ac *ac)
{
    int unknown = a->srv->cfg->dicom.accept_unknown_storage;
    ac->n_roles = 0;
    for (int i = 0; i < rq->n_roles && ac->n_roles < DCM_MAX_ROLES; i++) {
        const dcm_role *r = &rq->roles[i];
        int storage = dcm_storage_accepted(r->sop_class, unknown);
        dcm_role *o = &ac->roles[ac->n_roles++];
        snprintf(o->sop_class, sizeof(o->sop_class), "%s", r->sop_class);
        o->scu = r->scu ? 1 : 0;
        o->scp = storage && r->scp ? 1 : 0;
        if (!o->scp)
            continue;
        for (int j = 0; j < a->n_pcs; j++)
            if (strcmp(a->pcs[j].abstract_syntax, r->sop_class) == 0)
                a->pcs[j].peer_scp = 1;
    }
}

int gw__negotiate(gw_assoc *a, const dcm_assoc_rq *rq, dcm_assoc_ac *ac, uint8_t rj[3])
{
    const hr_config *cfg = a->srv->cfg;
    rj[0] = DCM_RJ_PERMANENT;
    if (!(rq->protocol_version & 1)) {
        rj[1] = DCM_RJ_SRC_ACSE;
        rj[2] = DCM_RJ_ACSE_PROTOCOL_VERSION;
        return -1;
    }
    if (strcmp(rq->app_context, DCM_UID_APP_CONTEXT) != 0) {
        rj[1] = DCM_RJ_SRC_USER;
        rj[2] = DCM_RJ_USER_APP_CONTEXT;
        return -1;
    }
    if (strcmp(rq->called_ae, cfg->dicom.ae_title) != 0) {
        hr_warn("dicom", "%s: rejected: called AE \"%s\" is not ours (\"%s\")", a->peer,
                rq->called_ae, cfg->dicom.ae_title);
        rj[1] = DCM_RJ_SRC_USER;
        rj[2] = DCM_RJ_USER_CALLED_AE;
        return -1;
    }
    if (rq->max_pdu != 0 && rq->max_pdu < GW_PEER_MIN_PDU) {
        hr_warn("dicom", "%s: rejected: maximum PDU length %u is below %u", a->peer, rq->max_pdu,
                GW_PEER_MIN_PDU);
        rj[1] = DCM_RJ_SRC_ACSE;
        rj[2] = DCM_RJ_ACSE_NO_REASON;
        return -1;
    }
    const hr_hospital *h = hr_config_hospital_by_ae(cfg, rq->calling_ae);
    if (!h || !hr_hospital_allows(h, (const struct sockaddr *)&a->peer_addr)) {
        hr_warn("dicom", "%s: rejected: calling AE \"%s\" %s", a->peer, rq->calling_ae,
                h ? "is not allowed from this address" : "is not configured");
        rj[1] = DCM_RJ_SRC_USER;
        rj[2] = DCM_RJ_USER_CALLING_AE;
        return -1;
    }
    if (a->srv->stats.associations_active >= cfg->dicom.max_associations) {
        hr_warn("dicom", "%s: rejected: %d associations already active", a->peer,
                a->srv->stats.associations_active);
        rj[0] = DCM_RJ_TRANSIENT;
        rj[1] = DCM_RJ_SRC_PRESENTATION;
        rj[2] = DCM_RJ_PRES_LOCAL_LIMIT;
        return -1;
    }
    a->hospital = h;
    snprintf(a->calling_ae, sizeof(a->calling_ae), "%s", rq->calling_ae);
    a->peer_max_pdu = rq->max_pdu;

    memset(ac, 0, sizeof(*ac));
    snprintf(ac->called_ae, sizeof(ac->called_ae), "%s", rq->called_ae);
    snprintf(ac->calling_ae, sizeof(ac->calling_ae), "%s", rq->calling_ae);
    ac->max_pdu = cfg->dicom.max_pdu;
    snprintf(ac->impl_class_uid, sizeof(ac->impl_class_uid), "%s", HR_IMPL_CLASS_UID);
    snprintf(ac->impl_version, sizeof(ac->impl_version), "%s", HR_IMPL_VERSION);
    if (rq->has_async) {
        ac->has_async = 1;
        ac->max_ops_invoked = 1;
        ac->max_ops_performed = 1;
    }
    a->n_pcs = 0;
    int n_accepted = 0;
    for (int i = 0; i < rq->n_pc; i++) {
        const dcm_pc_rq *p = &rq->pc[i];
        dcm_pc_ac *o = &ac->pc[ac->n_pc++];
        gw_pc *g = &a->pcs[a->n_pcs++];
        o->id = g->id = p->id;
        snprintf(g->abstract_syntax, sizeof(g->abstract_syntax), "%s", p->abstract_syntax);
        /* commands and identifiers: uncompressed syntaxes only */
        int plain = strcmp(p->abstract_syntax, DCM_UID_VERIFICATION) == 0 ||
                    qr_sop_class(p->abstract_syntax);
        if (!plain &&
            !dcm_storage_accepted(p->abstract_syntax, cfg->dicom.accept_unknown_storage)) {
            o->result = DCM_PC_ABSTRACT_UNSUPPORTED;
            continue;
        }
        const char *ts = choose_ts(p, plain);
        if (!ts) {
            o->result = DCM_PC_TS_UNSUPPORTED;
            continue;
        }
        o->result = DCM_PC_ACCEPT;
        snprintf(o->ts, sizeof(o->ts), "%s", ts);
        snprintf(g->ts, sizeof(g->ts), "%s", ts);
        g->accepted = 1;
        n_accepted++;
    }
    negotiate_roles(a, rq, ac);
    hr_info("dicom", "%s: association %s -> %s (%s), %d of %d contexts accepted", a->peer,
            rq->calling_ae, rq->called_ae, h->id, n_accepted, rq->n_pc);
    return 0;
}
