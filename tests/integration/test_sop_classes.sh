#!/usr/bin/env bash
# Storage SOP classes real modalities send (issue 8): KOS, GSPS, SEG, Enhanced
# CT, RT Plan, Breast Tomosynthesis and a private class go in with dcmsend and
# storescu -R, are acknowledged, indexed and come back byte for byte by C-MOVE
# and WADO-RS; with dicom.accept_unknown_storage false the private class is
# refused at negotiation (and by STOW-RS) while the standard ones still pass.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PRIVATE=1.2.826.0.1.3680043.9999.1

config() { # config NAME DICOM_PORT DEST_PORT ACCEPT_UNKNOWN
  mkdir -p "$T/$1"
  echo "$(free_port)" >"$T/$1/http_port"
  cat >"$T/$1/config.json" <<JSON
{
  "data_dir": "$T/$1/data",
  "log_level": "info",
  "http": {"listen": "127.0.0.1", "port": $(cat "$T/$1/http_port")},
  "hl7": {"listen": "127.0.0.1", "port": $(free_port)},
  "dicom": {"listen": "127.0.0.1", "port": $2, "ae_title": "HUREN", "accept_unknown_storage": $4},
  "hospitals": [
    {"id": "county", "name": "County", "level": "county", "ae_titles": ["COUNTY"], "addresses": ["127.0.0.1"]},
    {"id": "township1", "name": "Township 1", "level": "township", "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"],
     "destinations": [{"ae_title": "T1_WS", "host": "127.0.0.1", "port": $3}]}
  ]
}
JSON
  echo "$T/$1/config.json"
}

$PY "$SRC/tests/integration/sop_objects.py" "$T/obj" P801 >"$T/obj.list"
study=$(awk 'NR==1{print $2}' "$T/obj.list")
sop_of() { awk -v f="$T/obj/$1.dcm" '$1==f{print $4}' "$T/obj.list"; }

port=$(free_port)
pdest=$(free_port)
cfg=$(config on "$port" "$pdest" true)
printf '%s\n' 'tech1-password' | "$HUREN" user add tech1 --role technician --hospital township1 \
  --config "$cfg" >/dev/null
start_huren on "$cfg"
hp=$(http_port on)
wait_port "$hp" 30

# --- C-STORE: dcmsend (one association for all) and storescu
check "dcmsend sends KOS, GSPS, SEG, Enhanced CT, RT Plan, BTO and a private class" \
  dcmsend -aet TOWNSHIP1 -aec HUREN --no-uid-checks 127.0.0.1 "$port" \
  "$T/obj/kos.dcm" "$T/obj/gsps.dcm" "$T/obj/seg.dcm" "$T/obj/enhct.dcm" "$T/obj/rtplan.dcm" \
  "$T/obj/bto.dcm" "$T/obj/private.dcm" --create-report-file "$T/dcmsend.report"
check_eq "dcmsend: all 7 acknowledged with success" 7 \
  "$(grep -c 'Success' "$T/dcmsend.report" || true)"
for n in kos gsps seg enhct rtplan bto private; do
  cls=$(awk -v f="$T/obj/$n.dcm" '$1==f{print $5}' "$T/obj.list")
  check_eq "$n indexed with its SOP class" "$cls" \
    "$(rcli on HGET "hr:{$study}:i:$(sop_of "$n")" sop_class)"
done
check "storescu resends two of them (identical copies)" \
  storescu -R -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/obj/seg.dcm" "$T/obj/kos.dcm"
check_eq "7 objects on disk" 7 "$(count_objects on)"
check_eq "QIDO lists the 7 instances with their classes" \
  "$(awk '{print $5}' "$T/obj.list" | sort | tr '\n' ' ')" \
  "$(tok=$(curl -s -X POST "http://127.0.0.1:$hp/api/v1/login" -H 'Content-Type: application/json' \
      -d '{"user": "tech1", "password": "tech1-password"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
     echo "$tok" >"$T/token"
     curl -s -H "Authorization: Bearer $tok" "http://127.0.0.1:$hp/dicomweb/studies/$study/instances" |
       $PY -c 'import json,sys; print(" ".join(sorted(i["00080016"]["Value"][0] for i in json.load(sys.stdin))), end=" ")')"
tok=$(cat "$T/token")

# --- retrieval: C-MOVE to a storescp that takes any class, byte for byte
mkdir -p "$T/rx"
storescp --promiscuous -aet T1_WS +B -od "$T/rx" "$pdest" >"$T/rx.log" 2>&1 &
PIDS+=($!)
wait_port "$pdest"
check "movescu: the study (7 classes) moves to T1_WS" \
  movescu -aet TOWNSHIP1 -aec HUREN -aem T1_WS -S -k QueryRetrieveLevel=STUDY \
  -k StudyInstanceUID="$study" 127.0.0.1 "$port"
want=$(for f in "$T"/obj/*.dcm; do dataset_sha "$f"; done | sort | tr '\n' ' ')
got=$(for f in "$T"/rx/*; do dataset_sha "$f"; done | sort | tr '\n' ' ')
check_eq "the 7 data sets arrive byte for byte" "$want" "$got"
check_eq "WADO-RS returns the private-class instance" 200 \
  "$(curl -s -o "$T/wado.bin" -w '%{http_code}' -H "Authorization: Bearer $tok" \
     -H 'Accept: multipart/related; type="application/dicom"' \
     "http://127.0.0.1:$hp/dicomweb/studies/$study/series/$(awk -v f="$T/obj/private.dcm" '$1==f{print $3}' "$T/obj.list")/instances/$(sop_of private)")"
check "... and its bytes carry the private SOP class" grep -q "$PRIVATE" "$T/wado.bin"
check "graceful stop" stop_huren "$HUREN_PID"

# --- accept_unknown_storage false: the private class is refused at negotiation
port2=$(free_port)
cfg2=$(config off "$port2" "$(free_port)" false)
printf '%s\n' 'tech1-password' | "$HUREN" user add tech1 --role technician --hospital township1 \
  --config "$cfg2" >/dev/null
start_huren off "$cfg2"
hp2=$(http_port off)
wait_port "$hp2" 30
dcmsend -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port2" "$T/obj/private.dcm" >"$T/off.out" 2>&1 || true
check "dcmsend of the private class: no acceptable presentation context" \
  grep -qi "no acceptable presentation context" "$T/off.out"
check "huren accepted 0 contexts" grep -q "0 of 1 contexts accepted" "$T/off/huren.log"
check "standard classes still go in" storescu -R -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port2" \
  "$T/obj/kos.dcm" "$T/obj/seg.dcm" "$T/obj/enhct.dcm"
check_eq "3 objects on disk, not the private one" 3 "$(count_objects off)"
tok2=$(curl -s -X POST "http://127.0.0.1:$hp2/api/v1/login" -H 'Content-Type: application/json' \
  -d '{"user": "tech1", "password": "tech1-password"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
printf -- '--BND\r\nContent-Type: application/dicom\r\n\r\n' >"$T/stow.body"
cat "$T/obj/private.dcm" >>"$T/stow.body"
printf -- '\r\n--BND--\r\n' >>"$T/stow.body"
check_eq "STOW-RS of the private class: 409, refused 0122" "409 0122" \
  "$(code=$(curl -s -o "$T/stow.json" -w '%{http_code}' -H "Authorization: Bearer $tok2" \
      -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BND' \
      --data-binary @"$T/stow.body" "http://127.0.0.1:$hp2/dicomweb/studies")
     echo "$code $($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%04X" % d["00081198"]["Value"][0]["00081197"]["Value"][0])' "$T/stow.json")")"
check "graceful stop" stop_huren "$HUREN_PID"
finish
