#!/usr/bin/env bash
# Verify benchmark: how long `inmate verify` takes over N points held by two
# nodes, when they are identical and when one point differs.
#
# Setup: two real influxd 1.x processes (temp dirs, free ports), both loaded
# in parallel with the same N points (scripts/bench-points.py: 50 series,
# one point per second per series, 4 fields; bodies of BATCH lines). Then:
#   1. `inmate verify` on identical nodes, twice (the first read may find
#      influxd still compacting what was just written);
#   2. one extra point written to the second node, `inmate verify` again
#      (the cost of narrowing the differing shard group down to 1 minute).
# For each run: wall time, exit code, `/query` requests each influxd
# counted (`/debug/vars` httpd.queryReq), CPU seconds of each influxd and
# of inmate, and the 1-minute load average.
#
# Usage: scripts/bench-verify.sh [points] [batch]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
POINTS=${1:-10000000}; BATCH=${2:-50000}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/bench-influxd-lib.sh
source scripts/bench-influxd-lib.sh
bench_setup verify

start_influxd a; A="http://127.0.0.1:$PORT"; A_PID=$PID
start_influxd b; B="http://127.0.0.1:$PORT"; B_PID=$PID
inmate_config "$A" "$B" "$work/inmate.yaml"

END=$(( ($(date +%s) - 60) * 1000000000 ))
echo "loading $POINTS points into each node (bodies of $BATCH lines, both at once)"
t0=$(date +%s.%N)
python3 scripts/bench-points.py load "$A" bench "$POINTS" "$BATCH" "$END" >"$work/load.a" &
la=$!
python3 scripts/bench-points.py load "$B" bench "$POINTS" "$BATCH" "$END" >"$work/load.b" &
lb=$!
wait "$la" "$lb"
echo "loaded in $(echo "$(date +%s.%N) - $t0" | bc) s ($(cat "$work/load.a") and $(cat "$work/load.b") points/s)"

# queries URL: /query requests the node has served so far.
queries() {
  curl -sf "$1/debug/vars" | python3 -c 'import json,sys; print(sum(v["values"].get("queryReq", 0) for v in json.load(sys.stdin).values() if isinstance(v, dict) and v.get("name") == "httpd"))'
}

# timed LABEL: runs `inmate verify` and reports what it cost.
timed() {
  local qa qb ca cb t0 t1 rc=0
  qa=$(queries "$A"); qb=$(queries "$B"); ca=$(cpu "$A_PID"); cb=$(cpu "$B_PID")
  local load
  load=$(load_avg)
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$work/inmate.cpu" \
    "$BIN" --config "$work/inmate.yaml" verify >"$work/verify.out" 2>"$work/verify.err" || rc=$?
  t1=$(date +%s.%N)
  printf '%-22s %6.2f s  exit %d  queries %d + %d  CPU s: a %.2f, b %.2f, inmate %.2f  load %s\n' \
    "$1" "$(echo "$t1 - $t0" | bc)" "$rc" \
    $(( $(queries "$A") - qa )) $(( $(queries "$B") - qb )) \
    "$(echo "$(cpu "$A_PID") - $ca" | bc)" "$(echo "$(cpu "$B_PID") - $cb" | bc)" \
    "$(tail -n 1 "$work/inmate.cpu" | awk '{ print $1 + $2 }')" "$load"
}

timed "identical (1st)"
grep -q identical "$work/verify.out" || { echo "expected identical nodes"; cat "$work/verify.out" "$work/verify.err"; exit 1; }
timed "identical (2nd)"
# One extra point on b, in the middle of the data.
curl -sf -XPOST "$B/write?db=bench&precision=ns" \
  --data-binary "cpu,host=extra usage=1.5 $(( END - POINTS / 100 * 1000000000 + 500000000 ))"
timed "one point differs"
cat "$work/verify.out"
