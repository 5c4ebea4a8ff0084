/* WADO-RS sidecars (see meta.h): a bounded streaming walk over the stored file copies the
 * element headers and non-bulk values into a compact dataset (sequences and items
 * re-encoded with undefined length, bulk values replaced by a 32-byte marker naming
 * their byte range), which dcm_ds_parse() and dcm_json_from_ds() turn into JSON; the
 * same walk records the Pixel Data fragments for the frame table. */
#include "meta.h"
#include "../common/hr_assert.h"
#include "../common/hr_buf.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_io.h"
#include "../common/hr_log.h"
#include "../dicom/dataset.h"
#include "../dicom/dcm_attrs.h"
#include "../dicom/dicom_json.h"
#include "../dicom/dict.h"
#include "../dicom/elem.h"
#include "../dicom/uids.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define UNDEF_LEN      DCM_UNDEF_LEN
#define RD_BUF         (64 * 1024)
#define RD_SEEK_READ   4096 /* bytes read after a skip (next header only, most likely) */
#define MARK_LEN       28   /* marker bytes before the 4-byte bulk index */
#define PLACEHOLDER    32
#define EOI_TAIL       10 /* bytes searched for a JPEG EOI at the end of a fragment */
#define TAG_FLOAT_PIX  0x7FE00008u
#define TAG_DOUBLE_PIX 0x7FE00009u
#define TAG_EOT        0x7FE00001u
#define TAG_EOT_LEN    0x7FE00002u

/* .frames format (little-endian), see docs/index-schema.md */
#define FR_MAGIC   "HRFRAMES"
#define FR_VERSION 1
#define FR_HDR     136

static const char k_mod[] = "meta";

/* ---- small helpers ------------------------------------------------------------------ */

static int is_sha(const char *sha)
{
    size_t i = 0;
    for (; sha[i] && i < 65; i++)
        if (!hr_is_hex_lower(sha[i]))
            return 0;
    return i == 64;
}

static int is_binary_vr(const char *vr)
{
    static const char k[] = "OBODOFOLOVOWUN";
    for (size_t i = 0; i + 1 < sizeof(k); i += 2)
        if (vr[0] == k[i] && vr[1] == k[i + 1])
            return 1;
    return 0;
}

static int is_pixel_tag(uint32_t tag)
{
    return tag == DCM_TAG_PIXEL_DATA || tag == TAG_FLOAT_PIX || tag == TAG_DOUBLE_PIX;
}

/* pread until n bytes or end of file; bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- buffered reader with seeking ----------------------------------------------------- */

typedef struct rdr {
    int fd;
    uint64_t size; /* file size */
    uint64_t pos;  /* next byte to consume */
    uint64_t boff; /* file offset of buf[0] */
    size_t blen;
    uint8_t *buf; /* RD_BUF bytes */
} rdr;

/* Makes [pos, pos + need) available in buf (need <= RD_BUF). 0, HR_ETRUNC, -errno. */
static int rd_fill(rdr *r, size_t need)
{
    if (r->pos >= r->boff && r->pos - r->boff + need <= r->blen)
        return 0;
    if (r->pos > r->size || r->size - r->pos < need)
        return HR_ETRUNC;
    /* sequential: a full buffer; after a skip: a little (the next header, most likely) */
    size_t want = r->pos == r->boff + r->blen ? RD_BUF : RD_SEEK_READ;
    if (want < need)
        want = need;
    if (want > r->size - r->pos)
        want = (size_t)(r->size - r->pos);
    ssize_t n = pread_full(r->fd, r->buf, want, r->pos);
    if (n < 0)
        return (int)n;
    r->boff = r->pos;
    r->blen = (size_t)n;
    return (size_t)n < need ? HR_ETRUNC : 0;
}

/* Copies n bytes at pos into dst and advances. */
static int rd_read(rdr *r, void *dst, size_t n)
{
    uint8_t *d = dst;
    if (r->pos > r->size || r->size - r->pos < n)
        return HR_ETRUNC;
    if (r->pos >= r->boff && r->pos < r->boff + r->blen) {
        size_t have = (size_t)(r->boff + r->blen - r->pos);
        size_t k = have < n ? have : n;
        memcpy(d, r->buf + (r->pos - r->boff), k);
        d += k;
        n -= k;
        r->pos += k;
    }
    if (n == 0)
        return 0;
    if (n > RD_BUF / 2) {
        ssize_t got = pread_full(r->fd, d, n, r->pos);
        if (got < 0)
            return (int)got;
        if ((size_t)got < n)
            return HR_ETRUNC;
        r->pos += n;
        return 0;
    }
    int rc = rd_fill(r, n);
    if (rc)
        return rc;
    memcpy(d, r->buf + (r->pos - r->boff), n);
    r->pos += n;
    return 0;
}

static int rd_skip(rdr *r, uint64_t n)
{
    if (r->pos > r->size || r->size - r->pos < n)
        return HR_ETRUNC;
    r->pos += n;
    return 0;
}

/* Where a walk level ends: end, the defined length of an enclosing item or sequence, or
 * the end of the file (size). A header or value running past it, or an undefined-length
 * container still open there, is truncated data when end is the end of the file, else
 * malformed (dicom/elem.h). */
typedef struct wlim {
    uint64_t end, size;
} wlim;

static int overrun(wlim l)
{
    return l.end == l.size ? HR_ETRUNC : HR_EPARSE;
}

/* Decodes the element header at r->pos (inside l) with the element core and moves past
 * it. 0, the core's HR_EPARSE, overrun(l), -errno. */
static int read_hdr(rdr *r, wlim l, int expl, int big, dcm_elem_hdr *h)
{
    size_t need = 8;
    for (;;) {
        if (l.end - r->pos < need)
            return overrun(l);
        int rc = rd_fill(r, need);
        if (rc)
            return rc;
        rc = dcm_elem_read(r->buf + (r->pos - r->boff), need, expl, big, h);
        if (rc == DCM_ELEM_MORE) {
            need = h->hdr_len;
            continue;
        }
        if (rc)
            return rc;
        r->pos += h->hdr_len;
        return 0;
    }
}

/* Reads the preamble, "DICM" and group 0002; leaves pos at the dataset. ts cap 65. */
static int read_fmi(rdr *r, char *ts)
{
    uint8_t h[12];
    ts[0] = '\0';
    r->pos = 128;
    int rc = rd_read(r, h, 4);
    if (rc)
        return rc;
    if (memcmp(h, "DICM", 4) != 0)
        return HR_EPARSE;
    for (;;) {
        if (r->size - r->pos < 8)
            break; /* empty dataset */
        rc = rd_fill(r, 8);
        if (rc)
            return rc;
        if (hr_rd16(r->buf + (r->pos - r->boff), 0) != 0x0002)
            break;
        if (r->pos - 132 > STO_META_MAX_FMI)
            return HR_ETOOBIG;
        dcm_elem_hdr eh;
        rc = read_hdr(r, (wlim){r->size, r->size}, 1, 0, &eh);
        if (rc)
            return rc;
        uint32_t tag = eh.tag, len = eh.len;
        if (len == UNDEF_LEN || len > STO_META_MAX_FMI)
            return HR_EPARSE; /* no sequences in the meta group */
        if (tag == 0x00020010u) {
            char v[DCM_UI_MAX + 1];
            if (len >= sizeof(v))
                return HR_EPARSE;
            rc = rd_read(r, v, len);
            if (rc)
                return rc;
            while (len > 0 && (v[len - 1] == '\0' || v[len - 1] == ' '))
                len--;
            v[len] = '\0';
            if (len >= DCM_UI_MAX)
                return HR_EPARSE;
            memcpy(ts, v, len + 1);
        } else {
            rc = rd_skip(r, len);
            if (rc)
                return rc;
        }
    }
    return ts[0] ? 0 : HR_EPARSE;
}

/* ---- the walk ------------------------------------------------------------------------ */

typedef struct rangev {
    sto_range *v;
    size_t n, cap, max;
} rangev;

static int rangev_add(rangev *a, uint64_t off, uint64_t len)
{
    if (a->n == a->cap) {
        if (a->n >= a->max)
            return HR_ETOOBIG;
        size_t nc = a->cap ? a->cap * 2 : 16;
        if (nc > a->max)
            nc = a->max;
        sto_range *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n].offset = off;
    a->v[a->n].length = len;
    a->n++;
    return 0;
}

/* A top-level element, or an item of a top-level sequence, in the compact dataset. */
typedef struct span {
    uint32_t tag;      /* element tag (items: 0) */
    int split;         /* a top-level sequence converted item by item */
    uint64_t count;    /* elements + items inside, itself included */
    size_t start, end; /* bytes of the compact dataset (items: their content) */
    size_t item0, n_items;
} span;

typedef struct spanv {
    span *v;
    size_t n, cap;
} spanv;

typedef struct walker {
    rdr r;
    hr_buf out; /* the compact dataset */
    uint8_t marker[MARK_LEN];
    rangev bulk;
    uint64_t count; /* elements + items emitted */
    spanv top;      /* top-level elements */
    spanv items;    /* items of top-level sequences */
    /* top-level pixel data */
    enum sto_pixel_kind pixel;
    uint64_t pix_off, pix_len;
    sto_range bot;       /* Basic Offset Table item value */
    uint64_t first_item; /* file offset of the first fragment's item tag */
    rangev frags;        /* fragment values */
    sto_range eot, eotl; /* (7FE0,0001) and (7FE0,0002) values */
} walker;

static int span_add(walker *w, spanv *a, const span *sp)
{
    if (a->n == a->cap) {
        if (w->top.n + w->items.n >= STO_META_MAX_ELEMENTS)
            return HR_ETOOBIG;
        size_t nc = a->cap ? a->cap * 2 : 64;
        span *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = *sp;
    return 0;
}

static int emit_hdr(walker *w, uint32_t tag, const char *vr, uint32_t len, int big)
{
    uint8_t h[12];
    size_t n = 8;
    hr_wr16(h, (uint16_t)(tag >> 16), big);
    hr_wr16(h + 2, (uint16_t)tag, big);
    if (!vr) {
        hr_wr32(h + 4, len, big);
    } else if (dcm_vr_long_length(vr)) {
        h[4] = (uint8_t)vr[0];
        h[5] = (uint8_t)vr[1];
        h[6] = h[7] = 0;
        hr_wr32(h + 8, len, big);
        n = 12;
    } else {
        h[4] = (uint8_t)vr[0];
        h[5] = (uint8_t)vr[1];
        hr_wr16(h + 6, (uint16_t)len, big);
    }
    return hr_buf_append(&w->out, h, n);
}

/* Records a bulk range and emits the element with the marker as its value. vr is the
 * VR the element will have when parsed (explicit: the one written; implicit: NULL, the
 * dictionary's, and never big-endian). */
static int emit_bulk(walker *w, uint32_t tag, const char *vr, int big, uint64_t off, uint64_t len)
{
    uint8_t v[PLACEHOLDER];
    int rc = rangev_add(&w->bulk, off, len);
    if (rc)
        return rc;
    memcpy(v, w->marker, MARK_LEN);
    hr_wr32(v + MARK_LEN, (uint32_t)(w->bulk.n - 1), 0);
    if (big && vr) {
        /* dcm_ds_parse swaps binary values per VR unit: pre-swap so it reads v back */
        size_t unit = dcm_vr_swap_unit(vr);
        for (size_t o = 0; unit > 1 && o + unit <= sizeof(v); o += unit)
            for (size_t i = 0; i < unit / 2; i++) {
                uint8_t t = v[o + i];
                v[o + i] = v[o + unit - 1 - i];
                v[o + unit - 1 - i] = t;
            }
    }
    rc = emit_hdr(w, tag, vr, PLACEHOLDER, big);
    if (!rc)
        rc = hr_buf_append(&w->out, v, sizeof(v));
    return rc;
}

static int walk_list(walker *w, wlim l, int undef_item, int expl, int big, int depth);

/* A sequence's items; record: keep each item's content span (top-level sequences). */
static int walk_seq(walker *w, wlim l, int undef, int expl, int big, int depth, int record)
{
    dcm_elem_hdr h;
    int rc;
    if (depth + 1 > DCM_ELEM_MAX_DEPTH)
        return HR_ETOOBIG;
    for (;;) {
        if (w->r.pos == l.end)
            return undef ? overrun(l) : emit_hdr(w, DCM_TAG_SEQ_DELIM, NULL, 0, big);
        rc = read_hdr(&w->r, l, 0, big, &h);
        if (rc)
            return rc;
        if (h.tag == DCM_TAG_SEQ_DELIM)
            return undef ? emit_hdr(w, DCM_TAG_SEQ_DELIM, NULL, 0, big) : HR_EPARSE;
        if (h.tag != DCM_TAG_ITEM)
            return HR_EPARSE;
        rc = emit_hdr(w, DCM_TAG_ITEM, NULL, UNDEF_LEN, big);
        if (rc)
            return rc;
        span it = {.start = w->out.len, .count = w->count++};
        if (h.len == UNDEF_LEN) {
            rc = walk_list(w, l, 1, expl, big, depth + 1);
            it.end = w->out.len - 8; /* before the item delimiter walk_list wrote */
        } else {
            if (h.len > l.end - w->r.pos)
                return overrun(l);
            rc = walk_list(w, (wlim){w->r.pos + h.len, l.size}, 0, expl, big, depth + 1);
            it.end = w->out.len;
            if (!rc)
                rc = emit_hdr(w, DCM_TAG_ITEM_DELIM, NULL, 0, big);
        }
        it.count = w->count - it.count;
        if (!rc && record)
            rc = span_add(w, &w->items, &it);
        if (rc)
            return rc;
    }
}

/* Encapsulated Pixel Data (undefined length): pos is at the first item. */
static int walk_frags(walker *w, uint32_t tag, const char *evr, wlim l, int big, int depth)
{
    dcm_elem_hdr h;
    uint64_t vstart = w->r.pos, item_at;
    int first = 1, rc;
    for (;;) {
        item_at = w->r.pos;
        rc = read_hdr(&w->r, l, 0, big, &h);
        if (rc)
            return rc;
        if (h.tag == DCM_TAG_SEQ_DELIM)
            break;
        if (h.tag != DCM_TAG_ITEM || h.len == UNDEF_LEN)
            return HR_EPARSE;
        if (h.len > l.end - w->r.pos)
            return overrun(l);
        if (depth == 0) {
            if (first) {
                w->bot.offset = w->r.pos;
                w->bot.length = h.len;
                w->first_item = w->r.pos + h.len;
            } else {
                rc = rangev_add(&w->frags, w->r.pos, h.len);
                if (rc)
                    return rc;
            }
        }
        first = 0;
        rc = rd_skip(&w->r, h.len);
        if (rc)
            return rc;
    }
    if (first)
        return HR_EPARSE; /* no Basic Offset Table item (PS3.5 A.4) */
    if (depth == 0 && tag == DCM_TAG_PIXEL_DATA) {
        w->pixel = STO_PIXEL_ENCAPSULATED;
        w->pix_off = vstart;
        w->pix_len = item_at - vstart;
    }
    return emit_bulk(w, tag, evr, big, vstart, item_at - vstart); /* VR as in the file */
}

static int walk_list(walker *w, wlim l, int undef_item, int expl, int big, int depth)
{
    dcm_elem_hdr h;
    enum dcm_value_kind kind;
    char vr[3];
    int rc;
    for (;;) {
        if (w->r.pos == l.end)
            return undef_item ? overrun(l) : 0;
        rc = read_hdr(&w->r, l, expl, big, &h);
        if (rc)
            return rc;
        uint32_t tag = h.tag, len = h.len;
        if (tag == DCM_TAG_ITEM_DELIM)
            return undef_item ? emit_hdr(w, DCM_TAG_ITEM_DELIM, NULL, 0, big) : HR_EPARSE;
        if (DCM_TAG_GROUP(tag) == 0xFFFE)
            return HR_EPARSE;
        rc = dcm_elem_value(&h, expl, big, 0, &kind, vr);
        if (rc)
            return rc;
        int seq = kind == DCM_VALUE_SEQ || kind == DCM_VALUE_SEQ_IMPLICIT;
        /* VR to write in headers: a UN sequence stays UN (its items are implicit VR LE) */
        const char *evr = !expl ? NULL : kind == DCM_VALUE_SEQ_IMPLICIT ? h.vr : vr;
        uint64_t vpos = w->r.pos;
        /* top level: the element's span, for the JSON conversion by parts */
        span el = {.tag = tag,
                   .split = depth == 0 && kind == DCM_VALUE_SEQ, /* same-encoding items */
                   .start = w->out.len,
                   .count = w->count++,
                   .item0 = w->items.n};
        wlim vl = len == UNDEF_LEN ? l : (wlim){vpos + len, l.size};
        /* the items of a UN sequence are implicit VR LE (PS3.5 6.2.2) */
        int iexpl = kind == DCM_VALUE_SEQ ? expl : 0, ibig = kind == DCM_VALUE_SEQ ? big : 0;
        if (len != UNDEF_LEN && len > l.end - vpos) {
            return overrun(l);
        } else if (kind == DCM_VALUE_FRAGMENTS) {
            rc = walk_frags(w, tag, evr, l, big, depth);
        } else if (seq) {
            rc = emit_hdr(w, tag, evr, UNDEF_LEN, big);
            if (!rc)
                rc = walk_seq(w, vl, len == UNDEF_LEN, iexpl, ibig, depth, el.split);
        } else if (DCM_TAG_ELEMENT(tag) == 0x0000) {
            /* group lengths are not part of the JSON model */
            rc = rd_skip(&w->r, len);
            w->count--;
            continue;
        } else if (is_binary_vr(vr) && len > 0 && (len > STO_META_BULK_MIN || is_pixel_tag(tag))) {
            if (depth == 0 && is_pixel_tag(tag) && w->pixel == STO_PIXEL_NONE) {
                w->pixel = STO_PIXEL_NATIVE;
                w->pix_off = vpos;
                w->pix_len = len;
            }
            rc = emit_bulk(w, tag, evr, big, vpos, len);
            if (!rc)
                rc = rd_skip(&w->r, len);
        } else {
            rc = emit_hdr(w, tag, evr, len, big);
            if (!rc && len)
                rc = hr_buf_reserve(&w->out, len);
            if (!rc && len)
                rc = rd_read(&w->r, w->out.data + w->out.len, len);
            if (!rc)
                w->out.len += len;
        }
        if (rc)
            return rc;
        if (depth == 0 && (tag == TAG_EOT || tag == TAG_EOT_LEN) && len != UNDEF_LEN) {
            sto_range *t = tag == TAG_EOT ? &w->eot : &w->eotl;
            t->offset = vpos;
            t->length = len;
        }
        if (depth == 0) {
            el.end = w->out.len;
            el.count = w->count - el.count;
            el.n_items = w->items.n - el.item0;
            rc = span_add(w, &w->top, &el);
            if (rc)
                return rc;
        }
    }
}

/* ---- JSON ----------------------------------------------------------------------------- */

typedef struct uri_ctx {
    const walker *w;
    char prefix[256];
    char uri[320];
} uri_ctx;

static const char *bulk_uri(void *ud, const dcm_elem *e, unsigned depth)
{
    uri_ctx *u = ud;
    (void)depth;
    if (e->len != PLACEHOLDER || !e->value || memcmp(e->value, u->w->marker, MARK_LEN) != 0)
        return NULL;
    uint32_t i = hr_rd32(e->value + MARK_LEN, 0);
    if (i >= u->w->bulk.n)
        return NULL;
    const sto_range *r = &u->w->bulk.v[i];
    snprintf(u->uri, sizeof(u->uri), "%s/bulk/%llu-%llu", u->prefix, (unsigned long long)r->offset,
             (unsigned long long)r->length);
    return u->uri;
}

static int get_uid(const dcm_ds *ds, uint32_t tag, char *out)
{
    int rc = dcm_ds_get_string(ds, tag, out, DCM_UI_MAX);
    return rc || !dcm_uid_valid(out) ? HR_EMISSING : 0;
}

static int span_cmp(const void *a, const void *b)
{
    uint32_t x = ((const span *)a)->tag, y = ((const span *)b)->tag;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Conversion to JSON by parts, so that dataset.h's per-parse limits
 * (DCM_DS_MAX_ELEMENTS) apply to a batch of top-level elements or to one item of a
 * top-level sequence (Per-frame Functional Groups of thousands of frames), not to the
 * whole dataset; the members are written as text in tag order. */
typedef struct jconv {
    walker *w;
    const char *ts;     /* syntax of the compact dataset */
    const dcm_elem *cs; /* top-level (0008,0005), or NULL */
    dcm_json_opts opts;
    hr_buf js;    /* JSON text */
    hr_buf chunk; /* scratch: bytes of one part */
    int n_members;
} jconv;

static int text(jconv *j, const char *s, size_t n)
{
    return hr_buf_append(&j->js, s, n);
}

/* Parses the part in j->chunk and converts it; the top-level character set is added
 * when the part has none (so its text converts as within the whole dataset) and its
 * member is dropped again from the result. */
static int part_json(jconv *j, json_t **out)
{
    dcm_ds *ds = NULL;
    *out = NULL;
    int rc = dcm_ds_parse(j->chunk.data, j->chunk.len, j->ts, STO_META_MAX_HEADER, &ds);
    int added = 0;
    if (!rc && j->cs && !dcm_ds_find(ds, DCM_TAG_CHARSET)) {
        rc = dcm_ds_put_stringn(ds, DCM_TAG_CHARSET, "CS", (const char *)j->cs->value, j->cs->len);
        added = 1;
    }
    if (!rc)
        rc = dcm_json_from_ds(ds, &j->opts, out);
    if (!rc && added)
        json_object_del(*out, "00080005");
    dcm_ds_free(ds);
    return rc;
}

/* Writes the members of a part's object (no braces), comma-separated. */
static int members(jconv *j, json_t *obj)
{
    int rc = 0;
    char *s = json_dumps(obj, JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    if (n > 2) {
        if (j->n_members)
            rc = text(j, ",", 1);
        if (!rc)
            rc = text(j, s + 1, n - 2);
        j->n_members++;
    }
    free(s);
    return rc;
}

static int chunk_span(jconv *j, const span *sp)
{
    return hr_buf_append(&j->chunk, j->w->out.data + sp->start, sp->end - sp->start);
}

/* Elements top[a..b) (not split) as one part. */
static int batch(jconv *j, size_t a, size_t b)
{
    json_t *obj = NULL;
    int rc = 0;
    if (a == b)
        return 0;
    hr_buf_reset(&j->chunk);
    for (size_t i = a; !rc && i < b; i++)
        rc = chunk_span(j, &j->w->top.v[i]);
    if (!rc)
        rc = part_json(j, &obj);
    if (!rc)
        rc = members(j, obj);
    json_decref(obj);
    return rc;
}

/* A top-level sequence, item by item: {"vr":"SQ","Value":[{...},...]}. */
static int split_seq(jconv *j, const span *sq)
{
    char key[40];
    int rc;
    snprintf(key, sizeof(key), "%s\"%08X\":{\"vr\":\"SQ\"", j->n_members ? "," : "", sq->tag);
    rc = text(j, key, strlen(key));
    j->n_members++;
    if (!rc && sq->n_items)
        rc = text(j, ",\"Value\":[", 10);
    for (size_t i = 0; !rc && i < sq->n_items; i++) {
        json_t *obj = NULL;
        char *s = NULL;
        hr_buf_reset(&j->chunk);
        rc = chunk_span(j, &j->w->items.v[sq->item0 + i]);
        if (!rc)
            rc = part_json(j, &obj);
        if (!rc && !(s = json_dumps(obj, JSON_COMPACT)))
            rc = -ENOMEM;
        if (!rc && i)
            rc = text(j, ",", 1);
        if (!rc)
            rc = text(j, s, strlen(s));
        free(s);
        json_decref(obj);
    }
    if (!rc)
        rc = text(j, sq->n_items ? "]}" : "}", sq->n_items ? 2 : 1);
    return rc;
}

#define BATCH_COUNT 2048 /* elements + items per part, half of DCM_DS_MAX_ELEMENTS */

/* The top-level elements with tags in want[0..n) as one dataset (caller frees). */
static int pick(walker *w, const char *ts, const uint32_t *want, size_t n, dcm_ds **out)
{
    hr_buf b;
    hr_buf_init(&b, STO_META_MAX_HEADER);
    int rc = 0;
    for (size_t i = 0; !rc && i < w->top.n; i++) {
        const span *sp = &w->top.v[i];
        for (size_t k = 0; !rc && k < n; k++)
            if (sp->tag == want[k] && !sp->split)
                rc = hr_buf_append(&b, w->out.data + sp->start, sp->end - sp->start);
    }
    if (!rc)
        rc = dcm_ds_parse(b.data, b.len, ts, STO_META_MAX_HEADER, out);
    hr_buf_free(&b);
    return rc;
}

static int make_json(walker *w, const char *ts, char **json, size_t *len)
{
    static const uint32_t k_uids[] = {DCM_TAG_CHARSET, 0x00080018u, 0x0020000Du, 0x0020000Eu};
    char st[DCM_UI_MAX], se[DCM_UI_MAX], sop[DCM_UI_MAX];
    uri_ctx u = {.w = w};
    jconv j = {.w = w, .ts = ts, .opts = {bulk_uri, &u}};
    dcm_ds *head = NULL;
    hr_buf_init(&j.js, STO_META_MAX_JSON);
    hr_buf_init(&j.chunk, STO_META_MAX_HEADER);
    if (w->top.n > 1)
        qsort(w->top.v, w->top.n, sizeof(w->top.v[0]), span_cmp);
    int rc = 0;
    for (size_t i = 1; !rc && i < w->top.n; i++)
        if (w->top.v[i].tag == w->top.v[i - 1].tag)
            rc = HR_EPARSE; /* duplicate element */
    if (!rc)
        rc = pick(w, ts, k_uids, HR_ARRAY_LEN(k_uids), &head);
    if (!rc)
        rc = get_uid(head, 0x0020000Du, st);
    if (!rc)
        rc = get_uid(head, 0x0020000Eu, se);
    if (!rc)
        rc = get_uid(head, 0x00080018u, sop);
    if (rc)
        goto out;
    snprintf(u.prefix, sizeof(u.prefix), "/dicomweb/studies/%s/series/%s/instances/%s", st, se,
             sop);
    j.cs = dcm_ds_find(head, DCM_TAG_CHARSET);
    rc = text(&j, "{", 1);
    size_t from = 0;
    uint64_t count = 0;
    for (size_t i = 0; !rc && i < w->top.n; i++) {
        const span *sp = &w->top.v[i];
        if (sp->split || count + sp->count > BATCH_COUNT) {
            rc = batch(&j, from, i);
            from = i;
            count = 0;
        }
        if (!rc && sp->split) {
            rc = split_seq(&j, sp);
            from = i + 1;
            continue;
        }
        count += sp->count;
    }
    if (!rc)
        rc = batch(&j, from, w->top.n);
    if (!rc)
        rc = text(&j, "}", 2); /* with the NUL */
    if (rc)
        goto out;
    *len = j.js.len - 1;
    *json = (char *)j.js.data;
    j.js.data = NULL;
out:
    dcm_ds_free(head);
    hr_buf_free(&j.js);
    hr_buf_free(&j.chunk);
    return rc;
}

/* ---- frame table ------------------------------------------------------------------------- */

typedef struct ftab {
    enum sto_pixel_kind kind;
    uint64_t frame_bits;
    uint32_t n_frames;
    rangev ranges;   /* encapsulated: ranges of all frames, in frame order */
    uint32_t *index; /* encapsulated: n_frames + 1 first-range indexes */
} ftab;

static int elem_uint(const dcm_ds *ds, uint32_t tag, uint64_t dflt, uint64_t *out)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    double v;
    if (!e || dcm_elem_empty(e)) {
        *out = dflt;
        return 0;
    }
    if (dcm_elem_number(e, 0, &v) || !(v >= 0 && v <= 4294967295.0) || v != (double)(uint64_t)v)
        return HR_EPARSE;
    *out = (uint64_t)v;
    return 0;
}

/* Index of the fragment whose item tag is at offset rel from the first fragment item,
 * or -1. Fragments are in file order. */
static long frag_at(const walker *w, uint64_t rel)
{
    size_t lo = 0, hi = w->frags.n;
    if (rel > UINT64_MAX - w->first_item)
        return -1;
    uint64_t want = w->first_item + rel;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t item = w->frags.v[mid].offset - 8;
        if (item < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->frags.n && w->frags.v[lo].offset - 8 == want ? (long)lo : -1;
}

/* Reads a table value (len bytes at r) of entries of unit bytes into a new buffer. */
static int read_table(const walker *w, const sto_range *r, uint32_t n, size_t unit, uint8_t **out)
{
    *out = NULL;
    if (r->length != (uint64_t)n * unit)
        return HR_EMISMATCH;
    uint8_t *b = malloc(r->length ? (size_t)r->length : 1);
    if (!b)
        return -ENOMEM;
    ssize_t got = pread_full(w->r.fd, b, (size_t)r->length, r->offset);
    if (got < 0 || (uint64_t)got != r->length) {
        free(b);
        return got < 0 ? (int)got : HR_ETRUNC;
    }
    *out = b;
    return 0;
}

static int index_alloc(ftab *f)
{
    f->index = calloc((size_t)f->n_frames + 1, sizeof(*f->index));
    return f->index ? 0 : -ENOMEM;
}

/* Extended Offset Table: one fragment per frame, frame length from the lengths table. */
static int frames_eot(const walker *w, ftab *f)
{
    uint8_t *off = NULL, *len = NULL;
    int rc = read_table(w, &w->eot, f->n_frames, 8, &off);
    if (!rc)
        rc = read_table(w, &w->eotl, f->n_frames, 8, &len);
    if (!rc)
        rc = index_alloc(f);
    for (uint32_t i = 0; !rc && i < f->n_frames; i++) {
        long k = frag_at(w, hr_rd64le(off + 8 * (size_t)i));
        uint64_t l = hr_rd64le(len + 8 * (size_t)i);
        if (k < 0 || l > w->frags.v[k].length || l == 0) {
            rc = HR_EMISMATCH;
            break;
        }
        f->index[i] = i;
        rc = rangev_add(&f->ranges, w->frags.v[k].offset, l);
    }
    if (!rc)
        f->index[f->n_frames] = f->n_frames;
    free(off);
    free(len);
    return rc;
}

/* Basic Offset Table: frame i starts at the fragment at offset[i]. */
static int frames_bot(const walker *w, ftab *f)
{
    uint8_t *off = NULL;
    int rc = read_table(w, &w->bot, f->n_frames, 4, &off);
    if (!rc)
        rc = index_alloc(f);
    long prev = -1;
    for (uint32_t i = 0; !rc && i < f->n_frames; i++) {
        long k = frag_at(w, hr_rd32(off + 4 * (size_t)i, 0));
        if (k <= prev || (i == 0 && k != 0)) {
            rc = HR_EMISMATCH;
            break;
        }
        f->index[i] = (uint32_t)k;
        prev = k;
    }
    free(off);
    if (rc)
        return rc;
    f->index[f->n_frames] = (uint32_t)w->frags.n;
    for (size_t k = 0; !rc && k < w->frags.n; k++)
        rc = rangev_add(&f->ranges, w->frags.v[k].offset, w->frags.v[k].length);
    return rc;
}

/* More fragments than frames and no offset table: a frame ends with the fragment holding a
 * JPEG EOI/EOC marker (FF D9) in its last bytes (as pydicom does). */
static int frames_eoi(const walker *w, ftab *f)
{
    int rc = index_alloc(f);
    uint32_t fr = 0;
    for (size_t k = 0; !rc && k < w->frags.n; k++) {
        const sto_range *g = &w->frags.v[k];
        uint8_t tail[EOI_TAIL];
        size_t n = g->length < EOI_TAIL ? (size_t)g->length : EOI_TAIL;
        ssize_t got = pread_full(w->r.fd, tail, n, g->offset + g->length - n);
        if (got < 0 || (size_t)got != n)
            return got < 0 ? (int)got : HR_ETRUNC;
        int eoi = 0;
        for (size_t i = 0; i + 1 < n; i++)
            eoi |= tail[i] == 0xFF && tail[i + 1] == 0xD9;
        if (eoi) {
            if (fr >= f->n_frames)
                return HR_EMISMATCH;
            f->index[++fr] = (uint32_t)(k + 1);
        }
        rc = rangev_add(&f->ranges, g->offset, g->length);
    }
    if (!rc && (fr != f->n_frames || f->index[fr] != w->frags.n))
        rc = HR_EMISMATCH;
    return rc;
}

static void ftab_reset(ftab *f)
{
    free(f->index);
    f->index = NULL;
    f->ranges.n = 0;
}

static void ftab_unknown(ftab *f, const char *why)
{
    ftab_reset(f);
    hr_warn(k_mod, "frames cannot be located: %s", why);
    f->kind = STO_PIXEL_UNKNOWN;
}

static int derive_frames(const walker *w, const dcm_ds *ds, ftab *f)
{
    uint64_t rows, cols, spp, bits, nf;
    f->kind = w->pixel;
    f->ranges.max = STO_META_MAX_FRAGMENTS;
    if (f->kind == STO_PIXEL_NONE)
        return 0;
    if (elem_uint(ds, 0x00280008u, 1, &nf) || nf == 0 || nf > STO_META_MAX_FRAGMENTS) {
        ftab_unknown(f, "Number of Frames invalid");
        return 0;
    }
    f->n_frames = (uint32_t)nf;
    if (f->kind == STO_PIXEL_NATIVE) {
        if (elem_uint(ds, 0x00280010u, 0, &rows) || elem_uint(ds, 0x00280011u, 0, &cols) ||
            elem_uint(ds, 0x00280002u, 1, &spp) || elem_uint(ds, 0x00280100u, 0, &bits) || !rows ||
            !cols || !spp || !bits) {
            ftab_unknown(f, "Rows, Columns, Samples per Pixel or Bits Allocated invalid");
            return 0;
        }
        /* each factor < 2^32 after elem_uint: check the product */
        uint64_t fb;
        if (__builtin_mul_overflow(rows, cols, &fb) || __builtin_mul_overflow(fb, spp, &fb) ||
            __builtin_mul_overflow(fb, bits, &fb) || w->pix_len > UINT64_MAX / 8) {
            ftab_unknown(f, "frame size overflows");
            return 0;
        }
        f->frame_bits = fb;
        uint64_t avail = w->pix_len * 8 / fb;
        if (avail < nf) {
            hr_warn(k_mod, "Pixel Data holds %llu of %llu frames", (unsigned long long)avail,
                    (unsigned long long)nf);
            if (avail == 0) {
                ftab_unknown(f, "Pixel Data shorter than one frame");
                return 0;
            }
            f->n_frames = (uint32_t)avail;
        }
        return 0;
    }
    /* encapsulated */
    int rc = HR_EMISMATCH;
    if (w->frags.n == 0) {
        ftab_unknown(f, "no fragments");
        return 0;
    }
    if (w->eot.length && w->eotl.length) {
        rc = frames_eot(w, f);
        if (rc && rc != HR_EMISMATCH && rc != HR_ETRUNC)
            return rc;
        if (rc) {
            hr_warn(k_mod, "Extended Offset Table inconsistent with the fragments: ignored");
            ftab_reset(f);
        }
    }
    if (rc && w->bot.length) {
        rc = frames_bot(w, f);
        if (rc && rc != HR_EMISMATCH && rc != HR_ETRUNC)
            return rc;
        if (rc) {
            hr_warn(k_mod, "Basic Offset Table inconsistent with the fragments: ignored");
            ftab_reset(f);
        }
    }
    if (rc && (w->frags.n == nf || nf == 1)) {
        rc = index_alloc(f);
        for (size_t k = 0; !rc && k < w->frags.n; k++)
            rc = rangev_add(&f->ranges, w->frags.v[k].offset, w->frags.v[k].length);
        for (uint32_t i = 0; !rc && i <= f->n_frames; i++)
            f->index[i] = nf == 1 ? (i ? (uint32_t)w->frags.n : 0) : i;
        return rc;
    }
    if (rc && w->frags.n > nf) {
        rc = frames_eoi(w, f);
        if (rc && rc != HR_EMISMATCH && rc != HR_ETRUNC)
            return rc;
    }
    if (rc)
        ftab_unknown(f, "fragments cannot be attributed to frames");
    return 0;
}

/* Serialises the frame table (format: docs/index-schema.md). */
static int encode_frames(const walker *w, const ftab *f, const char *ts, uint64_t ds_off,
                         uint8_t **out, size_t *out_len)
{
    size_t nr = f->kind == STO_PIXEL_ENCAPSULATED ? f->ranges.n : 0;
    size_t body = f->kind == STO_PIXEL_ENCAPSULATED ? nr * 12 + ((size_t)f->n_frames + 1) * 4 : 0;
    uint8_t *p = calloc(1, FR_HDR + body);
    if (!p)
        return -ENOMEM;
    memcpy(p, FR_MAGIC, 8);
    hr_wr32(p + 8, FR_VERSION, 0);
    hr_wr32(p + 12, (uint32_t)f->kind, 0);
    hr_wr64le(p + 16, w->r.size);
    hr_wr64le(p + 24, ds_off);
    hr_wr64le(p + 32, f->kind == STO_PIXEL_NONE ? 0 : w->pix_off);
    hr_wr64le(p + 40, f->kind == STO_PIXEL_NONE ? 0 : w->pix_len);
    hr_wr64le(p + 48, f->kind == STO_PIXEL_NATIVE ? f->frame_bits : 0);
    hr_wr32(p + 56, f->kind == STO_PIXEL_NONE ? 0 : f->n_frames, 0);
    hr_wr32(p + 60, (uint32_t)nr, 0);
    memcpy(p + 64, ts, strlen(ts)); /* < 65, NUL-padded (a 64-char UID fills it) */
    uint8_t *b = p + FR_HDR;
    for (size_t i = 0; i < nr; i++) {
        hr_wr64le(b + 12 * i, f->ranges.v[i].offset);
        hr_wr32(b + 12 * i + 8, (uint32_t)f->ranges.v[i].length, 0);
    }
    for (size_t i = 0; nr && i <= f->n_frames; i++)
        hr_wr32(b + nr * 12 + 4 * i, f->index[i], 0);
    hr_wr32(p + 128, (uint32_t)crc32(0L, b, (uInt)body), 0);
    hr_wr32(p + 132, (uint32_t)crc32(0L, p, 132), 0);
    *out = p;
    *out_len = FR_HDR + body;
    return 0;
}

/* ---- derive / build ----------------------------------------------------------------------- */

int sto_meta_derive(int fd, const char *sha, char **json, size_t *json_len, uint8_t **frames,
                    size_t *frames_len)
{
    /* Samples per Pixel, Number of Frames, Rows, Columns, Bits Allocated */
    static const uint32_t k_image[] = {0x00280002u, 0x00280008u, 0x00280010u, 0x00280011u,
                                       0x00280100u};
    walker w;
    ftab f;
    dcm_ds *ds = NULL;
    struct stat st;
    char ts[DCM_UI_MAX];
    int rc;
    memset(&w, 0, sizeof(w));
    memset(&f, 0, sizeof(f));
    *json = NULL;
    *frames = NULL;
    hr_buf_init(&w.out, STO_META_MAX_HEADER);
    w.bulk.max = STO_META_MAX_ELEMENTS;
    w.frags.max = STO_META_MAX_FRAGMENTS;
    w.r.fd = fd;
    if (!is_sha(sha)) {
        rc = HR_EPARSE;
        goto out;
    }
    hr_hex_decode(sha, MARK_LEN, w.marker); /* is_sha(): cannot fail */
    if (fstat(fd, &st)) {
        rc = -errno;
        goto out;
    }
    w.r.size = (uint64_t)st.st_size;
    w.r.buf = malloc(RD_BUF);
    if (!w.r.buf) {
        rc = -ENOMEM;
        goto out;
    }
    rc = read_fmi(&w.r, ts);
    if (rc)
        goto out;
    uint64_t ds_off = w.r.pos;
    const dcm_ts_info *ti = dcm_transfer_syntax(ts);
    if (!ti || ti->deflated) {
        rc = HR_EUNSUP;
        goto out;
    }
    rc = walk_list(&w, (wlim){w.r.size, w.r.size}, 0, ti->explicit_vr, ti->big_endian, 0);
    if (rc)
        goto out;
    /* encapsulated syntaxes are explicit VR LE apart from the pixel data fragments */
    const char *parse_ts = ti->encapsulated ? DCM_TS_EXPLICIT_LE : ts;
    rc = make_json(&w, parse_ts, json, json_len);
    if (rc)
        goto out;
    rc = pick(&w, parse_ts, k_image, HR_ARRAY_LEN(k_image), &ds);
    if (rc)
        goto out;
    rc = derive_frames(&w, ds, &f);
    if (rc)
        goto out;
    rc = encode_frames(&w, &f, ts, ds_off, frames, frames_len);
out:
    if (rc) {
        free(*json);
        *json = NULL;
    }
    dcm_ds_free(ds);
    free(f.index);
    free(f.ranges.v);
    free(w.bulk.v);
    free(w.frags.v);
    free(w.top.v);
    free(w.items.v);
    free(w.r.buf);
    hr_buf_free(&w.out);
    return rc;
}

/* Writes a sidecar under a temp name in its directory, then renames it into place. */
static int write_sidecar(const sto_objstore *s, const char *sha, const char *ext, const void *p,
                         size_t n)
{
    static atomic_ulong seq;
    char dst[STO_PATH_MAX], tmp[STO_PATH_MAX];
    int rc = sto_objstore_meta_dir(s, sha);
    if (rc)
        return rc;
    sto_objstore_meta_path(s, sha, ext, dst);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%lu", dst, (long)getpid(),
             (unsigned long)atomic_fetch_add(&seq, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    rc = hr_write_all(fd, p, n);
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, dst))
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

int sto_meta_build(const sto_objstore *s, const char *sha)
{
    char path[STO_PATH_MAX], *json = NULL;
    uint8_t *frames = NULL;
    size_t jl = 0, fl = 0;
    int rc, fd = -1;
    if (!is_sha(sha))
        return HR_EPARSE;
    sto_objstore_path(s, sha, path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = sto_meta_derive(fd, sha, &json, &jl, &frames, &fl);
    close(fd);
    if (rc)
        goto out;
    rc = write_sidecar(s, sha, ".json", json, jl);
    if (!rc)
        rc = write_sidecar(s, sha, ".frames", frames, fl);
out:
    free(json);
    free(frames);
    return rc;
}

int sto_meta_ensure(const sto_objstore *s, const char *sha, int *built)
{
    char p[STO_PATH_MAX];
    struct stat st;
    int have;
    if (built)
        *built = 0;
    if (!is_sha(sha))
        return HR_EPARSE;
    sto_objstore_meta_path(s, sha, ".json", p);
    have = stat(p, &st) == 0;
    sto_objstore_meta_path(s, sha, ".frames", p);
    have = have && stat(p, &st) == 0;
    if (have)
        return 0;
    int rc = sto_meta_build(s, sha);
    if (!rc && built)
        *built = 1;
    return rc;
}

/* ---- readers ---------------------------------------------------------------------------- */

/* Reads a whole file of at most max bytes into a new NUL-terminated buffer;
 * an empty or oversized one is HR_EPARSE here. */
static int slurp(const char *path, size_t max, uint8_t **out, size_t *len)
{
    int rc = hr_read_file(path, max, out, len);
    return rc == HR_ETOOBIG ? HR_EPARSE : rc;
}

static int read_json_file(const sto_objstore *s, const char *sha, char **json, size_t *len)
{
    char path[STO_PATH_MAX];
    uint8_t *b = NULL;
    size_t n = 0;
    json_error_t err;
    sto_objstore_meta_path(s, sha, ".json", path);
    int rc = slurp(path, STO_META_MAX_JSON, &b, &n);
    if (rc)
        return rc;
    json_t *j = json_loadb((const char *)b, n, JSON_ALLOW_NUL, &err);
    int ok = j && json_is_object(j);
    json_decref(j);
    if (!ok) {
        free(b);
        return HR_EPARSE;
    }
    *json = (char *)b;
    *len = n;
    return 0;
}

int sto_meta_read_json(const sto_objstore *s, const char *sha, char **json, size_t *len)
{
    *json = NULL;
    *len = 0;
    if (!is_sha(sha))
        return HR_EPARSE;
    int rc = read_json_file(s, sha, json, len);
    if (rc == 0)
        return 0;
    if (rc != -ENOENT)
        hr_warn(k_mod, "%s.json unreadable (%s): rebuilding", sha, hr_strerror(rc));
    rc = sto_meta_build(s, sha);
    if (rc)
        return rc;
    return read_json_file(s, sha, json, len);
}

int sto_meta_json_file(const sto_objstore *s, const char *sha, char *path, uint64_t *size)
{
    char *json = NULL;
    size_t len = 0;
    int rc = sto_meta_read_json(s, sha, &json, &len);
    free(json);
    if (rc)
        return rc;
    sto_objstore_meta_path(s, sha, ".json", path);
    *size = len;
    return 0;
}

int sto_meta_dataset_offset(const sto_objstore *s, const char *sha, uint64_t *offset, char *ts)
{
    char path[STO_PATH_MAX];
    struct stat st;
    rdr r = {.fd = -1};
    int rc;
    if (!is_sha(sha))
        return HR_EPARSE;
    sto_objstore_path(s, sha, path);
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0)
        return -errno;
    r.buf = malloc(RD_BUF);
    if (!r.buf) {
        rc = -ENOMEM;
        goto out;
    }
    if (fstat(r.fd, &st)) {
        rc = -errno;
        goto out;
    }
    r.size = (uint64_t)st.st_size;
    rc = read_fmi(&r, ts);
    if (!rc)
        *offset = r.pos;
out:
    free(r.buf);
    close(r.fd);
    return rc;
}

struct sto_frames {
    sto_pixel_info info;
    uint64_t frame_bits;
    sto_range *ranges; /* n_ranges */
    uint32_t n_ranges;
    uint32_t *index; /* n_frames + 1 (encapsulated) */
};

void sto_frames_free(sto_frames *t)
{
    if (!t)
        return;
    free(t->ranges);
    free(t->index);
    free(t);
}

int sto_frames_parse(const uint8_t *p, size_t n, uint64_t object_size, sto_frames **out)
{
    sto_frames *t = NULL;
    int rc = HR_EPARSE;
    *out = NULL;
    if (n < FR_HDR || memcmp(p, FR_MAGIC, 8) != 0 || hr_rd32(p + 8, 0) != FR_VERSION ||
        hr_rd32(p + 132, 0) != (uint32_t)crc32(0L, p, 132))
        return HR_EPARSE;
    uint32_t kind = hr_rd32(p + 12, 0), nf = hr_rd32(p + 56, 0), nr = hr_rd32(p + 60, 0);
    uint64_t size = hr_rd64le(p + 16), ds_off = hr_rd64le(p + 24), off = hr_rd64le(p + 32),
             len = hr_rd64le(p + 40), fbits = hr_rd64le(p + 48);
    if (kind > STO_PIXEL_UNKNOWN || nf > STO_META_MAX_FRAGMENTS || nr > STO_META_MAX_FRAGMENTS)
        return HR_EPARSE;
    int enc = kind == STO_PIXEL_ENCAPSULATED;
    size_t body = enc ? (size_t)nr * 12 + ((size_t)nf + 1) * 4 : 0;
    if (n != FR_HDR + body || (!enc && nr) ||
        hr_rd32(p + 128, 0) != (uint32_t)crc32(0L, p + FR_HDR, (uInt)body))
        return HR_EPARSE;
    if (size != object_size || ds_off > size || off > size || len > size - off)
        return HR_EPARSE;
    if (kind != STO_PIXEL_NONE && off < ds_off)
        return HR_EPARSE;
    if (kind == STO_PIXEL_NONE && (nf || off || len))
        return HR_EPARSE;
    if (kind == STO_PIXEL_NATIVE &&
        (nf == 0 || fbits == 0 || len > UINT64_MAX / 8 || fbits > len * 8 / nf))
        return HR_EPARSE;
    if (enc && (nf == 0 || nr == 0))
        return HR_EPARSE;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->info.kind = (enum sto_pixel_kind)kind;
    memcpy(t->info.ts, p + 64, 64);
    t->info.ts[64] = '\0';
    if (!dcm_uid_valid(t->info.ts))
        goto out;
    for (size_t i = strlen(t->info.ts); i < 64; i++)
        if (p[64 + i])
            goto out;
    t->info.object_size = size;
    t->info.dataset_offset = ds_off;
    t->info.value_offset = off;
    t->info.value_length = len;
    t->info.n_frames = kind == STO_PIXEL_UNKNOWN ? 0 : nf;
    t->frame_bits = fbits;
    if (enc) {
        const uint8_t *b = p + FR_HDR;
        t->n_ranges = nr;
        t->ranges = malloc((size_t)nr * sizeof(*t->ranges));
        t->index = malloc(((size_t)nf + 1) * sizeof(*t->index));
        if (!t->ranges || !t->index) {
            rc = -ENOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < nr; i++) {
            uint64_t o = hr_rd64le(b + 12 * (size_t)i);
            uint64_t l = hr_rd32(b + 12 * (size_t)i + 8, 0);
            if (o < off || o > off + len || l > off + len - o || l == 0)
                goto out;
            t->ranges[i].offset = o;
            t->ranges[i].length = l;
        }
        for (uint32_t i = 0; i <= nf; i++) {
            uint32_t k = hr_rd32(b + (size_t)nr * 12 + 4 * (size_t)i, 0);
            if ((i == 0 && k != 0) || (i > 0 && k <= t->index[i - 1]) || k > nr ||
                (i == nf && k != nr))
                goto out;
            t->index[i] = k;
        }
    }
    rc = 0;
out:
    if (rc) {
        sto_frames_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int load_frames_file(const sto_objstore *s, const char *sha, sto_frames **out)
{
    char path[STO_PATH_MAX];
    struct stat st;
    uint8_t *b = NULL;
    size_t n = 0;
    sto_objstore_path(s, sha, path);
    if (stat(path, &st))
        return -errno;
    sto_objstore_meta_path(s, sha, ".frames", path);
    size_t max = FR_HDR + (size_t)STO_META_MAX_FRAGMENTS * 16 + 4;
    int rc = slurp(path, max, &b, &n);
    if (rc)
        return rc;
    rc = sto_frames_parse(b, n, (uint64_t)st.st_size, out);
    free(b);
    return rc;
}

int sto_frames_load(const sto_objstore *s, const char *sha, sto_frames **out)
{
    *out = NULL;
    if (!is_sha(sha))
        return HR_EPARSE;
    int rc = load_frames_file(s, sha, out);
    if (rc == 0 || rc == -ENOMEM)
        return rc;
    char path[STO_PATH_MAX];
    struct stat st;
    sto_objstore_path(s, sha, path);
    if (stat(path, &st))
        return -errno; /* no object: nothing to rebuild from */
    if (rc != -ENOENT)
        hr_warn(k_mod, "%s.frames invalid (%s): rebuilding", sha, hr_strerror(rc));
    rc = sto_meta_build(s, sha);
    if (rc)
        return rc;
    return load_frames_file(s, sha, out);
}

const sto_pixel_info *sto_frames_info(const sto_frames *t)
{
    return &t->info;
}

int sto_frames_get(const sto_frames *t, uint32_t n, sto_frame *out)
{
    const sto_pixel_info *in = &t->info;
    memset(out, 0, sizeof(*out));
    if (in->kind == STO_PIXEL_UNKNOWN)
        return HR_EUNSUP;
    if (in->kind == STO_PIXEL_NONE || n == 0 || n > in->n_frames)
        return HR_ENOTFOUND;
    snprintf(out->ts, sizeof(out->ts), "%s", in->ts);
    out->n_frames = in->n_frames;
    if (in->kind == STO_PIXEL_NATIVE) {
        /* validated: n_frames * frame_bits <= 8 * value_length */
        uint64_t start = (uint64_t)(n - 1) * t->frame_bits;
        out->ranges = malloc(sizeof(*out->ranges));
        if (!out->ranges)
            return -ENOMEM;
        out->n_ranges = 1;
        out->bit_offset = (unsigned)(start % 8);
        out->bits = t->frame_bits;
        out->ranges[0].offset = in->value_offset + start / 8;
        out->ranges[0].length = (out->bit_offset + t->frame_bits + 7) / 8;
        return 0;
    }
    uint32_t a = t->index[n - 1], b = t->index[n];
    out->encapsulated = 1;
    out->ranges = malloc((size_t)(b - a) * sizeof(*out->ranges));
    if (!out->ranges)
        return -ENOMEM;
    out->n_ranges = b - a;
    for (uint32_t i = a; i < b; i++) {
        out->ranges[i - a] = t->ranges[i];
        out->bits += 8 * t->ranges[i].length;
    }
    return 0;
}

int sto_meta_frame(const sto_objstore *s, const char *sha, uint32_t n, sto_frame *out)
{
    sto_frames *t = NULL;
    memset(out, 0, sizeof(*out));
    int rc = sto_frames_load(s, sha, &t);
    if (rc)
        return rc;
    rc = sto_frames_get(t, n, out);
    sto_frames_free(t);
    return rc;
}

void sto_frame_free(sto_frame *f)
{
    if (!f)
        return;
    free(f->ranges);
    memset(f, 0, sizeof(*f));
}
