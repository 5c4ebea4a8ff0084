/* reports/hl7.c: the HL7 v2 parser (separators, escapes, charsets, errors,
 * resumable feeding) and the ACK builder. */
#include "common/hr_err.h"
#include "reports/hl7.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORU                                                                                        \
    "MSH|^~\\&|LIS|TOWN1|HUREN|COUNTY|20261203101500||ORU^R01^ORU_R01|MSG0001|P|2.5.1|||||CHN|"    \
    "UNICODE UTF-8\r"                                                                              \
    "PID|1||P123^^^TOWN1^MR~ID9^^^CN^NI||Zhang^San||19800101|M\r"                                  \
    "PV1|1|O\r"                                                                                    \
    "ORC|RE|PL1|FL1\r"                                                                             \
    "OBR|1|PL1|FL1|2823-3^Potassium^LN|||20261203090000\r"                                         \
    "OBX|1|NM|2823-3^Potassium^LN||6.8|mmol/L^mmol/L^UCUM|3.5-5.3|HH|||F\r"                        \
    "NTE|1|L|Repeat \\T\\ confirm\\F\\ call\\S\\ward\\R\\\\E\\ \\H\\done\\N\\.\\X0D0A\\x\r"        \
    "SPM|1|||BLD&Blood&HL70487\r"

static rpt_hl7_msg *parse_ok(const char *s, const char *dflt)
{
    rpt_hl7_msg *m = NULL;
    rpt_hl7_err e;
    int rc = rpt_hl7_parse((const uint8_t *)s, strlen(s), dflt, &m, &e);
    cr_assert_eq(rc, 0, "parse: %s (%d %s)", hr_strerror(rc), e.code, e.text);
    cr_assert_not_null(m);
    return m;
}

static int parse_err(const char *s, size_t n, rpt_hl7_err *e)
{
    rpt_hl7_msg *m = (rpt_hl7_msg *)1;
    int rc = rpt_hl7_parse((const uint8_t *)s, n, "UNICODE UTF-8", &m, e);
    cr_assert_null(m);
    cr_assert(rc < 0);
    return rc;
}

Test(hl7, segments_fields_components)
{
    rpt_hl7_msg *m = parse_ok(ORU, NULL);
    cr_assert_eq(rpt_hl7_nseg(m), 8);
    const char *names[] = {"MSH", "PID", "PV1", "ORC", "OBR", "OBX", "NTE", "SPM"};
    for (size_t i = 0; i < 8; i++)
        cr_expect_str_eq(rpt_hl7_seg_name(rpt_hl7_seg_at(m, i)), names[i]);
    cr_expect_null(rpt_hl7_seg_at(m, 8));
    const rpt_hl7_seg *msh = rpt_hl7_msh(m);
    cr_expect_str_eq(rpt_hl7_get(msh, 1, 0, 0, 0), "|");
    cr_expect_str_eq(rpt_hl7_get(msh, 2, 0, 0, 0), "^~\\&");
    cr_expect_str_eq(rpt_hl7_get(msh, 3, 0, 0, 0), "LIS");
    cr_expect_str_eq(rpt_hl7_get(msh, 9, 0, 0, 0), "ORU^R01^ORU_R01");
    cr_expect_str_eq(rpt_hl7_get(msh, 9, 0, 2, 0), "R01");
    cr_expect_str_eq(rpt_hl7_get(msh, 10, 0, 0, 0), "MSG0001");
    cr_expect_str_eq(rpt_hl7_get(msh, 12, 0, 1, 0), "2.5.1");
    cr_expect_str_eq(rpt_hl7_charset(m), "UNICODE UTF-8");

    size_t at;
    const rpt_hl7_seg *pid = rpt_hl7_find(m, "PID", 0, &at);
    cr_assert_not_null(pid);
    cr_expect_eq(at, 1);
    cr_expect_eq(rpt_hl7_reps(pid, 3), 2);
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 0, 1, 0), "P123");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 0, 4, 0), "TOWN1");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 1, 1, 0), "ID9");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 1, 0, 0), "ID9^^^CN^NI");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 2, 1, 0), "");
    cr_expect_eq(rpt_hl7_ncomps(pid, 3, 0), 5);
    cr_expect_eq(rpt_hl7_reps(pid, 2), 0, "empty field");
    cr_expect_eq(rpt_hl7_reps(pid, 99), 0, "absent field");
    cr_expect_str_eq(rpt_hl7_get(pid, 5, 0, 2, 0), "San");
    cr_expect_str_eq(rpt_hl7_get(pid, 8, 0, 0, 0), "M");
    cr_expect_eq(rpt_hl7_nfields(pid), 8);
    cr_expect_str_eq(rpt_hl7_get(pid, 9, 0, 0, 0), "");
    cr_expect_str_eq(rpt_hl7_get(pid, 0, 0, 0, 0), "");
    cr_expect_str_eq(rpt_hl7_get(pid, -1, 0, 0, 0), "");

    const rpt_hl7_seg *obx = rpt_hl7_find(m, "OBX", 0, NULL);
    cr_expect_str_eq(rpt_hl7_get(obx, 5, 0, 0, 0), "6.8");
    cr_expect_str_eq(rpt_hl7_get(obx, 5, 0, 1, 1), "6.8", "one subcomponent");
    cr_expect_str_eq(rpt_hl7_get(obx, 8, 0, 0, 0), "HH");
    cr_expect_str_eq(rpt_hl7_get(obx, 11, 0, 0, 0), "F");
    const rpt_hl7_seg *spm = rpt_hl7_find(m, "SPM", 0, NULL);
    cr_expect_str_eq(rpt_hl7_get(spm, 4, 0, 1, 0), "BLD&Blood&HL70487");
    cr_expect_str_eq(rpt_hl7_get(spm, 4, 0, 1, 2), "Blood");
    cr_expect_str_eq(rpt_hl7_get(spm, 4, 0, 1, 3), "HL70487");
    cr_expect_str_eq(rpt_hl7_get(spm, 4, 0, 1, 4), "");
    cr_expect_null(rpt_hl7_find(m, "ZZZ", 0, NULL));
    rpt_hl7_free(m);
}

Test(hl7, escapes)
{
    rpt_hl7_msg *m = parse_ok(ORU, NULL);
    const rpt_hl7_seg *nte = rpt_hl7_find(m, "NTE", 0, NULL);
    cr_expect_str_eq(rpt_hl7_get(nte, 3, 0, 0, 0), "Repeat & confirm| call^ward~\\ done.\r\nx");
    rpt_hl7_free(m);

    /* unknown, unterminated and bad hex escapes are kept as they are; \.br\ is a line */
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.4\rNTE|1||a\\Zxy\\b\\.br\\c\\X4\\d\\Xzz\\e\\"
                 "Ff\r",
                 NULL);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 3, 0, 0, 0),
                     "a\\Zxy\\b\nc\\X4\\d\\Xzz\\e\\Ff");
    rpt_hl7_free(m);
}

Test(hl7, other_separators_and_line_ends)
{
    /* # field, $ component, * repetition, ! escape, @ subcomponent; LF endings */
    const char *s = "MSH#$*!@#LIS#TOWN1###20261203##ORU$R01#ID7#P#2.3.1\n"
                    "PID#1##A$B@C*D##N!F!ame!S!x\n"
                    "OBX#1#ST#K$Potassium##a|b^c~d&e\\\n";
    rpt_hl7_msg *m = parse_ok(s, NULL);
    const rpt_hl7_seg *msh = rpt_hl7_msh(m);
    cr_expect_str_eq(rpt_hl7_get(msh, 1, 0, 0, 0), "#");
    cr_expect_str_eq(rpt_hl7_get(msh, 2, 0, 0, 0), "$*!@");
    cr_expect_str_eq(rpt_hl7_get(msh, 9, 0, 2, 0), "R01");
    const rpt_hl7_seg *pid = rpt_hl7_seg_at(m, 1);
    cr_expect_eq(rpt_hl7_reps(pid, 3), 2);
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 0, 2, 2), "C");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 0, 0, 0), "A^B&C", "shown with ^ &");
    cr_expect_str_eq(rpt_hl7_get(pid, 3, 1, 0, 0), "D");
    cr_expect_str_eq(rpt_hl7_get(pid, 5, 0, 0, 0), "N#ame$x");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 2), 5, 0, 0, 0), "a|b^c~d&e\\",
                     "the default separators are plain text here");
    rpt_hl7_free(m);

    /* CRLF, and a last segment without its CR */
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\r\nPID|1\r\n\r\nPV1|1", NULL);
    cr_expect_eq(rpt_hl7_nseg(m), 3);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 2), 1, 0, 0, 0), "1");
    rpt_hl7_free(m);
}

/* GB 18030 bytes: 张三 D5C5 C8FD, 血钾 D1AA BCD8, 亅 817C (trail byte '|'),
 * 乗 815C (trail byte '\'), 𠀀 95328236 (four bytes). */
#define GB_NAME "\xD5\xC5\xC8\xFD"
#define GB_TEST "\xD1\xAA\xBC\xD8"

Test(hl7, charsets)
{
    const char *gb = "MSH|^~\\&|LIS|" GB_NAME "|HUREN|C|1||ORU^R01|G1|P|2.5|||||CHN|GB 18030-2000\r"
                     "PID|1||7||" GB_NAME "\r"
                     "OBX|1|NM|K^" GB_TEST "||\x81\x7C|\x81\x5C^\x95\x32\x82\x36\r";
    rpt_hl7_msg *m = parse_ok(gb, NULL);
    cr_expect_str_eq(rpt_hl7_charset(m), "GB 18030-2000");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_msh(m), 4, 0, 0, 0), "张三");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "张三");
    const rpt_hl7_seg *obx = rpt_hl7_seg_at(m, 2);
    cr_expect_str_eq(rpt_hl7_get(obx, 3, 0, 2, 0), "血钾");
    cr_expect_str_eq(rpt_hl7_get(obx, 5, 0, 0, 0), "亅", "trail byte 0x7C is no separator");
    cr_expect_str_eq(rpt_hl7_get(obx, 6, 0, 1, 0), "乗", "trail byte 0x5C is no escape");
    cr_expect_str_eq(rpt_hl7_get(obx, 6, 0, 2, 0), "𠀀");
    rpt_hl7_free(m);

    /* names seen in the field, and the default when MSH-18 is empty */
    const char *names[] = {"GBK", "GB2312", "GB18030"};
    char buf[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(buf, sizeof(buf),
                 "MSH|^~\\&|A|B|C|D|1||ORU^R01|G|P|2.5|||||CHN|%s\rPID|1||||" GB_NAME "\r",
                 names[i]);
        m = parse_ok(buf, NULL);
        cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "张三", "%s", names[i]);
        rpt_hl7_free(m);
    }
    m = parse_ok("MSH|^~\\&|A|" GB_NAME "|C|D|1||ORU^R01|G|P|2.5\rPID|1||||" GB_NAME "\r",
                 "GB 18030-2000");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "张三");
    cr_expect_str_eq(rpt_hl7_charset(m), "GB 18030-2000");
    rpt_hl7_free(m);
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ORU^R01|L|P|2.5|||||DE|8859/1\rPID|1||||M\xFC"
                 "ller\\XE9\\\r",
                 NULL);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "Mülleré");
    rpt_hl7_free(m);
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||||张三\r",
                 NULL);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "张三");
    rpt_hl7_free(m);

    /* invalid bytes: AE 102 at the field */
    rpt_hl7_err e;
    const char *bad[] = {
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||||\xD5\xC5\r",
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5\rPID|1||||caf\xE9\r", /* ASCII by default */
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5|||||CHN|GB 18030-2000\rPID|1||||\xD5\r",
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||||a\\X00\\b\r",
    };
    for (size_t i = 0; i < 4; i++) {
        rpt_hl7_msg *x = NULL;
        cr_expect_eq(rpt_hl7_parse((const uint8_t *)bad[i], strlen(bad[i]), NULL, &x, &e),
                     HR_EPARSE, "bad %zu", i);
        cr_expect_null(x);
        cr_expect_str_eq(e.ack, "AE");
        cr_expect_eq(e.code, 102, "bad %zu", i);
        cr_expect_str_eq(e.seg, "PID");
        cr_expect_eq(e.seq, 1);
        cr_expect_eq(e.field, 5);
        cr_expect_str_eq(e.control_id, "U", "MSH echoed for the ACK");
    }
    /* an unknown charset: AE 103 at MSH-18 */
    const char *unk = "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5|||||JP|ISO IR87\rPID|1\r";
    cr_expect_eq(parse_err(unk, strlen(unk), &e), HR_EPARSE);
    cr_expect_str_eq(e.ack, "AE");
    cr_expect_eq(e.code, 103);
    cr_expect_eq(e.field, 18);
    /* an unknown default (a configuration mistake): AE 207, said so */
    const char *plain = "MSH|^~\\&|A|B|C|D|1||ORU^R01|U|P|2.5\rPID|1\r";
    rpt_hl7_msg *x = NULL;
    cr_expect_eq(rpt_hl7_parse((const uint8_t *)plain, strlen(plain), "EBCDIC", &x, &e), HR_EPARSE);
    cr_expect_eq(e.code, 207);
    cr_expect(strstr(e.text, "default") != NULL);
    cr_expect(rpt_hl7_charset_known("GB 18030-2000") && rpt_hl7_charset_known("gbk") &&
              rpt_hl7_charset_known("UNICODE UTF-8") && rpt_hl7_charset_known("8859/1"));
    cr_expect(!rpt_hl7_charset_known("EBCDIC") && !rpt_hl7_charset_known(NULL));
}

Test(hl7, malformed)
{
    rpt_hl7_err e;
    static const struct {
        const char *s;
        const char *ack;
        int code;
        const char *seg;
        int field;
    } c[] = {
        {"", "AR", 100, "MSH", 0},
        {"\r\n\r", "AR", 100, "MSH", 0},
        {"PID|1\rMSH|^~\\&|A\r", "AR", 100, "MSH", 0},
        {"MSH", "AR", 102, "MSH", 1},
        {"MSHA^~\\&|x", "AR", 102, "MSH", 1},
        {"MSH|^~\r", "AR", 102, "MSH", 2},
        {"MSH|^^\\&|A\r", "AR", 102, "MSH", 2},
        {"MSH|^~|&|A\r", "AR", 102, "MSH", 2},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.6\r", "AR", 203, "MSH", 12},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P\r", "AR", 203, "MSH", 12},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.2\r", "AR", 203, "MSH", 12},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01||P|2.5\r", "AE", 101, "MSH", 10},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPID|1\rpid|2\r", "AE", 100, "", 0},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPIDX|1\r", "AE", 100, "", 0},
        {"MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rMSH|^~\\&|A\r", "AE", 100, "MSH", 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        memset(&e, 0, sizeof(e));
        cr_expect_eq(parse_err(c[i].s, strlen(c[i].s), &e), HR_EPARSE, "case %zu", i);
        cr_expect_str_eq(e.ack, c[i].ack, "case %zu: %s", i, e.text);
        cr_expect_eq(e.code, c[i].code, "case %zu: %s", i, e.text);
        cr_expect_str_eq(e.seg, c[i].seg, "case %zu", i);
        cr_expect_eq(e.field, c[i].field, "case %zu", i);
        cr_expect(strlen(e.text) > 10, "case %zu", i);
    }
    /* truncated at every length: never a crash, and either a message or an error */
    size_t n = strlen(ORU);
    for (size_t k = 0; k < n; k++) {
        rpt_hl7_msg *m = NULL;
        int rc = rpt_hl7_parse((const uint8_t *)ORU, k, NULL, &m, &e);
        cr_expect(rc == 0 || rc == HR_EPARSE, "length %zu", k);
        cr_expect((rc == 0) == (m != NULL));
        if (k < 70)
            cr_expect_eq(rc, HR_EPARSE, "length %zu: no version yet", k);
        rpt_hl7_free(m);
    }
}

Test(hl7, oversize)
{
    rpt_hl7_err e;
    size_t n = 0, cap = 16u << 20;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    n += (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\r");
    for (int i = 0; i <= RPT_HL7_MAX_SEGMENTS; i++)
        n += (size_t)sprintf(s + n, "NTE|%d\r", i);
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG);
    cr_expect_str_eq(e.ack, "AE");
    cr_expect_eq(e.code, 207);
    cr_expect_str_eq(e.control_id, "X");

    n = (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rOBX|1");
    for (int i = 0; i <= RPT_HL7_MAX_FIELDS; i++)
        s[n++] = '|';
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG, "fields");
    cr_expect_str_eq(e.seg, "OBX");

    n = (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rOBX|1|");
    for (int i = 0; i <= RPT_HL7_MAX_REPS; i++)
        s[n++] = '~';
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG, "repetitions");
    cr_expect_eq(e.field, 2);

    n = (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rOBX|1|");
    for (int i = 0; i <= RPT_HL7_MAX_COMPS; i++)
        s[n++] = '^';
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG, "components");
    n = (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rOBX|1|");
    for (int i = 0; i <= RPT_HL7_MAX_COMPS; i++)
        s[n++] = '&';
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG, "subcomponents");

    n = (size_t)sprintf(s, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rOBX|1|");
    memset(s + n, 'x', RPT_HL7_MAX_SEGMENT);
    n += RPT_HL7_MAX_SEGMENT;
    cr_expect_eq(parse_err(s, n, &e), HR_ETOOBIG, "segment bytes");
    free(s);
}

/* Every field of every segment, as one string, to compare two parses. */
static void dump(const rpt_hl7_msg *m, hr_buf *b)
{
    for (size_t i = 0; i < rpt_hl7_nseg(m); i++) {
        const rpt_hl7_seg *s = rpt_hl7_seg_at(m, i);
        hr_buf_append(b, rpt_hl7_seg_name(s), 3);
        for (int f = 1; f <= rpt_hl7_nfields(s); f++)
            for (int r = 0; r < (rpt_hl7_reps(s, f) ? rpt_hl7_reps(s, f) : 1); r++)
                for (int c = 0; c <= rpt_hl7_ncomps(s, f, r); c++)
                    for (int u = 0; u <= (c ? 3 : 0); u++) {
                        const char *v = rpt_hl7_get(s, f, r, c, u);
                        hr_buf_append(b, "|", 1);
                        hr_buf_append(b, v, strlen(v));
                    }
        hr_buf_append(b, "\n", 1);
    }
}

Test(hl7, resumable_split_at_every_byte)
{
    const char *msgs[] = {ORU, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\r\nPID|1|\\F\\x\r\n",
                          "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPID|1\rbad\r"};
    for (size_t t = 0; t < 3; t++) {
        const uint8_t *s = (const uint8_t *)msgs[t];
        size_t n = strlen(msgs[t]);
        rpt_hl7_msg *whole = NULL;
        rpt_hl7_err we;
        int wrc = rpt_hl7_parse(s, n, NULL, &whole, &we);
        hr_buf ref;
        hr_buf_init(&ref, 1 << 20);
        if (whole)
            dump(whole, &ref);
        for (size_t cut = 0; cut <= n; cut++) {
            rpt_hl7_parser p;
            rpt_hl7_parser_init(&p, NULL, 0);
            int rc = 0, segs = 0;
            const uint8_t *parts[2] = {s, s + cut};
            size_t lens[2] = {cut, n - cut};
            for (int k = 0; k < 2 && rc >= 0; k++) {
                size_t off = 0, used;
                while (off < lens[k]) {
                    rc = rpt_hl7_parser_feed(&p, parts[k] + off, lens[k] - off, &used);
                    cr_assert(used <= lens[k] - off);
                    off += used;
                    if (rc < 0)
                        break;
                    if (rc == RPT_HL7_NEED_MORE)
                        cr_assert_eq(off, lens[k], "need-more consumes all");
                    else
                        segs++;
                }
            }
            rpt_hl7_msg *m = NULL;
            if (rc >= 0)
                rc = rpt_hl7_parser_finish(&p, &m);
            cr_expect_eq(rc, wrc, "msg %zu cut %zu", t, cut);
            if (rc < 0) {
                cr_expect_eq(p.err.code, we.code);
                cr_expect_str_eq(p.err.ack, we.ack);
            } else {
                hr_buf d;
                hr_buf_init(&d, 1 << 20);
                dump(m, &d);
                cr_expect(d.len == ref.len && memcmp(d.data, ref.data, d.len) == 0,
                          "msg %zu cut %zu differs", t, cut);
                cr_expect(segs >= (int)rpt_hl7_nseg(m) - 1);
                hr_buf_free(&d);
                rpt_hl7_free(m);
            }
            rpt_hl7_parser_free(&p);
        }
        /* one byte at a time */
        rpt_hl7_parser p;
        rpt_hl7_parser_init(&p, NULL, 0);
        int rc = 0;
        for (size_t i = 0; i < n && rc >= 0;) {
            size_t used;
            rc = rpt_hl7_parser_feed(&p, s + i, 1, &used);
            cr_assert(used <= 1);
            i += used;
        }
        rpt_hl7_msg *m = NULL;
        if (rc >= 0)
            rc = rpt_hl7_parser_finish(&p, &m);
        cr_expect_eq(rc, wrc, "msg %zu byte by byte", t);
        if (m) {
            hr_buf d;
            hr_buf_init(&d, 1 << 20);
            dump(m, &d);
            cr_expect(d.len == ref.len && memcmp(d.data, ref.data, d.len) == 0);
            hr_buf_free(&d);
        }
        cr_expect_eq(rpt_hl7_parser_feed(&p, s, 1, &(size_t){0}), rc < 0 ? rc : HR_EPARSE,
                     "a finished or failed parser takes no more bytes");
        rpt_hl7_free(m);
        rpt_hl7_parser_free(&p);
        rpt_hl7_free(whole);
        hr_buf_free(&ref);
    }
}

/* Splits an ACK into its segments (CR) in place. */
static size_t segs_of(char *s, char **out, size_t max)
{
    size_t n = 0;
    for (char *t = strtok(s, "\r"); t && n < max; t = strtok(NULL, "\r"))
        out[n++] = t;
    return n;
}

Test(hl7, ack_build)
{
    rpt_hl7_msg *m = parse_ok(ORU, NULL);
    hr_buf b;
    hr_buf_init(&b, 1 << 16);
    cr_assert_eq(rpt_hl7_ack_build(m, "AA", NULL, "COUNTY", 1796292900000LL, &b), 0);
    hr_buf_append(&b, "", 1);
    char *seg[8];
    size_t n = segs_of((char *)b.data, seg, 8);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(seg[0], "MSH|^~\\&|HUREN|COUNTY|LIS|TOWN1|20261203101500+0000||ACK^R01^ACK|"
                             "AMSG0001|P|2.5.1||||||UNICODE UTF-8");
    cr_expect_str_eq(seg[1], "MSA|AA|MSG0001");

    /* parsed back with the parser itself */
    rpt_hl7_msg *a = NULL;
    rpt_hl7_err e;
    b.len = 0;
    cr_assert_eq(rpt_hl7_ack_build(m, "AA", NULL, "COUNTY", 1796292900000LL, &b), 0);
    cr_assert_eq(rpt_hl7_parse(b.data, b.len, NULL, &a, &e), 0, "%s", e.text);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_find(a, "MSA", 0, NULL), 2, 0, 0, 0), "MSG0001");
    rpt_hl7_free(a);

    /* AE with ERR, location and text */
    memset(&e, 0, sizeof(e));
    rpt_hl7_err_set(&e, "AE", 101, "OBR", 1, 4, "OBR-4 | is empty.");
    b.len = 0;
    cr_assert_eq(rpt_hl7_ack_build(m, "AE", &e, "COUNTY", 1796292900000LL, &b), 0);
    hr_buf_append(&b, "", 1);
    n = segs_of((char *)b.data, seg, 8);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(seg[1], "MSA|AE|MSG0001|OBR-4 \\F\\ is empty.");
    cr_expect_str_eq(seg[2], "ERR||OBR^1^4|101^Required field missing^HL70357|E||||OBR-4 \\F\\ "
                             "is empty.");
    cr_expect_eq(rpt_hl7_ack_build(m, "XX", NULL, "C", 0, &b), -EINVAL);
    rpt_hl7_free(m);

    /* version 2.3: ERR-1 too; GB 18030 echoed, the peer's facility re-encoded */
    const char *gb =
        "MSH|^~\\&|LIS|" GB_NAME "|HUREN|C|1||ORU^R01|G1|P|2.3|||||CHN|GB 18030-2000\r";
    m = parse_ok(gb, NULL);
    b.len = 0;
    cr_assert_eq(rpt_hl7_ack_build(m, "AE", &e, "县医院", 0, &b), 0);
    hr_buf_append(&b, "", 1);
    cr_expect(strstr((char *)b.data, "|HUREN|\xCF\xD8\xD2\xBD\xD4\xBA|LIS|" GB_NAME "|") != NULL,
              "GB bytes");
    cr_expect(strstr((char *)b.data, "|2.3||||||GB 18030-2000\r") != NULL);
    cr_expect(strstr((char *)b.data, "\rERR|OBR^1^4^101&Required field missing&HL70357|OBR^1^4|") !=
              NULL);
    rpt_hl7_free(m);

    /* no message: MSA-2 from what the parser could read */
    const char *v26 = "MSH|^~\\&|LIS|TOWN1|H|C|1||ORU^R01|Q9|P|2.6\r";
    cr_assert_eq(parse_err(v26, strlen(v26), &e), HR_EPARSE);
    b.len = 0;
    cr_assert_eq(rpt_hl7_ack_build(NULL, e.ack, &e, "COUNTY", 0, &b), 0);
    hr_buf_append(&b, "", 1);
    n = segs_of((char *)b.data, seg, 8);
    cr_assert_eq(n, 3);
    cr_expect(strstr(seg[0], "|HUREN|COUNTY|LIS|TOWN1|") && strstr(seg[0], "|AQ9|P|2.5.1"), "%s",
              seg[0]);
    cr_expect(strncmp(seg[1], "MSA|AR|Q9|", 10) == 0, "%s", seg[1]);
    cr_expect(strncmp(seg[2], "ERR||MSH^1^12|203^Unsupported version id^HL70357|E", 50) == 0, "%s",
              seg[2]);
    const char *junk = "garbage";
    cr_assert_eq(parse_err(junk, strlen(junk), &e), HR_EPARSE);
    b.len = 0;
    cr_assert_eq(rpt_hl7_ack_build(NULL, "AR", &e, "COUNTY", 0, &b), 0);
    hr_buf_append(&b, "", 1);
    cr_expect(strstr((char *)b.data, "\rMSA|AR|\r") || strstr((char *)b.data, "\rMSA|AR||"), "%s",
              (char *)b.data);

    /* long echoed values are cut on a character boundary: the ACK is still built */
    hr_buf big;
    hr_buf_init(&big, 1 << 20);
    hr_buf_append(&big, "MSH|^~\\&|", 9);
    for (int i = 0; i < 3000; i++)
        hr_buf_append(&big, "张", 3);
    hr_buf_append(&big, "|", 1);
    for (int i = 0; i < 3000; i++)
        hr_buf_append(&big, "\\F\\", 3);
    const char *rest = "|C|D|1||ORU^R01|";
    hr_buf_append(&big, rest, strlen(rest));
    for (int i = 0; i < 500; i++)
        hr_buf_append(&big, "\\X01\\", 5);
    rest = "|P|2.5|||||CHN|UNICODE UTF-8\r";
    hr_buf_append(&big, rest, strlen(rest));
    cr_assert_eq(rpt_hl7_parse(big.data, big.len, NULL, &m, &e), 0, "%s", e.text);
    b.len = 0;
    rpt_hl7_err_set(&e, "AE", 207, "", 0, 0, "%s", "x");
    cr_assert_eq(rpt_hl7_ack_build(m, "AE", &e, "COUNTY", 0, &b), 0);
    cr_expect_leq(b.len, RPT_HL7_ACK_MAX);
    cr_assert_eq(rpt_hl7_parse(b.data, b.len, NULL, &a, &e), 0, "the ACK reads back: %s", e.text);
    const char *app = rpt_hl7_get(rpt_hl7_msh(a), 5, 0, 0, 0);
    cr_expect_eq(strlen(app), 198, "66 whole characters of 3 bytes");
    cr_expect_eq(strlen(rpt_hl7_get(rpt_hl7_msh(a), 6, 0, 0, 0)), 200);
    rpt_hl7_free(a);
    rpt_hl7_free(m);
    hr_buf_free(&big);
    hr_buf_free(&b);
}

/* finish on a parser that already handed its message over is an error, not
 * a NULL dereference (the MLLP listener's error paths may call it again). */
Test(hl7, finish_twice)
{
    const char *s = "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rPID|1\r";
    rpt_hl7_parser p;
    rpt_hl7_msg *m = NULL, *m2 = (rpt_hl7_msg *)1;
    size_t off = 0, used;
    int rc = 0;

    rpt_hl7_parser_init(&p, NULL, 0);
    while (off < strlen(s) && rc >= 0) {
        rc = rpt_hl7_parser_feed(&p, (const uint8_t *)s + off, strlen(s) - off, &used);
        off += used;
    }
    cr_assert_eq(rpt_hl7_parser_finish(&p, &m), 0);
    cr_assert_not_null(m);
    cr_assert_eq(rpt_hl7_parser_finish(&p, &m2), HR_EPARSE);
    cr_assert_null(m2);
    cr_assert_eq(p.err.code, 207);
    rpt_hl7_free(m);
    rpt_hl7_parser_free(&p);
}

/* The ACK's own MSH-10 ("A" + the first characters of the message's) is cut
 * on a character boundary: a UTF-8 ACK stays valid UTF-8 and reads back. */
Test(hl7, ack_control_id_cut_on_a_character)
{
    const char *s =
        "MSH|^~\\&|LIS|T|H|C|1||ORU^R01|检验检验检验检验|P|2.5.1|||||CHN|UNICODE UTF-8\r";
    rpt_hl7_msg *m = parse_ok(s, NULL), *a = NULL;
    rpt_hl7_err e;
    hr_buf b;

    hr_buf_init(&b, 1 << 16);
    cr_assert_eq(rpt_hl7_ack_build(m, "AA", NULL, "COUNTY", 0, &b), 0);
    cr_assert_eq(rpt_hl7_parse(b.data, b.len, NULL, &a, &e), 0, "the ACK reads back: %s", e.text);
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_msh(a), 10, 0, 0, 0), "A检验检验检验");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_find(a, "MSA", 0, NULL), 2, 0, 0, 0), "检验检验检验检验");
    rpt_hl7_free(a);
    rpt_hl7_free(m);
    hr_buf_free(&b);
}

/* A message whose values outgrow RPT_HL7_MAX_ARENA (each short repetition
 * costs ~28 bytes per input byte) is refused as too big (HR_ETOOBIG, AE 207
 * saying so), not reported as the hub running out of memory. */
Test(hl7, arena_cap_is_too_big_not_out_of_memory)
{
    rpt_hl7_err e;
    hr_buf s;
    hr_buf_init(&s, 64u << 20);
    const char *msh = "MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\r";
    hr_buf_append(&s, msh, strlen(msh));
    for (int seg = 0; seg < 4; seg++) {
        hr_buf_append(&s, "NTE", 3);
        for (int f = 0; f < 900; f++) {
            hr_buf_append(&s, "|", 1);
            for (int r = 0; r < 900; r++)
                hr_buf_append(&s, r ? "~a" : "a", r ? 2 : 1);
        }
        hr_buf_append(&s, "\r", 1);
    }
    cr_assert_eq(parse_err((const char *)s.data, s.len, &e), HR_ETOOBIG);
    cr_expect_str_eq(e.ack, "AE");
    cr_expect_eq(e.code, 207);
    cr_expect(strstr(e.text, "memory") == NULL, "%s", e.text);
    hr_buf_free(&s);
}

/* MSH-18 is found whatever the default: a UTF-8 message declaring UTF-8 from
 * a sender whose hospital defaults to GB 18030 (a UTF-8 "县医院" read as GB
 * pairs its last byte with the next '|'), and a GB 18030 message declaring
 * GB 18030 whose MSH-4 has a character with trail byte '|' (0x81 0x7C) to a
 * hub whose default is not GB. */
Test(hl7, msh18_read_whatever_the_default)
{
    const char *u8 = "MSH|^~\\&|LIS|县医院|HUREN|C|1||ORU^R01|U1|P|2.5.1|||||CHN|UNICODE UTF-8\r"
                     "PID|1||7||王芳\r";
    rpt_hl7_msg *m = parse_ok(u8, "GB 18030-2000");
    cr_expect_str_eq(rpt_hl7_charset(m), "UNICODE UTF-8");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_msh(m), 4, 0, 0, 0), "县医院");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_msh(m), 10, 0, 0, 0), "U1");
    cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "王芳");
    rpt_hl7_free(m);

    const char *gb = "MSH|^~\\&|LIS|\x81\x7C|HUREN|C|1||ORU^R01|G1|P|2.5|||||CHN|GB 18030-2000\r"
                     "PID|1||7||" GB_NAME "\r";
    const char *dflt[] = {NULL, "UNICODE UTF-8", "GB 18030-2000"};
    for (size_t i = 0; i < 3; i++) {
        m = parse_ok(gb, dflt[i]);
        cr_expect_str_eq(rpt_hl7_charset(m), "GB 18030-2000", "default %s", dflt[i]);
        cr_expect_str_eq(rpt_hl7_get(rpt_hl7_msh(m), 4, 0, 0, 0), "亅");
        cr_expect_str_eq(rpt_hl7_get(rpt_hl7_seg_at(m, 1), 5, 0, 0, 0), "张三");
        rpt_hl7_free(m);
    }
}
