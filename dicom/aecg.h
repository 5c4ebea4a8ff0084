/* HL7 v3 annotated ECG (aECG, namespace urn:hl7-org:v3) import, decision
 * 0039: one XML document read with libxml2 into the leads, the subject and
 * the measurements a DICOM ECG waveform object carries (dcmtk_shim.h
 * dcm_shim_ecg_encode). Hostile input is bounded: the document size, the
 * number of leads and samples; a document with a DTD (internal subset or
 * external identifier) is refused before any entity could be expanded, no
 * network access, no external entity. */
#ifndef DCM_AECG_H
#define DCM_AECG_H

#include <stddef.h>
#include <stdint.h>

#define DCM_AECG_DOC_MAX     (32u << 20) /* bytes of one document (the HTTP layer checks first) */
#define DCM_AECG_LEADS_MAX   64          /* leads of one sequence set */
#define DCM_AECG_SAMPLES_MAX (1u << 20)  /* samples per lead */
#define DCM_AECG_MEAS_MAX    32          /* measurements kept (more are ignored) */
#define DCM_AECG_TEXT_MAX    32          /* interpretation statements kept */
#define DCM_AECG_WHY_MAX     200         /* a refusal's reason, one English sentence */

/* One lead: its digits as written and their scale; value in microvolts =
 * origin_uv + scale_uv * digit. */
typedef struct dcm_aecg_lead {
    char label[8];    /* "I", "II", "III", "aVR", ..., "V6" (from the MDC_ECG_LEAD_ code) */
    char mdc[16];     /* DICOM MDC code value of the lead, "2:1" */
    char meaning[48]; /* its code meaning, "Lead I" */
    double origin_uv; /* origin, converted to microvolts */
    double scale_uv;  /* scale, converted to microvolts (> 0) */
    int32_t *digits;  /* n digits (owned by the dcm_aecg) */
    size_t n;
} dcm_aecg_lead;

/* One global measurement (an annotation with a numeric value). */
typedef struct dcm_aecg_meas {
    char hl7[48];     /* the aECG code, "MDC_ECG_TIME_PD_QTc" */
    char scheme[16];  /* DICOM coding scheme of the concept ("MDC", or "99HUREN") */
    char code[24];    /* DICOM code value ("2:16160") */
    char meaning[48]; /* code meaning ("QT duration, global") */
    double value;
    char unit[16]; /* UCUM unit as written ("ms", "bpm" becomes "/min", "deg") */
    char unit_meaning[32];
} dcm_aecg_meas;

/* A parsed document; every string UTF-8, "" when absent. */
typedef struct dcm_aecg {
    char id[160];           /* AnnotatedECG/id: root, "^" and extension when there is one */
    char acquired[27];      /* effectiveTime (low, else the value) as a DICOM DT, "" if absent */
    char patient_id[65];    /* trialSubject/id extension (else root) */
    char patient_name[324]; /* DICOM PN "family^given" or the name text, at most 64 bytes */
    char birth_date[9];     /* YYYYMMDD */
    char sex[2];            /* "M", "F", "O" or "" */
    double sampling_hz;     /* from the TIME_ABSOLUTE/TIME_RELATIVE increment */
    size_t n_samples;       /* of every lead (they are all equally long) */
    size_t n_leads;
    dcm_aecg_lead leads[DCM_AECG_LEADS_MAX];
    size_t n_meas;
    dcm_aecg_meas meas[DCM_AECG_MEAS_MAX];
    size_t n_text;
    char *text[DCM_AECG_TEXT_MAX]; /* interpretation statements (owned) */
} dcm_aecg;

/* Parses one aECG document (xml, len bytes, at most DCM_AECG_DOC_MAX). The
 * first series of the document and the first sequence set in it are read:
 * its time sequence gives the sampling frequency, its MDC_ECG_LEAD_ sequences
 * the leads (digits, origin and scale in uV or mV); the annotations under
 * that series (heart rate, PR, QRS, QT, QTc, axes, interpretation
 * statements) the measurements. On 0, *out is the document (free with
 * dcm_aecg_free). On failure why (cap bytes, may be NULL) holds one English
 * sentence and the code is HR_EPARSE (not XML, not an aECG, values
 * missing or invalid, lengths differ), HR_EUNSUP (a DTD, an unknown lead, a
 * unit that is not a voltage), HR_ETOOBIG (a bound exceeded) or -ENOMEM.
 * Thread-safe (libxml2 is initialised once). */
int dcm_aecg_parse(const uint8_t *xml, size_t len, dcm_aecg **out, char *why, size_t cap);

/* Frees e and everything it owns; NULL is ignored. */
void dcm_aecg_free(dcm_aecg *e);

/* 1 when e can be a 12-Lead ECG Waveform Storage object (PS3.3 A.34.3.4:
 * the 12 standard leads, 200..1000 Hz, at most 16384 samples = 16 s at
 * 1 kHz... ), else 0 (then General ECG: up to 2 kHz and 24 channels). */
int dcm_aecg_is_12lead(const dcm_aecg *e);

#endif
