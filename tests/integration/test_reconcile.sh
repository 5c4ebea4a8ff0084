#!/usr/bin/env bash
# With appendfsync everysec, a power loss can drop the last second of index
# commits from Redis' AOF while the objects are on disk. Simulated here by
# putting back an older copy of the AOF: at start-up huren must re-index the
# objects acknowledged after the surviving checkpoint, by itself.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
rport=$(free_port)
start_redis rc "$rport"
cfg=$(write_config rc "$port" "redis://127.0.0.1:$rport")
start_huren rc "$cfg"
aof="$T/rc/redis-ext"

"$GEN" --out "$T/a" --instances 20 --bytes 4096 --modality CR --seed 71 --prefix a >/dev/null
"$GEN" --out "$T/b" --instances 30 --bytes 4096 --modality CR --seed 72 --prefix b >/dev/null
check "batch A stored" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/a"
sleep 2.5   # a checkpoint after batch A reaches the AOF
check "a checkpoint is written" test -n "$(redis-cli -p "$rport" --raw GET hr:meta:checkpoint)"
redis-cli -p "$rport" BGREWRITEAOF >/dev/null; sleep 1
cp -a "$aof" "$T/aof-after-a"
check "batch B stored" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/b"
check_eq "50 indexed before the power cut" 50 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"
study_of() { dcmdump +P 0020,000D "$(ls "$1"/* | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
SA=$(study_of "$T/a"); SB=$(study_of "$T/b")
check_eq "batch B's study is on a worklist" 30 "$(redis-cli -p "$rport" --raw HGET "hr:wl:{$SB}" instances)"

# power cut: huren dies, Redis loses what came after the copy
kill -KILL "$HUREN_PID"; wait "$HUREN_PID" 2>/dev/null || true
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
rm -rf "$aof"; mv "$T/aof-after-a" "$aof"
start_redis rc "$rport"
check_eq "Redis came back without batch B" 20 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"

start_huren rc "$cfg"
check_eq "start-up reconciliation re-indexed batch B" 50 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"
check "the log says what it did" grep -q "reconciled the index with recent objects" "$T/rc/huren.log"
check_eq "study counts are right again" 50 "$(redis-cli -p "$rport" HGET hr:stats instances)"
check_eq "its worklist arrival is redone too" "30 imaging" \
  "$(redis-cli -p "$rport" --raw HMGET "hr:wl:{$SB}" instances center | paste -sd' ')"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# lost everything (no checkpoint at all): a full reindex at start-up
redis-cli -p "$rport" FLUSHALL >/dev/null
start_huren rc "$cfg"
check_eq "empty index rebuilt in full at start-up" 50 "$(redis-cli -p "$rport" HLEN hr:ix:sop)"
check_eq "a full rebuild does not flood the worklists with old studies" 0 \
  "$(redis-cli -p "$rport" EXISTS "hr:wl:{$SA}")"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
