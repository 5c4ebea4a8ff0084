/* DICOM upper layer state machine (PS3.8 9.2.3, Table 9-10) as a table
 * [event][state] -> action + next state. Actions are named as in the
 * standard; the session (gateway/) performs them. Pure data, no I/O. */
#ifndef DCM_ASSOC_FSM_H
#define DCM_ASSOC_FSM_H

#include <stdint.h>

enum dcm_state {
    DCM_STA1 = 1, /* Idle */
    DCM_STA2,     /* Transport connection open (awaiting A-ASSOCIATE-RQ PDU) */
    DCM_STA3,     /* Awaiting local A-ASSOCIATE response primitive */
    DCM_STA4,     /* Awaiting transport connection opening to complete */
    DCM_STA5,     /* Awaiting A-ASSOCIATE-AC or -RJ PDU */
    DCM_STA6,     /* Association established and ready for data transfer */
    DCM_STA7,     /* Awaiting A-RELEASE-RP PDU */
    DCM_STA8,     /* Awaiting local A-RELEASE response primitive */
    DCM_STA9,     /* Release collision requestor side: awaiting A-RELEASE response */
    DCM_STA10,    /* Release collision acceptor side: awaiting A-RELEASE-RP PDU */
    DCM_STA11,    /* Release collision requestor side: awaiting A-RELEASE-RP PDU */
    DCM_STA12,    /* Release collision acceptor side: awaiting A-RELEASE response */
    DCM_STA13,    /* Awaiting transport connection close indication */
    DCM_STATE_COUNT
};

enum dcm_event {
    DCM_EVT1 = 1, /* A-ASSOCIATE request (local user) */
    DCM_EVT2,     /* Transport connect confirmation */
    DCM_EVT3,     /* A-ASSOCIATE-AC PDU received */
    DCM_EVT4,     /* A-ASSOCIATE-RJ PDU received */
    DCM_EVT5,     /* Transport connection indication */
    DCM_EVT6,     /* A-ASSOCIATE-RQ PDU received */
    DCM_EVT7,     /* A-ASSOCIATE response primitive (accept) */
    DCM_EVT8,     /* A-ASSOCIATE response primitive (reject) */
    DCM_EVT9,     /* P-DATA request primitive */
    DCM_EVT10,    /* P-DATA-TF PDU received */
    DCM_EVT11,    /* A-RELEASE request primitive */
    DCM_EVT12,    /* A-RELEASE-RQ PDU received */
    DCM_EVT13,    /* A-RELEASE-RP PDU received */
    DCM_EVT14,    /* A-RELEASE response primitive */
    DCM_EVT15,    /* A-ABORT request primitive */
    DCM_EVT16,    /* A-ABORT PDU received */
    DCM_EVT17,    /* Transport connection closed indication */
    DCM_EVT18,    /* ARTIM timer expired */
    DCM_EVT19,    /* Unrecognized or invalid PDU received */
    DCM_EVENT_COUNT
};

enum dcm_action {
    DCM_ACT_INVALID = 0, /* no entry in the table: treat as AA-8 */
    DCM_AE_1,
    DCM_AE_2,
    DCM_AE_3,
    DCM_AE_4,
    DCM_AE_5,
    DCM_AE_6,
    DCM_AE_7,
    DCM_AE_8,
    DCM_DT_1,
    DCM_DT_2,
    DCM_AR_1,
    DCM_AR_2,
    DCM_AR_3,
    DCM_AR_4,
    DCM_AR_5,
    DCM_AR_6,
    DCM_AR_7,
    DCM_AR_8,
    DCM_AR_9,
    DCM_AR_10,
    DCM_AA_1,
    DCM_AA_2,
    DCM_AA_3,
    DCM_AA_4,
    DCM_AA_5,
    DCM_AA_6,
    DCM_AA_7,
    DCM_AA_8,
    DCM_ACTION_COUNT
};

typedef struct dcm_transition {
    enum dcm_action action;
    enum dcm_state next; /* for AE-6 and AR-8 the standard picks between two
                            states at run time; this is the first (accept / no
                            collision) and the session chooses the other */
} dcm_transition;

/* Looks up the table. Out-of-range inputs or an empty cell give
 * {DCM_ACT_INVALID, state}. */
dcm_transition dcm_fsm_next(enum dcm_state state, enum dcm_event event);
/* "AE-1", "Sta6", "Evt10"; static strings, "?" when out of range. */
const char *dcm_action_name(enum dcm_action a);
const char *dcm_state_name(enum dcm_state s);
const char *dcm_event_name(enum dcm_event e);
/* The event a received PDU of this type is (PS3.8 9.2): EVT3/4/6/10/12/13/16,
 * EVT19 for an unrecognized type. */
enum dcm_event dcm_pdu_event(uint8_t type);

#endif
