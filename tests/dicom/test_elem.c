/* The element-reading core (dicom/elem.c): header decoding and the value rule. The
 * readers' agreement on whole data sets is tests/storage/test_reading_rule.c. */
#include "common/hr_err.h"
#include "dicom/elem.h"

#include <criterion/criterion.h>
#include <string.h>

Test(elem, explicit_headers)
{
    dcm_elem_hdr h;
    static const uint8_t shortvr[] = {0x10, 0x00, 0x10, 0x00, 'P', 'N', 0x04, 0x00};
    cr_assert_eq(dcm_elem_read(shortvr, 8, 1, 0, &h), 0);
    cr_expect_eq(h.tag, 0x00100010u);
    cr_expect_str_eq(h.vr, "PN");
    cr_expect_eq(h.len, 4);
    cr_expect_eq(h.hdr_len, 8);
    /* 0xFFFF is a defined length for a 2-byte-length VR */
    static const uint8_t ffff[] = {0x10, 0x00, 0x10, 0x00, 'L', 'O', 0xFF, 0xFF};
    cr_assert_eq(dcm_elem_read(ffff, 8, 1, 0, &h), 0);
    cr_expect_eq(h.len, 0xFFFF);
    /* a 4-byte-length VR needs 12 bytes */
    static const uint8_t longvr[] = {0x09, 0x00, 0x10, 0x10, 'U',  'N',
                                     0,    0,    0xFF, 0xFF, 0xFF, 0xFF};
    cr_assert_eq(dcm_elem_read(longvr, 8, 1, 0, &h), DCM_ELEM_MORE);
    cr_expect_eq(h.hdr_len, 12);
    cr_assert_eq(dcm_elem_read(longvr, 12, 1, 0, &h), 0);
    cr_expect_eq(h.len, DCM_UNDEF_LEN);
    cr_assert_eq(dcm_elem_read(longvr, 5, 1, 0, &h), DCM_ELEM_MORE);
    cr_expect_eq(h.hdr_len, 8);
    /* big endian */
    static const uint8_t be[] = {0x00, 0x10, 0x00, 0x20, 'L', 'O', 0x00, 0x06};
    cr_assert_eq(dcm_elem_read(be, 8, 1, 1, &h), 0);
    cr_expect_eq(h.tag, 0x00100020u);
    cr_expect_eq(h.len, 6);
    /* an unknown VR */
    static const uint8_t bad[] = {0x10, 0x00, 0x10, 0x00, 'Q', 'Q', 0x04, 0x00};
    cr_assert_eq(dcm_elem_read(bad, 8, 1, 0, &h), HR_EPARSE);
    cr_expect_eq(h.fault, DCM_FAULT_VR);
    char msg[96];
    dcm_elem_fault_text(&h, msg, sizeof(msg));
    cr_expect_str_eq(msg, "element (0010,0010) has invalid VR 0x5151");
}

Test(elem, implicit_headers_and_items)
{
    dcm_elem_hdr h;
    static const uint8_t im[] = {0x10, 0x00, 0x10, 0x00, 0x04, 0x00, 0x00, 0x00};
    cr_assert_eq(dcm_elem_read(im, 8, 0, 0, &h), 0);
    cr_expect_str_eq(h.vr, "PN"); /* the dictionary's */
    cr_expect_eq(h.len, 4);
    /* items carry no VR, also in explicit VR */
    static const uint8_t it[] = {0xFE, 0xFF, 0x00, 0xE0, 0x08, 0x00, 0x00, 0x00};
    cr_assert_eq(dcm_elem_read(it, 8, 1, 0, &h), 0);
    cr_expect_eq(h.tag, 0xFFFEE000u);
    cr_expect_str_eq(h.vr, "");
    cr_expect_eq(h.len, 8);
    static const uint8_t dl[] = {0xFE, 0xFF, 0x0D, 0xE0, 0x04, 0x00, 0x00, 0x00};
    cr_assert_eq(dcm_elem_read(dl, 8, 1, 0, &h), HR_EPARSE);
    cr_expect_eq(h.fault, DCM_FAULT_DELIM_LEN);
    static const uint8_t other[] = {0xFE, 0xFF, 0x01, 0xE0, 0x00, 0x00, 0x00, 0x00};
    cr_assert_eq(dcm_elem_read(other, 8, 0, 0, &h), HR_EPARSE);
    cr_expect_eq(h.fault, DCM_FAULT_FFFE);
}

static int value(uint32_t tag, const char *vr, uint32_t len, int expl, int big, unsigned flags,
                 enum dcm_value_kind *kind, char out[3])
{
    dcm_elem_hdr h = {.tag = tag, .len = len};
    memcpy(h.vr, vr, 3);
    return dcm_elem_value(&h, expl, big, flags, kind, out);
}

Test(elem, value_rule)
{
    enum dcm_value_kind k;
    char vr[3];
    cr_expect_eq(value(0x00081140, "SQ", DCM_UNDEF_LEN, 1, 0, 0, &k, vr), 0);
    cr_expect_eq(k, DCM_VALUE_SEQ);
    cr_expect_eq(value(0x00291010, "UN", DCM_UNDEF_LEN, 1, 1, 0, &k, vr), 0);
    cr_expect_eq(k, DCM_VALUE_SEQ_IMPLICIT);
    cr_expect_str_eq(vr, "SQ");
    cr_expect_eq(value(0x7FE00010, "OB", DCM_UNDEF_LEN, 1, 0, 0, &k, vr), 0);
    cr_expect_eq(k, DCM_VALUE_FRAGMENTS);
    cr_expect_str_eq(vr, "OB");
    cr_expect_eq(value(0x00101000, "LO", DCM_UNDEF_LEN, 0, 0, 0, &k, vr), HR_EPARSE);
    cr_expect_eq(value(0x00101000, "UT", DCM_UNDEF_LEN, 1, 0, 0, &k, vr), HR_EPARSE);
    /* explicit LE UN of a known tag takes the dictionary VR; of an SQ tag it is a sequence */
    cr_expect_eq(value(0x00100010, "UN", 6, 1, 0, 0, &k, vr), 0);
    cr_expect_eq(k, DCM_VALUE_BYTES);
    cr_expect_str_eq(vr, "PN");
    cr_expect_eq(value(0x00081140, "UN", 40, 1, 0, 0, &k, vr), 0);
    cr_expect_eq(k, DCM_VALUE_SEQ_IMPLICIT);
    cr_expect_eq(value(0x00100010, "UN", 6, 1, 1, 0, &k, vr), 0); /* not in big endian */
    cr_expect_str_eq(vr, "UN");
    cr_expect_eq(value(0x00100010, "UN", 0x10000, 1, 0, 0, &k, vr), 0); /* too long for PN */
    cr_expect_str_eq(vr, "UN");
    /* group 0002 belongs to the meta group only */
    dcm_elem_hdr h = {.tag = 0x00020016, .len = 4, .vr = "AE"};
    cr_expect_eq(dcm_elem_value(&h, 1, 0, 0, &k, vr), HR_EPARSE);
    cr_expect_eq(h.fault, DCM_FAULT_META);
    char msg[96];
    dcm_elem_fault_text(&h, msg, sizeof(msg));
    cr_expect_str_eq(msg, "File Meta Information element (0002,0016) inside the data set");
    cr_expect_eq(dcm_elem_value(&h, 1, 0, DCM_ELEM_META, &k, vr), 0);
}
