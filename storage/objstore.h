/* Local content-addressed object store under <data_dir>:
 *   tmp/                 objects being received (never visible as objects)
 *   objects/aa/bb/<sha>  finished Part 10 files; <sha> = SHA-256 of the dataset
 *                        bytes as received (after the File Meta Information)
 *   meta/aa/bb/<sha>.*   sidecars derived from the object (storage/meta.h); aa/bb
 *                        are created lazily
 * Functions here block (open, fsync, rename): call them from the libuv thread
 * pool, or from the CLI. */
#ifndef STO_OBJSTORE_H
#define STO_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#define STO_PATH_MAX 1024

typedef struct sto_objstore {
    char root[STO_PATH_MAX];    /* data dir */
    char tmp[STO_PATH_MAX];     /* <root>/tmp */
    char objects[STO_PATH_MAX]; /* <root>/objects */
    char meta[STO_PATH_MAX];    /* <root>/meta */
} sto_objstore;

/* Creates <root>, tmp/, meta/, objects/ and objects/00..ff (mode 0750) if missing and removes stale
 * files in tmp/ (left by a crash: they were never acknowledged). *removed gets
 * their count. 0 or -errno. */
int sto_objstore_open(sto_objstore *s, const char *root, int *removed);

/* Creates a new empty temp file opened O_WRONLY; writes its path into path
 * (cap STO_PATH_MAX) and returns the fd (>= 0) or -errno. */
int sto_objstore_tmp_create(const sto_objstore *s, char *path);

/* Path of the object named sha (64 hex) into out (cap STO_PATH_MAX). */
void sto_objstore_path(const sto_objstore *s, const char *sha, char *out);

/* Path of the sidecar of object sha with suffix ext (".json", ".frames") into out (cap
 * STO_PATH_MAX): meta/aa/bb/<sha><ext>. */
void sto_objstore_meta_path(const sto_objstore *s, const char *sha, const char *ext, char *out);

/* Creates meta/, meta/aa and meta/aa/bb for sha when missing (no fsync: sidecars are
 * derived data). 0 or -errno. */
int sto_objstore_meta_dir(const sto_objstore *s, const char *sha);

/* Makes the temp file durable under its content name: fsync(fd), close(fd),
 * create objects/aa/bb (fsyncing each new directory's parent), rename into
 * place and fsync the directory. An existing object of that name (the same
 * data set; its File Meta header may differ) is never replaced: the temp file
 * is dropped, the object's mtime refreshed and made durable (*existed, when
 * not NULL, tells). The fd is closed in every case; on error the temp
 * file is unlinked. 0 or -errno. */
int sto_objstore_commit(const sto_objstore *s, int fd, const char *tmp_path, const char *sha,
                        int *existed);

/* Closes fd (if >= 0) and unlinks the temp file. */
void sto_objstore_discard(int fd, const char *tmp_path);

#endif
