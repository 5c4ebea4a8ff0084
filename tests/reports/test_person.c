/* reports/person.c: ID numbers (GB 11643 check character), the keyed hash
 * against openssl's, the key file, and links against a real redis-server. */
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/person.h"
#include "storage/keys.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NID_A "11010519491231002X" /* the GB 11643 example */
#define NID_B "440304199001010011"
#define NID_C "420102198506120038"

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

static void key_0_31(pix_config *p)
{
    for (int i = 0; i < PIX_KEY_LEN; i++)
        p->key[i] = (unsigned char)i;
    p->have_key = 1;
}

static void setup(void)
{
    char err[256];
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    rc_ = ts_redis_connect(redis.sock, 10000);
    cr_assert(rc_);
    cr_assert_eq(
        hr_config_load_string("{\"persons\": {\"sources\": ["
                              " {\"hospital\": \"township1\", \"where\": \"patient_id\"},"
                              " {\"hospital\": \"township2\", \"where\": \"other_patient_ids\","
                              "  \"issuer\": \"CN-NID\", \"id_type\": \"national_id\"},"
                              " {\"hospital\": \"township2\", \"where\": \"other_patient_ids\","
                              "  \"issuer\": \"HC\", \"id_type\": \"health_card\"}]}}",
                              &cfg, err, sizeof(err)),
        0, "%s", err);
    key_0_31(cfg.persons);
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

static void cmd(const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(rc_, fmt, a, b);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s", fmt);
    freeReplyObject(r);
}

static long long zcard(const char *key)
{
    redisReply *r = redisCommand(rc_, "ZCARD %s", key);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

Test(person, national_id_check_character)
{
    cr_expect(rpt_national_id_valid(NID_A));
    cr_expect(rpt_national_id_valid(NID_B));
    cr_expect(rpt_national_id_valid(NID_C));
    cr_expect_not(rpt_national_id_valid("110105194912310021")); /* wrong check */
    cr_expect_not(rpt_national_id_valid("11010519491231002x")); /* lower case: normalize first */
    cr_expect_not(rpt_national_id_valid("1101051949123100"));
    cr_expect_not(rpt_national_id_valid("1101051949123100211"));
    cr_expect_not(rpt_national_id_valid("A1010519491231002X"));
    cr_expect_not(rpt_national_id_valid(""));
    cr_expect_not(rpt_national_id_valid(NULL));
    /* every single-digit change of a valid number is caught */
    char s[19];
    for (int i = 0; i < 17; i++) {
        strcpy(s, NID_B);
        s[i] = (char)('0' + (s[i] - '0' + 1) % 10);
        cr_expect_not(rpt_national_id_valid(s), "%s", s);
    }
}

Test(person, normalize)
{
    char out[RPT_ID_NUMBER_MAX];
    cr_expect_eq(rpt_id_normalize(RPT_ID_NATIONAL, "  11010519491231002x ", out, sizeof(out)), 0);
    cr_expect_str_eq(out, NID_A);
    cr_expect_eq(rpt_id_normalize(RPT_ID_NATIONAL, "110105194912310021", out, sizeof(out)),
                 -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_NATIONAL, "", out, sizeof(out)), -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_NATIONAL, "   ", out, sizeof(out)), -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_HEALTH_CARD, " hc-0001 ", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "HC-0001");
    cr_expect_eq(rpt_id_normalize(RPT_ID_HEALTH_CARD, "abc", out, sizeof(out)), -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_HEALTH_CARD, "HC 0001", out, sizeof(out)), -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_HEALTH_CARD, "卡0001", out, sizeof(out)), -EINVAL);
    cr_expect_eq(
        rpt_id_normalize(RPT_ID_HEALTH_CARD, "123456789012345678901234567890123", out, sizeof(out)),
        -EINVAL);
    cr_expect_eq(rpt_id_normalize(RPT_ID_TYPES, "1234", out, sizeof(out)), -EINVAL);
}

/* Known answers from `openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f`. */
Test(person, hmac_matches_openssl_and_is_stable, .init = setup, .fini = teardown)
{
    char h[65], h2[65], p[RPT_PERSON_ID_LEN + 1];
    cr_assert_eq(rpt_id_hmac(cfg.persons, RPT_ID_NATIONAL, NID_A, h), 0);
    cr_expect_str_eq(h, "9142899f71277e1928fa00a19f3f51d59d362de81217aa956acc0fb8827accdf");
    cr_assert_eq(rpt_id_hmac(cfg.persons, RPT_ID_HEALTH_CARD, "HC-0001", h2), 0);
    cr_expect_str_eq(h2, "33a832b4ad11df1162e12da3b96d062be09ed9b14ec5113d031c30c8f14b0680");
    rpt_person_id_of(h, p);
    cr_expect_str_eq(p, "p9142899f71277e1928fa00a1");
    cr_expect(rpt_person_id_valid(p));
    cr_expect_not(rpt_person_id_valid("p9142899f71277e1928fa00a"));
    cr_expect_not(rpt_person_id_valid("P9142899f71277e1928fa00a1"));
    cr_expect_not(rpt_person_id_valid("p9142899F71277e1928fa00a1"));
    /* the same number of another type is another identifier */
    cr_assert_eq(rpt_id_hmac(cfg.persons, RPT_ID_HEALTH_CARD, NID_A, h2), 0);
    cr_expect_str_neq(h, h2);
    /* another key, another hash; no key, no hash */
    cfg.persons->key[0] ^= 1;
    cr_assert_eq(rpt_id_hmac(cfg.persons, RPT_ID_NATIONAL, NID_A, h2), 0);
    cr_expect_str_neq(h, h2);
    cfg.persons->have_key = 0;
    cr_expect_eq(rpt_id_hmac(cfg.persons, RPT_ID_NATIONAL, NID_A, h2), HR_ESTATE);
}

Test(person, key_file, .init = setup, .fini = teardown)
{
    unsigned char k1[PIX_KEY_LEN], k2[PIX_KEY_LEN];
    int created = -1;
    char path[700];
    struct stat sb;
    cr_expect_eq(rpt_person_key_open(dir, 0, k1, &created), HR_ENOTFOUND);
    cr_assert_eq(rpt_person_key_open(dir, 1, k1, &created), 0);
    cr_expect_eq(created, 1);
    snprintf(path, sizeof(path), "%s/%s", dir, RPT_PIX_KEY_FILE);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_size, PIX_KEY_LEN);
    cr_expect_eq(sb.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/keys", dir);
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0700);
    cr_assert_eq(rpt_person_key_open(dir, 1, k2, &created), 0);
    cr_expect_eq(created, 0);
    cr_expect_eq(memcmp(k1, k2, PIX_KEY_LEN), 0);
    /* the index remembers the key: another one is refused */
    cr_expect_eq(rpt_person_key_check(rc_, k1), 0);
    cr_expect_eq(rpt_person_key_check(rc_, k1), 0);
    k2[5] ^= 0x40;
    cr_expect_eq(rpt_person_key_check(rc_, k2), HR_EMISMATCH);
    /* a truncated key file is not used */
    snprintf(path, sizeof(path), "%s/%s", dir, RPT_PIX_KEY_FILE);
    cr_assert_eq(truncate(path, 16), 0);
    cr_expect_neq(rpt_person_key_open(dir, 1, k2, &created), 0);
    int has = -1;
    cr_assert_eq(rpt_person_index_has_data(rc_, &has), 0);
    cr_expect_eq(has, 1); /* the key check */
}

Test(person, index_has_data, .init = setup, .fini = teardown)
{
    int has = -1;
    cmd("SADD hr:users %s%s", "admin", "");
    cr_assert_eq(rpt_person_index_has_data(rc_, &has), 0);
    cr_expect_eq(has, 0, "accounts alone are no data");
    cmd("ZADD hr:ix:date 20240501 %s%s", "1.2.3", "");
    cr_assert_eq(rpt_person_index_has_data(rc_, &has), 0);
    cr_expect_eq(has, 1);
}

static void hmac_of(enum rpt_id_type t, const char *num, char h[65])
{
    cr_assert_eq(rpt_id_hmac(cfg.persons, t, num, h), 0);
}

Test(person, links, .init = setup, .fini = teardown)
{
    char ha[65], hb[65], hc[65], person[RPT_PERSON_ID_LEN + 1];
    char pk1[STO_PKEY_MAX], pk2[STO_PKEY_MAX], pk3[STO_PKEY_MAX];
    rpt_link_result lr;
    hmac_of(RPT_ID_NATIONAL, NID_A, ha);
    hmac_of(RPT_ID_NATIONAL, NID_B, hb);
    hmac_of(RPT_ID_HEALTH_CARD, "HC-0001", hc);
    cr_assert_eq(rpt_patient_key("township1", "", "P 1", pk1), 0);
    cr_expect_str_eq(pk1, "township1|P%201");
    cr_assert_eq(rpt_patient_key("township2", "T2", "77", pk2), 0);
    cr_expect_str_eq(pk2, "T2|77");
    cr_assert_eq(rpt_patient_key("township2", "", "88", pk3), 0);
    cr_expect_eq(rpt_patient_key("township2", "", "", pk3), -EINVAL);
    cr_assert_eq(rpt_patient_key("township2", "", "88", pk3), 0);
    /* the first patient has two studies already */
    cmd("ZADD hr:pt:%s:st 20240501 %s", pk1, "1.2.3.1");
    cmd("ZADD hr:pt:%s:st 20240601 %s", pk1, "1.2.3.2");
    cmd("ZADD hr:pt:%s:st 20240701 %s", pk2, "1.2.3.3");

    cr_assert_eq(rpt_person_link(rc_, pk1, RPT_ID_NATIONAL, ha, 1000, &lr), 0);
    cr_expect_eq(lr.created, 1);
    cr_expect_eq(lr.linked, 1);
    cr_expect_eq(lr.studies_added, 2);
    char want[RPT_PERSON_ID_LEN + 1];
    rpt_person_id_of(ha, want);
    cr_expect_str_eq(lr.person, want);
    /* idempotent */
    cr_assert_eq(rpt_person_link(rc_, pk1, RPT_ID_NATIONAL, ha, 2000, &lr), 0);
    cr_expect_eq(lr.created, 0);
    cr_expect_eq(lr.linked, 0);
    cr_expect_eq(lr.studies_added, 0);
    /* another hospital's patient with the same number: the same person */
    cr_assert_eq(rpt_person_link(rc_, pk2, RPT_ID_NATIONAL, ha, 3000, &lr), 0);
    cr_expect_str_eq(lr.person, want);
    cr_expect_eq(lr.created, 0);
    cr_expect_eq(lr.linked, 1);
    cr_expect_eq(lr.studies_added, 1);
    char k[96];
    snprintf(k, sizeof(k), "hr:person:{%s}:st", want);
    cr_expect_eq(zcard(k), 3);
    /* a health card joins the person through its patient */
    cr_assert_eq(rpt_person_link(rc_, pk1, RPT_ID_HEALTH_CARD, hc, 4000, &lr), 0);
    cr_expect_str_eq(lr.person, want);
    cr_assert_eq(rpt_person_by_id(rc_, RPT_ID_HEALTH_CARD, hc, person), 0);
    cr_expect_str_eq(person, want);
    cr_assert_eq(rpt_person_by_patient(rc_, pk2, person), 0);
    cr_expect_str_eq(person, want);
    /* a second national ID for the same patient: conflict, nothing kept */
    cr_expect_eq(rpt_person_link(rc_, pk1, RPT_ID_NATIONAL, hb, 5000, &lr), -EEXIST);
    cr_expect_eq(rpt_person_by_id(rc_, RPT_ID_NATIONAL, hb, person), HR_ENOTFOUND);
    /* another person's patient cannot take this number */
    cr_assert_eq(rpt_person_link(rc_, pk3, RPT_ID_NATIONAL, hb, 6000, &lr), 0);
    cr_expect_str_neq(lr.person, want);
    cr_expect_eq(rpt_person_link(rc_, pk3, RPT_ID_NATIONAL, ha, 7000, &lr), -EEXIST);
    cr_expect_eq(rpt_person_by_id(rc_, RPT_ID_NATIONAL, ha, person), 0);
    cr_expect_str_eq(person, want);
    /* garbage */
    cr_expect_eq(rpt_person_link(rc_, pk3, RPT_ID_NATIONAL, "xyz", 1, &lr), -EINVAL);
    cr_expect_eq(rpt_person_link(rc_, "", RPT_ID_NATIONAL, ha, 1, &lr), -EINVAL);
    cr_expect_eq(rpt_person_by_id(rc_, RPT_ID_NATIONAL, "12", person), -EINVAL);

    /* the person as JSON: patients and studies, never a number */
    json_t *doc = NULL;
    cr_assert_eq(rpt_person_json(rc_, want, 10, &doc), 0);
    char *text = json_dumps(doc, JSON_SORT_KEYS);
    cr_expect(strstr(text, NID_A) == NULL);
    cr_expect(strstr(text, ha) == NULL, "no HMAC either");
    cr_expect(strstr(text, "\"national_id\": true") != NULL, "%s", text);
    cr_expect(strstr(text, "\"health_card\": true") != NULL, "%s", text);
    cr_expect_eq(json_array_size(json_object_get(doc, "patients")), 2);
    cr_expect_eq(json_array_size(json_object_get(doc, "studies")), 3);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "studies"), 0), "study")),
                     "1.2.3.3", "newest first");
    free(text);
    json_decref(doc);
    cr_expect_eq(rpt_person_json(rc_, "p000000000000000000000000", 10, &doc), HR_ENOTFOUND);
}

Test(person, patients_per_person_bounded, .init = setup, .fini = teardown)
{
    char ha[65], pk[STO_PKEY_MAX], id[16];
    rpt_link_result lr;
    hmac_of(RPT_ID_NATIONAL, NID_C, ha);
    for (int i = 0; i < RPT_PERSON_PTS_MAX; i++) {
        snprintf(id, sizeof(id), "X%d", i);
        cr_assert_eq(rpt_patient_key("county", "", id, pk), 0);
        cr_assert_eq(rpt_person_link(rc_, pk, RPT_ID_NATIONAL, ha, 1, &lr), 0);
    }
    cr_assert_eq(rpt_patient_key("county", "", "ONE-MORE", pk), 0);
    cr_expect_eq(rpt_person_link(rc_, pk, RPT_ID_NATIONAL, ha, 1, &lr), HR_ETOOBIG);
    char person[RPT_PERSON_ID_LEN + 1];
    cr_expect_eq(rpt_person_by_patient(rc_, pk, person), HR_ENOTFOUND, "given back");
}

static void attrs(dcm_attrs *a, const char *pid, const char *study, const char *date)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->patient_id, sizeof(a->patient_id), "%s", pid);
    snprintf(a->study_instance_uid, sizeof(a->study_instance_uid), "%s", study);
    snprintf(a->study_date, sizeof(a->study_date), "%s", date);
}

Test(person, arrive, .init = setup, .fini = teardown)
{
    dcm_attrs *a = calloc(1, sizeof(*a));
    rpt_arrival_result ar;
    char pk[STO_PKEY_MAX], key[96], ha[65], want[RPT_PERSON_ID_LEN + 1];
    hmac_of(RPT_ID_NATIONAL, NID_B, ha);
    rpt_person_id_of(ha, want);
    /* township1: the Patient ID is the number */
    attrs(a, NID_B, "1.2.9.1", "20240102");
    sto_patient_key(a, "township1", pk);
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "township1", pk, 1, &ar), 0);
    cr_expect_eq(ar.number_found, 1);
    cr_expect_eq(ar.linked, 1);
    cr_expect_str_eq(ar.person, want);
    snprintf(key, sizeof(key), "hr:person:{%s}:st", want);
    cr_expect_eq(zcard(key), 1);
    /* a malformed number links nothing */
    attrs(a, "440304199001010012", "1.2.9.2", "20240103");
    sto_patient_key(a, "township1", pk);
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "township1", pk, 1, &ar), 0);
    cr_expect_eq(ar.invalid, 1);
    cr_expect_str_eq(ar.person, "");
    /* township2: an item of Other Patient IDs with the configured issuer */
    attrs(a, "T2-5", "1.2.9.3", "20240104");
    snprintf(a->other_pids[0].id, sizeof(a->other_pids[0].id), "%s", NID_A);
    snprintf(a->other_pids[0].issuer, sizeof(a->other_pids[0].issuer), "OTHER");
    snprintf(a->other_pids[1].id, sizeof(a->other_pids[1].id), "%s", NID_B);
    snprintf(a->other_pids[1].issuer, sizeof(a->other_pids[1].issuer), "CN-NID");
    sto_patient_key(a, "township2", pk);
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "township2", pk, 1, &ar), 0);
    cr_expect_str_eq(ar.person, want, "the item of issuer CN-NID, not OTHER");
    cr_expect_eq(zcard(key), 2);
    /* county: no source; its patient is linked by hand, later studies follow */
    attrs(a, "C-9", "1.2.9.4", "20240105");
    sto_patient_key(a, "county", pk);
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "county", pk, 1, &ar), 0);
    cr_expect_str_eq(ar.person, "");
    rpt_link_result lr;
    cr_assert_eq(rpt_person_link(rc_, pk, RPT_ID_NATIONAL, ha, 2, &lr), 0);
    attrs(a, "C-9", "1.2.9.5", "20240106");
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "county", pk, 1, &ar), 0);
    cr_expect_str_eq(ar.person, want);
    cr_expect_eq(zcard(key), 3, "1.2.9.4 was not in hr:pt, only the later one is added");
    /* the same numbers from a hospital without that source: not read */
    attrs(a, NID_A, "1.2.9.6", "20240107");
    sto_patient_key(a, "county", pk);
    cr_assert_eq(rpt_person_arrive(rc_, &cfg, a, "county", pk, 1, &ar), 0);
    cr_expect_eq(ar.number_found, 0);
    free(a);
}

Test(person, config_errors)
{
    hr_config c;
    char err[512];
    const char *bad[][2] = {
        {"{\"persons\": {\"sources\": [{\"hospital\": \"nowhere\", \"where\": \"patient_id\"}]}}",
         "persons.sources[0].hospital: \"nowhere\" is not one of hospitals[].id"},
        {"{\"persons\": {\"sources\": [{\"hospital\": \"county\", \"where\": "
         "\"other_patient_ids\"}]}}",
         "persons.sources[0].issuer: required with other_patient_ids"},
        {"{\"persons\": {\"sources\": [{\"hospital\": \"county\", \"where\": \"patient_id\", "
         "\"issuer\": \"X\"}]}}",
         "persons.sources[0].issuer: only with"},
        {"{\"persons\": {\"sources\": [{\"hospital\": \"county\", \"where\": \"pid\"}]}}",
         "persons.sources[0].where"},
        {"{\"persons\": {\"sources\": [{\"hospital\": \"county\", \"where\": \"patient_id\", "
         "\"id_type\": \"passport\"}]}}",
         "persons.sources[0].id_type"},
        {"{\"persons\": {\"sources\": [{\"hospital\": \"county\", \"where\": \"patient_id\"},"
         " {\"hospital\": \"county\", \"where\": \"patient_id\"}]}}",
         "persons.sources[1]: the same as sources[0]"},
        {"{\"persons\": {\"key\": \"x\"}}", "persons.key: unknown key"},
        {"{\"persons\": {\"sources\": {}}}", "persons.sources: must be an array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_expect_eq(hr_config_load_string(bad[i][0], &c, err, sizeof(err)), HR_ECONFIG, "%s",
                     bad[i][0]);
        cr_expect(strstr(err, bad[i][1]) != NULL, "\"%s\" lacks \"%s\"", err, bad[i][1]);
    }
    cr_assert_eq(hr_config_load_string("{}", &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c.persons->n_sources, 0, "no hospital links at ingest by default");
    cr_expect_eq(c.persons->have_key, 0);
    hr_config_free(&c);
}
