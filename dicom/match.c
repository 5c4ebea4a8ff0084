#include "match.h"
#include "../common/hr_err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX 1024 /* one value of a multi-valued attribute */

static int vr_is(const char vr[2], const char *name)
{
    return vr[0] == name[0] && vr[1] == name[1];
}

static int vr_is_range(const char vr[2])
{
    return vr_is(vr, "DA") || vr_is(vr, "TM") || vr_is(vr, "DT");
}

/* PS3.4 C.2.2.2.4: wildcards for these VRs only */
static int vr_allows_wildcard(const char vr[2])
{
    static const char *const v[] = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (vr_is(vr, v[i]))
            return 1;
    return 0;
}

enum dcm_match_kind dcm_match_kind(const char vr[2], const char *key)
{
    if (!key || !*key || strcmp(key, "*") == 0)
        return DCM_MATCH_UNIVERSAL;
    if (strchr(key, '\\'))
        return DCM_MATCH_LIST;
    if (vr_is_range(vr) && strchr(key, '-'))
        return DCM_MATCH_RANGE;
    if (vr_allows_wildcard(vr) && strpbrk(key, "*?"))
        return DCM_MATCH_WILDCARD;
    return DCM_MATCH_SINGLE;
}

static int char_eq(unsigned char a, unsigned char b, int fold)
{
    return fold ? tolower(a) == tolower(b) : a == b;
}

/* Length of the UTF-8 character at p (1 for invalid bytes). */
static size_t utf8_len(const unsigned char *p)
{
    if (*p < 0x80)
        return 1;
    size_t n = (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

/* Wildcard match over [v, v_end): '*' any run, '?' one character (UTF-8
 * aware). Iterative with one backtrack point: O(len(key) * len(value)). */
static int wild(const char *k, const char *v, const char *v_end, int fold)
{
    const char *star_k = NULL, *star_v = NULL;
    while (v < v_end) {
        if (*k == '*') {
            star_k = ++k;
            star_v = v;
            continue;
        }
        if (*k == '?') {
            k++;
            v += utf8_len((const unsigned char *)v);
            continue;
        }
        if (*k && char_eq((unsigned char)*k, (unsigned char)*v, fold)) {
            k++;
            v++;
            continue;
        }
        if (!star_k)
            return 0;
        k = star_k;
        v = star_v + utf8_len((const unsigned char *)star_v);
        star_v = v;
    }
    while (*k == '*')
        k++;
    return *k == '\0';
}

static int literal(const char *k, const char *v, const char *v_end, int fold)
{
    size_t n = (size_t)(v_end - v);
    if (strlen(k) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!char_eq((unsigned char)k[i], (unsigned char)v[i], fold))
            return 0;
    return 1;
}

/* Normalised sortable form of a DA/TM/DT bound; upper bounds are widened
 * over missing precision. Returns 0 or -1 when malformed. */
static int norm_bound(const char vr[2], const char *s, size_t n, int upper, char *out, size_t cap)
{
    const char *full_lo, *full_hi;
    size_t digits_max;
    if (vr_is(vr, "DA")) {
        full_lo = "00000000";
        full_hi = "99999999";
        digits_max = 8;
    } else if (vr_is(vr, "TM")) {
        full_lo = "000000.000000";
        full_hi = "235959.999999";
        digits_max = 13;
    } else {
        full_lo = "00000000000000.000000";
        full_hi = "99991231235959.999999";
        digits_max = 21;
    }
    /* DT may carry a UTC offset (+hhmm): it is ignored for ordering */
    if (vr_is(vr, "DT"))
        for (size_t i = 1; i < n; i++)
            if (s[i] == '+' || (s[i] == '-' && i > 0))
                n = i;
    if (n == 0 || n > digits_max || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] == '.' && full_lo[i] == '.'))
            return -1;
    memcpy(out, s, n);
    strcpy(out + n, (upper ? full_hi : full_lo) + n);
    return 0;
}

/* The stored value, itself an interval at its precision, overlaps the key's
 * range [lo, hi] (either end may be open). */
static int in_range(const char vr[2], const char *key, const char *v, const char *v_end)
{
    char lo[32], hi[32], vlo[32], vhi[32];
    const char *dash = strchr(key, '-');
    size_t vn = (size_t)(v_end - v);
    if (vr_is(vr, "DT")) /* skip a leading UTC-offset sign inside the low bound */
        for (const char *p = key; *p; p++)
            if (*p == '-' && (p - key == 0 || p - key >= 4)) {
                dash = p;
                break;
            }
    if (!dash)
        return 0;
    size_t ln = (size_t)(dash - key), hn = strlen(dash + 1);
    if (norm_bound(vr, v, vn, 0, vlo, sizeof(vlo)) || norm_bound(vr, v, vn, 1, vhi, sizeof(vhi)))
        return 0;
    if (ln && (norm_bound(vr, key, ln, 0, lo, sizeof(lo)) || strcmp(vhi, lo) < 0))
        return 0;
    if (hn && (norm_bound(vr, dash + 1, hn, 1, hi, sizeof(hi)) || strcmp(vlo, hi) > 0))
        return 0;
    return 1;
}

/* One stored value [v, v_end) against one key value. */
static int match_one(const char vr[2], const char *key, enum dcm_match_kind kind, const char *v,
                     const char *v_end)
{
    int fold = vr_is(vr, "PN");
    if (vr_is(vr, "PN") && !strchr(key, '=')) {
        /* try each component group: Alphabetic, Ideographic, Phonetic */
        const char *g = v;
        for (;;) {
            const char *e = memchr(g, '=', (size_t)(v_end - g));
            const char *ge = e ? e : v_end;
            if (ge > g &&
                (kind == DCM_MATCH_WILDCARD ? wild(key, g, ge, fold) : literal(key, g, ge, fold)))
                return 1;
            if (!e)
                return 0;
            g = e + 1;
        }
    }
    switch (kind) {
    case DCM_MATCH_WILDCARD:
        return wild(key, v, v_end, fold);
    case DCM_MATCH_RANGE:
        return in_range(vr, key, v, v_end);
    default:
        if (vr_is(vr, "DA") || vr_is(vr, "TM") || vr_is(vr, "DT")) {
            /* a single date/time matches the same instant at its precision */
            return literal(key, v, v_end, 0);
        }
        return literal(key, v, v_end, fold);
    }
}

/* Any value of the stored (possibly multi-valued) attribute matches key. */
static int match_value(const char vr[2], const char *key, enum dcm_match_kind kind,
                       const char *value)
{
    const char *p = value;
    for (;;) {
        const char *e = strchr(p, '\\');
        const char *pe = e ? e : p + strlen(p);
        if (match_one(vr, key, kind, p, pe))
            return 1;
        if (!e)
            return 0;
        p = e + 1;
    }
}

int dcm_match(const char vr[2], const char *key, const char *value)
{
    enum dcm_match_kind kind = dcm_match_kind(vr, key);
    if (kind == DCM_MATCH_UNIVERSAL)
        return 1;
    if (!value || !*value)
        return 0;
    if (kind != DCM_MATCH_LIST)
        return match_value(vr, key, kind, value);
    char one[VALUE_MAX];
    const char *p = key;
    for (;;) {
        const char *e = strchr(p, '\\');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = '\0';
            enum dcm_match_kind k = dcm_match_kind(vr, one);
            if (k != DCM_MATCH_UNIVERSAL && match_value(vr, one, k, value))
                return 1;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

int dcm_date_bounds(const char *key, long *lo, long *hi)
{
    char b[16];
    const char *dash = strchr(key, '-');
    size_t ln = dash ? (size_t)(dash - key) : strlen(key);
    const char *h = dash ? dash + 1 : key;
    size_t hn = strlen(h);
    *lo = 0;
    *hi = 99999999;
    if (!dash && ln == 0)
        return HR_EPARSE;
    if (ln) {
        if (ln != 8 || norm_bound("DA", key, ln, 0, b, sizeof(b)))
            return HR_EPARSE;
        *lo = strtol(b, NULL, 10);
    }
    if (hn) {
        if (hn != 8 || norm_bound("DA", h, hn, 1, b, sizeof(b)))
            return HR_EPARSE;
        *hi = strtol(b, NULL, 10);
    }
    return 0;
}
