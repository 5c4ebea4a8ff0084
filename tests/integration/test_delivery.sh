#!/usr/bin/env bash
# Returning signed reports to the township (issue 9, decision 0026) with a
# real huren and real peers: a test MLLP listener (mllp_listener.py: frames,
# records, answers AA, or AE on demand), DCMTK's storescp, and a webhook
# receiver (webhook_receiver.py, http on loopback). A CT from township1 is
# read and co-signed; the PACS gets an SR (whose text is the report's) and a
# PDF, the webhook the JWS (openssl verifies it). The HL7 receiver is down:
# attempts fail, are logged, back off; huren restarts (the queue survives);
# the receiver comes up and gets the report once. An amendment answered AE
# is logged and retried until AA. A stop during an attempt abandons it; after
# the lease it is attempted again. GET /api/v1/deliveries for each role,
# hostile callers, /metrics.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=135790
HERE=$(cd "$(dirname "$0")" && pwd)

port=$(free_port)
cfg=$(write_config dl "$port")
U="http://127.0.0.1:$(http_port dl)"
DATA=$T/dl/data
MLLP_PORT=$(free_port)
SCP_PORT=$(free_port)
mkdir -p "$T/mllp" "$T/hook" "$T/scp"

# the webhook receiver and the PACS are up; the RIS (MLLP) is not
$PY "$HERE/webhook_receiver.py" --dir "$T/hook" &
PIDS+=($!)
for _ in $(seq 1 50); do [ -f "$T/hook/port" ] && break; sleep 0.1; done
storescp -aet T1PACS -od "$T/scp" +uf "$SCP_PORT" >"$T/scp.log" 2>&1 &
PIDS+=($!)
wait_port "$SCP_PORT" 10

# township1: its PACS (a C-MOVE destination) and the three channels
$PY - "$cfg" "$MLLP_PORT" "$SCP_PORT" "$(cat "$T/hook/port")" <<'PY'
import json, sys
cfg, mllp, scp, hook = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = json.load(open(cfg))
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["destinations"] = [{"ae_title": "T1PACS", "host": "127.0.0.1", "port": scp}]
c["delivery"] = {
    "retry_initial_s": 1, "retry_max_s": 2, "failing_after": 3, "poll_ms": 200,
    "hl7_timeout_s": 3, "dicom_timeout_s": 4, "webhook_timeout_s": 3, "lease_s": 8,
    "report_base_url": "https://hub.example.org",
    "hospitals": {"township1": {
        "hl7": {"host": "127.0.0.1", "port": mllp, "receiving_application": "RIS",
                "receiving_facility": "T1"},
        "dicom": {"ae_title": "T1PACS", "what": ["sr", "pdf"]},
        "webhook": {"url": "http://127.0.0.1:%d/reports" % hook, "bearer": "s3cr3t"}}}}
json.dump(c, open(cfg, "w"), indent=1)
PY

adduser() { add_user "$cfg" "$@"; }
adduser rd1 'rd1-password-1' reader county imaging
adduser aud1 'aud1-password-1' auditor county imaging
adduser recg 'recg-password-1' reader county ecg
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
adduser ext1 'ext1-password-1' external township2
adduser admin 'admin-password-1' admin county
mkkey() { # user: a P-256 key, PKCS#8 encrypted under the PIN, and its certificate
  local d=$DATA/keys/$1
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/plain.pem" \
    -out "$d/chain.pem" -days 30 -subj "/CN=$1" -addext keyUsage=critical,digitalSignature 2>/dev/null
  openssl pkcs8 -topk8 -in "$d/plain.pem" -out "$d/key.p8" -v2 aes-256-cbc -v2prf hmacWithSHA256 \
    -iter 1000 -passout pass:$PIN
  rm "$d/plain.pem"
  chmod 600 "$d/key.p8"
}
mkkey rd1
mkkey aud1

start_huren dl "$cfg"
wait_port "$(http_port dl)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
login_all() {
  R1=$(login rd1); A1=$(login aud1); RE=$(login recg); T1=$(login tech1); T2=$(login tech2)
  EX=$(login ext1); AD=$(login admin)
}
login_all
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
# waits (at most $2 s) until the shell condition $3 (evaluated each time) holds
wait_for() {
  local what=$1 secs=$2 cond=$3
  for _ in $(seq 1 $((secs * 10))); do eval "$cond" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for: $what" >&2
  return 1
}

# ---- a CT from township1, read and co-signed ----
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 2048 --seed 71 --patient-id DL1 --charset utf8 \
  --patient-name '赵^六' --accession ACC71 >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
S=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
R=/api/v1/reports
req "$T/c.json" "$T1" POST "/api/v1/exams/$S/complete" >/dev/null
req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$S/claim" >/dev/null
check_eq "rd1 creates the report" 201 "$(req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
FIND=$'双肺纹理清晰。\n纵隔未见肿大淋巴结|^&~\\'
IMPR='胸部CT平扫未见明显异常。'
body() { $PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": sys.argv[1], "impression": sys.argv[2], "critical": False}))' "$@"; }
req "$T/s.json" "$R1" PUT "$R/$ID" -d "$(body "$FIND" "$IMPR")" >/dev/null
check_eq "rd1 signs (preliminary)" "200 preliminary" \
  "$(req "$T/s.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["status"]')"
sleep 1
check_eq "a preliminary version is not delivered" "0 0" \
  "$(rcli dl ZCARD hr:dlv:pending) $(ls "$T/scp" | wc -l)"
check_eq "aud1 co-signs: version 2 final" "200 2 final" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
HKEY="hr:dlv:{$S}:1:2:hl7"

# ---- the PACS and the webhook get it; the RIS is down ----
scp_count() { ls "$T/scp" | wc -l; }
check "the PACS receives two objects" wait_for "storescp" 20 'test "$(scp_count)" -ge 2'
hook_count() { [ -f "$T/hook/requests.jsonl" ] && wc -l <"$T/hook/requests.jsonl" || echo 0; }
check "the webhook receives one POST" wait_for "webhook" 20 'test "$(hook_count)" -ge 1'
req "$T/v2.jws" "$T1" GET "$R/$ID/versions/2/jws" >/dev/null
$PY - "$T/hook/requests.jsonl" "$T/v2.jws" "$ID" >"$T/hook.check" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
h = r["headers"]
jws = open(sys.argv[2]).read().strip()
print(r["path"], r["body"] == jws, h.get("content-type"), h.get("authorization"),
      h.get("x-huren-report") == sys.argv[3], h.get("x-huren-version"), h.get("x-huren-status"))
open(sys.argv[1] + ".body", "w").write(r["body"])
PY
check_eq "... the body is the version's JWS, with its headers and the bearer" \
  "/reports True application/jose Bearer s3cr3t True 2 final" "$(cat "$T/hook.check")"
verify_jws() { # FILE -> "ok" when openssl verifies the ES256 signature with the x5c leaf
  $PY - "$1" "$T/vj" <<'PY'
import base64, json, subprocess, sys
jws = open(sys.argv[1]).read().strip()
d = sys.argv[2]
h, p, s = jws.split(".")
b = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
hdr = json.loads(b(h))
open(d + ".crt", "w").write("-----BEGIN CERTIFICATE-----\n" + hdr["x5c"][0] + "\n-----END CERTIFICATE-----\n")
open(d + ".in", "wb").write((h + "." + p).encode())
raw = b(s)
def der_int(v):
    v = v.lstrip(b"\0") or b"\0"
    if v[0] & 0x80: v = b"\0" + v
    return b"\x02" + bytes([len(v)]) + v
seq = der_int(raw[:32]) + der_int(raw[32:])
open(d + ".sig", "wb").write(b"\x30" + bytes([len(seq)]) + seq)
subprocess.run(["openssl", "x509", "-in", d + ".crt", "-pubkey", "-noout", "-out", d + ".pub"], check=True)
r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", d + ".pub", "-signature", d + ".sig", d + ".in"],
                   capture_output=True, text=True)
print("ok" if r.returncode == 0 and "Verified OK" in r.stdout else "failed: " + r.stdout + r.stderr)
PY
}
check_eq "openssl verifies the JWS the webhook received" ok "$(verify_jws "$T/hook/requests.jsonl.body")"

of_class() { # SOP class UID -> the first file storescp wrote of it
  local f
  for f in "$T"/scp/*; do
    if dcmdump -Un +P 0008,0016 "$f" 2>/dev/null | grep -qF "[$1]"; then echo "$f"; return 0; fi
  done
}
sr_file() { of_class 1.2.840.10008.5.1.4.1.1.88.11; }
pdf_file() { of_class 1.2.840.10008.5.1.4.1.1.104.1; }
SR=$(sr_file)
check "... one of them a Basic Text SR" test -n "$SR"
check "... the other an Encapsulated PDF" test -n "$(pdf_file)"
check_eq "... the SR is in the exam's study" "$S" "$(dcmdump +P 0020,000D "$SR" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1)"
dsrdump +Pl "$SR" >"$T/sr.txt" 2>&1 || true
check "... its text is the report's impression" grep -q "$IMPR" "$T/sr.txt"
check "... and findings" grep -q '纵隔未见肿大淋巴结' "$T/sr.txt"
$PY -c 'import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); open(sys.argv[2], "wb").write(d.EncapsulatedDocument[:d.EncapsulatedDocumentLength])' \
  "$(pdf_file)" "$T/report.pdf"
check_eq "... the PDF object's document is a PDF" "%PDF" "$(head -c 4 "$T/report.pdf")"
pdftotext "$T/report.pdf" "$T/report.txt" 2>/dev/null || true
check "... showing the impression" grep -q "$IMPR" "$T/report.txt"
check "... and the hub's verification URL (delivery.report_base_url)" \
  grep -qF "https://hub.example.org/verify?report=$ID&v=2&d=$(sha256sum <"$T/v2.jws" | cut -c1-16)" \
  <(tr -d '\n' <"$T/report.txt")

check "the HL7 delivery fails while the RIS is down" wait_for "hl7 failures" 15 \
  'test "$(rcli dl HGET "$HKEY" attempts)" -ge 3'
check_eq "... still pending, connection refused logged" "pending" "$(rcli dl HGET "$HKEY" state)"
check "... the last error names the refused connection" \
  grep -q "connect 127.0.0.1:$MLLP_PORT: connection refused" <<<"$(rcli dl HGET "$HKEY" last_error)"
rcli_raw dl LRANGE "$HKEY:log" 0 -1 >"$T/hl7.log"
check "... each attempt is in its log" test "$(grep -c $'\tfailed\t' "$T/hl7.log")" -ge 3
check "... with backoff: attempts at least 0.5 s apart (retry 1 s, jitter)" $PY - "$T/hl7.log" <<'PY'
import sys
t = [int(l.split("\t")[0]) for l in open(sys.argv[1]) if l.split("\t")[1] == "failed"]
gaps = [b - a for a, b in zip(t, t[1:])]
sys.exit(0 if gaps and min(gaps) >= 450 else 1)
PY
check "... counted as failing" test "$(rcli dl ZSCORE hr:dlv:failing "$ID/2/hl7")" != ""
# the queue gauges are sampled by the sender's poll, not read per scrape:
# wait (bounded) until a sample has seen the failing delivery
for _ in $(seq 1 50); do
  curl -s -H "Authorization: Bearer $AD" "$U/metrics" >"$T/metrics.txt"
  grep -qE '^huren_deliveries_failing 1$' "$T/metrics.txt" && break
  sleep 0.2
done
check "/metrics: failed HL7 attempts" grep -qE '^huren_delivery_attempts_failed_total\{channel="hl7"\} [1-9]' "$T/metrics.txt"
check "/metrics: one pending, failing" grep -qE '^huren_deliveries_pending 1$' "$T/metrics.txt"
check "/metrics: failing 1" grep -qE '^huren_deliveries_failing 1$' "$T/metrics.txt"
check "/metrics: delivered by DICOM and webhook" \
  test "$(grep -cE '^huren_deliveries_delivered_total\{channel="(dicom|webhook)"\} 1$' "$T/metrics.txt")" = 2
check "/metrics: the oldest pending age" grep -qE '^huren_deliveries_oldest_pending_seconds [0-9]+$' "$T/metrics.txt"

# ---- huren restarts: the queue survives ----
before=$(rcli_raw dl HGET "$HKEY" attempts)
check "graceful stop" stop_huren "$HUREN_PID"
start_huren dl "$cfg"
wait_port "$(http_port dl)" 30
login_all
check "after the restart the HL7 delivery is attempted again" wait_for "hl7 after restart" 10 \
  'test "$(rcli dl HGET "$HKEY" attempts)" -gt "$before"'

# ---- the RIS comes up: it gets the report once ----
$PY "$HERE/mllp_listener.py" --port "$MLLP_PORT" --dir "$T/mllp" &
MLLP_PID=$!
PIDS+=($MLLP_PID)
check "the RIS receives the report" wait_for "hl7 delivered" 15 \
  'test "$(rcli dl HGET "$HKEY" state)" = delivered'
CID=$(rcli dl HGET "$HKEY" control_id)
$PY - "$T/mllp/messages.jsonl" "$CID" "$IMPR" >"$T/oru.check" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
mine = [m for m in msgs if m["control_id"] == sys.argv[2]]
segs = mine[0]["text"].split("\r")
f = lambda name: [s.split("|") for s in segs if s.startswith(name + "|")]
obr = f("OBR")[0]
imp = [o[5] for o in f("OBX") if o[3].startswith("121073")]
fin = [o[5] for o in f("OBX") if o[3].startswith("121071")]
rp = [o[5] for o in f("OBX") if o[2] == "RP"][0]
print(len(mine), sum(1 for m in mine if not m["duplicate"]), f("MSH")[0][9], obr[25],
      imp == [sys.argv[3]], fin[1], f("PID")[0][5], f("MSH")[0][4], f("MSH")[0][17],
      rp.split("^")[0])
PY
check_eq "... once (MSH-10 $CID), final, the impression, escaped delimiters, the patient" \
  "1 1 $CID F True 纵隔未见肿大淋巴结\\F\\\\S\\\\T\\\\R\\\\E\\ 赵^六 RIS UNICODE UTF-8 https://hub.example.org/api/v1/reports/$ID/versions/2/jws" \
  "$(cat "$T/oru.check")"
check_eq "the PACS and the webhook got version 2 once (no resend)" "2 1" "$(scp_count) $(hook_count)"

# ---- GET /api/v1/deliveries ----
D="/api/v1/deliveries?report=$ID"
check_eq "tech1 (the source hospital) lists the deliveries" \
  "200 dicom:delivered hl7:delivered webhook:delivered" \
  "$(req "$T/d.json" "$T1" GET "$D") $(jget "$T/d.json" '" ".join(x["channel"] + ":" + x["state"] for x in d["deliveries"])')"
check_eq "... the HL7 one with its failed attempts then the delivery" "queued failed delivered" \
  "$(jget "$T/d.json" '" ".join(dict.fromkeys(e["outcome"] for e in [x for x in d["deliveries"] if x["channel"] == "hl7"][0]["log"]))')"
check "... and an attempt count" test "$(jget "$T/d.json" '[x for x in d["deliveries"] if x["channel"] == "hl7"][0]["attempts"]')" -ge 4
check_eq "the auditor of the center: 200" 200 "$(req "$T/e.json" "$A1" GET "$D")"
check_eq "the admin: 200" 200 "$(req "$T/e.json" "$AD" GET "$D")"
check_eq "another township's technician: 404" 404 "$(req "$T/e.json" "$T2" GET "$D")"
check_eq "a reader of another center: 404" 404 "$(req "$T/e.json" "$RE" GET "$D")"
check_eq "an external user: 404" 404 "$(req "$T/e.json" "$EX" GET "$D")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET "$D")"
EXPIRED=$(login tech1)
rcli dl HSET "hr:tok:$(printf %s "$EXPIRED" | sha256sum | cut -d' ' -f1)" expires $(($(date +%s) - 1)) >/dev/null
check_eq "an expired token: 401" 401 "$(req "$T/e.json" "$EXPIRED" GET "$D")"
check_eq "an unknown report: 404" 404 "$(req "$T/e.json" "$AD" GET "/api/v1/deliveries?report=r9-$S")"
check_eq "garbage: 400" 400 "$(req "$T/e.json" "$AD" GET "/api/v1/deliveries?report=r1-1.2%0A3")"
check_eq "no report parameter: 400" 400 "$(req "$T/e.json" "$AD" GET "/api/v1/deliveries")"
check_eq "a body on the GET: 413" 413 "$(req "$T/e.json" "$AD" GET "$D" -d 'x')"
check "reads are audited, refusals as denied" \
  grep -q '"action":"deliveries".*"outcome":"denied"' "$DATA"/audit/audit-*.jsonl

# ---- an amendment answered AE: logged, retried until AA ----
echo AE >"$T/mllp/mode"
amend() { $PY -c 'import json,sys; print(json.dumps({"pin": sys.argv[1], "impression": sys.argv[2], "kind": "amendment", "reason": "补充"}))' "$@"; }
NEWI='胸部CT平扫：右肺上叶小结节，建议随访。'
check_eq "aud1 amends: version 3 amended" "200 3 amended" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/amend" -d "$(amend $PIN "$NEWI")") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
H3="hr:dlv:{$S}:1:3:hl7"
check "the RIS answers AE: a failed attempt" wait_for "AE" 15 'test "$(rcli dl HGET "$H3" attempts)" -ge 1'
check "... logged with the ERR text" grep -q "ACK AE.*test error" <<<"$(rcli dl HGET "$H3" last_error)"
check_eq "... still pending" pending "$(rcli dl HGET "$H3" state)"
echo AA >"$T/mllp/mode"
check "then AA: delivered" wait_for "AA" 15 'test "$(rcli dl HGET "$H3" state)" = delivered'
CID3=$(rcli dl HGET "$H3" control_id)
check_eq "... the same MSH-10 on each attempt; OBR-25 C" "C" \
  "$($PY -c 'import json,sys; m=[json.loads(l) for l in open(sys.argv[1])]; m=[x for x in m if x["control_id"]==sys.argv[2]]; assert len(set(x["mode"] for x in m))==2; print([s for s in m[-1]["text"].split("\r") if s.startswith("OBR|")][0].split("|")[25])' "$T/mllp/messages.jsonl" "$CID3")"
check "version 3 reaches the PACS and the webhook" wait_for "v3 dicom+webhook" 15 \
  'test "$(scp_count)$(hook_count)" = 42'
check_eq "... the webhook says amended" amended \
  "$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["headers"]["x-huren-status"])' "$T/hook/requests.jsonl")"

# ---- a stop during an attempt abandons it; the lease ends, it is retried ----
echo silent >"$T/mllp/mode"
check_eq "aud1 retracts: version 4" "200 4" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/retract" -d "{\"pin\": \"$PIN\", \"reason\": \"患者信息错误\"}") $(jget "$T/s.json" 'str(d["version"])')"
H4="hr:dlv:{$S}:1:4:hl7"
check "an HL7 attempt of version 4 is under way" wait_for "v4 leased" 10 \
  'test "$(rcli dl HGET "$H4" lease_until)" -gt 0'
LEASE_END=$(rcli dl HGET "$H4" lease_until)
check "graceful stop during the attempt" stop_huren "$HUREN_PID"
check "... abandons the attempt" grep -q "stopping: 1 attempts abandoned" "$T/dl/huren.log"
check "... without waiting for the peer (stopped within hl7_timeout_s)" $PY - "$T/dl/huren.log" <<'PY'
import datetime, sys
t = lambda l: datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f")
lines = open(sys.argv[1]).read().splitlines()
a = [t(l) for l in lines if "serve: signal" in l][-1]
b = [t(l) for l in lines if "serve: stopped" in l][-1]
sys.exit(0 if (b - a).total_seconds() < 3 else 1)
PY
echo AA >"$T/mllp/mode"
kill "$MLLP_PID"; wait "$MLLP_PID" 2>/dev/null || true
$PY "$HERE/mllp_listener.py" --port "$MLLP_PORT" --dir "$T/mllp" &
PIDS+=($!)
start_huren dl "$cfg"
check "after the lease version 4 is delivered" wait_for "v4 delivered" 20 \
  'test "$(rcli dl HGET "$H4" state)" = delivered'
CID4=$(rcli dl HGET "$H4" control_id)
check_eq "... by its first recorded attempt: the abandoned one left no trace" "queued:0 delivered:1" \
  "$(rcli_raw dl LRANGE "$H4:log" 0 -1 | cut -f2,3 | tr '\t' : | xargs)"
check "... not before its lease ended" test "$(rcli dl HGET "$H4" delivered_ms)" -ge "$LEASE_END"
check_eq "... entered-in-error: OBR-25 X, OBX-11 W" "X W" \
  "$($PY -c 'import json,sys; m=[json.loads(l) for l in open(sys.argv[1])]; t=[x for x in m if x["control_id"]==sys.argv[2] and x["mode"]=="AA"][-1]["text"].split("\r"); print([s for s in t if s.startswith("OBR|")][0].split("|")[25], [s for s in t if s.startswith("OBX|")][0].split("|")[11])' "$T/mllp/messages.jsonl" "$CID4")"
check "every delivery is done" wait_for "queue empty" 15 'test "$(rcli dl ZCARD hr:dlv:pending)" = 0'
check_eq "nothing left due" 0 "$(rcli dl ZCARD hr:dlv:due)"
check "no temp file left" test "$(count_tmp dl)" = 0
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
