#!/usr/bin/env bash
# The county reader's and the auditor's pages in a real browser (issue 10,
# decision 0034): Debian chromium driven by puppeteer-core
# (tests/js/web/reader.mjs) against a real huren serving web/ and OHIF:
# the reader's worklist updates live when a study arrives (storescu while
# the page is open, no reload), claim opens the reading screen whose OHIF
# frame draws the image (canvas pixels not uniform), the person's prior
# exam from another hospital is listed and opens in the viewer, a template
# and a phrase fill the draft, the draft autosaves across a reload, the
# reader signs with the PIN (Ctrl+Enter); the auditor's co-sign queue shows
# it side by side, he returns it with a comment, the reader sees the
# comment, revises and signs again, the auditor co-signs with his PIN (the
# report is final) and amends it; Alt+N claims the next exam, Alt+R
# releases it. Pages of other roles are refused. Screenshots:
# $HUREN_BUILD_DIR/screenshots/reader/.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=135790
NID=11010519491231002X
JS=$SRC/tests/js
if [ ! -d "$JS/node_modules/puppeteer-core" ]; then
  npm ci --prefix "$JS" --no-audit --no-fund >/dev/null
fi

port=$(free_port)
cfg=$(write_config wr "$port")
U="http://127.0.0.1:$(http_port wr)"
add_user "$cfg" rd1 rd1-password-1 reader county imaging
add_user "$cfg" aud1 aud1-password-1 auditor county imaging
add_user "$cfg" tech1 tech1-password-1 technician township1
add_user "$cfg" admin admin-password-1 admin county
check "huren ca init" "$HUREN" ca init --config "$cfg"
for u in rd1 aud1; do
  check "keygen $u" bash -c "printf '%s\n' '$PIN' | '$HUREN' keygen --config '$cfg' --user $u --alg es256 --pin-stdin >/dev/null"
done
start_huren wr "$cfg"
wait_port "$(http_port wr)" 30
tok() { login_token "$U" "$1" "$1-password-1"; }
AD=$(tok admin)
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# a CT head of township1 (sent while the reader's page is open), and a DX
# of the same person from the county hospital a year ago (there already)
"$GEN" --out "$T/ct" --modality CT --instances 2 --bytes 131072 --seed 41 --patient-id WR1 --charset utf8 \
  --patient-name '赵^六' --study-date 20261203 --accession ACC41 >/dev/null
"$GEN" --out "$T/dx" --modality DX --instances 1 --bytes 131072 --seed 42 --patient-id CR1 --charset utf8 \
  --patient-name '赵^六' --study-date 20251120 --accession PRIOR42 >/dev/null
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
S=$(uid "$T/ct"); PR=$(uid "$T/dx")
check "the county hospital sends the prior DX" storescu -aet COUNTY -aec HUREN 127.0.0.1 "$port" "$T"/dx/*.dcm
curl -s -o /dev/null -H "Authorization: Bearer $AD" -X POST "$U/api/v1/exams/$PR/complete"

# what the township does while the reader watches: send the CT (storescu),
# complete it, and link its patient to the person of the prior (admin)
cat >"$T/store.sh" <<SH
set -euo pipefail
export TCP_NODELAY=1
storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 $port $T/ct/*.dcm
c() { curl -sf -o "$T/store.out" -H "Authorization: Bearer $AD" "\$@"; }
c -X POST "$U/api/v1/exams/$S/complete"
link() {
  c "$U/api/v1/exams/\$2"
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); i, p = d["patient"].split("|", 1); print(json.dumps({"hospital": sys.argv[2], "issuer": i, "patient_id": p, "id_type": "national_id", "id": sys.argv[3]}))' "$T/store.out" "\$1" "$NID" >"$T/link.json"
  c -X POST "$U/api/v1/persons/link" -d @"$T/link.json"
}
link township1 $S
link county $PR
SH

mkdir -p "$T/web"
if HUREN_URL=$U WEB_STUDY=$S WEB_PRIOR=$PR WEB_PIN=$PIN WEB_STORE_CMD="bash $T/store.sh" WEB_TMP=$T/web \
  timeout 400 node "$JS/web/reader.mjs" >"$T/web.log" 2>&1; then
  pass "browser: reader and auditor pages (tests/js/web/reader.mjs)"
else
  fail "browser: reader and auditor pages (tests/js/web/reader.mjs)"
fi
sed 's/^/    /' "$T/web.log"

# what the pages did, seen through the API
check_eq "the report is amended after the co-signature and the auditor's amendment, the return in its history" "amended 1 4" \
  "$(curl -s -H "Authorization: Bearer $AD" "$U/api/v1/reports?study=$S" >"$T/r.json"; jget "$T/r.json" '" ".join(map(str, [d["reports"][0]["status"], len(d["reports"][0]["returns"]), len(d["reports"][0]["versions"])]))')"
check "the reader's and the auditor's reads are audited" bash -c \
  "grep -q '\"action\":\"exam-priors\"' $T/wr/data/audit/audit-*.jsonl && grep -q '\"action\":\"report-return\".*success' $T/wr/data/audit/audit-*.jsonl"

finish
