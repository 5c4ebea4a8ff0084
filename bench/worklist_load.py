#!/usr/bin/env python3
"""bench/worklist_load.py: the load generator of bench/worklist (stdlib only).

  worklist_load.py run PARAMS.json OUT.json   one phase: readers + SSE + probes
  worklist_load.py report OUT.json...         the table of bench/worklist

run (PARAMS.json is written by bench/worklist):
- Logs in every reader (POST /api/v1/login) and the technician.
- SSE: one process holds `sse_streams` event streams (GET /api/v1/events,
  HTTP/1.1 keep-alive, chunked), one per reader (its screen), all in one
  selectors loop. Each received chunk is stamped (time.time()) when recv()
  returns; only `received` and `ready` events of the probe studies are kept,
  the others are counted.
- Readers: `procs` processes with `readers / procs` threads each; every
  reader has its own keep-alive HTTP/1.1 connection (http.client,
  TCP_NODELAY) and loops until the end of the phase: claim a random ready
  study (POST .../items/{study}/claim), think, release it (when the claim
  was 200), think, and every `list_every` cycles GET
  /api/v1/worklists/{center}?limit=50, think, GET /healthz (the floor: the
  same thread-pool hop and one Redis PING, no Lua, no audit), think. The
  think time is exponential with mean `think_ms` (0: none, a closed loop at
  full speed), capped at 8 s (under the server's keep-alive timeout). The time of a
  request runs from sending it to the last byte of the answer. Requests
  started in the first `warmup_s` seconds are not counted.
- Probes (main process, while the readers run, spread over the phase):
  * complete: storescu of a 1-instance MR study (quiet period of a day, so
    only the explicit signal completes it), then POST
    /api/v1/exams/{study}/complete as the technician; latency = arrival of
    the `ready` event at each stream - the time the POST was sent.
  * quiet: storescu of a 1-instance CT study (quiet period `quiet_s`);
    latency = arrival of `ready` - (time_ms of its `received` event +
    quiet period), i.e. from the end of the quiet period (the moment the
    study is complete). Also from the storescu exit (the last instance).
Writes one JSON document to OUT.json.
"""
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import selectors
import socket
import subprocess
import sys
import threading
import time

# ---------------------------------------------------------------- helpers


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    k = (len(v) - 1) * p
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def conn(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def login(port, user, password):
    c = conn(port)
    body = json.dumps({"user": user, "password": password})
    for _ in range(20):
        c.request("POST", "/api/v1/login", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        d = r.read()
        if r.status == 200:
            c.close()
            return json.loads(d)["token"]
        time.sleep(0.3)
    raise SystemExit("login as %s failed: %s %s" % (user, r.status, d[:200]))


# ---------------------------------------------------------------- SSE


class Stream:
    def __init__(self, idx, port, token):
        self.idx = idx
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
                        % (port, token)).encode())
        self.s.setblocking(False)
        self.raw = b""       # undecoded bytes
        self.head = None     # response head once complete
        self.chunked = False
        self.left = 0        # bytes left in the current chunk
        self.text = b""      # decoded body not yet split into events
        self.events = 0
        self.closed = False

    def feed(self, data, ts, want, out):
        self.raw += data
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = self.raw[:i].decode("latin-1")
            self.raw = self.raw[i + 4:]
            self.chunked = "chunked" in self.head.lower()
        if not self.chunked:
            self.text += self.raw
            self.raw = b""
        else:
            while self.raw:
                if self.left == 0:
                    i = self.raw.find(b"\r\n")
                    if i < 0:
                        break
                    line = self.raw[:i].split(b";")[0].strip()
                    if not line:  # the CRLF after a chunk
                        self.raw = self.raw[i + 2:]
                        continue
                    n = int(line, 16)
                    if n == 0:
                        self.closed = True
                        self.raw = b""
                        break
                    self.raw = self.raw[i + 2:]
                    self.left = n
                take = self.raw[:self.left]
                self.text += take
                self.raw = self.raw[len(take):]
                self.left -= len(take)
        while True:
            i = self.text.find(b"\n\n")
            if i < 0:
                break
            block, self.text = self.text[:i], self.text[i + 2:]
            if not block.startswith(b"id: "):
                continue  # comments (heartbeats, the prelude)
            self.events += 1
            if b"event: ready\n" in block or b"event: received\n" in block:
                m = RE_STUDY.search(block)
                if m and m.group(1).decode() in want:
                    t = RE_TIME.search(block)
                    out.append((self.idx, "ready" if b"event: ready\n" in block else "received",
                                m.group(1).decode(), ts, int(t.group(1)) if t else 0))


RE_STUDY = re.compile(rb'"study":"([0-9.]+)"')
RE_TIME = re.compile(rb'"time_ms":(\d+)')


def sse_main(port, tokens, want, ready_evt, stop_evt, q):
    sel = selectors.DefaultSelector()
    streams = []
    for i, tok in enumerate(tokens):
        st = Stream(i, port, tok)
        streams.append(st)
        sel.register(st.s, selectors.EVENT_READ, st)
    out = []
    t_ready = time.time() + 10
    while time.time() < t_ready and not all(s.head for s in streams):
        for key, _ in sel.select(0.2):
            st = key.data
            data = st.s.recv(262144)
            if data:
                st.feed(data, time.time(), want, out)
    bad = [s.head.split("\r\n")[0] for s in streams if s.head and " 200 " not in s.head.split("\r\n")[0]]
    ready_evt.set()
    while not stop_evt.is_set():
        for key, _ in sel.select(0.2):
            st = key.data
            try:
                data = st.s.recv(262144)
            except BlockingIOError:
                continue
            ts = time.time()
            if not data:
                sel.unregister(st.s)
                st.closed = True
                continue
            st.feed(data, ts, want, out)
    q.put({"arrivals": out, "events": [s.events for s in streams],
           "connected": sum(1 for s in streams if s.head), "bad": bad[:3],
           "closed_early": sum(1 for s in streams if s.closed)})
    for s in streams:
        s.s.close()


# ---------------------------------------------------------------- readers


def reader_thread(p, token, seed, t_start, t_count, t_end, res):
    rnd = random.Random(seed)
    studies = p["studies"]
    center = p["center"]
    think = p["think_ms"] / 1000.0
    hdr = {"Authorization": "Bearer " + token, "Content-Length": "0"}
    lst = {"Authorization": "Bearer " + token}
    lat = {"claim": [], "release": [], "list": [], "healthz": []}
    codes = {}
    c = None

    def req(kind, method, url, headers):
        nonlocal c
        for attempt in (0, 1):
            try:
                if c is None:
                    c = conn(p["port"])
                t0 = time.perf_counter()
                w0 = time.time()
                c.request(method, url, headers=headers)
                r = c.getresponse()
                r.read()
                dt = (time.perf_counter() - t0) * 1000.0
                if w0 >= t_count:
                    lat[kind].append(dt)
                    key = "%s %d" % (kind, r.status)
                    codes[key] = codes.get(key, 0) + 1
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = None
                return r.status
            except (OSError, http.client.HTTPException) as e:
                if c is not None:
                    c.close()
                c = None
                key = "%s error %s" % (kind, type(e).__name__)
                codes[key] = codes.get(key, 0) + 1
        return 0

    def pause():
        if think > 0:
            # capped below the server's keep-alive timeout: a reader's connection stays open
            time.sleep(min(rnd.expovariate(1.0 / think), 20 * think, 8.0))

    now = time.time()
    if t_start > now:
        time.sleep(t_start - now)
    n = 0
    while time.time() < t_end:
        st = studies[rnd.randrange(len(studies))]
        base = "/api/v1/worklists/%s/items/%s/" % (center, st)
        code = req("claim", "POST", base + "claim", hdr)
        pause()
        if code == 200:
            req("release", "POST", base + "release", hdr)
            pause()
        n += 1
        if p["list_every"] > 0 and n % p["list_every"] == 0:
            req("list", "GET", "/api/v1/worklists/%s?limit=50" % center, lst)
            pause()
            req("healthz", "GET", "/healthz", {})
            pause()
    if c is not None:
        c.close()
    res.append((lat, codes))


def reader_proc(p, tokens, seeds, t_start, t_count, t_end, q):
    res = []
    th = [threading.Thread(target=reader_thread, args=(p, tok, sd, t_start, t_count, t_end, res))
          for tok, sd in zip(tokens, seeds)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    lat = {"claim": [], "release": [], "list": [], "healthz": []}
    codes = {}
    for l, c in res:
        for k in lat:
            lat[k] += l[k]
        for k, v in c.items():
            codes[k] = codes.get(k, 0) + v
    q.put({"lat": lat, "codes": codes})


# ---------------------------------------------------------------- probes


def storescu(p, path):
    env = dict(os.environ, TCP_NODELAY="1")
    r = subprocess.run(["timeout", "60", "storescu", "-aet", p["calling_ae"], "-aec", p["called_ae"],
                        "127.0.0.1", str(p["dicom_port"]), path],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode("latin-1", "replace")
    return r.returncode == 0 and not re.search(r"^(E|F):", out, re.M), out


def probes(p, tech_token, t_first, t_last, log):
    plist = p["probes"]  # [kind, study, file]
    if not plist:
        return []
    step = max(0.2, (t_last - t_first) / len(plist))
    c = conn(p["port"])
    hdr = {"Authorization": "Bearer " + tech_token, "Content-Length": "0"}
    rows = []
    for i, (kind, study, path) in enumerate(plist):
        at = t_first + i * step
        now = time.time()
        if at > now:
            time.sleep(at - now)
        ok, out = storescu(p, path)
        t_stored = time.time()
        row = {"kind": kind, "study": study, "stored": t_stored, "ok": ok}
        if not ok:
            log.append("probe %s: storescu failed: %s" % (study, out.strip().splitlines()[-1:]))
        if ok and kind == "complete":
            row["t0"] = time.time()
            try:
                c.request("POST", "/api/v1/exams/%s/complete" % study, headers=hdr)
                r = c.getresponse()
                r.read()
                row["status"] = r.status
            except (OSError, http.client.HTTPException) as e:
                c.close()
                c = conn(p["port"])
                row["status"] = str(e)
            row["t1"] = time.time()
            if row["status"] != 200:
                log.append("probe %s: complete answered %s" % (study, row["status"]))
        rows.append(row)
    c.close()
    return rows


# ---------------------------------------------------------------- run


def run(params_path, out_path):
    p = json.load(open(params_path))
    users = p["readers"]  # [[user, password], ...]
    t0 = time.time()
    tokens = [login(p["port"], u, pw) for u, pw in users]
    tech = login(p["port"], p["tech"][0], p["tech"][1])
    t_login = time.time() - t0
    want = set(s for _, s, _ in p["probes"])
    ctx = mp.get_context("fork")
    sse_q, sse_ready, sse_stop = ctx.Queue(), ctx.Event(), ctx.Event()
    nsse = min(p["sse_streams"], len(tokens))
    sse = None
    if nsse > 0:
        sse = ctx.Process(target=sse_main, args=(p["port"], tokens[:nsse], want, sse_ready, sse_stop,
                                                 sse_q))
        sse.start()
        sse_ready.wait(15)
    # readers
    t_start = time.time() + 1.0
    t_count = t_start + p["warmup_s"]
    t_end = t_count + p["duration_s"]
    procs = max(1, min(p["procs"], len(tokens)))
    rq = ctx.Queue()
    workers = []
    for k in range(procs):
        idx = list(range(k, len(tokens), procs))
        pr = ctx.Process(target=reader_proc,
                         args=(p, [tokens[i] for i in idx], [p["seed"] * 1000 + i for i in idx],
                               t_start, t_count, t_end, rq))
        pr.start()
        workers.append(pr)
    log = []
    # probes: spread over the measured window (not in the last second)
    prow = probes(p, tech, t_count + 0.5, t_end - 1.0, log)
    # results of the readers (before join: a full pipe blocks the child)
    lat = {"claim": [], "release": [], "list": [], "healthz": []}
    codes = {}
    for _ in workers:
        d = rq.get(timeout=p["duration_s"] + p["warmup_s"] + 300)
        for k in lat:
            lat[k] += d["lat"][k]
        for k, v in d["codes"].items():
            codes[k] = codes.get(k, 0) + v
    for pr in workers:
        pr.join(30)
    # the last probe's events may still be on their way
    deadline = time.time() + p["sse_drain_s"]
    while time.time() < deadline:
        time.sleep(0.1)
    sse_res = {"arrivals": [], "events": [], "connected": 0, "bad": [], "closed_early": 0}
    if sse is not None:
        sse_stop.set()
        sse_res = sse_q.get(timeout=60)
        sse.join(30)
    json.dump({"phase": p["phase"], "think_ms": p["think_ms"], "readers": len(tokens),
               "procs": procs, "duration_s": p["duration_s"], "warmup_s": p["warmup_s"],
               "quiet_s": p["quiet_s"], "login_s": t_login, "lat": lat, "codes": codes,
               "probes": prow, "sse": sse_res, "sse_streams": nsse, "log": log,
               "load": open("/proc/loadavg").read().split()[:3]}, open(out_path, "w"))


# ---------------------------------------------------------------- report


def f(x):
    return "n/a" if x is None else ("%.2f" % x if x < 100 else "%.0f" % x)


def report(paths):
    rows = []
    for path in paths:
        d = json.load(open(path))
        ph = d["phase"]
        tm = d["duration_s"]
        print("phase %s: %d readers (%d processes), think %s, %d s measured after %d s warm-up, "
              "%d SSE streams; load at end %s"
              % (ph, d["readers"], d["procs"],
                 ("exp. mean %d ms" % d["think_ms"]) if d["think_ms"] else "none (closed loop)",
                 tm, d["warmup_s"], d["sse_streams"], " ".join(d["load"])))
        codes = d["codes"]
        for op in ("claim", "release", "list", "healthz"):
            v = d["lat"].get(op, [])
            ok = codes.get("%s 200" % op, 0)
            other = {k.split(" ", 1)[1]: n for k, n in codes.items() if k.startswith(op + " ") and
                     k != "%s 200" % op}
            rows.append((ph, op, v, ok, other, "%.0f/s" % (len(v) / tm) if tm else ""))
        for line in d["log"][:5]:
            print("  note: " + line)
        s = d["sse"]
        if s["bad"] or s["closed_early"]:
            print("  note: SSE streams: %d connected, bad answers %s, %d closed early"
                  % (s["connected"], s["bad"], s["closed_early"]))
        ev = s["events"]
        if ev:
            print("  SSE: %d events delivered to %d streams (%.0f per stream per s)"
                  % (sum(ev), len(ev), sum(ev) / len(ev) / max(1, tm + d["warmup_s"])))
        # probes
        arr = {}
        recv = {}
        ready_ms = {}
        for idx, typ, study, ts, tms in s["arrivals"]:
            if typ == "ready":
                arr.setdefault(study, {}).setdefault(idx, ts)
                ready_ms.setdefault(study, tms)
            else:
                recv.setdefault(study, tms)
        nstreams = d["sse_streams"]
        for kind in ("complete", "quiet"):
            pr = [r for r in d["probes"] if r["kind"] == kind]
            if not pr:
                continue
            all_lat, worst, missing, last_inst, server, deliver = [], [], 0, [], [], []
            for r in pr:
                a = arr.get(r["study"], {})
                if kind == "complete":
                    if r.get("status") != 200:
                        missing += 1
                        continue
                    base = r["t0"]
                else:
                    if r["study"] not in recv:
                        missing += 1
                        continue
                    base = recv[r["study"]] / 1000.0 + d["quiet_s"]
                if len(a) < nstreams:
                    missing += 1
                lats = [(t - base) * 1000.0 for t in a.values()]
                if not lats:
                    continue
                all_lat += lats
                worst.append(max(lats))
                if r["study"] in ready_ms:  # the event's time_ms: when huren made it ready
                    server.append(ready_ms[r["study"]] - base * 1000.0)
                    deliver += [t * 1000.0 - ready_ms[r["study"]] for t in a.values()]
                if kind == "quiet":
                    last_inst += [(t - r["stored"]) * 1000.0 for t in a.values()]
            label = "ready after complete" if kind == "complete" else "ready after quiet end"
            rows.append((ph, label, all_lat, len(pr) - missing, {"missing": missing} if missing else {},
                         "%d probes" % len(pr), worst))
            if server:
                print("  %s probes: made ready by huren (event time_ms) p50 %s ms, p99 %s ms after %s; "
                      "then on the screens p50 %s ms, p99 %s ms later"
                      % (kind, f(pct(server, .5)), f(pct(server, .99)),
                         "the POST was sent" if kind == "complete" else "the quiet period ended",
                         f(pct(deliver, .5)), f(pct(deliver, .99))))
            if kind == "quiet" and last_inst:
                print("  quiet probes: last instance (storescu exit) -> ready on screen p50 %s ms, "
                      "p99 %s ms (quiet period %s s included)"
                      % (f(pct(last_inst, .5)), f(pct(last_inst, .99)), d["quiet_s"]))
    print()
    print("%-8s %-22s %9s %9s %9s %8s %-9s %9s %-7s %s"
          % ("phase", "what", "p50 ms", "p99 ms", "max ms", "n", "rate", "target", "verdict",
             "other answers"))
    for r in rows:
        ph, op, v, ok, other, rate = r[:6]
        p50, p99 = pct(v, .5), pct(v, .99)
        if op in ("claim", "release"):
            tgt, lim = "p99<10", 10.0
        elif op in ("list", "healthz"):
            tgt, lim = "(none)", None
        else:
            tgt, lim = "<1000", 1000.0
        if lim is None or p99 is None:
            verdict = "-" if lim is None else "n/a"
        else:
            verdict = "PASS" if p99 < lim else "MISS"
        oth = " ".join("%s:%d" % (k, n) for k, n in sorted(other.items()))
        print("%-8s %-22s %9s %9s %9s %8d %-9s %9s %-7s %s"
              % (ph, op, f(p50), f(p99), f(max(v) if v else None), len(v), rate, tgt, verdict, oth))
        if len(r) > 6 and r[6]:
            print("%-8s %-22s %9s %9s %9s %8d %-9s"
                  % ("", "  slowest screen/probe", f(pct(r[6], .5)), f(pct(r[6], .99)),
                     f(max(r[6])), len(r[6]), ""))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
