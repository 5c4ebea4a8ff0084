/* The report sender of huren serve (decision 0026): returns signed report
 * versions to their source hospital through the durable queue of
 * reports/delivery.h. A timer polls every delivery.poll_ms: on the thread
 * pool it expands new outbox entries, reads the queue's gauges and claims
 * due deliveries (a bounded batch, leased); each claimed attempt is then
 * prepared on the pool (the version read, the ORU built, the SR/PDF
 * written to temp files), sent on the loop (MLLP client, libcurl multi,
 * C-STORE SCU), and its result recorded on the pool (rpt_delivery_finish).
 * A stop cancels what is under way without recording it: those leases run
 * out and another node, or this one after a restart, attempts them again. */
#ifndef GW_DELIVER_H
#define GW_DELIVER_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"
#include "../reports/delivery.h"
#include "../storage/ingest.h"

#include <stdint.h>
#include <uv.h>

typedef struct gw_deliver gw_deliver;

/* Starts the sender on loop. cfg and sto (its Redis address and temp
 * directory) must outlive it. 0, -ENOMEM, -EIO (libcurl). */
int gw_deliver_start(uv_loop_t *loop, const hr_config *cfg, const sto_ctx *sto, gw_deliver **out);
/* Stops: no new poll or attempt; attempts under way are abandoned (their
 * lease runs out); once the pool jobs under way have returned and every
 * handle is closed, d is freed and stopped(arg) runs. */
void gw_deliver_stop(gw_deliver *d, void (*stopped)(void *arg), void *arg);
/* Appends the /metrics lines of the sender (Prometheus text). */
void gw_deliver_metrics(gw_deliver *d, hr_buf *out);

/* ---- internal to gateway/deliver*.c: the DICOM channel ---- */

typedef struct gw__dlv_dicom gw__dlv_dicom;

/* On the pool: writes the version's Basic Text SR and/or Encapsulated PDF
 * (h->dicom.what) into temp files under tmp_dir, with UIDs that are a
 * function of the report, version and kind (a resend is the same instance);
 * verify_url is printed on the PDF and encoded in its QR code.
 * *out: free with gw__dlv_dicom_cleanup. 0, or a code with why (cap) set. */
int gw__dlv_dicom_prepare(const hr_config *cfg, const char *tmp_dir, redisContext *c,
                          const rpt_version *v, const dlv_hospital *h, const char *verify_url,
                          gw__dlv_dicom **out, char *why, size_t cap);
/* On the loop: C-STORE of the files to h->dicom.ae_title (one
 * association); done(arg, ok, detail) once (detail valid during the call;
 * ok only when every object was stored, status 0000 or a warning). 0, or
 * -ENOMEM / HR_ENOTFOUND (no such destination): then done is not called. */
int gw__dlv_dicom_send(uv_loop_t *loop, const hr_config *cfg, gw__dlv_dicom *x,
                       const dlv_hospital *h, int timeout_ms,
                       void (*done)(void *arg, int ok, const char *detail), void *arg);
/* On the loop: abandons a send under way (done follows, not ok). */
void gw__dlv_dicom_cancel(gw__dlv_dicom *x);
/* 1 while a send is under way (handles open). */
int gw__dlv_dicom_busy(const gw__dlv_dicom *x);
/* On the pool (it unlinks files): removes the temp files and frees x (NULL ok). */
void gw__dlv_dicom_cleanup(gw__dlv_dicom *x);

#endif
