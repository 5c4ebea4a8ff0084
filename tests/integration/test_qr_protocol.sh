#!/usr/bin/env bash
# Query/retrieve edge cases over a raw socket (bytes DCMTK's tools never
# send): a second request while a C-FIND runs is a protocol error (A-ABORT);
# a C-CANCEL-RQ sent right behind the request ends it with FE00, one for
# another message is ignored; A-RELEASE-RQ during a C-FIND ends it, then the
# release is answered; malformed, oversized or missing identifiers and wrong
# contexts get their DIMSE status and the association goes on; identifiers
# in Implicit VR LE and Explicit VR BE; a stray C-STORE-RSP aborts.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config qp "$port")
p_dest=$(free_port)
# private HTTP and HL7 ports (the defaults may belong to another test's
# huren) and a C-MOVE destination for township1
python3 - "$cfg" "$(free_port)" "$(free_port)" "$p_dest" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["http"] = {"listen": "127.0.0.1", "port": int(sys.argv[2])}
c["hl7"] = {"listen": "127.0.0.1", "port": int(sys.argv[3])}
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["destinations"] = [{"ae_title": "T1_WS", "host": "127.0.0.1", "port": int(sys.argv[4])}]
json.dump(c, open(sys.argv[1], "w"))
PY
mkdir -p "$T/rx"
storescp -aet T1_WS -od "$T/rx" "$p_dest" >"$T/storescp.log" 2>&1 &
PIDS+=($!)
wait_port "$p_dest"
start_huren qp "$cfg"
export PYTHONPATH="$(dirname "$0")"

"$GEN" --print-uids --out "$T/many" --instances 150 --bytes 512 --patient-id PM --seed 41 >"$T/many.uids"
check "township1 stores 150 images" storescu -aet TOWNSHIP1 -aec HUREN +sd 127.0.0.1 "$port" "$T/many"
study=$(awk 'NR==1{print $1}' "$T/many.uids")
series=$(awk 'NR==1{print $2}' "$T/many.uids")

# py SCRIPT: runs python with helpers, the port and the UIDs as arguments
py() {
  python3 - "$port" "$study" "$series" <<PY
import sys, struct
from rawdicom import *
PORT, STUDY, SERIES = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
STUDY_FIND = b'1.2.840.10008.5.1.4.1.2.2.1'
STUDY_GET = b'1.2.840.10008.5.1.4.1.2.2.3'
STUDY_MOVE = b'1.2.840.10008.5.1.4.1.2.2.2'
EXPLICIT_BE = b'1.2.840.10008.1.2.2'

def rq(field, sop_class, msg_id=1, with_data=True):
    return command([(0x0002, sop_class), (0x0100, struct.pack('<H', field)),
                    (0x0110, struct.pack('<H', msg_id)), (0x0700, struct.pack('<H', 0)),
                    (0x0800, struct.pack('<H', 0 if with_data else 0x0101))])

def cancel(msg_id):
    return command([(0x0100, struct.pack('<H', 0x0FFF)), (0x0120, struct.pack('<H', msg_id)),
                    (0x0800, struct.pack('<H', 0x0101))])

def ident_images(vr_explicit=True, big=False):
    """IMAGE level identifier: study, series, SOP Instance UID (return key)."""
    if not vr_explicit:
        return (elem_implicit(0x0008, 0x0018, b'') + elem_implicit(0x0008, 0x0052, b'IMAGE ')
                + elem_implicit(0x0020, 0x000D, STUDY) + elem_implicit(0x0020, 0x000E, SERIES))
    def e(g, el, vr, v):
        if len(v) % 2:
            v += b'\0' if vr == b'UI' else b' '
        fmt = '>HH2sH' if big else '<HH2sH'
        return struct.pack(fmt, g, el, vr, len(v)) + v
    return (e(0x0008, 0x0018, b'UI', b'') + e(0x0008, 0x0052, b'CS', b'IMAGE')
            + e(0x0020, 0x000D, b'UI', STUDY) + e(0x0020, 0x000E, b'UI', SERIES))

def message(pc, cmd, data=None):
    """The command, then the data set in PDUs of at most 64 KB."""
    b = pdu(4, pdv(pc, 3, cmd))
    if data is not None:
        for off in range(0, max(len(data), 1), 65536):
            last = off + 65536 >= len(data)
            b += pdu(4, pdv(pc, 2 if last else 0, data[off:off + 65536]))
    return b

def assoc_rq_roles(contexts, roles):
    """assoc_rq with SCP/SCU role selection items: roles = [(sop class, scu, scp)]."""
    b = assoc_rq(contexts=contexts)
    extra = b''.join(item(0x54, struct.pack('>H', len(u)) + u + bytes([scu, scp])) for u, scu, scp in roles)
    # the user information item is last: grow it and the PDU
    ui = b.rfind(b'\x50\x00')
    n = struct.unpack('>H', b[ui + 2:ui + 4])[0]
    b = b[:ui + 2] + struct.pack('>H', n + len(extra)) + b[ui + 4:] + extra
    return b[:2] + struct.pack('>I', len(b) - 6) + b[6:]

def associate(contexts, roles=None):
    c = Conn(PORT)
    c.send(assoc_rq_roles(contexts, roles) if roles else assoc_rq(contexts=contexts))
    t, b = c.recv_pdu()
    assert t == 2, t
    return c

def responses(c):
    """Reads until a final response or another PDU: (pendings, final status, comment, last type)."""
    n = 0
    while True:
        t, b = c.recv_pdu()
        if t != 4:
            return n, None, '', t
        if not b[5] & 1:
            continue  # a data set PDV
        st, comment = c.status_of(b)
        if st in (0xFF00, 0xFF01):
            n += 1
            continue
        return n, st, comment, t

$(cat)
PY
}

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE), (3, CT, EXPLICIT_LE)])
c.send(message(1, rq(0x20, STUDY_FIND), ident_images())
       + message(3, c_store_rq(CT, b'1.2.3.4', msg_id=2), b'\x08\x00\x16\x00UI\x02\x00\x31\x00'))
while True:
    t, b = c.recv_pdu()
    if t != 4:
        break
print(t)
PY
)
check_eq "a C-STORE-RQ while a C-FIND runs is answered with A-ABORT" 7 "$r"

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE)])
c.send(message(1, rq(0x20, STUDY_FIND), ident_images()) + message(1, cancel(1)))
n, st, comment, t = responses(c)
print('%04X' % st, 'partial' if n < 150 else 'all')
PY
)
check_eq "C-CANCEL-RQ right behind the request: FE00 before all 150 matches" "FE00 partial" "$r"

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE)])
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=7), ident_images()) + message(1, cancel(99)))
n, st, comment, t = responses(c)
print('%04X' % st, n)
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=8), ident_images()))
n, st, comment, t = responses(c)
print('%04X' % st, n)
PY
)
check_eq "a C-CANCEL-RQ for another message is ignored; the next query works" "0000 150
0000 150" "$r"

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE)])
c.send(message(1, rq(0x20, STUDY_FIND), ident_images()) + pdu(5, bytes(4)))
n, st, comment, t = responses(c)
t2, b = c.recv_pdu()
print('%04X' % st, t2)
PY
)
check_eq "A-RELEASE-RQ during a C-FIND: FE00 final response, then A-RELEASE-RP" "FE00 6" "$r"

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE), (3, VERIFICATION, EXPLICIT_LE)])
c.send(message(1, rq(0x20, STUDY_FIND), b'\x08\x00\x52\x00CS\xff\xff'))
n, st, comment, t = responses(c)
print('%04X' % st, n, comment)
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=2), b'\x08\x00\x52\x00CS' + struct.pack('<H', 4) + b'BAD '))
n, st, comment, t = responses(c)
print('%04X' % st, comment)
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=3), b'\x08\x00\x20\x00DA\x00\x00'))
n, st, comment, t = responses(c)
print('%04X' % st, comment)
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=4, with_data=False)))
n, st, comment, t = responses(c)
print('%04X' % st, comment)
big = b'\x10\x00\x10\x00PN\x00\x00' + b''.join(
    struct.pack('<HH2sHI', 0x0011, 0x1000 + i, b'UN', 0, 4096) + bytes(4096) for i in range(70))
c.send(message(1, rq(0x20, STUDY_FIND, msg_id=5), big))
n, st, comment, t = responses(c)
print('%04X' % st, comment)
c.send(message(3, command([(0x0002, VERIFICATION), (0x0100, struct.pack('<H', 0x30)),
                           (0x0110, struct.pack('<H', 6)), (0x0800, struct.pack('<H', 0x0101))])))
t, b = c.recv_pdu()
print('%04X' % c.status_of(b)[0])
PY
)
check_eq "identifier errors answer C000/A900 and the association goes on" \
  "C000 0 cannot parse the identifier: truncated data
A900 QueryRetrieveLevel unknown
A900 QueryRetrieveLevel missing
A900 identifier missing
C000 identifier larger than 256 KB
0000" "$r"

r=$(py <<'PY'
c = associate([(1, CT, EXPLICIT_LE)])
c.send(message(1, rq(0x20, CT), ident_images()))
n, st, comment, t = responses(c)
print('%04X' % st, comment)
PY
)
check_eq "C-FIND on a storage context is refused (0122)" "0122 SOP class differs from the presentation context" "$r"

r=$(py <<'PY'
for ts in (IMPLICIT_LE, EXPLICIT_BE):
    c = associate([(1, STUDY_FIND, ts)])
    c.send(message(1, rq(0x20, STUDY_FIND), ident_images(ts == EXPLICIT_LE or ts == EXPLICIT_BE, ts == EXPLICIT_BE)))
    n, st, comment, t = responses(c)
    print('%04X' % st, n)
PY
)
check_eq "identifiers and responses in Implicit VR LE and Explicit VR BE" "0000 150
0000 150" "$r"

r=$(py <<'PY'
c = associate([(1, STUDY_FIND, EXPLICIT_LE)])
c.send(message(1, command([(0x0100, struct.pack('<H', 0x8001)), (0x0120, struct.pack('<H', 1)),
                           (0x0800, struct.pack('<H', 0x0101)), (0x0900, struct.pack('<H', 0))])))
t, b = c.recv_pdu()
print(t)
PY
)
check_eq "a C-STORE-RSP out of nowhere is answered with A-ABORT" 7 "$r"

r=$(py <<'PY'
import time
# C-MOVE, then A-ABORT at once: the operation is detached mid-way
c = associate([(1, STUDY_MOVE, EXPLICIT_LE)])
ident = elem_explicit(0x0008, 0x0052, b'CS', b'STUDY') + elem_explicit(0x0020, 0x000D, b'UI', STUDY)
mv = command([(0x0002, STUDY_MOVE), (0x0100, struct.pack('<H', 0x21)), (0x0110, struct.pack('<H', 1)),
              (0x0600, b'T1_WS'), (0x0700, struct.pack('<H', 0)), (0x0800, struct.pack('<H', 0))])
c.send(message(1, mv, ident))
n, st, comment, t = responses(c)   # a few pending responses
c.send(pdu(7, bytes(4)))
c.close()
# the same move, completed, on a new association
c = associate([(1, STUDY_MOVE, EXPLICIT_LE)])
c.send(message(1, mv, ident))
n, st, comment, t = responses(c)
print('%04X' % st, n)
PY
)
check_eq "A-ABORT during a C-MOVE; the next C-MOVE completes" "0000 150" "$r"

r=$(py <<'PY'
# C-GET with the SCP role for CT; the first C-STORE-RQ arrives, then the
# connection is dropped in the middle of the sub-operations
c = associate([(1, STUDY_GET, EXPLICIT_LE), (3, CT, EXPLICIT_LE)], roles=[(CT, 0, 1)])
ident = elem_explicit(0x0008, 0x0052, b'CS', b'STUDY') + elem_explicit(0x0020, 0x000D, b'UI', STUDY)
get = command([(0x0002, STUDY_GET), (0x0100, struct.pack('<H', 0x10)), (0x0110, struct.pack('<H', 1)),
               (0x0700, struct.pack('<H', 0)), (0x0800, struct.pack('<H', 0))])
c.send(message(1, get, ident))
t, b = c.recv_pdu()
print(t, b[4], b[5] & 1)   # P-DATA on the CT context, a command: our C-STORE-RQ
c.close()
# a C-GET whose peer answers every C-STORE-RQ
c = associate([(1, STUDY_GET, EXPLICIT_LE), (3, CT, EXPLICIT_LE)], roles=[(CT, 0, 1)])
c.send(message(1, get, ident))
stores = 0
while True:
    t, b = c.recv_pdu()
    assert t == 4, t
    if b[4] == 3 and b[5] & 1:     # C-STORE-RQ command
        data = b[6:]
        off, msg = 0, None
        while off + 8 <= len(data):
            g, e, n = struct.unpack('<HHI', data[off:off + 8])
            if (g, e) == (0, 0x0110):
                msg = struct.unpack('<H', data[off + 8:off + 10])[0]
            off += 8 + n
    elif b[4] == 3 and b[5] & 2:   # last fragment of its data set: answer
        stores += 1
        c.send(message(3, command([(0x0002, CT), (0x0100, struct.pack('<H', 0x8001)),
                                   (0x0120, struct.pack('<H', msg)), (0x0800, struct.pack('<H', 0x0101)),
                                   (0x0900, struct.pack('<H', 0))])))
    elif b[4] == 1 and b[5] & 1:
        st, comment = c.status_of(b)
        if st not in (0xFF00,):
            break
print('%04X' % st, stores)
PY
)
check_eq "C-GET: our C-STORE-RQ goes on the SCP-role context" "4 3 1
0000 150" "$r"

check "huren still serves" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# ---- Redis gone: C-FIND answers A700, C-MOVE A701, both with a reason
port=$(free_port)
rport=$(free_port)
start_redis rd "$rport"
cfg=$(write_config rd "$port" "redis://127.0.0.1:$rport")
python3 - "$cfg" "$(free_port)" "$(free_port)" "$p_dest" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["http"] = {"listen": "127.0.0.1", "port": int(sys.argv[2])}
c["hl7"] = {"listen": "127.0.0.1", "port": int(sys.argv[3])}
for h in c["hospitals"]:
    if h["id"] == "township1":
        h["destinations"] = [{"ae_title": "T1_WS", "host": "127.0.0.1", "port": int(sys.argv[4])}]
json.dump(c, open(sys.argv[1], "w"))
PY
start_huren rd "$cfg"
check "one object stored" storescu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port" "$T/many/s1_se1_i1.dcm"
check "C-FIND works while redis is up" bash -c "findscu -v -S -aet TOWNSHIP1 -aec HUREN -k QueryRetrieveLevel=STUDY \
  -k StudyInstanceUID 127.0.0.1 $port 2>&1 | grep -q 'Final Find Response (Success)'"
redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
wait "$REDIS_PID" 2>/dev/null || true
out=$(findscu -d -S -aet TOWNSHIP1 -aec HUREN -k QueryRetrieveLevel=STUDY -k StudyInstanceUID 127.0.0.1 "$port" 2>&1 || true)
check "C-FIND with redis down: A700 'index unavailable'" bash -c \
  "grep -aq 'DIMSE Status *: 0xa700' <<<'$out' && grep -aq 'index unavailable' <<<'$out'"
out=$(movescu -d -S -aet TOWNSHIP1 -aec HUREN -aem T1_WS -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study" \
  127.0.0.1 "$port" 2>&1 || true)
check "C-MOVE with redis down: A701" grep -aq 'DIMSE Status *: 0xa701' <<<"$out"
check "graceful stop exits 0 (redis down)" stop_huren "$HUREN_PID"
finish
