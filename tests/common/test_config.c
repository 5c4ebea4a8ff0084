#include "common/hr_config.h"
#include "common/hr_err.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
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

Test(config, worklist_defaults)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.n_centers, 4);
    const char *ids[] = {"imaging", "ecg", "pathology", "lab"};
    for (int i = 0; i < 4; i++) {
        const hr_center *ce = hr_config_center(&c, ids[i]);
        cr_assert_not_null(ce, "%s", ids[i]);
        cr_expect_eq((int)ce->kind, i);
        cr_expect_str_eq(ce->hospital, "county");
        cr_expect_eq(ce->open_min, -1);
        cr_expect_eq(ce->close_min, -1);
    }
    cr_expect_null(hr_config_center(&c, "radiology"));
    cr_expect_eq(hr_config_center(&c, "ecg")->audit_signoff, 0);
    cr_expect_eq(hr_config_center(&c, "imaging")->audit_signoff, 1);
    cr_assert_eq(c.routing.n_rules, 4);
    const hr_route_rule *chest = &c.routing.rules[0];
    cr_expect_str_eq(c.centers[chest->center].id, "ecg");
    cr_expect_eq(chest->priority, HR_PRIO_STAT);
    cr_expect_eq(chest->sop_classes.n, 2);
    cr_expect_eq(chest->procedures.n, 2);
    cr_expect_str_eq(chest->procedures.v[0], "胸痛");
    cr_expect_eq(chest->modalities.n, 0, "absent list");
    cr_expect_str_eq(c.centers[c.routing.rules[1].center].id, "ecg");
    cr_expect_eq(c.routing.rules[1].priority, HR_PRIO_ROUTINE);
    cr_expect_str_eq(c.routing.rules[2].sop_classes.v[0], "1.2.840.10008.5.1.4.1.1.77.1.6");
    cr_expect_str_eq(c.centers[c.routing.rules[2].center].id, "pathology");
    cr_expect_str_eq(c.centers[c.routing.default_center].id, "imaging");
    cr_expect_eq(c.routing.default_priority, HR_PRIO_ROUTINE);
    cr_expect_eq(c.worklist.quiet_s, 30);
    cr_expect_eq(c.worklist.lease_s, 600);
    cr_assert_eq(c.worklist.n_quiet, 1);
    cr_expect_str_eq(c.worklist.quiet_by_modality[0].modality, "ECG");
    cr_expect_eq(c.worklist.quiet_by_modality[0].seconds, 5);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_ECG][HR_PRIO_STAT], 10);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_ECG][HR_PRIO_URGENT], 30);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_ECG][HR_PRIO_ROUTINE], 240);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_IMAGING][HR_PRIO_STAT], 30);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_IMAGING][HR_PRIO_URGENT], 120);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_IMAGING][HR_PRIO_ROUTINE], 1440);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_PATHOLOGY][HR_PRIO_STAT], 30);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_PATHOLOGY][HR_PRIO_URGENT], 1440);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_PATHOLOGY][HR_PRIO_ROUTINE], 4320);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_LAB][HR_PRIO_STAT], 30);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_LAB][HR_PRIO_URGENT], 120);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_LAB][HR_PRIO_ROUTINE], 720);
    cr_expect_str_eq(hr_center_kind_name(HR_CENTER_PATHOLOGY), "pathology");
    cr_expect_eq(hr_center_kind_parse("lab"), HR_CENTER_LAB);
    cr_expect_eq(hr_center_kind_parse("LAB"), -1);
    cr_expect_str_eq(hr_priority_name(HR_PRIO_URGENT), "urgent");
    cr_expect_eq(hr_priority_parse("stat"), HR_PRIO_STAT);
    cr_expect_eq(hr_priority_parse("asap"), -1);
    hr_config_free(&c);
}

Test(config, worklist_overlay)
{
    hr_config c;
    char err[256];
    const char *json =
        "{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"county\","
        "   \"hours\": \"20:00-08:00\"},"
        "  {\"id\": \"xray\", \"name\": \"放射\", \"kind\": \"imaging\", \"hospital\": "
        "\"township1\", \"hours\": \"08:00-17:30\", \"audit_signoff\": true}],"
        " \"routing\": {\"rules\": [{\"modalities\": [\"DX\", \"CR\"], \"hospitals\": "
        "[\"township1\"], \"body_parts\": [\"CHEST\"], \"calling_aes\": [\"TOWNSHIP1\"],"
        "   \"center\": \"xray\", \"priority\": \"urgent\"}],"
        "  \"default\": {\"center\": \"xray\"}},"
        " \"worklist\": {\"quiet_s\": 0, \"quiet_by_modality\": {\"CT\": 60, \"SM\": 300},"
        "  \"turnaround_min\": {\"ecg\": {\"stat\": 5}}}}";
    cr_assert_eq(hr_config_load_string(json, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.n_centers, 2);
    const hr_center *ecg = hr_config_center(&c, "ecg");
    cr_expect_str_eq(ecg->name, "ecg", "name defaults to the id");
    cr_expect_eq(ecg->open_min, 20 * 60);
    cr_expect_eq(ecg->close_min, 8 * 60);
    const hr_center *x = hr_config_center(&c, "xray");
    cr_expect_eq(x->open_min, 8 * 60);
    cr_expect_eq(x->close_min, 17 * 60 + 30);
    cr_expect_eq(x->audit_signoff, 1);
    cr_expect_str_eq(x->hospital, "township1");
    cr_assert_eq(c.routing.n_rules, 1);
    cr_expect_eq(c.routing.rules[0].center, 1);
    cr_expect_eq(c.routing.rules[0].priority, HR_PRIO_URGENT);
    cr_expect_eq(c.routing.rules[0].calling_aes.n, 1);
    cr_expect_eq(c.routing.default_center, 1);
    cr_expect_eq(c.routing.default_priority, HR_PRIO_ROUTINE, "default priority kept");
    cr_expect_eq(c.worklist.quiet_s, 0);
    cr_expect_eq(c.worklist.n_quiet, 2, "the map replaces the default map");
    cr_expect_eq(c.worklist.lease_s, 600);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_ECG][HR_PRIO_STAT], 5);
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_ECG][HR_PRIO_ROUTINE], 240, "kept");
    cr_expect_eq(c.worklist.turnaround_min[HR_CENTER_LAB][HR_PRIO_ROUTINE], 720, "kept");
    hr_config_free(&c);
}

Test(config, worklist_errors_name_the_key)
{
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"dermatology\", \"priority\": "
                 "\"stat\"}]}}",
                 "routing.rules[0].center: \"dermatology\" is not one of centers[].id");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\"}]}}",
                 "routing.rules[0].center, routing.rules[0].priority: both are required");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"asap\"}]}}",
                 "routing.rules[0].priority: \"asap\" is not stat, urgent or routine");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", \"1.2.03\"]}]}}",
                 "routing.rules[0].sop_classes[1]: not a valid UID");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"sop_classes\": [\"ECG\"]}]}}",
                 "routing.rules[0].sop_classes[0]: not a valid UID");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"modalities\": []}]}}",
                 "routing.rules[0].modalities: must be a non-empty array");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"modalities\": [\"THIS IS TOO LONG A CS\"]}]}}",
                 "routing.rules[0].modalities[0]");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"hospitals\": [\"mars\"]}]}}",
                 "routing.rules[0].hospitals[0]: \"mars\" is not one of hospitals[].id");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"calling_aes\": [\"\"]}]}}",
                 "routing.rules[0].calling_aes[0]");
    expect_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                 "\"procedure\": [\"x\"]}]}}",
                 "routing.rules[0].procedure: unknown key");
    expect_error("{\"routing\": {\"default\": {\"center\": \"nowhere\"}}}",
                 "routing.default.center: \"nowhere\" is not one of centers[].id");
    expect_error("{\"routing\": {\"default\": {\"priority\": \"later\"}}}",
                 "routing.default.priority");
    expect_error("{\"routing\": {\"rules\": {}}}", "routing.rules: must be an array");
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ekg\", \"hospital\": "
                 "\"county\"}]}",
                 "centers[0].kind: \"ekg\" is not imaging, ecg, pathology or lab");
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\"}]}",
                 "centers[0].hospital: required");
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"mars\"}]}",
                 "centers[0].hospital: \"mars\" is not one of hospitals[].id");
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                 "\"county\"}, {\"id\": \"ecg\", \"kind\": \"lab\", \"hospital\": \"county\"}]}",
                 "centers[1].id: \"ecg\" is used twice");
    expect_error("{\"centers\": [{\"id\": \"E C G\", \"kind\": \"ecg\", \"hospital\": "
                 "\"county\"}]}",
                 "centers[0].id");
    const char *bad_hours[] = {"8-18",        "25:00-26:00", "08:00-08:00", "08:60-18:00",
                               "08:00-24:30", "00:00-24:00", "08:00-18:00x"};
    for (size_t i = 0; i < sizeof(bad_hours) / sizeof(bad_hours[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"county\", "
                 "\"hours\": \"%s\"}], \"routing\": {\"rules\": [], \"default\": {\"center\": "
                 "\"ecg\"}}}",
                 bad_hours[i]);
        expect_error(json, "centers[0].hours");
    }
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                 "\"county\", \"audit_signoff\": 1}]}",
                 "centers[0].audit_signoff: must be true or false");
    expect_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                 "\"county\"}]}",
                 "(an embedded default rule: give \"routing.rules\" too)");
    expect_error("{\"hospitals\": [{\"id\": \"h1\"}], \"dicom\": {\"hospital\": \"h1\"}}",
                 "centers[0].hospital: \"county\" is not one of hospitals[].id (an embedded "
                 "default center");
    expect_error("{\"worklist\": {\"lease_s\": 5}}", "worklist.lease_s: 5 is outside 30..86400");
    expect_error("{\"worklist\": {\"quiet_s\": -1}}", "worklist.quiet_s");
    expect_error("{\"worklist\": {\"quiet_by_modality\": {\"CT\": \"60\"}}}",
                 "worklist.quiet_by_modality.CT: must be an integer");
    expect_error("{\"worklist\": {\"quiet_by_modality\": {\"CT\": 60, \"ct\": 30}}}",
                 "worklist.quiet_by_modality.ct: given twice");
    expect_error("{\"worklist\": {\"turnaround_min\": {\"radiology\": {\"stat\": 5}}}}",
                 "worklist.turnaround_min.radiology: unknown key");
    expect_error("{\"worklist\": {\"turnaround_min\": {\"ecg\": {\"asap\": 5}}}}",
                 "worklist.turnaround_min.ecg.asap: unknown key");
    expect_error("{\"worklist\": {\"turnaround_min\": {\"ecg\": {\"stat\": 0}}}}",
                 "worklist.turnaround_min.ecg.stat: 0 is outside");
    expect_error("{\"worklist\": {\"lease\": 600}}", "worklist.lease: unknown key");
}

/* Tests shorten leases and turnaround targets below what an operator may set. */
Test(config, worklist_test_timing)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.worklist.min_lease_s, 30);
    cr_expect_eq(c.worklist.turnaround_unit_s, 60);
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"worklist\": {\"min_lease_s\": 2, \"lease_s\": 3, "
                                       "\"turnaround_unit_s\": 1}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c.worklist.lease_s, 3);
    cr_expect_eq(c.worklist.min_lease_s, 2);
    cr_expect_eq(c.worklist.turnaround_unit_s, 1);
    hr_config_free(&c);
    expect_error("{\"worklist\": {\"min_lease_s\": 2, \"lease_s\": 1}}",
                 "worklist.lease_s: 1 is outside 2..86400");
    expect_error("{\"worklist\": {\"min_lease_s\": 0}}",
                 "worklist.min_lease_s: 0 is outside 1..30");
    expect_error("{\"worklist\": {\"min_lease_s\": 31}}", "worklist.min_lease_s");
    expect_error("{\"worklist\": {\"turnaround_unit_s\": 0}}",
                 "worklist.turnaround_unit_s: 0 is outside 1..60");
    expect_error("{\"worklist\": {\"turnaround_unit_s\": 61}}", "worklist.turnaround_unit_s");
}

/* The example in docs/configuration.md loads as documented. */
Test(config, documented_worklist_example_loads)
{
    const char *src = getenv("HUREN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src ? src : ".");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    char *ex = strstr(doc, "Example:\n\n```json\n");
    cr_assert_not_null(ex);
    ex += strlen("Example:\n\n```json\n");
    char *end = strstr(ex, "```");
    cr_assert_not_null(end);
    *end = '\0';
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string(ex, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.n_centers, 2);
    cr_expect_eq(hr_config_center(&c, "imaging")->open_min, 8 * 60);
    cr_expect_eq(c.routing.n_rules, 3);
    cr_expect_eq(c.worklist.quiet_s, 60);
    cr_expect_eq(c.worklist.lease_s, 900);
    hr_config_free(&c);
}

Test(config, auth_defaults_and_bounds)
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
    expect_error("{\"auth\": {\"kdf_iterations\": 999}}", "auth.kdf_iterations: 999 is outside");
    expect_error("{\"auth\": {\"kdf_threads\": 0}}", "auth.kdf_threads");
    expect_error("{\"auth\": {\"rounds\": 5}}", "auth.rounds: unknown key");
}

Test(config, listener_policy)
{
    hr_config c;
    char err[512];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.http.listen.host, "127.0.0.1", "plain HTTP binds loopback by default");
    cr_expect_eq(c.dicom.max_per_address, 16);
    cr_expect_eq(c.dicom.reserved_associations, 8, "max_associations / 8");
    hr_config_free(&c);
    cr_assert_eq(
        hr_config_load_string("{\"http\": {\"tls_cert\": \"c.pem\", \"tls_key\": \"k.pem\"},"
                              " \"dicom\": {\"max_associations\": 4}}",
                              &c, err, sizeof(err)),
        0, "%s", err);
    cr_expect_str_eq(c.http.listen.host, "0.0.0.0", "with TLS: every interface");
    cr_expect_eq(c.dicom.reserved_associations, 1, "at least one reserved slot");
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
    expect_error("{\"http\": {\"listen\": \"0.0.0.0\"}}",
                 "http.listen: \"0.0.0.0\" is not loopback");
    expect_error("{\"http\": {\"listen\": \"10.1.2.3\", \"insecure_listen\": false}}",
                 "http.insecure_listen: true");
    expect_error("{\"http\": {\"insecure_listen\": 1}}", "http.insecure_listen: must be true");
    expect_error("{\"dicom\": {\"max_associations\": 4, \"reserved_associations\": 5}}",
                 "dicom.reserved_associations: 5 is more than dicom.max_associations (4)");
    expect_error("{\"dicom\": {\"max_per_address\": 0}}", "dicom.max_per_address: 0 is outside");
}
