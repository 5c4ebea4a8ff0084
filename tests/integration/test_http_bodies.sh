#!/usr/bin/env bash
# Request bodies (issue 8, section 5; decision 0018): a request without a
# valid token is refused after at most 64 KiB of body, whatever it declares
# (Content-Length or chunked), and so is a public route's oversized body;
# only an authenticated STOW sends a large body, streamed into ingest (the
# hub's peak RSS grows far less than the body); a crowd of unauthenticated
# uploads does not stop an authenticated STOW.
#
# "Read by the server" is measured from the client: it sends 16 KiB every
# 100 ms and counts the bytes it had sent when the answer arrived. A server
# that buffers the body before checking the token answers only at the end.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16

port=$(free_port)
cfg=$(write_config hb "$port")
HP=$(http_port hb)
U="http://127.0.0.1:$HP"
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" rimg 'rimg-password-1' reader county imaging
start_huren hb "$cfg"
wait_port "$HP" 30
TT=$(login_token "$U" tech1 'tech1-password-1')
TR=$(login_token "$U" rimg 'rimg-password-1')
TOLD=$(login_token "$U" tech1 'tech1-password-1')
curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOLD" "$U/api/v1/logout"
check "tokens issued" test "${#TT}${#TR}${#TOLD}" = 434343

# upload PATH [--chunked] [--length N] [--token T] [--total N] [--ctype C]
# -> "<status> <bytes sent before the answer>" ("closed" when none came)
cat >"$T/upload.py" <<'PY'
import select, socket, sys, time
args = sys.argv[1:]
path = args.pop(0)
opt = {"--chunked": False, "--length": None, "--token": None, "--total": 1 << 20,
       "--ctype": "multipart/related; type=\"application/dicom\"; boundary=BND"}
while args:
    k = args.pop(0)
    if k == "--chunked":
        opt[k] = True
    else:
        opt[k] = args.pop(0)
port = int(open(sys.argv[0].rsplit("/", 1)[0] + "/port").read())
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
s.connect(("127.0.0.1", port))
h = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n" % (path, opt["--ctype"])
if opt["--token"]:
    h += "Authorization: Bearer %s\r\n" % opt["--token"]
if opt["--chunked"]:
    h += "Transfer-Encoding: chunked\r\n"
else:
    h += "Content-Length: %s\r\n" % (opt["--length"] or opt["--total"])
s.sendall((h + "\r\n").encode())
piece, sent, total, answer = b"\x00" * 16384, 0, int(opt["--total"]), b""
deadline = time.time() + 60
while sent < total and time.time() < deadline:
    r, _, _ = select.select([s], [], [], 0.1)
    if r:
        break
    try:
        s.sendall(b"4000\r\n" + piece + b"\r\n" if opt["--chunked"] else piece)
    except OSError:
        break
    sent += len(piece)
s.settimeout(10)
try:
    while b"\r\n" not in answer:
        b = s.recv(4096)
        if not b:
            break
        answer += b
except OSError:
    pass
status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"
print(status, sent)
PY
echo "$HP" >"$T/port"
up() { $PY "$T/upload.py" "$@"; }
K64=65536

# 1. no token, Content-Length 1 GiB, body sent slowly
read -r st n <<<"$(up /dicomweb/studies --length 1073741824)"
check_eq "no token, Content-Length 1 GiB: 401" 401 "$st"
check "... after at most 64 KiB of body ($n bytes sent)" test "$n" -le $K64
# 2. the same, chunked, no Content-Length
read -r st n <<<"$(up /dicomweb/studies --chunked)"
check_eq "no token, chunked: 401" 401 "$st"
check "... after at most 64 KiB of body ($n bytes sent)" test "$n" -le $K64
# 3. a bad token, a revoked token, a reader's token (may not STOW)
read -r st n <<<"$(up /dicomweb/studies --length 1073741824 --token AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)"
check_eq "a bad token: 401" 401 "$st"
check "... after at most 64 KiB ($n bytes sent)" test "$n" -le $K64
read -r st n <<<"$(up /dicomweb/studies --chunked --token "$TOLD")"
check_eq "a revoked token (logged out), chunked: 401" 401 "$st"
check "... after at most 64 KiB ($n bytes sent)" test "$n" -le $K64
read -r st n <<<"$(up /dicomweb/studies --length 1073741824 --token "$TR")"
check_eq "a reader's valid token: 403 (role may not STOW)" 403 "$st"
check "... after at most 64 KiB ($n bytes sent)" test "$n" -le $K64
read -r st n <<<"$(up /api/v1/worklists/imaging/items/1.2.3/reassign --length 1048576 --token "$TOLD" --ctype application/json)"
check_eq "a JSON route: Content-Length above its 64 KiB cap: 413 at once" 413 "$st"
check "... before any body ($n bytes sent)" test "$n" -le $K64
read -r st n <<<"$(up /api/v1/worklists/imaging/items/1.2.3/reassign --chunked --token "$TOLD" --ctype application/json)"
check_eq "a JSON route, chunked, revoked token: 401" 401 "$st"
check "... after at most 64 KiB ($n bytes sent)" test "$n" -le $K64
# 4. the login (public) with a 1 MiB body
read -r st n <<<"$(up /api/v1/login --length 1048576 --ctype application/json)"
check_eq "login with a 1 MiB body: 413" 413 "$st"
check "... after at most 64 KiB ($n bytes sent)" test "$n" -le $K64
read -r st n <<<"$(up /api/v1/login --chunked --ctype application/json)"
check "login with a 1 MiB chunked body: no answer but a closed connection ($st)" test "$st" = closed -o "$st" = 413
# the client counts what the kernels took too (one send buffer, one piece in flight)
check "... after at most 64 KiB read (128 KiB sent: $n)" test "$n" -le $((2 * K64))
check_eq "GET routes take no body: 413" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TT" --data-binary 'x' -X GET "$U/api/v1/me")"
check_eq "the hub still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/healthz")"

# 5. an authenticated STOW of about 200 MB, streamed: peak RSS grows < 64 MiB
"$GEN" --out "$T/big" --modality CT --instances 24 --bytes 8388608 --seed 77 --patient-id BIG1 >/dev/null
$PY "$SRC/tests/integration/dicomweb.py" stow-body "$T/big.body" BNDbig "$T"/big/*.dcm
size=$(stat -c %s "$T/big.body")
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$HUREN_PID/status"; }
h0=$(hwm)
CTB='Content-Type: multipart/related; type="application/dicom"; boundary=BNDbig'
code=$(curl -s -o "$T/big.json" -w '%{http_code}' -X POST -T "$T/big.body" -H "$CTB" \
  -H "Authorization: Bearer $TT" "$U/dicomweb/studies")
h1=$(hwm)
check_eq "STOW of $size bytes (24 objects): 200" 200 "$code"
check_eq "... all 24 stored" "24 0 0000" "$($PY "$SRC/tests/integration/dicomweb.py" stow-counts "$T/big.json")"
echo "    peak RSS $h0 kB -> $h1 kB for a $((size / 1048576)) MiB body"
check "... peak RSS grew less than 64 MiB" test $((h1 - h0)) -lt 65536
code=$(curl -s -o "$T/bigc.json" -w '%{http_code}' -X POST -T "$T/big.body" -H "$CTB" \
  -H 'Transfer-Encoding: chunked' -H "Authorization: Bearer $TT" "$U/dicomweb/studies")
h2=$(hwm)
check_eq "the same STOW chunked: 200 (identical objects)" 200 "$code"
check "... peak RSS still within 64 MiB of the start" test $((h2 - h0)) -lt 65536

# 6. 50 unauthenticated 1 GiB uploads at once do not stop an authenticated STOW
"$GEN" --out "$T/small" --modality MR --instances 3 --bytes 65536 --seed 78 --patient-id SMALL1 >/dev/null
$PY "$SRC/tests/integration/dicomweb.py" stow-body "$T/small.body" BNDs "$T"/small/*.dcm
pids=()
for i in $(seq 1 50); do
  if [ $((i % 2)) = 0 ]; then up /dicomweb/studies --chunked >"$T/crowd.$i" & else
    up /dicomweb/studies --length 1073741824 >"$T/crowd.$i" &
  fi
  pids+=($!)
done
code=$(curl -s -m 60 -o "$T/small.json" -w '%{http_code}' -X POST --data-binary @"$T/small.body" \
  -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BNDs' \
  -H "Authorization: Bearer $TT" "$U/dicomweb/studies")
check_eq "an authenticated STOW during 50 unauthenticated uploads: 200" 200 "$code"
wait "${pids[@]}" || true
check_eq "all 50 refused with 401" 50 "$(cat "$T"/crowd.* | awk '$1 == 401' | wc -l)"
check_eq "each after at most 64 KiB" 50 "$(cat "$T"/crowd.* | awk -v k=$K64 '$2 <= k' | wc -l)"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
