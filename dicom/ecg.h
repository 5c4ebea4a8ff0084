/* DICOM waveforms (PS3.3 C.10.9 Waveform module): 12-lead ECG, General ECG
 * and any other waveform class, decoded from a whole object held in memory
 * into samples in physical units, then written as the ECG waveform JSON of
 * GET /api/v1/ecg/{instance} (decision 0038). Pure: no I/O, no globals.
 *
 * Reading: the object is parsed with dcm_ds_parse() (dataset.h), so the
 * element rule of every huren reader applies (Implicit VR LE, Explicit VR LE
 * and BE; sequences of defined or undefined length). Each item of the
 * Waveform Sequence (5400,0100) is a multiplex group: Number of Waveform
 * Channels (003A,0005) and Samples (003A,0010), Sampling Frequency
 * (003A,001A), Waveform Bits Allocated (5400,1004) 8 or 16 with Sample
 * Interpretation (5400,1006) SB/UB or SS/US, Waveform Data (5400,1010)
 * interleaved (sample 0 of every channel, then sample 1, ...), one Channel
 * Definition Sequence (003A,0200) item per channel.
 *
 * A sample becomes (raw + baseline) * sensitivity * correction, as pydicom's
 * waveform_array() computes it (baseline (003A,0213) default 0, sensitivity
 * (003A,0210) and correction (003A,0212) default 1), then is converted to
 * microvolts when the Channel Sensitivity Units (003A,0211) code is a
 * voltage (uV, mV, V, nV); other units are kept as coded.
 *
 * Leads: the Channel Source Sequence (003A,0208) code names the lead. MDC
 * "2:1" (or its 32-bit form 131329) and SCPECG "5.6.3-9-1" are lead I; the
 * terms 1 2 61 62 63 64 3..8 map to I II III aVR aVL aVF V1..V6. Other codes
 * keep their meaning ("Lead X" becomes "X"); a channel without a code is
 * "CH<n>" (1-based).
 *
 * Measurements and interpretation come from the Waveform Annotation
 * Sequence (0040,B020): an item with a Numeric Value (0040,A30A) is a
 * measurement (Concept Name Code (0040,A043), Measurement Units (0040,08EA));
 * an Unformatted Text Value (0070,0006) or a Text Value (0040,A160) is one
 * interpretation statement. Fiducial points (Referenced Sample Positions)
 * are not output.
 *
 * Bounds, checked before allocating: DCM_ECG_MAX_INPUT bytes of object,
 * DCM_ECG_MAX_GROUPS groups, DCM_ECG_MAX_CHANNELS channels per group,
 * DCM_ECG_MAX_VALUES samples x channels over all groups, and the Waveform
 * Data length against channels x samples x bytes per sample. */
#ifndef DCM_ECG_H
#define DCM_ECG_H

#include "common/hr_buf.h"
#include "dicom/dataset.h"

#include <stddef.h>
#include <stdint.h>

#define DCM_ECG_MAX_INPUT      (64u << 20)           /* bytes of a whole object */
#define DCM_ECG_MAX_GROUPS     16                    /* multiplex groups */
#define DCM_ECG_MAX_CHANNELS   64                    /* channels per group */
#define DCM_ECG_MAX_VALUES     (10u * 1000u * 1000u) /* samples x channels, all groups */
#define DCM_ECG_MAX_STATEMENTS 256 /* measurements, and interpretation statements */

#define DCM_ECG_UID_12LEAD  "1.2.840.10008.5.1.4.1.1.9.1.1"
#define DCM_ECG_UID_GENERAL "1.2.840.10008.5.1.4.1.1.9.1.2"

/* A coded concept; empty strings when absent. UTF-8. */
typedef struct dcm_ecg_code {
    char scheme[17];  /* (0008,0102) */
    char value[65];   /* (0008,0100) */
    char meaning[65]; /* (0008,0104) */
} dcm_ecg_code;

typedef struct dcm_ecg_channel {
    char lead[65];     /* "I" ... "V6", another code meaning, or "CH<n>" */
    dcm_ecg_code code; /* Channel Source Sequence code */
    char units[17];    /* "uV" when converted to microvolts, else the coded unit or "" */
    double *data;      /* n_samples values of the group, owned by the dcm_ecg */
} dcm_ecg_channel;

typedef struct dcm_ecg_group {
    char label[65];      /* Multiplex Group Label (003A,0020), "" when absent */
    double fs;           /* sampling frequency, Hz, > 0 */
    uint32_t n_samples;  /* per channel */
    unsigned bits;       /* 8 or 16 */
    char interp[3];      /* "SS" "US" "SB" "UB" */
    size_t n_channels;   /* 1..DCM_ECG_MAX_CHANNELS */
    dcm_ecg_channel *ch; /* n_channels, owned by the dcm_ecg */
} dcm_ecg_group;

typedef struct dcm_ecg_meas {
    char name[65];     /* concept code meaning (or value when no meaning) */
    dcm_ecg_code code; /* Concept Name Code */
    double value;
    char unit[17]; /* Measurement Units code value ("ms", "deg", "bpm"), "" when absent */
} dcm_ecg_meas;

/* A decoded waveform object. All strings UTF-8, NUL-terminated, "" when
 * absent. Free with dcm_ecg_free(). */
typedef struct dcm_ecg {
    char instance[65], study[65], series[65], sop_class[65];
    char modality[17];
    char patient_name[193]; /* ideographic PN group if any, else alphabetic; components
                               joined with spaces, without for non-ASCII (decision 0025) */
    char patient_id[65];
    char patient_sex[17];
    char birth_date[17];
    char acquired[20]; /* "YYYY-MM-DDThh:mm:ss" from Acquisition DateTime, else Content
                          Date/Time, else Study Date/Time; "" when none */
    size_t n_groups;
    dcm_ecg_group *groups;
    size_t n_meas;
    dcm_ecg_meas *meas;
    size_t n_interp;
    char **interp; /* n_interp statements */
} dcm_ecg;

/* Decodes a whole Part 10 object (preamble + "DICM" + meta + data set) of n
 * bytes (n <= DCM_ECG_MAX_INPUT). p is only read during the call. On success
 * *out is a new dcm_ecg the caller frees with dcm_ecg_free(). On error *out
 * is NULL and, when err is not NULL, err (cap bytes) holds one English
 * sentence. Returns 0; HR_ENOTFOUND when the object has no Waveform
 * Sequence (not a waveform); HR_EUNSUP (transfer syntax, bits allocated,
 * sample interpretation such as mu-law); HR_EPARSE (malformed object or
 * attribute); HR_ETRUNC (object or Waveform Data shorter than declared);
 * HR_EMISMATCH (channel definitions vs channel count, interpretation vs
 * bits); HR_EMISSING (a required waveform attribute absent); HR_ETOOBIG
 * (a bound above); -ENOMEM. */
int dcm_ecg_decode(const uint8_t *p, size_t n, dcm_ecg **out, char *err, size_t cap);

/* The same on a data set already parsed (e.g. built by the aECG import or a
 * test). ds is only read. Same results. */
int dcm_ecg_decode_ds(const dcm_ds *ds, dcm_ecg **out, char *err, size_t cap);

/* Frees e and everything it owns. NULL is a no-op. */
void dcm_ecg_free(dcm_ecg *e);

/* Appends the ECG waveform JSON (brief "ECG waveform JSON", decision 0038)
 * of e to out: instance, study, sop_class, patient, acquired, groups with
 * channels (lead, code, units, data rounded to 0.1), measurements,
 * interpretation. Numbers are written as integers when their rounded value
 * is integral. On error out->len is restored. 0, HR_ETOOBIG (out's cap) or
 * -ENOMEM. */
int dcm_ecg_to_json(const dcm_ecg *e, hr_buf *out);

/* The lead label of a Channel Source code ("I", "aVR", "V6") or NULL when
 * the code is not one of the twelve standard leads (MDC or SCPECG). */
const char *dcm_ecg_lead_name(const char *scheme, const char *value);

#endif
