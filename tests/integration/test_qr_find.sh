#!/usr/bin/env bash
# C-FIND against a real huren with findscu (Patient Root and Study Root):
# every level, wildcard, date range, UID lists, empty and universal matching,
# PN case rules, unsupported keys (FF01), hierarchical key errors, hospital
# scope per calling AE, GB18030 names answered in UTF-8, paging beyond one
# page, C-CANCEL, and one audit record per query.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
mkdir -p "$T/qf"
cat >"$T/qf/config.json" <<JSON
{
  "data_dir": "$T/qf/data",
  "log_level": "info",
  "http": {"listen": "127.0.0.1", "port": $(free_port)},
  "hl7": {"listen": "127.0.0.1", "port": $(free_port)},
  "dicom": {"listen": "127.0.0.1", "port": $port, "ae_title": "HUREN"},
  "hospitals": [
    {"id": "county", "name": "County", "level": "county", "ae_titles": ["COUNTY_PACS"], "addresses": ["127.0.0.1"]},
    {"id": "township1", "name": "Township 1", "level": "township", "ae_titles": ["TOWNSHIP1"], "addresses": ["127.0.0.1"]},
    {"id": "township2", "name": "Township 2", "level": "township", "ae_titles": ["TOWNSHIP2"], "addresses": ["127.0.0.1"]}
  ]
}
JSON
start_huren qf "$T/qf/config.json"

# township1: three 2024 studies of two Wang patients (CT 2x3, MR 1x2), a
# GB18030 patient in 2023, one 2025 study; township2: one Wang study in 2024
gen() { "$GEN" --print-uids "$@"; }
gen --out "$T/t1/a" --series 2 --instances 3 --patient-id WANG1 --patient-name 'Wang^Wei' \
  --study-date 20240110 --accession ACC-A --seed 11 >"$T/a.uids"
gen --out "$T/t1/b" --instances 2 --modality MR --patient-id WANG2 --patient-name 'Wang^Fang' \
  --study-date 20240620 --seed 12 >"$T/b.uids"
gen --out "$T/t1/c" --charset gb18030 --patient-id ZH1 --patient-name '张三^三' \
  --study-date 20231105 --seed 13 >"$T/c.uids"
gen --out "$T/t1/d" --patient-id LI1 --patient-name 'Li^Na' --study-date 20250102 --seed 14 >"$T/d.uids"
gen --out "$T/t1/e" --instances 250 --bytes 512 --patient-id MANY1 --patient-name 'Many^Images' \
  --study-date 20220202 --seed 15 >"$T/e.uids"
gen --out "$T/t2/a" --instances 2 --patient-id WANG3 --patient-name 'Wang^Jun' \
  --study-date 20240305 --seed 21 >"$T/t2a.uids"
check "township1 stores its studies" storescu -aet TOWNSHIP1 -aec HUREN +sd +r 127.0.0.1 "$port" "$T/t1"
check "township2 stores its study" storescu -aet TOWNSHIP2 -aec HUREN +sd +r 127.0.0.1 "$port" "$T/t2"

study_a=$(awk 'NR==1{print $1}' "$T/a.uids")
series_a1=$(awk 'NR==1{print $2}' "$T/a.uids")
series_a2=$(awk 'NR==4{print $2}' "$T/a.uids")
sop_a1=$(awk 'NR==1{print $3}' "$T/a.uids")
sop_a2=$(awk 'NR==2{print $3}' "$T/a.uids")
study_e=$(awk 'NR==1{print $1}' "$T/e.uids")
series_e=$(awk 'NR==1{print $2}' "$T/e.uids")
study_t2=$(awk 'NR==1{print $1}' "$T/t2a.uids")

# qfind AE MODEL(-P|-S) keys... -> prints the number of pending responses,
# then the final status word on a second line; the output is in $T/find.out
qfind() {
  local ae=$1 model=$2; shift 2
  local args=() k
  for k in "$@"; do args+=(-k "$k"); done
  echo q >>"$T/queries" # one audit record is due per query
  findscu -v "$model" -aet "$ae" -aec HUREN "${args[@]}" 127.0.0.1 "$port" >"$T/find.out" 2>&1 || true
  grep -ac 'Find Response: [0-9]* (Pending' "$T/find.out" || true
  sed -n 's/.*Received Final Find Response (\(.*\)).*/\1/p' "$T/find.out" | tr -d '\n'
}
matches() { qfind "$@" | head -1; }
final() { qfind "$@" | tail -1; }

# ---- STUDY level, Study Root
check_eq "universal matching: township1 sees its 5 studies" 5 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID)"
check_eq "final status Success" Success "$(final TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID)"
check_eq "wildcard PatientName=Wang*" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID PatientName=Wang*)"
check_eq "PN matching ignores case (wang*)" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=wang*)"
check_eq "PN single value, other case (WANG^WEI)" 1 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=WANG^WEI)"
check_eq "PN single value does not match a prefix (Wang)" 0 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=Wang)"
check_eq "'?' wildcard (Li^N?)" 1 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=Li^N?)"
check_eq "date range 2024" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyDate=20240101-20241231)"
check_eq "open date range from 2024" 3 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyDate=20240101-)"
check_eq "open date range up to 2023" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyDate=-20231231)"
check_eq "single date" 1 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyDate=20240620)"
check_eq "accession number" 1 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY AccessionNumber=ACC-A)"
check_eq "modalities in study" 1 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY ModalitiesInStudy=MR)"
check_eq "empty value is universal (PatientName=)" 5 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=)"
check_eq "'*' is universal" 5 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY PatientName=*)"
check_eq "study UID list" 2 "$(matches COUNTY_PACS -S QueryRetrieveLevel=STUDY "StudyInstanceUID=$study_a\\$study_t2")"
qfind TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a" PatientName \
  NumberOfStudyRelatedInstances NumberOfStudyRelatedSeries ModalitiesInStudy RetrieveAETitle >/dev/null
check "return keys carry the indexed values" grep -aq 'NumberOfStudyRelatedInstances' "$T/find.out"
check_eq "NumberOfStudyRelatedInstances" 6 "$(grep -a '(0020,1208)' "$T/find.out" | tail -1 | sed -n 's/.*IS \[\([0-9]*\) *\].*/\1/p')"
check_eq "NumberOfStudyRelatedSeries" 2 "$(grep -a '(0020,1206)' "$T/find.out" | tail -1 | sed -n 's/.*IS \[\([0-9]*\) *\].*/\1/p')"
check "RetrieveAETitle is ours" grep -aq '(0008,0054) AE \[HUREN' "$T/find.out"
check "SpecificCharacterSet ISO_IR 192 in responses" grep -aq '(0008,0005) CS \[ISO_IR 192\]' "$T/find.out"

out=$(qfind TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a" PatientComments=x)
check_eq "unsupported key: one match, FF01" 1 "$(head -1 <<<"$out")"
check "unsupported key answered with 'Pending: WarningUnsupportedOptionalKeys'" \
  grep -aq 'Pending: WarningUnsupportedOptionalKeys' "$T/find.out"
check "unsupported key returned empty" grep -aq '(0010,4000) LT (no value available)' "$T/find.out"

# ---- hospital scope (decision 0005)
check_eq "township2 sees only its own study" 1 "$(matches TOWNSHIP2 -S QueryRetrieveLevel=STUDY StudyInstanceUID)"
check_eq "township2 Wang* sees only Wang^Jun" 1 "$(matches TOWNSHIP2 -S QueryRetrieveLevel=STUDY PatientName=Wang*)"
check_eq "township2 cannot find township1's study by UID" 0 \
  "$(matches TOWNSHIP2 -S QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a")"
check_eq "township2 cannot list township1's series" 0 \
  "$(matches TOWNSHIP2 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" SeriesInstanceUID)"
check_eq "county PACS sees all 6 studies" 6 "$(matches COUNTY_PACS -S QueryRetrieveLevel=STUDY StudyInstanceUID)"
check_eq "county PACS: Wang* in 2024 across hospitals" 3 \
  "$(matches COUNTY_PACS -S QueryRetrieveLevel=STUDY PatientName=Wang* StudyDate=20240101-20241231)"

# ---- PATIENT level (Patient Root only)
check_eq "PATIENT level: township1's 5 patients" 5 "$(matches TOWNSHIP1 -P QueryRetrieveLevel=PATIENT PatientID)"
check_eq "PATIENT level Wang*" 2 "$(matches TOWNSHIP1 -P QueryRetrieveLevel=PATIENT PatientID PatientName=Wang*)"
check_eq "county sees 6 patients" 6 "$(matches COUNTY_PACS -P QueryRetrieveLevel=PATIENT PatientID)"
qfind TOWNSHIP1 -P QueryRetrieveLevel=PATIENT PatientID=WANG1 NumberOfPatientRelatedStudies >/dev/null
check_eq "NumberOfPatientRelatedStudies" 1 "$(grep -a '(0020,1200)' "$T/find.out" | tail -1 | sed -n 's/.*IS \[\([0-9]*\) *\].*/\1/p')"
check_eq "Study Root refuses PATIENT level" "Error: DataSetDoesNotMatchSOPClass" \
  "$(final TOWNSHIP1 -S QueryRetrieveLevel=PATIENT PatientID)"
check_eq "Patient Root STUDY level with the Patient ID" 1 \
  "$(matches TOWNSHIP1 -P QueryRetrieveLevel=STUDY PatientID=WANG1 StudyInstanceUID)"
check_eq "Patient Root STUDY level without a Patient ID is refused" "Error: DataSetDoesNotMatchSOPClass" \
  "$(final TOWNSHIP1 -P QueryRetrieveLevel=STUDY StudyInstanceUID)"
check_eq "Patient Root SERIES level (patient and study)" 2 \
  "$(matches TOWNSHIP1 -P QueryRetrieveLevel=SERIES PatientID=WANG1 StudyInstanceUID="$study_a" SeriesInstanceUID)"
check_eq "Patient Root SERIES level: the study is not that patient's" 0 \
  "$(matches TOWNSHIP1 -P QueryRetrieveLevel=SERIES PatientID=WANG2 StudyInstanceUID="$study_a" SeriesInstanceUID)"
qfind TOWNSHIP1 -P QueryRetrieveLevel=SERIES PatientID=WANG1 StudyInstanceUID="$study_a" SeriesInstanceUID >/dev/null
check "Patient ID echoed at SERIES level" grep -aq '(0010,0020) LO \[WANG1' "$T/find.out"

# ---- SERIES and IMAGE levels
check_eq "SERIES level" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" SeriesInstanceUID Modality)"
check_eq "SERIES level, Modality=CT" 2 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" Modality=CT)"
check_eq "SERIES level, Modality=MR" 0 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" Modality=MR)"
check_eq "SERIES level UID list" 2 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" "SeriesInstanceUID=$series_a1\\$series_a2")"
check_eq "SERIES level UID list, one unknown" 1 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=SERIES StudyInstanceUID="$study_a" "SeriesInstanceUID=$series_a1\\1.2.3.4")"
check_eq "SERIES level without the Study UID is refused" "Error: DataSetDoesNotMatchSOPClass" \
  "$(final TOWNSHIP1 -S QueryRetrieveLevel=SERIES SeriesInstanceUID)"
echo q >>"$T/queries"
findscu -d -S -aet TOWNSHIP1 -aec HUREN -k QueryRetrieveLevel=SERIES -k SeriesInstanceUID 127.0.0.1 "$port" \
  >"$T/refused.out" 2>&1 || true
check "the refusal carries an error comment" grep -aq 'SERIES level needs the Study Instance UID.*ErrorComment' "$T/refused.out"
check_eq "IMAGE level" 3 "$(matches TOWNSHIP1 -S QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_a" SeriesInstanceUID="$series_a1" SOPInstanceUID InstanceNumber)"
check_eq "IMAGE level SOP UID list" 2 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_a" SeriesInstanceUID="$series_a1" "SOPInstanceUID=$sop_a1\\$sop_a2")"
check_eq "IMAGE level without the Series UID is refused" "Error: DataSetDoesNotMatchSOPClass" \
  "$(final TOWNSHIP1 -S QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_a" SOPInstanceUID)"
check_eq "unknown level is refused" "Error: DataSetDoesNotMatchSOPClass" \
  "$(final TOWNSHIP1 -S QueryRetrieveLevel=FRAME StudyInstanceUID)"

# ---- character sets: GB18030 stored, UTF-8 answered; GB18030 keys converted
echo q >>"$T/queries"
mkdir -p "$T/rsp" && (cd "$T/rsp" && findscu -S -X -aet TOWNSHIP1 -aec HUREN -k QueryRetrieveLevel=STUDY \
  -k PatientID=ZH1 -k PatientName 127.0.0.1 "$port" >/dev/null 2>&1)
check "findscu -X wrote the response" test -f "$T/rsp/rsp0001.dcm"
check_eq "GB18030 name answered in UTF-8" "张三^三" \
  "$(dcmdump +P 0010,0010 "$T/rsp/rsp0001.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')"
check_eq "response declares ISO_IR 192" "ISO_IR 192" \
  "$(dcmdump +P 0008,0005 "$T/rsp/rsp0001.dcm" | sed -n 's/.*\[\(.*\)\].*/\1/p')"
gbkey=$(printf '张*' | iconv -f UTF-8 -t GB18030)
check_eq "GB18030 matching key converted (张*)" 1 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY SpecificCharacterSet=GB18030 "PatientName=$gbkey")"
check_eq "UTF-8 matching key (张*)" 1 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY "SpecificCharacterSet=ISO_IR 192" "PatientName=张*")"

# ---- several pages (250 > 100 per page) and C-CANCEL
check_eq "250 images over three pages" 250 \
  "$(matches TOWNSHIP1 -S QueryRetrieveLevel=IMAGE StudyInstanceUID="$study_e" SeriesInstanceUID="$series_e" SOPInstanceUID)"
st=0
echo q >>"$T/queries"
findscu -d -S --cancel 3 -aet TOWNSHIP1 -aec HUREN -k QueryRetrieveLevel=IMAGE -k StudyInstanceUID="$study_e" \
  -k SeriesInstanceUID="$series_e" -k SOPInstanceUID 127.0.0.1 "$port" >"$T/cancel.out" 2>&1 || st=$?
check_eq "findscu --cancel succeeds" 0 "$st"
check "the final response after C-CANCEL is FE00 (Cancel)" grep -aqi 'DIMSE Status *: 0xfe00' "$T/cancel.out"
n=$(grep -ac 'Received Find Response [0-9]' "$T/cancel.out" || true)
check "cancelled before all 250 responses ($n)" test "$n" -ge 3 -a "$n" -lt 250
check "huren logged the C-CANCEL" grep -q "C-CANCEL-RQ" "$T/qf/huren.log"
check "an association after the cancel works" test "$(matches TOWNSHIP1 -S QueryRetrieveLevel=STUDY StudyInstanceUID="$study_a")" = 1

# ---- audit: one record per query with actor, role, hospital, outcome
sleep 1.5 # the audit log is flushed within a second
audit=$(cat "$T/qf/data/audit"/*.jsonl 2>/dev/null || true)
nfind=$(grep -c '"action":"c-find"' <<<"$audit" || true)
check_eq "exactly one c-find audit record per query" "$(wc -l <"$T/queries")" "$nfind"
check "audit: calling AE, role and hospital" grep -q '"actor":"TOWNSHIP2".*"hospital":"township2"' <<<"$audit"
check "audit: role dicom-peer" grep -q '"action":"c-find".*"role":"dicom-peer"\|"role":"dicom-peer".*"action":"c-find"' <<<"$audit"
check "audit: keys and match count in the detail" grep -q 'Wang\*.*matches=2' <<<"$audit"
check "audit: the cancelled query" grep -q '"outcome":"cancelled"' <<<"$audit"
check "audit: a refused query is a failure" grep -q '"outcome":"failure"' <<<"$audit"
check "the audit chain verifies" "$HUREN" audit verify --config "$T/qf/config.json"

check "graceful stop exits 0" stop_huren "$HUREN_PID"
check "no warning about leaked handles" bash -c "! grep -q 'handles still open' '$T/qf/huren.log'"
finish
