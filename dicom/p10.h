/* DICOM Part 10 File Meta Information writer (PS3.10 7.1). Pure. */
#ifndef DCM_P10_H
#define DCM_P10_H

#include "../common/hr_buf.h"

/* Private Information Creator UID huren writes into (0002,0100). */
#define HR_PRIVATE_INFO_CREATOR "2.25.269357186912817373302785463108125012433.1"

typedef struct dcm_p10_meta {
    const char *sop_class_uid;    /* (0002,0002) */
    const char *sop_instance_uid; /* (0002,0003) */
    const char *transfer_syntax;  /* (0002,0010) */
    const char *source_ae;        /* (0002,0016), may be NULL */
    const char *private_info;     /* (0002,0102) with (0002,0100) creator, may be NULL */
} dcm_p10_meta;

/* Appends the 128-byte preamble, "DICM" and the whole group 0002 (explicit VR
 * LE, group length first) to out. 0, HR_EPARSE (invalid UID/AE) or hr_buf errors. */
int dcm_p10_encode_meta(const dcm_p10_meta *m, hr_buf *out);

/* What a Part 10 file declares in its File Meta Information. */
typedef struct dcm_p10_info {
    char sop_class[65];    /* (0002,0002) */
    char sop_instance[65]; /* (0002,0003) */
    char ts[65];           /* (0002,0010) */
    size_t dataset_offset; /* first byte after group 0002 */
} dcm_p10_info;

#define DCM_P10_META_MAX (64 * 1024) /* larger File Meta Information is refused */

/* Reads the preamble, "DICM" and group 0002 from the first n bytes of a Part
 * 10 file. 0 with *out filled; HR_ETRUNC when more bytes are needed (feed
 * more, up to DCM_P10_META_MAX + 144); HR_EPARSE (no "DICM", no group length,
 * malformed or missing UIDs); HR_ETOOBIG. */
int dcm_p10_read_meta(const uint8_t *p, size_t n, dcm_p10_info *out);

/* huren's private information string: "hospital=<id>;received=<ms since epoch>".
 * Parses it back; returns 0 or HR_EPARSE. hospital cap >= 64. */
int dcm_p10_parse_private_info(const char *s, char *hospital, size_t cap, long long *received_ms);

#endif
