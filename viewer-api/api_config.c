/* http.* and auth.*: the HTTP server and its logins.
 *
 *   key                       default                 rule
 *   http.listen               127.0.0.1 (plain HTTP)  IPv4 or IPv6 literal; not loopback only
 *                             0.0.0.0 (TLS/insecure)  with TLS or http.insecure_listen
 *   http.port                 8080                    1..65535
 *   http.tls_cert, .tls_key   ""                      PEM paths, both or neither
 *   http.insecure_listen      false                   true | false
 *   http.max_body_bytes       4 GiB                   1024..4 TiB
 *   http.token_ttl_s          28800                   60..30 days
 *   http.max_connections      1024                    1..100000
 *   http.max_per_address      128                     0 (no limit)..100000
 *   http.header_timeout_s     20                      1..3600
 *   http.cors_origins         []                      non-empty origins, "*" = any
 *   http.trusted_proxies      []                      IP literals or CIDR networks
 *   http.transcode_max_bytes  256 MiB                 1 MiB..64 GiB
 *   http.transcode_concurrency 2                      1..64
 *   auth.kdf_iterations       600000                  1000..10000000
 *   auth.kdf_threads          2                       1..64
 *   auth.kdf_queue            32                      1..100000
 *   auth.kdf_threads_ingesting 1                      1..64 (hashing at once while ingesting)
 *   auth.kdf_share_ingesting  50                      1..100 (% of the time hashing while
 * ingesting) auth.kdf_idle             true                    hashing threads under SCHED_IDLE
 *   auth.login_window_s       60                      1..86400
 *   auth.login_per_address    30                      0 (no limit)..10^9
 *   auth.login_per_user       10                      0 (no limit)..10^9
 *   auth.refusal_delay_ms     1000                    0 (at once)..60000
 *
 * Meaning: docs/configuration.md. */
#include "api_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_cors(hr_config *c)
{
    free(c->http.cors_origins);
    c->http.cors_origins = NULL;
    c->http.n_cors = 0;
}

static void free_proxies(hr_config *c)
{
    free(c->http.trusted_proxies);
    c->http.trusted_proxies = NULL;
    c->http.n_trusted_proxies = 0;
}

static void free_http(hr_config *c)
{
    free_cors(c);
    free_proxies(c);
}

/* The file's list replaces the default list; each entry is an address or a
 * network (hr_cidr_parse), at most 1024 of them. */
static int parse_proxies(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_array(v) || json_array_size(v) > 1024)
        return hr_cfg_fail(err, ecap, "%s: must be an array of at most 1024 addresses or networks",
                           path);
    free_proxies(c);
    size_t n = json_array_size(v);
    c->http.trusted_proxies = calloc(n ? n : 1, sizeof(hr_cidr));
    if (!c->http.trusted_proxies)
        return -ENOMEM;
    c->http.n_trusted_proxies = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || hr_cidr_parse(json_string_value(e), &c->http.trusted_proxies[i]))
            return hr_cfg_fail(err, ecap, "%s[%zu]: not an IP address or CIDR network", path, i);
    }
    return 0;
}

/* The file's list replaces the default list. */
static int parse_cors(json_t *co, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_array(co))
        return hr_cfg_fail(err, ecap, "%s: must be an array of origins", path);
    free_cors(c);
    c->http.n_cors = json_array_size(co);
    c->http.cors_origins = calloc(c->http.n_cors ? c->http.n_cors : 1, HR_NAME_MAX);
    if (!c->http.cors_origins)
        return -ENOMEM;
    for (size_t i = 0; i < c->http.n_cors; i++) {
        json_t *s = json_array_get(co, i);
        if (!json_is_string(s) || !*json_string_value(s) ||
            strlen(json_string_value(s)) >= HR_NAME_MAX)
            return hr_cfg_fail(err, ecap, "%s[%zu]: must be a non-empty origin", path, i);
        strcpy(c->http.cors_origins[i], json_string_value(s));
    }
    return 0;
}

static const hr_cfg_key k_http_keys[] = {
    HR_CFG_KEY_ADDR("listen", http.listen.host),
    HR_CFG_KEY_INT("port", http.listen.port, 1, 65535),
    HR_CFG_KEY_STR("tls_cert", http.tls_cert, HR_CFG_EMPTY_OK),
    HR_CFG_KEY_STR("tls_key", http.tls_key, HR_CFG_EMPTY_OK),
    HR_CFG_KEY_BOOL("insecure_listen", http.insecure_listen),
    HR_CFG_KEY_INT("max_body_bytes", http.max_body_bytes, 1024, (long long)1 << 42),
    HR_CFG_KEY_INT("token_ttl_s", http.token_ttl_s, 60, 30 * 86400),
    HR_CFG_KEY_INT("max_connections", http.max_connections, 1, 100000),
    HR_CFG_KEY_INT("max_per_address", http.max_per_address, 0, 100000),
    HR_CFG_KEY_INT("header_timeout_s", http.header_timeout_s, 1, 3600),
    HR_CFG_KEY_CUSTOM("cors_origins", parse_cors),
    HR_CFG_KEY_CUSTOM("trusted_proxies", parse_proxies),
    HR_CFG_KEY_INT("transcode_max_bytes", http.transcode_max_bytes, 1 << 20, (long long)64 << 30),
    HR_CFG_KEY_INT("transcode_concurrency", http.transcode_concurrency, 1, 64),
    HR_CFG_KEY_END,
};

/* TLS is both files or none; http.listen defaults to loopback unless TLS or
 * http.insecure_listen, and plain HTTP elsewhere is refused (decision 0012). */
static int http_validate(hr_config *c, struct json_t *user, char *err, size_t ecap)
{
    int tls = c->http.tls_cert[0] != 0;
    if (tls != (c->http.tls_key[0] != 0))
        return hr_cfg_fail(err, ecap, "http.tls_cert, http.tls_key: give both or neither");
    if (!c->http.listen.host[0])
        snprintf(c->http.listen.host, sizeof(c->http.listen.host), "%s",
                 tls || c->http.insecure_listen ? "0.0.0.0" : "127.0.0.1");
    if (!tls && !c->http.insecure_listen && !hr_addr_is_loopback(c->http.listen.host))
        return hr_cfg_fail(
            err, ecap,
            "http.listen: \"%s\" is not loopback and HTTP is plain: set http.tls_cert "
            "and http.tls_key, or listen on 127.0.0.1 behind a TLS proxy, or set "
            "http.insecure_listen: true to expose plain HTTP deliberately",
            c->http.listen.host);
    return 0;
}

const hr_config_section api_config_http = {
    .name = "http",
    .defaults =
        "{\"port\": 8080, \"tls_cert\": \"\", \"tls_key\": \"\", \"insecure_listen\": false,"
        " \"max_body_bytes\": 4294967296, \"token_ttl_s\": 28800,"
        " \"max_connections\": 1024, \"max_per_address\": 128, \"header_timeout_s\": 20,"
        " \"cors_origins\": [], \"trusted_proxies\": [], \"transcode_max_bytes\": 268435456,"
        " \"transcode_concurrency\": 2}",
    .keys = k_http_keys,
    .validate = http_validate,
    .free = free_http,
};

static const hr_cfg_key k_auth_keys[] = {
    HR_CFG_KEY_INT("kdf_iterations", auth.kdf_iterations, 1000, 10000000),
    HR_CFG_KEY_INT("kdf_threads", auth.kdf_threads, 1, 64),
    HR_CFG_KEY_INT("kdf_queue", auth.kdf_queue, 1, 100000),
    HR_CFG_KEY_INT("kdf_threads_ingesting", auth.kdf_threads_ingesting, 1, 64),
    HR_CFG_KEY_INT("kdf_share_ingesting", auth.kdf_share_ingesting, 1, 100),
    HR_CFG_KEY_BOOL("kdf_idle", auth.kdf_idle),
    HR_CFG_KEY_INT("login_window_s", auth.login_window_s, 1, 86400),
    HR_CFG_KEY_INT("login_per_address", auth.login_per_address, 0, 1000000000),
    HR_CFG_KEY_INT("login_per_user", auth.login_per_user, 0, 1000000000),
    HR_CFG_KEY_INT("refusal_delay_ms", auth.refusal_delay_ms, 0, 60000),
    HR_CFG_KEY_END,
};

const hr_config_section api_config_auth = {
    .name = "auth",
    .defaults = "{\"kdf_iterations\": 600000, \"kdf_threads\": 2, \"kdf_queue\": 32,"
                " \"kdf_threads_ingesting\": 1, \"kdf_share_ingesting\": 50, \"kdf_idle\": true,"
                " \"login_window_s\": 60, \"login_per_address\": 30, \"login_per_user\": 10,"
                " \"refusal_delay_ms\": 1000}",
    .keys = k_auth_keys,
};
