#!/usr/bin/env bash
# The HL7 v2 parser (reports/hl7.c, decision 0036) against an independent
# implementation: the Debian python3-hl7 module parses the same ORU^R01
# messages (UTF-8, GB 18030, ISO 8859-1, other separators, CRLF/LF endings,
# repetitions, components, subcomponents, escapes) and every non-empty
# subcomponent must agree with what huren-hl7-dump prints. python3-hl7 only
# splits on CR and reads text, so it gets the message decoded with the codec
# MSH-18 names and its line ends made CR: exactly the tolerances under test.
source "$(dirname "$0")/lib.sh"

DUMP=$BUILD/huren-hl7-dump
PY=/usr/bin/python3
check "huren-hl7-dump built" test -x "$DUMP"
check "python3-hl7 installed (scripts/setup)" "$PY" -c 'import hl7'

mkdir -p "$T/msgs"
"$PY" - "$T/msgs" <<'EOF'
import sys
d = sys.argv[1]
def w(name, data):
    open(f"{d}/{name}", "wb").write(data)

oru = ("MSH|^~\\&|LIS|TOWN1^1.2.156.1^ISO|HUREN|COUNTY|20261203101500+0800||ORU^R01^ORU_R01|"
       "MSG0001|P|2.5.1|||||CHN|UNICODE UTF-8\r"
       "PID|1||P123^^^TOWN1&1.2.156.1&ISO^MR~110101198001010011^^^CHN^NI||张^三~ZHANG^SAN||"
       "19800101|M\r"
       "PV1|1|I|NEPH^201^3\r"
       "ORC|RE|PL1|FL1||CM\r"
       "OBR|1|PL1|FL1|CHEM7^Basic metabolic panel^L|||20261203090000|||||||||||||||"
       "20261203101000|||F\r"
       "OBX|1|NM|2823-3^Potassium^LN||6.8|mmol/L^mmol/L^UCUM|3.5-5.3|HH|||F|||20261203095000\r"
       "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F\r"
       "OBX|3|ST|NOTE^Comment^L||Hemolysed \\T\\ repeat\\F\\ called ward\\S\\7\\R\\A\\E\\B "
       "\\H\\urgent\\N\\ \\X0D0A\\next||||||F\r"
       "NTE|1|L|血钾危急值，已电话通知~second line\r"
       "SPM|1|||BLD&Blood&HL70487^^^SER&Serum&HL70487\r")
w("utf8.hl7", oru.encode("utf-8"))

gb = ("MSH|^~\\&|LIS|县医院|HUREN|COUNTY|20261203101500||ORU^R01|G0001|P|2.4|||||CHN|"
      "GB 18030-2000\r"
      "PID|1||P9^^^县医院^MR||张三^^^^^^L||19700505|F\r"
      "OBR|1||FL9|2823-3^血钾^LN\r"
      "OBX|1|NM|2823-3^血钾^LN||2.1|mmol/L|3.5-5.3|LL|||F\r"
      "OBX|2|ST|X^乗亅乛^L||乗\\F\\亅^𠀀||||||F\r")
w("gb18030.hl7", gb.encode("gb18030"))

l1 = ("MSH|^~\\&|LAB|KLINIKUM|HUREN|COUNTY|20261203||ORU^R01|L0001|P|2.3|||||DE|8859/1\r"
      "PID|1||4711||Müller^Jürgen||19600101|M\r"
      "OBX|1|ST|X^Bemerkung^L||Hämolyse, Probe wiederholen||||||F\r")
w("latin1.hl7", l1.encode("latin-1"))

seps = ("MSH#$*!@#LIS#TOWN1###20261203##ORU$R01#S0001#P#2.5\n"
        "PID#1##A1$$$T@1@ISO$MR*B2$$$T$NI##LI$SI\n"
        "OBX#1#ST#K$Potassium##a|b^c~d&e!F!x!S!y!T!z!R!w!E!##\n")
w("seps_lf.hl7", seps.encode("ascii"))

crlf = ("MSH|^~\\&|A|B|C|D|20261203||ORU^R01|C0001|P|2.3.1\r\n"
        "PID|1||7^^^B^MR\r\n"
        "OBX|1|NM|2160-0^Creatinine^LN||88|umol/L|59-104|N|||F\r\n")
w("crlf.hl7", crlf.encode("ascii"))
EOF

# python3-hl7's reading of a message as the same key/value map
cat > "$T/ref.py" <<'EOF'
import json, sys, hl7
path = sys.argv[1]
raw = open(path, "rb").read()
codec = {"UNICODE UTF-8": "utf-8", "GB 18030-2000": "gb18030", "8859/1": "latin-1"}
first = raw.split(b"\r")[0].split(b"\n")[0].decode("ascii", "replace")
fs = first[3]
msh = first.split(fs)
name = msh[17] if len(msh) > 17 else ""
text = raw.decode(codec.get(name, "ascii")).replace("\r\n", "\r").replace("\n", "\r")
m = hl7.parse(text)
amap = {"H": "", "N": "", ".br": "\n"}
vals = {}
for i, seg in enumerate(m):
    sname = str(seg[0])
    for f in range(3 if sname == "MSH" else 1, len(seg)):
        field = seg[f]
        for r, rep in enumerate(field):
            comps = [rep] if isinstance(rep, str) else list(rep)
            for c, comp in enumerate(comps, 1):
                subs = [comp] if isinstance(comp, str) else list(comp)
                for s, sub in enumerate(subs, 1):
                    v = m.unescape(str(sub), app_map=amap)
                    if v:
                        vals[f"{i}:{sname}-{f}.{r}.{c}.{s}"] = v
print(json.dumps({"ok": True, "values": vals}, sort_keys=True))
EOF

cat > "$T/cmp.py" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
if not a.get("ok"):
    print("huren refused it:", a); sys.exit(1)
va, vb = a["values"], b["values"]
bad = 0
for k in sorted(set(va) | set(vb)):
    if va.get(k) != vb.get(k):
        bad += 1
        print(f"  {k}: huren={va.get(k)!r} python3-hl7={vb.get(k)!r}")
if len(va) < 10:
    print("  too few values compared:", len(va)); bad += 1
print(f"  {len(va)} values compared, {bad} differ")
sys.exit(1 if bad else 0)
EOF

for f in utf8 gb18030 latin1 seps_lf crlf; do
  "$DUMP" "$T/msgs/$f.hl7" > "$T/$f.huren.json"
  "$PY" "$T/ref.py" "$T/msgs/$f.hl7" > "$T/$f.py.json"
  check "$f: every value equals python3-hl7's" "$PY" "$T/cmp.py" "$T/$f.huren.json" "$T/$f.py.json"
done

# the UTF-8 the GB 18030 message becomes, spot-checked
check_eq "GB 18030 PID-5 to UTF-8" "张三" \
  "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["values"]["1:PID-5.0.1.1"])' "$T/gb18030.huren.json")"
check_eq "GB 18030 OBX-3.2 to UTF-8" "血钾" \
  "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["values"]["3:OBX-3.0.2.1"])' "$T/gb18030.huren.json")"

# the same GB 18030 bytes declared UTF-8 are refused with AE 102, not misread
"$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d.replace(b"GB 18030-2000", b"UNICODE UTF-8"))' \
  "$T/msgs/gb18030.hl7" "$T/msgs/lie.hl7"
"$DUMP" "$T/msgs/lie.hl7" > "$T/lie.json"
check_eq "GB bytes declared UTF-8: AE 102" "False AE 102" \
  "$("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ok"], j["ack"], j["code"])' "$T/lie.json")"
# an unsupported version: AR 203 at MSH-12
printf 'MSH|^~\\&|A|B|C|D|1||ORU^R01|V1|P|2.7\rPID|1\r' > "$T/msgs/v27.hl7"
"$DUMP" "$T/msgs/v27.hl7" > "$T/v27.json"
check_eq "version 2.7: AR 203 MSH-12" "AR 203 MSH 12" \
  "$("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ack"], j["code"], j["seg"], j["field"])' "$T/v27.json")"

finish
