/* Subcommands of the huren binary. Each returns the process exit status. */
#ifndef HR_CLI_H
#define HR_CLI_H

#include "../common/hr_config.h"

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

#endif
