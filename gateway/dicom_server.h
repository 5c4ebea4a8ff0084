/* DICOM upper-layer listener on libuv: accepts associations from configured
 * hospitals' AE titles and addresses, serves C-ECHO, C-STORE (into the
 * durable ingest path), and C-FIND, C-MOVE and C-GET (Patient and Study
 * Root) over the index within the calling hospital's scope (gateway/qr.h).
 * sto->redis_addr and sto->audit are used by the query/retrieve services. */
#ifndef GW_DICOM_SERVER_H
#define GW_DICOM_SERVER_H

#include "../common/hr_config.h"
#include "../storage/ingest.h"

#include <stdint.h>
#include <uv.h>

typedef struct gw_dicom_stats {
    uint64_t associations_total;
    uint64_t associations_rejected;
    uint64_t associations_aborted;
    int associations_active;
    uint64_t stores_ok, stores_failed;
} gw_dicom_stats;

typedef struct gw_dicom_server gw_dicom_server;

/* Binds and listens on cfg->dicom.listen. cfg and sto must outlive the
 * server. 0 or a negative libuv/errno code. */
int gw_dicom_server_start(uv_loop_t *loop, const hr_config *cfg, sto_ctx *sto,
                          gw_dicom_server **out);
/* Stops listening, aborts open associations (their partial objects are
 * discarded), frees the server once every handle is closed; then cb. */
void gw_dicom_server_stop(gw_dicom_server *s, void (*cb)(void *), void *arg);
const gw_dicom_stats *gw_dicom_server_stats(const gw_dicom_server *s);

#endif
