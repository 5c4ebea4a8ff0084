/* storage/retrieve.c against a real redis-server holding instances indexed by
 * the same commit path as ingest and reindex: ordering, not-found cases,
 * series/SOP mismatch, limits, appending, owner lookups, Redis failures. */
#include "common/hr_err.h"
#include "storage/index.h"
#include "storage/retrieve.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static char dir[512];
static ts_redis redis;
static redisContext *rc_;

static void add(const char *hosp, const char *pid, const char *study, const char *series,
                const char *series_no, const char *sop, const char *inst_no, const char *ts,
                const char *frames)
{
    dcm_attrs a;
    memset(&a, 0, sizeof(a));
    snprintf(a.sop_class_uid, sizeof(a.sop_class_uid), "1.2.840.10008.5.1.4.1.1.2");
    snprintf(a.sop_instance_uid, sizeof(a.sop_instance_uid), "%s", sop);
    snprintf(a.study_instance_uid, sizeof(a.study_instance_uid), "%s", study);
    snprintf(a.series_instance_uid, sizeof(a.series_instance_uid), "%s", series);
    snprintf(a.patient_id, sizeof(a.patient_id), "%s", pid);
    snprintf(a.patient_name, sizeof(a.patient_name), "Doe^%s", pid);
    snprintf(a.study_date, sizeof(a.study_date), "20260101");
    snprintf(a.modality, sizeof(a.modality), "CT");
    snprintf(a.series_number, sizeof(a.series_number), "%s", series_no);
    snprintf(a.instance_number, sizeof(a.instance_number), "%s", inst_no);
    snprintf(a.transfer_syntax_uid, sizeof(a.transfer_syntax_uid), "%s", ts);
    snprintf(a.number_of_frames, sizeof(a.number_of_frames), "%s", frames);
    char sha[65];
    snprintf(sha, sizeof(sha), "%064zx", strlen(sop) * 7919 + (size_t)sop[strlen(sop) - 1]);
    sto_instance_rec rec = {&a, sha, 4096 + strlen(sop), hosp, "AE", 1700000000000LL, NULL, 0, 0};
    sto_index_result out;
    cr_assert_eq(sto_index_commit_sync(rc_, &rec, &out), 0);
}

#define EXPL "1.2.840.10008.1.2.1"
#define JPEG "1.2.840.10008.1.2.4.50"

static void setup(void)
{
    int err;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    rc_ = sto_index_connect_sync(&addr, 2000, &err);
    cr_assert_not_null(rc_);
    /* study 1.1 (township1): series 1.1.2 is number 1, series 1.1.1 number 2;
     * instances committed out of their number order */
    add("township1", "P1", "1.1", "1.1.1", "2", "1.1.1.3", "3", EXPL, "");
    add("township1", "P1", "1.1", "1.1.1", "2", "1.1.1.1", "1", EXPL, "");
    add("township1", "P1", "1.1", "1.1.1", "2", "1.1.1.2", "2", JPEG, "12");
    add("township1", "P1", "1.1", "1.1.2", "1", "1.1.2.2", "20", EXPL, "");
    add("township1", "P1", "1.1", "1.1.2", "1", "1.1.2.1", "10", EXPL, "");
    /* study 2.1 (township2) */
    add("township2", "P2", "2.1", "2.1.1", "1", "2.1.1.1", "1", EXPL, "");
}

static void teardown(void)
{
    if (rc_)
        redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
}

TestSuite(retrieve, .init = setup, .fini = teardown, .timeout = 60);

static void expect_sops(const sto_rlist *l, const char *const *want, size_t n)
{
    cr_assert_eq(l->n, n, "%zu instances, expected %zu", l->n, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(l->v[i].sop, want[i], "position %zu", i);
}

Test(retrieve, study_in_series_then_instance_number_order)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, NULL, 0, &l), 0);
    static const char *const want[] = {"1.1.2.1", "1.1.2.2", "1.1.1.1", "1.1.1.2", "1.1.1.3"};
    expect_sops(&l, want, 5);
    cr_expect_str_eq(l.hospital, "township1");
    cr_expect_str_eq(l.patient, "township1|P1");
    const sto_rinst *jpeg = &l.v[3];
    cr_expect_str_eq(jpeg->study, "1.1");
    cr_expect_str_eq(jpeg->series, "1.1.1");
    cr_expect_str_eq(jpeg->ts, JPEG);
    cr_expect_str_eq(jpeg->sop_class, "1.2.840.10008.5.1.4.1.1.2");
    cr_expect_str_eq(jpeg->hospital, "township1");
    cr_expect_eq(jpeg->frames, 12);
    cr_expect_eq(jpeg->size, 4096 + strlen("1.1.1.2"));
    cr_expect_eq(strlen(jpeg->sha), 64);
    cr_expect_eq(l.v[0].frames, 0, "no Number of Frames: 0");
    sto_rlist_free(&l);
    cr_expect_eq(l.n, 0);
    cr_expect_null(l.v);
}

Test(retrieve, series_and_instance)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.1", NULL, 0, &l), 0);
    static const char *const s1[] = {"1.1.1.1", "1.1.1.2", "1.1.1.3"};
    expect_sops(&l, s1, 3);
    sto_rlist_free(&l);

    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.2", "1.1.2.2", 0, &l), 0);
    static const char *const one[] = {"1.1.2.2"};
    expect_sops(&l, one, 1);
    sto_rlist_free(&l);

    /* a SOP without its series is looked up through the study */
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, "1.1.1.3", 0, &l), 0);
    cr_assert_eq(l.n, 1);
    cr_expect_str_eq(l.v[0].series, "1.1.1");
    sto_rlist_free(&l);
}

Test(retrieve, calls_append)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.2", NULL, 0, &l), 0);
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "2.1", NULL, NULL, 0, &l), 0);
    static const char *const want[] = {"1.1.2.1", "1.1.2.2", "2.1.1.1"};
    expect_sops(&l, want, 3);
    cr_expect_str_eq(l.hospital, "township2", "the study fields describe the last call");
    cr_expect_str_eq(l.patient, "township2|P2");
    sto_rlist_free(&l);
}

Test(retrieve, not_found)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "9.9", NULL, NULL, 0, &l), HR_ENOTFOUND, "study");
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", "9.9", NULL, 0, &l), HR_ENOTFOUND, "series");
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, "9.9", 0, &l), HR_ENOTFOUND, "instance");
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.1", "9.9", 0, &l), HR_ENOTFOUND);
    /* an instance of another study is not found under this one */
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, "2.1.1.1", 0, &l), HR_ENOTFOUND);
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", "2.1.1", NULL, 0, &l), HR_ENOTFOUND);
    cr_expect_eq(l.n, 0, "nothing appended by a failed lookup");
    sto_rlist_free(&l);
}

Test(retrieve, series_sop_mismatch)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_assert_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.2", NULL, 0, &l), 0);
    cr_assert_eq(l.n, 2);
    /* the SOP exists in the study, but in the other series */
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", "1.1.2", "1.1.1.1", 0, &l), HR_ENOTFOUND);
    cr_expect_eq(l.n, 2, "the mismatched instance is taken back out");
    cr_expect_str_eq(l.v[1].sop, "1.1.2.2");
    sto_rlist_free(&l);
}

Test(retrieve, limit)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, NULL, 4, &l), HR_ETOOBIG);
    cr_expect_leq(l.n, 4);
    sto_rlist_free(&l);
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, NULL, 5, &l), 0, "exactly the limit");
    cr_expect_eq(l.n, 5);
    /* the limit counts what the list already holds */
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "2.1", NULL, NULL, 5, &l), HR_ETOOBIG);
    sto_rlist_free(&l);
}

Test(retrieve, owner_and_study_of)
{
    char hosp[64], patient[192], study[STO_UID_BUF];
    cr_assert_eq(sto_retrieve_study_owner(rc_, "2.1", hosp, patient), 0);
    cr_expect_str_eq(hosp, "township2");
    cr_expect_str_eq(patient, "township2|P2");
    cr_expect_eq(sto_retrieve_study_owner(rc_, "9.9", hosp, patient), HR_ENOTFOUND);
    cr_expect_str_eq(hosp, "");

    cr_assert_eq(sto_retrieve_study_of(rc_, "1.1.1.2", study), 0);
    cr_expect_str_eq(study, "1.1");
    cr_expect_eq(sto_retrieve_study_of(rc_, "9.9.9", study), HR_ENOTFOUND);
}

/* The Redis commands run since the last reset, as "cmd=calls,..." sorted. */
static void commands_since_reset(char *out, size_t cap)
{
    redisReply *r = redisCommand(rc_, "INFO commandstats");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    out[0] = '\0';
    size_t n = 0;
    for (char *line = strtok(r->str, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        char cmd[64];
        unsigned long calls;
        if (sscanf(line, "cmdstat_%63[^:]:calls=%lu", cmd, &calls) == 2 &&
            strncmp(cmd, "config", 6) != 0 && strcmp(cmd, "info") != 0)
            n += (size_t)snprintf(out + n, cap - n, "%s=%lu,", cmd, calls);
    }
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc_, "CONFIG RESETSTAT"));
}

/* A study outside the caller's scope is refused from its owner alone: the
 * same Redis work as an absent study, no series or instance list read. */
Test(retrieve, out_of_scope_costs_what_absent_costs)
{
    sto_scope t2 = {.none = 0, .all = 0, .hospital = "township2"};
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    char absent[256], forbidden[256];
    freeReplyObject(redisCommand(rc_, "CONFIG RESETSTAT"));
    cr_expect_eq(sto_retrieve_list(rc_, &t2, "9.9", NULL, NULL, 0, &l), HR_ENOTFOUND);
    commands_since_reset(absent, sizeof(absent));
    cr_expect_eq(sto_retrieve_list(rc_, &t2, "1.1", NULL, NULL, 0, &l), HR_EFORBIDDEN);
    commands_since_reset(forbidden, sizeof(forbidden));
    cr_expect_str_eq(forbidden, absent);
    cr_expect_str_eq(forbidden, "hmget=1,");
    cr_expect_eq(l.n, 0);
    cr_expect_eq(sto_retrieve_list(rc_, &t2, "2.1", NULL, NULL, 0, &l), 0, "its own study");
    cr_expect_eq(l.n, 1);
    sto_rlist_free(&l);
}

Test(retrieve, redis_gone)
{
    sto_rlist l;
    memset(&l, 0, sizeof(l));
    char study[STO_UID_BUF], hosp[64], patient[192];
    signal(SIGPIPE, SIG_IGN); /* as huren serve: a write to the gone server fails */
    ts_redis_stop(&redis);
    cr_expect_eq(sto_retrieve_list(rc_, NULL, "1.1", NULL, NULL, 0, &l), HR_EREDIS);
    cr_expect_eq(sto_retrieve_study_of(rc_, "1.1.1.2", study), HR_EREDIS);
    cr_expect_eq(sto_retrieve_study_owner(rc_, "1.1", hosp, patient), HR_EREDIS);
    sto_rlist_free(&l);
}
