/* append_limit: the sequential durable-append limit of the disk for
 * bench/hl7. Appends N records of SIZE bytes to one new file in DIR, each
 * followed by fdatasync (what a journal with one record per commit does:
 * one MLLP connection, one message in flight). Prints "<records> <seconds>".
 * usage: append_limit DIR N SIZE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: append_limit DIR N SIZE\n");
        return 2;
    }
    long n = atol(argv[2]), size = atol(argv[3]);
    if (n < 1 || size < 1 || size > (1 << 24))
        return 2;
    char path[4096];
    snprintf(path, sizeof(path), "%s/append_limit.%ld", argv[1], (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0600);
    if (fd < 0) {
        fprintf(stderr, "append_limit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *buf = malloc((size_t)size);
    if (!buf)
        return 1;
    memset(buf, 'x', (size_t)size);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (write(fd, buf, (size_t)size) != size || fdatasync(fd) != 0) {
            fprintf(stderr, "append_limit: %s\n", strerror(errno));
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    unlink(path);
    free(buf);
    printf("%ld %.3f\n", n, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
