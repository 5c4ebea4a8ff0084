/* HL7 v2 parser and ACK builder (decision 0036). */
#include "hl7.h"
#include "oru.h"
#include "../common/hr_err.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { K_ASCII, K_UTF8, K_GB, K_L1, K_UNKNOWN };
enum { S_START, S_SEG, S_FAILED, S_DONE };

/* One value: field/rep/comp/sub (comp 0: the whole repetition, sub 0: the
 * whole component). Empty values are not stored. */
typedef struct ent {
    uint16_t rep, comp, sub;
    const char *s;
} ent;

typedef struct fld {
    uint32_t first, n; /* entries */
    uint16_t nreps;
} fld;

struct rpt_hl7_seg {
    char name[4];
    int nfields;
    fld *f; /* f[1..nfields] */
    ent *e;
};

typedef struct block {
    struct block *next;
    size_t used, size;
    uint8_t data[];
} block;

struct rpt_hl7_msg {
    block *arena;
    size_t arena_total;
    int over; /* arena_alloc refused: RPT_HL7_MAX_ARENA reached */
    rpt_hl7_seg *segs;
    size_t nseg, aseg;
    char fs, cs, rs, ec, ss;
    int kind, loose;
    char charset[32];
    iconv_t cd; /* to UTF-8 from kind (not for ASCII/UTF-8 fast paths); (iconv_t)-1 none */
    /* scratch while building a segment */
    ent *te;
    size_t nte, ate;
    fld *tf;
    size_t atf;
    hr_buf raw, txt;
};

int rpt_hl7_err_set(rpt_hl7_err *err, const char *ack, int code, const char *seg, int seq,
                    int field, const char *fmt, ...)
{
    snprintf(err->ack, sizeof(err->ack), "%s", ack);
    err->code = code;
    snprintf(err->seg, sizeof(err->seg), "%s", seg ? seg : "");
    err->seq = seq;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return HR_EPARSE;
}

/* ---- arena ---- */

static void *arena_alloc(rpt_hl7_msg *m, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    block *b = m->arena;
    if (!b || b->size - b->used < n) {
        /* blocks grow with the message: 8 KiB first (a typical ORU), then
         * twice the total so far, at most 1 MiB */
        size_t sz = m->arena_total < 8192 ? 8192 : m->arena_total;
        if (sz > (1u << 20))
            sz = 1u << 20;
        if (sz < n)
            sz = n;
        if (m->arena_total + sz > RPT_HL7_MAX_ARENA) {
            m->over = 1;
            return NULL;
        }
        b = malloc(sizeof(block) + sz);
        if (!b)
            return NULL;
        b->size = sz;
        b->used = 0;
        b->next = m->arena;
        m->arena = b;
        m->arena_total += sz;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void rpt_hl7_free(rpt_hl7_msg *m)
{
    if (!m)
        return;
    for (block *b = m->arena, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    if (m->cd != (iconv_t)-1)
        iconv_close(m->cd);
    free(m->segs);
    free(m->te);
    free(m->tf);
    hr_buf_free(&m->raw);
    hr_buf_free(&m->txt);
    free(m);
}

/* ---- character sets ---- */

static int charset_kind(const char *name)
{
    static const struct {
        const char *name;
        int kind;
    } k[] = {{"UNICODE UTF-8", K_UTF8},
             {"UTF-8", K_UTF8},
             {"UTF8", K_UTF8},
             {"GB 18030-2000", K_GB},
             {"GB18030", K_GB},
             {"GB 18030", K_GB},
             {"GBK", K_GB},
             {"GB2312", K_GB},
             {"GB 2312", K_GB},
             {"CHINESE", K_GB},
             {"8859/1", K_L1},
             {"ISO-8859-1", K_L1},
             {"ISO IR100", K_L1},
             {"ASCII", K_ASCII},
             {"US-ASCII", K_ASCII}};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (strcasecmp(name, k[i].name) == 0)
            return k[i].kind;
    return K_UNKNOWN;
}

int rpt_hl7_charset_known(const char *name)
{
    return name && charset_kind(name) != K_UNKNOWN;
}

/* Bytes of the character at p[0..n) in kind (GB 18030: 1, 2 or 4). */
static size_t step(int kind, const uint8_t *p, size_t n)
{
    if (kind != K_GB || p[0] < 0x81 || p[0] == 0xFF || n < 2)
        return 1;
    if (p[1] >= 0x30 && p[1] <= 0x39)
        return n >= 4 ? 4 : 1;
    return 2;
}

/* Converts r[0..n) of m's charset to UTF-8 into m->txt (NUL-terminated).
 * 0, HR_ECHARSET, -ENOMEM, HR_ETOOBIG. */
static int to_utf8(rpt_hl7_msg *m, const uint8_t *r, size_t n)
{
    int rc;
    m->txt.len = 0;
    size_t i = 0;
    while (i < n && r[i] < 0x80 && r[i] != 0)
        i++;
    if (i == n || m->kind == K_UTF8) {
        /* ASCII, or UTF-8 validated below */
        if (i < n && m->kind == K_UTF8) {
            size_t j = i;
            while (j < n) {
                uint8_t c = r[j];
                size_t k = c < 0x80                 ? 1
                           : c >= 0xC2 && c <= 0xDF ? 2
                           : c >= 0xE0 && c <= 0xEF ? 3
                           : c >= 0xF0 && c <= 0xF4 ? 4
                                                    : 0;
                if (!k || c == 0 || j + k > n)
                    goto bad;
                for (size_t q = 1; q < k; q++)
                    if ((r[j + q] & 0xC0) != 0x80)
                        goto bad;
                if ((c == 0xE0 && r[j + 1] < 0xA0) || (c == 0xED && r[j + 1] > 0x9F) ||
                    (c == 0xF0 && r[j + 1] < 0x90) || (c == 0xF4 && r[j + 1] > 0x8F))
                    goto bad;
                j += k;
            }
        }
        rc = hr_buf_append(&m->txt, r, n);
        if (!rc)
            rc = hr_buf_append(&m->txt, "", 1);
        return rc;
    }
    if (m->kind == K_ASCII)
        goto bad;
    rc = hr_buf_reserve(&m->txt, 2 * n + 1);
    if (rc)
        return rc;
    iconv(m->cd, NULL, NULL, NULL, NULL);
    char *in = (char *)r, *o = (char *)m->txt.data;
    size_t il = n, ol = m->txt.alloc - 1;
    if (iconv(m->cd, &in, &il, &o, &ol) == (size_t)-1 || il)
        goto bad;
    if (iconv(m->cd, NULL, NULL, &o, &ol) == (size_t)-1)
        goto bad;
    m->txt.len = (size_t)(o - (char *)m->txt.data);
    if (memchr(m->txt.data, 0, m->txt.len))
        goto bad;
    m->txt.data[m->txt.len++] = '\0';
    return 0;
bad:
    if (m->loose) {
        /* as ISO 8859-1, control bytes as spaces */
        m->txt.len = 0;
        rc = hr_buf_reserve(&m->txt, 2 * n + 1);
        if (rc)
            return rc;
        for (size_t j = 0; j < n; j++) {
            uint8_t c = r[j] ? r[j] : ' ';
            if (c < 0x80) {
                m->txt.data[m->txt.len++] = c;
            } else {
                m->txt.data[m->txt.len++] = (uint8_t)(0xC0 | (c >> 6));
                m->txt.data[m->txt.len++] = (uint8_t)(0x80 | (c & 0x3F));
            }
        }
        m->txt.data[m->txt.len++] = '\0';
        return 0;
    }
    return HR_ECHARSET;
}

static int set_charset(rpt_hl7_msg *m, int kind, const char *name)
{
    if (m->cd != (iconv_t)-1) {
        iconv_close(m->cd);
        m->cd = (iconv_t)-1;
    }
    m->kind = kind;
    snprintf(m->charset, sizeof(m->charset), "%s", name);
    const char *from = kind == K_GB ? "GB18030" : kind == K_L1 ? "ISO-8859-1" : NULL;
    if (from) {
        m->cd = iconv_open("UTF-8", from);
        if (m->cd == (iconv_t)-1)
            return -errno;
    }
    return 0;
}

/* ---- one segment ---- */

static int hexv(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Unescapes r[0..n) into m->raw (bytes of the message charset). */
static int unescape(rpt_hl7_msg *m, const uint8_t *r, size_t n)
{
    int rc = 0;
    m->raw.len = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t k = step(m->kind, r + i, n - i);
        if (k != 1 || r[i] != (uint8_t)m->ec) {
            rc = hr_buf_append(&m->raw, r + i, k);
            i += k;
            continue;
        }
        size_t e = i + 1;
        while (e < n && r[e] != (uint8_t)m->ec)
            e += step(m->kind, r + e, n - e);
        if (e >= n) { /* unterminated: kept as it is */
            rc = hr_buf_append(&m->raw, r + i, n - i);
            break;
        }
        const uint8_t *q = r + i + 1;
        size_t ql = e - i - 1;
        char one = 0;
        if (ql == 1) {
            one = q[0] == 'F'   ? m->fs
                  : q[0] == 'S' ? m->cs
                  : q[0] == 'T' ? m->ss
                  : q[0] == 'R' ? m->rs
                  : q[0] == 'E' ? m->ec
                                : 0;
        }
        if (one) {
            rc = hr_buf_append(&m->raw, &one, 1);
        } else if (ql == 1 && (q[0] == 'H' || q[0] == 'N')) {
            /* highlighting dropped */
        } else if (ql == 3 && memcmp(q, ".br", 3) == 0) {
            rc = hr_buf_append(&m->raw, "\n", 1);
        } else if (ql >= 3 && q[0] == 'X' && (ql - 1) % 2 == 0) {
            size_t j = 1;
            for (; j < ql && hexv(q[j]) >= 0; j++)
                ;
            if (j < ql) {
                rc = hr_buf_append(&m->raw, r + i, e + 1 - i);
            } else {
                for (j = 1; j < ql && !rc; j += 2) {
                    uint8_t b = (uint8_t)(hexv(q[j]) * 16 + hexv(q[j + 1]));
                    rc = hr_buf_append(&m->raw, &b, 1);
                }
            }
        } else {
            rc = hr_buf_append(&m->raw, r + i, e + 1 - i); /* unknown: kept */
        }
        i = e + 1;
    }
    return rc;
}

static int push_ent(rpt_hl7_msg *m, int rep, int comp, int sub, const char *s)
{
    if (!*s)
        return 0;
    if (m->nte == m->ate) {
        size_t na = m->ate ? m->ate * 2 : 64;
        ent *ne = realloc(m->te, na * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        m->te = ne;
        m->ate = na;
    }
    m->te[m->nte++] = (ent){(uint16_t)rep, (uint16_t)comp, (uint16_t)sub, s};
    return 0;
}

/* A copy of s[0..n) and a NUL in the arena. */
static const char *adup(rpt_hl7_msg *m, const void *s, size_t n)
{
    char *d = arena_alloc(m, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Joins the entries [from, nte) with sub/comp numbering into one string,
 * separated by sep at each step of the key (comp for a repetition, sub for a
 * component). */
static const char *join(rpt_hl7_msg *m, size_t from, int by_comp, int count, char sep)
{
    size_t total = (size_t)count;
    for (size_t i = from; i < m->nte; i++)
        if ((by_comp && m->te[i].sub == 0) || (!by_comp && m->te[i].sub > 0))
            total += strlen(m->te[i].s);
    char *d = arena_alloc(m, total + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    int at = 1;
    for (size_t i = from; i < m->nte; i++) {
        const ent *x = &m->te[i];
        if (by_comp ? x->sub != 0 : x->sub == 0)
            continue;
        int k = by_comp ? x->comp : x->sub;
        for (; at < k; at++)
            d[o++] = sep;
        size_t l = strlen(x->s);
        memcpy(d + o, x->s, l);
        o += l;
    }
    d[o] = '\0';
    return d;
}

/* Where the current segment is (name, ordinal) for an error. */
static int seg_ord(const rpt_hl7_msg *m, const char *name)
{
    int n = 1;
    for (size_t i = 0; i < m->nseg; i++)
        if (strcmp(m->segs[i].name, name) == 0)
            n++;
    return n;
}

static int too_big(rpt_hl7_err *err, const rpt_hl7_msg *m, const char *name, int field,
                   const char *what, int max)
{
    rpt_hl7_err_set(err, "AE", 207, name, seg_ord(m, name), field,
                    "The message has more than %d %s.", max, what);
    return HR_ETOOBIG;
}

/* Splits field value r[0..n) (field number f) into entries. */
static int split_field(rpt_hl7_msg *m, const char *name, int f, const uint8_t *r, size_t n,
                       fld *out, rpt_hl7_err *err)
{
    int rc = 0;
    out->first = (uint32_t)m->nte;
    out->nreps = 0;
    if (n == 0)
        goto done;
    int rep = 0;
    size_t i = 0;
    for (;;) { /* repetitions */
        if (rep >= RPT_HL7_MAX_REPS)
            return too_big(err, m, name, f, "repetitions in a field", RPT_HL7_MAX_REPS);
        size_t rep_from = m->nte;
        int comp = 1;
        for (;;) { /* components */
            if (comp > RPT_HL7_MAX_COMPS)
                return too_big(err, m, name, f, "components in a field", RPT_HL7_MAX_COMPS);
            size_t comp_from = m->nte;
            int sub = 1;
            char end = 0;
            for (;;) { /* subcomponents */
                if (sub > RPT_HL7_MAX_COMPS)
                    return too_big(err, m, name, f, "subcomponents in a component",
                                   RPT_HL7_MAX_COMPS);
                size_t a = i;
                end = 0;
                while (i < n) {
                    size_t k = step(m->kind, r + i, n - i);
                    if (k == 1 && (r[i] == (uint8_t)m->ss || r[i] == (uint8_t)m->cs ||
                                   r[i] == (uint8_t)m->rs)) {
                        end = (char)r[i];
                        break;
                    }
                    i += k;
                }
                if (i > a) {
                    rc = unescape(m, r + a, i - a);
                    if (!rc)
                        rc = to_utf8(m, m->raw.data, m->raw.len);
                    if (rc == HR_ECHARSET)
                        return rpt_hl7_err_set(err, "AE", 102, name, seg_ord(m, name), f,
                                               "%s-%d holds bytes that are not valid %s.", name, f,
                                               m->charset);
                    if (rc)
                        goto out;
                    const char *s = adup(m, m->txt.data, m->txt.len - 1);
                    if (!s)
                        goto nomem;
                    rc = push_ent(m, rep, comp, sub, s);
                    if (rc)
                        goto out;
                }
                if (end == m->ss) {
                    i++;
                    sub++;
                    continue;
                }
                break;
            }
            /* the whole component */
            size_t nsub = m->nte - comp_from;
            if (nsub == 1 && sub == 1) {
                rc = push_ent(m, rep, comp, 0, m->te[m->nte - 1].s);
            } else if (nsub) {
                const char *s = join(m, comp_from, 0, sub, '&');
                if (!s)
                    goto nomem;
                rc = push_ent(m, rep, comp, 0, s);
            }
            if (rc)
                goto out;
            if (end == m->cs) {
                i++;
                comp++;
                continue;
            }
            break;
        }
        /* the whole repetition */
        size_t nc = 0;
        const char *last = NULL;
        for (size_t k = rep_from; k < m->nte; k++)
            if (m->te[k].sub == 0) {
                nc++;
                last = m->te[k].s;
            }
        if (nc == 1 && comp == 1) {
            rc = push_ent(m, rep, 0, 0, last);
        } else if (nc) {
            const char *s = join(m, rep_from, 1, comp, '^');
            if (!s)
                goto nomem;
            rc = push_ent(m, rep, 0, 0, s);
        }
        if (rc)
            goto out;
        rep++;
        if (i < n && r[i] == (uint8_t)m->rs) {
            i++;
            continue;
        }
        break;
    }
    out->nreps = (uint16_t)rep;
    if (rep == 1 && m->nte == out->first)
        out->nreps = 0; /* one empty repetition: empty */
done:
    out->n = (uint32_t)(m->nte - out->first);
out:
    return rc;
nomem:
    return -ENOMEM;
}

static int valid_name(const uint8_t *s, size_t n)
{
    if (n < 3 || s[0] < 'A' || s[0] > 'Z')
        return 0;
    for (int i = 1; i < 3; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Adds segment r[0..n) to m. */
static int add_segment(rpt_hl7_msg *m, const uint8_t *r, size_t n, rpt_hl7_err *err)
{
    int rc = 0;
    char name[4] = {0};
    if (m->nseg >= RPT_HL7_MAX_SEGMENTS)
        return too_big(err, m, "", 0, "segments", RPT_HL7_MAX_SEGMENTS);
    if (!valid_name(r, n) || (n > 3 && r[3] != (uint8_t)m->fs)) {
        char shown[8];
        size_t k = 0;
        for (; k < n && k < 3; k++)
            shown[k] = (r[k] >= 0x20 && r[k] < 0x7F) ? (char)r[k] : '?';
        shown[k] = '\0';
        return rpt_hl7_err_set(err, "AE", 100, "", 0, 0,
                               "Segment %zu (\"%s\") has no valid segment id.", m->nseg + 1, shown);
    }
    memcpy(name, r, 3);
    int is_msh = memcmp(name, "MSH", 3) == 0;
    if (is_msh && m->nseg > 0)
        return rpt_hl7_err_set(err, "AE", 100, "MSH", 2, 0,
                               "The message has a second MSH segment (batches are not read).");
    m->nte = 0;
    int nf = 0;
    size_t i = 4; /* first field's first byte */
    if (is_msh) {
        /* MSH-1 and MSH-2 are literal */
        size_t e = 4;
        while (e < n && r[e] != (uint8_t)m->fs)
            e++;
        const char *f1 = adup(m, &m->fs, 1);
        const char *f2 = adup(m, r + 4, e - 4);
        if (!f1 || !f2)
            return -ENOMEM;
        if (m->atf < 3) {
            fld *nf_ = realloc(m->tf, 64 * sizeof(fld));
            if (!nf_)
                return -ENOMEM;
            m->tf = nf_;
            m->atf = 64;
        }
        rc = push_ent(m, 0, 0, 0, f1);
        if (!rc)
            rc = push_ent(m, 0, 1, 0, f1);
        m->tf[1] = (fld){0, (uint32_t)m->nte, 1};
        size_t at = m->nte;
        if (!rc)
            rc = push_ent(m, 0, 0, 0, f2);
        if (!rc)
            rc = push_ent(m, 0, 1, 0, f2);
        m->tf[2] = (fld){(uint32_t)at, (uint32_t)(m->nte - at), 1};
        if (rc)
            return rc;
        nf = 2;
        i = e + 1;
        if (e >= n)
            i = n + 1;
    }
    while (i <= n) {
        size_t e = i;
        while (e < n) {
            size_t k = step(m->kind, r + e, n - e);
            if (k == 1 && r[e] == (uint8_t)m->fs)
                break;
            e += k;
        }
        nf++;
        if (nf > RPT_HL7_MAX_FIELDS)
            return too_big(err, m, name, nf, "fields in a segment", RPT_HL7_MAX_FIELDS);
        if ((size_t)nf + 1 > m->atf) {
            size_t na = m->atf ? m->atf * 2 : 64;
            fld *nf_ = realloc(m->tf, na * sizeof(fld));
            if (!nf_)
                return -ENOMEM;
            m->tf = nf_;
            m->atf = na;
        }
        rc = split_field(m, name, nf, r + i, e - i, &m->tf[nf], err);
        if (rc)
            return rc;
        i = e + 1;
    }
    /* into the arena */
    if (m->nseg == m->aseg) {
        size_t na = m->aseg ? m->aseg * 2 : 16;
        rpt_hl7_seg *ns = realloc(m->segs, na * sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        m->segs = ns;
        m->aseg = na;
    }
    rpt_hl7_seg *s = &m->segs[m->nseg];
    memcpy(s->name, name, 4);
    s->nfields = nf;
    s->f = arena_alloc(m, (size_t)(nf + 1) * sizeof(fld));
    s->e = arena_alloc(m, (m->nte ? m->nte : 1) * sizeof(ent));
    if (!s->f || !s->e)
        return -ENOMEM;
    if (nf)
        memcpy(s->f + 1, m->tf + 1, (size_t)nf * sizeof(fld));
    memset(s->f, 0, sizeof(fld));
    if (m->nte)
        memcpy(s->e, m->te, m->nte * sizeof(ent));
    m->nseg++;
    return 0;
}

/* ---- accessors ---- */

size_t rpt_hl7_nseg(const rpt_hl7_msg *m)
{
    return m->nseg;
}

const rpt_hl7_seg *rpt_hl7_seg_at(const rpt_hl7_msg *m, size_t i)
{
    return i < m->nseg ? &m->segs[i] : NULL;
}

const char *rpt_hl7_seg_name(const rpt_hl7_seg *s)
{
    return s->name;
}

const char *rpt_hl7_get(const rpt_hl7_seg *s, int field, int rep, int comp, int sub)
{
    if (!s || field < 1 || field > s->nfields || rep < 0 || comp < 0 || sub < 0 ||
        (comp == 0 && sub > 0))
        return "";
    const fld *f = &s->f[field];
    for (uint32_t i = 0; i < f->n; i++) {
        const ent *x = &s->e[f->first + i];
        if (x->rep == rep && x->comp == comp && x->sub == sub)
            return x->s;
    }
    return "";
}

int rpt_hl7_reps(const rpt_hl7_seg *s, int field)
{
    if (!s || field < 1 || field > s->nfields)
        return 0;
    return s->f[field].nreps;
}

int rpt_hl7_nfields(const rpt_hl7_seg *s)
{
    return s ? s->nfields : 0;
}

int rpt_hl7_ncomps(const rpt_hl7_seg *s, int field, int rep)
{
    if (!s || field < 1 || field > s->nfields)
        return 0;
    int n = 0;
    const fld *f = &s->f[field];
    for (uint32_t i = 0; i < f->n; i++) {
        const ent *x = &s->e[f->first + i];
        if (x->rep == rep && x->comp > n)
            n = x->comp;
    }
    return n;
}

const rpt_hl7_seg *rpt_hl7_msh(const rpt_hl7_msg *m)
{
    return m->nseg ? &m->segs[0] : NULL;
}

const rpt_hl7_seg *rpt_hl7_find(const rpt_hl7_msg *m, const char *name, size_t from, size_t *index)
{
    for (size_t i = from; i < m->nseg; i++)
        if (strcmp(m->segs[i].name, name) == 0) {
            if (index)
                *index = i;
            return &m->segs[i];
        }
    return NULL;
}

const char *rpt_hl7_charset(const rpt_hl7_msg *m)
{
    return m->charset;
}

/* ---- MSH ---- */

static int sep_ok(uint8_t c)
{
    return c > 0x20 && c < 0x7F &&
           !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
}

/* The raw first repetition of MSH field f (>= 3) of r[0..n), "" when absent. */
static void msh_raw(const uint8_t *r, size_t n, char fs, char rs, int gb, int f, char *out,
                    size_t cap)
{
    int at = 1; /* r[3] is MSH-1; fields >= 2 follow separators */
    size_t i = 4;
    while (i < n && at < f - 1) {
        size_t k = step(gb ? K_GB : K_L1, r + i, n - i);
        if (k == 1 && r[i] == (uint8_t)fs)
            at++;
        i += k;
    }
    size_t o = 0;
    if (at == f - 1 && i <= n) {
        while (i < n && r[i] != (uint8_t)fs && r[i] != (uint8_t)rs && o + 1 < cap)
            out[o++] = (char)r[i++];
    }
    out[o] = '\0';
    while (o && out[o - 1] == ' ')
        out[--o] = '\0';
}

static int is_version(const char *v)
{
    static const char *const ok[] = {"2.3", "2.3.1", "2.4", "2.5", "2.5.1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(v, ok[i]) == 0)
            return 1;
    return 0;
}

static void echo_msh(rpt_hl7_err *err, const rpt_hl7_seg *s)
{
    snprintf(err->control_id, sizeof(err->control_id), "%s", rpt_hl7_get(s, 10, 0, 0, 0));
    snprintf(err->version, sizeof(err->version), "%s", rpt_hl7_get(s, 12, 0, 1, 0));
    snprintf(err->charset, sizeof(err->charset), "%s", rpt_hl7_get(s, 18, 0, 0, 0));
    snprintf(err->app, sizeof(err->app), "%s", rpt_hl7_get(s, 3, 0, 0, 0));
    snprintf(err->facility, sizeof(err->facility), "%s", rpt_hl7_get(s, 4, 0, 0, 0));
}

/* The first segment: separators, charset, version. */
static int first_segment(rpt_hl7_parser *p, const uint8_t *r, size_t n)
{
    rpt_hl7_err *err = &p->err;
    int rc;
    if (n < 3 || memcmp(r, "MSH", 3) != 0)
        return rpt_hl7_err_set(err, "AR", 100, "MSH", 1, 0,
                               "The message does not begin with an MSH segment.");
    size_t e = 4;
    if (n < 4 || !sep_ok(r[3]))
        return rpt_hl7_err_set(err, "AR", 102, "MSH", 1, 1,
                               "MSH-1 is not a usable field separator.");
    while (e < n && r[e] != r[3])
        e++;
    size_t ne = e - 4;
    int bad = ne < 4 || ne > 5;
    for (size_t i = 4; i < e && !bad; i++) {
        bad = !sep_ok(r[i]) || r[i] == r[3];
        for (size_t j = 4; j < i && !bad; j++)
            bad = r[j] == r[i];
    }
    if (bad)
        return rpt_hl7_err_set(err, "AR", 102, "MSH", 1, 2,
                               "MSH-2 does not hold four distinct encoding characters.");
    rpt_hl7_msg *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->cd = (iconv_t)-1;
    m->loose = !!(p->flags & RPT_HL7_LOOSE);
    hr_buf_init(&m->raw, RPT_HL7_MAX_SEGMENT);
    hr_buf_init(&m->txt, 2 * (size_t)RPT_HL7_MAX_SEGMENT + 1);
    p->msg = m;
    m->fs = (char)r[3];
    m->cs = (char)r[4];
    m->rs = (char)r[5];
    m->ec = (char)r[6];
    m->ss = (char)r[7];

    /* the charset: MSH-18 read raw twice, bytewise (exact for UTF-8, 8859/1,
     * ASCII: their separators never sit inside a character) and GB-aware (a
     * GB 18030 trail byte may be '|' or '~'). A GB name read GB-aware wins; else
     * a non-GB name read bytewise (a UTF-8 message read GB-aware loses
     * separators, whatever the default); else the read of the default. */
    int dkind = charset_kind(p->default_charset);
    char cs[64], cs_gb[64];
    msh_raw(r, n, m->fs, m->rs, 0, 18, cs, sizeof(cs));
    msh_raw(r, n, m->fs, m->rs, 1, 18, cs_gb, sizeof(cs_gb));
    int kb = charset_kind(cs);
    if (charset_kind(cs_gb) == K_GB || (dkind == K_GB && !(*cs && kb != K_UNKNOWN && kb != K_GB)))
        memcpy(cs, cs_gb, sizeof(cs));
    int kind = *cs ? charset_kind(cs) : dkind;
    const char *name = *cs ? cs : p->default_charset;
    if (kind == K_UNKNOWN) {
        if (!m->loose) {
            rc = set_charset(m, K_L1, name);
            if (!rc)
                rc = add_segment(m, r, n, err);
            if (!rc)
                echo_msh(err, &m->segs[0]);
            if (rc)
                return rc;
            if (!*cs)
                return rpt_hl7_err_set(err, "AE", 207, "MSH", 1, 18,
                                       "The hub's default character set for this sender is "
                                       "not supported.");
            return rpt_hl7_err_set(err, "AE", 103, "MSH", 1, 18,
                                   "MSH-18 names a character set that is not supported.");
        }
        kind = K_L1;
    }
    rc = set_charset(m, kind, name);
    if (rc)
        return rc;
    rc = add_segment(m, r, n, err);
    if (rc)
        return rc;
    const rpt_hl7_seg *s = &m->segs[0];
    echo_msh(err, s);
    if (m->loose)
        return 0;
    if (!is_version(rpt_hl7_get(s, 12, 0, 1, 0)))
        return rpt_hl7_err_set(err, "AR", 203, "MSH", 1, 12,
                               "MSH-12 names a version that is not supported (2.3 to 2.5.1).");
    if (!*rpt_hl7_get(s, 10, 0, 0, 0))
        return rpt_hl7_err_set(err, "AE", 101, "MSH", 1, 10,
                               "MSH-10 (message control id) is empty.");
    return 0;
}

/* ---- the parser ---- */

void rpt_hl7_parser_init(rpt_hl7_parser *p, const char *default_charset, int flags)
{
    memset(p, 0, sizeof(*p));
    p->state = S_START;
    p->flags = flags;
    snprintf(p->default_charset, sizeof(p->default_charset), "%s",
             default_charset && *default_charset ? default_charset : "ASCII");
    hr_buf_init(&p->seg, RPT_HL7_MAX_SEGMENT);
}

void rpt_hl7_parser_free(rpt_hl7_parser *p)
{
    hr_buf_free(&p->seg);
    rpt_hl7_free(p->msg);
    p->msg = NULL;
}

static int fail(rpt_hl7_parser *p, int rc)
{
    if (rc == -ENOMEM && p->msg && p->msg->over) {
        rc = HR_ETOOBIG; /* the arena's cap, not the system's memory */
        rpt_hl7_err_set(&p->err, "AE", 207, "", 0, 0,
                        "The message's values need more than %u bytes.", RPT_HL7_MAX_ARENA);
    } else if (rc == -ENOMEM)
        rpt_hl7_err_set(&p->err, "AE", 207, "", 0, 0, "The hub ran out of memory.");
    else if (!p->err.ack[0])
        rpt_hl7_err_set(&p->err, "AE", 207, "", 0, 0, "The message could not be read (%s).",
                        hr_strerror(rc));
    p->state = S_FAILED;
    p->rc = rc;
    return rc;
}

/* The collected segment is complete: adds it. */
static int segment_done(rpt_hl7_parser *p)
{
    int rc;
    if (p->state == S_START)
        rc = first_segment(p, p->seg.data, p->seg.len);
    else
        rc = add_segment(p->msg, p->seg.data, p->seg.len, &p->err);
    p->seg.len = 0;
    if (rc)
        return fail(p, rc);
    p->state = S_SEG;
    return RPT_HL7_SEGMENT;
}

int rpt_hl7_parser_feed(rpt_hl7_parser *p, const uint8_t *b, size_t n, size_t *used)
{
    *used = 0;
    if (p->state == S_FAILED)
        return p->rc;
    if (p->state == S_DONE)
        return fail(p, rpt_hl7_err_set(&p->err, "AE", 207, "", 0, 0,
                                       "The parser was fed after the end of the message."));
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\r' || b[i] == '\n') {
            *used = i + 1;
            if (p->seg.len)
                return segment_done(p);
            continue;
        }
        size_t e = i;
        while (e < n && b[e] != '\r' && b[e] != '\n')
            e++;
        int rc = hr_buf_append(&p->seg, b + i, e - i);
        if (rc == HR_ETOOBIG) {
            *used = i;
            return fail(p, too_big(&p->err, p->msg ? p->msg : &(rpt_hl7_msg){0}, "", 0,
                                   "bytes in a segment", (int)RPT_HL7_MAX_SEGMENT));
        }
        if (rc) {
            *used = i;
            return fail(p, rc);
        }
        i = e - 1;
    }
    *used = n;
    return RPT_HL7_NEED_MORE;
}

int rpt_hl7_parser_finish(rpt_hl7_parser *p, rpt_hl7_msg **out)
{
    *out = NULL;
    int rc;
    if (p->state == S_FAILED)
        return p->rc;
    if (p->state == S_DONE)
        return fail(p, rpt_hl7_err_set(&p->err, "AE", 207, "", 0, 0,
                                       "The parser already handed its message over."));
    if (p->seg.len) {
        rc = segment_done(p);
        if (rc < 0)
            return rc;
    }
    if (p->state == S_START)
        return fail(p, rpt_hl7_err_set(&p->err, "AR", 100, "MSH", 1, 0,
                                       "The message is empty (no MSH segment)."));
    rpt_hl7_msg *m = p->msg;
    /* scratch back */
    free(m->te);
    m->te = NULL;
    m->nte = m->ate = 0;
    free(m->tf);
    m->tf = NULL;
    m->atf = 0;
    hr_buf_free(&m->raw);
    hr_buf_free(&m->txt);
    if (m->cd != (iconv_t)-1) {
        iconv_close(m->cd);
        m->cd = (iconv_t)-1;
    }
    p->msg = NULL;
    p->state = S_DONE;
    *out = m;
    return 0;
}

int rpt_hl7_parse(const uint8_t *msg, size_t len, const char *default_charset, rpt_hl7_msg **out,
                  rpt_hl7_err *err)
{
    rpt_hl7_parser p;
    size_t off = 0, used;
    int rc = 0;
    *out = NULL;
    rpt_hl7_parser_init(&p, default_charset, 0);
    while (off < len) {
        rc = rpt_hl7_parser_feed(&p, msg + off, len - off, &used);
        off += used;
        if (rc < 0)
            goto out;
    }
    rc = rpt_hl7_parser_finish(&p, out);
out:
    *err = p.err;
    rpt_hl7_parser_free(&p);
    return rc;
}

/* ---- ACK ---- */

static const char *code_name(int code)
{
    switch (code) {
    case 0:
        return "Message accepted";
    case 100:
        return "Segment sequence error";
    case 101:
        return "Required field missing";
    case 102:
        return "Data type error";
    case 103:
        return "Table value not found";
    case 200:
        return "Unsupported message type";
    case 201:
        return "Unsupported event code";
    case 202:
        return "Unsupported processing id";
    case 203:
        return "Unsupported version id";
    case 204:
        return "Unknown key identifier";
    case 205:
        return "Duplicate key identifier";
    case 206:
        return "Application record locked";
    default:
        return "Application internal error";
    }
}

/* Copies at most n bytes of s into t[cap] without cutting a UTF-8 character. */
static void cut_utf8(char *t, size_t cap, const char *s, size_t n)
{
    if (n > cap - 1)
        n = cap - 1;
    size_t l = strnlen(s, n);
    if (l == n && s[l] != '\0')
        while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
            l--; /* s[l] starts the character that did not fit */
    memcpy(t, s, l);
    t[l] = '\0';
}

/* Appends s (at most 200 bytes of it; ^ and & in it are the component and
 * subcomponent separators) escaped. */
static int put_joined(hr_buf *b, const char *s)
{
    int rc = 0;
    char all[201], piece[201];
    cut_utf8(all, sizeof(all), s, 200);
    s = all;
    while (!rc) {
        size_t k = strcspn(s, "^&");
        cut_utf8(piece, sizeof(piece), s, k);
        rc = rpt_hl7_escape(piece, b);
        if (rc || !s[k])
            break;
        rc = hr_buf_append(b, s + k, 1);
        s += k + 1;
    }
    return rc;
}

static int put(hr_buf *b, const char *s)
{
    return hr_buf_append(b, s, strlen(s));
}

/* Appends at most 255 bytes of s, escaped. */
static int put_esc(hr_buf *b, const char *s)
{
    char t[256];
    cut_utf8(t, sizeof(t), s, sizeof(t) - 1);
    return rpt_hl7_escape(t, b);
}

/* Converts UTF-8 u[0..n) to the charset kind onto out; characters it cannot
 * hold become '?'. */
static int from_utf8(int kind, const uint8_t *u, size_t n, hr_buf *out)
{
    int rc = 0;
    if (kind == K_UTF8)
        return hr_buf_append(out, u, n);
    const char *to = kind == K_GB ? "GB18030" : kind == K_L1 ? "ISO-8859-1" : "ASCII";
    iconv_t cd = iconv_open(to, "UTF-8");
    if (cd == (iconv_t)-1)
        return -errno;
    char *in = (char *)u;
    size_t il = n;
    while (il && !rc) {
        rc = hr_buf_reserve(out, il * 2 + 8);
        if (rc)
            break;
        char *o = (char *)out->data + out->len;
        size_t ol = out->alloc - out->len;
        size_t r = iconv(cd, &in, &il, &o, &ol);
        out->len = (size_t)((uint8_t *)o - out->data);
        if (r == (size_t)-1 && errno != E2BIG) {
            rc = hr_buf_append(out, "?", 1);
            do { /* skip one UTF-8 character */
                in++;
                il--;
            } while (il && ((uint8_t)*in & 0xC0) == 0x80);
        }
    }
    iconv_close(cd);
    return rc;
}

int rpt_hl7_ack_build(const rpt_hl7_msg *m, const char *code, const rpt_hl7_err *err,
                      const char *hub_facility, long long now_ms, hr_buf *out)
{
    static const char *const codes[] = {"AA", "AE", "AR", "CA", "CE", "CR"};
    int rc = -EINVAL;
    hr_buf b;
    hr_buf_init(&b, RPT_HL7_ACK_MAX);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (code && strcmp(code, codes[i]) == 0)
            rc = 0;
    if (rc)
        return rc;

    const rpt_hl7_seg *msh = m ? rpt_hl7_msh(m) : NULL;
    const char *cid = msh ? rpt_hl7_get(msh, 10, 0, 0, 0) : err ? err->control_id : "";
    const char *ver = msh ? rpt_hl7_get(msh, 12, 0, 1, 0) : err ? err->version : "";
    const char *app = msh ? rpt_hl7_get(msh, 3, 0, 0, 0) : err ? err->app : "";
    const char *fac = msh ? rpt_hl7_get(msh, 4, 0, 0, 0) : err ? err->facility : "";
    const char *cs = msh ? rpt_hl7_charset(m) : err ? err->charset : "";
    const char *declared = msh ? rpt_hl7_get(msh, 18, 0, 0, 0) : cs;
    const char *event = msh ? rpt_hl7_get(msh, 9, 0, 2, 0) : "";
    const char *pid = msh ? rpt_hl7_get(msh, 11, 0, 1, 0) : "";
    if (!is_version(ver))
        ver = "2.5.1";
    int kind = *cs ? charset_kind(cs) : K_ASCII;
    if (kind == K_UNKNOWN) {
        kind = K_ASCII;
        declared = "";
    }
    /* MSH-18 written when the message declared one or was read as other than ASCII */
    const char *msh18 = *declared ? declared : kind == K_ASCII ? "" : cs;

    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32], id[21];
    strftime(ts, sizeof(ts), "%Y%m%d%H%M%S+0000", &tm);
    id[0] = 'A';
    cut_utf8(id + 1, sizeof(id) - 1, cid, sizeof(id) - 2); /* whole characters */
    for (char *q = id; *q; q++)
        if (*q == '|' || *q == '^' || *q == '~' || *q == '\\' || *q == '&' ||
            (unsigned char)*q < 0x20)
            *q = '_';

    rc = put(&b, "MSH|^~\\&|HUREN|");
    if (!rc)
        rc = put_esc(&b, hub_facility ? hub_facility : "");
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put_joined(&b, app);
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put_joined(&b, fac);
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put(&b, ts);
    if (!rc)
        rc = put(&b, "||ACK^");
    if (!rc)
        rc = put_esc(&b, event);
    if (!rc)
        rc = put(&b, "^ACK|");
    if (!rc)
        rc = put(&b, id);
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put_esc(&b, *pid ? pid : "P");
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put(&b, ver);
    if (!rc && *msh18) {
        rc = put(&b, "||||||");
        if (!rc)
            rc = put_esc(&b, msh18);
    }
    if (!rc)
        rc = put(&b, "\rMSA|");
    if (!rc)
        rc = put(&b, code);
    if (!rc)
        rc = put(&b, "|");
    if (!rc)
        rc = put_esc(&b, cid);
    if (!rc && err && *err->text) {
        rc = put(&b, "|");
        if (!rc)
            rc = put_esc(&b, err->text);
    }
    if (!rc)
        rc = put(&b, "\r");
    if (!rc && err) {
        char loc[64] = "", num[16];
        if (err->seg[0] && err->field > 0)
            snprintf(loc, sizeof(loc), "%s^%d^%d", err->seg, err->seq > 0 ? err->seq : 1,
                     err->field);
        else if (err->seg[0])
            snprintf(loc, sizeof(loc), "%s^%d", err->seg, err->seq > 0 ? err->seq : 1);
        snprintf(num, sizeof(num), "%d", err->code);
        rc = put(&b, "ERR|");
        if (!rc && (strcmp(ver, "2.5") < 0)) { /* 2.3, 2.4: ERR-1 ELD */
            rc = put(&b, loc);
            if (!rc)
                rc = put(&b, *loc ? "^" : "^^^");
            if (!rc)
                rc = put(&b, num);
            if (!rc)
                rc = put(&b, "&");
            if (!rc)
                rc = put(&b, code_name(err->code));
            if (!rc)
                rc = put(&b, "&HL70357");
        }
        if (!rc)
            rc = put(&b, "|");
        if (!rc)
            rc = put(&b, loc);
        if (!rc)
            rc = put(&b, "|");
        if (!rc)
            rc = put(&b, num);
        if (!rc)
            rc = put(&b, "^");
        if (!rc)
            rc = put(&b, code_name(err->code));
        if (!rc)
            rc = put(&b, "^HL70357|E||||");
        if (!rc)
            rc = put_esc(&b, err->text);
        if (!rc)
            rc = put(&b, "\r");
    }
    if (!rc) {
        size_t start = out->len;
        rc = from_utf8(kind, b.data, b.len, out);
        if (!rc && out->len - start > RPT_HL7_ACK_MAX)
            rc = HR_ETOOBIG;
        if (rc)
            out->len = start;
    }
    hr_buf_free(&b);
    return rc;
}
