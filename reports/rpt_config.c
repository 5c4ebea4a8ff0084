/* reports.*: signing keys, the regional CA, the TSA.
 *
 *   key                      default              rule
 *   reports.keys_dir         "" (<data_dir>/keys) a path
 *   reports.ca_dir           "" (<data_dir>/ca)   a path
 *   reports.tsa_url          "" (none)            "" or http://... or https://...
 *   reports.tsa_timeout_ms   10000                100..120000
 *   reports.sign_session_s   0                    0 (PIN per signature)
 *   reports.cert_days        730                  1..3650
 *
 * Meaning: docs/configuration.md. */
#include "rpt_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_keys[] = {"keys_dir",       "ca_dir",    "tsa_url", "tsa_timeout_ms",
                                     "sign_session_s", "cert_days", NULL};

static int parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    long long n;
    int rc;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    rc = hr_cfg_check_keys(v, "reports.", k_keys, err, ecap);
    if (rc)
        return rc;
    if (!c->reports) {
        c->reports = calloc(1, sizeof(*c->reports));
        if (!c->reports)
            return -ENOMEM;
    }
    struct rpt_config *r = c->reports;
    rc = hr_cfg_get_str(v, "keys_dir", "reports.", r->keys_dir, sizeof(r->keys_dir), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(v, "ca_dir", "reports.", r->ca_dir, sizeof(r->ca_dir), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(v, "tsa_url", "reports.", r->tsa_url, sizeof(r->tsa_url), 1, err, ecap);
    if (!rc && r->tsa_url[0] && strncmp(r->tsa_url, "http://", 7) != 0 &&
        strncmp(r->tsa_url, "https://", 8) != 0)
        rc = hr_cfg_fail(err, ecap, "reports.tsa_url: must be \"\" or an http:// or https:// URL");
    n = r->tsa_timeout_ms;
    if (!rc)
        rc = hr_cfg_get_int(v, "tsa_timeout_ms", "reports.", 100, 120000, &n, err, ecap);
    r->tsa_timeout_ms = (int)n;
    n = r->sign_session_s;
    if (!rc)
        rc = hr_cfg_get_int(v, "sign_session_s", "reports.", 0, 0, &n, err, ecap);
    r->sign_session_s = (int)n;
    n = r->cert_days;
    if (!rc)
        rc = hr_cfg_get_int(v, "cert_days", "reports.", 1, 3650, &n, err, ecap);
    r->cert_days = (int)n;
    return rc;
}

/* The directories that follow data_dir when not set. */
static int validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    struct rpt_config *r = c->reports;
    if (!r)
        return hr_cfg_fail(err, ecap, "reports: missing");
    if (!r->keys_dir[0] && (size_t)snprintf(r->keys_dir, sizeof(r->keys_dir), "%s/keys",
                                            c->data_dir) >= sizeof(r->keys_dir))
        return hr_cfg_fail(err, ecap, "reports.keys_dir: data_dir too long");
    if (!r->ca_dir[0] &&
        (size_t)snprintf(r->ca_dir, sizeof(r->ca_dir), "%s/ca", c->data_dir) >= sizeof(r->ca_dir))
        return hr_cfg_fail(err, ecap, "reports.ca_dir: data_dir too long");
    return 0;
}

static void release(hr_config *c)
{
    free(c->reports);
    c->reports = NULL;
}

int rpt_config_trust_path(const hr_config *cfg, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/trust.pem", cfg->reports->ca_dir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

const hr_config_section rpt_config_reports = {
    .name = "reports",
    .defaults = "{\"keys_dir\": \"\", \"ca_dir\": \"\", \"tsa_url\": \"\", \"tsa_timeout_ms\": "
                "10000, \"sign_session_s\": 0, \"cert_days\": 730}",
    .parse = parse,
    .validate = validate,
    .free = release,
};
