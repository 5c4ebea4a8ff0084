/* reports/rpt_config.c: the reports.* section reached through cfg->reports. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/rpt_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>
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
