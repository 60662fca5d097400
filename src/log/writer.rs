//! The single writer thread: group commit, rotation, write-error rollback.
//!
//! Appends arrive over a bounded channel. The thread takes everything that is
//! waiting (up to `GROUP_MAX_BYTES`), encodes the frame headers into one
//! reused buffer, issues one vectored write (each header followed by its
//! payload's own buffers: the request body is never copied into a frame) and
//! (policy `Always`) one `fdatasync`, then publishes
//! the records (index, tail cache, end watch) and answers every waiter. A
//! dedicated OS thread keeps blocking file I/O off the async runtime.
//!
//! On a failed write or fsync the file is truncated back to the last good
//! offset and every waiter of that group gets the error; seqs are reused by
//! later appends because nothing past the good offset was ever published.
//! If even the truncate fails, the writer retries it before any later write
//! and fails appends until it succeeds, so stale bytes can never be mistaken
//! for records on recovery.

use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::cache::CachedEntry;
use super::error::LogError;
use super::frame::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, frame_header, frame_size};
use super::fs::FileHandle;
use super::recovery::create_segment;
use super::segment::{IndexPoint, SegMeta, fsync_dir, segment_path};
use super::state::Shared;
use super::{Entry, FsyncPolicy, Payload, now_ms};

/// Stop draining the channel into one group past this many payload bytes.
const GROUP_MAX_BYTES: usize = 16 * 1024 * 1024;

pub(crate) type AppendReply = oneshot::Sender<Result<u64, LogError>>;

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
    /// Written but not yet fsynced (Interval/Never).
    dirty: bool,
    /// Set when rolling back a failed write could not truncate the file.
    needs_truncate: bool,
}

/// One frame waiting in the buffer, for publishing after the write.
struct Pending {
    entry: Entry,
    offset: u64,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        file: FileHandle,
        lock: FileHandle,
        active: &SegMeta,
        next_seq: u64,
        last_ts: u64,
    ) -> Self {
        Writer {
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
        }
    }

    /// The thread body: runs until `Close` or until every sender is dropped.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        let mut batch: Vec<(Vec<Payload>, AppendReply)> = Vec::new();
        while let Some(first) = rx.blocking_recv() {
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
                let r = self.sync_if_dirty();
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
        if let Err(e) = self.sync_if_dirty() {
            tracing::error!(error = %e, "final log fsync failed");
        }
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
        let r = self.write_group(pending);
        if let Err(e) = r {
            for (_, reply) in piece.drain(..) {
                let _ = reply.send(Err(e.clone()));
            }
            pending.clear();
            self.headers.clear();
            self.group_len = 0;
            return Err(e);
        }
        self.seg_len += self.group_len;
        self.headers.clear();
        self.group_len = 0;
        self.last_ts = ts;
        self.next_seq += pending.len() as u64;
        self.publish(pending);
        for (seq, reply) in piece.drain(..) {
            let _ = reply.send(Ok(seq));
        }
        Ok(())
    }

    /// Writes the group's frames with one vectored write: each frame's
    /// header, then its payload's parts from their own buffers (no copy).
    fn write_group(&mut self, pending: &[Pending]) -> Result<(), LogError> {
        let _timer = crate::metrics::log_append_timer();
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
        let written = self
            .file
            .write_all_vectored_at(&slices, self.seg_len)
            .map_err(|e| LogError::io("write", &self.path, e));
        let synced = written.and_then(|()| match self.shared.opts.fsync {
            FsyncPolicy::Always => crate::metrics::fsync(|| self.file.sync_data())
                .map_err(|e| LogError::io("fsync", &self.path, e)),
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => {
                self.dirty = true;
                Ok(())
            }
        });
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
        self.needs_truncate = false;
        Ok(())
    }

    /// Makes written frames visible: segment index, tail cache, end watch.
    fn publish(&mut self, pending: &mut Vec<Pending>) {
        {
            let mut st = self.shared.lock();
            let st = &mut *st;
            let Some(seg) = st.segments.get_mut(&self.seg_first) else {
                // Cannot happen: the active segment is never cleaned up.
                pending.clear();
                return;
            };
            for p in pending.iter() {
                seg.maybe_index(IndexPoint {
                    seq: p.entry.seq,
                    offset: p.offset,
                    appended_at_ms: p.entry.appended_at_ms,
                });
                let logical = seg.logical_at(p.offset);
                st.cache.push(CachedEntry {
                    entry: p.entry.clone(),
                    logical,
                });
            }
            seg.valid_end = self.seg_len;
            seg.end_seq = self.next_seq;
            st.next_seq = self.next_seq;
        }
        pending.clear();
        self.shared.end_tx.send_replace(self.next_seq);
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    fn rotate(&mut self) -> Result<(), LogError> {
        if !matches!(self.shared.opts.fsync, FsyncPolicy::Always) {
            // The sealed file will not see another interval sync.
            self.sync_if_dirty()?;
        }
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
