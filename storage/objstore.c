#include "objstore.h"
#include "../common/hr_err.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p1(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

int sto_objstore_open(sto_objstore *s, const char *root, int *removed)
{
    *removed = 0;
    if (strlen(root) + 16 >= STO_PATH_MAX)
        return -ENAMETOOLONG;
    memset(s, 0, sizeof(*s));
    snprintf(s->root, sizeof(s->root), "%s", root);
    snprintf(s->tmp, sizeof(s->tmp), "%s/tmp", root);
    snprintf(s->objects, sizeof(s->objects), "%s/objects", root);
    snprintf(s->meta, sizeof(s->meta), "%s/meta", root);
    int rc = mkdir_p1(s->root);
    if (!rc)
        rc = mkdir_p1(s->tmp);
    if (!rc)
        rc = mkdir_p1(s->meta);
    if (!rc)
        rc = mkdir_p1(s->objects);
    if (rc)
        return rc;
    /* the 256 first-level directories exist from the start, so that only a
     * second-level directory is ever created on the ingest path */
    int created = 0;
    for (int i = 0; i < 256; i++) {
        char sub[STO_PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%02x", s->objects, i);
        if (mkdir(sub, 0750) == 0)
            created = 1;
        else if (errno != EEXIST)
            return -errno;
    }
    if (created && (rc = fsync_dir(s->objects)) != 0)
        return rc;
    DIR *d = opendir(s->tmp);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

int sto_objstore_tmp_create(const sto_objstore *s, char *path)
{
    static atomic_ulong seq;
    for (int attempt = 0; attempt < 8; attempt++) {
        snprintf(path, STO_PATH_MAX, "%s/%ld.%lu.part", s->tmp, (long)getpid(),
                 (unsigned long)atomic_fetch_add(&seq, 1));
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

void sto_objstore_path(const sto_objstore *s, const char *sha, char *out)
{
    snprintf(out, STO_PATH_MAX, "%s/%.2s/%.2s/%s", s->objects, sha, sha + 2, sha);
}

void sto_objstore_meta_path(const sto_objstore *s, const char *sha, const char *ext, char *out)
{
    snprintf(out, STO_PATH_MAX, "%s/%.2s/%.2s/%s%s", s->meta, sha, sha + 2, sha, ext);
}

int sto_objstore_meta_dir(const sto_objstore *s, const char *sha)
{
    char d[STO_PATH_MAX];
    int rc = mkdir_p1(s->meta);
    snprintf(d, sizeof(d), "%s/%.2s", s->meta, sha);
    if (!rc)
        rc = mkdir_p1(d);
    snprintf(d, sizeof(d), "%s/%.2s/%.2s", s->meta, sha, sha + 2);
    if (!rc)
        rc = mkdir_p1(d);
    return rc;
}

/* mkdir dir if missing; *created tells whether its parent needs an fsync. */
static int make_dir(const char *dir, int *created)
{
    *created = 0;
    if (mkdir(dir, 0750) == 0) {
        *created = 1;
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

int sto_objstore_commit(const sto_objstore *s, int fd, const char *tmp_path, const char *sha,
                        int *existed)
{
    char d1[STO_PATH_MAX], d2[STO_PATH_MAX], final[STO_PATH_MAX];
    int rc, new1 = 0, new2 = 0;
    snprintf(d1, sizeof(d1), "%s/%.2s", s->objects, sha);
    snprintf(d2, sizeof(d2), "%s/%.2s/%.2s", s->objects, sha, sha + 2);
    sto_objstore_path(s, sha, final);
    /* Directories first, then the data: the fdatasync below makes the
     * filesystem commit its journal, which then carries the new directory
     * too, so the parent fsyncs that follow are normally free. */
    rc = make_dir(d1, &new1);
    if (!rc)
        rc = make_dir(d2, &new2);
    if (fdatasync(fd) && !rc)
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && new1)
        rc = fsync_dir(s->objects);
    if (!rc && new2)
        rc = fsync_dir(d1);
    if (rc)
        goto out;
    /* An object of this name may exist (the same data set sent again, perhaps
     * with another File Meta header): it stays as it is, byte for byte (its
     * size and sidecars describe it), and the new copy is dropped. Its mtime
     * is refreshed so start-up reconciliation, which re-examines recent
     * objects, also covers this receipt's index commit; the directory fsync
     * also covers a concurrent first store still between its rename and its
     * own directory fsync. */
    rc = renameat2(AT_FDCWD, tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) ? -errno : 0;
    if (rc == -EINVAL) { /* a filesystem without RENAME_NOREPLACE: link is exclusive too */
        rc = link(tmp_path, final) ? -errno : 0;
        if (!rc)
            unlink(tmp_path);
    }
    if (!rc) {
        if (existed)
            *existed = 0;
        return fsync_dir(d2);
    }
    if (rc != -EEXIST)
        goto out;
    if (existed)
        *existed = 1;
    unlink(tmp_path);
    int ofd = open(final, O_RDONLY | O_CLOEXEC);
    if (ofd < 0)
        return -errno;
    rc = futimens(ofd, NULL) || fsync(ofd) ? -errno : 0;
    close(ofd);
    return rc ? rc : fsync_dir(d2);
out:
    unlink(tmp_path);
    return rc;
}

void sto_objstore_discard(int fd, const char *tmp_path)
{
    if (fd >= 0)
        close(fd);
    unlink(tmp_path);
}
