/* The report as an A4 PDF (render_pdf.h, decision 0025). The page is laid out
 * twice with the same code: a first pass only measures and counts pages (so
 * each footer can say "page n of m"), the second draws. */
#include "render_pdf.h"

#include "../common/hr_err.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <pthread.h>
#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_W      595.276 /* A4 in points */
#define PAGE_H      841.890
#define MARGIN_X    56.0
#define MARGIN_TOP  44.0
#define FOOTER_Y    (PAGE_H - 36.0)
#define BODY_BOTTOM (PAGE_H - 60.0)
#define BODY_W      (PAGE_W - 2 * MARGIN_X)
#define QR_SIZE     86.0
#define TZ_OFFSET_S (8 * 3600) /* times are shown in Beijing time (UTC+8) */
#define TEXT_INDENT 10.0
#define LINE_GAP    1.35 /* line spacing factor of paragraphs */
#define DIGEST_HEX  64

/* ---- the payload, checked and bounded ---- */

typedef struct rec_item {
    const char *item, *name, *mark, *scope, *valid_until;
} rec_item;

typedef struct signer {
    const char *user, *name, *role, *center, *hospital, *signed_at;
    char name_buf[RPT_RENDER_FIELD_MAX + 1]; /* name as read (fmt_pn) */
} signer;

typedef struct doc {
    const char *id, *status;
    long long version;
    long long supersedes_version; /* 0: none */
    const char *supersedes_digest;
    const char *study_uid, *accession, *hospital, *hospital_name, *modality, *procedure,
        *study_date, *center, *center_name;
    const char *pt_id, *pt_name, *pt_sex, *pt_birth;
    char pt_name_buf[RPT_RENDER_FIELD_MAX + 1]; /* pt_name as read (fmt_pn) */
    const char *findings, *impression;
    int critical;
    long long image_count;
    const char *images_digest;
    const char *signed_at;
    size_t n_rec;
    rec_item rec[RPT_RENDER_ITEMS_MAX];
    size_t n_sig;
    signer sig[RPT_RENDER_ITEMS_MAX];
    /* from the configuration */
    const char *title;    /* the hospital running the center */
    const char *subtitle; /* "<center name>" */
    const char *kind;     /* "影像诊断报告", ... */
} doc;

/* obj[key] as a string of at most cap bytes into *out; absent or null: "". */
static int get_str(const json_t *obj, const char *key, size_t cap, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = "";
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -EINVAL;
    if (json_string_length(v) > cap)
        return HR_ETOOBIG;
    *out = json_string_value(v);
    return 0;
}

static int get_int(const json_t *obj, const char *key, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return -EINVAL;
    *out = json_integer_value(v);
    return 0;
}

static void fmt_pn(const char *pn, char *out, size_t cap);

#define F RPT_RENDER_FIELD_MAX

static int read_doc(const json_t *p, doc *d)
{
    int rc;
    const char *typ;
    long long schema;
    json_t *rep, *exam, *pt, *content, *images, *sup, *arr, *crit;
    size_t i;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(p))
        return -EINVAL;
    rc = get_str(p, "typ", F, &typ);
    if (rc || strcmp(typ, "huren-report") != 0)
        return -EINVAL;
    rc = get_int(p, "schema", &schema);
    if (rc || schema != 1)
        return -EINVAL;
    rep = json_object_get(p, "report");
    exam = json_object_get(p, "exam");
    pt = json_object_get(p, "patient");
    content = json_object_get(p, "content");
    images = json_object_get(p, "images");
    if (!json_is_object(rep) || !json_is_object(exam) || !json_is_object(pt) ||
        !json_is_object(content))
        return -EINVAL;
    if ((rc = get_str(rep, "id", F, &d->id)) || (rc = get_int(rep, "version", &d->version)) ||
        (rc = get_str(rep, "status", F, &d->status)))
        return rc;
    if (!d->id[0] || !d->status[0] || d->version < 1 || d->version > 1000000)
        return -EINVAL;
    sup = json_object_get(rep, "supersedes");
    if (json_is_object(sup)) {
        if ((rc = get_int(sup, "version", &d->supersedes_version)) ||
            (rc = get_str(sup, "digest", F, &d->supersedes_digest)))
            return rc;
    } else if (sup && !json_is_null(sup)) {
        return -EINVAL;
    }
    if ((rc = get_str(exam, "study_uid", F, &d->study_uid)) ||
        (rc = get_str(exam, "accession", F, &d->accession)) ||
        (rc = get_str(exam, "hospital", F, &d->hospital)) ||
        (rc = get_str(exam, "hospital_name", F, &d->hospital_name)) ||
        (rc = get_str(exam, "modality", F, &d->modality)) ||
        (rc = get_str(exam, "procedure", F, &d->procedure)) ||
        (rc = get_str(exam, "study_date", F, &d->study_date)) ||
        (rc = get_str(exam, "center", F, &d->center)) ||
        (rc = get_str(exam, "center_name", F, &d->center_name)))
        return rc;
    if ((rc = get_str(pt, "id", F, &d->pt_id)) || (rc = get_str(pt, "name", F, &d->pt_name)) ||
        (rc = get_str(pt, "sex", F, &d->pt_sex)) ||
        (rc = get_str(pt, "birth_date", F, &d->pt_birth)))
        return rc;
    fmt_pn(d->pt_name, d->pt_name_buf, sizeof(d->pt_name_buf));
    d->pt_name = d->pt_name_buf;
    if (!json_object_get(content, "findings") || !json_object_get(content, "impression"))
        return -EINVAL;
    if ((rc = get_str(content, "findings", RPT_RENDER_TEXT_MAX, &d->findings)) ||
        (rc = get_str(content, "impression", RPT_RENDER_TEXT_MAX, &d->impression)))
        return rc;
    crit = json_object_get(content, "critical");
    if (crit && !json_is_boolean(crit))
        return -EINVAL;
    d->critical = json_is_true(crit);
    d->images_digest = "";
    if (json_is_object(images)) {
        if ((rc = get_int(images, "count", &d->image_count)) ||
            (rc = get_str(images, "digest", F, &d->images_digest)))
            return rc;
    }
    if ((rc = get_str(p, "signed_at", F, &d->signed_at)))
        return rc;

    arr = json_object_get(p, "recognition");
    if (arr && !json_is_array(arr) && !json_is_null(arr))
        return -EINVAL;
    if (json_array_size(arr) > RPT_RENDER_ITEMS_MAX)
        return HR_ETOOBIG;
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        rec_item *r = &d->rec[d->n_rec++];
        if (!json_is_object(it))
            return -EINVAL;
        if ((rc = get_str(it, "item", F, &r->item)) || (rc = get_str(it, "name", F, &r->name)) ||
            (rc = get_str(it, "hr_mark", F, &r->mark)) ||
            (rc = get_str(it, "scope", F, &r->scope)) ||
            (rc = get_str(it, "valid_until", F, &r->valid_until)))
            return rc;
    }
    arr = json_object_get(p, "signers");
    if (!json_is_array(arr))
        return -EINVAL;
    if (json_array_size(arr) > RPT_RENDER_ITEMS_MAX)
        return HR_ETOOBIG;
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        signer *s = &d->sig[d->n_sig++];
        if (!json_is_object(it))
            return -EINVAL;
        if ((rc = get_str(it, "user", F, &s->user)) || (rc = get_str(it, "name", F, &s->name)) ||
            (rc = get_str(it, "role", F, &s->role)) ||
            (rc = get_str(it, "center", F, &s->center)) ||
            (rc = get_str(it, "hospital", F, &s->hospital)) ||
            (rc = get_str(it, "signed_at", F, &s->signed_at)))
            return rc;
        fmt_pn(s->name, s->name_buf, sizeof(s->name_buf));
        s->name = s->name_buf;
    }
    return 0;
}

#undef F

/* ---- labels ---- */

const char *rpt_render_status_label(const char *s)
{
    if (!strcmp(s, "preliminary"))
        return "初步报告";
    if (!strcmp(s, "final"))
        return "正式报告";
    if (!strcmp(s, "amended"))
        return "修订报告";
    if (!strcmp(s, "corrected"))
        return "更正报告";
    if (!strcmp(s, "entered-in-error"))
        return "已撤回";
    return s;
}

static const char *sex_label(const char *s)
{
    if (!strcmp(s, "M"))
        return "男";
    if (!strcmp(s, "F"))
        return "女";
    if (!strcmp(s, "O"))
        return "其他";
    return s;
}

static const char *scope_label(const char *s)
{
    if (!strcmp(s, "community"))
        return "医共体内";
    if (!strcmp(s, "city"))
        return "全市";
    if (!strcmp(s, "province"))
        return "全省";
    return s;
}

static const char *role_label(const char *role)
{
    if (!strcmp(role, "reader"))
        return "报告医师";
    if (!strcmp(role, "auditor"))
        return "审核医师";
    return "签名医师";
}

static const char *kind_label(enum hr_center_kind k)
{
    switch (k) {
    case HR_CENTER_IMAGING:
        return "影像诊断报告";
    case HR_CENTER_ECG:
        return "心电诊断报告";
    case HR_CENTER_PATHOLOGY:
        return "病理诊断报告";
    case HR_CENTER_LAB:
        return "检验报告";
    }
    return "诊断报告";
}

/* A DICOM person name as a person reads it (out: cap >= strlen(pn) + 1):
 * the ideographic group when there is one ("Zhao^Liu=赵^六" -> "赵六"),
 * components joined without a separator when non-ASCII (Chinese: family name
 * first), else with spaces ("ZHAO^LIU" -> "ZHAO LIU"). */
static void fmt_pn(const char *pn, char *out, size_t cap)
{
    const char *g = pn, *eq = strchr(pn, '='), *end;
    size_t o = 0;
    int wide = 0;

    if (eq && eq[1] && eq[1] != '=')
        g = eq + 1;
    end = strchr(g, '=');
    if (!end)
        end = g + strlen(g);
    for (const char *p = g; p < end; p++)
        if ((unsigned char)*p >= 0x80)
            wide = 1;
    for (const char *p = g; p < end && o + 1 < cap; p++) {
        if (*p != '^')
            out[o++] = *p;
        else if (!wide && o > 0 && out[o - 1] != ' ')
            out[o++] = ' ';
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* "YYYYMMDD" -> "YYYY-MM-DD"; anything else as it is. */
static void fmt_date(const char *s, char *out, size_t cap)
{
    if (strlen(s) == 8 && strspn(s, "0123456789") == 8)
        snprintf(out, cap, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    else
        snprintf(out, cap, "%s", s);
}

int rpt__beijing_time(const char *iso, struct tm *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    struct tm tm;
    time_t t;

    if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm) + TZ_OFFSET_S;
    return gmtime_r(&t, out) ? 0 : -EINVAL;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC) -> "YYYY-MM-DD HH:MM:SS" in Beijing time. */
static void fmt_time(const char *s, char *out, size_t cap)
{
    struct tm tm;

    if (rpt__beijing_time(s, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(out, cap, "%s", s);
}

/* ---- layout ---- */

enum font_id { FT_TITLE, FT_SUB, FT_HEAD, FT_BODY, FT_CELL, FT_SMALL, FT_MARK, FT_N };

/* One face, the regular weight, at several sizes. Bold is drawn as the text
 * plus its outline stroked (BOLD_STROKE x size wide): a second face (Noto Sans
 * CJK SC Bold) would be subset into every PDF too, and cairo's subsetting of a
 * CJK CFF face is most of a rendering's time (decision 0025). */
#define BOLD_STROKE 0.035
static const struct {
    double size;
    int bold;
} k_fonts[FT_N] = {
    [FT_TITLE] = {18, 1}, [FT_SUB] = {14, 0},  [FT_HEAD] = {12, 1}, [FT_BODY] = {10.5, 0},
    [FT_CELL] = {10, 0},  [FT_SMALL] = {8, 0}, [FT_MARK] = {13, 1},
};
static const char k_bold_key[] = "huren-bold";

typedef struct flow {
    cairo_t *cr;
    PangoContext *pc;
    PangoFontDescription *font[FT_N];
    const doc *d;
    const rpt_render_in *in;
    QRcode *qr;
    int draw;  /* 0: measuring pass */
    int page;  /* current page, 1-based; 0 before the first */
    int pages; /* the total, known in the drawing pass */
    double y;  /* cursor */
} flow;

static void rgb(cairo_t *cr, unsigned hex)
{
    cairo_set_source_rgb(cr, ((hex >> 16) & 255) / 255.0, ((hex >> 8) & 255) / 255.0,
                         (hex & 255) / 255.0);
}

/* A layout of text in font, width points wide (0: no wrapping), at most
 * max_lines lines (0: any; more are cut with an ellipsis). */
static PangoLayout *lay(flow *f, enum font_id ft, const char *text, double width, int max_lines,
                        PangoAlignment align)
{
    PangoLayout *l = pango_layout_new(f->pc);
    pango_layout_set_font_description(l, f->font[ft]);
    if (width > 0) {
        pango_layout_set_width(l, (int)(width * PANGO_SCALE));
        pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    }
    if (max_lines > 0) {
        pango_layout_set_height(l, -max_lines);
        pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
    }
    pango_layout_set_alignment(l, align);
    pango_layout_set_text(l, text, -1);
    if (k_fonts[ft].bold) /* the stroke width in 1/100 pt */
        g_object_set_data(G_OBJECT(l), k_bold_key,
                          GINT_TO_POINTER((int)(k_fonts[ft].size * BOLD_STROKE * 100)));
    return l;
}

/* "label：value" with the label in gray. */
static PangoLayout *lay_pair(flow *f, enum font_id ft, const char *label, const char *value,
                             double width, int max_lines)
{
    char *text = g_strdup_printf("%s：%s", label, value);
    PangoAttrList *al = pango_attr_list_new();
    PangoAttribute *a = pango_attr_foreground_new(0x6000, 0x6000, 0x6000);
    PangoLayout *l;

    a->start_index = 0;
    a->end_index = (guint)(strlen(label) + strlen("："));
    pango_attr_list_insert(al, a);
    l = lay(f, ft, text, width, max_lines, PANGO_ALIGN_LEFT);
    pango_layout_set_attributes(l, al);
    pango_attr_list_unref(al);
    g_free(text);
    return l;
}

/* lay() of a formatted text (no truncation: the parts are bounded). */
static PangoLayout *layf(flow *f, enum font_id ft, double width, int max_lines,
                         PangoAlignment align, const char *fmt, ...) G_GNUC_PRINTF(6, 7);
static PangoLayout *layf(flow *f, enum font_id ft, double width, int max_lines,
                         PangoAlignment align, const char *fmt, ...)
{
    va_list ap;
    char *text;
    PangoLayout *l;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    l = lay(f, ft, text, width, max_lines, align);
    g_free(text);
    return l;
}

static double lay_h(PangoLayout *l)
{
    int w, h;
    pango_layout_get_size(l, &w, &h);
    return h / (double)PANGO_SCALE;
}

static double lay_w(PangoLayout *l)
{
    int w, h;
    pango_layout_get_size(l, &w, &h);
    return w / (double)PANGO_SCALE;
}

/* Draws l at (x, y) in color (drawing pass only); frees l; returns its height. */
static double show(flow *f, PangoLayout *l, double x, double y, unsigned color)
{
    double h = lay_h(l);
    double bold = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(l), k_bold_key)) / 100.0;
    if (f->draw) {
        rgb(f->cr, color);
        cairo_move_to(f->cr, x, y);
        pango_cairo_show_layout(f->cr, l);
        if (bold > 0) { /* synthetic bold: the glyph outlines stroked over the text */
            cairo_move_to(f->cr, x, y);
            pango_cairo_layout_path(f->cr, l);
            cairo_set_line_width(f->cr, bold);
            cairo_stroke(f->cr);
        }
    }
    g_object_unref(l);
    return h;
}

static void hline(flow *f, double y, double width, unsigned color)
{
    if (!f->draw)
        return;
    rgb(f->cr, color);
    cairo_set_line_width(f->cr, width);
    cairo_move_to(f->cr, MARGIN_X, y);
    cairo_line_to(f->cr, PAGE_W - MARGIN_X, y);
    cairo_stroke(f->cr);
}

static void watermark(flow *f)
{
    PangoLayout *l = lay(f, FT_TITLE, "已撤回", 0, 0, PANGO_ALIGN_LEFT);
    PangoFontDescription *big = pango_font_description_copy(f->font[FT_TITLE]);

    pango_font_description_set_size(big, 110 * PANGO_SCALE);
    pango_layout_set_font_description(l, big);
    cairo_save(f->cr);
    cairo_translate(f->cr, PAGE_W / 2, PAGE_H / 2);
    cairo_rotate(f->cr, -0.5);
    cairo_set_source_rgba(f->cr, 0.8, 0.0, 0.0, 0.14);
    cairo_move_to(f->cr, -lay_w(l) / 2, -lay_h(l) / 2);
    pango_cairo_show_layout(f->cr, l);
    cairo_restore(f->cr);
    g_object_unref(l);
    pango_font_description_free(big);
}

/* Ends the current page (if any) and starts the next: header, footer,
 * watermark; the cursor goes below the header. */
static void page_begin(flow *f)
{
    const doc *d = f->d;
    double y = MARGIN_TOP;

    if (f->draw && f->page > 0)
        cairo_show_page(f->cr);
    f->page++;
    if (f->draw && !strcmp(d->status, "entered-in-error"))
        watermark(f);
    if (f->page == 1) {
        y += show(f, lay(f, FT_TITLE, d->title, BODY_W, 2, PANGO_ALIGN_CENTER), MARGIN_X, y,
                  0x000000);
        y += 2 + show(f,
                      layf(f, FT_SUB, BODY_W, 2, PANGO_ALIGN_CENTER, "%s%s%s", d->subtitle,
                           d->subtitle[0] ? "　" : "", d->kind),
                      MARGIN_X, y + 2, 0x000000);
        y += 6;
        hline(f, y, 1.2, 0x000000);
        y += 8;
    } else {
        y += show(f,
                  layf(f, FT_SMALL, BODY_W, 1, PANGO_ALIGN_LEFT, "%s%s（续）　%s　%s", d->subtitle,
                       d->kind, d->pt_name, d->pt_id),
                  MARGIN_X, y, 0x404040);
        y += 3;
        hline(f, y, 0.6, 0x808080);
        y += 10;
    }
    /* footer */
    hline(f, FOOTER_Y - 4, 0.4, 0x909090);
    show(f,
         layf(f, FT_SMALL, BODY_W, 2, PANGO_ALIGN_CENTER,
              "报告编号 %s　第 %lld 版　%s　第 %d 页 / 共 %d 页", d->id, d->version,
              rpt_render_status_label(d->status), f->page, f->pages > 0 ? f->pages : f->page),
         MARGIN_X, FOOTER_Y, 0x505050);
    f->y = y;
}

/* Starts a new page unless h more points fit on this one. */
static void need(flow *f, double h)
{
    if (f->y + h > BODY_BOTTOM)
        page_begin(f);
}

/* Draws a paragraph line by line, continuing on new pages; frees l. */
static void para(flow *f, PangoLayout *l, double x, unsigned color)
{
    PangoLayoutIter *it = pango_layout_get_iter(l);
    double base = f->y, shift = 0;

    do {
        PangoRectangle lr;
        double top, h;
        pango_layout_iter_get_line_extents(it, NULL, &lr);
        top = lr.y / (double)PANGO_SCALE;
        h = lr.height / (double)PANGO_SCALE;
        if (base + top - shift + h > BODY_BOTTOM) {
            page_begin(f);
            base = f->y;
            shift = top;
        }
        if (f->draw) {
            double bl = pango_layout_iter_get_baseline(it) / (double)PANGO_SCALE;
            rgb(f->cr, color);
            cairo_move_to(f->cr, x + lr.x / (double)PANGO_SCALE, base + bl - shift);
            pango_cairo_show_layout_line(f->cr, pango_layout_iter_get_line_readonly(it));
        }
        f->y = base + top - shift + h;
    } while (pango_layout_iter_next_line(it));
    pango_layout_iter_free(it);
    g_object_unref(l);
}

/* A red framed label ("危急值") at (x, y); returns its width. */
static double badge(flow *f, const char *text, double x, double y, unsigned color)
{
    PangoLayout *l = lay(f, FT_HEAD, text, 0, 1, PANGO_ALIGN_LEFT);
    double w = lay_w(l), h = lay_h(l);
    if (f->draw) {
        rgb(f->cr, color);
        cairo_set_line_width(f->cr, 1.2);
        cairo_rectangle(f->cr, x, y, w + 10, h + 2);
        cairo_stroke(f->cr);
    }
    show(f, l, x + 5, y + 1, color);
    return w + 10;
}

static void status_block(flow *f)
{
    const doc *d = f->d;
    char t[64];
    double x = MARGIN_X, h;
    PangoLayout *l;

    need(f, 24);
    if (d->critical)
        x += badge(f, "危急值", x, f->y, 0xC00000) + 8;
    if (!strcmp(d->status, "entered-in-error"))
        x += badge(f, "已撤回", x, f->y, 0xC00000) + 8;
    l = layf(f, FT_HEAD, BODY_W - (x - MARGIN_X), 1, PANGO_ALIGN_RIGHT, "%s　第 %lld 版",
             rpt_render_status_label(d->status), d->version);
    h = show(f, l, x, f->y + 1, strcmp(d->status, "entered-in-error") ? 0x000000 : 0xC00000);
    f->y += h + 4;
    fmt_time(d->signed_at, t, sizeof(t));
    f->y += show(f, layf(f, FT_SMALL, BODY_W, 1, PANGO_ALIGN_RIGHT, "签发时间：%s（北京时间）", t),
                 MARGIN_X, f->y, 0x404040);
    if (d->supersedes_version > 0) {
        f->y += show(f,
                     layf(f, FT_SMALL, BODY_W, 1, PANGO_ALIGN_RIGHT,
                          "本版本取代第 %lld 版（签名摘要 %.16s…）", d->supersedes_version,
                          d->supersedes_digest),
                     MARGIN_X, f->y, 0x404040);
    }
    if (f->in->superseded_by > 0) {
        f->y += show(f,
                     layf(f, FT_SMALL, BODY_W, 1, PANGO_ALIGN_RIGHT,
                          "本版本已被第 %d 版取代，请以最新版本为准", f->in->superseded_by),
                     MARGIN_X, f->y, 0xC00000);
    }
    f->y += 6;
}

typedef struct cell {
    const char *label, *value;
    int span;
} cell;

static void grid_row(flow *f, const cell *c, size_t n)
{
    double colw = BODY_W / 4, x = MARGIN_X, h = 0;
    PangoLayout *l[4];
    size_t i;

    for (i = 0; i < n; i++) {
        l[i] = lay_pair(f, FT_CELL, c[i].label, c[i].value, c[i].span * colw - 6, 2);
        if (lay_h(l[i]) > h)
            h = lay_h(l[i]);
    }
    need(f, h + 4);
    for (i = 0; i < n; i++) {
        show(f, l[i], x, f->y, 0x000000);
        x += c[i].span * colw;
    }
    f->y += h + 4;
}

static void patient_block(flow *f)
{
    const doc *d = f->d;
    char birth[64], sdate[64];

    fmt_date(d->pt_birth, birth, sizeof(birth));
    fmt_date(d->study_date, sdate, sizeof(sdate));
    cell r1[] = {{"姓名", d->pt_name, 1},
                 {"性别", sex_label(d->pt_sex), 1},
                 {"出生日期", birth, 1},
                 {"患者ID", d->pt_id, 1}};
    cell r2[] = {{"检查类型", d->modality, 1}, {"检查日期", sdate, 1}, {"检查号", d->accession, 2}};
    cell r3[] = {{"检查项目", d->procedure, 2},
                 {"送检医院", d->hospital_name[0] ? d->hospital_name : d->hospital, 2}};
    grid_row(f, r1, 4);
    grid_row(f, r2, 3);
    grid_row(f, r3, 2);
    f->y += 2;
    hline(f, f->y, 0.6, 0x808080);
    f->y += 8;
}

static void section(flow *f, const char *heading, const char *text)
{
    PangoLayout *l = lay(f, FT_HEAD, heading, BODY_W, 1, PANGO_ALIGN_LEFT);
    PangoLayout *body =
        lay(f, FT_BODY, text[0] ? text : "（无）", BODY_W - TEXT_INDENT, 0, PANGO_ALIGN_LEFT);
    double h = lay_h(l);

    pango_layout_set_line_spacing(body, LINE_GAP);
    need(f, h + 40); /* the heading with at least two lines of its text */
    f->y += show(f, l, MARGIN_X, f->y, 0x000000) + 4;
    para(f, body, MARGIN_X + TEXT_INDENT, 0x000000);
    f->y += 12;
}

static void recognition_block(flow *f)
{
    const doc *d = f->d;
    size_t i;

    if (!d->n_rec)
        return;
    need(f, 60);
    f->y += show(f, lay(f, FT_HEAD, "检查结果互认", BODY_W, 1, PANGO_ALIGN_LEFT), MARGIN_X, f->y,
                 0x000000) +
            4;
    for (i = 0; i < d->n_rec; i++) {
        const rec_item *r = &d->rec[i];
        PangoLayout *m = lay(f, FT_MARK, r->mark[0] ? r->mark : "HR", 120, 1, PANGO_ALIGN_LEFT);
        double mw = lay_w(m) + 12, mh = lay_h(m), th;
        PangoLayout *t;
        t = layf(f, FT_CELL, BODY_W - TEXT_INDENT - mw - 8, 3, PANGO_ALIGN_LEFT,
                 "%s%s%s%s　互认范围：%s　有效期至：%s", r->name, r->item[0] ? "（" : "", r->item,
                 r->item[0] ? "）" : "", scope_label(r->scope), r->valid_until);
        th = lay_h(t);
        need(f, (th > mh ? th : mh) + 8);
        if (f->draw) {
            rgb(f->cr, 0xB00000);
            cairo_set_line_width(f->cr, 1.4);
            cairo_rectangle(f->cr, MARGIN_X + TEXT_INDENT, f->y, mw, mh + 2);
            cairo_stroke(f->cr);
        }
        show(f, m, MARGIN_X + TEXT_INDENT + 6, f->y + 1, 0xB00000);
        show(f, t, MARGIN_X + TEXT_INDENT + mw + 8, f->y + (mh + 2 - th) / 2, 0x000000);
        f->y += (th > mh + 2 ? th : mh + 2) + 6;
    }
    f->y += 8;
}

static void signers_block(flow *f, const hr_config *cfg)
{
    const doc *d = f->d;
    char t[64];
    size_t i;

    need(f, 30);
    hline(f, f->y, 0.6, 0x808080);
    f->y += 6;
    for (i = 0; i < d->n_sig; i++) {
        const signer *s = &d->sig[i];
        const hr_center *c = cfg && s->center[0] ? hr_config_center(cfg, s->center) : NULL;
        const hr_hospital *h = cfg && s->hospital[0] ? hr_config_hospital(cfg, s->hospital) : NULL;
        PangoLayout *l;
        char *v;
        fmt_time(s->signed_at, t, sizeof(t));
        v = g_strdup_printf("%s　　%s%s%s　　签名时间：%s", s->name[0] ? s->name : s->user,
                            h ? h->name : s->hospital,
                            (h || s->hospital[0]) && (c || s->center[0]) ? " " : "",
                            c ? c->name : s->center, t);
        l = lay_pair(f, FT_BODY, role_label(s->role), v, BODY_W, 2);
        g_free(v);
        need(f, lay_h(l) + 4);
        f->y += show(f, l, MARGIN_X, f->y, 0x000000) + 4;
    }
    f->y += 8;
}

static void verify_block(flow *f)
{
    const doc *d = f->d;
    const rpt_render_in *in = f->in;
    double tw = BODY_W - (f->qr ? QR_SIZE + 14 : 0), h;
    PangoLayout *l;

    l = layf(f, FT_SMALL, tw, 0, PANGO_ALIGN_LEFT,
             "本报告经报告医师以数字证书电子签名（JWS），内容或签名的任何改动均可被发现。\n"
             "签名文件摘要（SHA-256）：%s\n"
             "影像摘要（SHA-256，共 %lld 幅）：%s\n"
             "%s%s",
             in->digest, d->image_count, d->images_digest[0] ? d->images_digest : "—",
             f->qr ? "核验：扫描二维码或访问 " : "", f->qr ? in->verify_url : "");
    pango_layout_set_line_spacing(l, 1.25);
    h = lay_h(l);
    if (f->qr && h < QR_SIZE)
        h = QR_SIZE;
    need(f, h + 4);
    if (f->qr && f->draw) {
        int w = f->qr->width, q = 2; /* quiet zone: 2 modules inside the box, the page is white */
        double m = QR_SIZE / (w + 2 * q), x0 = PAGE_W - MARGIN_X - QR_SIZE, y0 = f->y;
        cairo_set_source_rgb(f->cr, 0, 0, 0);
        for (int yy = 0; yy < w; yy++)
            for (int xx = 0; xx < w; xx++)
                if (f->qr->data[yy * w + xx] & 1)
                    cairo_rectangle(f->cr, x0 + (xx + q) * m, y0 + (yy + q) * m, m, m);
        cairo_fill(f->cr);
    }
    show(f, l, MARGIN_X, f->y, 0x303030);
    f->y += h + 4;
}

/* The signatures and what verifies them, on one page: laid out once without
 * drawing to see whether they fit the rest of this page. */
static void signature_blocks(flow *f, const hr_config *cfg)
{
    int draw = f->draw, page = f->page;
    double y = f->y;

    f->draw = 0;
    signers_block(f, cfg);
    verify_block(f);
    f->draw = draw;
    if (f->page != page) {
        f->page = page;
        page_begin(f);
    } else {
        f->y = y;
    }
    signers_block(f, cfg);
    verify_block(f);
}

/* One pass over the whole document. */
static void run(flow *f, const hr_config *cfg)
{
    f->page = 0;
    page_begin(f);
    status_block(f);
    patient_block(f);
    section(f, "检查所见", f->d->findings);
    section(f, "诊断意见", f->d->impression);
    recognition_block(f);
    signature_blocks(f, cfg);
}

/* ---- output ---- */

typedef struct sink {
    hr_buf *out;
    size_t written;
    int rc;
} sink;

static cairo_status_t sink_write(void *arg, const unsigned char *data, unsigned int len)
{
    sink *s = arg;
    int rc;

    if (s->rc)
        return CAIRO_STATUS_WRITE_ERROR;
    if (len > RPT_RENDER_OUT_MAX - s->written) {
        s->rc = HR_ETOOBIG;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    rc = hr_buf_append(s->out, data, len);
    if (rc) {
        s->rc = rc;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    s->written += len;
    return CAIRO_STATUS_SUCCESS;
}

static pthread_once_t fc_once = PTHREAD_ONCE_INIT;
static int fc_ok;

static void fc_init(void)
{
    fc_ok = FcInit() ? 1 : 0;
}

/* 1 when the font map resolves RPT_RENDER_FONT to itself (no fallback). */
static int font_present(PangoContext *pc, const PangoFontDescription *desc)
{
    PangoFont *font = pango_context_load_font(pc, desc);
    PangoFontDescription *got;
    int ok = 0;

    if (!font)
        return 0;
    got = pango_font_describe(font);
    if (got && pango_font_description_get_family(got))
        ok = !strcmp(pango_font_description_get_family(got), RPT_RENDER_FONT);
    pango_font_description_free(got);
    g_object_unref(font);
    return ok;
}

static int valid_digest(const char *s)
{
    return s && strlen(s) == DIGEST_HEX && strspn(s, "0123456789abcdef") == DIGEST_HEX;
}

int rpt_render_pdf(const hr_config *cfg, const rpt_render_in *in, hr_buf *out, int *pages)
{
    doc *d = NULL;
    flow f;
    sink snk = {out, 0, 0};
    cairo_surface_t *surf = NULL;
    char meta[32], *title;
    const hr_center *center = NULL;
    const hr_hospital *hosp = NULL;
    int rc, i;

    memset(&f, 0, sizeof(f));
    if (pages)
        *pages = 0;
    if (!in || !in->payload || !out || !valid_digest(in->digest))
        return -EINVAL;
    if (in->verify_url && strlen(in->verify_url) > RPT_RENDER_URL_MAX)
        return HR_ETOOBIG;
    d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    rc = read_doc(in->payload, d);
    if (rc)
        goto out;

    if (cfg && d->center[0])
        center = hr_config_center(cfg, d->center);
    if (center)
        hosp = hr_config_hospital(cfg, center->hospital);
    d->title = hosp ? hosp->name : (d->center_name[0] ? d->center_name : "区域诊断中心");
    d->subtitle = hosp ? (d->center_name[0] ? d->center_name : (center ? center->name : "")) : "";
    d->kind = kind_label(center ? center->kind : HR_CENTER_IMAGING);

    pthread_once(&fc_once, fc_init);
    if (!fc_ok) {
        rc = HR_EUNSUP;
        goto out;
    }
    if (in->verify_url && in->verify_url[0]) {
        errno = 0;
        f.qr = QRcode_encodeString(in->verify_url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!f.qr) {
            rc = errno == ENOMEM ? -ENOMEM : HR_ETOOBIG;
            goto out;
        }
    }

    surf = cairo_pdf_surface_create_for_stream(sink_write, &snk, PAGE_W, PAGE_H);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        rc = -ENOMEM;
        goto out;
    }
    title = g_strdup_printf("%s %s 第%lld版", d->kind, d->id, d->version);
    cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_TITLE, title);
    g_free(title);
    cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR, "huren");
    /* the signing time, not now: the same version renders to the same bytes */
    if (strlen(d->signed_at) >= 19) {
        snprintf(meta, sizeof(meta), "%.19sZ", d->signed_at);
        cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATE_DATE, meta);
        cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_MOD_DATE, meta);
    }
    f.cr = cairo_create(surf);
    f.pc = pango_cairo_create_context(f.cr);
    pango_cairo_context_set_resolution(f.pc, 72.0); /* font sizes in points = user units */
    pango_context_set_language(f.pc, pango_language_from_string("zh-cn"));
    for (i = 0; i < FT_N; i++) {
        f.font[i] = pango_font_description_new();
        pango_font_description_set_family_static(f.font[i], RPT_RENDER_FONT);
        pango_font_description_set_size(f.font[i], (gint)(k_fonts[i].size * PANGO_SCALE));
    }
    if (!font_present(f.pc, f.font[FT_BODY])) {
        rc = HR_EUNSUP;
        goto out;
    }
    f.d = d;
    f.in = in;

    f.draw = 0;
    run(&f, cfg);
    if (f.page > RPT_RENDER_PAGES_MAX) {
        rc = HR_ETOOBIG;
        goto out;
    }
    f.pages = f.page;
    f.draw = 1;
    run(&f, cfg);
    if (f.page != f.pages) { /* both passes share the code: never */
        rc = -EIO;
        goto out;
    }
    cairo_destroy(f.cr);
    f.cr = NULL;
    cairo_surface_finish(surf);
    if (snk.rc) {
        rc = snk.rc;
        goto out;
    }
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        rc = -EIO;
        goto out;
    }
    if (pages)
        *pages = f.pages;
    rc = 0;
out:
    for (i = 0; i < FT_N; i++)
        if (f.font[i])
            pango_font_description_free(f.font[i]);
    if (f.pc)
        g_object_unref(f.pc);
    if (f.cr)
        cairo_destroy(f.cr);
    if (surf)
        cairo_surface_destroy(surf);
    if (f.qr)
        QRcode_free(f.qr);
    free(d);
    return rc;
}
