#!/usr/bin/env bash
# C-ECHO from a configured AE; association rejection for unknown calling AE,
# wrong called AE, and a known AE from an address it is not allowed from.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config echo "$port")
start_huren echo "$cfg"

check "echoscu from TOWNSHIP1 succeeds" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port"
check "five echoes on one association" echoscu -aet TOWNSHIP1 -aec HUREN --repeat 5 127.0.0.1 "$port"

out=$(echoscu -aet STRANGER -aec HUREN 127.0.0.1 "$port" 2>&1 || true)
check "unknown calling AE is rejected" grep -q "Association Rejected" <<<"$out"
check "reject reason: calling AE title not recognized" grep -qi "Calling AE Title Not Recognized" <<<"$out"

out=$(echoscu -aet TOWNSHIP1 -aec OTHERHUB 127.0.0.1 "$port" 2>&1 || true)
check "wrong called AE is rejected" grep -qi "Called AE Title Not Recognized" <<<"$out"

out=$(echoscu -aet TOWNSHIP2 -aec HUREN 127.0.0.1 "$port" 2>&1 || true)
check "TOWNSHIP2 from a non-allowed address is rejected" grep -qi "Calling AE Title Not Recognized" <<<"$out"
check "rejections are logged with the reason" grep -q "is not allowed from this address" "$T/echo/huren.log"

check "huren still serves after rejections" echoscu -aet COUNTY -aec HUREN 127.0.0.1 "$port"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# the embedded defaults use a relative data_dir ("./huren-data"): it must work
# from any working directory, with the embedded redis started inside it
port2=$(free_port)
mkdir -p "$T/rel"
printf '{"data_dir": "./rel-data", "dicom": {"listen": "127.0.0.1", "port": %s}}' "$port2" >"$T/rel/config.json"
(cd "$T/rel" && exec "$HUREN" serve --config config.json) >"$T/rel/huren.log" 2>&1 &
rel_pid=$!
PIDS+=("$rel_pid")
check "huren starts with a relative data_dir" wait_port "$port2" 30
check "and answers C-ECHO" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port2"
check "its redis lives inside the data dir" test -S "$T/rel/rel-data/redis/redis.sock"
check "graceful stop exits 0" stop_huren "$rel_pid"
check "the embedded redis stopped with it" bash -c "! kill -0 \$(cat '$T/rel/rel-data/redis/redis.pid' 2>/dev/null || echo 999999) 2>/dev/null"
finish
