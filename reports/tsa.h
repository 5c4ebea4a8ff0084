/* RFC 3161 timestamps of signed reports (decision 0023): the message imprint
 * is the SHA-256 of the whole compact JWS (its ASCII bytes), so that
 * `openssl ts -verify -data report.jws -token_in -in token.der -CAfile
 * tsa-ca.pem` checks a token without huren. Blocking (network): call on a
 * worker thread or from the CLI, never on the loop. */
#ifndef RPT_TSA_H
#define RPT_TSA_H

#include <stddef.h>
#include <stdint.h>

#define RPT_TSR_MAX (64u << 10) /* bytes of a TSA response (and of a token) */

/* Asks the TSA at url (http or https; POST application/timestamp-query)
 * for a timestamp of jws[0..len), waiting at most timeout_ms in all. The
 * response must be granted (status 0 or 1), for the same SHA-256 imprint
 * and nonce, and carry the TSA's certificate. *token_b64: the
 * TimeStampToken (DER, CMS SignedData) in standard base64, malloc'd; *gen_s
 * its genTime (epoch seconds). 0; -ETIMEDOUT; -EIO (transport, HTTP status,
 * why says which); HR_ETOOBIG (response over RPT_TSR_MAX); HR_EPARSE (not a
 * TimeStampResp); HR_EMISMATCH (refused, or not for this request). why
 * (cap): one line on failure. */
int rpt_tsa_request(const char *url, int timeout_ms, const char *jws, size_t len, char **token_b64,
                    long long *gen_s, char *why, size_t cap);

/* Checks a TimeStampToken (DER) against jws[0..len): SHA-256 imprint equal,
 * and with trust_pem (a PEM bundle holding the TSA's CA) its signature and
 * the TSA certificate's chain (extendedKeyUsage timeStamping). *gen_s: the
 * genTime. 0; HR_EPARSE; HR_EDIGEST (another document); HR_ESIG (signature
 * or chain); -EIO (trust file). why (cap): one line on failure. */
int rpt_tsa_check_token(const uint8_t *der, size_t n, const char *jws, size_t len,
                        const char *trust_pem, long long *gen_s, char *why, size_t cap);

#endif
