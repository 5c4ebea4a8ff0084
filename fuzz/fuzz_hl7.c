/* HL7 v2 messages come from the network (the MLLP listener): input = 1 byte
 * choosing the default charset and the split size, then the message. The
 * message is parsed whole and fed to the resumable parser in pieces of that
 * size; aborts when the parser consumes more than it was given, reports
 * need-more without consuming everything, or the two results differ (error
 * code, ACK code, every value). Each outcome is answered with an ACK, and a
 * message's ACK must parse again as an ACK of the same control id. */
#include "common/hr_err.h"
#include "reports/hl7.h"
#include "reports/oru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_charsets[] = {NULL, "UNICODE UTF-8", "GB 18030-2000", "8859/1"};

static void dump(const rpt_hl7_msg *m, hr_buf *b)
{
    for (size_t i = 0; i < rpt_hl7_nseg(m); i++) {
        const rpt_hl7_seg *s = rpt_hl7_seg_at(m, i);
        hr_buf_append(b, rpt_hl7_seg_name(s), 3);
        for (int f = 1; f <= rpt_hl7_nfields(s); f++) {
            int nr = rpt_hl7_reps(s, f);
            for (int r = 0; r < (nr ? nr : 1); r++)
                for (int c = 0; c <= rpt_hl7_ncomps(s, f, r); c++)
                    for (int u = 0; u <= (c ? 2 : 0); u++) {
                        const char *v = rpt_hl7_get(s, f, r, c, u);
                        hr_buf_append(b, "|", 1);
                        hr_buf_append(b, v, strlen(v));
                    }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *cs = k_charsets[data[0] & 3];
    size_t step = (size_t)(data[0] >> 2) + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    rpt_hl7_msg *whole = NULL;
    rpt_hl7_err we;
    int wrc = rpt_hl7_parse(p, n, cs, &whole, &we);
    if ((wrc == 0) != (whole != NULL))
        abort();
    if (wrc && strcmp(we.ack, "AE") != 0 && strcmp(we.ack, "AR") != 0)
        abort();

    rpt_hl7_parser ps;
    rpt_hl7_parser_init(&ps, cs, 0);
    int rc = 0;
    for (size_t off = 0; off < n && rc >= 0;) {
        size_t len = n - off < step ? n - off : step, used = 0;
        rc = rpt_hl7_parser_feed(&ps, p + off, len, &used);
        if (used > len)
            abort();
        if (rc == RPT_HL7_NEED_MORE && used != len)
            abort();
        off += used;
    }
    rpt_hl7_msg *m = NULL;
    if (rc >= 0)
        rc = rpt_hl7_parser_finish(&ps, &m);
    if (rc != wrc || (rc && (ps.err.code != we.code || strcmp(ps.err.ack, we.ack) != 0)))
        abort();
    if (m) {
        hr_buf a, b;
        hr_buf_init(&a, 1u << 28);
        hr_buf_init(&b, 1u << 28);
        dump(whole, &a);
        dump(m, &b);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            abort();
        hr_buf_free(&a);
        hr_buf_free(&b);
    }
    rpt_hl7_parser_free(&ps);
    rpt_hl7_free(m);

    /* the ACK, and reading it back */
    hr_buf ack;
    hr_buf_init(&ack, RPT_HL7_ACK_MAX);
    int arc = rpt_hl7_ack_build(whole, wrc ? we.ack : "AA", wrc ? &we : NULL, "COUNTY",
                                1796292900000LL, &ack);
    if (arc != 0) /* echoed values are cut: an ACK can always be built */
        abort();
    if (arc == 0) {
        rpt_hl7_ack r;
        if (rpt_hl7_ack_parse(ack.data, ack.len, &r) != 0)
            abort();
        if (whole && strlen(rpt_hl7_get(rpt_hl7_msh(whole), 10, 0, 0, 0)) < 40 &&
            !strpbrk(rpt_hl7_get(rpt_hl7_msh(whole), 10, 0, 0, 0), "\r\n") &&
            strcmp(r.control_id, rpt_hl7_get(rpt_hl7_msh(whole), 10, 0, 0, 0)) != 0 &&
            strcmp(rpt_hl7_charset(whole), "UNICODE UTF-8") == 0)
            abort();
    }
    hr_buf_free(&ack);
    rpt_hl7_free(whole);
    return 0;
}
