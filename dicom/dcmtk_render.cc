// One frame of a stored object to JPEG/PNG with DCMTK's image module: see
// render.h. Exceptions never leave this file. DCMTK decodes and windows the
// frame into 8-bit pixels; render_encode.c turns them into JPEG or PNG.
extern "C" {
#include "render.h"
#include "render_encode.h"
#include "dcmtk_shim.h"
}

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimage/diregist.h> // colour images (DiRegister)
#include <dcmtk/dcmimgle/dcmimage.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>

namespace
{

const int k_default_quality = 90;

long get_long(DcmDataset *ds, const DcmTagKey &key, long dflt)
{
    Sint32 v32 = 0;
    Uint16 v16 = 0;
    if (ds->findAndGetUint16(key, v16).good())
        return v16;
    if (ds->findAndGetSint32(key, v32).good())
        return v32;
    return dflt;
}

// Pixels are decodable when native, or encapsulated with a registered codec.
bool decodable(E_TransferSyntax xfer)
{
    DcmXfer x(xfer);
    if (!x.isEncapsulated())
        return true;
    return DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit) == OFTrue;
}

int status_rc(EI_Status st)
{
    switch (st) {
    case EIS_Normal:
        return 0;
    case EIS_MemoryFailure:
        return -ENOMEM;
    default:
        return -ENOTSUP;
    }
}

// The VOI transformation of the request (render.h); monochrome only.
int apply_window(DicomImage &di, const hr_render_req *rq)
{
    if (!di.isMonochrome())
        return 0;
    if (rq->window_set) {
        if (!di.setWindow(rq->center, rq->width))
            return -EINVAL;
        di.setVoiLutFunction(EFV_Linear);
        return 0;
    }
    if (di.getWindowCount() > 0 && di.setWindow(0))
        return 0;
    if (di.getVoiLutCount() > 0 && di.setVoiLut(0))
        return 0;
    di.setMinMaxWindow(0);
    return 0;
}

// The size that fits max_w x max_h (0 = unbounded), aspect kept, never
// enlarged: *sx or *sy is set (the other 0: DCMTK computes it), both 0
// when the frame fits as it is.
void fit(const DicomImage &di, unsigned max_w, unsigned max_h, unsigned long *sx, unsigned long *sy)
{
    double w = (double)di.getWidth(), h = (double)di.getHeight();
    double s = 1.0;
    *sx = *sy = 0;
    if (max_w && w > max_w)
        s = (double)max_w / w;
    if (max_h && h * s > max_h)
        s = (double)max_h / h;
    if (s >= 1.0)
        return;
    if ((double)max_w / w <= (double)max_h / h || !max_h) {
        *sx = (unsigned long)std::floor(w * s);
        if (*sx < 1)
            *sx = 1;
    } else {
        *sy = (unsigned long)std::floor(h * s);
        if (*sy < 1)
            *sy = 1;
    }
}

int render(const char *path, const hr_render_req *rq, unsigned char **out, size_t *out_len,
           const char **content_type)
{
    dcm_shim_register_codecs();
    DcmFileFormat ff;
    // values longer than DCM_MaxReadLength (the pixel data) stay on disk;
    // DicomImage reads or decodes only the requested frame of them
    OFCondition cond =
        ff.loadFile(path, EXS_Unknown, EGL_withoutGL, DCM_MaxReadLength, ERM_autoDetect);
    if (cond.bad())
        return -EIO;
    DcmDataset *ds = ff.getDataset();
    if (!ds || !ds->tagExists(DCM_PixelData))
        return -ENOTSUP;
    E_TransferSyntax xfer = ds->getOriginalXfer();
    if (!decodable(xfer))
        return -ENOTSUP;
    long rows = get_long(ds, DCM_Rows, 0), cols = get_long(ds, DCM_Columns, 0);
    long spp = get_long(ds, DCM_SamplesPerPixel, 1);
    long frames = get_long(ds, DCM_NumberOfFrames, 1);
    if (rows <= 0 || cols <= 0 || spp <= 0 || spp > 4)
        return -ENOTSUP;
    if (frames < 1)
        frames = 1;
    if (rq->frame > (unsigned long)frames)
        return -ENOENT;
    if ((unsigned long long)rows * (unsigned long long)cols * (unsigned long long)spp >
        HR_RENDER_MAX_PIXELS)
        return -E2BIG;

    // the requested frame only; overlays in the pixel data would need all of it
    const unsigned long flags = CIF_UsePartialAccessToPixelData | CIF_NeverAccessEmbeddedOverlays;
    std::unique_ptr<DicomImage> di(new (std::nothrow)
                                       DicomImage(&ff, xfer, flags, rq->frame - 1, 1));
    if (!di)
        return -ENOMEM;
    int rc = status_rc(di->getStatus());
    if (rc)
        return rc;
    if (di->getFrameCount() < 1 || di->getFirstFrame() != rq->frame - 1)
        return -ENOENT;
    di->hideAllOverlays();
    rc = apply_window(*di, rq);
    if (rc)
        return rc;

    unsigned long sx, sy;
    fit(*di, rq->max_w, rq->max_h, &sx, &sy);
    if (sx || sy) {
        // interpolation 1 and the pixel aspect ratio: dcmj2pnm's +Sxv / +Syv
        std::unique_ptr<DicomImage> scaled(di->createScaledImage(sx, sy, 1, 1));
        if (!scaled)
            return -ENOMEM;
        rc = status_rc(scaled->getStatus());
        if (rc)
            return rc;
        di = std::move(scaled);
    }

    const int samples = di->isMonochrome() ? 1 : 3;
    const unsigned w = (unsigned)di->getWidth(), h = (unsigned)di->getHeight();
    // 8 bits per sample, RGB interleaved; owned by di
    const unsigned char *px = static_cast<const unsigned char *>(di->getOutputData(8, 0, 0));
    if (!px)
        return -ENOTSUP;
    if (rq->fmt == HR_RENDER_PNG) {
        rc = dcm__encode_png(px, w, h, samples, out, out_len);
        *content_type = "image/png";
    } else {
        rc = dcm__encode_jpeg(px, w, h, samples, rq->quality ? rq->quality : k_default_quality, out,
                              out_len);
        *content_type = "image/jpeg";
    }
    return rc;
}

} // namespace

extern "C" int hr_render_frame(const char *path, const hr_render_req *rq, unsigned char **out,
                               size_t *out_len, const char **content_type)
{
    if (!out || !out_len || !content_type)
        return -EINVAL;
    *out = NULL;
    *out_len = 0;
    *content_type = NULL;
    if (!path || !rq || rq->frame < 1 || (rq->fmt != HR_RENDER_JPEG && rq->fmt != HR_RENDER_PNG) ||
        rq->quality < 0 || rq->quality > 100 || rq->max_w > HR_RENDER_MAX_SIDE ||
        rq->max_h > HR_RENDER_MAX_SIDE ||
        (rq->window_set &&
         !(rq->width > 0 && std::isfinite(rq->width) && std::isfinite(rq->center))))
        return -EINVAL;
    try {
        int rc = render(path, rq, out, out_len, content_type);
        if (rc) {
            std::free(*out);
            *out = NULL;
            *out_len = 0;
            *content_type = NULL;
        }
        return rc;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}
