#!/usr/bin/env python3
"""Write fan-out benchmark: Inmate on its default config vs nginx `mirror`.

Both fan the same POSTs out to two null sinks (nginx `return 204`), in one
run, alternating. For the gateway it reports what users get:

- ack/s: batches acknowledged per second while wrk runs;
- delivered/s: batches held by *every* node, i.e. acknowledged batches
  divided by the time from the start of the load until both nodes' backlog
  is 0 (a gateway that acknowledges fast but delivers slowly shows here);
- backlog samples during the run (records queued for the slowest node), so a
  backlog that grows at the saturating rate is visible;
- gateway CPU-seconds per delivered GB of client line protocol (from
  /proc/PID/stat, start of load to end of delivery): a figure that does not
  depend on how wrk shares the cores;
- the gateway's own writes to storage (/proc/PID/io `write_bytes`) in MB/s
  against `dd ... conv=fdatasync` on the same filesystem in the same run
  (the log is durable before each ack, so the disk bounds the ack rate).

Called by scripts/bench-fanout.sh, which builds the release binary and
starts nginx; see BENCHMARKS.md for the rows it produced.
"""

import argparse
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def telegraf_batch(lines):
    """Timestamped Telegraf-like cpu lines (~128 bytes each) with varying
    values (a fixed pseudo-random sequence), so gzip sees a realistic ratio
    (~6-8x at level 6) rather than a repetitive one."""
    out = []
    ts = 1_700_000_000_000_000_000
    x = 12345
    for i in range(lines):
        vals = []
        for _ in range(4):
            x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            vals.append(x >> 11)
        out.append(
            "cpu,host=server%02d,region=us-west,cpu=cpu%d usage_user=%.3f,"
            "usage_system=%.3f,usage_idle=%.3f,usage_iowait=%di %d"
            % (i % 50, i % 8, vals[0] % 10_000_000 / 1e5, vals[1] % 10_000_000 / 1e5,
               vals[2] % 10_000_000 / 1e5, vals[3] % 1000, ts + i * 1_000_003 + vals[3] % 1000)
        )
    return ("\n".join(out) + "\n").encode()


def wrk(url, seconds, conns, body_file, gz, lua, delay_ms=0):
    env = dict(os.environ, BODY_FILE=body_file, GZIP="1" if gz else "0", DELAY_MS=str(delay_ms))
    threads = min(2, conns)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua, url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return {
        "total": total,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
        "p50": lat.get("50"),
        "p99": lat.get("99"),
        "rps": total / seconds,
    }


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 503 while no node is usable
        return json.load(e)


def max_backlog(port):
    try:
        return max(n["backlog_records"] for n in health(port)["nodes"])
    except Exception:
        return -1


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def io_write_bytes(pid):
    """Bytes the process caused to be sent to storage (/proc/PID/io)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def dd_mb_s(work, mib=1024):
    """The disk's own durable rate where the gateway keeps its log:
    `dd if=/dev/zero bs=1M count=<mib> conv=fdatasync` (one fdatasync at
    the end, the best case for the disk), in MB/s."""
    path = os.path.join(work, "dd.bin")
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fdatasync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    os.remove(path)
    return mib * 1048576 / dt / 1e6


def gateway_config(work, sinks, extra_yaml=""):
    """A fresh data dir under `work` with a config naming only the sinks,
    a free port and that dir (plus `extra_yaml`): (port, data dir, config)."""
    port = free_port()
    data = tempfile.mkdtemp(dir=work, prefix="gw-")
    cfg = os.path.join(data, "inmate.yaml")
    with open(cfg, "w") as f:
        f.write("addresses:\n")
        for s in sinks:
            f.write(f"  - url: http://127.0.0.1:{s}\n")
        f.write(f"bind_address: 127.0.0.1\nport: {port}\ndata_dir: {data}/data\n")
        f.write(extra_yaml)
    return port, data, cfg


def run_gateway(binary, sinks, extra_yaml, work, seconds, conns, body_file, gz, lua, plain_bytes, latency=False):
    port, data, cfg = gateway_config(work, sinks, extra_yaml)
    log = open(os.path.join(data, "gw.log"), "w")
    gw = subprocess.Popen([binary, "--config", cfg], stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise SystemExit(f"gateway did not start: {open(log.name).read()}")
        url = f"http://127.0.0.1:{port}/write?db=bench"
        # Warm up (connections, page cache, allocator), then let it drain.
        wrk(url, 2, 4, body_file, gz, lua)
        drain(port, 60)
        cpu0 = cpu_seconds(gw.pid)
        io0 = io_write_bytes(gw.pid)
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, __file__, "--sample-backlog", str(port), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        res = wrk(url, seconds, conns, body_file, gz, lua)
        io1 = io_write_bytes(gw.pid)
        samples = proc.communicate()[0].split()
        drained = drain(port, 300)
        t1 = time.monotonic()
        cpu1 = cpu_seconds(gw.pid)
        acked = res["total"] - res["non2xx"]
        res.update(
            acked_rps=acked / seconds,
            delivered_rps=acked / (t1 - t0) if drained else 0.0,
            drain_s=(t1 - t0) - seconds,
            backlog=samples,
            cpu_s=cpu1 - cpu0,
            cpu_per_gb=(cpu1 - cpu0) / (acked * plain_bytes / 1e9) if acked else 0.0,
            drained=drained,
            disk_mb_s=(io1 - io0) / seconds / 1e6,
        )
        # Ack latency at half the saturating rate: each connection waits
        # between requests so that together they offer ~50 % of it.
        if latency and res["acked_rps"] > 0:
            delay = int(conns * 1000 / (0.5 * res["acked_rps"]))
            half = wrk(url, seconds, conns, body_file, gz, lua, delay_ms=delay)
            drain(port, 300)
            res.update(half_rps=half["rps"], half_p50=half["p50"], half_p99=half["p99"])
        return res
    finally:
        gw.terminate()
        gw.wait(timeout=30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def drain(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = health(port)
        if all(n["backlog_records"] == 0 for n in h["nodes"]):
            return True
        time.sleep(0.02)
    return False


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--sample-backlog":
        port, seconds = int(sys.argv[2]), float(sys.argv[3])
        for _ in range(3):
            time.sleep(seconds / 3 - 0.05)
            print(max_backlog(port), flush=True)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--before-bin", default="")
    ap.add_argument("--sinks", required=True, help="two sink ports, comma-separated")
    ap.add_argument("--mirror", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--extra-yaml", default="", help="config keys that differ from the defaults")
    ap.add_argument("--lua", required=True)
    a = ap.parse_args()
    sinks = a.sinks.split(",")
    work = tempfile.mkdtemp(prefix="inmate-fanout-")
    try:
        plain = telegraf_batch(a.lines)
        gz = gzip.compress(plain, compresslevel=6)
        pf, gf = os.path.join(work, "batch.lp"), os.path.join(work, "batch.lp.gz")
        open(pf, "wb").write(plain)
        open(gf, "wb").write(gz)
        print(f"batch: {a.lines} lines, {len(plain)} bytes plain, {len(gz)} bytes gzip; "
              f"{a.conns} connections, {a.seconds}s per measurement; config: "
              f"{'defaults' if not a.extra_yaml else a.extra_yaml.strip()}")
        mirror = f"http://127.0.0.1:{a.mirror}/write?db=bench"
        wrk(mirror, 2, 4, pf, False, a.lua)
        rows = []
        for run in range(1, a.runs + 1):
            ng = wrk(mirror, a.seconds, a.conns, pf, False, a.lua)
            ngz = wrk(mirror, a.seconds, a.conns, gf, True, a.lua)
            r = {"run": run, "nginx_plain": ng["rps"], "nginx_gzip": ngz["rps"], "dd_mb_s": dd_mb_s(work)}
            r["plain"] = run_gateway(a.bin, sinks, a.extra_yaml, work, a.seconds, a.conns, pf, False, a.lua, len(plain),
                                     latency=True)
            r["gzip"] = run_gateway(a.bin, sinks, a.extra_yaml, work, a.seconds, a.conns, gf, True, a.lua, len(plain))
            if a.before_bin:
                r["before"] = run_gateway(a.before_bin, sinks, a.extra_yaml, work, a.seconds, a.conns, pf, False,
                                          a.lua, len(plain))
            rows.append(r)
            p, g = r["plain"], r["gzip"]
            line = (f"run {run}: nginx mirror {ng['rps']:.0f}/s (gzip bodies {ngz['rps']:.0f}/s) | "
                    f"inmate plain ack {p['acked_rps']:.0f}/s delivered {p['delivered_rps']:.0f}/s "
                    f"= {p['delivered_rps'] / ng['rps']:.2f}x mirror, drain {p['drain_s']:.1f}s, "
                    f"backlog {'/'.join(p['backlog'])}, {p['cpu_per_gb']:.2f} CPU-s/GB, "
                    f"log to disk {p['disk_mb_s']:.0f} MB/s vs dd {r['dd_mb_s']:.0f} MB/s "
                    f"({p['disk_mb_s'] / r['dd_mb_s']:.2f}x); at {p.get('half_rps', 0):.0f}/s "
                    f"(half) ack p50 {p.get('half_p50')} p99 {p.get('half_p99')} | "
                    f"inmate gzip ack {g['acked_rps']:.0f}/s delivered {g['delivered_rps']:.0f}/s "
                    f"= {g['delivered_rps'] / p['delivered_rps'] if p['delivered_rps'] else 0:.2f}x plain, "
                    f"{g['cpu_per_gb']:.2f} CPU-s/GB")
            if a.before_bin:
                b = r["before"]
                line += (f" | before: ack {b['acked_rps']:.0f}/s delivered {b['delivered_rps']:.0f}/s, "
                         f"{b['cpu_per_gb']:.2f} CPU-s/GB")
            for k in ("plain", "gzip", "before"):
                if k in r and (r[k]["non2xx"] or r[k]["socket_errors"]):
                    line += f" [{k}: non-2xx {r[k]['non2xx']}, socket errors {r[k]['socket_errors']}]"
            print(line, flush=True)
        json.dump(rows, open(os.environ.get("FANOUT_JSON", os.devnull), "w"), indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
