/* viewer-api/api_config.c: http.* and auth.* */
#include "common/hr_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>

Test(api_config, http_defaults)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.http.listen.port, 8080);
    cr_expect_eq(c.http.token_ttl_s, 28800);
    cr_expect_eq(c.http.max_body_bytes, 4294967296ULL);
    cr_expect_eq(c.http.max_connections, 1024);
    cr_expect_eq(c.http.max_per_address, 128);
    cr_expect_eq(c.http.header_timeout_s, 20);
    cr_expect_eq(c.http.n_cors, 0);
    cr_expect_str_eq(c.http.tls_cert, "");
    cr_expect_str_eq(c.http.tls_key, "");
    cr_expect_eq(c.http.insecure_listen, 0);
    hr_config_free(&c);
}

Test(api_config, cors_origins_replace_the_default)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{\"http\": {\"cors_origins\": [\"https://viewer.example\","
                                       " \"*\"], \"port\": 9090}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c.http.listen.port, 9090);
    cr_assert_eq(c.http.n_cors, 2);
    cr_expect_str_eq(c.http.cors_origins[0], "https://viewer.example");
    cr_expect_str_eq(c.http.cors_origins[1], "*");
    hr_config_free(&c);
}

/* http.trusted_proxies (decision 0030): addresses and networks, matched with
 * hr_cidr_list_has; the transcoding bounds have defaults and ranges. */
Test(api_config, trusted_proxies_and_transcoding)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.http.n_trusted_proxies, 0);
    cr_expect_eq(c.http.transcode_max_bytes, 268435456ULL);
    cr_expect_eq(c.http.transcode_concurrency, 2);
    cr_expect_eq(hr_cidr_list_has(c.http.trusted_proxies, c.http.n_trusted_proxies, "127.0.0.1"),
                 0);
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"http\": {\"trusted_proxies\": [\"127.0.0.1\","
                                       " \"10.8.0.0/16\", \"fd00::/8\"],"
                                       " \"transcode_max_bytes\": 1048576,"
                                       " \"transcode_concurrency\": 1}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(c.http.n_trusted_proxies, 3);
    const hr_cidr *v = c.http.trusted_proxies;
    cr_expect(hr_cidr_list_has(v, 3, "127.0.0.1"));
    cr_expect(!hr_cidr_list_has(v, 3, "127.0.0.2"));
    cr_expect(hr_cidr_list_has(v, 3, "10.8.255.1"));
    cr_expect(!hr_cidr_list_has(v, 3, "10.9.0.1"));
    cr_expect(hr_cidr_list_has(v, 3, "::ffff:10.8.0.7"));
    cr_expect(hr_cidr_list_has(v, 3, "fd12::1"));
    cr_expect(!hr_cidr_list_has(v, 3, "fe80::1"));
    cr_expect(!hr_cidr_list_has(v, 3, "not-an-address"));
    cr_expect(!hr_cidr_list_has(v, 3, NULL));
    cr_expect_eq(c.http.transcode_max_bytes, 1048576ULL);
    cr_expect_eq(c.http.transcode_concurrency, 1);
    hr_config_free(&c);
    expect_config_error("{\"http\": {\"trusted_proxies\": \"127.0.0.1\"}}",
                        "http.trusted_proxies: must be an array");
    expect_config_error("{\"http\": {\"trusted_proxies\": [\"127.0.0.1\", \"proxy.example\"]}}",
                        "http.trusted_proxies[1]: not an IP address or CIDR network");
    expect_config_error("{\"http\": {\"trusted_proxies\": [\"10.0.0.0/33\"]}}",
                        "http.trusted_proxies[0]: not an IP address or CIDR network");
    expect_config_error("{\"http\": {\"transcode_max_bytes\": 1000}}",
                        "http.transcode_max_bytes: 1000 is outside 1048576..");
    expect_config_error("{\"http\": {\"transcode_concurrency\": 0}}",
                        "http.transcode_concurrency: 0 is outside 1..64");
}

Test(api_config, http_errors_name_the_key)
{
    expect_config_error("{\"http\": []}", "http: must be an object");
    expect_config_error("{\"http\": {\"ae_title\": \"X\"}}", "http.ae_title: unknown key");
    expect_config_error("{\"http\": {\"tls_cert\": \"/x.pem\"}}",
                        "http.tls_cert, http.tls_key: give both or neither");
    expect_config_error("{\"http\": {\"tls_key\": \"/x.pem\"}}", "give both or neither");
    expect_config_error("{\"http\": {\"token_ttl_s\": 1}}", "http.token_ttl_s: 1 is outside 60..");
    expect_config_error("{\"http\": {\"max_body_bytes\": 1023}}",
                        "http.max_body_bytes: 1023 is outside 1024..4398046511104");
    expect_config_error("{\"http\": {\"max_connections\": 0}}",
                        "http.max_connections: 0 is outside 1..100000");
    expect_config_error("{\"http\": {\"max_per_address\": -1}}",
                        "http.max_per_address: -1 is outside 0..100000");
    expect_config_error("{\"http\": {\"header_timeout_s\": 0}}",
                        "http.header_timeout_s: 0 is outside 1..3600");
    expect_config_error("{\"http\": {\"port\": 65536}}", "http.port: 65536 is outside 1..65535");
    expect_config_error("{\"http\": {\"listen\": \"localhost\"}}",
                        "http.listen: \"localhost\" is not an IPv4 or IPv6 address");
    expect_config_error("{\"http\": {\"listen\": \"\"}}", "http.listen: must not be empty");
    expect_config_error("{\"http\": {\"tls_cert\": 1}}", "http.tls_cert: must be a string");
    expect_config_error("{\"http\": {\"cors_origins\": \"*\"}}",
                        "http.cors_origins: must be an array of origins");
    expect_config_error("{\"http\": {\"cors_origins\": [\"\"]}}",
                        "http.cors_origins[0]: must be a non-empty origin");
}

/* Plain HTTP binds loopback unless TLS or http.insecure_listen (decision 0012). */
Test(api_config, listener_policy)
{
    hr_config c;
    char err[512];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.http.listen.host, "127.0.0.1", "plain HTTP binds loopback by default");
    hr_config_free(&c);
    cr_assert_eq(
        hr_config_load_string("{\"http\": {\"tls_cert\": \"c.pem\", \"tls_key\": \"k.pem\"}}", &c,
                              err, sizeof(err)),
        0, "%s", err);
    cr_expect_str_eq(c.http.listen.host, "0.0.0.0", "with TLS: every interface");
    hr_config_free(&c);
    cr_assert_eq(
        hr_config_load_string("{\"http\": {\"insecure_listen\": true}}", &c, err, sizeof(err)), 0,
        "%s", err);
    cr_expect_str_eq(c.http.listen.host, "0.0.0.0", "insecure_listen: every interface");
    hr_config_free(&c);
    cr_assert_eq(
        hr_config_load_string("{\"http\": {\"listen\": \"::\", \"insecure_listen\": true}}", &c,
                              err, sizeof(err)),
        0, "%s", err);
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"http\": {\"listen\": \"::ffff:127.0.0.9\"}}", &c, err,
                                       sizeof(err)),
                 0, "%s", err);
    hr_config_free(&c);
    expect_config_error("{\"http\": {\"listen\": \"0.0.0.0\"}}",
                        "http.listen: \"0.0.0.0\" is not loopback");
    expect_config_error("{\"http\": {\"listen\": \"10.1.2.3\", \"insecure_listen\": false}}",
                        "http.insecure_listen: true");
    expect_config_error("{\"http\": {\"insecure_listen\": 1}}",
                        "http.insecure_listen: must be true or false");
}

Test(api_config, auth_defaults_and_bounds)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    /* OWASP 2023 for PBKDF2-HMAC-SHA256; tests lower it, the product must not */
    cr_expect_geq(c.auth.kdf_iterations, 600000);
    cr_expect_geq(c.auth.kdf_threads, 1);
    cr_expect_geq(c.auth.kdf_queue, 1);
    cr_expect_gt(c.auth.login_per_address, 0, "rate limits are on by default");
    cr_expect_gt(c.auth.login_per_user, 0);
    cr_expect_gt(c.auth.login_window_s, 0);
    cr_expect_eq(c.auth.refusal_delay_ms, 1000, "refused logins are tarpitted by default");
    cr_expect_eq(c.auth.kdf_share_ingesting, 50, "hashing rests half the time while ingesting");
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"auth\": {\"kdf_iterations\": 1000, \"kdf_queue\": 4, "
                                       "\"login_per_address\": 0}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c.auth.kdf_iterations, 1000);
    cr_expect_eq(c.auth.kdf_queue, 4);
    cr_expect_eq(c.auth.login_per_address, 0, "0 = no limit");
    cr_expect_eq(c.auth.login_per_user, 10, "unset keys keep their default");
    hr_config_free(&c);
    expect_config_error("{\"auth\": {\"kdf_iterations\": 999}}",
                        "auth.kdf_iterations: 999 is outside");
    expect_config_error("{\"auth\": {\"kdf_threads\": 0}}", "auth.kdf_threads");
    expect_config_error("{\"auth\": {\"rounds\": 5}}", "auth.rounds: unknown key");
}

Test(api_config, auth_errors_name_the_key)
{
    expect_config_error("{\"auth\": 1}", "auth: must be an object");
    expect_config_error("{\"auth\": {\"kdf_iterations\": 10000001}}",
                        "auth.kdf_iterations: 10000001 is outside 1000..10000000");
    expect_config_error("{\"auth\": {\"kdf_threads\": 65}}",
                        "auth.kdf_threads: 65 is outside 1..64");
    expect_config_error("{\"auth\": {\"kdf_queue\": 0}}", "auth.kdf_queue: 0 is outside 1..100000");
    expect_config_error("{\"auth\": {\"login_window_s\": 0}}",
                        "auth.login_window_s: 0 is outside 1..86400");
    expect_config_error("{\"auth\": {\"login_per_address\": -1}}",
                        "auth.login_per_address: -1 is outside 0..1000000000");
    expect_config_error("{\"auth\": {\"login_per_user\": 1.5}}",
                        "auth.login_per_user: must be an integer");
    expect_config_error("{\"auth\": {\"kdf_share_ingesting\": 0}}",
                        "auth.kdf_share_ingesting: 0 is outside 1..100");
    expect_config_error("{\"auth\": {\"refusal_delay_ms\": 60001}}",
                        "auth.refusal_delay_ms: 60001 is outside 0..60000");
}
