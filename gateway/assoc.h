/* One DICOM association (SCP side): internal to gateway/. */
#ifndef GW_ASSOC_H
#define GW_ASSOC_H

#include "assoc_state.h"
#include "dicom_server.h"
#include "../common/hr_buf.h"
#include "../dicom/assoc_fsm.h"
#include "../dicom/dimse.h"
#include "../dicom/pdu.h"

#include <uv.h>

#define GW_RQ_MAX_LEN   65536 /* A-ASSOCIATE-RQ limit before the peer is known */
#define GW_PEER_MIN_PDU 1024  /* smaller proposed maxima are refused */

struct gw_dicom_server {
    uv_loop_t *loop;
    const hr_config *cfg;
    sto_ctx *sto;
    uv_tcp_t listener;
    struct gw_assoc *assocs;    /* doubly linked list of live associations */
    int n_conns;                /* TCP connections, any state, admitted or being refused */
    gw_dicom_stats stats;       /* stats.connections_open: admitted ones */
    uint64_t refusal_logged_ms; /* loop time of the last refusal logged (rate limit) */
    uint64_t refusals_unlogged; /* refusals since, not logged */
    int stopping;
    void (*stop_cb)(void *);
    void *stop_arg;
};

typedef struct gw_pc {
    uint8_t id;
    uint8_t accepted;
    uint8_t peer_scp; /* role selection: the peer accepted to be SCP (C-GET sub-operations) */
    char abstract_syntax[DCM_UID_BUF];
    char ts[DCM_UID_BUF];
} gw_pc;

struct gw_op; /* a C-FIND / C-MOVE / C-GET in progress (qr.h) */

/* Completion of a write: status 0 or a libuv error (UV_ECANCELED when the
 * connection closed first). Runs from a later loop iteration. */
typedef void (*gw_sent_cb)(void *arg, int status);

typedef struct gw_assoc {
    uv_tcp_t tcp;
    uv_timer_t timer; /* ARTIM in Sta2/Sta13, idle timeout in Sta6 */
    gw_dicom_server *srv;
    struct gw_assoc *prev, *next;
    gw_astate st; /* PS3.8 state, DIMSE work, pause, release, closing: assoc_state.h */
    char peer[64];
    struct sockaddr_storage peer_addr;
    uint8_t peer_ip[16]; /* peer address, IPv4 mapped into IPv6: per-address counts */
    int admitted;        /* counted in stats.connections_open */
    int reset;           /* close with a TCP RST (refused at accept) */
    char calling_ae[DCM_AE_MAX];
    const hr_hospital *hospital;
    uint32_t peer_max_pdu;
    int n_pcs;
    gw_pc pcs[DCM_MAX_PCS];

    hr_buf in;  /* received bytes, one PDU at a time */
    hr_buf cmd; /* command set being assembled */
    hr_buf out; /* scratch for encoding */

    /* current DIMSE message (dimse_scp.c) */
    int have_cmd;
    uint8_t cmd_pc;
    dcm_command cur;
    uint16_t drain_status; /* non-zero: data set is consumed and refused with this status */
    char drain_comment[65];
    uint16_t next_msg_id; /* our requests on this association (C-GET sub-operations) */

    uint64_t last_activity; /* loop time (ms) of the last byte, resume or progress */
    int reading;            /* uv_read_start in effect */
    int counted;            /* counted in associations_active */
} gw_assoc;

/* dicom_server.c: called when a connection is gone; completes a stop. */
void gw__server_maybe_done(gw_dicom_server *srv);

/* assoc.c */
void gw__assoc_start(gw_dicom_server *srv, gw_assoc *a);
void gw__assoc_abort(gw_assoc *a, uint8_t source, uint8_t reason);
void gw__assoc_close(gw_assoc *a);
int gw__assoc_send_command(gw_assoc *a, uint8_t pc_id, const dcm_command *c);
/* Sends one DIMSE message: the command, then (ds != NULL) the data set bytes,
 * as P-DATA-TF PDUs within the peer's maximum length, in one write (the bytes
 * are copied). cb (may be NULL) runs once the write completed or failed; it is
 * not called when this returns an error. Valid in Sta6 and Sta8. */
int gw__assoc_send_message(gw_assoc *a, uint8_t pc_id, const dcm_command *c, const uint8_t *ds,
                           size_t ds_len, gw_sent_cb cb, void *arg);
/* Transitions of a->st that need I/O (see assoc_state.h for the others). */
/* The ingest is full: reading stops until gw__assoc_resume. 0 or HR_ESTATE. */
int gw__assoc_store_full(gw_assoc *a);
/* The data set is complete (STORE -> DURABLE): reading stops until the object
 * is durable. 0 or HR_ESTATE. */
int gw__assoc_store_end(gw_assoc *a);
/* The ingest's done callback (DURABLE -> NONE). GW_AS_RESPOND: send the
 * C-STORE-RSP, then gw__assoc_resume; GW_AS_RESUME (aborted meanwhile):
 * gw__assoc_resume only. GW_AS_FREE (a was freed here) or GW_AS_NOTHING
 * (a is closing): a is not to be used any more. */
enum gw_as_do gw__assoc_store_done(gw_assoc *a);
/* Reading resumes (ingest backpressure off, object done); a release that
 * waited for the work is answered instead. */
void gw__assoc_resume(gw_assoc *a);
/* op sent its final response (QR -> NONE): a release that waited is answered. */
void gw__assoc_op_done(gw_assoc *a, const struct gw_op *op);
/* The peer is being served (a write completed, a transfer progressed): the
 * idle timeout starts again. */
void gw__assoc_touch(gw_assoc *a);
void gw__assoc_process(gw_assoc *a);

/* dimse_scp.c: one PDV of Sta6 data. 0 or an error that aborts the association. */
int gw__dimse_pdv(gw_assoc *a, const dcm_pdv *pdv);
/* msg.c: appends one DIMSE message (command, then ds bytes when ds != NULL)
 * as P-DATA-TF PDUs whose length respects peer_max_pdu (0 = unlimited). */
int gw__encode_message(hr_buf *out, uint32_t peer_max_pdu, uint8_t pc_id, const dcm_command *c,
                       const uint8_t *ds, size_t ds_len);
/* Largest PDV data length to send to a peer whose maximum PDU is peer_max_pdu
 * (0 = unlimited: GW_PDV_DEFAULT), even. */
#define GW_PDV_DEFAULT (256 * 1024)
uint32_t gw__pdv_room(uint32_t peer_max_pdu);
/* Writes a copy of p[0..n) to s; cb (may be NULL) on completion. 0 or a libuv
 * error (cb then not called). */
int gw__write_copy(uv_stream_t *s, const uint8_t *p, size_t n, gw_sent_cb cb, void *arg);

/* negotiate.c: builds the AC (returns 0) or the reject reason (result/source/reason). */
int gw__negotiate(gw_assoc *a, const dcm_assoc_rq *rq, dcm_assoc_ac *ac, uint8_t rj[3]);

#endif
