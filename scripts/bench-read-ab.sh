#!/usr/bin/env bash
# Read A/B: two gateway binaries in front of the SAME two influxd, on the
# default config, taking turns. Each round runs wrk straight to node 1,
# then through gateway A, then through gateway B; every run prints
# req/s, p50, p99 and the gateway's CPU per read (ticks from
# /proc/PID/stat around its run).
#
# Why a separate script: on a shared 2-vCPU VM, direct throughput moves by
# tens of percent within minutes, so two bench-read.sh runs, one per binary,
# compare machines as much as binaries. Here A and B share the nodes, the
# data and every minute of the run; CPU per read is the steadier figure.
#
# Usage: A_BIN=path B_BIN=path scripts/bench-read-ab.sh [seconds] [connections] [rounds]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
DUR=${1:-8}; CONNS=${2:-32}; ROUNDS=${3:-6}
: "${A_BIN:?set A_BIN and B_BIN to the two binaries}" "${B_BIN:?set A_BIN and B_BIN}"
command -v influxd >/dev/null || { echo "needs influxd (apt-get install -y influxdb)"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
# shellcheck source=scripts/bench-read-lib.sh
source scripts/bench-read-lib.sh
start_influxd n1; N1=$PORT
start_influxd n2; N2=$PORT
start_gateway_as b "$B_BIN" "$N1" "$N2"; GW_B=$GW; PID_B=$GWPID
start_gateway_as a "$A_BIN" "$N1" "$N2"; GW_A=$GW; PID_A=$GWPID
load_bench_data 10000

one() { # label url [pid] -> "label req/s p50 p99 cpu-us-per-read" (0.0 without a pid)
  wrk_cpu_run "$2/query?$BENCH_QUERY" "$1" "${3:-}" -t2 -c"$CONNS"
}
for url in "http://127.0.0.1:$N1" "$GW_A" "$GW_B"; do
  curl -sf -o /dev/null "$url/query?$BENCH_QUERY" || { echo "query to $url failed"; exit 1; }
  wrk -t1 -c4 -d2s "$url/query?$BENCH_QUERY" >/dev/null
done
echo "A: $A_BIN"
echo "B: $B_BIN"
echo "$CONNS connections, ${DUR}s per run, $ROUNDS rounds (direct, A, B)"
echo "label req/s p50_ms p99_ms gateway_cpu_us_per_read"
for _ in $(seq "$ROUNDS"); do
  one direct "http://127.0.0.1:$N1"
  one A "$GW_A" "$PID_A"
  one B "$GW_B" "$PID_B"
done | tee "$work/rounds"
awk '
  { n[$1]++; rps[$1] += $2; cpu[$1] += $5 }
  $1 == "B" && prev_cpu != "" && $5 < prev_cpu { lower++ }
  $1 == "A" { prev_cpu = $5 }
  END {
    printf "mean: direct %.0f req/s; A %.0f req/s, %.1f us/read; B %.0f req/s, %.1f us/read\n",
      rps["direct"]/n["direct"], rps["A"]/n["A"], cpu["A"]/n["A"], rps["B"]/n["B"], cpu["B"]/n["B"]
    printf "B/A: req/s %.2fx, CPU per read %.2fx (B lower in %d of %d rounds)\n",
      (rps["B"]/n["B"])/(rps["A"]/n["A"]), (cpu["B"]/n["B"])/(cpu["A"]/n["A"]), lower, n["B"]
    printf "gateway/direct: A %.2fx, B %.2fx\n", rps["A"]/rps["direct"], rps["B"]/rps["direct"]
  }' "$work/rounds"
