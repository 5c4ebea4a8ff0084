/* huren-hl7-send: an HL7 v2 sender over MLLP on persistent connections, for
 * tests and bench/hl7 (decision 0037).
 *
 *   huren-hl7-send [--host H] [--port P] [--bind ADDR] [--repeat N] [--connections C]
 *                  [--window W] [--chunk MAX] [--chunk-delay-us U] [--nul]
 *                  [--seed S] [--quiet] [--expect CODE] [--timeout S] FILE...
 *
 * Each FILE holds one HL7 message (segments end with CR; LF and CRLF in the
 * file are turned into CR). The messages (the files, N times) are spread
 * round-robin over C connections, each kept open for all of its messages.
 * A connection sends up to W messages before reading their ACKs (W > 1 puts
 * several frames in one write); --nul puts NUL CR LF between frames;
 * --chunk MAX cuts what is written into random pieces of 1..MAX bytes, each
 * its own write(2) (with TCP_NODELAY), --chunk-delay-us apart. The text
 * "@N@" in a message is replaced by a number unique to that send (the
 * connection and the message's ordinal), so one template makes distinct
 * messages. --bind: the IPv4 source address (a hospital's, in tests). Each ACK prints "MSA-1 MSA-2"
 * on stdout (unless --quiet); the last line on stderr is the summary (messages, AA/AE/AR, seconds,
 * per second). Exit 0 when every message got an ACK (with --expect: each with that MSA-1), 1
 * otherwise, 2 on bad usage. */
#include "../../common/hr_buf.h"
#include "../../common/hr_err.h"
#include "../../gateway/mllp.h"
#include "../../reports/oru.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES (1 << 16)
#define ACK_MAX   (256 * 1024)

typedef struct msgfile {
    uint8_t *data;
    size_t len;
} msgfile;

static const char *g_host = "127.0.0.1";
static const char *g_port = "2575";
static const char *g_bind = NULL;
static long g_repeat = 1, g_conns = 1, g_window = 1, g_chunk = 0, g_delay_us = 0;
static int g_nul = 0, g_quiet = 0, g_timeout_s = 30;
static const char *g_expect = NULL;
static unsigned g_seed = 1;
static msgfile *g_files;
static size_t g_nfiles;
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

typedef struct conn_job {
    pthread_t th;
    long id;
    long first, count; /* its messages: ordinals first, first + C, ... */
    long acks[4];      /* AA AE AR other */
    int failed;
    unsigned rnd;
} conn_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int read_file(const char *path, msgfile *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    hr_buf b;
    hr_buf_init(&b, 64u << 20);
    uint8_t tmp[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        rc = hr_buf_append(&b, tmp, n);
    fclose(f);
    if (rc) {
        hr_buf_free(&b);
        return rc;
    }
    /* LF and CRLF -> CR; a trailing segment end is kept */
    size_t w = 0;
    for (size_t i = 0; i < b.len; i++) {
        if (b.data[i] == '\n') {
            if (w > 0 && b.data[w - 1] == '\r')
                continue;
            b.data[w++] = '\r';
        } else {
            b.data[w++] = b.data[i];
        }
    }
    out->data = b.data;
    out->len = w;
    return 0;
}

/* Appends message ordinal k of connection c, framed, "@N@" replaced. */
static int append_message(hr_buf *out, long c, long k)
{
    const msgfile *m = &g_files[k % (long)g_nfiles];
    char num[48];
    int nl = snprintf(num, sizeof(num), "%ld%06ld", c + 1, k);
    hr_buf msg;
    hr_buf_init(&msg, 128u << 20);
    int rc = 0;
    for (size_t i = 0; !rc && i < m->len;) {
        if (i + 3 <= m->len && memcmp(m->data + i, "@N@", 3) == 0) {
            rc = hr_buf_append(&msg, num, (size_t)nl);
            i += 3;
        } else {
            const uint8_t *at = memchr(m->data + i, '@', m->len - i);
            size_t run = at ? (size_t)(at - (m->data + i)) : m->len - i;
            if (run == 0)
                run = 1;
            rc = hr_buf_append(&msg, m->data + i, run);
            i += run;
        }
    }
    if (!rc)
        rc = gw_mllp_frame(msg.data, msg.len, out);
    if (!rc && g_nul)
        rc = hr_buf_append(out, "\0\r\n", 3);
    hr_buf_free(&msg);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_bytes(conn_job *j, int fd, const uint8_t *p, size_t n)
{
    if (g_chunk <= 0)
        return write_all(fd, p, n);
    while (n > 0) {
        size_t piece = 1 + (size_t)(rand_r(&j->rnd) % (unsigned)g_chunk);
        if (piece > n)
            piece = n;
        int rc = write_all(fd, p, piece);
        if (rc)
            return rc;
        p += piece;
        n -= piece;
        if (g_delay_us > 0 && n > 0)
            usleep((useconds_t)g_delay_us);
    }
    return 0;
}

static int connect_to(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int fd = -1;
    if (getaddrinfo(g_host, g_port, &hints, &ai) != 0)
        return -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        if (g_bind && a->ai_family == AF_INET) {
            struct sockaddr_in src = {.sin_family = AF_INET};
            if (inet_pton(AF_INET, g_bind, &src.sin_addr) != 1 ||
                bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
                close(fd);
                fd = -1;
                continue;
            }
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

/* Reads until one ACK is complete (dec keeps the bytes after it in rb). */
static int read_ack(int fd, gw_mllp_dec *dec, uint8_t *rb, size_t *rpos, size_t *rend,
                    rpt_hl7_ack *ack)
{
    for (;;) {
        while (*rpos < *rend) {
            size_t used = 0;
            int rc = gw_mllp_feed(dec, rb + *rpos, *rend - *rpos, &used);
            *rpos += used;
            if (rc < 0)
                return rc;
            if (rc == GW_MLLP_MESSAGE) {
                size_t len;
                const uint8_t *m = gw_mllp_message(dec, &len);
                return rpt_hl7_ack_parse(m, len, ack);
            }
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, g_timeout_s * 1000);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0 && errno != EINTR)
            return -errno;
        ssize_t n = recv(fd, rb, 65536, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        *rpos = 0;
        *rend = (size_t)n;
    }
}

static void *conn_run(void *arg)
{
    conn_job *j = arg;
    gw_mllp_dec dec;
    hr_buf out;
    uint8_t *rb = malloc(65536);
    size_t rpos = 0, rend = 0;
    int fd = connect_to();
    gw_mllp_dec_init(&dec, ACK_MAX);
    hr_buf_init(&out, 1u << 30);
    if (fd < 0 || !rb) {
        fprintf(stderr, "hl7-send: connection %ld: cannot connect to %s:%s\n", j->id, g_host,
                g_port);
        j->failed = 1;
        goto out;
    }
    for (long sent = 0; sent < j->count;) {
        long batch = j->count - sent < g_window ? j->count - sent : g_window;
        hr_buf_reset(&out);
        for (long b = 0; b < batch; b++)
            if (append_message(&out, j->id, j->first + (sent + b) * g_conns)) {
                j->failed = 1;
                goto out;
            }
        int rc = send_bytes(j, fd, out.data, out.len);
        for (long b = 0; !rc && b < batch; b++) {
            rpt_hl7_ack ack;
            rc = read_ack(fd, &dec, rb, &rpos, &rend, &ack);
            if (rc)
                break;
            int k = strcmp(ack.code, "AA") == 0   ? 0
                    : strcmp(ack.code, "AE") == 0 ? 1
                    : strcmp(ack.code, "AR") == 0 ? 2
                                                  : 3;
            j->acks[k]++;
            if (g_expect && strcmp(ack.code, g_expect) != 0)
                j->failed = 1;
            if (!g_quiet) {
                pthread_mutex_lock(&g_out);
                printf("%s %s\n", ack.code, ack.control_id);
                if (strcmp(ack.code, "AA") != 0 && ack.text[0])
                    printf("  %s\n", ack.text);
                fflush(stdout);
                pthread_mutex_unlock(&g_out);
            }
        }
        if (rc) {
            fprintf(stderr, "hl7-send: connection %ld: %s after %ld ACKs\n", j->id, hr_strerror(rc),
                    j->acks[0] + j->acks[1] + j->acks[2] + j->acks[3]);
            j->failed = 1;
            goto out;
        }
        sent += batch;
    }
out:
    if (fd >= 0)
        close(fd);
    free(rb);
    gw_mllp_dec_free(&dec);
    hr_buf_free(&out);
    return NULL;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: huren-hl7-send [--host H] [--port P] [--bind ADDR] [--repeat N] [--connections C] "
        "[--window W] [--chunk MAX] [--chunk-delay-us U] [--nul] [--seed S] "
        "[--quiet] [--expect CODE] [--timeout S] FILE...\n");
    return 2;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--nul") == 0) {
            g_nul = 1;
            continue;
        }
        if (strcmp(o, "--quiet") == 0) {
            g_quiet = 1;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(o, "--host") == 0)
            g_host = v;
        else if (strcmp(o, "--bind") == 0)
            g_bind = v;
        else if (strcmp(o, "--port") == 0)
            g_port = v;
        else if (strcmp(o, "--repeat") == 0)
            g_repeat = atol(v);
        else if (strcmp(o, "--connections") == 0)
            g_conns = atol(v);
        else if (strcmp(o, "--window") == 0)
            g_window = atol(v);
        else if (strcmp(o, "--chunk") == 0)
            g_chunk = atol(v);
        else if (strcmp(o, "--chunk-delay-us") == 0)
            g_delay_us = atol(v);
        else if (strcmp(o, "--seed") == 0)
            g_seed = (unsigned)atol(v);
        else if (strcmp(o, "--expect") == 0)
            g_expect = v;
        else if (strcmp(o, "--timeout") == 0)
            g_timeout_s = atoi(v);
        else
            return usage();
    }
    if (i >= argc || g_repeat < 1 || g_conns < 1 || g_conns > 1024 || g_window < 1 ||
        g_timeout_s < 1 || argc - i > MAX_FILES)
        return usage();
    g_nfiles = (size_t)(argc - i);
    g_files = calloc(g_nfiles, sizeof(*g_files));
    for (size_t f = 0; f < g_nfiles; f++) {
        int rc = read_file(argv[i + (int)f], &g_files[f]);
        if (rc) {
            fprintf(stderr, "hl7-send: %s: %s\n", argv[i + (int)f], hr_strerror(rc));
            return 1;
        }
    }
    long total = g_repeat * (long)g_nfiles;
    conn_job *jobs = calloc((size_t)g_conns, sizeof(*jobs));
    double t0 = now_s();
    for (long c = 0; c < g_conns; c++) {
        jobs[c].id = c;
        jobs[c].first = c;
        jobs[c].count = total > c ? (total - c + g_conns - 1) / g_conns : 0;
        jobs[c].rnd = g_seed + (unsigned)c * 7919u;
        pthread_create(&jobs[c].th, NULL, conn_run, &jobs[c]);
    }
    long acks[4] = {0, 0, 0, 0};
    int failed = 0;
    for (long c = 0; c < g_conns; c++) {
        pthread_join(jobs[c].th, NULL);
        for (int k = 0; k < 4; k++)
            acks[k] += jobs[c].acks[k];
        failed |= jobs[c].failed;
    }
    double dt = now_s() - t0;
    long got = acks[0] + acks[1] + acks[2] + acks[3];
    fprintf(stderr,
            "hl7-send: %ld messages, %ld ACKs (AA %ld, AE %ld, AR %ld, other %ld) in %.3f s: "
            "%.1f/s on %ld connections\n",
            total, got, acks[0], acks[1], acks[2], acks[3], dt, dt > 0 ? got / dt : 0.0, g_conns);
    for (size_t f = 0; f < g_nfiles; f++)
        free(g_files[f].data);
    free(g_files);
    free(jobs);
    return failed || got != total ? 1 : 0;
}
