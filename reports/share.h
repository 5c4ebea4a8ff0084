/* Patient share links (云胶片, decision 0032): a technician of the study's
 * hospital or a reader of its center gives the patient a link to one study's
 * final report and key images. The link carries a token of 256 random bits
 * and the share's id; Redis keeps only the SHA-256 of the token.
 *
 * Token: "<secret>.<share id>", secret = 43 characters of base64url (32
 * random bytes from OpenSSL), share id = "s<n>-<Study Instance UID>", so the
 * study's hash tag, and its Redis slot, follow from the token.
 *
 * Redis keys (hash tag {S} = Study Instance UID; docs/index-schema.md):
 *   hr:share:{S}:seq   counter of the study's share numbers
 *   hr:share:{S}:<n>   hash: tok (SHA-256 hex of the token), report, by, role,
 *                      hospital, created_ms, expires_ms, revoked_ms,
 *                      revoked_by, images (JSON); expires RPT_SHARE_KEEP_MS
 *                      after the link
 *   hr:share:{S}:ids   zset: n, score = the ms the link stops working
 *                      (expiry, or revocation); trimmed RPT_SHARE_KEEP_MS
 *                      after, expires with the newest link
 * Blocking (hiredis): call on the thread pool. */
#ifndef RPT_SHARE_H
#define RPT_SHARE_H

#include "report.h"
#include "shr_config.h"
#include "../common/hr_buf.h"
#include "../common/hr_config.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#define RPT_SHARE_ID_MAX     80 /* "s" + digits + "-" + UID + NUL */
#define RPT_SHARE_SECRET_LEN 43 /* base64url of 32 bytes */
#define RPT_SHARE_TOKEN_MAX  (RPT_SHARE_SECRET_LEN + 1 + RPT_SHARE_ID_MAX)
#define RPT_SHARE_N_MAX      100000000            /* share numbers of one study */
#define RPT_SHARE_KEEP_MS    (7LL * 86400 * 1000) /* listed this long after the link ended */
#define RPT_SHARE_LIST_MAX   200                  /* entries of one listing */
#define RPT_SHARE_QR_MAX     (256u << 10)         /* bytes of the QR code's PNG */

/* One share as stored. */
typedef struct rpt_share {
    char id[RPT_SHARE_ID_MAX];
    char study[HR_UID_MAX];
    int n;
    char report[RPT_ID_MAX];  /* the report shared (its current version is shown) */
    char by[65];              /* who created it */
    char role[16];            /* their role */
    char hospital[HR_ID_MAX]; /* their hospital */
    long long created_ms, expires_ms;
    long long revoked_ms; /* 0 while not revoked */
    char revoked_by[65];
    json_t *images; /* [{"series", "sop", "frame"}] (a reference; never NULL after a read) */
} rpt_share;

void rpt_share_free(rpt_share *s);

/* Splits a share id "s<n>-<UID>" into n and study (cap HR_UID_MAX). 0 or
 * -EINVAL. */
int rpt_share_id_parse(const char *id, int *n, char *study);

/* The key images of study after cfg->share (images, images_max), read from
 * the index: *out a new array of {"series", "sop", "frame"} (json_decref),
 * possibly empty; instances of classes without pixels (SR, waveforms,
 * presentation states, encapsulated documents, key object selections) are
 * left out. 0, HR_ENOTFOUND (no such study), HR_EREDIS, -ENOMEM. */
int rpt_share_images(redisContext *c, const hr_config *cfg, const char *study, json_t **out);

/* Creates a share of report (of study) by the named principal, valid until
 * expires_ms: token (cap RPT_SHARE_TOKEN_MAX) receives the only copy of the
 * token, out (may be NULL) the share as stored (images: a new reference).
 * images is borrowed. 0; HR_ETOOBIG (cfg->share->per_study live links of
 * the study); -EINVAL; HR_EREDIS; -EIO (no random bytes). */
int rpt_share_create(redisContext *c, const hr_config *cfg, const char *study, const char *report,
                     const json_t *images, const char *by, const char *role, const char *hospital,
                     long long now_ms, long long expires_ms, char *token, rpt_share *out);

/* Reads share id. 0, HR_ENOTFOUND (absent, malformed id), HR_EREDIS,
 * -ENOMEM. Free with rpt_share_free. */
int rpt_share_get(redisContext *c, const char *id, rpt_share *out);

/* The share a token opens at now_ms: 0 with *out; HR_ENOTFOUND for a
 * malformed, unknown, wrong, revoked or expired token alike; HR_EREDIS. The
 * token's hash is compared in constant time. */
int rpt_share_resolve(redisContext *c, const char *token, long long now_ms, rpt_share *out);

/* Revokes share id at now_ms by user by (effective at once; a revoked share
 * stays revoked: revoking again changes nothing). *revoked_ms: when it was
 * revoked. 0, HR_ENOTFOUND, HR_EREDIS. */
int rpt_share_revoke(redisContext *c, const char *id, const char *by, long long now_ms,
                     long long *revoked_ms);

/* Calls cb with each share of study that ended less than RPT_SHARE_KEEP_MS
 * before now_ms (live ones included), soonest end first, at most
 * RPT_SHARE_LIST_MAX. 0, HR_EREDIS, or cb's non-zero value. */
int rpt_share_list(redisContext *c, const char *study, long long now_ms,
                   int (*cb)(void *arg, const rpt_share *s), void *arg);

/* A QR code (libqrencode, level M) of text as a PNG drawn with cairo,
 * appended to out (cap >= RPT_SHARE_QR_MAX). 0, -EINVAL (text too long for a
 * QR code), HR_ETOOBIG, -ENOMEM, -EIO. Thread-safe. */
int rpt_share_qr_png(const char *text, hr_buf *out);

#endif
