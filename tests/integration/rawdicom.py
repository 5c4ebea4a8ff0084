"""Minimal raw DICOM upper-layer client for protocol tests: sends exactly the
bytes a test wants (malformed PDUs, mismatched data sets) over a real socket.
Not a DICOM implementation: just enough framing to reach huren's edge cases."""
import socket
import struct

VERIFICATION = b'1.2.840.10008.1.1'
CT = b'1.2.840.10008.5.1.4.1.1.2'
EXPLICIT_LE = b'1.2.840.10008.1.2.1'
IMPLICIT_LE = b'1.2.840.10008.1.2'


def item(t, b):
    return struct.pack('>BxH', t, len(b)) + b


def pdu(t, body):
    return struct.pack('>BxI', t, len(body)) + body


def assoc_rq(calling=b'TOWNSHIP1', called=b'HUREN', contexts=((1, CT, EXPLICIT_LE),), max_pdu=16384):
    pcs = b''.join(item(0x20, bytes([pid, 0, 0, 0]) + item(0x30, asx) + item(0x40, ts))
                   for pid, asx, ts in contexts)
    ui = item(0x50, item(0x51, struct.pack('>I', max_pdu)) + item(0x52, b'1.2.3.4'))
    body = (struct.pack('>HH', 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
            + item(0x10, b'1.2.840.10008.3.1.1.1') + pcs + ui)
    return pdu(1, body)


def pdv(pc_id, control, data):
    return struct.pack('>IB', len(data) + 2, pc_id) + bytes([control]) + data


def elem_implicit(group, el, value):
    if len(value) % 2:
        value += b'\0'
    return struct.pack('<HHI', group, el, len(value)) + value


def command(fields):
    """fields: list of (element, bytes) in group 0000, ascending."""
    body = b''.join(elem_implicit(0, e, v) for e, v in fields)
    return elem_implicit(0, 0, struct.pack('<I', len(body))) + body


def c_store_rq(sop_class, sop_instance, msg_id=1):
    return command([(0x0002, sop_class), (0x0100, struct.pack('<H', 1)),
                    (0x0110, struct.pack('<H', msg_id)), (0x0700, struct.pack('<H', 0)),
                    (0x0800, struct.pack('<H', 0)), (0x1000, sop_instance)])


def elem_explicit(group, el, vr, value):
    if len(value) % 2:
        value += b'\0' if vr == b'UI' else b' '
    return struct.pack('<HH', group, el) + vr + struct.pack('<H', len(value)) + value


class Conn:
    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=timeout)

    def send(self, b):
        self.s.sendall(b)

    def recv_pdu(self):
        """Returns (type, body), or (None, b'') when the connection closed."""
        hdr = self._recv(6)
        if len(hdr) < 6:
            return None, b''
        t, n = struct.unpack('>BxI', hdr)
        return t, self._recv(n)

    def _recv(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                break
            b += c
        return b

    def status_of(self, body):
        """Status (0000,0900) and error comment of a P-DATA carrying a response."""
        data = body[6:]  # item length(4) + pc id + control
        off, status, comment = 0, None, ''
        while off + 8 <= len(data):
            g, e, n = struct.unpack('<HHI', data[off:off + 8])
            v = data[off + 8:off + 8 + n]
            if (g, e) == (0, 0x0900):
                status = struct.unpack('<H', v)[0]
            if (g, e) == (0, 0x0902):
                comment = v.decode(errors='replace').strip()
            off += 8 + n
        return status, comment

    def close(self):
        self.s.close()
