/* gateway/gw_config.c: dicom.* and hl7.* */
#include "common/hr_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>

Test(gw_config, dicom_defaults_and_overlay)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.dicom.listen.host, "0.0.0.0");
    cr_expect_eq(c.dicom.listen.port, 11112);
    cr_expect_str_eq(c.dicom.ae_title, "HUREN");
    cr_expect_str_eq(c.dicom.hospital, "county");
    cr_expect_eq(c.dicom.max_associations, 64);
    cr_expect_eq(c.dicom.max_per_address, 16);
    cr_expect_eq(c.dicom.reserved_associations, 8, "max_associations / 8");
    cr_expect_eq(c.dicom.max_pdu, 262144);
    cr_expect_eq(c.dicom.idle_timeout_s, 120);
    cr_expect_eq(c.dicom.artim_timeout_s, 30);
    cr_expect_eq(c.dicom.max_object_bytes, 8589934592ULL);
    cr_expect_eq(c.dicom.accept_unknown_storage, 1);
    cr_expect_str_eq(c.hl7.host, "0.0.0.0");
    cr_expect_eq(c.hl7.port, 2575);
    cr_expect_eq(c.hl7.enabled, 0, "no HL7 port unless asked for");
    cr_expect_eq(c.hl7.max_message_bytes, 1048576);
    cr_expect_eq(c.hl7.idle_timeout_s, 300);
    cr_expect_eq(c.hl7.max_connections, 256);
    cr_expect_str_eq(c.hl7.facility, "county", "dicom.hospital when unset");
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"dicom\": {\"port\": 4242, \"max_associations\": 4,"
                                       " \"accept_unknown_storage\": false,"
                                       " \"max_object_bytes\": 4398046511104},"
                                       " \"hl7\": {\"listen\": \"::1\"}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c.dicom.listen.port, 4242);
    cr_expect_eq(c.dicom.reserved_associations, 1, "at least one reserved slot");
    cr_expect_eq(c.dicom.accept_unknown_storage, 0);
    cr_expect_eq(c.dicom.max_object_bytes, 4398046511104ULL, "4 TiB fits the 64-bit field");
    cr_expect_str_eq(c.dicom.ae_title, "HUREN", "unset keys keep their default");
    cr_expect_str_eq(c.hl7.host, "::1");
    cr_expect_eq(c.hl7.port, 2575);
    hr_config_free(&c);
    cr_assert_eq(
        hr_config_load_string("{\"dicom\": {\"reserved_associations\": 0}}", &c, err, sizeof(err)),
        0, "%s", err);
    cr_expect_eq(c.dicom.reserved_associations, 0, "0 turns the reserve off");
    hr_config_free(&c);
}

Test(gw_config, dicom_errors_name_the_key)
{
    expect_config_error("{\"dicom\": []}", "dicom: must be an object");
    expect_config_error("{\"dicom\": {\"aet\": \"X\"}}", "dicom.aet: unknown key");
    expect_config_error("{\"dicom\": {\"port\": 0}}", "dicom.port: 0 is outside 1..65535");
    expect_config_error("{\"dicom\": {\"listen\": \"any\"}}",
                        "dicom.listen: \"any\" is not an IPv4 or IPv6 address");
    expect_config_error("{\"dicom\": {\"max_pdu\": 100}}",
                        "dicom.max_pdu: 100 is outside 4096..16777216");
    expect_config_error("{\"dicom\": {\"max_per_address\": 0}}",
                        "dicom.max_per_address: 0 is outside");
    expect_config_error("{\"dicom\": {\"max_associations\": 4, \"reserved_associations\": 5}}",
                        "dicom.reserved_associations: 5 is more than dicom.max_associations (4)");
    expect_config_error("{\"dicom\": {\"idle_timeout_s\": 0}}",
                        "dicom.idle_timeout_s: 0 is outside");
    expect_config_error("{\"dicom\": {\"artim_timeout_s\": 3601}}",
                        "dicom.artim_timeout_s: 3601 is outside 1..3600");
    expect_config_error("{\"dicom\": {\"max_object_bytes\": 4398046511105}}",
                        "dicom.max_object_bytes: 4398046511105 is outside");
    expect_config_error("{\"dicom\": {\"accept_unknown_storage\": \"yes\"}}",
                        "dicom.accept_unknown_storage: must be true or false");
    expect_config_error("{\"dicom\": {\"ae_title\": \"A\\\\B\"}}",
                        "dicom.ae_title: must be 1-16 printable ASCII characters");
    expect_config_error("{\"dicom\": {\"ae_title\": \" HUREN\"}}",
                        "dicom.ae_title: must be 1-16 printable ASCII characters");
    expect_config_error("{\"dicom\": {\"ae_title\": \"SEVENTEEN_CHARS_X\"}}",
                        "dicom.ae_title: longer than 16 characters");
    expect_config_error("{\"dicom\": {\"ae_title\": \"COUNTY_PACS\"}}",
                        "hospitals[0].ae_titles: \"COUNTY_PACS\" is the hub's own dicom.ae_title");
    expect_config_error("{\"dicom\": {\"hospital\": \"mars\"}}",
                        "dicom.hospital: \"mars\" is not one of hospitals[].id");
    expect_config_error("{\"hl7\": {\"port\": 70000}}", "hl7.port: 70000 is outside 1..65535");
    expect_config_error("{\"hl7\": {\"max_message_bytes\": 100}}",
                        "hl7.max_message_bytes: 100 is outside 1024..67108864");
    expect_config_error("{\"hl7\": {\"facility\": \"A|B\"}}",
                        "hl7.facility: \"A|B\" holds an HL7 delimiter or control character");
    expect_config_error("{\"hl7\": {\"ae_title\": \"X\"}}", "hl7.ae_title: unknown key");
    expect_config_error("{\"hl7\": true}", "hl7: must be an object");
}
