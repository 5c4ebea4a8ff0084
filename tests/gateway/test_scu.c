/* gateway/scu.c and gateway/xfer.c on a real libuv loop against a real
 * storescp: association, a C-STORE streamed in PDUs within a small peer
 * maximum (bytes arrive identical), decompression by DCMTK, refusal,
 * rejection, abort while connecting, stopping a transfer half-way, a file
 * that is not Part 10. Every test ends with uv_loop_close() == 0. */
#include "common/hr_err.h"
#include "dicom/dataset.h"
#include "dicom/p10.h"
#include "dicom/uids.h"
#include "gateway/scu.h"
#include "gateway/xfer.h"
#include "support/support.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define SC_CLASS "1.2.840.10008.5.1.4.1.1.7"
#define PYDICOM  "/usr/lib/python3/dist-packages/pydicom/data/test_files/"

static char dir[512];
static char rx[600];
static pid_t storescp_pid;
static uv_loop_t loop;

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(s, (struct sockaddr *)&a, &n);
    close(s);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

/* storescp AE DEST on port, writing into rx, with extra options. */
static int start_storescp(const char *extra1, const char *extra2)
{
    int port = free_port();
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    const char *argv[16];
    int n = 0;
    argv[n++] = "storescp";
    argv[n++] = "-aet";
    argv[n++] = "DEST";
    argv[n++] = "+B";
    argv[n++] = "-od";
    argv[n++] = rx;
    if (extra1)
        argv[n++] = extra1;
    if (extra2)
        argv[n++] = extra2;
    argv[n++] = p;
    argv[n] = NULL;
    setenv("TCP_NODELAY", "1", 1);
    cr_assert_eq(posix_spawnp(&storescp_pid, "storescp", NULL, NULL, (char **)argv, environ), 0);
    for (int i = 0; i < 100 && !port_open(port); i++)
        usleep(50000);
    cr_assert(port_open(port), "storescp did not start");
    return port;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(rx, sizeof(rx), "%s/rx", dir);
    cr_assert_eq(mkdir(rx, 0700), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    if (storescp_pid > 0) {
        kill(storescp_pid, SIGTERM);
        waitpid(storescp_pid, NULL, 0);
        storescp_pid = 0;
    }
    cr_expect_eq(uv_loop_close(&loop), 0, "a handle was leaked");
    ts_rmrf(dir);
}

TestSuite(scu, .init = setup, .fini = teardown, .timeout = 60);

/* A CT object in Explicit VR LE with pixel_bytes of pixel data: writes it to
 * path; returns the data set (after the File Meta) for comparison. */
static hr_buf write_object(const char *path, const char *sop, size_t pixel_bytes)
{
    hr_buf file, ds_bytes;
    hr_buf_init(&file, 64u << 20);
    hr_buf_init(&ds_bytes, 64u << 20);
    dcm_p10_meta m = {CT_CLASS, sop, DCM_TS_EXPLICIT_LE, "HUREN", NULL};
    cr_assert_eq(dcm_p10_encode_meta(&m, &file), 0);
    dcm_ds *ds = dcm_ds_new();
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0008, 0x0016), "UI", CT_CLASS), 0);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0008, 0x0018), "UI", sop), 0);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0008, 0x0060), "CS", "CT"), 0);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0010, 0x0010), "PN", "Test^Scu"), 0);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0020, 0x000D), "UI", "1.2.3.1"), 0);
    cr_assert_eq(dcm_ds_put_string(ds, DCM_TAG(0x0020, 0x000E), "UI", "1.2.3.1.1"), 0);
    uint8_t *px = malloc(pixel_bytes);
    for (size_t i = 0; i < pixel_bytes; i++)
        px[i] = (uint8_t)(i * 7 + (i >> 9));
    cr_assert_eq(dcm_ds_put_bytes(ds, DCM_TAG(0x7FE0, 0x0010), "OW", px, pixel_bytes), 0);
    free(px);
    cr_assert_eq(dcm_ds_encode(ds, DCM_TS_EXPLICIT_LE, &ds_bytes), 0);
    dcm_ds_free(ds);
    cr_assert_eq(hr_buf_append(&file, ds_bytes.data, ds_bytes.len), 0);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(file.data, 1, file.len, f), file.len);
    fclose(f);
    hr_buf_free(&file);
    return ds_bytes;
}

/* The bytes after the File Meta of a received file (malloc'd). */
static uint8_t *dataset_of(const char *path, size_t *n)
{
    size_t len;
    uint8_t *b = ts_read_file(path, &len);
    cr_assert_not_null(b, "cannot read %s", path);
    cr_assert(len > 144 && memcmp(b + 128, "DICM", 4) == 0);
    uint32_t glen = b[140] | b[141] << 8 | b[142] << 16 | (uint32_t)b[143] << 24;
    *n = len - 144 - glen;
    memmove(b, b + 144 + glen, *n);
    return b;
}

/* The single file storescp wrote, or "" */
static void received(char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(rx);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(out, cap, "%s/%s", rx, e->d_name);
    if (d)
        closedir(d);
}

/* ---- a small driver: associate, send one object, release ---- */

typedef struct run {
    gw_scu *scu;
    gw_xfer x;
    const char *path;
    const char *sop;
    const char *sop_class;
    const char *target_ts; /* decompress to */
    int stop_after_progress;
    int assoc_rc;
    char why[160];
    int associated_calls, closed_calls, lost_calls;
    int xfer_rc, xfer_wrote, xfer_done;
    int progress;
    uint16_t status;
    int responses;
} run;

static void on_xfer_done(void *arg, int rc, int wrote)
{
    run *r = arg;
    r->xfer_done++;
    r->xfer_rc = rc;
    r->xfer_wrote = wrote;
    if (rc) {
        gw_scu_abort(r->scu);
        return;
    }
}

static void on_progress(void *arg)
{
    run *r = arg;
    r->progress++;
    gw_scu_busy(r->scu, 1);
    if (r->stop_after_progress && r->progress == r->stop_after_progress)
        gw_xfer_stop(&r->x);
}

static void on_associated(void *arg, int rc, const char *why)
{
    run *r = arg;
    r->associated_calls++;
    r->assoc_rc = rc;
    snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
    if (rc || !r->path)
        return;
    int n;
    const gw_scu_pc *pc = gw_scu_pcs(r->scu, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(pc[0].result, DCM_PC_ACCEPT);
    dcm_command c;
    memset(&c, 0, sizeof(c));
    c.command_field = DCM_C_STORE_RQ;
    c.flags = DCM_CMD_HAS_MSG_ID | DCM_CMD_HAS_PRIORITY | DCM_CMD_HAS_MOVE_ORIGINATOR;
    c.message_id = 1;
    c.data_set_type = 0x0102;
    snprintf(c.affected_sop_class, sizeof(c.affected_sop_class), "%s", r->sop_class);
    snprintf(c.affected_sop_instance, sizeof(c.affected_sop_instance), "%s", r->sop);
    snprintf(c.move_originator_ae, sizeof(c.move_originator_ae), "ORIGIN");
    c.move_originator_id = 7;
    gw_scu_busy(r->scu, 1);
    cr_assert_eq(gw_xfer_start(&r->x, gw_scu_stream(r->scu), gw_scu_peer_max_pdu(r->scu), pc[0].id,
                               &c, r->path, r->target_ts, dir, on_xfer_done, on_progress, r),
                 0);
}

static void on_command(void *arg, const dcm_command *c, uint8_t pc_id)
{
    run *r = arg;
    r->responses++;
    r->status = c->status;
    cr_expect_eq(c->command_field, DCM_C_STORE_RSP);
    cr_expect_eq(c->message_id_responded, 1);
    gw_scu_busy(r->scu, 0);
    gw_scu_release(r->scu);
}

static void on_lost(void *arg, const char *why)
{
    run *r = arg;
    r->lost_calls++;
}

static void on_closed(void *arg)
{
    run *r = arg;
    r->closed_calls++;
    r->scu = NULL;
}

static void go(run *r, int port, const char *ts1, const char *ts2)
{
    gw_scu_pc pc;
    memset(&pc, 0, sizeof(pc));
    snprintf(pc.abstract_syntax, sizeof(pc.abstract_syntax), "%s", r->sop_class);
    snprintf(pc.ts[pc.n_ts++], sizeof(pc.ts[0]), "%s", ts1);
    if (ts2)
        snprintf(pc.ts[pc.n_ts++], sizeof(pc.ts[0]), "%s", ts2);
    gw_scu_params p = {.host = "127.0.0.1",
                       .port = port,
                       .calling_ae = "HUREN",
                       .called_ae = "DEST",
                       .max_pdu = 65536,
                       .connect_timeout_ms = 5000,
                       .progress_timeout_ms = 5000,
                       .n_pc = 1,
                       .pc = &pc};
    gw_scu_cbs cbs = {on_associated, on_command, on_lost, on_closed};
    gw_xfer_init(&r->x, &loop);
    cr_assert_eq(gw_scu_open(&loop, &p, &cbs, r, &r->scu), 0);
}

static void finish_run(run *r)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(r->associated_calls, 1, "associated() exactly once");
    cr_expect_eq(r->closed_calls, 1, "closed() exactly once");
    cr_expect(!gw_xfer_running(&r->x));
    gw_xfer_free(&r->x);
}

Test(scu, store_one_object_in_small_pdus)
{
    int port = start_storescp("-pdu", "4096");
    char path[700];
    snprintf(path, sizeof(path), "%s/obj.dcm", dir);
    hr_buf want = write_object(path, "1.2.3.1.1.1", 700001 & ~1u);
    run r = {.path = path, .sop = "1.2.3.1.1.1", .sop_class = CT_CLASS};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_eq(r.assoc_rc, 0, "%s", r.why);
    cr_expect_eq(r.xfer_rc, 0);
    cr_expect_eq(r.xfer_wrote, 1);
    cr_expect_eq(r.responses, 1);
    cr_expect_eq(r.status, 0);
    cr_expect_eq(r.lost_calls, 0, "a release is no loss");
    cr_expect_geq(r.progress, 3, "700 KB went out in several chunks");
    char got_path[1200];
    received(got_path, sizeof(got_path));
    cr_assert(got_path[0], "storescp wrote nothing");
    size_t n;
    uint8_t *got = dataset_of(got_path, &n);
    cr_expect_eq(n, want.len);
    cr_expect(n == want.len && memcmp(got, want.data, n) == 0, "data set bytes differ");
    free(got);
    hr_buf_free(&want);
}

Test(scu, decompress_for_an_uncompressed_peer)
{
    int port = start_storescp(NULL, NULL);
    run r = {.path = PYDICOM "SC_rgb_rle.dcm",
             .sop = "1.2.826.0.1.3680043.8.498.49043964482360854182530167603505525116",
             .sop_class = SC_CLASS,
             .target_ts = DCM_TS_EXPLICIT_LE};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_eq(r.assoc_rc, 0, "%s", r.why);
    cr_expect_eq(r.xfer_rc, 0);
    cr_expect_eq(r.status, 0);
    char got_path[1200];
    received(got_path, sizeof(got_path));
    cr_assert(got_path[0]);
    size_t n;
    uint8_t *b = ts_read_file(got_path, &n);
    cr_assert_not_null(b);
    cr_expect_not_null(memmem(b, n < 400 ? n : 400, DCM_TS_EXPLICIT_LE, strlen(DCM_TS_EXPLICIT_LE)),
                       "file meta names Explicit VR LE");
    cr_expect_null(memmem(b, n < 400 ? n : 400, "1.2.840.10008.1.2.5", 19), "not RLE any more");
    free(b);
    /* the temp copy is gone */
    DIR *d = opendir(dir);
    struct dirent *e;
    int tmp = 0;
    while ((e = readdir(d)))
        tmp += strncmp(e->d_name, "xfer-", 5) == 0;
    closedir(d);
    cr_expect_eq(tmp, 0);
}

Test(scu, jpeg2000_cannot_be_decompressed)
{
    int port = start_storescp(NULL, NULL);
    run r = {.path = PYDICOM "MR_small_jp2klossless.dcm",
             .sop = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457",
             .sop_class = "1.2.840.10008.5.1.4.1.1.4",
             .target_ts = DCM_TS_EXPLICIT_LE};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_eq(r.xfer_rc, HR_EUNSUP);
    cr_expect_eq(r.xfer_wrote, 0, "nothing reached the peer");
}

Test(scu, not_part10)
{
    int port = start_storescp(NULL, NULL);
    char path[700];
    snprintf(path, sizeof(path), "%s/junk", dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 1000; i++)
        fputc(i, f);
    fclose(f);
    run r = {.path = path, .sop = "1.2.3", .sop_class = CT_CLASS};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_eq(r.xfer_rc, HR_EPARSE);
    cr_expect_eq(r.xfer_wrote, 0);
}

Test(scu, stop_half_way)
{
    int port = start_storescp(NULL, NULL);
    char path[700];
    snprintf(path, sizeof(path), "%s/big.dcm", dir);
    hr_buf want = write_object(path, "1.2.3.1.1.2", 8u << 20);
    hr_buf_free(&want);
    run r = {.path = path, .sop = "1.2.3.1.1.2", .sop_class = CT_CLASS, .stop_after_progress = 2};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_eq(r.xfer_rc, HR_ESTATE);
    cr_expect_eq(r.xfer_wrote, 1, "the message had started: the association is unusable");
    cr_expect_eq(r.responses, 0);
}

Test(scu, connection_refused)
{
    run r = {.sop_class = CT_CLASS};
    go(&r, free_port(), DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_neq(r.assoc_rc, 0);
    cr_expect(strstr(r.why, "connect") != NULL, "%s", r.why);
    cr_expect_eq(r.lost_calls, 0);
}

Test(scu, association_rejected)
{
    int port = start_storescp("--refuse", NULL);
    run r = {.sop_class = CT_CLASS};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    finish_run(&r);
    cr_expect_neq(r.assoc_rc, 0);
    cr_expect(strstr(r.why, "rejected") != NULL, "%s", r.why);
}

Test(scu, context_not_accepted)
{
    int port = start_storescp(NULL, NULL);
    run r = {.sop_class = CT_CLASS};
    go(&r, port, "1.2.840.10008.1.2.4.90", NULL); /* storescp's default refuses JPEG 2000 */
    uv_run(&loop, UV_RUN_ONCE);
    while (!r.associated_calls)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(r.assoc_rc, 0, "%s", r.why);
    int n;
    const gw_scu_pc *pc = gw_scu_pcs(r.scu, &n);
    cr_expect_neq(pc[0].result, DCM_PC_ACCEPT);
    gw_scu_release(r.scu);
    finish_run(&r);
}

Test(scu, abort_while_connecting)
{
    int port = start_storescp(NULL, NULL);
    run r = {.sop_class = CT_CLASS};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    gw_scu_abort(r.scu);
    finish_run(&r);
    cr_expect_eq(r.assoc_rc, HR_ESTATE);
    cr_expect_eq(r.lost_calls, 0, "no lost() after our own abort");
}

Test(scu, abort_when_associated)
{
    int port = start_storescp(NULL, NULL);
    run r = {.sop_class = CT_CLASS};
    go(&r, port, DCM_TS_EXPLICIT_LE, NULL);
    while (!r.associated_calls)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(r.assoc_rc, 0, "%s", r.why);
    gw_scu_abort(r.scu);
    finish_run(&r);
    cr_expect_eq(r.lost_calls, 0);
}
