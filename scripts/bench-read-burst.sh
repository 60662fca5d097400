#!/usr/bin/env bash
# Reads under a write burst: while clients write as fast as they can to one
# database through the gateway (so the nodes lag behind the log), measure
# reads of *another* database, direct to a node vs through the gateway, in
# the same run; then reads of the written database through the gateway
# (read-your-writes: those wait for the burst's entries, up to read_wait).
#
# Setup: two real influxd 1.x, the gateway in front; databases `quiet`
# (1000 points) and `burst`. The burst is wrk POSTing 5000-line batches to
# /write?db=burst on 4 connections for the whole run.
#
# Usage: scripts/bench-read-burst.sh [seconds] [connections]
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
DUR=${1:-10}; CONNS=${2:-8}
command -v influxd >/dev/null || { echo "needs influxd (apt-get install -y influxdb)"; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)"; exit 1; }
[ -n "${INMATE_BIN:-}" ] || cargo build --release --quiet
# shellcheck source=scripts/bench-read-lib.sh
source scripts/bench-read-lib.sh
start_influxd n1; N1=$PORT
start_influxd n2; N2=$PORT
start_gateway "$N1" "$N2"

for db in quiet burst; do
  curl -sf -o /dev/null -XPOST "$GW/query" --data-urlencode "q=CREATE DATABASE $db"
done
python3 - > "$work/quiet.lp" <<'PY'
ts = 1700000000000000000
for i in range(1000):
    print(f"cpu,host=server{i%50:02d} usage_user={i%100}.5,usage_idle=99.1 {ts+i*1000000000}")
PY
python3 - > "$work/burst.lp" <<'PY'
ts = 1700000000000000000
for i in range(5000):
    print(f"mem,host=server{i%500:03d},rack=r{i%7} used={i}i,free={5000-i}i,pct={i%100}.25 {ts+i*1000000}")
PY
curl -sf -o /dev/null -XPOST "$GW/write?db=quiet&consistency=all" --data-binary @"$work/quiet.lp"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$work/burst.lp", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "text/plain; charset=utf-8"
LUA

Q='q=SELECT%20usage_user%2Cusage_idle%20FROM%20cpu%20WHERE%20host%3D%27server07%27%20LIMIT%2010&db=quiet'
QB='q=SELECT%20count(used)%20FROM%20mem%20WHERE%20time%20%3E%20now()%20-%201m&db=burst'
run() { # url query label
  wrk_run "$1/query?$2" "$3" -t2 -c"$CONNS" -H 'Accept: application/json' |
    awk '{ l = $1; for (i = 2; i <= NF - 3; i++) l = l " " $i
           printf "%-40s %7.0f req/s  p50 %8.3f ms  p99 %8.3f ms\n", l, $(NF-2), $(NF-1), $NF }'
}
backlog() { curl -sf "$GW/health" | python3 -c 'import json,sys; print(" ".join(str(n["backlog_records"]) for n in json.load(sys.stdin)["nodes"]))'; }

echo "idle:  (backlog $(backlog))"
run "http://127.0.0.1:$N1" "$Q" "quiet db, direct, idle"
run "$GW" "$Q" "quiet db, gateway, idle"
wrk -t1 -c4 -d"$((DUR * 4 + 6))s" -s "$work/post.lua" "$GW/write?db=burst" >"$work/burst.out" &
BURST=$!
PIDS+=($BURST)
sleep 3
echo "burst: 4 writers x 5000 lines (backlog $(backlog))"
run "http://127.0.0.1:$N1" "$Q" "quiet db, direct, under burst"
run "$GW" "$Q" "quiet db, gateway, under burst"
echo "       (backlog $(backlog))"
run "$GW" "$QB" "burst db (read-your-writes), gateway"
run "http://127.0.0.1:$N1" "$QB" "burst db, direct"
wait "$BURST" || true
grep -E 'Requests/sec|Non-2xx' "$work/burst.out" | sed 's/^/writes: /'
