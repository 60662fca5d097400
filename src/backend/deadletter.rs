//! The dead-letter file: where a node's permanent rejections go.
//!
//! A record the node will never accept (400 bad data, 401/403, 404 database
//! not found, 413 even after splitting) must not block the node's queue
//! forever, and must not vanish either. It is appended, one JSON object per
//! line, to `data_dir/deadletter/<node>.jsonl` with the node's status and
//! error text, so an operator can inspect it and replay it by hand (for
//! example with `curl --data-binary`) after fixing the cause.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::Record;

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    node: &'a str,
    seq: u64,
    status: u16,
    error: &'a str,
    method: &'a str,
    path: &'a str,
    /// The target parameters with credentials masked.
    query: String,
    /// The request body (line protocol or the mutation) as text.
    body: String,
}

/// Query parameters that carry a secret and are never written out.
pub fn is_secret_param(key: &str) -> bool {
    matches!(key, "p" | "token" | "password")
}

/// Masks credential parameters (see [`is_secret_param`]) in a query string.
pub fn mask_query(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let v = if is_secret_param(&k) { "***".into() } else { v };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub struct DeadLetters {
    path: PathBuf,
    node: String,
}

impl DeadLetters {
    pub fn new(data_dir: &Path, node: &str) -> DeadLetters {
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        DeadLetters {
            path: data_dir.join("deadletter").join(format!("{safe}.jsonl")),
            node: node.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and fsyncs one entry. The cursor moves past the record only
    /// after this succeeds, so a dead-lettered record is never lost either.
    pub fn append(&self, seq: u64, status: u16, error: &str, rec: &Record) -> std::io::Result<()> {
        let entry = Entry {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            node: &self.node,
            seq,
            status,
            error,
            method: &rec.method,
            path: &rec.path,
            query: mask_query(&rec.query),
            body: String::from_utf8_lossy(&rec.body).into_owned(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn appends_json_lines_with_masked_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetters::new(dir.path(), "node/1");
        let rec = Record::write(
            "/write",
            "db=x&u=bob&p=secret".into(),
            None,
            Bytes::from_static(b"m f=1 1\n"),
        );
        dl.append(7, 404, "database not found: \"x\"", &rec)
            .unwrap();
        dl.append(8, 400, "bad", &rec).unwrap();
        let text = std::fs::read_to_string(dl.path()).unwrap();
        assert!(dl.path().ends_with("deadletter/node_1.jsonl"));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["seq"], 7);
        assert_eq!(lines[0]["status"], 404);
        assert_eq!(lines[0]["query"], "db=x&u=bob&p=***");
        assert!(!text.contains("secret"));
        assert_eq!(lines[1]["body"], "m f=1 1\n");
    }
}
