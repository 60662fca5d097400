//! Configuration: the original inmate's `config.yaml`, unchanged, plus Inmate's
//! own keys.
//!
//! Loading is three steps, each in its own file:
//! 1. `raw.rs`: the file's shape. Unknown keys are errors, reported with their
//!    path (`addresses[0].tokn`), because a typo that silently falls back to a
//!    default is how operators lose data.
//! 2. `interp.rs`: `${VAR}` / `${VAR:-default}` in string values.
//! 3. `validate/`: defaults, units and ranges, producing the immutable
//!    [`Config`] every other module reads.
//!
//! Every failure becomes one line, `<file>: <key path>: <what is wrong>`, which
//! the binary prints before exiting with code 2.

mod interp;
mod raw;
pub mod tls;
mod validate;

pub use tls::{ListenerTls, NodeTls};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// How a write request's acknowledgement relates to the nodes (InfluxDB
/// Enterprise's `consistency` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Durable in the gateway's log.
    Any,
    /// Durable, and at least one node has acknowledged it.
    One,
    /// Durable, and a majority of nodes have acknowledged it.
    Quorum,
    /// Durable, and every node has acknowledged it.
    All,
}

/// A setting written as one of a few names (`write_consistency: quorum`).
/// The names are listed once, for parsing and for the error that lists them.
pub trait Choice: Copy + 'static {
    /// Every accepted name and its value, in the order the error lists them.
    const NAMES: &'static [(&'static str, Self)];

    fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }
}

impl Choice for Consistency {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("any", Consistency::Any),
        ("one", Consistency::One),
        ("quorum", Consistency::Quorum),
        ("all", Consistency::All),
    ];
}

impl Consistency {
    pub fn parse(s: &str) -> Option<Consistency> {
        <Consistency as Choice>::parse(s)
    }

    /// How many node acknowledgements this level needs out of `nodes`.
    pub fn required(self, nodes: usize) -> usize {
        match self {
            Consistency::Any => 0,
            Consistency::One => 1.min(nodes),
            Consistency::Quorum => nodes / 2 + 1,
            Consistency::All => nodes,
        }
    }
}

/// When the log's appends are fsynced (see `queue.fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    Always,
    Interval,
    Never,
}

/// How write batches travel to one node (`addresses[].gzip`).
///
/// Deflate costs about ten times what validation does (`BENCHMARKS.md`), so
/// the default spends none: gzip bodies from clients reach the node as the
/// client compressed them, plain ones go plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireGzip {
    /// `auto` (default): pass the client's encoding through.
    #[default]
    Auto,
    /// `true`: always gzip; plain bodies are compressed once at the door.
    Always,
    /// `false`: never gzip; stored gzip bodies are inflated for this node.
    Never,
}

impl Serialize for WireGzip {
    /// As the operator writes it: `auto`, `true` or `false`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireGzip::Auto => s.serialize_str("auto"),
            WireGzip::Always => s.serialize_bool(true),
            WireGzip::Never => s.serialize_bool(false),
        }
    }
}

impl Choice for FsyncMode {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("always", FsyncMode::Always),
        ("interval", FsyncMode::Interval),
        ("never", FsyncMode::Never),
    ];
}

/// Which node may answer a read (see `read_consistency`): how much of the
/// log it must have applied, waiting up to `read_wait` for one that has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Every write acknowledged before the read arrived.
    Fresh,
    /// The acknowledged writes the read's scope (its database or bucket) must see.
    Scoped,
    /// Any healthy node, within `read_lag_tolerance`.
    Any,
}

impl Choice for ReadConsistency {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("fresh", ReadConsistency::Fresh),
        ("scoped", ReadConsistency::Scoped),
        ("any", ReadConsistency::Any),
    ];
}

/// How log lines are written to stdout (see `log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
    /// Text when stdout is a terminal, JSON otherwise.
    Auto,
}

impl Choice for LogFormat {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("json", LogFormat::Json),
        ("text", LogFormat::Text),
        ("auto", LogFormat::Auto),
    ];
}

/// What a client may do. `admin` covers mutations (CREATE/DROP/…, deletes,
/// bucket changes) and the gateway's own admin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes {
        read: true,
        write: true,
        admin: true,
    };
}

/// One named client (`clients[]`): a token, or a password (as an argon2
/// PHC string) for HTTP Basic and `u`/`p`, with scopes and an optional
/// database allow-list.
#[derive(Debug, Clone, Serialize)]
pub struct ClientConfig {
    pub name: String,
    #[serde(serialize_with = "ser_secret")]
    pub token: Option<String>,
    #[serde(serialize_with = "ser_secret")]
    pub password_hash: Option<String>,
    pub scopes: Scopes,
    /// `None`: every database. Otherwise the databases (v1 `db`, v2
    /// bucket) this client may read or write.
    pub databases: Option<Vec<String>>,
}

/// One InfluxDB node behind the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct NodeConfig {
    /// Stable identity: names the node's cursor and dead-letter file.
    pub name: String,
    #[serde(serialize_with = "ser_url")]
    pub url: url::Url,
    #[serde(serialize_with = "ser_secret")]
    pub token: Option<String>,
    pub username: Option<String>,
    #[serde(serialize_with = "ser_secret")]
    pub password: Option<String>,
    pub gzip: WireGzip,
    /// `addresses[].tls`: verification and client certificate for https.
    pub tls: NodeTls,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueConfig {
    pub fsync: FsyncMode,
    #[serde(serialize_with = "ser_dur")]
    pub fsync_interval: Duration,
    pub max_batch_bytes: usize,
    pub max_bytes: u64,
    #[serde(serialize_with = "ser_dur")]
    pub max_age: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub retry_max_delay: Duration,
    pub segment_bytes: u64,
    pub cache_bytes: usize,
    /// Write the log with `O_DIRECT` where the filesystem supports it.
    pub direct_io: bool,
}

/// The validated, immutable configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    #[serde(skip)]
    pub source: PathBuf,
    #[serde(rename = "addresses")]
    pub nodes: Vec<NodeConfig>,
    pub bind_address: String,
    pub port: u16,
    /// Consecutive failed deliveries after which a node is reported down by
    /// its replicator. Never a reason to drop data (see README).
    #[serde(rename = "retry_count")]
    pub failure_warn_after: u32,
    #[serde(serialize_with = "ser_dur")]
    pub retry_delay: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub query_timeout: Duration,
    /// Most records a replicator coalesces into one node request.
    #[serde(rename = "channel_size")]
    pub max_batch_records: usize,
    #[serde(serialize_with = "ser_secret")]
    pub auth_token: Option<String>,
    pub data_dir: PathBuf,
    pub allow_anonymous: bool,
    pub write_consistency: Consistency,
    #[serde(serialize_with = "ser_dur")]
    pub write_timeout: Duration,
    /// Largest request body, also after decoding; 0 = unlimited.
    pub max_body_size: usize,
    /// Most client connections open at once; 0 = unlimited.
    pub max_connections: usize,
    /// Most request-body bytes held in memory across all requests; 0 = unlimited.
    pub max_inflight_bytes: usize,
    #[serde(serialize_with = "ser_dur")]
    pub request_timeout: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub health_check_interval: Duration,
    #[serde(serialize_with = "ser_dur")]
    pub health_check_timeout: Duration,
    pub health_threshold: u32,
    /// Consecutive good checks that bring a down node up (default `health_threshold`).
    pub health_threshold_up: u32,
    /// Consecutive failed checks that take an up node down (default `health_threshold`).
    pub health_threshold_down: u32,
    pub read_lag_tolerance: u64,
    /// The longest a read waits for a node that has applied what it must see.
    #[serde(serialize_with = "ser_dur")]
    pub read_wait: Duration,
    pub read_consistency: ReadConsistency,
    #[serde(serialize_with = "ser_dur")]
    pub shutdown_timeout: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Record metric events (`/metrics` answers either way).
    pub metrics_enabled: bool,
    /// Named clients with their own credentials and scopes (besides
    /// `auth_token`, which is the one admin credential).
    pub clients: Vec<ClientConfig>,
    /// `/health` and `/ready` answer without credentials (`/ping` always does).
    pub public_health: bool,
    /// Where a separate metrics listener binds (`host:port`); none when unset.
    pub metrics_bind: Option<String>,
    /// The listener serves HTTPS with this certificate (reloaded on SIGHUP).
    pub tls: Option<ListenerTls>,
    pub queue: QueueConfig,
    /// UDP line-protocol listeners (InfluxDB's `[[udp]]`); none by default.
    pub udp: Vec<UdpConfig>,
    /// The opt-in background repair (`repair.auto`).
    pub repair: RepairConfig,
    /// Async worker threads; `None` is `auto` (see [`Config::async_workers`]).
    #[serde(serialize_with = "ser_threads")]
    pub worker_threads: Option<usize>,
}

impl Config {
    /// How many threads run the async runtime (the doors, the replicators,
    /// reads): `worker_threads`, or for `auto` one per core, tokio's own
    /// default. Fewer cost less CPU per read on a small box shared with the
    /// nodes, the same throughput there, and cap a gateway of its own
    /// (README "Sizing", BENCHMARKS.md 3j).
    pub fn async_workers(&self) -> usize {
        self.worker_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

fn ser_threads<S: serde::Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_u64(*n as u64),
        None => s.serialize_str("auto"),
    }
}

/// `repair`: automatic verify-and-repair of v1 nodes (see `repair::auto`).
#[derive(Debug, Clone, Serialize)]
pub struct RepairConfig {
    /// Off by default: repair writes to nodes on its own.
    pub auto: bool,
    /// How often the window `[now - lookback, now)` is verified and repaired.
    #[serde(serialize_with = "ser_dur")]
    pub interval: Duration,
    /// How far back each scheduled run looks.
    #[serde(serialize_with = "ser_dur")]
    pub lookback: Duration,
}

/// One UDP listener (`udp[]`): datagrams of line protocol for one database.
#[derive(Debug, Clone, Serialize)]
pub struct UdpConfig {
    /// `host:port` to bind (InfluxDB's `:8089` means `0.0.0.0:8089`).
    pub bind_address: String,
    pub database: String,
    /// Empty: the database's default retention policy.
    pub retention_policy: String,
    /// The unit of the datagrams' timestamps, as `/write?precision=` (`n`,
    /// `u`, `ms`, `s`, `m`, `h`).
    pub precision: String,
    /// Points per batch appended to the log.
    pub batch_size: usize,
    /// Batches waiting for the log before the listener stops reading.
    pub batch_pending: usize,
    /// The longest a point waits for its batch to fill.
    #[serde(serialize_with = "ser_dur")]
    pub batch_timeout: Duration,
    /// The socket's receive buffer (`SO_RCVBUF`); 0 = the OS default.
    pub read_buffer: usize,
    /// Larger datagrams are dropped (and counted), never parsed truncated.
    pub max_datagram_size: usize,
}

fn ser_secret<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

fn ser_url<S: serde::Serializer>(v: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    // Userinfo in a URL is a credential too.
    let mut v = v.clone();
    if v.password().is_some() {
        let _ = v.set_password(Some("redacted"));
    }
    s.serialize_str(v.as_str())
}

fn ser_dur<S: serde::Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*v).to_string())
}

/// A config that cannot be used, as one printable line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// The file is not YAML, has an unknown key or a value of the wrong type.
    #[error("{file}: {path}{msg}")]
    Parse {
        file: String,
        path: String,
        msg: String,
    },
    /// The file parsed but a value is out of range or inconsistent.
    #[error("{file}: {path}: {msg}")]
    Invalid {
        file: String,
        path: String,
        msg: String,
    },
}

impl Config {
    /// Reads and validates a config file, using the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Config::from_yaml(&text, path, &|k| std::env::var(k).ok())
    }

    /// Parses and validates YAML text; `env` resolves `${VAR}` and `AUTH_TOKEN`.
    pub fn from_yaml(
        text: &str,
        source: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = source.display().to_string();
        let parse_err = |path: String, msg: String| ConfigError::Parse {
            file: file.clone(),
            path,
            msg,
        };
        let mut value: serde_norway::Value = serde_norway::from_str(text)
            .map_err(|e| parse_err(String::new(), one_line(&e.to_string())))?;
        if value.is_null() {
            // An empty file is a config with no keys, not a parse error.
            value = serde_norway::Value::Mapping(Default::default());
        }
        interp::interpolate(&mut value, &mut Vec::new(), env)
            .map_err(|(path, msg)| parse_err(format!("{path}: "), msg))?;
        let raw: raw::RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            parse_err(path, one_line(&e.into_inner().to_string()))
        })?;
        validate::validate(raw, source.to_path_buf(), env).map_err(|(path, msg)| {
            ConfigError::Invalid {
                file: file.clone(),
                path,
                msg,
            }
        })
    }

    /// The effective config as YAML with every secret redacted.
    pub fn redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The address the server binds.
    pub fn listen_addr(&self) -> String {
        if self.bind_address.contains(':') {
            format!("[{}]:{}", self.bind_address, self.port)
        } else {
            format!("{}:{}", self.bind_address, self.port)
        }
    }
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
