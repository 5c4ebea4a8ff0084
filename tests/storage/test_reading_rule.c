/* One reading rule (decision 0009, dicom/elem.h): the three DICOM readers give the
 * same answer on the same tricky data sets. Each input is read by
 *   - the ingest scanner in data-set mode (dicom/scanner.c), fed whole and byte by byte;
 *   - the in-memory parser (dicom/dataset.c);
 *   - the sidecar walker (storage/meta.c) on the Part 10 file ingest would store.
 * Every input starts with the four UIDs the sidecars need, so a refusal is the tricky
 * part's. */
#include "common/hr_buf.h"
#include "common/hr_bytes.h"
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/dict.h"
#include "dicom/p10.h"
#include "dicom/scanner.h"
#include "dicom/uids.h"
#include "storage/meta.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define UNDEF     0xFFFFFFFFu
#define SOP_CLASS "1.2.840.10008.5.1.4.1.1.7"
#define SOP_INST  "1.2.3.4.5.6.7"
#define JPEG_TS   "1.2.840.10008.1.2.4.50"

typedef struct enc {
    uint8_t b[4096];
    size_t n;
    int expl, big;
} enc;

static void raw(enc *d, const void *p, size_t n)
{
    cr_assert(d->n + n <= sizeof(d->b));
    memcpy(d->b + d->n, p, n);
    d->n += n;
}

static void u16(enc *d, uint16_t v)
{
    uint8_t b[2];
    hr_wr16(b, v, d->big);
    raw(d, b, 2);
}

static void u32(enc *d, uint32_t v)
{
    uint8_t b[4];
    hr_wr32(b, v, d->big);
    raw(d, b, 4);
}

/* An element header in d's encoding (vr ignored in implicit VR). */
static void hdr(enc *d, uint32_t tag, const char *vr, uint32_t len)
{
    u16(d, (uint16_t)(tag >> 16));
    u16(d, (uint16_t)tag);
    if (!d->expl) {
        u32(d, len);
        return;
    }
    raw(d, vr, 2);
    if (dcm_vr_long_length(vr)) {
        u16(d, 0);
        u32(d, len);
    } else {
        u16(d, (uint16_t)len);
    }
}

static void str(enc *d, uint32_t tag, const char *vr, const char *s)
{
    size_t n = strlen(s);
    hdr(d, tag, vr, (uint32_t)(n + (n & 1)));
    raw(d, s, n);
    if (n & 1)
        raw(d, "\0", 1);
}

/* Item and delimiters: tag + 4-byte length in every encoding. */
static void item(enc *d, uint32_t tag, uint32_t len)
{
    u16(d, (uint16_t)(tag >> 16));
    u16(d, (uint16_t)tag);
    u32(d, len);
}

static void start(enc *d, int expl, int big)
{
    memset(d, 0, sizeof(*d));
    d->expl = expl;
    d->big = big;
    str(d, 0x00080016, "UI", SOP_CLASS);
    str(d, 0x00080018, "UI", SOP_INST);
    str(d, 0x0020000D, "UI", "1.2.3.4");
    str(d, 0x0020000E, "UI", "1.2.3.4.1");
    /* what a test appends at this level comes after (0020,000E): elements
     * ascend (PS3.5 7.1) */
}

static int by_scanner(const enc *d, const char *ts, size_t chunk)
{
    dcm_attrs a;
    dcm_scanner *s = dcm_scanner_new(DCM_SCAN_DATASET, ts, &a);
    cr_assert_not_null(s);
    int rc = 0;
    for (size_t i = 0; i < d->n && rc == 0; i += chunk)
        rc = dcm_scanner_feed(s, d->b + i, d->n - i < chunk ? d->n - i : chunk);
    if (rc == 0)
        rc = dcm_scanner_finish(s);
    dcm_scanner_free(s);
    return rc == DCM_SCAN_END ? 0 : rc;
}

static int by_dataset(const enc *d, const char *ts)
{
    dcm_ds *ds = NULL;
    int rc = dcm_ds_parse(d->b, d->n, ts, 0, &ds);
    dcm_ds_free(ds);
    return rc;
}

static int by_sidecar(const enc *d, const char *ts)
{
    static const char sha[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    dcm_p10_meta m = {SOP_CLASS, SOP_INST, ts, NULL, NULL};
    hr_buf b;
    char *json = NULL;
    uint8_t *frames = NULL;
    size_t jl = 0, fl = 0;
    hr_buf_init(&b, 1 << 20);
    cr_assert_eq(dcm_p10_encode_meta(&m, &b), 0);
    cr_assert_eq(hr_buf_append(&b, d->b, d->n), 0);
    int fd = memfd_create("reading_rule", 0);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, b.data, b.len), (ssize_t)b.len);
    int rc = sto_meta_derive(fd, sha, &json, &jl, &frames, &fl);
    close(fd);
    free(json);
    free(frames);
    hr_buf_free(&b);
    return rc;
}

/* All three readers (the scanner twice) answer want. */
static void agree(const enc *d, const char *ts, int want, const char *what)
{
    int s0 = by_scanner(d, ts, d->n ? d->n : 1), s1 = by_scanner(d, ts, 1);
    int ds = by_dataset(d, ts), mt = by_sidecar(d, ts);
    cr_expect(s0 == want && s1 == want && ds == want && mt == want,
              "%s: want %s; scanner %s (byte by byte %s), dataset %s, sidecar %s", what,
              hr_err_name(want), hr_err_name(s0), hr_err_name(s1), hr_err_name(ds),
              hr_err_name(mt));
}

Test(reading_rule, valid_inputs_read_everywhere)
{
    enc d;
    start(&d, 1, 0);
    agree(&d, DCM_TS_EXPLICIT_LE, 0, "the UIDs alone");
    /* UN of undefined length: a sequence of implicit VR LE items */
    hdr(&d, 0x00291010, "UN", UNDEF);
    enc it = {.expl = 0};
    str(&it, 0x00100020, NULL, "ID1");
    item(&d, 0xFFFEE000, (uint32_t)it.n);
    raw(&d, it.b, it.n);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_EXPLICIT_LE, 0, "UN with undefined length");
    /* the same in big endian: the tag and lengths swap, the UN items stay LE */
    start(&d, 1, 1);
    str(&d, 0x00200010, "SH", "S1");
    hdr(&d, 0x00291010, "UN", UNDEF);
    d.big = 0;
    item(&d, 0xFFFEE000, (uint32_t)it.n);
    raw(&d, it.b, it.n);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_EXPLICIT_BE, 0, "UN with undefined length, big endian");
    /* implicit VR: a private (unknown) tag of undefined length is UN: a sequence */
    start(&d, 0, 0);
    hdr(&d, 0x00291010, NULL, UNDEF);
    item(&d, 0xFFFEE000, UNDEF);
    item(&d, 0xFFFEE00D, 0);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_IMPLICIT_LE, 0, "implicit VR private sequence");
    /* eight nested sequences is the limit */
    start(&d, 1, 0);
    for (int i = 0; i < DCM_ELEM_MAX_DEPTH; i++) {
        hdr(&d, 0x00400275, "SQ", UNDEF);
        item(&d, 0xFFFEE000, UNDEF);
    }
    for (int i = 0; i < DCM_ELEM_MAX_DEPTH; i++) {
        item(&d, 0xFFFEE00D, 0);
        item(&d, 0xFFFEE0DD, 0);
    }
    agree(&d, DCM_TS_EXPLICIT_LE, 0, "eight nested sequences");
}

Test(reading_rule, tricky_inputs_refused_alike)
{
    enc d;
    /* explicit VR element with a VR PS3.5 does not know */
    start(&d, 1, 0);
    str(&d, 0x00321032, "QQ", "A^B");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "unknown VR");
    /* File Meta Information inside the data set */
    start(&d, 1, 0);
    str(&d, 0x00020016, "AE", "FAKE");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "group 0002 in the data set");
    /* UN of undefined length whose content is not items */
    start(&d, 1, 0);
    hdr(&d, 0x00291010, "UN", UNDEF);
    d.expl = 0;
    str(&d, 0x00100020, NULL, "ID1");
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "UN with undefined length holding no items");
    /* an undefined-length VR that cannot have it */
    start(&d, 1, 0);
    hdr(&d, 0x0040A160, "UT", UNDEF);
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "UT with undefined length");
    /* implicit VR: a known non-sequence tag of undefined length (was a sequence for the
     * scanner only) */
    start(&d, 0, 0);
    hdr(&d, 0x00321060, NULL, UNDEF);
    item(&d, 0xFFFEE000, 0);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_IMPLICIT_LE, HR_EPARSE, "implicit VR LO with undefined length");
    /* implicit VR: a defined-length sequence holding no items (the scanner skipped it) */
    start(&d, 0, 0);
    hdr(&d, 0x00400275, NULL, 8);
    str(&d, 0x00100020, NULL, "ID");
    agree(&d, DCM_TS_IMPLICIT_LE, HR_EPARSE, "implicit VR SQ of defined length, no items");
    /* explicit LE: UN of a tag the dictionary knows as SQ, content not items (the scanner
     * skipped it, the sidecar walker read it as a sequence) */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "UN", 8);
    d.expl = 0;
    str(&d, 0x00100020, NULL, "ID");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "UN of an SQ tag holding no items");
    /* a delimiter with a length (only the scanner refused it) */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", UNDEF);
    item(&d, 0xFFFEE000, UNDEF);
    item(&d, 0xFFFEE00D, 4);
    raw(&d, "\0\0\0\0", 4);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "item delimiter with a length");
    /* a value running past its defined-length item (more data follows the sequence) */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", 8 + 12);
    item(&d, 0xFFFEE000, 12);
    hdr(&d, 0x00081150, "UI", 8);
    raw(&d, "1.2.", 4);
    str(&d, 0x00400280, "ST", "AFTER");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "value past its item");
    /* nine nested sequences: one more than every reader allows */
    start(&d, 1, 0);
    for (int i = 0; i <= DCM_ELEM_MAX_DEPTH; i++) {
        hdr(&d, 0x00400275, "SQ", UNDEF);
        item(&d, 0xFFFEE000, UNDEF);
    }
    for (int i = 0; i <= DCM_ELEM_MAX_DEPTH; i++) {
        item(&d, 0xFFFEE00D, 0);
        item(&d, 0xFFFEE0DD, 0);
    }
    agree(&d, DCM_TS_EXPLICIT_LE, HR_ETOOBIG, "nine nested sequences");
}

/* PS3.5 7.1: tags ascend, each once. A repeated tag is refused by all three;
 * tags out of order are refused by the scanner at ingest (it keeps the last
 * tag of each level, not a set of the tags seen), so no stored object has
 * them for the other readers to meet. */
Test(reading_rule, element_order)
{
    enc d;
    start(&d, 1, 0);
    str(&d, 0x00321032, "PN", "A^B");
    str(&d, 0x00321032, "PN", "C^D");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "a repeated tag");
    start(&d, 1, 0);
    str(&d, 0x00321060, "LO", "ID1");
    str(&d, 0x00321032, "PN", "A^B");
    cr_expect_eq(by_scanner(&d, DCM_TS_EXPLICIT_LE, d.n), HR_EPARSE, "tags out of order");
    cr_expect_eq(by_scanner(&d, DCM_TS_EXPLICIT_LE, 1), HR_EPARSE, "... byte by byte");
    /* each item is a data set of its own: its order starts again */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", UNDEF);
    for (int i = 0; i < 2; i++) {
        item(&d, 0xFFFEE000, UNDEF);
        str(&d, 0x00081150, "UI", SOP_CLASS);
        str(&d, 0x00081155, "UI", SOP_INST);
        item(&d, 0xFFFEE00D, 0);
    }
    item(&d, 0xFFFEE0DD, 0);
    str(&d, 0x00400280, "ST", "after");
    agree(&d, DCM_TS_EXPLICIT_LE, 0, "items restart the order; the sequence's level goes on");
    /* a repeated tag inside an item */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", UNDEF);
    item(&d, 0xFFFEE000, UNDEF);
    str(&d, 0x00081155, "UI", SOP_INST);
    str(&d, 0x00081155, "UI", SOP_INST);
    item(&d, 0xFFFEE00D, 0);
    item(&d, 0xFFFEE0DD, 0);
    agree(&d, DCM_TS_EXPLICIT_LE, HR_EPARSE, "a repeated tag in an item");
    /* after the sequence, its own level resumes: a tag below the sequence's is refused */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", UNDEF);
    item(&d, 0xFFFEE000, UNDEF);
    str(&d, 0x00321032, "PN", "A^B");
    item(&d, 0xFFFEE00D, 0);
    item(&d, 0xFFFEE0DD, 0);
    str(&d, 0x00321060, "LO", "late");
    cr_expect_eq(by_scanner(&d, DCM_TS_EXPLICIT_LE, 1), HR_EPARSE, "a tag below the sequence's");
}

Test(reading_rule, truncation_is_truncation)
{
    enc d;
    /* a header cut in the middle */
    start(&d, 1, 0);
    str(&d, 0x00321060, "LO", "ID1");
    d.n -= 8; /* the value and half of the header */
    agree(&d, DCM_TS_EXPLICIT_LE, HR_ETRUNC, "truncated header");
    /* a 12-byte header cut after 8 bytes */
    start(&d, 1, 0);
    hdr(&d, 0x0040A160, "UT", 4);
    d.n -= 4;
    agree(&d, DCM_TS_EXPLICIT_LE, HR_ETRUNC, "truncated long header");
    /* a value length past the end of the data */
    start(&d, 1, 0);
    hdr(&d, 0x00321060, "LO", 16);
    raw(&d, "ID1 ", 4);
    agree(&d, DCM_TS_EXPLICIT_LE, HR_ETRUNC, "value past the end");
    /* an undefined-length sequence never closed */
    start(&d, 1, 0);
    hdr(&d, 0x00400275, "SQ", UNDEF);
    item(&d, 0xFFFEE000, UNDEF);
    str(&d, 0x00081150, "UI", "1.2");
    agree(&d, DCM_TS_EXPLICIT_LE, HR_ETRUNC, "open sequence");
}

/* Fragments: the scanner and the sidecar walker (dataset.c holds no fragments: its
 * documented policy) agree that encapsulated Pixel Data starts with a Basic Offset
 * Table item, whatever VR the element claims. */
Test(reading_rule, fragments)
{
    enc d;
    start(&d, 1, 0);
    hdr(&d, 0x7FE00010, "OB", UNDEF);
    item(&d, 0xFFFEE0DD, 0);
    cr_expect_eq(by_scanner(&d, JPEG_TS, d.n), HR_EPARSE, "no Basic Offset Table item");
    cr_expect_eq(by_sidecar(&d, JPEG_TS), HR_EPARSE);
    start(&d, 1, 0);
    hdr(&d, 0x7FE00010, "SQ", UNDEF); /* a wrong VR does not make it a sequence */
    item(&d, 0xFFFEE000, 0);
    item(&d, 0xFFFEE000, 4);
    raw(&d, "\xFF\xD8\xFF\xD9", 4);
    item(&d, 0xFFFEE0DD, 0);
    cr_expect_eq(by_scanner(&d, JPEG_TS, 1), 0);
    cr_expect_eq(by_sidecar(&d, JPEG_TS), 0);
    cr_expect_eq(by_dataset(&d, DCM_TS_EXPLICIT_LE), HR_EPARSE);
}
