/* Streaming SHA-256 over OpenSSL EVP. */
#ifndef HR_HASH_H
#define HR_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_sha256 hr_sha256;

/* Allocates a context; NULL on allocation failure. Free with hr_sha256_free(). */
hr_sha256 *hr_sha256_new(void);
void hr_sha256_free(hr_sha256 *h);
/* Restarts the digest. 0 or -ENOMEM. */
int hr_sha256_reset(hr_sha256 *h);
void hr_sha256_update(hr_sha256 *h, const void *p, size_t n);
/* Writes 64 lowercase hex digits and a NUL into hex[65]. */
void hr_sha256_final_hex(hr_sha256 *h, char hex[65]);

#endif
