/* MLLP framing (HL7 v2 Minimal Lower Layer Protocol, HL7 v2.5.1 Appendix
 * C): a message travels as 0x0B <message> 0x1C 0x0D. Pure functions: the
 * encoder appends a frame to a buffer; the decoder is fed bytes and returns
 * one of three outcomes (a message is complete / need more / error), its
 * state kept in a struct so decoding resumes on the next read. Used by the
 * report sender's MLLP client (mllp_client.c) and by the MLLP listener to
 * come. Between frames, NUL, CR and LF bytes are skipped (senders pad and
 * terminate frames with them); any other byte there is an error. */
#ifndef GW_MLLP_H
#define GW_MLLP_H

#include "../common/hr_buf.h"

#include <stddef.h>
#include <stdint.h>

#define GW_MLLP_SB 0x0B /* start block */
#define GW_MLLP_EB 0x1C /* end block, followed by ... */
#define GW_MLLP_CR 0x0D /* ... a carriage return */

/* Appends the frame of msg[0..n) to out. 0, -ENOMEM, HR_ETOOBIG (out's cap). */
int gw_mllp_frame(const uint8_t *msg, size_t n, hr_buf *out);

enum gw_mllp_result {
    GW_MLLP_NEED_MORE = 0, /* every byte consumed, no complete message yet */
    GW_MLLP_MESSAGE = 1,   /* a message is complete: gw_mllp_message() */
};

/* Decoder state. The message buffer grows up to the cap given at init. */
typedef struct gw_mllp_dec {
    int state;  /* between frames, in a frame, after 0x1C, message ready */
    hr_buf msg; /* the message (without framing) being collected */
} gw_mllp_dec;

/* A decoder taking messages of at most max bytes; allocates nothing yet. */
void gw_mllp_dec_init(gw_mllp_dec *d, size_t max);
/* Frees the message buffer; d may be initialised again. */
void gw_mllp_dec_free(gw_mllp_dec *d);
/* Feeds p[0..n); *used = bytes consumed. GW_MLLP_MESSAGE: a message is
 * complete (bytes after its 0x1C 0x0D are not consumed: feed them again
 * after taking the message); GW_MLLP_NEED_MORE: all n consumed. Errors:
 * HR_EPARSE (a byte other than NUL/CR/LF between frames, 0x0B inside a
 * message, 0x1C not followed by 0x0D), HR_ETOOBIG (a message longer than
 * max), -ENOMEM. After an error the decoder stays failed until reset. */
int gw_mllp_feed(gw_mllp_dec *d, const uint8_t *p, size_t n, size_t *used);
/* The complete message after GW_MLLP_MESSAGE (owned by d; valid until the
 * next feed or reset). */
const uint8_t *gw_mllp_message(const gw_mllp_dec *d, size_t *len);
/* Back to "between frames", keeping the buffer. */
void gw_mllp_dec_reset(gw_mllp_dec *d);

#endif
