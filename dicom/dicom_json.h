/* DICOM JSON model (PS3.18 F.2) <-> dcm_ds, with jansson.
 *
 * dcm_ds -> JSON: one member "GGGGEEEE" (upper-case hex) per element, value
 * {"vr": "..", "Value": [...]}, or {"vr": ".."} alone when empty.
 *   - Character strings are converted to UTF-8 with dcm_charset_to_utf8()
 *     under the (0008,0005) in force (an item's own (0008,0005) overrides its
 *     parent's); every string VR with a byte >= 0x80 or ESC is converted,
 *     not only SH LO ST LT UC UT PN. (0008,0005) itself is emitted as
 *     "ISO_IR 192" since the output is UTF-8 (as DCMTK's dcm2json does).
 *   - Multi-valued strings are split on '\' (not LT ST UT UR); padding is
 *     stripped as dcm_elem_string() does; an empty value becomes null.
 *   - PN values become {"Alphabetic", "Ideographic", "Phonetic"} from the
 *     '='-separated groups, trailing '^' dropped (PS3.5 6.2.1.1); empty groups
 *     are omitted, an empty name is null.
 *   - An element whose values are all empty ("", "^^^^", "\") has no
 *     "Value" (as dcm2json does).
 *   - IS and DS become JSON numbers (integer when the text has no '.', 'e' or
 *     'E' and fits 64 bits, else real); text that is not a valid number stays
 *     a string. US SS UL SL SV UV FL FD become numbers (UV above INT64_MAX as
 *     a decimal string; non-finite FL/FD as "NaN", "Infinity", "-Infinity").
 *   - AT values become "GGGGEEEE" strings; SQ an array of objects.
 *   - OB OD OF OL OV OW UN become "InlineBinary" (base64 of the little-endian
 *     bytes), or "BulkDataURI" when opts->bulk_uri returns non-NULL.
 *
 * JSON -> dcm_ds accepts strings (null = empty value), numbers for IS DS and
 * the binary numeric VRs, PN objects (or plain strings), AT strings, SQ and
 * InlineBinary. BulkDataURI gives HR_EUNSUP. Text is stored as UTF-8 and the
 * top-level (0008,0005) is set to "ISO_IR 192" when the input has one or any
 * string holds non-ASCII; an item's (0008,0005) likewise becomes "ISO_IR 192".
 * DS numbers are written in at most 16 characters (shortest exact form when
 * it fits; a real with an integral value keeps ".0" so it reads back as a
 * real). */
#ifndef DCM_DICOM_JSON_H
#define DCM_DICOM_JSON_H

#include "dicom/dataset.h"

#include <jansson.h>

/* Returns the BulkDataURI to emit for e (a binary-VR element, depth 0 at top
 * level) or NULL for InlineBinary. The string is copied before the next call;
 * it is owned by the callback. */
typedef const char *(*dcm_json_bulk_fn)(void *ud, const dcm_elem *e, unsigned depth);

typedef struct dcm_json_opts {
    dcm_json_bulk_fn bulk_uri; /* NULL: always InlineBinary */
    void *ud;
} dcm_json_opts;

/* Converts ds into a new JSON object in *out (caller json_decref()s it).
 * opts may be NULL. 0 or -ENOMEM (*out NULL on error). */
int dcm_json_from_ds(const dcm_ds *ds, const dcm_json_opts *opts, json_t **out);

/* Converts a DICOM JSON object into a new dataset in *out (caller frees with
 * dcm_ds_free). Bounded like dcm_ds_parse: DCM_DS_MAX_ELEMENTS elements and
 * items, DCM_DS_MAX_DEPTH levels, DCM_DS_MAX_INPUT value bytes. Returns 0;
 * HR_EPARSE (not an object, bad key, unknown VR, value of the wrong JSON
 * type, number out of range for its VR, invalid base64); HR_EUNSUP
 * (BulkDataURI); HR_ETOOBIG; -ENOMEM. *out is NULL on error. */
int dcm_json_to_ds(const json_t *obj, dcm_ds **out);

#endif
