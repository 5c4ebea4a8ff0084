#include "common/hr_config.h"
#include "common/hr_err.h"
#include "support/config_expect.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
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

Test(config, errors_name_the_key)
{
    expect_config_error("{\"bogus\": 1}", "bogus: unknown key");
    expect_config_error("[1]", "(top level): must be a JSON object");
    expect_config_error("{\"dicom\": {\"port\": 1}, \"dicom\": {\"port\": 2}}", "duplicate");
    expect_config_error("{\"data_dir\": \"\"}", "data_dir: must not be empty");
    expect_config_error("{\"log_level\": \"loud\"}",
                        "log_level: \"loud\" is not debug, info, warn or error");
    expect_config_error("{\"hospitals\": {}}", "hospitals: must be an array");
    expect_config_error("{\"hospitals\": [{\"name\": \"x\"}]}", "hospitals[0].id: required");
    expect_config_error("{\"hospitals\": [{\"id\": \"A B\"}]}",
                        "hospitals[0].id: \"A B\" may only hold a-z, 0-9, '-' and '_'");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\", \"level\": \"city\"}]}",
                        "hospitals[0].level: \"city\" is not township or county");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\", \"ae_titles\": [\"X\"]}],"
                        " \"dicom\": {\"hospital\": \"a\"}}",
                        "hospitals[0].addresses: required when ae_titles are given");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\", \"addresses\": [\"10.0.0.0/33\"]}],"
                        " \"dicom\": {\"hospital\": \"a\"}}",
                        "hospitals[0].addresses[0]: not an IP address or CIDR network");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\"}, {\"id\": \"a\"}],"
                        " \"dicom\": {\"hospital\": \"a\"}}",
                        "hospitals[1].id: \"a\" is used twice");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\", \"ae_titles\": [\"X\"], \"addresses\": "
                        "[\"::1\"]}, {\"id\": \"b\", \"ae_titles\": [\"X\"], \"addresses\": "
                        "[\"::1\"]}], \"dicom\": {\"hospital\": \"a\"}}",
                        "hospitals[1].ae_titles: \"X\" belongs to \"a\" too");
    expect_config_error(
        "{\"hospitals\": [{\"id\": \"a\", \"destinations\": [{\"ae_title\": \"X\"}]}],"
        " \"dicom\": {\"hospital\": \"a\"}}",
        "hospitals[0].destinations[0]: ae_title, host and port are required");
    expect_config_error("{\"hospitals\": [{\"id\": \"a\", \"destinations\": [{\"ae_title\": \"X\", "
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

Test(config, destinations)
{
    hr_config c;
    char err[256];
    const char *json =
        "{\"hospitals\": [{\"id\": \"county\", \"level\": \"county\","
        " \"destinations\": [{\"ae_title\": \"WS1\", \"host\": \"127.0.0.1\", \"port\": 104}]}]}";
    cr_assert_eq(hr_config_load_string(json, &c, err, sizeof(err)), 0, "%s", err);
    const hr_hospital *owner = NULL;
    const hr_destination *d = hr_config_destination(&c, "WS1", &owner);
    cr_assert_not_null(d);
    cr_expect_eq(d->port, 104);
    cr_expect_str_eq(owner->id, "county");
    cr_expect_null(hr_config_destination(&c, "WS2", NULL));
    hr_config_free(&c);
}

/* The getters every section uses word their errors the same way. */
Test(config, getter_wording)
{
    char err[256], s[8];
    long long n = 7;
    int b = 0, idx = -1;
    static const char *const names[] = {"one", "two", "three", NULL};
    json_t *o = json_pack("{s:s, s:s, s:i, s:b, s:s, s:s}", "long", "12345678", "empty", "", "n",
                          42, "b", 1, "pick", "four", "ok", "two");
    cr_assert_not_null(o);
    cr_expect_eq(hr_cfg_get_str(o, "long", "a.b.", s, sizeof(s), 0, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.b.long: longer than 7 characters");
    cr_expect_eq(hr_cfg_get_str(o, "empty", "a.", s, sizeof(s), 0, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.empty: must not be empty");
    cr_expect_eq(hr_cfg_get_str(o, "n", "a.", s, sizeof(s), 0, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.n: must be a string");
    cr_expect_eq(hr_cfg_get_int(o, "n", "a.", 0, 41, &n, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.n: 42 is outside 0..41");
    cr_expect_eq(n, 7, "untouched on error");
    cr_expect_eq(hr_cfg_get_int(o, "absent", "a.", 0, 1, &n, err, sizeof(err)), 0);
    cr_expect_eq(n, 7, "absent: untouched");
    cr_expect_eq(hr_cfg_get_int(o, "b", "a.", 0, 1, &n, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.b: must be an integer");
    cr_expect_eq(hr_cfg_get_bool(o, "b", "a.", &b, err, sizeof(err)), 0);
    cr_expect_eq(b, 1);
    cr_expect_eq(hr_cfg_get_bool(o, "n", "a.", &b, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.n: must be true or false");
    cr_expect_eq(hr_cfg_get_choice(o, "pick", "a.", names, 16, &idx, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "a.pick: \"four\" is not one, two or three");
    cr_expect_eq(hr_cfg_get_choice(o, "ok", "a.", names, 16, &idx, err, sizeof(err)), 0);
    cr_expect_eq(idx, 1);
    static const char *const allowed[] = {"long", "empty", "n", "b", "pick", NULL};
    cr_expect_eq(hr_cfg_check_keys(o, "x.y.", allowed, err, sizeof(err)), HR_ECONFIG);
    cr_expect_str_eq(err, "x.y.ok: unknown key");
    json_decref(o);
}

/* Maps whose keys are data, not key names. */
static int is_map(const char *path)
{
    return strcmp(path, "worklist.quiet_by_modality") == 0 ||
           strcmp(path, "delivery.hospitals") == 0 || strcmp(path, "lab.facilities") == 0 ||
           strcmp(path, "lab.charsets") == 0 || strcmp(path, "alerts.hospitals") == 0 ||
           strcmp(path, "alerts.duty") == 0;
}

/* Adds an unknown key to every object below v (path names v) in turn and
 * loads doc: the error names the key's full path. Returns the objects tried. */
static int poke_unknown(json_t *doc, json_t *v, const char *path)
{
    int tried = 0;
    char sub[256];
    if (json_is_object(v) && !is_map(path)) {
        char want[300];
        snprintf(want, sizeof(want), "%s%szz_unknown: unknown key", path, *path ? "." : "");
        cr_assert_eq(json_object_set_new(v, "zz_unknown", json_true()), 0);
        char *text = json_dumps(doc, 0);
        cr_assert_not_null(text);
        hr_config c;
        char err[512] = "";
        cr_expect_eq(hr_config_load_string(text, &c, err, sizeof(err)), HR_ECONFIG, "%s", want);
        cr_expect_str_eq(err, want);
        free(text);
        json_object_del(v, "zz_unknown");
        tried++;
        const char *key;
        json_t *x;
        json_object_foreach(v, key, x)
        {
            snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
            tried += poke_unknown(doc, x, sub);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            tried += poke_unknown(doc, json_array_get(v, i), sub);
        }
    }
    return tried;
}

/* Whichever module owns a section, an unknown key anywhere in it (at the
 * top, in a section, in an array element, in a nested object) is refused
 * with its path. The shapes come from the embedded defaults. */
Test(config, unknown_key_in_any_section_names_its_path)
{
    json_error_t je;
    const char *text = hr_config_default_json();
    cr_assert_not_null(text);
    json_t *doc = json_loads(text, 0, &je);
    cr_assert_not_null(doc, "%s", je.text);
    int tried = poke_unknown(doc, doc, "");
    cr_expect_gt(tried, 20, "%d objects", tried);
    /* every section of every module was among them */
    const hr_config_section *const *lists[] = {hr_config_core_sections, hr_config_sections};
    for (size_t l = 0; l < 2; l++)
        for (const hr_config_section *const *s = lists[l]; *s; s++)
            if ((*s)->name)
                cr_expect_not_null(json_object_get(doc, (*s)->name), "%s has defaults", (*s)->name);
    json_decref(doc);
}

/* The embedded defaults, given back as a file, load to the same result. */
Test(config, default_json_is_a_valid_file)
{
    hr_config a, b;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &a, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(hr_config_load_string(hr_config_default_json(), &b, err, sizeof(err)), 0, "%s",
                 err);
    cr_expect_eq(a.n_hospitals, b.n_hospitals);
    cr_expect_eq(a.n_centers, b.n_centers);
    cr_expect_eq(a.routing.n_rules, b.routing.n_rules);
    cr_expect_eq(a.dicom.reserved_associations, b.dicom.reserved_associations);
    cr_expect_str_eq(a.http.listen.host, b.http.listen.host);
    cr_expect_eq(memcmp(a.worklist.turnaround_min, b.worklist.turnaround_min,
                        sizeof(a.worklist.turnaround_min)),
                 0);
    hr_config_free(&a);
    hr_config_free(&b);
}

/* docs/configuration.md has a row for every key a section's table accepts
 * and for every array section. */
Test(config, every_section_key_is_documented)
{
    char *doc = read_configuration_md();
    const hr_config_section *const *lists[] = {hr_config_core_sections, hr_config_sections};
    for (size_t l = 0; l < 2; l++) {
        for (const hr_config_section *const *s = lists[l]; *s; s++) {
            char want[128];
            if (!(*s)->keys) {
                /* a list (`name[]`), or an object section read by its parse
                 * hook (`name.key`, e.g. the pointer sections of issue 9) */
                char obj[128];
                snprintf(want, sizeof(want), "`%s[]`", (*s)->name);
                snprintf(obj, sizeof(obj), "`%s.", (*s)->name);
                cr_expect(strstr(doc, want) != NULL || strstr(doc, obj) != NULL,
                          "docs/configuration.md lacks %s or %s...", want, obj);
                continue;
            }
            for (const hr_cfg_key *k = (*s)->keys; k->name; k++) {
                snprintf(want, sizeof(want), "`%s%s%s", (*s)->name ? (*s)->name : "",
                         (*s)->name ? "." : "", k->name);
                cr_expect(strstr(doc, want) != NULL, "docs/configuration.md lacks %s", want);
            }
        }
    }
}
