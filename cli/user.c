/* huren user: accounts of the HTTP API (viewer-api/auth.h). Exit status: 0
 * done, 1 failed (redis, user exists, no such user), 2 usage or invalid
 * input (name, role, hospital, center, password). */
#include "cli.h"
#include "../common/hr_err.h"
#include "../storage/index.h"
#include "../storage/redis_proc.h"
#include "../viewer-api/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char k_usage[] =
    "usage: huren user add NAME --role ROLE --hospital ID [--center C] [--display-name X]\n"
    "                      [--password-stdin] [--config FILE]\n"
    "       huren user passwd NAME [--password-stdin] [--config FILE]\n"
    "       huren user disable NAME [--config FILE]\n"
    "       huren user enable NAME [--config FILE]\n"
    "       huren user list [--config FILE]\n"
    "ROLE: technician, reader, auditor, external, office, admin (reader and auditor need\n"
    "--center; office: the medical community office, statistics without patient data).\n"
    "The password is read from standard input (one line) unless it is a terminal:\n"
    "then it is asked twice without echo. --password-stdin reads a line even from a terminal.";

typedef struct opts {
    const char *cmd, *name, *role, *hospital, *center, *display_name, *config;
    int password_stdin;
} opts;

/* The Redis huren serve uses, and what we started to reach it. */
typedef struct conn {
    redisContext *c;
    int redis_pid;
    int lock_fd;
} conn;

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof(*o));
    if (argc < 2)
        return 2;
    o->cmd = argv[1];
    if (strcmp(o->cmd, "-h") == 0 || strcmp(o->cmd, "--help") == 0)
        return -1;
    static const char *const cmds[] = {"add", "passwd", "disable", "enable", "list"};
    int known = 0;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        known |= strcmp(o->cmd, cmds[i]) == 0;
    if (!known) {
        fprintf(stderr, "huren: user: unknown command \"%s\"\n", o->cmd);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return -1;
        if (strcmp(a, "--password-stdin") == 0) {
            o->password_stdin = 1;
            continue;
        }
        if (strcmp(a, "--role") == 0)
            dst = &o->role;
        else if (strcmp(a, "--hospital") == 0)
            dst = &o->hospital;
        else if (strcmp(a, "--center") == 0)
            dst = &o->center;
        else if (strcmp(a, "--display-name") == 0)
            dst = &o->display_name;
        else if (strcmp(a, "--config") == 0)
            dst = &o->config;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "huren: %s needs a value\n", a);
                return 2;
            }
            *dst = argv[++i];
        } else if (a[0] != '-' && !o->name && strcmp(o->cmd, "list") != 0) {
            o->name = a;
        } else {
            fprintf(stderr, "huren: unexpected argument \"%s\"\n", a);
            return 2;
        }
    }
    int wants_name = strcmp(o->cmd, "list") != 0;
    if (wants_name && !o->name) {
        fprintf(stderr, "huren: user %s: NAME missing\n", o->cmd);
        return 2;
    }
    return 0;
}

/* The new password for name into out (cap VA_PASSWORD_MAX + 2 or more).
 * 0, or the exit status. */
static int read_password(const opts *o, char *out, size_t cap)
{
    char again[VA_PASSWORD_MAX + 2], why[128];
    int rc = 0;
    if (o->password_stdin || !isatty(STDIN_FILENO)) {
        if (cli_read_line(stdin, out, cap) != 0) {
            fprintf(stderr, "huren: no password on standard input (one line, at most %d bytes)\n",
                    VA_PASSWORD_MAX);
            return 2;
        }
    } else {
        char prompt[128];
        snprintf(prompt, sizeof(prompt), "New password for %s: ", o->name);
        if (cli_prompt_silent(prompt, out, cap) != 0 ||
            cli_prompt_silent("Repeat the password: ", again, sizeof(again)) != 0) {
            fprintf(stderr, "huren: cannot read the password\n");
            rc = 2;
        } else if (strcmp(out, again) != 0) {
            fprintf(stderr, "huren: the passwords differ\n");
            rc = 2;
        }
        OPENSSL_cleanse(again, sizeof(again));
        if (rc)
            return rc;
    }
    if (va_password_validate(out, why, sizeof(why)) != 0) {
        fprintf(stderr, "huren: %s\n", why);
        return 2;
    }
    return 0;
}

/* Connects to redis.url, or to the embedded redis of a running huren serve,
 * or takes the data directory and starts the embedded redis for the command.
 * 0 or the exit status. */
static int conn_open(const hr_config *cfg, conn *k)
{
    sto_redis_addr addr;
    int err;
    k->c = NULL;
    k->redis_pid = 0;
    k->lock_fd = -1;
    if (cfg->redis.url[0]) {
        if (sto_redis_addr_parse(cfg->redis.url, &addr)) {
            fprintf(stderr, "huren: redis.url: cannot parse \"%s\"\n", cfg->redis.url);
            return 1;
        }
    } else {
        char dir[HR_PATH_MAX + 8];
        cli_redis_dir(cfg, dir, sizeof(dir));
        memset(&addr, 0, sizeof(addr));
        sto_redis_socket_path(dir, addr.host, sizeof(addr.host));
        if (mkdir(cfg->data_dir, 0750) && errno != EEXIST) {
            fprintf(stderr, "huren: cannot create data directory %s: %s\n", cfg->data_dir,
                    strerror(errno));
            return 1;
        }
        /* a huren serving this data dir holds the lock and runs its redis:
         * use it; otherwise hold the lock while our own redis runs */
        k->lock_fd = cli_lock_data_dir(cfg->data_dir);
        if (k->lock_fd < 0 && k->lock_fd != -EBUSY) {
            fprintf(stderr, "huren: %s/huren.lock: %s\n", cfg->data_dir, hr_strerror(k->lock_fd));
            return 1;
        }
        if (k->lock_fd >= 0) {
            sto_redis_opts ro = {cfg->redis.server, dir, cfg->redis.appendfsync};
            k->redis_pid = sto_redis_start_blocking(&ro, cfg->redis.connect_timeout_ms);
            if (k->redis_pid < 0) {
                fprintf(stderr, "huren: cannot start the embedded redis-server (%s): %s\n",
                        cfg->redis.server, hr_strerror(k->redis_pid));
                k->redis_pid = 0;
                return 1;
            }
        }
    }
    k->c = sto_index_connect_sync(&addr, cfg->redis.connect_timeout_ms, &err);
    if (!k->c) {
        fprintf(stderr, "huren: cannot connect to redis at %s%s\n", addr.host,
                k->lock_fd == -EBUSY ? " (the running huren's)" : "");
        return 1;
    }
    return 0;
}

static void conn_close(conn *k)
{
    if (k->c)
        redisFree(k->c);
    if (k->redis_pid > 0)
        sto_redis_stop_blocking(k->redis_pid, 10000);
    if (k->lock_fd >= 0)
        close(k->lock_fd);
}

/* Message and exit status for an error of the auth functions. */
static int report(const opts *o, const conn *k, int rc)
{
    if (rc == -EEXIST)
        fprintf(stderr, "huren: user \"%s\" already exists\n", o->name);
    else if (rc == HR_ENOTFOUND)
        fprintf(stderr, "huren: no user \"%s\"\n", o->name);
    else if (rc == -EINVAL)
        fprintf(stderr, "huren: invalid user name \"%s\"\n", o->name);
    else if (rc == HR_EREDIS)
        fprintf(stderr, "huren: redis: %s\n",
                k->c && k->c->err ? k->c->errstr : "unexpected reply");
    else
        fprintf(stderr, "huren: user %s: %s\n", o->cmd, hr_strerror(rc));
    return rc == -EINVAL ? 2 : 1;
}

static int print_user(void *arg, const va_user_info *u)
{
    int *n = arg;
    if ((*n)++ == 0)
        printf("%-24s %-10s %-12s %-12s %-8s %s\n", "NAME", "ROLE", "HOSPITAL", "CENTER",
               "DISABLED", "DISPLAY NAME");
    printf("%-24s %-10s %-12s %-12s %-8s %s\n", u->name, u->role, u->hospital,
           u->center[0] ? u->center : "-", u->disabled ? "yes" : "no", u->display_name);
    return 0;
}

int cli_user(int argc, char **argv)
{
    opts o;
    hr_config cfg;
    conn k = {NULL, 0, -1};
    char pw[VA_PASSWORD_MAX + 2] = "", why[256];
    int status = parse(argc, argv, &o);
    if (status) {
        fprintf(status < 0 ? stdout : stderr, "%s\n", k_usage);
        return status < 0 ? 0 : status;
    }
    int is_add = strcmp(o.cmd, "add") == 0, is_passwd = strcmp(o.cmd, "passwd") == 0;
    if (!is_add && (o.role || o.hospital || o.center || o.display_name)) {
        fprintf(stderr, "huren: user %s takes no --role, --hospital, --center, --display-name\n",
                o.cmd);
        return 2;
    }
    char *cargv[] = {"user", "--config", (char *)o.config, NULL};
    status = cli_load_config(o.config ? 3 : 1, cargv, k_usage, &cfg, NULL, NULL);
    if (status)
        return status < 0 ? 0 : status;
    va_user_spec spec = {o.name, o.display_name, o.role, o.hospital, o.center, NULL};
    status = 2;
    if (is_add && va_user_validate(&cfg, &spec, why, sizeof(why)) != 0) {
        fprintf(stderr, "huren: %s\n", why);
        goto out;
    }
    if (!is_add && o.name && !va_user_name_valid(o.name)) {
        fprintf(stderr, "huren: invalid user name \"%s\"\n", o.name);
        goto out;
    }
    if (is_add || is_passwd) {
        status = read_password(&o, pw, sizeof(pw));
        if (status)
            goto out;
    }
    status = conn_open(&cfg, &k);
    if (status)
        goto out;
    int rc;
    if (is_add) {
        spec.password = pw;
        rc = va_user_add(k.c, &cfg, &spec);
        if (rc == 0)
            printf("user %s added: %s at %s%s%s\n", o.name, o.role, o.hospital,
                   o.center && o.center[0] ? ", center " : "", o.center ? o.center : "");
    } else if (is_passwd) {
        rc = va_user_passwd(k.c, o.name, pw, cfg.auth.kdf_iterations);
        if (rc == 0)
            printf("user %s: password changed, sessions ended\n", o.name);
    } else if (strcmp(o.cmd, "disable") == 0) {
        rc = va_user_disable(k.c, o.name);
        if (rc == 0)
            printf("user %s disabled, sessions ended\n", o.name);
    } else if (strcmp(o.cmd, "enable") == 0) {
        rc = va_user_enable(k.c, o.name);
        if (rc == 0)
            printf("user %s enabled\n", o.name);
    } else {
        int n = 0;
        rc = va_user_list(k.c, print_user, &n);
        if (rc == 0 && n == 0)
            printf("no users\n");
    }
    status = rc ? report(&o, &k, rc) : 0;
out:
    OPENSSL_cleanse(pw, sizeof(pw));
    conn_close(&k);
    hr_config_free(&cfg);
    return status;
}
