/* WADO-RS sidecars (storage/meta.c) on real objects: pydicom's sample files and
 * huren-gen output stored as ingest stores them, checked against what pydicom reads
 * from the same files (computed by /usr/bin/python3 + pydicom in each test). */
#include "common/hr_err.h"
#include "common/hr_hash.h"
#include "dicom/p10.h"
#include "dicom/scanner.h"
#include "dicom/uids.h"
#include "storage/ingest.h"
#include "storage/meta.h"
#include "storage/reindex.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define TF "/usr/lib/python3/dist-packages/pydicom/data/test_files"

static char dir[512], src[600], exp_[600], data[600];
static sto_objstore st;

/* Writes the expected values of each file named (after copying it from pydicom's test
 * files into src/ unless a synthetic file of that name was made there first). */
static const char k_py[] =
    "import os, sys, shutil, struct\n"
    "import numpy as np, pydicom\n"
    "from pydicom.dataset import Dataset, FileMetaDataset\n"
    "from pydicom.encaps import encapsulate, generate_pixel_data_frame\n"
    "from pydicom.filereader import read_preamble, _read_file_meta_info\n"
    "TF = '" TF "'\n"
    "src, out = sys.argv[1], sys.argv[2]\n"
    "rng = np.random.default_rng(7)\n"
    "originals = {}\n"
    "def uid(s): return '2.25.' + str(int.from_bytes(s.encode(), 'big') % 10**30)\n"
    "def synth(name, ts, **kw):\n"
    "    fm = FileMetaDataset()\n"
    "    fm.TransferSyntaxUID = ts\n"
    "    fm.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.7.2'\n"
    "    fm.MediaStorageSOPInstanceUID = uid(name)\n"
    "    ds = Dataset(); ds.file_meta = fm\n"
    "    ds.is_little_endian = True; ds.is_implicit_VR = False\n"
    "    ds.SOPClassUID = fm.MediaStorageSOPClassUID\n"
    "    ds.SOPInstanceUID = fm.MediaStorageSOPInstanceUID\n"
    "    ds.StudyInstanceUID = uid('study'); ds.SeriesInstanceUID = uid('series')\n"
    "    ds.Modality = 'OT'; ds.SamplesPerPixel = 1\n"
    "    ds.PhotometricInterpretation = 'MONOCHROME2'; ds.PixelRepresentation = 0\n"
    "    for k, v in kw.items(): setattr(ds, k, v)\n"
    "    if fm.TransferSyntaxUID.is_compressed: ds['PixelData'].is_undefined_length = True\n"
    "    ds.save_as(os.path.join(src, name), write_like_original=False)\n"
    "def jpeg(n):\n"
    "    return b'\\xff\\xd8' + bytes(rng.integers(0, 255, n, dtype=np.uint8)) + b'\\xff\\xd9'\n"
    "def raw(n): return bytes(rng.integers(0, 255, n, dtype=np.uint8))\n"
    "names = sys.argv[3:]\n"
    "if 'bits1.dcm' in names:\n"
    "    bits = rng.integers(0, 2, 27, dtype=np.uint8)\n"
    "    synth('bits1.dcm', '1.2.840.10008.1.2.1', Rows=3, Columns=3, BitsAllocated=1,\n"
    "          BitsStored=1, HighBit=0, NumberOfFrames=3,\n"
    "          PixelData=np.packbits(bits, bitorder='little').tobytes())\n"
    "if 'eot.dcm' in names:\n"
    "    fr = [jpeg(101), jpeg(57), jpeg(300)]\n"
    "    # encapsulate_extended of pydicom 2.3 ignores the padding of odd frames in the\n"
    "    # offsets: build the table as PS3.5 A.4 says (item offsets, unpadded lengths)\n"
    "    pd = encapsulate(fr, has_bot=False)\n"
    "    offs = [0]\n"
    "    for f in fr[:-1]: offs.append(offs[-1] + 8 + len(f) + len(f) % 2)\n"
    "    eot = struct.pack('<3Q', *offs); eotl = struct.pack('<3Q', *[len(f) for f in fr])\n"
    "    synth('eot.dcm', '1.2.840.10008.1.2.4.50', Rows=8, Columns=8, BitsAllocated=8,\n"
    "          BitsStored=8, HighBit=7, NumberOfFrames=3, PixelData=pd,\n"
    "          ExtendedOffsetTable=eot, ExtendedOffsetTableLengths=eotl)\n"
    "    originals['eot.dcm'] = fr\n"
    "for name, bot in (('bot2.dcm', True), ('eoi2.dcm', False)):\n"
    "    if name in names:\n"
    "        # with a BOT, no EOI marker: only the table can split the fragments\n"
    "        fr = [jpeg(200), jpeg(301)] if not bot else [raw(202), raw(305)]\n"
    "        synth(name, '1.2.840.10008.1.2.4.50', Rows=8, Columns=8, BitsAllocated=8,\n"
    "              BitsStored=8, HighBit=7, NumberOfFrames=2,\n"
    "              PixelData=encapsulate(fr, fragments_per_frame=2, has_bot=bot))\n"
    "if 'pffg.dcm' in names:\n"
    "    items = []\n"
    "    for i in range(1, 3001):\n"
    "        fc = Dataset(); fc.DimensionIndexValues = [i, 1]; fc.FrameAcquisitionNumber = i\n"
    "        it = Dataset(); it.FrameContentSequence = [fc]; it.FrameLabel = '帧%d' % i\n"
    "        items.append(it)\n"
    "    synth('pffg.dcm', '1.2.840.10008.1.2.1', SpecificCharacterSet='GB18030',\n"
    "          PatientName='张三^三', PerFrameFunctionalGroupsSequence=items)\n"
    "for name in names:\n"
    "    p = os.path.join(src, name)\n"
    "    if not os.path.exists(p): shutil.copy(os.path.join(TF, name), p)\n"
    "    ds = pydicom.dcmread(p)\n"
    "    b = os.path.join(out, name)\n"
    "    def w(ext, data): open(b + ext, 'wb').write(data)\n"
    "    with open(p, 'rb') as f:\n"
    "        read_preamble(f, False); _read_file_meta_info(f); w('.dsoff', "
    "str(f.tell()).encode())\n"
    "    w('.uids', ('%s %s %s' % (ds.StudyInstanceUID, ds.SeriesInstanceUID,\n"
    "                             ds.SOPInstanceUID)).encode())\n"
    "    for i, it in enumerate(ds.get('WaveformSequence', [])): w('.wf%d' % i, it.WaveformData)\n"
    "    if 'PixelData' not in ds: continue\n"
    "    w('.pd', ds.PixelData)\n"
    "    nf = int(ds.get('NumberOfFrames', 1) or 1)\n"
    "    if name in originals: frames = originals[name]\n"
    "    elif ds.file_meta.TransferSyntaxUID.is_compressed:\n"
    "        frames = list(generate_pixel_data_frame(ds.PixelData, nf))\n"
    "    else:\n"
    "        try: arr = ds.pixel_array\n"
    "        except ValueError: continue  # e.g. MR_truncated: no frame expectations\n"
    "        if nf == 1: arr = arr[np.newaxis]\n"
    "        if ds.BitsAllocated == 1: frames = [a.astype(np.uint8).tobytes() for a in arr]\n"
    "        else:\n"
    "            order = '<' if ds.is_little_endian else '>'\n"
    "            frames = [a.astype(a.dtype.newbyteorder(order)).tobytes() for a in arr]\n"
    "    w('.nf', str(len(frames)).encode())\n"
    "    for k, fr in enumerate(frames, 1): w('.f%d' % k, fr)\n";

static void setup(void)
{
    int removed;
    cr_assert_eq(ts_tmpdir(dir), 0);
    snprintf(src, sizeof(src), "%s/src", dir);
    snprintf(exp_, sizeof(exp_), "%s/exp", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    cr_assert_eq(mkdir(src, 0700), 0);
    cr_assert_eq(mkdir(exp_, 0700), 0);
    cr_assert_eq(sto_objstore_open(&st, data, &removed), 0);
}

static void teardown(void)
{
    ts_rmrf(dir);
}

TestSuite(meta, .init = setup, .fini = teardown, .timeout = 120);

/* Runs the pydicom script for the files named (space-separated). */
static void expect(const char *names)
{
    char py[700], cmd[2400];
    snprintf(py, sizeof(py), "%s/expect.py", dir);
    FILE *f = fopen(py, "w");
    cr_assert(f);
    fputs(k_py, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -W ignore '%s' '%s' '%s' %s", py, src, exp_,
             names);
    cr_assert_eq(system(cmd), 0, "pydicom (/usr/bin/python3) must produce the expectations");
}

static unsigned char *read_exp(const char *name, const char *ext, size_t *n)
{
    char p[800];
    snprintf(p, sizeof(p), "%s/%s%s", exp_, name, ext);
    unsigned char *b = ts_read_file(p, n);
    cr_assert(b, "missing expectation %s", p);
    b[*n] = '\0'; /* ts_read_file leaves one spare byte */
    return b;
}

static long long exp_num(const char *name, const char *ext)
{
    size_t n;
    unsigned char *b = read_exp(name, ext, &n);
    long long v = strtoll((char *)b, NULL, 10);
    free(b);
    return v;
}

/* Stores the Part 10 file at path the way ingest does: named by the SHA-256 of the
 * dataset (the bytes after the File Meta Information), made durable by commit. */
static void put_path(const char *path, char *sha)
{
    static unsigned char buf[1 << 20];
    char tmp[STO_PATH_MAX];
    dcm_attrs a;
    dcm_scanner *sc = dcm_scanner_new(DCM_SCAN_PART10, NULL, &a);
    hr_sha256 *h = hr_sha256_new();
    FILE *in = fopen(path, "rb");
    cr_assert(sc && h && in, "%s", path);
    int fd = sto_objstore_tmp_create(&st, tmp);
    cr_assert_geq(fd, 0);
    uint64_t pos = 0;
    int scan_ok = 1;
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        if (scan_ok && dcm_scanner_feed(sc, buf, n) < 0)
            scan_ok = 0;
        uint64_t from = a.dataset_offset;
        if (pos + n > from) {
            size_t skip = from > pos ? (size_t)(from - pos) : 0;
            hr_sha256_update(h, buf + skip, n - skip);
        }
        pos += n;
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    }
    fclose(in);
    hr_sha256_final_hex(h, sha);
    cr_assert_eq(sto_objstore_commit(&st, fd, tmp, sha, NULL), 0);
    hr_sha256_free(h);
    dcm_scanner_free(sc);
}

static void put(const char *name, char *sha)
{
    char p[800];
    snprintf(p, sizeof(p), "%s/%s", src, name);
    put_path(p, sha);
}

static unsigned char *read_range(const char *sha, uint64_t off, uint64_t len)
{
    char p[STO_PATH_MAX];
    sto_objstore_path(&st, sha, p);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    unsigned char *b = malloc(len ? len : 1);
    cr_assert_eq(pread(fd, b, len, (off_t)off), (ssize_t)len, "range %llu+%llu",
                 (unsigned long long)off, (unsigned long long)len);
    close(fd);
    return b;
}

static uint64_t object_size(const char *sha)
{
    char p[STO_PATH_MAX];
    struct stat sb;
    sto_objstore_path(&st, sha, p);
    cr_assert_eq(stat(p, &sb), 0);
    return (uint64_t)sb.st_size;
}

static json_t *load_json(const char *sha)
{
    char *js;
    size_t n;
    json_error_t err;
    int rc = sto_meta_read_json(&st, sha, &js, &n);
    cr_assert_eq(rc, 0, "read_json: %s", hr_strerror(rc));
    cr_assert_eq(strlen(js), n);
    json_t *j = json_loadb(js, n, JSON_ALLOW_NUL, &err);
    free(js);
    cr_assert(j && json_is_object(j));
    return j;
}

static const char *value_str(json_t *j, const char *tag)
{
    json_t *v = json_array_get(json_object_get(json_object_get(j, tag), "Value"), 0);
    cr_assert(json_is_string(v), "%s has no string value", tag);
    return json_string_value(v);
}

/* Checks the UIDs and returns the bulk range of the BulkDataURI of e. */
static void bulk_range(json_t *e, const char *uids, uint64_t *off, uint64_t *len)
{
    char s[65], se[65], sop[65], want[200];
    unsigned long long o, l;
    const char *uri = json_string_value(json_object_get(e, "BulkDataURI"));
    cr_assert(uri, "no BulkDataURI");
    cr_assert_null(json_object_get(e, "InlineBinary"));
    cr_assert_eq(sscanf(uri,
                        "/dicomweb/studies/%64[^/]/series/%64[^/]/instances/%64[^/]/bulk/%llu-%llu",
                        s, se, sop, &o, &l),
                 5, "%s", uri);
    snprintf(want, sizeof(want), "%s %s %s", s, se, sop);
    cr_assert_str_eq(want, uids);
    *off = o;
    *len = l;
}

/* Common checks of one stored sample: UIDs, dataset offset, Pixel Data bulk range
 * against pydicom's PixelData, and every frame against pydicom's frames. */
static void check_file(const char *name, const char *sha, int same_meta, int packed)
{
    size_t n, m;
    char ts[65];
    uint64_t dsoff, off, len;
    unsigned char *uids = read_exp(name, ".uids", &n);
    json_t *j = load_json(sha);
    char want[200];
    snprintf(want, sizeof(want), "%s %s %s", value_str(j, "0020000D"), value_str(j, "0020000E"),
             value_str(j, "00080018"));
    cr_expect_str_eq(want, (char *)uids, "UIDs of %s", name);
    cr_expect_null(json_object_get(j, "00020010"), "no File Meta Information");
    cr_expect_null(json_object_get(j, "00080000"), "no group lengths");

    cr_assert_eq(sto_meta_dataset_offset(&st, sha, &dsoff, ts), 0);
    if (same_meta)
        cr_expect_eq((long long)dsoff, exp_num(name, ".dsoff"), "dataset offset of %s", name);
    cr_expect(dcm_transfer_syntax(ts) != NULL, "%s", ts);

    json_t *pd = json_object_get(j, "7FE00010");
    cr_assert(pd, "%s: no Pixel Data in JSON", name);
    bulk_range(pd, (char *)uids, &off, &len);
    unsigned char *e = read_exp(name, ".pd", &m);
    cr_assert_eq(len, m, "%s: Pixel Data range length", name);
    unsigned char *got = read_range(sha, off, len);
    cr_expect(memcmp(got, e, m) == 0, "%s: Pixel Data bytes differ from pydicom's", name);
    free(got);
    free(e);

    sto_frames *t;
    cr_assert_eq(sto_frames_load(&st, sha, &t), 0);
    const sto_pixel_info *in = sto_frames_info(t);
    long long nf = exp_num(name, ".nf");
    cr_assert_eq((long long)in->n_frames, nf, "%s: frames", name);
    cr_expect_eq(in->value_offset, off);
    cr_expect_eq(in->value_length, len);
    cr_expect_str_eq(in->ts, ts);
    for (uint32_t k = 1; k <= (uint32_t)nf; k++) {
        char ext[16];
        sto_frame fr;
        snprintf(ext, sizeof(ext), ".f%u", k);
        unsigned char *x = read_exp(name, ext, &m);
        cr_assert_eq(sto_frames_get(t, k, &fr), 0);
        cr_expect_eq(fr.encapsulated, in->kind == STO_PIXEL_ENCAPSULATED);
        uint64_t total = 0;
        for (size_t i = 0; i < fr.n_ranges; i++)
            total += fr.ranges[i].length;
        unsigned char *cat = malloc(total ? total : 1);
        for (size_t i = 0, at = 0; i < fr.n_ranges; i++) {
            unsigned char *r = read_range(sha, fr.ranges[i].offset, fr.ranges[i].length);
            memcpy(cat + at, r, fr.ranges[i].length);
            at += fr.ranges[i].length;
            free(r);
        }
        if (!packed) {
            cr_expect_eq(fr.bits, 8 * total);
            cr_expect_eq(total, m, "%s frame %u length", name, k);
            cr_expect(total == m && memcmp(cat, x, m) == 0, "%s frame %u differs", name, k);
        } else {
            /* packed bits: pydicom gives one byte per pixel */
            cr_assert_eq(fr.bits, m, "%s frame %u bits", name, k);
            for (uint64_t i = 0; i < fr.bits; i++) {
                uint64_t b = fr.bit_offset + i;
                cr_expect_eq((cat[b / 8] >> (b % 8)) & 1, x[i], "%s frame %u bit %llu", name, k,
                             (unsigned long long)i);
            }
        }
        free(cat);
        free(x);
        sto_frame_free(&fr);
    }
    sto_frame fr;
    cr_expect_eq(sto_frames_get(t, (uint32_t)nf + 1, &fr), HR_ENOTFOUND);
    cr_expect_eq(sto_frames_get(t, 0, &fr), HR_ENOTFOUND);
    sto_frames_free(t);
    json_decref(j);
    free(uids);
}

static void check_samples(const char *names, int packed)
{
    char list[512], *save = NULL, sha[65];
    expect(names);
    snprintf(list, sizeof(list), "%s", names);
    for (char *nm = strtok_r(list, " ", &save); nm; nm = strtok_r(NULL, " ", &save)) {
        put(nm, sha);
        cr_assert_eq(sto_meta_build(&st, sha), 0, "%s", nm);
        check_file(nm, sha, 1, packed);
    }
}

Test(meta, native_single_and_multi_frame_in_three_syntaxes)
{
    /* CT_small: explicit LE; rtdose: implicit LE, 15 frames of 32 bits; rtdose_expb:
     * explicit BE (frames stay in the file's byte order) */
    check_samples("CT_small.dcm MR_small_implicit.dcm rtdose.dcm rtdose_expb.dcm "
                  "MR_small_bigendian.dcm",
                  0);
}

Test(meta, encapsulated_frames_from_bot_eot_fragment_count_and_eoi)
{
    /* JPEG2000: one fragment; SC_rgb_rle_2frame: Basic Offset Table; rtdose_rle: empty BOT,
     * 15 fragments for 15 frames; eot: Extended Offset Table with odd frame lengths (the
     * padding byte is not part of the frame); bot2: two fragments per frame with BOT;
     * eoi2: two fragments per frame, no BOT (JPEG EOI markers) */
    check_samples("JPEG2000.dcm MR_small_RLE.dcm SC_rgb_rle_2frame.dcm rtdose_rle.dcm eot.dcm "
                  "bot2.dcm eoi2.dcm",
                  0);
}

Test(meta, packed_single_bit_frames)
{
    /* 3 frames of 3x3 bits: frames 2 and 3 start inside a byte */
    check_samples("liver_1frame.dcm bits1.dcm", 1);
    char sha[65];
    put("bits1.dcm", sha);
    sto_frame fr;
    cr_assert_eq(sto_meta_frame(&st, sha, 2, &fr), 0);
    cr_expect_eq(fr.bit_offset, 1);
    cr_expect_eq(fr.bits, 9);
    cr_expect_eq(fr.ranges[0].length, 2);
    sto_frame_free(&fr);
}

Test(meta, waveform_data_in_a_sequence_is_bulk_and_small_binary_is_inline)
{
    char sha[65];
    size_t n, m;
    uint64_t off, len;
    expect("waveform_ecg.dcm");
    put("waveform_ecg.dcm", sha);
    unsigned char *uids = read_exp("waveform_ecg.dcm", ".uids", &n);
    json_t *j = load_json(sha);
    json_t *items = json_object_get(json_object_get(j, "54000100"), "Value");
    cr_assert(json_array_size(items) >= 1);
    for (size_t i = 0; i < json_array_size(items); i++) {
        char ext[16];
        json_t *it = json_array_get(items, i);
        snprintf(ext, sizeof(ext), ".wf%zu", i);
        unsigned char *x = read_exp("waveform_ecg.dcm", ext, &m);
        cr_assert_gt(m, 1024);
        bulk_range(json_object_get(it, "54001010"), (char *)uids, &off, &len);
        cr_assert_eq(len, m);
        unsigned char *got = read_range(sha, off, len);
        cr_expect(memcmp(got, x, m) == 0, "WaveformData of item %zu differs", i);
        free(got);
        free(x);
        /* a small binary value stays inline: Channel Definition Sequence holds none, but
         * the item's own values like (003A,0005) are plain numbers */
        cr_expect(json_is_integer(
            json_array_get(json_object_get(json_object_get(it, "003A0005"), "Value"), 0)));
    }
    sto_frames *t;
    cr_assert_eq(sto_frames_load(&st, sha, &t), 0);
    cr_expect_eq(sto_frames_info(t)->kind, STO_PIXEL_NONE);
    sto_frame fr;
    cr_expect_eq(sto_frames_get(t, 1, &fr), HR_ENOTFOUND);
    sto_frames_free(t);
    json_decref(j);
    free(uids);
}

Test(meta, small_binary_values_stay_inline)
{
    /* CT_small's (0029,1010) private OB is larger than 1 KiB; (7FE0,0010) bulk; a small
     * OB value (e.g. in File Meta) never appears; look for any InlineBinary <= 1024 */
    char sha[65];
    expect("MR_small.dcm");
    put("MR_small.dcm", sha);
    json_t *j = load_json(sha);
    const char *key;
    json_t *v;
    int inline_seen = 0, bulk_seen = 0;
    json_object_foreach(j, key, v)
    {
        json_t *ib = json_object_get(v, "InlineBinary");
        if (ib) {
            inline_seen++;
            cr_expect_leq(json_string_length(ib), 4 * ((1024 + 2) / 3), "%s inline too big", key);
        }
        bulk_seen += json_object_get(v, "BulkDataURI") != NULL;
    }
    cr_expect_eq(bulk_seen, 1, "only Pixel Data is bulk in MR_small");
    json_decref(j);
}

Test(meta, gb18030_patient_name_is_utf8)
{
    char cmd[1400], path[1200], sha[65];
    const char *build = getenv("HUREN_BUILD_DIR");
    cr_assert(build, "HUREN_BUILD_DIR (set by ctest)");
    snprintf(cmd, sizeof(cmd),
             "'%s/huren-gen' --out '%s/gb' --charset gb18030 --patient-name '张三^三' "
             "--institution '县医院' >/dev/null",
             build, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/gb", dir);
    DIR *d = opendir(cmd);
    cr_assert(d);
    struct dirent *e;
    path[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".dcm"))
            snprintf(path, sizeof(path), "%s/%s", cmd, e->d_name);
    closedir(d);
    cr_assert(path[0]);
    put_path(path, sha);
    json_t *j = load_json(sha);
    json_t *pn = json_array_get(json_object_get(json_object_get(j, "00100010"), "Value"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(pn, "Alphabetic")), "张三^三");
    cr_expect_str_eq(value_str(j, "00080080"), "县医院");
    cr_expect_str_eq(value_str(j, "00080005"), "ISO_IR 192");
    json_decref(j);
}

Test(meta, large_sequences_convert_item_by_item_with_the_top_level_charset)
{
    /* 3000 per-frame items, 18000 elements and items in all: beyond what one
     * dcm_ds_parse takes (DCM_DS_MAX_ELEMENTS), so the JSON is built by parts */
    char sha[65];
    expect("pffg.dcm");
    put("pffg.dcm", sha);
    json_t *j = load_json(sha);
    json_t *items = json_object_get(json_object_get(j, "52009230"), "Value");
    cr_assert_eq(json_array_size(items), 3000);
    for (size_t i = 0; i < 3000; i += 999) {
        char want[32];
        json_t *it = json_array_get(items, i);
        snprintf(want, sizeof(want), "帧%zu", i + 1);
        cr_expect_str_eq(value_str(it, "00209453"), want, "GB18030 text of item %zu", i);
        cr_expect_null(json_object_get(it, "00080005"), "no charset copied into items");
        json_t *fc = json_array_get(json_object_get(json_object_get(it, "00209111"), "Value"), 0);
        json_t *div = json_object_get(json_object_get(fc, "00209157"), "Value");
        cr_expect_eq(json_integer_value(json_array_get(div, 0)), (json_int_t)(i + 1));
    }
    json_t *pn = json_array_get(json_object_get(json_object_get(j, "00100010"), "Value"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(pn, "Alphabetic")), "张三^三");
    cr_expect_str_eq(value_str(j, "00080005"), "ISO_IR 192");
    /* members in tag order, each once */
    const char *key, *prev = "";
    json_t *v;
    json_object_foreach(j, key, v)
    {
        cr_expect_gt(strcmp(key, prev), 0, "%s after %s", key, prev);
        prev = key;
    }
    json_decref(j);
}

/* Reads the .frames sidecar into a new buffer. */
static unsigned char *read_sidecar(const char *sha, const char *ext, size_t *n)
{
    char p[STO_PATH_MAX];
    sto_objstore_meta_path(&st, sha, ext, p);
    return ts_read_file(p, n);
}

static void write_sidecar(const char *sha, const char *ext, const void *b, size_t n)
{
    char p[STO_PATH_MAX];
    sto_objstore_meta_path(&st, sha, ext, p);
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void set_crc(unsigned char *b, size_t n)
{
    uint32_t body = (uint32_t)crc32(0L, b + 136, (uInt)(n - 136));
    for (int i = 0; i < 4; i++)
        b[128 + i] = (unsigned char)(body >> (8 * i));
    uint32_t hdr = (uint32_t)crc32(0L, b, 132);
    for (int i = 0; i < 4; i++)
        b[132 + i] = (unsigned char)(hdr >> (8 * i));
}

Test(meta, corrupted_frames_sidecar_is_detected_and_rebuilt)
{
    char sha[65];
    size_t n, n2;
    expect("SC_rgb_rle_2frame.dcm");
    put("SC_rgb_rle_2frame.dcm", sha);
    cr_assert_eq(sto_meta_build(&st, sha), 0);
    unsigned char *good = read_sidecar(sha, ".frames", &n);
    cr_assert(good);
    uint64_t size = object_size(sha);
    sto_frames *t;
    cr_assert_eq(sto_frames_parse(good, n, size, &t), 0);
    sto_frames_free(t);

    /* every single-byte flip is caught (CRC), as is truncation and another object size */
    unsigned char *bad = malloc(n);
    for (size_t i = 0; i < n; i++) {
        memcpy(bad, good, n);
        bad[i] ^= 0x40;
        cr_expect_eq(sto_frames_parse(bad, n, size, &t), HR_EPARSE, "flip at %zu", i);
    }
    for (size_t k = 0; k < n; k++)
        cr_expect_eq(sto_frames_parse(good, k, size, &t), HR_EPARSE, "truncated to %zu", k);
    cr_expect_eq(sto_frames_parse(good, n, size + 1, &t), HR_EPARSE);

    /* a consistent CRC does not save a range outside the object or a bad frame index */
    memcpy(bad, good, n);
    uint64_t far = size + 100;
    for (int i = 0; i < 8; i++)
        bad[136 + i] = (unsigned char)(far >> (8 * i)); /* first range's offset */
    set_crc(bad, n);
    cr_expect_eq(sto_frames_parse(bad, n, size, &t), HR_EPARSE);
    memcpy(bad, good, n);
    bad[n - 8] = 0; /* index[1] = 0: frame 1 without fragments */
    set_crc(bad, n);
    cr_expect_eq(sto_frames_parse(bad, n, size, &t), HR_EPARSE);

    /* on disk: a corrupted sidecar is rebuilt by the reader */
    memcpy(bad, good, n);
    bad[n / 2] ^= 0xFF;
    write_sidecar(sha, ".frames", bad, n);
    sto_frame fr;
    cr_assert_eq(sto_meta_frame(&st, sha, 2, &fr), 0);
    cr_expect_eq(fr.n_ranges, 1);
    sto_frame_free(&fr);
    unsigned char *again = read_sidecar(sha, ".frames", &n2);
    cr_expect(n2 == n && memcmp(again, good, n) == 0, "rebuilt identically");
    free(again);
    /* an empty one too */
    write_sidecar(sha, ".frames", "", 0);
    cr_assert_eq(sto_frames_load(&st, sha, &t), 0);
    cr_expect_eq(sto_frames_info(t)->n_frames, 2);
    sto_frames_free(t);
    free(bad);
    free(good);
}

Test(meta, missing_or_unreadable_json_is_rebuilt_on_read)
{
    char sha[65], p[STO_PATH_MAX];
    struct stat sb;
    expect("CT_small.dcm");
    put("CT_small.dcm", sha);
    sto_objstore_meta_path(&st, sha, ".json", p);
    cr_assert_neq(stat(p, &sb), 0, "nothing built yet");
    json_t *j = load_json(sha); /* builds */
    cr_assert_eq(stat(p, &sb), 0);
    json_decref(j);
    size_t n;
    unsigned char *good = read_sidecar(sha, ".json", &n);
    write_sidecar(sha, ".json", good, n / 2); /* truncated */
    j = load_json(sha);
    json_decref(j);
    size_t n2;
    unsigned char *again = read_sidecar(sha, ".json", &n2);
    cr_expect(n2 == n && memcmp(again, good, n) == 0);
    free(again);
    cr_assert_eq(unlink(p), 0);
    int built = 0;
    cr_assert_eq(sto_meta_ensure(&st, sha, &built), 0);
    cr_expect_eq(built, 1);
    cr_assert_eq(sto_meta_ensure(&st, sha, &built), 0);
    cr_expect_eq(built, 0, "present: not rebuilt");
    free(good);
}

Test(meta, every_pydicom_sample_builds_or_fails_cleanly)
{
    DIR *d = opendir(TF);
    cr_assert(d);
    struct dirent *e;
    int ok = 0, failed = 0;
    while ((e = readdir(d)) != NULL) {
        char p[1200], sha[65];
        if (!strstr(e->d_name, ".dcm"))
            continue;
        snprintf(p, sizeof(p), "%s/%s", TF, e->d_name);
        put_path(p, sha);
        int rc = sto_meta_build(&st, sha);
        cr_expect(rc == 0 || rc == HR_EPARSE || rc == HR_ETRUNC || rc == HR_EUNSUP ||
                      rc == HR_EMISSING,
                  "%s: %s", e->d_name, hr_strerror(rc));
        if (rc) {
            failed++;
            cr_log_info("%s: %s", e->d_name, hr_err_name(rc));
            continue;
        }
        ok++;
        json_decref(load_json(sha));
        sto_frames *t;
        cr_assert_eq(sto_frames_load(&st, sha, &t), 0, "%s", e->d_name);
        uint64_t size = object_size(sha);
        for (uint32_t k = 1; k <= sto_frames_info(t)->n_frames; k++) {
            sto_frame fr;
            cr_assert_eq(sto_frames_get(t, k, &fr), 0);
            for (size_t i = 0; i < fr.n_ranges; i++)
                cr_expect(fr.ranges[i].offset + fr.ranges[i].length <= size);
            sto_frame_free(&fr);
        }
        sto_frames_free(t);
    }
    closedir(d);
    cr_expect_gt(ok, 50, "%d built, %d refused", ok, failed);
}

Test(meta, refuses_deflated_truncated_and_missing)
{
    char sha[65];
    expect("image_dfl.dcm MR_truncated.dcm");
    put("image_dfl.dcm", sha);
    cr_expect_eq(sto_meta_build(&st, sha), HR_EUNSUP);
    char *js;
    size_t n;
    cr_expect_eq(sto_meta_read_json(&st, sha, &js, &n), HR_EUNSUP);
    put("MR_truncated.dcm", sha);
    cr_expect_eq(sto_meta_build(&st, sha), HR_ETRUNC);
    const char *none = "0000000000000000000000000000000000000000000000000000000000000000";
    cr_expect_eq(sto_meta_build(&st, none), -ENOENT);
    sto_frames *t;
    cr_expect_eq(sto_frames_load(&st, none, &t), -ENOENT);
    cr_expect_eq(sto_meta_build(&st, "../../etc/passwd"), HR_EPARSE);
}

/* Part 10 file: huren's meta + an explicit VR LE dataset with the UIDs and a UT of
 * text_len bytes (a non-bulk value). */
static void write_text(const char *path, size_t text_len, const char *text)
{
    hr_buf b;
    hr_buf_init(&b, 1 << 20);
    dcm_p10_meta m = {"1.2.840.10008.5.1.4.1.1.7", "2.25.77", DCM_TS_EXPLICIT_LE, NULL, NULL};
    cr_assert_eq(dcm_p10_encode_meta(&m, &b), 0);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(b.data, 1, b.len, f);
    static const struct {
        unsigned g, e;
        const char *v;
    } el[] = {{0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.7"},
              {0x0008, 0x0018, "2.25.77"},
              {0x0020, 0x000D, "2.25.78"},
              {0x0020, 0x000E, "2.25.79"}};
    for (size_t i = 0; i < 4; i++) {
        unsigned char h[8] = {el[i].g & 0xFF, el[i].g >> 8, el[i].e & 0xFF, el[i].e >> 8, 'U', 'I'};
        size_t n = strlen(el[i].v), len = n + (n & 1);
        h[6] = (unsigned char)len;
        h[7] = 0;
        fwrite(h, 1, 8, f);
        fwrite(el[i].v, 1, n, f);
        if (n & 1)
            fputc(0, f);
    }
    unsigned char h[12] = {0x40, 0x00, 0x60, 0xA1, 'U', 'T', 0, 0};
    for (int i = 0; i < 4; i++)
        h[8 + i] = (unsigned char)(text_len >> (8 * i));
    fwrite(h, 1, 12, f);
    static char chunk[1 << 16];
    memset(chunk, 'a', sizeof(chunk));
    if (text) {
        fwrite(text, 1, text_len, f);
        text_len = 0;
    }
    for (size_t left = text_len; left;) {
        size_t k = left < sizeof(chunk) ? left : sizeof(chunk);
        fwrite(chunk, 1, k, f);
        left -= k;
    }
    fclose(f);
    hr_buf_free(&b);
}

Test(meta, header_beyond_the_bound_is_too_big)
{
    char p[700], sha[65];
    snprintf(p, sizeof(p), "%s/big_text.dcm", src);
    write_text(p, STO_META_MAX_HEADER + 2, NULL);
    put_path(p, sha);
    cr_expect_eq(sto_meta_build(&st, sha), HR_ETOOBIG);
    write_text(p, 4000, NULL); /* same UIDs, small: fine, and the UT stays text */
    put_path(p, sha);
    cr_assert_eq(sto_meta_build(&st, sha), 0);
    json_t *j = load_json(sha);
    cr_expect_eq(strlen(value_str(j, "0040A160")), 4000);
    json_decref(j);
}

Test(meta, text_with_a_nul_reads_back_without_rebuilding)
{
    char p[700], sha[65], path[STO_PATH_MAX];
    struct stat a, b;
    snprintf(p, sizeof(p), "%s/nul.dcm", src);
    write_text(p, 4, "a\0bc");
    put_path(p, sha);
    json_t *j = load_json(sha); /* JSON "a\u0000bc": valid, and accepted on reading */
    json_t *v = json_array_get(json_object_get(json_object_get(j, "0040A160"), "Value"), 0);
    cr_expect_eq(json_string_length(v), 4);
    json_decref(j);
    sto_objstore_meta_path(&st, sha, ".json", path);
    cr_assert_eq(stat(path, &a), 0);
    usleep(20000);
    json_decref(load_json(sha));
    cr_assert_eq(stat(path, &b), 0);
    cr_expect(a.st_ino == b.st_ino, "not rebuilt");
}

Test(meta, large_object_memory_does_not_grow_with_pixel_data, .timeout = 300)
{
    char cmd[1400], path[1200], sha[65];
    const char *build = getenv("HUREN_BUILD_DIR");
    cr_assert(build);
    snprintf(cmd, sizeof(cmd), "'%s/huren-gen' --out '%s/large' --size-total 268435456 >/dev/null",
             build, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/large", dir);
    DIR *d = opendir(cmd);
    cr_assert(d);
    struct dirent *e;
    path[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".dcm"))
            snprintf(path, sizeof(path), "%s/%s", cmd, e->d_name);
    closedir(d);
    put_path(path, sha);
    unlink(path);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    cr_assert_eq(sto_meta_build(&st, sha), 0);
    getrusage(RUSAGE_SELF, &ru1);
    cr_expect_lt(ru1.ru_maxrss - ru0.ru_maxrss, 32 * 1024, "peak RSS grew by %ld KiB",
                 ru1.ru_maxrss - ru0.ru_maxrss);
    sto_frames *t;
    cr_assert_eq(sto_frames_load(&st, sha, &t), 0);
    const sto_pixel_info *in = sto_frames_info(t);
    cr_expect_eq(in->kind, STO_PIXEL_NATIVE);
    cr_expect_gt(in->n_frames, 100);
    cr_expect_gt(in->value_length, 200u << 20);
    sto_frame fr;
    cr_assert_eq(sto_frames_get(t, in->n_frames, &fr), 0);
    cr_expect_eq(fr.ranges[0].offset + fr.ranges[0].length, in->value_offset + in->value_length);
    sto_frame_free(&fr);
    sto_frames_free(t);
}

/* ---- ingest hook and reindex, on a real loop with a real redis-server ---------------- */

typedef struct outcome {
    int done;
    enum sto_ingest_status status;
    char sha[65];
} outcome;

static void on_done(void *arg, const sto_ingest_result *r)
{
    outcome *o = arg;
    o->done = 1;
    o->status = r->status;
    snprintf(o->sha, sizeof(o->sha), "%s", r->sha);
}

static void on_resume(void *arg)
{
    (void)arg;
}

Test(meta, ingest_builds_sidecars_and_reindex_rebuilds_missing_ones)
{
    ts_redis redis;
    uv_loop_t loop;
    sto_ctx ctx;
    char p[800], path[STO_PATH_MAX];
    struct stat sb;
    size_t n;
    cr_assert_eq(ts_redis_start(&redis, dir), 0, "redis-server must be installed");
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&ctx, 0, sizeof(ctx));
    ctx.loop = &loop;
    ctx.max_object_bytes = 1 << 24;
    ctx.max_feed = 16384;
    ctx.store = st;
    sto_redis_addr addr = {.port = 0};
    snprintf(addr.host, sizeof(addr.host), "%s", redis.sock);
    cr_assert_eq(sto_index_open(&loop, &addr, &ctx.index), 0);
    for (int i = 0; i < 500 && !sto_index_ready(ctx.index); i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(sto_index_ready(ctx.index));

    /* feed CT_small's dataset as a C-STORE would */
    snprintf(p, sizeof(p), "%s/CT_small.dcm", TF);
    unsigned char *file = ts_read_file(p, &n);
    cr_assert(file);
    dcm_attrs a;
    dcm_scanner *sc = dcm_scanner_new(DCM_SCAN_PART10, NULL, &a);
    cr_assert_eq(dcm_scanner_feed(sc, file, n), 0);
    cr_assert_eq(dcm_scanner_finish(sc), DCM_SCAN_END);
    dcm_scanner_free(sc);
    sto_ingest_meta m = {.source_ae = "TESTAE", .hospital = "township1"};
    snprintf(m.sop_class, sizeof(m.sop_class), "%s", a.sop_class_uid);
    snprintf(m.sop_instance, sizeof(m.sop_instance), "%s", a.sop_instance_uid);
    snprintf(m.ts, sizeof(m.ts), "%s", a.transfer_syntax_uid);
    sto_ingest *ig;
    outcome o = {0};
    cr_assert_eq(sto_ingest_begin(&ctx, &m, on_resume, NULL, &ig), 0);
    for (size_t off = a.dataset_offset; off < n; off += 16384) {
        size_t k = n - off < 16384 ? n - off : 16384;
        if (sto_ingest_feed(ig, file + off, k) == 1)
            uv_run(&loop, UV_RUN_ONCE);
    }
    sto_ingest_end(ig, on_done, &o);
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(o.status, STO_STORED);
    cr_expect_eq(ctx.meta_jobs, 1, "the sidecar build is queued, not awaited");
    while (ctx.meta_jobs)
        uv_run(&loop, UV_RUN_ONCE);
    sto_objstore_meta_path(&st, o.sha, ".json", path);
    cr_expect_eq(stat(path, &sb), 0, "json sidecar written after ingest");
    sto_objstore_meta_path(&st, o.sha, ".frames", path);
    cr_expect_eq(stat(path, &sb), 0, "frames sidecar written after ingest");
    /* ingest wrote huren's own File Meta: the range still holds pydicom's Pixel Data */
    expect("CT_small.dcm");
    check_file("CT_small.dcm", o.sha, 0, 0);

    /* reindex (full and reconcile) writes the sidecars it finds missing */
    unlink(path);
    sto_objstore_meta_path(&st, o.sha, ".json", path);
    unlink(path);
    redisContext *c = redisConnectUnix(redis.sock);
    cr_assert(c && !c->err);
    sto_reindex_stats rs;
    cr_assert_eq(sto_reindex(&st, c, NULL, &rs), 0);
    cr_expect_eq(rs.present, 1);
    cr_expect_eq(stat(path, &sb), 0, "json sidecar rebuilt by reindex");
    unlink(path);
    int full = -1;
    cr_assert_eq(sto_reconcile(&st, c, NULL, &rs, &full), 0);
    cr_expect_eq(stat(path, &sb), 0, "json sidecar rebuilt by reconcile");
    redisFree(c);

    /* shutdown with a sidecar build in flight: the loop drains it */
    sto_ingest_meta m2 = m;
    outcome o2 = {0};
    cr_assert_eq(sto_ingest_begin(&ctx, &m2, on_resume, NULL, &ig), 0);
    for (size_t off = a.dataset_offset; off < n; off += 16384) {
        size_t k = n - off < 16384 ? n - off : 16384;
        if (sto_ingest_feed(ig, file + off, k) == 1)
            uv_run(&loop, UV_RUN_ONCE);
    }
    sto_ingest_end(ig, on_done, &o2);
    while (!o2.done)
        uv_run(&loop, UV_RUN_ONCE);
    cr_expect_eq(o2.status, STO_IDENTICAL);
    sto_index_close(ctx.index);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(ctx.meta_jobs, 0);
    sto_ctx_release(&ctx);
    cr_expect_eq(uv_loop_close(&loop), 0, "no handle leaked");
    ts_redis_stop(&redis);
    free(file);
}
