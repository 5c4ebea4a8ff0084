#!/usr/bin/env bash
# Signed reports verified three independent ways (issue 9, decisions 0022 and
# 0023): `huren ca init` and `huren keygen` for ES256, EdDSA and SM2 signers;
# a report payload over a real study's instance hashes (read from the index
# of a running hub) signed by the library (huren-test-sign); then `huren
# verify`, the openssl command line (tests/integration/jws_openssl.sh:
# signature and chain) and npm jose (tests/js, ES256 and EdDSA) must all
# accept it, and must all refuse each tampered copy (one byte of payload,
# signature or certificate). Then: instance hashes from a directory and from
# the hub's DICOMweb (another hospital's token and a garbage one refused), a
# co-signed final, `huren cert import` of a chain from another CA, and an
# RFC 3161 timestamp from a real TSA (`openssl ts -reply` behind http.server).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SIGN=$BUILD/huren-test-sign
OSSL=$SRC/tests/integration/jws_openssl.sh
JOSE="node $SRC/tests/js/verify_jws.mjs"
PIN=246810

if [ ! -d "$SRC/tests/js/node_modules/jose" ]; then
  echo "tests/js/node_modules missing: run scripts/setup (npm ci --prefix tests/js)"
  exit 1
fi

port=$(free_port)
cfg=$(write_config hub "$port")
CA=$T/hub/data/ca
KEYS=$T/hub/data/keys
TRUST=$CA/trust.pem
status() { local st=0; "$@" >"$T/last.out" 2>&1 || st=$?; echo "$st"; }
keygen() { printf '%s\n' "${3:-$PIN}" | "$HUREN" keygen --config "$cfg" --user "$1" --alg "$2" \
  --name 李医生 --center imaging "${@:4}"; }

# --- the regional CA and the signers' keys
check "ca init makes the regional CA" "$HUREN" ca init --config "$cfg"
check_eq "a second ca init is refused (the CA is never replaced)" 1 \
  "$(status "$HUREN" ca init --config "$cfg")"
check_eq "ca.key and ca.pass are 0600" "600 600" "$(stat -c %a "$CA/ca.key" "$CA/ca.pass" | xargs)"
for alg in es256 ed25519 sm2; do
  check "keygen --alg $alg" keygen "dr-$alg" "$alg"
done
check_eq "key.p8 and chain.pem are 0600" "600 600" \
  "$(stat -c %a "$KEYS/dr-es256/key.p8" "$KEYS/dr-es256/chain.pem" | xargs)"
check "key.p8 is an encrypted PKCS#8 PEM" grep -q 'BEGIN ENCRYPTED PRIVATE KEY' "$KEYS/dr-es256/key.p8"
check "key.p8: PBKDF2 with 100000 iterations (0x186A0)" \
  grep -q 'INTEGER *:0186A0' <(openssl asn1parse -in "$KEYS/dr-es256/key.p8")
check "openssl opens key.p8 with the PIN" openssl pkey -in "$KEYS/dr-es256/key.p8" -passin "pass:$PIN" -noout
check_eq "keygen refuses a 5-byte PIN" 1 "$(status keygen dr-short es256 12345)"
check_eq "keygen refuses a user name with a slash" 2 "$(status keygen ../etc es256)"
check_eq "keygen refuses a center that is not configured" 2 \
  "$(status keygen dr-x es256 "$PIN" --center nowhere)"
check "the certificate names the user, hospital and center" \
  grep -q "UID = dr-sm2" <(openssl x509 -in "$KEYS/dr-sm2/chain.pem" -noout -subject -nameopt oneline)

# --- a study on the hub; its instance hashes come from the index
"$GEN" --out "$T/ct" --instances 4 --bytes 16384 --seed 91 >/dev/null
start_huren hub "$cfg"
check "township1 sends a CT of 4 instances" \
  storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/ct"
study=$(dcmdump +P 0020,000D "$(ls "$T"/ct/*.dcm | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p')
: >"$T/hashes"
for f in "$T"/ct/*.dcm; do
  sop=$(sop_uid "$f")
  echo "$sop $(rcli hub HGET "hr:{$study}:i:$sop" sha)" >>"$T/hashes"
done
check_eq "every instance has its hash in the index" 4 "$(grep -c ' [0-9a-f]\{64\}$' "$T/hashes")"

# payload.py OUT STATUS FINDINGS [COSIGNS_FILE]: a payload of decision 0022
cat >"$T/payload.py" <<'PY'
import hashlib, json, sys
out, status, findings = sys.argv[1:4]
inst = []
for line in open(sys.argv[5]):
    sop, sha = line.split()
    inst.append({"sop": sop, "sha256": sha})
inst.sort(key=lambda e: e["sop"].encode())
digest = hashlib.sha256("".join("%s %s\n" % (e["sop"], e["sha256"]) for e in inst).encode()).hexdigest()
p = {"typ": "huren-report", "schema": 1,
     "report": {"id": "r1-" + sys.argv[6], "version": 2 if status == "final" else 1, "status": status,
                "supersedes": None},
     "exam": {"study_uid": sys.argv[6], "accession": "A1", "hospital": "township1", "modality": "CT"},
     "patient": {"id": "P0001", "issuer": "township1", "name": "张三", "sex": "M", "birth_date": ""},
     "images": {"count": len(inst), "order": "sop-uid-bytewise", "digest": digest, "instances": inst},
     "content": {"findings": findings, "impression": "未见异常。", "critical": False, "codes": []},
     "signers": [{"user": "dr", "name": "李医生", "role": "reader", "function": "author",
                  "center": "imaging", "hospital": "county", "signed_at": "2026-12-03T07:00:00.123Z"}],
     "signed_at": "2026-12-03T07:00:00.123Z"}
if sys.argv[4] != "-":
    p["cosigns"] = open(sys.argv[4]).read().strip()
json.dump(p, open(out, "w"), ensure_ascii=False)
PY
payload() { "$PY" "$T/payload.py" "$1" "$2" "$3" "${4:--}" "$T/hashes" "$study"; }
payload "$T/p.json" final "双肺纹理清晰，未见实变。"
sign() { printf '%s\n' "${3:-$PIN}" | "$SIGN" --keys "$KEYS" --user "$1" "$2"; }

# all_accept FILE ALG / all_refuse FILE ALG "what": huren verify, openssl and
# (ES256, EdDSA) jose; any verifier that disagrees fails the check
hv() { "$HUREN" verify "$1" --trust "$TRUST" "${@:2}"; }
all_accept() {
  check "$2: huren verify accepts $3" hv "$1"
  check "$2: openssl accepts $3" "$OSSL" "$1" "$TRUST" "$T/ossl.$RANDOM"
  [ "$2" = SM2 ] || check "$2: jose accepts $3" $JOSE "$1"
}
all_refuse() {
  check_eq "$2: huren verify refuses $3" 1 "$(status hv "$1")"
  check_eq "$2: openssl refuses $3" 1 "$(status "$OSSL" "$1" "$TRUST" "$T/ossl.$RANDOM")"
  [ "$2" = SM2 ] || check_eq "$2: jose refuses $3" 1 "$(status $JOSE "$1")"
}
# tamper.py IN OUT payload|signature|x5c: one byte changed, parts re-encoded
cat >"$T/tamper.py" <<'PY'
import base64, json, sys
def d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
h, p, s = open(sys.argv[1]).read().strip().split(".")
what = sys.argv[3]
if what == "payload":      # one hex digit of the first instance hash
    b = bytearray(d(p)); i = b.index(b'"sha256":"') + 10
    b[i] = ord("1") if b[i] != ord("1") else ord("2"); p = e(bytes(b))
elif what == "signature":  # one bit of S
    b = bytearray(d(s)); b[40] ^= 0x01; s = e(bytes(b))
elif what == "x5c":        # one byte in the middle of the leaf certificate
    hdr = json.loads(d(h)); der = bytearray(base64.b64decode(hdr["x5c"][0]))
    der[len(der) // 2] ^= 0x01; hdr["x5c"][0] = base64.b64encode(bytes(der)).decode()
    h = e(json.dumps(hdr, separators=(",", ":")).encode())
open(sys.argv[2], "w").write(".".join([h, p, s]) + "\n")
PY

for alg in es256 ed25519 sm2; do
  A=$(case $alg in es256) echo ES256 ;; ed25519) echo EdDSA ;; sm2) echo SM2 ;; esac)
  sign "dr-$alg" "$T/p.json" >"$T/$alg.jws"
  check_eq "$A: huren-test-sign made a compact JWS" 3 "$(tr '.' '\n' <"$T/$alg.jws" | wc -l)"
  all_accept "$T/$alg.jws" "$A" "the signed report"
  for what in payload signature x5c; do
    "$PY" "$T/tamper.py" "$T/$alg.jws" "$T/$alg.$what.jws" "$what"
    all_refuse "$T/$alg.$what.jws" "$A" "one changed byte of the $what"
  done
done
out=$("$HUREN" verify "$T/es256.payload.jws" --trust "$TRUST" || true)
check "huren verify names the reason (payload)" grep -q 'FAIL  signature: signature does not match the payload' <<<"$out"
out=$("$HUREN" verify "$T/es256.jws" || true)
check "without --trust the chain is reported unchecked and verify fails" \
  grep -q 'FAIL  certificate chain: not checked' <<<"$out"
check_eq "the wrong PIN signs nothing" 1 "$(status sign dr-es256 "$T/p.json" 999999)"
check_eq "... and prints no JWS" 0 "$(grep -c '^ey' "$T/last.out" || true)"

# a certificate changed by its holder and the JWS re-signed with the same key:
# the signature is fine (jose checks nothing more), the chain is not
openssl pkey -in "$KEYS/dr-es256/key.p8" -passin "pass:$PIN" -out "$T/es256.key.pem"
"$PY" - "$T/es256.jws" "$T/es256.key.pem" "$T/es256.recert.jws" <<'PY'
import base64, json, subprocess, sys
def d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
h, p, s = open(sys.argv[1]).read().strip().split(".")
hdr = json.loads(d(h)); der = bytearray(base64.b64decode(hdr["x5c"][0]))
i = der.index(b"dr-es256"); der[i:i + 8] = b"dr-es257"          # the UID attribute
hdr["x5c"][0] = base64.b64encode(bytes(der)).decode()
h = e(json.dumps(hdr, separators=(",", ":")).encode())
inp = (h + "." + p).encode()
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[2]], input=inp,
                     capture_output=True, check=True).stdout
# DER ECDSA-Sig-Value -> R||S
def ints(b):
    assert b[0] == 0x30; i = 2 if b[1] < 0x80 else 3; out = []
    while i < len(b):
        n = b[i + 1]; out.append(int.from_bytes(b[i + 2:i + 2 + n], "big")); i += 2 + n
    return out
r, s_ = ints(sig)
open(sys.argv[3], "w").write(h + "." + p + "." + e(r.to_bytes(32, "big") + s_.to_bytes(32, "big")) + "\n")
PY
out=$("$HUREN" verify "$T/es256.recert.jws" --trust "$TRUST" || true)
check "re-signed altered certificate: the signature itself verifies" grep -q '^ok    signature' <<<"$out"
check "re-signed altered certificate: huren verify names the altered certificate" \
  grep -q 'FAIL  certificate chain: certificate signature does not verify' <<<"$out"
check_eq "re-signed altered certificate: openssl's chain check refuses it" 1 \
  "$(status "$OSSL" "$T/es256.recert.jws" "$TRUST" "$T/ossl.recert")"

# --- instance hashes: a directory of DICOM files, and the hub's DICOMweb
mkdir -p "$T/imgs/sub"
cp "$T"/ct/*.dcm "$T/imgs/sub/"
for f in "$T"/imgs/sub/*.dcm; do mv "$f" "$T/imgs/sub/x$RANDOM.bin"; done
out=$("$HUREN" verify "$T/ed25519.jws" --trust "$TRUST" --images "$T/imgs" || true)
check_eq "--images: every instance found by its SOP UID and matching" 4 "$(grep -c '^ok    image ' <<<"$out")"
check "--images: VERIFIED" grep -q '^VERIFIED$' <<<"$out"
victim=$(ls "$T"/imgs/sub/* | head -1)
"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(-100,2); b=f.read(1); f.seek(-100,2); f.write(bytes([b[0]^1]))' "$victim"
out=$("$HUREN" verify "$T/ed25519.jws" --trust "$TRUST" --images "$T/imgs" || true)
check "--images: one changed pixel byte is named" grep -q "^FAIL  image .*: SHA-256 of $victim differs" <<<"$out"
check_eq "--images: the other instances still match" 3 "$(grep -c '^ok    image ' <<<"$out")"
rm -f "$victim"
out=$("$HUREN" verify "$T/ed25519.jws" --trust "$TRUST" --images "$T/imgs" || true)
check "--images: a missing instance is named" grep -q '^FAIL  image .*: not found under' <<<"$out"

U="http://127.0.0.1:$(http_port hub)"
add_user "$cfg" tech1 'tech1-password' technician township1
add_user "$cfg" tech2 'tech2-password' technician township2
tok1=$(login_token "$U" tech1 'tech1-password')
tok2=$(login_token "$U" tech2 'tech2-password')
out=$("$HUREN" verify "$T/sm2.jws" --trust "$TRUST" --hub "$U" --token "$tok1" || true)
check_eq "--hub: every instance fetched through WADO-RS and matching" 4 "$(grep -c '^ok    image ' <<<"$out")"
check "--hub: VERIFIED" grep -q '^VERIFIED$' <<<"$out"
check_eq "--hub: another hospital's token sees no such study" 1 \
  "$(status "$HUREN" verify "$T/sm2.jws" --trust "$TRUST" --hub "$U" --token "$tok2")"
check "--hub: ... and says so" grep -q "study $study not found on the hub" "$T/last.out"
check_eq "--hub: a garbage token is refused" 1 \
  "$(status "$HUREN" verify "$T/sm2.jws" --trust "$TRUST" --hub "$U" --token garbage)"

# --- a co-signed final carries the preliminary's JWS
payload "$T/pre.json" preliminary "双肺纹理清晰，未见实变。"
sign dr-ed25519 "$T/pre.json" >"$T/pre.jws"
payload "$T/final.json" final "双肺纹理清晰，未见实变。" "$T/pre.jws"
sign dr-es256 "$T/final.json" >"$T/final.jws"
out=$("$HUREN" verify "$T/final.jws" --trust "$TRUST" || true)
check "co-signed final: the preliminary's signature verifies" grep -q '^ok    preliminary signature: EdDSA' <<<"$out"
check "co-signed final: the content is the preliminary's" grep -q '^ok    co-signed content' <<<"$out"
check "co-signed final: VERIFIED" grep -q '^VERIFIED$' <<<"$out"
all_accept "$T/final.jws" ES256 "the co-signed final"
payload "$T/final2.json" final "双肺纹理增多。" "$T/pre.jws"
sign dr-es256 "$T/final2.json" >"$T/final2.jws"
out=$("$HUREN" verify "$T/final2.jws" --trust "$TRUST" || true)
check "co-signed final with other findings: the difference is named" \
  grep -q "FAIL  co-signed content: the preliminary's \"content\" differs" <<<"$out"
"$PY" "$T/tamper.py" "$T/pre.jws" "$T/pre.bad.jws" signature
payload "$T/final3.json" final "双肺纹理清晰，未见实变。" "$T/pre.bad.jws"
sign dr-es256 "$T/final3.json" >"$T/final3.jws"
out=$("$HUREN" verify "$T/final3.jws" --trust "$TRUST" || true)
check "co-signed final over a tampered preliminary fails" \
  grep -q 'FAIL  preliminary signature: signature does not match the payload' <<<"$out"

# --- cert import: a key and chain from another CA (made with openssl)
mkdir -p "$T/real"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/real/ca.key" \
  -out "$T/real/ca.pem" -subj "/CN=Real Health CA" -days 30 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$T/real/dr.key" 2>/dev/null
openssl pkcs8 -topk8 -in "$T/real/dr.key" -v2 aes-256-cbc -passout "pass:$PIN" -out "$T/real/dr.p8"
openssl req -new -key "$T/real/dr.key" -subj "/CN=王医生/UID=dr-real" -utf8 -out "$T/real/dr.csr"
printf 'keyUsage=critical,digitalSignature,nonRepudiation\nbasicConstraints=CA:FALSE\n' >"$T/real/ext"
openssl x509 -req -in "$T/real/dr.csr" -CA "$T/real/ca.pem" -CAkey "$T/real/ca.key" \
  -CAcreateserial -days 30 -extfile "$T/real/ext" -out "$T/real/dr.pem" 2>/dev/null
cat "$T/real/dr.pem" "$T/real/ca.pem" >"$T/real/chain.pem"
check_eq "cert import with the wrong PIN is refused" 1 "$(printf 'wrong-pin\n' | status \
  "$HUREN" cert import --config "$cfg" --user dr-real --chain "$T/real/chain.pem" --key "$T/real/dr.p8")"
check "cert import takes the chain and key" sh -c "printf '%s\n' '$PIN' | '$HUREN' cert import \
  --config '$cfg' --user dr-real --chain '$T/real/chain.pem' --key '$T/real/dr.p8'"
check_eq "the imported root joins trust.pem" 2 "$(grep -c 'BEGIN CERTIFICATE' "$TRUST")"
sign dr-real "$T/p.json" >"$T/real.jws"
all_accept "$T/real.jws" EdDSA "a report signed with an imported key"

# --- RFC 3161: a real TSA (openssl ts -reply) behind http.server
start_tsa
printf '%s\n' "$PIN" | "$SIGN" --keys "$KEYS" --user dr-es256 --tsa "http://127.0.0.1:$tport/" \
  --tsr-out "$T/ts.der" "$T/p.json" >"$T/ts.jws"
check "the TSA granted a timestamp token" test -s "$T/ts.der"
cat "$TRUST" "$T/tsa/root.pem" >"$T/trust-and-tsa.pem"
out=$("$HUREN" verify "$T/ts.jws" --trust "$T/trust-and-tsa.pem" --tsr "$T/ts.der" || true)
check "huren verify --tsr: the token is of this JWS and its TSA chains" grep -q '^ok    timestamp: RFC 3161' <<<"$out"
check "huren verify --tsr: VERIFIED" grep -q '^VERIFIED$' <<<"$out"
check "openssl ts -verify agrees (imprint = SHA-256 of the compact JWS)" \
  openssl ts -verify -data <(tr -d '\n' <"$T/ts.jws") -in "$T/ts.der" -token_in -CAfile "$T/tsa/root.pem" \
  -untrusted "$T/tsa/tsa.pem"
out=$("$HUREN" verify "$T/es256.jws" --trust "$T/trust-and-tsa.pem" --tsr "$T/ts.der" || true)
check "the token of another JWS is refused" grep -q 'FAIL  timestamp: timestamp is of another document' <<<"$out"
out=$("$HUREN" verify "$T/ts.jws" --trust "$TRUST" --tsr "$T/ts.der" || true)
check "a TSA outside the trust anchors is refused" grep -q 'FAIL  timestamp: timestamp signature' <<<"$out"
check_eq "an unreachable TSA signs nothing" 1 "$(printf '%s\n' "$PIN" | status "$SIGN" --keys "$KEYS" \
  --user dr-es256 --tsa "http://127.0.0.1:$(free_port)/" --tsr-out "$T/none.der" "$T/p.json")"

check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
