# Shared helpers for integration tests: real huren, real redis-server, real
# DCMTK peers, loopback only. Every wait is bounded. Source this file.
set -euo pipefail

SRC=${HUREN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${HUREN_BUILD_DIR:-$SRC/build/debug}
HUREN=$BUILD/huren
GEN=$BUILD/huren-gen
export TCP_NODELAY=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
# upstream library leaks only (cairo, fontconfig): tests/lsan.supp
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/tests/lsan.supp}

T=$(mktemp -d "${TMPDIR:-/tmp}/huren-it.XXXXXX")
PIDS=()
FAILS=0
PASSES=0

cleanup() {
  local st=$? p
  [ "$st" -eq 0 ] || FAILS=$((FAILS + 1))
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  # an embedded redis orphaned by a kill -9 of huren
  for f in "$T"/*/redis/redis.pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  if [ "$FAILS" -eq 0 ]; then rm -rf "$T"; else echo "kept $T for inspection"; fi
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { # check "description" command...
  local d=$1; shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
check_eq() { # check_eq "description" expected actual
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # wait_port PORT [seconds]
  local port=$1 tries=$(( ${2:-30} * 10 ))
  for _ in $(seq 1 "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $port did not open" >&2
  return 1
}

# write_config NAME DICOM_PORT [REDIS_URL] [extra JSON members for "dicom"] [extra for "http"]
#              [members for "auth"]
# The HTTP port is a free one, written to $T/NAME/http_port (see http_port).
# "auth" defaults to a cheap KDF (1000 iterations: the product's 600000 costs
# 0.3 s per login) and login rate limits off, unless given.
write_config() {
  local name=$1 port=$2 url=${3:-} extra=${4:-} hextra=${5:-} hport
  local auth=${6:-'"kdf_iterations": 1000, "login_per_address": 0, "login_per_user": 0'}
  mkdir -p "$T/$name"
  hport=$(free_port)
  echo "$hport" > "$T/$name/http_port"
  cat > "$T/$name/config.json" <<JSON
{
  "data_dir": "$T/$name/data",
  "log_level": "info",
  "redis": {"url": "$url"},
  "dicom": {"listen": "127.0.0.1", "port": $port, "ae_title": "HUREN"${extra:+, $extra}},
  "http": {"listen": "127.0.0.1", "port": $hport${hextra:+, $hextra}},
  "auth": {$auth},
  "hospitals": [
    {"id": "county", "name": "County", "level": "county", "ae_titles": ["COUNTY"], "addresses": ["127.0.0.1"]},
    {"id": "township1", "name": "Township 1", "level": "township", "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"]},
    {"id": "township2", "name": "Township 2", "level": "township", "ae_titles": ["TOWNSHIP2"], "addresses": ["10.99.0.0/16"]}
  ]
}
JSON
  echo "$T/$name/config.json"
}

# start_huren NAME CONFIG -> sets HUREN_PID; log in $T/NAME/huren.log
start_huren() {
  local name=$1 cfg=$2 port
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dicom"]["port"])' "$cfg")
  "$HUREN" serve --config "$cfg" >>"$T/$name/huren.log" 2>&1 &
  HUREN_PID=$!
  PIDS+=("$HUREN_PID")
  wait_port "$port" 60
}

http_port() { cat "$T/$1/http_port"; }

# add_user CONFIG NAME PASSWORD ROLE HOSPITAL [CENTER]: an account (huren user add,
# password on stdin; works with or without a running hub)
add_user() {
  local cfg=$1; shift
  printf '%s\n' "$2" | "$HUREN" user add "$1" --role "$3" --hospital "$4" ${5:+--center "$5"} \
    --config "$cfg" >/dev/null
}

# login_token BASE_URL NAME PASSWORD: prints the bearer token of a new session
login_token() {
  curl -s -X POST "$1/api/v1/login" -d "{\"user\": \"$2\", \"password\": \"$3\"}" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

stop_huren() { # graceful; returns huren's exit status
  local pid=$1 st=0
  kill -INT "$pid"
  wait "$pid" || st=$?
  return $st
}

# start_redis NAME PORT -> REDIS_PID (external redis for tests that stop it)
start_redis() {
  local name=$1 port=$2
  mkdir -p "$T/$name/redis-ext"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$T/$name/redis-ext" --appendonly yes \
    --appendfsync always --save "" --daemonize no --logfile "$T/$name/redis-ext/log" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# rcli NAME args... : redis-cli against the embedded redis of NAME
rcli() {
  local name=$1; shift
  redis-cli -s "$T/$name/data/redis/redis.sock" --no-raw "$@" | sed 's/^"\(.*\)"$/\1/; s/^(integer) //'
}
rcli_raw() {
  local name=$1; shift
  redis-cli -s "$T/$name/data/redis/redis.sock" --raw "$@"
}

# dataset_sha FILE: SHA-256 of a Part 10 file's bytes after its File Meta Information
dataset_sha() {
  python3 - "$1" <<'PY'
import hashlib, struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[128:132] == b'DICM'
glen = struct.unpack('<I', b[140:144])[0]
print(hashlib.sha256(b[144 + glen:]).hexdigest())
PY
}

# uids FILE: prints "study series sop" of a Part 10 file (via dcmdump)
sop_uid() {
  dcmdump +P 0008,0018 "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1
}

count_objects() { find "$T/$1/data/objects" -type f | wc -l; }
count_tmp() { find "$T/$1/data/tmp" -type f | wc -l; }

# start_tsa: a real RFC 3161 time-stamping authority on loopback (openssl ts
# -reply behind tests/integration/tsa_server.py) with its own root and
# timeStamping certificate under $T/tsa; sets tport (its port) and TSA_PID.
start_tsa() {
  mkdir -p "$T/tsa"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tsa/root.key" \
    -out "$T/tsa/root.pem" -subj "/CN=Test TSA Root" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tsa/tsa.key" \
    -subj "/CN=Test TSA" -out "$T/tsa/tsa.csr" 2>/dev/null
  printf 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' \
    >"$T/tsa/ext"
  openssl x509 -req -in "$T/tsa/tsa.csr" -CA "$T/tsa/root.pem" -CAkey "$T/tsa/root.key" \
    -CAcreateserial -days 30 -extfile "$T/tsa/ext" -out "$T/tsa/tsa.pem" 2>/dev/null
  echo 01 >"$T/tsa/serial"
  cat >"$T/tsa/tsa.cnf" <<CNF
[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = $T/tsa
serial = \$dir/serial
crypto_device = builtin
signer_cert = \$dir/tsa.pem
certs = \$dir/root.pem
signer_key = \$dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
  tport=$(free_port)
  /usr/bin/python3 "$SRC/tests/integration/tsa_server.py" "$tport" "$T/tsa/tsa.cnf" 2>"$T/tsa/log" &
  TSA_PID=$!
  PIDS+=("$TSA_PID")
  wait_port "$tport" 10
}

# signing_key DATA_DIR USER PIN: a P-256 key for USER under the signing PIN
# (encrypted PKCS#8, a cheap KDF) and its self-signed certificate, where
# huren's reports look for them (<data>/keys/USER/{key.p8,chain.pem})
signing_key() {
  local d=$1/keys/$2
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/plain.pem" \
    -out "$d/chain.pem" -days 30 -subj "/CN=$2" -addext keyUsage=critical,digitalSignature 2>/dev/null
  openssl pkcs8 -topk8 -in "$d/plain.pem" -out "$d/key.p8" -v2 aes-256-cbc -v2prf hmacWithSHA256 \
    -iter 1000 -passout "pass:$3"
  rm "$d/plain.pem"
  chmod 600 "$d/key.p8"
}
