#!/usr/bin/env bash
# Persons and mutual recognition end to end (issue 9, decision 0027) with a
# real huren, storescu, dcmodify, curl and openssl: township1's modalities
# put the national ID in Other Patient IDs Sequence; ingest links the
# patient to a person (the number never reaches Redis, the log or the audit
# log); a reader's final, co-signed CT report carries a recognition item; a
# doctor of another hospital (role external) looks the person up by national
# ID, gets the result with its HR mark, retrieves the images through
# DICOMweb and the signed report, and nothing else of the patient; the grant
# expires; decisions (reject with a reason, accept) and the statistics; a
# QC-lapsed and (days later) an expired result are listed apart; persons
# linked by hand; the person-id key refused when missing or wrong. Hostile:
# wrong roles, another hospital, garbage ids, no grant, an expired grant.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=135790
NID=11010519491231002X  # the GB 11643 example number
NID2=440304199001010011 # valid, for a patient linked by hand
NID3=420102198506120038 # valid, nobody's

port=$(free_port)
cfg=$(write_config rg "$port")
U="http://127.0.0.1:$(http_port rg)"
DATA=$T/rg/data
TODAY=$(date +%F)
day() { $PY -c 'import datetime,sys; print(datetime.date.today() + datetime.timedelta(days=int(sys.argv[1])))' "$1"; }
# persons from township1's Other Patient IDs (issuer CN-NID); a catalogue
# whose QC covers CT-HEAD only; grants of 10 s
$PY - "$cfg" "$(day -10)" "$(day 100)" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["persons"] = {"sources": [{"hospital": "township1", "where": "other_patient_ids",
                             "issuer": "CN-NID", "id_type": "national_id"}]}
c["recognition"] = {
    "grant_seconds": 10,
    "items": [
        {"code": "CT-HEAD", "loinc": "30799-1", "name": "头颅CT平扫", "category": "imaging",
         "match": {"modalities": ["CT"]}, "scope": "community", "validity_days": 30,
         "hr_mark": "鄂HR", "price_yuan": "260.00"},
        {"code": "XR-CHEST-PA", "name": "胸部正位片", "category": "imaging",
         "match": {"modalities": ["DX", "CR"]}, "scope": "city", "validity_days": 30,
         "hr_mark": "鄂HR", "price_yuan": 60},
        {"code": "ECG-12", "name": "12导联心电图", "category": "ecg", "validity_days": 7,
         "hr_mark": "鄂HR", "price_yuan": 25}],
    "qc": [{"center": "imaging", "items": ["CT-HEAD"], "passed_from": sys.argv[2],
            "passed_to": sys.argv[3]}]}
json.dump(c, open(p, "w"), ensure_ascii=False, indent=1)
PY

adduser() { add_user "$cfg" "$@"; }
adduser rd1 'rd1-password-1' reader county imaging
adduser aud1 'aud1-password-1' auditor county imaging
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
adduser extb 'extb-password-1' external township2
adduser extc 'extc-password-1' external township2
adduser admin 'admin-password-1' admin county
mkkey() { # user: P-256, PKCS#8 encrypted under the PIN
  local d=$DATA/keys/$1
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/plain.pem" \
    -out "$d/chain.pem" -days 30 -subj "/CN=$1" -addext keyUsage=critical,digitalSignature 2>/dev/null
  openssl pkcs8 -topk8 -in "$d/plain.pem" -out "$d/key.p8" -v2 aes-256-cbc -v2prf hmacWithSHA256 \
    -iter 1000 -passout pass:$PIN
  rm "$d/plain.pem"
  chmod 600 "$d/key.p8"
}
mkkey rd1
mkkey aud1

start_huren rg "$cfg"
wait_port "$(http_port rg)" 30
KEY=$DATA/keys/person-id.key
check_eq "the first start made the person-id key: 32 bytes, mode 600" "32 600" \
  "$(stat -c '%s %a' "$KEY")"
login() { login_token "$U" "$1" "$1-password-1"; }
login_all() {
  RD=$(login rd1); AU=$(login aud1); T1=$(login tech1); T2=$(login tech2)
  EB=$(login extb); EC=$(login extc); AD=$(login admin)
}
login_all
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
err() { jget "$1" 'd["error"]'; }

# ---- township1 sends three studies of one patient (national ID in Other
# Patient IDs) and one of a patient without it ----
gen() { # DIR SEED MODALITY PATIENT
  "$GEN" --out "$T/$1" --modality "$3" --instances 2 --bytes 2048 --seed "$2" --patient-id "$4" \
    --print-uids >"$T/$1.uids"
}
gen ct 301 CT RG1
gen dx 302 DX RG1
gen mr 303 MR RG1
gen ct2 304 CT RG2
for d in ct dx mr; do
  dcmodify -nb -i "(0010,1002)[0].(0010,0020)=$NID" -i "(0010,1002)[0].(0010,0021)=CN-NID" \
    "$T/$d"/*.dcm
done
check "storescu sends them (8 instances)" \
  storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/dx" "$T/mr" "$T/ct2"
col() { sed -n "1p" "$T/$1.uids" | cut -d' ' -f"$2"; }
CT=$(col ct 1); DX=$(col dx 1); MR=$(col mr 1); CT2=$(col ct2 1)
CTSE=$(col ct 2); CTSOP=$(col ct 3)
P=$(rcli rg GET 'hr:pix:pt:TOWNSHIP1|RG1') # huren-gen's Issuer of Patient ID
check "ingest linked the patient to a person" $PY -c 'import re,sys; sys.exit(not re.fullmatch(r"p[0-9a-f]{24}", sys.argv[1]))' "$P"
check_eq "... whose studies are the three" "$(printf '%s\n' "$CT" "$DX" "$MR" | sort | xargs)" \
  "$(rcli_raw rg ZRANGE "hr:person:{$P}:st" 0 -1 | sort | xargs)"
check_eq "... found by the keyed hash of the number" "$P" \
  "$(rcli rg GET "hr:pix:national_id:$(printf 'national_id:%s' "$NID" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$(od -An -tx1 -v "$KEY" | tr -d " \n")" | sed 's/.*= //')")"
check_eq "the other patient has no person" "" "$(rcli_raw rg GET 'hr:pix:pt:TOWNSHIP1|RG2')"
check_eq "/metrics counts one new link, no failure" "1 0" \
  "$(curl -s -H "Authorization: Bearer $AD" "$U/metrics" | awk '/^huren_person_links_total /{a=$2} /^huren_person_link_failures_total /{b=$2} END{print a, b}')"

# ---- reports: CT-HEAD on the CT, XR-CHEST-PA on the DX, both final ----
R=/api/v1/reports
body() { $PY -c 'import json,sys; print(json.dumps({"rev": int(sys.argv[1]), "findings": "所见", "impression": "印象", "critical": False, "recognition": sys.argv[2:]}))' "$@"; }
draft() { # STUDY ITEM -> report id in $ID
  req "$T/c.json" "$T1" POST "/api/v1/exams/$1/complete" >/dev/null
  req "$T/c.json" "$RD" POST "/api/v1/worklists/imaging/items/$1/claim" >/dev/null
  req "$T/c.json" "$RD" POST $R -d "{\"study\": \"$1\"}" >/dev/null
  ID=$(jget "$T/c.json" 'd["id"]')
  REV=$(jget "$T/c.json" 'd["rev"]')
  req "$T/s.json" "$RD" PUT "$R/$ID" -d "$(body "$REV" "$2")" >/dev/null
}
signed() { # ID -> "final" after the reader's signature and the auditor's
  req "$T/s.json" "$RD" POST "$R/$1/sign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  req "$T/s.json" "$AU" POST "$R/$1/cosign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  jget "$T/s.json" 'd["status"]'
}
draft "$CT" CT-HEAD
CTR=$ID
check_eq "the CT report is final" final "$(signed "$CTR")"
draft "$DX" ECG-12
check_eq "an ECG item on an imaging report is not signed: 400 unknown_item" "400 unknown_item" \
  "$(req "$T/e.json" "$RD" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}") $(err "$T/e.json")"
req "$T/s.json" "$RD" PUT "$R/$ID" -d "$(body 1 XR-CHEST-PA)" >/dev/null
DXR=$ID
check_eq "the DX report is final" final "$(signed "$DXR")"
RESULT="$CTR~CT-HEAD"

# ---- who may look up ----
L=/api/v1/recognition
lookup() { req "$1" "$2" GET "$L?id_type=national_id&id=$3"; }
check_eq "a technician cannot look up: 403" 403 "$(lookup "$T/e.json" "$T1" "$NID")"
check_eq "nor the admin: 403" 403 "$(lookup "$T/e.json" "$AD" "$NID")"
check_eq "no token: 401" 401 "$(lookup "$T/e.json" "" "$NID")"
check_eq "a wrong check character: 400 bad_id" "400 bad_id" \
  "$(lookup "$T/e.json" "$EB" 110105194912310021) $(err "$T/e.json")"
check_eq "a short number: 400" 400 "$(lookup "$T/e.json" "$EB" 1234)"
check_eq "an unknown id_type: 400" 400 "$(req "$T/e.json" "$EB" GET "$L?id_type=passport&id=$NID")"
check_eq "a malformed person: 400" 400 "$(req "$T/e.json" "$EB" GET "$L?person=p123")"
check_eq "both forms at once: 400" 400 "$(req "$T/e.json" "$EB" GET "$L?person=$P&id_type=national_id&id=$NID")"
check_eq "neither: 400" 400 "$(req "$T/e.json" "$EB" GET "$L")"
check_eq "an unknown parameter: 400" 400 "$(req "$T/e.json" "$EB" GET "$L?person=$P&x=1")"
check_eq "an unlinked (valid) number: 200, nothing, no person" "200 0 0 None" \
  "$(lookup "$T/n.json" "$EB" "$NID3") $(jget "$T/n.json" 'str(len(d["results"])) + " " + str(len(d["not_recognizable"])) + " " + str(d["person"])')"
check_eq "before any lookup extb cannot read the CT: 404" 404 \
  "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$CT/metadata")"

# ---- the lookup ----
check_eq "extb looks the person up by national ID: 200" 200 "$(lookup "$T/l.json" "$EB" "$NID")"
check_eq "... one recognizable result: the CT's CT-HEAD with its mark, scope and validity" \
  "$RESULT CT-HEAD 鄂HR community $(day 30) imaging county $CT final" \
  "$(jget "$T/l.json" '" ".join([(r["result"], r["item"], r["hr_mark"], r["scope"], r["valid_until"], r["center"], r["issuing_hospital"], r["study"], r["status"]) for r in d["results"]][0]) if len(d["results"]) == 1 else d')"
check_eq "... the DX's XR-CHEST-PA apart: qc_lapsed" "$DXR~XR-CHEST-PA qc_lapsed" \
  "$(jget "$T/l.json" '" ".join(r["result"] + " " + r["reason"] for r in d["not_recognizable"])')"
check_eq "... the person, and the grant of the CT only" "$P $CT" \
  "$(jget "$T/l.json" 'd["person"] + " " + " ".join(d["grant"]["studies"])')"
JWSL=$(jget "$T/l.json" 'd["results"][0]["links"]["jws"]')
check_eq "... links to the JWS and the images" "$U$R/$CTR/versions/2/jws $U/dicomweb/studies/$CT" \
  "$JWSL $(jget "$T/l.json" 'd["results"][0]["links"]["study"]')"
check "no ID number in the answer" bash -c "! grep -q '$NID' '$T/l.json'"

# ---- what the grant opens, and what it does not ----
check_eq "extb reads the CT's metadata: 200" 200 "$(req "$T/m.json" "$EB" GET "/dicomweb/studies/$CT/metadata")"
check_eq "... an instance (WADO-RS): 200" 200 \
  "$(req "$T/i.bin" "$EB" GET "/dicomweb/studies/$CT/series/$CTSE/instances/$CTSOP" -H 'Accept: multipart/related; type="application/dicom"')"
check_eq "... a frame: 200" 200 \
  "$(req "$T/f.bin" "$EB" GET "/dicomweb/studies/$CT/series/$CTSE/instances/$CTSOP/frames/1")"
check_eq "... WADO-URI: 200" 200 \
  "$(req "$T/u.dcm" "$EB" GET "/wado?requestType=WADO&studyUID=$CT&seriesUID=$CTSE&objectUID=$CTSOP&contentType=application/dicom")"
check_eq "... QIDO by its StudyInstanceUID: the study" "200 1" \
  "$(req "$T/q.json" "$EB" GET "/dicomweb/studies?StudyInstanceUID=$CT") $(jget "$T/q.json" 'len(d)')"
check_eq "... its series: 200" 200 "$(req "$T/q.json" "$EB" GET "/dicomweb/studies/$CT/series")"
check_eq "... QIDO without a study UID: nothing" "200 0" \
  "$(req "$T/q.json" "$EB" GET "/dicomweb/studies?PatientID=RG1") $(jget "$T/q.json" 'len(d)')"
check_eq "... the signed report (JWS): 200" 200 "$(req "$T/v.jws" "$EB" GET "$R/$CTR/versions/2/jws")"
# the receiving doctor checks it without trusting huren: huren verify against
# the signers' certificates, the images fetched through the grant, and npm jose
cat "$DATA/keys/rd1/chain.pem" "$DATA/keys/aud1/chain.pem" >"$T/signers.pem"
check "... huren verify: signatures, chain, and every image hash fetched with extb's grant" \
  "$HUREN" verify "$T/v.jws" --trust "$T/signers.pem" --hub "$U" --token "$EB"
check "... npm jose verifies the signature too" node "$SRC/tests/js/verify_jws.mjs" "$T/v.jws"
check "... huren verify with extc's token (no grant) cannot fetch the images" \
  bash -c "! '$HUREN' verify '$T/v.jws' --trust '$T/signers.pem' --hub '$U' --token '$EC' >/dev/null 2>&1"
check_eq "the patient's MR (not a result): 404" 404 "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$MR/metadata")"
check_eq "... nor by QIDO: nothing" "200 0" \
  "$(req "$T/q.json" "$EB" GET "/dicomweb/studies?StudyInstanceUID=$MR") $(jget "$T/q.json" 'len(d)')"
check_eq "the DX (not recognizable): 404" 404 "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$DX/metadata")"
check_eq "... nor its report: 404" 404 "$(req "$T/e.json" "$EB" GET "$R/$DXR/versions/2/jws")"
check_eq "another patient's study: 404" 404 "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$CT2/metadata")"
check_eq "extc (no lookup) cannot read the CT: 404" 404 "$(req "$T/e.json" "$EC" GET "/dicomweb/studies/$CT/metadata")"
check_eq "... nor its report: 404" 404 "$(req "$T/e.json" "$EC" GET "$R/$CTR/versions/2/jws")"

# ---- decisions ----
lookup "$T/l.json" "$EB" "$NID" >/dev/null # a fresh grant (a busy machine may be slow)
D=$L/$RESULT/decision
check_eq "a reason outside the ten: 400 bad_reason" "400 bad_reason" \
  "$(req "$T/e.json" "$EB" POST "$D" -d '{"decision": "reject", "reason": "too_expensive"}') $(err "$T/e.json")"
check_eq "other without text: 400" 400 "$(req "$T/e.json" "$EB" POST "$D" -d '{"decision": "reject", "reason": "other"}')"
check_eq "a decision that is neither: 400" 400 "$(req "$T/e.json" "$EB" POST "$D" -d '{"decision": "maybe"}')"
check_eq "garbage JSON: 400" 400 "$(req "$T/e.json" "$EB" POST "$D" -d '{"decision": ')"
check_eq "a garbage result id: 400" 400 "$(req "$T/e.json" "$EB" POST "$L/r1-1.2.x~CT-HEAD/decision" -d '{"decision": "accept"}')"
check_eq "extc (no grant) cannot decide: 404" 404 "$(req "$T/e.json" "$EC" POST "$D" -d '{"decision": "accept"}')"
check_eq "a result of another item: 404" 404 "$(req "$T/e.json" "$EB" POST "$L/$CTR~XR-CHEST-PA/decision" -d '{"decision": "accept"}')"
check_eq "the DX result (not granted): 404" 404 "$(req "$T/e.json" "$EB" POST "$L/$DXR~XR-CHEST-PA/decision" -d '{"decision": "reject", "reason": "issuer_failed_eqa"}')"
check_eq "extb rejects (condition changed), as 李医生: 201" "201 reject condition_changed 李医生 extb township2" \
  "$(req "$T/d.json" "$EB" POST "$D" -d '{"decision": "reject", "reason": "condition_changed", "text": "症状加重", "doctor": "李医生"}') $(jget "$T/d.json" '" ".join([d["decision"], d["reason"], d["doctor"], d["user"], d["hospital"]])')"
check_eq "extb accepts: 201" "201 accept $P" \
  "$(req "$T/d.json" "$EB" POST "$D" -d '{"decision": "accept"}') $(jget "$T/d.json" 'd["decision"] + " " + d["person"]')"
check_eq "the result's decisions, in order" "200 reject accept" \
  "$(req "$T/ds.json" "$EB" GET "$L/$RESULT/decisions") $(jget "$T/ds.json" '" ".join(x["decision"] for x in d["decisions"])')"
check_eq "... not for extc: 404" 404 "$(req "$T/e.json" "$EC" GET "$L/$RESULT/decisions")"
check_eq "... the admin: 200" 200 "$(req "$T/e.json" "$AD" GET "$L/$RESULT/decisions")"
check_eq "the person's decisions (newest first)" "200 accept reject" \
  "$(req "$T/ds.json" "$EB" GET "$L/decisions?person=$P") $(jget "$T/ds.json" '" ".join(x["decision"] for x in d["decisions"])')"
check_eq "... not for extc: 404" 404 "$(req "$T/e.json" "$EC" GET "$L/decisions?person=$P")"
check_eq "... a garbage person: 400" 400 "$(req "$T/e.json" "$AD" GET "$L/decisions?person=xyz")"

# ---- statistics ----
S=/api/v1/stats/recognition
check_eq "a technician cannot read statistics: 403" 403 "$(req "$T/e.json" "$T1" GET "$S")"
check_eq "nor an external user: 403" 403 "$(req "$T/e.json" "$EB" GET "$S")"
check_eq "a range over 366 days: 400" 400 "$(req "$T/e.json" "$AD" GET "$S?from=2020-01-01&to=2021-06-01")"
check_eq "a bad group: 400" 400 "$(req "$T/e.json" "$AD" GET "$S?group=ward")"
check_eq "by item: CT-HEAD 1 accept, 1 rejection (condition_changed), 260.00 yuan avoided, rate 0.5" \
  "200 1 1 1 260.00 0.5" \
  "$(req "$T/st.json" "$AD" GET "$S?from=$TODAY&to=$TODAY&group=item") $(jget "$T/st.json" '(lambda g: " ".join(map(str, [g["accepts"], g["rejections"], g["rejections_by_reason"]["condition_changed"], g["cost_avoided_yuan"], g["recognition_rate"]])))([g for g in d["groups"] if g["key"] == "CT-HEAD"][0])')"
check_eq "lookups by hospital: township2's three (one of an unlinked number)" "3" \
  "$(req "$T/st.json" "$AD" GET "$S?from=$TODAY&to=$TODAY&group=hospital" >/dev/null; jget "$T/st.json" '[g["lookups"] for g in d["groups"] if g["key"] == "township2"][0]')"
check_eq "the auditor reads them by month too" "200 $(date +%Y-%m)" \
  "$(req "$T/st.json" "$AU" GET "$S?group=month") $(jget "$T/st.json" '" ".join(g["key"] for g in d["groups"])')"

# ---- persons ----
check_eq "the admin reads the person: a national ID, no health card, one patient, three studies" \
  "200 True False 1 3" \
  "$(req "$T/p.json" "$AD" GET "/api/v1/persons/$P") $(jget "$T/p.json" '" ".join(map(str, [d["identifiers"]["national_id"], d["identifiers"]["health_card"], len(d["patients"]), len(d["studies"])]))')"
check "... without the number" bash -c "! grep -q '$NID' '$T/p.json'"
check_eq "a technician cannot: 403" 403 "$(req "$T/e.json" "$T1" GET "/api/v1/persons/$P")"
check_eq "a garbage person id: 400" 400 "$(req "$T/e.json" "$AD" GET "/api/v1/persons/nobody")"
check_eq "an unknown person: 404" 404 "$(req "$T/e.json" "$AD" GET "/api/v1/persons/p000000000000000000000000")"
LK=/api/v1/persons/link
link() { $PY -c 'import json,sys; print(json.dumps(dict(zip(["hospital", "patient_id", "id_type", "id"], sys.argv[1:]), issuer="TOWNSHIP1")))' "$@"; }
check_eq "tech2 cannot link township1's patient: 404" 404 "$(req "$T/e.json" "$T2" POST $LK -d "$(link township1 RG2 national_id $NID2)")"
check_eq "an external user cannot link: 403" 403 "$(req "$T/e.json" "$EB" POST $LK -d "$(link township1 RG2 national_id $NID2)")"
check_eq "a bad number: 400" 400 "$(req "$T/e.json" "$T1" POST $LK -d "$(link township1 RG2 national_id 123456)")"
check_eq "an unknown patient: 404" 404 "$(req "$T/e.json" "$T1" POST $LK -d "$(link township1 NOBODY national_id $NID2)")"
check_eq "garbage: 400" 400 "$(req "$T/e.json" "$T1" POST $LK -d '[1]')"
check_eq "tech1 links RG2 by its national ID: 201, a new person, its study" "201 True 1" \
  "$(req "$T/k.json" "$T1" POST $LK -d "$(link township1 RG2 national_id $NID2)") $(jget "$T/k.json" 'str(d["created"]) + " " + str(d["studies_added"])')"
check_eq "... again: 200, nothing new" "200 False" \
  "$(req "$T/k.json" "$T1" POST $LK -d "$(link township1 RG2 national_id $NID2)") $(jget "$T/k.json" 'str(d["created"])')"
check_eq "RG2 with RG1's number: 409 conflict" "409 conflict" \
  "$(req "$T/e.json" "$T1" POST $LK -d "$(link township1 RG2 national_id $NID)") $(err "$T/e.json")"
check_eq "the admin adds a health card to RG1's person: 200, same person" "200 $P" \
  "$(req "$T/k.json" "$AD" POST $LK -d "$(link township1 RG1 health_card HC-778899)") $(jget "$T/k.json" 'd["person"]')"
check_eq "a lookup by health card finds the same result" "200 $RESULT" \
  "$(req "$T/l2.json" "$EB" GET "$L?id_type=health_card&id=hc-778899") $(jget "$T/l2.json" '" ".join(r["result"] for r in d["results"])')"

# ---- the grant expires (the health card lookup above granted last) ----
$PY -c 'import sys,time; time.sleep(max(0, int(sys.argv[1]) / 1000 - time.time()) + 0.3)' \
  "$(jget "$T/l2.json" 'd["grant"]["until_ms"]')"
check_eq "after the grant: the CT's metadata 404" 404 "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$CT/metadata")"
check_eq "... QIDO: nothing" "200 0" \
  "$(req "$T/q.json" "$EB" GET "/dicomweb/studies?StudyInstanceUID=$CT") $(jget "$T/q.json" 'len(d)')"
check_eq "... the report: 404" 404 "$(req "$T/e.json" "$EB" GET "$R/$CTR/versions/2/jws")"
check_eq "... a decision: 404" 404 "$(req "$T/e.json" "$EB" POST "$D" -d '{"decision": "accept"}')"
check_eq "... by person: the lookup grants again" "200 $CT" \
  "$(req "$T/l3.json" "$EB" GET "$L?person=$P") $(jget "$T/l3.json" '" ".join(d["grant"]["studies"])')"
check_eq "... and the CT opens again" 200 "$(req "$T/e.json" "$EB" GET "/dicomweb/studies/$CT/metadata")"

# ---- nothing of the number in clear: Redis, the log, the audit log ----
sleep 1.2 # the embedded Redis writes its AOF every second
check "Redis' files hold the index (the patient key: the check below can see)" \
  grep -rqa 'TOWNSHIP1|RG1' "$DATA/redis"
check "Redis never saw the national ID" bash -c "! grep -rqa '$NID' '$DATA/redis'"
check "... nor the health card number" bash -c "! grep -rqia 'HC-778899' '$DATA/redis'"
check "huren's log has neither" bash -c "! grep -qa -e '$NID' -e 'HC-778899' '$T/rg/huren.log'"
check "the audit log has neither" bash -c "! cat '$DATA'/audit/*.jsonl | grep -qa -e '$NID' -e 'HC-778899'"
check "lookups are audited with who and the person" \
  bash -c "cat '$DATA'/audit/audit-*.jsonl | grep '\"action\":\"recognition\"' | grep '\"actor\":\"extb\"' | grep -q '\"patient\":\"$P\"'"
check "grants are audited with the study" grep -q "\"action\":\"recognition-grant\".*\"study\":\"$CT\"" "$DATA"/audit/audit-*.jsonl
check "decisions are audited" grep -q '"action":"recognition-decision"' "$DATA"/audit/audit-*.jsonl
check "granted reads are audited as reads" grep -q "\"actor\":\"extb\".*\"study\":\"$CT\"" "$DATA"/audit/audit-*.jsonl

# ---- 40 days later (recognition.days_ahead): the CT result has expired ----
check "graceful stop" stop_huren "$HUREN_PID"
$PY - "$cfg" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["recognition"]["days_ahead"] = 40
json.dump(c, open(sys.argv[1], "w"), ensure_ascii=False)
PY
start_huren rg "$cfg"
wait_port "$(http_port rg)" 30
login_all
check_eq "40 days on: nothing recognizable, the CT result expired, no grant" \
  "200 0 $RESULT:expired 0" \
  "$(lookup "$T/l4.json" "$EC" "$NID") $(jget "$T/l4.json" 'str(len(d["results"])) + " " + " ".join(r["result"] + ":" + r["reason"] for r in d["not_recognizable"] if r["item"] == "CT-HEAD") + " " + str(len(d["grant"]["studies"]))')"
check_eq "... so extc still cannot read the CT" 404 "$(req "$T/e.json" "$EC" GET "/dicomweb/studies/$CT/metadata")"

# ---- the key: refused when missing once data exists, or when another ----
check "graceful stop" stop_huren "$HUREN_PID"
mv "$KEY" "$T/key.bak"
out=$("$HUREN" serve --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "without the key huren does not start" 1 "$st"
check "... and says why" grep -q "person-id.key is missing" <<<"$out"
check "... no new key was made" test ! -e "$KEY"
head -c 32 /dev/urandom >"$KEY"
chmod 600 "$KEY"
out=$("$HUREN" serve --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "with another key huren does not start" "1" "$st"
check "... and says why" grep -q "not the key the index's persons were linked with" <<<"$out"
mv "$T/key.bak" "$KEY"
start_huren rg "$cfg"
wait_port "$(http_port rg)" 30
EB=$(login extb)
check_eq "with its key back, persons are found again" "200 $P" \
  "$(lookup "$T/l5.json" "$EB" "$NID") $(jget "$T/l5.json" 'd["person"]')"
check "the audit chain verifies" "$HUREN" audit verify --config "$cfg"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
