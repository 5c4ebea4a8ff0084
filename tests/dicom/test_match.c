#include "common/hr_err.h"
#include "dicom/match.h"

#include <criterion/criterion.h>

Test(match, universal_matches_everything_even_empty)
{
    cr_expect(dcm_match("PN", "", "Doe^John"));
    cr_expect(dcm_match("PN", "*", ""));
    cr_expect(dcm_match("DA", "", ""));
    cr_expect(dcm_match("UI", NULL, "1.2.3"));
    cr_expect_eq(dcm_match_kind("LO", ""), DCM_MATCH_UNIVERSAL);
}

Test(match, single_value_is_exact_and_case_sensitive_except_pn)
{
    cr_expect(dcm_match("LO", "P001", "P001"));
    cr_expect(!dcm_match("LO", "P001", "P0011"));
    cr_expect(!dcm_match("LO", "p001", "P001"), "LO is case-sensitive");
    cr_expect(!dcm_match("CS", "ct", "CT"));
    cr_expect(dcm_match("PN", "doe^john", "Doe^John"), "PN: case-insensitive");
    cr_expect(!dcm_match("LO", "P001", ""), "empty stored value matches only universal");
    cr_expect(!dcm_match("UI", "1.2.3", "1.2.3.4"));
}

Test(match, wildcards)
{
    cr_expect(dcm_match("PN", "Doe*", "Doe^John"));
    cr_expect(dcm_match("PN", "*john", "Doe^John"));
    cr_expect(dcm_match("PN", "D?e^J*n", "Doe^John"));
    cr_expect(!dcm_match("PN", "D?^*", "Doe^John"));
    cr_expect(dcm_match("LO", "A*B*C", "AxxBxxC"));
    cr_expect(!dcm_match("LO", "A*B*C", "AxxBxxD"));
    cr_expect(dcm_match("LO", "**", "anything"));
    cr_expect(dcm_match("SH", "ACC?", "ACC1"));
    cr_expect(!dcm_match("SH", "ACC?", "ACC12"));
    /* ? is one character, also a multi-byte one */
    cr_expect(dcm_match("PN", "张?", "张三"));
    cr_expect(!dcm_match("PN", "张?", "张三丰"));
    /* UI and DA do not take wildcards: '*' inside is literal, so no match */
    cr_expect_eq(dcm_match_kind("UI", "1.2.*"), DCM_MATCH_SINGLE);
    cr_expect(!dcm_match("UI", "1.2.*", "1.2.3"));
}

Test(match, pn_component_groups)
{
    const char *v = "Zhang^San=张^三=zhang^san";
    cr_expect(dcm_match("PN", "Zhang^San", v));
    cr_expect(dcm_match("PN", "张^三", v), "ideographic group");
    cr_expect(dcm_match("PN", "张*", v));
    cr_expect(dcm_match("PN", "Zhang^San=张^三=zhang^san", v), "whole value with '='");
    cr_expect(!dcm_match("PN", "Li*", v));
}

Test(match, list_of_uids_and_multivalued)
{
    cr_expect(dcm_match("UI", "1.2.3\\1.2.4\\1.2.5", "1.2.4"));
    cr_expect(!dcm_match("UI", "1.2.3\\1.2.5", "1.2.4"));
    cr_expect_eq(dcm_match_kind("UI", "1.2\\1.3"), DCM_MATCH_LIST);
    /* stored multi-valued: ModalitiesInStudy */
    cr_expect(dcm_match("CS", "MR", "CT\\MR"));
    cr_expect(!dcm_match("CS", "US", "CT\\MR"));
    cr_expect(dcm_match("CS", "US\\MR", "CT\\MR"), "any key value");
}

Test(match, date_ranges)
{
    cr_expect(dcm_match("DA", "20260101-20261231", "20261122"));
    cr_expect(dcm_match("DA", "20261122-20261122", "20261122"));
    cr_expect(!dcm_match("DA", "20260101-20261121", "20261122"));
    cr_expect(dcm_match("DA", "-20261122", "19991231"));
    cr_expect(dcm_match("DA", "20261122-", "20301231"));
    cr_expect(!dcm_match("DA", "20261123-", "20261122"));
    cr_expect(dcm_match("DA", "20261122", "20261122"));
    cr_expect(!dcm_match("DA", "20261122", "20261123"));
    cr_expect(!dcm_match("DA", "20260101-20261231", ""), "no date: no match");
    cr_expect(!dcm_match("DA", "garbage-20261231", "20261122"));
    long lo, hi;
    cr_assert_eq(dcm_date_bounds("20260101-20261231", &lo, &hi), 0);
    cr_expect_eq(lo, 20260101);
    cr_expect_eq(hi, 20261231);
    cr_assert_eq(dcm_date_bounds("-20261231", &lo, &hi), 0);
    cr_expect_eq(lo, 0);
    cr_assert_eq(dcm_date_bounds("20261122", &lo, &hi), 0);
    cr_expect_eq(lo, 20261122);
    cr_expect_eq(hi, 20261122, "single value: lo = hi");
    cr_expect_eq(dcm_date_bounds("2026-01", &lo, &hi), HR_EPARSE);
    cr_expect_eq(dcm_date_bounds("", &lo, &hi), HR_EPARSE);
}

Test(match, time_ranges_widen_incomplete_bounds)
{
    cr_expect(dcm_match("TM", "09-10", "101500"), "10 means up to 10:59:59.999999");
    cr_expect(dcm_match("TM", "0900-1000", "093000.123"));
    cr_expect(dcm_match("TM", "0900-1000", "100001"), "1000 extends to 10:00:59.999999");
    cr_expect(!dcm_match("TM", "0900-1000", "100100"));
    cr_expect(dcm_match("TM", "0900-1000", "1000"), "stored 10:00 overlaps the bound");
    cr_expect(dcm_match("TM", "-0800", "0759"));
    cr_expect(!dcm_match("TM", "0800-", "0759"));
    cr_expect(dcm_match("DT", "20261122080000-20261122090000", "20261122083000.5"));
    cr_expect(!dcm_match("DT", "20261122080000-20261122090000", "20261122093000"));
    cr_expect(dcm_match("DT", "20261122-", "20261122083000+0800"), "UTC offset ignored");
}

Test(match, pathological_wildcards_stay_linear)
{
    char v[4001];
    memset(v, 'a', 4000);
    v[4000] = '\0';
    cr_expect(!dcm_match("LO", "*a*a*a*a*a*a*a*a*a*a*b", v));
    cr_expect(dcm_match("LO", "*a*a*a*a*a*a*a*a*a*a*a", v));
}
