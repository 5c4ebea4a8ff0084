/* Server-sent events of worklist changes: GET /api/v1/events
 * (text/event-stream). One shared reader per node: when woken, a single
 * pool job reads the events past the newest one the node has read from the
 * worklist event stream in Redis (hr:wl:events, worklist/worklist.h), 256
 * at a time, formats each once and keeps the last 4096 in a ring; every live
 * stream sends from the ring what its filter lets through, at most
 * VA_SSE_BATCH events per send and only once its client has taken the
 * previous ones (a slow client holds only a cursor). A stream whose cursor
 * is not in the ring (a replay by Last-Event-ID, or a client left behind by
 * the ring) reads on its own from Redis, VA_SSE_BATCH at a time, until it is
 * caught up, then joins the ring. A notification on WL_NOTIFY_CHANNEL (any
 * node's change) wakes the reader; the process wiring (cli/serve.c)
 * subscribes and calls va_sse_wake.
 *
 * A stream lives as long as its session: every heartbeat checks the token
 * again (on the pool), so a logout, a password change or a disabled user
 * ends it within one heartbeat, and it ends when the token expires; the
 * client gets `event: end` with the reason, then the end of the response.
 * A user has at most VA_SSE_PER_USER streams per node (429 beyond).
 *
 * GET /api/v1/alerts/events (decision 0040) is the same machinery in alert
 * mode: the critical-value events ("alert.*", written to the same stream by
 * reports/alert_script.lua) go only to alert streams -- to the ordering
 * hospital's users, the reading center's readers and auditors, the alert's
 * current target, admins and the office -- and never to worklist streams. */
#ifndef VA_SSE_H
#define VA_SSE_H

#include "http.h"

#include <stdint.h>

#define VA_SSE_HEARTBEAT_MS 15000 /* a comment line this often; also re-reads the stream */
#define VA_SSE_BATCH        64    /* events per send; per own read of a stream */
#define VA_SSE_RETRY_MS     2000  /* the `retry:` advice sent to clients */
#define VA_SSE_PER_USER     8     /* open streams per user per node; more get 429 */

/* New events may be in the stream (a notification, or the subscription
 * came back after a Redis outage): every open stream reads past its cursor
 * as soon as its client has taken what was sent. Loop thread only. */
void va_sse_wake(va_server *s);

/* Ends every open stream (the final chunk goes out once the client took
 * what was pending) and answers new ones 503. Call before va_server_stop so
 * open streams do not hold the stop for its grace period. Loop thread only. */
void va_sse_close_all(va_server *s);

/* Open streams. */
int va_sse_count(const va_server *s);

/* For /metrics: open streams, bytes held for their clients now (at most one
 * batch each), events sent since start. Loop thread only. */
void va_sse_stats(const va_server *s, int *streams, uint64_t *held_bytes, uint64_t *events);

#endif
