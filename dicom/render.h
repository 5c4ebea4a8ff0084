/* One frame of a stored object rendered to JPEG or PNG (PS3.18 rendered and
 * thumbnail resources, share pages), with DCMTK's image module
 * (dicom/dcmtk_render.cc). Blocking: call on a pool thread, never on the
 * loop. Memory is bounded: only the requested frame is decoded, and a frame
 * larger than HR_RENDER_MAX_PIXELS is refused before decoding. */
#ifndef HR_RENDER_H
#define HR_RENDER_H

#include <stddef.h>

#define HR_RENDER_MAX_PIXELS (64u << 20) /* rows * columns * samples of one frame */
#define HR_RENDER_MAX_SIDE   4096u       /* a requested viewport side */

enum hr_render_fmt { HR_RENDER_JPEG, HR_RENDER_PNG };

typedef struct hr_render_req {
    enum hr_render_fmt fmt;
    unsigned frame;        /* 1-based frame number */
    int window_set;        /* 1: center/width below; 0: the object's first VOI window,
                              else its VOI LUT, else min-max of the frame */
    double center, width;  /* width > 0 when window_set */
    unsigned max_w, max_h; /* fit within this box, aspect kept, never enlarged; 0 = no bound */
    int quality;           /* JPEG quality 1..100; 0 = 90 */
} hr_render_req;

/* Renders frame rq->frame of the Part 10 file at path. On success *out
 * (malloc'd, the caller frees) holds the encoded image of *out_len bytes and
 * *content_type names it ("image/jpeg", "image/png"; static storage).
 * Returns 0; -ENOENT when the object has no such frame; -ENOTSUP when it is
 * not an image DCMTK can decode (no pixel data, unsupported transfer syntax
 * or photometric interpretation); -E2BIG when the frame exceeds
 * HR_RENDER_MAX_PIXELS; -EINVAL for a bad request; -EIO for an unreadable
 * file; -ENOMEM. */
int hr_render_frame(const char *path, const hr_render_req *rq, unsigned char **out, size_t *out_len,
                    const char **content_type);

#endif
