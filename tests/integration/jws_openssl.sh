#!/usr/bin/env bash
# jws_openssl.sh FILE.jws TRUST.pem WORKDIR: verifies a compact JWS of huren
# with the openssl command line only (no huren code): the signature with the
# key of the x5c leaf (ES256: R||S made DER with asn1parse, then dgst -sha256;
# EdDSA: pkeyutl -rawin; SM2: pkeyutl -rawin -digest sm3 with the
# distinguishing ID 1234567812345678), then the chain with `openssl verify`
# at the signing time (iat). Exit 0 only when both pass. Prints one line.
set -u
jws=$1 trust=$2 w=$3
mkdir -p "$w"
b64u() { local s; s=$(tr -- '-_' '+/'); while (( ${#s} % 4 )); do s="$s="; done; printf '%s' "$s" | base64 -d; }
IFS=. read -r h p s rest < "$jws"
if [ -z "$s" ] || [ -n "${rest:-}" ]; then echo "openssl: not a compact JWS"; exit 1; fi
printf '%s.%s' "$h" "$p" > "$w/input"
printf '%s' "$s" | b64u > "$w/sig.raw" 2>/dev/null || { echo "openssl: bad signature base64"; exit 1; }
printf '%s' "$h" | b64u > "$w/header.json" 2>/dev/null || { echo "openssl: bad header base64"; exit 1; }
# the header's alg, iat and x5c certificates (DER files c0.der, c1.der, ...)
meta=$(/usr/bin/python3 - "$w" <<'PY'
import base64, json, sys
w = sys.argv[1]
h = json.load(open(w + "/header.json"))
for i, c in enumerate(h["x5c"]):
    open("%s/c%d.der" % (w, i), "wb").write(base64.b64decode(c, validate=True))
print(h["alg"], int(h["iat"]), len(h["x5c"]))
PY
) || { echo "openssl: header is not JSON with alg, iat, x5c"; exit 1; }
read -r alg iat n <<<"$meta"
: > "$w/untrusted.pem"
for ((i = 0; i < n; i++)); do
  openssl x509 -inform DER -in "$w/c$i.der" -out "$w/c$i.pem" 2>/dev/null || { echo "openssl: x5c[$i] not a certificate"; exit 1; }
  [ $i -gt 0 ] && cat "$w/c$i.pem" >> "$w/untrusted.pem"
done
openssl x509 -in "$w/c0.pem" -pubkey -noout > "$w/pub.pem" 2>/dev/null || { echo "openssl: no public key in x5c[0]"; exit 1; }
to_der() {
  local hex
  hex=$(od -An -v -tx1 "$w/sig.raw" | tr -d ' \n')
  [ ${#hex} -eq 128 ] || return 1
  printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${hex:0:64}" "${hex:64:64}" > "$w/sig.cnf"
  openssl asn1parse -genconf "$w/sig.cnf" -out "$w/sig.der" > /dev/null
}
case $alg in
ES256) to_der && openssl dgst -sha256 -verify "$w/pub.pem" -signature "$w/sig.der" "$w/input" > "$w/sig.out" 2>&1 ;;
EdDSA) openssl pkeyutl -verify -pubin -inkey "$w/pub.pem" -rawin -in "$w/input" -sigfile "$w/sig.raw" > "$w/sig.out" 2>&1 ;;
SM2) to_der && openssl pkeyutl -verify -pubin -inkey "$w/pub.pem" -rawin -digest sm3 \
       -pkeyopt distid:1234567812345678 -in "$w/input" -sigfile "$w/sig.der" > "$w/sig.out" 2>&1 ;;
*) echo "openssl: alg $alg refused"; exit 1 ;;
esac
if [ $? -ne 0 ]; then echo "openssl: $alg signature does not verify"; exit 1; fi
# SM2-signed certificates need the same ID for their own signatures
vfy=()
if openssl x509 -in "$w/c0.pem" -noout -text | grep -q 'Signature Algorithm: SM2-with-SM3'; then
  vfy=(-vfyopt distid:1234567812345678)
fi
unt=()
[ -s "$w/untrusted.pem" ] && unt=(-untrusted "$w/untrusted.pem")
if ! openssl verify "${vfy[@]}" -attime "$iat" -CAfile "$trust" "${unt[@]}" "$w/c0.pem" > "$w/chain.out" 2>&1; then
  echo "openssl: chain does not verify: $(grep -m1 '^error' "$w/chain.out")"
  exit 1
fi
echo "openssl: $alg signature and chain ok"
