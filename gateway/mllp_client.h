/* One HL7 v2 message sent over MLLP on the loop, waiting for its ACK (the
 * report sender's HL7 channel, decision 0026): resolve, connect (TCP_NODELAY),
 * write the frame, read until one framed reply is complete (bounded), read
 * the ACK (reports/oru.h), close. One connection per message: the hub sends
 * a report now and then, not a stream. Internal to gateway/. */
#ifndef GW_MLLP_CLIENT_H
#define GW_MLLP_CLIENT_H

#include "../reports/oru.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_mllp_client gw_mllp_client;

/* What to send. Strings and msg are copied. */
typedef struct gw_mllp_params {
    const char *host; /* name or address */
    int port;
    const uint8_t *msg; /* one HL7 message, unframed */
    size_t len;
    const char *control_id; /* its MSH-10, which the ACK's MSA-2 must echo */
    int timeout_ms;         /* the whole exchange */
    size_t max_reply;       /* bytes of the reply, at most (0: 64 KiB) */
} gw_mllp_params;

/* The outcome, once. rc 0: accepted (MSA-1 AA or CA, MSA-2 = control id).
 * HR_EPROTO: refused (AE, AR, CE, CR, or another message's id); ack holds
 * it. HR_EPARSE: the reply is not a framed HL7 ACK; HR_ETOOBIG: longer than
 * max_reply. -ETIMEDOUT, -ECANCELED (gw_mllp_cancel), -ECONNRESET (closed
 * before the ACK), or the connect/resolve error as -errno. ack is NULL
 * unless an ACK was read; detail is one line for the delivery log (valid
 * during the call). The client is freed right after cb returns. */
typedef void (*gw_mllp_cb)(void *arg, int rc, const rpt_hl7_ack *ack, const char *detail);

/* Starts the exchange; cb runs exactly once, from a later loop callback.
 * *out (may be NULL) lets the caller cancel until cb. 0, or -ENOMEM /
 * -EINVAL (then cb is not called). */
int gw_mllp_send(uv_loop_t *loop, const gw_mllp_params *p, gw_mllp_cb cb, void *arg,
                 gw_mllp_client **out);
/* Gives up now: cb follows with -ECANCELED (unless the outcome was already
 * decided; it still follows once). */
void gw_mllp_cancel(gw_mllp_client *c);

#endif
