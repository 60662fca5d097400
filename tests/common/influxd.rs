//! Real InfluxDB 1.x server processes for integration tests.
//!
//! Why real processes: the gateway's failure handling (a node that is down,
//! restarted, or hung mid-request) is only meaningful against the real
//! server's HTTP behaviour, so each [`Influxd`] is an `influxd run` child with
//! its own free loopback ports and temp directories.
//!
//! Design notes:
//! - influxd opens *two* listeners: HTTP and the RPC/backup bind address
//!   (default 8088). Both get a free port, or parallel servers would clash.
//! - The config is written as a complete TOML file and passed with
//!   `-config`, so the machine's /etc/influxdb/influxdb.conf and stray
//!   `INFLUXDB_*` variables (which influxd applies as overrides, and are
//!   removed from the child's environment) cannot change the fixture.
//! - Logs go to a file in the temp dir; its tail is shown when startup
//!   fails or the owning test panics.
//! - A port can be taken by someone else between "found free" and influxd's
//!   bind, so startup retries with new ports when the log says
//!   "address already in use".
//! - [`Influxd::start_https`] serves HTTPS with a given certificate and key
//!   (`https-enabled`); readiness is then a TCP connect, since the test
//!   HTTP client has no TLS, and the JSON helpers do not apply.
//! - The `_internal` monitor database is disabled so [`Influxd::databases`]
//!   lists only what tests (or the gateway) created.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::{client, client_with_timeout, free_port};

/// How long one start may take before the fixture gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd server may take to exit before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Startup attempts with fresh ports when a port was stolen.
const PORT_ATTEMPTS: usize = 5;

/// One running (or stopped) `influxd` 1.x process.
pub struct Influxd {
    /// HTTP port on 127.0.0.1; stays the same across [`Influxd::restart`].
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The RPC (backup/restore) port influxd also listens on.
    pub rpc_port: u16,
    /// Certificate and key when serving HTTPS.
    https: Option<(PathBuf, PathBuf)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Why one start attempt did not produce a ready server.
enum StartFailure {
    /// The log says a port was taken: retry with new ports.
    PortClash,
    /// Anything else: fatal, with a description.
    Other(String),
}

impl Influxd {
    /// Starts a fresh server on free ports with empty data, waiting until
    /// `/ping` answers 204. Panics (with the log tail) if it cannot start.
    pub async fn start() -> Influxd {
        Self::start_with(None).await
    }

    /// [`Influxd::start`] serving HTTPS with this PEM certificate and key;
    /// `url` is then `https://127.0.0.1:<port>`.
    pub async fn start_https(cert: &Path, key: &Path) -> Influxd {
        Self::start_with(Some((cert.to_path_buf(), key.to_path_buf()))).await
    }

    async fn start_with(https: Option<(PathBuf, PathBuf)>) -> Influxd {
        let dir = tempfile::Builder::new()
            .prefix("inmate-influxd-")
            .tempdir()
            .expect("create influxd temp dir");
        let mut node = Influxd {
            port: 0,
            url: String::new(),
            rpc_port: 0,
            https,
            dir,
            child: None,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            node.port = free_port();
            node.rpc_port = free_port();
            let scheme = if node.https.is_some() {
                "https"
            } else {
                "http"
            };
            node.url = format!("{scheme}://127.0.0.1:{}", node.port);
            match node.spawn_and_wait().await {
                Ok(()) => return node,
                Err(StartFailure::PortClash) if attempt < PORT_ATTEMPTS => continue,
                Err(StartFailure::PortClash) => {
                    panic!("influxd: ports kept clashing\n{}", node.log_tail(40))
                }
                Err(StartFailure::Other(why)) => {
                    panic!("influxd failed to start: {why}\n{}", node.log_tail(40))
                }
            }
        }
        unreachable!("the loop above returns or panics on its last attempt")
    }

    /// SIGTERM and wait for exit (SIGKILL after 15 s). Data stays on disk.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        // A paused server cannot act on SIGTERM until it is continued.
        let _ = kill(pid, Signal::SIGCONT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same ports and data dir (stopping it
    /// first if it runs). Retries for a while if the port is briefly taken.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return,
                Err(StartFailure::PortClash) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(StartFailure::PortClash) => {
                    panic!("influxd restart: port stays taken\n{}", self.log_tail(40))
                }
                Err(StartFailure::Other(why)) => {
                    panic!("influxd failed to restart: {why}\n{}", self.log_tail(40))
                }
            }
        }
    }

    /// SIGSTOP: the process keeps its sockets open but answers nothing,
    /// like a hung node (connections are accepted by the kernel backlog).
    /// Returns once every thread is stopped: the signal is asynchronous, and
    /// a request sent right after `kill()` could still be served.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
        self.wait_all_threads(true);
    }

    /// SIGCONT: undo [`Influxd::pause`]; returns once no thread is stopped.
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
        self.wait_all_threads(false);
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The temp directory holding meta/data/wal, the config and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Direct `GET /query?db=..&q=..&epoch=ns` against this node (bypassing
    /// the gateway). Panics on a transport error.
    pub async fn query(&self, db: &str, q: &str) -> Value {
        let resp = client()
            .get(format!("{}/query", self.url))
            .query(&[("db", db), ("q", q), ("epoch", "ns")])
            .send()
            .await
            .unwrap_or_else(|e| panic!("influxd {} query {q:?}: {e}", self.url));
        let text = resp.text().await.unwrap_or_default();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("influxd {} query {q:?}: bad JSON {e}: {text}", self.url))
    }

    /// Direct `POST /query` (for statements that change state).
    pub async fn exec(&self, q: &str) -> Value {
        let resp = client()
            .post(format!("{}/query", self.url))
            .query(&[("q", q)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("influxd {} exec {q:?}: {e}", self.url));
        let text = resp.text().await.unwrap_or_default();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("influxd {} exec {q:?}: bad JSON {e}: {text}", self.url))
    }

    /// `SELECT count("field") FROM "measurement"`: the number of points with
    /// that field; 0 when the database, measurement or field does not exist.
    pub async fn count(&self, db: &str, measurement: &str, field: &str) -> u64 {
        let q = format!(
            "SELECT count({}) FROM {}",
            quote_ident(field),
            quote_ident(measurement)
        );
        let v = self.query(db, &q).await;
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    }

    /// `SHOW DATABASES`, in the server's order.
    pub async fn databases(&self) -> Vec<String> {
        let v = self.query("", "SHOW DATABASES").await;
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r[0].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `CREATE DATABASE "db"` directly on this node; panics on an error.
    pub async fn create_db(&self, db: &str) {
        let v = self
            .exec(&format!("CREATE DATABASE {}", quote_ident(db)))
            .await;
        assert!(
            v["results"][0]["error"].is_null() && v["error"].is_null(),
            "CREATE DATABASE {db} on {}: {v}",
            self.url
        );
    }

    /// Direct `POST /write?db=..`; returns status and body text.
    pub async fn write(&self, db: &str, body: &str) -> (u16, String) {
        super::write(&self.url, db, body).await
    }

    /// True when `/ping` answers 204 within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        ping(&self.url, timeout).await
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "--- influxd {} log tail ---\n{}",
            self.url,
            all[from..].join("\n")
        )
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("influxd.log")
    }

    /// Polls `/proc/<pid>/task/*/stat` until every thread is (or no thread
    /// is) in state `T` (stopped); gives up quietly after 5 s.
    fn wait_all_threads(&self, stopped: bool) {
        let Some(pid) = self.pid() else { return };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return;
            };
            let all = tasks.flatten().all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // The state follows the last ')' (the command name may hold any byte).
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.trim_start().chars().next());
                (state == Some('T')) == stopped
            });
            if all {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            kill(Pid::from_raw(pid as i32), sig)
                .unwrap_or_else(|e| panic!("send {sig} to influxd {}: {e}", self.url));
        }
    }

    fn write_config(&self) -> PathBuf {
        let d = self.dir.path();
        let https = match &self.https {
            Some((cert, key)) => format!(
                "  https-enabled = true\n  https-certificate = \"{}\"\n  https-private-key = \"{}\"\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let conf = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"

[meta]
  dir = "{meta}"
  logging-enabled = false

[data]
  dir = "{data}"
  wal-dir = "{wal}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
  suppress-write-log = true
{https}
[logging]
  level = "warn"

[continuous_queries]
  log-enabled = false
"#,
            rpc = self.rpc_port,
            http = self.port,
            meta = d.join("meta").display(),
            data = d.join("data").display(),
            wal = d.join("wal").display(),
        );
        let path = d.join("influxdb.conf");
        std::fs::write(&path, conf).expect("write influxd config");
        path
    }

    async fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let conf = self.write_config();
        let log_start = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| StartFailure::Other(format!("open log: {e}")))?;
        let log_err = log
            .try_clone()
            .map_err(|e| StartFailure::Other(format!("clone log handle: {e}")))?;
        let mut cmd = Command::new(influxd_binary());
        cmd.arg("run")
            .arg("-config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("INFLUXDB_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd.spawn().map_err(|e| {
            StartFailure::Other(format!(
                "spawn {}: {e} (is InfluxDB 1.x installed? see scripts/test.sh)",
                influxd_binary().display()
            ))
        })?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let probe = client_with_timeout(Duration::from_secs(1));
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status),
                _ => None,
            };
            if let Some(status) = exited {
                self.child = None;
                let new_log = read_from(&self.log_path(), log_start);
                return Err(if new_log.contains("address already in use") {
                    StartFailure::PortClash
                } else {
                    StartFailure::Other(format!("influxd exited with {status}"))
                });
            }
            let ok = if self.https.is_some() {
                tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            } else {
                probe
                    .get(format!("{}/ping", self.url))
                    .send()
                    .await
                    .map(|r| r.status().as_u16() == 204)
                    .unwrap_or(false)
            };
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartFailure::Other(format!(
                    "no 204 from {}/ping within {START_TIMEOUT:?}",
                    self.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(30));
        }
        if let Some(mut child) = self.child.take() {
            // SIGKILL works on a stopped (paused) process too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True when `GET {url}/ping` answers 204 within `timeout`.
pub async fn ping(url: &str, timeout: Duration) -> bool {
    client_with_timeout(timeout)
        .get(format!("{url}/ping"))
        .send()
        .await
        .map(|r| r.status().as_u16() == 204)
        .unwrap_or(false)
}

/// The influxd binary: `INMATE_INFLUXD` if set, else `influxd` on PATH.
fn influxd_binary() -> PathBuf {
    std::env::var_os("INMATE_INFLUXD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("influxd"))
}

/// An InfluxQL double-quoted identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The file's text from byte `offset` on (empty if unreadable).
fn read_from(path: &Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = String::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_string(&mut out);
    }
    out
}
