/* dicom/uids.c: the Storage SOP class table (sorted, valid, a superset of
 * DCMTK's dcmAllStorageSOPClassUIDs through the shim, the classes modalities
 * send that the first table lacked), and which unknown UIDs may still be
 * storage (private and Storage-arc UIDs, not other services). */
#include "dicom/dcmtk_shim.h"
#include "dicom/uids.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(uids, storage_table_sorted_unique_valid)
{
    size_t n;
    const dcm_sop_class_info *t = dcm_storage_sop_classes(&n);
    cr_assert_geq(n, 190, "only %zu storage classes", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(dcm_uid_valid(t[i].uid), "%s", t[i].uid);
        cr_assert(t[i].name && strstr(t[i].name, "Storage"), "%s: %s", t[i].uid, t[i].name);
        if (i)
            cr_assert_lt(strcmp(t[i - 1].uid, t[i].uid), 0, "%s before %s", t[i - 1].uid, t[i].uid);
        cr_assert_eq(dcm_storage_sop_class(t[i].uid), &t[i], "%s not found", t[i].uid);
    }
}

Test(uids, storage_table_covers_dcmtk)
{
    size_t n = 0;
    const char *const *d = dcm_shim_storage_sop_classes(&n);
    cr_assert_gt(n, 150);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(dcm_storage_sop_class(d[i]), "DCMTK storage class %s missing", d[i]);
}

Test(uids, classes_real_modalities_send)
{
    static const char *const k[] = {
        "1.2.840.10008.5.1.4.1.1.66.4",     /* Segmentation */
        "1.2.840.10008.5.1.4.1.1.88.59",    /* Key Object Selection */
        "1.2.840.10008.5.1.4.1.1.11.1",     /* Grayscale Softcopy Presentation State */
        "1.2.840.10008.5.1.4.1.1.2.1",      /* Enhanced CT */
        "1.2.840.10008.5.1.4.1.1.4.1",      /* Enhanced MR */
        "1.2.840.10008.5.1.4.1.1.13.1.3",   /* Breast Tomosynthesis */
        "1.2.840.10008.5.1.4.1.1.77.1.5.1", /* Ophthalmic Photography 8 Bit */
        "1.2.840.10008.5.1.4.1.1.77.1.5.4", /* Ophthalmic Tomography */
        "1.2.840.10008.5.1.4.1.1.481.5",    /* RT Plan */
        "1.2.840.10008.5.1.4.1.1.481.8",    /* RT Ion Plan */
        "1.2.840.10008.5.1.4.1.1.481.4",    /* RT Beams Treatment Record */
        "1.2.840.10008.5.1.4.1.1.88.67",    /* X-Ray Radiation Dose SR */
        "1.2.840.10008.5.1.4.1.1.1.2",      /* Digital Mammography For Presentation */
        "1.2.840.10008.5.1.4.1.1.12.1.1",   /* Enhanced XA */
        "1.2.840.10008.5.1.4.1.1.130",      /* Enhanced PET */
        "1.2.840.10008.5.1.4.1.1.104.2",    /* Encapsulated CDA */
        "1.2.840.10008.5.1.4.1.1.9.4.1",    /* Basic Voice Audio Waveform */
        "1.2.840.10008.5.1.4.1.1.66.7",     /* Label Map Segmentation (2024) */
        "1.2.840.10008.5.1.4.1.1.9.1.4",    /* General 32-bit ECG Waveform (2023) */
        "1.2.840.10008.5.1.4.1.1.6.3",      /* Photoacoustic (2023) */
        "1.2.840.10008.5.1.4.1.1.3",        /* US Multi-frame (retired) */
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        cr_assert_not_null(dcm_storage_sop_class(k[i]), "%s", k[i]);
}

Test(uids, unknown_storage_candidates)
{
    /* private classes and classes newer than the table */
    cr_assert(dcm_uid_storage_candidate("1.2.826.0.1.3680043.9999.1"));
    cr_assert(dcm_uid_storage_candidate("2.25.123456789"));
    cr_assert(dcm_uid_storage_candidate("1.2.840.113619.4.2")); /* a vendor root */
    cr_assert(dcm_uid_storage_candidate("1.2.840.100081.5"));   /* not below 1.2.840.10008 */
    cr_assert(dcm_uid_storage_candidate("1.2.840.10008.5.1.4.1.1.999.1"));
    /* services huren implements or refuses: never storage */
    static const char *const no[] = {
        DCM_UID_VERIFICATION,
        "1.2.840.10008.1.20.1",          /* Storage Commitment Push Model */
        "1.2.840.10008.3.1.2.3.3",       /* Modality Performed Procedure Step */
        "1.2.840.10008.5.1.1.9",         /* Basic Grayscale Print Management Meta */
        "1.2.840.10008.5.1.1.1",         /* Basic Film Session */
        "1.2.840.10008.5.1.4.31",        /* Modality Worklist FIND */
        "1.2.840.10008.5.1.4.1.2.2.1",   /* Study Root Q/R FIND */
        "1.2.840.10008.5.1.4.1.2.2.3",   /* Study Root Q/R GET */
        "1.2.840.10008.5.1.4.34.6.1",    /* UPS Push */
        "1.2.840.10008.5.1.4.38.1",      /* Hanging Protocol Storage (no patient) */
        "1.2.840.10008.5.1.4.1.1.200.1", /* CT Defined Procedure Protocol (no patient) */
        "1.2.840.10008.5.1.4.1.1.201.1", /* Inventory (no patient) */
        "1.2.840.10008.5.1.4.1.1",       /* the arc itself */
        DCM_TS_EXPLICIT_LE,              /* a transfer syntax */
        DCM_UID_APP_CONTEXT,             /* the application context */
        "1.2.3.04",                      /* invalid: leading zero */
        "1.2.3.",                        /* invalid: empty component */
        "",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        cr_assert_not(dcm_uid_storage_candidate(no[i]), "%s", no[i]);
        cr_assert_not(dcm_storage_accepted(no[i], 1), "%s", no[i]);
    }
    cr_assert_not(dcm_uid_storage_candidate(NULL));
    /* the switch */
    cr_assert(dcm_storage_accepted("1.2.826.0.1.3680043.9999.1", 1));
    cr_assert_not(dcm_storage_accepted("1.2.826.0.1.3680043.9999.1", 0));
    cr_assert(dcm_storage_accepted("1.2.840.10008.5.1.4.1.1.88.59", 0));
    cr_assert_not(dcm_storage_accepted(NULL, 1));
}

Test(uids, named_uids)
{
    char u[DCM_UID_NAMED_MAX], v[DCM_UID_NAMED_MAX];
    /* expected values computed independently (Python hashlib, the same recipe) */
    cr_assert_eq(dcm_uid_named("huren", 5, u, sizeof(u)), 0);
    cr_expect_str_eq(u, "2.25.24373483787969087760858441026727762746");
    cr_assert_eq(dcm_uid_named("", 0, u, sizeof(u)), 0);
    cr_expect_str_eq(u, "2.25.302652579918966106791432553938847512868");
    cr_expect(dcm_uid_valid(u));
    cr_assert_eq(dcm_uid_named("hurem", 5, v, sizeof(v)), 0);
    cr_expect_str_neq(u, v);
    cr_expect_eq(dcm_uid_named("huren", 5, u, DCM_UID_NAMED_MAX - 1), -ENOSPC);
}
