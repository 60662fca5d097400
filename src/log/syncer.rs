//! The fsync stage of group commit (policy `Always`): a second thread, so
//! the next group is copied into the file while the last one is fsynced.
//!
//! Why: measured under fan-out load (BENCHMARKS 6j), one group of ~4.4 MB
//! took 2.8 ms to write and 5.4 ms to `fdatasync`, one after the other on
//! the single writer thread, which was busy 88 % of the time: the log, not
//! the CPU, capped acknowledged writes. Now the writer hands each written
//! group here and goes on to the next; this thread takes every group that
//! is waiting, fsyncs once for all of them, then publishes them in order
//! (index, tail cache, end watch) and answers their waiters. Durability is
//! unchanged: a group is published and acknowledged only after an
//! `fdatasync` that began after its write returned.
//!
//! A failed fsync fails its group and every group written after it, because
//! their seqs follow the failed ones and nothing may be published past a
//! gap. The stage records the [`Failure`] with the writer's state before the
//! first failed group, wakes the writer, and *holds* the failed waiters: the
//! writer truncates the file back to that state and sends [`ToSyncer::Reset`],
//! and only then are the waiters answered. So a client that sees the error
//! finds the file already cut back, and its next append reuses the seqs, as
//! with a failed write. The writer's rotation and close wait for this stage
//! to go idle first ([`SyncStage::barrier`]), so a batch of groups here never
//! spans two segments and a sealed segment is complete before the next one
//! starts.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::Entry;
use super::error::LogError;
use super::fs::FileHandle;
use super::segment::IndexPoint;
use super::state::Shared;
use crate::metrics::Timer;

/// Written groups that may wait for this stage: enough to keep one group
/// being written while one is fsynced, few enough to bound what is held.
const IN_FLIGHT: usize = 2;

pub(crate) type AppendReply = oneshot::Sender<Result<u64, LogError>>;

/// The writer's position at a group boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// Length of the good part of the active file.
    pub seg_len: u64,
    pub next_seq: u64,
    pub last_ts: u64,
}

/// One frame of a written group, for publishing once durable.
pub(crate) struct Pending {
    pub entry: Entry,
    pub offset: u64,
}

/// A group the writer has written (not yet fsynced) to segment `seg_first`.
pub(crate) struct Group {
    pub file: FileHandle,
    pub path: PathBuf,
    pub seg_first: u64,
    /// Before the group: where a failed fsync rolls the writer back to.
    pub base: Mark,
    /// After the group: what publishing it makes visible.
    pub end: Mark,
    pub pending: Vec<Pending>,
    /// Each request's first seq and its waiter.
    pub piece: Vec<(u64, AppendReply)>,
    /// `inmate_log_append_duration_seconds`: from the write to the publish.
    pub timer: Timer,
}

pub(crate) enum ToSyncer {
    Group(Group),
    /// Answered once everything sent before it is published or failed.
    Barrier(SyncSender<()>),
    /// The writer has rolled back after a [`Failure`]: answer the held
    /// waiters and take groups again.
    Reset,
}

/// A failed fsync, for the writer to roll back.
pub(crate) struct Failure {
    pub error: LogError,
    pub base: Mark,
}

/// The writer's handle on the stage; dropping it stops the thread.
pub(crate) struct SyncStage {
    tx: Option<SyncSender<ToSyncer>>,
    failure: Arc<Mutex<Option<Failure>>>,
    thread: Option<JoinHandle<()>>,
}

impl SyncStage {
    /// Starts the thread. `wake` nudges the writer after a failure (it must
    /// not block: the writer may be blocked sending to this stage).
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        wake: Box<dyn Fn() + Send>,
    ) -> std::io::Result<SyncStage> {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let failure = Arc::new(Mutex::new(None));
        let syncer = Syncer {
            shared,
            failure: failure.clone(),
            wake,
            failing: None,
            held: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("inmate-log-sync".into())
            .spawn(move || syncer.run(rx))?;
        Ok(SyncStage {
            tx: Some(tx),
            failure,
            thread: Some(thread),
        })
    }

    /// Hands a written group over; blocks while `IN_FLIGHT` groups wait.
    pub(crate) fn send(&self, group: Group) {
        let Some(tx) = &self.tx else { return };
        if let Err(std::sync::mpsc::SendError(ToSyncer::Group(g))) = tx.send(ToSyncer::Group(group))
        {
            // The thread is gone (it never exits while the writer holds
            // this handle, short of a panic): the group cannot be made
            // durable, so its waiters hear so.
            let e = LogError::Task("log sync thread stopped".into());
            answer(g.piece, Err(&e));
        }
    }

    /// Waits until every group sent so far is published or failed.
    pub(crate) fn barrier(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = sync_channel(1);
        if tx.send(ToSyncer::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// The failure the writer has not rolled back yet, if any.
    pub(crate) fn take_failure(&self) -> Option<Failure> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The writer has rolled back: the held waiters may hear their error.
    pub(crate) fn reset(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(ToSyncer::Reset);
        }
    }
}

impl Drop for SyncStage {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Syncer {
    shared: Arc<Shared>,
    failure: Arc<Mutex<Option<Failure>>>,
    wake: Box<dyn Fn() + Send>,
    /// Set from a failed fsync until the writer's `Reset`.
    failing: Option<LogError>,
    /// Groups failed by `failing`, answered at `Reset`.
    held: Vec<Group>,
}

impl Syncer {
    fn run(mut self, rx: Receiver<ToSyncer>) {
        let mut next = None;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            match msg {
                ToSyncer::Group(g) => {
                    let mut groups = vec![g];
                    loop {
                        match rx.try_recv() {
                            Ok(ToSyncer::Group(g)) => groups.push(g),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                    self.commit(groups);
                }
                ToSyncer::Barrier(done) => {
                    let _ = done.send(());
                }
                ToSyncer::Reset => self.release(),
            }
        }
        self.release();
    }

    /// Fsyncs and publishes the groups, one run per segment, in order.
    fn commit(&mut self, groups: Vec<Group>) {
        let mut rest = groups.into_iter().peekable();
        while let Some(first) = rest.next() {
            let seg = first.seg_first;
            let mut run = vec![first];
            while let Some(g) = rest.next_if(|g| g.seg_first == seg) {
                run.push(g);
            }
            if self.failing.is_some() {
                self.held.extend(run);
                continue;
            }
            let last = &run[run.len() - 1];
            let synced = crate::metrics::fsync(|| last.file.sync_data())
                .map_err(|e| LogError::io("fsync", &last.path, e));
            match synced {
                Ok(()) => {
                    for g in run {
                        let Group {
                            seg_first,
                            end,
                            mut pending,
                            piece,
                            timer,
                            ..
                        } = g;
                        publish(&self.shared, seg_first, end, &mut pending);
                        drop(timer);
                        answer(piece, Ok(()));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "log append failed");
                    let base = run[0].base;
                    // Recorded before anyone hears of it: the writer rolls
                    // back before the first waiter is answered.
                    *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(Failure {
                        error: e.clone(),
                        base,
                    });
                    self.failing = Some(e);
                    self.held.extend(run);
                    (self.wake)();
                }
            }
        }
    }

    /// Answers every held waiter with the failure, and takes groups again.
    fn release(&mut self) {
        let Some(e) = self.failing.take() else { return };
        for g in self.held.drain(..) {
            answer(g.piece, Err(&e));
        }
    }
}

/// Answers every waiter of a piece: its first seq, or the error.
pub(crate) fn answer(piece: Vec<(u64, AppendReply)>, r: Result<(), &LogError>) {
    for (seq, reply) in piece {
        let _ = reply.send(r.map(|()| seq).map_err(LogError::clone));
    }
}

/// Makes written frames visible: segment index, tail cache, end watch.
pub(crate) fn publish(shared: &Shared, seg_first: u64, end: Mark, pending: &mut Vec<Pending>) {
    {
        let mut st = shared.lock();
        let st = &mut *st;
        let Some(seg) = st.segments.get_mut(&seg_first) else {
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
            st.cache.push(super::cache::CachedEntry {
                entry: p.entry.clone(),
                logical,
            });
        }
        seg.valid_end = end.seg_len;
        seg.end_seq = end.next_seq;
        st.next_seq = end.next_seq;
    }
    pending.clear();
    shared.end_tx.send_replace(end.next_seq);
}
