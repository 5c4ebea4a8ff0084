/* WADO-RS support data derived from each stored object, so the HTTP layer serves
 * metadata, bulk data and frames by range reads without parsing objects:
 *   meta/aa/bb/<sha>.json    the dataset (not group 0002) in the DICOM JSON model
 *                            (PS3.18 F.2), one object, UTF-8; Pixel Data, Float and
 *                            Double Float Pixel Data and every OB OD OF OL OV OW UN
 *                            value longer than STO_META_BULK_MIN bytes (at any depth)
 *                            are "BulkDataURI":
 *                            /dicomweb/studies/{st}/series/{se}/instances/{sop}/bulk/{off}-{len}
 *                            where off/len (decimal) are the value's byte range in the
 *                            object file, exactly as stored (for encapsulated Pixel Data:
 *                            the items from the Basic Offset Table item up to, not
 *                            including, the Sequence Delimitation Item)
 *   meta/aa/bb/<sha>.frames  the frame table (binary, CRC-checked): where each frame's
 *                            bytes lie in the object file
 * Formats and choices: docs/index-schema.md, "Sidecar files". Sidecars are derived data:
 * written to a temp name in their directory then renamed, never fsynced, rebuilt when
 * missing or invalid. They are built after ingest, by reindex, or lazily by the readers
 * below. Deflated objects are not supported (their bytes are not range-readable): HR_EUNSUP.
 *
 * Every function blocks (file I/O): call it on the libuv thread pool or from the CLI.
 * All are thread-safe; concurrent builds of one object rename identical content.
 * sha is the object name (64 lowercase hex digits); anything else is HR_EPARSE. */
#ifndef STO_META_H
#define STO_META_H

#include "objstore.h"

#include <stddef.h>
#include <stdint.h>

/* Limits; beyond them a build fails with HR_ETOOBIG. STO_META_MAX_ELEMENTS counts the
 * top-level elements plus the items of top-level sequences, and separately the bulk
 * values. */
#define STO_META_BULK_MIN      1024         /* binary values longer than this are bulk data */
#define STO_META_MAX_HEADER    (64u << 20)  /* non-bulk bytes of one dataset */
#define STO_META_MAX_FRAGMENTS (1u << 21)   /* fragments (and frames) of one Pixel Data */
#define STO_META_MAX_ELEMENTS  (1u << 20)   /* see above */
#define STO_META_MAX_JSON      (256u << 20) /* JSON text; a larger .json sidecar is invalid */
#define STO_META_MAX_FMI       (64u << 10)  /* File Meta Information bytes */

/* ---- building --------------------------------------------------------------------- */

/* Reads objects/aa/bb/<sha> (the File Meta Information, the dataset element headers and
 * the non-bulk values; bulk values are skipped by seeking, so memory is bounded by
 * STO_META_MAX_HEADER whatever the object size) and writes both sidecars. UIDs come from
 * the dataset itself. Returns 0; -ENOENT (no such object); HR_EPARSE / HR_ETRUNC (not a
 * Part 10 file, malformed dataset); HR_EMISSING (Study, Series or SOP Instance UID
 * missing or invalid); HR_EUNSUP (deflated or unknown transfer syntax); HR_ETOOBIG (a
 * limit above, or dataset.h's element/depth limits); -errno; -ENOMEM. */
int sto_meta_build(const sto_objstore *s, const char *sha);

/* sto_meta_build() when either sidecar is missing (existence only: readers validate).
 * *built (may be NULL) tells whether it built. 0 or sto_meta_build()'s errors. */
int sto_meta_ensure(const sto_objstore *s, const char *sha, int *built);

/* The work of sto_meta_build() without files: reads the object open on fd (any Part 10
 * file) and returns both sidecars' contents in new buffers the caller free()s: *json
 * (NUL-terminated, *json_len bytes without the NUL) and *frames (*frames_len bytes).
 * sha names the object (it seeds the internal bulk markers). Same errors. */
int sto_meta_derive(int fd, const char *sha, char **json, size_t *json_len, uint8_t **frames,
                    size_t *frames_len);

/* ---- reading ---------------------------------------------------------------------- */

/* The metadata JSON of the object into a new NUL-terminated buffer *json (caller
 * free()s) of *len bytes (without the NUL). The sidecar is checked (parses as one JSON
 * object, at most STO_META_MAX_JSON bytes); when missing or invalid it is rebuilt once.
 * Strings may hold "\u0000" (NULs inside DICOM values are kept): jansson readers need
 * JSON_ALLOW_NUL. 0 or sto_meta_build()'s errors. */
int sto_meta_read_json(const sto_objstore *s, const char *sha, char **json, size_t *len);

/* The same check (and rebuild) as sto_meta_read_json(), for a caller that streams the
 * sidecar itself: path (STO_PATH_MAX bytes) gets the .json sidecar's path and *size its
 * bytes; only one sidecar is in memory at a time, and only during the call. The file is
 * replaced only by a rebuild of identical content (never truncated in place). 0 or
 * sto_meta_build()'s errors. */
int sto_meta_json_file(const sto_objstore *s, const char *sha, char *path, uint64_t *size);

/* Where the dataset starts in the object file (the first byte after the File Meta
 * Information: send the file from here for a bare dataset) and its transfer syntax UID
 * (ts, cap 65). Reads the object's header only, no sidecar. 0, -ENOENT, HR_EPARSE,
 * HR_ETRUNC, HR_ETOOBIG (meta above STO_META_MAX_FMI), -errno. */
int sto_meta_dataset_offset(const sto_objstore *s, const char *sha, uint64_t *offset, char *ts);

enum sto_pixel_kind {
    STO_PIXEL_NONE = 0,         /* no top-level Pixel Data: no frames */
    STO_PIXEL_NATIVE = 1,       /* uncompressed: frames are consecutive in the value */
    STO_PIXEL_ENCAPSULATED = 2, /* compressed: frames are made of fragments */
    STO_PIXEL_UNKNOWN = 3,      /* present, but frames cannot be located (attributes
                                   missing or inconsistent, fragments not attributable) */
};

/* Summary of a frame table. */
typedef struct sto_pixel_info {
    enum sto_pixel_kind kind;
    char ts[65];             /* transfer syntax UID of the dataset */
    uint64_t object_size;    /* bytes of the object file the table describes */
    uint64_t dataset_offset; /* first byte after the File Meta Information */
    uint64_t value_offset;   /* Pixel Data value in the file (as in its BulkDataURI) */
    uint64_t value_length;
    uint32_t n_frames; /* frames reachable with sto_frames_get() (0 for NONE) */
} sto_pixel_info;

/* One byte range of the object file. */
typedef struct sto_range {
    uint64_t offset;
    uint64_t length;
} sto_range;

/* Where frame n lies: the frame's bytes are the concatenation of ranges[0..n_ranges).
 * Native: one range; for BitsAllocated 1 frames are packed bits that need not start on
 * a byte boundary: the frame is `bits` bits starting at bit `bit_offset` (0..7, least
 * significant bit first, PS3.5 8.1.1) of the first byte; otherwise bit_offset is 0 and
 * bits is 8 * length. Encapsulated: the frame's fragment values (compressed bitstream,
 * item headers excluded), bits = 8 * total length, bit_offset 0. */
typedef struct sto_frame {
    char ts[65];      /* transfer syntax UID: the encoding of these bytes */
    int encapsulated; /* 1 for a compressed (encapsulated) transfer syntax */
    uint32_t n_frames;
    unsigned bit_offset;
    uint64_t bits;
    size_t n_ranges;
    sto_range *ranges; /* malloc'd; free with sto_frame_free() */
} sto_frame;

/* A loaded, validated frame table (opaque). Cache it per object if frames are read often. */
typedef struct sto_frames sto_frames;

/* Loads the object's frame table; when the sidecar is missing or invalid (bad magic,
 * version, CRC, sizes, ranges outside the object file or a different object size) it is
 * rebuilt once. *out is freed with sto_frames_free(). 0 or sto_meta_build()'s errors. */
int sto_frames_load(const sto_objstore *s, const char *sha, sto_frames **out);

/* Parses and validates a .frames sidecar image (p, n bytes, untrusted) for an object file
 * of object_size bytes. *out as for sto_frames_load(). 0, HR_EPARSE (any inconsistency:
 * no range outside [0, object_size) is ever returned), -ENOMEM. */
int sto_frames_parse(const uint8_t *p, size_t n, uint64_t object_size, sto_frames **out);

/* Summary; valid while t lives. */
const sto_pixel_info *sto_frames_info(const sto_frames *t);

/* Frame n (1-based, as in /frames/{n}) into *out (sto_frame_free() it). 0; HR_ENOTFOUND
 * (n == 0, n > n_frames, or no Pixel Data); HR_EUNSUP (STO_PIXEL_UNKNOWN); -ENOMEM. */
int sto_frames_get(const sto_frames *t, uint32_t n, sto_frame *out);

void sto_frames_free(sto_frames *t);

/* sto_frames_load() + sto_frames_get() + sto_frames_free(). */
int sto_meta_frame(const sto_objstore *s, const char *sha, uint32_t n, sto_frame *out);

/* Frees out->ranges and zeroes *out. NULL-safe. */
void sto_frame_free(sto_frame *f);

#endif
