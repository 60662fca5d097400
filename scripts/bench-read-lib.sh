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
  start_gateway_as gw "$BIN" "$@"
}

# start_gateway_as NAME BINARY node-port...: a gateway of its own (config,
# data dir and log named NAME) on the default config; sets GW and GWPID.
start_gateway_as() {
  local name=$1 bin=$2 port n
  shift 2
  port=$(free_port)
  {
    echo "addresses:"
    for n in "$@"; do echo "  - url: http://127.0.0.1:$n"; done
    echo "bind_address: 127.0.0.1"
    echo "port: $port"
    echo "data_dir: $work/data-$name"
  } > "$work/$name.yaml"
  "$bin" --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  PIDS+=($!)
  GWPID=$!
  GW="http://127.0.0.1:$port"
  wait_ping "$GW" "gateway $name"
}

# The query every read benchmark sends (on database `bench`).
BENCH_QUERY='q=SELECT%20usage_user%2Cusage_idle%20FROM%20cpu%20WHERE%20host%3D%27server07%27%20LIMIT%2010&db=bench'

# load_bench_data POINTS: creates database `bench` and writes POINTS
# points through the gateway at $GW, then waits until the influxd at $N1
# and $N2 both hold them all.
load_bench_data() {
  local points=$1 f
  curl -sf -o /dev/null -XPOST "$GW/query" --data-urlencode 'q=CREATE DATABASE bench'
  python3 - "$points" > "$work/points.lp" <<'PY'
import sys
n = int(sys.argv[1]); ts = 1700000000000000000
for i in range(n):
    print(f"cpu,host=server{i%50:02d},region=us-west,cpu=cpu{i%8} usage_user={i%100}.5,usage_system=0.25,usage_idle=99.1,usage_iowait={i%7}i {ts+i*1000000000}")
PY
  split -l 1000 "$work/points.lp" "$work/chunk."
  for f in "$work"/chunk.*; do
    curl -sf -o /dev/null -XPOST "$GW/write?db=bench&consistency=all" --data-binary @"$f"
  done
  for _ in $(seq 100); do
    [ "$(bench_count "http://127.0.0.1:$N1")" = "$points" ] &&
      [ "$(bench_count "http://127.0.0.1:$N2")" = "$points" ] && break
    sleep 0.2
  done
  echo "points: node1=$(bench_count "http://127.0.0.1:$N1") node2=$(bench_count "http://127.0.0.1:$N2") (wanted $points)"
}

bench_count() { # url -> points in bench's cpu
  curl -sf -G "$1/query" --data-urlencode db=bench --data-urlencode 'q=SELECT count(usage_user) FROM cpu' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["series"][0]["values"][0][1])'
}

# proc_ticks PID...: CPU ticks (1/100 s, user + system) the processes used so far.
proc_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  echo "$t"
}

# wrk_cpu_run URL LABEL "PID..." [wrk args...]: one wrk_run, plus the CPU
# those processes used per request in µs: "LABEL req/s p50 p99 us" (0.0
# when no PID is given). Needs DUR, as wrk_run does.
wrk_cpu_run() {
  local url=$1 label=$2 pids=$3 a b line
  shift 3
  # shellcheck disable=SC2086 # PIDs are words
  a=$(proc_ticks $pids)
  line=$(wrk_run "$url" "$label" "$@")
  # shellcheck disable=SC2086
  b=$(proc_ticks $pids)
  echo "$line" | awk -v t=$((b - a)) -v d="$DUR" '{ printf "%s %.1f\n", $0, ($2 > 0 ? t * 10000 / ($2 * d) : 0) }'
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
