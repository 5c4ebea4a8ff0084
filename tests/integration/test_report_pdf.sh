#!/usr/bin/env bash
# GET /api/v1/reports/{id}/versions/{n}/pdf (decision 0025) with a real
# huren, storescu, curl, poppler and zbar: a CT from township1 is read, signed
# and co-signed; the reader, the source township and the admin get the PDF
# (Chinese text, one page, the QR code decodes to the verification URL with
# the JWS digest), the second read comes from the on-disk cache; another
# township, an external user, another center, an expired or missing token,
# unknown reports and versions get 404/401; renders beyond two at once get
# 503 with Retry-After; every read is audited.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810

port=$(free_port)
cfg=$(write_config pdf "$port")
U="http://127.0.0.1:$(http_port pdf)"
DATA=$T/pdf/data
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" aud1 'aud1-password-1' auditor county imaging
add_user "$cfg" recg 'recg-password-1' reader county ecg
add_user "$cfg" tech1 'tech1-password-1' technician township1
add_user "$cfg" tech2 'tech2-password-1' technician township2
add_user "$cfg" ext1 'ext1-password-1' external township2
add_user "$cfg" admin 'admin-password-1' admin county
mkkey() { signing_key "$DATA" "$1" "$PIN"; } # user: a P-256 key under the PIN
mkkey rd1
mkkey aud1

start_huren pdf "$cfg"
wait_port "$(http_port pdf)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
R1=$(login rd1); A1=$(login aud1); RE=$(login recg); T1=$(login tech1); T2=$(login tech2)
EX=$(login ext1); AD=$(login admin)
req() { # OUT TOKEN URL [curl args] -> status
  local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
text() { pdftotext -enc UTF-8 "$1" - | tr -d ' \n\f'; }

# ---- a CT read, signed and co-signed ----
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 2048 --seed 93 --patient-id PDF1 --charset utf8 \
  --patient-name '赵^六' --accession ACC93 >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
S=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
R=/api/v1/reports
req "$T/c.json" "$T1" "/api/v1/exams/$S/complete" -X POST >/dev/null
check_eq "rd1 claims" 200 "$(req "$T/c.json" "$R1" "/api/v1/worklists/imaging/items/$S/claim" -X POST)"
check_eq "rd1 creates the draft" 201 "$(req "$T/c.json" "$R1" $R -X POST -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
FIND='肝脏形态大小正常，实质密度均匀。'
IMPR='上腹部CT平扫未见明显异常。'
body=$($PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": sys.argv[1], "impression": sys.argv[2], "critical": True}))' "$FIND" "$IMPR")
check_eq "rd1 saves" 200 "$(req "$T/s.json" "$R1" "$R/$ID" -X PUT -d "$body")"
check_eq "rd1 signs: version 1" "200 1" \
  "$(req "$T/s.json" "$R1" "$R/$ID/sign" -X POST -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["version"]')"
check_eq "aud1 co-signs: version 2 final" "200 2 final" \
  "$(req "$T/s.json" "$A1" "$R/$ID/cosign" -X POST -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"

# ---- the PDF ----
P2=$R/$ID/versions/2/pdf
curl -s -D "$T/p.hdr" -o "$T/v2.pdf" -H "Authorization: Bearer $R1" "$U$P2"
check "rd1 gets version 2: 200 application/pdf" grep -qi '^content-type: application/pdf' "$T/p.hdr"
check "... rendered now (cache miss)" grep -qi '^x-huren-cache: miss' "$T/p.hdr"
check_eq "... one page" 1 "$(pdfinfo "$T/v2.pdf" | sed -n 's/^Pages: *//p')"
TXT=$(text "$T/v2.pdf")
for want in "赵六" "$FIND" "$IMPR" "正式报告" "第2版" "危急值" "报告医师：rd1" "审核医师：aud1" "患者ID：PDF1" "检查号：ACC93"; do
  check "... shows $want" grep -qF "$want" <<<"$TXT"
done
curl -s -o "$T/v2.jws" -H "Authorization: Bearer $R1" "$U$R/$ID/versions/2/jws"
DIG=$(sha256sum "$T/v2.jws" | cut -d' ' -f1)
check "... prints the JWS digest" grep -qF "$DIG" <<<"$TXT"
pdftoppm -r 150 -png -singlefile "$T/v2.pdf" "$T/v2"
check_eq "... its QR code is the verification URL" "$U/verify?report=$ID&v=2&d=${DIG:0:16}" \
  "$(zbarimg --nodbus --quiet --raw "$T/v2.png")"
check "... cached under data/rendered/<digest>-<key>.pdf" \
  bash -c "ls '$DATA/rendered/' | grep -q '^$DIG-[0-9a-f]\{16\}\.pdf\$'"
curl -s -D "$T/p2.hdr" -o "$T/v2b.pdf" -H "Authorization: Bearer $T1" "$U$P2"
check "tech1 (the source township) gets it from the cache" grep -qi '^x-huren-cache: hit' "$T/p2.hdr"
check "... the same bytes" cmp -s "$T/v2.pdf" "$T/v2b.pdf"
check_eq "the admin: 200" 200 "$(req "$T/e.pdf" "$AD" "$P2")"
check_eq "version 1 (preliminary): 200, 初步报告" "200 1" \
  "$(req "$T/v1.pdf" "$R1" "$R/$ID/versions/1/pdf") $(text "$T/v1.pdf" | grep -c 初步报告)"

# ---- hostile ----
check_eq "tech2 (another township): 404" 404 "$(req "$T/e.json" "$T2" "$P2")"
check_eq "the external user: 404" 404 "$(req "$T/e.json" "$EX" "$P2")"
check_eq "the ECG reader (another center): 404" 404 "$(req "$T/e.json" "$RE" "$P2")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" "$P2")"
EXPIRED=$(login rd1)
rcli pdf HSET "hr:tok:$(printf %s "$EXPIRED" | sha256sum | cut -d' ' -f1)" expires $(($(date +%s) - 1)) >/dev/null
check_eq "an expired token: 401" 401 "$(req "$T/e.json" "$EXPIRED" "$P2")"
check_eq "version 3 (none yet): 404" 404 "$(req "$T/e.json" "$R1" "$R/$ID/versions/3/pdf")"
check_eq "version 0: 404" 404 "$(req "$T/e.json" "$R1" "$R/$ID/versions/0/pdf")"
check_eq "version x: 404" 404 "$(req "$T/e.json" "$R1" "$R/$ID/versions/x/pdf")"
check_eq "version 99999999999999999999: 404" 404 "$(req "$T/e.json" "$R1" "$R/$ID/versions/99999999999999999999/pdf")"
check_eq "an unknown report: 404" 404 "$(req "$T/e.json" "$R1" "$R/r9-$S/versions/1/pdf")"
check_eq "a malformed id: 404" 404 "$(req "$T/e.json" "$R1" "$R/..%2f..%2fetc/versions/1/pdf")"
check_eq "a POST: 405 or 404" 1 "$(s=$(req "$T/e.json" "$R1" "$P2" -X POST); [ "$s" = 405 ] || [ "$s" = 404 ]; echo $((1 - $?)))"
check_eq "a Host full of quotes renders harmlessly" 200 "$(req "$T/h.pdf" "$R1" "$P2" -H 'Host: "><script>x')"

# ---- at most two renders at once: the rest 503 with Retry-After ----
saw503=0
for round in 1 2 3; do
  pids=()
  for i in 1 2 3 4 5 6 7 8; do # each Host is another verification URL: a render each
    curl -s -m 60 -D "$T/b$i.hdr" -o "$T/b$i.out" -w '%{http_code}\n' -H "Authorization: Bearer $R1" \
      -H "Host: busy-$round-$i.example" "$U$P2" >"$T/b$i.code" &
    pids+=($!)
  done
  wait "${pids[@]}" # the curls only: huren is a child of this shell too
  bad=0
  for i in 1 2 3 4 5 6 7 8; do
    c=$(cat "$T/b$i.code")
    if [ "$c" = 503 ]; then
      saw503=1
      grep -qi '^retry-after: 2' "$T/b$i.hdr" || bad=1
    elif [ "$c" != 200 ]; then
      bad=1
    fi
  done
  check_eq "round $round: every answer 200 or 503 with Retry-After" 0 "$bad"
  [ "$saw503" = 1 ] && break
done
check_eq "some renders were refused while two ran" 1 "$saw503"

# ---- audited ----
check "the reads are in the audit log" bash -c "grep -h '\"report-pdf\"' '$DATA'/audit/* | grep -q '\"outcome\":\"success\"'"
check "... and the refusals" bash -c "grep -h '\"report-pdf\"' '$DATA'/audit/* | grep -q '\"outcome\":\"denied\"'"

finish
