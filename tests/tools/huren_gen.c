/* huren-gen: deterministic DICOM Part 10 fixture generator for tests and
 * benchmarks. Writes uncompressed 16-bit MONOCHROME2 images (single or
 * multi-frame) or 12-lead ECG waveforms, in any of the four native transfer
 * syntaxes, with Latin-1, UTF-8 or GB18030 (optionally mislabelled) text.
 * Pixel data is streamed through a fixed buffer, so memory stays constant
 * for objects of any size. See tests/tools/README.md. */
#include "common/hr_bytes.h"
#include "common/hr_err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <iconv.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GEN_IMPL_CLASS_UID "2.25.269357186912817373302785463108125012433"
#define GEN_IMPL_VERSION   "HUREN_GEN_0_1"
#define GEN_IO_BUF         (256 * 1024)
#define GEN_PIX_CHUNK      (512 * 1024) /* pixels generated per chunk (1 MB) */
#define GEN_MAX_VL         0xFFFFFFF0ull

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))

/* ---------------------------------------------------------------- options */

enum gen_ts { TS_IMPLICIT, TS_EXPLICIT, TS_BIGENDIAN, TS_DEFLATED };
enum gen_cs { CS_LATIN1, CS_UTF8, CS_GB18030, CS_GB18030_MISLABELLED };

typedef struct gen_opts {
    const char *out;
    const char *prefix;
    const char *modality;
    const char *patient_id;
    const char *patient_name; /* UTF-8 */
    const char *accession;
    const char *institution; /* UTF-8 */
    const char *study_date;
    unsigned studies, series, instances, frames;
    uint64_t bytes;
    uint64_t size_total;
    uint64_t seed;
    enum gen_ts ts;
    enum gen_cs cs;
    int print_uids;
} gen_opts;

typedef struct gen_modality {
    const char *name;
    const char *sop_class; /* single-frame storage class */
    const char *body_part;
} gen_modality;

static const gen_modality gen_modalities[] = {
    {"CT", "1.2.840.10008.5.1.4.1.1.2", "CHEST"},
    {"MR", "1.2.840.10008.5.1.4.1.1.4", "HEAD"},
    {"CR", "1.2.840.10008.5.1.4.1.1.1", "CHEST"},
    {"DX", "1.2.840.10008.5.1.4.1.1.1.1", "CHEST"},
    {"US", "1.2.840.10008.5.1.4.1.1.6.1", "ABDOMEN"},
    {"XA", "1.2.840.10008.5.1.4.1.1.12.1", "HEART"},
    {"NM", "1.2.840.10008.5.1.4.1.1.20", "WHOLEBODY"},
    {"PT", "1.2.840.10008.5.1.4.1.1.128", "WHOLEBODY"},
    {"SC", "1.2.840.10008.5.1.4.1.1.7", "CHEST"},
    {"MG", "1.2.840.10008.5.1.4.1.1.1.2", "BREAST"},
    {"RF", "1.2.840.10008.5.1.4.1.1.12.2", "STOMACH"},
    {"ECG", "1.2.840.10008.5.1.4.1.1.9.1.1", "HEART"},
};

#define SOP_MF_GRAY_WORD_SC "1.2.840.10008.5.1.4.1.1.7.3"
#define SOP_US_MULTIFRAME   "1.2.840.10008.5.1.4.1.1.3.1"

static const char *const gen_ts_uids[] = {
    [TS_IMPLICIT] = "1.2.840.10008.1.2",
    [TS_EXPLICIT] = "1.2.840.10008.1.2.1",
    [TS_BIGENDIAN] = "1.2.840.10008.1.2.2",
    [TS_DEFLATED] = "1.2.840.10008.1.2.1.99",
};

/* ---------------------------------------------------------------- buffers */

typedef struct gen_buf {
    uint8_t *p;
    size_t len, alloc;
} gen_buf;

static int buf_reserve(gen_buf *b, size_t n)
{
    size_t want;
    uint8_t *np;

    if (b->len + n <= b->alloc)
        return 0;
    want = b->alloc ? b->alloc : 1024;
    while (want < b->len + n)
        want *= 2;
    np = realloc(b->p, want);
    if (np == NULL)
        return -ENOMEM;
    b->p = np;
    b->alloc = want;
    return 0;
}

static int buf_put(gen_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

/* --------------------------------------------------------------- datasets */

typedef struct gen_ds gen_ds;

typedef struct gen_el {
    uint32_t tag;
    char vr[3];
    uint8_t *val; /* little-endian value, owned */
    uint32_t len;
    unsigned wsz;  /* word size for byte swapping (1 = none) */
    gen_ds *items; /* SQ only: array of nitems datasets */
    size_t nitems;
} gen_el;

struct gen_ds {
    gen_el *el;
    size_t n, alloc;
    int err; /* first allocation error; checked once at serialisation */
};

static void ds_free(gen_ds *ds);

static void el_free(gen_el *e)
{
    size_t i;

    free(e->val);
    for (i = 0; i < e->nitems; i++)
        ds_free(&e->items[i]);
    free(e->items);
}

static void ds_free(gen_ds *ds)
{
    size_t i;

    for (i = 0; i < ds->n; i++)
        el_free(&ds->el[i]);
    free(ds->el);
    memset(ds, 0, sizeof(*ds));
}

static gen_el *ds_new(gen_ds *ds, uint32_t tag, const char *vr)
{
    gen_el *e;

    if (ds->err)
        return NULL;
    if (ds->n == ds->alloc) {
        size_t na = ds->alloc ? ds->alloc * 2 : 32;
        gen_el *ne = realloc(ds->el, na * sizeof(*ne));
        if (ne == NULL) {
            ds->err = -ENOMEM;
            return NULL;
        }
        ds->el = ne;
        ds->alloc = na;
    }
    e = &ds->el[ds->n++];
    memset(e, 0, sizeof(*e));
    e->tag = tag;
    memcpy(e->vr, vr, 2);
    e->wsz = 1;
    return e;
}

static void ds_bytes(gen_ds *ds, uint32_t tag, const char *vr, const void *p, size_t n,
                     unsigned wsz)
{
    gen_el *e = ds_new(ds, tag, vr);
    size_t padded = n + (n & 1);

    if (e == NULL)
        return;
    if (padded > GEN_MAX_VL) {
        ds->err = HR_ETOOBIG;
        return;
    }
    e->val = malloc(padded ? padded : 1);
    if (e->val == NULL) {
        ds->err = -ENOMEM;
        return;
    }
    if (n)
        memcpy(e->val, p, n);
    if (padded != n) /* UI pads with NUL, OB with NUL, text with space */
        e->val[n] = (strcmp(vr, "UI") == 0 || strcmp(vr, "OB") == 0) ? '\0' : ' ';
    e->len = (uint32_t)padded;
    e->wsz = wsz;
}

static void ds_str(gen_ds *ds, uint32_t tag, const char *vr, const char *s)
{
    ds_bytes(ds, tag, vr, s, strlen(s), 1);
}

static void ds_us(gen_ds *ds, uint32_t tag, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

    ds_bytes(ds, tag, "US", b, 2, 2);
}

static void ds_ul(gen_ds *ds, uint32_t tag, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    ds_bytes(ds, tag, "UL", b, 4, 4);
}

static void ds_at(gen_ds *ds, uint32_t tag, uint32_t target)
{
    uint8_t b[4] = {(uint8_t)(target >> 16), (uint8_t)(target >> 24), (uint8_t)target,
                    (uint8_t)(target >> 8)};

    ds_bytes(ds, tag, "AT", b, 4, 2);
}

/* Adds an empty sequence; items are added with sq_item(). The returned
 * pointer is valid until the next element is added to ds. */
static gen_el *ds_seq(gen_ds *ds, uint32_t tag)
{
    return ds_new(ds, tag, "SQ");
}

/* Appends an item to sequence e; returns it (valid until the next item). */
static gen_ds *sq_item(gen_ds *parent, gen_el *e)
{
    gen_ds *ni;

    if (e == NULL)
        return NULL;
    ni = realloc(e->items, (e->nitems + 1) * sizeof(*ni));
    if (ni == NULL) {
        parent->err = -ENOMEM;
        return NULL;
    }
    e->items = ni;
    memset(&ni[e->nitems], 0, sizeof(*ni));
    return &ni[e->nitems++];
}

/* Adds a code sequence with one item (value, scheme, meaning). */
static void ds_code(gen_ds *ds, uint32_t tag, const char *value, const char *scheme,
                    const char *meaning)
{
    gen_el *sq = ds_seq(ds, tag);
    gen_ds *it = sq_item(ds, sq);

    if (it == NULL)
        return;
    ds_str(it, TAG(0x0008, 0x0100), "SH", value);
    ds_str(it, TAG(0x0008, 0x0102), "SH", scheme);
    ds_str(it, TAG(0x0008, 0x0104), "LO", meaning);
    if (it->err)
        ds->err = it->err;
}

static int el_cmp(const void *a, const void *b)
{
    uint32_t x = ((const gen_el *)a)->tag, y = ((const gen_el *)b)->tag;

    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ serialising */

typedef struct gen_enc {
    int explicit_vr;
    int big_endian;
} gen_enc;

static int vr_long(const char *vr)
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                    "SV", "UC", "UN", "UR", "UT", "UV"};
    size_t i;

    for (i = 0; i < sizeof(l) / sizeof(l[0]); i++)
        if (memcmp(vr, l[i], 2) == 0)
            return 1;
    return 0;
}

/* Writes an element header; returns its size and the offset of the length
 * field in *len_off (for patching) when len_off is not NULL. */
static int put_header(gen_buf *b, const gen_enc *enc, uint32_t tag, const char *vr, uint32_t len,
                      size_t *len_off)
{
    uint8_t h[12];
    size_t n = 0;
    int rc;

    hr_wr16(h, (uint16_t)(tag >> 16), enc->big_endian);
    hr_wr16(h + 2, (uint16_t)tag, enc->big_endian);
    n = 4;
    if (vr == NULL || !enc->explicit_vr) { /* items, delimiters, implicit VR */
        hr_wr32(h + n, len, enc->big_endian);
        if (len_off)
            *len_off = b->len + n;
        n += 4;
    } else if (vr_long(vr)) {
        memcpy(h + n, vr, 2);
        h[n + 2] = h[n + 3] = 0;
        hr_wr32(h + n + 4, len, enc->big_endian);
        if (len_off)
            *len_off = b->len + n + 4;
        n += 8;
    } else {
        if (len > 0xFFFF)
            return HR_ETOOBIG;
        memcpy(h + n, vr, 2);
        hr_wr16(h + n + 2, (uint16_t)len, enc->big_endian);
        if (len_off)
            *len_off = b->len + n + 2;
        n += 4;
    }
    rc = buf_put(b, h, n);
    return rc;
}

static int ds_encode(gen_ds *ds, const gen_enc *enc, gen_buf *b);

static int el_encode(gen_el *e, const gen_enc *enc, gen_buf *b)
{
    size_t len_off, start, i, k;
    int rc;

    if (memcmp(e->vr, "SQ", 2) == 0) {
        rc = put_header(b, enc, e->tag, "SQ", 0, &len_off);
        if (rc)
            return rc;
        start = b->len;
        for (i = 0; i < e->nitems; i++) {
            size_t ioff, istart;
            rc = put_header(b, enc, TAG(0xFFFE, 0xE000), NULL, 0, &ioff);
            if (rc)
                return rc;
            istart = b->len;
            rc = ds_encode(&e->items[i], enc, b);
            if (rc)
                return rc;
            hr_wr32(b->p + ioff, (uint32_t)(b->len - istart), enc->big_endian);
        }
        hr_wr32(b->p + len_off, (uint32_t)(b->len - start), enc->big_endian);
        return 0;
    }
    rc = put_header(b, enc, e->tag, e->vr, e->len, NULL);
    if (rc)
        return rc;
    start = b->len;
    rc = buf_put(b, e->val, e->len);
    if (rc)
        return rc;
    if (enc->big_endian && e->wsz > 1) {
        for (i = start; i + e->wsz <= b->len; i += e->wsz)
            for (k = 0; k < e->wsz / 2; k++) {
                uint8_t t = b->p[i + k];
                b->p[i + k] = b->p[i + e->wsz - 1 - k];
                b->p[i + e->wsz - 1 - k] = t;
            }
    }
    return 0;
}

/* Sorts ds (ascending tags, recursively) and appends its encoding to b. */
static int ds_encode(gen_ds *ds, const gen_enc *enc, gen_buf *b)
{
    size_t i;
    int rc;

    if (ds->err)
        return ds->err;
    qsort(ds->el, ds->n, sizeof(*ds->el), el_cmp);
    for (i = 0; i < ds->n; i++) {
        if (i > 0 && ds->el[i].tag == ds->el[i - 1].tag)
            return HR_EPARSE; /* duplicate attribute: a generator bug */
        rc = el_encode(&ds->el[i], enc, b);
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------ output sink */

typedef struct gen_sink {
    int fd;
    int deflate;
    z_stream z;
    int z_init;
    uint8_t *out;
    size_t out_len;
    uint64_t written;
} gen_sink;

static int sink_flush(gen_sink *s)
{
    size_t off = 0;

    while (off < s->out_len) {
        ssize_t w = write(s->fd, s->out + off, s->out_len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    s->written += s->out_len;
    s->out_len = 0;
    return 0;
}

static int sink_raw(gen_sink *s, const void *p, size_t n)
{
    const uint8_t *q = p;
    int rc;

    while (n > 0) {
        size_t room = GEN_IO_BUF - s->out_len, c = n < room ? n : room;
        memcpy(s->out + s->out_len, q, c);
        s->out_len += c;
        q += c;
        n -= c;
        if (s->out_len == GEN_IO_BUF) {
            rc = sink_flush(s);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int sink_deflate(gen_sink *s, const void *p, size_t n, int flush)
{
    int zr, rc;

    s->z.next_in = (Bytef *)(uintptr_t)p;
    s->z.avail_in = (uInt)n;
    do {
        s->z.next_out = s->out + s->out_len;
        s->z.avail_out = (uInt)(GEN_IO_BUF - s->out_len);
        zr = deflate(&s->z, flush);
        if (zr == Z_STREAM_ERROR)
            return HR_EPARSE;
        s->out_len = GEN_IO_BUF - s->z.avail_out;
        if (s->out_len == GEN_IO_BUF || (flush == Z_FINISH && zr == Z_STREAM_END)) {
            rc = sink_flush(s);
            if (rc)
                return rc;
        }
    } while (s->z.avail_in > 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return 0;
}

/* Dataset bytes: deflated when the sink is in deflate mode. */
static int sink_data(gen_sink *s, const void *p, size_t n)
{
    while (s->deflate && n > (size_t)1 << 30) { /* avail_in is 32-bit */
        int rc = sink_deflate(s, p, (size_t)1 << 30, Z_NO_FLUSH);
        if (rc)
            return rc;
        p = (const uint8_t *)p + ((size_t)1 << 30);
        n -= (size_t)1 << 30;
    }
    return s->deflate ? sink_deflate(s, p, n, Z_NO_FLUSH) : sink_raw(s, p, n);
}

static int sink_finish(gen_sink *s)
{
    int rc;

    if (s->deflate) {
        rc = sink_deflate(s, NULL, 0, Z_FINISH);
        if (rc)
            return rc;
        /* PS3.5 A.5: an odd-length deflated stream is padded with one NUL. */
        if ((s->z.total_out & 1) != 0) {
            rc = sink_raw(s, "", 1);
            if (rc)
                return rc;
        }
    }
    return sink_flush(s);
}

/* ------------------------------------------------------------------- UIDs */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* 2.25.<decimal of a 128-bit value derived from seed and the path>. */
static void make_uid(char *out, size_t cap, uint64_t seed, uint64_t salt, unsigned kind, unsigned a,
                     unsigned b, unsigned c)
{
    uint64_t st = seed * 0x100000001B3ull ^ 0x6875726E;
    unsigned __int128 v;
    char digits[48];
    int n = 0;

    st ^= splitmix64(&st) + salt;
    st ^= splitmix64(&st) + kind;
    st ^= splitmix64(&st) + a;
    st ^= splitmix64(&st) + b;
    st ^= splitmix64(&st) + c;
    v = ((unsigned __int128)splitmix64(&st) << 64) | splitmix64(&st);
    v >>= 1; /* keep below 2^127 like a UUID-derived value; never 0 in practice */
    if (v == 0)
        v = 1;
    while (v > 0) {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    }
    snprintf(out, cap, "2.25.");
    for (int i = 0; i < n && 5 + i < (int)cap - 1; i++)
        out[5 + i] = digits[n - 1 - i];
    out[5 + (n < (int)cap - 6 ? n : (int)cap - 6)] = '\0';
}

/* --------------------------------------------------------------- charsets */

/* Converts UTF-8 s to the option's charset into out (NUL-terminated). */
static int conv_text(enum gen_cs cs, const char *s, char *out, size_t cap)
{
    const char *to = cs == CS_LATIN1 ? "ISO-8859-1" : cs == CS_UTF8 ? NULL : "GB18030";
    iconv_t cd;
    char *in = (char *)s, *o = out;
    size_t inl = strlen(s), outl = cap - 1;
    int rc = 0;

    if (to == NULL) {
        if (inl >= cap)
            return HR_ETOOBIG;
        memcpy(out, s, inl + 1);
        return 0;
    }
    cd = iconv_open(to, "UTF-8");
    if (cd == (iconv_t)-1)
        return -errno;
    if (iconv(cd, &in, &inl, &o, &outl) == (size_t)-1)
        rc = HR_ECHARSET;
    *o = '\0';
    iconv_close(cd);
    return rc;
}

static const char *charset_term(enum gen_cs cs)
{
    switch (cs) {
    case CS_UTF8:
        return "ISO_IR 192";
    case CS_GB18030:
        return "GB18030";
    case CS_LATIN1:
    case CS_GB18030_MISLABELLED:
    default:
        return "ISO_IR 100";
    }
}

static const char *default_name(enum gen_cs cs, unsigned study)
{
    switch (cs) {
    case CS_LATIN1:
        return "Buc^Jérôme";
    case CS_UTF8:
        return "王^小明";
    default:
        return study % 2 ? "张三^三" : "王^小明";
    }
}

/* ------------------------------------------------------------ pixel data */

typedef struct gen_pix {
    unsigned rows, cols, frames;
    unsigned bps;   /* bytes per sample: 2, or 1 for US (8-bit only) */
    uint64_t bytes; /* rows * cols * bps * frames */
} gen_pix;

/* Picks rows x cols for about per_frame bytes: cols a power of two near
 * sqrt(pixels), rows = pixels / cols. */
static int pick_geometry(uint64_t per_frame, gen_pix *px)
{
    uint64_t pixels = per_frame / px->bps, cols = 1, rows;

    if (pixels == 0)
        pixels = 1;
    while (cols * cols < pixels && cols < 32768)
        cols *= 2;
    rows = pixels / cols;
    if (rows == 0)
        rows = 1;
    if (rows > 65535)
        return HR_ETOOBIG;
    px->rows = (unsigned)rows;
    px->cols = (unsigned)cols;
    return 0;
}

typedef struct gen_pat {
    unsigned x, y, f;
    uint16_t salt;
} gen_pat;

/* Fills n pixels (16-bit with 12 bits used, or 8-bit) with a cheap moving
 * pattern; p holds n * px->bps bytes. */
static void fill_pixels(void *p, size_t n, gen_pat *st, const gen_pix *px, int big_endian)
{
    uint16_t *p16 = p;
    uint8_t *p8 = p;
    unsigned x = st->x, y = st->y, f = st->f;
    size_t i;

    for (i = 0; i < n; i++) {
        uint16_t v =
            (uint16_t)((((x >> 4) ^ (y >> 4)) * 97u + x + 2u * y + 13u * f + st->salt) & 0x0FFFu);
        if (px->bps == 1)
            p8[i] = (uint8_t)(v >> 4);
        else
            p16[i] = big_endian ? __builtin_bswap16(v) : v;
        if (++x == px->cols) {
            x = 0;
            if (++y == px->rows) {
                y = 0;
                f++;
            }
        }
    }
    st->x = x;
    st->y = y;
    st->f = f;
}

static int write_pixels(gen_sink *s, const gen_pix *px, uint16_t *chunk, uint16_t salt, int be)
{
    uint64_t left = px->bytes / px->bps;
    gen_pat st = {0, 0, 0, salt};
    int rc;

    while (left > 0) {
        size_t n = left < GEN_PIX_CHUNK ? (size_t)left : GEN_PIX_CHUNK;
        fill_pixels(chunk, n, &st, px, be);
        rc = sink_data(s, chunk, n * px->bps);
        if (rc)
            return rc;
        left -= n;
    }
    return 0;
}

/* The smallest and largest stored values write_pixels() writes with salt,
 * from the same generator: of every pixel up to GEN_RANGE_SCAN pixels, of the
 * first GEN_RANGE_SCAN beyond (the pattern repeats; a window need not be exact
 * there). chunk holds GEN_PIX_CHUNK 16-bit samples. */
#define GEN_RANGE_SCAN (64u << 20)
static void pixel_range(const gen_pix *px, uint16_t *chunk, uint16_t salt, unsigned *lo,
                        unsigned *hi)
{
    uint64_t left = px->bytes / px->bps;
    gen_pat st = {0, 0, 0, salt};
    unsigned mn = 0xFFFF, mx = 0;

    if (left > GEN_RANGE_SCAN)
        left = GEN_RANGE_SCAN;
    while (left > 0) {
        size_t n = left < GEN_PIX_CHUNK ? (size_t)left : GEN_PIX_CHUNK;
        fill_pixels(chunk, n, &st, px, 0);
        for (size_t i = 0; i < n; i++) {
            unsigned v = px->bps == 1 ? ((uint8_t *)chunk)[i] : chunk[i];
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        left -= n;
    }
    *lo = mn <= mx ? mn : 0;
    *hi = mn <= mx ? mx : 0;
}

/* ---------------------------------------------------------------- content */

typedef struct gen_ctx {
    const gen_opts *o;
    const gen_modality *mod;
    gen_pix px;
    uint64_t uid_salt; /* from modality and prefix: distinct batches, distinct UIDs */
    uint16_t *chunk;
    char name[256];
    char institution[256];
} gen_ctx;

static void fmt(char *out, size_t cap, const char *f, unsigned v)
{
    snprintf(out, cap, f, v);
}

/* Synthetic but plausible 12-lead ECG: 72 bpm, P-QRS-T per beat, leads
 * derived with Einthoven/Goldberger relations. Values in units of 2.5 uV. */
static int32_t ecg_bump(int32_t t_ms, int32_t centre, int32_t width, int32_t amp)
{
    int64_t d = t_ms - centre;
    int64_t w2 = (int64_t)width * width;
    int64_t q = w2 + d * d; /* amp / (1 + (d/w)^2)^2 */

    if (d > 6 * width || d < -6 * width)
        return 0;
    return (int32_t)((int64_t)amp * w2 / q * w2 / q);
}

static void ecg_samples(int16_t *out, unsigned n, uint64_t seed)
{
    /* per precordial lead: R and S amplitude, T amplitude (uV) */
    static const int32_t v_r[6] = {200, 400, 700, 1100, 1300, 1000};
    static const int32_t v_s[6] = {900, 1300, 900, 500, 250, 100};
    static const int32_t v_t[6] = {-50, 150, 300, 350, 300, 250};
    const int32_t rr = 833; /* ms at 72 bpm */
    unsigned i, k;

    for (i = 0; i < n; i++) {
        int32_t t = (int32_t)(i * 2) + (int32_t)(seed % 100); /* 500 Hz */
        int32_t ph = t % rr, p, q, r, s, tw, lead_i, lead_ii;
        int16_t *row = out + (size_t)i * 12;

        p = ecg_bump(ph, 100, 25, 120);
        q = ecg_bump(ph, 190, 6, 80);
        r = ecg_bump(ph, 205, 8, 1000);
        s = ecg_bump(ph, 222, 7, 250);
        tw = ecg_bump(ph, 420, 45, 300);
        lead_i = p / 2 - q / 2 + (r * 6) / 10 - s / 2 + (tw * 2) / 3;
        lead_ii = p - q + r - s / 2 + tw;
        int32_t lv[12];
        lv[0] = lead_i;
        lv[1] = lead_ii;
        lv[2] = lead_ii - lead_i;        /* III */
        lv[3] = -(lead_i + lead_ii) / 2; /* aVR */
        lv[4] = lead_i - lead_ii / 2;    /* aVL */
        lv[5] = lead_ii - lead_i / 2;    /* aVF */
        for (k = 0; k < 6; k++)
            lv[6 + k] = p / 2 + (r * v_r[k]) / 1000 - (s * v_s[k]) / 250 - (q * v_s[k]) / 2000 +
                        (tw * v_t[k]) / 300;
        for (k = 0; k < 12; k++) {
            int32_t v = lv[k] * 2 / 5 + (int32_t)((i * 7 + k * 13) % 5) - 2; /* 2.5 uV/LSB */
            row[k] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        }
    }
}

static void add_ecg(gen_ds *ds, const gen_ctx *c, const char *date)
{
    static const char *const code[12] = {"2:1", "2:2", "2:61", "2:62", "2:63", "2:64",
                                         "2:3", "2:4", "2:5",  "2:6",  "2:7",  "2:8"};
    static const char *const meaning[12] = {"Lead I",   "Lead II",  "Lead III", "Lead aVR",
                                            "Lead aVL", "Lead aVF", "Lead V1",  "Lead V2",
                                            "Lead V3",  "Lead V4",  "Lead V5",  "Lead V6"};
    const unsigned nsamp = 5000; /* 10 s at 500 Hz */
    char dt[32];
    gen_el *wsq, *csq;
    gen_ds *w;
    int16_t *data;
    unsigned k;

    snprintf(dt, sizeof(dt), "%s083500", date);
    ds_str(ds, TAG(0x0008, 0x002A), "DT", dt);
    ds_seq(ds, TAG(0x0040, 0x0555)); /* AcquisitionContextSequence, type 2 */
    wsq = ds_seq(ds, TAG(0x5400, 0x0100));
    w = sq_item(ds, wsq);
    if (w == NULL)
        return;
    ds_str(w, TAG(0x003A, 0x0004), "CS", "ORIGINAL");
    ds_us(w, TAG(0x003A, 0x0005), 12);
    ds_ul(w, TAG(0x003A, 0x0010), nsamp);
    ds_str(w, TAG(0x003A, 0x001A), "DS", "500");
    ds_str(w, TAG(0x003A, 0x0020), "SH", "RHYTHM");
    csq = ds_seq(w, TAG(0x003A, 0x0200));
    for (k = 0; k < 12; k++) {
        gen_ds *ch = sq_item(w, csq);
        char label[16], num[8];
        if (ch == NULL)
            return;
        snprintf(label, sizeof(label), "%s", meaning[k] + 5);
        snprintf(num, sizeof(num), "%u", k + 1);
        ds_str(ch, TAG(0x003A, 0x0202), "IS", num);
        ds_str(ch, TAG(0x003A, 0x0203), "SH", label);
        ds_code(ch, TAG(0x003A, 0x0208), code[k], "MDC", meaning[k]);
        ds_str(ch, TAG(0x003A, 0x0210), "DS", "2.5");
        ds_code(ch, TAG(0x003A, 0x0211), "uV", "UCUM", "microvolt");
        ds_str(ch, TAG(0x003A, 0x0212), "DS", "1");
        ds_str(ch, TAG(0x003A, 0x0213), "DS", "0");
        ds_str(ch, TAG(0x003A, 0x0214), "DS", "0");
        ds_us(ch, TAG(0x003A, 0x021A), 16);
        ds_str(ch, TAG(0x003A, 0x0220), "DS", "0.05");
        ds_str(ch, TAG(0x003A, 0x0221), "DS", "150");
        if (ch->err)
            w->err = ch->err;
    }
    ds_us(w, TAG(0x5400, 0x1004), 16);
    ds_str(w, TAG(0x5400, 0x1006), "CS", "SS");
    data = malloc((size_t)nsamp * 12 * sizeof(*data));
    if (data == NULL) {
        ds->err = -ENOMEM;
        return;
    }
    ecg_samples(data, nsamp, c->o->seed);
    /* samples are native little-endian on the hosts we support */
    ds_bytes(w, TAG(0x5400, 0x1010), "OW", data, (size_t)nsamp * 24, 2);
    free(data);
    if (w->err)
        ds->err = w->err;
}

/* Which IOD an instance follows; decides the modality-specific modules. */
enum gen_iod {
    IOD_CT,
    IOD_MR,
    IOD_CR,
    IOD_DX,
    IOD_MG,
    IOD_US,
    IOD_USMF,
    IOD_XA,
    IOD_RF,
    IOD_NM,
    IOD_PT,
    IOD_SC,
    IOD_SCMF,
    IOD_ECG
};

static enum gen_iod iod_of(const char *m, const char *sop_class)
{
    static const struct {
        const char *m;
        enum gen_iod iod;
    } t[] = {{"CT", IOD_CT}, {"MR", IOD_MR}, {"CR", IOD_CR}, {"DX", IOD_DX},
             {"MG", IOD_MG}, {"US", IOD_US}, {"XA", IOD_XA}, {"RF", IOD_RF},
             {"NM", IOD_NM}, {"PT", IOD_PT}, {"SC", IOD_SC}, {"ECG", IOD_ECG}};
    size_t i;

    if (strcmp(sop_class, SOP_MF_GRAY_WORD_SC) == 0)
        return IOD_SCMF;
    if (strcmp(sop_class, SOP_US_MULTIFRAME) == 0)
        return IOD_USMF;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(m, t[i].m) == 0)
            return t[i].iod;
    return IOD_SC;
}

/* Adds every attribute except Pixel Data. */
static void add_attrs(gen_ds *ds, const gen_ctx *c, unsigned st, unsigned se, unsigned in,
                      const char *study_uid, const char *series_uid, const char *sop_uid,
                      const char *sop_class, const char *frame_uid)
{
    const gen_opts *o = c->o;
    const char *m = c->mod->name;
    enum gen_iod iod = iod_of(m, sop_class);
    int mf = iod == IOD_SCMF || iod == IOD_USMF || iod == IOD_NM;
    int sc = iod == IOD_SC || iod == IOD_SCMF;
    int xray = iod == IOD_DX || iod == IOD_MG;
    int xa = iod == IOD_XA || iod == IOD_RF;
    int us = iod == IOD_US || iod == IOD_USMF;
    int plane = iod == IOD_CT || iod == IOD_MR || iod == IOD_PT;
    int bits = c->px.bps == 1 ? 8 : (iod == IOD_PT || iod == IOD_NM) ? 16 : 12;
    const char *it;
    char tmp[128];

    ds_str(ds, TAG(0x0008, 0x0005), "CS", charset_term(o->cs));
    switch (iod) {
    case IOD_CT:
        it = "ORIGINAL\\PRIMARY\\AXIAL";
        break;
    case IOD_MR:
        it = "ORIGINAL\\PRIMARY\\OTHER";
        break;
    case IOD_NM:
        it = "ORIGINAL\\PRIMARY\\STATIC\\EMISSION";
        break;
    case IOD_XA:
    case IOD_RF:
        it = "ORIGINAL\\PRIMARY\\SINGLE PLANE";
        break;
    case IOD_SC:
    case IOD_SCMF:
        it = "DERIVED\\SECONDARY";
        break;
    case IOD_PT:
        it = "ORIGINAL\\PRIMARY";
        break;
    default:
        it = "ORIGINAL\\PRIMARY";
        break;
    }
    if (iod != IOD_ECG)
        ds_str(ds, TAG(0x0008, 0x0008), "CS", it);
    ds_str(ds, TAG(0x0008, 0x0012), "DA", o->study_date);
    ds_str(ds, TAG(0x0008, 0x0013), "TM", "083500");
    ds_str(ds, TAG(0x0008, 0x0016), "UI", sop_class);
    ds_str(ds, TAG(0x0008, 0x0018), "UI", sop_uid);
    ds_str(ds, TAG(0x0008, 0x0020), "DA", o->study_date);
    ds_str(ds, TAG(0x0008, 0x0021), "DA", o->study_date);
    ds_str(ds, TAG(0x0008, 0x0023), "DA", o->study_date);
    ds_str(ds, TAG(0x0008, 0x0030), "TM", "083000");
    ds_str(ds, TAG(0x0008, 0x0031), "TM", "083100");
    ds_str(ds, TAG(0x0008, 0x0033), "TM", "083500");
    if (iod == IOD_PT || xa || xray || iod == IOD_NM || us) {
        ds_str(ds, TAG(0x0008, 0x0022), "DA", o->study_date);
        ds_str(ds, TAG(0x0008, 0x0032), "TM", "083400");
    }
    if (o->accession != NULL && o->studies == 1)
        snprintf(tmp, sizeof(tmp), "%s", o->accession);
    else if (o->accession != NULL)
        snprintf(tmp, sizeof(tmp), "%.9s-%u", o->accession, st);
    else
        snprintf(tmp, sizeof(tmp), "A%05u%04u", (unsigned)(o->seed % 100000), st);
    ds_str(ds, TAG(0x0008, 0x0050), "SH", tmp);
    ds_str(ds, TAG(0x0008, 0x0060), "CS", m);
    if (sc)
        ds_str(ds, TAG(0x0008, 0x0064), "CS", "WSD");
    if (xray)
        ds_str(ds, TAG(0x0008, 0x0068), "CS", "FOR PRESENTATION");
    ds_str(ds, TAG(0x0008, 0x0070), "LO", "HUREN");
    ds_str(ds, TAG(0x0008, 0x0080), "LO", c->institution);
    ds_str(ds, TAG(0x0008, 0x0090), "PN", "LI^WEI");
    snprintf(tmp, sizeof(tmp), "%s study %u", m, st);
    ds_str(ds, TAG(0x0008, 0x1030), "LO", tmp);
    snprintf(tmp, sizeof(tmp), "%s series %u", m, se);
    ds_str(ds, TAG(0x0008, 0x103E), "LO", tmp);
    ds_str(ds, TAG(0x0008, 0x1090), "LO", "HUREN GEN");
    if (xray)
        ds_code(ds, TAG(0x0008, 0x2218), iod == IOD_MG ? "76752008" : "51185008", "SCT",
                iod == IOD_MG ? "Breast" : "Chest");
    ds_str(ds, TAG(0x0010, 0x0010), "PN", c->name);
    ds_str(ds, TAG(0x0010, 0x0020), "LO", o->patient_id);
    ds_str(ds, TAG(0x0010, 0x0021), "LO", "TOWNSHIP1");
    ds_str(ds, TAG(0x0010, 0x0030), "DA", "19700101");
    ds_str(ds, TAG(0x0010, 0x0040), "CS", iod == IOD_MG ? "F" : "M");
    if (iod != IOD_ECG)
        ds_str(ds, TAG(0x0018, 0x0015), "CS", c->mod->body_part);

    /* modality-specific acquisition attributes (group 0018) */
    switch (iod) {
    case IOD_CT:
        ds_str(ds, TAG(0x0018, 0x0050), "DS", "1.25");
        ds_str(ds, TAG(0x0018, 0x0060), "DS", "120");
        break;
    case IOD_MR:
        ds_str(ds, TAG(0x0018, 0x0020), "CS", "SE");
        ds_str(ds, TAG(0x0018, 0x0021), "CS", "NONE");
        ds_str(ds, TAG(0x0018, 0x0022), "CS", "");
        ds_str(ds, TAG(0x0018, 0x0023), "CS", "2D");
        ds_str(ds, TAG(0x0018, 0x0050), "DS", "5");
        ds_str(ds, TAG(0x0018, 0x0080), "DS", "500");
        ds_str(ds, TAG(0x0018, 0x0081), "DS", "15");
        ds_str(ds, TAG(0x0018, 0x0091), "IS", "1");
        break;
    case IOD_CR:
        ds_str(ds, TAG(0x0018, 0x5101), "CS", "PA");
        break;
    case IOD_DX:
    case IOD_MG:
    case IOD_XA:
    case IOD_RF:
        ds_str(ds, TAG(0x0018, 0x0060), "DS", "80");
        if (xa) {
            ds_str(ds, TAG(0x0018, 0x1150), "IS", "10");
            ds_str(ds, TAG(0x0018, 0x1151), "IS", "200");
            ds_str(ds, TAG(0x0018, 0x1152), "IS", "2");
            ds_str(ds, TAG(0x0018, 0x1155), "CS", "GR");
        } else {
            ds_str(ds, TAG(0x0018, 0x1164), "DS", "0.2\\0.2");
            ds_str(ds, TAG(0x0018, 0x7004), "CS", "SCINTILLATOR");
        }
        if (iod == IOD_XA) {
            ds_str(ds, TAG(0x0018, 0x1510), "DS", "0");
            ds_str(ds, TAG(0x0018, 0x1511), "DS", "0");
        }
        if (iod == IOD_MG) {
            gen_el *sq;
            gen_ds *item;
            ds_str(ds, TAG(0x0018, 0x1508), "CS", "MAMMOGRAPHIC");
            ds_str(ds, TAG(0x0040, 0x0318), "CS", "BREAST");
            sq = ds_seq(ds, TAG(0x0054, 0x0220)); /* ViewCodeSequence */
            item = sq_item(ds, sq);
            if (item != NULL) {
                ds_str(item, TAG(0x0008, 0x0100), "SH", "399162004");
                ds_str(item, TAG(0x0008, 0x0102), "SH", "SCT");
                ds_str(item, TAG(0x0008, 0x0104), "LO", "cranio-caudal");
                ds_seq(item, TAG(0x0054, 0x0222)); /* ViewModifierCodeSequence, type 2 */
                if (item->err)
                    ds->err = item->err;
            }
        }
        if (xray)
            ds_seq(ds, TAG(0x0040, 0x0555)); /* AcquisitionContextSequence, type 2 */
        break;
    case IOD_PT:
        ds_str(ds, TAG(0x0018, 0x0050), "DS", "4");
        ds_str(ds, TAG(0x0018, 0x1181), "CS", "NONE");
        ds_str(ds, TAG(0x0018, 0x1242), "IS", "300000");
        break;
    case IOD_NM:
        ds_str(ds, TAG(0x0018, 0x0070), "IS", "");
        ds_str(ds, TAG(0x0018, 0x1242), "IS", "300000");
        break;
    default:
        break;
    }
    if (iod == IOD_CT || iod == IOD_MR)
        ds_str(ds, TAG(0x0018, 0x5100), "CS", "HFS");

    ds_str(ds, TAG(0x0020, 0x000D), "UI", study_uid);
    ds_str(ds, TAG(0x0020, 0x000E), "UI", series_uid);
    fmt(tmp, sizeof(tmp), "%u", st);
    ds_str(ds, TAG(0x0020, 0x0010), "SH", tmp);
    fmt(tmp, sizeof(tmp), "%u", se);
    ds_str(ds, TAG(0x0020, 0x0011), "IS", tmp);
    if (plane)
        ds_str(ds, TAG(0x0020, 0x0012), "IS", "1");
    fmt(tmp, sizeof(tmp), "%u", in);
    ds_str(ds, TAG(0x0020, 0x0013), "IS", tmp);
    if (iod != IOD_ECG && !plane)
        ds_str(ds, TAG(0x0020, 0x0020), "CS", xray || iod == IOD_CR ? "P\\F" : "");
    if (xray)
        ds_str(ds, TAG(0x0020, 0x0062), "CS", iod == IOD_MG ? "R" : "U");
    if (plane) {
        snprintf(tmp, sizeof(tmp), "-125\\-125\\%d", -(int)in * 5);
        ds_str(ds, TAG(0x0020, 0x0032), "DS", tmp);
        ds_str(ds, TAG(0x0020, 0x0037), "DS", "1\\0\\0\\0\\1\\0");
        ds_str(ds, TAG(0x0020, 0x0052), "UI", frame_uid);
        ds_str(ds, TAG(0x0020, 0x1040), "LO", "");
    }
    if (iod == IOD_ECG) {
        add_ecg(ds, c, o->study_date);
        return;
    }

    /* Image Pixel module and friends (group 0028) */
    ds_us(ds, TAG(0x0028, 0x0002), 1);
    ds_str(ds, TAG(0x0028, 0x0004), "CS", "MONOCHROME2");
    if (mf) {
        fmt(tmp, sizeof(tmp), "%u", c->px.frames);
        ds_str(ds, TAG(0x0028, 0x0008), "IS", tmp);
        if (iod == IOD_NM) {
            ds_at(ds, TAG(0x0028, 0x0009), TAG(0x0054, 0x0010));
        } else {
            ds_at(ds, TAG(0x0028, 0x0009), TAG(0x0018, 0x1063));
            ds_str(ds, TAG(0x0018, 0x1063), "DS", "33.3");
        }
    }
    ds_us(ds, TAG(0x0028, 0x0010), (uint16_t)c->px.rows);
    ds_us(ds, TAG(0x0028, 0x0011), (uint16_t)c->px.cols);
    if (plane || iod == IOD_CR || iod == IOD_NM)
        ds_str(ds, TAG(0x0028, 0x0030), "DS", "0.5\\0.5");
    ds_us(ds, TAG(0x0028, 0x0100), (uint16_t)(c->px.bps * 8));
    ds_us(ds, TAG(0x0028, 0x0101), (uint16_t)bits);
    ds_us(ds, TAG(0x0028, 0x0102), (uint16_t)(bits - 1));
    ds_us(ds, TAG(0x0028, 0x0103), 0);
    if (xray || iod == IOD_SCMF)
        ds_str(ds, TAG(0x0028, 0x0301), "CS", "NO");
    if (xray || xa)
        ds_str(ds, TAG(0x0028, 0x1040), "CS", "LIN");
    if (xray)
        ds_bytes(ds, TAG(0x0028, 0x1041), "SS", "\x01\x00", 2, 2);
    /* a window over the values written (after the rescale below, PS3.3
     * C.11.2.1.2), so a viewer shows the image and not a black square */
    unsigned lo, hi;
    int intercept = iod == IOD_CT ? -1024 : 0;
    pixel_range(&c->px, c->chunk, (uint16_t)(st * 31 + se * 7 + in), &lo, &hi);
    snprintf(tmp, sizeof(tmp), "%g", (lo + hi) / 2.0 + intercept);
    ds_str(ds, TAG(0x0028, 0x1050), "DS", tmp);
    fmt(tmp, sizeof(tmp), "%u", hi - lo + 1 > 2 ? hi - lo + 1 : 2);
    ds_str(ds, TAG(0x0028, 0x1051), "DS", tmp);
    if (iod == IOD_CT || iod == IOD_PT || xray || iod == IOD_SCMF) {
        ds_str(ds, TAG(0x0028, 0x1052), "DS", iod == IOD_CT ? "-1024" : "0");
        ds_str(ds, TAG(0x0028, 0x1053), "DS", "1");
        if (xray || iod == IOD_SCMF)
            ds_str(ds, TAG(0x0028, 0x1054), "LO", "US");
    }
    if (xray)
        ds_str(ds, TAG(0x0028, 0x2110), "CS", "00");
    if (iod == IOD_PT) {
        ds_str(ds, TAG(0x0028, 0x0051), "CS", "");
        ds_seq(ds, TAG(0x0054, 0x0016));
        ds_us(ds, TAG(0x0054, 0x0081), (uint16_t)o->instances);
        ds_str(ds, TAG(0x0054, 0x1000), "CS", "STATIC\\IMAGE");
        ds_str(ds, TAG(0x0054, 0x1001), "CS", "BQML");
        ds_str(ds, TAG(0x0054, 0x1002), "CS", "EMISSION");
        ds_str(ds, TAG(0x0054, 0x1102), "CS", "NONE");
        ds_str(ds, TAG(0x0054, 0x1300), "DS", "0");
        ds_us(ds, TAG(0x0054, 0x1330), (uint16_t)in);
    }
    if (iod == IOD_NM) {
        uint16_t *vec = calloc(c->px.frames, sizeof(*vec));
        unsigned k;
        if (vec == NULL) {
            ds->err = -ENOMEM;
            return;
        }
        for (k = 0; k < c->px.frames; k++)
            vec[k] = 1;
        ds_bytes(ds, TAG(0x0054, 0x0010), "US", vec, (size_t)c->px.frames * 2, 2);
        free(vec);
        ds_us(ds, TAG(0x0054, 0x0011), 1);
        ds_seq(ds, TAG(0x0054, 0x0012));
        ds_seq(ds, TAG(0x0054, 0x0016));
        ds_us(ds, TAG(0x0054, 0x0021), 1);
        ds_seq(ds, TAG(0x0054, 0x0022));
    }
    if (iod == IOD_NM || iod == IOD_PT) {
        ds_seq(ds, TAG(0x0054, 0x0410)); /* PatientOrientationCodeSequence, type 2 */
        ds_seq(ds, TAG(0x0054, 0x0414)); /* PatientGantryRelationshipCodeSequence */
    }
    if (xray || iod == IOD_SCMF)
        ds_str(ds, TAG(0x2050, 0x0020), "CS", "IDENTITY");
}

/* Serialises the file meta group (with its group length) into b. */
static int build_meta(gen_buf *b, const char *sop_class, const char *sop_uid, const char *ts)
{
    static const gen_enc le = {1, 0};
    gen_ds meta = {0};
    gen_buf body = {0};
    uint8_t pre[132] = {0};
    int rc;

    memcpy(pre + 128, "DICM", 4);
    ds_bytes(&meta, TAG(0x0002, 0x0001), "OB", "\x00\x01", 2, 1);
    ds_str(&meta, TAG(0x0002, 0x0002), "UI", sop_class);
    ds_str(&meta, TAG(0x0002, 0x0003), "UI", sop_uid);
    ds_str(&meta, TAG(0x0002, 0x0010), "UI", ts);
    ds_str(&meta, TAG(0x0002, 0x0012), "UI", GEN_IMPL_CLASS_UID);
    ds_str(&meta, TAG(0x0002, 0x0013), "SH", GEN_IMPL_VERSION);
    ds_str(&meta, TAG(0x0002, 0x0016), "AE", "TOWNSHIP1");
    rc = ds_encode(&meta, &le, &body);
    if (rc)
        goto out;
    rc = buf_put(b, pre, sizeof(pre));
    if (rc)
        goto out;
    {
        gen_ds gl = {0};
        ds_ul(&gl, TAG(0x0002, 0x0000), (uint32_t)body.len);
        rc = ds_encode(&gl, &le, b);
        ds_free(&gl);
        if (rc)
            goto out;
    }
    rc = buf_put(b, body.p, body.len);
out:
    ds_free(&meta);
    free(body.p);
    return rc;
}

static int write_one(gen_ctx *c, unsigned st, unsigned se, unsigned in, const char *path)
{
    const gen_opts *o = c->o;
    gen_enc enc = {o->ts != TS_IMPLICIT, o->ts == TS_BIGENDIAN};
    char study_uid[72], series_uid[72], sop_uid[72], frame_uid[72], tmp_path[4200];
    const char *sop_class = c->mod->sop_class;
    int is_ecg = strcmp(c->mod->name, "ECG") == 0;
    gen_ds ds = {0};
    gen_buf head = {0}, body = {0};
    gen_sink s = {.fd = -1};
    int rc;

    make_uid(study_uid, sizeof(study_uid), o->seed, c->uid_salt, 1, st, 0, 0);
    make_uid(series_uid, sizeof(series_uid), o->seed, c->uid_salt, 2, st, se, 0);
    make_uid(sop_uid, sizeof(sop_uid), o->seed, c->uid_salt, 3, st, se, in);
    make_uid(frame_uid, sizeof(frame_uid), o->seed, c->uid_salt, 4, st, se, 0);
    if (!is_ecg && c->px.frames > 1 && strcmp(c->mod->name, "NM") != 0)
        sop_class = strcmp(c->mod->name, "US") == 0 ? SOP_US_MULTIFRAME : SOP_MF_GRAY_WORD_SC;

    snprintf(c->name, sizeof(c->name), "%s", "");
    rc = conv_text(o->cs, o->patient_name ? o->patient_name : default_name(o->cs, st), c->name,
                   sizeof(c->name));
    if (rc)
        goto out;
    rc = conv_text(o->cs, o->institution, c->institution, sizeof(c->institution));
    if (rc)
        goto out;

    add_attrs(&ds, c, st, se, in, study_uid, series_uid, sop_uid, sop_class, frame_uid);
    rc = build_meta(&head, sop_class, sop_uid, gen_ts_uids[o->ts]);
    if (rc)
        goto out;
    rc = ds_encode(&ds, &enc, &body);
    if (rc)
        goto out;
    if (!is_ecg) {
        const char *vr = c->px.bps == 1 ? "OB" : "OW";
        if (c->px.bytes > GEN_MAX_VL) {
            rc = HR_ETOOBIG;
            goto out;
        }
        rc = put_header(&body, &enc, TAG(0x7FE0, 0x0010), vr, (uint32_t)c->px.bytes, NULL);
        if (rc)
            goto out;
    }

    snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", path);
    s.fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0) {
        rc = -errno;
        goto out;
    }
    s.out = malloc(GEN_IO_BUF);
    if (s.out == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = sink_raw(&s, head.p, head.len);
    if (rc)
        goto out;
    if (o->ts == TS_DEFLATED) {
        rc = sink_flush(&s);
        if (rc)
            goto out;
        if (deflateInit2(&s.z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            rc = -ENOMEM;
            goto out;
        }
        s.z_init = 1;
        s.deflate = 1;
    }
    rc = sink_data(&s, body.p, body.len);
    if (rc)
        goto out;
    if (!is_ecg) {
        rc = write_pixels(&s, &c->px, c->chunk, (uint16_t)(st * 31 + se * 7 + in), enc.big_endian);
        if (rc)
            goto out;
    }
    rc = sink_finish(&s);
    if (rc)
        goto out;
    if (close(s.fd) != 0) {
        s.fd = -1;
        rc = -errno;
        goto out;
    }
    s.fd = -1;
    if (rename(tmp_path, path) != 0) {
        rc = -errno;
        goto out;
    }
    if (o->print_uids)
        printf("%s %s %s\n", study_uid, series_uid, sop_uid);
out:
    if (s.fd >= 0) {
        close(s.fd);
        unlink(tmp_path);
    }
    if (s.z_init)
        deflateEnd(&s.z);
    free(s.out);
    ds_free(&ds);
    free(head.p);
    free(body.p);
    return rc;
}

/* ------------------------------------------------------------------- main */

static int mkdir_p(const char *dir)
{
    char p[4096];
    size_t i, n = strlen(dir);

    if (n == 0 || n >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char saved = p[i];
            p[i] = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return -errno;
            p[i] = saved;
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: huren-gen --out DIR [options]\n"
               "  --studies N --series N --instances N   hierarchy (per parent; default 1 each)\n"
               "  --bytes B        pixel data bytes per instance (default 16384; 16-bit images)\n"
               "  --frames F       frames per instance (F > 1: multi-frame SC / US multi-frame)\n"
               "  --size-total B   one object of about B bytes in total (streamed)\n"
               "  --modality M     CT MR CR DX US XA NM PT SC MG RF ECG (default CT)\n"
               "  --ts T           implicit | explicit | bigendian | deflated (default explicit)\n"
               "  --charset C      latin1 | utf8 | gb18030 | gb18030-mislabelled (default latin1)\n"
               "  --patient-id ID --patient-name NAME(UTF-8) --accession A --institution TEXT\n"
               "  --study-date YYYYMMDD --seed S --prefix NAME --print-uids\n"
               "files: DIR/<prefix>s<study>_se<series>_i<instance>.dcm\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(s, &end, 10);
    return (errno || end == s || *end != '\0' || s[0] == '-') ? HR_ECONFIG : 0;
}

static int parse_count(const char *s, unsigned *v)
{
    uint64_t x;

    if (parse_u64(s, &x) || x == 0 || x > 1000000)
        return HR_ECONFIG;
    *v = (unsigned)x;
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_OUT = 256,
        O_STUDIES,
        O_SERIES,
        O_INST,
        O_BYTES,
        O_FRAMES,
        O_MOD,
        O_TS,
        O_CS,
        O_PID,
        O_PNAME,
        O_ACC,
        O_INSTIT,
        O_DATE,
        O_SEED,
        O_TOTAL,
        O_PREFIX,
        O_PRINT,
        O_HELP
    };
    static const struct option lo[] = {
        {"out", required_argument, 0, O_OUT},
        {"studies", required_argument, 0, O_STUDIES},
        {"series", required_argument, 0, O_SERIES},
        {"instances", required_argument, 0, O_INST},
        {"bytes", required_argument, 0, O_BYTES},
        {"frames", required_argument, 0, O_FRAMES},
        {"modality", required_argument, 0, O_MOD},
        {"ts", required_argument, 0, O_TS},
        {"charset", required_argument, 0, O_CS},
        {"patient-id", required_argument, 0, O_PID},
        {"patient-name", required_argument, 0, O_PNAME},
        {"accession", required_argument, 0, O_ACC},
        {"institution", required_argument, 0, O_INSTIT},
        {"study-date", required_argument, 0, O_DATE},
        {"seed", required_argument, 0, O_SEED},
        {"size-total", required_argument, 0, O_TOTAL},
        {"prefix", required_argument, 0, O_PREFIX},
        {"print-uids", no_argument, 0, O_PRINT},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    gen_opts o = {
        .prefix = "",
        .modality = "CT",
        .patient_id = "P0001",
        .institution = "Township 1 Hospital",
        .study_date = "20240501",
        .studies = 1,
        .series = 1,
        .instances = 1,
        .frames = 1,
        .bytes = 16384,
        .seed = 1,
        .ts = TS_EXPLICIT,
        .cs = CS_LATIN1,
    };
    gen_ctx c = {.o = &o};
    unsigned st, se, in;
    char path[4096];
    size_t i;
    int opt, rc = 0, frames_set = 0;

    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case O_OUT:
            o.out = optarg;
            break;
        case O_STUDIES:
            rc = parse_count(optarg, &o.studies);
            break;
        case O_SERIES:
            rc = parse_count(optarg, &o.series);
            break;
        case O_INST:
            rc = parse_count(optarg, &o.instances);
            break;
        case O_FRAMES:
            rc = parse_count(optarg, &o.frames);
            frames_set = 1;
            break;
        case O_BYTES:
            rc = parse_u64(optarg, &o.bytes);
            if (rc == 0 && o.bytes < 2)
                rc = HR_ECONFIG;
            break;
        case O_TOTAL:
            rc = parse_u64(optarg, &o.size_total);
            if (rc == 0 && o.size_total < 4096)
                rc = HR_ECONFIG;
            break;
        case O_SEED:
            rc = parse_u64(optarg, &o.seed);
            break;
        case O_MOD:
            o.modality = optarg;
            break;
        case O_TS:
            if (strcmp(optarg, "implicit") == 0)
                o.ts = TS_IMPLICIT;
            else if (strcmp(optarg, "explicit") == 0)
                o.ts = TS_EXPLICIT;
            else if (strcmp(optarg, "bigendian") == 0)
                o.ts = TS_BIGENDIAN;
            else if (strcmp(optarg, "deflated") == 0)
                o.ts = TS_DEFLATED;
            else
                rc = HR_ECONFIG;
            break;
        case O_CS:
            if (strcmp(optarg, "latin1") == 0)
                o.cs = CS_LATIN1;
            else if (strcmp(optarg, "utf8") == 0)
                o.cs = CS_UTF8;
            else if (strcmp(optarg, "gb18030") == 0)
                o.cs = CS_GB18030;
            else if (strcmp(optarg, "gb18030-mislabelled") == 0)
                o.cs = CS_GB18030_MISLABELLED;
            else
                rc = HR_ECONFIG;
            break;
        case O_PID:
            o.patient_id = optarg;
            break;
        case O_PNAME:
            o.patient_name = optarg;
            break;
        case O_ACC:
            o.accession = optarg;
            break;
        case O_INSTIT:
            o.institution = optarg;
            break;
        case O_DATE:
            o.study_date = optarg;
            if (strlen(optarg) != 8 || strspn(optarg, "0123456789") != 8)
                rc = HR_ECONFIG;
            break;
        case O_PREFIX:
            o.prefix = optarg;
            break;
        case O_PRINT:
            o.print_uids = 1;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "huren-gen: invalid value for --%s: '%s'\n", lo[opt - O_OUT].name,
                    optarg);
            return 2;
        }
    }
    if (o.out == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    for (i = 0; i < sizeof(gen_modalities) / sizeof(gen_modalities[0]); i++)
        if (strcasecmp(o.modality, gen_modalities[i].name) == 0)
            c.mod = &gen_modalities[i];
    if (c.mod == NULL) {
        fprintf(stderr, "huren-gen: unknown modality '%s'\n", o.modality);
        return 2;
    }

    if (o.size_total) {
        /* one object; header overhead is about 1.5 KB */
        uint64_t pix = o.size_total > 2048 ? o.size_total - 2048 : 2;
        o.studies = o.series = o.instances = 1;
        if (!frames_set)
            o.frames = pix > 8u * 1024 * 1024 ? (unsigned)(pix / (512 * 512 * 2)) : 1;
        if (!frames_set && o.frames > 1 && strcasecmp(o.modality, "US") == 0)
            o.frames *= 2; /* 8-bit samples */
        o.bytes = pix;
    }
    c.uid_salt = 0xCBF29CE484222325ull; /* FNV-1a of "<modality>/<prefix>" */
    for (const char *q = c.mod->name; *q; q++)
        c.uid_salt = (c.uid_salt ^ (uint8_t)*q) * 0x100000001B3ull;
    c.uid_salt = (c.uid_salt ^ '/') * 0x100000001B3ull;
    for (const char *q = o.prefix; *q; q++)
        c.uid_salt = (c.uid_salt ^ (uint8_t)*q) * 0x100000001B3ull;
    c.px.frames = o.frames;
    c.px.bps = strcasecmp(c.mod->name, "US") == 0 ? 1 : 2;
    rc = pick_geometry(o.bytes / o.frames, &c.px);
    if (rc == 0 && o.size_total && o.frames > 1 && !frames_set) {
        c.px.rows = c.px.cols = 512;
    }
    c.px.bytes = (uint64_t)c.px.rows * c.px.cols * c.px.bps * c.px.frames;
    c.px.bytes += c.px.bytes & 1; /* odd 8-bit images: one pad byte */
    if (rc == 0 && c.px.bytes > GEN_MAX_VL)
        rc = HR_ETOOBIG;
    if (rc) {
        fprintf(stderr, "huren-gen: pixel data too large (must stay below 4 GB)\n");
        return 2;
    }
    if (strcasecmp(c.mod->name, "ECG") == 0)
        c.px.frames = 0;

    rc = mkdir_p(o.out);
    if (rc) {
        fprintf(stderr, "huren-gen: %s: %s\n", o.out, hr_strerror(rc));
        return 1;
    }
    c.chunk = malloc(GEN_PIX_CHUNK * sizeof(uint16_t));
    if (c.chunk == NULL) {
        fprintf(stderr, "huren-gen: out of memory\n");
        return 1;
    }
    for (st = 1; st <= o.studies && rc == 0; st++)
        for (se = 1; se <= o.series && rc == 0; se++)
            for (in = 1; in <= o.instances && rc == 0; in++) {
                snprintf(path, sizeof(path), "%s/%ss%u_se%u_i%u.dcm", o.out, o.prefix, st, se, in);
                rc = write_one(&c, st, se, in, path);
                if (rc)
                    fprintf(stderr, "huren-gen: %s: %s\n", path, hr_strerror(rc));
            }
    free(c.chunk);
    if (fflush(stdout) != 0)
        rc = -EIO;
    return rc ? 1 : 0;
}
