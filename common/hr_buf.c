#include "hr_buf.h"
#include "hr_err.h"

#include <stdlib.h>
#include <string.h>

void hr_buf_init(hr_buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

void hr_buf_free(hr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->pos = b->alloc = 0;
}

int hr_buf_reserve(hr_buf *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        return HR_ETOOBIG;
    size_t need = b->len + n;
    if (need <= b->alloc)
        return 0;
    size_t na = b->alloc ? b->alloc : 4096;
    while (na < need)
        na *= 2;
    if (na > b->cap)
        na = b->cap;
    uint8_t *p = realloc(b->data, na);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->alloc = na;
    return 0;
}

int hr_buf_append(hr_buf *b, const void *p, size_t n)
{
    int rc = hr_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void hr_buf_compact(hr_buf *b)
{
    if (b->pos == 0)
        return;
    memmove(b->data, b->data + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
}

void hr_buf_reset(hr_buf *b)
{
    b->len = b->pos = 0;
}

void hr_buf_shrink(hr_buf *b, size_t keep)
{
    if (b->len != b->pos || b->alloc <= keep)
        return;
    b->len = b->pos = 0;
    if (keep == 0) {
        free(b->data);
        b->data = NULL;
        b->alloc = 0;
        return;
    }
    uint8_t *p = realloc(b->data, keep);
    if (p) {
        b->data = p;
        b->alloc = keep;
    }
}
