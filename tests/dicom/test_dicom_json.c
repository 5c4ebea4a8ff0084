/* dicom/dicom_json.c: DICOM JSON of pydicom's test files compared with
 * DCMTK 3.6.7 dcm2json (run here), Japanese ISO 2022 and GB18030 names, the
 * BulkDataURI hook, JSON -> dataset conversion and its error paths.
 *
 * Accepted differences with dcm2json: numbers are compared by value (DCMTK
 * copies the DS/IS text, we emit integer or real; FL within 1e-6 relative);
 * chrH31.dcm cannot be converted by dcm2json with glibc iconv ("ISO 2022 IR
 * 87" unsupported) so its values are hard-coded from pydicom's FileInfo.txt. */
#include "common/hr_bytes.h"
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/dicom_json.h"
#include "dicom/uids.h"

#include "support/support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYDICOM_DIR "/usr/lib/python3/dist-packages/pydicom/data"

/* Parses the dataset of a Part 10 file (meta skipped with (0002,0000)) or a
 * bare dataset in ts. */
static dcm_ds *parse_file(const char *rel, const char *ts)
{
    char path[512], tsbuf[65] = "";
    size_t len, off = 0;
    snprintf(path, sizeof(path), "%s/%s", PYDICOM_DIR, rel);
    uint8_t *b = ts_read_file(path, &len);
    cr_assert_not_null(b, "cannot read %s", path);
    if (len >= 144 && !memcmp(b + 128, "DICM", 4)) {
        off = 144 + hr_rd32(b + 140, 0);
        for (size_t pos = 132; pos + 8 <= off;) {
            const uint8_t *h = b + pos;
            char vr[3] = {(char)h[4], (char)h[5], 0};
            size_t vl, hl = 8;
            if (dcm_vr_long_length(vr)) {
                vl = hr_rd32(h + 8, 0);
                hl = 12;
            } else {
                vl = (size_t)(h[6] | h[7] << 8);
            }
            if (h[0] == 2 && h[1] == 0 && h[2] == 0x10 && h[3] == 0) {
                size_t n = vl < 64 ? vl : 64;
                memcpy(tsbuf, h + hl, n);
                while (n && (tsbuf[n - 1] == 0 || tsbuf[n - 1] == ' '))
                    n--;
                tsbuf[n] = 0;
            }
            pos += hl + vl;
        }
        ts = tsbuf;
    }
    dcm_ds *ds = NULL;
    int rc = dcm_ds_parse(b + off, len - off, ts, 0, &ds);
    cr_assert_eq(rc, 0, "%s: %s", rel, hr_strerror(rc));
    free(b);
    return ds;
}

static json_t *to_json(const dcm_ds *ds, const dcm_json_opts *o)
{
    json_t *j = NULL;
    cr_assert_eq(dcm_json_from_ds(ds, o, &j), 0);
    cr_assert_not_null(j);
    return j;
}

static json_t *dcm2json(const char *rel)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "dcm2json %s/%s 2>/dev/null", PYDICOM_DIR, rel);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    json_error_t err;
    json_t *j = json_loadf(p, 0, &err);
    pclose(p);
    cr_assert_not_null(j, "dcm2json %s: %s", rel, err.text);
    return j;
}

static void cmp_obj(const json_t *mine, const json_t *ref, const char *path);

static void cmp_value(const json_t *m, const json_t *r, const char *vr, const char *path)
{
    if (json_is_number(r)) {
        cr_assert(json_is_number(m), "%s: number expected", path);
        double a = json_number_value(m), b = json_number_value(r);
        cr_assert(fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)), "%s: %.17g vs %.17g", path, a, b);
    } else if (!strcmp(vr, "SQ")) {
        cmp_obj(m, r, path);
    } else {
        char *a = json_dumps(m, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        char *b = json_dumps(r, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        cr_assert(json_equal(m, r), "%s: %s vs %s", path, a, b);
        free(a);
        free(b);
    }
}

static void cmp_obj(const json_t *mine, const json_t *ref, const char *path)
{
    const char *key;
    json_t *r;
    cr_assert(json_is_object(mine) && json_is_object(ref), "%s", path);
    cr_assert_eq(json_object_size(mine), json_object_size(ref), "%s: %zu vs %zu members", path,
                 json_object_size(mine), json_object_size(ref));
    json_object_foreach((json_t *)ref, key, r)
    {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s/%s", path, key);
        json_t *m = json_object_get(mine, key);
        cr_assert_not_null(m, "%s missing", sub);
        const char *vr = json_string_value(json_object_get(r, "vr"));
        cr_assert_str_eq(json_string_value(json_object_get(m, "vr")), vr, "%s vr", sub);
        cr_assert_eq(json_object_size(m), json_object_size(r), "%s members", sub);
        json_t *rv = json_object_get(r, "Value"), *mv = json_object_get(m, "Value");
        if (rv) {
            cr_assert(json_is_array(mv), "%s: Value missing", sub);
            cr_assert_eq(json_array_size(mv), json_array_size(rv), "%s VM", sub);
            for (size_t i = 0; i < json_array_size(rv); i++)
                cmp_value(json_array_get(mv, i), json_array_get(rv, i), vr, sub);
        }
        json_t *rb = json_object_get(r, "InlineBinary");
        if (rb)
            cr_assert(json_equal(rb, json_object_get(m, "InlineBinary")), "%s InlineBinary", sub);
    }
}

static void against_dcmtk(const char *rel, const char *ts)
{
    dcm_ds *ds = parse_file(rel, ts);
    json_t *mine = to_json(ds, NULL), *ref = dcm2json(rel);
    cmp_obj(mine, ref, rel);
    json_decref(mine);
    json_decref(ref);
    dcm_ds_free(ds);
}

Test(dicom_json, ct_small_vs_dcm2json)
{
    against_dcmtk("test_files/CT_small.dcm", NULL);
}

Test(dicom_json, rtplan_implicit_nested_vs_dcm2json)
{
    against_dcmtk("test_files/rtplan.dcm", NULL);
}

Test(dicom_json, big_endian_vs_dcm2json)
{
    against_dcmtk("test_files/ExplVR_BigEndNoMeta.dcm", DCM_TS_EXPLICIT_BE);
    against_dcmtk("test_files/MR_small_bigendian.dcm", NULL);
}

Test(dicom_json, charsets_vs_dcm2json)
{
    static const char *const files[] = {"chrX1.dcm",   "chrX2.dcm",    "chrFren.dcm",
                                        "chrGerm.dcm", "chrGreek.dcm", "chrRuss.dcm",
                                        "chrArab.dcm", "chrHbrw.dcm",  "chrFrenMulti.dcm"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char rel[128];
        snprintf(rel, sizeof(rel), "charset_files/%s", files[i]);
        against_dcmtk(rel, NULL);
    }
}

static void pn_eq(const json_t *j, const char *a, const char *i, const char *p)
{
    const json_t *pn = json_array_get(json_object_get(json_object_get(j, "00100010"), "Value"), 0);
    cr_assert(json_is_object(pn));
    cr_assert_str_eq(json_string_value(json_object_get(pn, "Alphabetic")), a);
    if (i)
        cr_assert_str_eq(json_string_value(json_object_get(pn, "Ideographic")), i);
    else
        cr_assert_null(json_object_get(pn, "Ideographic"));
    if (p)
        cr_assert_str_eq(json_string_value(json_object_get(pn, "Phonetic")), p);
    else
        cr_assert_null(json_object_get(pn, "Phonetic"));
}

Test(dicom_json, pn_three_groups_japanese)
{
    dcm_ds *ds = parse_file("charset_files/chrH31.dcm", NULL);
    json_t *j = to_json(ds, NULL);
    pn_eq(j, "Yamada^Tarou", "山田^太郎", "やまだ^たろう");
    cr_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(j, "00080005"), "Value"), 0)),
                     "ISO_IR 192");
    json_decref(j);
    dcm_ds_free(ds);
}

Test(dicom_json, gb18030)
{
    dcm_ds *ds = parse_file("charset_files/chrX2.dcm", NULL);
    json_t *j = to_json(ds, NULL);
    pn_eq(j, "Wang^XiaoDong", "王^小东", NULL);
    json_decref(j);
    dcm_ds_free(ds);
}

/* An item with its own (0008,0005) overrides the dataset's. */
Test(dicom_json, sequence_item_charset)
{
    dcm_ds *a = parse_file("charset_files/chrSQEncoding.dcm", NULL);
    dcm_ds *b = parse_file("charset_files/chrSQEncoding1.dcm", NULL);
    json_t *ja = to_json(a, NULL), *jb = to_json(b, NULL);
    const char *key;
    json_t *v;
    json_object_foreach(ja, key, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "vr")), "SQ"))
            continue;
        json_t *ia = json_array_get(json_object_get(v, "Value"), 0);
        json_t *ib = json_array_get(json_object_get(json_object_get(jb, key), "Value"), 0);
        json_t *pa = json_object_get(ia, "00100010"), *pb = json_object_get(ib, "00100010");
        cr_assert_not_null(pa);
        cr_assert(json_equal(json_object_get(pa, "Value"), json_object_get(pb, "Value")));
        const json_t *pn = json_array_get(json_object_get(pa, "Value"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(pn, "Ideographic")), "山田^太郎");
        cr_assert_str_eq(json_string_value(json_object_get(pn, "Alphabetic")), "ﾔﾏﾀﾞ^ﾀﾛｳ");
    }
    json_decref(ja);
    json_decref(jb);
    dcm_ds_free(a);
    dcm_ds_free(b);
}

static const char *bulk(void *ud, const dcm_elem *e, unsigned depth)
{
    (*(int *)ud)++;
    return e->tag == DCM_TAG_PIXEL_DATA && depth == 0 ? "https://h/pixels" : NULL;
}

Test(dicom_json, bulk_data_uri)
{
    dcm_ds *ds = parse_file("test_files/CT_small.dcm", NULL);
    int calls = 0;
    dcm_json_opts o = {bulk, &calls};
    json_t *j = to_json(ds, &o);
    json_t *px = json_object_get(j, "7FE00010");
    cr_assert_str_eq(json_string_value(json_object_get(px, "BulkDataURI")), "https://h/pixels");
    cr_assert_null(json_object_get(px, "InlineBinary"));
    cr_assert_gt(calls, 1);
    cr_assert_not_null(json_object_get(json_object_get(j, "00431028"), "InlineBinary"));
    dcm_ds *back = NULL;
    cr_assert_eq(dcm_json_to_ds(j, &back), HR_EUNSUP);
    cr_assert_null(back);
    json_decref(j);
    dcm_ds_free(ds);
}

/* dataset -> JSON -> dataset -> JSON is stable, and the values survive. */
Test(dicom_json, json_round_trip)
{
    static const char *const files[] = {
        "test_files/CT_small.dcm",  "test_files/rtplan.dcm",   "test_files/MR_small_bigendian.dcm",
        "charset_files/chrH31.dcm", "charset_files/chrX2.dcm", "charset_files/chrSQEncoding.dcm"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        dcm_ds *ds = parse_file(files[i], NULL), *back = NULL;
        json_t *j1 = to_json(ds, NULL);
        int rc = dcm_json_to_ds(j1, &back);
        cr_assert_eq(rc, 0, "%s: %s", files[i], hr_strerror(rc));
        json_t *j2 = to_json(back, NULL);
        char *a = json_dumps(j1, JSON_SORT_KEYS | JSON_COMPACT);
        char *b = json_dumps(j2, JSON_SORT_KEYS | JSON_COMPACT);
        cr_assert_str_eq(a, b, "%s", files[i]);
        free(a);
        free(b);
        /* the rebuilt dataset encodes in every syntax */
        static const char *const ts[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE,
                                         DCM_TS_EXPLICIT_BE};
        for (size_t t = 0; t < 3; t++) {
            hr_buf hb;
            hr_buf_init(&hb, 8u << 20);
            cr_assert_eq(dcm_ds_encode(back, ts[t], &hb), 0);
            hr_buf_free(&hb);
        }
        json_decref(j1);
        json_decref(j2);
        dcm_ds_free(back);
        dcm_ds_free(ds);
    }
}

static dcm_ds *from_text(const char *text, int want)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "%s", err.text);
    dcm_ds *ds = NULL;
    int rc = dcm_json_to_ds(j, &ds);
    cr_assert_eq(rc, want, "%s: %s", text, hr_err_name(rc));
    json_decref(j);
    return ds;
}

static void str_eq(const dcm_ds *ds, uint32_t tag, const char *want)
{
    char got[256];
    cr_assert_eq(dcm_ds_get_string(ds, tag, got, sizeof(got)), 0);
    cr_assert_str_eq(got, want);
}

Test(dicom_json, json_to_ds_values)
{
    dcm_ds *ds =
        from_text("{\"00100010\": {\"vr\": \"PN\", \"Value\": [{\"Alphabetic\": \"Wang^XiaoDong\", "
                  "\"Ideographic\": \"王^小东\"}, null, {\"Phonetic\": \"p\"}]},"
                  "\"00080061\": {\"vr\": \"CS\", \"Value\": [\"CT\", null, \"MR\"]},"
                  "\"00080020\": {\"vr\": \"DA\"},"
                  "\"00201208\": {\"vr\": \"IS\", \"Value\": [42, \"7\"]},"
                  "\"00180050\": {\"vr\": \"DS\", \"Value\": [0.1, 3, 0.3333333333333333, 1e300]},"
                  "\"00280010\": {\"vr\": \"US\", \"Value\": [512, 1]},"
                  "\"00280120\": {\"vr\": \"SS\", \"Value\": [-2000]},"
                  "\"00271041\": {\"vr\": \"FL\", \"Value\": [-77.5, \"NaN\"]},"
                  "\"00209165\": {\"vr\": \"AT\", \"Value\": [\"0020000D\"]},"
                  "\"00431028\": {\"vr\": \"OB\", \"InlineBinary\": \"AQID\"},"
                  "\"00431029\": {\"vr\": \"OB\", \"InlineBinary\": \"AQ==\"},"
                  "\"00081199\": {\"vr\": \"SQ\", \"Value\": [{\"00081155\": {\"vr\": \"UI\", "
                  "\"Value\": [\"1.2.3\"]}}, {}]},"
                  "\"00081198\": {\"vr\": \"SQ\"}}",
                  0);
    str_eq(ds, 0x00100010, "Wang^XiaoDong=王^小东\\\\==p");
    str_eq(ds, 0x00080005, "ISO_IR 192"); /* added: non-ASCII text */
    str_eq(ds, 0x00080061, "CT\\\\MR");
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00080020)));
    str_eq(ds, 0x00201208, "42\\7");
    str_eq(ds, 0x00180050, "0.1\\3\\0.33333333333333\\1e+300");
    const dcm_elem *e = dcm_ds_find(ds, 0x00280010);
    cr_assert_eq(e->len, 4);
    cr_assert(!memcmp(e->value, "\x00\x02\x01\x00", 4));
    double d;
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00280120), 0, &d), 0);
    cr_assert_eq(d, -2000);
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00271041), 0, &d), 0);
    cr_assert_eq(d, -77.5);
    cr_assert_eq(dcm_elem_number(dcm_ds_find(ds, 0x00271041), 1, &d), 0);
    cr_assert(isnan(d));
    e = dcm_ds_find(ds, 0x00209165);
    cr_assert(!memcmp(e->value, "\x20\x00\x0d\x00", 4));
    e = dcm_ds_find(ds, 0x00431028);
    cr_assert_eq(e->len, 4); /* 3 bytes padded */
    cr_assert(!memcmp(e->value, "\x01\x02\x03\x00", 4));
    cr_assert_eq(dcm_ds_find(ds, 0x00431029)->len, 2);
    e = dcm_ds_find(ds, 0x00081199);
    cr_assert_eq(e->n_items, 2);
    str_eq(e->items[0], 0x00081155, "1.2.3");
    cr_assert_eq(dcm_ds_count(e->items[1]), 0);
    cr_assert(dcm_elem_empty(dcm_ds_find(ds, 0x00081198)));
    /* back to JSON: same PN groups */
    json_t *j = to_json(ds, NULL);
    json_t *pn = json_object_get(json_object_get(j, "00100010"), "Value");
    cr_assert_eq(json_array_size(pn), 3);
    cr_assert(json_is_null(json_array_get(pn, 1)));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(pn, 0), "Ideographic")),
                     "王^小东");
    json_decref(j);
    dcm_ds_free(ds);

    /* no non-ASCII text: no (0008,0005) added; an existing one becomes ISO_IR 192 */
    ds = from_text("{\"00100020\": {\"vr\": \"LO\", \"Value\": [\"A\"]}}", 0);
    cr_assert_null(dcm_ds_find(ds, 0x00080005));
    dcm_ds_free(ds);
    ds = from_text("{\"00080005\": {\"vr\": \"CS\", \"Value\": [\"ISO_IR 100\"]}}", 0);
    str_eq(ds, 0x00080005, "ISO_IR 192");
    dcm_ds_free(ds);
}

Test(dicom_json, json_to_ds_errors)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"[]", HR_EPARSE},
        {"{\"0010001\": {\"vr\": \"PN\"}}", HR_EPARSE},
        {"{\"0010001G\": {\"vr\": \"PN\"}}", HR_EPARSE},
        {"{\"00100010\": {\"vr\": \"XX\"}}", HR_EPARSE},
        {"{\"00100010\": {}}", HR_EPARSE},
        {"{\"00100010\": 5}", HR_EPARSE},
        {"{\"FFFEE000\": {\"vr\": \"CS\"}}", HR_EPARSE},
        {"{\"00100010\": {\"vr\": \"PN\", \"Value\": [5]}}", HR_EPARSE},
        {"{\"00100010\": {\"vr\": \"PN\", \"Value\": [{\"Foo\": \"x\"}]}}", HR_EPARSE},
        {"{\"00080060\": {\"vr\": \"CS\", \"Value\": [\"A\\\\B\"]}}", HR_EPARSE},
        {"{\"00080060\": {\"vr\": \"CS\", \"Value\": \"CT\"}}", HR_EPARSE},
        {"{\"00080060\": {\"vr\": \"CS\", \"Value\": [1]}}", HR_EPARSE},
        {"{\"00280010\": {\"vr\": \"US\", \"Value\": [65536]}}", HR_EPARSE},
        {"{\"00280010\": {\"vr\": \"US\", \"Value\": [-1]}}", HR_EPARSE},
        {"{\"00280010\": {\"vr\": \"US\", \"Value\": [1.5]}}", HR_EPARSE},
        {"{\"00280120\": {\"vr\": \"SS\", \"Value\": [32768]}}", HR_EPARSE},
        {"{\"00280010\": {\"vr\": \"US\", \"Value\": [\"1\"]}}", HR_EPARSE},
        {"{\"00209165\": {\"vr\": \"AT\", \"Value\": [\"0020\"]}}", HR_EPARSE},
        {"{\"00431028\": {\"vr\": \"OB\", \"InlineBinary\": \"AQI\"}}", HR_EPARSE},
        {"{\"00431028\": {\"vr\": \"OB\", \"InlineBinary\": \"A=ID\"}}", HR_EPARSE},
        {"{\"00431028\": {\"vr\": \"OB\", \"InlineBinary\": \"AQ\\nD\"}}", HR_EPARSE},
        {"{\"00431028\": {\"vr\": \"OB\", \"Value\": [1]}}", HR_EPARSE},
        {"{\"00100010\": {\"vr\": \"PN\", \"InlineBinary\": \"AQID\"}}", HR_EPARSE},
        {"{\"7FE00010\": {\"vr\": \"OW\", \"BulkDataURI\": \"http://x\"}}", HR_EUNSUP},
        {"{\"00081199\": {\"vr\": \"SQ\", \"Value\": [5]}}", HR_EPARSE},
        {"{\"00081199\": {\"vr\": \"SQ\", \"Value\": {}}}", HR_EPARSE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dcm_ds *ds = from_text(cases[i].text, cases[i].rc);
        cr_assert_null(ds);
    }
    /* nesting beyond DCM_DS_MAX_DEPTH */
    char buf[2048] = "";
    for (int i = 0; i < DCM_DS_MAX_DEPTH + 1; i++)
        strcat(buf, "{\"00081199\": {\"vr\": \"SQ\", \"Value\": [");
    strcat(buf, "{}");
    for (int i = 0; i < DCM_DS_MAX_DEPTH + 1; i++)
        strcat(buf, "]}}");
    cr_assert_null(from_text(buf, HR_ETOOBIG));
}

/* Values DCMTK would not produce: invalid numbers fall back to strings,
 * big UV to strings, non-finite floats to strings; an empty PN has no Value. */
Test(dicom_json, edge_values)
{
    dcm_ds *ds = dcm_ds_new();
    cr_assert_eq(dcm_ds_put_string(ds, 0x00180050, "DS", "1.5\\abc\\\\1e999"), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00200013, "IS", "12\\99999999999999999999"), 0);
    uint8_t uv[8];
    memset(uv, 0xff, 8);
    cr_assert_eq(dcm_ds_put_bytes(ds, 0x00720000 | 0x82, "UV", uv, 8), 0);
    double inf = INFINITY;
    cr_assert_eq(dcm_ds_put_bytes(ds, 0x00189087, "FD", &inf, 8), 0);
    cr_assert_eq(dcm_ds_put_string(ds, 0x00100010, "PN", "=="), 0);
    json_t *j = to_json(ds, NULL);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(s, "{\"00100010\":{\"vr\":\"PN\"},"
                        "\"00180050\":{\"Value\":[1.5,\"abc\",null,\"1e999\"],\"vr\":\"DS\"},"
                        "\"00189087\":{\"Value\":[\"Infinity\"],\"vr\":\"FD\"},"
                        "\"00200013\":{\"Value\":[12,\"99999999999999999999\"],\"vr\":\"IS\"},"
                        "\"00720082\":{\"Value\":[\"18446744073709551615\"],\"vr\":\"UV\"}}");
    free(s);
    dcm_ds *back = NULL;
    cr_assert_eq(dcm_json_to_ds(j, &back), 0);
    const dcm_elem *e = dcm_ds_find(back, 0x00720082);
    cr_assert(!memcmp(e->value, uv, 8));
    dcm_ds_free(back);
    json_decref(j);
    dcm_ds_free(ds);
}
