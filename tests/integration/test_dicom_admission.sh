#!/usr/bin/env bash
# Nothing a client sends locks the others out of the DICOM port (decision
# 0012): connections from addresses no hospital is allowed from are closed at
# accept, before any PDU is read; one address holds at most
# dicom.max_per_address connections; and the last reserved connection slots go
# only to addresses with none open, so an allowed modality still associates
# while one misbehaving address holds many idle sockets or associations.
# Every test runs on loopback: the misbehaving peers bind distinct 127.0.0.x
# source addresses (Linux routes all of 127/8 to lo), the well-behaved
# modality (echoscu, which cannot bind a source address) calls from 127.0.0.1.
source "$(dirname "$0")/lib.sh"
PY=${PYTHON:-python3}

# abuse.py PORT SRC N MODE HOLD_S: N connections from SRC; MODE idle sends
# nothing, MODE assoc sends an A-ASSOCIATE-RQ as TOWNSHIP1 on each. Prints
# "connected N" once every connect returned, then after one second
# "closed C open O accepted A rejected R max_close_ms M" (M: from the last
# connect to the last close seen), then holds the open ones HOLD_S seconds.
cat >"$T/abuse.py" <<'PY'
import selectors, socket, sys, time
sys.path.insert(0, sys.argv[6])
from rawdicom import assoc_rq, VERIFICATION, IMPLICIT_LE
port, src, n, mode, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
sel = selectors.DefaultSelector()
conns, state = [], {}
max_close = 0.0
for _ in range(n):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    try:
        s.connect(('127.0.0.1', port))
    except ConnectionResetError:
        conns.append(s)  # reset before connect() returned: refused at once
        state[s] = 'closed'
        continue
    if mode == 'assoc':
        try:
            s.sendall(assoc_rq(contexts=((1, VERIFICATION, IMPLICIT_LE),)))
        except OSError:
            pass  # reset at accept: seen below as closed
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    conns.append(s)
print('connected', len(conns), flush=True)
t_last = time.monotonic()
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline and len(state) < n:
    for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
        s = key.fileobj
        try:
            b = s.recv(65536)
        except OSError:
            b = b''
        if not b:
            state[s] = 'closed'
            max_close = max(max_close, time.monotonic() - t_last)
            sel.unregister(s)
        elif s not in state:
            state[s] = {2: 'accepted', 3: 'rejected'}.get(b[0], 'other')
            sel.unregister(s)
count = lambda v: sum(1 for x in state.values() if x == v)
closed, accepted, rejected = count('closed'), count('accepted'), count('rejected')
print('closed %d open %d accepted %d rejected %d max_close_ms %d' %
      (closed, n - closed, accepted, rejected, int(max_close * 1000)), flush=True)
time.sleep(hold)
PY

# abuse NAME PORT SRC N MODE HOLD_S -> runs abuse.py in the background
# (ABUSE_PID), waits (bounded) until every connect returned
abuse() {
  local out="$T/$1.abuse"
  : >"$out"
  $PY "$T/abuse.py" "$2" "$3" "$4" "$5" "$6" "$(dirname "$0")" >"$out" 2>&1 &
  ABUSE_PID=$!
  PIDS+=("$ABUSE_PID")
  for _ in $(seq 1 100); do grep -q '^connected' "$out" && return 0; sleep 0.1; done
  cat "$out" >&2
  return 1
}
# abuse_result NAME FIELD -> the number after FIELD in the summary line
abuse_result() {
  local out="$T/$1.abuse"
  for _ in $(seq 1 50); do grep -q '^closed' "$out" && break; sleep 0.1; done
  sed -n "s/^closed.* $2 \([0-9]*\).*/\1/p; s/^$2 \([0-9]*\).*/\1/p" "$out" | head -1
}
# timed_echo NAME PORT AE -> 0 when C-ECHO succeeds; elapsed ms in $T/NAME.echo_ms
timed_echo() {
  local start st=0
  start=$(date +%s%N)
  timeout 10 echoscu -aet "$3" -aec HUREN 127.0.0.1 "$2" >"$T/$1.echo" 2>&1 || st=$?
  echo $(( ($(date +%s%N) - start) / 1000000 )) >"$T/$1.echo_ms"
  return $st
}
# township1 moves to SRC; county stays on 127.0.0.1
township1_from() { # CONFIG SRC
  $PY - "$1" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["hospitals"][1]["addresses"] = [sys.argv[2]]
json.dump(c, open(sys.argv[1], "w"))
PY
}

# --- (a) 200 idle sockets from an address no hospital is allowed from
port=$(free_port)
cfg=$(write_config adm "$port")
printf '%s\n' 'admin-password-1' |
  "$HUREN" user add admin --role admin --hospital county --config "$cfg" >/dev/null
start_huren adm "$cfg"
check "200 idle sockets from 127.0.0.3 (allowed nowhere) connect" abuse a "$port" 127.0.0.3 200 idle 5
check "meanwhile an allowed modality's C-ECHO succeeds" timed_echo a "$port" TOWNSHIP1
check "within a second ($(cat "$T/a.echo_ms") ms)" test "$(cat "$T/a.echo_ms")" -lt 1000
check_eq "every one of the 200 sockets was closed" 200 "$(abuse_result a closed)"
check "at once, no PDU awaited (slowest $(abuse_result a max_close_ms) ms)" \
  test "$(abuse_result a max_close_ms)" -lt 1000
"$GEN" --out "$T/a-obj" --instances 2 --bytes 4096 --modality CR --seed 7 >/dev/null
check "and a C-STORE succeeds" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/a-obj"
hp=$(http_port adm)
tok=$(curl -s -X POST "http://127.0.0.1:$hp/api/v1/login" -H 'Content-Type: application/json' \
  -d '{"user": "admin", "password": "admin-password-1"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$hp/metrics" >"$T/a.metrics"
check "/metrics counts the 200 refusals by reason" \
  grep -q '^huren_dicom_connections_refused_total{reason="address"} 200$' "$T/a.metrics"
check "refusals are logged (rate-limited: fewer than 20 lines)" \
  test "$(grep -c 'connection refused' "$T/adm/huren.log")" -ge 1 -a \
  "$(grep -c 'connection refused' "$T/adm/huren.log")" -lt 20
kill "$ABUSE_PID" 2>/dev/null || true
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# --- (b) one allowed address holds dicom.max_per_address sockets, no more
port=$(free_port)
cfg=$(write_config per "$port" "" '"max_per_address": 4')
township1_from "$cfg" 127.0.0.2
start_huren per "$cfg"
check "6 idle sockets from 127.0.0.2 (township1's address)" abuse b "$port" 127.0.0.2 6 idle 5
check_eq "4 (max_per_address) stay open" 4 "$(abuse_result b open)"
check_eq "the 2 beyond it are closed at once" 2 "$(abuse_result b closed)"
check "another allowed address (127.0.0.1) still associates" timed_echo b "$port" COUNTY
check "within a second ($(cat "$T/b.echo_ms") ms)" test "$(cat "$T/b.echo_ms")" -lt 1000
kill "$ABUSE_PID" 2>/dev/null || true
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# --- (c) the reserve: one allowed address associating as many times as it
# can never takes the last association slots (max_associations 4: reserve 1)
port=$(free_port)
cfg=$(write_config res "$port" "" '"max_associations": 4')
township1_from "$cfg" 127.0.0.2
start_huren res "$cfg"
check "8 associations requested from 127.0.0.2" abuse c "$port" 127.0.0.2 8 assoc 5
check_eq "3 accepted (max_associations - reserve)" 3 "$(abuse_result c accepted)"
check_eq "5 closed at accept" 5 "$(abuse_result c closed)"
check "an allowed modality at another address still associates" timed_echo c "$port" COUNTY
check "within a second ($(cat "$T/c.echo_ms") ms)" test "$(cat "$T/c.echo_ms")" -lt 1000
kill "$ABUSE_PID" 2>/dev/null || true
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
