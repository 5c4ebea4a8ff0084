#!/usr/bin/env bash
# Lab reports over HL7 v2 into a real huren, read back as FHIR R4
# (decisions 0035, 0041): ORU^R01 messages sent over MLLP (huren-hl7-send)
# by township1's LIS and the county lab; GET /api/v1/lab-reports and /{uid}
# as DiagnosticReport + contained Observation; the scope like studies
# (technician of the sending hospital, the lab center a review rule routed
# the report to, admin; another hospital, another center, the office: 404);
# no token, garbage ids and parameters; a critical value raised an alert
# before the AA; the reads are audited.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SEND=$BUILD/huren-hl7-send

port=$(free_port)
cfg=$(write_config lb "$port")
HP=$(free_port)
U="http://127.0.0.1:$(http_port lb)"
M=$T/msgs
mkdir -p "$M"

$PY - "$cfg" "$HP" <<'PY'
import json, sys
cfg, hp = sys.argv[1], int(sys.argv[2])
c = json.load(open(cfg))
c["hl7"] = {"enabled": True, "listen": "127.0.0.1", "port": hp, "facility": "HUB"}
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["addresses"] = ["127.0.0.2"]
    if h["id"] == "township2":
        h["addresses"] = ["127.0.0.3"]
c["lab"] = {"facilities": {"CLAB": "county", "T1LAB": "township1", "T2LAB": "township2"},
            "review": [{"hospitals": ["township1"], "tests": ["2823-3"], "center": "lab",
                        "priority": "urgent"}]}
c["recognition"] = {"qc": [{"center": "lab", "items": "*", "passed_from": "2020-01-01",
                            "passed_to": "2099-12-31"}]}
json.dump(c, open(cfg, "w"), indent=1)
PY
add_user "$cfg" admin 'admin-password-1' admin county
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" labr 'labr-password-1' reader county lab
add_user "$cfg" imgr 'imgr-password-1' reader county imaging
add_user "$cfg" office 'office-password-1' office county
add_user "$cfg" ext1 'ext1-password-1' external township2
PIN=246810
signing_key "$T/lb/data" labr "$PIN" # the lab reader signs (decision 0041)

# msg FILE CONTROL_ID FACILITY FILLER K_VALUE K_FLAG
msg() {
  $PY - "$@" <<'PY'
import sys
f, cid, fac, filler, k, flag = sys.argv[1:7]
segs = [
  f"MSH|^~\\&|LIS|{fac}|HUREN|HUB|20261203101500||ORU^R01^ORU_R01|{cid}|P|2.5.1|||||CHN|UNICODE UTF-8",
  f"PID|1||P{filler}^^^^MR||王^五||19800202|F",
  f"OBR|1|PL{filler}|{filler}|BMP^Basic metabolic panel^L|||20261203100000|||||||||||||||20261203101000|||F",
  f"OBX|1|NM|2823-3^Potassium^LN||{k}|mmol/L|3.5-5.3|{flag}|||F|||20261203100000",
  "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|137-147|N|||F|||20261203100000",
  "OBX|3|ST|8251-1^Comment^LN||haemolysed sample||||||F",
]
open(f, "wb").write(("\r".join(segs) + "\r").encode())
PY
}
uid() {
  $PY -c 'import hashlib,sys; d=hashlib.sha256("|".join(sys.argv[1:4]).encode()).digest(); print("2.25.%d" % int.from_bytes(d[:16], "big"))' "$@"
}
msg "$M/t1.hl7" T1-0001 T1LAB F100 6.9 HH
msg "$M/t2.hl7" T2-0001 T2LAB F200 4.2 N
msg "$M/c1.hl7" C-0001 CLAB F300 4.0 N

start_huren lb "$cfg"
wait_port "$HP" 30

check_eq "township1's LIS: AA" "AA T1-0001" "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/t1.hl7" 2>/dev/null)"
check_eq "township2's LIS: AA" "AA T2-0001" "$("$SEND" --port "$HP" --bind 127.0.0.3 "$M/t2.hl7" 2>/dev/null)"
check_eq "the county lab: AA" "AA C-0001" "$("$SEND" --port "$HP" --bind 127.0.0.1 "$M/c1.hl7" 2>/dev/null)"
U1=$(uid township1 F100 BMP)
U2=$(uid township2 F200 BMP)
check_eq "the critical potassium raised an alert before the AA" 1 "$(rcli lb ZCARD hr:alr:ix:time)"
check_eq "the review rule put township1's report on the lab worklist" lab "$(rcli lb HGET "hr:wl:{$U1}" center)"
check_eq "... ready" ready "$(rcli lb HGET "hr:wl:{$U1}" state)"
check_eq "township2's report is final at the township: no worklist item" 0 "$(rcli lb EXISTS "hr:wl:{$U2}")"

login() { login_token "$U" "$1" "$2"; }
TA=$(login admin 'admin-password-1')
T1=$(login tech1 'tech1-password-1')
T2=$(login tech2 'tech2-password-1')
TL=$(login labr 'labr-password-1')
TI=$(login imgr 'imgr-password-1')
TO=$(login office 'office-password-1')
check "six logins issued tokens" test -n "$TA" -a -n "$T1" -a -n "$T2" -a -n "$TL" -a -n "$TI" -a -n "$TO"

req() { # OUT TOKEN URL [curl args] -> status
  local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- the owner's technician: the report as FHIR
check_eq "tech1 reads township1's report: 200" 200 "$(req "$T/r1.json" "$T1" "/api/v1/lab-reports/$U1")"
check_eq "a DiagnosticReport" DiagnosticReport "$(jget "$T/r1.json" 'd["resourceType"]')"
check_eq "its id is the exam UID" "$U1" "$(jget "$T/r1.json" 'd["id"]')"
check_eq "status final (OBR-25 F)" final "$(jget "$T/r1.json" 'd["status"]')"
check_eq "code from OBR-4" "BMP Basic metabolic panel" "$(jget "$T/r1.json" 'd["code"]["coding"][0]["code"] + " " + d["code"]["text"]')"
check_eq "placer and filler identifiers" "PLAC=PLF100 FILL=F100" "$(jget "$T/r1.json" '" ".join(i["type"]["coding"][0]["code"] + "=" + i["value"] for i in d["identifier"] if "type" in i)')"
check_eq "effectiveDateTime from OBR-7" 2026-12-03T10:00:00 "$(jget "$T/r1.json" 'd["effectiveDateTime"][:19]')"
check_eq "subject: the patient" "P F100 王^五" "$(jget "$T/r1.json" '"P " + d["subject"]["identifier"]["value"][1:] + " " + d["subject"]["display"]')"
check_eq "three results referencing contained Observations" "#obs-1 #obs-2 #obs-3" "$(jget "$T/r1.json" '" ".join(x["reference"] for x in d["result"])')"
check_eq "potassium coded in LOINC" "http://loinc.org 2823-3" "$(jget "$T/r1.json" 'd["contained"][0]["code"]["coding"][0]["system"] + " " + d["contained"][0]["code"]["coding"][0]["code"]')"
check_eq "valueQuantity with unit" "6.9 mmol/L" "$(jget "$T/r1.json" '"%g %s" % (d["contained"][0]["valueQuantity"]["value"], d["contained"][0]["valueQuantity"]["unit"])')"
check_eq "referenceRange low/high/text" "3.5 5.3 3.5-5.3" "$(jget "$T/r1.json" '"%g %g %s" % (d["contained"][0]["referenceRange"][0]["low"]["value"], d["contained"][0]["referenceRange"][0]["high"]["value"], d["contained"][0]["referenceRange"][0]["text"])')"
check_eq "interpretation HH in v3-ObservationInterpretation" "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation HH" "$(jget "$T/r1.json" 'd["contained"][0]["interpretation"][0]["coding"][0]["system"] + " " + d["contained"][0]["interpretation"][0]["coding"][0]["code"]')"
check_eq "observation status final" final "$(jget "$T/r1.json" 'd["contained"][0]["status"]')"
check_eq "ST as valueString" "haemolysed sample" "$(jget "$T/r1.json" 'd["contained"][2]["valueString"]')"
check_eq "tech1's patient list: one searchset entry" "Bundle searchset 1 $U1" "$(req "$T/l1.json" "$T1" "/api/v1/lab-reports?patient=township1%7CPF100" >/dev/null; jget "$T/l1.json" '"%s %s %d %s" % (d["resourceType"], d["type"], len(d["entry"]), d["entry"][0]["resource"]["id"])')"

# ---- the lab center it was routed to, admin
check_eq "the lab center's reader: 200" 200 "$(req "$T/x.json" "$TL" "/api/v1/lab-reports/$U1")"
check_eq "admin: 200" 200 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports/$U1")"
check_eq "admin reads township2's too" 200 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports/$U2")"

# ---- hostile: another hospital, another center, the office, no token, garbage
check_eq "tech2 (another hospital): 404" 404 "$(req "$T/x.json" "$T2" "/api/v1/lab-reports/$U1")"
check_eq "... and the list is empty" 0 "$(req "$T/x.json" "$T2" "/api/v1/lab-reports?patient=township1%7CPF100" >/dev/null; jget "$T/x.json" 'len(d["entry"])')"
check_eq "the imaging reader (not routed there): 404" 404 "$(req "$T/x.json" "$TI" "/api/v1/lab-reports/$U1")"
check_eq "the lab reader: township2's report was not routed: 404" 404 "$(req "$T/x.json" "$TL" "/api/v1/lab-reports/$U2")"
check_eq "the office: 404" 404 "$(req "$T/x.json" "$TO" "/api/v1/lab-reports/$U1")"
check_eq "no token: 401" 401 "$(req "$T/x.json" "" "/api/v1/lab-reports/$U1")"
check_eq "a bad token: 401" 401 "$(req "$T/x.json" "not-a-token" "/api/v1/lab-reports?patient=township1%7CPF100")"
check_eq "an unknown UID: 404" 404 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports/2.25.1234")"
check_eq "a garbage id: 404" 404 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports/1.2%7Bx%7D")"
check_eq "a study-like id that is no lab report: 404" 404 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports/..%2F..%2Fetc")"
check_eq "neither patient nor person: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports")"
check_eq "both: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?patient=township1%7CPF100&person=p000000000000000000000000")"
check_eq "a patient without issuer: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?patient=PF100")"
check_eq "a bad person id: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?person=x")"
check_eq "limit above 100: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?patient=township1%7CPF100&limit=1000")"
check_eq "a garbage cursor: 400" 400 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?patient=township1%7CPF100&cursor=-1")"

# ---- paging: three reports of one patient, one per page
for i in 1 2 3; do
  msg "$M/p$i.hl7" "T1-P$i" T1LAB "F90$i" 4.$i N
  sed -i "s/PF90$i^/PP9^/" "$M/p$i.hl7"
  "$SEND" --port "$HP" --bind 127.0.0.2 --expect AA "$M/p$i.hl7" >/dev/null 2>&1
done
ids=""
cursor=""
for page in 1 2 3 4; do
  req "$T/pg.json" "$T1" "/api/v1/lab-reports?patient=township1%7CPP9&limit=1${cursor:+&cursor=$cursor}" >/dev/null
  ids="$ids $(jget "$T/pg.json" '" ".join(e["resource"]["id"] for e in d["entry"])')"
  cursor=$(jget "$T/pg.json" 'd.get("next_cursor", "")')
  [ -z "$cursor" ] && break
done
check_eq "three pages of one, then no next_cursor" 3 "$(echo $ids | wc -w)"
check_eq "... all different" 3 "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)"

# ---- the lab center signs the reviewed report like an imaging report (decision 0041)
R=/api/v1/reports
check_eq "the lab reader claims the lab report" 200 "$(req "$T/c.json" "$TL" "/api/v1/worklists/lab/items/$U1/claim" -X POST)"
check_eq "... creates the draft" 201 "$(req "$T/c.json" "$TL" $R -X POST -d "{\"study\": \"$U1\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
check_eq "... saves" 200 "$(req "$T/s.json" "$TL" "$R/$ID" -X PUT -d '{"rev": 0, "findings": "K 6.9 mmol/L confirmed", "impression": "Hyperkalaemia."}')"
check_eq "... signs" 200 "$(req "$T/s.json" "$TL" "$R/$ID/sign" -X POST -d "{\"pin\": \"$PIN\"}")"
req "$T/v1.jws" "$TL" "$R/$ID/versions/1/jws" >/dev/null
SHA1=$(sha256sum "$M/t1.hl7" | cut -d' ' -f1)
check_eq "the signed payload carries the observations and the raw message's SHA-256" \
  "$U1 2823-3=6.9 2951-2=140 8251-1=haemolysed sample T1-0001=$SHA1" \
  "$($PY - "$T/v1.jws" <<'PY'
import base64, json, sys
p = open(sys.argv[1]).read().strip().split(".")[1]
d = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
l = d["lab"]
print(l["uid"], " ".join(o["code"] + "=" + o["value"] for o in l["observations"]),
      " ".join(m["id"] + "=" + m["sha256"] for m in l["messages"]))
PY
)"

# ---- recognition of lab items (decision 0041): a result of today, with the
# patient's national ID in PID-3 (type ID), reviewed by the lab center (QC passed)
NID=11010519491231002X
TODAY=$(date +%Y%m%d)
msg "$M/rec.hl7" T1-REC1 T1LAB F500 4.4 N
sed -i -e "s/PID|1||PF500^^^^MR|/PID|1||PF500^^^^MR~$NID^^^^ID|/" -e "s/20261203100000/${TODAY}080000/g" "$M/rec.hl7"
check_eq "the message with the national ID: AA" "AA T1-REC1" "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/rec.hl7" 2>/dev/null)"
UR=$(uid township1 F500 BMP)
TE=$(login ext1 'ext1-password-1')
check_eq "the external doctor before a lookup: 404" 404 "$(req "$T/x.json" "$TE" "/api/v1/lab-reports/$UR")"
check_eq "the lookup by national ID: 200" 200 "$(req "$T/rec.json" "$TE" "/api/v1/recognition?id_type=national_id&id=$NID")"
UNTIL=$(date -d "$TODAY + 7 days" +%Y-%m-%d)
check_eq "lab_results: potassium as LAB-K, recognizable 7 days, with value, unit and range" \
  "LAB-K 4.4 mmol/L 3.5-5.3 $UNTIL True recognizable $UR" \
  "$(jget "$T/rec.json" '" ".join(str(x) for x in [[r for r in d["lab_results"] if r["item"] == "LAB-K"][0][k] for k in ["item", "value", "unit", "range", "valid_until", "recognizable", "reason", "study"]])')"
check_eq "... sodium as LAB-NA, the comment is no item" "LAB-K LAB-NA" "$(jget "$T/rec.json" '" ".join(sorted(r["item"] for r in d["lab_results"]))')"
check "... the lab report is granted" grep -q "$UR" <(jget "$T/rec.json" 'd["grant"]["studies"]')
check_eq "the external doctor reads the granted lab report: 200" 200 "$(req "$T/x.json" "$TE" "/api/v1/lab-reports/$UR")"
check_eq "... not another one: 404" 404 "$(req "$T/x.json" "$TE" "/api/v1/lab-reports/$U1")"

# ---- decisions on lab results (decision 0041): id "<lab UID>~<item>"
DEC=/api/v1/recognition
check_eq "the external doctor accepts the granted potassium: 201" 201 \
  "$(req "$T/d.json" "$TE" "$DEC/$UR~LAB-K/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "accept"}')"
check_eq "... recorded with the lab UID as study, no report" "accept $UR  LAB-K lab" \
  "$(jget "$T/d.json" '" ".join([d["decision"], d["study"], d["report"], d["item"], d["center"]])')"
check_eq "... rejects the sodium with a reason: 201" 201 \
  "$(req "$T/d.json" "$TE" "$DEC/$UR~LAB-NA/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "reject", "reason": "fast_changing_value"}')"
check_eq "... recorded" "reject fast_changing_value" "$(jget "$T/d.json" 'd["decision"] + " " + d["reason"]')"
check_eq "... other without text: 400" 400 \
  "$(req "$T/x.json" "$TE" "$DEC/$UR~LAB-NA/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "reject", "reason": "other"}')"
check_eq "the decisions on the potassium: one accept" "accept" \
  "$(req "$T/dl.json" "$TE" "$DEC/$UR~LAB-K/decisions" >/dev/null; jget "$T/dl.json" '" ".join(x["decision"] for x in d["decisions"])')"
check_eq "a lab result never looked up (no grant): 404" 404 \
  "$(req "$T/x.json" "$TE" "$DEC/$U1~LAB-K/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "reject", "reason": "emergency"}')"
check_eq "an item the lab report does not have: 404" 404 \
  "$(req "$T/x.json" "$TE" "$DEC/$UR~LAB-GLU/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "reject", "reason": "emergency"}')"
check_eq "the technician (no grant, not a deciding role): 404" 404 \
  "$(req "$T/x.json" "$T1" "$DEC/$UR~LAB-K/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "accept"}')"
check_eq "a garbage lab result id: 400" 400 \
  "$(req "$T/x.json" "$TE" "$DEC/2.25..1~LAB-K/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "accept"}')"
check_eq "no token: 401" 401 \
  "$(req "$T/x.json" "" "$DEC/$UR~LAB-K/decision" -X POST -H 'X-Requested-With: huren' -d '{"decision": "accept"}')"

# ---- a hospital's lab reports (the township page's 检验结果 tab)
hl() { jget "$1" '" ".join(sorted(e["resource"]["id"] for e in d["entry"]))'; }
check_eq "tech1: hospital=me: 200" 200 "$(req "$T/h.json" "$T1" "/api/v1/lab-reports?hospital=me&limit=100")"
check "... lists township1's reviewed report" grep -q "$U1" <(hl "$T/h.json")
check "... and its township-final ones" grep -q "$UR" <(hl "$T/h.json")
check_eq "... not township2's" 0 "$(hl "$T/h.json" | grep -c "$U2")"
check_eq "... five township1 reports in all" 5 "$(jget "$T/h.json" 'len(d["entry"])')"
check_eq "tech1: hospital=township1 is the same list" "$(hl "$T/h.json")" \
  "$(req "$T/h2.json" "$T1" "/api/v1/lab-reports?hospital=township1&limit=100" >/dev/null; hl "$T/h2.json")"
check_eq "tech1: paged by 4, a next_cursor" "4 4" \
  "$(req "$T/h3.json" "$T1" "/api/v1/lab-reports?hospital=me&limit=4" >/dev/null; jget "$T/h3.json" 'str(len(d["entry"])) + " " + d.get("next_cursor", "")')"
check_eq "tech1: hospital=township2 (another's): 404" 404 "$(req "$T/x.json" "$T1" "/api/v1/lab-reports?hospital=township2")"
check_eq "tech2: hospital=township1: 404" 404 "$(req "$T/x.json" "$T2" "/api/v1/lab-reports?hospital=township1")"
check_eq "tech2: hospital=me lists only township2's" "$U2" "$(req "$T/x.json" "$T2" "/api/v1/lab-reports?hospital=me" >/dev/null; hl "$T/x.json")"
check_eq "an unknown hospital: 404" 404 "$(req "$T/x.json" "$T1" "/api/v1/lab-reports?hospital=nowhere")"
check_eq "a hospital id too long: 404" 404 "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?hospital=$(printf 'h%.0s' $(seq 1 300))")"
check_eq "the lab reader: hospital=township1: 404" 404 "$(req "$T/x.json" "$TL" "/api/v1/lab-reports?hospital=township1")"
check_eq "admin: hospital=township2" "$U2" "$(req "$T/x.json" "$TA" "/api/v1/lab-reports?hospital=township2" >/dev/null; hl "$T/x.json")"
check_eq "hospital and patient: 400" 400 "$(req "$T/x.json" "$T1" "/api/v1/lab-reports?hospital=me&patient=township1%7CPF100")"
check_eq "no token: 401" 401 "$(req "$T/x.json" "" "/api/v1/lab-reports?hospital=township1")"

# ---- audited
check "the reads are in the audit log" grep -q '"action":"lab-report"' "$T"/lb/data/audit/audit-*.jsonl
check "... the refusals as denied" grep -q '"action":"lab-report".*"outcome":"denied"' "$T"/lb/data/audit/audit-*.jsonl
check "... the lists" grep -q '"action":"lab-reports"' "$T"/lb/data/audit/audit-*.jsonl

finish
