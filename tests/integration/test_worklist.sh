#!/usr/bin/env bash
# Worklists end to end (issue 4) with a real huren, storescu and curl:
# routing of CT/MR/ECG/DX studies to centers and priorities, completion after
# a short quiet period and by an explicit signal, authorization (centers and
# roles), claim/release/renew/reassign over HTTP and one winner among
# concurrent claimers, lease expiry, overdue flagging and escalation, the
# township's view of its exams, a worklist failure refusing C-STORE until
# the retry, a restart between arrival and completion, and server-sent
# events: `ready` within 1 s of completion, Last-Event-ID replay, gap,
# per-role filtering, and a prompt stop with open streams.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"

ECG_SOP=1.2.840.10008.5.1.4.1.1.9.1.1
port=$(free_port)
hport=$(free_port)
mkdir -p "$T/wl"
cfg=$T/wl/config.json
# the hospitals of lib.sh; imaging and ECG centers; CT of township1 urgent,
# ECG stat (turnaround 1 unit, the unit shortened to 20 s for the overdue
# test), the rest routine on imaging; quiet 5 s (DX 8 s: the restart test;
# CT 60 s: it is completed explicitly, and a loaded machine must not complete
# it first); leases of 15 s (min_lease_s lowered) for the expiry test
cat >"$cfg" <<JSON
{
  "data_dir": "$T/wl/data",
  "log_level": "info",
  "dicom": {"listen": "127.0.0.1", "port": $port, "ae_title": "HUREN"},
  "http": {"listen": "127.0.0.1", "port": $hport},
  "hospitals": [
    {"id": "county", "name": "County", "level": "county", "ae_titles": ["COUNTY"], "addresses": ["127.0.0.1"]},
    {"id": "township1", "name": "Township 1", "level": "township", "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"]},
    {"id": "township2", "name": "Township 2", "level": "township", "ae_titles": ["TOWNSHIP2"], "addresses": ["10.99.0.0/16"]}
  ],
  "centers": [
    {"id": "imaging", "name": "Imaging", "kind": "imaging", "hospital": "county"},
    {"id": "ecg", "name": "ECG", "kind": "ecg", "hospital": "county"}
  ],
  "routing": {
    "rules": [
      {"sop_classes": ["$ECG_SOP"], "center": "ecg", "priority": "stat"},
      {"modalities": ["CT"], "hospitals": ["township1"], "center": "imaging", "priority": "urgent"}
    ],
    "default": {"center": "imaging", "priority": "routine"}
  },
  "worklist": {
    "quiet_s": 5, "quiet_by_modality": {"DX": 8, "CT": 60}, "lease_s": 15, "min_lease_s": 5,
    "turnaround_unit_s": 20,
    "turnaround_min": {
      "imaging": {"stat": 30, "urgent": 120, "routine": 1440},
      "ecg": {"stat": 1, "urgent": 30, "routine": 240}
    }
  }
}
JSON
echo "$hport" >"$T/wl/http_port"
U="http://127.0.0.1:$hport"

adduser() { # name password role hospital [center]
  printf '%s\n' "$2" | "$HUREN" user add "$1" --role "$3" --hospital "$4" ${5:+--center "$5"} \
    --config "$cfg" >/dev/null
}
adduser rimg 'rimg-password-1' reader county imaging
adduser rimg2 'rimg2-password-1' reader county imaging
adduser lead 'lead-password-1' auditor county imaging
adduser recg 'recg-password-1' reader county ecg
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
adduser admin 'admin-password-1' admin county
start_huren wl "$cfg"
wait_port "$hport" 30

login() { # user password -> token
  curl -s -X POST "$U/api/v1/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$1\", \"password\": \"$2\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
login_all() {
  TI=$(login rimg 'rimg-password-1')
  TI2=$(login rimg2 'rimg2-password-1')
  TL=$(login lead 'lead-password-1')
  TE=$(login recg 'recg-password-1')
  T1=$(login tech1 'tech1-password-1')
  T2=$(login tech2 'tech2-password-1')
  TA=$(login admin 'admin-password-1')
}
login_all
check "seven logins issued tokens" test "${#TI}${#TI2}${#TL}${#TE}${#T1}${#T2}${#TA}" = 43434343434343

# req OUT TOKEN METHOD URL [curl args] -> status code
req() {
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { # file python-expression-on-d
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
studies() { jget "$1" '" ".join(i["study"] for i in d["items"])'; }
exam_status() { # FILE STUDY
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(i["status"] for i in d["items"] if i["study"] == sys.argv[2]))' "$1" "$2"
}
now_ms() { local t=${EPOCHREALTIME/./}; echo "${t:0:-3}"; }

# ---- server-sent events: curl -N, each line stamped on arrival (µs) ----
stamp() { local line; while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done; }
sse_open() { # NAME TOKEN [LAST_EVENT_ID]
  local name=$1 tok=$2 last=${3:-}
  : >"$T/sse-$name.log"
  (curl -sN --max-time 500 -H "Authorization: Bearer $tok" ${last:+-H "Last-Event-ID: $last"} \
    -D "$T/sse-$name.hdr" "$U/api/v1/events" | stamp >"$T/sse-$name.log") &
}
# sse_events NAME -> one line per event: "<arrival µs> <id> <type> <study> <center> <hospital> <user> <reader>"
sse_events() {
  $PY - "$T/sse-$1.log" <<'PY'
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a reader that stops early
ev = {}
for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    raw = raw.rstrip("\n")
    ts, _, line = raw.partition(" ")
    if line == "":
        if "data" in ev:
            d = json.loads(ev["data"])
            print(ev["ts"], ev.get("id", "-"), ev.get("event", "message"), d.get("study") or "-",
                  d.get("center") or "-", d.get("hospital") or "-", d.get("user") or "-",
                  d.get("reader") or "-")
        elif ev.get("event") == "gap":
            print(ev["ts"], "-", "gap", "-", "-", "-", "-", "-")
        ev = {}
        continue
    if line.startswith(":"):
        continue
    k, _, v = line.partition(": ")
    ev[k] = v
    ev["ts"] = ts
PY
}
# sse_wait NAME TYPE STUDY [seconds] -> arrival time (ms) of the first such event
sse_wait() {
  local name=$1 type=$2 study=$3 tries=$(( ${4:-10} * 20 )) line
  for _ in $(seq 1 "$tries"); do
    line=$(sse_events "$name" | awk -v t="$type" -v s="$study" '$3 == t && $4 == s {print; exit}')
    if [ -n "$line" ]; then echo "$((${line%% *} / 1000))"; return 0; fi
    sleep 0.05
  done
  echo "no $type event for $study on stream $name" >&2
  return 1
}
has_event() { sse_wait "$@" >/dev/null; }
sse_count() { sse_events "$1" | awk -v t="$2" -v s="${3:-}" '$3 == t && (s == "" || $4 == s)' | wc -l; }
uid() { dcmdump +P "$1" "$2" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1; }

# ---- data: CT and MR from township1 (C-STORE), an ECG, DX (restart), and an
# MR of township2 by STOW ----
"$GEN" --out "$T/ct" --modality CT --series 2 --instances 3 --bytes 4096 --seed 41 --patient-id P1 >/dev/null
"$GEN" --out "$T/mr" --modality MR --instances 2 --bytes 4096 --seed 42 --patient-id P2 >/dev/null
"$GEN" --out "$T/ecg" --modality ECG --seed 43 --patient-id P3 >/dev/null
"$GEN" --out "$T/dx" --modality DX --bytes 4096 --seed 44 --patient-id P4 >/dev/null
"$GEN" --out "$T/mr2" --modality MR --bytes 4096 --seed 45 --patient-id P5 --prefix t2 >/dev/null
"$GEN" --out "$T/cr" --modality CR --bytes 4096 --seed 46 --patient-id P6 >/dev/null
"$GEN" --out "$T/us" --modality US --bytes 4096 --seed 47 --patient-id P7 >/dev/null
CT=$(uid 0020,000D "$(ls "$T"/ct/* | head -1)")
MR=$(uid 0020,000D "$(ls "$T"/mr/* | head -1)")
ECG=$(uid 0020,000D "$(ls "$T"/ecg/* | head -1)")
DX=$(uid 0020,000D "$(ls "$T"/dx/* | head -1)")
MR2=$(uid 0020,000D "$(ls "$T"/mr2/* | head -1)")
CR=$(uid 0020,000D "$(ls "$T"/cr/* | head -1)")
US=$(uid 0020,000D "$(ls "$T"/us/* | head -1)")
check "seven distinct studies" test "$(printf '%s\n' "$CT" "$MR" "$ECG" "$DX" "$MR2" "$CR" "$US" | sort -u | wc -l)" = 7

# event streams open before anything arrives
sse_open img "$TI"
sse_open ecg "$TE"
sse_open tech1 "$T1"
sse_open adm "$TA"
sleep 0.5
check "SSE: 200 text/event-stream" grep -qi '^content-type: text/event-stream' "$T/sse-img.hdr"

storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/ecg" >"$T/st1.log" 2>&1 && st=0 || st=$?
check_eq "CT and ECG stored" "0" "$st$(grep -i 'fail' "$T/st1.log" || true)"
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/mr" >/dev/null 2>&1
t_mr_sent=$(now_ms)
$DW stow-body "$T/stow.body" BNDwl "$T"/mr2/*
check_eq "township2's MR by STOW: 200" 200 "$(req "$T/stow.json" "$T2" POST /dicomweb/studies \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BNDwl' --data-binary @"$T/stow.body")"

# ---- routing: center, priority, state right after arrival ----
hm() { rcli_raw wl HMGET "hr:wl:{$1}" "${@:2}" | xargs; }
check_eq "CT: imaging, urgent (rule 1), receiving, 6 instances" "imaging urgent 1 receiving 6" \
  "$(hm "$CT" center priority rule state instances)"
check_eq "ECG: ecg, stat (rule 0)" "ecg stat 0 receiving" "$(hm "$ECG" center priority rule state)"
check_eq "MR of township1: imaging, routine (default rule)" "imaging routine -1" \
  "$(hm "$MR" center priority rule)"
check_eq "MR of township2 (STOW): imaging, routine, township2" "imaging routine township2" \
  "$(hm "$MR2" center priority hospital)"

st=$(req "$T/l.json" "$TI" GET "/api/v1/worklists/imaging?state=receiving")
check_eq "imaging reader lists receiving items: 200" 200 "$st"
check_eq "... CT (urgent) before the MRs (routine)" "$CT" "$(jget "$T/l.json" 'd["items"][0]["study"]')"
check_eq "... counts.by_state.receiving = 3" 3 "$(jget "$T/l.json" 'd["counts"]["by_state"]["receiving"]')"
check_eq "the working list (ready+claimed) is empty yet" 0 "$(req "$T/l.json" "$TI" GET /api/v1/worklists/imaging >/dev/null; jget "$T/l.json" 'len(d["items"])')"
check_eq "township1's exams: received" "received" \
  "$(req "$T/x.json" "$T1" GET '/api/v1/exams?hospital=me' >/dev/null; jget "$T/x.json" '" ".join(sorted(set(i["status"] for i in d["items"])))')"

# ---- explicit completion: immediate; SSE ready within 1 s ----
t0=$(now_ms)
check_eq "tech1 completes the CT: 200" 200 "$(req "$T/c.json" "$T1" POST "/api/v1/exams/$CT/complete")"
t1=$(now_ms)
check_eq "... ready at once" ready "$(jget "$T/c.json" 'd["state"]')"
tr=$(sse_wait img ready "$CT" 5) || tr=0
echo "    explicit completion answered in $((t1 - t0)) ms; SSE ready after $((tr - t0)) ms"
check "SSE: the imaging reader gets ready within 1 s of the completion" test $((tr - t0)) -ge 0 -a $((tr - t0)) -lt 1000
check "SSE: tech1 (township1) gets it too" has_event tech1 ready "$CT" 2
check_eq "tech2 cannot complete township1's exam: 404" 404 "$(req "$T/e.json" "$T2" POST "/api/v1/exams/$CT/complete")"
check_eq "a reader cannot complete: 403" 403 "$(req "$T/e.json" "$TI" POST "/api/v1/exams/$MR/complete")"
check_eq "completing an unknown exam: 404" 404 "$(req "$T/e.json" "$T1" POST "/api/v1/exams/1.2.3.4.5/complete")"
check_eq "a bad UID: 400" 400 "$(req "$T/e.json" "$T1" POST "/api/v1/exams/not-a-uid/complete")"

# ---- quiet period: the MR becomes ready ~5 s after its last instance ----
tr=$(sse_wait img ready "$MR" 15) || tr=0
deadline=$(( $(rcli wl HGET "hr:wl:{$MR}" last_ms) + $(rcli wl HGET "hr:wl:{$MR}" quiet_ms) ))
echo "    MR: last instance + quiet period = $deadline; SSE ready received $((tr - deadline)) ms after"
check "SSE: ready within 1 s of the quiet period's end" test $((tr - deadline)) -ge 0 -a $((tr - deadline)) -lt 1000
check_eq "MR ready after the quiet period, not before (>= 5 s after sending)" 1 \
  "$(( $(rcli wl HGET "hr:wl:{$MR}" ready_ms) - t_mr_sent >= 4900 ? 1 : 0 ))"
tr=$(sse_wait ecg ready "$ECG" 10) || tr=0
check "ECG ready on the ECG center's stream" test "$tr" -gt 0
check_eq "the ECG reader's stream has no imaging event" 0 "$(sse_count ecg ready "$CT")"
check_eq "the imaging reader's stream has no ECG event" 0 "$(sse_count img ready "$ECG")"
check_eq "tech1's stream has no township2 event" 0 "$(sse_events tech1 | awk -v s="$MR2" '$4 == s' | wc -l)"
check "the admin's stream has everything (township2's MR ready)" has_event adm ready "$MR2" 10

# ---- authorization ----
W=/api/v1/worklists
check_eq "the ECG reader cannot list the imaging worklist: 403" 403 "$(req "$T/e.json" "$TE" GET $W/imaging)"
check_eq "... a JSON error" forbidden "$(jget "$T/e.json" 'd["error"]')"
check_eq "a technician has no worklist: 403" 403 "$(req "$T/e.json" "$T1" GET $W/imaging)"
check_eq "the admin lists any center: 200" 200 "$(req "$T/l.json" "$TA" GET $W/ecg)"
check_eq "... with the ECG (ready, stat)" "$ECG stat ready" "$(jget "$T/l.json" '" ".join([d["items"][0]["study"], d["items"][0]["priority"], d["items"][0]["state"]])')"
check_eq "an unknown center: 404" 404 "$(req "$T/e.json" "$TA" GET $W/nowhere)"
check_eq "an unknown state filter: 400" 400 "$(req "$T/e.json" "$TI" GET "$W/imaging?state=bogus")"
check_eq "a bad date: 400" 400 "$(req "$T/e.json" "$TI" GET "$W/imaging?from=2024-13-01")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET $W/imaging)"
check_eq "the ECG reader cannot claim an imaging item: 403" 403 "$(req "$T/e.json" "$TE" POST "$W/imaging/items/$CT/claim")"
check_eq "... nor through the ECG center's path: 404" 404 "$(req "$T/e.json" "$TE" POST "$W/ecg/items/$CT/claim")"
check_eq "a technician cannot claim at all: 403" 403 "$(req "$T/e.json" "$T1" POST "$W/imaging/items/$CT/claim")"
check_eq "an unknown item: 404" 404 "$(req "$T/e.json" "$TI" POST "$W/imaging/items/1.2.3.4.5/claim")"

# ---- claim, release, renew, reassign ----
check_eq "rimg claims the CT: 200" 200 "$(req "$T/c.json" "$TI" POST "$W/imaging/items/$CT/claim")"
check_eq "... claimed by rimg" "claimed rimg" "$(jget "$T/c.json" 'd["state"] + " " + d["claimed_by"]')"
lease=$(jget "$T/c.json" 'd["lease_until_ms"] - d["lease_until_ms"] % 1')
check "... for lease_s (15 s)" test $((lease - $(now_ms))) -gt 12000 -a $((lease - $(now_ms))) -le 15000
check_eq "rimg2 claims it too: 409" 409 "$(req "$T/e.json" "$TI2" POST "$W/imaging/items/$CT/claim")"
check_eq "... error claimed, naming the holder" "claimed 1" "$(jget "$T/e.json" 'd["error"] + " " + str(int("rimg" in d["detail"]))')"
check_eq "rimg2 cannot renew it: 409" 409 "$(req "$T/e.json" "$TI2" POST "$W/imaging/items/$CT/renew")"
check_eq "rimg2 cannot release it: 409" 409 "$(req "$T/e.json" "$TI2" POST "$W/imaging/items/$CT/release")"
check_eq "rimg renews: 200" 200 "$(req "$T/c.json" "$TI" POST "$W/imaging/items/$CT/renew")"
check_eq "mine=true for rimg: the CT" "$CT" "$(req "$T/l.json" "$TI" GET "$W/imaging?mine=true" >/dev/null; studies "$T/l.json")"
check_eq "mine=true for rimg2: nothing" "" "$(req "$T/l.json" "$TI2" GET "$W/imaging?mine=true" >/dev/null; studies "$T/l.json")"
check_eq "rimg releases: 200, ready" "200 ready" "$(req "$T/c.json" "$TI" POST "$W/imaging/items/$CT/release") $(jget "$T/c.json" 'd["state"]')"
check_eq "releasing a ready item: 409 invalid_state" "409 invalid_state" "$(req "$T/e.json" "$TI" POST "$W/imaging/items/$CT/release") $(jget "$T/e.json" 'd["error"]')"
check_eq "rimg2 claims it now: 200" 200 "$(req "$T/c.json" "$TI2" POST "$W/imaging/items/$CT/claim")"
check_eq "a reader cannot reassign: 403" 403 "$(req "$T/e.json" "$TI" POST "$W/imaging/items/$CT/reassign" -d '{"to": "rimg"}')"
check_eq "the lead (imaging auditor) reassigns to rimg: 200" "200 rimg" "$(req "$T/c.json" "$TL" POST "$W/imaging/items/$CT/reassign" -d '{"to": "rimg"}') $(jget "$T/c.json" 'd["claimed_by"]')"
check_eq "... not to the ECG reader: 400" 400 "$(req "$T/e.json" "$TL" POST "$W/imaging/items/$CT/reassign" -d '{"to": "recg"}')"
check_eq "... nor to nobody: 400" 400 "$(req "$T/e.json" "$TL" POST "$W/imaging/items/$CT/reassign" -d '{"to": "nobody"}')"
check_eq "... a body without to: 400" 400 "$(req "$T/e.json" "$TL" POST "$W/imaging/items/$CT/reassign" -d '{}')"
check_eq "the admin claims township2's MR as itself: 200" "200 admin" "$(req "$T/c.json" "$TA" POST "$W/imaging/items/$MR2/claim") $(jget "$T/c.json" 'd["claimed_by"]')"
check_eq "... and releases it" 200 "$(req "$T/c.json" "$TA" POST "$W/imaging/items/$MR2/release")"
check_eq "the working list filtered by hospital township2" "$MR2" "$(req "$T/l.json" "$TI" GET "$W/imaging?hospital=township2" >/dev/null; studies "$T/l.json")"
check_eq "... by modality CT" "$CT" "$(req "$T/l.json" "$TI" GET "$W/imaging?modality=CT" >/dev/null; studies "$T/l.json")"
check_eq "... state=claimed" "$CT" "$(req "$T/l.json" "$TI" GET "$W/imaging?state=claimed" >/dev/null; studies "$T/l.json")"
check_eq "... priority=urgent, arrival order, today's date range" "$CT" "$(req "$T/l.json" "$TI" GET "$W/imaging?priority=urgent&order=arrival&from=$(date +%Y%m%d)&to=$(date +%Y-%m-%d)" >/dev/null; studies "$T/l.json")"
check_eq "... nothing arrived yesterday" 0 "$(req "$T/l.json" "$TI" GET "$W/imaging?to=$(date -d yesterday +%Y%m%d)" >/dev/null; jget "$T/l.json" 'd["counts"]["matched"]')"
check_eq "... paging: limit=1 offset=1 of 3" "1 3" "$(req "$T/l.json" "$TI" GET "$W/imaging?limit=1&offset=1" >/dev/null; jget "$T/l.json" 'str(len(d["items"])) + " " + str(d["counts"]["matched"])')"
req "$T/l.json" "$TI" GET "$W/imaging?limit=2" >/dev/null
cur=$(jget "$T/l.json" 'd["next"]')
check_eq "... by cursor: the page after a page of 2 is the 3rd, the last" "$(req "$T/a.json" "$TI" GET "$W/imaging" >/dev/null; jget "$T/a.json" 'd["items"][2]["study"]') None" \
  "$(req "$T/l.json" "$TI" GET "$W/imaging?limit=2&cursor=$cur" >/dev/null; jget "$T/l.json" 'd["items"][0]["study"] + " " + str(d["next"])')"
check_eq "... a cursor with an offset: 400" 400 "$(req "$T/e.json" "$TI" GET "$W/imaging?cursor=$cur&offset=1")"
check_eq "... a cursor of the other order: 400" 400 "$(req "$T/e.json" "$TI" GET "$W/imaging?order=arrival&cursor=$cur")"
check_eq "SSE: claimed, released, claimed, reassigned for the CT, in order, with users" \
  "claimed:rimg released:rimg claimed:rimg2 reassigned:lead" \
  "$(sleep 0.3; sse_events img | awk -v s="$CT" '$4 == s && $3 != "ready" && $3 != "received" && $3 != "renewed" {printf "%s%s:%s", (n++ ? " " : ""), $3, $7}')"
req "$T/x.json" "$T1" GET '/api/v1/exams?hospital=me' >/dev/null
check_eq "township1's exams: the CT is being read, the MR waits" "being_read waiting" \
  "$(exam_status "$T/x.json" "$CT") $(exam_status "$T/x.json" "$MR")"
check_eq "tech1 may not see township2's exams: 403" 403 "$(req "$T/e.json" "$T1" GET '/api/v1/exams?hospital=township2')"
check_eq "the admin may: 200, one exam" "200 1" "$(req "$T/x.json" "$TA" GET '/api/v1/exams?hospital=township2') $(jget "$T/x.json" 'd["total"]')"

# ---- 48 concurrent claimers (4 users) on the MR: exactly one user wins ----
for i in $(seq 1 12); do
  for u in "rimg:$TI" "rimg2:$TI2" "lead:$TL" "admin:$TA"; do
    (code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer ${u#*:}" "$U$W/imaging/items/$MR/claim")
     echo "${u%%:*} $code" >>"$T/race.txt") &
  done
done
wait_race() { for _ in $(seq 1 300); do [ "$(wc -l <"$T/race.txt" 2>/dev/null || echo 0)" -ge 48 ] && return 0; sleep 0.1; done; return 1; }
wait_race
winners=$(awk '$2 == 200 {print $1}' "$T/race.txt" | sort -u)
check_eq "48 answers, all 200 or 409" 48 "$(awk '$2 == 200 || $2 == 409' "$T/race.txt" | wc -l)"
check_eq "exactly one user won" 1 "$(echo "$winners" | grep -c .)"
check_eq "... every request of the others got 409" 36 "$(awk -v w="$winners" '$1 != w && $2 == 409' "$T/race.txt" | wc -l)"
check_eq "... and holds the item" "$winners" "$(rcli_raw wl HGET "hr:wl:{$MR}" claimed_by)"

# ---- a worklist failure refuses the C-STORE; the retry (IDENTICAL) records the arrival ----
rcli wl SET "hr:wl:{$CR}" broken >/dev/null
storescu -v -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/cr" >"$T/cr1.log" 2>&1 || true
check "C-STORE refused with A700 while the worklist fails" grep -qi 'a700\|outofresources' "$T/cr1.log"
check "... although the instance is durable and indexed" test "$(rcli_raw wl EXISTS "hr:{$CR}:st")" = 1
rcli wl DEL "hr:wl:{$CR}" >/dev/null
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/cr" >"$T/cr2.log" 2>&1 && st=0 || st=$?
check_eq "the retry succeeds" "0" "$st$(grep -i 'a700\|fail' "$T/cr2.log" || true)"
check_eq "... and the item exists (receiving, one instance)" "receiving 1 imaging" "$(hm "$CR" state instances center)"
check_eq "claiming a receiving item: 409 invalid_state" "409 invalid_state" "$(req "$T/e.json" "$TI" POST "$W/imaging/items/$CR/claim") $(jget "$T/e.json" 'd["error"]')"
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/cr" >/dev/null 2>&1
check_eq "an identical resend is not a new instance" 1 "$(rcli_raw wl HGET "hr:wl:{$CR}" instances)"

# ---- lease expiry: the MR returns to the queue when its lease runs out ----
lease=$(rcli_raw wl HGET "hr:wl:{$MR}" lease_until_ms)
echo "    waiting for the MR's lease to end ($(( (lease - $(now_ms)) / 1000 )) s)"
tr=$(sse_wait img expired "$MR" 40) || tr=0
echo "    lease end $lease; SSE expired received $((tr - lease)) ms after"
check "SSE: expired within 1 s of the lease's end" test $((tr - lease)) -ge 0 -a $((tr - lease)) -lt 1000
check_eq "... the MR is ready again, unclaimed" "ready " "$(hm "$MR" state claimed_by) "
check_eq "... the event names the former holder" "$winners" "$(sse_events img | awk -v s="$MR" '$3 == "expired" && $4 == s {print $8; exit}')"

# ---- overdue: the stat ECG's turnaround (1 unit of 20 s) runs out ----
due=$(rcli_raw wl HGET "hr:wl:{$ECG}" due_ms)
echo "    waiting for the ECG's due time ($(( (due - $(now_ms)) / 1000 )) s)"
tr=$(sse_wait ecg overdue "$ECG" 90) || tr=0
echo "    due $due; SSE overdue received $((tr - due)) ms after"
check "SSE: overdue within 1 s of the due time" test $((tr - due)) -ge 0 -a $((tr - due)) -lt 1000
check_eq "... due 1 unit (20 s) after arrival" 1 "$(( due - $(rcli_raw wl HGET "hr:wl:{$ECG}" arrived_ms) == 20000 ? 1 : 0 ))"
check_eq "overdue=true lists it, counts.overdue 1" "$ECG 1" "$(req "$T/l.json" "$TE" GET "$W/ecg?overdue=true" >/dev/null; jget "$T/l.json" '" ".join(i["study"] for i in d["items"]) + " " + str(d["counts"]["overdue"])')"
check_eq "... flagged on the item" True "$(jget "$T/l.json" 'd["items"][0]["overdue"]')"
check "escalation logged once" test "$(grep -c "escalation.*$ECG" "$T/wl/huren.log")" = 1
sleep 0.6
check_eq "... and one overdue event" 1 "$(sse_count ecg overdue "$ECG")"

# ---- restart between arrival and completion (DX: quiet 8 s); SSE streams end at stop ----
last_img=$(sse_events img | tail -1 | awk '{print $2}')
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/dx" >/dev/null 2>&1
check_eq "DX receiving" receiving "$(hm "$DX" state)"
t0=$(now_ms)
stop_huren "$HUREN_PID"
t1=$(now_ms)
echo "    stop with 4 open event streams took $((t1 - t0)) ms"
check "the stop does not wait for the open event streams (< 5 s)" test $((t1 - t0)) -lt 5000
sleep 0.3
check "the streams ended (no curl left)" test -z "$(pgrep -f "curl -sN --max-time 500 .*127.0.0.1:$hport" || true)"
start_huren wl "$cfg"
wait_port "$hport" 30
for _ in $(seq 1 100); do [ "$(hm "$DX" state)" = ready ] && break; sleep 0.2; done
check_eq "after the restart the DX becomes ready" ready "$(hm "$DX" state)"
check "... not before its quiet period" test $(( $(rcli_raw wl HGET "hr:wl:{$DX}" ready_ms) - $(rcli_raw wl HGET "hr:wl:{$DX}" last_ms) )) -ge 8000

# ---- reconnect with Last-Event-ID: the missed events, nothing twice ----
sse_open img2 "$TI" "$last_img"
has_event img2 ready "$DX" 5 || true
check "replay after $last_img: the DX's ready (missed while down)" has_event img2 ready "$DX" 1
check "... and its received event" has_event img2 received "$DX" 1
check_eq "... no event at or before the Last-Event-ID" "" "$(sse_events img2 | awk -v l="$last_img" '{split($2, a, "-"); split(l, b, "-"); if (a[1] < b[1] || (a[1] == b[1] && a[2] <= b[2])) print $2}')"
check_eq "... ids strictly increasing" "" "$(sse_events img2 | awk '{split($2, a, "-"); if (NR > 1 && (a[1] < p1 || (a[1] == p1 && a[2] <= p2))) print $2; p1 = a[1]; p2 = a[2]}')"
check_eq "an invalid Last-Event-ID: 400" 400 "$(req "$T/e.json" "$TI" GET /api/v1/events -H 'Last-Event-ID: yesterday')"
check_eq "an external user has no events: 403" 403 "$(printf 'external-pass-1\n' | "$HUREN" user add ext --role external --hospital township2 --config "$cfg" >/dev/null; req "$T/e.json" "$(login ext external-pass-1)" GET /api/v1/events)"
# live after the replay: a completion on the new stream
sse_open tech1b "$T1"
sleep 0.5
t0=$(now_ms)
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/us" >/dev/null 2>&1 || true
t0=$(now_ms)
check_eq "tech1 completes the US at once" "200 ready" "$(req "$T/c.json" "$T1" POST "/api/v1/exams/$US/complete") $(jget "$T/c.json" 'd["state"]')"
tr=$(sse_wait img2 ready "$US" 5) || tr=0
echo "    live ready on the replayed stream $((tr - t0)) ms after the completion request"
check "SSE after the replay: live ready within 1 s" test $((tr - t0)) -lt 1000 -a "$tr" -gt 0
check "tech1's new stream gets it too" has_event tech1b ready "$US" 2

# ---- the retention window: a Last-Event-ID older than the kept events -> gap ----
first_id=$(sse_events adm | awk '$2 != "-" {print $2; exit}')
rcli wl XTRIM hr:wl:events MAXLEN 2 >/dev/null
sse_open gap "$TA" "$first_id"
for _ in $(seq 1 40); do grep -q 'event: gap' "$T/sse-gap.log" && break; sleep 0.05; done
check "Last-Event-ID before the kept events: event gap first" test "$(sse_events gap | awk 'NR == 1 {print $3}')" = gap
check_eq "... then the 2 kept events" 2 "$(sse_events gap | awk '$3 != "gap"' | wc -l)"

# ---- audit ----
A=$(cat "$T"/wl/data/audit/*.jsonl)
check "audit: claims with study and outcome" grep -q "\"actor\":\"rimg\".*\"action\":\"worklist-claim\".*\"study\":\"$CT\".*\"outcome\":\"success\"" <<<"$A"
check "audit: the denied claim of the ECG reader" grep -q "\"actor\":\"recg\".*\"action\":\"worklist-claim\".*\"outcome\":\"denied\"" <<<"$A"
check "audit: reassign by the lead" grep -q "\"actor\":\"lead\".*\"action\":\"worklist-reassign\".*\"detail\":\"center=imaging to=rimg\"" <<<"$A"
check "audit: a list" grep -q '"action":"worklist","detail":"center=imaging","outcome":"success"' <<<"$A"
check "audit: the event streams" grep -q '"action":"events","detail":"after=now","outcome":"success"' <<<"$A"
check "audit log verifies" "$HUREN" audit verify --config "$cfg"
check "no ASan/UBSan report" test -z "$(grep -E 'ERROR: AddressSanitizer|runtime error' "$T/wl/huren.log" || true)"

finish
