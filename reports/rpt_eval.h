/* Internal to reports/: one Lua script call by its SHA1 (EVALSHA), sent
 * again as EVAL when the server does not have it loaded. */
#ifndef RPT_EVAL_H
#define RPT_EVAL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* EVALSHA of script with nkeys keys then nargs arguments (argv[0..nkeys+nargs),
 * lengths in len). *out: the reply (caller frees; never an error reply).
 * 0, or HR_EREDIS (no reply, or an error reply: logged, freed). */
int rpt__eval(redisContext *c, const char *script, int nkeys, int nargs, const char **argv,
              const size_t *len, redisReply **out);

#endif
