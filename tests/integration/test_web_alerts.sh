#!/usr/bin/env bash
# Critical values in a real browser (decision 0040; tests/js/web/alerts.mjs):
# township1's technician has the application open when a reader signs a
# CT report flagged critical; the red banner appears live, the read-back
# dialog refuses "收到" and acknowledges the value; the register shows it
# with its step log; township2 sees nothing. Screenshots:
# $HUREN_BUILD_DIR/screenshots/alerts/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810
JS=$SRC/tests/js
[ -d "$JS/node_modules/puppeteer-core" ] || npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
[ -d "$SRC/web/node_modules/preact" ] || npm ci --prefix "$SRC/web" >/dev/null
export HUREN_BUILD_DIR=$BUILD

port=$(free_port)
cfg=$(write_config wal "$port")
U="http://127.0.0.1:$(http_port wal)"
DATA=$T/wal/data
$PY - "$cfg" <<'PYCFG'
import json, sys
c = json.load(open(sys.argv[1]))
c["alerts"] = {"poll_ms": 200, "hospitals": {"township1": {
    "contacts": [{"user": "tech1", "name": "值班护士", "channels": ["sse"]}]}}}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYCFG
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" office 'office-password-1' office county
signing_key "$DATA" rd1 "$PIN"
start_huren wal "$cfg"
wait_port "$(http_port wal)" 30
R1=$(login_token "$U" rd1 rd1-password-1); T1=$(login_token "$U" tech1 tech1-password-1)
"$GEN" --out "$T/ct" --modality CT --instances 1 --bytes 2048 --seed 81 --patient-id WAL1 \
  --charset utf8 --patient-name '孙^八' >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
S=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
VALUE='右侧大量气胸'
cat >"$T/sign.sh" <<SH
set -euo pipefail
c() { curl -sf -o "$T/sign.out" "\$@"; }
c -H "Authorization: Bearer $T1" -X POST "$U/api/v1/exams/$S/complete"
c -H "Authorization: Bearer $R1" -X POST "$U/api/v1/worklists/imaging/items/$S/claim"
c -H "Authorization: Bearer $R1" -X POST "$U/api/v1/reports" -d '{"study": "$S"}'
ID=\$($PY -c 'import json; print(json.load(open("$T/sign.out"))["id"])')
c -H "Authorization: Bearer $R1" -X PUT "$U/api/v1/reports/\$ID" \
  -d '{"rev": 0, "findings": "右侧胸腔大量积气，纵隔左移。", "impression": "$VALUE\n建议立即处理。", "critical": true}'
c -H "Authorization: Bearer $R1" -X POST "$U/api/v1/reports/\$ID/sign" -d '{"pin": "$PIN"}'
SH
mkdir -p "$T/web"
if HUREN_URL=$U WEB_SIGN_CMD="bash $T/sign.sh" WEB_VALUE=$VALUE WEB_TMP=$T/web \
  timeout 300 node "$JS/web/alerts.mjs" >"$T/web.log" 2>&1; then
  pass "browser: the critical-value banner, read-back dialog and register (tests/js/web/alerts.mjs)"
else
  fail "browser: the critical-value banner, read-back dialog and register (tests/js/web/alerts.mjs)"
fi
sed 's/^/    /' "$T/web.log"
curl -s -H "Authorization: Bearer $T1" "$U/api/v1/alerts" >"$T/l.json"
check_eq "through the API: acknowledged by tech1 with the read-back" "acknowledged tech1 1" \
  "$($PY -c 'import json,sys; a=json.load(open(sys.argv[1]))["alerts"][0]; print(a["state"], a["acked_by"], a["readback_refused"])' "$T/l.json")"
check "graceful stop" stop_huren "$HUREN_PID"
finish
