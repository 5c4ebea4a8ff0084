/* Users and bearer tokens of the HTTP API (docs/decisions/0006-users-and-tokens.md,
 * 0013-login-isolation-and-rate-limits.md). Synchronous functions over one
 * hiredis context: the HTTP server calls them from a worker thread with
 * sto_worker_redis() (logins from its password-hashing pool, never from the
 * libuv thread pool that makes ingest durable), the CLI with its own
 * connection. Nothing here keeps state between calls; every function is
 * thread-safe given a context per thread.
 *
 * Redis keys (not derived from the object files: reindex cannot rebuild them):
 *   hr:users                    set of user names
 *   hr:user:<name>              hash: name display_name role hospital center
 *                               kdf iter salt hash created disabled gen
 *   hr:user:<name>:tokens       zset: sha256 hex of live tokens, score = expiry (s)
 *   hr:user:<name>:fail         failed logins in the current 15 min window (TTL)
 *   hr:user:<name>:lock         present while the name is locked out (TTL)
 *   hr:tok:<sha256 hex(token)>  hash: user role hospital center expires gen (TTL)
 *   hr:rl:login:a:<address>     login attempts from a client address in the
 *                               current rate-limit window (TTL = the window)
 *   hr:rl:login:u:<name>        login attempts for a user name, same
 * The token itself is never stored.
 *
 * Error codes (common/hr_err.h):
 *   -EACCES       bad credentials: unknown user, wrong password, disabled user;
 *                 or a token that is malformed, unknown, expired or revoked
 *   -EAGAIN       locked out (VA_LOCK_FAILURES failures within VA_LOCK_WINDOW_S)
 *   -EBUSY        va_login_admit: over a login rate limit
 *   -EINVAL       invalid name, role, hospital, center, display name or password
 *   -EEXIST       va_user_add: the user exists
 *   HR_ENOTFOUND  the user does not exist (administration functions only)
 *   HR_EREDIS     Redis failed or answered something unexpected; the context
 *                 may be unusable (thread pool: call sto_worker_redis_failed())
 *   -EIO          OpenSSL failed (random generator, KDF); -ENOMEM */
#ifndef VA_AUTH_H
#define VA_AUTH_H

#include "../common/hr_config.h"
#include "../storage/access.h"

#include <hiredis/hiredis.h>

#define VA_USER_MAX        64   /* name: 1..64 of [a-z0-9._-] */
#define VA_PASSWORD_MIN    10   /* bytes */
#define VA_PASSWORD_MAX    1024 /* bytes; longer ones are refused, never truncated */
#define VA_TOKEN_LEN       43   /* 32 random bytes, base64url without padding */
#define VA_TTL_MAX         (30 * 86400)
#define VA_KDF_ITER        600000 /* default of auth.kdf_iterations (PBKDF2-HMAC-SHA256) */
#define VA_KDF_ITER_MIN    1000   /* the least auth.kdf_iterations accepts */
#define VA_ADDR_MAX        64     /* client address text in a rate-limit key */
#define VA_LOCK_FAILURES   5
#define VA_LOCK_WINDOW_S   900 /* failures counted over 15 min ... */
#define VA_LOCK_S          900 /* ... lock the name for 15 min */
#define VA_TOKENS_PER_USER 64  /* live tokens per user; the oldest are revoked beyond */

/* Who a valid token belongs to. Plain data, copied out; the caller owns it. */
typedef struct va_principal {
    char user[VA_USER_MAX + 1];
    enum sto_role role; /* never STO_ROLE_DICOM_PEER */
    char hospital[HR_ID_MAX];
    char center[HR_ID_MAX];         /* "" when none */
    char display_name[HR_NAME_MAX]; /* "" when none */
    long long expires;              /* token expiry, seconds since the epoch */
} va_principal;

/* ---- login and tokens ---- */

/* Login rate limits (cfg->auth): attempts per client address and per user
 * name within window_s seconds, counted in Redis so every node shares them.
 * A limit <= 0 is off. */
typedef struct va_login_limits {
    int window_s;
    int per_address;
    int per_user;
} va_login_limits;

/* Counts one login attempt from address (text, e.g. "10.2.3.4"; cut at
 * VA_ADDR_MAX - 1) for user (counted only when it is a valid name). 0 when
 * admitted; -EBUSY when over a limit, with *retry_after_s (>= 1) until the
 * window ends and *which = "address" or "user" (static strings); HR_EREDIS.
 * Cheap (one EVAL): call it before va_auth_login, whose KDF is what the limit
 * protects. An address over its limit is not counted against the name. */
int va_login_admit(redisContext *c, const va_login_limits *lim, const char *address,
                   const char *user, int *retry_after_s, const char **which);

/* Checks user and password; on success writes a new token (NUL-terminated)
 * into token and the principal into *out. ttl_s: token lifetime in seconds,
 * 1..VA_TTL_MAX (normally cfg->http.token_ttl_s); kdf_iter: the configured
 * PBKDF2 iterations (cfg->auth.kdf_iterations, >= VA_KDF_ITER_MIN). Costs one
 * KDF run (about 0.3 s of CPU at 600000) whether or not the user exists: an
 * unknown name is checked against a dummy hash of kdf_iter iterations. Call
 * it from a worker thread. 0, -EACCES, -EAGAIN, -EINVAL (ttl, kdf_iter),
 * HR_EREDIS. A wrong password, an unknown name and a disabled user answer
 * alike; the VA_LOCK_FAILURES-th failure in the window answers -EAGAIN and so
 * does every attempt while locked (known or unknown name alike). A successful
 * login clears the failure count and re-hashes a hash made with fewer than
 * kdf_iter iterations (a second KDF run). */
int va_auth_login(redisContext *c, const char *user, const char *password, int ttl_s, int kdf_iter,
                  va_principal *out, char token[VA_TOKEN_LEN + 1]);

/* Validates a bearer token (the text after "Bearer "; NULL allowed; its
 * length is bounded before anything else). The token must be live and its
 * user present, enabled, and not have changed password since the login.
 * 0 with *out filled, -EACCES, HR_EREDIS. */
int va_auth_check(redisContext *c, const char *token, va_principal *out);

/* Revokes one token. 0, -EACCES (malformed, unknown or expired), HR_EREDIS. */
int va_auth_logout(redisContext *c, const char *token);

/* Revokes every token of user name (logout everywhere): bumps the user's
 * generation, so that a token stored by a concurrent login dies too, and
 * deletes the tokens listed in hr:user:<name>:tokens (at most
 * VA_TOKENS_PER_USER: bounded). 0, HR_ENOTFOUND, -EINVAL (name), HR_EREDIS. */
int va_auth_revoke_all(redisContext *c, const char *name);

/* A user changes their own password: old must match (checked with the KDF
 * like a login; a mismatch counts as a failed login toward the lockout), new
 * must pass va_password_validate (its reason into why, cap bytes). On success
 * the new hash is stored with kdf_iter iterations and every token of the
 * user is revoked (va_user_passwd). Costs one or two KDF runs: call it from
 * the KDF pool. 0; -EINVAL (new refused, why set); -EACCES (old wrong, or the
 * user is gone or disabled); -EAGAIN (locked out); HR_EREDIS; -EIO. */
int va_auth_password_change(redisContext *c, const char *name, const char *old_pw,
                            const char *new_pw, int kdf_iter, char *why, size_t cap);

/* ---- administration (CLI, admin API) ---- */

/* A new user. Strings are borrowed for the call. */
typedef struct va_user_spec {
    const char *name;
    const char *display_name; /* optional UTF-8, < HR_NAME_MAX bytes, no control characters */
    const char *role;         /* sto_role_name() of any role except "dicom-peer" */
    const char *hospital;     /* an id of cfg->hospitals */
    const char *center;       /* required for reader and auditor, optional otherwise;
                               * 1..63 of [a-z0-9._-] */
    const char *password;     /* VA_PASSWORD_MIN..VA_PASSWORD_MAX bytes */
} va_user_spec;

/* 1 when name is 1..VA_USER_MAX of [a-z0-9._-]. */
int va_user_name_valid(const char *name);
/* 0, or -EINVAL with the reason ("role: ...") written into why (cap). The
 * password is checked only when s->password is not NULL. */
int va_user_validate(const hr_config *cfg, const va_user_spec *s, char *why, size_t cap);
/* A reader's or auditor's center must be configured and run by their own
 * hospital (checked at `huren user add` and at every login: the
 * configuration may change after the account was made). 0, or -EINVAL with
 * the reason in why. */
int va_center_check(const hr_config *cfg, const char *hospital, const char *center, char *why,
                    size_t cap);
/* 0, or -EINVAL with the reason in why (cap). */
int va_password_validate(const char *password, char *why, size_t cap);

/* Creates the user (atomically: a concurrent add of the same name gets
 * -EEXIST), hashing with cfg->auth.kdf_iterations. 0, -EINVAL, -EEXIST,
 * HR_EREDIS. */
int va_user_add(redisContext *c, const hr_config *cfg, const va_user_spec *s);
/* Sets a new password hashed with kdf_iter iterations (cfg->auth.kdf_iterations),
 * revokes every token of the user and clears a lockout. 0, -EINVAL,
 * HR_ENOTFOUND, HR_EREDIS. */
int va_user_passwd(redisContext *c, const char *name, const char *password, int kdf_iter);
/* Disables the user and revokes every token. 0, -EINVAL (name), HR_ENOTFOUND,
 * HR_EREDIS. */
int va_user_disable(redisContext *c, const char *name);
/* Enables a disabled user again (old tokens stay revoked). Same codes. */
int va_user_enable(redisContext *c, const char *name);

/* What va_user_list reports: no secrets. Valid only during the callback. */
typedef struct va_user_info {
    const char *name;
    const char *display_name; /* "" when none */
    const char *role;         /* as stored (sto_role_name) */
    const char *hospital;
    const char *center; /* "" when none */
    long long created;  /* seconds since the epoch */
    int disabled;
} va_user_info;

/* Calls cb for every user in name order; a non-zero return from cb stops the
 * walk and is returned. 0, HR_EREDIS, -ENOMEM, or cb's value. */
int va_user_list(redisContext *c, int (*cb)(void *arg, const va_user_info *u), void *arg);

#endif
