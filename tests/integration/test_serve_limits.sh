#!/usr/bin/env bash
# Secure start-up defaults (decision 0012): plain HTTP binds loopback unless
# TLS is configured or http.insecure_listen is set, and a non-loopback
# http.listen without either is refused by check-config and serve alike;
# huren serve raises its open-file limit to what the configuration needs, or
# refuses to start, saying how many, when even the hard limit is too small.
source "$(dirname "$0")/lib.sh"
PY=${PYTHON:-python3}

# jcfg NAME JSON-PATCH (python dict literal merged into the config) -> file
jcfg() {
  local f="$T/$1.json"
  $PY - "$f" "$T/$1-data" "$(free_port)" "$(free_port)" "$2" <<'PY'
import ast, json, sys
f, data, dport, hport, patch = sys.argv[1:]
c = {"data_dir": data, "dicom": {"listen": "127.0.0.1", "port": int(dport)},
     "http": {"port": int(hport)}, "hl7": {"listen": "127.0.0.1"}}
for k, v in ast.literal_eval(patch).items():
    c.setdefault(k, {}).update(v) if isinstance(v, dict) else c.__setitem__(k, v)
json.dump(c, open(f, "w"))
PY
  echo "$f"
}
# listening_on PORT -> the local addresses a socket listens on at PORT
listening_on() {
  $PY - "$1" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
for line in open('/proc/net/tcp').read().splitlines()[1:]:
    f = line.split()
    addr, p = f[1].split(':')
    if int(p, 16) == port and f[3] == '0A':
        print(socket.inet_ntoa(struct.pack('<I', int(addr, 16))))
PY
}
# serve_fails NAME CONFIG [prlimit args] -> 0 when huren serve exits non-zero
# within 20 s (stderr in $T/NAME.err); kills it and returns 1 if it runs
serve_fails() {
  local name=$1 cfg=$2 pid st=0; shift 2
  "$@" "$HUREN" serve --config "$cfg" >"$T/$name.out" 2>"$T/$name.err" &
  pid=$!
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid"; wait "$pid" || true
    return 1
  fi
  wait "$pid" || st=$?
  [ "$st" -ne 0 ]
}

# --- plain HTTP on the network is refused unless deliberate
cfg=$(jcfg open '{"http": {"listen": "0.0.0.0"}}')
st=0; "$HUREN" check-config --config "$cfg" >"$T/cc.out" 2>"$T/cc.err" || st=$?
check_eq "check-config: plain HTTP on 0.0.0.0 exits 1" 1 "$st"
check "the message names http.listen" grep -q 'http.listen: "0.0.0.0" is not loopback' "$T/cc.err"
check "... the TLS keys and http.insecure_listen" \
  grep -q 'http.tls_cert.*http.tls_key.*http.insecure_listen: true' "$T/cc.err"
check "serve refuses it too" serve_fails open "$cfg"
check "with the same message" grep -q 'http.insecure_listen' "$T/open.err"
check "and binds nothing" test -z "$(listening_on "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"]["port"])' "$cfg")")"

cfg=$(jcfg open2 '{"http": {"listen": "0.0.0.0", "insecure_listen": True}}')
check "http.insecure_listen: true accepts it" bash -c "'$HUREN' check-config --config '$cfg' >/dev/null"
check "check-config shows the choice" \
  bash -c "'$HUREN' check-config --config '$cfg' | grep -q 'HTTP 0.0.0.0:.*insecure_listen'"
cfg=$(jcfg tls '{"http": {"tls_cert": "/nonexistent/c.pem", "tls_key": "/nonexistent/k.pem"}}')
check "with TLS the default address is every interface" \
  bash -c "'$HUREN' check-config --config '$cfg' | grep -q 'HTTP 0.0.0.0:[0-9]* (HTTPS)'"
cfg=$(jcfg v6 '{"http": {"listen": "::"}}')
check "plain HTTP on :: is refused" bash -c "! '$HUREN' check-config --config '$cfg' 2>/dev/null"

# --- the default: plain HTTP on loopback only
cfg=$(jcfg def '{}')
hp=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"]["port"])' "$cfg")
check "check-config: plain HTTP defaults to 127.0.0.1" \
  bash -c "'$HUREN' check-config --config '$cfg' | grep -q 'HTTP 127.0.0.1:$hp (plain HTTP)'"
mkdir -p "$T/def"
start_huren def "$cfg"
wait_port "$hp" 30
check_eq "huren serve listens for HTTP on 127.0.0.1 only" "127.0.0.1" "$(listening_on "$hp" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check_eq "/healthz answers there" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/healthz")"
# dicom.max_associations, http.max_connections, delivery.batch, alerts.batch
need=$(( (5 * 64 + 2 * 1024 + 3 * 16 + 50 + 112) * 5 / 4 ))
soft=$(awk '/Max open files/ {print $4}' "/proc/$HUREN_PID/limits")
check "the soft open-file limit covers the defaults ($soft >= $need)" test "$soft" -ge "$need"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# --- open-file limit: raised within the hard limit, or a clear refusal
cfg=$(jcfg fd '{}')
dp=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["dicom"]["port"])' "$cfg")
check "hard limit 512 < what the defaults need: serve refuses to start" \
  serve_fails fdlow "$cfg" prlimit --nofile=256:512
check "saying how many it needs ($need) and the hard limit" \
  grep -q "needs $need open files.*hard limit is 512" "$T/fdlow.err"
check "and which keys to change" grep -q 'dicom.max_associations / http.max_connections' "$T/fdlow.err"

# the hard limit this process has (it cannot raise it): the test needs
# room above what huren needs
hardmax=$(ulimit -Hn)
[ "$hardmax" = unlimited ] && hardmax=1048576
check "this machine's hard limit ($hardmax) is above $need" test "$hardmax" -gt "$need"
mkdir -p "$T/fdup"
prlimit --nofile=256:"$hardmax" "$HUREN" serve --config "$cfg" >"$T/fdup/huren.log" 2>&1 &
pid=$!
PIDS+=("$pid")
check "soft 256, hard $hardmax: serve starts" wait_port "$dp" 60
soft=$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")
hard=$(awk '/Max open files/ {print $5}' "/proc/$pid/limits")
check_eq "its soft limit is raised to what it needs" "$need" "$soft"
check_eq "the hard limit is left alone" "$hardmax" "$hard"
check "the raise is logged" grep -q "open-file limit raised from 256 to $need" "$T/fdup/huren.log"
check "and it serves" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$dp"
check "graceful stop exits 0" stop_huren "$pid"

small=$(jcfg small '{"dicom": {"max_associations": 8}, "http": {"max_connections": 64}}')
dp=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["dicom"]["port"])' "$small")
mkdir -p "$T/small"
prlimit --nofile=256:512 "$HUREN" serve --config "$small" >"$T/small/huren.log" 2>&1 &
pid=$!
PIDS+=("$pid")
check "smaller limits fit a hard limit of 512: serve starts" wait_port "$dp" 60
check "graceful stop exits 0" stop_huren "$pid"
finish
