#!/usr/bin/env bash
# The reading workbench's API (issue 10, decision 0034) with a real huren,
# storescu, curl and openssl keys: report templates and the phrase library
# from configuration (GET /api/v1/report-templates); a person's prior exams
# from another hospital (GET /api/v1/exams/{study}/priors: only what the
# reader may see); the co-sign queue (the worklist's reported items carry
# their report); return for revision (POST /api/v1/reports/{id}/return): the
# auditor sends the preliminary back with a comment, the reader gets the
# draft and the claim back, the comment stays in the report's history, the
# next signature supersedes the returned version, the co-signature makes it
# final; a reader's pending amendment returned. Hostile: wrong role, another
# center, another township, no token, an expired token, garbage.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=135790
NID=11010519491231002X

port=$(free_port)
cfg=$(write_config wb "$port")
U="http://127.0.0.1:$(http_port wb)"
DATA=$T/wb/data
adduser() { add_user "$cfg" "$@"; }
adduser rd1 'rd1-password-1' reader county imaging
adduser rd2 'rd2-password-1' reader county imaging
adduser aud1 'aud1-password-1' auditor county imaging
adduser recg 'recg-password-1' reader county ecg
adduser audg 'audg-password-1' auditor county ecg
adduser tech1 'tech1-password-1' technician township1
adduser ext1 'ext1-password-1' external township2
adduser admin 'admin-password-1' admin county
check "huren ca init" "$HUREN" ca init --config "$cfg"
mkkey() { printf '%s\n' "$PIN" | "$HUREN" keygen --config "$cfg" --user "$1" --alg es256 --pin-stdin >/dev/null; }
for u in rd1 aud1; do check "keygen $u" mkkey $u; done

start_huren wb "$cfg"
wait_port "$(http_port wb)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
R1=$(login rd1); R2=$(login rd2); A1=$(login aud1); RE=$(login recg); AE=$(login audg)
T1=$(login tech1); EX=$(login ext1); AD=$(login admin)
check "eight logins" test "${#R1}${#R2}${#A1}${#RE}${#AE}${#T1}${#EX}${#AD}" = 4343434343434343

req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
err() { jget "$1" 'd["error"]'; }

# ---- templates and phrases ----
TP=/api/v1/report-templates
check_eq "rd1 reads the templates: 200, the embedded 胸部正位片 and 头颅CT平扫" "200 True True" \
  "$(req "$T/t.json" "$R1" GET $TP) $(jget "$T/t.json" '" ".join(str(n in [t["name"] for t in d["templates"]]) for n in ["胸部正位片", "头颅CT平扫"])')"
check "... each with findings or an impression, and phrases with a group and text" \
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(t["findings"] or t["impression"] for t in d["templates"]); assert len(d["phrases"]) >= 5 and all(p["group"] and p["text"] for p in d["phrases"])' "$T/t.json"
check_eq "?modality=CT: only templates for CT (or any modality), 头颅CT平扫 among them, no 胸部正位片" "200 True False True" \
  "$(req "$T/t.json" "$A1" GET "$TP?modality=CT") $(jget "$T/t.json" '" ".join(map(str, [any(t["name"] == "头颅CT平扫" for t in d["templates"]), any(t["name"] == "胸部正位片" for t in d["templates"]), all(not t["modalities"] or "CT" in t["modalities"] for t in d["templates"] + d["phrases"])]))')"
check_eq "a technician: 403" 403 "$(req "$T/e.json" "$T1" GET $TP)"
check_eq "an external doctor: 403" 403 "$(req "$T/e.json" "$EX" GET $TP)"
check_eq "an admin (writes no report): 403" 403 "$(req "$T/e.json" "$AD" GET $TP)"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET $TP)"
check_eq "a forged token: 401" 401 "$(req "$T/e.json" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" GET $TP)"
check_eq "a garbage modality: 400" 400 "$(req "$T/e.json" "$R1" GET "$TP?modality=%01%02")"

# ---- exams: a CT from township1, a DX prior from the county hospital and an
# ECG of the same person (routed to the ECG center), an MR of someone else ----
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 2048 --seed 31 --patient-id WB1 --charset utf8 \
  --patient-name '李^四' --study-date 20261201 >/dev/null
"$GEN" --out "$T/dx" --modality DX --instances 1 --bytes 2048 --seed 32 --patient-id CW1 --charset utf8 \
  --patient-name '李^四' --study-date 20250601 --accession PRIOR1 >/dev/null
"$GEN" --out "$T/ecg" --modality ECG --instances 1 --seed 33 --patient-id WB1 --study-date 20250901 >/dev/null
"$GEN" --out "$T/mr" --modality MR --instances 1 --bytes 2048 --seed 34 --patient-id WB9 >/dev/null
check "township1 sends the CT, the ECG and the MR" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" \
  "$T"/ct/*.dcm "$T"/ecg/*.dcm "$T"/mr/*.dcm
check "the county hospital sends the DX" storescu -aet COUNTY -aec HUREN 127.0.0.1 "$port" "$T"/dx/*.dcm
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
S=$(uid "$T/ct"); PR=$(uid "$T/dx"); EG=$(uid "$T/ecg"); MR=$(uid "$T/mr")
for st in "$S" "$PR" "$MR"; do req "$T/c.json" "$AD" POST "/api/v1/exams/$st/complete" >/dev/null; done
req "$T/c.json" "$AD" POST "/api/v1/exams/$EG/complete" >/dev/null
check_eq "the ECG went to the ECG center" ecg "$(req "$T/x.json" "$AD" GET "/api/v1/exams/$EG" >/dev/null; jget "$T/x.json" 'd["center"]')"

# link both patients to one person by national ID (admin)
pkey() { req "$T/x.json" "$AD" GET "/api/v1/exams/$1" >/dev/null; jget "$T/x.json" 'd["patient"]'; }
link() { # HOSPITAL PATIENT_KEY
  $PY -c 'import json,sys; i, p = sys.argv[2].split("|", 1); print(json.dumps({"hospital": sys.argv[1], "issuer": i, "patient_id": p, "id_type": "national_id", "id": sys.argv[3]}))' "$1" "$2" "$NID"
}
check_eq "link township1's patient: 201" 201 "$(req "$T/k.json" "$AD" POST /api/v1/persons/link -d "$(link township1 "$(pkey "$S")")")"
P=$(jget "$T/k.json" 'd["person"]')
check_eq "link the county hospital's patient to the same person: 200" "200 $P" \
  "$(req "$T/k.json" "$AD" POST /api/v1/persons/link -d "$(link county "$(pkey "$PR")")") $(jget "$T/k.json" 'd["person"]')"

# ---- priors ----
PRI="/api/v1/exams/$S/priors"
check_eq "rd1: the person, the county hospital's DX (not the CT itself, not the ECG of another center)" \
  "200 $P $PR county DX PRIOR1 20250601" \
  "$(req "$T/p.json" "$R1" GET "$PRI") $(jget "$T/p.json" '" ".join([d["person"]] + [" ".join([p["study"], p["hospital"], p["modality"], p["accession"], p["study_date"]]) for p in d["priors"]])')"
check_eq "the auditor and the admin see it too" "200 200" "$(req "$T/e.json" "$A1" GET "$PRI") $(req "$T/e.json" "$AD" GET "$PRI")"
check_eq "the admin sees every prior (the ECG too)" 2 "$(req "$T/p.json" "$AD" GET "$PRI" >/dev/null; jget "$T/p.json" 'len(d["priors"])')"
check_eq "the ECG reader, from the ECG exam: the county's own DX, not township1's CT (imaging)" "200 $PR" \
  "$(req "$T/p.json" "$RE" GET "/api/v1/exams/$EG/priors") $(jget "$T/p.json" '" ".join(p["study"] for p in d["priors"])')"
check_eq "the ECG reader on the CT (another center): 404" 404 "$(req "$T/e.json" "$RE" GET "$PRI")"
check_eq "a technician: 403" 403 "$(req "$T/e.json" "$T1" GET "$PRI")"
check_eq "an external doctor: 403" 403 "$(req "$T/e.json" "$EX" GET "$PRI")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET "$PRI")"
check_eq "a garbage UID: 400" 400 "$(req "$T/e.json" "$R1" GET "/api/v1/exams/1.2.x/priors")"
check_eq "an unknown study: 404" 404 "$(req "$T/e.json" "$R1" GET "/api/v1/exams/1.2.3.4.5.6.7/priors")"
check_eq "an unlinked patient: 200, no person, no priors" "200 None 0" \
  "$(req "$T/p.json" "$R1" GET "/api/v1/exams/$MR/priors") $(jget "$T/p.json" 'd["person"]') $(jget "$T/p.json" 'len(d["priors"])')"
check "priors reads are audited with the patient" \
  grep -q '"action":"exam-priors".*"outcome":"success"' "$DATA"/audit/audit-*.jsonl

# ---- a preliminary report, the co-sign queue ----
R=/api/v1/reports
check_eq "rd1 claims the CT" 200 "$(req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$S/claim")"
check_eq "rd1 creates the draft" 201 "$(req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
body() { $PY -c 'import json,sys; print(json.dumps({"rev": int(sys.argv[1]), "findings": sys.argv[2], "impression": sys.argv[3]}))' "$@"; }
check_eq "rd1 saves" 200 "$(req "$T/s.json" "$R1" PUT "$R/$ID" -d "$(body 0 '脑实质密度均匀。' '未见异常。')")"
check_eq "rd1 signs: version 1, preliminary" "200 1 preliminary" \
  "$(req "$T/s.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["version"]') $(jget "$T/s.json" 'd["status"]')"
check_eq "the co-sign queue (state=reported) holds the CT with its preliminary report" "200 $S $ID preliminary" \
  "$(req "$T/q.json" "$A1" GET "/api/v1/worklists/imaging?state=reported") $(jget "$T/q.json" '" ".join(" ".join([i["study"], i["report"]["id"], i["report"]["status"]]) for i in d["items"])')"
check_eq "the working list items carry their report too (null without one)" "200 None" \
  "$(req "$T/q.json" "$R1" GET "/api/v1/worklists/imaging") $(jget "$T/q.json" '[i["report"] for i in d["items"] if i["study"] == sys.argv[3]][0]' "$PR")"

# ---- return for revision: hostile first ----
RET="$R/$ID/return"
C1='请补充描述双侧基底节区，并与外院既往片比较。'
cbody() { $PY -c 'import json,sys; print(json.dumps({"comment": sys.argv[1]}))' "$1"; }
check_eq "the reader (not an auditor) cannot return: 403" 403 "$(req "$T/e.json" "$R1" POST "$RET" -d "$(cbody "$C1")")"
check_eq "the township technician (sees the signed version) cannot: 403" 403 "$(req "$T/e.json" "$T1" POST "$RET" -d "$(cbody "$C1")")"
check_eq "the ECG auditor (another center): 404" 404 "$(req "$T/e.json" "$AE" POST "$RET" -d "$(cbody "$C1")")"
check_eq "an external doctor: 404" 404 "$(req "$T/e.json" "$EX" POST "$RET" -d "$(cbody "$C1")")"
check_eq "the admin (not an auditor of the center): 403" 403 "$(req "$T/e.json" "$AD" POST "$RET" -d "$(cbody "$C1")")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" POST "$RET" -d "$(cbody "$C1")")"
check_eq "garbage JSON: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{"comment": ')"
check_eq "no comment: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{}')"
check_eq "an empty comment: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{"comment": ""}')"
check_eq "a comment that is not a string: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{"comment": 7}')"
check_eq "an unknown member: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{"comment": "x", "pin": "1"}')"
check_eq "a comment over 1024 bytes: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d "$(cbody "$(head -c 1100 /dev/zero | tr '\0' a)")")"
check_eq "control characters in the comment: 400" 400 "$(req "$T/e.json" "$A1" POST "$RET" -d '{"comment": "a\u0001b"}')"
check_eq "an unknown report: 404" 404 "$(req "$T/e.json" "$A1" POST "$R/r9-$S/return" -d "$(cbody x)")"
check_eq "a malformed report id: 404" 404 "$(req "$T/e.json" "$A1" POST "$R/zz/return" -d "$(cbody x)")"
check_eq "a cookie-authenticated return without X-Requested-With: 403 csrf" 403 \
  "$(curl -s -o "$T/e.json" -w '%{http_code}' -X POST -b "huren_session=$A1" "$U$RET" -d "$(cbody "$C1")")"
check_eq "the report is still preliminary" preliminary "$(req "$T/g.json" "$A1" GET "$R/$ID" >/dev/null; jget "$T/g.json" 'd["status"]')"

# ---- the auditor returns it ----
check_eq "aud1 returns version 1 with a comment: 200, a draft again" "200 1 draft" \
  "$(req "$T/r.json" "$A1" POST "$RET" -d "$(cbody "$C1")") $(jget "$T/r.json" 'd["version"]') $(jget "$T/r.json" 'd["status"]')"
check_eq "... the comment in the report's returns (version, auditor, reader)" "1 aud1 rd1 True" \
  "$(jget "$T/r.json" '" ".join(map(str, [d["returns"][0]["version"], d["returns"][0]["by"], d["returns"][0]["to"], d["returns"][0]["comment"] == sys.argv[3]]))' "$C1")"
check_eq "the worklist item is rd1's again (claimed, a live lease)" "claimed rd1 True" \
  "$(req "$T/x.json" "$R1" GET "/api/v1/worklists/imaging?mine=true" >/dev/null; jget "$T/x.json" '" ".join(map(str, [[i["state"], i["claimed_by"], i["lease_until_ms"] > 0] for i in d["items"] if i["study"] == sys.argv[3]][0]))' "$S" | tr -d "[]',")"
check_eq "rd1 reads the draft: the signed text back, a new revision, the comment, version 1 kept" "draft 脑实质密度均匀。 2 True 1 preliminary" \
  "$(req "$T/g.json" "$R1" GET "$R/$ID" >/dev/null; jget "$T/g.json" '" ".join(map(str, [d["status"], d["draft"]["findings"], d["draft"]["rev"], d["returns"][0]["comment"] == sys.argv[3], len(d["versions"]), d["versions"][0]["status"]]))' "$C1")"
check_eq "the township technician sees no comment (signed versions only)" "200 False" \
  "$(req "$T/g.json" "$T1" GET "$R/$ID") $(jget "$T/g.json" 'str("returns" in d)')"
check_eq "returning again: 409 nothing_to_return" "409 nothing_to_return" \
  "$(req "$T/e.json" "$A1" POST "$RET" -d "$(cbody x)") $(err "$T/e.json")"
check_eq "co-signing the returned version: 409 nothing_to_cosign" "409 nothing_to_cosign" \
  "$(req "$T/e.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}") $(err "$T/e.json")"
check_eq "rd2 (no claim) cannot edit the returned draft: 409 not_claim_holder" "409 not_claim_holder" \
  "$(req "$T/e.json" "$R2" PUT "$R/$ID" -d "$(body 2 x y)") $(err "$T/e.json")"
check_eq "a save from the revision before the return: 409 stale_rev" "409 stale_rev" \
  "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d "$(body 1 x y)") $(err "$T/e.json")"
check_eq "rd1 revises the draft: rev 3" "200 3" \
  "$(req "$T/s.json" "$R1" PUT "$R/$ID" -d "$(body 2 '脑实质密度均匀，双侧基底节区未见异常。与外院2025-06-01片比较无变化。' '未见异常。')") $(jget "$T/s.json" 'd["rev"]')"
check_eq "rd1 signs again: version 2, preliminary, superseding version 1" "200 2 preliminary 1" \
  "$(req "$T/s.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\", \"rev\": 3}") $(jget "$T/s.json" 'd["version"]') $(jget "$T/s.json" 'd["status"]') $(jget "$T/s.json" 'd["versions"][1]["supersedes"]')"
check_eq "the item is reported again" reported "$(req "$T/x.json" "$A1" GET "/api/v1/exams/$S" >/dev/null; jget "$T/x.json" 'd["state"]')"
check_eq "aud1 co-signs: version 3 final" "200 3 final" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["version"]') $(jget "$T/s.json" 'd["status"]')"
check_eq "... the comment is still in the history" 1 "$(jget "$T/s.json" 'len(d["returns"])')"
check "the final version carries the revised text" \
  $PY -c 'import json,sys,base64; d=json.load(open(sys.argv[1])); assert "外院" in d["signed"]["content"]["findings"]' "$T/s.json"

# ---- a reader's pending amendment returned ----
check_eq "rd1 amends the final report: pending version 4 (imaging needs a co-signature)" "200 4 final" \
  "$(req "$T/s.json" "$R1" POST "$R/$ID/amend" -d "{\"pin\": \"$PIN\", \"impression\": \"未见明显异常。\"}") $(jget "$T/s.json" 'd["pending"]') $(jget "$T/s.json" 'd["status"]')"
check_eq "aud1 returns the amendment: the final version stays in force, nothing pending" "200 4 final None 3" \
  "$(req "$T/r.json" "$A1" POST "$RET" -d "$(cbody '修改理由不充分。')") $(jget "$T/r.json" 'd["version"]') $(jget "$T/r.json" 'd["status"]') $(jget "$T/r.json" 'd["pending"]') $(jget "$T/r.json" 'd["current"]')"
check_eq "... the worklist item stays final" final "$(req "$T/x.json" "$A1" GET "/api/v1/exams/$S" >/dev/null; jget "$T/x.json" 'd["state"]')"
check_eq "a final report with nothing pending: 409" "409 nothing_to_return" \
  "$(req "$T/e.json" "$A1" POST "$RET" -d "$(cbody x)") $(err "$T/e.json")"

# ---- the event stream carries the return; the audit log the act ----
curl -sN --max-time 3 -H "Authorization: Bearer $R1" -H "Last-Event-ID: 0" "$U/api/v1/events" >"$T/ev.txt" || true
check "a \"returned\" event for rd1 in the stream" grep -q '^event: returned' "$T/ev.txt"
check "returns are audited (success and refusals)" bash -c \
  "grep -q '\"action\":\"report-return\".*\"outcome\":\"success\"' $DATA/audit/audit-*.jsonl &&
   grep -q '\"action\":\"report-return\".*\"outcome\":\"denied\"' $DATA/audit/audit-*.jsonl"

# ---- an expired session ----
check_eq "after logout the token is refused: 401" "401" \
  "$(req "$T/e.json" "$A1" POST /api/v1/logout >/dev/null; req "$T/e.json" "$A1" GET $TP)"

finish
