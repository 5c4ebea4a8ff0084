/* DICOM Specific Character Set -> UTF-8 (glibc iconv). Single-byte and
 * single-valued multi-byte declarations are converted in one iconv pass;
 * ISO 2022 declarations are split at escape sequences and every segment is
 * converted with the codec its designation selects. */
#include "charset.h"

#include "common/hr_assert.h"
#include "common/hr_err.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CS_MAX_TERMS 8

/* How a segment's bytes are turned into something iconv understands. */
enum cs_xform {
    X_NONE,    /* bytes as they are */
    X_GL_HIGH, /* 94x94 set designated to G0: set bit 7 of GL bytes (JIS -> EUC-JP) */
    X_GL_JX212 /* JIS X 0212 in G0: EUC-JP with 0x8F prefix per character */
};

typedef struct cs_term {
    const char *term; /* DICOM defined term (without the ISO 2022 prefix) */
    const char *iconv;
} cs_term;

/* Single-valued (non ISO 2022) defined terms. */
static const cs_term k_plain[] = {
    {"", "ASCII"},
    {"ISO_IR 6", "ASCII"},
    {"ISO_IR 100", "ISO-8859-1"},
    {"ISO_IR 101", "ISO-8859-2"},
    {"ISO_IR 109", "ISO-8859-3"},
    {"ISO_IR 110", "ISO-8859-4"},
    {"ISO_IR 144", "ISO-8859-5"},
    {"ISO_IR 127", "ISO-8859-6"},
    {"ISO_IR 126", "ISO-8859-7"},
    {"ISO_IR 138", "ISO-8859-8"},
    {"ISO_IR 148", "ISO-8859-9"},
    {"ISO_IR 203", "ISO-8859-15"},
    {"ISO_IR 166", "TIS-620"},
    {"ISO_IR 13", "SHIFT_JIS"},
    {"ISO_IR 192", "UTF-8"},
    {"GB18030", "GB18030"},
    {"GBK", "GBK"},
};

/* ISO 2022 defined terms: codec of the initial state when used as the first
 * value (default repertoire). */
static const cs_term k_2022[] = {
    {"ISO 2022 IR 6", "ASCII"},         {"ISO 2022 IR 100", "ISO-8859-1"},
    {"ISO 2022 IR 101", "ISO-8859-2"},  {"ISO 2022 IR 109", "ISO-8859-3"},
    {"ISO 2022 IR 110", "ISO-8859-4"},  {"ISO 2022 IR 144", "ISO-8859-5"},
    {"ISO 2022 IR 127", "ISO-8859-6"},  {"ISO 2022 IR 126", "ISO-8859-7"},
    {"ISO 2022 IR 138", "ISO-8859-8"},  {"ISO 2022 IR 148", "ISO-8859-9"},
    {"ISO 2022 IR 203", "ISO-8859-15"}, {"ISO 2022 IR 166", "TIS-620"},
    {"ISO 2022 IR 13", "SHIFT_JIS"},    {"ISO 2022 IR 87", "ASCII"},
    {"ISO 2022 IR 159", "ASCII"},       {"ISO 2022 IR 149", "EUC-KR"},
    {"ISO 2022 IR 58", "GB2312"},
};

/* Escape sequences (bytes after ESC) and the codec they switch to. */
typedef struct cs_esc {
    const char *seq;
    const char *iconv;
    enum cs_xform xform;
} cs_esc;

static const cs_esc k_esc[] = {
    {"(B", "ASCII", X_NONE},       {"(J", "ASCII", X_NONE}, /* JIS X 0201 romaji ~ ASCII */
    {")I", "SHIFT_JIS", X_NONE},   {"$B", "EUC-JP", X_GL_HIGH},  {"$@", "EUC-JP", X_GL_HIGH},
    {"$(D", "EUC-JP", X_GL_JX212}, {"$)C", "EUC-KR", X_NONE},    {"$)A", "GB2312", X_NONE},
    {"-A", "ISO-8859-1", X_NONE},  {"-B", "ISO-8859-2", X_NONE}, {"-C", "ISO-8859-3", X_NONE},
    {"-D", "ISO-8859-4", X_NONE},  {"-L", "ISO-8859-5", X_NONE}, {"-G", "ISO-8859-6", X_NONE},
    {"-F", "ISO-8859-7", X_NONE},  {"-H", "ISO-8859-8", X_NONE}, {"-M", "ISO-8859-9", X_NONE},
    {"-b", "ISO-8859-15", X_NONE}, {"-T", "TIS-620", X_NONE},
};

typedef struct cs_out {
    char *p;
    size_t len;
    size_t cap; /* usable bytes, excluding the NUL */
    int full;
} cs_out;

static void trim_term(const char *s, size_t n, char *dst, size_t cap)
{
    while (n > 0 && (*s == ' ' || *s == '\0')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Splits the declaration into at most CS_MAX_TERMS trimmed values. */
static size_t split_terms(const char *decl, char terms[][32])
{
    size_t nt = 0;
    const char *p = decl ? decl : "";
    for (;;) {
        const char *bs = strchr(p, '\\');
        size_t n = bs ? (size_t)(bs - p) : strlen(p);
        if (nt < CS_MAX_TERMS)
            trim_term(p, n, terms[nt++], 32);
        if (!bs)
            break;
        p = bs + 1;
    }
    return nt;
}

static const char *lookup(const cs_term *t, size_t n, const char *term)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].term, term) == 0)
            return t[i].iconv;
    return NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!dst || cap == 0)
        return;
    snprintf(dst, cap, "%s", src);
}

/* Appends the iconv conversion of in[0..n) from codec to o. Returns 0, or
 * HR_ECHARSET on invalid input (o then holds what converted before). Output
 * space running out is not an error: o->full is set. */
static int conv_append(const char *codec, const char *in, size_t n, cs_out *o)
{
    int rc = 0;
    iconv_t cd = iconv_open("UTF-8", codec);
    if (cd == (iconv_t)-1)
        return HR_ECHARSET;
    char *ip = (char *)in;
    size_t il = n;
    char *op = o->p + o->len;
    size_t ol = o->cap - o->len;
    while (il > 0) {
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG) {
            o->full = 1;
            break;
        }
        rc = HR_ECHARSET; /* EILSEQ or EINVAL (incomplete character) */
        break;
    }
    if (rc == 0 && !o->full) {
        size_t r = iconv(cd, NULL, NULL, &op, &ol);
        if (r == (size_t)-1 && errno == E2BIG)
            o->full = 1;
    }
    o->len = (size_t)(op - o->p);
    iconv_close(cd);
    return rc;
}

/* Converts a segment after applying the designation's byte transform. */
static int conv_segment(const char *codec, enum cs_xform x, const char *in, size_t n, cs_out *o)
{
    if (x == X_NONE)
        return conv_append(codec, in, n, o);
    char tmp[512];
    size_t i = 0;
    int rc = 0;
    while (i < n && rc == 0 && !o->full) {
        size_t t = 0;
        while (i < n && t + 3 <= sizeof(tmp)) {
            uint8_t c = (uint8_t)in[i];
            if (c >= 0x21 && c <= 0x7e && i + 1 < n) {
                if (x == X_GL_JX212)
                    tmp[t++] = (char)0x8f;
                tmp[t++] = (char)(c | 0x80);
                tmp[t++] = (char)((uint8_t)in[i + 1] | 0x80);
                i += 2;
            } else {
                tmp[t++] = (char)c;
                i++;
            }
        }
        rc = conv_append(codec, tmp, t, o);
    }
    return rc;
}

/* GB18030 four-byte codes that GB18030-2005 encoders (Windows code page 54936,
 * Java, Python, ICU before 2023) write and glibc's GB18030-2022 tables reject
 * or decode to the Private Use Area: linear four-byte index ranges and the
 * character the sender meant (decision 0011). */
static const struct {
    uint32_t lo, hi, cp;
} k_gb_compat[] = {
    {7457, 7457, 0x1E3F},   /* 81 35 F4 37: LATIN SMALL LETTER M WITH ACUTE (glibc: U+E7C7) */
    {19057, 19064, 0x9FB4}, /* 82 35 90 37 .. 82 35 91 34: CJK U+9FB4..U+9FBB */
    {39076, 39085, 0xFE10}, /* 84 31 82 36 .. 84 31 83 35: vertical forms U+FE10..U+FE19 */
};

/* Length of the GB18030 character at s[0..n) (1, 2 or 4; 0 when malformed or
 * cut), and in *cp the character of k_gb_compat it encodes, else 0. */
static size_t gb_char(const uint8_t *s, size_t n, uint32_t *cp)
{
    *cp = 0;
    if (s[0] < 0x80)
        return 1;
    if (s[0] == 0x80 || s[0] == 0xff || n < 2)
        return 0;
    if (s[1] < 0x30 || s[1] > 0x39)
        return (s[1] >= 0x40 && s[1] <= 0xfe && s[1] != 0x7f) ? 2 : 0;
    if (n < 4 || s[2] < 0x81 || s[2] > 0xfe || s[3] < 0x30 || s[3] > 0x39)
        return 0;
    uint32_t idx = (uint32_t)(s[0] - 0x81) * 12600 + (uint32_t)(s[1] - 0x30) * 1260 +
                   (uint32_t)(s[2] - 0x81) * 10 + (uint32_t)(s[3] - 0x30);
    for (size_t i = 0; i < HR_ARRAY_LEN(k_gb_compat); i++)
        if (idx >= k_gb_compat[i].lo && idx <= k_gb_compat[i].hi)
            *cp = k_gb_compat[i].cp + (idx - k_gb_compat[i].lo);
    return 4;
}

/* Appends code point cp (BMP) as UTF-8, or sets o->full. */
static void put_utf8(uint32_t cp, cs_out *o)
{
    uint8_t b[3];
    size_t l = 0;
    if (cp < 0x80) {
        b[l++] = (uint8_t)cp;
    } else if (cp < 0x800) {
        b[l++] = (uint8_t)(0xc0 | cp >> 6);
        b[l++] = (uint8_t)(0x80 | (cp & 0x3f));
    } else {
        b[l++] = (uint8_t)(0xe0 | cp >> 12);
        b[l++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        b[l++] = (uint8_t)(0x80 | (cp & 0x3f));
    }
    if (o->len + l > o->cap) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, b, l);
    o->len += l;
}

/* GB18030 through iconv, except the k_gb_compat codes, which are decoded here
 * so a GB18030-2005 sender's name is not lost to one rejected character. */
static int conv_gb18030(const char *in, size_t n, cs_out *o)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t run = 0, i = 0;
    int rc = 0;
    while (i < n && rc == 0 && !o->full) {
        uint32_t cp;
        size_t l = gb_char(s + i, n - i, &cp);
        if (l == 0)
            break; /* malformed: iconv reports it with the run */
        if (cp) {
            rc = conv_append("GB18030", in + run, i - run, o);
            if (rc == 0 && !o->full)
                put_utf8(cp, o);
            run = i + l;
        }
        i += l;
    }
    if (rc == 0 && !o->full)
        rc = conv_append("GB18030", in + run, n - run, o);
    return rc;
}

/* ISO 2022: split at ESC, convert each segment with the codec selected by the
 * last escape sequence (initially the first value's repertoire). */
static int conv_2022(const char *initial, const char *in, size_t n, cs_out *o)
{
    const char *codec = initial;
    enum cs_xform x = X_NONE;
    size_t i = 0;
    while (i < n && !o->full) {
        size_t j = i;
        while (j < n && in[j] != 0x1b)
            j++;
        if (j > i) {
            int rc = conv_segment(codec, x, in + i, j - i, o);
            if (rc)
                return rc;
        }
        if (j >= n)
            break;
        /* in[j] is ESC: find the escape sequence */
        const cs_esc *e = NULL;
        for (size_t k = 0; k < sizeof(k_esc) / sizeof(k_esc[0]); k++) {
            size_t l = strlen(k_esc[k].seq);
            if (j + 1 + l <= n && memcmp(in + j + 1, k_esc[k].seq, l) == 0) {
                e = &k_esc[k];
                break;
            }
        }
        if (!e)
            return HR_ECHARSET;
        codec = e->iconv;
        x = e->xform;
        i = j + 1 + strlen(e->seq);
    }
    return 0;
}

/* Strict UTF-8 validation (no overlongs, surrogates or > U+10FFFF). */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t l;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            l = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            l = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            l = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + l > n)
            return 0;
        for (size_t k = 1; k < l; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += l;
    }
    return 1;
}

/* Code points plausible in Chinese names and text. */
static int cjk_like(uint32_t cp)
{
    return (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0x3400 && cp <= 0x4dbf) ||
           (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) ||
           (cp >= 0xff01 && cp <= 0xff5e) || (cp >= 0x20000 && cp <= 0x2fa1f) || cp == 0x00b7 ||
           cp == 0x2022 || cp == 0x30fb;
}

/* The GB18030 rule of charset.h: every high byte belongs to a 2-byte
 * (81-FE, 40-7E|80-FE) or 4-byte (81-FE, 30-39, 81-FE, 30-39) character,
 * 2-byte characters with a high trail byte outnumber those with an ASCII trail
 * byte, and everything decodes to ASCII or CJK ideographs/punctuation. */
static int looks_gb18030(const uint8_t *s, size_t n)
{
    size_t hi_trail = 0, lo_trail = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = gb_char(s + i, n - i, &cp);
        if (l == 0)
            return 0;
        if (l == 4 || (l == 2 && s[i + 1] >= 0x80))
            hi_trail++;
        else if (l == 2)
            lo_trail++;
        i += l;
    }
    if (hi_trail == 0 || hi_trail <= lo_trail)
        return 0;

    /* decode (UTF-8 is at most 2x the GB18030 bytes) and check the code points */
    int ok = 0;
    cs_out o = {malloc(2 * n + 4), 0, 2 * n + 3, 0};
    if (!o.p || conv_gb18030((const char *)s, n, &o) || o.full)
        goto out;
    ok = 1;
    for (size_t k = 0; k < o.len && ok;) {
        uint8_t c = (uint8_t)o.p[k];
        size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        uint32_t cp = l == 1 ? c : l == 2 ? c & 0x1fu : l == 3 ? c & 0x0fu : c & 0x07u;
        for (size_t j = 1; j < l && k + j < o.len; j++)
            cp = cp << 6 | ((uint8_t)o.p[k + j] & 0x3fu);
        if (cp >= 0x80 && !cjk_like(cp))
            ok = 0;
        k += l;
    }
out:
    free(o.p);
    return ok;
}

static void ascii_subset(const char *in, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        if ((uint8_t)in[i] >= 0x20 && (uint8_t)in[i] < 0x7f)
            out[k++] = in[i];
    out[k] = '\0';
}

int dcm_charset_to_utf8(const char *specific_charset, const char *in, size_t n, char *out,
                        size_t cap, char *used, size_t used_cap, int *guessed)
{
    int rc = 0;
    char terms[CS_MAX_TERMS][32];
    size_t nt = split_terms(specific_charset, terms);
    const char *codec = NULL;
    const char *used_name = terms[0][0] ? terms[0] : "ISO_IR 6";
    int guess = 0, iso2022 = 0, has_high = 0, has_esc = 0;
    cs_out o = {out, 0, cap ? cap - 1 : 0, 0};

    if (guessed)
        *guessed = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (!in)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)in[i] >= 0x80)
            has_high = 1;
        else if (in[i] == 0x1b)
            has_esc = 1;
    }

    /* Multi-valued, or a single ISO 2022 term: code extensions. */
    for (size_t i = 0; i < nt; i++)
        if (strncmp(terms[i], "ISO 2022 ", 9) == 0)
            iso2022 = 1;
    if (nt > 1 || iso2022) {
        const char *initial = lookup(k_2022, HR_ARRAY_LEN(k_2022), terms[0]);
        if (!initial)
            initial = lookup(k_plain, HR_ARRAY_LEN(k_plain), terms[0]);
        if (!initial) {
            rc = HR_ECHARSET;
            goto out;
        }
        if (specific_charset)
            used_name = specific_charset;
        rc = conv_2022(initial, in, n, &o);
        goto out;
    }

    codec = lookup(k_plain, HR_ARRAY_LEN(k_plain), terms[0]);
    if (!codec) {
        rc = HR_ECHARSET;
        goto out;
    }
    /* Township detection: see charset.h. */
    if (has_high && !has_esc &&
        (terms[0][0] == '\0' || strcmp(terms[0], "ISO_IR 6") == 0 ||
         strcmp(terms[0], "ISO_IR 100") == 0)) {
        if (valid_utf8((const uint8_t *)in, n)) {
            codec = "UTF-8";
            used_name = "ISO_IR 192";
        } else if (looks_gb18030((const uint8_t *)in, n)) {
            codec = "GB18030";
            used_name = "GB18030";
        } else {
            codec = "ISO-8859-1";
            used_name = "ISO_IR 100";
        }
        guess = strcmp(used_name, terms[0]) != 0;
    }
    if (strcmp(codec, "GB18030") == 0)
        rc = conv_gb18030(in, n, &o);
    else
        rc = conv_append(codec, in, n, &o);

out:
    if (rc) {
        ascii_subset(in, n, out, cap);
    } else {
        out[o.len] = '\0';
    }
    copy_str(used, used_cap, used_name);
    if (guessed)
        *guessed = guess;
    return rc;
}
