//! Open-time recovery: rebuild the in-memory state from the files.
//!
//! Every segment is scanned once (sequentially, bounded memory) to rebuild
//! its sparse index and find damage:
//! - the last (active) segment: bytes after the last valid frame are a torn
//!   write and are truncated away; damage followed by valid frames (pages
//!   persisted out of order by a crash without fsync) is skipped and counted;
//! - sealed segments are never modified: damaged regions are skipped and
//!   counted, loudly;
//! - a segment file whose header is wrong is renamed to `*.corrupt` (kept for
//!   forensics, never silently deleted); a sealed one shorter than a header
//!   likewise; the active one shorter than a header was torn while being
//!   created and gets a fresh header;
//! - seqs missing between segments (a deleted file) or inside one (damage)
//!   are reported as gaps; cursors that still needed them get `needs_repair`
//!   (see `cursor_recovery.rs` for how each cursor is resolved).

use std::path::{Path, PathBuf};

use super::cursor::{self, CursorRecord, Loaded};
use super::cursor_recovery::{self, LogSpan};
use super::error::LogError;
use super::frame::{SEGMENT_HEADER_LEN, check_segment_header, frame_size, segment_header};
use super::fs::{FileHandle, Fs, OpenMode};
use super::manifest::Nodes;
use super::scan::{FrameScanner, Scan};
use super::segment::{IndexPoint, SegMeta, fsync_dir, list_segments, segment_path};

/// What recovery found and did; see `Log::recovery`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in use after recovery.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// Oldest retained seq, and the seq the next append gets.
    pub first_seq: u64,
    pub next_seq: u64,
    /// Bytes cut from the end of the active segment (a torn last write).
    pub torn_bytes_truncated: u64,
    /// Damaged regions skipped inside segments (each holds >= 1 bad frame).
    pub bad_regions: u64,
    /// Records lost to those damaged regions (seqs missing inside segments).
    pub bad_frames_skipped: u64,
    /// Bytes in damaged regions (not counting the truncated torn tail).
    pub bad_bytes_skipped: u64,
    /// Seq ranges `[from, to)` that are absent: a missing segment file or
    /// damaged frames. Readers skip over them.
    pub gaps: Vec<(u64, u64)>,
    /// Segment files moved aside as `*.corrupt` (bad header).
    pub corrupt_segments: Vec<PathBuf>,
    /// Cursors whose file was unreadable; they restart at the oldest record
    /// and keep the `needs_repair` saved in the manifest.
    pub corrupt_cursors: Vec<String>,
    /// Cursors created at the log's end: nodes new to the log (no file, not
    /// in the manifest of known nodes).
    pub new_cursors: Vec<String>,
    /// New cursors flagged `needs_backfill`: the log had held records before
    /// they joined, so they lack older data.
    pub backfill_cursors: Vec<String>,
    /// Known nodes (in the manifest) whose cursor file was missing; they
    /// re-deliver from the oldest record and are flagged `needs_repair`.
    pub missing_cursors: Vec<String>,
    /// Cursor files deleted because their node is no longer configured.
    pub removed_cursors: Vec<String>,
    /// Cursors that lost records (gap, or behind the oldest record; for a
    /// corrupt cursor, any lost record); they are flagged `needs_repair`.
    pub damaged_cursors: Vec<String>,
}

/// Everything `Log::open` needs to start the writer and the shared state.
pub(crate) struct Recovered {
    pub segments: Vec<SegMeta>,
    pub cursors: Vec<(String, CursorRecord)>,
    /// The manifest of known nodes as written.
    pub nodes: Nodes,
    pub next_seq: u64,
    pub last_ts: u64,
    pub active_file: FileHandle,
    pub report: RecoveryReport,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |e| LogError::io(op, path, e)
}

/// Renames a bad segment to `<name>.corrupt` and records it.
fn move_aside(
    fs: &dyn Fs,
    path: &Path,
    reason: &str,
    report: &mut RecoveryReport,
) -> Result<(), LogError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    let aside = PathBuf::from(aside);
    tracing::error!(path = %path.display(), reason, "log segment unusable, moved aside");
    fs.rename(path, &aside).map_err(|e| LogError::BadSegment {
        path: path.to_path_buf(),
        reason: format!("{reason}; moving it aside failed: {e}"),
    })?;
    report.corrupt_segments.push(aside);
    Ok(())
}

/// Scans one segment into a `SegMeta`; truncates a torn tail when `active`.
fn scan_segment(
    first_seq: u64,
    path: &Path,
    file: &FileHandle,
    max_seq: u64,
    active: bool,
    report: &mut RecoveryReport,
    last_ts: &mut u64,
) -> Result<SegMeta, LogError> {
    let len = file.size().map_err(io_err("stat", path))?;
    let mut sc = FrameScanner::new(file.clone(), SEGMENT_HEADER_LEN, len, first_seq, max_seq);
    let mut meta = SegMeta::empty(first_seq, path.to_path_buf(), 0);
    let mut expected = first_seq;
    loop {
        match sc.next().map_err(io_err("read", path))? {
            Scan::Frame {
                offset,
                seq,
                appended_at_ms,
                payload,
            } => {
                if seq > expected {
                    // Frames lost to the damaged region just skipped.
                    report.bad_frames_skipped += seq - expected;
                    report.gaps.push((expected, seq));
                }
                meta.maybe_index(IndexPoint {
                    seq,
                    offset,
                    appended_at_ms,
                });
                meta.end_seq = seq + 1;
                meta.valid_end = offset + frame_size(payload.len());
                expected = seq + 1;
                *last_ts = (*last_ts).max(appended_at_ms);
                report.records += 1;
            }
            Scan::Corrupt { from, to } => {
                tracing::error!(
                    path = %path.display(), from, to,
                    "damaged log frames skipped (checksum or length mismatch)"
                );
                report.bad_regions += 1;
                report.bad_bytes_skipped += to - from;
            }
            Scan::Tail { from } if active => {
                tracing::warn!(
                    path = %path.display(), offset = from, bytes = len - from,
                    "truncating torn tail of the active log segment"
                );
                file.set_len(from).map_err(io_err("truncate", path))?;
                file.sync_all().map_err(io_err("fsync", path))?;
                report.torn_bytes_truncated += len - from;
            }
            Scan::Tail { from } => {
                tracing::error!(
                    path = %path.display(), offset = from, bytes = len - from,
                    "damaged tail of a sealed log segment skipped"
                );
                report.bad_regions += 1;
                report.bad_bytes_skipped += len - from;
            }
            Scan::End => break,
        }
    }
    Ok(meta)
}

/// Recovers the segment files in `dir`. Returns the usable segments (with
/// logical positions) and the open active file (created if none exists).
fn recover_segments(
    fs: &dyn Fs,
    dir: &Path,
    first_if_empty: u64,
    report: &mut RecoveryReport,
) -> Result<(Vec<SegMeta>, FileHandle, u64), LogError> {
    let listed = list_segments(fs, dir)?;
    let mut metas: Vec<SegMeta> = Vec::new();
    let mut active_file = None;
    let mut last_ts = 0u64;
    for (i, (first_seq, path)) in listed.iter().enumerate() {
        let active = i + 1 == listed.len();
        let max_seq = listed.get(i + 1).map_or(u64::MAX, |(s, _)| *s);
        let mode = if active {
            OpenMode::Write
        } else {
            OpenMode::Read
        };
        let file = fs.open(path, mode).map_err(io_err("open", path))?;
        let len = file.size().map_err(io_err("stat", path))?;
        let mut header = vec![0u8; SEGMENT_HEADER_LEN.min(len) as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(io_err("read", path))?;
        if len < SEGMENT_HEADER_LEN && active {
            // Torn while being created: it cannot hold frames yet.
            tracing::warn!(path = %path.display(), "rewriting torn header of the active log segment");
            file.set_len(0).map_err(io_err("truncate", path))?;
            file.write_all_at(&segment_header(), 0)
                .map_err(io_err("write", path))?;
            file.sync_all().map_err(io_err("fsync", path))?;
            report.torn_bytes_truncated += len;
        } else if let Err(reason) = check_segment_header(&header) {
            move_aside(fs, path, &reason, report)?;
            continue;
        }
        let meta = scan_segment(
            *first_seq,
            path,
            &file,
            max_seq,
            active,
            report,
            &mut last_ts,
        )?;
        if active {
            active_file = Some(file);
        }
        metas.push(meta);
    }
    let file = match active_file {
        Some(f) => f,
        None => {
            // No usable active segment: start one where the log ends.
            let first = metas.last().map_or(first_if_empty, |m| m.end_seq);
            let path = segment_path(dir, first);
            let f = create_segment(fs, &path)?;
            fsync_dir(fs, dir).map_err(io_err("fsync dir", dir))?;
            metas.push(SegMeta::empty(first, path, 0));
            f
        }
    };
    Ok((metas, file, last_ts))
}

/// Creates (or truncates) a segment file and writes its header durably.
pub(crate) fn create_segment(fs: &dyn Fs, path: &Path) -> Result<FileHandle, LogError> {
    let f = fs
        .open(path, OpenMode::Truncate)
        .map_err(io_err("create", path))?;
    f.write_all_at(&segment_header(), 0)
        .map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    Ok(f)
}

/// Computes gaps and logical positions over the recovered segments.
fn finish_segments(metas: &mut [SegMeta], report: &mut RecoveryReport) {
    let mut logical = 0u64;
    let mut prev_end: Option<u64> = None;
    for m in metas.iter_mut() {
        m.logical_start = logical;
        logical = m.logical_end();
        // A missing segment file, or a sealed segment whose tail was damaged.
        if let Some(prev) = prev_end
            && m.first_seq > prev
        {
            report.gaps.push((prev, m.first_seq));
        }
        prev_end = Some(m.end_seq);
    }
    report.gaps.sort_unstable();
    for (s, e) in &report.gaps {
        tracing::error!(
            from = s,
            to = e,
            "log records missing (segment file gone or damaged)"
        );
    }
}

/// Full recovery: segments, then cursors. Blocking; run off the runtime.
pub(crate) fn recover(fs: &dyn Fs, dir: &Path, names: &[String]) -> Result<Recovered, LogError> {
    let cdir = dir.join("cursors");
    fs.create_dir_all(&cdir)
        .map_err(io_err("create dir", &cdir))?;
    let mut report = RecoveryReport::default();

    // Read the cursor files first: if every segment vanished, the log restarts
    // at the highest cursor so seqs never go backwards for a node.
    let mut loaded = Vec::new();
    for n in names {
        loaded.push((
            n.clone(),
            cursor::load(fs, &cdir, n).map_err(io_err("read cursor", &cdir))?,
        ));
    }
    let max_cursor = loaded
        .iter()
        .filter_map(|(_, l)| match l {
            Loaded::Found(r) => Some(r.next),
            _ => None,
        })
        .max()
        .unwrap_or(1)
        .max(1);

    let (mut metas, active_file, last_ts) = recover_segments(fs, dir, max_cursor, &mut report)?;
    finish_segments(&mut metas, &mut report);
    let next_seq = metas.last().map_or(max_cursor, |m| m.end_seq);
    let oldest = metas
        .iter()
        .find_map(|m| m.index.first().map(|p| p.seq))
        .unwrap_or(next_seq);

    let span = LogSpan { oldest, next_seq };
    let (cursors, nodes) = cursor_recovery::resolve(fs, dir, loaded, span, &mut report)?;

    report.segments = metas.len();
    report.first_seq = oldest;
    report.next_seq = next_seq;
    Ok(Recovered {
        segments: metas,
        cursors,
        nodes,
        next_seq,
        last_ts,
        active_file,
        report,
    })
}
