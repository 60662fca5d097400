#!/usr/bin/env bash
# Memory while a node is down, then catch-up rate when it returns.
#
# Node 1 is a null sink (nginx `return 204`); node 2 is a closed port
# (nothing listening). wrk writes through the gateway (fsync always, the
# default) until node 2's backlog (`backlog_bytes` in /health) passes TARGET
# MB. The gateway's VmRSS is sampled every second. Then nginx starts
# listening on node 2's port and the backlog drain is timed; its MB/s is
# compared with the ingest MB/s of the write phase (same run).
#
# Usage: scripts/bench-memory.sh [target-MB] [connections] [lines-per-request] [max-write-seconds]
# QUEUE_EXTRA='cache_bytes: 32MiB' adds one key under `queue:` (a row that
# changes a default names it).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
TARGET_MB=${1:-2048}; CONNS=${2:-16}; LINES=${3:-1000}; MAXSECS=${4:-300}
command -v nginx >/dev/null || { echo "needs nginx"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk"; exit 1; }
# INMATE_BIN=path measures that binary instead of building.
if [ -z "${INMATE_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN="${INMATE_BIN:-${CARGO_TARGET_DIR:-target}/release/inmate}"
# Same disk as the build by default (tmpfs /tmp would measure RAM, not disk).
BASE=${BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-memory}
mkdir -p "$BASE"
# Absolute: nginx resolves -c against its -p prefix.
work=$(cd "$(mktemp -d "$BASE/run.XXXXXX")" && pwd)
GW=; WRK=
cleanup() {
  for f in "$work"/nginx*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  [ -n "$WRK" ] && kill "$WRK" 2>/dev/null || true
  [ -n "$GW" ] && kill "$GW" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
sink() { # name port: nginx null sink
  mkdir -p "$work/$1"
  cat > "$work/$1/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx-$1.pid;
error_log $work/$1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/$1/body;
  client_max_body_size 50m;
  client_body_buffer_size 2m;
  server { listen 127.0.0.1:$2; location / { return 204; } }
}
CONF
  nginx -c "$work/$1/nginx.conf" -p "$work/$1"
}
S1=$(free_port); DOWN=$(free_port); GWPORT=$(free_port)
sink s1 "$S1"
cat > "$work/inmate.yaml" <<CONF
addresses:
  - url: http://127.0.0.1:$S1
  - url: http://127.0.0.1:$DOWN
bind_address: 127.0.0.1
port: $GWPORT
data_dir: $work/data
log_level: warn
queue:
  fsync: always
  retry_max_delay: 1s
${QUEUE_EXTRA:+  $QUEUE_EXTRA}
CONF
"$BIN" --config "$work/inmate.yaml" >"$work/gw.log" 2>&1 &
GW=$!
URL="http://127.0.0.1:$GWPORT"
wait_for_ping "$URL" || { echo "gateway did not start"; cat "$work/gw.log"; exit 1; }

rss_mb() { awk '/VmRSS/ { printf "%.1f", $2/1024 }' "/proc/$GW/status"; }
backlog() { # node index -> backlog_bytes
  curl -s "$URL/health" | python3 -c "import json,sys; print(json.load(sys.stdin)['nodes'][$1]['backlog_bytes'])"
}
now() { date +%s.%N; }
echo "phase t_s rss_mb backlog_down_bytes backlog_up_bytes" > "$work/samples"
RSS0=$(rss_mb)
echo "start RSS: $RSS0 MB; writing until node 2 backlog >= $TARGET_MB MB ($CONNS conns, $LINES lines/req)"

export LINES
wrk -t2 -c"$CONNS" -d"${MAXSECS}s" -s bench/write.lua "$URL/write?db=bench" >"$work/wrk.out" 2>&1 &
WRK=$!
T0=$(now)
while :; do
  sleep 1
  B=$(backlog 1); B1=$(backlog 0); R=$(rss_mb)
  T=$(awk -v a="$(now)" -v b="$T0" 'BEGIN { printf "%.1f", a-b }')
  echo "write $T $R $B $B1" >> "$work/samples"
  [ "$B" -ge $((TARGET_MB * 1048576)) ] && break
  kill -0 "$WRK" 2>/dev/null || break
done
kill "$WRK" 2>/dev/null || true; wait "$WRK" 2>/dev/null || true; WRK=
T1=$(now)
BUILT=$(backlog 1)
WRITE_S=$(awk -v a="$T1" -v b="$T0" 'BEGIN { print a-b }')
INGEST=$(awk -v b="$BUILT" -v s="$WRITE_S" 'BEGIN { printf "%.1f", b/s/1e6 }')
sleep 2  # let in-flight requests and node 1 settle
RSS_W=$(rss_mb)
echo "write phase: ${WRITE_S}s, backlog $BUILT bytes, ingest $INGEST MB/s, RSS now $RSS_W MB"
grep -E 'Requests/sec|Non-2xx|Socket errors' "$work/wrk.out" || true

# Node 2 comes back as a null sink on the same port.
sink s2 "$DOWN"
T2=$(now); PREV=$BUILT; FIRST_DROP=
while :; do
  sleep 1
  B=$(backlog 1); R=$(rss_mb)
  T=$(awk -v a="$(now)" -v b="$T2" 'BEGIN { printf "%.1f", a-b }')
  echo "drain $T $R $B -" >> "$work/samples"
  [ -z "$FIRST_DROP" ] && [ "$B" -lt "$PREV" ] && FIRST_DROP=$(now) && DROP_FROM=$PREV
  PREV=$B
  [ "$B" -eq 0 ] && break
  awk -v a="$(now)" -v b="$T2" 'BEGIN { exit !(a-b > 600) }' && { echo "drain timed out"; break; }
done
T3=$(now)
DRAIN_S=$(awk -v a="$T3" -v b="$T2" 'BEGIN { print a-b }')
DRAIN_ACTIVE_S=$(awk -v a="$T3" -v b="${FIRST_DROP:-$T2}" 'BEGIN { print a-b + 1 }')  # +1: the sample interval before the first drop
DRAIN=$(awk -v b="$BUILT" -v s="$DRAIN_S" 'BEGIN { printf "%.1f", b/s/1e6 }')
DRAIN_ACTIVE=$(awk -v b="${DROP_FROM:-$BUILT}" -v s="$DRAIN_ACTIVE_S" 'BEGIN { printf "%.1f", b/s/1e6 }')
RSS_E=$(rss_mb)
MAX=$(awk 'NR > 1 && $3 > m { m = $3 } END { print m }' "$work/samples")
MAXW=$(awk '$1 == "write" && $3 > m { m = $3 } END { print m }' "$work/samples")
echo "drain: $BUILT bytes in ${DRAIN_S}s (from node start, incl. health detection) = $DRAIN MB/s; from first drop = $DRAIN_ACTIVE MB/s"
echo
echo "RSS start $RSS0 MB, max during write $MAXW MB, max overall $MAX MB, after write $RSS_W MB, end $RSS_E MB"
echo "backlog built: $(awk -v b="$BUILT" 'BEGIN { printf "%.0f", b/1048576 }') MiB"
echo "ingest $INGEST MB/s vs catch-up $DRAIN_ACTIVE MB/s: ratio $(awk -v a="$DRAIN_ACTIVE" -v b="$INGEST" 'BEGIN { printf "%.2f", a/b }')x"
if [ -n "${SAMPLES_OUT:-}" ]; then cp "$work/samples" "$SAMPLES_OUT"; fi
