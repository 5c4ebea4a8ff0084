#!/usr/bin/env bash
# The acknowledgement comes after durability: for one C-STORE, strace on the
# running hub must show fdatasync(temp file) -> rename into objects/ ->
# fsync(object directory) -> the index commit written to Redis -> the
# C-STORE-RSP written to the modality, in that order.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config dur "$port")
start_huren dur "$cfg"
"$GEN" --out "$T/one" --instances 1 --bytes 300000 --modality CT --seed 61 >/dev/null

sop=$(sop_uid "$(ls "$T/one"/* | head -1)")
# -s: enough of each write to see which Redis command carries this SOP
# Instance UID (the index commit), among the sweeper's and others' commands
strace -f -yy -qq -e trace=fdatasync,fsync,rename,renameat2,link,write,writev -s 1024 -p "$HUREN_PID" -o "$T/trace" &
st=$!
for _ in $(seq 1 50); do [ -s "$T/trace" ] || grep -q . "$T/trace" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
check "storescu sends one object" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/one"
sleep 0.3
kill -INT "$st"; wait "$st" 2>/dev/null || true

order=$(python3 - "$T/trace" "$port" "$sop" <<'PY'
import re, sys
port, sop = sys.argv[2], sys.argv[3]
steps = []
for line in open(sys.argv[1], errors='replace'):
    if re.search(r'fdatasync\(\d+<[^>]*/tmp/[^>]*\.part>', line): steps.append('fdatasync')
    elif re.search(r'(rename\(|renameat2\(AT_FDCWD(<[^>]*>)?, |link\()"[^"]*/tmp/[^"]*", (AT_FDCWD(<[^>]*>)?, )?"[^"]*/objects/', line):
        steps.append('rename')  # renameat2 RENAME_NOREPLACE: an object is never replaced
    elif re.search(r'fsync\(\d+<[^>]*/objects/[0-9a-f]{2}/[0-9a-f]{2}>', line): steps.append('fsync-dir')
    elif re.search(r'write\(\d+<UNIX-STREAM:', line) and 'EVALSHA' in line and sop in line:
        steps.append('index')  # the index commit of this instance (redis is a unix socket)
    elif re.search(r'writev?\(\d+<TCP:\[127\.0\.0\.1:%s->' % port, line): steps.append('response')
# keep the first occurrence of each step after the first fdatasync
seen = []
for s in steps:
    if s == 'fdatasync' and not seen: seen.append(s)
    elif seen and s not in seen: seen.append(s)
print(' '.join(seen))
PY
)
echo "observed: $order"
check_eq "durable before acknowledged" "fdatasync rename fsync-dir index response" "$order"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
