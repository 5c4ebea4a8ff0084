/* HL7 v2 messages as received (lab results over MLLP, decision 0036): a
 * pure, bounded, resumable parser and the ACK that answers a message.
 *
 * Segments end with CR (LF and CRLF tolerated; empty lines skipped). The
 * separators are read from MSH-1 and MSH-2 (any characters, not only
 * |^~\&). Every value is returned unescaped (\F\ \S\ \T\ \R\ \E\ \Xhh..\,
 * \.br\ as a line feed, \H\ \N\ dropped) and converted to UTF-8 from the
 * MSH-18 character set: "UNICODE UTF-8", "GB 18030-2000" (also "GB18030",
 * "GBK", "GB2312"), "8859/1", "ASCII" (also "UTF-8"). In GB 18030 the
 * trailing bytes of a character are never read as separators. Versions
 * (MSH-12) 2.3 to 2.5.1 are accepted.
 *
 * Layers: rpt_hl7_parser (fed bytes: need more / one segment / error) ->
 * rpt_hl7_msg (one arena per message, read with the accessors) ->
 * rpt_hl7_ack_build. No I/O, no globals: tests and fuzz/fuzz_hl7.c call
 * them directly. */
#ifndef RPT_HL7_H
#define RPT_HL7_H

#include "../common/hr_buf.h"

#include <stddef.h>
#include <stdint.h>

/* Caps (each excess: HR_ETOOBIG, err AE 207). */
#define RPT_HL7_MAX_SEGMENTS 10000       /* segments in one message */
#define RPT_HL7_MAX_FIELDS   1000        /* fields in one segment */
#define RPT_HL7_MAX_REPS     1000        /* repetitions of one field */
#define RPT_HL7_MAX_COMPS    100         /* components of a repetition, subcomponents of one */
#define RPT_HL7_MAX_SEGMENT  (4u << 20)  /* bytes of one segment */
#define RPT_HL7_MAX_ARENA    (64u << 20) /* bytes the parsed message may hold */

typedef struct rpt_hl7_msg rpt_hl7_msg; /* one parsed message, one allocation arena */
typedef struct rpt_hl7_seg rpt_hl7_seg; /* one segment of it (owned by the message) */

/* Why a message is refused (for the ACK's MSA and ERR). */
typedef struct rpt_hl7_err {
    char ack[3]; /* "AE" or "AR" */
    int code;    /* HL7 table 0357: 100 segment sequence, 101 required field missing,
                    102 data type, 103 table value not found, 200 unsupported message
                    type, 201 unsupported event, 203 unsupported version, 204 unknown key,
                    206 application record locked, 207 application internal error */
    char seg[4];
    int seq;
    int field;      /* ERR-2 location (segment id, its ordinal among segments of that id,
                       field); "" / 0 when none */
    char text[256]; /* one sentence, English */
    /* What could be read of the refused message's MSH (UTF-8, unescaped; "" when
       not read), so that rpt_hl7_ack_build(NULL, ...) still answers it. */
    char control_id[200]; /* MSH-10 */
    char version[16];     /* MSH-12.1 */
    char charset[32];     /* MSH-18 as declared */
    char app[128];        /* MSH-3 (components joined with ^ &) */
    char facility[128];   /* MSH-4 */
} rpt_hl7_err;

/* Fills err (ack "AE"/"AR", code, location, text as printf). Returns HR_EPARSE. */
int rpt_hl7_err_set(rpt_hl7_err *err, const char *ack, int code, const char *seg, int seq,
                    int field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* 1 when name is an MSH-18 value the parser reads (for configuration checks). */
int rpt_hl7_charset_known(const char *name);

/* ---- the resumable parser underneath ---- */

enum rpt_hl7_result {
    RPT_HL7_NEED_MORE = 0, /* every byte consumed, no segment completed */
    RPT_HL7_SEGMENT = 1,   /* one segment completed and added (bytes after it not consumed) */
};

#define RPT_HL7_LOOSE                                                                              \
    1 /* flag: no version/control id checks, unknown charset or invalid bytes                      \
         read as ISO 8859-1 (ACK reading: the text is only for logs) */

/* Parser state: the segment being collected and the message built so far. */
typedef struct rpt_hl7_parser {
    int state;                /* before MSH, in a segment, failed, done */
    int flags;                /* RPT_HL7_LOOSE or 0 */
    char default_charset[32]; /* used when MSH-18 is empty */
    hr_buf seg;               /* the raw segment being collected (cap RPT_HL7_MAX_SEGMENT) */
    rpt_hl7_msg *msg;         /* the message being built (NULL before the first segment) */
    rpt_hl7_err err;          /* why, after an error */
    int rc;                   /* the error, once failed */
} rpt_hl7_parser;

/* A parser for one message; default_charset as for rpt_hl7_parse (NULL: "ASCII"),
 * flags 0 or RPT_HL7_LOOSE. Allocates nothing yet. */
void rpt_hl7_parser_init(rpt_hl7_parser *p, const char *default_charset, int flags);
/* Frees everything the parser holds (including an unfinished message). */
void rpt_hl7_parser_free(rpt_hl7_parser *p);
/* Feeds b[0..n); *used = bytes consumed (<= n). RPT_HL7_NEED_MORE (all consumed),
 * RPT_HL7_SEGMENT (one segment done: feed the rest again), or an error with p->err
 * filled: HR_EPARSE, HR_ETOOBIG (a cap), -ENOMEM. After an error the parser stays
 * failed (same error again). */
int rpt_hl7_parser_feed(rpt_hl7_parser *p, const uint8_t *b, size_t n, size_t *used);
/* End of the message: takes a last segment without its CR, checks the message
 * (an MSH, its control id) and hands it over in *out (free with rpt_hl7_free).
 * 0, or the errors of feed (p->err filled); HR_EPARSE (AE 207) when called
 * again after handing a message over. */
int rpt_hl7_parser_finish(rpt_hl7_parser *p, rpt_hl7_msg **out);

/* ---- whole messages ---- */

/* Parses one complete message (segments end CR; LF/CRLF tolerated).
 * default_charset: HL7 MSH-18 name used when MSH-18 is empty ("UNICODE UTF-8",
 * "GB 18030-2000", "8859/1"; NULL: "ASCII"); all text is returned as UTF-8,
 * unescaped. 0 with *out (free with rpt_hl7_free); HR_EPARSE with err filled
 * (err->ack "AR" when the message has no usable MSH/separators or an unsupported
 * version, else "AE"); HR_ETOOBIG (a cap, err AE 207); -ENOMEM. *out is NULL
 * on error. err may not be NULL. */
int rpt_hl7_parse(const uint8_t *msg, size_t len, const char *default_charset, rpt_hl7_msg **out,
                  rpt_hl7_err *err);
/* Frees m and everything read from it (NULL is fine). */
void rpt_hl7_free(rpt_hl7_msg *m);
/* Segments in order (MSH first). */
size_t rpt_hl7_nseg(const rpt_hl7_msg *m);
/* Segment i (< nseg), NULL beyond. Owned by m. */
const rpt_hl7_seg *rpt_hl7_seg_at(const rpt_hl7_msg *m, size_t i);
/* "MSH", "OBX", ... (owned by m). */
const char *rpt_hl7_seg_name(const rpt_hl7_seg *s);
/* Field value, UTF-8, unescaped; "" when absent. field numbering as the
 * standard (MSH-1 is the field separator, MSH-2 the encoding characters);
 * rep 0-based repetition, comp/sub 1-based (0 = the whole field/component,
 * with delimiters kept as the default ^ & for display). Valid while m lives. */
const char *rpt_hl7_get(const rpt_hl7_seg *s, int field, int rep, int comp, int sub);
/* Repetitions of a field, 0 when it is empty or absent. */
int rpt_hl7_reps(const rpt_hl7_seg *s, int field);
/* Highest field number present in s (0 for a segment with only its id). */
int rpt_hl7_nfields(const rpt_hl7_seg *s);
/* Components of a repetition of a field (0 when absent). */
int rpt_hl7_ncomps(const rpt_hl7_seg *s, int field, int rep);
/* The MSH segment (never NULL for a parsed message). */
const rpt_hl7_seg *rpt_hl7_msh(const rpt_hl7_msg *m);
/* The first segment named name at index >= from, NULL when none. */
const rpt_hl7_seg *rpt_hl7_find(const rpt_hl7_msg *m, const char *name, size_t from, size_t *index);
/* The MSH-18 name the message was read with (its declared one, or the default). */
const char *rpt_hl7_charset(const rpt_hl7_msg *m);

/* ---- acknowledgements ---- */

#define RPT_HL7_ACK_MAX 16384 /* bytes of one built ACK, at most (echoed values are cut) */

/* Builds an ACK (MSH, MSA, ERR when err) answering m (m may be NULL when the
 * message could not be parsed: then the MSH echo fields of err are used, MSA-2
 * is err->control_id or ""), MSH-3/4 = HUREN/hub_facility, MSH-5/6 = m's MSH-3/4,
 * same version and charset as m (version 2.5.1 and UTF-8 when unknown), MSH-9
 * ACK^<event>^ACK, MSH-10 a new id derived from m's ("A" + its whole
 * characters within 19 bytes), MSH-7 now_ms. code "AA" "AE" "AR" (or CA CE CR). Segments end
 * with CR. Echoed values are cut (MSH-5/6 at 200 bytes, others at 255) on a
 * character boundary, so an ACK can always be built. Appends to out. 0,
 * -EINVAL (bad code), -ENOMEM, HR_ETOOBIG (out's cap). */
int rpt_hl7_ack_build(const rpt_hl7_msg *m, const char *code, const rpt_hl7_err *err,
                      const char *hub_facility, long long now_ms, hr_buf *out);

#endif
