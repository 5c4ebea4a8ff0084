/* libFuzzer target for dicom/pdu.c: frames PDUs, runs every body parser and
 * checks that whatever parses re-encodes to bytes that parse the same. */
#include "dicom/pdu.h"
#include "dicom/uids.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static dcm_assoc_rq rq, rq2;
static dcm_assoc_ac ac, ac2;

static void check_rq(const uint8_t *body, uint32_t len)
{
    hr_buf out;

    if (dcm_pdu_parse_assoc_rq(body, len, &rq) != 0)
        return;
    hr_buf_init(&out, 1 << 22);
    if (dcm_pdu_encode_assoc_rq(&rq, &out) != 0 ||
        dcm_pdu_parse_assoc_rq(out.data + 6, (uint32_t)out.len - 6, &rq2) != 0)
        abort();
    if (rq.protocol_version == 0)
        rq.protocol_version = 1; /* the encoder writes 1 for 0 */
    rq.has_user_identity = 0;    /* parsed for bounds, never encoded */
    rq.user_identity_type = 0;
    if (memcmp(&rq, &rq2, sizeof(rq)) != 0)
        abort();
    hr_buf_free(&out);
}

static void check_ac(const uint8_t *body, uint32_t len)
{
    hr_buf out;

    if (dcm_pdu_parse_assoc_ac(body, len, &ac) != 0)
        return;
    hr_buf_init(&out, 1 << 22);
    if (dcm_pdu_encode_assoc_ac(&ac, &out) != 0 ||
        dcm_pdu_parse_assoc_ac(out.data + 6, (uint32_t)out.len - 6, &ac2) != 0)
        abort();
    for (int i = 0; i < ac.n_pc; i++)
        if (ac.pc[i].result != DCM_PC_ACCEPT && ac.pc[i].ts[0] == 0)
            strcpy(ac.pc[i].ts, DCM_TS_IMPLICIT_LE);
    if (memcmp(&ac, &ac2, sizeof(ac)) != 0)
        abort();
    hr_buf_free(&out);
}

static void run_body(const uint8_t *body, uint32_t len)
{
    uint8_t a, b, c;
    uint32_t off = 0;
    dcm_pdv v;
    int rc;

    check_rq(body, len);
    check_ac(body, len);
    dcm_pdu_parse_assoc_rj(body, len, &a, &b, &c);
    dcm_pdu_parse_abort(body, len, &a, &b);
    while ((rc = dcm_pdata_next(body, len, &off, &v)) == 1)
        if (v.data < body || v.data + v.len > body + len || off > len)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    uint8_t type;
    uint32_t bl;

    /* a stream of PDUs, as read from a socket */
    while (off < size && dcm_pdu_frame(data + off, size - off, 1u << 20, &type, &bl) == 1) {
        if (DCM_PDU_HEADER_LEN + (size_t)bl > size - off)
            abort();
        run_body(data + off + DCM_PDU_HEADER_LEN, bl);
        off += DCM_PDU_HEADER_LEN + (size_t)bl;
    }
    /* the whole input as one body */
    if (size <= UINT32_MAX)
        run_body(data, (uint32_t)size);
    return 0;
}
