/* C-FIND SCP (Patient Root and Study Root, PS3.4 C.4.1): the identifier
 * becomes an sto_query (values converted to UTF-8 from the identifier's
 * Specific Character Set), pages of GW_FIND_PAGE matches are fetched on the
 * thread pool and encoded there as response identifiers (ISO_IR 192, the
 * context's transfer syntax), then sent one per completed write so that a
 * C-CANCEL-RQ read in between is honoured. */
#include "qr.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/charset.h"
#include "../dicom/match.h"
#include "../storage/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RETURN_KEYS 256 /* keys of one identifier, supported or not */

enum special {
    SP_NONE,
    SP_RETRIEVE_AE,  /* (0008,0054): our AE title */
    SP_AVAILABILITY, /* (0008,0056): ONLINE */
    SP_ECHO,         /* unique key of a level above, not indexed here: echoed */
};

typedef struct rkey {
    uint32_t tag;
    char vr[3];
    int qi; /* index in q.keys, -1 = returned empty (or special) */
    enum special sp;
} rkey;

struct gw_find {
    enum sto_qlevel level;
    sto_query q;
    int n_keys;
    rkey keys[MAX_RETURN_KEYS];
    int unsupported; /* FF01 */
    char pid[STO_Q_VALUE_MAX];
    int prefilter; /* Patient Root below STUDY: studies checked against pid first */
    uv_work_t work;
    int working;
    long total;
    char cursor[STO_Q_CURSOR_MAX]; /* where the next page starts; "" = no more */
    sto_qseen *seen;               /* PATIENT level: patients already sent */
    long rejected;                 /* candidates examined and not sent, all pages */
    int partial;                   /* the scan budget ran out */
    /* one page, filled on the thread pool */
    int rc;
    long page_matched;
    uint8_t **rows;
    size_t *row_len;
    size_t n_rows, next_row;
};

#define TAG(g, e) DCM_TAG(g, e)

static const uint32_t k_unique[4] = {TAG(0x0010, 0x0020), TAG(0x0020, 0x000D), TAG(0x0020, 0x000E),
                                     TAG(0x0008, 0x0018)};

static int text_vr(const char *vr)
{
    static const char *const t[] = {"PN", "LO", "SH", "LT", "ST", "UT", "UC"};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(vr, t[i]) == 0)
            return 1;
    return 0;
}

static void free_rows(gw_find *f)
{
    for (size_t i = 0; i < f->n_rows; i++)
        free(f->rows[i]);
    free(f->rows);
    free(f->row_len);
    f->rows = NULL;
    f->row_len = NULL;
    f->n_rows = f->next_row = 0;
}

int gw__find_idle(const gw_op *op)
{
    return !op->find->working;
}

void gw__find_free(gw_op *op)
{
    free_rows(op->find);
    sto_qseen_free(op->find->seen);
    free(op->find);
    op->find = NULL;
}

/* Appends " gggg,eeee=value" to op->keys (for logs and audit). */
static void note_key(gw_op *op, uint32_t tag, const char *value)
{
    size_t n = strlen(op->keys);
    if (n + 1 < sizeof(op->keys))
        snprintf(op->keys + n, sizeof(op->keys) - n, " %04X,%04X=%s", DCM_TAG_GROUP(tag),
                 DCM_TAG_ELEMENT(tag), value);
}

/* The identifier -> f->q and f->keys. 0, or a status with comment. */
static uint16_t build_query(gw_op *op, gw_find *f, const dcm_ds *ds, char comment[65])
{
    char cs[DCM_LO_MAX] = "";
    char raw[STO_Q_VALUE_MAX * 4];
    dcm_ds_get_string(ds, DCM_TAG_CHARSET, cs, sizeof(cs));
    snprintf(op->keys, sizeof(op->keys), "level=%s", op->level);
    int have_unique = 0;
    for (size_t i = 0; i < dcm_ds_count(ds); i++) {
        const dcm_elem *e = dcm_ds_at(ds, i);
        if (DCM_TAG_ELEMENT(e->tag) == 0 || e->tag == DCM_TAG_CHARSET ||
            e->tag == TAG(0x0008, 0x0052))
            continue;
        if (f->n_keys == MAX_RETURN_KEYS) {
            snprintf(comment, 65, "more than %d keys", MAX_RETURN_KEYS);
            return DCM_STATUS_CANNOT_UNDERSTAND;
        }
        rkey *k = &f->keys[f->n_keys++];
        k->tag = e->tag;
        k->qi = -1;
        k->sp = SP_NONE;
        snprintf(k->vr, sizeof(k->vr), "%s", e->vr);
        have_unique |= e->tag == k_unique[f->level];
        if (e->tag == TAG(0x0008, 0x0054)) {
            k->sp = SP_RETRIEVE_AE;
            continue;
        }
        if (e->tag == TAG(0x0008, 0x0056)) {
            k->sp = SP_AVAILABILITY;
            continue;
        }
        if (f->prefilter && e->tag == TAG(0x0010, 0x0020)) {
            k->sp = SP_ECHO;
            snprintf(k->vr, sizeof(k->vr), "LO");
            continue;
        }
        const char *vr = sto_query_vr(f->level, e->tag);
        if (!vr || !dcm_vr_is_string(e->vr)) {
            f->unsupported = 1; /* returned empty, not used for matching */
            continue;
        }
        int rc = dcm_elem_string(e, DCM_ALL_VALUES, raw, sizeof(raw));
        sto_qkey *qk = &f->q.keys[f->q.n_keys];
        if (!rc && text_vr(vr) && raw[0]) {
            rc = dcm_charset_to_utf8(cs, raw, strlen(raw), qk->value, sizeof(qk->value), NULL, 0,
                                     NULL);
            if (rc == HR_ECHARSET)
                rc = 0; /* printable subset: matches what it can */
        } else if (!rc) {
            if (strlen(raw) >= sizeof(qk->value))
                rc = HR_ETOOBIG;
            else
                snprintf(qk->value, sizeof(qk->value), "%s", raw);
        }
        if (!rc && strlen(qk->value) >= sizeof(qk->value) - 4)
            rc = HR_ETOOBIG; /* possibly truncated by the conversion */
        if (rc) {
            snprintf(comment, 65, "(%04X,%04X): matching value too long or invalid",
                     DCM_TAG_GROUP(e->tag), DCM_TAG_ELEMENT(e->tag));
            return DCM_STATUS_CANNOT_UNDERSTAND;
        }
        qk->tag = e->tag;
        snprintf(k->vr, sizeof(k->vr), "%s", vr);
        k->qi = f->q.n_keys++;
        if (qk->value[0])
            note_key(op, e->tag, qk->value);
    }
    if (!have_unique && f->n_keys < MAX_RETURN_KEYS && f->q.n_keys < STO_Q_MAX_KEYS) {
        /* the level's unique key is always returned */
        rkey *k = &f->keys[f->n_keys++];
        k->tag = k_unique[f->level];
        k->sp = SP_NONE;
        snprintf(k->vr, sizeof(k->vr), "%s", sto_query_vr(f->level, k->tag));
        f->q.keys[f->q.n_keys].tag = k->tag;
        f->q.keys[f->q.n_keys].value[0] = '\0';
        k->qi = f->q.n_keys++;
    }
    return 0;
}

static const char *key_value(const gw_find *f, uint32_t tag)
{
    for (int i = 0; i < f->q.n_keys; i++)
        if (f->q.keys[i].tag == tag)
            return f->q.keys[i].value;
    return NULL;
}

static int single(const char *vr, const char *v)
{
    return v && dcm_match_kind(vr, v) == DCM_MATCH_SINGLE;
}

static int uids(const char *v)
{
    enum dcm_match_kind k = v ? dcm_match_kind("UI", v) : DCM_MATCH_UNIVERSAL;
    return k == DCM_MATCH_SINGLE || k == DCM_MATCH_LIST;
}

/* PS3.4 C.4.1.2: hierarchical queries carry the unique keys above the level. */
static uint16_t check_hierarchy(gw_op *op, gw_find *f, const dcm_ds *ds, char comment[65])
{
    if (f->level == STO_Q_PATIENT && op->model == GW_QR_STUDY_ROOT) {
        snprintf(comment, 65, "PATIENT level is not part of the Study Root model");
        return DCM_STATUS_DS_MISMATCH;
    }
    if (op->model == GW_QR_PATIENT_ROOT && f->level != STO_Q_PATIENT) {
        char pid[STO_Q_VALUE_MAX] = "";
        dcm_ds_get_string(ds, TAG(0x0010, 0x0020), pid, sizeof(pid));
        if (!single("LO", pid)) {
            snprintf(comment, 65, "Patient Root below PATIENT level needs one Patient ID");
            return DCM_STATUS_DS_MISMATCH;
        }
        snprintf(f->pid, sizeof(f->pid), "%s", pid);
        f->prefilter = f->level > STO_Q_STUDY;
    }
    if (f->level >= STO_Q_SERIES && !uids(key_value(f, TAG(0x0020, 0x000D)))) {
        snprintf(comment, 65, "%s level needs the Study Instance UID", op->level);
        return DCM_STATUS_DS_MISMATCH;
    }
    if (f->level == STO_Q_IMAGE && !uids(key_value(f, TAG(0x0020, 0x000E)))) {
        snprintf(comment, 65, "IMAGE level needs the Series Instance UID");
        return DCM_STATUS_DS_MISMATCH;
    }
    return 0;
}

/* ---- thread pool ---- */

typedef struct row_ctx {
    gw_op *op;
    gw_find *f;
    size_t cap;
} row_ctx;

static int put_key(dcm_ds *ds, const rkey *k, const char *value)
{
    if (strcmp(k->vr, "SQ") == 0)
        return dcm_ds_put_sequence(ds, k->tag, NULL, 0);
    if (dcm_vr_is_string(k->vr))
        return dcm_ds_put_string(ds, k->tag, k->vr, value);
    return dcm_ds_put_bytes(ds, k->tag, k->vr, NULL, 0);
}

/* Encodes one match as a response identifier and keeps it in the page. */
static int on_row(void *arg, const sto_qrow *row)
{
    row_ctx *c = arg;
    gw_op *op = c->op;
    gw_find *f = c->f;
    if (atomic_load(&op->cancel))
        return 1;
    if (f->n_rows == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        uint8_t **nr = realloc(f->rows, nc * sizeof(*nr));
        if (nr)
            f->rows = nr;
        size_t *nl = realloc(f->row_len, nc * sizeof(*nl));
        if (nl)
            f->row_len = nl;
        if (!nr || !nl) {
            f->rc = -ENOMEM;
            return 1;
        }
        c->cap = nc;
    }
    dcm_ds *ds = dcm_ds_new();
    hr_buf b;
    hr_buf_init(&b, 1 << 20);
    int rc = ds ? 0 : -ENOMEM;
    if (!rc)
        rc = dcm_ds_put_string(ds, DCM_TAG_CHARSET, "CS", "ISO_IR 192");
    if (!rc)
        rc = dcm_ds_put_string(ds, TAG(0x0008, 0x0052), "CS", op->level);
    for (int i = 0; !rc && i < f->n_keys; i++) {
        const rkey *k = &f->keys[i];
        const char *v = "";
        if (k->sp == SP_RETRIEVE_AE)
            v = op->our_ae;
        else if (k->sp == SP_AVAILABILITY)
            v = "ONLINE";
        else if (k->sp == SP_ECHO)
            v = f->pid;
        else if (k->qi >= 0 && k->qi < row->n)
            v = row->v[k->qi].value;
        rc = put_key(ds, k, v);
    }
    if (!rc)
        rc = dcm_ds_encode(ds, op->ts, &b);
    if (!rc) {
        f->rows[f->n_rows] = b.data; /* the buffer's storage now belongs to the page */
        f->row_len[f->n_rows] = b.len;
        f->n_rows++;
        b.data = NULL;
    }
    hr_buf_free(&b);
    dcm_ds_free(ds);
    if (rc) {
        f->rc = rc;
        return 1;
    }
    return 0;
}

/* Patient Root at SERIES/IMAGE level: keeps the requested studies that
 * belong to the Patient ID (and are visible), through a STUDY query. */
typedef struct pre_ctx {
    char list[STO_Q_VALUE_MAX];
    size_t n;
} pre_ctx;

static int on_study(void *arg, const sto_qrow *row)
{
    pre_ctx *p = arg;
    const char *uid = row->v[0].value;
    size_t len = strlen(uid);
    if (p->n + len + 2 >= sizeof(p->list))
        return 1;
    p->n += (size_t)snprintf(p->list + p->n, sizeof(p->list) - p->n, "%s%s", p->n ? "\\" : "", uid);
    return 0;
}

static int prefilter(redisContext *c, gw_find *f)
{
    sto_query *q = calloc(1, sizeof(*q));
    pre_ctx *p = calloc(1, sizeof(*p));
    int rc = q && p ? 0 : -ENOMEM;
    sto_qkey *study = NULL;
    for (int i = 0; i < f->q.n_keys; i++)
        if (f->q.keys[i].tag == TAG(0x0020, 0x000D))
            study = &f->q.keys[i];
    if (!rc && study) {
        q->level = STO_Q_STUDY;
        q->hospital = f->q.hospital;
        q->n_keys = 2;
        q->keys[0].tag = TAG(0x0020, 0x000D);
        snprintf(q->keys[0].value, sizeof(q->keys[0].value), "%s", study->value);
        q->keys[1].tag = TAG(0x0010, 0x0020);
        snprintf(q->keys[1].value, sizeof(q->keys[1].value), "%s", f->pid);
        rc = sto_query_run(c, q, on_study, p, NULL);
        if (!rc)
            snprintf(study->value, sizeof(study->value), "%s", p->list);
    }
    free(q);
    free(p);
    return rc;
}

static void page_work(uv_work_t *w)
{
    gw_op *op = w->data;
    gw_find *f = op->find;
    row_ctx c = {op, f, 0};
    f->rc = 0;
    f->page_matched = 0;
    redisContext *rc_ = sto_worker_redis(&op->redis, op->redis_timeout_ms);
    if (!rc_) {
        f->rc = HR_EREDIS;
        return;
    }
    if (f->prefilter) {
        f->rc = prefilter(rc_, f);
        f->prefilter = 0;
        if (!f->rc && !key_value(f, TAG(0x0020, 0x000D))[0]) {
            f->page_matched = 0; /* none of the studies is that patient's */
            return;
        }
    }
    /* each page resumes from the previous one's cursor; the operation as a
     * whole examines at most STO_Q_SCAN_MAX candidates it does not send */
    f->q.limit = GW_FIND_PAGE;
    f->q.cursor = f->cursor;
    f->q.seen = f->seen;
    f->q.scan_max = STO_Q_SCAN_MAX - f->rejected;
    if (!f->rc) {
        sto_qresult *res = malloc(sizeof(*res));
        int rc = res ? sto_query_page(rc_, &f->q, on_row, &c, res) : -ENOMEM;
        if (rc) {
            f->rc = rc;
            f->cursor[0] = '\0';
        } else {
            f->page_matched = res->matched;
            f->rejected += res->examined - res->matched;
            f->partial = res->partial;
            snprintf(f->cursor, sizeof(f->cursor), "%s", res->next);
        }
        free(res);
    }
    if (f->rc == HR_EREDIS)
        sto_worker_redis_failed();
}

static void send_next(gw_op *op);

static void page_done(uv_work_t *w, int status)
{
    gw_op *op = w->data;
    gw_find *f = op->find;
    f->working = 0;
    op->pending--;
    if (!op->a) {
        gw__qr_maybe_free(op);
        return;
    }
    if (status < 0 && !f->rc)
        f->rc = status;
    send_next(op);
}

static void queue_page(gw_op *op)
{
    gw_find *f = op->find;
    free_rows(f);
    f->work.data = op;
    int rc = uv_queue_work(op->loop, &f->work, page_work, page_done);
    if (rc) {
        gw__qr_final_status(op, DCM_STATUS_OUT_OF_RESOURCES, "cannot queue the query");
        return;
    }
    f->working = 1;
    op->pending++;
}

static void finish(gw_op *op, uint16_t status, const char *comment)
{
    gw_find *f = op->find;
    char detail[1200];
    snprintf(detail, sizeof(detail), "%s matches=%ld", op->keys, f->total);
    gw__qr_audit(op, "c-find", NULL, NULL, detail,
                 status == DCM_STATUS_SUCCESS  ? "success"
                 : status == DCM_STATUS_CANCEL ? "cancelled"
                                               : "failure");
    if (op->a)
        hr_info("dicom", "%s: C-FIND %s: %ld matches, %04X in %llu ms", op->a->peer, op->keys,
                f->total, status, (unsigned long long)(uv_now(op->loop) - op->started_ms));
    dcm_command r;
    gw__qr_rsp_init(op, &r, status);
    if (comment)
        snprintf(r.error_comment, sizeof(r.error_comment), "%s", comment);
    gw__qr_final(op, &r, NULL, 0);
}

/* Next step: a cancel ends, a pending response goes out, the next page is
 * fetched, or the query ends. */
static void send_next(gw_op *op)
{
    gw_find *f = op->find;
    if (gw__qr_cancelled(op)) {
        finish(op, DCM_STATUS_CANCEL, NULL);
        return;
    }
    if (f->next_row < f->n_rows) {
        dcm_command r;
        gw__qr_rsp_init(op, &r,
                        f->unsupported ? GW_STATUS_FIND_UNSUPPORTED_KEYS : DCM_STATUS_PENDING);
        size_t i = f->next_row++;
        f->total++;
        if (gw__qr_send(op, &r, f->rows[i], f->row_len[i], 1) != 0)
            finish(op, DCM_STATUS_OUT_OF_RESOURCES, "cannot send a response");
        return;
    }
    if (f->rc) {
        uint16_t st = f->rc == HR_EREDIS     ? DCM_STATUS_OUT_OF_RESOURCES
                      : f->rc == HR_EMISSING ? DCM_STATUS_DS_MISMATCH
                                             : DCM_STATUS_CANNOT_UNDERSTAND;
        char c[65];
        snprintf(c, sizeof(c), "%s", f->rc == HR_EREDIS ? "index unavailable" : hr_strerror(f->rc));
        finish(op, st, c);
        return;
    }
    if (f->partial) {
        char c[65];
        snprintf(c, sizeof(c), "query too broad: %d studies examined; narrow it", STO_Q_SCAN_MAX);
        finish(op, DCM_STATUS_OUT_OF_RESOURCES, c);
        return;
    }
    if (f->cursor[0]) {
        queue_page(op);
        return;
    }
    finish(op, DCM_STATUS_SUCCESS, NULL);
}

void gw__find_sent(gw_op *op, int status)
{
    if (status < 0)
        return; /* the connection is failing: its close detaches the operation */
    send_next(op);
}

void gw__find_start(gw_op *op, dcm_ds *ident)
{
    char comment[65] = "";
    gw_find *f = calloc(1, sizeof(*f));
    if (!f) {
        dcm_ds_free(ident);
        gw__qr_final_status(op, DCM_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    op->find = f;
    f->level = (enum sto_qlevel)gw__qr_level(op->level);
    f->q.level = f->level;
    if (op->model == GW_QR_PATIENT_ROOT && f->level > STO_Q_STUDY)
        f->prefilter = 1; /* Patient ID is not indexed below STUDY: echoed, checked */
    uint16_t st = build_query(op, f, ident, comment);
    if (!st)
        st = check_hierarchy(op, f, ident, comment);
    dcm_ds_free(ident);
    if (st) {
        gw__qr_final_status(op, st, comment);
        return;
    }
    if (op->scope.none) {
        finish(op, DCM_STATUS_SUCCESS, NULL); /* sees nothing: no matches */
        return;
    }
    f->q.hospital = sto_scope_filter(&op->scope);
    if (f->level == STO_Q_PATIENT && !(f->seen = sto_qseen_new())) {
        gw__qr_final_status(op, DCM_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    queue_page(op);
}
