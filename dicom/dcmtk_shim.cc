// DCMTK bridge: see dcmtk_shim.h. Exceptions never leave this file.
#include "dcmtk_shim.h"

#include "common/hr_err.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>

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
    std::call_once(g_codecs_once, register_codecs);
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
