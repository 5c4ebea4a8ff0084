/* Users and bearer tokens against a real redis-server. Logins run the real
 * KDF (PBKDF2-HMAC-SHA256) at ITER iterations (auth.kdf_iterations lowered,
 * as tests may); default_cost_is_600000 checks the product's default. */
#include "common/hr_err.h"
#include "storage/index.h"
#include "support/support.h"
#include "viewer-api/auth.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PW   "correct horse battery"
#define TTL  3600
#define ITER 1000

static char dir[512];
static ts_redis redis;
static redisContext *rc_;
static hr_config cfg;

static void setup(void)
{
    int err;
    char why[256];
    cr_assert_eq(hr_config_load(NULL, &cfg, why, sizeof(why)), 0, "%s", why);
    cfg.auth.kdf_iterations = ITER;
    cr_assert_eq(ts_tmpdir(dir), 0);
    cr_assert_eq(ts_redis_start(&redis, dir), 0);
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    rc_ = sto_index_connect_sync(&addr, 2000, &err);
    cr_assert_not_null(rc_);
}

static void teardown(void)
{
    redisFree(rc_);
    ts_redis_stop(&redis);
    ts_rmrf(dir);
    hr_config_free(&cfg);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 120);

static int add_user(const char *name, const char *role, const char *hospital, const char *center,
                    const char *pw)
{
    va_user_spec s = {.name = name,
                      .display_name = "张医生 Dr. Zhang",
                      .role = role,
                      .hospital = hospital,
                      .center = center,
                      .password = pw};
    return va_user_add(rc_, &cfg, &s);
}

/* "hr:tok:<sha256 hex of the token text>", computed independently. */
static void token_key(const char *tok, char key[128])
{
    unsigned char md[32];
    SHA256((const unsigned char *)tok, strlen(tok), md);
    int n = snprintf(key, 128, "hr:tok:");
    for (int i = 0; i < 32; i++)
        n += snprintf(key + n, 128 - (size_t)n, "%02x", md[i]);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long rint_(const char *fmt, const char *a, const char *b)
{
    char out[64];
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), fmt, a, b), 0);
    return atoll(out);
}

Test(auth, add_login_check_logout)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("zhang.san", "reader", "county", "imaging", PW), 0);
    cr_assert_eq(add_user("zhang.san", "reader", "county", "imaging", PW), -EEXIST);
    time_t before = time(NULL);
    cr_assert_eq(va_auth_login(rc_, "zhang.san", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(strlen(tok), VA_TOKEN_LEN);
    cr_expect_eq(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 VA_TOKEN_LEN, "base64url: %s", tok);
    cr_expect_str_eq(p.user, "zhang.san");
    cr_expect_eq(p.role, STO_ROLE_READER);
    cr_expect_str_eq(p.hospital, "county");
    cr_expect_str_eq(p.center, "imaging");
    cr_expect_str_eq(p.display_name, "张医生 Dr. Zhang");
    cr_expect(p.expires >= before + TTL && p.expires <= time(NULL) + TTL);

    cr_assert_eq(va_auth_check(rc_, tok, &q), 0);
    cr_expect_str_eq(q.user, "zhang.san");
    cr_expect_eq(q.role, STO_ROLE_READER);
    cr_expect_str_eq(q.hospital, "county");
    cr_expect_str_eq(q.center, "imaging");
    cr_expect_eq(q.expires, p.expires);

    /* a second login is a second, different token; both live */
    char tok2[VA_TOKEN_LEN + 1];
    cr_assert_eq(va_auth_login(rc_, "zhang.san", PW, TTL, ITER, &p, tok2), 0);
    cr_expect_str_neq(tok, tok2);
    cr_expect_eq(rint_("ZCARD %s", "hr:user:zhang.san:tokens", NULL), 2);

    cr_assert_eq(va_auth_logout(rc_, tok), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES);
    cr_expect_eq(va_auth_logout(rc_, tok), -EACCES, "logout twice");
    cr_expect_eq(va_auth_check(rc_, tok2, &q), 0, "the other token still works");
    cr_expect_eq(rint_("ZCARD %s", "hr:user:zhang.san:tokens", NULL), 1);
}

Test(auth, malformed_tokens_refused)
{
    va_principal q;
    cr_expect_eq(va_auth_check(rc_, NULL, &q), -EACCES);
    cr_expect_eq(va_auth_check(rc_, "", &q), -EACCES);
    cr_expect_eq(va_auth_check(rc_, "abc", &q), -EACCES);
    /* right length, wrong alphabet; right alphabet, unknown */
    cr_expect_eq(va_auth_check(rc_, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &q), -EACCES);
    cr_expect_eq(va_auth_check(rc_, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &q), -EACCES);
    /* a huge header value is refused by its length, not read to the end */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    cr_assert_not_null(huge);
    memset(huge, 'A', big);
    huge[big] = '\0';
    cr_expect_eq(va_auth_check(rc_, huge, &q), -EACCES);
    cr_expect_eq(va_auth_logout(rc_, huge), -EACCES);
    free(huge);
    char tok[VA_TOKEN_LEN + 1];
    cr_expect_eq(va_auth_login(rc_, "x", PW, 0, ITER, &q, tok), -EINVAL, "ttl 0");
    cr_expect_eq(va_auth_login(rc_, "x", PW, VA_TTL_MAX + 1, ITER, &q, tok), -EINVAL);
}

Test(auth, wrong_password_and_unknown_user_look_alike)
{
    va_principal p;
    char tok[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("li.si", "technician", "township1", NULL, PW), 0);
    /* a cost high enough to dominate the Redis round trips: the unknown name
     * must be checked against a dummy hash of the configured cost */
    const int slow = 100000;
    cfg.auth.kdf_iterations = slow;
    cr_assert_eq(va_user_passwd(rc_, "li.si", PW, slow), 0);
    double wrong = 1e9, unknown = 1e9;
    for (int i = 0; i < 2; i++) {
        double t0 = now_s();
        cr_expect_eq(va_auth_login(rc_, "li.si", "wrong password!", TTL, slow, &p, tok), -EACCES);
        double t1 = now_s();
        cr_expect_eq(va_auth_login(rc_, "nobody", "wrong password!", TTL, slow, &p, tok), -EACCES);
        double t2 = now_s();
        wrong = t1 - t0 < wrong ? t1 - t0 : wrong;
        unknown = t2 - t1 < unknown ? t2 - t1 : unknown;
        cr_expect_str_eq(tok, "");
    }
    /* both ran the full KDF: same order of time (the machine is shared, so
     * the bound is loose; a skipped KDF would be 1000x faster) */
    cr_expect(unknown > 0.5 * wrong && wrong > 0.5 * unknown, "wrong %.3f s, unknown %.3f s", wrong,
              unknown);
    cr_expect(wrong > 0.01, "the KDF is not cheap (%.3f s)", wrong);
    cr_expect_eq(va_auth_login(rc_, "Li.Si", PW, TTL, ITER, &p, tok), -EACCES,
                 "names are lowercase");
    cr_expect_eq(va_auth_login(rc_, "li.si", PW, TTL, ITER, &p, tok), 0);
}

Test(auth, lockout_after_five_failures)
{
    va_principal p;
    char tok[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("wang.wu", "auditor", "county", "ecg", PW), 0);
    for (int i = 1; i < VA_LOCK_FAILURES; i++)
        cr_expect_eq(va_auth_login(rc_, "wang.wu", "bad password", TTL, ITER, &p, tok), -EACCES,
                     "failure %d", i);
    cr_expect_eq(va_auth_login(rc_, "wang.wu", "bad password", TTL, ITER, &p, tok), -EAGAIN,
                 "the 5th failure locks");
    double t0 = now_s();
    cr_expect_eq(va_auth_login(rc_, "wang.wu", PW, TTL, ITER, &p, tok), -EAGAIN,
                 "locked: even the right password is refused");
    cr_expect(now_s() - t0 < 0.15, "no KDF is spent on a locked name");
    long long ttl = rint_("TTL %s", "hr:user:wang.wu:lock", NULL);
    cr_expect(ttl > VA_LOCK_S - 10 && ttl <= VA_LOCK_S, "lock ttl %lld", ttl);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:wang.wu:fail", NULL), 0);

    /* an administrator's password reset lifts the lock */
    cr_assert_eq(va_user_passwd(rc_, "wang.wu", "a new password", ITER), 0);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:wang.wu:lock", NULL), 0);
    cr_expect_eq(va_auth_login(rc_, "wang.wu", "a new password", TTL, ITER, &p, tok), 0);

    /* failures are counted within a window; success resets the count */
    cr_expect_eq(va_auth_login(rc_, "wang.wu", "bad password", TTL, ITER, &p, tok), -EACCES);
    long long wttl = rint_("TTL %s", "hr:user:wang.wu:fail", NULL);
    cr_expect(wttl > VA_LOCK_WINDOW_S - 10 && wttl <= VA_LOCK_WINDOW_S, "window ttl %lld", wttl);
    cr_expect_eq(rint_("GET %s", "hr:user:wang.wu:fail", NULL), 1);
    cr_expect_eq(va_auth_login(rc_, "wang.wu", "a new password", TTL, ITER, &p, tok), 0);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:wang.wu:fail", NULL), 0);
}

Test(auth, unknown_name_locks_alike)
{
    va_principal p;
    char tok[VA_TOKEN_LEN + 1];
    /* no account enumeration by locking: an unknown name locks the same way */
    for (int i = 1; i < VA_LOCK_FAILURES; i++)
        cr_expect_eq(va_auth_login(rc_, "ghost", "bad password", TTL, ITER, &p, tok), -EACCES);
    cr_expect_eq(va_auth_login(rc_, "ghost", "bad password", TTL, ITER, &p, tok), -EAGAIN);
    cr_expect_eq(va_auth_login(rc_, "ghost", "bad password", TTL, ITER, &p, tok), -EAGAIN);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:ghost:lock", NULL), 1);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:ghost", NULL), 0);
    /* creating the account clears a lock its name collected */
    cr_assert_eq(add_user("ghost", "technician", "township1", NULL, PW), 0);
    cr_expect_eq(va_auth_login(rc_, "ghost", PW, TTL, ITER, &p, tok), 0);
}

Test(auth, disabled_user)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1], tok2[VA_TOKEN_LEN + 1], key[128];
    cr_assert_eq(add_user("zhao.liu", "admin", "county", NULL, PW), 0);
    cr_assert_eq(va_auth_login(rc_, "zhao.liu", PW, TTL, ITER, &p, tok), 0);
    cr_assert_eq(va_auth_login(rc_, "zhao.liu", PW, TTL, ITER, &p, tok2), 0);
    cr_assert_eq(va_auth_check(rc_, tok, &q), 0);
    cr_expect_eq(q.role, STO_ROLE_ADMIN);
    token_key(tok, key);
    cr_expect_eq(rint_("EXISTS %s", key, NULL), 1, "the key is sha256(token)");

    cr_assert_eq(va_user_disable(rc_, "zhao.liu"), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES, "token issued before disable");
    cr_expect_eq(va_auth_check(rc_, tok2, &q), -EACCES);
    cr_expect_eq(rint_("EXISTS %s", key, NULL), 0, "token keys deleted");
    cr_expect_eq(rint_("EXISTS %s", "hr:user:zhao.liu:tokens", NULL), 0);
    cr_expect_eq(va_auth_login(rc_, "zhao.liu", PW, TTL, ITER, &p, tok), -EACCES,
                 "disabled: right password refused like a wrong one");
    cr_expect_eq(va_user_disable(rc_, "nobody"), HR_ENOTFOUND);
    cr_expect_eq(va_user_disable(rc_, "Bad Name"), -EINVAL);
    cr_expect_eq(rint_("EXISTS %s", "hr:user:nobody", NULL), 0, "no hash made for nobody");

    cr_assert_eq(va_user_enable(rc_, "zhao.liu"), 0);
    cr_expect_eq(va_auth_check(rc_, tok2, &q), -EACCES, "old tokens stay revoked");
    cr_assert_eq(va_auth_login(rc_, "zhao.liu", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), 0);

    /* a token stays refused even if its key survived (race with disable) */
    token_key(tok, key);
    char dump[64];
    cr_assert_eq(ts_redis_get(&redis, dump, sizeof(dump), "RENAME %s hr:keep", key), 0);
    cr_assert_eq(va_user_disable(rc_, "zhao.liu"), 0);
    cr_assert_eq(ts_redis_get(&redis, dump, sizeof(dump), "RENAME hr:keep %s", key), 0);
    cr_assert_eq(va_user_enable(rc_, "zhao.liu"), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES, "generation changed");
}

Test(auth, password_change_revokes)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("qian.qi", "external", "township2", NULL, PW), 0);
    cr_assert_eq(va_auth_login(rc_, "qian.qi", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(p.role, STO_ROLE_EXTERNAL);
    cr_expect_eq(va_user_passwd(rc_, "qian.qi", "short", ITER), -EINVAL);
    cr_expect_eq(va_user_passwd(rc_, "nobody", "long enough pw", ITER), HR_ENOTFOUND);
    cr_assert_eq(va_user_passwd(rc_, "qian.qi", "long enough pw", ITER), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES);
    cr_expect_eq(va_auth_login(rc_, "qian.qi", PW, TTL, ITER, &p, tok), -EACCES);
    cr_expect_eq(va_auth_login(rc_, "qian.qi", "long enough pw", TTL, ITER, &p, tok), 0);
}

/* Logout everywhere: every token of the user dies, another user's lives;
 * the per-user index is emptied. */
Test(auth, revoke_all_tokens_of_one_user)
{
    va_principal p, q;
    char a[VA_TOKEN_LEN + 1], b[VA_TOKEN_LEN + 1], other[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("sun.ba", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(add_user("zhou.jiu", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(va_auth_login(rc_, "sun.ba", PW, TTL, ITER, &p, a), 0);
    cr_assert_eq(va_auth_login(rc_, "sun.ba", PW, TTL, ITER, &p, b), 0);
    cr_assert_eq(va_auth_login(rc_, "zhou.jiu", PW, TTL, ITER, &p, other), 0);
    cr_expect_eq(va_auth_revoke_all(rc_, "nobody"), HR_ENOTFOUND);
    cr_expect_eq(va_auth_revoke_all(rc_, "Bad Name"), -EINVAL);
    cr_assert_eq(va_auth_revoke_all(rc_, "sun.ba"), 0);
    cr_expect_eq(va_auth_check(rc_, a, &q), -EACCES);
    cr_expect_eq(va_auth_check(rc_, b, &q), -EACCES);
    cr_expect_eq(rint_("ZCARD %s", "hr:user:sun.ba:tokens", NULL), 0);
    char key[128];
    token_key(a, key);
    cr_expect_eq(rint_("EXISTS %s", key, NULL), 0, "the token's key is deleted");
    cr_expect_eq(va_auth_check(rc_, other, &q), 0, "another user's session lives");
    /* the account itself is fine: a new login works */
    cr_expect_eq(va_auth_login(rc_, "sun.ba", PW, TTL, ITER, &p, a), 0);
    cr_expect_eq(va_auth_check(rc_, a, &q), 0);
}

/* A user's own password change: the old one checked with the KDF, a wrong
 * one counting toward the lockout; the new one under the passwd rules;
 * success revokes every token. */
Test(auth, own_password_change)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1], why[128];
    cr_assert_eq(add_user("wu.shi", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(va_auth_login(rc_, "wu.shi", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(va_auth_password_change(rc_, "wu.shi", PW, "short", ITER, why, sizeof(why)),
                 -EINVAL);
    cr_expect(why[0] != '\0', "a reason for the refused password");
    cr_expect_eq(va_auth_password_change(rc_, "wu.shi", "wrong one", "new password 1", ITER, why,
                                         sizeof(why)),
                 -EACCES);
    cr_expect_eq(rint_("GET %s", "hr:user:wu.shi:fail", NULL), 1, "counted as a failed login");
    cr_expect_eq(va_auth_check(rc_, tok, &q), 0, "a refused change revokes nothing");
    cr_expect_eq(
        va_auth_password_change(rc_, "nobody", PW, "new password 1", ITER, why, sizeof(why)),
        -EACCES);
    cr_assert_eq(
        va_auth_password_change(rc_, "wu.shi", PW, "new password 1", ITER, why, sizeof(why)), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES, "every session revoked");
    cr_expect_eq(rint_("EXISTS %s", "hr:user:wu.shi:fail", NULL), 0, "failures cleared");
    cr_expect_eq(va_auth_login(rc_, "wu.shi", PW, TTL, ITER, &p, tok), -EACCES);
    cr_expect_eq(va_auth_login(rc_, "wu.shi", "new password 1", TTL, ITER, &p, tok), 0);
    /* five wrong old passwords lock the account, login included */
    int rc = 0;
    for (int i = 0; i < VA_LOCK_FAILURES; i++)
        rc = va_auth_password_change(rc_, "wu.shi", "wrong again", "new password 2", ITER, why,
                                     sizeof(why));
    cr_expect_eq(rc, -EAGAIN);
    cr_expect_eq(va_auth_password_change(rc_, "wu.shi", "new password 1", "new password 2", ITER,
                                         why, sizeof(why)),
                 -EAGAIN, "locked: even the right old password");
    cr_expect_eq(va_auth_login(rc_, "wu.shi", "new password 1", TTL, ITER, &p, tok), -EAGAIN);
}

Test(auth, expiry)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1];
    cr_assert_eq(add_user("sun.ba", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(va_auth_login(rc_, "sun.ba", PW, 1, ITER, &p, tok), 0);
    cr_expect_eq(va_auth_check(rc_, tok, &q), 0);
    sleep(2);
    cr_expect_eq(va_auth_check(rc_, tok, &q), -EACCES);
    /* expired set members are pruned at the next login */
    cr_assert_eq(va_auth_login(rc_, "sun.ba", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(rint_("ZCARD %s", "hr:user:sun.ba:tokens", NULL), 1);
}

/* Every key and every value in Redis, as one text. */
static void dump_all(char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    redisReply *keys = redisCommand(rc_, "KEYS *");
    cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        redisReply *t = redisCommand(rc_, "TYPE %s", k);
        const char *cmd = strcmp(t->str, "hash") == 0   ? "HGETALL %s"
                          : strcmp(t->str, "set") == 0  ? "SMEMBERS %s"
                          : strcmp(t->str, "zset") == 0 ? "ZRANGE %s 0 -1"
                                                        : "GET %s";
        freeReplyObject(t);
        n += (size_t)snprintf(out + n, cap - n, "%s\n", k);
        redisReply *v = redisCommand(rc_, cmd, k);
        cr_assert_not_null(v);
        if (v->type == REDIS_REPLY_STRING)
            n += (size_t)snprintf(out + n, cap - n, "%s\n", v->str);
        for (size_t j = 0; v->type == REDIS_REPLY_ARRAY && j < v->elements; j++)
            n += (size_t)snprintf(out + n, cap - n, "%s\n", v->element[j]->str);
        freeReplyObject(v);
        cr_assert(n < cap);
    }
    freeReplyObject(keys);
}

Test(auth, secrets_not_stored_in_clear)
{
    va_principal p;
    char tok[VA_TOKEN_LEN + 1];
    static char all[1 << 16];
    cr_assert_eq(add_user("zhou.jiu", "reader", "county", "lab", PW), 0);
    cr_assert_eq(va_auth_login(rc_, "zhou.jiu", PW, TTL, ITER, &p, tok), 0);
    dump_all(all, sizeof(all));
    cr_expect(strstr(all, "hr:tok:") != NULL, "a token key exists");
    cr_expect_null(strstr(all, tok), "token text in redis:\n%s", all);
    cr_expect_null(strstr(all, PW), "password text in redis");
    cr_expect_null(strstr(all, "horse"), "password text in redis");
}

Test(auth, salt_differs_and_parameters_stored)
{
    char s1[64], s2[64], h1[80], h2[80], v[32];
    cr_assert_eq(add_user("a.user", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(add_user("b.user", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(ts_redis_get(&redis, s1, sizeof(s1), "HGET hr:user:a.user salt"), 0);
    cr_assert_eq(ts_redis_get(&redis, s2, sizeof(s2), "HGET hr:user:b.user salt"), 0);
    cr_assert_eq(ts_redis_get(&redis, h1, sizeof(h1), "HGET hr:user:a.user hash"), 0);
    cr_assert_eq(ts_redis_get(&redis, h2, sizeof(h2), "HGET hr:user:b.user hash"), 0);
    cr_expect_eq(strlen(s1), 32, "16-byte salt in hex");
    cr_expect_eq(strlen(h1), 64);
    cr_expect_str_neq(s1, s2);
    cr_expect_str_neq(h1, h2, "same password, different hashes");
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:a.user kdf"), 0);
    cr_expect_str_eq(v, "pbkdf2-sha256");
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:a.user iter"), 0);
    cr_expect_eq(atoi(v), ITER, "the configured cost");
    cr_expect_eq(rint_("SISMEMBER %s %s", "hr:users", "a.user"), 1);

    /* the stored hash is PBKDF2-HMAC-SHA256 of the password with that salt */
    unsigned char salt[16], dk[32];
    char hex[65];
    for (int i = 0; i < 16; i++)
        sscanf(s1 + 2 * i, "%2hhx", &salt[i]);
    cr_assert_eq(PKCS5_PBKDF2_HMAC(PW, (int)strlen(PW), salt, 16, ITER, EVP_sha256(), 32, dk), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", dk[i]);
    cr_expect_str_eq(hex, h1);
}

Test(auth, weaker_hash_upgraded_on_login)
{
    va_principal p;
    char tok[VA_TOKEN_LEN + 1], v[80], hex[65], out[16];
    unsigned char salt[16] = "0123456789abcdef", dk[32];
    cr_assert_eq(add_user("old.user", "technician", "township1", NULL, PW), 0);
    cr_assert_eq(PKCS5_PBKDF2_HMAC(PW, (int)strlen(PW), salt, 16, 10000, EVP_sha256(), 32, dk), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", dk[i]);
    cr_assert_eq(ts_redis_get(&redis, out, sizeof(out),
                              "HSET hr:user:old.user iter 10000 salt %s hash %s",
                              "30313233343536373839616263646566", hex),
                 0);
    /* configured below the stored cost: the stored hash is kept as it is */
    cr_assert_eq(va_auth_login(rc_, "old.user", PW, TTL, 5000, &p, tok), 0);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:old.user hash"), 0);
    cr_expect_str_eq(v, hex, "never downgraded");
    cr_expect_eq(va_auth_login(rc_, "old.user", "not the password", TTL, 20000, &p, tok), -EACCES);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:old.user hash"), 0);
    cr_expect_str_eq(v, hex, "a wrong password upgrades nothing");
    cr_assert_eq(va_auth_login(rc_, "old.user", PW, TTL, 20000, &p, tok), 0);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:old.user iter"), 0);
    cr_expect_eq(atoi(v), 20000, "re-hashed at the configured cost");
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:old.user hash"), 0);
    cr_expect_str_neq(v, hex);
    cr_expect_eq(va_auth_login(rc_, "old.user", PW, TTL, 20000, &p, tok), 0, "new hash verifies");
    cr_expect_eq(va_auth_login(rc_, "old.user", PW, TTL, VA_KDF_ITER_MIN - 1, &p, tok), -EINVAL);
}

Test(auth, live_tokens_per_user_bounded)
{
    va_principal p, q;
    char tok[VA_TOKEN_LEN + 1], key[128], member[80], out[16];
    cr_assert_eq(add_user("busy.user", "technician", "township1", NULL, PW), 0);
    /* VA_TOKENS_PER_USER earlier logins (written directly: each real login
     * costs a KDF run), oldest first */
    long long exp = (long long)time(NULL) + 100;
    for (int i = 0; i < VA_TOKENS_PER_USER; i++) {
        snprintf(member, sizeof(member), "%064d", i);
        snprintf(key, sizeof(key), "hr:tok:%s", member);
        cr_assert_eq(ts_redis_get(&redis, out, sizeof(out),
                                  "HSET %s user busy.user role technician hospital township1 "
                                  "expires %lld gen 0",
                                  key, exp + i),
                     0);
        cr_assert_eq(ts_redis_get(&redis, out, sizeof(out), "ZADD hr:user:busy.user:tokens %lld %s",
                                  exp + i, member),
                     0);
    }
    cr_assert_eq(va_auth_login(rc_, "busy.user", PW, TTL, ITER, &p, tok), 0);
    cr_expect_eq(rint_("ZCARD %s", "hr:user:busy.user:tokens", NULL), VA_TOKENS_PER_USER);
    snprintf(key, sizeof(key), "hr:tok:%064d", 0);
    cr_expect_eq(rint_("EXISTS %s", key, NULL), 0, "the oldest token was revoked");
    snprintf(key, sizeof(key), "hr:tok:%064d", 1);
    cr_expect_eq(rint_("EXISTS %s", key, NULL), 1);
    cr_expect_eq(va_auth_check(rc_, tok, &q), 0, "the new one lives");
}

Test(auth, invalid_users_refused)
{
    char why[256];
    cr_expect_eq(add_user("", "reader", "county", "imaging", PW), -EINVAL);
    cr_expect_eq(add_user("Upper", "technician", "county", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("has space", "technician", "county", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("colon:x", "technician", "county", NULL, PW), -EINVAL);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    cr_expect_eq(add_user(longname, "technician", "county", NULL, PW), -EINVAL);
    longname[64] = '\0';
    cr_expect_eq(add_user(longname, "technician", "county", NULL, PW), 0, "64 is allowed");
    cr_expect_eq(add_user("u1", "dicom-peer", "county", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("u1", "superuser", "county", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("u1", NULL, "county", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("u1", "technician", "atlantis", NULL, PW), -EINVAL);
    cr_expect_eq(add_user("u1", "technician", NULL, NULL, PW), -EINVAL);
    cr_expect_eq(add_user("u1", "reader", "county", NULL, PW), -EINVAL, "reader needs a center");
    cr_expect_eq(add_user("u1", "auditor", "county", "", PW), -EINVAL);
    cr_expect_eq(add_user("u1", "reader", "county", "Bad Center", PW), -EINVAL);
    cr_expect_eq(add_user("u1", "technician", "county", NULL, "123456789"), -EINVAL, "9 bytes");
    cr_expect_eq(add_user("u1", "technician", "county", NULL, NULL), -EINVAL);
    static char huge[VA_PASSWORD_MAX + 2];
    memset(huge, 'p', VA_PASSWORD_MAX + 1);
    cr_expect_eq(add_user("u1", "technician", "county", NULL, huge), -EINVAL);
    va_user_spec s = {.name = "u1",
                      .display_name = "bad\nname",
                      .role = "technician",
                      .hospital = "county",
                      .password = PW};
    cr_expect_eq(va_user_validate(&cfg, &s, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "display name") != NULL, "%s", why);
    s.display_name = "\xff\xfe not utf-8";
    cr_expect_eq(va_user_add(rc_, &cfg, &s), -EINVAL);
    s.display_name = NULL;
    s.role = "dicom-peer";
    cr_expect_eq(va_user_validate(&cfg, &s, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "role") != NULL, "%s", why);
    s.role = "reader";
    cr_expect_eq(va_user_validate(&cfg, &s, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "center") != NULL, "%s", why);
    s.role = "technician";
    s.hospital = "atlantis";
    cr_expect_eq(va_user_validate(&cfg, &s, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "atlantis") != NULL, "%s", why);
    cr_expect_eq(add_user("u1", "technician", "county", NULL, "1234567890"), 0, "10 bytes");
    /* nothing of the refused ones reached redis */
    cr_expect_eq(rint_("SCARD %s", "hr:users", NULL), 2);
}

typedef struct listed {
    int n;
    char names[8][80];
    char rows[8][256];
} listed;

static int collect(void *arg, const va_user_info *u)
{
    listed *l = arg;
    if (l->n == 8)
        return 99;
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", u->name);
    snprintf(l->rows[l->n], sizeof(l->rows[0]), "%s|%s|%s|%s|%s|%d|%d", u->name, u->display_name,
             u->role, u->hospital, u->center, u->disabled, u->created > 1700000000);
    l->n++;
    return 0;
}

Test(auth, list_in_name_order)
{
    listed l = {0};
    cr_assert_eq(va_user_list(rc_, collect, &l), 0);
    cr_expect_eq(l.n, 0);
    cr_assert_eq(add_user("zz", "technician", "township2", NULL, PW), 0);
    cr_assert_eq(add_user("aa", "reader", "county", "imaging", PW), 0);
    cr_assert_eq(add_user("mm", "admin", "county", NULL, PW), 0);
    cr_assert_eq(va_user_disable(rc_, "mm"), 0);
    cr_assert_eq(va_user_list(rc_, collect, &l), 0);
    cr_assert_eq(l.n, 3);
    cr_expect_str_eq(l.rows[0], "aa|张医生 Dr. Zhang|reader|county|imaging|0|1");
    cr_expect_str_eq(l.rows[1], "mm|张医生 Dr. Zhang|admin|county||1|1");
    cr_expect_str_eq(l.rows[2], "zz|张医生 Dr. Zhang|technician|township2||0|1");
    /* the callback stops the walk */
    l.n = 8;
    cr_expect_eq(va_user_list(rc_, collect, &l), 99);
}

Test(auth, default_cost_is_600000)
{
    hr_config def;
    char why[256], v[32];
    cr_assert_eq(hr_config_load(NULL, &def, why, sizeof(why)), 0, "%s", why);
    cr_expect_geq(def.auth.kdf_iterations, 600000, "OWASP 2023 for PBKDF2-HMAC-SHA256");
    cr_expect_eq(VA_KDF_ITER, 600000);
    va_user_spec s = {
        .name = "strong.user", .role = "technician", .hospital = "township1", .password = PW};
    cr_assert_eq(va_user_add(rc_, &def, &s), 0);
    cr_assert_eq(ts_redis_get(&redis, v, sizeof(v), "HGET hr:user:strong.user iter"), 0);
    cr_expect_eq(atoi(v), def.auth.kdf_iterations);
    hr_config_free(&def);
}

Test(auth, login_rate_limits)
{
    int retry = -1;
    const char *which = NULL;
    va_login_limits lim = {.window_s = 60, .per_address = 10, .per_user = 3};
    /* the 11th attempt from one address within the window is refused */
    for (int i = 1; i <= 10; i++) {
        char name[32];
        snprintf(name, sizeof(name), "random.%d", i);
        cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.1", name, &retry, &which), 0, "%d", i);
    }
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.1", "random.11", &retry, &which), -EBUSY);
    cr_expect_str_eq(which, "address");
    cr_expect(retry >= 1 && retry <= 60, "retry after %d s", retry);
    long long ttl = rint_("TTL %s", "hr:rl:login:a:10.1.1.1", NULL);
    cr_expect(ttl > 0 && ttl <= 60, "the counter expires with the window (%lld)", ttl);
    cr_expect_eq(rint_("EXISTS %s", "hr:rl:login:u:random.11", NULL), 0,
                 "an address over its limit is not counted against the name");
    /* other addresses are not affected; a name has its own limit */
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.2", "zhang.san", &retry, &which), 0);
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.3", "zhang.san", &retry, &which), 0);
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.4", "zhang.san", &retry, &which), 0);
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.5", "zhang.san", &retry, &which), -EBUSY,
                 "4th try of one name from anywhere");
    cr_expect_str_eq(which, "user");
    cr_expect_eq(va_login_admit(rc_, &lim, "10.1.1.5", "li.si", &retry, &which), 0);
    /* the window ends */
    va_login_limits quick = {.window_s = 1, .per_address = 1, .per_user = 0};
    cr_expect_eq(va_login_admit(rc_, &quick, "10.9.9.9", "x", &retry, &which), 0);
    cr_expect_eq(va_login_admit(rc_, &quick, "10.9.9.9", "x", &retry, &which), -EBUSY);
    cr_expect_eq(retry, 1);
    usleep(2100 * 1000);
    cr_expect_eq(va_login_admit(rc_, &quick, "10.9.9.9", "x", &retry, &which), 0, "a new window");
    /* limits of 0 are off; invalid names are not counted */
    va_login_limits off = {.window_s = 60, .per_address = 0, .per_user = 0};
    for (int i = 0; i < 20; i++)
        cr_expect_eq(va_login_admit(rc_, &off, "10.1.1.1", "zhang.san", &retry, &which), 0);
    va_login_limits by_user = {.window_s = 60, .per_address = 0, .per_user = 1};
    cr_expect_eq(va_login_admit(rc_, &by_user, "10.7.7.7", "Bad:Name", &retry, &which), 0);
    cr_expect_eq(va_login_admit(rc_, &by_user, "10.7.7.7", "Bad:Name", &retry, &which), 0);
    cr_expect_eq(va_login_admit(NULL, &lim, "10.1.1.1", "x", &retry, &which), HR_EREDIS);
}
