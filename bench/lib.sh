# shellcheck shell=bash
# Shared helpers for bench/* scripts (bash). Source it:
#   . "$(dirname "$0")/lib.sh"
# Everything runs on 127.0.0.1. Every wait is bounded. Only processes and
# directories registered here are cleaned up, and always by pid or path.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PIDS=()   # process-group leaders started with bench_spawn
BENCH_DIRS=()   # temporary directories removed on exit
BENCH_PORTS=" " # ports handed out in this run (never handed out twice)

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

# Seconds since the epoch with nanoseconds, for wall-clock differences.
bench_now() { date +%s.%N; }
# bench_elapsed START -> seconds since START (3 decimals).
bench_elapsed() { awk -v a="$1" -v b="$(bench_now)" 'BEGIN { printf "%.3f", b - a }'; }

# bench_mktemp VAR NAME -> sets VAR to a fresh directory under $BENCH_TMPDIR
# (default /tmp), removed on exit. Call it in the main shell.
bench_mktemp() {
    local d
    d=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/huren-bench-$2.XXXXXX") || bench_die "mktemp failed"
    BENCH_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# bench_port_busy PORT -> status 0 when something accepts on 127.0.0.1:PORT.
bench_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# bench_free_port VAR -> sets VAR to a loopback TCP port nobody listens on
# and that this run has not handed out before. Bounded: 200 tries. Call it in
# the main shell, not in $(...), so that the port is remembered.
bench_free_port() {
    local i p
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ $BENCH_PORTS == *" $p "* ]] && continue
        if command -v ss >/dev/null 2>&1; then
            ss -Htan "sport = :$p" 2>/dev/null | grep -q . && continue
        fi
        bench_port_busy "$p" && continue
        BENCH_PORTS+="$p "
        printf -v "$1" '%s' "$p"
        return 0
    done
    bench_die "no free port found"
}

# bench_wait_port PORT [TIMEOUT_S=20] [PID] -> 0 once 127.0.0.1:PORT accepts.
# Returns 1 on timeout, or as soon as PID (if given) has exited.
bench_wait_port() {
    local port=$1 timeout=${2:-20} pid=${3:-} i n
    n=$((timeout * 20))
    for ((i = 0; i < n; i++)); do
        bench_port_busy "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# bench_spawn VAR LOGFILE CMD... -> starts CMD in its own session (pid ==
# process group id), stdout and stderr to LOGFILE, and sets VAR to its pid.
# Call it in the main shell (not in $(...)) so the exit trap knows the pid.
# bench_stop stops it and any children it forked.
bench_spawn() {
    local var=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    BENCH_PIDS+=("$!")
    printf -v "$var" '%s' "$!"
}

# bench_stop PID [GRACE_S=5] -> SIGTERM to the process group, then SIGKILL
# after GRACE_S seconds. Waits for the leader.
bench_stop() {
    local pid=$1 grace=${2:-5} i
    [[ -z $pid ]] && return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    # forked children (storescp --fork) that outlived the leader
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do
        [[ $p != "$pid" ]] && keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
    return 0
}

bench_cleanup() {
    local p d
    for p in "${BENCH_PIDS[@]}"; do
        bench_stop "$p" 2
    done
    for d in "${BENCH_DIRS[@]}"; do
        [[ -n $d && -d $d ]] && rm -rf -- "$d"
    done
}

# Installs the cleanup trap (call once, early).
bench_trap() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_median V... -> median of the numeric arguments ("n/a" when there are
# none; non-numeric values are ignored).
bench_median() {
    printf '%s\n' "$@" | grep -E '^[0-9]+([.][0-9]+)?$' | sort -g |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "n/a"; exit }
            if (NR % 2) printf "%.1f\n", v[(NR + 1) / 2];
            else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B -> A/B with 2 decimals, or n/a.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f\n", a / b;
        else print "n/a" }'
}

# bench_rate COUNT SECONDS -> COUNT/SECONDS with 1 decimal.
bench_rate() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f\n", n / s; else print "n/a" }'
}

# bench_peak_rss_kb PID -> VmHWM of a live process in kB (n/a if gone).
bench_peak_rss_kb() {
    awk '/^VmHWM:/ { print $2; found = 1 } END { if (!found) print "n/a" }' \
        "/proc/$1/status" 2>/dev/null || echo n/a
}

# bench_tree_peak_rss_kb PID -> sum of VmHWM over PID and its descendants
# (e.g. an embedded redis-server), in kB.
bench_tree_peak_rss_kb() {
    local pids=("$1") all=() p c sum=0 v
    while [[ ${#pids[@]} -gt 0 ]]; do
        p=${pids[0]}
        pids=("${pids[@]:1}")
        all+=("$p")
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do pids+=("$c"); done
    done
    for p in "${all[@]}"; do
        v=$(bench_peak_rss_kb "$p")
        [[ $v =~ ^[0-9]+$ ]] && sum=$((sum + v))
    done
    echo "$sum"
}

# bench_rss_kb PID -> current VmRSS in kB.
bench_rss_kb() {
    awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print "n/a" }' \
        "/proc/$1/status" 2>/dev/null || echo n/a
}

# bench_dir_bytes DIR -> total size of the regular files in DIR (bytes).
bench_dir_bytes() {
    find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# bench_split SRC N DEST -> hard-links (or copies) SRC's files round-robin
# into DEST/0 .. DEST/N-1.
bench_split() {
    local src=$1 n=$2 dst=$3 i=0 f
    for ((i = 0; i < n; i++)); do mkdir -p "$dst/$i"; done
    i=0
    for f in "$src"/*; do
        ln "$f" "$dst/$((i % n))/" 2>/dev/null || cp "$f" "$dst/$((i % n))/"
        i=$((i + 1))
    done
}

# bench_build_release -> builds build/release (huren, huren-gen). When the
# full build fails (for example, a module is still being written), it still
# tries to build huren-gen on its own. Returns 1 if huren-gen is missing.
# Logs go to build/release/bench-build.log.
bench_build_release() {
    local b="$BENCH_ROOT/build/release"
    local log="$b/bench-build.log"
    mkdir -p "$b"
    : >"$log"
    if [[ ! -f $b/build.ninja ]]; then
        cmake -S "$BENCH_ROOT" -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUREN_TESTS=OFF \
            >>"$log" 2>&1 || bench_log "note: cmake configure failed (see $log)"
    fi
    if [[ -f $b/build.ninja ]]; then
        if ! cmake --build "$b" >>"$log" 2>&1; then
            bench_log "note: full release build failed (see $log); building huren-gen only"
            cmake --build "$b" --target huren-gen >>"$log" 2>&1
        fi
    fi
    [[ -x $b/huren-gen ]]
}

# bench_machine -> one line describing the machine and its current load.
bench_machine() {
    printf 'machine: %s, %s cores, load %s, %s\n' "$(uname -sr)" "$(nproc)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "$(df -h "${BENCH_TMPDIR:-/tmp}" | awk 'NR == 2 { print "tmp on " $1 " (" $4 " free)" }')"
}

# bench_huren_config FILE DATA_DIR DICOM_PORT HTTP_PORT HL7_PORT -> writes a
# huren config with the township1 and county hospitals on loopback. Every
# load comes from 127.0.0.1: no per-address cap, no reserve (decision 0012).
bench_huren_config() { # FILE DATA P1 P2 P3; BENCH_REDIS_TIMEOUT_MS: start-up wait for a big AOF
    local redis=
    [[ -n ${BENCH_REDIS_TIMEOUT_MS:-} ]] && redis="\"redis\": {\"connect_timeout_ms\": $BENCH_REDIS_TIMEOUT_MS},"
    cat >"$1" <<EOF
{"data_dir": "$2", "log_level": "warn", $redis
 "dicom": {"listen": "127.0.0.1", "port": $3, "ae_title": "HUREN",
           "max_per_address": 128, "reserved_associations": 0},
 "http": {"listen": "127.0.0.1", "port": $4},
 "hl7": {"listen": "127.0.0.1", "port": $5},
 "hospitals": [
  {"id": "township1", "name": "Township 1", "level": "township",
   "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"]},
  {"id": "county", "name": "County", "level": "county",
   "ae_titles": ["COUNTY"], "addresses": ["127.0.0.1"]}]}
EOF
}

# bench_huren_usable BIN -> 0 when BIN exists and runs at all (whether
# "serve" works shows when it is started).
bench_huren_usable() {
    [[ -x $1 ]] || return 1
    local rc
    timeout 10 "$1" --help >/dev/null 2>&1
    rc=$?
    [[ $rc -ne 126 && $rc -ne 127 ]]
}
