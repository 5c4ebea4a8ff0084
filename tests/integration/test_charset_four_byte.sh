#!/usr/bin/env bash
# GB18030 four-byte characters (CJK Extension A/B) under a correct GB18030
# declaration, written by pydicom (Python's GB18030-2005 codec, like Windows
# and Java): QIDO and findscu return the right UTF-8 for a PN with three
# component groups and for a LO, and wildcard keys with four-byte characters
# (UTF-8 in QIDO, GB18030 and UTF-8 in C-FIND) match (issue 8).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
NAME='Zhang^San=𠀀䶮^㐀龴=zhang^san'
INST='㐀医院龴'

port=$(free_port)
cfg=$(write_config gb "$port")
hp=$(http_port gb)
U="http://127.0.0.1:$hp"
printf '%s\n' 'tech1-password' | "$HUREN" user add tech1 --role technician --hospital township1 \
  --config "$cfg" >/dev/null
start_huren gb "$cfg"
wait_port "$hp" 30

$PY - "$T/gb.dcm" "$NAME" "$INST" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
path, name, inst = sys.argv[1:4]
ds = Dataset()
ds.SpecificCharacterSet = 'GB18030'
ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
ds.SOPInstanceUID = generate_uid()
ds.StudyInstanceUID = generate_uid()
ds.SeriesInstanceUID = generate_uid()
ds.StudyDate = '20250301'
ds.Modality = 'OT'
ds.PatientID = 'GB4B'
ds.PatientName = name
ds.InstitutionName = inst
fm = FileMetaDataset()
fm.MediaStorageSOPClassUID = ds.SOPClassUID
fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
fm.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta = fm
ds.is_little_endian = True
ds.is_implicit_VR = False
ds.save_as(path, write_like_original=False)
raw = open(path, 'rb').read()
# the name really holds four-byte sequences (Ext B 95 32 82 36, 82 35 90 37)
assert b'\x95\x32\x82\x36' in raw and b'\x82\x35\x90\x37' in raw, 'not four-byte GB18030'
PY
check "storescu stores the GB18030 object" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/gb.dcm"

tok=$(curl -s -X POST "$U/api/v1/login" -H 'Content-Type: application/json' \
  -d '{"user": "tech1", "password": "tech1-password"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
qido() { # qido QUERY -> "name|institution" per study
  curl -s -H "Authorization: Bearer $tok" "$U/dicomweb/studies?includefield=00080080&$1" |
    $PY -c '
import json, sys
for s in json.load(sys.stdin):
    pn = s["00100010"]["Value"][0]
    name = "=".join(pn.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic"))
    print(name + "|" + s["00080080"]["Value"][0])'
}
url() { $PY -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
check_eq "QIDO: PN groups and LO in UTF-8" "$NAME|$INST" "$(qido PatientID=GB4B)"
check_eq "QIDO: wildcard with an Extension B character (𠀀*)" "$NAME|$INST" \
  "$(qido "PatientName=$(url '𠀀*')")"
check_eq "QIDO: wildcard with 龴 (*龴)" "$NAME|$INST" "$(qido "PatientName=$(url '*龴')")"
check_eq "QIDO: ? stands for one four-byte character (?䶮^*)" "$NAME|$INST" \
  "$(qido "PatientName=$(url '?䶮^*')")"
check_eq "QIDO: LO wildcard (㐀*)" "$NAME|$INST" "$(qido "InstitutionName=$(url '㐀*')")"

# findscu: the answer's PN and LO, converted by DCMTK's dcmdump printing as is
find_values() { # find_values KEY... -> "LO|PN" lines from the responses (tag order)
  local args=() k
  for k in "$@"; do args+=(-k "$k"); done
  findscu -aet TOWNSHIP1 -aec HUREN -S -k QueryRetrieveLevel=STUDY -k PatientName \
    -k InstitutionName -k SpecificCharacterSet "${args[@]}" 127.0.0.1 "$port" 2>&1 |
    sed -n 's/.*(0010,0010) PN \[\(.*\)\].*/\1/p; s/.*(0008,0080) LO \[\(.*\)\].*/\1/p' |
    sed 's/ *$//' | paste -d'|' - -
}
check_eq "findscu: PN groups and LO in UTF-8" "$INST|$NAME" "$(find_values PatientID=GB4B)"
gbkey=$($PY -c 'import sys; sys.stdout.buffer.write("*㐀龴*".encode("gb18030"))')
check_eq "findscu: GB18030 wildcard key with four-byte characters" "$INST|$NAME" \
  "$(find_values SpecificCharacterSet=GB18030 "PatientName=$gbkey")"
check_eq "findscu: UTF-8 wildcard key (𠀀*)" "$INST|$NAME" \
  "$(find_values 'SpecificCharacterSet=ISO_IR 192' 'PatientName=𠀀*')"
check_eq "findscu: a non-matching four-byte key finds nothing" "" \
  "$(find_values 'SpecificCharacterSet=ISO_IR 192' 'PatientName=𠀁*')"
check "graceful stop" stop_huren "$HUREN_PID"
finish
