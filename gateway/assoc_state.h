/* The lifecycle of one SCP association, owned in one place: its PS3.8 state,
 * the DIMSE work it carries (a C-STORE object, a Q/R operation), reading
 * paused for backpressure, an A-RELEASE-RQ waiting for the work to end, and
 * the deferred free. The diagram is at the top of assoc_state.c.
 *
 * Pure: no I/O, no allocation. Transitions return what the caller must do;
 * assoc.c applies it (stop or start reading, send an A-RELEASE-RP, detach,
 * free). Rule of thumb: gw__as_* changes only this state; a transition that
 * needs I/O is made through its gw__assoc_* wrapper in assoc.h. Illegal
 * transitions change nothing and return HR_ESTATE (those returning an
 * action: GW_AS_NOTHING, or GW_AS_ABORT for a release). Internal to
 * gateway/. */
#ifndef GW_ASSOC_STATE_H
#define GW_ASSOC_STATE_H

#include "../dicom/assoc_fsm.h"
#include "../storage/ingest.h"

struct gw_op;

/* DIMSE work on the association; one at a time (asynchronous window 1/1). */
enum gw_work {
    GW_WORK_NONE,     /* waiting for a request, or draining a refused data set */
    GW_WORK_STORE,    /* C-STORE data set flowing into its ingest */
    GW_WORK_DURABLE,  /* C-STORE data set complete, ingest making it durable */
    GW_WORK_QR_IDENT, /* C-FIND/C-MOVE/C-GET: its identifier being received */
    GW_WORK_QR_RUN,   /* C-FIND/C-MOVE/C-GET running; reading goes on (C-CANCEL) */
    GW_WORK_COUNT
};

/* What a transition asks of its caller. */
enum gw_as_do {
    GW_AS_NOTHING,
    GW_AS_PROCESS,    /* handle buffered PDUs, then read again */
    GW_AS_RELEASE_RP, /* AR-4: send A-RELEASE-RP, start ARTIM (already Sta13) */
    GW_AS_ABORT,      /* A-ABORT: nothing of the work can be answered */
    GW_AS_CANCEL_OP,  /* cancel the Q/R operation; its end answers the release */
    GW_AS_RESPOND,    /* object done in Sta6/Sta8: send its C-STORE-RSP, then resume */
    GW_AS_RESUME,     /* object done after an A-ABORT (Sta13): no response, resume */
    GW_AS_FREE,       /* every handle closed and nothing owed: free the association */
};

/* Embedded in gw_assoc. The fields are private to assoc_state.c: read them
 * through the functions below. All zero is a connection accepted but not
 * started (gw__as_start not called): it may only be closed. */
typedef struct gw_astate {
    enum dcm_state sta;  /* Sta2, Sta6, Sta8, Sta13; Sta1 once closing */
    enum gw_work work;   /* see the diagram */
    sto_ingest *ingest;  /* GW_WORK_STORE, GW_WORK_DURABLE; owned by storage/ */
    struct gw_op *op;    /* GW_WORK_QR_*; owned by qr.c */
    int paused;          /* reading stopped until gw__as_resume */
    int release_pending; /* Sta8: A-RELEASE-RP due once the work ends */
    int closing;         /* handles being closed */
    int handles_open;    /* while closing */
} gw_astate;

/* ---- link (PS3.8) ---- */

/* AE-5: transport connection accepted, awaiting A-ASSOCIATE-RQ (Sta2). */
void gw__as_start(gw_astate *s);
/* AE-7: A-ASSOCIATE-AC sent, Sta2 -> Sta6. 0 or HR_ESTATE. */
int gw__as_associated(gw_astate *s);
/* AE-8: A-ASSOCIATE-RJ sent, Sta2 -> Sta13. 0 or HR_ESTATE. */
int gw__as_rejected(gw_astate *s);
/* AR-2: A-RELEASE-RQ received in Sta6. Returns
 *   GW_AS_RELEASE_RP  no work: answer now (Sta13)
 *   GW_AS_CANCEL_OP   Q/R operation running: Sta8; cancel it, its end answers
 *   GW_AS_NOTHING     object being made durable: Sta8; its end answers
 *   GW_AS_ABORT       mid data set or identifier: abort (state unchanged). */
enum gw_as_do gw__as_release_rq(gw_astate *s);
/* A-ABORT sent (AA-1, AA-7 of our own, errors): Sta13, a pending release is
 * dropped. The work is let go: *detach gets the Q/R operation to detach,
 * *drop the ingest to abandon (each NULL when none); an object being made
 * durable completes (gw__as_store_done). 0, or HR_ESTATE when closing. */
int gw__as_abort(gw_astate *s, struct gw_op **detach, sto_ingest **drop);
/* The transport is being closed (any state): Sta1, n_handles handles to be
 * closed; the work is let go as by gw__as_abort. 0, or HR_ESTATE when
 * closing already. */
int gw__as_close(gw_astate *s, int n_handles, struct gw_op **detach, sto_ingest **drop);
/* One handle closed: GW_AS_FREE when it was the last and no object is being
 * made durable, else GW_AS_NOTHING. */
enum gw_as_do gw__as_handle_closed(gw_astate *s);

/* ---- DIMSE work ---- */

/* A C-STORE-RQ's data set starts flowing into ig (not owned): NONE -> STORE. */
int gw__as_store_begin(gw_astate *s, sto_ingest *ig);
/* The ingest is full (backpressure): reading stops. STORE only. */
int gw__as_store_full(gw_astate *s);
/* The data set is complete: STORE -> DURABLE, reading stops until it is. */
int gw__as_store_end(gw_astate *s);
/* The ingest's done callback: DURABLE -> NONE (the ingest is gone). Returns
 *   GW_AS_RESPOND  Sta6/Sta8: send the response, then gw__as_resume
 *   GW_AS_RESUME   Sta13 (aborted meanwhile): no response, gw__as_resume
 *   GW_AS_FREE     closing, every handle closed: free now
 *   GW_AS_NOTHING  closing, a handle still open: its close frees. */
enum gw_as_do gw__as_store_done(gw_astate *s);
/* A Q/R request was accepted; op (not owned) receives its identifier:
 * NONE -> QR_IDENT. */
int gw__as_op_begin(gw_astate *s, struct gw_op *op);
/* The identifier's last fragment arrived: QR_IDENT -> QR_RUN. */
int gw__as_op_started(gw_astate *s);
/* op sent its final response: QR_* -> NONE. GW_AS_RELEASE_RP when a release
 * waited for it (now Sta13), else GW_AS_NOTHING (also when op is not the
 * association's operation any more: detached). */
enum gw_as_do gw__as_op_end(gw_astate *s, const struct gw_op *op);
/* The ingest can take more data, or the object is done: reading resumes.
 *   GW_AS_RELEASE_RP  a release waited for the work to end (now Sta13)
 *   GW_AS_PROCESS     handle buffered PDUs, read again
 *   GW_AS_NOTHING     closing. */
enum gw_as_do gw__as_resume(gw_astate *s);

/* ---- reading the state ---- */

enum dcm_state gw__as_sta(const gw_astate *s);
enum gw_work gw__as_work(const gw_astate *s);
/* The ingest of the current object, or NULL. */
sto_ingest *gw__as_ingest(const gw_astate *s);
/* The current Q/R operation, or NULL. */
struct gw_op *gw__as_op(const gw_astate *s);
int gw__as_closing(const gw_astate *s);
/* 1 while PDUs may be handled: not closing, not paused. */
int gw__as_may_process(const gw_astate *s);
/* 1 while DIMSE messages may be sent: Sta6 or Sta8, not closing. */
int gw__as_can_send(const gw_astate *s);
/* 1 while an object is under way (STORE or DURABLE). */
int gw__as_has_object(const gw_astate *s);
/* 1 while we keep the peer waiting (paused, or an object being made
 * durable): the idle timeout does not count it. */
int gw__as_held(const gw_astate *s);

#endif
