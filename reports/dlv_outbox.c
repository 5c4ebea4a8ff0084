/* The outbox of signed versions (hr:rpt:outbox, written by the report
 * script) turned into deliveries: rpt_delivery_take_outbox of delivery.h.
 * Apart from delivery.c because it reads versions (report.h). */
#include "delivery.h"
#include "alert.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "<report id>/<version>" -> parts. 0 or -EINVAL. */
static int entry_split(const char *e, char *report, int *version)
{
    const char *s = strrchr(e, '/');
    if (!s || s == e || (size_t)(s - e) >= RPT_ID_MAX)
        return -EINVAL;
    char *end;
    long v = strtol(s + 1, &end, 10);
    if (*end || v < 1 || v > 1000000)
        return -EINVAL;
    memcpy(report, e, (size_t)(s - e));
    report[s - e] = '\0';
    *version = (int)v;
    return 0;
}

static int delivered_status(enum rpt_status s)
{
    return s == RPT_FINAL || s == RPT_AMENDED || s == RPT_CORRECTED || s == RPT_ENTERED_IN_ERROR;
}

int rpt_delivery_take_outbox(redisContext *c, const hr_config *cfg, long long now_ms, int max,
                             int *taken)
{
    int rc = 0;
    if (taken)
        *taken = 0;
    if (max < 1)
        max = 1;
    if (max > 1000)
        max = 1000;
    redisReply *r =
        redisCommand(c, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", RPT_DLV_OUTBOX, now_ms, max);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < r->elements && !rc; i++) {
        const redisReply *e = r->element[i];
        char report[RPT_ID_MAX];
        int version = 0, created = 0;
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (entry_split(e->str, report, &version)) {
            hr_warn("delivery", "dropping a malformed outbox entry \"%.80s\"", e->str);
        } else {
            rpt_version v;
            memset(&v, 0, sizeof(v));
            rc = rpt_version_get(c, report, version, &v);
            if (rc == HR_ENOTFOUND) {
                hr_warn("delivery", "outbox: %s version %d does not exist; dropped", report,
                        version);
                rc = 0;
            } else if (!rc && !delivered_status(v.status)) {
                hr_warn("delivery", "outbox: %s version %d is %s, not delivered; dropped", report,
                        version, rpt_status_name(v.status));
            } else if (!rc) {
                /* the critical-finding alert, in case the signing node
                 * stopped before raising it (idempotent; decision 0040) */
                int arc = alr_raise_report(c, cfg, v.payload, now_ms, NULL);
                if (arc == HR_EREDIS) {
                    rc = arc;
                    rpt_version_free(&v);
                    break;
                }
                const char *hospital = json_string_value(
                    json_object_get(json_object_get(v.payload, "exam"), "hospital"));
                rc = rpt_delivery_expand(c, cfg, report, version, hospital ? hospital : "", now_ms,
                                         &created);
                if (rc == -EINVAL) {
                    hr_warn("delivery", "outbox: %s version %d: no source hospital; dropped",
                            report, version);
                    rc = 0;
                } else if (!rc && !rpt_dlv_config_hospital(cfg->delivery, hospital)) {
                    hr_info("delivery", "%s version %d: hospital %s has no delivery channels",
                            report, version, hospital);
                } else if (!rc) {
                    hr_info("delivery", "%s version %d: %d deliveries queued for %s", report,
                            version, created, hospital);
                }
            }
            rpt_version_free(&v);
            if (rc && !c->err) {
                /* this entry's data, not the connection: the others go on,
                 * it is tried again later (never dropped) */
                hr_error("delivery", "outbox: %s version %d cannot be queued (%s); retried in %d s",
                         report, version, hr_strerror(rc), RPT_DLV_OUTBOX_RETRY_S);
                redisReply *z = redisCommand(c, "ZADD %s XX %lld %s", RPT_DLV_OUTBOX,
                                             now_ms + RPT_DLV_OUTBOX_RETRY_S * 1000LL, e->str);
                rc = z && z->type != REDIS_REPLY_ERROR ? 0 : HR_EREDIS;
                freeReplyObject(z);
                continue;
            }
            if (rc)
                break;
        }
        redisReply *z = redisCommand(c, "ZREM %s %s", RPT_DLV_OUTBOX, e->str);
        if (!z || z->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        else if (taken)
            (*taken)++;
        freeReplyObject(z);
    }
    freeReplyObject(r);
    return rc;
}
