#!/usr/bin/env bash
# kill -9 of huren in the middle of ingest; restart + reindex: every
# acknowledged instance is present and indexed, no partial object is visible.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config crash "$port")
start_huren crash "$cfg"

"$GEN" --out "$T/data" --series 2 --instances 150 --bytes 65536 --modality MR --seed 31 >/dev/null
storescu -v -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/data" >"$T/send.log" 2>&1 &
sender=$!
# let some instances through, then kill huren while objects are in flight
for _ in $(seq 1 200); do
  n=$(grep -c "Received Store Response (Success)" "$T/send.log" || true)
  [ "$n" -ge 40 ] && break
  sleep 0.02
done
kill -KILL "$HUREN_PID"
wait "$sender" 2>/dev/null || true

# which instances did huren acknowledge? storescu logs the file, then the response
python3 - "$T/send.log" >"$T/acked.txt" <<'PY'
import re, sys
cur = None
for line in open(sys.argv[1], errors='replace'):
    m = re.search(r'Sending file: (\S+)', line)
    if m: cur = m.group(1)
    if 'Received Store Response (Success)' in line and cur:
        print(cur); cur = None
PY
acked=$(wc -l <"$T/acked.txt")
check "some instances were acknowledged before the kill ($acked)" test "$acked" -ge 40
check "the kill interrupted the sending (not all 300 acknowledged)" test "$acked" -lt 300

start_huren crash "$cfg"
check_eq "restart removed unfinished temp files" 0 "$(count_tmp crash)"
out=$("$HUREN" reindex --config "$cfg" 2>&1)
echo "$out" | tail -1
check "reindex reports no corrupt object" grep -q " 0 corrupt, 0 unreadable" <<<"$out"
objects=$(count_objects crash)
check "reindex saw every object file" grep -q "reindex: $objects objects" <<<"$out"

missing=0
while read -r f; do
  [ -n "$(rcli crash HGET hr:ix:sop "$(sop_uid "$f")")" ] || { missing=$((missing + 1)); echo "not indexed: $f"; }
done <"$T/acked.txt"
check_eq "every acknowledged instance is indexed" 0 "$missing"

# every object on disk is complete: its name is the hash of its dataset
bad=0
for o in $(find "$T/crash/data/objects" -type f); do
  [ "$(dataset_sha "$o")" = "$(basename "$o")" ] || bad=$((bad + 1))
done
check_eq "no partial object visible" 0 "$bad"

# the rest can be sent again and lands
check "resending everything succeeds" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/data"
check_eq "all 300 indexed" 300 "$(rcli crash HLEN hr:ix:sop)"

# reindex from the files alone, after flushing the whole index
out=$("$HUREN" reindex --config "$cfg" --flush 2>&1)
check "flush + reindex rebuilds all 300" grep -q "300 added" <<<"$out"
check_eq "index complete after rebuild" 300 "$(rcli crash HLEN hr:ix:sop)"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
