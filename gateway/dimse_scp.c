/* DIMSE service provider on an established association: C-ECHO and C-STORE
 * (into storage/ingest), with PS3.4 status codes; C-FIND, C-MOVE and C-GET
 * are handed to qr.c once their request arrives. */
#include "assoc.h"
#include "qr.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"
#include "../storage/access.h"
#include "../storage/keys.h"

#include <stdio.h>
#include <string.h>

static const gw_pc *find_pc(const gw_assoc *a, uint8_t id)
{
    for (int i = 0; i < a->n_pcs; i++)
        if (a->pcs[i].id == id && a->pcs[i].accepted)
            return &a->pcs[i];
    return NULL;
}

static int respond(gw_assoc *a, uint16_t status, const char *comment)
{
    dcm_command r;
    memset(&r, 0, sizeof(r));
    r.command_field = a->cur.command_field | 0x8000;
    r.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    r.message_id_responded = a->cur.message_id;
    r.data_set_type = DCM_DATASET_NONE;
    r.status = status;
    snprintf(r.affected_sop_class, sizeof(r.affected_sop_class), "%s", a->cur.affected_sop_class);
    snprintf(r.affected_sop_instance, sizeof(r.affected_sop_instance), "%s",
             a->cur.affected_sop_instance);
    if (comment && status != DCM_STATUS_SUCCESS)
        snprintf(r.error_comment, sizeof(r.error_comment), "%s", comment);
    a->have_cmd = 0;
    return gw__assoc_send_command(a, a->cmd_pc, &r);
}

static void resume_reading(void *arg)
{
    gw__assoc_resume(arg);
}

static uint16_t store_status(enum sto_ingest_status st)
{
    switch (st) {
    case STO_STORED:
    case STO_IDENTICAL:
        return DCM_STATUS_SUCCESS;
    case STO_NEW_VERSION:
        return DCM_STATUS_WARN_COERCION;
    case STO_ERR_PARSE:
        return DCM_STATUS_CANNOT_UNDERSTAND;
    case STO_ERR_MISMATCH:
        return DCM_STATUS_DS_MISMATCH;
    case STO_ERR_REFUSED:
        return DCM_STATUS_NOT_AUTHORIZED;
    case STO_ERR_RESOURCES:
    default:
        return DCM_STATUS_OUT_OF_RESOURCES;
    }
}

static int accepted(enum sto_ingest_status st)
{
    return st == STO_STORED || st == STO_IDENTICAL || st == STO_NEW_VERSION;
}

/* One audit record per C-STORE, accepted or not (the sender, the patient,
 * the study and the instance). */
static void audit_store(gw_assoc *a, const sto_ingest_result *r, uint16_t status)
{
    sto_audit *log = a->srv->sto->audit;
    if (!log)
        return;
    char pkey[STO_PKEY_MAX], rid[96], detail[192];
    sto_patient_key(r->attrs, r->owner[0] ? r->owner : a->hospital->id, pkey);
    snprintf(rid, sizeof(rid), "%s#%u", a->peer, a->cur.message_id);
    snprintf(detail, sizeof(detail), "%s status %04X%s", a->cur.affected_sop_instance, status,
             r->status == STO_IDENTICAL ? " identical copy" : "");
    sto_audit_event ev = {
        .actor = a->calling_ae,
        .role = sto_role_name(STO_ROLE_DICOM_PEER),
        .hospital = a->hospital->id,
        .address = a->peer,
        .action = "c-store",
        .patient = pkey,
        .study = r->attrs->study_instance_uid,
        .detail = detail,
        .outcome = accepted(r->status)            ? "success"
                   : r->status == STO_ERR_REFUSED ? "denied"
                                                  : "failure",
        .request_id = rid,
    };
    sto_audit_log(log, &ev);
}

static void on_stored(void *arg, const sto_ingest_result *r)
{
    gw_assoc *a = arg;
    enum gw_as_do next = gw__assoc_store_done(a);
    if (next != GW_AS_RESPOND && next != GW_AS_RESUME)
        return; /* closing (and perhaps freed) */
    uint16_t status = store_status(r->status);
    if (status == DCM_STATUS_SUCCESS && r->patient_conflict)
        status = DCM_STATUS_WARN_COERCION; /* stored; the comment says what differs */
    audit_store(a, r, status);
    if (status == DCM_STATUS_SUCCESS || status == DCM_STATUS_WARN_COERCION)
        a->srv->stats.stores_ok++;
    else
        a->srv->stats.stores_failed++;
    if (r->status == STO_STORED || r->status == STO_IDENTICAL || r->status == STO_NEW_VERSION)
        hr_debug("dicom", "%s: stored %s as %s%s", a->peer, r->attrs->sop_instance_uid, r->sha,
                 r->status == STO_IDENTICAL ? " (identical copy)" : "");
    else
        hr_warn("dicom", "%s: C-STORE %s refused with %04X: %s", a->peer,
                a->cur.affected_sop_instance, status, r->reason);
    if (next == GW_AS_RESPOND)
        respond(a, status, r->reason); /* not after an abort (Sta13) */
    gw__assoc_resume(a);
}

/* A C-STORE-RQ has been parsed: start receiving its data set. */
static void begin_store(gw_assoc *a, const gw_pc *pc)
{
    const dcm_command *c = &a->cur;
    a->drain_status = 0;
    if (strcmp(c->affected_sop_class, pc->abstract_syntax) != 0) {
        a->drain_status = DCM_STATUS_SOP_CLASS_UNSUPPORTED;
        snprintf(a->drain_comment, sizeof(a->drain_comment),
                 "SOP class differs from the presentation context");
        return;
    }
    sto_ingest_meta m;
    memset(&m, 0, sizeof(m));
    snprintf(m.sop_class, sizeof(m.sop_class), "%s", c->affected_sop_class);
    snprintf(m.sop_instance, sizeof(m.sop_instance), "%s", c->affected_sop_instance);
    snprintf(m.ts, sizeof(m.ts), "%s", pc->ts);
    snprintf(m.source_ae, sizeof(m.source_ae), "%s", a->calling_ae);
    snprintf(m.hospital, sizeof(m.hospital), "%s", a->hospital->id);
    m.hub_hospital = strcmp(a->hospital->id, a->srv->cfg->dicom.hospital) == 0;
    sto_ingest *ig = NULL;
    int rc = sto_ingest_begin(a->srv->sto, &m, resume_reading, a, &ig);
    if (!rc) {
        rc = gw__as_store_begin(&a->st, ig);
        if (rc)
            sto_ingest_abort(ig);
    }
    if (rc == HR_EPARSE) {
        a->drain_status = DCM_STATUS_CANNOT_UNDERSTAND;
        snprintf(a->drain_comment, sizeof(a->drain_comment),
                 "invalid Affected SOP Class or Instance UID");
    } else if (rc) {
        a->drain_status = DCM_STATUS_OUT_OF_RESOURCES;
        snprintf(a->drain_comment, sizeof(a->drain_comment), "cannot start storing: %s",
                 hr_strerror(rc));
    }
}

static int on_command(gw_assoc *a, uint8_t pc_id)
{
    dcm_command c;
    int rc = dcm_command_parse(a->cmd.data, a->cmd.len, &c);
    hr_buf_reset(&a->cmd);
    if (rc)
        return rc;
    int has_data = c.data_set_type != DCM_DATASET_NONE;
    gw_op *op = gw__as_op(&a->st);
    if (op) {
        /* an operation runs: only its C-CANCEL or C-GET sub-operation
         * responses may come (asynchronous operations window 1/1) */
        if (has_data)
            return HR_EPROTO;
        return gw__qr_command(op, &c, pc_id);
    }
    a->cur = c;
    a->have_cmd = 1;
    a->cmd_pc = pc_id;
    a->drain_status = 0;
    const gw_pc *pc = find_pc(a, pc_id);
    switch (a->cur.command_field) {
    case DCM_C_ECHO_RQ:
        if (has_data)
            return HR_EPROTO;
        return respond(a, DCM_STATUS_SUCCESS, NULL);
    case DCM_C_STORE_RQ:
        if (!has_data)
            return HR_EPROTO;
        begin_store(a, pc);
        return 0;
    case DCM_C_FIND_RQ:
    case DCM_C_MOVE_RQ:
    case DCM_C_GET_RQ:
        if (!has_data)
            return respond(a, DCM_STATUS_DS_MISMATCH, "identifier missing");
        a->drain_status = gw__qr_begin(a, pc, &a->cur, a->drain_comment, &op);
        if (op && gw__as_op_begin(&a->st, op) != 0) {
            gw__qr_detach(op);
            return HR_ESTATE;
        }
        return 0;
    case DCM_C_CANCEL_RQ:
        a->have_cmd = 0; /* nothing to cancel */
        return 0;
    default:
        if (dcm_command_is_response(a->cur.command_field))
            return HR_EPROTO;
        if (has_data) {
            a->drain_status = 0x0211; /* unrecognized operation, after its data */
            snprintf(a->drain_comment, sizeof(a->drain_comment), "operation not supported");
            return 0;
        }
        return respond(a, 0x0211, "operation not supported");
    }
}

int gw__dimse_pdv(gw_assoc *a, const dcm_pdv *pdv)
{
    if (!find_pc(a, pdv->pc_id))
        return HR_EPROTO; /* PDV on a context that was not accepted */
    enum gw_work work = gw__as_work(&a->st);
    if (pdv->is_command) {
        if (a->have_cmd || work == GW_WORK_DURABLE)
            return HR_EPROTO; /* a new command while the previous one's data is due */
        int rc = hr_buf_append(&a->cmd, pdv->data, pdv->len);
        if (rc)
            return rc;
        return pdv->is_last ? on_command(a, pdv->pc_id) : 0;
    }
    /* data set fragment */
    if (!a->have_cmd || work == GW_WORK_DURABLE || pdv->pc_id != a->cmd_pc)
        return HR_EPROTO;
    if (work == GW_WORK_QR_IDENT) {
        /* a query/retrieve identifier; its last fragment starts the operation
         * (which may end at once) */
        gw_op *op = gw__as_op(&a->st);
        if (pdv->is_last) {
            a->have_cmd = 0;
            int rc = gw__as_op_started(&a->st);
            if (rc)
                return rc;
        }
        return gw__qr_data(op, pdv->data, pdv->len, pdv->is_last);
    }
    sto_ingest *ig = gw__as_ingest(&a->st);
    if (ig && sto_ingest_feed(ig, pdv->data, pdv->len) == 1) {
        int rc = gw__assoc_store_full(a);
        if (rc)
            return rc;
    }
    if (!pdv->is_last)
        return 0;
    if (ig) {
        int rc = gw__assoc_store_end(a);
        if (rc)
            return rc;
        sto_ingest_end(ig, on_stored, a);
        return 0;
    }
    if (a->cur.command_field == DCM_C_STORE_RQ)
        a->srv->stats.stores_failed++;
    hr_warn("dicom", "%s: %s refused with %04X: %s", a->peer,
            a->cur.command_field == DCM_C_STORE_RQ ? a->cur.affected_sop_instance : "request",
            a->drain_status, a->drain_comment);
    return respond(a, a->drain_status ? a->drain_status : DCM_STATUS_PROCESSING_FAILURE,
                   a->drain_comment);
}
