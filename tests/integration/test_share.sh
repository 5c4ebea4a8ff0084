#!/usr/bin/env bash
# Patient share links (云胶片, decision 0032) with a real huren, storescu,
# curl, zbar, poppler and redis-cli: a two-series CT from township1 is read,
# signed and co-signed. Before that nobody can share it (409); afterwards the
# township's technician and the center's reader and auditor create links
# (token, link, QR code that decodes to the link), another township, an
# external user, another center and the admin get 404; the holder of the
# token reads the report, its key images (JPEGs) and its PDF without
# logging in, and nothing else: not another study, not DICOMweb, not a
# tampered or truncated token; Redis keeps only the token's SHA-256 with a
# TTL; revoked and expired links answer the same 404 at once; the public
# routes answer 429 past their per-token and per-address limits; every
# access is audited with the share id and the token is never logged.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810

port=$(free_port)
cfg=$(write_config share "$port")
# short limits for the test: links of 1 s, 40 requests per token, 300 per address
$PY - "$cfg" <<'PYCFG'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["share"] = {"min_expires_s": 1, "per_token": 40, "per_address": 300, "window_s": 60}
json.dump(c, open(p, "w"))
PYCFG
U="http://127.0.0.1:$(http_port share)"
DATA=$T/share/data
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

start_huren share "$cfg"
wait_port "$(http_port share)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
R1=$(login rd1); A1=$(login aud1); RE=$(login recg); T1=$(login tech1); T2=$(login tech2)
EX=$(login ext1); AD=$(login admin)
req() { # OUT TOKEN URL [curl args] -> status
  local out=$1 tok=$2 url=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
pub() { # OUT URL [curl args] -> status (no credentials)
  local out=$1 url=$2; shift 2
  curl -s -o "$out" -w '%{http_code}' "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
is_jpeg() { # a JPEG whose headers DCMTK's img2dcm reads (it parses SOF, size, components)
  [ "$(head -c 3 "$1" | od -An -tx1 | tr -d ' ')" = ffd8ff ] && img2dcm -q "$1" "$1.dcm" 2>/dev/null
}
jpeg_side() { # the larger side of a JPEG (from img2dcm's Rows and Columns)
  img2dcm -q "$1" "$1.side.dcm" 2>/dev/null &&
    dcmdump +P 0028,0010 +P 0028,0011 "$1.side.dcm" | sed -n 's/.*US \([0-9]*\).*/\1/p' | sort -n | tail -1
}
uid_of() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }

# ---- two studies of township1: a CT (2 series of 3) and a second exam ----
"$GEN" --out "$T/ct" --modality CT --series 2 --instances 3 --bytes 524288 --seed 41 \
  --patient-id SHR1 --charset utf8 --patient-name '钱^七' --accession ACC41 >/dev/null
"$GEN" --out "$T/ct2" --modality CT --instances 1 --bytes 2048 --seed 42 --patient-id SHR2 \
  --accession ACC42 >/dev/null
check "township1 sends a CT" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
check "township1 sends another exam" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct2"
S=$(uid_of "$T/ct"); S2=$(uid_of "$T/ct2")
SH=/api/v1/shares
mk() { # OUT TOKEN BODY -> status
  req "$1" "$2" $SH -X POST -H 'Content-Type: application/json' -d "$3"
}

# ---- nothing to share before the report is final ----
req "$T/c.json" "$T1" "/api/v1/exams/$S/complete" -X POST >/dev/null
check_eq "no report yet: 409 not_final" "409 not_final" \
  "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\"}") $(jget "$T/e.json" 'd["error"]')"
R=/api/v1/reports
check_eq "rd1 claims" 200 "$(req "$T/c.json" "$R1" "/api/v1/worklists/imaging/items/$S/claim" -X POST)"
check_eq "rd1 creates the draft" 201 "$(req "$T/c.json" "$R1" $R -X POST -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
FIND='双肺纹理清晰，未见实质性病变。'
IMPR='胸部CT平扫未见明显异常。'
body=$($PY -c 'import json,sys; print(json.dumps({"rev": 0, "findings": sys.argv[1], "impression": sys.argv[2]}))' "$FIND" "$IMPR")
check_eq "rd1 saves" 200 "$(req "$T/s.json" "$R1" "$R/$ID" -X PUT -d "$body")"
check_eq "a draft: 409 not_final" 409 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\"}")"
check_eq "rd1 signs (preliminary)" 200 "$(req "$T/s.json" "$R1" "$R/$ID/sign" -X POST -d "{\"pin\": \"$PIN\"}")"
check_eq "preliminary: 409 not_final" 409 "$(mk "$T/e.json" "$R1" "{\"study\": \"$S\"}")"
check_eq "aud1 co-signs: final" "200 final" \
  "$(req "$T/s.json" "$A1" "$R/$ID/cosign" -X POST -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["status"]')"

# ---- who may create a link ----
t0=$(date +%s)
check_eq "tech1 (the study's township) creates a link: 201" 201 "$(mk "$T/l1.json" "$T1" "{\"study\": \"$S\"}")"
TOK=$(jget "$T/l1.json" 'd["token"]'); SID=$(jget "$T/l1.json" 'd["id"]')
check "... a token of 43 base64url characters and the share id" \
  bash -c "[[ '$TOK' =~ ^[A-Za-z0-9_-]{43}\.s[0-9]+-[0-9.]+$ ]] && [ '${TOK#*.}' = '$SID' ]"
check_eq "... url /s/<token>" "/s/$TOK" "$(jget "$T/l1.json" 'd["url"]')"
exp=$(jget "$T/l1.json" 'd["expires_ms"]//1000')
check "... expires in 7 days by default" bash -c "[ $((exp - t0)) -ge 604790 ] && [ $((exp - t0)) -le 604810 ]"
check_eq "... 2 key images (one per series)" 2 "$(jget "$T/l1.json" 'd["images"]')"
jget "$T/l1.json" 'd["qr"].split(",",1)[1]' | base64 -d >"$T/qr.png"
check_eq "... its QR code (PNG) decodes to the link" "$U/s/$TOK" "$(zbarimg --nodbus --quiet --raw "$T/qr.png")"
check_eq "rd1 (reader of the center) creates one: 201" 201 "$(mk "$T/l2.json" "$R1" "{\"study\": \"$S\", \"expires_in_s\": 3600}")"
TOK2=$(jget "$T/l2.json" 'd["token"]'); SID2=$(jget "$T/l2.json" 'd["id"]')
check_eq "aud1 (auditor of the center) creates one: 201" 201 "$(mk "$T/l3.json" "$A1" "{\"study\": \"$S\", \"expires_in_s\": 60}")"
for who in T2:tech2 EX:ext1 RE:recg AD:admin; do
  v=${who%%:*}
  check_eq "${who#*:} cannot: 404" 404 "$(mk "$T/e.json" "${!v}" "{\"study\": \"$S\"}")"
done
check_eq "no token: 401" 401 "$(mk "$T/e.json" "" "{\"study\": \"$S\"}")"
check_eq "an unknown study: 404" 404 "$(mk "$T/e.json" "$T1" '{"study": "1.2.3.4.5"}')"
check_eq "not a UID: 400" 400 "$(mk "$T/e.json" "$T1" '{"study": "../x"}')"
check_eq "expires_in_s over 30 days: 400" 400 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\", \"expires_in_s\": 2592001}")"
check_eq "expires_in_s 0: 400" 400 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\", \"expires_in_s\": 0}")"
check_eq "expires_in_s a string: 400" 400 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\", \"expires_in_s\": \"9\"}")"
check_eq "an unknown member: 400" 400 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\", \"x\": 1}")"
check_eq "garbage: 400" 400 "$(mk "$T/e.json" "$T1" 'not json')"
check_eq "the other exam (no report): 409" 409 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S2\"}")"

# ---- Redis keeps the token's hash only ----
N=${SID%%-*}; N=${N#s}
HASH=$(printf %s "$TOK" | sha256sum | cut -d' ' -f1)
check_eq "hr:share:{S}:n holds the SHA-256 of the token" "$HASH" "$(rcli share HGET "hr:share:{$S}:$N" tok)"
check "... and never the token" bash -c "! redis-cli -s '$DATA/redis/redis.sock' --raw HGETALL 'hr:share:{$S}:$N' | grep -qF '${TOK%%.*}'"
ttl=$(rcli share TTL "hr:share:{$S}:$N")
check "... with a TTL (the link's life and a week)" bash -c "[ $ttl -gt 604000 ] && [ $ttl -le $((604800 + 7 * 86400)) ]"

# ---- the holder of the token, without logging in ----
P=/api/v1/share/$TOK
curl -s -D "$T/r.hdr" -o "$T/r.json" "$U$P"
check "GET /api/v1/share/<token>: 200" grep -q '^HTTP/1.1 200' "$T/r.hdr"
check "... not cached" grep -qi '^cache-control: no-store' "$T/r.hdr"
check "... no referrer" grep -qi '^referrer-policy: no-referrer' "$T/r.hdr"
check_eq "... the findings" "$FIND" "$(jget "$T/r.json" 'd["report"]["findings"]')"
check_eq "... the impression" "$IMPR" "$(jget "$T/r.json" 'd["report"]["impression"]')"
check_eq "... final, version 2, 正式报告" "final 2 正式报告" \
  "$(jget "$T/r.json" 'd["report"]["status"] + " " + str(d["report"]["version"]) + " " + d["report"]["status_label"]')"
check_eq "... both signers" "rd1 aud1" "$(jget "$T/r.json" '" ".join(s["name"] for s in d["report"]["signers"])')"
check_eq "... the patient's name, the exam" "钱^七 CT ACC41" \
  "$(jget "$T/r.json" 'd["patient"]["name"] + " " + d["exam"]["modality"] + " " + d["exam"]["accession"]')"
check_eq "... two images" 2 "$(jget "$T/r.json" 'len(d["images"])')"
check "... no patient id, no other study" bash -c "! grep -q 'SHR1\|$S2' '$T/r.json'"
for n in 0 1; do
  curl -s -D "$T/i$n.hdr" -o "$T/i$n.jpg" "$U$P/images/$n"
  check "image $n: 200 image/jpeg" grep -qi '^content-type: image/jpeg' "$T/i$n.hdr"
  check "... a JPEG (DCMTK's img2dcm reads it)" is_jpeg "$T/i$n.jpg"
done
check_eq "image 0 as a thumbnail: a JPEG" 200 "$(pub "$T/t0.jpg" "$P/images/0?size=thumb")"
check "... a JPEG too" is_jpeg "$T/t0.jpg"
side0=$(jpeg_side "$T/i0.jpg"); side_t=$(jpeg_side "$T/t0.jpg")
check "... at most 256 pixels a side (share.thumb_side), smaller than image 0 ($side0)" \
  bash -c "[ '$side_t' -le 256 ] && [ '$side_t' -lt '$side0' ]"
check_eq "image 2 (none): 404" 404 "$(pub "$T/e.json" "$P/images/2")"
check_eq "image -1: 404" 404 "$(pub "$T/e.json" "$P/images/-1")"
check_eq "image 01: 404" 404 "$(pub "$T/e.json" "$P/images/01")"
curl -s -D "$T/p.hdr" -o "$T/p.pdf" "$U$P/pdf"
check "the PDF: 200 application/pdf" grep -qi '^content-type: application/pdf' "$T/p.hdr"
check "... the report's text" bash -c "pdftotext -enc UTF-8 '$T/p.pdf' - | tr -d ' \n' | grep -qF '$IMPR'"
check_eq "the reader's link works too" 200 "$(pub "$T/e.json" "/api/v1/share/$TOK2")"

# ---- nothing else ----
SEC=${TOK%%.*}
check_eq "the secret with the other study's share id: 404" 404 "$(pub "$T/e.json" "/api/v1/share/$SEC.s$N-$S2")"
check_eq "the secret with another share of the study: 404" 404 "$(pub "$T/e.json" "/api/v1/share/$SEC.$SID2")"
bad=$(printf %s "$SEC" | tr 'A-Za-z' 'B-ZAb-za')
check_eq "a tampered secret: 404" 404 "$(pub "$T/e.json" "/api/v1/share/$bad.$SID")"
check_eq "a truncated token: 404" 404 "$(pub "$T/e.json" "/api/v1/share/${TOK:0:42}")"
check_eq "the share id alone: 404" 404 "$(pub "$T/e.json" "/api/v1/share/$SID")"
check_eq "garbage: 404" 404 "$(pub "$T/e.json" "/api/v1/share/..%2f..%2fetc")"
check_eq "a 4000-byte token: 404 (or refused)" 1 \
  "$(s=$(pub "$T/e.json" "/api/v1/share/$(head -c 4000 /dev/zero | tr '\0' a)"); [ "$s" = 404 ] || [ "$s" = 414 ] || [ "$s" = 431 ]; echo $((1 - $?)))"
check_eq "the token as a bearer on DICOMweb: 401" 401 "$(req "$T/e.json" "$TOK" "/dicomweb/studies/$S/series")"
check_eq "the token as a bearer on QIDO: 401" 401 "$(req "$T/e.json" "$TOK" "/dicomweb/studies")"
check_eq "the token as the session cookie: 401" 401 "$(pub "$T/e.json" "/dicomweb/studies/$S/metadata" -H "Cookie: huren_session=$TOK")"
check_eq "the token as a bearer on the reports API: 401" 401 "$(req "$T/e.json" "$TOK" "$R/$ID")"
check_eq "the secret alone as a bearer: 401" 401 "$(req "$T/e.json" "$SEC" "/dicomweb/studies")"
check_eq "DICOMweb without login: 401" 401 "$(pub "$T/e.json" "/dicomweb/studies/$S/series")"
check_eq "a POST on the public route: 404 or 405" 1 \
  "$(s=$(pub "$T/e.json" "$P" -X POST); [ "$s" = 405 ] || [ "$s" = 404 ]; echo $((1 - $?)))"

# ---- the list ----
check_eq "tech1 lists the study's links: 3" "200 3" \
  "$(req "$T/ls.json" "$T1" "$SH?study=$S") $(jget "$T/ls.json" 'len(d["shares"])')"
check "... without their tokens" bash -c "! grep -qF '$SEC' '$T/ls.json' && ! grep -q '\"token\"' '$T/ls.json'"
check_eq "... all live" "live live live" "$(jget "$T/ls.json" '" ".join(s["state"] for s in d["shares"])')"
check_eq "rd1 lists: 200" 200 "$(req "$T/e.json" "$R1" "$SH?study=$S")"
check_eq "the admin lists: 200" 200 "$(req "$T/e.json" "$AD" "$SH?study=$S")"
check_eq "tech2 lists: 404" 404 "$(req "$T/e.json" "$T2" "$SH?study=$S")"
check_eq "ext1 lists: 404" 404 "$(req "$T/e.json" "$EX" "$SH?study=$S")"
check_eq "no study: 400" 400 "$(req "$T/e.json" "$T1" "$SH")"

# ---- revocation, at once ----
check_eq "tech2 revokes: 404" 404 "$(req "$T/e.json" "$T2" "$SH/$SID/revoke" -X POST)"
check_eq "ext1 revokes: 404" 404 "$(req "$T/e.json" "$EX" "$SH/$SID/revoke" -X POST)"
check_eq "... the link still works" 200 "$(pub "$T/e.json" "$P")"
check_eq "tech1 revokes: 200 revoked" "200 revoked" \
  "$(req "$T/rv.json" "$T1" "$SH/$SID/revoke" -X POST) $(jget "$T/rv.json" 'd["state"]')"
check_eq "... the report: 404 at once" 404 "$(pub "$T/rv1.json" "$P")"
check_eq "... the images: 404" 404 "$(pub "$T/e.json" "$P/images/0")"
check_eq "... the PDF: 404" 404 "$(pub "$T/e.json" "$P/pdf")"
check_eq "revoking again: 200, unchanged" "200 $(jget "$T/rv.json" 'd["revoked_ms"]')" \
  "$(req "$T/rv2.json" "$T1" "$SH/$SID/revoke" -X POST) $(jget "$T/rv2.json" 'd["revoked_ms"]')"
check_eq "an unknown share: 404" 404 "$(req "$T/e.json" "$T1" "$SH/s999-$S/revoke" -X POST)"
check_eq "a malformed id: 404" 404 "$(req "$T/e.json" "$T1" "$SH/x/revoke" -X POST)"
check_eq "the admin revokes rd1's link: 200" 200 "$(req "$T/e.json" "$AD" "$SH/$SID2/revoke" -X POST)"
check_eq "... it stops" 404 "$(pub "$T/e.json" "/api/v1/share/$TOK2")"
pub "$T/unk.json" "/api/v1/share/$bad.$SID" >/dev/null
check_eq "revoked and unknown answer alike" "$(jget "$T/unk.json" 'd["error"] + d["detail"]')" \
  "$(jget "$T/rv1.json" 'd["error"] + d["detail"]')"

# ---- expiry ----
check_eq "a link of 2 s: 201" 201 "$(mk "$T/l4.json" "$T1" "{\"study\": \"$S\", \"expires_in_s\": 2}")"
TOK4=$(jget "$T/l4.json" 'd["token"]')
check_eq "... works now" 200 "$(pub "$T/e.json" "/api/v1/share/$TOK4")"
sleep 2.5
check_eq "... 404 once expired" 404 "$(pub "$T/x.json" "/api/v1/share/$TOK4")"
check_eq "... like an unknown one" "$(jget "$T/unk.json" 'd["error"] + d["detail"]')" \
  "$(jget "$T/x.json" 'd["error"] + d["detail"]')"
check_eq "... listed as expired" expired \
  "$(req "$T/ls.json" "$T1" "$SH?study=$S" >/dev/null; jget "$T/ls.json" '[s["state"] for s in d["shares"] if s["id"] == sys.argv[3]][0]' "${TOK4#*.}")"

# ---- a retracted report takes its links down ----
check_eq "a fresh link: 201" 201 "$(mk "$T/l5.json" "$R1" "{\"study\": \"$S\"}")"
TOK5=$(jget "$T/l5.json" 'd["token"]')
check_eq "... works" 200 "$(pub "$T/e.json" "/api/v1/share/$TOK5")"
check_eq "aud1 retracts the report" 200 \
  "$(req "$T/e.json" "$A1" "$R/$ID/retract" -X POST -d "{\"pin\": \"$PIN\", \"reason\": \"wrong patient\"}")"
check_eq "... the link: 404" 404 "$(pub "$T/e.json" "/api/v1/share/$TOK5")"
check_eq "... and no new link: 409" 409 "$(mk "$T/e.json" "$T1" "{\"study\": \"$S\"}")"

# ---- audit ----
AUD() { cat "$DATA"/audit/* 2>/dev/null; }
check "share-create audited with the share id" bash -c "grep -h '\"share-create\"' '$DATA'/audit/* | grep -q 'share=$SID'"
check "share-read audited with the share id, no actor" bash -c "grep -h '\"share-read\"' '$DATA'/audit/* | grep 'share=$SID' | grep -q '\"outcome\":\"success\"'"
check "share-image audited" bash -c "grep -h '\"share-image\"' '$DATA'/audit/* | grep -q 'share=$SID image=1'"
check "share-pdf audited" bash -c "grep -h '\"share-pdf\"' '$DATA'/audit/* | grep -q 'share=$SID'"
check "refused reads audited (denied)" bash -c "grep -h '\"share-read\"' '$DATA'/audit/* | grep -q '\"outcome\":\"denied\"'"
check "share-revoke audited" bash -c "grep -h '\"share-revoke\"' '$DATA'/audit/* | grep -q 'share=$SID'"
check "the tokens are never in the audit log nor the log" \
  bash -c "! grep -rqF -e '$SEC' -e '${TOK2%%.*}' '$DATA/audit' '$T/share/huren.log'"

# ---- rate limits (last: they hold for the window) ----
# a token seen for the first time: 404 for 40 requests, then 429
FRESH=$(head -c 32 /dev/urandom | base64 | tr "+/" "-_" | head -c 43).$SID
codes=$(for i in $(seq 1 45); do echo "url = \"$U/api/v1/share/$FRESH\""; echo 'write-out = "%{http_code}\n"'; echo 'output = "/dev/null"'; done | curl -s -K -)
check_eq "40 requests of one token pass, then 429" "40 5" \
  "$(grep -c 404 <<<"$codes") $(grep -c 429 <<<"$codes")"
curl -s -D "$T/rl.hdr" -o /dev/null "$U/api/v1/share/$FRESH"
check "... with Retry-After" grep -qi '^retry-after: [0-9]' "$T/rl.hdr"
check "... audited once as rate limited" bash -c "[ \$(grep -h 'rate limited' '$DATA'/audit/* | wc -l) -ge 1 ]"
codes=$(for i in $(seq 1 320); do echo "url = \"$U/api/v1/share/x$i\""; echo 'write-out = "%{http_code}\n"'; echo 'output = "/dev/null"'; done | curl -s -K -)
check "one address: 429 past 300 requests in the window" bash -c "[ $(grep -c 429 <<<"$codes") -ge 1 ]"
check_eq "... the authenticated API is not limited by it" 200 "$(req "$T/e.json" "$T1" "$SH?study=$S")"

finish
