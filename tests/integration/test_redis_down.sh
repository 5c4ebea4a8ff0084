#!/usr/bin/env bash
# Redis stopped mid-run: C-STORE answers a failure status (never success),
# nothing acknowledged is lost, and huren recovers by itself when Redis is back.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
rport=$(free_port)
start_redis rd "$rport"
cfg=$(write_config rd "$port" "redis://127.0.0.1:$rport")
start_huren rd "$cfg"

"$GEN" --out "$T/a" --instances 5 --bytes 4096 --modality DX --seed 41 --prefix a >/dev/null
"$GEN" --out "$T/b" --instances 1 --bytes 4096 --modality DX --seed 42 --prefix b >/dev/null
"$GEN" --out "$T/c" --instances 3 --bytes 4096 --modality DX --seed 43 --prefix c >/dev/null

check "first batch stored" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/a"
check_eq "5 indexed" 5 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"

redis-cli -p "$rport" shutdown >/dev/null 2>&1 || true
wait "$REDIS_PID" 2>/dev/null || true
out=$(storescu -v -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/b" 2>&1 || true)
check "store while redis is down gets Out of Resources (A700)" grep -Eqi "Out ?of ?Resources|A700" <<<"$out"
check "and no success" bash -c "! grep -q 'Received Store Response (Success)' <<<'$out'"
check "huren logged the refusal and its reason" grep -q "refused with A700: index unavailable" "$T/rd/huren.log"

# stay down long enough for several refused reconnects (the libuv adapter of
# hiredis loses a refused TCP connect: the connect watchdog must redo it)
sleep 5
start_redis rd "$rport"
recovered=0
for _ in $(seq 1 50); do
  if storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/c" >/dev/null 2>&1; then recovered=1; break; fi
  sleep 0.2
done
check "huren recovers by itself when redis returns" test "$recovered" = 1
n=0
for f in "$T/a"/*; do [ -n "$(redis-cli -p "$rport" --raw HGET hr:ix:sop "$(sop_uid "$f")")" ] && n=$((n + 1)); done
check_eq "first batch still indexed (AOF)" 5 "$n"
check "the refused instance is accepted on retry" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/b"
check_eq "9 indexed in all" 9 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"

# a Redis that accepts and never answers (SIGSTOP) must not freeze C-STORE
# forever: past the index deadline (5 s) the sender gets A700, and huren
# recovers once Redis answers again
"$GEN" --out "$T/d" --instances 1 --bytes 4096 --modality DX --seed 44 --prefix d >/dev/null
kill -STOP "$REDIS_PID"
t0=$(date +%s)
out=$(timeout 30 storescu -v -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/d" 2>&1 || true)
t1=$(date +%s)
kill -CONT "$REDIS_PID"
check "store while redis is stalled gets A700" grep -Eqi "Out ?of ?Resources|A700" <<<"$out"
check "within the deadline, not forever ($((t1 - t0)) s)" test $((t1 - t0)) -le 15
check "huren logged the stall" grep -q "redis has not answered for" "$T/rd/huren.log"
recovered=0
for _ in $(seq 1 50); do
  if storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/d" >/dev/null 2>&1; then recovered=1; break; fi
  sleep 0.2
done
check "huren recovers after the stall" test "$recovered" = 1
check_eq "10 indexed in all" 10 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
