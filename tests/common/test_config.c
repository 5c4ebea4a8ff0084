#include "common/hr_config.h"
#include "common/hr_err.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

Test(config, defaults_are_complete)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.data_dir, "./huren-data");
    cr_expect_eq(c.dicom.listen.port, 11112);
    cr_expect_eq(c.http.listen.port, 8080);
    cr_expect_eq(c.http.token_ttl_s, 28800);
    cr_expect_eq(c.http.max_body_bytes, 4294967296ULL);
    cr_expect_eq(c.http.n_cors, 0);
    cr_expect_str_eq(c.http.tls_cert, "");
    cr_expect_eq(c.hl7.port, 2575);
    cr_expect_str_eq(c.dicom.ae_title, "HUREN");
    cr_expect_str_eq(c.redis.url, "");
    cr_expect_eq(c.n_hospitals, 3);
    const hr_hospital *t1 = hr_config_hospital_by_ae(&c, "TOWNSHIP1");
    cr_assert_not_null(t1);
    cr_expect_str_eq(t1->id, "township1");
    cr_expect_eq(t1->level, HR_LEVEL_TOWNSHIP);
    cr_expect_eq(hr_config_hospital(&c, "county")->level, HR_LEVEL_COUNTY);
    cr_expect_null(hr_config_hospital_by_ae(&c, "township1"), "AE titles are case-sensitive");
    hr_config_free(&c);
}

Test(config, overlay_keeps_unset_defaults)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{\"dicom\": {\"port\": 4242}}", &c, err, sizeof(err)), 0,
                 "%s", err);
    cr_expect_eq(c.dicom.listen.port, 4242);
    cr_expect_str_eq(c.dicom.ae_title, "HUREN");
    cr_expect_eq(c.dicom.max_pdu, 262144);
    hr_config_free(&c);
}

static void expect_error(const char *json, const char *fragment)
{
    hr_config c;
    char err[256] = "";
    cr_expect_eq(hr_config_load_string(json, &c, err, sizeof(err)), HR_ECONFIG, "%s", json);
    cr_expect(strstr(err, fragment) != NULL, "error \"%s\" lacks \"%s\"", err, fragment);
}

Test(config, errors_name_the_key)
{
    expect_error("{\"dicom\": {\"port\": 0}}", "dicom.port: 0 is outside");
    expect_error("{\"dicom\": {\"max_pdu\": 100}}", "dicom.max_pdu");
    expect_error("{\"bogus\": 1}", "bogus: unknown key");
    expect_error("{\"log_level\": \"loud\"}", "log_level");
    expect_error("{\"redis\": {\"url\": \"http://x\"}}", "redis.url");
    expect_error("{\"hospitals\": [{\"name\": \"x\"}]}", "hospitals[0].id: required");
    expect_error("{\"hospitals\": [{\"id\": \"A B\"}]}", "hospitals[0].id");
    expect_error("{\"hospitals\": [{\"id\": \"a\", \"level\": \"city\"}]}", "hospitals[0].level");
    expect_error("{\"dicom\": {\"port\": 1}, \"dicom\": {\"port\": 2}}", "duplicate");
    expect_error("[1]", "must be a JSON object");
    expect_error("{\"http\": {\"tls_cert\": \"/x.pem\"}}", "give both or neither");
    expect_error("{\"http\": {\"token_ttl_s\": 1}}", "http.token_ttl_s");
    expect_error("{\"http\": {\"cors_origins\": [\"\"]}}", "http.cors_origins[0]");
    expect_error("{\"http\": {\"ae_title\": \"X\"}}", "http.ae_title: unknown key");
    expect_error("{\"hospitals\": [{\"id\": \"a\", \"destinations\": [{\"ae_title\": \"X\"}]}],"
                 " \"dicom\": {\"hospital\": \"a\"}}",
                 "hospitals[0].destinations[0]: ae_title, host and port are required");
    expect_error("{\"hospitals\": [{\"id\": \"a\", \"destinations\": [{\"ae_title\": \"X\", "
                 "\"host\": \"h\", \"port\": 1}, {\"ae_title\": \"X\", \"host\": \"h\", "
                 "\"port\": 2}]}], \"dicom\": {\"hospital\": \"a\"}}",
                 "already a destination");
}

Test(config, cidr_matching)
{
    hr_cidr c;
    hr_hospital h = {.n_addr = 1, .addresses = &c};
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    cr_assert_eq(hr_cidr_parse("10.1.0.0/16", &c), 0);
    inet_pton(AF_INET, "10.1.200.3", &v4.sin_addr);
    cr_expect(hr_hospital_allows(&h, (struct sockaddr *)&v4));
    inet_pton(AF_INET, "10.2.0.1", &v4.sin_addr);
    cr_expect(!hr_hospital_allows(&h, (struct sockaddr *)&v4));
    inet_pton(AF_INET6, "::ffff:10.1.0.9", &v6.sin6_addr);
    cr_expect(hr_hospital_allows(&h, (struct sockaddr *)&v6), "v4-mapped v6 peer");
    cr_assert_eq(hr_cidr_parse("fd00::/8", &c), 0);
    inet_pton(AF_INET6, "fd12::1", &v6.sin6_addr);
    cr_expect(hr_hospital_allows(&h, (struct sockaddr *)&v6));
    cr_expect_eq(hr_cidr_parse("10.0.0.0/33", &c), HR_ECONFIG);
    cr_expect_eq(hr_cidr_parse("10.0.0/8", &c), HR_ECONFIG);
    cr_expect_eq(hr_cidr_parse("/8", &c), HR_ECONFIG);
    cr_expect_eq(hr_cidr_parse("1.2.3.4/", &c), HR_ECONFIG);
}

Test(config, destinations_and_cors)
{
    hr_config c;
    char err[256];
    const char *json =
        "{\"http\": {\"cors_origins\": [\"https://viewer.example\"], \"port\": 9090},"
        " \"hospitals\": [{\"id\": \"county\", \"level\": \"county\","
        " \"destinations\": [{\"ae_title\": \"WS1\", \"host\": \"127.0.0.1\", \"port\": 104}]}]}";
    cr_assert_eq(hr_config_load_string(json, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.http.listen.port, 9090);
    cr_assert_eq(c.http.n_cors, 1);
    cr_expect_str_eq(c.http.cors_origins[0], "https://viewer.example");
    const hr_hospital *owner = NULL;
    const hr_destination *d = hr_config_destination(&c, "WS1", &owner);
    cr_assert_not_null(d);
    cr_expect_eq(d->port, 104);
    cr_expect_str_eq(owner->id, "county");
    cr_expect_null(hr_config_destination(&c, "WS2", NULL));
    hr_config_free(&c);
}
