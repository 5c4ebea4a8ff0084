/* reports/recognition.c and rec_config.c: the catalogue and its errors,
 * days, the rules with fixed days (validity, QC, status, supersession),
 * the payload entries a reader's choice becomes, grants against the access
 * rule, and the day counters and their grouping, on a real redis-server. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/recognition.h"
#include "storage/access.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

/* QC: the imaging center passed for CT-HEAD only, 2024; ecg for everything
 * in the first half of 2024. */
static const char k_cfg[] =
    "{\"recognition\": {\"grant_seconds\": 1, \"qc\": ["
    "  {\"center\": \"imaging\", \"items\": [\"CT-HEAD\"], \"passed_from\": \"2024-01-01\","
    "   \"passed_to\": \"2024-12-31\"},"
    "  {\"center\": \"ecg\", \"items\": \"*\", \"passed_from\": \"2024-01-01\","
    "   \"passed_to\": \"2024-06-30\"}]}}";

static void setup_cfg(void)
{
    char err[512];
    cr_assert_eq(hr_config_load_string(k_cfg, &cfg, err, sizeof(err)), 0, "%s", err);
}

static void setup(void)
{
    setup_cfg();
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    rc_ = ts_redis_connect(redis.sock, 10000);
    cr_assert(rc_);
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

static void teardown_cfg(void)
{
    hr_config_free(&cfg);
}

/* ms of local noon of a day. */
static long long noon_ms(int day)
{
    struct tm tm = {0};
    tm.tm_year = day / 10000 - 1900;
    tm.tm_mon = day / 100 % 100 - 1;
    tm.tm_mday = day % 100;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    return (long long)mktime(&tm) * 1000;
}

Test(recognition, default_catalogue_is_harmless)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load_string("{}", &c, err, sizeof(err)), 0, "%s", err);
    const rec_config *rc = c.recognition;
    cr_expect_eq(rc->n_items, 9, "3 imaging/ECG items and 6 lab items (decision 0041)");
    const rec_item *k = rec_item_by_test(&c, "2823-3"), *g = rec_item_by_test(&c, "GLU");
    const rec_item *a1c = rec_item_by_test(&c, "4548-4");
    cr_expect(k && k->validity_days == 7 && rec_item_by_test(&c, "K") == k);
    cr_expect(g && g->validity_days == 30);
    cr_expect(a1c && a1c->validity_days == 60);
    cr_expect_null(rec_item_by_test(&c, "36554-4"), "imaging items have no tests");
    cr_expect_eq(rc->n_qc, 0, "no center passed QC: nothing recognizable by default");
    cr_expect_eq(rc->grant_hours, 24);
    cr_expect_eq(rc->lookup_studies, 200);
    for (size_t i = 0; i < rc->n_items; i++)
        cr_expect_str_eq(rc->items[i].hr_mark, "示例HR", "an example mark, no province's");
    const rec_item *ecg = rec_item_find(&c, "ECG-12");
    cr_assert(ecg);
    cr_expect_eq(ecg->price_fen, 2500);
    cr_expect_eq(ecg->category, HR_CENTER_ECG);
    cr_expect_str_eq(ecg->loinc, "11524-6");
    cr_expect_eq(rec_item_find(&c, "XR-CHEST-PA")->price_fen, 6000);
    cr_expect_eq(rec_grant_ms(&c), 24LL * 3600 * 1000);
    cr_expect_eq(rec_judge(&c, RPT_FINAL, "CT-HEAD", "2999-01-01", "imaging", 20240101),
                 REC_QC_LAPSED);
    cr_expect_eq(rec_today(&c, noon_ms(20240709)), 20240709);
    hr_config_free(&c);
    /* tests judge later days */
    cr_assert_eq(
        hr_config_load_string("{\"recognition\": {\"days_ahead\": 40}}", &c, err, sizeof(err)), 0,
        "%s", err);
    cr_expect_eq(rec_today(&c, noon_ms(20240709)), 20240818);
    hr_config_free(&c);
}

Test(recognition, config_errors)
{
    hr_config c;
    char err[512];
    const char *items = "{\"recognition\": {\"items\": [{\"code\": \"A\", \"name\": \"a\", "
                        "\"category\": \"imaging\", \"validity_days\": 1, \"hr_mark\": \"HR\"";
    char json[1024];
    const char *bad[][2] = {
        {", \"price_yuan\": 1.5}]}}", "price_yuan: an integer number of yuan"},
        {", \"price_yuan\": \"1.555\"}]}}", "price_yuan"},
        {", \"price_yuan\": \"1.\"}]}}", "price_yuan"},
        {", \"price_yuan\": -1}]}}", "price_yuan: must be"},
        {", \"loinc\": \"30799\"}]}}", "loinc: \"30799\" is not a LOINC code"},
        {", \"scope\": \"county\"}]}}", "scope"},
        {", \"match\": {\"modalities\": []}}]}}", "match.modalities: must be a non-empty array"},
        {", \"match\": {\"sex\": [\"F\"]}}]}}", "match.sex: unknown key"},
        {"}, {\"code\": \"A\", \"name\": \"b\", \"category\": \"lab\", \"validity_days\": 7, "
         "\"hr_mark\": \"HR\"}]}}",
         "items[1].code: \"A\" is used twice"},
        {"}], \"qc\": [{\"center\": \"imaging\", \"items\": [\"B\"], \"passed_from\": "
         "\"2024-01-01\", \"passed_to\": \"2024-12-31\"}]}}",
         "qc[0].items[0]: \"B\" is not one of recognition.items[].code"},
        {"}], \"qc\": [{\"center\": \"x-ray\", \"items\": \"*\", \"passed_from\": "
         "\"2024-01-01\", \"passed_to\": \"2024-12-31\"}]}}",
         "qc[0].center: \"x-ray\" is not one of centers[].id"},
        {"}], \"qc\": [{\"center\": \"imaging\", \"items\": \"*\", \"passed_from\": "
         "\"2024-12-01\", \"passed_to\": \"2024-01-31\"}]}}",
         "qc[0].passed_to: 2024-01-31 is before passed_from"},
        {"}], \"qc\": [{\"center\": \"imaging\", \"items\": \"*\", \"passed_from\": "
         "\"2024/01/01\", \"passed_to\": \"2024-01-31\"}]}}",
         "qc[0].passed_from: \"2024/01/01\" is not a date"},
        {"}], \"grant_hours\": 0}}", "recognition.grant_hours"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "%s%s", items, bad[i][0]);
        err[0] = '\0';
        cr_expect_eq(hr_config_load_string(json, &c, err, sizeof(err)), HR_ECONFIG, "%s", json);
        cr_expect(strstr(err, bad[i][1]) != NULL, "\"%s\" lacks \"%s\"", err, bad[i][1]);
    }
    const char *miss = "{\"recognition\": {\"items\": [{\"code\": \"A b\", \"name\": \"a\", "
                       "\"category\": \"imaging\", \"validity_days\": 1, \"hr_mark\": \"HR\"}]}}";
    cr_expect_eq(hr_config_load_string(miss, &c, err, sizeof(err)), HR_ECONFIG);
    cr_expect(strstr(err, "items[0].code") != NULL, "%s", err);
    snprintf(json, sizeof(json), "%s, \"price_yuan\": \"12.5\"}]}}", items);
    cr_assert_eq(hr_config_load_string(json, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.recognition->items[0].price_fen, 1250);
    cr_expect_eq(c.recognition->n_items, 1, "the file's catalogue replaces the default");
    hr_config_free(&c);
}

Test(recognition, days)
{
    char iso[11];
    cr_expect_eq(rec_day_add(20240228, 1), 20240229);
    cr_expect_eq(rec_day_add(20230228, 1), 20230301);
    cr_expect_eq(rec_day_add(20241231, 1), 20250101);
    cr_expect_eq(rec_day_add(20240301, -1), 20240229);
    cr_expect_eq(rec_day_add(20240115, 30), 20240214);
    cr_expect_eq(rec_day_add(20240230, 1), 0);
    cr_expect_eq(rec_day_parse("2024-02-29"), 20240229);
    cr_expect_eq(rec_day_parse("2023-02-29"), 0);
    cr_expect_eq(rec_day_parse("2024-2-29"), 0);
    cr_expect_eq(rec_day_parse("2024-02-29T"), 0);
    cr_expect_eq(rec_day_parse(NULL), 0);
    rec_day_iso(20240709, iso);
    cr_expect_str_eq(iso, "2024-07-09");
    cr_expect_eq(rec_day_of(noon_ms(20240709)), 20240709);
}

Test(recognition, rules_with_fixed_days, .init = setup_cfg, .fini = teardown_cfg)
{
    /* valid until 2024-03-31; QC of imaging covers CT-HEAD in 2024 only */
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "CT-HEAD", "2024-03-31", "imaging", 20240331),
                 REC_RECOGNIZABLE, "the last day of validity counts");
    cr_expect_eq(rec_judge(&cfg, RPT_AMENDED, "CT-HEAD", "2024-03-31", "imaging", 20240301),
                 REC_RECOGNIZABLE);
    cr_expect_eq(rec_judge(&cfg, RPT_CORRECTED, "CT-HEAD", "2024-03-31", "imaging", 20240301),
                 REC_RECOGNIZABLE);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "CT-HEAD", "2024-03-31", "imaging", 20240401),
                 REC_EXPIRED);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "CT-HEAD", "garbage", "imaging", 20240301),
                 REC_EXPIRED);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "XR-CHEST-PA", "2024-03-31", "imaging", 20240301),
                 REC_QC_LAPSED, "imaging's QC lists CT-HEAD only");
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "CT-HEAD", "2025-03-31", "imaging", 20250101),
                 REC_QC_LAPSED, "QC of 2024 over");
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "ECG-12", "2024-07-05", "ecg", 20240630),
                 REC_RECOGNIZABLE);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "ECG-12", "2024-07-05", "ecg", 20240701),
                 REC_QC_LAPSED);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "ECG-12", "2024-07-05", "imaging", 20240601),
                 REC_QC_LAPSED, "QC is the issuing center's");
    cr_expect_eq(rec_judge(&cfg, RPT_PRELIMINARY, "CT-HEAD", "2024-03-31", "imaging", 20240301),
                 REC_PRELIMINARY);
    cr_expect_eq(
        rec_judge(&cfg, RPT_ENTERED_IN_ERROR, "CT-HEAD", "2024-03-31", "imaging", 20240301),
        REC_ENTERED_IN_ERROR);
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "MR-KNEE", "2024-03-31", "imaging", 20240301),
                 REC_NOT_IN_CATALOGUE);
    /* expiry is judged before QC */
    cr_expect_eq(rec_judge(&cfg, RPT_FINAL, "CT-HEAD", "2024-12-31", "imaging", 20250102),
                 REC_EXPIRED);
}

Test(recognition, fill_entries, .init = setup_cfg, .fini = teardown_cfg)
{
    char why[256];
    json_t *items = json_pack("[s, {s:s}]", "CT-HEAD", "item", "XR-CHEST-PA");
    cr_assert_eq(rec_fill(&cfg, "imaging", items, noon_ms(20240115), why, sizeof(why)), 0, "%s",
                 why);
    json_t *e = json_array_get(items, 0);
    cr_expect_str_eq(json_string_value(json_object_get(e, "item")), "CT-HEAD");
    cr_expect_str_eq(json_string_value(json_object_get(e, "name")), "头颅CT平扫");
    cr_expect_str_eq(json_string_value(json_object_get(e, "hr_mark")), "示例HR");
    cr_expect_str_eq(json_string_value(json_object_get(e, "scope")), "community");
    cr_expect_str_eq(json_string_value(json_object_get(e, "valid_until")), "2024-02-14");
    cr_expect_eq(json_object_size(e), 5, "exactly the fields of decision 0022");
    json_decref(items);
    /* an ECG item on an imaging report, an unknown code, a code twice: nothing replaced */
    items = json_pack("[s, s]", "CT-HEAD", "ECG-12");
    cr_expect_eq(rec_fill(&cfg, "imaging", items, noon_ms(20240115), why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "\"ECG-12\" is a ecg item; center \"imaging\" reads imaging") != NULL,
              "%s", why);
    cr_expect(json_is_string(json_array_get(items, 0)), "untouched on error");
    cr_expect_eq(rpt_fill_recognition(&cfg, items, noon_ms(20240115)), 0,
                 "the contract's form checks no center");
    json_decref(items);
    items = json_pack("[s]", "NOPE");
    cr_expect_eq(rpt_fill_recognition(&cfg, items, 0), -EINVAL);
    json_decref(items);
    items = json_pack("[s, s]", "CT-HEAD", "CT-HEAD");
    cr_expect_eq(rec_fill(&cfg, NULL, items, 0, why, sizeof(why)), -EINVAL);
    json_decref(items);
    items = json_pack("{}");
    cr_expect_eq(rec_fill(&cfg, NULL, items, 0, why, sizeof(why)), -EINVAL);
    json_decref(items);
    items = json_pack("[i]", 5);
    cr_expect_eq(rec_fill(&cfg, NULL, items, 0, why, sizeof(why)), -EINVAL);
    json_decref(items);
    items = json_array();
    cr_expect_eq(rec_fill(&cfg, "nowhere", items, 0, why, sizeof(why)), -EINVAL);
    cr_expect_eq(rec_fill(&cfg, "ecg", items, 0, why, sizeof(why)), 0, "no items is fine");
    json_decref(items);
}

Test(recognition, item_match, .init = setup_cfg, .fini = teardown_cfg)
{
    const rec_item *xr = rec_item_find(&cfg, "XR-CHEST-PA");
    const rec_item *ecg = rec_item_find(&cfg, "ECG-12");
    rec_exam dx = {.modality = "DX", .body_part = "chest"};
    rec_exam ct = {.modality = "CT", .body_part = "CHEST"};
    rec_exam none = {.modality = "DX"};
    rec_exam e = {.modality = "ecg"};
    cr_expect(rec_item_matches(xr, &dx));
    cr_expect_not(rec_item_matches(xr, &ct));
    cr_expect_not(rec_item_matches(xr, &none), "an absent body part matches no list");
    cr_expect(rec_item_matches(ecg, &e));
}

Test(recognition, result_ids)
{
    char report[RPT_ID_MAX], study[HR_UID_MAX], item[REC_CODE_MAX];
    cr_assert_eq(rec_result_parse("r2-1.2.840.99.1~CT-HEAD", report, study, item), 0);
    cr_expect_str_eq(report, "r2-1.2.840.99.1");
    cr_expect_str_eq(study, "1.2.840.99.1");
    cr_expect_str_eq(item, "CT-HEAD");
    /* a lab result: the lab report's UID, no report */
    cr_assert_eq(rec_result_parse("2.25.1234~LAB-K", report, study, item), 0);
    cr_expect_str_eq(report, "");
    cr_expect_str_eq(study, "2.25.1234");
    cr_expect_str_eq(item, "LAB-K");
    const char *bad[] = {"2.25.1234~", "2.25..1~LAB-K", "2.025~LAB-K",  "0.1~LAB-K",
                         "2.25.~A",    "2.25.1x~A",     "~LAB-K",       "2.25.1~A B",
                         "r2-1.2.3",   "r2-1.2.3~",     "r0-1.2.3~A",   "r-1.2.3~A",
                         "x2-1.2.3~A", "r2-1..2~A",     "r2-1.02~A",    "r2-1.2.3.~A",
                         "r2~A",       "r2-1.2.3~A B",  "r2-1.2.3~A/B", "",
                         "r2-1.2.3x~A"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(rec_result_parse(bad[i], report, study, item), -EINVAL, "%s", bad[i]);
}

/* A payload of decision 0022 with the recognition entries given. */
static json_t *payload(const char *study, const char *center, json_t *entries)
{
    return json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:o, s:[{s:s, s:s}], s:s}",
                     "typ", "huren-report", "schema", 1, "exam", "study_uid", study, "center",
                     center, "hospital", "township1", "hospital_name", "Township 1", "modality",
                     "CT", "study_date", "20240110", "recognition", entries, "signers", "user",
                     "reader1", "role", "reader", "signed_at", "2024-01-15T04:00:00.000Z");
}

static json_t *entry(const char *item, const char *until)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "item", item, "name", item, "hr_mark", "鄂HR",
                     "scope", "community", "valid_until", until);
}

static const char *reason_of(json_t *a, size_t i)
{
    return json_string_value(json_object_get(json_array_get(a, i), "reason"));
}

Test(recognition, report_results, .init = setup_cfg, .fini = teardown_cfg)
{
    json_t *ok = json_array(), *not_ok = json_array();
    json_t *v1 = payload(
        "1.2.5", "imaging",
        json_pack("[o, o]", entry("CT-HEAD", "2024-02-14"), entry("XR-CHEST-PA", "2024-02-14")));
    /* final: CT-HEAD recognizable, XR-CHEST-PA not (imaging's QC) */
    cr_assert_eq(rec_report_results(&cfg, "r1-1.2.5", 2, RPT_FINAL, v1, RPT_DRAFT, NULL, 20240201,
                                    "http://hub", ok, not_ok),
                 0);
    cr_assert_eq(json_array_size(ok), 1);
    json_t *r = json_array_get(ok, 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "result")), "r1-1.2.5~CT-HEAD");
    cr_expect_str_eq(json_string_value(json_object_get(r, "hr_mark")), "鄂HR");
    cr_expect_str_eq(json_string_value(json_object_get(r, "category")), "imaging");
    cr_expect_str_eq(json_string_value(json_object_get(r, "issuing_hospital")), "county");
    cr_expect_str_eq(json_string_value(json_object_get(r, "source_hospital")), "township1");
    cr_expect_str_eq(json_string_value(json_object_get(r, "study")), "1.2.5");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "links"), "jws")),
                     "http://hub/api/v1/reports/r1-1.2.5/versions/2/jws");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "links"), "study")),
                     "http://hub/dicomweb/studies/1.2.5");
    cr_expect_null(json_object_get(r, "reason"));
    cr_assert_eq(json_array_size(not_ok), 1);
    cr_expect_str_eq(reason_of(not_ok, 0), "qc_lapsed");
    json_array_clear(ok);
    json_array_clear(not_ok);
    /* past its validity */
    rec_report_results(&cfg, "r1-1.2.5", 2, RPT_FINAL, v1, RPT_DRAFT, NULL, 20240215, "", ok,
                       not_ok);
    cr_expect_eq(json_array_size(ok), 0);
    cr_expect_str_eq(reason_of(not_ok, 0), "expired");
    json_array_clear(not_ok);
    /* preliminary (awaiting the auditor) */
    rec_report_results(&cfg, "r1-1.2.5", 1, RPT_PRELIMINARY, v1, RPT_DRAFT, NULL, 20240201, "", ok,
                       not_ok);
    cr_expect_eq(json_array_size(ok), 0);
    cr_expect_str_eq(reason_of(not_ok, 0), "preliminary");
    json_array_clear(not_ok);
    /* amended v3 drops XR-CHEST-PA: v2's result is superseded, CT-HEAD goes on */
    json_t *v3 = payload("1.2.5", "imaging", json_pack("[o]", entry("CT-HEAD", "2024-02-20")));
    rec_report_results(&cfg, "r1-1.2.5", 3, RPT_AMENDED, v3, RPT_FINAL, v1, 20240201, "", ok,
                       not_ok);
    cr_assert_eq(json_array_size(ok), 1);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(ok, 0), "version")), 3);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(ok, 0), "valid_until")),
                     "2024-02-20");
    cr_assert_eq(json_array_size(not_ok), 1);
    cr_expect_str_eq(reason_of(not_ok, 0), "superseded");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(not_ok, 0), "version")), 2);
    json_array_clear(ok);
    json_array_clear(not_ok);
    /* retracted without repeating the items: the retracted version's items */
    json_t *v4 = payload("1.2.5", "imaging", json_array());
    rec_report_results(&cfg, "r1-1.2.5", 4, RPT_ENTERED_IN_ERROR, v4, RPT_AMENDED, v3, 20240201, "",
                       ok, not_ok);
    cr_expect_eq(json_array_size(ok), 0);
    cr_assert_eq(json_array_size(not_ok), 1);
    cr_expect_str_eq(reason_of(not_ok, 0), "entered-in-error");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(not_ok, 0), "status")),
                     "entered-in-error");
    json_array_clear(not_ok);
    /* an entry that is not an item code is skipped, not echoed */
    json_t *vbad = payload("1.2.5", "imaging", json_pack("[{s:s}, i]", "item", "<script>", 3));
    rec_report_results(&cfg, "r1-1.2.5", 1, RPT_FINAL, vbad, RPT_DRAFT, NULL, 20240201, "", ok,
                       not_ok);
    cr_expect_eq(json_array_size(ok) + json_array_size(not_ok), 0);
    json_decref(v1);
    json_decref(v3);
    json_decref(v4);
    json_decref(vbad);
    json_decref(ok);
    json_decref(not_ok);
}

/* A grant opens the study to the user through the access rule, to no one
 * else, and not after it expires (grant_seconds 1). */
Test(recognition, grants_and_access, .init = setup, .fini = teardown)
{
    const char *person = "p0123456789abcdef01234567";
    sto_scope ext, other, reader;
    sto_scope_for(&cfg, STO_ROLE_EXTERNAL, "township2", NULL, &ext);
    sto_scope_grant_user(&ext, "dr.b");
    sto_scope_for(&cfg, STO_ROLE_EXTERNAL, "township2", NULL, &other);
    sto_scope_grant_user(&other, "dr.c");
    sto_scope_for(&cfg, STO_ROLE_READER, "county", "imaging", &reader);
    cr_expect_eq(sto_scope_allows_study(rc_, &ext, "1.2.7", "township1"), 0);
    cr_assert_eq(rec_grant(rc_, &cfg, "dr.b", person, "1.2.7", 1000), 0);
    cr_expect_eq(sto_scope_allows_study(rc_, &ext, "1.2.7", "township1"), 1);
    cr_expect_eq(sto_scope_allows_study(rc_, &ext, "1.2.8", "township1"), 0, "that study only");
    cr_expect_eq(sto_scope_allows_study(rc_, &other, "1.2.7", "township1"), 0, "that user only");
    cr_expect_eq(sto_scope_allows_study(rc_, &reader, "1.2.7", "township1"), 0);
    char got[RPT_PERSON_ID_LEN + 1];
    cr_assert_eq(rec_grant_get(rc_, "dr.b", "1.2.7", got), 0);
    cr_expect_str_eq(got, person);
    cr_expect_eq(rec_looked_up(rc_, "dr.b", person), 1);
    cr_expect_eq(rec_looked_up(rc_, "dr.c", person), 0);
    cr_expect_eq(rec_grant_get(rc_, "dr.c", "1.2.7", got), HR_ENOTFOUND);
    usleep(1300 * 1000);
    cr_expect_eq(sto_scope_allows_study(rc_, &ext, "1.2.7", "township1"), 0, "expired");
    cr_expect_eq(rec_grant_get(rc_, "dr.b", "1.2.7", got), HR_ENOTFOUND);
    cr_expect_eq(rec_looked_up(rc_, "dr.b", person), 0);
    cr_expect_eq(rec_grant(rc_, &cfg, "dr.b", "not-a-person", "1.2.7", 1000), -EINVAL);
}

Test(recognition, grants_per_user_bounded, .init = setup, .fini = teardown)
{
    const char *person = "p0123456789abcdef01234567";
    char study[32];
    for (int i = 0; i < REC_GRANTS_PER_USER + 20; i++) {
        snprintf(study, sizeof(study), "1.2.%d", i + 1);
        cr_assert_eq(rec_grant(rc_, &cfg, "dr.b", person, study, 1000 + i), 0);
    }
    redisReply *r = redisCommand(rc_, "ZCARD hr:grants:dr.b");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    cr_expect_eq(r->integer, REC_GRANTS_PER_USER);
    freeReplyObject(r);
}

static json_t *grp(json_t *doc, const char *key)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(doc, "groups"), i, g)
    {
        if (strcmp(json_string_value(json_object_get(g, "key")), key) == 0)
            return g;
    }
    return NULL;
}

static long long num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

Test(recognition, statistics, .init = setup, .fini = teardown)
{
    long long jan = noon_ms(20240131), feb = noon_ms(20240201);
    json_t *shown =
        json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "item", "CT-HEAD", "center", "imaging",
                  "item", "CT-HEAD", "center", "imaging", "item", "ECG-12", "center", "ecg");
    cr_assert_eq(rec_stats_lookup(rc_, "township2", shown, jan), 0);
    cr_assert_eq(rec_stats_lookup(rc_, "township2", shown, feb), 0);
    json_t *empty = json_array();
    cr_assert_eq(rec_stats_lookup(rc_, "county", empty, feb), 0);
    cr_assert_eq(rec_stats_decision(rc_, &cfg, "CT-HEAD", "imaging", "township2", 1, -1, jan), 0);
    cr_assert_eq(rec_stats_decision(rc_, &cfg, "CT-HEAD", "imaging", "township2", 1, -1, feb), 0);
    cr_assert_eq(rec_stats_decision(rc_, &cfg, "ECG-12", "ecg", "county", 0, REC_REJ_TOO_OLD, feb),
                 0);
    cr_assert_eq(rec_stats_decision(rc_, &cfg, "CT-HEAD", "imaging", "county", 0,
                                    REC_REJ_CONDITION_CHANGED, feb),
                 0);
    json_t *doc = NULL;
    /* totals over both months */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240101, 20240229, REC_GROUP_NONE, &doc), 0);
    json_t *t = json_object_get(doc, "total");
    cr_expect_eq(num(t, "lookups"), 3);
    cr_expect_eq(num(t, "accepts"), 2);
    cr_expect_eq(num(t, "rejections"), 2);
    cr_expect_eq(num(json_object_get(t, "rejections_by_reason"), "too_old"), 1);
    cr_expect_eq(num(json_object_get(t, "rejections_by_reason"), "condition_changed"), 1);
    cr_expect_eq(num(t, "cost_avoided_fen"), 40000, "2 x CT-HEAD at 200 yuan");
    cr_expect_str_eq(json_string_value(json_object_get(t, "cost_avoided_yuan")), "400.00");
    cr_expect_float_eq(json_real_value(json_object_get(t, "recognition_rate")), 0.5, 1e-9);
    cr_expect_eq(json_array_size(json_object_get(doc, "groups")), 0);
    json_decref(doc);
    /* by item: lookups count each lookup once per item */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240101, 20240229, REC_GROUP_ITEM, &doc), 0);
    json_t *ct = grp(doc, "CT-HEAD"), *ecg = grp(doc, "ECG-12");
    cr_assert(ct && ecg);
    cr_expect_eq(num(ct, "lookups"), 2);
    cr_expect_eq(num(ct, "accepts"), 2);
    cr_expect_eq(num(ct, "rejections"), 1);
    cr_expect_str_eq(json_string_value(json_object_get(ct, "name")), "头颅CT平扫");
    cr_expect_eq(num(ecg, "accepts"), 0);
    cr_expect_eq(num(json_object_get(ecg, "rejections_by_reason"), "too_old"), 1);
    cr_expect_float_eq(json_real_value(json_object_get(ecg, "recognition_rate")), 0.0, 1e-9);
    json_decref(doc);
    /* by hospital of the caller */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240101, 20240229, REC_GROUP_HOSPITAL, &doc), 0);
    cr_expect_eq(num(grp(doc, "township2"), "lookups"), 2);
    cr_expect_eq(num(grp(doc, "township2"), "accepts"), 2);
    cr_expect_eq(num(grp(doc, "county"), "lookups"), 1);
    cr_expect_eq(num(grp(doc, "county"), "rejections"), 2);
    json_decref(doc);
    /* by center */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240101, 20240229, REC_GROUP_CENTER, &doc), 0);
    cr_expect_eq(num(grp(doc, "imaging"), "cost_avoided_fen"), 40000);
    cr_expect(json_is_null(json_object_get(grp(doc, "ecg"), "recognition_rate")) == 0);
    json_decref(doc);
    /* by month, in order */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240101, 20240229, REC_GROUP_MONTH, &doc), 0);
    json_t *groups = json_object_get(doc, "groups");
    cr_assert_eq(json_array_size(groups), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(groups, 0), "key")),
                     "2024-01");
    cr_expect_eq(num(grp(doc, "2024-01"), "accepts"), 1);
    cr_expect_eq(num(grp(doc, "2024-02"), "lookups"), 2);
    cr_expect_eq(num(grp(doc, "2024-02"), "rejections"), 2);
    json_decref(doc);
    /* only the days asked */
    cr_assert_eq(rec_stats(rc_, &cfg, 20240201, 20240201, REC_GROUP_NONE, &doc), 0);
    cr_expect_eq(num(json_object_get(doc, "total"), "accepts"), 1);
    json_decref(doc);
    cr_assert_eq(rec_stats(rc_, &cfg, 20230101, 20230105, REC_GROUP_NONE, &doc), 0);
    cr_expect(json_is_null(json_object_get(json_object_get(doc, "total"), "recognition_rate")));
    json_decref(doc);
    /* bounds */
    cr_expect_eq(rec_stats(rc_, &cfg, 20240101, 20250101, REC_GROUP_NONE, &doc), -EINVAL,
                 "367 days");
    cr_expect_eq(rec_stats(rc_, &cfg, 20240101, 20241231, REC_GROUP_NONE, &doc), 0, "366 days");
    json_decref(doc);
    cr_expect_eq(rec_stats(rc_, &cfg, 20240201, 20240101, REC_GROUP_NONE, &doc), -EINVAL);
    json_decref(shown);
    json_decref(empty);
}
