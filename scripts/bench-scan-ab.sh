#!/usr/bin/env bash
# The write-path scanner, an older revision against this tree, on the same
# fixed 1 MiB Telegraf-like batch (examples/scan_count.rs), alternating
# rounds. Reports ns per 1 MiB scan at the fastest and the median round.
#
# Why: on a shared VM one criterion run moves by 30 % with the machine; in
# alternating rounds both builds see the same machine, and the fastest
# round of each is the least disturbed one.
#
# Usage: scripts/bench-scan-ab.sh REV [rounds] [scans per round]
#   REV is any git revision (e.g. HEAD~1); it is built in a temporary worktree.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: scripts/bench-scan-ab.sh REV [rounds] [scans]}
ROUNDS=${2:-25}; SCANS=${3:-300}
TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/old" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git worktree add --detach "$TMP/old" "$REV" >/dev/null
TARGET=${CARGO_TARGET_DIR:-target}
echo "==> building scan_count at $REV and in this tree"
CARGO_TARGET_DIR="$TARGET/scan-ab-old" cargo build -q --release --example scan_count \
    --manifest-path "$TMP/old/Cargo.toml"
cargo build -q --release --example scan_count
OLD="$TARGET/scan-ab-old/release/examples/scan_count"
NEW="$TARGET/release/examples/scan_count"
for _ in $(seq "$ROUNDS"); do
    for which in old new; do
        bin=$OLD; [ "$which" = new ] && bin=$NEW
        start=$(date +%s%N); "$bin" "$SCANS" >/dev/null; end=$(date +%s%N)
        echo "$which $(((end - start) / SCANS))" >>"$TMP/times"
    done
done
for which in old new; do
    grep "^$which " "$TMP/times" | awk '{print $2}' | sort -n | awk -v w="$which" '
        {v[NR] = $1}
        END {
            m = v[int((NR + 1) / 2)]
            printf "%s: fastest %.1f us = %.2f GiB/s, median %.1f us = %.2f GiB/s per 1 MiB scan\n",
                w, v[1] / 1000, 1e9 / v[1] / 1024, m / 1000, 1e9 / m / 1024
        }'
done
