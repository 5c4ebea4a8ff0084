/* huren configuration: one JSON file, every key defaulted. The embedded
 * defaults (hr_config_default_json) are what `make run` uses. See
 * docs/configuration.md for every key. */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define HR_ID_MAX   64
#define HR_NAME_MAX 256
#define HR_AE_MAX   17
#define HR_PATH_MAX 1024
#define HR_ADDR_MAX 64

enum hr_hospital_level { HR_LEVEL_TOWNSHIP, HR_LEVEL_COUNTY };

/* An allowed peer network: address + prefix length (CIDR), IPv4 or IPv6. */
typedef struct hr_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
} hr_cidr;

/* A C-MOVE destination: an AE title huren connects to as a C-STORE SCU. */
typedef struct hr_destination {
    char ae_title[HR_AE_MAX];
    char host[HR_NAME_MAX];
    int port;
} hr_destination;

typedef struct hr_hospital {
    char id[HR_ID_MAX];
    char name[HR_NAME_MAX];
    enum hr_hospital_level level;
    size_t n_ae;
    char (*ae_titles)[HR_AE_MAX];
    size_t n_addr;
    hr_cidr *addresses;
    size_t n_dest;
    hr_destination *destinations; /* C-MOVE destinations owned by this hospital */
} hr_hospital;

typedef struct hr_listen {
    char host[HR_ADDR_MAX];
    int port;
} hr_listen;

typedef struct hr_config {
    char data_dir[HR_PATH_MAX];
    char log_level[16];
    struct {
        char url[HR_PATH_MAX];    /* "" = start the embedded redis-server */
        char server[HR_PATH_MAX]; /* redis-server binary for the embedded one */
        char appendfsync[16];     /* always | everysec */
        int connect_timeout_ms;
    } redis;
    struct {
        hr_listen listen;
        char ae_title[HR_AE_MAX];
        char hospital[HR_ID_MAX]; /* the hub's own hospital id */
        int max_associations;
        uint32_t max_pdu; /* our maximum receive PDU length */
        int idle_timeout_s;
        int artim_timeout_s;
        uint64_t max_object_bytes;
    } dicom;
    struct {
        hr_listen listen;
        char tls_cert[HR_PATH_MAX]; /* PEM; "" = plain HTTP (h2c for HTTP/2) */
        char tls_key[HR_PATH_MAX];
        uint64_t max_body_bytes; /* larger request bodies get 413 */
        int token_ttl_s;         /* bearer token lifetime */
        int max_connections;
        size_t n_cors;
        char (*cors_origins)[HR_NAME_MAX]; /* allowed Origin values; "*" = any */
    } http;
    hr_listen hl7;
    size_t n_hospitals;
    hr_hospital *hospitals;
} hr_config;

/* The embedded default configuration as JSON text (static storage). */
const char *hr_config_default_json(void);

/* Loads defaults, then overlays the JSON file at path (NULL = defaults only).
 * On error returns HR_ECONFIG (or -errno for I/O) and writes "key: why" into
 * err (cap err_cap). On success *out owns its allocations: hr_config_free(). */
int hr_config_load(const char *path, hr_config *out, char *err, size_t err_cap);
/* Same, from JSON text (tests). */
int hr_config_load_string(const char *json, hr_config *out, char *err, size_t err_cap);
void hr_config_free(hr_config *c);

/* Hospital with this id, or NULL. */
const hr_hospital *hr_config_hospital(const hr_config *c, const char *id);
/* Hospital that owns calling AE title ae (exact, case-sensitive as DICOM), or NULL. */
const hr_hospital *hr_config_hospital_by_ae(const hr_config *c, const char *ae);
/* 1 when the peer address (sockaddr_in / sockaddr_in6, v4-mapped v6 handled)
 * is inside one of h's allowed networks. */
int hr_hospital_allows(const hr_hospital *h, const struct sockaddr *peer);
/* Destination with this AE title in any hospital (and its owner in *owner,
 * may be NULL), or NULL. */
const hr_destination *hr_config_destination(const hr_config *c, const char *ae,
                                            const hr_hospital **owner);
/* Parses "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8". 0 or HR_ECONFIG. */
int hr_cidr_parse(const char *s, hr_cidr *out);

#endif
