#!/usr/bin/env bash
# PS3.18 rendered and thumbnail resources (issue 10, decision 0029): huren's
# PNG of a frame equals DCMTK's own rendering (dcmj2pnm / dcml2pnm, the same
# frame, window and size) for native CT and MR, RLE, JPEG-LS, JPEG extended,
# colour (RLE, YBR baseline JPEG), MONOCHROME1, multi-frame objects and the
# project generator's CT; pixels compared by npm pngjs. JPEG by default,
# thumbnails fit 128x128 and are cached; study/series thumbnails choose the
# middle instance and frame and skip what is no image. Scope like WADO-RS
# (other hospital, external doctor: 404 like absent), 401 without a token,
# 400 for bad window/viewport/quality/frames, 406 for a media type other
# than JPEG/PNG and for study-level rendered, 404 for an absent frame, 422
# for an object without pixels, 503 + Retry-After beyond the render queue;
# the audit log records each read.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
P=/usr/lib/python3/dist-packages/pydicom/data/test_files
JS=$SRC/tests/js
[ -d "$JS/node_modules/pngjs" ] || npm ci --prefix "$JS" --no-audit --no-fund --loglevel=error >/dev/null

port=$(free_port)
cfg=$(write_config rd "$port")
U="http://127.0.0.1:$(http_port rd)"
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" doc 'doc-password-1' external county
start_huren rd "$cfg"
wait_port "$(http_port rd)" 30
T1=$(login_token "$U" tech1 'tech1-password-1')
T2=$(login_token "$U" tech2 'tech2-password-1')
TD=$(login_token "$U" doc 'doc-password-1')

# ---- the objects: pydicom's test files with fresh UIDs in two studies of
# township1, plus a MONOCHROME1 CT, a 3-frame MR and a 3-instance MR series
mkdir -p "$T/in" "$T/out"
$PY - "$P" "$T/in" >"$T/manifest" <<'EOF'
import sys, numpy as np, pydicom
from pydicom.uid import generate_uid
src, out = sys.argv[1], sys.argv[2]
st_a, st_b = generate_uid(), generate_uid()
n = [0]
def put(ds, name, study, series=None, inst=1, pid='RD1'):
    n[0] += 1
    ds.PatientID = pid
    ds.PatientName = 'Render^Test'
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SeriesNumber = n[0]
    ds.InstanceNumber = inst
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(f'{out}/{name}.dcm', write_like_original=False)
    print(name, study, ds.SeriesInstanceUID, ds.SOPInstanceUID)
def rd(f):
    return pydicom.dcmread(f'{src}/{f}')
for name, f in [('ct', 'CT_small.dcm'), ('mr', 'MR_small.dcm'), ('mrrle', 'MR_small_RLE.dcm'),
                ('mrjls', 'MR_small_jpeg_ls_lossless.dcm'), ('jpgext', 'JPGExtended.dcm'),
                ('rgbrle', 'SC_rgb_rle.dcm'), ('rgbjpeg', 'SC_rgb_jpeg_dcmtk.dcm'),
                ('rgb2f', 'SC_rgb_rle_2frame.dcm')]:
    put(rd(f), name, st_a)
d = rd('CT_small.dcm'); d.PhotometricInterpretation = 'MONOCHROME1'; put(d, 'mono1', st_a)
a = rd('MR_small.dcm').pixel_array
frames = [a, np.flipud(a).copy(), a.T.copy()]
d = rd('MR_small.dcm'); d.NumberOfFrames = 3; d.PixelData = np.stack(frames).tobytes()
put(d, 'multi', st_a)
se = generate_uid()
for i, px in enumerate(frames):
    d = rd('MR_small.dcm'); d.PixelData = px.tobytes(); put(d, f'mr3_{i + 1}', st_a, se, i + 1)
    n[0] -= 1 if i < 2 else 0
# study B: an SR first (series 1), then the 3-frame MR (series 2)
n[0] = 0
put(rd('test-SR.dcm'), 'sr', st_b, pid='RD2')
d = rd('MR_small.dcm'); d.NumberOfFrames = 3; d.PixelData = np.stack(frames).tobytes()
put(d, 'multib', st_b, pid='RD2')
EOF
"$GEN" --out "$T/gen" --modality CT --instances 1 --bytes 8192 --patient-id RD3 --seed 71 >/dev/null
cp "$T/gen"/*.dcm "$T/in/gen.dcm"
m() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$T/manifest"; }
check "township1 sends the objects in their own transfer syntaxes (dcmsend)" \
  dcmsend -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T"/in/*.dcm
STA=$(m ct 2); STB=$(m sr 2)
GST=$(dcmdump +P 0020,000D "$T/in/gen.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')
GSE=$(dcmdump +P 0020,000E "$T/in/gen.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')
GSOP=$(dcmdump +P 0008,0018 "$T/in/gen.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check_eq "the JPEG-LS object is stored as JPEG-LS (rendered from it, not a copy)" \
  1.2.840.10008.1.2.4.80 "$(rcli rd HGET "hr:{$STA}:i:$(m mrjls 4)" ts)"

inst() { echo "$U/dicomweb/studies/$(m "$1" 2)/series/$(m "$1" 3)/instances/$(m "$1" 4)"; }
# get TOKEN URL OUT [curl args...] -> status; headers in OUT.h
get() {
  local tok=$1 url=$2 out=$3; shift 3
  curl -s -o "$out" -D "$out.h" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$url"
}
hdr() { sed -n "s/^$2: *//Ip" "$1.h" | tr -d '\r'; }
# the window option dcmj2pnm needs for what huren does without a request
# window: the object's first window, else min-max; nothing for colour
wopt() {
  $PY -c 'import sys, pydicom
d = pydicom.dcmread(sys.argv[1], stop_before_pixels=True)
if d.PhotometricInterpretation.startswith("MONOCHROME"):
    print("+Wi 1" if "WindowCenter" in d else "+Wm")' "$1"
}
# same NAME URL DCMTK-ARGS... : huren's PNG equals the tool's of the file
same() {
  local name=$1 url=$2 file=$3 tool=$4; shift 4
  local st res
  st=$(get "$T1" "$url" "$T/out/$name.png" -H 'Accept: image/png')
  if [ "$st" != 200 ]; then fail "$name: status $st $(cat "$T/out/$name.png")"; return; fi
  if ! "$tool" --write-png "$@" "$file" "$T/out/$name.dcmtk.png" 2>"$T/out/$name.err"; then
    fail "$name: $tool failed: $(cat "$T/out/$name.err")"; return
  fi
  res=$(node "$JS/png_diff.mjs" "$T/out/$name.png" "$T/out/$name.dcmtk.png") || true
  # "<w>x<h> <channels> <max> <mean> <distinct>": exact, and not a blank image
  if awk '{ exit !($3 == 0 && $5 >= 3) }' <<<"$res"; then
    pass "$name: huren's PNG equals $tool $* ($res)"
  else
    fail "$name: huren's PNG differs from $tool $*: $res"
  fi
}
for n in ct mr mrrle jpgext rgbrle rgbjpeg mono1 multi; do
  # shellcheck disable=SC2046
  same "$n" "$(inst "$n")/rendered" "$T/in/$n.dcm" dcmj2pnm $(wopt "$T/in/$n.dcm")
done
same mrjls "$(inst mrjls)/rendered" "$T/in/mrjls.dcm" dcml2pnm +Wi 1
same gen "$U/dicomweb/studies/$GST/series/$GSE/instances/$GSOP/rendered?window=-543,900" \
  "$T/in/gen.dcm" dcmj2pnm +Ww -543 900
same "multi frame 2" "$(inst multi)/frames/2/rendered" "$T/in/multi.dcm" dcmj2pnm +Wi 1 +F 2
same "multi frame 3 thumbnail" "$(inst multi)/frames/3/thumbnail" "$T/in/multi.dcm" dcmj2pnm +Wi 1 +F 3
same "rgb2f frame 2" "$(inst rgb2f)/frames/2/rendered" "$T/in/rgb2f.dcm" dcmj2pnm +F 2
same "ct window 40,400" "$(inst ct)/rendered?window=40,400,linear" "$T/in/ct.dcm" dcmj2pnm +Ww 40 400
same "mr window 300,800" "$(inst mr)/rendered?window=300,800" "$T/in/mr.dcm" dcmj2pnm +Ww 300 800
same "jpgext viewport 64,64" "$(inst jpgext)/rendered?viewport=64,64" "$T/in/jpgext.dcm" dcmj2pnm +Wm +Syv 64
same "jpgext thumbnail (fits 128x128)" "$(inst jpgext)/thumbnail" "$T/in/jpgext.dcm" dcmj2pnm +Wm +Syv 128
same "series thumbnail: the middle instance" \
  "$U/dicomweb/studies/$STA/series/$(m mr3_2 3)/thumbnail" "$T/in/mr3_2.dcm" dcmj2pnm +Wi 1
same "study thumbnail: the SR series skipped, the MR's middle frame" \
  "$U/dicomweb/studies/$STB/thumbnail" "$T/in/multib.dcm" dcmj2pnm +Wi 1 +F 2
check "the requested window changes the image" \
  bash -c "! cmp -s '$T/out/ct.png' '$T/out/ct window 40,400.png'"
check "frames of the multi-frame differ" bash -c "! cmp -s '$T/out/multi.png' '$T/out/multi frame 2.png'"
# MONOCHROME1 is the inverse of the same pixels as MONOCHROME2
check "MONOCHROME1 renders inverted" node -e '
const fs = require("fs"), { PNG } = require(process.argv[1] + "/node_modules/pngjs");
const a = PNG.sync.read(fs.readFileSync(process.argv[2])), b = PNG.sync.read(fs.readFileSync(process.argv[3]));
let max = 0;
for (let i = 0; i < a.data.length; i += 4) max = Math.max(max, Math.abs(a.data[i] - (255 - b.data[i])));
process.exit(max <= 1 ? 0 : 1);' "$JS" "$T/out/mono1.png" "$T/out/ct.png"

# ---- JPEG (the default), thumbnails, cache, headers
jpeg_size() { # WxH of a baseline/extended JPEG (SOF0..SOF2)
  $PY -c 'import sys
d = open(sys.argv[1], "rb").read()
assert d[:2] == b"\xff\xd8" and d[-2:] == b"\xff\xd9"
i = 2
while i < len(d):
    mk, ln = d[i + 1], int.from_bytes(d[i + 2:i + 4], "big")
    if mk in (0xC0, 0xC1, 0xC2):
        print("%dx%d" % (int.from_bytes(d[i + 7:i + 9], "big"), int.from_bytes(d[i + 5:i + 7], "big"))); break
    i += 2 + ln' "$1"
}
check_eq "no Accept: 200" 200 "$(get "$T1" "$(inst ct)/rendered" "$T/out/ct.jpg")"
check_eq "no Accept: image/jpeg" image/jpeg "$(hdr "$T/out/ct.jpg" Content-Type)"
check_eq "the JPEG is the full 128x128 frame" 128x128 "$(jpeg_size "$T/out/ct.jpg")"
check "Cache-Control is private" grep -qi '^Cache-Control: private' "$T/out/ct.jpg.h"
check_eq "accept=image/png in the query overrides the Accept header (OHIF)" image/png \
  "$(get "$T1" "$(inst ct)/rendered?accept=image/png" "$T/out/q.png" -H 'Accept: multipart/related; type="application/octet-stream"' >/dev/null; hdr "$T/out/q.png" Content-Type)"
get "$T1" "$(inst jpgext)/thumbnail" "$T/out/th1.jpg" -H 'Accept: image/*' >/dev/null
check_eq "a thumbnail fits 128x128, aspect kept" 32x128 "$(jpeg_size "$T/out/th1.jpg")"
check_eq "first thumbnail rendered" miss "$(hdr "$T/out/th1.jpg" X-Huren-Cache)"
get "$T1" "$(inst jpgext)/thumbnail" "$T/out/th2.jpg" >/dev/null
check_eq "second thumbnail from the disk cache" hit "$(hdr "$T/out/th2.jpg" X-Huren-Cache)"
check "the cached thumbnail is the same image" cmp -s "$T/out/th1.jpg" "$T/out/th2.jpg"
check "the cache file is under <data>/rendered" bash -c "ls '$T/rd/data/rendered/'*.jpg >/dev/null"
check_eq "OHIF's instance thumbnail request (rendered, viewport=256,256, Accept: image/jpeg)" 200 \
  "$(get "$T1" "$(inst ct)/rendered?viewport=256,256" "$T/out/x" -H 'Accept: image/jpeg')"
get "$T1" "$(inst mr)/rendered?quality=10" "$T/out/q10.jpg" >/dev/null
get "$T1" "$(inst mr)/rendered?quality=95" "$T/out/q95.jpg" >/dev/null
check "quality=10 is smaller than quality=95" \
  test "$(stat -c %s "$T/out/q10.jpg")" -lt "$(stat -c %s "$T/out/q95.jpg")"

# ---- refusals
code() { get "$@" 2>/dev/null; }
check_eq "no token: 401" 401 "$(code "" "$(inst ct)/rendered" "$T/out/e")"
check_eq "garbage token: 401" 401 "$(code "garbage-token" "$(inst ct)/rendered" "$T/out/e")"
check_eq "another hospital's technician: 404 like absent" 404 "$(code "$T2" "$(inst ct)/rendered" "$T/out/e")"
check_eq "... the thumbnail too" 404 "$(code "$T2" "$U/dicomweb/studies/$STA/thumbnail" "$T/out/e")"
check_eq "an external doctor without a grant: 404" 404 "$(code "$TD" "$(inst ct)/thumbnail" "$T/out/e")"
check_eq "an absent study looks the same: 404" 404 "$(code "$T1" "$U/dicomweb/studies/1.2.3.4/thumbnail" "$T/out/e")"
for q in 'window=abc' 'window=40' 'window=40,0' 'window=40,400,sigmoid' 'window=1e400,10' \
         'viewport=0,10' 'viewport=5000,10' 'viewport=10' 'viewport=1,2,3,4' 'viewport=-1,5' \
         'quality=0' 'quality=101' 'quality=x'; do
  check_eq "bad $q: 400" 400 "$(code "$T1" "$(inst ct)/rendered?$q" "$T/out/e")"
done
check_eq "two frames at once: 400" 400 "$(code "$T1" "$(inst multi)/frames/1,2/rendered" "$T/out/e")"
check_eq "a bad UID: 400" 400 "$(code "$T1" "$U/dicomweb/studies/x.y/thumbnail" "$T/out/e")"
check_eq "Accept: image/gif: 406" 406 "$(code "$T1" "$(inst ct)/rendered" "$T/out/e" -H 'Accept: image/gif')"
check "... with a JSON error" grep -q '"not_acceptable"' "$T/out/e"
check_eq "accept=image/webp: 406" 406 "$(code "$T1" "$(inst ct)/rendered?accept=image/webp" "$T/out/e")"
check_eq "image/jpeg;q=0 only: 406" 406 "$(code "$T1" "$(inst ct)/rendered" "$T/out/e" -H 'Accept: image/jpeg;q=0')"
check_eq "a rendered study (multipart) is not offered: 406" 406 "$(code "$T1" "$U/dicomweb/studies/$STA/rendered" "$T/out/e")"
check_eq "no frame 9: 404" 404 "$(code "$T1" "$(inst multi)/frames/9/rendered" "$T/out/e")"
check_eq "no frame 2 in a single-frame CT: 404" 404 "$(code "$T1" "$(inst ct)/frames/2/thumbnail" "$T/out/e")"
check_eq "an SR has no pixels: 422" 422 "$(code "$T1" "$(inst sr)/rendered" "$T/out/e")"

# ---- bounded: beyond the render queue, 503 with Retry-After
for i in $(seq 1 120); do
  [ "$i" = 1 ] || echo next
  echo "url = \"$(inst jpgext)/rendered?accept=image/png\&q=$i\""
  echo "output = \"$T/out/p$i\""
  echo "dump-header = \"$T/out/p$i.h\""
  echo "header = \"Authorization: Bearer $T1\""
  echo 'write-out = "%{http_code}\n"'
done >"$T/burst.cfg"
curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 120 \
  -K "$T/burst.cfg" >"$T/burst.codes" 2>/dev/null || true
check_eq "a burst of 120 renders: 120 answers" 120 "$(wc -l <"$T/burst.codes")"
check "... every one 200 or 503" bash -c "! grep -qv '^\\(200\\|503\\)$' '$T/burst.codes'"
check "... at least some rendered" grep -q '^200$' "$T/burst.codes"
retry_ok() {
  local f
  for f in "$T"/out/p*[0-9]; do
    grep -q '"busy"' "$f" || continue
    grep -qi '^Retry-After: 1' "$f.h" || return 1
  done
}
check "... and each refused one says when to retry (Retry-After)" retry_ok
echo "burst: $(grep -c '^200$' "$T/burst.codes") rendered, $(grep -c '^503$' "$T/burst.codes" || true) refused (503)"
get "$T1" "$(inst ct)/rendered" "$T/out/after" >/dev/null
check_eq "after the burst renders go on" image/jpeg "$(hdr "$T/out/after" Content-Type)"

# ---- audit
A=$(cat "$T"/rd/data/audit/*.jsonl)
check "audit: tech1's rendered read with patient and study" \
  grep -q "\"actor\":\"tech1\".*\"action\":\"rendered\",\"patient\":\"[^\"]*RD1\",\"study\":\"$STA\".*\"outcome\":\"success\"" <<<"$A"
check "audit: the thumbnail read" grep -q "\"action\":\"thumbnail\".*\"study\":\"$STB\".*\"outcome\":\"success\"" <<<"$A"
check "audit: the other hospital's attempt denied" \
  grep -q "\"actor\":\"tech2\".*\"action\":\"rendered\".*\"study\":\"$STA\".*\"outcome\":\"denied\"" <<<"$A"
check "audit: the refused token" grep -q '"action":"rendered".*"outcome":"denied"' <<<"$A"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
