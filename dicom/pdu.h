/* DICOM upper layer PDU codec (PS3.8 section 9.3). Pure functions: bytes in,
 * structs out; structs in, bytes appended to an hr_buf. No sockets. */
#ifndef DCM_PDU_H
#define DCM_PDU_H

#include "../common/hr_buf.h"

#include <stddef.h>
#include <stdint.h>

enum dcm_pdu_type {
    DCM_PDU_ASSOC_RQ = 0x01,
    DCM_PDU_ASSOC_AC = 0x02,
    DCM_PDU_ASSOC_RJ = 0x03,
    DCM_PDU_P_DATA = 0x04,
    DCM_PDU_RELEASE_RQ = 0x05,
    DCM_PDU_RELEASE_RP = 0x06,
    DCM_PDU_ABORT = 0x07,
};

#define DCM_PDU_HEADER_LEN 6
#define DCM_AE_MAX         17 /* 16 chars + NUL */
#define DCM_UID_BUF        65
#define DCM_MAX_PCS        128 /* presentation contexts per association (odd ids 1..255) */
#define DCM_MAX_TS_PER_PC  24
#define DCM_MAX_ROLES      128 /* one per context: getscu proposes a role for each storage class */

/* Frames one PDU at the front of buf[0..len). Returns 0 when more bytes are
 * needed, 1 when a whole PDU is present (*type, *body_len set; the body is at
 * buf + 6), HR_ETOOBIG when the declared length exceeds max_len (checked as
 * soon as the 6-byte header is in, before anything is buffered), HR_EPROTO for
 * an unknown PDU type. */
int dcm_pdu_frame(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type,
                  uint32_t *body_len);

typedef struct dcm_pc_rq {
    uint8_t id;
    char abstract_syntax[DCM_UID_BUF];
    uint8_t n_ts;
    char ts[DCM_MAX_TS_PER_PC][DCM_UID_BUF];
} dcm_pc_rq;

typedef struct dcm_role {
    char sop_class[DCM_UID_BUF];
    uint8_t scu, scp;
} dcm_role;

/* A-ASSOCIATE-RQ contents (also used to encode one when huren is an SCU).
 * Large (~200 KB): allocate on the heap, only while negotiating. */
typedef struct dcm_assoc_rq {
    uint16_t protocol_version;
    char called_ae[DCM_AE_MAX];  /* trailing spaces removed */
    char calling_ae[DCM_AE_MAX]; /* trailing spaces removed */
    char app_context[DCM_UID_BUF];
    int n_pc;
    dcm_pc_rq pc[DCM_MAX_PCS];
    uint32_t max_pdu; /* 0 = unlimited */
    char impl_class_uid[DCM_UID_BUF];
    char impl_version[DCM_AE_MAX];
    int has_async;
    uint16_t max_ops_invoked, max_ops_performed;
    int n_roles;
    dcm_role roles[DCM_MAX_ROLES];
    int has_user_identity; /* parsed for bounds, otherwise ignored */
    uint8_t user_identity_type;
} dcm_assoc_rq;

/* Presentation context results (PS3.8 9.3.3.2). */
enum {
    DCM_PC_ACCEPT = 0,
    DCM_PC_USER_REJECT = 1,
    DCM_PC_NO_REASON = 2,
    DCM_PC_ABSTRACT_UNSUPPORTED = 3,
    DCM_PC_TS_UNSUPPORTED = 4,
};

typedef struct dcm_pc_ac {
    uint8_t id;
    uint8_t result;
    char ts[DCM_UID_BUF]; /* accepted transfer syntax (result 0) */
} dcm_pc_ac;

typedef struct dcm_assoc_ac {
    char called_ae[DCM_AE_MAX];
    char calling_ae[DCM_AE_MAX];
    int n_pc;
    dcm_pc_ac pc[DCM_MAX_PCS];
    uint32_t max_pdu;
    char impl_class_uid[DCM_UID_BUF];
    char impl_version[DCM_AE_MAX];
    int has_async;
    uint16_t max_ops_invoked, max_ops_performed;
    int n_roles;
    dcm_role roles[DCM_MAX_ROLES];
} dcm_assoc_ac;

/* A-ASSOCIATE-RJ result/source/reason (PS3.8 9.3.4). */
enum { DCM_RJ_PERMANENT = 1, DCM_RJ_TRANSIENT = 2 };
enum { DCM_RJ_SRC_USER = 1, DCM_RJ_SRC_ACSE = 2, DCM_RJ_SRC_PRESENTATION = 3 };
enum {
    DCM_RJ_USER_NO_REASON = 1,
    DCM_RJ_USER_APP_CONTEXT = 2,
    DCM_RJ_USER_CALLING_AE = 3,
    DCM_RJ_USER_CALLED_AE = 7,
    DCM_RJ_ACSE_NO_REASON = 1,
    DCM_RJ_ACSE_PROTOCOL_VERSION = 2,
    DCM_RJ_PRES_TEMP_CONGESTION = 1,
    DCM_RJ_PRES_LOCAL_LIMIT = 2,
};

/* A-ABORT source/reason (PS3.8 9.3.8). */
enum { DCM_ABORT_SRC_USER = 0, DCM_ABORT_SRC_PROVIDER = 2 };
enum {
    DCM_ABORT_NOT_SPECIFIED = 0,
    DCM_ABORT_UNRECOGNIZED_PDU = 1,
    DCM_ABORT_UNEXPECTED_PDU = 2,
    DCM_ABORT_UNRECOGNIZED_PARAM = 4,
    DCM_ABORT_UNEXPECTED_PARAM = 5,
    DCM_ABORT_INVALID_PARAM = 6,
};

/* Parses an A-ASSOCIATE-RQ body (after the 6-byte header). Unknown
 * sub-items are skipped; bounds are checked against the body length and the
 * limits above. 0 or HR_EPARSE / HR_ETOOBIG. *out is fully overwritten. */
int dcm_pdu_parse_assoc_rq(const uint8_t *body, uint32_t len, dcm_assoc_rq *out);
/* Parses an A-ASSOCIATE-AC body. 0 or HR_EPARSE / HR_ETOOBIG. */
int dcm_pdu_parse_assoc_ac(const uint8_t *body, uint32_t len, dcm_assoc_ac *out);
/* Parses an A-ASSOCIATE-RJ body into result/source/reason. 0 or HR_EPARSE. */
int dcm_pdu_parse_assoc_rj(const uint8_t *body, uint32_t len, uint8_t *result, uint8_t *source,
                           uint8_t *reason);
/* Parses an A-ABORT body. 0 or HR_EPARSE. */
int dcm_pdu_parse_abort(const uint8_t *body, uint32_t len, uint8_t *source, uint8_t *reason);

/* Encoders append one whole PDU (header included) to out. 0 or the hr_buf error. */
int dcm_pdu_encode_assoc_rq(const dcm_assoc_rq *rq, hr_buf *out);
int dcm_pdu_encode_assoc_ac(const dcm_assoc_ac *ac, hr_buf *out);
int dcm_pdu_encode_assoc_rj(uint8_t result, uint8_t source, uint8_t reason, hr_buf *out);
int dcm_pdu_encode_release_rq(hr_buf *out);
int dcm_pdu_encode_release_rp(hr_buf *out);
int dcm_pdu_encode_abort(uint8_t source, uint8_t reason, hr_buf *out);

/* One presentation data value of a P-DATA-TF PDU; data points into the body. */
typedef struct dcm_pdv {
    uint8_t pc_id;
    uint8_t is_command; /* message control header bit 0 */
    uint8_t is_last;    /* bit 1 */
    const uint8_t *data;
    uint32_t len;
} dcm_pdv;

/* Iterates the PDVs of a P-DATA-TF body; *off starts at 0. Returns 1 with
 * *pdv set, 0 at the end of the body, HR_EPROTO when an item length is
 * inconsistent (< 2, or past the body). */
int dcm_pdata_next(const uint8_t *body, uint32_t len, uint32_t *off, dcm_pdv *pdv);
/* Writes a P-DATA-TF PDU header carrying exactly one PDV of data_len bytes
 * into hdr[12] (6-byte PDU header + 4-byte item length + pc id + control). */
void dcm_pdata_header(uint8_t hdr[12], uint8_t pc_id, int is_command, int is_last,
                      uint32_t data_len);

#endif
