/* Signing keys and certificate files (decision 0022, decision 0023). */
#include "keystore.h"
#include "../common/hr_err.h"
#include "../common/hr_io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_kdf_iter = RPT_KEY_KDF_ITER;

void rpt_key_set_kdf_iter(int iter)
{
    g_kdf_iter = iter >= 1000 ? iter : RPT_KEY_KDF_ITER;
}

int rpt_pin_valid(const char *pin, char *why, size_t cap)
{
    size_t n = pin ? strnlen(pin, RPT_PIN_MAX + 1) : 0;
    if (n < RPT_PIN_MIN || n > RPT_PIN_MAX) {
        if (why && cap)
            snprintf(why, cap, "signing PIN: %d to %d bytes", RPT_PIN_MIN, RPT_PIN_MAX);
        return 0;
    }
    return 1;
}

int rpt_user_name_valid(const char *name)
{
    size_t n = name ? strnlen(name, RPT_USER_MAX + 1) : 0;
    if (n == 0 || n > RPT_USER_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int rpt_key_path(const char *keys_dir, const char *user, const char *file, char *out, size_t cap)
{
    if (!rpt_user_name_valid(user))
        return -EINVAL;
    int n = snprintf(out, cap, "%s/%s%s%s", keys_dir, user, file ? "/" : "", file ? file : "");
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int rpt_mkdirs(const char *dir, mode_t mode)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            return -errno;
        p[i] = c;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int rpt_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    char tmp[4096 + 16];
    int fd = -1, rc;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    rc = fchmod(fd, mode) == 0 ? 0 : -errno; /* the umask does not weaken mode */
    if (!rc)
        rc = hr_write_all(fd, data, n);
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir(path);
}

/* The contents of a memory BIO written atomically to path. */
static int write_bio(BIO *b, const char *path, mode_t mode)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n <= 0)
        return -EIO;
    return rpt_write_atomic(path, p, (size_t)n, mode);
}

int rpt_key_write(const char *path, EVP_PKEY *key, const char *pass)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    X509_SIG *enc = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -EIO;
    if (!p8 || !b)
        goto out;
    /* PBES2: PBKDF2-HMAC-SHA256 (OpenSSL's PBES2 default PRF), AES-256-CBC */
    enc = PKCS8_encrypt(-1, EVP_aes_256_cbc(), pass, (int)strlen(pass), NULL, 16, g_kdf_iter, p8);
    if (!enc || PEM_write_bio_PKCS8(b, enc) != 1)
        goto out;
    rc = write_bio(b, path, 0600);
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    X509_SIG_free(enc);
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

int rpt_key_read(const char *path, const char *pass, EVP_PKEY **out)
{
    unsigned char *text = NULL;
    size_t len = 0;
    BIO *b = NULL;
    int rc;
    *out = NULL;
    rc = hr_read_file(path, RPT_KEY_FILE_MAX, &text, &len);
    if (rc == -ENOENT) {
        rc = HR_ENOTFOUND;
        goto out;
    }
    if (rc) {
        rc = rc == HR_ETOOBIG ? -EIO : rc;
        goto out;
    }
    if (!strstr((char *)text, "-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
        rc = -EIO;
        goto out;
    }
    b = BIO_new_mem_buf(text, (int)len);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    /* the file is an encrypted key: failing to read it is the wrong PIN */
    *out = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)pass);
    rc = *out ? 0 : -EACCES;
out:
    BIO_free(b);
    if (text)
        OPENSSL_cleanse(text, len);
    free(text);
    ERR_clear_error();
    return rc;
}

int rpt_certs_read(const char *path, int max, STACK_OF(X509) * *out)
{
    unsigned char *text = NULL;
    size_t len = 0;
    BIO *b = NULL;
    int rc;
    *out = NULL;
    rc = hr_read_file(path, RPT_CHAIN_FILE_MAX, &text, &len);
    if (rc == -ENOENT)
        return HR_ENOTFOUND;
    if (rc)
        return rc;
    b = BIO_new_mem_buf(text, (int)len);
    *out = sk_X509_new_null();
    if (!b || !*out) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!c) {
            unsigned long e = ERR_peek_last_error();
            /* the end of the file, or a broken certificate */
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                break;
            rc = HR_EPARSE;
            goto out;
        }
        if (sk_X509_num(*out) >= max) {
            X509_free(c);
            rc = HR_ETOOBIG;
            goto out;
        }
        if (!sk_X509_push(*out, c)) {
            X509_free(c);
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = sk_X509_num(*out) > 0 ? 0 : HR_EPARSE;
out:
    if (rc) {
        sk_X509_pop_free(*out, X509_free);
        *out = NULL;
    }
    BIO_free(b);
    free(text);
    ERR_clear_error();
    return rc;
}

int rpt_certs_write(const char *path, STACK_OF(X509) * certs, mode_t mode, int append)
{
    BIO *b = BIO_new(BIO_s_mem());
    unsigned char *old = NULL;
    size_t olen = 0;
    int rc = -ENOMEM;
    if (!b)
        goto out;
    if (append) {
        struct stat st;
        rc = 0;
        if (stat(path, &st) != 0)
            rc = errno == ENOENT ? 0 : -errno;
        else if (st.st_size > 0)
            rc = hr_read_file(path, RPT_CHAIN_FILE_MAX * 16, &old, &olen);
        if (rc)
            goto out;
        if (olen && BIO_write(b, old, (int)olen) != (int)olen) {
            rc = -ENOMEM;
            goto out;
        }
        if (olen && old[olen - 1] != '\n')
            BIO_write(b, "\n", 1);
    }
    rc = -EIO;
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (PEM_write_bio_X509(b, sk_X509_value(certs, i)) != 1)
            goto out;
    rc = write_bio(b, path, mode);
out:
    free(old);
    BIO_free(b);
    ERR_clear_error();
    return rc;
}
