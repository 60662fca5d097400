//! The single writer thread: group commit, rotation, write-error rollback.
//!
//! Appends arrive over a bounded channel. The thread takes everything that is
//! waiting (up to `GROUP_MAX_BYTES`), encodes the frame headers into one
//! reused buffer and issues one vectored write (each header followed by its
//! payload's own buffers: the request body is never copied into a frame).
//! With policy `Always` it hands the written group to the fsync stage
//! ([`super::syncer`]) and goes on with the next group while that one is
//! fsynced; the stage publishes the records (index, tail cache, end watch)
//! and answers the waiters. With `Interval` or `Never` the writer publishes
//! and answers at once. Dedicated OS threads keep blocking file I/O off the
//! async runtime.
//!
//! On a failed write the file is truncated back to the last written offset
//! and every waiter of that group gets the error; on a failed fsync, back to
//! the offset before the failed group (the stage reports it, and its waiters
//! hear the error after the truncate). Seqs are reused by later appends
//! because nothing past the good offset was ever published. If even the
//! truncate fails, the writer retries it before any later write and fails
//! appends until it succeeds, so stale bytes can never be mistaken for
//! records on recovery.

use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::direct::Direct;
use super::error::LogError;
use super::frame::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, frame_header, frame_size};
use super::fs::FileHandle;
use super::recovery::create_segment;
use super::segment::{SegMeta, fsync_dir, segment_path};
use super::state::Shared;
use super::syncer::{AppendReply, Group, Mark, Pending, SyncStage, answer, publish};
use super::{Entry, FsyncPolicy, Payload, now_ms};

/// Stop draining the channel into one group past this many payload bytes.
const GROUP_MAX_BYTES: usize = 16 * 1024 * 1024;

pub(crate) enum WriterMsg {
    /// Payloads that get consecutive seqs and are never split across segments.
    Append {
        payloads: Vec<Payload>,
        reply: AppendReply,
    },
    /// Interval policy tick: fdatasync if anything was written since the last.
    Sync,
    /// Drain, final fsync, stop.
    Close(oneshot::Sender<Result<(), LogError>>),
    /// From the fsync stage after a failed fsync: roll back now, so its
    /// waiters are answered even if no append follows.
    Wake,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    file: FileHandle,
    /// The log directory lock: held until this thread ends, so a reopen
    /// cannot start while queued appends may still be written.
    _lock: FileHandle,
    path: PathBuf,
    seg_first: u64,
    /// Length of the good part of the active file (next write offset).
    seg_len: u64,
    next_seq: u64,
    last_ts: u64,
    /// The frame headers of the group being written, in order: the n-th
    /// pending frame's header is bytes `24n..24(n+1)`.
    headers: Vec<u8>,
    /// Bytes the group being written adds to the file.
    group_len: u64,
    /// Written (Interval/Never) or cut back (`trim`) but not yet fsynced.
    dirty: bool,
    /// Set when rolling back a failed write could not truncate the file.
    needs_truncate: bool,
    /// The fsync stage (policy `Always` only); dropped last, which joins it.
    sync: Option<SyncStage>,
    /// The active segment's `O_DIRECT` handle, when `direct_io` is on and
    /// the filesystem takes it; `None` writes through `file`.
    direct: Option<Direct>,
    /// `direct_io`, until the filesystem refuses it once (logged once).
    try_direct: bool,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        file: FileHandle,
        lock: FileHandle,
        active: &SegMeta,
        next_seq: u64,
        last_ts: u64,
        wake: mpsc::WeakSender<WriterMsg>,
    ) -> Result<Self, LogError> {
        let sync = match shared.opts.fsync {
            FsyncPolicy::Always => {
                let nudge = move || {
                    if let Some(tx) = wake.upgrade() {
                        // Full means the writer has work queued and will look.
                        let _ = tx.try_send(WriterMsg::Wake);
                    }
                };
                let stage = SyncStage::spawn(shared.clone(), Box::new(nudge))
                    .map_err(|e| LogError::io("spawn log sync", &shared.opts.dir, e))?;
                Some(stage)
            }
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => None,
        };
        let mut try_direct = shared.opts.direct_io;
        let direct = open_direct(
            &mut try_direct,
            &shared,
            &active.path,
            &file,
            active.valid_end,
        );
        Ok(Writer {
            direct,
            try_direct,
            dir: shared.opts.dir.clone(),
            shared,
            file,
            _lock: lock,
            path: active.path.clone(),
            seg_first: active.first_seq,
            seg_len: active.valid_end,
            next_seq,
            last_ts,
            headers: Vec::new(),
            group_len: 0,
            dirty: false,
            needs_truncate: false,
            sync,
        })
    }

    /// The thread body: runs until `Close` or until every sender is dropped.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        let mut batch: Vec<(Vec<Payload>, AppendReply)> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            // A failed fsync since the last round: its waiters heard (or
            // hear now) the error, so only the rollback is left to do.
            let _ = self.recover();
            let mut bytes = 0usize;
            let mut sync = false;
            let mut close = None;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    WriterMsg::Append { payloads, reply } => {
                        bytes += payloads.iter().map(Payload::len).sum::<usize>();
                        batch.push((payloads, reply));
                    }
                    WriterMsg::Sync => sync = true,
                    WriterMsg::Wake => {}
                    WriterMsg::Close(r) => {
                        close = Some(r);
                        break;
                    }
                }
                if bytes < GROUP_MAX_BYTES {
                    msg = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.append_group(&mut batch);
            }
            if sync || close.is_some() {
                let r = if close.is_some() {
                    self.finish_segment()
                } else {
                    self.sync_if_dirty()
                };
                if let Err(e) = &r {
                    tracing::error!(error = %e, "log fsync failed");
                }
                if let Some(reply) = close {
                    // Release the directory lock before `close` returns.
                    drop(self);
                    let _ = reply.send(r);
                    return;
                }
            }
        }
        // Every handle dropped without close(): still leave the data synced.
        if let Err(e) = self.finish_segment() {
            tracing::error!(error = %e, "final log fsync failed");
        }
    }

    /// Leaves the active file complete, published and durable, at its good
    /// length (before sealing it, and at close): every written group
    /// published, the padding cut, one fsync for what is left.
    fn finish_segment(&mut self) -> Result<(), LogError> {
        self.settle()?;
        self.trim()?;
        self.sync_if_dirty()
    }

    /// Waits for the fsync stage to publish (or fail) every written group,
    /// then rolls back a failure; its error is returned.
    fn settle(&mut self) -> Result<(), LogError> {
        if let Some(stage) = &self.sync {
            stage.barrier();
        }
        self.recover()
    }

    /// After a failed fsync: cut the file back to before the failed group,
    /// take up its seqs again, and let the stage answer the held waiters.
    fn recover(&mut self) -> Result<(), LogError> {
        let Some(failure) = self.sync.as_ref().and_then(SyncStage::take_failure) else {
            return Ok(());
        };
        let Mark {
            seg_len,
            next_seq,
            last_ts,
        } = failure.base;
        self.seg_len = seg_len;
        self.next_seq = next_seq;
        self.last_ts = last_ts;
        self.needs_truncate = true;
        if let Err(e) = self.rollback() {
            tracing::error!(error = %e, "cannot roll back a failed log fsync; appends will fail until it can");
        }
        if let Some(stage) = &self.sync {
            stage.reset();
        }
        Err(failure.error)
    }

    fn sync_if_dirty(&mut self) -> Result<(), LogError> {
        if self.dirty {
            crate::metrics::fsync(|| self.file.sync_data())
                .map_err(|e| LogError::io("fsync", &self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Writes a group; requests are answered (Ok or Err) and drained.
    fn append_group(&mut self, batch: &mut Vec<(Vec<Payload>, AppendReply)>) {
        let seg_bytes = self.shared.opts.segment_bytes;
        let mut piece: Vec<(u64, AppendReply)> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        self.headers.clear();
        self.group_len = 0;
        let mut seq = self.next_seq;
        let mut ts = now_ms().max(self.last_ts);
        let mut rest = batch.drain(..);
        while let Some((payloads, reply)) = rest.next() {
            let full = self.seg_len + self.group_len >= seg_bytes;
            let non_empty = self.seg_len > SEGMENT_HEADER_LEN || self.group_len > 0;
            if full && non_empty {
                let rotated = self
                    .commit(&mut piece, &mut pending, ts)
                    .and_then(|()| self.rotate());
                if let Err(e) = rotated {
                    let _ = reply.send(Err(e.clone()));
                    for (_, r) in rest.by_ref() {
                        let _ = r.send(Err(e.clone()));
                    }
                    return;
                }
                seq = self.next_seq;
                ts = now_ms().max(self.last_ts);
            }
            let first = seq;
            for p in payloads {
                let offset = self.seg_len + self.group_len;
                self.headers.extend_from_slice(&frame_header(seq, ts, &p));
                self.group_len += frame_size(p.len());
                pending.push(Pending {
                    entry: Entry {
                        seq,
                        appended_at_ms: ts,
                        payload: p,
                    },
                    offset,
                });
                seq += 1;
            }
            piece.push((first, reply));
        }
        drop(rest);
        if let Err(e) = self.commit(&mut piece, &mut pending, ts) {
            tracing::error!(error = %e, "log append failed");
        }
    }

    /// Writes (and per policy syncs) the buffer, publishes, answers the piece.
    /// On error every waiter of the piece gets it and the file is rolled back.
    fn commit(
        &mut self,
        piece: &mut Vec<(u64, AppendReply)>,
        pending: &mut Vec<Pending>,
        ts: u64,
    ) -> Result<(), LogError> {
        if piece.is_empty() {
            return Ok(());
        }
        let timer = crate::metrics::log_append_timer();
        let r = self.write_group(pending);
        if let Err(e) = r {
            answer(std::mem::take(piece), Err(&e));
            pending.clear();
            self.headers.clear();
            self.group_len = 0;
            return Err(e);
        }
        let base = self.mark();
        self.seg_len += self.group_len;
        self.headers.clear();
        self.group_len = 0;
        self.last_ts = ts;
        self.next_seq += pending.len() as u64;
        let end = self.mark();
        if let Some(stage) = &self.sync {
            stage.send(Group {
                file: self.file.clone(),
                path: self.path.clone(),
                seg_first: self.seg_first,
                base,
                end,
                pending: std::mem::take(pending),
                piece: std::mem::take(piece),
                timer,
            });
            return Ok(());
        }
        publish(&self.shared, self.seg_first, end, pending);
        drop(timer);
        answer(std::mem::take(piece), Ok(()));
        Ok(())
    }

    fn mark(&self) -> Mark {
        Mark {
            seg_len: self.seg_len,
            next_seq: self.next_seq,
            last_ts: self.last_ts,
        }
    }

    /// Writes the group's frames with one vectored write: each frame's
    /// header, then its payload's parts from their own buffers (no copy).
    /// Policy `Always` leaves the fsync to the stage.
    fn write_group(&mut self, pending: &[Pending]) -> Result<(), LogError> {
        if self.needs_truncate {
            self.rollback()?;
        }
        let mut slices = Vec::with_capacity(pending.len() * 3);
        for (p, h) in pending.iter().zip(self.headers.chunks(FRAME_HEADER_LEN)) {
            slices.push(IoSlice::new(h));
            for part in p.entry.payload.parts() {
                if !part.is_empty() {
                    slices.push(IoSlice::new(part));
                }
            }
        }
        let direct = (self.direct.as_mut()).map(|d| d.write(&slices, self.seg_len, self.group_len));
        let written = match direct {
            // The file opened for O_DIRECT but refuses its writes (a device
            // block above 4 KiB, a filesystem that only pretends): write
            // through the page cache from now on, this group first, after
            // cutting off the padding past the good end.
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::warn!(
                    path = %self.path.display(), error = %e,
                    "direct write refused; writing the log through the page cache"
                );
                self.direct = None;
                self.try_direct = false;
                self.file
                    .set_len(self.seg_len)
                    .and_then(|()| self.file.write_all_vectored_at(&slices, self.seg_len))
            }
            Some(r) => r,
            None => self.file.write_all_vectored_at(&slices, self.seg_len),
        }
        .map_err(|e| LogError::io("write", &self.path, e));
        let synced = written.map(|()| self.dirty |= self.sync.is_none());
        if synced.is_err() {
            self.needs_truncate = true;
            if let Err(e) = self.rollback() {
                tracing::error!(error = %e, "cannot roll back a failed log write; appends will fail until it can");
            }
        }
        synced
    }

    /// Cuts the active file back to its last good length.
    fn rollback(&mut self) -> Result<(), LogError> {
        self.file
            .set_len(self.seg_len)
            .map_err(|e| LogError::io("truncate", &self.path, e))?;
        if let Some(d) = &mut self.direct {
            d.load_tail(&self.file, self.seg_len)
                .map_err(|e| LogError::io("read", &self.path, e))?;
        }
        self.needs_truncate = false;
        Ok(())
    }

    /// Cuts a direct-written file's padding off (sealing, close); the new
    /// length waits for the next fsync, like written data.
    fn trim(&mut self) -> Result<(), LogError> {
        if self.direct.is_none() {
            return Ok(());
        }
        self.file
            .set_len(self.seg_len)
            .map_err(|e| LogError::io("truncate", &self.path, e))?;
        self.dirty = true;
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    fn rotate(&mut self) -> Result<(), LogError> {
        // The sealed file must be complete and published (its logical end
        // starts the next) and will not see another interval sync.
        self.finish_segment()?;
        let first = self.next_seq;
        let path = segment_path(&self.dir, first);
        let fs = &*self.shared.opts.fs;
        let file = match create_segment(fs, &path).and_then(|f| {
            fsync_dir(fs, &self.dir)
                .map(|()| f)
                .map_err(|e| LogError::io("fsync dir", &self.dir, e))
        }) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs.remove_file(&path);
                return Err(e);
            }
        };
        {
            let mut st = self.shared.lock();
            let logical = st
                .segments
                .get(&self.seg_first)
                .map_or(0, |s| s.logical_end());
            st.segments
                .insert(first, SegMeta::empty(first, path.clone(), logical));
        }
        self.direct = open_direct(
            &mut self.try_direct,
            &self.shared,
            &path,
            &file,
            SEGMENT_HEADER_LEN,
        );
        self.file = file;
        self.path = path;
        self.seg_first = first;
        self.seg_len = SEGMENT_HEADER_LEN;
        Ok(())
    }
}

/// Rejects payloads that cannot be framed.
pub(crate) fn check_payload(p: &Payload) -> Result<(), LogError> {
    let max = super::frame::MAX_PAYLOAD_LEN;
    if p.len() > max {
        return Err(LogError::PayloadTooLarge { len: p.len(), max });
    }
    Ok(())
}

/// The direct handle of a segment, or `None` (buffered writes) when
/// `direct_io` is off or the filesystem has refused it (logged, and not
/// tried again).
fn open_direct(
    try_direct: &mut bool,
    shared: &Shared,
    path: &std::path::Path,
    file: &FileHandle,
    good_len: u64,
) -> Option<Direct> {
    if !*try_direct {
        return None;
    }
    match Direct::open(&*shared.opts.fs, path, file, good_len) {
        Ok(d) => Some(d),
        Err(e) => {
            *try_direct = false;
            tracing::warn!(
                path = %path.display(), error = %e,
                "cannot open the log segment for direct I/O; writing through the page cache"
            );
            None
        }
    }
}
