/* worklist/wl_config.c: centers[], routing.* and worklist.* */
#include "common/hr_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(wl_config, worklist_defaults)
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

Test(wl_config, worklist_overlay)
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

Test(wl_config, worklist_errors_name_the_key)
{
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"dermatology\", \"priority\": "
                        "\"stat\"}]}}",
                        "routing.rules[0].center: \"dermatology\" is not one of centers[].id");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\"}]}}",
                        "routing.rules[0].center, routing.rules[0].priority: both are required");
    expect_config_error(
        "{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"asap\"}]}}",
        "routing.rules[0].priority: \"asap\" is not stat, urgent or routine");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", \"1.2.03\"]}]}}",
                        "routing.rules[0].sop_classes[1]: not a valid UID");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"sop_classes\": [\"ECG\"]}]}}",
                        "routing.rules[0].sop_classes[0]: not a valid UID");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"modalities\": []}]}}",
                        "routing.rules[0].modalities: must be a non-empty array");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"modalities\": [\"THIS IS TOO LONG A CS\"]}]}}",
                        "routing.rules[0].modalities[0]");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"hospitals\": [\"mars\"]}]}}",
                        "routing.rules[0].hospitals[0]: \"mars\" is not one of hospitals[].id");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"calling_aes\": [\"\"]}]}}",
                        "routing.rules[0].calling_aes[0]");
    expect_config_error("{\"routing\": {\"rules\": [{\"center\": \"ecg\", \"priority\": \"stat\", "
                        "\"procedure\": [\"x\"]}]}}",
                        "routing.rules[0].procedure: unknown key");
    expect_config_error("{\"routing\": {\"default\": {\"center\": \"nowhere\"}}}",
                        "routing.default.center: \"nowhere\" is not one of centers[].id");
    expect_config_error("{\"routing\": {\"default\": {\"priority\": \"later\"}}}",
                        "routing.default.priority");
    expect_config_error("{\"routing\": {\"rules\": {}}}", "routing.rules: must be an array");
    expect_config_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ekg\", \"hospital\": "
                        "\"county\"}]}",
                        "centers[0].kind: \"ekg\" is not imaging, ecg, pathology or lab");
    expect_config_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\"}]}",
                        "centers[0].hospital: required");
    expect_config_error(
        "{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"mars\"}]}",
        "centers[0].hospital: \"mars\" is not one of hospitals[].id");
    expect_config_error(
        "{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
        "\"county\"}, {\"id\": \"ecg\", \"kind\": \"lab\", \"hospital\": \"county\"}]}",
        "centers[1].id: \"ecg\" is used twice");
    expect_config_error("{\"centers\": [{\"id\": \"E C G\", \"kind\": \"ecg\", \"hospital\": "
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
        expect_config_error(json, "centers[0].hours");
    }
    expect_config_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                        "\"county\", \"audit_signoff\": 1}]}",
                        "centers[0].audit_signoff: must be true or false");
    expect_config_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                        "\"county\"}]}",
                        "(an embedded default rule: give \"routing.rules\" too)");
    expect_config_error("{\"hospitals\": [{\"id\": \"h1\"}], \"dicom\": {\"hospital\": \"h1\"}}",
                        "centers[0].hospital: \"county\" is not one of hospitals[].id (an embedded "
                        "default center");
    expect_config_error("{\"worklist\": {\"lease_s\": 5}}",
                        "worklist.lease_s: 5 is outside 30..86400");
    expect_config_error("{\"worklist\": {\"quiet_s\": -1}}", "worklist.quiet_s");
    expect_config_error("{\"worklist\": {\"quiet_by_modality\": {\"CT\": \"60\"}}}",
                        "worklist.quiet_by_modality.CT: must be an integer");
    expect_config_error("{\"worklist\": {\"quiet_by_modality\": {\"CT\": 60, \"ct\": 30}}}",
                        "worklist.quiet_by_modality.ct: given twice");
    expect_config_error("{\"worklist\": {\"turnaround_min\": {\"radiology\": {\"stat\": 5}}}}",
                        "worklist.turnaround_min.radiology: unknown key");
    expect_config_error("{\"worklist\": {\"turnaround_min\": {\"ecg\": {\"asap\": 5}}}}",
                        "worklist.turnaround_min.ecg.asap: unknown key");
    expect_config_error("{\"worklist\": {\"turnaround_min\": {\"ecg\": {\"stat\": 0}}}}",
                        "worklist.turnaround_min.ecg.stat: 0 is outside");
    expect_config_error("{\"worklist\": {\"lease\": 600}}", "worklist.lease: unknown key");
}

/* Tests shorten leases and turnaround targets below what an operator may set. */
Test(wl_config, worklist_test_timing)
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
    expect_config_error("{\"worklist\": {\"min_lease_s\": 2, \"lease_s\": 1}}",
                        "worklist.lease_s: 1 is outside 2..86400");
    expect_config_error("{\"worklist\": {\"min_lease_s\": 0}}",
                        "worklist.min_lease_s: 0 is outside 1..30");
    expect_config_error("{\"worklist\": {\"min_lease_s\": 31}}", "worklist.min_lease_s");
    expect_config_error("{\"worklist\": {\"turnaround_unit_s\": 0}}",
                        "worklist.turnaround_unit_s: 0 is outside 1..60");
    expect_config_error("{\"worklist\": {\"turnaround_unit_s\": 61}}",
                        "worklist.turnaround_unit_s");
}

/* The example in docs/configuration.md loads as documented. */
Test(wl_config, documented_worklist_example_loads)
{
    char *doc = read_configuration_md();
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

Test(wl_config, section_shapes_and_unknown_keys)
{
    expect_config_error("{\"centers\": {}}", "centers: must be an array");
    expect_config_error("{\"centers\": [\"ecg\"]}", "centers[0]: must be an object");
    expect_config_error("{\"centers\": [{\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": "
                        "\"county\", \"open\": \"08:00\"}]}",
                        "centers[0].open: unknown key");
    expect_config_error("{\"routing\": []}", "routing: must be an object");
    expect_config_error("{\"routing\": {\"fallback\": {}}}", "routing.fallback: unknown key");
    expect_config_error("{\"routing\": {\"default\": \"imaging\"}}",
                        "routing.default: must be an object {center, priority}");
    expect_config_error("{\"routing\": {\"default\": {\"center\": \"ecg\", \"prio\": \"stat\"}}}",
                        "routing.default.prio: unknown key");
    expect_config_error("{\"routing\": {\"rules\": [7]}}", "routing.rules[0]: must be an object");
    expect_config_error("{\"worklist\": 5}", "worklist: must be an object");
    expect_config_error("{\"worklist\": {\"turnaround_min\": []}}",
                        "worklist.turnaround_min: must be an object {kind: {priority: minutes}}");
    expect_config_error("{\"worklist\": {\"turnaround_min\": {\"ecg\": 10}}}",
                        "worklist.turnaround_min.ecg: must be an object {priority: minutes}");
    expect_config_error("{\"worklist\": {\"quiet_by_modality\": [\"CT\"]}}",
                        "worklist.quiet_by_modality: must be an object {modality: seconds}");
    expect_config_error("{\"worklist\": {\"quiet_by_modality\": {\"C\\\\T\": 5}}}",
                        "worklist.quiet_by_modality.C\\T: a modality is 1-16 printable ASCII");
    expect_config_error("{\"worklist\": {\"quiet_s\": 86401}}",
                        "worklist.quiet_s: 86401 is outside 0..86400");
    expect_config_error("{\"worklist\": {\"lease_s\": \"600\"}}",
                        "worklist.lease_s: must be an integer");
}
