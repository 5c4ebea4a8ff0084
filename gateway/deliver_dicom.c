/* The DICOM channel of the report sender (deliver.h): a Basic Text SR and/or
 * an Encapsulated PDF of the signed version, in the exam's study, written by
 * DCMTK on the pool (reports/report_objects.h, reports/render_pdf.h) and sent by
 * C-STORE over one association (scu.h, xfer.h) on the loop. */
#include "deliver.h"
#include "scu.h"
#include "xfer.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../dicom/uids.h"
#include "../reports/render_pdf.h"
#include "../reports/report_objects.h"
#include "../storage/index.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SOP_BASIC_TEXT_SR "1.2.840.10008.5.1.4.1.1.88.11"
#define SOP_ENC_PDF       "1.2.840.10008.5.1.4.1.1.104.1"

typedef struct dlv_file {
    char path[STO_PATH_MAX];
    char sop_class[DCM_UID_BUF];
    char sop_uid[RPT_OBJ_UID_MAX];
} dlv_file;

struct gw__dlv_dicom {
    int n;
    dlv_file f[2];
    /* sending */
    uv_loop_t *loop;
    gw_scu *scu;
    gw_xfer xfer;
    int xfer_init;
    uv_timer_t timer;
    int timer_open;
    char peer[HR_AE_MAX + HR_NAME_MAX + 16];
    int idx; /* file being sent */
    int waiting_rsp, early_rsp, associated, ended;
    uint16_t early_status, msg_id;
    int ok;
    char detail[RPT_DLV_DETAIL_MAX];
    void (*done)(void *, int, const char *);
    void *arg;
};

/* ---- building (pool) ---- */

static int temp_path(const char *tmp_dir, const char *kind, char *out)
{
    unsigned char b[8];
    char hex[17];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return -EIO;
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    snprintf(out, STO_PATH_MAX, "%s/dlv-%s-%s.dcm", tmp_dir, kind, hex);
    return 0;
}

int gw__dlv_dicom_prepare(const hr_config *cfg, const char *tmp_dir, redisContext *c,
                          const rpt_version *v, const dlv_hospital *h, const char *verify_url,
                          gw__dlv_dicom **out, char *why, size_t cap)
{
    rpt_obj_ref *refs = NULL;
    size_t n_refs = 0;
    hr_buf pdf;
    hr_buf_init(&pdf, RPT_RENDER_OUT_MAX);
    *out = NULL;
    int rc = 0;
    gw__dlv_dicom *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    if (h->dicom.what & DLV_WHAT_SR) {
        dlv_file *f = &x->f[x->n];
        rc = rpt_obj_uids(v->report, v->version, RPT_OBJ_SR, NULL, f->sop_uid);
        if (!rc)
            rc = rpt_obj_evidence(c, v->payload, &refs, &n_refs);
        if (rc == HR_ETOOBIG) { /* more instances than an SR cites: none cited */
            n_refs = 0;
            rc = 0;
        }
        if (!rc)
            rc = temp_path(tmp_dir, "sr", f->path);
        if (!rc)
            rc = rpt_obj_write_sr(cfg, v->payload, refs, n_refs, f->path);
        if (rc) {
            snprintf(why, cap, "cannot write the SR: %s", hr_strerror(rc));
            goto out;
        }
        snprintf(f->sop_class, sizeof(f->sop_class), "%s", SOP_BASIC_TEXT_SR);
        x->n++;
    }
    if (h->dicom.what & DLV_WHAT_PDF) {
        dlv_file *f = &x->f[x->n];
        rpt_render_in in = {.payload = v->payload, .digest = v->digest, .verify_url = verify_url};
        rc = rpt_obj_uids(v->report, v->version, RPT_OBJ_PDF, NULL, f->sop_uid);
        if (!rc)
            rc = rpt_render_pdf(cfg, &in, &pdf, NULL);
        if (rc) {
            snprintf(why, cap, "cannot render the PDF: %s", hr_strerror(rc));
            goto out;
        }
        rc = temp_path(tmp_dir, "pdf", f->path);
        if (!rc)
            rc = rpt_obj_write_pdf(cfg, v->payload, pdf.data, pdf.len, f->path);
        if (rc) {
            snprintf(why, cap, "cannot write the PDF object: %s", hr_strerror(rc));
            goto out;
        }
        snprintf(f->sop_class, sizeof(f->sop_class), "%s", SOP_ENC_PDF);
        x->n++;
    }
out:
    free(refs);
    hr_buf_free(&pdf);
    if (rc) {
        if (rc == HR_EREDIS)
            sto_worker_redis_failed();
        gw__dlv_dicom_cleanup(x);
        return rc;
    }
    *out = x;
    return 0;
}

void gw__dlv_dicom_cleanup(gw__dlv_dicom *x)
{
    if (!x)
        return;
    for (int i = 0; i < 2; i++)
        if (x->f[i].path[0])
            unlink(x->f[i].path);
    if (x->xfer_init)
        gw_xfer_free(&x->xfer);
    free(x);
}

/* ---- sending (loop) ---- */

static void end(gw__dlv_dicom *x, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The outcome is decided: release or abort; done runs once the SCU and the
 * timer are closed. */
static void end(gw__dlv_dicom *x, int ok, const char *fmt, ...)
{
    if (x->ended)
        return;
    x->ended = 1;
    x->ok = ok;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
    va_end(ap);
    if (gw_xfer_running(&x->xfer))
        gw_xfer_stop(&x->xfer);
    if (x->scu) {
        if (ok)
            gw_scu_release(x->scu);
        else
            gw_scu_abort(x->scu);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    gw__dlv_dicom *x = h->data;
    x->timer_open = 0;
    x->done(x->arg, x->ok, x->detail);
}

/* Everything closed? Then done (after the timer's close). */
static void maybe_done(gw__dlv_dicom *x)
{
    if (!x->ended || x->scu || gw_xfer_running(&x->xfer) || !x->timer_open)
        return;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

static void send_next(gw__dlv_dicom *x);

static int store_ok(uint16_t status)
{
    return status == DCM_STATUS_SUCCESS || (status & 0xF000) == 0xB000 || status == 0x0001;
}

static void stored(gw__dlv_dicom *x, uint16_t status)
{
    x->waiting_rsp = x->early_rsp = 0;
    gw_scu_busy(x->scu, 0);
    if (!store_ok(status)) {
        end(x, 0, "C-STORE of %s to %s answered %04X", x->f[x->idx].sop_class, x->peer, status);
        return;
    }
    x->idx++;
    send_next(x);
}

static void on_xfer_done(void *arg, int rc, int wrote)
{
    gw__dlv_dicom *x = arg;
    if (x->ended) {
        maybe_done(x);
        return;
    }
    if (rc) {
        end(x, 0, "sending to %s: %s", x->peer, hr_strerror(rc));
        maybe_done(x);
        return;
    }
    x->waiting_rsp = 1;
    if (x->early_rsp)
        stored(x, x->early_status);
}

static void on_xfer_progress(void *arg)
{
    gw__dlv_dicom *x = arg;
    if (x->scu)
        gw_scu_busy(x->scu, 1);
}

static void send_next(gw__dlv_dicom *x)
{
    if (x->idx >= x->n) {
        char what[64];
        snprintf(what, sizeof(what), "%d object%s", x->n, x->n == 1 ? "" : "s");
        end(x, 1, "%s stored on %s (%s)", what, x->peer,
            x->n == 2                                ? "SR and PDF"
            : strcmp(x->f[0].sop_class, SOP_ENC_PDF) ? "SR"
                                                     : "PDF");
        return;
    }
    const dlv_file *f = &x->f[x->idx];
    int n;
    const gw_scu_pc *pc = gw_scu_pcs(x->scu, &n);
    uint8_t id = 0;
    const char *target = NULL;
    for (int i = 0; i < n && !id; i++) {
        if (pc[i].result != DCM_PC_ACCEPT || strcmp(pc[i].abstract_syntax, f->sop_class))
            continue;
        id = pc[i].id;
        target = strcmp(pc[i].accepted_ts, DCM_TS_EXPLICIT_LE) == 0 ? NULL : DCM_TS_IMPLICIT_LE;
    }
    if (!id) {
        end(x, 0, "%s did not accept %s", x->peer, f->sop_class);
        return;
    }
    dcm_command c;
    memset(&c, 0, sizeof(c));
    c.command_field = DCM_C_STORE_RQ;
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY;
    c.message_id = ++x->msg_id;
    c.data_set_type = 0x0102;
    snprintf(c.affected_sop_class, sizeof(c.affected_sop_class), "%s", f->sop_class);
    snprintf(c.affected_sop_instance, sizeof(c.affected_sop_instance), "%s", f->sop_uid);
    char tmp_dir[STO_PATH_MAX];
    snprintf(tmp_dir, sizeof(tmp_dir), "%s", f->path);
    char *slash = strrchr(tmp_dir, '/');
    if (slash)
        *slash = '\0';
    int rc = gw_xfer_start(&x->xfer, gw_scu_stream(x->scu), gw_scu_peer_max_pdu(x->scu), id, &c,
                           f->path, target, tmp_dir, on_xfer_done, on_xfer_progress, x);
    if (rc) {
        end(x, 0, "cannot send to %s: %s", x->peer, hr_strerror(rc));
        return;
    }
    gw_scu_busy(x->scu, 1);
}

static void scu_associated(void *arg, int rc, const char *why)
{
    gw__dlv_dicom *x = arg;
    if (x->ended)
        return;
    if (rc) {
        end(x, 0, "association with %s: %s", x->peer, why);
        return;
    }
    x->associated = 1;
    send_next(x);
}

static void scu_command(void *arg, const dcm_command *c, uint8_t pc_id)
{
    gw__dlv_dicom *x = arg;
    if (x->ended)
        return;
    if (c->command_field != DCM_C_STORE_RSP || c->message_id_responded != x->msg_id) {
        end(x, 0, "%s sent an unexpected command %04X", x->peer, c->command_field);
        return;
    }
    if (!x->waiting_rsp) {
        x->early_rsp = 1; /* before our last write completed */
        x->early_status = c->status;
        return;
    }
    stored(x, c->status);
}

static void scu_lost(void *arg, const char *why)
{
    gw__dlv_dicom *x = arg;
    end(x, 0, "%s: %s", x->peer, why);
}

static void scu_closed(void *arg)
{
    gw__dlv_dicom *x = arg;
    x->scu = NULL;
    if (!x->ended)
        end(x, 0, "%s: association closed", x->peer);
    maybe_done(x);
}

static void on_timeout(uv_timer_t *t)
{
    gw__dlv_dicom *x = t->data;
    end(x, 0, "%s: no result within the timeout", x->peer);
    maybe_done(x);
}

int gw__dlv_dicom_send(uv_loop_t *loop, const hr_config *cfg, gw__dlv_dicom *x,
                       const dlv_hospital *h, int timeout_ms,
                       void (*done)(void *arg, int ok, const char *detail), void *arg)
{
    const hr_hospital *owner = NULL;
    const hr_destination *dest = hr_config_destination(cfg, h->dicom.ae_title, &owner);
    if (!dest)
        return HR_ENOTFOUND;
    gw_scu_pc pcs[2];
    memset(pcs, 0, sizeof(pcs));
    for (int i = 0; i < x->n; i++) {
        snprintf(pcs[i].abstract_syntax, sizeof(pcs[i].abstract_syntax), "%s", x->f[i].sop_class);
        pcs[i].n_ts = 2;
        snprintf(pcs[i].ts[0], sizeof(pcs[i].ts[0]), "%s", DCM_TS_EXPLICIT_LE);
        snprintf(pcs[i].ts[1], sizeof(pcs[i].ts[1]), "%s", DCM_TS_IMPLICIT_LE);
    }
    x->loop = loop;
    x->done = done;
    x->arg = arg;
    snprintf(x->peer, sizeof(x->peer), "%s@%s:%d", dest->ae_title, dest->host, dest->port);
    gw_xfer_init(&x->xfer, loop);
    x->xfer_init = 1;
    uv_timer_init(loop, &x->timer);
    x->timer.data = x;
    x->timer_open = 1;
    uv_timer_start(&x->timer, on_timeout, (uint64_t)timeout_ms, 0);
    gw_scu_params p = {
        .host = dest->host,
        .port = dest->port,
        .calling_ae = cfg->dicom.ae_title,
        .called_ae = dest->ae_title,
        .max_pdu = cfg->dicom.max_pdu,
        .connect_timeout_ms = cfg->dicom.artim_timeout_s * 1000,
        .progress_timeout_ms = cfg->dicom.idle_timeout_s * 1000,
        .n_pc = x->n,
        .pc = pcs,
    };
    gw_scu_cbs cbs = {scu_associated, scu_command, scu_lost, scu_closed};
    int rc = gw_scu_open(loop, &p, &cbs, x, &x->scu);
    if (rc) {
        x->scu = NULL;
        end(x, 0, "cannot open an association with %s: %s", x->peer, hr_strerror(rc));
        maybe_done(x);
    }
    return 0;
}

void gw__dlv_dicom_cancel(gw__dlv_dicom *x)
{
    end(x, 0, "cancelled (huren is stopping)");
    maybe_done(x);
}

int gw__dlv_dicom_busy(const gw__dlv_dicom *x)
{
    return x->timer_open;
}
