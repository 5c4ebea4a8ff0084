// DCMTK bridge: see dcmtk_shim.h. Exceptions never leave this file.
#include "dcmtk_shim.h"

#include "common/hr_err.h"
extern "C" {
#include "aecg.h"
#include "common/hr_buf.h"
#include "p10.h"
#include "uids.h"
}

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcvrobow.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcwcache.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
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

// ---- transcoding for WADO-RS ----

// DCMTK's transfer syntax of uid, or EXS_Unknown.
E_TransferSyntax xfer_of(const char *uid)
{
    if (!uid || !uid[0])
        return EXS_Unknown;
    DcmXfer x(uid);
    return x.getXfer();
}

bool can_decode(E_TransferSyntax from)
{
    if (from == EXS_Unknown)
        return false;
    std::call_once(g_codecs_once, register_codecs);
    DcmXfer x(from);
    if (!x.isEncapsulated())
        return true; // native (or deflated) pixel data: no codec needed
    return DcmCodecList::canChangeCoding(from, EXS_LittleEndianExplicit) != OFFalse;
}

long get_long(DcmItem *ds, const DcmTagKey &key, long dflt)
{
    long v = dflt;
    Uint16 u16 = 0;
    OFString s;
    if (key == DCM_NumberOfFrames) {
        if (ds->findAndGetOFString(key, s).good() && !s.empty())
            v = std::strtol(s.c_str(), NULL, 10);
    } else if (ds->findAndGetUint16(key, u16).good()) {
        v = u16;
    }
    return v;
}

// Pixel geometry of ds: bytes of one native frame (0 when unusable) and frames.
void frame_geometry(DcmItem *ds, uint64_t *frame_len, uint64_t *n_frames)
{
    long rows = get_long(ds, DCM_Rows, 0), cols = get_long(ds, DCM_Columns, 0);
    long spp = get_long(ds, DCM_SamplesPerPixel, 1), bits = get_long(ds, DCM_BitsAllocated, 0);
    long frames = get_long(ds, DCM_NumberOfFrames, 1);
    *frame_len = 0;
    *n_frames = frames > 0 ? (uint64_t)frames : 0;
    if (rows <= 0 || cols <= 0 || spp <= 0 || spp > 4 || bits <= 0 || bits % 8 != 0 || bits > 64)
        return;
    *frame_len = (uint64_t)rows * (uint64_t)cols * (uint64_t)spp * (uint64_t)(bits / 8);
}

// Loads path (large values stay on disk) and checks that its pixel data can
// be decoded within max_bytes (frames * frame length plus the file's size,
// an upper bound of the rest).
int load_for_decode(DcmFileFormat &ff, const char *path, uint64_t max_bytes, uint64_t *frame_len,
                    uint64_t *n_frames)
{
    OFCondition st = ff.loadFile(path, EXS_Unknown, EGL_noChange, k_max_read, ERM_fileOnly);
    if (st.bad())
        return HR_EPARSE;
    DcmDataset *ds = ff.getDataset();
    if (!ds)
        return HR_EPARSE;
    if (!can_decode(ds->getOriginalXfer()))
        return HR_EUNSUP;
    *frame_len = 0;
    *n_frames = 0;
    if (!ds->tagExists(DCM_PixelData))
        return 0;
    frame_geometry(ds, frame_len, n_frames);
    if (*frame_len == 0 || *n_frames == 0)
        return HR_EUNSUP;
    uint64_t fsize = 0;
    FILE *f = std::fopen(path, "rb");
    if (f) {
        if (std::fseek(f, 0, SEEK_END) == 0) {
            long e = std::ftell(f);
            fsize = e > 0 ? (uint64_t)e : 0;
        }
        std::fclose(f);
    }
    if (*n_frames > max_bytes / *frame_len || *n_frames * *frame_len > max_bytes - fsize ||
        fsize > max_bytes)
        return HR_ETOOBIG;
    return 0;
}

int decode_frames(const char *path, const uint32_t *frames, size_t n, uint64_t max_bytes,
                  uint8_t **out, size_t *frame_len_out)
{
    DcmFileFormat ff;
    uint64_t flen = 0, nf = 0;
    int rc = load_for_decode(ff, path, max_bytes, &flen, &nf);
    if (rc)
        return rc;
    if (flen == 0)
        return HR_ENOTFOUND; // no pixel data
    for (size_t i = 0; i < n; i++)
        if (frames[i] == 0 || frames[i] > nf)
            return HR_ENOTFOUND;
    if (n > max_bytes / flen)
        return HR_ETOOBIG;
    DcmDataset *ds = ff.getDataset();
    if (ds->chooseRepresentation(EXS_LittleEndianExplicit, NULL).bad() ||
        !ds->canWriteXfer(EXS_LittleEndianExplicit))
        return HR_EUNSUP;
    // the decoder may have changed the photometric interpretation, never the size
    uint64_t flen2 = 0, nf2 = 0;
    frame_geometry(ds, &flen2, &nf2);
    DcmElement *pd = NULL;
    Uint8 *bytes = NULL;
    if (flen2 != flen || nf2 != nf || ds->findAndGetElement(DCM_PixelData, pd).bad() || !pd ||
        pd->getUint8Array(bytes).bad() || !bytes || pd->getLength() / flen < nf)
        return HR_EPARSE;
    uint8_t *buf = static_cast<uint8_t *>(std::malloc(n > 0 ? n * flen : 1));
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        std::memcpy(buf + i * flen, bytes + (frames[i] - 1) * flen, flen);
    *out = buf;
    *frame_len_out = (size_t)flen;
    return 0;
}

int transcode_p10(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len)
{
    DcmFileFormat ff;
    uint64_t flen = 0, nf = 0;
    int rc = load_for_decode(ff, path, max_bytes, &flen, &nf);
    if (rc)
        return rc;
    DcmDataset *ds = ff.getDataset();
    const E_TransferSyntax want = EXS_LittleEndianExplicit;
    if (ds->chooseRepresentation(want, NULL).bad() || !ds->canWriteXfer(want))
        return HR_EUNSUP;
    std::vector<char> chunk(1u << 20);
    DcmOutputBufferStream os(chunk.data(), static_cast<offile_off_t>(chunk.size()));
    DcmWriteCache wcache;
    uint8_t *buf = NULL;
    size_t used = 0, cap = 0;
    rc = 0;
    ff.transferInit();
    for (bool last = false; !last && !rc;) {
        OFCondition st = ff.write(os, want, EET_ExplicitLength, &wcache, EGL_recalcGL, EPD_noChange,
                                  0, 0, 0, EWM_updateMeta);
        if (st == EC_Normal)
            last = true;
        else if (st != EC_StreamNotifyClient)
            rc = HR_EPARSE;
        os.flush();
        void *p = NULL;
        offile_off_t n = 0;
        os.flushBuffer(p, n);
        if (rc || n <= 0)
            continue;
        if ((uint64_t)n > max_bytes - used) {
            rc = HR_ETOOBIG;
        } else if (used + (size_t)n > cap) {
            size_t ncap = cap ? cap * 2 : (4u << 20);
            while (ncap < used + (size_t)n)
                ncap *= 2;
            if (ncap > max_bytes)
                ncap = (size_t)max_bytes;
            uint8_t *nb = static_cast<uint8_t *>(std::realloc(buf, ncap));
            if (!nb)
                rc = -ENOMEM;
            else {
                buf = nb;
                cap = ncap;
            }
        }
        if (!rc) {
            std::memcpy(buf + used, p, (size_t)n);
            used += (size_t)n;
        }
    }
    ff.transferEnd();
    if (rc) {
        std::free(buf);
        return rc;
    }
    *out = buf;
    *len = used;
    return 0;
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

// ---- ECG waveform objects from an aECG (decision 0039) ----

const char *const k_uid_12lead = "1.2.840.10008.5.1.4.1.1.9.1.1";
const char *const k_uid_general_ecg = "1.2.840.10008.5.1.4.1.1.9.1.2";

void put_code(DcmItem *item, const DcmTagKey &seq, const char *value, const char *scheme,
              const char *meaning, Check &ck)
{
    DcmItem *code = NULL;
    ck(item->findOrCreateSequenceItem(seq, code, 0));
    if (!code)
        return;
    ck(code->putAndInsertString(DCM_CodeValue, value));
    ck(code->putAndInsertString(DCM_CodingSchemeDesignator, scheme));
    ck(code->putAndInsertString(DCM_CodeMeaning, meaning));
}

// A DS value (at most 16 characters) of v, and the double it reads back as.
std::string ds_of(double v, double *back)
{
    char b[32];
    for (int prec = 10; prec > 0; prec--) {
        std::snprintf(b, sizeof(b), "%.*g", prec, v);
        if (std::strlen(b) <= 16)
            break;
    }
    if (back)
        *back = std::strtod(b, NULL);
    return b;
}

// The 16-bit samples of lead l (n of them) into out at stride, and its
// sensitivity (uV per unit) as a DS string; lossy when not exact.
std::string encode_lead(const dcm_aecg_lead *l, size_t n, Sint16 *out, size_t stride, bool &lossy)
{
    const double k = l->origin_uv / l->scale_uv;
    const double kr = std::round(k);
    bool exact = std::fabs(k - kr) < 1e-9 && std::fabs(kr) < 65536.0;
    double back = 0;
    std::string sens = ds_of(l->scale_uv, &back);
    if (exact && std::fabs(back - l->scale_uv) > 1e-9 * l->scale_uv)
        exact = false;
    if (exact)
        for (size_t i = 0; i < n && exact; i++) {
            const long long v = (long long)l->digits[i] + (long long)kr;
            exact = v >= -32768 && v <= 32767;
        }
    if (exact) {
        for (size_t i = 0; i < n; i++)
            out[i * stride] = static_cast<Sint16>((long long)l->digits[i] + (long long)kr);
        return sens;
    }
    lossy = true;
    double vmax = 0;
    for (size_t i = 0; i < n; i++)
        vmax = std::max(vmax, std::fabs(l->origin_uv + l->scale_uv * l->digits[i]));
    double s = std::max(l->scale_uv, vmax / 32767.0);
    sens = ds_of(s * (1 + 1e-9), &back);
    for (size_t i = 0; i < n; i++) {
        double v = std::round((l->origin_uv + l->scale_uv * l->digits[i]) / back);
        out[i * stride] = static_cast<Sint16>(std::max(-32768.0, std::min(32767.0, v)));
    }
    return sens;
}

// Writes ds after huren's File Meta Information into memory.
int to_memory(DcmDataset *ds, const char *sop_class, const char *sop_uid, uint8_t **out,
              size_t *len)
{
    hr_buf b;
    dcm_p10_meta m = {sop_class, sop_uid, DCM_TS_EXPLICIT_LE, NULL, NULL};
    hr_buf_init(&b, (size_t)1 << 30);
    int rc = dcm_p10_encode_meta(&m, &b);
    std::vector<char> chunk(1u << 20);
    DcmOutputBufferStream os(chunk.data(), static_cast<offile_off_t>(chunk.size()));
    ds->transferInit();
    for (bool last = false; !last && !rc;) {
        OFCondition st = ds->write(os, EXS_LittleEndianExplicit, EET_ExplicitLength, NULL,
                                   EGL_recalcGL, EPD_noChange);
        if (st == EC_Normal)
            last = true;
        else if (st != EC_StreamNotifyClient)
            rc = HR_EPARSE;
        os.flush();
        void *p = NULL;
        offile_off_t n = 0;
        os.flushBuffer(p, n);
        if (!rc && n > 0)
            rc = hr_buf_append(&b, p, (size_t)n) ? -ENOMEM : 0;
    }
    ds->transferEnd();
    if (rc) {
        hr_buf_free(&b);
        return rc;
    }
    *out = reinterpret_cast<uint8_t *>(b.data);
    *len = b.len;
    return 0;
}

int ecg_encode(const dcm_aecg *e, const dcm_ecg_ids *ids, uint8_t **out, size_t *len,
               const char **sop_class, int *lossy)
{
    if (!uid_ok(ids->study_uid) || !uid_ok(ids->series_uid) || !uid_ok(ids->sop_uid) ||
        e->n_leads == 0 || e->n_leads > DCM_AECG_LEADS_MAX || e->n_samples == 0)
        return -EINVAL;
    const char *cls = dcm_aecg_is_12lead(e) ? k_uid_12lead : k_uid_general_ecg;
    std::string dt = e->acquired[0] ? e->acquired : str(ids->fallback_dt);
    std::string date = dt.substr(0, 8), time = dt.size() > 8 ? dt.substr(8) : "";
    const size_t tz = time.find_first_of("+-");
    if (tz != std::string::npos)
        time.resize(tz);
    Check ck;
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    ck(ds->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192"));
    ck(ds->putAndInsertString(DCM_SOPClassUID, cls));
    ck(ds->putAndInsertString(DCM_SOPInstanceUID, ids->sop_uid));
    ck(ds->putAndInsertString(DCM_StudyDate, date.c_str()));
    ck(ds->putAndInsertString(DCM_ContentDate, date.c_str()));
    ck(ds->putAndInsertString(DCM_StudyTime, time.c_str()));
    ck(ds->putAndInsertString(DCM_ContentTime, time.c_str()));
    ck(ds->putAndInsertString(DCM_AcquisitionDateTime, dt.c_str()));
    ck(ds->putAndInsertString(DCM_AccessionNumber, ""));
    ck(ds->putAndInsertString(DCM_Modality, "ECG"));
    ck(ds->putAndInsertString(DCM_Manufacturer, ""));
    ck(ds->putAndInsertString(DCM_InstitutionName, str(ids->institution)));
    ck(ds->putAndInsertString(DCM_ReferringPhysicianName, ""));
    ck(ds->putAndInsertString(DCM_SeriesDescription, "aECG import"));
    ck(ds->putAndInsertString(DCM_PatientName, e->patient_name));
    ck(ds->putAndInsertString(DCM_PatientID, e->patient_id));
    ck(ds->putAndInsertString(DCM_PatientBirthDate, e->birth_date));
    ck(ds->putAndInsertString(DCM_PatientSex, e->sex));
    ck(ds->putAndInsertString(DCM_StudyInstanceUID, ids->study_uid));
    ck(ds->putAndInsertString(DCM_SeriesInstanceUID, ids->series_uid));
    ck(ds->putAndInsertString(DCM_StudyID, ""));
    ck(ds->putAndInsertString(DCM_SeriesNumber, "1"));
    ck(ds->putAndInsertString(DCM_InstanceNumber, "1"));
    ck(ds->insertEmptyElement(DCM_AcquisitionContextSequence));

    DcmItem *grp = NULL;
    ck(ds->findOrCreateSequenceItem(DCM_WaveformSequence, grp, 0));
    if (!grp)
        return HR_EPARSE;
    // no Multiplex Group Time Offset: Acquisition DateTime is present (PS3.3 C.10.9.1)
    ck(grp->putAndInsertString(DCM_WaveformOriginality, "ORIGINAL"));
    ck(grp->putAndInsertUint16(DCM_NumberOfWaveformChannels, static_cast<Uint16>(e->n_leads)));
    ck(grp->putAndInsertUint32(DCM_NumberOfWaveformSamples, static_cast<Uint32>(e->n_samples)));
    ck(grp->putAndInsertString(DCM_SamplingFrequency, ds_of(e->sampling_hz, NULL).c_str()));
    ck(grp->putAndInsertString(DCM_MultiplexGroupLabel, "RHYTHM"));
    std::vector<Sint16> data(e->n_leads * e->n_samples);
    bool lossy_any = false;
    for (size_t c = 0; c < e->n_leads; c++) {
        const dcm_aecg_lead *l = &e->leads[c];
        std::string sens = encode_lead(l, e->n_samples, data.data() + c, e->n_leads, lossy_any);
        DcmItem *ch = NULL;
        ck(grp->findOrCreateSequenceItem(DCM_ChannelDefinitionSequence, ch, static_cast<long>(c)));
        if (!ch)
            return HR_EPARSE;
        char num[16];
        std::snprintf(num, sizeof(num), "%zu", c + 1);
        ck(ch->putAndInsertString(DCM_WaveformChannelNumber, num));
        ck(ch->putAndInsertString(DCM_ChannelLabel, l->label));
        put_code(ch, DCM_ChannelSourceSequence, l->mdc, "MDC", l->meaning, ck);
        ck(ch->putAndInsertString(DCM_ChannelSensitivity, sens.c_str()));
        put_code(ch, DCM_ChannelSensitivityUnitsSequence, "uV", "UCUM", "microvolt", ck);
        ck(ch->putAndInsertString(DCM_ChannelSensitivityCorrectionFactor, "1"));
        ck(ch->putAndInsertString(DCM_ChannelBaseline, "0"));
        ck(ch->putAndInsertString(DCM_ChannelTimeSkew, "0"));
        ck(ch->putAndInsertUint16(DCM_WaveformBitsStored, 16));
    }
    ck(grp->putAndInsertUint16(DCM_WaveformBitsAllocated, 16));
    ck(grp->putAndInsertString(DCM_WaveformSampleInterpretation, "SS"));
    DcmOtherByteOtherWord *wd = new DcmOtherByteOtherWord(DcmTag(DCM_WaveformData, EVR_OW));
    ck(wd->putUint16Array(reinterpret_cast<const Uint16 *>(data.data()),
                          static_cast<unsigned long>(data.size())));
    ck(grp->insert(wd, OFTrue));

    // the measurements and statements apply to the whole group: referenced
    // channel 0 of group 1 ("all channels")
    const Uint16 all[2] = {1, 0};
    long item = 0;
    for (size_t i = 0; i < e->n_meas; i++, item++) {
        const dcm_aecg_meas *m = &e->meas[i];
        DcmItem *a = NULL;
        ck(ds->findOrCreateSequenceItem(DCM_WaveformAnnotationSequence, a, item));
        if (!a)
            return HR_EPARSE;
        put_code(a, DCM_ConceptNameCodeSequence, m->code, m->scheme, m->meaning, ck);
        ck(a->putAndInsertString(DCM_NumericValue, ds_of(m->value, NULL).c_str()));
        put_code(a, DCM_MeasurementUnitsCodeSequence, m->unit, "UCUM", m->unit_meaning, ck);
        ck(a->putAndInsertUint16Array(DCM_ReferencedWaveformChannels, all, 2));
        ck(a->putAndInsertUint16(DCM_AnnotationGroupNumber, 1));
    }
    for (size_t i = 0; i < e->n_text; i++, item++) {
        DcmItem *a = NULL;
        ck(ds->findOrCreateSequenceItem(DCM_WaveformAnnotationSequence, a, item));
        if (!a)
            return HR_EPARSE;
        ck(a->putAndInsertString(DCM_UnformattedTextValue, e->text[i]));
        ck(a->putAndInsertUint16Array(DCM_ReferencedWaveformChannels, all, 2));
        ck(a->putAndInsertUint16(DCM_AnnotationGroupNumber, 1));
    }
    bool local = false;
    for (size_t i = 0; i < e->n_meas; i++)
        local |= std::strcmp(e->meas[i].scheme, "99HUREN") == 0;
    if (local) { // the private coding scheme is identified (PS3.3 C.12.1.1.4)
        DcmItem *cs = NULL;
        ck(ds->findOrCreateSequenceItem(DCM_CodingSchemeIdentificationSequence, cs, 0));
        if (cs) {
            ck(cs->putAndInsertString(DCM_CodingSchemeDesignator, "99HUREN"));
            ck(cs->putAndInsertString(DCM_CodingSchemeName, "huren local codes"));
            ck(cs->putAndInsertString(DCM_CodingSchemeResponsibleOrganization, "huren"));
        }
    }
    if (ck.bad)
        return HR_EPARSE;
    int rc = to_memory(ds, cls, ids->sop_uid, out, len);
    if (!rc) {
        *sop_class = cls;
        *lossy = lossy_any ? 1 : 0;
    }
    return rc;
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

extern "C" int dcm_shim_can_decode(const char *ts_uid)
{
    try {
        return can_decode(xfer_of(ts_uid)) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

extern "C" int dcm_shim_decode_frames(const char *path, const uint32_t *frames, size_t n,
                                      uint64_t max_bytes, uint8_t **out, size_t *frame_len)
{
    *out = NULL;
    *frame_len = 0;
    try {
        return decode_frames(path, frames, n, max_bytes, out, frame_len);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return HR_EUNSUP;
    }
}

extern "C" int dcm_shim_transcode(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    try {
        return transcode_p10(path, max_bytes, out, len);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return HR_EUNSUP;
    }
}

extern "C" void dcm_shim_register_codecs(void)
{
    std::call_once(g_codecs_once, register_codecs);
}

extern "C" int dcm_shim_ecg_encode(const struct dcm_aecg *e, const dcm_ecg_ids *ids, uint8_t **out,
                                   size_t *len, const char **sop_class, int *lossy)
{
    *out = NULL;
    *len = 0;
    *sop_class = NULL;
    *lossy = 0;
    try {
        return ecg_encode(e, ids, out, len, sop_class, lossy);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return HR_EPARSE;
    }
}
