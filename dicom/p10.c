#include "p10.h"
#include "dataset.h"
#include "uids.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put_el(hr_buf *out, uint16_t el, const char vr[2], const void *val, size_t n, char pad)
{
    size_t len = n + (n & 1);
    int long_form = memcmp(vr, "OB", 2) == 0;
    uint8_t h[12] = {0x02,           0x00,          (uint8_t)(el & 0xFF), (uint8_t)(el >> 8),
                     (uint8_t)vr[0], (uint8_t)vr[1]};
    size_t hl;
    if (long_form) {
        h[6] = h[7] = 0;
        hr_wr32(h + 8, (uint32_t)len, 0);
        hl = 12;
    } else {
        if (len > 0xFFFF)
            return HR_ETOOBIG;
        hr_wr16(h + 6, (uint16_t)len, 0);
        hl = 8;
    }
    int rc = hr_buf_append(out, h, hl);
    if (!rc)
        rc = hr_buf_append(out, val, n);
    if (!rc && (n & 1))
        rc = hr_buf_append(out, &pad, 1);
    return rc;
}

int dcm_p10_encode_meta(const dcm_p10_meta *m, hr_buf *out)
{
    if (!dcm_uid_valid(m->sop_class_uid) || !dcm_uid_valid(m->sop_instance_uid) ||
        !dcm_uid_valid(m->transfer_syntax))
        return HR_EPARSE;
    if (m->source_ae && strlen(m->source_ae) > 16)
        return HR_EPARSE;
    uint8_t preamble[132] = {0};
    memcpy(preamble + 128, "DICM", 4);
    int rc = hr_buf_append(out, preamble, sizeof(preamble));
    if (rc)
        return rc;
    /* group length placeholder, patched below */
    size_t gl_at = out->len;
    uint8_t gl[12] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0, 0, 0, 0, 0};
    rc = hr_buf_append(out, gl, sizeof(gl));
    size_t start = out->len;
    static const uint8_t version[2] = {0x00, 0x01};
    if (!rc)
        rc = put_el(out, 0x0001, "OB", version, 2, 0);
    if (!rc)
        rc = put_el(out, 0x0002, "UI", m->sop_class_uid, strlen(m->sop_class_uid), 0);
    if (!rc)
        rc = put_el(out, 0x0003, "UI", m->sop_instance_uid, strlen(m->sop_instance_uid), 0);
    if (!rc)
        rc = put_el(out, 0x0010, "UI", m->transfer_syntax, strlen(m->transfer_syntax), 0);
    if (!rc)
        rc = put_el(out, 0x0012, "UI", HR_IMPL_CLASS_UID, strlen(HR_IMPL_CLASS_UID), 0);
    if (!rc)
        rc = put_el(out, 0x0013, "SH", HR_IMPL_VERSION, strlen(HR_IMPL_VERSION), ' ');
    if (!rc && m->source_ae && *m->source_ae)
        rc = put_el(out, 0x0016, "AE", m->source_ae, strlen(m->source_ae), ' ');
    if (!rc && m->private_info && *m->private_info) {
        rc = put_el(out, 0x0100, "UI", HR_PRIVATE_INFO_CREATOR, strlen(HR_PRIVATE_INFO_CREATOR), 0);
        if (!rc)
            rc = put_el(out, 0x0102, "OB", m->private_info, strlen(m->private_info), 0);
    }
    if (rc)
        return rc;
    uint32_t glen = (uint32_t)(out->len - start);
    hr_wr32(out->data + gl_at + 8, glen, 0);
    return 0;
}

int dcm_p10_parse_private_info(const char *s, char *hospital, size_t cap, long long *received_ms)
{
    const char *h = strstr(s, "hospital=");
    const char *r = strstr(s, "received=");
    if (!h || !r)
        return HR_EPARSE;
    h += 9;
    size_t n = strcspn(h, ";");
    if (n == 0 || n >= cap)
        return HR_EPARSE;
    memcpy(hospital, h, n);
    hospital[n] = '\0';
    char *end;
    *received_ms = strtoll(r + 9, &end, 10);
    if (end == r + 9)
        return HR_EPARSE;
    return 0;
}

int dcm_p10_read_meta(const uint8_t *p, size_t n, dcm_p10_info *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 144)
        return n >= 132 && memcmp(p + 128, "DICM", 4) != 0 ? HR_EPARSE : HR_ETRUNC;
    if (memcmp(p + 128, "DICM", 4) != 0)
        return HR_EPARSE;
    /* (0002,0000) UL 4 <length> */
    static const uint8_t gl[8] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0};
    if (memcmp(p + 132, gl, sizeof(gl)) != 0)
        return HR_EPARSE;
    uint32_t glen = hr_rd32(p + 140, 0);
    if (glen > DCM_P10_META_MAX)
        return HR_ETOOBIG;
    if (n < 144 + (size_t)glen)
        return HR_ETRUNC;
    dcm_ds *ds = NULL;
    int rc = dcm_ds_parse_meta(p + 144, glen, &ds);
    if (rc)
        return rc == HR_ETRUNC ? HR_EPARSE : rc;
    if (dcm_ds_get_string(ds, 0x00020002, out->sop_class, sizeof(out->sop_class)) ||
        dcm_ds_get_string(ds, 0x00020003, out->sop_instance, sizeof(out->sop_instance)) ||
        dcm_ds_get_string(ds, 0x00020010, out->ts, sizeof(out->ts)) ||
        !dcm_uid_valid(out->sop_class) || !dcm_uid_valid(out->sop_instance) ||
        !dcm_uid_valid(out->ts))
        rc = HR_EPARSE;
    dcm_ds_free(ds);
    out->dataset_offset = 144 + (size_t)glen;
    return rc;
}
