/* A streamed response body made of literal pieces (multipart headers) and
 * byte ranges of files (objects, metadata sidecars), sent with backpressure:
 * each step runs on the thread pool and prepares one buffer, which MHD's
 * content reader copies (on the loop) into its VA_STREAM_BLOCK buffer; the
 * connection is suspended while the next one is prepared:
 *   - a range of at least VA_STREAM_SMALL bytes left is mapped one window
 *     (VA_STREAM_WINDOW) at a time, its pages faulted in there (MAP_POPULATE);
 *   - smaller ranges and literals are copied (pread) into one buffer of
 *     VA_STREAM_BATCH bytes, as many consecutive pieces as fit.
 * The loop thread never reads a file nor first touches a mapped page. Per
 * response: one open file (kept across consecutive ranges of the same file),
 * one window or batch buffer, MHD's block, one pool job per window or per batch (so the
 * work follows the bytes sent, not the number of pieces), at most
 * VA_STREAM_MAX_PIECES pieces. */
#ifndef VA_STREAM_H
#define VA_STREAM_H

#include "va.h"

#include <stdint.h>

#define VA_STREAM_WINDOW     (1u << 20)   /* mapped window of a large range */
#define VA_STREAM_BATCH      (256u << 10) /* copy buffer of small pieces */
#define VA_STREAM_SMALL      (64u << 10)  /* ranges with less left are copied */
#define VA_STREAM_MAX_PIECES (1u << 18)   /* per response; beyond: HR_ETOOBIG */
#define VA_STREAM_BLOCK      (128u << 10) /* MHD's response buffer */

typedef struct va_stream va_stream;

va_stream *va_stream_new(void);
/* Pieces are sent in order; texts and paths are copied. Consecutive texts
 * are merged, a range continuing the previous one of the same file extends
 * it, and consecutive ranges of one file share one copy of its path. 0,
 * -ENOMEM, or HR_ETOOBIG past VA_STREAM_MAX_PIECES pieces. */
int va_stream_text(va_stream *s, const char *text, size_t len);
int va_stream_printf(va_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int va_stream_file(va_stream *s, const char *path, uint64_t offset, uint64_t length);
/* Appends len bytes of buf (malloc'd) as one piece without copying: the
 * stream owns buf from the call on (freed with the stream, or at once when
 * this fails). 0, HR_ETOOBIG (too many pieces). */
int va_stream_take(va_stream *s, uint8_t *buf, size_t len);
/* Total bytes of the body. */
uint64_t va_stream_length(const va_stream *s);
/* Starts the response (status, content type; Content-Length set) and sends
 * the body; the stream frees itself when done or when the client goes away.
 * A file that cannot be read mid-stream aborts the response (the client sees
 * a truncated body: the headers are gone already). */
void va_stream_start(va_stream *s, va_req *r, int status, const char *content_type);
/* Frees a stream that was never started. */
void va_stream_free(va_stream *s);

#endif
