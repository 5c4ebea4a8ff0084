/* huren reindex: rebuild the Redis index from the object files, the signed
 * report version records and the lab journal. */
#include "cli.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../reports/lab.h"
#include "../reports/report.h"
#include "../storage/index.h"
#include "../storage/redis_proc.h"
#include "../storage/reindex.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_reindex(int argc, char **argv)
{
    static const char *const flags_names[] = {"--flush", NULL};
    hr_config cfg;
    int flags = 0, redis_pid = 0, status = 1, lock_fd = -1;
    redisContext *c = NULL;
    sto_objstore store;
    sto_redis_addr addr;
    int rc = cli_load_config(argc, argv, "usage: huren reindex [--config FILE] [--flush]", &cfg,
                             &flags, flags_names);
    if (rc)
        return rc < 0 ? 0 : rc;
    snprintf(store.root, sizeof(store.root), "%s", cfg.data_dir);
    snprintf(store.tmp, sizeof(store.tmp), "%s/tmp", cfg.data_dir);
    snprintf(store.objects, sizeof(store.objects), "%s/objects", cfg.data_dir);
    struct stat sb;
    if (stat(store.objects, &sb) != 0) {
        fprintf(stderr, "huren: %s: no object store here\n", store.objects);
        goto out;
    }
    if (cfg.redis.url[0]) {
        if (sto_redis_addr_parse(cfg.redis.url, &addr)) {
            fprintf(stderr, "huren: redis.url: cannot parse \"%s\"\n", cfg.redis.url);
            goto out;
        }
    } else {
        char dir[HR_PATH_MAX + 8];
        cli_redis_dir(&cfg, dir, sizeof(dir));
        memset(&addr, 0, sizeof(addr));
        sto_redis_socket_path(dir, addr.host, sizeof(addr.host));
        /* a huren serving this data dir holds the lock and its redis: use it;
         * otherwise hold the lock ourselves while we run our own redis */
        lock_fd = cli_lock_data_dir(cfg.data_dir);
        int serving = lock_fd == -EBUSY;
        if (!serving) {
            sto_redis_opts ro = {cfg.redis.server, dir, cfg.redis.appendfsync};
            redis_pid = sto_redis_start_blocking(&ro, cfg.redis.connect_timeout_ms);
            if (redis_pid < 0) {
                fprintf(stderr, "huren: cannot start redis-server: %s\n", hr_strerror(redis_pid));
                redis_pid = 0;
                goto out;
            }
        }
    }
    if (!c) {
        int err;
        c = sto_index_connect_sync(&addr, cfg.redis.connect_timeout_ms, &err);
        if (!c) {
            fprintf(stderr, "huren: cannot connect to redis\n");
            goto out;
        }
    }
    if (flags & 1) {
        long long deleted;
        rc = sto_index_flush_sync(c, &deleted);
        if (rc) {
            fprintf(stderr, "huren: cannot flush the index\n");
            goto out;
        }
        printf("reindex: flushed %lld index keys\n", deleted);
    }
    sto_reindex_stats st;
    rc = sto_reindex(&store, c, cfg.dicom.hospital, &st);
    printf("reindex: %lld objects: %lld added, %lld already indexed, %lld other versions, "
           "%lld corrupt, %lld unreadable, %lld refused (another hospital's study)\n",
           st.files, st.added, st.present, st.versions, st.corrupt, st.errors, st.refused);
    if (rc) {
        fprintf(stderr, "huren: reindex stopped: %s\n", hr_strerror(rc));
        goto out;
    }
    rpt_reconcile_stats rs;
    rc = rpt_reconcile(c, &cfg, 1, &rs);
    printf("reindex: %lld signed report version records: %lld restored, %lld already indexed, "
           "%lld not applicable, %lld corrupt, %lld unreadable\n",
           rs.files, rs.applied, rs.present, rs.refused, rs.corrupt, rs.errors);
    if (rc) {
        fprintf(stderr, "huren: reindex of report versions stopped: %s\n", hr_strerror(rc));
        goto out;
    }
    /* lab reports: every message of the lab journal again (idempotent) */
    char jdir[HR_PATH_MAX + 32];
    long lab_msgs = 0, lab_refused = 0;
    snprintf(jdir, sizeof(jdir), "%s/journal/" LAB_JOURNAL_NAME, cfg.data_dir);
    rc = lab_reindex(c, &cfg, jdir, &lab_msgs, &lab_refused);
    printf("reindex: %ld lab messages applied, %ld refused\n", lab_msgs, lab_refused);
    if (rc) {
        fprintf(stderr, "huren: reindex of lab reports stopped: %s\n", hr_strerror(rc));
        goto out;
    }
    status = st.corrupt || st.errors || rs.corrupt || rs.errors ? 3 : 0;
out:
    if (c)
        redisFree(c);
    if (redis_pid > 0)
        sto_redis_stop_blocking(redis_pid, 10000);
    if (lock_fd >= 0)
        close(lock_fd);
    hr_config_free(&cfg);
    return status;
}
