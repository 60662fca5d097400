//! Listing, replaying and discarding a node's dead letters.
//!
//! # Replay design
//! A dead letter is a record ONE node refused; every other node already has
//! it. Putting it back into the shared log would send it to every node (or
//! need a per-node target in the record format and the replicator), so
//! replay resends it **directly to that node** through the gateway's HTTP
//! client, built by [`crate::backend::client::build`] exactly as the
//! replicator builds it: the node's own configured credentials replace the
//! client's. The file holds no credentials (they were masked when the
//! record was parked), so the masked `u`/`p`/token parameters are dropped
//! before sending; a node that needs the *client's* credentials (no
//! credentials configured for it in the gateway) then refuses the replay,
//! which is reported and leaves the entry in place.
//!
//! Only writes are replayed: a write carries its own timestamps and InfluxDB
//! overwrites an identical point, so sending it out of log order is safe. A
//! dead-lettered mutation (`DROP`, a delete) is not, and is reported as
//! skipped; the operator re-runs it by hand or discards it.
//!
//! Entries a node accepted (204) are removed from the file; the rest stay.
//! The file is rewritten under [`deadletter::lock_files`] after re-reading
//! it, so entries parked by the replicator meanwhile are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::backend::Node;
use crate::backend::client::{self, Chunks, HttpClient, Outgoing};
use crate::backend::deadletter::{self, DeadLetters};

/// One dead letter as the file holds it (see [`crate::backend::deadletter`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadEntry {
    pub time: String,
    pub node: String,
    pub seq: u64,
    pub status: u16,
    pub error: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

impl DeadEntry {
    fn is_write(&self) -> bool {
        self.method == "POST" && matches!(self.path.as_str(), "/write" | "/api/v2/write")
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    pub node: String,
    /// Entries the node accepted (removed from the file).
    pub replayed: usize,
    /// Entries the node refused again, with its answer (kept).
    pub failed: Vec<Failure>,
    /// Mutations, which are never replayed (kept).
    pub skipped: usize,
    /// Entries left in the file.
    pub remaining: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub seq: u64,
    /// The node's status; 0 when it could not be reached.
    pub status: u16,
    pub error: String,
}

/// Why a dead-letter file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn file(data_dir: &Path, node: &str) -> PathBuf {
    DeadLetters::new(data_dir, node).path().to_path_buf()
}

/// The file's lines (a missing file has none). Lines that do not parse are
/// kept as they are and never selected.
fn read_lines(path: &Path) -> Result<Vec<String>, DeadLetterError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(DeadLetterError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn parse(line: &str) -> Option<DeadEntry> {
    serde_json::from_str(line).ok()
}

/// Every entry of `node`'s file, oldest first.
pub fn list(data_dir: &Path, node: &str) -> Result<Vec<DeadEntry>, DeadLetterError> {
    let path = file(data_dir, node);
    let _guard = deadletter::lock_files();
    Ok(read_lines(&path)?.iter().filter_map(|l| parse(l)).collect())
}

/// How many entries `node`'s file holds (lines; cheap enough for status).
pub fn count(data_dir: &Path, node: &str) -> usize {
    list(data_dir, node).map_or(0, |v| v.len())
}

/// Whether `seqs` selects `e` (an empty selection selects everything).
fn selected(seqs: &[u64], e: &DeadEntry) -> bool {
    seqs.is_empty() || seqs.contains(&e.seq)
}

/// Removes the given lines (each once) from the file, re-read under the
/// lock; returns how many entries remain.
fn remove_lines(path: &Path, gone: &[String]) -> Result<usize, DeadLetterError> {
    let io = |source| DeadLetterError::Io {
        path: path.display().to_string(),
        source,
    };
    let _guard = deadletter::lock_files();
    let mut drop: HashMap<&str, usize> = HashMap::new();
    for l in gone {
        *drop.entry(l.as_str()).or_default() += 1;
    }
    let lines = read_lines(path)?;
    let kept: Vec<&String> = lines
        .iter()
        .filter(|l| match drop.get_mut(l.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    if kept.len() == lines.len() {
        return Ok(kept.len());
    }
    if kept.is_empty() {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => return Ok(0),
        }
    }
    let mut text = String::new();
    for l in &kept {
        text.push_str(l);
        text.push('\n');
    }
    super::state::write_atomic(path, text.as_bytes()).map_err(io)?;
    Ok(kept.len())
}

/// Discards the selected entries (all when `seqs` is empty); returns
/// (discarded, remaining).
pub fn discard(
    data_dir: &Path,
    node: &str,
    seqs: &[u64],
) -> Result<(usize, usize), DeadLetterError> {
    let path = file(data_dir, node);
    let lines = {
        let _guard = deadletter::lock_files();
        read_lines(&path)?
    };
    let gone: Vec<String> = lines
        .into_iter()
        .filter(|l| parse(l).is_some_and(|e| selected(seqs, &e)))
        .collect();
    let remaining = remove_lines(&path, &gone)?;
    Ok((gone.len(), remaining))
}

/// The query to resend: credentials (masked in the file) dropped.
fn replay_query(query: &str) -> String {
    let pairs = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "u" && !crate::redact::is_secret_param(k));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Resends one write to `node`; `Err` holds the node's refusal.
async fn resend(
    http: &HttpClient,
    node: &Node,
    e: &DeadEntry,
    timeout: Duration,
) -> Result<(), Failure> {
    let fail = |status: u16, error: String| Failure {
        seq: e.seq,
        status,
        error,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let query = replay_query(&e.query);
    let out = Outgoing {
        method: &e.method,
        path: &e.path,
        query: &query,
        auth: None,
        headers: &headers,
        body: Chunks::from(bytes::Bytes::from(e.body.clone())),
        gzipped: false,
    };
    let req = client::build(&node.config, &out).map_err(|err| fail(0, err.to_string()))?;
    let resp = client::send(http, req, timeout)
        .await
        .map_err(|err| fail(0, err.to_string()))?;
    let status = resp.status();
    if status.as_u16() == 204 {
        return Ok(());
    }
    let body = crate::backend::client::read_capped(resp.into_body(), 4096, timeout).await;
    Err(fail(
        status.as_u16(),
        String::from_utf8_lossy(&body).trim().to_string(),
    ))
}

/// Replays the selected write entries (all when `seqs` is empty) to `node`,
/// in file order, and removes the ones it accepted.
pub async fn replay(
    data_dir: &Path,
    http: &HttpClient,
    node: &Node,
    seqs: &[u64],
    timeout: Duration,
) -> Result<Replayed, DeadLetterError> {
    let path = file(data_dir, node.name());
    let lines = {
        let _guard = deadletter::lock_files();
        read_lines(&path)?
    };
    let mut out = Replayed {
        node: node.name().to_string(),
        ..Replayed::default()
    };
    let mut delivered = Vec::new();
    for line in lines {
        let Some(e) = parse(&line).filter(|e| selected(seqs, e)) else {
            continue;
        };
        if !e.is_write() {
            out.skipped += 1;
            continue;
        }
        match resend(http, node, &e, timeout).await {
            Ok(()) => delivered.push(line),
            Err(f) => out.failed.push(f),
        }
    }
    out.replayed = delivered.len();
    out.remaining = remove_lines(&path, &delivered)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn park(dir: &Path, node: &str, seq: u64, path: &str) {
        let rec = Record::write(
            path,
            "db=x&u=bob&p=pw".into(),
            None,
            bytes::Bytes::from_static(b"m f=1 1\n"),
        );
        DeadLetters::new(dir, node)
            .append(seq, 404, "database not found", &rec)
            .unwrap();
    }

    #[test]
    fn list_and_discard_by_seq_or_all() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [3, 4, 5] {
            park(dir.path(), "n", seq, "/write");
        }
        let all = list(dir.path(), "n").unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(discard(dir.path(), "n", &[4]).unwrap(), (1, 2));
        let left: Vec<u64> = list(dir.path(), "n")
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, [3, 5]);
        assert_eq!(discard(dir.path(), "n", &[]).unwrap(), (2, 0));
        assert_eq!(count(dir.path(), "n"), 0);
        assert_eq!(discard(dir.path(), "other", &[]).unwrap(), (0, 0));
    }

    #[test]
    fn replay_drops_masked_credentials() {
        assert_eq!(
            replay_query("db=x&u=bob&p=***&precision=s&token=***"),
            "db=x&precision=s"
        );
    }

    #[test]
    fn only_writes_are_replayable() {
        let dir = tempfile::tempdir().unwrap();
        park(dir.path(), "n", 1, "/write");
        park(dir.path(), "n", 2, "/query");
        let e = list(dir.path(), "n").unwrap();
        assert!(e[0].is_write());
        assert!(!e[1].is_write());
    }
}
