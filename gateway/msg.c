/* DIMSE messages as P-DATA-TF PDUs, and copied writes; shared by the SCP
 * associations and the outbound (C-MOVE) associations. */
#include "assoc.h"
#include "../common/hr_err.h"

#include <stdlib.h>
#include <string.h>

typedef struct copy_req {
    uv_write_t req;
    gw_sent_cb cb;
    void *arg;
    uint8_t data[];
} copy_req;

uint32_t gw__pdv_room(uint32_t peer_max_pdu)
{
    uint32_t room = peer_max_pdu ? peer_max_pdu - 6 : GW_PDV_DEFAULT;
    if (room > GW_PDV_DEFAULT)
        room = GW_PDV_DEFAULT;
    return room & ~1u;
}

static int put_pdvs(hr_buf *out, uint32_t room, uint8_t pc_id, int is_command, const uint8_t *p,
                    size_t n)
{
    size_t off = 0;
    int rc = 0;
    do {
        uint32_t len = n - off > room ? room : (uint32_t)(n - off);
        uint8_t hdr[12];
        dcm_pdata_header(hdr, pc_id, is_command, off + len == n, len);
        rc = hr_buf_append(out, hdr, sizeof(hdr));
        if (!rc)
            rc = hr_buf_append(out, p + off, len);
        off += len;
    } while (!rc && off < n);
    return rc;
}

int gw__encode_message(hr_buf *out, uint32_t peer_max_pdu, uint8_t pc_id, const dcm_command *c,
                       const uint8_t *ds, size_t ds_len)
{
    size_t start = out->len;
    uint32_t room = gw__pdv_room(peer_max_pdu);
    int rc = dcm_command_encode(c, out);
    if (rc)
        return rc;
    /* the command set was encoded at the end of out: move it to scratch
     * space past itself, then frame it */
    size_t cmd_len = out->len - start;
    uint8_t *cmd = malloc(cmd_len);
    if (!cmd) {
        out->len = start;
        return -ENOMEM;
    }
    memcpy(cmd, out->data + start, cmd_len);
    out->len = start;
    rc = put_pdvs(out, room, pc_id, 1, cmd, cmd_len);
    free(cmd);
    if (!rc && ds)
        rc = put_pdvs(out, room, pc_id, 0, ds, ds_len);
    if (rc)
        out->len = start;
    return rc;
}

static void on_copy_written(uv_write_t *req, int status)
{
    copy_req *w = (copy_req *)req;
    gw_sent_cb cb = w->cb;
    void *arg = w->arg;
    free(w);
    if (cb)
        cb(arg, status);
}

int gw__write_copy(uv_stream_t *s, const uint8_t *p, size_t n, gw_sent_cb cb, void *arg)
{
    copy_req *w = malloc(sizeof(*w) + n);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, p, n);
    w->cb = cb;
    w->arg = arg;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int rc = uv_write(&w->req, s, &b, 1, on_copy_written);
    if (rc)
        free(w);
    return rc;
}
