#!/usr/bin/env bash
# Critical values (危急值) closed loop (decision 0040) with a real huren,
# storescu, curl, a real MLLP peer (mllp_listener.py) and a webhook receiver
# (webhook_receiver.py): a reader signs a CT report flagged critical -> an
# alert exists for township1; its users see it in the register and on the
# SSE stream (township2's stream does not), the HL7 contact's RIS gets an
# ORU with the value; township1 acknowledges with the read-back (a wrong one
# is refused and counted); the register shows both. A second critical
# report left unacknowledged escalates after alerts' ack_timeout_s to the
# next contact (webhook), then to the imaging center's duty doctor, then
# overdue_final. Hostile: another hospital cannot see nor ack (404), no
# token 401, a session cookie without X-Requested-With 403, garbage bodies
# 400, the office sees no patient names and cannot ack.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810
HERE=$(cd "$(dirname "$0")" && pwd)

port=$(free_port)
cfg=$(write_config al "$port")
U="http://127.0.0.1:$(http_port al)"
DATA=$T/al/data
MLLP_PORT=$(free_port)
mkdir -p "$T/mllp" "$T/hook"
$PY "$HERE/mllp_listener.py" --port "$MLLP_PORT" --dir "$T/mllp" &
PIDS+=($!)
$PY "$HERE/webhook_receiver.py" --dir "$T/hook" &
PIDS+=($!)
for _ in $(seq 1 50); do [ -f "$T/hook/port" ] && [ -f "$T/mllp/port" ] && break; sleep 0.1; done
$PY - "$cfg" "$MLLP_PORT" "$(cat "$T/hook/port")" <<'PYCFG'
import json, sys
c = json.load(open(sys.argv[1]))
c["alerts"] = {"poll_ms": 200, "retry_s": 1, "hospitals": {"township1": {
    "ack_timeout_s": 3,
    "contacts": [{"user": "doc1", "name": "Dr. Li", "channels": ["sse", "hl7"]},
                 {"user": "doc2", "channels": ["webhook"]}],
    "hl7": {"host": "127.0.0.1", "port": int(sys.argv[2]), "receiving_facility": "T1RIS"},
    "webhook": {"url": "http://127.0.0.1:%s/alert" % sys.argv[3]}}},
  "duty": {"imaging": "duty1"}}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYCFG
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" duty1 'duty1-password-1' reader county imaging
add_user "$cfg" recg 'recg-password-1' reader county ecg
add_user "$cfg" doc1 'doc1-password-1' technician township1
add_user "$cfg" doc2 'doc2-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" office 'office-password-1' office county
add_user "$cfg" admin 'admin-password-1' admin county
signing_key "$DATA" rd1 "$PIN"

start_huren al "$cfg"
wait_port "$(http_port al)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
R1=$(login rd1); D1=$(login doc1); D2=$(login doc2); T2=$(login tech2); DU=$(login duty1)
OF=$(login office); RE=$(login recg); AD=$(login admin)
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
wait_for() { # WHAT SECONDS CONDITION
  local what=$1 secs=$2 cond=$3
  for _ in $(seq 1 $((secs * 10))); do eval "$cond" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for: $what" >&2
  return 1
}
uid_of() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }

# SSE streams of doc1 (township1) and tech2 (township2), opened before the alert
curl -s -N --max-time 40 -H "Authorization: Bearer $D1" "$U/api/v1/alerts/events" >"$T/sse1.txt" &
PIDS+=($!)
curl -s -N --max-time 40 -H "Authorization: Bearer $T2" "$U/api/v1/alerts/events" >"$T/sse2.txt" &
PIDS+=($!)
curl -s -N --max-time 40 -H "Authorization: Bearer $D1" "$U/api/v1/events" >"$T/wl1.txt" &
PIDS+=($!)

# ---- a critical CT report of township1 ----
"$GEN" --out "$T/ct" --modality CT --instances 1 --bytes 2048 --seed 71 --patient-id AL1 \
  --charset utf8 --patient-name '赵^六' >/dev/null
"$GEN" --out "$T/ct2" --modality CT --instances 1 --bytes 2048 --seed 72 --patient-id AL2 >/dev/null
check "township1 sends two CTs" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/ct2"
S=$(uid_of "$T/ct"); S2=$(uid_of "$T/ct2")
R=/api/v1/reports
IMPR='左侧张力性气胸，建议立即处理。'
sign_critical() { # STUDY IMPRESSION -> report id
  local study=$1 id
  req "$T/c.json" "$D1" POST "/api/v1/exams/$study/complete" >/dev/null
  req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$study/claim" >/dev/null
  req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$study\"}" >/dev/null
  id=$(jget "$T/c.json" 'd["id"]')
  body=$($PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": "左侧胸腔大量积气。", "impression": sys.argv[1], "critical": True}))' "$2")
  req "$T/s.json" "$R1" PUT "$R/$id" -d "$body" >/dev/null
  req "$T/s.json" "$R1" POST "$R/$id/sign" -d "{\"pin\": \"$PIN\"}" >"$T/sign.status"
  echo "$id"
}
ID=$(sign_critical "$S" "$IMPR")
check_eq "rd1 signs the critical report" 200 "$(cat "$T/sign.status")"
A=/api/v1/alerts
check_eq "doc1 sees one alert in the register" "200 1" \
  "$(req "$T/l.json" "$D1" GET "$A") $(jget "$T/l.json" 'len(d["alerts"])')"
AID=$(jget "$T/l.json" 'd["alerts"][0]["id"]')
check_eq "... kind report, item finding, the impression's first line, flag reader" \
  "report finding $IMPR reader $S $ID" \
  "$(jget "$T/l.json" '" ".join(d["alerts"][0][k] for k in ("kind","item","value","flag","exam","ref"))')"
check_eq "... for township1, first contact doc1 (sse: notified at once)" "township1 doc1 notified" \
  "$(jget "$T/l.json" '" ".join(d["alerts"][0][k] for k in ("hospital","target","state"))')"
check_eq "... the patient's name" "赵^六" "$(jget "$T/l.json" 'd["alerts"][0]["patient_name"]')"
check "the alert is on doc1's SSE stream" wait_for "sse" 10 "grep -q 'event: alert.raised' '$T/sse1.txt' && grep -q '$AID' '$T/sse1.txt'"
check "the HL7 contact's RIS receives the ORU" wait_for "hl7" 10 "grep -q '$AID' '$T/mllp/messages.jsonl'"
$PY - "$T/mllp/messages.jsonl" "$AID" "$IMPR" >"$T/oru.check" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1]) if sys.argv[2] in l][0]
segs = m["text"].split("\r")
f = lambda n: [s.split("|") for s in segs if s.startswith(n + "|")]
msh, obx, pid, obr = f("MSH")[0], f("OBX")[0], f("PID")[0], f("OBR")[0]
print(msh[8], msh[5], m["control_id"].startswith("AL"), obx[5] == sys.argv[3], obx[8], obx[11], obr[25], pid[3].split("^")[0])
PY
check_eq "... ORU^R01 to T1RIS, control id AL…, OBX-5 the value, OBX-8 AA, OBX-11 and OBR-25 F, PID AL1" \
  "ORU^R01^ORU_R01 T1RIS True True AA F F AL1" "$(cat "$T/oru.check")"
check "... logged as delivered in the step log" wait_for "hl7 log" 10 \
  "req '$T/g.json' '$D1' GET '$A/$AID' >/dev/null && jget '$T/g.json' '[e for e in d[\"log\"] if e.get(\"channel\")==\"hl7\" and e[\"ok\"]]' | grep -q hl7"

# ---- hostile ----
check_eq "tech2 (township2) cannot see it: 404" 404 "$(req "$T/e.json" "$T2" GET "$A/$AID")"
check_eq "... nor ack it: 404" 404 "$(req "$T/e.json" "$T2" POST "$A/$AID/ack" -d '{"readback": "左侧张力性气胸，建议立即处理。"}')"
check_eq "... its register is empty" "200 0" "$(req "$T/l2.json" "$T2" GET "$A") $(jget "$T/l2.json" 'len(d["alerts"])')"
check_eq "the ECG reader (another center) cannot see it: 404" 404 "$(req "$T/e.json" "$RE" GET "$A/$AID")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET "$A")"
OLD=$(login doc2)
curl -s -o /dev/null -X POST -H "Authorization: Bearer $OLD" "$U/api/v1/logout"
check_eq "a logged-out (revoked) token: 401" 401 "$(req "$T/e.json" "$OLD" GET "$A/$AID")"
check_eq "... nor on ack: 401" 401 "$(req "$T/e.json" "$OLD" POST "$A/$AID/ack" -d "{\"readback\": \"$IMPR\"}")"
check_eq "a forged token: 401" 401 "$(req "$T/e.json" "garbage-token" GET "$A")"
check_eq "no token on ack: 401" 401 "$(req "$T/e.json" "" POST "$A/$AID/ack" -d '{"readback": "x"}')"
check_eq "an unknown id: 404" 404 "$(req "$T/e.json" "$D1" GET "$A/A000000000000000000000000")"
check_eq "a malformed id: 404" 404 "$(req "$T/e.json" "$D1" GET "$A/..%2F")"
check_eq "garbage body: 400" 400 "$(req "$T/e.json" "$D1" POST "$A/$AID/ack" -d 'nope')"
check_eq "no readback: 400" 400 "$(req "$T/e.json" "$D1" POST "$A/$AID/ack" -d '{}')"
check_eq "a bad state filter: 400" 400 "$(req "$T/e.json" "$D1" GET "$A?state=nope")"
hdrs=$(curl -s -D - -o /dev/null -X POST "$U/api/v1/login" -d '{"user": "doc1", "password": "doc1-password-1"}')
cookie=$(grep -i '^set-cookie: huren_session=' <<<"$hdrs" | sed 's/^[^:]*: *//; s/;.*//' | tr -d '\r')
check_eq "a session cookie without X-Requested-With: 403 csrf" "403 csrf" \
  "$(req "$T/e.json" "" POST "$A/$AID/ack" -H "Cookie: $cookie" -d '{"readback": "x"}') $(jget "$T/e.json" 'd["error"]')"
check_eq "a wrong read-back: 422 readback_mismatch" "422 readback_mismatch" \
  "$(req "$T/e.json" "$D1" POST "$A/$AID/ack" -d '{"readback": "收到"}') $(jget "$T/e.json" 'd["error"]')"
check_eq "the office cannot ack: 403" 403 "$(req "$T/e.json" "$OF" POST "$A/$AID/ack" -d "{\"readback\": \"$IMPR\"}")"
check_eq "the office sees the register without patient names" "200 1 False" \
  "$(req "$T/o.json" "$OF" GET "$A") $(jget "$T/o.json" 'len(d["alerts"])') $(jget "$T/o.json" '"patient_name" in d["alerts"][0]')"

# ---- acknowledgement (session cookie with the CSRF header: the web app's way) ----
RB='左侧张力性气胸 建议立即处理'
check_eq "doc1 acknowledges with the read-back: 200 acknowledged" "200 acknowledged doc1" \
  "$(req "$T/k.json" "" POST "$A/$AID/ack" -H "Cookie: $cookie" -H 'X-Requested-With: huren' \
     -d "{\"readback\": \"$RB\"}") $(jget "$T/k.json" 'd["state"]') $(jget "$T/k.json" 'd["acked_by"]')"
check_eq "... a second ack: 200, already" "200 True" \
  "$(req "$T/k2.json" "$D2" POST "$A/$AID/ack" -d "{\"readback\": \"$RB\"}") $(jget "$T/k2.json" 'd["already"]')"
req "$T/g.json" "$D1" GET "$A/$AID" >/dev/null
check_eq "the register shows the refused read-back and the acknowledgement" "1 readback_refused acknowledged" \
  "$(jget "$T/g.json" 'd["readback_refused"]') $(jget "$T/g.json" '" ".join(e["event"] for e in d["log"] if e["event"] in ("readback_refused","acknowledged"))')"
check "the acknowledgement is on the SSE stream" wait_for "sse ack" 10 "grep -q 'event: alert.acked' '$T/sse1.txt'"
check "township2's stream got no alert" bash -c "! grep -q 'alert\\.' '$T/sse2.txt'"
check "the worklist stream carries no alert events" bash -c "! grep -q 'alert\\.' '$T/wl1.txt'"
check_eq "state=acknowledged lists it" 1 "$(req "$T/l.json" "$D1" GET "$A?state=acknowledged" >/dev/null; jget "$T/l.json" 'len(d["alerts"])')"
check_eq "state=open does not" 0 "$(req "$T/l.json" "$D1" GET "$A?state=open" >/dev/null; jget "$T/l.json" 'len(d["alerts"])')"

# ---- escalation of an unacknowledged alert ----
ID2=$(sign_critical "$S2" '急性心肌梗死可能')
check_eq "a second critical report" 200 "$(cat "$T/sign.status")"
req "$T/l.json" "$D1" GET "$A?state=open" >/dev/null
AID2=$(jget "$T/l.json" 'd["alerts"][0]["id"]')
check "after 3 s it escalates to doc2 (webhook)" wait_for "escalated" 10 \
  "req '$T/g.json' '$D1' GET '$A/$AID2' >/dev/null && test \"\$(jget '$T/g.json' 'd[\"target\"]')\" = doc2"
check "... the webhook receives the alert" wait_for "webhook" 10 "grep -q '$AID2' '$T/hook/requests.jsonl'"
check_eq "... JSON with the value and the X-Huren-Alert header" "critical_value 急性心肌梗死可能 $AID2" \
  "$($PY -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]; b=json.loads(r["body"]); print(b["type"], b["alert"]["value"], r["headers"]["x-huren-alert"])' "$T/hook/requests.jsonl")"
check "then to the duty doctor of the imaging center" wait_for "duty" 10 \
  "req '$T/g.json' '$D1' GET '$A/$AID2' >/dev/null && test \"\$(jget '$T/g.json' 'd[\"target\"]')\" = duty1"
check_eq "the duty doctor sees it among his alerts" "200 $AID2" \
  "$(req "$T/l.json" "$DU" GET "$A?hospital=me") $(jget "$T/l.json" 'd["alerts"][0]["id"]')"
check "then overdue_final (still open)" wait_for "final" 10 \
  "req '$T/g.json' '$D1' GET '$A/$AID2' >/dev/null && test \"\$(jget '$T/g.json' 'd[\"state\"]')\" = overdue_final"
check_eq "... steps logged: raised, escalated x2, overdue_final" "raised escalated escalated overdue_final" \
  "$(jget "$T/g.json" '" ".join(e["event"] for e in d["log"] if e["event"] in ("raised","escalated","overdue_final"))')"
metrics_ok() {
  curl -s -H "Authorization: Bearer $AD" "$U/metrics" >"$T/metrics.txt"
  grep -q '^huren_alerts_raised_total 2$' "$T/metrics.txt" && grep -q '^huren_alerts_acknowledged_total 1$' "$T/metrics.txt" &&
    [ "$(sed -n 's/^huren_alerts_escalations_total //p' "$T/metrics.txt")" -ge 2 ] &&
    grep -q '^huren_alerts_overdue 1$' "$T/metrics.txt" && grep -q '^huren_alerts_up 1$' "$T/metrics.txt"
}
# (the first alert may have escalated once too while the checks above ran)
check "metrics: 2 raised, 1 acknowledged, >= 2 escalations, 1 overdue" wait_for "metrics" 5 metrics_ok
check_eq "the duty doctor acknowledges late" "200 acknowledged" \
  "$(req "$T/k.json" "$DU" POST "$A/$AID2/ack" -d '{"readback": "急性心肌梗死可能"}') $(jget "$T/k.json" 'd["state"]')"
DAY=$(date +%F)
check_eq "the office's quality statistics: 2 raised, 1 overdue_final, both acknowledged (1+ late)" "200 2 1 2 True" \
  "$(req "$T/st.json" "$OF" GET "/api/v1/stats/alerts?from=$DAY&to=$DAY") $(jget "$T/st.json" 'd["total"]["raised"], d["total"]["overdue_final"], d["total"]["acked_in_time"] + d["total"]["acked_late"], d["total"]["acked_late"] >= 1' | tr -d '(),')"
check_eq "... not for a technician: 403" 403 "$(req "$T/e.json" "$D1" GET "/api/v1/stats/alerts")"
check_eq "... CSV" "day,raised,acked_in_time,acked_late,overdue_final" \
  "$(curl -s -H "Authorization: Bearer $OF" "$U/api/v1/stats/alerts?from=$DAY&to=$DAY&format=csv" | head -1 | tr -d '\r\357\273\277')"
check "audited" grep -q '"action":"alert-ack"' "$DATA"/audit/audit-*.jsonl
check "graceful stop" stop_huren "$HUREN_PID"
finish
