#!/usr/bin/env bash
# GB18030 names (declared, and mislabelled as ISO_IR 100) reach the index as
# UTF-8 while the stored file keeps its bytes; bad configurations fail clearly.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config cs "$port")
start_huren cs "$cfg"

"$GEN" --out "$T/gb" --charset gb18030 --patient-name "张三^三" --patient-id GB1 --seed 51 >/dev/null
"$GEN" --out "$T/mis" --charset gb18030-mislabelled --patient-name "王^小明" --patient-id GB2 --seed 52 >/dev/null
"$GEN" --out "$T/lat" --charset latin1 --patient-name "Buc^Jérôme" --patient-id L1 --seed 53 >/dev/null
check "send GB18030, mislabelled and Latin-1 objects" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/gb" "$T/mis" "$T/lat"

name_of() { redis-cli -s "$T/cs/data/redis/redis.sock" --raw HGET "hr:pt:TOWNSHIP1|$1" name; }
check_eq "GB18030 name indexed as UTF-8" "张三^三" "$(name_of GB1)"
check_eq "mislabelled GB18030 name detected and converted" "王^小明" "$(name_of GB2)"
check_eq "Latin-1 name stays Latin-1" "Buc^Jérôme" "$(name_of L1)"
study=$(dcmdump +P 0020,000D "$T/mis"/* | sed -n 's/.*\[\(.*\)\].*/\1/p')
check_eq "the guess is recorded" 1 "$(rcli cs HGET "hr:{$study}:st" charset_guessed)"
f=$(ls "$T/gb"/*)
sha=$(dataset_sha "$f")
check "stored file keeps the original GB18030 bytes" cmp -s <(tail -c +1 "$f" | python3 -c 'import sys,struct; b=sys.stdin.buffer.read(); g=struct.unpack("<I",b[140:144])[0]; sys.stdout.buffer.write(b[144+g:])') <(python3 -c 'import sys,struct; b=open(sys.argv[1],"rb").read(); g=struct.unpack("<I",b[140:144])[0]; sys.stdout.buffer.write(b[144+g:])' "$T/cs/data/objects/${sha:0:2}/${sha:2:2}/$sha")
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# --- configuration errors: which key, why, non-zero exit
bad() { # bad "description" 'json' 'expected message part'
  printf '%s' "$2" >"$T/bad.json"
  local out st=0
  out=$("$HUREN" serve --config "$T/bad.json" 2>&1) || st=$?
  if [ "$st" -ne 0 ] && grep -qF -- "$3" <<<"$out"; then pass "$1"; else fail "$1 (exit $st): $out"; fi
}
bad "unknown key" '{"dicom": {"prot": 1}}' "dicom.prot: unknown key"
bad "port out of range" '{"dicom": {"port": 70000}}' "dicom.port: 70000 is outside 1..65535"
bad "port of the wrong type" '{"http": {"port": "80"}}' "http.port: must be an integer"
bad "invalid JSON" '{"dicom": ' "line 1"
bad "AE title too long" '{"dicom": {"ae_title": "ABCDEFGHIJKLMNOPQ"}}' "dicom.ae_title"
bad "bad address" '{"hospitals": [{"id": "h1", "ae_titles": ["X"], "addresses": ["300.1.1.1"]}], "dicom": {"hospital": "h1"}}' "hospitals[0].addresses[0]"
bad "AE without addresses" '{"hospitals": [{"id": "h1", "ae_titles": ["X"]}], "dicom": {"hospital": "h1"}}' "hospitals[0].addresses: required"
bad "duplicate AE title" '{"hospitals": [{"id": "a", "ae_titles": ["X"], "addresses": ["127.0.0.1"]}, {"id": "b", "ae_titles": ["X"], "addresses": ["127.0.0.1"]}], "dicom": {"hospital": "a"}}' "belongs to"
bad "hub hospital unknown" '{"dicom": {"hospital": "nowhere"}}' "dicom.hospital"
bad "appendfsync value" '{"redis": {"appendfsync": "never"}}' "redis.appendfsync"
bad "missing file" '' "line"
check "the embedded defaults are valid" "$HUREN" check-config
finish
