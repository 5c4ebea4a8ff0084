#!/usr/bin/env python3
"""bench/worklist_history.py: the history phase of bench/worklist (stdlib only).

  worklist_history.py fill SHA CENTER FROM TO NOW_MS   RESP on stdout for redis-cli --pipe
  worklist_history.py measure PARAMS.json OUT.json     list latencies, one history size
  worklist_history.py report OUT.json...               the table and the ratios

fill: past items FROM..TO-1 (study UIDs 2.25.9<i>), each one through the
worklist script itself (EVALSHA SHA, the script huren loaded: the same keys
and sets a real exam leaves): arrive, complete, claim, reported, final, with
times one year before NOW_MS + 30 s per item (due 400 days after arrival,
leases of 800 days: the sweeper, on the real clock, leaves them alone). Hospital township1 or
township2 (alternating), modality CT or MR (every other pair), the report
by reader01..reader05 in turn, routine. The commands go to huren's Redis
through `redis-cli --pipe` (no round trip per command): 1 M DICOM studies
over C-STORE would take hours on a 2-core machine.

measure: for each listing of PARAMS["queries"] ([name, path, token key]),
`warm` unmeasured then `n` measured GETs on one keep-alive connection (the
time from sending to the last byte); a path with {deep} gets the `next` of
a first page listed from the middle of the history ({mid}: a date). Writes
p50/p99 (ms) per listing and the history size.
"""
import http.client
import json
import socket
import sys
import time

DAY_MS = 86400000
# leases and due times beyond now: huren's sweeper (real clock) must not
# expire a claim or flag an item overdue between two steps of the fill
LEASE_MS = 800 * DAY_MS
DUE_MS = 400 * DAY_MS


def resp(args):
    out = ["*%d\r\n" % len(args)]
    for a in args:
        b = str(a)
        out.append("$%d\r\n%s\r\n" % (len(b.encode()), b))
    return "".join(out)


def fill(sha, center, lo, hi, now_ms):
    w = sys.stdout.write
    start = now_ms - 365 * DAY_MS
    batch = []
    for i in range(lo, hi):
        study = "2.25.9%d" % i
        key = "hr:wl:{%s}" % study
        t = start + i * 30000
        hosp = "township1" if i % 2 == 0 else "township2"
        mod = "CT" if i % 4 < 2 else "MR"
        reader = "reader%02d" % (i % 5 + 1)

        def op(name, when, *rest):
            batch.append(resp(["EVALSHA", sha, 1, key, name, when, 100000] + list(rest)))

        op("arrive", t, study, center, "routine", -1, 30000, t + DUE_MS, hosp, mod,
           "%s|P%d" % (hosp, i), "PAST^%d" % i, "A%d" % i, "20250101", "", 0, 0)
        op("complete", t + 1, study, "")
        op("claim", t + 2, study, reader, LEASE_MS)
        op("set_state", t + 3, study, "reported", reader)
        op("set_state", t + 4, study, "final", reader)
        if len(batch) >= 5000:
            w("".join(batch))
            batch = []
    w("".join(batch))


def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit("GET %s: %d %s" % (path, r.status, body[:200]))
    return body


def measure(params_path, out_path):
    p = json.load(open(params_path))
    conn = http.client.HTTPConnection("127.0.0.1", p["port"], timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    res = {"past": p["past"], "rows": []}
    for name, path, who in p["queries"]:
        tok = p["tokens"][who]
        if "{deep}" in path:
            first = json.loads(get(conn, path.replace("{deep}", "").replace("{mid}", p["mid"]), tok))
            if not first.get("next"):
                raise SystemExit("%s: no next page" % name)
            path = path.replace("{deep}", "&cursor=" + first["next"])
        path = path.replace("{mid}", p["mid"])
        for _ in range(p["warm"]):
            get(conn, path, tok)
        times, items, matched = [], 0, None
        for _ in range(p["n"]):
            t0 = time.perf_counter()
            body = get(conn, path, tok)
            times.append((time.perf_counter() - t0) * 1000)
        doc = json.loads(body)
        items = len(doc["items"])
        matched = doc.get("counts", {}).get("matched", doc.get("total"))
        res["rows"].append({"name": name, "path": path, "items": items, "matched": matched,
                            "p50": pct(times, 0.5), "p99": pct(times, 0.99)})
    json.dump(res, open(out_path, "w"))


def report(paths):
    runs = [json.load(open(x)) for x in paths]
    runs.sort(key=lambda r: r["past"])
    head = "%-34s" % "listing (limit 50)"
    for r in runs:
        head += " %22s" % ("%d past: p50 / p99 ms" % r["past"])
    head += "   ratio %d/%d p50 p99" % (runs[-1]["past"], runs[0]["past"])
    print(head)
    worst = worst50 = 0
    for i, row in enumerate(runs[0]["rows"]):
        line = "%-34s" % row["name"]
        for r in runs:
            x = r["rows"][i]
            line += " %13.2f / %6.2f" % (x["p50"], x["p99"])
        r50 = runs[-1]["rows"][i]["p50"] / runs[0]["rows"][i]["p50"]
        ratio = runs[-1]["rows"][i]["p99"] / runs[0]["rows"][i]["p99"]
        worst = max(worst, ratio)
        worst50 = max(worst50, r50)
        line += "   %.2f %.2f  (items %s, matched %s at %d)" % (
            r50, ratio, runs[-1]["rows"][i]["items"], runs[-1]["rows"][i]["matched"],
            runs[-1]["past"])
        print(line)
    print("largest ratio: p50 %.2f, p99 %.2f (flat: close to 1)" % (worst50, worst))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "fill":
        fill(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "measure":
        measure(sys.argv[2], sys.argv[3])
    elif cmd == "report":
        report(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
