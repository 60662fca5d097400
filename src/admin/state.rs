//! The operator's state that outlives a restart: which nodes are paused or
//! draining, who set that, and when.
//!
//! Why a file of its own: a node paused for maintenance must stay paused when
//! the gateway restarts in the middle of that maintenance, or its replicator
//! would start delivering to a node that is being worked on. The durable log
//! knows nothing of operators, so the modes live in `data_dir/admin.json`,
//! rewritten whole (temp file, fsync, rename) on every change and applied
//! to the nodes at start, before any replicator runs ([`restore`]). Enabled
//! nodes are not listed; a node no longer in the config is ignored (and
//! logged) at start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::backend::Node;
use crate::backend::cluster::Admin;

/// One node's persisted mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mode {
    /// `paused` or `draining`.
    pub mode: String,
    /// The principal that set it (a name, never a secret).
    pub by: String,
    /// RFC 3339 time it was set.
    pub at: String,
}

/// The whole file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    #[serde(default)]
    pub nodes: BTreeMap<String, Mode>,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid operator state: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

/// Serialises read-modify-write of the file within the process.
static FILE: Mutex<()> = Mutex::new(());

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the file; a missing file is the empty state.
pub fn load(data_dir: &Path) -> Result<OperatorState, StateError> {
    let p = path(data_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OperatorState::default()),
        Err(e) => return Err(io(&p)(e)),
    };
    serde_json::from_str(&text).map_err(|source| StateError::Parse {
        path: p.display().to_string(),
        source,
    })
}

/// Records `mode` for `node` (set by `by`) and rewrites the file durably.
pub fn record(data_dir: &Path, node: &str, mode: Admin, by: &str) -> Result<(), StateError> {
    let _guard = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let mut state = load(data_dir)?;
    if mode == Admin::Enabled {
        state.nodes.remove(node);
    } else {
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        state.nodes.insert(
            node.to_string(),
            Mode {
                mode: mode.as_str().to_string(),
                by: by.to_string(),
                at,
            },
        );
    }
    let p = path(data_dir);
    let text = serde_json::to_vec_pretty(&state).map_err(|source| StateError::Parse {
        path: p.display().to_string(),
        source,
    })?;
    write_atomic(&p, &text).map_err(io(&p))
}

fn parse_mode(s: &str) -> Option<Admin> {
    match s {
        "paused" => Some(Admin::Paused),
        "draining" => Some(Admin::Draining),
        "enabled" => Some(Admin::Enabled),
        _ => None,
    }
}

/// Applies the persisted modes to `nodes` (at start, before replication).
/// A broken file is logged and ignored: every node then starts enabled.
pub fn restore(data_dir: &Path, nodes: &[Arc<Node>]) {
    let state = match load(data_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "operator state unreadable; every node starts enabled");
            return;
        }
    };
    for (name, m) in &state.nodes {
        let node = nodes.iter().find(|n| n.name() == name);
        match (node, parse_mode(&m.mode)) {
            (Some(n), Some(mode)) => {
                n.set_admin(mode);
                tracing::info!(node = %name, mode = mode.as_str(), by = %m.by, since = %m.at,
                    "operator mode restored");
            }
            _ => tracing::warn!(node = %name, mode = %m.mode,
                "operator state names an unknown node or mode; ignored"),
        }
    }
}

/// Writes `bytes` to `file` atomically: a private temp file, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_atomic(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_enabled_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), OperatorState::default());
        record(dir.path(), "a", Admin::Paused, "ops").unwrap();
        record(dir.path(), "b", Admin::Draining, "ops").unwrap();
        let s = load(dir.path()).unwrap();
        assert_eq!(s.nodes["a"].mode, "paused");
        assert_eq!(s.nodes["b"].by, "ops");
        record(dir.path(), "a", Admin::Enabled, "ops").unwrap();
        let s = load(dir.path()).unwrap();
        assert!(!s.nodes.contains_key("a"));
        assert_eq!(s.nodes.len(), 1);
    }

    #[test]
    fn a_broken_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{not json").unwrap();
        assert!(matches!(load(dir.path()), Err(StateError::Parse { .. })));
        assert!(record(dir.path(), "a", Admin::Paused, "ops").is_err());
    }
}
