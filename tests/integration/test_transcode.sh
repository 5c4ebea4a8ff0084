#!/usr/bin/env bash
# WADO-RS transcoding on request (decision 0030): frames and instances of
# compressed objects asked for in Explicit VR Little Endian are decoded with
# DCMTK and equal, byte for byte, what dcmdjpeg / dcmdjpls / dcmdrle make of
# the same file; without such a request the stored bytes are sent as before.
# JPEG 2000 (no decoder in DCMTK 3.6.7), garbage transfer syntaxes and objects
# above http.transcode_max_bytes get 406 with a JSON reason. Scope and audit
# are those of WADO-RS. Also: WADO-URI at /dicomweb?requestType=WADO, and the
# base URL of RetrieveURL from X-Forwarded-Host/-Proto or Forwarded only from
# http.trusted_proxies (a hub trusting 127.0.0.1, one trusting only 10/8).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"
P=/usr/lib/python3/dist-packages/pydicom/data/test_files
EXP=1.2.840.10008.1.2.1

port=$(free_port)
cfg=$(write_config tc "$port" "" "" \
  '"trusted_proxies": ["127.0.0.1"], "transcode_max_bytes": 1048576')
port2=$(free_port)
cfg2=$(write_config np "$port2" "" "" '"trusted_proxies": ["10.0.0.0/8"]')
add_user "$cfg" tech1 'tech1-password' technician township1
add_user "$cfg" tech2 'tech2-password' technician township2
add_user "$cfg2" tech1 'tech1-password' technician township1
start_huren tc "$cfg"
start_huren np "$cfg2"
U="http://127.0.0.1:$(http_port tc)"
U2="http://127.0.0.1:$(http_port np)"
wait_port "$(http_port tc)" 30
wait_port "$(http_port np)" 30
T1=$(login_token "$U" tech1 'tech1-password')
T2=$(login_token "$U" tech2 'tech2-password')
N1=$(login_token "$U2" tech1 'tech1-password')

tag() { # tag FILE gggg,eeee -> value
  dcmdump -Un +P "$2" "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1
}
ts_of() { dcmdump -Un -M +P 0002,0010 "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1; }
# get OUT TOKEN URL [curl args] -> "status content-type"
get() {
  local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code} %{content_type}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$url"
}
code() { get "$@" | cut -d' ' -f1; }
url_of() { # url_of FILE -> /dicomweb/studies/../series/../instances/..
  echo "/dicomweb/studies/$(tag "$1" 0020,000D)/series/$(tag "$1" 0020,000E)/instances/$(tag "$1" 0008,0018)"
}
# verify REF CHECK... : each CHECK is "frames:BODY:CONTENT-TYPE:n,n,..." (the
# body, one frame or multipart/related parts of application/octet-stream in
# Explicit VR LE, equals those frames of REF's PixelData, a file DCMTK
# decompressed) or "object:P10" (Explicit VR LE, same SOP instance, same
# PixelData as REF); prints one line per failed check (pydicom loads once)
cat > "$T/verify.py" <<'PY'
import sys, pydicom
ref = pydicom.dcmread(sys.argv[1])
assert ref.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1'
nf = int(getattr(ref, 'NumberOfFrames', 1) or 1)
size = len(ref.PixelData) // nf
def frames_ok(body, ctype, frames):
    want = [ref.PixelData[(n - 1) * size:n * size] for n in frames]
    data = open(body, 'rb').read()
    if ctype.startswith('multipart/'):
        bnd = [p.strip()[9:].strip('"') for p in ctype.split(';')
               if p.strip().lower().startswith('boundary=')][0]
        delim = b'--' + bnd.encode()
        chunks = data.split(b'\r\n' + delim)
        assert chunks[0].startswith(delim)
        chunks[0] = chunks[0][len(delim):]
        got = []
        for c in chunks:
            if c.startswith(b'--'):
                break
            head, _, d = c[2:].partition(b'\r\n\r\n')
            assert head == (b'Content-Type: application/octet-stream; '
                            b'transfer-syntax=1.2.840.10008.1.2.1'), head
            got.append(d)
    else:
        got = [data]
    assert len(got) == len(want), (len(got), len(want))
    for g, w, n in zip(got, want, frames):
        assert g == w, 'frame %d: %d bytes vs %d' % (n, len(g), len(w))
def object_ok(path):
    a = pydicom.dcmread(path)
    assert a.file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1', a.file_meta.TransferSyntaxUID
    assert a.SOPInstanceUID == ref.SOPInstanceUID
    assert a.PixelData == ref.PixelData, (len(a.PixelData), len(ref.PixelData))
bad = 0
for c in sys.argv[2:]:
    kind, rest = c.split(':', 1)
    try:
        if kind == 'frames':
            body, ctype, frames = rest.split('|')
            frames_ok(body, ctype, [int(x) for x in frames.split(',')])
        else:
            object_ok(rest)
    except Exception as e:
        print('%s: %r' % (c, e))
        bad = 1
sys.exit(bad)
PY

# --- data: compressed objects made by DCMTK's encoders from huren-gen images,
# and pydicom's colour JPEG, two-frame RLE and JPEG 2000 lossless examples
mkdir -p "$T/src" "$T/c" "$T/ref"
gen() { "$GEN" --out "$T/src/$1" "${@:2}" --patient-id P7 >/dev/null; ls "$T/src/$1"/*; }
dcmcjpeg "$(gen ct1 --modality CT --seed 41 --bytes 20000)" "$T/c/ct_jpll.dcm"        # 4.70
dcmcjpeg +ee "$(gen ct2 --modality CT --seed 42 --bytes 20000)" "$T/c/ct_jpext.dcm"   # 4.51
dcmcjpls "$(gen ct3 --modality CT --seed 43 --bytes 20000)" "$T/c/ct_jls.dcm"         # 4.80
dcmcjpeg +eb "$(gen us1 --modality US --frames 4 --bytes 30000 --seed 44)" "$T/c/us_jpb.dcm" # 4.50
dcmcrle "$(gen us2 --modality US --frames 4 --bytes 30000 --seed 45)" "$T/c/us_rle.dcm"      # 1.2.5
dcmcrle "$(gen big --modality US --frames 2 --bytes 1200000 --seed 47)" "$T/c/big_rle.dcm"   # > 1 MiB decoded
cp "$P/SC_rgb_jpeg_dcmtk.dcm" "$T/c/sc_jpeg_ybr.dcm"
cp "$P/SC_rgb_rle_2frame.dcm" "$T/c/sc_rle2.dcm"
cp "$P/MR_small_jp2klossless.dcm" "$T/c/mr_j2k.dcm"
raw=$(gen raw --modality CT --seed 48)
for f in "$T"/c/*.dcm; do
  case $(ts_of "$f") in
    1.2.840.10008.1.2.4.70) opt=-xs dec=dcmdjpeg ;;
    1.2.840.10008.1.2.4.51) opt=-xx dec=dcmdjpeg ;;
    1.2.840.10008.1.2.4.50) opt=-xy dec=dcmdjpeg ;;
    1.2.840.10008.1.2.4.80) opt=-xt dec=dcmdjpls ;;
    1.2.840.10008.1.2.5) opt=-xr dec=dcmdrle ;;
    1.2.840.10008.1.2.4.90) opt=-xv dec= ;;
    *) fail "unexpected transfer syntax of $f"; continue ;;
  esac
  out=$(storescu -R "$opt" -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$f" 2>&1) || fail "$f sent: $out"
  [ -z "$dec" ] || "$dec" "$f" "$T/ref/$(basename "$f")"
done
check "storescu sends the uncompressed CT" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$raw"
check "storescu sends one CT to the second hub" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port2" "$raw"

OCT='Accept: multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
OCT_NOTS='Accept: multipart/related; type="application/octet-stream"'
for f in "$T"/c/*.dcm; do
  b=$(basename "$f" .dcm) ts=$(ts_of "$f") u=$U$(url_of "$f")
  nf=$(tag "$f" 0028,0008); nf=${nf:-1}
  if [ "$b" = mr_j2k ]; then
    r=$(get "$T/e.json" "$T1" "$u/frames/1" -H "$OCT")
    check_eq "$b: J2K frames in Explicit VR LE: 406" 406 "${r%% *}"
    check_eq "$b: 406 body is JSON" not_acceptable "$($DW json-get "$T/e.json" error)"
    check "$b: the reason names the stored transfer syntax" grep -q "1.2.840.10008.1.2.4.90 cannot be decoded" "$T/e.json"
    check_eq "$b: J2K instance in Explicit VR LE: 406" 406 \
      "$(code "$T/e.json" "$T1" "$u" -H "Accept: application/dicom; transfer-syntax=$EXP")"
    check "$b: the instance reason is JSON too" grep -q '"error":"not_acceptable"' "$T/e.json"
    check_eq "$b: J2K frames as stored still served" "200 multipart/related" \
      "$(get "$T/f.bin" "$T1" "$u/frames/1" -H 'Accept: multipart/related; type="image/jp2"' | cut -d';' -f1)"
    continue
  fi
  if [ "$b" = big_rle ]; then
    r=$(get "$T/e.json" "$T1" "$u/frames/1" -H "$OCT")
    check_eq "$b: decoded size above http.transcode_max_bytes: 406" 406 "${r%% *}"
    check "$b: the reason names the limit" grep -q 'http.transcode_max_bytes (1048576 bytes)' "$T/e.json"
    check_eq "$b: the object above the limit: 406" 406 \
      "$(code "$T/e.json" "$T1" "$u" -H "Accept: application/dicom; transfer-syntax=$EXP")"
    check_eq "$b: as stored it is served" 200 \
      "$(code "$T/f.bin" "$T1" "$u/frames/1" -H 'Accept: multipart/related; type="image/x-dicom-rle"')"
    continue
  fi
  ref=$T/ref/$b.dcm
  # frames: multipart, every frame (in reverse order), then one frame single-part
  list=$(seq "$nf" -1 1 | paste -sd,)
  r1=$(get "$T/f1.bin" "$T1" "$u/frames/$list" -H "$OCT")
  check_eq "$b ($ts): frames $list in Explicit VR LE: 200" 200 "${r1%% *}"
  r2=$(get "$T/f2.bin" "$T1" "$u/frames/1" -H "$OCT_NOTS")
  check_eq "$b: octet-stream without a transfer syntax (Explicit VR LE, PS3.18): 200" 200 "${r2%% *}"
  r3=$(get "$T/f3.bin" "$T1" "$u/frames/$nf" -H 'Accept: application/octet-stream')
  check_eq "$b: single-part octet-stream frame" "200 application/octet-stream" "$r3"
  r=$(get "$T/i.dcm" "$T1" "$u" -H "Accept: application/dicom; transfer-syntax=$EXP")
  check_eq "$b: instance in Explicit VR LE" "200 application/dicom; transfer-syntax=$EXP" "$r"
  check_eq "$b: dcmdump reads the transcoded file in Explicit VR LE" "$EXP" "$(ts_of "$T/i.dcm")"
  check "$b: frames and object equal DCMTK's $ts decoding byte for byte" $PY "$T/verify.py" "$ref" \
    "frames:$T/f1.bin|${r1#* }|$list" "frames:$T/f2.bin|${r2#* }|1" \
    "frames:$T/f3.bin|${r3#* }|$nf" "object:$T/i.dcm"
  # the stored bytes are still the default (no decoding without the request)
  r=$(get "$T/f.bin" "$T1" "$u/frames/1")
  check "$b: without Accept the frame is sent as stored" \
    bash -c "[[ '$r' == '200 multipart/related; type=\"image/'* ]]"
  r=$(get "$T/f.bin" "$T1" "$u/frames/1" -H 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*')
  check "$b: transfer-syntax=* is the stored bitstream" grep -qa "transfer-syntax=$ts" "$T/f.bin"
  r=$(get "$T/m.bin" "$T1" "$u" -H "Accept: multipart/related; type=\"application/dicom\"; transfer-syntax=$EXP")
  check_eq "$b: multipart instance: 200" 200 "${r%% *}"
  check_eq "$b: its one part is the transcoded object" "$($DW file-sha "$T/i.dcm")" \
    "$($DW part-shas "$T/m.bin" "${r#* }")"
  # WADO-URI and the scope, on two of the objects (the same handler for all)
  case $b in ct_jpll | us_rle) ;; *) continue ;; esac
  q="requestType=WADO&studyUID=$(tag "$f" 0020,000D)&seriesUID=$(tag "$f" 0020,000E)&objectUID=$(tag "$f" 0008,0018)&contentType=application%2Fdicom"
  check_eq "$b: WADO-URI at /dicomweb transcodes on transferSyntax" 200 \
    "$(code "$T/w.dcm" "$T1" "$U/dicomweb?$q&transferSyntax=$EXP")"
  check "$b: the same object as WADO-RS gave" cmp -s "$T/w.dcm" "$T/i.dcm"
  check_eq "$b: WADO-URI without transferSyntax: as stored" "$ts" \
    "$(code "$T/w.dcm" "$T1" "$U/dicomweb?$q" >/dev/null; ts_of "$T/w.dcm")"
  # scope unchanged: another hospital sees nothing, no token is 401
  check_eq "$b: tech2 (another hospital): transcoded frames 404" 404 \
    "$(code "$T/e.json" "$T2" "$u/frames/1" -H "$OCT")"
  check_eq "$b: tech2: /dicomweb?requestType=WADO 404" 404 "$(code "$T/e.json" "$T2" "$U/dicomweb?$q")"
  check_eq "$b: no token: /dicomweb?requestType=WADO 401" 401 "$(code "$T/e.json" "" "$U/dicomweb?$q")"
  check_eq "$b: no token: transcoded frames 401" 401 "$(code "$T/e.json" "" "$u/frames/1" -H "$OCT")"
done

# --- hostile requests
u=$U$(url_of "$T/c/ct_jpll.dcm")
for a in 'multipart/related; type="application/octet-stream"; transfer-syntax=garbage' \
         'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.4.50"><x' \
         "application/octet-stream; transfer-syntax=$(printf 'A%.0s' $(seq 1 200))" \
         'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2'; do
  r=$(get "$T/e.json" "$T1" "$u/frames/1" -H "Accept: $a")
  check_eq "garbage or unsupported Accept (${a:0:70}): 406" 406 "${r%% *}"
  check_eq "  ...answered in JSON" not_acceptable "$($DW json-get "$T/e.json" error)"
done
check_eq "frame 0: 400" 400 "$(code "$T/e.json" "$T1" "$u/frames/0" -H "$OCT")"
check_eq "frame beyond the object: 404" 404 "$(code "$T/e.json" "$T1" "$u/frames/9" -H "$OCT")"
check_eq "instance to a compressed syntax: 406" 406 \
  "$(code "$T/e.json" "$T1" "$u" -H 'Accept: application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50')"
check_eq "WADO-URI garbage transferSyntax: 406" 406 \
  "$(code "$T/e.json" "$T1" "$U/dicomweb?requestType=WADO&studyUID=1.2&seriesUID=1.2&objectUID=1.2&contentType=application%2Fdicom&transferSyntax=..%2F..%2Fetc")"
check_eq "  ...in JSON" not_acceptable "$($DW json-get "$T/e.json" error)"
st=$(tag "$T/c/ct_jpll.dcm" 0020,000D)
check_eq "a whole study in another syntax is still refused (one instance at a time)" 406 \
  "$(code "$T/e.json" "$T1" "$U/dicomweb/studies/$st" -H "Accept: multipart/related; type=\"application/dicom\"; transfer-syntax=$EXP")"
check_eq "/dicomweb without requestType: 400" 400 "$(code "$T/e.json" "$T1" "$U/dicomweb")"
# native objects keep the fast path: Explicit VR LE frames are the stored bytes
ru=$U$(url_of "$raw")
check_eq "uncompressed CT: frame in Explicit VR LE served as stored" 200 \
  "$(code "$T/f.bin" "$T1" "$ru/frames/1" -H "$OCT")"

# --- audit: decoded retrievals are recorded like any other
A=$(cat "$T"/tc/data/audit/*.jsonl)
check "audit: a decoded frame retrieval by tech1" \
  grep -q '"actor":"tech1".*"action":"frames".*decoded to 1.2.840.10008.1.2.1' <<<"$A"
check "audit: tech2's attempt recorded as denied" \
  grep -q '"actor":"tech2".*"action":"frames".*"outcome":"denied"' <<<"$A"
check "audit: WADO-URI at /dicomweb recorded" grep -q '"actor":"tech1".*"action":"wado-uri"' <<<"$A"

# --- forwarded host and proto (RetrieveURL of QIDO; BulkDataURI has no host)
rurl() { # rurl BASE TOKEN [curl args] -> RetrieveURL of the CT study
  curl -s -H "Authorization: Bearer $2" "${@:3}" "$1/dicomweb/studies?StudyInstanceUID=$(tag "$raw" 0020,000D)" |
    $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["00081190"]["Value"][0])'
}
sturl=/dicomweb/studies/$(tag "$raw" 0020,000D)
check_eq "no forwarded headers: Host" "$U$sturl" "$(rurl "$U" "$T1")"
check_eq "trusted proxy: X-Forwarded-Host and -Proto" "https://viewer.example:8443$sturl" \
  "$(rurl "$U" "$T1" -H 'X-Forwarded-Host: viewer.example:8443' -H 'X-Forwarded-Proto: https')"
check_eq "trusted proxy: the last X-Forwarded-Host value (the proxy's own)" "http://hub.example$sturl" \
  "$(rurl "$U" "$T1" -H 'X-Forwarded-Host: spoofed.example, hub.example')"
check_eq "trusted proxy: Forwarded (RFC 7239)" "https://[2001:db8::1]:444$sturl" \
  "$(rurl "$U" "$T1" -H 'Forwarded: for=192.0.2.1;host="[2001:db8::1]:444";proto=https')"
for bad in 'evil.example/"><script>' 'evil.example@x' 'a b' 'host:99999999' 'x.example:80:80' '"quoted"'; do
  check_eq "trusted proxy: forged host ${bad} ignored" "$U$sturl" \
    "$(rurl "$U" "$T1" -H "X-Forwarded-Host: $bad")"
done
check_eq "a forged Host header: RetrieveURL origin-relative" "$sturl" \
  "$(rurl "$U2" "$N1" -H 'Host: evil.example/"x')"
check_eq "trusted proxy: unknown proto ignored" "$U$sturl" \
  "$(rurl "$U" "$T1" -H 'X-Forwarded-Proto: javascript')"
check_eq "untrusted peer (only 10/8 trusted): X-Forwarded-* ignored" "$U2$sturl" \
  "$(rurl "$U2" "$N1" -H 'X-Forwarded-Host: viewer.example' -H 'X-Forwarded-Proto: https')"
check_eq "untrusted peer: Forwarded ignored" "$U2$sturl" \
  "$(rurl "$U2" "$N1" -H 'Forwarded: host=viewer.example;proto=https')"
curl -s -H "Authorization: Bearer $T1" -H 'X-Forwarded-Host: viewer.example' \
  "$U$(url_of "$T/c/us_rle.dcm")/metadata" -o "$T/md.json"
check "BulkDataURI is origin-relative (no host to forge)" \
  bash -c "$DW bulk-uri '$T/md.json' | grep -q '^/dicomweb/studies/'"

check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
