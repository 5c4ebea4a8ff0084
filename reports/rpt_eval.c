#include "rpt_eval.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../storage/sto_script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rpt__eval(redisContext *c, const char *script, int nkeys, int nargs, const char **argv,
              const size_t *len, redisReply **out)
{
    char sha[41], nk[16];
    int argc = 3 + nkeys + nargs, rc = 0;
    const char **av = calloc((size_t)argc, sizeof(*av));
    size_t *al = calloc((size_t)argc, sizeof(*al));
    redisReply *r = NULL;
    *out = NULL;
    if (!av || !al) {
        rc = -ENOMEM;
        goto out;
    }
    sto_script_sha1(script, sha);
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    av[1] = sha;
    av[2] = nk;
    for (int i = 0; i < nkeys + nargs; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = len[i];
    }
    for (int i = 0; i < 3; i++)
        al[i] = strlen(av[i]);
    r = sto_script_call(c, script, argc, av, al);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        hr_error("reports", "script failed: %s",
                 r              ? r->str
                 : c->errstr[0] ? c->errstr
                                : "no reply");
        freeReplyObject(r);
        r = NULL;
        rc = HR_EREDIS;
    }
    *out = r;
out:
    free(av);
    free(al);
    return rc;
}
