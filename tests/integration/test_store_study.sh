#!/usr/bin/env bash
# storescu and dcmsend send a generated multi-series study and a multi-frame
# object; every instance is durable, byte-identical and indexed; a resend is
# idempotent; a changed object with the same UID keeps both versions.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config store "$port")
start_huren store "$cfg"

"$GEN" --out "$T/study" --studies 1 --series 3 --instances 4 --bytes 32768 --modality CT \
  --patient-id P001 --accession ACC001 --seed 11 >/dev/null
"$GEN" --out "$T/mf" --modality US --frames 12 --bytes 20000 --patient-id P001 --seed 12 >/dev/null
n_study=$(ls "$T/study" | wc -l)
check_eq "generator wrote 12 files" 12 "$n_study"

check "storescu sends the study" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/study"
check "a user identity sub-item (-usr/-pwd) is ignored gracefully" \
  storescu -aet TOWNSHIP1 -aec HUREN -usr reader1 -pwd secret 127.0.0.1 "$port" "$(ls "$T/study"/* | head -1)"
check "dcmsend sends the multi-frame object" dcmsend -aet TOWNSHIP1 -aec HUREN --scan-directories 127.0.0.1 "$port" "$T/mf"

check_eq "13 objects on disk" 13 "$(count_objects store)"
check_eq "no temp files left" 0 "$(count_tmp store)"

f=$(ls "$T/study"/* | head -1)
study=$(dcmdump +P 0020,000D "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check_eq "study indexed with 12 instances" 12 "$(rcli store HGET "hr:{$study}:st" instances)"
check_eq "study has 3 series" 3 "$(rcli store ZCARD "hr:{$study}:se")"
check_eq "accession index finds the study" "$study" "$(rcli_raw store SMEMBERS hr:ix:acc:ACC001)"
check "patient index holds the study" bash -c "redis-cli -s '$T/store/data/redis/redis.sock' --raw ZRANGE 'hr:pt:TOWNSHIP1|P001:st' 0 -1 | grep -qx '$study'"
check_eq "source hospital recorded" township1 "$(rcli store HGET "hr:{$study}:st" hospital)"

# every stored object carries exactly the dataset bytes that were sent
ok=1
for x in "$T/study"/* "$T/mf"/*; do
  sha=$(dataset_sha "$x")
  obj="$T/store/data/objects/${sha:0:2}/${sha:2:2}/$sha"
  [ -f "$obj" ] || { ok=0; echo "missing $obj for $x"; }
  [ "$(dataset_sha "$obj")" = "$sha" ] || { ok=0; echo "content differs for $x"; }
  xs=$(dcmdump +P 0020,000D "$x" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  [ "$(rcli store HGET "hr:{$xs}:i:$(sop_uid "$x")" sha)" = "$sha" ] || { ok=0; echo "index sha differs for $x"; }
done
check "every object is byte-identical and indexed by its hash" test "$ok" = 1

mf=$(ls "$T/mf"/*)
mfstudy=$(dcmdump +P 0020,000D "$mf" | sed -n 's/.*\[\(.*\)\].*/\1/p')
check_eq "multi-frame frame count indexed" 12 "$(rcli store HGET "hr:{$mfstudy}:i:$(sop_uid "$mf")" frames)"
check "stored file is valid Part 10 with huren's meta" bash -c "dcmdump '$T/store/data/objects/'*/*/* 2>&1 | grep -q 'TOWNSHIP1.*SourceApplicationEntityTitle'"

# resend: identical bytes -> success, no second copy
check "resending the study succeeds" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/study"
check_eq "still 13 objects after resend" 13 "$(count_objects store)"
check_eq "instance count unchanged" 12 "$(rcli store HGET "hr:{$study}:st" instances)"

# same SOP Instance UID, different bytes -> warning, both kept, newest indexed
cp "$f" "$T/changed.dcm"
dcmodify -nb -m "(0008,1030)=Changed description" "$T/changed.dcm" >/dev/null
out=$(storescu -v -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/changed.dcm" 2>&1 || true)
check "changed object answered with a warning status" grep -q "Warning" <<<"$out"
check_eq "both versions on disk" 14 "$(count_objects store)"
csha=$(dataset_sha "$T/changed.dcm")
check_eq "newest version indexed" "$csha" "$(rcli store HGET "hr:{$study}:i:$(sop_uid "$f")" sha)"
check_eq "previous version remembered" 1 "$(rcli store ZCARD "hr:{$study}:i:$(sop_uid "$f"):v")"
check_eq "instance count still 12" 12 "$(rcli store HGET "hr:{$study}:st" instances)"

check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
