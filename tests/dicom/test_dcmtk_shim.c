/* dicom/dcmtk_shim.cc: decoding for WADO-RS (decision 0030) on pydicom's
 * example files (Debian python3-pydicom): which transfer syntaxes this
 * DCMTK decodes, decoded frames equal the frames of the file DCMTK
 * decompresses (dcm_shim_decompress, the dcmdjpeg path), the bounds, and the
 * transcoded Part 10 file. */
#include "common/hr_err.h"
#include "dicom/dcmtk_shim.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYDICOM "/usr/lib/python3/dist-packages/pydicom/data/test_files/"
#define EXP_LE  "1.2.840.10008.1.2.1"

Test(dcmtk_shim, can_decode_names_this_builds_decoders)
{
    static const char *yes[] = {
        "1.2.840.10008.1.2",      "1.2.840.10008.1.2.1",    "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.5"};
    static const char *no[] = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "garbage", "",
                               "1.2.3.4"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_expect_eq(dcm_shim_can_decode(yes[i]), 1, "%s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_expect_eq(dcm_shim_can_decode(no[i]), 0, "%s", no[i]);
    cr_expect_eq(dcm_shim_can_decode(NULL), 0);
}

/* frames of src decoded == the same frames read from DCMTK's decompressed copy */
static void same_as_decompressed(const char *src, const uint32_t *frames, size_t n)
{
    char dir[512], dst[600];
    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(dst, sizeof(dst), "%s/native.dcm", dir);
    cr_assert_eq(dcm_shim_decompress(src, dst, EXP_LE), 0, "%s", src);
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    cr_assert_eq(dcm_shim_decode_frames(src, frames, n, 64u << 20, &a, &la), 0, "%s", src);
    cr_assert_eq(dcm_shim_decode_frames(dst, frames, n, 64u << 20, &b, &lb), 0, "%s", dst);
    cr_expect_gt(la, 0);
    cr_expect_eq(la, lb);
    cr_expect_eq(memcmp(a, b, n * la), 0, "%s: decoded frames differ", src);
    free(a);
    free(b);
    ts_rmrf(dir);
}

Test(dcmtk_shim, decoded_frames_equal_the_decompressed_file)
{
    uint32_t two[] = {2, 1, 2};
    uint32_t one[] = {1};
    same_as_decompressed(PYDICOM "SC_rgb_rle_2frame.dcm", two, 3);
    same_as_decompressed(PYDICOM "MR_small_RLE.dcm", one, 1);
    same_as_decompressed(PYDICOM "JPEG-lossy.dcm", one, 1);
    same_as_decompressed(PYDICOM "MR_small_jpeg_ls_lossless.dcm", one, 1);
    same_as_decompressed(PYDICOM "SC_rgb_jpeg_dcmtk.dcm", one, 1);
}

Test(dcmtk_shim, decode_frames_bounds)
{
    uint8_t *out = (uint8_t *)1;
    size_t flen = 7;
    uint32_t f0[] = {0}, f3[] = {3}, f1[] = {1};
    const char *rle2 = PYDICOM "SC_rgb_rle_2frame.dcm";
    cr_expect_eq(dcm_shim_decode_frames(rle2, f0, 1, 64u << 20, &out, &flen), HR_ENOTFOUND);
    cr_expect_null(out);
    cr_expect_eq(flen, 0);
    cr_expect_eq(dcm_shim_decode_frames(rle2, f3, 1, 64u << 20, &out, &flen), HR_ENOTFOUND);
    /* 100 x 100 x 3 x 2 frames = 60000 bytes decoded: 1000 is too little */
    cr_expect_eq(dcm_shim_decode_frames(rle2, f1, 1, 1000, &out, &flen), HR_ETOOBIG);
    cr_expect_null(out);
    cr_expect_eq(
        dcm_shim_decode_frames(PYDICOM "MR_small_jp2klossless.dcm", f1, 1, 64u << 20, &out, &flen),
        HR_EUNSUP);
    cr_expect_eq(dcm_shim_decode_frames("/nonexistent/x.dcm", f1, 1, 64u << 20, &out, &flen),
                 HR_EPARSE);
}

Test(dcmtk_shim, transcode_writes_part10_explicit_le)
{
    uint8_t *p10 = NULL;
    size_t len = 0;
    const char *src = PYDICOM "SC_rgb_rle_2frame.dcm";
    cr_assert_eq(dcm_shim_transcode(src, 64u << 20, &p10, &len), 0);
    cr_assert_gt(len, 132 + 60000);
    cr_expect_eq(memcmp(p10 + 128, "DICM", 4), 0);
    /* the File Meta names Explicit VR Little Endian (0002,0010) */
    cr_expect_not_null(memmem(p10, 400, EXP_LE, strlen(EXP_LE) + 1));
    free(p10);
    cr_expect_eq(dcm_shim_transcode(src, 20000, &p10, &len), HR_ETOOBIG);
    cr_expect_null(p10);
    cr_expect_eq(dcm_shim_transcode(PYDICOM "MR_small_jp2klossless.dcm", 64u << 20, &p10, &len),
                 HR_EUNSUP);
}
