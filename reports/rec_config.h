/* The configuration section of mutual recognition (decision 0027): the
 * recognition catalogue, the quality-control status of each issuing center,
 * and how long a lookup grants access to the results it found. */
#ifndef REC_CONFIG_H
#define REC_CONFIG_H

#include "../common/hr_config.h"

#define REC_CODE_MAX  33 /* item code: 1-32 of [A-Za-z0-9._-] */
#define REC_LOINC_MAX 12 /* "nnnnnnn-n" */
#define REC_MARK_MAX  64 /* HR mark text, UTF-8 */
#define REC_ITEMS_MAX 1000
#define REC_QC_MAX    1000

/* Where a recognized result is valid. */
enum rec_scope { REC_SCOPE_COMMUNITY, REC_SCOPE_CITY, REC_SCOPE_PROVINCE, REC_SCOPES };

/* How an exam matches an item: every present list must match one value
 * (n == 0: absent, matches anything). */
typedef struct rec_match {
    hr_strlist modalities; /* (0008,0060), ASCII case-insensitive */
    hr_strlist body_parts; /* (0018,0015), ASCII case-insensitive */
    hr_strlist procedures; /* substrings of the procedure text, ASCII case-insensitive */
    hr_strlist codes;      /* procedure or item codes of the exam, exact */
} rec_match;

/* One item of the recognition catalogue. */
typedef struct rec_item {
    char code[REC_CODE_MAX];   /* local code, the id of the item */
    char loinc[REC_LOINC_MAX]; /* "" when none */
    char name[HR_NAME_MAX];
    enum hr_center_kind category; /* imaging | ecg | pathology | lab */
    rec_match match;
    enum rec_scope scope;
    int validity_days; /* valid until signing date + validity_days */
    char hr_mark[REC_MARK_MAX];
    long long price_fen; /* price of the exam, fen (1/100 yuan) */
    hr_strlist tests;    /* lab items: OBX-3 test codes (LOINC or local) that are this item;
                            a person's lab results of these codes appear in the lookup
                            (decision 0041) */
} rec_item;

/* A center's passed quality control (室间质评 / 影像质控) for some items,
 * from..to inclusive. */
typedef struct rec_qc {
    char center[HR_ID_MAX]; /* one of cfg->centers[].id */
    int all_items;          /* "items": "*" */
    hr_strlist items;       /* else these item codes */
    int from, to;           /* dates as YYYYMMDD numbers */
} rec_qc;

/* cfg->recognition. */
struct rec_config {
    size_t n_items;
    rec_item *items;
    size_t n_qc;
    rec_qc *qc;
    int grant_hours;    /* a lookup grants access to its studies this long */
    int grant_seconds;  /* > 0: this many seconds instead (tests) */
    int lookup_studies; /* a lookup examines the person's newest studies, at most */
    int days_ahead;     /* tests only: results are judged this many days after today */
};
typedef struct rec_config rec_config;

/* recognition: {items, qc, grant_hours, grant_seconds, lookup_studies}.
 * Static storage. */
extern const hr_config_section rec_config_recognition;

/* "community" "city" "province"; "?" out of range. */
const char *rec_scope_name(enum rec_scope s);
/* The lab item (category lab) whose tests list code, or NULL. */
const rec_item *rec_item_by_test(const hr_config *cfg, const char *code);
/* The catalogue item with this code, or NULL. */
const rec_item *rec_item_find(const hr_config *cfg, const char *code);
/* 1 when s is a valid item code (1-32 of [A-Za-z0-9._-]). */
int rec_code_valid(const char *s);
/* The grant's length in ms (grant_seconds, else grant_hours). */
long long rec_grant_ms(const hr_config *cfg);
/* The local day (YYYYMMDD) on which results are judged at now_ms: today,
 * plus days_ahead (tests). */
int rec_today(const hr_config *cfg, long long now_ms);

#endif
