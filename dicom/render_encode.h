/* Internal to dicom/: 8-bit pixels to JPEG (libjpeg-turbo) or PNG (libpng)
 * for hr_render_frame (dicom/dcmtk_render.cc). Plain C because both
 * libraries report errors with longjmp, which must not cross C++ frames. */
#ifndef DCM_RENDER_ENCODE_H
#define DCM_RENDER_ENCODE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Encodes w x h pixels of samples (1: grey, 3: RGB interleaved) bytes each,
 * rows top to bottom, as baseline JPEG of quality 1..100 (4:2:0 for colour).
 * On success *out (malloc'd, the caller frees) holds *out_len bytes. 0,
 * -EINVAL, -ENOMEM, -EIO (the library failed). */
int dcm__encode_jpeg(const unsigned char *px, unsigned w, unsigned h, int samples, int quality,
                     unsigned char **out, size_t *out_len);

/* The same as an 8-bit PNG (grey or RGB, no interlace, zlib level 6). */
int dcm__encode_png(const unsigned char *px, unsigned w, unsigned h, int samples,
                    unsigned char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif
