#!/usr/bin/python3
"""A small RFC 3161 TSA for tests: `openssl ts -reply` behind http.server.

usage: tsa_server.py PORT CONFIG   (CONFIG: an openssl.cnf with a [tsa] section)
POST a TimeStampReq (application/timestamp-query); the answer is
application/timestamp-reply. Listens on 127.0.0.1 only; one request at a time.
"""
import http.server
import os
import subprocess
import sys
import tempfile

MAX_QUERY = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        if self.headers.get('Content-Type') != 'application/timestamp-query' or not 0 < n <= MAX_QUERY:
            self.send_error(400)
            return
        query = self.rfile.read(n)
        with tempfile.TemporaryDirectory() as d:
            q, r = os.path.join(d, 'q.tsq'), os.path.join(d, 'r.tsr')
            with open(q, 'wb') as f:
                f.write(query)
            p = subprocess.run(['openssl', 'ts', '-reply', '-config', sys.argv[2], '-queryfile', q,
                                '-out', r], capture_output=True, timeout=30)
            if p.returncode != 0:
                sys.stderr.write(p.stderr.decode(errors='replace'))
                self.send_error(500)
                return
            with open(r, 'rb') as f:
                body = f.read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/timestamp-reply')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write('tsa: ' + fmt % args + '\n')


http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
