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
# the same view read-only (no editor). Screenshots:
# $HUREN_BUILD_DIR/screenshots/ecg/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
JS=$SRC/tests/js
if [ ! -d "$JS/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
fi

port=$(free_port)
cfg=$(write_config we "$port")
U="http://127.0.0.1:$(http_port we)"
add_user "$cfg" recg recg-password-1 reader county ecg
add_user "$cfg" tech1 tech1-password-1 technician township1
start_huren we "$cfg"
wait_port "$(http_port we)" 30

mkdir -p "$T/in" "$T/web"
check "generate a chest-pain 12-lead ECG" \
  $PY "$SRC/tests/tools/ecg_fixture.py" gen "$T/in/ecg.dcm" --procedure "胸痛 chest pain" --patient-id WE1
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

if HUREN_URL=$U WEB_STUDY=$S WEB_TMP=$T/web timeout 300 node "$JS/web/ecg.mjs" >"$T/web.log" 2>&1; then
  pass "browser: the ECG reading view (tests/js/web/ecg.mjs)"
else
  fail "browser: the ECG reading view (tests/js/web/ecg.mjs)"
fi
sed 's/^/    /' "$T/web.log"
check "the views' reads are audited as ecg" bash -c "grep -h '\"ecg\"' '$T/we/data'/audit/* | grep -q '\"outcome\":\"success\"'"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
