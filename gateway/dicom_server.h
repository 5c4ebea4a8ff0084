/* DICOM upper-layer listener on libuv: admits TCP connections only from
 * configured hospitals' addresses, within per-address and reserve limits
 * (decision 0012); accepts associations from their AE titles; serves
 * C-ECHO, C-STORE (into the durable ingest path), and C-FIND, C-MOVE and C-GET (Patient and Study
 * Root) over the index within the calling hospital's scope (gateway/qr.h).
 * sto->redis_addr and sto->audit are used by the query/retrieve services. */
#ifndef GW_DICOM_SERVER_H
#define GW_DICOM_SERVER_H

#include "../common/hr_config.h"
#include "../storage/ingest.h"

#include <stdint.h>
#include <uv.h>

/* Why a TCP connection was closed at accept, before any PDU was read
 * (decision 0012). */
enum gw_refusal {
    GW_REFUSED_ADDRESS,     /* the peer address is in no hospital's addresses */
    GW_REFUSED_PER_ADDRESS, /* dicom.max_per_address connections from it already */
    GW_REFUSED_RESERVE,     /* only reserved slots left, and it has one open */
    GW_REFUSED_CAPACITY,    /* twice dicom.max_associations connections open */
    GW_REFUSALS
};

typedef struct gw_dicom_stats {
    uint64_t associations_total;
    uint64_t associations_rejected;
    uint64_t associations_aborted;
    int associations_active;
    uint64_t stores_ok, stores_failed;
    int connections_open; /* admitted TCP connections, any association state */
    uint64_t connections_refused[GW_REFUSALS];
} gw_dicom_stats;

/* "address" "per_address" "reserve" "capacity" (the /metrics label). */
const char *gw_refusal_name(enum gw_refusal r);

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
