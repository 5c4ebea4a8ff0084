#!/usr/bin/env bash
# Logins cannot slow durable ingest (decisions 0013, 0019): password hashing
# runs on its own bounded pool under SCHED_IDLE (never more than auth.kdf_threads at once; the
# login beyond auth.kdf_queue gets 503 + Retry-After at once), a C-STORE
# completes while logins flood the server, and login attempts are rate
# limited per client address and per user name (429 + Retry-After, audited).
# A refused login (429) is answered only auth.refusal_delay_ms later, its
# connection held (a tarpit), while the hub serves everything else; a
# graceful stop answers the held ones at once.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"

port=$(free_port)
# a costly KDF (1 M iterations, about 0.5 s of CPU each) so that a flood of
# logins would hold any shared pool for seconds
# (windows of an hour: the node's per-address window is aligned to multiples
# of its length, and this test takes a minute)
cfg=$(write_config login "$port" "" "" "" \
  '"kdf_iterations": 1000000, "kdf_threads": 2, "kdf_queue": 8, "login_window_s": 3600,
   "login_per_address": 10, "login_per_user": 3, "refusal_delay_ms": 4000')
DELAY=4.0
hp=$(http_port login)
U="http://127.0.0.1:$hp"
printf '%s\n' 'admin-password-1' | "$HUREN" user add admin --role admin --hospital county \
  --config "$cfg" >/dev/null
printf '%s\n' 'tech1-password' | "$HUREN" user add tech1 --role technician --hospital township1 \
  --config "$cfg" >/dev/null
start_huren login "$cfg"
wait_port "$hp" 30
check_eq "new hashes use auth.kdf_iterations" 1000000 "$(rcli login HGET hr:user:tech1 iter)"
"$GEN" --out "$T/one" --studies 1 --series 1 --instances 1 --bytes 16384 --seed 71 >/dev/null

# login FROM USER PASSWORD OUT -> status code; headers in OUT.h, body in OUT,
# seconds taken in OUT.t
login() {
  curl -s --max-time 300 --interface "$1" -D "$4.h" -o "$4" -w '%{http_code} %{time_total}' \
    -X POST "$U/api/v1/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$2\", \"password\": \"$3\"}" >"$4.w" || true
  read -r code secs <"$4.w" || true
  echo "${secs:-0}" >"$4.t"
  echo "${code:-000}"
}
# at_least SECS MIN: 0 when SECS >= MIN
at_least() { $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

# --- a flood of 40 concurrent logins with random names from 127.0.0.3
mkdir -p "$T/flood"
for i in $(seq 1 40); do
  (login 127.0.0.3 "nobody$RANDOM$i" 'some-password' "$T/flood/$i" > "$T/flood/$i.code") &
done
sleep 0.5
t0=$(date +%s.%N)
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/one"
st=$?
t1=$(date +%s.%N)
check_eq "C-STORE during the login flood succeeds" 0 "$st"
secs=$($PY -c "print(f'{$t1 - $t0:.2f}')")
# a shared pool would hold the store behind 16 KDF runs of 0.7 s on 2 cores
check "C-STORE during the login flood takes < 3 s (took $secs s)" \
  $PY -c "import sys; sys.exit(0 if $t1 - $t0 < 3 else 1)"
for _ in $(seq 1 1500); do
  [ "$(find "$T/flood" -name '*.code' -size +0 | wc -l)" -ge 40 ] && break
  sleep 0.2
done
n503=$(grep -lx 503 "$T/flood"/*.code | wc -l)
n401=$(grep -lx 401 "$T/flood"/*.code | wc -l)
check_eq "every flood login answered 401 or 503" 40 $((n503 + n401))
check "at most kdf_queue (8) flood logins were admitted ($n401)" test "$n401" -le 8
check "the logins beyond the queue got 503 ($n503)" test "$n503" -ge 32
b=$(grep -lx 503 "$T/flood"/*.code | head -1); b=${b%.code}
check "503 carries Retry-After" grep -qi '^retry-after: [0-9]' "$b.h"
check_eq "503 body is a JSON error" busy "$($DW json-get "$b" error)"

login 127.0.0.1 admin admin-password-1 "$T/admin" >/dev/null
tok=$($DW json-get "$T/admin" token || true)
curl -s -H "Authorization: Bearer $tok" "$U/metrics" > "$T/metrics"
rmax=$(sed -n 's/^huren_kdf_running_max \([0-9]*\)$/\1/p' "$T/metrics")
check "the KDF pool never ran more than 2 at once (max $rmax)" test -n "$rmax" -a "${rmax:-99}" -le 2 -a "${rmax:-0}" -ge 1
check "busy refusals are counted" grep -q '^huren_login_refused_total{reason="busy"} [1-9]' "$T/metrics"

# --- per address: the 11th attempt from 127.0.0.2 within the window is 429
codes=""
for i in $(seq 1 11); do
  codes="$codes $(login 127.0.0.2 "random$i" 'some-password' "$T/ra")"
done
check_eq "10 attempts from one address, then 429" \
  " 401 401 401 401 401 401 401 401 401 401 429" "$codes"
check "429 carries Retry-After" grep -qi '^retry-after: [1-9]' "$T/ra.h"
check "the 429 came no sooner than auth.refusal_delay_ms ($(cat "$T/ra.t") s)" \
  at_least "$(cat "$T/ra.t")" "$DELAY"
check_eq "429 body is a JSON error" rate_limited "$($DW json-get "$T/ra" error)"
check_eq "another address is not limited" 401 "$(login 127.0.0.4 random12 'some-password' "$T/rb")"
# a flood from the limited address is refused on the loop (the node's gate):
# every attempt 429, audited once per address and window, counted; 20 at
# once are all held for the delay, then all answered, and the hub answers
# /healthz at once meanwhile
mkdir -p "$T/rf"
t0=$(date +%s.%N)
for i in $(seq 1 20); do
  (login 127.0.0.2 "flood$i" 'some-password' "$T/rf/$i" >"$T/rf/$i.code") &
done
sleep 1
hz=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "$U/healthz" || true)
check_eq "/healthz while 20 refusals are held: 200" 200 "${hz% *}"
check "... answered at once (${hz#* } s)" at_least 1.0 "${hz#* }"
held=$(curl -s -H "Authorization: Bearer $tok" "$U/metrics" | awk '/^huren_http_held / {print $2}')
check "the metrics show them held ($held)" test "${held:-0}" -ge 20
for _ in $(seq 1 150); do
  [ "$(find "$T/rf" -name '*.code' -size +0 | wc -l)" -ge 20 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
codes=$(cat "$T/rf"/*.code | sort | uniq -c | xargs)
check_eq "20 parallel attempts from the limited address: all 429" "20 429" "$codes"
slow=$(for f in "$T/rf"/*.t; do at_least "$(cat "$f")" "$DELAY" && echo y; done | wc -l)
check_eq "... each no sooner than the delay" 20 "$slow"
check "... all within delay + 5 s ($($PY -c "print(f'{$t1 - $t0:.1f}')") s)" \
  $PY -c "import sys; sys.exit(0 if $t1 - $t0 < $DELAY + 5 else 1)"

# --- per user name: 3 attempts for tech1 (from three addresses), then 429,
# before the 5-failure lockout and even with the right password
c1=$(login 127.0.0.5 tech1 'wrong-password' "$T/u1")
c2=$(login 127.0.0.6 tech1 'wrong-password' "$T/u2")
c3=$(login 127.0.0.7 tech1 'tech1-password' "$T/u3")
c4=$(login 127.0.0.8 tech1 'tech1-password' "$T/u4")
check_eq "per user: 401 401 200 then 429" "401 401 200 429" "$c1 $c2 $c3 $c4"
check_eq "per user 429 is the rate limit, not the lockout" rate_limited "$($DW json-get "$T/u4" error)"
check_eq "the hash kept its stored cost" 1000000 "$(rcli login HGET hr:user:tech1 iter)"
# the node's name gate: once Redis refused tech1, the node refuses it on the
# loop until that window ends (decision 0019): attempts from 10 more addresses
# are 429 without reaching Redis (its counter stays) and are audited once
nu=$(rcli login GET hr:rl:login:u:tech1)
mkdir -p "$T/und"
lp=()
for i in $(seq 10 19); do
  (login 127.0.1.$i tech1 'tech1-password' "$T/und/$i" >"$T/und/$i.code") &
  lp+=($!)
done
wait "${lp[@]}"
check_eq "10 more attempts for tech1 from other addresses: all 429" "10 429" \
  "$(cat "$T/und"/*.code | sort | uniq -c | xargs)"
cp "$T/und/19.h" "$T/un.h"
cp "$T/und/19" "$T/un"
check_eq "the name gate answered them: Redis counted none ($nu before)" "$nu" \
  "$(rcli login GET hr:rl:login:u:tech1)"
check "name gate 429 carries Retry-After" grep -qi '^retry-after: [1-9]' "$T/un.h"
check_eq "name gate 429 body is a JSON error" rate_limited "$($DW json-get "$T/un" error)"

# --- refusals are audited
sleep 1.5
aud=$(cat "$T/login/data/audit"/*.jsonl)
check "429 audited (outcome limited, address)" bash -c \
  "grep '\"action\":\"login\"' <<<'$aud' | grep '\"outcome\":\"limited\"' | grep -q '127.0.0.2'"
nlim=$(grep '"action":"login"' <<<"$aud" | grep '"outcome":"limited"' | grep -c '127.0.0.2' || true)
check "21 refusals of one address: audited once per window, not 21 times ($nlim)" \
  test "$nlim" -ge 1 -a "$nlim" -le 2
ntech=$(grep '"action":"login"' <<<"$aud" | grep '"outcome":"limited"' | grep -c 'user tech1' || true)
check "11 refusals of tech1 from 11 addresses: audited at most twice ($ntech)" \
  test "$ntech" -ge 1 -a "$ntech" -le 2
check "503 audited (outcome busy)" bash -c \
  "grep '\"action\":\"login\"' <<<'$aud' | grep -q '\"outcome\":\"busy\"'"
check "the huren process is still serving" curl -sf "$U/healthz" -o /dev/null
# the hashing threads take only CPU time nothing else wants (SCHED_IDLE)
check_eq "KDF threads run under SCHED_IDLE" "IDL IDL" \
  "$(ps -L -o cls=,comm= -p "$HUREN_PID" | awk '$2 ~ /^kdf-/ {print $1}' | sort | xargs)"
# clients that give up while their refusal is held: released at the delay,
# nothing left held, the hub unharmed
lp=()
for i in $(seq 1 10); do
  curl -s -o /dev/null --max-time 0.5 --interface 127.0.0.2 -X POST "$U/api/v1/login" \
    -d "{\"user\": \"gone$i\", \"password\": \"x\"}" &
  lp+=($!)
done
wait "${lp[@]}" || true
held=$(curl -s -H "Authorization: Bearer $tok" "$U/metrics" | awk '/^huren_http_held / {print $2}')
check "10 clients gone, their refusals still held until the delay ($held)" test "${held:-0}" -ge 5
sleep "$DELAY"
sleep 1
held=$(curl -s -H "Authorization: Bearer $tok" "$U/metrics" | awk '/^huren_http_held / {print $2}')
check_eq "... then released: none held" 0 "$held"
check_eq "... and the hub answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/healthz")"

# a graceful stop with refusals held: they are answered at once (closing),
# and huren exits 0 long before the delay would have passed
mkdir -p "$T/hs"
lp=()
for i in $(seq 1 16); do
  (login 127.0.0.2 "stop$i" 'some-password' "$T/hs/$i" >"$T/hs/$i.code") &
  lp+=($!)
done
sleep 1
t0=$(date +%s.%N)
kill -INT "$HUREN_PID"
st=0
wait "$HUREN_PID" || st=$?
t1=$(date +%s.%N)
check_eq "graceful stop with 16 held refusals exits 0" 0 "$st"
check "... within 2.5 s ($($PY -c "print(f'{$t1 - $t0:.2f}')") s)" \
  $PY -c "import sys; sys.exit(0 if $t1 - $t0 < 2.5 else 1)"
wait "${lp[@]}"
check_eq "the held refusals were answered 429 at the stop" "16 429" \
  "$(cat "$T/hs"/*.code | sort | uniq -c | xargs)"
check "... closing their connections" grep -qi '^connection: close' "$T/hs/1.h"
finish
