/* Outbound HTTP(S) POSTs on the loop with libcurl's multi interface
 * (decision 0026): curl_multi_socket_action driven by a uv_poll_t per socket
 * and one uv_timer_t, never a blocking call on the loop (name resolution is
 * libcurl's threaded resolver). The report sender's webhook channel uses it.
 * Internal to gateway/. */
#ifndef GW_WEBHOOK_H
#define GW_WEBHOOK_H

#include <stddef.h>
#include <uv.h>

#define GW_WEBHOOK_KEEP     1024       /* bytes of a response body kept for the log */
#define GW_WEBHOOK_BODY_MAX (1u << 20) /* a longer response body aborts the transfer */
#define GW_WEBHOOK_HEADERS  8          /* extra request headers, at most */

typedef struct gw_webhook gw_webhook;
typedef struct gw_webhook_xfer gw_webhook_xfer;

/* One multi handle on loop. 0, -ENOMEM, -EIO (libcurl failed to start). */
int gw_webhook_open(uv_loop_t *loop, gw_webhook **out);
/* Cancels every transfer (their callbacks run with -ECANCELED before this
 * returns), closes the handles, frees w, then calls closed(arg) (may be
 * NULL) from a later loop callback. */
void gw_webhook_close(gw_webhook *w, void (*closed)(void *arg), void *arg);

/* One POST. Strings and body are copied. */
typedef struct gw_webhook_req {
    const char *url;                             /* http:// or https:// only */
    const char *content_type;                    /* e.g. "application/jose" */
    const char *bearer;                          /* NULL or "": no Authorization */
    const char *ca_file;                         /* NULL or "": the system's anchors */
    const char *headers[GW_WEBHOOK_HEADERS + 1]; /* "Name: value", NULL-terminated */
    const char *body;
    size_t len;
    int timeout_ms; /* the whole exchange; connect included */
} gw_webhook_req;

/* The outcome, once. rc 0: an HTTP answer came (status is its code, any);
 * else -ETIMEDOUT, -ECONNREFUSED, -ECANCELED, HR_ETOOBIG (response body
 * over GW_WEBHOOK_BODY_MAX), HR_ECERT (TLS verification), -EIO (other
 * libcurl errors). detail: one line for the delivery log (libcurl's error,
 * or the status and the start of the body), valid during the call. The
 * transfer is freed right after cb returns. */
typedef void (*gw_webhook_cb)(void *arg, int rc, long status, const char *detail);

/* Starts a POST; cb runs exactly once from a later loop callback. *out (may
 * be NULL) allows gw_webhook_cancel until cb. 0, -EINVAL (not an http(s)
 * URL, too many headers), -ENOMEM, -EIO; then cb is not called. */
int gw_webhook_post(gw_webhook *w, const gw_webhook_req *r, gw_webhook_cb cb, void *arg,
                    gw_webhook_xfer **out);
/* Gives up now: cb runs with -ECANCELED from a later loop callback. */
void gw_webhook_cancel(gw_webhook_xfer *x);
/* Transfers under way. */
int gw_webhook_active(const gw_webhook *w);

#endif
