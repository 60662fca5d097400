#!/usr/bin/env python3
"""Instructions the gateway runs per delivered write and per read, counted
by valgrind's callgrind: a CPU cost that does not move with the machine's
load, so builds can be compared release over release (the wall-clock
benchmarks on this shared 2-vCPU VM move by 10-20 % between runs).

For each binary, on its default config in front of two nginx null sinks
(`/ping` and `/write` answer 204, `/query` a fixed JSON result), it runs the
gateway under callgrind several times:
- idle for a while: the background work per second (health checks, cursor
  flushes, housekeeping), subtracted from the runs below by their length;
- N and 2N writes of one Telegraf-like batch (one keep-alive connection,
  one after the other), each run ending once both sinks hold every batch
  (backlog 0 on /health): instructions per delivered write and per
  delivered GB of line protocol are the difference of the two runs;
- R and 2R reads of one query: instructions per read, the same way.
User-space instructions of every thread of the gateway; the kernel's work
(socket and page-cache copies, about a third of the gateway's CPU under
fan-out, see BENCHMARKS 1e) is not counted.

Called by scripts/bench-instructions.sh, which starts nginx.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fanout import gateway_config, max_backlog, telegraf_batch  # noqa: E402

QUERY = "/query?db=bench&q=SELECT%20usage_user%20FROM%20cpu%20WHERE%20host%3D%27server07%27%20LIMIT%2010"


def start(binary, sinks, work):
    port, data, cfg = gateway_config(work, sinks)
    out = os.path.join(data, "callgrind.out")
    log = open(os.path.join(data, "gw.log"), "w")
    gw = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "--config", cfg],
        stdout=log, stderr=log)
    for _ in range(1200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                # Every node usable, so no run waits on a node coming up.
                if json.load(r).get("message", "").startswith(f"{len(sinks)} of {len(sinks)}"):
                    break
        except urllib.error.HTTPError:
            pass  # 503 until the first health check passes
        except OSError:
            pass
        time.sleep(0.1)
    else:
        raise SystemExit(f"gateway did not become healthy: {open(log.name).read()[-2000:]}")
    return gw, port, out, log


def stop(gw, out, log):
    gw.send_signal(signal.SIGTERM)
    gw.wait(timeout=300)
    log.close()
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def run(binary, sinks, work, kind, n, body):
    """Instructions and seconds of one gateway run doing `n` of `kind`."""
    gw, port, out, log = start(binary, sinks, work)
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    # The sinks list no databases; a logged CREATE makes `bench` known (the
    # same in every run, so it cancels out of the differences).
    conn.request("POST", "/query?q=CREATE%20DATABASE%20bench")
    conn.getresponse().read()
    for _ in range(n):
        if kind == "write":
            conn.request("POST", "/write?db=bench", body=body,
                         headers={"Content-Type": "text/plain"})
        elif kind == "read":
            conn.request("GET", QUERY)
        else:
            break
        r = conn.getresponse()
        answer = r.read()
        if r.status // 100 != 2:
            raise SystemExit(f"{kind} answered {r.status}: {answer[:300]!r}")
    conn.close()
    if kind == "write":
        deadline = time.monotonic() + 600
        while max_backlog(port) != 0:
            if time.monotonic() > deadline:
                raise SystemExit("backlog did not drain")
            time.sleep(0.2)
    elif kind == "idle":
        time.sleep(n)
    seconds = time.monotonic() - t0
    return stop(gw, out, log), seconds


def measure(binary, sinks, work, writes, reads, idle):
    body = telegraf_batch(5000)
    i_idle, s_idle = run(binary, sinks, work, "idle", idle, body)
    i_base, s_base = run(binary, sinks, work, "idle", 0, body)
    per_s = (i_idle - i_base) / max(s_idle - s_base, 1e-9)
    res = {"background_per_s": per_s, "body_bytes": len(body)}
    for kind, n in (("write", writes), ("read", reads)):
        i1, s1 = run(binary, sinks, work, kind, n, body)
        i2, s2 = run(binary, sinks, work, kind, 2 * n, body)
        per = (i2 - i1 - per_s * (s2 - s1)) / n
        res[kind] = {"n": n, "runs": [[i1, s1], [i2, s2]], "per_op": per}
    res["write"]["per_gb"] = res["write"]["per_op"] / len(body) * 1e9
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sinks", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--reads", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=20)
    ap.add_argument("binaries", nargs="+", help="label=path")
    a = ap.parse_args()
    sinks = [int(p) for p in a.sinks.split(",")]
    results = {}
    for spec in a.binaries:
        label, path = spec.split("=", 1)
        r = measure(path, sinks, a.work, a.writes, a.reads, a.idle)
        results[label] = r
        print(f"{label}: {r['write']['per_op'] / 1e6:.2f} M instructions per delivered write "
              f"({r['body_bytes']} B, 5,000 lines; {r['write']['per_gb'] / 1e9:.2f} G per GB), "
              f"{r['read']['per_op'] / 1e3:.1f} k per read; "
              f"background {r['background_per_s'] / 1e6:.2f} M/s subtracted", flush=True)
    if len(results) > 1:
        labels = list(results)
        a0, b0 = results[labels[0]], results[labels[-1]]
        print(f"{labels[-1]} / {labels[0]}: writes {b0['write']['per_op'] / a0['write']['per_op']:.2f}x, "
              f"reads {b0['read']['per_op'] / a0['read']['per_op']:.2f}x")
    if os.environ.get("INSTR_JSON"):
        with open(os.environ["INSTR_JSON"], "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
