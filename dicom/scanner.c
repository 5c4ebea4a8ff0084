/* Streaming DICOM dataset scanner (see scanner.h). Three layers:
 *   raw:     AUTO probe, preamble + "DICM", File Meta Information (explicit LE);
 *   inflate: Deflated Explicit VR LE, raw deflate in bounded output chunks;
 *   element: header/value state machine over the dataset stream with a stack
 *            of frames (item dataset, sequence, encapsulated fragments).
 * Values are never buffered except the few extracted attributes (bounded). */
#include "scanner.h"

#include "charset.h"
#include "dict.h"
#include "elem.h"
#include "uids.h"
#include "common/hr_assert.h"
#include "common/hr_bytes.h"
#include "common/hr_err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PROBE_LEN     132
#define PREAMBLE_LEN  128
#define RAW_VALUE_CAP 1024 /* bytes kept of one extracted value */
#define INFLATE_CHUNK 16384
#define UNDEF_LEN     DCM_UNDEF_LEN
#define STACK_MAX     (2 * DCM_SCAN_MAX_DEPTH + 4)

#define TAG(g, e)            (((uint32_t)(g) << 16) | (uint32_t)(e))
#define TAG_ITEM             TAG(0xfffe, 0xe000)
#define TAG_ITEM_DELIM       TAG(0xfffe, 0xe00d)
#define TAG_SEQ_DELIM        TAG(0xfffe, 0xe0dd)
#define TAG_PIXEL_DATA       TAG(0x7fe0, 0x0010)
#define TAG_FLOAT_PIXEL      TAG(0x7fe0, 0x0008)
#define TAG_DOUBLE_PIXEL     TAG(0x7fe0, 0x0009)
#define TAG_META_GROUP_LEN   TAG(0x0002, 0x0000)
#define TAG_TRANSFER_SYNTAX  TAG(0x0002, 0x0010)
#define TAG_SPECIFIC_CHARSET TAG(0x0008, 0x0005)
#define TAG_PATIENT_ID       TAG(0x0010, 0x0020)
#define TAG_ISSUER_OF_PID    TAG(0x0010, 0x0021)
#define TAG_OTHER_PIDS       TAG(0x0010, 0x1002)

enum attr_kind {
    K_UI,   /* UID: ASCII, trailing NUL/space stripped */
    K_CS,   /* ASCII-only VRs (CS, DA, TM, IS, AE): both ends trimmed */
    K_TEXT, /* SH/LO: charset converted, both ends trimmed */
    K_PN,   /* PN: charset converted, trailing padding trimmed */
};

typedef struct attr_def {
    uint32_t tag;
    uint16_t off; /* offsetof(dcm_attrs, field) */
    uint16_t cap; /* sizeof field */
    uint8_t kind;
    uint8_t nested; /* 1: inside an item of Other Patient IDs Sequence (slot_of_other_pid) */
} attr_def;

#define A(g, e, f, k)                                                                              \
    {                                                                                              \
        TAG(g, e), offsetof(dcm_attrs, f), sizeof(((dcm_attrs *)0)->f), k, 0                       \
    }
/* The id and issuer of item i of (0010,1002): slots N_TOP + 2i and N_TOP + 2i + 1. */
#define OPID(i)                                                                                    \
    {TAG_PATIENT_ID, offsetof(dcm_attrs, other_pids[i].id),                                        \
     sizeof(((dcm_attrs *)0)->other_pids[i].id), K_TEXT, 1},                                       \
    {                                                                                              \
        TAG_ISSUER_OF_PID, offsetof(dcm_attrs, other_pids[i].issuer),                              \
            sizeof(((dcm_attrs *)0)->other_pids[i].issuer), K_TEXT, 1                              \
    }
static const attr_def k_attrs[] = {
    A(0x0002, 0x0002, media_sop_class_uid, K_UI),
    A(0x0002, 0x0003, media_sop_instance_uid, K_UI),
    A(0x0002, 0x0010, transfer_syntax_uid, K_UI),
    A(0x0002, 0x0016, source_ae, K_CS),
    A(0x0002, 0x0102, private_info, K_CS),
    A(0x0008, 0x0005, specific_charset, K_CS),
    A(0x0008, 0x0016, sop_class_uid, K_UI),
    A(0x0008, 0x0018, sop_instance_uid, K_UI),
    A(0x0008, 0x0020, study_date, K_CS),
    A(0x0008, 0x0021, series_date, K_CS),
    A(0x0008, 0x0030, study_time, K_CS),
    A(0x0008, 0x0050, accession_number, K_TEXT),
    A(0x0008, 0x0060, modality, K_CS),
    A(0x0008, 0x0080, institution_name, K_TEXT),
    A(0x0008, 0x0090, referring_physician, K_PN),
    A(0x0008, 0x1030, study_description, K_TEXT),
    A(0x0008, 0x103e, series_description, K_TEXT),
    A(0x0008, 0x1050, performing_physician, K_PN),
    A(0x0010, 0x0010, patient_name, K_PN),
    A(0x0010, 0x0020, patient_id, K_TEXT),
    A(0x0010, 0x0021, issuer_of_patient_id, K_TEXT),
    A(0x0010, 0x0030, patient_birth_date, K_CS),
    A(0x0010, 0x0040, patient_sex, K_CS),
    A(0x0018, 0x0015, body_part, K_CS),
    A(0x0020, 0x000d, study_instance_uid, K_UI),
    A(0x0020, 0x000e, series_instance_uid, K_UI),
    A(0x0020, 0x0010, study_id, K_TEXT),
    A(0x0020, 0x0011, series_number, K_CS),
    A(0x0020, 0x0013, instance_number, K_CS),
    A(0x0028, 0x0008, number_of_frames, K_CS),
    /* nested: never matched by attr_index; keep them last (N_TOP) */
    OPID(0),
    OPID(1),
    OPID(2),
    OPID(3),
    OPID(4),
    OPID(5),
    OPID(6),
    OPID(7),
};
#undef A
#undef OPID
#define N_ATTRS HR_ARRAY_LEN(k_attrs)
#define N_TOP   (N_ATTRS - 2 * DCM_OTHER_PIDS_MAX)
_Static_assert(DCM_OTHER_PIDS_MAX == 8, "k_attrs lists 8 items of Other Patient IDs");

enum raw_state { R_PROBE, R_PREAMBLE, R_META, R_DATASET };
enum elem_state { E_HDR, E_VALUE };
enum frame_kind { F_ITEMDS, F_SEQ, F_FRAG };

/* One open container. end is the absolute dataset position where a defined
 * length frame ends, or the limit inherited from the enclosing frame. */
typedef struct frame {
    uint64_t end;
    uint32_t tag;
    uint8_t kind;
    uint8_t defined;
    uint8_t explicit_vr;
    uint8_t big;
    uint8_t items;     /* F_FRAG: an item (the Basic Offset Table) was read */
    uint8_t any;       /* F_ITEMDS: an element was read (last_tag is set) */
    uint32_t last_tag; /* F_ITEMDS: the previous element's tag */
} frame;

struct dcm_scanner {
    dcm_attrs *out;
    enum dcm_scan_mode mode;
    char ts_init[DCM_UI_MAX];
    char ts_uid[DCM_UI_MAX]; /* effective dataset transfer syntax */
    int err;
    int finished;
    int finish_rc;
    char errmsg[192];
    uint64_t fed;

    /* raw layer */
    enum raw_state rstate;
    uint8_t probe[PROBE_LEN];
    size_t probe_len;
    uint64_t raw_pos;
    uint8_t mhdr[12];
    size_t mhdr_have, mhdr_need;
    uint64_t mval_rem;
    int mslot; /* attribute index, -2 = group length, -1 = none */
    uint8_t glen[4];
    size_t glen_have;
    uint64_t meta_end;
    int have_meta_end;

    /* inflate layer */
    int deflated;
    int z_init;
    int z_end;
    z_stream z;
    uint8_t *zbuf;

    /* element layer */
    int guess_ts;   /* no transfer syntax known: guess from the first element */
    int first_elem; /* next header is the first one of the dataset */
    uint64_t ds_pos;
    enum elem_state estate;
    uint8_t hdr[12];
    size_t hdr_have, hdr_need;
    uint64_t val_rem;
    int slot;
    frame stk[STACK_MAX];
    int sp;
    int seq_depth;
    int pixel_seen;
    int opid_items; /* items of the top-level Other Patient IDs Sequence begun */
    int opid_cur;   /* the index of the item being read, when inside one */

    /* extracted raw values */
    uint8_t *raw;
    uint16_t raw_off[N_ATTRS];
    uint16_t raw_cap[N_ATTRS];
    uint16_t raw_len[N_ATTRS];
};

static int fail(dcm_scanner *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    s->err = code;
    return code;
}

/* A refusal of the element core (elem.h), with the position. */
static int fail_elem(dcm_scanner *s, const dcm_elem_hdr *h, uint64_t pos)
{
    char why[128];
    dcm_elem_fault_text(h, why, sizeof(why));
    return fail(s, HR_EPARSE, "%s at %llu", why, (unsigned long long)pos);
}

/* 1 when the two bytes at p are a VR (an explicit VR header), else 0. */
static int is_vr(const uint8_t *p)
{
    char vr[3] = {(char)p[0], (char)p[1], 0};
    return dcm_vr_known(vr);
}

static int attr_index(uint32_t tag)
{
    for (size_t i = 0; i < N_TOP; i++)
        if (k_attrs[i].tag == tag)
            return (int)i;
    return -1;
}

static void raw_store(dcm_scanner *s, int slot, const uint8_t *p, size_t n)
{
    size_t room = s->raw_cap[slot] - s->raw_len[slot];
    if (n > room)
        n = room;
    memcpy(s->raw + s->raw_off[slot] + s->raw_len[slot], p, n);
    s->raw_len[slot] = (uint16_t)(s->raw_len[slot] + n);
}

/* Copies a raw value with spaces/NULs trimmed (leading too unless pn). */
static size_t raw_trimmed(const dcm_scanner *s, int slot, int pn, const char **start)
{
    const char *p = (const char *)s->raw + s->raw_off[slot];
    size_t n = s->raw_len[slot];
    if (!pn)
        while (n > 0 && (*p == ' ' || *p == '\0')) {
            p++;
            n--;
        }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    *start = p;
    return n;
}

/* ---- element layer ---------------------------------------------------- */

static frame *top(dcm_scanner *s)
{
    return &s->stk[s->sp];
}

static int push(dcm_scanner *s, uint8_t kind, uint32_t tag, uint32_t len, int explicit_vr, int big)
{
    frame *p = top(s);
    if (kind == F_SEQ) {
        if (s->seq_depth >= DCM_SCAN_MAX_DEPTH)
            return fail(s, HR_ETOOBIG, "sequence (%04X,%04X) nested deeper than %d", tag >> 16,
                        tag & 0xffff, DCM_SCAN_MAX_DEPTH);
        s->seq_depth++;
    }
    HR_ASSERT(s->sp + 1 < STACK_MAX);
    frame *f = &s->stk[++s->sp];
    f->kind = kind;
    f->items = 0;
    f->any = 0;
    f->last_tag = 0;
    f->tag = tag;
    f->explicit_vr = (uint8_t)explicit_vr;
    f->big = (uint8_t)big;
    f->defined = len != UNDEF_LEN;
    f->end = f->defined ? s->ds_pos + len : p->end;
    return 0;
}

static void pop(dcm_scanner *s)
{
    HR_ASSERT(s->sp > 0);
    if (top(s)->kind == F_SEQ)
        s->seq_depth--;
    s->sp--;
}

/* Closes every defined-length frame whose end has been reached. */
static void close_frames(dcm_scanner *s)
{
    while (s->sp > 0 && top(s)->defined && s->ds_pos >= top(s)->end)
        pop(s);
}

static void set_ts(dcm_scanner *s, const char *uid)
{
    snprintf(s->ts_uid, sizeof(s->ts_uid), "%s", uid);
}

/* First dataset element: guess the encoding, or correct a declared one that
 * the bytes contradict (explicit declared, implicit found and vice versa). */
/* The encoding of the first element against the transfer syntax. A bare
 * data set (DCM_SCAN_DATASET: received over a negotiated presentation
 * context or a STOW part) must be in its transfer syntax: it is stored under
 * that syntax and every later reader trusts it. Files (Part 10, auto) written
 * by others are read leniently. 0 or an error. */
static int first_element(dcm_scanner *s)
{
    frame *f = &s->stk[0];
    int vr_ok = is_vr(s->hdr + 4);
    s->first_elem = 0;
    if (s->deflated)
        return 0;
    if (s->mode == DCM_SCAN_DATASET && !s->guess_ts && f->explicit_vr != vr_ok)
        return fail(s, HR_EPARSE,
                    "data set is not encoded in its transfer syntax (%s VR expected, the first "
                    "element is %s VR)",
                    f->explicit_vr ? "explicit" : "implicit", vr_ok ? "explicit" : "implicit");
    if (s->guess_ts) {
        f->explicit_vr = (uint8_t)vr_ok;
        f->big = (uint8_t)(vr_ok && s->hdr[0] == 0 && s->hdr[1] != 0);
        set_ts(s, !vr_ok ? DCM_TS_IMPLICIT_LE : f->big ? DCM_TS_EXPLICIT_BE : DCM_TS_EXPLICIT_LE);
        s->guess_ts = 0;
    } else if (f->explicit_vr && !vr_ok) {
        f->explicit_vr = 0;
        f->big = 0;
    } else if (!f->explicit_vr && vr_ok) {
        f->explicit_vr = 1;
    }
    return 0;
}

/* Header of an element complete in s->hdr (hdr_have == hdr_need). Returns
 * 0, 1 when more header bytes are needed, or an error. */
static int on_header(dcm_scanner *s)
{
    frame *f = top(s);
    uint64_t hdr_pos = s->ds_pos - s->hdr_have;
    dcm_elem_hdr h;
    enum dcm_value_kind kind;
    char vr[3];
    if (s->first_elem && s->sp == 0) {
        int rc = first_element(s);
        if (rc)
            return rc;
    }
    /* only an item data set has elements with a VR; sequences and fragments hold items */
    int rc = dcm_elem_read(s->hdr, s->hdr_have, f->kind == F_ITEMDS && f->explicit_vr, f->big, &h);
    if (rc == DCM_ELEM_MORE) {
        if (f->end - hdr_pos < h.hdr_len)
            return fail(s, HR_EPARSE, "element (%04X,%04X) header runs past its item", h.tag >> 16,
                        h.tag & 0xffff);
        s->hdr_need = h.hdr_len;
        return 1;
    }
    if (rc)
        return fail_elem(s, &h, hdr_pos);
    uint32_t tag = h.tag, len = h.len;
    uint16_t group = (uint16_t)(tag >> 16);
    s->hdr_have = 0;
    s->hdr_need = 8;
    s->slot = -1;
    uint64_t room = f->end - s->ds_pos; /* ds_pos <= end by construction */

    if (f->kind == F_SEQ) {
        if (tag == TAG_ITEM) {
            if (len != UNDEF_LEN && len > room)
                return fail(s, HR_EPARSE, "item length %u in (%04X,%04X) exceeds sequence", len,
                            f->tag >> 16, f->tag & 0xffff);
            if (s->sp == 1 && f->tag == TAG_OTHER_PIDS)
                s->opid_cur = s->opid_items++;
            return push(s, F_ITEMDS, f->tag, len, f->explicit_vr, f->big);
        }
        if (tag == TAG_SEQ_DELIM && !f->defined) {
            pop(s);
            return 0;
        }
        return fail(s, HR_EPARSE, "unexpected tag (%04X,%04X) in sequence (%04X,%04X) at %llu",
                    group, tag & 0xffff, f->tag >> 16, f->tag & 0xffff,
                    (unsigned long long)hdr_pos);
    }
    if (f->kind == F_FRAG) {
        if (tag == TAG_ITEM && len != UNDEF_LEN) {
            if (len > room)
                return fail(s, HR_EPARSE, "fragment length %u exceeds enclosing item", len);
            f->items = 1;
            s->val_rem = len;
            s->estate = len ? E_VALUE : E_HDR;
            return 0;
        }
        if (tag == TAG_SEQ_DELIM) {
            if (!f->items) /* PS3.5 A.4: the first item is the Basic Offset Table */
                return fail(s, HR_EPARSE, "encapsulated (%04X,%04X) has no Basic Offset Table item",
                            f->tag >> 16, f->tag & 0xffff);
            pop(s);
            return 0;
        }
        return fail(s, HR_EPARSE, "bad fragment header (%04X,%04X) length %u at %llu", group,
                    tag & 0xffff, len, (unsigned long long)hdr_pos);
    }

    /* F_ITEMDS */
    if (group == 0xfffe) {
        if (tag == TAG_ITEM_DELIM && s->sp > 0 && !f->defined) {
            pop(s);
            return 0;
        }
        return fail(s, HR_EPARSE, "unexpected (%04X,%04X) length %u in %s at %llu", group,
                    tag & 0xffff, len, s->sp ? "item" : "dataset", (unsigned long long)hdr_pos);
    }
    /* PS3.5 7.1: the elements of a data set are in ascending tag order,
     * each tag once. Enforced for a received data set (the rule of the
     * readers of stored objects, dataset.c and meta.c, that refuse a
     * repeated tag: checking the order needs one tag per level, a set of
     * seen tags would grow with the data set). */
    if (s->mode == DCM_SCAN_DATASET && f->any && tag <= f->last_tag)
        return fail(s, HR_EPARSE, "element (%04X,%04X) after (%04X,%04X): %s at %llu", group,
                    tag & 0xffff, f->last_tag >> 16, f->last_tag & 0xffff,
                    tag == f->last_tag ? "repeated tag" : "tags out of order",
                    (unsigned long long)hdr_pos);
    f->any = 1;
    f->last_tag = tag;
    /* File Meta Information is huren's to write (the stored file gets one) */
    rc = dcm_elem_value(&h, f->explicit_vr, f->big, 0, &kind, vr);
    if (rc)
        return fail_elem(s, &h, hdr_pos);
    int is_pixel = tag == TAG_PIXEL_DATA || tag == TAG_FLOAT_PIXEL || tag == TAG_DOUBLE_PIXEL;
    if (is_pixel && s->sp == 0 && !s->pixel_seen) {
        s->pixel_seen = 1;
        s->out->has_pixel_data = 1;
        s->out->pixel_offset = s->out->dataset_offset + hdr_pos;
    }
    if (len != UNDEF_LEN && len > room)
        return fail(s, HR_EPARSE, "element (%04X,%04X) length %u exceeds enclosing %s", group,
                    tag & 0xffff, len, s->sp ? "item" : "data");
    if (kind == DCM_VALUE_FRAGMENTS)
        return push(s, F_FRAG, tag, len, f->explicit_vr, f->big);
    if (kind == DCM_VALUE_SEQ)
        return push(s, F_SEQ, tag, len, f->explicit_vr, f->big);
    if (kind == DCM_VALUE_SEQ_IMPLICIT)
        return push(s, F_SEQ, tag, len, 0, 0); /* implicit VR LE inside */
    if (s->sp == 0 && !s->pixel_seen) {
        s->slot = attr_index(tag);
        if (s->slot >= 0)
            s->raw_len[s->slot] = 0;
    } else if (s->sp == 2 && s->stk[1].tag == TAG_OTHER_PIDS && s->opid_cur < DCM_OTHER_PIDS_MAX &&
               (tag == TAG_PATIENT_ID || tag == TAG_ISSUER_OF_PID)) {
        /* an item of the top-level Other Patient IDs Sequence: its id and issuer */
        s->slot = (int)N_TOP + 2 * s->opid_cur + (tag == TAG_ISSUER_OF_PID);
        s->raw_len[s->slot] = 0;
    }
    s->val_rem = len;
    s->estate = len ? E_VALUE : E_HDR;
    return 0;
}

/* Element state machine over dataset bytes. */
static int ds_parse(dcm_scanner *s, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (s->estate == E_VALUE) {
            size_t take = s->val_rem < n ? (size_t)s->val_rem : n;
            if (s->slot >= 0)
                raw_store(s, s->slot, p, take);
            p += take;
            n -= take;
            s->ds_pos += take;
            s->val_rem -= take;
            if (s->val_rem == 0) {
                s->estate = E_HDR;
                close_frames(s);
            }
            continue;
        }
        if (s->hdr_have == 0) {
            frame *f = top(s);
            if (f->end - s->ds_pos < 8)
                return fail(s, HR_EPARSE, "%s at %llu runs past the end of its container",
                            f->kind == F_ITEMDS ? "element" : "item",
                            (unsigned long long)s->ds_pos);
        }
        size_t take = s->hdr_need - s->hdr_have;
        if (take > n)
            take = n;
        memcpy(s->hdr + s->hdr_have, p, take);
        s->hdr_have += take;
        s->ds_pos += take;
        p += take;
        n -= take;
        if (s->hdr_have < s->hdr_need)
            break;
        int rc = on_header(s);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        if (s->estate == E_HDR)
            close_frames(s);
    }
    return 0;
}

/* ---- inflate layer ------------------------------------------------------ */

static int ds_input(dcm_scanner *s, const uint8_t *p, size_t n)
{
    if (!s->deflated)
        return ds_parse(s, p, n);
    if (s->z_end || n == 0)
        return 0; /* bytes after the end of the deflate stream are ignored */
    s->z.next_in = (Bytef *)p;
    s->z.avail_in = (uInt)n;
    for (;;) {
        s->z.next_out = s->zbuf;
        s->z.avail_out = INFLATE_CHUNK;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            s->z_end = 1;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return fail(s, HR_EPARSE, "deflate: %s", s->z.msg ? s->z.msg : "corrupt stream");
        size_t got = INFLATE_CHUNK - s->z.avail_out;
        int rc = ds_parse(s, s->zbuf, got);
        if (rc)
            return rc;
        if (s->z_end || (s->z.avail_in == 0 && s->z.avail_out != 0) || got == 0)
            break;
    }
    return 0;
}

/* ---- raw layer ------------------------------------------------------------ */

static int start_dataset(dcm_scanner *s, const char *ts)
{
    const dcm_ts_info *ti = NULL;
    frame *f = &s->stk[0];
    s->estate = E_HDR;
    s->hdr_need = 8;
    s->first_elem = 1;
    s->rstate = R_DATASET;
    s->out->dataset_offset = s->raw_pos;
    memset(f, 0, sizeof(*f));
    f->kind = F_ITEMDS;
    f->end = UINT64_MAX;
    if (!ts || !ts[0]) {
        s->guess_ts = 1;
        return 0;
    }
    ti = dcm_transfer_syntax(ts);
    if (!ti)
        return fail(s, HR_EUNSUP, "unsupported transfer syntax %s", ts);
    set_ts(s, ts);
    f->explicit_vr = ti->explicit_vr;
    f->big = ti->big_endian;
    if (ti->deflated) {
        s->deflated = 1;
        s->zbuf = malloc(INFLATE_CHUNK);
        if (!s->zbuf)
            return fail(s, -ENOMEM, "out of memory");
        if (inflateInit2(&s->z, -15) != Z_OK)
            return fail(s, -ENOMEM, "inflateInit2 failed");
        s->z_init = 1;
    }
    return 0;
}

/* Ends the meta group; pending = bytes already read that belong to the dataset. */
static int end_meta(dcm_scanner *s, const uint8_t *pending, size_t npending)
{
    char ts[DCM_UI_MAX] = "";
    int slot = attr_index(TAG_TRANSFER_SYNTAX);
    const char *v;
    size_t n = raw_trimmed(s, slot, 0, &v);
    if (n >= sizeof(ts))
        n = sizeof(ts) - 1;
    memcpy(ts, v, n);
    ts[n] = '\0';
    int rc = start_dataset(s, ts);
    if (rc)
        return rc;
    return ds_input(s, pending, npending);
}

/* Meta element bytes (explicit VR LE, no sequences). */
static int meta_parse(dcm_scanner *s, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (s->mval_rem > 0) {
            size_t take = s->mval_rem < n ? (size_t)s->mval_rem : n;
            if (s->mslot >= 0) {
                raw_store(s, s->mslot, p, take);
            } else if (s->mslot == -2) {
                for (size_t i = 0; i < take && s->glen_have < 4; i++)
                    s->glen[s->glen_have++] = p[i];
                if (s->glen_have == 4) {
                    s->meta_end = s->raw_pos + take + (s->mval_rem - take) + hr_rd32(s->glen, 0);
                    s->have_meta_end = 1;
                }
            }
            p += take;
            n -= take;
            s->raw_pos += take;
            s->mval_rem -= take;
            continue;
        }
        if (s->mhdr_have == 0 && s->have_meta_end && s->raw_pos >= s->meta_end) {
            const char *v;
            int slot = attr_index(TAG_TRANSFER_SYNTAX);
            size_t l = raw_trimmed(s, slot, 0, &v);
            if (l == strlen(DCM_TS_DEFLATED_LE) && memcmp(v, DCM_TS_DEFLATED_LE, l) == 0) {
                int rc = end_meta(s, NULL, 0);
                if (rc)
                    return rc;
                return ds_input(s, p, n);
            }
        }
        size_t take = s->mhdr_need - s->mhdr_have;
        if (take > n)
            take = n;
        memcpy(s->mhdr + s->mhdr_have, p, take);
        s->mhdr_have += take;
        p += take;
        n -= take;
        if (s->mhdr_have < s->mhdr_need)
            break;
        if (s->mhdr_have == 4) {
            if (hr_rd16(s->mhdr, 0) != 0x0002) {
                uint8_t pend[4];
                memcpy(pend, s->mhdr, 4);
                s->mhdr_have = 0;
                int rc = end_meta(s, pend, 4);
                if (rc)
                    return rc;
                return ds_input(s, p, n);
            }
            s->mhdr_need = 8;
            continue;
        }
        dcm_elem_hdr h;
        int rc = dcm_elem_read(s->mhdr, s->mhdr_have, 1, 0, &h);
        if (rc == DCM_ELEM_MORE) {
            s->mhdr_need = h.hdr_len;
            continue;
        }
        if (rc)
            return fail(s, rc, "meta element (0002,%04X) has invalid VR", h.tag & 0xffff);
        uint32_t tag = h.tag, len = h.len;
        if (len == UNDEF_LEN) /* no sequences in the meta group */
            return fail(s, HR_EPARSE, "meta element (0002,%04X) has undefined length",
                        tag & 0xffff);
        s->raw_pos += s->mhdr_have;
        s->mhdr_have = 0;
        s->mhdr_need = 4;
        s->mslot = tag == TAG_META_GROUP_LEN && len == 4 ? -2 : attr_index(tag);
        if (s->mslot >= 0)
            s->raw_len[s->mslot] = 0;
        s->glen_have = 0;
        s->mval_rem = len;
    }
    return 0;
}

static int raw_process(dcm_scanner *s, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (s->rstate == R_DATASET) {
            s->raw_pos += n;
            return ds_input(s, p, n);
        }
        if (s->rstate == R_META)
            return meta_parse(s, p, n);
        /* R_PREAMBLE: 128 bytes, then "DICM" collected in mhdr */
        if (s->raw_pos < PREAMBLE_LEN) {
            size_t take = PREAMBLE_LEN - (size_t)s->raw_pos;
            if (take > n)
                take = n;
            s->raw_pos += take;
            p += take;
            n -= take;
            continue;
        }
        size_t take = 4 - s->mhdr_have;
        if (take > n)
            take = n;
        memcpy(s->mhdr + s->mhdr_have, p, take);
        s->mhdr_have += take;
        s->raw_pos += take;
        p += take;
        n -= take;
        if (s->mhdr_have == 4) {
            if (memcmp(s->mhdr, "DICM", 4) != 0)
                return fail(s, HR_EPARSE, "no DICM prefix after the preamble");
            s->mhdr_have = 0;
            s->mhdr_need = 4;
            s->rstate = R_META;
        }
    }
    return 0;
}

/* AUTO: decide from the first bytes (all of them when shorter than 132). */
static int decide(dcm_scanner *s)
{
    const uint8_t *b = s->probe;
    size_t n = s->probe_len;
    if (n == PROBE_LEN && memcmp(b + PREAMBLE_LEN, "DICM", 4) == 0) {
        s->rstate = R_PREAMBLE;
        return 0;
    }
    if (n >= 8 && b[0] == 0x02 && b[1] == 0x00 && b[3] == 0x00 && is_vr(b + 4)) {
        s->rstate = R_META;
        s->mhdr_need = 4;
        return 0;
    }
    /* bare dataset: use the given TS when its encoding matches the guess */
    const dcm_ts_info *ti = dcm_transfer_syntax(s->ts_init);
    if (ti && !ti->deflated && n >= 8) {
        int ex = is_vr(b + 4);
        int big = ex && b[0] == 0 && b[1] != 0;
        if (ex == (int)ti->explicit_vr && big == (int)ti->big_endian)
            return start_dataset(s, s->ts_init);
    }
    return start_dataset(s, NULL);
}

dcm_scanner *dcm_scanner_new(enum dcm_scan_mode mode, const char *ts_uid, dcm_attrs *out)
{
    dcm_scanner *s = calloc(1, sizeof(*s));
    size_t total = 0;
    if (!s)
        return NULL;
    for (size_t i = 0; i < N_ATTRS; i++) {
        size_t cap = 2u * k_attrs[i].cap;
        if (cap > RAW_VALUE_CAP)
            cap = RAW_VALUE_CAP;
        s->raw_off[i] = (uint16_t)total;
        s->raw_cap[i] = (uint16_t)cap;
        total += cap;
    }
    s->raw = malloc(total);
    if (!s->raw) {
        free(s);
        return NULL;
    }
    memset(out, 0, sizeof(*out));
    s->out = out;
    s->mode = mode;
    s->slot = -1;
    s->mslot = -1;
    snprintf(s->ts_init, sizeof(s->ts_init), "%s", ts_uid ? ts_uid : "");
    switch (mode) {
    case DCM_SCAN_DATASET:
        s->rstate = R_DATASET;
        start_dataset(s, s->ts_init); /* an error here is sticky */
        break;
    case DCM_SCAN_PART10:
        s->rstate = R_PREAMBLE;
        break;
    default:
        s->rstate = R_PROBE;
        break;
    }
    return s;
}

void dcm_scanner_free(dcm_scanner *s)
{
    if (!s)
        return;
    if (s->z_init)
        inflateEnd(&s->z);
    free(s->zbuf);
    free(s->raw);
    free(s);
}

int dcm_scanner_feed(dcm_scanner *s, const uint8_t *p, size_t n)
{
    int rc = 0;
    if (s->err)
        return s->err;
    if (s->finished)
        return fail(s, HR_ESTATE, "feed after finish");
    if (n == 0)
        goto out;
    s->fed += n;
    if (s->rstate == R_PROBE) {
        size_t take = PROBE_LEN - s->probe_len;
        if (take > n)
            take = n;
        memcpy(s->probe + s->probe_len, p, take);
        s->probe_len += take;
        p += take;
        n -= take;
        if (s->probe_len < PROBE_LEN)
            goto out;
        rc = decide(s);
        if (rc)
            goto out;
        rc = raw_process(s, s->probe, s->probe_len);
        if (rc)
            goto out;
    }
    rc = raw_process(s, p, n);
out:
    return rc;
}

/* ---- finish: trimming and charset conversion ---------------------------- */

static void put_ascii(char *dst, size_t cap, const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\0')
            break;
        if (c >= 0x20 && c < 0x7f)
            dst[k++] = (char)c;
    }
    dst[k] = '\0';
}

static void convert_attrs(dcm_scanner *s)
{
    dcm_attrs *o = s->out;
    char *base = (char *)o;
    char used[DCM_SH_MAX] = "";
    char scratch[4];
    int guessed = 0;
    const char *v;
    size_t n;

    for (size_t i = 0; i < N_ATTRS; i++) {
        if (k_attrs[i].kind == K_UI || k_attrs[i].kind == K_CS) {
            n = raw_trimmed(s, (int)i, 0, &v);
            put_ascii(base + k_attrs[i].off, k_attrs[i].cap, v, n);
        }
    }
    if (o->transfer_syntax_uid[0] == '\0')
        snprintf(o->transfer_syntax_uid, sizeof(o->transfer_syntax_uid), "%s", s->ts_uid);

    /* one detection over all text values, so they agree on the charset */
    char joined[2048];
    size_t jl = 0;
    for (size_t i = 0; i < N_ATTRS; i++) {
        if (k_attrs[i].kind != K_TEXT && k_attrs[i].kind != K_PN)
            continue;
        n = raw_trimmed(s, (int)i, k_attrs[i].kind == K_PN, &v);
        if (n == 0 || jl + n + 1 > sizeof(joined))
            continue;
        if (jl)
            joined[jl++] = ' ';
        memcpy(joined + jl, v, n);
        jl += n;
    }
    dcm_charset_to_utf8(o->specific_charset, joined, jl, scratch, sizeof(scratch), used,
                        sizeof(used), &guessed);
    const char *cs = guessed ? used : o->specific_charset;
    for (size_t i = 0; i < N_ATTRS; i++) {
        if (k_attrs[i].kind != K_TEXT && k_attrs[i].kind != K_PN)
            continue;
        n = raw_trimmed(s, (int)i, k_attrs[i].kind == K_PN, &v);
        char *dst = base + k_attrs[i].off;
        if (n == 0) {
            dst[0] = '\0';
            continue;
        }
        dcm_charset_to_utf8(cs, v, n, dst, k_attrs[i].cap, NULL, 0, NULL);
    }
    snprintf(o->charset_used, sizeof(o->charset_used), "%s", used);
    o->charset_guessed = guessed;
}

int dcm_scanner_finish(dcm_scanner *s)
{
    int rc = 0;
    if (s->finished)
        return s->finish_rc;
    if (s->err) {
        rc = s->err;
        goto out;
    }
    if (s->rstate == R_PROBE) {
        if (s->probe_len == 0) {
            rc = fail(s, HR_ETRUNC, "no data");
            goto out;
        }
        rc = decide(s);
        if (rc)
            goto out;
        rc = raw_process(s, s->probe, s->probe_len);
        if (rc)
            goto out;
    }
    if (s->rstate == R_PREAMBLE) {
        rc = fail(s, HR_ETRUNC, "stream ended in the preamble");
        goto out;
    }
    if (s->rstate == R_META) {
        if (s->mhdr_have != 0 || s->mval_rem != 0) {
            rc = fail(s, HR_ETRUNC, "stream ended inside the file meta information");
            goto out;
        }
        rc = end_meta(s, NULL, 0); /* meta only: empty dataset */
        if (rc)
            goto out;
    }
    if (s->deflated && !s->z_end) {
        rc = fail(s, HR_ETRUNC, "deflate stream truncated");
        goto out;
    }
    if (s->estate != E_HDR || s->hdr_have != 0) {
        rc = fail(s, HR_ETRUNC, "stream ended inside an element at %llu",
                  (unsigned long long)(s->out->dataset_offset + s->ds_pos));
        goto out;
    }
    if (s->sp != 0) {
        rc = fail(s, HR_ETRUNC, "stream ended inside (%04X,%04X) at depth %d", top(s)->tag >> 16,
                  top(s)->tag & 0xffff, s->seq_depth);
        goto out;
    }
    convert_attrs(s);
    rc = DCM_SCAN_END;
out:
    s->finished = 1;
    s->finish_rc = rc;
    return rc;
}

const char *dcm_scanner_error(const dcm_scanner *s)
{
    if (s->errmsg[0])
        return s->errmsg;
    return s->err ? hr_strerror(s->err) : "no error";
}

uint64_t dcm_scanner_offset(const dcm_scanner *s)
{
    return s->fed;
}
