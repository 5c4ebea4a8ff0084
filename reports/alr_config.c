/* alerts.*: critical-value contacts and channels (decision 0040).
 *
 *   key                                     default  rule
 *   alerts.ack_timeout_s                    600      1..86400
 *   alerts.poll_ms                          1000     50..60000
 *   alerts.batch                            50       1..1000
 *   alerts.retry_s                          30       1..3600
 *   alerts.hl7_timeout_s                    30       1..3600
 *   alerts.webhook_timeout_s                30       1..3600
 *   alerts.hospitals.<id>                   {}       <id> one of hospitals[].id
 *   alerts.hospitals.<id>.ack_timeout_s     absent   1..86400 (else alerts.ack_timeout_s)
 *   alerts.hospitals.<id>.contacts          []       [{user, name, channels}] at most 16;
 *                                                    channels: non-empty of sse hl7 webhook
 *   alerts.hospitals.<id>.hl7               absent   {host, port, receiving_application,
 *                                                    receiving_facility}
 *   alerts.hospitals.<id>.webhook           absent   {url (https, or http to loopback), bearer}
 *   alerts.duty                             {}       {<center id or kind>: user}
 *
 * Meaning: docs/configuration.md. */
#include "alr_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void alr_free_lists(struct alr_config *a)
{
    free(a->hospitals);
    a->hospitals = NULL;
    a->n_hospitals = 0;
    free(a->duty);
    a->duty = NULL;
    a->n_duty = 0;
}

static void alr_init(hr_config *c)
{
    c->alerts = calloc(1, sizeof(*c->alerts)); /* NULL: parse answers -ENOMEM */
}

static void alr_free(hr_config *c)
{
    if (c->alerts)
        alr_free_lists(c->alerts);
    free(c->alerts);
    c->alerts = NULL;
}

/* An HL7 HD value we write into MSH: printable, none of the delimiters. */
static int hd_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F || strchr("|^~\\&", *s))
            return 0;
    return 1;
}

/* http(s)://host...: plain http only to a loopback host. 0 or HR_ECONFIG. */
static int url_ok(const char *url, const char *where, char *err, size_t ecap)
{
    int https = strncasecmp(url, "https://", 8) == 0;
    const char *p = https ? url + 8 : strncasecmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    char host[HR_NAME_MAX];
    if (!p)
        return hr_cfg_fail(err, ecap, "%s: \"%s\" is not an http(s):// URL", where, url);
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7F)
            return hr_cfg_fail(err, ecap, "%s: printable ASCII without spaces", where);
    size_t auth = strcspn(p, "/?#");
    if (memchr(p, '@', auth))
        return hr_cfg_fail(err, ecap, "%s: no credentials in the URL (use bearer)", where);
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        p++;
    } else {
        end = p + strcspn(p, ":/?#");
    }
    if (!end || end <= p || (size_t)(end - p) >= sizeof(host))
        return hr_cfg_fail(err, ecap, "%s: no host in \"%s\"", where, url);
    memcpy(host, p, (size_t)(end - p));
    host[end - p] = '\0';
    if (!https && !hr_addr_is_loopback(host) && strcasecmp(host, "localhost") != 0)
        return hr_cfg_fail(err, ecap, "%s: plain http only to a loopback address", where);
    return 0;
}

static int parse_contact(json_t *o, const char *where, alr_contact *ct, char *err, size_t ecap)
{
    static const char *const keys[] = {"user", "name", "channels", NULL};
    char w[200];
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "%s: must be an object {user, name, channels}", where);
    snprintf(w, sizeof(w), "%s.", where);
    int rc = hr_cfg_check_keys(o, w, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "user"))
        return hr_cfg_fail(err, ecap, "%s.user: required", where);
    rc = hr_cfg_get_str(o, "user", w, ct->user, sizeof(ct->user), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "name", w, ct->name, sizeof(ct->name), 1, err, ecap);
    if (rc)
        return rc;
    json_t *ch = json_object_get(o, "channels");
    ct->channels = ALR_CH_SSE;
    if (ch) {
        size_t i;
        json_t *x;
        if (!json_is_array(ch) || json_array_size(ch) == 0)
            return hr_cfg_fail(err, ecap, "%s.channels: a non-empty list of sse, hl7, webhook",
                               where);
        ct->channels = 0;
        json_array_foreach(ch, i, x)
        {
            const char *s = json_string_value(x);
            int bit = !s                          ? 0
                      : strcmp(s, "sse") == 0     ? ALR_CH_SSE
                      : strcmp(s, "hl7") == 0     ? ALR_CH_HL7
                      : strcmp(s, "webhook") == 0 ? ALR_CH_WEBHOOK
                                                  : 0;
            if (!bit)
                return hr_cfg_fail(err, ecap, "%s.channels[%zu]: must be sse, hl7 or webhook",
                                   where, i);
            ct->channels |= bit;
        }
    }
    return 0;
}

static int parse_hospital(json_t *o, const char *where, alr_hospital *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"ack_timeout_s", "contacts", "hl7", "webhook", NULL};
    static const char *const hkeys[] = {"host", "port", "receiving_application",
                                        "receiving_facility", NULL};
    static const char *const wkeys[] = {"url", "bearer", NULL};
    char w[200], w2[220];
    long long x = 0;
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "%s: must be an object {contacts, hl7, webhook}", where);
    snprintf(w, sizeof(w), "%s.", where);
    int rc = hr_cfg_check_keys(o, w, keys, err, ecap);
    if (rc)
        return rc;
    if (json_object_get(o, "ack_timeout_s")) {
        rc = hr_cfg_get_int(o, "ack_timeout_s", w, 1, 86400, &x, err, ecap);
        if (rc)
            return rc;
        h->ack_timeout_s = (int)x;
    }
    json_t *cs = json_object_get(o, "contacts");
    if (cs) {
        size_t i;
        json_t *e;
        if (!json_is_array(cs) || json_array_size(cs) > ALR_CONTACTS_MAX)
            return hr_cfg_fail(err, ecap, "%s.contacts: a list of at most %d contacts", where,
                               ALR_CONTACTS_MAX);
        json_array_foreach(cs, i, e)
        {
            snprintf(w2, sizeof(w2), "%s.contacts[%zu]", where, i);
            rc = parse_contact(e, w2, &h->contacts[h->n_contacts++], err, ecap);
            if (rc)
                return rc;
        }
    }
    json_t *hl = json_object_get(o, "hl7");
    if (hl) {
        snprintf(w2, sizeof(w2), "%s.hl7.", where);
        if (!json_is_object(hl))
            return hr_cfg_fail(err, ecap, "%s.hl7: must be an object {host, port}", where);
        rc = hr_cfg_check_keys(hl, w2, hkeys, err, ecap);
        if (!rc && (!json_object_get(hl, "host") || !json_object_get(hl, "port")))
            rc = hr_cfg_fail(err, ecap, "%s.hl7: host and port are required", where);
        if (!rc)
            rc = hr_cfg_get_str(hl, "host", w2, h->hl7_host, sizeof(h->hl7_host), 0, err, ecap);
        if (!rc)
            rc = hr_cfg_get_int(hl, "port", w2, 1, 65535, &x, err, ecap);
        if (!rc)
            rc = hr_cfg_get_str(hl, "receiving_application", w2, h->hl7_application,
                                sizeof(h->hl7_application), 1, err, ecap);
        if (!rc)
            rc = hr_cfg_get_str(hl, "receiving_facility", w2, h->hl7_facility,
                                sizeof(h->hl7_facility), 1, err, ecap);
        if (rc)
            return rc;
        if (!hd_ok(h->hl7_application) || !hd_ok(h->hl7_facility))
            return hr_cfg_fail(err, ecap, "%s.hl7: receiving_* may not hold | ^ ~ \\ &", where);
        h->hl7_port = (int)x;
        h->hl7_on = 1;
    }
    json_t *wh = json_object_get(o, "webhook");
    if (wh) {
        snprintf(w2, sizeof(w2), "%s.webhook.", where);
        if (!json_is_object(wh))
            return hr_cfg_fail(err, ecap, "%s.webhook: must be an object {url, bearer}", where);
        rc = hr_cfg_check_keys(wh, w2, wkeys, err, ecap);
        if (!rc && !json_object_get(wh, "url"))
            rc = hr_cfg_fail(err, ecap, "%s.webhook.url: required", where);
        if (!rc)
            rc =
                hr_cfg_get_str(wh, "url", w2, h->webhook_url, sizeof(h->webhook_url), 0, err, ecap);
        if (!rc)
            rc = hr_cfg_get_str(wh, "bearer", w2, h->webhook_bearer, sizeof(h->webhook_bearer), 1,
                                err, ecap);
        if (!rc) {
            snprintf(w2, sizeof(w2), "%s.webhook.url", where);
            rc = url_ok(h->webhook_url, w2, err, ecap);
        }
        if (rc)
            return rc;
        for (const char *p = h->webhook_bearer; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
                return hr_cfg_fail(err, ecap, "%s.webhook.bearer: printable ASCII, no spaces",
                                   where);
        h->webhook_on = 1;
    }
    return 0;
}

static int alr_parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"ack_timeout_s", "poll_ms",       "batch",
                                       "retry_s",       "hl7_timeout_s", "webhook_timeout_s",
                                       "hospitals",     "duty",          NULL};
    struct alr_config *a = c->alerts;
    long long x;
    int rc;
    if (!a)
        return -ENOMEM;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    rc = hr_cfg_check_keys(v, "alerts.", keys, err, ecap);
    if (rc)
        return rc;
#define INT_KEY(name, lo, hi)                                                                      \
    do {                                                                                           \
        x = a->name;                                                                               \
        rc = hr_cfg_get_int(v, #name, "alerts.", lo, hi, &x, err, ecap);                           \
        if (rc)                                                                                    \
            return rc;                                                                             \
        a->name = (int)x;                                                                          \
    } while (0)
    INT_KEY(ack_timeout_s, 1, 86400);
    INT_KEY(poll_ms, 50, 60000);
    INT_KEY(batch, 1, 1000);
    INT_KEY(retry_s, 1, 3600);
    INT_KEY(hl7_timeout_s, 1, 3600);
    INT_KEY(webhook_timeout_s, 1, 3600);
#undef INT_KEY
    json_t *hs = json_object_get(v, "hospitals");
    if (hs) {
        const char *id;
        json_t *o;
        char where[160];
        if (!json_is_object(hs))
            return hr_cfg_fail(err, ecap, "alerts.hospitals: must be an object {hospital id: {}}");
        free(a->hospitals);
        a->n_hospitals = 0;
        a->hospitals = calloc(json_object_size(hs) + 1, sizeof(*a->hospitals));
        if (!a->hospitals)
            return -ENOMEM;
        json_object_foreach(hs, id, o)
        {
            alr_hospital *h = &a->hospitals[a->n_hospitals++];
            snprintf(where, sizeof(where), "alerts.hospitals.%s", id);
            if (strlen(id) >= sizeof(h->id))
                return hr_cfg_fail(err, ecap, "%s: hospital id too long", where);
            snprintf(h->id, sizeof(h->id), "%s", id);
            rc = parse_hospital(o, where, h, err, ecap);
            if (rc)
                return rc;
        }
    }
    json_t *ds = json_object_get(v, "duty");
    if (ds) {
        const char *key;
        json_t *u;
        if (!json_is_object(ds))
            return hr_cfg_fail(err, ecap, "alerts.duty: must be an object {center: user}");
        free(a->duty);
        a->n_duty = 0;
        a->duty = calloc(json_object_size(ds) + 1, sizeof(*a->duty));
        if (!a->duty)
            return -ENOMEM;
        json_object_foreach(ds, key, u)
        {
            alr_duty *d = &a->duty[a->n_duty++];
            char where[160];
            snprintf(where, sizeof(where), "alerts.duty.%s", key);
            if (strlen(key) >= sizeof(d->key))
                return hr_cfg_fail(err, ecap, "%s: center id too long", where);
            snprintf(d->key, sizeof(d->key), "%s", key);
            rc = hr_cfg_str(u, where, d->user, sizeof(d->user), 0, err, ecap);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int alr_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const struct alr_config *a = c->alerts;
    (void)user;
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < a->n_hospitals; i++) {
        const alr_hospital *h = &a->hospitals[i];
        if (!hr_config_hospital(c, h->id))
            return hr_cfg_fail(err, ecap, "alerts.hospitals.%s: not one of hospitals[].id", h->id);
        for (size_t k = 0; k < h->n_contacts; k++) {
            if ((h->contacts[k].channels & ALR_CH_HL7) && !h->hl7_on)
                return hr_cfg_fail(err, ecap,
                                   "alerts.hospitals.%s.contacts[%zu]: channel hl7 needs "
                                   "alerts.hospitals.%s.hl7",
                                   h->id, k, h->id);
            if ((h->contacts[k].channels & ALR_CH_WEBHOOK) && !h->webhook_on)
                return hr_cfg_fail(err, ecap,
                                   "alerts.hospitals.%s.contacts[%zu]: channel webhook needs "
                                   "alerts.hospitals.%s.webhook",
                                   h->id, k, h->id);
        }
    }
    for (size_t i = 0; i < a->n_duty; i++)
        if (!hr_config_center(c, a->duty[i].key) && hr_center_kind_parse(a->duty[i].key) < 0)
            return hr_cfg_fail(err, ecap,
                               "alerts.duty.%s: neither a centers[].id nor a center kind "
                               "(imaging, ecg, pathology, lab)",
                               a->duty[i].key);
    return 0;
}

const alr_hospital *rpt_alr_config_hospital(const struct alr_config *a, const char *id)
{
    for (size_t i = 0; a && id && i < a->n_hospitals; i++)
        if (strcmp(a->hospitals[i].id, id) == 0)
            return &a->hospitals[i];
    return NULL;
}

const char *rpt_alr_config_duty(const hr_config *cfg, const char *center)
{
    const struct alr_config *a = cfg->alerts;
    const hr_center *ce = center && *center ? hr_config_center(cfg, center) : NULL;
    if (!a || !ce)
        return NULL;
    for (size_t i = 0; i < a->n_duty; i++)
        if (strcmp(a->duty[i].key, ce->id) == 0)
            return a->duty[i].user;
    for (size_t i = 0; i < a->n_duty; i++)
        if (strcmp(a->duty[i].key, hr_center_kind_name(ce->kind)) == 0)
            return a->duty[i].user;
    return NULL;
}

const hr_config_section rpt_alr_config_section = {
    .name = "alerts",
    .defaults = "{\"ack_timeout_s\": 600, \"poll_ms\": 1000, \"batch\": 50, \"retry_s\": 30,"
                " \"hl7_timeout_s\": 30, \"webhook_timeout_s\": 30, \"hospitals\": {},"
                " \"duty\": {}}",
    .parse = alr_parse,
    .init = alr_init,
    .validate = alr_validate,
    .free = alr_free,
};
