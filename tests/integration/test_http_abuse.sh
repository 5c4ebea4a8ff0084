#!/usr/bin/env bash
# A hostile HTTP client against the libmicrohttpd layer (decision 0018).
#  1. Request framing: libmicrohttpd honours Transfer-Encoding only when it is
#     exactly "chunked"; any other value makes it read the body until the
#     connection closes, past every body cap and before the token is
#     checked. Such requests, and the smuggling shapes (Content-Length with
#     Transfer-Encoding, either twice), are refused from the headers.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16

port=$(free_port)
cfg=$(write_config ha "$port")
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
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
