#include "hr_hash.h"
#include "hr_assert.h"
#include "hr_bytes.h"
#include "hr_err.h"

#include <openssl/evp.h>

struct hr_sha256 {
    EVP_MD_CTX *ctx;
};

hr_sha256 *hr_sha256_new(void)
{
    hr_sha256 *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || hr_sha256_reset(h)) {
        hr_sha256_free(h);
        return NULL;
    }
    return h;
}

void hr_sha256_free(hr_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int hr_sha256_reset(hr_sha256 *h)
{
    return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

void hr_sha256_update(hr_sha256 *h, const void *p, size_t n)
{
    HR_ASSERT(EVP_DigestUpdate(h->ctx, p, n) == 1);
}

void hr_sha256_final_hex(hr_sha256 *h, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    HR_ASSERT(EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32);
    hr_hex_encode(md, sizeof(md), hex);
}
