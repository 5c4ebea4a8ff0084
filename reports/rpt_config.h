/* The configuration section reports/ owns: reports.* (decision 0021: each
 * module owns its sections; hr_config reaches this one through its pointer
 * cfg->reports, so common/ knows none of its fields). */
#ifndef RPT_CONFIG_H
#define RPT_CONFIG_H

#include "../common/hr_config.h"

/* reports: signing keys, the regional CA, the RFC 3161 TSA. Allocated by the
 * section's parse, freed by hr_config_free. */
struct rpt_config {
    char keys_dir[HR_PATH_MAX]; /* signers' keys: <keys_dir>/<user>/{key.p8,chain.pem};
                                   "" in the file: <data_dir>/keys */
    char ca_dir[HR_PATH_MAX];   /* regional CA and trust.pem; "": <data_dir>/ca */
    char tsa_url[HR_PATH_MAX];  /* RFC 3161 TSA (http or https URL); "" = no timestamp */
    int tsa_timeout_ms;         /* whole TSA exchange, 100..120000 */
    int sign_session_s;         /* 0: the PIN is asked for every signature (only value
                                   implemented; decision 0023) */
    int cert_days;              /* validity of certificates `huren keygen` issues */
    /* The reading workbench's report templates and phrase library (issue 10,
     * decision 0034): validated JSON arrays owned by the config (json_decref
     * in free), never NULL after the defaults. templates: [{id, name,
     * modalities [CS], body_parts [CS], findings, impression}]; phrases:
     * [{group, text, modalities [CS]}]. Served as they are by GET
     * /api/v1/report-templates. */
    struct json_t *templates;
    struct json_t *phrases;
};

#define RPT_TEMPLATES_MAX     200  /* templates in reports.templates */
#define RPT_PHRASES_MAX       1000 /* phrases in reports.phrases */
#define RPT_TEMPLATE_NAME_MAX 128  /* bytes of a template's name, of a phrase group */
#define RPT_PHRASE_MAX        1024 /* bytes of a phrase's text */
#define RPT_TEMPLATE_TEXT_MAX 8192 /* bytes of a template's findings, of its impression */
#define RPT_TEMPLATE_CS_MAX   16   /* modalities, body parts per template or phrase */

/* reports: the section. Static storage. */
extern const hr_config_section rpt_config_reports;

/* <ca_dir>/trust.pem of cfg into out (cap). 0 or -ENAMETOOLONG. */
int rpt_config_trust_path(const hr_config *cfg, char *out, size_t cap);

#endif
