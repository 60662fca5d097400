#!/usr/bin/env bash
# A local Inmate demo: two InfluxDB 1.x nodes and the gateway in front.
#
#   bash scripts/demo.sh          # then, in another terminal: influx -port 8080
#
# Node 1: HTTP 127.0.0.1:8086 (RPC 8088), data in ./demo-data/node1
# Node 2: HTTP 127.0.0.1:8087 (RPC 8089), data in ./demo-data/node2
# Gateway: 127.0.0.1:8080, config ./demo-data/inmate.yaml, data ./demo-data/gateway
# Ctrl-C stops the gateway and both nodes; the data stays for the next run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_influxdb
cargo build --release

DEMO="demo-data"
mkdir -p "$DEMO/node1" "$DEMO/node2" "$DEMO/gateway"

PIDS=()
CLEANED=0
cleanup() {
    [ "$CLEANED" -eq 1 ] && return
    CLEANED=1
    echo
    echo "==> stopping demo"
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup INT TERM EXIT

# start_node NAME HTTP_PORT RPC_PORT: one influxd with its own config and log.
start_node() {
    local name="$1" http="$2" rpc="$3" dir
    dir="$(pwd)/$DEMO/$name"
    influxd_conf "$dir" "$http" "$rpc"
    influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
    PIDS+=("$!")
    local pid="$!"
    for _ in $(seq 1 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: $name exited; see $dir/influxd.log:" >&2
            tail -n 20 "$dir/influxd.log" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$http") 2>/dev/null; then
            echo "==> $name listening on 127.0.0.1:$http"
            return 0
        fi
        sleep 0.1
    done
    echo "error: $name did not open port $http; see $dir/influxd.log" >&2
    exit 1
}

start_node node1 8086 8088
start_node node2 8087 8089

cat >"$DEMO/inmate.yaml" <<YAML
# Written by scripts/demo.sh: two local InfluxDB 1.x nodes.
addresses:
  - url: http://127.0.0.1:8086
  - url: http://127.0.0.1:8087
bind_address: 127.0.0.1
port: 8080
data_dir: ./$DEMO/gateway
YAML

echo "==> gateway on 127.0.0.1:8080 (Ctrl-C to stop everything)"
echo "    try: influx -port 8080    (then: CREATE DATABASE demo; USE demo; INSERT cpu value=1; SELECT * FROM cpu)"
# Not exec'd: the trap must run after the gateway exits to stop the nodes.
"$(release_bin inmate)" --config "$DEMO/inmate.yaml" &
PIDS+=("$!")
wait "$!" || true
