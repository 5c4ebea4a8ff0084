#!/usr/bin/env python3
"""Load generator of bench/abuse: N clients flooding huren's HTTP API until
killed (SIGTERM) or --seconds pass. Prints one line of counts at the end.

  abuse_load.py login-random PORT N      POST /api/v1/login, random names
  abuse_load.py login-real PORT N USER   the same with one real name, wrong passwords
  abuse_load.py qido PORT N TOKEN        GET /dicomweb/studies?PatientName=*

Client i connects from 127.0.1.(i+1) (a botnet, not one address), keep-alive."""
import http.client, json, random, signal, socket, string, sys, threading, time

stop = threading.Event()
counts = {}
lock = threading.Lock()


class Conn(http.client.HTTPConnection):
    def __init__(self, port, src):
        super().__init__("127.0.0.1", port, timeout=120, source_address=(src, 0))

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client(i, mode, port, arg):
    src = "127.0.1.%d" % (i + 1)
    c = Conn(port, src)
    while not stop.is_set():
        try:
            if mode == "qido":
                c.request("GET", "/dicomweb/studies?PatientName=*&limit=1000",
                          headers={"Authorization": "Bearer " + arg})
            else:
                user = arg if mode == "login-real" else "u" + "".join(
                    random.choice(string.ascii_lowercase) for _ in range(12))
                body = json.dumps({"user": user, "password": "wrong-password-%d" % random.randrange(10**9)})
                c.request("POST", "/api/v1/login", body=body,
                          headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            code = r.status
        except Exception:
            code = "err"
            c.close()
            c = Conn(port, src)
            time.sleep(0.05)
        with lock:
            counts[code] = counts.get(code, 0) + 1


def main():
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    arg = sys.argv[4] if len(sys.argv) > 4 else ""
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    ts = [threading.Thread(target=client, args=(i, mode, port, arg), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    deadline = time.time() + 3600
    while not stop.is_set() and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    time.sleep(0.2)
    with lock:
        print(" ".join("%s:%d" % (k, v) for k, v in sorted(counts.items(), key=str)), flush=True)


main()
