/* The DICOM objects of a signed report version, for the township's PACS
 * (decision 0025): a Basic Text SR and an Encapsulated PDF in the exam's
 * study, built from the signed payload (decision 0022) with DCMTK through
 * dicom/dcmtk_shim.h. Each object's Series and SOP Instance UIDs are a
 * function of (report id, version, kind), so a rebuilt or resent object is
 * the same object (same UIDs, same bytes). */
#ifndef RPT_REPORT_OBJECTS_H
#define RPT_REPORT_OBJECTS_H

#include "../common/hr_config.h"
#include "../dicom/uids.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum rpt_obj_kind { RPT_OBJ_SR, RPT_OBJ_PDF };

#define RPT_OBJ_SR_SERIES    9901 /* Series Number of the reports' SR series */
#define RPT_OBJ_PDF_SERIES   9902 /* and of their PDF series */
#define RPT_OBJ_EVIDENCE_MAX 1000000
#define RPT_OBJ_UID_MAX      DCM_UID_NAMED_MAX

/* The Series Instance UID (one series per report and kind: every version of
 * a report is an instance of it, Instance Number = version) and the SOP
 * Instance UID of version of report_id as kind: dcm_uid_named() of
 * "huren-report-object\n<kind>\n<report id>[\n<version>]" (kind "sr" or
 * "pdf"; the series' name has no version). Either output may be NULL. 0,
 * -EINVAL (empty id, version < 1), -ENOMEM. */
int rpt_obj_uids(const char *report_id, int version, enum rpt_obj_kind kind,
                 char series[RPT_OBJ_UID_MAX], char sop[RPT_OBJ_UID_MAX]);

/* One instance the SR cites (Current Requested Procedure Evidence). */
typedef struct rpt_obj_ref {
    char series[HR_UID_MAX];
    char sop_class[HR_UID_MAX];
    char sop[HR_UID_MAX];
} rpt_obj_ref;

/* Reads the series and SOP class of every instance of payload.images from
 * the index (hr:{S}:i:<sop>, pipelined); instances no longer indexed are left
 * out. *out is malloc'd (the caller frees it; NULL when *n is 0). Blocking
 * (hiredis): the pool or the CLI. 0; -EINVAL (payload without a valid study
 * UID or instance list); HR_ETOOBIG (over RPT_OBJ_EVIDENCE_MAX); HR_EREDIS;
 * -ENOMEM. */
int rpt_obj_evidence(redisContext *c, const json_t *payload, rpt_obj_ref **out, size_t *n);

/* Writes the Basic Text SR of payload to path (a Part 10 file, created or
 * replaced, not fsync'd: the delivery queue rebuilds it). Findings and
 * impression as TEXT items, the reporting doctor as observer; preliminary:
 * PreliminaryFlag PRELIMINARY and UNVERIFIED; final, amended, corrected and
 * entered-in-error: FINAL and VERIFIED by the last signer (the auditor of a
 * co-signed report) at the signing time; an amendment names the SR of the
 * version it supersedes (Predecessor Documents), a retraction says so in a
 * Comment item. ev (n_ev of them, may be NULL) become the evidence. cfg (may
 * be NULL) names hospitals. 0; -EINVAL (not a payload of schema 1, invalid
 * UIDs); HR_EPARSE (DCMTK refused it); -EIO; -ENOMEM. */
int rpt_obj_write_sr(const hr_config *cfg, const json_t *payload, const rpt_obj_ref *ev,
                     size_t n_ev, const char *path);

/* Writes pdf (len bytes: the rendering of the same version, render_pdf.h)
 * as the Encapsulated PDF of payload to path, like rpt_obj_write_sr. */
int rpt_obj_write_pdf(const hr_config *cfg, const json_t *payload, const uint8_t *pdf, size_t len,
                      const char *path);

#endif
