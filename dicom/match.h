/* Attribute matching for queries (C-FIND, QIDO-RS), PS3.4 C.2.2.2: universal,
 * single value, list of UIDs, wildcard (* and ?), and range matching for DA,
 * TM and DT. Pure functions over UTF-8 strings with padding already removed.
 *
 * huren's choices where the standard leaves them open:
 * - PN matches case-insensitively for ASCII letters, and a key without '='
 *   is tried against each component group of the value, so "张*" finds
 *   "Zhang^San=张三". Other VRs match case-sensitively.
 * - A key holding several values separated by '\' matches when any of them
 *   does (the standard's list of UIDs, extended to CS keys such as
 *   ModalitiesInStudy); a stored multi-valued attribute matches when any of
 *   its values does.
 * - In a TM/DT range an incomplete bound is widened: "09-10" means
 *   09:00:00.000000 to 10:59:59.999999. */
#ifndef DCM_MATCH_H
#define DCM_MATCH_H

enum dcm_match_kind {
    DCM_MATCH_UNIVERSAL, /* empty key (or "*"): everything matches */
    DCM_MATCH_SINGLE,
    DCM_MATCH_LIST,     /* several values separated by '\' */
    DCM_MATCH_WILDCARD, /* contains * or ? (VRs that allow it) */
    DCM_MATCH_RANGE,    /* DA/TM/DT with '-' */
};

/* How key is to be matched for an attribute of this VR. */
enum dcm_match_kind dcm_match_kind(const char vr[2], const char *key);

/* 1 when value (the stored attribute, possibly multi-valued, possibly empty)
 * matches key, else 0. An empty value matches only a universal key. */
int dcm_match(const char vr[2], const char *key, const char *value);

/* For a DA key of kind SINGLE or RANGE: the inclusive bounds as YYYYMMDD
 * numbers (0 and 99999999 for open ends), to select from a sorted index.
 * 0, or HR_EPARSE when the key is not a date or date range. */
int dcm_date_bounds(const char *key, long *lo, long *hi);

#endif
