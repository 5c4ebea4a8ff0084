/* The HTTP server (libmicrohttpd driven by the libuv loop, decision 0018):
 * DICOMweb under /dicomweb, REST under /api/v1, /healthz and /metrics.
 * HTTP/1.1 with keep-alive, over TLS (GnuTLS) when a certificate is
 * configured; no HTTP/2 for now. Every call but /healthz and CORS preflights
 * needs a bearer token (POST /api/v1/login), checked before any byte of a
 * request body is read. The API is described in docs/openapi.yaml. */
#ifndef VA_HTTP_H
#define VA_HTTP_H

#include "../common/hr_config.h"
#include "../common/hr_buf.h"
#include "../storage/ingest.h"

#include <uv.h>

typedef struct va_server va_server;

/* Appends Prometheus text lines for subsystems the HTTP layer does not own
 * (DICOM associations, ...). */
typedef void (*va_metrics_fn)(void *arg, hr_buf *out);

/* Binds cfg->http.listen and serves. cfg and sto (with its index, Redis
 * address and audit log) must outlive the server. 0, HR_ECONFIG (TLS files),
 * or a negative libuv code. */
int va_server_start(uv_loop_t *loop, const hr_config *cfg, sto_ctx *sto, va_metrics_fn metrics,
                    void *metrics_arg, va_server **out);
/* Stops accepting, lets requests in progress finish (connections closed
 * after their response) for at most 10 s, frees the server, then cb. */
void va_server_stop(va_server *s, void (*cb)(void *), void *arg);

#endif
