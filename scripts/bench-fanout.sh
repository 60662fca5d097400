#!/usr/bin/env bash
# Write fan-out benchmark: Inmate (durable, fsync always) vs nginx's `mirror`
# module, both fanning the same POST /write out to two null sinks (nginx
# `return 204`), in one run on this machine. Prints requests/s and the ratio.
#
# Usage: scripts/bench-fanout.sh [seconds] [connections] [lines-per-request]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-32}; LINES=${3:-1000}
command -v nginx >/dev/null || { echo "needs nginx (apt-get install -y nginx)"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/inmate"
work=$(mktemp -d "${TMPDIR:-/tmp}/inmate-bench.XXXXXX")
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "${GW:-}" ] && kill "$GW" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
S1=$(free_port); S2=$(free_port); MIR=$(free_port)
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  client_max_body_size 50m;
  client_body_buffer_size 1m;
  upstream sink1 { server 127.0.0.1:$S1; keepalive 64; }
  upstream sink2 { server 127.0.0.1:$S2; keepalive 64; }
  server { listen 127.0.0.1:$S1; location / { return 204; } }
  server { listen 127.0.0.1:$S2; location / { return 204; } }
  server {
    listen 127.0.0.1:$MIR;
    location / {
      mirror /mirror2;
      mirror_request_body on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://sink1;
    }
    location = /mirror2 {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://sink2\$request_uri;
    }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
GWPORT=$(free_port)
cat > "$work/inmate.yaml" <<CONF
addresses:
  - url: http://127.0.0.1:$S1
    gzip: false
  - url: http://127.0.0.1:$S2
    gzip: false
bind_address: 127.0.0.1
port: $GWPORT
data_dir: $work/data
log_level: warn
queue:
  fsync: ${FSYNC:-always}
CONF
"$BIN" --config "$work/inmate.yaml" >"$work/gw.log" 2>&1 &
GW=$!
# log_level warn hides the "listening" line, so poll /ping until it answers.
wait_for_ping "http://127.0.0.1:$GWPORT" || { echo "gateway did not start:"; cat "$work/gw.log"; exit 1; }
export LINES
run() {
  wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s bench/write.lua "$1" >"$work/wrk.out"
  grep -E 'Non-2xx|Socket errors' "$work/wrk.out" >&2 || true
  awk '/Requests\/sec/ {print $2}' "$work/wrk.out"
}
echo "batch: $LINES lines/request, $CONNS connections, ${DUR}s each"
# Warm up both, then measure.
wrk -t1 -c4 -d2s -s bench/write.lua "http://127.0.0.1:$MIR/write?db=bench" >/dev/null
wrk -t1 -c4 -d2s -s bench/write.lua "http://127.0.0.1:$GWPORT/write?db=bench" >/dev/null
NG=$(run "http://127.0.0.1:$MIR/write?db=bench")
# PERF=1: also profile the gateway during its run (perf report written to
# bench/fanout.perf.txt) and report its CPU use.
if [ "${PERF:-0}" = 1 ]; then
  perf record -F 499 -g -o "$work/perf.data" -p "$GW" -- sleep "$DUR" >/dev/null 2>&1 &
  PERFPID=$!
fi
CPU0=$(awk '{print $14+$15}' "/proc/$GW/stat")
IN=$(run "http://127.0.0.1:$GWPORT/write?db=bench")
CPU1=$(awk '{print $14+$15}' "/proc/$GW/stat")
echo "gateway CPU during its run: $(awk -v a="$CPU0" -v b="$CPU1" -v d="$DUR" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f%%", (b-a)/hz/d*100 }') of one core"
if [ -n "${PERFPID:-}" ]; then
  wait "$PERFPID" || true
  perf report -i "$work/perf.data" --no-children -g none --sort dso,sym --percent-limit 0.7 --stdio 2>/dev/null | grep -v '^$' | head -120 > bench/fanout.perf.txt || true
fi
echo "nginx mirror: $NG req/s"
echo "inmate:       $IN req/s (fsync ${FSYNC:-always})"
python3 -c "print(f'ratio inmate/nginx-mirror: {float(\"$IN\")/float(\"$NG\"):.2f}x')"
