// DCMTK bridge: see dcmtk_shim.h. Exceptions never leave this file.
#include "dcmtk_shim.h"

#include "common/hr_err.h"
extern "C" {
#include "common/hr_buf.h"
#include "p10.h"
#include "uids.h"
}

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

namespace
{

const Uint32 k_max_read = 4096; // longer values stay on disk

void put(DcmItem *item, const DcmTagKey &key, char *dst, size_t cap)
{
    OFString v;
    DcmElement *el = NULL;
    dst[0] = '\0';
    if (!item || item->findAndGetElement(key, el, OFFalse).bad() || !el)
        return;
    if (el->ident() == EVR_UN) {
        // written with VR UN (e.g. by gdcmconv): the value bytes are the text
        Uint8 *raw = NULL;
        if (el->getUint8Array(raw).good() && raw)
            v.assign(reinterpret_cast<const char *>(raw), el->getLength());
    } else if (el->getOFStringArray(v).bad()) {
        return;
    }
    size_t n = v.length();
    const char *p = v.c_str();
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    while (n > 0 && *p == ' ') {
        p++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    std::memcpy(dst, p, n);
    dst[n] = '\0';
}

int read_attrs(const char *path, dcm_attrs *out)
{
    DcmFileFormat ff;
    OFCondition st = ff.loadFile(path, EXS_Unknown, EGL_noChange, k_max_read, ERM_autoDetect);
    if (st.bad())
        return HR_EPARSE;
    int rc = 0;
    DcmMetaInfo *mi = ff.getMetaInfo();
    DcmDataset *ds = ff.getDataset();
    put(ds, DCM_SpecificCharacterSet, out->specific_charset, sizeof(out->specific_charset));
    if (ds && ds->convertToUTF8().bad())
        rc = HR_ECHARSET;
    put(mi, DCM_MediaStorageSOPClassUID, out->media_sop_class_uid,
        sizeof(out->media_sop_class_uid));
    put(mi, DCM_MediaStorageSOPInstanceUID, out->media_sop_instance_uid,
        sizeof(out->media_sop_instance_uid));
    put(mi, DCM_TransferSyntaxUID, out->transfer_syntax_uid, sizeof(out->transfer_syntax_uid));
    put(mi, DCM_SourceApplicationEntityTitle, out->source_ae, sizeof(out->source_ae));
    put(mi, DCM_PrivateInformation, out->private_info, sizeof(out->private_info));
    if (!out->transfer_syntax_uid[0] && ds) {
        DcmXfer x(ds->getOriginalXfer());
        std::snprintf(out->transfer_syntax_uid, sizeof(out->transfer_syntax_uid), "%s",
                      x.getXferID());
    }
#define P(tag, field) put(ds, tag, out->field, sizeof(out->field))
    P(DCM_SOPClassUID, sop_class_uid);
    P(DCM_SOPInstanceUID, sop_instance_uid);
    P(DCM_StudyDate, study_date);
    P(DCM_SeriesDate, series_date);
    P(DCM_StudyTime, study_time);
    P(DCM_AccessionNumber, accession_number);
    P(DCM_Modality, modality);
    P(DCM_InstitutionName, institution_name);
    P(DCM_ReferringPhysicianName, referring_physician);
    P(DCM_StudyDescription, study_description);
    P(DCM_SeriesDescription, series_description);
    P(DCM_PerformingPhysicianName, performing_physician);
    P(DCM_PatientName, patient_name);
    P(DCM_PatientID, patient_id);
    P(DCM_IssuerOfPatientID, issuer_of_patient_id);
    P(DCM_PatientBirthDate, patient_birth_date);
    P(DCM_PatientSex, patient_sex);
    P(DCM_BodyPartExamined, body_part);
    P(DCM_StudyInstanceUID, study_instance_uid);
    P(DCM_SeriesInstanceUID, series_instance_uid);
    P(DCM_StudyID, study_id);
    P(DCM_SeriesNumber, series_number);
    P(DCM_InstanceNumber, instance_number);
    P(DCM_NumberOfFrames, number_of_frames);
#undef P
    out->has_pixel_data =
        ds && (ds->tagExists(DCM_PixelData) || ds->tagExists(DCM_FloatPixelData) ||
               ds->tagExists(DCM_DoubleFloatPixelData));
    return rc;
}

std::once_flag g_codecs_once;

void register_codecs()
{
    // process-wide and never unregistered: the codec list outlives any decode
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
}

int decompress(const char *src, const char *dst, const char *ts_uid)
{
    E_TransferSyntax want;
    if (std::strcmp(ts_uid, "1.2.840.10008.1.2.1") == 0)
        want = EXS_LittleEndianExplicit;
    else if (std::strcmp(ts_uid, "1.2.840.10008.1.2") == 0)
        want = EXS_LittleEndianImplicit;
    else
        return HR_EUNSUP;
    dcm_shim_register_codecs();
    DcmFileFormat ff;
    OFCondition st = ff.loadFile(src, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
    if (st.bad())
        return HR_EPARSE;
    DcmDataset *ds = ff.getDataset();
    if (!ds)
        return HR_EPARSE;
    st = ds->chooseRepresentation(want, NULL);
    if (st.bad() || !ds->canWriteXfer(want))
        return HR_EUNSUP;
    st = ff.saveFile(dst, want, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                     EWM_updateMeta);
    return st.good() ? 0 : -EIO;
}

// ---- report objects ----

const char *str(const char *p)
{
    return p ? p : "";
}

// A thrown-free "first error wins" accumulator of DCMTK conditions.
struct Check {
    bool bad = false;
    void operator()(const OFCondition &c)
    {
        if (c.bad())
            bad = true;
    }
};

bool uid_ok(const char *u)
{
    return u && dcm_uid_valid(u);
}

const DSRCodedEntryValue k_report_title("18748-4", "LN", "Diagnostic imaging report");

// The attributes both objects share, put into ds after (for the SR) DCMTK
// wrote its own: the UIDs, the creation and content times, the equipment.
void put_common(DcmItem *ds, const dcm_report_obj *r, const char *sop_class, Check &ck)
{
    ck(ds->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192"));
    ck(ds->putAndInsertString(DCM_SOPClassUID, sop_class));
    ck(ds->putAndInsertString(DCM_SOPInstanceUID, r->sop_uid));
    ck(ds->putAndInsertString(DCM_StudyInstanceUID, r->study_uid));
    ck(ds->putAndInsertString(DCM_SeriesInstanceUID, r->series_uid));
    ck(ds->putAndInsertString(DCM_InstanceCreationDate, str(r->content_date)));
    ck(ds->putAndInsertString(DCM_InstanceCreationTime, str(r->content_time)));
    ck(ds->putAndInsertString(DCM_ContentDate, str(r->content_date)));
    ck(ds->putAndInsertString(DCM_ContentTime, str(r->content_time)));
    if (r->tz_offset && r->tz_offset[0])
        ck(ds->putAndInsertString(DCM_TimezoneOffsetFromUTC, r->tz_offset));
    ck(ds->putAndInsertString(DCM_Manufacturer, "huren"));
    ck(ds->putAndInsertString(DCM_InstitutionName, str(r->institution)));
    ck(ds->putAndInsertString(DCM_InstitutionalDepartmentName, str(r->department)));
    char num[16];
    std::snprintf(num, sizeof(num), "%d", r->series_number);
    ck(ds->putAndInsertString(DCM_SeriesNumber, num));
    std::snprintf(num, sizeof(num), "%d", r->instance_number);
    ck(ds->putAndInsertString(DCM_InstanceNumber, num));
}

// Writes ds as a Part 10 file: huren's own File Meta Information (dicom/p10.h:
// its implementation UID; DCMTK's saveFile writes DCMTK's unless told not to
// update the meta, and then warns), then the dataset in Explicit VR LE.
int save(DcmDataset *ds, const dcm_report_obj *r, const char *sop_class, const char *path)
{
    hr_buf meta;
    dcm_p10_meta m = {sop_class, r->sop_uid, DCM_TS_EXPLICIT_LE, NULL, NULL};
    hr_buf_init(&meta, DCM_P10_META_MAX);
    int rc = dcm_p10_encode_meta(&m, &meta);
    if (rc) {
        hr_buf_free(&meta);
        return rc;
    }
    DcmOutputFileStream out(path);
    if (out.status().bad()) {
        hr_buf_free(&meta);
        return -EIO;
    }
    const offile_off_t want = static_cast<offile_off_t>(meta.len);
    const offile_off_t n = out.write(meta.data, want);
    hr_buf_free(&meta);
    if (n != want || out.status().bad())
        return -EIO;
    ds->transferInit();
    OFCondition st = ds->write(out, EXS_LittleEndianExplicit, EET_ExplicitLength, NULL,
                               EGL_recalcGL, EPD_noChange);
    ds->transferEnd();
    out.flush();
    return st.good() && out.status().good() ? 0 : -EIO;
}

bool common_ok(const dcm_report_obj *r)
{
    return uid_ok(r->study_uid) && uid_ok(r->series_uid) && uid_ok(r->sop_uid) &&
           r->instance_number > 0 && r->series_number > 0;
}

int write_text_sr(const dcm_report_obj *r, const char *path)
{
    if (!common_ok(r) || (r->verified && (!r->verifier || !r->verifier[0])))
        return -EINVAL;
    for (size_t i = 0; i < r->n_evidence; i++)
        if (!uid_ok(r->evidence[i].series_uid) || !uid_ok(r->evidence[i].sop_class_uid) ||
            !uid_ok(r->evidence[i].sop_uid))
            return -EINVAL;
    if (r->predecessor_sop_uid && r->predecessor_sop_uid[0] && !uid_ok(r->predecessor_sop_uid))
        return -EINVAL;

    Check ck;
    DSRDocument doc(DSRTypes::DT_BasicTextSR);
    ck(doc.setSpecificCharacterSetType(DSRTypes::CS_UTF8));
    ck(doc.setPatientName(str(r->patient_name), OFFalse));
    ck(doc.setPatientID(str(r->patient_id), OFFalse));
    ck(doc.setIssuerOfPatientID(str(r->issuer_of_patient_id), OFFalse));
    ck(doc.setPatientBirthDate(str(r->birth_date), OFFalse));
    ck(doc.setPatientSex(str(r->sex), OFFalse));
    ck(doc.createNewSeriesInStudy(r->study_uid));
    ck(doc.setStudyDate(str(r->study_date), OFFalse));
    ck(doc.setStudyTime(str(r->study_time), OFFalse));
    ck(doc.setAccessionNumber(str(r->accession), OFFalse));
    ck(doc.setPreliminaryFlag(r->preliminary ? DSRTypes::PF_Preliminary : DSRTypes::PF_Final));

    // the root container; every child is appended below it (AM_belowCurrent
    // adds after the last child), each reached again with gotoNode(root)
    DSRDocumentTree &tree = doc.getTree();
    const size_t root = tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
    if (!root)
        return HR_EPARSE;
    ck(tree.getCurrentContentItem().setConceptName(k_report_title));
    if (r->author && r->author[0]) {
        ck(tree.addChildContentItem(DSRTypes::RT_hasObsContext, DSRTypes::VT_PName,
                                    DSRCodedEntryValue("121008", "DCM", "Person Observer Name")));
        ck(tree.getCurrentContentItem().setStringValue(r->author, OFFalse));
    }
    const struct {
        const char *text, *cv, *meaning, *item_cv, *item_meaning;
    } sections[] = {
        {r->findings, "121070", "Findings", "121071", "Finding"},
        {r->impression, "121072", "Impressions", "121073", "Impression"},
    };
    for (const auto &sec : sections) {
        if (tree.gotoNode(root) != root)
            return HR_EPARSE;
        ck(tree.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Container,
                                    DSRCodedEntryValue(sec.cv, "DCM", sec.meaning)));
        if (sec.text && sec.text[0]) {
            ck(tree.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text,
                                        DSRCodedEntryValue(sec.item_cv, "DCM", sec.item_meaning)));
            ck(tree.getCurrentContentItem().setStringValue(sec.text, OFFalse));
        }
    }
    if (r->comment && r->comment[0]) {
        if (tree.gotoNode(root) != root)
            return HR_EPARSE;
        ck(tree.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text,
                                    DSRCodedEntryValue("121106", "DCM", "Comment")));
        ck(tree.getCurrentContentItem().setStringValue(r->comment, OFFalse));
    }
    for (size_t i = 0; i < r->n_evidence; i++)
        ck(doc.getCurrentRequestedProcedureEvidence().addItem(
            r->study_uid, r->evidence[i].series_uid, r->evidence[i].sop_class_uid,
            r->evidence[i].sop_uid, OFFalse));
    if (r->predecessor_sop_uid && r->predecessor_sop_uid[0])
        ck(doc.getPredecessorDocuments().addItem(
            r->study_uid, r->series_uid, UID_BasicTextSRStorage, r->predecessor_sop_uid, OFFalse));
    ck(doc.completeDocument());
    if (r->verified)
        ck(doc.verifyDocument(r->verifier, str(r->verifier_org), str(r->verify_datetime), OFFalse));
    if (ck.bad)
        return HR_EPARSE;

    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    if (doc.write(*ds).bad())
        return HR_EPARSE;
    put_common(ds, r, UID_BasicTextSRStorage, ck);
    if (ck.bad)
        return HR_EPARSE;
    return save(ds, r, UID_BasicTextSRStorage, path);
}

int write_pdf(const dcm_report_obj *r, const uint8_t *pdf, size_t len, const char *path)
{
    if (!common_ok(r) || !pdf || len == 0 || len > 0xFFFFFFF0u)
        return -EINVAL;
    Check ck;
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    put_common(ds, r, UID_EncapsulatedPDFStorage, ck);
    ck(ds->putAndInsertString(DCM_PatientName, str(r->patient_name)));
    ck(ds->putAndInsertString(DCM_PatientID, str(r->patient_id)));
    if (r->issuer_of_patient_id && r->issuer_of_patient_id[0])
        ck(ds->putAndInsertString(DCM_IssuerOfPatientID, r->issuer_of_patient_id));
    ck(ds->putAndInsertString(DCM_PatientBirthDate, str(r->birth_date)));
    ck(ds->putAndInsertString(DCM_PatientSex, str(r->sex)));
    ck(ds->putAndInsertString(DCM_StudyDate, str(r->study_date)));
    ck(ds->putAndInsertString(DCM_StudyTime, str(r->study_time)));
    ck(ds->putAndInsertString(DCM_ReferringPhysicianName, ""));
    ck(ds->putAndInsertString(DCM_StudyID, ""));
    ck(ds->putAndInsertString(DCM_AccessionNumber, str(r->accession)));
    ck(ds->putAndInsertString(DCM_Modality, "DOC"));
    ck(ds->putAndInsertString(DCM_ConversionType, "WSD"));
    std::string dt = std::string(str(r->content_date)) + str(r->content_time) + str(r->tz_offset);
    ck(ds->putAndInsertString(DCM_AcquisitionDateTime, dt.c_str()));
    ck(ds->putAndInsertString(DCM_BurnedInAnnotation, "YES"));
    ck(ds->putAndInsertString(DCM_DocumentTitle, str(r->title)));
    DcmItem *code = NULL;
    ck(ds->findOrCreateSequenceItem(DCM_ConceptNameCodeSequence, code, 0));
    if (code) {
        ck(code->putAndInsertString(DCM_CodeValue, k_report_title.getCodeValue().c_str()));
        ck(code->putAndInsertString(DCM_CodingSchemeDesignator,
                                    k_report_title.getCodingSchemeDesignator().c_str()));
        ck(code->putAndInsertString(DCM_CodeMeaning, k_report_title.getCodeMeaning().c_str()));
    }
    ck(ds->putAndInsertString(DCM_MIMETypeOfEncapsulatedDocument, "application/pdf"));
    // OB of even length: a trailing NUL pads an odd PDF (PS3.3 C.24.2.1)
    std::vector<Uint8> buf(pdf, pdf + len);
    if (buf.size() & 1)
        buf.push_back(0);
    ck(ds->putAndInsertUint8Array(DCM_EncapsulatedDocument, buf.data(),
                                  static_cast<unsigned long>(buf.size())));
    ck(ds->putAndInsertUint32(DCM_EncapsulatedDocumentLength, static_cast<Uint32>(len)));
    if (ck.bad)
        return HR_EPARSE;
    return save(ds, r, UID_EncapsulatedPDFStorage, path);
}

} // namespace

extern "C" int dcm_shim_read_attrs(const char *path, dcm_attrs *out)
{
    std::memset(out, 0, sizeof(*out));
    try {
        return read_attrs(path, out);
    } catch (const std::exception &) {
        return HR_EPARSE;
    } catch (...) {
        return HR_EPARSE;
    }
}

extern "C" int dcm_shim_decompress(const char *src, const char *dst, const char *ts_uid)
{
    try {
        return decompress(src, dst, ts_uid);
    } catch (const std::exception &) {
        return HR_EUNSUP;
    } catch (...) {
        return HR_EUNSUP;
    }
}

extern "C" const char *const *dcm_shim_storage_sop_classes(size_t *n)
{
    *n = (size_t)numberOfDcmAllStorageSOPClassUIDs;
    return dcmAllStorageSOPClassUIDs;
}

extern "C" int dcm_shim_write_text_sr(const dcm_report_obj *r, const char *path)
{
    try {
        return write_text_sr(r, path);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return HR_EPARSE;
    }
}

extern "C" int dcm_shim_write_pdf(const dcm_report_obj *r, const uint8_t *pdf, size_t len,
                                  const char *path)
{
    try {
        return write_pdf(r, pdf, len, path);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return HR_EPARSE;
    }
}

extern "C" void dcm_shim_register_codecs(void)
{
    std::call_once(g_codecs_once, register_codecs);
}
