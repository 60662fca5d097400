# Shared by the bench-read*.sh scripts (sourced, not run): a temp work dir
# cleaned up on exit with every started process, influxd and gateway
# starters, and one wrk run summarised as "label req/s p50 p99".
# Callers set `set -euo pipefail`, cd to the repo root and build first.
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
BIN=${INMATE_BIN:-$(release_bin inmate)}
work=$(mktemp -d "${TMPDIR:-/tmp}/inmate-bench-read.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_ping() { # url what
  wait_for_ping "$1" && return 0
  echo "$2 did not start"; cat "$work"/*.log; exit 1
}

start_influxd() { # name -> sets PORT
  local d="$work/$1" http rpc
  http=$(free_port); rpc=$(free_port)
  influxd_conf "$d" "$http" "$rpc"
  # INFLUXDB_* variables override the config file: drop them.
  env $(env | sed -n 's/^\(INFLUXDB_[^=]*\)=.*/-u \1/p') \
    influxd run -config "$d/influxdb.conf" >"$work/$1.log" 2>&1 &
  PIDS+=($!)
  PORT=$http
  wait_ping "http://127.0.0.1:$http" "influxd $1"
}

start_gateway() { # node-port... -> sets GW
  local port n
  port=$(free_port)
  {
    echo "addresses:"
    for n in "$@"; do echo "  - url: http://127.0.0.1:$n"; done
    echo "bind_address: 127.0.0.1"
    echo "port: $port"
    echo "data_dir: $work/data"
  } > "$work/inmate.yaml"
  "$BIN" --config "$work/inmate.yaml" >"$work/gw.log" 2>&1 &
  PIDS+=($!)
  GW="http://127.0.0.1:$port"
  wait_ping "$GW" gateway
}

# wrk_run URL LABEL [wrk args...]: one wrk --latency run of ${DUR}s,
# printed as "LABEL req/s p50_ms p99_ms" (socket errors and non-2xx to stderr).
wrk_run() {
  local url=$1 label=$2
  shift 2
  wrk -d"${DUR}s" --latency "$@" "$url" >"$work/wrk.out"
  grep -E 'Non-2xx|Socket errors' "$work/wrk.out" >&2 || true
  awk -v label="$label" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ *50%/ { p50 = ms($2) } /^ *99%/ { p99 = ms($2) } /Requests\/sec/ { rps = $2 }
    END { printf "%s %s %.3f %.3f\n", label, rps, p50, p99 }' "$work/wrk.out"
}
