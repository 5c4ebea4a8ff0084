/* huren ca init, keygen, cert import and verify: the signing keys of report
 * signers and the offline verification of a signed report (decisions 0022,
 * 0023). verify needs no configuration and no data directory: another
 * hospital runs it on a file it received. */
#include "cli.h"
#include "../common/hr_buf.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_io.h"
#include "../dicom/p10.h"
#include "../dicom/uids.h"
#include "../reports/ca.h"
#include "../reports/jws.h"
#include "../reports/keystore.h"
#include "../reports/rpt_config.h"
#include "../reports/tsa.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_MAX    1024
#define IMAGES_MAX    100000       /* files under --images, instances listed */
#define IMAGE_MAX     (8ULL << 30) /* bytes hashed of one image */
#define QIDO_BODY_MAX (16u << 20)  /* one QIDO page */
#define QIDO_PAGE     1000

/* ---- options ---- */

/* When argv[*i] is name, takes its value into *dst. 1 taken, 0 not this
 * option, -1 missing value. */
static int opt(int argc, char **argv, int *i, const char *name, const char **dst)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *dst = argv[++*i];
    return 1;
}

static int load_config(const char *config, const char *usage, hr_config *cfg)
{
    char *cargv[] = {"huren", "--config", (char *)config, NULL};
    return cli_load_config(config ? 3 : 1, cargv, usage, cfg, NULL, NULL);
}

/* ---- secrets: PIN and CA passphrase ---- */

/* The signing PIN: one line of standard input (--pin-stdin, or when it is no
 * terminal), else asked twice (new) or once without echo. */
static int read_pin(int from_stdin, int twice, char *out, size_t cap)
{
    char again[RPT_PIN_MAX + 2], why[128];
    if (from_stdin || !isatty(STDIN_FILENO)) {
        if (cli_read_line(stdin, out, cap) != 0) {
            fprintf(stderr, "huren: no PIN on standard input (one line, at most %d bytes)\n",
                    RPT_PIN_MAX);
            return -1;
        }
    } else {
        if (cli_prompt_silent("Signing PIN: ", out, cap) != 0 ||
            (twice && cli_prompt_silent("Repeat the PIN: ", again, sizeof(again)) != 0)) {
            fprintf(stderr, "huren: cannot read the PIN\n");
            return -1;
        }
        if (twice && strcmp(out, again) != 0) {
            fprintf(stderr, "huren: the PINs differ\n");
            return -1;
        }
    }
    if (!rpt_pin_valid(out, why, sizeof(why))) {
        fprintf(stderr, "huren: %s\n", why);
        return -1;
    }
    return 0;
}

/* The first line of a passphrase file. */
static int read_pass_file(const char *path, char *out, size_t cap)
{
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = hr_read_file(path, SECRET_MAX, &text, &len);
    if (rc) {
        fprintf(stderr, "huren: %s: %s\n", path,
                rc == HR_ETOOBIG ? "empty or too long" : hr_strerror(rc));
        return -1;
    }
    size_t n = strcspn((char *)text, "\r\n");
    if (n >= cap) {
        free(text);
        return -1;
    }
    memcpy(out, text, n);
    out[n] = '\0';
    OPENSSL_cleanse(text, len);
    free(text);
    return 0;
}

/* ---- huren ca init ---- */

static const char k_ca_usage[] =
    "usage: huren ca init [--alg es256|sm2|ed25519] [--name CN] [--days N]\n"
    "                     [--pass-file FILE] [--config FILE]\n"
    "Creates the regional CA in reports.ca_dir (<data_dir>/ca): ca.key (encrypted\n"
    "PKCS#8), ca.pem, trust.pem. The CA passphrase is the first line of\n"
    "--pass-file; without it a random one is written to <ca_dir>/ca.pass (0600).\n"
    "An SM2 CA signs its certificates with SM2/SM3 (for SM2 signers).";

static void print_cert_line(const char *what, X509 *c)
{
    unsigned char md[32];
    unsigned int mdl = 0;
    char hex[65];
    X509_digest(c, EVP_sha256(), md, &mdl);
    for (unsigned i = 0; i < mdl && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    BIO *b = BIO_new_fp(stdout, BIO_NOCLOSE);
    printf("%s: ", what);
    fflush(stdout);
    X509_NAME_print_ex(b, X509_get_subject_name(c), 0,
                       (XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT);
    BIO_printf(b, ", valid until ");
    ASN1_TIME_print(b, X509_get0_notAfter(c));
    BIO_printf(b, "\n  SHA-256 fingerprint %s\n", hex);
    BIO_free(b);
}

int cli_ca(int argc, char **argv)
{
    const char *config = NULL, *alg_s = "es256", *name = NULL, *days_s = NULL, *pass_file = NULL;
    char pass[SECRET_MAX + 1], path[HR_PATH_MAX + 32];
    hr_config cfg;
    int status = 2;
    if (argc < 2 || strcmp(argv[1], "init") != 0) {
        fprintf(argc >= 2 && strcmp(argv[1], "-h") == 0 ? stdout : stderr, "%s\n", k_ca_usage);
        return argc >= 2 && strcmp(argv[1], "-h") == 0 ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        int t = opt(argc, argv, &i, "--config", &config);
        if (!t)
            t = opt(argc, argv, &i, "--alg", &alg_s);
        if (!t)
            t = opt(argc, argv, &i, "--name", &name);
        if (!t)
            t = opt(argc, argv, &i, "--days", &days_s);
        if (!t)
            t = opt(argc, argv, &i, "--pass-file", &pass_file);
        if (t != 1) {
            fprintf(stderr, "huren: ca init: bad option \"%s\"\n%s\n", argv[i], k_ca_usage);
            return 2;
        }
    }
    int alg = rpt_alg_parse(alg_s);
    int days = days_s ? atoi(days_s) : RPT_CA_DAYS;
    if (alg < 0 || days < 1 || days > 36500) {
        fprintf(stderr, "huren: ca init: --alg es256|sm2|ed25519, --days 1..36500\n");
        return 2;
    }
    status = load_config(config, k_ca_usage, &cfg);
    if (status)
        return status < 0 ? 0 : status;
    status = 1;
    const char *ca_dir = cfg.reports->ca_dir;
    snprintf(path, sizeof(path), "%s/ca.pem", ca_dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "huren: a CA exists already: %s (never replaced)\n", path);
        goto out;
    }
    int rc = rpt_mkdirs(ca_dir, 0700);
    if (rc) {
        fprintf(stderr, "huren: cannot create %s: %s\n", ca_dir, hr_strerror(rc));
        goto out;
    }
    if (pass_file) {
        if (read_pass_file(pass_file, pass, sizeof(pass)) != 0)
            goto out;
    } else {
        unsigned char rnd[32];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto out;
        rpt_b64url_encode(rnd, sizeof(rnd), pass);
        snprintf(path, sizeof(path), "%s/ca.pass", ca_dir);
        char line[SECRET_MAX + 2];
        int n = snprintf(line, sizeof(line), "%s\n", pass);
        rc = rpt_write_atomic(path, line, (size_t)n, 0600);
        if (rc) {
            fprintf(stderr, "huren: cannot write %s: %s\n", path, hr_strerror(rc));
            goto out;
        }
    }
    const hr_hospital *h = hr_config_hospital(&cfg, cfg.dicom.hospital);
    rpt_subject subj = {.cn = name ? name : "huren regional CA", .o = h ? h->name : NULL};
    rc = rpt_ca_init(ca_dir, (enum rpt_alg)alg, pass, &subj, days);
    if (rc == -EINVAL) {
        fprintf(stderr, "huren: the CA passphrase must have %d to %d bytes\n", RPT_CA_PASS_MIN,
                RPT_CA_PASS_MAX);
        goto out;
    }
    if (rc) {
        fprintf(stderr, "huren: ca init: %s\n", hr_strerror(rc));
        goto out;
    }
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (rpt_ca_load(ca_dir, pass, &key, &cert) == 0)
        print_cert_line("CA created", cert);
    EVP_PKEY_free(key);
    X509_free(cert);
    printf("  %s/ca.pem (%s), key %s/ca.key, trust anchors %s/trust.pem\n", ca_dir,
           rpt_alg_name((enum rpt_alg)alg), ca_dir, ca_dir);
    if (!pass_file)
        printf("  passphrase in %s/ca.pass\n", ca_dir);
    status = 0;
out:
    OPENSSL_cleanse(pass, sizeof(pass));
    hr_config_free(&cfg);
    return status;
}

/* The CA passphrase: --ca-pass-file, else <ca_dir>/ca.pass. */
static int ca_pass(const hr_config *cfg, const char *file, char *out, size_t cap)
{
    char path[HR_PATH_MAX + 16];
    if (!file) {
        snprintf(path, sizeof(path), "%s/ca.pass", cfg->reports->ca_dir);
        file = path;
    }
    return read_pass_file(file, out, cap);
}

/* ---- huren keygen ---- */

static const char k_keygen_usage[] =
    "usage: huren keygen --user NAME [--alg es256|ed25519|sm2] [--name DISPLAY NAME]\n"
    "                    [--hospital ID] [--center ID] [--days N] [--pin-stdin]\n"
    "                    [--ca-pass-file FILE] [--config FILE]\n"
    "Makes a signing key for user NAME, encrypted under a signing PIN (6..128 bytes,\n"
    "not the login password; read from standard input, or asked twice on a\n"
    "terminal), and a certificate from the regional CA (subject CN = display name,\n"
    "O = hospital, OU = center, UID = NAME; reports.cert_days by default).";

int cli_keygen(int argc, char **argv)
{
    const char *config = NULL, *user = NULL, *alg_s = "es256", *name = NULL, *hospital = NULL,
               *center = NULL, *days_s = NULL, *pass_file = NULL;
    int pin_stdin = 0, status = 2;
    char pin[RPT_PIN_MAX + 2] = "", pass[SECRET_MAX + 1] = "";
    hr_config cfg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\n", k_keygen_usage);
            return 0;
        }
        if (strcmp(argv[i], "--pin-stdin") == 0) {
            pin_stdin = 1;
            continue;
        }
        int t = opt(argc, argv, &i, "--config", &config);
        if (!t)
            t = opt(argc, argv, &i, "--user", &user);
        if (!t)
            t = opt(argc, argv, &i, "--alg", &alg_s);
        if (!t)
            t = opt(argc, argv, &i, "--name", &name);
        if (!t)
            t = opt(argc, argv, &i, "--hospital", &hospital);
        if (!t)
            t = opt(argc, argv, &i, "--center", &center);
        if (!t)
            t = opt(argc, argv, &i, "--days", &days_s);
        if (!t)
            t = opt(argc, argv, &i, "--ca-pass-file", &pass_file);
        if (t != 1) {
            fprintf(stderr, "huren: keygen: bad option \"%s\"\n%s\n", argv[i], k_keygen_usage);
            return 2;
        }
    }
    int alg = rpt_alg_parse(alg_s);
    if (!user || !rpt_user_name_valid(user) || alg < 0) {
        fprintf(stderr, "huren: keygen: --user NAME (a-z 0-9 . _ -) and --alg es256|ed25519|sm2\n");
        return 2;
    }
    status = load_config(config, k_keygen_usage, &cfg);
    if (status)
        return status < 0 ? 0 : status;
    status = 2;
    int days = days_s ? atoi(days_s) : cfg.reports->cert_days;
    if (days < 1 || days > 3650) {
        fprintf(stderr, "huren: keygen: --days 1..3650\n");
        goto out;
    }
    if (!hospital)
        hospital = cfg.dicom.hospital;
    const hr_hospital *h = hr_config_hospital(&cfg, hospital);
    if (!h) {
        fprintf(stderr, "huren: keygen: no hospital \"%s\" in the configuration\n", hospital);
        goto out;
    }
    const hr_center *c = center ? hr_config_center(&cfg, center) : NULL;
    if (center && (!c || strcmp(c->hospital, h->id) != 0)) {
        fprintf(stderr, "huren: keygen: no center \"%s\" of hospital %s in the configuration\n",
                center, h->id);
        goto out;
    }
    status = 1;
    if (ca_pass(&cfg, pass_file, pass, sizeof(pass)) != 0) {
        fprintf(stderr, "huren: keygen: no CA passphrase (run huren ca init, or --ca-pass-file)\n");
        goto out;
    }
    if (read_pin(pin_stdin, 1, pin, sizeof(pin)) != 0)
        goto out;
    rpt_subject subj = {
        .cn = name ? name : user, .o = h->name, .ou = c ? c->name : NULL, .uid = user};
    int rc = rpt_keygen(cfg.reports->keys_dir, cfg.reports->ca_dir, pass, user, (enum rpt_alg)alg,
                        &subj, days, pin);
    if (rc == HR_ENOTFOUND)
        fprintf(stderr, "huren: keygen: no CA in %s: run huren ca init\n", cfg.reports->ca_dir);
    else if (rc == -EACCES)
        fprintf(stderr, "huren: keygen: the CA passphrase does not open %s/ca.key\n",
                cfg.reports->ca_dir);
    else if (rc)
        fprintf(stderr, "huren: keygen: %s\n", hr_strerror(rc));
    if (rc)
        goto out;
    char cpath[HR_PATH_MAX + 80];
    STACK_OF(X509) *chain = NULL;
    snprintf(cpath, sizeof(cpath), "%s/%s/chain.pem", cfg.reports->keys_dir, user);
    if (rpt_certs_read(cpath, RPT_X5C_MAX, &chain) == 0)
        print_cert_line("certificate", sk_X509_value(chain, 0));
    sk_X509_pop_free(chain, X509_free);
    printf("  %s key of %s in %s/%s/ (key.p8 under the signing PIN, chain.pem)\n",
           rpt_alg_name((enum rpt_alg)alg), user, cfg.reports->keys_dir, user);
    status = 0;
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(pass, sizeof(pass));
    hr_config_free(&cfg);
    return status;
}

/* ---- huren cert import ---- */

static const char k_import_usage[] =
    "usage: huren cert import --user NAME --chain FILE [--key FILE] [--pin-stdin]\n"
    "                         [--config FILE]\n"
    "Takes a certificate chain (PEM, leaf first) issued by a real CA for user NAME.\n"
    "--key: the key as an encrypted PKCS#8 PEM whose passphrase is the signing PIN;\n"
    "without it the user's present key must match the certificate. The PIN is read\n"
    "from standard input (or asked). Self-signed roots of FILE are added to\n"
    "<ca_dir>/trust.pem.";

int cli_cert(int argc, char **argv)
{
    const char *config = NULL, *user = NULL, *chain = NULL, *key = NULL;
    int pin_stdin = 0, status = 2;
    char pin[RPT_PIN_MAX + 2] = "", why[256], trust[HR_PATH_MAX + 16];
    hr_config cfg;
    if (argc < 2 || strcmp(argv[1], "import") != 0) {
        fprintf(stderr, "%s\n", k_import_usage);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--pin-stdin") == 0) {
            pin_stdin = 1;
            continue;
        }
        int t = opt(argc, argv, &i, "--config", &config);
        if (!t)
            t = opt(argc, argv, &i, "--user", &user);
        if (!t)
            t = opt(argc, argv, &i, "--chain", &chain);
        if (!t)
            t = opt(argc, argv, &i, "--key", &key);
        if (t != 1) {
            fprintf(stderr, "huren: cert import: bad option \"%s\"\n%s\n", argv[i], k_import_usage);
            return 2;
        }
    }
    if (!user || !chain || !rpt_user_name_valid(user)) {
        fprintf(stderr, "%s\n", k_import_usage);
        return 2;
    }
    status = load_config(config, k_import_usage, &cfg);
    if (status)
        return status < 0 ? 0 : status;
    status = 1;
    if (read_pin(pin_stdin, 0, pin, sizeof(pin)) != 0)
        goto out;
    rpt_config_trust_path(&cfg, trust, sizeof(trust));
    int rc = rpt_mkdirs(cfg.reports->ca_dir, 0700);
    if (!rc)
        rc = rpt_cert_import(cfg.reports->keys_dir, trust, user, chain, key, pin, why, sizeof(why));
    if (rc) {
        fprintf(stderr, "huren: cert import: %s\n", why[0] ? why : hr_strerror(rc));
        goto out;
    }
    printf("chain of %s imported into %s/%s/chain.pem%s\n", user, cfg.reports->keys_dir, user,
           key ? ", key into key.p8" : "");
    status = 0;
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    hr_config_free(&cfg);
    return status;
}

/* ---- huren verify ---- */

static const char k_verify_usage[] =
    "usage: huren verify FILE.jws [--trust CA.pem] [--images DIR | --hub URL --token T]\n"
    "                    [--tsr FILE]\n"
    "Verifies a signed report offline: the signature, the certificate chain up to\n"
    "the anchors of --trust (PEM), each certificate's validity at the signing time,\n"
    "the images digest, and with --images (DICOM files, any names) or --hub (a\n"
    "huren's DICOMweb, bearer token T) the SHA-256 of every instance. A co-signed\n"
    "final report's embedded preliminary is verified too. --tsr: an RFC 3161\n"
    "timestamp token (DER) of the compact JWS. One line per check; exit 0 only when\n"
    "every check passes, 1 otherwise, 2 on usage errors.";

typedef struct vstate {
    int failures;
    const char *trust;
} vstate;

static void check(vstate *v, const char *what, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void check(vstate *v, const char *what, int ok, const char *fmt, ...)
{
    char detail[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (!ok)
        v->failures++;
    printf("%-5s %s%s%s\n", ok ? "ok" : "FAIL", what, detail[0] ? ": " : "", detail);
}

/* Prints each line of lines as a failure of what; with skip1/skip2, only
 * the lines that are in neither. */
static void fail_lines(vstate *v, const char *what, const char *lines, const char *skip1,
                       const char *skip2)
{
    const char *p = lines;
    while (*p) {
        size_t n = strcspn(p, "\n");
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        if (!(skip1 && strstr(skip1, line)) && !(skip2 && strstr(skip2, line)))
            check(v, what, 0, "%s", line);
        p += n + (p[n] == '\n');
    }
}

static void iso_time(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One verification of a compact JWS, a line per check; *payload: its
 * payload (a reference) when it parsed. */
static void verify_jws(vstate *v, const char *label, const char *jws, size_t len, json_t **payload)
{
    rpt_verify_result r;
    char what[80], when[32];
    rpt_jws_verify(jws, len, v->trust, &r);
    *payload = r.payload;
    snprintf(what, sizeof(what), "%ssignature", label);
    if (r.sig == 1) {
        iso_time(r.signed_s, when, sizeof(when));
        check(v, what, 1, "%s by %s, signed %s", rpt_alg_name(r.alg), r.signer_subject, when);
    }
    /* format and signature reasons: those of neither validity nor chain */
    fail_lines(v, what, r.why, r.why_valid, r.why_chain);
    snprintf(what, sizeof(what), "%scertificate validity at signing time", label);
    if (r.valid == 1)
        check(v, what, 1, "%s", "");
    else if (r.valid == 0)
        fail_lines(v, what, r.why_valid, NULL, NULL);
    snprintf(what, sizeof(what), "%scertificate chain", label);
    if (r.chain == 1)
        check(v, what, 1, "issued by a CA of %s", v->trust);
    else if (r.chain == 0)
        fail_lines(v, what, r.why_chain, NULL, NULL);
    else if (!v->trust && r.valid >= 0)
        check(v, what, 0, "not checked: give --trust CA.pem (the region's CA certificate)");
}

/* SHA-256 hex of the images lines "<sop> <sha256>\n" in order. */
static int images_digest(json_t *inst, char hex[65])
{
    hr_sha256 *h = hr_sha256_new();
    if (!h)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(inst); i++) {
        json_t *e = json_array_get(inst, i);
        const char *sop = json_string_value(json_object_get(e, "sop"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        hr_sha256_update(h, sop, strlen(sop));
        hr_sha256_update(h, " ", 1);
        hr_sha256_update(h, sha, strlen(sha));
        hr_sha256_update(h, "\n", 1);
    }
    hr_sha256_final_hex(h, hex);
    hr_sha256_free(h);
    return 0;
}

static int hex64_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* images: well-formed, in the documented order, and its digest. Returns
 * the instances array when they can be checked one by one, else NULL. */
static json_t *check_images(vstate *v, json_t *payload)
{
    json_t *img = json_object_get(payload, "images");
    json_t *inst = json_object_get(img, "instances");
    const char *digest = json_string_value(json_object_get(img, "digest"));
    size_t n = json_array_size(inst);
    if (!json_is_object(img) || !json_is_array(inst) || !digest) {
        check(v, "images digest", 0, "the payload has no images list and digest");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(inst, i);
        const char *sop = json_string_value(json_object_get(e, "sop"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        if (!dcm_uid_key_valid(sop) || !hex64_valid(sha)) {
            check(v, "images digest", 0, "instance %zu is not a UID and a SHA-256", i + 1);
            return NULL;
        }
        const char *prev =
            i ? json_string_value(json_object_get(json_array_get(inst, i - 1), "sop")) : NULL;
        if (prev && strcmp(prev, sop) >= 0) {
            check(v, "images digest", 0, "instances not in SOP Instance UID order at %zu", i + 1);
            return NULL;
        }
    }
    char hex[65];
    json_t *count = json_object_get(img, "count");
    if (images_digest(inst, hex) != 0)
        return NULL;
    if (strcmp(hex, digest) != 0) {
        check(v, "images digest", 0, "does not match the listed instances");
        return NULL;
    }
    if (!json_is_integer(count) || (size_t)json_integer_value(count) != n) {
        check(v, "images digest", 0, "count is not the number of listed instances");
        return NULL;
    }
    check(v, "images digest", 1, "%zu instances", n);
    return inst;
}

/* ---- images from a directory ---- */

typedef struct file_hash {
    char sop[65]; /* "" when the file is not Part 10 */
    char sha[65];
    char *path;
} file_hash;

static struct {
    file_hash *v;
    size_t n, cap;
    int too_many;
} g_files;

/* The content hash of an instance as the index keeps it (storage/: the
 * object's name): SHA-256 of the dataset after the File Meta Information of
 * a Part 10 file (of every byte when there is none). Fed in pieces. */
typedef struct p10_hasher {
    uint8_t head[DCM_P10_META_MAX + 144];
    size_t head_n;
    int started;
    hr_sha256 *h;
    char sop[65]; /* (0002,0003), "" without File Meta Information */
    unsigned long long n;
} p10_hasher;

static void ph_start(p10_hasher *ph)
{
    dcm_p10_info info;
    size_t off = 0;
    ph->sop[0] = '\0';
    if (dcm_p10_read_meta(ph->head, ph->head_n, &info) == 0) {
        off = info.dataset_offset;
        snprintf(ph->sop, sizeof(ph->sop), "%s", info.sop_instance);
    }
    hr_sha256_update(ph->h, ph->head + off, ph->head_n - off);
    ph->started = 1;
}

static void ph_feed(p10_hasher *ph, const void *p, size_t n)
{
    ph->n += n;
    if (!ph->started) {
        size_t k = sizeof(ph->head) - ph->head_n;
        k = n < k ? n : k;
        memcpy(ph->head + ph->head_n, p, k);
        ph->head_n += k;
        p = (const uint8_t *)p + k;
        n -= k;
        if (ph->head_n < sizeof(ph->head))
            return;
        ph_start(ph);
    }
    hr_sha256_update(ph->h, p, n);
}

static void ph_final(p10_hasher *ph, char hex[65])
{
    if (!ph->started)
        ph_start(ph);
    hr_sha256_final_hex(ph->h, hex);
}

/* The content hash and Part 10 SOP Instance UID of a file. */
static int hash_file(const char *path, file_hash *out)
{
    uint8_t *buf = malloc(1 << 16);
    p10_hasher *ph = calloc(1, sizeof(*ph));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    if (!buf || !ph || fd < 0 || !(ph->h = hr_sha256_new())) {
        rc = -EIO;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 16);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        if (ph->n + (unsigned long long)r > IMAGE_MAX) {
            rc = HR_ETOOBIG;
            goto out;
        }
        ph_feed(ph, buf, (size_t)r);
    }
    ph_final(ph, out->sha);
    memcpy(out->sop, ph->sop, sizeof(out->sop));
out:
    if (fd >= 0)
        close(fd);
    if (ph)
        hr_sha256_free(ph->h);
    free(ph);
    free(buf);
    return rc;
}

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    if (g_files.n >= IMAGES_MAX) {
        g_files.too_many = 1;
        return 1;
    }
    if (g_files.n == g_files.cap) {
        size_t cap = g_files.cap ? g_files.cap * 2 : 64;
        file_hash *v = realloc(g_files.v, cap * sizeof(*v));
        if (!v)
            return 1;
        g_files.v = v;
        g_files.cap = cap;
    }
    file_hash *f = &g_files.v[g_files.n];
    if (hash_file(path, f) != 0)
        return 0; /* unreadable: as if absent */
    f->path = strdup(path);
    if (f->path)
        g_files.n++;
    return 0;
}

static const file_hash *find_file(const char *sop, const char *sha)
{
    const file_hash *by_hash = NULL;
    for (size_t i = 0; i < g_files.n; i++) {
        if (strcmp(g_files.v[i].sop, sop) == 0)
            return &g_files.v[i];
        if (!by_hash && strcmp(g_files.v[i].sha, sha) == 0)
            by_hash = &g_files.v[i];
    }
    return by_hash;
}

static void check_dir(vstate *v, json_t *inst, const char *dir)
{
    if (nftw(dir, walk_cb, 16, FTW_PHYS) != 0 && !g_files.too_many && g_files.n == 0) {
        check(v, "images", 0, "cannot read %s", dir);
        return;
    }
    if (g_files.too_many) {
        check(v, "images", 0, "more than %d files under %s", IMAGES_MAX, dir);
        return;
    }
    /* a lookup per instance over the files: both are bounded by IMAGES_MAX;
     * index the files by SOP when a study is large */
    for (size_t i = 0; i < json_array_size(inst); i++) {
        json_t *e = json_array_get(inst, i);
        const char *sop = json_string_value(json_object_get(e, "sop"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        char what[96];
        snprintf(what, sizeof(what), "image %s", sop);
        const file_hash *f = find_file(sop, sha);
        if (!f)
            check(v, what, 0, "not found under %s", dir);
        else if (strcmp(f->sha, sha) != 0)
            check(v, what, 0, "SHA-256 of %s differs from the signed one (the image changed)",
                  f->path);
        else
            check(v, what, 1, "%s", f->path);
    }
    for (size_t i = 0; i < g_files.n; i++)
        free(g_files.v[i].path);
    free(g_files.v);
    memset(&g_files, 0, sizeof(g_files));
}

/* ---- images from a hub (DICOMweb) ---- */

typedef struct sink {
    hr_buf *buf;    /* into memory, or */
    p10_hasher *ph; /* hashed as an instance */
    unsigned long long n;
    unsigned long long max;
} sink;

static size_t sink_write(char *p, size_t size, size_t nm, void *arg)
{
    sink *s = arg;
    size_t n = size * nm;
    s->n += n;
    if (s->n > s->max)
        return 0; /* aborts the transfer */
    if (s->buf)
        return hr_buf_append(s->buf, p, n) == 0 ? n : 0;
    ph_feed(s->ph, p, n);
    return n;
}

/* GET url with the bearer token; the HTTP status, or -1 on a transport
 * failure (why says which). */
static long http_get(const char *url, const char *token, const char *accept, sink *s, char *why,
                     size_t cap)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char auth[1200], acc[128];
    long status = -1;
    if (!c) {
        snprintf(why, cap, "libcurl init failed");
        return -1;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(acc, sizeof(acc), "Accept: %s", accept);
    hdr = curl_slist_append(hdr, auth);
    hdr = curl_slist_append(hdr, acc);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(why, cap, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return status;
}

static const char *tag_string(json_t *obj, const char *tag)
{
    return json_string_value(
        json_array_get(json_object_get(json_object_get(obj, tag), "Value"), 0));
}

/* The series of each instance of study (QIDO-RS, paged) into map (sop ->
 * series). 0 or -1 with a check line. */
static int series_map(vstate *v, const char *hub, const char *token, const char *study,
                      size_t expect, json_t *map)
{
    char url[2048], why[256] = "";
    for (size_t offset = 0; offset <= expect + QIDO_PAGE; offset += QIDO_PAGE) {
        hr_buf b;
        hr_buf_init(&b, QIDO_BODY_MAX);
        sink s = {&b, NULL, 0, QIDO_BODY_MAX};
        snprintf(url, sizeof(url),
                 "%s/dicomweb/studies/%s/instances?limit=%d&offset=%zu&includefield=0020000E", hub,
                 study, QIDO_PAGE, offset);
        long st = http_get(url, token, "application/dicom+json", &s, why, sizeof(why));
        json_t *arr = NULL;
        if (st == 200)
            arr = json_loadb((const char *)b.data, b.len, 0, NULL);
        hr_buf_free(&b);
        if (st == 204 || (st == 200 && json_array_size(arr) == 0)) {
            json_decref(arr);
            return 0;
        }
        if (st != 200 || !json_is_array(arr)) {
            json_decref(arr);
            if (st == 404 || st == 403)
                check(v, "images", 0, "study %s not found on the hub (or not yours)", study);
            else if (st == 401)
                check(v, "images", 0, "the hub refused the token (401)");
            else if (st < 0)
                check(v, "images", 0, "hub unreachable: %s", why);
            else
                check(v, "images", 0, "QIDO-RS answered %ld", st);
            return -1;
        }
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *o = json_array_get(arr, i);
            const char *sop = tag_string(o, "00080018"), *ser = tag_string(o, "0020000E");
            if (sop && ser && dcm_uid_key_valid(ser))
                json_object_set_new(map, sop, json_string(ser));
        }
        size_t got = json_array_size(arr);
        json_decref(arr);
        if (got < QIDO_PAGE)
            return 0;
    }
    return 0;
}

static void check_hub(vstate *v, json_t *payload, json_t *inst, const char *hub, const char *token)
{
    const char *study =
        json_string_value(json_object_get(json_object_get(payload, "exam"), "study_uid"));
    json_t *map = json_object();
    char url[2048], why[256];
    size_t hl = strlen(hub);
    while (hl && hub[hl - 1] == '/')
        hl--;
    char base[1024];
    snprintf(base, sizeof(base), "%.*s", (int)hl, hub);
    if (!dcm_uid_key_valid(study)) {
        check(v, "images", 0, "the payload has no exam.study_uid");
        goto out;
    }
    if (series_map(v, base, token, study, json_array_size(inst), map) != 0)
        goto out;
    if (json_object_size(map) == 0) {
        check(v, "images", 0, "study %s not found on the hub (or not visible with this token)",
              study);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(inst); i++) {
        json_t *e = json_array_get(inst, i);
        const char *sop = json_string_value(json_object_get(e, "sop"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        const char *ser = json_string_value(json_object_get(map, sop));
        char what[96];
        snprintf(what, sizeof(what), "image %s", sop);
        if (!ser) {
            check(v, what, 0, "not on the hub (QIDO-RS does not list it)");
            continue;
        }
        p10_hasher *ph = calloc(1, sizeof(*ph));
        sink s = {NULL, ph, 0, IMAGE_MAX};
        snprintf(url, sizeof(url), "%s/dicomweb/studies/%s/series/%s/instances/%s", base, study,
                 ser, sop);
        why[0] = '\0';
        long st = -1;
        char hex[65] = "";
        if (ph && (ph->h = hr_sha256_new()) != NULL) {
            st = http_get(url, token, "application/dicom", &s, why, sizeof(why));
            ph_final(ph, hex);
        }
        if (ph)
            hr_sha256_free(ph->h);
        free(ph);
        if (st != 200)
            check(v, what, 0, "WADO-RS answered %ld%s%s", st, why[0] ? ": " : "", why);
        else if (strcmp(hex, sha) != 0)
            check(v, what, 0, "SHA-256 of the hub's object differs from the signed one");
        else
            check(v, what, 1, "%llu bytes from the hub", s.n);
    }
out:
    json_decref(map);
}

/* A co-signed final: its "cosigns" JWS verifies and says what the final says. */
static void check_cosign(vstate *v, json_t *payload)
{
    json_t *cos = json_object_get(payload, "cosigns");
    json_t *pre = NULL;
    if (!cos)
        return;
    if (!json_is_string(cos)) {
        check(v, "co-signed preliminary", 0, "\"cosigns\" is not a compact JWS");
        return;
    }
    verify_jws(v, "preliminary ", json_string_value(cos), json_string_length(cos), &pre);
    if (!pre)
        return;
    static const char *const same[] = {"exam", "patient", "images", "content"};
    int ok = 1;
    for (size_t i = 0; i < sizeof(same) / sizeof(*same); i++) {
        if (!json_equal(json_object_get(pre, same[i]), json_object_get(payload, same[i]))) {
            check(v, "co-signed content", 0, "the preliminary's \"%s\" differs from the final's",
                  same[i]);
            ok = 0;
        }
    }
    json_t *rp = json_object_get(pre, "report"), *rf = json_object_get(payload, "report");
    if (!json_equal(json_object_get(rp, "id"), json_object_get(rf, "id"))) {
        check(v, "co-signed content", 0, "the preliminary is of another report");
        ok = 0;
    }
    if (json_object_get(pre, "cosigns")) {
        check(v, "co-signed content", 0, "the preliminary itself carries \"cosigns\"");
        ok = 0;
    }
    if (ok)
        check(v, "co-signed content", 1, "the final carries the preliminary's content");
    json_decref(pre);
}

static void check_tsr(vstate *v, const char *jws, size_t len, const char *tsr_file)
{
    unsigned char *der = NULL;
    size_t n = 0;
    char why[256] = "";
    long long gen = 0;
    int rc = hr_read_file(tsr_file, RPT_TSR_MAX, &der, &n);
    if (rc) {
        check(v, "timestamp", 0, "cannot read %s: %s", tsr_file, hr_strerror(rc));
        return;
    }
    rc = rpt_tsa_check_token(der, n, jws, len, v->trust, &gen, why, sizeof(why));
    if (rc) {
        check(v, "timestamp", 0, "%s", why);
    } else {
        char when[32];
        iso_time(gen, when, sizeof(when));
        check(v, "timestamp", 1, "RFC 3161 token of %s%s", when,
              v->trust ? ", TSA chained to --trust" : "");
    }
    free(der);
}

int cli_verify(int argc, char **argv)
{
    const char *file = NULL, *trust = NULL, *images = NULL, *hub = NULL, *token = NULL, *tsr = NULL;
    unsigned char *jws = NULL;
    size_t len = 0;
    json_t *payload = NULL;
    vstate v = {0, NULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\n", k_verify_usage);
            return 0;
        }
        int t = opt(argc, argv, &i, "--trust", &trust);
        if (!t)
            t = opt(argc, argv, &i, "--images", &images);
        if (!t)
            t = opt(argc, argv, &i, "--hub", &hub);
        if (!t)
            t = opt(argc, argv, &i, "--token", &token);
        if (!t)
            t = opt(argc, argv, &i, "--tsr", &tsr);
        if (!t && argv[i][0] != '-' && !file) {
            file = argv[i];
            t = 1;
        }
        if (t != 1) {
            fprintf(stderr, "huren: verify: bad argument \"%s\"\n%s\n", argv[i], k_verify_usage);
            return 2;
        }
    }
    if (!file || (images && hub) || (!hub != !token)) {
        fprintf(stderr, "%s\n", k_verify_usage);
        return 2;
    }
    if (hub)
        curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = hr_read_file(file, RPT_JWS_MAX, &jws, &len);
    if (rc) {
        printf("FAIL  read %s: %s\n", file,
               rc == HR_ETOOBIG ? "empty or larger than 16 MiB" : hr_strerror(rc));
        return 1;
    }
    while (len && (jws[len - 1] == '\n' || jws[len - 1] == '\r'))
        jws[--len] = '\0'; /* a file saved with a final newline */
    v.trust = trust;
    verify_jws(&v, "", (const char *)jws, len, &payload);
    if (payload) {
        json_t *inst = check_images(&v, payload);
        if (inst && images)
            check_dir(&v, inst, images);
        else if (inst && hub)
            check_hub(&v, payload, inst, hub, token);
        check_cosign(&v, payload);
        json_t *r = json_object_get(payload, "report");
        const char *st = json_string_value(json_object_get(r, "status"));
        printf("      report %s version %lld, status %s\n",
               json_string_value(json_object_get(r, "id"))
                   ? json_string_value(json_object_get(r, "id"))
                   : "?",
               (long long)json_integer_value(json_object_get(r, "version")), st ? st : "?");
    }
    if (tsr)
        check_tsr(&v, (const char *)jws, len, tsr);
    if (v.failures)
        printf("NOT VERIFIED: %d check%s failed\n", v.failures, v.failures == 1 ? "" : "s");
    else
        printf("VERIFIED\n");
    json_decref(payload);
    free(jws);
    return v.failures ? 1 : 0;
}
