#!/usr/bin/env bash
# Malformed and hostile input over a real socket: oversized and unknown PDUs,
# P-DATA before association, data sets that do not match their command,
# truncated data. huren answers with A-ABORT or the right DIMSE status, keeps
# nothing of the bad data, and keeps serving.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config proto "$port" "" '"artim_timeout_s": 2, "idle_timeout_s": 3')
start_huren proto "$cfg"
export PYTHONPATH="$(dirname "$0")"

py() { python3 - "$port" "$@"; }

r=$(py <<'PY'
import sys, struct
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(struct.pack('>BxI', 1, 10_000_000))   # A-ASSOCIATE-RQ claiming 10 MB
t, b = c.recv_pdu()
print(t)
PY
)
check_eq "oversized A-ASSOCIATE-RQ is answered with A-ABORT before its body" 7 "$r"

r=$(py <<'PY'
import sys
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(pdu(0x09, b'\0' * 8))
t, b = c.recv_pdu()
print(t)
PY
)
check_eq "unknown PDU type is answered with A-ABORT" 7 "$r"

r=$(py <<'PY'
import sys
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(pdu(4, pdv(1, 3, b'\0' * 10)))
t, b = c.recv_pdu()
print(t)
PY
)
check_eq "P-DATA before association is answered with A-ABORT" 7 "$r"

r=$(py <<'PY'
import sys, time
from rawdicom import *
c = Conn(int(sys.argv[1]))
t0 = time.time()
t, b = c.recv_pdu()     # send nothing: ARTIM (2 s) must close us
print(t, round(time.time() - t0))
PY
)
check "silent connection is closed by the ARTIM timer" grep -Eq "^(None|7) [23]$" <<<"$r"

r=$(py <<'PY'
import sys, time
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(assoc_rq())
t, b = c.recv_pdu()
t0 = time.time()
t2, b2 = c.recv_pdu()     # associated, then silent: the idle timeout (3 s) aborts
print(t, t2, round(time.time() - t0))
PY
)
check "a silent association is aborted after the idle timeout" grep -Eq "^2 7 [34]$" <<<"$r"

# a complete CT-like data set in explicit VR LE, with a chosen SOP Instance UID
cat >"$T/ds.py" <<'PY'
from rawdicom import *
def dataset(sop, study=b'1.2.826.0.1.3680043.2.1125.1', series=b'1.2.826.0.1.3680043.2.1125.2'):
    return (elem_explicit(0x0008, 0x0016, b'UI', CT) + elem_explicit(0x0008, 0x0018, b'UI', sop)
            + elem_explicit(0x0008, 0x0060, b'CS', b'CT') + elem_explicit(0x0010, 0x0020, b'LO', b'RAW1')
            + elem_explicit(0x0020, 0x000D, b'UI', study) + elem_explicit(0x0020, 0x000E, b'UI', series))
def store(port, cmd_sop, data):
    c = Conn(port)
    c.send(assoc_rq())
    t, b = c.recv_pdu()
    assert t == 2, t
    c.send(pdu(4, pdv(1, 3, c_store_rq(CT, cmd_sop))))
    c.send(pdu(4, pdv(1, 2, data)))
    t, b = c.recv_pdu()
    st, comment = c.status_of(b)
    c.send(pdu(5, bytes(4)))
    c.recv_pdu()
    c.close()
    return '%04X %s' % (st, comment)
PY
export T
r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
print(store(int(sys.argv[1]), b'1.2.3.100', dataset(b'1.2.3.100')))
PY
)
check "a raw well-formed C-STORE succeeds (0000)" grep -q "^0000" <<<"$r"

r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
print(store(int(sys.argv[1]), b'1.2.3.101', dataset(b'1.2.3.999')))
PY
)
check "SOP Instance UID mismatch is refused with A900" grep -q "^A900" <<<"$r"
check_eq "the mismatched instance is not indexed" "" "$(rcli_raw proto HGET hr:ix:sop 1.2.3.999)"

r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
d = dataset(b'1.2.3.102')
print(store(int(sys.argv[1]), b'1.2.3.102', d[:-7]))
PY
)
check "truncated data set is refused with C000" grep -q "^C000" <<<"$r"
check_eq "the truncated instance is not indexed" "" "$(rcli_raw proto HGET hr:ix:sop 1.2.3.102)"

r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
d = elem_explicit(0x0008, 0x0016, b'UI', CT) + elem_explicit(0x0008, 0x0018, b'UI', b'1.2.3.103')
print(store(int(sys.argv[1]), b'1.2.3.103', d))
PY
)
check "data set without Study/Series UID is refused with A900" grep -q "^A900" <<<"$r"

# one reading rule (issue 8): what is stored must be readable as its meta
# header says, by every later reader (reindex, sidecars, WADO, C-MOVE)
r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
d = elem_explicit(0x0002, 0x0016, b'AE', b'FAKE') + dataset(b'1.2.3.104')
print(store(int(sys.argv[1]), b'1.2.3.104', d))
PY
)
check "File Meta element inside the data set is refused with C000" \
  grep -q "^C000 cannot parse data set: File Meta Information element" <<<"$r"  # 64 chars
check "the log says which element" grep -q "(0002,0016) inside the data set" "$T/proto/huren.log"
check_eq "and not indexed" "" "$(rcli_raw proto HGET hr:ix:sop 1.2.3.104)"
r=$(T=$T py <<'PY'
import os, sys
exec(open(os.environ['T'] + '/ds.py').read())
d = (elem_implicit(0x0008, 0x0016, CT) + elem_implicit(0x0008, 0x0018, b'1.2.3.105')
     + elem_implicit(0x0020, 0x000D, b'1.2.826.0.1.3680043.2.1125.1')
     + elem_implicit(0x0020, 0x000E, b'1.2.826.0.1.3680043.2.1125.2'))
print(store(int(sys.argv[1]), b'1.2.3.105', d))  # implicit VR on an explicit VR context
PY
)
check "a data set not in the negotiated transfer syntax is refused with C000" \
  grep -q "^C000 cannot parse data set: data set is not encoded in its" <<<"$r"
check_eq "and not indexed" "" "$(rcli_raw proto HGET hr:ix:sop 1.2.3.105)"

r=$(py <<'PY'
import sys, struct
from rawdicom import *
c = Conn(int(sys.argv[1]))
c.send(assoc_rq(max_pdu=16384))
t, b = c.recv_pdu()
c.send(struct.pack('>BxI', 4, 50_000_000))   # P-DATA far above our max PDU
t, b = c.recv_pdu()
print(t)
PY
)
check_eq "P-DATA above the negotiated maximum is answered with A-ABORT" 7 "$r"
check_eq "nothing of the bad data is stored" 1 "$(count_objects proto)"
check_eq "no temp files left" 0 "$(count_tmp proto)"
check "huren still serves" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
