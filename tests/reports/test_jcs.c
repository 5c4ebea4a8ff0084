/* reports/jcs.c: RFC 8785 canonical JSON, with the RFC's own examples that
 * use no fractional numbers. */
#include "reports/jws.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* JCS of the JSON text in (parsed by jansson), compared with want. */
static void expect_jcs(const char *in, const char *want)
{
    json_error_t je;
    json_t *doc = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    cr_assert_not_null(doc, "%s: %s", in, je.text);
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(rpt_jcs(doc, &out, &len), 0, "%s", in);
    cr_expect_eq(len, strlen(want), "length %zu, want %zu: %s", len, strlen(want), out);
    cr_expect_str_eq(out, want);
    free(out);
    json_decref(doc);
}

/* RFC 8785 section 3.2.3: sorting by UTF-16 code units. */
Test(jcs, rfc8785_sort_order)
{
    expect_jcs("{\n"
               "  \"\\u20ac\": \"Euro Sign\",\n"
               "  \"\\r\": \"Carriage Return\",\n"
               "  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n"
               "  \"1\": \"One\",\n"
               "  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n"
               "  \"\\u0080\": \"Control\",\n"
               "  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n"
               "}",
               "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
               "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro "
               "Sign\",\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
               "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

/* RFC 8785 section 3.2.2 (the example of the introduction) without its
 * "numbers" member, which holds fractions huren never signs. */
Test(jcs, rfc8785_strings_and_literals)
{
    expect_jcs("{\n"
               "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
               "  \"literals\": [null, true, false]\n"
               "}",
               "{\"literals\":[null,true,false],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\"
               "\\\"/\"}");
}

/* RFC 8785 appendix: the fractional numbers of the same example are refused,
 * as every real is (the payload has integers only). */
Test(jcs, reals_are_refused)
{
    json_t *doc = json_loads("{\"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3]}", 0, NULL);
    char *out = (char *)"untouched";
    size_t len = 7;
    cr_assert_not_null(doc);
    cr_expect_eq(rpt_jcs(doc, &out, &len), -EINVAL);
    json_decref(doc);
    doc = json_pack("[i, f]", 1, 0.0);
    cr_expect_eq(rpt_jcs(doc, &out, &len), -EINVAL);
    json_decref(doc);
}

/* Chinese names sort by code unit (影 U+5F71 < 患 U+60A3 < 报 U+62A5); a
 * character beyond the BMP (U+20000, surrogates D840 DC00) sorts before
 * U+FF01 although its code point is larger: UTF-16 order, not code point. */
Test(jcs, chinese_and_supplementary_keys)
{
    expect_jcs("{\"报告\": \"报告正文\", \"患者\": {\"姓名\": \"张三\", \"性别\": \"男\"}, "
               "\"！\": 1, \"\xf0\xa0\x80\x80\": 2, \"影像\": [\"甲\", \"乙\"], \"a\": 0}",
               "{\"a\":0,\"影像\":[\"甲\",\"乙\"],\"患者\":{\"姓名\":\"张三\",\"性别\":\"男\"},"
               "\"报告\":\"报告正文\",\"\xf0\xa0\x80\x80\":2,\"！\":1}");
}

/* Keys where one is a prefix of another, and byte order differs from UTF-16
 * order only above U+FFFF. */
Test(jcs, prefixes_nesting_and_integers)
{
    expect_jcs("{\"ab\": 1, \"a\": {\"z\": [], \"y\": {}}, \"\": -9007199254740991, \"b\": "
               "9007199254740991, \"c\": 0}",
               "{\"\":-9007199254740991,\"a\":{\"y\":{},\"z\":[]},\"ab\":1,\"b\":"
               "9007199254740991,\"c\":0}");
    /* beyond 2^53 an IEEE double cannot hold the integer: refused */
    json_t *big = json_pack("{s:I}", "n", (json_int_t)9007199254740992LL);
    char *out;
    size_t len;
    cr_expect_eq(rpt_jcs(big, &out, &len), -EINVAL);
    json_decref(big);
}

/* Controls are escaped as JSON.stringify does: the short forms, else \u00xx
 * in lowercase; DEL and U+2028 are written as they are; a NUL inside a
 * string is \u0000. */
Test(jcs, control_escapes)
{
    expect_jcs("[\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u2028\", \"a\\u0000b\"]",
               "[\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xe2\x80\xa8\",\"a\\u0000b\"]");
}

/* Depth is bounded: 200 nested arrays are refused, not recursed into. */
Test(jcs, depth_bound)
{
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < 200; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    char *out;
    size_t len;
    cr_expect_eq(rpt_jcs(root, &out, &len), -EINVAL);
    json_decref(root);
}
