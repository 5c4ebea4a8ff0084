/* gateway/webhook.c: libcurl multi on a real loop against a real receiver
 * (tests/integration/webhook_receiver.py, HTTP and HTTPS with a test CA
 * made by openssl): the POST as received, statuses, a refused connection, a
 * timeout, a response body over the bound, TLS verification, cancellation,
 * closing with transfers under way. Every test ends with uv_loop_close() == 0. */
#include "common/hr_err.h"
#include "gateway/webhook.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[512];
static pid_t receiver;
static int port;
static uv_loop_t loop;
static gw_webhook *wh;

static void start_receiver(int tls)
{
    char script[700], portfile[600], cert[600], key[600];
    const char *src = getenv("HUREN_SOURCE_DIR");
    snprintf(script, sizeof(script), "%s/tests/integration/webhook_receiver.py", src ? src : ".");
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(portfile, sizeof(portfile), "%s/port", dir);
    unlink(portfile);
    receiver = fork();
    cr_assert_geq(receiver, 0);
    if (receiver == 0) {
        if (tls)
            execl("/usr/bin/python3", "python3", script, "--dir", dir, "--cert", cert, "--key", key,
                  (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", script, "--dir", dir, (char *)NULL);
        _exit(127);
    }
    port = 0;
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
    cr_assert_gt(port, 0, "the receiver did not start");
}

static void stop_receiver(void)
{
    if (receiver > 0) {
        kill(receiver, SIGTERM);
        waitpid(receiver, NULL, 0);
        receiver = 0;
    }
}

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(gw_webhook_open(&loop, &wh), 0);
}

static int closed_calls;
static void on_closed(void *arg)
{
    closed_calls++;
}

static void teardown(void)
{
    if (wh)
        gw_webhook_close(wh, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    stop_receiver();
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle left open");
    ts_rmrf(dir);
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 60);

static void set_status(const char *st)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/status", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(st, f);
    fclose(f);
}

typedef struct result {
    int calls, rc;
    long status;
    char detail[2048];
} result;

static void on_result(void *arg, int rc, long status, const char *detail)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static const char k_jws[] = "eyJhbGciOiJFUzI1NiJ9.eyJ0eXAiOiJodXJlbi1yZXBvcnQifQ.c2ln";

static result post(const char *scheme, int timeout_ms, const char *ca, int cancel)
{
    char url[128];
    result r;
    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/hook", scheme, port);
    gw_webhook_req q = {.url = url,
                        .content_type = "application/jose",
                        .bearer = "s3cr3t",
                        .ca_file = ca,
                        .headers = {"X-Huren-Report: r1-1.2.3", "X-Huren-Version: 2", NULL},
                        .body = k_jws,
                        .len = strlen(k_jws),
                        .timeout_ms = timeout_ms};
    gw_webhook_xfer *x = NULL;
    cr_assert_eq(gw_webhook_post(wh, &q, on_result, &r, &x), 0);
    if (cancel)
        gw_webhook_cancel(x);
    while (r.calls == 0 && uv_run(&loop, UV_RUN_ONCE))
        ;
    cr_expect_eq(r.calls, 1);
    cr_expect_eq(gw_webhook_active(wh), 0);
    return r;
}

static char *requests(void)
{
    char p[600];
    size_t n;
    snprintf(p, sizeof(p), "%s/requests.jsonl", dir);
    char *t = (char *)ts_read_file(p, &n);
    if (t)
        t[n] = '\0';
    return t;
}

Test(webhook, post_as_received)
{
    start_receiver(0);
    result r = post("http", 5000, NULL, 0);
    cr_expect_eq(r.rc, 0, "%s", r.detail);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.detail, "HTTP 200: {\"received\": true}"), "%s", r.detail);
    char *t = requests();
    cr_assert_not_null(t);
    cr_expect(strstr(t, "\"body\": \"eyJhbGciOiJFUzI1NiJ9.eyJ0eXAiOiJodXJlbi1yZXBvcnQifQ.c2ln\""),
              "%s", t);
    cr_expect(strstr(t, "\"content-type\": \"application/jose\""), "%s", t);
    cr_expect(strstr(t, "\"authorization\": \"Bearer s3cr3t\""), "%s", t);
    cr_expect(strstr(t, "\"x-huren-report\": \"r1-1.2.3\""), "%s", t);
    cr_expect(strstr(t, "\"x-huren-version\": \"2\""), "%s", t);
    cr_expect(strstr(t, "\"path\": \"/hook\""), "%s", t);
    free(t);
    /* a second one on the kept-alive connection, then a refusal */
    set_status("503");
    r = post("http", 5000, NULL, 0);
    cr_expect_eq(r.rc, 0);
    cr_expect_eq(r.status, 503);
    cr_expect(strstr(r.detail, "HTTP 503: {\"error\": \"test refusal 503\"}"), "%s", r.detail);
}

Test(webhook, failures)
{
    start_receiver(0);
    set_status("slow");
    uint64_t t0 = uv_hrtime();
    result r = post("http", 400, NULL, 0);
    cr_expect_eq(r.rc, -ETIMEDOUT, "%d %s", r.rc, r.detail);
    cr_expect_lt(uv_hrtime() - t0, 5000000000ull);
    set_status("huge");
    r = post("http", 10000, NULL, 0);
    cr_expect_eq(r.rc, HR_ETOOBIG, "%d %s", r.rc, r.detail);
    set_status("200");
    r = post("http", 5000, NULL, 1);
    cr_expect_eq(r.rc, -ECANCELED);
    stop_receiver();
    r = post("http", 5000, NULL, 0);
    cr_expect_eq(r.rc, -ECONNREFUSED, "%d %s", r.rc, r.detail);
    gw_webhook_req q = {.url = "ftp://127.0.0.1/x", .timeout_ms = 100};
    cr_expect_eq(gw_webhook_post(wh, &q, on_result, NULL, NULL), -EINVAL);
}

Test(webhook, tls_verification)
{
    char cmd[2400], ca[600], other[600];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 2>/dev/null && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout other.key -out other.pem -days 2 -subj /CN=other 2>/dev/null",
             dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    start_receiver(1);
    result r = post("https", 5000, other, 0);
    cr_expect_eq(r.rc, HR_ECERT, "an untrusted certificate: %d %s", r.rc, r.detail);
    r = post("https", 5000, ca, 0);
    cr_expect_eq(r.rc, 0, "%s", r.detail);
    cr_expect_eq(r.status, 200);
}

Test(webhook, close_with_transfers)
{
    start_receiver(0);
    set_status("slow");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    result r[3];
    memset(r, 0, sizeof(r));
    gw_webhook_req q = {.url = url, .body = "x", .len = 1, .timeout_ms = 20000};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gw_webhook_post(wh, &q, on_result, &r[i], NULL), 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    closed_calls = 0;
    gw_webhook_close(wh, on_closed, NULL);
    wh = NULL;
    for (int i = 0; i < 3; i++)
        cr_expect(r[i].calls == 1 && r[i].rc == -ECANCELED, "transfer %d: %d", i, r[i].rc);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(closed_calls, 1);
}
