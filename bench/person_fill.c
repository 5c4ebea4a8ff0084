/* huren-bench-persons: fills a running huren's Redis with regional persons,
 * their studies and a signed final report per study, for bench/recognition
 * (issue 9: recognition lookup p50/p99 with 10 k and 1 M persons). One
 * million persons through C-STORE, the worklist and the signing API (a PIN
 * KDF per signature) would take hours on the 2-core VMs; this writes the
 * same keys in minutes:
 *
 *   - each study's hash hr:{S}:st and the patient's hr:pt:<key> and study
 *     list hr:pt:<key>:st, with the fields the index script writes for a
 *     one-instance study (pipelined); its series, instance and global index
 *     keys are left out (the lookup reads none of them; they would cost
 *     ~2.5 KB and a 0.4 ms script per study). HUREN_BENCH_FULL_INDEX=1
 *     commits each study through sto_index_commit_sync instead (the index
 *     script of ingest and reindex: every index key; ~3x slower);
 *   - each person through rpt_person_link (the production link: lookup keys
 *     by HMAC under the data directory's person-id key, then the person
 *     script, which copies the patient's studies into hr:person:{P}:st);
 *   - each report from a template: a report that huren signed through the
 *     real API in the same run (the seed, one per modality). Its hashes
 *     (hr:rpt:{S}, hr:rpt:{S}:1, hr:rpt:{S}:1:v:1) are copied field by
 *     field with the seed's study and report id replaced, and its payload
 *     (decision 0022) gets the new exam, patient and images, and is signed
 *     again with the real signer (rpt_local_signer_open + rpt_jws_sign: one
 *     real ES256 signature per version, with the signer's certificate in
 *     x5c). The report writes of a person are pipelined.
 *
 * Not written: worklist items and the delivery outbox (the lookup reads
 * neither).
 *
 *   huren-bench-persons REDIS_URL DATA_DIR SIGNER CT_SEED MR_SEED FIRST N [SECOND_EVERY]
 *
 * The signing PIN is read from the environment (HUREN_BENCH_PIN). Person i
 * (FIRST <= i < FIRST + N): national ID number "42010219" + i in 9 digits
 * + the GB 11643 check character (bench/recognition_load.py makes the same
 * numbers); patient BP<i> of township1 with one CT study (its report carries
 * the CT seed's recognition items), and when i % SECOND_EVERY == 0 (default 10) also
 * an MR study (the MR seed's items). Prints the fill rate. */
#include "common/hr_err.h"
#include "common/hr_time.h"
#include "reports/jws.h"
#include "reports/person.h"
#include "reports/report.h"
#include "reports/signer.h"
#include "storage/index.h"
#include "storage/keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_FIELDS 64 /* fields of one template hash at most */

/* One template hash: field/value pairs of a seed key. */
typedef struct tmpl_hash {
    int n;
    char *field[SEED_FIELDS];
    char *value[SEED_FIELDS];
} tmpl_hash;

/* The seed report of one modality. */
typedef struct seed {
    char study[HR_UID_MAX];
    char report[RPT_ID_MAX];
    tmpl_hash summary, report_h, version_h; /* hr:rpt:{S}, hr:rpt:{S}:1, hr:rpt:{S}:1:v:1 */
    json_t *payload;                        /* the signed version's payload */
} seed;

static void die(const char *what, int rc)
{
    fprintf(stderr, "huren-bench-persons: %s: %s\n", what, rc ? hr_strerror(rc) : "failed");
    exit(1);
}

static int load_hash(redisContext *c, const char *key, tmpl_hash *h)
{
    redisReply *r = redisCommand(c, "HGETALL %s", key);
    int rc = 0;
    memset(h, 0, sizeof(*h));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->elements / 2 > SEED_FIELDS) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        h->field[h->n] = strdup(r->element[i]->str);
        h->value[h->n] = strdup(r->element[i + 1]->str);
        if (!h->field[h->n] || !h->value[h->n]) {
            rc = -ENOMEM;
            goto out;
        }
        h->n++;
    }
out:
    freeReplyObject(r);
    return rc;
}

static void load_seed(redisContext *c, const char *study, seed *s)
{
    char key[HR_UID_MAX + 64];
    rpt_version v;
    snprintf(s->study, sizeof(s->study), "%s", study);
    redisReply *r = redisCommand(c, "LRANGE hr:rpt:{%s}:ids 0 0", study);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        die("the seed study has no report", HR_ENOTFOUND);
    snprintf(s->report, sizeof(s->report), "%s", r->element[0]->str);
    freeReplyObject(r);
    if (strncmp(s->report, "r1-", 3) != 0)
        die("the seed's report is not its first", -EINVAL);
    snprintf(key, sizeof(key), "hr:rpt:{%s}", study);
    if (load_hash(c, key, &s->summary))
        die("seed hr:rpt:{S}", HR_ENOTFOUND);
    snprintf(key, sizeof(key), "hr:rpt:{%s}:1", study);
    if (load_hash(c, key, &s->report_h))
        die("seed hr:rpt:{S}:1", HR_ENOTFOUND);
    snprintf(key, sizeof(key), "hr:rpt:{%s}:1:v:1", study);
    if (load_hash(c, key, &s->version_h))
        die("seed hr:rpt:{S}:1:v:1 (is the seed signed, final at version 1?)", HR_ENOTFOUND);
    int rc = rpt_version_get(c, s->report, 0, &v);
    if (rc)
        die("reading the seed's signed version", rc);
    if (v.version != 1 || v.status != RPT_FINAL)
        die("the seed's current version is not a final version 1", -EINVAL);
    s->payload = json_incref(v.payload);
    rpt_version_free(&v);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The GB 11643 check character of 17 digits. */
static char nid_check(const char *d17)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char map[] = "10X98765432";
    int s = 0;
    for (int i = 0; i < 17; i++)
        s += (d17[i] - '0') * w[i];
    return map[s % 11];
}

static void json_set_str(json_t *o, const char *k, const char *v)
{
    if (json_object_set_new(o, k, json_string(v)))
        die("json", -ENOMEM);
}

/* The seed's payload for this study, signed: *jws (malloc'd), digest. */
static void sign_payload(rpt_signer *sg, const seed *s, const dcm_attrs *a, const char *sha,
                         const char *report, long long now_ms, char **jws, char digest[65])
{
    json_t *p = json_deep_copy(s->payload);
    if (!p)
        die("json", -ENOMEM);
    json_t *rep = json_object_get(p, "report"), *exam = json_object_get(p, "exam");
    json_t *pt = json_object_get(p, "patient");
    if (!json_is_object(rep) || !json_is_object(exam) || !json_is_object(pt))
        die("the seed's payload lacks report, exam or patient", -EINVAL);
    json_set_str(rep, "id", report);
    json_set_str(exam, "study_uid", a->study_instance_uid);
    json_set_str(exam, "accession", a->accession_number);
    json_set_str(exam, "study_date", a->study_date);
    json_set_str(exam, "modality", a->modality);
    json_set_str(exam, "procedure", a->study_description);
    json_set_str(pt, "id", a->patient_id);
    json_set_str(pt, "issuer", a->issuer_of_patient_id);
    json_set_str(pt, "name", a->patient_name);
    json_set_str(pt, "sex", a->patient_sex);
    json_set_str(pt, "birth_date", a->patient_birth_date);
    /* images: the one instance, its line hashed as decision 0022 says */
    char line[HR_UID_MAX + 80], idig[65];
    int n = snprintf(line, sizeof(line), "%s %s\n", a->sop_instance_uid, sha);
    sha256_hex(line, (size_t)n, idig);
    json_t *img =
        json_pack("{s:i, s:s, s:s, s:[{s:s, s:s}]}", "count", 1, "order", "sop-uid-bytewise",
                  "digest", idig, "instances", "sop", a->sop_instance_uid, "sha256", sha);
    if (!img || json_object_set_new(p, "images", img))
        die("json", -ENOMEM);
    int rc = rpt_jws_sign(sg, p, now_ms / 1000, jws);
    if (rc)
        die("rpt_jws_sign", rc);
    sha256_hex(*jws, strlen(*jws), digest);
    json_decref(p);
}

/* HSET key with the template's fields, the seed's study / report id
 * replaced, and the given overrides (NULL-terminated field, value pairs). */
static void append_hash(redisContext *c, const char *key, const tmpl_hash *h, const seed *s,
                        const char *study, const char *report, const char *const *over)
{
    const char *argv[2 + 2 * SEED_FIELDS];
    size_t len[2 + 2 * SEED_FIELDS];
    int n = 0;
    argv[n++] = "HSET";
    argv[n++] = key;
    for (int i = 0; i < h->n; i++) {
        const char *v = h->value[i];
        for (int k = 0; over && over[k]; k += 2)
            if (strcmp(over[k], h->field[i]) == 0)
                v = over[k + 1];
        if (strcmp(v, s->study) == 0)
            v = study;
        else if (strcmp(v, s->report) == 0)
            v = report;
        else if (strstr(v, s->study))
            die("a template value holds the seed's study inside other text", -EINVAL);
        argv[n++] = h->field[i];
        argv[n++] = v;
    }
    for (int i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    redisAppendCommandArgv(c, n, argv, len);
}

/* The study hash and the patient's study list, as the index script writes
 * them for a one-instance study (without its series, instance and global
 * index keys, which the lookup does not read). Two commands appended. */
static void append_study(redisContext *c, const dcm_attrs *a, long long now_ms)
{
    char pkey[STO_PKEY_MAX];
    sto_patient_key(a, "township1", pkey);
    redisAppendCommand(c,
                       "HSET hr:{%s}:st uid %s date %s time %s accession %s description %s "
                       "hospital township1 first_received %lld updated %lld patient %s "
                       "patient_id %s issuer %s patient_name %s birth_date %s sex %s series 1 "
                       "instances 1 bytes 3300",
                       a->study_instance_uid, a->study_instance_uid, a->study_date, a->study_time,
                       a->accession_number, a->study_description, now_ms, now_ms, pkey,
                       a->patient_id, a->issuer_of_patient_id, a->patient_name,
                       a->patient_birth_date, a->patient_sex);
    redisAppendCommand(c, "ZADD hr:pt:%s:st %s %s", pkey, a->study_date, a->study_instance_uid);
}

static void fill_attrs(dcm_attrs *a, long i, int j)
{
    memset(a, 0, sizeof(*a));
    int mr = j == 1;
    struct tm tm = {.tm_year = 125, .tm_mon = 0, .tm_mday = 1 + (int)(i % 330) + j, .tm_hour = 12};
    timegm(&tm);
    snprintf(a->study_date, sizeof(a->study_date), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
    snprintf(a->study_time, sizeof(a->study_time), "%02ld%02ld00", 8 + i % 10, i % 60);
    snprintf(a->study_instance_uid, sizeof(a->study_instance_uid), "1.2.826.0.1.3680043.9.8.%ld.%d",
             i, j + 1);
    snprintf(a->series_instance_uid, sizeof(a->series_instance_uid), "%s.1", a->study_instance_uid);
    snprintf(a->sop_instance_uid, sizeof(a->sop_instance_uid), "%s.1.1", a->study_instance_uid);
    snprintf(a->series_number, sizeof(a->series_number), "1");
    snprintf(a->instance_number, sizeof(a->instance_number), "1");
    snprintf(a->patient_id, sizeof(a->patient_id), "BP%09ld", i);
    snprintf(a->issuer_of_patient_id, sizeof(a->issuer_of_patient_id), "TOWNSHIP1");
    snprintf(a->patient_name, sizeof(a->patient_name), "Bench^P%ld", i);
    snprintf(a->patient_birth_date, sizeof(a->patient_birth_date), "19%02ld0101", 30 + i % 60);
    snprintf(a->patient_sex, sizeof(a->patient_sex), "%s", i % 2 ? "M" : "F");
    snprintf(a->accession_number, sizeof(a->accession_number), "BA%09ld%d", i, j);
    snprintf(a->modality, sizeof(a->modality), "%s", mr ? "MR" : "CT");
    snprintf(a->study_description, sizeof(a->study_description), "%s head", a->modality);
    snprintf(a->sop_class_uid, sizeof(a->sop_class_uid), "%s",
             mr ? "1.2.840.10008.5.1.4.1.1.4" : "1.2.840.10008.5.1.4.1.1.2");
    snprintf(a->transfer_syntax_uid, sizeof(a->transfer_syntax_uid), "1.2.840.10008.1.2.1");
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: huren-bench-persons REDIS_URL DATA_DIR SIGNER CT_SEED MR_SEED "
                        "FIRST N [SECOND_EVERY]\n(the signing PIN in HUREN_BENCH_PIN)\n");
        return 2;
    }
    const char *pin = getenv("HUREN_BENCH_PIN");
    int full_index = getenv("HUREN_BENCH_FULL_INDEX") && atoi(getenv("HUREN_BENCH_FULL_INDEX"));
    long first = atol(argv[6]), n = atol(argv[7]), every = argc == 9 ? atol(argv[8]) : 10;
    if (!pin || first < 0 || n < 0 || first + n > 999999999L || every < 1)
        die("arguments (HUREN_BENCH_PIN, FIRST, N < 1e9, SECOND_EVERY >= 1)", -EINVAL);
    sto_redis_addr addr;
    int err, rc, created;
    if (sto_redis_addr_parse(argv[1], &addr))
        die("bad redis url", -EINVAL);
    redisContext *c = sto_index_connect_sync(&addr, 5000, &err);
    if (!c)
        die("cannot connect to redis", err);
    pix_config pix = {0};
    rc = rpt_person_key_open(argv[2], 0, pix.key, &created);
    if (rc)
        die("the person-id key (did huren serve start on this data dir?)", rc);
    pix.have_key = 1;
    rc = rpt_person_key_check(c, pix.key);
    if (rc)
        die("the person-id key does not match the index", rc);
    char keys_dir[HR_PATH_MAX];
    snprintf(keys_dir, sizeof(keys_dir), "%s/keys", argv[2]);
    rpt_signer *sg = NULL;
    rc = rpt_local_signer_open(keys_dir, argv[3], pin, &sg);
    if (rc)
        die("opening the signer", rc);
    static seed seeds[2];
    load_seed(c, argv[4], &seeds[0]);
    load_seed(c, argv[5], &seeds[1]);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long studies = 0;
    for (long i = first; i < first + n; i++) {
        char d17[18], nid[19], norm[RPT_ID_NUMBER_MAX], hmac[65], pkey[STO_PKEY_MAX];
        snprintf(d17, sizeof(d17), "42010219%09ld", i);
        snprintf(nid, sizeof(nid), "%s%c", d17, nid_check(d17));
        if (rpt_id_normalize(RPT_ID_NATIONAL, nid, norm, sizeof(norm)))
            die("a generated national ID does not check", -EINVAL);
        if ((rc = rpt_id_hmac(&pix, RPT_ID_NATIONAL, norm, hmac)))
            die("rpt_id_hmac", rc);
        int n_st = i % every == 0 ? 2 : 1;
        dcm_attrs a[2];
        char sha[2][65];
        long long now = hr_wall_ms();
        int study_cmds = 0;
        for (int j = 0; j < n_st; j++) {
            fill_attrs(&a[j], i, j);
            sha256_hex(a[j].sop_instance_uid, strlen(a[j].sop_instance_uid), sha[j]);
            if (full_index) {
                sto_instance_rec rec = {&a[j],       sha[j], 3300, "township1", "TOWNSHIP1", now,
                                        "township1", 0,      0};
                sto_index_result res;
                if ((rc = sto_index_commit_sync(c, &rec, &res)))
                    die("sto_index_commit_sync", rc);
            } else {
                append_study(c, &a[j], now);
                study_cmds += 2;
            }
        }
        sto_patient_key(&a[0], "township1", pkey);
        if (!full_index) {
            redisAppendCommand(c,
                               "HSET hr:pt:%s key %s id %s issuer %s name %s birth_date %s sex %s",
                               pkey, pkey, a[0].patient_id, a[0].issuer_of_patient_id,
                               a[0].patient_name, a[0].patient_birth_date, a[0].patient_sex);
            study_cmds++;
            for (int k = 0; k < study_cmds; k++) {
                redisReply *r = NULL;
                if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR)
                    die("writing a study", HR_EREDIS);
                freeReplyObject(r);
            }
        }
        rpt_link_result lr;
        if ((rc = rpt_person_link(c, pkey, RPT_ID_NATIONAL, hmac, now, &lr)))
            die("rpt_person_link", rc);
        if (lr.studies_added != n_st && lr.linked) {
            fprintf(stderr, "huren-bench-persons: person %ld: %lld studies linked, not %d\n", i,
                    lr.studies_added, n_st);
            return 1;
        }
        int appended = 0;
        for (int j = 0; j < n_st; j++) {
            const seed *s = &seeds[j];
            const char *st = a[j].study_instance_uid;
            char report[RPT_ID_MAX], key[HR_UID_MAX + 64], digest[65], ms[24], *jws = NULL;
            snprintf(report, sizeof(report), "r1-%s", st);
            snprintf(ms, sizeof(ms), "%lld", now);
            sign_payload(sg, s, &a[j], sha[j], report, now, &jws, digest);
            const char *over_v[] = {"jws", jws, "digest", digest, "signed_ms", ms, NULL};
            const char *over_r[] = {"created_ms", ms, "updated_ms", ms, "draft_ms", ms, NULL};
            redisAppendCommand(c, "DEL hr:rpt:{%s}:ids", st);
            redisAppendCommand(c, "RPUSH hr:rpt:{%s}:ids %s", st, report);
            snprintf(key, sizeof(key), "hr:rpt:{%s}", st);
            append_hash(c, key, &s->summary, s, st, report, NULL);
            snprintf(key, sizeof(key), "hr:rpt:{%s}:1", st);
            append_hash(c, key, &s->report_h, s, st, report, over_r);
            snprintf(key, sizeof(key), "hr:rpt:{%s}:1:v:1", st);
            append_hash(c, key, &s->version_h, s, st, report, over_v);
            appended += 5;
            free(jws);
            studies++;
        }
        for (int k = 0; k < appended; k++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR)
                die("writing a report", HR_EREDIS);
            freeReplyObject(r);
        }
        OPENSSL_cleanse(nid, sizeof(nid));
        OPENSSL_cleanse(norm, sizeof(norm));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    sg->free(sg);
    redisFree(c);
    fprintf(stderr,
            "huren-bench-persons: %ld persons (%ld studies, signed reports) in %.1f s: %.0f "
            "persons/s\n",
            n, studies, secs, secs > 0 ? (double)n / secs : 0.0);
    return 0;
}
