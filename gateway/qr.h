/* Query/Retrieve service providers on an SCP association: C-FIND (qr_find.c),
 * C-MOVE and C-GET (qr_move.c), sharing the operation lifecycle in qr.c.
 * Internal to gateway/.
 *
 * One operation at a time per association (asynchronous operations window
 * 1/1): a C-FIND/C-MOVE/C-GET-RQ creates an operation, which becomes the
 * association's work (assoc_state.h: QR_IDENT while it collects the
 * identifier, QR_RUN once it runs) and runs while the association keeps
 * reading, so that a C-CANCEL-RQ (and, during a C-GET, the peer's
 * C-STORE-RSPs) are seen between responses.
 * Any other request while an operation runs is a protocol error (A-ABORT).
 * Redis and disk work runs on the thread pool; responses go out one at a
 * time, the next one queued when the previous write completed.
 *
 * Lifetime: the operation may outlive its association. When the association
 * goes away (abort, close, server stop) the operation is detached: it sends
 * nothing more, stops its sub-operations, and frees itself once every
 * callback it is owed has run. */
#ifndef GW_QR_H
#define GW_QR_H

#include "assoc.h"
#include "../dicom/dataset.h"
#include "../storage/access.h"
#include "../storage/audit.h"
#include "../storage/index.h"

#include <stdatomic.h>

#define GW_IDENT_MAX       (256 * 1024) /* identifier bytes accepted with a request */
#define GW_FIND_PAGE       100          /* C-FIND matches fetched per thread-pool run */
#define GW_RETRIEVE_MAX    65535        /* sub-operations per C-MOVE/C-GET (US counts) */
#define GW_FAILED_UIDS_MAX 65534        /* bytes of Failed SOP Instance UID List */

/* Q/R SOP classes (PS3.4 C.6). */
#define GW_UID_PATIENT_FIND "1.2.840.10008.5.1.4.1.2.1.1"
#define GW_UID_PATIENT_MOVE "1.2.840.10008.5.1.4.1.2.1.2"
#define GW_UID_PATIENT_GET  "1.2.840.10008.5.1.4.1.2.1.3"
#define GW_UID_STUDY_FIND   "1.2.840.10008.5.1.4.1.2.2.1"
#define GW_UID_STUDY_MOVE   "1.2.840.10008.5.1.4.1.2.2.2"
#define GW_UID_STUDY_GET    "1.2.840.10008.5.1.4.1.2.2.3"

/* Statuses of PS3.4 C.4 used here (in addition to dimse.h). */
enum {
    GW_STATUS_FIND_UNSUPPORTED_KEYS = 0xFF01,
    GW_STATUS_MOVE_UNKNOWN_DEST = 0xA801,
    GW_STATUS_RETR_NO_MATCH_COUNT = 0xA701,
    GW_STATUS_RETR_NO_SUBOPS = 0xA702,
    GW_STATUS_RETR_SOME_FAILED = 0xB000,
};

enum gw_qr_kind { GW_QR_FIND, GW_QR_MOVE, GW_QR_GET };
enum gw_qr_model { GW_QR_PATIENT_ROOT, GW_QR_STUDY_ROOT };

typedef struct gw_find gw_find;
typedef struct gw_retr gw_retr;

typedef struct gw_op {
    enum gw_qr_kind kind;
    enum gw_qr_model model;
    gw_assoc *a; /* NULL once detached */
    uv_loop_t *loop;
    dcm_command rq; /* the request */
    uint8_t pc_id;
    char ts[DCM_UID_BUF]; /* transfer syntax of the request's context */
    hr_buf ident;         /* identifier being received */
    int ident_overflow;
    int started; /* identifier complete, operation running */
    int ended;   /* final response sent (or detached) */
    atomic_int cancel;
    int pending; /* callbacks owed to the operation: thread-pool work, writes */
    /* copied when created: a detached operation touches neither the
     * association nor the server */
    char calling_ae[DCM_AE_MAX];
    char our_ae[DCM_AE_MAX];
    char hospital[HR_ID_MAX];
    char address[64];
    sto_scope scope;
    sto_redis_addr redis;
    int redis_timeout_ms;
    char level[16];  /* QueryRetrieveLevel as received */
    char keys[1024]; /* "Tag=value ..." for logs and the audit record */
    uint64_t started_ms;
    gw_find *find;
    gw_retr *retr;
} gw_op;

/* ---- dimse_scp.c -> qr.c ---- */

/* A C-FIND/C-MOVE/C-GET-RQ with a data set arrived on pc: creates *op (owned
 * by qr.c, freed once ended or detached and nothing is owed to it), which
 * collects the identifier; the caller makes it the association's operation
 * (gw__as_op_begin). Returns 0, or a refusal status (comment set, *op NULL)
 * to send once the data set has been drained. */
uint16_t gw__qr_begin(gw_assoc *a, const gw_pc *pc, const dcm_command *rq, char comment[65],
                      gw_op **op);
/* One identifier fragment; last = 1 starts the operation (the caller moved
 * the association to QR_RUN first: the operation may end at once). 0 or an
 * error that aborts the association. */
int gw__qr_data(gw_op *op, const uint8_t *p, size_t n, int last);
/* A command received while op runs: C-CANCEL-RQ, or a C-STORE-RSP of a C-GET
 * sub-operation. 0, or HR_EPROTO (anything else: the association aborts). */
int gw__qr_command(gw_op *op, const dcm_command *c, uint8_t pc_id);
/* As C-CANCEL-RQ (the peer asked for release). Non-zero when the identifier
 * is still incomplete (nothing can be answered: abort). */
int gw__qr_cancel(gw_op *op);
/* The association let op go (abort, close; a->st no longer holds it): no
 * more writes, see the header comment. */
void gw__qr_detach(gw_op *op);
/* 1 while the operation waits for its own work (thread pool, disk): the
 * association's idle timeout does not run. */
int gw__qr_busy(const gw_op *op);

/* ---- shared by qr_find.c and qr_move.c ---- */

/* A response to op's request with this status (no data set). */
void gw__qr_rsp_init(const gw_op *op, dcm_command *r, uint16_t status);
/* Sends r (+ ds) on op's context. with_cb: the kind's continuation
 * (gw__find_sent / gw__retr_sent) runs when written. 0 or an error. */
int gw__qr_send(gw_op *op, const dcm_command *r, const uint8_t *ds, size_t ds_len, int with_cb);
/* Sends the final response (r, + ds) and ends the operation on the
 * association (gw__assoc_op_done: a pending release is answered). */
void gw__qr_final(gw_op *op, const dcm_command *r, const uint8_t *ds, size_t ds_len);
/* Final response with a status and optional error comment, no counts. */
void gw__qr_final_status(gw_op *op, uint16_t status, const char *comment);
/* Frees op when detached and nothing is owed to it. */
void gw__qr_maybe_free(gw_op *op);
/* One audit record for op (no-op when detached or auditing is off). */
void gw__qr_audit(gw_op *op, const char *action, const char *patient, const char *study,
                  const char *detail, const char *outcome);
/* 1 when cancel was requested. */
int gw__qr_cancelled(const gw_op *op);
/* "PATIENT" ... -> level; -1 when unknown. */
int gw__qr_level(const char *s);

/* qr_find.c */
void gw__find_start(gw_op *op, dcm_ds *ident);
void gw__find_sent(gw_op *op, int status);
int gw__find_idle(const gw_op *op);
void gw__find_free(gw_op *op);

/* qr_move.c */
void gw__retr_start(gw_op *op, dcm_ds *ident);
void gw__retr_sent(gw_op *op, int status);
int gw__retr_command(gw_op *op, const dcm_command *c, uint8_t pc_id);
void gw__retr_cancel(gw_op *op);
void gw__retr_audit_aborted(gw_op *op);
void gw__retr_detach(gw_op *op);
int gw__retr_idle(const gw_op *op);
int gw__retr_busy(const gw_op *op);
void gw__retr_free(gw_op *op);

#endif
