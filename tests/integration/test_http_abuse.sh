#!/usr/bin/env bash
# A hostile HTTP client against the libmicrohttpd layer (decision 0018).
#  1. Request framing: libmicrohttpd honours Transfer-Encoding only when it is
#     exactly "chunked"; any other value makes it read the body until the
#     connection closes, past every body cap and before the token is
#     checked. Such requests, and the smuggling shapes (Content-Length with
#     Transfer-Encoding, either twice), are refused from the headers.
#  2. Graceful stop against clients that hold it: 20 WADO retrievals whose
#     clients stopped reading and 15 requests suspended while their token
#     check waits for a frozen Redis. The stop closes them after the 10 s
#     grace period (resuming the suspended ones first: MHD aborts when
#     stopped with a suspended connection) and frees everything (ASan's leak
#     check runs at exit) instead of waiting for the clients.
#  3. Slowloris (decision 0018, a second hub with a 2 s header deadline and 8
#     connections per address): a client trickling its request head, one
#     sending nothing and an idle keep-alive one are closed at the deadline;
#     a slow body and an event stream are not; past http.max_per_address
#     connections from one address the next is closed at once while another
#     address (127.0.0.2) is still served.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16

port=$(free_port)
cfg=$(write_config ha "$port")
# With Redis frozen (part 2) a token check holds a pool thread for 10 s
# (STO_WORKER_REDIS_TIMEOUT_S) and 4 threads take 15 of them in turns, so
# most are still suspended when the stop's grace period ends; connecting
# waits up to 30 s
export UV_THREADPOOL_SIZE=4
$PY - "$cfg" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["redis"]["connect_timeout_ms"] = 30000
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
HP=$(http_port ha)
U="http://127.0.0.1:$HP"
echo "$HP" >"$T/port"
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" adm1 'adm1-password-1' admin county
start_huren ha "$cfg"
wait_port "$HP" 30
TT=$(login_token "$U" tech1 'tech1-password-1')
TA=$(login_token "$U" adm1 'adm1-password-1')
check "tokens issued" test "${#TT}${#TA}" = 4343

# send HEADERS... : sends the request head (the given header lines, \r\n
# added), then body bytes, 16 KiB every 100 ms, for at most 10 s, until an
# answer comes -> "<status> <body bytes sent before it> <request id> <json>"
# ("closed" / "none" when no answer came)
cat >"$T/send.py" <<'PY'
import json, select, socket, sys, time
port = int(open(sys.argv[0].rsplit("/", 1)[0] + "/port").read())
head = "\r\n".join(sys.argv[1:]) + "\r\n\r\n"
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
s.sendall(head.encode())
sent, t0, closed = 0, time.time(), False
while time.time() - t0 < 10:
    r, _, _ = select.select([s], [], [], 0.1)
    if r:
        break
    try:
        s.sendall(b"x" * 16384)
    except OSError:
        closed = True
        break
    sent += 16384
s.settimeout(5)
ans = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        ans += b
except OSError:
    pass
if not ans.startswith(b"HTTP/1.1 "):
    print("closed" if closed or ans == b"" else "none", sent, "-", "-")
    sys.exit(0)
hdr, _, body = ans.partition(b"\r\n\r\n")
rid = "-"
for line in hdr.split(b"\r\n")[1:]:
    k, _, v = line.partition(b":")
    if k.strip().lower() == b"x-request-id":
        rid = v.strip().decode()
try:
    doc = json.loads(body)
    ok = "json" if doc.get("request_id") == rid and doc.get("error") else "bad-json"
except ValueError:
    ok = "no-json"
print(ans.split(b" ")[1].decode(), sent, rid, ok)
PY
send() { $PY "$T/send.py" "$@"; }
K64=65536
BAD='Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

# refused LABEL STATUS request-head...: answered STATUS from the headers,
# with X-Request-Id and a JSON error, after at most 64 KiB of body
refused() {
  local label=$1 want=$2 st n rid js
  shift 2
  read -r st n rid js <<<"$(send "$@")"
  check_eq "$label: $want" "$want" "$st"
  check "... before the body was read ($n bytes sent)" test "$n" -le $K64
  check_eq "... X-Request-Id and a JSON error with its request_id" json "$js"
}

# 1. framing
refused "GET with Transfer-Encoding: identity (bad token)" 501 \
  "GET /api/v1/me HTTP/1.1" "Host: x" "$BAD" "Transfer-Encoding: identity"
refused "GET with Transfer-Encoding: identity (valid token)" 501 \
  "GET /api/v1/me HTTP/1.1" "Host: x" "Authorization: Bearer $TT" "Transfer-Encoding: identity"
refused "login with Transfer-Encoding: gzip, chunked" 501 \
  "POST /api/v1/login HTTP/1.1" "Host: x" "Content-Type: application/json" \
  "Transfer-Encoding: gzip, chunked"
refused "login with Transfer-Encoding: identity" 501 \
  "POST /api/v1/login HTTP/1.1" "Host: x" "Content-Type: application/json" \
  "Transfer-Encoding: identity"
refused "STOW with Transfer-Encoding: identity (valid token)" 501 \
  "POST /dicomweb/studies HTTP/1.1" "Host: x" "Authorization: Bearer $TT" \
  'Content-Type: multipart/related; type="application/dicom"; boundary=B' \
  "Transfer-Encoding: identity"
refused "login with Content-Length and Transfer-Encoding: chunked" 400 \
  "POST /api/v1/login HTTP/1.1" "Host: x" "Content-Type: application/json" \
  "Content-Length: 10" "Transfer-Encoding: chunked"
refused "STOW with Transfer-Encoding: chunked and Content-Length" 400 \
  "POST /dicomweb/studies HTTP/1.1" "Host: x" "Authorization: Bearer $TT" \
  'Content-Type: multipart/related; type="application/dicom"; boundary=B' \
  "Transfer-Encoding: chunked" "Content-Length: 100"
refused "login with two Content-Length headers" 400 \
  "POST /api/v1/login HTTP/1.1" "Host: x" "Content-Type: application/json" \
  "Content-Length: 10" "Content-Length: 100000"
refused "two Transfer-Encoding: chunked headers" 400 \
  "POST /api/v1/login HTTP/1.1" "Host: x" "Content-Type: application/json" \
  "Transfer-Encoding: chunked" "Transfer-Encoding: chunked"
refused "an unknown path with Transfer-Encoding: identity" 501 \
  "GET /nowhere HTTP/1.1" "Host: x" "Transfer-Encoding: identity"
# what stays accepted: a chunked login, a Content-Length one
check_eq "a chunked login still works" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    -d '{"user": "tech1", "password": "tech1-password-1"}' "$U/api/v1/login")"
check_eq "a login with Content-Length still works" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' \
    -d '{"user": "tech1", "password": "tech1-password-1"}' "$U/api/v1/login")"
check_eq "the hub still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/healthz")"

# 3. slowloris: the header deadline and the per-address limit, on a second hub
scfg=$(write_config hs "$(free_port)" "" "" '"header_timeout_s": 2, "max_per_address": 8')
SP=$(http_port hs)
SU="http://127.0.0.1:$SP"
add_user "$scfg" tech1 'tech1-password-1' technician township1
add_user "$scfg" adm1 'adm1-password-1' admin county
HA_PID=$HUREN_PID
start_huren hs "$scfg"
HS_PID=$HUREN_PID
HUREN_PID=$HA_PID
wait_port "$SP" 30
ST=$(login_token "$SU" tech1 'tech1-password-1')
# slow.py PORT MODE [SRC]: prints "<closed|open> <seconds> <first bytes>"
#   trickle  request head one byte every 0.25 s, never complete (at most 10 s)
#   silent   connect, send nothing
#   keep     one complete request, read its answer, then stay idle
#   body     a login head with Content-Length 40, then its body one byte every 0.1 s
#   hold N   N connections each sending a login head (Content-Length 40) and no
#            body (so past the head phase), then for 4 s: prints "held N" at once
cat >"$T/slow.py" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
def conn(src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s
def wait_close(s, t0, limit):
    s.settimeout(0.1)
    got = b""
    while time.time() - t0 < limit:
        try:
            b = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return "closed", got
        if not b:
            return "closed", got
        got += b
    return "open", got
t0 = time.time()
if mode == "hold":
    socks = [conn() for _ in range(int(sys.argv[3]))]
    for s in socks:
        s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n")
    print("held", len(socks), flush=True)
    time.sleep(4)
    sys.exit(0)
s = conn(sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1")
state, got = "open", b""
if mode == "trickle":
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100
    s.settimeout(0.25)
    for ch in head:
        try:
            s.sendall(bytes([ch]))
            b = s.recv(4096)
            if not b:
                state = "closed"
                break
            got += b
        except socket.timeout:
            pass
        except OSError:
            state = "closed"
            break
        if time.time() - t0 > 10:
            break
elif mode == "silent":
    state, got = wait_close(s, t0, 10)
elif mode == "keep":
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    t0 = time.time()  # from the response
    state, got = wait_close(s, t0, 10)
elif mode == "body":
    s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n")
    body = b'{"user": "nobody", "password": "xxxxxx"}'
    for ch in body:
        s.sendall(bytes([ch]))
        time.sleep(0.1)
    state, got = wait_close(s, t0, 10)
elif mode == "probe":
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    state, got = wait_close(s, t0, 5)
print(state, "%.1f" % (time.time() - t0), (got.split(b"\r\n")[0] or b"-").decode(errors="replace").replace(" ", "_"))
PY
slow() { $PY "$T/slow.py" "$SP" "$@"; }
# in [lo, hi] seconds
within() { $PY -c "import sys; sys.exit(0 if $2 <= float(sys.argv[1]) <= $3 else 1)" "$1"; }
read -r st secs first <<<"$(slow trickle)"
check_eq "a client trickling its request head is closed" closed "$st"
check "... at the header deadline, not before ($secs s, deadline 2 s)" within "$secs" 1.8 5
check_eq "... without an answer" - "$first"
read -r st secs first <<<"$(slow silent)"
check_eq "a connection sending nothing is closed" closed "$st"
check "... at the header deadline ($secs s)" within "$secs" 1.8 5
read -r st secs first <<<"$(slow keep)"
check_eq "an idle keep-alive connection: answered, then closed" "closed HTTP/1.1_200_OK" "$st $first"
check "... at the header deadline after its response ($secs s)" within "$secs" 1.5 5
read -r st secs first <<<"$(slow body)"
check_eq "a slow body (4 s) is not cut by the header deadline" "closed HTTP/1.1_401_Unauthorized" \
  "$st $first"
rc=0
curl -s -o "$T/sse.out" -D "$T/sse.h" --max-time 5 -H "Authorization: Bearer $ST" \
  "$SU/api/v1/events" || rc=$?
check_eq "an event stream stays open past the deadline (curl timed out itself)" 28 "$rc"
check "... after 200" grep -q '^HTTP/1.1 200' "$T/sse.h"
# per address: 8 connections from 127.0.0.1 past their heads, then a 9th
$PY "$T/slow.py" "$SP" hold 8 >"$T/hold8" &
HP8=$!
for _ in $(seq 1 50); do [ -s "$T/hold8" ] && break; sleep 0.1; done
sleep 0.3
read -r st secs first <<<"$(slow probe)"
check_eq "the 9th connection from 127.0.0.1 is closed unanswered" "closed -" "$st $first"
read -r st secs first <<<"$(slow probe 127.0.0.2)"
check_eq "127.0.0.2 is still served meanwhile" "closed HTTP/1.1_200_OK" "$st $first"
wait "$HP8" || true
sleep 0.3
read -r st secs first <<<"$(slow probe)"
check_eq "127.0.0.1 is served again once its connections closed" "closed HTTP/1.1_200_OK" \
  "$st $first"
m=$(curl -s -H "Authorization: Bearer $(login_token "$SU" adm1 'adm1-password-1')" "$SU/metrics" || true)
check "the header timeouts are counted in /metrics" \
  grep -Eq '^huren_http_header_timeouts_total [3-9]' <<<"$m"
st=0
stop_huren "$HS_PID" || st=$?
check_eq "the second hub stops cleanly" 0 "$st"

# 2. graceful stop with stalled readers and suspended requests
"$GEN" --out "$T/st" --modality CT --instances 8 --bytes 4194304 --seed 91 --patient-id STALL1 >/dev/null
$PY "$SRC/tests/integration/dicomweb.py" stow-body "$T/st.body" BNDst "$T"/st/*.dcm
check_eq "a 32 MB study stored" 200 "$(curl -s -o "$T/st.json" -w '%{http_code}' -X POST \
  -T "$T/st.body" -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BNDst' \
  -H "Authorization: Bearer $TT" "$U/dicomweb/studies")"
STUDY=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["00081199"]["Value"][0]["00081190"]["Value"][0].split("/")[5])' "$T/st.json")
# holders: N connections send their request head and then hold their
# sockets without reading (the hub sees readers that stopped), at most 60 s
cat >"$T/hold.py" <<'PY'
import socket, sys, time
port = int(open(sys.argv[0].rsplit("/", 1)[0] + "/port").read())
n, out = int(sys.argv[1]), sys.argv[3]
head = sys.argv[2].replace("\\r", "\r").replace("\\n", "\n").encode()
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(head)
    socks.append(s)
open(out, "w").write("sent\n")
time.sleep(60)
PY
WADO_HEAD="GET /dicomweb/studies/$STUDY HTTP/1.1\r\nHost: x\r\nAccept: multipart/related; type=\"application/dicom\"\r\nAuthorization: Bearer $TT\r\n\r\n"
$PY "$T/hold.py" 20 "$WADO_HEAD" "$T/wado.hold" &
WH=$!
for _ in $(seq 1 100); do [ -s "$T/wado.hold" ] && break; sleep 0.1; done
sleep 1
active=$(curl -s -H "Authorization: Bearer $TA" "$U/metrics" | awk '/^huren_http_requests_active / {print $2}')
check "20 stalled WADO readers are requests in progress ($active active)" test "$active" -ge 20
# Redis frozen: the token checks of bodies (before the body) wait on the pool
RP=$(cat "$T/ha/data/redis/redis.pid")
kill -STOP "$RP"
CLAIM_HEAD="POST /api/v1/worklists/imaging/items/1.2.3/claim HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TA\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
$PY "$T/hold.py" 15 "$CLAIM_HEAD" "$T/claim.hold" &
CH=$!
for _ in $(seq 1 100); do [ -s "$T/claim.hold" ] && break; sleep 0.1; done
sleep 1
t0=$(date +%s%N)
kill -INT "$HUREN_PID"
sleep 12
kill -CONT "$RP"
st=0
wait "$HUREN_PID" || st=$?
t1=$(date +%s%N)
check_eq "graceful stop with held connections exits 0 (no leak, no abort)" 0 "$st"
check "... within 20 s ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 20000
kill "$WH" "$CH" 2>/dev/null || true
wait "$WH" "$CH" 2>/dev/null || true
check "the log says the held connections were closed" \
  grep -q 'requests still running after 10 s; closing their connections' "$T/ha/huren.log"
check "... among them suspended ones ($(grep -o 'closing [0-9]* connections that wait' "$T/ha/huren.log"))" \
  grep -Eq 'closing ([5-9]|1[0-5]) connections that wait for the pool or the ingest' "$T/ha/huren.log"
finish
