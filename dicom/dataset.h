/* A small, complete in-memory DICOM dataset (C-FIND identifiers, C-FIND
 * responses, DICOM JSON): parse a whole dataset held in memory, read values,
 * build one element by element, encode it. Not for images: the input is
 * bounded (DCM_DS_MAX_INPUT by default) and copied once.
 *
 * Model: a dcm_ds is an array of elements sorted by tag. Non-sequence values
 * are kept as raw bytes in little-endian byte order whatever the transfer
 * syntax (big-endian input is swapped per VR unit when parsed and swapped
 * back when encoded), so readers never care about byte order. A sequence
 * element holds items, each a dcm_ds owned by that element.
 *
 * Supported transfer syntaxes: Implicit VR LE, Explicit VR LE, Explicit VR
 * BE. Deflated and encapsulated syntaxes give HR_EUNSUP, unknown UIDs
 * HR_EUNSUP. */
#ifndef DCM_DATASET_H
#define DCM_DATASET_H

#include "common/hr_buf.h"
#include "dicom/dict.h"
#include "dicom/elem.h"

#include <stddef.h>
#include <stdint.h>

/* Limits (checked before allocating). */
#define DCM_DS_MAX_INPUT    (1u << 20)         /* default byte limit of dcm_ds_parse */
#define DCM_DS_MAX_ELEMENTS 4096               /* elements + items, all levels together */
#define DCM_DS_MAX_DEPTH    DCM_ELEM_MAX_DEPTH /* nested sequence levels (elem.h) */

typedef struct dcm_ds dcm_ds;

/* One element. Read-only for users; the struct lives in its dataset and is
 * valid until the dataset is freed or that tag is put/removed again. */
typedef struct dcm_elem {
    uint32_t tag;
    char vr[3];           /* 2 letters + NUL: from the stream (explicit VR) or
                             dcm_dict_vr() (implicit VR) */
    uint8_t own_;         /* internal: value was allocated by the builder */
    uint32_t len;         /* value length in bytes (as read; odd lengths kept) */
    const uint8_t *value; /* len bytes, little-endian; NULL when len == 0 or SQ */
    dcm_ds **items;       /* SQ only: n_items items owned by the element */
    size_t n_items;
    size_t items_cap_; /* internal */
} dcm_elem;

/* ---- parsing ------------------------------------------------------------ */

/* Parses a whole bare dataset (no preamble, no group 0002) of n bytes in the
 * transfer syntax ts_uid. max_bytes bounds n (0 = DCM_DS_MAX_INPUT). The
 * bytes are copied; p may be freed after the call. On success *out receives
 * a new dataset the caller frees with dcm_ds_free(); on error *out is NULL.
 *
 * Elements are read with the element core (elem.h), the rule every reader
 * applies: sequences of defined or undefined length with items of defined or
 * undefined length are parsed recursively (DCM_DS_MAX_DEPTH levels); UN of
 * undefined length is a sequence of Implicit VR LE items and becomes SQ; in
 * Explicit VR LE a UN element of a tag the dictionary knows takes the
 * dictionary VR (a sequence then being Implicit VR LE inside). A group 0002
 * element is HR_EPARSE. Group lengths are kept as elements.
 * This parser's own policy: encapsulated Pixel Data (undefined length) is
 * HR_EPARSE (a dcm_ds holds no fragments); elements out of tag order are
 * sorted; a duplicated tag is HR_EPARSE.
 *
 * Returns 0; HR_ETRUNC when the input ends inside an element or open
 * sequence/item; HR_EPARSE for malformed structure (invalid VR, delimiter out
 * of place or with a length, length overrunning its enclosing item, undefined
 * length on a non-sequence, group 0002, duplicate tag); HR_ETOOBIG above
 * max_bytes, DCM_DS_MAX_ELEMENTS or DCM_DS_MAX_DEPTH; HR_EUNSUP for other
 * transfer syntaxes; -ENOMEM. */
int dcm_ds_parse(const uint8_t *p, size_t n, const char *ts_uid, size_t max_bytes, dcm_ds **out);

/* dcm_ds_parse() of a File Meta Information group (the n bytes after its group
 * length element, Explicit VR LE, at most DCM_DS_MAX_INPUT): every element
 * must be of group 0002, else HR_EPARSE. Same ownership and other errors. */
int dcm_ds_parse_meta(const uint8_t *p, size_t n, dcm_ds **out);

/* Frees ds, its items and values. NULL is a no-op. Never call on an item
 * obtained from an element (items are owned by their parent). */
void dcm_ds_free(dcm_ds *ds);

/* ---- reading ------------------------------------------------------------ */

/* Number of top-level elements, and the i-th (i < count) in tag order. */
size_t dcm_ds_count(const dcm_ds *ds);
const dcm_elem *dcm_ds_at(const dcm_ds *ds, size_t i);
/* The element with tag at this level, or NULL. Binary search. */
const dcm_elem *dcm_ds_find(const dcm_ds *ds, uint32_t tag);

/* Value multiplicity: string VRs count '\'-separated values (LT ST UR UT:
 * 1), binary VRs len / unit (OB OD OF OL OV OW UN: 1), SQ the items; 0 when
 * empty (see dcm_elem_empty). */
size_t dcm_elem_vm(const dcm_elem *e);
/* 1 when the element is present but has no value: zero length, a string
 * value made only of padding (spaces, NULs), or a sequence without items.
 * This is "universal matching" in a C-FIND identifier. 0 otherwise. */
int dcm_elem_empty(const dcm_elem *e);

/* Copies the value of a string-VR element into out (cap), NUL-terminated,
 * with padding stripped per value as PS3.5 6.2 says: trailing spaces and
 * NULs always; leading spaces too for AE AS CS DA DS DT IS LO SH TM UI (not
 * for PN LT ST UC UR UT). idx selects one value of a multi-valued element
 * (split on '\'); idx == DCM_ALL_VALUES copies the whole value (values
 * re-joined with '\'). Bytes are not charset-converted.
 * Returns 0; HR_ENOTFOUND when idx >= VM (an empty element has VM 0: out is
 * then ""); HR_EMISMATCH when the VR is not a string VR; HR_ETOOBIG when the
 * value does not fit in cap (out then holds a truncated copy). */
#define DCM_ALL_VALUES ((size_t)-1)
int dcm_elem_string(const dcm_elem *e, size_t idx, char *out, size_t cap);
/* dcm_elem_string() on the element with tag: HR_ENOTFOUND when absent. */
int dcm_ds_get_string(const dcm_ds *ds, uint32_t tag, char *out, size_t cap);

/* Value idx of a numeric element as a double: US SS UL SL FL FD SV UV from the
 * bytes, IS DS parsed from the text. 0; HR_ENOTFOUND (idx >= VM);
 * HR_EMISMATCH (other VR); HR_EPARSE (IS/DS text is not a number). */
int dcm_elem_number(const dcm_elem *e, size_t idx, double *out);

/* ---- building ----------------------------------------------------------- */

/* A new empty dataset (caller frees with dcm_ds_free), NULL on ENOMEM. */
dcm_ds *dcm_ds_new(void);

/* The put functions insert or replace the element with tag, keeping tag
 * order; values are copied. vr NULL takes dcm_dict_vr(tag). They return 0,
 * HR_EPARSE (unknown VR, item/delimiter tag, VR/function mismatch),
 * HR_ETOOBIG (more than DCM_DS_MAX_ELEMENTS elements at this level, value
 * longer than 0xFFFFFFFE) or -ENOMEM. */

/* String VR: s holds the whole value (values separated by '\'), n bytes;
 * padded to even length with a space, or NUL for UI. */
int dcm_ds_put_stringn(dcm_ds *ds, uint32_t tag, const char *vr, const char *s, size_t n);
/* Same with a NUL-terminated s (NULL or "" = present but empty). */
int dcm_ds_put_string(dcm_ds *ds, uint32_t tag, const char *vr, const char *s);
/* Any non-SQ VR: n raw bytes in little-endian order; padded to even length
 * with a NUL. */
int dcm_ds_put_bytes(dcm_ds *ds, uint32_t tag, const char *vr, const void *p, size_t n);
/* US / UL convenience (VM 1). */
int dcm_ds_put_u16(dcm_ds *ds, uint32_t tag, uint16_t v);
int dcm_ds_put_u32(dcm_ds *ds, uint32_t tag, uint32_t v);
/* A sequence element with n items. Takes ownership of the items (and of the
 * array's pointees, not the array) in every case, also on error. n == 0
 * gives an empty sequence. */
int dcm_ds_put_sequence(dcm_ds *ds, uint32_t tag, dcm_ds **items, size_t n);
/* Appends item to the sequence with tag, creating an empty sequence first if
 * the tag is absent. Takes ownership of item in every case. HR_EMISMATCH when
 * the existing element is not SQ. */
int dcm_ds_append_item(dcm_ds *ds, uint32_t tag, dcm_ds *item);
/* Removes the element with tag: 0 or HR_ENOTFOUND. */
int dcm_ds_remove(dcm_ds *ds, uint32_t tag);

/* ---- encoding ----------------------------------------------------------- */

/* Appends the encoding of ds in ts_uid (Implicit VR LE, Explicit VR LE or
 * Explicit VR BE) to out. Sequences and items get defined lengths; odd values
 * are padded (space for string VRs except UI, else NUL). On error out->len is
 * restored. Returns 0; HR_EUNSUP (other syntax); HR_ETOOBIG (out's cap, a
 * value above 0xFFFF bytes under a 2-byte-length VR in explicit VR, nesting
 * beyond DCM_DS_MAX_DEPTH); -ENOMEM. */
int dcm_ds_encode(const dcm_ds *ds, const char *ts_uid, hr_buf *out);

#endif
