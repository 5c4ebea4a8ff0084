/* huren-test-sign: signs a JSON payload file with a user's local key (the
 * signing PIN on standard input) and prints the compact JWS. Tests use it to
 * make JWS that openssl, npm jose and `huren verify` must agree on; it is
 * the library's own rpt_local_signer_open + rpt_jws_sign, nothing else.
 *
 *   huren-test-sign --keys DIR --user NAME [--iat S] [--tsa URL --tsr-out F] FILE.json
 */
#include "common/hr_err.h"
#include "reports/jws.h"
#include "reports/signer.h"
#include "reports/tsa.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    const char *keys = NULL, *user = NULL, *file = NULL, *tsa = NULL, *tsr_out = NULL;
    long long iat = (long long)time(NULL);
    char pin[256];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            keys = argv[++i];
        else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strcmp(argv[i], "--iat") == 0 && i + 1 < argc)
            iat = atoll(argv[++i]);
        else if (strcmp(argv[i], "--tsa") == 0 && i + 1 < argc)
            tsa = argv[++i];
        else if (strcmp(argv[i], "--tsr-out") == 0 && i + 1 < argc)
            tsr_out = argv[++i];
        else if (!file)
            file = argv[i];
        else
            file = NULL, i = argc;
    }
    if (!keys || !user || !file || !tsa != !tsr_out) {
        fprintf(stderr, "usage: huren-test-sign --keys DIR --user NAME [--iat S] "
                        "[--tsa URL --tsr-out FILE] FILE.json < PIN\n");
        return 2;
    }
    if (!fgets(pin, sizeof(pin), stdin)) {
        fprintf(stderr, "huren-test-sign: no PIN on stdin\n");
        return 2;
    }
    pin[strcspn(pin, "\r\n")] = '\0';
    json_error_t je;
    json_t *payload = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!payload) {
        fprintf(stderr, "huren-test-sign: %s: %s\n", file, je.text);
        return 1;
    }
    rpt_signer *s = NULL;
    int rc = rpt_local_signer_open(keys, user, pin, &s);
    if (rc) {
        fprintf(stderr, "huren-test-sign: open %s: %s\n", user, hr_strerror(rc));
        json_decref(payload);
        return 1;
    }
    char *jws = NULL;
    rc = rpt_jws_sign(s, payload, iat, &jws);
    if (rc) {
        fprintf(stderr, "huren-test-sign: sign: %s\n", hr_strerror(rc));
    } else if (tsa) {
        char *tok = NULL, why[256];
        long long gen = 0;
        rc = rpt_tsa_request(tsa, 10000, jws, strlen(jws), &tok, &gen, why, sizeof(why));
        if (rc) {
            fprintf(stderr, "huren-test-sign: TSA: %s\n", why);
        } else {
            unsigned char *der = malloc(strlen(tok));
            int n = EVP_DecodeBlock(der, (unsigned char *)tok, (int)strlen(tok));
            size_t pad = strlen(tok) > 1 && tok[strlen(tok) - 1] == '='
                             ? (tok[strlen(tok) - 2] == '=' ? 2 : 1)
                             : 0;
            FILE *f = fopen(tsr_out, "wb");
            if (!f || n < 0 || fwrite(der, 1, (size_t)n - pad, f) != (size_t)n - pad)
                rc = -1;
            if (f)
                fclose(f);
            free(der);
            free(tok);
        }
    }
    if (!rc)
        printf("%s\n", jws);
    free(jws);
    s->free(s);
    json_decref(payload);
    return rc ? 1 : 0;
}
