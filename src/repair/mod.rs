//! Consistency tools: `inmate verify`, `inmate repair`, `inmate backfill`.
//!
//! Why this exists: the gateway delivers every acknowledged write to every
//! node, but replicas still diverge for reasons outside the log: a node is
//! added empty, loses its disk, fell behind past `queue.max_bytes`/`max_age`,
//! or someone wrote to it directly. These tools compare the nodes and copy
//! what is missing, talking to the nodes directly (never through the
//! gateway) with each node's configured credentials.
//!
//! Layout:
//! - [`node`]: a v1 node's HTTP API as the tools need it (queries, chunked
//!   raw reads, writes) with a shared rate limiter.
//! - [`lp`]: the line-protocol encoder (escaping, field types).
//! - [`schema`]: databases, retention policies, continuous queries,
//!   measurements and field keys: read, compare, and create on a node.
//! - [`digest`]: per-window digests and the adaptive window search.
//! - [`points`]: raw points of one window, merged across nodes.
//! - [`verify`], [`fix`], [`backfill`]: the three commands.
//! - [`progress`]: progress bars on a terminal, plain lines otherwise.
//! - [`time`]: InfluxDB's duration and time formats, windows.
//! - [`cli`]: the commands' arguments and exit codes.
//! - [`auto`]: the gateway's opt-in background repair (`repair.auto`),
//!   calling `verify`/`repair` as functions with the CLI's defaults.
//!
//! Only InfluxDB 1.x nodes are supported; nodes with a `token` (2.x) are
//! refused with a usage error (and left out, with a warning, by `auto`).

pub mod auto;
pub mod backfill;
pub mod cli;
pub mod digest;
pub mod fix;
pub mod lp;
pub mod node;
pub mod points;
pub mod progress;
pub mod schema;
pub mod time;
pub mod verify;

use std::time::Duration;

pub use node::Node;

/// Defaults of the commands' `--concurrency`, `--rate`, `--batch` and
/// verify/repair `--window`; [`auto`] runs with them too.
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_RATE: u64 = 0;
pub const DEFAULT_BATCH: usize = 5000;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Why a consistency command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Bad arguments or a config these tools cannot use (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// A node could not be reached or answered with an error.
    #[error("node {node}: {msg}")]
    Node { node: String, msg: String },
    /// The backfill checkpoint could not be read or written.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: String, msg: String },
}

impl RepairError {
    pub fn node(node: &str, msg: impl Into<String>) -> RepairError {
        RepairError::Node {
            node: node.to_string(),
            msg: msg.into(),
        }
    }
}

/// Options every command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// Only these databases (all when empty).
    pub dbs: Vec<String>,
    /// Time range, nanoseconds since the epoch, `[since, until)`.
    pub since: i64,
    pub until: i64,
    /// The finest window the search splits down to (verify/repair) or the
    /// copy unit (backfill).
    pub window: Duration,
    /// Queries in flight at once (verify); time slices of a window read
    /// at once (backfill).
    pub concurrency: usize,
    /// Points per second written to one node (0 = unlimited); for verify,
    /// queries per second.
    pub rate: u64,
}

impl Common {
    pub fn wants_db(&self, db: &str) -> bool {
        self.dbs.is_empty() || self.dbs.iter().any(|d| d == db)
    }
}

/// Quotes an InfluxQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Quotes an InfluxQL string literal.
pub fn string_lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `"db"."rp"."m"`, or `"db"."rp"./.*/` for every measurement.
pub fn source(db: &str, rp: &str, measurement: Option<&str>) -> String {
    match measurement {
        Some(m) => format!("{}.{}.{}", ident(db), ident(rp), ident(m)),
        None => format!("{}.{}./.*/", ident(db), ident(rp)),
    }
}
