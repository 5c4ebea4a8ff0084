#include "worklist.h"
#include "worklist_script.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/uids.h"
#include "../storage/sto_script.h"

#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX   24
#define NUM_MAX    24
#define SWEEP_MAX  10000
#define PAGE_MAX   1000
#define EVENTS_MAX 1000
#define USER_MAX   64 /* wl_item.claimed_by, wl_event.user */

/* Script codes (worklist_script.lua) -> project codes. */
enum { WL_OK, WL_NOTFOUND, WL_BUSY, WL_STATE, WL_INVAL };

static char g_sha[41];
static pthread_once_t g_sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
    sto_script_sha1(k_worklist_script, g_sha);
}

/* One EVALSHA of the worklist script (EVAL when the server lacks it). */
typedef struct wl_call {
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    int argc;
    char key[HR_UID_MAX + 16];
    char nums[8][NUM_MAX];
    int n_nums;
} wl_call;

#define STR2_(x) #x
#define STR_(x)  STR2_(x)

static void call_init(wl_call *k, const char *study, const char *op, long long now_ms)
{
    pthread_once(&g_sha_once, sha_init);
    memset(k, 0, sizeof(*k));
    k->argv[k->argc++] = "EVALSHA";
    k->argv[k->argc++] = g_sha;
    k->argv[k->argc++] = study ? "1" : "0";
    if (study) {
        snprintf(k->key, sizeof(k->key), "hr:wl:{%s}", study);
        k->argv[k->argc++] = k->key;
    }
    k->argv[k->argc++] = op;
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", now_ms);
    k->argv[k->argc++] = k->nums[k->n_nums++];
    k->argv[k->argc++] = STR_(WL_EVENTS_KEEP);
}

static void call_str(wl_call *k, const char *s)
{
    HR_ASSERT(k->argc < ARGS_MAX);
    k->argv[k->argc++] = s ? s : "";
}

static void call_num(wl_call *k, long long v)
{
    HR_ASSERT(k->n_nums < (int)HR_ARRAY_LEN(k->nums));
    snprintf(k->nums[k->n_nums], NUM_MAX, "%lld", v);
    call_str(k, k->nums[k->n_nums++]);
}

/* The reply (caller frees) or NULL when the connection failed. */
static redisReply *call_run(redisContext *c, wl_call *k)
{
    for (int i = 0; i < k->argc; i++)
        k->len[i] = strlen(k->argv[i]);
    redisReply *r = sto_script_call(c, k_worklist_script, k->argc, k->argv, k->len);
    if (r && r->type == REDIS_REPLY_ERROR)
        hr_error("worklist", "%s failed: %s", k->argv[k->argv[2][0] == '1' ? 4 : 3], r->str);
    else if (!r)
        hr_error("worklist", "redis: %s", c->errstr[0] ? c->errstr : "no reply");
    return r;
}

static int code_of(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return HR_EREDIS;
    switch (r->integer) {
    case WL_OK:
        return 0;
    case WL_NOTFOUND:
        return HR_ENOTFOUND;
    case WL_BUSY:
        return -EBUSY;
    case WL_STATE:
        return HR_ESTATE;
    case WL_INVAL:
        return -EINVAL;
    }
    return HR_EREDIS;
}

/* User names: 1-64 bytes, no control characters (the history is tab-separated). */
static int user_ok(const char *s, int allow_empty)
{
    size_t n = s ? strlen(s) : 0;
    if (n > USER_MAX || (n == 0 && !allow_empty))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return 0;
    return 1;
}

/* Copies at most cap-1 bytes of src, not cutting a UTF-8 sequence. */
static void copy_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static int simple(redisContext *c, wl_call *k)
{
    redisReply *r = call_run(c, k);
    int rc = code_of(r);
    freeReplyObject(r);
    return rc;
}

int wl_arrive(redisContext *c, const hr_config *cfg, const wl_arrival *a, int *created)
{
    wl_item *cut = NULL; /* bounded copies of the strings */
    const hr_center *center;
    enum hr_priority prio;
    wl_call k;
    int rc = -EINVAL;
    if (created)
        *created = 0;
    if (!dcm_uid_key_valid(a->study))
        goto out;
    rc = -ENOMEM;
    cut = calloc(1, sizeof(*cut));
    if (!cut)
        goto out;
    int rule = -1;
    if (a->center) {
        center = a->center;
        prio = a->priority;
    } else {
        rule = wl_route(cfg, a, &center, &prio);
    }
    copy_utf8(cut->hospital, sizeof(cut->hospital), a->hospital);
    copy_utf8(cut->modality, sizeof(cut->modality), a->modality);
    copy_utf8(cut->patient, sizeof(cut->patient), a->patient);
    copy_utf8(cut->patient_name, sizeof(cut->patient_name), a->patient_name);
    copy_utf8(cut->accession, sizeof(cut->accession), a->accession);
    copy_utf8(cut->study_date, sizeof(cut->study_date), a->study_date);
    copy_utf8(cut->procedure, sizeof(cut->procedure), a->procedure);
    call_init(&k, a->study, "arrive", a->now_ms);
    call_str(&k, a->study);
    call_str(&k, center->id);
    call_str(&k, wl_priority_name(prio));
    call_num(&k, rule);
    call_num(&k, wl_quiet_ms(cfg, a->modality));
    call_num(&k, wl_due_ms(cfg, center, prio, a->now_ms));
    call_str(&k, cut->hospital);
    call_str(&k, cut->modality);
    call_str(&k, cut->patient);
    call_str(&k, cut->patient_name);
    call_str(&k, cut->accession);
    call_str(&k, cut->study_date);
    call_str(&k, cut->procedure);
    call_num(&k, a->repeat ? 1 : 0);
    call_num(&k, a->patient_conflict ? 1 : 0);
    call_num(&k, hr_day_of(a->now_ms));
    redisReply *r = call_run(c, &k);
    rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : HR_EREDIS;
    if (!rc && created)
        *created = r->integer == 1;
    freeReplyObject(r);
out:
    free(cut);
    return rc;
}

int wl_complete(redisContext *c, const char *study, const char *by, long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(by, 1))
        return -EINVAL;
    call_init(&k, study, "complete", now_ms);
    call_str(&k, study);
    call_str(&k, by);
    return simple(c, &k);
}

/* claim and renew: the same arguments, a lease of cfg->worklist.lease_s */
static int lease_op(redisContext *c, const hr_config *cfg, const char *op, const char *study,
                    const char *user, long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(user, 0))
        return -EINVAL;
    call_init(&k, study, op, now_ms);
    call_str(&k, study);
    call_str(&k, user);
    call_num(&k, cfg->worklist.lease_s * 1000LL);
    return simple(c, &k);
}

int wl_claim(redisContext *c, const hr_config *cfg, const char *study, const char *user,
             long long now_ms)
{
    return lease_op(c, cfg, "claim", study, user, now_ms);
}

int wl_renew(redisContext *c, const hr_config *cfg, const char *study, const char *user,
             long long now_ms)
{
    return lease_op(c, cfg, "renew", study, user, now_ms);
}

int wl_release(redisContext *c, const char *study, const char *user, long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(user, 0))
        return -EINVAL;
    call_init(&k, study, "release", now_ms);
    call_str(&k, study);
    call_str(&k, user);
    return simple(c, &k);
}

int wl_reassign(redisContext *c, const hr_config *cfg, const char *study, const char *to_user,
                const char *by, long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(to_user, 0) || !user_ok(by, 0))
        return -EINVAL;
    call_init(&k, study, "reassign", now_ms);
    call_str(&k, study);
    call_str(&k, to_user);
    call_str(&k, by);
    call_num(&k, cfg->worklist.lease_s * 1000LL);
    return simple(c, &k);
}

int wl_set_state(redisContext *c, const char *study, enum wl_state to, const char *user,
                 long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(user, 0) ||
        (to != WL_REPORTED && to != WL_FINAL && to != WL_AMENDED && to != WL_READY))
        return -EINVAL;
    call_init(&k, study, "set_state", now_ms);
    call_str(&k, study);
    call_str(&k, wl_state_name(to));
    call_str(&k, user);
    call_num(&k, hr_day_of(now_ms));
    return simple(c, &k);
}

int wl_return(redisContext *c, const hr_config *cfg, const char *study, const char *reader,
              const char *by, long long now_ms)
{
    wl_call k;
    if (!dcm_uid_key_valid(study) || !user_ok(reader, 0) || !user_ok(by, 0))
        return -EINVAL;
    call_init(&k, study, "return", now_ms);
    call_str(&k, study);
    call_str(&k, reader);
    call_str(&k, by);
    call_num(&k, cfg->worklist.lease_s * 1000LL);
    return simple(c, &k);
}

static long long to_ll(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

static int sweep_part(redisContext *c, const char *op, long long now_ms, int max, int *count)
{
    wl_call k;
    call_init(&k, NULL, op, now_ms);
    call_num(&k, max);
    call_num(&k, hr_day_of(now_ms)); /* the statistics day (sweep_overdue) */
    redisReply *r = call_run(c, &k);
    int rc = 0;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        *count = (int)r->integer;
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements % 4 == 0) {
        *count = (int)(r->elements / 4);
        for (size_t i = 0; i < r->elements; i += 4) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            hr_warn("worklist", "escalation: study %s on center %s (%s) is overdue, due %lld",
                    r->element[i]->str, r->element[i + 1]->str, r->element[i + 2]->str,
                    to_ll(r->element[i + 3]->str));
        }
    } else {
        rc = HR_EREDIS;
    }
    freeReplyObject(r);
    return rc;
}

int wl_sweep(redisContext *c, long long now_ms, int max, wl_sweep_stats *st)
{
    wl_sweep_stats s = {0, 0, 0};
    if (max <= 0)
        max = 100;
    if (max > SWEEP_MAX)
        max = SWEEP_MAX;
    int rc = sweep_part(c, "sweep_complete", now_ms, max, &s.completed);
    if (!rc)
        rc = sweep_part(c, "sweep_expire", now_ms, max, &s.expired);
    if (!rc)
        rc = sweep_part(c, "sweep_overdue", now_ms, max, &s.overdue);
    if (st)
        *st = s;
    return rc;
}

int wl_next_deadline(redisContext *c, long long *when_ms)
{
    wl_call k;
    call_init(&k, NULL, "next", 0);
    redisReply *r = call_run(c, &k);
    int rc = r && r->type == REDIS_REPLY_STRING ? 0 : HR_EREDIS;
    *when_ms = rc ? 0 : to_ll(r->str);
    freeReplyObject(r);
    return rc;
}

/* ---- reading items ---- */

#define SF_(name)                                                                                  \
    {                                                                                              \
#name, offsetof(wl_item, name), sizeof(((wl_item *)0)->name)                               \
    }
/* Text fields of an item: hash field name = struct member name. */
static const struct {
    const char *key;
    size_t off, cap;
} k_str_fields[] = {SF_(study),     SF_(center),       SF_(hospital),   SF_(modality),
                    SF_(patient),   SF_(patient_name), SF_(accession),  SF_(study_date),
                    SF_(procedure), SF_(claimed_by),   SF_(reported_by)};
/* Number fields; int members are marked. */
static const struct {
    const char *key;
    size_t off;
    int is_int;
} k_num_fields[] = {
    {"arrived_ms", offsetof(wl_item, arrived_ms), 0},
    {"last_ms", offsetof(wl_item, last_ms), 0},
    {"ready_ms", offsetof(wl_item, ready_ms), 0},
    {"due_ms", offsetof(wl_item, due_ms), 0},
    {"lease_until_ms", offsetof(wl_item, lease_until_ms), 0},
    {"overdue", offsetof(wl_item, overdue), 1},
    {"changed_after_ready", offsetof(wl_item, changed_after_ready), 1},
    {"changed_since_read", offsetof(wl_item, changed_since_read), 1},
    {"patient_conflict", offsetof(wl_item, patient_conflict), 1},
    {"instances", offsetof(wl_item, instances), 1},
    {"rule", offsetof(wl_item, rule), 1},
};

static void item_field(wl_item *it, const char *k, const char *s)
{
    for (size_t i = 0; i < sizeof(k_str_fields) / sizeof(k_str_fields[0]); i++)
        if (strcmp(k, k_str_fields[i].key) == 0) {
            copy_utf8((char *)it + k_str_fields[i].off, k_str_fields[i].cap, s);
            return;
        }
    for (size_t i = 0; i < sizeof(k_num_fields) / sizeof(k_num_fields[0]); i++)
        if (strcmp(k, k_num_fields[i].key) == 0) {
            long long v = to_ll(s);
            if (k_num_fields[i].is_int)
                *(int *)((char *)it + k_num_fields[i].off) = (int)v;
            else
                *(long long *)((char *)it + k_num_fields[i].off) = v;
            return;
        }
    if (strcmp(k, "priority") == 0 && wl_priority_parse(s) >= 0)
        it->priority = (enum hr_priority)wl_priority_parse(s);
    else if (strcmp(k, "state") == 0 && wl_state_parse(s) >= 0)
        it->state = (enum wl_state)wl_state_parse(s);
}

/* Fills it from an HGETALL array; 0 or HR_ENOTFOUND (empty). */
static int item_from(const redisReply *h, wl_item *it)
{
    memset(it, 0, sizeof(*it));
    it->rule = -1;
    it->priority = HR_PRIO_ROUTINE;
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements < 2)
        return HR_ENOTFOUND;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING)
            item_field(it, h->element[i]->str,
                       h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : "");
    return 0;
}

int wl_get(redisContext *c, const char *study, wl_item *out)
{
    if (!dcm_uid_key_valid(study))
        return -EINVAL;
    redisReply *r = redisCommand(c, "HGETALL hr:wl:{%s}", study);
    int rc = !r || r->type != REDIS_REPLY_ARRAY ? HR_EREDIS : item_from(r, out);
    freeReplyObject(r);
    return rc;
}

static int filter_str_ok(const char *s)
{
    return !s || strlen(s) < HR_NAME_MAX;
}

/* A cursor as made by the script: "<tag>:<score>:<skip>:<member>" (the
 * script checks the shape). */
static int cursor_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= WL_CURSOR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || s[i] == ':' ||
              s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* The head of a listing reply: n integers then the next cursor (string). */
static int reply_head_ok(const redisReply *r, size_t n)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < n + 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return 0;
    return r->element[n]->type == REDIS_REPLY_STRING && r->element[n]->len < WL_CURSOR_MAX;
}

static int upgrade_center(redisContext *c, const char *center, int max, long *left)
{
    wl_call k;
    call_init(&k, NULL, "upgrade", 0);
    call_str(&k, center);
    call_num(&k, max);
    redisReply *r = call_run(c, &k);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : HR_EREDIS;
    *left = rc ? 0 : (long)r->integer;
    freeReplyObject(r);
    return rc;
}

int wl_upgrade(redisContext *c, const hr_config *cfg, int max, long *left)
{
    long total = 0, n = 0;
    int rc = 0;
    if (max <= 0 || max > SWEEP_MAX)
        max = 1000;
    for (size_t i = 0; i < cfg->n_centers && !rc; i++) {
        rc = upgrade_center(c, cfg->centers[i].id, max, &n);
        total += n;
    }
    if (left)
        *left = total;
    return rc;
}

/* While the center has items of before decision 0015 (one EXISTS). */
static int upgrade_if_needed(redisContext *c, const char *center)
{
    redisReply *r = redisCommand(c, "EXISTS hr:wl:c:%s:arr", center);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : HR_EREDIS;
    long left = 0;
    if (!rc && r->integer)
        rc = upgrade_center(c, center, 1000, &left);
    freeReplyObject(r);
    return rc;
}

int wl_list(redisContext *c, const hr_config *cfg, const wl_filter *f,
            int (*cb)(void *arg, const wl_item *it), void *arg, wl_counts *counts)
{
    wl_call k;
    wl_item *it = NULL;
    redisReply *r = NULL;
    int rc = HR_ENOTFOUND;
    if (!f->center || !hr_config_center(cfg, f->center))
        goto out;
    rc = -EINVAL;
    if (f->state < -1 || f->state >= WL_STATE_COUNT || f->priority < -1 ||
        f->priority >= HR_PRIORITIES || f->offset < 0 || f->limit < 0 ||
        !filter_str_ok(f->hospital) || !filter_str_ok(f->modality) || !user_ok(f->claimed_by, 1) ||
        f->from_ms < 0 || f->to_ms < 0 || !cursor_ok(f->cursor))
        goto out;
    long limit = f->limit == 0 ? 100 : f->limit > PAGE_MAX ? PAGE_MAX : f->limit;
    rc = upgrade_if_needed(c, f->center);
    if (rc)
        goto out;
    call_init(&k, NULL, "list", 0);
    call_str(&k, f->center);
    call_str(&k, f->state < 0 ? "" : wl_state_name((enum wl_state)f->state));
    call_str(&k, f->priority < 0 ? "" : wl_priority_name((enum hr_priority)f->priority));
    call_str(&k, f->hospital);
    call_str(&k, f->modality);
    call_str(&k, f->overdue_only ? "1" : "0");
    call_str(&k, f->claimed_by);
    call_num(&k, f->from_ms);
    call_num(&k, f->to_ms);
    call_str(&k, f->order_arrival ? "1" : "0");
    call_num(&k, f->offset);
    call_num(&k, limit);
    call_str(&k, f->cursor);
    call_str(&k, STR_(WL_SCAN_BUDGET));
    r = call_run(c, &k);
    /* matched, the states, overdue, examined, next, then the items */
    enum { HEAD = 3 + WL_STATE_COUNT };
    if (r && r->type == REDIS_REPLY_INTEGER) { /* refused (a bad cursor) */
        rc = code_of(r) ? code_of(r) : HR_EREDIS;
        goto out;
    }
    rc = HR_EREDIS;
    if (!reply_head_ok(r, HEAD))
        goto out;
    if (counts) {
        counts->matched = (long)r->element[0]->integer;
        for (int s = 0; s < WL_STATE_COUNT; s++)
            counts->by_state[s] = (long)r->element[1 + s]->integer;
        counts->overdue = (long)r->element[1 + WL_STATE_COUNT]->integer;
        counts->examined = (long)r->element[2 + WL_STATE_COUNT]->integer;
        snprintf(counts->next, sizeof(counts->next), "%s", r->element[HEAD]->str);
    }
    rc = -ENOMEM;
    it = malloc(sizeof(*it));
    if (!it)
        goto out;
    rc = 0;
    for (size_t i = HEAD + 1; cb && i < r->elements && !rc; i++)
        if (item_from(r->element[i], it) == 0)
            rc = cb(arg, it);
out:
    freeReplyObject(r);
    free(it);
    return rc;
}

int wl_list_hospital(redisContext *c, const char *hospital, const char *cursor, long offset,
                     long limit, int (*cb)(void *arg, const wl_item *it), void *arg, long *total,
                     char *next, size_t next_cap)
{
    wl_call k;
    wl_item *it = NULL;
    redisReply *r = NULL;
    int rc = -EINVAL;
    if (next && next_cap)
        next[0] = '\0';
    if (!hospital || !*hospital || strlen(hospital) >= HR_ID_MAX || offset < 0 || limit < 0 ||
        !cursor_ok(cursor))
        goto out;
    call_init(&k, NULL, "hospital", 0);
    call_str(&k, hospital);
    call_str(&k, cursor);
    call_num(&k, offset);
    call_num(&k, limit == 0 ? 100 : limit > PAGE_MAX ? PAGE_MAX : limit);
    r = call_run(c, &k);
    /* total, examined, next, then the items */
    if (r && r->type == REDIS_REPLY_INTEGER) { /* refused (a bad cursor) */
        rc = code_of(r) ? code_of(r) : HR_EREDIS;
        goto out;
    }
    rc = HR_EREDIS;
    if (!reply_head_ok(r, 2))
        goto out;
    if (total)
        *total = (long)r->element[0]->integer;
    if (next && next_cap)
        snprintf(next, next_cap, "%s", r->element[2]->str);
    rc = -ENOMEM;
    it = malloc(sizeof(*it));
    if (!it)
        goto out;
    rc = 0;
    for (size_t i = 3; cb && i < r->elements && !rc; i++)
        if (item_from(r->element[i], it) == 0)
            rc = cb(arg, it);
out:
    freeReplyObject(r);
    free(it);
    return rc;
}

/* ---- events ---- */

/* "ms" or "ms-seq" (digits) into a comparable pair; 0 or -EINVAL. */
static int id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    if (!s || !*s || strlen(s) > 41 || *s < '0' || *s > '9')
        return -EINVAL;
    *ms = strtoull(s, &end, 10);
    *seq = 0;
    if (*end == '-') {
        if (end[1] < '0' || end[1] > '9')
            return -EINVAL;
        *seq = strtoull(end + 1, &end, 10);
    }
    return *end ? -EINVAL : 0;
}

static int id_less(const char *a, const char *b)
{
    unsigned long long am, as, bm, bs;
    if (id_parse(a, &am, &as) || id_parse(b, &bm, &bs))
        return 0;
    return am < bm || (am == bm && as < bs);
}

/* "length", "entries-added" and the first entry's id of the stream. */
static int stream_info(redisContext *c, long long *length, long long *added, char *first,
                       size_t cap)
{
    *length = *added = 0;
    first[0] = '\0';
    redisReply *r = redisCommand(c, "XINFO STREAM hr:wl:events");
    int rc = 0;
    if (!r)
        rc = HR_EREDIS;
    else if (r->type == REDIS_REPLY_ERROR) /* no stream yet */
        rc = 0;
    else if (r->type != REDIS_REPLY_ARRAY)
        rc = HR_EREDIS;
    for (size_t i = 0; !rc && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER)
            *length = v->integer;
        else if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER)
            *added = v->integer;
        else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                 v->elements == 2 && v->element[0]->type == REDIS_REPLY_STRING)
            snprintf(first, cap, "%s", v->element[0]->str);
    }
    freeReplyObject(r);
    return rc;
}

/* String fields of an event, copied by one loop (as item_field does). */
#define EV_STR(name)                                                                               \
    {                                                                                              \
#name, offsetof(wl_event, name), sizeof(((wl_event *)0)->name)                             \
    }
static const struct {
    const char *key;
    size_t off, cap;
} k_event_fields[] = {EV_STR(type), EV_STR(study),  EV_STR(center),   EV_STR(hospital),
                      EV_STR(user), EV_STR(reader), EV_STR(priority), EV_STR(state)};
#undef EV_STR

static void event_field(wl_event *ev, const char *k, const redisReply *v)
{
    const char *s = v->type == REDIS_REPLY_STRING ? v->str : "";
    for (size_t i = 0; i < sizeof(k_event_fields) / sizeof(k_event_fields[0]); i++)
        if (strcmp(k, k_event_fields[i].key) == 0) {
            copy_utf8((char *)ev + k_event_fields[i].off, k_event_fields[i].cap, s);
            return;
        }
    if (strcmp(k, "time") == 0)
        ev->time_ms = to_ll(s);
}

int wl_events_since(redisContext *c, const char *after_id, int max,
                    int (*cb)(void *arg, const wl_event *ev), void *arg, int *gap)
{
    unsigned long long ms, seq;
    long long length, added;
    char first[48], start[48];
    int from_oldest = !after_id || !*after_id || strcmp(after_id, "0") == 0;
    *gap = 0;
    if (!from_oldest && id_parse(after_id, &ms, &seq))
        return -EINVAL;
    if (max <= 0)
        max = 100;
    if (max > EVENTS_MAX)
        max = EVENTS_MAX;
    int rc = stream_info(c, &length, &added, first, sizeof(first));
    if (rc)
        return rc;
    if (!from_oldest && first[0] && added > length && id_less(after_id, first))
        *gap = 1;
    if (from_oldest)
        snprintf(start, sizeof(start), "-");
    else
        snprintf(start, sizeof(start), "(%llu-%llu", ms, seq);
    redisReply *r = redisCommand(c, "XRANGE hr:wl:events %s + COUNT %d", start, max);
    wl_event ev;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < r->elements && !rc; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        memset(&ev, 0, sizeof(ev));
        copy_utf8(ev.id, sizeof(ev.id), e->element[0]->str);
        const redisReply *fv = e->element[1];
        for (size_t j = 0; j + 1 < fv->elements; j += 2)
            if (fv->element[j]->type == REDIS_REPLY_STRING)
                event_field(&ev, fv->element[j]->str, fv->element[j + 1]);
        rc = cb(arg, &ev);
    }
    freeReplyObject(r);
    return rc;
}

int wl_history(redisContext *c, const char *study, int (*cb)(void *arg, const wl_event *ev),
               void *arg)
{
    if (!dcm_uid_key_valid(study))
        return -EINVAL;
    redisReply *r = redisCommand(c, "LRANGE hr:wl:{%s}:log 0 -1", study);
    int rc = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        rc = HR_EREDIS;
    else if (r->elements == 0)
        rc = HR_ENOTFOUND;
    for (size_t i = 0; !rc && i < r->elements; i++) {
        /* time \t type \t state \t user \t reader */
        char line[512], *parts[5] = {NULL};
        wl_event ev;
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        snprintf(line, sizeof(line), "%s", r->element[i]->str);
        char *p = line;
        for (int n = 0; n < 5; n++) {
            parts[n] = p;
            char *tab = p ? strchr(p, '\t') : NULL;
            if (tab)
                *tab = '\0';
            p = tab ? tab + 1 : NULL;
        }
        memset(&ev, 0, sizeof(ev));
        copy_utf8(ev.study, sizeof(ev.study), study);
        ev.time_ms = to_ll(parts[0]);
        copy_utf8(ev.type, sizeof(ev.type), parts[1]);
        copy_utf8(ev.state, sizeof(ev.state), parts[2]);
        copy_utf8(ev.user, sizeof(ev.user), parts[3]);
        copy_utf8(ev.reader, sizeof(ev.reader), parts[4]);
        rc = cb(arg, &ev);
    }
    freeReplyObject(r);
    return rc;
}
