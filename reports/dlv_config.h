/* The configuration section `delivery` (decision 0026): how a signed report
 * version returns to its source hospital. Per hospital, up to three
 * channels: HL7 v2 ORU^R01 over MLLP, a DICOM object (Basic Text SR and/or
 * Encapsulated PDF) by C-STORE to one of the hospital's C-MOVE destinations,
 * and an HTTPS webhook carrying the compact JWS. Plus the retry schedule
 * and the per-attempt timeouts. Reached through cfg->delivery (allocated by
 * the section's init, freed by hr_config_free). */
#ifndef RPT_DLV_CONFIG_H
#define RPT_DLV_CONFIG_H

#include "../common/hr_config.h"

#define DLV_URL_MAX    1024
#define DLV_SECRET_MAX 512
#define DLV_HD_MAX     128 /* an HL7 HD value (receiving application / facility) */

/* What the DICOM channel sends (bits). */
enum { DLV_WHAT_SR = 1, DLV_WHAT_PDF = 2 };

typedef struct dlv_hl7 {
    int on;
    char host[HR_NAME_MAX]; /* name or address */
    int port;
    char receiving_application[DLV_HD_MAX]; /* MSH-5, may be "" */
    char receiving_facility[DLV_HD_MAX];    /* MSH-6, may be "" */
} dlv_hl7;

typedef struct dlv_dicom {
    int on;
    char ae_title[HR_AE_MAX]; /* one of the hospital's hospitals[].destinations */
    int what;                 /* DLV_WHAT_* bits, at least one */
} dlv_dicom;

typedef struct dlv_webhook {
    int on;
    char url[DLV_URL_MAX];       /* https://..., or http:// to a loopback address */
    char bearer[DLV_SECRET_MAX]; /* "Authorization: Bearer <this>"; "" = none */
    char ca_file[HR_PATH_MAX];   /* PEM trust anchors; "" = the system's */
} dlv_webhook;

/* The channels of one source hospital. */
typedef struct dlv_hospital {
    char id[HR_ID_MAX]; /* one of hospitals[].id */
    dlv_hl7 hl7;
    dlv_dicom dicom;
    dlv_webhook webhook;
} dlv_hospital;

struct dlv_config {
    int retry_initial_s;               /* first retry after this long; doubles per failure ... */
    int retry_max_s;                   /* ... up to this */
    int failing_after;                 /* a delivery with this many failed attempts is "failing" */
    int lease_s;                       /* a claimed attempt is another node's again after this */
    int poll_ms;                       /* the sender looks for due deliveries this often */
    int batch;                         /* deliveries claimed per poll, at most */
    int hl7_timeout_s;                 /* one MLLP attempt: connect, send, ACK */
    int dicom_timeout_s;               /* one DICOM attempt: build, associate, C-STORE, release */
    int webhook_timeout_s;             /* one webhook attempt: connect, POST, response */
    char report_base_url[DLV_URL_MAX]; /* "https://hub.example.org": the report URL in the
                                          ORU; "" = http://<http.listen>:<http.port> */
    size_t n_hospitals;
    dlv_hospital *hospitals;
};

/* The section (static storage), listed in cli/config_sections.c. */
extern const hr_config_section rpt_dlv_config_section;

/* The channels of hospital id, or NULL when it has none configured. */
const dlv_hospital *rpt_dlv_config_hospital(const struct dlv_config *d, const char *id);

#endif
