#include "assoc_fsm.h"
#include "pdu.h"

#include <stddef.h>

/* Next state of each action (PS3.8 Tables 9-6 to 9-9). AE-6 and AR-8 list
 * their first alternative (Sta3 accept, Sta9 requestor side). */
static const enum dcm_state action_next[DCM_ACTION_COUNT] = {
    [DCM_AE_1] = DCM_STA4,  [DCM_AE_2] = DCM_STA5,  [DCM_AE_3] = DCM_STA6,  [DCM_AE_4] = DCM_STA1,
    [DCM_AE_5] = DCM_STA2,  [DCM_AE_6] = DCM_STA3,  [DCM_AE_7] = DCM_STA6,  [DCM_AE_8] = DCM_STA13,
    [DCM_DT_1] = DCM_STA6,  [DCM_DT_2] = DCM_STA6,  [DCM_AR_1] = DCM_STA7,  [DCM_AR_2] = DCM_STA8,
    [DCM_AR_3] = DCM_STA1,  [DCM_AR_4] = DCM_STA13, [DCM_AR_5] = DCM_STA1,  [DCM_AR_6] = DCM_STA7,
    [DCM_AR_7] = DCM_STA8,  [DCM_AR_8] = DCM_STA9,  [DCM_AR_9] = DCM_STA11, [DCM_AR_10] = DCM_STA12,
    [DCM_AA_1] = DCM_STA13, [DCM_AA_2] = DCM_STA1,  [DCM_AA_3] = DCM_STA1,  [DCM_AA_4] = DCM_STA1,
    [DCM_AA_5] = DCM_STA1,  [DCM_AA_6] = DCM_STA13, [DCM_AA_7] = DCM_STA13, [DCM_AA_8] = DCM_STA13,
};

/* PS3.8 Table 9-10, one row per event, columns Sta1..Sta13. 0 = empty cell. */
#define X     0
#define AE(n) DCM_AE_##n
#define DT(n) DCM_DT_##n
#define AR(n) DCM_AR_##n
#define AA(n) DCM_AA_##n
// clang-format off
static const unsigned char table[DCM_EVENT_COUNT][DCM_STATE_COUNT] = {
    /*              -  Sta1   Sta2   Sta3   Sta4   Sta5   Sta6   Sta7   Sta8   Sta9   Sta10  Sta11  Sta12  Sta13 */
    [DCM_EVT1]   = {X, AE(1), X,     X,     X,     X,     X,     X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT2]   = {X, X,     X,     X,     AE(2), X,     X,     X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT3]   = {X, X,     AA(1), AA(8), X,     AE(3), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(6)},
    [DCM_EVT4]   = {X, X,     AA(1), AA(8), X,     AE(4), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(6)},
    [DCM_EVT5]   = {X, AE(5), X,     X,     X,     X,     X,     X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT6]   = {X, X,     AE(6), AA(8), X,     AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(7)},
    [DCM_EVT7]   = {X, X,     X,     AE(7), X,     X,     X,     X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT8]   = {X, X,     X,     AE(8), X,     X,     X,     X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT9]   = {X, X,     X,     X,     X,     X,     DT(1), X,     AR(7), X,     X,     X,     X,     X},
    [DCM_EVT10]  = {X, X,     AA(1), AA(8), X,     AA(8), DT(2), AR(6), AA(8), AA(8), AA(8), AA(8), AA(8), AA(6)},
    [DCM_EVT11]  = {X, X,     X,     X,     X,     X,     AR(1), X,     X,     X,     X,     X,     X,     X},
    [DCM_EVT12]  = {X, X,     AA(1), AA(8), X,     AA(8), AR(2), AR(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(6)},
    [DCM_EVT13]  = {X, X,     AA(1), AA(8), X,     AA(8), AA(8), AR(3), AA(8), AA(8), AR(10),AR(3), AA(8), AA(6)},
    [DCM_EVT14]  = {X, X,     X,     X,     X,     X,     X,     X,     AR(4), AR(9), X,     X,     AR(4), X},
    [DCM_EVT15]  = {X, X,     X,     AA(1), AA(2), AA(1), AA(1), AA(1), AA(1), AA(1), AA(1), AA(1), AA(1), X},
    [DCM_EVT16]  = {X, X,     AA(2), AA(3), X,     AA(3), AA(3), AA(3), AA(3), AA(3), AA(3), AA(3), AA(3), AA(2)},
    [DCM_EVT17]  = {X, X,     AA(5), AA(4), AA(4), AA(4), AA(4), AA(4), AA(4), AA(4), AA(4), AA(4), AA(4), AR(5)},
    [DCM_EVT18]  = {X, X,     AA(2), X,     X,     X,     X,     X,     X,     X,     X,     X,     X,     AA(2)},
    [DCM_EVT19]  = {X, X,     AA(1), AA(8), X,     AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(8), AA(7)},
};
// clang-format on
#undef X
#undef AE
#undef DT
#undef AR
#undef AA

dcm_transition dcm_fsm_next(enum dcm_state state, enum dcm_event event)
{
    dcm_transition t = {DCM_ACT_INVALID, state};

    if (state < DCM_STA1 || state >= DCM_STATE_COUNT || event < DCM_EVT1 ||
        event >= DCM_EVENT_COUNT)
        return t;
    t.action = (enum dcm_action)table[event][state];
    if (t.action != DCM_ACT_INVALID)
        t.next = action_next[t.action];
    return t;
}

static const char *const action_names[DCM_ACTION_COUNT] = {
    [DCM_AE_1] = "AE-1", [DCM_AE_2] = "AE-2", [DCM_AE_3] = "AE-3", [DCM_AE_4] = "AE-4",
    [DCM_AE_5] = "AE-5", [DCM_AE_6] = "AE-6", [DCM_AE_7] = "AE-7", [DCM_AE_8] = "AE-8",
    [DCM_DT_1] = "DT-1", [DCM_DT_2] = "DT-2", [DCM_AR_1] = "AR-1", [DCM_AR_2] = "AR-2",
    [DCM_AR_3] = "AR-3", [DCM_AR_4] = "AR-4", [DCM_AR_5] = "AR-5", [DCM_AR_6] = "AR-6",
    [DCM_AR_7] = "AR-7", [DCM_AR_8] = "AR-8", [DCM_AR_9] = "AR-9", [DCM_AR_10] = "AR-10",
    [DCM_AA_1] = "AA-1", [DCM_AA_2] = "AA-2", [DCM_AA_3] = "AA-3", [DCM_AA_4] = "AA-4",
    [DCM_AA_5] = "AA-5", [DCM_AA_6] = "AA-6", [DCM_AA_7] = "AA-7", [DCM_AA_8] = "AA-8",
};

static const char *const state_names[DCM_STATE_COUNT] = {
    [DCM_STA1] = "Sta1",   [DCM_STA2] = "Sta2",   [DCM_STA3] = "Sta3",   [DCM_STA4] = "Sta4",
    [DCM_STA5] = "Sta5",   [DCM_STA6] = "Sta6",   [DCM_STA7] = "Sta7",   [DCM_STA8] = "Sta8",
    [DCM_STA9] = "Sta9",   [DCM_STA10] = "Sta10", [DCM_STA11] = "Sta11", [DCM_STA12] = "Sta12",
    [DCM_STA13] = "Sta13",
};

static const char *const event_names[DCM_EVENT_COUNT] = {
    [DCM_EVT1] = "Evt1",   [DCM_EVT2] = "Evt2",   [DCM_EVT3] = "Evt3",   [DCM_EVT4] = "Evt4",
    [DCM_EVT5] = "Evt5",   [DCM_EVT6] = "Evt6",   [DCM_EVT7] = "Evt7",   [DCM_EVT8] = "Evt8",
    [DCM_EVT9] = "Evt9",   [DCM_EVT10] = "Evt10", [DCM_EVT11] = "Evt11", [DCM_EVT12] = "Evt12",
    [DCM_EVT13] = "Evt13", [DCM_EVT14] = "Evt14", [DCM_EVT15] = "Evt15", [DCM_EVT16] = "Evt16",
    [DCM_EVT17] = "Evt17", [DCM_EVT18] = "Evt18", [DCM_EVT19] = "Evt19",
};

const char *dcm_action_name(enum dcm_action a)
{
    if (a <= DCM_ACT_INVALID || a >= DCM_ACTION_COUNT)
        return "?";
    return action_names[a];
}

const char *dcm_state_name(enum dcm_state s)
{
    if (s < DCM_STA1 || s >= DCM_STATE_COUNT)
        return "?";
    return state_names[s];
}

const char *dcm_event_name(enum dcm_event e)
{
    if (e < DCM_EVT1 || e >= DCM_EVENT_COUNT)
        return "?";
    return event_names[e];
}

enum dcm_event dcm_pdu_event(uint8_t type)
{
    switch (type) {
    case DCM_PDU_ASSOC_RQ:
        return DCM_EVT6;
    case DCM_PDU_ASSOC_AC:
        return DCM_EVT3;
    case DCM_PDU_ASSOC_RJ:
        return DCM_EVT4;
    case DCM_PDU_P_DATA:
        return DCM_EVT10;
    case DCM_PDU_RELEASE_RQ:
        return DCM_EVT12;
    case DCM_PDU_RELEASE_RP:
        return DCM_EVT13;
    case DCM_PDU_ABORT:
        return DCM_EVT16;
    default:
        return DCM_EVT19;
    }
}
