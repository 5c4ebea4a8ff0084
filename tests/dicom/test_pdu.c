/* Tests for dicom/pdu.c: round trips, malformed input, and interoperability
 * with real DCMTK peers (echoscu, storescu) over a loopback socket. */
#include "dicom/pdu.h"
#include "dicom/dimse.h"
#include "dicom/uids.h"
#include "common/hr_err.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CT_SMALL     "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm"
#define CT_STORAGE   "1.2.840.10008.5.1.4.1.1.2"
#define DCMTK_IMPL   "1.2.276.0.7230010.3.0.3.6.7"
#define PEER_TIMEOUT 20

/* A-ASSOCIATE-RQ captured from `echoscu -aet TESTSCU -aec HUREN` (DCMTK 3.6.7). */
static const char echoscu_rq_hex[] = "0100000000cd00010000485552454e2020202020202020202020544553545"
                                     "34355202020202020202020000000000000"
                                     "0000000000000000000000000000000000000000000000000000100000153"
                                     "12e322e3834302e31303030382e332e312e"
                                     "312e312000002e0100ff0030000011312e322e3834302e31303030382e312"
                                     "e3140000011312e322e3834302e31303030"
                                     "382e312e325000003a51000004000040005200001b312e322e3237362e302"
                                     "e373233303031302e332e302e332e362e37"
                                     "5500000f4f464649535f44434d544b5f333637";

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* ---- byte builder for hand-made (often malformed) PDUs ------------------ */

typedef struct bb {
    uint8_t d[300000];
    size_t n;
} bb;

static void bb_put(bb *b, const void *p, size_t n)
{
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void bb_u8(bb *b, uint8_t v)
{
    b->d[b->n++] = v;
}

static void bb_u16(bb *b, uint16_t v)
{
    bb_u8(b, (uint8_t)(v >> 8));
    bb_u8(b, (uint8_t)v);
}

static void bb_u32(bb *b, uint32_t v)
{
    bb_u16(b, (uint16_t)(v >> 16));
    bb_u16(b, (uint16_t)v);
}

static size_t bb_begin(bb *b, uint8_t type)
{
    size_t at = b->n;
    bb_u8(b, type);
    bb_u8(b, 0);
    bb_u16(b, 0);
    return at;
}

static void bb_end(bb *b, size_t at)
{
    size_t l = b->n - at - 4;
    b->d[at + 2] = (uint8_t)(l >> 8);
    b->d[at + 3] = (uint8_t)l;
}

static void bb_str_item(bb *b, uint8_t type, const char *s)
{
    size_t at = bb_begin(b, type);
    bb_put(b, s, strlen(s));
    bb_end(b, at);
}

static void bb_fixed(bb *b, const char *called16, const char *calling16)
{
    bb_u16(b, 1);
    bb_u16(b, 0);
    bb_put(b, called16, 16);
    bb_put(b, calling16, 16);
    for (int i = 0; i < 32; i++)
        bb_u8(b, 0);
}

/* Offsets (in the body) of interesting items of the canonical RQ. */
typedef struct rq_offsets {
    size_t pc, abs, ts, ui, maxlen, role, uid_rq, ext;
} rq_offsets;

/* Canonical A-ASSOCIATE-RQ body exercising every sub-item. */
static void build_rq(bb *b, int npc, int nts, rq_offsets *o)
{
    rq_offsets tmp;
    if (!o)
        o = &tmp;
    b->n = 0;
    bb_fixed(b, "  HUREN         ", "MODALITY1       ");
    bb_str_item(b, 0x10, DCM_UID_APP_CONTEXT);
    for (int i = 0; i < npc; i++) {
        size_t pc = bb_begin(b, 0x20);
        if (i == 0)
            o->pc = pc;
        bb_u8(b, (uint8_t)(2 * i + 1));
        bb_u8(b, 0);
        bb_u8(b, 0);
        bb_u8(b, 0);
        if (i == 0)
            o->abs = b->n;
        bb_str_item(b, 0x30, CT_STORAGE);
        if (i == 0)
            o->ts = b->n;
        for (int j = 0; j < nts; j++)
            bb_str_item(b, 0x40, j == 0 ? DCM_TS_EXPLICIT_LE : DCM_TS_IMPLICIT_LE);
        bb_end(b, pc);
    }
    o->ui = bb_begin(b, 0x50);
    o->maxlen = b->n;
    size_t s = bb_begin(b, 0x51);
    bb_u32(b, 32768);
    bb_end(b, s);
    bb_str_item(b, 0x52, "1.2.3.4.5");
    s = bb_begin(b, 0x53);
    bb_u16(b, 3);
    bb_u16(b, 1);
    bb_end(b, s);
    o->role = b->n;
    s = bb_begin(b, 0x54);
    bb_u16(b, (uint16_t)strlen(CT_STORAGE));
    bb_put(b, CT_STORAGE, strlen(CT_STORAGE));
    bb_u8(b, 0);
    bb_u8(b, 1);
    bb_end(b, s);
    bb_str_item(b, 0x55, "TESTVER_1");
    o->ext = b->n;
    s = bb_begin(b, 0x56); /* SOP class extended negotiation: skipped */
    bb_u16(b, 3);
    bb_put(b, "1.2", 3);
    bb_put(b, "\x01\x00", 2);
    bb_end(b, s);
    s = bb_begin(b, 0x57); /* common extended negotiation: skipped */
    bb_put(b,
           "\x00\x03"
           "1.2"
           "\x00\x00"
           "\x00\x00",
           9);
    bb_end(b, s);
    o->uid_rq = b->n;
    s = bb_begin(b, 0x58);
    bb_u8(b, 2); /* username and passcode */
    bb_u8(b, 1);
    bb_u16(b, 4);
    bb_put(b, "user", 4);
    bb_u16(b, 6);
    bb_put(b, "secret", 6);
    bb_end(b, s);
    bb_end(b, o->ui);
}

static dcm_assoc_rq *rq_alloc(void)
{
    dcm_assoc_rq *rq = calloc(1, sizeof(*rq));
    cr_assert_not_null(rq);
    return rq;
}

static dcm_assoc_ac *ac_alloc(void)
{
    dcm_assoc_ac *ac = calloc(1, sizeof(*ac));
    cr_assert_not_null(ac);
    return ac;
}

/* ---- framing ------------------------------------------------------------ */

Test(pdu_frame, needs_more_then_whole)
{
    uint8_t p[10] = {0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    uint8_t type = 0;
    uint32_t bl = 0;

    for (size_t i = 0; i < sizeof(p); i++)
        cr_assert_eq(dcm_pdu_frame(p, i, 1024, &type, &bl), 0, "len %zu", i);
    cr_assert_eq(dcm_pdu_frame(p, sizeof(p), 1024, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_RELEASE_RQ);
    cr_assert_eq(bl, 4);
}

Test(pdu_frame, bad_type_and_too_big)
{
    uint8_t p[6] = {0x00, 0, 0, 0, 0, 4};
    uint8_t type;
    uint32_t bl;

    cr_assert_eq(dcm_pdu_frame(p, 6, 1024, &type, &bl), HR_EPROTO);
    p[0] = 0x08;
    cr_assert_eq(dcm_pdu_frame(p, 1, 1024, &type, &bl), HR_EPROTO);
    p[0] = 0xFF;
    cr_assert_eq(dcm_pdu_frame(p, 6, 1024, &type, &bl), HR_EPROTO);
    /* declared length checked as soon as the header is in */
    uint8_t big[6] = {0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    cr_assert_eq(dcm_pdu_frame(big, 6, 1u << 20, &type, &bl), HR_ETOOBIG);
    cr_assert_eq(dcm_pdu_frame(big, 5, 1u << 20, &type, &bl), 0);
    uint8_t edge[6] = {0x04, 0, 0, 0, 0x04, 0x01};
    cr_assert_eq(dcm_pdu_frame(edge, 6, 1024, &type, &bl), HR_ETOOBIG);
    cr_assert_eq(dcm_pdu_frame(edge, 6, 1025, &type, &bl), 0);
    for (uint8_t t = 1; t <= 7; t++) {
        uint8_t q[6] = {t, 0, 0, 0, 0, 0};
        cr_assert_eq(dcm_pdu_frame(q, 6, 0, &type, &bl), 1);
        cr_assert_eq(type, t);
        cr_assert_eq(bl, 0);
    }
}

/* ---- A-ASSOCIATE-RQ ----------------------------------------------------- */

Test(pdu_rq, parses_dcmtk_echoscu_bytes)
{
    uint8_t p[512];
    size_t n = unhex(echoscu_rq_hex, p);
    uint8_t type;
    uint32_t bl;
    dcm_assoc_rq *rq = rq_alloc();

    cr_assert_eq(dcm_pdu_frame(p, n, 65536, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_ASSOC_RQ);
    cr_assert_eq(bl + 6, n);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(p + 6, bl, rq), 0);
    cr_assert_eq(rq->protocol_version, 1);
    cr_assert_str_eq(rq->called_ae, "HUREN");
    cr_assert_str_eq(rq->calling_ae, "TESTSCU");
    cr_assert_str_eq(rq->app_context, DCM_UID_APP_CONTEXT);
    cr_assert_eq(rq->n_pc, 1);
    cr_assert_eq(rq->pc[0].id, 1);
    cr_assert_str_eq(rq->pc[0].abstract_syntax, DCM_UID_VERIFICATION);
    cr_assert_eq(rq->pc[0].n_ts, 1);
    cr_assert_str_eq(rq->pc[0].ts[0], DCM_TS_IMPLICIT_LE);
    cr_assert_eq(rq->max_pdu, 16384);
    cr_assert_str_eq(rq->impl_class_uid, DCMTK_IMPL);
    cr_assert_str_eq(rq->impl_version, "OFFIS_DCMTK_367");
    cr_assert_eq(rq->has_async, 0);
    cr_assert_eq(rq->n_roles, 0);

    /* our encoder reproduces DCMTK's bytes, except the reserved byte DCMTK
     * fills with 0xFF in the presentation context item */
    hr_buf out;
    hr_buf_init(&out, 1 << 20);
    cr_assert_eq(dcm_pdu_encode_assoc_rq(rq, &out), 0);
    cr_assert_eq(out.len, n);
    p[6 + 68 + 25 + 6] = 0; /* PC item byte 7 */
    cr_assert_eq(memcmp(out.data, p, n), 0);
    hr_buf_free(&out);
    free(rq);
}

Test(pdu_rq, full_featured_parse)
{
    static bb b;
    dcm_assoc_rq *rq = rq_alloc();

    build_rq(&b, 3, 2, NULL);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), 0);
    cr_assert_str_eq(rq->called_ae, "HUREN"); /* leading spaces stripped too */
    cr_assert_str_eq(rq->calling_ae, "MODALITY1");
    cr_assert_eq(rq->n_pc, 3);
    cr_assert_eq(rq->pc[2].id, 5);
    cr_assert_str_eq(rq->pc[1].abstract_syntax, CT_STORAGE);
    cr_assert_eq(rq->pc[1].n_ts, 2);
    cr_assert_str_eq(rq->pc[1].ts[1], DCM_TS_IMPLICIT_LE);
    cr_assert_eq(rq->max_pdu, 32768);
    cr_assert_str_eq(rq->impl_class_uid, "1.2.3.4.5");
    cr_assert_str_eq(rq->impl_version, "TESTVER_1");
    cr_assert_eq(rq->has_async, 1);
    cr_assert_eq(rq->max_ops_invoked, 3);
    cr_assert_eq(rq->max_ops_performed, 1);
    cr_assert_eq(rq->n_roles, 1);
    cr_assert_str_eq(rq->roles[0].sop_class, CT_STORAGE);
    cr_assert_eq(rq->roles[0].scu, 0);
    cr_assert_eq(rq->roles[0].scp, 1);
    cr_assert_eq(rq->has_user_identity, 1);
    cr_assert_eq(rq->user_identity_type, 2);
    free(rq);
}

Test(pdu_rq, encode_parse_round_trip)
{
    dcm_assoc_rq *a = rq_alloc(), *b = rq_alloc();
    hr_buf out;
    uint8_t type;
    uint32_t bl;

    a->protocol_version = 1;
    strcpy(a->called_ae, "REMOTE_SCP");
    strcpy(a->calling_ae, "HUREN");
    strcpy(a->app_context, DCM_UID_APP_CONTEXT);
    a->n_pc = DCM_MAX_PCS;
    for (int i = 0; i < a->n_pc; i++) {
        a->pc[i].id = (uint8_t)(2 * i + 1);
        snprintf(a->pc[i].abstract_syntax, DCM_UID_BUF, "1.2.840.10008.5.1.4.1.1.%d", i);
        a->pc[i].n_ts = DCM_MAX_TS_PER_PC;
        for (int j = 0; j < DCM_MAX_TS_PER_PC; j++)
            snprintf(a->pc[i].ts[j], DCM_UID_BUF, "1.2.840.10008.1.2.4.%d", 50 + j);
    }
    strcpy(a->pc[0].ts[0], "1.2.3.4567890123456789012345678901234567890123456789012345678901");
    cr_assert_eq(strlen(a->pc[0].ts[0]), 64);
    a->max_pdu = 0;
    strcpy(a->impl_class_uid, HR_IMPL_CLASS_UID);
    strcpy(a->impl_version, "0123456789ABCDEF");
    a->has_async = 1;
    a->max_ops_invoked = 0;
    a->max_ops_performed = 7;
    a->n_roles = DCM_MAX_ROLES;
    for (int i = 0; i < a->n_roles; i++) {
        snprintf(a->roles[i].sop_class, DCM_UID_BUF, "1.2.840.10008.5.1.4.1.1.%d", i);
        a->roles[i].scu = (uint8_t)(i & 1);
        a->roles[i].scp = 1;
    }
    hr_buf_init(&out, 1 << 20);
    cr_assert_eq(dcm_pdu_encode_assoc_rq(a, &out), 0);
    cr_assert_eq(dcm_pdu_frame(out.data, out.len, 1u << 20, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_ASSOC_RQ);
    cr_assert_eq(bl + 6, out.len);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(out.data + 6, bl, b), 0);
    cr_assert_eq(memcmp(a, b, sizeof(*a)), 0);

    /* a buffer that is too small fails cleanly and leaves out unchanged */
    hr_buf small;
    hr_buf_init(&small, 100);
    cr_assert_eq(dcm_pdu_encode_assoc_rq(a, &small), HR_ETOOBIG);
    cr_assert_eq(small.len, 0);
    hr_buf_free(&small);
    /* invalid struct contents are refused */
    a->n_pc = DCM_MAX_PCS + 1;
    out.len = 0;
    cr_assert_eq(dcm_pdu_encode_assoc_rq(a, &out), HR_EPARSE);
    cr_assert_eq(out.len, 0);
    hr_buf_free(&out);
    free(a);
    free(b);
}

Test(pdu_rq, protocol_version_is_reported_not_judged)
{
    static bb b;
    dcm_assoc_rq *rq = rq_alloc();

    build_rq(&b, 1, 1, NULL);
    b.d[0] = 0;
    b.d[1] = 2; /* bit 0 clear */
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), 0);
    cr_assert_eq(rq->protocol_version, 2);
    cr_assert_eq(rq->protocol_version & 1, 0);
    free(rq);
}

Test(pdu_rq, every_truncation_fails)
{
    static bb b;
    uint8_t p[512];
    size_t n = unhex(echoscu_rq_hex, p);
    dcm_assoc_rq *rq = rq_alloc();

    for (uint32_t l = 0; l < n - 6; l++)
        cr_assert_neq(dcm_pdu_parse_assoc_rq(p + 6, l, rq), 0, "len %u", l);
    build_rq(&b, 2, 2, NULL);
    for (uint32_t l = 0; l < b.n; l++)
        cr_assert_neq(dcm_pdu_parse_assoc_rq(b.d, l, rq), 0, "len %u", l);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), 0);
    free(rq);
}

static int parse_patched(bb *b, size_t at, uint16_t v)
{
    static bb c;
    static dcm_assoc_rq rq;
    memcpy(&c, b, sizeof(c));
    c.d[at] = (uint8_t)(v >> 8);
    c.d[at + 1] = (uint8_t)v;
    return dcm_pdu_parse_assoc_rq(c.d, (uint32_t)c.n, &rq);
}

Test(pdu_rq, nested_length_overruns)
{
    static bb b;
    rq_offsets o;

    build_rq(&b, 1, 2, &o);
    cr_assert_eq(parse_patched(&b, 0, 1), 0);
    /* top-level item longer than the body */
    cr_assert_eq(parse_patched(&b, o.ui + 2, 0xFFFF), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.pc + 2, 0xFFFF), HR_EPARSE);
    /* abstract syntax sub-item running past its presentation context */
    uint16_t pclen = (uint16_t)((b.d[o.pc + 2] << 8) | b.d[o.pc + 3]);
    cr_assert_eq(parse_patched(&b, o.abs + 2, pclen), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.ts + 2, 0xFFFF), HR_EPARSE);
    /* PC item shorter than its 4-byte header */
    cr_assert_eq(parse_patched(&b, o.pc + 2, 3), HR_EPARSE);
    /* user info sub-items */
    cr_assert_eq(parse_patched(&b, o.maxlen + 2, 0x00FF), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.maxlen + 2, 3), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.role + 4, 0xFFFF), HR_EPARSE); /* role UID length */
    cr_assert_eq(parse_patched(&b, o.role + 4, 0), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.ext + 2, 0xFFFF), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.uid_rq + 6, 0xFFFF), HR_EPARSE); /* primary field */
    cr_assert_eq(parse_patched(&b, o.uid_rq + 6, 5), HR_EPARSE);
    cr_assert_eq(parse_patched(&b, o.uid_rq + 6 + 2 + 4, 0xFFFF), HR_EPARSE); /* secondary */
    cr_assert_eq(parse_patched(&b, o.uid_rq + 6 + 2 + 4, 5), HR_EPARSE);
}

Test(pdu_rq, limits_and_required_items)
{
    static bb b;
    dcm_assoc_rq *rq = rq_alloc();

    build_rq(&b, DCM_MAX_PCS, DCM_MAX_TS_PER_PC, NULL);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), 0);
    cr_assert_eq(rq->n_pc, DCM_MAX_PCS);
    /* ids stop being unique past 128 contexts (uint8_t wrap), but the count
     * limit must trigger first */
    build_rq(&b, DCM_MAX_PCS + 1, 1, NULL);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_ETOOBIG);
    build_rq(&b, 1, DCM_MAX_TS_PER_PC + 1, NULL);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_ETOOBIG);

    /* missing application context */
    b.n = 0;
    bb_fixed(&b, "HUREN           ", "SCU             ");
    size_t pc = bb_begin(&b, 0x20);
    bb_put(&b, "\x01\x00\x00\x00", 4);
    bb_str_item(&b, 0x30, DCM_UID_VERIFICATION);
    bb_str_item(&b, 0x40, DCM_TS_IMPLICIT_LE);
    bb_end(&b, pc);
    size_t ui = bb_begin(&b, 0x50);
    bb_end(&b, ui);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_EPARSE);

    /* presentation context without abstract syntax */
    b.n = 0;
    bb_fixed(&b, "HUREN           ", "SCU             ");
    bb_str_item(&b, 0x10, DCM_UID_APP_CONTEXT);
    pc = bb_begin(&b, 0x20);
    bb_put(&b, "\x01\x00\x00\x00", 4);
    bb_str_item(&b, 0x40, DCM_TS_IMPLICIT_LE);
    bb_end(&b, pc);
    ui = bb_begin(&b, 0x50);
    bb_end(&b, ui);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_EPARSE);

    /* UID of 64 characters passes, 65 fails; trailing NUL padding is dropped */
    const char *u64 = "1.2.3.4567890123456789012345678901234567890123456789012345678901";
    char u65[80], u64nul[80];
    snprintf(u65, sizeof(u65), "%s5", u64);
    snprintf(u64nul, sizeof(u64nul), "%s", u64);
    for (int k = 0; k < 3; k++) {
        b.n = 0;
        bb_fixed(&b, "HUREN           ", "SCU             ");
        bb_str_item(&b, 0x10, DCM_UID_APP_CONTEXT);
        pc = bb_begin(&b, 0x20);
        bb_put(&b, "\x01\x00\x00\x00", 4);
        if (k == 2) {
            size_t s = bb_begin(&b, 0x30);
            bb_put(&b, u64nul, strlen(u64nul) + 1);
            bb_end(&b, s);
        } else {
            bb_str_item(&b, 0x30, k == 0 ? u64 : u65);
        }
        bb_str_item(&b, 0x40, DCM_TS_IMPLICIT_LE);
        bb_end(&b, pc);
        ui = bb_begin(&b, 0x50);
        bb_end(&b, ui);
        int rc = dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq);
        cr_assert_eq(rc, k == 1 ? HR_EPARSE : 0, "case %d rc %d", k, rc);
        if (k != 1)
            cr_assert_str_eq(rq->pc[0].abstract_syntax, u64);
    }

    /* duplicate and even presentation context ids */
    build_rq(&b, 2, 1, NULL);
    rq_offsets o;
    build_rq(&b, 2, 1, &o);
    b.d[o.pc + 4] = 2;
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_EPARSE);
    b.d[o.pc + 4] = 3;
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), HR_EPARSE);
    free(rq);
}

Test(pdu_rq, ae_titles_are_trimmed)
{
    static bb b;
    dcm_assoc_rq *rq = rq_alloc();

    b.n = 0;
    bb_fixed(&b, "   A B C        ", "                ");
    bb_str_item(&b, 0x10, DCM_UID_APP_CONTEXT);
    size_t pc = bb_begin(&b, 0x20);
    bb_put(&b, "\x01\x00\x00\x00", 4);
    bb_str_item(&b, 0x30, DCM_UID_VERIFICATION);
    bb_str_item(&b, 0x40, DCM_TS_IMPLICIT_LE);
    bb_end(&b, pc);
    size_t ui = bb_begin(&b, 0x50);
    bb_end(&b, ui);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(b.d, (uint32_t)b.n, rq), 0);
    cr_assert_str_eq(rq->called_ae, "A B C");
    cr_assert_str_eq(rq->calling_ae, "");
    cr_assert_eq(rq->max_pdu, 0);
    free(rq);
}

/* ---- A-ASSOCIATE-AC / RJ / release / abort ------------------------------ */

Test(pdu_ac, round_trip)
{
    dcm_assoc_ac *a = ac_alloc(), *b = ac_alloc();
    hr_buf out;
    uint8_t type;
    uint32_t bl;

    strcpy(a->called_ae, "HUREN");
    strcpy(a->calling_ae, "0123456789ABCDEF");
    a->n_pc = 3;
    a->pc[0] = (dcm_pc_ac){1, DCM_PC_ACCEPT, DCM_TS_EXPLICIT_LE};
    a->pc[1] = (dcm_pc_ac){3, DCM_PC_ABSTRACT_UNSUPPORTED, ""};
    a->pc[2] = (dcm_pc_ac){5, DCM_PC_TS_UNSUPPORTED, DCM_TS_IMPLICIT_LE};
    a->max_pdu = 16384;
    strcpy(a->impl_class_uid, HR_IMPL_CLASS_UID);
    strcpy(a->impl_version, HR_IMPL_VERSION);
    a->has_async = 1;
    a->max_ops_invoked = 1;
    a->max_ops_performed = 1;
    a->n_roles = 1;
    strcpy(a->roles[0].sop_class, CT_STORAGE);
    a->roles[0].scp = 1;
    hr_buf_init(&out, 1 << 20);
    cr_assert_eq(dcm_pdu_encode_assoc_ac(a, &out), 0);
    cr_assert_eq(dcm_pdu_frame(out.data, out.len, 1u << 20, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_ASSOC_AC);
    cr_assert_eq(dcm_pdu_parse_assoc_ac(out.data + 6, bl, b), 0);
    /* a refused context still carries a (non-significant) TS sub-item */
    cr_assert_str_eq(b->pc[1].ts, DCM_TS_IMPLICIT_LE);
    memset(b->pc[1].ts, 0, sizeof(b->pc[1].ts));
    cr_assert_eq(memcmp(a, b, sizeof(*a)), 0);
    /* AE title padding is spaces */
    cr_assert_eq(memcmp(out.data + 10, "HUREN           ", 16), 0);
    for (uint32_t l = 0; l < bl; l++)
        cr_assert_neq(dcm_pdu_parse_assoc_ac(out.data + 6, l, b), 0, "len %u", l);
    hr_buf_free(&out);
    free(a);
    free(b);
}

Test(pdu_short, rj_release_abort)
{
    hr_buf out;
    uint8_t type, r, s, why;
    uint32_t bl;

    hr_buf_init(&out, 4096);
    cr_assert_eq(
        dcm_pdu_encode_assoc_rj(DCM_RJ_PERMANENT, DCM_RJ_SRC_USER, DCM_RJ_USER_CALLED_AE, &out), 0);
    const uint8_t rj[] = {3, 0, 0, 0, 0, 4, 0, 1, 1, 7};
    cr_assert_eq(out.len, sizeof(rj));
    cr_assert_eq(memcmp(out.data, rj, sizeof(rj)), 0);
    cr_assert_eq(dcm_pdu_parse_assoc_rj(out.data + 6, 4, &r, &s, &why), 0);
    cr_assert(r == 1 && s == 1 && why == 7);
    cr_assert_eq(dcm_pdu_parse_assoc_rj(out.data + 6, 3, &r, &s, &why), HR_EPARSE);
    cr_assert_eq(dcm_pdu_parse_assoc_rj(out.data + 6, 5, &r, &s, &why), HR_EPARSE);

    out.len = 0;
    cr_assert_eq(dcm_pdu_encode_release_rq(&out), 0);
    cr_assert_eq(dcm_pdu_encode_release_rp(&out), 0);
    cr_assert_eq(dcm_pdu_encode_abort(DCM_ABORT_SRC_PROVIDER, DCM_ABORT_UNEXPECTED_PDU, &out), 0);
    const uint8_t exp[] = {5, 0, 0, 0, 0, 4, 0, 0, 0, 0, 6, 0, 0, 0, 0,
                           4, 0, 0, 0, 0, 7, 0, 0, 0, 0, 4, 0, 0, 2, 2};
    cr_assert_eq(out.len, sizeof(exp));
    cr_assert_eq(memcmp(out.data, exp, sizeof(exp)), 0);
    cr_assert_eq(dcm_pdu_frame(out.data + 20, 10, 4, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_ABORT);
    cr_assert_eq(dcm_pdu_parse_abort(out.data + 26, bl, &s, &why), 0);
    cr_assert(s == 2 && why == 2);
    cr_assert_eq(dcm_pdu_parse_abort(out.data + 26, 0, &s, &why), HR_EPARSE);
    hr_buf_free(&out);
}

/* ---- P-DATA-TF ---------------------------------------------------------- */

Test(pdu_pdata, header_and_iteration)
{
    uint8_t pdu[64];
    uint8_t data[5] = {1, 2, 3, 4, 5};
    uint8_t type;
    uint32_t bl, off = 0;
    dcm_pdv v;

    dcm_pdata_header(pdu, 7, 1, 1, sizeof(data));
    memcpy(pdu + 12, data, sizeof(data));
    cr_assert_eq(dcm_pdu_frame(pdu, 12 + sizeof(data), 1024, &type, &bl), 1);
    cr_assert_eq(type, DCM_PDU_P_DATA);
    cr_assert_eq(bl, 4 + 2 + sizeof(data));
    cr_assert_eq(dcm_pdata_next(pdu + 6, bl, &off, &v), 1);
    cr_assert(v.pc_id == 7 && v.is_command && v.is_last && v.len == 5);
    cr_assert_eq(memcmp(v.data, data, 5), 0);
    cr_assert_eq(dcm_pdata_next(pdu + 6, bl, &off, &v), 0);

    /* two PDVs in one body, an empty one included */
    uint8_t body[] = {0, 0, 0, 3, 1, 0, 0xAA, 0, 0, 0, 2, 1, 2};
    off = 0;
    cr_assert_eq(dcm_pdata_next(body, sizeof(body), &off, &v), 1);
    cr_assert(!v.is_command && !v.is_last && v.len == 1 && v.data[0] == 0xAA);
    cr_assert_eq(dcm_pdata_next(body, sizeof(body), &off, &v), 1);
    cr_assert(!v.is_command && v.is_last && v.len == 0);
    cr_assert_eq(dcm_pdata_next(body, sizeof(body), &off, &v), 0);

    /* inconsistent lengths */
    uint8_t bad1[] = {0, 0, 0, 1, 1, 0};
    uint8_t bad2[] = {0xFF, 0xFF, 0xFF, 0xFF, 1, 0};
    uint8_t bad3[] = {0, 0, 0, 2, 1, 0, 0};
    off = 0;
    cr_assert_eq(dcm_pdata_next(bad1, sizeof(bad1), &off, &v), HR_EPROTO);
    off = 0;
    cr_assert_eq(dcm_pdata_next(bad2, sizeof(bad2), &off, &v), HR_EPROTO);
    off = 0;
    cr_assert_eq(dcm_pdata_next(bad3, sizeof(bad3), &off, &v), 1);
    cr_assert_eq(dcm_pdata_next(bad3, sizeof(bad3), &off, &v), HR_EPROTO);
    off = 0;
    cr_assert_eq(dcm_pdata_next(bad3, 3, &off, &v), HR_EPROTO);
    off = 100;
    cr_assert_eq(dcm_pdata_next(bad3, sizeof(bad3), &off, &v), HR_EPROTO);
}

/* ---- random mutations --------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Runs every parser on p; when an RQ/AC parses, checks that re-encoding
 * gives something that parses to the same struct. */
static void exercise(const uint8_t *p, size_t n, dcm_assoc_rq *rq, dcm_assoc_rq *rq2,
                     dcm_assoc_ac *ac, dcm_assoc_ac *ac2)
{
    uint8_t type, a, b, c;
    uint32_t bl, off = 0;
    dcm_pdv v;
    hr_buf out;

    if (dcm_pdu_frame(p, n, 1u << 20, &type, &bl) != 1)
        return;
    const uint8_t *body = p + 6;
    hr_buf_init(&out, 1 << 22);
    if (dcm_pdu_parse_assoc_rq(body, bl, rq) == 0) {
        cr_assert_eq(dcm_pdu_encode_assoc_rq(rq, &out), 0);
        cr_assert_eq(dcm_pdu_parse_assoc_rq(out.data + 6, (uint32_t)out.len - 6, rq2), 0);
        if (rq->protocol_version == 0)
            rq->protocol_version = 1;
        rq->has_user_identity = 0; /* parsed, never encoded */
        rq->user_identity_type = 0;
        cr_assert_eq(memcmp(rq, rq2, sizeof(*rq)), 0);
    }
    out.len = 0;
    if (dcm_pdu_parse_assoc_ac(body, bl, ac) == 0) {
        cr_assert_eq(dcm_pdu_encode_assoc_ac(ac, &out), 0);
        cr_assert_eq(dcm_pdu_parse_assoc_ac(out.data + 6, (uint32_t)out.len - 6, ac2), 0);
        for (int i = 0; i < ac->n_pc; i++)
            if (ac->pc[i].result != 0 && ac->pc[i].ts[0] == 0)
                strcpy(ac->pc[i].ts, DCM_TS_IMPLICIT_LE);
        cr_assert_eq(memcmp(ac, ac2, sizeof(*ac)), 0);
    }
    hr_buf_free(&out);
    dcm_pdu_parse_assoc_rj(body, bl, &a, &b, &c);
    dcm_pdu_parse_abort(body, bl, &a, &b);
    while (dcm_pdata_next(body, bl, &off, &v) == 1)
        cr_assert(v.data >= body && v.data + v.len <= body + bl);
}

Test(pdu_fuzz, random_mutations, .timeout = 120)
{
    static bb seeds[4];
    static uint8_t m[300000];
    size_t seed_len[4];
    dcm_assoc_rq *rq = rq_alloc(), *rq2 = rq_alloc();
    dcm_assoc_ac *ac = ac_alloc(), *ac2 = ac_alloc();
    hr_buf out;

    seed_len[0] = unhex(echoscu_rq_hex, seeds[0].d);
    build_rq(&seeds[1], 2, 2, NULL);
    memmove(seeds[1].d + 6, seeds[1].d, seeds[1].n);
    seeds[1].d[0] = 1;
    seeds[1].d[1] = 0;
    seeds[1].d[2] = 0;
    seeds[1].d[3] = 0;
    seeds[1].d[4] = (uint8_t)(seeds[1].n >> 8);
    seeds[1].d[5] = (uint8_t)seeds[1].n;
    seed_len[1] = seeds[1].n + 6;
    {
        strcpy(ac->called_ae, "X");
        ac->n_pc = 2;
        ac->pc[0] = (dcm_pc_ac){1, 0, DCM_TS_IMPLICIT_LE};
        ac->pc[1] = (dcm_pc_ac){3, 3, DCM_TS_IMPLICIT_LE};
        ac->n_roles = 1;
        strcpy(ac->roles[0].sop_class, "1.2");
        strcpy(ac->impl_class_uid, "1.2.3");
        hr_buf_init(&out, 1 << 20);
        cr_assert_eq(dcm_pdu_encode_assoc_ac(ac, &out), 0);
        memcpy(seeds[2].d, out.data, out.len);
        seed_len[2] = out.len;
        hr_buf_free(&out);
    }
    const uint8_t pd[] = {4, 0, 0, 0, 0, 16, 0, 0, 0, 4, 1, 3, 9, 9, 0, 0, 0, 4, 1, 2, 8, 8};
    memcpy(seeds[3].d, pd, sizeof(pd));
    seed_len[3] = sizeof(pd);

    for (int iter = 0; iter < 20000; iter++) {
        int s = (int)(rnd() % 4);
        size_t n = seed_len[s];
        memcpy(m, seeds[s].d, n);
        int k = 1 + (int)(rnd() % 8);
        for (int j = 0; j < k; j++) {
            size_t pos = rnd() % n;
            switch (rnd() % 4) {
            case 0:
                m[pos] = (uint8_t)rnd();
                break;
            case 1:
                m[pos] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 2:
                m[pos] = (rnd() & 1) ? 0xFF : 0x00;
                break;
            default:
                if (pos + 1 < n) {
                    m[pos] = 0xFF;
                    m[pos + 1] = 0xFF;
                }
                break;
            }
        }
        if (rnd() % 8 == 0)
            n = rnd() % n;
        /* keep the PDU length consistent half of the time so the body
         * parsers see the mutation */
        if (n >= 6 && (rnd() & 1)) {
            uint32_t bl = (uint32_t)(n - 6);
            m[2] = (uint8_t)(bl >> 24);
            m[3] = (uint8_t)(bl >> 16);
            m[4] = (uint8_t)(bl >> 8);
            m[5] = (uint8_t)bl;
        }
        exercise(m, n, rq, rq2, ac, ac2);
    }
    free(rq);
    free(rq2);
    free(ac);
    free(ac2);
}

/* ---- DCMTK interoperability over a real socket -------------------------- */

typedef struct peer {
    int lfd, fd;
    pid_t pid;
    hr_buf in;
    size_t consumed;
    uint32_t max_len; /* largest PDU body we accept */
} peer;

static int listen_any(uint16_t *port)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void peer_start(peer *pr, char **argv_with_port_slot, int port_index)
{
    uint16_t port;
    char ps[16];

    memset(pr, 0, sizeof(*pr));
    signal(SIGPIPE, SIG_IGN);
    pr->lfd = listen_any(&port);
    snprintf(ps, sizeof(ps), "%u", port);
    argv_with_port_slot[port_index] = ps;
    pr->pid = fork();
    cr_assert_geq(pr->pid, 0);
    if (pr->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0 && !getenv("HUREN_TEST_VERBOSE"))
            dup2(devnull, STDOUT_FILENO);
        setenv("TCP_NODELAY", "1", 1);
        execvp(argv_with_port_slot[0], argv_with_port_slot);
        _exit(127);
    }
    struct pollfd pf = {pr->lfd, POLLIN, 0};
    cr_assert_eq(poll(&pf, 1, PEER_TIMEOUT * 1000), 1, "peer did not connect");
    pr->fd = accept(pr->lfd, NULL, NULL);
    cr_assert_geq(pr->fd, 0);
    hr_buf_init(&pr->in, 1 << 22);
    pr->max_len = 1 << 20;
}

/* Reads the next whole PDU; body valid until the next call. */
static void peer_read(peer *pr, uint8_t *type, const uint8_t **body, uint32_t *bl)
{
    pr->in.pos = pr->consumed;
    hr_buf_compact(&pr->in);
    pr->consumed = 0;
    for (;;) {
        int rc = dcm_pdu_frame(pr->in.data, pr->in.len, pr->max_len, type, bl);
        cr_assert_geq(rc, 0, "frame: %s", hr_err_name(rc));
        if (rc == 1)
            break;
        struct pollfd pf = {pr->fd, POLLIN, 0};
        cr_assert_eq(poll(&pf, 1, PEER_TIMEOUT * 1000), 1, "peer silent");
        cr_assert_eq(hr_buf_reserve(&pr->in, 65536), 0);
        ssize_t r = read(pr->fd, pr->in.data + pr->in.len, 65536);
        cr_assert_gt(r, 0, "peer closed");
        pr->in.len += (size_t)r;
    }
    *body = pr->in.data + 6;
    pr->consumed = 6 + (size_t)*bl;
}

static void peer_write(peer *pr, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(pr->fd, b, n);
        cr_assert_gt(w, 0);
        b += w;
        n -= (size_t)w;
    }
}

static int peer_wait(peer *pr)
{
    int st = 0;
    for (int i = 0; i < PEER_TIMEOUT * 20; i++) {
        pid_t r = waitpid(pr->pid, &st, WNOHANG);
        if (r == pr->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pr->pid, SIGKILL);
    waitpid(pr->pid, &st, 0);
    return -2;
}

static void peer_close(peer *pr)
{
    close(pr->fd);
    close(pr->lfd);
    hr_buf_free(&pr->in);
}

/* Reads one DIMSE message: the command set (bytes kept in cmd_bytes) and,
 * when announced, the data set. Checks every P-DATA PDU against max_body. */
static void read_message(peer *pr, uint32_t max_body, dcm_command *cmd, hr_buf *cmd_bytes,
                         hr_buf *data, uint8_t *pc_id, int *n_pdus)
{
    int have_cmd = 0, have_data = 0;
    *n_pdus = 0;
    while (!have_cmd || (!have_data && cmd->data_set_type != DCM_DATASET_NONE)) {
        uint8_t type;
        const uint8_t *body;
        uint32_t bl, off = 0;
        dcm_pdv v;
        peer_read(pr, &type, &body, &bl);
        cr_assert_eq(type, DCM_PDU_P_DATA);
        cr_assert_leq(bl, max_body, "P-DATA body %u > negotiated %u", bl, max_body);
        (*n_pdus)++;
        int rc;
        while ((rc = dcm_pdata_next(body, bl, &off, &v)) == 1) {
            *pc_id = v.pc_id;
            if (v.is_command) {
                cr_assert(!have_cmd);
                cr_assert_eq(hr_buf_append(cmd_bytes, v.data, v.len), 0);
                if (v.is_last) {
                    cr_assert_eq(dcm_command_parse(cmd_bytes->data, cmd_bytes->len, cmd), 0);
                    have_cmd = 1;
                }
            } else {
                cr_assert(have_cmd);
                cr_assert_eq(hr_buf_append(data, v.data, v.len), 0);
                if (v.is_last)
                    have_data = 1;
            }
        }
        cr_assert_eq(rc, 0);
    }
}

static void send_command(peer *pr, uint8_t pc_id, const dcm_command *c)
{
    hr_buf out;
    uint8_t hdr[12];
    hr_buf_init(&out, DCM_CMD_MAX_LEN);
    cr_assert_eq(dcm_command_encode(c, &out), 0);
    dcm_pdata_header(hdr, pc_id, 1, 1, (uint32_t)out.len);
    peer_write(pr, hdr, sizeof(hdr));
    peer_write(pr, out.data, out.len);
    hr_buf_free(&out);
}

static void answer_release(peer *pr)
{
    uint8_t type;
    const uint8_t *body;
    uint32_t bl;
    hr_buf out;
    peer_read(pr, &type, &body, &bl);
    cr_assert_eq(type, DCM_PDU_RELEASE_RQ);
    cr_assert_eq(bl, 4);
    hr_buf_init(&out, 64);
    cr_assert_eq(dcm_pdu_encode_release_rp(&out), 0);
    peer_write(pr, out.data, out.len);
    hr_buf_free(&out);
}

/* Answers an A-ASSOCIATE-RQ: every context accepted with the preferred TS
 * when proposed, else the first one. */
static void accept_assoc(peer *pr, const dcm_assoc_rq *rq, const char *preferred_ts,
                         uint32_t our_max)
{
    dcm_assoc_ac *ac = ac_alloc();
    hr_buf out;
    strcpy(ac->called_ae, rq->called_ae);
    strcpy(ac->calling_ae, rq->calling_ae);
    ac->n_pc = rq->n_pc;
    for (int i = 0; i < rq->n_pc; i++) {
        ac->pc[i].id = rq->pc[i].id;
        ac->pc[i].result = DCM_PC_ACCEPT;
        strcpy(ac->pc[i].ts, rq->pc[i].ts[0]);
        for (int j = 0; j < rq->pc[i].n_ts; j++)
            if (strcmp(rq->pc[i].ts[j], preferred_ts) == 0)
                strcpy(ac->pc[i].ts, preferred_ts);
    }
    ac->max_pdu = our_max;
    strcpy(ac->impl_class_uid, HR_IMPL_CLASS_UID);
    strcpy(ac->impl_version, HR_IMPL_VERSION);
    hr_buf_init(&out, 1 << 20);
    cr_assert_eq(dcm_pdu_encode_assoc_ac(ac, &out), 0);
    peer_write(pr, out.data, out.len);
    hr_buf_free(&out);
    free(ac);
}

Test(pdu_dcmtk, echoscu_full_exchange, .timeout = 60)
{
    char *argv[] = {"echoscu", "-aet", "TESTSCU", "-aec", "HUREN",     "-to", "20",
                    "-ta",     "20",   "-td",     "20",   "127.0.0.1", NULL,  NULL};
    peer pr;
    uint8_t type, pc_id = 0;
    const uint8_t *body;
    uint32_t bl;
    int n_pdus;
    dcm_assoc_rq *rq = rq_alloc();
    dcm_command cmd, rsp;
    hr_buf cmd_bytes, data, re;

    peer_start(&pr, argv, 12);
    peer_read(&pr, &type, &body, &bl);
    cr_assert_eq(type, DCM_PDU_ASSOC_RQ);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(body, bl, rq), 0);
    cr_assert_eq(rq->protocol_version & 1, 1);
    cr_assert_str_eq(rq->calling_ae, "TESTSCU");
    cr_assert_str_eq(rq->called_ae, "HUREN");
    cr_assert_str_eq(rq->app_context, DCM_UID_APP_CONTEXT);
    cr_assert_eq(rq->n_pc, 1);
    cr_assert_str_eq(rq->pc[0].abstract_syntax, DCM_UID_VERIFICATION);
    cr_assert_eq(rq->pc[0].n_ts, 1);
    cr_assert_str_eq(rq->pc[0].ts[0], DCM_TS_IMPLICIT_LE);
    cr_assert_eq(rq->max_pdu, 16384);
    cr_assert_str_eq(rq->impl_class_uid, DCMTK_IMPL);
    cr_assert_str_eq(rq->impl_version, "OFFIS_DCMTK_367");
    cr_log_info("echoscu: max PDU %u, impl %s / %s, %d context(s)", rq->max_pdu, rq->impl_class_uid,
                rq->impl_version, rq->n_pc);

    accept_assoc(&pr, rq, DCM_TS_IMPLICIT_LE, 16384);

    hr_buf_init(&cmd_bytes, DCM_CMD_MAX_LEN);
    hr_buf_init(&data, 1 << 20);
    read_message(&pr, 16384, &cmd, &cmd_bytes, &data, &pc_id, &n_pdus);
    cr_assert_eq(pc_id, rq->pc[0].id);
    cr_assert_eq(cmd.command_field, DCM_C_ECHO_RQ);
    cr_assert(cmd.flags & DCM_CMD_HAS_MSG_ID);
    cr_assert_str_eq(cmd.affected_sop_class, DCM_UID_VERIFICATION);
    cr_assert_eq(cmd.data_set_type, DCM_DATASET_NONE);
    cr_assert_eq(data.len, 0);
    /* our encoder reproduces DCMTK's command bytes exactly */
    hr_buf_init(&re, DCM_CMD_MAX_LEN);
    cr_assert_eq(dcm_command_encode(&cmd, &re), 0);
    cr_assert_eq(re.len, cmd_bytes.len);
    cr_assert_eq(memcmp(re.data, cmd_bytes.data, re.len), 0);

    memset(&rsp, 0, sizeof(rsp));
    rsp.command_field = DCM_C_ECHO_RSP;
    rsp.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    rsp.message_id_responded = cmd.message_id;
    strcpy(rsp.affected_sop_class, DCM_UID_VERIFICATION);
    rsp.data_set_type = DCM_DATASET_NONE;
    rsp.status = DCM_STATUS_SUCCESS;
    send_command(&pr, pc_id, &rsp);
    answer_release(&pr);
    cr_assert_eq(peer_wait(&pr), 0, "echoscu failed");
    peer_close(&pr);
    hr_buf_free(&cmd_bytes);
    hr_buf_free(&data);
    hr_buf_free(&re);
    free(rq);
}

/* Returns the data set bytes of a Part 10 file (after the meta group). */
static uint8_t *read_dataset(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0);
    uint8_t *all = malloc((size_t)st.st_size);
    cr_assert_eq(fread(all, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    cr_assert_eq(memcmp(all + 128, "DICM", 4), 0);
    cr_assert_eq(memcmp(all + 132, "\x02\x00\x00\x00UL\x04\x00", 8), 0);
    uint32_t gl = all[140] | (all[141] << 8) | (all[142] << 16) | ((uint32_t)all[143] << 24);
    size_t start = 144 + gl;
    *n = (size_t)st.st_size - start;
    memmove(all, all + start, *n);
    return all;
}

Test(pdu_dcmtk, storescu_full_exchange, .timeout = 60)
{
    char *argv[] = {"storescu", "-aet", "TESTSCU", "-aec",      "HUREN", "-to",    "20", "-ta",
                    "20",       "-td",  "20",      "127.0.0.1", NULL,    CT_SMALL, NULL};
    peer pr;
    uint8_t type, pc_id = 0;
    const uint8_t *body;
    uint32_t bl;
    int n_pdus, ct_pcs = 0;
    size_t ds_len;
    dcm_assoc_rq *rq = rq_alloc();
    dcm_command cmd, rsp;
    hr_buf cmd_bytes, data, re;
    const uint32_t our_max = 8192;

    if (access(CT_SMALL, R_OK) != 0)
        cr_skip_test("%s not available", CT_SMALL);
    uint8_t *ds = read_dataset(CT_SMALL, &ds_len);
    peer_start(&pr, argv, 12);
    peer_read(&pr, &type, &body, &bl);
    cr_assert_eq(type, DCM_PDU_ASSOC_RQ);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(body, bl, rq), 0);
    cr_assert_str_eq(rq->calling_ae, "TESTSCU");
    cr_assert_str_eq(rq->called_ae, "HUREN");
    cr_assert_eq(rq->max_pdu, 16384);
    cr_assert_str_eq(rq->impl_class_uid, DCMTK_IMPL);
    cr_assert_gt(rq->n_pc, 1);
    cr_assert_leq(rq->n_pc, DCM_MAX_PCS);
    for (int i = 0; i < rq->n_pc; i++)
        if (strcmp(rq->pc[i].abstract_syntax, CT_STORAGE) == 0)
            ct_pcs++;
    cr_assert_gt(ct_pcs, 0);
    cr_log_info("storescu: %d contexts (%d for CT), first: %s [%d TS, first %s], max PDU %u, "
                "%u bytes",
                rq->n_pc, ct_pcs, rq->pc[0].abstract_syntax, rq->pc[0].n_ts, rq->pc[0].ts[0],
                rq->max_pdu, bl + 6);
    /* our encoder reproduces the PDU, up to the 0xFF reserved byte */
    hr_buf_init(&re, 1 << 20);
    cr_assert_eq(dcm_pdu_encode_assoc_rq(rq, &re), 0);
    cr_assert_eq(re.len, bl + 6u);

    accept_assoc(&pr, rq, DCM_TS_EXPLICIT_LE, our_max);

    hr_buf_init(&cmd_bytes, DCM_CMD_MAX_LEN);
    hr_buf_init(&data, 1 << 22);
    read_message(&pr, our_max, &cmd, &cmd_bytes, &data, &pc_id, &n_pdus);
    cr_assert_eq(cmd.command_field, DCM_C_STORE_RQ);
    cr_assert_str_eq(cmd.affected_sop_class, CT_STORAGE);
    cr_assert_str_eq(cmd.affected_sop_instance, "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
    cr_assert(cmd.flags & DCM_CMD_HAS_PRIORITY);
    cr_assert_neq(cmd.data_set_type, DCM_DATASET_NONE);
    cr_assert_gt(n_pdus, 4, "expected fragmentation at %u bytes", our_max);
    /* DCMTK drops Data Set Trailing Padding (FFFC,FFFC) when sending; the
     * rest must be byte-identical to the file */
    cr_assert_leq(data.len, ds_len);
    cr_assert_eq(memcmp(data.data, ds, data.len), 0);
    if (data.len < ds_len) {
        const uint8_t *t = ds + data.len;
        cr_assert_geq(ds_len - data.len, 12);
        cr_assert_eq(memcmp(t,
                            "\xfc\xff\xfc\xff"
                            "OB\0\0",
                            8),
                     0);
        uint32_t pl = t[8] | (t[9] << 8) | (t[10] << 16) | ((uint32_t)t[11] << 24);
        cr_assert_eq(ds_len - data.len, 12 + (size_t)pl);
    }
    re.len = 0;
    cr_assert_eq(dcm_command_encode(&cmd, &re), 0);
    cr_assert_eq(re.len, cmd_bytes.len);
    cr_assert_eq(memcmp(re.data, cmd_bytes.data, re.len), 0);

    memset(&rsp, 0, sizeof(rsp));
    rsp.command_field = DCM_C_STORE_RSP;
    rsp.flags = DCM_CMD_HAS_MSG_ID_RSP | DCM_CMD_HAS_STATUS;
    rsp.message_id_responded = cmd.message_id;
    strcpy(rsp.affected_sop_class, cmd.affected_sop_class);
    strcpy(rsp.affected_sop_instance, cmd.affected_sop_instance);
    rsp.data_set_type = DCM_DATASET_NONE;
    rsp.status = DCM_STATUS_SUCCESS;
    send_command(&pr, pc_id, &rsp);
    answer_release(&pr);
    cr_assert_eq(peer_wait(&pr), 0, "storescu failed");
    peer_close(&pr);
    hr_buf_free(&cmd_bytes);
    hr_buf_free(&data);
    hr_buf_free(&re);
    free(ds);
    free(rq);
}

Test(pdu_dcmtk, echoscu_sees_rejection, .timeout = 60)
{
    char *argv[] = {"echoscu", "-aet", "TESTSCU", "-aec", "WRONG",     "-to", "20",
                    "-ta",     "20",   "-td",     "20",   "127.0.0.1", NULL,  NULL};
    peer pr;
    uint8_t type;
    const uint8_t *body;
    uint32_t bl;
    hr_buf out;
    dcm_assoc_rq *rq = rq_alloc();

    peer_start(&pr, argv, 12);
    peer_read(&pr, &type, &body, &bl);
    cr_assert_eq(dcm_pdu_parse_assoc_rq(body, bl, rq), 0);
    cr_assert_str_eq(rq->called_ae, "WRONG");
    hr_buf_init(&out, 64);
    cr_assert_eq(
        dcm_pdu_encode_assoc_rj(DCM_RJ_PERMANENT, DCM_RJ_SRC_USER, DCM_RJ_USER_CALLED_AE, &out), 0);
    peer_write(&pr, out.data, out.len);
    close(pr.fd);
    pr.fd = -1;
    cr_assert_eq(peer_wait(&pr), 1, "echoscu should fail on rejection");
    close(pr.lfd);
    hr_buf_free(&pr.in);
    hr_buf_free(&out);
    free(rq);
}
