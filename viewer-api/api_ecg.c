/* GET /api/v1/ecg/{instance}: one stored waveform object as the ECG
 * waveform JSON (dicom/ecg.h, decision 0038).
 *
 * Who may read it: whoever may retrieve the instance with WADO-RS. The pool
 * step finds the instance's study (hr:ix:sop), then lists it with
 * sto_retrieve_list under the caller's scope, exactly as WADO-RS does: an
 * instance outside the scope is answered like an absent one (404) at the
 * same cost. The read is audited ("ecg") like a WADO-RS retrieve. An
 * instance whose SOP class is not a waveform (1.2.840.10008.5.1.4.1.1.9.*)
 * is 415 without reading its file; a waveform class whose object has no
 * usable Waveform Sequence is 415 too, a malformed or unsupported waveform
 * 422 with the decoder's reason. At most VA_ECG_DECODES decodes run at once
 * in the process (more get 503 with Retry-After), each bounded by
 * DCM_ECG_MAX_INPUT bytes of object and DCM_ECG_MAX_VALUES samples. */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_io.h"
#include "../dicom/ecg.h"
#include "../dicom/uids.h"
#include "../storage/retrieve.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VA_ECG_DECODES     2            /* decodes at once per process */
#define VA_ECG_JSON_MAX    (160u << 20) /* JSON of DCM_ECG_MAX_VALUES samples fits */
#define VA_ECG_WAVEFORM    "1.2.840.10008.5.1.4.1.1.9." /* waveform storage classes */
#define VA_ECG_RETRY_AFTER "1"

static atomic_int g_decodes;

typedef struct ecg_state {
    char sop[STO_UID_BUF];
    char study[STO_UID_BUF];
    char sop_class[STO_UID_BUF];
    char patient[192];
    char why[256]; /* decoder's reason (422), or audit detail */
    int rc;        /* 0, HR_ENOTFOUND, HR_EMISMATCH (not a waveform: 415 unless bad), ... */
    int denied;    /* outside the scope (audit) */
    int bad;       /* 422: the waveform cannot be decoded (rc says why) */
    hr_buf json;
} ecg_state;

static void ecg_state_free(ecg_state *st)
{
    if (st) {
        hr_buf_free(&st->json);
        free(st);
    }
}

/* Reads and decodes the object at path into st->json. */
static int decode_file(ecg_state *st, const char *path)
{
    unsigned char *p = NULL;
    size_t n = 0;
    dcm_ecg *e = NULL;
    int rc;

    if (atomic_fetch_add(&g_decodes, 1) >= VA_ECG_DECODES) {
        atomic_fetch_sub(&g_decodes, 1);
        return -EAGAIN;
    }
    rc = hr_read_file(path, DCM_ECG_MAX_INPUT, &p, &n);
    if (rc == HR_ETOOBIG) {
        snprintf(st->why, sizeof(st->why), "the object is larger than %u bytes", DCM_ECG_MAX_INPUT);
        st->bad = 1;
        goto out;
    }
    if (rc)
        goto out;
    rc = dcm_ecg_decode(p, n, &e, st->why, sizeof(st->why));
    free(p);
    p = NULL;
    if (rc == HR_ENOTFOUND) {
        rc = HR_EMISMATCH; /* a waveform class without a Waveform Sequence: not a waveform */
        goto out;
    }
    if (rc && rc != -ENOMEM) {
        st->bad = 1;
        goto out;
    }
    if (rc)
        goto out;
    hr_buf_init(&st->json, VA_ECG_JSON_MAX);
    rc = dcm_ecg_to_json(e, &st->json);
out:
    atomic_fetch_sub(&g_decodes, 1);
    dcm_ecg_free(e);
    free(p);
    return rc;
}

static void ecg_work(va_req *r, redisContext *c)
{
    ecg_state *st = r->state;
    char path[HR_PATH_MAX];
    sto_rlist list;
    int rc;

    memset(&list, 0, sizeof(list));
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    rc = sto_retrieve_study_of(c, st->sop, st->study);
    if (rc)
        goto out;
    rc = sto_retrieve_list(c, &r->scope, st->study, NULL, st->sop, 1, &list);
    if (rc == HR_EFORBIDDEN) {
        st->denied = 1;
        rc = HR_ENOTFOUND; /* outside the scope: answered like an absent instance */
        goto out;
    }
    if (rc == 0 && list.n != 1)
        rc = HR_ENOTFOUND;
    if (rc)
        goto out;
    snprintf(st->patient, sizeof(st->patient), "%s", list.patient);
    snprintf(st->sop_class, sizeof(st->sop_class), "%s", list.v[0].sop_class);
    if (strncmp(list.v[0].sop_class, VA_ECG_WAVEFORM, strlen(VA_ECG_WAVEFORM)) != 0) {
        rc = HR_EMISMATCH;
        goto out;
    }
    sto_objstore_path(&r->srv->sto->store, list.v[0].sha, path);
    rc = decode_file(st, path);
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    st->rc = rc;
    sto_rlist_free(&list);
}

static void ecg_done(va_req *r)
{
    ecg_state *st = r->state;
    char detail[384];
    const char *outcome;

    r->state = NULL;
    if (va_req_gone(r)) {
        ecg_state_free(st);
        return;
    }
    snprintf(detail, sizeof(detail), "sop %s%s%s%s%s", st->sop, st->sop_class[0] ? " class " : "",
             st->sop_class, st->why[0] ? "; " : "", st->why);
    outcome = st->rc == 0              ? "success"
              : st->denied             ? "denied"
              : st->rc == HR_ENOTFOUND ? "not-found"
                                       : "failure";
    va_audit(r, "ecg", st->patient[0] ? st->patient : NULL, st->study[0] ? st->study : NULL, detail,
             outcome);
    if (st->rc == 0) {
        va_send(r, 200, "application/json", (const char *)st->json.data, st->json.len);
    } else if (st->rc == HR_ENOTFOUND) {
        va_send_error(r, 404, "not_found", "no such instance");
    } else if (st->bad) { /* before HR_EMISMATCH: the decoder's mismatches are 422 */
        va_send_error(r, 422, "bad_waveform", "%s", st->why[0] ? st->why : hr_strerror(st->rc));
    } else if (st->rc == HR_EMISMATCH) {
        va_send_error(r, 415, "not_waveform", "instance of SOP class %s is not a waveform",
                      st->sop_class[0] ? st->sop_class : "?");
    } else if (st->rc == -EAGAIN) {
        va_add_header(r, "Retry-After", VA_ECG_RETRY_AFTER);
        va_send_error(r, 503, "busy", "waveforms are being decoded; retry");
    } else {
        va_send_rc(r, st->rc, "ecg");
    }
    ecg_state_free(st);
}

void va_handle_ecg(va_req *r)
{
    ecg_state *st;

    if (!dcm_uid_valid(r->segs[0])) {
        va_send_error(r, 400, "bad_uid", "\"%.64s\" is not a valid DICOM UID", r->segs[0]);
        return;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    snprintf(st->sop, sizeof(st->sop), "%s", r->segs[0]);
    r->state = st;
    /* decodes (up to 64 MiB in, 160 MiB of JSON out) run on the render pool,
     * never on the pool that makes ingest durable */
    if (va_req_run_on(r, r->srv->render_pool, ecg_work, ecg_done)) {
        r->state = NULL;
        ecg_state_free(st);
        va_add_header(r, "Retry-After", "5");
        va_send_error(r, 503, "busy", "waveforms are being decoded; retry");
    }
}
