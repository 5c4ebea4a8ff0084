/* reports/alr_config.c: the alerts section's defaults, the documented
 * example, and what it refuses. */
#include "common/hr_config.h"
#include "reports/alr_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>
#include <string.h>

#define HOSP "\"hospitals\": [{\"id\": \"county\", \"level\": \"county\"}, {\"id\": \"township1\"}]"

Test(alr_config, defaults)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{}", &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(c.alerts);
    cr_expect_eq(c.alerts->ack_timeout_s, 600);
    cr_expect_eq(c.alerts->poll_ms, 1000);
    cr_expect_eq(c.alerts->batch, 50);
    cr_expect_eq(c.alerts->n_hospitals, 0);
    cr_expect_null(rpt_alr_config_hospital(c.alerts, "township1"));
    hr_config_free(&c);
    cr_expect_null(c.alerts);
}

Test(alr_config, documented_example)
{
    char *doc = read_configuration_md();
    char *ex = strstr(doc, "Critical values example");
    cr_assert_not_null(ex);
    ex = strstr(ex, "```json\n");
    cr_assert_not_null(ex);
    ex += strlen("```json\n");
    char *end = strstr(ex, "```");
    cr_assert_not_null(end);
    *end = '\0';
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string(ex, &c, err, sizeof(err)), 0, "%s", err);
    const alr_hospital *h = rpt_alr_config_hospital(c.alerts, "township1");
    cr_assert_not_null(h);
    cr_expect_eq(h->n_contacts, 2);
    cr_expect_str_eq(h->contacts[0].user, "t1doc");
    cr_expect_eq(h->contacts[0].channels, ALR_CH_SSE | ALR_CH_HL7);
    cr_expect_eq(h->contacts[1].channels, ALR_CH_SSE | ALR_CH_WEBHOOK);
    cr_expect(h->hl7_on && h->webhook_on);
    cr_expect_eq(h->hl7_port, 2575);
    cr_expect_str_eq(rpt_alr_config_duty(&c, "imaging"), "img-duty");
    cr_expect_str_eq(rpt_alr_config_duty(&c, "ecg"), "ecg-duty");
    cr_expect_null(rpt_alr_config_duty(&c, "nowhere"));
    hr_config_free(&c);
}

Test(alr_config, refused)
{
    expect_config_error("{\"alerts\": {\"ack_timeout_s\": 0}}", "alerts.ack_timeout_s");
    expect_config_error("{\"alerts\": {\"nope\": 1}}", "alerts.nope: unknown key");
    expect_config_error("{\"alerts\": {\"hospitals\": {\"nowhere\": {}}}}",
                        "alerts.hospitals.nowhere: not one of hospitals[].id");
    expect_config_error("{" HOSP ", \"alerts\": {\"hospitals\": {\"township1\": {\"contacts\":"
                        " [{\"user\": \"a\", \"channels\": [\"sms\"]}]}}}}",
                        "contacts[0].channels[0]");
    expect_config_error("{" HOSP ", \"alerts\": {\"hospitals\": {\"township1\": {\"contacts\":"
                        " [{\"user\": \"a\", \"channels\": [\"hl7\"]}]}}}}",
                        "channel hl7 needs");
    expect_config_error("{" HOSP ", \"alerts\": {\"hospitals\": {\"township1\": {\"contacts\":"
                        " [{\"name\": \"x\"}]}}}}",
                        "contacts[0].user: required");
    expect_config_error("{" HOSP ", \"alerts\": {\"hospitals\": {\"township1\": {\"webhook\":"
                        " {\"url\": \"http://example.org/x\"}}}}}",
                        "plain http only to a loopback address");
    expect_config_error("{" HOSP ", \"alerts\": {\"hospitals\": {\"township1\": {\"hl7\":"
                        " {\"host\": \"h\", \"port\": 1, \"receiving_facility\": \"a|b\"}}}}}",
                        "receiving_*");
    expect_config_error("{\"alerts\": {\"duty\": {\"radiology\": \"u\"}}}",
                        "alerts.duty.radiology: neither a centers[].id nor a center kind");
}
