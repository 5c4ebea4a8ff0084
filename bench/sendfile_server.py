#!/usr/bin/env python3
"""bench/sendfile_server.py: the loopback ceiling of bench/retrieve.

  sendfile_server.py PORT MAP

A bare HTTP/1.1 server (keep-alive, one thread per connection) that answers
GET /NAME with the files MAP lists for NAME (lines "NAME<tab>FILE"; a name
may list several files, sent back to back), with a Content-Length and
os.sendfile: zero copy from the page cache to the socket, no index, no
framing. It is what "loopback read throughput of the same files" means in
design/performance.md, measured with the same client (curl) as the servers.
"""
import os
import socket
import socketserver
import sys


def load(path):
    m = {}
    with open(path) as f:
        for line in f:
            name, _, fn = line.rstrip("\n").partition("\t")
            m.setdefault("/" + name, []).append(fn)
    return m


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            parts = head.split(b"\r\n")[0].split()
            path = parts[1].decode() if len(parts) > 1 else "/"
            files = MAP.get(path)
            if files is None:
                s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            fds = [os.open(fn, os.O_RDONLY) for fn in files]
            sizes = [os.fstat(fd).st_size for fd in fds]
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % sum(sizes))
            for fd, size in zip(fds, sizes):
                off = 0
                while off < size:
                    off += os.sendfile(s.fileno(), fd, off, size - off)
                os.close(fd)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    MAP = load(sys.argv[2])
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as srv:
        srv.serve_forever()
