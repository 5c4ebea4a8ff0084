/* HL7 v2 MLLP listener on libuv (decision 0037): admits TCP connections only
 * from configured hospitals' addresses (hr_hospital_allows), decodes MLLP
 * frames (gateway/mllp.h) and hands each complete message to a handler (the
 * lab ingest, reports/lab.h, wired by cli/serve.c), then frames and writes
 * the ACK the handler gives back. One message in flight per connection:
 * reading stops while it is handled (backpressure), so the messages of one
 * connection are answered in order. A message longer than
 * hl7.max_message_bytes gets an AR (gw_hl7_refusal or the handler's) and the
 * connection closes; a framing error closes it; so does hl7.idle_timeout_s
 * without a byte while no message is under way. */
#ifndef GW_HL7_SERVER_H
#define GW_HL7_SERVER_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Who sent a message: the hospital whose addresses hold the peer's, and the
 * peer as "ip:port" (for logs and the audit). Valid during the handler call
 * only (copy what is kept). */
typedef struct gw_hl7_peer {
    const char *hospital;
    const char *peer;
} gw_hl7_peer;

/* The handler's answer, exactly once per accepted message, on the loop, from
 * a later callback (never from inside ingest()). rc 0 with the unframed ACK
 * (borrowed: valid during the call); rc < 0 and no ACK: the connection is
 * closed without an answer (the sender retries). */
typedef void (*gw_hl7_reply_cb)(void *arg, int rc, const uint8_t *ack, size_t ack_len);

/* What the listener calls. Strings and bytes are borrowed for the call. */
typedef struct gw_hl7_handler {
    /* One complete message (unframed). 0 and reply() follows later; < 0 and
     * reply() is never called (the connection closes). lab_ingest's shape. */
    int (*ingest)(void *ctx, const uint8_t *msg, size_t len, const gw_hl7_peer *peer,
                  gw_hl7_reply_cb reply, void *arg);
    /* NULL: gw_hl7_refusal() with hl7.facility. Else appends to out an AR
     * refusing a message the listener will not hand on
     * (HL7 table 0357 code, one English sentence); head holds the first
     * bytes of that message (its MSH when they reach that far, for MSA-2 and
     * the ACK's addressing). 0 or < 0 (then the connection just closes). */
    int (*refuse)(void *ctx, const uint8_t *head, size_t len, int code, const char *text,
                  hr_buf *out);
    void *ctx;
} gw_hl7_handler;

/* Counters of /metrics (huren_hl7_*). Updated on the loop thread. */
typedef struct gw_hl7_stats {
    uint64_t connections_total;   /* admitted */
    uint64_t connections_refused; /* closed at accept: unknown address or max_connections */
    int connections_open;
    int in_flight;           /* messages handed to the handler, not yet answered */
    uint64_t messages_total; /* complete messages received (including refused ones) */
    uint64_t acks[3];        /* ACKs written: [0] AA (or CA), [1] AE, [2] AR */
    uint64_t framing_errors; /* connections closed on a framing error */
    uint64_t too_long;       /* messages over hl7.max_message_bytes */
    uint64_t idle_closed;    /* connections closed by hl7.idle_timeout_s */
} gw_hl7_stats;

typedef struct gw_hl7_server gw_hl7_server;

/* Binds and listens on cfg->hl7.host:port. cfg and h->ctx must outlive the
 * server; *h is copied. 0 or a negative libuv code. */
int gw_hl7_server_start(uv_loop_t *loop, const hr_config *cfg, const gw_hl7_handler *h,
                        gw_hl7_server **out);
/* The port bound (the OS's pick when cfg->hl7.port is 0, which tests set
 * after loading; the file's rule is 1..65535), or a negative libuv code. */
int gw_hl7_server_port(const gw_hl7_server *s);
/* Stops listening and closes every connection (a message in flight has its
 * reply dropped: the sender resends it, and the handler's deduplication
 * answers AA without a second copy); frees the server once every handle is
 * closed and every handler reply has come; then cb(arg). */
void gw_hl7_server_stop(gw_hl7_server *s, void (*cb)(void *), void *arg);
/* The counters (owned by s; valid until the stop's cb). */
const gw_hl7_stats *gw_hl7_server_stats(const gw_hl7_server *s);
/* Appends the huren_hl7_* lines of /metrics. */
void gw_hl7_server_metrics(const gw_hl7_server *s, hr_buf *out);

/* MSH-10 of a message's first bytes (its first segment when that is MSH with
 * usable separators), at most cap-1 printable characters, into id; "" when
 * none. Pure; for the refusal of a message that is not read in full. */
void gw_hl7_control_id(const uint8_t *head, size_t len, char *id, size_t cap);

/* The AR refusing a message from its first bytes head[0..len) (the listener
 * uses it when the handler has no refuse()): MSH read from them when they
 * hold it all (rpt_hl7_parse of that segment), else only MSH-10; an ERR with
 * code (HL7 table 0357) and text; MSH-4 = facility. Appends to out.
 * 0, -ENOMEM, HR_ETOOBIG (out's cap). */
int gw_hl7_refusal(const uint8_t *head, size_t len, int code, const char *text,
                   const char *facility, long long now_ms, hr_buf *out);

#endif
