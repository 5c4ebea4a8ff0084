/* reports/report_objects.c and the shim's SR/PDF writers: the Basic Text SR
 * and the Encapsulated PDF of a payload, read back by DCMTK's own tools
 * (dcmdump, dsrdump) and by pydicom; the evidence from a real redis-server;
 * deterministic UIDs and bytes; refusals. */
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "dicom/uids.h"
#include "reports/render_pdf.h"
#include "reports/report_objects.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUDY  "1.2.840.99.7"
#define DIGEST "3f9a0c1e5b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468"
#define PY     "/usr/bin/python3"

static char g_dir[512];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(g_dir), 0);
}

static void teardown(void)
{
    ts_rmrf(g_dir);
}

TestSuite(report_objects, .init = setup, .fini = teardown, .timeout = 120);

static json_t *payload(const char *status, int version)
{
    json_error_t e;
    json_t *p = json_pack_ex(
        &e, 0,
        "{s:s, s:i, s:{s:s, s:i, s:s, s:n}, "
        "s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:i, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}, "
        "s:{s:s, s:s, s:b, s:[]}, s:[], "
        "s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s, s:s}], "
        "s:s}",
        "typ", "huren-report", "schema", 1, "report", "id", "r1-" STUDY, "version", version,
        "status", status, "supersedes", "exam", "study_uid", STUDY, "accession", "A7", "hospital",
        "twa", "hospital_name", "青山镇卫生院", "modality", "CT", "procedure", "头颅CT平扫",
        "study_date", "20261201", "center", "img", "center_name", "影像诊断中心", "patient", "id",
        "P0042", "issuer", "twa", "name", "张^三丰", "sex", "F", "birth_date", "19800102", "images",
        "count", 2, "order", "sop-uid-bytewise", "digest", DIGEST, "instances", "sop", STUDY ".1.1",
        "sha256", DIGEST, "sop", STUDY ".1.2", "sha256", DIGEST, "content", "findings",
        "颅内未见明显异常密度影。\n脑室系统无扩大。", "impression", "头颅CT平扫未见明显异常。",
        "critical", 0, "codes", "recognition", "signers", "user", "wang", "name", "王^医生", "role",
        "reader", "function", "author", "center", "img", "hospital", "county", "signed_at",
        "2026-12-03T07:00:00.123Z", "user", "li", "name", "李^主任", "role", "auditor", "function",
        "authenticator", "center", "img", "hospital", "county", "signed_at",
        "2026-12-03T08:30:00.000Z", "signed_at", "2026-12-03T08:30:00.000Z");
    cr_assert_not_null(p, "json_pack: %s", e.text);
    return p;
}

static const char k_cfg[] =
    "{\"data_dir\": \"/tmp/huren-objects-unused\","
    " \"hospitals\": [{\"id\": \"county\", \"name\": \"安平县人民医院\", \"level\": \"county\"},"
    "                {\"id\": \"twa\", \"name\": \"青山镇卫生院\", \"level\": \"township\"}],"
    " \"centers\": [{\"id\": \"img\", \"name\": \"影像诊断中心\", \"kind\": \"imaging\","
    "                \"hospital\": \"county\"}],"
    " \"routing\": {\"rules\": [], \"default\": {\"center\": \"img\", \"priority\": "
    "\"routine\"}}}";

/* Output of a shell command (malloc'd); *status receives its exit status. */
static char *run_st(int *status, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    size_t n = 0, cap = 4 << 20;
    char *out = malloc(cap + 1);
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_not_null(out);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    for (size_t r; (r = fread(out + n, 1, cap - n, p)) > 0;)
        n += r;
    out[n] = '\0';
    *status = pclose(p);
    return out;
}

#define RUN_OK(...)                                                                                \
    ({                                                                                             \
        int st_;                                                                                   \
        char *o_ = run_st(&st_, __VA_ARGS__);                                                      \
        cr_assert_eq(st_, 0, "command failed (%d):\n%s", st_, o_);                                 \
        o_;                                                                                        \
    })

/* pydicom's view of a file: one "key=value" line per attribute asked. */
static const char k_py_sr[] =
    "import sys, pydicom\n"
    "d = pydicom.dcmread(sys.argv[1])\n"
    "fm = d.file_meta\n"
    "print('class=' + d.SOPClassUID)\n"
    "print('sop=' + d.SOPInstanceUID)\n"
    "print('meta_sop=' + fm.MediaStorageSOPInstanceUID)\n"
    "print('impl=' + fm.ImplementationClassUID)\n"
    "print('ts=' + fm.TransferSyntaxUID)\n"
    "print('study=' + d.StudyInstanceUID)\n"
    "print('series=' + d.SeriesInstanceUID)\n"
    "print('charset=' + str(d.SpecificCharacterSet))\n"
    "print('name=' + str(d.PatientName))\n"
    "print('pid=' + d.PatientID + ' sex=' + d.PatientSex + ' birth=' + d.PatientBirthDate)\n"
    "print('acc=' + d.AccessionNumber + ' date=' + d.StudyDate)\n"
    "print('modality=' + d.Modality + ' number=' + str(d.InstanceNumber))\n"
    "print('content=' + d.ContentDate + d.ContentTime)\n"
    "print('institution=' + d.InstitutionName)\n"
    "print('flags=' + d.CompletionFlag + '/' + d.VerificationFlag + '/' + "
    "d.get('PreliminaryFlag', ''))\n"
    "for v in d.get('VerifyingObserverSequence', []):\n"
    "    print('verifier=' + str(v.VerifyingObserverName) + ' org=' + v.VerifyingOrganization"
    " + ' at=' + v.VerificationDateTime)\n"
    "print('root=' + d.ConceptNameCodeSequence[0].CodeValue)\n"
    "def walk(items, depth):\n"
    "    for it in items:\n"
    "        cn = it.ConceptNameCodeSequence[0].CodeMeaning\n"
    "        v = it.get('TextValue', None) or str(it.get('PersonName', ''))\n"
    "        print('item=%d %s %s %s %s' % (depth, it.RelationshipType, it.ValueType, cn,"
    " v.replace(chr(10), '|')))\n"
    "        walk(it.get('ContentSequence', []), depth + 1)\n"
    "walk(d.ContentSequence, 1)\n"
    "for st in d.get('CurrentRequestedProcedureEvidenceSequence', []):\n"
    "    for se in st.ReferencedSeriesSequence:\n"
    "        for i in se.ReferencedSOPSequence:\n"
    "            print('evidence=' + se.SeriesInstanceUID + ' ' + i.ReferencedSOPClassUID + ' ' + "
    "i.ReferencedSOPInstanceUID)\n"
    "for st in d.get('PredecessorDocumentsSequence', []):\n"
    "    for se in st.ReferencedSeriesSequence:\n"
    "        for i in se.ReferencedSOPSequence:\n"
    "            print('predecessor=' + i.ReferencedSOPInstanceUID)\n";

static void expect_line(const char *out, const char *line)
{
    char *want = malloc(strlen(line) + 3);
    snprintf(want, strlen(line) + 3, "\n%s\n", line);
    /* the first line has no newline before it */
    cr_expect(strstr(out, want) || !strncmp(out, line, strlen(line)), "missing line \"%s\" in\n%s",
              line, out);
    free(want);
}

Test(report_objects, uids_are_named_and_stable)
{
    char s1[RPT_OBJ_UID_MAX], i1[RPT_OBJ_UID_MAX], s2[RPT_OBJ_UID_MAX], i2[RPT_OBJ_UID_MAX];
    char ps[RPT_OBJ_UID_MAX], pi[RPT_OBJ_UID_MAX], x[RPT_OBJ_UID_MAX];

    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 2, RPT_OBJ_SR, s1, i1), 0);
    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 2, RPT_OBJ_SR, s2, i2), 0);
    cr_expect_str_eq(s1, s2);
    cr_expect_str_eq(i1, i2);
    cr_expect(dcm_uid_valid(s1) && dcm_uid_valid(i1));
    cr_expect_eq(strncmp(i1, "2.25.", 5), 0);
    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 3, RPT_OBJ_SR, s2, i2), 0);
    cr_expect_str_eq(s1, s2, "one series for every version of a report");
    cr_expect_str_neq(i1, i2);
    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 2, RPT_OBJ_PDF, ps, pi), 0);
    cr_expect_str_neq(ps, s1);
    cr_expect_str_neq(pi, i1);
    cr_assert_eq(rpt_obj_uids("r2-" STUDY, 2, RPT_OBJ_SR, x, NULL), 0);
    cr_expect_str_neq(x, s1);
    /* the derivation as documented, computed independently (Python hashlib) */
    cr_expect_str_eq(i1, "2.25.53618746226750184461316492670236969094");
    cr_expect_eq(rpt_obj_uids("", 1, RPT_OBJ_SR, s1, i1), -EINVAL);
    cr_expect_eq(rpt_obj_uids("r1-1", 0, RPT_OBJ_SR, s1, i1), -EINVAL);
}

Test(report_objects, text_sr_final)
{
    hr_config cfg;
    char err[256] = "", path[600], path2[600], *out, sop[RPT_OBJ_UID_MAX], series[RPT_OBJ_UID_MAX];
    json_t *p = payload("final", 2);
    rpt_obj_ref ev[2] = {{STUDY ".1", "1.2.840.10008.5.1.4.1.1.2", STUDY ".1.1"},
                         {STUDY ".1", "1.2.840.10008.5.1.4.1.1.2", STUDY ".1.2"}};
    unsigned char *a, *b;
    size_t la, lb;

    cr_assert_eq(hr_config_load_string(k_cfg, &cfg, err, sizeof(err)), 0, "%s", err);
    json_object_set_new(json_object_get(p, "report"), "supersedes",
                        json_pack("{s:i, s:s}", "version", 1, "digest", DIGEST));
    snprintf(path, sizeof(path), "%s/sr.dcm", g_dir);
    snprintf(path2, sizeof(path2), "%s/sr2.dcm", g_dir);
    cr_assert_eq(rpt_obj_write_sr(&cfg, p, ev, 2, path), 0);
    cr_assert_eq(rpt_obj_write_sr(&cfg, p, ev, 2, path2), 0);
    a = ts_read_file(path, &la);
    b = ts_read_file(path2, &lb);
    cr_assert(a && b);
    cr_expect(la == lb && !memcmp(a, b, la), "a rebuilt SR is the same bytes");
    free(a);
    free(b);

    /* DCMTK reads it as an SR document */
    out = RUN_OK("dcmdump -q '%s' 2>&1", path);
    cr_expect_not_null(strstr(out, "BasicTextSRStorage"), "%s", out);
    cr_expect_not_null(strstr(out, "ISO_IR 192"));
    cr_expect_not_null(strstr(out, HR_IMPL_CLASS_UID), "huren's implementation UID\n%s", out);
    free(out);
    out = RUN_OK("dsrdump -q +Pl '%s' 2>&1", path);
    cr_expect_not_null(strstr(out, "Diagnostic imaging report"), "%s", out);
    cr_expect_not_null(strstr(out, "头颅CT平扫未见明显异常。"), "%s", out);
    cr_expect_null(strstr(out, "W: "), "DCMTK warned:\n%s", out);
    cr_expect_null(strstr(out, "E: "), "DCMTK complained:\n%s", out);
    free(out);

    /* pydicom reads back every value */
    out = RUN_OK(PY " -c \"$HR_PY\" '%s'", path);
    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 2, RPT_OBJ_SR, series, sop), 0);
    char line[512];
    expect_line(out, "class=1.2.840.10008.5.1.4.1.1.88.11");
    snprintf(line, sizeof(line), "sop=%s", sop);
    expect_line(out, line);
    snprintf(line, sizeof(line), "meta_sop=%s", sop);
    expect_line(out, line);
    snprintf(line, sizeof(line), "series=%s", series);
    expect_line(out, line);
    expect_line(out, "impl=" HR_IMPL_CLASS_UID);
    expect_line(out, "ts=1.2.840.10008.1.2.1");
    expect_line(out, "study=" STUDY);
    expect_line(out, "charset=ISO_IR 192");
    expect_line(out, "name=张^三丰");
    expect_line(out, "pid=P0042 sex=F birth=19800102");
    expect_line(out, "acc=A7 date=20261201");
    expect_line(out, "modality=SR number=2");
    expect_line(out, "content=20261203163000");
    expect_line(out, "institution=安平县人民医院");
    expect_line(out, "flags=COMPLETE/VERIFIED/FINAL");
    expect_line(out, "verifier=李^主任 org=安平县人民医院 at=20261203163000+0800");
    expect_line(out, "root=18748-4");
    expect_line(out, "item=1 HAS OBS CONTEXT PNAME Person Observer Name 王^医生");
    expect_line(out, "item=1 CONTAINS CONTAINER Findings ");
    expect_line(out, "item=2 CONTAINS TEXT Finding 颅内未见明显异常密度影。|脑室系统无扩大。");
    expect_line(out, "item=1 CONTAINS CONTAINER Impressions ");
    expect_line(out, "item=2 CONTAINS TEXT Impression 头颅CT平扫未见明显异常。");
    expect_line(out, "item=1 CONTAINS TEXT Comment 本报告为第2版，取代第1版。");
    expect_line(out, "evidence=" STUDY ".1 1.2.840.10008.5.1.4.1.1.2 " STUDY ".1.1");
    expect_line(out, "evidence=" STUDY ".1 1.2.840.10008.5.1.4.1.1.2 " STUDY ".1.2");
    cr_assert_eq(rpt_obj_uids("r1-" STUDY, 1, RPT_OBJ_SR, NULL, sop), 0);
    snprintf(line, sizeof(line), "predecessor=%s", sop);
    expect_line(out, line);
    free(out);
    json_decref(p);
    hr_config_free(&cfg);
}

Test(report_objects, text_sr_preliminary_and_retracted)
{
    char path[600], *out;
    json_t *p = payload("preliminary", 1);

    snprintf(path, sizeof(path), "%s/pre.dcm", g_dir);
    cr_assert_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), 0);
    out = RUN_OK(PY " -c \"$HR_PY\" '%s'", path);
    expect_line(out, "flags=COMPLETE/UNVERIFIED/PRELIMINARY");
    cr_expect_null(strstr(out, "verifier="));
    cr_expect_null(strstr(out, "evidence="));
    free(out);
    json_decref(p);

    p = payload("entered-in-error", 3);
    snprintf(path, sizeof(path), "%s/ret.dcm", g_dir);
    cr_assert_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), 0);
    out = RUN_OK(PY " -c \"$HR_PY\" '%s'", path);
    expect_line(out, "flags=COMPLETE/VERIFIED/FINAL");
    expect_line(out, "item=1 CONTAINS TEXT Comment 本报告已撤回（entered-in-error），请勿使用。");
    expect_line(out, "verifier=李^主任 org=county at=20261203163000+0800");
    free(out);
    json_decref(p);
}

static const char k_py_pdf[] =
    "import sys, pydicom\n"
    "d = pydicom.dcmread(sys.argv[1])\n"
    "n = d.EncapsulatedDocumentLength\n"
    "open(sys.argv[2], 'wb').write(d.EncapsulatedDocument[:n])\n"
    "print('class=' + d.SOPClassUID)\n"
    "print('mime=' + d.MIMETypeOfEncapsulatedDocument)\n"
    "print('modality=' + d.Modality + ' number=' + str(d.InstanceNumber))\n"
    "print('study=' + d.StudyInstanceUID)\n"
    "print('name=' + str(d.PatientName))\n"
    "print('title=' + d.DocumentTitle)\n"
    "print('odd_padded=%d' % (len(d.EncapsulatedDocument) - n))\n";

Test(report_objects, encapsulated_pdf)
{
    hr_config cfg;
    char err[256] = "", path[600], pdf_path[600], *out;
    json_t *p = payload("final", 1);
    rpt_render_in in = {.payload = p, .digest = DIGEST, .verify_url = "https://hub/verify?x=1"};
    hr_buf pdf;
    unsigned char *back;
    size_t len;

    cr_assert_eq(hr_config_load_string(k_cfg, &cfg, err, sizeof(err)), 0, "%s", err);
    hr_buf_init(&pdf, RPT_RENDER_OUT_MAX);
    cr_assert_eq(rpt_render_pdf(&cfg, &in, &pdf, NULL), 0);
    if (pdf.len % 2 == 0) /* make it odd: the padding case */
        cr_assert_eq(hr_buf_append(&pdf, "\n", 1), 0);
    snprintf(path, sizeof(path), "%s/pdf.dcm", g_dir);
    snprintf(pdf_path, sizeof(pdf_path), "%s/back.pdf", g_dir);
    cr_assert_eq(rpt_obj_write_pdf(&cfg, p, pdf.data, pdf.len, path), 0);
    out = RUN_OK("dcmdump -q '%s' 2>&1", path);
    cr_expect_not_null(strstr(out, "EncapsulatedPDFStorage"), "%s", out);
    free(out);
    setenv("HR_PY", k_py_pdf, 1);
    out = RUN_OK(PY " -c \"$HR_PY\" '%s' '%s'", path, pdf_path);
    expect_line(out, "class=1.2.840.10008.5.1.4.1.1.104.1");
    expect_line(out, "mime=application/pdf");
    expect_line(out, "modality=DOC number=1");
    expect_line(out, "study=" STUDY);
    expect_line(out, "name=张^三丰");
    expect_line(out, "title=影像诊断中心 第1版 正式报告");
    expect_line(out, "odd_padded=1");
    free(out);
    back = ts_read_file(pdf_path, &len);
    cr_assert_not_null(back);
    cr_expect_eq(len, pdf.len);
    cr_expect_eq(memcmp(back, pdf.data, pdf.len), 0, "the PDF comes back byte for byte");
    free(back);
    out = RUN_OK("pdftotext -enc UTF-8 '%s' - | tr -d ' \\n'", pdf_path);
    cr_expect_not_null(strstr(out, "头颅CT平扫未见明显异常。"));
    free(out);
    cr_expect_eq(rpt_obj_write_pdf(&cfg, p, pdf.data, 0, path), -EINVAL);
    hr_buf_free(&pdf);
    json_decref(p);
    hr_config_free(&cfg);
}

Test(report_objects, refusals)
{
    char path[600];
    json_t *p = payload("final", 1);
    rpt_obj_ref bad = {"1.2.3", "not a uid", "1.2.4"};

    snprintf(path, sizeof(path), "%s/x.dcm", g_dir);
    cr_expect_eq(rpt_obj_write_sr(NULL, p, &bad, 1, path), -EINVAL);
    json_object_set_new(json_object_get(p, "exam"), "study_uid", json_string("1.02.3"));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), -EINVAL);
    json_object_set_new(json_object_get(p, "exam"), "study_uid", json_string(STUDY));
    json_object_set_new(json_object_get(p, "report"), "status", json_string("draft"));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), -EINVAL);
    json_object_set_new(json_object_get(p, "report"), "status", json_string("final"));
    json_object_set_new(p, "signed_at", json_string("yesterday"));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), -EINVAL);
    json_object_set_new(p, "signed_at", json_string("2026-12-03T08:30:00.000Z"));
    json_object_set_new(json_object_get(p, "report"), "supersedes",
                        json_pack("{s:i, s:s}", "version", 1, "digest", DIGEST));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), -EINVAL, "supersedes itself");
    json_object_set_new(json_object_get(p, "report"), "supersedes", json_null());
    json_object_set_new(p, "schema", json_integer(2));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), -EINVAL);
    cr_expect_eq(rpt_obj_write_pdf(NULL, p, (const uint8_t *)"%PDF", 4, path), -EINVAL);
    json_object_set_new(p, "schema", json_integer(1));
    /* a value far over its VR is clipped, never refused */
    char longname[400];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    json_object_set_new(json_object_get(p, "patient"), "name", json_string(longname));
    cr_expect_eq(rpt_obj_write_sr(NULL, p, NULL, 0, path), 0);
    json_decref(p);
}

Test(report_objects, evidence_from_the_index)
{
    ts_redis r;
    redisContext *c;
    redisReply *rep;
    rpt_obj_ref *ev = NULL;
    size_t n = 99;
    json_t *p = payload("final", 1);

    cr_assert_eq(ts_redis_start(&r, g_dir), 0);
    c = ts_redis_connect(r.sock, 2000);
    cr_assert_not_null(c);
    /* only the first instance is indexed */
    rep = redisCommand(c, "HSET hr:{%s}:i:%s series %s sop_class %s sha %s", STUDY, STUDY ".1.1",
                       STUDY ".9", "1.2.840.10008.5.1.4.1.1.2", DIGEST);
    cr_assert(rep && rep->type == REDIS_REPLY_INTEGER);
    freeReplyObject(rep);
    cr_assert_eq(rpt_obj_evidence(c, p, &ev, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(ev[0].series, STUDY ".9");
    cr_expect_str_eq(ev[0].sop_class, "1.2.840.10008.5.1.4.1.1.2");
    cr_expect_str_eq(ev[0].sop, STUDY ".1.1");
    free(ev);
    /* a garbage SOP UID in the payload */
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(p, "images"), "instances"), 1), "sop",
        json_string("x y"));
    cr_expect_eq(rpt_obj_evidence(c, p, &ev, &n), -EINVAL);
    cr_expect_null(ev);
    /* the connection is still usable after the refusal */
    rep = redisCommand(c, "PING");
    cr_expect(rep && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(c);
    ts_redis_stop(&r);
    json_decref(p);
}

static void init_py(void)
{
    setenv("HR_PY", k_py_sr, 1);
}

/* every test but the PDF one reads SRs */
static void __attribute__((constructor)) set_py(void)
{
    init_py();
}
