/* Tests for dicom/assoc_fsm.c against PS3.8 Table 9-10. */
#include "dicom/assoc_fsm.h"
#include "dicom/pdu.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

/* PS3.8 Table 9-10, transcribed independently of the implementation: one row
 * per event, columns Sta1..Sta13, "" for an empty cell. */
static const char *const standard[DCM_EVENT_COUNT][14] = {
    [DCM_EVT1] = {"", "AE-1", "", "", "", "", "", "", "", "", "", "", "", ""},
    [DCM_EVT2] = {"", "", "", "", "AE-2", "", "", "", "", "", "", "", "", ""},
    [DCM_EVT3] = {"", "", "AA-1", "AA-8", "", "AE-3", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
                  "AA-8", "AA-8", "AA-6"},
    [DCM_EVT4] = {"", "", "AA-1", "AA-8", "", "AE-4", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
                  "AA-8", "AA-8", "AA-6"},
    [DCM_EVT5] = {"", "AE-5", "", "", "", "", "", "", "", "", "", "", "", ""},
    [DCM_EVT6] = {"", "", "AE-6", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
                  "AA-8", "AA-8", "AA-7"},
    [DCM_EVT7] = {"", "", "", "AE-7", "", "", "", "", "", "", "", "", "", ""},
    [DCM_EVT8] = {"", "", "", "AE-8", "", "", "", "", "", "", "", "", "", ""},
    [DCM_EVT9] = {"", "", "", "", "", "", "DT-1", "", "AR-7", "", "", "", "", ""},
    [DCM_EVT10] = {"", "", "AA-1", "AA-8", "", "AA-8", "DT-2", "AR-6", "AA-8", "AA-8", "AA-8",
                   "AA-8", "AA-8", "AA-6"},
    [DCM_EVT11] = {"", "", "", "", "", "", "AR-1", "", "", "", "", "", "", ""},
    [DCM_EVT12] = {"", "", "AA-1", "AA-8", "", "AA-8", "AR-2", "AR-8", "AA-8", "AA-8", "AA-8",
                   "AA-8", "AA-8", "AA-6"},
    [DCM_EVT13] = {"", "", "AA-1", "AA-8", "", "AA-8", "AA-8", "AR-3", "AA-8", "AA-8", "AR-10",
                   "AR-3", "AA-8", "AA-6"},
    [DCM_EVT14] = {"", "", "", "", "", "", "", "", "AR-4", "AR-9", "", "", "AR-4", ""},
    [DCM_EVT15] = {"", "", "", "AA-1", "AA-2", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1", "AA-1",
                   "AA-1", "AA-1", ""},
    [DCM_EVT16] = {"", "", "AA-2", "AA-3", "", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3", "AA-3",
                   "AA-3", "AA-3", "AA-2"},
    [DCM_EVT17] = {"", "", "AA-5", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4", "AA-4",
                   "AA-4", "AA-4", "AR-5"},
    [DCM_EVT18] = {"", "", "AA-2", "", "", "", "", "", "", "", "", "", "", "AA-2"},
    [DCM_EVT19] = {"", "", "AA-1", "AA-8", "", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8", "AA-8",
                   "AA-8", "AA-8", "AA-7"},
};

/* Next state per action (PS3.8 Tables 9-6..9-9); first alternative for
 * AE-6 (Sta3/Sta13) and AR-8 (Sta9/Sta10). */
static int standard_next(const char *action)
{
    static const struct {
        const char *a;
        int next;
    } t[] = {
        {"AE-1", 4},  {"AE-2", 5},   {"AE-3", 6},  {"AE-4", 1},  {"AE-5", 2}, {"AE-6", 3},
        {"AE-7", 6},  {"AE-8", 13},  {"DT-1", 6},  {"DT-2", 6},  {"AR-1", 7}, {"AR-2", 8},
        {"AR-3", 1},  {"AR-4", 13},  {"AR-5", 1},  {"AR-6", 7},  {"AR-7", 8}, {"AR-8", 9},
        {"AR-9", 11}, {"AR-10", 12}, {"AA-1", 13}, {"AA-2", 1},  {"AA-3", 1}, {"AA-4", 1},
        {"AA-5", 1},  {"AA-6", 13},  {"AA-7", 13}, {"AA-8", 13},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].a, action) == 0)
            return t[i].next;
    return -1;
}

Test(assoc_fsm, whole_table_matches_standard)
{
    int cells = 0;
    for (int e = DCM_EVT1; e < DCM_EVENT_COUNT; e++) {
        for (int s = DCM_STA1; s < DCM_STATE_COUNT; s++) {
            dcm_transition t = dcm_fsm_next((enum dcm_state)s, (enum dcm_event)e);
            const char *want = standard[e][s];
            if (want[0] == 0) {
                cr_assert_eq(t.action, DCM_ACT_INVALID, "Evt%d Sta%d should be empty, got %s", e, s,
                             dcm_action_name(t.action));
                cr_assert_eq(t.next, s);
                continue;
            }
            cells++;
            cr_assert_str_eq(dcm_action_name(t.action), want, "Evt%d Sta%d", e, s);
            cr_assert_eq((int)t.next, standard_next(want), "Evt%d Sta%d next", e, s);
        }
    }
    cr_assert_eq(cells, 123);
}

Test(assoc_fsm, cells_named_in_the_brief)
{
    struct {
        enum dcm_state s;
        enum dcm_event e;
        enum dcm_action a;
        enum dcm_state next;
    } c[] = {
        {DCM_STA2, DCM_EVT6, DCM_AE_6, DCM_STA3},     {DCM_STA3, DCM_EVT7, DCM_AE_7, DCM_STA6},
        {DCM_STA3, DCM_EVT8, DCM_AE_8, DCM_STA13},    {DCM_STA6, DCM_EVT10, DCM_DT_2, DCM_STA6},
        {DCM_STA6, DCM_EVT12, DCM_AR_2, DCM_STA8},    {DCM_STA8, DCM_EVT14, DCM_AR_4, DCM_STA13},
        {DCM_STA6, DCM_EVT9, DCM_DT_1, DCM_STA6},     {DCM_STA6, DCM_EVT11, DCM_AR_1, DCM_STA7},
        {DCM_STA7, DCM_EVT13, DCM_AR_3, DCM_STA1},    {DCM_STA7, DCM_EVT10, DCM_AR_6, DCM_STA7},
        {DCM_STA7, DCM_EVT12, DCM_AR_8, DCM_STA9},    {DCM_STA2, DCM_EVT3, DCM_AA_1, DCM_STA13},
        {DCM_STA2, DCM_EVT4, DCM_AA_1, DCM_STA13},    {DCM_STA2, DCM_EVT10, DCM_AA_1, DCM_STA13},
        {DCM_STA2, DCM_EVT12, DCM_AA_1, DCM_STA13},   {DCM_STA2, DCM_EVT13, DCM_AA_1, DCM_STA13},
        {DCM_STA2, DCM_EVT19, DCM_AA_1, DCM_STA13},   {DCM_STA13, DCM_EVT17, DCM_AR_5, DCM_STA1},
        {DCM_STA2, DCM_EVT18, DCM_AA_2, DCM_STA1},    {DCM_STA13, DCM_EVT18, DCM_AA_2, DCM_STA1},
        {DCM_STA1, DCM_EVT5, DCM_AE_5, DCM_STA2},     {DCM_STA1, DCM_EVT1, DCM_AE_1, DCM_STA4},
        {DCM_STA4, DCM_EVT2, DCM_AE_2, DCM_STA5},     {DCM_STA5, DCM_EVT3, DCM_AE_3, DCM_STA6},
        {DCM_STA5, DCM_EVT4, DCM_AE_4, DCM_STA1},     {DCM_STA6, DCM_EVT15, DCM_AA_1, DCM_STA13},
        {DCM_STA4, DCM_EVT15, DCM_AA_2, DCM_STA1},    {DCM_STA6, DCM_EVT16, DCM_AA_3, DCM_STA1},
        {DCM_STA6, DCM_EVT17, DCM_AA_4, DCM_STA1},    {DCM_STA2, DCM_EVT17, DCM_AA_5, DCM_STA1},
        {DCM_STA13, DCM_EVT10, DCM_AA_6, DCM_STA13},  {DCM_STA13, DCM_EVT6, DCM_AA_7, DCM_STA13},
        {DCM_STA6, DCM_EVT6, DCM_AA_8, DCM_STA13},    {DCM_STA9, DCM_EVT14, DCM_AR_9, DCM_STA11},
        {DCM_STA10, DCM_EVT13, DCM_AR_10, DCM_STA12}, {DCM_STA11, DCM_EVT13, DCM_AR_3, DCM_STA1},
        {DCM_STA12, DCM_EVT14, DCM_AR_4, DCM_STA13},  {DCM_STA8, DCM_EVT9, DCM_AR_7, DCM_STA8},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        dcm_transition t = dcm_fsm_next(c[i].s, c[i].e);
        cr_assert_eq(t.action, c[i].a, "%s %s: %s", dcm_state_name(c[i].s), dcm_event_name(c[i].e),
                     dcm_action_name(t.action));
        cr_assert_eq(t.next, c[i].next, "%s %s next %s", dcm_state_name(c[i].s),
                     dcm_event_name(c[i].e), dcm_state_name(t.next));
    }
}

Test(assoc_fsm, names_round_trip)
{
    char buf[16];
    for (int a = DCM_AE_1; a < DCM_ACTION_COUNT; a++) {
        const char *n = dcm_action_name((enum dcm_action)a);
        cr_assert_neq(strcmp(n, "?"), 0);
        for (int b = DCM_AE_1; b < a; b++)
            cr_assert_neq(strcmp(n, dcm_action_name((enum dcm_action)b)), 0);
    }
    /* every non-empty cell's action name is its enum's name */
    for (int e = DCM_EVT1; e < DCM_EVENT_COUNT; e++)
        for (int s = DCM_STA1; s < DCM_STATE_COUNT; s++) {
            dcm_transition t = dcm_fsm_next((enum dcm_state)s, (enum dcm_event)e);
            if (t.action == DCM_ACT_INVALID)
                continue;
            const char *n = dcm_action_name(t.action);
            int found = 0;
            for (int a = DCM_AE_1; a < DCM_ACTION_COUNT; a++)
                if (strcmp(n, dcm_action_name((enum dcm_action)a)) == 0) {
                    cr_assert_eq(a, (int)t.action);
                    found = 1;
                }
            cr_assert(found);
        }
    cr_assert_str_eq(dcm_action_name(DCM_AE_1), "AE-1");
    cr_assert_str_eq(dcm_action_name(DCM_DT_2), "DT-2");
    cr_assert_str_eq(dcm_action_name(DCM_AR_10), "AR-10");
    cr_assert_str_eq(dcm_action_name(DCM_AA_8), "AA-8");
    cr_assert_str_eq(dcm_action_name(DCM_ACT_INVALID), "?");
    cr_assert_str_eq(dcm_action_name(DCM_ACTION_COUNT), "?");
    for (int s = DCM_STA1; s < DCM_STATE_COUNT; s++) {
        snprintf(buf, sizeof(buf), "Sta%d", s);
        cr_assert_str_eq(dcm_state_name((enum dcm_state)s), buf);
    }
    for (int e = DCM_EVT1; e < DCM_EVENT_COUNT; e++) {
        snprintf(buf, sizeof(buf), "Evt%d", e);
        cr_assert_str_eq(dcm_event_name((enum dcm_event)e), buf);
    }
    cr_assert_str_eq(dcm_state_name((enum dcm_state)0), "?");
    cr_assert_str_eq(dcm_state_name(DCM_STATE_COUNT), "?");
    cr_assert_str_eq(dcm_event_name((enum dcm_event)0), "?");
    cr_assert_str_eq(dcm_event_name(DCM_EVENT_COUNT), "?");
}

Test(assoc_fsm, out_of_range_is_invalid)
{
    dcm_transition t = dcm_fsm_next((enum dcm_state)0, DCM_EVT5);
    cr_assert_eq(t.action, DCM_ACT_INVALID);
    t = dcm_fsm_next(DCM_STATE_COUNT, DCM_EVT5);
    cr_assert_eq(t.action, DCM_ACT_INVALID);
    cr_assert_eq(t.next, DCM_STATE_COUNT);
    t = dcm_fsm_next(DCM_STA6, (enum dcm_event)0);
    cr_assert_eq(t.action, DCM_ACT_INVALID);
    cr_assert_eq(t.next, DCM_STA6);
    t = dcm_fsm_next(DCM_STA6, DCM_EVENT_COUNT);
    cr_assert_eq(t.action, DCM_ACT_INVALID);
    t = dcm_fsm_next(DCM_STA1, DCM_EVT10); /* empty cell */
    cr_assert_eq(t.action, DCM_ACT_INVALID);
    cr_assert_eq(t.next, DCM_STA1);
}

typedef struct step {
    enum dcm_event e;
    enum dcm_action a;
    enum dcm_state next;
} step;

static void walk(enum dcm_state s, const step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dcm_transition t = dcm_fsm_next(s, steps[i].e);
        cr_assert_eq(t.action, steps[i].a, "step %zu: %s %s -> %s", i, dcm_state_name(s),
                     dcm_event_name(steps[i].e), dcm_action_name(t.action));
        cr_assert_eq(t.next, steps[i].next, "step %zu", i);
        s = steps[i].next; /* the session may override (AE-6 reject, AR-8) */
    }
}

Test(assoc_fsm, scp_happy_path)
{
    const step s[] = {
        {DCM_EVT5, DCM_AE_5, DCM_STA2},   /* transport connection indication */
        {DCM_EVT6, DCM_AE_6, DCM_STA3},   /* A-ASSOCIATE-RQ PDU */
        {DCM_EVT7, DCM_AE_7, DCM_STA6},   /* local accept: send AC */
        {DCM_EVT10, DCM_DT_2, DCM_STA6},  /* P-DATA-TF (C-STORE-RQ) */
        {DCM_EVT10, DCM_DT_2, DCM_STA6},  /* more data */
        {DCM_EVT9, DCM_DT_1, DCM_STA6},   /* P-DATA request (C-STORE-RSP) */
        {DCM_EVT12, DCM_AR_2, DCM_STA8},  /* A-RELEASE-RQ PDU */
        {DCM_EVT14, DCM_AR_4, DCM_STA13}, /* local release response: send RP */
        {DCM_EVT17, DCM_AR_5, DCM_STA1},  /* peer closes */
    };
    walk(DCM_STA1, s, sizeof(s) / sizeof(s[0]));
}

Test(assoc_fsm, scu_happy_path)
{
    const step s[] = {
        {DCM_EVT1, DCM_AE_1, DCM_STA4},  {DCM_EVT2, DCM_AE_2, DCM_STA5},
        {DCM_EVT3, DCM_AE_3, DCM_STA6},  {DCM_EVT9, DCM_DT_1, DCM_STA6},
        {DCM_EVT10, DCM_DT_2, DCM_STA6}, {DCM_EVT11, DCM_AR_1, DCM_STA7},
        {DCM_EVT10, DCM_AR_6, DCM_STA7}, {DCM_EVT13, DCM_AR_3, DCM_STA1},
    };
    walk(DCM_STA1, s, sizeof(s) / sizeof(s[0]));
}

Test(assoc_fsm, reject_abort_and_collision_paths)
{
    const step reject[] = {
        {DCM_EVT5, DCM_AE_5, DCM_STA2},
        {DCM_EVT6, DCM_AE_6, DCM_STA3},
        {DCM_EVT8, DCM_AE_8, DCM_STA13},
        {DCM_EVT18, DCM_AA_2, DCM_STA1},
    };
    walk(DCM_STA1, reject, sizeof(reject) / sizeof(reject[0]));
    const step artim[] = {{DCM_EVT5, DCM_AE_5, DCM_STA2}, {DCM_EVT18, DCM_AA_2, DCM_STA1}};
    walk(DCM_STA1, artim, 2);
    const step garbage[] = {{DCM_EVT19, DCM_AA_1, DCM_STA13},
                            {DCM_EVT19, DCM_AA_7, DCM_STA13},
                            {DCM_EVT17, DCM_AR_5, DCM_STA1}};
    walk(DCM_STA2, garbage, 3);
    const step collision_requestor[] = {
        {DCM_EVT12, DCM_AR_8, DCM_STA9},
        {DCM_EVT14, DCM_AR_9, DCM_STA11},
        {DCM_EVT13, DCM_AR_3, DCM_STA1},
    };
    walk(DCM_STA7, collision_requestor, 3);
    const step collision_acceptor[] = {
        {DCM_EVT13, DCM_AR_10, DCM_STA12},
        {DCM_EVT14, DCM_AR_4, DCM_STA13},
        {DCM_EVT17, DCM_AR_5, DCM_STA1},
    };
    walk(DCM_STA10, collision_acceptor, 3);
}

Test(assoc_fsm, pdu_types_map_to_their_events)
{
    cr_expect_eq(dcm_pdu_event(DCM_PDU_ASSOC_RQ), DCM_EVT6);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_ASSOC_AC), DCM_EVT3);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_ASSOC_RJ), DCM_EVT4);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_P_DATA), DCM_EVT10);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_RELEASE_RQ), DCM_EVT12);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_RELEASE_RP), DCM_EVT13);
    cr_expect_eq(dcm_pdu_event(DCM_PDU_ABORT), DCM_EVT16);
    cr_expect_eq(dcm_pdu_event(0x08), DCM_EVT19);
    cr_expect_eq(dcm_pdu_event(0), DCM_EVT19);
}
