#!/usr/bin/env bash
# Signed report versions survive the loss of Redis' last AOF second (decision
# 0024): each version is written to <data_dir>/reports/aa/bb/<digest>.json
# (fsync, rename, directory fsync) before its commit, so the file exists when
# the 200 arrives; with the versions deleted from Redis (what appendfsync
# everysec loses), a restart replays them: the listing has them again, the JWS
# is byte-identical, the outbox entry is back. Hostile: a garbage record and a
# record that is not the version its name says are counted, not replayed;
# `huren reindex` replays too.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810

port=$(free_port)
cfg=$(write_config rd "$port")
# The report sender takes outbox entries at every poll (each second by
# default), which races with the checks below that count them: here it
# polls once a minute, after this test is over.
"$PY" - "$cfg" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("delivery", {})["poll_ms"] = 60000
json.dump(c, open(sys.argv[1], "w"))
EOF
U="http://127.0.0.1:$(http_port rd)"
DATA=$T/rd/data
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" aud1 'aud1-password-1' auditor county imaging
add_user "$cfg" tech1 'tech1-password-1' technician township1
check "huren ca init" "$HUREN" ca init --config "$cfg"
mkkey() { printf '%s\n' "$PIN" | "$HUREN" keygen --config "$cfg" --user "$1" --alg es256 --pin-stdin >/dev/null; }
check "keygen rd1" mkkey rd1
check "keygen aud1" mkkey aud1

start_huren rd "$cfg"
wait_port "$(http_port rd)" 30
login_all() {
  R1=$(login_token "$U" rd1 rd1-password-1); A1=$(login_token "$U" aud1 aud1-password-1)
  T1=$(login_token "$U" tech1 tech1-password-1)
}
login_all
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
records() { find "$DATA/reports" -name '*.json' -type f 2>/dev/null | wc -l; }

"$GEN" --out "$T/ct" --modality CT --series 1 --instances 2 --bytes 2048 --seed 71 --patient-id RD1 >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
S=$(dcmdump +P 0020,000D "$(ls "$T/ct"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
R=/api/v1/reports
check_eq "tech1 completes it" 200 "$(req "$T/c.json" "$T1" POST "/api/v1/exams/$S/complete")"
check_eq "rd1 claims it" 200 "$(req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$S/claim")"
check_eq "rd1 creates a draft" 201 "$(req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
check_eq "rd1 saves it" 200 \
  "$(req "$T/s.json" "$R1" PUT "$R/$ID" -d '{"rev": 0, "findings": "No focal lesion.", "impression": "Normal CT."}')"
check_eq "no version record before signing" 0 "$(records)"

# the 200 of a signature arrives after its record is durable
code=$(req "$T/s.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}")
n1=$(records)
check_eq "rd1 signs: 200" 200 "$code"
check_eq "... its version record exists when the 200 arrives" 1 "$n1"
st1=$(jget "$T/s.json" 'd["status"]')
code=$(req "$T/s.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}")
n2=$(records)
check_eq "aud1 co-signs: 200 final (rd1's was $st1)" "200 final" "$code $(jget "$T/s.json" 'd["status"]')"
check_eq "... a second record when the 200 arrives" 2 "$n2"
check "... version 2 is queued for delivery" test -n "$(rcli rd ZSCORE hr:rpt:outbox "$ID/2")"
for k in 1 2; do
  curl -s -o "$T/v$k.jws" -H "Authorization: Bearer $R1" "$U$R/$ID/versions/$k/jws"
  D[$k]=$(tr -d '\n' <"$T/v$k.jws" | sha256sum | cut -d' ' -f1)
  check_eq "record of version $k named by its digest" "$(rcli rd HGET "hr:rpt:{$S}:1:v:$k" digest)" "${D[$k]}"
  check "... at reports/aa/bb/<digest>.json" test -f "$DATA/reports/${D[$k]:0:2}/${D[$k]:2:2}/${D[$k]}.json"
done
check_eq "the record holds the JWS byte for byte" "$(tr -d '\n' <"$T/v2.jws")" \
  "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["jws"])' "$DATA/reports/${D[2]:0:2}/${D[2]:2:2}/${D[2]}.json")"
check_eq "records are read-only data: no temp file left" 0 \
  "$(find "$DATA/reports" -name '*.part' | wc -l)"

# lose both versions as the last AOF second would: the report back as a
# draft, its summary open, the outbox entry gone, the checkpoint older
lose() {
  rcli rd DEL "hr:rpt:{$S}:1:v:1" "hr:rpt:{$S}:1:v:2" >/dev/null
  rcli rd HSET "hr:rpt:{$S}:1" status draft versions 0 current 0 pending 0 pending_kind '' \
    draft '{"findings":"No focal lesion.","impression":"Normal CT."}' >/dev/null
  rcli rd HSET "hr:rpt:{$S}" status draft open "$ID" >/dev/null
  rcli rd ZREM hr:rpt:outbox "$ID/2" >/dev/null
  rcli rd SET hr:meta:checkpoint $(($(date +%s%3N) - 60000)) >/dev/null
}
lose
check_eq "the versions are gone from Redis" "0 draft" \
  "$(rcli rd EXISTS "hr:rpt:{$S}:1:v:2") $(rcli rd HGET "hr:rpt:{$S}:1" status)"
req "$T/g.json" "$R1" GET "$R/$ID" >/dev/null
check_eq "... and from the listing" "draft 0" "$(jget "$T/g.json" 'd["status"] + " " + str(len(d.get("versions", [])))')"

# hostile records: garbage, and a valid record under another digest's name
mkdir -p "$DATA/reports/00/00"
head -c 300 /dev/urandom >"$DATA/reports/00/00/$(printf '0%.0s' $(seq 1 64)).json"
cp "$DATA/reports/${D[1]:0:2}/${D[1]:2:2}/${D[1]}.json" "$DATA/reports/00/00/00$(printf 'a%.0s' $(seq 1 62)).json"

check "graceful stop" stop_huren "$HUREN_PID"
start_huren rd "$cfg"
wait_port "$(http_port rd)" 30
check "start-up restored the two versions, refused the two bad records" \
  grep -q "2 restored, 0 not applicable, 2 corrupt" "$T/rd/huren.log"
login_all
check_eq "GET lists both versions again, final" "200 final 1,2" \
  "$(req "$T/g.json" "$R1" GET "$R/$ID") $(jget "$T/g.json" 'd["status"] + " " + ",".join(str(v["version"]) for v in d["versions"])')"
for k in 1 2; do
  curl -s -o "$T/w$k.jws" -H "Authorization: Bearer $R1" "$U$R/$ID/versions/$k/jws"
  check "version $k's JWS is byte-identical" cmp -s "$T/v$k.jws" "$T/w$k.jws"
done
check "the outbox entry of version 2 is back" test -n "$(rcli rd ZSCORE hr:rpt:outbox "$ID/2")"
check_eq "the report is current 2, no pending, draft closed" "2 0 " \
  "$(rcli rd HGET "hr:rpt:{$S}:1" current) $(rcli rd HGET "hr:rpt:{$S}:1" pending) $(rcli rd HGET "hr:rpt:{$S}:1" draft)"
check_eq "the study's summary is final and closed" "final " \
  "$(rcli rd HGET "hr:rpt:{$S}" status) $(rcli rd HGET "hr:rpt:{$S}" open)"
check_eq "the worklist item is final" final "$(rcli rd HGET "hr:wl:{$S}" state)"
check_eq "records are immutable: still two of them (+2 hostile)" 4 "$(records)"
out=$("$HUREN" reindex --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "a second replay (huren reindex) finds them present, exit 3 for the corrupt ones" 3 "$st"
check "... 0 restored, 2 already indexed, 2 corrupt" \
  grep -q '4 signed report version records: 0 restored, 2 already indexed, 0 not applicable, 2 corrupt' <<<"$out"
rm -f "$DATA"/reports/00/00/*.json

# huren reindex replays a lost version too (the hub serving: it uses its redis)
rcli rd DEL "hr:rpt:{$S}:1:v:2" >/dev/null
rcli rd HSET "hr:rpt:{$S}:1" status preliminary versions 1 current 0 pending 1 pending_kind final >/dev/null
rcli rd ZREM hr:rpt:outbox "$ID/2" >/dev/null
out=$("$HUREN" reindex --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "reindex exits 0" 0 "$st"
check "reindex restores version 2" grep -q "1 restored, 1 already indexed" <<<"$out"
check_eq "... final again with its outbox entry" "final 2 1" \
  "$(rcli rd HGET "hr:rpt:{$S}:1" status) $(rcli rd HGET "hr:rpt:{$S}:1" versions) $(rcli rd ZCOUNT hr:rpt:outbox -inf +inf)"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
