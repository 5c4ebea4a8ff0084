#!/usr/bin/python3
"""A test HL7 receiver over MLLP (0x0B message 0x1C 0x0D), loopback only.

Usage: mllp_listener.py --port PORT --dir DIR

Writes DIR/port when listening (PORT 0: a free port). Each message received
is appended to DIR/messages.jsonl as {"control_id", "duplicate", "text"}
(duplicate: its MSH-10 was received before; the receiver re-ACKs it and does
not take it twice, as a real one dedupes on MSH-10). The answer depends on
DIR/mode, read per message (absent: AA):
  AA       MSA|AA|<MSH-10>
  AE       MSA|AE|<MSH-10>|... and an ERR segment "test error"
  AR       MSA|AR|<MSH-10>
  silent   no answer (the sender times out)
  close    closes the connection without answering
  garbage  an unframed line
  wrongid  MSA|AA|<another id>
Several messages per connection and NUL/CR/LF between frames are accepted.
"""
import argparse
import json
import os
import socket
import socketserver
import threading
import time

SB, EB, CR = b'\x0b', b'\x1c', b'\r'
MAX = 1 << 20
lock = threading.Lock()
seen = set()


def fields(seg, sep):
    return seg.split(sep)


def ack(msg, code, control_id, err=None):
    text = msg.decode('utf-8', 'replace')
    msh = text.split('\r', 1)[0]
    sep = msh[3]
    f = msh.split(sep)
    # swap sending and receiving application / facility
    out = sep.join(['MSH', f[1], f[4] if len(f) > 4 else '', f[5] if len(f) > 5 else '',
                    f[2] if len(f) > 2 else '', f[3] if len(f) > 3 else '',
                    time.strftime('%Y%m%d%H%M%S'), '', 'ACK^R01^ACK', 'A' + control_id[:19],
                    'P', '2.5.1'])
    out += '\r' + sep.join(['MSA', code, control_id] + ([err] if err else []))
    if err:
        out += '\r' + sep.join(['ERR', '', '', '207^Application internal error^HL70357', 'E',
                                '', '', '', err])
    return (out + '\r').encode('utf-8')


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        d = self.server.dir
        buf = b''
        self.request.settimeout(60)
        while True:
            try:
                chunk = self.request.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            if len(buf) > MAX:
                return
            while True:
                buf = buf.lstrip(b'\x00\r\n')
                if not buf:
                    break
                if buf[:1] != SB:
                    return  # garbage outside a frame
                end = buf.find(EB + CR)
                if end < 0:
                    break
                msg, buf = buf[1:end], buf[end + 2:]
                if not self.answer(d, msg):
                    return

    def answer(self, d, msg):
        text = msg.decode('utf-8', 'replace')
        msh = text.split('\r', 1)[0]
        sep = msh[3] if len(msh) > 3 else '|'
        f = msh.split(sep)
        control_id = f[9] if len(f) > 9 else ''
        try:
            with open(os.path.join(d, 'mode')) as m:
                mode = m.read().strip() or 'AA'
        except OSError:
            mode = 'AA'
        with lock:
            dup = control_id in seen
            if mode in ('AA', 'wrongid'):
                seen.add(control_id)
            with open(os.path.join(d, 'messages.jsonl'), 'a') as out:
                out.write(json.dumps({'control_id': control_id, 'duplicate': dup, 'mode': mode,
                                      'text': text}, ensure_ascii=False) + '\n')
        if mode == 'silent':
            time.sleep(120)
            return False
        if mode == 'close':
            return False
        if mode == 'garbage':
            self.request.sendall(b'this is not MLLP\r\n')
            return True
        if mode == 'wrongid':
            reply = ack(msg, 'AA', 'NOT' + control_id)
        elif mode in ('AE', 'AR'):
            reply = ack(msg, mode, control_id, 'test error' if mode == 'AE' else None)
        else:
            reply = ack(msg, 'AA', control_id)
        self.request.sendall(SB + reply + EB + CR)
        return True


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--dir', required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    try:  # a restarted receiver still knows what it took
        with open(os.path.join(a.dir, 'messages.jsonl')) as f:
            for line in f:
                m = json.loads(line)
                if m['mode'] in ('AA', 'wrongid'):
                    seen.add(m['control_id'])
    except OSError:
        pass
    srv = Server(('127.0.0.1', a.port), Handler)
    srv.dir = a.dir
    tmp = os.path.join(a.dir, 'port.tmp')
    with open(tmp, 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(a.dir, 'port'))
    srv.serve_forever()


if __name__ == '__main__':
    main()
