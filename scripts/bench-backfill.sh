#!/usr/bin/env bash
# Backfill benchmark: how fast `inmate backfill` fills an empty influxd,
# against how fast the same influxd accepts the same points written directly
# (same batch size, one connection, sequential), in one run.
#
# Setup: two real influxd 1.x processes (temp dirs, free ports): `src` holds
# N points (scripts/bench-points.py: 4 fields: float, integer, string,
# boolean; 50 series; one point per second per series); `dst` is empty.
# Then, alternating so drifting machine load hits both sides:
#   1. direct: the points are POSTed to `dst` (database `direct1`);
#   2. backfill: `inmate backfill --to dst --from src` copies database
#      `bench` (wall time of the whole command: schema, window counts,
#      chunked reads from src, writes to dst);
#   3. direct again (database `direct2`).
# The ratio is backfill points/s over the mean of the two direct runs. The
# 1-minute load average before and after is printed: the machine's other
# work competes for the same cores. Before each timed phase the script waits
# until both influxd are idle (their compaction of earlier writes done).
#
# Usage: [BACKFILL_ARGS="--concurrency 1"] scripts/bench-backfill.sh [points] [batch]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
POINTS=${1:-200000}; BATCH=${2:-5000}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/bench-influxd-lib.sh
source scripts/bench-influxd-lib.sh
bench_setup backfill
LOAD0=$(load_avg)

start_influxd src; SRC="http://127.0.0.1:$PORT"; SRC_PID=$PID
start_influxd dst; DST="http://127.0.0.1:$PORT"; DST_PID=$PID

# The points (timestamps end a minute ago, so all are older than the cutoff).
python3 scripts/bench-points.py gen "$POINTS" >"$work/points.lp"
post() { python3 scripts/bench-points.py post "$1" "$2" "$work/points.lp" "$BATCH"; }
post "$SRC" bench >/dev/null
inmate_config "$SRC" "$DST" "$work/inmate.yaml"

quiesce "$SRC_PID" "$DST_PID"
D1=$(post "$DST" direct1)
quiesce "$SRC_PID" "$DST_PID"
c_src=$(cpu "$SRC_PID"); c_dst=$(cpu "$DST_PID")
t0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/inmate.cpu" \
  "$BIN" --config "$work/inmate.yaml" backfill --to dst --from src --db bench --batch "$BATCH" ${BACKFILL_ARGS:-} \
  >"$work/backfill.out" 2>"$work/backfill.err"
t1=$(date +%s.%N)
c_src=$(echo "$(cpu "$SRC_PID") - $c_src" | bc); c_dst=$(echo "$(cpu "$DST_PID") - $c_dst" | bc)
quiesce "$SRC_PID" "$DST_PID"
D2=$(post "$DST" direct2)

COPIED=$(curl -sf -G "$DST/query" --data-urlencode db=bench --data-urlencode 'q=SELECT count(usage) FROM cpu' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["series"][0]["values"][0][1])')
[ "$COPIED" = "$POINTS" ] || { echo "backfill copied $COPIED of $POINTS points"; cat "$work/backfill.err"; exit 1; }
python3 - "$POINTS" "$t0" "$t1" "$D1" "$D2" "$BATCH" <<'PY'
import sys
n, t0, t1, d1, d2, batch = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
bf = n / (t1 - t0); direct = (d1 + d2) / 2
print(f"points {n}, batch {batch}")
print(f"direct writes:  {d1:.0f} and {d2:.0f} points/s (mean {direct:.0f})")
print(f"backfill:       {bf:.0f} points/s (wall time of the whole command, {t1 - t0:.2f} s)")
print(f"ratio:          {bf / direct:.2f}x (target >= 0.7x)")
PY
tail -n 1 "$work/backfill.out"
echo "CPU seconds during the backfill: src influxd $c_src, dst influxd $c_dst, inmate $(awk '{ print $1 + $2 }' "$work/inmate.cpu")"
echo "load average (1 min): $LOAD0 before, $(load_avg) after"
