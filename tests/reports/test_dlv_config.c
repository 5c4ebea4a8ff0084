/* reports/dlv_config.c: the delivery section's defaults, a full example,
 * and what it refuses. */
#include "common/hr_config.h"
#include "reports/dlv_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>
#include <string.h>

#define HOSP                                                                                       \
    "\"hospitals\": [{\"id\": \"county\", \"level\": \"county\"},"                                 \
    " {\"id\": \"township1\", \"destinations\": [{\"ae_title\": \"T1PACS\", \"host\": "            \
    "\"10.1.1.5\", \"port\": 104}]}, {\"id\": \"township2\"}]"

Test(dlv_config, defaults)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{}", &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(c.delivery);
    cr_expect_eq(c.delivery->retry_initial_s, 10);
    cr_expect_eq(c.delivery->retry_max_s, 3600);
    cr_expect_eq(c.delivery->failing_after, 5);
    cr_expect_eq(c.delivery->lease_s, 300);
    cr_expect_eq(c.delivery->poll_ms, 1000);
    cr_expect_eq(c.delivery->hl7_timeout_s, 30);
    cr_expect_eq(c.delivery->n_hospitals, 0);
    cr_expect_null(rpt_dlv_config_hospital(c.delivery, "township1"));
    hr_config_free(&c);
    cr_expect_null(c.delivery);
}

Test(dlv_config, full)
{
    hr_config c;
    char err[256];
    const char *j =
        "{" HOSP ", \"delivery\": {\"retry_initial_s\": 1, \"retry_max_s\": 2, \"lease_s\": 20,"
        " \"hl7_timeout_s\": 5, \"dicom_timeout_s\": 10, \"webhook_timeout_s\": 5,"
        " \"report_base_url\": \"https://hub.example.org\","
        " \"hospitals\": {\"township1\": {"
        "  \"hl7\": {\"host\": \"ris.t1\", \"port\": 2575, \"receiving_application\": \"RIS\","
        "           \"receiving_facility\": \"T1\"},"
        "  \"dicom\": {\"ae_title\": \"T1PACS\", \"what\": [\"pdf\"]},"
        "  \"webhook\": {\"url\": \"https://t1.example.org/reports\", \"bearer\": \"s3cr3t\"}},"
        " \"township2\": {\"webhook\": {\"url\": \"http://127.0.0.1:8000/x\"}}}}}";
    cr_assert_eq(hr_config_load_string(j, &c, err, sizeof(err)), 0, "%s", err);
    const dlv_hospital *h = rpt_dlv_config_hospital(c.delivery, "township1");
    cr_assert_not_null(h);
    cr_expect(h->hl7.on && h->dicom.on && h->webhook.on);
    cr_expect_str_eq(h->hl7.host, "ris.t1");
    cr_expect_eq(h->hl7.port, 2575);
    cr_expect_str_eq(h->hl7.receiving_application, "RIS");
    cr_expect_eq(h->dicom.what, DLV_WHAT_PDF);
    cr_expect_str_eq(h->webhook.bearer, "s3cr3t");
    h = rpt_dlv_config_hospital(c.delivery, "township2");
    cr_assert_not_null(h);
    cr_expect(!h->hl7.on && !h->dicom.on && h->webhook.on);
    cr_expect_str_eq(c.delivery->report_base_url, "https://hub.example.org");
    hr_config_free(&c);
}

Test(dlv_config, refused)
{
    expect_config_error("{\"delivery\": {\"hospitals\": {\"nowhere\": {}}}}",
                        "delivery.hospitals.nowhere: not one of hospitals[].id");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township2\": {\"dicom\": "
                        "{\"ae_title\": \"T1PACS\"}}}}}",
                        "is not one of that hospital's destinations");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"webhook\": "
                        "{\"url\": \"http://t1.example.org/x\"}}}}}",
                        "plain http only to a loopback address");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"webhook\": "
                        "{\"url\": \"ftp://t1/x\"}}}}}",
                        "is not an http(s)://host");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"webhook\": "
                        "{\"url\": \"https://user:pw@t1/x\"}}}}}",
                        "is not an http(s)://host");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"dicom\": "
                        "{\"ae_title\": \"T1PACS\", \"what\": [\"jpeg\"]}}}}}",
                        "what[0]: must be \"sr\" or \"pdf\"");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"dicom\": "
                        "{\"ae_title\": \"T1PACS\", \"what\": []}}}}}",
                        "a non-empty list");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"hl7\": "
                        "{\"host\": \"x\"}}}}}",
                        "host and port are required");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"hl7\": "
                        "{\"host\": \"x\", \"port\": 1, \"receiving_facility\": \"A^B\"}}}}}",
                        "may not hold");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"fax\": {}}}}}",
                        "delivery.hospitals.township1.fax: unknown key");
    expect_config_error("{\"delivery\": {\"retries\": 3}}", "delivery.retries: unknown key");
    expect_config_error("{\"delivery\": {\"retry_initial_s\": 100, \"retry_max_s\": 50}}",
                        "retry_max_s: 50 is less than retry_initial_s");
    expect_config_error("{\"delivery\": {\"lease_s\": 100}}", "delivery.lease_s: 100 is less than");
    expect_config_error("{\"delivery\": {\"poll_ms\": 0}}", "delivery.poll_ms: 0 is outside");
    expect_config_error("{\"delivery\": {\"report_base_url\": \"hub\"}}", "report_base_url");
    expect_config_error("{" HOSP ", \"delivery\": {\"hospitals\": {\"township1\": {\"webhook\": "
                        "{\"url\": \"https://t1/x\", \"bearer\": \"a b\"}}}}}",
                        "bearer: printable ASCII without spaces");
}

/* The delivery example of docs/configuration.md loads as documented. */
Test(dlv_config, documented_example_loads)
{
    char *doc = read_configuration_md();
    const char *intro = "Report delivery example";
    char *ex = strstr(doc, intro);
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
    const dlv_hospital *h = rpt_dlv_config_hospital(c.delivery, "township1");
    cr_assert_not_null(h);
    cr_expect(h->hl7.on && h->dicom.on && h->webhook.on);
    cr_expect_eq(h->dicom.what, DLV_WHAT_SR | DLV_WHAT_PDF);
    hr_config_free(&c);
}
