/* reports/oru.c: the ORU^R01 of a signed version (segment layout, field
 * positions, escaping, status codes) and the reading of ACKs. */
#include "common/hr_err.h"
#include "reports/oru.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *payload(const char *status, const char *findings, const char *impression)
{
    json_t *p = json_pack(
        "{s:s, s:i, s:{s:s, s:i, s:s, s:n}, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s},"
        " s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:b}, s:[{s:s, s:s, s:s, s:s, s:s, s:s},"
        " {s:s, s:s, s:s, s:s, s:s, s:s}], s:s}",
        "typ", "huren-report", "schema", 1, "report", "id", "r1-1.2.3.4", "version", 2, "status",
        status, "supersedes", "exam", "study_uid", "1.2.3.4", "accession", "ACC|1", "hospital",
        "township1", "modality", "CT", "procedure", "头颅 CT 平扫", "study_date", "20261203",
        "center", "imaging", "center_name", "影像中心", "patient", "id", "P001", "issuer",
        "township1", "name", "Zhang^San=张^三", "sex", "M", "birth_date", "19600101", "content",
        "findings", findings, "impression", impression, "critical", 0, "signers", "user", "wang",
        "name", "王医生", "role", "reader", "function", "author", "center", "imaging", "signed_at",
        "2026-12-03T07:00:00.123Z", "user", "li", "name", "李审核", "role", "auditor", "function",
        "authenticator", "center", "imaging", "signed_at", "2026-12-03T08:00:00.456Z", "signed_at",
        "2026-12-03T08:00:00.456Z");
    cr_assert_not_null(p);
    return p;
}

static const rpt_oru_params k_params = {
    .sending_facility = "county",
    .receiving_application = "RIS",
    .receiving_facility = "TOWN1",
    .control_id = "HR0123456789abcdef01",
    .now_ms = 1796281200123LL, /* 2026-12-03T07:00:00.123Z */
    .report_url = "https://hub.example.org/api/v1/reports/r1-1.2.3.4/versions/2/jws?a=1&b=2",
    .diag_section = "RAD",
};

/* Splits msg into segments (CR) into segs (cap n); returns the count. */
static int segments(char *msg, char **segs, int cap)
{
    int n = 0;
    for (char *p = msg; *p && n < cap;) {
        char *e = strchr(p, '\r');
        cr_assert_not_null(e, "every segment ends with CR");
        *e = '\0';
        segs[n++] = p;
        p = e + 1;
    }
    return n;
}

/* Field i of a segment (MSH counts MSH-1 as the separator itself). */
static void field(const char *seg, int i, char *out, size_t cap)
{
    int f = strncmp(seg, "MSH", 3) == 0 ? (i == 1 ? -1 : i - 1) : i;
    if (f < 0) {
        snprintf(out, cap, "|");
        return;
    }
    const char *p = seg;
    for (int k = 0; k < f && p; k++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p) {
        out[0] = '\0';
        return;
    }
    size_t n = strcspn(p, "|");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static char *build(json_t *p, const rpt_oru_params *pr)
{
    hr_buf b;
    hr_buf_init(&b, RPT_ORU_MAX);
    cr_assert_eq(rpt_oru_build(p, pr, &b), 0);
    cr_assert_eq(hr_buf_append(&b, "", 1), 0);
    json_decref(p);
    return (char *)b.data;
}

Test(oru, segment_layout_and_fields)
{
    char *msg = build(payload("final", "脑实质密度均匀。\n中线结构居中。", "颅脑 CT 未见异常。"),
                      &k_params);
    char *s[32], f[512];
    int n = segments(msg, s, 32);
    /* MSH PID ORC OBR NTE NTE OBX(2 findings) OBX(1 impression) OBX(RP) */
    cr_assert_eq(n, 10, "%d segments", n);
    const char *ids[] = {"MSH", "PID", "ORC", "OBR", "NTE", "NTE", "OBX", "OBX", "OBX", "OBX"};
    for (int i = 0; i < n; i++)
        cr_expect(strncmp(s[i], ids[i], 3) == 0 && s[i][3] == '|', "segment %d is %.3s", i, s[i]);
    cr_expect(strncmp(s[0], "MSH|^~\\&|", 9) == 0);
    struct {
        int f;
        const char *v;
    } msh[] = {{3, "HUREN"},
               {4, "county"},
               {5, "RIS"},
               {6, "TOWN1"},
               {7, "20261203070000.123+0000"},
               {9, "ORU^R01^ORU_R01"},
               {10, "HR0123456789abcdef01"},
               {11, "P"},
               {12, "2.5.1"},
               {17, "CHN"},
               {18, "UNICODE UTF-8"}};
    for (size_t i = 0; i < sizeof(msh) / sizeof(msh[0]); i++) {
        field(s[0], msh[i].f, f, sizeof(f));
        cr_expect_str_eq(f, msh[i].v, "MSH-%d", msh[i].f);
    }
    field(s[1], 3, f, sizeof(f));
    cr_expect_str_eq(f, "P001^^^township1");
    field(s[1], 5, f, sizeof(f));
    cr_expect_str_eq(f, "Zhang^San~张^三", "the PN groups are XPN repetitions");
    field(s[1], 7, f, sizeof(f));
    cr_expect_str_eq(f, "19600101");
    field(s[1], 8, f, sizeof(f));
    cr_expect_str_eq(f, "M");
    field(s[2], 1, f, sizeof(f));
    cr_expect_str_eq(f, "RE");
    field(s[3], 3, f, sizeof(f));
    cr_expect_str_eq(f, "ACC\\F\\1", "the accession's | is escaped");
    field(s[3], 4, f, sizeof(f));
    cr_expect_str_eq(f, "^头颅 CT 平扫");
    field(s[3], 7, f, sizeof(f));
    cr_expect_str_eq(f, "20261203");
    field(s[3], 20, f, sizeof(f));
    cr_expect_str_eq(f, "r1-1.2.3.4/2");
    field(s[3], 22, f, sizeof(f));
    cr_expect_str_eq(f, "20261203080000.456+0000");
    field(s[3], 24, f, sizeof(f));
    cr_expect_str_eq(f, "RAD");
    field(s[3], 25, f, sizeof(f));
    cr_expect_str_eq(f, "F");
    field(s[3], 32, f, sizeof(f));
    cr_expect_str_eq(f, "li&李审核", "the final signer interprets");
    field(s[3], 33, f, sizeof(f));
    cr_expect_str_eq(f, "wang&王医生");
    field(s[4], 3, f, sizeof(f));
    cr_expect(strstr(f, "author: 王医生 (wang), reader, imaging, 2026-12-03T07:00:00.123Z"), "%s",
              f);
    field(s[5], 1, f, sizeof(f));
    cr_expect_str_eq(f, "2");
    /* findings: one OBX per line, sub-id 1; impression sub-id 2 */
    const char *want[][5] = {{"1", "TX", "121071^Finding^DCM", "1", "脑实质密度均匀。"},
                             {"2", "TX", "121071^Finding^DCM", "1", "中线结构居中。"},
                             {"3", "TX", "121073^Impression^DCM", "2", "颅脑 CT 未见异常。"}};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 5; k++) {
            field(s[6 + i], k + 1, f, sizeof(f));
            cr_expect_str_eq(f, want[i][k], "OBX %d field %d", i + 1, k + 1);
        }
        field(s[6 + i], 11, f, sizeof(f));
        cr_expect_str_eq(f, "F");
    }
    field(s[9], 2, f, sizeof(f));
    cr_expect_str_eq(f, "RP");
    field(s[9], 5, f, sizeof(f));
    cr_expect_str_eq(f,
                     "https://hub.example.org/api/v1/reports/r1-1.2.3.4/versions/2/jws?a=1\\T\\b=2"
                     "^HUREN^AP^jose",
                     "the URL's & is escaped");
    free(msg);
}

Test(oru, escaping)
{
    hr_buf b;
    hr_buf_init(&b, 4096);
    cr_assert_eq(rpt_hl7_escape("a|b^c&d~e\\f\tg\x7fh中", &b), 0);
    cr_assert_eq(hr_buf_append(&b, "", 1), 0);
    cr_expect_str_eq((char *)b.data, "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X09\\g\\X7F\\h中");
    hr_buf_reset(&b);
    cr_assert_eq(rpt_hl7_escape("", &b), 0);
    cr_expect_eq(b.len, 0);
    hr_buf_free(&b);
    hr_buf_init(&b, 8);
    cr_expect_eq(rpt_hl7_escape("||||", &b), HR_ETOOBIG, "the buffer's cap holds");
    hr_buf_free(&b);

    /* text with every delimiter, CRLF and an empty line: one OBX per line,
     * nothing unescaped, no stray CR */
    char *msg = build(payload("final", "a|b\r\n\r\nc^d&e~f\\g", ""), &k_params);
    char *s[32], f[512];
    int n = segments(msg, s, 32);
    cr_assert_eq(n, 11, "%d", n); /* 6 + 3 finding lines + 1 empty impression + RP */
    field(s[6], 5, f, sizeof(f));
    cr_expect_str_eq(f, "a\\F\\b");
    field(s[7], 5, f, sizeof(f));
    cr_expect_str_eq(f, "");
    field(s[8], 5, f, sizeof(f));
    cr_expect_str_eq(f, "c\\S\\d\\T\\e\\R\\f\\E\\g");
    field(s[9], 3, f, sizeof(f));
    cr_expect_str_eq(f, "121073^Impression^DCM");
    for (int i = 0; i < n; i++)
        cr_expect(strchr(s[i], '\n') == NULL, "no LF in segment %d", i);
    free(msg);
}

Test(oru, statuses)
{
    const char *st[][3] = {{"final", "F", "F"},
                           {"amended", "C", "C"},
                           {"corrected", "C", "C"},
                           {"entered-in-error", "X", "W"}};
    for (size_t i = 0; i < 4; i++) {
        char *msg = build(payload(st[i][0], "x", "y"), &k_params);
        char *s[32], f[64];
        int n = segments(msg, s, 32);
        field(s[3], 25, f, sizeof(f));
        cr_expect_str_eq(f, st[i][1], "%s OBR-25", st[i][0]);
        for (int k = 6; k < n; k++) {
            field(s[k], 11, f, sizeof(f));
            cr_expect_str_eq(f, st[i][2], "%s OBX-11", st[i][0]);
        }
        free(msg);
    }
    hr_buf b;
    hr_buf_init(&b, RPT_ORU_MAX);
    const char *bad[] = {"preliminary", "draft", "bogus"};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = payload(bad[i], "x", "y");
        cr_expect_eq(rpt_oru_build(p, &k_params, &b), -EINVAL, "%s is not delivered", bad[i]);
        json_decref(p);
    }
    cr_expect_eq(b.len, 0, "nothing appended on failure");
    hr_buf_free(&b);
}

Test(oru, control_id_and_missing_parts)
{
    hr_buf b;
    hr_buf_init(&b, RPT_ORU_MAX);
    json_t *p = payload("final", "x", "y");
    const char *bad[] = {"", "has space", "a|b", "123456789012345678901", "a^b"};
    for (size_t i = 0; i < 5; i++) {
        rpt_oru_params pr = k_params;
        pr.control_id = bad[i];
        cr_expect_eq(rpt_oru_build(p, &pr, &b), -EINVAL, "control id \"%s\"", bad[i]);
    }
    json_object_del(json_object_get(p, "report"), "version");
    cr_expect_eq(rpt_oru_build(p, &k_params, &b), -EINVAL);
    json_decref(p);
    /* no accession: the report id is the filler order number; no URL: no RP */
    p = payload("final", "x", "y");
    json_object_set_new(json_object_get(p, "exam"), "accession", json_string(""));
    rpt_oru_params pr = k_params;
    pr.report_url = NULL;
    char *msg = build(p, &pr);
    char *s[32], f[128];
    int n = segments(msg, s, 32);
    cr_expect_eq(n, 8);
    field(s[3], 3, f, sizeof(f));
    cr_expect_str_eq(f, "r1-1.2.3.4");
    cr_expect(strstr(s[n - 1], "|RP|") == NULL);
    free(msg);
    hr_buf_free(&b);
}

Test(oru, ack_parse)
{
    rpt_hl7_ack a;
    const char *aa = "MSH|^~\\&|RIS|TOWN1|HUREN|county|20261203||ACK^R01|A1|P|2.5.1\r"
                     "MSA|AA|HR0123456789abcdef01\r";
    cr_assert_eq(rpt_hl7_ack_parse((const uint8_t *)aa, strlen(aa), &a), 0);
    cr_expect_str_eq(a.code, "AA");
    cr_expect_str_eq(a.control_id, "HR0123456789abcdef01");
    cr_expect(rpt_hl7_ack_ok(&a, "HR0123456789abcdef01"));
    cr_expect(!rpt_hl7_ack_ok(&a, "HR0123456789abcdef02"), "another message's ACK");

    const char *ae = "MSH#^~\\&#RIS\nMSA#AE#X1#bad patient\nERR#^^^207&Application error#E\n";
    cr_assert_eq(rpt_hl7_ack_parse((const uint8_t *)ae, strlen(ae), &a), 0, "other separator, LF");
    cr_expect_str_eq(a.code, "AE");
    cr_expect_str_eq(a.control_id, "X1");
    cr_expect(strstr(a.text, "bad patient") && strstr(a.text, "Application error"), "%s", a.text);
    cr_expect(!rpt_hl7_ack_ok(&a, "X1"));

    const char *ca = "MSH|^~\\&\rMSA|CA|X2\r";
    cr_assert_eq(rpt_hl7_ack_parse((const uint8_t *)ca, strlen(ca), &a), 0);
    cr_expect(rpt_hl7_ack_ok(&a, "X2"));

    const char *bad[] = {"", "MSH|^~\\&\r", "PID|1\rMSA|AA|X\r", "MSH|^~\\&\rMSA|\r", "MSH"};
    for (size_t i = 0; i < 5; i++)
        cr_expect_eq(rpt_hl7_ack_parse((const uint8_t *)bad[i], strlen(bad[i]), &a), HR_EPARSE,
                     "bad %zu", i);
}
