/* DICOM Specific Character Set -> UTF-8 through iconv, with detection of the
 * common township case: GB18030/GBK (or UTF-8) bytes under a declaration of
 * ISO_IR 100 / ISO_IR 6 / nothing. */
#ifndef DCM_CHARSET_H
#define DCM_CHARSET_H

#include <stddef.h>

/* Converts in[0..n) declared as specific_charset (the raw (0008,0005) value,
 * possibly multi-valued with backslashes, may be "" or NULL) to UTF-8 in
 * out[0..cap), always NUL-terminated, truncated at a character boundary.
 * If used is not NULL, writes the charset actually used (cap used_cap);
 * *guessed is set to 1 when that differs from the declaration.
 * Returns 0, or HR_ECHARSET when no conversion succeeded (out then holds the
 * printable ASCII subset). */
int dcm_charset_to_utf8(const char *specific_charset, const char *in, size_t n, char *out,
                        size_t cap, char *used, size_t used_cap, int *guessed);

#endif
