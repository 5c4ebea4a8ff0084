#include "common/hr_config.h"
#include "worklist/worklist.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ECG12  "1.2.840.10008.5.1.4.1.1.9.1.1"
#define ECGGEN "1.2.840.10008.5.1.4.1.1.9.1.2"
#define WSI    "1.2.840.10008.5.1.4.1.1.77.1.6"
#define CT     "1.2.840.10008.5.1.4.1.1.2"

static hr_config g_cfg;

static void load_defaults(void)
{
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &g_cfg, err, sizeof(err)), 0, "%s", err);
}

static void load_json(const char *json)
{
    char err[256];
    cr_assert_eq(hr_config_load_string(json, &g_cfg, err, sizeof(err)), 0, "%s", err);
}

static void unload(void)
{
    hr_config_free(&g_cfg);
}

static wl_arrival arrival(const char *sop_class, const char *modality, const char *procedure)
{
    wl_arrival a = {.study = "1.2.3",
                    .sop_class = sop_class,
                    .modality = modality,
                    .body_part = "",
                    .procedure = procedure,
                    .hospital = "township1",
                    .calling_ae = "TOWNSHIP1"};
    return a;
}

/* Routes a and checks rule index, center id and priority. */
static void expect_route(const wl_arrival *a, int rule, const char *center, enum hr_priority p)
{
    const hr_center *ce = NULL;
    enum hr_priority got = HR_PRIO_STAT;
    cr_expect_eq(wl_route(&g_cfg, a, &ce, &got), rule, "%s/%s/%s", a->sop_class, a->modality,
                 a->procedure);
    cr_assert_not_null(ce);
    cr_expect_str_eq(ce->id, center, "%s/%s/%s", a->sop_class, a->modality, a->procedure);
    cr_expect_eq(got, p, "%s/%s/%s: priority %d", a->sop_class, a->modality, a->procedure, got);
}

Test(route, default_rules, .init = load_defaults, .fini = unload)
{
    wl_arrival a = arrival(ECG12, "ECG", "急诊胸痛");
    expect_route(&a, 0, "ecg", HR_PRIO_STAT);
    a = arrival(ECGGEN, "ECG", "Acute CHEST PAIN, rule out MI");
    expect_route(&a, 0, "ecg", HR_PRIO_STAT);
    a = arrival(ECG12, "ECG", "");
    expect_route(&a, 1, "ecg", HR_PRIO_ROUTINE);
    a = arrival(ECG12, "ECG", "胸"); /* the whole needle must be there */
    expect_route(&a, 1, "ecg", HR_PRIO_ROUTINE);
    a = arrival(ECG12, "ECG", "chest");
    expect_route(&a, 1, "ecg", HR_PRIO_ROUTINE);
    a = arrival(WSI, "SM", "frozen section");
    expect_route(&a, 2, "pathology", HR_PRIO_ROUTINE);
    a = arrival(CT, "CT", "头颅平扫 急性卒中");
    expect_route(&a, 3, "imaging", HR_PRIO_STAT);
    a = arrival(CT, "ct", "Stroke protocol");
    expect_route(&a, 3, "imaging", HR_PRIO_STAT);
    a = arrival(CT, "CT", "chest pain"); /* chest pain on CT is not the ECG rule */
    expect_route(&a, -1, "imaging", HR_PRIO_ROUTINE);
    a = arrival(CT, "DX", "stroke"); /* stroke rule is for CT and MR */
    expect_route(&a, -1, "imaging", HR_PRIO_ROUTINE);
    a = arrival("", "", "");
    expect_route(&a, -1, "imaging", HR_PRIO_ROUTINE);
}

static const char k_custom[] =
    "{\"centers\": [{\"id\": \"imaging\", \"kind\": \"imaging\", \"hospital\": \"county\"},"
    "  {\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"county\"},"
    "  {\"id\": \"lab\", \"kind\": \"lab\", \"hospital\": \"county\"}],"
    " \"routing\": {\"rules\": ["
    "  {\"modalities\": [\"DX\"], \"body_parts\": [\"CHEST\"], \"hospitals\": [\"township2\"],"
    "   \"calling_aes\": [\"TOWNSHIP2\"], \"center\": \"lab\", \"priority\": \"urgent\"},"
    "  {\"calling_aes\": [\"TOWNSHIP1\"], \"center\": \"ecg\", \"priority\": \"stat\"}],"
    "  \"default\": {\"center\": \"imaging\", \"priority\": \"urgent\"}}}";

Test(route, every_present_list_must_match)
{
    load_json(k_custom);
    wl_arrival a = {.study = "1.2",
                    .sop_class = CT,
                    .modality = "dx",
                    .body_part = "chest",
                    .procedure = "",
                    .hospital = "township2",
                    .calling_ae = "TOWNSHIP2"};
    expect_route(&a, 0, "lab", HR_PRIO_URGENT);
    a.body_part = "";
    expect_route(&a, -1, "imaging", HR_PRIO_URGENT); /* absent value never matches a list */
    a.body_part = "CHEST";
    a.hospital = "township1";
    expect_route(&a, -1, "imaging", HR_PRIO_URGENT);
    a.hospital = "township2";
    a.calling_ae = "township2"; /* AE titles are case-sensitive */
    expect_route(&a, -1, "imaging", HR_PRIO_URGENT);
    a.calling_ae = "TOWNSHIP1";
    expect_route(&a, 1, "ecg", HR_PRIO_STAT);
    a.calling_ae = NULL; /* STOW: no calling AE */
    a.modality = NULL;
    expect_route(&a, -1, "imaging", HR_PRIO_URGENT);
    unload();
}

Test(route, quiet_and_turnaround, .init = load_defaults, .fini = unload)
{
    cr_expect_eq(wl_quiet_ms(&g_cfg, "ECG"), 5000);
    cr_expect_eq(wl_quiet_ms(&g_cfg, "ecg"), 5000);
    cr_expect_eq(wl_quiet_ms(&g_cfg, "CT"), 30000);
    cr_expect_eq(wl_quiet_ms(&g_cfg, ""), 30000);
    cr_expect_eq(wl_quiet_ms(&g_cfg, NULL), 30000);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_ECG, HR_PRIO_STAT), 10 * 60000LL);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_IMAGING, HR_PRIO_ROUTINE), 1440 * 60000LL);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_PATHOLOGY, HR_PRIO_ROUTINE), 4320 * 60000LL);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_LAB, HR_PRIO_URGENT), 120 * 60000LL);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, (enum hr_center_kind)7, HR_PRIO_STAT), 0);
}

/* worklist.turnaround_unit_s (tests) shortens the minute of turnaround_min */
Test(route, turnaround_unit)
{
    load_json("{\"worklist\": {\"turnaround_unit_s\": 2, \"turnaround_min\": {\"ecg\": "
              "{\"stat\": 3}}}}");
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_ECG, HR_PRIO_STAT), 6000LL);
    cr_expect_eq(wl_turnaround_ms(&g_cfg, HR_CENTER_IMAGING, HR_PRIO_ROUTINE), 1440 * 2000LL);
    unload();
}

/* 2030-01-02 (UTC) at hh:mm:ss.123 */
static long long at(int hh, int mm, int ss)
{
    return (1893542400LL + hh * 3600 + mm * 60 + ss) * 1000 + 123;
}

Test(route, due_time_respects_opening_hours)
{
    setenv("TZ", "UTC", 1);
    tzset();
    load_json("{\"centers\": [{\"id\": \"imaging\", \"kind\": \"imaging\", \"hospital\": "
              "\"county\", \"hours\": \"08:00-18:00\"},"
              " {\"id\": \"ecg\", \"kind\": \"ecg\", \"hospital\": \"county\", \"hours\": "
              "\"20:00-08:00\"},"
              " {\"id\": \"lab\", \"kind\": \"lab\", \"hospital\": \"county\"}],"
              " \"routing\": {\"rules\": []}}");
    const hr_center *day = hr_config_center(&g_cfg, "imaging");
    const hr_center *night = hr_config_center(&g_cfg, "ecg");
    const hr_center *always = hr_config_center(&g_cfg, "lab");
    long long day_routine = 1440 * 60000LL, day_stat = 30 * 60000LL;
    /* closed before opening: the clock starts at 08:00 */
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_ROUTINE, at(7, 10, 5)),
                 at(8, 0, 0) - 123 + day_routine);
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_URGENT, at(7, 10, 5)),
                 at(8, 0, 0) - 123 + 120 * 60000LL);
    /* stat ignores hours */
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_STAT, at(7, 10, 5)), at(7, 10, 5) + day_stat);
    /* open */
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_ROUTINE, at(8, 0, 0)), at(8, 0, 0) + day_routine);
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_ROUTINE, at(17, 59, 59)),
                 at(17, 59, 59) + day_routine);
    /* closed after closing: next day's opening */
    cr_expect_eq(wl_due_ms(&g_cfg, day, HR_PRIO_ROUTINE, at(18, 0, 0)),
                 at(8, 0, 0) - 123 + 86400000LL + day_routine);
    /* overnight center */
    long long ecg_routine = 240 * 60000LL;
    cr_expect_eq(wl_due_ms(&g_cfg, night, HR_PRIO_ROUTINE, at(2, 0, 0)), at(2, 0, 0) + ecg_routine);
    cr_expect_eq(wl_due_ms(&g_cfg, night, HR_PRIO_ROUTINE, at(21, 0, 0)),
                 at(21, 0, 0) + ecg_routine);
    cr_expect_eq(wl_due_ms(&g_cfg, night, HR_PRIO_ROUTINE, at(12, 30, 0)),
                 at(20, 0, 0) - 123 + ecg_routine);
    cr_expect_eq(wl_due_ms(&g_cfg, always, HR_PRIO_ROUTINE, at(3, 0, 0)),
                 at(3, 0, 0) + 720 * 60000LL);
    unload();
}

Test(route, names)
{
    for (int s = 0; s < WL_STATE_COUNT; s++)
        cr_expect_eq(wl_state_parse(wl_state_name((enum wl_state)s)), s);
    cr_expect_str_eq(wl_state_name(WL_CLAIMED), "claimed");
    cr_expect_str_eq(wl_state_name(WL_STATE_COUNT), "?");
    cr_expect_eq(wl_state_parse("done"), -1);
    cr_expect_eq(wl_state_parse(NULL), -1);
    for (int p = 0; p < HR_PRIORITIES; p++)
        cr_expect_eq(wl_priority_parse(wl_priority_name((enum hr_priority)p)), p);
    cr_expect_str_eq(wl_priority_name(HR_PRIO_STAT), "stat");
    cr_expect_eq(wl_priority_parse("STAT"), -1);
}
