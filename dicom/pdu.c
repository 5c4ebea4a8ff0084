#include "pdu.h"

#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_assert.h"
#include "uids.h"

#include <string.h>

/* Fixed part of an A-ASSOCIATE-RQ/AC body: version, reserved, two AE titles,
 * 32 reserved bytes. Variable items follow. */
#define ASSOC_FIXED_LEN 68
#define AE_FIELD_LEN    16
#define UID_MAX_LEN     64
#define IMPL_VER_MAX    16

enum {
    ITEM_APP_CONTEXT = 0x10,
    ITEM_PC_RQ = 0x20,
    ITEM_PC_AC = 0x21,
    ITEM_ABSTRACT = 0x30,
    ITEM_TS = 0x40,
    ITEM_USER_INFO = 0x50,
    SUB_MAX_LEN = 0x51,
    SUB_IMPL_CLASS = 0x52,
    SUB_ASYNC = 0x53,
    SUB_ROLE = 0x54,
    SUB_IMPL_VERSION = 0x55,
    SUB_SOP_EXT = 0x56,
    SUB_COMMON_EXT = 0x57,
    SUB_USER_ID_RQ = 0x58,
    SUB_USER_ID_AC = 0x59,
};

int dcm_pdu_frame(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type,
                  uint32_t *body_len)
{
    if (len < 1)
        return 0;
    if (buf[0] < DCM_PDU_ASSOC_RQ || buf[0] > DCM_PDU_ABORT)
        return HR_EPROTO;
    if (len < DCM_PDU_HEADER_LEN)
        return 0;
    uint32_t l = hr_rd32(buf + 2, 1);
    if (l > max_len)
        return HR_ETOOBIG;
    *type = buf[0];
    *body_len = l;
    if (len - DCM_PDU_HEADER_LEN < l)
        return 0;
    return 1;
}

/* ---- parsing helpers ---------------------------------------------------- */

/* Next item (1-byte type, reserved, 2-byte length) in p[*off..len). 1 with the
 * item's value, 0 at the end, HR_EPARSE when the header or value overruns. */
static int item_next(const uint8_t *p, uint32_t len, uint32_t *off, uint8_t *type,
                     const uint8_t **val, uint16_t *vlen)
{
    if (*off == len)
        return 0;
    if (*off > len || len - *off < 4)
        return HR_EPARSE;
    uint16_t l = hr_rd16(p + *off + 2, 1);
    if (len - *off - 4 < l)
        return HR_EPARSE;
    *type = p[*off];
    *val = p + *off + 4;
    *vlen = l;
    *off += 4u + l;
    return 1;
}

/* Copies a UID value, dropping trailing NUL/space padding. HR_EPARSE when it
 * is longer than 64 characters or has an embedded NUL. */
static int copy_uid(char dst[DCM_UID_BUF], const uint8_t *v, size_t n)
{
    while (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (n > UID_MAX_LEN || memchr(v, 0, n))
        return HR_EPARSE;
    memset(dst, 0, DCM_UID_BUF); /* a repeated sub-item replaces the value */
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

/* Copies an AE title or short text, removing leading spaces and trailing
 * spaces/NULs. HR_EPARSE when longer than max or with an embedded NUL. */
static int copy_ae(char *dst, size_t max, const uint8_t *v, size_t n)
{
    while (n > 0 && v[0] == ' ') {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (n > max || memchr(v, 0, n))
        return HR_EPARSE;
    memset(dst, 0, max + 1);
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

/* Fields shared by the RQ and AC user information item. */
typedef struct user_info {
    uint32_t *max_pdu;
    char *impl_class_uid;
    char *impl_version;
    int *has_async;
    uint16_t *max_ops_invoked, *max_ops_performed;
    int *n_roles;
    dcm_role *roles;
    int *has_user_identity; /* NULL for an AC */
    uint8_t *user_identity_type;
} user_info;

static int parse_role(const uint8_t *v, uint16_t n, dcm_role *r)
{
    if (n < 2)
        return HR_EPARSE;
    uint16_t ul = hr_rd16(v, 1);
    if (ul == 0 || n != 2u + ul + 2u)
        return HR_EPARSE;
    int rc = copy_uid(r->sop_class, v + 2, ul);
    if (rc)
        return rc;
    if (r->sop_class[0] == 0)
        return HR_EPARSE;
    r->scu = v[2 + ul];
    r->scp = v[2 + ul + 1];
    return 0;
}

static int parse_user_identity_rq(const uint8_t *v, uint16_t n, uint8_t *type)
{
    /* type, positive-response-requested, primary (2+len), secondary (2+len) */
    if (n < 4)
        return HR_EPARSE;
    uint32_t pl = hr_rd16(v + 2, 1);
    if (n - 4u < pl + 2u)
        return HR_EPARSE;
    uint32_t sl = hr_rd16(v + 4 + pl, 1);
    if (n != 4u + pl + 2u + sl)
        return HR_EPARSE;
    *type = v[0];
    return 0;
}

static int parse_user_info(const uint8_t *p, uint16_t len, const user_info *ui)
{
    uint32_t off = 0;
    uint8_t t;
    const uint8_t *v;
    uint16_t n;
    int rc;

    while ((rc = item_next(p, len, &off, &t, &v, &n)) == 1) {
        switch (t) {
        case SUB_MAX_LEN:
            if (n != 4)
                return HR_EPARSE;
            *ui->max_pdu = hr_rd32(v, 1);
            break;
        case SUB_IMPL_CLASS:
            rc = copy_uid(ui->impl_class_uid, v, n);
            if (rc)
                return rc;
            break;
        case SUB_ASYNC:
            if (n != 4)
                return HR_EPARSE;
            *ui->has_async = 1;
            *ui->max_ops_invoked = hr_rd16(v, 1);
            *ui->max_ops_performed = hr_rd16(v + 2, 1);
            break;
        case SUB_ROLE:
            if (*ui->n_roles >= DCM_MAX_ROLES)
                return HR_ETOOBIG;
            rc = parse_role(v, n, &ui->roles[*ui->n_roles]);
            if (rc)
                return rc;
            (*ui->n_roles)++;
            break;
        case SUB_IMPL_VERSION:
            rc = copy_ae(ui->impl_version, IMPL_VER_MAX, v, n);
            if (rc)
                return rc;
            break;
        case SUB_USER_ID_RQ:
            if (!ui->has_user_identity)
                break; /* not expected in an AC: ignore */
            rc = parse_user_identity_rq(v, n, ui->user_identity_type);
            if (rc)
                return rc;
            *ui->has_user_identity = 1;
            break;
        case SUB_USER_ID_AC:
            /* server response length + value */
            if (n < 2 || n != 2u + hr_rd16(v, 1))
                return HR_EPARSE;
            break;
        case SUB_SOP_EXT:
        case SUB_COMMON_EXT:
        default:
            break; /* bounds already checked by item_next */
        }
    }
    return rc;
}

/* Reads the fixed part common to RQ and AC. */
static int parse_fixed(const uint8_t *body, uint32_t len, uint16_t *version, char *called,
                       char *calling)
{
    if (len < ASSOC_FIXED_LEN)
        return HR_EPARSE;
    if (version)
        *version = hr_rd16(body, 1);
    int rc = copy_ae(called, AE_FIELD_LEN, body + 4, AE_FIELD_LEN);
    if (rc)
        return rc;
    return copy_ae(calling, AE_FIELD_LEN, body + 20, AE_FIELD_LEN);
}

static int parse_pc_rq(const uint8_t *p, uint16_t len, dcm_pc_rq *pc)
{
    uint32_t off = 4;
    uint8_t t;
    const uint8_t *v;
    uint16_t n;
    int rc, has_abstract = 0;

    if (len < 4)
        return HR_EPARSE;
    pc->id = p[0];
    while ((rc = item_next(p, len, &off, &t, &v, &n)) == 1) {
        if (t == ITEM_ABSTRACT) {
            if (has_abstract)
                return HR_EPARSE;
            rc = copy_uid(pc->abstract_syntax, v, n);
            if (rc)
                return rc;
            has_abstract = 1;
        } else if (t == ITEM_TS) {
            if (pc->n_ts >= DCM_MAX_TS_PER_PC)
                return HR_ETOOBIG;
            rc = copy_uid(pc->ts[pc->n_ts], v, n);
            if (rc)
                return rc;
            if (pc->ts[pc->n_ts][0] == 0)
                return HR_EPARSE;
            pc->n_ts++;
        }
    }
    if (rc)
        return rc;
    if (!has_abstract || pc->abstract_syntax[0] == 0 || pc->n_ts == 0)
        return HR_EPARSE;
    return 0;
}

static int parse_pc_ac(const uint8_t *p, uint16_t len, dcm_pc_ac *pc)
{
    uint32_t off = 4;
    uint8_t t;
    const uint8_t *v;
    uint16_t n;
    int rc, has_ts = 0;

    if (len < 4)
        return HR_EPARSE;
    pc->id = p[0];
    pc->result = p[2];
    while ((rc = item_next(p, len, &off, &t, &v, &n)) == 1) {
        if (t != ITEM_TS)
            continue;
        if (has_ts)
            return HR_EPARSE;
        rc = copy_uid(pc->ts, v, n);
        if (rc)
            return rc;
        has_ts = 1;
    }
    if (rc)
        return rc;
    if (pc->result == DCM_PC_ACCEPT && pc->ts[0] == 0)
        return HR_EPARSE;
    return 0;
}

/* 1 when id was already used by one of the first n ids. */
static int id_seen(const uint8_t *seen, uint8_t id)
{
    return (seen[id >> 3] >> (id & 7)) & 1;
}

static void id_mark(uint8_t *seen, uint8_t id)
{
    seen[id >> 3] |= (uint8_t)(1u << (id & 7));
}

int dcm_pdu_parse_assoc_rq(const uint8_t *body, uint32_t len, dcm_assoc_rq *out)
{
    uint32_t off = ASSOC_FIXED_LEN;
    uint8_t t, seen[32] = {0};
    const uint8_t *v;
    uint16_t n;
    int rc, has_app = 0, has_ui = 0;
    user_info ui = {
        &out->max_pdu,           out->impl_class_uid,     out->impl_version, &out->has_async,
        &out->max_ops_invoked,   &out->max_ops_performed, &out->n_roles,     out->roles,
        &out->has_user_identity, &out->user_identity_type};

    memset(out, 0, sizeof(*out));
    rc = parse_fixed(body, len, &out->protocol_version, out->called_ae, out->calling_ae);
    if (rc)
        goto out;
    while ((rc = item_next(body, len, &off, &t, &v, &n)) == 1) {
        switch (t) {
        case ITEM_APP_CONTEXT:
            if (has_app) {
                rc = HR_EPARSE;
                goto out;
            }
            rc = copy_uid(out->app_context, v, n);
            if (rc)
                goto out;
            has_app = 1;
            break;
        case ITEM_PC_RQ:
            if (out->n_pc >= DCM_MAX_PCS) {
                rc = HR_ETOOBIG;
                goto out;
            }
            rc = parse_pc_rq(v, n, &out->pc[out->n_pc]);
            if (rc)
                goto out;
            /* ids are odd and unique (PS3.8 9.3.2.2) */
            if (!(out->pc[out->n_pc].id & 1) || id_seen(seen, out->pc[out->n_pc].id)) {
                rc = HR_EPARSE;
                goto out;
            }
            id_mark(seen, out->pc[out->n_pc].id);
            out->n_pc++;
            break;
        case ITEM_USER_INFO:
            if (has_ui) {
                rc = HR_EPARSE;
                goto out;
            }
            rc = parse_user_info(v, n, &ui);
            if (rc)
                goto out;
            has_ui = 1;
            break;
        default:
            break;
        }
    }
    if (rc)
        goto out;
    if (!has_app || out->app_context[0] == 0 || out->n_pc == 0 || !has_ui)
        rc = HR_EPARSE;
out:
    return rc;
}

int dcm_pdu_parse_assoc_ac(const uint8_t *body, uint32_t len, dcm_assoc_ac *out)
{
    uint32_t off = ASSOC_FIXED_LEN;
    uint8_t t, seen[32] = {0};
    const uint8_t *v;
    uint16_t n;
    int rc, has_app = 0, has_ui = 0;
    char app_context[DCM_UID_BUF] = "";
    user_info ui = {&out->max_pdu,
                    out->impl_class_uid,
                    out->impl_version,
                    &out->has_async,
                    &out->max_ops_invoked,
                    &out->max_ops_performed,
                    &out->n_roles,
                    out->roles,
                    NULL,
                    NULL};

    memset(out, 0, sizeof(*out));
    rc = parse_fixed(body, len, NULL, out->called_ae, out->calling_ae);
    if (rc)
        goto out;
    while ((rc = item_next(body, len, &off, &t, &v, &n)) == 1) {
        switch (t) {
        case ITEM_APP_CONTEXT:
            if (has_app) {
                rc = HR_EPARSE;
                goto out;
            }
            rc = copy_uid(app_context, v, n);
            if (rc)
                goto out;
            has_app = 1;
            break;
        case ITEM_PC_AC:
            if (out->n_pc >= DCM_MAX_PCS) {
                rc = HR_ETOOBIG;
                goto out;
            }
            rc = parse_pc_ac(v, n, &out->pc[out->n_pc]);
            if (rc)
                goto out;
            if (id_seen(seen, out->pc[out->n_pc].id)) {
                rc = HR_EPARSE;
                goto out;
            }
            id_mark(seen, out->pc[out->n_pc].id);
            out->n_pc++;
            break;
        case ITEM_USER_INFO:
            if (has_ui) {
                rc = HR_EPARSE;
                goto out;
            }
            rc = parse_user_info(v, n, &ui);
            if (rc)
                goto out;
            has_ui = 1;
            break;
        default:
            break;
        }
    }
    if (rc)
        goto out;
    if (!has_app || app_context[0] == 0 || !has_ui)
        rc = HR_EPARSE;
out:
    return rc;
}

int dcm_pdu_parse_assoc_rj(const uint8_t *body, uint32_t len, uint8_t *result, uint8_t *source,
                           uint8_t *reason)
{
    if (len != 4)
        return HR_EPARSE;
    *result = body[1];
    *source = body[2];
    *reason = body[3];
    return 0;
}

int dcm_pdu_parse_abort(const uint8_t *body, uint32_t len, uint8_t *source, uint8_t *reason)
{
    if (len != 4)
        return HR_EPARSE;
    *source = body[2];
    *reason = body[3];
    return 0;
}

/* ---- encoding ----------------------------------------------------------- */

/* Length of a NUL-terminated string stored in a buffer of bufsz bytes, or -1
 * when it is not terminated or longer than max. */
static int str_len(const char *s, size_t bufsz, size_t max)
{
    size_t n = strnlen(s, bufsz);
    if (n == bufsz || n > max)
        return -1;
    return (int)n;
}

/* Starts an item (type, reserved, 2-byte length patched by item_end). */
static int item_begin(hr_buf *out, uint8_t type, size_t *start)
{
    uint8_t h[4] = {type, 0, 0, 0};
    *start = out->len;
    return hr_buf_append(out, h, sizeof(h));
}

static int item_end(hr_buf *out, size_t start)
{
    size_t l = out->len - start - 4;
    if (l > 0xFFFF)
        return HR_ETOOBIG;
    hr_wr16(out->data + start + 2, (uint16_t)l, 1);
    return 0;
}

/* Appends a complete item whose value is the string s (a UID or short text). */
static int item_str(hr_buf *out, uint8_t type, const char *s, size_t bufsz, size_t max)
{
    int n = str_len(s, bufsz, max);
    if (n < 0)
        return HR_EPARSE;
    uint8_t h[4] = {type, 0, 0, 0};
    hr_wr16(h + 2, (uint16_t)n, 1);
    int rc = hr_buf_append(out, h, sizeof(h));
    if (rc)
        return rc;
    return hr_buf_append(out, s, (size_t)n);
}

static int pdu_begin(hr_buf *out, uint8_t type, size_t *start)
{
    uint8_t h[DCM_PDU_HEADER_LEN] = {type, 0, 0, 0, 0, 0};
    *start = out->len;
    return hr_buf_append(out, h, sizeof(h));
}

static void pdu_end(hr_buf *out, size_t start)
{
    hr_wr32(out->data + start + 2, (uint32_t)(out->len - start - DCM_PDU_HEADER_LEN), 1);
}

static int put_fixed(hr_buf *out, uint16_t version, const char *called, const char *calling)
{
    uint8_t f[ASSOC_FIXED_LEN];
    int cl = str_len(called, DCM_AE_MAX, AE_FIELD_LEN);
    int gl = str_len(calling, DCM_AE_MAX, AE_FIELD_LEN);

    if (cl < 0 || gl < 0)
        return HR_EPARSE;
    memset(f, 0, sizeof(f));
    hr_wr16(f, version, 1);
    memset(f + 4, ' ', 2 * AE_FIELD_LEN);
    memcpy(f + 4, called, (size_t)cl);
    memcpy(f + 20, calling, (size_t)gl);
    return hr_buf_append(out, f, sizeof(f));
}

static int put_user_info(hr_buf *out, uint32_t max_pdu, const char *impl_class,
                         const char *impl_version, int has_async, uint16_t inv, uint16_t perf,
                         int n_roles, const dcm_role *roles)
{
    size_t ui, sub;
    uint8_t v[4];
    int rc;

    if (n_roles < 0 || n_roles > DCM_MAX_ROLES)
        return HR_EPARSE;
    rc = item_begin(out, ITEM_USER_INFO, &ui);
    if (rc)
        return rc;
    hr_wr32(v, max_pdu, 1);
    uint8_t mh[4] = {SUB_MAX_LEN, 0, 0, 4};
    rc = hr_buf_append(out, mh, 4);
    if (!rc)
        rc = hr_buf_append(out, v, 4);
    if (!rc && impl_class[0])
        rc = item_str(out, SUB_IMPL_CLASS, impl_class, DCM_UID_BUF, UID_MAX_LEN);
    if (!rc && has_async) {
        uint8_t ah[8] = {SUB_ASYNC, 0, 0, 4};
        hr_wr16(ah + 4, inv, 1);
        hr_wr16(ah + 6, perf, 1);
        rc = hr_buf_append(out, ah, sizeof(ah));
    }
    for (int i = 0; !rc && i < n_roles; i++) {
        int ul = str_len(roles[i].sop_class, DCM_UID_BUF, UID_MAX_LEN);
        if (ul < 0)
            return HR_EPARSE;
        rc = item_begin(out, SUB_ROLE, &sub);
        uint8_t l[2];
        hr_wr16(l, (uint16_t)ul, 1);
        if (!rc)
            rc = hr_buf_append(out, l, 2);
        if (!rc)
            rc = hr_buf_append(out, roles[i].sop_class, (size_t)ul);
        uint8_t r[2] = {roles[i].scu, roles[i].scp};
        if (!rc)
            rc = hr_buf_append(out, r, 2);
        if (!rc)
            rc = item_end(out, sub);
    }
    if (!rc && impl_version[0])
        rc = item_str(out, SUB_IMPL_VERSION, impl_version, DCM_AE_MAX, IMPL_VER_MAX);
    if (!rc)
        rc = item_end(out, ui);
    return rc;
}

int dcm_pdu_encode_assoc_rq(const dcm_assoc_rq *rq, hr_buf *out)
{
    size_t start = out->len, pdu, it;
    int rc;

    if (rq->n_pc < 0 || rq->n_pc > DCM_MAX_PCS) {
        rc = HR_EPARSE;
        goto out;
    }
    rc = pdu_begin(out, DCM_PDU_ASSOC_RQ, &pdu);
    if (rc)
        goto out;
    rc = put_fixed(out, rq->protocol_version ? rq->protocol_version : 1, rq->called_ae,
                   rq->calling_ae);
    if (rc)
        goto out;
    rc = item_str(out, ITEM_APP_CONTEXT, rq->app_context[0] ? rq->app_context : DCM_UID_APP_CONTEXT,
                  DCM_UID_BUF, UID_MAX_LEN);
    if (rc)
        goto out;
    for (int i = 0; i < rq->n_pc; i++) {
        const dcm_pc_rq *pc = &rq->pc[i];
        uint8_t h[4] = {pc->id, 0, 0, 0};
        if (pc->n_ts > DCM_MAX_TS_PER_PC) {
            rc = HR_EPARSE;
            goto out;
        }
        rc = item_begin(out, ITEM_PC_RQ, &it);
        if (!rc)
            rc = hr_buf_append(out, h, 4);
        if (!rc)
            rc = item_str(out, ITEM_ABSTRACT, pc->abstract_syntax, DCM_UID_BUF, UID_MAX_LEN);
        for (int j = 0; !rc && j < pc->n_ts; j++)
            rc = item_str(out, ITEM_TS, pc->ts[j], DCM_UID_BUF, UID_MAX_LEN);
        if (!rc)
            rc = item_end(out, it);
        if (rc)
            goto out;
    }
    rc = put_user_info(out, rq->max_pdu, rq->impl_class_uid, rq->impl_version, rq->has_async,
                       rq->max_ops_invoked, rq->max_ops_performed, rq->n_roles, rq->roles);
    if (rc)
        goto out;
    pdu_end(out, pdu);
out:
    if (rc)
        out->len = start;
    return rc;
}

int dcm_pdu_encode_assoc_ac(const dcm_assoc_ac *ac, hr_buf *out)
{
    size_t start = out->len, pdu, it;
    int rc;

    if (ac->n_pc < 0 || ac->n_pc > DCM_MAX_PCS) {
        rc = HR_EPARSE;
        goto out;
    }
    rc = pdu_begin(out, DCM_PDU_ASSOC_AC, &pdu);
    if (rc)
        goto out;
    rc = put_fixed(out, 1, ac->called_ae, ac->calling_ae);
    if (rc)
        goto out;
    rc = item_str(out, ITEM_APP_CONTEXT, DCM_UID_APP_CONTEXT, DCM_UID_BUF, UID_MAX_LEN);
    if (rc)
        goto out;
    for (int i = 0; i < ac->n_pc; i++) {
        const dcm_pc_ac *pc = &ac->pc[i];
        uint8_t h[4] = {pc->id, 0, pc->result, 0};
        /* the TS sub-item is always sent; its value is not significant when
         * the context is refused (PS3.8 9.3.3.2) */
        const char *ts = pc->ts[0] || pc->result == DCM_PC_ACCEPT ? pc->ts : DCM_TS_IMPLICIT_LE;
        rc = item_begin(out, ITEM_PC_AC, &it);
        if (!rc)
            rc = hr_buf_append(out, h, 4);
        if (!rc)
            rc = item_str(out, ITEM_TS, ts, DCM_UID_BUF, UID_MAX_LEN);
        if (!rc)
            rc = item_end(out, it);
        if (rc)
            goto out;
    }
    rc = put_user_info(out, ac->max_pdu, ac->impl_class_uid, ac->impl_version, ac->has_async,
                       ac->max_ops_invoked, ac->max_ops_performed, ac->n_roles, ac->roles);
    if (rc)
        goto out;
    pdu_end(out, pdu);
out:
    if (rc)
        out->len = start;
    return rc;
}

static int encode_short(hr_buf *out, uint8_t type, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
    uint8_t p[10] = {type, 0, 0, 0, 0, 4, b0, b1, b2, b3};
    return hr_buf_append(out, p, sizeof(p));
}

int dcm_pdu_encode_assoc_rj(uint8_t result, uint8_t source, uint8_t reason, hr_buf *out)
{
    return encode_short(out, DCM_PDU_ASSOC_RJ, 0, result, source, reason);
}

int dcm_pdu_encode_release_rq(hr_buf *out)
{
    return encode_short(out, DCM_PDU_RELEASE_RQ, 0, 0, 0, 0);
}

int dcm_pdu_encode_release_rp(hr_buf *out)
{
    return encode_short(out, DCM_PDU_RELEASE_RP, 0, 0, 0, 0);
}

int dcm_pdu_encode_abort(uint8_t source, uint8_t reason, hr_buf *out)
{
    return encode_short(out, DCM_PDU_ABORT, 0, 0, source, reason);
}

/* ---- P-DATA-TF ---------------------------------------------------------- */

int dcm_pdata_next(const uint8_t *body, uint32_t len, uint32_t *off, dcm_pdv *pdv)
{
    if (*off == len)
        return 0;
    if (*off > len || len - *off < 4)
        return HR_EPROTO;
    uint32_t l = hr_rd32(body + *off, 1);
    if (l < 2 || l > len - *off - 4)
        return HR_EPROTO;
    pdv->pc_id = body[*off + 4];
    pdv->is_command = body[*off + 5] & 1;
    pdv->is_last = (body[*off + 5] >> 1) & 1;
    pdv->data = body + *off + 6;
    pdv->len = l - 2;
    *off += 4 + l;
    return 1;
}

void dcm_pdata_header(uint8_t hdr[12], uint8_t pc_id, int is_command, int is_last,
                      uint32_t data_len)
{
    HR_DEBUG_ASSERT(data_len <= UINT32_MAX - 6);
    hdr[0] = DCM_PDU_P_DATA;
    hdr[1] = 0;
    hr_wr32(hdr + 2, data_len + 6, 1);
    hr_wr32(hdr + 6, data_len + 2, 1);
    hdr[10] = pc_id;
    hdr[11] = (uint8_t)((is_command ? 1 : 0) | (is_last ? 2 : 0));
}
