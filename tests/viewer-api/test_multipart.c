/* The multipart/related parser: every split of a body, pauses, limits, errors. */
#include "common/hr_err.h"
#include "viewer-api/multipart.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a recorder of parser events ------------------------------------------ */

#define MAXP 8

typedef struct rec {
    char log[4096]; /* "begin 0 ct=... cl=... loc=...|end 0 n=...|done 2|" */
    size_t loglen;
    unsigned char data[MAXP][8192];
    size_t dlen[MAXP];
    int pause;              /* callbacks ask to pause */
    const uint8_t *lo, *hi; /* the chunk being fed */
    size_t copied;          /* data bytes delivered from outside the fed chunk */
    int ends;
} rec;

static void say(rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->loglen += (size_t)vsnprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, fmt, ap);
    va_end(ap);
    cr_assert_lt(r->loglen, sizeof(r->log));
}

static int on_begin(void *arg, const va_mp_part *p)
{
    rec *r = arg;
    say(r, "begin %u ct=%s cl=%lld loc=%s id=%s|", p->index, p->content_type, p->content_length,
        p->content_location, p->content_id);
    cr_assert_eq(p->length, 0);
    return r->pause;
}

static int on_data(void *arg, const va_mp_part *p, const uint8_t *d, size_t n)
{
    rec *r = arg;
    cr_assert_lt(p->index, MAXP);
    cr_assert_gt(n, 0, "no empty data calls");
    cr_assert_leq(r->dlen[p->index] + n, sizeof(r->data[0]));
    memcpy(r->data[p->index] + r->dlen[p->index], d, n);
    r->dlen[p->index] += n;
    cr_assert_eq(p->length, r->dlen[p->index], "length counts this chunk");
    if (d < r->lo || d + n > r->hi)
        r->copied += n;
    return r->pause;
}

static int on_end(void *arg, const va_mp_part *p)
{
    rec *r = arg;
    say(r, "end %u n=%llu|", p->index, p->length);
    return r->pause;
}

static void on_done(void *arg, unsigned parts)
{
    rec *r = arg;
    say(r, "done %u|", parts);
    r->ends++;
}

static const va_mp_callbacks CB = {on_begin, on_data, on_end, on_done};

/* Feeds body in chunks of the sizes in sizes[] (cycled; 0 = the rest),
 * resuming after every pause. Returns the first error, else va_mp_finish(). */
static int run_chunks(va_mp_parser *p, rec *r, const uint8_t *body, size_t len, const size_t *sizes,
                      size_t nsizes)
{
    size_t off = 0, k = 0;
    int rc = 0;
    while (off < len) {
        size_t n = sizes[k++ % nsizes];
        if (n == 0 || n > len - off)
            n = len - off;
        /* the chunk lives in its own allocation: ASan sees any read outside it */
        uint8_t *chunk = malloc(n);
        memcpy(chunk, body + off, n);
        size_t pos = 0, used;
        for (int guard = 0;; guard++) {
            cr_assert_lt(guard, 100000, "resuming makes progress");
            r->lo = chunk + pos;
            r->hi = chunk + n;
            rc = va_mp_feed(p, chunk + pos, n - pos, &used);
            cr_assert_leq(used, n - pos);
            pos += used;
            if (rc != VA_MP_PAUSED)
                break;
        }
        free(chunk);
        if (rc < 0)
            return rc;
        off += n;
    }
    return va_mp_finish(p);
}

static int run(rec *r, const char *boundary, const void *body, size_t len, const size_t *sizes,
               size_t nsizes, const va_mp_limits *lim)
{
    va_mp_parser p;
    memset(r, 0, sizeof(*r));
    cr_assert_eq(va_mp_init(&p, boundary, lim, &CB, r), 0);
    int rc = run_chunks(&p, r, body, len, sizes, nsizes);
    va_mp_free(&p);
    return rc;
}

static int run_whole(rec *r, const char *boundary, const char *body, const va_mp_limits *lim)
{
    static const size_t all[] = {0};
    return run(r, boundary, body, strlen(body), all, 1, lim);
}

/* ---- the reference body ------------------------------------------------------ */

#define B "huren-b0undary"

static uint8_t body[16384], data1[4096];
static size_t body_len, data1_len;
static const char data2[] = "[{\"00080018\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]}}]";

static void add(const void *p, size_t n)
{
    cr_assert_lt(body_len + n, sizeof(body));
    memcpy(body + body_len, p, n);
    body_len += n;
}

static void adds(const char *s)
{
    add(s, strlen(s));
}

/* Two parts of different types; the first is binary holding CRLFs, every
 * prefix of the delimiter, the boundary without its CRLF, and ends in CR. */
static void make_body(void)
{
    static const char *const traps[] = {
        "\r\n",        "\r\n-",  "\r\n--",  "\r\n--h", "\r\n--huren-b0undar", "\r\r\n--huren-b0und",
        "--" B "\r\n", "\n--" B, "\r\n\r\n"};
    data1_len = 0;
    for (int i = 0; i < 256; i++)
        data1[data1_len++] = (uint8_t)i;
    for (size_t t = 0; t < sizeof(traps) / sizeof(traps[0]); t++) {
        memcpy(data1 + data1_len, traps[t], strlen(traps[t]));
        data1_len += strlen(traps[t]);
        data1[data1_len++] = 'x';
    }
    data1[data1_len++] = '\r';
    body_len = 0;
    adds("This is the preamble. It is to be ignored.\r\n--" B "\r\n"
         "Content-Type: application/dicom\r\n");
    char cl[64];
    snprintf(cl, sizeof(cl), "content-length: %zu\r\n", data1_len);
    adds(cl);
    adds("Content-Location:  file1.dcm \r\n\r\n");
    add(data1, data1_len);
    adds("\r\n--" B "\r\nContent-Type: application/dicom+json; charset=utf-8\r\n"
         "Content-ID: <part2@huren>\r\n\r\n");
    adds(data2);
    adds("\r\n--" B "--\r\nThis is the epilogue, also ignored.\r\n--" B "\r\n");
}

static void expect_reference(const rec *r)
{
    char want[512];
    snprintf(want, sizeof(want),
             "begin 0 ct=application/dicom cl=%zu loc=file1.dcm id=|end 0 n=%zu|"
             "begin 1 ct=application/dicom+json; charset=utf-8 cl=-1 loc= id=<part2@huren>|"
             "end 1 n=%zu|done 2|",
             data1_len, data1_len, strlen(data2));
    cr_assert_str_eq(r->log, want);
    cr_assert_eq(r->dlen[0], data1_len);
    cr_assert_eq(memcmp(r->data[0], data1, data1_len), 0, "binary data intact");
    cr_assert_eq(r->dlen[1], strlen(data2));
    cr_assert_eq(memcmp(r->data[1], data2, strlen(data2)), 0);
    cr_assert_eq(r->ends, 1);
}

Test(multipart, whole_body_zero_copy)
{
    static const size_t all[] = {0};
    rec r;
    make_body();
    cr_assert_eq(run(&r, B, body, body_len, all, 1, NULL), 0);
    expect_reference(&r);
    cr_expect_eq(r.copied, 0, "in one chunk every data byte is a pointer into it");
}

Test(multipart, every_split_position)
{
    rec r;
    make_body();
    for (size_t k = 0; k <= body_len; k++) {
        size_t sizes[] = {k, 0};
        cr_assert_eq(run(&r, B, body, body_len, sizes, 2, NULL), 0, "split at %zu", k);
        expect_reference(&r);
        /* only held-back delimiter prefixes are copies */
        cr_assert_lt(r.copied, sizeof(B) + 4, "split at %zu copied %zu", k, r.copied);
    }
}

Test(multipart, byte_by_byte_and_odd_chunks)
{
    static const size_t one[] = {1}, odd[] = {3, 7, 1, 64, 2, 13};
    rec r;
    make_body();
    cr_assert_eq(run(&r, B, body, body_len, one, 1, NULL), 0);
    expect_reference(&r);
    cr_assert_eq(run(&r, B, body, body_len, odd, 6, NULL), 0);
    expect_reference(&r);
}

Test(multipart, every_callback_pausing_then_resuming)
{
    static const size_t sizes[][3] = {{0}, {1}, {5, 17, 2}};
    make_body();
    for (int s = 0; s < 3; s++) {
        rec r;
        va_mp_parser p;
        memset(&r, 0, sizeof(r));
        r.pause = 1;
        cr_assert_eq(va_mp_init(&p, B, NULL, &CB, &r), 0);
        cr_assert_eq(run_chunks(&p, &r, body, body_len, sizes[s], s == 2 ? 3 : 1), 0);
        va_mp_free(&p);
        expect_reference(&r);
    }
}

Test(multipart, pause_returns_consumed_and_len_zero_delivers_the_part_end)
{
    rec r;
    va_mp_parser p;
    size_t used;
    const char *b = "--b\r\n\r\nabc\r\n--b--";
    memset(&r, 0, sizeof(r));
    r.pause = 1;
    cr_assert_eq(va_mp_init(&p, "b", NULL, &CB, &r), 0);
    const uint8_t *u = (const uint8_t *)b;
    size_t len = strlen(b), off = 0;
    cr_assert_eq(va_mp_feed(&p, u, len, &used), VA_MP_PAUSED);
    cr_expect_eq(used, 7, "stops right after the header block");
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc= id=|");
    off += used;
    r.lo = u + off, r.hi = u + len;
    cr_assert_eq(va_mp_feed(&p, u + off, len - off, &used), VA_MP_PAUSED);
    cr_expect_eq(used, 15 - off, "data delivered, delimiter consumed");
    cr_expect_eq(r.dlen[0], 3);
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc= id=|", "part end still due");
    off += used;
    cr_assert_eq(va_mp_feed(&p, u + off, 0, &used), VA_MP_PAUSED);
    cr_expect_eq(used, 0);
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc= id=|end 0 n=3|");
    cr_assert_eq(va_mp_feed(&p, u + off, len - off, &used), VA_MP_DONE);
    cr_expect_eq(used, 2);
    cr_assert_eq(va_mp_feed(&p, (const uint8_t *)"\r\nepilogue", 10, &used), VA_MP_DONE);
    cr_expect_eq(used, 10, "the epilogue is consumed");
    cr_expect_eq(va_mp_finish(&p), 0);
    va_mp_free(&p);
}

Test(multipart, empty_parts)
{
    rec r;
    cr_assert_eq(run_whole(&r, "b", "--b\r\n\r\n--b--", NULL), 0);
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc= id=|end 0 n=0|done 1|");
    cr_assert_eq(run_whole(&r, "b", "--b\r\nContent-Type: a/b\r\n\r\n--b--", NULL), 0);
    cr_expect_str_eq(r.log, "begin 0 ct=a/b cl=-1 loc= id=|end 0 n=0|done 1|");
    cr_assert_eq(run_whole(&r, "b", "--b\r\nContent-Type: a/b\r\n\r\n\r\n--b--", NULL), 0);
    cr_expect_str_eq(r.log, "begin 0 ct=a/b cl=-1 loc= id=|end 0 n=0|done 1|");
    cr_assert_eq(run_whole(&r, "b", "--b\r\n\r\n\r\n\r\n--b\r\n\r\nz\r\n--b--", NULL), 0);
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc= id=|end 0 n=2|begin 1 ct= cl=-1 loc= id=|"
                            "end 1 n=1|done 2|");
    cr_expect_eq(memcmp(r.data[0], "\r\n", 2), 0, "a part made of one CRLF");
    cr_assert_eq(run_whole(&r, "b", "--b--", NULL), 0, "no parts at all");
    cr_expect_str_eq(r.log, "done 0|");
}

Test(multipart, quoted_boundary_with_specials_and_padding)
{
    va_mp_content_type ct;
    const char *v = "Multipart/Related; TYPE=\"Application/DICOM\";  Boundary=\"a b=c:d?(e)\\\"\"";
    cr_assert_eq(va_mp_content_type_parse(v, strlen(v), &ct), 0);
    cr_expect_str_eq(ct.media, "multipart/related");
    cr_expect_str_eq(ct.type, "application/dicom");
    cr_expect_str_eq(ct.boundary, "a b=c:d?(e)\"");
    rec r;
    cr_assert_eq(run_whole(&r, ct.boundary,
                           "--a b=c:d?(e)\" \t\r\nContent-Type: application/dicom\r\n\r\n"
                           "--a b=c:d?(e)\r\n--a b=c:d?(e)\"--",
                           NULL),
                 0);
    cr_expect_str_eq(r.log, "begin 0 ct=application/dicom cl=-1 loc= id=|end 0 n=13|done 1|");
    cr_expect_eq(memcmp(r.data[0], "--a b=c:d?(e)", 13), 0);
}

Test(multipart, content_type_values)
{
    va_mp_content_type ct;
    char out[64];
#define CT(s) va_mp_content_type_parse(s, strlen(s), &ct)
    cr_assert_eq(CT("multipart/related;boundary=----=_Part_0_1.2;type=application/dicom"), 0);
    cr_expect_str_eq(ct.boundary, "----=_Part_0_1.2", "unquoted with tspecials");
    cr_expect_str_eq(ct.type, "application/dicom");
    cr_assert_eq(CT(" multipart/related ; boundary = xyz ; start=\"<a@b>\""), 0);
    cr_expect_str_eq(ct.boundary, "xyz");
    cr_expect_str_eq(ct.type, "", "type absent");
    cr_expect_eq(CT("multipart/related; type=\"application/dicom\""), HR_EPARSE, "no boundary");
    cr_expect_eq(CT("multipart/related; boundary=\"\""), HR_EPARSE, "empty boundary");
    cr_expect_eq(CT("multipart/related; boundary=\"ab \""), HR_EPARSE, "ends in a space");
    cr_expect_eq(CT("multipart/related; boundary=a; boundary=b"), HR_EPARSE, "twice");
    cr_expect_eq(CT("multipart/related; boundary=\"abc"), HR_EPARSE, "unterminated quote");
    cr_expect_eq(CT("multipart/related; boundary"), HR_EPARSE);
    cr_expect_eq(CT("multipart; boundary=a"), HR_EPARSE);
    cr_expect_eq(CT("application/dicom; boundary=a"), HR_EUNSUP);
    cr_expect_eq(CT("multipart/related; boundary=a\x01"), HR_EPARSE);
    char b71[128];
    snprintf(b71, sizeof(b71), "multipart/related; boundary=%071d", 7);
    cr_expect_eq(CT(b71), HR_EPARSE, "longer than 70");
    snprintf(b71, sizeof(b71), "multipart/related; boundary=%070d", 7);
    cr_expect_eq(CT(b71), 0, "70 is the RFC maximum");
    char longtype[300];
    snprintf(longtype, sizeof(longtype), "multipart/related; boundary=a; type=a/%0200d", 1);
    cr_expect_eq(CT(longtype), HR_ETOOBIG);
#undef CT
    const char *pct = "application/dicom; transfer-syntax=1.2.840.10008.1.2.1";
    cr_assert_eq(va_mp_media_type(pct, strlen(pct), out, sizeof(out)), 0);
    cr_expect_str_eq(out, "application/dicom");
    cr_assert_eq(va_mp_param(pct, strlen(pct), "Transfer-Syntax", out, sizeof(out)), 1);
    cr_expect_str_eq(out, "1.2.840.10008.1.2.1");
    cr_expect_eq(va_mp_param(pct, strlen(pct), "charset", out, sizeof(out)), 0);
    cr_expect_eq(va_mp_media_type("application/dicom x", 19, out, sizeof(out)), HR_EPARSE);
    cr_expect_eq(va_mp_media_type("application/dicom", 17, out, 10), HR_ETOOBIG);
    /* not NUL-terminated: only len bytes are read */
    cr_assert_eq(va_mp_media_type("text/plainXXXX", 10, out, sizeof(out)), 0);
    cr_expect_str_eq(out, "text/plain");
}

Test(multipart, lf_only_bodies_are_refused)
{
    rec r;
    va_mp_parser p;
    size_t used;
    const char *b = "--b\nContent-Type: a/b\n\nxyz\n--b--\n";
    cr_assert_eq(va_mp_init(&p, "b", NULL, &CB, &r), 0);
    memset(&r, 0, sizeof(r));
    cr_expect_eq(va_mp_feed(&p, (const uint8_t *)b, strlen(b), &used), HR_EPARSE);
    cr_expect(strstr(va_mp_error(&p), "bare LF") != NULL, "%s", va_mp_error(&p));
    cr_expect_eq(va_mp_feed(&p, (const uint8_t *)"x", 1, &used), HR_EPARSE, "sticky");
    cr_expect_eq(va_mp_finish(&p), HR_EPARSE);
    va_mp_free(&p);
    cr_expect_eq(run_whole(&r, "b", "--b\r\nContent-Type: a/b\n\r\n", NULL), HR_EPARSE,
                 "bare LF in headers");
    /* CRLF framing with LF-only delimiters inside: those are data */
    cr_expect_eq(run_whole(&r, "b", "--b\r\n\r\nxyz\n--b--\n", NULL), HR_ETRUNC);
    cr_expect_eq(r.dlen[0], 10, "xyz LF --b-- LF");
}

Test(multipart, truncated_and_boundaryless_bodies)
{
    static const size_t all[] = {0};
    rec r;
    make_body();
    const char close[] = "\r\n--" B "--";
    const uint8_t *c = memmem(body, body_len, close, strlen(close));
    cr_assert_not_null(c);
    size_t close_end = (size_t)(c - body) + strlen(close);
    size_t first = strlen("This is the preamble. It is to be ignored.\r\n--" B);
    for (size_t cut = 0; cut < close_end; cut++) {
        int rc = run(&r, B, body, cut, all, 1, NULL);
        cr_assert_eq(rc, cut < first ? HR_EPARSE : HR_ETRUNC, "cut at %zu: %s", cut,
                     hr_err_name(rc));
    }
    cr_expect_eq(run(&r, B, body, close_end, all, 1, NULL), 0, "complete at the second dash");
    cr_expect_eq(run_whole(&r, "b", "no delimiter here at all\r\n", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--b\r\nContent-Type: a/b\r\n\r\ndata", NULL), HR_ETRUNC);
    cr_expect_str_eq(r.log, "begin 0 ct=a/b cl=-1 loc= id=|");
}

Test(multipart, header_block_limit)
{
    rec r;
    char big[20000];
    size_t n = (size_t)snprintf(big, sizeof(big), "--b\r\nX-Big: ");
    memset(big + n, 'v', 16384);
    n += 16384;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n\r\nx\r\n--b--");
    static const size_t all[] = {0}, one[] = {1};
    cr_expect_eq(run(&r, "b", big, n, all, 1, NULL), HR_ETOOBIG, "16 KiB by default");
    cr_expect_eq(run(&r, "b", big, n, one, 1, NULL), HR_ETOOBIG);
    va_mp_limits lim = {.max_header_bytes = 64 * 1024};
    cr_expect_eq(run(&r, "b", big, n, all, 1, &lim), 0, "configurable");
    lim.max_header_bytes = 30; /* the first block is 35 bytes, the second 21 */
    cr_expect_eq(run_whole(&r, "b", "--b\r\nContent-Type: application/dicom\r\n\r\n--b--", &lim),
                 HR_ETOOBIG);
    cr_expect_eq(run_whole(&r, "b", "--b\r\nContent-Type: a/b\r\n\r\n--b--", &lim), 0);
}

Test(multipart, part_count_limit)
{
    rec r;
    va_mp_limits lim = {.max_parts = 2};
    const char *three = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
    cr_expect_eq(run_whole(&r, "b", three, &lim), HR_ETOOBIG);
    cr_expect_str_eq(r.log,
                     "begin 0 ct= cl=-1 loc= id=|end 0 n=1|begin 1 ct= cl=-1 loc= id=|"
                     "end 1 n=1|",
                     "refused before the third part begins");
    lim.max_parts = 3;
    cr_expect_eq(run_whole(&r, "b", three, &lim), 0);
}

Test(multipart, header_syntax)
{
    rec r;
    va_mp_parser p;
    cr_expect_eq(run_whole(&r, "b", "--b\r\nno colon\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--b\r\nBad Name: x\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--b\r\n: x\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--b\r\n x: y\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(
        run_whole(&r, "b", "--b\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n--b--", NULL),
        HR_EPARSE, "two Content-Types");
    cr_expect_eq(run_whole(&r, "b", "--b\r\nContent-Length: 12a\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--b\r\nX: a\rb\r\n\r\n--b--", NULL), HR_EPARSE);
    cr_expect_eq(run_whole(&r, "b", "--bX\r\n\r\n--b--", NULL), HR_EPARSE,
                 "a delimiter followed by other text");
    cr_expect_eq(run_whole(&r, "b", "--b\r\n\r\nx\r\n--b-x", NULL), HR_EPARSE);
    cr_assert_eq(run_whole(&r, "b",
                           "--b\r\nContent-Location: http://h/x\r\n\tfolded\r\n"
                           "X-Extra:value\r\n\r\n--b--",
                           NULL),
                 0);
    cr_expect_str_eq(r.log, "begin 0 ct= cl=-1 loc=http://h/x  \tfolded id=|end 0 n=0|done 1|");
    cr_expect_eq(va_mp_init(&p, "", NULL, &CB, &r), HR_EPARSE);
    cr_expect_eq(va_mp_init(&p, "a\r\nb", NULL, &CB, &r), HR_EPARSE);
}

static int check_extra(void *arg, const va_mp_part *p)
{
    cr_expect_str_eq(va_mp_header(p, "x-extra"), "value");
    cr_expect_str_eq(va_mp_header(p, "CONTENT-TYPE"), "a/b");
    cr_expect_null(va_mp_header(p, "x-missing"));
    (*(int *)arg)++;
    return 0;
}

Test(multipart, any_header_by_name)
{
    va_mp_parser p;
    va_mp_callbacks cb = {.on_part_begin = check_extra};
    int seen = 0;
    size_t used;
    const char *b = "--b\r\nContent-Type: a/b\r\nX-Extra:  value\r\n\r\ndata\r\n--b--";
    cr_assert_eq(va_mp_init(&p, "b", NULL, &cb, &seen), 0);
    cr_expect_eq(va_mp_feed(&p, (const uint8_t *)b, strlen(b), &used), VA_MP_DONE);
    cr_expect_eq(used, strlen(b));
    cr_expect_eq(seen, 1);
    va_mp_free(&p);
}
