#!/usr/bin/env bash
# The township technician's pages in a real browser (issue 10, decision
# 0033): Debian chromium driven by puppeteer-core (tests/js/web/township.mjs)
# against a real huren serving web/: every page without a session goes to
# the login; a wrong password and a lockout show their messages; tech1
# uploads 2 DICOM files from the browser (STOW per file, progress, a file
# that is not DICOM fails on its own row) and sees the study arrive; a
# reader signs and an auditor co-signs through the API; the page shows the
# state change, the report, the verified signature, and the PDF and JWS
# download; language switch remembered; the pages and API calls of other
# roles are refused; another township sees nothing; logout, logout
# everywhere, password change. Then the API of the session additions with
# curl: POST /api/v1/me/password, POST /api/v1/logout?all=1 and
# GET .../versions/{n}/verify, hostile cases included. Screenshots:
# $HUREN_BUILD_DIR/screenshots/township/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810
JS=$SRC/tests/js
if [ ! -d "$JS/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
fi

port=$(free_port)
cfg=$(write_config wt "$port")
U="http://127.0.0.1:$(http_port wt)"
for u in tech1:township1 tech3:township1 lock1:township1 tech2:township2; do
  add_user "$cfg" "${u%%:*}" "${u%%:*}-password-1" technician "${u##*:}"
done
add_user "$cfg" rd1 rd1-password-1 reader county imaging
add_user "$cfg" aud1 aud1-password-1 auditor county imaging
add_user "$cfg" admin admin-password-1 admin county
check "huren ca init" "$HUREN" ca init --config "$cfg"
for u in rd1 aud1; do
  check "keygen $u" bash -c "printf '%s\n' '$PIN' | '$HUREN' keygen --config '$cfg' --user $u --alg es256 --pin-stdin >/dev/null"
done
start_huren wt "$cfg"
wait_port "$(http_port wt)" 30

# the page: the CSP allows exactly its import map, by hash
curl -s -D "$T/idx.hdr" -o "$T/idx.html" "$U/"
want=$($PY - "$T/idx.html" <<'PY'
import base64, hashlib, re, sys
m = re.search(r'<script type="importmap">(.*?)</script>', open(sys.argv[1]).read(), re.S)
print(base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode())
PY
)
check "the page's CSP allows its import map by hash, nothing else inline" \
  grep -qi "^content-security-policy: default-src 'self'; script-src 'self' 'sha256-$want';" "$T/idx.hdr"
check "... no 'unsafe-inline' for scripts" bash -c "! grep -i '^content-security-policy' '$T/idx.hdr' | grep -q \"script-src[^;]*unsafe-inline\""

# two CT instances of one study (township1), and a file that is not DICOM
"$GEN" --out "$T/ct" --modality CT --series 1 --instances 2 --bytes 4096 --seed 31 --patient-id WT1 \
  --charset utf8 --patient-name '李^四' --accession ACC31 >/dev/null
S=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
head -c 3000 /dev/urandom >"$T/not-dicom.dcm"
IMPR='胸部CT平扫未见明显异常。'

# what the county does once the study is there: complete, claim, draft,
# sign (reader, preliminary), co-sign (auditor, final)
cat >"$T/sign.sh" <<SH
set -euo pipefail
tok() { curl -s -X POST "$U/api/v1/login" -d "{\"user\": \"\$1\", \"password\": \"\$1-password-1\"}" | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
T1=\$(tok tech1); R1=\$(tok rd1); A1=\$(tok aud1)
c() { local tk=\$1; shift; curl -sf -o "$T/sign.out" -H "Authorization: Bearer \$tk" "\$@"; }
c "\$T1" -X POST "$U/api/v1/exams/$S/complete"
c "\$R1" -X POST "$U/api/v1/worklists/imaging/items/$S/claim"
c "\$R1" -X POST "$U/api/v1/reports" -d '{"study": "$S"}'
ID=\$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/sign.out")
echo "\$ID" >"$T/report.id"
c "\$R1" -X PUT "$U/api/v1/reports/\$ID" -d '{"rev": 0, "findings": "双肺纹理清晰。", "impression": "$IMPR", "critical": false}'
c "\$R1" -X POST "$U/api/v1/reports/\$ID/sign" -d '{"pin": "$PIN"}'
c "\$A1" -X POST "$U/api/v1/reports/\$ID/cosign" -d '{"pin": "$PIN"}'
SH

mkdir -p "$T/web"
if HUREN_URL=$U WEB_FILES=$T/ct WEB_STUDY=$S WEB_BAD=$T/not-dicom.dcm WEB_SIGN_CMD="bash $T/sign.sh" \
  WEB_IMPRESSION=$IMPR WEB_TMP=$T/web timeout 300 node "$JS/web/township.mjs" >"$T/web.log" 2>&1; then
  pass "browser: township pages (tests/js/web/township.mjs)"
else
  fail "browser: township pages (tests/js/web/township.mjs)"
fi
sed 's/^/    /' "$T/web.log"
check "browser: no check failed" bash -c "! grep -q '^FAIL' '$T/web.log'"
check "browser: at least 60 checks ran" bash -c "[ \$(grep -c '^ok' '$T/web.log') -ge 60 ]"
check "screenshots written" bash -c "ls '$BUILD/screenshots/township/'*.png >/dev/null"

# ---- the API additions with curl ----
ID=$(cat "$T/report.id")
req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
login() { login_token "$U" "$1" "${2:-$1-password-1}"; }
T1=$(login tech1); T2=$(login tech2); AD=$(login admin)

V=/api/v1/reports/$ID/versions
check_eq "verify: tech1, the final version 2: ok, signature, certificates and chain pass" "200 True 1 1 1" \
  "$(req "$T/v.json" "$T1" GET "$V/2/verify") $(jget "$T/v.json" '" ".join(map(str, [d["ok"], d["signature"], d["certificates"], d["chain"]]))')"
check "... names the signer" grep -q 'aud1' "$T/v.json"
check_eq "verify: tech2 (another township): 404" 404 "$(req "$T/e.json" "$T2" GET "$V/2/verify")"
check_eq "verify: version 9: 404" 404 "$(req "$T/e.json" "$T1" GET "$V/9/verify")"
check_eq "verify: version x: 404" 404 "$(req "$T/e.json" "$T1" GET "$V/x/verify")"
check_eq "verify: a malformed report id: 404" 404 "$(req "$T/e.json" "$T1" GET "/api/v1/reports/zz/versions/1/verify")"
check_eq "verify: no token: 401" 401 "$(req "$T/e.json" "" GET "$V/2/verify")"
# a version whose stored JWS was altered (one byte of its signature) does
# not verify
jws=$(rcli wt HGET "hr:rpt:{$S}:1:v:1" jws)
$PY - "$jws" >"$T/bad.jws" <<'PY'
import sys
h, p, s = sys.argv[1].split(".")
i = len(s) // 2
s = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
print(".".join([h, p, s]), end="")
PY
rcli wt HSET "hr:rpt:{$S}:1:v:1" jws "$(cat "$T/bad.jws")" >/dev/null
check_eq "verify: an altered JWS: ok false, signature 0" "200 False 0" \
  "$(req "$T/v.json" "$T1" GET "$V/1/verify") $(jget "$T/v.json" 'str(d["ok"]) + " " + str(d["signature"])')"
rcli wt HSET "hr:rpt:{$S}:1:v:1" jws "$jws" >/dev/null
check "verify reads are audited (report-verify)" grep -rqs '"report-verify"' "$T/wt/data/audit"

# the exams list carries the flags the page highlights
req "$T/x.json" "$T1" GET '/api/v1/exams?hospital=me' >/dev/null
check_eq "the exams list has patient_conflict and changed_after_ready" "False False" \
  "$(jget "$T/x.json" '[str(i["patient_conflict"]) + " " + str(i["changed_after_ready"]) for i in d["items"] if i["study"] == sys.argv[3]][0]' "$S")"

# password change
P=/api/v1/me/password
check_eq "password: garbage body: 400" 400 "$(req "$T/e.json" "$T1" POST $P -d 'nope')"
check_eq "password: a member missing: 400" 400 "$(req "$T/e.json" "$T1" POST $P -d '{"old": "x"}')"
check_eq "password: a 20 KB body: 413" 413 "$(req "$T/e.json" "$T1" POST $P --data-binary @<(head -c 20000 /dev/zero | tr '\0' a))"
check_eq "password: a short new one: 400 weak_password" "400 weak_password" \
  "$(req "$T/e.json" "$T1" POST $P -d '{"old": "tech1-password-1", "new": "short"}') $(jget "$T/e.json" 'd["error"]')"
check_eq "password: no token: 401" 401 "$(req "$T/e.json" "" POST $P -d '{"old": "a", "new": "bbbbbbbbbbbb"}')"
check_eq "password: the session cookie without X-Requested-With: 403 (CSRF)" 403 \
  "$(curl -s -o "$T/e.json" -w '%{http_code}' -X POST -H "Cookie: huren_session=$T1" "$U$P" -d '{"old": "tech1-password-1", "new": "tech1-password-2"}')"
check_eq "password: a wrong old one: 403 wrong_password" "403 wrong_password" \
  "$(req "$T/e.json" "$T1" POST $P -d '{"old": "wrong-password", "new": "tech1-password-2"}') $(jget "$T/e.json" 'd["error"]')"
for i in 2 3 4; do req "$T/e.json" "$T1" POST $P -d "{\"old\": \"wrong-$i\", \"new\": \"tech1-password-2\"}" >/dev/null; done
check_eq "password: the 5th wrong one locks the account: 429 locked" "429 locked" \
  "$(req "$T/e.json" "$T1" POST $P -d '{"old": "wrong-5", "new": "tech1-password-2"}') $(jget "$T/e.json" 'd["error"]')"
check_eq "... the login too: 429 locked" 429 \
  "$(curl -s -o "$T/e.json" -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "tech1", "password": "tech1-password-1"}')"
check_eq "... and the right old password while locked: 429" 429 \
  "$(req "$T/e.json" "$T1" POST $P -d '{"old": "tech1-password-1", "new": "tech1-password-2"}')"
check "password refusals are audited (password-change)" grep -rqs '"password-change"' "$T/wt/data/audit"
rcli wt DEL hr:user:tech1:lock hr:user:tech1:fail >/dev/null
T1b=$(login tech1)
check_eq "password: tech1 changes it: 204, the cookie cleared" 204 \
  "$(curl -s -D "$T/p.hdr" -o "$T/e.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $T1" "$U$P" -d '{"old": "tech1-password-1", "new": "tech1-password-2"}')"
check "... Set-Cookie clears huren_session" grep -qi '^set-cookie: huren_session=;' "$T/p.hdr"
check_eq "... every session of tech1 is revoked (both tokens: 401)" "401 401" \
  "$(req "$T/e.json" "$T1" GET /api/v1/me) $(req "$T/e.json" "$T1b" GET /api/v1/me)"
check_eq "... tech2's session is not" 200 "$(req "$T/e.json" "$T2" GET /api/v1/me)"
check_eq "... the new password logs in" 43 "$(login tech1 tech1-password-2 | tr -d '\n' | wc -c)"

# logout everywhere
n0=$(rcli wt ZCARD hr:user:tech2:tokens)
A=$(login tech2); B=$(login tech2); C=$(login tech2)
check_eq "tech2's per-user token index grows by 3" $((n0 + 3)) "$(rcli wt ZCARD hr:user:tech2:tokens)"
check_eq "logout?all=2: 400" 400 "$(req "$T/e.json" "$A" POST '/api/v1/logout?all=2')"
check_eq "logout?all=1 without a token: 401" 401 "$(req "$T/e.json" "" POST '/api/v1/logout?all=1')"
check_eq "logout?all=1: 204" 204 "$(req "$T/e.json" "$A" POST '/api/v1/logout?all=1')"
check_eq "... every token of tech2 is gone (401 x4)" "401 401 401 401" \
  "$(for k in "$A" "$B" "$C" "$T2"; do req "$T/e.json" "$k" GET /api/v1/me; printf ' '; done | sed 's/ $//')"
check_eq "... the per-user index is empty" 0 "$(rcli wt ZCARD hr:user:tech2:tokens)"
check_eq "... the admin's session lives on" 200 "$(req "$T/e.json" "$AD" GET /api/v1/me)"
check_eq "... tech2 can log in again" 200 "$(req "$T/e.json" "$(login tech2)" GET /api/v1/me)"
check "logouts everywhere are audited" grep -rqs 'all sessions' "$T/wt/data/audit"

finish
