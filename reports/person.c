/* Regional persons (person.h, decision 0027). */
#include "person.h"
#include "rpt_eval.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_io.h"
#include "../common/hr_log.h"
#include "../storage/keys.h"

#include "person_script.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYCHECK_TEXT "huren person-id key check"

/* ---- numbers ---- */

int rpt_national_id_valid(const char *s)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    int sum = 0;
    if (!s || strlen(s) != 18)
        return 0;
    for (int i = 0; i < 17; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        sum += (s[i] - '0') * w[i];
    }
    return s[17] == check[sum % 11];
}

int rpt_id_normalize(enum rpt_id_type t, const char *in, char *out, size_t cap)
{
    if (!in || cap < 2)
        return -EINVAL;
    while (*in == ' ')
        in++;
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == ' ')
        n--;
    if (n == 0 || n >= cap || n >= RPT_ID_NUMBER_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        out[i] = ch;
    }
    out[n] = '\0';
    if (t == RPT_ID_NATIONAL)
        return rpt_national_id_valid(out) ? 0 : -EINVAL;
    if (t != RPT_ID_HEALTH_CARD || n < 4 || n > 32)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9') ||
              out[i] == '-'))
            return -EINVAL;
    return 0;
}

static int hmac_hex(const unsigned char key[PIX_KEY_LEN], const char *msg, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, PIX_KEY_LEN, (const unsigned char *)msg, strlen(msg), md, &len) ||
        len != 32)
        return -EIO;
    hr_hex_encode(md, 32, hex);
    return 0;
}

int rpt_id_hmac(const pix_config *p, enum rpt_id_type t, const char *norm, char hex[65])
{
    char msg[32 + RPT_ID_NUMBER_MAX];
    if (!p || !p->have_key)
        return HR_ESTATE;
    if ((unsigned)t >= RPT_ID_TYPES || strlen(norm) >= RPT_ID_NUMBER_MAX)
        return -EINVAL;
    snprintf(msg, sizeof(msg), "%s:%s", rpt_id_type_name(t), norm);
    int rc = hmac_hex(p->key, msg, hex);
    OPENSSL_cleanse(msg, sizeof(msg));
    return rc;
}

void rpt_person_id_of(const char *hmac_hex, char out[RPT_PERSON_ID_LEN + 1])
{
    out[0] = 'p';
    memcpy(out + 1, hmac_hex, RPT_PERSON_ID_LEN - 1);
    out[RPT_PERSON_ID_LEN] = '\0';
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int rpt_person_id_valid(const char *s)
{
    return s && strlen(s) == RPT_PERSON_ID_LEN && s[0] == 'p' &&
           is_lower_hex(s + 1, RPT_PERSON_ID_LEN - 1);
}

static int hmac_valid(const char *s)
{
    return s && strlen(s) == 64 && is_lower_hex(s, 64);
}

int rpt_patient_key(const char *hospital, const char *issuer, const char *patient_id, char *out)
{
    out[0] = '\0';
    if (!patient_id || !*patient_id || strlen(patient_id) >= DCM_LO_MAX ||
        strlen(issuer && *issuer ? issuer : hospital) >= DCM_LO_MAX)
        return -EINVAL;
    char *p = out;
    sto_key_part(issuer && *issuer ? issuer : hospital, p, STO_KEY_PART_MAX);
    p += strlen(p);
    *p++ = '|';
    sto_key_part(patient_id, p, STO_KEY_PART_MAX);
    return 0;
}

/* ---- the key ---- */

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

static int key_create(const char *data_dir, const char *dir, const char *path,
                      unsigned char key[PIX_KEY_LEN])
{
    char tmp[HR_PATH_MAX + 64];
    int rc = 0, fd = -1, made_dir = 0;
    if (mkdir(dir, 0700) == 0)
        made_dir = 1;
    else if (errno != EEXIST)
        return -errno;
    if (RAND_bytes(key, PIX_KEY_LEN) != 1)
        return -EIO;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = hr_write_all(fd, key, PIX_KEY_LEN);
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    fd = -1;
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (!rc)
        rc = fsync_dir(dir);
    if (!rc && made_dir)
        rc = fsync_dir(data_dir);
out:
    if (rc) {
        unlink(tmp);
        OPENSSL_cleanse(key, PIX_KEY_LEN);
    }
    return rc;
}

int rpt_person_key_open(const char *data_dir, int may_create, unsigned char key[PIX_KEY_LEN],
                        int *created)
{
    char dir[HR_PATH_MAX + 16], path[HR_PATH_MAX + 32];
    unsigned char *b = NULL;
    size_t len = 0;
    *created = 0;
    snprintf(dir, sizeof(dir), "%s/keys", data_dir);
    snprintf(path, sizeof(path), "%s/%s", data_dir, RPT_PIX_KEY_FILE);
    int rc = hr_read_file(path, PIX_KEY_LEN, &b, &len);
    if (rc == 0) {
        if (len != PIX_KEY_LEN)
            rc = HR_ETRUNC;
        else
            memcpy(key, b, PIX_KEY_LEN);
        OPENSSL_cleanse(b, len);
        free(b);
        return rc;
    }
    if (rc != -ENOENT)
        return rc;
    if (!may_create)
        return HR_ENOTFOUND;
    rc = key_create(data_dir, dir, path, key);
    if (!rc)
        *created = 1;
    return rc;
}

int rpt_person_key_check(redisContext *c, const unsigned char key[PIX_KEY_LEN])
{
    char hex[65];
    int rc = hmac_hex(key, KEYCHECK_TEXT, hex);
    if (rc)
        return rc;
    hex[16] = '\0';
    redisReply *r = redisCommand(c, "SET hr:pix:keycheck %s NX", hex);
    if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STATUS))
        rc = HR_EREDIS;
    freeReplyObject(r);
    if (rc)
        return rc;
    r = redisCommand(c, "GET hr:pix:keycheck");
    if (!r || r->type != REDIS_REPLY_STRING)
        rc = HR_EREDIS;
    else if (strcmp(r->str, hex) != 0)
        rc = HR_EMISMATCH;
    freeReplyObject(r);
    return rc;
}

int rpt_person_index_has_data(redisContext *c, int *yes)
{
    redisReply *r = redisCommand(c, "EXISTS hr:ix:date hr:ix:patients hr:stats hr:pix:keycheck");
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : HR_EREDIS;
    if (!rc)
        *yes = r->integer > 0;
    freeReplyObject(r);
    return rc;
}

/* ---- links ---- */

/* GET of a lookup key into person ("" when absent). 0 or HR_EREDIS. */
static int get_person(redisReply *r, char person[RPT_PERSON_ID_LEN + 1])
{
    person[0] = '\0';
    if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING))
        return HR_EREDIS;
    if (r->type == REDIS_REPLY_STRING && rpt_person_id_valid(r->str))
        snprintf(person, RPT_PERSON_ID_LEN + 1, "%s", r->str);
    return 0;
}

int rpt_person_by_id(redisContext *c, enum rpt_id_type t, const char *hmac,
                     char person[RPT_PERSON_ID_LEN + 1])
{
    if ((unsigned)t >= RPT_ID_TYPES || !hmac_valid(hmac))
        return -EINVAL;
    redisReply *r = redisCommand(c, "GET hr:pix:%s:%s", rpt_id_type_name(t), hmac);
    int rc = get_person(r, person);
    freeReplyObject(r);
    return rc ? rc : person[0] ? 0 : HR_ENOTFOUND;
}

int rpt_person_by_patient(redisContext *c, const char *pkey, char person[RPT_PERSON_ID_LEN + 1])
{
    if (!pkey || !*pkey)
        return -EINVAL;
    redisReply *r = redisCommand(c, "GET hr:pix:pt:%s", pkey);
    int rc = get_person(r, person);
    freeReplyObject(r);
    return rc ? rc : person[0] ? 0 : HR_ENOTFOUND;
}

/* SET key person NX; *owner = the person the key names afterwards. */
static int claim(redisContext *c, const char *key, const char *person,
                 char owner[RPT_PERSON_ID_LEN + 1])
{
    redisReply *r = redisCommand(c, "SET %s %s NX", key, person);
    int rc = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_NIL) ? 0 : HR_EREDIS;
    int took = !rc && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (rc)
        return rc;
    if (took) {
        snprintf(owner, RPT_PERSON_ID_LEN + 1, "%s", person);
        return 0;
    }
    r = redisCommand(c, "GET %s", key);
    rc = get_person(r, owner);
    freeReplyObject(r);
    return rc;
}

/* Removes a lookup key this link set, if it still names person. */
static void unclaim(redisContext *c, const char *key, const char *person)
{
    redisReply *r = redisCommand(
        c, "EVAL %s 1 %s %s",
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0",
        key, person);
    freeReplyObject(r);
}

/* The patient's newest studies as score/study argument pairs. */
static int patient_studies(redisContext *c, const char *pkey, redisReply **out)
{
    *out = redisCommand(c, "ZRANGE hr:pt:%s:st -%d -1 WITHSCORES", pkey, RPT_PERSON_LINK_STUDIES);
    if (!*out || (*out)->type != REDIS_REPLY_ARRAY || (*out)->elements % 2) {
        freeReplyObject(*out);
        *out = NULL;
        return HR_EREDIS;
    }
    return 0;
}

static int person_script(redisContext *c, const char *person, enum rpt_id_type t, const char *hmac,
                         const char *pkey, long long now_ms, rpt_link_result *out)
{
    char k1[64], k2[64], k3[64], now[24], maxpts[16];
    redisReply *st = NULL, *r = NULL;
    int rc = patient_studies(c, pkey, &st);
    if (rc)
        return rc;
    size_t argc = 3 + 3 + 6 + st->elements;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *len = calloc(argc, sizeof(*len));
    if (!argv || !len) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(k1, sizeof(k1), "hr:person:{%s}", person);
    snprintf(k2, sizeof(k2), "hr:person:{%s}:pts", person);
    snprintf(k3, sizeof(k3), "hr:person:{%s}:st", person);
    snprintf(now, sizeof(now), "%lld", now_ms);
    snprintf(maxpts, sizeof(maxpts), "%d", RPT_PERSON_PTS_MAX);
    size_t n = 0;
    argv[n++] = k1;
    argv[n++] = k2;
    argv[n++] = k3;
    argv[n++] = person;
    argv[n++] = rpt_id_type_name(t);
    argv[n++] = hmac;
    argv[n++] = pkey;
    argv[n++] = now;
    argv[n++] = maxpts;
    /* ZRANGE WITHSCORES answers member, score: the script takes score, member */
    for (size_t i = 0; i + 1 < st->elements; i += 2) {
        argv[n++] = st->element[i + 1]->str;
        argv[n++] = st->element[i]->str;
    }
    for (size_t i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    rc = rpt__eval(c, k_person_script, 3, (int)n - 3, argv, len, &r);
    if (rc)
        goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        rc = HR_EREDIS;
        goto out;
    }
    rc = r->element[0]->integer == 1 ? -EEXIST : r->element[0]->integer == 2 ? HR_ETOOBIG : 0;
    if (!rc) {
        out->created = r->element[1]->integer == 1;
        out->linked = r->element[2]->integer == 1;
        out->studies_added = r->element[3]->integer;
    }
out:
    freeReplyObject(r);
    freeReplyObject(st);
    free(argv);
    free(len);
    return rc;
}

int rpt_person_link(redisContext *c, const char *pkey, enum rpt_id_type t, const char *hmac,
                    long long now_ms, rpt_link_result *out)
{
    char idkey[96], ptkey[STO_PKEY_MAX + 16];
    char by_id[RPT_PERSON_ID_LEN + 1], by_pt[RPT_PERSON_ID_LEN + 1];
    char person[RPT_PERSON_ID_LEN + 1], owner[RPT_PERSON_ID_LEN + 1];
    redisReply *a = NULL, *b = NULL;
    int rc, claimed_id = 0;
    memset(out, 0, sizeof(*out));
    if ((unsigned)t >= RPT_ID_TYPES || !hmac_valid(hmac) || !pkey || !*pkey ||
        strlen(pkey) >= STO_PKEY_MAX)
        return -EINVAL;
    snprintf(idkey, sizeof(idkey), "hr:pix:%s:%s", rpt_id_type_name(t), hmac);
    snprintf(ptkey, sizeof(ptkey), "hr:pix:pt:%s", pkey);
    redisAppendCommand(c, "GET %s", idkey);
    redisAppendCommand(c, "GET %s", ptkey);
    if (redisGetReply(c, (void **)&a) != REDIS_OK || redisGetReply(c, (void **)&b) != REDIS_OK) {
        freeReplyObject(a);
        return HR_EREDIS;
    }
    rc = get_person(a, by_id);
    if (!rc)
        rc = get_person(b, by_pt);
    freeReplyObject(a);
    freeReplyObject(b);
    if (rc)
        return rc;
    if (by_id[0] && by_pt[0] && strcmp(by_id, by_pt) != 0)
        return -EEXIST; /* the patient belongs to another person */
    if (by_id[0])
        snprintf(person, sizeof(person), "%s", by_id);
    else if (by_pt[0])
        snprintf(person, sizeof(person), "%s", by_pt);
    else
        rpt_person_id_of(hmac, person);
    /* lookup keys first (other slots), idempotently */
    if (!by_id[0]) {
        rc = claim(c, idkey, person, owner);
        if (rc)
            return rc;
        if (strcmp(owner, person) != 0)
            return -EEXIST; /* a concurrent link gave the number to another person */
        claimed_id = 1;
    }
    if (!by_pt[0]) {
        rc = claim(c, ptkey, person, owner);
        if (!rc && strcmp(owner, person) != 0)
            rc = -EEXIST;
        if (rc)
            goto out;
    }
    rc = person_script(c, person, t, hmac, pkey, now_ms, out);
    if (!rc)
        snprintf(out->person, sizeof(out->person), "%s", person);
    if (rc == -EEXIST || rc == HR_ETOOBIG) {
        /* the person refused: give back the patient key this link took */
        if (!by_pt[0])
            unclaim(c, ptkey, person);
    }
out:
    if (rc && claimed_id && rc != HR_EREDIS)
        unclaim(c, idkey, person);
    return rc;
}

/* The number of the object at source s, or NULL. */
static const char *number_at(const pix_source *s, const dcm_attrs *a)
{
    if (s->where == PIX_WHERE_PATIENT_ID)
        return a->patient_id[0] ? a->patient_id : NULL;
    if (s->where != PIX_WHERE_OTHER_PIDS)
        return NULL;
    for (int i = 0; i < DCM_OTHER_PIDS_MAX; i++)
        if (a->other_pids[i].id[0] && strcmp(a->other_pids[i].issuer, s->issuer) == 0)
            return a->other_pids[i].id;
    return NULL;
}

static double date_score(const char *yyyymmdd)
{
    char *end;
    long v = strtol(yyyymmdd ? yyyymmdd : "", &end, 10);
    return yyyymmdd && *yyyymmdd && !*end && v > 0 && v < 100000000 ? (double)v : 0;
}

int rpt_person_arrive(redisContext *c, const hr_config *cfg, const dcm_attrs *a,
                      const char *source_hospital, const char *pkey, long long now_ms,
                      rpt_arrival_result *out)
{
    const pix_config *p = cfg->persons;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (!pkey || !*pkey || !p)
        return 0;
    for (size_t i = 0; p->have_key && i < p->n_sources; i++) {
        const pix_source *s = &p->sources[i];
        char norm[RPT_ID_NUMBER_MAX], hmac[65];
        if (strcmp(s->hospital, source_hospital) != 0)
            continue;
        const char *num = number_at(s, a);
        if (!num)
            continue;
        out->number_found = 1;
        if (rpt_id_normalize(s->id_type, num, norm, sizeof(norm))) {
            out->invalid = 1;
            continue;
        }
        rc = rpt_id_hmac(p, s->id_type, norm, hmac);
        OPENSSL_cleanse(norm, sizeof(norm));
        if (rc)
            return rc;
        rpt_link_result lr;
        rc = rpt_person_link(c, pkey, s->id_type, hmac, now_ms, &lr);
        if (rc)
            return rc;
        out->linked |= lr.linked;
        snprintf(out->person, sizeof(out->person), "%s", lr.person);
    }
    if (!out->person[0]) {
        rc = rpt_person_by_patient(c, pkey, out->person);
        if (rc == HR_ENOTFOUND)
            return 0;
        if (rc)
            return rc;
    }
    redisReply *r = redisCommand(c, "ZADD hr:person:{%s}:st %.0f %s", out->person,
                                 date_score(a->study_date), a->study_instance_uid);
    rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

int rpt_person_studies(redisContext *c, const char *person, int max, char (*studies)[HR_UID_MAX],
                       int *n)
{
    *n = 0;
    if (!rpt_person_id_valid(person) || max <= 0)
        return max <= 0 ? 0 : -EINVAL;
    redisReply *r = redisCommand(c, "ZREVRANGE hr:person:{%s}:st 0 %d", person, max - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    for (size_t i = 0; i < r->elements && *n < max; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i]->len < HR_UID_MAX)
            snprintf(studies[(*n)++], HR_UID_MAX, "%s", r->element[i]->str);
    freeReplyObject(r);
    return 0;
}

/* Value of field in an HGETALL reply, "" when absent. */
static const char *hval(const redisReply *h, const char *field)
{
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return "";
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return "";
}

static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

int rpt_person_json(redisContext *c, const char *person, int max_studies, json_t **out)
{
    redisReply *h = NULL, *pts = NULL, *st = NULL;
    json_t *doc = NULL, *patients = NULL, *studies = NULL;
    int rc = 0;
    *out = NULL;
    if (!rpt_person_id_valid(person))
        return -EINVAL;
    if (max_studies < 1)
        max_studies = 1;
    redisAppendCommand(c, "HGETALL hr:person:{%s}", person);
    redisAppendCommand(c, "SRANDMEMBER hr:person:{%s}:pts %d", person, RPT_PERSON_PTS_MAX);
    redisAppendCommand(c, "ZREVRANGE hr:person:{%s}:st 0 %d WITHSCORES", person, max_studies - 1);
    if (redisGetReply(c, (void **)&h) != REDIS_OK || redisGetReply(c, (void **)&pts) != REDIS_OK ||
        redisGetReply(c, (void **)&st) != REDIS_OK || h->type != REDIS_REPLY_ARRAY ||
        pts->type != REDIS_REPLY_ARRAY || st->type != REDIS_REPLY_ARRAY) {
        rc = HR_EREDIS;
        goto out;
    }
    if (h->elements == 0) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    doc = json_object();
    patients = json_array();
    studies = json_array();
    if (!doc || !patients || !studies) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_set_new(doc, "person", jstr(person));
    json_object_set_new(doc, "created_ms", json_integer(atoll(hval(h, "created_ms"))));
    json_object_set_new(doc, "updated_ms", json_integer(atoll(hval(h, "updated_ms"))));
    json_object_set_new(doc, "identifiers",
                        json_pack("{s:b, s:b}", "national_id", *hval(h, "national_id") != '\0',
                                  "health_card", *hval(h, "health_card") != '\0'));
    for (size_t i = 0; i < pts->elements; i++)
        redisAppendCommand(c, "HGETALL hr:pt:%s", pts->element[i]->str);
    for (size_t i = 0; i < pts->elements; i++) {
        redisReply *p = NULL;
        if (redisGetReply(c, (void **)&p) != REDIS_OK) {
            rc = HR_EREDIS;
            goto out;
        }
        json_array_append_new(
            patients, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "key", jstr(pts->element[i]->str),
                                "id", jstr(hval(p, "id")), "issuer", jstr(hval(p, "issuer")),
                                "name", jstr(hval(p, "name")), "birth_date",
                                jstr(hval(p, "birth_date")), "sex", jstr(hval(p, "sex"))));
        freeReplyObject(p);
    }
    for (size_t i = 0; i + 1 < st->elements; i += 2)
        redisAppendCommand(c, "HMGET hr:{%s}:st date hospital accession description",
                           st->element[i]->str);
    for (size_t i = 0; i + 1 < st->elements; i += 2) {
        redisReply *s = NULL;
        if (redisGetReply(c, (void **)&s) != REDIS_OK || s->type != REDIS_REPLY_ARRAY ||
            s->elements != 4) {
            freeReplyObject(s);
            rc = HR_EREDIS;
            goto out;
        }
        const char *v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s->element[k]->type == REDIS_REPLY_STRING ? s->element[k]->str : "";
        json_array_append_new(studies, json_pack("{s:o, s:o, s:o, s:o, s:o}", "study",
                                                 jstr(st->element[i]->str), "date", jstr(v[0]),
                                                 "hospital", jstr(v[1]), "accession", jstr(v[2]),
                                                 "description", jstr(v[3])));
        freeReplyObject(s);
    }
    json_object_set(doc, "patients", patients);
    json_object_set(doc, "studies", studies);
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    json_decref(patients);
    json_decref(studies);
    freeReplyObject(h);
    freeReplyObject(pts);
    freeReplyObject(st);
    return rc;
}
