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

/* A county diagnostic center that reads exams (its worklist). */
enum hr_center_kind { HR_CENTER_IMAGING, HR_CENTER_ECG, HR_CENTER_PATHOLOGY, HR_CENTER_LAB };
#define HR_CENTER_KINDS 4
/* Reading priority; the order is the worklist order (stat first). */
enum hr_priority { HR_PRIO_STAT, HR_PRIO_URGENT, HR_PRIO_ROUTINE };
#define HR_PRIORITIES 3

#define HR_UID_MAX 65 /* 64 characters + NUL */
#define HR_CS_MAX  17 /* DICOM CS value: 16 characters + NUL */

typedef struct hr_center {
    char id[HR_ID_MAX];
    char name[HR_NAME_MAX];
    enum hr_center_kind kind;
    char hospital[HR_ID_MAX]; /* the hospital running the center (one of hospitals[].id) */
    int audit_signoff;        /* reports need an auditor's co-signature */
    int open_min, close_min;  /* opening hours in minutes of day, -1 = always; close may be
                                 smaller than open (overnight), 1440 = midnight */
} hr_center;

/* A list of strings of one routing criterion; n == 0: absent (matches anything). */
typedef struct hr_strlist {
    size_t n;
    char (*v)[HR_NAME_MAX];
} hr_strlist;

/* A routing rule: every present list must match (one value of each); the
 * first matching rule of cfg->routing.rules wins. */
typedef struct hr_route_rule {
    hr_strlist sop_classes; /* exact SOP Class UIDs */
    hr_strlist modalities;  /* (0008,0060), ASCII case-insensitive */
    hr_strlist body_parts;  /* (0018,0015), ASCII case-insensitive */
    hr_strlist hospitals;   /* source hospital ids */
    hr_strlist procedures;  /* substrings of the requested procedure, ASCII case-insensitive */
    hr_strlist calling_aes; /* exact calling AE titles */
    size_t center;          /* index into cfg->centers */
    enum hr_priority priority;
    char center_id[HR_ID_MAX]; /* as written, resolved into center at validation */
} hr_route_rule;

typedef struct hr_quiet {
    char modality[HR_CS_MAX];
    int seconds;
} hr_quiet;

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
        int max_per_address;       /* TCP connections from one peer address */
        int reserved_associations; /* the last connection slots below max_associations go
                                      only to addresses with none open (decision 0012) */
        uint32_t max_pdu;          /* our maximum receive PDU length */
        int idle_timeout_s;
        int artim_timeout_s;
        uint64_t max_object_bytes;
        int accept_unknown_storage; /* a valid UID outside the storage table may be stored
                                       (dicom/uids.h dcm_uid_storage_candidate) */
    } dicom;
    struct {
        hr_listen listen;
        char tls_cert[HR_PATH_MAX]; /* PEM; "" = plain HTTP (h2c for HTTP/2) */
        char tls_key[HR_PATH_MAX];
        int insecure_listen;     /* plain HTTP allowed on a non-loopback http.listen */
        uint64_t max_body_bytes; /* larger request bodies get 413 */
        int token_ttl_s;         /* bearer token lifetime */
        int max_connections;
        size_t n_cors;
        char (*cors_origins)[HR_NAME_MAX]; /* allowed Origin values; "*" = any */
    } http;
    struct {
        int kdf_iterations;        /* PBKDF2 iterations of new password hashes */
        int kdf_threads;           /* password-hashing threads of huren serve */
        int kdf_queue;             /* logins hashing or waiting per node; more get 503 */
        int kdf_threads_ingesting; /* at most this many hash at once while ingest is busy */
        int kdf_idle;              /* hashing threads under SCHED_IDLE (else nice +10) */
        int login_window_s;        /* rate-limit window of logins */
        int login_per_address; /* logins per client address per window, all nodes; 0 = no limit */
        int login_per_user;    /* logins per user name per window, all nodes; 0 = no limit */
    } auth;
    hr_listen hl7;
    size_t n_hospitals;
    hr_hospital *hospitals;
    size_t n_centers;
    hr_center *centers;
    struct {
        size_t n_rules;
        hr_route_rule *rules;
        size_t default_center; /* index into centers */
        enum hr_priority default_priority;
        char default_center_id[HR_ID_MAX];
    } routing;
    struct {
        int quiet_s; /* a study is complete after this long without a new instance */
        size_t n_quiet;
        hr_quiet *quiet_by_modality; /* per-modality quiet periods (replace quiet_s) */
        int lease_s;                 /* a claim lasts this long unless renewed */
        int min_lease_s;             /* smallest lease_s accepted (30; lower only in tests) */
        int turnaround_unit_s;       /* seconds in one turnaround_min unit (60; tests: less) */
        int turnaround_min[HR_CENTER_KINDS][HR_PRIORITIES]; /* report due after, per kind x prio */
    } worklist;
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
/* Center with this id, or NULL. */
const hr_center *hr_config_center(const hr_config *c, const char *id);
/* "imaging" "ecg" "pathology" "lab"; "?" when out of range. */
const char *hr_center_kind_name(enum hr_center_kind k);
/* The kind named s, or -1. */
int hr_center_kind_parse(const char *s);
/* "stat" "urgent" "routine"; "?" when out of range. */
const char *hr_priority_name(enum hr_priority p);
/* The priority named s, or -1. */
int hr_priority_parse(const char *s);
/* 1 when host (an IPv4 or IPv6 literal) is a loopback address: 127.0.0.0/8,
 * ::1, or 127.0.0.0/8 mapped into IPv6. */
int hr_addr_is_loopback(const char *host);
/* Parses "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8". 0 or HR_ECONFIG. */
int hr_cidr_parse(const char *s, hr_cidr *out);

#endif
