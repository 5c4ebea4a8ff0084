/* dicom/charset.c: declared charsets, ISO 2022 code extensions and the
 * township GB18030/UTF-8 detection; pydicom's charset files through the
 * scanner with patient names hard-coded from pydicom 2.3. */
#include "common/hr_err.h"
#include "dicom/charset.h"
#include "dicom/scanner.h"

#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYDICOM_CHARSET_DIR "/usr/lib/python3/dist-packages/pydicom/data/charset_files"

static int conv(const char *decl, const char *in, char *out, size_t cap, char *used, int *guessed)
{
    return dcm_charset_to_utf8(decl, in, strlen(in), out, cap, used, 64, guessed);
}

/* 张三^三 */
#define ZHANG_GB   "\xd5\xc5\xc8\xfd^\xc8\xfd"
#define ZHANG_UTF8 "\xe5\xbc\xa0\xe4\xb8\x89^\xe4\xb8\x89"

Test(charset, gb18030_declared)
{
    char out[64], used[64];
    int g = -1;
    cr_assert_eq(conv("GB18030", ZHANG_GB, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 0);
}

Test(charset, gb18030_four_byte)
{
    char out[64], used[64];
    int g = -1;
    /* U+20000 (CJK Ext B) is a 4-byte GB18030 sequence 95 32 82 36 */
    cr_assert_eq(conv("GB18030", "\x95\x32\x82\x36", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xf0\xa0\x80\x80");
    /* and it is detected under ISO_IR 100 */
    cr_assert_eq(conv("ISO_IR 100", "\x95\x32\x82\x36^\xc8\xfd", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xf0\xa0\x80\x80^\xe4\xb8\x89");
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 1);
}

/* Four-byte GB18030 (CJK Extension A/B) in a PN with component groups and in
 * a LO, as GB18030-2005 encoders (Windows, Java, Python/pydicom) write them:
 * 𠀀 U+20000 = 95 32 82 36, 䶮 U+4DAE = FE 9F, 㐀 U+3400 = 81 39 EE 39, and
 * 龴 U+9FB4 = 82 35 90 37, a four-byte code glibc's GB18030-2022 tables
 * reject (the whole value used to fall back to its ASCII bytes). */
#define PN_GB   "Zhang^San=\x95\x32\x82\x36\xfe\x9f^\x81\x39\xee\x39\x82\x35\x90\x37=zhang^san"
#define PN_UTF8 "Zhang^San=𠀀䶮^㐀龴=zhang^san"

Test(charset, gb18030_four_byte_pn_groups_and_lo)
{
    char out[128], used[64];
    int g = -1;
    cr_assert_eq(conv("GB18030", PN_GB, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, PN_UTF8);
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 0);
    /* LO: 㐀医院龴 */
    cr_assert_eq(conv("GB18030", "\x81\x39\xee\x39\xd2\xbd\xd4\xba\x82\x35\x90\x37", out,
                      sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "㐀医院龴");
    /* every GB18030-2005 four-byte code of U+9FB4..U+9FBB, and the 2022
     * two-byte codes glibc knows for them, give the same characters */
    cr_assert_eq(conv("GB18030",
                      "\x82\x35\x90\x37\x82\x35\x90\x38\x82\x35\x90\x39\x82\x35\x91\x30"
                      "\x82\x35\x91\x31\x82\x35\x91\x32\x82\x35\x91\x33\x82\x35\x91\x34",
                      out, sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "龴龵龶龷龸龹龺龻");
    cr_assert_eq(conv("GB18030", "\xfe\x59\xfe\x61\xfe\x66\xfe\x67\xfe\x6d\xfe\x7e\xfe\x90\xfe\xa0",
                      out, sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "龴龵龶龷龸龹龺龻");
    /* vertical forms U+FE10/U+FE19 and ḿ U+1E3F (not the Private Use Area) */
    cr_assert_eq(conv("GB18030", "\x84\x31\x82\x36\x84\x31\x83\x35\x81\x35\xf4\x37", out,
                      sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "\xef\xb8\x90\xef\xb8\x99\xe1\xb8\xbf");
    /* a cut four-byte character is still an error */
    cr_assert_eq(conv("GB18030", "ab\x82\x35\x90", out, sizeof(out), used, &g), HR_ECHARSET);
}

Test(charset, gb18030_four_byte_truncation_and_detection)
{
    char out[16], used[64];
    int g = -1;
    /* 㐀医院龴 is 12 bytes of UTF-8: a 10-byte buffer keeps 㐀医院 */
    cr_assert_eq(
        conv("GB18030", "\x81\x39\xee\x39\xd2\xbd\xd4\xba\x82\x35\x90\x37", out, 10, used, &g), 0);
    cr_assert_str_eq(out, "㐀医院");
    /* the same name mislabelled as ISO_IR 100 is still recognised */
    char big[128];
    cr_assert_eq(conv("ISO_IR 100", "\x95\x32\x82\x36\xfe\x9f^\x81\x39\xee\x39\x82\x35\x90\x37",
                      big, sizeof(big), used, &g),
                 0);
    cr_assert_str_eq(big, "𠀀䶮^㐀龴");
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 1);
}

Test(charset, gbk_declared)
{
    char out[64], used[64];
    int g = -1;
    /* 欧阳^娜娜 */
    cr_assert_eq(conv("GBK", "\xc5\xb7\xd1\xf4^\xc4\xc8\xc4\xc8", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xe6\xac\xa7\xe9\x98\xb3^\xe5\xa8\x9c\xe5\xa8\x9c");
    cr_assert_str_eq(used, "GBK");
    cr_assert_eq(g, 0);
}

Test(charset, mislabelled_gb18030_under_latin1)
{
    char out[64], used[64];
    int g = 0;
    cr_assert_eq(conv("ISO_IR 100", ZHANG_GB, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 1);
}

Test(charset, mislabelled_gb18030_under_empty)
{
    char out[64], used[64];
    int g = 0;
    cr_assert_eq(conv("", ZHANG_GB, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_str_eq(used, "GB18030");
    cr_assert_eq(g, 1);
    cr_assert_eq(
        dcm_charset_to_utf8(NULL, ZHANG_GB, strlen(ZHANG_GB), out, sizeof(out), used, 64, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_eq(g, 1);
    cr_assert_eq(conv("ISO_IR 6", ZHANG_GB, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_eq(g, 1);
}

Test(charset, utf8_under_latin1_and_empty)
{
    char out[64], used[64];
    int g = 0;
    cr_assert_eq(conv("ISO_IR 100", ZHANG_UTF8, out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, ZHANG_UTF8);
    cr_assert_str_eq(used, "ISO_IR 192");
    cr_assert_eq(g, 1);
    cr_assert_eq(conv("", "Buc^J\xc3\xa9r\xc3\xb4me", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "Buc^J\xc3\xa9r\xc3\xb4me");
    cr_assert_eq(g, 1);
}

Test(charset, real_latin1_is_not_gb18030)
{
    char out[64], used[64];
    int g = -1;
    /* é r and ô m are structurally valid GBK pairs (trail byte 0x40-0x7E) */
    cr_assert_eq(conv("ISO_IR 100", "Buc^J\xe9r\xf4me", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "Buc^J\xc3\xa9r\xc3\xb4me");
    cr_assert_str_eq(used, "ISO_IR 100");
    cr_assert_eq(g, 0);
    /* ü ß: a pair with a high trail byte, but it decodes to a private-use char */
    cr_assert_eq(conv("ISO_IR 100", "M\xfc\xdfig", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "M\xc3\xbc\xc3\x9fig");
    cr_assert_eq(g, 0);
    cr_assert_eq(conv("ISO_IR 100",
                      "\xc4neas^R\xfc"
                      "diger",
                      out, sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "\xc3\x84neas^R\xc3\xbc"
                          "diger");
    cr_assert_eq(g, 0);
    /* Latin-1 under an empty declaration: converted as Latin-1, flagged */
    cr_assert_eq(conv("", "Buc^J\xe9r\xf4me", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "Buc^J\xc3\xa9r\xc3\xb4me");
    cr_assert_str_eq(used, "ISO_IR 100");
    cr_assert_eq(g, 1);
}

Test(charset, ascii_and_plain_declarations)
{
    char out[64], used[64];
    int g = -1;
    cr_assert_eq(conv("", "Doe^John", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "Doe^John");
    cr_assert_str_eq(used, "ISO_IR 6");
    cr_assert_eq(g, 0);
    cr_assert_eq(conv("ISO_IR 144", "\xbb\xee\xda", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xd0\x9b\xd1\x8e\xd0\xba");
    cr_assert_eq(conv("ISO_IR 203", "\xa4", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xe2\x82\xac"); /* euro sign */
    cr_assert_eq(conv("ISO_IR 13", "\xd4\xcf", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xef\xbe\x94\xef\xbe\x8f");
}

Test(charset, iso2022_ir58_gb2312)
{
    char out[64], used[64];
    int g = -1;
    /* Wang^XiaoDong=王^小东 with GB2312 designated to G1 */
    cr_assert_eq(conv("\\ISO 2022 IR 58", "Wang^XiaoDong=\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab=",
                      out, sizeof(out), used, &g),
                 0);
    cr_assert_str_eq(out, "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c=");
    cr_assert_eq(g, 0);
}

Test(charset, iso2022_ir87_ir149)
{
    char out[128], used[64];
    int g = -1;
    cr_assert_eq(conv("\\ISO 2022 IR 87", "\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B", out, sizeof(out),
                      used, &g),
                 0);
    cr_assert_str_eq(out, "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81"
                          "\x86");
    cr_assert_eq(
        conv("\\ISO 2022 IR 149", "\x1b$)C\xb1\xe8\xc8\xf1\xc1\xdf", out, sizeof(out), used, &g),
        0);
    cr_assert_str_eq(out, "\xea\xb9\x80\xed\x9d\xac\xec\xa4\x91");
}

Test(charset, truncation_at_character_boundary)
{
    char out[8], used[64];
    int g;
    /* 3 ideographs = 9 bytes of UTF-8 do not fit in 7 */
    cr_assert_eq(conv("GB18030", "\xd5\xc5\xc8\xfd\xc8\xfd", out, sizeof(out), used, &g), 0);
    cr_assert_str_eq(out, "\xe5\xbc\xa0\xe4\xb8\x89");
}

Test(charset, failures_give_ascii_subset)
{
    char out[64], used[64];
    int g;
    cr_assert_eq(conv("ISO_IR 192",
                      "Ab\xff\xfe"
                      "cd",
                      out, sizeof(out), used, &g),
                 HR_ECHARSET);
    cr_assert_str_eq(out, "Abcd");
    cr_assert_eq(conv("KLINGON", "Qapla'", out, sizeof(out), used, &g), HR_ECHARSET);
    cr_assert_str_eq(out, "Qapla'");
    cr_assert_eq(conv("\\ISO 2022 IR 87", "x\x1bZZ", out, sizeof(out), used, &g), HR_ECHARSET);
    cr_assert_eq(dcm_charset_to_utf8("", NULL, 0, out, sizeof(out), NULL, 0, NULL), 0);
    cr_assert_str_eq(out, "");
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *b = ts_read_file(path, len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

/* Expected names from pydicom, except chrX1/chrX2 where the stored value ends
 * with an empty component group ("...=") that pydicom drops and DCMTK and huren
 * keep (only padding is trimmed). */
static const struct {
    const char *file;
    const char *name;
} k_pydicom_names[] = {
    {"chrArab.dcm", "قباني^لنزار"},
    {"chrFren.dcm", "Buc^Jérôme"},
    {"chrFrenMulti.dcm", "Buc^Jérôme"},
    {"chrGerm.dcm", "Äneas^Rüdiger"},
    {"chrGreek.dcm", "Διονυσιος"},
    {"chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"},
    {"chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"},
    {"chrHbrw.dcm", "שרון^דבורה"},
    {"chrI2.dcm", "Hong^Gildong=洪^吉洞=홍^길동"},
    {"chrJapMulti.dcm", "やまだ^たろう"},
    {"chrJapMultiExplicitIR6.dcm", "やまだ^たろう"},
    {"chrKoreanMulti.dcm", "김희중"},
    {"chrRuss.dcm", "Люкceмбypг"},
    {"chrSQEncoding.dcm", ""},
    {"chrSQEncoding1.dcm", ""},
    {"chrX1.dcm", "Wang^XiaoDong=王^小東="},
    {"chrX2.dcm", "Wang^XiaoDong=王^小东="},
};

Test(charset, pydicom_charset_files)
{
    for (size_t i = 0; i < sizeof(k_pydicom_names) / sizeof(k_pydicom_names[0]); i++) {
        char path[512];
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", PYDICOM_CHARSET_DIR, k_pydicom_names[i].file);
        uint8_t *b = slurp(path, &len);
        dcm_attrs a;
        dcm_scanner *s = dcm_scanner_new(DCM_SCAN_AUTO, NULL, &a);
        cr_assert_eq(dcm_scanner_feed(s, b, len), 0, "%s", path);
        cr_assert_eq(dcm_scanner_finish(s), DCM_SCAN_END, "%s: %s", path, dcm_scanner_error(s));
        cr_expect_str_eq(a.patient_name, k_pydicom_names[i].name, "%s", k_pydicom_names[i].file);
        cr_expect_eq(a.charset_guessed, 0, "%s", k_pydicom_names[i].file);
        dcm_scanner_free(s);
        free(b);
    }
}
