/* DIMSE command set codec (PS3.7 section 9 and E): group 0000 elements,
 * always Implicit VR Little Endian. Pure functions. */
#ifndef DCM_DIMSE_H
#define DCM_DIMSE_H

#include "../common/hr_buf.h"

#include <stddef.h>
#include <stdint.h>

enum dcm_command_field {
    DCM_C_STORE_RQ = 0x0001,
    DCM_C_STORE_RSP = 0x8001,
    DCM_C_GET_RQ = 0x0010,
    DCM_C_GET_RSP = 0x8010,
    DCM_C_FIND_RQ = 0x0020,
    DCM_C_FIND_RSP = 0x8020,
    DCM_C_MOVE_RQ = 0x0021,
    DCM_C_MOVE_RSP = 0x8021,
    DCM_C_ECHO_RQ = 0x0030,
    DCM_C_ECHO_RSP = 0x8030,
    DCM_N_EVENT_REPORT_RQ = 0x0100,
    DCM_N_EVENT_REPORT_RSP = 0x8100,
    DCM_N_GET_RQ = 0x0110,
    DCM_N_SET_RQ = 0x0120,
    DCM_N_ACTION_RQ = 0x0130,
    DCM_N_CREATE_RQ = 0x0140,
    DCM_N_DELETE_RQ = 0x0150,
    DCM_C_CANCEL_RQ = 0x0FFF,
};

#define DCM_DATASET_NONE 0x0101 /* (0000,0800) value meaning "no data set" */

/* Status codes used by huren (PS3.4 Annex B, PS3.7 Annex C). */
enum {
    DCM_STATUS_SUCCESS = 0x0000,
    DCM_STATUS_WARN_COERCION = 0xB000,
    DCM_STATUS_WARN_DS_MISMATCH = 0xB007,
    DCM_STATUS_OUT_OF_RESOURCES = 0xA700,
    DCM_STATUS_OUT_OF_RESOURCES_SUBOPS = 0xA701, /* C-MOVE/C-GET: cannot count matches */
    DCM_STATUS_DS_MISMATCH = 0xA900,
    DCM_STATUS_CANNOT_UNDERSTAND = 0xC000,
    DCM_STATUS_SOP_CLASS_UNSUPPORTED = 0x0122,
    DCM_STATUS_PROCESSING_FAILURE = 0x0110,
    DCM_STATUS_NOT_AUTHORIZED = 0x0124, /* Refused: Not Authorized (PS3.7 C.5.x) */
    DCM_STATUS_CANCEL = 0xFE00,
    DCM_STATUS_PENDING = 0xFF00,
};

#define DCM_CMD_UID_BUF     65
#define DCM_CMD_AE_BUF      17
#define DCM_CMD_COMMENT_BUF 65
#define DCM_CMD_MAX_LEN     65536 /* a command set larger than this is refused */

/* Flags telling which optional fields are present. */
enum {
    DCM_CMD_HAS_MSG_ID = 1u << 0,
    DCM_CMD_HAS_MSG_ID_RSP = 1u << 1,
    DCM_CMD_HAS_PRIORITY = 1u << 2,
    DCM_CMD_HAS_STATUS = 1u << 3,
    DCM_CMD_HAS_COUNTS = 1u << 4,
    DCM_CMD_HAS_MOVE_ORIGINATOR = 1u << 5,
};

typedef struct dcm_command {
    uint32_t flags;
    uint16_t command_field;                       /* (0000,0100) */
    uint16_t message_id;                          /* (0000,0110) */
    uint16_t message_id_responded;                /* (0000,0120) */
    uint16_t priority;                            /* (0000,0700) */
    uint16_t data_set_type;                       /* (0000,0800); DCM_DATASET_NONE = none */
    uint16_t status;                              /* (0000,0900) */
    char affected_sop_class[DCM_CMD_UID_BUF];     /* (0000,0002) */
    char requested_sop_class[DCM_CMD_UID_BUF];    /* (0000,0003) */
    char affected_sop_instance[DCM_CMD_UID_BUF];  /* (0000,1000) */
    char requested_sop_instance[DCM_CMD_UID_BUF]; /* (0000,1001) */
    char move_destination[DCM_CMD_AE_BUF];        /* (0000,0600) */
    char move_originator_ae[DCM_CMD_AE_BUF];      /* (0000,1030) */
    uint16_t move_originator_id;                  /* (0000,1031) */
    uint16_t n_remaining, n_completed, n_failed, n_warning; /* (0000,1020..1023) */
    char error_comment[DCM_CMD_COMMENT_BUF];                /* (0000,0902) */
} dcm_command;

/* Parses a complete command set (the concatenated command PDVs). Unknown
 * group-0000 elements are skipped; string values have padding removed.
 * 0, HR_EPARSE (malformed, not group 0000, missing CommandField) or
 * HR_ETOOBIG (n > DCM_CMD_MAX_LEN). */
int dcm_command_parse(const uint8_t *p, size_t n, dcm_command *out);
/* Appends the encoded command set, CommandGroupLength first, elements in
 * ascending tag order, only those present (non-empty strings, flags). */
int dcm_command_encode(const dcm_command *c, hr_buf *out);
/* 1 for a response command field (bit 15 set). */
int dcm_command_is_response(uint16_t command_field);

#endif
