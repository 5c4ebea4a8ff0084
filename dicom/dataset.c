/* In-memory DICOM dataset: recursive parser over one bounded copy of the
 * input, sorted element arrays, builder and encoder. */
#include "dataset.h"

#include "common/hr_assert.h"
#include "common/hr_bytes.h"
#include "common/hr_err.h"
#include "dicom/elem.h"
#include "dicom/uids.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UNDEF_LEN DCM_UNDEF_LEN

struct dcm_ds {
    dcm_elem *e; /* sorted by tag */
    size_t n, cap;
    uint8_t *backing; /* parsed input copy (root of a parse only) */
};

typedef struct pctx {
    uint8_t *buf;
    size_t len;
    size_t count; /* elements + items so far */
} pctx;

/* ---- small helpers ------------------------------------------------------ */

/* Reverses every whole unit-sized group of bytes in p[0..n). */
static void swap_units(uint8_t *p, size_t n, size_t unit)
{
    if (unit < 2)
        return;
    for (size_t off = 0; off + unit <= n; off += unit)
        for (size_t i = 0; i < unit / 2; i++) {
            uint8_t t = p[off + i];
            p[off + i] = p[off + unit - 1 - i];
            p[off + unit - 1 - i] = t;
        }
}

static int is_sq(const dcm_elem *e)
{
    return e->vr[0] == 'S' && e->vr[1] == 'Q';
}

static void elem_clear(dcm_elem *e)
{
    if (e->own_)
        free((void *)e->value);
    for (size_t i = 0; i < e->n_items; i++)
        dcm_ds_free(e->items[i]);
    free(e->items);
    memset(e, 0, sizeof(*e));
}

static int resolve_ts(const char *ts_uid, int *expl, int *big)
{
    const dcm_ts_info *ts = ts_uid ? dcm_transfer_syntax(ts_uid) : NULL;
    if (!ts || ts->deflated || ts->encapsulated)
        return HR_EUNSUP;
    *expl = ts->explicit_vr;
    *big = ts->big_endian;
    return 0;
}

static int elem_cmp(const void *a, const void *b)
{
    uint32_t x = ((const dcm_elem *)a)->tag, y = ((const dcm_elem *)b)->tag;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Index of tag, or of the insertion point with *found = 0. */
static size_t find_pos(const dcm_ds *ds, uint32_t tag, int *found)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->e[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < ds->n && ds->e[lo].tag == tag;
    return lo;
}

static int grow_elems(dcm_ds *ds)
{
    if (ds->n < ds->cap)
        return 0;
    if (ds->n >= DCM_DS_MAX_ELEMENTS)
        return HR_ETOOBIG;
    size_t nc = ds->cap ? ds->cap * 2 : 16;
    if (nc > DCM_DS_MAX_ELEMENTS)
        nc = DCM_DS_MAX_ELEMENTS;
    dcm_elem *ne = realloc(ds->e, nc * sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    ds->e = ne;
    ds->cap = nc;
    return 0;
}

static int grow_items(dcm_elem *e)
{
    if (e->n_items < e->items_cap_)
        return 0;
    if (e->n_items >= DCM_DS_MAX_ELEMENTS)
        return HR_ETOOBIG;
    size_t nc = e->items_cap_ ? e->items_cap_ * 2 : 4;
    dcm_ds **ni = realloc(e->items, nc * sizeof(*ni));
    if (!ni)
        return -ENOMEM;
    e->items = ni;
    e->items_cap_ = nc;
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* A parse level ends at end: the defined length of an enclosing item or
 * sequence, or the end of the input (c->len). A header or value running past
 * it, or an undefined-length container still open there, is truncated data
 * when end is the end of the input, else malformed (elem.h). */
static int short_err(const pctx *c, size_t end)
{
    return end == c->len ? HR_ETRUNC : HR_EPARSE;
}

static int parse_list(pctx *c, dcm_ds *ds, size_t *pos, size_t end, int expl, int big, int depth,
                      int undef_item, unsigned flags);

static int parse_seq(pctx *c, dcm_elem *e, size_t *pos, size_t end, int undef, int expl, int big,
                     int depth)
{
    dcm_elem_hdr h;
    if (depth + 1 > DCM_ELEM_MAX_DEPTH)
        return HR_ETOOBIG;
    for (;;) {
        if (*pos == end)
            return undef ? short_err(c, end) : 0;
        int rc = dcm_elem_read(c->buf + *pos, end - *pos, 0, big, &h);
        if (rc == DCM_ELEM_MORE)
            return short_err(c, end);
        if (rc)
            return rc;
        *pos += h.hdr_len;
        if (h.tag == DCM_TAG_SEQ_DELIM)
            return undef ? 0 : HR_EPARSE;
        if (h.tag != DCM_TAG_ITEM)
            return HR_EPARSE;
        if (++c->count > DCM_DS_MAX_ELEMENTS)
            return HR_ETOOBIG;
        rc = grow_items(e);
        if (rc)
            return rc;
        dcm_ds *item = dcm_ds_new();
        if (!item)
            return -ENOMEM;
        e->items[e->n_items++] = item;
        if (h.len == UNDEF_LEN) {
            rc = parse_list(c, item, pos, end, expl, big, depth + 1, 1, 0);
        } else {
            if (h.len > end - *pos)
                return short_err(c, end);
            rc = parse_list(c, item, pos, *pos + h.len, expl, big, depth + 1, 0, 0);
        }
        if (rc)
            return rc;
    }
}

static int parse_list(pctx *c, dcm_ds *ds, size_t *pos, size_t end, int expl, int big, int depth,
                      int undef_item, unsigned flags)
{
    int sorted = 1, rc = 0;
    dcm_elem_hdr h;
    enum dcm_value_kind kind;
    char vr[3];
    for (;;) {
        if (*pos == end) {
            rc = undef_item ? short_err(c, end) : 0;
            break;
        }
        rc = dcm_elem_read(c->buf + *pos, end - *pos, expl, big, &h);
        if (rc == DCM_ELEM_MORE)
            return short_err(c, end);
        if (rc)
            return rc;
        if (h.tag == DCM_TAG_ITEM_DELIM) {
            if (!undef_item)
                return HR_EPARSE;
            *pos += h.hdr_len;
            break;
        }
        if (DCM_TAG_GROUP(h.tag) == 0xFFFE)
            return HR_EPARSE;
        rc = dcm_elem_value(&h, expl, big, flags, &kind, vr);
        if (rc)
            return rc;
        if (kind == DCM_VALUE_FRAGMENTS)
            return HR_EPARSE; /* no encapsulated Pixel Data in a dcm_ds */
        *pos += h.hdr_len;
        if (++c->count > DCM_DS_MAX_ELEMENTS)
            return HR_ETOOBIG;
        rc = grow_elems(ds);
        if (rc)
            return rc;
        if (ds->n && ds->e[ds->n - 1].tag >= h.tag)
            sorted = 0;
        dcm_elem *e = &ds->e[ds->n++];
        memset(e, 0, sizeof(*e));
        e->tag = h.tag;
        memcpy(e->vr, vr, 3);
        if (h.len != UNDEF_LEN && h.len > end - *pos)
            return short_err(c, end);
        size_t vend = end;
        if (h.len != UNDEF_LEN)
            vend = *pos + h.len;
        if (kind == DCM_VALUE_SEQ) {
            rc = parse_seq(c, e, pos, vend, h.len == UNDEF_LEN, expl, big, depth);
        } else if (kind == DCM_VALUE_SEQ_IMPLICIT) {
            rc = parse_seq(c, e, pos, vend, h.len == UNDEF_LEN, 0, 0, depth);
        } else {
            e->len = h.len;
            e->value = h.len ? c->buf + *pos : NULL;
            if (big && h.len)
                swap_units(c->buf + *pos, h.len, dcm_vr_swap_unit(vr));
            *pos += h.len;
        }
        if (rc)
            return rc;
    }
    if (rc)
        return rc;
    if (!sorted) {
        qsort(ds->e, ds->n, sizeof(ds->e[0]), elem_cmp);
        for (size_t i = 1; i < ds->n; i++)
            if (ds->e[i - 1].tag == ds->e[i].tag)
                return HR_EPARSE;
    }
    return 0;
}

static int parse(const uint8_t *p, size_t n, const char *ts_uid, size_t max_bytes, unsigned flags,
                 dcm_ds **out)
{
    int expl = 0, big = 0, rc;
    dcm_ds *ds = NULL;
    pctx c = {0};
    size_t pos = 0;

    *out = NULL;
    rc = resolve_ts(ts_uid, &expl, &big);
    if (rc)
        goto out;
    if (n > (max_bytes ? max_bytes : DCM_DS_MAX_INPUT)) {
        rc = HR_ETOOBIG;
        goto out;
    }
    ds = dcm_ds_new();
    if (!ds) {
        rc = -ENOMEM;
        goto out;
    }
    ds->backing = malloc(n ? n : 1);
    if (!ds->backing) {
        rc = -ENOMEM;
        goto out;
    }
    if (n)
        memcpy(ds->backing, p, n);
    c.buf = ds->backing;
    c.len = n;
    rc = parse_list(&c, ds, &pos, n, expl, big, 0, 0, flags);
out:
    if (rc) {
        dcm_ds_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int dcm_ds_parse(const uint8_t *p, size_t n, const char *ts_uid, size_t max_bytes, dcm_ds **out)
{
    return parse(p, n, ts_uid, max_bytes, 0, out);
}

int dcm_ds_parse_meta(const uint8_t *p, size_t n, dcm_ds **out)
{
    int rc = parse(p, n, DCM_TS_EXPLICIT_LE, 0, DCM_ELEM_META, out);
    for (size_t i = 0; !rc && i < (*out)->n; i++)
        if (DCM_TAG_GROUP((*out)->e[i].tag) != 0x0002)
            rc = HR_EPARSE; /* the group length covers more than group 0002 */
    if (rc && *out) {
        dcm_ds_free(*out);
        *out = NULL;
    }
    return rc;
}

dcm_ds *dcm_ds_new(void)
{
    return calloc(1, sizeof(dcm_ds));
}

void dcm_ds_free(dcm_ds *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++)
        elem_clear(&ds->e[i]);
    free(ds->e);
    free(ds->backing);
    free(ds);
}

/* ---- reading ------------------------------------------------------------ */

size_t dcm_ds_count(const dcm_ds *ds)
{
    return ds->n;
}

const dcm_elem *dcm_ds_at(const dcm_ds *ds, size_t i)
{
    HR_DEBUG_ASSERT(i < ds->n);
    return &ds->e[i];
}

const dcm_elem *dcm_ds_find(const dcm_ds *ds, uint32_t tag)
{
    int found;
    size_t i = find_pos(ds, tag, &found);
    return found ? &ds->e[i] : NULL;
}

static int strip_leading(const char *vr)
{
    static const char k[] = "AE AS CS DA DS DT IS LO SH TM UI";
    for (const char *p = k; p[0]; p += 3) {
        if (p[0] == vr[0] && p[1] == vr[1])
            return 1;
        if (!p[2])
            break;
    }
    return 0;
}

/* Length of v without trailing spaces and NULs. */
static size_t rtrim_len(const uint8_t *v, size_t n)
{
    while (n && (v[n - 1] == ' ' || v[n - 1] == 0))
        n--;
    return n;
}

/* Value idx of a string element into vs and vn, trimmed. 0 or HR_ENOTFOUND. */
static int string_value(const dcm_elem *e, size_t idx, const uint8_t **vs, size_t *vn)
{
    const uint8_t *v = e->value;
    size_t n = rtrim_len(v, e->len);
    int multi = dcm_vr_multi_valued(e->vr), lead = strip_leading(e->vr);
    size_t i = 0, k = 0;
    if (n == 0)
        return HR_ENOTFOUND;
    for (;;) {
        size_t j = i;
        while (multi && j < n && v[j] != '\\')
            j++;
        if (!multi)
            j = n;
        if (k == idx) {
            size_t a = i, b = j;
            if (lead)
                while (a < b && v[a] == ' ')
                    a++;
            b = a + rtrim_len(v + a, b - a);
            *vs = v + a;
            *vn = b - a;
            return 0;
        }
        if (j >= n)
            return HR_ENOTFOUND;
        i = j + 1;
        k++;
    }
}

static size_t value_size(const char *vr)
{
    if (!strcmp(vr, "AT"))
        return 4;
    if (!strcmp(vr, "US") || !strcmp(vr, "SS"))
        return 2;
    if (!strcmp(vr, "UL") || !strcmp(vr, "SL") || !strcmp(vr, "FL"))
        return 4;
    if (!strcmp(vr, "FD") || !strcmp(vr, "SV") || !strcmp(vr, "UV"))
        return 8;
    return 0;
}

size_t dcm_elem_vm(const dcm_elem *e)
{
    if (is_sq(e))
        return e->n_items;
    if (dcm_vr_is_string(e->vr)) {
        size_t n = rtrim_len(e->value, e->len), vm = 1;
        if (n == 0)
            return 0;
        if (dcm_vr_multi_valued(e->vr))
            for (size_t i = 0; i < n; i++)
                vm += e->value[i] == '\\';
        return vm;
    }
    size_t sz = value_size(e->vr);
    if (sz)
        return e->len / sz;
    return e->len ? 1 : 0;
}

int dcm_elem_empty(const dcm_elem *e)
{
    if (is_sq(e))
        return e->n_items == 0;
    if (dcm_vr_is_string(e->vr))
        return rtrim_len(e->value, e->len) == 0;
    return e->len == 0;
}

static int copy_out(char *out, size_t cap, size_t *used, const uint8_t *p, size_t n)
{
    int rc = 0;
    if (cap == 0)
        return HR_ETOOBIG;
    if (*used + n + 1 > cap) {
        n = cap - 1 - *used;
        rc = HR_ETOOBIG;
    }
    if (n)
        memcpy(out + *used, p, n);
    *used += n;
    out[*used] = 0;
    return rc;
}

int dcm_elem_string(const dcm_elem *e, size_t idx, char *out, size_t cap)
{
    const uint8_t *vs;
    size_t vn, used = 0;
    int rc;
    if (cap)
        out[0] = 0;
    if (!dcm_vr_is_string(e->vr))
        return HR_EMISMATCH;
    if (idx != DCM_ALL_VALUES) {
        rc = string_value(e, idx, &vs, &vn);
        if (rc)
            return rc;
        return copy_out(out, cap, &used, vs, vn);
    }
    for (size_t i = 0; string_value(e, i, &vs, &vn) == 0; i++) {
        if (i) {
            rc = copy_out(out, cap, &used, (const uint8_t *)"\\", 1);
            if (rc)
                return rc;
        }
        rc = copy_out(out, cap, &used, vs, vn);
        if (rc)
            return rc;
    }
    return cap ? 0 : HR_ETOOBIG;
}

int dcm_ds_get_string(const dcm_ds *ds, uint32_t tag, char *out, size_t cap)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    if (!e) {
        if (cap)
            out[0] = 0;
        return HR_ENOTFOUND;
    }
    return dcm_elem_string(e, DCM_ALL_VALUES, out, cap);
}

int dcm_elem_number(const dcm_elem *e, size_t idx, double *out)
{
    size_t sz = value_size(e->vr);
    if (sz && strcmp(e->vr, "AT") != 0) {
        if (idx >= e->len / sz)
            return HR_ENOTFOUND;
        uint64_t u = hr_rd_le(e->value + idx * sz, sz);
        switch (e->vr[0] << 8 | e->vr[1]) {
        case 'U' << 8 | 'S':
        case 'U' << 8 | 'L':
        case 'U' << 8 | 'V':
            *out = (double)u;
            break;
        case 'S' << 8 | 'S':
            *out = (int16_t)u;
            break;
        case 'S' << 8 | 'L':
            *out = (int32_t)u;
            break;
        case 'S' << 8 | 'V':
            *out = (double)(int64_t)u;
            break;
        case 'F' << 8 | 'L': {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            *out = f;
            break;
        }
        default: {
            double d;
            memcpy(&d, &u, 8);
            *out = d;
            break;
        }
        }
        return 0;
    }
    if (strcmp(e->vr, "IS") != 0 && strcmp(e->vr, "DS") != 0)
        return HR_EMISMATCH;
    const uint8_t *vs;
    size_t vn;
    int rc = string_value(e, idx, &vs, &vn);
    if (rc)
        return rc;
    char tmp[64];
    if (vn == 0 || vn >= sizeof(tmp))
        return HR_EPARSE;
    for (size_t i = 0; i < vn; i++) {
        char ch = (char)vs[i];
        int ok = (ch >= '0' && ch <= '9') || ch == '+' || ch == '-';
        if (e->vr[0] == 'D')
            ok = ok || ch == '.' || ch == 'e' || ch == 'E';
        if (!ok)
            return HR_EPARSE;
        tmp[i] = ch;
    }
    tmp[vn] = 0;
    char *endp;
    errno = 0;
    double d = strtod(tmp, &endp);
    if (*endp || endp == tmp || !isfinite(d))
        return HR_EPARSE;
    *out = d;
    return 0;
}

/* ---- building ----------------------------------------------------------- */

/* Returns the element for tag, new (zeroed) or emptied. */
static int slot(dcm_ds *ds, uint32_t tag, dcm_elem **out)
{
    int found, rc;
    if (DCM_TAG_GROUP(tag) == 0xFFFE)
        return HR_EPARSE;
    size_t i = find_pos(ds, tag, &found);
    if (found) {
        elem_clear(&ds->e[i]);
    } else {
        rc = grow_elems(ds);
        if (rc)
            return rc;
        memmove(&ds->e[i + 1], &ds->e[i], (ds->n - i) * sizeof(ds->e[0]));
        ds->n++;
        memset(&ds->e[i], 0, sizeof(ds->e[i]));
    }
    ds->e[i].tag = tag;
    *out = &ds->e[i];
    return 0;
}

static int put_raw(dcm_ds *ds, uint32_t tag, const char *vr, const void *p, size_t n, char pad)
{
    dcm_elem *e;
    uint8_t *v = NULL;
    int rc;
    if (n > 0xFFFFFFFEu - 1)
        return HR_ETOOBIG;
    size_t pn = n + (n & 1);
    if (pn) {
        v = malloc(pn);
        if (!v)
            return -ENOMEM;
        if (n)
            memcpy(v, p, n);
        if (pn > n)
            v[n] = (uint8_t)pad;
    }
    rc = slot(ds, tag, &e);
    if (rc) {
        free(v);
        return rc;
    }
    memcpy(e->vr, vr, 2);
    e->vr[2] = 0;
    e->value = v;
    e->len = (uint32_t)pn;
    e->own_ = 1;
    return 0;
}

int dcm_ds_put_stringn(dcm_ds *ds, uint32_t tag, const char *vr, const char *s, size_t n)
{
    if (!vr)
        vr = dcm_dict_vr(tag);
    if (!dcm_vr_known(vr) || !dcm_vr_is_string(vr))
        return HR_EPARSE;
    return put_raw(ds, tag, vr, s, n, strcmp(vr, "UI") ? ' ' : 0);
}

int dcm_ds_put_string(dcm_ds *ds, uint32_t tag, const char *vr, const char *s)
{
    return dcm_ds_put_stringn(ds, tag, vr, s, s ? strlen(s) : 0);
}

int dcm_ds_put_bytes(dcm_ds *ds, uint32_t tag, const char *vr, const void *p, size_t n)
{
    if (!vr)
        vr = dcm_dict_vr(tag);
    if (!dcm_vr_known(vr) || !strncmp(vr, "SQ", 2))
        return HR_EPARSE;
    return put_raw(ds, tag, vr, p, n, 0);
}

int dcm_ds_put_u16(dcm_ds *ds, uint32_t tag, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return dcm_ds_put_bytes(ds, tag, "US", b, 2);
}

int dcm_ds_put_u32(dcm_ds *ds, uint32_t tag, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return dcm_ds_put_bytes(ds, tag, "UL", b, 4);
}

int dcm_ds_put_sequence(dcm_ds *ds, uint32_t tag, dcm_ds **items, size_t n)
{
    dcm_elem *e = NULL;
    dcm_ds **arr = NULL;
    int rc = 0;
    if (n > DCM_DS_MAX_ELEMENTS) {
        rc = HR_ETOOBIG;
        goto out;
    }
    if (n) {
        arr = malloc(n * sizeof(*arr));
        if (!arr) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = slot(ds, tag, &e);
    if (rc)
        goto out;
    memcpy(e->vr, "SQ", 3);
    for (size_t i = 0; i < n; i++) {
        HR_DEBUG_ASSERT(items[i] != ds);
        arr[i] = items[i];
    }
    e->items = arr;
    e->n_items = e->items_cap_ = n;
    return 0;
out:
    free(arr);
    for (size_t i = 0; i < n; i++)
        dcm_ds_free(items[i]);
    return rc;
}

int dcm_ds_append_item(dcm_ds *ds, uint32_t tag, dcm_ds *item)
{
    int found, rc;
    dcm_elem *e;
    HR_DEBUG_ASSERT(item != ds);
    size_t i = find_pos(ds, tag, &found);
    if (!found) {
        rc = dcm_ds_put_sequence(ds, tag, NULL, 0);
        if (rc)
            goto out;
        i = find_pos(ds, tag, &found);
    }
    e = &ds->e[i];
    if (!is_sq(e)) {
        rc = HR_EMISMATCH;
        goto out;
    }
    rc = grow_items(e);
    if (rc)
        goto out;
    e->items[e->n_items++] = item;
    return 0;
out:
    dcm_ds_free(item);
    return rc;
}

int dcm_ds_remove(dcm_ds *ds, uint32_t tag)
{
    int found;
    size_t i = find_pos(ds, tag, &found);
    if (!found)
        return HR_ENOTFOUND;
    elem_clear(&ds->e[i]);
    memmove(&ds->e[i], &ds->e[i + 1], (ds->n - i - 1) * sizeof(ds->e[0]));
    ds->n--;
    return 0;
}

/* ---- encoding ----------------------------------------------------------- */

static int put_tag(hr_buf *out, uint32_t tag, int big)
{
    uint8_t h[4];
    hr_wr16(h, DCM_TAG_GROUP(tag), big);
    hr_wr16(h + 2, DCM_TAG_ELEMENT(tag), big);
    return hr_buf_append(out, h, 4);
}

static int enc_list(const dcm_ds *ds, hr_buf *out, int expl, int big, int depth);

static int enc_seq(const dcm_elem *e, hr_buf *out, int expl, int big, int depth)
{
    uint8_t h[8];
    int rc;
    if (depth + 1 > DCM_DS_MAX_DEPTH)
        return HR_ETOOBIG;
    rc = put_tag(out, e->tag, big);
    if (rc)
        return rc;
    if (expl) {
        memcpy(h, "SQ\0\0", 4);
        rc = hr_buf_append(out, h, 4);
        if (rc)
            return rc;
    }
    rc = hr_buf_append(out, "\0\0\0\0", 4);
    if (rc)
        return rc;
    size_t lenpos = out->len - 4, start = out->len;
    for (size_t i = 0; i < e->n_items; i++) {
        hr_wr16(h, 0xFFFE, big);
        hr_wr16(h + 2, 0xE000, big);
        hr_wr32(h + 4, 0, big);
        rc = hr_buf_append(out, h, 8);
        if (rc)
            return rc;
        size_t ilenpos = out->len - 4, istart = out->len;
        rc = enc_list(e->items[i], out, expl, big, depth + 1);
        if (rc)
            return rc;
        if (out->len - istart > 0xFFFFFFFEu)
            return HR_ETOOBIG;
        hr_wr32(out->data + ilenpos, (uint32_t)(out->len - istart), big);
    }
    if (out->len - start > 0xFFFFFFFEu)
        return HR_ETOOBIG;
    hr_wr32(out->data + lenpos, (uint32_t)(out->len - start), big);
    return 0;
}

static int enc_elem(const dcm_elem *e, hr_buf *out, int expl, int big)
{
    uint8_t h[8];
    int rc;
    size_t plen = (size_t)e->len + (e->len & 1);
    if (plen > 0xFFFFFFFEu)
        return HR_ETOOBIG;
    rc = put_tag(out, e->tag, big);
    if (rc)
        return rc;
    if (expl && !dcm_vr_long_length(e->vr)) {
        if (plen > 0xFFFF)
            return HR_ETOOBIG;
        memcpy(h, e->vr, 2);
        hr_wr16(h + 2, (uint16_t)plen, big);
        rc = hr_buf_append(out, h, 4);
    } else if (expl) {
        memcpy(h, e->vr, 2);
        h[2] = h[3] = 0;
        hr_wr32(h + 4, (uint32_t)plen, big);
        rc = hr_buf_append(out, h, 8);
    } else {
        hr_wr32(h, (uint32_t)plen, big);
        rc = hr_buf_append(out, h, 4);
    }
    if (rc)
        return rc;
    size_t vstart = out->len;
    rc = hr_buf_append(out, e->value, e->len);
    if (rc)
        return rc;
    if (plen > e->len) {
        uint8_t pad = dcm_vr_is_string(e->vr) && strcmp(e->vr, "UI") ? ' ' : 0;
        rc = hr_buf_append(out, &pad, 1);
        if (rc)
            return rc;
    }
    if (big)
        swap_units(out->data + vstart, plen, dcm_vr_swap_unit(e->vr));
    return 0;
}

static int enc_list(const dcm_ds *ds, hr_buf *out, int expl, int big, int depth)
{
    for (size_t i = 0; i < ds->n; i++) {
        const dcm_elem *e = &ds->e[i];
        int rc = is_sq(e) ? enc_seq(e, out, expl, big, depth) : enc_elem(e, out, expl, big);
        if (rc)
            return rc;
    }
    return 0;
}

int dcm_ds_encode(const dcm_ds *ds, const char *ts_uid, hr_buf *out)
{
    int expl = 0, big = 0, rc;
    size_t start = out->len;
    rc = resolve_ts(ts_uid, &expl, &big);
    if (rc)
        goto out;
    rc = enc_list(ds, out, expl, big, 0);
out:
    if (rc)
        out->len = start;
    return rc;
}
