#!/usr/bin/env python3
"""Recognition lookups of bench/recognition (python3 stdlib only).

One keep-alive HTTP/1.1 connection (TCP_NODELAY), one request at a time:
GET /api/v1/recognition?id_type=national_id&id=<number> for persons drawn at
random (fixed seed) among the N that huren-bench-persons filled, then for
numbers nobody has (valid check character, never linked). A request's time
runs from sending it to the last byte of the answer. Every answer is checked
against what the filler wrote: a person with one recognizable CT-HEAD result,
and (every SECOND_EVERY-th person) one MR-HEAD result that is not recognizable
(qc_lapsed); an unknown number: 200, no person, no result.

With --redis-sock, the Redis commands of each phase are counted from INFO
commandstats (minus huren's background rate, measured while idle before) and
printed per lookup, with the time Redis spent executing them (commandstats
usec: inside Redis, without the round trips).

Prints one JSON object per phase on stdout.
"""
import argparse
import http.client
import json
import random
import socket
import subprocess
import sys
import time

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def national_id(i):
    """The number huren-bench-persons gives person i (GB 11643 check)."""
    d17 = "42010219%09d" % i
    s = sum(int(c) * w for c, w in zip(d17, WEIGHTS))
    return d17 + "10X98765432"[s % 11]


def commandstats(sock):
    out = subprocess.run(["redis-cli", "-s", sock, "INFO", "commandstats"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    calls = {}  # name -> calls, and "usec:" + name -> microseconds inside Redis
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            fields = dict(kv.split("=", 1) for kv in rest.split(","))
            calls[name] = int(fields["calls"])
            calls["usec:" + name] = int(fields["usec"])
    return calls


def delta(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)}


def pct(sorted_ms, p):
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


class Client:
    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token
        self.conn = None

    def get(self, path):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", path, headers={"Authorization": "Bearer " + self.token})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body, (time.perf_counter() - t0) * 1000.0
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None  # the server closed a kept-alive connection: once more
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def check_known(i, every, status, body):
    if status != 200:
        return "status %d" % status
    d = json.loads(body)
    res = d.get("results", [])
    nok = d.get("not_recognizable", [])
    want_nok = 1 if i % every == 0 else 0
    if not d.get("person"):
        return "no person"
    if len(res) != 1 or res[0].get("item") != "CT-HEAD":
        return "results %s" % [r.get("item") for r in res]
    if len(nok) != want_nok or (want_nok and (nok[0].get("item"), nok[0].get("reason")) !=
                                ("MR-HEAD", "qc_lapsed")):
        return "not_recognizable %s" % [(r.get("item"), r.get("reason")) for r in nok]
    if d.get("truncated") or len(d.get("grant", {}).get("studies", [])) != 1:
        return "grant %s" % d.get("grant")
    return None


def check_unknown(status, body):
    if status != 200:
        return "status %d" % status
    d = json.loads(body)
    if d.get("person") is not None or d.get("results") or d.get("not_recognizable"):
        return "an unknown number found something"
    return None


def phase(cli, name, ids, check, sock, idle_rate):
    before = commandstats(sock) if sock else None
    t0 = time.monotonic()
    lat, bad = [], {}
    for i in ids:
        st, body, ms = cli.get("/api/v1/recognition?id_type=national_id&id=" + national_id(i))
        lat.append(ms)
        why = check(i, st, body)
        if why:
            bad[why] = bad.get(why, 0) + 1
    secs = time.monotonic() - t0
    out = {"phase": name, "n": len(lat)}
    lat.sort()
    out.update({"p50_ms": round(pct(lat, 50), 3), "p90_ms": round(pct(lat, 90), 3),
                "p99_ms": round(pct(lat, 99), 3), "max_ms": round(lat[-1], 3),
                "mean_ms": round(sum(lat) / len(lat), 3), "seconds": round(secs, 2),
                "bad": bad})
    if sock:
        d = delta(before, commandstats(sock))
        d.pop("info", None)
        d.pop("usec:info", None)
        per, usec, by = {}, 0.0, {}
        for k, v in d.items():
            v -= idle_rate.get(k, 0.0) * secs
            if k.startswith("usec:"):
                usec += v
                if v / len(lat) >= 0.5:
                    by[k[5:]] = round(v / len(lat), 1)
            elif v / len(lat) >= 0.05:
                per[k] = round(v / len(lat), 2)
        out["redis_usec_by_command"] = dict(sorted(by.items(), key=lambda kv: -kv[1]))
        out["redis_per_lookup"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
        out["redis_cmds_per_lookup"] = round(sum(per.values()), 1)
        out["redis_usec_per_lookup"] = round(usec / len(lat), 1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--persons", type=int, required=True, help="persons 0..N-1 exist")
    ap.add_argument("--second-every", type=int, default=10)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--unknown", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--redis-sock", default="")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    cli = Client("127.0.0.1", a.port, a.token)
    idle = {}
    if a.redis_sock:  # huren's own background commands (sweeps, checkpoints)
        s0 = commandstats(a.redis_sock)
        time.sleep(3)
        idle = {k: v / 3.0 for k, v in delta(s0, commandstats(a.redis_sock)).items()}
        idle.pop("info", None)
        idle.pop("usec:info", None)
    known = lambda i, st, body: check_known(i, a.second_every, st, body)  # noqa: E731
    unknown = lambda i, st, body: check_unknown(st, body)  # noqa: E731
    phase(cli, "warmup", [rnd.randrange(a.persons) for _ in range(a.warmup)], known, "", idle)
    ids = [rnd.randrange(a.persons) for _ in range(a.requests)]
    print(json.dumps(phase(cli, "known", ids, known, a.redis_sock, idle)), flush=True)
    # numbers beyond any filled person (the filler's i stays below 1e9)
    ids = [999000000 + rnd.randrange(1000000) for _ in range(a.unknown)]
    print(json.dumps(phase(cli, "unknown", ids, unknown, a.redis_sock, idle)), flush=True)
    if a.redis_sock:
        print(json.dumps({"phase": "idle", "redis_per_s": {
            k: round(v, 1) for k, v in idle.items() if not k.startswith("usec:")}}))


if __name__ == "__main__":
    sys.exit(main())
