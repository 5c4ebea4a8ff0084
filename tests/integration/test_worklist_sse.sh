#!/usr/bin/env bash
# Worklist server-sent events across nodes and under load: two huren nodes on
# one Redis (a change on node A reaches a stream on node B within 1 s, the
# Redis pub/sub path), a client asking for HTTP/2 (h2c upgrade: served over
# HTTP/1.1, decision 0018), the 15 s heartbeat, and flow control: a client
# that stops reading its socket while 2,000 events happen still gets every
# one of them, in order, once it reads again (events are read from Redis when
# the client takes more, never queued without bound), while a fast client
# keeps up.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

rport=$(free_port)
start_redis shared "$rport"
pa=$(free_port)
pb=$(free_port)
cfga=$(write_config nodea "$pa" "redis://127.0.0.1:$rport")
cfgb=$(write_config nodeb "$pb" "redis://127.0.0.1:$rport")
UA="http://127.0.0.1:$(http_port nodea)"
UB="http://127.0.0.1:$(http_port nodeb)"

adduser() { # name password role hospital [center]
  printf '%s\n' "$2" | "$HUREN" user add "$1" --role "$3" --hospital "$4" ${5:+--center "$5"} \
    --config "$cfga" >/dev/null
}
adduser rimg 'rimg-password-1' reader county imaging
adduser tech1 'tech1-password-1' technician township1
adduser admin 'admin-password-1' admin county
start_huren nodea "$cfga"
wait_port "$(http_port nodea)" 30
# the nodes of one hub share its person-id key (decision 0027): node A made
# it at its first start; node B gets a copy, as an operator installs it
mkdir -p "$T/nodeb/data/keys"
install -m 600 "$T/nodea/data/keys/person-id.key" "$T/nodeb/data/keys/person-id.key"
start_huren nodeb "$cfgb"
PID_B=$HUREN_PID
wait_port "$(http_port nodeb)" 30

login() { # base user password -> token
  curl -s -X POST "$1/api/v1/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$2\", \"password\": \"$3\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
TI=$(login "$UA" rimg 'rimg-password-1')
T1=$(login "$UB" tech1 'tech1-password-1')
TA=$(login "$UB" admin 'admin-password-1')
check "logins on both nodes (one user base)" test "${#TI}${#T1}${#TA}" = 434343
metric() { # BASE NAME -> value
  curl -s -H "Authorization: Bearer $TA" "$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
now_ms() { local t=${EPOCHREALTIME/./}; echo "${t:0:-3}"; }

stamp() { local line; while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done; }
sse_open() { # NAME BASE TOKEN [curl args]
  local name=$1 base=$2 tok=$3; shift 3
  : >"$T/sse-$name.log"
  (curl -sN --max-time 300 "$@" -H "Authorization: Bearer $tok" "$base/api/v1/events" |
    stamp >"$T/sse-$name.log") &
}
# sse_wait NAME TYPE STUDY [seconds] -> arrival time (ms) of the "data:" line of that event
sse_wait() {
  local name=$1 type=$2 study=$3 tries=$(( ${4:-10} * 20 )) line
  for _ in $(seq 1 "$tries"); do
    line=$(grep -F "\"type\":\"$type\",\"study\":\"$study\"" "$T/sse-$name.log" | head -1 || true)
    if [ -n "$line" ]; then local us=${line%% *}; echo "$((us / 1000))"; return 0; fi
    sleep 0.05
  done
  echo "no $type event for $study on stream $name" >&2
  return 1
}

sse_open b1 "$UB" "$TI"
sse_open h2 "$UA" "$TI" --http2
sse_open idle "$UB" "$TI"
t_start=$(now_ms)
sleep 0.5

# ---- a study on node A; completion on node B; a claim on node A ----
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 4096 --seed 51 --patient-id Q1 >/dev/null
ST=$(dcmdump +P 0020,000D "$(ls "$T"/ct/* | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$pa" "$T/ct" >/dev/null 2>&1
t0=$(now_ms)
check_eq "completion through node B: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $T1" "$UB/api/v1/exams/$ST/complete")"
tr=$(sse_wait b1 ready "$ST" 5) || tr=0
echo "    ready on node B's stream $((tr - t0)) ms after the completion request"
check "node B's stream: ready within 1 s" test "$tr" -gt 0 -a $((tr - t0)) -lt 1000
t0=$(now_ms)
check_eq "claim on node A: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TI" "$UA/api/v1/worklists/imaging/items/$ST/claim")"
tr=$(sse_wait b1 claimed "$ST" 5) || tr=0
echo "    claim on node A seen on node B's stream after $((tr - t0)) ms"
check "node B's stream sees node A's claim within 1 s" test "$tr" -gt 0 -a $((tr - t0)) -lt 1000
check "the stream on node A of a client asking for HTTP/2 (upgrade refused: HTTP/1.1) has both" bash -c "grep -q '\"type\":\"ready\",\"study\":\"$ST\"' '$T/sse-h2.log' && grep -q '\"type\":\"claimed\",\"study\":\"$ST\"' '$T/sse-h2.log'"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $TI" "$UA/api/v1/worklists/imaging/items/$ST/release"

# ---- flow control: a client that stops taking data ----
# An HTTP/1.1 client with a small receive buffer that opens the stream and
# then stops reading its socket until told: once the kernel buffers are full,
# MHD cannot write, so it never asks our stream for more, and the events wait
# in Redis (held bytes stay at most one batch per stream, checked below).
$PY - "$(http_port nodeb)" "$TI" "$T" <<'PY' &
import os, re, socket, sys, time
port, tok, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
           % tok).encode())
raw = b""

def pump(until):
    global raw
    s.settimeout(0.2)
    while time.time() < until:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        if not b:
            return False
        raw += b
        if dechunk(raw).count(b"event: released") >= 1000:
            return True
    return True

def dechunk(r):
    head, sep, body = r.partition(b"\r\n\r\n")
    out = b""
    while sep:
        line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        n = int(line.split(b";")[0] or b"0", 16)
        if n == 0 or len(rest) < n + 2:
            out += rest[:n] if n else b""
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out

pump(time.time() + 0.8)
open(d + "/slow.connected", "w").write("%d\n" % len(raw))
while not os.path.exists(d + "/slow.go"):
    time.sleep(0.1)  # the socket is not read
stalled = len(raw)
pump(time.time() + 60)
data = dechunk(raw)
ids = [tuple(map(int, m)) for m in re.findall(rb"(?:^|\n)id: (\d+)-(\d+)\n", data)]
types = re.findall(rb"\nevent: (\w+)\n", data)
with open(d + "/slow.result", "w") as f:
    f.write("%d %d %d %d %d\n" % (types.count(b"claimed"), types.count(b"released"),
                                  int(ids == sorted(ids) and len(set(ids)) == len(ids)), len(data), stalled))
PY
for _ in $(seq 1 100); do [ -e "$T/slow.connected" ] && break; sleep 0.1; done
sse_open fast "$UB" "$TI"
sleep 0.3
# 1,000 claim + release pairs over one keep-alive connection to node A
args=()
for _ in $(seq 1 1000); do
  args+=("$UA/api/v1/worklists/imaging/items/$ST/claim" "$UA/api/v1/worklists/imaging/items/$ST/release")
done
t0=$(now_ms)
curl -s -w '\n%{http_code}\n' -X POST -H "Authorization: Bearer $TI" "${args[@]}" >"$T/codes.txt"
t1=$(now_ms)
echo "    2,000 claim/release requests in $((t1 - t0)) ms"
check_eq "2,000 answers 200" 2000 "$(grep -c '^200$' "$T/codes.txt")"
for _ in $(seq 1 100); do
  [ "$(grep -c '"type":"released"' "$T/sse-fast.log")" -ge 1000 ] && break
  sleep 0.1
done
check_eq "the fast client got all 1,000 releases while the slow one stalled" 1000 "$(grep -c '"type":"released"' "$T/sse-fast.log")"
check "node B is responsive meanwhile" test "$(curl -s -o /dev/null -w '%{http_code}' "$UB/healthz")" = 200
held=$(metric "$UB" huren_sse_held_bytes)
echo "    node B holds $held bytes for its $(metric "$UB" huren_sse_streams) streams while one is stalled"
check "... at most one batch per stream, not the ~560 kB the stalled client is owed" test "$held" -lt 100000
check_eq "node A's hook failures counter" 0 "$(metric "$UA" huren_ingest_worklist_failures_total)"
touch "$T/slow.go"
for _ in $(seq 1 300); do [ -e "$T/slow.result" ] && break; sleep 0.1; done
read -r n_cl n_rel ordered nbytes stalled <"$T/slow.result" || true
echo "    the stalled client had read $stalled bytes; $nbytes in all once it read again"
check_eq "the slow client gets every claim and release, in order, without duplicates" "1000 1000 1" "$n_cl $n_rel $ordered"

# ---- heartbeat: an idle stream gets a comment every 15 s ----
wait_ms=$(( t_start + 15500 - $(now_ms) ))
[ "$wait_ms" -gt 0 ] && sleep "$(awk -v m="$wait_ms" 'BEGIN {printf "%.3f", m / 1000}')"
check "an idle stream got ': keep-alive' within 15.5 s" grep -q ': keep-alive' "$T/sse-idle.log"

# ---- Redis restarts: the subscription comes back and streams go on ----
kill -TERM "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
sleep 1
start_redis shared "$rport"
for _ in $(seq 1 100); do
  grep -q 'event notifications subscribed again' "$T/nodeb/huren.log" && break
  sleep 0.1
done
check "node B subscribed again after the Redis restart" grep -q 'event notifications subscribed again' "$T/nodeb/huren.log"
code=000
for _ in $(seq 1 20); do # the pool's connections notice the restart on first use
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TI" "$UA/api/v1/worklists/imaging/items/$ST/claim")
  [ "$code" = 200 ] && break
  sleep 0.2
done
t0=$(now_ms)
check_eq "a claim on node A after the restart: 200" 200 "$code"
n_before=$(grep -c '"type":"claimed"' "$T/sse-b1.log")
for _ in $(seq 1 40); do [ "$(grep -c '"type":"claimed"' "$T/sse-b1.log")" -gt 1001 ] && break; sleep 0.05; done
t1=$(now_ms)
echo "    node B's stream saw it $((t1 - t0)) ms later ($n_before claims before)"
check "node B's old stream is still live after the Redis restart (the claim within 1 s)" \
  test "$(grep -c '"type":"claimed"' "$T/sse-b1.log")" -gt 1001 -a $((t1 - t0)) -lt 1000

# ---- stop: both nodes end their streams at once ----
t0=$(now_ms)
stop_huren "$PID_B" || true
t1=$(now_ms)
echo "    node B stopped in $((t1 - t0)) ms with open streams"
check "node B stops within 5 s with open event streams" test $((t1 - t0)) -lt 5000
finish
