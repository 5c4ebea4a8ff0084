/* Well-known UIDs: transfer syntaxes and the SOP classes huren accepts. */
#ifndef DCM_UIDS_H
#define DCM_UIDS_H

#include <stddef.h>

#define DCM_UID_ROOT         "1.2.840.10008"           /* the DICOM standard's own UIDs */
#define DCM_UID_STORAGE_ARC  "1.2.840.10008.5.1.4.1.1" /* most Storage SOP classes */
#define DCM_UID_APP_CONTEXT  "1.2.840.10008.3.1.1.1"
#define DCM_UID_VERIFICATION "1.2.840.10008.1.1"
#define DCM_TS_IMPLICIT_LE   "1.2.840.10008.1.2"
#define DCM_TS_EXPLICIT_LE   "1.2.840.10008.1.2.1"
#define DCM_TS_DEFLATED_LE   "1.2.840.10008.1.2.1.99"
#define DCM_TS_EXPLICIT_BE   "1.2.840.10008.1.2.2"
/* huren's implementation identity (root below the "2.25" UUID arc). */
#define HR_IMPL_CLASS_UID "2.25.269357186912817373302785463108125012433"
#define HR_IMPL_VERSION   "HUREN_0_1"

typedef struct dcm_ts_info {
    const char *uid;
    const char *name;
    unsigned explicit_vr : 1;
    unsigned big_endian : 1;
    unsigned deflated : 1;
    unsigned encapsulated : 1; /* compressed pixel data in fragments */
} dcm_ts_info;

typedef struct dcm_sop_class_info {
    const char *uid;
    const char *name;
} dcm_sop_class_info;

/* Transfer syntax huren accepts, or NULL. Pointer to static storage. */
const dcm_ts_info *dcm_transfer_syntax(const char *uid);
/* Storage SOP class of huren's table (every PS3.4 Annex B class), or NULL.
 * Pointer to static storage. */
const dcm_sop_class_info *dcm_storage_sop_class(const char *uid);
/* 1 when uid, absent from the table, may still name a Storage SOP class: a
 * syntactically valid UID outside the DICOM root (a vendor's private class),
 * or a standard UID below the Storage arc 1.2.840.10008.5.1.4.1.1 (a class
 * newer than the table) other than the non-patient .200 (protocols) and .201
 * (inventory) arcs. Other standard UIDs (Storage Commitment, MPPS, Print,
 * Worklist, query models...) are never candidates. */
int dcm_uid_storage_candidate(const char *uid);
/* 1 when an object of SOP class uid is accepted for storage: a table class, or
 * with accept_unknown (config dicom.accept_unknown_storage) a candidate. */
int dcm_storage_accepted(const char *uid, int accept_unknown);
/* Static tables for iteration (tests, negotiation); *n receives the count. */
const dcm_ts_info *dcm_transfer_syntaxes(size_t *n);
const dcm_sop_class_info *dcm_storage_sop_classes(size_t *n);
/* 1 when s is a syntactically valid UID (PS3.5 9.1: digits and dots, no
 * leading zero in a component, 1..64 chars), else 0. */
int dcm_uid_valid(const char *s);
/* 1 when s is 1..64 digits and dots, else 0: the looser test that Redis key
 * names and file names of a study rely on (no component rules, unlike
 * dcm_uid_valid). NULL: 0. */
int dcm_uid_key_valid(const char *s);

#define DCM_UID_NAMED_MAX 45 /* "2.25." + 39 digits + NUL, and a margin */
/* A UID that is a function of name (len bytes, any content): "2.25." and the
 * decimal value of a name-based UUID (RFC 9562 version 8: the first 128 bits
 * of SHA-256(name) with the version and variant bits set), PS3.5 B.2. The
 * same name always gives the same UID; distinct names collide with
 * probability 2^-122. out receives at most DCM_UID_NAMED_MAX bytes. 0, or
 * -ENOSPC when cap is smaller, -ENOMEM (OpenSSL failed). */
int dcm_uid_named(const void *name, size_t len, char *out, size_t cap);

#endif
