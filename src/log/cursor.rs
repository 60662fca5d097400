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
//!
//! `skipped_from_ms`/`skipped_until_ms` (the append-time range of records
//! the limits made this node skip, for `repair.auto`) were added later: they
//! are optional, so a file without them (older versions, or nothing skipped)
//! loads as "range unknown", and the CRC text only grows by them when they
//! are present, so such a file's checksum is unchanged. (An older binary
//! reading a file *with* a range sees a checksum mismatch and treats the
//! cursor as corrupt: it re-delivers from the oldest record and keeps
//! `needs_repair` from the manifest, which is safe.)

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
    /// Append times (ms since the epoch) that the skipped records span,
    /// `[from, until]`, when known: every skip since the flag was last
    /// cleared widens it. `None` with `needs_repair` means "unknown" (a lost
    /// cursor file, damaged segments, or a file written before this field).
    pub skipped_range: Option<(u64, u64)>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skipped_from_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skipped_until_ms: Option<u64>,
    crc32c: u32,
}

const CURSOR_VERSION: u32 = 1;

fn record_crc(r: &CursorRecord) -> u32 {
    let mut text = format!(
        "{CURSOR_VERSION}:{}:{}:{}",
        r.next, r.skipped, r.needs_repair
    );
    if let Some((from, until)) = r.skipped_range {
        text.push_str(&format!(":{from}:{until}"));
    }
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
        skipped_range: match (f.skipped_from_ms, f.skipped_until_ms) {
            (Some(a), Some(b)) => Some((a, b)),
            (None, None) => None,
            _ => return Ok(Loaded::Corrupt("half a skipped range".to_string())),
        },
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
        skipped_from_ms: rec.skipped_range.map(|r| r.0),
        skipped_until_ms: rec.skipped_range.map(|r| r.1),
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
            skipped_range: None,
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

    #[test]
    fn skipped_range_persists_and_old_files_still_load() {
        let d = tempfile::tempdir().unwrap();
        // A file as the previous version wrote it (no range fields).
        let old = CursorRecord {
            next: 12,
            skipped: 4,
            needs_repair: true,
            ..CursorRecord::default()
        };
        let text = format!(
            r#"{{"version":1,"next":12,"skipped":4,"needs_repair":true,"crc32c":{}}}"#,
            crc32c::crc32c(b"1:12:4:true")
        );
        fs::write(cursor_path(d.path(), "old"), text).unwrap();
        assert!(
            matches!(load(&RealFs, d.path(), "old").unwrap(), Loaded::Found(r) if r == old),
            "a cursor file without the range must load, range unknown"
        );
        // Without a range the file is byte for byte the old format.
        store(&RealFs, d.path(), "same", &old).unwrap();
        let stored = fs::read_to_string(cursor_path(d.path(), "same")).unwrap();
        assert!(!stored.contains("skipped_from_ms"), "{stored}");

        let rec = CursorRecord {
            skipped_range: Some((1_700_000_000_000, 1_700_000_060_000)),
            ..old
        };
        store(&RealFs, d.path(), "new", &rec).unwrap();
        assert!(matches!(load(&RealFs, d.path(), "new").unwrap(), Loaded::Found(r) if r == rec));
        // The range is under the checksum.
        let p = cursor_path(d.path(), "new");
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, text.replace("1700000060000", "1700000070000")).unwrap();
        assert!(matches!(
            load(&RealFs, d.path(), "new").unwrap(),
            Loaded::Corrupt(_)
        ));
    }
}
