#include "uids.h"

#include <string.h>

static const dcm_ts_info k_ts[] = {
    {DCM_TS_IMPLICIT_LE, "Implicit VR Little Endian", 0, 0, 0, 0},
    {DCM_TS_EXPLICIT_LE, "Explicit VR Little Endian", 1, 0, 0, 0},
    {DCM_TS_DEFLATED_LE, "Deflated Explicit VR Little Endian", 1, 0, 1, 0},
    {DCM_TS_EXPLICIT_BE, "Explicit VR Big Endian", 1, 1, 0, 0},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", 1, 0, 0, 1},
    {"1.2.840.10008.1.2.5", "RLE Lossless", 1, 0, 0, 1},
};

static const dcm_sop_class_info k_storage[] = {
    {"1.2.840.10008.5.1.4.1.1.1", "Computed Radiography Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.1.1", "Digital X-Ray Image Storage - For Presentation"},
    {"1.2.840.10008.5.1.4.1.1.1.1.1", "Digital X-Ray Image Storage - For Processing"},
    {"1.2.840.10008.5.1.4.1.1.1.2", "Digital Mammography X-Ray Image Storage - For Presentation"},
    {"1.2.840.10008.5.1.4.1.1.1.2.1", "Digital Mammography X-Ray Image Storage - For Processing"},
    {"1.2.840.10008.5.1.4.1.1.2", "CT Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.2.1", "Enhanced CT Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.3.1", "Ultrasound Multi-frame Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.4", "MR Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.4.1", "Enhanced MR Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.7", "Secondary Capture Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.7.1", "Multi-frame Single Bit Secondary Capture Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.7.2", "Multi-frame Grayscale Byte Secondary Capture Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.7.3", "Multi-frame Grayscale Word Secondary Capture Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.7.4", "Multi-frame True Color Secondary Capture Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.9.1.1", "12-lead ECG Waveform Storage"},
    {"1.2.840.10008.5.1.4.1.1.9.1.2", "General ECG Waveform Storage"},
    {"1.2.840.10008.5.1.4.1.1.9.1.3", "Ambulatory ECG Waveform Storage"},
    {"1.2.840.10008.5.1.4.1.1.12.1", "X-Ray Angiographic Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.12.2", "X-Ray Radiofluoroscopic Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.20", "Nuclear Medicine Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.1", "VL Endoscopic Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.2", "VL Microscopic Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.4", "VL Photographic Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.6", "VL Whole Slide Microscopy Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR Storage"},
    {"1.2.840.10008.5.1.4.1.1.88.22", "Enhanced SR Storage"},
    {"1.2.840.10008.5.1.4.1.1.88.33", "Comprehensive SR Storage"},
    {"1.2.840.10008.5.1.4.1.1.88.59", "Key Object Selection Document Storage"},
    {"1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF Storage"},
    {"1.2.840.10008.5.1.4.1.1.128", "Positron Emission Tomography Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.481.1", "RT Image Storage"},
    {"1.2.840.10008.5.1.4.1.1.481.2", "RT Dose Storage"},
    {"1.2.840.10008.5.1.4.1.1.481.3", "RT Structure Set Storage"},
    {"1.2.840.10008.5.1.4.1.1.481.5", "RT Plan Storage"},
    {"1.2.840.10008.5.1.4.1.1.11.1", "Grayscale Softcopy Presentation State Storage"},
};

const dcm_ts_info *dcm_transfer_syntax(const char *uid)
{
    for (size_t i = 0; uid && i < sizeof(k_ts) / sizeof(k_ts[0]); i++)
        if (strcmp(k_ts[i].uid, uid) == 0)
            return &k_ts[i];
    return NULL;
}

const dcm_sop_class_info *dcm_storage_sop_class(const char *uid)
{
    for (size_t i = 0; uid && i < sizeof(k_storage) / sizeof(k_storage[0]); i++)
        if (strcmp(k_storage[i].uid, uid) == 0)
            return &k_storage[i];
    return NULL;
}

const dcm_ts_info *dcm_transfer_syntaxes(size_t *n)
{
    *n = sizeof(k_ts) / sizeof(k_ts[0]);
    return k_ts;
}

const dcm_sop_class_info *dcm_storage_sop_classes(size_t *n)
{
    *n = sizeof(k_storage) / sizeof(k_storage[0]);
    return k_storage;
}

int dcm_uid_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    int comp_start = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (comp_start)
                return 0; /* empty component */
            comp_start = 1;
        } else if (c >= '0' && c <= '9') {
            if (comp_start && c == '0' && i + 1 < n && s[i + 1] != '.')
                return 0; /* leading zero */
            comp_start = 0;
        } else {
            return 0;
        }
    }
    return !comp_start;
}
