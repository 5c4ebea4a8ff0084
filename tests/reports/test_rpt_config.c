/* reports/rpt_config.c: the reports.* section reached through cfg->reports. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/rpt_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

Test(rpt_config, defaults_follow_data_dir)
{
    hr_config c;
    char err[256], trust[HR_PATH_MAX + 16];
    cr_assert_eq(hr_config_load_string("{\"data_dir\": \"/srv/huren\"}", &c, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_not_null(c.reports);
    cr_expect_str_eq(c.reports->keys_dir, "/srv/huren/keys");
    cr_expect_str_eq(c.reports->ca_dir, "/srv/huren/ca");
    cr_expect_str_eq(c.reports->tsa_url, "");
    cr_expect_eq(c.reports->tsa_timeout_ms, 10000);
    cr_expect_eq(c.reports->sign_session_s, 0);
    cr_expect_eq(c.reports->cert_days, 730);
    cr_expect_eq(rpt_config_trust_path(&c, trust, sizeof(trust)), 0);
    cr_expect_str_eq(trust, "/srv/huren/ca/trust.pem");
    hr_config_free(&c);
    cr_expect_null(c.reports);
}

Test(rpt_config, overrides)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{\"reports\": {\"keys_dir\": \"/k\", \"ca_dir\": \"/c\", "
                                       "\"tsa_url\": \"https://tsa.example/ts\", "
                                       "\"tsa_timeout_ms\": 500, \"cert_days\": 365}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_str_eq(c.reports->keys_dir, "/k");
    cr_expect_str_eq(c.reports->ca_dir, "/c");
    cr_expect_str_eq(c.reports->tsa_url, "https://tsa.example/ts");
    cr_expect_eq(c.reports->tsa_timeout_ms, 500);
    cr_expect_eq(c.reports->cert_days, 365);
    hr_config_free(&c);
}

Test(rpt_config, refused)
{
    expect_config_error("{\"reports\": {\"tsa_url\": \"ftp://tsa\"}}", "reports.tsa_url");
    expect_config_error("{\"reports\": {\"tsa_timeout_ms\": 50}}", "reports.tsa_timeout_ms");
    expect_config_error("{\"reports\": {\"sign_session_s\": 300}}", "reports.sign_session_s");
    expect_config_error("{\"reports\": {\"cert_days\": 0}}", "reports.cert_days");
    expect_config_error("{\"reports\": {\"pin\": \"123456\"}}", "reports.pin: unknown key");
    expect_config_error("{\"reports\": []}", "reports: must be an object");
    expect_config_error("{\"reports\": {\"keys_dir\": 5}}", "reports.keys_dir");
}

/* A template of the list by id, NULL when absent. */
static json_t *template_of(const json_t *list, const char *id)
{
    size_t i;
    json_t *t;
    json_array_foreach((json_t *)list, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "id")), id) == 0)
            return t;
    }
    return NULL;
}

Test(rpt_config, templates_default)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{}", &c, err, sizeof(err)), 0, "%s", err);
    json_t *t = template_of(c.reports->templates, "ct-head");
    cr_assert_not_null(t);
    cr_expect_str_eq(json_string_value(json_object_get(t, "name")), "头颅CT平扫");
    cr_expect_gt(json_string_length(json_object_get(t, "findings")), 0);
    t = template_of(c.reports->templates, "dx-chest-pa");
    cr_assert_not_null(t);
    cr_expect_str_eq(json_string_value(json_object_get(t, "name")), "胸部正位片");
    cr_expect_geq(json_array_size(c.reports->phrases), 10);
    hr_config_free(&c);
}

Test(rpt_config, templates_replaced)
{
    hr_config c;
    char err[256];
    cr_assert_eq(
        hr_config_load_string("{\"reports\": {\"templates\": [{\"id\": \"us-thyroid\", \"name\": "
                              "\"甲状腺超声\", \"modalities\": [\"US\"], \"impression\": "
                              "\"甲状腺未见异常。\"}], \"phrases\": []}}",
                              &c, err, sizeof(err)),
        0, "%s", err);
    cr_assert_eq(json_array_size(c.reports->templates), 1);
    json_t *t = template_of(c.reports->templates, "us-thyroid");
    cr_assert_not_null(t);
    cr_expect_str_eq(json_string_value(json_object_get(t, "findings")), "");
    cr_expect_eq(json_array_size(json_object_get(t, "body_parts")), 0);
    cr_expect_eq(json_array_size(c.reports->phrases), 0);
    cr_expect_not_null(template_of(c.reports->templates, "us-thyroid"));
    hr_config_free(&c);
}

Test(rpt_config, templates_refused)
{
    expect_config_error("{\"reports\": {\"templates\": {}}}", "reports.templates");
    expect_config_error("{\"reports\": {\"templates\": [{\"name\": \"x\", \"findings\": \"y\"}]}}",
                        "reports.templates[0].id");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a b\", \"name\": \"x\", "
                        "\"findings\": \"y\"}]}}",
                        "reports.templates[0].id");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"x\", "
                        "\"findings\": \"y\"}, {\"id\": \"a\", \"name\": \"z\", \"findings\": "
                        "\"y\"}]}}",
                        "reports.templates[1].id: \"a\" twice");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"x\"}]}}",
                        "reports.templates[0]: findings or impression");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"\", "
                        "\"findings\": \"y\"}]}}",
                        "reports.templates[0].name");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"x\", "
                        "\"findings\": \"y\", \"modalities\": [\"\"]}]}}",
                        "reports.templates[0].modalities[0]");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"x\", "
                        "\"findings\": \"a\\u0001b\"}]}}",
                        "reports.templates[0].findings");
    expect_config_error("{\"reports\": {\"templates\": [{\"id\": \"a\", \"name\": \"x\", "
                        "\"findings\": \"y\", \"extra\": 1}]}}",
                        "reports.templates[0].extra: unknown key");
    expect_config_error("{\"reports\": {\"phrases\": [{\"group\": \"g\"}]}}",
                        "reports.phrases[0].text");
    expect_config_error("{\"reports\": {\"phrases\": [\"text\"]}}", "reports.phrases[0]");
}
