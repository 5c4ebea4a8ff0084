/* The configuration section of lab results over HL7 v2 (decisions 0035,
 * 0041): which sending facility is which hospital, the default character
 * set per hospital, critical values, and which lab reports the county lab
 * center reviews. */
#ifndef LAB_CONFIG_H
#define LAB_CONFIG_H

#include "../common/hr_config.h"

#define LAB_FACILITIES_MAX 1000
#define LAB_RANGES_MAX     1000
#define LAB_RULES_MAX      200
#define LAB_CODE_MAX       64 /* bytes of a test code or coding system, NUL included */
#define LAB_UNIT_MAX       64
#define LAB_CHARSET_MAX    32

/* MSH-4 (namespace id) -> hospital. */
typedef struct lab_facility {
    char facility[HR_NAME_MAX];
    char hospital[HR_ID_MAX];
} lab_facility;

/* A hospital's MSH-18 when its messages leave it empty. */
typedef struct lab_charset {
    char hospital[HR_ID_MAX];
    char charset[LAB_CHARSET_MAX];
} lab_charset;

/* A critical range of one test: a value below low or above high is critical. */
typedef struct lab_range {
    char test[LAB_CODE_MAX];
    char system[LAB_CODE_MAX]; /* "" = any coding system */
    int has_low, has_high;
    double low, high;
    char unit[LAB_UNIT_MAX]; /* "" = any; else the OBX-6 unit must equal it */
} lab_range;

/* A review rule: lab reports of these hospitals with one of these tests
 * (OBR-4 or an OBX-3 code; n == 0 matches anything) go to the center. */
typedef struct lab_rule {
    hr_strlist hospitals;
    hr_strlist tests;
    char center[HR_ID_MAX]; /* a center of kind lab */
    enum hr_priority priority;
} lab_rule;

/* cfg->lab. */
struct lab_config {
    size_t n_facilities;
    lab_facility *facilities;
    size_t n_charsets;
    lab_charset *charsets;
    int flag_aa, flag_gt, flag_lt; /* critical_flags: "AA" ">" "<" (HH LL always) */
    size_t n_ranges;
    lab_range *ranges;
    size_t n_rules;
    lab_rule *rules;
    char default_charset[LAB_CHARSET_MAX]; /* MSH-18 when neither message nor hospital says */
};
typedef struct lab_config lab_config;

/* lab: {facilities, charsets, default_charset, critical_flags,
 * critical_ranges, review}. Static storage. */
extern const hr_config_section lab_config_lab;

/* The hospital of sending facility MSH-4 (lab.facilities, else a hospital
 * whose id equals it), or NULL. */
const char *lab_config_hospital_of(const hr_config *cfg, const char *facility);
/* The default MSH-18 of a hospital's messages. Never NULL. */
const char *lab_config_charset(const hr_config *cfg, const char *hospital);
/* The first review rule matching, or NULL. tests: the n codes of the report. */
const lab_rule *lab_config_review(const hr_config *cfg, const char *hospital,
                                  const char *const *tests, size_t n);

#endif
