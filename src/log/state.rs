//! The shared in-memory state of an open log and the position arithmetic on it.
//!
//! One `std::sync::Mutex` guards it; every critical section is short and
//! never does I/O (the writer publishes, readers copy `Bytes` handles out,
//! housekeeping does arithmetic). Positions are priced in "logical bytes"
//! (see `SegMeta::logical_start`) using the sparse index, or exactly from the
//! tail cache when the position is cached.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use super::LogOptions;
use super::cache::TailCache;
use super::cursor::CursorState;
use super::manifest::Nodes;
use super::segment::SegMeta;

pub(crate) struct State {
    pub segments: BTreeMap<u64, SegMeta>,
    pub cache: TailCache,
    pub cursors: HashMap<String, CursorState>,
    /// The manifest of known nodes as last written (flush keeps it current).
    pub nodes: Nodes,
    /// Published end: every seq below it is durable per policy and readable.
    pub next_seq: u64,
    pub closed: bool,
}

/// What the writer thread, readers and tasks share.
pub(crate) struct Shared {
    pub opts: LogOptions,
    pub state: Mutex<State>,
    pub end_tx: watch::Sender<u64>,
}

impl Shared {
    /// Locks the state. A poisoned lock only means another thread panicked
    /// mid-update of plain counters; the data stays usable, so recover it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A located record position: logical byte offset and (approximate) age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    pub logical: u64,
    pub appended_at_ms: Option<u64>,
}

impl State {
    pub(crate) fn end_logical(&self) -> u64 {
        self.segments
            .values()
            .next_back()
            .map_or(0, |s| s.logical_end())
    }

    /// Oldest seq still stored (the first frame of the oldest segment).
    pub(crate) fn oldest_seq(&self) -> u64 {
        self.segments
            .values()
            .find_map(|s| s.index.first().map(|p| p.seq))
            .unwrap_or(self.next_seq)
    }

    /// Where the record `seq` (or the first one after it) starts. Exact when
    /// cached, otherwise rounded down to the sparse index point before it, so
    /// a backlog is over- rather than under-estimated by at most one spacing.
    pub(crate) fn locate(&self, seq: u64) -> Located {
        if seq >= self.next_seq {
            return Located {
                logical: self.end_logical(),
                appended_at_ms: None,
            };
        }
        if let Some(c) = self.cache.get(seq) {
            return Located {
                logical: c.logical,
                appended_at_ms: Some(c.entry.appended_at_ms),
            };
        }
        if let Some((_, seg)) = self.segments.range(..=seq).next_back()
            && seq < seg.end_seq
        {
            let p = seg
                .point_at_or_before(seq)
                .or_else(|| seg.index.first().copied());
            if let Some(p) = p {
                return Located {
                    logical: seg.logical_at(p.offset),
                    appended_at_ms: Some(p.appended_at_ms),
                };
            }
        }
        // In a gap or before the oldest record: the next stored record.
        for seg in self.segments.range(seq..).map(|(_, s)| s) {
            if let Some(p) = seg.index.first() {
                return Located {
                    logical: seg.logical_at(p.offset),
                    appended_at_ms: Some(p.appended_at_ms),
                };
            }
        }
        Located {
            logical: self.end_logical(),
            appended_at_ms: None,
        }
    }

    /// First seq whose record starts at or after logical position `logical`.
    pub(crate) fn first_seq_at_logical(&self, logical: u64) -> u64 {
        if let Some(front) = self.cache.front()
            && front.logical <= logical
        {
            return self
                .cache
                .first_at_logical(logical)
                .map_or(self.next_seq, |c| c.entry.seq);
        }
        for seg in self.segments.values() {
            if seg.logical_end() <= logical {
                continue;
            }
            if let Some(p) = seg
                .index
                .iter()
                .find(|p| seg.logical_at(p.offset) >= logical)
            {
                return p.seq;
            }
        }
        self.cache.front().map_or(self.next_seq, |c| c.entry.seq)
    }

    /// First seq appended at or after `ms` (timestamps never decrease).
    pub(crate) fn first_seq_since(&self, ms: u64) -> u64 {
        if let Some(front) = self.cache.front()
            && front.entry.appended_at_ms <= ms
        {
            return self
                .cache
                .first_appended_since(ms)
                .map_or(self.next_seq, |c| c.entry.seq);
        }
        for seg in self.segments.values() {
            if let Some(p) = seg.index.iter().find(|p| p.appended_at_ms >= ms) {
                return p.seq;
            }
        }
        self.cache.front().map_or(self.next_seq, |c| c.entry.seq)
    }
}
