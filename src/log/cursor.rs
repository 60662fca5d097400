//! Durable per-node cursors: `cursors/<escaped name>.cur`.
//!
//! A cursor is the next seq its node still needs. The in-memory value moves on
//! every `advance`; the file is rewritten by the flusher (tmp + fsync + rename
//! plus directory fsync), so a crash can only make a cursor *stale* (data is
//! re-delivered), never ahead of what the node really got. Segment cleanup
//! looks only at persisted values for the same reason.
//!
//! File contents: a small JSON object with a CRC32C over its fields, so a torn
//! or bit-rotted file is detected rather than trusted.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::{Fs, read_file, write_atomic};

/// The persisted part of a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CursorRecord {
    /// Next seq the node needs.
    pub next: u64,
    /// Records skipped (forced forward) because of backlog limits, in total.
    pub skipped: u64,
    /// Set when records were skipped or lost; the node needs an operator repair.
    pub needs_repair: bool,
    /// The node joined after the log held records: it lacks older data.
    /// Not in the cursor file (its format predates it): kept in the manifest.
    pub needs_backfill: bool,
}

/// In-memory cursor state.
#[derive(Debug, Clone)]
pub(crate) struct CursorState {
    /// The current (in-memory) record; `cur.next` is what `Log::cursor` returns.
    pub cur: CursorRecord,
    /// What is on disk; cleanup only trusts this.
    pub persisted: CursorRecord,
    /// Readers never go below this: raised when limits force the cursor forward.
    pub floor: u64,
}

impl CursorState {
    pub(crate) fn new(cur: CursorRecord, persisted: CursorRecord) -> Self {
        CursorState {
            cur,
            persisted,
            floor: 0,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorFile {
    version: u32,
    next: u64,
    skipped: u64,
    needs_repair: bool,
    crc32c: u32,
}

const CURSOR_VERSION: u32 = 1;

fn record_crc(r: &CursorRecord) -> u32 {
    let text = format!(
        "{CURSOR_VERSION}:{}:{}:{}",
        r.next, r.skipped, r.needs_repair
    );
    crc32c::crc32c(text.as_bytes())
}

/// Escapes a node name into a safe file stem: `[A-Za-z0-9_-]` stay, every
/// other byte becomes `%XX` (so `.`/`/` can never form a path component).
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn cursor_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.cur", encode_name(name)))
}

/// Outcome of reading one cursor file.
#[derive(Debug)]
pub(crate) enum Loaded {
    Missing,
    Corrupt(String),
    Found(CursorRecord),
}

pub(crate) fn load(fs: &dyn Fs, dir: &Path, name: &str) -> io::Result<Loaded> {
    let path = cursor_path(dir, name);
    let bytes = match read_file(fs, &path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    let f: CursorFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return Ok(Loaded::Corrupt(format!("unparsable: {e}"))),
    };
    if f.version != CURSOR_VERSION {
        return Ok(Loaded::Corrupt(format!("unknown version {}", f.version)));
    }
    let rec = CursorRecord {
        next: f.next,
        skipped: f.skipped,
        needs_repair: f.needs_repair,
        needs_backfill: false,
    };
    if record_crc(&rec) != f.crc32c {
        return Ok(Loaded::Corrupt("checksum mismatch".to_string()));
    }
    Ok(Loaded::Found(rec))
}

/// Writes one cursor file atomically (tmp + fsync + rename). The caller
/// fsyncs the directory once after a batch of these.
pub(crate) fn store(fs: &dyn Fs, dir: &Path, name: &str, rec: &CursorRecord) -> io::Result<()> {
    let f = CursorFile {
        version: CURSOR_VERSION,
        next: rec.next,
        skipped: rec.skipped,
        needs_repair: rec.needs_repair,
        crc32c: record_crc(rec),
    };
    let body = serde_json::to_vec(&f).map_err(io::Error::other)?;
    write_atomic(fs, &cursor_path(dir, name), &body)
}

/// Deletes cursor files (and leftover temp files) not belonging to `keep`.
/// Returns the file names removed.
pub(crate) fn remove_unlisted(fs: &dyn Fs, dir: &Path, keep: &[String]) -> io::Result<Vec<String>> {
    let wanted: HashSet<String> = keep
        .iter()
        .map(|n| format!("{}.cur", encode_name(n)))
        .collect();
    let mut removed = Vec::new();
    for name in fs.read_dir(dir)? {
        let is_ours = name.ends_with(".cur") || name.ends_with(".cur.tmp");
        if is_ours && !wanted.contains(&name) {
            fs.remove_file(&dir.join(&name))?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::fs::RealFs;
    use std::fs;

    #[test]
    fn names_are_escaped() {
        assert_eq!(encode_name("node-1_a"), "node-1_a");
        assert_eq!(encode_name("../x y"), "%2E%2E%2Fx%20y");
        assert_ne!(encode_name("a.b"), encode_name("a%2Eb"));
    }

    #[test]
    fn store_load_and_detect_corruption() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(&RealFs, d.path(), "n").unwrap(),
            Loaded::Missing
        ));
        let rec = CursorRecord {
            next: 77,
            skipped: 3,
            needs_repair: true,
            needs_backfill: false,
        };
        store(&RealFs, d.path(), "n", &rec).unwrap();
        assert!(matches!(load(&RealFs, d.path(), "n").unwrap(), Loaded::Found(r) if r == rec));
        let p = cursor_path(d.path(), "n");
        let text = fs::read_to_string(&p).unwrap().replace("77", "78");
        fs::write(&p, text).unwrap();
        assert!(matches!(
            load(&RealFs, d.path(), "n").unwrap(),
            Loaded::Corrupt(_)
        ));
        fs::write(&p, b"\0\0garbage").unwrap();
        assert!(matches!(
            load(&RealFs, d.path(), "n").unwrap(),
            Loaded::Corrupt(_)
        ));
        store(&RealFs, d.path(), "gone", &rec).unwrap();
        let removed = remove_unlisted(&RealFs, d.path(), &["n".to_string()]).unwrap();
        assert_eq!(removed, vec!["gone.cur".to_string()]);
        assert!(p.exists());
    }
}
