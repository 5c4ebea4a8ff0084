#!/usr/bin/env bash
# Reports end to end (issue 9, decisions 0022 and 0024) with a real huren,
# storescu, curl and openssl: township1 sends a CT, it becomes ready, a
# reader claims it, drafts (autosave, revisions), huren restarts (the draft
# survives), signs with a PIN (a wrong PIN signs nothing), an auditor
# co-signs (an auditor cannot co-sign a report he signed), the township sees
# the final report and downloads its JWS, which openssl verifies and whose
# image digest matches the hashes of the files sent; amendment (a reader's
# needs a co-signature), the old version still fetchable, retraction (the
# exam is read again), RFC 3161 timestamps from a real TSA (none: nothing
# signed), `huren verify`. Hostile: no claim, another center, another township,
# an external user, an expired token, garbage and huge bodies, a technician
# trying to sign.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PIN=246810

port=$(free_port)
cfg=$(write_config rp "$port")
# signed versions go to township1's webhook: a port nobody listens on, so
# the deliveries stay queued for the checks below (test_delivery.sh delivers)
$PY - "$cfg" "$(free_port)" <<'PYCFG'
import json, sys
c = json.load(open(sys.argv[1]))
c["delivery"] = {"poll_ms": 200, "retry_initial_s": 60, "hospitals": {"township1": {
    "webhook": {"url": "http://127.0.0.1:%s/dead" % sys.argv[2]}}}}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PYCFG
U="http://127.0.0.1:$(http_port rp)"
# queued(VERSION): the version's delivery exists (the sender took it from
# hr:rpt:outbox), waiting at most 10 s
queued() {
  for _ in $(seq 1 100); do
    [ "$(rcli rp EXISTS "hr:dlv:{$S}:1:$1:webhook")" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
DATA=$T/rp/data
adduser() { add_user "$cfg" "$@"; }
adduser rd1 'rd1-password-1' reader county imaging
adduser rd2 'rd2-password-1' reader county imaging
adduser aud1 'aud1-password-1' auditor county imaging
adduser aud2 'aud2-password-1' auditor county imaging
adduser recg 'recg-password-1' reader county ecg
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
adduser ext1 'ext1-password-1' external township2
adduser admin 'admin-password-1' admin county

# signing keys from the regional CA (huren ca init, huren keygen): ES256,
# and EdDSA for aud2
check "huren ca init" "$HUREN" ca init --config "$cfg"
mkkey() { printf '%s\n' "$PIN" | "$HUREN" keygen --config "$cfg" --user "$1" --alg "$2" --pin-stdin >/dev/null; }
for u in rd1 rd2 aud1; do check "keygen $u (es256)" mkkey $u es256; done
check "keygen aud2 (ed25519)" mkkey aud2 ed25519
TRUST=$DATA/ca/trust.pem

# a real RFC 3161 TSA (openssl ts -reply behind http.server): every
# signature of this hub is timestamped (reports.tsa_url)
start_tsa
$PY - "$cfg" "$tport" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["reports"] = {"tsa_url": "http://127.0.0.1:%s/" % sys.argv[2], "tsa_timeout_ms": 5000}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY

start_huren rp "$cfg"
wait_port "$(http_port rp)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
login_all() {
  R1=$(login rd1); R2=$(login rd2); A1=$(login aud1); A2=$(login aud2); RE=$(login recg)
  T1=$(login tech1); T2=$(login tech2); EX=$(login ext1); AD=$(login admin)
}
login_all
check "nine logins" test "${#R1}${#R2}${#A1}${#A2}${#RE}${#T1}${#T2}${#EX}${#AD}" = 434343434343434343

req() { # OUT TOKEN METHOD URL [curl args] -> status
  local out=$1 tok=$2 method=$3 url=$4; shift 4
  curl -s -o "$out" -w '%{http_code}' -X "$method" ${tok:+-H "Authorization: Bearer $tok"} "$@" "$U$url"
}
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
err() { jget "$1" 'd["error"]'; }

# ---- a CT from township1, completed explicitly ----
"$GEN" --out "$T/ct" --modality CT --series 2 --instances 2 --bytes 2048 --seed 91 --patient-id RP1 --charset utf8 \
  --patient-name '王^五' --accession ACC91 >/dev/null
"$GEN" --out "$T/mr" --modality MR --instances 1 --bytes 2048 --seed 92 --patient-id RP2 >/dev/null
check "township1 sends a CT (4 instances) and an MR" \
  storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct" "$T/mr"
uid() { dcmdump +P 0020,000D "$(ls "$1"/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
S=$(uid "$T/ct"); MR=$(uid "$T/mr")
check_eq "tech1 completes the CT: ready" "200 ready" \
  "$(req "$T/c.json" "$T1" POST "/api/v1/exams/$S/complete") $(jget "$T/c.json" 'd["state"]')"
req "$T/c.json" "$T1" POST "/api/v1/exams/$MR/complete" >/dev/null
R=/api/v1/reports

# ---- no claim: nothing ----
check_eq "rd1 without a claim cannot create: 409 not_claim_holder" "409 not_claim_holder" \
  "$(req "$T/e.json" "$R1" POST $R -d "{\"study\": \"$S\"}") $(err "$T/e.json")"
check_eq "claim by rd1" 200 "$(req "$T/c.json" "$R1" POST "/api/v1/worklists/imaging/items/$S/claim")"
check_eq "rd2 (same center, no claim) cannot create: 409" "409 not_claim_holder" \
  "$(req "$T/e.json" "$R2" POST $R -d "{\"study\": \"$S\"}") $(err "$T/e.json")"
check_eq "the ECG reader cannot (another center): 404" 404 "$(req "$T/e.json" "$RE" POST $R -d "{\"study\": \"$S\"}")"
check_eq "tech1 cannot: 403" 403 "$(req "$T/e.json" "$T1" POST $R -d "{\"study\": \"$S\"}")"
check_eq "tech2 (another township) cannot: 404" 404 "$(req "$T/e.json" "$T2" POST $R -d "{\"study\": \"$S\"}")"
check_eq "garbage JSON: 400 bad_json" "400 bad_json" "$(req "$T/e.json" "$R1" POST $R -d '{"study": ') $(err "$T/e.json")"
check_eq "a bad UID: 400" 400 "$(req "$T/e.json" "$R1" POST $R -d '{"study": "1.2.x"}')"
check_eq "an unknown member: 400" 400 "$(req "$T/e.json" "$R1" POST $R -d "{\"study\": \"$S\", \"x\": 1}")"
check_eq "rd1 creates the draft: 201" 201 "$(req "$T/c.json" "$R1" POST $R -d "{\"study\": \"$S\"}")"
ID=$(jget "$T/c.json" 'd["id"]')
check_eq "... id r1-<study>, revision 0" "r1-$S 0" "$ID $(jget "$T/c.json" 'd["rev"]')"
check_eq "a second report while one is open: 409 open_report naming it" "409 open_report $ID" \
  "$(req "$T/e.json" "$R1" POST $R -d "{\"study\": \"$S\"}") $(err "$T/e.json") $(jget "$T/e.json" 'd["id"]')"

# ---- autosave ----
FIND='双肺纹理清晰，未见实质性病变。'
IMPR='胸部CT平扫未见异常。'
body() { $PY -c 'import json,sys; print(json.dumps({"rev": int(sys.argv[1]), "findings": sys.argv[2], "impression": sys.argv[3], "critical": False}))' "$@"; }
check_eq "rd1 saves revision 0: 200, rev 1" "200 1" \
  "$(req "$T/s.json" "$R1" PUT "$R/$ID" -d "$(body 0 "$FIND" '')") $(jget "$T/s.json" 'd["rev"]')"
check_eq "a save from a stale revision: 409 stale_rev, current rev 1" "409 stale_rev 1" \
  "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d "$(body 0 'x' 'y')") $(err "$T/e.json") $(jget "$T/e.json" 'd["rev"]')"
check_eq "rd1 saves again: rev 2" "200 2" \
  "$(req "$T/s.json" "$R1" PUT "$R/$ID" -d "$(body 1 "$FIND" "$IMPR")") $(jget "$T/s.json" 'd["rev"]')"
check_eq "rd2 (no claim) cannot edit: 409 not_claim_holder" "409 not_claim_holder" \
  "$(req "$T/e.json" "$R2" PUT "$R/$ID" -d "$(body 2 'x' 'y')") $(err "$T/e.json")"
check_eq "the ECG reader cannot edit: 404" 404 "$(req "$T/e.json" "$RE" PUT "$R/$ID" -d "$(body 2 'x' 'y')")"
check_eq "nor read: 404" 404 "$(req "$T/e.json" "$RE" GET "$R/$ID")"
check_eq "tech2 cannot read: 404" 404 "$(req "$T/e.json" "$T2" GET "$R/$ID")"
check_eq "the external user cannot read: 404" 404 "$(req "$T/e.json" "$EX" GET "$R/$ID")"
check_eq "an unknown report: 404" 404 "$(req "$T/e.json" "$R1" GET "$R/r9-$S")"
check_eq "a malformed id: 404" 404 "$(req "$T/e.json" "$R1" GET "$R/zz")"
check_eq "garbage JSON on save: 400" 400 "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d 'nope')"
check_eq "findings over 32 KiB: 400 too_large" "400 too_large" \
  "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d "$(body 2 "$(head -c 33000 /dev/zero | tr '\0' a)" '')") $(err "$T/e.json")"
head -c 400000 /dev/zero | tr '\0' a >"$T/huge.txt"
check_eq "a 400 KB body: 413" 413 "$(req "$T/e.json" "$R1" PUT "$R/$ID" --data-binary @"$T/huge.txt")"
check_eq "a recognition item outside the catalogue: 400 unknown_item" \
  "400 unknown_item" \
  "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d '{"rev": 2, "recognition": ["CT-CHEST"]}') $(err "$T/e.json")"
EXPIRED=$(login rd1)
rcli rp HSET "hr:tok:$(printf %s "$EXPIRED" | sha256sum | cut -d' ' -f1)" expires $(($(date +%s) - 1)) >/dev/null
check_eq "an expired token: 401" 401 "$(req "$T/e.json" "$EXPIRED" PUT "$R/$ID" -d "$(body 2 'x' 'y')")"
check_eq "tech1 sees the report without the draft" "200 draft False" \
  "$(req "$T/g.json" "$T1" GET "$R/$ID") $(jget "$T/g.json" 'd["status"] + " " + str("draft" in d)')"
check_eq "rd1 sees the draft at rev 2" "200 2 $IMPR" \
  "$(req "$T/g.json" "$R1" GET "$R/$ID") $(jget "$T/g.json" 'str(d["draft"]["rev"]) + " " + d["draft"]["impression"]')"

# ---- a restart: the draft survives ----
check "graceful stop" stop_huren "$HUREN_PID"
start_huren rp "$cfg"
wait_port "$(http_port rp)" 30
login_all
check_eq "after the restart the draft is there (rev 2, findings)" "2 $FIND" \
  "$(req "$T/g.json" "$R1" GET "$R/$ID" >/dev/null; jget "$T/g.json" 'str(d["draft"]["rev"]) + " " + d["draft"]["findings"]')"

# ---- signing ----
check_eq "a wrong PIN: 403 wrong_pin" "403 wrong_pin" \
  "$(req "$T/e.json" "$R1" POST "$R/$ID/sign" -d '{"pin": "999999"}') $(err "$T/e.json")"
check_eq "... nothing signed: no version, still a draft, nothing to deliver" "0 draft 0" \
  "$(rcli rp HGET "hr:rpt:{$S}:1" versions) $(rcli rp HGET "hr:rpt:{$S}:1" status) $(rcli rp ZCARD hr:rpt:outbox)"
check_eq "rd2 cannot sign rd1's claimed exam: 409" 409 "$(req "$T/e.json" "$R2" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}")"
check_eq "tech1 cannot sign: 403" 403 "$(req "$T/e.json" "$T1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\"}")"
check_eq "a sign body without pin: 400" 400 "$(req "$T/e.json" "$R1" POST "$R/$ID/sign" -d '{}')"
check_eq "signing a stale revision: 409 stale_rev" "409 stale_rev" \
  "$(req "$T/e.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\", \"rev\": 1}") $(err "$T/e.json")"
check_eq "rd1 signs revision 2: 200, version 1 preliminary (imaging has audit_signoff)" "200 1 preliminary" \
  "$(req "$T/s.json" "$R1" POST "$R/$ID/sign" -d "{\"pin\": \"$PIN\", \"rev\": 2}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
check_eq "the worklist item is reported by rd1" "reported rd1" \
  "$(rcli rp HGET "hr:wl:{$S}" state) $(rcli rp HGET "hr:wl:{$S}" reported_by)"
check_eq "a preliminary is not delivered" 0 "$(rcli rp ZCARD hr:rpt:outbox)"
check_eq "the draft is closed: 409 not_draft" "409 not_draft" \
  "$(req "$T/e.json" "$R1" PUT "$R/$ID" -d "$(body 2 'x' 'y')") $(err "$T/e.json")"

# an auditor who signed an exam himself cannot co-sign it (the MR)
req "$T/c.json" "$A1" POST "/api/v1/worklists/imaging/items/$MR/claim" >/dev/null
req "$T/c.json" "$A1" POST $R -d "{\"study\": \"$MR\"}" >/dev/null
MID=$(jget "$T/c.json" 'd["id"]')
req "$T/s.json" "$A1" PUT "$R/$MID" -d "$(body 0 'MR所见' 'MR印象')" >/dev/null
check_eq "aud1 signs the MR he read: preliminary" "200 preliminary" \
  "$(req "$T/s.json" "$A1" POST "$R/$MID/sign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["status"]')"
check_eq "... and cannot co-sign it: 409 own_report" "409 own_report" \
  "$(req "$T/e.json" "$A1" POST "$R/$MID/cosign" -d "{\"pin\": \"$PIN\"}") $(err "$T/e.json")"
check_eq "aud2 can: final" "200 final" \
  "$(req "$T/s.json" "$A2" POST "$R/$MID/cosign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'd["status"]')"

check_eq "a reader cannot co-sign: 403" 403 "$(req "$T/e.json" "$R2" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}")"
check_eq "aud1 co-signs rd1's report: version 2, final" "200 2 final" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
check_eq "... the worklist item is final" final "$(rcli rp HGET "hr:wl:{$S}" state)"
check "... version 2 is queued for delivery" queued 2

# ---- the township sees it ----
req "$T/x.json" "$T1" GET '/api/v1/exams?hospital=me' >/dev/null
check_eq "tech1's exams: the CT reported, report final" "reported $ID final" \
  "$(jget "$T/x.json" '[" ".join([i["status"], i["report"]["id"], i["report"]["status"]]) for i in d["items"] if i["study"] == sys.argv[3]][0]' "$S")"
check_eq "tech1 reads the exam with the signed text" "200 final $IMPR" \
  "$(req "$T/x.json" "$T1" GET "/api/v1/exams/$S") $(jget "$T/x.json" 'd["reports"][0]["status"] + " " + d["reports"][0]["signed"]["content"]["impression"]')"
JWS2=$(jget "$T/x.json" '[v["links"]["jws"] for v in d["reports"][0]["versions"] if v["version"] == 2][0]')
check_eq "... with links to the JWS and the PDF" "$R/$ID/versions/2/jws $R/$ID/versions/2/pdf" \
  "$JWS2 $(jget "$T/x.json" 'd["reports"][0]["versions"][1]["links"]["pdf"]')"
check_eq "tech2 cannot read the exam: 404" 404 "$(req "$T/e.json" "$T2" GET "/api/v1/exams/$S")"
check_eq "nor the external user: 404" 404 "$(req "$T/e.json" "$EX" GET "/api/v1/exams/$S")"
check_eq "nor the ECG reader: 404" 404 "$(req "$T/e.json" "$RE" GET "/api/v1/exams/$S")"
check_eq "the admin can: 200" 200 "$(req "$T/e.json" "$AD" GET "/api/v1/exams/$S")"
curl -s -D "$T/jws.hdr" -o "$T/v2.jws" -H "Authorization: Bearer $T1" "$U$JWS2"
check "tech1 downloads the JWS as application/jose" grep -qi '^content-type: application/jose' "$T/jws.hdr"
check_eq "tech2 cannot: 404" 404 "$(req "$T/e.json" "$T2" GET "$JWS2")"

# ---- the JWS verified with openssl; the image digest from the files sent ----
verify_jws() { # FILE -> "ok" when openssl verifies the ES256 signature with the x5c leaf
  $PY - "$1" "$T/vj" <<'PY'
import base64, json, subprocess, sys
jws = open(sys.argv[1]).read().strip()
d = sys.argv[2]
h, p, s = jws.split(".")
b = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
hdr = json.loads(b(h))
assert hdr["alg"] == "ES256", hdr["alg"]
open(d + ".crt", "w").write("-----BEGIN CERTIFICATE-----\n" + hdr["x5c"][0] + "\n-----END CERTIFICATE-----\n")
open(d + ".in", "wb").write((h + "." + p).encode())
raw = b(s)
def der_int(v):
    v = v.lstrip(b"\0") or b"\0"
    if v[0] & 0x80: v = b"\0" + v
    return b"\x02" + bytes([len(v)]) + v
seq = der_int(raw[:32]) + der_int(raw[32:])
open(d + ".sig", "wb").write(b"\x30" + bytes([len(seq)]) + seq)
subprocess.run(["openssl", "x509", "-in", d + ".crt", "-pubkey", "-noout", "-out", d + ".pub"], check=True)
r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", d + ".pub", "-signature", d + ".sig", d + ".in"],
                   capture_output=True, text=True)
print("ok" if r.returncode == 0 and "Verified OK" in r.stdout else "failed: " + r.stdout + r.stderr)
PY
}
check_eq "openssl verifies the final version's signature" ok "$(verify_jws "$T/v2.jws")"
check "huren verify: signature, chain to the regional CA, images digest and the 4 files sent" \
  "$HUREN" verify "$T/v2.jws" --trust "$TRUST" --images "$T/ct"
jget "$T/x.json" '[v["timestamp_token"] for v in d["reports"][0]["versions"] if v["version"] == 2][0]' |
  base64 -d >"$T/v2.tsr"
check "version 2 carries an RFC 3161 token that openssl ts verifies against the JWS" \
  openssl ts -verify -data "$T/v2.jws" -in "$T/v2.tsr" -token_in -CAfile "$T/tsa/root.pem" \
  -untrusted "$T/tsa/tsa.pem"
cat "$TRUST" "$T/tsa/root.pem" >"$T/trust-tsa.pem"
check "... and huren verify --tsr" "$HUREN" verify "$T/v2.jws" --trust "$T/trust-tsa.pem" --tsr "$T/v2.tsr"
req "$T/mr.jws" "$T1" GET "$R/$MID/versions/2/jws" >/dev/null
check "huren verify: the MR's final, co-signed with EdDSA by aud2" \
  "$HUREN" verify "$T/mr.jws" --trust "$TRUST" --images "$T/mr"
payload() { $PY -c 'import base64,json,sys; p=open(sys.argv[1]).read().split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4))), ensure_ascii=False))' "$1"; }
payload "$T/v2.jws" >"$T/v2.json"
digest=$(for f in "$T"/ct/*.dcm; do echo "$(dcmdump +P 0008,0018 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1) $(dataset_sha "$f")"; done |
  LC_ALL=C sort | sha256sum | cut -d' ' -f1)
check_eq "the payload's image digest is that of the 4 files sent (sorted SOP lines)" "4 $digest" \
  "$(jget "$T/v2.json" 'str(d["images"]["count"]) + " " + d["images"]["digest"]')"
check_eq "... exam, patient, status, two signers" "$S ACC91 township1 王^五 final rd1,aud1" \
  "$(jget "$T/v2.json" '" ".join([d["exam"]["study_uid"], d["exam"]["accession"], d["exam"]["hospital"], d["patient"]["name"], d["report"]["status"], ",".join(s["user"] for s in d["signers"])])')"
req "$T/v1.jws" "$T1" GET "$R/$ID/versions/1/jws" >/dev/null
check_eq "... and carries version 1's JWS in cosigns" "$(cat "$T/v1.jws")" "$(jget "$T/v2.json" 'd["cosigns"]')"
printf '%s' "$(cat "$T/v2.jws")" | $PY -c 'import sys; s=sys.stdin.read(); h,p,g=s.split("."); import base64; q=bytearray(base64.urlsafe_b64decode(p+"="*(-len(p)%4))); i=q.index(b"final"); q[i]=ord("F"); print(h+"."+base64.urlsafe_b64encode(bytes(q)).decode().rstrip("=")+"."+g)' >"$T/tampered.jws"
check "a payload with one byte changed fails openssl" test "$(verify_jws "$T/tampered.jws")" != ok

# ---- amendment: a reader's needs a co-signature ----
amend() { $PY -c 'import json,sys; print(json.dumps({"pin": sys.argv[1], "impression": sys.argv[2], "kind": sys.argv[3], "reason": "补充"}))' "$@"; }
NEWI='胸部CT平扫：右肺上叶小结节，建议随访。'
check_eq "the ECG reader cannot amend: 404" 404 "$(req "$T/e.json" "$RE" POST "$R/$ID/amend" -d "$(amend $PIN "$NEWI" amendment)")"
check_eq "a bad kind: 400" 400 "$(req "$T/e.json" "$R2" POST "$R/$ID/amend" -d "$(amend $PIN "$NEWI" rewrite)")"
check_eq "rd2 amends: version 3, pending; the report stays final" "200 3 final 3" \
  "$(req "$T/s.json" "$R2" POST "$R/$ID/amend" -d "$(amend $PIN "$NEWI" amendment)") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"] + " " + str(d["pending"])')"
check_eq "... tech1 still reads the final text" "$IMPR" \
  "$(req "$T/x.json" "$T1" GET "/api/v1/exams/$S" >/dev/null; jget "$T/x.json" 'd["reports"][0]["signed"]["content"]["impression"]')"
check_eq "a second amendment meanwhile: 409 amendment_pending" "409 amendment_pending" \
  "$(req "$T/e.json" "$A1" POST "$R/$ID/amend" -d "$(amend $PIN x amendment)") $(err "$T/e.json")"
check_eq "aud1 co-signs it: version 4, amended" "200 4 amended" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/cosign" -d "{\"pin\": \"$PIN\"}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
req "$T/v4.jws" "$T1" GET "$R/$ID/versions/4/jws" >/dev/null
payload "$T/v4.jws" >"$T/v4.json"
check_eq "version 4 supersedes version 2 by its digest" "2 $(sha256sum <"$T/v2.jws" | cut -d' ' -f1)" \
  "$(jget "$T/v4.json" 'str(d["report"]["supersedes"]["version"]) + " " + d["report"]["supersedes"]["digest"]')"
check_eq "... with the new impression, the findings kept" "$NEWI $FIND" \
  "$(jget "$T/v4.json" 'd["content"]["impression"] + " " + d["content"]["findings"]')"
check_eq "openssl verifies version 4" ok "$(verify_jws "$T/v4.jws")"
req "$T/v2b.jws" "$T1" GET "$JWS2" >/dev/null
check "the old version 2 is still served, unchanged" cmp -s "$T/v2.jws" "$T/v2b.jws"
check_eq "... and still verifies" ok "$(verify_jws "$T/v2b.jws")"
check_eq "the worklist item is amended" amended "$(rcli rp HGET "hr:wl:{$S}" state)"
check_eq "versions listed: 1 preliminary, 2 final, 3 preliminary, 4 amended" \
  "1:preliminary 2:final 3:preliminary 4:amended" \
  "$(req "$T/g.json" "$T1" GET "$R/$ID" >/dev/null; jget "$T/g.json" '" ".join("%d:%s" % (v["version"], v["status"]) for v in d["versions"])')"
check_eq "the study's reports" "$ID:amended" \
  "$(req "$T/l.json" "$T1" GET "$R?study=$S" >/dev/null; jget "$T/l.json" '" ".join(r["id"] + ":" + r["status"] for r in d["reports"])')"
check_eq "... not for tech2: 404" 404 "$(req "$T/e.json" "$T2" GET "$R?study=$S")"
queued 4 || true
check_eq "delivery queue: versions 2 and 4" "2:webhook 4:webhook" "$(rcli_raw rp ZRANGE "hr:dlv:{$S}:1" 0 -1 | xargs)"

# ---- retraction ----
check_eq "rd2 (not the author) cannot retract: 403" 403 \
  "$(req "$T/e.json" "$R2" POST "$R/$ID/retract" -d "{\"pin\": \"$PIN\", \"reason\": \"x\"}")"
check_eq "a retraction without reason: 400" 400 "$(req "$T/e.json" "$A1" POST "$R/$ID/retract" -d "{\"pin\": \"$PIN\"}")"
check_eq "aud1 retracts: version 5, entered-in-error" "200 5 entered-in-error" \
  "$(req "$T/s.json" "$A1" POST "$R/$ID/retract" -d "{\"pin\": \"$PIN\", \"reason\": \"患者信息错误\"}") $(jget "$T/s.json" 'str(d["version"]) + " " + d["status"]')"
check_eq "... the exam is read again (ready), retracted for the township" "ready retracted" \
  "$(rcli rp HGET "hr:wl:{$S}" state) $(req "$T/x.json" "$T1" GET '/api/v1/exams?hospital=me' >/dev/null; jget "$T/x.json" '[i["status"] for i in d["items"] if i["study"] == sys.argv[3]][0]' "$S")"
check "... version 5 is queued for delivery" queued 5
check_eq "a second retraction: 409" 409 "$(req "$T/e.json" "$A1" POST "$R/$ID/retract" -d "{\"pin\": \"$PIN\", \"reason\": \"again\"}")"

# ---- PIN lock: 5 wrong PINs lock signing ----
req "$T/c.json" "$R2" POST "/api/v1/worklists/imaging/items/$S/claim" >/dev/null
check_eq "rd2 claims again and creates report 2" "201 r2-$S" \
  "$(req "$T/c.json" "$R2" POST $R -d "{\"study\": \"$S\"}") $(jget "$T/c.json" 'd["id"]')"
req "$T/s.json" "$R2" PUT "$R/r2-$S" -d "$(body 0 "$FIND" "$IMPR")" >/dev/null
# eight saves from the same revision at once: exactly one wins
racers=()
for i in 1 2 3 4 5 6 7 8; do
  (req /dev/null "$R2" PUT "$R/r2-$S" -d "$(body 1 "text $i" "$IMPR")" >"$T/race.$i") &
  racers+=($!)
done
wait "${racers[@]}"
check_eq "eight concurrent saves of revision 1: one 200, seven 409" "1 7" \
  "$(grep -lx 200 "$T"/race.? | wc -l) $(grep -lx 409 "$T"/race.? | wc -l)"
check_eq "... the draft is at revision 2" 2 "$(rcli rp HGET "hr:rpt:{$S}:2" rev)"
kill "$TSA_PID"
wait "$TSA_PID" 2>/dev/null || true
check_eq "the TSA is down: 503 tsa_unavailable" "503 tsa_unavailable" \
  "$(req "$T/e.json" "$R2" POST "$R/r2-$S/sign" -d "{\"pin\": \"$PIN\"}") $(err "$T/e.json")"
check_eq "... nothing signed" "0 draft" "$(rcli rp HGET "hr:rpt:{$S}:2" versions) $(rcli rp HGET "hr:rpt:{$S}:2" status)"
codes=""
for i in 1 2 3 4 5; do codes="$codes $(req "$T/e.json" "$R2" POST "$R/r2-$S/sign" -d '{"pin": "000000"}')"; done
check_eq "five wrong PINs: 403 each" " 403 403 403 403 403" "$codes"
check_eq "then even the right PIN: 429 pin_locked" "429 pin_locked" \
  "$(req "$T/e.json" "$R2" POST "$R/r2-$S/sign" -d "{\"pin\": \"$PIN\"}") $(err "$T/e.json")"
check_eq "... nothing signed" 0 "$(rcli rp HGET "hr:rpt:{$S}:2" versions)"

# ---- audit: reads of the report are recorded with the patient ----
check "report reads are audited" grep -q '"action":"report-read"' "$DATA"/audit/audit-*.jsonl
check "exam reads are audited with the study" grep -q "\"action\":\"exam-read\".*\"study\":\"$S\"" "$DATA"/audit/audit-*.jsonl
check "refused reads too (denied)" grep -q '"action":"report-read".*"outcome":"denied"' "$DATA"/audit/audit-*.jsonl
check "the audit chain verifies" "$HUREN" audit verify --config "$cfg"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
