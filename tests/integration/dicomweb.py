#!/usr/bin/python3
"""Helpers for test_dicomweb.sh (run with Debian's /usr/bin/python3, which has
pydicom). Subcommands print one result line or exit non-zero."""
import hashlib
import json
import struct
import sys


def parts(body_path, content_type):
    """Splits a multipart body by the boundary of its Content-Type."""
    b = open(body_path, 'rb').read()
    bnd = None
    for p in content_type.split(';'):
        p = p.strip()
        if p.lower().startswith('boundary='):
            bnd = p[9:].strip('"')
    assert bnd, 'no boundary'
    delim = b'--' + bnd.encode()
    chunks = b.split(b'\r\n' + delim)
    first = chunks[0]
    assert first.startswith(delim), 'body does not start with the delimiter'
    chunks[0] = first[len(delim):]
    out = []
    for c in chunks:
        if c.startswith(b'--'):
            break  # close delimiter
        assert c.startswith(b'\r\n'), 'delimiter not followed by CRLF'
        head, _, data = c[2:].partition(b'\r\n\r\n')
        headers = {}
        for line in head.split(b'\r\n'):
            if line:
                k, _, v = line.decode().partition(':')
                headers[k.strip().lower()] = v.strip()
        out.append((headers, data))
    return out


def dataset_sha(data):
    assert data[128:132] == b'DICM', 'not Part 10'
    glen = struct.unpack('<I', data[140:144])[0]
    return hashlib.sha256(data[144 + glen:]).hexdigest()


def main():
    cmd = sys.argv[1]
    if cmd == 'part-shas':  # body content-type -> sorted dataset hashes of the parts
        for h, d in parts(sys.argv[2], sys.argv[3]):
            assert h['content-type'].startswith('application/dicom'), h
            print(dataset_sha(d))
    elif cmd == 'file-sha':  # Part 10 file -> dataset hash
        print(dataset_sha(open(sys.argv[2], 'rb').read()))
    elif cmd == 'frame-check':  # body content-type dicomfile n... : frames equal pydicom's
        import pydicom
        ds = pydicom.dcmread(sys.argv[4])
        frames = [int(x) for x in sys.argv[5:]]
        ps = parts(sys.argv[2], sys.argv[3])
        assert len(ps) == len(frames), (len(ps), frames)
        nf = int(getattr(ds, 'NumberOfFrames', 1))
        size = len(ds.PixelData) // nf
        for (h, d), n in zip(ps, frames):
            want = ds.PixelData[(n - 1) * size:n * size]
            assert d == want, 'frame %d differs (%d vs %d bytes)' % (n, len(d), len(want))
        print('ok')
    elif cmd == 'count':  # QIDO JSON file -> number of results
        print(len(json.load(open(sys.argv[2]))))
    elif cmd == 'values':  # QIDO JSON file, tag -> first values, sorted, one per line
        tag = sys.argv[3]
        vals = []
        for o in json.load(open(sys.argv[2])):
            v = o.get(tag, {}).get('Value', [''])[0]
            if isinstance(v, dict):
                v = v.get('Alphabetic', '')
            vals.append(str(v))
        for v in sorted(vals):
            print(v)
    elif cmd == 'bulk-uri':  # metadata JSON file -> BulkDataURI of 7FE00010 of the first
        print(json.load(open(sys.argv[2]))[0]['7FE00010']['BulkDataURI'])
    elif cmd == 'stow-counts':  # STOW response -> "<referenced> <failed> <first reason>"
        d = json.load(open(sys.argv[2]))
        ok = d.get('00081199', {}).get('Value', [])
        bad = d.get('00081198', {}).get('Value', [])
        reason = bad[0]['00081197']['Value'][0] if bad else 0
        print(len(ok), len(bad), '%04X' % reason)
    elif cmd == 'stow-body':  # out boundary files... -> multipart body
        out, bnd = sys.argv[2], sys.argv[3].encode()
        body = b''
        for f in sys.argv[4:]:
            body += b'--' + bnd + b'\r\nContent-Type: application/dicom\r\n\r\n'
            body += open(f, 'rb').read() + b'\r\n'
        body += b'--' + bnd + b'--\r\n'
        open(out, 'wb').write(body)
    elif cmd == 'part-len':  # body content-type -> bytes of the first part
        print(len(parts(sys.argv[2], sys.argv[3])[0][1]))
    elif cmd == 'json-get':  # file key -> value
        print(json.load(open(sys.argv[2]))[sys.argv[3]])
    else:
        sys.exit('unknown command ' + cmd)


main()
