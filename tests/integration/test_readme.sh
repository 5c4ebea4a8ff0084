#!/usr/bin/env bash
# The README as a reader meets it: every ```sh block of README.md is run
# exactly as printed, in order, each in a fresh `bash -e` (so each block must
# be self-contained, and a failing command fails its block), against a hub
# started the way `make run` starts it: `huren serve` with no --config, so the
# embedded defaults (DICOM 11112, HTTP 8080, data in ./huren-data). The blocks
# run in a working directory where build/release is this test's build dir.
# The first block (`make run` / `make test`) is skipped: those are the outer
# commands that built this tree and run this very test. The ```json config
# example must pass `huren check-config`.
#
# Needs ports 11112 and 8080 free (ctest runs integration tests one at a time)
# and writes /tmp/study, as the README does (removed afterwards when this test
# created it).
source "$(dirname "$0")/lib.sh"

README=$SRC/README.md
W=$T/readme
mkdir -p "$W/build"
ln -s "$BUILD" "$W/build/release"
RSOCK=$W/huren-data/redis/redis.sock
study_existed=0
[ -e /tmp/study ] && study_existed=1

# ---- the blocks ----
python3 - "$README" "$T" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
n = {"sh": 0, "json": 0}
for lang, body in re.findall(r"^```(\w+)\n(.*?)^```$", text, re.M | re.S):
    if lang in n:
        open("%s/%s-%d" % (sys.argv[2], lang, n[lang]), "w", encoding="utf-8").write(body)
        n[lang] += 1
print("README: %d sh blocks, %d json blocks" % (n["sh"], n["json"]))
PY
nsh=$(ls "$T"/sh-* | wc -l)
check_eq "the README has the 7 sh blocks this test knows (update both together)" 7 "$nsh"
has() { grep -qF -- "$2" "$T/sh-$1"; }
check "block 0 is make run / make test (skipped: the outer commands)" has 0 "make test"
check "block 1 sends the first study" has 1 "storescu"
check "block 2 looks into Redis" has 2 "redis-cli"
check "block 3 is the C-FIND" has 3 "findscu"
check "block 4 adds a user, logs in and queries DICOMweb" has 4 "dicomweb/studies"
check "block 5 is the worklist" has 5 "/claim"
check "block 6 signs a report and verifies it" has 6 "huren verify"

# ---- the config example ----
for j in "$T"/json-*; do
  "$HUREN" check-config --config "$j" >"$j.out" 2>&1 && st=0 || st=$?
  check_eq "the json example ${j##*/} passes huren check-config" "0 1" "$st $(grep -c 'configuration OK' "$j.out")"
done

# ---- the hub, as make run starts it ----
for p in 11112 8080; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    fail "port $p is busy: this test needs the README's default ports (stop make run?)"
    finish
  fi
done
(cd "$W" && exec "$HUREN" serve) >"$W/huren.log" 2>&1 &
HPID=$!
PIDS+=("$HPID")
wait_port 11112 60 && wait_port 8080 30
[ -f "$W/huren-data/redis/redis.pid" ] && PIDS+=("$(cat "$W/huren-data/redis/redis.pid")")
check "huren prints where it listens" grep -q 'DICOM listening on .*:11112, AE title HUREN' "$W/huren.log"

# run_block N [timeout]: runs block N in $W as printed; stdout in $T/out-N,
# stderr in $T/err-N
run_block() {
  local st=0
  (cd "$W" && env -u TCP_NODELAY timeout "${2:-120}" bash -e "$T/sh-$1") >"$T/out-$1" 2>"$T/err-$1" || st=$?
  echo "    block $1 exited $st"
  sed 's/^/    | /' "$T/out-$1" | head -40
  tr '\r' '\n' <"$T/err-$1" | grep -av '^ *[0-9]\+ \+[0-9]\+ \|% Total\|Dload\|^ *$' | sed 's/^/    ! /' | head -40
  return "$st"
}
# run_stream N PATTERN: runs block N, which ends in a stream that runs until
# Ctrl-C, until PATTERN is in its output (at most 120 s); then sends SIGINT as
# Ctrl-C would. Returns the block's status (130 when the interrupt ended it).
run_stream() {
  local st=0 pid
  (cd "$W" && exec env -u TCP_NODELAY timeout 120 bash -e "$T/sh-$1") >"$T/out-$1" 2>"$T/err-$1" &
  pid=$!
  for _ in $(seq 1 1200); do
    grep -q -- "$2" "$T/out-$1" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || st=$?
  echo "    block $1 exited $st"
  sed 's/^/    | /' "$T/out-$1" | head -40
  tr '\r' '\n' <"$T/err-$1" | grep -av '^ *[0-9]\+ \+[0-9]\+ \|% Total\|Dload\|^ *$' | sed 's/^/    ! /' | head -40
  return "$st"
}
out() { cat "$T/out-$1"; }

echo "    skip - block 0: make run / make test are the commands that run this test"

# 1: echo, generate, send
check "block 1 (echo, huren-gen, storescu) succeeds" run_block 1
gen_study=$(dcmdump +P 0020,000d "$(ls /tmp/study/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p' | tr -d ' ')
check_eq "... 20 objects stored in ./huren-data" 20 "$(find "$W/huren-data/objects" -type f | wc -l)"

# 2: what arrived
check "block 2 (redis-cli) succeeds" run_block 2
check_eq "... hr:stats counts 20 instances" 20 "$(out 2 | awk 'p {print; exit} $0 == "instances" {p = 1}')"
check "... hr:ix:date lists the study on its date" grep -qx "$gen_study" <(out 2)
check "... ... with score 20240501" grep -qx 20240501 <(out 2)

# 3: C-FIND
check "block 3 (findscu) succeeds" run_block 3
check "... the study is found" grep -aq "StudyInstanceUID" <(cat "$T/out-3" "$T/err-3" | grep -aF "$gen_study")

# 4: user, login, QIDO-RS
check "block 4 (user add, login, QIDO-RS) succeeds" run_block 4
check "... the user is added" grep -q 'user reader1 added' <(out 4)
check_eq "... QIDO-RS finds the study with its 20 instances" "$gen_study 20" \
  "$(out 4 | sed -n '/^\[/p' | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["0020000D"]["Value"][0], d["00201208"]["Value"][0])')"

# 5: the worklist, after the quiet period the README names (30 s for CT)
for _ in $(seq 1 120); do
  [ "$(redis-cli -s "$RSOCK" --raw HGET "hr:wl:{$gen_study}" state)" = ready ] && break
  sleep 0.5
done
check_eq "the study is ready on the imaging worklist within the quiet period" ready \
  "$(redis-cli -s "$RSOCK" --raw HGET "hr:wl:{$gen_study}" state)"
st=0
run_stream 5 'event: claimed' || st=$?
check_eq "block 5 (login, list, claim, events) runs until Ctrl-C (the event stream)" 130 "$st"
check "... the list shows the study, ready" grep -q "\"study\":\"$gen_study\",\"center\":\"imaging\",\"state\":\"ready\"" <(out 5)
check "... the claim answers claimed by reader1" grep -q '"state":"claimed".*"claimed_by":"reader1"' <(out 5)
check_eq "... the stream shows received, ready, claimed" "received ready claimed" \
  "$(out 5 | sed -n 's/^event: //p' | tr '\n' ' ' | sed 's/ $//')"

# 6: CA, key, draft, signature, offline verification (reader1 holds the claim of block 5)
jws_existed=0
[ -e /tmp/report.jws ] && jws_existed=1
check "block 6 (ca init, keygen, report, sign, verify) succeeds" run_block 6
check "... the signature answers version 1" grep -q '"version": *1' <(out 6)
check "... the signed version is preliminary (the imaging center needs a co-signature)" \
  grep -q '"preliminary"' <(curl -s -H "Authorization: Bearer $(login_token http://127.0.0.1:8080 reader1 a-long-password)" \
    "http://127.0.0.1:8080/api/v1/reports?study=$gen_study")
check "... the JWS is compact (three base64url parts)" grep -qE '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' /tmp/report.jws
check_eq "... huren verify checked the 20 images and exits 0 (the block's last command)" 0 \
  "$(cd "$W" && "$HUREN" verify /tmp/report.jws --trust huren-data/ca/trust.pem --images /tmp/study >/dev/null 2>&1; echo $?)"
check "... and refuses the report against another set of images" \
  bash -c "! (cd '$W' && '$HUREN' verify /tmp/report.jws --trust huren-data/ca/trust.pem --images '$SRC/tests' >/dev/null 2>&1)"
[ "$jws_existed" -eq 1 ] || rm -f /tmp/report.jws

# ---- Ctrl-C stops huren and its Redis cleanly ----
rpid=$(cat "$W/huren-data/redis/redis.pid" 2>/dev/null || echo 0)
st=0
stop_huren "$HPID" || st=$?
check_eq "huren stops on SIGINT with status 0" 0 "$st"
check "... and its Redis is gone" test "$rpid" -gt 0 -a ! -d "/proc/$rpid"

[ "$study_existed" -eq 1 ] || rm -rf /tmp/study
finish
