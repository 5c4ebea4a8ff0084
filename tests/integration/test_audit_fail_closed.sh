#!/usr/bin/env bash
# Fail closed (issue 8, section 6): while the audit log cannot record a read
# of patient data, the read is refused — QIDO/WADO 503 audit_unavailable,
# C-FIND A700 — logged and counted in /metrics; reads come back by themselves
# once records can be written again. The audit directory is a small tmpfs
# that the test fills up (the tests run as root here).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

port=$(free_port)
cfg=$(write_config afc "$port")
hp=$(http_port afc)
U="http://127.0.0.1:$hp"
data=$T/afc/data
MNT=$data/audit
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=512k tmpfs "$MNT" 2>"$T/mount.err"; then
  echo "cannot mount a tmpfs (not root?): $(cat "$T/mount.err")" >&2
  exit 1
fi
trap 'st=$?; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; umount -l "$MNT" 2>/dev/null || true; (exit $st); cleanup' EXIT

printf 'admin-password-1\n' | "$HUREN" user add admin --role admin --hospital county --config "$cfg" >/dev/null
start_huren afc "$cfg"
wait_port "$hp" 30
TOKEN=$(curl -s -X POST "$U/api/v1/login" -d '{"user": "admin", "password": "admin-password-1"}' |
  $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$GEN" --out "$T/ct" --instances 2 --bytes 2048 --patient-id AFC1 --seed 91 >/dev/null
check "a study is stored" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
qido() { curl -s -o "$T/q.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$U/dicomweb/studies?PatientID=AFC1"; }
check_eq "QIDO answers while the audit log works" 200 "$(qido)"

# the audit file system fills up: the next record cannot be written
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
# reads served before the failure is seen fill the last page of the file;
# their records stay queued (and are written later)
for _ in $(seq 1 60); do
  grep -q "audit write failed" "$T/afc/huren.log" && break
  qido >/dev/null
  sleep 0.1
done
check "huren saw the audit write fail" grep -q "audit write failed" "$T/afc/huren.log"
check_eq "QIDO is refused: 503" 503 "$(qido)"
check_eq "with a JSON reason" audit_unavailable "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$T/q.json")"
study=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check_eq "WADO is refused: 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$U/dicomweb/studies/$study/metadata")"
check_eq "thumbnails (rendered images) are refused: 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$U/dicomweb/studies/$study/thumbnail")"
check_eq "report deliveries are refused: 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$U/api/v1/deliveries?report=r1-$study")"
out=$(findscu -v -aet TOWNSHIP1 -aec HUREN -S -k QueryRetrieveLevel=STUDY -k PatientID=AFC1 \
  -k StudyInstanceUID 127.0.0.1 "$port" 2>&1 || true)
check "C-FIND is refused with A700" grep -Eqi "Out ?of ?Resources|a700" <<<"$out"
check "and returns no match" bash -c "! grep -q '$study' <<<'$out'"
refusals=$(curl -s -H "Authorization: Bearer $TOKEN" "$U/metrics" | sed -n 's/^huren_audit_read_refusals_total //p')
check "the refusals are counted in /metrics ($refusals)" test "${refusals:-0}" -ge 3
check "and logged" grep -q "refused: the audit log cannot record it" "$T/afc/huren.log"
check "ingest is not a read: C-STORE still works" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"

# space again: the queued records are written and reads come back
rm -f "$MNT/filler"
ok=0
for _ in $(seq 1 50); do [ "$(qido)" = 200 ] && { ok=1; break; }; sleep 0.2; done
check "reads are served again once records can be written" test "$ok" = 1
check "the queued records were written" grep -q '"action":"qido"' "$MNT"/audit-*.jsonl
stop_huren "$HUREN_PID" || true
check "the audit chain verifies" "$HUREN" audit verify --config "$cfg"
finish
