//! `LogReader`: one node's sequential view of the log.
//!
//! A reader serves from the shared tail cache when its position is cached
//! and otherwise streams from the segment files with its own file handle and
//! a bounded window (see `scan.rs`), continuing where the previous disk read
//! stopped so a catch-up is one sequential pass. Records read from disk are
//! slices of the scanner's read window (no per-record copy), so a reader
//! pins at most its current window plus the windows its in-flight batch and
//! a carried-over frame point into. Blocking file reads run on tokio's
//! blocking pool: with one allocation per ~1 MiB window instead of one per
//! record, allocating the windows on the async side instead did not lower
//! the catch-up memory measurably (BENCHMARKS.md, 4c), so the simplest form
//! stayed. Before every read the reader honours its cursor's floor, so a
//! cursor forced forward by limits makes the reader jump too.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::error::LogError;
use super::frame::SEGMENT_HEADER_LEN;
use super::fs::{Fs, OpenMode};
use super::scan::{FrameScanner, Scan};
use super::state::Shared;
use super::{Entry, Payload};

/// An open scan of one segment, resumable at `next_seq`.
struct DiskPos {
    seg_first: u64,
    /// The reader position this scan continues from.
    next_seq: u64,
    scanner: FrameScanner,
    /// A frame already read that did not fit the previous batch's byte limit.
    carry: Option<Entry>,
}

/// What to do for a position that is not cached.
enum Plan {
    /// Nothing is stored at the position: move to `to`.
    Jump(u64),
    /// Read from the segment starting at `first_seq`.
    Read {
        seg_first: u64,
        path: PathBuf,
        start: u64,
        start_seq: u64,
        limit: u64,
        end_seq: u64,
    },
}

pub struct LogReader {
    shared: Arc<Shared>,
    cursor: String,
    pos: u64,
    end_rx: watch::Receiver<u64>,
    disk: Option<DiskPos>,
}

impl LogReader {
    pub(crate) fn new(
        shared: Arc<Shared>,
        cursor: String,
        pos: u64,
        end_rx: watch::Receiver<u64>,
    ) -> Self {
        LogReader {
            shared,
            cursor,
            pos,
            end_rx,
            disk: None,
        }
    }

    /// The next seq this reader will return.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves the reader (e.g. back to the cursor after a failed send).
    pub fn seek(&mut self, seq: u64) {
        self.pos = seq;
    }

    /// Waits until a record at/after the position exists, then returns up to
    /// `max_bytes` of payload (at least one record) / `max_records`
    /// consecutive entries. Gaps are skipped; `Closed` once the log is closed
    /// and everything published was read.
    pub async fn next(
        &mut self,
        max_bytes: usize,
        max_records: usize,
    ) -> Result<Vec<Entry>, LogError> {
        let max_records = max_records.max(1);
        loop {
            // Mark the current end as seen *before* checking the state, so an
            // append published after the check still wakes `changed()`.
            self.end_rx.borrow_and_update();
            let plan = {
                let st = self.shared.lock();
                if let Some(c) = st.cursors.get(&self.cursor) {
                    self.pos = self.pos.max(c.floor);
                }
                if self.pos >= st.next_seq {
                    if st.closed {
                        return Err(LogError::Closed);
                    }
                    None
                } else if st.cache.covers(self.pos) {
                    let out = st.cache.collect(self.pos, max_bytes, max_records);
                    if let Some(last) = out.last() {
                        self.pos = last.seq + 1;
                        return Ok(out);
                    }
                    None
                } else {
                    Some(plan_disk(&st, self.pos))
                }
            };
            match plan {
                None => {
                    if self.end_rx.changed().await.is_err() {
                        return Err(LogError::Closed);
                    }
                }
                Some(Plan::Jump(to)) => {
                    self.pos = self.pos.max(to);
                    self.disk = None;
                }
                Some(Plan::Read {
                    seg_first,
                    path,
                    start,
                    start_seq,
                    limit,
                    end_seq,
                }) => {
                    let reuse = self
                        .disk
                        .take()
                        .filter(|d| d.seg_first == seg_first && d.next_seq == self.pos);
                    let pos = self.pos;
                    let p = path.clone();
                    let fs = self.shared.opts.fs.clone();
                    let job = tokio::task::spawn_blocking(move || {
                        read_segment(
                            &*fs,
                            reuse,
                            seg_first,
                            &p,
                            start,
                            start_seq,
                            limit,
                            end_seq,
                            pos,
                            max_bytes,
                            max_records,
                        )
                    });
                    match job.await? {
                        Ok((disk, out)) => {
                            if let Some(last) = out.last() {
                                self.pos = last.seq + 1;
                                self.disk = Some(DiskPos {
                                    next_seq: self.pos,
                                    ..disk
                                });
                                return Ok(out);
                            }
                            // Nothing at/after pos in this segment.
                            self.pos = self.pos.max(end_seq);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            // Deleted by cleanup (or by hand): skip past it.
                            tracing::warn!(path = %path.display(), "log segment vanished while reading; skipping it");
                            self.pos = self.pos.max(end_seq);
                        }
                        Err(e) => {
                            return Err(LogError::io("read segment", &self.shared.opts.dir, e));
                        }
                    }
                }
            }
        }
    }
}

/// Finds where `pos` lives on disk.
fn plan_disk(st: &super::state::State, pos: u64) -> Plan {
    if let Some((_, seg)) = st.segments.range(..=pos).next_back()
        && pos < seg.end_seq
    {
        let (start, start_seq) = seg
            .point_at_or_before(pos)
            .map_or((SEGMENT_HEADER_LEN, seg.first_seq), |p| (p.offset, p.seq));
        return Plan::Read {
            seg_first: seg.first_seq,
            path: seg.path.clone(),
            start,
            start_seq,
            limit: seg.valid_end,
            end_seq: seg.end_seq,
        };
    }
    // In a gap or before the oldest segment: the next segment's first seq.
    match st.segments.range(pos + 1..).next() {
        Some((first, _)) => Plan::Jump(*first),
        None => Plan::Jump(st.next_seq),
    }
}

/// Reads entries with seq >= `pos` from one segment (blocking).
#[allow(clippy::too_many_arguments)]
fn read_segment(
    fs: &dyn Fs,
    reuse: Option<DiskPos>,
    seg_first: u64,
    path: &std::path::Path,
    start: u64,
    start_seq: u64,
    limit: u64,
    end_seq: u64,
    pos: u64,
    max_bytes: usize,
    max_records: usize,
) -> io::Result<(DiskPos, Vec<Entry>)> {
    let mut disk = match reuse {
        Some(mut d) => {
            d.scanner.extend(limit, end_seq);
            d
        }
        None => DiskPos {
            seg_first,
            next_seq: pos,
            scanner: FrameScanner::new(
                fs.open(path, OpenMode::Read)?,
                start,
                limit,
                start_seq,
                end_seq,
            ),
            carry: None,
        },
    };
    let mut out = Vec::new();
    let mut bytes = 0usize;
    if let Some(e) = disk.carry.take().filter(|e| e.seq >= pos) {
        bytes += e.payload.len();
        out.push(e);
    }
    while out.len() < max_records {
        match disk.scanner.next()? {
            Scan::Frame {
                seq,
                appended_at_ms,
                payload,
                ..
            } => {
                if seq < pos {
                    continue;
                }
                let e = Entry {
                    seq,
                    appended_at_ms,
                    payload: Payload::from(payload),
                };
                if !out.is_empty() && bytes + e.payload.len() > max_bytes {
                    disk.carry = Some(e);
                    break;
                }
                bytes += e.payload.len();
                out.push(e);
            }
            // Damage was reported at recovery; just step over it.
            Scan::Corrupt { .. } => {}
            Scan::Tail { .. } | Scan::End => break,
        }
    }
    Ok((disk, out))
}
