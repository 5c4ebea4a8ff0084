#!/usr/bin/env bash
# DICOMweb end to end with curl: login and tokens, QIDO matching/paging and
# scope per role, WADO-RS multipart byte-identical to what storescu sent,
# metadata and bulk data, frames of a multi-frame object, STOW-RS (plain and
# chunked, failures), WADO-URI, errors as JSON, CORS, /metrics, HTTP/1.1 only
# (decision 0018: HTTP/2 is refused cleanly, h2c upgrade falls back), TLS,
# audit entries.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DW="$PY $SRC/tests/integration/dicomweb.py"

port=$(free_port)
cfg=$(write_config web "$port" "" "" \
  '"max_body_bytes": 4194304, "cors_origins": ["http://viewer.example"]')
hp=$(http_port web)
U="http://127.0.0.1:$hp"

adduser() { # name password role hospital [center]
  printf '%s\n' "$2" | "$HUREN" user add "$1" --role "$3" --hospital "$4" ${5:+--center "$5"} \
    --config "$cfg" >/dev/null
}
adduser tech1 'tech1-password' technician township1
adduser tech2 'tech2-password' technician township2
adduser reader1 'reader1-password' reader county imaging
adduser ext1 'external-password' external township2
adduser admin 'admin-password-1' admin county
start_huren web "$cfg"
wait_port "$hp" 30

login() { # user password -> token
  curl -s -X POST "$U/api/v1/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"$1\", \"password\": \"$2\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
T1=$(login tech1 'tech1-password')
T2=$(login tech2 'tech2-password')
TR=$(login reader1 'reader1-password')
TX=$(login ext1 'external-password')
TA=$(login admin 'admin-password-1')
check "five logins issued 43-character tokens" test "${#T1}${#T2}${#TR}${#TX}${#TA}" = 4343434343

# status code and body of a request: req OUT TOKEN URL [curl args]
req() {
  local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$url"
}

# --- authentication and errors
check_eq "healthz needs no token" 200 "$(req "$T/h.json" "" "$U/healthz")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" "$U/dicomweb/studies")"
check_eq "401 body is JSON with error" unauthorized "$($DW json-get "$T/e.json" error)"
check_eq "bad token: 401" 401 "$(req "$T/e.json" "not-a-token" "$U/dicomweb/studies")"
check_eq "wrong password: 401" 401 "$(curl -s -o "$T/e.json" -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "tech1", "password": "wrong-password"}')"
check_eq "unknown route: 404 JSON" not_found "$(req "$T/e.json" "$T1" "$U/nothing/here" >/dev/null; $DW json-get "$T/e.json" error)"
check "responses carry a request id" bash -c "curl -s -D - -o /dev/null '$U/healthz' | grep -qi '^x-request-id: [0-9a-f]\{8\}-'"

# --- data: two GB18030 studies and a multi-frame US from TOWNSHIP1 by C-STORE
"$GEN" --out "$T/ct" --studies 2 --series 2 --instances 3 --bytes 16384 --charset gb18030 \
  --patient-id P100 --seed 31 --study-date 20240315 >/dev/null
"$GEN" --out "$T/us" --modality US --frames 6 --bytes 30000 --patient-id P200 --seed 32 \
  --study-date 20231120 >/dev/null
storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/us"
uid() { dcmdump +P "$1" "$2" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1; }
usf=$(ls "$T/us"/*)
US_ST=$(uid 0020,000D "$usf"); US_SE=$(uid 0020,000E "$usf"); US_I=$(uid 0008,0018 "$usf")
ct1=$(ls "$T/ct"/s1_* | head -1)
CT_ST=$(uid 0020,000D "$ct1")

# --- STOW-RS: township2's technician stores a study (plain), then chunked
"$GEN" --out "$T/mr" --modality MR --studies 1 --series 1 --instances 3 --bytes 8192 --seed 33 \
  --patient-id P300 >/dev/null
$DW stow-body "$T/stow.body" BNDxyz "$T"/mr/*.dcm
CT='Content-Type: multipart/related; type="application/dicom"; boundary=BNDxyz'
check_eq "STOW: 200" 200 "$(req "$T/stow.json" "$T2" "$U/dicomweb/studies" -H "$CT" --data-binary @"$T/stow.body")"
check_eq "STOW: 3 referenced, none failed" "3 0 0000" "$($DW stow-counts "$T/stow.json")"
MR_ST=$(uid 0020,000D "$(ls "$T"/mr/*.dcm | head -1)")
check_eq "STOW study indexed from township2" township2 "$(rcli web HGET "hr:{$MR_ST}:st" hospital)"
check_eq "STOW again, chunked: 200 (identical copies)" 200 \
  "$(req "$T/stow2.json" "$T2" "$U/dicomweb/studies/$MR_ST" -H "$CT" -H 'Transfer-Encoding: chunked' --data-binary @"$T/stow.body")"
check_eq "STOW to another study UID: 409, all refused A900" "409|0 3 A900" \
  "$(req "$T/stow3.json" "$T2" "$U/dicomweb/studies/1.2.3.4" -H "$CT" --data-binary @"$T/stow.body")|$($DW stow-counts "$T/stow3.json")"
printf -- '--BNDxyz\r\nContent-Type: application/dicom\r\n\r\n%0300d\r\n--BNDxyz--\r\n' 0 > "$T/bad.body"
check_eq "STOW of a non-DICOM part: 409 with C000" "409|0 1 C000" \
  "$(req "$T/stow4.json" "$T2" "$U/dicomweb/studies" -H "$CT" --data-binary @"$T/bad.body")|$($DW stow-counts "$T/stow4.json")"
printf -- '--BNDxyz--\r\n' > "$T/empty.body"
check_eq "STOW with no parts: 400" 400 "$(req "$T/e.json" "$T2" "$U/dicomweb/studies" -H "$CT" --data-binary @"$T/empty.body")"
check_eq "STOW with a wrong content type: 415" 415 "$(req "$T/e.json" "$T2" "$U/dicomweb/studies" -H 'Content-Type: application/json' -d '{}')"
head -c 5000000 /dev/zero > "$T/big.body"
check_eq "STOW over http.max_body_bytes: 413" 413 "$(req "$T/e.json" "$T2" "$U/dicomweb/studies" -H "$CT" --data-binary @"$T/big.body")"
check_eq "a reader may not STOW: 403" 403 "$(req "$T/e.json" "$TR" "$U/dicomweb/studies" -H "$CT" --data-binary @"$T/stow.body")"
check_eq "objects on disk: 12 + 1 + 3" 16 "$(count_objects web)"

# --- QIDO and scope
q() { req "$T/q.json" "$1" "$U/dicomweb/$2" >/dev/null; $DW count "$T/q.json"; }
check_eq "tech1 sees township1's 3 studies" 3 "$(q "$T1" studies)"
check_eq "tech2 sees township2's study only" 1 "$(q "$T2" studies)"
check_eq "county reader sees all 4" 4 "$(q "$TR" studies)"
check_eq "external user sees nothing" 0 "$(q "$TX" studies)"
check_eq "admin sees all 4" 4 "$(q "$TA" studies)"
check_eq "GB18030 name comes back in UTF-8" "$(printf '张三^三\n王^小明')" \
  "$(req "$T/q.json" "$T1" "$U/dicomweb/studies?PatientID=P100" >/dev/null; $DW values "$T/q.json" 00100010)"
check_eq "wildcard on the Chinese name" 1 "$(q "$T1" "studies?PatientName=%E5%BC%A0*")"
check_eq "date range" 2 "$(q "$T1" "studies?StudyDate=20240101-20241231")"
check_eq "open date range" 1 "$(q "$T1" "studies?StudyDate=-20231231")"
check_eq "UID list" 2 "$(q "$TR" "studies?StudyInstanceUID=$CT_ST%5C$US_ST")"
check_eq "limit" 2 "$(q "$TR" "studies?limit=2")"
check_eq "offset pages to the rest" 2 "$(q "$TR" "studies?limit=2&offset=2")"
# pages of one: each resumes from the cursor the previous page left in Redis
# (hr:qc:*, decision 0014) and together they are the one page of four
all=$(req "$T/q.json" "$TR" "$U/dicomweb/studies?limit=4" >/dev/null; $DW values "$T/q.json" 0020000D)
paged=$(for o in 0 1 2 3; do
  req "$T/q$o.json" "$TR" "$U/dicomweb/studies?limit=1&offset=$o" >/dev/null; $DW values "$T/q$o.json" 0020000D
done | sort)
check_eq "pages of one equal one page of four" "$all" "$paged"
check "each truncated page kept a cursor for the next offset" \
  test "$(rcli_raw web KEYS 'hr:qc:*' | grep -c .)" -ge 3
check "a truncated page says so in a Warning" bash -c "curl -s -D - -o /dev/null -H 'Authorization: Bearer $TR' '$U/dicomweb/studies?limit=1' | grep -qi '^warning: 299'"
check "fuzzymatching=true: Warning, literal matching" bash -c "curl -s -D - -o /dev/null -H 'Authorization: Bearer $TR' '$U/dicomweb/studies?fuzzymatching=true' | grep -qi '^warning: 299.*fuzzy'"
check "an unsupported key and a page limit: two Warnings" bash -c "test \$(curl -s -D - -o /dev/null -H 'Authorization: Bearer $TR' '$U/dicomweb/studies?limit=1&NumberOfPatientRelatedStudies=1' | grep -ci '^warning: 299') = 2"
check_eq "unknown attribute: 400" 400 "$(req "$T/e.json" "$TR" "$U/dicomweb/studies?NoSuchKeyword=1")"
check_eq "bad limit: 400" 400 "$(req "$T/e.json" "$TR" "$U/dicomweb/studies?limit=0")"
check_eq "series of a study" 2 "$(q "$T1" "studies/$CT_ST/series")"
check_eq "instances of a study" 6 "$(q "$T1" "studies/$CT_ST/instances")"
check_eq "relational /series by modality" 1 "$(q "$TR" "series?Modality=US")"
check_eq "relational /instances of a patient" 6 "$(q "$TR" "instances?PatientID=P100&StudyDate=20240315&SeriesNumber=1")"
check_eq "other hospital's study via path: empty" 0 "$(q "$T2" "studies/$CT_ST/series")"
check "includefield adds an attribute" bash -c "curl -s -H 'Authorization: Bearer $T1' '$U/dicomweb/studies?includefield=InstitutionName' | grep -q '\"00080080\"'"
check "QIDO answers application/dicom+json" bash -c "curl -s -D - -o /dev/null -H 'Authorization: Bearer $T1' '$U/dicomweb/studies' | grep -qi '^content-type: application/dicom+json'"

# --- WADO-RS
ctype() { curl -s -D - -o "$1" -H "Authorization: Bearer $2" ${3:+-H "$3"} "$4" | sed -n 's/^[Cc]ontent-[Tt]ype: *//p' | tr -d '\r'; }
ct=$(ctype "$T/study.mp" "$T1" "" "$U/dicomweb/studies/$CT_ST")
check "study retrieve is multipart/related application/dicom" grep -q 'multipart/related; type="application/dicom"' <<<"$ct"
want=$(for f in "$T"/ct/*; do if [ "$(uid 0020,000D "$f")" = "$CT_ST" ]; then $DW file-sha "$f"; fi; done | sort)
got=$($DW part-shas "$T/study.mp" "$ct" | sort)
check_eq "6 parts, each byte-identical (data set) to what storescu sent" "$want" "$got"
check_eq "6 parts" 6 "$(wc -l <<<"$got")"
ct=$(ctype "$T/one.dcm" "$T1" "Accept: application/dicom" "$U/dicomweb/studies/$US_ST/series/$US_SE/instances/$US_I")
check_eq "single instance as application/dicom, identical data set" "$($DW file-sha "$usf")" "$($DW file-sha "$T/one.dcm")"
check_eq "Accept image/png: 406" 406 "$(req "$T/e.json" "$T1" "$U/dicomweb/studies/$CT_ST" -H 'Accept: image/png')"
check_eq "a specific other transfer syntax: 406" 406 "$(req "$T/e.json" "$T1" "$U/dicomweb/studies/$CT_ST" -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50')"
check_eq "unknown study: 404" 404 "$(req "$T/e.json" "$T1" "$U/dicomweb/studies/1.2.826.0.1.9999")"
check_eq "bad UID: 400" 400 "$(req "$T/e.json" "$T1" "$U/dicomweb/studies/1.2.abc")"
check_eq "other hospital's study: 404 like an absent one" 404 "$(req "$T/e.json" "$T2" "$U/dicomweb/studies/$CT_ST")"
check_eq "external user: 404" 404 "$(req "$T/e.json" "$TX" "$U/dicomweb/studies/$CT_ST/metadata")"

# metadata and bulk data
check_eq "study metadata: 6 instances" 6 "$(req "$T/meta.json" "$T1" "$U/dicomweb/studies/$CT_ST/metadata" >/dev/null; $DW count "$T/meta.json")"
check_eq "instance metadata: 1" 1 "$(req "$T/meta1.json" "$T1" "$U/dicomweb/studies/$US_ST/series/$US_SE/instances/$US_I/metadata" >/dev/null; $DW count "$T/meta1.json")"
bulk=$($DW bulk-uri "$T/meta1.json")
check "Pixel Data is a BulkDataURI" grep -q "/instances/$US_I/bulk/" <<<"$bulk"
ct=$(ctype "$T/bulk.mp" "$T1" "" "$U$bulk")
pixlen=$($PY -c 'import pydicom,sys; print(len(pydicom.dcmread(sys.argv[1]).PixelData))' "$usf")
check_eq "bulk data has the Pixel Data's length" "$pixlen" "$($DW part-len "$T/bulk.mp" "$ct")"

# frames of the multi-frame object
FR="$U/dicomweb/studies/$US_ST/series/$US_SE/instances/$US_I/frames"
ct=$(ctype "$T/fr.mp" "$T1" 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*' "$FR/2,5")
check_eq "frames 2 and 5 equal pydicom's" ok "$($DW frame-check "$T/fr.mp" "$ct" "$usf" 2 5)"
check_eq "frame 7 of 6: 404" 404 "$(req "$T/e.json" "$T1" "$FR/7")"
check_eq "frame list 0: 400" 400 "$(req "$T/e.json" "$T1" "$FR/0")"

# WADO-URI
check_eq "WADO-URI application/dicom: 200" 200 "$(req "$T/uri.dcm" "$T1" "$U/wado?requestType=WADO&studyUID=$US_ST&seriesUID=$US_SE&objectUID=$US_I&contentType=application/dicom")"
check_eq "WADO-URI file is the object" "$($DW file-sha "$usf")" "$($DW file-sha "$T/uri.dcm")"
check_eq "WADO-URI default image/jpeg: 406" 406 "$(req "$T/e.json" "$T1" "$U/wado?requestType=WADO&studyUID=$US_ST&seriesUID=$US_SE&objectUID=$US_I")"

# --- CORS, metrics, HTTP/1.1 only (decision 0018)
check "preflight from an allowed origin" bash -c "curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://viewer.example' -H 'Access-Control-Request-Method: GET' '$U/dicomweb/studies' | grep -qi '^access-control-allow-origin: http://viewer.example'"
check "no CORS header for another origin" bash -c "! curl -s -D - -o /dev/null -H 'Origin: http://evil.example' '$U/healthz' | grep -qi '^access-control-allow-origin'"
check_eq "metrics need an admin/auditor: 403 for a technician" 403 "$(req "$T/e.json" "$T1" "$U/metrics")"
req "$T/metrics.txt" "$TA" "$U/metrics" >/dev/null
check "metrics: request counts" grep -q '^huren_http_requests_total{route="qido",code="2xx"} [1-9]' "$T/metrics.txt"
check "metrics: latency histogram" grep -q '^huren_http_request_duration_seconds_bucket{route="wado",le="+Inf"} [1-9]' "$T/metrics.txt"
check "metrics: ingest and associations" bash -c "grep -q '^huren_ingest_stored_total 16' '$T/metrics.txt' && grep -q '^huren_dicom_associations_total [1-9]' '$T/metrics.txt'"
check "HTTP/2 with prior knowledge is refused (no HTTP/2 for now, decision 0018)" \
  bash -c "! curl -s -m 10 --http2-prior-knowledge -o /dev/null '$U/healthz'"
check "... and the hub keeps serving" bash -c "curl -s -o /dev/null -w '%{http_version} %{http_code}' '$U/healthz' | grep -qx '1.1 200'"
check "an h2c upgrade request (curl --http2) is answered over HTTP/1.1" \
  bash -c "curl -s --http2 -o /dev/null -w '%{http_version} %{http_code}' '$U/healthz' | grep -qx '1.1 200'"

# --- logout revokes; audit
check_eq "logout: 204" 204 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $T1" "$U/api/v1/logout")"
check_eq "the token is dead" 401 "$(req "$T/e.json" "$T1" "$U/dicomweb/studies")"
A=$(cat "$T"/web/data/audit/*.jsonl)
check "audit: QIDO by tech1" grep -q '"actor":"tech1","role":"technician","hospital":"township1".*"action":"qido"' <<<"$A"
check "audit: WADO with patient and study" grep -q "\"action\":\"wado\",\"patient\":\"TOWNSHIP1|P100\",\"study\":\"$CT_ST\".*\"outcome\":\"success\"" <<<"$A"
check "audit: denied cross-hospital retrieve" grep -q "\"actor\":\"tech2\".*\"action\":\"wado\".*\"study\":\"$CT_ST\".*\"outcome\":\"denied\"" <<<"$A"
check "audit: refused token" grep -q '"outcome":"denied".*"request_id"' <<<"$A"
check "audit log verifies" "$HUREN" audit verify --config "$cfg"

# --- TLS: HTTPS (GnuTLS), HTTP/1.1 via ALPN
stop_huren "$HUREN_PID"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
$PY - "$cfg" "$T/cert.pem" "$T/key.pem" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["http"]["tls_cert"], c["http"]["tls_key"] = sys.argv[2], sys.argv[3]
json.dump(c, open(sys.argv[1], "w"))
PY
start_huren web "$cfg"
wait_port "$hp" 30
check "HTTPS answers with HTTP/1.1 (ALPN; no HTTP/2 for now)" bash -c "curl -sk -o /dev/null -w '%{http_version} %{http_code}' 'https://127.0.0.1:$hp/healthz' | grep -qx '1.1 200'"
check "TLS 1.1 is refused" bash -c "! curl -sk -m 10 --tlsv1.1 --tls-max 1.1 -o /dev/null 'https://127.0.0.1:$hp/healthz'"
TT=$(curl -sk -X POST "https://127.0.0.1:$hp/api/v1/login" -d '{"user": "reader1", "password": "reader1-password"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
check_eq "QIDO over HTTPS" 4 "$(curl -sk -H "Authorization: Bearer $TT" "https://127.0.0.1:$hp/dicomweb/studies" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check "plain HTTP is refused on the TLS port" bash -c "! curl -s -m 5 -o /dev/null 'http://127.0.0.1:$hp/healthz'"
check "graceful stop" stop_huren "$HUREN_PID"
finish
