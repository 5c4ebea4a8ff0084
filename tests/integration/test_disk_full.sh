#!/usr/bin/env bash
# Disk full while objects stream in (issue 8): the data directory is a small
# tmpfs (Redis elsewhere), objects larger than the free space arrive by C-STORE
# on several associations at once (each paused mid-object while huren writes)
# and by STOW-RS. Every one must end in a failure status (A700 with an Error
# Comment; STOW FailedSOP A700), never success and never a hang; no temp file
# is left, nothing is indexed, and all dicom.max_associations slots are free
# again afterwards. Needs root (mount); skipped with a message otherwise.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"

MNT=$(mktemp -d "${TMPDIR:-/tmp}/huren-df.XXXXXX")
if ! mount -t tmpfs -o size=8m,mode=0750 tmpfs "$MNT" 2>"$T/mount.err"; then
  rmdir "$MNT"
  echo "skip - disk full: cannot mount a tmpfs here ($(cat "$T/mount.err")); needs root"
  finish
  exit 0
fi
df_cleanup() {
  cleanup
  umount -l "$MNT" 2>/dev/null || true
  rmdir "$MNT" 2>/dev/null || true
}
trap df_cleanup EXIT

port=$(free_port)
rport=$(free_port)
start_redis df "$rport"
# every peer calls from 127.0.0.1: no per-address cap, no reserve
cfg=$(write_config df "$port" "redis://127.0.0.1:$rport" \
  '"max_associations": 4, "max_pdu": 16384, "max_per_address": 8, "reserved_associations": 0' \
  '"max_body_bytes": 67108864')
sed -i "s|\"data_dir\": \"[^\"]*\"|\"data_dir\": \"$MNT\"|" "$cfg"
printf '%s\n' 'tech1-password' | "$HUREN" user add tech1 --role technician --hospital township1 \
  --config "$cfg" >/dev/null
start_huren df "$cfg"
hp=$(http_port df)
wait_port "$hp" 30
tmpn() { find "$MNT/tmp" -type f | wc -l; }
objn() { find "$MNT/objects" -type f | wc -l; }

# four objects of ~12 MB each, every one larger than the whole file system
for i in 1 2 3 4; do
  "$GEN" --out "$T/big$i" --modality CT --size-total 12000000 --seed $((60 + i)) \
    --prefix "b$i" >/dev/null
done
# and a small one that fits, to show a full disk is the only reason
"$GEN" --out "$T/small" --instances 1 --bytes 8192 --modality CR --seed 70 >/dev/null

# --- one association: A700 with a comment, not success, not a hang
out=$(timeout 60 storescu -d -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T"/big1/* 2>&1) || true
check "C-STORE on a full disk gets A700 (Out of Resources)" grep -Eqi "Out ?of ?Resources|0xa700" <<<"$out"
check "the Error Comment says why" grep -q "(0000,0902) LO \[storage failure: No space left on device" <<<"$out"
check "huren logged the refusal" grep -q "refused with A700: storage failure" "$T/df/huren.log"
check "never success" bash -c "! grep -q 'Received Store Response (Success)' <<<'$out'"

# --- four associations at once (the limit), each paused mid-object
pids=()
for i in 1 2 3 4; do
  timeout 90 storescu -v -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T"/big$i/* \
    >"$T/par$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
a700=$( (grep -Eli "Out ?of ?Resources|0xa700" "$T"/par*.log || true) | wc -l)
check_eq "4 parallel associations on a full disk: 4 x A700, none timed out" 4 "$a700"
check_eq "no success among them" 0 "$( (grep -l 'Store Response (Success)' "$T"/par*.log || true) | wc -l)"

# --- STOW-RS of an object larger than the free space
login() {
  curl -s -X POST "http://127.0.0.1:$hp/api/v1/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$1\", \"password\": \"$2\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
TOK=$(login tech1 'tech1-password')
$DW stow-body "$T/stow.body" BNDdf "$T"/big2/*
code=$(curl -s -m 60 -o "$T/stow.json" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BNDdf' \
  --data-binary @"$T/stow.body" "http://127.0.0.1:$hp/dicomweb/studies") || true
check_eq "STOW on a full disk: 409, FailedSOP A700" "409|0 1 A700" \
  "$code|$($DW stow-counts "$T/stow.json" 2>/dev/null)"

# --- nothing left behind
for _ in $(seq 1 100); do [ "$(tmpn)" -eq 0 ] && break; sleep 0.05; done
check_eq "no temp file left" 0 "$(tmpn)"
check_eq "no object stored" 0 "$(objn)"
check_eq "nothing indexed" 0 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"
check "huren still runs" kill -0 "$HUREN_PID"

# --- every association slot is free: 4 held at once all succeed
cat >"$T/hold.py" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[2])
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(assoc_rq(contexts=((1, VERIFICATION, IMPLICIT_LE),)))
t, b = c.recv_pdu()
print(t, flush=True)
time.sleep(float(sys.argv[3]))
PY
holders=()
for i in 1 2 3 4; do
  python3 "$T/hold.py" "$port" "$(dirname "$0")" 3 >"$T/hold$i.out" 2>&1 &
  holders+=($!)
done
accepted=0
for _ in $(seq 1 100); do
  accepted=$(cat "$T"/hold*.out 2>/dev/null | grep -c '^2$' || true)
  [ "$accepted" -ge 4 ] && break
  sleep 0.1
done
check_eq "dicom.max_associations (4) associations accepted at once afterwards" 4 "$accepted"
for p in "${holders[@]}"; do wait "$p" 2>/dev/null || true; done
check "a small object still stores" timeout 30 storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 \
  "$port" "$T"/small/*
check_eq "and only it is indexed" 1 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"

check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
