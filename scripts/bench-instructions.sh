#!/usr/bin/env bash
# Instructions per delivered write and per read, counted by callgrind: the
# gateway's CPU cost free of machine noise (see scripts/bench_instructions.py).
# Default config, two nginx null sinks; each binary is run idle, with N and
# 2N writes of one 5,000-line batch, and with R and 2R reads.
#
# Usage: scripts/bench-instructions.sh [writes] [reads]
#   BEFORE_BIN=path/to/older/inmate   also measures an older build first (the ratio is new / old)
#   INMATE_BIN=path                   measures that binary instead of building
#   INSTR_JSON=out.json               keeps every figure as JSON
set -euo pipefail
cd "$(dirname "$0")/.."
WRITES=${1:-40}; READS=${2:-1000}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
command -v nginx >/dev/null || { echo "needs nginx (apt-get install -y nginx-light)"; exit 1; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)"; exit 1; }
bench_start bench-instr
S1=$(free_port); S2=$(free_port)
sink() {
  cat <<CONF
  server {
    listen 127.0.0.1:$1;
    client_max_body_size 50m;
    add_header X-Influxdb-Version 1.8.10-null always;
    location = /query {
      default_type application/json;
      return 200 '{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","usage_user"],"values":[["2023-11-14T22:13:20Z",0.5],["2023-11-14T22:13:21Z",0.25]]}]}]}';
    }
    location / { return 204; }
  }
CONF
}
nginx_start "$(sink "$S1")
$(sink "$S2")"
bins=()
[ -n "${BEFORE_BIN:-}" ] && bins+=("before=$BEFORE_BIN")
bins+=("inmate=$BIN")
echo "callgrind, default config, 2 null sinks: $WRITES/$((2 * WRITES)) writes, $READS/$((2 * READS)) reads per binary"
python3 scripts/bench_instructions.py --sinks "$S1,$S2" --work "$work" \
  --writes "$WRITES" --reads "$READS" "${bins[@]}"
