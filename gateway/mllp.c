/* MLLP frame encoder and resumable decoder (mllp.h). */
#include "mllp.h"
#include "../common/hr_err.h"

#include <string.h>

enum { ST_IDLE, ST_IN, ST_EB, ST_DONE, ST_FAILED };

int gw_mllp_frame(const uint8_t *msg, size_t n, hr_buf *out)
{
    static const uint8_t sb = GW_MLLP_SB, tail[2] = {GW_MLLP_EB, GW_MLLP_CR};
    if (n > SIZE_MAX - 3)
        return HR_ETOOBIG;
    int rc = hr_buf_reserve(out, n + 3);
    if (!rc)
        rc = hr_buf_append(out, &sb, 1);
    if (!rc)
        rc = hr_buf_append(out, msg, n);
    if (!rc)
        rc = hr_buf_append(out, tail, 2);
    return rc;
}

void gw_mllp_dec_init(gw_mllp_dec *d, size_t max)
{
    d->state = ST_IDLE;
    hr_buf_init(&d->msg, max);
}

void gw_mllp_dec_free(gw_mllp_dec *d)
{
    hr_buf_free(&d->msg);
    d->state = ST_IDLE;
}

void gw_mllp_dec_reset(gw_mllp_dec *d)
{
    hr_buf_reset(&d->msg);
    d->state = ST_IDLE;
}

const uint8_t *gw_mllp_message(const gw_mllp_dec *d, size_t *len)
{
    *len = d->state == ST_DONE ? d->msg.len : 0;
    return d->state == ST_DONE ? d->msg.data : NULL;
}

int gw_mllp_feed(gw_mllp_dec *d, const uint8_t *p, size_t n, size_t *used)
{
    size_t i = 0;
    int rc = GW_MLLP_NEED_MORE;
    *used = 0;
    if (d->state == ST_FAILED)
        return HR_EPARSE;
    if (d->state == ST_DONE)
        gw_mllp_dec_reset(d);
    while (i < n) {
        uint8_t b = p[i];
        if (d->state == ST_IDLE) {
            if (b == GW_MLLP_SB)
                d->state = ST_IN;
            else if (b != 0x00 && b != '\r' && b != '\n') {
                rc = HR_EPARSE;
                break;
            }
            i++;
        } else if (d->state == ST_IN) {
            /* the run up to the next control byte in one append */
            const uint8_t *eb = memchr(p + i, GW_MLLP_EB, n - i);
            const uint8_t *sb = memchr(p + i, GW_MLLP_SB, (size_t)((eb ? eb : p + n) - (p + i)));
            if (sb) {
                rc = HR_EPARSE;
                break;
            }
            size_t run = (size_t)((eb ? eb : p + n) - (p + i));
            rc = hr_buf_append(&d->msg, p + i, run);
            if (rc)
                break;
            i += run;
            if (eb) {
                d->state = ST_EB;
                i++;
            }
        } else { /* ST_EB */
            if (b != GW_MLLP_CR) {
                rc = HR_EPARSE;
                break;
            }
            i++;
            d->state = ST_DONE;
            rc = GW_MLLP_MESSAGE;
            break;
        }
    }
    if (rc < 0)
        d->state = ST_FAILED;
    *used = i;
    return rc;
}
