/* DICOM JSON model (PS3.18 F.2) <-> dcm_ds. */
#include "dicom_json.h"

#include "common/hr_bytes.h"
#include "common/hr_err.h"
#include "dicom/charset.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHARSET_CAP 128

static int vr_is(const char *vr, const char *x)
{
    return vr[0] == x[0] && vr[1] == x[1];
}

static int lead_trim_vr(const char *vr)
{
    static const char *const k[] = {"AE", "AS", "CS", "DA", "DS", "DT",
                                    "IS", "LO", "SH", "TM", "UI"};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (vr_is(vr, k[i]))
            return 1;
    return 0;
}

static int is_bulk_vr(const char *vr)
{
    static const char *const k[] = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (vr_is(vr, k[i]))
            return 1;
    return 0;
}

static void trim(const char **s, size_t *n, int lead)
{
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == 0))
        (*n)--;
    while (lead && *n && **s == ' ') {
        (*s)++;
        (*n)--;
    }
}

/* json_stringn, replacing invalid UTF-8 by '?' if needed. NULL on ENOMEM. */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++)
        t[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(t, n);
    free(t);
    return j;
}

/* IS/DS text -> number, or NULL when not a valid number (caller falls back). */
static json_t *jnumber(const char *vr, const char *s, size_t n)
{
    char tmp[64];
    int integral = 1;
    if (n == 0 || n >= sizeof(tmp))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= '0' && c <= '9') || c == '+' || c == '-';
        if (vr[0] == 'D' && (c == '.' || c == 'e' || c == 'E')) {
            ok = 1;
            integral = 0;
        }
        if (!ok)
            return NULL;
        tmp[i] = c;
    }
    tmp[n] = 0;
    char *end;
    errno = 0;
    if (integral) {
        long long v = strtoll(tmp, &end, 10);
        if (*end || end == tmp || errno)
            return NULL;
        return json_integer(v);
    }
    double d = strtod(tmp, &end);
    if (*end || end == tmp || !isfinite(d))
        return NULL;
    return json_real(d);
}

static json_t *jpn(const char *s, size_t n)
{
    static const char *const groups[] = {"Alphabetic", "Ideographic", "Phonetic"};
    json_t *o = json_object();
    size_t g = 0, i = 0;
    if (!o)
        return NULL;
    while (g < 3) {
        size_t j = i;
        while (j < n && s[j] != '=')
            j++;
        const char *p = s + i;
        size_t len = j - i;
        trim(&p, &len, 0);
        while (len && p[len - 1] == '^') /* trailing component delimiters (PS3.5 6.2.1.1) */
            len--;
        if (len && json_object_set_new(o, groups[g], jstr(p, len))) {
            json_decref(o);
            return NULL;
        }
        g++;
        if (j >= n)
            break;
        i = j + 1;
    }
    if (json_object_size(o) == 0) {
        json_decref(o);
        return json_null();
    }
    return o;
}

/* Values of a string element into arr. 0 or -ENOMEM. */
static int string_values(const dcm_elem *e, const char *charset, json_t *arr)
{
    const char *s = (const char *)e->value;
    size_t n = e->len;
    char *conv = NULL;
    int rc = 0;
    trim(&s, &n, 0);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80 || s[i] == 0x1b) {
            size_t cap = 4 * n + 16;
            conv = malloc(cap);
            if (!conv)
                return -ENOMEM;
            (void)dcm_charset_to_utf8(charset, s, n, conv, cap, NULL, 0, NULL);
            s = conv;
            n = strlen(conv);
            break;
        }
    }
    int multi = dcm_vr_multi_valued(e->vr), lead = lead_trim_vr(e->vr);
    size_t i = 0;
    while (n) {
        size_t j = i;
        while (multi && j < n && s[j] != '\\')
            j++;
        if (!multi)
            j = n;
        const char *p = s + i;
        size_t len = j - i;
        json_t *v = NULL;
        trim(&p, &len, lead);
        if (len == 0)
            v = json_null();
        else if (vr_is(e->vr, "PN"))
            v = jpn(p, len);
        else if (vr_is(e->vr, "IS") || vr_is(e->vr, "DS"))
            v = jnumber(e->vr, p, len);
        if (!v && len)
            v = jstr(p, len);
        if (json_array_append_new(arr, v)) {
            rc = -ENOMEM;
            break;
        }
        if (j >= n)
            break;
        i = j + 1;
    }
    free(conv);
    return rc;
}

static json_t *jreal(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* Values of a binary numeric or AT element into arr. 0 or -ENOMEM. */
static int binary_values(const dcm_elem *e, json_t *arr)
{
    size_t sz = vr_is(e->vr, "US") || vr_is(e->vr, "SS")                         ? 2
                : vr_is(e->vr, "FD") || vr_is(e->vr, "SV") || vr_is(e->vr, "UV") ? 8
                                                                                 : 4;
    for (size_t off = 0; off + sz <= e->len; off += sz) {
        uint64_t u = hr_rd_le(e->value + off, sz);
        json_t *v;
        char at[32];
        if (vr_is(e->vr, "AT")) {
            snprintf(at, sizeof(at), "%04X%04X", (unsigned)(u & 0xffff),
                     (unsigned)(u >> 16 & 0xffff));
            v = json_string(at);
        } else if (vr_is(e->vr, "US") || vr_is(e->vr, "UL")) {
            v = json_integer((json_int_t)u);
        } else if (vr_is(e->vr, "SS")) {
            v = json_integer((int16_t)u);
        } else if (vr_is(e->vr, "SL")) {
            v = json_integer((int32_t)u);
        } else if (vr_is(e->vr, "SV")) {
            v = json_integer((json_int_t)(int64_t)u);
        } else if (vr_is(e->vr, "UV")) {
            if (u <= INT64_MAX) {
                v = json_integer((json_int_t)u);
            } else {
                snprintf(at, sizeof(at), "%" PRIu64, u);
                v = json_string(at);
            }
        } else if (vr_is(e->vr, "FL")) {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            v = jreal(f);
        } else {
            double d;
            memcpy(&d, &u, 8);
            v = jreal(d);
        }
        if (json_array_append_new(arr, v))
            return -ENOMEM;
    }
    return 0;
}

static int conv_list(const dcm_ds *ds, const char *charset, const dcm_json_opts *opts,
                     unsigned depth, json_t *obj);

static int conv_elem(const dcm_elem *e, const char *charset, const dcm_json_opts *opts,
                     unsigned depth, json_t *obj)
{
    char key[12];
    json_t *je = json_object(), *arr = NULL;
    int rc = -ENOMEM, has_value = 0;
    if (!je || json_object_set_new(je, "vr", json_string(e->vr)))
        goto out;
    if (vr_is(e->vr, "SQ")) {
        if (e->n_items) {
            arr = json_array();
            if (!arr)
                goto out;
            for (size_t i = 0; i < e->n_items; i++) {
                json_t *item = json_object();
                if (json_array_append_new(arr, item)) {
                    rc = -ENOMEM;
                    goto out;
                }
                rc = conv_list(e->items[i], charset, opts, depth + 1, item);
                if (rc)
                    goto out;
            }
        }
    } else if (dcm_elem_empty(e)) {
        /* "vr" only */
    } else if (e->tag == DCM_TAG_CHARSET) {
        arr = json_pack("[s]", "ISO_IR 192");
        if (!arr)
            goto out;
    } else if (dcm_vr_is_string(e->vr)) {
        arr = json_array();
        if (!arr)
            goto out;
        rc = string_values(e, charset, arr);
        if (rc)
            goto out;
    } else if (is_bulk_vr(e->vr)) {
        const char *uri = opts && opts->bulk_uri ? opts->bulk_uri(opts->ud, e, depth) : NULL;
        if (uri) {
            if (json_object_set_new(je, "BulkDataURI", json_string(uri)))
                goto out;
        } else {
            size_t cap = 4 * ((e->len + 2) / 3) + 1;
            unsigned char *b64 = malloc(cap);
            if (!b64)
                goto out;
            int n = EVP_EncodeBlock(b64, e->value, (int)e->len);
            int bad = json_object_set_new(je, "InlineBinary", json_stringn((char *)b64, (size_t)n));
            free(b64);
            if (bad)
                goto out;
        }
    } else {
        arr = json_array();
        if (!arr)
            goto out;
        rc = binary_values(e, arr);
        if (rc)
            goto out;
    }
    rc = -ENOMEM;
    for (size_t i = 0; arr && i < json_array_size(arr); i++)
        if (!json_is_null(json_array_get(arr, i)))
            has_value = 1;
    if (has_value) {
        if (json_object_set(je, "Value", arr)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    snprintf(key, sizeof(key), "%08X", (unsigned)e->tag);
    rc = json_object_set(obj, key, je) ? -ENOMEM : 0;
out:
    json_decref(arr);
    json_decref(je);
    return rc;
}

static int conv_list(const dcm_ds *ds, const char *charset, const dcm_json_opts *opts,
                     unsigned depth, json_t *obj)
{
    char cs[CHARSET_CAP];
    const dcm_elem *ce = dcm_ds_find(ds, DCM_TAG_CHARSET);
    if (!obj)
        return -ENOMEM;
    if (ce && dcm_vr_is_string(ce->vr)) {
        (void)dcm_elem_string(ce, DCM_ALL_VALUES, cs, sizeof(cs));
        charset = cs;
    }
    for (size_t i = 0; i < dcm_ds_count(ds); i++) {
        int rc = conv_elem(dcm_ds_at(ds, i), charset, opts, depth, obj);
        if (rc)
            return rc;
    }
    return 0;
}

int dcm_json_from_ds(const dcm_ds *ds, const dcm_json_opts *opts, json_t **out)
{
    json_t *obj = json_object();
    int rc = conv_list(ds, "", opts, 0, obj);
    if (rc) {
        json_decref(obj);
        obj = NULL;
    }
    *out = obj;
    return rc;
}

/* ---- JSON -> dcm_ds ----------------------------------------------------- */

typedef struct jctx {
    size_t count; /* elements + items */
    size_t bytes; /* value bytes */
    int non_ascii;
} jctx;

/* Growable text for one element's value. */
typedef struct text {
    char *p;
    size_t n, cap;
} text;

static int text_add(text *t, jctx *c, const char *s, size_t n)
{
    if (n > DCM_DS_MAX_INPUT || c->bytes + n > DCM_DS_MAX_INPUT)
        return HR_ETOOBIG;
    c->bytes += n;
    if (t->n + n + 1 > t->cap) {
        size_t nc = (t->n + n + 1) * 2;
        char *np = realloc(t->p, nc);
        if (!np)
            return -ENOMEM;
        t->p = np;
        t->cap = nc;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    for (size_t i = 0; i < n; i++)
        c->non_ascii |= (unsigned char)s[i] >= 0x80;
    return 0;
}

/* DS text for d in at most 16 characters: the shortest exact form if any;
 * integral values get ".0". cap >= 32. */
static void format_ds(double d, char *out, size_t cap)
{
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(out, cap, "%.*g", p, d);
        if (strtod(out, NULL) == d && strlen(out) <= 16)
            break;
    }
    for (; p > 17 || strlen(out) > 16; p--)
        snprintf(out, cap, "%.*g", p > 16 ? 16 : p, d);
    /* keep it a real: "5" would read back as a JSON integer */
    if (!strpbrk(out, ".eEn") && strlen(out) <= 14)
        strcat(out, ".0");
}

static int pn_add(text *t, jctx *c, const json_t *v)
{
    static const char *const groups[] = {"Alphabetic", "Ideographic", "Phonetic"};
    int last = -1, rc;
    const char *k;
    json_t *x;
    if (json_is_string(v))
        return text_add(t, c, json_string_value(v), json_string_length(v));
    if (!json_is_object(v))
        return HR_EPARSE;
    json_object_foreach((json_t *)v, k, x)
    {
        int known = 0;
        for (int g = 0; g < 3; g++)
            known |= !strcmp(k, groups[g]);
        if (!known || !json_is_string(x))
            return HR_EPARSE;
    }
    for (int g = 0; g < 3; g++)
        if (json_object_get(v, groups[g]))
            last = g;
    for (int g = 0; g <= last; g++) {
        x = json_object_get(v, groups[g]);
        if (g) {
            rc = text_add(t, c, "=", 1);
            if (rc)
                return rc;
        }
        if (x) {
            rc = text_add(t, c, json_string_value(x), json_string_length(x));
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int put_text(dcm_ds *ds, uint32_t tag, const char *vr, const json_t *val, jctx *c)
{
    text t = {0};
    int rc = 0;
    size_t i;
    json_t *v;
    int multi = dcm_vr_multi_valued(vr);
    if (!json_is_array(val))
        return HR_EPARSE;
    if (!multi && json_array_size(val) > 1)
        return HR_EPARSE;
    json_array_foreach(val, i, v)
    {
        char num[40];
        if (i) {
            rc = text_add(&t, c, "\\", 1);
            if (rc)
                goto out;
        }
        if (json_is_null(v))
            continue;
        if (vr_is(vr, "PN")) {
            rc = pn_add(&t, c, v);
        } else if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            if (multi && memchr(s, '\\', n)) {
                rc = HR_EPARSE;
                goto out;
            }
            rc = text_add(&t, c, s, n);
        } else if (json_is_integer(v) && (vr_is(vr, "IS") || vr_is(vr, "DS"))) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            if (strlen(num) > 16)
                format_ds((double)json_integer_value(v), num, sizeof(num));
            rc = text_add(&t, c, num, strlen(num));
        } else if (json_is_real(v) && vr_is(vr, "DS")) {
            format_ds(json_real_value(v), num, sizeof(num));
            rc = text_add(&t, c, num, strlen(num));
        } else if (json_is_real(v) && vr_is(vr, "IS") &&
                   json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 1e15) {
            snprintf(num, sizeof(num), "%.0f", json_real_value(v));
            rc = text_add(&t, c, num, strlen(num));
        } else {
            rc = HR_EPARSE;
        }
        if (rc)
            goto out;
    }
    rc = dcm_ds_put_stringn(ds, tag, vr, t.p ? t.p : "", t.n);
out:
    free(t.p);
    return rc;
}

static int put_binary_numbers(dcm_ds *ds, uint32_t tag, const char *vr, const json_t *val, jctx *c)
{
    size_t sz = vr_is(vr, "US") || vr_is(vr, "SS")                      ? 2
                : vr_is(vr, "FD") || vr_is(vr, "SV") || vr_is(vr, "UV") ? 8
                                                                        : 4;
    size_t i, n;
    json_t *v;
    uint8_t *b = NULL;
    int rc = 0;
    if (!json_is_array(val))
        return HR_EPARSE;
    n = json_array_size(val);
    if (n > DCM_DS_MAX_INPUT / sz || c->bytes + n * sz > DCM_DS_MAX_INPUT)
        return HR_ETOOBIG;
    c->bytes += n * sz;
    b = malloc(n * sz + 1);
    if (!b)
        return -ENOMEM;
    json_array_foreach(val, i, v)
    {
        uint64_t u = 0;
        if (vr_is(vr, "AT")) {
            const char *s = json_string_value(v);
            char *end;
            if (!s || strlen(s) != 8 || strspn(s, "0123456789abcdefABCDEF") != 8) {
                rc = HR_EPARSE;
                goto out;
            }
            unsigned long t = strtoul(s, &end, 16);
            u = (t >> 16) | (t & 0xffff) << 16;
        } else if (vr_is(vr, "FL") || vr_is(vr, "FD")) {
            double d;
            const char *s = json_string_value(v);
            if (json_is_number(v))
                d = json_number_value(v);
            else if (s && !strcmp(s, "NaN"))
                d = NAN;
            else if (s && !strcmp(s, "Infinity"))
                d = INFINITY;
            else if (s && !strcmp(s, "-Infinity"))
                d = -INFINITY;
            else {
                rc = HR_EPARSE;
                goto out;
            }
            if (sz == 4) {
                float f = (float)d;
                uint32_t w;
                memcpy(&w, &f, 4);
                u = w;
            } else {
                memcpy(&u, &d, 8);
            }
        } else {
            /* integers: JSON integer, integral real, or decimal string (UV) */
            int neg = 0;
            uint64_t mag;
            if (json_is_integer(v)) {
                json_int_t x = json_integer_value(v);
                neg = x < 0;
                mag = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                       fabs(json_real_value(v)) < 9e15) {
                double d = json_real_value(v);
                neg = d < 0;
                mag = (uint64_t)fabs(d);
            } else if (json_is_string(v) && vr_is(vr, "UV")) {
                const char *s = json_string_value(v);
                char *end;
                errno = 0;
                mag = strtoull(s, &end, 10);
                if (*end || end == s || errno || strchr(s, '-')) {
                    rc = HR_EPARSE;
                    goto out;
                }
            } else {
                rc = HR_EPARSE;
                goto out;
            }
            int ok;
            if (vr_is(vr, "US"))
                ok = !neg && mag <= 0xFFFF;
            else if (vr_is(vr, "UL"))
                ok = !neg && mag <= 0xFFFFFFFFu;
            else if (vr_is(vr, "UV"))
                ok = !neg;
            else if (vr_is(vr, "SS"))
                ok = neg ? mag <= 0x8000 : mag <= 0x7FFF;
            else if (vr_is(vr, "SL"))
                ok = neg ? mag <= 0x80000000u : mag <= 0x7FFFFFFF;
            else
                ok = 1; /* SV: json_int_t is 64-bit */
            if (!ok) {
                rc = HR_EPARSE;
                goto out;
            }
            u = neg ? (uint64_t)0 - mag : mag;
        }
        for (size_t k = 0; k < sz; k++)
            b[i * sz + k] = (uint8_t)(u >> (8 * k));
    }
    rc = dcm_ds_put_bytes(ds, tag, vr, b, n * sz);
out:
    free(b);
    return rc;
}

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

static int put_inline(dcm_ds *ds, uint32_t tag, const char *vr, const json_t *val, jctx *c)
{
    const char *s = json_string_value(val);
    size_t n = json_string_length(val);
    unsigned char *b = NULL;
    int rc = 0;
    if (!s || n % 4 || strspn(s, k_b64) != n)
        return HR_EPARSE;
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '=')
            return HR_EPARSE;
    if (n >= 2 && s[n - 2] == '=' && s[n - 1] != '=')
        return HR_EPARSE;
    if (n / 4 * 3 > DCM_DS_MAX_INPUT || c->bytes + n / 4 * 3 > DCM_DS_MAX_INPUT)
        return HR_ETOOBIG;
    b = malloc(n / 4 * 3 + 1);
    if (!b)
        return -ENOMEM;
    int m = n ? EVP_DecodeBlock(b, (const unsigned char *)s, (int)n) : 0;
    if (m < 0) {
        rc = HR_EPARSE;
        goto out;
    }
    if (n && s[n - 1] == '=')
        m--;
    if (n >= 2 && s[n - 2] == '=')
        m--;
    c->bytes += (size_t)m;
    rc = dcm_ds_put_bytes(ds, tag, vr, b, (size_t)m);
out:
    free(b);
    return rc;
}

static int from_obj(const json_t *obj, int depth, jctx *c, dcm_ds **out);

static int put_member(dcm_ds *ds, const char *key, const json_t *je, int depth, jctx *c)
{
    char vr[3];
    uint32_t tag = 0;
    if (strlen(key) != 8 || strspn(key, "0123456789abcdefABCDEF") != 8 || !json_is_object(je))
        return HR_EPARSE;
    tag = (uint32_t)strtoul(key, NULL, 16);
    const char *v = json_string_value(json_object_get(je, "vr"));
    if (!v || strlen(v) != 2 || !dcm_vr_known(v))
        return HR_EPARSE;
    memcpy(vr, v, 3);
    if (++c->count > DCM_DS_MAX_ELEMENTS)
        return HR_ETOOBIG;
    const json_t *val = json_object_get(je, "Value");
    const json_t *inl = json_object_get(je, "InlineBinary");
    if (json_object_get(je, "BulkDataURI"))
        return HR_EUNSUP;
    if (vr_is(vr, "SQ")) {
        size_t i;
        json_t *it;
        int rc = dcm_ds_put_sequence(ds, tag, NULL, 0);
        if (rc || !val)
            return rc;
        if (!json_is_array(val))
            return HR_EPARSE;
        if (depth + 1 > DCM_DS_MAX_DEPTH)
            return HR_ETOOBIG;
        json_array_foreach(val, i, it)
        {
            dcm_ds *item;
            if (++c->count > DCM_DS_MAX_ELEMENTS)
                return HR_ETOOBIG;
            rc = from_obj(it, depth + 1, c, &item);
            if (rc)
                return rc;
            rc = dcm_ds_append_item(ds, tag, item);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (inl) {
        if (val || !is_bulk_vr(vr))
            return HR_EPARSE;
        return put_inline(ds, tag, vr, inl, c);
    }
    if (!val) {
        if (dcm_vr_is_string(vr))
            return dcm_ds_put_string(ds, tag, vr, "");
        return dcm_ds_put_bytes(ds, tag, vr, NULL, 0);
    }
    if (dcm_vr_is_string(vr))
        return put_text(ds, tag, vr, val, c);
    if (is_bulk_vr(vr))
        return HR_EPARSE;
    return put_binary_numbers(ds, tag, vr, val, c);
}

static int from_obj(const json_t *obj, int depth, jctx *c, dcm_ds **out)
{
    const char *key;
    json_t *je;
    int rc = 0;
    dcm_ds *ds = NULL;
    *out = NULL;
    if (!json_is_object(obj))
        return HR_EPARSE;
    ds = dcm_ds_new();
    if (!ds)
        return -ENOMEM;
    json_object_foreach((json_t *)obj, key, je)
    {
        rc = put_member(ds, key, je, depth, c);
        if (rc)
            goto out;
    }
    if (dcm_ds_find(ds, DCM_TAG_CHARSET))
        rc = dcm_ds_put_string(ds, DCM_TAG_CHARSET, "CS", "ISO_IR 192");
out:
    if (rc) {
        dcm_ds_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int dcm_json_to_ds(const json_t *obj, dcm_ds **out)
{
    jctx c = {0};
    int rc = from_obj(obj, 0, &c, out);
    if (rc == 0 && c.non_ascii && !dcm_ds_find(*out, DCM_TAG_CHARSET)) {
        rc = dcm_ds_put_string(*out, DCM_TAG_CHARSET, "CS", "ISO_IR 192");
        if (rc) {
            dcm_ds_free(*out);
            *out = NULL;
        }
    }
    return rc;
}
