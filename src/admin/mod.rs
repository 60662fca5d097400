//! Operating a running gateway: the admin API under `/inmate/v1/` and the
//! `inmate` CLI commands that call it.
//!
//! Why: pausing a node for maintenance, draining it before removal,
//! replaying what a node refused once its cause is fixed and clearing the
//! repair flag after a repair are operator actions on a live gateway. They
//! go through the gateway's HTTP port (so they work wherever the gateway is
//! reachable, with its credentials) rather than through files an operator
//! edits next to a running process.
//!
//! - the routes themselves live in `server::admin` (admin scope, every
//!   action logged with the principal's name), so this module never
//!   imports the server;
//! - [`state`]: paused/draining modes persisted in `data_dir/admin.json`
//!   and restored at start;
//! - [`deadletters`]: list, replay (direct resend to that one node) and
//!   discard of a node's dead-letter file;
//! - [`cli`]: `inmate status|node|deadletter|repair-flag`, a small HTTP
//!   client of the API.
//!
//! The types below are the API's JSON, shared by server and CLI.

pub mod cli;
pub mod deadletters;
pub mod state;

use serde::{Deserialize, Serialize};

/// Where the admin API lives.
pub const PREFIX: &str = "/inmate/v1/";

/// One node as `GET /inmate/v1/nodes` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub url: String,
    /// The operator's mode: `enabled`, `paused` or `draining`.
    pub mode: String,
    /// Who set a non-enabled mode, and when (RFC 3339).
    pub mode_by: Option<String>,
    pub mode_since: Option<String>,
    /// `up`, `down` or `catching_up`.
    pub state: String,
    /// Records and bytes in the log not yet delivered to this node.
    pub backlog_records: u64,
    pub backlog_bytes: u64,
    /// How far the node's applied position is behind the log's end, in
    /// records (includes records skipped by the log's limits).
    pub lag_records: u64,
    /// Age of the oldest record not yet delivered, in seconds.
    pub oldest_unsent_seconds: Option<f64>,
    pub dead_letters: usize,
    pub needs_repair: bool,
    pub last_error: Option<String>,
}

/// `GET /inmate/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub log_next_seq: u64,
    pub nodes: Vec<NodeView>,
}

/// The answer to a mode change or a flag clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub node: String,
    pub action: String,
    /// The principal that did it.
    pub by: String,
    /// What it did, in words.
    pub message: String,
}
