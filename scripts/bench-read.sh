#!/usr/bin/env bash
# Read benchmark: a small InfluxQL SELECT through the gateway vs the same
# query sent straight to one of its influxd nodes, in one run.
#
# Setup: two real influxd 1.x processes (temp dirs, free ports, full config
# file via -config), the gateway in front of both, database + 10k points
# written *through the gateway* and replicated to both nodes. Then wrk runs
# GET /query against the node directly and against the gateway, alternating
# (direct, gateway, direct, gateway) so drifting machine load hits both sides.
# When nginx is installed, the saturated runs also go through nginx as a plain
# reverse proxy in front of the same two nodes (keep-alive upstream, access
# log on, `worker_processes auto`): what a generic proxy costs on the same
# cores, as a reference for the gateway's ratio. Each proxied run also
# reports the proxy's own CPU per request (from /proc/PID/stat).
#
# Usage: scripts/bench-read.sh [seconds] [connections] [points]
#   INMATE_BIN=path  measures that binary instead of building
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-32}; POINTS=${3:-10000}
command -v influxd >/dev/null || { echo "needs influxd (apt-get install -y influxdb)"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
[ -n "${INMATE_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=scripts/bench-read-lib.sh
source scripts/bench-read-lib.sh
start_influxd n1; N1=$PORT
start_influxd n2; N2=$PORT

start_gateway "$N1" "$N2"
# Database and data, through the gateway (so both nodes get them).
load_bench_data "$POINTS"

NGINX=""
if command -v nginx >/dev/null; then
  NP=$(free_port)
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log;
  upstream nodes { server 127.0.0.1:$N1; server 127.0.0.1:$N2; keepalive 64; }
  server {
    listen 127.0.0.1:$NP;
    location / { proxy_pass http://nodes; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"
  trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true; cleanup' EXIT
  NGINX="http://127.0.0.1:$NP"
fi

Q=$BENCH_QUERY
# The processes of the proxy under test: the gateway, or nginx's master
# and workers; none for direct runs.
proxy_pids() { # label
  case $1 in
    gateway) echo "$GWPID" ;;
    nginx) echo "$(cat "$work/nginx/nginx.pid")" $(pgrep -P "$(cat "$work/nginx/nginx.pid")") ;;
  esac
}
run() { # url label [connections] -> "label req/s p50 p99 proxy-CPU-us-per-request"
  local c=${3:-$CONNS} t=2
  [ "$c" -lt 2 ] && t=1
  wrk_cpu_run "$1/query?$Q" "$2" "$(proxy_pids "$2")" -t$t -c"$c"
}
echo "query: GET /query?$Q"
echo "$CONNS connections, ${DUR}s per run, runs alternate direct/gateway"
curl -sf -o /dev/null "$GW/query?$Q" || { echo "query through gateway failed"; curl -s "$GW/query?$Q"; exit 1; }
wrk -t1 -c4 -d2s "http://127.0.0.1:$N1/query?$Q" >/dev/null
wrk -t1 -c4 -d2s "$GW/query?$Q" >/dev/null
if [ -n "$NGINX" ]; then wrk -t1 -c4 -d2s "$NGINX/query?$Q" >/dev/null; fi
summary() {
awk '
  { n[$1]++; rps[$1]+=$2; p50[$1]+=$3; p99[$1]+=$4; cpu[$1]+=$5 }
  END {
    for (k in n) { rps[k]/=n[k]; p50[k]/=n[k]; p99[k]/=n[k]; cpu[k]/=n[k] }
    printf "direct influxd: %.0f req/s  p50 %.3f ms  p99 %.3f ms (mean of %d runs)\n", rps["direct"], p50["direct"], p99["direct"], n["direct"]
    printf "gateway:        %.0f req/s  p50 %.3f ms  p99 %.3f ms (mean of %d runs)\n", rps["gateway"], p50["gateway"], p99["gateway"], n["gateway"]
    printf "ratio gateway/direct req/s: %.2fx\n", rps["gateway"]/rps["direct"]
    if (n["nginx"]) printf "nginx proxy:    %.0f req/s  p50 %.3f ms  p99 %.3f ms (reference; ratio to direct %.2fx)\n", rps["nginx"], p50["nginx"], p99["nginx"], rps["nginx"]/rps["direct"]
    printf "added latency: p50 %+.3f ms, p99 %+.3f ms\n", p50["gateway"]-p50["direct"], p99["gateway"]-p99["direct"]
    printf "proxy CPU per request: gateway %.1f us", cpu["gateway"]
    if (n["nginx"]) printf ", nginx %.1f us (master and workers)", cpu["nginx"]
    printf "\n"
  }' "$1"
}
echo "== saturated: $CONNS connections (throughput; the machine's 2 cores are the limit)"
{
  for _ in 1 2; do
    run "http://127.0.0.1:$N1" direct
    run "$GW" gateway
    if [ -n "$NGINX" ]; then run "$NGINX" nginx; fi
  done
} | tee "$work/results"
summary "$work/results"
echo "== unsaturated: 1 connection (added latency without CPU contention)"
{
  run "http://127.0.0.1:$N1" direct 1
  run "$GW" gateway 1
  run "http://127.0.0.1:$N1" direct 1
  run "$GW" gateway 1
} | tee "$work/results1"
summary "$work/results1"
