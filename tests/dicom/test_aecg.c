/* dicom/aecg.c and dcm_shim_ecg_encode: the sample aECG document
 * (tests/dicom/data/aecg_12lead.xml, written by make_aecg.py), its digits
 * cross-checked against the raw text, the DICOM object read back by DCMTK,
 * and hostile documents (malformed, entity expansion, external entities,
 * wrong namespace, missing or mismatched digits, bounds). */
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/aecg.h"
#include "dicom/dcm_attrs.h"
#include "dicom/dcmtk_shim.h"
#include "dicom/p10.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *sample(size_t *len)
{
    char path[1024];
    const char *src = getenv("HUREN_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/tests/dicom/data/aecg_12lead.xml", src ? src : ".");
    unsigned char *p = ts_read_file(path, len);
    cr_assert_not_null(p, "cannot read %s", path);
    return p;
}

static int parse_str(const char *xml, dcm_aecg **e, char *why, size_t cap)
{
    return dcm_aecg_parse((const uint8_t *)xml, strlen(xml), e, why, cap);
}

/* The digits of lead code as the raw text holds them (sscanf, not libxml2). */
static size_t raw_digits(const char *doc, const char *code, long *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "code=\"%s\"", code);
    const char *p = strstr(doc, key);
    cr_assert_not_null(p, "%s", code);
    p = strstr(p, "<digits>");
    cr_assert_not_null(p);
    p += strlen("<digits>");
    size_t n = 0;
    int used;
    while (n < cap && sscanf(p, "%ld%n", &out[n], &used) == 1) {
        p += used;
        n++;
    }
    return n;
}

Test(aecg, sample_document)
{
    size_t len;
    unsigned char *doc = sample(&len);
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    int rc = dcm_aecg_parse(doc, len, &e, why, sizeof(why));
    cr_assert_eq(rc, 0, "%s: %s", hr_strerror(rc), why);
    cr_assert_str_eq(e->id, "2.16.840.1.113883.3.1234.7^TWN-CART-0001");
    cr_assert_str_eq(e->acquired, "20261203083015");
    cr_assert_str_eq(e->patient_id, "P-000123");
    cr_assert_str_eq(e->patient_name, "张^三");
    cr_assert_str_eq(e->birth_date, "19580214");
    cr_assert_str_eq(e->sex, "M");
    cr_assert_float_eq(e->sampling_hz, 500.0, 1e-9);
    cr_assert_eq(e->n_leads, 12);
    cr_assert_eq(e->n_samples, 2500);
    static const char *const labels[] = {"I",  "II", "III", "aVR", "aVL", "aVF",
                                         "V1", "V2", "V3",  "V4",  "V5",  "V6"};
    static const char *const codes[] = {"2:1", "2:2", "2:61", "2:62", "2:63", "2:64",
                                        "2:3", "2:4", "2:5",  "2:6",  "2:7",  "2:8"};
    for (int i = 0; i < 12; i++) {
        cr_assert_str_eq(e->leads[i].label, labels[i]);
        cr_assert_str_eq(e->leads[i].mdc, codes[i]);
        cr_assert_float_eq(e->leads[i].scale_uv, 5.0, 1e-9, "%s", labels[i]);
        cr_assert_float_eq(e->leads[i].origin_uv, i == 6 ? 10.0 : 0.0, 1e-9);
    }
    /* every lead's digits equal the raw text's */
    static long raw[4096];
    static const char *const hl7[] = {"MDC_ECG_LEAD_I",   "MDC_ECG_LEAD_II",  "MDC_ECG_LEAD_III",
                                      "MDC_ECG_LEAD_AVR", "MDC_ECG_LEAD_AVL", "MDC_ECG_LEAD_AVF",
                                      "MDC_ECG_LEAD_V1",  "MDC_ECG_LEAD_V2",  "MDC_ECG_LEAD_V3",
                                      "MDC_ECG_LEAD_V4",  "MDC_ECG_LEAD_V5",  "MDC_ECG_LEAD_V6"};
    long nonzero = 0;
    for (int i = 0; i < 12; i++) {
        size_t n = raw_digits((const char *)doc, hl7[i], raw, 4096);
        cr_assert_eq(n, 2500, "%s: %zu", hl7[i], n);
        for (size_t k = 0; k < n; k++) {
            cr_assert_eq(e->leads[i].digits[k], raw[k], "%s[%zu]", hl7[i], k);
            nonzero += raw[k] != 0;
        }
    }
    cr_assert_gt(nonzero, 1000); /* a real signal, not zeros */
    cr_assert_eq(e->n_meas, 6);
    cr_assert_str_eq(e->meas[0].code, "2:16770");
    cr_assert_str_eq(e->meas[0].unit, "/min");
    cr_assert_float_eq(e->meas[0].value, 75, 1e-9);
    cr_assert_str_eq(e->meas[3].code, "2:16160");
    cr_assert_float_eq(e->meas[3].value, 380, 1e-9);
    cr_assert_str_eq(e->meas[4].hl7, "MDC_ECG_TIME_PD_QTc");
    cr_assert_float_eq(e->meas[4].value, 412, 1e-9);
    cr_assert_eq(e->n_text, 2);
    cr_assert_str_eq(e->text[0], "Sinus rhythm");
    cr_assert_str_eq(e->text[1], "窦性心律 Normal ECG");
    cr_assert(dcm_aecg_is_12lead(e));
    dcm_aecg_free(e);
    free(doc);
}

/* A cart that writes GB18030 (declared in the XML declaration): libxml2
 * converts, the names and statements come out in UTF-8. */
Test(aecg, gb18030_document)
{
    size_t len;
    unsigned char *doc = sample(&len);
    char *rest = strstr((char *)doc, "?>");
    cr_assert_not_null(rest);
    rest += 2;
    const char *decl = "<?xml version=\"1.0\" encoding=\"GB18030\"?>";
    hr_buf b;
    hr_buf_init(&b, 2 * len + 64);
    cr_assert_eq(hr_buf_append(&b, decl, strlen(decl)), 0);
    cr_assert_eq(hr_buf_reserve(&b, 2 * len), 0);
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    cr_assert_neq(cd, (iconv_t)-1);
    char *in = rest, *out = (char *)b.data + b.len;
    size_t inleft = len - (size_t)(rest - (char *)doc), outleft = b.alloc - b.len;
    cr_assert_neq(iconv(cd, &in, &inleft, &out, &outleft), (size_t)-1);
    iconv_close(cd);
    b.len = (size_t)(out - (char *)b.data);
    cr_assert_null(memmem(b.data, b.len, "\xE5\xBC\xA0", 3)); /* no UTF-8 张 left */
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    int rc = dcm_aecg_parse((const uint8_t *)b.data, b.len, &e, why, sizeof(why));
    cr_assert_eq(rc, 0, "%s", why);
    cr_assert_str_eq(e->patient_name, "张^三");
    cr_assert_str_eq(e->text[1], "窦性心律 Normal ECG");
    cr_assert_eq(e->n_samples, 2500);
    dcm_aecg_free(e);
    hr_buf_free(&b);
    free(doc);
}

/* The object DCMTK reads back: the class, the patient in UTF-8, the UIDs. */
Test(aecg, encode_12lead_object)
{
    size_t len;
    unsigned char *doc = sample(&len);
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    cr_assert_eq(dcm_aecg_parse(doc, len, &e, why, sizeof(why)), 0, "%s", why);
    dcm_ecg_ids ids = {"2.25.1001", "2.25.1002", "2.25.1003", "Township A", "20260101000000"};
    uint8_t *obj = NULL;
    size_t olen = 0;
    const char *cls = NULL;
    int lossy = -1;
    int rc = dcm_shim_ecg_encode(e, &ids, &obj, &olen, &cls, &lossy);
    cr_assert_eq(rc, 0, "%s", hr_strerror(rc));
    cr_assert_str_eq(cls, "1.2.840.10008.5.1.4.1.1.9.1.1");
    cr_assert_eq(lossy, 0);
    /* the waveform data is there: 12 x 2500 x 2 bytes */
    cr_assert_gt(olen, 12u * 2500u * 2u);
    dcm_p10_info info;
    cr_assert_eq(dcm_p10_read_meta(obj, olen, &info), 0);
    cr_assert_str_eq(info.sop_class, cls);
    cr_assert_str_eq(info.sop_instance, "2.25.1003");
    cr_assert_str_eq(info.ts, "1.2.840.10008.1.2.1");

    char dir[256], path[300];
    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(path, sizeof(path), "%s/ecg.dcm", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(obj, 1, olen, f), olen);
    fclose(f);
    dcm_attrs a;
    rc = dcm_shim_read_attrs(path, &a);
    cr_assert_eq(rc, 0, "%s", hr_strerror(rc));
    cr_assert_str_eq(a.sop_class_uid, cls);
    cr_assert_str_eq(a.study_instance_uid, "2.25.1001");
    cr_assert_str_eq(a.series_instance_uid, "2.25.1002");
    cr_assert_str_eq(a.modality, "ECG");
    cr_assert_str_eq(a.patient_name, "张^三");
    cr_assert_str_eq(a.patient_id, "P-000123");
    cr_assert_str_eq(a.study_date, "20261203");
    ts_rmrf(dir);
    free(obj);
    dcm_aecg_free(e);
    free(doc);
}

/* ---- small generated documents ---- */

static const char *k_head =
    "<?xml version=\"1.0\"?>\n<AnnotatedECG xmlns=\"urn:hl7-org:v3\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><id root=\"1.2.3\"/>"
    "<component><series><component><sequenceSet>";
static const char *k_tail = "</sequenceSet></component></series></component></AnnotatedECG>";

static void add_time(hr_buf *b, const char *inc, const char *unit)
{
    char s[400];
    snprintf(s, sizeof(s),
             "<component><sequence><code code=\"TIME_RELATIVE\"/><value xsi:type=\"GLIST_PQ\">"
             "<head value=\"0\" unit=\"s\"/><increment value=\"%s\" unit=\"%s\"/></value>"
             "</sequence></component>",
             inc, unit);
    cr_assert_eq(hr_buf_append(b, s, strlen(s)), 0);
}

static void add_lead(hr_buf *b, const char *code, const char *origin, const char *scale,
                     const char *unit, const char *digits)
{
    char s[512];
    snprintf(s, sizeof(s),
             "<component><sequence><code code=\"%s\"/><value xsi:type=\"SLIST_PQ\">"
             "<origin value=\"%s\" unit=\"%s\"/><scale value=\"%s\" unit=\"%s\"/>",
             code, origin, unit, scale, unit);
    cr_assert_eq(hr_buf_append(b, s, strlen(s)), 0);
    if (digits) {
        cr_assert_eq(hr_buf_append(b, "<digits>", 8), 0);
        cr_assert_eq(hr_buf_append(b, digits, strlen(digits)), 0);
        cr_assert_eq(hr_buf_append(b, "</digits>", 9), 0);
    }
    const char *end = "</value></sequence></component>";
    cr_assert_eq(hr_buf_append(b, end, strlen(end)), 0);
}

static int parse_buf(hr_buf *b, dcm_aecg **e, char *why, size_t cap)
{
    cr_assert_eq(hr_buf_append(b, k_tail, strlen(k_tail)), 0);
    return dcm_aecg_parse((const uint8_t *)b->data, b->len, e, why, cap);
}

static void start(hr_buf *b)
{
    hr_buf_init(b, 64u << 20);
    cr_assert_eq(hr_buf_append(b, k_head, strlen(k_head)), 0);
}

Test(aecg, three_leads_general_ecg_and_lossy)
{
    hr_buf b;
    start(&b);
    add_time(&b, "0.5", "ms"); /* 2000 Hz */
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "1", "uV", "100000 -100000 5 0");
    add_lead(&b, "MDC_ECG_LEAD_II", "0", "0.001", "mV", "1 2 3 4");
    add_lead(&b, "MDC_ECG_LEAD_V3R", "0", "1", "uV", "7 8 9 10");
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    int rc = parse_buf(&b, &e, why, sizeof(why));
    cr_assert_eq(rc, 0, "%s", why);
    cr_assert_float_eq(e->sampling_hz, 2000.0, 1e-6);
    cr_assert_eq(e->n_samples, 4);
    cr_assert_str_eq(e->leads[2].label, "V3R");
    cr_assert_float_eq(e->leads[1].scale_uv, 1.0, 1e-9);
    cr_assert_not(dcm_aecg_is_12lead(e));
    cr_assert_str_eq(e->acquired, "");
    dcm_ecg_ids ids = {"2.25.1", "2.25.2", "2.25.3", "", "20260101120000"};
    uint8_t *obj;
    size_t olen;
    const char *cls;
    int lossy;
    rc = dcm_shim_ecg_encode(e, &ids, &obj, &olen, &cls, &lossy);
    cr_assert_eq(rc, 0, "%s", hr_strerror(rc));
    cr_assert_str_eq(cls, "1.2.840.10008.5.1.4.1.1.9.1.2");
    cr_assert_eq(lossy, 1); /* 100000 uV at 1 uV does not fit 16 bits */
    free(obj);
    /* bad UIDs are refused */
    ids.sop_uid = "1.2.x";
    cr_assert_eq(dcm_shim_ecg_encode(e, &ids, &obj, &olen, &cls, &lossy), -EINVAL);
    dcm_aecg_free(e);
    hr_buf_free(&b);
}

static void expect_refused(const char *xml, int want, const char *why_has)
{
    dcm_aecg *e = (dcm_aecg *)1;
    char why[DCM_AECG_WHY_MAX];
    int rc = parse_str(xml, &e, why, sizeof(why));
    cr_assert_eq(rc, want, "want %s, got %s (%s) for %.80s", hr_err_name(want), hr_err_name(rc),
                 why, xml);
    cr_assert_null(e);
    cr_assert(strstr(why, why_has), "reason \"%s\" lacks \"%s\"", why, why_has);
}

Test(aecg, hostile_xml)
{
    expect_refused("", HR_EPARSE, "well-formed");
    expect_refused("<AnnotatedECG xmlns=\"urn:hl7-org:v3\"><id root=\"1\"/>", HR_EPARSE,
                   "well-formed");
    expect_refused("\x00\x01\x02garbage", HR_EPARSE, "well-formed");
    expect_refused("<AnnotatedECG/>", HR_EPARSE, "namespace");
    expect_refused("<AnnotatedECG xmlns=\"urn:hl7-org:v2\"/>", HR_EPARSE, "namespace");
    expect_refused("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>", HR_EPARSE, "AnnotatedECG");
    expect_refused("<AnnotatedECG xmlns=\"urn:hl7-org:v3\"/>", HR_EPARSE, "series");
    /* external entities and any DTD: refused before a declaration is read */
    expect_refused("<?xml version=\"1.0\"?><!DOCTYPE AnnotatedECG SYSTEM "
                   "\"file:///etc/passwd\"><AnnotatedECG xmlns=\"urn:hl7-org:v3\"/>",
                   HR_EUNSUP, "DTD");
    expect_refused("<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM "
                   "\"file:///etc/passwd\">]><AnnotatedECG xmlns=\"urn:hl7-org:v3\">"
                   "<id root=\"&x;\"/></AnnotatedECG>",
                   HR_EUNSUP, "DTD");
    /* an undeclared entity is a well-formedness error */
    expect_refused("<AnnotatedECG xmlns=\"urn:hl7-org:v3\"><id root=\"&x;\"/></AnnotatedECG>",
                   HR_EPARSE, "well-formed");
}

/* Billion laughs: 10^9 expansions if substituted; refused in milliseconds. */
Test(aecg, entity_expansion_refused_cheaply)
{
    hr_buf b;
    hr_buf_init(&b, 1 << 16);
    const char *h = "<?xml version=\"1.0\"?>\n<!DOCTYPE AnnotatedECG [\n"
                    " <!ENTITY l0 \"lol\">\n";
    hr_buf_append(&b, h, strlen(h));
    for (int i = 1; i <= 9; i++) {
        char s[200];
        int n = snprintf(s, sizeof(s), " <!ENTITY l%d \"", i);
        for (int k = 0; k < 10; k++)
            n += snprintf(s + n, sizeof(s) - n, "&l%d;", i - 1);
        n += snprintf(s + n, sizeof(s) - n, "\">\n");
        hr_buf_append(&b, s, (size_t)n);
    }
    const char *t = "]>\n<AnnotatedECG xmlns=\"urn:hl7-org:v3\"><id root=\"&l9;\"/>"
                    "<component><series><code code=\"&l9;\"/></series></component>"
                    "</AnnotatedECG>";
    hr_buf_append(&b, t, strlen(t));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    int rc = dcm_aecg_parse((const uint8_t *)b.data, b.len, &e, why, sizeof(why));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_eq(rc, HR_EUNSUP, "%s: %s", hr_err_name(rc), why);
    cr_assert_null(e);
    cr_assert_lt(ms, 200.0, "took %.1f ms", ms);
    hr_buf_free(&b);
}

Test(aecg, hostile_sequences)
{
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    hr_buf b;

    /* missing digits */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", NULL);
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    cr_assert(strstr(why, "digits"), "%s", why);
    hr_buf_free(&b);
    /* empty digits */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "   ");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    /* mismatched lengths */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2 3");
    add_lead(&b, "MDC_ECG_LEAD_II", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    cr_assert(strstr(why, "samples"), "%s", why);
    hr_buf_free(&b);
    /* not integers, overflow */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2.5 3");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 99999999999 3");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    /* markup inside the digits */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2<!-- x -->3");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    cr_assert(strstr(why, "markup"), "%s", why);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2<![CDATA[3]]>");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    /* no time sequence; a zero increment; a time unit that is not one */
    start(&b);
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    cr_assert(strstr(why, "TIME_"), "%s", why);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "2", "kg");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EUNSUP);
    hr_buf_free(&b);
    /* scale: missing unit kind, zero, negative */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "mmHg", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EUNSUP);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "-5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    /* an unknown lead; a lead twice; no lead */
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_BOGUS", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EUNSUP);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0.002", "s");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2");
    add_lead(&b, "MDC_ECG_LEAD_I", "0", "5", "uV", "1 2");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    cr_assert(strstr(why, "twice"), "%s", why);
    hr_buf_free(&b);
    start(&b);
    add_time(&b, "0.002", "s");
    cr_assert_eq(parse_buf(&b, &e, why, sizeof(why)), HR_EPARSE);
    hr_buf_free(&b);
    cr_assert_null(e);
}

Test(aecg, bounds)
{
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    /* more samples than DCM_AECG_SAMPLES_MAX in one lead */
    hr_buf b;
    start(&b);
    add_time(&b, "0.002", "s");
    const char *h = "<component><sequence><code code=\"MDC_ECG_LEAD_I\"/><value><origin "
                    "value=\"0\" unit=\"uV\"/><scale value=\"5\" unit=\"uV\"/><digits>";
    hr_buf_append(&b, h, strlen(h));
    for (size_t i = 0; i <= DCM_AECG_SAMPLES_MAX; i++)
        hr_buf_append(&b, "1 ", 2);
    const char *t = "</digits></value></sequence></component>";
    hr_buf_append(&b, t, strlen(t));
    int rc = parse_buf(&b, &e, why, sizeof(why));
    cr_assert_eq(rc, HR_ETOOBIG, "%s: %s", hr_err_name(rc), why);
    hr_buf_free(&b);
    /* a document over DCM_AECG_DOC_MAX is refused before it is read */
    size_t big = DCM_AECG_DOC_MAX + 1u;
    uint8_t *p = calloc(1, big);
    cr_assert_not_null(p);
    cr_assert_eq(dcm_aecg_parse(p, big, &e, why, sizeof(why)), HR_ETOOBIG);
    free(p);
    cr_assert_null(e);
}

/* A loose subject: only what is there is taken; long names are cut to the
 * 64 bytes of a PN group on a character boundary. */
Test(aecg, loose_subject)
{
    char xml[4096], fam[200] = "", giv[100] = "";
    for (int i = 0; i < 30; i++)
        strcat(fam, "张"); /* 90 bytes */
    strcat(giv, "Given");
    snprintf(xml, sizeof(xml),
             "<AnnotatedECG xmlns=\"urn:hl7-org:v3\"><componentOf><timepointEvent><componentOf>"
             "<subjectAssignment><subject><trialSubject><id root=\"1.2.3.4\"/>"
             "<subjectDemographicPerson><name><family>%s</family><given>%s</given></name>"
             "<administrativeGenderCode code=\"UN\"/><birthTime value=\"1958\"/>"
             "</subjectDemographicPerson></trialSubject></subject></subjectAssignment>"
             "</componentOf></timepointEvent></componentOf><effectiveTime value=\"2026120308\"/>"
             "<component><series><component><sequenceSet><component><sequence>"
             "<code code=\"TIME_ABSOLUTE\"/><value><increment value=\"4\" unit=\"ms\"/></value>"
             "</sequence></component><component><sequence><code code=\"MDC_ECG_LEAD_I\"/><value>"
             "<scale value=\"1\" unit=\"uV\"/><digits>1 2 3</digits></value></sequence>"
             "</component></sequenceSet></component></series></component></AnnotatedECG>",
             fam, giv);
    dcm_aecg *e = NULL;
    char why[DCM_AECG_WHY_MAX];
    int rc = parse_str(xml, &e, why, sizeof(why));
    cr_assert_eq(rc, 0, "%s", why);
    cr_assert_str_eq(e->patient_id, "1.2.3.4"); /* no extension: the root */
    cr_assert_eq(strlen(e->patient_name), 63, "%zu: %s", strlen(e->patient_name),
                 e->patient_name); /* 21 whole characters, no given name left */
    cr_assert_str_eq(e->sex, "O");
    cr_assert_str_eq(e->birth_date, ""); /* "1958" is not a date */
    cr_assert_str_eq(e->acquired, "2026120308");
    cr_assert_str_eq(e->id, "");
    cr_assert_float_eq(e->sampling_hz, 250.0, 1e-9);
    cr_assert_float_eq(e->leads[0].origin_uv, 0.0, 1e-12); /* no origin: 0 */
    dcm_aecg_free(e);
}
