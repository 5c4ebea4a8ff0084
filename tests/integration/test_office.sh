#!/usr/bin/env bash
# The 医共体 office and admin API (issue 10, decision 0031) with a real huren,
# storescu and curl: township1 and the county send exams, a reader signs two
# of them final, a stat exam goes overdue; the office reads the volumes per
# day (per township and center, remote diagnosis), the turnaround against
# target, the overdue list and the recognition rate, as JSON and as CSV
# (UTF-8 with a BOM); auditors search the audit log (bounded, paged by a
# cursor); admins manage users with the rules of `huren user add`; the
# hospitals and centers are read from the configuration without secrets.
# Hostile: every route with the wrong role (403), no token or an expired
# one (401), garbage parameters and bodies (400); the office sees no patient
# data.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810

port=$(free_port)
cfg=$(write_config of "$port")
# seconds instead of minutes for the targets; US goes to imaging as stat
# with a 2 s target (it goes overdue), everything else routine with 1 h;
# imaging without co-signature so one reader's signature is final
$PY - "$cfg" <<'PYCFG'
import json, sys
c = json.load(open(sys.argv[1]))
c["centers"] = [
  {"id": "imaging", "name": "医学影像中心", "kind": "imaging", "hospital": "county", "audit_signoff": False},
  {"id": "ecg", "name": "心电诊断中心", "kind": "ecg", "hospital": "county"}]
c["routing"] = {"rules": [{"modalities": ["US"], "center": "imaging", "priority": "stat"}],
                "default": {"center": "imaging", "priority": "routine"}}
c["worklist"] = {"turnaround_unit_s": 1, "turnaround_min": {"imaging": {"stat": 2, "routine": 3600}}}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYCFG
U="http://127.0.0.1:$(http_port of)"
adduser() { add_user "$cfg" "$@"; }
adduser rd1 'rd1-password-1' reader county imaging
adduser aud1 'aud1-password-1' auditor county imaging
adduser tech1 'tech1-password-1' technician township1
adduser ext1 'ext1-password-1' external township2
adduser off1 'off1-password-1' office county
adduser admin 'admin-password-1' admin county
check "huren ca init" "$HUREN" ca init --config "$cfg"
check "keygen rd1" sh -c "printf '%s\n' $PIN | '$HUREN' keygen --config '$cfg' --user rd1 --alg es256 --pin-stdin >/dev/null"

start_huren of "$cfg"
wait_port "$(http_port of)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
R1=$(login rd1); A1=$(login aud1); T1=$(login tech1); EX=$(login ext1); OF=$(login off1); AD=$(login admin)
check "six logins" test "${#R1}${#A1}${#T1}${#EX}${#OF}${#AD}" = 434343434343

req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
err() { jget "$1" 'd["error"]'; }
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
TODAY=$(date +%F)

# ---- exams: township1 a CT (2 instances), an MR and a US; the county a CR ----
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 2048 --seed 71 --patient-id OF1 \
  --charset utf8 --patient-name '李^四' --accession ACC71 >/dev/null
"$GEN" --out "$T/mr" --modality MR --bytes 2048 --seed 72 --patient-id OF2 >/dev/null
"$GEN" --out "$T/us" --modality US --bytes 2048 --seed 73 --patient-id OF3 --accession ACC73 >/dev/null
"$GEN" --out "$T/cr" --modality CR --bytes 2048 --seed 74 --patient-id OF4 >/dev/null
check "township1 sends a CT, an MR and a US" \
  storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/ct" "$T/mr" "$T/us" +sd
check "the county sends a CR" storescu -aet COUNTY -aec HUREN +sd 127.0.0.1 "$port" "$T/cr"
CT=$(uid "$T/ct"); MR=$(uid "$T/mr"); US=$(uid "$T/us"); CR=$(uid "$T/cr")
for s in "$CT" "$MR" "$US" "$CR"; do req "$T/c.json" "$AD" POST "/api/v1/exams/$s/complete" >/dev/null; done

# rd1 reads the CT (township1: remote diagnosis) and the CR (the county's own)
R=/api/v1/reports
sign() { # sign STUDY -> "final"
  req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$1/claim" >/dev/null
  req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$1\"}" >/dev/null
  local id; id=$(jget "$T/c.json" 'd["id"]')
  req "$T/s.json" "$R1" PUT "$R/$id" -d '{"rev": 0, "findings": "未见异常。", "impression": "正常。"}' >/dev/null
  req "$T/s.json" "$R1" POST "$R/$id/sign" -d "{\"pin\": \"$PIN\"}" >/dev/null
  jget "$T/s.json" 'd["status"]'
}
check_eq "rd1 signs the CT: final" final "$(sign "$CT")"
check_eq "rd1 signs the CR: final" final "$(sign "$CR")"
# the US (stat, 2 s target) goes overdue; a sweep flags it
for _ in $(seq 1 100); do
  [ "$(rcli of HGET "hr:wl:{$US}" overdue)" = 1 ] && break
  sleep 0.1
done
check_eq "the US is flagged overdue" 1 "$(rcli of HGET "hr:wl:{$US}" overdue)"

# ---- counters: one hash per local day ----
DAYKEY="hr:stat:$(date +%Y%m%d)"
check_eq "today's counters: 4 received, 3 from township1, 2 finals on imaging" "4 3 1 1" \
  "$(rcli of HGET "$DAYKEY" 'rx|t|') $(rcli of HGET "$DAYKEY" 'rx|h|township1') $(rcli of HGET "$DAYKEY" 'fh|imaging|township1') $(rcli of HGET "$DAYKEY" 'fh|imaging|county')"

# ---- volumes ----
V=/api/v1/stats/volumes
check_eq "office reads today's volumes" 200 "$(req "$T/v.json" "$OF" GET "$V?from=$TODAY&to=$TODAY")"
check_eq "... received 4: township1 3, county 1, imaging 4" "4 3 1 4" \
  "$(jget "$T/v.json" '" ".join(str(x) for x in [d["total"]["received"], d["total"]["received_by_hospital"]["township1"], d["total"]["received_by_hospital"]["county"], d["total"]["received_by_center"]["imaging"]])')"
check_eq "... finalized 2 on imaging, remote diagnosis 1 (township1's CT)" "2 1 1" \
  "$(jget "$T/v.json" '" ".join(str(x) for x in [d["days"][0]["finalized_by_center"]["imaging"], d["days"][0]["remote"], d["days"][0]["remote_by_hospital"]["township1"]])')"
check_eq "the default range is the last 30 days, today last" "30 $TODAY 4" \
  "$(req "$T/v.json" "$AD" GET "$V" >/dev/null; jget "$T/v.json" '" ".join(str(x) for x in [len(d["days"]), d["days"][-1]["day"], d["days"][-1]["received"]])')"
check_eq "yesterday alone: nothing" 0 \
  "$(req "$T/v.json" "$OF" GET "$V?from=$(date -d yesterday +%F)&to=$(date -d yesterday +%F)" >/dev/null; jget "$T/v.json" 'd["total"]["received"]')"

# bounded: a query reads one counter hash per day of its range, whatever
# the number of exams (Redis' own command statistics)
hgetall_calls() { rcli of INFO commandstats | sed -n 's/^cmdstat_hgetall:calls=\([0-9]*\),.*/\1/p'; }
rcli of CONFIG RESETSTAT >/dev/null
req "$T/v.json" "$OF" GET "$V?from=$(date -d '-99 days' +%F)&to=$TODAY" >/dev/null
check_eq "100 days of volumes: 100 HGETALL" 100 "$(hgetall_calls)"

# CSV: BOM, header, one row per day
code=$(curl -s -D "$T/h.txt" -o "$T/v.csv" -w '%{http_code}' -H "Authorization: Bearer $OF" "$U$V?from=$TODAY&to=$TODAY&format=csv")
check_eq "volumes as CSV: 200 text/csv" "200 text/csv; charset=utf-8" \
  "$code $(sed -n 's/^Content-Type: \(.*\)\r$/\1/p' "$T/h.txt")"
check_eq "... starts with the UTF-8 BOM" "efbbbf" "$(head -c 3 "$T/v.csv" | od -An -tx1 | tr -d ' \n')"
check "... an attachment named by the range" grep -q "filename=\"huren-volumes-$TODAY-$TODAY.csv\"" "$T/h.txt"
check_eq "... header and today's row: 4 received, 1 remote, 3 from Township 1" "day received remote_diagnosis|$TODAY 4 1 3" \
  "$($PY - "$T/v.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig")))
h = rows[0]
r = rows[1]
print(" ".join(h[:3]) + "|" + " ".join(r[:3]) + " " + r[h.index("received Township 1 (township1)")])
PY
)"
check "... the center's Chinese name in the header" grep -q "received 医学影像中心 (imaging)" "$T/v.csv"
check_eq "Accept: text/csv gives CSV too" "efbbbf" \
  "$(curl -s -H "Authorization: Bearer $OF" -H 'Accept: text/csv' "$U$V?from=$TODAY&to=$TODAY" | head -c 3 | od -An -tx1 | tr -d ' \n')"

# ---- turnaround ----
check_eq "office reads the turnaround" 200 "$(req "$T/t.json" "$OF" GET "/api/v1/stats/turnaround?from=$TODAY&to=$TODAY")"
check_eq "... imaging routine: 2 finals, both within the 1 h target" "2 2 1.0 3600000" \
  "$(jget "$T/t.json" '[" ".join(str(x) for x in [r["count"], r["within_target"], r["within_target_share"], r["target_ms"]]) for r in d["rows"] if r["center"] == "imaging" and r["priority"] == "routine"][0]')"
check_eq "... a mean and a median between 0 and a minute" "True True" \
  "$(jget "$T/t.json" '[" ".join(str(0 <= r[k] < 60000) for k in ("mean_ms", "median_ms")) for r in d["rows"] if r["center"] == "imaging" and r["priority"] == "routine"][0]')"
check_eq "... imaging stat: nothing final, 1 overdue flagged, 2 s target" "0 None 1 2000" \
  "$(jget "$T/t.json" '[" ".join(str(x) for x in [r["count"], r["mean_ms"], r["overdue_flagged"], r["target_ms"]]) for r in d["rows"] if r["center"] == "imaging" and r["priority"] == "stat"][0]')"
check_eq "... one row per center and priority" 6 "$(jget "$T/t.json" 'len(d["rows"])')"
check_eq "turnaround CSV: header and 6 rows" "center 7" \
  "$(curl -s -H "Authorization: Bearer $AD" "$U/api/v1/stats/turnaround?from=$TODAY&to=$TODAY&format=csv" | $PY -c 'import csv,sys,io; r=list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig"))); print(r[0][0], len(r))')"

# ---- overdue ----
O=/api/v1/stats/overdue
check_eq "office reads the overdue list: imaging 1 (the US, stat), ecg 0" "imaging 1 $US stat ACC73|ecg 0" \
  "$(req "$T/o.json" "$OF" GET "$O" >/dev/null; jget "$T/o.json" '"|".join(" ".join([c["center"], str(c["count"])] + [" ".join([i["study"], i["priority"], i["accession"]]) for i in c["items"]]) for c in d["centers"])')"
check_eq "... no patient name or id in it" "False False" \
  "$(jget "$T/o.json" '" ".join(str(k in d["centers"][0]["items"][0]) for k in ("patient_name", "patient"))')"
check_eq "... one center" "1 imaging" "$(req "$T/o.json" "$AD" GET "$O?center=imaging&limit=1" >/dev/null; jget "$T/o.json" 'str(len(d["centers"])) + " " + d["centers"][0]["center"]')"
check "overdue CSV names the US" sh -c "curl -s -H 'Authorization: Bearer $OF' '$U$O?format=csv' | grep -q '$US'"

# ---- recognition (reused), CSV ----
check_eq "office reads the recognition statistics" 200 "$(req "$T/r.json" "$OF" GET "/api/v1/stats/recognition?from=$TODAY&to=$TODAY")"
check_eq "... as CSV with a total row" "lookups total" \
  "$(curl -s -H "Authorization: Bearer $OF" "$U/api/v1/stats/recognition?from=$TODAY&to=$TODAY&format=csv" | $PY -c 'import csv,sys,io; r=list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig"))); print(r[0][3], r[1][0])')"

# ---- hostile: statistics ----
for who in T1 R1 A1 EX; do
  tok=${!who}
  for p in "$V" /api/v1/stats/turnaround "$O"; do
    check_eq "$who on $p: 403" 403 "$(req "$T/e.json" "$tok" GET "$p")"
  done
done
check_eq "the technician on the recognition statistics: 403" 403 "$(req "$T/e.json" "$T1" GET /api/v1/stats/recognition)"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET "$V")"
EXPIRED=$(login off1)
rcli of HSET "hr:tok:$(printf %s "$EXPIRED" | sha256sum | cut -d' ' -f1)" expires $(($(date +%s) - 1)) >/dev/null
check_eq "an expired token: 401" 401 "$(req "$T/e.json" "$EXPIRED" GET "$V")"
for q in 'from=2026-13-01' 'from=yesterday' "from=$TODAY&to=2020-01-01" 'from=2024-01-01&to=2025-06-01' \
  'format=xml' "from=$TODAY&to=$TODAY%00"; do
  check_eq "volumes?$q: 400" 400 "$(req "$T/e.json" "$OF" GET "$V?$q")"
done
check_eq "turnaround over 367 days: 400 JSON" "400 bad_request" \
  "$(req "$T/e.json" "$OF" GET "/api/v1/stats/turnaround?from=2024-01-01&to=2025-01-02") $(err "$T/e.json")"
for q in limit=0 limit=201 limit=x center=nope 'center=../x' format=pdf; do
  check_eq "overdue?$q: 400" 400 "$(req "$T/e.json" "$OF" GET "$O?$q")"
done

# ---- the office sees no patient data ----
check_eq "office: an exam is absent (404)" 404 "$(req "$T/e.json" "$OF" GET "/api/v1/exams/$CT")"
check_eq "office: QIDO finds nothing" 0 \
  "$(curl -s -H "Authorization: Bearer $OF" "$U/dicomweb/studies" | $PY -c 'import json,sys; t=sys.stdin.read(); print(len(json.loads(t)) if t.strip() else 0)')"
check_eq "office: the CT's metadata is absent" 404 "$(req "$T/e.json" "$OF" GET "/dicomweb/studies/$CT/metadata")"
check_eq "office: the reader's worklist is refused" 403 "$(req "$T/e.json" "$OF" GET /api/v1/worklists/imaging)"

# ---- audit search ----
A=/api/v1/audit
sleep 1.2 # records reach the file within a second
check_eq "an auditor searches the CT's reads" 200 "$(req "$T/a.json" "$A1" GET "$A?study=$CT")"
check_eq "... rd1's report actions on it, all on the CT, complete" "True True True" \
  "$(jget "$T/a.json" '" ".join(str(x) for x in [any(r["actor"] == "rd1" and r["action"] == "report-sign" for r in d["records"]), all(r.get("study") == sys.argv[3] for r in d["records"]), d["complete"]])' "$CT")"
check_eq "by user: the office's statistics reads are there" "True" \
  "$(req "$T/a.json" "$AD" GET "$A?user=off1&action=stats-volumes" >/dev/null; jget "$T/a.json" 'len(d["records"]) >= 3 and all(r["actor"] == "off1" and r["action"] == "stats-volumes" for r in d["records"])')"
check_eq "by user and study: nothing of tech1 on the CR" 0 \
  "$(req "$T/a.json" "$AD" GET "$A?user=tech1&study=$CR" >/dev/null; jget "$T/a.json" 'len(d["records"])')"
req "$T/a1.json" "$AD" GET "$A?user=rd1&limit=2" >/dev/null
N1=$(jget "$T/a1.json" 'd["next"]')
check_eq "paging: 2 records and a cursor" "2 False" "$(jget "$T/a1.json" 'str(len(d["records"])) + " " + str(d["complete"])')"
check_eq "... the next page goes on after them" True \
  "$(req "$T/a2.json" "$AD" GET "$A?user=rd1&limit=2&cursor=$N1" >/dev/null; $PY -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); print(b["records"][0]["seq"] > a["records"][-1]["seq"])' "$T/a1.json" "$T/a2.json")"
check_eq "audit as CSV" "time actor" \
  "$(curl -s -H "Authorization: Bearer $A1" "$U$A?user=rd1&format=csv" | $PY -c 'import csv,sys,io; r=list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig"))); print(r[0][0], r[0][1])')"
check_eq "the search itself is audited" True \
  "$(sleep 1.2; req "$T/a.json" "$AD" GET "$A?user=aud1&action=audit-search" >/dev/null; jget "$T/a.json" 'len(d["records"]) >= 1')"
for who in OF T1 R1 EX; do
  check_eq "$who searches the audit: 403" 403 "$(req "$T/e.json" "${!who}" GET "$A?study=$CT")"
done
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET "$A")"
for q in limit=0 limit=1001 'from=2026-02-30' "from=2020-01-01&to=$TODAY" 'cursor=zz' "cursor=20200101:0" \
  'user=%01x' "study=$(head -c 70 /dev/zero | tr '\0' 1)" format=xml; do
  check_eq "audit?$q: 400" 400 "$(req "$T/e.json" "$AD" GET "$A?$q")"
done

# ---- users ----
UU=/api/v1/users
check_eq "admin lists the users: 6, no secrets" "6 False False" \
  "$(req "$T/u.json" "$AD" GET $UU >/dev/null; jget "$T/u.json" '" ".join(str(x) for x in [len(d["users"]), any("hash" in u for u in d["users"]), any("salt" in u for u in d["users"])])')"
for who in OF T1 R1 A1 EX; do
  check_eq "$who lists users: 403" 403 "$(req "$T/e.json" "${!who}" GET $UU)"
  check_eq "$who adds a user: 403" 403 \
    "$(req "$T/e.json" "${!who}" POST $UU -d '{"name": "x1", "role": "admin", "hospital": "county", "password": "xxxxxxxxxxxx"}')"
  check_eq "$who disables rd1: 403" 403 "$(req "$T/e.json" "${!who}" POST "$UU/rd1/disable")"
  check_eq "$who resets rd1's password: 403" 403 "$(req "$T/e.json" "${!who}" POST "$UU/rd1/password" -d '{"password": "yyyyyyyyyyyy"}')"
done
check_eq "admin adds an office user: 201" 201 \
  "$(req "$T/e.json" "$AD" POST $UU -d '{"name": "off2", "display_name": "医共体办公室", "role": "office", "hospital": "county", "password": "off2-password-1"}')"
check_eq "... who logs in" 43 "$(T2=$(login off2); echo ${#T2})"
check_eq "the same name again: 409" 409 \
  "$(req "$T/e.json" "$AD" POST $UU -d '{"name": "off2", "role": "office", "hospital": "county", "password": "off2-password-1"}')"
bad() { # bad BODY REASON-PREFIX
  check_eq "add $1: 400 $2" "400 $2" \
    "$(req "$T/e.json" "$AD" POST $UU -d "$1") $(jget "$T/e.json" 'd["detail"].split(":")[0]')"
}
bad '{"name": "x2", "role": "dicom-peer", "hospital": "county", "password": "xxxxxxxxxxxx"}' role
bad '{"name": "x2", "role": "root", "hospital": "county", "password": "xxxxxxxxxxxx"}' role
bad '{"name": "X 2", "role": "office", "hospital": "county", "password": "xxxxxxxxxxxx"}' name
bad '{"name": "x2", "role": "office", "hospital": "mars", "password": "xxxxxxxxxxxx"}' hospital
bad '{"name": "x2", "role": "reader", "hospital": "county", "password": "xxxxxxxxxxxx"}' center
bad '{"name": "x2", "role": "reader", "hospital": "township1", "center": "imaging", "password": "xxxxxxxxxxxx"}' center
bad '{"name": "x2", "role": "office", "hospital": "county", "password": "short"}' password
check_eq "garbage body: 400" 400 "$(req "$T/e.json" "$AD" POST $UU -d '{"name": ')"
check_eq "an array body: 400" 400 "$(req "$T/e.json" "$AD" POST $UU -d '[]')"
check_eq "admin disables off2" 200 "$(req "$T/e.json" "$AD" POST "$UU/off2/disable")"
check_eq "... who cannot log in" 401 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "off2", "password": "off2-password-1"}')"
check_eq "... listed disabled" True "$(req "$T/u.json" "$AD" GET $UU >/dev/null; jget "$T/u.json" '[u["disabled"] for u in d["users"] if u["name"] == "off2"][0]')"
check_eq "admin enables off2" 200 "$(req "$T/e.json" "$AD" POST "$UU/off2/enable")"
check_eq "admin resets off2's password" 200 "$(req "$T/e.json" "$AD" POST "$UU/off2/password" -d '{"password": "off2-password-2"}')"
check_eq "... the old one fails, the new one works" "401 200" \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "off2", "password": "off2-password-1"}') $(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "off2", "password": "off2-password-2"}')"
check_eq "a short new password: 400" 400 "$(req "$T/e.json" "$AD" POST "$UU/off2/password" -d '{"password": "x"}')"
check_eq "an unknown user: 404" 404 "$(req "$T/e.json" "$AD" POST "$UU/nobody/disable")"
check_eq "a bad name: 400" 400 "$(req "$T/e.json" "$AD" POST "$UU/BAD%20NAME/enable")"
check_eq "an admin cannot disable themselves: 400" 400 "$(req "$T/e.json" "$AD" POST "$UU/admin/disable")"
check_eq "user actions are audited" True \
  "$(sleep 1.2; req "$T/a.json" "$AD" GET "$A?user=admin&action=user-password" >/dev/null; jget "$T/a.json" 'any(r["outcome"] == "success" and "off2" in r["detail"] for r in d["records"])')"

# ---- configuration ----
check_eq "office reads the hospitals (no addresses)" "200 3 county False" \
  "$(req "$T/h.json" "$OF" GET /api/v1/config/hospitals) $(jget "$T/h.json" '" ".join(str(x) for x in [len(d["hospitals"]), d["hospitals"][0]["level"], any("addresses" in h for h in d["hospitals"])])')"
check_eq "... and the centers with their targets" "200 imaging 医学影像中心 2000" \
  "$(req "$T/h.json" "$OF" GET /api/v1/config/centers) $(jget "$T/h.json" '" ".join(str(x) for x in [d["centers"][0]["id"], d["centers"][0]["name"], d["centers"][0]["turnaround_ms"]["stat"]])')"
for who in T1 R1 EX; do
  check_eq "$who reads the hospitals: 403" 403 "$(req "$T/e.json" "${!who}" GET /api/v1/config/hospitals)"
  check_eq "$who reads the centers: 403" 403 "$(req "$T/e.json" "${!who}" GET /api/v1/config/centers)"
done
check_eq "no token: 401" 401 "$(req "$T/e.json" "" GET /api/v1/config/centers)"

check "graceful stop" stop_huren "$HUREN_PID"
finish
