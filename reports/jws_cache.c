/* Caches of rpt_jws_verify (decision 0023). */
#include "jws_cache.h"
#include "jws.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CERT_SLOTS  64
#define STORE_SLOTS 4
#define CHAIN_SLOTS 256

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long g_tick;

static pthread_once_t g_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_sha256;

static void md_init(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void rpt__sha256(const void *p, size_t n, uint8_t md[32])
{
    pthread_once(&g_md_once, md_init);
    EVP_Digest(p, n, md, NULL, g_sha256 ? g_sha256 : EVP_sha256(), NULL);
}

/* ---- certificates ---- */

static rpt__cert *g_certs[CERT_SLOTS];

static void cert_free(rpt__cert *c)
{
    rpt_pkey_ctx_free(c->vctx);
    X509_free(c->cert);
    free(c);
}

void rpt__cert_put(rpt__cert *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g_mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&g_mu);
    if (last)
        cert_free(c);
}

/* Standard padded base64 into a malloc'd buffer; NULL when malformed. */
static uint8_t *b64_decode(const char *in, size_t n, size_t *olen)
{
    size_t pad;
    if (n == 0 || n % 4)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok)
            return NULL;
    }
    pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
    if (pad == 1 && in[n - 2] == '=')
        return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0 || (size_t)len < pad) {
        free(out);
        return NULL;
    }
    *olen = (size_t)len - pad;
    return out;
}

static void name_oneline(X509_NAME *name, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (!b)
        return;
    unsigned long flags = (XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    if (X509_NAME_print_ex(b, name, 0, flags) >= 0) {
        int n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static rpt__cert *cert_parse(const char *b64, size_t n, const uint8_t id[32])
{
    size_t dlen = 0;
    uint8_t *der = n <= (RPT_X5C_CERT_MAX + 2) / 3 * 4 ? b64_decode(b64, n, &dlen) : NULL;
    const unsigned char *p = der;
    X509 *x = der ? d2i_X509(NULL, &p, (long)dlen) : NULL;
    rpt__cert *c = NULL;
    if (!x || p != der + dlen || rpt_x509_set_sm2_id(x) != 0)
        goto out;
    c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->cert = x;
    x = NULL;
    EVP_PKEY *key = X509_get0_pubkey(c->cert);
    c->alg = rpt_pkey_alg(key);
    if (c->alg >= 0 && rpt_pkey_ctx_new(key, (enum rpt_alg)c->alg, 0, &c->vctx) != 0)
        c->alg = -1;
    name_oneline(X509_get_subject_name(c->cert), c->subject, sizeof(c->subject));
    memcpy(c->id, id, 32);
    c->refs = 1; /* the caller's */
out:
    X509_free(x);
    free(der);
    ERR_clear_error();
    return c;
}

rpt__cert *rpt__cert_get(const char *b64, size_t n)
{
    uint8_t id[32];
    rpt__cert *c = NULL, *old = NULL;
    rpt__sha256(b64, n, id);
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < CERT_SLOTS && !c; i++)
        if (g_certs[i] && memcmp(g_certs[i]->id, id, 32) == 0) {
            c = g_certs[i];
            c->refs++;
            c->used = ++g_tick;
        }
    pthread_mutex_unlock(&g_mu);
    if (c)
        return c;
    c = cert_parse(b64, n, id);
    if (!c)
        return NULL;
    pthread_mutex_lock(&g_mu);
    int slot = 0;
    for (int i = 0; i < CERT_SLOTS; i++) {
        if (!g_certs[i]) {
            slot = i;
            break;
        }
        if (g_certs[i]->used < g_certs[slot]->used)
            slot = i;
    }
    if (g_certs[slot] && --g_certs[slot]->refs == 0)
        old = g_certs[slot];
    g_certs[slot] = c;
    c->refs++; /* the cache's */
    c->used = ++g_tick;
    pthread_mutex_unlock(&g_mu);
    if (old)
        cert_free(old);
    return c;
}

/* ---- trust stores ---- */

typedef struct store_slot {
    char path[4096];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
    X509_STORE *store;
    unsigned long long gen, used;
} store_slot;

static store_slot g_stores[STORE_SLOTS];
static unsigned long long g_gen;

static int same_file(const store_slot *s, const char *path, const struct stat *st)
{
    return s->store && strcmp(s->path, path) == 0 && s->dev == st->st_dev && s->ino == st->st_ino &&
           s->size == st->st_size && s->mtim.tv_sec == st->st_mtim.tv_sec &&
           s->mtim.tv_nsec == st->st_mtim.tv_nsec;
}

X509_STORE *rpt__store_get(const char *path, unsigned long long *gen)
{
    struct stat st;
    X509_STORE *s = NULL;
    if (strlen(path) >= sizeof(g_stores[0].path) || stat(path, &st) != 0)
        return NULL;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < STORE_SLOTS && !s; i++)
        if (same_file(&g_stores[i], path, &st) && X509_STORE_up_ref(g_stores[i].store) == 1) {
            s = g_stores[i].store;
            *gen = g_stores[i].gen;
            g_stores[i].used = ++g_tick;
        }
    pthread_mutex_unlock(&g_mu);
    if (s)
        return s;
    s = X509_STORE_new();
    if (!s || X509_STORE_load_file(s, path) != 1) {
        X509_STORE_free(s);
        ERR_clear_error();
        return NULL;
    }
    X509_STORE *old = NULL;
    pthread_mutex_lock(&g_mu);
    int slot = 0;
    for (int i = 0; i < STORE_SLOTS; i++) {
        if (g_stores[i].store && strcmp(g_stores[i].path, path) == 0) {
            slot = i; /* the file changed: replace its old store */
            break;
        }
        if (g_stores[i].used < g_stores[slot].used)
            slot = i;
    }
    store_slot *e = &g_stores[slot];
    old = e->store;
    snprintf(e->path, sizeof(e->path), "%s", path);
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtim = st.st_mtim;
    e->gen = *gen = ++g_gen;
    e->used = ++g_tick;
    e->store = s;
    X509_STORE_up_ref(s); /* the caller's */
    pthread_mutex_unlock(&g_mu);
    X509_STORE_free(old);
    return s;
}

/* ---- verified chains ---- */

typedef struct chain_slot {
    uint8_t id[32];
    long long nb, na;
    unsigned long long used; /* 0: empty */
} chain_slot;

static chain_slot g_chains[CHAIN_SLOTS];

int rpt__chain_known(const uint8_t id[32], long long t)
{
    int known = 0;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < CHAIN_SLOTS && !known; i++)
        if (g_chains[i].used && memcmp(g_chains[i].id, id, 32) == 0 && g_chains[i].nb <= t &&
            t <= g_chains[i].na) {
            known = 1;
            g_chains[i].used = ++g_tick;
        }
    pthread_mutex_unlock(&g_mu);
    return known;
}

void rpt__chain_add(const uint8_t id[32], long long nb, long long na)
{
    pthread_mutex_lock(&g_mu);
    int slot = 0;
    for (int i = 0; i < CHAIN_SLOTS; i++) {
        if (g_chains[i].used && memcmp(g_chains[i].id, id, 32) == 0) {
            slot = i;
            break;
        }
        if (g_chains[i].used < g_chains[slot].used)
            slot = i;
    }
    memcpy(g_chains[slot].id, id, 32);
    g_chains[slot].nb = nb;
    g_chains[slot].na = na;
    g_chains[slot].used = ++g_tick;
    pthread_mutex_unlock(&g_mu);
}
