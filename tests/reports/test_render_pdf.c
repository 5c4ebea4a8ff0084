/* reports/render_pdf.c: a signed payload rendered as a PDF and read back with
 * poppler (pdftotext, pdfinfo, pdftoppm) and zbar (zbarimg): the Chinese text
 * comes out as text, long findings paginate, the QR code decodes to the
 * verification URL, the bounds refuse, and renders on several threads at
 * once are each correct. */
#include "common/hr_buf.h"
#include "common/hr_config.h"
#include "common/hr_err.h"
#include "reports/render_pdf.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST "3f9a0c1e5b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468"
#define IMGDIG "aa11bb22cc33dd44ee55ff6600770088009900aa00bb00cc00dd00ee00ff0011"
#define URL    "https://hub.example.cn/verify?report=r1-1.2.840.99.1&v=2&d=3f9a0c1e5b7d2468"

static char g_dir[512];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(g_dir), 0);
}

static void teardown(void)
{
    ts_rmrf(g_dir);
}

/* A payload of schema 1 (decision 0022). */
static json_t *payload(const char *name, const char *findings, const char *impression,
                       const char *status, int critical)
{
    json_error_t e;
    json_t *p = json_pack_ex(
        &e, 0,
        "{s:s, s:i, s:{s:s, s:i, s:s, s:{s:i, s:s}}, "
        "s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:s, s:s, s:s, s:s, s:s}, "
        "s:{s:i, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}, "
        "s:{s:s, s:s, s:b, s:[]}, "
        "s:[{s:s, s:s, s:s, s:s, s:s}], "
        "s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s, s:s}], "
        "s:s}",
        "typ", "huren-report", "schema", 1, "report", "id", "r1-1.2.840.99.1", "version", 2,
        "status", status, "supersedes", "version", 1, "digest",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "exam", "study_uid",
        "1.2.840.99.1", "accession", "A20261203001", "hospital", "twa", "hospital_name",
        "青山镇卫生院", "modality", "CT", "procedure", "头颅CT平扫", "study_date", "20261201",
        "center", "img", "center_name", "县人民医院影像诊断中心", "patient", "id", "P0042",
        "issuer", "twa", "name", name, "sex", "F", "birth_date", "19800102", "images", "count", 2,
        "order", "sop-uid-bytewise", "digest", IMGDIG, "instances", "sop", "1.2.3.1", "sha256",
        IMGDIG, "sop", "1.2.3.2", "sha256", IMGDIG, "content", "findings", findings, "impression",
        impression, "critical", critical, "codes", "recognition", "item", "CT-HEAD", "name",
        "头颅CT", "hr_mark", "鄂HR", "scope", "community", "valid_until", "2027-06-01", "signers",
        "user", "wang", "name", "王医生", "role", "reader", "function", "author", "center", "img",
        "hospital", "county", "signed_at", "2026-12-03T07:00:00.123Z", "user", "li", "name",
        "李主任", "role", "auditor", "function", "authenticator", "center", "img", "hospital",
        "county", "signed_at", "2026-12-03T08:30:00.000Z", "signed_at", "2026-12-03T08:30:00.000Z");
    cr_assert_not_null(p, "json_pack: %s", e.text);
    return p;
}

static const char k_cfg[] =
    "{\"data_dir\": \"/tmp/huren-render-unused\","
    " \"hospitals\": [{\"id\": \"county\", \"name\": \"安平县人民医院\", \"level\": \"county\"},"
    "                {\"id\": \"twa\", \"name\": \"青山镇卫生院\", \"level\": \"township\"}],"
    " \"centers\": [{\"id\": \"img\", \"name\": \"影像诊断中心\", \"kind\": \"imaging\","
    "                \"hospital\": \"county\"}],"
    " \"routing\": {\"rules\": [], \"default\": {\"center\": \"img\", \"priority\": \"routine\"}}}";

static void load_cfg(hr_config *cfg)
{
    char err[256] = "";
    int rc = hr_config_load_string(k_cfg, cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "config: %s", err);
}

static void write_file(const char *path, const hr_buf *b)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b->data, 1, b->len, f), b->len);
    cr_assert_eq(fclose(f), 0);
}

/* Output of a shell command (malloc'd, NUL-terminated, at most 4 MB); asserts
 * the command exited 0. */
static char *run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    size_t n = 0, cap = 4 << 20;
    char *out = malloc(cap + 1);
    FILE *p;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_not_null(out);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    for (size_t r; (r = fread(out + n, 1, cap - n, p)) > 0;)
        n += r;
    out[n] = '\0';
    st = pclose(p);
    cr_assert_eq(st, 0, "%s: exit status %d", cmd, st);
    return out;
}

static int pdf_pages(const char *path)
{
    char *info = run("pdfinfo '%s'", path);
    const char *p = strstr(info, "\nPages:");
    int n = -1;
    cr_assert_not_null(p, "%s", info);
    n = atoi(p + 7);
    free(info);
    return n;
}

/* The text of path as pdftotext extracts it, with spaces and line breaks
 * removed (a wrapped line breaks a phrase). */
static char *pdf_text(const char *path)
{
    char *t = run("pdftotext -enc UTF-8 '%s' -", path);
    size_t j = 0;
    for (size_t i = 0; t[i]; i++)
        if (t[i] != ' ' && t[i] != '\n' && t[i] != '\f')
            t[j++] = t[i];
    t[j] = '\0';
    return t;
}

static void render_to(const hr_config *cfg, json_t *p, const char *url, const char *path,
                      int *pages)
{
    rpt_render_in in = {.payload = p, .digest = DIGEST, .verify_url = url};
    hr_buf out;
    int rc;

    hr_buf_init(&out, RPT_RENDER_OUT_MAX);
    rc = rpt_render_pdf(cfg, &in, &out, pages);
    cr_assert_eq(rc, 0, "render: %s", hr_strerror(rc));
    cr_assert_gt(out.len, 1000);
    cr_assert_eq(memcmp(out.data, "%PDF-", 5), 0);
    write_file(path, &out);
    hr_buf_free(&out);
}

TestSuite(render_pdf, .init = setup, .fini = teardown, .timeout = 120);

Test(render_pdf, chinese_text_is_text)
{
    hr_config cfg;
    char path[600];
    int pages = 0;
    json_t *p = payload("张三丰", "颅内未见明显异常密度影，脑室系统无扩大。",
                        "头颅CT平扫未见明显异常。<b>&amp;</b>", "final", 1);
    char *t;

    load_cfg(&cfg);
    snprintf(path, sizeof(path), "%s/r.pdf", g_dir);
    render_to(&cfg, p, URL, path, &pages);
    cr_assert_eq(pages, 1);
    cr_assert_eq(pdf_pages(path), 1);
    t = pdf_text(path);
    static const char *const want[] = {
        "安平县人民医院",                           /* the hospital running the center (config) */
        "影像诊断中心影像诊断报告",                 /* center name and kind */
        "张三丰",                                   /* patient */
        "性别：女",                                 /* F */
        "出生日期：1980-01-02",                     /* */
        "患者ID：P0042",                            /* */
        "检查类型：CT",                             /* */
        "检查项目：头颅CT平扫",                     /* */
        "检查日期：2026-12-01",                     /* */
        "检查号：A20261203001",                     /* */
        "送检医院：青山镇卫生院",                   /* */
        "颅内未见明显异常密度影，脑室系统无扩大。", /* findings */
        "头颅CT平扫未见明显异常。<b>&amp;</b>",     /* impression, not markup */
        "危急值",                                   /* critical mark */
        "鄂HR",                                     /* HR mark */
        "互认范围：医共体内",                       /* scope */
        "有效期至：2027-06-01",                     /* validity end */
        "正式报告",                                 /* status */
        "第2版",                                    /* version */
        "本版本取代第1版",                          /* supersedes */
        "报告医师：王医生",                         /* signers */
        "审核医师：李主任",                         /* */
        "2026-12-0315:00:00",                       /* 07:00 UTC in Beijing time */
        "2026-12-0316:30:00",                       /* */
        DIGEST,                                     /* the JWS digest */
        IMGDIG,                                     /* the images digest */
        "第1页/共1页",                              /* footer */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_not_null(strstr(t, want[i]), "missing %s in\n%s", want[i], t);
    cr_expect_null(strstr(t, "已撤回"));
    free(t);
    json_decref(p);
    hr_config_free(&cfg);
}

Test(render_pdf, qr_code_decodes_to_the_url)
{
    char path[600], *z;
    json_t *p = payload("李四", "所见", "意见", "final", 0);

    snprintf(path, sizeof(path), "%s/q.pdf", g_dir);
    render_to(NULL, p, URL, path, NULL);
    free(run("pdftoppm -r 150 -png -singlefile '%s' '%s/q'", path, g_dir));
    z = run("zbarimg --nodbus --quiet --raw '%s/q.png'", g_dir);
    cr_assert_str_eq(z, URL "\n");
    free(z);
    json_decref(p);
}

Test(render_pdf, long_findings_paginate)
{
    char path[600], *t, needle[64];
    hr_buf b;
    int pages = 0, n;
    json_t *p;

    hr_buf_init(&b, 1 << 20);
    for (int i = 0; i < 300; i++) {
        char s[160];
        snprintf(s, sizeof(s), "第%03d句：双侧大脑半球对称，灰白质分界清楚，未见异常密度影。\n", i);
        cr_assert_eq(hr_buf_append(&b, s, strlen(s)), 0);
    }
    cr_assert_eq(hr_buf_append(&b, "末句标记", strlen("末句标记") + 1), 0);
    p = payload("赵五", (const char *)b.data, "结论", "preliminary", 0);
    snprintf(path, sizeof(path), "%s/long.pdf", g_dir);
    render_to(NULL, p, URL, path, &pages);
    n = pdf_pages(path);
    cr_assert_eq(n, pages);
    cr_assert_geq(n, 4, "%d pages", n);
    cr_assert_leq(n, RPT_RENDER_PAGES_MAX);
    t = pdf_text(path);
    /* every sentence, in order, once */
    const char *at = t;
    for (int i = 0; i < 300; i++) {
        snprintf(needle, sizeof(needle), "第%03d句：", i);
        const char *q = strstr(at, needle);
        cr_assert_not_null(q, "sentence %d missing or out of order", i);
        at = q + 1;
    }
    cr_expect_not_null(strstr(t, "末句标记"));
    cr_expect_not_null(strstr(t, "初步报告"));
    snprintf(needle, sizeof(needle), "第%d页/共%d页", n, n);
    cr_expect_not_null(strstr(t, needle), "%s", needle);
    cr_expect_not_null(strstr(t, "（续）"));
    free(t);
    hr_buf_free(&b);
    json_decref(p);
}

Test(render_pdf, retracted_and_superseded)
{
    char path[600], *t;
    json_t *p = payload("钱六", "所见", "意见", "entered-in-error", 0);
    rpt_render_in in = {.payload = p, .digest = DIGEST, .verify_url = NULL, .superseded_by = 3};
    hr_buf out;

    hr_buf_init(&out, RPT_RENDER_OUT_MAX);
    cr_assert_eq(rpt_render_pdf(NULL, &in, &out, NULL), 0);
    snprintf(path, sizeof(path), "%s/x.pdf", g_dir);
    write_file(path, &out);
    t = pdf_text(path);
    cr_expect_not_null(strstr(t, "已撤回"));
    cr_expect_not_null(strstr(t, "本版本已被第3版取代"));
    cr_expect_null(strstr(t, "核验：扫描二维码"), "no URL, no QR code");
    free(t);
    hr_buf_free(&out);
    json_decref(p);
}

Test(render_pdf, same_version_same_bytes)
{
    json_t *p = payload("孙七", "所见", "意见", "final", 0);
    rpt_render_in in = {.payload = p, .digest = DIGEST, .verify_url = URL};
    hr_buf a, b;

    hr_buf_init(&a, RPT_RENDER_OUT_MAX);
    hr_buf_init(&b, RPT_RENDER_OUT_MAX);
    cr_assert_eq(rpt_render_pdf(NULL, &in, &a, NULL), 0);
    cr_assert_eq(rpt_render_pdf(NULL, &in, &b, NULL), 0);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
    hr_buf_free(&a);
    hr_buf_free(&b);
    json_decref(p);
}

static int render_rc(json_t *p, const char *digest, const char *url, size_t cap)
{
    rpt_render_in in = {.payload = p, .digest = digest, .verify_url = url};
    hr_buf out;
    int rc;
    hr_buf_init(&out, cap);
    rc = rpt_render_pdf(NULL, &in, &out, NULL);
    hr_buf_free(&out);
    return rc;
}

Test(render_pdf, bounds_and_garbage)
{
    json_t *p;
    char *big = malloc(RPT_RENDER_TEXT_MAX + 2);
    char *url = malloc(RPT_RENDER_URL_MAX + 2);

    cr_assert(big && url);
    /* findings one byte over the cap */
    memset(big, 'a', RPT_RENDER_TEXT_MAX + 1);
    big[RPT_RENDER_TEXT_MAX + 1] = '\0';
    p = payload("甲", big, "意见", "final", 0);
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), HR_ETOOBIG);
    json_decref(p);
    /* within the byte cap but far over the page cap: only line breaks */
    memset(big, '\n', RPT_RENDER_TEXT_MAX);
    big[RPT_RENDER_TEXT_MAX] = '\0';
    p = payload("甲", big, "意见", "final", 0);
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), HR_ETOOBIG);
    json_decref(p);
    /* a URL over its cap; an output buffer too small */
    memset(url, 'u', RPT_RENDER_URL_MAX + 1);
    url[RPT_RENDER_URL_MAX + 1] = '\0';
    p = payload("甲", "所见", "意见", "final", 0);
    cr_expect_eq(render_rc(p, DIGEST, url, RPT_RENDER_OUT_MAX), HR_ETOOBIG);
    cr_expect_eq(render_rc(p, DIGEST, URL, 4096), HR_ETOOBIG);
    /* a digest that is not 64 lower-case hex */
    cr_expect_eq(render_rc(p, "abc", URL, RPT_RENDER_OUT_MAX), -EINVAL);
    cr_expect_eq(render_rc(p, NULL, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    /* schema and types */
    json_object_set_new(p, "schema", json_integer(2));
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    json_object_set_new(p, "schema", json_integer(1));
    json_object_set_new(json_object_get(p, "patient"), "name", json_integer(7));
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    json_object_set_new(json_object_get(p, "patient"), "name", json_string("甲"));
    json_object_del(json_object_get(p, "content"), "findings");
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    json_object_set_new(json_object_get(p, "content"), "findings", json_string("所见"));
    json_object_set_new(p, "signers", json_string("x"));
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    json_t *many = json_array();
    for (int i = 0; i <= RPT_RENDER_ITEMS_MAX; i++)
        json_array_append_new(many, json_pack("{s:s, s:s}", "name", "甲", "role", "reader"));
    json_object_set_new(p, "signers", many);
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), HR_ETOOBIG);
    json_array_remove(many, 0);
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), 0, "32 signers fit the cap");
    json_decref(p);
    p = json_string("x");
    cr_expect_eq(render_rc(p, DIGEST, URL, RPT_RENDER_OUT_MAX), -EINVAL);
    json_decref(p);
    free(big);
    free(url);
}

/* Several threads render at once, each its own patient. */
#define THREADS 4
#define ROUNDS  3

typedef struct job {
    int idx;
    char path[600];
    int rc;
} job;

static void *render_thread(void *arg)
{
    job *j = arg;
    char name[32], findings[128];
    snprintf(name, sizeof(name), "患者%d号", j->idx);
    snprintf(findings, sizeof(findings), "线程%d所见：肝脏形态正常。", j->idx);
    for (int r = 0; r < ROUNDS && !j->rc; r++) {
        json_t *p = payload(name, findings, "意见", "final", 0);
        rpt_render_in in = {.payload = p, .digest = DIGEST, .verify_url = URL};
        hr_buf out;
        hr_buf_init(&out, RPT_RENDER_OUT_MAX);
        j->rc = rpt_render_pdf(NULL, &in, &out, NULL);
        if (!j->rc && r == ROUNDS - 1) {
            FILE *f = fopen(j->path, "wb");
            if (!f || fwrite(out.data, 1, out.len, f) != out.len)
                j->rc = -EIO;
            if (f)
                fclose(f);
        }
        hr_buf_free(&out);
        json_decref(p);
    }
    return NULL;
}

Test(render_pdf, concurrent_threads)
{
    pthread_t th[THREADS];
    job jobs[THREADS];

    for (int i = 0; i < THREADS; i++) {
        jobs[i].idx = i;
        jobs[i].rc = 0;
        snprintf(jobs[i].path, sizeof(jobs[i].path), "%s/t%d.pdf", g_dir, i);
        cr_assert_eq(pthread_create(&th[i], NULL, render_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        char want[64], *t;
        cr_assert_eq(jobs[i].rc, 0, "thread %d: %s", i, hr_strerror(jobs[i].rc));
        t = pdf_text(jobs[i].path);
        snprintf(want, sizeof(want), "患者%d号", i);
        cr_expect_not_null(strstr(t, want), "thread %d", i);
        snprintf(want, sizeof(want), "线程%d所见：肝脏形态正常。", i);
        cr_expect_not_null(strstr(t, want), "thread %d", i);
        free(t);
    }
}
