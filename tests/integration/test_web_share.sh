#!/usr/bin/env bash
# The patient's share page in headless Chromium at a phone viewport
# (decision 0032; tests/js/web/share.mjs): a CT of township1 is read and
# signed (final), its technician creates a link through the API, the page at
# /s/<token> shows the report and real images without any login, a tap
# opens an image full size, the PDF link answers a PDF, a revoked link shows
# the error state; then the technician, sent to login first, creates a link
# with its QR code in the application (#/share/<study>) and revokes it. Screenshots: $HUREN_BUILD_DIR/screenshots/share/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810
[ -d "$SRC/tests/js/node_modules/puppeteer-core" ] || npm ci --prefix "$SRC/tests/js" >/dev/null
[ -d "$SRC/web/node_modules/preact" ] || npm ci --prefix "$SRC/web" >/dev/null
export HUREN_BUILD_DIR=$BUILD

port=$(free_port)
cfg=$(write_config wsh "$port")
U="http://127.0.0.1:$(http_port wsh)"
DATA=$T/wsh/data
add_user "$cfg" rd1 'rd1-password-1' reader county imaging
add_user "$cfg" aud1 'aud1-password-1' auditor county imaging
add_user "$cfg" tech1 'tech1-password-1' technician township1
for u in rd1 aud1; do
  d=$DATA/keys/$u
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/plain.pem" \
    -out "$d/chain.pem" -days 30 -subj "/CN=$u" -addext keyUsage=critical,digitalSignature 2>/dev/null
  openssl pkcs8 -topk8 -in "$d/plain.pem" -out "$d/key.p8" -v2 aes-256-cbc -v2prf hmacWithSHA256 \
    -iter 1000 -passout pass:$PIN
  rm "$d/plain.pem"; chmod 600 "$d/key.p8"
done
start_huren wsh "$cfg"
wait_port "$(http_port wsh)" 30
R1=$(login_token "$U" rd1 rd1-password-1); A1=$(login_token "$U" aud1 aud1-password-1); T1=$(login_token "$U" tech1 tech1-password-1)
req() { local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' -H "Authorization: Bearer $tok" "$@" "$U$url"; }
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# a CT whose window shows its pixels: 2 series of 3 images of 512 x 512
"$GEN" --out "$T/ct" --modality CT --series 2 --instances 3 --bytes 524288 --seed 51 \
  --patient-id WSH1 --charset utf8 --patient-name '孙^八' --accession ACC51 >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
S=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
req "$T/c.json" "$T1" "/api/v1/exams/$S/complete" -X POST >/dev/null
check_eq "rd1 claims" 200 "$(req "$T/c.json" "$R1" "/api/v1/worklists/imaging/items/$S/claim" -X POST)"
check_eq "rd1 drafts" 201 "$(req "$T/c.json" "$R1" /api/v1/reports -X POST -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
FIND='右肺下叶见一小结节影，直径约4mm，边界清楚。'
IMPR='右肺下叶小结节，建议12个月后复查。'
body=$($PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": sys.argv[1], "impression": sys.argv[2]}))' "$FIND" "$IMPR")
check_eq "rd1 saves" 200 "$(req "$T/s.json" "$R1" "/api/v1/reports/$ID" -X PUT -d "$body")"
check_eq "rd1 signs" 200 "$(req "$T/s.json" "$R1" "/api/v1/reports/$ID/sign" -X POST -d "{\"pin\": \"$PIN\"}")"
check_eq "aud1 co-signs: final" "200 final" \
  "$(req "$T/s.json" "$A1" "/api/v1/reports/$ID/cosign" -X POST -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["status"]')"
check_eq "tech1 creates a link" 201 "$(req "$T/l1.json" "$T1" /api/v1/shares -X POST -d "{\"study\": \"$S\"}")"
check_eq "... and a second one" 201 "$(req "$T/l2.json" "$T1" /api/v1/shares -X POST -d "{\"study\": \"$S\"}")"
TOK=$(jget "$T/l1.json" 'd["token"]'); TOK2=$(jget "$T/l2.json" 'd["token"]')
check_eq "tech1 revokes the second" 200 "$(req "$T/e.json" "$T1" "/api/v1/shares/$(jget "$T/l2.json" 'd["id"]')/revoke" -X POST)"
check_eq "the page is served at /s/<token>" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/s/$TOK")"

out=$(node "$SRC/tests/js/web/share.mjs" "$U" "$TOK" "$TOK2" "$FIND" "$IMPR" "$T" tech1 tech1-password-1 "$S" 2>&1) && st=0 || st=$?
echo "$out" | sed 's/^/    /'
check_eq "the browser test passes" 0 "$st"
check "screenshots written" test -s "$BUILD/screenshots/share/01-report.png"
check "the page's reads are audited" bash -c "grep -h '\"share-image\"' '$DATA'/audit/* | grep -q '\"outcome\":\"success\"'"
finish
