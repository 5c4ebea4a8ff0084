#include "reindex.h"
#include "index.h"
#include "meta.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_log.h"
#include "../dicom/p10.h"
#include "../dicom/scanner.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

static int is_hex_name(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!hr_is_hex_lower(s[i]))
            return 0;
    return 1;
}

/* Scans one object; hashes its dataset; 0, HR_EMISMATCH (name), parse errors, -errno. */
static int scan_file(const char *path, const char *sha, dcm_attrs *a, uint64_t *size, uint8_t *buf)
{
    int rc = 0;
    uint64_t pos = 0;
    char hex[65];
    hr_sha256 *h = hr_sha256_new();
    dcm_scanner *sc = dcm_scanner_new(DCM_SCAN_PART10, NULL, a);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!h || !sc) {
        rc = -ENOMEM;
        goto out;
    }
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        rc = dcm_scanner_feed(sc, buf, (size_t)n);
        if (rc < 0)
            goto out;
        /* hash what lies after the File Meta Information */
        uint64_t from = a->dataset_offset;
        if (from > 0 && pos + (uint64_t)n > from) {
            uint64_t skip = from > pos ? from - pos : 0;
            hr_sha256_update(h, buf + skip, (size_t)((uint64_t)n - skip));
        }
        pos += (uint64_t)n;
    }
    rc = dcm_scanner_finish(sc);
    if (rc != DCM_SCAN_END) {
        rc = rc < 0 ? rc : HR_ETRUNC;
        goto out;
    }
    rc = 0;
    hr_sha256_final_hex(h, hex);
    if (strcmp(hex, sha) != 0)
        rc = HR_EMISMATCH;
    *size = pos;
out:
    if (fd >= 0)
        close(fd);
    hr_sha256_free(h);
    dcm_scanner_free(sc);
    return rc;
}

/* 1 when the index already holds this file as the current version of its
 * instance (header read only), 0 when it must be indexed. */
static int already_indexed(const char *path, const char *sha, redisContext *c, uint8_t *buf)
{
    dcm_attrs a;
    int found = 0;
    dcm_scanner *sc = dcm_scanner_new(DCM_SCAN_PART10, NULL, &a);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 && sc ? read(fd, buf, READ_CHUNK) : -1;
    if (n > 0 && dcm_scanner_feed(sc, buf, (size_t)n) >= 0 && a.study_instance_uid[0] &&
        a.sop_instance_uid[0]) {
        redisReply *r =
            redisCommand(c, "HGET hr:{%s}:i:%s sha", a.study_instance_uid, a.sop_instance_uid);
        found = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, sha) == 0;
        freeReplyObject(r);
    }
    if (fd >= 0)
        close(fd);
    dcm_scanner_free(sc);
    return found;
}

/* Builds the WADO-RS sidecars of an object when missing; failures are only logged (the
 * readers rebuild them lazily). */
static void ensure_meta(const sto_objstore *s, const char *sha)
{
    int rc = sto_meta_ensure(s, sha, NULL);
    if (rc)
        hr_warn("reindex", "%s: WADO-RS sidecars not built: %s", sha, hr_strerror(rc));
}

typedef struct walk_hook {
    sto_reindexed_fn fn;
    void *arg;
    const char *hub; /* the hub's own hospital id, or NULL */
} walk_hook;

static int index_file(const sto_objstore *s, redisContext *c, const char *sha,
                      sto_reindex_stats *st, uint8_t *buf, int check_first, const walk_hook *hk)
{
    char path[STO_PATH_MAX], hospital[64] = "unknown";
    long long received = 0;
    uint64_t size = 0;
    dcm_attrs a;
    sto_objstore_path(s, sha, path);
    st->files++;
    if (check_first && already_indexed(path, sha, c, buf)) {
        st->present++;
        ensure_meta(s, sha);
        return 0;
    }
    int rc = scan_file(path, sha, &a, &size, buf);
    if (rc) {
        hr_error("reindex", "%s: %s", path, hr_strerror(rc));
        if (rc < 0 && rc > -4096)
            st->errors++;
        else
            st->corrupt++;
        return 0;
    }
    if (dcm_p10_parse_private_info(a.private_info, hospital, sizeof(hospital), &received)) {
        struct stat sb;
        if (stat(path, &sb) == 0)
            received = (long long)sb.st_mtime * 1000;
        hr_warn("reindex", "%s: no huren source information; hospital \"unknown\"", path);
    }
    sto_instance_rec rec = {&a, sha, size, hospital, a.source_ae, received, NULL, 0, 0};
    rec.hub_derived =
        hk->hub && strcmp(hk->hub, hospital) == 0 && sto_sop_class_derived(a.sop_class_uid);
    sto_index_result res;
    rc = sto_index_commit_sync(c, &rec, &res);
    enum sto_index_outcome outcome = res.outcome;
    if (rc == HR_EREDIS)
        return rc;
    if (rc == HR_EFORBIDDEN) { /* files of another hospital in a study (older versions) */
        hr_error("reindex", "%s: study %s belongs to another hospital than %s: not indexed", path,
                 a.study_instance_uid, hospital);
        st->refused++;
        return 0;
    }
    if (rc) {
        hr_error("reindex", "%s: %s", path, hr_strerror(rc));
        st->corrupt++;
        return 0;
    }
    ensure_meta(s, sha);
    if (hk->fn && (outcome == STO_INDEX_NEW || outcome == STO_INDEX_NEW_VERSION)) {
        int hrc = hk->fn(hk->arg, c, &a, hospital, a.source_ae, received);
        if (hrc) {
            hr_error("reindex", "%s: after-index step failed: %s", path, hr_strerror(hrc));
            st->errors++;
        }
    }
    if (outcome == STO_INDEX_NEW)
        st->added++;
    else if (outcome == STO_INDEX_IDENTICAL)
        st->present++;
    else
        st->versions++;
    return 0;
}

static long long mtime_ms(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (long long)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

/* Walks objects/aa/bb/<sha>; since_ms > 0 limits it to directories and files
 * modified since then (a rename into bb/ updates bb's mtime). */
static int walk(const sto_objstore *s, redisContext *c, sto_reindex_stats *st, long long since_ms,
                const walk_hook *hk)
{
    memset(st, 0, sizeof(*st));
    int rc = 0;
    uint8_t *buf = malloc(READ_CHUNK);
    DIR *d1 = opendir(s->objects);
    if (!buf || !d1) {
        rc = buf ? -errno : -ENOMEM;
        goto out;
    }
    struct dirent *e1;
    while (!rc && (e1 = readdir(d1)) != NULL) {
        if (!is_hex_name(e1->d_name, 2))
            continue;
        char p1[STO_PATH_MAX];
        snprintf(p1, sizeof(p1), "%s/%s", s->objects, e1->d_name);
        DIR *d2 = opendir(p1);
        if (!d2)
            continue;
        struct dirent *e2;
        while (!rc && (e2 = readdir(d2)) != NULL) {
            if (!is_hex_name(e2->d_name, 2))
                continue;
            char p2[STO_PATH_MAX];
            snprintf(p2, sizeof(p2), "%s/%s", p1, e2->d_name);
            if (since_ms > 0 && mtime_ms(p2) < since_ms)
                continue;
            DIR *d3 = opendir(p2);
            if (!d3)
                continue;
            struct dirent *e3;
            while (!rc && (e3 = readdir(d3)) != NULL) {
                if (!is_hex_name(e3->d_name, 64))
                    continue;
                if (since_ms > 0) {
                    char p3[STO_PATH_MAX];
                    snprintf(p3, sizeof(p3), "%s/%s", p2, e3->d_name);
                    if (mtime_ms(p3) < since_ms)
                        continue;
                }
                rc = index_file(s, c, e3->d_name, st, buf, since_ms > 0, hk);
            }
            closedir(d3);
        }
        closedir(d2);
    }
out:
    if (d1)
        closedir(d1);
    free(buf);
    return rc;
}

int sto_reindex(const sto_objstore *s, redisContext *c, const char *hub, sto_reindex_stats *st)
{
    walk_hook hk = {NULL, NULL, hub};
    return walk(s, c, st, 0, &hk);
}

int sto_reconcile(const sto_objstore *s, redisContext *c, const char *hub, sto_reindex_stats *st,
                  int *full)
{
    return sto_reconcile_hook(s, c, hub, st, full, NULL, NULL);
}

int sto_reconcile_hook(const sto_objstore *s, redisContext *c, const char *hub,
                       sto_reindex_stats *st, int *full, sto_reindexed_fn fn, void *arg)
{
    walk_hook hk = {fn, arg, hub}, nohook = {NULL, NULL, hub};
    long long checkpoint = 0;
    redisReply *r = redisCommand(c, "GET hr:meta:checkpoint");
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    if (r->type == REDIS_REPLY_STRING)
        checkpoint = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    *full = checkpoint <= 0;
    if (*full) /* a whole archive new to this Redis: old studies are not worklist arrivals */
        return walk(s, c, st, 0, &nohook);
    long long since = checkpoint - STO_RECONCILE_MARGIN_MS;
    return walk(s, c, st, since > 0 ? since : 1, &hk);
}
