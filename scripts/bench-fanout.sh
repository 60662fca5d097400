#!/usr/bin/env bash
# Write fan-out benchmark, on the gateway's DEFAULT config: Inmate vs nginx's
# `mirror` module, both fanning the same POST /write out to two null sinks
# (nginx `return 204`), alternating in one run. Counts batches *delivered* to
# both sinks, not only acknowledged, and the gateway's CPU per delivered GB.
# Plain bodies, then the same batch gzip-compressed by the client.
#
# Usage: scripts/bench-fanout.sh [seconds] [connections] [lines] [runs]
#   EXTRA_YAML='queue:\n  fsync: never\n'  changes config keys (named in the output)
#   BEFORE_BIN=path/to/older/inmate         also measures an older build (plain bodies)
#   FANOUT_JSON=out.json                    keeps every figure as JSON
#   INMATE_BIN=path                         measures that binary instead of building
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-20}; CONNS=${2:-16}; LINES=${3:-5000}; RUNS=${4:-5}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
command -v nginx >/dev/null || { echo "needs nginx (apt-get install -y nginx-light)"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
bench_start bench
S1=$(free_port); S2=$(free_port); MIR=$(free_port)
nginx_start "$(cat <<CONF
  upstream sink1 { server 127.0.0.1:$S1; keepalive 64; }
  upstream sink2 { server 127.0.0.1:$S2; keepalive 64; }
  # Null sinks that look like InfluxDB to the gateway's health check
  # (it trusts a node only if /ping answers 204 with X-Influxdb-Version).
  server { listen 127.0.0.1:$S1; client_max_body_size 50m; location / { add_header X-Influxdb-Version 1.8.10-null always; return 204; } }
  server { listen 127.0.0.1:$S2; client_max_body_size 50m; location / { add_header X-Influxdb-Version 1.8.10-null always; return 204; } }
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
CONF
)"
python3 scripts/bench_fanout.py --bin "$BIN" ${BEFORE_BIN:+--before-bin "$BEFORE_BIN"} \
  --sinks "$S1,$S2" --mirror "$MIR" --seconds "$DUR" --conns "$CONNS" --lines "$LINES" \
  --runs "$RUNS" --lua bench/write_file.lua --extra-yaml "$(printf '%b' "${EXTRA_YAML:-}")"
