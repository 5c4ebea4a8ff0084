/* redis.*: the Redis holding the index (embedded or external).
 *
 *   key                       default          rule
 *   redis.url                 ""               "" (embedded) or redis://... or unix://...
 *   redis.server              "redis-server"   non-empty
 *   redis.appendfsync         "everysec"       always | everysec
 *   redis.connect_timeout_ms  5000             100..600000
 *
 * Meaning: docs/configuration.md. */
#include "sto_config.h"

#include <string.h>

static const char *const k_appendfsync[] = {"always", "everysec", NULL};

static const hr_cfg_key k_keys[] = {
    HR_CFG_KEY_STR("url", redis.url, HR_CFG_EMPTY_OK),
    HR_CFG_KEY_STR("server", redis.server, 0),
    HR_CFG_KEY_CHOICE("appendfsync", redis.appendfsync, k_appendfsync),
    HR_CFG_KEY_INT("connect_timeout_ms", redis.connect_timeout_ms, 100, 600000),
    HR_CFG_KEY_END,
};

static int check_url(struct json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (c->redis.url[0] && strncmp(c->redis.url, "redis://", 8) &&
        strncmp(c->redis.url, "unix://", 7))
        return hr_cfg_fail(err, ecap, "redis.url: must start with redis:// or unix://");
    return 0;
}

const hr_config_section sto_config_redis = {
    .name = "redis",
    .defaults = "{\"url\": \"\", \"server\": \"redis-server\", \"appendfsync\": \"everysec\","
                " \"connect_timeout_ms\": 5000}",
    .keys = k_keys,
    .parse = check_url,
};
