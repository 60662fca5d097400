# shellcheck shell=bash
# Shared helpers for scripts/test.sh, demo.sh and bench-*.sh (sourced, not run).
#
# Why: both need a real InfluxDB 1.x (`influxd`) and should install it the
# same way on a fresh machine, holding the apt lock only while installing.

# Installs Debian's `influxdb` (server) and `influxdb-client` (the `influx`
# CLI) when `influxd` is missing. Needs root; otherwise explains and fails.
ensure_influxdb() {
    if command -v influxd >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: 'influxd' (InfluxDB 1.x) is not installed." >&2
        echo "       Install it with: sudo apt-get install influxdb influxdb-client" >&2
        return 1
    fi
    echo "==> installing InfluxDB 1.x (apt: influxdb influxdb-client)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq influxdb influxdb-client >/dev/null
    # The package may start a system service on the default ports; tests and
    # the demo run their own servers, so stop it if it came up.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop influxdb >/dev/null 2>&1 || true
    fi
    if command -v service >/dev/null 2>&1; then
        service influxdb stop >/dev/null 2>&1 || true
    fi
    command -v influxd >/dev/null 2>&1
}

# Installs Debian's `prometheus` package (the server and `promtool`) when
# either is missing: the metrics tests scrape the gateway with a real
# Prometheus and check the exposition, dashboard and alert rules with it.
ensure_prometheus() {
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: 'prometheus'/'promtool' is not installed." >&2
        echo "       Install it with: sudo apt-get install prometheus" >&2
        return 1
    fi
    echo "==> installing Prometheus (apt: prometheus)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq prometheus >/dev/null
    # The package may start a system service on :9090; the tests run their
    # own servers on free ports, so stop it if it came up.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop prometheus >/dev/null 2>&1 || true
    fi
    if command -v service >/dev/null 2>&1; then
        service prometheus stop >/dev/null 2>&1 || true
    fi
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

# Creates .venv with the Python InfluxDB clients (for the client
# compatibility tests) and exports INMATE_PYTHON. Best effort: without
# Python or pip access the Rust tests still run.
ensure_python_clients() {
    local venv=".venv"
    if ! command -v python3 >/dev/null 2>&1; then
        echo "warning: python3 not found; Python client tests get no interpreter" >&2
        return 0
    fi
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
        echo "warning: 'python3 -m venv' failed; Python client tests get no interpreter" >&2
        rm -rf "$venv"
        return 0
    fi
    if ! "$venv/bin/python" -c 'import influxdb, influxdb_client' >/dev/null 2>&1; then
        echo "==> installing Python clients into $venv (influxdb, influxdb-client)"
        if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            influxdb influxdb-client; then
            echo "warning: pip install failed; Python client tests get no interpreter" >&2
            return 0
        fi
    fi
    INMATE_PYTHON="$(pwd)/$venv/bin/python"
    export INMATE_PYTHON
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# influxd_conf DIR HTTP_PORT RPC_PORT: writes DIR/influxdb.conf for a quiet
# local InfluxDB 1.x with its data under DIR. The RPC bind address must be
# unique per process too, or a second influxd fails to start.
influxd_conf() {
    local dir="$1" http="$2" rpc="$3"
    mkdir -p "$dir"
    cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$dir/meta"
  logging-enabled = false
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$http"
  log-enabled = false
  suppress-write-log = true
[logging]
  level = "warn"
[continuous_queries]
  log-enabled = false
CONF
}

# wait_for_ping URL: polls URL/ping for up to 20 s; fails if it never answers.
wait_for_ping() {
    for _ in $(seq 200); do
        curl -sf -o /dev/null "$1/ping" && return 0
        sleep 0.1
    done
    return 1
}

# release_bin NAME: prints the path of a release binary built by
# `cargo build --release`, honouring CARGO_TARGET_DIR like cargo does.
release_bin() {
    echo "${CARGO_TARGET_DIR:-target}/release/$1"
}

# bench_start NAME: for the nginx-driven benchmarks. Builds the release
# binary unless INMATE_BIN names one, then sets BIN (the binary to measure)
# and work (a fresh temp dir; at exit the nginx whose pid file is in it is
# stopped and the dir removed).
bench_start() {
    if [ -z "${INMATE_BIN:-}" ]; then
        cargo build --release --quiet
    fi
    BIN="${INMATE_BIN:-$(release_bin inmate)}"
    work=$(mktemp -d "${TMPDIR:-/tmp}/inmate-$1.XXXXXX")
    trap bench_cleanup EXIT
}

bench_cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}

# nginx_start HTTP: writes $work/nginx.conf (one worker; pid, error log and
# temp files in $work; no access log; bodies up to 50 MB, 1 MiB of them in
# memory) with HTTP inside its http block, and starts nginx. After
# bench_start, whose cleanup stops it.
nginx_start() {
    cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  client_max_body_size 50m;
  client_body_buffer_size 1m;
$1
}
CONF
    nginx -c "$work/nginx.conf" -p "$work"
}
