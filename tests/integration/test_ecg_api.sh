#!/usr/bin/env bash
# GET /api/v1/ecg/{instance} (decision 0038) with a real huren, storescu,
# curl and pydicom: pydicom's waveform_ecg.dcm and a generated 12-lead ECG
# (chest pain) stored by a township; the JSON's leads and samples equal
# pydicom's waveform_array() (in uV, 0.1 uV rounding); both land on the ECG
# center's worklist, the chest-pain one stat at the top; the read is
# audited. Hostile: another township's technician and the imaging reader
# 404 (like absent), no token 401, an expired token 401, garbage ids 400,
# an unknown UID 404, a CT instance 415.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
FIX="$HUREN_SOURCE_DIR/tests/tools/ecg_fixture.py"
PYECG=/usr/lib/python3/dist-packages/pydicom/data/test_files/waveform_ecg.dcm

port=$(free_port)
cfg=$(write_config ea "$port")
U="http://127.0.0.1:$(http_port ea)"
adduser() { add_user "$cfg" "$@"; }
adduser recg 'recg-password-1' reader county ecg
adduser rimg 'rimg-password-1' reader county imaging
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
start_huren ea "$cfg"
wait_port "$(http_port ea)" 30
login() { login_token "$U" "$1" "$1-password-1"; }
RE=$(login recg); RI=$(login rimg); T1=$(login tech1); T2=$(login tech2)
check "four logins" test -n "$RE" -a -n "$RI" -a -n "$T1" -a -n "$T2"

mkdir -p "$T/in" "$T/ct"
cp "$PYECG" "$T/in/pydicom_ecg.dcm"
check "generate a chest-pain 12-lead ECG (16-bit + 8-bit groups)" \
  $PY "$FIX" gen "$T/in/chest.dcm" --procedure "胸痛 chest pain" --patient-id EA-CHEST
check "generate an implicit VR ECG whose group declares more samples than its data" \
  $PY "$FIX" gen "$T/in/lie.dcm" --implicit --lie samples --patient-id EA-LIE
check "... and one whose group declares 13 channels for 12 definitions" \
  $PY "$FIX" gen "$T/in/lie2.dcm" --lie channels --patient-id EA-LIE2
"$GEN" --out "$T/ct" --modality CT --instances 1 --bytes 2048 --patient-id EA-CT --seed 71 >/dev/null
check "township1 stores the four ECGs and a CT" \
  storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/in/pydicom_ecg.dcm" "$T/in/chest.dcm" "$T/in/lie.dcm" "$T/in/lie2.dcm" "$T"/ct/*.dcm
tag() { dcmdump +P "$1" "$2" | head -1 | sed -n 's/.*\[\(.*\)\].*/\1/p'; }
SOP1=$(tag 0008,0018 "$T/in/pydicom_ecg.dcm"); ST1=$(tag 0020,000D "$T/in/pydicom_ecg.dcm")
SOP2=$(tag 0008,0018 "$T/in/chest.dcm"); ST2=$(tag 0020,000D "$T/in/chest.dcm")
LIESOP=$(tag 0008,0018 "$T/in/lie.dcm"); LIE2SOP=$(tag 0008,0018 "$T/in/lie2.dcm")
CTSOP=$(tag 0008,0018 "$(ls "$T"/ct/*.dcm | head -1)")

req() { # OUT TOKEN URL -> status
  curl -s -o "$1" -w '%{http_code}' ${2:+-H "Authorization: Bearer $2"} "$U$3"
}
# ours vs pydicom: every group, lead code, sample (|diff| <= 0.1 uV), measurements, text
same() { # OURS.json FILE.dcm
  $PY "$FIX" dump "$2" >"$T/py.json" &&
    $PY - "$1" "$T/py.json" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
assert o["instance"] == p["instance"], (o["instance"], p["instance"])
assert len(o["groups"]) == len(p["groups"])
n = 0
for a, b in zip(o["groups"], p["groups"]):
    assert a["label"] == b["label"] and a["samples"] == b["samples"]
    assert abs(a["sampling_frequency"] - b["sampling_frequency"]) < 1e-9
    assert [c["lead"] for c in a["channels"]] == ["I", "II", "III", "aVR", "aVL", "aVF",
                                                  "V1", "V2", "V3", "V4", "V5", "V6"]
    for x, y in zip(a["channels"], b["channels"]):
        assert x["code"]["value"] == y["code"] and x["units"] == "uV"
        assert len(x["data"]) == len(y["data"]) == a["samples"]
        for u, v in zip(x["data"], y["data"]):
            assert abs(u - v) <= 0.1 + 1e-6, (u, v)
            n += 1
assert [(m["name"], m["value"], m["unit"]) for m in o["measurements"]] == \
       [(m["name"], m["value"], m["unit"]) for m in p["measurements"]]
assert o["interpretation"] == p["interpretation"]
assert n == sum(g["samples"] * len(g["channels"]) for g in p["groups"]) > 60000, n
EOF
}
check_eq "the ECG reader reads pydicom's ECG: 200" 200 "$(req "$T/e1.json" "$RE" "/api/v1/ecg/$SOP1")"
check "... equal to pydicom's waveform_array (2 groups x 12 leads)" same "$T/e1.json" "$T/in/pydicom_ecg.dcm"
check_eq "... with study, SOP class, acquisition time, 9 measurements" \
  "$ST1 1.2.840.10008.5.1.4.1.1.9.1.1 2013-01-25T10:59:19 9" \
  "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["study"], d["sop_class"], d["acquired"], len(d["measurements"]))' "$T/e1.json")"
tt=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' -H "Authorization: Bearer $RE" "$U/api/v1/ecg/$SOP1")
echo "# measured: GET /api/v1/ecg of pydicom's ECG (2 groups, 134400 samples): ${tt% *} s, ${tt#* } bytes (this build)"
check_eq "the generated chest-pain ECG: 200" 200 "$(req "$T/e2.json" "$RE" "/api/v1/ecg/$SOP2")"
check "... equal to pydicom's (16-bit uV group and 8-bit mV group in uV)" same "$T/e2.json" "$T/in/chest.dcm"
check_eq "... patient name, Chinese interpretation" "王芳|窦性心律 正常心电图" \
  "$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["patient"]["name"] + "|" + d["interpretation"][1])' "$T/e2.json")"
check_eq "the sending township's technician reads it too: 200" 200 "$(req "$T/e.json" "$T1" "/api/v1/ecg/$SOP2")"

# ---- worklist: all three on the ECG center's list, the chest pain one stat first ----
items() {
  req "$T/wl.json" "$RE" /api/v1/worklists/ecg >/dev/null
  $PY -c 'import json,sys; print(" ".join(i["study"] + ":" + i["priority"] for i in json.load(open(sys.argv[1]))["items"]))' "$T/wl.json"
}
for _ in $(seq 1 40); do
  [ "$(items | wc -w)" = 4 ] && break
  sleep 0.5
done
check_eq "the chest-pain ECG routed to ecg, stat" "ecg stat" \
  "$(rcli ea HGET "hr:wl:{$ST2}" center) $(rcli ea HGET "hr:wl:{$ST2}" priority)"
check_eq "the ECG worklist: four items, the stat chest-pain ECG at the top, pydicom's routine" \
  "4 $ST2:stat routine" "$(items | wc -w) $(items | cut -d' ' -f1) $(items | tr ' ' '\n' | grep "^$ST1:" | cut -d: -f2)"


# ---- hostile ----
check_eq "another township's technician: 404 (like absent)" 404 "$(req "$T/e.json" "$T2" "/api/v1/ecg/$SOP2")"
check_eq "... the same as an unknown instance" 404 "$(req "$T/e.json" "$T2" "/api/v1/ecg/1.2.3.4.5.6.7.8")"
check_eq "the imaging reader (ECG routed elsewhere): 404" 404 "$(req "$T/e.json" "$RI" "/api/v1/ecg/$SOP1")"
check_eq "no token: 401" 401 "$(req "$T/e.json" "" "/api/v1/ecg/$SOP1")"
check_eq "a forged token: 401" 401 "$(req "$T/e.json" "eyJhbGciOiJub25lIn0.e30.x" "/api/v1/ecg/$SOP1")"
check_eq "garbage id: 400" 400 "$(req "$T/e.json" "$RE" "/api/v1/ecg/not-a-uid")"
check_eq "an id of 65 digits: 400" 400 "$(req "$T/e.json" "$RE" "/api/v1/ecg/1.$(printf '2%.0s' $(seq 1 63))")"
check_eq "an escaped traversal: 400 or 404" 1 \
  "$(c=$(req "$T/e.json" "$RE" "/api/v1/ecg/..%2F..%2Fetc%2Fpasswd"); [ "$c" = 400 ] || [ "$c" = 404 ]; echo $((1 - $?)))"
check_eq "a CT instance (the imaging reader may see it): 415" "415 not_waveform" \
  "$(req "$T/e.json" "$RI" "/api/v1/ecg/$CTSOP") $($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$T/e.json")"
check_eq "the lying ECG: 422 bad_waveform, saying why" "422 bad_waveform True" \
  "$(req "$T/e.json" "$RE" "/api/v1/ecg/$LIESOP") $($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["error"], "Waveform Data" in d["detail"])' "$T/e.json")"
check_eq "the 13-channel ECG: 422 bad_waveform (not 415: it is a waveform)" "422 bad_waveform True" \
  "$(req "$T/e.json" "$RE" "/api/v1/ecg/$LIE2SOP") $($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["error"], "channel definitions" in d["detail"])' "$T/e.json")"
check_eq "the ECG reader asking for that CT: 404" 404 "$(req "$T/e.json" "$RE" "/api/v1/ecg/$CTSOP")"
check_eq "POST: 405 or 404" 1 \
  "$(c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $RE" "$U/api/v1/ecg/$SOP1"); [ "$c" = 405 ] || [ "$c" = 404 ]; echo $((1 - $?)))"
# ---- audited ----
check "the reads are in the audit log as ecg, with the study" \
  bash -c "grep -h '\"ecg\"' '$T/ea/data'/audit/* | grep '\"outcome\":\"success\"' | grep -q '$ST2'"
check "... and the refusal of the other township" \
  bash -c "grep -h '\"ecg\"' '$T/ea/data'/audit/* | grep -q '\"outcome\":\"denied\"'"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
