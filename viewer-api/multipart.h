/* Streaming parser of multipart bodies (RFC 2046 section 5.1), as STOW-RS
 * requests send them (multipart/related, PS3.18 section 10.5). Pure: bytes in,
 * callbacks out; no I/O, no allocation but the bounded header buffer.
 *
 * Body: [preamble CRLF] "--" boundary padding CRLF part
 *       *(CRLF "--" boundary padding CRLF part) CRLF "--" boundary "--" [epilogue]
 * part: header fields (each ending in CRLF), then CRLF and the data; the
 * CRLF before a delimiter belongs to the delimiter, so "--b CRLF CRLF --b"
 * is one part with no headers and no data. The preamble and epilogue are
 * ignored; padding is spaces and tabs (up to 256).
 *
 * Line ends are CRLF only (RFC 2046, PS3.18). A bare LF after a boundary or
 * in a header block is HR_EPARSE; an LF-only delimiter inside data is data (the
 * body then ends truncated). Tolerating LF there would make part data that
 * ends in CR ambiguous, and STOW-RS clients send CRLF.
 *
 * A delimiter can straddle chunks: the parser holds back only the bytes that
 * match the start of "CRLF--boundary" at the end of a chunk (at most 73) and
 * delivers them later as data (from its own copy) if the match fails. All
 * other data is delivered as pointers into the fed buffer (no copy). */
#ifndef VA_MULTIPART_H
#define VA_MULTIPART_H

#include "../common/hr_buf.h"

#include <stddef.h>
#include <stdint.h>

#define VA_MP_BOUNDARY_MAX       70 /* RFC 2046 */
#define VA_MP_TYPE_MAX           127
#define VA_MP_HEADER_MAX_DEFAULT (16 * 1024)
#define VA_MP_PARTS_MAX_DEFAULT  10000

/* ---- header values ------------------------------------------------------ */

/* Media type of a Content-Type value (value[0..len), NUL not needed): "type/
 * subtype" lowercased into out (cap bytes with the NUL). 0, HR_EPARSE or
 * HR_ETOOBIG. */
int va_mp_media_type(const char *value, size_t len, char *out, size_t cap);

/* Parameter name (case-insensitive) of a Content-Type value: token or
 * quoted-string (quoted-pairs unescaped) into out (cap bytes with the NUL).
 * 1 found, 0 absent, HR_EPARSE (malformed value, or the parameter twice),
 * HR_ETOOBIG (longer than cap - 1). */
int va_mp_param(const char *value, size_t len, const char *name, char *out, size_t cap);

typedef struct va_mp_content_type {
    char media[VA_MP_TYPE_MAX + 1];        /* "multipart/related", lowercased */
    char boundary[VA_MP_BOUNDARY_MAX + 1]; /* as given, unquoted */
    char type[VA_MP_TYPE_MAX + 1];         /* "type" parameter lowercased, "" when absent */
} va_mp_content_type;

/* Parses a request's Content-Type, e.g. multipart/related;
 * type="application/dicom"; boundary=xyz. 0; HR_EUNSUP when the media type is
 * not multipart/...; HR_EPARSE when malformed or the boundary is missing, empty,
 * longer than 70, ends in a space or has a byte outside 0x20..0x7e;
 * HR_ETOOBIG when the media type or the type parameter is too long. */
int va_mp_content_type_parse(const char *value, size_t len, va_mp_content_type *out);

/* ---- body parser -------------------------------------------------------- */

/* One part, as the callbacks see it. The strings point into the parser's
 * header buffer: valid from on_part_begin until on_part_end returns. */
typedef struct va_mp_part {
    unsigned index;               /* 0 for the first part */
    const char *content_type;     /* header values, trimmed; "" when absent */
    const char *content_location; /* (the type parameter of the request is the */
    const char *content_id;       /* default for a missing Content-Type) */
    long long content_length;     /* declared, -1 when absent; not enforced */
    unsigned long long length;    /* data bytes delivered so far, this chunk included */
    const char *headers_;         /* private: "name\0value\0" pairs */
    size_t headers_len_;
} va_mp_part;

/* Value of any header of part (name case-insensitive), or NULL. Same lifetime
 * as the part. */
const char *va_mp_header(const va_mp_part *part, const char *name);

/* Any callback may be NULL. A callback returning non-zero pauses the parser:
 * va_mp_feed returns VA_MP_PAUSED right after it (see there). Data pointers
 * are valid only during the call. Callbacks must not free the parser. */
typedef struct va_mp_callbacks {
    int (*on_part_begin)(void *arg, const va_mp_part *part);
    int (*on_part_data)(void *arg, const va_mp_part *part, const uint8_t *data, size_t len);
    int (*on_part_end)(void *arg, const va_mp_part *part);
    /* The close delimiter was read; parts = number of parts. */
    void (*on_end)(void *arg, unsigned parts);
} va_mp_callbacks;

typedef struct va_mp_limits {
    size_t max_header_bytes; /* header block of one part; 0 = VA_MP_HEADER_MAX_DEFAULT */
    unsigned max_parts;      /* 0 = VA_MP_PARTS_MAX_DEFAULT */
} va_mp_limits;

/* Fields are private. */
typedef struct va_mp_parser {
    int state;
    int err;
    const char *why;
    char delim[VA_MP_BOUNDARY_MAX + 5]; /* CRLF "--" boundary */
    size_t dlen;
    size_t match;   /* bytes of delim matched and held back */
    size_t phantom; /* of those, leading bytes that are not data if the match fails */
    unsigned pad;
    unsigned parts;
    va_mp_limits lim;
    hr_buf hdr;
    size_t line; /* start of the current header line in hdr */
    va_mp_part part;
    va_mp_callbacks cb;
    void *arg;
} va_mp_parser;

/* va_mp_feed results beyond errors. */
#define VA_MP_MORE   0 /* every byte consumed: feed the next chunk */
#define VA_MP_PAUSED 1 /* a callback asked to stop */
#define VA_MP_DONE   2 /* the close delimiter was read */

/* Prepares p for a body delimited by boundary (copied; as from
 * va_mp_content_type_parse). lim may be NULL (defaults); cb is copied. 0 or
 * HR_EPARSE (empty or longer than VA_MP_BOUNDARY_MAX, or with CR/LF). Nothing
 * is allocated until the first part's headers. */
int va_mp_init(va_mp_parser *p, const char *boundary, const va_mp_limits *lim,
               const va_mp_callbacks *cb, void *arg);
/* Frees the header buffer. */
void va_mp_free(va_mp_parser *p);

/* Feeds buf[0..len) (any split of the body, down to single bytes). *consumed
 * gets how many bytes were used; the rest belongs to the caller.
 *   VA_MP_MORE    all consumed (held-back delimiter bytes are kept inside).
 *   VA_MP_PAUSED  a callback returned non-zero; the event it received is
 *                 done. To resume (at any later time) call va_mp_feed with
 *                 buf + *consumed, len - *consumed — possibly 0 bytes, which
 *                 delivers an event still due (the end of a part whose last
 *                 data paused) — or, when nothing was left, the next chunk.
 *   VA_MP_DONE    close delimiter read (on_end called); *consumed stops after
 *                 it. Later calls consume everything (epilogue) and say DONE.
 *   HR_EPARSE     malformed (va_mp_error says what); HR_ETOOBIG: a header
 *                 block above max_header_bytes, or more than max_parts parts;
 *                 -ENOMEM. Errors are sticky. */
int va_mp_feed(va_mp_parser *p, const uint8_t *buf, size_t len, size_t *consumed);

/* Declares the end of the body. 0 when the close delimiter was read;
 * HR_EPARSE when no boundary delimiter was ever found; HR_ETRUNC when the body
 * ended before the close delimiter; or the sticky error. */
int va_mp_finish(va_mp_parser *p);

/* Static text for the last error ("" when none). */
const char *va_mp_error(const va_mp_parser *p);

#endif
