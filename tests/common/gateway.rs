//! The real `inmate` binary as a child process.
//!
//! Why a process and not an in-process server: crash and restart behaviour
//! (SIGKILL mid-write, SIGTERM drain, recovery from the data dir) is what the
//! gateway promises, and only a real process can be killed.
//!
//! Design notes:
//! - The config is written to a temp file; `port: 0` lets the OS pick a free
//!   port, which the gateway reports in its startup log line (containing
//!   `"listening"` and `"addr":"127.0.0.1:PORT"`). A restart therefore gets
//!   a new port and `url` is updated.
//! - stdout and stderr go to one log file that is read for the listening line
//!   and shown when the owning test panics, so a failure shows the gateway's
//!   side of the story.
//! - `AUTH_TOKEN` and `RUST_LOG` are removed from the child's environment
//!   (the gateway reads them as overrides: a stray `RUST_LOG=warn` would hide
//!   the listening line) unless a test sets them explicitly.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long the gateway may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd gateway may take to exit before it is SIGKILLed.
const TERM_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped) gateway process.
pub struct Gateway {
    /// `http://127.0.0.1:<port>`; changes on [`Gateway::restart`].
    pub url: String,
    pub port: u16,
    /// The gateway's data dir (owned by the caller).
    pub data_dir: PathBuf,
    config_path: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Gateway {
    /// Starts the gateway with this config (see [`config_yaml`]); a
    /// `data_dir:` line pointing at `data_dir` is appended when the YAML has
    /// none. Panics with the gateway's output if it does not come up.
    pub async fn start(config_yaml: &str, data_dir: &Path) -> Gateway {
        Self::start_with_env(config_yaml, data_dir, &[]).await
    }

    /// [`Gateway::start`] with extra environment variables (e.g. `AUTH_TOKEN`).
    pub async fn start_with_env(
        config_yaml: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> Gateway {
        match Self::try_start(config_yaml, data_dir, env).await {
            Ok(g) => g,
            Err(why) => panic!("gateway did not start: {why}"),
        }
    }

    /// Like [`Gateway::start_with_env`] but returns the reason (with the
    /// gateway's output) instead of panicking, for tests of startup errors.
    pub async fn try_start(
        config_yaml: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let dir = tempfile::Builder::new()
            .prefix("inmate-gateway-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut yaml = config_yaml.to_owned();
        if !yaml.lines().any(|l| l.starts_with("data_dir:")) {
            let quoted = serde_json::to_string(&data_dir.to_string_lossy())
                .map_err(|e| format!("quote data dir: {e}"))?;
            if !yaml.ends_with('\n') {
                yaml.push('\n');
            }
            yaml.push_str(&format!("data_dir: {quoted}\n"));
        }
        let config_path = dir.path().join("inmate.yaml");
        std::fs::write(&config_path, yaml).map_err(|e| format!("write config: {e}"))?;
        let mut gw = Gateway {
            url: String::new(),
            port: 0,
            data_dir: data_dir.to_path_buf(),
            config_path,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
            child: None,
        };
        gw.spawn_and_wait().await?;
        Ok(gw)
    }

    /// SIGKILL and reap: a crash with no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for exit (SIGKILL after 30 s); returns the exit
    /// status, or `None` if it was not running.
    pub async fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + TERM_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts the gateway again with the same config and data dir (SIGTERM
    /// first if it runs). With `port: 0` the port and `url` change.
    pub async fn restart(&mut self) {
        self.terminate().await;
        if let Err(why) = self.spawn_and_wait().await {
            panic!("gateway did not restart: {why}");
        }
    }

    /// Everything the gateway wrote to stdout and stderr so far (all runs).
    /// Info lines reach the file up to 20 ms after they are logged (the
    /// gateway writes its log in batches): to assert that a line was
    /// logged, use [`Gateway::logs_with`].
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The logs once they contain `needle` (or after 5 s without it, so the
    /// caller's assertion shows what was there).
    pub async fn logs_with(&self, needle: &str) -> String {
        super::api::eventually(Duration::from_secs(5), || async {
            self.logs().contains(needle)
        })
        .await;
        self.logs()
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The config file the gateway was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_start = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0) as usize;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let bin = gateway_binary()?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .env_remove("AUTH_TOKEN")
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.logs();
            if let Some(addr) = out.get(log_start..).and_then(listening_addr) {
                self.port = addr.port();
                self.url = format!("http://127.0.0.1:{}", self.port);
                return self.wait_accepting(deadline).await;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "gateway exited with {status} before listening\n{out}"
                ));
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(format!("no listening line within {START_TIMEOUT:?}\n{out}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the reported port accepts TCP connections.
    async fn wait_accepting(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(format!(
                    "port {} never accepted\n{}",
                    self.port,
                    self.logs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            let from = lines.len().saturating_sub(200);
            eprintln!(
                "--- gateway {} output (last {} lines) ---\n{}",
                self.url,
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
        self.kill9();
    }
}

/// The gateway binary: `INMATE_BIN` if set, else the one cargo built for
/// this test run.
fn gateway_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("INMATE_BIN") {
        return Ok(PathBuf::from(p));
    }
    option_env!("CARGO_BIN_EXE_inmate")
        .map(PathBuf::from)
        .ok_or_else(|| "the `inmate` binary target is missing (no CARGO_BIN_EXE_inmate)".into())
}

/// The address in the first log line that mentions `listening` and an
/// `addr` (`"addr":"127.0.0.1:PORT"` in JSON logs, or `addr=...`).
fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|l| l.contains("listening"))
        .find_map(|l| {
            let after = &l[l.find("addr")? + 4..];
            let after = after.trim_start_matches(['"', ':', '=', ' ']);
            let end = after.find(['"', ' ', ',', '}']).unwrap_or(after.len());
            after[..end].parse().ok()
        })
}

/// A seed-style config for these v1 node URLs: `addresses`, loopback bind,
/// `port: 0`, then `extra` verbatim (e.g. `"auth_token: secret\n"`).
/// `data_dir` is added by [`Gateway::start`].
pub fn config_yaml(nodes: &[&str], extra: &str) -> String {
    let with_tokens: Vec<(&str, &str)> = nodes.iter().map(|n| (*n, "")).collect();
    config_yaml_with_tokens(&with_tokens, extra)
}

/// [`config_yaml`] with a per-node token (v2 nodes); an empty token is
/// omitted.
pub fn config_yaml_with_tokens(nodes: &[(&str, &str)], extra: &str) -> String {
    let mut y = String::from("addresses:\n");
    for (url, token) in nodes {
        y.push_str(&format!("  - url: {url}\n"));
        if !token.is_empty() {
            y.push_str(&format!("    token: {token}\n"));
        }
    }
    y.push_str("bind_address: 127.0.0.1\nport: 0\n");
    y.push_str(extra);
    if !y.ends_with('\n') {
        y.push('\n');
    }
    y
}
