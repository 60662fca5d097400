//! The in-memory tail: the most recent published records, shared by readers.
//!
//! A healthy node's replicator reads only from here, so steady-state
//! replication never touches the disk. The cache always holds a contiguous run
//! of seqs ending at the log's end: every seq in `[start_seq, end)` is cached.
//! It is bounded by `cache_bytes` (payload plus per-entry overhead); older
//! entries are evicted first and readers that fall behind stream from disk.

use std::collections::VecDeque;

use super::Entry;

/// Accounting overhead per cached entry, so many tiny records still count.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct CachedEntry {
    pub entry: Entry,
    /// Log-wide byte position of the frame (see `SegMeta::logical_start`).
    pub logical: u64,
}

#[derive(Debug)]
pub(crate) struct TailCache {
    cap: usize,
    bytes: usize,
    entries: VecDeque<CachedEntry>,
    /// First seq covered; equals the log end when the cache is empty.
    start_seq: u64,
}

impl TailCache {
    pub(crate) fn new(cap: usize, end_seq: u64) -> Self {
        TailCache {
            cap,
            bytes: 0,
            entries: VecDeque::new(),
            start_seq: end_seq,
        }
    }

    fn cost(e: &CachedEntry) -> usize {
        e.entry.payload.len() + ENTRY_OVERHEAD
    }

    /// Adds the next record (its seq must follow the previous one), then evicts
    /// from the front until within the byte cap.
    pub(crate) fn push(&mut self, e: CachedEntry) {
        if self.entries.is_empty() {
            self.start_seq = e.entry.seq;
        }
        let next = e.entry.seq + 1;
        self.bytes += Self::cost(&e);
        self.entries.push_back(e);
        while self.bytes > self.cap {
            match self.entries.pop_front() {
                Some(old) => self.bytes -= Self::cost(&old),
                None => break,
            }
        }
        self.start_seq = self.entries.front().map_or(next, |f| f.entry.seq);
    }

    /// True if every record at/after `seq` (up to the end) is in the cache.
    pub(crate) fn covers(&self, seq: u64) -> bool {
        seq >= self.start_seq
    }

    /// The cached entry with this seq.
    pub(crate) fn get(&self, seq: u64) -> Option<&CachedEntry> {
        let i = seq.checked_sub(self.start_seq)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// Consecutive entries from `seq`: at least one, then up to the limits.
    pub(crate) fn collect(&self, seq: u64, max_bytes: usize, max_records: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let Some(skip) = seq.checked_sub(self.start_seq) else {
            return out;
        };
        let Ok(skip) = usize::try_from(skip) else {
            return out;
        };
        for c in self.entries.iter().skip(skip) {
            let len = c.entry.payload.len();
            if !out.is_empty() && (out.len() >= max_records || bytes + len > max_bytes) {
                break;
            }
            bytes += len;
            out.push(c.entry.clone());
        }
        out
    }

    /// First cached entry whose logical position is >= `logical`.
    pub(crate) fn first_at_logical(&self, logical: u64) -> Option<&CachedEntry> {
        let i = self.entries.partition_point(|c| c.logical < logical);
        self.entries.get(i)
    }

    /// First cached entry appended at or after `ms`.
    pub(crate) fn first_appended_since(&self, ms: u64) -> Option<&CachedEntry> {
        let i = self
            .entries
            .partition_point(|c| c.entry.appended_at_ms < ms);
        self.entries.get(i)
    }

    pub(crate) fn front(&self) -> Option<&CachedEntry> {
        self.entries.front()
    }

    /// Bytes cached from `seq` to the end (0 at the end); `None` when `seq`
    /// is older than the cache (its reader is on the disk).
    pub(crate) fn bytes_from(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.start_seq)?).ok()?;
        let Some(from) = self.entries.get(i) else {
            return Some(0);
        };
        let last = self.entries.back()?;
        let span = last.logical.saturating_sub(from.logical) as usize;
        Some(span + last.entry.payload.len())
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ce(seq: u64, len: usize) -> CachedEntry {
        CachedEntry {
            entry: Entry {
                seq,
                appended_at_ms: seq * 10,
                payload: Bytes::from(vec![0u8; len]).into(),
            },
            logical: seq * 100,
        }
    }

    #[test]
    fn evicts_oldest_and_stays_contiguous() {
        let mut c = TailCache::new(3 * (10 + ENTRY_OVERHEAD), 5);
        assert!(c.covers(5));
        assert!(c.collect(5, 100, 10).is_empty());
        for s in 5..10 {
            c.push(ce(s, 10));
        }
        assert!(!c.covers(6));
        assert!(c.covers(7));
        let got: Vec<u64> = c.collect(7, 1000, 2).iter().map(|e| e.seq).collect();
        assert_eq!(got, vec![7, 8]);
        // max_bytes still returns at least one record.
        assert_eq!(c.collect(8, 1, 10).len(), 1);
        assert_eq!(c.get(9).unwrap().entry.seq, 9);
        assert_eq!(c.first_at_logical(750).unwrap().entry.seq, 8);
        assert_eq!(c.first_appended_since(90).unwrap().entry.seq, 9);
        // An entry bigger than the cap evicts everything, itself included.
        c.push(ce(10, 10_000));
        assert!(c.front().is_none());
        assert!(c.covers(11) && !c.covers(10));
    }

    #[test]
    fn bytes_from_measures_a_reader_behind_the_end() {
        let mut c = TailCache::new(3 * (10 + ENTRY_OVERHEAD), 5);
        assert_eq!(c.bytes_from(5), Some(0), "at the end of an empty cache");
        for s in 5..10 {
            c.push(ce(s, 10));
        }
        // Cached: 7, 8, 9 at logical 700, 800, 900 (10 bytes each).
        assert_eq!(c.bytes_from(10), Some(0), "caught up");
        assert_eq!(c.bytes_from(9), Some(10));
        assert_eq!(c.bytes_from(7), Some(210));
        assert_eq!(c.bytes_from(6), None, "evicted: that reader is on the disk");
    }
}
