/* A streamed response body made of literal pieces (multipart headers) and
 * byte ranges of files (objects), sent with backpressure: one window of a
 * file is mapped on the thread pool (its pages faulted in there, never on
 * the loop), handed to h2o without copying, and unmapped once h2o asks for
 * more. Memory per response is one window, whatever the object size. */
#ifndef VA_STREAM_H
#define VA_STREAM_H

#include "va.h"

#include <stdint.h>

#define VA_STREAM_WINDOW (1u << 20)

typedef struct va_stream va_stream;

va_stream *va_stream_new(void);
/* Pieces are sent in order. 0 or -ENOMEM. */
int va_stream_text(va_stream *s, const char *text, size_t len);
int va_stream_printf(va_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int va_stream_file(va_stream *s, const char *path, uint64_t offset, uint64_t length);
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
