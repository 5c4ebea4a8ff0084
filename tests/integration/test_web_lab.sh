#!/usr/bin/env bash
# Lab results in a real browser (decisions 0035, 0041; pages of decision
# 0033): Debian chromium driven by puppeteer-core (tests/js/web/lab.mjs)
# against a real huren serving web/, fed ORU^R01 messages over MLLP by
# huren-hl7-send: township1's LIS sends a metabolic panel with a critical
# potassium (HH; the review rule routes it to the county lab center) and a
# glucose/sodium report final at the township whose sodium is later
# corrected; township2's LIS sends one of its own. The township1 technician
# sees both in the 检验结果 tab and the lab result table with the HH flag in
# red and the corrected sodium's earlier value; township2's technician sees
# neither (list and direct link). The lab reader claims the reviewed report,
# the reading screen shows the lab view instead of the viewer, he signs.
# A doctor of township2 finds the results by national ID on the recognition
# page, opens the potassium in the lab view and accepts it, rejects the
# sodium with a reason. Screenshots: $HUREN_BUILD_DIR/screenshots/lab/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
JS=$SRC/tests/js
SEND=$BUILD/huren-hl7-send
if [ ! -d "$JS/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
fi

PIN=246810
NID=11010519491231002X
port=$(free_port)
cfg=$(write_config wl "$port")
HP=$(free_port)
U="http://127.0.0.1:$(http_port wl)"
M=$T/msgs
mkdir -p "$M" "$T/web"
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
c["lab"] = {"facilities": {"T1LAB": "township1", "T2LAB": "township2"},
            "review": [{"hospitals": ["township1"], "tests": ["2823-3"], "center": "lab",
                        "priority": "urgent"}]}
c["recognition"] = {"qc": [{"center": "lab", "items": "*", "passed_from": "2020-01-01",
                            "passed_to": "2099-12-31"}]}
json.dump(c, open(cfg, "w"), ensure_ascii=False, indent=1)
PY
add_user "$cfg" tech1 tech1-password-1 technician township1
add_user "$cfg" tech2 tech2-password-1 technician township2
add_user "$cfg" labr labr-password-1 reader county lab
add_user "$cfg" extb extb-password-1 external township2
signing_key "$T/wl/data" labr "$PIN"

TODAY=$(date +%Y%m%d)
# msg FILE CONTROL_ID FACILITY FILLER OBR4 OBR25 OBX...
msg() {
  $PY - "$TODAY" "$NID" "$@" <<'PY'
import sys
today, nid, f, cid, fac, filler, obr4, st = sys.argv[1:9]
obx = sys.argv[9:]
segs = [
  f"MSH|^~\\&|LIS|{fac}|HUREN|HUB|{today}101500||ORU^R01^ORU_R01|{cid}|P|2.5.1|||||CHN|UNICODE UTF-8",
  f"PID|1||P{filler}^^^^MR~{nid}^^^^ID||王^五||19800202|F",
  f"OBR|1|PL{filler}|{filler}|{obr4}|||{today}080000|||||||||||||||{today}101000|||{st}",
] + [f"OBX|{i + 1}|{x}" for i, x in enumerate(obx)]
open(f, "wb").write(("\r".join(segs) + "\r").encode())
PY
}
msg "$M/k.hl7" T1-K1 T1LAB F100 "BMP^基础代谢^L" F \
  "NM|2823-3^钾^LN||6.9|mmol/L|3.5-5.3|HH|||F|||${TODAY}080000|||||||||检验科" \
  "NM|2951-2^钠^LN||140|mmol/L|137-147|N|||F|||${TODAY}080000|||||||||检验科"
msg "$M/g1.hl7" T1-G1 T1LAB F200 "GLU^血糖电解质^L" F \
  "NM|2345-7^葡萄糖^LN||2.1|mmol/L|3.9-6.1|L|||F|||${TODAY}081000" \
  "NM|2951-2^钠^LN||150|mmol/L|137-147|H|||F|||${TODAY}081000"
msg "$M/g2.hl7" T1-G2 T1LAB F200 "GLU^血糖电解质^L" C \
  "NM|2345-7^葡萄糖^LN||2.1|mmol/L|3.9-6.1|L|||F|||${TODAY}081000" \
  "NM|2951-2^钠^LN||141|mmol/L|137-147|N|||C|||${TODAY}090000"
msg "$M/t2.hl7" T2-1 T2LAB F300 "BMP^基础代谢^L" F \
  "NM|2823-3^钾^LN||4.1|mmol/L|3.5-5.3|N|||F|||${TODAY}080000"
sed -i "s/~$NID^^^^ID//" "$M/t2.hl7" # another patient

start_huren wl "$cfg"
wait_port "$HP" 30
check_eq "township1: the critical potassium: AA" "AA T1-K1" "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/k.hl7" 2>/dev/null)"
check_eq "township1: glucose/sodium: AA" "AA T1-G1" "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/g1.hl7" 2>/dev/null)"
check_eq "township1: the sodium corrected: AA" "AA T1-G2" "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/g2.hl7" 2>/dev/null)"
check_eq "township2: AA" "AA T2-1" "$("$SEND" --port "$HP" --bind 127.0.0.3 "$M/t2.hl7" 2>/dev/null)"
uid() {
  $PY -c 'import hashlib,sys; d=hashlib.sha256("|".join(sys.argv[1:4]).encode()).digest(); print("2.25.%d" % int.from_bytes(d[:16], "big"))' "$@"
}
UK=$(uid township1 F100 BMP)
UG=$(uid township1 F200 GLU)
U2=$(uid township2 F300 BMP)
check_eq "the potassium report is on the lab worklist, ready" "lab ready LAB" \
  "$(rcli wl HGET "hr:wl:{$UK}" center) $(rcli wl HGET "hr:wl:{$UK}" state) $(rcli wl HGET "hr:wl:{$UK}" modality)"
check_eq "the glucose report is final at the township" 0 "$(rcli wl EXISTS "hr:wl:{$UG}")"
check_eq "the lab view is served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/lab/lab.js")"

if HUREN_URL=$U WEB_UK=$UK WEB_UG=$UG WEB_U2=$U2 WEB_NID=$NID WEB_PIN=$PIN WEB_TMP=$T/web \
  timeout 300 node "$JS/web/lab.mjs" >"$T/web.log" 2>&1; then
  pass "browser: lab results (tests/js/web/lab.mjs)"
else
  fail "browser: lab results (tests/js/web/lab.mjs)"
fi
sed 's/^/    /' "$T/web.log"
check_eq "the lab report is signed: its worklist item is no longer ready" 0 \
  "$(rcli wl HGET "hr:wl:{$UK}" state | grep -c '^ready$')"
check_eq "the recognition decisions are stored with the lab report" 2 \
  "$(rcli wl KEYS "hr:rec:{$UK}:dec:*" | wc -l)"
check "the lab reads are audited" bash -c "grep -h '\"action\":\"lab-report\"' '$T/wl/data'/audit/* | grep -q '\"outcome\":\"success\"'"
check "... tech2's attempt as denied" bash -c "grep -h '\"action\":\"lab-report\"' '$T/wl/data'/audit/* | grep -q '\"outcome\":\"denied\"'"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
