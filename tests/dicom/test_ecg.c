/* dicom/ecg.c: waveforms decoded against pydicom's waveform_array() (values
 * printed at test time by tests/tools/ecg_fixture.py dump) and against the
 * raw Waveform Data DCMTK's dcmdump prints; generated 12-lead ECGs (16-bit
 * and 8-bit groups, explicit and implicit VR); malformed objects. */
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/ecg.h"
#include "dicom/p10.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYDICOM_ECG "/usr/lib/python3/dist-packages/pydicom/data/test_files/waveform_ecg.dcm"
#define PYDICOM_CT  "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm"

static char *run(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0, r;

    cr_assert(p, "popen %s", cmd);
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            buf = realloc(buf, cap + 1);
            cr_assert(buf);
        }
        r = fread(buf + n, 1, cap - n, p);
        if (r == 0)
            break;
        n += r;
    }
    buf[n] = '\0';
    cr_assert_eq(pclose(p), 0, "command failed: %s", cmd);
    if (len)
        *len = n;
    return buf;
}

static const char *fixture_py(void)
{
    static char path[1024];
    const char *src = getenv("HUREN_SOURCE_DIR");

    snprintf(path, sizeof path, "%s/tests/tools/ecg_fixture.py", src ? src : ".");
    return path;
}

static json_t *pydicom_dump(const char *file)
{
    char cmd[2048];
    json_error_t je;
    json_t *j;
    char *out;

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s dump '%s'", fixture_py(), file);
    out = run(cmd, NULL);
    j = json_loads(out, 0, &je);
    cr_assert(j, "pydicom dump is not JSON: %s", je.text);
    free(out);
    return j;
}

static json_t *decode_json(const char *file, dcm_ecg **keep)
{
    size_t n;
    unsigned char *p = ts_read_file(file, &n);
    dcm_ecg *e = NULL;
    char err[256];
    hr_buf b;
    json_error_t je;
    json_t *j;
    int rc;

    cr_assert(p, "read %s", file);
    rc = dcm_ecg_decode(p, n, &e, err, sizeof err);
    free(p);
    cr_assert_eq(rc, 0, "decode %s: %s (%s)", file, hr_strerror(rc), err);
    hr_buf_init(&b, (size_t)1 << 30);
    cr_assert_eq(dcm_ecg_to_json(e, &b), 0);
    j = json_loadb((const char *)b.data, b.len, 0, &je);
    cr_assert(j, "our JSON does not parse: %s", je.text);
    hr_buf_free(&b);
    if (keep)
        *keep = e;
    else
        dcm_ecg_free(e);
    return j;
}

/* Every group, channel and sample equal to pydicom's (within the 0.1 uV
 * rounding: python rounds half to even, we half away from zero). */
static void expect_same_as_pydicom(const json_t *ours, const json_t *py)
{
    const json_t *og = json_object_get(ours, "groups"), *pg = json_object_get(py, "groups");
    size_t gi, c, s, compared = 0;

    cr_assert_eq(json_array_size(og), json_array_size(pg));
    cr_assert_gt(json_array_size(pg), 0);
    for (gi = 0; gi < json_array_size(pg); gi++) {
        const json_t *a = json_array_get(og, gi), *b = json_array_get(pg, gi);
        const json_t *ac = json_object_get(a, "channels"), *bc = json_object_get(b, "channels");
        cr_assert_str_eq(json_string_value(json_object_get(a, "label")),
                         json_string_value(json_object_get(b, "label")));
        cr_assert_float_eq(json_number_value(json_object_get(a, "sampling_frequency")),
                           json_number_value(json_object_get(b, "sampling_frequency")), 1e-9);
        cr_assert_eq(json_integer_value(json_object_get(a, "samples")),
                     json_integer_value(json_object_get(b, "samples")));
        cr_assert_eq(json_array_size(ac), json_array_size(bc));
        for (c = 0; c < json_array_size(bc); c++) {
            const json_t *x = json_array_get(ac, c), *y = json_array_get(bc, c);
            const json_t *xd = json_object_get(x, "data"), *yd = json_object_get(y, "data");
            const json_t *code = json_object_get(x, "code");
            cr_assert_str_eq(json_string_value(json_object_get(code, "value")),
                             json_string_value(json_object_get(y, "code")));
            cr_assert_str_eq(json_string_value(json_object_get(code, "scheme")),
                             json_string_value(json_object_get(y, "scheme")));
            cr_assert_str_eq(json_string_value(json_object_get(x, "units")), "uV");
            cr_assert_eq(json_array_size(xd), json_array_size(yd));
            for (s = 0; s < json_array_size(yd); s++) {
                double u = json_number_value(json_array_get(xd, s));
                double v = json_number_value(json_array_get(yd, s));
                cr_assert(fabs(u - v) <= 0.1 + 1e-6, "group %zu channel %zu sample %zu: %g vs %g",
                          gi, c, s, u, v);
                compared++;
            }
        }
    }
    cr_assert_gt(compared, 1000);
    /* measurements and interpretation */
    og = json_object_get(ours, "measurements");
    pg = json_object_get(py, "measurements");
    cr_assert_eq(json_array_size(og), json_array_size(pg));
    for (gi = 0; gi < json_array_size(pg); gi++) {
        const json_t *a = json_array_get(og, gi), *b = json_array_get(pg, gi);
        cr_assert_str_eq(json_string_value(json_object_get(a, "name")),
                         json_string_value(json_object_get(b, "name")));
        cr_assert_str_eq(json_string_value(json_object_get(a, "unit")),
                         json_string_value(json_object_get(b, "unit")));
        cr_assert_float_eq(json_number_value(json_object_get(a, "value")),
                           json_number_value(json_object_get(b, "value")), 0.051);
    }
    og = json_object_get(ours, "interpretation");
    pg = json_object_get(py, "interpretation");
    cr_assert_eq(json_array_size(og), json_array_size(pg));
    for (gi = 0; gi < json_array_size(pg); gi++)
        cr_assert_str_eq(json_string_value(json_array_get(og, gi)),
                         json_string_value(json_array_get(pg, gi)));
}

static void expect_leads(const json_t *ours, size_t group)
{
    static const char *const k[] = {"I",  "II", "III", "aVR", "aVL", "aVF",
                                    "V1", "V2", "V3",  "V4",  "V5",  "V6"};
    const json_t *ch =
        json_object_get(json_array_get(json_object_get(ours, "groups"), group), "channels");
    cr_assert_eq(json_array_size(ch), 12);
    for (size_t i = 0; i < 12; i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ch, i), "lead")), k[i]);
}

Test(ecg, pydicom_waveform_ecg_equals_pydicom)
{
    json_t *ours = decode_json(PYDICOM_ECG, NULL), *py = pydicom_dump(PYDICOM_ECG);

    expect_same_as_pydicom(ours, py);
    expect_leads(ours, 0);
    expect_leads(ours, 1);
    cr_assert_str_eq(json_string_value(json_object_get(ours, "sop_class")), DCM_ECG_UID_12LEAD);
    cr_assert_str_eq(json_string_value(json_object_get(ours, "acquired")), "2013-01-25T10:59:19");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ours, "patient"), "birth_date")),
        "19710123");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ours, "patient"), "name")),
                     "Anonymous");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(ours, "interpretation"), 0)),
                     "RITMO SINUSALE");
    json_decref(ours);
    json_decref(py);
}

/* DCMTK reads the same raw samples: dcmdump +L prints every word of the
 * first (5400,1010); channel c sample s of group 1 is word s*12+c, times the
 * sensitivity (correction 1, baseline 0 in these files). */
static void expect_same_as_dcmdump(const char *file, double sens)
{
    dcm_ecg *e = NULL;
    json_t *ours = decode_json(file, &e);
    char cmd[1024], *dump, *p;
    size_t w = 0;

    snprintf(cmd, sizeof cmd, "dcmdump +L +P 5400,1010 '%s'", file);
    dump = run(cmd, NULL);
    p = strstr(dump, "OW ");
    cr_assert(p);
    p += 3;
    cr_assert_eq(e->groups[0].n_channels, 12);
    while (*p && *p != ' ' && *p != '\n') {
        unsigned v;
        cr_assert_eq(sscanf(p, "%4x", &v), 1);
        size_t s = w / 12, c = w % 12;
        cr_assert_lt(s, e->groups[0].n_samples);
        cr_assert_float_eq(e->groups[0].ch[c].data[s], (double)(int16_t)v * sens, 1e-9, "word %zu",
                           w);
        w++;
        p += 4;
        if (*p == '\\')
            p++;
    }
    cr_assert_eq(w, (size_t)e->groups[0].n_samples * 12);
    free(dump);
    dcm_ecg_free(e);
    json_decref(ours);
}

Test(ecg, pydicom_waveform_ecg_equals_dcmtk_raw_words)
{
    expect_same_as_dcmdump(PYDICOM_ECG, 1.25);
}

static void gen(const char *path, const char *opts)
{
    char cmd[2048];

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s gen '%s' %s", fixture_py(), path, opts);
    free(run(cmd, NULL));
}

static void check_generated(const char *opts)
{
    char dir[256], path[512];
    json_t *ours, *py;
    const json_t *g, *pat;

    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(path, sizeof path, "%s/gen.dcm", dir);
    gen(path, opts);
    ours = decode_json(path, NULL);
    py = pydicom_dump(path);
    expect_same_as_pydicom(ours, py);
    expect_leads(ours, 0);
    expect_leads(ours, 1);
    g = json_object_get(ours, "groups");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(g, 0), "bits")), 16);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(g, 1), "bits")), 8);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(g, 0), "samples")), 5000);
    cr_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(g, 0), "channels"), 1),
                            "code"),
            "value")),
        "2:2");
    pat = json_object_get(ours, "patient");
    cr_assert_str_eq(json_string_value(json_object_get(pat, "name")), "王芳");
    cr_assert_str_eq(json_string_value(json_object_get(pat, "sex")), "F");
    cr_assert_str_eq(json_string_value(json_object_get(ours, "acquired")), "2026-12-03T10:15:12");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(ours, "interpretation"), 1)),
                     "窦性心律 正常心电图");
    /* the R wave of lead II is about 1.2 mV in both groups (mV group converted to uV) */
    for (size_t gi = 0; gi < 2; gi++) {
        const json_t *d = json_object_get(
            json_array_get(json_object_get(json_array_get(g, gi), "channels"), 1), "data");
        double mx = -1e9;
        for (size_t s = 0; s < json_array_size(d); s++)
            mx = fmax(mx, json_number_value(json_array_get(d, s)));
        cr_assert(mx > 1100 && mx < 1400, "group %zu lead II max %g uV", gi, mx);
    }
    json_decref(ours);
    json_decref(py);
    ts_rmrf(dir);
}

Test(ecg, generated_explicit_vr_two_groups_8_and_16_bit)
{
    check_generated("");
}

Test(ecg, generated_implicit_vr_two_groups_8_and_16_bit)
{
    check_generated("--implicit");
}

/* huren-gen's ECG (the fixture other tests store) reads as pydicom reads it
 * in implicit and explicit VR LE, and as DCMTK reads it in explicit VR BE
 * (pydicom 2.3 reads big-endian Waveform Data as little-endian). */
Test(ecg, huren_gen_ecg_equals_pydicom_and_dcmtk)
{
    static const char *const k_ts[] = {"explicit", "implicit", "bigendian"};
    const char *bd = getenv("HUREN_BUILD_DIR");
    char dir[256], cmd[1024], path[512];

    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(ts_tmpdir(dir), 0);
        snprintf(cmd, sizeof cmd, "'%s/huren-gen' --out '%s' --modality ECG --ts %s --seed %zu",
                 bd ? bd : ".", dir, k_ts[i], i + 7);
        free(run(cmd, NULL));
        snprintf(path, sizeof path, "%s/s1_se1_i1.dcm", dir);
        json_t *ours = decode_json(path, NULL);
        expect_leads(ours, 0);
        if (i < 2) {
            json_t *py = pydicom_dump(path);
            expect_same_as_pydicom(ours, py);
            json_decref(py);
        }
        expect_same_as_dcmdump(path, 2.5);
        json_decref(ours);
        ts_rmrf(dir);
    }
}

Test(ecg, lead_names)
{
    cr_assert_str_eq(dcm_ecg_lead_name("MDC", "2:1"), "I");
    cr_assert_str_eq(dcm_ecg_lead_name("MDC", "2:61"), "III");
    cr_assert_str_eq(dcm_ecg_lead_name("MDC", "2:64"), "aVF");
    cr_assert_str_eq(dcm_ecg_lead_name("MDC", "2:8"), "V6");
    cr_assert_str_eq(dcm_ecg_lead_name("MDC", "131073"), "I");
    cr_assert_str_eq(dcm_ecg_lead_name("SCPECG", "5.6.3-9-62"), "aVR");
    cr_assert_str_eq(dcm_ecg_lead_name("SCPECG", "5.6.3-9-3"), "V1");
    cr_assert_null(dcm_ecg_lead_name("SCPECG", "5.6.3-9-9"));
    cr_assert_null(dcm_ecg_lead_name("MDC", "2:"));
    cr_assert_null(dcm_ecg_lead_name("MDC", "2:1x"));
    cr_assert_null(dcm_ecg_lead_name("LN", "2:1"));
}

/* ---- malformed ---------------------------------------------------------- */

Test(ecg, every_truncation_is_an_error_not_a_crash)
{
    size_t n, cut;
    unsigned char *p = ts_read_file(PYDICOM_ECG, &n);
    dcm_ecg *e;
    char err[256];

    cr_assert(p);
    for (cut = 0; cut < n; cut += (cut < 4096 ? 7 : 997)) {
        unsigned char *q = malloc(cut ? cut : 1);
        memcpy(q, p, cut);
        int rc = dcm_ecg_decode(q, cut, &e, err, sizeof err);
        cr_assert_neq(rc, 0, "cut at %zu decoded", cut);
        cr_assert_null(e);
        cr_assert_neq(err[0], '\0');
        free(q);
    }
    free(p);
}

Test(ecg, not_a_waveform)
{
    size_t n;
    unsigned char *p = ts_read_file(PYDICOM_CT, &n);
    dcm_ecg *e;
    char err[256];

    cr_assert(p);
    cr_assert_eq(dcm_ecg_decode(p, n, &e, err, sizeof err), HR_ENOTFOUND);
    cr_assert_null(e);
    cr_assert_eq(dcm_ecg_decode((const uint8_t *)"garbage", 7, &e, err, sizeof err), HR_ETRUNC);
    free(p);
}

/* Parses the pydicom ECG into a dcm_ds to alter it. */
static dcm_ds *ecg_ds(void)
{
    size_t n;
    unsigned char *p = ts_read_file(PYDICOM_ECG, &n);
    dcm_p10_info info;
    dcm_ds *ds = NULL;

    cr_assert(p);
    cr_assert_eq(dcm_p10_read_meta(p, n, &info), 0);
    cr_assert_eq(dcm_ds_parse(p + info.dataset_offset, n - info.dataset_offset, info.ts,
                              DCM_ECG_MAX_INPUT, &ds),
                 0);
    free(p);
    return ds;
}

static dcm_ds *group_of(dcm_ds *ds, size_t i)
{
    const dcm_elem *wf = dcm_ds_find(ds, 0x54000100u);
    cr_assert(wf && wf->n_items > i);
    return wf->items[i];
}

static int decode_altered(dcm_ds *ds)
{
    dcm_ecg *e = NULL;
    char err[256];
    int rc = dcm_ecg_decode_ds(ds, &e, err, sizeof err);

    if (rc == 0)
        dcm_ecg_free(e);
    else
        cr_assert_neq(err[0], '\0');
    dcm_ds_free(ds);
    return rc;
}

Test(ecg, lying_lengths_and_values)
{
    dcm_ds *ds;

    /* more samples than the data holds */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u32(group_of(ds, 0), 0x003A0010u, 10001), 0);
    cr_assert_eq(decode_altered(ds), HR_ETRUNC);
    /* more channels than the data and definitions */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u16(group_of(ds, 1), 0x003A0005u, 13), 0);
    cr_assert_eq(decode_altered(ds), HR_EMISMATCH);
    /* above the channel bound */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u16(group_of(ds, 0), 0x003A0005u, 65), 0);
    cr_assert_eq(decode_altered(ds), HR_ETOOBIG);
    /* zero channels, zero samples */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u16(group_of(ds, 0), 0x003A0005u, 0), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u32(group_of(ds, 0), 0x003A0010u, 0), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    /* samples x channels above the budget */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u32(group_of(ds, 0), 0x003A0010u, 0xFFFFFFF0u), 0);
    cr_assert_eq(decode_altered(ds), HR_ETOOBIG);
    /* 12-bit, mu-law, 8-bit data with 16-bit interpretation */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u16(group_of(ds, 0), 0x54001004u, 12), 0);
    cr_assert_eq(decode_altered(ds), HR_EUNSUP);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_string(group_of(ds, 0), 0x54001006u, "CS", "MB"), 0);
    cr_assert_eq(decode_altered(ds), HR_EUNSUP);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_u16(group_of(ds, 0), 0x54001004u, 8), 0);
    cr_assert_eq(decode_altered(ds), HR_EMISMATCH);
    /* sampling frequency not a number, zero */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_string(group_of(ds, 0), 0x003A001Au, "DS", "abc"), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_remove(group_of(ds, 0), 0x003A001Au), 0);
    cr_assert_eq(decode_altered(ds), HR_EMISSING);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_put_string(group_of(ds, 0), 0x003A001Au, "DS", "0"), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    /* no data, no definitions */
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_remove(group_of(ds, 1), 0x54001010u), 0);
    cr_assert_eq(decode_altered(ds), HR_EMISSING);
    ds = ecg_ds();
    cr_assert_eq(dcm_ds_remove(group_of(ds, 1), 0x003A0200u), 0);
    cr_assert_eq(decode_altered(ds), HR_EMISSING);
    /* a sensitivity of zero or text */
    ds = ecg_ds();
    {
        const dcm_elem *defs = dcm_ds_find(group_of(ds, 0), 0x003A0200u);
        cr_assert_eq(dcm_ds_put_string(defs->items[3], 0x003A0210u, "DS", "x1"), 0);
    }
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    /* unaltered decodes */
    cr_assert_eq(decode_altered(ecg_ds()), 0);
}

Test(ecg, json_is_bounded_by_the_buffer_cap)
{
    dcm_ecg *e = NULL;
    json_t *j = decode_json(PYDICOM_ECG, &e);
    hr_buf b;

    hr_buf_init(&b, 4096);
    cr_assert_eq(dcm_ecg_to_json(e, &b), HR_ETOOBIG);
    cr_assert_eq(b.len, 0);
    hr_buf_free(&b);
    dcm_ecg_free(e);
    json_decref(j);
}

/* The JSON of e parsed back (cr_assert when it is not JSON). */
static json_t *json_of(const dcm_ecg *e)
{
    hr_buf b;
    json_error_t je;
    json_t *j;

    hr_buf_init(&b, (size_t)1 << 30);
    cr_assert_eq(dcm_ecg_to_json(e, &b), 0);
    j = json_loadb((const char *)b.data, b.len, 0, &je);
    cr_assert(j, "our JSON does not parse: %s (%.*s)", je.text, (int)(b.len < 200 ? b.len : 200),
              (const char *)b.data);
    hr_buf_free(&b);
    return j;
}

/* Samples and measurements of any finite magnitude (a sensitivity or a
 * Numeric Value such as 1E+300 is a valid DS) are written as JSON numbers
 * of their value: the writer of huge values once returned snprintf's
 * would-be length (311 for 1e300) and copied stack bytes past its buffer. */
Test(ecg, json_numbers_of_any_magnitude)
{
    static const double k_v[] = {
        1e300, -1e300, 1.7976931348623157e308, 1e15, -1e15, 123456789012345678.0, -0.0, -0.04, 0.05,
        -0.05, 4.95e14};
    size_t nv = sizeof k_v / sizeof k_v[0];
    dcm_ecg *e = NULL;
    json_t *j = decode_json(PYDICOM_ECG, &e), *data, *meas;

    json_decref(j);
    cr_assert(e->n_groups > 0 && e->groups[0].n_samples >= nv && e->n_meas > 0);
    for (size_t i = 0; i < nv; i++)
        e->groups[0].ch[0].data[i] = k_v[i];
    e->meas[0].value = 1e300;
    j = json_of(e);
    data = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(j, "groups"), 0), "channels"),
                       0),
        "data");
    cr_assert(json_is_array(data));
    for (size_t i = 0; i < nv; i++) {
        json_t *x = json_array_get(data, i);
        double want = round(k_v[i] * 10.0) / 10.0, got;
        cr_assert(json_is_number(x), "sample %zu (%g) is not a number", i, k_v[i]);
        got = json_number_value(x);
        if (fabs(k_v[i]) >= 1e15)
            cr_assert(fabs(got - k_v[i]) <= fabs(k_v[i]) * 1e-15, "sample %zu: %.17g for %.17g", i,
                      got, k_v[i]);
        else
            cr_assert(fabs(got - want) < 1e-9, "sample %zu: %.17g for %.17g", i, got, want);
    }
    meas = json_object_get(json_array_get(json_object_get(j, "measurements"), 0), "value");
    cr_assert(json_is_number(meas));
    cr_assert(fabs(json_number_value(meas) - 1e300) <= 1e285);
    json_decref(j);
    dcm_ecg_free(e);
}

/* A channel whose sensitivity x correction x baseline overflows a double has
 * no sample value: refused (422 by the API), not written as null samples
 * that a viewer would draw as a flat line. */
Test(ecg, overflowing_scale_is_refused)
{
    dcm_ds *ds;
    const dcm_elem *defs;

    ds = ecg_ds();
    defs = dcm_ds_find(group_of(ds, 0), 0x003A0200u);
    cr_assert_eq(dcm_ds_put_string(defs->items[0], 0x003A0210u, "DS", "1E+200"), 0);
    cr_assert_eq(dcm_ds_put_string(defs->items[0], 0x003A0212u, "DS", "1E+200"), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    ds = ecg_ds();
    defs = dcm_ds_find(group_of(ds, 0), 0x003A0200u);
    cr_assert_eq(dcm_ds_put_string(defs->items[1], 0x003A0210u, "DS", "1E+300"), 0);
    cr_assert_eq(dcm_ds_put_string(defs->items[1], 0x003A0213u, "DS", "1E+300"), 0);
    cr_assert_eq(decode_altered(ds), HR_EPARSE);
    /* large but finite: decoded */
    ds = ecg_ds();
    defs = dcm_ds_find(group_of(ds, 0), 0x003A0200u);
    cr_assert_eq(dcm_ds_put_string(defs->items[0], 0x003A0210u, "DS", "1E+200"), 0);
    cr_assert_eq(decode_altered(ds), 0);
}
