//! Segment files: naming, listing, and the in-memory description of each.
//!
//! A segment is named by the seq of its first frame, zero-padded to 20 digits
//! so lexical order is numeric order and names never wrap. The in-memory
//! [`SegMeta`] carries a sparse index (one point per ~64 KiB) so readers can
//! start near any seq and housekeeping can price a backlog in bytes and age
//! without touching the disk.

use std::io;
use std::path::{Path, PathBuf};

use super::error::LogError;
use super::frame::SEGMENT_HEADER_LEN;
use super::fs::Fs;

/// Distance in bytes between two sparse index points inside a segment.
pub(crate) const INDEX_SPACING: u64 = 64 * 1024;
/// ...or in append time, so `max_age` can be enforced to within a second
/// even when a segment fills slowly.
pub(crate) const INDEX_SPACING_MS: u64 = 1000;

/// File name of the segment whose first seq is `first_seq`.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// Parses `<20 digits>.seg`; anything else is not a segment.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// All segment files in `dir`, sorted by first seq.
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    let names = fs
        .read_dir(dir)
        .map_err(|e| LogError::io("list segments", dir, e))?;
    for name in names {
        if let Some(seq) = parse_segment_name(&name) {
            out.push((seq, dir.join(name)));
        }
    }
    out.sort_by_key(|(s, _)| *s);
    Ok(out)
}

/// fsyncs a directory so that creates, renames and deletes in it are durable.
pub(crate) fn fsync_dir(fs: &dyn Fs, dir: &Path) -> io::Result<()> {
    fs.sync_dir(dir)
}

/// One sparse index point: the frame at `offset` has `seq` and `appended_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexPoint {
    pub seq: u64,
    pub offset: u64,
    pub appended_at_ms: u64,
}

/// What the log knows about one segment file.
#[derive(Debug, Clone)]
pub(crate) struct SegMeta {
    pub first_seq: u64,
    pub path: PathBuf,
    /// One past the last valid seq in this segment (== first_seq when empty).
    pub end_seq: u64,
    /// Byte offset after the last valid (published) frame; readers stop here.
    pub valid_end: u64,
    /// Log-wide byte position of this segment's first frame: the sum of the
    /// frame bytes of all older retained segments at open, plus appends since.
    /// Differences of logical positions give backlog sizes.
    pub logical_start: u64,
    /// Sparse index, ascending in seq and offset; the first frame is always in it.
    pub index: Vec<IndexPoint>,
}

impl SegMeta {
    pub(crate) fn empty(first_seq: u64, path: PathBuf, logical_start: u64) -> Self {
        SegMeta {
            first_seq,
            path,
            end_seq: first_seq,
            valid_end: SEGMENT_HEADER_LEN,
            logical_start,
            index: Vec::new(),
        }
    }

    /// Logical position of the byte at file offset `offset`.
    pub(crate) fn logical_at(&self, offset: u64) -> u64 {
        self.logical_start + offset.saturating_sub(SEGMENT_HEADER_LEN)
    }

    /// Logical position just past the last valid frame.
    pub(crate) fn logical_end(&self) -> u64 {
        self.logical_at(self.valid_end)
    }

    /// Records a frame in the sparse index if it is the first one or far
    /// enough (in bytes or time) from the previous point.
    pub(crate) fn maybe_index(&mut self, p: IndexPoint) {
        match self.index.last() {
            Some(last)
                if p.offset < last.offset + INDEX_SPACING
                    && p.appended_at_ms < last.appended_at_ms + INDEX_SPACING_MS => {}
            _ => self.index.push(p),
        }
    }

    /// The index point at or before `seq` (where a reader should start).
    pub(crate) fn point_at_or_before(&self, seq: u64) -> Option<IndexPoint> {
        let i = self.index.partition_point(|p| p.seq <= seq);
        if i == 0 {
            None
        } else {
            Some(self.index[i - 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let p = segment_path(Path::new("x"), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000000042.seg");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(
            parse_segment_name(&format!("{:020}.seg", u64::MAX)),
            Some(u64::MAX)
        );
    }

    #[test]
    fn sparse_index_lookup() {
        let mut m = SegMeta::empty(10, PathBuf::from("s"), 0);
        for (i, off) in [16u64, 100, 70_000, 70_100, 140_000].iter().enumerate() {
            m.maybe_index(IndexPoint {
                seq: 10 + i as u64,
                offset: *off,
                appended_at_ms: 0,
            });
        }
        let seqs: Vec<u64> = m.index.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![10, 12, 14]);
        assert_eq!(m.point_at_or_before(9), None);
        assert_eq!(m.point_at_or_before(13).unwrap().seq, 12);
        assert_eq!(m.point_at_or_before(99).unwrap().seq, 14);
    }
}
