/* The only bridge to DCMTK (C++), used by tests and tools to cross-check the
 * streaming scanner. No C++ type or exception crosses this header. */
#ifndef DCM_DCMTK_SHIM_H
#define DCM_DCMTK_SHIM_H

#include "dcm_attrs.h"

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

#ifdef __cplusplus
}
#endif

#endif
