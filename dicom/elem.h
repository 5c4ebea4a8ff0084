/* The element-reading core shared by every DICOM reader: the streaming
 * scanner (scanner.c, ingest and reindex), the in-memory parser (dataset.c,
 * C-FIND identifiers and the metadata sidecars' compact data sets) and the
 * sidecar walker (storage/meta.c). One reading rule (decision 0009): what
 * ingest acknowledged, every later reader reads the same way.
 *
 * dcm_elem_read() decodes one element header; dcm_elem_value() says how its
 * value is read. Pure functions over caller-owned bytes, no allocation.
 *
 * The rule, as these functions apply it:
 *   - Item, Item Delimitation and Sequence Delimitation (group FFFE) have no
 *     VR in any encoding: tag + 4-byte length. Delimiters have length 0; any
 *     other group FFFE tag is an error.
 *   - Explicit VR: the VR is one of the 34 of PS3.5 6.2; OB OD OF OL OV OW SQ
 *     SV UC UN UR UT UV have 2 reserved bytes and a 4-byte length (12-byte
 *     header), the others a 2-byte length (8-byte header, 0xFFFF is a defined
 *     length). Implicit VR: the VR is the dictionary's (dcm_dict_vr()).
 *   - A group 0002 element is File Meta Information: it has no place in a data
 *     set (only in the meta group itself, DCM_ELEM_META).
 *   - Undefined length: Pixel Data (7FE0,0010) holds fragments (encapsulated);
 *     SQ holds items in the data set's encoding; UN holds items in Implicit VR
 *     LE (PS3.5 6.2.2); any other VR is an error (in implicit VR that is the
 *     dictionary VR, so an undefined-length element of a known non-sequence
 *     tag is an error there too).
 *   - Defined length: SQ holds items. In Explicit VR LE, UN of a tag the
 *     dictionary knows is read with the dictionary VR (a tool converted it
 *     from implicit VR without knowing the tag, as pydicom reads it): a
 *     sequence then holds Implicit VR LE items.
 * What the readers add on top (bounds, nesting, delimiter placement) is
 * common too: a header or value that runs past a defined-length item or
 * sequence is HR_EPARSE, past the end of the input HR_ETRUNC; sequences nest
 * at most DCM_ELEM_MAX_DEPTH deep (HR_ETOOBIG). Each reader's own policy is
 * documented in its header. */
#ifndef DCM_ELEM_H
#define DCM_ELEM_H

#include <stddef.h>
#include <stdint.h>

#define DCM_UNDEF_LEN      0xFFFFFFFFu
#define DCM_ELEM_MAX_DEPTH 8 /* nested sequence levels, for every reader */

/* dcm_elem_read() result beyond 0 and errors: more header bytes needed. */
#define DCM_ELEM_MORE 1

/* Why a header or value was refused (for messages). */
enum dcm_elem_fault {
    DCM_FAULT_NONE = 0,
    DCM_FAULT_VR,        /* explicit VR not one of PS3.5 6.2 */
    DCM_FAULT_FFFE,      /* group FFFE tag other than Item and the delimiters */
    DCM_FAULT_DELIM_LEN, /* delimiter with a non-zero length */
    DCM_FAULT_META,      /* group 0002 element inside a data set */
    DCM_FAULT_UNDEF,     /* undefined length on a VR that cannot have it */
};

/* One decoded element header. */
typedef struct dcm_elem_hdr {
    uint32_t tag;
    uint32_t len;    /* value length; DCM_UNDEF_LEN when undefined */
    char vr[3];      /* explicit VR: the two bytes read (NUL-terminated, as read even
                        when invalid); implicit VR: dcm_dict_vr(tag); group FFFE: "" */
    uint8_t hdr_len; /* header bytes: 8, or 12 for a 4-byte-length explicit VR */
    uint8_t fault;   /* enum dcm_elem_fault of the last refusal */
} dcm_elem_hdr;

/* Decodes the element header at p, of which n bytes are available, in the
 * given encoding. Returns 0 (*h filled); DCM_ELEM_MORE when n < h->hdr_len
 * (h->hdr_len says how many bytes are needed: 8, or 12 once the VR is known);
 * HR_EPARSE with h->fault set (DCM_FAULT_VR, DCM_FAULT_FFFE,
 * DCM_FAULT_DELIM_LEN) and h->tag, h->vr as read. */
int dcm_elem_read(const uint8_t *p, size_t n, int explicit_vr, int big, dcm_elem_hdr *h);

/* How a data set element's value is read. */
enum dcm_value_kind {
    DCM_VALUE_BYTES,        /* h->len bytes */
    DCM_VALUE_SEQ,          /* items in the enclosing encoding */
    DCM_VALUE_SEQ_IMPLICIT, /* items in Implicit VR LE (UN, PS3.5 6.2.2) */
    DCM_VALUE_FRAGMENTS,    /* encapsulated: items of defined length, then a
                               Sequence Delimitation Item */
};

/* Flags of dcm_elem_value(). */
#define DCM_ELEM_META 1u /* reading the File Meta Information: group 0002 allowed */

/* The rule for the value of the data set element h (not group FFFE: items
 * and delimiters are the caller's structure) read in the given encoding:
 * *kind, and into vr (3 bytes) the VR the value is read with (h->vr, the
 * dictionary VR for a UN element as described above, "SQ" for both
 * sequence kinds, "OB" for fragments claiming to be SQ). Returns 0 or HR_EPARSE with h->fault set
 * (DCM_FAULT_META, DCM_FAULT_UNDEF). */
int dcm_elem_value(dcm_elem_hdr *h, int explicit_vr, int big, unsigned flags,
                   enum dcm_value_kind *kind, char vr[3]);

/* A one-line description of h's fault ("element (0010,0010) has invalid VR
 * 0x6321", ...) into buf (cap bytes, NUL-terminated, truncated to fit). */
void dcm_elem_fault_text(const dcm_elem_hdr *h, char *buf, size_t cap);

#endif
