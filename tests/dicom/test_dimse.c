/* Tests for dicom/dimse.c: exact encodings, round trips, malformed input. */
#include "dicom/dimse.h"
#include "dicom/uids.h"
#include "common/hr_bytes.h"
#include "common/hr_err.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define FIND_STUDY "1.2.840.10008.5.1.4.1.2.2.1"
#define MOVE_STUDY "1.2.840.10008.5.1.4.1.2.2.2"
#define GET_STUDY  "1.2.840.10008.5.1.4.1.2.2.3"

/* Encodes c, checks the structural rules (group length first and right,
 * ascending tags, even lengths), parses it back and compares. */
static void round_trip(const dcm_command *c, hr_buf *out)
{
    dcm_command back;
    hr_buf_init(out, DCM_CMD_MAX_LEN);
    cr_assert_eq(dcm_command_encode(c, out), 0);
    cr_assert_geq(out->len, 12);
    cr_assert_eq(memcmp(out->data, "\0\0\0\0\4\0\0\0", 8), 0);
    cr_assert_eq(hr_rd32(out->data + 8, 0), out->len - 12);
    uint32_t prev = 0;
    for (size_t off = 0; off < out->len;) {
        uint16_t g = (uint16_t)(out->data[off] | (out->data[off + 1] << 8));
        uint16_t e = (uint16_t)(out->data[off + 2] | (out->data[off + 3] << 8));
        uint32_t l = hr_rd32(out->data + off + 4, 0);
        cr_assert_eq(g, 0);
        cr_assert(off == 0 || e > prev, "tag order: %04x after %04x", e, prev);
        cr_assert_eq(l & 1, 0, "odd length for (0000,%04x)", e);
        prev = e;
        off += 8 + l;
        cr_assert_leq(off, out->len);
    }
    cr_assert_eq(dcm_command_parse(out->data, out->len, &back), 0);
    cr_assert_eq(memcmp(c, &back, sizeof(back)), 0);
}

static dcm_command base(uint16_t cf)
{
    dcm_command c;
    memset(&c, 0, sizeof(c));
    c.command_field = cf;
    c.data_set_type = DCM_DATASET_NONE;
    return c;
}

Test(dimse, c_echo_rsp_exact_bytes)
{
    dcm_command c = base(DCM_C_ECHO_RSP);
    hr_buf out;
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, /* len 66 */
        0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00, '1',  '.',  '2',  '.',  '8',
        '4',  '0',  '.',  '1',  '0',  '0',  '0',  '8',  '.',  '1',  '.',  '1',  0x00, /* NUL pad */
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x80, /* CommandField */
        0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00, /* MsgIdBeingRespondedTo */
        0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, /* no data set */
        0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, /* Status */
    };
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    c.message_id_responded = 7;
    strcpy(c.affected_sop_class, DCM_UID_VERIFICATION);
    round_trip(&c, &out);
    cr_assert_eq(out.len, sizeof(want));
    cr_assert_eq(memcmp(out.data, want, sizeof(want)), 0);
    hr_buf_free(&out);
}

Test(dimse, c_store_rq_and_rsp)
{
    hr_buf out;
    dcm_command c = base(DCM_C_STORE_RQ);
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY | DCM_CMD_HAS_MOVE_ORIGINATOR;
    c.message_id = 0xFFFF;
    c.priority = 0;
    c.data_set_type = 0x0000;
    strcpy(c.affected_sop_class, CT_STORAGE);
    strcpy(c.affected_sop_instance, "1.2.3.4.5.6.7.8.9");
    strcpy(c.move_originator_ae, "MOVER"); /* odd: space padded */
    c.move_originator_id = 42;
    round_trip(&c, &out);
    /* "MOVER " is in the buffer */
    cr_assert_not_null(memmem(out.data, out.len, "MOVER ", 6));
    hr_buf_free(&out);

    c = base(DCM_C_STORE_RSP);
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    c.message_id_responded = 1;
    c.status = DCM_STATUS_WARN_COERCION;
    strcpy(c.affected_sop_class, CT_STORAGE);
    strcpy(c.affected_sop_instance, "1.2.3");
    strcpy(c.error_comment, "coerced one value"); /* odd: space padded */
    round_trip(&c, &out);
    cr_assert_not_null(memmem(out.data, out.len, "coerced one value ", 18));
    hr_buf_free(&out);
}

Test(dimse, c_find_c_move_c_get_c_cancel)
{
    hr_buf out;
    dcm_command c = base(DCM_C_FIND_RQ);
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY;
    c.message_id = 3;
    c.priority = 2;
    c.data_set_type = 0x0102;
    strcpy(c.affected_sop_class, FIND_STUDY);
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(DCM_C_FIND_RSP);
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    c.message_id_responded = 3;
    c.status = DCM_STATUS_PENDING;
    c.data_set_type = 0x0102;
    strcpy(c.affected_sop_class, FIND_STUDY);
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(DCM_C_MOVE_RQ);
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY;
    c.message_id = 4;
    c.data_set_type = 0x0102;
    strcpy(c.affected_sop_class, MOVE_STUDY);
    strcpy(c.move_destination, "DEST_AE_16CHARSX");
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(DCM_C_MOVE_RSP);
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS | DCM_CMD_HAS_COUNTS;
    c.message_id_responded = 4;
    c.status = DCM_STATUS_PENDING;
    strcpy(c.affected_sop_class, MOVE_STUDY);
    c.n_remaining = 10;
    c.n_completed = 5;
    c.n_failed = 1;
    c.n_warning = 2;
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(DCM_C_GET_RSP);
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS | DCM_CMD_HAS_COUNTS;
    c.message_id_responded = 9;
    c.status = 0xB000;
    strcpy(c.affected_sop_class, GET_STUDY);
    c.n_completed = 65535;
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(DCM_C_CANCEL_RQ);
    c.flags = DCM_CMD_HAS_MSG_ID_RSP;
    c.message_id_responded = 4;
    round_trip(&c, &out);
    hr_buf_free(&out);

    c = base(0x0120); /* N-SET-RQ: requested SOP class/instance */
    c.flags = DCM_CMD_HAS_MSG_ID;
    c.message_id = 1;
    c.data_set_type = 0x0102;
    strcpy(c.requested_sop_class, "1.2.840.10008.5.1.1.40");
    strcpy(c.requested_sop_instance,
           "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24");
    round_trip(&c, &out);
    hr_buf_free(&out);
}

Test(dimse, is_response)
{
    cr_assert(dcm_command_is_response(DCM_C_STORE_RSP));
    cr_assert(dcm_command_is_response(DCM_C_ECHO_RSP));
    cr_assert(!dcm_command_is_response(DCM_C_STORE_RQ));
    cr_assert(!dcm_command_is_response(DCM_C_CANCEL_RQ));
}

/* ---- hand-built command sets -------------------------------------------- */

typedef struct cb {
    uint8_t d[70000];
    size_t n;
} cb;

static void put(cb *b, uint16_t group, uint16_t elem, const void *v, uint32_t len, uint32_t vl)
{
    uint8_t h[8] = {(uint8_t)group,       (uint8_t)(group >> 8), (uint8_t)elem,
                    (uint8_t)(elem >> 8), (uint8_t)vl,           (uint8_t)(vl >> 8),
                    (uint8_t)(vl >> 16),  (uint8_t)(vl >> 24)};
    memcpy(b->d + b->n, h, 8);
    memcpy(b->d + b->n + 8, v, len);
    b->n += 8 + len;
}

static void put_us(cb *b, uint16_t elem, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, 0, elem, x, 2, 2);
}

static void put_s(cb *b, uint16_t elem, const char *s)
{
    put(b, 0, elem, s, (uint32_t)strlen(s), (uint32_t)strlen(s));
}

Test(dimse, parse_padding_unknown_elements_and_defaults)
{
    cb b = {.n = 0};
    dcm_command c;
    put_s(&b, 0x0002, "1.2.840.10008.1.1\0");
    put_us(&b, 0x0100, DCM_C_STORE_RSP);
    put_s(&b, 0x0600, "  DEST  ");
    put(&b, 0, 0x0901, "\x10\x00\x10\x00", 4, 4); /* OffendingElement: skipped */
    put_s(&b, 0x0902, "bad thing happened    ");
    put_s(&b, 0x1000, "1.2.3 ");
    put_us(&b, 0x1022, 3);
    put_s(&b, 0x1030, "ORIG");
    put(&b, 0, 0x5010, "xx", 2, 2); /* unknown */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), 0);
    cr_assert_str_eq(c.affected_sop_class, DCM_UID_VERIFICATION);
    cr_assert_eq(c.command_field, DCM_C_STORE_RSP);
    cr_assert_str_eq(c.move_destination, "DEST");
    cr_assert_str_eq(c.error_comment, "bad thing happened");
    cr_assert_str_eq(c.affected_sop_instance, "1.2.3");
    cr_assert_eq(c.n_failed, 3);
    cr_assert(c.flags & DCM_CMD_HAS_COUNTS);
    cr_assert(c.flags & DCM_CMD_HAS_MOVE_ORIGINATOR);
    cr_assert_str_eq(c.move_originator_ae, "ORIG");
    cr_assert(!(c.flags & DCM_CMD_HAS_STATUS));
    /* (0000,0800) absent: no data set */
    cr_assert_eq(c.data_set_type, DCM_DATASET_NONE);
}

Test(dimse, long_strings)
{
    cb b = {.n = 0};
    dcm_command c;
    char s[200];

    /* error comment longer than LO: truncated */
    memset(s, 'e', 150);
    s[150] = 0;
    put_us(&b, 0x0100, DCM_C_STORE_RSP);
    put_s(&b, 0x0902, s);
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), 0);
    cr_assert_eq(strlen(c.error_comment), 64);

    /* UID of 64 passes, 65 fails */
    for (int k = 64; k <= 66; k++) {
        b.n = 0;
        memset(s, '1', (size_t)k);
        s[k] = 0;
        put_us(&b, 0x0100, DCM_C_STORE_RQ);
        put_s(&b, 0x1000, s);
        int rc = dcm_command_parse(b.d, b.n, &c);
        cr_assert_eq(rc, k == 64 ? 0 : HR_EPARSE, "uid %d: %d", k, rc);
    }
    /* AE of 17 fails */
    b.n = 0;
    put_us(&b, 0x0100, DCM_C_MOVE_RQ);
    put_s(&b, 0x0600, "AAAAAAAAAAAAAAAAA");
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    /* embedded NUL in a UID */
    b.n = 0;
    put_us(&b, 0x0100, DCM_C_STORE_RQ);
    put(&b, 0, 0x0002, "1.2\0.3", 6, 6);
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
}

Test(dimse, malformed)
{
    cb b = {.n = 0};
    dcm_command c;

    cr_assert_eq(dcm_command_parse(b.d, 0, &c), HR_EPARSE); /* empty: no CommandField */
    put_us(&b, 0x0110, 1);
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE); /* no CommandField */
    b.n = 0;
    put_us(&b, 0x0100, 1);
    put(&b, 0x0008, 0x0016, "1.2\0", 4, 4); /* not group 0000 */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    b.n = 0;
    put_us(&b, 0x0100, 1);
    put(&b, 0, 0x1000, "1.2\0", 4, 0xFFFFFFFF); /* undefined / huge length */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    b.n = 0;
    put_us(&b, 0x0100, 1);
    put(&b, 0, 0x1000, "1.2\0", 4, 5); /* one byte past the end */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    b.n = 0;
    put(&b, 0, 0x0100, "\1\0\0\0", 4, 4); /* US with length 4 */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    b.n = 0;
    put(&b, 0, 0x0000, "\1\0", 2, 2); /* group length not UL */
    put_us(&b, 0x0100, 1);
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    b.n = 0;
    put_us(&b, 0x0100, 1);
    b.d[b.n++] = 0; /* trailing partial header */
    cr_assert_eq(dcm_command_parse(b.d, b.n, &c), HR_EPARSE);
    /* too big */
    static uint8_t big[DCM_CMD_MAX_LEN + 1];
    cr_assert_eq(dcm_command_parse(big, sizeof(big), &c), HR_ETOOBIG);
}

Test(dimse, every_truncation)
{
    dcm_command c = base(DCM_C_MOVE_RSP), back;
    hr_buf out;
    c.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS | DCM_CMD_HAS_COUNTS;
    strcpy(c.affected_sop_class, MOVE_STUDY);
    strcpy(c.error_comment, "x");
    round_trip(&c, &out);
    /* element boundaries */
    int boundary[64] = {0}, nb = 0;
    for (size_t off = 0; off < out.len; off += 8 + hr_rd32(out.data + off + 4, 0))
        boundary[nb++] = (int)off;
    for (size_t l = 0; l < out.len; l++) {
        int rc = dcm_command_parse(out.data, l, &back);
        int at_boundary = 0;
        for (int i = 0; i < nb; i++)
            at_boundary |= boundary[i] == (int)l;
        if (!at_boundary)
            cr_assert_eq(rc, HR_EPARSE, "len %zu", l);
        else
            cr_assert(rc == 0 || rc == HR_EPARSE);
    }
    hr_buf_free(&out);
}

Test(dimse, encode_errors)
{
    dcm_command c = base(DCM_C_STORE_RQ);
    hr_buf out;

    hr_buf_init(&out, 30);
    strcpy(c.affected_sop_class, CT_STORAGE);
    cr_assert_eq(dcm_command_encode(&c, &out), HR_ETOOBIG);
    cr_assert_eq(out.len, 0);
    hr_buf_free(&out);
    hr_buf_init(&out, 4096);
    memset(c.affected_sop_instance, '1', sizeof(c.affected_sop_instance)); /* unterminated */
    cr_assert_eq(dcm_command_encode(&c, &out), HR_EPARSE);
    cr_assert_eq(out.len, 0);
    c.affected_sop_instance[0] = 0;
    memset(c.move_destination, 'A', sizeof(c.move_destination));
    cr_assert_eq(dcm_command_encode(&c, &out), HR_EPARSE);
    hr_buf_free(&out);
}

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

Test(dimse, random_mutations)
{
    dcm_command seeds[3], c, back;
    hr_buf enc[3], out;
    static uint8_t m[4096];

    seeds[0] = base(DCM_C_STORE_RQ);
    seeds[0].flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY | DCM_CMD_HAS_MOVE_ORIGINATOR;
    strcpy(seeds[0].affected_sop_class, CT_STORAGE);
    strcpy(seeds[0].affected_sop_instance, "1.2.3.4");
    strcpy(seeds[0].move_originator_ae, "ORIGIN");
    seeds[1] = base(DCM_C_MOVE_RSP);
    seeds[1].flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS | DCM_CMD_HAS_COUNTS;
    strcpy(seeds[1].error_comment, "comment");
    strcpy(seeds[1].move_destination, "DEST");
    seeds[2] = base(DCM_C_ECHO_RSP);
    seeds[2].flags = DCM_CMD_HAS_STATUS;
    strcpy(seeds[2].requested_sop_class, "1.2");
    for (int i = 0; i < 3; i++)
        round_trip(&seeds[i], &enc[i]);

    for (int iter = 0; iter < 50000; iter++) {
        int s = (int)(rnd() % 3);
        size_t n = enc[s].len;
        memcpy(m, enc[s].data, n);
        int k = 1 + (int)(rnd() % 6);
        for (int j = 0; j < k; j++) {
            size_t pos = rnd() % n;
            if (rnd() & 1)
                m[pos] = (uint8_t)rnd();
            else
                m[pos] = (rnd() & 1) ? 0xFF : 0x00;
        }
        if (rnd() % 8 == 0)
            n = rnd() % n;
        if (dcm_command_parse(m, n, &c) != 0)
            continue;
        /* whatever parses re-encodes to something that parses the same */
        hr_buf_init(&out, DCM_CMD_MAX_LEN);
        cr_assert_eq(dcm_command_encode(&c, &out), 0);
        cr_assert_eq(dcm_command_parse(out.data, out.len, &back), 0);
        if (memcmp(&c, &back, sizeof(c)) != 0) {
            const uint8_t *x = (const uint8_t *)&c, *y = (const uint8_t *)&back;
            for (size_t q = 0; q < sizeof(c); q++)
                if (x[q] != y[q])
                    fprintf(stderr, "diff at %zu: %02x %02x\n", q, x[q], y[q]);
            for (size_t q = 0; q < n; q++)
                fprintf(stderr, "%02x", m[q]);
            fprintf(stderr, "\n");
        }
        cr_assert_eq(memcmp(&c, &back, sizeof(c)), 0, "iteration %d", iter);
        hr_buf_free(&out);
    }
    for (int i = 0; i < 3; i++)
        hr_buf_free(&enc[i]);
}
