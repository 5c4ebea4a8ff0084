#include "multipart.h"

#include "../common/hr_err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PAD_MAX 256 /* transport padding after a boundary */

enum {
    ST_PREAMBLE, /* looking for the first delimiter */
    ST_BTAIL,    /* after "--boundary": "--", padding or CRLF */
    ST_CLOSE1,   /* after "--boundary-" */
    ST_BLF,      /* after "--boundary" padding CR */
    ST_HEADERS,  /* a part's header block */
    ST_DATA,     /* a part's data */
    ST_PART_END, /* delimiter read: on_part_end is due */
    ST_DONE,
    ST_ERROR,
};

/* ---- header values ------------------------------------------------------ */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void skip_ows(const char *v, size_t len, size_t *i)
{
    while (*i < len && (v[*i] == ' ' || v[*i] == '\t'))
        (*i)++;
}

static size_t token(const char *v, size_t len, size_t i)
{
    size_t s = i;
    while (i < len && is_tchar((unsigned char)v[i]))
        i++;
    return i - s;
}

/* "type/subtype" at v[*i..]: its extent. 0 or HR_EPARSE. */
static int media_extent(const char *v, size_t len, size_t *i, size_t *start, size_t *n)
{
    skip_ows(v, len, i);
    *start = *i;
    size_t t = token(v, len, *i);
    if (t == 0 || *i + t >= len || v[*i + t] != '/')
        return HR_EPARSE;
    size_t s = token(v, len, *i + t + 1);
    if (s == 0)
        return HR_EPARSE;
    *n = t + 1 + s;
    *i += *n;
    return 0;
}

static int copy_lower(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return HR_ETOOBIG;
    for (size_t k = 0; k < n; k++)
        out[k] = (char)((s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k]);
    out[n] = '\0';
    return 0;
}

int va_mp_media_type(const char *value, size_t len, char *out, size_t cap)
{
    size_t i = 0, start, n;
    int rc = media_extent(value, len, &i, &start, &n);
    if (rc)
        return rc;
    skip_ows(value, len, &i);
    if (i < len && value[i] != ';')
        return HR_EPARSE;
    return copy_lower(out, cap, value + start, n);
}

int va_mp_param(const char *value, size_t len, const char *name, char *out, size_t cap)
{
    size_t i = 0, start, n;
    int found = 0, rc = media_extent(value, len, &i, &start, &n);
    if (rc)
        return rc;
    for (;;) {
        skip_ows(value, len, &i);
        if (i == len)
            return found;
        if (value[i] != ';')
            return HR_EPARSE;
        i++;
        skip_ows(value, len, &i);
        if (i == len || value[i] == ';')
            continue; /* empty parameter: tolerated */
        size_t ns = i, nl = token(value, len, i);
        i += nl;
        skip_ows(value, len, &i);
        if (nl == 0 || i == len || value[i] != '=')
            return HR_EPARSE;
        i++;
        skip_ows(value, len, &i);
        int want = strlen(name) == nl && strncasecmp(value + ns, name, nl) == 0;
        if (want && found)
            return HR_EPARSE;
        size_t o = 0;
        if (i < len && value[i] == '"') {
            /* quoted-string: qdtext and quoted-pairs */
            for (i++;; i++) {
                if (i == len)
                    return HR_EPARSE;
                unsigned char c = (unsigned char)value[i];
                if (c == '"')
                    break;
                if (c == '\\') {
                    if (++i == len)
                        return HR_EPARSE;
                    c = (unsigned char)value[i];
                }
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                    return HR_EPARSE;
                if (want) {
                    if (o + 1 >= cap)
                        return HR_ETOOBIG;
                    out[o++] = (char)c;
                }
            }
            i++;
        } else {
            /* a token; boundaries with tspecials ('=', ':', ...) are common
             * unquoted, so anything visible but ';' and '"' is taken */
            size_t vs = i;
            while (i < len && value[i] > 0x20 && value[i] < 0x7f && value[i] != ';' &&
                   value[i] != '"')
                i++;
            if (i == vs)
                return HR_EPARSE;
            if (want) {
                if (i - vs >= cap)
                    return HR_ETOOBIG;
                memcpy(out, value + vs, i - vs);
                o = i - vs;
            }
        }
        if (want) {
            out[o] = '\0';
            found = 1;
        }
    }
}

/* RFC 2046 boundary: 1..70 characters, no controls, not ending in a space. */
static int boundary_ok(const char *b)
{
    size_t n = strlen(b);
    if (n == 0 || n > VA_MP_BOUNDARY_MAX || b[n - 1] == ' ')
        return 0;
    for (size_t k = 0; k < n; k++)
        if (b[k] < 0x20 || b[k] > 0x7e)
            return 0;
    return 1;
}

int va_mp_content_type_parse(const char *value, size_t len, va_mp_content_type *out)
{
    char b[VA_MP_BOUNDARY_MAX + 2];
    memset(out, 0, sizeof(*out));
    int rc = va_mp_media_type(value, len, out->media, sizeof(out->media));
    if (rc)
        return rc;
    if (strncmp(out->media, "multipart/", 10) != 0)
        return HR_EUNSUP;
    rc = va_mp_param(value, len, "boundary", b, sizeof(b));
    if (rc == 0 || rc == HR_ETOOBIG || (rc == 1 && !boundary_ok(b)))
        return HR_EPARSE;
    if (rc < 0)
        return rc;
    memcpy(out->boundary, b, strlen(b) + 1);
    rc = va_mp_param(value, len, "type", out->type, sizeof(out->type));
    if (rc < 0)
        return rc;
    return copy_lower(out->type, sizeof(out->type), out->type, strlen(out->type));
}

/* ---- part headers ------------------------------------------------------- */

const char *va_mp_header(const va_mp_part *part, const char *name)
{
    const char *s = part->headers_, *end = s + part->headers_len_;
    while (s < end) {
        const char *v = s + strlen(s) + 1;
        if (strcasecmp(s, name) == 0)
            return v;
        s = v + strlen(v) + 1;
    }
    return NULL;
}

static int fail(va_mp_parser *p, int rc, const char *why)
{
    p->why = why;
    return rc;
}

/* The header block hdr[0..len) (lines ending in CRLF, the last one empty):
 * unfolded and rewritten in place as "name\0value\0" pairs. */
static int parse_headers(va_mp_parser *p)
{
    char *s = (char *)p->hdr.data;
    size_t n = p->hdr.len, r = 0, w = 0;
    if (s[0] == ' ' || s[0] == '\t')
        return fail(p, HR_EPARSE, "part headers start with a continuation line");
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '\r') {
            if (k + 1 == n || s[k + 1] != '\n')
                return fail(p, HR_EPARSE, "CR without LF in part headers");
            if (k + 2 < n && (s[k + 2] == ' ' || s[k + 2] == '\t'))
                s[k] = s[k + 1] = ' '; /* obsolete line folding */
            k++;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return fail(p, HR_EPARSE, "control character in part headers");
        }
    }
    while (r < n - 2) {
        size_t le = (size_t)((char *)memchr(s + r, '\r', n - r) - s);
        size_t nl = token(s, le, r);
        if (nl == 0 || r + nl == le || s[r + nl] != ':')
            return fail(p, HR_EPARSE, "part header line is not \"name: value\"");
        size_t vs = r + nl + 1, ve = le;
        skip_ows(s, le, &vs);
        while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
            ve--;
        memmove(s + w, s + r, nl);
        w += nl;
        s[w++] = '\0';
        memmove(s + w, s + vs, ve - vs);
        w += ve - vs;
        s[w++] = '\0';
        r = le + 2;
    }
    va_mp_part *pt = &p->part;
    memset(pt, 0, sizeof(*pt));
    pt->headers_ = s;
    pt->headers_len_ = w;
    pt->index = p->parts;
    pt->content_length = -1;
    static const char *const names[] = {"content-type", "content-length", "content-location",
                                        "content-id"};
    const char *val[4] = {NULL, NULL, NULL, NULL};
    for (const char *h = s; h < s + w;) {
        const char *v = h + strlen(h) + 1;
        for (int k = 0; k < 4; k++) {
            if (strcasecmp(h, names[k]) != 0)
                continue;
            if (val[k])
                return fail(p, HR_EPARSE, "part header repeated");
            val[k] = v;
        }
        h = v + strlen(v) + 1;
    }
    pt->content_type = val[0] ? val[0] : "";
    pt->content_location = val[2] ? val[2] : "";
    pt->content_id = val[3] ? val[3] : "";
    if (val[1]) {
        size_t d = strlen(val[1]);
        if (d == 0 || d > 18 || strspn(val[1], "0123456789") != d)
            return fail(p, HR_EPARSE, "part Content-Length is not a number");
        pt->content_length = 0;
        for (size_t k = 0; k < d; k++)
            pt->content_length = pt->content_length * 10 + (val[1][k] - '0');
    }
    return 0;
}

/* ---- body --------------------------------------------------------------- */

int va_mp_init(va_mp_parser *p, const char *boundary, const va_mp_limits *lim,
               const va_mp_callbacks *cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->why = "";
    if (!boundary_ok(boundary))
        return HR_EPARSE;
    p->dlen = (size_t)snprintf(p->delim, sizeof(p->delim), "\r\n--%s", boundary);
    /* the first delimiter may start the body: its CRLF counts as seen */
    p->match = p->phantom = 2;
    p->state = ST_PREAMBLE;
    if (lim)
        p->lim = *lim;
    if (!p->lim.max_header_bytes)
        p->lim.max_header_bytes = VA_MP_HEADER_MAX_DEFAULT;
    if (!p->lim.max_parts)
        p->lim.max_parts = VA_MP_PARTS_MAX_DEFAULT;
    hr_buf_init(&p->hdr, p->lim.max_header_bytes);
    if (cb)
        p->cb = *cb;
    p->arg = arg;
    return 0;
}

void va_mp_free(va_mp_parser *p)
{
    hr_buf_free(&p->hdr);
}

static int deliver(va_mp_parser *p, const uint8_t *d, size_t n)
{
    if (n == 0)
        return 0;
    p->part.length += n;
    if (p->cb.on_part_data && p->cb.on_part_data(p->arg, &p->part, d, n))
        return VA_MP_PAUSED;
    return 0;
}

/* Looks for the delimiter in buf[*pos..len). In ST_DATA the bytes that are
 * not part of it are delivered: from buf, except held-back bytes of an
 * earlier chunk (ext of them), which come from the copy in delim. */
static int scan(va_mp_parser *p, const uint8_t *buf, size_t len, size_t *pos)
{
    const int data = p->state == ST_DATA;
    size_t i = *pos, start = i, ext = p->match;
    int rc;
    while (i < len) {
        if (p->match == 0) {
            const uint8_t *cr = memchr(buf + i, '\r', len - i);
            if (!cr) {
                i = len;
                break;
            }
            i = (size_t)(cr - buf) + 1;
            p->match = 1;
            continue;
        }
        if (buf[i] == (uint8_t)p->delim[p->match]) {
            i++;
            if (++p->match < p->dlen)
                continue;
            size_t end = ext ? start : i - p->dlen;
            p->match = p->phantom = 0;
            p->pad = 0;
            *pos = i;
            if (!data) {
                p->state = ST_BTAIL;
                return 0;
            }
            p->state = ST_PART_END;
            return deliver(p, buf + start, end - start);
        }
        /* mismatch at buf[i]: what was held is data; buf[i] is looked at again */
        if (ext) {
            size_t from = p->phantom, held = ext;
            p->match = p->phantom = 0;
            ext = 0;
            if (data && (rc = deliver(p, (const uint8_t *)p->delim + from, held - from)) != 0) {
                *pos = start; /* buf[start..i) is rescanned: it holds no CR */
                return rc;
            }
            continue;
        }
        p->match = 0;
    }
    *pos = len;
    return data && !ext ? deliver(p, buf + start, len - p->match - start) : 0;
}

static int headers(va_mp_parser *p, const uint8_t *buf, size_t len, size_t *pos)
{
    size_t i = *pos;
    const uint8_t *nl = memchr(buf + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - buf) + 1 - i : len - i;
    if (p->hdr.len + n > p->lim.max_header_bytes)
        return fail(p, HR_ETOOBIG, "part header block too long");
    if (hr_buf_append(&p->hdr, buf + i, n))
        return fail(p, -ENOMEM, "out of memory");
    *pos = i + n;
    if (!nl)
        return 0;
    size_t ls = p->line, le = p->hdr.len;
    if (le - ls < 2 || p->hdr.data[le - 2] != '\r')
        return fail(p, HR_EPARSE, "bare LF in part headers (CRLF required)");
    p->line = le;
    if (le - ls > 2)
        return 0;
    int rc = parse_headers(p);
    if (rc)
        return rc;
    p->parts++;
    /* the blank line's CRLF may also be the delimiter's (a part without data) */
    p->state = ST_DATA;
    p->match = p->phantom = 2;
    if (p->cb.on_part_begin && p->cb.on_part_begin(p->arg, &p->part))
        return VA_MP_PAUSED;
    return 0;
}

static int boundary_tail(va_mp_parser *p, uint8_t c)
{
    switch (p->state) {
    case ST_BTAIL:
        if (c == '-' && p->pad == 0) {
            p->state = ST_CLOSE1;
            return 0;
        }
        if (c == ' ' || c == '\t')
            return ++p->pad > PAD_MAX ? fail(p, HR_EPARSE, "too much padding after a boundary") : 0;
        if (c == '\r') {
            p->state = ST_BLF;
            return 0;
        }
        if (c == '\n')
            return fail(p, HR_EPARSE, "bare LF after a boundary (CRLF required)");
        return fail(p, HR_EPARSE, "boundary delimiter followed by other text");
    case ST_CLOSE1:
        if (c != '-')
            return fail(p, HR_EPARSE, "boundary delimiter followed by other text");
        p->state = ST_DONE;
        if (p->cb.on_end)
            p->cb.on_end(p->arg, p->parts);
        return VA_MP_DONE;
    default: /* ST_BLF */
        if (c != '\n')
            return fail(p, HR_EPARSE, "CR without LF after a boundary");
        if (p->parts >= p->lim.max_parts)
            return fail(p, HR_ETOOBIG, "too many parts");
        hr_buf_reset(&p->hdr);
        p->line = 0;
        p->state = ST_HEADERS;
        return 0;
    }
}

int va_mp_feed(va_mp_parser *p, const uint8_t *buf, size_t len, size_t *consumed)
{
    size_t i = 0;
    int rc = 0;
    *consumed = 0;
    if (p->state == ST_ERROR)
        return p->err;
    if (p->state == ST_DONE) {
        *consumed = len;
        return VA_MP_DONE;
    }
    while (rc == 0) {
        if (p->state == ST_PART_END) {
            p->state = ST_BTAIL;
            if (p->cb.on_part_end && p->cb.on_part_end(p->arg, &p->part))
                rc = VA_MP_PAUSED;
            continue;
        }
        if (i == len)
            break;
        if (p->state == ST_PREAMBLE || p->state == ST_DATA)
            rc = scan(p, buf, len, &i);
        else if (p->state == ST_HEADERS)
            rc = headers(p, buf, len, &i);
        else
            rc = boundary_tail(p, buf[i++]);
    }
    *consumed = i;
    if (rc < 0) {
        p->state = ST_ERROR;
        p->err = rc;
    }
    return rc;
}

int va_mp_finish(va_mp_parser *p)
{
    switch (p->state) {
    case ST_DONE:
        return 0;
    case ST_ERROR:
        return p->err;
    case ST_PREAMBLE:
        p->err = fail(p, HR_EPARSE, "no boundary delimiter in the body");
        break;
    default:
        p->err = fail(p, HR_ETRUNC, "body ends before the close delimiter");
        break;
    }
    p->state = ST_ERROR;
    return p->err;
}

const char *va_mp_error(const va_mp_parser *p)
{
    return p->why;
}
