#!/usr/bin/env bash
# Hostile clients against the gateway binary.
#
# 1. Silent clients: the gateway runs under a 1,024-descriptor limit with
#    request_timeout 10 s; SILENT connections open and send nothing. Reported:
#    how many descriptors the gateway holds for them over time (those left
#    in the kernel's backlog are accepted, and timed, later), and whether
#    /ping answers while the clients keep their sockets.
# 2. Burst: BURST concurrent writes of BODY_MB MB each (valid line protocol,
#    one node on a closed port so everything stays queued in the log).
#    Reported: the gateway's VmRSS before, at peak (sampled every 100 ms) and
#    10 s after the burst.
#
# Usage: scripts/bench-hostile.sh [silent-connections] [burst] [body-MB]
# INMATE_BIN=path/to/inmate uses that binary instead of a release build.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
SILENT=${1:-1100}; BURST=${2:-20}; BODY_MB=${3:-17}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
if [ -n "${INMATE_BIN:-}" ]; then
  BIN=$INMATE_BIN
else
  cargo build --release --quiet
  BIN=$(release_bin inmate)
fi
work=$(mktemp -d)
GW=
cleanup() {
  [ -n "$GW" ] && kill "$GW" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

GWPORT=$(free_port); DOWN=$(free_port)
cat > "$work/inmate.yaml" <<CONF
addresses:
  - url: http://127.0.0.1:$DOWN
bind_address: 127.0.0.1
port: $GWPORT
data_dir: $work/data
allow_anonymous: true
request_timeout: 10s
log_level: warn
queue:
  fsync: never
CONF
(ulimit -n 1024; exec "$BIN" --config "$work/inmate.yaml" >"$work/gw.log" 2>&1) &
GW=$!
URL="http://127.0.0.1:$GWPORT"
wait_for_ping "$URL" || { echo "gateway did not start"; cat "$work/gw.log"; exit 1; }
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2/1024 }' "/proc/$GW/status"; }
held() { ls "/proc/$GW/fd" | wc -l; }

echo "== silent clients: $SILENT connections, request_timeout 10 s, gateway ulimit -n 1024"
FDS0=$(held)
python3 - "$GWPORT" "$SILENT" "$GW" "$FDS0" <<'PY'
import os, resource, socket, sys, time, urllib.request
port, n, pid, fds0 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
socks = []
for _ in range(n):
    s = socket.socket(); s.setblocking(False)
    s.connect_ex(("127.0.0.1", port)); socks.append(s)
fd = lambda: len(os.listdir(f"/proc/{pid}/fd")) - fds0
t0 = time.time()
for at in (0.5, 11, 22):
    time.sleep(max(0, at - (time.time() - t0)))
    print(f"held by the gateway after {at} s: {fd()}")
try:
    code = urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5).status
except Exception as e:
    code = f"failed: {e}"
print(f"/ping while the {n} clients still hold their sockets: {code}")
PY

echo "== burst: $BURST concurrent writes of $BODY_MB MB"
python3 - "$work/body.lp" "$BODY_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
line = "cpu,host=server%05d,region=eu-west value=%d.5,count=%di 1700000000%09d\n"
with open(path, "w") as f:
    size, i = 0, 0
    while size < mb * 1_000_000:
        s = line % (i % 10000, i, i, i); f.write(s); size += len(s); i += 1
PY
RSS0=$(rss_mb)
PEAK=$RSS0
CURLS=()
for _ in $(seq "$BURST"); do
  curl -s -o /dev/null -w '%{http_code}\n' --data-binary "@$work/body.lp" "$URL/write?db=bench" >>"$work/codes" &
  CURLS+=($!)
done
running() { for p in "${CURLS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  r=$(rss_mb); [ "$r" -gt "$PEAK" ] && PEAK=$r
  sleep 0.1
done
wait "${CURLS[@]}" || true
echo "answers: $(sort "$work/codes" | uniq -c | tr -s ' ' | tr '\n' ';')"
sleep 10
echo "RSS MB: before $RSS0, peak $PEAK, 10 s after $(rss_mb)"
