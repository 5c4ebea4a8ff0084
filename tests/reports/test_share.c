/* reports/share.c: share ids, the QR code (decoded back with zbarimg), and
 * the records on a real redis-server: the token is stored only as its
 * SHA-256, it resolves to its share, a tampered, truncated or borrowed
 * token does not, revocation and expiry stop it at once, the live links of
 * a study are bounded and listed. */
#include "common/hr_buf.h"
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "common/hr_hash.h"
#include "common/hr_io.h"
#include "common/hr_time.h"
#include "reports/share.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S1 "1.2.840.99.7"
#define S2 "1.2.840.99.8"

static char g_dir[512];
static ts_redis g_redis;
static redisContext *g_c;
static hr_config g_cfg;

static void setup(void)
{
    char err[256];
    cr_assert_eq(ts_tmpdir(g_dir), 0);
    cr_assert_eq(hr_config_load_string("{\"share\": {\"per_study\": 3}}", &g_cfg, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(ts_redis_start(&g_redis, g_dir), 0);
    g_c = ts_redis_connect(g_redis.sock, 2000);
    cr_assert_not_null(g_c);
}

static void teardown(void)
{
    redisFree(g_c);
    ts_redis_stop(&g_redis);
    hr_config_free(&g_cfg);
    ts_rmrf(g_dir);
}

TestSuite(share, .init = setup, .fini = teardown);

Test(share, id_parse)
{
    char study[HR_UID_MAX];
    int n = 0;
    cr_assert_eq(rpt_share_id_parse("s12-" S1, &n, study), 0);
    cr_assert_eq(n, 12);
    cr_assert_str_eq(study, S1);
    const char *bad[] = {"s0-1.2", "x1-1.2",          "s1-", "s1-../etc", "s1",
                         "s-1.2",  "s1000000000-1.2", "",    NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_neq(rpt_share_id_parse(bad[i], &n, study), 0, "%s", bad[i]);
}

Test(share, qr_png_decodes)
{
    const char *url = "https://hub.example.cn/s/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG.s1-" S1;
    char path[600], cmd[800], got[512] = "";
    hr_buf png;
    FILE *p;
    hr_buf_init(&png, RPT_SHARE_QR_MAX);
    cr_assert_eq(rpt_share_qr_png(url, &png), 0);
    cr_assert(png.len > 8 && memcmp(png.data, "\x89PNG", 4) == 0);
    snprintf(path, sizeof(path), "%s/qr.png", g_dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(png.data, 1, png.len, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "zbarimg --nodbus --quiet --raw '%s'", path);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(got, sizeof(got), p));
    pclose(p);
    got[strcspn(got, "\n")] = '\0';
    cr_assert_str_eq(got, url);
    hr_buf_free(&png);
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hr_buf_init(&png, RPT_SHARE_QR_MAX);
    cr_assert_eq(rpt_share_qr_png(big, &png), -EINVAL);
    hr_buf_free(&png);
}

static int count_cb(void *arg, const rpt_share *s)
{
    (void)s;
    (*(int *)arg)++;
    return 0;
}

Test(share, create_resolve_revoke_expire)
{
    char tok[RPT_SHARE_TOKEN_MAX], tok2[RPT_SHARE_TOKEN_MAX], bad[RPT_SHARE_TOKEN_MAX];
    char hex[65], got[128];
    json_t *imgs = json_pack("[{s:s, s:s, s:i}]", "series", "1.2.3", "sop", "1.2.3.4", "frame", 1);
    rpt_share sh;
    long long now = hr_wall_ms(), when = 0;
    int n = 0;

    cr_assert_eq(rpt_share_create(g_c, &g_cfg, S1, "r1-" S1, imgs, "tech1", "technician",
                                  "township1", now, now + 60000, tok, &sh),
                 0);
    cr_assert_str_eq(sh.id, "s1-" S1);
    cr_assert_eq(strlen(tok), RPT_SHARE_SECRET_LEN + 1 + strlen(sh.id));
    cr_assert_eq(tok[RPT_SHARE_SECRET_LEN], '.');
    rpt_share_free(&sh);
    /* only the hash is stored */
    hr_sha256 *h = hr_sha256_new();
    hr_sha256_update(h, tok, strlen(tok));
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
    cr_assert_eq(ts_redis_get(&g_redis, got, sizeof(got), "HGET hr:share:{%s}:1 tok", S1), 0);
    cr_assert_str_eq(got, hex);
    /* resolves at now, not a millisecond after expiry */
    cr_assert_eq(rpt_share_resolve(g_c, tok, now + 1, &sh), 0);
    cr_assert_str_eq(sh.report, "r1-" S1);
    cr_assert_eq(json_array_size(sh.images), 1);
    rpt_share_free(&sh);
    cr_assert_eq(rpt_share_resolve(g_c, tok, now + 60000, &sh), HR_ENOTFOUND);
    /* tampered, truncated, another study's id with this secret */
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[0] = bad[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(rpt_share_resolve(g_c, bad, now, &sh), HR_ENOTFOUND);
    bad[0] = tok[0];
    bad[RPT_SHARE_SECRET_LEN - 1] = '\0';
    cr_assert_eq(rpt_share_resolve(g_c, bad, now, &sh), HR_ENOTFOUND);
    snprintf(bad, sizeof(bad), "%.*s.s1-%s", RPT_SHARE_SECRET_LEN, tok, S2);
    cr_assert_eq(rpt_share_resolve(g_c, bad, now, &sh), HR_ENOTFOUND);
    cr_assert_eq(rpt_share_resolve(g_c, "", now, &sh), HR_ENOTFOUND);
    cr_assert_eq(rpt_share_resolve(g_c, NULL, now, &sh), HR_ENOTFOUND);
    /* a second link; the bound of 3 live links */
    cr_assert_eq(rpt_share_create(g_c, &g_cfg, S1, "r1-" S1, imgs, "rd1", "reader", "county", now,
                                  now + 60000, tok2, NULL),
                 0);
    cr_assert_eq(rpt_share_create(g_c, &g_cfg, S1, "r1-" S1, imgs, "rd1", "reader", "county", now,
                                  now + 60000, bad, NULL),
                 0);
    cr_assert_eq(rpt_share_create(g_c, &g_cfg, S1, "r1-" S1, imgs, "rd1", "reader", "county", now,
                                  now + 60000, bad, NULL),
                 HR_ETOOBIG);
    cr_assert_str_eq(bad, "");
    /* revocation: at once, kept, and it frees a place */
    cr_assert_eq(rpt_share_revoke(g_c, "s2-" S1, "tech1", now + 5, &when), 0);
    cr_assert_eq(when, now + 5);
    cr_assert_eq(rpt_share_resolve(g_c, tok2, now + 6, &sh), HR_ENOTFOUND);
    cr_assert_eq(rpt_share_revoke(g_c, "s2-" S1, "admin", now + 9, &when), 0);
    cr_assert_eq(when, now + 5);
    cr_assert_eq(rpt_share_get(g_c, "s2-" S1, &sh), 0);
    cr_assert_str_eq(sh.revoked_by, "tech1");
    rpt_share_free(&sh);
    cr_assert_eq(rpt_share_revoke(g_c, "s9-" S1, "tech1", now, &when), HR_ENOTFOUND);
    cr_assert_eq(rpt_share_create(g_c, &g_cfg, S1, "r1-" S1, imgs, "rd1", "reader", "county",
                                  now + 10, now + 60000, bad, NULL),
                 0);
    /* the first still works; the list holds all four */
    cr_assert_eq(rpt_share_resolve(g_c, tok, now + 11, &sh), 0);
    rpt_share_free(&sh);
    cr_assert_eq(rpt_share_list(g_c, S1, now + 11, count_cb, &n), 0);
    cr_assert_eq(n, 4);
    /* every key has a TTL */
    cr_assert_eq(ts_redis_get(&g_redis, got, sizeof(got), "PTTL hr:share:{%s}:ids", S1), 0);
    cr_assert(atoll(got) > 0, "%s", got);
    cr_assert_eq(ts_redis_get(&g_redis, got, sizeof(got), "PTTL hr:share:{%s}:seq", S1), 0);
    cr_assert(atoll(got) > 0, "%s", got);
    json_decref(imgs);
}
