#include "query.h"
#include "keys.h"
#include "../common/hr_err.h"
#include "../dicom/match.h"

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

/* An escaped key component (storage/keys.h) of a query value; a value too
 * long to be indexed matches nothing ("" never is a stored component of a
 * non-empty value). */
static const char *esc(const char *v, char out[STO_KEY_PART_MAX])
{
    if (sto_key_part(v, out, STO_KEY_PART_MAX))
        snprintf(out, STO_KEY_PART_MAX, "%%");
    return out;
}

/* Candidate studies from the most selective key present (see header). */
static int study_candidates(redisContext *c, const sto_query *q, strlist *out)
{
    const char *uid = key_value(q, TAG(0x0020, 0x000D));
    const char *acc = key_value(q, TAG(0x0008, 0x0050));
    const char *pid = key_value(q, TAG(0x0010, 0x0020));
    const char *date = key_value(q, TAG(0x0008, 0x0020));
    const char *mods = key_value(q, TAG(0x0008, 0x0061));
    enum dcm_match_kind k;
    long lo, hi;
    char e[STO_KEY_PART_MAX];
    if ((k = dcm_match_kind("UI", uid)) == DCM_MATCH_SINGLE || k == DCM_MATCH_LIST)
        return sl_split(out, uid);
    if (dcm_match_kind("SH", acc) == DCM_MATCH_SINGLE)
        return cmd_list(c, out, "SMEMBERS hr:ix:acc:%s", esc(acc, e));
    if (dcm_match_kind("LO", pid) == DCM_MATCH_SINGLE) {
        strlist pk = {0};
        int rc = cmd_list(c, &pk, "SMEMBERS hr:ix:pid:%s", esc(pid, e));
        for (size_t i = 0; !rc && i < pk.n; i++)
            rc = cmd_list(c, out, "ZRANGE hr:pt:%s:st 0 -1", pk.v[i]);
        sl_free(&pk);
        return rc;
    }
    if (*date && dcm_date_bounds(date, &lo, &hi) == 0)
        return cmd_list(c, out, "ZRANGEBYSCORE hr:ix:date %ld %ld", lo, hi);
    if (q->hospital)
        return cmd_list(c, out, "ZRANGE hr:ix:hosp:%s 0 -1", esc(q->hospital, e));
    if (dcm_match_kind("CS", mods) == DCM_MATCH_SINGLE)
        return cmd_list(c, out, "ZRANGE hr:ix:mod:%s 0 -1", esc(mods, e));
    return cmd_list(c, out, "ZRANGE hr:ix:date 0 -1");
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

/* State of one run: paging, counting, the caller's callback. */
typedef struct run {
    const sto_query *q;
    sto_qrow_cb cb;
    void *arg;
    long seen, matched;
    int stopped;
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

/* Checks every key against one record and hands a match to the callback. */
static void consider(run *r, const redisReply *primary, const redisReply *mods, long long count)
{
    const sto_query *q = r->q;
    static __thread char bufs[STO_Q_MAX_KEYS][STO_Q_VALUE_MAX];
    sto_qrow row;
    row.n = 0;
    if (!primary || primary->type != REDIS_REPLY_ARRAY || primary->elements == 0)
        return; /* vanished between the index lookup and now */
    for (int i = 0; i < q->n_keys; i++) {
        const qattr *a = find_attr(q->level, q->keys[i].tag);
        const char *v = a ? value_of(a, primary, mods, count, bufs[i], sizeof(bufs[i])) : "";
        if (a && !dcm_match(a->vr, q->keys[i].value, v))
            return;
        row.v[row.n].tag = q->keys[i].tag;
        row.v[row.n].vr = a ? a->vr : NULL;
        row.v[row.n].value = v;
        row.n++;
    }
    if (r->seen++ < q->offset)
        return;
    r->matched++;
    if (r->cb(r->arg, &row) || (q->limit && r->matched >= q->limit))
        r->stopped = 1;
}

static int run_studies(redisContext *c, run *r)
{
    strlist cand = {0};
    int rc = study_candidates(c, r->q, &cand);
    for (size_t i = 0; !rc && i < cand.n && !r->stopped; i += BATCH) {
        size_t n = cand.n - i < BATCH ? cand.n - i : BATCH;
        for (size_t j = 0; j < n; j++) {
            redisAppendCommand(c, "HGETALL hr:{%s}:st", cand.v[i + j]);
            redisAppendCommand(c, "SMEMBERS hr:{%s}:mods", cand.v[i + j]);
        }
        for (size_t j = 0; j < n; j++) {
            redisReply *st = NULL, *mods = NULL;
            if (redisGetReply(c, (void **)&st) != REDIS_OK ||
                redisGetReply(c, (void **)&mods) != REDIS_OK) {
                freeReplyObject(st);
                rc = HR_EREDIS;
                break; /* the connection is unusable now */
            }
            if (!r->stopped &&
                (!r->q->hospital || strcmp(hash_get(st, "hospital"), r->q->hospital) == 0))
                consider(r, st, mods, 0);
            freeReplyObject(st);
            freeReplyObject(mods);
        }
    }
    sl_free(&cand);
    return rc;
}

/* 1 when the study is visible in the query's hospital scope. */
static int study_visible(redisContext *c, const sto_query *q, const char *study)
{
    if (!q->hospital)
        return 1;
    redisReply *h = redisCommand(c, "HGET hr:{%s}:st hospital", study);
    int ok = h && h->type == REDIS_REPLY_STRING && strcmp(h->str, q->hospital) == 0;
    freeReplyObject(h);
    return ok;
}

static int run_children(redisContext *c, run *r)
{
    const sto_query *q = r->q;
    strlist studies = {0}, series_keys = {0};
    const char *study_key = key_value(q, TAG(0x0020, 0x000D));
    const char *series_key = key_value(q, TAG(0x0020, 0x000E));
    enum dcm_match_kind ks = dcm_match_kind("UI", study_key);
    enum dcm_match_kind kse = dcm_match_kind("UI", series_key);
    int rc = 0;
    if ((ks != DCM_MATCH_SINGLE && ks != DCM_MATCH_LIST) ||
        (q->level == STO_Q_IMAGE && kse != DCM_MATCH_SINGLE && kse != DCM_MATCH_LIST))
        return HR_EMISSING; /* hierarchical: the unique keys above are required */
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
            redisReply *h = redisCommand(
                c, q->level == STO_Q_SERIES ? "HGETALL hr:{%s}:se:%s" : "HGETALL hr:{%s}:i:%s", st,
                children.v[i]);
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

static int run_patients(redisContext *c, run *r)
{
    const sto_query *q = r->q;
    strlist pk = {0};
    char e[STO_KEY_PART_MAX];
    const char *pid = key_value(q, TAG(0x0010, 0x0020));
    int rc = dcm_match_kind("LO", pid) == DCM_MATCH_SINGLE
                 ? cmd_list(c, &pk, "SMEMBERS hr:ix:pid:%s", esc(pid, e))
                 : cmd_list(c, &pk, "SMEMBERS hr:ix:patients");
    for (size_t i = 0; !rc && i < pk.n && !r->stopped; i++) {
        strlist studies = {0};
        rc = cmd_list(c, &studies, "ZRANGE hr:pt:%s:st 0 -1", pk.v[i]);
        long long visible = 0;
        for (size_t s = 0; !rc && s < studies.n; s++)
            visible += study_visible(c, q, studies.v[s]);
        sl_free(&studies);
        if (rc || visible == 0)
            continue; /* a patient is seen through the studies one may see */
        redisReply *h = redisCommand(c, "HGETALL hr:pt:%s", pk.v[i]);
        if (!h)
            rc = HR_EREDIS;
        else
            consider(r, h, NULL, visible);
        freeReplyObject(h);
    }
    sl_free(&pk);
    return rc;
}

int sto_query_run(redisContext *c, const sto_query *q, sto_qrow_cb cb, void *arg, long *matched)
{
    run r = {.q = q, .cb = cb, .arg = arg};
    int rc;
    switch (q->level) {
    case STO_Q_PATIENT:
        rc = run_patients(c, &r);
        break;
    case STO_Q_STUDY:
        rc = run_studies(c, &r);
        break;
    default:
        rc = run_children(c, &r);
        break;
    }
    if (matched)
        *matched = r.matched;
    return rc;
}
