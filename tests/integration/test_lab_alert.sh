#!/usr/bin/env bash
# End to end: an HH potassium over MLLP becomes a critical-value alert
# (decisions 0035, 0037, 0040). Township1's LIS sends an ORU^R01 with
# huren-hl7-send; the AA comes only after the alert exists (raised before
# the AA); a resend raises nothing twice; township1's technician sees the
# alert in the register and on the SSE stream, its RIS (mllp_listener.py)
# gets the critical value back as an ORU over MLLP; the read-back must
# repeat number and unit ("6.3 mmol/L", "6.8" and "收到" are refused,
# "钾 6.8 mmol/l" acknowledges); township2 cannot see it (404); a lab
# report without a reading center escalates to alerts.duty.lab.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SEND=$BUILD/huren-hl7-send
HERE=$(cd "$(dirname "$0")" && pwd)

port=$(free_port)
cfg=$(write_config la "$port")
HP=$(free_port)
U="http://127.0.0.1:$(http_port la)"
M=$T/msgs
RIS=$(free_port)
mkdir -p "$M" "$T/ris"
$PY "$HERE/mllp_listener.py" --port "$RIS" --dir "$T/ris" &
PIDS+=($!)
for _ in $(seq 1 50); do [ -f "$T/ris/port" ] && break; sleep 0.1; done
$PY - "$cfg" "$HP" "$RIS" <<'PY'
import json, sys
cfg, hp, ris = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open(cfg))
c["hl7"] = {"enabled": True, "listen": "127.0.0.1", "port": hp, "facility": "HUB"}
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["addresses"] = ["127.0.0.2"]
c["lab"] = {"facilities": {"T1LAB": "township1"}}
c["alerts"] = {"poll_ms": 200, "hospitals": {"township1": {
    "ack_timeout_s": 600,
    "contacts": [{"user": "tech1", "channels": ["sse", "hl7"]}],
    "hl7": {"host": "127.0.0.1", "port": ris, "receiving_facility": "T1RIS"}}},
  "duty": {"lab": "labduty"}}
json.dump(c, open(cfg, "w"), indent=1)
PY
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" labduty 'labduty-password-1' reader county lab

$PY - "$M/k.hl7" <<'PY'
import sys
segs = [
  "MSH|^~\\&|LIS|T1LAB|HUREN|HUB|20261203101500||ORU^R01^ORU_R01|T1-K0001|P|2.5.1|||||CHN|UNICODE UTF-8",
  "PID|1||PK100^^^^MR||王^五||19800202|F",
  "OBR|1|PLK100|K100|BMP^Basic metabolic panel^L|||20261203100000|||||||||||||||20261203101000|||F",
  "OBX|1|NM|2823-3^Potassium^LN||6.8|mmol/L|3.5-5.3|HH|||F|||20261203100000",
  "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|137-147|N|||F|||20261203100000",
]
open(sys.argv[1], "wb").write(("\r".join(segs) + "\r").encode())
PY

start_huren la "$cfg"
wait_port "$HP" 30
T1=$(login_token "$U" tech1 tech1-password-1); T2=$(login_token "$U" tech2 tech2-password-1)
LD=$(login_token "$U" labduty labduty-password-1)
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
wait_for() {
  local what=$1 secs=$2 cond=$3
  for _ in $(seq 1 $((secs * 10))); do eval "$cond" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for: $what" >&2
  return 1
}
curl -s -N --max-time 30 -H "Authorization: Bearer $T1" "$U/api/v1/alerts/events" >"$T/sse.txt" &
PIDS+=($!)
sleep 0.5

check_eq "township1's LIS sends the HH potassium: AA" "AA T1-K0001" \
  "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/k.hl7" 2>/dev/null)"
A=/api/v1/alerts
check_eq "at the AA the alert exists: tech1 sees one" "200 1" \
  "$(req "$T/l.json" "$T1" GET "$A") $(jget "$T/l.json" 'len(d["alerts"])')"
check_eq "... lab, LOINC 2823-3 Potassium, 6.8 mmol/L, HH, range 3.5-5.3" "lab 2823-3 Potassium 6.8 mmol/L HH True" \
  "$(jget "$T/l.json" '(lambda a: " ".join([a["kind"], a["item"], a["item_name"], a["value"], a["flag"], str("3.5-5.3" in a["detail"])]))(d["alerts"][0])')"
check_eq "... for township1, patient 王^五, first tech1 then the lab duty doctor" "township1 王^五 tech1 labduty" \
  "$(jget "$T/l.json" '(lambda a: " ".join([a["hospital"], a["patient_name"]] + [s["user"] for s in a["steps"]]))(d["alerts"][0])')"
AID=$(jget "$T/l.json" 'd["alerts"][0]["id"]')
check_eq "a resend: AA again, still one alert" "AA T1-K0001 1" \
  "$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/k.hl7" 2>/dev/null) $(rcli la ZCARD hr:alr:ix:time)"
check "the alert is on tech1's SSE stream" wait_for "sse" 10 "grep -q '$AID' '$T/sse.txt'"
check "township1's RIS gets the critical value over MLLP" wait_for "ris" 10 "grep -q '$AID' '$T/ris/messages.jsonl'"
check_eq "... OBX-3 2823-3, OBX-5 6.8 mmol/L, OBX-8 HH" "2823-3 6.8 mmol/L HH" \
  "$($PY -c 'import json,sys; m=[json.loads(l) for l in open(sys.argv[1])][0]; o=[s.split("|") for s in m["text"].split("\r") if s.startswith("OBX|")][0]; print(o[3].split("^")[0], o[5], o[8])' "$T/ris/messages.jsonl")"
check_eq "township2 cannot see it: 404" 404 "$(req "$T/e.json" "$T2" GET "$A/$AID")"
for rb in '6.3 mmol/L' '6.8' '收到' '6.8 mg/dL'; do
  check_eq "read-back \"$rb\" refused: 422" 422 "$(req "$T/e.json" "$T1" POST "$A/$AID/ack" -d "{\"readback\": \"$rb\"}")"
done
check_eq "read-back \"钾 6.8 mmol/l\": acknowledged" "200 acknowledged 4" \
  "$(req "$T/k.json" "$T1" POST "$A/$AID/ack" -d '{"readback": "钾 6.8 mmol/l"}') $(jget "$T/k.json" 'd["state"]') $(jget "$T/k.json" 'd["readback_refused"]')"
check_eq "the lab duty doctor did not need to see it: not in his list" 0 \
  "$(req "$T/d.json" "$LD" GET "$A?hospital=me" >/dev/null; jget "$T/d.json" 'len(d["alerts"])')"
check "graceful stop" stop_huren "$HUREN_PID"
finish
