#!/usr/bin/env python3
"""bench/qr_load.py: the query load generator of bench/query (stdlib only).

One process runs one batch of queries of one kind against one server, one
query at a time, and prints one JSON line: the latency of each query in
milliseconds and the number of matches of each.

  qr_load.py qido    HOST PORT ROOT TOKEN  QUERIES KIND N WARMUP
  qr_load.py cfind   HOST PORT CALLING CALLED QUERIES KIND N WARMUP
  qr_load.py findscu HOST PORT CALLING CALLED QUERIES KIND N WARMUP

- qido: one persistent HTTP/1.1 connection (keep-alive, TCP_NODELAY). The
  time of a query runs from sending the request to the last byte of the
  body. JSON is parsed after the clock stops (to count the matches).
- cfind: one association (Study Root FIND, implicit VR little endian) kept
  open for the whole batch; the time runs from sending the C-FIND-RQ to the
  final response. A minimal DICOM upper-layer client written here, so the
  client costs microseconds and the figure is the server's.
- findscu: DCMTK findscu, one process and one association per query (what a
  simple script or an old workstation does); the time includes process
  start and association set-up, the same for every server.

QUERIES is a TSV file: KIND <tab> VALUE (pid, acc, uid: a value; month:
YYYYMMDD-YYYYMMDD; other kinds: Keyword=value&Keyword=value..., several
matching keys, and for QIDO "limit"; C-FIND ignores limit). Queries of KIND are used in order, cycling; WARMUP
queries run first and are not measured. TOKEN "-" means no Authorization.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time
import http.client

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"

KEY = {"pid": "PatientID", "acc": "AccessionNumber", "uid": "StudyInstanceUID",
       "month": "StudyDate"}
# Return keys of every C-FIND (the study-level attributes QIDO-RS returns by
# default, PS3.18 table 10.6.3-3), so both protocols build similar answers.
RETURN_KEYS = [
    (0x0008, 0x0020, "DA", "StudyDate"), (0x0008, 0x0030, "TM", "StudyTime"),
    (0x0008, 0x0050, "SH", "AccessionNumber"), (0x0008, 0x0052, "CS", "QueryRetrieveLevel"),
    (0x0008, 0x0061, "CS", "ModalitiesInStudy"), (0x0008, 0x0090, "PN", "ReferringPhysicianName"),
    (0x0010, 0x0010, "PN", "PatientName"), (0x0010, 0x0020, "LO", "PatientID"),
    (0x0010, 0x0030, "DA", "PatientBirthDate"), (0x0010, 0x0040, "CS", "PatientSex"),
    (0x0020, 0x000D, "UI", "StudyInstanceUID"), (0x0020, 0x0010, "SH", "StudyID"),
    (0x0020, 0x1206, "IS", "NumberOfStudyRelatedSeries"),
    (0x0020, 0x1208, "IS", "NumberOfStudyRelatedInstances"),
]


def load_queries(path, kind):
    vals = []
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            if k == kind:
                vals.append(v)
    if not vals:
        sys.exit("qr_load: no queries of kind %s in %s" % (kind, path))
    return vals


def pairs(kind, value):
    """The matching keys of one query: [(keyword, value), ...]."""
    if kind in KEY:
        return [(KEY[kind], value)]
    return [tuple(p.split("=", 1)) for p in value.split("&")]


# ------------------------------------------------------------------ QIDO-RS
def run_qido(host, port, root, token, queries, kind, n, warmup):
    from urllib.parse import quote
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Accept": "application/dicom+json"}
    if token != "-":
        headers["Authorization"] = "Bearer " + token
    lat, counts, errors = [], [], []
    for i in range(warmup + n):
        v = queries[i % len(queries)]
        path = "%sstudies?%s" % (root, "&".join("%s=%s" % (k, quote(x, safe="-"))
                                                   for k, x in pairs(kind, v)))
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        t1 = time.perf_counter()
        if r.status == 200:
            c = len(json.loads(body))
        elif r.status == 204:
            c = 0
        else:
            errors.append("%d %s" % (r.status, body[:200]))
            c = -1
        if i >= warmup:
            lat.append((t1 - t0) * 1e3)
            counts.append(c)
    conn.close()
    return lat, counts, errors


# ------------------------------------------------------------------ C-FIND
def elem(group, element, vr, value):
    if isinstance(value, int):
        v = struct.pack("<H", value)
    else:
        v = value.encode("ascii")
        if len(v) % 2:
            v += b"\0" if vr == "UI" else b" "
    return struct.pack("<HHI", group, element, len(v)) + v


def command(msg_id):
    body = (elem(0, 0x0002, "UI", STUDY_ROOT_FIND) + elem(0, 0x0100, "US", 0x0020) +
            elem(0, 0x0110, "US", msg_id) + elem(0, 0x0700, "US", 0) +
            elem(0, 0x0800, "US", 0x0001))
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def identifier(kind, value):
    match = dict(pairs(kind, value))
    out = b""
    for g, e, vr, name in RETURN_KEYS:
        if name == "QueryRetrieveLevel":
            out += elem(g, e, vr, "STUDY")
        else:
            out += elem(g, e, vr, match.get(name, ""))
    return out


def pdv_pdu(ctx, flags, data):
    item = struct.pack(">IBB", len(data) + 2, ctx, flags) + data
    return struct.pack(">BBI", 0x04, 0, len(item)) + item


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed by the server")
        buf += chunk
    return bytes(buf)


def recv_pdu(sock):
    hdr = recv_exact(sock, 6)
    t, _, ln = struct.unpack(">BBI", hdr)
    return t, recv_exact(sock, ln)


def parse_cmd(data):
    out, i = {}, 0
    while i + 8 <= len(data):
        g, e, ln = struct.unpack_from("<HHI", data, i)
        v = data[i + 8:i + 8 + ln]
        i += 8 + ln
        if ln == 2:
            out[(g, e)] = struct.unpack("<H", v)[0]
    return out


class Assoc:
    def __init__(self, host, port, calling, called):
        self.sock = socket.create_connection((host, int(port)), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = []  # PDV items not yet consumed

        def item(t, payload):
            return struct.pack(">BBH", t, 0, len(payload)) + payload
        ac = item(0x10, APP_CONTEXT.encode())
        pc = item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) + item(0x30, STUDY_ROOT_FIND.encode()) +
                  item(0x40, IMPLICIT_LE.encode()))
        ui = item(0x50, item(0x51, struct.pack(">I", 65536)) +
                  item(0x52, b"1.2.826.0.1.3680043.9.7433.1") + item(0x55, b"HUREN_QRLOAD"))
        body = (struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() +
                b"\0" * 32 + ac + pc + ui)
        self.sock.sendall(struct.pack(">BBI", 0x01, 0, len(body)) + body)
        t, data = recv_pdu(self.sock)
        if t != 0x02:
            raise RuntimeError("association refused (PDU type 0x%02x)" % t)
        i, accepted = 68, False
        while i + 4 <= len(data):
            it, _, ln = struct.unpack_from(">BBH", data, i)
            if it == 0x21 and data[i + 4] == 1 and data[i + 6] == 0:
                accepted = True
            i += 4 + ln
        if not accepted:
            raise RuntimeError("Study Root FIND in implicit VR LE not accepted")

    def next_message(self):
        """Returns (command dict, has dataset) after reading the dataset too."""
        cmd, ds = bytearray(), bytearray()
        state = "cmd"
        while True:
            while not self.pending:
                t, data = recv_pdu(self.sock)
                if t != 0x04:
                    raise RuntimeError("unexpected PDU type 0x%02x" % t)
                i = 0
                while i < len(data):
                    ln, _ctx, flags = struct.unpack_from(">IBB", data, i)
                    self.pending.append((flags, data[i + 6:i + 4 + ln]))
                    i += 4 + ln
            flags, frag = self.pending.pop(0)
            if flags & 1:
                cmd += frag
                if flags & 2:
                    c = parse_cmd(bytes(cmd))
                    if c.get((0, 0x0800), 0x0101) == 0x0101:
                        return c
                    state = "ds"
            else:
                ds += frag
                if flags & 2 and state == "ds":
                    return c

    def find(self, msg_id, kind, value):
        self.sock.sendall(pdv_pdu(1, 0x03, command(msg_id)) + pdv_pdu(1, 0x02, identifier(kind, value)))
        n = 0
        while True:
            c = self.next_message()
            st = c.get((0, 0x0900), 0)
            if st in (0xFF00, 0xFF01):
                n += 1
            else:
                return n, st

    def release(self):
        try:
            self.sock.sendall(struct.pack(">BBII", 0x05, 0, 4, 0))
            recv_pdu(self.sock)
        except (OSError, EOFError):
            pass
        self.sock.close()


def run_cfind(host, port, calling, called, queries, kind, n, warmup):
    a = Assoc(host, port, calling, called)
    lat, counts, errors = [], [], []
    for i in range(warmup + n):
        v = queries[i % len(queries)]
        t0 = time.perf_counter()
        c, st = a.find(i + 1, kind, v)
        t1 = time.perf_counter()
        if st != 0:
            errors.append("status 0x%04x" % st)
        if i >= warmup:
            lat.append((t1 - t0) * 1e3)
            counts.append(c)
    a.release()
    return lat, counts, errors


def run_findscu(host, port, calling, called, queries, kind, n, warmup):
    env = dict(os.environ, TCP_NODELAY="1")
    lat, counts, errors = [], [], []
    for i in range(warmup + n):
        v = queries[i % len(queries)]
        args = ["findscu", "-v", "-S", "-aet", calling, "-aec", called]
        for g, e, vr, name in RETURN_KEYS:
            if name == "QueryRetrieveLevel":
                args += ["-k", "QueryRetrieveLevel=STUDY"]
            elif name in dict(pairs(kind, v)):
                args += ["-k", "%s=%s" % (name, dict(pairs(kind, v))[name])]
            else:
                args += ["-k", name]
        args += [host, str(port)]
        t0 = time.perf_counter()
        p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        t1 = time.perf_counter()
        out = p.stdout.decode("latin-1")
        if p.returncode != 0 or "Final Find Response (Success)" not in out:
            errors.append("findscu rc %d: %s" % (p.returncode, out[-200:]))
        if i >= warmup:
            lat.append((t1 - t0) * 1e3)
            counts.append(out.count("(Pending"))
    return lat, counts, errors


def main():
    if len(sys.argv) != 10:
        sys.exit(__doc__)
    mode, host, port, a, b, qfile, kind, n, warmup = sys.argv[1:]
    queries = load_queries(qfile, kind)
    fn = {"qido": run_qido, "cfind": run_cfind, "findscu": run_findscu}[mode]
    try:
        lat, counts, errors = fn(host, port, a, b, queries, kind, int(n), int(warmup))
    except Exception as ex:  # one JSON line whatever happens
        print(json.dumps({"lat": [], "counts": [], "errors": ["%s: %s" % (type(ex).__name__, ex)]}))
        return 1
    print(json.dumps({"lat": [round(x, 4) for x in lat], "counts": counts, "errors": errors[:5],
                      "nerrors": len(errors)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
