#!/usr/bin/python3
"""A test webhook receiver: HTTP (or HTTPS with --cert/--key) on 127.0.0.1.

Usage: webhook_receiver.py --dir DIR [--port PORT] [--cert PEM --key PEM]

Writes DIR/port when listening. Each POST is appended to DIR/requests.jsonl
as {"path", "headers" (lower-case names), "body"} and answered with the
status in DIR/status (absent: 200) and a short body. Special statuses:
"slow" waits 30 s before answering 200; "huge" answers 200 with a 4 MiB
body.
"""
import argparse
import http.server
import json
import os
import ssl
import threading
import time

lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        d = self.server.dir
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n) if n <= (8 << 20) else b''
        with lock:
            with open(os.path.join(d, 'requests.jsonl'), 'a') as f:
                f.write(json.dumps({'path': self.path,
                                    'headers': {k.lower(): v for k, v in self.headers.items()},
                                    'body': body.decode('utf-8', 'replace')}) + '\n')
        try:
            with open(os.path.join(d, 'status')) as f:
                status = f.read().strip() or '200'
        except OSError:
            status = '200'
        out = b'{"received": true}'
        if status == 'slow':
            time.sleep(30)
            status = '200'
        elif status == 'huge':
            status, out = '200', b'x' * (4 << 20)
        elif status != '200':
            out = b'{"error": "test refusal %s"}' % status.encode()
        self.send_response(int(status))
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        try:
            self.wfile.write(out)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--cert')
    ap.add_argument('--key')
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    srv.daemon_threads = True
    srv.dir = a.dir
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = os.path.join(a.dir, 'port.tmp')
    with open(tmp, 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(a.dir, 'port'))
    srv.serve_forever()


if __name__ == '__main__':
    main()
