#!/usr/bin/env bash
# Read scale-out benchmark: the gateway in front of two capacity-capped node
# stand-ins vs one stand-in directly, then with one stand-in slowed.
#
# A stand-in (a small asyncio HTTP server, written below) answers /query with
# a fixed result after a fixed service time, serving at most 4 requests at a
# time (the rest queue), like a node whose CPU is the limit; /ping answers
# 204 and /count how many queries it served. With capacity per node capped,
# two nodes behind the gateway should serve close to twice the reads of one.
# Then the second stand-in is slowed (25 ms instead of 5 ms): load-aware
# choice should send most reads to the fast one.
#
# Usage: scripts/bench-read-scale.sh [seconds] [connections] [service_ms] [slow_ms]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-32}; FAST_MS=${3:-5}; SLOW_MS=${4:-25}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
[ -n "${INMATE_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=scripts/bench-read-lib.sh
source scripts/bench-read-lib.sh

cat > "$work/stub.py" <<'PY'
import asyncio, sys
port, service_ms, cap = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
slots = asyncio.Semaphore(cap)
served = 0
BODY = b'{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","v"],"values":[["2023-11-14T22:13:20Z",1]]}]}]}'
def reply(status, body=b"", ctype=b"application/json"):
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype +
            b"\r\nX-Influxdb-Version: 1.6-stub\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
async def handle(reader, writer):
    global served
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0]
            path = line.split(b" ")[1].split(b"?")[0]
            for h in head.split(b"\r\n"):
                if h.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(h.split(b":")[1]))
            if path == b"/query":
                async with slots:
                    await asyncio.sleep(service_ms / 1000)
                    served += 1
                writer.write(reply(b"200 OK", BODY))
            elif path == b"/count":
                writer.write(reply(b"200 OK", str(served).encode(), b"text/plain"))
            else:
                writer.write(reply(b"204 No Content"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY

start_stub() { # port service_ms
  python3 "$work/stub.py" "$1" "$2" 4 >"$work/stub-$1.log" 2>&1 &
  PIDS+=($!)
  wait_ping "http://127.0.0.1:$1" "stub on $1"
}
S1=$(free_port); S2=$(free_port)
start_stub "$S1" "$FAST_MS"
start_stub "$S2" "$FAST_MS"

start_gateway "$S1" "$S2"

Q='q=SELECT%20v%20FROM%20cpu%20LIMIT%201&db=bench'
run() { # url label
  wrk_run "$1/query?$Q" "$2" -t2 -c"$CONNS" |
    awk '{ l = $1; for (i = 2; i <= NF - 3; i++) l = l " " $i
           printf "%-32s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms\n", l, $(NF-2), $(NF-1), $NF }'
}
counts() { echo "$(curl -sf "http://127.0.0.1:$S1/count") $(curl -sf "http://127.0.0.1:$S2/count")"; }

echo "stand-ins: ${FAST_MS} ms per query, at most 4 at a time; $CONNS connections, ${DUR}s per run"
wrk -t1 -c4 -d2s "$GW/query?$Q" >/dev/null
run "http://127.0.0.1:$S1" "direct (one stand-in)" | tee "$work/r"
run "$GW" "gateway (two stand-ins)" | tee -a "$work/r"
awk '{ r[NR] = $(NF-7) } END { printf "scale-out: %.2fx\n", r[2] / r[1] }' "$work/r"

# Slow the second stand-in: restart it with the slow service time.
kill "${PIDS[1]}" 2>/dev/null || true
wait "${PIDS[1]}" 2>/dev/null || true
start_stub "$S2" "$SLOW_MS"
sleep 1
read -r a0 b0 < <(counts)
run "$GW" "gateway (one slowed to ${SLOW_MS} ms)"
read -r a1 b1 < <(counts)
fast=$((a1 - a0)); slow=$((b1 - b0))
echo "reads served: fast $fast, slow $slow ($(awk -v f="$fast" -v s="$slow" 'BEGIN { printf "%.0f", 100 * f / (f + s) }')% to the fast one)"
