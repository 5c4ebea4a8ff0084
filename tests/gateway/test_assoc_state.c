/* gateway/assoc_state.c: the association's lifecycle as transitions, legal
 * and illegal ones, without sockets: release while work runs, abort during a
 * paused C-STORE, a second request while one runs, the deferred free. The
 * ingest and operation pointers are never dereferenced by the state machine:
 * stand-ins do. */
#include "common/hr_err.h"
#include "gateway/assoc_state.h"

#include <criterion/criterion.h>

static char k_ingest, k_ingest2, k_op, k_op2;
#define IG  ((sto_ingest *)&k_ingest)
#define IG2 ((sto_ingest *)&k_ingest2)
#define OP  ((struct gw_op *)&k_op)
#define OP2 ((struct gw_op *)&k_op2)

/* An established association (Sta6, no work). */
static void established(gw_astate *s)
{
    gw__as_start(s);
    cr_assert_eq(gw__as_sta(s), DCM_STA2);
    cr_assert_eq(gw__as_associated(s), 0);
    cr_assert_eq(gw__as_sta(s), DCM_STA6);
    cr_assert_eq(gw__as_work(s), GW_WORK_NONE);
    cr_assert(gw__as_may_process(s));
    cr_assert(gw__as_can_send(s));
}

/* A C-STORE whose data set is complete and being made durable. */
static void durable(gw_astate *s)
{
    established(s);
    cr_assert_eq(gw__as_store_begin(s, IG), 0);
    cr_assert_eq(gw__as_store_end(s), 0);
    cr_assert_eq(gw__as_work(s), GW_WORK_DURABLE);
    cr_assert_not(gw__as_may_process(s), "reading stops while the object is made durable");
    cr_assert(gw__as_held(s));
}

/* A Q/R operation whose identifier is complete. */
static void running(gw_astate *s)
{
    established(s);
    cr_assert_eq(gw__as_op_begin(s, OP), 0);
    cr_assert_eq(gw__as_work(s), GW_WORK_QR_IDENT);
    cr_assert_eq(gw__as_op_started(s), 0);
    cr_assert_eq(gw__as_work(s), GW_WORK_QR_RUN);
    cr_assert_eq(gw__as_op(s), OP);
    cr_assert(gw__as_may_process(s), "reading goes on: C-CANCEL-RQ");
}

/* Closes with two handles and checks when the association may be freed. */
static void close_and_free(gw_astate *s)
{
    struct gw_op *detach;
    sto_ingest *drop;
    cr_assert_eq(gw__as_close(s, 2, &detach, &drop), 0);
    cr_assert_eq(gw__as_sta(s), DCM_STA1);
    cr_assert(gw__as_closing(s));
    cr_assert_not(gw__as_can_send(s));
    cr_assert_not(gw__as_may_process(s));
    cr_assert_eq(gw__as_handle_closed(s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(s), GW_AS_FREE);
}

Test(assoc_state, release_without_work_is_answered_at_once)
{
    gw_astate s;
    established(&s);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_RELEASE_RP);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    cr_assert_not(gw__as_can_send(&s));
    close_and_free(&s);
}

Test(assoc_state, release_while_an_operation_runs_waits_for_its_end)
{
    gw_astate s;
    running(&s);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_CANCEL_OP);
    cr_assert_eq(gw__as_sta(&s), DCM_STA8);
    cr_assert(gw__as_can_send(&s), "the operation's last responses still go out in Sta8");
    cr_assert_eq(gw__as_op(&s), OP);
    /* nothing else answers the release while the operation runs */
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS);
    cr_assert_eq(gw__as_sta(&s), DCM_STA8);
    /* an operation that is no longer the association's changes nothing */
    cr_assert_eq(gw__as_op_end(&s, OP2), GW_AS_NOTHING);
    cr_assert_eq(gw__as_sta(&s), DCM_STA8);
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_RELEASE_RP);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    cr_assert_null(gw__as_op(&s));
    /* answered once only */
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_NOTHING);
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS);
    close_and_free(&s);
}

Test(assoc_state, operation_ending_without_release_keeps_the_association)
{
    gw_astate s;
    running(&s);
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_NOTHING);
    cr_assert_eq(gw__as_sta(&s), DCM_STA6);
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    /* the next request may start */
    cr_assert_eq(gw__as_op_begin(&s, OP2), 0);
    cr_assert_eq(gw__as_op_end(&s, OP2), GW_AS_NOTHING, "ended while collecting its identifier");
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
}

Test(assoc_state, release_mid_identifier_or_mid_object_aborts)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    established(&s);
    cr_assert_eq(gw__as_op_begin(&s, OP), 0);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_ABORT);
    cr_assert_eq(gw__as_sta(&s), DCM_STA6, "unchanged: the caller aborts");
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_eq(detach, OP);
    cr_assert_null(drop);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);

    established(&s);
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_ABORT);
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_null(detach);
    cr_assert_eq(drop, IG);
    cr_assert_null(gw__as_ingest(&s));
}

Test(assoc_state, release_while_an_object_is_made_durable_waits_for_it)
{
    gw_astate s;
    durable(&s);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_sta(&s), DCM_STA8);
    cr_assert_eq(gw__as_store_done(&s), GW_AS_RESPOND, "the C-STORE-RSP goes out in Sta8");
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    cr_assert_eq(gw__as_resume(&s), GW_AS_RELEASE_RP);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
}

Test(assoc_state, stored_object_is_answered_and_reading_resumes)
{
    gw_astate s;
    established(&s);
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
    cr_assert_eq(gw__as_ingest(&s), IG);
    cr_assert(gw__as_has_object(&s));
    cr_assert_eq(gw__as_store_full(&s), 0);
    cr_assert_not(gw__as_may_process(&s));
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS, "backpressure off");
    cr_assert(gw__as_may_process(&s));
    cr_assert_eq(gw__as_work(&s), GW_WORK_STORE);
    cr_assert_eq(gw__as_store_end(&s), 0);
    cr_assert_eq(gw__as_store_done(&s), GW_AS_RESPOND);
    cr_assert_not(gw__as_has_object(&s));
    cr_assert_null(gw__as_ingest(&s));
    cr_assert_not(gw__as_may_process(&s), "paused until resumed");
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS);
    cr_assert(gw__as_may_process(&s));
    cr_assert_not(gw__as_held(&s));
}

Test(assoc_state, abort_during_a_paused_store_drops_the_object)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    established(&s);
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
    cr_assert_eq(gw__as_store_full(&s), 0);
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_eq(drop, IG, "the ingest is abandoned: no callback will come");
    cr_assert_null(detach);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    cr_assert_not(gw__as_may_process(&s), "still paused: ARTIM ends the connection");
    close_and_free(&s);
}

Test(assoc_state, abort_while_finalizing_frees_once_ingest_finishes)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    durable(&s);
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_null(drop, "an object being made durable completes");
    cr_assert_null(detach);
    cr_assert_eq(gw__as_work(&s), GW_WORK_DURABLE);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    /* the peer closes before the object is durable: the handles close, the
     * association waits for the ingest's callback */
    cr_assert_eq(gw__as_close(&s, 2, &detach, &drop), 0);
    cr_assert_null(drop);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING, "ingest still owes its callback");
    cr_assert_eq(gw__as_store_done(&s), GW_AS_FREE);
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
}

Test(assoc_state, ingest_finishing_before_the_handles_close_leaves_the_free_to_them)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    durable(&s);
    cr_assert_eq(gw__as_close(&s, 2, &detach, &drop), 0);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_store_done(&s), GW_AS_NOTHING, "no response, no resume: closing");
    cr_assert_eq(gw__as_resume(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_FREE);
}

Test(assoc_state, abort_while_finalizing_then_stored_resumes_without_response)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    durable(&s);
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_eq(gw__as_store_done(&s), GW_AS_RESUME);
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS, "reads again to see the peer close");
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    close_and_free(&s);
}

Test(assoc_state, abort_drops_a_pending_release)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    running(&s);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_CANCEL_OP);
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), 0);
    cr_assert_eq(detach, OP);
    cr_assert_null(gw__as_op(&s));
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_NOTHING, "a detached operation answers nothing");
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
}

Test(assoc_state, close_detaches_a_running_operation)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    running(&s);
    cr_assert_eq(gw__as_close(&s, 2, &detach, &drop), 0);
    cr_assert_eq(detach, OP);
    cr_assert_null(drop);
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_FREE);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING, "freed once only");
}

Test(assoc_state, second_request_while_one_runs_is_refused)
{
    gw_astate s;
    running(&s);
    cr_assert_eq(gw__as_op_begin(&s, OP2), HR_ESTATE);
    cr_assert_eq(gw__as_store_begin(&s, IG), HR_ESTATE);
    cr_assert_eq(gw__as_op(&s), OP, "the running operation is kept");
    cr_assert_eq(gw__as_work(&s), GW_WORK_QR_RUN);

    established(&s);
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
    cr_assert_eq(gw__as_store_begin(&s, IG2), HR_ESTATE);
    cr_assert_eq(gw__as_op_begin(&s, OP), HR_ESTATE);
    cr_assert_eq(gw__as_ingest(&s), IG);
    cr_assert_eq(gw__as_store_end(&s), 0);
    cr_assert_eq(gw__as_store_begin(&s, IG2), HR_ESTATE);
    cr_assert_eq(gw__as_op_begin(&s, OP), HR_ESTATE);
    cr_assert_eq(gw__as_ingest(&s), IG);
}

Test(assoc_state, out_of_order_transitions_change_nothing)
{
    gw_astate s;
    established(&s);
    cr_assert_eq(gw__as_store_full(&s), HR_ESTATE);
    cr_assert_eq(gw__as_store_end(&s), HR_ESTATE);
    cr_assert_eq(gw__as_store_done(&s), GW_AS_NOTHING);
    cr_assert_eq(gw__as_op_started(&s), HR_ESTATE);
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_NOTHING);
    cr_assert_eq(gw__as_handle_closed(&s), GW_AS_NOTHING, "not closing");
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    cr_assert(gw__as_may_process(&s));
    cr_assert_eq(gw__as_associated(&s), HR_ESTATE);
    cr_assert_eq(gw__as_rejected(&s), HR_ESTATE);
    cr_assert_eq(gw__as_sta(&s), DCM_STA6);

    cr_assert_eq(gw__as_op_begin(&s, OP), 0);
    cr_assert_eq(gw__as_store_end(&s), HR_ESTATE);
    cr_assert_eq(gw__as_store_full(&s), HR_ESTATE);
    cr_assert_eq(gw__as_work(&s), GW_WORK_QR_IDENT);
    cr_assert_eq(gw__as_op_begin(&s, NULL), HR_ESTATE);
    cr_assert_eq(gw__as_store_begin(&s, NULL), HR_ESTATE);
}

Test(assoc_state, work_starts_only_on_an_established_association)
{
    gw_astate s;
    struct gw_op *detach;
    sto_ingest *drop;
    gw__as_start(&s);
    cr_assert_eq(gw__as_store_begin(&s, IG), HR_ESTATE, "Sta2");
    cr_assert_eq(gw__as_op_begin(&s, OP), HR_ESTATE, "Sta2");
    cr_assert_not(gw__as_can_send(&s));
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_ABORT, "AR-2 only in Sta6");
    cr_assert_eq(gw__as_rejected(&s), 0);
    cr_assert_eq(gw__as_sta(&s), DCM_STA13);
    cr_assert_eq(gw__as_associated(&s), HR_ESTATE);
    cr_assert_eq(gw__as_store_begin(&s, IG), HR_ESTATE, "Sta13");

    running(&s);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_CANCEL_OP);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_ABORT, "a second release in Sta8");
    cr_assert_eq(gw__as_op_end(&s, OP), GW_AS_RELEASE_RP);
    cr_assert_eq(gw__as_store_begin(&s, IG), HR_ESTATE, "released");

    established(&s);
    cr_assert_eq(gw__as_close(&s, 2, &detach, &drop), 0);
    cr_assert_eq(gw__as_store_begin(&s, IG), HR_ESTATE, "closing");
    cr_assert_eq(gw__as_op_begin(&s, OP), HR_ESTATE, "closing");
    cr_assert_eq(gw__as_abort(&s, &detach, &drop), HR_ESTATE);
    cr_assert_eq(gw__as_close(&s, 2, &detach, &drop), HR_ESTATE);
    cr_assert_eq(gw__as_release_rq(&s), GW_AS_ABORT);
}

Test(assoc_state, connection_refused_before_start_can_be_closed)
{
    gw_astate s = {0}; /* as calloc'ed at accept, gw__as_start not called */
    cr_assert_eq(gw__as_work(&s), GW_WORK_NONE);
    cr_assert_not(gw__as_closing(&s));
    close_and_free(&s);
}

Test(assoc_state, idle_timeout_does_not_count_our_own_work)
{
    gw_astate s;
    established(&s);
    cr_assert_not(gw__as_held(&s));
    cr_assert_eq(gw__as_store_begin(&s, IG), 0);
    cr_assert_not(gw__as_held(&s), "receiving: the peer's silence counts");
    cr_assert_eq(gw__as_store_full(&s), 0);
    cr_assert(gw__as_held(&s), "paused by us");
    cr_assert_eq(gw__as_resume(&s), GW_AS_PROCESS);
    cr_assert_eq(gw__as_store_end(&s), 0);
    cr_assert(gw__as_held(&s), "being made durable");
}
