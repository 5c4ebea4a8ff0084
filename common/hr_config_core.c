/* The sections common/ owns: the top-level scalars and hospitals[], which
 * every module refers to; and the lookups over them.
 *
 *   key                         default          rule
 *   data_dir                    "./huren-data"   non-empty
 *   log_level                   "info"           debug | info | warn | error
 *   hospitals[]                 county, township1, township2 (loopback only)
 *   hospitals[].id              required         a-z 0-9 - _, unique
 *   hospitals[].name            the id           non-empty
 *   hospitals[].level           "township"       township | county
 *   hospitals[].ae_titles       []               AE titles, each in one hospital only
 *   hospitals[].addresses       []               IP or CIDR; required with ae_titles
 *   hospitals[].destinations[]  []               {ae_title, host, port}, AE unique overall
 *
 * Meaning: docs/configuration.md. */
#include "hr_config.h"
#include "hr_err.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_log_levels[] = {"debug", "info", "warn", "error", NULL};

static const hr_cfg_key k_top_keys[] = {
    HR_CFG_KEY_STR("data_dir", data_dir, 0),
    HR_CFG_KEY_CHOICE("log_level", log_level, k_log_levels),
    HR_CFG_KEY_END,
};

static const hr_config_section k_top = {
    .name = NULL,
    .defaults = "{\"data_dir\": \"./huren-data\", \"log_level\": \"info\"}",
    .keys = k_top_keys,
};

/* ---- hospitals[] ---- */

int hr_ae_title_valid(const char *ae)
{
    size_t n = strlen(ae);
    if (n == 0 || n > 16 || ae[0] == ' ' || ae[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ae[i] < 0x20 || (unsigned char)ae[i] > 0x7E || ae[i] == '\\')
            return 0;
    return 1;
}

int hr_cs_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E || s[i] == '\\')
            return 0;
    return 1;
}

int hr_str_nonempty(const char *s)
{
    return *s != '\0';
}

void hr_strlist_free(hr_strlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
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

static int parse_destinations(json_t *ds, const char *where, hr_hospital *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"ae_title", "host", "port", NULL};
    if (ds && !json_is_array(ds))
        return hr_cfg_fail(err, ecap, "%sdestinations: must be an array of {ae_title, host, port}",
                           where);
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
            return hr_cfg_fail(err, ecap, "%sdestinations[%zu]: must be an object", where, i);
        int rc = hr_cfg_check_keys(d, w, keys, err, ecap);
        if (rc)
            return rc;
        if (!json_object_get(d, "ae_title") || !json_object_get(d, "host") ||
            !json_object_get(d, "port"))
            return hr_cfg_fail(
                err, ecap, "%sdestinations[%zu]: ae_title, host and port are required", where, i);
        long long port = 0;
        rc = hr_cfg_get_str(d, "ae_title", w, t->ae_title, sizeof(t->ae_title), 0, err, ecap);
        if (!rc && !hr_ae_title_valid(t->ae_title))
            rc = hr_cfg_fail(err, ecap, "%sae_title: must be 1-16 printable ASCII characters", w);
        if (!rc)
            rc = hr_cfg_get_str(d, "host", w, t->host, sizeof(t->host), 0, err, ecap);
        if (!rc)
            rc = hr_cfg_get_int(d, "port", w, 1, 65535, &port, err, ecap);
        if (rc)
            return rc;
        t->port = (int)port;
    }
    return 0;
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

static int parse_hospital(json_t *o, size_t idx, hr_hospital *h, char *err, size_t ecap)
{
    static const char *const keys[] = {"id",        "name",         "level", "ae_titles",
                                       "addresses", "destinations", NULL};
    static const char *const levels[] = {"township", "county", NULL};
    char where[48];
    snprintf(where, sizeof(where), "hospitals[%zu].", idx);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "hospitals[%zu]: must be an object", idx);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "id"))
        return hr_cfg_fail(err, ecap, "%sid: required", where);
    rc = hr_cfg_get_str(o, "id", where, h->id, sizeof(h->id), 0, err, ecap);
    if (rc)
        return rc;
    if (!valid_id(h->id))
        return hr_cfg_fail(err, ecap, "%sid: \"%s\" may only hold a-z, 0-9, '-' and '_'", where,
                           h->id);
    strcpy(h->name, h->id);
    rc = hr_cfg_get_str(o, "name", where, h->name, sizeof(h->name), 0, err, ecap);
    if (rc)
        return rc;
    int level = HR_LEVEL_TOWNSHIP;
    rc = hr_cfg_get_choice(o, "level", where, levels, 16, &level, err, ecap);
    if (rc)
        return rc;
    h->level = level == 1 ? HR_LEVEL_COUNTY : HR_LEVEL_TOWNSHIP;

    json_t *aes = json_object_get(o, "ae_titles");
    if (aes && !json_is_array(aes))
        return hr_cfg_fail(err, ecap, "%sae_titles: must be an array of strings", where);
    h->n_ae = aes ? json_array_size(aes) : 0;
    h->ae_titles = calloc(h->n_ae ? h->n_ae : 1, sizeof(*h->ae_titles));
    if (!h->ae_titles)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_ae; i++) {
        json_t *v = json_array_get(aes, i);
        if (!json_is_string(v) || !hr_ae_title_valid(json_string_value(v)))
            return hr_cfg_fail(err, ecap,
                               "%sae_titles[%zu]: must be 1-16 printable ASCII characters without "
                               "leading/trailing spaces or backslash",
                               where, i);
        strcpy(h->ae_titles[i], json_string_value(v));
    }
    json_t *addrs = json_object_get(o, "addresses");
    if (addrs && !json_is_array(addrs))
        return hr_cfg_fail(err, ecap, "%saddresses: must be an array of addresses or CIDR networks",
                           where);
    h->n_addr = addrs ? json_array_size(addrs) : 0;
    if (h->n_ae && !h->n_addr)
        return hr_cfg_fail(err, ecap,
                           "%saddresses: required when ae_titles are given (use \"0.0.0.0/0\" to "
                           "allow any IPv4 peer)",
                           where);
    h->addresses = calloc(h->n_addr ? h->n_addr : 1, sizeof(*h->addresses));
    if (!h->addresses)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_addr; i++) {
        json_t *v = json_array_get(addrs, i);
        if (!json_is_string(v) || hr_cidr_parse(json_string_value(v), &h->addresses[i]))
            return hr_cfg_fail(err, ecap, "%saddresses[%zu]: not an IP address or CIDR network",
                               where, i);
    }
    return parse_destinations(json_object_get(o, "destinations"), where, h, err, ecap);
}

/* The file's list replaces the default list. */
static int parse_hospitals(json_t *hs, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_array(hs))
        return hr_cfg_fail(err, ecap, "hospitals: must be an array");
    free_hospitals(c);
    size_t n = json_array_size(hs);
    c->hospitals = calloc(n ? n : 1, sizeof(*c->hospitals));
    if (!c->hospitals)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->n_hospitals = i + 1;
        int rc = parse_hospital(json_array_get(hs, i), i, &c->hospitals[i], err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

/* Ids, AE titles and destination AE titles are unique. */
static int validate_hospitals(hr_config *c, json_t *user, char *err, size_t ecap)
{
    for (size_t i = 0; i < c->n_hospitals; i++) {
        for (size_t j = i + 1; j < c->n_hospitals; j++)
            if (strcmp(c->hospitals[i].id, c->hospitals[j].id) == 0)
                return hr_cfg_fail(err, ecap, "hospitals[%zu].id: \"%s\" is used twice", j,
                                   c->hospitals[j].id);
        for (size_t a = 0; a < c->hospitals[i].n_ae; a++) {
            const char *ae = c->hospitals[i].ae_titles[a];
            const hr_hospital *owner = hr_config_hospital_by_ae(c, ae);
            if (owner != &c->hospitals[i])
                return hr_cfg_fail(err, ecap,
                                   "hospitals[%zu].ae_titles: \"%s\" belongs to \"%s\" too", i, ae,
                                   owner->id);
        }
        for (size_t d = 0; d < c->hospitals[i].n_dest; d++) {
            const char *ae = c->hospitals[i].destinations[d].ae_title;
            const hr_hospital *owner = NULL;
            if (hr_config_destination(c, ae, &owner) != &c->hospitals[i].destinations[d])
                return hr_cfg_fail(err, ecap,
                                   "hospitals[%zu].destinations[%zu].ae_title: \"%s\" is "
                                   "already a destination of \"%s\"",
                                   i, d, ae, owner->id);
        }
    }
    return 0;
}

static const hr_config_section k_hospitals = {
    .name = "hospitals",
    .defaults =
        "[{\"id\": \"county\", \"name\": \"示范县人民医院 (Demo County People's Hospital)\",\n"
        "  \"level\": \"county\", \"ae_titles\": [\"COUNTY_PACS\"],\n"
        "  \"addresses\": [\"127.0.0.1\", \"::1\"]},\n"
        " {\"id\": \"township1\", \"name\": \"城关镇卫生院 (Chengguan Township Health Center)\",\n"
        "  \"level\": \"township\", \"ae_titles\": [\"TOWNSHIP1\"],\n"
        "  \"addresses\": [\"127.0.0.1\", \"::1\"]},\n"
        " {\"id\": \"township2\", \"name\": \"河口乡卫生院 (Hekou Township Health Center)\",\n"
        "  \"level\": \"township\", \"ae_titles\": [\"TOWNSHIP2\"],\n"
        "  \"addresses\": [\"127.0.0.1\", \"::1\"]}]",
    .parse = parse_hospitals,
    .validate = validate_hospitals,
    .free = free_hospitals,
};

const hr_config_section *const hr_config_core_sections[] = {&k_top, &k_hospitals, NULL};

/* ---- lookups ---- */

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

int hr_cidr_list_has(const hr_cidr *v, size_t n, const char *addr)
{
    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    if (!addr)
        return 0;
    if (inet_pton(AF_INET, addr, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        hr_hospital h = {.n_addr = n, .addresses = (hr_cidr *)v};
        return hr_hospital_allows(&h, (const struct sockaddr *)&a4);
    }
    if (inet_pton(AF_INET6, addr, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        hr_hospital h = {.n_addr = n, .addresses = (hr_cidr *)v};
        return hr_hospital_allows(&h, (const struct sockaddr *)&a6);
    }
    return 0;
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

void hr_sockaddr_format(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        port = ntohs(v4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        port = ntohs(v6->sin6_port);
    }
    snprintf(out, cap, "%s:%d", host, port);
}
