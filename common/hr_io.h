/* Small blocking file I/O helpers (thread pool and CLI only). */
#ifndef HR_IO_H
#define HR_IO_H

#include <stddef.h>

/* Writes all n bytes (retrying short writes and EINTR). 0 or -errno. */
int hr_write_all(int fd, const void *p, size_t n);

/* Reads a whole file of 1..max bytes into a new NUL-terminated buffer
 * (*len without the NUL). 0; -errno; HR_ETOOBIG when it is empty or larger
 * than max (nothing allocated); HR_ETRUNC when it shrank while read. */
int hr_read_file(const char *path, size_t max, unsigned char **out, size_t *len);

#endif
