/* The element-reading core (see elem.h). */
#include "elem.h"

#include "dict.h"
#include "common/hr_bytes.h"
#include "common/hr_err.h"

#include <stdio.h>
#include <string.h>

static int refuse(dcm_elem_hdr *h, enum dcm_elem_fault f)
{
    h->fault = (uint8_t)f;
    return HR_EPARSE;
}

int dcm_elem_read(const uint8_t *p, size_t n, int explicit_vr, int big, dcm_elem_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->hdr_len = 8;
    if (n < 8)
        return DCM_ELEM_MORE;
    h->tag = (uint32_t)hr_rd16(p, big) << 16 | hr_rd16(p + 2, big);
    if (DCM_TAG_GROUP(h->tag) == 0xFFFE) {
        h->len = hr_rd32(p + 4, big);
        if (h->tag == DCM_TAG_ITEM)
            return 0;
        if (h->tag != DCM_TAG_ITEM_DELIM && h->tag != DCM_TAG_SEQ_DELIM)
            return refuse(h, DCM_FAULT_FFFE);
        return h->len ? refuse(h, DCM_FAULT_DELIM_LEN) : 0;
    }
    if (!explicit_vr) {
        memcpy(h->vr, dcm_dict_vr(h->tag), 3);
        h->len = hr_rd32(p + 4, big);
        return 0;
    }
    h->vr[0] = (char)p[4];
    h->vr[1] = (char)p[5];
    if (!dcm_vr_known(h->vr))
        return refuse(h, DCM_FAULT_VR);
    if (!dcm_vr_long_length(h->vr)) {
        h->len = hr_rd16(p + 6, big);
        return 0;
    }
    h->hdr_len = 12;
    if (n < 12)
        return DCM_ELEM_MORE;
    h->len = hr_rd32(p + 8, big);
    return 0;
}

static int vr_is(const char *vr, const char *want)
{
    return vr[0] == want[0] && vr[1] == want[1];
}

int dcm_elem_value(dcm_elem_hdr *h, int explicit_vr, int big, unsigned flags,
                   enum dcm_value_kind *kind, char vr[3])
{
    memcpy(vr, h->vr, 3);
    *kind = DCM_VALUE_BYTES;
    if (DCM_TAG_GROUP(h->tag) == 0x0002 && !(flags & DCM_ELEM_META))
        return refuse(h, DCM_FAULT_META);
    int sq = vr_is(h->vr, "SQ"), un = vr_is(h->vr, "UN");
    if (h->len == DCM_UNDEF_LEN) {
        if (h->tag == DCM_TAG_PIXEL_DATA) {
            *kind = DCM_VALUE_FRAGMENTS;
            if (sq)
                memcpy(vr, "OB", 3); /* PS3.5 A.4: encapsulated Pixel Data is OB */
        } else if (sq)
            *kind = DCM_VALUE_SEQ;
        else if (un)
            *kind = DCM_VALUE_SEQ_IMPLICIT;
        else
            return refuse(h, DCM_FAULT_UNDEF);
    } else if (sq) {
        *kind = DCM_VALUE_SEQ;
    } else if (un && explicit_vr && !big) {
        const char *dv = dcm_dict_vr(h->tag); /* private creators: LO */
        if (vr_is(dv, "SQ"))
            *kind = DCM_VALUE_SEQ_IMPLICIT;
        else if (!vr_is(dv, "UN") && (dcm_vr_long_length(dv) || h->len <= 0xFFFF))
            memcpy(vr, dv, 3);
    }
    if (*kind == DCM_VALUE_SEQ || *kind == DCM_VALUE_SEQ_IMPLICIT)
        memcpy(vr, "SQ", 3);
    return 0;
}

void dcm_elem_fault_text(const dcm_elem_hdr *h, char *buf, size_t cap)
{
    unsigned g = DCM_TAG_GROUP(h->tag), e = DCM_TAG_ELEMENT(h->tag);
    switch (h->fault) {
    case DCM_FAULT_VR:
        snprintf(buf, cap, "element (%04X,%04X) has invalid VR 0x%02X%02X", g, e,
                 (unsigned char)h->vr[0], (unsigned char)h->vr[1]);
        break;
    case DCM_FAULT_FFFE:
        snprintf(buf, cap, "unexpected (%04X,%04X)", g, e);
        break;
    case DCM_FAULT_DELIM_LEN:
        snprintf(buf, cap, "delimiter (%04X,%04X) with length %u", g, e, h->len);
        break;
    case DCM_FAULT_META:
        snprintf(buf, cap, "File Meta Information element (%04X,%04X) inside the data set", g, e);
        break;
    case DCM_FAULT_UNDEF:
        snprintf(buf, cap, "element (%04X,%04X) VR %.2s has undefined length", g, e, h->vr);
        break;
    default:
        snprintf(buf, cap, "element (%04X,%04X)", g, e);
        break;
    }
}
