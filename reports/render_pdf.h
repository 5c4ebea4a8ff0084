/* The human-readable report: one signed version rendered as an A4 Chinese PDF
 * with cairo (PDF surface written to memory) and pango (layout, wrapping,
 * pagination) in the font "Noto Sans CJK SC" (Debian fonts-noto-cjk), and a
 * QR code of the verification URL (libqrencode, drawn as rectangles). Layout,
 * labels and bounds: decision 0025.
 *
 * Thread-safety: rpt_render_pdf may run on several threads at once. Each
 * call owns its cairo surface, cairo context and pango context; the pango
 * context uses pango_cairo_font_map_get_default(), which is per thread since
 * pango 1.32.6 (a thread never shares pango objects with another), and
 * fontconfig is initialized once (pthread_once) before the first layout.
 * libqrencode is built thread-safe on Debian (pthread). Blocking and CPU-bound
 * (tens of milliseconds): run it on the thread pool, never on the loop. */
#ifndef RPT_RENDER_PDF_H
#define RPT_RENDER_PDF_H

#include "../common/hr_buf.h"
#include "../common/hr_config.h"

#include <jansson.h>

#define RPT_RENDER_TEXT_MAX  (64u << 10) /* bytes of findings, of impression */
#define RPT_RENDER_FIELD_MAX 1024        /* bytes of any other text field */
#define RPT_RENDER_URL_MAX   1024        /* bytes of verify_url */
#define RPT_RENDER_ITEMS_MAX 32          /* recognition items, signers */
#define RPT_RENDER_PAGES_MAX 20          /* pages of one report */
#define RPT_RENDER_OUT_MAX   (16u << 20) /* bytes of the PDF */
#define RPT_RENDER_FONT      "Noto Sans CJK SC"

/* What one rendering shows besides the payload. */
typedef struct rpt_render_in {
    const json_t *payload;  /* the signed payload of the version (decision 0022); borrowed */
    const char *digest;     /* SHA-256 hex of the version's compact JWS (rpt_version.digest) */
    const char *verify_url; /* printed and encoded as the QR code; NULL or "": neither */
    int superseded_by;      /* the newer version that supersedes this one, 0 when none */
} rpt_render_in;

/* Renders in->payload into out (appended; out's cap bounds the PDF, at most
 * RPT_RENDER_OUT_MAX is written); *pages (may be NULL) receives the page
 * count. cfg (may be NULL) names the hospital that
 * runs the reading center and the signers' hospitals and centers; ids are
 * shown when it is NULL or does not know them. 0; -EINVAL (payload not of
 * schema 1: a required member is missing or of the wrong type); HR_ETOOBIG
 * (a text over its cap, more than RPT_RENDER_ITEMS_MAX items, more than
 * RPT_RENDER_PAGES_MAX pages, or the PDF over the cap); HR_EUNSUP (the font
 * RPT_RENDER_FONT is not installed); -ENOMEM; -EIO (cairo failed). On error
 * out may hold a partial PDF: the caller resets it. */
int rpt_render_pdf(const hr_config *cfg, const rpt_render_in *in, hr_buf *out, int *pages);

/* The Chinese label of a payload status ("final" -> "正式报告"; amended
 * "修订报告", corrected "更正报告", entered-in-error "已撤回"); an unknown
 * status is returned as it is. Static storage. */
const char *rpt_render_status_label(const char *status);

/* Internal to reports/: a payload time "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC) as
 * Beijing time (UTC+8, the time every report shows). 0 or -EINVAL. */
struct tm;
int rpt__beijing_time(const char *iso, struct tm *out);

#endif
