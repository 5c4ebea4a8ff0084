/* Streaming DICOM dataset scanner: fed bytes in chunks of any size, extracts
 * dcm_attrs from top-level elements (nested sequences are walked, not
 * extracted), stops extracting at Pixel Data but keeps walking the structure
 * (element headers, encapsulated items) to the end so truncation and
 * inconsistent lengths are detected. Memory is bounded (a few KB plus a zlib
 * stream for deflated data) whatever the object size. Never touches I/O.
 *
 * Input is either a Part 10 stream (128-byte preamble + "DICM" + group 0002,
 * then the dataset in the transfer syntax named by (0002,0010)) or a bare
 * dataset (as in a C-STORE P-DATA stream) in a given transfer syntax. Part 10
 * files without preamble, or without meta (bare dataset, TS guessed), are also
 * accepted when mode is DCM_SCAN_AUTO.
 *
 * Elements are read with the element core (elem.h), the reading rule
 * dataset.c and storage/meta.c apply too; in particular a group 0002 element
 * after the meta group is HR_EPARSE in every mode. The scanner's own policy:
 *   - DCM_SCAN_DATASET (a data set received over a negotiated presentation
 *     context or in a STOW part) must be in the VR encoding of ts_uid: the
 *     first element decides, a mismatch is HR_EPARSE. In PART10 and AUTO
 *     (files written by others) the first element's encoding wins over the
 *     declared one.
 *   - DCM_SCAN_DATASET also refuses elements out of ascending tag order or
 *     repeated (PS3.5 7.1), at every level (an item starts its own order):
 *     dataset.c and meta.c refuse a repeated tag, and ascending order is what
 *     a stream can check with one tag per level. Values are walked, not
 *     interpreted.
 *   - Being fed a stream, it cannot tell that a value running past a
 *     defined-length item also runs past the input: that is HR_EPARSE here,
 *     HR_ETRUNC for the in-memory readers. */
#ifndef DCM_SCANNER_H
#define DCM_SCANNER_H

#include "dcm_attrs.h"
#include "elem.h"

#include <stddef.h>
#include <stdint.h>

enum dcm_scan_mode {
    DCM_SCAN_DATASET, /* bare dataset in ts_uid */
    DCM_SCAN_PART10,  /* preamble + DICM + meta + dataset */
    DCM_SCAN_AUTO,    /* detect: Part 10, meta without preamble, or bare dataset */
};

/* Scanner return codes beyond hr_err.h. */
#define DCM_SCAN_MORE 0 /* all bytes consumed, feed more */
#define DCM_SCAN_END  1 /* the walk reached a consistent end (only from dcm_scanner_finish) */

/* Limits (bounded before allocation). */
#define DCM_SCAN_MAX_DEPTH DCM_ELEM_MAX_DEPTH /* sequence nesting (elem.h) */

typedef struct dcm_scanner dcm_scanner;

/* Allocates a scanner writing into *out (caller-owned, must outlive the
 * scanner; zeroed by this call). ts_uid is used for DCM_SCAN_DATASET and as a
 * fallback for AUTO; it is copied. Returns NULL on allocation failure. */
dcm_scanner *dcm_scanner_new(enum dcm_scan_mode mode, const char *ts_uid, dcm_attrs *out);
void dcm_scanner_free(dcm_scanner *s);

/* Feeds n bytes. Returns DCM_SCAN_MORE, or a negative error (HR_EPARSE,
 * HR_ETOOBIG, HR_EUNSUP for an unknown transfer syntax, ...). After an error
 * further calls return the same error. */
int dcm_scanner_feed(dcm_scanner *s, const uint8_t *p, size_t n);

/* Declares end of input. Returns DCM_SCAN_END when the stream ended on an
 * element boundary at top level (all sequences/items closed), HR_ETRUNC when
 * it ended inside an element or open sequence, or the sticky error. On success
 * text attributes have been converted to UTF-8 (charset.h). */
int dcm_scanner_finish(dcm_scanner *s);

/* Human-readable reason for the last error (static or scanner-owned, valid
 * until dcm_scanner_free). */
const char *dcm_scanner_error(const dcm_scanner *s);

/* Total bytes consumed so far (of the input, before inflation). */
uint64_t dcm_scanner_offset(const dcm_scanner *s);

#endif
