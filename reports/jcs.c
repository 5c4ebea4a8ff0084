/* RFC 8785 (JCS) canonical JSON of a jansson value: object members sorted by
 * the UTF-16 code units of their names, strings escaped as ECMAScript's
 * JSON.stringify does, integers only (decision 0022). */
#include "jws.h"
#include "../common/hr_buf.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JCS_MAX_DEPTH 64
#define JCS_MAX_BYTES (16u << 20) /* the JWS bound of jws.c */
/* Integers an IEEE 754 double holds exactly: JCS serializes numbers as
 * ECMAScript does, so larger magnitudes would not round-trip. */
#define JCS_INT_MAX 9007199254740991LL

/* Decodes the UTF-8 sequence at *p (jansson strings are valid UTF-8) into a
 * code point and advances *p; -1 on a malformed sequence. */
static long utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    long cp;
    int n;
    if (s[0] < 0x80) {
        cp = s[0];
        n = 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        n = 2;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        n = 3;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        n = 4;
    } else {
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *p = s + n;
    return cp;
}

/* Compares two NUL-terminated UTF-8 names by their UTF-16 code units. */
static int utf16_cmp(const char *a, const char *b)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    unsigned pend_a = 0, pend_b = 0; /* pending low surrogates */
    for (;;) {
        unsigned ua, ub;
        if (pend_a) {
            ua = pend_a;
            pend_a = 0;
        } else if (!*pa) {
            ua = 0;
        } else {
            long cp = utf8_next(&pa);
            if (cp < 0)
                return strcmp(a, b); /* cannot happen with jansson strings */
            if (cp >= 0x10000) {
                ua = 0xD800 + (unsigned)((cp - 0x10000) >> 10);
                pend_a = 0xDC00 + (unsigned)((cp - 0x10000) & 0x3FF);
            } else {
                ua = (unsigned)cp;
            }
        }
        if (pend_b) {
            ub = pend_b;
            pend_b = 0;
        } else if (!*pb) {
            ub = 0;
        } else {
            long cp = utf8_next(&pb);
            if (cp < 0)
                return strcmp(a, b);
            if (cp >= 0x10000) {
                ub = 0xD800 + (unsigned)((cp - 0x10000) >> 10);
                pend_b = 0xDC00 + (unsigned)((cp - 0x10000) & 0x3FF);
            } else {
                ub = (unsigned)cp;
            }
        }
        /* an ended name (0) sorts first; a U+0000 inside a name cannot occur
         * in a jansson key */
        if (ua != ub)
            return ua < ub ? -1 : 1;
        if (ua == 0)
            return 0;
    }
}

static int key_cmp(const void *x, const void *y)
{
    return utf16_cmp(*(const char *const *)x, *(const char *const *)y);
}

static int put(hr_buf *b, const char *s, size_t n)
{
    int rc = hr_buf_append(b, s, n);
    return rc == HR_ETOOBIG ? -EINVAL : rc;
}

/* A JSON string as JSON.stringify writes it: \" \\ \b \f \n \r \t, other
 * controls as \u00xx (lowercase hex), everything else as is (UTF-8). */
static int put_string(hr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = put(b, "\"", 1);
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t el = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        rc = put(b, s + run, i - run);
        if (!rc)
            rc = put(b, esc, el);
        run = i + 1;
    }
    if (!rc)
        rc = put(b, s + run, n - run);
    if (!rc)
        rc = put(b, "\"", 1);
    return rc;
}

static int put_value(hr_buf *b, const json_t *v, int depth);

static int put_object(hr_buf *b, const json_t *v, int depth)
{
    size_t n = json_object_size(v), i = 0;
    const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
    const char *k;
    json_t *m;
    int rc = 0;
    if (n && !keys)
        return -ENOMEM;
    json_object_foreach((json_t *)v, k, m)
    {
        keys[i++] = k;
    }
    if (n)
        qsort(keys, n, sizeof(*keys), key_cmp);
    rc = put(b, "{", 1);
    for (i = 0; !rc && i < n; i++) {
        if (i)
            rc = put(b, ",", 1);
        if (!rc)
            rc = put_string(b, keys[i], strlen(keys[i]));
        if (!rc)
            rc = put(b, ":", 1);
        if (!rc)
            rc = put_value(b, json_object_get(v, keys[i]), depth + 1);
    }
    if (!rc)
        rc = put(b, "}", 1);
    free(keys);
    return rc;
}

static int put_value(hr_buf *b, const json_t *v, int depth)
{
    char num[32];
    int rc = 0;
    if (!v || depth > JCS_MAX_DEPTH)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rc = put_object(b, v, depth);
        break;
    case JSON_ARRAY:
        rc = put(b, "[", 1);
        for (size_t i = 0; !rc && i < json_array_size(v); i++) {
            if (i)
                rc = put(b, ",", 1);
            if (!rc)
                rc = put_value(b, json_array_get(v, i), depth + 1);
        }
        if (!rc)
            rc = put(b, "]", 1);
        break;
    case JSON_STRING:
        rc = put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        if (x > JCS_INT_MAX || x < -JCS_INT_MAX)
            return -EINVAL;
        int n = snprintf(num, sizeof(num), "%lld", (long long)x);
        rc = put(b, num, (size_t)n);
        break;
    }
    case JSON_TRUE:
        rc = put(b, "true", 4);
        break;
    case JSON_FALSE:
        rc = put(b, "false", 5);
        break;
    case JSON_NULL:
        rc = put(b, "null", 4);
        break;
    default: /* JSON_REAL: the payload has no fractions */
        rc = -EINVAL;
    }
    return rc;
}

int rpt_jcs(const json_t *doc, char **out, size_t *len)
{
    hr_buf b;
    hr_buf_init(&b, JCS_MAX_BYTES);
    int rc = put_value(&b, doc, 0);
    if (!rc)
        rc = put(&b, "", 1); /* the NUL */
    if (rc) {
        hr_buf_free(&b);
        return rc;
    }
    *out = (char *)b.data;
    *len = b.len - 1;
    return 0;
}
