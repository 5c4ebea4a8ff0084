/* A Lua script called by its SHA1 (EVALSHA) on a synchronous connection,
 * sent again as EVAL when the server does not have it loaded (NOSCRIPT). */
#ifndef STO_SCRIPT_H
#define STO_SCRIPT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* The SHA1 of script as 40 lowercase hex digits (NUL-terminated) in out. */
void sto_script_sha1(const char *script, char out[41]);

/* Sends argv[0..argc) (lengths in len) where argv[0] is "EVALSHA" and
 * argv[1] the SHA1 of script; on a NOSCRIPT reply, argv[0..1] and len[0..1]
 * become "EVAL" and script (script borrowed; must outlive argv) and the
 * command is sent again. The reply (caller frees; may be an error reply), or
 * NULL when the connection failed (c->errstr says why). Nothing is logged. */
redisReply *sto_script_call(redisContext *c, const char *script, int argc, const char **argv,
                            size_t *len);

#endif
