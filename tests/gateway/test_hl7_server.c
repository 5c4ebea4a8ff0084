/* gateway/hl7_server.c on a real loop with real sockets: a client thread
 * (blocking sockets, bound to a chosen loopback source address) talks MLLP
 * to the listener while the main thread runs the loop. The handler here
 * stands for the lab ingest (integration/test_hl7_ingest.sh runs the real
 * one): it answers each message from a later timer callback with an ACK
 * echoing MSH-10, and records what the listener handed it (order, peer's
 * hospital, messages in flight at once). Every test ends with
 * uv_loop_close() == 0. */
#include "common/hr_err.h"
#include "gateway/hl7_server.h"
#include "gateway/mllp.h"
#include "reports/oru.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t loop;
static hr_config cfg;
static gw_hl7_server *srv;
static int port;

/* ---- the handler ---- */

typedef struct pending {
    uv_timer_t t;
    gw_hl7_reply_cb reply;
    void *arg;
    char id[64];
    char code[3];
} pending;

static struct {
    int calls, in_flight, max_in_flight;
    char ids[64][32];
    char hospital[32];
    int delay_ms;
    int stopped;
} H;

static void pending_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_pending(uv_timer_t *t)
{
    pending *p = t->data;
    char ack[256];
    int n = snprintf(ack, sizeof(ack),
                     "MSH|^~\\&|HUREN|HUB|LIS|T1|20261203120000||ACK^R01^ACK|A%s|P|2.5.1\r"
                     "MSA|%s|%s\r",
                     p->id, p->code, p->id);
    H.in_flight--;
    p->reply(p->arg, 0, (const uint8_t *)ack, (size_t)n);
    uv_close((uv_handle_t *)&p->t, pending_closed);
}

static int t_ingest(void *ctx, const uint8_t *msg, size_t len, const gw_hl7_peer *peer,
                    gw_hl7_reply_cb reply, void *arg)
{
    pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    gw_hl7_control_id(msg, len, p->id, sizeof(p->id));
    snprintf(p->code, sizeof(p->code), "%s", len >= 3 && memcmp(msg, "MSH", 3) == 0 ? "AA" : "AR");
    if (H.calls < 64)
        snprintf(H.ids[H.calls], sizeof(H.ids[0]), "%s", p->id);
    H.calls++;
    snprintf(H.hospital, sizeof(H.hospital), "%s", peer->hospital);
    if (++H.in_flight > H.max_in_flight)
        H.max_in_flight = H.in_flight;
    p->reply = reply;
    p->arg = arg;
    uv_timer_init(&loop, &p->t);
    p->t.data = p;
    uv_timer_start(&p->t, on_pending, (uint64_t)H.delay_ms, 0);
    return 0;
}

/* ---- the client thread ---- */

typedef struct client {
    const char *src;     /* source address to bind */
    const uint8_t *data; /* what to send */
    size_t len;
    int chunk;            /* bytes per write (0: all at once) */
    int gap_ms;           /* pause between chunks (0: 0.3 ms) */
    int expect;           /* ACKs to read before closing (then waits for EOF if wait_eof) */
    int wait_eof;         /* read until the server closes */
    char codes[16][3];    /* MSA-1 of each ACK */
    char ids[16][32];     /* MSA-2 */
    char text[512];       /* MSA-3 / ERR of the first ACK */
    int acks, eof, error; /* results */
    double eof_after_s;   /* seconds from connect to the server's close */
    pthread_t th;
    uv_async_t done;
} client;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *client_run(void *arg)
{
    client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    gw_mllp_dec dec;
    uint8_t rb[8192];
    double t0 = mono();
    gw_mllp_dec_init(&dec, 65536);
    inet_pton(AF_INET, c->src, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
        connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
        c->error = errno;
        goto out;
    }
    for (size_t off = 0; off < c->len;) {
        size_t n =
            c->chunk > 0 && (size_t)c->chunk < c->len - off ? (size_t)c->chunk : c->len - off;
        ssize_t w = send(fd, c->data + off, n, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close first (framing error, refusal) */
        off += (size_t)w;
        if (c->chunk > 0)
            usleep(c->gap_ms > 0 ? (useconds_t)c->gap_ms * 1000 : 300); /* separate reads */
    }
    while (c->acks < c->expect || c->wait_eof) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 10000) <= 0) {
            c->error = ETIMEDOUT;
            break;
        }
        ssize_t n = recv(fd, rb, sizeof(rb), 0);
        if (n <= 0) {
            c->eof = 1;
            c->eof_after_s = mono() - t0;
            break;
        }
        for (size_t pos = 0; pos < (size_t)n;) {
            size_t used;
            int rc = gw_mllp_feed(&dec, rb + pos, (size_t)n - pos, &used);
            pos += used;
            if (rc < 0) {
                c->error = EPROTO;
                goto out;
            }
            if (rc == GW_MLLP_MESSAGE) {
                size_t len;
                const uint8_t *m = gw_mllp_message(&dec, &len);
                rpt_hl7_ack a;
                if (rpt_hl7_ack_parse(m, len, &a) == 0 && c->acks < 16) {
                    memcpy(c->codes[c->acks], a.code, 3);
                    snprintf(c->ids[c->acks], sizeof(c->ids[0]), "%s", a.control_id);
                    if (c->acks == 0)
                        snprintf(c->text, sizeof(c->text), "%s", a.text);
                }
                c->acks++;
            }
        }
    }
out:
    close(fd);
    gw_mllp_dec_free(&dec);
    uv_async_send(&c->done);
    return NULL;
}

static void on_stopped(void *arg)
{
    H.stopped = 1;
}

static void on_client_done(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, NULL);
    gw_hl7_server_stop(srv, on_stopped, NULL);
}

/* Runs the client against a fresh server until both are done. */
static void run(client *c)
{
    gw_hl7_handler h = {.ingest = t_ingest, .refuse = NULL};
    cr_assert_eq(gw_hl7_server_start(&loop, &cfg, &h, &srv), 0);
    port = gw_hl7_server_port(srv);
    cr_assert_gt(port, 0);
    uv_async_init(&loop, &c->done, on_client_done);
    pthread_create(&c->th, NULL, client_run, c);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(c->th, NULL);
    cr_assert(H.stopped);
}

static void setup_with(const char *hl7)
{
    char err[256], json[1024];
    snprintf(json, sizeof(json),
             "{\"hl7\": {\"listen\": \"127.0.0.1\"%s},"
             " \"hospitals\": ["
             "{\"id\": \"county\", \"level\": \"county\", \"addresses\": [\"127.0.0.1\"]},"
             "{\"id\": \"t1\", \"addresses\": [\"127.0.0.2\"]}]}",
             hl7);
    cr_assert_eq(hr_config_load_string(json, &cfg, err, sizeof(err)), 0, "%s", err);
    cfg.hl7.port = 0; /* the OS picks (the file's rule is 1..65535) */
    memset(&H, 0, sizeof(H));
    H.delay_ms = 1;
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle left open");
    hr_config_free(&cfg);
}

TestSuite(hl7_server, .fini = teardown, .timeout = 60);

#define MSG(id) "MSH|^~\\&|LIS|T1|HUREN|county|20261203120000||ORU^R01|" id "|P|2.5.1\rPID|1||P1\r"

Test(hl7_server, one_message_byte_by_byte_from_its_hospital)
{
    setup_with("");
    static const char m[] = "\x0b" MSG("C1") "\x1c\r";
    client c = {.src = "127.0.0.2",
                .data = (const uint8_t *)m,
                .len = sizeof(m) - 1,
                .chunk = 1,
                .expect = 1};
    run(&c);
    cr_assert_eq(c.error, 0, "%s", strerror(c.error));
    cr_assert_eq(c.acks, 1);
    cr_expect_str_eq(c.codes[0], "AA");
    cr_expect_str_eq(c.ids[0], "C1");
    cr_expect_str_eq(H.hospital, "t1", "the hospital of the peer's address");
    cr_expect_eq(H.calls, 1);
}

Test(hl7_server, several_per_write_with_nuls_in_order_one_in_flight)
{
    setup_with("");
    static const char m[] = "\r\n\x0b" MSG("C1") "\x1c\r\0\0\r\n\x0b" MSG(
        "C2") "\x1c\r"
              "\x0b" MSG("C3") "\x1c\r\n\0\x0b" MSG("C4") "\x1c\r\x0b" MSG("C5") "\x1c\r";
    client c = {.src = "127.0.0.1", .data = (const uint8_t *)m, .len = sizeof(m) - 1, .expect = 5};
    H.delay_ms = 5;
    run(&c);
    cr_assert_eq(c.error, 0, "%s", strerror(c.error));
    cr_assert_eq(c.acks, 5);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "C%d", i + 1);
        cr_expect_str_eq(c.ids[i], id, "ACKs in the order of the messages");
        cr_expect_str_eq(H.ids[i], id);
    }
    cr_expect_eq(H.max_in_flight, 1, "one message in flight per connection");
    cr_expect_str_eq(H.hospital, "county");
}

Test(hl7_server, random_chunks_over_many_messages)
{
    setup_with("");
    /* 10 messages, written 7 bytes at a time: frames cut anywhere */
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\x0b" MSG("K%d") "\x1c\r", i);
    client c = {
        .src = "127.0.0.1", .data = (const uint8_t *)buf, .len = n, .chunk = 7, .expect = 10};
    run(&c);
    cr_assert_eq(c.error, 0);
    cr_assert_eq(c.acks, 10);
    cr_expect_str_eq(c.ids[9], "K9");
}

Test(hl7_server, pipelined_beyond_the_read_buffer_in_order)
{
    setup_with("");
    /* 200 messages of ~1 KB in one write: more than the 64 KiB read buffer,
     * so reading stops and resumes many times with bytes left over */
    size_t cap = 200 * 1200, n = 0;
    char *buf = malloc(cap), pad[1001];
    cr_assert_not_null(buf);
    memset(pad, 'p', 1000);
    pad[1000] = '\0';
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(buf + n, cap - n, "\x0b" MSG("P%d") "NTE|1||%s\r\x1c\r", i, pad);
    client c = {.src = "127.0.0.1", .data = (const uint8_t *)buf, .len = n, .expect = 200};
    H.delay_ms = 0;
    run(&c);
    cr_assert_eq(c.error, 0, "%s", strerror(c.error));
    cr_assert_eq(c.acks, 200);
    cr_expect_eq(H.calls, 200);
    cr_expect_eq(H.max_in_flight, 1);
    for (int i = 0; i < 64; i++) {
        char id[8];
        snprintf(id, sizeof(id), "P%d", i);
        cr_expect_str_eq(H.ids[i], id, "handed on in order");
    }
    free(buf);
}

Test(hl7_server, oversized_gets_ar_then_close)
{
    setup_with(", \"max_message_bytes\": 1024");
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "\x0b" MSG("BIG1"));
    memset(buf + n, 'x', 2000);
    n += 2000;
    memcpy(buf + n, "\x1c\r", 2);
    n += 2;
    client c = {
        .src = "127.0.0.1", .data = (const uint8_t *)buf, .len = n, .expect = 1, .wait_eof = 1};
    run(&c);
    cr_assert_eq(c.acks, 1);
    cr_expect_str_eq(c.codes[0], "AR");
    cr_expect_str_eq(c.ids[0], "BIG1", "the control id read before the cap");
    cr_expect_not_null(strstr(c.text, "too long"), "ERR text: %s", c.text);
    cr_expect(c.eof, "closed after the AR");
    cr_expect_eq(H.calls, 0, "never handed on");
}

Test(hl7_server, framing_error_closes_without_ack)
{
    setup_with("");
    static const char m[] = "hello\x0b" MSG("C1") "\x1c\r";
    client c = {
        .src = "127.0.0.1", .data = (const uint8_t *)m, .len = sizeof(m) - 1, .wait_eof = 1};
    run(&c);
    cr_expect(c.eof);
    cr_expect_eq(c.acks, 0);
    cr_expect_eq(H.calls, 0);
}

Test(hl7_server, start_block_inside_a_message_closes)
{
    setup_with("");
    static const char m[] = "\x0bMSH|^~\\&|LIS\x0b" MSG("C1") "\x1c\r";
    client c = {
        .src = "127.0.0.1", .data = (const uint8_t *)m, .len = sizeof(m) - 1, .wait_eof = 1};
    run(&c);
    cr_expect(c.eof);
    cr_expect_eq(c.acks, 0);
    cr_expect_eq(H.calls, 0);
}

Test(hl7_server, unknown_address_closed_at_accept)
{
    setup_with("");
    static const char m[] = "\x0b" MSG("C1") "\x1c\r";
    client c = {
        .src = "127.0.0.9", .data = (const uint8_t *)m, .len = sizeof(m) - 1, .wait_eof = 1};
    run(&c);
    cr_expect(c.eof || c.error == ECONNRESET, "closed");
    cr_expect_eq(c.acks, 0);
    cr_expect_eq(H.calls, 0, "not one byte handed on");
}

Test(hl7_server, idle_connection_closed)
{
    setup_with(", \"idle_timeout_s\": 1");
    client c = {.src = "127.0.0.1", .wait_eof = 1};
    run(&c);
    cr_expect(c.eof);
    cr_expect_geq(c.eof_after_s, 0.9);
    cr_expect_lt(c.eof_after_s, 3.0);
}

Test(hl7_server, slowloris_trickling_a_message_is_closed_at_the_idle_timeout)
{
    /* one byte every 0.4 s of a message that never ends: each read used to
     * restart the idle timer, so the connection (and its slot and message
     * buffer) was held for as long as the peer kept trickling */
    setup_with(", \"idle_timeout_s\": 1");
    static const char m[] = "\x0bMSH|^~\\&|LIS|T1|HUREN|county|2026";
    client c = {.src = "127.0.0.2",
                .data = (const uint8_t *)m,
                .len = sizeof(m) - 1,
                .chunk = 1,
                .gap_ms = 400,
                .wait_eof = 1};
    run(&c);
    cr_expect(c.eof);
    cr_expect_eq(H.calls, 0);
    cr_expect_lt(c.eof_after_s, 2.5, "closed after %.1f s", c.eof_after_s);
}

Test(hl7_server, max_connections_refuses_the_next)
{
    setup_with(", \"max_connections\": 1");
    /* the first client holds its connection (waits for EOF), the second is refused */
    static const char m[] = "\x0b" MSG("C1") "\x1c\r";
    gw_hl7_handler h = {.ingest = t_ingest, .refuse = NULL};
    cr_assert_eq(gw_hl7_server_start(&loop, &cfg, &h, &srv), 0);
    port = gw_hl7_server_port(srv);
    int fd1 = socket(AF_INET, SOCK_STREAM, 0), fd2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    cr_assert_eq(connect(fd1, (struct sockaddr *)&dst, sizeof(dst)), 0);
    for (int i = 0; i < 20 && gw_hl7_server_stats(srv)->connections_open < 1; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(5000);
    cr_assert_eq(gw_hl7_server_stats(srv)->connections_open, 1);
    cr_assert_eq(connect(fd2, (struct sockaddr *)&dst, sizeof(dst)), 0);
    for (int i = 0; i < 20 && gw_hl7_server_stats(srv)->connections_refused < 1; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(5000);
    cr_expect_eq(gw_hl7_server_stats(srv)->connections_refused, 1);
    send(fd2, m, sizeof(m) - 1, MSG_NOSIGNAL);
    char b[16];
    cr_expect_leq(recv(fd2, b, sizeof(b), 0), 0, "the second is closed");
    close(fd1);
    close(fd2);
    gw_hl7_server_stop(srv, on_stopped, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect(H.stopped);
}

Test(hl7_server, stop_waits_for_the_reply_in_flight)
{
    setup_with("");
    static const char m[] = "\x0b" MSG("C1") "\x1c\r";
    H.delay_ms = 300;
    gw_hl7_handler h = {.ingest = t_ingest, .refuse = NULL};
    cr_assert_eq(gw_hl7_server_start(&loop, &cfg, &h, &srv), 0);
    port = gw_hl7_server_port(srv);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
    send(fd, m, sizeof(m) - 1, MSG_NOSIGNAL);
    for (int i = 0; i < 100 && H.calls < 1; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(5000);
    cr_assert_eq(H.calls, 1);
    hr_buf mt;
    hr_buf_init(&mt, 65536);
    gw_hl7_server_metrics(srv, &mt);
    cr_expect_not_null(memmem(mt.data, mt.len, "huren_hl7_in_flight 1\n", 22), "%.*s", (int)mt.len,
                       mt.data);
    hr_buf_free(&mt);
    gw_hl7_server_stop(srv, on_stopped, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_expect_not(H.stopped, "the reply has not come yet");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect(H.stopped);
    close(fd);
}

Test(hl7_control_id, of_the_first_bytes)
{
    char id[32];
    static const char a[] = "MSH|^~\\&|LIS|T1|HUREN|county|2026||ORU^R01|ABC-1|P|2.5.1\rPID";
    gw_hl7_control_id((const uint8_t *)a, sizeof(a) - 1, id, sizeof(id));
    cr_expect_str_eq(id, "ABC-1");
    static const char b[] = "MSH#^~\\&#LIS#T1#H#c#2026##ORU^R01#X9#P#2.4";
    gw_hl7_control_id((const uint8_t *)b, sizeof(b) - 1, id, sizeof(id));
    cr_expect_str_eq(id, "X9", "any field separator");
    static const char c[] = "MSH|^~\\&|LIS|T1|HUREN|county|2026||ORU^R01|ABC-";
    gw_hl7_control_id((const uint8_t *)c, sizeof(c) - 1, id, sizeof(id));
    cr_expect_str_eq(id, "", "cut before the field ended: none");
    static const char d[] = "PID|1||P1\r";
    gw_hl7_control_id((const uint8_t *)d, sizeof(d) - 1, id, sizeof(id));
    cr_expect_str_eq(id, "");
    static const char e[] = "MSHA^~\\&A";
    gw_hl7_control_id((const uint8_t *)e, sizeof(e) - 1, id, sizeof(id));
    cr_expect_str_eq(id, "", "a letter is no separator");
    gw_hl7_control_id((const uint8_t *)a, sizeof(a) - 1, id, 4);
    cr_expect_str_eq(id, "", "longer than the cap: none");
}

Test(hl7_refusal, answers_the_msh_it_could_read)
{
    static const char a[] = "MSH|^~\\&|LIS|T1|HUREN|county|20261203120000||ORU^R01|ABC-1|P|2.4|||"
                            "||CHN|UNICODE UTF-8\rPID|1||xxxxxxxx";
    hr_buf out;
    rpt_hl7_ack ack;
    hr_buf_init(&out, 8192);
    cr_assert_eq(gw_hl7_refusal((const uint8_t *)a, sizeof(a) - 1, 207, "Message too long.", "HUB",
                                1764763200000LL, &out),
                 0);
    cr_assert_eq(rpt_hl7_ack_parse(out.data, out.len, &ack), 0);
    cr_expect_str_eq(ack.code, "AR");
    cr_expect_str_eq(ack.control_id, "ABC-1");
    cr_expect_not_null(strstr(ack.text, "Message too long."), "%s", ack.text);
    cr_expect_not_null(memmem(out.data, out.len, "|HUREN|HUB|LIS|T1|", 18), "%.*s", (int)out.len,
                       out.data);
    cr_expect_not_null(memmem(out.data, out.len, "|2.4", 4), "same version");
    /* the MSH cut short: only its control id, when whole */
    hr_buf_reset(&out);
    cr_assert_eq(gw_hl7_refusal((const uint8_t *)a, 60, 207, "Message too long.", "HUB",
                                1764763200000LL, &out),
                 0);
    cr_assert_eq(rpt_hl7_ack_parse(out.data, out.len, &ack), 0);
    cr_expect_str_eq(ack.code, "AR");
    cr_expect_str_eq(ack.control_id, "ABC-1");
    /* no MSH at all */
    hr_buf_reset(&out);
    cr_assert_eq(gw_hl7_refusal((const uint8_t *)"xxxx", 4, 207, "Message too long.", "HUB",
                                1764763200000LL, &out),
                 0);
    cr_assert_eq(rpt_hl7_ack_parse(out.data, out.len, &ack), 0);
    cr_expect_str_eq(ack.code, "AR");
    cr_expect_str_eq(ack.control_id, "");
    hr_buf_free(&out);
}
