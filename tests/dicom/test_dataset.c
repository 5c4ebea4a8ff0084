/* dicom/dataset.c and dicom/dict.c: pydicom's test files (expected values
 * checked with DCMTK 3.6.7 dcmdump), round trips through all three transfer
 * syntaxes, the builder, padding rules, limits, and malformed input (every
 * truncation, random mutations, huge lengths). */
#include "common/hr_bytes.h"
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/dicom_json.h"
#include "dicom/dict.h"
#include "dicom/uids.h"

#include "support/support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYDICOM_DIR "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#define ENC_CAP     (8u << 20)

static const char *const k_ts3[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, DCM_TS_EXPLICIT_BE};

/* ---- helpers ------------------------------------------------------------ */

typedef struct file_ds {
    uint8_t *buf;
    size_t len, off; /* dataset = buf[off..len) */
    char ts[65];
} file_ds;

/* Reads a file; for Part 10 skips preamble + meta using (0002,0000) and takes
 * the transfer syntax from (0002,0010). Bare datasets use ts. */
static void load(const char *name, const char *ts, file_ds *f)
{
    char path[512];
    memset(f, 0, sizeof(*f));
    snprintf(path, sizeof(path), "%s/%s", PYDICOM_DIR, name);
    f->buf = ts_read_file(path, &f->len);
    cr_assert_not_null(f->buf, "cannot read %s", path);
    if (f->len >= 144 && !memcmp(f->buf + 128, "DICM", 4)) {
        const uint8_t *p = f->buf + 132;
        cr_assert(p[0] == 2 && p[1] == 0 && p[2] == 0 && p[3] == 0 && !memcmp(p + 4, "UL", 2),
                  "%s: meta must start with (0002,0000) UL", name);
        size_t end = 144 + hr_rd32(p + 8, 0);
        cr_assert(end <= f->len);
        size_t pos = 132;
        while (pos + 8 <= end) {
            const uint8_t *h = f->buf + pos;
            uint32_t tag = (uint32_t)(h[0] | h[1] << 8) << 16 | (uint32_t)(h[2] | h[3] << 8);
            char vr[3] = {(char)h[4], (char)h[5], 0};
            size_t len, hl = 8;
            if (dcm_vr_long_length(vr)) {
                len = hr_rd32(h + 8, 0);
                hl = 12;
            } else {
                len = (size_t)(h[6] | h[7] << 8);
            }
            if (tag == 0x00020010) {
                size_t n = len < sizeof(f->ts) - 1 ? len : sizeof(f->ts) - 1;
                memcpy(f->ts, h + hl, n);
                while (n && (f->ts[n - 1] == 0 || f->ts[n - 1] == ' '))
                    n--;
                f->ts[n] = 0;
            }
            pos += hl + len;
        }
        f->off = end;
    } else {
        snprintf(f->ts, sizeof(f->ts), "%s", ts);
    }
}

static dcm_ds *parse_file(const char *name, const char *ts, file_ds *f)
{
    dcm_ds *ds = NULL;
    load(name, ts, f);
    int rc = dcm_ds_parse(f->buf + f->off, f->len - f->off, f->ts, 0, &ds);
    cr_assert_eq(rc, 0, "%s: parse: %s", name, hr_strerror(rc));
    return ds;
}

static void str_eq(const dcm_ds *ds, uint32_t tag, const char *want)
{
    char got[512];
    int rc = dcm_ds_get_string(ds, tag, got, sizeof(got));
    cr_assert_eq(rc, 0, "(%04X,%04X): %s", tag >> 16, tag & 0xffff, hr_strerror(rc));
    cr_assert_str_eq(got, want, "(%04X,%04X)", tag >> 16, tag & 0xffff);
}

static double num(const dcm_ds *ds, uint32_t tag, size_t idx)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    double d = NAN;
    cr_assert_not_null(e, "(%04X,%04X) missing", tag >> 16, tag & 0xffff);
    cr_assert_eq(dcm_elem_number(e, idx, &d), 0);
    return d;
}

static const dcm_ds *item(const dcm_ds *ds, uint32_t tag, size_t i)
{
    const dcm_elem *e = dcm_ds_find(ds, tag);
    cr_assert_not_null(e);
    cr_assert_str_eq(e->vr, "SQ");
    cr_assert(i < e->n_items);
    return e->items[i];
}

/* Deep equality; VRs compared when cmp_vr. */
static void ds_eq(const dcm_ds *a, const dcm_ds *b, int cmp_vr)
{
    cr_assert_eq(dcm_ds_count(a), dcm_ds_count(b));
    for (size_t i = 0; i < dcm_ds_count(a); i++) {
        const dcm_elem *x = dcm_ds_at(a, i), *y = dcm_ds_at(b, i);
        cr_assert_eq(x->tag, y->tag);
        if (cmp_vr)
            cr_assert_str_eq(x->vr, y->vr, "(%04X,%04X)", x->tag >> 16, x->tag & 0xffff);
        if (!strcmp(x->vr, "SQ") && !strcmp(y->vr, "SQ")) {
            cr_assert_eq(x->n_items, y->n_items);
            for (size_t k = 0; k < x->n_items; k++)
                ds_eq(x->items[k], y->items[k], cmp_vr);
            continue;
        }
        /* odd lengths are padded by the encoder */
        uint32_t xl = x->len + (x->len & 1), yl = y->len + (y->len & 1);
        cr_assert_eq(xl, yl, "(%04X,%04X) len %u vs %u", x->tag >> 16, x->tag & 0xffff, x->len,
                     y->len);
        cr_assert(x->len == 0 || !memcmp(x->value, y->value, x->len < y->len ? x->len : y->len),
                  "(%04X,%04X) value differs", x->tag >> 16, x->tag & 0xffff);
    }
}

static void encode(const dcm_ds *ds, const char *ts, hr_buf *b)
{
    hr_buf_init(b, ENC_CAP);
    int rc = dcm_ds_encode(ds, ts, b);
    cr_assert_eq(rc, 0, "encode %s: %s", ts, hr_strerror(rc));
}

/* ---- dictionary --------------------------------------------------------- */

Test(dict, lookup)
{
    cr_assert_str_eq(dcm_dict_vr(0x00100010), "PN");
    cr_assert_str_eq(dcm_dict_vr(0x0020000D), "UI");
    cr_assert_str_eq(dcm_dict_vr(0x00080052), "CS");
    cr_assert_str_eq(dcm_dict_vr(0x00081199), "SQ"); /* ReferencedSOPSequence */
    cr_assert_str_eq(dcm_dict_vr(0x00081198), "SQ"); /* FailedSOPSequence */
    cr_assert_str_eq(dcm_dict_vr(0x00081110), "SQ"); /* ReferencedStudySequence */
    cr_assert_str_eq(dcm_dict_vr(0x00400275), "SQ"); /* RequestAttributesSequence */
    cr_assert_str_eq(dcm_dict_vr(0x00201208), "IS"); /* NumberOfStudyRelatedInstances */
    cr_assert_str_eq(dcm_dict_vr(0x00280010), "US");
    cr_assert_str_eq(dcm_dict_vr(0x00280120), "US"); /* US or SS -> US */
    cr_assert_str_eq(dcm_dict_vr(0x7FE00010), "OW");
    cr_assert_str_eq(dcm_dict_vr(0x60023000), "OW"); /* overlay group 6002 */
    cr_assert_str_eq(dcm_dict_vr(0x00180050), "DS");
    cr_assert_str_eq(dcm_dict_vr(0x00090010), "LO"); /* private creator */
    cr_assert_str_eq(dcm_dict_vr(0x00190000), "UL"); /* group length */
    cr_assert_str_eq(dcm_dict_vr(0x00091001), "UN");
    cr_assert_null(dcm_dict_lookup(0x00091001));
    cr_assert(dcm_vr_long_length("UT") && dcm_vr_long_length("UV") && !dcm_vr_long_length("LT"));
    cr_assert(dcm_vr_known("SV") && !dcm_vr_known("XX") && !dcm_vr_known("ox"));
}

/* ---- real files --------------------------------------------------------- */

Test(dataset, ct_small_explicit_le)
{
    file_ds f;
    dcm_ds *ds = parse_file("CT_small.dcm", NULL, &f);
    cr_assert_str_eq(f.ts, DCM_TS_EXPLICIT_LE);
    str_eq(ds, 0x00100010, "CompressedSamples^CT1");
    str_eq(ds, 0x00080005, "ISO_IR 100");
    str_eq(ds, 0x00200032, "-158.135803\\-179.035797\\-75.699997");
    cr_assert_eq(num(ds, 0x00280010, 0), 128);
    cr_assert_eq(num(ds, 0x00280011, 0), 128);
    cr_assert_eq(num(ds, 0x00280120, 0), -2000); /* SS */
    cr_assert_float_eq(num(ds, 0x00200032, 2), -75.699997, 1e-9);
    cr_assert_eq(dcm_elem_vm(dcm_ds_find(ds, 0x00200032)), 3);
    cr_assert_eq(dcm_elem_vm(dcm_ds_find(ds, 0x00200037)), 6);
    /* (0008,0090) ReferringPhysicianName is present but empty */
    const dcm_elem *e = dcm_ds_find(ds, 0x00080090);
    cr_assert_not_null(e);
    cr_assert(dcm_elem_empty(e));
    cr_assert_eq(dcm_elem_vm(e), 0);
    /* (0010,1002) OtherPatientIDsSequence: 2 items */
    str_eq(item(ds, 0x00101002, 0), 0x00100020, "ABCD1234");
    str_eq(item(ds, 0x00101002, 1), 0x00100020, "1234ABCD");
    e = dcm_ds_find(ds, 0x7FE00010);
    cr_assert_str_eq(e->vr, "OW");
    cr_assert_eq(e->len, 128 * 128 * 2);
    cr_assert_null(dcm_ds_find(ds, 0x00100011));
    /* re-encoding in the file's own syntax gives the same bytes */
    hr_buf b;
    encode(ds, f.ts, &b);
    cr_assert_eq(b.len, f.len - f.off);
    cr_assert(!memcmp(b.data, f.buf + f.off, b.len));
    hr_buf_free(&b);
    dcm_ds_free(ds);
    free(f.buf);
}

Test(dataset, rtplan_implicit_nested)
{
    file_ds f;
    dcm_ds *ds = parse_file("rtplan.dcm", NULL, &f);
    cr_assert_str_eq(f.ts, DCM_TS_IMPLICIT_LE);
    str_eq(ds, 0x00100010, "Last^First^mid^pre");
    str_eq(ds, 0x00081040, "Radiation Therap");
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00080050)));
    cr_assert_str_eq(dcm_ds_find(ds, 0x00100010)->vr, "PN"); /* from the dictionary */
    const dcm_elem *seq = dcm_ds_find(ds, 0x300A0010);
    cr_assert_str_eq(seq->vr, "SQ");
    cr_assert_eq(seq->n_items, 2);
    str_eq(seq->items[0], 0x300A0018, "239.531250000000\\239.531250000000\\-741.87000000000");
    str_eq(seq->items[1], 0x300A0016, "PTV");
    cr_assert_float_eq(num(seq->items[1], 0x300A0026, 0), 30.826203, 1e-9);
    /* two levels: FractionGroupSequence > ReferencedBeamSequence */
    const dcm_ds *fg = item(ds, 0x300A0070, 0);
    const dcm_ds *rb = item(fg, 0x300C0004, 0);
    str_eq(rb, 0x300A0086, "116.003669700000");
    cr_assert_eq(num(rb, 0x300C0006, 0), 1);
    dcm_ds_free(ds);
    free(f.buf);
}

Test(dataset, big_endian_no_meta)
{
    file_ds f;
    dcm_ds *ds = parse_file("ExplVR_BigEndNoMeta.dcm", DCM_TS_EXPLICIT_BE, &f);
    str_eq(ds, 0x00080016, "1.2.840.10008.5.1.4.1.1.481.8"); /* RTIonPlanStorage */
    str_eq(ds, 0x00080018, "1.2.333.4444.5.6.7.8");
    str_eq(ds, 0x00080070, "CMS, Inc.");
    dcm_ds_free(ds);
    free(f.buf);

    /* the same image in little and big endian gives the same values */
    file_ds fl, fb;
    dcm_ds *le = parse_file("MR_small.dcm", NULL, &fl);
    dcm_ds *be = parse_file("MR_small_bigendian.dcm", NULL, &fb);
    cr_assert_str_eq(fb.ts, DCM_TS_EXPLICIT_BE);
    cr_assert_eq(num(be, 0x00280010, 0), 64);
    cr_assert_eq(num(be, 0x00280100, 0), 16);
    const dcm_elem *pl = dcm_ds_find(le, 0x7FE00010), *pb = dcm_ds_find(be, 0x7FE00010);
    cr_assert_eq(pl->len, pb->len);
    cr_assert(!memcmp(pl->value, pb->value, pl->len), "pixel data swapped to LE");
    dcm_ds_free(le);
    dcm_ds_free(be);
    free(fl.buf);
    free(fb.buf);
}

/* Every file re-encoded in every syntax parses back to the same dataset. */
Test(dataset, round_trip_files_all_ts)
{
    static const char *const files[] = {"CT_small.dcm", "rtplan.dcm", "MR_small.dcm",
                                        "MR_small_bigendian.dcm", "MR_small_implicit.dcm"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        file_ds f;
        dcm_ds *ds = parse_file(files[i], NULL, &f);
        for (size_t t = 0; t < 3; t++) {
            hr_buf b;
            dcm_ds *back = NULL;
            encode(ds, k_ts3[t], &b);
            int rc = dcm_ds_parse(b.data, b.len, k_ts3[t], ENC_CAP, &back);
            cr_assert_eq(rc, 0, "%s via %s: %s", files[i], k_ts3[t], hr_strerror(rc));
            ds_eq(ds, back, t != 0 && strcmp(f.ts, DCM_TS_IMPLICIT_LE) != 0);
            /* and a second encoding is byte-identical */
            hr_buf b2;
            encode(back, k_ts3[t], &b2);
            cr_assert_eq(b.len, b2.len);
            cr_assert(!memcmp(b.data, b2.data, b.len));
            hr_buf_free(&b2);
            hr_buf_free(&b);
            dcm_ds_free(back);
        }
        dcm_ds_free(ds);
        free(f.buf);
    }
}

/* ---- builder ------------------------------------------------------------ */

static dcm_ds *build_query(void)
{
    dcm_ds *ds = dcm_ds_new(), *ref = dcm_ds_new(), *req = dcm_ds_new(), *deep = dcm_ds_new();
    cr_assert(ds && ref && req && deep);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, NULL, "Doe^J*"), 0); /* odd -> space */
    cr_assert_eq(dcm_ds_put_string(ds, 0x0020000D, NULL, "1.2.3"), 0);  /* odd -> NUL */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00080052, "CS", "STUDY"), 0);  /* odd */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00080020, NULL, ""), 0);       /* universal */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00080061, NULL, "CT\\MR"), 0); /* multi-valued */
    cr_assert_eq(dcm_ds_put_u16(ds, 0x00280010, 512), 0);
    cr_assert_eq(dcm_ds_put_u32(ds, 0x00091001, 0x01020304), 0); /* private: UL */
    cr_assert_eq(dcm_ds_put_bytes(ds, 0x00431028, "OB", "\x01\x02\x03", 3), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00081150, NULL, "1.2.840.10008.5.1.4.1.1.2"), 0);
    cr_assert_eq(dcm_ds_put_string(ref, 0x00081155, NULL, "1.2.3.4"), 0);
    cr_assert_eq(dcm_ds_put_string(ref, 0x00081150, NULL, "1.2.840.10008.5.1.4.1.1.7"), 0);
    cr_assert_eq(dcm_ds_put_string(deep, 0x00100020, NULL, "X"), 0);
    cr_assert_eq(dcm_ds_append_item(ref, 0x00081199, deep), 0);
    cr_assert_eq(dcm_ds_append_item(ds, 0x00081110, ref), 0);
    cr_assert_eq(dcm_ds_put_string(req, 0x00401001, NULL, "RP1"), 0);
    dcm_ds *items[1] = {req};
    cr_assert_eq(dcm_ds_put_sequence(ds, 0x00400275, items, 1), 0);
    cr_assert_eq(dcm_ds_put_sequence(ds, 0x00081198, NULL, 0), 0); /* empty SQ */
    return ds;
}

Test(dataset, builder_sorted_padded)
{
    dcm_ds *ds = build_query();
    for (size_t i = 1; i < dcm_ds_count(ds); i++)
        cr_assert_lt(dcm_ds_at(ds, i - 1)->tag, dcm_ds_at(ds, i)->tag);
    const dcm_elem *e = dcm_ds_find(ds, 0x00100010);
    cr_assert_eq(e->len, 6);
    e = dcm_ds_find(ds, 0x0020000D);
    cr_assert_eq(e->len, 6);
    cr_assert_eq(e->value[5], 0);
    e = dcm_ds_find(ds, 0x00080052);
    cr_assert_eq(e->value[5], ' ');
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00080020)));
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00081198)));
    cr_assert(!dcm_elem_empty(dcm_ds_find(ds, 0x00081110)));
    str_eq(ds, 0x0020000D, "1.2.3");
    str_eq(ds, 0x00080052, "STUDY");
    char v[16];
    cr_assert_eq(dcm_elem_string(dcm_ds_find(ds, 0x00080061), 1, v, sizeof(v)), 0);
    cr_assert_str_eq(v, "MR");
    cr_assert_eq(dcm_elem_string(dcm_ds_find(ds, 0x00080061), 2, v, sizeof(v)), HR_ENOTFOUND);
    cr_assert_eq(dcm_elem_string(dcm_ds_find(ds, 0x00280010), 0, v, sizeof(v)), HR_EMISMATCH);
    cr_assert_eq(dcm_ds_get_string(ds, 0x00100020, v, sizeof(v)), HR_ENOTFOUND);
    cr_assert_eq(dcm_ds_get_string(ds, 0x00081150, v, sizeof(v)), HR_ETOOBIG);
    cr_assert_str_eq(v, "1.2.840.10008.5");
    /* replace and remove */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, NULL, "Roe"), 0);
    str_eq(ds, 0x00100010, "Roe");
    size_t n = dcm_ds_count(ds);
    cr_assert_eq(dcm_ds_remove(ds, 0x00080052), 0);
    cr_assert_eq(dcm_ds_remove(ds, 0x00080052), HR_ENOTFOUND);
    cr_assert_eq(dcm_ds_count(ds), n - 1);
    /* misuse */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00280010, NULL, "x"), HR_EPARSE); /* US is binary */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, "ZZ", "x"), HR_EPARSE);
    cr_assert_eq(dcm_ds_put_bytes(ds, 0x00081110, "SQ", "x", 1), HR_EPARSE);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG_ITEM, "CS", "x"), HR_EPARSE);
    cr_assert_eq(dcm_ds_append_item(ds, 0x00100010, dcm_ds_new()), HR_EMISMATCH);
    dcm_ds_free(ds);
}

Test(dataset, builder_round_trip_all_ts)
{
    dcm_ds *ds = build_query();
    for (size_t t = 0; t < 3; t++) {
        hr_buf b;
        dcm_ds *back = NULL;
        encode(ds, k_ts3[t], &b);
        cr_assert_eq(b.len % 2, 0);
        cr_assert_eq(dcm_ds_parse(b.data, b.len, k_ts3[t], 0, &back), 0);
        /* private UL reads back as UN in implicit VR: compare VRs in explicit only */
        ds_eq(ds, back, t != 0);
        str_eq(item(item(back, 0x00081110, 0), 0x00081199, 0), 0x00100020, "X");
        str_eq(item(back, 0x00400275, 0), 0x00401001, "RP1");
        cr_assert_eq(num(back, 0x00280010, 0), 512);
        hr_buf_free(&b);
        dcm_ds_free(back);
    }
    dcm_ds_free(ds);
}

Test(dataset, encode_exact_bytes)
{
    dcm_ds *ds = dcm_ds_new();
    hr_buf b;
    cr_assert_eq(dcm_ds_put_u16(ds, 0x00280010, 0x0102), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, NULL, "A"), 0);
    encode(ds, DCM_TS_IMPLICIT_LE, &b);
    static const uint8_t imp[] = {0x10, 0, 0x10, 0, 2, 0, 0, 0, 'A',  ' ',
                                  0x28, 0, 0x10, 0, 2, 0, 0, 0, 0x02, 0x01};
    cr_assert_eq(b.len, sizeof(imp));
    cr_assert(!memcmp(b.data, imp, sizeof(imp)));
    hr_buf_free(&b);
    encode(ds, DCM_TS_EXPLICIT_BE, &b);
    static const uint8_t be[] = {0, 0x10, 0, 0x10, 'P', 'N', 0, 2, 'A',  ' ',
                                 0, 0x28, 0, 0x10, 'U', 'S', 0, 2, 0x01, 0x02};
    cr_assert_eq(b.len, sizeof(be));
    cr_assert(!memcmp(b.data, be, sizeof(be)));
    hr_buf_free(&b);
    /* long form (UT) and SQ in explicit LE */
    dcm_ds_free(ds);
    ds = dcm_ds_new();
    cr_assert_eq(dcm_ds_put_string(ds, 0x00080119, "UC", "ab"), 0);
    cr_assert_eq(dcm_ds_append_item(ds, 0x00081199, dcm_ds_new()), 0);
    encode(ds, DCM_TS_EXPLICIT_LE, &b);
    static const uint8_t el[] = {8,   0,   0x19, 1,    'U',  'C',  0,   0,   2, 0, 0, 0,
                                 'a', 'b', 8,    0,    0x99, 0x11, 'S', 'Q', 0, 0, 8, 0,
                                 0,   0,   0xFE, 0xFF, 0,    0xE0, 0,   0,   0, 0};
    cr_assert_eq(b.len, sizeof(el));
    cr_assert(!memcmp(b.data, el, sizeof(el)));
    hr_buf_free(&b);
    /* unsupported syntaxes, buffer cap, short-length overflow */
    hr_buf_init(&b, 16);
    cr_assert_eq(dcm_ds_encode(ds, DCM_TS_DEFLATED_LE, &b), HR_EUNSUP);
    cr_assert_eq(dcm_ds_encode(ds, "1.2.840.10008.1.2.4.50", &b), HR_EUNSUP);
    cr_assert_eq(dcm_ds_encode(ds, DCM_TS_EXPLICIT_LE, &b), HR_ETOOBIG);
    cr_assert_eq(b.len, 0);
    hr_buf_free(&b);
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    cr_assert_eq(dcm_ds_put_stringn(ds, 0x00081030, "LO", big, 70000), 0);
    hr_buf_init(&b, ENC_CAP);
    cr_assert_eq(dcm_ds_encode(ds, DCM_TS_EXPLICIT_LE, &b), HR_ETOOBIG);
    cr_assert_eq(dcm_ds_encode(ds, DCM_TS_IMPLICIT_LE, &b), 0);
    hr_buf_free(&b);
    free(big);
    dcm_ds_free(ds);
}

/* PS3.5 6.2 padding rules of dcm_elem_string. */
Test(dataset, padding_rules)
{
    dcm_ds *ds = dcm_ds_new();
    char v[64];
    cr_assert_eq(dcm_ds_put_string(ds, 0x00080060, "CS", "  CT  "), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, "PN", "  Doe^John  "), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00081030, "LO", " head \\ neck "), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00324000, "LT", "  a\\b  "), 0);
    cr_assert_eq(dcm_ds_put_bytes(ds, 0x0020000D, "UI", "1.2\0\0", 4), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100020, "LO", "    "), 0);
    str_eq(ds, 0x00080060, "CT");
    str_eq(ds, 0x00100010, "  Doe^John"); /* PN: leading spaces significant */
    str_eq(ds, 0x00081030, "head\\neck");
    str_eq(ds, 0x00324000, "  a\\b"); /* LT: one value, leading kept */
    str_eq(ds, 0x0020000D, "1.2");
    cr_assert_eq(dcm_elem_vm(dcm_ds_find(ds, 0x00324000)), 1);
    cr_assert_eq(dcm_elem_vm(dcm_ds_find(ds, 0x00081030)), 2);
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00100020)));
    cr_assert_eq(dcm_elem_string(dcm_ds_find(ds, 0x00100020), 0, v, sizeof(v)), HR_ENOTFOUND);
    cr_assert_eq(dcm_ds_get_string(ds, 0x00100020, v, sizeof(v)), 0);
    cr_assert_str_eq(v, "");
    /* numbers: IS/DS text */
    cr_assert_eq(dcm_ds_put_string(ds, 0x00200013, "IS", " +12 "), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00180050, "DS", "1.5e1\\x"), 0);
    cr_assert_eq(num(ds, 0x00200013, 0), 12);
    cr_assert_eq(num(ds, 0x00180050, 0), 15);
    double d;
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00180050), 1, &d), HR_EPARSE);
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00180050), 2, &d), HR_ENOTFOUND);
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00100010), 0, &d), HR_EMISMATCH);
    dcm_ds_free(ds);
}

/* ---- malformed input ---------------------------------------------------- */

typedef struct bld {
    uint8_t b[4096];
    size_t n;
} bld;

static void b16(bld *d, uint16_t v)
{
    d->b[d->n++] = (uint8_t)v;
    d->b[d->n++] = (uint8_t)(v >> 8);
}

static void b32(bld *d, uint32_t v)
{
    b16(d, (uint16_t)v);
    b16(d, (uint16_t)(v >> 16));
}

static void btag(bld *d, uint32_t tag)
{
    b16(d, (uint16_t)(tag >> 16));
    b16(d, (uint16_t)tag);
}

static int parse_bytes(const bld *d, const char *ts)
{
    dcm_ds *ds = NULL;
    int rc = dcm_ds_parse(d->b, d->n, ts, 0, &ds);
    cr_assert(rc == 0 ? ds != NULL : ds == NULL);
    dcm_ds_free(ds);
    return rc;
}

Test(dataset, malformed_structures)
{
    bld d = {0};
    dcm_ds *ds = NULL;
    /* unsupported syntaxes */
    cr_assert_eq(dcm_ds_parse(d.b, 0, DCM_TS_DEFLATED_LE, 0, &ds), HR_EUNSUP);
    cr_assert_eq(dcm_ds_parse(d.b, 0, "1.2.840.10008.1.2.4.70", 0, &ds), HR_EUNSUP);
    cr_assert_eq(dcm_ds_parse(d.b, 0, "1.2.3", 0, &ds), HR_EUNSUP);
    cr_assert_eq(dcm_ds_parse(d.b, 0, NULL, 0, &ds), HR_EUNSUP);
    /* empty dataset is valid */
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), 0);
    /* size limit */
    cr_assert_eq(dcm_ds_parse(d.b, 100, DCM_TS_IMPLICIT_LE, 99, &ds), HR_ETOOBIG);
    /* huge length */
    d.n = 0;
    btag(&d, 0x00100010);
    b32(&d, 0xFFFFFFF0u);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_ETRUNC);
    /* undefined length on a non-sequence */
    d.n = 0;
    btag(&d, 0x00100010);
    b32(&d, 0xFFFFFFFFu);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_EPARSE);
    /* invalid VR in explicit VR */
    d.n = 0;
    btag(&d, 0x00100010);
    d.b[d.n++] = 'p';
    d.b[d.n++] = 'n';
    b16(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_EXPLICIT_LE), HR_EPARSE);
    /* delimiters at top level */
    d.n = 0;
    btag(&d, DCM_TAG_ITEM_DELIM);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_EPARSE);
    d.n = 0;
    btag(&d, DCM_TAG_SEQ_DELIM);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_EXPLICIT_LE), HR_EPARSE);
    /* duplicate tag; out of order is sorted */
    d.n = 0;
    btag(&d, 0x00100020);
    b32(&d, 2);
    b16(&d, 0x4141);
    btag(&d, 0x00100010);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), 0);
    btag(&d, 0x00100020);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_EPARSE);
    /* undefined-length SQ with an undefined-length item, then unterminated */
    d.n = 0;
    btag(&d, 0x00081199);
    b32(&d, 0xFFFFFFFFu);
    btag(&d, DCM_TAG_ITEM);
    b32(&d, 0xFFFFFFFFu);
    btag(&d, 0x00081150);
    b32(&d, 2);
    b16(&d, 0x0031);
    btag(&d, DCM_TAG_ITEM_DELIM);
    b32(&d, 0);
    size_t open_len = d.n;
    btag(&d, DCM_TAG_SEQ_DELIM);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), 0);
    cr_assert_eq(dcm_ds_parse(d.b, d.n, DCM_TS_IMPLICIT_LE, 0, &ds), 0);
    str_eq(item(ds, 0x00081199, 0), 0x00081150, "1");
    dcm_ds_free(ds);
    d.n = open_len;
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_ETRUNC);
    /* non-item inside a sequence */
    d.n = 0;
    btag(&d, 0x00081199);
    b32(&d, 8);
    btag(&d, 0x00100010);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_EPARSE);
    /* element overrunning its defined-length item */
    d.n = 0;
    btag(&d, 0x00081199);
    b32(&d, 20);
    btag(&d, DCM_TAG_ITEM);
    b32(&d, 12);
    btag(&d, 0x00100010);
    b32(&d, 8);
    b32(&d, 0x20202020);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_ETRUNC); /* the item ends the input */
    btag(&d, 0x00100020);
    b32(&d, 0);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_EPARSE);
    /* explicit UN with undefined length: implicit VR LE sequence inside */
    d.n = 0;
    btag(&d, 0x00091010);
    d.b[d.n++] = 'U';
    d.b[d.n++] = 'N';
    b16(&d, 0);
    b32(&d, 0xFFFFFFFFu);
    btag(&d, DCM_TAG_ITEM);
    b32(&d, 10);
    btag(&d, 0x00100020);
    b32(&d, 2);
    b16(&d, 0x4242);
    btag(&d, DCM_TAG_SEQ_DELIM);
    b32(&d, 0);
    cr_assert_eq(dcm_ds_parse(d.b, d.n, DCM_TS_EXPLICIT_BE, 0, &ds), 0);
    cr_assert_str_eq(dcm_ds_find(ds, 0x00091010) ? "" : "missing", "missing"); /* BE tag order */
    dcm_ds_free(ds);
    cr_assert_eq(dcm_ds_parse(d.b, d.n, DCM_TS_EXPLICIT_LE, 0, &ds), 0);
    cr_assert_str_eq(dcm_ds_find(ds, 0x00091010)->vr, "SQ");
    str_eq(item(ds, 0x00091010, 0), 0x00100020, "BB");
    dcm_ds_free(ds);
}

static size_t nested(bld *d, int levels)
{
    d->n = 0;
    for (int i = 0; i < levels; i++) {
        btag(d, 0x00081199);
        b32(d, 0xFFFFFFFFu);
        btag(d, DCM_TAG_ITEM);
        b32(d, 0xFFFFFFFFu);
    }
    for (int i = 0; i < levels; i++) {
        btag(d, DCM_TAG_ITEM_DELIM);
        b32(d, 0);
        btag(d, DCM_TAG_SEQ_DELIM);
        b32(d, 0);
    }
    return d->n;
}

Test(dataset, limits)
{
    bld d;
    nested(&d, DCM_DS_MAX_DEPTH);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), 0);
    nested(&d, DCM_DS_MAX_DEPTH + 1);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_ETOOBIG);
    nested(&d, 100);
    cr_assert_eq(parse_bytes(&d, DCM_TS_IMPLICIT_LE), HR_ETOOBIG);

    /* element count */
    size_t n = (DCM_DS_MAX_ELEMENTS + 1) * 8;
    uint8_t *b = calloc(1, n);
    for (size_t i = 0; i <= DCM_DS_MAX_ELEMENTS; i++) {
        b[i * 8] = 0x09; /* (0009,xxxx) ascending, zero length */
        b[i * 8 + 2] = (uint8_t)(i + 0x100);
        b[i * 8 + 3] = (uint8_t)((i + 0x100) >> 8);
    }
    dcm_ds *ds = NULL;
    cr_assert_eq(dcm_ds_parse(b, n - 8, DCM_TS_IMPLICIT_LE, 0, &ds), 0);
    cr_assert_eq(dcm_ds_count(ds), DCM_DS_MAX_ELEMENTS);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, NULL, "x"), HR_ETOOBIG);
    dcm_ds_free(ds);
    cr_assert_eq(dcm_ds_parse(b, n, DCM_TS_IMPLICIT_LE, 0, &ds), HR_ETOOBIG);
    free(b);

    /* encoder depth guard on a built dataset */
    dcm_ds *root = dcm_ds_new(), *cur = root;
    for (int i = 0; i < DCM_DS_MAX_DEPTH + 1; i++) {
        dcm_ds *it = dcm_ds_new();
        cr_assert_eq(dcm_ds_append_item(cur, 0x00081199, it), 0);
        cur = it;
    }
    hr_buf hb;
    hr_buf_init(&hb, ENC_CAP);
    cr_assert_eq(dcm_ds_encode(root, DCM_TS_EXPLICIT_LE, &hb), HR_ETOOBIG);
    hr_buf_free(&hb);
    dcm_ds_free(root);
}

/* Offsets where the top-level elements of a flat (no SQ) dataset start in
 * its encoding, plus its end. */
static size_t boundaries(const dcm_ds *ds, const char *ts, size_t *out, size_t cap)
{
    size_t k = 0, total = 0;
    out[k++] = 0;
    for (size_t i = 0; i < dcm_ds_count(ds) && k < cap; i++) {
        const dcm_elem *e = dcm_ds_at(ds, i);
        cr_assert_str_neq(e->vr, "SQ");
        dcm_ds *one = dcm_ds_new();
        hr_buf b;
        cr_assert_eq(dcm_ds_put_bytes(one, e->tag, e->vr, e->value, e->len), 0);
        encode(one, ts, &b);
        total += b.len;
        out[k++] = total;
        hr_buf_free(&b);
        dcm_ds_free(one);
    }
    return k;
}

/* Every strict prefix of a valid encoding either is a whole number of
 * top-level elements (valid) or fails with HR_ETRUNC; never crashes. */
static void truncations(const dcm_ds *ds, const char *ts, int expect_bounds)
{
    hr_buf b;
    static size_t bounds[DCM_DS_MAX_ELEMENTS + 2];
    size_t nb = expect_bounds ? boundaries(ds, ts, bounds, sizeof(bounds) / sizeof(bounds[0])) : 0;
    encode(ds, ts, &b);
    for (size_t cut = 0; cut < b.len; cut++) {
        dcm_ds *out = NULL;
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size so ASan sees overreads */
        memcpy(copy, b.data, cut);
        int rc = dcm_ds_parse(copy, cut, ts, 0, &out);
        int at_bound = 0;
        for (size_t i = 0; i < nb; i++)
            at_bound |= bounds[i] == cut;
        if (rc == 0) {
            cr_assert(!expect_bounds || at_bound, "%s: cut %zu parsed", ts, cut);
            cr_assert(!nb || at_bound);
        } else {
            cr_assert(rc == HR_ETRUNC || (!expect_bounds && rc == HR_EPARSE),
                      "%s: cut %zu/%zu gave %s", ts, cut, b.len, hr_err_name(rc));
            cr_assert(!at_bound);
        }
        dcm_ds_free(out);
        free(copy);
    }
    hr_buf_free(&b);
}

Test(dataset, every_truncation)
{
    dcm_ds *q = build_query();
    file_ds f;
    dcm_ds *rt = parse_file("rtplan.dcm", NULL, &f);
    for (size_t t = 0; t < 3; t++) {
        truncations(q, k_ts3[t], 0);
        truncations(rt, k_ts3[t], 0);
    }
    /* a flat dataset: prefixes are valid exactly at element boundaries */
    dcm_ds *flat = dcm_ds_new();
    cr_assert_eq(dcm_ds_put_string(flat, 0x00100010, NULL, "Doe^John"), 0);
    cr_assert_eq(dcm_ds_put_string(flat, 0x00100020, NULL, "ID7"), 0);
    cr_assert_eq(dcm_ds_put_u16(flat, 0x00280010, 9), 0);
    cr_assert_eq(dcm_ds_put_bytes(flat, 0x7FE00010, "OW", "abcd", 4), 0);
    for (size_t t = 0; t < 3; t++)
        truncations(flat, k_ts3[t], 1);
    dcm_ds_free(flat);
    dcm_ds_free(q);
    dcm_ds_free(rt);
    free(f.buf);
}

/* Random mutations of valid encodings: parse in every syntax, and when it
 * parses, convert to JSON and back and re-encode. Must never crash/leak. */
Test(dataset, random_mutations)
{
    dcm_ds *q = build_query();
    file_ds f;
    dcm_ds *rt = parse_file("rtplan.dcm", NULL, &f);
    hr_buf enc[6];
    for (size_t t = 0; t < 3; t++) {
        encode(q, k_ts3[t], &enc[t]);
        encode(rt, k_ts3[t], &enc[3 + t]);
    }
    srand(12345);
    size_t ok = 0;
    for (int iter = 0; iter < 10000; iter++) {
        const hr_buf *src = &enc[iter % 6];
        uint8_t *m = malloc(src->len);
        memcpy(m, src->data, src->len);
        int nmut = 1 + rand() % 4;
        for (int k = 0; k < nmut; k++) {
            size_t pos = (size_t)rand() % src->len;
            switch (rand() % 4) {
            case 0:
                m[pos] = (uint8_t)rand();
                break;
            case 1:
                m[pos] ^= (uint8_t)(1u << (rand() % 8));
                break;
            case 2:
                m[pos] = 0xFF;
                break;
            default:
                m[pos] = 0;
                break;
            }
        }
        size_t len = rand() % 8 == 0 ? (size_t)rand() % src->len : src->len;
        for (size_t t = 0; t < 3; t++) {
            dcm_ds *ds = NULL;
            int rc = dcm_ds_parse(m, len, k_ts3[t], 0, &ds);
            cr_assert(rc == 0 || rc == HR_EPARSE || rc == HR_ETRUNC || rc == HR_ETOOBIG,
                      "unexpected %s", hr_err_name(rc));
            if (rc)
                continue;
            ok++;
            json_t *j = NULL;
            cr_assert_eq(dcm_json_from_ds(ds, NULL, &j), 0);
            dcm_ds *back = NULL;
            rc = dcm_json_to_ds(j, &back);
            cr_assert(rc == 0 || rc == HR_ETOOBIG, "json back: %s", hr_err_name(rc));
            hr_buf b;
            hr_buf_init(&b, ENC_CAP);
            rc = dcm_ds_encode(ds, k_ts3[(t + 1) % 3], &b);
            cr_assert(rc == 0 || rc == HR_ETOOBIG);
            hr_buf_free(&b);
            dcm_ds_free(back);
            json_decref(j);
            dcm_ds_free(ds);
        }
        free(m);
    }
    cr_assert_gt(ok, 100, "some mutations must still parse (%zu)", ok);
    for (size_t i = 0; i < 6; i++)
        hr_buf_free(&enc[i]);
    dcm_ds_free(q);
    dcm_ds_free(rt);
    free(f.buf);
}
