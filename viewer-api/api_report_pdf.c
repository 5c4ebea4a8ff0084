/* GET /api/v1/reports/{id}/versions/{n}/pdf: one signed version as the
 * Chinese report page (reports/render_pdf.h, decision 0025).
 *
 * Who may read it: whoever may read the report's signed versions
 * (va_report_access, the rule of GET /api/v1/reports/{id}); anyone else gets
 * the 404 of an absent report. The pool step reads the version, then the
 * cache <data_dir>/rendered/<digest>-<key>.pdf (digest: the version's JWS
 * SHA-256; key: 16 hex of the SHA-256 of the verification URL printed on
 * it), else renders, at most VA_PDF_RENDERS at once in the process (more get
 * 503 with Retry-After), and stores the file (tmp + rename). A version never
 * changes, so a cached file never goes stale. The verification URL is
 * "<base>/verify?report=<id>&v=<n>&d=<16 hex of the digest>", base from the
 * request's Host (va_base_url). */
#include "va.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_io.h"
#include "../common/hr_log.h"
#include "../reports/render_pdf.h"
#include "../reports/report.h"
#include "../storage/index.h"
#include "../worklist/worklist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VA_PDF_RENDERS     2 /* renders at once per process */
#define VA_PDF_RETRY_AFTER "2"

static atomic_int g_renders; /* renders running now */

typedef struct pstate {
    char id[RPT_ID_MAX];
    char study[HR_UID_MAX];
    int k;
    char url[RPT_RENDER_URL_MAX + 1]; /* the verification URL */
    char patient[192];
    int have_patient;
    int cached; /* answered from the cache */
    int rc;
    unsigned char *pdf; /* the answer (malloc'd) */
    size_t len;
} pstate;

static void pstate_free(pstate *st)
{
    if (st) {
        free(st->pdf);
        free(st);
    }
}

/* <data_dir>/rendered/<digest>-<16 hex of SHA-256(url)>.pdf */
static int cache_path(const hr_config *cfg, const char *digest, const char *url, char *out,
                      size_t cap)
{
    hr_sha256 *h = hr_sha256_new();
    char hex[65];
    if (!h)
        return -ENOMEM;
    hr_sha256_update(h, url, strlen(url));
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
    if ((size_t)snprintf(out, cap, "%s/rendered/%s-%.16s.pdf", cfg->data_dir, digest, hex) >= cap)
        return HR_ETOOBIG;
    return 0;
}

int va__report_pdf(const hr_config *cfg, const rpt_version *v, const char *url, unsigned char **pdf,
                   size_t *len, int *cached)
{
    char path[HR_PATH_MAX + 128];
    rpt_render_in in = {.payload = v->payload, .digest = v->digest, .verify_url = url};
    hr_buf out;
    int rc;

    *pdf = NULL;
    *len = 0;
    *cached = 0;
    rc = cache_path(cfg, v->digest, url, path, sizeof(path));
    if (rc)
        return rc;
    rc = hr_read_file(path, RPT_RENDER_OUT_MAX, pdf, len);
    if (rc == 0) {
        *cached = 1;
        return 0;
    }
    if (atomic_fetch_add(&g_renders, 1) >= VA_PDF_RENDERS) {
        atomic_fetch_sub(&g_renders, 1);
        return -EAGAIN;
    }
    hr_buf_init(&out, RPT_RENDER_OUT_MAX);
    rc = rpt_render_pdf(cfg, &in, &out, NULL);
    atomic_fetch_sub(&g_renders, 1);
    if (rc) {
        hr_buf_free(&out);
        return rc;
    }
    va__cache_store(cfg, path, out.data, out.len, "report pdf");
    *pdf = out.data; /* the buffer's storage becomes the answer */
    *len = out.len;
    return 0;
}

/* The version's PDF: from the cache or rendered (one of VA_PDF_RENDERS). */
static int pdf_of(const hr_config *cfg, pstate *st, const rpt_version *v)
{
    return va__report_pdf(cfg, v, st->url, &st->pdf, &st->len, &st->cached);
}

static void pdf_work(va_req *r, redisContext *c)
{
    pstate *st = r->state;
    rpt_info info;
    rpt_version v;
    wl_item *it = NULL;
    int rc;

    memset(&info, 0, sizeof(info));
    memset(&v, 0, sizeof(v));
    if (!c) {
        st->rc = HR_EREDIS;
        return;
    }
    rc = rpt_get(c, st->id, &info);
    if (rc)
        goto out;
    it = malloc(sizeof(*it));
    if (!it) {
        rc = -ENOMEM;
        goto out;
    }
    if (wl_get(c, info.study, it) == 0) {
        snprintf(st->patient, sizeof(st->patient), "%s", it->patient);
        st->have_patient = 1;
    }
    /* signed versions only: VA_RPT_SIGNED suffices */
    if (va_report_access(r, c, info.study, info.center, info.hospital) == VA_RPT_NONE ||
        st->k > info.versions) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    rc = rpt_version_get(c, st->id, st->k, &v);
    if (rc)
        goto out;
    /* the URL's digest prefix: appended here, the base came from the loop */
    if (strlen(st->url) + 32 > sizeof(st->url)) {
        rc = HR_ETOOBIG;
        goto out;
    }
    snprintf(st->url + strlen(st->url), sizeof(st->url) - strlen(st->url), "%.16s", v.digest);
    rc = pdf_of(r->srv->cfg, st, &v);
out:
    if (rc == HR_EREDIS)
        sto_worker_redis_failed();
    st->rc = rc;
    free(it);
    rpt_version_free(&v);
    rpt_info_free(&info);
}

static void pdf_done(va_req *r)
{
    pstate *st = r->state;
    char detail[192];

    r->state = NULL;
    snprintf(detail, sizeof(detail), "report=%s version=%d", st->id, st->k);
    if (va_req_gone(r)) {
        /* nothing to answer */
    } else if (st->rc == -EAGAIN) {
        va_add_header(r, "Retry-After", VA_PDF_RETRY_AFTER);
        va_send_error(r, 503, "busy", "reports are being rendered; retry");
    } else if (st->rc) {
        va_audit(r, "report-pdf", st->have_patient ? st->patient : NULL, st->study, detail,
                 st->rc == HR_ENOTFOUND ? "denied" : "failure");
        if (st->rc == HR_ETOOBIG)
            va_send_error(r, 422, "not_renderable",
                          "the report does not fit %d pages; read its JWS", RPT_RENDER_PAGES_MAX);
        else
            va_send_rc(r, st->rc, "report version");
    } else {
        char name[160];
        va_audit(r, "report-pdf", st->have_patient ? st->patient : NULL, st->study, detail,
                 "success");
        snprintf(name, sizeof(name), "inline; filename=\"%s-v%d.pdf\"", st->id, st->k);
        va_add_header(r, "Content-Disposition", name);
        va_add_header(r, "X-Huren-Cache", st->cached ? "hit" : "miss");
        va_send(r, 200, "application/pdf", (const char *)st->pdf, st->len);
    }
    pstate_free(st);
}

void va_handle_report_pdf(va_req *r)
{
    pstate *st = calloc(1, sizeof(*st));
    char base[512], *end;
    long k;
    int n;

    if (!st) {
        va_send_error(r, 500, "internal", "out of memory");
        return;
    }
    if (rpt_id_parse(r->segs[0], &n, st->study)) {
        pstate_free(st);
        va_send_error(r, 404, "not_found", "no report \"%.96s\"", r->segs[0]);
        return;
    }
    snprintf(st->id, sizeof(st->id), "%s", r->segs[0]);
    k = strtol(r->segs[1], &end, 10);
    if (!r->segs[1][0] || *end || k < 1 || k > RPT_VERSIONS_MAX) {
        pstate_free(st);
        va_send_error(r, 404, "not_found", "no such version");
        return;
    }
    st->k = (int)k;
    va_base_url(r, base, sizeof(base));
    /* the id is a report id (digits, '-', '.', 'r'): nothing to escape */
    snprintf(st->url, sizeof(st->url), "%s/verify?report=%s&v=%d&d=", base, st->id, st->k);
    r->state = st;
    va_req_run(r, pdf_work, pdf_done);
}
