/* The lifecycle of one SCP association (see assoc_state.h).
 *
 * Link, PS3.8 (dicom/assoc_fsm.c picks the action for each PDU; these are
 * the states it leads to here):
 *
 *   accept --AE-5--> Sta2 --AE-7 associated--> Sta6 --AR-2 release_rq--> Sta8
 *                     |                         |                        |
 *                     | AE-8 rejected           | abort                  | the work ends:
 *                     v                         v                        v AR-4 (RELEASE_RP)
 *                   Sta13 <---------------------+------------------------+
 *                     |                      (no work at AR-2: AR-4 at once)
 *                     | peer closes, ARTIM, server stop (close, from any state)
 *                     v
 *                   Sta1, closing --last handle closed, no object owed--> FREE
 *
 * Work, one at a time (asynchronous operations window 1/1), started in Sta6:
 *
 *          store_begin          store_end             store_done
 *   NONE -------------> STORE -------------> DURABLE -------------> NONE
 *    |  \                 | store_full:        | abort/close: it completes;
 *    |   \                | paused             | store_done says RESPOND,
 *    |    \   abort/close: ingest dropped      | RESUME (Sta13) or FREE
 *    |     +<-------------+
 *    |      op_begin             op_started            op_end
 *    +-------------> QR_IDENT -------------> QR_RUN -------------> NONE
 *                       | abort/close           | abort/close
 *                       +-----------------------+--- op detached ---> NONE
 *
 * Flags beside the work:
 *   paused           store_full or store_end stop reading (backpressure,
 *                    durability); only resume clears it. While set, no PDU
 *                    is handled, so no release can arrive mid-store.
 *   release_pending  AR-2 during QR_RUN (the operation is cancelled) or
 *                    DURABLE: Sta8 until the work ends; op_end (QR) or resume
 *                    (after store_done) then answers with AR-4.
 *   closing          close: handles close; the association is freed by the
 *                    last of (last handle closed, store_done when DURABLE).
 *
 * A release during STORE or QR_IDENT cannot be answered (the data set or
 * identifier is incomplete): the caller aborts. A second request while work
 * runs never reaches here: dimse_scp.c refuses it as a protocol error
 * (A-ABORT), and the begin transitions refuse it too (HR_ESTATE). */
#include "assoc_state.h"
#include "../common/hr_err.h"

#include <stddef.h>

enum event {
    EV_STORE_BEGIN,
    EV_STORE_FULL,
    EV_STORE_END,
    EV_STORE_DONE,
    EV_OP_BEGIN,
    EV_OP_STARTED,
    EV_OP_END,
    EV_LEAVE, /* abort or close: the work is let go */
    EV_COUNT
};

#define X  (-1) /* illegal */
#define N  GW_WORK_NONE
#define S  GW_WORK_STORE
#define D  GW_WORK_DURABLE
#define QI GW_WORK_QR_IDENT
#define QR GW_WORK_QR_RUN

/* [event][work] -> next work */
/* clang-format off */
static const signed char k_next[EV_COUNT][GW_WORK_COUNT] = {
    /*                  NONE  STORE  DURABLE  QR_IDENT  QR_RUN */
    [EV_STORE_BEGIN] = {S,    X,     X,       X,        X},
    [EV_STORE_FULL]  = {X,    S,     X,       X,        X},
    [EV_STORE_END]   = {X,    D,     X,       X,        X},
    [EV_STORE_DONE]  = {X,    X,     N,       X,        X},
    [EV_OP_BEGIN]    = {QI,   X,     X,       X,        X},
    [EV_OP_STARTED]  = {X,    X,     X,       QR,       X},
    [EV_OP_END]      = {X,    X,     X,       N,        N},
    [EV_LEAVE]       = {N,    N,     D,       N,        N},
};
/* clang-format on */

#undef X
#undef N
#undef S
#undef D
#undef QI
#undef QR

/* Moves the work along the table. 0, or HR_ESTATE (nothing changed). */
static int step(gw_astate *s, enum event ev)
{
    int next = k_next[ev][s->work];
    if (next < 0)
        return HR_ESTATE;
    s->work = (enum gw_work)next;
    return 0;
}

/* New work (what, its ingest or operation) starts only on an established
 * association. */
static int begin(gw_astate *s, enum event ev, const void *what)
{
    if (!what || s->closing || s->sta != DCM_STA6)
        return HR_ESTATE;
    return step(s, ev);
}

/* A step that stops reading until gw__as_resume. */
static int step_and_pause(gw_astate *s, enum event ev)
{
    int rc = step(s, ev);
    if (!rc)
        s->paused = 1;
    return rc;
}

void gw__as_start(gw_astate *s)
{
    *s = (gw_astate){.sta = DCM_STA2, .work = GW_WORK_NONE};
}

/* The answer to the A-ASSOCIATE-RQ was sent: Sta2 -> to. */
static int answered(gw_astate *s, enum dcm_state to)
{
    if (s->closing || s->sta != DCM_STA2)
        return HR_ESTATE;
    s->sta = to;
    return 0;
}

int gw__as_associated(gw_astate *s)
{
    return answered(s, DCM_STA6);
}

int gw__as_rejected(gw_astate *s)
{
    return answered(s, DCM_STA13);
}

enum gw_as_do gw__as_release_rq(gw_astate *s)
{
    if (s->closing || s->sta != DCM_STA6)
        return GW_AS_ABORT; /* the PS3.8 table sends AR-2 only here */
    switch (s->work) {
    case GW_WORK_NONE:
        s->sta = DCM_STA13; /* AR-4 follows at once */
        return GW_AS_RELEASE_RP;
    case GW_WORK_QR_RUN:
        /* the peer gave up on the operation: it ends as cancelled, its
         * responses may still go out in Sta8 */
        s->sta = DCM_STA8;
        s->release_pending = 1;
        return GW_AS_CANCEL_OP;
    case GW_WORK_DURABLE:
        s->sta = DCM_STA8;
        s->release_pending = 1;
        return GW_AS_NOTHING;
    case GW_WORK_STORE:
    case GW_WORK_QR_IDENT:
    default:
        return GW_AS_ABORT;
    }
}

/* The work is let go (abort, close): HR_ESTATE when closing already. */
static int leave(gw_astate *s, struct gw_op **detach, sto_ingest **drop)
{
    *detach = NULL;
    *drop = NULL;
    if (s->closing)
        return HR_ESTATE;
    if (s->work == GW_WORK_QR_IDENT || s->work == GW_WORK_QR_RUN)
        *detach = s->op;
    if (s->work == GW_WORK_STORE)
        *drop = s->ingest;
    step(s, EV_LEAVE);
    if (s->work == GW_WORK_NONE) {
        s->op = NULL;
        s->ingest = NULL;
    }
    s->release_pending = 0;
    return 0;
}

int gw__as_abort(gw_astate *s, struct gw_op **detach, sto_ingest **drop)
{
    int rc = leave(s, detach, drop);
    if (!rc)
        s->sta = DCM_STA13;
    return rc;
}

int gw__as_close(gw_astate *s, int n_handles, struct gw_op **detach, sto_ingest **drop)
{
    int rc = leave(s, detach, drop);
    if (rc)
        return rc;
    s->sta = DCM_STA1;
    s->closing = 1;
    s->handles_open = n_handles;
    return 0;
}

enum gw_as_do gw__as_handle_closed(gw_astate *s)
{
    if (!s->closing || s->handles_open == 0)
        return GW_AS_NOTHING;
    if (--s->handles_open > 0 || s->work == GW_WORK_DURABLE)
        return GW_AS_NOTHING;
    return GW_AS_FREE;
}

int gw__as_store_begin(gw_astate *s, sto_ingest *ig)
{
    int rc = begin(s, EV_STORE_BEGIN, ig);
    if (!rc)
        s->ingest = ig;
    return rc;
}

int gw__as_store_full(gw_astate *s)
{
    return step_and_pause(s, EV_STORE_FULL);
}

int gw__as_store_end(gw_astate *s)
{
    return step_and_pause(s, EV_STORE_END);
}

enum gw_as_do gw__as_store_done(gw_astate *s)
{
    if (step(s, EV_STORE_DONE) != 0)
        return GW_AS_NOTHING;
    s->ingest = NULL;
    if (s->closing)
        return s->handles_open == 0 ? GW_AS_FREE : GW_AS_NOTHING;
    return s->sta == DCM_STA6 || s->sta == DCM_STA8 ? GW_AS_RESPOND : GW_AS_RESUME;
}

int gw__as_op_begin(gw_astate *s, struct gw_op *op)
{
    int rc = begin(s, EV_OP_BEGIN, op);
    if (!rc)
        s->op = op;
    return rc;
}

int gw__as_op_started(gw_astate *s)
{
    if (s->closing || s->sta != DCM_STA6)
        return HR_ESTATE;
    return step(s, EV_OP_STARTED);
}

/* The work ended: a release that waited for it is answered now. */
static enum gw_as_do answer_release(gw_astate *s)
{
    if (!s->release_pending || s->sta != DCM_STA8 || s->work != GW_WORK_NONE)
        return GW_AS_NOTHING;
    s->release_pending = 0;
    s->sta = DCM_STA13;
    return GW_AS_RELEASE_RP;
}

enum gw_as_do gw__as_op_end(gw_astate *s, const struct gw_op *op)
{
    if (s->closing || !op || op != s->op || step(s, EV_OP_END) != 0)
        return GW_AS_NOTHING;
    s->op = NULL;
    return answer_release(s);
}

enum gw_as_do gw__as_resume(gw_astate *s)
{
    if (s->closing)
        return GW_AS_NOTHING;
    s->paused = 0;
    enum gw_as_do d = answer_release(s);
    return d != GW_AS_NOTHING ? d : GW_AS_PROCESS;
}

enum dcm_state gw__as_sta(const gw_astate *s)
{
    return s->sta;
}

enum gw_work gw__as_work(const gw_astate *s)
{
    return s->work;
}

sto_ingest *gw__as_ingest(const gw_astate *s)
{
    return s->ingest;
}

struct gw_op *gw__as_op(const gw_astate *s)
{
    return s->op;
}

int gw__as_closing(const gw_astate *s)
{
    return s->closing;
}

int gw__as_may_process(const gw_astate *s)
{
    return !s->closing && !s->paused;
}

int gw__as_can_send(const gw_astate *s)
{
    return !s->closing && (s->sta == DCM_STA6 || s->sta == DCM_STA8);
}

int gw__as_has_object(const gw_astate *s)
{
    return s->work == GW_WORK_STORE || s->work == GW_WORK_DURABLE;
}

int gw__as_held(const gw_astate *s)
{
    return s->paused || s->work == GW_WORK_DURABLE;
}
