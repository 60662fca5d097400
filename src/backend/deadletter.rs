//! The dead-letter file: where a node's permanent rejections go.
//!
//! A record the node will never accept (400 bad data, 401/403, 404 database
//! not found, 413 even after splitting) must not block the node's queue
//! forever, and must not vanish either. It is appended, one JSON object per
//! line, to `data_dir/deadletter/<node>.jsonl` with the node's status and
//! error text, so an operator can inspect it and replay it by hand (for
//! example with `curl --data-binary`) after fixing the cause. Credentials
//! never reach the file: the query string and a form body are masked by the
//! gateway's one redaction rule ([`crate::redact`]), including passwords
//! inside an InfluxQL `q`; the operator fills them back in to replay.
//! The admin API ([`crate::admin`]) lists, replays and discards entries; it
//! rewrites the file under [`lock_files`], which appends also take, so an
//! entry parked during a rewrite is never lost.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::record::Record;
use crate::redact;

#[derive(Serialize)]
struct Entry<'a> {
    time: String,
    node: &'a str,
    seq: u64,
    status: u16,
    error: &'a str,
    method: &'a str,
    path: &'a str,
    /// The target parameters with credentials masked ([`redact::params`]).
    query: String,
    /// The request body (line protocol or the mutation) as text; a form
    /// body is masked like the query ([`redact::body`]).
    body: String,
}

/// Held while a dead-letter file is appended to or rewritten.
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Excludes appends while the admin API rewrites a dead-letter file.
pub fn lock_files() -> std::sync::MutexGuard<'static, ()> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct DeadLetters {
    path: PathBuf,
    node: String,
}

impl DeadLetters {
    pub fn new(data_dir: &Path, node: &str) -> DeadLetters {
        // The same escaping as the node's cursor file: one rule, no two
        // node names can share a file.
        let stem = crate::log::node_file_stem(node);
        DeadLetters {
            path: data_dir.join("deadletter").join(format!("{stem}.jsonl")),
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
            query: redact::params(&rec.query),
            body: redact::body(rec.content_type.as_deref(), &rec.body),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _guard = lock_files();
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        // Bodies may hold anything a client wrote: owner-only, like the log.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
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
        // Escaped like the cursor file: no two node names share a file.
        assert!(dl.path().ends_with("deadletter/node%2F1.jsonl"));
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

    fn query_record(query: &str, content_type: Option<&str>, body: &'static [u8]) -> Record {
        Record {
            gzip: false,
            points: 0,
            kind: crate::record::Kind::Query,
            method: "POST".into(),
            path: "/query".into(),
            query: query.into(),
            auth: Some("Token tok-secret".into()),
            content_type: content_type.map(str::to_string),
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn influxql_passwords_are_masked_in_url_and_form_body() {
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetters::new(dir.path(), "n");
        let in_url = query_record(
            "db=x&u=a&p=pw-secret&q=CREATE+USER+bob+WITH+PASSWORD+%27q-secret%27",
            None,
            b"",
        );
        let in_form = query_record(
            "db=x",
            Some("application/x-www-form-urlencoded"),
            b"q=SET+PASSWORD+FOR+bob+%3D+%27f-secret%27&p=fp-secret&auth_token=t-secret",
        );
        let unquoted = query_record("q=CREATE+USER+bob+WITH+PASSWORD+u-secret", None, b"");
        for rec in [&in_url, &in_form, &unquoted] {
            dl.append(1, 400, "bad", rec).unwrap();
        }
        let text = std::fs::read_to_string(dl.path()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("PASSWORD"), "{text}");
    }
}
