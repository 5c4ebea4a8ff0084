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
 * printable ASCII subset).
 *
 * Detection rule (only for a declaration of "", "ISO_IR 6" or "ISO_IR 100"
 * and input with bytes >= 0x80 and no ESC): valid UTF-8 -> "ISO_IR 192";
 * else GB18030 when every high byte belongs to a 2-byte (81-FE, 40-7E|80-FE)
 * or 4-byte (81-FE, 30-39, 81-FE, 30-39) character, 2-byte characters with a
 * trail byte >= 0x80 outnumber those with an ASCII trail byte, and all decoded
 * non-ASCII characters are CJK ideographs/punctuation/fullwidth forms (so
 * Latin-1 "Buc^J\xe9r\xf4me" stays Latin-1) -> "GB18030"; else "ISO_IR 100".
 * *guessed = 1 when the result differs from the declaration ("" and
 * "ISO_IR 6" count as the same). Multi-valued or ISO 2022 declarations are
 * converted per escape sequence (IR 13/87/159/149/58 and the ISO 8859 parts).
 * GB18030 is decoded by glibc (GB18030-2022 tables) except the few four-byte
 * codes of GB18030-2005 encoders it rejects or maps to the Private Use Area
 * (U+9FB4..U+9FBB, U+FE10..U+FE19, U+1E3F), which give those characters. */
int dcm_charset_to_utf8(const char *specific_charset, const char *in, size_t n, char *out,
                        size_t cap, char *used, size_t used_cap, int *guessed);

#endif
