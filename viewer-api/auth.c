#include "auth.h"
#include "../common/hr_assert.h"
#include "../common/hr_bytes.h"
#include "../common/hr_err.h"
#include "../common/hr_log.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SALT_LEN   16
#define HASH_LEN   32
#define TOKEN_RAW  32
#define KDF_NAME   "pbkdf2-sha256"
#define ITER_MIN   VA_KDF_ITER_MIN /* stored parameters outside these bounds are corrupt */
#define ITER_MAX   10000000
#define KEY_MAX    (sizeof("hr:user::tokens") + VA_USER_MAX + 8)
#define TOKKEY_MAX (sizeof("hr:tok:") + 64)
#define USERS_MAX  1000000 /* va_user_list refuses a larger hr:users */
#define ARGS_MAX   32
#define STR_(x)    #x
#define STR(x)     STR_(x)

/* Salt of the dummy hash unknown names are checked against (no user has it:
 * real salts are random). */
static const unsigned char k_dummy_salt[SALT_LEN] = "huren-no-user!!";

/* KEYS: fail, lock. ARGV: window, failures, lock seconds. Returns the count. */
static const char k_fail_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "if n >= tonumber(ARGV[2]) then "
    "redis.call('SET', KEYS[2], '1', 'EX', ARGV[3]) redis.call('DEL', KEYS[1]) end "
    "return n";

/* KEYS: user, hr:users, fail, lock. ARGV: field value pairs, name first.
 * 1 when created, 0 when the user exists. */
static const char k_add_script[] = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                                   "redis.call('HSET', KEYS[1], unpack(ARGV)) "
                                   "redis.call('SADD', KEYS[2], ARGV[2]) "
                                   "redis.call('DEL', KEYS[3], KEYS[4]) "
                                   "return 1";

/* KEYS: user, fail, lock. ARGV: kdf iter salt hash. 1, or 0 when absent. */
static const char k_passwd_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'kdf', ARGV[1], 'iter', ARGV[2], 'salt', ARGV[3], "
    "'hash', ARGV[4]) "
    "redis.call('HINCRBY', KEYS[1], 'gen', 1) "
    "redis.call('DEL', KEYS[2], KEYS[3]) "
    "return 1";

/* KEYS: user. ARGV: "1" disable (new generation: tokens die) or "0". */
static const char k_disable_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('HSET', KEYS[1], 'disabled', ARGV[1]) "
    "if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'gen', 1) end "
    "return 1";

/* KEYS: user. A new generation (every token dies); 1, or 0 when absent. */
static const char k_newgen_script[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
                                      "redis.call('HINCRBY', KEYS[1], 'gen', 1) "
                                      "return 1";

/* KEYS: user. ARGV: old hash, kdf iter salt hash. Upgrades the hash unless
 * the password changed meanwhile. */
static const char k_rehash_script[] =
    "if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end "
    "redis.call('HSET', KEYS[1], 'kdf', ARGV[2], 'iter', ARGV[3], 'salt', ARGV[4], "
    "'hash', ARGV[5]) "
    "return 1";

/* KEYS: address counter[, user counter]. ARGV: window s, address limit, user
 * limit (0 = none). Fixed windows from the first attempt; an address over its
 * limit is not counted against the name. {0, 0}, or {1 | 2, seconds left}
 * when the address (1) or the name (2) is over its limit. */
static const char k_admit_script[] =
    "local w = tonumber(ARGV[1]) "
    "local function hit(k, lim) "
    "  local n = redis.call('INCR', k) "
    "  local t = redis.call('TTL', k) "
    "  if n == 1 or t < 0 then redis.call('EXPIRE', k, w) t = w end "
    "  if n > lim then if t < 1 then t = 1 end return t end "
    "  return 0 end "
    "for i = 1, #KEYS do "
    "  local lim = tonumber(ARGV[i + 1]) "
    "  if lim > 0 then local t = hit(KEYS[i], lim) if t > 0 then return {i, t} end end "
    "end "
    "return {0, 0}";

typedef struct args {
    const char *v[ARGS_MAX];
    size_t len[ARGS_MAX];
    int n;
} args;

static void arg(args *a, const char *s)
{
    HR_ASSERT(a->n < ARGS_MAX);
    a->v[a->n] = s;
    a->len[a->n] = strlen(s);
    a->n++;
}

static redisReply *run(redisContext *c, args *a)
{
    return redisCommandArgv(c, a->n, a->v, a->len);
}

/* ---- encodings ---- */

/* Exactly 2n lowercase hex digits into out[n]. 0 or -1. */
static int hex_decode(const char *s, unsigned char *out, size_t n)
{
    return strlen(s) == 2 * n ? hr_hex_decode(s, n, out) : -1;
}

/* 1 when s is exactly VA_TOKEN_LEN base64url characters. Bounded read. */
static int token_syntax_ok(const char *s)
{
    if (!s || strnlen(s, VA_TOKEN_LEN + 1) != VA_TOKEN_LEN)
        return 0;
    for (size_t i = 0; i < VA_TOKEN_LEN; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

/* "hr:tok:<sha256 hex of the token text>"; hex (65) gets the digest alone. */
static void token_key(const char *token, char key[TOKKEY_MAX], char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, VA_TOKEN_LEN, md);
    hr_hex_encode(md, sizeof(md), hex);
    snprintf(key, TOKKEY_MAX, "hr:tok:%s", hex);
}

/* 32 random bytes as base64url without padding. 0 or -EIO. */
static int token_new(char token[VA_TOKEN_LEN + 1])
{
    unsigned char raw[TOKEN_RAW], b64[48];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    int n = EVP_EncodeBlock(b64, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    HR_ASSERT(n == VA_TOKEN_LEN + 1 && b64[VA_TOKEN_LEN] == '=');
    for (int i = 0; i < VA_TOKEN_LEN; i++)
        token[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    token[VA_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(b64, sizeof(b64));
    return 0;
}

static void user_key(char *out, const char *name, const char *suffix)
{
    snprintf(out, KEY_MAX, "hr:user:%s%s", name, suffix);
}

/* ---- validation ---- */

static int id_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '-';
}

static int id_valid(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char(s[i]))
            return 0;
    return 1;
}

int va_user_name_valid(const char *name)
{
    return id_valid(name, VA_USER_MAX);
}

static int why_fail(char *why, size_t cap, const char *fmt, const char *what)
{
    if (why && cap)
        snprintf(why, cap, fmt, what ? what : "");
    return -EINVAL;
}

int va_password_validate(const char *password, char *why, size_t cap)
{
    size_t n = password ? strnlen(password, VA_PASSWORD_MAX + 1) : 0;
    if (n < VA_PASSWORD_MIN)
        return why_fail(why, cap, "password: at least " STR(VA_PASSWORD_MIN) " bytes%s", "");
    if (n > VA_PASSWORD_MAX)
        return why_fail(why, cap, "password: at most " STR(VA_PASSWORD_MAX) " bytes%s", "");
    return 0;
}

/* UTF-8 (as JSON output needs it) without control characters. */
static int display_name_valid(const char *s)
{
    size_t n = strnlen(s, HR_NAME_MAX);
    if (n >= HR_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    json_t *j = json_stringn(s, n);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

int va_center_check(const hr_config *cfg, const char *hospital, const char *center, char *why,
                    size_t cap)
{
    const hr_center *ce = hr_config_center(cfg, center);
    if (!ce)
        return why_fail(why, cap, "center: \"%s\" is not a configured center",
                        strnlen(center, 256) < 256 ? center : "");
    if (strcmp(ce->hospital, hospital) != 0) {
        if (why && cap)
            snprintf(why, cap, "center: \"%s\" belongs to hospital %s, not %s", center,
                     ce->hospital, hospital);
        return -EINVAL;
    }
    return 0;
}

int va_user_validate(const hr_config *cfg, const va_user_spec *s, char *why, size_t cap)
{
    if (!va_user_name_valid(s->name))
        return why_fail(why, cap, "name: \"%s\" must be 1..64 of a-z, 0-9, '.', '_' and '-'",
                        s->name && strnlen(s->name, 256) < 256 ? s->name : "");
    int role = s->role ? sto_role_parse(s->role) : -1;
    if (role < 0 || role == STO_ROLE_DICOM_PEER)
        return why_fail(why, cap,
                        "role: \"%s\" is not one of technician, reader, auditor, external, admin",
                        s->role && strnlen(s->role, 64) < 64 ? s->role : "");
    if (!s->hospital || strnlen(s->hospital, HR_ID_MAX) >= HR_ID_MAX ||
        !hr_config_hospital(cfg, s->hospital))
        return why_fail(why, cap, "hospital: \"%s\" is not a configured hospital id",
                        s->hospital && strnlen(s->hospital, HR_ID_MAX) < HR_ID_MAX ? s->hospital
                                                                                   : "");
    int has_center = s->center && s->center[0];
    if (has_center && !id_valid(s->center, HR_ID_MAX - 1))
        return why_fail(why, cap, "center: \"%s\" must be 1..63 of a-z, 0-9, '.', '_' and '-'",
                        strnlen(s->center, 256) < 256 ? s->center : "");
    if (!has_center && (role == STO_ROLE_READER || role == STO_ROLE_AUDITOR))
        return why_fail(why, cap, "center: required for the role %s", s->role);
    if (has_center && va_center_check(cfg, s->hospital, s->center, why, cap))
        return -EINVAL;
    if (s->display_name && !display_name_valid(s->display_name))
        return why_fail(why, cap,
                        "display name: must be UTF-8 without control characters, "
                        "under 256 bytes%s",
                        "");
    if (s->password)
        return va_password_validate(s->password, why, cap);
    return 0;
}

/* ---- password hashes ---- */

typedef struct pw_hash {
    char kdf[sizeof(KDF_NAME)];
    char iter[16];
    char salt[2 * SALT_LEN + 1];
    char hash[2 * HASH_LEN + 1];
} pw_hash;

/* A fresh salt and hash with the current parameters. 0 or -EIO. */
static int pw_hash_new(const char *password, int iter, pw_hash *out)
{
    unsigned char salt[SALT_LEN], dk[HASH_LEN];
    if (iter < VA_KDF_ITER_MIN || iter > ITER_MAX)
        return -EINVAL;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -EIO;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), iter, EVP_sha256(),
                          sizeof(dk), dk) != 1)
        return -EIO;
    snprintf(out->kdf, sizeof(out->kdf), "%s", KDF_NAME);
    snprintf(out->iter, sizeof(out->iter), "%d", iter);
    hr_hex_encode(salt, sizeof(salt), out->salt);
    hr_hex_encode(dk, sizeof(dk), out->hash);
    OPENSSL_cleanse(dk, sizeof(dk));
    return 0;
}

/* ---- user records ---- */

enum {
    F_NAME,
    F_ROLE,
    F_HOSPITAL,
    F_CENTER,
    F_DISPLAY,
    F_KDF,
    F_ITER,
    F_SALT,
    F_HASH,
    F_DISABLED,
    F_GEN,
    F_CREATED,
    F_COUNT
};
static const char *const k_fields[F_COUNT] = {
    "name", "role", "hospital", "center",   "display_name", "kdf",
    "iter", "salt", "hash",     "disabled", "gen",          "created",
};

typedef struct user_rec {
    int found;   /* the hash exists */
    int corrupt; /* a field is too long or malformed */
    char name[VA_USER_MAX + 1];
    char role[32];
    char hospital[HR_ID_MAX];
    char center[HR_ID_MAX];
    char display_name[HR_NAME_MAX];
    pw_hash pw;
    char disabled[4];
    char gen[24];
    char created[24];
} user_rec;

/* Copies a string or nil ("") reply element; -1 when it does not fit. */
static int copy_elem(const redisReply *e, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (e->type == REDIS_REPLY_NIL)
        return 0;
    if (e->type != REDIS_REPLY_STRING || e->len >= cap)
        return -1;
    memcpy(dst, e->str, e->len);
    dst[e->len] = '\0';
    return 0;
}

/* HMGET of every field. 0 (found or not) or HR_EREDIS. */
static int user_read(redisContext *c, const char *name, user_rec *u)
{
    char key[KEY_MAX];
    args a = {.n = 0};
    memset(u, 0, sizeof(*u));
    user_key(key, name, "");
    arg(&a, "HMGET");
    arg(&a, key);
    for (int i = 0; i < F_COUNT; i++)
        arg(&a, k_fields[i]);
    redisReply *r = run(c, &a);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != F_COUNT) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    struct {
        char *dst;
        size_t cap;
    } dst[F_COUNT] = {
        {u->name, sizeof(u->name)},
        {u->role, sizeof(u->role)},
        {u->hospital, sizeof(u->hospital)},
        {u->center, sizeof(u->center)},
        {u->display_name, sizeof(u->display_name)},
        {u->pw.kdf, sizeof(u->pw.kdf)},
        {u->pw.iter, sizeof(u->pw.iter)},
        {u->pw.salt, sizeof(u->pw.salt)},
        {u->pw.hash, sizeof(u->pw.hash)},
        {u->disabled, sizeof(u->disabled)},
        {u->gen, sizeof(u->gen)},
        {u->created, sizeof(u->created)},
    };
    for (int i = 0; i < F_COUNT; i++)
        if (copy_elem(r->element[i], dst[i].dst, dst[i].cap))
            u->corrupt = 1;
    u->found = r->element[F_NAME]->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    if (u->found && strcmp(u->name, name) != 0)
        u->corrupt = 1;
    return 0;
}

/* Checks password against u's hash, or against a dummy hash costing
 * dummy_iter (the configured count, as a known user's hash) when u is absent
 * or unusable. 0 with *match set, or -EIO. */
static int pw_verify(const user_rec *u, const char *password, long dummy_iter, int *match,
                     long *iter_out)
{
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    char *end = NULL;
    long iter = strtol(u->pw.iter, &end, 10);
    int usable = u->found && !u->corrupt && strcmp(u->pw.kdf, KDF_NAME) == 0 && end &&
                 end != u->pw.iter && *end == '\0' && iter >= ITER_MIN && iter <= ITER_MAX &&
                 hex_decode(u->pw.salt, salt, SALT_LEN) == 0 &&
                 hex_decode(u->pw.hash, want, HASH_LEN) == 0;
    if (u->found && !usable)
        hr_warn("auth", "user %s: unusable password record", u->name);
    if (!usable) {
        memcpy(salt, k_dummy_salt, SALT_LEN);
        memset(want, 0, sizeof(want));
        iter = dummy_iter;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, SALT_LEN, (int)iter, EVP_sha256(),
                          HASH_LEN, got) != 1)
        return -EIO;
    *match = (CRYPTO_memcmp(got, want, HASH_LEN) == 0) & usable;
    *iter_out = iter;
    OPENSSL_cleanse(got, sizeof(got));
    return 0;
}

/* Counts a failure for name (known or not). -EACCES, -EAGAIN once the count
 * reaches VA_LOCK_FAILURES, or HR_EREDIS. */
static int login_failed(redisContext *c, const char *name)
{
    char fail[KEY_MAX], lock[KEY_MAX];
    user_key(fail, name, ":fail");
    user_key(lock, name, ":lock");
    redisReply *r = redisCommand(c, "EVAL %s 2 %s %s %d %d %d", k_fail_script, fail, lock,
                                 VA_LOCK_WINDOW_S, VA_LOCK_FAILURES, VA_LOCK_S);
    int rc = HR_EREDIS;
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer >= VA_LOCK_FAILURES ? -EAGAIN : -EACCES;
    freeReplyObject(r);
    return rc;
}

/* Integer reply of a command, or -1 (HR_EREDIS through *rc). */
static long long int_cmd(redisContext *c, int *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else
        *rc = HR_EREDIS;
    freeReplyObject(r);
    return v;
}

/* Deletes the token keys listed in reply array r (sha256 hex members). */
static int unlink_tokens(redisContext *c, const redisReply *r, size_t step)
{
    int rc = 0;
    for (size_t i = 0; i < r->elements; i += step) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len != 64)
            continue;
        int_cmd(c, &rc, "UNLINK hr:tok:%b", e->str, (size_t)e->len);
    }
    return rc;
}

/* Revokes every token of name (their keys and the set). 0 or HR_EREDIS. */
static int revoke_all(redisContext *c, const char *name)
{
    char set[KEY_MAX];
    user_key(set, name, ":tokens");
    redisReply *r = redisCommand(c, "ZRANGE %s 0 -1", set);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int rc = unlink_tokens(c, r, 1);
    freeReplyObject(r);
    int_cmd(c, &rc, "DEL %s", set);
    return rc;
}

/* Reads the replies of a pipelined MULTI, n_queued commands and EXEC. 0 when
 * every command was queued and EXEC ran them without error, else HR_EREDIS. */
static int exec_replies(redisContext *c, int n_queued)
{
    int rc = 0;
    for (int i = 0; i < n_queued + 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            return HR_EREDIS; /* the context is unusable now */
        int last = i == n_queued + 1;
        if (r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        if (last && r->type != REDIS_REPLY_ARRAY)
            rc = HR_EREDIS;
        for (size_t k = 0; last && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++)
            if (r->element[k]->type == REDIS_REPLY_ERROR)
                rc = HR_EREDIS;
        freeReplyObject(r);
    }
    return rc;
}

/* Stores a token for u (role already checked) and bounds the user's live
 * tokens. 0 or HR_EREDIS. */
static int token_store(redisContext *c, const user_rec *u, const char *key, const char *hex,
                       int ttl_s, long long now, long long expires)
{
    char set[KEY_MAX], exp_s[24], ttl[16], now_s[24];
    user_key(set, u->name, ":tokens");
    snprintf(exp_s, sizeof(exp_s), "%lld", expires);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    snprintf(now_s, sizeof(now_s), "%lld", now);
    args h = {.n = 0};
    arg(&h, "HSET");
    arg(&h, key);
    arg(&h, "user");
    arg(&h, u->name);
    arg(&h, "role");
    arg(&h, u->role);
    arg(&h, "hospital");
    arg(&h, u->hospital);
    arg(&h, "center");
    arg(&h, u->center);
    arg(&h, "expires");
    arg(&h, exp_s);
    arg(&h, "gen");
    arg(&h, u->gen[0] ? u->gen : "0");
    int bad = redisAppendCommand(c, "MULTI") | redisAppendCommandArgv(c, h.n, h.v, h.len) |
              redisAppendCommand(c, "EXPIRE %s %s", key, ttl) |
              redisAppendCommand(c, "ZADD %s %s %s", set, exp_s, hex) |
              redisAppendCommand(c, "ZREMRANGEBYSCORE %s -inf %s", set, now_s) |
              redisAppendCommand(c, "EXEC");
    if (bad != REDIS_OK)
        return HR_EREDIS; /* out of memory: the context's buffer is unusable */
    int rc = exec_replies(c, 4);
    if (rc)
        return rc;
    long long n = int_cmd(c, &rc, "ZCARD %s", set);
    if (rc || n <= VA_TOKENS_PER_USER)
        return rc;
    redisReply *r = redisCommand(c, "ZPOPMIN %s %lld", set, n - VA_TOKENS_PER_USER);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    rc = unlink_tokens(c, r, 2); /* member, score, member, score ... */
    freeReplyObject(r);
    return rc;
}

static void principal_fill(va_principal *out, const char *user, int role, const char *hospital,
                           const char *center, const char *display_name, long long expires)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->user, sizeof(out->user), "%s", user);
    out->role = (enum sto_role)role;
    snprintf(out->hospital, sizeof(out->hospital), "%s", hospital);
    snprintf(out->center, sizeof(out->center), "%s", center);
    snprintf(out->display_name, sizeof(out->display_name), "%s", display_name);
    out->expires = expires;
}

/* A user role (not a DICOM peer) or -1. */
static int user_role(const char *s)
{
    int role = sto_role_parse(s);
    return role == STO_ROLE_DICOM_PEER ? -1 : role;
}

int va_auth_login(redisContext *c, const char *user, const char *password, int ttl_s, int kdf_iter,
                  va_principal *out, char token[VA_TOKEN_LEN + 1])
{
    user_rec u;
    int rc, match = 0;
    long iter = 0;
    char key[TOKKEY_MAX], hex[65], lock[KEY_MAX];
    token[0] = '\0';
    if (!c)
        return HR_EREDIS;
    if (ttl_s < 1 || ttl_s > VA_TTL_MAX || kdf_iter < VA_KDF_ITER_MIN || kdf_iter > ITER_MAX)
        return -EINVAL;
    /* syntax is public: refusing it early tells nothing about accounts */
    if (!va_user_name_valid(user) || !password ||
        strnlen(password, VA_PASSWORD_MAX + 1) > VA_PASSWORD_MAX)
        return -EACCES;
    user_key(lock, user, ":lock");
    rc = 0;
    long long locked = int_cmd(c, &rc, "EXISTS %s", lock);
    if (rc)
        return rc;
    if (locked)
        return -EAGAIN;
    rc = user_read(c, user, &u);
    if (rc)
        return rc;
    rc = pw_verify(&u, password, kdf_iter, &match, &iter);
    if (rc)
        return rc;
    if (!match)
        return login_failed(c, user);
    int role = user_role(u.role);
    if (strcmp(u.disabled, "1") == 0)
        return -EACCES;
    if (role < 0) {
        hr_warn("auth", "user %s: unknown role \"%s\"", u.name, u.role);
        return -EACCES;
    }
    char fail[KEY_MAX];
    user_key(fail, user, ":fail");
    int_cmd(c, &rc, "DEL %s", fail);
    if (rc)
        return rc;
    if (iter < kdf_iter) {
        pw_hash nh;
        char ukey[KEY_MAX];
        user_key(ukey, user, "");
        rc = pw_hash_new(password, kdf_iter, &nh);
        if (rc)
            return rc;
        redisReply *r = redisCommand(c, "EVAL %s 1 %s %s %s %s %s %s", k_rehash_script, ukey,
                                     u.pw.hash, nh.kdf, nh.iter, nh.salt, nh.hash);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            hr_info("auth", "user %s: password hash upgraded to %s iterations", user, nh.iter);
        freeReplyObject(r);
    }
    rc = token_new(token);
    if (rc)
        return rc;
    token_key(token, key, hex);
    long long now = (long long)time(NULL), expires = now + ttl_s;
    rc = token_store(c, &u, key, hex, ttl_s, now, expires);
    if (rc) {
        OPENSSL_cleanse(token, VA_TOKEN_LEN);
        token[0] = '\0';
        return rc;
    }
    principal_fill(out, u.name, role, u.hospital, u.center, u.display_name, expires);
    return 0;
}

int va_login_admit(redisContext *c, const va_login_limits *lim, const char *address,
                   const char *user, int *retry_after_s, const char **which)
{
    char akey[sizeof("hr:rl:login:a:") + VA_ADDR_MAX], ukey[sizeof("hr:rl:login:u:") + VA_USER_MAX];
    char win[16], al[16], ul[16];
    *retry_after_s = 0;
    *which = "";
    if (!c)
        return HR_EREDIS;
    if (lim->per_address <= 0 && lim->per_user <= 0)
        return 0;
    snprintf(akey, sizeof(akey), "hr:rl:login:a:%.*s", VA_ADDR_MAX - 1, address ? address : "");
    int with_user = va_user_name_valid(user);
    if (with_user)
        snprintf(ukey, sizeof(ukey), "hr:rl:login:u:%s", user);
    snprintf(win, sizeof(win), "%d", lim->window_s > 0 ? lim->window_s : 60);
    snprintf(al, sizeof(al), "%d", lim->per_address > 0 ? lim->per_address : 0);
    snprintf(ul, sizeof(ul), "%d", lim->per_user > 0 ? lim->per_user : 0);
    args a = {.n = 0};
    arg(&a, "EVAL");
    arg(&a, k_admit_script);
    arg(&a, with_user ? "2" : "1");
    arg(&a, akey);
    if (with_user)
        arg(&a, ukey);
    arg(&a, win);
    arg(&a, al);
    arg(&a, ul);
    redisReply *r = run(c, &a);
    int rc = HR_EREDIS;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        long long who = r->element[0]->integer, t = r->element[1]->integer;
        rc = 0;
        if (who == 1 || who == 2) {
            rc = -EBUSY;
            *which = who == 1 ? "address" : "user";
            *retry_after_s = t < 1 ? 1 : t > 86400 ? 86400 : (int)t;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Reads a reply element as a long long; -1 when absent or malformed. */
static long long ll_field(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return s[0] && *end == '\0' ? v : -1;
}

int va_auth_check(redisContext *c, const char *token, va_principal *out)
{
    char key[TOKKEY_MAX], hex[65];
    if (!token_syntax_ok(token))
        return -EACCES;
    if (!c)
        return HR_EREDIS;
    token_key(token, key, hex);
    redisReply *r = redisCommand(c, "HMGET %s user role hospital center expires gen", key);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    char user[VA_USER_MAX + 1], role_s[32], hospital[HR_ID_MAX], center[HR_ID_MAX], exp_s[24],
        gen[24];
    int bad = copy_elem(r->element[0], user, sizeof(user)) |
              copy_elem(r->element[1], role_s, sizeof(role_s)) |
              copy_elem(r->element[2], hospital, sizeof(hospital)) |
              copy_elem(r->element[3], center, sizeof(center)) |
              copy_elem(r->element[4], exp_s, sizeof(exp_s)) |
              copy_elem(r->element[5], gen, sizeof(gen));
    freeReplyObject(r);
    int role = user_role(role_s);
    long long expires = ll_field(exp_s);
    if (bad || !va_user_name_valid(user) || role < 0 || expires <= (long long)time(NULL))
        return -EACCES;
    /* the user must still exist, be enabled and be of the same generation
     * (a password change or a disable since the login revokes the token) */
    user_rec u;
    int rc = user_read(c, user, &u);
    if (rc)
        return rc;
    if (!u.found || u.corrupt || strcmp(u.disabled, "1") == 0 ||
        strcmp(u.gen[0] ? u.gen : "0", gen) != 0)
        return -EACCES;
    principal_fill(out, user, role, hospital, center, u.display_name, expires);
    return 0;
}

int va_auth_logout(redisContext *c, const char *token)
{
    char key[TOKKEY_MAX], hex[65], user[VA_USER_MAX + 1], set[KEY_MAX];
    if (!token_syntax_ok(token))
        return -EACCES;
    if (!c)
        return HR_EREDIS;
    token_key(token, key, hex);
    redisReply *r = redisCommand(c, "HGET %s user", key);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int bad = copy_elem(r, user, sizeof(user)) || !va_user_name_valid(user);
    freeReplyObject(r);
    int rc = 0;
    long long deleted = int_cmd(c, &rc, "UNLINK %s", key);
    if (rc)
        return rc;
    if (!bad) {
        user_key(set, user, ":tokens");
        int_cmd(c, &rc, "ZREM %s %s", set, hex);
    }
    return rc ? rc : deleted == 1 && !bad ? 0 : -EACCES;
}

/* ---- administration ---- */

int va_user_add(redisContext *c, const hr_config *cfg, const va_user_spec *s)
{
    pw_hash h;
    char ukey[KEY_MAX], fail[KEY_MAX], lock[KEY_MAX], created[24];
    if (!s->password)
        return -EINVAL;
    int rc = va_user_validate(cfg, s, NULL, 0);
    if (rc)
        return rc;
    rc = pw_hash_new(s->password, cfg->auth.kdf_iterations, &h);
    if (rc)
        return rc;
    user_key(ukey, s->name, "");
    user_key(fail, s->name, ":fail");
    user_key(lock, s->name, ":lock");
    snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
    args a = {.n = 0};
    arg(&a, "EVAL");
    arg(&a, k_add_script);
    arg(&a, "4");
    arg(&a, ukey);
    arg(&a, "hr:users");
    arg(&a, fail);
    arg(&a, lock);
    const char *fields[][2] = {
        {"name", s->name},
        {"display_name", s->display_name ? s->display_name : ""},
        {"role", s->role},
        {"hospital", s->hospital},
        {"center", s->center ? s->center : ""},
        {"kdf", h.kdf},
        {"iter", h.iter},
        {"salt", h.salt},
        {"hash", h.hash},
        {"created", created},
        {"disabled", "0"},
        {"gen", "0"},
    };
    for (size_t i = 0; i < HR_ARRAY_LEN(fields); i++) {
        arg(&a, fields[i][0]);
        arg(&a, fields[i][1]);
    }
    redisReply *r = run(c, &a);
    rc = HR_EREDIS;
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == 1 ? 0 : -EEXIST;
    freeReplyObject(r);
    return rc;
}

/* Runs a script taking the user key first; 0, HR_ENOTFOUND (script said 0)
 * or HR_EREDIS. */
static int user_script(redisContext *c, args *a)
{
    redisReply *r = run(c, a);
    int rc = HR_EREDIS;
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = r->integer == 1 ? 0 : HR_ENOTFOUND;
    freeReplyObject(r);
    return rc;
}

int va_user_passwd(redisContext *c, const char *name, const char *password, int kdf_iter)
{
    pw_hash h;
    char ukey[KEY_MAX], fail[KEY_MAX], lock[KEY_MAX];
    if (!va_user_name_valid(name))
        return -EINVAL;
    int rc = va_password_validate(password, NULL, 0);
    if (rc)
        return rc;
    rc = pw_hash_new(password, kdf_iter, &h);
    if (rc)
        return rc;
    user_key(ukey, name, "");
    user_key(fail, name, ":fail");
    user_key(lock, name, ":lock");
    args a = {.n = 0};
    arg(&a, "EVAL");
    arg(&a, k_passwd_script);
    arg(&a, "3");
    arg(&a, ukey);
    arg(&a, fail);
    arg(&a, lock);
    arg(&a, h.kdf);
    arg(&a, h.iter);
    arg(&a, h.salt);
    arg(&a, h.hash);
    rc = user_script(c, &a);
    return rc ? rc : revoke_all(c, name);
}

int va_auth_revoke_all(redisContext *c, const char *name)
{
    char ukey[KEY_MAX];
    if (!va_user_name_valid(name))
        return -EINVAL;
    if (!c)
        return HR_EREDIS;
    user_key(ukey, name, "");
    args a = {.n = 0};
    arg(&a, "EVAL");
    arg(&a, k_newgen_script);
    arg(&a, "1");
    arg(&a, ukey);
    int rc = user_script(c, &a);
    return rc ? rc : revoke_all(c, name);
}

int va_auth_password_change(redisContext *c, const char *name, const char *old_pw,
                            const char *new_pw, int kdf_iter, char *why, size_t cap)
{
    user_rec u;
    char lock[KEY_MAX];
    int match = 0, rc = 0;
    long iter = 0;
    if (why && cap)
        why[0] = '\0';
    if (!c)
        return HR_EREDIS;
    if (!va_user_name_valid(name) || !old_pw || !new_pw ||
        strnlen(old_pw, VA_PASSWORD_MAX + 1) > VA_PASSWORD_MAX)
        return -EACCES;
    if (kdf_iter < VA_KDF_ITER_MIN || kdf_iter > ITER_MAX)
        return -EINVAL;
    /* the new password's rules are public: checked before any KDF run */
    rc = va_password_validate(new_pw, why, cap);
    if (rc)
        return rc;
    user_key(lock, name, ":lock");
    long long locked = int_cmd(c, &rc, "EXISTS %s", lock);
    if (rc)
        return rc;
    if (locked)
        return -EAGAIN;
    rc = user_read(c, name, &u);
    if (rc)
        return rc;
    rc = pw_verify(&u, old_pw, kdf_iter, &match, &iter);
    if (rc)
        return rc;
    if (!match)
        return login_failed(c, name);
    if (strcmp(u.disabled, "1") == 0)
        return -EACCES;
    rc = va_user_passwd(c, name, new_pw, kdf_iter);
    return rc == HR_ENOTFOUND ? -EACCES : rc;
}

static int set_disabled(redisContext *c, const char *name, int disabled)
{
    char ukey[KEY_MAX];
    if (!va_user_name_valid(name))
        return -EINVAL;
    user_key(ukey, name, "");
    args a = {.n = 0};
    arg(&a, "EVAL");
    arg(&a, k_disable_script);
    arg(&a, "1");
    arg(&a, ukey);
    arg(&a, disabled ? "1" : "0");
    int rc = user_script(c, &a);
    return rc || !disabled ? rc : revoke_all(c, name);
}

int va_user_disable(redisContext *c, const char *name)
{
    return set_disabled(c, name, 1);
}

int va_user_enable(redisContext *c, const char *name)
{
    return set_disabled(c, name, 0);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int va_user_list(redisContext *c, int (*cb)(void *arg, const va_user_info *u), void *arg)
{
    typedef char name_t[VA_USER_MAX + 1];
    name_t *names = NULL;
    size_t n = 0;
    int rc = HR_EREDIS;
    redisReply *r = redisCommand(c, "SMEMBERS hr:users");
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements > USERS_MAX)
        goto out;
    names = malloc((r->elements ? r->elements : 1) * sizeof(*names));
    if (!names) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (copy_elem(e, names[n], sizeof(names[n])) == 0 && va_user_name_valid(names[n]))
            n++;
    }
    freeReplyObject(r);
    r = NULL;
    qsort(names, n, sizeof(*names), name_cmp);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        user_rec u;
        rc = user_read(c, names[i], &u);
        if (rc || !u.found)
            continue; /* removed meanwhile */
        long long created = ll_field(u.created);
        va_user_info info = {
            .name = u.name,
            .display_name = u.display_name,
            .role = u.role,
            .hospital = u.hospital,
            .center = u.center,
            .created = created < 0 ? 0 : created,
            .disabled = strcmp(u.disabled, "1") == 0,
        };
        rc = cb(arg, &info);
    }
out:
    freeReplyObject(r);
    free(names);
    return rc;
}
