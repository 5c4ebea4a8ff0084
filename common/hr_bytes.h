/* Byte-order helpers and hexadecimal text: the one copy every module uses.
 * The integer readers and writers take an explicit byte order (big != 0 for
 * big endian) so that one function serves DICOM's three encodings, the
 * big-endian upper layer (PDUs) and little-endian file formats alike. Pure,
 * header-only, no allocation. */
#ifndef HR_BYTES_H
#define HR_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Reads a 16-bit unsigned integer at p in the given byte order. */
static inline uint16_t hr_rd16(const uint8_t *p, int big)
{
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

/* Reads a 32-bit unsigned integer at p in the given byte order. */
static inline uint32_t hr_rd32(const uint8_t *p, int big)
{
    if (big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Reads a 64-bit little-endian unsigned integer at p. */
static inline uint64_t hr_rd64le(const uint8_t *p)
{
    return (uint64_t)hr_rd32(p + 4, 0) << 32 | hr_rd32(p, 0);
}

/* Reads an n-byte (n <= 8) little-endian unsigned integer at p. */
static inline uint64_t hr_rd_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Writes v at p in the given byte order (2, 4 and 8 bytes). */
static inline void hr_wr16(uint8_t *p, uint16_t v, int big)
{
    p[big ? 0 : 1] = (uint8_t)(v >> 8);
    p[big ? 1 : 0] = (uint8_t)v;
}

static inline void hr_wr32(uint8_t *p, uint32_t v, int big)
{
    for (int i = 0; i < 4; i++)
        p[big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

static inline void hr_wr64le(uint8_t *p, uint64_t v)
{
    hr_wr32(p, (uint32_t)v, 0);
    hr_wr32(p + 4, (uint32_t)(v >> 32), 0);
}

/* ---- hexadecimal ------------------------------------------------------------ */

/* The value of one hex digit (either case), or -1. */
static inline int hr_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 when c is a lowercase hex digit (the spelling of every name huren writes:
 * object names, stored hashes, cursors), else 0. */
static inline int hr_is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Writes the 2n lowercase hex digits of p[0..n) and a NUL into out
 * (2n + 1 bytes, caller-owned). */
static inline void hr_hex_encode(const void *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Decodes the first 2n characters of s, which must all be lowercase hex
 * digits, into out[0..n). 0, or -1 at the first other character (out is then
 * partly written). The caller checks the length of s. */
static inline int hr_hex_decode(const char *s, size_t n, void *out)
{
    uint8_t *b = out;
    for (size_t i = 0; i < n; i++) {
        if (!hr_is_hex_lower(s[2 * i]) || !hr_is_hex_lower(s[2 * i + 1]))
            return -1;
        b[i] = (uint8_t)(hr_hex_value(s[2 * i]) << 4 | hr_hex_value(s[2 * i + 1]));
    }
    return 0;
}

#endif
