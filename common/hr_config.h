/* huren configuration: one JSON file, every key defaulted. The embedded
 * defaults (hr_config_default_json) are what `make run` uses. See
 * docs/configuration.md for every key.
 *
 * common/ owns the loader: the file and the embedded defaults, the JSON
 * walking, typed getters with their range checks, unknown-key detection and
 * the error wording ("<key path>: why"). Each module owns its sections (the
 * top-level keys it reads): their keys, defaults, bounds and cross-checks, in
 * <module>/<prefix>_config.c, described by an hr_config_section (decision
 * 0021). common/ owns the top-level scalars and hospitals[], which every
 * module refers to. */
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
        int max_per_address;  /* connections per client address; 0 = no limit */
        int header_timeout_s; /* a request head must be complete this long after the
                                 accept or the previous response, else closed */
        size_t n_cors;
        char (*cors_origins)[HR_NAME_MAX]; /* allowed Origin values; "*" = any */
        size_t n_trusted_proxies;
        hr_cidr *trusted_proxies;     /* peers whose Forwarded / X-Forwarded-Host and -Proto
                                         set the base URL of links (decision 0030) */
        uint64_t transcode_max_bytes; /* decoded object above this: no transcoding (406) */
        int transcode_concurrency;    /* objects decoded for WADO-RS at once; beyond: 503 */
    } http;
    struct {
        int kdf_iterations;        /* PBKDF2 iterations of new password hashes */
        int kdf_threads;           /* password-hashing threads of huren serve */
        int kdf_queue;             /* logins hashing or waiting per node; more get 503 */
        int kdf_threads_ingesting; /* at most this many hash at once while ingest is busy */
        int kdf_share_ingesting;   /* percent of the time they may hash while ingest is busy */
        int kdf_idle;              /* hashing threads under SCHED_IDLE (else nice +10) */
        int login_window_s;        /* rate-limit window of logins */
        int login_per_address; /* logins per client address per window, all nodes; 0 = no limit */
        int login_per_user;    /* logins per user name per window, all nodes; 0 = no limit */
        int refusal_delay_ms;  /* a rate-limited login (429) is answered this much later */
    } auth;
    struct {
        int enabled;            /* the MLLP listener runs (off by default: no open port) */
        char host[HR_ADDR_MAX]; /* the MLLP listener (gateway/hl7_server.h) */
        int port;
        uint64_t max_message_bytes; /* a longer message gets an AR and the connection closes */
        int idle_timeout_s;       /* a connection silent this long (no message under way) closes */
        int max_connections;      /* open MLLP connections; more are closed at accept */
        char facility[HR_ID_MAX]; /* MSH-4 of our ACKs; "" in the file = dicom.hospital */
    } hl7;
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
    /* Sections of reports/ (issue 9), each a struct its module declares and
     * owns: allocated by the section's parse or init, freed by its free.
     * Pointers so that common/ needs no knowledge of their fields. */
    struct rpt_config *reports;     /* reports: signing, TSA, rendering (reports/rpt_config.h) */
    struct rec_config *recognition; /* recognition: catalogue, QC, grants (reports/rec_config.h) */
    struct pix_config *persons;     /* persons: ID key, where each hospital puts the ID */
    struct dlv_config *delivery;    /* delivery: channels per hospital, retries */
    struct shr_config *share;       /* share: patient share links (reports/shr_config.h) */
    struct lab_config *lab;         /* lab: HL7 lab results (reports/lab_config.h) */
    struct alr_config *alerts;      /* alerts: critical-value contacts (reports/alr_config.h) */
    struct api_web_config *web;     /* web: the pages and the viewer (viewer-api/api_config.h) */
} hr_config;

/* The embedded default configuration as JSON text, assembled from every
 * section's defaults on the first call (not thread-safe then; static storage,
 * never freed). NULL when out of memory. */
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
/* "address:port" of a peer (IPv4 or IPv6; "?:0" for another family) into
 * out (cap bytes, NUL-terminated, cut when short). */
void hr_sockaddr_format(const struct sockaddr_storage *ss, char *out, size_t cap);
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
/* 1 when addr (an IPv4 or IPv6 literal; IPv4-mapped IPv6 counts as IPv4) is
 * in one of the n networks v, else 0 (also for NULL or an unparsable addr). */
int hr_cidr_list_has(const hr_cidr *v, size_t n, const char *addr);
/* 1 when ae is a valid AE title: 1-16 printable ASCII characters, no
 * backslash, no leading or trailing space. */
int hr_ae_title_valid(const char *ae);
/* 1 when s is a DICOM CS value as written in the configuration: 1-16
 * printable ASCII characters without backslash (compared case-insensitively
 * later). */
int hr_cs_valid(const char *s);
/* 1 when s is not empty (a validator for hr_cfg_get_strlist). */
int hr_str_nonempty(const char *s);
/* Frees the strings of l (allocated by hr_cfg_get_strlist); l becomes empty. */
void hr_strlist_free(hr_strlist *l);

/* ---- Sections: how a module declares its part of the file ---- */

struct json_t; /* jansson's; a section's hooks include <jansson.h> */

/* How the loader reads one key of an object section. */
enum hr_cfg_type {
    HR_CFG_T_STR,    /* char[size]; empty only with HR_CFG_EMPTY_OK; valid() if set */
    HR_CFG_T_ADDR,   /* char[size] holding an IPv4 or IPv6 literal */
    HR_CFG_T_INT,    /* a 4- or 8-byte integer field (int, uint32_t, uint64_t) within lo..hi */
    HR_CFG_T_BOOL,   /* int, 0 or 1, from true / false */
    HR_CFG_T_CHOICE, /* char[size] holding one of choices */
    HR_CFG_T_CUSTOM, /* parse() reads the value */
};
#define HR_CFG_EMPTY_OK 1

/* A key of an object section. Present keys are read in table order; absent
 * ones keep what the defaults (or the previous layer) set. */
typedef struct hr_cfg_key {
    const char *name;
    enum hr_cfg_type type;
    size_t off;  /* offsetof(hr_config, field) */
    size_t size; /* sizeof the field */
    int flags;
    long long lo, hi;            /* HR_CFG_T_INT */
    const char *const *choices;  /* HR_CFG_T_CHOICE: NULL-terminated */
    int (*valid)(const char *s); /* HR_CFG_T_STR: extra rule, else "<path>: <what>" */
    const char *what;            /* HR_CFG_T_STR with valid */
    int (*parse)(struct json_t *v, const char *path, hr_config *c, char *err,
                 size_t ecap); /* HR_CFG_T_CUSTOM: v is present; 0 or HR_ECONFIG */
} hr_cfg_key;

#define HR_CFG_FIELD_(f) .off = offsetof(hr_config, f), .size = sizeof(((hr_config *)0)->f)
#define HR_CFG_KEY_STR(n, f, fl)                                                                   \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_STR, HR_CFG_FIELD_(f), .flags = (fl)                         \
    }
#define HR_CFG_KEY_VALID(n, f, valid_, what_)                                                      \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_STR, HR_CFG_FIELD_(f), .valid = (valid_), .what = (what_)    \
    }
#define HR_CFG_KEY_ADDR(n, f)                                                                      \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_ADDR, HR_CFG_FIELD_(f)                                       \
    }
#define HR_CFG_KEY_INT(n, f, lo_, hi_)                                                             \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_INT, HR_CFG_FIELD_(f), .lo = (lo_), .hi = (hi_)              \
    }
#define HR_CFG_KEY_BOOL(n, f)                                                                      \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_BOOL, HR_CFG_FIELD_(f)                                       \
    }
#define HR_CFG_KEY_CHOICE(n, f, names)                                                             \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_CHOICE, HR_CFG_FIELD_(f), .choices = (names)                 \
    }
#define HR_CFG_KEY_CUSTOM(n, fn)                                                                   \
    {                                                                                              \
        .name = (n), .type = HR_CFG_T_CUSTOM, .parse = (fn)                                        \
    }
#define HR_CFG_KEY_END                                                                             \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* One top-level key of the file and the module that reads it. The loader
 * applies every section's defaults, then the file's value of every section
 * present in it, then runs every validate(); the first error stops it. */
typedef struct hr_config_section {
    const char *name;       /* top-level key; NULL: keys are top-level keys (common/ only) */
    const char *defaults;   /* JSON text of the embedded default value; NULL: none */
    const hr_cfg_key *keys; /* an object section's keys (others are refused); NULL: not an object */
    /* After keys (or alone when keys is NULL): what a key table cannot say.
     * path is the section's name; 0, HR_ECONFIG or -ENOMEM. */
    int (*parse)(struct json_t *v, const char *path, hr_config *c, char *err, size_t ecap);
    void (*init)(hr_config *c); /* before the defaults: values that mean "derive me" */
    /* Once everything is read: defaults that depend on other keys, and
     * references; user is the file (NULL: defaults only), for hints. */
    int (*validate)(hr_config *c, struct json_t *user, char *err, size_t ecap);
    void (*free)(hr_config *c); /* frees what parse allocated; safe on a zeroed config */
} hr_config_section;

/* The module sections, NULL-terminated, in reading order: defined above the
 * modules (cli/config_sections.c), which common/ may not include. */
extern const hr_config_section *const hr_config_sections[];
/* The sections common/ owns (top-level scalars, hospitals), NULL-terminated;
 * they are read before the module sections. */
extern const hr_config_section *const hr_config_core_sections[];

/* Writes the formatted message into err (cap ecap); returns HR_ECONFIG. */
int hr_cfg_fail(char *err, size_t ecap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Every key of obj must be in allowed (NULL-terminated), else "<where><key>:
 * unknown key". where is the path of obj with its trailing dot ("" at top). */
int hr_cfg_check_keys(struct json_t *obj, const char *where, const char *const *allowed, char *err,
                      size_t ecap);
/* Value getters: v is present; path names it in errors. 0 or HR_ECONFIG. */
int hr_cfg_str(struct json_t *v, const char *path, char *dst, size_t cap, int allow_empty,
               char *err, size_t ecap);
int hr_cfg_int(struct json_t *v, const char *path, long long lo, long long hi, long long *dst,
               char *err, size_t ecap);
int hr_cfg_bool(struct json_t *v, const char *path, int *dst, char *err, size_t ecap);
/* One of names (NULL-terminated) into *idx; the value is read as a string of cap. */
int hr_cfg_choice(struct json_t *v, const char *path, const char *const *names, size_t cap,
                  int *idx, char *err, size_t ecap);
/* Object getters: the same for obj[key] named "<where><key>"; absent = 0, *dst untouched. */
int hr_cfg_get_str(struct json_t *obj, const char *key, const char *where, char *dst, size_t cap,
                   int allow_empty, char *err, size_t ecap);
int hr_cfg_get_int(struct json_t *obj, const char *key, const char *where, long long lo,
                   long long hi, long long *dst, char *err, size_t ecap);
int hr_cfg_get_bool(struct json_t *obj, const char *key, const char *where, int *dst, char *err,
                    size_t ecap);
int hr_cfg_get_choice(struct json_t *obj, const char *key, const char *where,
                      const char *const *names, size_t cap, int *idx, char *err, size_t ecap);
/* obj[key] as a non-empty array of strings (at most max of them; max 0: no
 * bound and the error hints that omitting the key matches anything), each
 * accepted by valid() and shorter than cap, into *l (allocated; the caller
 * frees it with hr_strlist_free, also after an error). A rejected string
 * fails with "<where><key>[i]: <what>". Absent = 0, *l untouched. 0,
 * HR_ECONFIG or -ENOMEM. */
int hr_cfg_get_strlist(struct json_t *obj, const char *key, const char *where, hr_strlist *l,
                       size_t cap, size_t max, int (*valid)(const char *), const char *what,
                       char *err, size_t ecap);

#endif
