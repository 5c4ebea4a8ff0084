#include "hr_io.h"
#include "hr_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int hr_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

int hr_read_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
    struct stat st;
    int rc = 0;
    unsigned char *b = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st)) {
        rc = -errno;
        goto out;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > max) {
        rc = HR_ETOOBIG;
        goto out;
    }
    b = malloc((size_t)st.st_size + 1);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, b + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : HR_ETRUNC;
            goto out;
        }
        got += (size_t)k;
    }
    b[got] = '\0';
    *out = b;
    *len = got;
    b = NULL;
out:
    free(b);
    close(fd);
    return rc;
}
