/* Small blocking file I/O helpers (thread pool and CLI only). */
#ifndef HR_IO_H
#define HR_IO_H

#include <stddef.h>

/* Writes all n bytes (retrying short writes and EINTR). 0 or -errno. */
int hr_write_all(int fd, const void *p, size_t n);

#endif
