/* The only bridge to DCMTK (C++): cross-checks of the streaming scanner
 * (tests, tools) and decompression for retrievals to peers that accept only
 * uncompressed transfer syntaxes. No C++ type or exception crosses this
 * header. */
#ifndef DCM_DCMTK_SHIM_H
#define DCM_DCMTK_SHIM_H

#include "dcm_attrs.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads path with DCMTK (values longer than 4 KB, i.e. pixel data, are not
 * read into memory), converts the dataset to UTF-8 with DCMTK's
 * convertToUTF8() when it can, and fills *out (zeroed first) with the same
 * fields the scanner extracts; dataset_offset/pixel_offset stay 0 and
 * specific_charset holds the declaration as read. Returns 0, HR_EPARSE when DCMTK
 * cannot read the file, or HR_ECHARSET when only the UTF-8 conversion failed
 * (fields then hold the raw bytes). Caller owns out. */
int dcm_shim_read_attrs(const char *path, dcm_attrs *out);

/* Writes src (a Part 10 file, any transfer syntax DCMTK can decode: the
 * uncompressed ones, deflated, JPEG baseline/extended/lossless, JPEG-LS, RLE;
 * not JPEG 2000) to dst as a Part 10 file in ts_uid, which must be Explicit
 * VR Little Endian or Implicit VR Little Endian, with File Meta Information
 * (group length included) updated. Blocking and memory-hungry (the pixel data
 * is decoded in memory): run on the thread pool. dst is created or
 * overwritten; on error it may be left partly written (the caller removes
 * it). Returns 0, HR_EPARSE (src unreadable), HR_EUNSUP (no codec for src's
 * transfer syntax, or ts_uid not one of the two), -EIO (cannot write dst). */
int dcm_shim_decompress(const char *src, const char *dst, const char *ts_uid);

/* DCMTK's own list of Storage SOP class UIDs (dcmAllStorageSOPClassUIDs), to
 * cross-check dicom/uids.c in tests. *n receives the count; the array and its
 * strings are DCMTK's static storage. */
const char *const *dcm_shim_storage_sop_classes(size_t *n);

#ifdef __cplusplus
}
#endif

#endif
