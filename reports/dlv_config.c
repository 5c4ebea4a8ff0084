/* delivery.*: channels per source hospital, retries, timeouts (decision 0026).
 *
 *   key                                   default  rule
 *   delivery.retry_initial_s              10       1..86400
 *   delivery.retry_max_s                  3600     retry_initial_s..604800
 *   delivery.failing_after                5        1..1000000
 *   delivery.lease_s                      300      >= 2 x the largest timeout, ..86400
 *   delivery.poll_ms                      1000     50..60000
 *   delivery.batch                        16       1..1000
 *   delivery.hl7_timeout_s                30       1..3600
 *   delivery.dicom_timeout_s              120      1..3600
 *   delivery.webhook_timeout_s            30       1..3600
 *   delivery.report_base_url              ""       "" or http(s)://host[:port][/path]
 *   delivery.hospitals.<id>               {}       <id> one of hospitals[].id
 *   delivery.hospitals.<id>.hl7           absent   {host, port, receiving_application,
 *                                                   receiving_facility}
 *   delivery.hospitals.<id>.dicom         absent   {ae_title (a destination of <id>),
 *                                                   what: ["sr", "pdf"] (non-empty)}
 *   delivery.hospitals.<id>.webhook       absent   {url (https, or http to loopback),
 *                                                   bearer, ca_file}
 *
 * Meaning: docs/configuration.md. The section's fields live behind
 * cfg->delivery, so every key is a custom one. */
#include "dlv_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int need(hr_config *c)
{
    if (!c->delivery)
        c->delivery = calloc(1, sizeof(*c->delivery));
    return c->delivery ? 0 : -ENOMEM;
}

static int get_int(json_t *v, const char *path, long long lo, long long hi, int *dst, char *err,
                   size_t ecap)
{
    long long x = 0;
    int rc = hr_cfg_int(v, path, lo, hi, &x, err, ecap);
    if (!rc)
        *dst = (int)x;
    return rc;
}

#define INT_KEY(field, lo, hi)                                                                     \
    static int parse_##field(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)    \
    {                                                                                              \
        int rc = need(c);                                                                          \
        return rc ? rc : get_int(v, path, lo, hi, &c->delivery->field, err, ecap);                 \
    }

INT_KEY(retry_initial_s, 1, 86400)
INT_KEY(retry_max_s, 1, 604800)
INT_KEY(failing_after, 1, 1000000)
INT_KEY(lease_s, 2, 86400)
INT_KEY(poll_ms, 50, 60000)
INT_KEY(batch, 1, 1000)
INT_KEY(hl7_timeout_s, 1, 3600)
INT_KEY(dicom_timeout_s, 1, 3600)
INT_KEY(webhook_timeout_s, 1, 3600)

/* scheme://host[:port][/...]: *host (cap) and whether it is https. 0 or -1. */
static int split_url(const char *url, int *https, char *host, size_t cap)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        *https = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        *https = 0;
        p = url + 7;
    } else {
        return -1;
    }
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7F)
            return -1;
    size_t auth = strcspn(p, "/?#");
    if (memchr(p, '@', auth))
        return -1; /* no credentials in the URL: bearer is the place for a secret */
    const char *end;
    if (*p == '[') { /* IPv6 literal */
        end = strchr(p, ']');
        if (!end)
            return -1;
        p++;
    } else {
        end = p + strcspn(p, ":/?#");
    }
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(host, p, n);
    host[n] = '\0';
    return 0;
}

static int parse_base_url(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    int rc = need(c), https;
    char host[HR_NAME_MAX];
    if (!rc)
        rc = hr_cfg_str(v, path, c->delivery->report_base_url, sizeof(c->delivery->report_base_url),
                        1, err, ecap);
    if (!rc && c->delivery->report_base_url[0] &&
        split_url(c->delivery->report_base_url, &https, host, sizeof(host)))
        rc = hr_cfg_fail(err, ecap, "%s: \"%s\" is not an http(s)://host[:port][/path] URL", path,
                         c->delivery->report_base_url);
    return rc;
}

/* An HL7 HD value we write into MSH: printable, none of the delimiters. */
static int hd_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F || strchr("|^~\\&", *s))
            return 0;
    return 1;
}

static int parse_hl7(json_t *o, const char *where, dlv_hl7 *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"host", "port", "receiving_application",
                                       "receiving_facility", NULL};
    long long port = 0;
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "%s: must be an object", where);
    char w[160];
    snprintf(w, sizeof(w), "%s.", where);
    int rc = hr_cfg_check_keys(o, w, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "host") || !json_object_get(o, "port"))
        return hr_cfg_fail(err, ecap, "%s: host and port are required", where);
    rc = hr_cfg_get_str(o, "host", w, h->host, sizeof(h->host), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_int(o, "port", w, 1, 65535, &port, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "receiving_application", w, h->receiving_application,
                            sizeof(h->receiving_application), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "receiving_facility", w, h->receiving_facility,
                            sizeof(h->receiving_facility), 1, err, ecap);
    if (rc)
        return rc;
    if (!hd_ok(h->receiving_application) || !hd_ok(h->receiving_facility))
        return hr_cfg_fail(err, ecap,
                           "%s: receiving_application and receiving_facility may not hold "
                           "control characters nor any of | ^ ~ \\ &",
                           where);
    h->port = (int)port;
    h->on = 1;
    return 0;
}

static int parse_dicom(json_t *o, const char *where, dlv_dicom *d, char *err, size_t ecap)
{
    static const char *const keys[] = {"ae_title", "what", NULL};
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "%s: must be an object", where);
    char w[160];
    snprintf(w, sizeof(w), "%s.", where);
    int rc = hr_cfg_check_keys(o, w, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "ae_title"))
        return hr_cfg_fail(err, ecap, "%s.ae_title: required", where);
    rc = hr_cfg_get_str(o, "ae_title", w, d->ae_title, sizeof(d->ae_title), 0, err, ecap);
    if (rc)
        return rc;
    json_t *what = json_object_get(o, "what");
    d->what = DLV_WHAT_SR;
    if (what) {
        if (!json_is_array(what) || json_array_size(what) == 0)
            return hr_cfg_fail(err, ecap, "%s.what: a non-empty list of \"sr\" and \"pdf\"", where);
        d->what = 0;
        size_t i;
        json_t *x;
        json_array_foreach(what, i, x)
        {
            const char *s = json_string_value(x);
            int bit = !s                      ? 0
                      : strcmp(s, "sr") == 0  ? DLV_WHAT_SR
                      : strcmp(s, "pdf") == 0 ? DLV_WHAT_PDF
                                              : 0;
            if (!bit)
                return hr_cfg_fail(err, ecap, "%s.what[%zu]: must be \"sr\" or \"pdf\"", where, i);
            d->what |= bit;
        }
    }
    d->on = 1;
    return 0;
}

static int parse_webhook(json_t *o, const char *where, dlv_webhook *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"url", "bearer", "ca_file", NULL};
    char host[HR_NAME_MAX];
    int https = 0;
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "%s: must be an object", where);
    char w[160];
    snprintf(w, sizeof(w), "%s.", where);
    int rc = hr_cfg_check_keys(o, w, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "url"))
        return hr_cfg_fail(err, ecap, "%s.url: required", where);
    rc = hr_cfg_get_str(o, "url", w, h->url, sizeof(h->url), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "bearer", w, h->bearer, sizeof(h->bearer), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "ca_file", w, h->ca_file, sizeof(h->ca_file), 1, err, ecap);
    if (rc)
        return rc;
    for (const char *p = h->bearer; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
            return hr_cfg_fail(err, ecap, "%s.bearer: printable ASCII without spaces", where);
    if (split_url(h->url, &https, host, sizeof(host)))
        return hr_cfg_fail(err, ecap, "%s.url: \"%s\" is not an http(s)://host[:port][/path] URL",
                           where, h->url);
    if (!https && !hr_addr_is_loopback(host) && strcasecmp(host, "localhost") != 0)
        return hr_cfg_fail(err, ecap,
                           "%s.url: plain http only to a loopback address; use https for \"%s\"",
                           where, host);
    h->on = 1;
    return 0;
}

static void free_hospitals(struct dlv_config *d)
{
    free(d->hospitals);
    d->hospitals = NULL;
    d->n_hospitals = 0;
}

/* The file's object replaces the default one (like centers[]). */
static int parse_hospitals(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"hl7", "dicom", "webhook", NULL};
    int rc = need(c);
    if (rc)
        return rc;
    struct dlv_config *d = c->delivery;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object {hospital id: channels}", path);
    free_hospitals(d);
    size_t n = json_object_size(v);
    d->hospitals = calloc(n ? n : 1, sizeof(*d->hospitals));
    if (!d->hospitals)
        return -ENOMEM;
    const char *id;
    json_t *o;
    json_object_foreach(v, id, o)
    {
        dlv_hospital *h = &d->hospitals[d->n_hospitals++];
        char where[160], w[160];
        snprintf(where, sizeof(where), "%s.%s", path, id);
        if (strlen(id) >= sizeof(h->id))
            return hr_cfg_fail(err, ecap, "%s: hospital id longer than %zu characters", where,
                               sizeof(h->id) - 1);
        snprintf(h->id, sizeof(h->id), "%s", id);
        if (!json_is_object(o))
            return hr_cfg_fail(err, ecap, "%s: must be an object {hl7, dicom, webhook}", where);
        snprintf(w, sizeof(w), "%s.", where);
        rc = hr_cfg_check_keys(o, w, keys, err, ecap);
        if (rc)
            return rc;
        json_t *x = json_object_get(o, "hl7");
        if (x) {
            snprintf(w, sizeof(w), "%s.hl7", where);
            rc = parse_hl7(x, w, &h->hl7, err, ecap);
        }
        x = json_object_get(o, "dicom");
        if (!rc && x) {
            snprintf(w, sizeof(w), "%s.dicom", where);
            rc = parse_dicom(x, w, &h->dicom, err, ecap);
        }
        x = json_object_get(o, "webhook");
        if (!rc && x) {
            snprintf(w, sizeof(w), "%s.webhook", where);
            rc = parse_webhook(x, w, &h->webhook, err, ecap);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static const hr_cfg_key k_keys[] = {
    HR_CFG_KEY_CUSTOM("retry_initial_s", parse_retry_initial_s),
    HR_CFG_KEY_CUSTOM("retry_max_s", parse_retry_max_s),
    HR_CFG_KEY_CUSTOM("failing_after", parse_failing_after),
    HR_CFG_KEY_CUSTOM("lease_s", parse_lease_s),
    HR_CFG_KEY_CUSTOM("poll_ms", parse_poll_ms),
    HR_CFG_KEY_CUSTOM("batch", parse_batch),
    HR_CFG_KEY_CUSTOM("hl7_timeout_s", parse_hl7_timeout_s),
    HR_CFG_KEY_CUSTOM("dicom_timeout_s", parse_dicom_timeout_s),
    HR_CFG_KEY_CUSTOM("webhook_timeout_s", parse_webhook_timeout_s),
    HR_CFG_KEY_CUSTOM("report_base_url", parse_base_url),
    HR_CFG_KEY_CUSTOM("hospitals", parse_hospitals),
    HR_CFG_KEY_END,
};

static void dlv_init(hr_config *c)
{
    need(c); /* a failure is reported by the first parse */
}

static int dlv_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    int rc = need(c);
    if (rc)
        return rc;
    struct dlv_config *d = c->delivery;
    if (d->retry_max_s < d->retry_initial_s)
        return hr_cfg_fail(err, ecap, "delivery.retry_max_s: %d is less than retry_initial_s (%d)",
                           d->retry_max_s, d->retry_initial_s);
    int longest = d->hl7_timeout_s;
    if (d->dicom_timeout_s > longest)
        longest = d->dicom_timeout_s;
    if (d->webhook_timeout_s > longest)
        longest = d->webhook_timeout_s;
    if (d->lease_s < 2 * longest)
        return hr_cfg_fail(err, ecap,
                           "delivery.lease_s: %d is less than twice the longest attempt timeout "
                           "(%d s): another node could start the same attempt",
                           d->lease_s, longest);
    for (size_t i = 0; i < d->n_hospitals; i++) {
        dlv_hospital *h = &d->hospitals[i];
        const hr_hospital *hh = hr_config_hospital(c, h->id);
        if (!hh)
            return hr_cfg_fail(err, ecap, "delivery.hospitals.%s: not one of hospitals[].id",
                               h->id);
        if (h->dicom.on) {
            int found = 0;
            for (size_t k = 0; k < hh->n_dest; k++)
                if (strcmp(hh->destinations[k].ae_title, h->dicom.ae_title) == 0)
                    found = 1;
            if (!found)
                return hr_cfg_fail(err, ecap,
                                   "delivery.hospitals.%s.dicom.ae_title: \"%s\" is not one of "
                                   "that hospital's destinations",
                                   h->id, h->dicom.ae_title);
        }
    }
    return 0;
}

static void dlv_free(hr_config *c)
{
    if (!c->delivery)
        return;
    free_hospitals(c->delivery);
    free(c->delivery);
    c->delivery = NULL;
}

const hr_config_section rpt_dlv_config_section = {
    .name = "delivery",
    .defaults = "{\"retry_initial_s\": 10, \"retry_max_s\": 3600, \"failing_after\": 5,"
                " \"lease_s\": 300, \"poll_ms\": 1000, \"batch\": 16, \"hl7_timeout_s\": 30,"
                " \"dicom_timeout_s\": 120, \"webhook_timeout_s\": 30, \"report_base_url\": \"\","
                " \"hospitals\": {}}",
    .keys = k_keys,
    .init = dlv_init,
    .validate = dlv_validate,
    .free = dlv_free,
};

const dlv_hospital *rpt_dlv_config_hospital(const struct dlv_config *d, const char *id)
{
    if (!d || !id)
        return NULL;
    for (size_t i = 0; i < d->n_hospitals; i++)
        if (strcmp(d->hospitals[i].id, id) == 0)
            return &d->hospitals[i];
    return NULL;
}
