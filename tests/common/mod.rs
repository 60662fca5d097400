//! Shared fixtures for Inmate's integration tests.
//!
//! Why this exists: the gateway's promises (every node gets every write, a
//! hung or dead node is caught up later, reads go to a healthy node) can only
//! be checked against real processes. This module gives each test:
//! - [`Influxd`]: a real InfluxDB 1.x server on free loopback ports with its
//!   own temp data dir, which can be stopped, restarted, paused (SIGSTOP) and
//!   resumed;
//! - [`V2Stub`]: an in-process stand-in for InfluxDB 2.7 (no 2.x server can
//!   be installed here) that records what it received (bodies decoded,
//!   arrival times, its answers) and can be scripted to answer a path with
//!   canned responses (`v2stub::Canned`) before behaving normally again;
//! - [`Gateway`]: the real `inmate` binary run as a child process;
//! - small HTTP helpers speaking the 1.x API, with an optional token (here,
//!   and the gateway tests' own helpers in [`api`]).
//!
//! Every fixture owns its ports and directories, so tests in one binary can
//! run in parallel. Each test binary compiles this module separately and uses
//! only part of it, hence the module-wide `dead_code`
//! allowance below (and `unused_imports` on the re-exports).
#![allow(dead_code)]

pub mod api;
pub mod gateway;
pub mod influxd;
pub mod inproc;
pub mod tls;
pub mod v2stub;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use gateway::{Gateway, config_yaml, config_yaml_with_tokens};
#[allow(unused_imports)]
pub use influxd::Influxd;
#[allow(unused_imports)]
pub use v2stub::{RecordedRequest, V2Options, V2Stub};

/// Default per-request timeout of the helpers: long enough for a loaded CI
/// machine, short enough that a hung gateway fails the test instead of
/// hanging it.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A fresh HTTP client. Not shared between tests on purpose: each
/// `#[tokio::test]` has its own runtime, and pooled connections must not
/// outlive the runtime that opened them.
pub fn client() -> reqwest::Client {
    client_with_timeout(HTTP_TIMEOUT)
}

/// `GET url` as JSON (e.g. a gateway's `/health`); panics on any failure.
pub async fn get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// A fresh HTTP client with a specific total request timeout.
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client builds")
}

/// Adds `Authorization: Token <t>` when a token is given.
pub fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.header("Authorization", format!("Token {t}")),
        None => req,
    }
}

/// `POST {url}/write?db=..` with a line-protocol body; returns status and body text.
pub async fn write(url: &str, db: &str, body: &str) -> (u16, String) {
    write_auth(url, db, body, None).await
}

/// [`write`] with an optional `Authorization: Token` header.
pub async fn write_auth(url: &str, db: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let req = client()
        .post(format!("{url}/write"))
        .query(&[("db", db)])
        .body(body.to_owned());
    let resp = with_token(req, token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}/write failed: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// `POST {url}/query?db=..&q=..` (parameters in the URL, as the `influx` CLI
/// sends them); returns status and the JSON body (a JSON string holding the
/// raw text when the body is not JSON).
pub async fn query(url: &str, db: &str, q: &str) -> (u16, serde_json::Value) {
    query_auth(url, db, q, None).await
}

/// [`query`] with an optional `Authorization: Token` header.
pub async fn query_auth(
    url: &str,
    db: &str,
    q: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    query_params(url, &[("db", db), ("q", q)], token).await
}

/// `POST {url}/query` with arbitrary URL parameters (e.g. `epoch`, `rp`).
pub async fn query_params(
    url: &str,
    params: &[(&str, &str)],
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let req = client().post(format!("{url}/query")).query(params);
    let resp = with_token(req, token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}/query failed: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// Polls `check` every 50 ms until it returns true; panics with `what` after
/// `timeout`. Replication is asynchronous, so tests assert "eventually".
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Python interpreter with the `influxdb` and `influxdb-client` packages
/// (set by scripts/test.sh as `INMATE_PYTHON`), if any.
pub fn python() -> Option<PathBuf> {
    std::env::var_os("INMATE_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// The Python with the InfluxDB clients: `INMATE_PYTHON`, else the repo's
/// `.venv` (which `scripts/test.sh` creates); panics with the fix otherwise.
pub fn python_with_clients() -> PathBuf {
    if let Some(p) = python() {
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the InfluxDB clients: set INMATE_PYTHON or run scripts/test.sh"
    );
    venv
}

/// Runs `tests/py/<script>` with the clients' Python and `args`; asserts it
/// succeeded and returns the JSON of its last output line.
pub async fn run_py_script(script: &str, args: &[&str]) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = tokio::process::Command::new(python_with_clients())
        .arg(path)
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python {script} {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("python prints JSON")
}

/// Runs a prepared `influx` CLI command; (success without `ERR:`, output).
pub async fn run_influx_cli(cmd: &mut tokio::process::Command) -> (bool, String) {
    let out = cmd
        .output()
        .await
        .expect("the influx CLI (Debian package influxdb-client) must be installed; scripts/test.sh installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("ERR:"), text)
}

/// The `influx` CLI against `127.0.0.1:port` with `args`.
pub async fn influx_cli(port: u16, args: &[&str]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("influx");
    cmd.args(["-host", "127.0.0.1", "-port", &port.to_string()])
        .args(args);
    run_influx_cli(&mut cmd).await
}

/// Whether the Prometheus tool `tool` (`prometheus`, `promtool`) is on
/// PATH. When it is not, says why the caller skips, or panics under CI
/// (`scripts/test.sh` installs it there: `ensure_prometheus`).
pub fn have_prometheus_tool(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed but CI is set: run scripts/test.sh (ensure_prometheus)"
        );
        eprintln!("SKIPPED: {tool} is not installed (apt-get install prometheus); not under CI");
    }
    found
}

/// A loopback port that was free a moment ago and has not been handed out
/// before in this test binary (parallel fixtures would otherwise race for
/// the same port). Another process may still grab it before it is used, so
/// callers that bind it must retry on a clash.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral loopback port");
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&port) {
            seen.push(port);
            return port;
        }
    }
}
