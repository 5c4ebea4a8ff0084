#include "query.h"
#include "access.h"
#include "keys.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../dicom/match.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))
#define BATCH     64

enum src { SRC_PATIENT, SRC_STUDY, SRC_SERIES, SRC_INSTANCE, SRC_MODS, SRC_PT_STUDIES };

/* Index field of each attribute per level. Patient attributes are copied
 * into the study hash, so studies answer them without another lookup. */
typedef struct qattr {
    enum sto_qlevel level;
    uint32_t tag;
    const char *vr;
    enum src src;
    const char *field;
} qattr;

static const qattr k_attrs[] = {
    {STO_Q_PATIENT, TAG(0x0010, 0x0010), "PN", SRC_PATIENT, "name"},
    {STO_Q_PATIENT, TAG(0x0010, 0x0020), "LO", SRC_PATIENT, "id"},
    {STO_Q_PATIENT, TAG(0x0010, 0x0021), "LO", SRC_PATIENT, "issuer"},
    {STO_Q_PATIENT, TAG(0x0010, 0x0030), "DA", SRC_PATIENT, "birth_date"},
    {STO_Q_PATIENT, TAG(0x0010, 0x0040), "CS", SRC_PATIENT, "sex"},
    {STO_Q_PATIENT, TAG(0x0020, 0x1200), "IS", SRC_PT_STUDIES, NULL},
    {STO_Q_STUDY, TAG(0x0010, 0x0010), "PN", SRC_STUDY, "patient_name"},
    {STO_Q_STUDY, TAG(0x0010, 0x0020), "LO", SRC_STUDY, "patient_id"},
    {STO_Q_STUDY, TAG(0x0010, 0x0021), "LO", SRC_STUDY, "issuer"},
    {STO_Q_STUDY, TAG(0x0010, 0x0030), "DA", SRC_STUDY, "birth_date"},
    {STO_Q_STUDY, TAG(0x0010, 0x0040), "CS", SRC_STUDY, "sex"},
    {STO_Q_STUDY, TAG(0x0020, 0x000D), "UI", SRC_STUDY, "uid"},
    {STO_Q_STUDY, TAG(0x0008, 0x0020), "DA", SRC_STUDY, "date"},
    {STO_Q_STUDY, TAG(0x0008, 0x0030), "TM", SRC_STUDY, "time"},
    {STO_Q_STUDY, TAG(0x0008, 0x0050), "SH", SRC_STUDY, "accession"},
    {STO_Q_STUDY, TAG(0x0008, 0x0080), "LO", SRC_STUDY, "institution"},
    {STO_Q_STUDY, TAG(0x0008, 0x0090), "PN", SRC_STUDY, "referring"},
    {STO_Q_STUDY, TAG(0x0008, 0x1030), "LO", SRC_STUDY, "description"},
    {STO_Q_STUDY, TAG(0x0020, 0x0010), "SH", SRC_STUDY, "id"},
    {STO_Q_STUDY, TAG(0x0008, 0x0061), "CS", SRC_MODS, NULL},
    {STO_Q_STUDY, TAG(0x0020, 0x1206), "IS", SRC_STUDY, "series"},
    {STO_Q_STUDY, TAG(0x0020, 0x1208), "IS", SRC_STUDY, "instances"},
    /* private, creator "HUREN 1" (docs/index-schema.md): "YES" when flagged */
    {STO_Q_STUDY, TAG(0x0009, 0x1010), "CS", SRC_STUDY, "patient_conflict"},
    {STO_Q_SERIES, TAG(0x0020, 0x000D), "UI", SRC_SERIES, "study"},
    {STO_Q_SERIES, TAG(0x0020, 0x000E), "UI", SRC_SERIES, "uid"},
    {STO_Q_SERIES, TAG(0x0008, 0x0060), "CS", SRC_SERIES, "modality"},
    {STO_Q_SERIES, TAG(0x0020, 0x0011), "IS", SRC_SERIES, "number"},
    {STO_Q_SERIES, TAG(0x0008, 0x103E), "LO", SRC_SERIES, "description"},
    {STO_Q_SERIES, TAG(0x0008, 0x0021), "DA", SRC_SERIES, "date"},
    {STO_Q_SERIES, TAG(0x0018, 0x0015), "CS", SRC_SERIES, "body_part"},
    {STO_Q_SERIES, TAG(0x0020, 0x1209), "IS", SRC_SERIES, "instances"},
    {STO_Q_IMAGE, TAG(0x0020, 0x000D), "UI", SRC_INSTANCE, "study"},
    {STO_Q_IMAGE, TAG(0x0020, 0x000E), "UI", SRC_INSTANCE, "series"},
    {STO_Q_IMAGE, TAG(0x0008, 0x0018), "UI", SRC_INSTANCE, "sop"},
    {STO_Q_IMAGE, TAG(0x0008, 0x0016), "UI", SRC_INSTANCE, "sop_class"},
    {STO_Q_IMAGE, TAG(0x0020, 0x0013), "IS", SRC_INSTANCE, "number"},
    {STO_Q_IMAGE, TAG(0x0028, 0x0008), "IS", SRC_INSTANCE, "frames"},
};

static const qattr *find_attr(enum sto_qlevel level, uint32_t tag)
{
    for (size_t i = 0; i < sizeof(k_attrs) / sizeof(k_attrs[0]); i++)
        if (k_attrs[i].level == level && k_attrs[i].tag == tag)
            return &k_attrs[i];
    return NULL;
}

const char *sto_query_vr(enum sto_qlevel level, uint32_t tag)
{
    const qattr *a = find_attr(level, tag);
    return a ? a->vr : NULL;
}

static const char *key_value(const sto_query *q, uint32_t tag)
{
    for (int i = 0; i < q->n_keys; i++)
        if (q->keys[i].tag == tag)
            return q->keys[i].value;
    return "";
}

/* A growable list of UIDs / keys (owned copies). */
typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static int sl_add(strlist *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = strndup(s, n);
    if (!l->v[l->n])
        return -ENOMEM;
    l->n++;
    return 0;
}

static void sl_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Splits a '\'-separated UID key into the list. */
static int sl_split(strlist *l, const char *key)
{
    const char *p = key;
    for (;;) {
        const char *e = strchr(p, '\\');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            int rc = sl_add(l, p, n);
            if (rc)
                return rc;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Appends the string elements of an array reply. */
static int sl_reply(strlist *l, redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return HR_EREDIS;
    for (size_t i = 0; i < r->elements; i++) {
        int rc = sl_add(l, r->element[i]->str, (size_t)r->element[i]->len);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmd_list(redisContext *c, strlist *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = sl_reply(l, r);
    freeReplyObject(r);
    return rc;
}

static int owner_visible(redisContext *c, const sto_query *q, const char *study, const char *owner);

/* An escaped key component (storage/keys.h) of a query value; a value too
 * long to be indexed matches nothing ("" never is a stored component of a
 * non-empty value). */
static const char *esc(const char *v, char out[STO_KEY_PART_MAX])
{
    if (sto_key_part(v, out, STO_KEY_PART_MAX))
        snprintf(out, STO_KEY_PART_MAX, "%%");
    return out;
}

static const char *hash_get(const redisReply *h, const char *field)
{
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return "";
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->str;
    return "";
}

/* ---- patient-name keys ---- */

void sto_pn_norm(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    if (!cap)
        return;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

#define PN_MAX (STO_Q_VALUE_MAX + 8)
/* Groups longer than this (bytes) have only their whole form in hr:ix:pns
 * (index_script.lua: the same number). */
#define STO_PN_SUFFIX_MAX 256

/* How a PN key selects from the name indexes: a prefix of a component group
 * in hr:ix:pn (exact: the whole group), or a literal run inside a group in
 * hr:ix:pns (every suffix of every group). lit is normalized. */
typedef struct pn_sel {
    int usable, infix, exact;
    char lit[PN_MAX];
} pn_sel;

static int is_wild(char ch)
{
    return ch == '*' || ch == '?';
}

/* The longest run of [p, e) free of the bytes in stops. */
static void longest_run(const char *p, const char *e, const char *stops, char *out, size_t cap)
{
    size_t best = 0;
    const char *bp = p;
    while (p < e) {
        const char *q = p;
        while (q < e && !strchr(stops, *q))
            q++;
        if ((size_t)(q - p) > best) {
            best = (size_t)(q - p);
            bp = p;
        }
        p = q < e ? q + 1 : q;
    }
    if (best >= cap)
        best = cap - 1;
    memcpy(out, bp, best);
    out[best] = '\0';
}

static void pn_select(const char *key, pn_sel *s)
{
    char k[PN_MAX];
    memset(s, 0, sizeof(*s));
    enum dcm_match_kind kind = dcm_match_kind("PN", key);
    if ((kind != DCM_MATCH_SINGLE && kind != DCM_MATCH_WILDCARD) || strlen(key) >= sizeof(k))
        return;
    sto_pn_norm(key, k, sizeof(k));
    size_t pre = 0;
    while (k[pre] && !is_wild(k[pre]))
        pre++;
    if (!strchr(k, '=')) {
        if (pre) {
            memcpy(s->lit, k, pre);
            s->lit[pre] = '\0';
            s->exact = kind == DCM_MATCH_SINGLE;
        } else {
            longest_run(k, k + strlen(k), "*?", s->lit, sizeof(s->lit));
            s->infix = 1;
        }
    } else {
        /* whole-value matching: segment i of the literal prefix is group i
         * (the last one possibly a prefix of it); else a run inside a group */
        longest_run(k, k + pre, "=", s->lit, sizeof(s->lit));
        if (!s->lit[0]) {
            longest_run(k, k + strlen(k), "*?=", s->lit, sizeof(s->lit));
            s->infix = 1;
        }
    }
    s->usable = s->lit[0] != '\0';
}

/* ---- candidate sources ---- */

enum qsrc {
    QS_NONE,
    QS_UIDS,  /* the key's UID list */
    QS_ACC,   /* hr:ix:acc:<acc> */
    QS_PID,   /* studies of the patients hr:ix:pid:<id> */
    QS_PTPID, /* PATIENT level: the patient keys hr:ix:pid:<id> */
    QS_PN,    /* hr:ix:pn lex range */
    QS_PNS,   /* hr:ix:pns lex range */
    QS_MOD,   /* hr:ix:mod:<m> by date, newest first */
    QS_DATE,  /* hr:ix:date by date range, newest first */
    QS_HOSP,  /* hr:ix:hosp:<h>, last received first */
    QS_ALL,   /* hr:ix:date, newest first */
    QS_CHILD, /* SERIES / IMAGE level: score = children enumerated before */
    QS_COUNT
};

#define KEY_MAX   (STO_KEY_PART_MAX + 32)
#define BATCH_MIN 8

/* A position in a source: the last candidate handed out. */
typedef struct qpos {
    int set;
    long long score;
    char member[PN_MAX + 80];
    size_t len;
} qpos;

typedef struct source {
    enum qsrc kind;
    char key[KEY_MAX];
    long lo, hi;             /* score sources */
    char lex_lo[PN_MAX + 4]; /* lex sources: "[..." */
    char lex_hi[PN_MAX + 4]; /* "(...\xff" */
    size_t lex_lo_len, lex_hi_len;
    pn_sel pn;    /* QS_PN / QS_PNS */
    strlist list; /* list sources: sorted */
    size_t list_next;
    int done;
    qpos pos; /* last handed out (starts at the cursor) */
} source;

/* One candidate of a batch. */
typedef struct cand {
    char id[PN_MAX + 80]; /* study UID (patient key for QS_PTPID) */
    qpos pos;
} cand;

static int is_list_src(enum qsrc k)
{
    return k == QS_UIDS || k == QS_ACC || k == QS_PID || k == QS_PTPID;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "<kind>.<score>.<hex member>" */
static void pos_encode(enum qsrc kind, const qpos *p, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%d.%lld.", (int)kind, p->score);
    for (size_t i = 0; n > 0 && (size_t)n + 3 < cap && i < p->len; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", (unsigned char)p->member[i]);
}

static int pos_decode(const char *s, enum qsrc *kind, qpos *p)
{
    char *end;
    memset(p, 0, sizeof(*p));
    long k = strtol(s, &end, 10);
    if (end == s || *end != '.' || k <= QS_NONE || k >= QS_COUNT)
        return HR_EPARSE;
    s = end + 1;
    p->score = strtoll(s, &end, 10);
    if (end == s || *end != '.')
        return HR_EPARSE;
    s = end + 1;
    size_t n = strlen(s);
    if (n % 2 || n / 2 >= sizeof(p->member))
        return HR_EPARSE; /* empty: before the first candidate */
    if (hr_hex_decode(s, n / 2, p->member))
        return HR_EPARSE;
    p->len = n / 2;
    p->member[p->len] = '\0';
    p->set = p->len > 0;
    *kind = (enum qsrc)k;
    return 0;
}

/* Prepares src of this kind for q: keys, bounds. HR_EPARSE when the query
 * cannot use it (a cursor of another query). */
static int src_setup(const sto_query *q, enum qsrc kind, source *src)
{
    const char *uid = key_value(q, TAG(0x0020, 0x000D));
    const char *date = key_value(q, TAG(0x0008, 0x0020));
    const char *mods = key_value(q, TAG(0x0008, 0x0061));
    char e[STO_KEY_PART_MAX];
    enum dcm_match_kind k;
    src->kind = kind;
    src->lo = 0;
    src->hi = 99999999;
    switch (kind) {
    case QS_UIDS:
        k = dcm_match_kind("UI", uid);
        return k == DCM_MATCH_SINGLE || k == DCM_MATCH_LIST ? 0 : HR_EPARSE;
    case QS_ACC:
        if (dcm_match_kind("SH", key_value(q, TAG(0x0008, 0x0050))) != DCM_MATCH_SINGLE)
            return HR_EPARSE;
        snprintf(src->key, KEY_MAX, "hr:ix:acc:%s", esc(key_value(q, TAG(0x0008, 0x0050)), e));
        return 0;
    case QS_PID:
    case QS_PTPID:
        if (dcm_match_kind("LO", key_value(q, TAG(0x0010, 0x0020))) != DCM_MATCH_SINGLE)
            return HR_EPARSE;
        snprintf(src->key, KEY_MAX, "hr:ix:pid:%s", esc(key_value(q, TAG(0x0010, 0x0020)), e));
        return 0;
    case QS_PN:
    case QS_PNS: {
        pn_select(key_value(q, TAG(0x0010, 0x0010)), &src->pn);
        if (!src->pn.usable || src->pn.infix != (kind == QS_PNS))
            return HR_EPARSE;
        size_t n = strlen(src->pn.lit);
        snprintf(src->key, KEY_MAX, kind == QS_PN ? "hr:ix:pn" : "hr:ix:pns");
        src->lex_lo[0] = '[';
        memcpy(src->lex_lo + 1, src->pn.lit, n);
        src->lex_lo_len = n + 1;
        if (src->pn.exact)
            src->lex_lo[src->lex_lo_len++] = '\0';
        memcpy(src->lex_hi, src->lex_lo, src->lex_lo_len);
        src->lex_hi[0] = '(';
        src->lex_hi_len = src->lex_lo_len;
        src->lex_hi[src->lex_hi_len++] = (char)0xff;
        return 0;
    }
    case QS_MOD:
        if (dcm_match_kind("CS", mods) != DCM_MATCH_SINGLE)
            return HR_EPARSE;
        snprintf(src->key, KEY_MAX, "hr:ix:mod:%s", esc(mods, e));
        if (*date && dcm_date_bounds(date, &src->lo, &src->hi))
            src->lo = 0, src->hi = 99999999;
        return 0;
    case QS_DATE:
        if (!*date || dcm_date_bounds(date, &src->lo, &src->hi))
            return HR_EPARSE;
        snprintf(src->key, KEY_MAX, "hr:ix:date");
        return 0;
    case QS_HOSP:
        if (!q->hospital || q->center) /* a center's studies are not all in one set */
            return HR_EPARSE;
        snprintf(src->key, KEY_MAX, "hr:ix:hosp:%s", esc(q->hospital, e));
        src->lo = 0;
        src->hi = -1; /* no score bounds */
        return 0;
    case QS_ALL:
        snprintf(src->key, KEY_MAX, "hr:ix:date");
        return 0;
    default:
        return HR_EPARSE;
    }
}

/* The source with the fewest candidates among those the query can use. */
static int src_choose(redisContext *c, const sto_query *q, int patients, source *src)
{
    static const enum qsrc keyed[] = {QS_UIDS, QS_ACC, QS_PID};
    static const enum qsrc counted[] = {QS_PN, QS_PNS, QS_MOD, QS_DATE, QS_HOSP};
    source tmp;
    if (patients && src_setup(q, QS_PTPID, src) == 0)
        return 0;
    for (size_t i = 0; !patients && i < sizeof(keyed) / sizeof(keyed[0]); i++)
        if (src_setup(q, keyed[i], src) == 0)
            return 0;
    enum qsrc usable[8];
    int n = 0;
    for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
        memset(&tmp, 0, sizeof(tmp));
        if (src_setup(q, counted[i], &tmp))
            continue;
        usable[n++] = counted[i];
        if (counted[i] == QS_PN || counted[i] == QS_PNS)
            redisAppendCommand(c, "ZLEXCOUNT %s %b %b", tmp.key, tmp.lex_lo, tmp.lex_lo_len,
                               tmp.lex_hi, tmp.lex_hi_len);
        else if (counted[i] == QS_HOSP)
            redisAppendCommand(c, "ZCARD %s", tmp.key);
        else
            redisAppendCommand(c, "ZCOUNT %s %ld %ld", tmp.key, tmp.lo, tmp.hi);
    }
    enum qsrc best = QS_ALL;
    long long best_n = -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS; /* the connection is unusable now */
        if (!r || r->type != REDIS_REPLY_INTEGER)
            rc = HR_EREDIS;
        else if (best_n < 0 || r->integer < best_n)
            best = usable[i], best_n = r->integer;
        freeReplyObject(r);
    }
    if (rc)
        return rc;
    memset(src, 0, sizeof(*src));
    return src_setup(q, best, src);
}

static long long reply_score(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return r->str ? (long long)strtod(r->str, NULL) : 0;
}

/* List sources: the sorted list, loaded once. */
static int src_load_list(redisContext *c, const sto_query *q, source *src)
{
    int rc = 0;
    if (src->kind == QS_UIDS) {
        rc = sl_split(&src->list, key_value(q, TAG(0x0020, 0x000D)));
    } else if (src->kind == QS_ACC || src->kind == QS_PTPID) {
        rc = cmd_list(c, &src->list, "SMEMBERS %s", src->key);
    } else {
        strlist pk = {0};
        rc = cmd_list(c, &pk, "SMEMBERS %s", src->key);
        for (size_t i = 0; !rc && i < pk.n; i++)
            rc = cmd_list(c, &src->list, "ZRANGE hr:pt:%s:st 0 -1", pk.v[i]);
        sl_free(&pk);
    }
    if (rc)
        return rc;
    qsort(src->list.v, src->list.n, sizeof(char *), cmp_str);
    /* resume after the cursor; drop duplicates (a study under two patient keys) */
    size_t w = 0;
    for (size_t i = 0; i < src->list.n; i++) {
        if ((src->pos.set && strcmp(src->list.v[i], src->pos.member) <= 0) ||
            (w && strcmp(src->list.v[w - 1], src->list.v[i]) == 0)) {
            free(src->list.v[i]);
            continue;
        }
        src->list.v[w++] = src->list.v[i];
    }
    src->list.n = w;
    return 0;
}

/* Appends an array reply's members (and scores) as candidates. */
static size_t take_reply(source *src, const redisReply *r, int scores, cand *out, size_t max)
{
    size_t n = 0;
    size_t step = scores ? 2 : 1;
    for (size_t i = 0; i + step - 1 < r->elements && n < max; i += step) {
        const redisReply *m = r->element[i];
        cand *cd = &out[n];
        memset(&cd->pos, 0, sizeof(cd->pos));
        if (m->type != REDIS_REPLY_STRING || (size_t)m->len >= sizeof(cd->pos.member))
            continue; /* never written by the index script */
        cd->pos.set = 1;
        cd->pos.score = scores ? reply_score(r->element[i + 1]) : 0;
        if (scores && src->kind != QS_HOSP && cd->pos.score < src->lo) {
            src->done = 1; /* below the range (rank walk) */
            break;
        }
        memcpy(cd->pos.member, m->str, (size_t)m->len);
        cd->pos.member[m->len] = '\0';
        cd->pos.len = (size_t)m->len;
        src->pos = cd->pos; /* the next batch starts after it */
        const char *id = m->str;
        if (src->kind == QS_PN || src->kind == QS_PNS) {
            const char *z = memchr(m->str, '\0', (size_t)m->len);
            if (!z)
                continue;
            id = z + 1;
        }
        snprintf(cd->id, sizeof(cd->id), "%s", id);
        n++;
    }
    return n;
}

/* The next at most max candidates after src->pos. */
static int src_next(redisContext *c, const sto_query *q, source *src, cand *out, size_t max,
                    size_t *got)
{
    redisReply *r = NULL;
    *got = 0;
    if (src->done)
        return 0;
    if (is_list_src(src->kind)) {
        if (!src->list.v && src->list_next == 0) {
            int rc = src_load_list(c, q, src);
            if (rc)
                return rc;
        }
        while (*got < max && src->list_next < src->list.n) {
            cand *cd = &out[(*got)++];
            const char *v = src->list.v[src->list_next++];
            memset(&cd->pos, 0, sizeof(cd->pos));
            snprintf(cd->id, sizeof(cd->id), "%s", v);
            snprintf(cd->pos.member, sizeof(cd->pos.member), "%s", v);
            cd->pos.len = strlen(cd->pos.member);
            cd->pos.set = 1;
        }
        src->done = src->list_next >= src->list.n;
        return 0;
    }
    if (src->kind == QS_PN || src->kind == QS_PNS) {
        if (src->pos.set) {
            char lo[sizeof(src->pos.member) + 1];
            lo[0] = '(';
            memcpy(lo + 1, src->pos.member, src->pos.len);
            r = redisCommand(c, "ZRANGEBYLEX %s %b %b LIMIT 0 %d", src->key, lo, src->pos.len + 1,
                             src->lex_hi, src->lex_hi_len, (int)max);
        } else {
            r = redisCommand(c, "ZRANGEBYLEX %s %b %b LIMIT 0 %d", src->key, src->lex_lo,
                             src->lex_lo_len, src->lex_hi, src->lex_hi_len, (int)max);
        }
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return HR_EREDIS;
        }
        *got = take_reply(src, r, 0, out, max);
        if (r->elements < max)
            src->done = 1;
        freeReplyObject(r);
        return 0;
    }
    /* score sources, newest first: from the top of the range, then after the
     * last member by its rank (exact whatever the ties and the insertions) */
    char hi[32], lo[32];
    snprintf(hi, sizeof(hi), "%ld", src->hi);
    snprintf(lo, sizeof(lo), "%ld", src->lo);
    if (src->kind == QS_HOSP)
        snprintf(hi, sizeof(hi), "+inf"), snprintf(lo, sizeof(lo), "-inf");
    if (!src->pos.set) {
        r = redisCommand(c, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT 0 %d", src->key, hi, lo,
                         (int)max);
    } else {
        redisReply *rk = redisCommand(c, "ZREVRANK %s %b", src->key, src->pos.member, src->pos.len);
        if (!rk || (rk->type != REDIS_REPLY_INTEGER && rk->type != REDIS_REPLY_NIL)) {
            freeReplyObject(rk);
            return HR_EREDIS;
        }
        if (rk->type == REDIS_REPLY_INTEGER)
            r = redisCommand(c, "ZREVRANGE %s %lld %lld WITHSCORES", src->key, rk->integer + 1,
                             rk->integer + (long long)max);
        else /* the member is gone: continue below its score */
            r = redisCommand(c, "ZREVRANGEBYSCORE %s (%lld %s WITHSCORES LIMIT 0 %d", src->key,
                             src->pos.score, lo, (int)max);
        freeReplyObject(rk);
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    *got = take_reply(src, r, 1, out, max);
    if (r->elements < 2 * max)
        src->done = 1;
    freeReplyObject(r);
    return 0;
}

/* Name sources list a study once per group (pn) or suffix (pns) in range:
 * it is considered at the smallest one only, so pages never repeat it. */
static int pn_first_in_range(const source *src, const char *name, const char *member)
{
    char norm[PN_MAX];
    const char *cur = member; /* the name part ends at the NUL */
    size_t ll = strlen(src->pn.lit);
    sto_pn_norm(name, norm, sizeof(norm));
    for (char *g = norm;;) {
        char *e = strchr(g, '=');
        if (e)
            *e = '\0';
        size_t gl = strlen(g);
        for (size_t p = 0; p < gl; p++) {
            if ((src->kind == QS_PN || gl > STO_PN_SUFFIX_MAX) && p > 0)
                break;
            if (((unsigned char)g[p] & 0xC0) == 0x80)
                continue; /* not a character boundary */
            const char *sfx = g + p;
            int in =
                src->pn.exact ? strcmp(sfx, src->pn.lit) == 0 : strncmp(sfx, src->pn.lit, ll) == 0;
            if (in && strcmp(sfx, cur) < 0)
                return 0;
        }
        if (!e)
            return 1;
        g = e + 1;
    }
}

/* ---- seen set (PATIENT level) ---- */

struct sto_qseen {
    char **v;
    size_t n, cap; /* open addressing, cap a power of two */
};

sto_qseen *sto_qseen_new(void)
{
    return calloc(1, sizeof(sto_qseen));
}

void sto_qseen_free(sto_qseen *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->v[i]);
    free(s->v);
    free(s);
}

static size_t str_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* 1 when s was added, 0 when present, -ENOMEM. */
static int seen_add(sto_qseen *set, const char *s)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        char **nv = calloc(nc, sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        for (size_t i = 0; i < set->cap; i++)
            if (set->v[i]) {
                size_t j = str_hash(set->v[i]) & (nc - 1);
                while (nv[j])
                    j = (j + 1) & (nc - 1);
                nv[j] = set->v[i];
            }
        free(set->v);
        set->v = nv;
        set->cap = nc;
    }
    size_t j = str_hash(s) & (set->cap - 1);
    for (; set->v[j]; j = (j + 1) & (set->cap - 1))
        if (strcmp(set->v[j], s) == 0)
            return 0;
    set->v[j] = strdup(s);
    if (!set->v[j])
        return -ENOMEM;
    set->n++;
    return 1;
}

/* ---- runs ---- */

/* State of one run: paging, counting, the caller's callback. */
typedef struct run {
    const sto_query *q;
    sto_qrow_cb cb;
    void *arg;
    long skipped, matched, examined, rejected, scan_max;
    int stopped, partial;
    qpos last; /* the last candidate fully handled */
    qpos cur;  /* the candidate being handled */
} run;

/* Value of a key for one record. mods_buf holds a joined set. */
static const char *value_of(const qattr *a, const redisReply *primary, const redisReply *mods,
                            long long count, char *buf, size_t cap)
{
    if (a->src == SRC_MODS) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; mods && mods->type == REDIS_REPLY_ARRAY && i < mods->elements; i++)
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", i ? "\\" : "",
                                  mods->element[i]->str);
        return buf;
    }
    if (a->src == SRC_PT_STUDIES) {
        snprintf(buf, cap, "%lld", count);
        return buf;
    }
    return hash_get(primary, a->field);
}

/* A candidate that will not be returned. */
static void reject(run *r)
{
    r->last = r->cur;
    if (++r->rejected >= r->scan_max && !r->stopped) {
        r->stopped = 1;
        r->partial = 1;
    }
}

/* Checks every key against one record and hands a match to the callback. */
static void consider(run *r, const redisReply *primary, const redisReply *mods, long long count)
{
    const sto_query *q = r->q;
    static __thread char bufs[STO_Q_MAX_KEYS][STO_Q_VALUE_MAX];
    sto_qrow row;
    row.n = 0;
    if (!primary || primary->type != REDIS_REPLY_ARRAY || primary->elements == 0) {
        reject(r); /* vanished between the index lookup and now */
        return;
    }
    for (int i = 0; i < q->n_keys; i++) {
        const qattr *a = find_attr(q->level, q->keys[i].tag);
        const char *v = a ? value_of(a, primary, mods, count, bufs[i], sizeof(bufs[i])) : "";
        if (a && !dcm_match(a->vr, q->keys[i].value, v)) {
            reject(r);
            return;
        }
        row.v[row.n].tag = q->keys[i].tag;
        row.v[row.n].vr = a ? a->vr : NULL;
        row.v[row.n].value = v;
        row.n++;
    }
    if (r->skipped < q->offset) {
        r->skipped++;
        reject(r); /* counts against the scan budget too */
        return;
    }
    int s = r->cb(r->arg, &row);
    if (s == STO_Q_STOP_BEFORE) {
        r->stopped = 1;
        return;
    }
    r->matched++;
    r->last = r->cur;
    if (s || (q->limit && r->matched >= q->limit))
        r->stopped = 1;
}

static size_t batch_size(const run *r)
{
    long want = r->q->limit ? r->q->limit - r->matched + 1 + (r->q->offset - r->skipped) : 64;
    return want < BATCH_MIN ? BATCH_MIN : want > 64 ? 64 : (size_t)want;
}

static int run_studies(redisContext *c, run *r, source *src)
{
    cand *cands = malloc(64 * sizeof(*cands));
    int rc = cands ? 0 : -ENOMEM;
    int by_name = src->kind == QS_PN || src->kind == QS_PNS;
    while (!rc && !r->stopped && !src->done) {
        size_t n = 0;
        rc = src_next(c, r->q, src, cands, batch_size(r), &n);
        if (rc || n == 0)
            break;
        /* pipelined: the study, its modalities and, for a center scope, its
         * routing (STO_ROUTE_KEY_FMT) */
        int routed = r->q->hospital && r->q->center;
        int granted = r->q->hospital && r->q->grantee;
        for (size_t j = 0; j < n; j++) {
            redisAppendCommand(c, "HGETALL hr:{%s}:st", cands[j].id);
            redisAppendCommand(c, "SMEMBERS hr:{%s}:mods", cands[j].id);
            if (routed)
                redisAppendCommand(c, "HGET " STO_ROUTE_KEY_FMT " " STO_ROUTE_FIELD, cands[j].id);
            if (granted)
                redisAppendCommand(c, "EXISTS " STO_GRANT_KEY_FMT, cands[j].id, r->q->grantee);
        }
        for (size_t j = 0; j < n; j++) {
            redisReply *st = NULL, *mods = NULL, *route = NULL, *grant = NULL;
            if (redisGetReply(c, (void **)&st) != REDIS_OK ||
                redisGetReply(c, (void **)&mods) != REDIS_OK ||
                (routed && redisGetReply(c, (void **)&route) != REDIS_OK) ||
                (granted && redisGetReply(c, (void **)&grant) != REDIS_OK)) {
                freeReplyObject(st);
                freeReplyObject(mods);
                freeReplyObject(route);
                rc = HR_EREDIS;
                break; /* the connection is unusable now */
            }
            if (!r->stopped) {
                r->cur = cands[j].pos;
                r->examined++;
                const char *owner = hash_get(st, "hospital");
                int ok = !r->q->hospital || strcmp(owner, r->q->hospital) == 0 ||
                         (route && route->type == REDIS_REPLY_STRING &&
                          strcmp(route->str, r->q->center) == 0) ||
                         (grant && grant->type == REDIS_REPLY_INTEGER && grant->integer > 0);
                if (!ok)
                    reject(r);
                else if (by_name &&
                         !pn_first_in_range(src, hash_get(st, "patient_name"), cands[j].pos.member))
                    r->last = r->cur; /* its first entry in range handles it */
                else
                    consider(r, st, mods, 0);
            }
            freeReplyObject(st);
            freeReplyObject(mods);
            freeReplyObject(route);
            freeReplyObject(grant);
        }
    }
    free(cands);
    return rc;
}

/* 1 when a study owned by owner is in the query's scope: no hospital filter,
 * the filter's hospital, or (a reader's scope) routed to the query's center
 * by the worklist; 0; -1 on a Redis error. */
static int owner_visible(redisContext *c, const sto_query *q, const char *study, const char *owner)
{
    sto_scope s = {0};
    if (!q->hospital)
        return 1;
    snprintf(s.hospital, sizeof(s.hospital), "%s", q->hospital);
    if (q->center)
        snprintf(s.center, sizeof(s.center), "%s", q->center);
    sto_scope_grant_user(&s, q->grantee);
    return sto_scope_allows_study(c, &s, study, owner);
}

/* Number of the patient's studies visible in the query's hospital scope. */
static int visible_studies(redisContext *c, const sto_query *q, const char *pkey, long long *n)
{
    strlist studies = {0};
    int rc = cmd_list(c, &studies, "ZRANGE hr:pt:%s:st 0 -1", pkey);
    *n = 0;
    for (size_t s = 0; !rc && s < studies.n; s++) {
        if (!q->hospital) {
            (*n)++;
            continue;
        }
        redisReply *h = redisCommand(c, "HGET hr:{%s}:st hospital", studies.v[s]);
        int ok =
            h ? owner_visible(c, q, studies.v[s], h->type == REDIS_REPLY_STRING ? h->str : "") : -1;
        if (ok < 0)
            rc = HR_EREDIS;
        else
            *n += ok;
        freeReplyObject(h);
    }
    sl_free(&studies);
    return rc;
}

/* One patient (key pkey) found through a candidate: counted once per run (or
 * per caller's seen set), seen through the studies one may see. */
static int patient_once(redisContext *c, run *r, sto_qseen *seen, const char *pkey)
{
    long long visible = 0;
    int added = *pkey ? seen_add(seen, pkey) : 0;
    if (added < 0)
        return added;
    if (added == 0) {
        reject(r);
        return 0;
    }
    int rc = visible_studies(c, r->q, pkey, &visible);
    if (rc)
        return rc;
    if (visible == 0) {
        reject(r);
        return 0;
    }
    redisReply *h = redisCommand(c, "HGETALL hr:pt:%s", pkey);
    if (!h)
        return HR_EREDIS;
    consider(r, h, NULL, visible);
    freeReplyObject(h);
    return 0;
}

/* PATIENT level: the patients of one Patient ID, or of the candidate
 * studies of any other source. */
static int run_patients(redisContext *c, run *r, source *src)
{
    sto_qseen *own = r->q->seen ? NULL : sto_qseen_new();
    sto_qseen *seen = r->q->seen ? r->q->seen : own;
    cand *cands = malloc(64 * sizeof(*cands));
    int rc = cands && seen ? 0 : -ENOMEM;
    while (!rc && !r->stopped && !src->done) {
        size_t n = 0;
        rc = src_next(c, r->q, src, cands, batch_size(r), &n);
        if (rc || n == 0)
            break;
        for (size_t j = 0; !rc && j < n && !r->stopped; j++) {
            r->cur = cands[j].pos;
            r->examined++;
            if (src->kind == QS_PTPID) {
                rc = patient_once(c, r, seen, cands[j].id);
                continue;
            }
            redisReply *st = redisCommand(c, "HMGET hr:{%s}:st patient hospital", cands[j].id);
            if (!st || st->type != REDIS_REPLY_ARRAY || st->elements != 2) {
                rc = HR_EREDIS;
            } else if (st->element[0]->type != REDIS_REPLY_STRING ||
                       owner_visible(c, r->q, cands[j].id,
                                     st->element[1]->type == REDIS_REPLY_STRING
                                         ? st->element[1]->str
                                         : "") != 1) {
                reject(r);
            } else {
                rc = patient_once(c, r, seen, st->element[0]->str);
            }
            freeReplyObject(st);
        }
    }
    free(cands);
    sto_qseen_free(own);
    return rc;
}

/* 1 when the study is visible in the query's hospital scope. */
static int study_visible(redisContext *c, const sto_query *q, const char *study)
{
    if (!q->hospital)
        return 1;
    redisReply *h = redisCommand(c, "HGET hr:{%s}:st hospital", study);
    int ok = h && owner_visible(c, q, study, h->type == REDIS_REPLY_STRING ? h->str : "") == 1;
    freeReplyObject(h);
    return ok;
}

static int run_children(redisContext *c, run *r, long long skip)
{
    long long idx = 0;
    const sto_query *q = r->q;
    strlist studies = {0}, series_keys = {0};
    const char *study_key = key_value(q, TAG(0x0020, 0x000D));
    const char *series_key = key_value(q, TAG(0x0020, 0x000E));
    enum dcm_match_kind ks = dcm_match_kind("UI", study_key);
    enum dcm_match_kind kse = dcm_match_kind("UI", series_key);
    int rc = 0;
    if ((ks != DCM_MATCH_SINGLE && ks != DCM_MATCH_LIST) ||
        (q->level == STO_Q_IMAGE && kse != DCM_MATCH_SINGLE && kse != DCM_MATCH_LIST))
        return HR_EMISSING;    /* hierarchical: the unique keys above are required */
    r->scan_max = 0x7fffffffL; /* bounded by the studies named */
    rc = sl_split(&studies, study_key);
    for (size_t s = 0; !rc && s < studies.n && !r->stopped; s++) {
        const char *st = studies.v[s];
        if (!study_visible(c, q, st))
            continue;
        strlist children = {0};
        if (q->level == STO_Q_SERIES) {
            rc = cmd_list(c, &children, "ZRANGE hr:{%s}:se 0 -1", st);
        } else {
            sl_free(&series_keys);
            rc = sl_split(&series_keys, series_key);
            for (size_t k = 0; !rc && k < series_keys.n; k++)
                rc = cmd_list(c, &children, "ZRANGE hr:{%s}:se:%s:i 0 -1", st, series_keys.v[k]);
        }
        for (size_t i = 0; !rc && i < children.n && !r->stopped; i++) {
            if (idx++ < skip)
                continue; /* sent by an earlier page */
            r->cur.set = 1;
            r->cur.score = idx;
            r->cur.len = (size_t)snprintf(r->cur.member, sizeof(r->cur.member), "c");
            redisReply *h = redisCommand(
                c, q->level == STO_Q_SERIES ? "HGETALL hr:{%s}:se:%s" : "HGETALL hr:{%s}:i:%s", st,
                children.v[i]);
            r->examined++;
            if (!h)
                rc = HR_EREDIS;
            else
                consider(r, h, NULL, 0);
            freeReplyObject(h);
        }
        sl_free(&children);
    }
    sl_free(&studies);
    sl_free(&series_keys);
    return rc;
}

int sto_query_page(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg, sto_qresult *res)
{
    run r = {.q = q, .cb = cb, .arg = arg};
    source *src = calloc(1, sizeof(*src));
    int rc = 0;
    enum qsrc kind = QS_NONE;
    /* the cursor first: it may be res->next of the previous page */
    if (src && q->cursor && *q->cursor)
        rc = pos_decode(q->cursor, &kind, &src->pos);
    memset(res, 0, sizeof(*res));
    r.scan_max = q->scan_max > 0 ? q->scan_max : STO_Q_SCAN_MAX;
    if (!rc && (q->level == STO_Q_SERIES || q->level == STO_Q_IMAGE)) {
        /* within the studies named: the cursor counts the children before */
        if (kind != QS_NONE && kind != QS_CHILD)
            rc = HR_EPARSE;
        if (!rc)
            rc = run_children(c, &r, kind == QS_CHILD ? src->pos.score : 0);
        if (!rc && r.stopped)
            pos_encode(QS_CHILD, &r.last, res->next, sizeof(res->next));
        goto out;
    }
    if (!src) {
        rc = -ENOMEM;
        goto out;
    }
    if (rc)
        goto out;
    if (kind != QS_NONE) {
        if (kind == QS_CHILD ||
            (q->level == STO_Q_PATIENT ? kind == QS_UIDS || kind == QS_ACC || kind == QS_PID
                                       : kind == QS_PTPID))
            rc = HR_EPARSE;
        if (!rc) {
            qpos p = src->pos;
            memset(src, 0, sizeof(*src));
            src->pos = p;
            rc = src_setup(q, kind, src);
        }
        r.last = src->pos;
    } else {
        rc = src_choose(c, q, q->level == STO_Q_PATIENT, src);
    }
    if (!rc)
        rc = q->level == STO_Q_PATIENT ? run_patients(c, &r, src) : run_studies(c, &r, src);
    if (!rc && r.stopped) /* where the next page starts (maybe before the first) */
        pos_encode(src->kind, &r.last, res->next, sizeof(res->next));
out:
    res->matched = r.matched;
    res->examined = r.examined;
    res->partial = r.partial;
    if (src)
        sl_free(&src->list);
    free(src);
    return rc;
}

int sto_query_run(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg, long *matched)
{
    sto_qresult *res = malloc(sizeof(*res));
    if (!res)
        return -ENOMEM;
    int rc = sto_query_page(c, q, cb, arg, res);
    if (matched)
        *matched = res->matched;
    free(res);
    return rc;
}

/* hr:qc:<hex SHA-256 of the query's identity and the offset> */
static int qcursor_key(const sto_query *q, long offset, char key[80])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char head[96];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    int n = snprintf(head, sizeof(head), "v1|%d|%ld|%c%s|%s|", (int)q->level, offset,
                     q->hospital ? 'h' : '-', q->hospital ? q->hospital : "",
                     q->center ? q->center : "");
    if (n < 0 || n >= (int)sizeof(head))
        n = (int)sizeof(head) - 1; /* a hospital id longer than ids are */
    ok = ok && EVP_DigestUpdate(ctx, head, (size_t)n);
    for (int i = 0; ok && i < q->n_keys; i++) {
        n = snprintf(head, sizeof(head), "|%08x=", (unsigned)q->keys[i].tag);
        ok = EVP_DigestUpdate(ctx, head, (size_t)n) &&
             EVP_DigestUpdate(ctx, q->keys[i].value, strlen(q->keys[i].value));
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -ENOMEM;
    memcpy(key, "hr:qc:", 6);
    hr_hex_encode(md, mdlen < 32 ? mdlen : 32, key + 6);
    return 0;
}

int sto_qcursor_save(redisContext *c, const sto_query *q, long offset, const char *cursor)
{
    char key[80];
    if (qcursor_key(q, offset, key))
        return -ENOMEM;
    redisReply *r = redisCommand(c, "SET %s %s EX %d", key, cursor, STO_Q_CURSOR_TTL_S);
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

int sto_qcursor_load(redisContext *c, const sto_query *q, long offset, char out[STO_Q_CURSOR_MAX])
{
    char key[80];
    out[0] = '\0';
    if (qcursor_key(q, offset, key))
        return -ENOMEM;
    redisReply *r = redisCommand(c, "GET %s", key);
    int rc = !r                                                                   ? HR_EREDIS
             : r->type == REDIS_REPLY_NIL                                         ? HR_ENOTFOUND
             : r->type == REDIS_REPLY_STRING && (size_t)r->len < STO_Q_CURSOR_MAX ? 0
                                                                                  : HR_EREDIS;
    if (!rc)
        snprintf(out, STO_Q_CURSOR_MAX, "%s", r->str);
    freeReplyObject(r);
    return rc;
}
