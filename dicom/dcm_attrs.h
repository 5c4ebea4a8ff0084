/* Index attributes of one DICOM instance, extracted by the scanner. All
 * strings are NUL-terminated UTF-8 with trailing padding removed; a value that
 * does not fit is truncated at a character boundary. Empty string = absent. */
#ifndef DCM_ATTRS_H
#define DCM_ATTRS_H

#include <stdint.h>

#define DCM_UI_MAX 65  /* UI: 64 chars + NUL */
#define DCM_SH_MAX 68  /* SH/CS/DA/TM/IS/DS after UTF-8 conversion (16 chars * 4 + NUL) */
#define DCM_LO_MAX 256 /* LO after UTF-8 conversion (64 chars * up to 4 bytes) */
#define DCM_PN_MAX 400 /* PN, all component groups, UTF-8 */
/* Items of Other Patient IDs Sequence (0010,1002) kept; later items are walked, not kept. */
#define DCM_OTHER_PIDS_MAX 8

/* One item of Other Patient IDs Sequence: another issuer's identifier of the
 * patient (e.g. a national ID or health card number; reports/person.h). */
typedef struct dcm_other_pid {
    char id[DCM_LO_MAX];     /* (0010,0020) inside the item */
    char issuer[DCM_LO_MAX]; /* (0010,0021) inside the item */
} dcm_other_pid;

typedef struct dcm_attrs {
    /* File Meta Information (group 0002), when the stream has it */
    char media_sop_class_uid[DCM_UI_MAX];    /* (0002,0002) */
    char media_sop_instance_uid[DCM_UI_MAX]; /* (0002,0003) */
    char transfer_syntax_uid[DCM_UI_MAX];    /* (0002,0010), or the one given to init */
    char source_ae[DCM_SH_MAX];              /* (0002,0016) */
    char private_info[DCM_LO_MAX];           /* (0002,0102), huren: hospital id */

    char specific_charset[DCM_LO_MAX];     /* (0008,0005) as declared, backslash-separated */
    char sop_class_uid[DCM_UI_MAX];        /* (0008,0016) */
    char sop_instance_uid[DCM_UI_MAX];     /* (0008,0018) */
    char study_date[DCM_SH_MAX];           /* (0008,0020) */
    char series_date[DCM_SH_MAX];          /* (0008,0021) */
    char study_time[DCM_SH_MAX];           /* (0008,0030) */
    char accession_number[DCM_SH_MAX];     /* (0008,0050) */
    char modality[DCM_SH_MAX];             /* (0008,0060) */
    char institution_name[DCM_LO_MAX];     /* (0008,0080) */
    char referring_physician[DCM_PN_MAX];  /* (0008,0090) */
    char study_description[DCM_LO_MAX];    /* (0008,1030) */
    char series_description[DCM_LO_MAX];   /* (0008,103E) */
    char performing_physician[DCM_PN_MAX]; /* (0008,1050) */
    char patient_name[DCM_PN_MAX];         /* (0010,0010) */
    char patient_id[DCM_LO_MAX];           /* (0010,0020) */
    char issuer_of_patient_id[DCM_LO_MAX]; /* (0010,0021) */
    char patient_birth_date[DCM_SH_MAX];   /* (0010,0030) */
    char patient_sex[DCM_SH_MAX];          /* (0010,0040) */
    char body_part[DCM_SH_MAX];            /* (0018,0015) */
    char study_instance_uid[DCM_UI_MAX];   /* (0020,000D) */
    char series_instance_uid[DCM_UI_MAX];  /* (0020,000E) */
    char study_id[DCM_SH_MAX];             /* (0020,0010) */
    char series_number[DCM_SH_MAX];        /* (0020,0011) */
    char instance_number[DCM_SH_MAX];      /* (0020,0013) */
    char number_of_frames[DCM_SH_MAX];     /* (0028,0008) */
    /* (0010,1002) Other Patient IDs Sequence, its first DCM_OTHER_PIDS_MAX
     * items in order; an entry whose id is "" was absent */
    dcm_other_pid other_pids[DCM_OTHER_PIDS_MAX];

    /* Charset detection outcome for the text above: the charset actually used
     * for conversion ("ISO_IR 100", "ISO_IR 192", "GB18030", ...) and whether
     * it differs from the declaration (mislabelled township data). */
    char charset_used[DCM_SH_MAX];
    int charset_guessed;

    int has_pixel_data;      /* (7FE0,0010) or float/double pixel data seen */
    uint64_t dataset_offset; /* byte offset of the first dataset element (after FMI) */
    uint64_t pixel_offset;   /* byte offset of the Pixel Data tag; for deflated data:
                                dataset_offset + offset in the inflated stream */
} dcm_attrs;

#endif
