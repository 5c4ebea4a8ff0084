#!/usr/bin/env bash
# The office and admin pages in headless Chromium (issue 10, decision 0031):
# township1 and the county send exams, a reader signs two final, a stat exam
# goes overdue; tests/js/web/office.mjs (puppeteer-core) logs in as the
# office, an auditor, an admin and a technician and checks what each sees.
# Screenshots: $HUREN_BUILD_DIR/screenshots/office/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810
[ -d "$SRC/tests/js/node_modules/puppeteer-core" ] || npm ci --prefix "$SRC/tests/js" >/dev/null

port=$(free_port)
cfg=$(write_config wo "$port")
$PY - "$cfg" "$SRC/web" <<'PYCFG'
import json, sys
c = json.load(open(sys.argv[1]))
c["web"] = {"root": sys.argv[2]}
c["centers"] = [
  {"id": "imaging", "name": "医学影像中心", "kind": "imaging", "hospital": "county", "audit_signoff": False},
  {"id": "ecg", "name": "心电诊断中心", "kind": "ecg", "hospital": "county"}]
c["routing"] = {"rules": [{"modalities": ["US"], "center": "imaging", "priority": "stat"}],
                "default": {"center": "imaging", "priority": "routine"}}
c["worklist"] = {"turnaround_unit_s": 1, "turnaround_min": {"imaging": {"stat": 2, "routine": 3600}}}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYCFG
U="http://127.0.0.1:$(http_port wo)"
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" aud1 'aud1-password-1' auditor county imaging
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" off1 'off1-password-1' office county
add_user "$cfg" admin 'admin-password-1' admin county
"$HUREN" ca init --config "$cfg" >/dev/null
printf '%s\n' "$PIN" | "$HUREN" keygen --config "$cfg" --user rd1 --alg es256 --pin-stdin >/dev/null
start_huren wo "$cfg"
wait_port "$(http_port wo)" 30
R1=$(login_token "$U" rd1 rd1-password-1); AD=$(login_token "$U" admin admin-password-1)
req() { curl -s -o "$T/r.json" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" "${@:4}" "$U$3"; }
jget() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/r.json" "$1"; }
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }

"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 2048 --seed 81 --patient-id WO1 >/dev/null
"$GEN" --out "$T/mr" --modality MR --bytes 2048 --seed 82 --patient-id WO2 >/dev/null
"$GEN" --out "$T/us" --modality US --bytes 2048 --seed 83 --patient-id WO3 >/dev/null
"$GEN" --out "$T/cr" --modality CR --bytes 2048 --seed 84 --patient-id WO4 >/dev/null
check "township1 sends a CT, an MR and a US" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/mr" "$T/us"
check "the county sends a CR" storescu -aet COUNTY -aec HUREN +sd 127.0.0.1 "$port" "$T/cr"
CT=$(uid "$T/ct"); MR=$(uid "$T/mr"); US=$(uid "$T/us"); CR=$(uid "$T/cr")
for s in "$CT" "$MR" "$US" "$CR"; do req "$AD" POST "/api/v1/exams/$s/complete" >/dev/null; done
sign() {
  req "$R1" POST "/api/v1/worklists/imaging/items/$1/claim" >/dev/null
  req "$R1" POST /api/v1/reports -d "{\"study\": \"$1\"}" >/dev/null
  local id; id=$(jget id)
  req "$R1" PUT "/api/v1/reports/$id" -d '{"rev": 0, "findings": "未见异常。", "impression": "正常。"}' >/dev/null
  req "$R1" POST "/api/v1/reports/$id/sign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  jget status
}
check_eq "rd1 signs the CT" final "$(sign "$CT")"
check_eq "rd1 signs the CR" final "$(sign "$CR")"
for _ in $(seq 1 100); do [ "$(rcli wo HGET "hr:wl:{$US}" overdue)" = 1 ] && break; sleep 0.1; done
check_eq "the US is overdue" 1 "$(rcli wo HGET "hr:wl:{$US}" overdue)"
sleep 1.2 # audit records reach the file

SHOTS=$BUILD/screenshots/office

EXPECT=$($PY -c 'import json,sys; print(json.dumps({"received": 4, "remote": 1, "township1": 3, "finalized": 2, "overdue_study": sys.argv[1], "ct_study": sys.argv[2]}))' "$US" "$CT")
if URL=$U HUREN_BUILD_DIR=$BUILD TMP_DIR=$T DOWNLOADS=$T/downloads EXPECT=$EXPECT \
  node "$SRC/tests/js/web/office.mjs"; then
  pass "the browser test of the office and admin pages"
else
  fail "the browser test of the office and admin pages"
fi
check "screenshots written" test -s "$SHOTS/01-office-statistics-zh.png"
check "graceful stop" stop_huren "$HUREN_PID"
finish
