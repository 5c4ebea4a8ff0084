/* MLLP frames and HL7 ACKs come from the network (the report sender's
 * peers, the MLLP listener to come): input = 1 byte of split size, then the
 * bytes fed to the decoder in pieces of that size; each complete message is
 * also read as an ACK. Aborts when the decoder consumes more than it was
 * given, reports need-more without consuming everything, or a message
 * re-framed and decoded again differs. */
#include "common/hr_err.h"
#include "gateway/mllp.h"
#include "reports/oru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void roundtrip(const uint8_t *m, size_t n)
{
    hr_buf f;
    gw_mllp_dec d;
    size_t used, len;
    hr_buf_init(&f, n + 3);
    if (gw_mllp_frame(m, n, &f) != 0)
        abort();
    gw_mllp_dec_init(&d, n ? n : 1);
    if (gw_mllp_feed(&d, f.data, f.len, &used) != GW_MLLP_MESSAGE || used != f.len)
        abort();
    const uint8_t *back = gw_mllp_message(&d, &len);
    if (len != n || (n && memcmp(back, m, n) != 0))
        abort();
    gw_mllp_dec_free(&d);
    hr_buf_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t step = (size_t)data[0] + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    gw_mllp_dec d;
    gw_mllp_dec_init(&d, 4096);
    for (size_t off = 0; off < n;) {
        size_t len = n - off < step ? n - off : step, used = 0;
        int rc = gw_mllp_feed(&d, p + off, len, &used);
        if (used > len)
            abort();
        off += used;
        if (rc < 0)
            break;
        if (rc == GW_MLLP_NEED_MORE && used != len)
            abort();
        if (rc == GW_MLLP_MESSAGE) {
            size_t ml;
            const uint8_t *m = gw_mllp_message(&d, &ml);
            rpt_hl7_ack ack;
            if (rpt_hl7_ack_parse(m, ml, &ack) == 0)
                rpt_hl7_ack_ok(&ack, "HR0123456789abcdef01");
            if (!memchr(m, 0x0B, ml) && !memchr(m, 0x1C, ml))
                roundtrip(m, ml);
        }
    }
    gw_mllp_dec_free(&d);
    return 0;
}
