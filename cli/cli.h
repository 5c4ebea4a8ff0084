/* Subcommands of the huren binary. Each returns the process exit status. */
#ifndef HR_CLI_H
#define HR_CLI_H

#include "../common/hr_config.h"

#include <stdio.h>

int cli_serve(int argc, char **argv);
int cli_reindex(int argc, char **argv);
int cli_check_config(int argc, char **argv);
/* huren audit verify [--config FILE]: 0 intact, 1 broken or unreadable, 2 usage. */
int cli_audit(int argc, char **argv);
/* huren user add|passwd|disable|enable|list (cli/user.c). */
int cli_user(int argc, char **argv);

/* huren ca init, keygen, cert import, verify (cli/sign.c): 0 success, 1
 * failure (verify: a check failed), 2 usage. */
int cli_ca(int argc, char **argv);
int cli_keygen(int argc, char **argv);
int cli_cert(int argc, char **argv);
int cli_verify(int argc, char **argv);

/* Parses "--config FILE" (and prints usage on -h); loads the configuration
 * and applies its log level. Returns 0, or the exit status to return. */
int cli_load_config(int argc, char **argv, const char *usage, hr_config *cfg, int *flags,
                    const char *const *flag_names);

/* Takes <data_dir>/huren.lock (one huren per data directory, held for the
 * process lifetime). Returns the fd, -EBUSY when another process holds it,
 * or -errno. */
int cli_lock_data_dir(const char *data_dir);

/* Redis endpoint of the configuration: the URL, or the embedded socket. */
void cli_redis_dir(const hr_config *cfg, char *out, size_t cap);

/* One line of f into out (cap bytes), its newline (and a CR before it)
 * removed. 0, or -1 at end of file or when the line does not fit (refused,
 * never truncated). */
int cli_read_line(FILE *f, char *out, size_t cap);

/* Shows prompt on stderr and reads one line of the terminal on standard
 * input with echo off (restored, also when a signal ends the process). 0 or
 * -1. */
int cli_prompt_silent(const char *prompt, char *out, size_t cap);

#endif
