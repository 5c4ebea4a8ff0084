#!/usr/bin/env bash
# Transfer syntaxes are accepted as sent (encapsulated data is stored as it
# came, byte for byte) and every storage SOP class the generator makes —
# including 12-lead ECG and multi-frame — lands indexed.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config ts "$port")
start_huren ts "$cfg"
P=/usr/lib/python3/dist-packages/pydicom/data/test_files

stored_ts() { # stored_ts FILE -> transfer syntax of the indexed instance
  local study sop
  study=$(dcmdump +P 0020,000D "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  sop=$(sop_uid "$1")
  rcli_raw ts HGET "hr:{$study}:i:$sop" ts
}

# encapsulated: storescu proposes the file's own transfer syntax
for fx in JPEG-lossy.dcm:-xx JPGExtended.dcm:-xx SC_rgb_jpeg_dcmtk.dcm:-xy \
          MR_small_jpeg_ls_lossless.dcm:-xt MR_small_jp2klossless.dcm:-xv SC_rgb_rle.dcm:-xr \
          MR_small_RLE.dcm:-xr; do
  f=${fx%%:*} opt=${fx#*:}
  want=$(dcmdump -Un -M +P 0002,0010 "$P/$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  out=$(storescu -R "$opt" -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$P/$f" 2>&1) || { fail "$f sent: $out"; continue; }
  check_eq "$f stored in its own transfer syntax" "$want" "$(stored_ts "$P/$f")"
  study=$(dcmdump +P 0020,000D "$P/$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  sha=$(rcli_raw ts HGET "hr:{$study}:i:$(sop_uid "$P/$f")" sha)
  check "$f: compressed pixel data kept as sent, not transcoded" /usr/bin/python3 -c '
import sys, pydicom
a = pydicom.dcmread(sys.argv[1]); b = pydicom.dcmread(sys.argv[2])
sys.exit(0 if a.PixelData == b.PixelData and a.file_meta.TransferSyntaxUID == b.file_meta.TransferSyntaxUID else 1)
' "$P/$f" "$T/ts/data/objects/${sha:0:2}/${sha:2:2}/$sha"
done

# uncompressed encodings, each proposed alone
"$GEN" --out "$T/imp" --ts implicit --seed 81 >/dev/null
"$GEN" --out "$T/be" --ts bigendian --seed 82 >/dev/null
"$GEN" --out "$T/dfl" --ts deflated --seed 83 >/dev/null
check "implicit VR LE proposed alone" storescu -xi -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/imp"/*
check_eq "stored as implicit VR LE" 1.2.840.10008.1.2 "$(stored_ts "$T/imp"/*)"
check "explicit VR big endian proposed alone" storescu -xb -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/be"/*
check_eq "stored as explicit VR BE" 1.2.840.10008.1.2.2 "$(stored_ts "$T/be"/*)"
check "deflated explicit VR LE proposed" storescu -xd -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/dfl"/*
check_eq "stored deflated" 1.2.840.10008.1.2.1.99 "$(stored_ts "$T/dfl"/*)"
check_eq "deflated data set kept byte for byte" "$(dataset_sha "$T/dfl"/*)" \
  "$(rcli_raw ts HGET "hr:{$(dcmdump +P 0020,000D "$T/dfl"/* | sed -n 's/.*\[\(.*\)\].*/\1/p')}:i:$(sop_uid "$T/dfl"/*)" sha)"
unreadable=0
for f in "$T/ts/data/objects"/*/*/*; do dcmdump -q "$f" >/dev/null 2>&1 || { unreadable=$((unreadable + 1)); echo "DCMTK cannot read $f"; }; done
check_eq "DCMTK reads every stored object" 0 "$unreadable"

# one object of each modality, including a 12-lead ECG and multi-frame NM/US
n=0
for m in CT MR CR DX US XA NM PT SC MG RF ECG; do
  "$GEN" --out "$T/mod/$m" --modality "$m" --seed $((90 + n)) --prefix "$m" >/dev/null
  n=$((n + 1))
done
"$GEN" --out "$T/mod/USMF" --modality US --frames 8 --seed 120 --prefix usmf >/dev/null
check "storescu sends every modality" storescu -aet TOWNSHIP1 -aec HUREN +sd +r 127.0.0.1 "$port" "$T/mod"
for m in CT MR CR DX US XA NM PT SC MG RF ECG; do
  f=$(ls "$T/mod/$m"/*)
  study=$(dcmdump +P 0020,000D "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  cls=$(dcmdump -Un +P 0008,0016 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  check "$m has a storage SOP class ($cls)" test -n "$cls"
  check_eq "$m indexed with its SOP class" "$cls" "$(rcli_raw ts HGET "hr:{$study}:i:$(sop_uid "$f")" sop_class)"
done
check_eq "12-lead ECG SOP class" 1.2.840.10008.5.1.4.1.1.9.1.1 "$(dcmdump -Un +P 0008,0016 "$T/mod/ECG"/* | sed -n 's/.*\[\(.*\)\].*/\1/p')"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
