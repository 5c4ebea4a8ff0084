/* The only bridge to DCMTK (C++): cross-checks of the streaming scanner
 * (tests, tools), decompression for retrievals to peers that accept only
 * uncompressed transfer syntaxes, and the DICOM objects of a report (Basic
 * Text SR, Encapsulated PDF). No C++ type or exception crosses this
 * header. */
#ifndef DCM_DCMTK_SHIM_H
#define DCM_DCMTK_SHIM_H

#include "dcm_attrs.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Loads path with DCMTK (values longer than 4 KB, i.e. pixel data, are not
 * read into memory), converts the dataset to UTF-8 with DCMTK's
 * convertToUTF8() when it can, and fills *out (zeroed first) with the same
 * fields the scanner extracts; dataset_offset/pixel_offset stay 0 and
 * specific_charset holds the declaration as read. Returns 0, HR_EPARSE when DCMTK
 * cannot read the file, or HR_ECHARSET when only the UTF-8 conversion failed
 * (fields then hold the raw bytes). Caller owns out. */
int dcm_shim_read_attrs(const char *path, dcm_attrs *out);

/* Writes src (a Part 10 file, any transfer syntax DCMTK can decode: the
 * uncompressed ones, deflated, JPEG baseline/extended/lossless, JPEG-LS, RLE;
 * not JPEG 2000) to dst as a Part 10 file in ts_uid, which must be Explicit
 * VR Little Endian or Implicit VR Little Endian, with File Meta Information
 * (group length included) updated. Blocking and memory-hungry (the pixel data
 * is decoded in memory): run on the thread pool. dst is created or
 * overwritten; on error it may be left partly written (the caller removes
 * it). Returns 0, HR_EPARSE (src unreadable), HR_EUNSUP (no codec for src's
 * transfer syntax, or ts_uid not one of the two), -EIO (cannot write dst). */
int dcm_shim_decompress(const char *src, const char *dst, const char *ts_uid);

/* 1 when this build's DCMTK decodes pixel data of transfer syntax ts_uid
 * to native Explicit VR Little Endian: the uncompressed ones, deflated,
 * JPEG baseline/extended/lossless, JPEG-LS, RLE (not JPEG 2000 in DCMTK
 * 3.6.7); else 0 (unknown UIDs too). */
int dcm_shim_can_decode(const char *ts_uid);

/* Decodes the pixel data of the Part 10 file at path (WADO-RS frames in
 * Explicit VR Little Endian, PS3.18 8.7.3.3.2) and copies frames[0..n)
 * (1-based) into a new buffer *out (malloc'd, the caller frees) of
 * n * *frame_len bytes, frame after frame, native little endian, as DCMTK's
 * dcmdjpeg/dcmdjpls/dcmdrle would write them. The decoded object must not
 * exceed max_bytes (frames times frame length, plus the file's size), else
 * HR_ETOOBIG before anything is decoded. Blocking, memory up to ~2x
 * max_bytes: run on the thread pool. 0; HR_EUNSUP (no decoder, BitsAllocated
 * not a multiple of 8, or geometry unusable); HR_ENOTFOUND (no pixel data, a
 * frame number 0 or beyond NumberOfFrames); HR_ETOOBIG; HR_EPARSE (DCMTK
 * cannot read the file or decode it); -ENOMEM. */
int dcm_shim_decode_frames(const char *path, const uint32_t *frames, size_t n, uint64_t max_bytes,
                           uint8_t **out, size_t *frame_len);

/* The Part 10 file at path as a Part 10 file in Explicit VR Little Endian
 * (pixel data decoded, File Meta Information updated by DCMTK) in a new
 * buffer *out (malloc'd, the caller frees) of *len bytes, at most max_bytes
 * (checked before decoding as for dcm_shim_decode_frames, and while
 * writing). Blocking: thread pool. 0, HR_EUNSUP, HR_ETOOBIG, HR_EPARSE,
 * -ENOMEM. */
int dcm_shim_transcode(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len);

/* Registers DCMTK's decoders (JPEG, JPEG-LS, RLE) once per process; they
 * stay registered. Thread-safe; dcm_shim_decompress and hr_render_frame call
 * it. */
void dcm_shim_register_codecs(void);

/* DCMTK's own list of Storage SOP class UIDs (dcmAllStorageSOPClassUIDs), to
 * cross-check dicom/uids.c in tests. *n receives the count; the array and its
 * strings are DCMTK's static storage. */
const char *const *dcm_shim_storage_sop_classes(size_t *n);

/* One instance of the study an SR cites as evidence. */
typedef struct dcm_report_ref {
    const char *series_uid, *sop_class_uid, *sop_uid;
} dcm_report_ref;

/* What a report object holds: every string UTF-8 (the objects declare
 * SpecificCharacterSet ISO_IR 192), NULL or "" for empty; all borrowed.
 * Values are written as given (the caller bounds them to their VR); the
 * object is in the study study_uid, a series and instance of its own. */
typedef struct dcm_report_obj {
    /* patient and study, copied from the exam */
    const char *patient_name, *patient_id, *issuer_of_patient_id, *birth_date, *sex;
    const char *study_uid, *study_date, *study_time, *accession;
    /* the object */
    const char *series_uid, *sop_uid;
    int series_number, instance_number;
    const char *content_date, *content_time, *tz_offset; /* "YYYYMMDD", "HHMMSS", "+0800" */
    const char *institution, *department;                /* the hospital and center that read */
    const char *title; /* document title (the PDF's DocumentTitle) */
    /* Basic Text SR only */
    const char *findings, *impression; /* TEXT items; "" leaves the container empty */
    const char *comment;               /* a TEXT item (121106 Comment) when not "" */
    const char *author;                /* Person Observer Name of the reporting doctor */
    int preliminary;                   /* PreliminaryFlag PRELIMINARY, else FINAL */
    int verified;                      /* VERIFIED by verifier, else UNVERIFIED */
    const char *verifier, *verifier_org, *verify_datetime; /* DT "YYYYMMDDHHMMSS+0800" */
    size_t n_evidence;                                     /* Current Requested Procedure */
    const dcm_report_ref *evidence;                        /* Evidence Sequence */
    const char *predecessor_sop_uid; /* an SR of the same series this one supersedes */
} dcm_report_obj;

/* Writes r as a Basic Text SR (1.2.840.10008.5.1.4.1.1.88.11), Completion
 * Flag COMPLETE, Explicit VR Little Endian Part 10 file at path (created or
 * replaced, not fsync'd), File Meta with huren's implementation UID. Content:
 * CONTAINER (18748-4, LN) with the author (121008, DCM), CONTAINER Findings
 * (121070) > TEXT Finding (121071), CONTAINER Impressions (121072) > TEXT
 * Impression (121073). Identical input writes identical bytes. 0; -EINVAL
 * (a UID not valid, required value missing); HR_EPARSE (DCMTK refused a
 * value); -EIO. */
int dcm_shim_write_text_sr(const dcm_report_obj *r, const char *path);

/* Writes r and the PDF (pdf, len bytes) as an Encapsulated PDF
 * (1.2.840.10008.5.1.4.1.1.104.1) Part 10 file at path, like
 * dcm_shim_write_text_sr (the SR-only fields are ignored). 0, -EINVAL,
 * HR_EPARSE, -EIO. */
int dcm_shim_write_pdf(const dcm_report_obj *r, const uint8_t *pdf, size_t len, const char *path);

struct dcm_aecg;

/* What an ECG waveform object built from an aECG takes besides the ECG
 * itself; all borrowed. */
typedef struct dcm_ecg_ids {
    const char *study_uid, *series_uid, *sop_uid; /* valid UIDs */
    const char *institution;                      /* the source hospital ("" or NULL: none) */
    const char *fallback_dt; /* DICOM DT "YYYYMMDDHHMMSS" used when the ECG has no time */
} dcm_ecg_ids;

/* Builds a DICOM ECG waveform object from e (dicom/aecg.h): 12-Lead ECG
 * Waveform Storage (1.2.840.10008.5.1.4.1.1.9.1.1) when dcm_aecg_is_12lead,
 * else General ECG (...9.1.2). Patient, study (ids' UIDs), series (modality
 * ECG), equipment, waveform identification, an empty acquisition context and
 * one multiplex group "RHYTHM" of 16-bit SS samples, one channel per lead
 * (Channel Source Sequence with the MDC code, sensitivity in uV with
 * correction factor 1, baseline 0); the measurements and the interpretation
 * statements in the Waveform Annotation Sequence; SpecificCharacterSet
 * ISO_IR 192. Each lead is encoded exactly (sensitivity = its scale) when
 * origin/scale is whole and every sample fits 16 bits, else with the
 * smallest sensitivity that fits (*lossy set to 1). The result is a Part 10
 * file in Explicit VR Little Endian (huren's File Meta Information) in a new
 * buffer *out (malloc'd, the caller frees) of *len bytes; *sop_class points
 * to a static string. Blocking (run on the pool). 0; -EINVAL (a UID not
 * valid, no leads); HR_EPARSE (DCMTK refused a value); -ENOMEM. */
int dcm_shim_ecg_encode(const struct dcm_aecg *e, const dcm_ecg_ids *ids, uint8_t **out,
                        size_t *len, const char **sop_class, int *lossy);

#ifdef __cplusplus
}
#endif

#endif
