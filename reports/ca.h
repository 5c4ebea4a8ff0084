/* The regional CA of `huren ca init`, signing certificates for `huren
 * keygen`, and `huren cert import` (decisions 0022, 0023). Files under
 * ca_dir: ca.key (encrypted PKCS#8 under the CA passphrase), ca.pem (the CA
 * certificate), trust.pem (the anchors huren verifies against: the CA's
 * own and imported roots). Blocking: CLI and tests. */
#ifndef RPT_CA_H
#define RPT_CA_H

#include "signer.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#define RPT_CA_PASS_MIN 16 /* bytes of a CA passphrase */
#define RPT_CA_PASS_MAX 1024
#define RPT_CERT_DAYS   730  /* default validity of a signer's certificate */
#define RPT_CA_DAYS     7300 /* default validity of the regional CA */

/* Who a certificate names; NULL or "" fields are left out. UTF-8. */
typedef struct rpt_subject {
    const char *cn;  /* commonName: the person's display name (or user), or the CA's name */
    const char *o;   /* organizationName: hospital */
    const char *ou;  /* organizationalUnitName: center */
    const char *uid; /* userId (UID): the huren user name */
} rpt_subject;

/* A new self-signed CA (a key of alg; certificate valid days from now) into
 * *key and *cert (caller frees). 0, -EINVAL, -EIO, -ENOMEM. */
int rpt_ca_make(enum rpt_alg alg, const rpt_subject *subj, int days, EVP_PKEY **key, X509 **cert);

/* A signer's certificate for pub, issued by ca_cert/ca_key: keyUsage
 * digitalSignature + nonRepudiation (critical), CA:FALSE, valid from
 * not_before to not_after (epoch seconds). *out: X509_free. 0, -EINVAL,
 * -EIO, -ENOMEM. */
int rpt_cert_issue(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *pub, const rpt_subject *subj,
                   long long not_before, long long not_after, X509 **out);

/* huren ca init: makes ca_dir (0700) with ca.key under pass, ca.pem, and
 * appends ca.pem to trust.pem. 0; -EEXIST (ca.pem exists: never replaced);
 * -EINVAL (pass too short); -errno, -EIO. */
int rpt_ca_init(const char *ca_dir, enum rpt_alg alg, const char *pass, const rpt_subject *subj,
                int days);
/* Reads ca_dir's key (with pass) and certificate. 0; HR_ENOTFOUND (no CA);
 * -EACCES (wrong passphrase); -EIO. */
int rpt_ca_load(const char *ca_dir, const char *pass, EVP_PKEY **key, X509 **cert);

/* huren keygen: a new key of alg for user, its certificate (valid days from
 * now) from the CA of ca_dir, written to <keys_dir>/<user>/key.p8 (under
 * pin) and chain.pem (leaf, CA). An existing key is replaced (the old files
 * stay as key.p8.<time> and chain.pem.<time>). 0; -EINVAL (user or
 * pin); rpt_ca_load's errors; -errno. */
int rpt_keygen(const char *keys_dir, const char *ca_dir, const char *ca_pass, const char *user,
               enum rpt_alg alg, const rpt_subject *subj, int days, const char *pin);

/* huren cert import: the chain of chain_file (PEM, leaf first) becomes the
 * user's chain.pem; self-signed certificates in it are appended to
 * trust_pem (when not there yet) and left out of chain.pem. The key is
 * key_file (an encrypted PKCS#8 PEM whose passphrase is pin; re-encrypted
 * under pin into key.p8) or, with key_file NULL, the user's present key.p8
 * (opened with pin). Checks first: the leaf is valid now, its keyUsage
 * allows signing, the key matches it, and the chain verifies up to
 * trust_pem with the new roots. 0 or an error with why (cap) in one line:
 * HR_EPARSE, HR_ECERT, HR_ENOTFOUND (no key), -EACCES (pin does not open
 * the key), -errno. */
int rpt_cert_import(const char *keys_dir, const char *trust_pem, const char *user,
                    const char *chain_file, const char *key_file, const char *pin, char *why,
                    size_t cap);

#endif
