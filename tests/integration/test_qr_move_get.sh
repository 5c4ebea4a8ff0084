#!/usr/bin/env bash
# C-MOVE and C-GET against a real huren with movescu, getscu and storescp
# destinations: study, series and image level; datasets arrive byte for byte;
# compressed objects (JPEG baseline/extended, RLE) reach a destination that
# accepts only uncompressed syntaxes decompressed by DCMTK, and as they are
# where accepted; JPEG 2000 without a J2K context fails with a warning;
# unknown and forbidden destinations are refused (A801); scope hides other
# hospitals' studies; an unreachable destination gives A702; C-CANCEL stops a
# move; a 200 MB object streams with bounded memory; audit records.
source "$(dirname "$0")/lib.sh"
P=/usr/lib/python3/dist-packages/pydicom/data/test_files

port=$(free_port)
p_county=$(free_port)
p_t1=$(free_port)
p_all=$(free_port)
p_down=$(free_port) # nothing listens here
mkdir -p "$T/mv" "$T/rx/county" "$T/rx/t1" "$T/rx/all"
cat >"$T/mv/config.json" <<JSON
{
  "data_dir": "$T/mv/data",
  "log_level": "info",
  "http": {"listen": "127.0.0.1", "port": $(free_port)},
  "hl7": {"listen": "127.0.0.1", "port": $(free_port)},
  "dicom": {"listen": "127.0.0.1", "port": $port, "ae_title": "HUREN", "idle_timeout_s": 30},
  "hospitals": [
    {"id": "county", "name": "County", "level": "county", "ae_titles": ["COUNTY_PACS"], "addresses": ["127.0.0.1"],
     "destinations": [{"ae_title": "COUNTY_WS", "host": "127.0.0.1", "port": $p_county}]},
    {"id": "township1", "name": "Township 1", "level": "township", "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"],
     "destinations": [{"ae_title": "T1_WS", "host": "127.0.0.1", "port": $p_t1},
                      {"ae_title": "T1_ALL", "host": "localhost", "port": $p_all},
                      {"ae_title": "T1_DOWN", "host": "127.0.0.1", "port": $p_down}]},
    {"id": "township2", "name": "Township 2", "level": "township", "ae_titles": ["TOWNSHIP2"], "addresses": ["127.0.0.1"],
     "destinations": [{"ae_title": "T2_WS", "host": "127.0.0.1", "port": $p_county}]}
  ]
}
JSON
start_huren mv "$T/mv/config.json"

# destinations: uncompressed only (storescp's default), and everything (+xa);
# +B keeps the received data set bytes as they came
storescp -d -aet COUNTY_WS +B -od "$T/rx/county" "$p_county" >"$T/rx/county.log" 2>&1 &
PIDS+=($!)
storescp -aet T1_WS +B -od "$T/rx/t1" "$p_t1" >"$T/rx/t1.log" 2>&1 &
PIDS+=($!)
storescp -aet T1_ALL +xa +B -od "$T/rx/all" "$p_all" >"$T/rx/all.log" 2>&1 &
PIDS+=($!)
wait_port "$p_county" && wait_port "$p_t1" && wait_port "$p_all"

"$GEN" --print-uids --out "$T/a" --series 2 --instances 3 --patient-id PA --seed 31 >"$T/a.uids"
"$GEN" --print-uids --out "$T/imp" --ts implicit --patient-id PI --seed 32 >"$T/imp.uids"
"$GEN" --print-uids --out "$T/many" --instances 100 --bytes 512 --patient-id PM --seed 33 >"$T/many.uids"
check "township1 stores a CT study and 100 small images" \
  storescu -aet TOWNSHIP1 -aec HUREN +sd +r 127.0.0.1 "$port" "$T/a" "$T/many"
check "... and an object in Implicit VR LE" storescu -xi -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/imp"/*
check "township1 stores JPEG baseline and RLE objects as they are" \
  storescu -R -xy -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$P/SC_rgb_jpeg_dcmtk.dcm"
check "... RLE" storescu -R -xr -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$P/SC_rgb_rle.dcm"
check "... JPEG extended (12 bit)" storescu -R -xx -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$P/JPEG-lossy.dcm"
check "... JPEG 2000" storescu -R -xv -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$P/MR_small_jp2klossless.dcm"

uid() { dcmdump -s +P "$2" "$1" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1; }
study_a=$(awk 'NR==1{print $1}' "$T/a.uids")
series_a1=$(awk 'NR==1{print $2}' "$T/a.uids")
sop_a1=$(awk 'NR==1{print $3}' "$T/a.uids")
sop_a2=$(awk 'NR==2{print $3}' "$T/a.uids")
sop_a5=$(awk 'NR==5{print $3}' "$T/a.uids")
study_imp=$(awk 'NR==1{print $1}' "$T/imp.uids")
study_many=$(awk 'NR==1{print $1}' "$T/many.uids")
study_sc=$(uid "$P/SC_rgb_rle.dcm" 0020,000D)
study_jpl=$(uid "$P/JPEG-lossy.dcm" 0020,000D)
study_j2k=$(uid "$P/MR_small_jp2klossless.dcm" 0020,000D)
sop_j2k=$(uid "$P/MR_small_jp2klossless.dcm" 0008,0018)

# move AE DEST keys... : movescu -d; sets STATUS (hex of the final response),
# DONE / FAILED (its counts); output in $T/move.out
move() {
  local ae=$1 dest=$2; shift 2
  local args=() k
  for k in "$@"; do args+=(-k "$k"); done
  movescu -d -S -aet "$ae" -aec HUREN -aem "$dest" "${args[@]}" 127.0.0.1 "$port" >"$T/move.out" 2>&1 || true
  STATUS=$(grep -a 'DIMSE Status' "$T/move.out" | tail -1 | sed -n 's/.*: 0x\([0-9a-f]*\).*/\1/p')
  DONE=$(grep -a 'Completed Suboperations' "$T/move.out" | tail -1 | sed -n 's/.*: *\([0-9a-z]*\)$/\1/p')
  FAILED=$(grep -a 'Failed Suboperations' "$T/move.out" | tail -1 | sed -n 's/.*: *\([0-9a-z]*\)$/\1/p')
}
# same_datasets DIR UIDFILE-or-files... : every received file's data set equals a source's
sources_sha() { for f in "$@"; do dataset_sha "$f"; done | sort; }
received_sha() { for f in "$1"/*; do [ -f "$f" ] && dataset_sha "$f"; done | sort; }
nfiles() { find "$1" -type f | wc -l; }

# ---- study, series, image level; byte-identical data sets
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "study move: final status success" 0000 "$STATUS"
check_eq "study move: 6 completed" 6 "$DONE"
check_eq "study move: 6 files at the destination" 6 "$(nfiles "$T/rx/t1")"
check_eq "study move: data sets byte-identical" "$(sources_sha "$T/a"/*)" "$(received_sha "$T/rx/t1")"
check_eq "pending responses before the final one" 6 "$(grep -ac 'Received Move Response [0-9]' "$T/move.out")"
rm -f "$T/rx/t1"/*

move TOWNSHIP1 T1_WS QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" SeriesInstanceUID="$series_a1"
check_eq "series move: 3 completed" "0000 3" "$STATUS $DONE"
check_eq "series move: 3 files" 3 "$(nfiles "$T/rx/t1")"
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_a" SeriesInstanceUID="$series_a1" \
  "SOPInstanceUID=$sop_a1\\$sop_a2"
check_eq "image move with a UID list: 2 completed" "0000 2" "$STATUS $DONE"
check_eq "image move: 2 files" 2 "$(nfiles "$T/rx/t1")"
move TOWNSHIP1 T1_WS QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_a" SeriesInstanceUID="$series_a1" \
  "SOPInstanceUID=$sop_a5"
check_eq "an instance of another series is not found under this one" "0000 0" "$STATUS $DONE"
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=IMAGE "SOPInstanceUID=$sop_a1"
check_eq "image move without the upper keys (looked up)" "0000 1" "$STATUS $DONE"
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID=1.2.3.4.5.6
check_eq "unknown study: success with no sub-operation" "0000 0" "$STATUS $DONE"
move TOWNSHIP1 T1_WS QueryRetrieveLevel=SERIES SeriesInstanceUID="$series_a1"
check_eq "series move without the study is refused" a900 "$STATUS"

rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_imp"
check_eq "implicit VR object moved" "0000 1" "$STATUS $DONE"
check_eq "implicit VR object arrives as stored (own context)" "$(sources_sha "$T/imp"/*)" "$(received_sha "$T/rx/t1")"
check_eq "... in implicit VR" 1.2.840.10008.1.2 "$(dcmdump -s -Un +P 0002,0010 "$T/rx/t1"/* | sed -n 's/.*\[\(.*\)\].*/\1/p')"

# ---- compressed objects
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_sc"
check_eq "JPEG baseline + RLE to an uncompressed-only destination" "0000 2" "$STATUS $DONE"
bad=0
for f in "$T/rx/t1"/*; do
  ts=$(dcmdump -s -Un +P 0002,0010 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  [ "$ts" = 1.2.840.10008.1.2.1 ] || { bad=1; echo "$f arrived in $ts"; }
  dcmdump -q "$f" >/dev/null 2>&1 || { bad=1; echo "dcmdump cannot read $f"; }
  rows=$(dcmdump -s +P 0028,0010 "$f" | awk '{print $3}'); cols=$(dcmdump -s +P 0028,0011 "$f" | awk '{print $3}')
  spp=$(dcmdump -s +P 0028,0002 "$f" | awk '{print $3}'); bits=$(dcmdump -s +P 0028,0100 "$f" | awk '{print $3}')
  len=$(dcmdump -s +P 7fe0,0010 "$f" | sed -n 's/.*# *\([0-9]*\),.*/\1/p')
  [ "$len" = $((rows * cols * spp * bits / 8)) ] || { bad=1; echo "$f: pixel data $len bytes, expected $((rows * cols * spp * bits / 8))"; }
done
check "both arrive decompressed (Explicit VR LE, native pixel data, readable)" test "$bad" = 0
check "huren logged the decompression" grep -q "decompressing to 1.2.840.10008.1.2.1" "$T/mv/huren.log"
check "no temp file of the decompression is left" test "$(find "$T/mv/data/tmp" -type f | wc -l)" = 0
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_jpl"
check_eq "12-bit JPEG extended decompressed" "0000 1" "$STATUS $DONE"
check_eq "... to Explicit VR LE" 1.2.840.10008.1.2.1 "$(dcmdump -s -Un +P 0002,0010 "$T/rx/t1"/* | sed -n 's/.*\[\(.*\)\].*/\1/p')"
move TOWNSHIP1 T1_ALL QueryRetrieveLevel=STUDY StudyInstanceUID="$study_sc"
check_eq "to a destination accepting JPEG and RLE (host name)" "0000 2" "$STATUS $DONE"
check_eq "compressed data sets arrive as stored" "$(sources_sha "$P/SC_rgb_rle.dcm" "$P/SC_rgb_jpeg_dcmtk.dcm")" \
  "$(received_sha "$T/rx/all")"
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_j2k"
check_eq "JPEG 2000 to an uncompressed-only destination: all failed (A702)" "a702 0 1" "$STATUS $DONE $FAILED"
check "the Failed SOP Instance UID List names it" grep -aq "FailedSOPInstanceUIDList\|$sop_j2k.*(0008,0058)\|(0008,0058).*$sop_j2k" "$T/move.out"
check "huren warned about it" grep -q "cannot send $sop_j2k" "$T/mv/huren.log"
check_eq "nothing arrived" 0 "$(nfiles "$T/rx/t1")"
# the same study with an uncompressed CT image added: one completed, one failed
"$GEN" --out "$T/addct" --patient-id PJ --seed 35 >/dev/null
dcmodify -nb -m "(0020,000D)=$study_j2k" "$T/addct"/*.dcm >/dev/null
check "a CT image joins the JPEG 2000 study" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/addct"/*.dcm
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_j2k"
check_eq "some sub-operations failed: B000, 1 completed, 1 failed" "b000 1 1" "$STATUS $DONE $FAILED"
check "the Failed SOP Instance UID List names only the JPEG 2000 image" bash -c \
  "grep -a '(0008,0058)' '$T/move.out' | grep -q '$sop_j2k' && ! grep -a '(0008,0058)' '$T/move.out' | grep -q '\\\\'"
check_eq "the CT image arrived" 1 "$(nfiles "$T/rx/t1")"
rm -f "$T/rx/t1"/*

# ---- destinations and scope (decision 0005)
move TOWNSHIP1 NOWHERE QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "unknown destination: A801" a801 "$STATUS"
move TOWNSHIP1 COUNTY_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "a township AE may not move to another hospital's destination" a801 "$STATUS"
check_eq "nothing reached that destination" 0 "$(nfiles "$T/rx/county")"
move COUNTY_PACS T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "a county AE may move to any destination" "0000 6" "$STATUS $DONE"
rm -f "$T/rx/t1"/*
move COUNTY_PACS COUNTY_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "county moves a township study to its own workstation" "0000 6" "$STATUS $DONE"
check "sub-operations carry the Move Originator AE title" grep -aq 'Move Originator AE Title *: COUNTY_PACS' "$T/rx/county.log"
check "... and Message ID" grep -aq 'Move Originator ID *: 1' "$T/rx/county.log"
move TOWNSHIP2 T2_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "another township's study is as if absent" "0000 0" "$STATUS $DONE"
check_eq "and nothing was sent" 6 "$(nfiles "$T/rx/county")"
move TOWNSHIP1 T1_DOWN QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a"
check_eq "unreachable destination: A702, all 6 failed" "a702 6" "$STATUS $FAILED"

# ---- C-CANCEL during a move
rm -f "$T/rx/t1"/*
movescu -d -S --cancel 2 -aet TOWNSHIP1 -aec HUREN -aem T1_WS -k QueryRetrieveLevel=STUDY \
  -k StudyInstanceUID="$study_many" 127.0.0.1 "$port" >"$T/cancel.out" 2>&1 || true
check "the final response after C-CANCEL is FE00" bash -c "grep -a 'DIMSE Status' '$T/cancel.out' | tail -1 | grep -q 0xfe00"
n=$(nfiles "$T/rx/t1")
check "fewer than 100 instances moved before the cancel took effect ($n)" test "$n" -ge 2 -a "$n" -lt 100
check "the cancel response counts the remaining ones" bash -c \
  "grep -a 'Remaining Suboperations' '$T/cancel.out' | tail -1 | grep -qv none"

# ---- C-GET on the same association
mkdir -p "$T/get1" "$T/get2" "$T/get3"
getscu -v -S +B -aet TOWNSHIP1 -aec HUREN -od "$T/get1" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study_a" \
  127.0.0.1 "$port" >"$T/get1.out" 2>&1 || true
check_eq "getscu retrieves the study (6 files)" 6 "$(nfiles "$T/get1")"
check_eq "C-GET data sets byte-identical" "$(sources_sha "$T/a"/*)" "$(received_sha "$T/get1")"
check "getscu reports 6 completed" grep -aq 'Number of Completed Suboperations : 6' "$T/get1.out"
getscu -S -aet TOWNSHIP1 -aec HUREN -od "$T/get2" -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$study_sc" \
  -k SeriesInstanceUID="$(uid "$P/SC_rgb_rle.dcm" 0020,000E)" 127.0.0.1 "$port" >"$T/get2.out" 2>&1 || true
check_eq "C-GET of compressed objects: decompressed for an uncompressed-only SCU" 2 "$(nfiles "$T/get2")"
check "... readable" bash -c "for f in '$T/get2'/*; do dcmdump -q \"\$f\" >/dev/null || exit 1; done"
getscu -S -aet TOWNSHIP2 -aec HUREN -od "$T/get3" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study_a" \
  127.0.0.1 "$port" >"$T/get3.out" 2>&1 || true
check_eq "township2 cannot C-GET township1's study" 0 "$(nfiles "$T/get3")"

# ---- a 200 MB object streams (memory stays bounded, bytes identical)
"$GEN" --out "$T/big" --size-total 209715200 --patient-id BIG --seed 34 >/dev/null
check "the 200 MB object is stored" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/big"/*
hwm() { awk '/VmHWM/{print $2}' "/proc/$HUREN_PID/status"; }
rss() { awk '/VmRSS/{print $2}' "/proc/$HUREN_PID/status"; }
before=$(rss)
rm -f "$T/rx/t1"/*
move TOWNSHIP1 T1_WS QueryRetrieveLevel=STUDY StudyInstanceUID="$(uid "$T/big"/* 0020,000D)"
check_eq "the 200 MB object is moved" "0000 1" "$STATUS $DONE"
check_eq "... byte for byte" "$(sources_sha "$T/big"/*)" "$(received_sha "$T/rx/t1")"
after=$(hwm)
check "huren's peak memory stayed well below the object size (rss before ${before} kB, peak ${after} kB)" \
  test $((after - before)) -lt 102400

# ---- audit
sleep 1.5
audit=$(cat "$T/mv/data/audit"/*.jsonl 2>/dev/null || true)
check "c-move audited per study with the destination and counts" \
  grep -q "\"action\":\"c-move\".*\"study\":\"$study_a\".*destination=T1_WS.*completed=6 failed=0.*\"outcome\":\"success\"" <<<"$audit"
check "refused destination audited as denied" grep -q '"action":"c-move".*NOWHERE.*"outcome":"denied"' <<<"$audit"
check "failed move audited" grep -q '"action":"c-move".*T1_DOWN.*"outcome":"failure"' <<<"$audit"
check "cancelled move audited" grep -q '"action":"c-move".*"outcome":"cancelled"' <<<"$audit"
check "c-get audited" grep -q "\"action\":\"c-get\".*completed=6.*\"outcome\":\"success\"" <<<"$audit"
check "the patient is recorded" grep -q '"action":"c-move".*"patient":"[^"]*PA"' <<<"$audit"
check "the audit chain verifies" "$HUREN" audit verify --config "$T/mv/config.json"

# ---- stopping huren while a move streams: the operation is detached, its
# destination association aborted, nothing leaks (ASan checks at exit)
rm -f "$T/rx/t1"/*
n0=$(grep -c 'T1_WS@.*associated' "$T/mv/huren.log")
movescu -S -aet TOWNSHIP1 -aec HUREN -aem T1_WS -k QueryRetrieveLevel=STUDY \
  -k StudyInstanceUID="$(uid "$T/big"/* 0020,000D)" 127.0.0.1 "$port" >"$T/stopped.out" 2>&1 &
mv_pid=$!
for _ in $(seq 1 200); do
  [ "$(grep -c 'T1_WS@.*associated' "$T/mv/huren.log")" -gt "$n0" ] && break
  sleep 0.02
done
check "graceful stop during a move exits 0" stop_huren "$HUREN_PID"
wait "$mv_pid" || true
check "the interrupted move was audited as aborted" grep -q '"action":"c-move".*"outcome":"aborted"' \
  "$T/mv/data/audit"/*.jsonl
finish
