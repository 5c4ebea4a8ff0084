/* Query/retrieve operations on an SCP association: creation, identifier
 * collection, cancel, detachment, responses, audit (see qr.h). */
#include "qr.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATASET_PRESENT 0x0102

static const struct {
    const char *uid;
    uint16_t command;
    enum gw_qr_kind kind;
    enum gw_qr_model model;
} k_classes[] = {
    {GW_UID_PATIENT_FIND, DCM_C_FIND_RQ, GW_QR_FIND, GW_QR_PATIENT_ROOT},
    {GW_UID_STUDY_FIND, DCM_C_FIND_RQ, GW_QR_FIND, GW_QR_STUDY_ROOT},
    {GW_UID_PATIENT_MOVE, DCM_C_MOVE_RQ, GW_QR_MOVE, GW_QR_PATIENT_ROOT},
    {GW_UID_STUDY_MOVE, DCM_C_MOVE_RQ, GW_QR_MOVE, GW_QR_STUDY_ROOT},
    {GW_UID_PATIENT_GET, DCM_C_GET_RQ, GW_QR_GET, GW_QR_PATIENT_ROOT},
    {GW_UID_STUDY_GET, DCM_C_GET_RQ, GW_QR_GET, GW_QR_STUDY_ROOT},
};

int gw__qr_level(const char *s)
{
    static const char *const names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int gw__qr_cancelled(const gw_op *op)
{
    return atomic_load(&((gw_op *)op)->cancel) != 0;
}

/* "10.1.2.3:4567" or "::1:4567" -> the address without the port. */
static void peer_address(const char *peer, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = '\0';
}

uint16_t gw__qr_begin(gw_assoc *a, const gw_pc *pc, const dcm_command *rq, char comment[65],
                      gw_op **out)
{
    int k = -1;
    *out = NULL;
    for (size_t i = 0; i < sizeof(k_classes) / sizeof(k_classes[0]); i++)
        if (pc && strcmp(pc->abstract_syntax, k_classes[i].uid) == 0)
            k = (int)i;
    if (k < 0 || k_classes[k].command != rq->command_field ||
        strcmp(rq->affected_sop_class, pc->abstract_syntax) != 0) {
        snprintf(comment, 65, "SOP class differs from the presentation context");
        return DCM_STATUS_SOP_CLASS_UNSUPPORTED;
    }
    /* fail closed: no read of patient data the audit log cannot record */
    if (sto_audit_admit_read(a->srv->sto->audit, a->peer)) {
        snprintf(comment, 65, "audit log unavailable: try again later");
        return k_classes[k].kind == GW_QR_FIND ? DCM_STATUS_OUT_OF_RESOURCES
                                               : DCM_STATUS_OUT_OF_RESOURCES_SUBOPS;
    }
    gw_op *op = calloc(1, sizeof(*op));
    if (!op) {
        snprintf(comment, 65, "out of memory");
        return DCM_STATUS_OUT_OF_RESOURCES;
    }
    const hr_config *cfg = a->srv->cfg;
    op->kind = k_classes[k].kind;
    op->model = k_classes[k].model;
    op->a = a;
    op->loop = a->tcp.loop;
    op->rq = *rq;
    op->pc_id = pc->id;
    snprintf(op->ts, sizeof(op->ts), "%s", pc->ts);
    hr_buf_init(&op->ident, GW_IDENT_MAX);
    atomic_init(&op->cancel, 0);
    snprintf(op->calling_ae, sizeof(op->calling_ae), "%s", a->calling_ae);
    snprintf(op->our_ae, sizeof(op->our_ae), "%s", cfg->dicom.ae_title);
    snprintf(op->hospital, sizeof(op->hospital), "%s", a->hospital->id);
    peer_address(a->peer, op->address, sizeof(op->address));
    sto_scope_for(cfg, STO_ROLE_DICOM_PEER, a->hospital->id, NULL, &op->scope);
    op->redis = a->srv->sto->redis_addr;
    op->redis_timeout_ms = a->srv->sto->redis_timeout_ms ? a->srv->sto->redis_timeout_ms : 2000;
    op->started_ms = uv_now(op->loop);
    *out = op;
    return 0;
}

int gw__qr_data(gw_op *op, const uint8_t *p, size_t n, int last)
{
    if (!op->ident_overflow && hr_buf_append(&op->ident, p, n) != 0) {
        op->ident_overflow = 1;
        hr_buf_free(&op->ident);
    }
    if (!last)
        return 0;
    op->started = 1;
    if (op->ident_overflow) {
        gw__qr_final_status(op, DCM_STATUS_CANNOT_UNDERSTAND, "identifier larger than 256 KB");
        return 0;
    }
    dcm_ds *ds = NULL;
    int rc = dcm_ds_parse(op->ident.data, op->ident.len, op->ts, GW_IDENT_MAX, &ds);
    hr_buf_free(&op->ident);
    if (rc) {
        char c[65];
        snprintf(c, sizeof(c), "cannot parse the identifier: %s", hr_strerror(rc));
        gw__qr_final_status(op, DCM_STATUS_CANNOT_UNDERSTAND, c);
        return 0;
    }
    rc = dcm_ds_get_string(ds, DCM_TAG(0x0008, 0x0052), op->level, sizeof(op->level));
    if (rc || gw__qr_level(op->level) < 0) {
        dcm_ds_free(ds);
        gw__qr_final_status(op, DCM_STATUS_DS_MISMATCH,
                            rc ? "QueryRetrieveLevel missing" : "QueryRetrieveLevel unknown");
        return 0;
    }
    if (op->kind == GW_QR_FIND)
        gw__find_start(op, ds);
    else
        gw__retr_start(op, ds);
    return 0;
}

int gw__qr_cancel(gw_op *op)
{
    atomic_store(&op->cancel, 1);
    if (!op->started)
        return 1;
    if (op->retr)
        gw__retr_cancel(op);
    return 0;
}

int gw__qr_command(gw_op *op, const dcm_command *c, uint8_t pc_id)
{
    if (c->command_field == DCM_C_CANCEL_RQ) {
        /* PS3.7 9.3.2.3: a cancel for another message is ignored */
        if (c->message_id_responded == op->rq.message_id && op->started && !op->ended) {
            hr_info("dicom", "%s: C-CANCEL-RQ for message %u", op->calling_ae, op->rq.message_id);
            gw__qr_cancel(op);
        }
        return 0;
    }
    if (c->command_field == DCM_C_STORE_RSP && op->kind == GW_QR_GET && op->retr)
        return gw__retr_command(op, c, pc_id);
    return HR_EPROTO; /* one operation at a time (asynchronous window 1/1) */
}

void gw__qr_detach(gw_op *op)
{
    gw_assoc *a = op->a;
    if (!a)
        return;
    atomic_store(&op->cancel, 1);
    if (op->retr && op->started && !op->ended)
        gw__retr_audit_aborted(op);
    else if (op->find && !op->ended)
        gw__qr_audit(op, "c-find", NULL, NULL, op->keys, "aborted");
    op->a = NULL;
    op->ended = 1;
    if (op->retr)
        gw__retr_detach(op); /* stops its sub-operations; their callbacks see no association */
    gw__qr_maybe_free(op);
}

int gw__qr_busy(const gw_op *op)
{
    if (op->retr)
        return gw__retr_busy(op);
    return op->find && !gw__find_idle(op);
}

void gw__qr_rsp_init(const gw_op *op, dcm_command *r, uint16_t status)
{
    memset(r, 0, sizeof(*r));
    r->command_field = op->rq.command_field | 0x8000;
    r->flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    r->message_id_responded = op->rq.message_id;
    r->data_set_type = DCM_DATASET_NONE;
    r->status = status;
    snprintf(r->affected_sop_class, sizeof(r->affected_sop_class), "%s", op->rq.affected_sop_class);
}

static void on_sent(void *arg, int status)
{
    gw_op *op = arg;
    op->pending--;
    if (!op->a) {
        gw__qr_maybe_free(op);
        return;
    }
    gw__assoc_touch(op->a);
    if (op->kind == GW_QR_FIND)
        gw__find_sent(op, status);
    else
        gw__retr_sent(op, status);
}

int gw__qr_send(gw_op *op, const dcm_command *r, const uint8_t *ds, size_t ds_len, int with_cb)
{
    if (!op->a)
        return HR_ESTATE;
    dcm_command c = *r;
    c.data_set_type = ds ? DATASET_PRESENT : DCM_DATASET_NONE;
    int rc = gw__assoc_send_message(op->a, op->pc_id, &c, ds, ds_len, with_cb ? on_sent : NULL, op);
    if (!rc && with_cb)
        op->pending++;
    return rc;
}

void gw__qr_final(gw_op *op, const dcm_command *r, const uint8_t *ds, size_t ds_len)
{
    gw_assoc *a = op->a;
    if (!a || op->ended)
        return;
    if (gw__qr_send(op, r, ds, ds_len, 0) != 0)
        hr_warn("dicom", "%s: cannot send the final response", a->peer);
    hr_debug("dicom", "%s: message %u ends with %04X", a->peer, op->rq.message_id, r->status);
    op->ended = 1;
    op->a = NULL;
    gw__assoc_op_done(a, op);
    gw__qr_maybe_free(op);
}

void gw__qr_final_status(gw_op *op, uint16_t status, const char *comment)
{
    dcm_command r;
    gw__qr_rsp_init(op, &r, status);
    if (comment)
        snprintf(r.error_comment, sizeof(r.error_comment), "%s", comment);
    if (status != DCM_STATUS_SUCCESS && op->a)
        hr_warn("dicom", "%s: %s refused with %04X: %s", op->a->peer,
                op->kind == GW_QR_FIND   ? "C-FIND"
                : op->kind == GW_QR_MOVE ? "C-MOVE"
                                         : "C-GET",
                status, comment ? comment : "");
    if (op->kind == GW_QR_FIND && status != DCM_STATUS_SUCCESS && status != DCM_STATUS_CANCEL)
        gw__qr_audit(op, "c-find", NULL, NULL, op->keys[0] ? op->keys : comment, "failure");
    gw__qr_final(op, &r, NULL, 0);
}

void gw__qr_maybe_free(gw_op *op)
{
    if (op->a || op->pending)
        return;
    if (op->find && !gw__find_idle(op))
        return;
    if (op->retr && !gw__retr_idle(op))
        return;
    if (op->find)
        gw__find_free(op);
    if (op->retr)
        gw__retr_free(op);
    hr_buf_free(&op->ident);
    free(op);
}

void gw__qr_audit(gw_op *op, const char *action, const char *patient, const char *study,
                  const char *detail, const char *outcome)
{
    if (!op->a || !op->a->srv->sto->audit)
        return;
    char rid[96]; /* the association (peer address:port) and the message */
    snprintf(rid, sizeof(rid), "%s#%u", op->a->peer, op->rq.message_id);
    sto_audit_event ev = {
        .actor = op->calling_ae,
        .role = sto_role_name(STO_ROLE_DICOM_PEER),
        .hospital = op->hospital,
        .address = op->address,
        .action = action,
        .patient = patient,
        .study = study,
        .detail = detail,
        .outcome = outcome,
        .request_id = rid,
    };
    sto_audit_log(op->a->srv->sto->audit, &ev);
}
