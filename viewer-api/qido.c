/* QIDO-RS (PS3.18 10.6): /studies, /series, /instances and their
 * study/series-scoped forms, answered from the Redis index by the same
 * engine as C-FIND (storage/query.h). Queries not scoped to a study are
 * relational: matching studies first, then their series and instances.
 * No matches: 200 with [] (CP-2473). Unsupported matching keys and fuzzy
 * matching are ignored with a Warning header (PS3.18 8.3.4.3). */
#include "va.h"
#include "../common/hr_err.h"
#include "../dicom/dataset.h"
#include "../dicom/dicom_json.h"
#include "../dicom/uids.h"
#include "../storage/index.h"
#include "../storage/query.h"
#include "../storage/retrieve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG(g, e)          (((uint32_t)(g) << 16) | (uint32_t)(e))
#define QIDO_MAX           1000 /* largest page */
#define QIDO_DEFAULT       200  /* page without limit */
#define T_STUDY_UID        TAG(0x0020, 0x000D)
#define T_PATIENT_CONFLICT TAG(0x0009, 0x1010) /* private, creator "HUREN 1" */
#define T_SERIES_UID       TAG(0x0020, 0x000E)
#define T_SOP_UID          TAG(0x0008, 0x0018)
#define T_RETRIEVE         TAG(0x0008, 0x1190)

typedef struct kw {
    const char *name;
    uint32_t tag;
} kw;

/* Keywords of the attributes huren indexes (PS3.6 names). */
static const kw k_keywords[] = {
    {"PatientName", TAG(0x0010, 0x0010)},
    {"PatientID", TAG(0x0010, 0x0020)},
    {"IssuerOfPatientID", TAG(0x0010, 0x0021)},
    {"PatientBirthDate", TAG(0x0010, 0x0030)},
    {"PatientSex", TAG(0x0010, 0x0040)},
    {"NumberOfPatientRelatedStudies", TAG(0x0020, 0x1200)},
    {"StudyInstanceUID", T_STUDY_UID},
    {"StudyDate", TAG(0x0008, 0x0020)},
    {"StudyTime", TAG(0x0008, 0x0030)},
    {"AccessionNumber", TAG(0x0008, 0x0050)},
    {"InstitutionName", TAG(0x0008, 0x0080)},
    {"ReferringPhysicianName", TAG(0x0008, 0x0090)},
    {"StudyDescription", TAG(0x0008, 0x1030)},
    {"StudyID", TAG(0x0020, 0x0010)},
    {"ModalitiesInStudy", TAG(0x0008, 0x0061)},
    {"NumberOfStudyRelatedSeries", TAG(0x0020, 0x1206)},
    {"NumberOfStudyRelatedInstances", TAG(0x0020, 0x1208)},
    {"SeriesInstanceUID", T_SERIES_UID},
    {"Modality", TAG(0x0008, 0x0060)},
    {"SeriesNumber", TAG(0x0020, 0x0011)},
    {"SeriesDescription", TAG(0x0008, 0x103E)},
    {"SeriesDate", TAG(0x0008, 0x0021)},
    {"BodyPartExamined", TAG(0x0018, 0x0015)},
    {"NumberOfSeriesRelatedInstances", TAG(0x0020, 0x1209)},
    {"SOPInstanceUID", T_SOP_UID},
    {"SOPClassUID", TAG(0x0008, 0x0016)},
    {"InstanceNumber", TAG(0x0020, 0x0013)},
    {"NumberOfFrames", TAG(0x0028, 0x0008)},
};
#define N_KEYWORDS (sizeof(k_keywords) / sizeof(k_keywords[0]))

/* Attributes returned by default per level (PS3.18 Tables 10.6.3-3..5,
 * those huren indexes). */
static const uint32_t k_default_study[] = {TAG(0x0008, 0x0020),
                                           TAG(0x0008, 0x0030),
                                           TAG(0x0008, 0x0050),
                                           TAG(0x0008, 0x0061),
                                           TAG(0x0008, 0x0090),
                                           TAG(0x0010, 0x0010),
                                           TAG(0x0010, 0x0020),
                                           TAG(0x0010, 0x0021),
                                           TAG(0x0010, 0x0030),
                                           TAG(0x0010, 0x0040),
                                           T_STUDY_UID,
                                           TAG(0x0020, 0x0010),
                                           TAG(0x0020, 0x1206),
                                           TAG(0x0020, 0x1208),
                                           TAG(0x0008, 0x1030),
                                           T_PATIENT_CONFLICT,
                                           0};
static const uint32_t k_default_series[] = {TAG(0x0008, 0x0060),
                                            TAG(0x0008, 0x103E),
                                            T_SERIES_UID,
                                            TAG(0x0020, 0x0011),
                                            TAG(0x0020, 0x1209),
                                            TAG(0x0018, 0x0015),
                                            0};
static const uint32_t k_default_image[] = {TAG(0x0008, 0x0016), T_SOP_UID, TAG(0x0020, 0x0013),
                                           TAG(0x0028, 0x0008), 0};

typedef struct qido_key {
    uint32_t tag;
    char value[STO_Q_VALUE_MAX];
} qido_key;

typedef struct qido_state {
    enum sto_qlevel level;
    char study[STO_UID_BUF]; /* from the path */
    char series[STO_UID_BUF];
    int n_keys;
    qido_key keys[STO_Q_MAX_KEYS]; /* matching keys (value non-empty) and includefields */
    int include_all;
    long offset, limit;
    char base_url[512];    /* scheme://authority for RetrieveURL */
    char warn_fuzzy;       /* fuzzymatching=true was asked */
    char unsupported[160]; /* keys neither matched nor returned */
    /* results */
    json_t *out; /* array */
    long skipped, emitted;
    int truncated;
    int partial;  /* the scan budget ended the page (sto_qresult.partial) */
    long scanned; /* candidate studies examined */
    int rc;
    long studies_seen;
} qido_state;

static int lookup_tag(const char *name, uint32_t *tag)
{
    for (size_t i = 0; i < N_KEYWORDS; i++)
        if (strcmp(k_keywords[i].name, name) == 0) {
            *tag = k_keywords[i].tag;
            return 0;
        }
    /* "GGGGEEEE" */
    if (strlen(name) == 8 && strspn(name, "0123456789abcdefABCDEF") == 8) {
        *tag = (uint32_t)strtoul(name, NULL, 16);
        return 0;
    }
    return -1;
}

/* QIDO has no patient level: attributes indexed only there are unsupported. */
static int known_anywhere(uint32_t tag)
{
    for (int l = STO_Q_STUDY; l <= STO_Q_IMAGE; l++)
        if (sto_query_vr((enum sto_qlevel)l, tag))
            return 1;
    return 0;
}

static int add_key(qido_state *st, uint32_t tag, const char *value)
{
    for (int i = 0; i < st->n_keys; i++)
        if (st->keys[i].tag == tag) {
            if (value[0])
                snprintf(st->keys[i].value, sizeof(st->keys[i].value), "%s", value);
            return 0;
        }
    if (st->n_keys == STO_Q_MAX_KEYS || strlen(value) >= STO_Q_VALUE_MAX)
        return -1;
    st->keys[st->n_keys].tag = tag;
    snprintf(st->keys[st->n_keys].value, STO_Q_VALUE_MAX, "%s", value);
    st->n_keys++;
    return 0;
}

static const char *key_value(const qido_state *st, uint32_t tag)
{
    for (int i = 0; i < st->n_keys; i++)
        if (st->keys[i].tag == tag)
            return st->keys[i].value;
    return NULL;
}

/* Builds the sto_query of one level: its keys that huren indexes at that
 * level, plus the default and included return keys. */
static void build_query(const qido_state *st, const va_req *r, enum sto_qlevel level,
                        const char *study, const char *series, sto_query *q)
{
    memset(q, 0, sizeof(*q));
    q->level = level;
    q->hospital = r->scope.none ? STO_NO_HOSPITAL : sto_scope_filter(&r->scope);
    q->center = sto_scope_center(&r->scope);
    const uint32_t *defs = level == STO_Q_STUDY    ? k_default_study
                           : level == STO_Q_SERIES ? k_default_series
                                                   : k_default_image;
    for (size_t i = 0; defs[i] && q->n_keys < STO_Q_MAX_KEYS; i++)
        q->keys[q->n_keys++].tag = defs[i];
    for (int i = 0; i < st->n_keys; i++) {
        if (!sto_query_vr(level, st->keys[i].tag))
            continue;
        int k;
        for (k = 0; k < q->n_keys; k++)
            if (q->keys[k].tag == st->keys[i].tag)
                break;
        if (k == q->n_keys) {
            if (q->n_keys == STO_Q_MAX_KEYS)
                continue;
            q->keys[q->n_keys++].tag = st->keys[i].tag;
        }
        snprintf(q->keys[k].value, STO_Q_VALUE_MAX, "%s", st->keys[i].value);
    }
    if (st->include_all)
        for (size_t i = 0; i < N_KEYWORDS && q->n_keys < STO_Q_MAX_KEYS; i++) {
            int k;
            if (!sto_query_vr(level, k_keywords[i].tag))
                continue;
            for (k = 0; k < q->n_keys; k++)
                if (q->keys[k].tag == k_keywords[i].tag)
                    break;
            if (k == q->n_keys)
                q->keys[q->n_keys++].tag = k_keywords[i].tag;
        }
    /* the unique keys of the levels above */
    for (int pass = 0; pass < 2; pass++) {
        const char *uid = pass == 0 ? study : series;
        uint32_t tag = pass == 0 ? T_STUDY_UID : T_SERIES_UID;
        if (!uid || (pass == 1 && level != STO_Q_IMAGE))
            continue;
        int k;
        for (k = 0; k < q->n_keys; k++)
            if (q->keys[k].tag == tag)
                break;
        if (k == q->n_keys && q->n_keys < STO_Q_MAX_KEYS)
            q->n_keys++;
        q->keys[k].tag = tag;
        snprintf(q->keys[k].value, STO_Q_VALUE_MAX, "%s", uid);
    }
    /* a query that names its studies (path or StudyInstanceUID) also sees
     * the studies a recognition lookup granted the caller (decision 0027) */
    const char *su = study ? study : key_value(st, T_STUDY_UID);
    if (q->hospital && r->scope.grantee[0] && su && *su)
        q->grantee = r->scope.grantee;
}

/* ---- rows -> DICOM JSON ---- */

typedef struct emit_ctx {
    qido_state *st;
    const sto_qrow *parent; /* study row for relational series/instance rows */
    const char *study, *series;
    int is_leaf; /* rows of the requested level */
    /* collected UIDs when expanding a level */
    char (*uids)[STO_UID_BUF];
    size_t n_uids, cap_uids;
    int stop;
} emit_ctx;

/* Private attributes of huren's block (0009,10xx) carry their creator. */
static void put_row(dcm_ds *ds, const sto_qrow *row)
{
    for (int i = 0; i < row->n; i++) {
        if (row->v[i].tag == T_PATIENT_CONFLICT) {
            if (!row->v[i].value[0])
                continue; /* only flagged studies carry it */
            dcm_ds_put_string(ds, TAG(0x0009, 0x0010), "LO", "HUREN 1");
        }
        dcm_ds_put_string(ds, row->v[i].tag, row->v[i].vr, row->v[i].value);
    }
}

static int emit(qido_state *st, const sto_qrow *study_row, const sto_qrow *row, const char *study,
                const char *series, const char *sop)
{
    if (st->skipped < st->offset) {
        st->skipped++;
        return 0;
    }
    if (st->emitted >= st->limit) {
        st->truncated = 1;
        return STO_Q_STOP_BEFORE; /* the study's cursor stays in front of it */
    }
    dcm_ds *ds = dcm_ds_new();
    if (!ds)
        return 1;
    dcm_ds_put_string(ds, TAG(0x0008, 0x0005), "CS", "ISO_IR 192");
    if (study_row)
        put_row(ds, study_row);
    put_row(ds, row);
    char url[1024];
    int n = snprintf(url, sizeof(url), "%s/dicomweb/studies/%s", st->base_url, study);
    if (series)
        n += snprintf(url + n, sizeof(url) - (size_t)n, "/series/%s", series);
    if (sop)
        snprintf(url + n, sizeof(url) - (size_t)n, "/instances/%s", sop);
    dcm_ds_put_string(ds, T_RETRIEVE, "UR", url);
    json_t *obj = NULL;
    int rc = dcm_json_from_ds(ds, NULL, &obj);
    dcm_ds_free(ds);
    if (rc)
        return 1;
    json_array_append_new(st->out, obj);
    st->emitted++;
    return 0;
}

static const char *row_value(const sto_qrow *row, uint32_t tag)
{
    for (int i = 0; i < row->n; i++)
        if (row->v[i].tag == tag)
            return row->v[i].value;
    return "";
}

/* A copy of a row that outlives the query callback. */
typedef struct row_copy {
    sto_qrow row;
    char *vals[STO_Q_MAX_KEYS];
} row_copy;

static void row_copy_free(row_copy *c)
{
    for (int i = 0; i < c->row.n; i++)
        free(c->vals[i]);
}

static int row_dup(row_copy *c, const sto_qrow *row)
{
    c->row = *row;
    for (int i = 0; i < row->n; i++) {
        c->vals[i] = strdup(row->v[i].value);
        if (!c->vals[i]) {
            c->row.n = i;
            return -1;
        }
        c->row.v[i].value = c->vals[i];
    }
    return 0;
}

typedef struct walk {
    qido_state *st;
    redisContext *c;
    const va_req *r;
    const sto_qrow *study_row; /* relational: the study this row belongs to */
    const char *study;
    int rc;
} walk;

static int walk_level(walk *w, enum sto_qlevel level, const char *study, const char *series);

static int on_image(void *arg, const sto_qrow *row)
{
    walk *w = arg;
    const char *series = row_value(row, T_SERIES_UID);
    return emit(w->st, w->study_row, row, w->study, series, row_value(row, T_SOP_UID));
}

static int on_series(void *arg, const sto_qrow *row)
{
    walk *w = arg;
    const char *series = row_value(row, T_SERIES_UID);
    if (w->st->level == STO_Q_SERIES)
        return emit(w->st, w->study_row, row, w->study, series, NULL);
    /* instances of every matching series */
    w->rc = walk_level(w, STO_Q_IMAGE, w->study, series);
    return w->rc || w->st->truncated;
}

/* Relational queries: matching studies are collected a page at a time
 * (their rows copied), then expanded. The study engine pipelines its reads
 * and calls back between replies, so no other command may run on the
 * connection inside its callback; the series engine reads one reply per
 * callback and may be nested. */
#define STUDY_PAGE 64

typedef struct study_page {
    row_copy rows[STUDY_PAGE];
    int n;
    int failed;
} study_page;

static int on_study(void *arg, const sto_qrow *row)
{
    walk *w = arg;
    if (w->st->level == STO_Q_STUDY) {
        const char *study = row_value(row, T_STUDY_UID);
        return emit(w->st, NULL, row, study, NULL, NULL);
    }
    study_page *pg = (study_page *)w->study_row; /* smuggled page (see walk_studies) */
    if (row_dup(&pg->rows[pg->n], row)) {
        row_copy_free(&pg->rows[pg->n]);
        pg->failed = 1;
        return 1;
    }
    pg->n++;
    return 0;
}

/* STUDY level: one run of the engine, resumed from the cursor the request
 * for this offset left in Redis (else the engine skips `offset` matches,
 * within its scan budget); the cursor for the next offset is kept. */
static int studies_page(walk *w, sto_query *q, sto_qresult *res)
{
    qido_state *st = w->st;
    char *cursor = malloc(STO_Q_CURSOR_MAX);
    int rc = cursor ? 0 : -ENOMEM;
    if (!rc && st->offset > 0) {
        rc = sto_qcursor_load(w->c, q, st->offset, cursor);
        if (rc == 0)
            q->cursor = cursor;
        else if (rc == HR_ENOTFOUND)
            q->offset = st->offset;
        rc = rc == HR_ENOTFOUND ? 0 : rc;
    }
    st->skipped = st->offset; /* the engine skips */
    q->limit = st->limit + 1; /* one more tells whether there are more */
    walk sub = *w;
    if (!rc)
        rc = sto_query_page(w->c, q, on_study, &sub, res);
    if (rc == HR_EPARSE && q->cursor) { /* a cursor of an older format: skip instead */
        q->cursor = NULL;
        q->offset = st->offset;
        json_array_clear(st->out);
        st->emitted = 0;
        st->truncated = 0;
        rc = sto_query_page(w->c, q, on_study, &sub, res);
    }
    st->scanned = res->examined;
    st->partial = !rc && res->partial;
    if (!rc && res->next[0] && (st->truncated || st->partial))
        rc = sto_qcursor_save(w->c, q, st->offset + st->emitted, res->next);
    free(cursor);
    return rc;
}

static int walk_studies(walk *w)
{
    sto_query *q = malloc(sizeof(*q));
    study_page *pg = calloc(1, sizeof(*pg));
    sto_qresult *res = malloc(sizeof(*res));
    char *cursor = calloc(1, STO_Q_CURSOR_MAX);
    int rc = q && pg && res && cursor ? 0 : -ENOMEM;
    build_query(w->st, w->r, STO_Q_STUDY, NULL, NULL, q);
    if (!rc && w->st->level == STO_Q_STUDY) {
        rc = studies_page(w, q, res);
        goto out;
    }
    /* relational: matching studies a page at a time, each page resumed
     * from the previous one's cursor, expanded into series / instances */
    while (!rc) {
        walk sub = *w;
        q->limit = STUDY_PAGE;
        q->cursor = cursor;
        pg->n = 0;
        sub.study_row = (const sto_qrow *)pg;
        rc = sto_query_page(w->c, q, on_study, &sub, res);
        if (!rc && pg->failed)
            rc = -ENOMEM;
        w->st->scanned += rc ? 0 : res->examined;
        for (int i = 0; !rc && i < pg->n && !w->st->truncated; i++) {
            walk child = *w;
            child.study_row = &pg->rows[i].row;
            child.study = row_value(&pg->rows[i].row, T_STUDY_UID);
            rc = walk_level(&child, STO_Q_SERIES, child.study, NULL);
        }
        for (int i = 0; i < pg->n; i++)
            row_copy_free(&pg->rows[i]);
        if (!rc && res->partial && !w->st->truncated)
            w->st->partial = 1;
        if (rc || !res->next[0] || w->st->truncated || res->partial)
            break;
        snprintf(cursor, STO_Q_CURSOR_MAX, "%s", res->next);
    }
out:
    free(q);
    free(pg);
    free(res);
    free(cursor);
    return rc;
}

static int walk_level(walk *w, enum sto_qlevel level, const char *study, const char *series)
{
    if (level == STO_Q_STUDY)
        return walk_studies(w);
    sto_query *q = malloc(sizeof(*q));
    if (!q)
        return -ENOMEM;
    build_query(w->st, w->r, level, study, series, q);
    walk sub = *w;
    sub.study = study;
    int rc = sto_query_run(w->c, q, level == STO_Q_SERIES ? on_series : on_image, &sub, NULL);
    free(q);
    if (!rc)
        rc = sub.rc;
    return rc;
}

static void qido_work(va_req *r, redisContext *c)
{
    qido_state *st = r->state;
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    if (r->scope.none && !(r->scope.grantee[0] && (st->study[0] || key_value(st, T_STUDY_UID)))) {
        st->rc = 0; /* sees nothing (but granted studies named by UID): an empty result */
        return;
    }
    walk w = {.st = st, .c = c, .r = r};
    if (st->study[0]) {
        char hosp[64], patient[192];
        int rc = sto_retrieve_study_owner(c, st->study, hosp, patient);
        if (rc == 0) {
            int ok = sto_scope_allows_study(c, &r->scope, st->study, hosp);
            rc = ok < 0 ? HR_EREDIS : ok ? 0 : HR_ENOTFOUND; /* out of scope: as absent */
        }
        if (rc == HR_ENOTFOUND) {
            st->rc = 0;
            return;
        }
        if (rc) {
            st->rc = rc;
            sto_worker_redis_failed();
            return;
        }
        if (st->level == STO_Q_IMAGE && !st->series[0]) {
            w.study = st->study;
            st->rc = walk_level(&w, STO_Q_SERIES, st->study, NULL);
        } else {
            w.study = st->study;
            st->rc = walk_level(&w, st->level, st->study, st->series[0] ? st->series : NULL);
        }
    } else {
        st->rc = walk_level(&w, STO_Q_STUDY, NULL, NULL);
    }
    if (st->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void qido_done(va_req *r)
{
    qido_state *st = r->state;
    r->state = NULL;
    if (!va_req_gone(r)) {
        char detail[256];
        size_t plen;
        const char *path = va_path(r, &plen);
        snprintf(detail, sizeof(detail), "%.*s -> %ld matches", (int)(plen > 200 ? 200 : plen),
                 path, st->emitted);
        va_audit(r, "qido", NULL, st->study[0] ? st->study : NULL, detail,
                 st->rc ? "failure" : "success");
        if (st->rc) {
            va_send_rc(r, st->rc, "query");
        } else {
            char w[256];
            if (st->warn_fuzzy)
                va_add_header(r, "Warning",
                              "299 huren \"The fuzzymatching parameter is not supported. Only "
                              "literal matching has been performed.\"");
            if (st->unsupported[0]) {
                snprintf(w, sizeof(w),
                         "299 huren \"The following attributes are not supported for matching "
                         "or return: %s\"",
                         st->unsupported);
                va_add_header(r, "Warning", w);
            }
            if (st->truncated) {
                snprintf(w, sizeof(w), "299 huren \"There are more results: use offset=%ld\"",
                         st->offset + st->emitted);
                va_add_header(r, "Warning", w);
            } else if (st->partial) {
                snprintf(w, sizeof(w),
                         "299 huren \"The query examined %ld studies without filling the page; "
                         "there may be more results: use offset=%ld, or narrow the query\"",
                         st->scanned, st->offset + st->emitted);
                va_add_header(r, "Warning", w);
            }
            json_t *out = st->out;
            st->out = NULL;
            va_send_json_type(r, 200, "application/dicom+json", out);
        }
    }
    json_decref(st->out);
    free(st);
}

void va_handle_qido(va_req *r)
{
    qido_state *st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    const char *pat = r->route->pattern;
    if (strstr(pat, "/instances"))
        st->level = STO_Q_IMAGE;
    else if (strstr(pat, "/series"))
        st->level = STO_Q_SERIES;
    else
        st->level = STO_Q_STUDY;
    if (r->n_segs >= 1)
        snprintf(st->study, sizeof(st->study), "%s", r->segs[0]);
    if (r->n_segs >= 2)
        snprintf(st->series, sizeof(st->series), "%s", r->segs[1]);
    if ((st->study[0] && !dcm_uid_valid(st->study)) ||
        (st->series[0] && !dcm_uid_valid(st->series))) {
        free(st);
        va_send_error(r, 400, "bad_uid", "not a valid DICOM UID in the path");
        return;
    }
    st->limit = QIDO_DEFAULT;
    char unsupported[160] = "";
    for (int i = 0; i < r->n_params; i++) {
        const char *name = r->params[i].name, *value = r->params[i].value;
        char *end;
        if (strcmp(name, "limit") == 0 || strcmp(name, "offset") == 0) {
            long v = strtol(value, &end, 10);
            if (!*value || *end || v < 0 || (name[0] == 'l' && (v == 0 || v > QIDO_MAX))) {
                free(st);
                va_send_error(r, 400, "bad_request", "%s must be %s", name,
                              name[0] == 'l' ? "1..1000" : "a non-negative integer");
                return;
            }
            if (name[0] == 'l')
                st->limit = v;
            else
                st->offset = v;
            continue;
        }
        if (strcmp(name, "fuzzymatching") == 0) {
            if (strcmp(value, "true") == 0)
                st->warn_fuzzy = 1;
            else if (strcmp(value, "false") != 0) {
                free(st);
                va_send_error(r, 400, "bad_request", "fuzzymatching must be true or false");
                return;
            }
            continue;
        }
        if (strcmp(name, "includefield") == 0) {
            char buf[1024];
            snprintf(buf, sizeof(buf), "%s", value);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                uint32_t tag;
                if (strcmp(t, "all") == 0)
                    st->include_all = 1;
                else if (lookup_tag(t, &tag) == 0 && known_anywhere(tag))
                    add_key(st, tag, "");
                else if (strlen(unsupported) + strlen(t) + 2 < sizeof(unsupported))
                    snprintf(unsupported + strlen(unsupported),
                             sizeof(unsupported) - strlen(unsupported), "%s%s",
                             unsupported[0] ? "," : "", t);
            }
            continue;
        }
        uint32_t tag;
        if (lookup_tag(name, &tag) != 0) {
            free(st);
            va_send_error(r, 400, "bad_request", "unknown query parameter or attribute \"%s\"",
                          name);
            return;
        }
        if (!known_anywhere(tag)) {
            if (strlen(unsupported) + strlen(name) + 2 < sizeof(unsupported))
                snprintf(unsupported + strlen(unsupported),
                         sizeof(unsupported) - strlen(unsupported), "%s%s",
                         unsupported[0] ? "," : "", name);
            continue;
        }
        if (add_key(st, tag, value)) {
            free(st);
            va_send_error(r, 400, "bad_request", "too many or too long matching keys");
            return;
        }
    }
    snprintf(st->unsupported, sizeof(st->unsupported), "%s", unsupported);
    /* a study UID given as a matching key at series/instance level scopes too */
    const char *su = key_value(st, T_STUDY_UID);
    if (!st->study[0] && su && su[0] && dcm_uid_valid(su) && st->level != STO_Q_STUDY)
        snprintf(st->study, sizeof(st->study), "%s", su);
    const char *se = key_value(st, T_SERIES_UID);
    if (!st->series[0] && se && se[0] && dcm_uid_valid(se) && st->level == STO_Q_IMAGE &&
        st->study[0])
        snprintf(st->series, sizeof(st->series), "%s", se);
    va_base_url(r, st->base_url, sizeof(st->base_url));
    st->out = json_array();
    r->state = st;
    va_req_run(r, qido_work, qido_done);
}
