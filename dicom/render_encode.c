/* JPEG and PNG encoders of rendered frames (render_encode.h). */
#include "render_encode.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

/* ---- JPEG ---- */

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    unsigned char *mem; /* the output buffer (jpeg_mem_dest) */
    unsigned long len;
} jerr;

static void jpeg_fail(j_common_ptr cinfo)
{
    jerr *e = (jerr *)cinfo->err;
    longjmp(e->jb, 1);
}

static void jpeg_quiet(j_common_ptr cinfo)
{
    (void)cinfo; /* warnings are not logged: the input is ours */
}

int dcm__encode_jpeg(const unsigned char *px, unsigned w, unsigned h, int samples, int quality,
                     unsigned char **out, size_t *out_len)
{
    struct jpeg_compress_struct ci;
    jerr e;

    *out = NULL;
    *out_len = 0;
    if (!px || w == 0 || h == 0 || w > 65500 || h > 65500 || (samples != 1 && samples != 3) ||
        quality < 1 || quality > 100)
        return -EINVAL;
    memset(&ci, 0, sizeof(ci));
    memset(&e, 0, sizeof(e));
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_fail;
    e.pub.output_message = jpeg_quiet;
    /* e lives in memory (its address is libjpeg's): e.mem is valid after a longjmp */
    if (setjmp(e.jb)) {
        jpeg_destroy_compress(&ci);
        free(e.mem);
        return -EIO;
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &e.mem, &e.len); /* libjpeg-turbo mallocs and grows it */
    ci.image_width = w;
    ci.image_height = h;
    ci.input_components = samples;
    ci.in_color_space = samples == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * w * (size_t)samples);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    if (!e.mem || e.len == 0) {
        free(e.mem);
        return -EIO;
    }
    *out = e.mem;
    *out_len = e.len;
    return 0;
}

/* ---- PNG ---- */

typedef struct pngbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} pngbuf;

static void png_put(png_structp png, png_bytep data, png_size_t n)
{
    pngbuf *b = png_get_io_ptr(png);
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            png_error(png, "out of memory");
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void png_flush_nop(png_structp png)
{
    (void)png;
}

static void png_quiet(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int dcm__encode_png(const unsigned char *px, unsigned w, unsigned h, int samples,
                    unsigned char **out, size_t *out_len)
{
    png_structp png = NULL;
    png_infop info = NULL;
    pngbuf b = {0};
    volatile int rc = 0;

    *out = NULL;
    *out_len = 0;
    if (!px || w == 0 || h == 0 || (samples != 1 && samples != 3))
        return -EINVAL;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, png_quiet);
    if (!png)
        return -ENOMEM;
    info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        rc = b.oom ? -ENOMEM : -EIO;
        png_destroy_write_struct(&png, &info);
        free(b.p);
        return rc;
    }
    png_set_write_fn(png, &b, png_put, png_flush_nop);
    png_set_IHDR(png, info, w, h, 8, samples == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (unsigned y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(px + (size_t)y * w * (size_t)samples));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = b.p;
    *out_len = b.len;
    return 0;
}
