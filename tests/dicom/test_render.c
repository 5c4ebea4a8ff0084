/* dicom/dcmtk_render.cc (hr_render_frame): pydicom's test files rendered to
 * PNG and JPEG, compared with DCMTK's own command-line rendering (dcmj2pnm,
 * a real peer) of the same frame and window; frame selection, scaling,
 * bounds and refusals. */
#include "dicom/render.h"

#include "support/support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jpeglib.h>

#define PYDICOM_DIR "/usr/lib/python3/dist-packages/pydicom/data/test_files"

static char g_dir[512];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(g_dir), 0);
}

static void teardown(void)
{
    ts_rmrf(g_dir);
}

TestSuite(render, .init = setup, .fini = teardown);

/* A decoded 8-bit image. */
typedef struct img {
    unsigned w, h;
    int samples;
    unsigned char *px;
} img;

static int png_decode(const unsigned char *data, size_t len, img *out)
{
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, data, len))
        return -1;
    out->samples = (pi.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    pi.format = out->samples == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    out->w = pi.width;
    out->h = pi.height;
    out->px = malloc(PNG_IMAGE_SIZE(pi));
    if (!out->px || !png_image_finish_read(&pi, NULL, out->px, 0, NULL)) {
        png_image_free(&pi);
        free(out->px);
        return -1;
    }
    return 0;
}

static int png_file(const char *path, img *out)
{
    size_t len;
    unsigned char *d = ts_read_file(path, &len);
    if (!d)
        return -1;
    int rc = png_decode(d, len, out);
    free(d);
    return rc;
}

static int jpeg_decode(const unsigned char *data, size_t len, img *out)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)len);
    if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK) {
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    jpeg_start_decompress(&ci);
    out->w = ci.output_width;
    out->h = ci.output_height;
    out->samples = ci.output_components;
    out->px = malloc((size_t)out->w * out->h * (size_t)out->samples);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = out->px + (size_t)ci.output_scanline * out->w * (size_t)out->samples;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return 0;
}

/* Runs argv (no shell); its exit status. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* DCMTK's rendering of file as PNG with the options given (NULL-terminated). */
static const char *g_tool = "dcmj2pnm"; /* dcml2pnm for JPEG-LS */

static void dcmtk_png(const char *file, img *out, const char *o1, const char *o2, const char *o3,
                      const char *o4, const char *o5)
{
    char dst[700];
    snprintf(dst, sizeof(dst), "%s/dcmtk.png", g_dir);
    unlink(dst);
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)g_tool;
    argv[n++] = "--write-png";
    const char *opts[] = {o1, o2, o3, o4, o5};
    for (int i = 0; i < 5 && opts[i]; i++)
        argv[n++] = (char *)opts[i];
    argv[n++] = (char *)file;
    argv[n++] = dst;
    argv[n] = NULL;
    cr_assert_eq(run(argv), 0, "%s %s failed", g_tool, file);
    cr_assert_eq(png_file(dst, out), 0);
}

static void render_png(const char *file, const hr_render_req *rq, img *out)
{
    unsigned char *data = NULL;
    size_t len = 0;
    const char *ct = NULL;
    int rc = hr_render_frame(file, rq, &data, &len, &ct);
    cr_assert_eq(rc, 0, "render %s: %d", file, rc);
    cr_assert_str_eq(ct, "image/png");
    cr_assert_eq(png_decode(data, len, out), 0);
    free(data);
}

/* Largest difference of one sample. */
static int max_diff(const img *a, const img *b)
{
    cr_assert_eq(a->w, b->w, "width %u vs %u", a->w, b->w);
    cr_assert_eq(a->h, b->h, "height %u vs %u", a->h, b->h);
    cr_assert_eq(a->samples, b->samples);
    int m = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * (size_t)a->samples; i++) {
        int d = abs((int)a->px[i] - (int)b->px[i]);
        if (d > m)
            m = d;
    }
    return m;
}

static int distinct(const img *a)
{
    int seen[256] = {0}, n = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * (size_t)a->samples; i++)
        if (!seen[a->px[i]]++)
            n++;
    return n;
}

/* PNG of the object's window (or min-max) equals dcmj2pnm's, pixel for pixel. */
static void same_as_dcmtk(const char *name, const char *wopt, int min_distinct)
{
    char path[600];
    img a = {0}, b = {0};
    snprintf(path, sizeof(path), "%s/%s", PYDICOM_DIR, name);
    hr_render_req rq = {.fmt = HR_RENDER_PNG, .frame = 1};
    render_png(path, &rq, &a);
    dcmtk_png(path, &b, wopt, wopt && !strcmp(wopt, "+Wi") ? "1" : NULL, NULL, NULL, NULL);
    cr_assert_eq(max_diff(&a, &b), 0, "%s differs from dcmj2pnm", name);
    cr_assert_geq(distinct(&a), min_distinct, "%s renders nearly uniform", name);
    free(a.px);
    free(b.px);
}

Test(render, native_ct_min_max_like_dcmtk)
{
    same_as_dcmtk("CT_small.dcm", "+Wm", 100); /* no window in the object: min-max */
}

Test(render, mr_first_window_like_dcmtk)
{
    same_as_dcmtk("MR_small.dcm", "+Wi", 100);
}

Test(render, rle_and_jpeg_ls_like_dcmtk)
{
    same_as_dcmtk("MR_small_RLE.dcm", "+Wi", 100);
    g_tool = "dcml2pnm";
    same_as_dcmtk("MR_small_jpeg_ls_lossless.dcm", "+Wi", 100);
}

Test(render, jpeg_extended_and_colour_like_dcmtk)
{
    same_as_dcmtk("JPGExtended.dcm", "+Wm", 100);
    /* colour bars: few distinct values */
    same_as_dcmtk("SC_rgb_jpeg_dcmtk.dcm", NULL, 3); /* YBR_FULL baseline JPEG -> RGB */
    same_as_dcmtk("SC_rgb_rle.dcm", NULL, 3);
}

Test(render, request_window_like_dcmtk)
{
    char path[600];
    img a = {0}, b = {0};
    snprintf(path, sizeof(path), "%s/CT_small.dcm", PYDICOM_DIR);
    hr_render_req rq = {
        .fmt = HR_RENDER_PNG, .frame = 1, .window_set = 1, .center = 40, .width = 400};
    render_png(path, &rq, &a);
    dcmtk_png(path, &b, "+Ww", "40", "400", NULL, NULL);
    cr_assert_eq(max_diff(&a, &b), 0);
    free(a.px);
    free(b.px);
}

Test(render, scaled_fit_like_dcmtk)
{
    char path[600];
    img a = {0}, b = {0};
    snprintf(path, sizeof(path), "%s/JPGExtended.dcm", PYDICOM_DIR); /* 256 wide, 1024 high */
    hr_render_req rq = {.fmt = HR_RENDER_PNG, .frame = 1, .max_w = 128, .max_h = 128};
    render_png(path, &rq, &a);
    cr_assert_eq(a.h, 128);
    cr_assert_eq(a.w, 32);
    dcmtk_png(path, &b, "+Wm", "+Syv", "128", NULL, NULL);
    cr_assert_eq(max_diff(&a, &b), 0);
    free(a.px);
    free(b.px);
    /* never enlarged */
    rq.max_w = rq.max_h = 4096;
    render_png(path, &rq, &a);
    cr_assert_eq(a.w, 256);
    cr_assert_eq(a.h, 1024);
    free(a.px);
}

Test(render, frame_of_multiframe_like_dcmtk)
{
    char path[600];
    img a = {0}, b = {0};
    snprintf(path, sizeof(path), "%s/SC_rgb_rle_2frame.dcm", PYDICOM_DIR);
    hr_render_req rq = {.fmt = HR_RENDER_PNG, .frame = 2};
    render_png(path, &rq, &a);
    dcmtk_png(path, &b, "+F", "2", NULL, NULL, NULL);
    cr_assert_eq(max_diff(&a, &b), 0);
    free(b.px);
    /* frame 1 differs from frame 2 in this object */
    img c = {0};
    rq.frame = 1;
    render_png(path, &rq, &c);
    cr_assert_gt(max_diff(&a, &c), 0);
    free(a.px);
    free(c.px);
    unsigned char *data = NULL;
    size_t len = 0;
    const char *ct = NULL;
    rq.frame = 3;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -ENOENT);
    cr_assert_null(data);
}

Test(render, jpeg_output)
{
    char path[600];
    unsigned char *data = NULL;
    size_t len = 0;
    const char *ct = NULL;
    img a = {0}, p = {0};
    snprintf(path, sizeof(path), "%s/CT_small.dcm", PYDICOM_DIR);
    hr_render_req rq = {.fmt = HR_RENDER_JPEG, .frame = 1, .quality = 95};
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), 0);
    cr_assert_str_eq(ct, "image/jpeg");
    cr_assert(len > 4 && data[0] == 0xFF && data[1] == 0xD8);
    cr_assert_eq(jpeg_decode(data, len, &a), 0);
    free(data);
    rq.fmt = HR_RENDER_PNG;
    render_png(path, &rq, &p);
    /* lossy, but close to the exact rendering */
    long sum = 0;
    for (size_t i = 0; i < (size_t)a.w * a.h; i++)
        sum += abs((int)a.px[i] - (int)p.px[i]);
    cr_assert_lt((double)sum / (a.w * a.h), 3.0);
    cr_assert_eq(a.samples, 1);
    free(a.px);
    free(p.px);
}

Test(render, refusals)
{
    char path[600], big[700];
    unsigned char *data = NULL;
    size_t len = 0;
    const char *ct = NULL;
    hr_render_req rq = {.fmt = HR_RENDER_PNG, .frame = 1};

    snprintf(path, sizeof(path), "%s/test-SR.dcm", PYDICOM_DIR); /* no pixel data */
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -ENOTSUP);
    snprintf(path, sizeof(path), "%s/JPEG2000.dcm", PYDICOM_DIR); /* no codec */
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -ENOTSUP);
    cr_assert_eq(hr_render_frame("/nonexistent/x.dcm", &rq, &data, &len, &ct), -EIO);
    snprintf(path, sizeof(path), "%s/CT_small.dcm", PYDICOM_DIR);
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), 0);
    free(data);
    rq.frame = 2;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -ENOENT);
    rq.frame = 0;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -EINVAL);
    rq.frame = 1;
    rq.window_set = 1;
    rq.width = 0;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -EINVAL);
    rq.window_set = 0;
    rq.max_w = HR_RENDER_MAX_SIDE + 1;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -EINVAL);
    rq.max_w = 0;
    rq.quality = 101;
    cr_assert_eq(hr_render_frame(path, &rq, &data, &len, &ct), -EINVAL);
    rq.quality = 0;
    cr_assert_null(data);

    /* a frame larger than HR_RENDER_MAX_PIXELS is refused before decoding */
    snprintf(big, sizeof(big), "%s/big.dcm", g_dir);
    char cmd[1600];
    snprintf(cmd, sizeof(cmd), "cp %s %s && dcmodify -nb -m Rows=9000 -m Columns=9000 %s", path,
             big, big);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(hr_render_frame(big, &rq, &data, &len, &ct), -E2BIG);
    cr_assert_null(data);
}
