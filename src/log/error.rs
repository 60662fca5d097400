//! Errors of the durable log.
//!
//! `LogError` is `Clone` because one failed group write has to be reported to
//! every append waiting in that group; the underlying `io::Error` is therefore
//! shared behind an `Arc`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in [`crate::log`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A file-system operation failed (open, write, fsync, rename, ...).
    /// `op` names the step so operators can tell a full disk from a bad fsync.
    #[error("log {op} failed on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// The log was closed (or its writer thread is gone); nothing was appended.
    #[error("the log is closed")]
    Closed,
    /// `reader()` / `flush` was asked about a cursor that was not configured at open.
    #[error("unknown log cursor {0:?}")]
    UnknownCursor(String),
    /// A payload larger than one frame may carry; it was not appended.
    #[error("payload of {len} bytes exceeds the log frame limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: usize },
    /// `LogOptions` cannot work (e.g. a zero segment size or an empty cursor name).
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
    /// A segment file exists but is not ours (bad magic or unknown version)
    /// and could not be moved aside.
    #[error("segment {} is not a valid log segment: {reason}", path.display())]
    BadSegment { path: PathBuf, reason: String },
    /// The log directory's `LOCK` file is held by another open log.
    #[error(
        "log directory {} is locked: another inmate process (or another open log in this process) is using this data_dir",
        .0.display()
    )]
    Locked(PathBuf),
    /// A background task (spawn_blocking) panicked or was cancelled.
    #[error("log background task failed: {0}")]
    Task(String),
}

impl LogError {
    /// Wraps an `io::Error` with the failed step and the path it concerned.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// The io::ErrorKind behind this error, if it is an I/O error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            LogError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl From<tokio::task::JoinError> for LogError {
    fn from(e: tokio::task::JoinError) -> Self {
        LogError::Task(e.to_string())
    }
}
