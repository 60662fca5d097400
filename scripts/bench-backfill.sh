#!/usr/bin/env bash
# Backfill benchmark: how fast `inmate backfill` fills an empty influxd,
# against how fast the same influxd accepts the same points written directly
# (same batch size, one connection, sequential), in one run.
#
# Setup: two real influxd 1.x processes (temp dirs, free ports): `src` holds
# N points (4 fields: float, integer, string, boolean; 50 series; one point
# per second per series); `dst` is empty. Then, alternating so drifting
# machine load hits both sides:
#   1. direct: the points are POSTed to `dst` (database `direct1`);
#   2. backfill: `inmate backfill --to dst --from src` copies database
#      `bench` (wall time of the whole command: schema, window counts,
#      chunked reads from src, writes to dst);
#   3. direct again (database `direct2`).
# The ratio is backfill points/s over the mean of the two direct runs.
#
# Usage: scripts/bench-backfill.sh [points] [batch]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
POINTS=${1:-200000}; BATCH=${2:-5000}
command -v influxd >/dev/null || { echo "needs influxd (apt-get install -y influxdb)"; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
cargo build --release --quiet
BIN=$(release_bin inmate)
work=$(mktemp -d "${TMPDIR:-/tmp}/inmate-bench-backfill.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_influxd() { # name -> sets PORT
  local d="$work/$1" http rpc
  http=$(free_port); rpc=$(free_port)
  influxd_conf "$d" "$http" "$rpc"
  env $(env | sed -n 's/^\(INFLUXDB_[^=]*\)=.*/-u \1/p') \
    influxd run -config "$d/influxdb.conf" >"$work/$1.log" 2>&1 &
  PIDS+=($!)
  PORT=$http
  wait_for_ping "http://127.0.0.1:$http" || { echo "influxd $1 did not start"; cat "$work/$1.log"; exit 1; }
}
start_influxd src; SRC="http://127.0.0.1:$PORT"; SRC_PID=${PIDS[-1]}
start_influxd dst; DST="http://127.0.0.1:$PORT"; DST_PID=${PIDS[-1]}
# CPU seconds (user+system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# The points (timestamps end a minute ago, so all are older than the cutoff).
python3 - "$POINTS" > "$work/points.lp" <<'PY'
import sys, time
n = int(sys.argv[1]); series = 50
end = (int(time.time()) - 60) * 10**9
start = end - (n // series + 1) * 10**9
for i in range(n):
    t = start + (i // series) * 10**9
    h = i % series
    print(f'cpu,host=server{h:02d},region=us\\ west usage={i%100}.5,iowait={i%7}i,state="ok {i%3}",up={"true" if i%2 else "false"} {t}')
PY

# post.py URL DB FILE BATCH: sequential POSTs over one keep-alive connection;
# prints points/s.
cat > "$work/post.py" <<'PY'
import http.client, sys, time, urllib.parse
url, db, path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlparse(url)
lines = open(path, 'rb').read().splitlines(keepends=True)
bodies = [b''.join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
c = http.client.HTTPConnection(u.hostname, u.port)
def q(s):
    c.request('POST', '/query?' + urllib.parse.urlencode({'q': s})); c.getresponse().read()
q(f'CREATE DATABASE "{db}"')
t0 = time.monotonic()
for b in bodies:
    c.request('POST', f'/write?db={db}&precision=ns', body=b)
    r = c.getresponse(); r.read()
    assert r.status == 204, (r.status, r.reason)
print(f'{len(lines) / (time.monotonic() - t0):.0f}')
PY

python3 "$work/post.py" "$SRC" bench "$work/points.lp" "$BATCH" >/dev/null
cat > "$work/inmate.yaml" <<CONF
addresses:
  - url: $SRC
    name: src
  - url: $DST
    name: dst
bind_address: 127.0.0.1
port: 0
data_dir: $work/data
CONF

D1=$(python3 "$work/post.py" "$DST" direct1 "$work/points.lp" "$BATCH")
c_src=$(cpu "$SRC_PID"); c_dst=$(cpu "$DST_PID")
t0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/inmate.cpu" \
  "$BIN" --config "$work/inmate.yaml" backfill --to dst --from src --db bench --batch "$BATCH" \
  >"$work/backfill.out" 2>"$work/backfill.err"
t1=$(date +%s.%N)
c_src=$(echo "$(cpu "$SRC_PID") - $c_src" | bc); c_dst=$(echo "$(cpu "$DST_PID") - $c_dst" | bc)
D2=$(python3 "$work/post.py" "$DST" direct2 "$work/points.lp" "$BATCH")

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
