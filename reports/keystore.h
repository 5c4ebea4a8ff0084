/* Files of signing keys and certificates (decision 0022):
 * <keys_dir>/<user>/key.p8 (PKCS#8 PEM, AES-256-CBC under a PBKDF2 key of
 * the PIN) and <keys_dir>/<user>/chain.pem (leaf first). Written 0600 with
 * fsync and rename. Blocking: CLI or thread pool. */
#ifndef RPT_KEYSTORE_H
#define RPT_KEYSTORE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <sys/types.h>

#define RPT_PIN_MIN        6   /* bytes of a signing PIN */
#define RPT_PIN_MAX        128 /* longer PINs are refused, never truncated */
#define RPT_USER_MAX       64  /* as viewer-api's VA_USER_MAX */
#define RPT_KEY_FILE_MAX   (64u << 10)
#define RPT_CHAIN_FILE_MAX (256u << 10)

/* 1 when pin is RPT_PIN_MIN..RPT_PIN_MAX bytes, else 0 (why, cap, says so). */
int rpt_pin_valid(const char *pin, char *why, size_t cap);
/* 1 when name is 1..RPT_USER_MAX of [a-z0-9._-] not starting with '.'
 * (the account rule of viewer-api, safe as a directory name). */
int rpt_user_name_valid(const char *name);

/* <keys_dir>/<user>/<file> into out (cap). 0, -EINVAL (bad user name),
 * -ENAMETOOLONG. */
int rpt_key_path(const char *keys_dir, const char *user, const char *file, char *out, size_t cap);

/* Writes n bytes to path atomically: a temporary file of mode in the same
 * directory, fsync, rename, fsync of the directory. 0 or -errno. */
int rpt_write_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* mkdir -p of dir (mode for the directories it creates). 0 or -errno. */
int rpt_mkdirs(const char *dir, mode_t mode);

/* PBKDF2-HMAC-SHA256 iterations of the keys written: a PIN is short, so
 * well above OpenSSL's default of 2048 (about 50 ms per unlock; decision
 * 0023). Reading takes the count stored in the file. */
#define RPT_KEY_KDF_ITER 100000
/* For unit tests only (not thread-safe): the iterations of keys written from
 * now on (>= 1000; anything else restores RPT_KEY_KDF_ITER). */
void rpt_key_set_kdf_iter(int iter);

/* key as an encrypted PKCS#8 PEM (AES-256-CBC, PBKDF2) under pass into path
 * (0600, atomic). 0, -EIO, -errno. */
int rpt_key_write(const char *path, EVP_PKEY *key, const char *pass);
/* Reads the encrypted PKCS#8 PEM at path with pass into *out (EVP_PKEY_free).
 * 0; -EACCES wrong pass; HR_ENOTFOUND no file; -EIO not an encrypted
 * PKCS#8 PEM (an unencrypted key is refused); -errno. */
int rpt_key_read(const char *path, const char *pass, EVP_PKEY **out);

/* The PEM certificates of a file (1..max, in file order) into *out
 * (sk_X509_pop_free(*out, X509_free)). 0; HR_ENOTFOUND; HR_EPARSE no or bad
 * certificate; HR_ETOOBIG more than max; -errno. */
int rpt_certs_read(const char *path, int max, STACK_OF(X509) * *out);
/* The certificates as concatenated PEM into path (mode, atomic); append:
 * after what path already holds (a missing file is empty). 0, -errno. */
int rpt_certs_write(const char *path, STACK_OF(X509) * certs, mode_t mode, int append);

#endif
