#include "sto_script.h"
#include "../common/hr_bytes.h"

#include <openssl/sha.h>
#include <string.h>

void sto_script_sha1(const char *script, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script, strlen(script), md);
    hr_hex_encode(md, sizeof(md), out);
}

redisReply *sto_script_call(redisContext *c, const char *script, int argc, const char **argv,
                            size_t *len)
{
    redisReply *r = redisCommandArgv(c, argc, argv, len);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = script;
        len[0] = 4;
        len[1] = strlen(script);
        r = redisCommandArgv(c, argc, argv, len);
    }
    return r;
}
