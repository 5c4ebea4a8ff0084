#!/usr/bin/env bash
# Who owns a study, and stored objects that never change (issue 8, sections 2
# and 3; decision 0009): another hospital cannot add to a study (C-STORE 0124,
# STOW Failure Reason 0124, audited, nothing stored); the hub's own hospital
# may add a derived object; a patient conflict is stored, flagged (QIDO private
# attribute, worklist item) and answered B000; an identical data set sent
# again by STOW keeps the C-STORE'd file and its source AE; index keys survive
# any byte in a Patient ID; all of it again after `huren reindex --flush`.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"

port=$(free_port)
cfg=$(write_config own "$port" "" "" "")
# township2 may call from this machine too (the intruder is a known hospital)
$PY - "$cfg" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
for h in c["hospitals"]:
    h["addresses"] = ["127.0.0.1"]
c["worklist"] = {"quiet_s": 1}
json.dump(c, open(p, "w"))
PY
hp=$(http_port own)
U="http://127.0.0.1:$hp"
adduser() { add_user "$cfg" "$@"; }
adduser tech1 'tech1-password' technician township1
adduser tech2 'tech2-password' technician township2
start_huren own "$cfg"
wait_port "$hp" 30
login() { login_token "$U" "$@"; }
T1=$(login tech1 'tech1-password')
T2=$(login tech2 'tech2-password')

# remake FILE OUT key=value...: a copy with other attributes (pydicom)
remake() {
  $PY - "$@" <<'PY'
import sys, pydicom
src, out, *kv = sys.argv[1:]
ds = pydicom.dcmread(src)
for a in kv:
    k, v = a.split("=", 1)
    setattr(ds, k, v)
    if k == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = v
    if k == "SOPClassUID":
        ds.file_meta.MediaStorageSOPClassUID = v
ds.save_as(out, write_like_original=False)
PY
}

# --- township1's study; its Patient ID holds bytes that once broke keys
PID='P|1{x} 张'
"$GEN" --out "$T/study" --series 1 --instances 2 --bytes 2048 --patient-id "$PID" \
  --patient-name 'Zhang^San' --seed 81 >/dev/null
f1=$(ls "$T"/study/*.dcm | head -1)
study=$(dcmdump +P 0020,000D "$f1" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check "township1 stores its study" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/study"
check_eq "owner is township1" township1 "$(rcli own HGET "hr:{$study}:st" hospital)"
check "every C-STORE is audited (sender, study, instance)" \
  grep -q "\"actor\":\"TOWNSHIP1\".*\"action\":\"c-store\".*\"study\":\"$study\".*\"outcome\":\"success\"" "$T"/own/data/audit/*.jsonl
objs=$(count_objects own)

# --- township2 adds an instance to it by C-STORE: refused, nothing kept
remake "$f1" "$T/intruder.dcm" SOPInstanceUID=1.2.826.0.1.3680043.2.1125.991.1 \
  PatientName='Intruder^X' PatientID=EVIL
# storescu -d prints the response's status and Error Comment
out=$(storescu -d -aet TOWNSHIP2 -aec HUREN 127.0.0.1 "$port" "$T/intruder.dcm" 2>&1 || true)
check "C-STORE into another hospital's study: 0124 Refused: Not Authorized" \
  grep -q "DIMSE Status *: 0x0124: Refused: Not authorized" <<<"$out"
check "the refusal says why (Error Comment)" grep -qF "LO [study belongs to another hospital]" <<<"$out"
check_eq "nothing stored" "$objs" "$(count_objects own)"
check_eq "owner unchanged" township1 "$(rcli own HGET "hr:{$study}:st" hospital)"
check_eq "patient unchanged" 'Zhang^San' "$(rcli_raw own HGET "hr:{$study}:st" patient_name)"
check_eq "not indexed" 0 "$(rcli own HEXISTS hr:ix:sop 1.2.826.0.1.3680043.2.1125.991.1)"
check "the refusal is audited" grep -q '"action":"c-store".*"outcome":"denied"' "$T"/own/data/audit/*.jsonl

req() { local out=$1 tok=$2 url=$3; shift 3; curl -s -o "$out" -w '%{http_code}' -H "Authorization: Bearer $tok" "$@" "$url"; }
req "$T/q1.json" "$T1" "$U/dicomweb/studies?StudyInstanceUID=$study" >/dev/null
check_eq "the owner still finds its study" 1 "$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/q1.json")"
req "$T/q2.json" "$T2" "$U/dicomweb/studies?StudyInstanceUID=$study" >/dev/null
check_eq "the intruder finds nothing" 0 "$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/q2.json")"
check_eq "nor retrieves it (404 like absent)" 404 "$(req "$T/w.bin" "$T2" "$U/dicomweb/studies/$study")"

# --- by STOW: FailedSOPSequence with Failure Reason 0124 (292)
$DW stow-body "$T/stow.body" BOUNDARY "$T/intruder.dcm"
code=$(req "$T/stow.json" "$T2" "$U/dicomweb/studies" -X POST \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BOUNDARY' --data-binary @"$T/stow.body")
check_eq "STOW into another hospital's study: 409" 409 "$code"
check_eq "Failure Reason 0124" 292 "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["00081198"]["Value"][0]["00081197"]["Value"][0])' "$T/stow.json")"
check_eq "nothing stored" "$objs" "$(count_objects own)"
check "the STOW refusal is audited" grep -q '"action":"stow".*"outcome":"denied"' "$T"/own/data/audit/*.jsonl

# --- the hub's own hospital adds a key object selection, not an image
remake "$f1" "$T/kos.dcm" SOPInstanceUID=1.2.826.0.1.3680043.2.1125.991.2 \
  SOPClassUID=1.2.840.10008.5.1.4.1.1.88.59 Modality=KO SeriesInstanceUID=1.2.826.0.1.3680043.2.1125.991.3
check "the hub (COUNTY) may add a KOS" storescu -aet COUNTY -aec HUREN -xs 127.0.0.1 "$port" "$T/kos.dcm"
check_eq "owner unchanged by the hub's KOS" township1 "$(rcli own HGET "hr:{$study}:st" hospital)"
remake "$f1" "$T/county-ct.dcm" SOPInstanceUID=1.2.826.0.1.3680043.2.1125.991.4
out=$(storescu -v -aet COUNTY -aec HUREN 127.0.0.1 "$port" "$T/county-ct.dcm" 2>&1 || true)
check "an image from the hub is refused" grep -qi "Store Response (Unknown Status: 0x124)" <<<"$out"

# --- township1 sends an instance with another patient name: stored, flagged, B000
remake "$f1" "$T/conflict.dcm" SOPInstanceUID=1.2.826.0.1.3680043.2.1125.991.5 PatientName='Li^Si'
out=$(storescu -d -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/conflict.dcm" 2>&1 || true)
check "a patient conflict is answered with a warning (B000)" grep -qi "DIMSE Status *: 0xb000" <<<"$out"
check "the comment names the field and both values" \
  grep -qF "[PatientName study 'Zhang^San' instance 'Li^Si'" <<<"$out"
check_eq "the instance is stored" "$study" "$(rcli own HGET hr:ix:sop 1.2.826.0.1.3680043.2.1125.991.5)"
check_eq "the study keeps its patient" 'Zhang^San' "$(rcli_raw own HGET "hr:{$study}:st" patient_name)"
req "$T/q3.json" "$T1" "$U/dicomweb/studies?StudyInstanceUID=$study" >/dev/null
check_eq "QIDO shows the flag (0009,1010) with creator HUREN 1" "HUREN 1 YES" \
  "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; print(d["00090010"]["Value"][0], d["00091010"]["Value"][0])' "$T/q3.json")"
check_eq "an unflagged study has no flag" 0 "$(grep -c 00091010 "$T/q1.json")"
for _ in $(seq 1 50); do [ "$(rcli own HGET "hr:wl:{$study}" patient_conflict)" = 1 ] && break; sleep 0.1; done
check_eq "the worklist item is flagged" 1 "$(rcli own HGET "hr:wl:{$study}" patient_conflict)"

# --- the C-STORE'd instance sent again by STOW: the first file stays
sop1=$(sop_uid "$f1")
sha1=$(rcli own HGET "hr:{$study}:i:$sop1" sha)
obj="$T/own/data/objects/${sha1:0:2}/${sha1:2:2}/$sha1"
before=$(sha256sum "$obj" | cut -d' ' -f1)
$DW stow-body "$T/again.body" BOUNDARY "$f1"
code=$(req "$T/again.json" "$T1" "$U/dicomweb/studies" -X POST \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BOUNDARY' --data-binary @"$T/again.body")
check_eq "the identical data set by STOW: 200" 200 "$code"
check_eq "the stored file is byte for byte the first one" "$before" "$(sha256sum "$obj" | cut -d' ' -f1)"
req "$T/one.dcm" "$T1" "$U/dicomweb/studies/$study/series/$(dcmdump +P 0020,000E "$f1" | sed -n 's/.*\[\(.*\)\].*/\1/p')/instances/$sop1" \
  -H 'Accept: application/dicom' >/dev/null
check "WADO returns it with its original source AE" bash -c "dcmdump +P 0002,0016 '$T/one.dcm' | grep -q TOWNSHIP1"
check "the resend is recorded as a receipt" bash -c "redis-cli -s '$T/own/data/redis/redis.sock' LRANGE 'hr:{$study}:i:$sop1:rc' 0 -1 | grep -q township1"

# --- keys escaped: the Patient ID with | { } space and CJK is found exactly
enc=$($PY -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$PID")
req "$T/q4.json" "$T1" "$U/dicomweb/studies?PatientID=$enc" >/dev/null
check_eq "QIDO by the odd Patient ID" "$study" "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(x["0020000D"]["Value"][0] for x in d))' "$T/q4.json")"
out=$(findscu -aet TOWNSHIP1 -aec HUREN -S -k QueryRetrieveLevel=STUDY -k "PatientID=$PID" -k StudyInstanceUID 127.0.0.1 "$port" 2>&1)
check "C-FIND by the odd Patient ID" grep -q "$study" <<<"$out"

# --- the same after a rebuild of the index from the files alone
inst=$(rcli own HGET "hr:{$study}:st" instances)
stop_huren "$HUREN_PID" || true
out=$("$HUREN" reindex --flush --config "$cfg" 2>&1)
check "reindex --flush succeeds" grep -q "0 refused" <<<"$out"
start_huren own "$cfg"
check_eq "rebuilt: owner township1" township1 "$(rcli own HGET "hr:{$study}:st" hospital)"
check_eq "rebuilt: same instance count" "$inst" "$(rcli own HGET "hr:{$study}:st" instances)"
check_eq "rebuilt: still flagged" YES "$(rcli own HGET "hr:{$study}:st" patient_conflict)"
check_eq "rebuilt: not weakly owned" "" "$(rcli_raw own HGET "hr:{$study}:st" owner_weak)"
finish
