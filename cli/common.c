#include "cli.h"
#include "../common/hr_log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

int cli_load_config(int argc, char **argv, const char *usage, hr_config *cfg, int *flags,
                    const char *const *flag_names)
{
    const char *path = NULL;
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\n", usage);
            return -1;
        }
        int known = 0;
        for (int f = 0; flag_names && flag_names[f]; f++) {
            if (strcmp(argv[i], flag_names[f]) == 0) {
                *flags |= 1 << f;
                known = 1;
            }
        }
        if (!known) {
            fprintf(stderr, "huren: unknown option \"%s\"\n%s\n", argv[i], usage);
            return 2;
        }
    }
    if (hr_config_load(path, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "huren: configuration error: %s\n", err);
        return 1;
    }
    /* child processes (redis-server) change directory: paths must be absolute */
    if (cfg->data_dir[0] != '/') {
        char cwd[HR_PATH_MAX], abs[2 * HR_PATH_MAX + 2];
        const char *rel = strncmp(cfg->data_dir, "./", 2) == 0 ? cfg->data_dir + 2 : cfg->data_dir;
        if (!getcwd(cwd, sizeof(cwd)) ||
            (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, rel) >= sizeof(cfg->data_dir)) {
            fprintf(stderr, "huren: data_dir: cannot make \"%s\" absolute\n", cfg->data_dir);
            hr_config_free(cfg);
            return 1;
        }
        strcpy(cfg->data_dir, abs);
    }
    enum hr_log_level lvl;
    if (hr_log_parse_level(cfg->log_level, &lvl) == 0)
        hr_log_set_level(lvl);
    return 0;
}

int cli_lock_data_dir(const char *data_dir)
{
    char path[HR_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/huren.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -EBUSY;
    }
    return fd;
}

void cli_redis_dir(const hr_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s/redis", cfg->data_dir);
}

int cli_check_config(int argc, char **argv)
{
    hr_config cfg;
    int rc =
        cli_load_config(argc, argv, "usage: huren check-config [--config FILE]", &cfg, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    printf("configuration OK: data_dir %s, DICOM %s:%d AE %s, %zu hospitals\n", cfg.data_dir,
           cfg.dicom.listen.host, cfg.dicom.listen.port, cfg.dicom.ae_title, cfg.n_hospitals);
    printf("  HTTP %s:%d %s\n", cfg.http.listen.host, cfg.http.listen.port,
           cfg.http.tls_cert[0]       ? "(HTTPS)"
           : cfg.http.insecure_listen ? "(plain HTTP, http.insecure_listen)"
                                      : "(plain HTTP)");
    for (size_t i = 0; i < cfg.n_hospitals; i++) {
        const hr_hospital *h = &cfg.hospitals[i];
        printf("  %-12s %-8s %zu AE titles, %zu allowed networks  %s\n", h->id,
               h->level == HR_LEVEL_COUNTY ? "county" : "township", h->n_ae, h->n_addr, h->name);
    }
    hr_config_free(&cfg);
    return 0;
}

/* ---- secrets read from the terminal ---- */

int cli_read_line(FILE *f, char *out, size_t cap)
{
    if (!fgets(out, (int)cap, f))
        return -1;
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n')
        out[--n] = '\0';
    else if (!feof(f))
        return -1; /* longer than the buffer: refused, never truncated */
    if (n && out[n - 1] == '\r')
        out[--n] = '\0';
    return 0;
}

/* The terminal settings to put back if a signal ends us while echo is off. */
static struct termios g_tty;

static void restore_tty_and_die(int sig)
{
    tcsetattr(STDIN_FILENO, TCSANOW, &g_tty); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

int cli_prompt_silent(const char *prompt, char *out, size_t cap)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa = {.sa_handler = restore_tty_and_die}, prev[4];
    struct termios silent;
    if (tcgetattr(STDIN_FILENO, &g_tty) != 0)
        return -1;
    silent = g_tty;
    silent.c_lflag &= ~(tcflag_t)ECHO;
    silent.c_lflag |= ECHONL;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &prev[i]);
    int rc = -1;
    /* echo off before the prompt, and no flush: what is typed as soon as the
     * prompt shows must not be discarded (TCSAFLUSH raced a fast typist) */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &silent) == 0) {
        fputs(prompt, stderr);
        fflush(stderr);
        rc = cli_read_line(stdin, out, cap);
        tcsetattr(STDIN_FILENO, TCSANOW, &g_tty);
    }
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &prev[i], NULL);
    return rc;
}
