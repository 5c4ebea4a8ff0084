#!/usr/bin/env bash
# Lab results over HL7 v2 / MLLP into a real huren (decisions 0035, 0037):
# our persistent-connection client (huren-hl7-send) and the independent one
# (Debian python3-hl7: mllp_send and the hl7 module) send ORU^R01 messages
# byte by byte, several per write with NULs between, as duplicates, in
# GB 18030; malformed ones (no MSH, wrong separators, ADT, unknown facility,
# oversized) get AR; an unknown peer address is closed at accept; an idle
# connection is closed; /metrics counts. Durability: a kill -9 during a
# flood loses no acknowledged message; huren dies (debug hook,
# like kill -9) after the journal's fdatasync and before the index commit;
# restarted, the resend gets AA and the index holds the message once.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SEND=$BUILD/huren-hl7-send

port=$(free_port)
cfg=$(write_config h7 "$port")
HP=$(free_port)
U="http://127.0.0.1:$(http_port h7)"
M=$T/msgs
mkdir -p "$M"

# township1 at 127.0.0.2 (its LIS), county at 127.0.0.1; facilities of lab.*
$PY - "$cfg" "$HP" <<'PY'
import json, sys
cfg, hp = sys.argv[1], int(sys.argv[2])
c = json.load(open(cfg))
c["hl7"] = {"enabled": True, "listen": "127.0.0.1", "port": hp, "idle_timeout_s": 2,
            "max_message_bytes": 65536, "facility": "HUB"}
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["addresses"] = ["127.0.0.2"]
c["lab"] = {"facilities": {"CLAB": "county", "T1LAB": "township1"}}
json.dump(c, open(cfg, "w"), indent=1)
PY
add_user "$cfg" admin 'admin-password-1' admin county

# msg FILE CONTROL_ID FACILITY FILLER [TYPE] [CHARSET] [NAME]: one ORU^R01
msg() {
  local f=$1 id=$2 fac=$3 filler=$4 type=${5:-ORU^R01^ORU_R01} cs=${6:-UNICODE UTF-8} name=${7:-ZHANG^SAN}
  $PY - "$f" "$id" "$fac" "$filler" "$type" "$cs" "$name" <<'PY'
import sys
f, cid, fac, filler, typ, cs, name = sys.argv[1:8]
enc = "gb18030" if cs.startswith("GB") else "utf-8"
segs = [
  f"MSH|^~\\&|LIS|{fac}|HUREN|HUB|20261203101500||{typ}|{cid}|P|2.5.1|||||CHN|{cs}",
  f"PID|1||P{filler}^^^{fac}||{name}||19700101|M",
  f"OBR|1|PL{filler}|{filler}|GLU^Glucose^L|||20261203100000|||||||||||||||20261203101000|||F",
  "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|3.9-6.1|N|||F",
]
open(f, "wb").write(("\r".join(segs) + "\r").encode(enc))
PY
}
# uid HOSPITAL FILLER CODE: the exam UID of a lab report (decision 0035)
uid() {
  $PY -c 'import hashlib,sys; d=hashlib.sha256("|".join(sys.argv[1:4]).encode()).digest(); print("2.25.%d" % int.from_bytes(d[:16], "big"))' "$@"
}
# journal_count TEXT: records of the lab journal holding TEXT
journal_count() { cat "$T"/h7/data/journal/lab/* 2>/dev/null | grep -a -o "$1" | wc -l; }

msg "$M/t1a.hl7" T1-0001 T1LAB F1001
msg "$M/t1b.hl7" T1-0002 T1LAB F1002
msg "$M/t1c.hl7" T1-0003 T1LAB F1003
msg "$M/t1d.hl7" T1-0004 T1LAB F1004
msg "$M/c1.hl7" C-0001 CLAB F2001
msg "$M/c2.hl7" C-0002 CLAB F2002
msg "$M/gb.hl7" T1-GB01 T1LAB F1100 'ORU^R01^ORU_R01' 'GB 18030-2000' '张三'
msg "$M/adt.hl7" T1-ADT1 T1LAB F1200 'ADT^A01^ADT_A01'
msg "$M/unk.hl7" T1-UNK1 XLAB F1300
msg "$M/crash.hl7" T1-CRASH T1LAB F1400
printf 'PID|1||X\rOBX|1|NM|GLU||1\r' >"$M/nomsh.hl7"
printf 'MSH\r' >"$M/badsep.hl7"
$PY - "$M/big.hl7" <<'PY'
import sys
segs = ["MSH|^~\\&|LIS|T1LAB|HUREN|HUB|20261203101500||ORU^R01^ORU_R01|T1-BIG1|P|2.5.1",
        "PID|1||P1"] + ["NTE|%d||%s" % (i, "x" * 900) for i in range(100)]
open(sys.argv[1], "wb").write(("\r".join(segs) + "\r").encode())
PY

start_huren h7 "$cfg"
wait_port "$HP" 30
H=$HUREN_PID

# -- our client: byte by byte, from township1's address
out=$("$SEND" --port "$HP" --bind 127.0.0.2 --chunk 1 --expect AA "$M/t1a.hl7" 2>"$T/send.err") || true
check_eq "one message written byte by byte: AA" "AA T1-0001" "$out"
U1=$(uid township1 F1001 GLU)
check_eq "stored: the lab report's exam" 1 "$(rcli h7 EXISTS "hr:lab:{$U1}")"
check_eq "the owner is the peer's hospital" township1 "$(rcli h7 HGET "hr:{$U1}:st" hospital)"

# -- duplicates on one connection, NULs between the frames, in one write
out=$("$SEND" --port "$HP" --bind 127.0.0.2 --repeat 3 --window 3 --nul "$M/t1a.hl7" 2>/dev/null | tr '\n' ' ')
check_eq "the same MSH-10 three times: AA each time" "AA T1-0001 AA T1-0001 AA T1-0001 " "$out"
check_eq "stored once in the index" 1 "$(rcli h7 ZCARD "hr:lab:{$U1}:msgs")"
check_eq "journaled once" 1 "$(journal_count T1-0001)"

# -- several messages per write, random chunks, in order, on one connection
out=$("$SEND" --port "$HP" --bind 127.0.0.2 --window 3 --nul --chunk 50 "$M/t1b.hl7" "$M/t1c.hl7" "$M/t1d.hl7" 2>/dev/null | tr '\n' ' ')
check_eq "three per write in random chunks: AA in order" "AA T1-0002 AA T1-0003 AA T1-0004 " "$out"
check_eq "each stored" "1 1 1" "$(for f in F1002 F1003 F1004; do rcli h7 EXISTS "hr:lab:{$(uid township1 $f GLU)}"; done | tr '\n' ' ' | sed 's/ $//')"

# -- GB 18030 text
out=$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/gb.hl7" 2>/dev/null)
check_eq "GB 18030-2000 message: AA" "AA T1-GB01" "$out"
check_eq "the patient name read as UTF-8" "张三" "$(rcli_raw h7 HGET "hr:{$(uid township1 F1100 GLU)}:st" patient_name)"

# -- refused messages: AR, nothing stored
ar() { "$SEND" --port "$HP" --bind 127.0.0.2 "$@" 2>/dev/null | head -1 | cut -d' ' -f1; }
check_eq "no MSH: AR" AR "$(ar "$M/nomsh.hl7")"
check_eq "no usable separators: AR" AR "$(ar "$M/badsep.hl7")"
check_eq "ADT^A01 (unsupported type): AR" AR "$(ar "$M/adt.hl7")"
check_eq "unknown facility: AR" AR "$(ar "$M/unk.hl7")"
check_eq "a facility of another hospital than the peer's: AR" AR "$(ar "$M/c1.hl7")"
check_eq "nothing stored for them" 0 "$(rcli h7 EXISTS "hr:lab:{$(uid township1 F1200 GLU)}")"
# oversized: the AR names the message, then the connection closes
out=$($PY - "$HP" "$M/big.hl7" <<'PY'
import socket, sys, hl7
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x0b" + open(sys.argv[2], "rb").read() + b"\x1c\r")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
ack = hl7.parse(data.strip(b"\x0b\x1c\r").decode())
print(ack.segment("MSA")[1], ack.segment("MSA")[2], "closed")
PY
)
check_eq "oversized: AR with its MSH-10, then closed" "AR T1-BIG1 closed" "$out"

# -- the county's LIS from 127.0.0.1 with python3-hl7's mllp_send (two messages in one file)
cat "$M/c1.hl7" "$M/c2.hl7" | tr '\r' '\n' >"$M/county.txt"
mllp_send --loose -f "$M/county.txt" -p "$HP" 127.0.0.1 | tr '\r' '\n' >"$T/mllp_send.out"
check_eq "mllp_send: two ACKs, AA" "MSA|AA|C-0001 MSA|AA|C-0002" "$(grep '^MSA' "$T/mllp_send.out" | tr '\n' ' ' | sed 's/ $//')"
# the hl7 module: client and ACK parser
out=$($PY - "$HP" "$M/c2.hl7" "$M/gb.hl7" <<'PY'
import sys, hl7
from hl7.client import MLLPClient
with MLLPClient("127.0.0.1", int(sys.argv[1])) as c:
    a = hl7.parse(c.send_message(open(sys.argv[2], "rb").read().decode()).decode())
    print(a.segment("MSA")[1], a.segment("MSA")[2], a.segment("MSH")[3], a.segment("MSH")[4], a.segment("MSH")[5])
PY
)
check_eq "hl7 module: duplicate AA, MSH-3/4 HUREN/HUB, MSH-5 the sender's" "AA C-0002 HUREN HUB LIS" "$out"

# -- an address in no hospital: closed at accept, nothing read
if "$SEND" --port "$HP" --bind 127.0.0.5 --timeout 5 "$M/t1b.hl7" >"$T/unk.out" 2>&1; then r=answered; else r=refused; fi
check_eq "unknown peer address: closed without an ACK" refused "$r"
check "unknown peer address: logged" grep -q '127.0.0.5:[0-9]*: connection refused: the address is in no hospital' "$T/h7/huren.log"

# -- idle timeout (hl7.idle_timeout_s 2)
out=$($PY - "$HP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t0 = time.monotonic()
closed = s.recv(1) == b""
dt = time.monotonic() - t0
print("closed" if closed else "data", "in time" if 1.8 <= dt < 4.5 else "after %.1f s" % dt)
PY
)
check_eq "an idle connection is closed after hl7.idle_timeout_s" "closed in time" "$out"

# -- /metrics
T_AD=$(login_token "$U" admin 'admin-password-1')
curl -s -H "Authorization: Bearer $T_AD" "$U/metrics" >"$T/metrics.txt"
check "metrics: ACKs by code" grep -qE '^huren_hl7_acks_total\{code="AA"\} 1[0-9]$' "$T/metrics.txt"
check "metrics: ARs" grep -qE '^huren_hl7_acks_total\{code="AR"\} [6-9]$' "$T/metrics.txt"
check "metrics: refused connections" grep -qE '^huren_hl7_connections_refused_total 1$' "$T/metrics.txt"
check "metrics: nothing in flight" grep -qE '^huren_hl7_in_flight 0$' "$T/metrics.txt"
check "metrics: too long" grep -qE '^huren_hl7_too_long_total 1$' "$T/metrics.txt"

# -- kill -9 during a flood on 4 connections: every message acknowledged
# AA before the kill is in the index after the restart
msg "$M/flood.hl7" 'FL@N@' T1LAB 'FL@N@'
"$SEND" --port "$HP" --bind 127.0.0.2 --connections 4 --repeat 2000 --timeout 5 "$M/flood.hl7" \
  >"$T/flood.out" 2>/dev/null &
SP=$!
for _ in $(seq 1 300); do [ "$(grep -c '^AA' "$T/flood.out")" -ge 100 ] && break; sleep 0.05; done
kill -KILL "$H"
wait "$H" 2>/dev/null || true
wait "$SP" 2>/dev/null || true
acked=$(grep -c '^AA FL' "$T/flood.out" || true)
check "the flood was cut by the kill ($acked of 2000 acknowledged)" test "$acked" -ge 100 -a "$acked" -lt 2000
start_huren h7 "$cfg"
wait_port "$HP" 30
H=$HUREN_PID
found=$(grep '^AA FL' "$T/flood.out" | cut -d' ' -f2 | $PY -c '
import hashlib, sys
for cid in sys.stdin.read().split():
    d = hashlib.sha256(("township1|%s|GLU" % cid).encode()).digest()
    print("EXISTS hr:lab:{2.25.%d}" % int.from_bytes(d[:16], "big"))' |
  redis-cli -s "$T/h7/data/redis/redis.sock" | awk '{ s += $1 } END { print s + 0 }')
check_eq "every message acknowledged before the kill -9 is in the index" "$acked" "$found"

# -- durability: die after the journal's fdatasync, before the index commit
stop_huren "$H" || true
HUREN_TEST_CRASH_AFTER_JOURNAL=1 "$HUREN" serve --config "$cfg" >>"$T/h7/huren.log" 2>&1 &
H=$!
PIDS+=("$H")
wait_port "$HP" 30
if "$SEND" --port "$HP" --bind 127.0.0.2 --timeout 10 "$M/crash.hl7" >"$T/crash.out" 2>&1; then r=answered; else r=none; fi
st=0
wait "$H" || st=$?
check_eq "no ACK: huren died after the journal write" "none 137" "$r $st"
UC=$(uid township1 F1400 GLU)
check_eq "the message is in the journal" 1 "$(journal_count T1-CRASH)"
check_eq "and not in the index" 0 "$(rcli h7 EXISTS "hr:lab:{$UC}")"
# (the embedded redis orphaned by the crash is stopped by the next start)
start_huren h7 "$cfg"
wait_port "$HP" 30
H=$HUREN_PID
out=$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/crash.hl7" 2>/dev/null)
check_eq "after the restart the resend gets AA" "AA T1-CRASH" "$out"
out=$("$SEND" --port "$HP" --bind 127.0.0.2 "$M/crash.hl7" 2>/dev/null)
check_eq "and again AA" "AA T1-CRASH" "$out"
check_eq "exactly one copy in the index" 1 "$(rcli h7 ZCARD "hr:lab:{$UC}:msgs")"
check "the lab report is whole (its observation)" sh -c "$(printf '%q ' redis-cli -s "$T/h7/data/redis/redis.sock" --raw HGET "hr:lab:{$UC}" json) | grep -q '5.4'"
check_eq "the earlier reports are still there once" 1 "$(rcli h7 ZCARD "hr:lab:{$U1}:msgs")"
if stop_huren "$H"; then st=0; else st=$?; fi
check_eq "huren stops cleanly" 0 "$st"
finish
