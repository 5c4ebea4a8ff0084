/* A growable byte buffer with a hard cap. The buffer owns its storage; free
 * with hr_buf_free(). Growth beyond cap fails with HR_ETOOBIG, never silently. */
#ifndef HR_BUF_H
#define HR_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_buf {
    uint8_t *data;
    size_t len; /* bytes in use */
    size_t pos; /* read position (consumer's cursor), <= len */
    size_t alloc;
    size_t cap; /* maximum alloc */
} hr_buf;

/* Initialises an empty buffer that may grow to cap bytes; allocates nothing. */
void hr_buf_init(hr_buf *b, size_t cap);
void hr_buf_free(hr_buf *b);
/* Makes room for at least n more bytes after len. 0, -ENOMEM or HR_ETOOBIG. */
int hr_buf_reserve(hr_buf *b, size_t n);
/* Appends n bytes. 0, -ENOMEM or HR_ETOOBIG. */
int hr_buf_append(hr_buf *b, const void *p, size_t n);
/* Drops the consumed bytes [0, pos) by moving the rest to the front. */
void hr_buf_compact(hr_buf *b);
/* Empties the buffer, keeping its storage. */
void hr_buf_reset(hr_buf *b);
/* Frees storage above keep bytes when the buffer is empty (idle connections). */
void hr_buf_shrink(hr_buf *b, size_t keep);

#endif
