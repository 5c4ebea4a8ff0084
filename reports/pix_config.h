/* The configuration section persons/ reads: where each hospital's
 * modalities put the national ID or health card number, and (at run time)
 * the HMAC key of person identifiers (decision 0027). */
#ifndef PIX_CONFIG_H
#define PIX_CONFIG_H

#include "../common/hr_config.h"

/* Kinds of regional identifier of a person. */
enum rpt_id_type {
    RPT_ID_NATIONAL,    /* 居民身份证号码: 18 characters, ISO 7064 MOD 11-2 check */
    RPT_ID_HEALTH_CARD, /* 居民健康卡 / health card number */
    RPT_ID_TYPES
};

/* Where a hospital's objects carry a number. */
enum pix_where {
    PIX_WHERE_NONE,       /* nowhere: linked only by POST /api/v1/persons/link */
    PIX_WHERE_PATIENT_ID, /* Patient ID (0010,0020) is the number */
    PIX_WHERE_OTHER_PIDS  /* an item of Other Patient IDs Sequence (0010,1002) whose
                             Issuer of Patient ID (0010,0021) is `issuer` */
};

/* One place of one hospital's objects where a number is found. */
typedef struct pix_source {
    char hospital[HR_ID_MAX]; /* one of cfg->hospitals[].id (the sender of the object) */
    enum pix_where where;
    enum rpt_id_type id_type;
    char issuer[HR_NAME_MAX]; /* PIX_WHERE_OTHER_PIDS: the item's issuer, exact */
} pix_source;

#define PIX_KEY_LEN          32 /* bytes of the HMAC-SHA256 key */
#define PIX_SOURCES_PER_HOSP 4  /* sources of one hospital at most */

/* cfg->persons. The key is not configuration: huren serve loads it from
 * <data_dir>/keys/person-id.key (rpt_person_key_open) after the file is read;
 * have_key is 0 until then (person functions answer HR_ESTATE). */
struct pix_config {
    size_t n_sources;
    pix_source *sources;
    int have_key;
    unsigned char key[PIX_KEY_LEN];
};
typedef struct pix_config pix_config;

/* persons: {sources: [{hospital, where, id_type, issuer}]}. Static storage. */
extern const hr_config_section pix_config_persons;

/* "national_id" "health_card"; "?" out of range. */
const char *rpt_id_type_name(enum rpt_id_type t);
/* The type named s, or -1. */
int rpt_id_type_parse(const char *s);

#endif
