#include "hr_config.h"
#include "hr_err.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char k_default_json[] =
    "{\n"
    "  \"data_dir\": \"./huren-data\",\n"
    "  \"log_level\": \"info\",\n"
    "  \"redis\": {\"url\": \"\", \"server\": \"redis-server\", \"appendfsync\": \"everysec\",\n"
    "            \"connect_timeout_ms\": 5000},\n"
    "  \"dicom\": {\"listen\": \"0.0.0.0\", \"port\": 11112, \"ae_title\": \"HUREN\",\n"
    "            \"hospital\": \"county\", \"max_associations\": 64, \"max_per_address\": 16,\n"
    "            \"max_pdu\": 262144,\n"
    "            \"idle_timeout_s\": 120, \"artim_timeout_s\": 30,\n"
    "            \"max_object_bytes\": 8589934592,\n"
    "            \"accept_unknown_storage\": true},\n"
    "  \"http\": {\"port\": 8080, \"tls_cert\": \"\", \"tls_key\": \"\",\n"
    "           \"insecure_listen\": false,\n"
    "           \"max_body_bytes\": 4294967296, \"token_ttl_s\": 28800,\n"
    "           \"max_connections\": 1024, \"cors_origins\": []},\n"
    "  \"auth\": {\"kdf_iterations\": 600000, \"kdf_threads\": 2, \"kdf_queue\": 32,\n"
    "           \"kdf_threads_ingesting\": 1, \"kdf_idle\": true,\n"
    "           \"login_window_s\": 60, \"login_per_address\": 30, \"login_per_user\": 10},\n"
    "  \"hl7\": {\"listen\": \"0.0.0.0\", \"port\": 2575},\n"
    "  \"hospitals\": [\n"
    "    {\"id\": \"county\", \"name\": \"示范县人民医院 (Demo County People's Hospital)\",\n"
    "     \"level\": \"county\", \"ae_titles\": [\"COUNTY_PACS\"],\n"
    "     \"addresses\": [\"127.0.0.1\", \"::1\"]},\n"
    "    {\"id\": \"township1\", \"name\": \"城关镇卫生院 (Chengguan Township Health Center)\",\n"
    "     \"level\": \"township\", \"ae_titles\": [\"TOWNSHIP1\"],\n"
    "     \"addresses\": [\"127.0.0.1\", \"::1\"]},\n"
    "    {\"id\": \"township2\", \"name\": \"河口乡卫生院 (Hekou Township Health Center)\",\n"
    "     \"level\": \"township\", \"ae_titles\": [\"TOWNSHIP2\"],\n"
    "     \"addresses\": [\"127.0.0.1\", \"::1\"]}\n"
    "  ],\n"
    "  \"centers\": [\n"
    "    {\"id\": \"imaging\", \"name\": \"医学影像中心 (Imaging Center)\", \"kind\": "
    "\"imaging\",\n"
    "     \"hospital\": \"county\", \"audit_signoff\": true},\n"
    "    {\"id\": \"ecg\", \"name\": \"心电诊断中心 (ECG Center)\", \"kind\": \"ecg\",\n"
    "     \"hospital\": \"county\", \"audit_signoff\": false},\n"
    "    {\"id\": \"pathology\", \"name\": \"病理诊断中心 (Pathology Center)\",\n"
    "     \"kind\": \"pathology\", \"hospital\": \"county\", \"audit_signoff\": true},\n"
    "    {\"id\": \"lab\", \"name\": \"医学检验中心 (Laboratory Center)\", \"kind\": \"lab\",\n"
    "     \"hospital\": \"county\", \"audit_signoff\": true}\n"
    "  ],\n"
    "  \"routing\": {\n"
    "    \"rules\": [\n"
    "      {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", "
    "\"1.2.840.10008.5.1.4.1.1.9.1.2\"],\n"
    "       \"procedures\": [\"胸痛\", \"chest pain\"], \"center\": \"ecg\", \"priority\": "
    "\"stat\"},\n"
    "      {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", "
    "\"1.2.840.10008.5.1.4.1.1.9.1.2\"],\n"
    "       \"center\": \"ecg\", \"priority\": \"routine\"},\n"
    "      {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.77.1.6\"],\n"
    "       \"center\": \"pathology\", \"priority\": \"routine\"},\n"
    "      {\"modalities\": [\"CT\", \"MR\"], \"procedures\": [\"卒中\", \"stroke\"],\n"
    "       \"center\": \"imaging\", \"priority\": \"stat\"}\n"
    "    ],\n"
    "    \"default\": {\"center\": \"imaging\", \"priority\": \"routine\"}\n"
    "  },\n"
    "  \"worklist\": {\"quiet_s\": 30, \"quiet_by_modality\": {\"ECG\": 5}, \"lease_s\": 600,\n"
    "    \"min_lease_s\": 30, \"turnaround_unit_s\": 60,\n"
    "    \"turnaround_min\": {\n"
    "      \"imaging\": {\"stat\": 30, \"urgent\": 120, \"routine\": 1440},\n"
    "      \"ecg\": {\"stat\": 10, \"urgent\": 30, \"routine\": 240},\n"
    "      \"pathology\": {\"stat\": 30, \"urgent\": 1440, \"routine\": 4320},\n"
    "      \"lab\": {\"stat\": 30, \"urgent\": 120, \"routine\": 720}}}\n"
    "}\n";

const char *hr_config_default_json(void)
{
    return k_default_json;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return HR_ECONFIG;
}

/* Every key the file may contain; anything else is a typo and an error. */
static int check_keys(json_t *obj, const char *where, const char *const *allowed, char *err,
                      size_t cap)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok)
            return fail(err, cap, "%s%s: unknown key", where, key);
    }
    return 0;
}

static int get_str(json_t *obj, const char *key, const char *where, char *dst, size_t cap,
                   int allow_empty, char *err, size_t ecap)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(err, ecap, "%s%s: must be a string", where, key);
    const char *s = json_string_value(v);
    if (strlen(s) >= cap)
        return fail(err, ecap, "%s%s: longer than %zu characters", where, key, cap - 1);
    if (!allow_empty && !*s)
        return fail(err, ecap, "%s%s: must not be empty", where, key);
    strcpy(dst, s);
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *where, long long lo, long long hi,
                   long long *dst, char *err, size_t ecap)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return fail(err, ecap, "%s%s: must be an integer", where, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(err, ecap, "%s%s: %lld is outside %lld..%lld", where, key, x, lo, hi);
    *dst = x;
    return 0;
}

static int get_listen(json_t *root, const char *name, hr_listen *l, char *err, size_t ecap)
{
    static const char *const keys[] = {"listen",
                                       "port",
                                       "ae_title",
                                       "hospital",
                                       "max_associations",
                                       "max_per_address",
                                       "reserved_associations",
                                       "max_pdu",
                                       "idle_timeout_s",
                                       "artim_timeout_s",
                                       "max_object_bytes",
                                       "accept_unknown_storage",
                                       NULL};
    static const char *const http_keys[] = {
        "listen",          "port",        "tls_cert",        "tls_key",
        "max_body_bytes",  "token_ttl_s", "max_connections", "cors_origins",
        "insecure_listen", NULL};
    static const char *const plain[] = {"listen", "port", NULL};
    char where[32];
    json_t *o = json_object_get(root, name);
    if (!o)
        return 0;
    snprintf(where, sizeof(where), "%s.", name);
    if (!json_is_object(o))
        return fail(err, ecap, "%s: must be an object", name);
    int rc = check_keys(o, where,
                        strcmp(name, "dicom") == 0  ? keys
                        : strcmp(name, "http") == 0 ? http_keys
                                                    : plain,
                        err, ecap);
    if (rc)
        return rc;
    rc = get_str(o, "listen", where, l->host, sizeof(l->host), 0, err, ecap);
    if (rc)
        return rc;
    struct in6_addr a6;
    /* http.listen has no fixed default: validate() picks one */
    if (l->host[0] && inet_pton(AF_INET, l->host, &a6) != 1 &&
        inet_pton(AF_INET6, l->host, &a6) != 1)
        return fail(err, ecap, "%slisten: \"%s\" is not an IPv4 or IPv6 address", where, l->host);
    long long port = l->port;
    rc = get_int(o, "port", where, 1, 65535, &port, err, ecap);
    l->port = (int)port;
    return rc;
}

int hr_cidr_parse(const char *s, hr_cidr *out)
{
    char host[HR_ADDR_MAX];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host))
        return HR_ECONFIG;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof(*out));
    int maxp;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        maxp = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        maxp = 128;
    } else {
        return HR_ECONFIG;
    }
    out->prefix = maxp;
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || p < 0 || p > maxp)
            return HR_ECONFIG;
        out->prefix = (int)p;
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int hr_hospital_allows(const hr_hospital *h, const struct sockaddr *peer)
{
    uint8_t v4[4], v6[16];
    int have4 = 0, have6 = 0;
    if (peer->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)peer)->sin_addr, 4);
        have4 = 1;
    } else if (peer->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
        memcpy(v6, a, 16);
        have6 = 1;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(v4, v6 + 12, 4);
            have4 = 1;
        }
    }
    for (size_t i = 0; i < h->n_addr; i++) {
        const hr_cidr *c = &h->addresses[i];
        if (c->family == AF_INET && have4 && prefix_match(c->addr, v4, c->prefix))
            return 1;
        if (c->family == AF_INET6 && have6 && prefix_match(c->addr, v6, c->prefix))
            return 1;
    }
    return 0;
}

static void free_hospitals(hr_config *c)
{
    for (size_t i = 0; i < c->n_hospitals; i++) {
        free(c->hospitals[i].ae_titles);
        free(c->hospitals[i].addresses);
        free(c->hospitals[i].destinations);
    }
    free(c->hospitals);
    c->hospitals = NULL;
    c->n_hospitals = 0;
}

static int valid_ae(const char *ae)
{
    size_t n = strlen(ae);
    if (n == 0 || n > 16 || ae[0] == ' ' || ae[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ae[i] < 0x20 || (unsigned char)ae[i] > 0x7E || ae[i] == '\\')
            return 0;
    return 1;
}

static int parse_destinations(json_t *ds, const char *where, hr_hospital *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"ae_title", "host", "port", NULL};
    if (ds && !json_is_array(ds))
        return fail(err, ecap, "%sdestinations: must be an array of {ae_title, host, port}", where);
    h->n_dest = ds ? json_array_size(ds) : 0;
    h->destinations = calloc(h->n_dest ? h->n_dest : 1, sizeof(*h->destinations));
    if (!h->destinations)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_dest; i++) {
        json_t *d = json_array_get(ds, i);
        hr_destination *t = &h->destinations[i];
        char w[96];
        snprintf(w, sizeof(w), "%sdestinations[%zu].", where, i);
        if (!json_is_object(d))
            return fail(err, ecap, "%sdestinations[%zu]: must be an object", where, i);
        int rc = check_keys(d, w, keys, err, ecap);
        if (rc)
            return rc;
        if (!json_object_get(d, "ae_title") || !json_object_get(d, "host") ||
            !json_object_get(d, "port"))
            return fail(err, ecap, "%sdestinations[%zu]: ae_title, host and port are required",
                        where, i);
        long long port = 0;
        rc = get_str(d, "ae_title", w, t->ae_title, sizeof(t->ae_title), 0, err, ecap);
        if (!rc && !valid_ae(t->ae_title))
            rc = fail(err, ecap, "%sae_title: must be 1-16 printable ASCII characters", w);
        if (!rc)
            rc = get_str(d, "host", w, t->host, sizeof(t->host), 0, err, ecap);
        if (!rc)
            rc = get_int(d, "port", w, 1, 65535, &port, err, ecap);
        if (rc)
            return rc;
        t->port = (int)port;
    }
    return 0;
}

static void free_cors(hr_config *c)
{
    free(c->http.cors_origins);
    c->http.cors_origins = NULL;
    c->http.n_cors = 0;
}

static int parse_http(json_t *o, hr_config *c, char *err, size_t ecap)
{
    if (!o)
        return 0;
    long long v;
    int rc =
        get_str(o, "tls_cert", "http.", c->http.tls_cert, sizeof(c->http.tls_cert), 1, err, ecap);
    if (!rc)
        rc = get_str(o, "tls_key", "http.", c->http.tls_key, sizeof(c->http.tls_key), 1, err, ecap);
    json_t *il = json_object_get(o, "insecure_listen");
    if (!rc && il && !json_is_boolean(il))
        rc = fail(err, ecap, "http.insecure_listen: must be true or false");
    if (!rc && il)
        c->http.insecure_listen = json_is_true(il);
    v = (long long)c->http.max_body_bytes;
    if (!rc)
        rc = get_int(o, "max_body_bytes", "http.", 1024, (long long)1 << 42, &v, err, ecap);
    c->http.max_body_bytes = (uint64_t)v;
    v = c->http.token_ttl_s;
    if (!rc)
        rc = get_int(o, "token_ttl_s", "http.", 60, 30 * 86400, &v, err, ecap);
    c->http.token_ttl_s = (int)v;
    v = c->http.max_connections;
    if (!rc)
        rc = get_int(o, "max_connections", "http.", 1, 100000, &v, err, ecap);
    c->http.max_connections = (int)v;
    if (rc)
        return rc;
    json_t *co = json_object_get(o, "cors_origins");
    if (co) {
        if (!json_is_array(co))
            return fail(err, ecap, "http.cors_origins: must be an array of origins");
        free_cors(c);
        c->http.n_cors = json_array_size(co);
        c->http.cors_origins = calloc(c->http.n_cors ? c->http.n_cors : 1, HR_NAME_MAX);
        if (!c->http.cors_origins)
            return -ENOMEM;
        for (size_t i = 0; i < c->http.n_cors; i++) {
            json_t *s = json_array_get(co, i);
            if (!json_is_string(s) || !*json_string_value(s) ||
                strlen(json_string_value(s)) >= HR_NAME_MAX)
                return fail(err, ecap, "http.cors_origins[%zu]: must be a non-empty origin", i);
            strcpy(c->http.cors_origins[i], json_string_value(s));
        }
    }
    return 0;
}

static int parse_hospital(json_t *o, size_t idx, hr_hospital *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"id",        "name",         "level", "ae_titles",
                                       "addresses", "destinations", NULL};
    char where[48];
    snprintf(where, sizeof(where), "hospitals[%zu].", idx);
    if (!json_is_object(o))
        return fail(err, ecap, "hospitals[%zu]: must be an object", idx);
    int rc = check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "id"))
        return fail(err, ecap, "%sid: required", where);
    rc = get_str(o, "id", where, h->id, sizeof(h->id), 0, err, ecap);
    if (rc)
        return rc;
    for (const char *p = h->id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return fail(err, ecap, "%sid: \"%s\" may only hold a-z, 0-9, '-' and '_'", where,
                        h->id);
    strcpy(h->name, h->id);
    rc = get_str(o, "name", where, h->name, sizeof(h->name), 0, err, ecap);
    if (rc)
        return rc;
    char level[16] = "township";
    rc = get_str(o, "level", where, level, sizeof(level), 0, err, ecap);
    if (rc)
        return rc;
    if (strcmp(level, "township") == 0)
        h->level = HR_LEVEL_TOWNSHIP;
    else if (strcmp(level, "county") == 0)
        h->level = HR_LEVEL_COUNTY;
    else
        return fail(err, ecap, "%slevel: \"%s\" is not township or county", where, level);

    json_t *aes = json_object_get(o, "ae_titles");
    if (aes && !json_is_array(aes))
        return fail(err, ecap, "%sae_titles: must be an array of strings", where);
    h->n_ae = aes ? json_array_size(aes) : 0;
    h->ae_titles = calloc(h->n_ae ? h->n_ae : 1, sizeof(*h->ae_titles));
    if (!h->ae_titles)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_ae; i++) {
        json_t *v = json_array_get(aes, i);
        if (!json_is_string(v) || !valid_ae(json_string_value(v)))
            return fail(err, ecap,
                        "%sae_titles[%zu]: must be 1-16 printable ASCII characters without "
                        "leading/trailing spaces or backslash",
                        where, i);
        strcpy(h->ae_titles[i], json_string_value(v));
    }
    json_t *addrs = json_object_get(o, "addresses");
    if (addrs && !json_is_array(addrs))
        return fail(err, ecap, "%saddresses: must be an array of addresses or CIDR networks",
                    where);
    h->n_addr = addrs ? json_array_size(addrs) : 0;
    if (h->n_ae && !h->n_addr)
        return fail(err, ecap,
                    "%saddresses: required when ae_titles are given (use \"0.0.0.0/0\" to allow "
                    "any IPv4 peer)",
                    where);
    h->addresses = calloc(h->n_addr ? h->n_addr : 1, sizeof(*h->addresses));
    if (!h->addresses)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_addr; i++) {
        json_t *v = json_array_get(addrs, i);
        if (!json_is_string(v) || hr_cidr_parse(json_string_value(v), &h->addresses[i]))
            return fail(err, ecap, "%saddresses[%zu]: not an IP address or CIDR network", where, i);
    }
    return parse_destinations(json_object_get(o, "destinations"), where, h, err, ecap);
}

/* ---- centers, routing, worklist ---- */

static void free_centers(hr_config *c)
{
    free(c->centers);
    c->centers = NULL;
    c->n_centers = 0;
}

static void free_strlist(hr_strlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void free_rules(hr_config *c)
{
    for (size_t i = 0; i < c->routing.n_rules; i++) {
        hr_route_rule *r = &c->routing.rules[i];
        free_strlist(&r->sop_classes);
        free_strlist(&r->modalities);
        free_strlist(&r->body_parts);
        free_strlist(&r->hospitals);
        free_strlist(&r->procedures);
        free_strlist(&r->calling_aes);
    }
    free(c->routing.rules);
    c->routing.rules = NULL;
    c->routing.n_rules = 0;
}

static int valid_id(const char *s)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* PS3.5 9.1: digits and dots, 1-64 characters, no empty component, no
 * leading zero (same rule as dicom/uids.c, which common/ cannot call). */
static int valid_uid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    int start = 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (start)
                return 0;
            start = 1;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (start && s[i] == '0' && i + 1 < n && s[i + 1] != '.')
                return 0;
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

/* A DICOM CS value as written in the configuration: 1-16 printable ASCII
 * characters without backslash (compared case-insensitively later). */
static int valid_cs(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E || s[i] == '\\')
            return 0;
    return 1;
}

static int valid_text(const char *s)
{
    return *s != '\0';
}

static int valid_hospital_ref(const char *s)
{
    return valid_id(s);
}

/* "HH:MM-HH:MM" (close may be 24:00 and may be before open: overnight);
 * "" = always. */
static int parse_hours(const char *s, int *open_min, int *close_min)
{
    unsigned oh, om, ch, cm;
    char tail;
    if (!*s) {
        *open_min = *close_min = -1;
        return 0;
    }
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':')
        return -1;
    for (int i = 0; i < 11; i++)
        if (i != 2 && i != 5 && i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    if (sscanf(s, "%2u:%2u-%2u:%2u%c", &oh, &om, &ch, &cm, &tail) != 4)
        return -1;
    if (oh > 23 || om > 59 || cm > 59 || ch > 24 || (ch == 24 && cm != 0))
        return -1;
    *open_min = (int)(oh * 60 + om);
    *close_min = (int)(ch * 60 + cm);
    if (*open_min == *close_min || (*open_min == 0 && *close_min == 1440))
        return -1; /* empty or 24 h: write "" for always */
    return 0;
}

static int parse_center(json_t *o, size_t idx, hr_center *ce, char *err, size_t ecap)
{
    static const char *const keys[] = {"id",    "name", "kind", "hospital", "audit_signoff",
                                       "hours", NULL};
    char where[48], kind[16] = "", hours[16] = "";
    snprintf(where, sizeof(where), "centers[%zu].", idx);
    if (!json_is_object(o))
        return fail(err, ecap, "centers[%zu]: must be an object", idx);
    int rc = check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    static const char *const required[] = {"id", "kind", "hospital"};
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
        if (!json_object_get(o, required[k]))
            return fail(err, ecap, "%s%s: required", where, required[k]);
    rc = get_str(o, "id", where, ce->id, sizeof(ce->id), 0, err, ecap);
    if (!rc && !valid_id(ce->id))
        rc = fail(err, ecap, "%sid: \"%s\" may only hold a-z, 0-9, '-' and '_'", where, ce->id);
    if (rc)
        return rc;
    strcpy(ce->name, ce->id);
    rc = get_str(o, "name", where, ce->name, sizeof(ce->name), 0, err, ecap);
    if (!rc)
        rc = get_str(o, "kind", where, kind, sizeof(kind), 0, err, ecap);
    if (!rc && hr_center_kind_parse(kind) < 0)
        rc = fail(err, ecap, "%skind: \"%s\" is not imaging, ecg, pathology or lab", where, kind);
    if (!rc)
        rc = get_str(o, "hospital", where, ce->hospital, sizeof(ce->hospital), 0, err, ecap);
    if (!rc)
        rc = get_str(o, "hours", where, hours, sizeof(hours), 1, err, ecap);
    if (rc)
        return rc;
    ce->kind = (enum hr_center_kind)hr_center_kind_parse(kind);
    json_t *a = json_object_get(o, "audit_signoff");
    if (a && !json_is_boolean(a))
        return fail(err, ecap, "%saudit_signoff: must be true or false", where);
    ce->audit_signoff = a ? json_is_true(a) : 0;
    if (parse_hours(hours, &ce->open_min, &ce->close_min))
        return fail(err, ecap,
                    "%shours: \"%s\" is not \"HH:MM-HH:MM\" (opening-closing, different times; "
                    "omit for always open)",
                    where, hours);
    return 0;
}

static int parse_centers(json_t *cs, hr_config *c, char *err, size_t ecap)
{
    if (!cs)
        return 0;
    if (!json_is_array(cs))
        return fail(err, ecap, "centers: must be an array");
    free_centers(c);
    size_t n = json_array_size(cs);
    c->centers = calloc(n ? n : 1, sizeof(*c->centers));
    if (!c->centers)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->n_centers = i + 1;
        int rc = parse_center(json_array_get(cs, i), i, &c->centers[i], err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

/* A non-empty array of strings, each accepted by valid() and shorter than cap. */
static int get_strlist(json_t *o, const char *key, const char *where, hr_strlist *l, size_t cap,
                       int (*valid)(const char *), const char *what, char *err, size_t ecap)
{
    json_t *a = json_object_get(o, key);
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return fail(err, ecap,
                    "%s%s: must be a non-empty array of strings (omit the key to match anything)",
                    where, key);
    l->n = json_array_size(a);
    l->v = calloc(l->n, sizeof(*l->v));
    if (!l->v)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        json_t *v = json_array_get(a, i);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (!s || strlen(s) >= cap || !valid(s))
            return fail(err, ecap, "%s%s[%zu]: %s", where, key, i, what);
        strcpy(l->v[i], s);
    }
    return 0;
}

static int get_prio(json_t *o, const char *where, enum hr_priority *p, char *err, size_t ecap)
{
    char name[16] = "";
    int rc = get_str(o, "priority", where, name, sizeof(name), 0, err, ecap);
    if (rc || !json_object_get(o, "priority"))
        return rc;
    if (hr_priority_parse(name) < 0)
        return fail(err, ecap, "%spriority: \"%s\" is not stat, urgent or routine", where, name);
    *p = (enum hr_priority)hr_priority_parse(name);
    return 0;
}

static int parse_rule(json_t *o, size_t idx, hr_route_rule *r, char *err, size_t ecap)
{
    static const char *const keys[] = {"sop_classes", "modalities", "body_parts",
                                       "hospitals",   "procedures", "calling_aes",
                                       "center",      "priority",   NULL};
    char where[48];
    snprintf(where, sizeof(where), "routing.rules[%zu].", idx);
    if (!json_is_object(o))
        return fail(err, ecap, "routing.rules[%zu]: must be an object", idx);
    int rc = check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "center") || !json_object_get(o, "priority"))
        return fail(err, ecap, "%scenter, %spriority: both are required", where, where);
    r->priority = HR_PRIO_ROUTINE;
    rc = get_str(o, "center", where, r->center_id, sizeof(r->center_id), 0, err, ecap);
    if (!rc)
        rc = get_prio(o, where, &r->priority, err, ecap);
    if (!rc)
        rc = get_strlist(o, "sop_classes", where, &r->sop_classes, HR_UID_MAX, valid_uid,
                         "not a valid UID (digits and dots, at most 64 characters)", err, ecap);
    if (!rc)
        rc = get_strlist(o, "modalities", where, &r->modalities, HR_CS_MAX, valid_cs,
                         "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = get_strlist(o, "body_parts", where, &r->body_parts, HR_CS_MAX, valid_cs,
                         "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = get_strlist(o, "hospitals", where, &r->hospitals, HR_ID_MAX, valid_hospital_ref,
                         "must be a hospital id", err, ecap);
    if (!rc)
        rc = get_strlist(o, "procedures", where, &r->procedures, HR_NAME_MAX, valid_text,
                         "must be a non-empty string shorter than 256 bytes", err, ecap);
    if (!rc)
        rc = get_strlist(o, "calling_aes", where, &r->calling_aes, HR_AE_MAX, valid_ae,
                         "must be 1-16 printable ASCII characters", err, ecap);
    return rc;
}

static int parse_routing(json_t *o, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"rules", "default", NULL};
    static const char *const dkeys[] = {"center", "priority", NULL};
    if (!o)
        return 0;
    if (!json_is_object(o))
        return fail(err, ecap, "routing: must be an object");
    int rc = check_keys(o, "routing.", keys, err, ecap);
    if (rc)
        return rc;
    json_t *d = json_object_get(o, "default");
    if (d) {
        if (!json_is_object(d))
            return fail(err, ecap, "routing.default: must be an object {center, priority}");
        rc = check_keys(d, "routing.default.", dkeys, err, ecap);
        if (!rc)
            rc = get_str(d, "center", "routing.default.", c->routing.default_center_id,
                         sizeof(c->routing.default_center_id), 0, err, ecap);
        if (!rc)
            rc = get_prio(d, "routing.default.", &c->routing.default_priority, err, ecap);
        if (rc)
            return rc;
    }
    json_t *rs = json_object_get(o, "rules");
    if (!rs)
        return 0;
    if (!json_is_array(rs))
        return fail(err, ecap, "routing.rules: must be an array");
    free_rules(c);
    size_t n = json_array_size(rs);
    c->routing.rules = calloc(n ? n : 1, sizeof(*c->routing.rules));
    if (!c->routing.rules)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->routing.n_rules = i + 1;
        rc = parse_rule(json_array_get(rs, i), i, &c->routing.rules[i], err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_turnaround(json_t *t, hr_config *c, char *err, size_t ecap)
{
    static const char *const kinds[] = {"imaging", "ecg", "pathology", "lab", NULL};
    static const char *const prios[] = {"stat", "urgent", "routine", NULL};
    if (!json_is_object(t))
        return fail(err, ecap,
                    "worklist.turnaround_min: must be an object {kind: {priority: "
                    "minutes}}");
    int rc = check_keys(t, "worklist.turnaround_min.", kinds, err, ecap);
    for (int k = 0; !rc && k < HR_CENTER_KINDS; k++) {
        json_t *o = json_object_get(t, kinds[k]);
        char where[64];
        snprintf(where, sizeof(where), "worklist.turnaround_min.%s.", kinds[k]);
        if (!o)
            continue;
        if (!json_is_object(o))
            return fail(err, ecap,
                        "worklist.turnaround_min.%s: must be an object {priority: "
                        "minutes}",
                        kinds[k]);
        rc = check_keys(o, where, prios, err, ecap);
        for (int p = 0; !rc && p < HR_PRIORITIES; p++) {
            long long v = c->worklist.turnaround_min[k][p];
            rc = get_int(o, prios[p], where, 1, 366 * 1440, &v, err, ecap);
            c->worklist.turnaround_min[k][p] = (int)v;
        }
    }
    return rc;
}

static int parse_worklist(json_t *o, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"quiet_s",     "quiet_by_modality", "lease_s",
                                       "min_lease_s", "turnaround_unit_s", "turnaround_min",
                                       NULL};
    if (!o)
        return 0;
    if (!json_is_object(o))
        return fail(err, ecap, "worklist: must be an object");
    int rc = check_keys(o, "worklist.", keys, err, ecap);
    long long v = c->worklist.quiet_s;
    if (!rc)
        rc = get_int(o, "quiet_s", "worklist.", 0, 86400, &v, err, ecap);
    c->worklist.quiet_s = (int)v;
    /* min_lease_s and turnaround_unit_s exist for tests, which cannot wait minutes */
    v = c->worklist.min_lease_s;
    if (!rc)
        rc = get_int(o, "min_lease_s", "worklist.", 1, 30, &v, err, ecap);
    c->worklist.min_lease_s = (int)v;
    v = c->worklist.turnaround_unit_s;
    if (!rc)
        rc = get_int(o, "turnaround_unit_s", "worklist.", 1, 60, &v, err, ecap);
    c->worklist.turnaround_unit_s = (int)v;
    v = c->worklist.lease_s;
    if (!rc)
        rc = get_int(o, "lease_s", "worklist.", c->worklist.min_lease_s, 86400, &v, err, ecap);
    c->worklist.lease_s = (int)v;
    if (!rc && json_object_get(o, "turnaround_min"))
        rc = parse_turnaround(json_object_get(o, "turnaround_min"), c, err, ecap);
    if (rc)
        return rc;
    json_t *q = json_object_get(o, "quiet_by_modality");
    if (!q)
        return 0;
    if (!json_is_object(q))
        return fail(err, ecap,
                    "worklist.quiet_by_modality: must be an object {modality: "
                    "seconds}");
    free(c->worklist.quiet_by_modality);
    c->worklist.n_quiet = 0;
    c->worklist.quiet_by_modality = calloc(json_object_size(q) + 1, sizeof(hr_quiet));
    if (!c->worklist.quiet_by_modality)
        return -ENOMEM;
    const char *mod;
    json_t *sec;
    json_object_foreach(q, mod, sec)
    {
        hr_quiet *e = &c->worklist.quiet_by_modality[c->worklist.n_quiet];
        if (!valid_cs(mod))
            return fail(err, ecap,
                        "worklist.quiet_by_modality.%.32s: a modality is 1-16 printable ASCII "
                        "characters",
                        mod);
        long long s = 0;
        rc = get_int(q, mod, "worklist.quiet_by_modality.", 0, 86400, &s, err, ecap);
        if (rc)
            return rc;
        for (size_t i = 0; i < c->worklist.n_quiet; i++)
            if (strcasecmp(c->worklist.quiet_by_modality[i].modality, mod) == 0)
                return fail(err, ecap, "worklist.quiet_by_modality.%s: given twice", mod);
        strcpy(e->modality, mod);
        e->seconds = (int)s;
        c->worklist.n_quiet++;
    }
    return 0;
}

/* centers[], routing: ids unique, every reference resolves. */
static int validate_centers(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const char *hint_h =
        user && json_object_get(user, "hospitals") && !json_object_get(user, "centers")
            ? " (an embedded default center: give \"centers\" too)"
            : "";
    const char *hint_c = user && json_object_get(user, "centers") &&
                                 !(json_object_get(user, "routing") &&
                                   json_object_get(json_object_get(user, "routing"), "rules"))
                             ? " (an embedded default rule: give \"routing.rules\" too)"
                             : "";
    for (size_t i = 0; i < c->n_centers; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->centers[i].id, c->centers[j].id) == 0)
                return fail(err, ecap, "centers[%zu].id: \"%s\" is used twice", i,
                            c->centers[i].id);
        if (!hr_config_hospital(c, c->centers[i].hospital))
            return fail(err, ecap, "centers[%zu].hospital: \"%s\" is not one of hospitals[].id%s",
                        i, c->centers[i].hospital, hint_h);
    }
    for (size_t i = 0; i < c->routing.n_rules; i++) {
        hr_route_rule *r = &c->routing.rules[i];
        const hr_center *ce = hr_config_center(c, r->center_id);
        if (!ce)
            return fail(err, ecap, "routing.rules[%zu].center: \"%s\" is not one of centers[].id%s",
                        i, r->center_id, hint_c);
        r->center = (size_t)(ce - c->centers);
        for (size_t h = 0; h < r->hospitals.n; h++)
            if (!hr_config_hospital(c, r->hospitals.v[h]))
                return fail(err, ecap,
                            "routing.rules[%zu].hospitals[%zu]: \"%s\" is not one of "
                            "hospitals[].id",
                            i, h, r->hospitals.v[h]);
    }
    const hr_center *d = hr_config_center(c, c->routing.default_center_id);
    if (!d)
        return fail(err, ecap, "routing.default.center: \"%s\" is not one of centers[].id%s",
                    c->routing.default_center_id,
                    user && json_object_get(user, "centers") && !json_object_get(user, "routing")
                        ? " (the embedded default: give \"routing\" too)"
                        : "");
    c->routing.default_center = (size_t)(d - c->centers);
    return 0;
}

static int parse_auth(json_t *o, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"kdf_iterations",        "kdf_threads",    "kdf_queue",
                                       "kdf_threads_ingesting", "kdf_idle",       "login_window_s",
                                       "login_per_address",     "login_per_user", NULL};
    static const struct {
        const char *key;
        long long lo, hi;
        size_t off;
    } ints[] = {
        {"kdf_iterations", 1000, 10000000, offsetof(hr_config, auth.kdf_iterations)},
        {"kdf_threads", 1, 64, offsetof(hr_config, auth.kdf_threads)},
        {"kdf_queue", 1, 100000, offsetof(hr_config, auth.kdf_queue)},
        {"kdf_threads_ingesting", 1, 64, offsetof(hr_config, auth.kdf_threads_ingesting)},
        {"login_window_s", 1, 86400, offsetof(hr_config, auth.login_window_s)},
        {"login_per_address", 0, 1000000000, offsetof(hr_config, auth.login_per_address)},
        {"login_per_user", 0, 1000000000, offsetof(hr_config, auth.login_per_user)},
    };
    if (!o)
        return 0;
    if (!json_is_object(o))
        return fail(err, ecap, "auth: must be an object");
    int rc = check_keys(o, "auth.", keys, err, ecap);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]) && !rc; i++) {
        int *dst = (int *)((char *)c + ints[i].off);
        long long v = *dst;
        rc = get_int(o, ints[i].key, "auth.", ints[i].lo, ints[i].hi, &v, err, ecap);
        *dst = (int)v;
    }
    json_t *idle = json_object_get(o, "kdf_idle");
    if (!rc && idle && !json_is_boolean(idle))
        rc = fail(err, ecap, "auth.kdf_idle: must be true or false");
    if (!rc && idle)
        c->auth.kdf_idle = json_is_true(idle);
    return rc;
}

static int apply(json_t *root, hr_config *c, char *err, size_t ecap)
{
    static const char *const top[] = {"data_dir", "log_level", "redis",     "dicom",
                                      "http",     "hl7",       "hospitals", "centers",
                                      "routing",  "worklist",  "auth",      NULL};
    static const char *const redis_keys[] = {"url", "server", "appendfsync", "connect_timeout_ms",
                                             NULL};
    if (!json_is_object(root))
        return fail(err, ecap, "(top level): must be a JSON object");
    int rc = check_keys(root, "", top, err, ecap);
    if (!rc)
        rc = get_str(root, "data_dir", "", c->data_dir, sizeof(c->data_dir), 0, err, ecap);
    if (!rc)
        rc = get_str(root, "log_level", "", c->log_level, sizeof(c->log_level), 0, err, ecap);
    if (rc)
        return rc;
    if (strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
        strcmp(c->log_level, "warn") && strcmp(c->log_level, "error"))
        return fail(err, ecap, "log_level: \"%s\" is not debug, info, warn or error", c->log_level);

    json_t *r = json_object_get(root, "redis");
    if (r) {
        if (!json_is_object(r))
            return fail(err, ecap, "redis: must be an object");
        rc = check_keys(r, "redis.", redis_keys, err, ecap);
        if (!rc)
            rc = get_str(r, "url", "redis.", c->redis.url, sizeof(c->redis.url), 1, err, ecap);
        if (!rc)
            rc = get_str(r, "server", "redis.", c->redis.server, sizeof(c->redis.server), 0, err,
                         ecap);
        if (!rc)
            rc = get_str(r, "appendfsync", "redis.", c->redis.appendfsync,
                         sizeof(c->redis.appendfsync), 0, err, ecap);
        long long t = c->redis.connect_timeout_ms;
        if (!rc)
            rc = get_int(r, "connect_timeout_ms", "redis.", 100, 600000, &t, err, ecap);
        c->redis.connect_timeout_ms = (int)t;
        if (rc)
            return rc;
        if (strcmp(c->redis.appendfsync, "always") && strcmp(c->redis.appendfsync, "everysec"))
            return fail(err, ecap, "redis.appendfsync: \"%s\" is not always or everysec",
                        c->redis.appendfsync);
        if (c->redis.url[0] && strncmp(c->redis.url, "redis://", 8) &&
            strncmp(c->redis.url, "unix://", 7))
            return fail(err, ecap, "redis.url: must start with redis:// or unix://");
    }

    rc = get_listen(root, "dicom", &c->dicom.listen, err, ecap);
    if (!rc)
        rc = get_listen(root, "http", &c->http.listen, err, ecap);
    if (!rc)
        rc = parse_http(json_object_get(root, "http"), c, err, ecap);
    if (!rc)
        rc = parse_auth(json_object_get(root, "auth"), c, err, ecap);
    if (!rc)
        rc = get_listen(root, "hl7", &c->hl7, err, ecap);
    if (rc)
        return rc;
    json_t *d = json_object_get(root, "dicom");
    if (d) {
        long long v;
        rc = get_str(d, "ae_title", "dicom.", c->dicom.ae_title, sizeof(c->dicom.ae_title), 0, err,
                     ecap);
        if (!rc && !valid_ae(c->dicom.ae_title))
            rc = fail(err, ecap, "dicom.ae_title: must be 1-16 printable ASCII characters");
        if (!rc)
            rc = get_str(d, "hospital", "dicom.", c->dicom.hospital, sizeof(c->dicom.hospital), 0,
                         err, ecap);
        v = c->dicom.max_associations;
        if (!rc)
            rc = get_int(d, "max_associations", "dicom.", 1, 10000, &v, err, ecap);
        c->dicom.max_associations = (int)v;
        v = c->dicom.max_per_address;
        if (!rc)
            rc = get_int(d, "max_per_address", "dicom.", 1, 10000, &v, err, ecap);
        c->dicom.max_per_address = (int)v;
        v = c->dicom.reserved_associations;
        if (!rc)
            rc = get_int(d, "reserved_associations", "dicom.", 0, 10000, &v, err, ecap);
        c->dicom.reserved_associations = (int)v;
        v = c->dicom.max_pdu;
        if (!rc)
            rc = get_int(d, "max_pdu", "dicom.", 4096, 16 * 1024 * 1024, &v, err, ecap);
        c->dicom.max_pdu = (uint32_t)v;
        v = c->dicom.idle_timeout_s;
        if (!rc)
            rc = get_int(d, "idle_timeout_s", "dicom.", 1, 86400, &v, err, ecap);
        c->dicom.idle_timeout_s = (int)v;
        v = c->dicom.artim_timeout_s;
        if (!rc)
            rc = get_int(d, "artim_timeout_s", "dicom.", 1, 3600, &v, err, ecap);
        c->dicom.artim_timeout_s = (int)v;
        v = (long long)c->dicom.max_object_bytes;
        if (!rc)
            rc = get_int(d, "max_object_bytes", "dicom.", 1024, (long long)1 << 42, &v, err, ecap);
        c->dicom.max_object_bytes = (uint64_t)v;
        json_t *au = json_object_get(d, "accept_unknown_storage");
        if (!rc && au && !json_is_boolean(au))
            rc = fail(err, ecap, "dicom.accept_unknown_storage: must be true or false");
        if (!rc && au)
            c->dicom.accept_unknown_storage = json_is_true(au);
        if (rc)
            return rc;
    }

    json_t *hs = json_object_get(root, "hospitals");
    if (hs) {
        if (!json_is_array(hs))
            return fail(err, ecap, "hospitals: must be an array");
        free_hospitals(c);
        size_t n = json_array_size(hs);
        c->hospitals = calloc(n ? n : 1, sizeof(*c->hospitals));
        if (!c->hospitals)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            c->n_hospitals = i + 1;
            rc = parse_hospital(json_array_get(hs, i), i, &c->hospitals[i], err, ecap);
            if (rc)
                return rc;
        }
    }
    rc = parse_centers(json_object_get(root, "centers"), c, err, ecap);
    if (!rc)
        rc = parse_routing(json_object_get(root, "routing"), c, err, ecap);
    if (!rc)
        rc = parse_worklist(json_object_get(root, "worklist"), c, err, ecap);
    return rc;
}

int hr_addr_is_loopback(const char *host)
{
    uint8_t a[16];
    static const uint8_t v6_loopback[16] = {[15] = 1};
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) != 1)
        return 0;
    return memcmp(a, v6_loopback, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
}

/* Defaults that depend on other keys, and listener policy (decision 0012):
 * the DICOM reserve, and plain HTTP on loopback unless TLS or
 * http.insecure_listen. */
static int validate_listeners(hr_config *c, char *err, size_t ecap)
{
    int tls = c->http.tls_cert[0] != 0;
    if (c->dicom.reserved_associations < 0) {
        c->dicom.reserved_associations = c->dicom.max_associations / 8;
        if (c->dicom.reserved_associations < 1)
            c->dicom.reserved_associations = 1;
    } else if (c->dicom.reserved_associations > c->dicom.max_associations) {
        return fail(err, ecap,
                    "dicom.reserved_associations: %d is more than "
                    "dicom.max_associations (%d)",
                    c->dicom.reserved_associations, c->dicom.max_associations);
    }
    if (!c->http.listen.host[0])
        snprintf(c->http.listen.host, sizeof(c->http.listen.host), "%s",
                 tls || c->http.insecure_listen ? "0.0.0.0" : "127.0.0.1");
    if (!tls && !c->http.insecure_listen && !hr_addr_is_loopback(c->http.listen.host))
        return fail(err, ecap,
                    "http.listen: \"%s\" is not loopback and HTTP is plain: set http.tls_cert "
                    "and http.tls_key, or listen on 127.0.0.1 behind a TLS proxy, or set "
                    "http.insecure_listen: true to expose plain HTTP deliberately",
                    c->http.listen.host);
    return 0;
}

/* Cross-checks that need the whole configuration. user (may be NULL) is the
 * file: a reference that fails only because the file replaced what an
 * embedded default refers to gets a hint. */
static int validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    int rc;
    for (size_t i = 0; i < c->n_hospitals; i++) {
        for (size_t j = i + 1; j < c->n_hospitals; j++)
            if (strcmp(c->hospitals[i].id, c->hospitals[j].id) == 0)
                return fail(err, ecap, "hospitals[%zu].id: \"%s\" is used twice", j,
                            c->hospitals[j].id);
        for (size_t a = 0; a < c->hospitals[i].n_ae; a++) {
            const char *ae = c->hospitals[i].ae_titles[a];
            const hr_hospital *owner = hr_config_hospital_by_ae(c, ae);
            if (owner != &c->hospitals[i])
                return fail(err, ecap, "hospitals[%zu].ae_titles: \"%s\" belongs to \"%s\" too", i,
                            ae, owner->id);
            if (strcmp(ae, c->dicom.ae_title) == 0)
                return fail(err, ecap,
                            "hospitals[%zu].ae_titles: \"%s\" is the hub's own dicom.ae_title", i,
                            ae);
        }
        for (size_t d = 0; d < c->hospitals[i].n_dest; d++) {
            const char *ae = c->hospitals[i].destinations[d].ae_title;
            const hr_hospital *owner = NULL;
            if (hr_config_destination(c, ae, &owner) != &c->hospitals[i].destinations[d])
                return fail(err, ecap,
                            "hospitals[%zu].destinations[%zu].ae_title: \"%s\" is "
                            "already a destination of \"%s\"",
                            i, d, ae, owner->id);
        }
    }
    if ((c->http.tls_cert[0] != 0) != (c->http.tls_key[0] != 0))
        return fail(err, ecap, "http.tls_cert, http.tls_key: give both or neither");
    rc = validate_listeners(c, err, ecap);
    if (rc)
        return rc;
    if (!hr_config_hospital(c, c->dicom.hospital))
        return fail(err, ecap, "dicom.hospital: \"%s\" is not one of hospitals[].id",
                    c->dicom.hospital);
    return validate_centers(c, user, err, ecap);
}

static int load_json(json_t *user, hr_config *out, char *err, size_t ecap)
{
    json_error_t je;
    memset(out, 0, sizeof(*out));
    out->dicom.reserved_associations = -1; /* derived from max_associations */
    json_t *def = json_loads(k_default_json, 0, &je);
    if (!def)
        return fail(err, ecap, "embedded defaults: %s", je.text);
    int rc = apply(def, out, err, ecap);
    json_decref(def);
    if (!rc && user)
        rc = apply(user, out, err, ecap);
    if (!rc)
        rc = validate(out, user, err, ecap);
    if (rc)
        hr_config_free(out);
    return rc;
}

int hr_config_load_string(const char *json, hr_config *out, char *err, size_t ecap)
{
    json_error_t je;
    json_t *user = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!user) {
        memset(out, 0, sizeof(*out));
        return fail(err, ecap, "line %d column %d: %s", je.line, je.column, je.text);
    }
    int rc = load_json(user, out, err, ecap);
    json_decref(user);
    return rc;
}

int hr_config_load(const char *path, hr_config *out, char *err, size_t ecap)
{
    if (!path)
        return load_json(NULL, out, err, ecap);
    json_error_t je;
    json_t *user = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!user) {
        memset(out, 0, sizeof(*out));
        return fail(err, ecap, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
    }
    int rc = load_json(user, out, err, ecap);
    json_decref(user);
    return rc;
}

void hr_config_free(hr_config *c)
{
    free_hospitals(c);
    free_cors(c);
    free_centers(c);
    free_rules(c);
    free(c->worklist.quiet_by_modality);
    c->worklist.quiet_by_modality = NULL;
    c->worklist.n_quiet = 0;
}

const hr_center *hr_config_center(const hr_config *c, const char *id)
{
    for (size_t i = 0; i < c->n_centers; i++)
        if (strcmp(c->centers[i].id, id) == 0)
            return &c->centers[i];
    return NULL;
}

static const char *const k_kinds[HR_CENTER_KINDS] = {"imaging", "ecg", "pathology", "lab"};
static const char *const k_prios[HR_PRIORITIES] = {"stat", "urgent", "routine"};

const char *hr_center_kind_name(enum hr_center_kind k)
{
    return (unsigned)k < HR_CENTER_KINDS ? k_kinds[k] : "?";
}

int hr_center_kind_parse(const char *s)
{
    for (int i = 0; s && i < HR_CENTER_KINDS; i++)
        if (strcmp(s, k_kinds[i]) == 0)
            return i;
    return -1;
}

const char *hr_priority_name(enum hr_priority p)
{
    return (unsigned)p < HR_PRIORITIES ? k_prios[p] : "?";
}

int hr_priority_parse(const char *s)
{
    for (int i = 0; s && i < HR_PRIORITIES; i++)
        if (strcmp(s, k_prios[i]) == 0)
            return i;
    return -1;
}

const hr_hospital *hr_config_hospital(const hr_config *c, const char *id)
{
    for (size_t i = 0; i < c->n_hospitals; i++)
        if (strcmp(c->hospitals[i].id, id) == 0)
            return &c->hospitals[i];
    return NULL;
}

const hr_hospital *hr_config_hospital_by_ae(const hr_config *c, const char *ae)
{
    for (size_t i = 0; i < c->n_hospitals; i++)
        for (size_t a = 0; a < c->hospitals[i].n_ae; a++)
            if (strcmp(c->hospitals[i].ae_titles[a], ae) == 0)
                return &c->hospitals[i];
    return NULL;
}

const hr_destination *hr_config_destination(const hr_config *c, const char *ae,
                                            const hr_hospital **owner)
{
    for (size_t i = 0; i < c->n_hospitals; i++)
        for (size_t d = 0; d < c->hospitals[i].n_dest; d++)
            if (strcmp(c->hospitals[i].destinations[d].ae_title, ae) == 0) {
                if (owner)
                    *owner = &c->hospitals[i];
                return &c->hospitals[i].destinations[d];
            }
    return NULL;
}
