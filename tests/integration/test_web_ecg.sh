#!/usr/bin/env bash
# The ECG reading view in a real browser (decision 0038): Debian chromium
# driven by puppeteer-core (tests/js/web/ecg.mjs) against a real huren
# serving web/: township1 stores a generated chest-pain 12-lead ECG
# (storescu; pydicom fixture tests/tools/ecg_fixture.py); the ECG center's
# reader finds it stat on the worklist, claims it, and the reading screen
# shows the ECG view instead of the OHIF frame beside the report editor:
# the 12 leads in the 3x4 layout and the rhythm strip are drawn (trace
# pixels in every cell, the grid dominating), gain 20 mm/mV doubles the
# trace, speed 50 mm/s doubles the cells, the calipers give 2000 ms / 30 bpm
# / 1 mV for two clicks 200 px and 40 px apart; the township technician sees
# the same view read-only (no editor); once the reader has signed the report
# with the recognition item ECG-12, a doctor of township2 (external) finds
# the result by national ID on the recognition page and sees the same view,
# read-only. Screenshots:
# $HUREN_BUILD_DIR/screenshots/ecg/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
JS=$SRC/tests/js
if [ ! -d "$JS/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
fi

PIN=135790
NID=11010519491231002X
port=$(free_port)
cfg=$(write_config we "$port")
U="http://127.0.0.1:$(http_port we)"
day() { $PY -c 'import datetime,sys; print(datetime.date.today() + datetime.timedelta(days=int(sys.argv[1])))' "$1"; }
$PY - "$cfg" "$(day -10)" "$(day 100)" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["persons"] = {"sources": [{"hospital": "township1", "where": "other_patient_ids",
                             "issuer": "CN-NID", "id_type": "national_id"}]}
c["recognition"] = {
    "items": [{"code": "ECG-12", "name": "12导联心电图", "category": "ecg",
               "match": {"modalities": ["ECG"]}, "scope": "community", "validity_days": 7,
               "hr_mark": "鄂HR", "price_yuan": 25}],
    "qc": [{"center": "ecg", "items": ["ECG-12"], "passed_from": sys.argv[2],
            "passed_to": sys.argv[3]}]}
json.dump(c, open(p, "w"), ensure_ascii=False, indent=1)
PY
add_user "$cfg" recg recg-password-1 reader county ecg
add_user "$cfg" tech1 tech1-password-1 technician township1
add_user "$cfg" extb extb-password-1 external township2
check "huren ca init" bash -c "\"$HUREN\" ca init --config \"$cfg\" >/dev/null"
check "keygen recg" bash -c "printf '%s\n' '$PIN' | '$HUREN' keygen --config '$cfg' --user recg --alg es256 --pin-stdin >/dev/null"
start_huren we "$cfg"
wait_port "$(http_port we)" 30

mkdir -p "$T/in" "$T/web"
check "generate a chest-pain 12-lead ECG" \
  $PY "$SRC/tests/tools/ecg_fixture.py" gen "$T/in/ecg.dcm" --procedure "胸痛 chest pain" --patient-id WE1
check "with the patient's national ID" \
  dcmodify -nb -i "(0010,1002)[0].(0010,0020)=$NID" -i "(0010,1002)[0].(0010,0021)=CN-NID" "$T/in/ecg.dcm"
check "township1 stores it" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/in/ecg.dcm"
S=$(dcmdump +P 0020,000D "$T/in/ecg.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')
RE=$(login_token "$U" recg recg-password-1)
for _ in $(seq 1 40); do
  [ "$(rcli we HGET "hr:wl:{$S}" state)" = ready ] && break
  sleep 0.5
done
check_eq "it is ready on the ECG center's worklist, stat" "ready ecg stat" \
  "$(rcli we HGET "hr:wl:{$S}" state) $(rcli we HGET "hr:wl:{$S}" center) $(rcli we HGET "hr:wl:{$S}" priority)"
check_eq "the ECG module is served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/ecg/ecg.js")"

# what the reader does through the API once the page has claimed the exam:
# the draft gets the recognition item and is signed (final: the ECG center
# has no audit sign-off)
cat >"$T/sign.sh" <<SH
set -euo pipefail
c() { curl -sf -o "$T/sign.out" -H "Authorization: Bearer $RE" "\$@"; }
c "$U/api/v1/reports?study=$S"
id=\$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["reports"][0]["id"])' "$T/sign.out")
c -X PUT "$U/api/v1/reports/\$id" -d '{"rev": 0, "findings": "窦性心律，心率75次/分。", "impression": "正常心电图。", "recognition": ["ECG-12"]}'
c -X POST "$U/api/v1/reports/\$id/sign" -d '{"pin": "$PIN"}'
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"] == "final", d' "$T/sign.out"
SH

if HUREN_URL=$U WEB_STUDY=$S WEB_NID=$NID WEB_SIGN_CMD="bash $T/sign.sh" WEB_TMP=$T/web timeout 300 node "$JS/web/ecg.mjs" >"$T/web.log" 2>&1; then
  pass "browser: the ECG reading view (tests/js/web/ecg.mjs)"
else
  fail "browser: the ECG reading view (tests/js/web/ecg.mjs)"
fi
sed 's/^/    /' "$T/web.log"
check "the views' reads are audited as ecg" bash -c "grep -h '\"ecg\"' '$T/we/data'/audit/* | grep -q '\"outcome\":\"success\"'"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
