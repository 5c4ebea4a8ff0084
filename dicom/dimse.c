#include "dimse.h"

#include "../common/hr_bytes.h"
#include "../common/hr_err.h"

#include <string.h>

#define UID_MAX 64
#define AE_MAX  16
#define LO_MAX  64

/* UI: trailing NUL/space padding removed; > 64 chars or embedded NUL is an error. */
static int get_uid(char dst[DCM_CMD_UID_BUF], const uint8_t *v, uint32_t n)
{
    while (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (n > UID_MAX || memchr(v, 0, n))
        return HR_EPARSE;
    memset(dst, 0, DCM_CMD_UID_BUF); /* a repeated element replaces the value */
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

/* AE: leading and trailing spaces removed; > 16 chars or embedded NUL is an error. */
static int get_ae(char dst[DCM_CMD_AE_BUF], const uint8_t *v, uint32_t n)
{
    while (n > 0 && v[0] == ' ') {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (n > AE_MAX || memchr(v, 0, n))
        return HR_EPARSE;
    memset(dst, 0, DCM_CMD_AE_BUF);
    memcpy(dst, v, n);
    dst[n] = 0;
    return 0;
}

/* LO: cut at a NUL, truncated to 64 chars, trailing spaces removed. Never fails. */
static void get_lo(char dst[DCM_CMD_COMMENT_BUF], const uint8_t *v, uint32_t n)
{
    const uint8_t *z = memchr(v, 0, n);
    if (z)
        n = (uint32_t)(z - v);
    if (n > LO_MAX)
        n = LO_MAX;
    while (n > 0 && v[n - 1] == ' ')
        n--;
    memset(dst, 0, DCM_CMD_COMMENT_BUF);
    memcpy(dst, v, n);
    dst[n] = 0;
}

int dcm_command_parse(const uint8_t *p, size_t n, dcm_command *out)
{
    size_t off = 0;
    int rc = 0, has_cf = 0;

    memset(out, 0, sizeof(*out));
    out->data_set_type = DCM_DATASET_NONE;
    if (n > DCM_CMD_MAX_LEN) {
        rc = HR_ETOOBIG;
        goto out;
    }
    while (off < n) {
        if (n - off < 8) {
            rc = HR_EPARSE;
            goto out;
        }
        uint16_t group = hr_rd16(p + off, 0), elem = hr_rd16(p + off + 2, 0);
        uint32_t vl = hr_rd32(p + off + 4, 0);
        const uint8_t *v = p + off + 8;
        if (group != 0 || vl > n - off - 8) {
            rc = HR_EPARSE;
            goto out;
        }
        off += 8 + (size_t)vl;
        uint16_t *us = NULL;
        uint32_t flag = 0;
        switch (elem) {
        case 0x0000: /* CommandGroupLength: checked for form only */
            if (vl != 4)
                rc = HR_EPARSE;
            break;
        case 0x0002:
            rc = get_uid(out->affected_sop_class, v, vl);
            break;
        case 0x0003:
            rc = get_uid(out->requested_sop_class, v, vl);
            break;
        case 0x0100:
            us = &out->command_field;
            has_cf = 1;
            break;
        case 0x0110:
            us = &out->message_id;
            flag = DCM_CMD_HAS_MSG_ID;
            break;
        case 0x0120:
            us = &out->message_id_responded;
            flag = DCM_CMD_HAS_MSG_ID_RSP;
            break;
        case 0x0600:
            rc = get_ae(out->move_destination, v, vl);
            break;
        case 0x0700:
            us = &out->priority;
            flag = DCM_CMD_HAS_PRIORITY;
            break;
        case 0x0800:
            us = &out->data_set_type;
            break;
        case 0x0900:
            us = &out->status;
            flag = DCM_CMD_HAS_STATUS;
            break;
        case 0x0902:
            get_lo(out->error_comment, v, vl);
            break;
        case 0x1000:
            rc = get_uid(out->affected_sop_instance, v, vl);
            break;
        case 0x1001:
            rc = get_uid(out->requested_sop_instance, v, vl);
            break;
        case 0x1020:
            us = &out->n_remaining;
            flag = DCM_CMD_HAS_COUNTS;
            break;
        case 0x1021:
            us = &out->n_completed;
            flag = DCM_CMD_HAS_COUNTS;
            break;
        case 0x1022:
            us = &out->n_failed;
            flag = DCM_CMD_HAS_COUNTS;
            break;
        case 0x1023:
            us = &out->n_warning;
            flag = DCM_CMD_HAS_COUNTS;
            break;
        case 0x1030:
            rc = get_ae(out->move_originator_ae, v, vl);
            out->flags |= DCM_CMD_HAS_MOVE_ORIGINATOR;
            break;
        case 0x1031:
            us = &out->move_originator_id;
            flag = DCM_CMD_HAS_MOVE_ORIGINATOR;
            break;
        default:
            break; /* other group-0000 elements (0901, 0903, 1005, ...) */
        }
        if (rc)
            goto out;
        if (us) {
            if (vl != 2) {
                rc = HR_EPARSE;
                goto out;
            }
            *us = hr_rd16(v, 0);
            out->flags |= flag;
        }
    }
    if (!has_cf)
        rc = HR_EPARSE;
out:
    return rc;
}

static int put_elem(hr_buf *out, uint16_t elem, const void *v, uint32_t n, uint8_t pad)
{
    uint8_t h[8];
    uint32_t padded = n + (n & 1);
    int rc;

    hr_wr16(h, 0, 0);
    hr_wr16(h + 2, elem, 0);
    hr_wr32(h + 4, padded, 0);
    rc = hr_buf_append(out, h, sizeof(h));
    if (!rc)
        rc = hr_buf_append(out, v, n);
    if (!rc && (n & 1))
        rc = hr_buf_append(out, &pad, 1);
    return rc;
}

static int put_us(hr_buf *out, uint16_t elem, uint16_t v)
{
    uint8_t b[2];
    hr_wr16(b, v, 0);
    return put_elem(out, elem, b, 2, 0);
}

/* Appends a string element when s is non-empty; HR_EPARSE when s does not
 * fit its buffer or exceeds max. */
static int put_str(hr_buf *out, uint16_t elem, const char *s, size_t bufsz, size_t max, uint8_t pad)
{
    size_t n = strnlen(s, bufsz);
    if (n == bufsz || n > max)
        return HR_EPARSE;
    if (n == 0)
        return 0;
    return put_elem(out, elem, s, (uint32_t)n, pad);
}

int dcm_command_encode(const dcm_command *c, hr_buf *out)
{
    size_t start = out->len, body;
    uint32_t f = c->flags;
    uint8_t zero[4] = {0};
    int rc;

    rc = put_elem(out, 0x0000, zero, 4, 0);
    if (rc)
        goto out;
    body = out->len;
    rc = put_str(out, 0x0002, c->affected_sop_class, DCM_CMD_UID_BUF, UID_MAX, 0);
    if (!rc)
        rc = put_str(out, 0x0003, c->requested_sop_class, DCM_CMD_UID_BUF, UID_MAX, 0);
    if (!rc)
        rc = put_us(out, 0x0100, c->command_field);
    if (!rc && (f & DCM_CMD_HAS_MSG_ID))
        rc = put_us(out, 0x0110, c->message_id);
    if (!rc && (f & DCM_CMD_HAS_MSG_ID_RSP))
        rc = put_us(out, 0x0120, c->message_id_responded);
    if (!rc)
        rc = put_str(out, 0x0600, c->move_destination, DCM_CMD_AE_BUF, AE_MAX, ' ');
    if (!rc && (f & DCM_CMD_HAS_PRIORITY))
        rc = put_us(out, 0x0700, c->priority);
    if (!rc)
        rc = put_us(out, 0x0800, c->data_set_type);
    if (!rc && (f & DCM_CMD_HAS_STATUS))
        rc = put_us(out, 0x0900, c->status);
    if (!rc)
        rc = put_str(out, 0x0902, c->error_comment, DCM_CMD_COMMENT_BUF, LO_MAX, ' ');
    if (!rc)
        rc = put_str(out, 0x1000, c->affected_sop_instance, DCM_CMD_UID_BUF, UID_MAX, 0);
    if (!rc)
        rc = put_str(out, 0x1001, c->requested_sop_instance, DCM_CMD_UID_BUF, UID_MAX, 0);
    if (!rc && (f & DCM_CMD_HAS_COUNTS)) {
        rc = put_us(out, 0x1020, c->n_remaining);
        if (!rc)
            rc = put_us(out, 0x1021, c->n_completed);
        if (!rc)
            rc = put_us(out, 0x1022, c->n_failed);
        if (!rc)
            rc = put_us(out, 0x1023, c->n_warning);
    }
    if (!rc)
        rc = put_str(out, 0x1030, c->move_originator_ae, DCM_CMD_AE_BUF, AE_MAX, ' ');
    if (!rc && (f & DCM_CMD_HAS_MOVE_ORIGINATOR))
        rc = put_us(out, 0x1031, c->move_originator_id);
    if (rc)
        goto out;
    hr_wr32(out->data + body - 4, (uint32_t)(out->len - body), 0);
out:
    if (rc)
        out->len = start;
    return rc;
}

int dcm_command_is_response(uint16_t command_field)
{
    return (command_field & 0x8000) != 0;
}
