#!/usr/bin/env bash
# The receiving doctor's page (结果互认) in headless Chromium
# (tests/js/web/recognition.mjs; decisions 0027, 0032): township1's CT and
# DX carry the patient's national ID; the CT's report (CT-HEAD, QC passed)
# and the DX's (XR-CHEST-PA, QC lapsed) are final; a doctor of township2
# (role external) is sent to login without a session, logs in, finds the
# person by national ID, opens the CT's result (report text, verified
# signature), opens its images in OHIF, and records a rejection with a
# reason, which the API then lists. Screenshots:
# $HUREN_BUILD_DIR/screenshots/recognition/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=135790
NID=11010519491231002X
[ -d "$SRC/tests/js/node_modules/puppeteer-core" ] || npm ci --prefix "$SRC/tests/js" >/dev/null
[ -d "$SRC/web/node_modules/preact" ] || npm ci --prefix "$SRC/web" >/dev/null
export HUREN_BUILD_DIR=$BUILD

port=$(free_port)
cfg=$(write_config wrg "$port")
U="http://127.0.0.1:$(http_port wrg)"
DATA=$T/wrg/data
day() { $PY -c 'import datetime,sys; print(datetime.date.today() + datetime.timedelta(days=int(sys.argv[1])))' "$1"; }
$PY - "$cfg" "$(day -10)" "$(day 100)" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["persons"] = {"sources": [{"hospital": "township1", "where": "other_patient_ids",
                             "issuer": "CN-NID", "id_type": "national_id"}]}
c["recognition"] = {
    "items": [
        {"code": "CT-HEAD", "name": "头颅CT平扫", "category": "imaging",
         "match": {"modalities": ["CT"]}, "scope": "community", "validity_days": 30,
         "hr_mark": "鄂HR", "price_yuan": "260.00"},
        {"code": "XR-CHEST-PA", "name": "胸部正位片", "category": "imaging",
         "match": {"modalities": ["DX", "CR"]}, "scope": "city", "validity_days": 30,
         "hr_mark": "鄂HR", "price_yuan": 60}],
    "qc": [{"center": "imaging", "items": ["CT-HEAD"], "passed_from": sys.argv[2],
            "passed_to": sys.argv[3]}]}
json.dump(c, open(p, "w"), ensure_ascii=False, indent=1)
PY
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" aud1 'aud1-password-1' auditor county imaging
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" extb 'extb-password-1' external township2
# signing keys from the regional CA, so that huren verifies the chain
check "huren ca init" bash -c "\"$HUREN\" ca init --config \"$cfg\" >/dev/null"
for u in rd1 aud1; do
  check "keygen $u" bash -c "printf '%s\n' '$PIN' | '$HUREN' keygen --config '$cfg' --user $u --alg es256 --pin-stdin >/dev/null"
done
start_huren wrg "$cfg"
wait_port "$(http_port wrg)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
RD=$(login rd1); AU=$(login aud1); T1=$(login tech1); EB=$(login extb)
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 131072 --seed 61 --patient-id WRG1 \
  --print-uids >"$T/ct.uids"
"$GEN" --out "$T/dx" --modality DX --instances 1 --bytes 131072 --seed 62 --patient-id WRG1 \
  --print-uids >"$T/dx.uids"
for d in ct dx; do
  dcmodify -nb -i "(0010,1002)[0].(0010,0020)=$NID" -i "(0010,1002)[0].(0010,0021)=CN-NID" "$T/$d"/*.dcm
done
check "township1 sends a CT and a DX" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/dx"
CT=$(sed -n 1p "$T/ct.uids" | cut -d' ' -f1); DX=$(sed -n 1p "$T/dx.uids" | cut -d' ' -f1)
R=/api/v1/reports
FIND='颅内未见明显出血及占位，脑室系统无扩大。'
report() { # STUDY ITEM -> report id
  req "$T/c.json" "$T1" POST "/api/v1/exams/$1/complete" >/dev/null
  req "$T/c.json" "$RD" POST "/api/v1/worklists/imaging/items/$1/claim" >/dev/null
  req "$T/c.json" "$RD" POST $R -d "{\"study\": \"$1\"}" >/dev/null
  local id; id=$(jget "$T/c.json" 'd["id"]')
  $PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": sys.argv[1], "impression": "未见异常。", "recognition": [sys.argv[2]]}))' \
    "$FIND" "$2" >"$T/b.json"
  req "$T/s.json" "$RD" PUT "$R/$id" -d @"$T/b.json" >/dev/null
  req "$T/s.json" "$RD" POST "$R/$id/sign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  req "$T/s.json" "$AU" POST "$R/$id/cosign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  echo "$id"
}
CTR=$(report "$CT" CT-HEAD); DXR=$(report "$DX" XR-CHEST-PA)
check_eq "both reports are final" "final final" \
  "$(req "$T/a.json" "$RD" GET "$R/$CTR" >/dev/null; jget "$T/a.json" 'd["status"]') $(req "$T/a.json" "$RD" GET "$R/$DXR" >/dev/null; jget "$T/a.json" 'd["status"]')"
check_eq "the page is served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/pages/recognition.js")"

out=$(node "$SRC/tests/js/web/recognition.mjs" "$U" extb extb-password-1 "$NID" "$CTR~CT-HEAD" "$CT" \
  "$DXR~XR-CHEST-PA" "$FIND" "$T" 2>&1) && st=0 || st=$?
echo "$out" | sed 's/^/    /'
check_eq "the browser test passes" 0 "$st"
check_eq "the API lists the rejection with its reason and note" "reject condition_changed 患者近期症状加重 extb" \
  "$(req "$T/d.json" "$EB" GET "/api/v1/recognition/$CTR~CT-HEAD/decisions" >/dev/null
     jget "$T/d.json" '" ".join(d["decisions"][0][k] for k in ("decision", "reason", "text", "user")) if len(d["decisions"]) == 1 else d' 2>&1)"
check "the verification was audited" bash -c "grep -h '\"report-verify\"' '$DATA'/audit/* | grep -q extb"
check "screenshots written" test -s "$BUILD/screenshots/recognition/03-report.png"
finish
