#!/usr/bin/env bash
# Inmate's test command: installs what the tests need, builds, runs them all.
#
#   bash scripts/test.sh [extra cargo test args]
#
# The integration tests start real InfluxDB 1.x servers (`influxd`), a real
# Prometheus (metrics tests) and the Python InfluxDB clients, so all are set
# up first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_influxdb
ensure_prometheus
ensure_python_clients

cargo build --all-targets
cargo test --all-targets "$@"
