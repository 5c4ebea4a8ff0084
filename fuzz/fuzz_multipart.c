/* libFuzzer target for viewer-api/multipart.c. Input: one byte choosing the
 * chunking and pauses, the request's Content-Type value up to the first '\n',
 * then the body. The body is parsed in one piece and again in chunks with
 * callbacks pausing; both runs must report the same events, data and result,
 * and every data pointer must lie inside the fed chunk or the parser. */
#include "viewer-api/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    uint8_t *log; /* transcript of events and data */
    size_t len, cap;
    const uint8_t *lo, *hi;
    const va_mp_parser *p;
    unsigned pause_bits, calls;
} run;

static void put(run *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2 + 256;
        uint8_t *nl = realloc(r->log, cap);
        if (!nl)
            abort();
        r->log = nl;
        r->cap = cap;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
}

static void puts_(run *r, const char *s)
{
    put(r, s, strlen(s) + 1);
}

static int pause_now(run *r)
{
    return r->pause_bits ? (r->pause_bits >> (r->calls++ % 8)) & 1 : 0;
}

static int on_begin(void *arg, const va_mp_part *p)
{
    run *r = arg;
    put(r, "B", 1);
    put(r, &p->index, sizeof(p->index));
    put(r, &p->content_length, sizeof(p->content_length));
    puts_(r, p->content_type);
    puts_(r, p->content_location);
    puts_(r, p->content_id);
    const char *h = va_mp_header(p, "content-type");
    if (p->length != 0 || strcmp(h ? h : "", p->content_type) != 0)
        abort();
    return pause_now(r);
}

static int on_data(void *arg, const va_mp_part *p, const uint8_t *d, size_t n)
{
    run *r = arg;
    const uint8_t *own = (const uint8_t *)r->p->delim;
    int in_chunk = d >= r->lo && d + n <= r->hi;
    int in_parser = d >= own && d + n <= own + sizeof(r->p->delim);
    if (n == 0 || (!in_chunk && !in_parser))
        abort();
    put(r, d, n);
    return pause_now(r);
}

static int on_end(void *arg, const va_mp_part *p)
{
    run *r = arg;
    put(r, "E", 1);
    put(r, &p->length, sizeof(p->length));
    return pause_now(r);
}

static void on_done(void *arg, unsigned parts)
{
    run *r = arg;
    put(r, "D", 1);
    put(r, &parts, sizeof(parts));
}

static const va_mp_callbacks CB = {on_begin, on_data, on_end, on_done};

static int parse(run *r, const char *boundary, const uint8_t *body, size_t len, size_t chunk)
{
    va_mp_parser p;
    va_mp_limits lim = {.max_header_bytes = 512, .max_parts = 64};
    int rc;
    if (va_mp_init(&p, boundary, &lim, &CB, r) != 0)
        abort();
    r->p = &p;
    for (size_t off = 0; off < len;) {
        size_t n = len - off < chunk ? len - off : chunk, pos = 0, used;
        /* a private copy so ASan catches reads beyond the chunk */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, body + off, n);
        do {
            r->lo = c + pos;
            r->hi = c + n;
            rc = va_mp_feed(&p, c + pos, n - pos, &used);
            if (used > n - pos)
                abort();
            pos += used;
        } while (rc == VA_MP_PAUSED);
        free(c);
        if (rc < 0)
            goto out;
        off += n;
    }
    rc = va_mp_finish(&p);
out:
    va_mp_free(&p);
    put(r, "R", 1);
    put(r, &rc, sizeof(rc));
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    va_mp_content_type ct;
    const char *boundary = "b";
    if (size < 1 || size > 1 << 16)
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : 0;
    if (nl && va_mp_content_type_parse((const char *)data, hl, &ct) == 0)
        boundary = ct.boundary;
    const uint8_t *body = nl ? nl + 1 : data;
    size_t len = nl ? size - hl - 1 : size;

    run whole = {0}, parts = {0};
    int a = parse(&whole, boundary, body, len, len ? len : 1);
    parts.pause_bits = mode >> 4 ? mode : 0;
    int b = parse(&parts, boundary, body, len, (size_t)(mode & 15) + 1);
    if (a != b || whole.len != parts.len || memcmp(whole.log, parts.log, whole.len) != 0)
        abort();
    free(whole.log);
    free(parts.log);
    return 0;
}
