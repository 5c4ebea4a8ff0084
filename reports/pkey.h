/* The three signature algorithms of decision 0022 over OpenSSL EVP keys:
 * key generation, the alg a key signs with, raw (JWS) signatures. Blocking
 * (CPU only), thread-safe; no files. */
#ifndef RPT_PKEY_H
#define RPT_PKEY_H

#include "signer.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* The SM2 distinguishing ID huren signs and verifies with (GB/T 35276). */
#define RPT_SM2_ID     "1234567812345678"
#define RPT_SM2_ID_LEN 16

/* A new key pair for alg (P-256, Ed25519, SM2) into *out (EVP_PKEY_free).
 * 0, -EIO. */
int rpt_pkey_generate(enum rpt_alg alg, EVP_PKEY **out);

/* The alg key signs with: ES256 for an EC P-256 key, EdDSA for Ed25519, SM2
 * for an EC key on the SM2 curve; -1 for anything else. */
int rpt_pkey_alg(EVP_PKEY *key);

/* Signs in with key (whose alg is alg) into sig (cap >= RPT_SIG_MAX) in the
 * JWS encoding (ES256, SM2: R||S of 32 bytes each; EdDSA: 64 bytes). 0,
 * -EINVAL (key is not of alg), -EIO. */
int rpt_pkey_sign(EVP_PKEY *key, enum rpt_alg alg, const uint8_t *in, size_t n, uint8_t *sig,
                  size_t *sig_len);

/* Verifies the raw signature sig of in with key under alg. 0; HR_ESIG (no
 * match, or a signature of the wrong size); -EINVAL (key is not of alg). */
int rpt_pkey_verify(EVP_PKEY *key, enum rpt_alg alg, const uint8_t *in, size_t n,
                    const uint8_t *sig, size_t sig_len);

/* A signing (sign 1) or verifying context of key under alg, prepared once
 * (algorithm fetch, SM2 ID) and copied for each use: the fast path of a
 * signer and of repeated verifications with one certificate. Uses of one
 * context may run on several threads at once. 0, -EINVAL, -EIO, -ENOMEM. */
typedef struct rpt_pkey_ctx rpt_pkey_ctx;
int rpt_pkey_ctx_new(EVP_PKEY *key, enum rpt_alg alg, int sign, rpt_pkey_ctx **out);
void rpt_pkey_ctx_free(rpt_pkey_ctx *c);
/* As rpt_pkey_sign and rpt_pkey_verify, with a context of the right kind. */
int rpt_pkey_ctx_sign(const rpt_pkey_ctx *c, const uint8_t *in, size_t n, uint8_t *sig,
                      size_t *sig_len);
int rpt_pkey_ctx_verify(const rpt_pkey_ctx *c, const uint8_t *in, size_t n, const uint8_t *sig,
                        size_t sig_len);

/* Marks cert so that OpenSSL checks an SM2 signature on it with
 * RPT_SM2_ID (no-op for other signature algorithms). 0, -ENOMEM. */
int rpt_x509_set_sm2_id(X509 *cert);

/* Signs cert with the issuer's key: ECDSA with SHA-256 for P-256, Ed25519,
 * SM2 with SM3 and RPT_SM2_ID. 0, -EINVAL (unknown key type), -EIO. */
int rpt_x509_sign(X509 *cert, EVP_PKEY *key);

/* A signer (signer.h) over key and its certificate chain (leaf first, at
 * most RPT_X5C_MAX of jws.h): takes its own references to both. 0; HR_ECERT
 * (key and leaf differ); HR_EUNSUP (key of no supported alg); -ENOMEM.
 * Free with (*out)->free(*out). */
int rpt_pkey_signer_new(EVP_PKEY *key, STACK_OF(X509) * chain, rpt_signer **out);

#endif
