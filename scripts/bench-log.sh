#!/usr/bin/env bash
# Compares durable-log append throughput (fsync Always, group commit) with
# `dd ... conv=fdatasync` on the same disk, in one run.
#
# Usage: scripts/bench-log.sh [DIR] [APPENDERS]
#   DIR defaults to target/bench-log under the repo (same disk as the build).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
BASE="${1:-target/bench-log}"
APPENDERS="${2:-4}"
RUN="$BASE/run-$$"
mkdir -p "$RUN"
trap 'rm -rf "$RUN"' EXIT

cargo build --quiet --release --example log_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/log_bench"

# dd: 1 GiB then one fdatasync. Throughput from its byte count and seconds,
# so the unit it prints (MB/s, GB/s) does not matter.
dd_line=$(dd if=/dev/zero of="$RUN/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -n 1)
rm -f "$RUN/dd.bin"
dd_bytes=$(echo "$dd_line" | awk '{print $1}')
dd_secs=$(echo "$dd_line" | sed -E 's/.*copied, ([0-9.]+) s.*/\1/')
dd_mbps=$(awk -v b="$dd_bytes" -v s="$dd_secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')
echo "dd (bs=1M count=1024 conv=fdatasync): $dd_mbps MB/s"

for batch in 65536 1048576; do
    out=$("$BIN" --dir "$RUN/log-$batch" --batch-bytes "$batch" --total-mb 1024 --appenders "$APPENDERS")
    echo "$out"
    mbps=$(echo "$out" | sed -nE 's/.*MBps=([0-9.]+).*/\1/p')
    awk -v m="$mbps" -v d="$dd_mbps" -v b="$batch" \
        'BEGIN { printf "batch %7d B: %.1f MB/s = %.2fx dd\n", b, m, m / d }'
done
