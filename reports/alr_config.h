/* The configuration section `alerts` (decision 0040): who is told about a
 * critical value and how. Per ordering hospital: its contacts in order
 * (each a user and the channels that reach them), the step timeout, and
 * the hospital's HL7 destination and webhook; per center (by id or by
 * kind) the duty doctor who is the last step. Reached through cfg->alerts
 * (allocated by the section's init, freed by hr_config_free). */
#ifndef RPT_ALR_CONFIG_H
#define RPT_ALR_CONFIG_H

#include "../common/hr_config.h"

#define ALR_CONTACTS_MAX 16
#define ALR_URL_MAX      1024
#define ALR_HD_MAX       128

/* Channel bits of a contact. */
enum { ALR_CH_SSE = 1, ALR_CH_HL7 = 2, ALR_CH_WEBHOOK = 4 };

typedef struct alr_contact {
    char user[HR_ID_MAX];   /* the account that is told and may acknowledge */
    char name[HR_NAME_MAX]; /* display; "" = the user name */
    int channels;           /* ALR_CH_* bits, at least one */
} alr_contact;

typedef struct alr_hospital {
    char id[HR_ID_MAX]; /* one of hospitals[].id */
    int ack_timeout_s;  /* per step; 0 = alerts.ack_timeout_s */
    size_t n_contacts;
    alr_contact contacts[ALR_CONTACTS_MAX];
    int hl7_on;
    char hl7_host[HR_NAME_MAX];
    int hl7_port;
    char hl7_facility[ALR_HD_MAX];    /* MSH-6; "" = none */
    char hl7_application[ALR_HD_MAX]; /* MSH-5; "" = none */
    int webhook_on;
    char webhook_url[ALR_URL_MAX]; /* https, or http to a loopback address */
    char webhook_bearer[512];      /* "" = none */
} alr_hospital;

/* The duty doctor of a center id or a center kind name. */
typedef struct alr_duty {
    char key[HR_ID_MAX]; /* a center id, or "imaging" "ecg" "pathology" "lab" */
    char user[HR_ID_MAX];
} alr_duty;

struct alr_config {
    int ack_timeout_s;     /* a step waits this long for the acknowledgement */
    int poll_ms;           /* the notifier and sweep run this often */
    int batch;             /* alerts swept / notifications sent per poll, at most */
    int retry_s;           /* a failed notification is tried again after this */
    int hl7_timeout_s;     /* one MLLP attempt */
    int webhook_timeout_s; /* one webhook attempt */
    size_t n_hospitals;
    alr_hospital *hospitals;
    size_t n_duty;
    alr_duty *duty;
};

/* The section (static storage), listed in cli/config_sections.c. */
extern const hr_config_section rpt_alr_config_section;

/* The alert settings of hospital id, or NULL. */
const alr_hospital *rpt_alr_config_hospital(const struct alr_config *a, const char *id);
/* The duty doctor for center (by its id first, then its kind), or NULL. */
const char *rpt_alr_config_duty(const hr_config *cfg, const char *center);

#endif
