/* fsync_limit: the durable-write limit of the disk for bench/ingest. For each
 * regular file in the source directories: read it, write it to a temporary
 * file in DEST, fsync, rename into place, fsync DEST. Prints
 * "<files> <bytes> <seconds>" on stdout.
 * usage: fsync_limit DEST SRC_DIR... */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies src/name to dest/name durably; *buf (cap *cap) is reused. */
static int copy_one(int src_dir, int dest_dir, const char *name, char **buf, size_t *cap,
                    size_t *bytes)
{
    char tmp[512];
    struct stat st;
    size_t got = 0;
    int in = -1, out = -1, rc = 0;

    in = openat(src_dir, name, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if ((size_t)st.st_size > *cap) {
        char *nb = realloc(*buf, (size_t)st.st_size);
        if (nb == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        *buf = nb;
        *cap = (size_t)st.st_size;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(in, *buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            goto out;
        }
        got += (size_t)r;
    }
    snprintf(tmp, sizeof(tmp), ".%d.%s.tmp", (int)getpid(), name);
    out = openat(dest_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(out, *buf, got);
    if (rc)
        goto out;
    if (fsync(out) != 0 || close(out) != 0) {
        out = -1;
        rc = -errno;
        goto out;
    }
    out = -1;
    if (renameat(dest_dir, tmp, dest_dir, name) != 0 || fsync(dest_dir) != 0) {
        rc = -errno;
        goto out;
    }
    *bytes += got;
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    size_t files = 0, bytes = 0, cap = 0;
    char *buf = NULL;
    int dest, i, rc = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: fsync_limit DEST SRC_DIR...\n");
        return 2;
    }
    dest = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dest < 0) {
        perror(argv[1]);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 2; i < argc && rc == 0; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        if (d == NULL) {
            perror(argv[i]);
            rc = 1;
            break;
        }
        while ((e = readdir(d)) != NULL && rc == 0) {
            if (e->d_name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
                continue;
            rc = copy_one(dirfd(d), dest, e->d_name, &buf, &cap, &bytes);
            if (rc)
                fprintf(stderr, "fsync_limit: %s/%s: %s\n", argv[i], e->d_name, strerror(-rc));
            else
                files++;
        }
        closedir(d);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%zu %zu %.3f\n", files, bytes,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(buf);
    close(dest);
    return rc ? 1 : 0;
}
