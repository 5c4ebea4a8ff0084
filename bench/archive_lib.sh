# shellcheck shell=bash
# Helpers shared by bench/build_archive, bench/query and bench/retrieve:
# binaries, and starting huren / Orthanc (+ DICOMweb plugin) on a given data
# directory with fresh loopback ports. Source it after bench/lib.sh.
#
# Servers are named; for a server NAME the helpers fill the associative
# arrays SPID, SDICOM (DICOM port), SHTTP (HTTP port), SAEC (called AE
# title), SROOT (DICOMweb root path), STOKEN (bearer token, "-" for none)
# and SLOG. Call them in the main shell (never in $(...)).

ARCH_ROOT=${BENCH_DIR:-/tmp/huren-bench}
HUREN_BUILD=${HUREN_BUILD_DIR:-build/release}
[[ $HUREN_BUILD == /* ]] || HUREN_BUILD=$BENCH_ROOT/$HUREN_BUILD
HUREN=$HUREN_BUILD/huren
GEN=$HUREN_BUILD/huren-gen
ORTHANC_DICOMWEB=${BENCH_ORTHANC_DICOMWEB:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}
BENCH_USER=bench
BENCH_PASSWORD=bench-password-1
QR_LOAD=$BENCH_ROOT/bench/qr_load.py
PY=${BENCH_PYTHON:-python3}
declare -A SPID SDICOM SHTTP SAEC SROOT STOKEN SLOG

# arch_binaries -> makes sure huren and huren-gen exist. With HUREN_BUILD_DIR
# set, that build is used as is; without it, build/release is built as
# bench/ingest does. huren-gen falls back to a direct cc build.
arch_binaries() {
    mkdir -p "$ARCH_ROOT" || bench_die "cannot create $ARCH_ROOT"
    if [[ -z ${HUREN_BUILD_DIR:-} ]]; then
        bench_build_release || bench_log "note: build/release incomplete (see build/release/bench-build.log)"
    fi
    if [[ ! -x $GEN ]]; then
        GEN=$ARCH_ROOT/huren-gen
        if [[ ! -x $GEN ]]; then
            cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$BENCH_ROOT" "$BENCH_ROOT/tests/tools/huren_gen.c" \
                "$BENCH_ROOT/common/hr_err.c" -lz -o "$GEN" || bench_die "cannot build huren-gen"
        fi
    fi
    bench_huren_usable "$HUREN" || bench_die "$HUREN is not built (set HUREN_BUILD_DIR)"
    command -v storescu >/dev/null || bench_die "storescu not found (apt-get install dcmtk)"
}

arch_have_orthanc() {
    command -v Orthanc >/dev/null && [[ -f $ORTHANC_DICOMWEB ]]
}

# arch_huren_user CONFIG -> creates the admin account the benchmarks log in with
arch_huren_user() {
    printf '%s\n' "$BENCH_PASSWORD" | timeout 60 "$HUREN" user add "$BENCH_USER" --role admin \
        --hospital county --config "$1" >/dev/null
}

# srv_start_huren NAME DIR -> huren serve on DIR/data (config DIR/huren.json,
# rewritten with fresh ports each time); logs in as the bench user.
# LOGIN=0 skips the login (for ingest only); ADDUSER=1 first creates the
# bench user (on a new data directory).
srv_start_huren() {
    local name=$1 dir=$2 p1 p2 p3 i
    bench_free_port p1
    bench_free_port p2
    bench_free_port p3
    mkdir -p "$dir"
    bench_huren_config "$dir/huren.json" "$dir/data" "$p1" "$p2" "$p3"
    SDICOM[$name]=$p1 SHTTP[$name]=$p2 SAEC[$name]=HUREN SROOT[$name]=/dicomweb/ STOKEN[$name]=-
    SLOG[$name]=$dir/huren.log
    if [[ ${ADDUSER:-0} -eq 1 ]]; then
        arch_huren_user "$dir/huren.json" || {
            bench_log "huren ($name): user add failed"
            return 1
        }
    fi
    local pid
    bench_spawn pid "$dir/huren.log" env TCP_NODELAY=1 "$HUREN" serve --config "$dir/huren.json"
    SPID[$name]=$pid
    if ! bench_wait_port "$p1" 180 "$pid" || ! bench_wait_port "$p2" 30 "$pid"; then
        bench_log "huren ($name) did not listen; last log lines:"
        tail -n 5 "$dir/huren.log" >&2
        return 1
    fi
    [[ ${LOGIN:-1} -eq 1 ]] || return 0
    local tok=
    for ((i = 0; i < 20; i++)); do
        tok=$(curl -s -m 10 -X POST "http://127.0.0.1:$p2/api/v1/login" -H 'Content-Type: application/json' \
            -d "{\"user\": \"$BENCH_USER\", \"password\": \"$BENCH_PASSWORD\"}" |
            "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null) && break
        sleep 0.5
    done
    [[ -n $tok ]] || {
        bench_log "huren ($name): login as $BENCH_USER failed"
        return 1
    }
    STOKEN[$name]=$tok
}

# srv_start_orthanc NAME DIR [SYNC=true] -> Orthanc with its default SQLite
# index in DIR/index, storage DIR/storage, and the DICOMweb plugin.
srv_start_orthanc() {
    local name=$1 dir=$2 sync=${3:-true} p1 p2 pid i
    bench_free_port p1
    bench_free_port p2
    mkdir -p "$dir"
    cat >"$dir/orthanc.json" <<EOF
{"Name": "bench", "StorageDirectory": "$dir/storage", "IndexDirectory": "$dir/index",
 "DicomAet": "ORTHANC", "DicomPort": $p1, "HttpPort": $p2,
 "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "DicomCheckCalledAet": false,
 "DicomAlwaysAllowStore": true, "DicomAlwaysAllowFind": true, "DicomAlwaysAllowMove": true,
 "StorageCompression": false, "SyncStorageArea": $sync, "SaveJobs": false,
 "Plugins": ["$ORTHANC_DICOMWEB"],
 "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": false},
 "DicomModalities": {}}
EOF
    SDICOM[$name]=$p1 SHTTP[$name]=$p2 SAEC[$name]=ORTHANC SROOT[$name]=/dicom-web/ STOKEN[$name]=-
    SLOG[$name]=$dir/orthanc.log
    bench_spawn pid "$dir/orthanc.log" env TCP_NODELAY=1 Orthanc "$dir/orthanc.json"
    SPID[$name]=$pid
    if ! bench_wait_port "$p1" 300 "$pid" || ! bench_wait_port "$p2" 60 "$pid"; then
        bench_log "Orthanc ($name) did not listen; last log lines:"
        tail -n 5 "$dir/orthanc.log" >&2
        return 1
    fi
    # the plugin is loaded before the ports open; check it answers
    for ((i = 0; i < 50; i++)); do
        curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p2/dicom-web/studies?limit=1" |
            grep -qE '^(200|204)$' && return 0
        sleep 0.2
    done
    bench_log "Orthanc ($name): /dicom-web/ does not answer (is orthanc-dicomweb installed?)"
    return 1
}

srv_stop() {
    bench_stop "${SPID[$1]:-}" 30
    SPID[$1]=
}

# srv_send NAME PARALLEL DIR... -> storescu as TOWNSHIP1 with PARALLEL
# associations at once, the directories dealt round-robin; R = seconds or FAIL
srv_send() {
    local name=$1 npar=$2 i k bad=0 pids=() t0
    shift 2
    local dirs=("$@") logs
    logs=$(mktemp -d "${TMPDIR:-/tmp}/huren-bench-send.XXXXXX")
    BENCH_DIRS+=("$logs")
    t0=$(bench_now)
    for ((k = 0; k < npar; k++)); do
        local mine=()
        for ((i = k; i < ${#dirs[@]}; i += npar)); do mine+=("${dirs[$i]}"); done
        [[ ${#mine[@]} -eq 0 ]] && continue
        TCP_NODELAY=1 timeout "${BENCH_CLIENT_TIMEOUT:-3600}" storescu -aet TOWNSHIP1 -aec "${SAEC[$name]}" \
            +sd 127.0.0.1 "${SDICOM[$name]}" "${mine[@]}" >"$logs/$k.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=1; done
    R=$(bench_elapsed "$t0")
    if [[ $bad -ne 0 ]] || grep -qE '^(E|F):' "$logs"/*.log; then
        bench_log "storescu errors ($name):"
        grep -hE '^(E|F):' "$logs"/*.log | sort | uniq -c | head -n 5 >&2
        R=FAIL
    fi
    rm -rf -- "$logs"
}

# srv_count NAME DIR -> number of instances the server holds
srv_count() {
    case ${SAEC[$1]} in
    HUREN) find "$2/data/objects" -type f 2>/dev/null | wc -l ;;
    *) curl -s -m 60 "http://127.0.0.1:${SHTTP[$1]}/statistics" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])' 2>/dev/null || echo 0 ;;
    esac
}
