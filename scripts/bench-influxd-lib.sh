# shellcheck shell=bash
# Shared helpers for benchmarks that run their own influxd 1.x processes
# (sourced by bench-backfill.sh and bench-verify.sh, after scripts/lib.sh).
#
# Why: both need throwaway influxd processes on free ports, the CPU seconds
# each one used, and the same synthetic points (scripts/bench-points.py).
# The caller calls `bench_setup NAME` first.

PIDS=()

# bench_setup NAME: what each of these benchmarks does first: checks for
# influxd, builds the release binary (sets BIN), makes the temp dir $work
# (inmate-bench-NAME.*) and removes it, with every started process, on exit.
bench_setup() {
  command -v influxd >/dev/null || { echo "needs influxd (apt-get install -y influxdb)"; exit 1; }
  cargo build --release --quiet
  BIN=$(release_bin inmate)
  work=$(mktemp -d "${TMPDIR:-/tmp}/inmate-bench-$1.XXXXXX")
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

# start_influxd NAME: starts an influxd with its data in $work/NAME; sets
# PORT (HTTP) and PID.
start_influxd() {
  local d="$work/$1" http rpc
  http=$(free_port); rpc=$(free_port)
  influxd_conf "$d" "$http" "$rpc"
  # shellcheck disable=SC2046
  env $(env | sed -n 's/^\(INFLUXDB_[^=]*\)=.*/-u \1/p') \
    influxd run -config "$d/influxdb.conf" >"$work/$1.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  PORT=$http
  wait_for_ping "http://127.0.0.1:$http" || { echo "influxd $1 did not start"; cat "$work/$1.log"; exit 1; }
}

# cpu PID: CPU seconds (user+system) the process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# load_avg: the 1-minute load average (other work on the same cores).
load_avg() { cut -d' ' -f1 /proc/loadavg; }

# inmate_config SRC_URL DST_URL FILE: a config naming the nodes src and dst.
inmate_config() {
  cat >"$3" <<CONF
addresses:
  - url: $1
    name: src
  - url: $2
    name: dst
bind_address: 127.0.0.1
port: 0
data_dir: $work/data
CONF
}

# quiesce PID...: waits (up to 60 s) until each process used under 0.05 CPU
# s in the last second, so a timed phase does not pay for the background
# compaction of what an earlier phase wrote.
quiesce() {
  local p a b
  for p in "$@"; do
    for _ in $(seq 60); do
      a=$(cpu "$p"); sleep 1; b=$(cpu "$p")
      [ "$(echo "$b - $a < 0.05" | bc)" = 1 ] && break
    done
  done
}
