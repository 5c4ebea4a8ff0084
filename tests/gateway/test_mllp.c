/* gateway/mllp.c: frames, and the resumable decoder fed whole, byte by byte,
 * several messages per read, NULs between frames, and garbage. */
#include "common/hr_err.h"
#include "gateway/mllp.h"

#include <criterion/criterion.h>
#include <string.h>

Test(mllp, frame)
{
    hr_buf b;
    hr_buf_init(&b, 64);
    cr_assert_eq(gw_mllp_frame((const uint8_t *)"MSH|x", 5, &b), 0);
    cr_expect_eq(b.len, 8);
    cr_expect(memcmp(b.data, "\x0bMSH|x\x1c\x0d", 8) == 0);
    hr_buf_free(&b);
    hr_buf_init(&b, 7);
    cr_expect_eq(gw_mllp_frame((const uint8_t *)"MSH|x", 5, &b), HR_ETOOBIG);
    hr_buf_free(&b);
}

/* Feeds in pieces of step bytes; collects the messages joined by '#'. */
static int feed_all(const char *in, size_t n, size_t step, char *out, size_t cap, size_t max)
{
    gw_mllp_dec d;
    gw_mllp_dec_init(&d, max);
    out[0] = '\0';
    int rc = 0;
    for (size_t off = 0; off < n && rc >= 0;) {
        size_t len = n - off < step ? n - off : step, used;
        rc = gw_mllp_feed(&d, (const uint8_t *)in + off, len, &used);
        cr_assert_leq(used, len);
        off += used;
        if (rc == GW_MLLP_MESSAGE) {
            size_t ml;
            const uint8_t *m = gw_mllp_message(&d, &ml);
            strncat(out, (const char *)m, ml < cap - strlen(out) - 2 ? ml : 0);
            strcat(out, "#");
        } else if (rc == GW_MLLP_NEED_MORE) {
            cr_assert_eq(used, len, "need-more consumes everything");
        }
    }
    gw_mllp_dec_free(&d);
    return rc;
}

Test(mllp, decode_any_split)
{
    const char in[] = "\x0b"
                      "MSH|1\rPID|a\r\x1c\x0d"
                      "\0\0\r\n"
                      "\x0bMSH|2\r\x1c\x0d"
                      "\x0b\x1c\x0d";
    char out[256];
    for (size_t step = 1; step <= sizeof(in); step++) {
        int rc = feed_all(in, sizeof(in) - 1, step, out, sizeof(out), 1024);
        cr_expect(rc >= 0, "step %zu: %d", step, rc);
        cr_expect_str_eq(out, "MSH|1\rPID|a\r#MSH|2\r##", "step %zu", step);
    }
}

Test(mllp, decode_errors)
{
    char out[256];
    /* a byte outside a frame */
    cr_expect_eq(feed_all("x\x0bMSH\x1c\x0d", 7, 64, out, sizeof(out), 1024), HR_EPARSE);
    /* 0x1C not followed by CR */
    cr_expect_eq(feed_all("\x0bMSH\x1cX", 6, 64, out, sizeof(out), 1024), HR_EPARSE);
    /* a start block inside a message */
    cr_expect_eq(feed_all("\x0bMSH\x0bMSH\x1c\x0d", 10, 3, out, sizeof(out), 1024), HR_EPARSE);
    /* longer than the cap, whole or in pieces */
    cr_expect_eq(feed_all("\x0b"
                          "0123456789\x1c\x0d",
                          13, 64, out, sizeof(out), 8),
                 HR_ETOOBIG);
    cr_expect_eq(feed_all("\x0b"
                          "0123456789\x1c\x0d",
                          13, 1, out, sizeof(out), 8),
                 HR_ETOOBIG);
    /* exactly the cap is fine */
    cr_expect_eq(feed_all("\x0b"
                          "01234567\x1c\x0d",
                          11, 2, out, sizeof(out), 8),
                 GW_MLLP_MESSAGE);
    cr_expect_str_eq(out, "01234567#");
    /* a failed decoder stays failed */
    gw_mllp_dec d;
    size_t used;
    gw_mllp_dec_init(&d, 16);
    cr_expect_eq(gw_mllp_feed(&d, (const uint8_t *)"z", 1, &used), HR_EPARSE);
    cr_expect_eq(gw_mllp_feed(&d, (const uint8_t *)"\x0b", 1, &used), HR_EPARSE);
    gw_mllp_dec_reset(&d);
    cr_expect_eq(gw_mllp_feed(&d, (const uint8_t *)"\x0b", 1, &used), GW_MLLP_NEED_MORE);
    gw_mllp_dec_free(&d);
}
