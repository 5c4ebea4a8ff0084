/* gateway/mllp_client.c on a real loop against a real MLLP peer
 * (tests/integration/mllp_listener.py): an AA, an AE with its error text,
 * an ACK of another message, a refused connection, a silent peer (timeout),
 * a peer that closes, garbage, cancellation. Every test ends with
 * uv_loop_close() == 0. */
#include "common/hr_err.h"
#include "gateway/mllp_client.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[512];
static pid_t listener;
static int port;
static uv_loop_t loop;

static const char k_msg[] = "MSH|^~\\&|HUREN|county|RIS|T1|20261203070000||ORU^R01^ORU_R01|"
                            "HR0123456789abcdef01|P|2.5.1\rPID|1||P1\r";
#define CID "HR0123456789abcdef01"

static void set_mode(const char *mode)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/mode", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(mode, f);
    fclose(f);
}

static void setup(void)
{
    char script[700], portfile[600];
    const char *src = getenv("HUREN_SOURCE_DIR");
    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(script, sizeof(script), "%s/tests/integration/mllp_listener.py", src ? src : ".");
    listener = fork();
    cr_assert_geq(listener, 0);
    if (listener == 0) {
        execl("/usr/bin/python3", "python3", script, "--dir", dir, (char *)NULL);
        _exit(127);
    }
    snprintf(portfile, sizeof(portfile), "%s/port", dir);
    for (int i = 0; i < 100 && port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(100000);
    }
    cr_assert_gt(port, 0, "the listener did not start");
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    kill(listener, SIGTERM);
    waitpid(listener, NULL, 0);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle left open");
    ts_rmrf(dir);
}

TestSuite(mllp_client, .init = setup, .fini = teardown, .timeout = 60);

typedef struct result {
    int calls, rc, have_ack;
    rpt_hl7_ack ack;
    char detail[600];
} result;

static void on_result(void *arg, int rc, const rpt_hl7_ack *ack, const char *detail)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->have_ack = ack != NULL;
    if (ack)
        r->ack = *ack;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static result send_to(int to_port, int timeout_ms, int cancel)
{
    result r;
    memset(&r, 0, sizeof(r));
    gw_mllp_params p = {.host = "127.0.0.1",
                        .port = to_port,
                        .msg = (const uint8_t *)k_msg,
                        .len = strlen(k_msg),
                        .control_id = CID,
                        .timeout_ms = timeout_ms};
    gw_mllp_client *c = NULL;
    cr_assert_eq(gw_mllp_send(&loop, &p, on_result, &r, &c), 0);
    if (cancel)
        gw_mllp_cancel(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(r.calls, 1, "the callback runs once");
    return r;
}

/* The listener's record of what it received (messages.jsonl), as text. */
static char *received(void)
{
    char p[600];
    size_t n;
    snprintf(p, sizeof(p), "%s/messages.jsonl", dir);
    char *t = (char *)ts_read_file(p, &n);
    if (t)
        t[n] = '\0';
    return t;
}

Test(mllp_client, accepted)
{
    result r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, 0, "%s", r.detail);
    cr_expect(r.have_ack);
    cr_expect_str_eq(r.ack.code, "AA");
    cr_expect_str_eq(r.ack.control_id, CID);
    char *t = received();
    cr_assert_not_null(t);
    cr_expect(strstr(t, "\"control_id\": \"" CID "\"") && strstr(t, "PID|1||P1"), "%s", t);
    free(t);
    /* again: the peer dedupes, and answers AA again */
    r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, 0);
    t = received();
    cr_expect(strstr(t, "\"duplicate\": true"), "%s", t);
    free(t);
}

Test(mllp_client, refused_by_the_application)
{
    set_mode("AE");
    result r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, HR_EPROTO);
    cr_expect(r.have_ack);
    cr_expect_str_eq(r.ack.code, "AE");
    cr_expect(strstr(r.detail, "AE") && strstr(r.detail, "test error"), "%s", r.detail);
    set_mode("AR");
    r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, HR_EPROTO);
    cr_expect_str_eq(r.ack.code, "AR");
    set_mode("wrongid");
    r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, HR_EPROTO);
    cr_expect(strstr(r.detail, "another message"), "%s", r.detail);
}

Test(mllp_client, transport_failures)
{
    set_mode("garbage");
    result r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, HR_EPARSE, "%d %s", r.rc, r.detail);
    set_mode("close");
    r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, -ECONNRESET, "%d %s", r.rc, r.detail);
    set_mode("silent");
    uint64_t t0 = uv_hrtime();
    r = send_to(port, 300, 0);
    cr_expect_eq(r.rc, -ETIMEDOUT, "%d %s", r.rc, r.detail);
    cr_expect_lt(uv_hrtime() - t0, 3000000000ull, "timed out at its time");
    /* nobody listening */
    kill(listener, SIGTERM);
    waitpid(listener, NULL, 0);
    listener = fork();
    if (listener == 0)
        _exit(0);
    r = send_to(port, 5000, 0);
    cr_expect_eq(r.rc, -ECONNREFUSED, "%d %s", r.rc, r.detail);
    cr_expect(strstr(r.detail, "connect 127.0.0.1:"), "%s", r.detail);
    r = send_to(port, 5000, 1);
    cr_expect_eq(r.rc, -ECANCELED);
}
