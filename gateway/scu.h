/* An outbound association on the loop (huren as requestor, for C-MOVE
 * sub-operations): resolve, connect, A-ASSOCIATE-RQ, P-DATA both ways,
 * A-RELEASE or A-ABORT, driven by the PS3.8 state table like the SCP side.
 * Internal to gateway/. */
#ifndef GW_SCU_H
#define GW_SCU_H

#include "../dicom/dimse.h"
#include "../dicom/pdu.h"

#include <stdint.h>
#include <uv.h>

#define GW_SCU_TS_MAX 3 /* transfer syntaxes proposed per context */

typedef struct gw_scu gw_scu;

/* One proposed context and, once associated, its outcome. */
typedef struct gw_scu_pc {
    uint8_t id;
    char abstract_syntax[DCM_UID_BUF];
    int n_ts;
    char ts[GW_SCU_TS_MAX][DCM_UID_BUF]; /* proposed, in preference order */
    uint8_t result;                      /* DCM_PC_ACCEPT ... (after association) */
    char accepted_ts[DCM_UID_BUF];       /* when result == DCM_PC_ACCEPT */
} gw_scu_pc;

typedef struct gw_scu_params {
    const char *host; /* name or address */
    int port;
    const char *calling_ae;
    const char *called_ae;
    uint32_t max_pdu;        /* our maximum receive PDU */
    int connect_timeout_ms;  /* resolve + connect + A-ASSOCIATE-AC, and A-RELEASE-RP */
    int progress_timeout_ms; /* with work outstanding: longest time without progress */
    int n_pc;                /* 1..DCM_MAX_PCS; ids are assigned 1, 3, 5, ... */
    const gw_scu_pc *pc;     /* copied */
} gw_scu_params;

/* Callbacks; arg is the one given to gw_scu_open. */
typedef struct gw_scu_cbs {
    /* Once: rc 0 = associated (Sta6), else refused or failed; why is text
     * for logs (static or valid during the call). */
    void (*associated)(void *arg, int rc, const char *why);
    /* A command received in Sta6/Sta7 (C-STORE-RSP); data sets are refused. */
    void (*command)(void *arg, const dcm_command *c, uint8_t pc_id);
    /* After a successful association: it ended without our release
     * completing (peer abort, transport loss, timeout, protocol error). No
     * more writes may be queued on the stream. Not called after
     * gw_scu_abort(). */
    void (*lost)(void *arg, const char *why);
    /* Handles closed; the gw_scu is freed right after this returns. Always
     * the last callback. */
    void (*closed)(void *arg);
} gw_scu_cbs;

/* Starts an association (Evt1). params and cbs are copied. 0 or -ENOMEM /
 * HR_EPARSE (bad parameters); after 0 the callbacks say the rest. */
int gw_scu_open(uv_loop_t *loop, const gw_scu_params *p, const gw_scu_cbs *cbs, void *arg,
                gw_scu **out);
/* A-RELEASE request (Evt11) when associated, else an abort; closed follows. */
void gw_scu_release(gw_scu *s);
/* A-ABORT request (Evt15); no further callback but closed. */
void gw_scu_abort(gw_scu *s);
/* Work is outstanding (a message being written or a response awaited): the
 * progress timeout runs. Each call with busy = 1 also counts as progress. */
void gw_scu_busy(gw_scu *s, int busy);

/* The stream for P-DATA writes (valid while associated and not lost). */
uv_stream_t *gw_scu_stream(gw_scu *s);
uint32_t gw_scu_peer_max_pdu(const gw_scu *s);
/* Contexts with their results (valid after associated(0)). */
const gw_scu_pc *gw_scu_pcs(const gw_scu *s, int *n);

#endif
