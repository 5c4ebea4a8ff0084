#include "retrieve.h"
#include "../common/hr_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 128

static void copy_str(char *dst, size_t cap, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(dst, cap, "%.*s", (int)r->len, r->str);
    else
        dst[0] = '\0';
}

static int add(sto_rlist *l, sto_rinst **out)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        sto_rinst *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    *out = &l->v[l->n++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

void sto_rlist_free(sto_rlist *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int sto_retrieve_study_owner(redisContext *c, const char *study, char hospital[64],
                             char patient[192])
{
    redisReply *r = redisCommand(c, "HMGET hr:{%s}:st hospital patient", study);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int rc = r->element[0]->type == REDIS_REPLY_STRING ? 0 : HR_ENOTFOUND;
    copy_str(hospital, 64, r->element[0]);
    copy_str(patient, 192, r->element[1]);
    freeReplyObject(r);
    return rc;
}

int sto_retrieve_study_of(redisContext *c, const char *sop, char study[STO_UID_BUF])
{
    redisReply *r = redisCommand(c, "HGET hr:ix:sop %s", sop);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int rc = r->type == REDIS_REPLY_STRING ? 0 : HR_ENOTFOUND;
    copy_str(study, STO_UID_BUF, r);
    freeReplyObject(r);
    return rc;
}

/* Members of a sorted set in score order. */
static redisReply *zmembers(redisContext *c, const char *fmt, const char *a, const char *b)
{
    redisReply *r = b ? redisCommand(c, fmt, a, b) : redisCommand(c, fmt, a);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Fetches the instance hashes of sops[0..n) (pipelined) and appends them. */
static int fetch_instances(redisContext *c, const char *study, char **sops, size_t n, size_t max,
                           sto_rlist *out)
{
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(c, "HMGET hr:{%s}:i:%s sha size ts sop_class series frames hospital",
                           study, sops[i]);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_ARRAY ||
            r->elements != 7) {
            freeReplyObject(r);
            return HR_EREDIS; /* the connection is unusable now: caller drops it */
        }
        if (rc == 0 && r->element[0]->type == REDIS_REPLY_STRING) {
            sto_rinst *it;
            if (max && out->n >= max)
                rc = HR_ETOOBIG;
            else if ((rc = add(out, &it)) == 0) {
                snprintf(it->study, sizeof(it->study), "%s", study);
                snprintf(it->sop, sizeof(it->sop), "%s", sops[i]);
                copy_str(it->sha, sizeof(it->sha), r->element[0]);
                char num[32];
                copy_str(num, sizeof(num), r->element[1]);
                it->size = strtoull(num, NULL, 10);
                copy_str(it->ts, sizeof(it->ts), r->element[2]);
                copy_str(it->sop_class, sizeof(it->sop_class), r->element[3]);
                copy_str(it->series, sizeof(it->series), r->element[4]);
                copy_str(num, sizeof(num), r->element[5]);
                it->frames = (uint32_t)strtoul(num, NULL, 10);
                copy_str(it->hospital, sizeof(it->hospital), r->element[6]);
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

static int list_series(redisContext *c, const char *study, const char *series, size_t max,
                       sto_rlist *out)
{
    redisReply *r = zmembers(c, "ZRANGE hr:{%s}:se:%s:i 0 -1", study, series);
    if (!r)
        return HR_EREDIS;
    int rc = 0;
    char *sops[BATCH];
    for (size_t i = 0; i < r->elements && !rc; i += BATCH) {
        size_t k = 0;
        for (; k < BATCH && i + k < r->elements; k++)
            sops[k] = r->element[i + k]->str;
        rc = fetch_instances(c, study, sops, k, max, out);
    }
    freeReplyObject(r);
    return rc;
}

int sto_retrieve_list(redisContext *c, const sto_scope *scope, const char *study,
                      const char *series, const char *sop, size_t max, sto_rlist *out)
{
    int rc = sto_retrieve_study_owner(c, study, out->hospital, out->patient);
    if (rc)
        return rc;
    if (scope) {
        int ok = sto_scope_allows_study(c, scope, study, out->hospital);
        if (ok <= 0)
            return ok < 0 ? HR_EREDIS : HR_EFORBIDDEN;
    }
    size_t before = out->n;
    if (sop) {
        char *one = (char *)sop;
        rc = fetch_instances(c, study, &one, 1, max, out);
        if (!rc && out->n == before)
            return HR_ENOTFOUND;
        if (!rc && series && strcmp(out->v[out->n - 1].series, series) != 0) {
            out->n--;
            return HR_ENOTFOUND;
        }
        return rc;
    }
    if (series) {
        rc = list_series(c, study, series, max, out);
        return !rc && out->n == before ? HR_ENOTFOUND : rc;
    }
    redisReply *r = zmembers(c, "ZRANGE hr:{%s}:se 0 -1", study, NULL);
    if (!r)
        return HR_EREDIS;
    for (size_t i = 0; i < r->elements && !rc; i++)
        rc = list_series(c, study, r->element[i]->str, max, out);
    freeReplyObject(r);
    return !rc && out->n == before ? HR_ENOTFOUND : rc;
}
