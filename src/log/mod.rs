//! The durable log: one segmented append-only log shared by every backend
//! node, with a durable cursor per node.
//!
//! A 2xx to a client means the write is in this log per the fsync policy;
//! replication to nodes is a separate, restartable step that only moves
//! cursors. Payloads are opaque bytes here (the `record` module encodes
//! them), given as a [`Payload`] in up to two parts so a write body reaches
//! the disk and the tail cache without being copied.
//!
//! # Files
//! ```text
//! <dir>/<first seq, 20 digits>.seg   segments, oldest first; the last is active
//! <dir>/cursors/<escaped name>.cur   one JSON cursor file per configured node
//! <dir>/nodes.json                   manifest of known nodes and their flags
//! <dir>/LOCK                         exclusive advisory lock of the open log
//! ```
//! Every file the log creates is mode 0600 and every directory 0700: the
//! log holds client credentials for replay. (Files left by older versions
//! keep their mode.)
//!
//! All file I/O goes through the [`fs::Fs`] seam (`LogOptions::fs`,
//! [`RealFs`] by default); tests inject a full disk, a failing fsync or a
//! write torn by a crash with [`FaultyFs`].
//!
//! `open` takes an exclusive non-blocking lock (`flock`) on `LOCK` and holds
//! it until `close` (or until the last handle and the writer thread are
//! gone); a second open of the same directory, by another process or in the
//! same one, fails with [`LogError::Locked`] after a 1 s grace (which covers
//! a log dropped just before, whose writer thread is still exiting).
//! Seqs start at 1 in a fresh log and are never reused once published, so a
//! segment name never wraps or collides. (If every segment file vanished but
//! cursor files remain, the log restarts at the highest cursor instead.)
//!
//! # Segment format (all integers little-endian)
//! ```text
//! header (16 B): magic "INMATELG" | version u32 (=1) | 4 zero bytes
//! frame:         len u32 | crc32c u32 | seq u64 | appended_at_ms u64 | payload[len]
//! ```
//! The CRC32C covers seq, appended_at_ms and payload. `len` is not covered on
//! its own but a wrong `len` makes the CRC range wrong, so it is caught too.
//! Payloads are limited to [`frame::MAX_PAYLOAD_LEN`]. Within a segment seqs
//! strictly increase; `appended_at_ms` never decreases within a process run.
//! The writer rotates to a new segment before the request that would start
//! beyond `segment_bytes`; one append (or `append_batch`) never spans two
//! segments, so a segment may exceed `segment_bytes` by one request.
//!
//! # Write path ([`writer`], [`syncer`], [`direct`])
//! One OS thread owns the active file. Appends queue on a bounded channel
//! (so a flood of appends back-pressures callers, while a slow *cursor*
//! never does); the thread drains all waiting appends into one group and
//! writes it with one `pwrite`: group commit. With policy `Always` a second
//! thread fsyncs: it takes every written group that waits, one `fdatasync`
//! for all, then publishes and answers them, while the writer already
//! writes the next group. `Interval(d)` fsyncs from a timer, `Never` leaves
//! it to the OS (and `close`); both publish right after the write. With
//! `direct_io` (the default) segments are written with `O_DIRECT` in 4 KiB
//! blocks: the last partial block is rewritten with the next group and zero
//! padding follows the good end until the segment is sealed or closed (see
//! [`direct`]; after a crash recovery cuts the padding as a torn tail).
//! A failed write or fsync fails that group, and a failed fsync every group
//! written after it (every waiter gets the error; ENOSPC has `io_kind()`
//! `StorageFull`), and the file is truncated back to the last good offset
//! before the waiters hear of it; nothing of it is published and the next
//! group reuses its seqs. If the truncate fails too,
//! appends fail until it succeeds; a crash then leaves a torn tail that
//! recovery cuts (only complete frames of a failed group could resurface).
//!
//! Records are *published* (made visible to readers, `next_seq`, the end
//! watch, the tail cache) only after their durability point. Readers could
//! safely see earlier data since the log is the source of truth, but
//! publishing after the ack point means a node can never hold a record the
//! client was not told succeeded and that a crash then erased, which would
//! make nodes diverge from what a restarted gateway re-delivers.
//!
//! # Read path ([`reader`], [`cache`])
//! Readers are positioned by seq. Recent records come from the in-memory
//! tail cache (bounded by `cache_bytes`); older ones are streamed from the
//! segment files through a reader-private handle and a 1 MiB window,
//! starting from the sparse index (one point per 64 KiB), so memory stays
//! bounded however far behind a node is. Gaps (a missing segment, damaged
//! frames) are skipped.
//!
//! # Recovery ([`recovery`], [`scan`])
//! See `recovery.rs`: the torn tail of the active segment is truncated;
//! damaged frames in sealed segments are skipped and counted (resync: trust
//! `len` once, else scan byte by byte for the next frame whose seq is in
//! range and whose CRC matches); everything lands in [`RecoveryReport`].
//!
//! # Known nodes and damaged cursors ([`manifest`], [`cursor_recovery`])
//! `nodes.json` lists every cursor name the log was ever opened with (names
//! stay after a node leaves the config) plus a durable copy of each node's
//! flags. At open, per configured node (the table is in
//! `cursor_recovery.rs`): a valid cursor file resumes; a *missing* file of a
//! known node re-delivers from the oldest record and sets `needs_repair`
//! (never a silent skip of the backlog); a node *not in the manifest* starts
//! at the end and gets `needs_backfill` if the log ever held a record; a
//! *corrupt* file re-delivers from the oldest record, keeps the manifest's
//! `needs_repair`, and sets it when recovery lost any record. Records lost
//! to damage (gaps) flag every cursor that had not passed them. Without a
//! manifest (first start, or an upgrade) every node without a cursor file
//! counts as new: a fresh log flags nobody, an upgraded one only the nodes
//! that have no cursor. A corrupt manifest counts as missing. Each event is
//! logged (WARN/ERROR) with the node's name and listed in [`RecoveryReport`].
//! The flusher writes the manifest before the cursor files whenever a flag
//! changed, and open ORs both copies, so a crash can resurrect a cleared
//! flag but never lose a set one. `clear_needs_repair` clears both flags.
//!
//! # Cursors, limits, cleanup ([`cursor`], [`housekeeping`])
//! `advance` moves a cursor in memory; a flusher persists changed cursors
//! every `cursor_flush_interval` (tmp + fsync + rename + dir fsync). A sealed
//! segment is deleted only once every cursor's *persisted* value is past its
//! last seq. Once a second, housekeeping prices each cursor's backlog (bytes
//! to the end, age of its oldest record, from the sparse index: within one
//! 64 KiB index step, exact when cached) and forces a cursor over
//! `max_backlog_bytes` / `max_age` forward, counting the skipped records and
//! setting `needs_repair`. Readers on that cursor jump to the new position.
//! The append-time range the skipped records span is kept with the cursor
//! (`CursorStats::skipped_range`, persisted in its file) so the automatic
//! repair (`repair.auto`) knows which time range to repair.

mod cache;
mod cursor;
mod cursor_recovery;
mod direct;
mod error;
pub mod frame;
pub mod fs;
mod housekeeping;
mod manifest;
mod payload;
mod reader;
mod recovery;
mod scan;
mod segment;
mod state;
mod syncer;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_damage;
#[cfg(test)]
mod tests_direct;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_model;
#[cfg(test)]
mod tests_nodes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

pub use cursor::encode_name as node_file_stem;
pub use error::LogError;
pub use fs::{FaultyFs, Fs, RealFs};
pub use payload::Payload;
pub use reader::LogReader;
pub use recovery::RecoveryReport;

use cache::TailCache;
use cursor::CursorState;
use state::{Shared, State};
use writer::{Writer, WriterMsg};

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before acknowledging (group commit amortises it).
    Always,
    /// Acknowledge after `write()`; a timer fsyncs this often.
    Interval(Duration),
    /// Acknowledge after `write()`; the OS flushes when it likes.
    Never,
}

/// How to open a [`Log`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The log directory (callers pass `data_dir.join("log")`).
    pub dir: PathBuf,
    /// Rotate once the active segment reaches this many bytes.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    /// Write segments with `O_DIRECT` where the filesystem supports it
    /// ([`direct`]); else (or when false) through the page cache.
    pub direct_io: bool,
    /// In-memory tail of recent records shared by readers.
    pub cache_bytes: usize,
    /// Per cursor: backlog above this is skipped (oldest first).
    pub max_backlog_bytes: u64,
    /// Per cursor: records older than this are skipped.
    pub max_age: Duration,
    /// How often changed cursors are persisted.
    pub cursor_flush_interval: Duration,
    /// How often limits are enforced and old segments deleted.
    pub housekeeping_interval: Duration,
    /// Every file operation goes through this ([`RealFs`] by default; tests
    /// pass a [`FaultyFs`]).
    pub fs: Arc<dyn Fs>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            dir: PathBuf::from("data/log"),
            segment_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
            direct_io: true,
            cache_bytes: 64 * 1024 * 1024,
            max_backlog_bytes: 10 * 1024 * 1024 * 1024,
            max_age: Duration::from_secs(7 * 24 * 3600),
            cursor_flush_interval: Duration::from_millis(100),
            housekeeping_interval: Duration::from_secs(1),
            fs: Arc::new(RealFs),
        }
    }
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub appended_at_ms: u64,
    pub payload: Payload,
}

/// Backlog of one cursor; byte and age figures are within one sparse index
/// step (64 KiB) of exact unless the cursor is inside the tail cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStats {
    /// Next seq the node needs (in memory).
    pub position: u64,
    /// Value last written to the cursor file.
    pub persisted: u64,
    pub backlog_records: u64,
    pub backlog_bytes: u64,
    /// Age of the oldest undelivered record; `None` when caught up.
    pub oldest_age: Option<Duration>,
    /// Records skipped because of `max_backlog_bytes` / `max_age`, in total.
    pub skipped_records: u64,
    /// Records were skipped or lost: the node needs a repair.
    pub needs_repair: bool,
    /// Append times (ms since the epoch) the skipped records span, `[from,
    /// until]`, widened outward (see `housekeeping::enforce_limits`); `None`
    /// when nothing was skipped since the flag was cleared, or when the flag
    /// came from a lost cursor or damaged segments (range unknown).
    pub skipped_range: Option<(u64, u64)>,
    /// The node joined a log that already held records (it was not in the
    /// manifest of known nodes): it lacks the older data and needs a backfill.
    pub needs_backfill: bool,
}

/// The shared, cloneable handle to an open log.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    tx: mpsc::Sender<WriterMsg>,
    end_rx: watch::Receiver<u64>,
    report: RecoveryReport,
    closed: AtomicBool,
    /// Serialises `close` (true once done) so it is idempotent.
    close_done: tokio::sync::Mutex<bool>,
    /// Serialises cursor flushes so files and `persisted` cannot go backwards.
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The directory lock, released by `close` (or when the last handle and
    /// the writer thread are gone; the writer holds a second handle).
    lock: Mutex<Option<fs::FileHandle>>,
}

/// Bound on queued appends before callers wait.
const APPEND_QUEUE: usize = 1024;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn validate(opts: &LogOptions, cursors: &[String]) -> Result<(), LogError> {
    if opts.segment_bytes == 0 {
        return Err(LogError::InvalidOptions("segment_bytes must be > 0".into()));
    }
    let mut seen = HashSet::new();
    for c in cursors {
        if c.is_empty() {
            return Err(LogError::InvalidOptions("empty cursor name".into()));
        }
        if !seen.insert(c) {
            return Err(LogError::InvalidOptions(format!("duplicate cursor {c:?}")));
        }
    }
    Ok(())
}

/// How long `open` waits for a lock held by a log that is just going away
/// (a handle dropped without `close` whose writer thread is still exiting).
const LOCK_GRACE: Duration = Duration::from_secs(1);

/// Takes the exclusive advisory lock on `<dir>/LOCK` (created if missing).
/// Blocking: waits up to [`LOCK_GRACE`], then fails with `Locked`.
fn lock_dir(fs: &dyn Fs, dir: &std::path::Path) -> Result<fs::FileHandle, LogError> {
    let path = dir.join("LOCK");
    let f = fs
        .open(&path, fs::OpenMode::Create)
        .map_err(|e| LogError::io("open lock file", &path, e))?;
    let deadline = std::time::Instant::now() + LOCK_GRACE;
    while !f.try_lock().map_err(|e| LogError::io("lock", &path, e))? {
        if std::time::Instant::now() >= deadline {
            return Err(LogError::Locked(dir.to_path_buf()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(f)
}

impl Log {
    /// Opens or creates the log and runs recovery. `cursors` are the node
    /// names currently configured: existing cursors resume, a new name starts
    /// at the log's end, cursor files of names not listed are deleted.
    /// Spawns the writer thread and housekeeping tasks (needs a tokio runtime).
    pub async fn open(opts: LogOptions, cursors: &[String]) -> Result<Log, LogError> {
        validate(&opts, cursors)?;
        let dir = opts.dir.clone();
        let names = cursors.to_vec();
        let fs = opts.fs.clone();
        let (lock, rec) = tokio::task::spawn_blocking(move || {
            fs.create_dir_all(&dir)
                .map_err(|e| LogError::io("create dir", &dir, e))?;
            let lock = lock_dir(&*fs, &dir)?;
            recovery::recover(&*fs, &dir, &names).map(|r| (lock, r))
        })
        .await??;

        let active = rec
            .segments
            .last()
            .cloned()
            .ok_or_else(|| LogError::Task("recovery produced no active segment".into()))?;
        let segments: BTreeMap<u64, _> =
            rec.segments.into_iter().map(|m| (m.first_seq, m)).collect();
        let cursors: HashMap<String, CursorState> = rec
            .cursors
            .into_iter()
            .map(|(n, r)| (n, CursorState::new(r, r)))
            .collect();
        let state = State {
            segments,
            cache: TailCache::new(opts.cache_bytes, rec.next_seq),
            cursors,
            nodes: rec.nodes,
            next_seq: rec.next_seq,
            closed: false,
        };
        let (end_tx, end_rx) = watch::channel(rec.next_seq);
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(state),
            end_tx,
        });
        let (tx, rx) = mpsc::channel(APPEND_QUEUE);
        let writer = Writer::new(
            shared.clone(),
            rec.active_file,
            lock.clone(),
            &active,
            rec.next_seq,
            rec.last_ts,
            tx.downgrade(),
        )?;
        std::thread::Builder::new()
            .name("inmate-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io("spawn writer", &shared.opts.dir, e))?;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            shared,
            tx,
            end_rx,
            report: rec.report,
            closed: AtomicBool::new(false),
            close_done: tokio::sync::Mutex::new(false),
            flush_lock: tokio::sync::Mutex::new(()),
            shutdown,
            lock: Mutex::new(Some(lock)),
        });
        housekeeping::spawn(&inner);
        Ok(Log { inner })
    }

    /// What recovery found at open.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// Appends one payload; resolves once durable per the fsync policy.
    /// On error nothing was appended and the log stays consistent.
    pub async fn append(&self, payload: impl Into<Payload>) -> Result<u64, LogError> {
        self.append_batch(vec![payload.into()]).await
    }

    /// Appends several payloads as one group with consecutive seqs, all or
    /// nothing; returns the first seq (`next_seq()` if `payloads` is empty).
    pub async fn append_batch<P: Into<Payload>>(&self, payloads: Vec<P>) -> Result<u64, LogError> {
        let payloads: Vec<Payload> = payloads.into_iter().map(Into::into).collect();
        if payloads.is_empty() {
            return Ok(self.next_seq());
        }
        for p in &payloads {
            writer::check_payload(p)?;
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(WriterMsg::Append { payloads, reply })
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// The seq the next append will get; every seq below is published.
    pub fn next_seq(&self) -> u64 {
        self.inner.shared.lock().next_seq
    }

    /// How far a reader at `seq` is behind the end, as a fraction of the
    /// in-memory tail (`cache_bytes`): 0.0 at the end, 1.0 or more once its
    /// records are no longer all cached (it reads from disk).
    pub fn tail_lag(&self, seq: u64) -> f64 {
        let st = self.inner.shared.lock();
        match st.cache.bytes_from(seq) {
            Some(b) => b as f64 / st.cache.cap().max(1) as f64,
            None => f64::INFINITY,
        }
    }

    /// A reader starting at `cursor`'s current position.
    pub fn reader(&self, cursor: &str) -> Result<LogReader, LogError> {
        let pos = {
            let st = self.inner.shared.lock();
            let c = st
                .cursors
                .get(cursor)
                .ok_or_else(|| LogError::UnknownCursor(cursor.to_string()))?;
            c.cur.next.max(c.floor)
        };
        Ok(LogReader::new(
            self.inner.shared.clone(),
            cursor.to_string(),
            pos,
            self.inner.end_rx.clone(),
        ))
    }

    /// Next seq `cursor` needs (in-memory value).
    pub fn cursor(&self, cursor: &str) -> Option<u64> {
        self.inner
            .shared
            .lock()
            .cursors
            .get(cursor)
            .map(|c| c.cur.next)
    }

    /// Records that `cursor` delivered everything below `next`. Cursors only
    /// move forward and never past the end; persisted by the flusher.
    pub fn advance(&self, cursor: &str, next: u64) {
        let mut st = self.inner.shared.lock();
        let end = st.next_seq;
        match st.cursors.get_mut(cursor) {
            Some(c) => c.cur.next = c.cur.next.max(next.min(end)),
            None => tracing::debug!(cursor, "advance on unknown log cursor ignored"),
        }
    }

    /// Clears `needs_repair` and `needs_backfill` after an operator repaired
    /// (backfilled) the node; returns false for an unknown cursor. Durable
    /// with the next cursor flush.
    pub fn clear_needs_repair(&self, cursor: &str) -> bool {
        let mut st = self.inner.shared.lock();
        match st.cursors.get_mut(cursor) {
            Some(c) => {
                c.cur.needs_repair = false;
                c.cur.needs_backfill = false;
                c.cur.skipped_range = None;
                true
            }
            None => false,
        }
    }

    /// Clears `needs_repair` (and its range) after an automatic repair of
    /// the range seen with `skipped_records == skipped_seen`, unless more
    /// records were skipped since (their range may lie outside what was
    /// repaired). `needs_backfill` is left alone: a range repair is no
    /// backfill. Returns whether the flag was cleared.
    pub fn clear_repaired(&self, cursor: &str, skipped_seen: u64) -> bool {
        let mut st = self.inner.shared.lock();
        match st.cursors.get_mut(cursor) {
            Some(c) if c.cur.skipped == skipped_seen && c.cur.skipped_range.is_some() => {
                c.cur.needs_repair = false;
                c.cur.skipped_range = None;
                true
            }
            _ => false,
        }
    }

    /// Persists changed cursors now (shutdown, tests).
    pub async fn flush_cursors(&self) -> Result<(), LogError> {
        housekeeping::flush(&self.inner).await
    }

    /// Enforces `max_backlog_bytes` / `max_age` now; returns how many
    /// cursors were forced forward. (Housekeeping also does this periodically.)
    pub fn enforce_limits(&self) -> usize {
        housekeeping::enforce_limits(&self.inner.shared)
    }

    /// Deletes sealed segments every persisted cursor is past; returns how
    /// many. (Housekeeping also does this periodically.)
    pub async fn cleanup(&self) -> Result<usize, LogError> {
        housekeeping::cleanup(&self.inner).await
    }

    /// Backlog figures for one cursor.
    pub fn stats(&self, cursor: &str) -> Option<CursorStats> {
        let st = self.inner.shared.lock();
        let c = st.cursors.get(cursor)?;
        let pos = c.cur.next.max(c.floor);
        let end = st.next_seq;
        let loc = st.locate(pos);
        let oldest = if pos < end { loc.appended_at_ms } else { None };
        Some(CursorStats {
            position: c.cur.next,
            persisted: c.persisted.next,
            backlog_records: end.saturating_sub(pos.max(st.oldest_seq())),
            backlog_bytes: st.end_logical().saturating_sub(loc.logical),
            oldest_age: oldest.map(|ts| Duration::from_millis(now_ms().saturating_sub(ts))),
            skipped_records: c.cur.skipped,
            needs_repair: c.cur.needs_repair,
            skipped_range: c.cur.skipped_range,
            needs_backfill: c.cur.needs_backfill,
        })
    }

    /// Watches `next_seq` (readers wait on it).
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.inner.end_rx.clone()
    }

    /// Drains the writer, fsyncs, persists cursors and stops background
    /// tasks. Later appends fail with `Closed`; waiting readers get `Closed`.
    /// Idempotent.
    pub async fn close(&self) -> Result<(), LogError> {
        let mut done = self.inner.close_done.lock().await;
        if *done {
            return Ok(());
        }
        *done = true;
        self.inner.closed.store(true, Ordering::Release);
        let (reply, rx) = oneshot::channel();
        let writer = match self.inner.tx.send(WriterMsg::Close(reply)).await {
            // A writer that already exited has nothing left to sync.
            Ok(()) => rx.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        let _ = self.inner.shutdown.send(true);
        let flushed = housekeeping::flush(&self.inner).await;
        self.inner.shared.lock().closed = true;
        // Wake readers blocked on the end watch so they see `closed`.
        self.inner.shared.end_tx.send_modify(|_| {});
        // The writer dropped its handle before answering `Close`.
        drop(
            self.inner
                .lock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        writer.and(flushed)
    }
}
