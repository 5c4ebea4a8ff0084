/* gateway/negotiate.c: presentation contexts of an A-ASSOCIATE-RQ as real
 * modalities propose them (Annex B storage classes, a private class, services
 * huren does not implement) with dicom.accept_unknown_storage on and off, and
 * C-GET role selection for the same classes. */
#include "common/hr_config.h"
#include "dicom/uids.h"
#include "gateway/assoc.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRIVATE_CLASS "1.2.826.0.1.3680043.9999.1"

static const char *const k_proposed[] = {
    "1.2.840.10008.5.1.4.1.1.66.4",   /* 1  Segmentation: accepted */
    "1.2.840.10008.5.1.4.1.1.88.59",  /* 3  Key Object Selection: accepted */
    "1.2.840.10008.5.1.4.1.1.11.1",   /* 5  GSPS: accepted */
    "1.2.840.10008.5.1.4.1.1.2.1",    /* 7  Enhanced CT: accepted */
    "1.2.840.10008.5.1.4.1.1.481.5",  /* 9  RT Plan: accepted */
    PRIVATE_CLASS,                    /* 11 private: depends on the switch */
    "1.2.840.10008.1.20.1",           /* 13 Storage Commitment: refused */
    "1.2.840.10008.3.1.2.3.3",        /* 15 MPPS: refused */
    "1.2.840.10008.5.1.1.9",          /* 17 Print: refused */
    DCM_UID_VERIFICATION,             /* 19 Verification: accepted */
    "1.2.840.10008.5.1.4.1.2.2.1",    /* 21 Study Root FIND: accepted */
    "1.2.840.10008.5.1.4.1.1.13.1.3", /* 23 Breast Tomosynthesis: accepted */
};
#define N_PROPOSED (sizeof(k_proposed) / sizeof(k_proposed[0]))

static hr_config cfg;
static gw_dicom_server srv;
static gw_assoc *a;
static dcm_assoc_rq *rq;
static dcm_assoc_ac *ac;

static void setup_with(int accept_unknown)
{
    char err[256], json[1024];
    snprintf(json, sizeof(json),
             "{\"dicom\": {\"ae_title\": \"HUREN\", \"accept_unknown_storage\": %s},"
             " \"hospitals\": [{\"id\": \"county\", \"name\": \"County\", \"level\": \"county\","
             " \"ae_titles\": [\"MODALITY\"], \"addresses\": [\"127.0.0.1\"]}]}",
             accept_unknown ? "true" : "false");
    cr_assert_eq(hr_config_load_string(json, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.dicom.accept_unknown_storage, accept_unknown);
    memset(&srv, 0, sizeof(srv));
    srv.cfg = &cfg;
    a = calloc(1, sizeof(*a));
    rq = calloc(1, sizeof(*rq));
    ac = calloc(1, sizeof(*ac));
    cr_assert(a && rq && ac);
    a->srv = &srv;
    snprintf(a->peer, sizeof(a->peer), "127.0.0.1:4242");
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->peer_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    rq->protocol_version = 1;
    snprintf(rq->called_ae, sizeof(rq->called_ae), "HUREN");
    snprintf(rq->calling_ae, sizeof(rq->calling_ae), "MODALITY");
    snprintf(rq->app_context, sizeof(rq->app_context), "%s", DCM_UID_APP_CONTEXT);
    rq->max_pdu = 16384;
    for (size_t i = 0; i < N_PROPOSED; i++) {
        dcm_pc_rq *p = &rq->pc[rq->n_pc++];
        p->id = (uint8_t)(2 * i + 1);
        snprintf(p->abstract_syntax, sizeof(p->abstract_syntax), "%s", k_proposed[i]);
        p->n_ts = 2;
        snprintf(p->ts[0], sizeof(p->ts[0]), "%s", DCM_TS_EXPLICIT_LE);
        snprintf(p->ts[1], sizeof(p->ts[1]), "%s", DCM_TS_IMPLICIT_LE);
    }
}

static void teardown(void)
{
    free(a);
    free(rq);
    free(ac);
    hr_config_free(&cfg);
}

static int result_of(const char *uid)
{
    for (int i = 0; i < ac->n_pc; i++)
        if (strcmp(k_proposed[(ac->pc[i].id - 1) / 2], uid) == 0)
            return ac->pc[i].result;
    cr_assert_fail("%s not answered", uid);
    return -1;
}

static void check_common(void)
{
    cr_assert_eq(ac->n_pc, (int)N_PROPOSED);
    for (size_t i = 0; i < N_PROPOSED; i++) {
        const char *u = k_proposed[i];
        int refused = strcmp(u, "1.2.840.10008.1.20.1") == 0 ||
                      strcmp(u, "1.2.840.10008.3.1.2.3.3") == 0 ||
                      strcmp(u, "1.2.840.10008.5.1.1.9") == 0;
        if (strcmp(u, PRIVATE_CLASS) == 0)
            continue;
        cr_assert_eq(result_of(u), refused ? DCM_PC_ABSTRACT_UNSUPPORTED : DCM_PC_ACCEPT, "%s", u);
    }
}

static void setup_on(void)
{
    setup_with(1);
}

static void setup_off(void)
{
    setup_with(0);
}

Test(negotiate, storage_classes_and_private_accepted, .init = setup_on, .fini = teardown)
{
    uint8_t rj[3];
    cr_assert_eq(gw__negotiate(a, rq, ac, rj), 0);
    check_common();
    cr_assert_eq(result_of(PRIVATE_CLASS), DCM_PC_ACCEPT);
    for (int i = 0; i < a->n_pcs; i++)
        if (strcmp(a->pcs[i].abstract_syntax, PRIVATE_CLASS) == 0)
            cr_assert(a->pcs[i].accepted && strcmp(a->pcs[i].ts, DCM_TS_EXPLICIT_LE) == 0);
}

Test(negotiate, private_refused_when_switched_off, .init = setup_off, .fini = teardown)
{
    uint8_t rj[3];
    cr_assert_eq(gw__negotiate(a, rq, ac, rj), 0);
    check_common();
    cr_assert_eq(result_of(PRIVATE_CLASS), DCM_PC_ABSTRACT_UNSUPPORTED);
}

/* getscu: role selection items asking to be SCP for the classes it retrieves */
static void add_roles(void)
{
    static const char *const k[] = {"1.2.840.10008.5.1.4.1.1.66.4", PRIVATE_CLASS,
                                    "1.2.840.10008.1.20.1"};
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        dcm_role *r = &rq->roles[rq->n_roles++];
        snprintf(r->sop_class, sizeof(r->sop_class), "%s", k[i]);
        r->scu = 0;
        r->scp = 1;
    }
}

static int scp_role(const char *uid)
{
    for (int i = 0; i < ac->n_roles; i++)
        if (strcmp(ac->roles[i].sop_class, uid) == 0)
            return ac->roles[i].scp;
    cr_assert_fail("no role answer for %s", uid);
    return -1;
}

static int peer_scp(const char *uid)
{
    for (int i = 0; i < a->n_pcs; i++)
        if (strcmp(a->pcs[i].abstract_syntax, uid) == 0)
            return a->pcs[i].peer_scp;
    return -1;
}

Test(negotiate, get_roles_follow_the_switch_on, .init = setup_on, .fini = teardown)
{
    uint8_t rj[3];
    add_roles();
    cr_assert_eq(gw__negotiate(a, rq, ac, rj), 0);
    cr_assert_eq(ac->n_roles, 3);
    cr_assert_eq(scp_role("1.2.840.10008.5.1.4.1.1.66.4"), 1);
    cr_assert_eq(scp_role(PRIVATE_CLASS), 1);
    cr_assert_eq(scp_role("1.2.840.10008.1.20.1"), 0);
    cr_assert_eq(peer_scp("1.2.840.10008.5.1.4.1.1.66.4"), 1);
    cr_assert_eq(peer_scp(PRIVATE_CLASS), 1);
}

Test(negotiate, get_roles_follow_the_switch_off, .init = setup_off, .fini = teardown)
{
    uint8_t rj[3];
    add_roles();
    cr_assert_eq(gw__negotiate(a, rq, ac, rj), 0);
    cr_assert_eq(scp_role("1.2.840.10008.5.1.4.1.1.66.4"), 1);
    cr_assert_eq(scp_role(PRIVATE_CLASS), 0);
    cr_assert_eq(peer_scp(PRIVATE_CLASS), 0);
}
