#!/usr/bin/env bash
# Reader and auditor scope (issue 8, section 6; decision 0005): a county
# reader sees the studies routed to their own center plus their hospital's,
# nothing else — in QIDO, WADO (absent-like 404) and the worklist.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

port=$(free_port)
cfg=$(write_config rs "$port")
U="http://127.0.0.1:$(http_port rs)"
adduser() { add_user "$cfg" "$@"; }
adduser rimg 'rimg-password-1' reader county imaging
adduser recg 'recg-password-1' reader county ecg
adduser aecg 'aecg-password-1' auditor county ecg
start_huren rs "$cfg"
wait_port "$(http_port rs)" 30
login() { login_token "$U" "$@"; }
TI=$(login rimg 'rimg-password-1')
TE=$(login recg 'recg-password-1')
TA=$(login aecg 'aecg-password-1')

"$GEN" --out "$T/ct" --modality CT --instances 1 --bytes 2048 --patient-id RS1 --seed 61 >/dev/null
"$GEN" --out "$T/ecg" --modality ECG --patient-id RS2 --seed 62 >/dev/null
"$GEN" --out "$T/own" --modality CT --instances 1 --bytes 2048 --patient-id RS3 --seed 63 >/dev/null
check "township1 sends a CT and an ECG" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/ecg"
check "the county sends its own CT" storescu -aet COUNTY -aec HUREN +sd 127.0.0.1 "$port" "$T/own"
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
CT=$(uid "$T/ct"); ECG=$(uid "$T/ecg"); OWN=$(uid "$T/own")
check_eq "the CT went to imaging" imaging "$(rcli rs HGET "hr:wl:{$CT}" center)"
check_eq "the ECG went to ecg" ecg "$(rcli rs HGET "hr:wl:{$ECG}" center)"

seen() { # token -> the studies QIDO shows, sorted by patient id
  curl -s -H "Authorization: Bearer $1" "$U/dicomweb/studies?limit=100" |
    $PY -c 'import json,sys; print(" ".join(sorted(s["00100020"]["Value"][0] for s in json.load(sys.stdin))))'
}
check_eq "the imaging reader sees imaging's studies and the county's" "RS1 RS3" "$(seen "$TI")"
check_eq "the ECG reader sees the ECG and the county's, not imaging's township CT" "RS2 RS3" "$(seen "$TE")"
check_eq "so does the ECG center's auditor" "RS2 RS3" "$(seen "$TA")"
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$2"; }
check_eq "the ECG reader cannot read the township CT (404 like absent)" 404 "$(code "$TE" "$U/dicomweb/studies/$CT/metadata")"
check_eq "the imaging reader can" 200 "$(code "$TI" "$U/dicomweb/studies/$CT/metadata")"
check_eq "the ECG reader reads the ECG" 200 "$(code "$TE" "$U/dicomweb/studies/$ECG/metadata")"
check_eq "study-level QIDO of the CT for the ECG reader: empty" 0 \
  "$(curl -s -H "Authorization: Bearer $TE" "$U/dicomweb/studies/$CT/series" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check_eq "the same query by PatientID: nothing" "" \
  "$(curl -s -H "Authorization: Bearer $TE" "$U/dicomweb/studies?PatientID=RS1" | $PY -c 'import json,sys; print(" ".join(s["00100020"]["Value"][0] for s in json.load(sys.stdin)))')"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
