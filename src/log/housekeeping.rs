//! Background upkeep: persisting cursors, enforcing per-cursor limits,
//! deleting segments nobody needs, and the `Interval` fsync timer.
//!
//! The tasks hold only a `Weak` handle to the log, so dropping every `Log`
//! handle stops them; `close` stops them explicitly. Limits are pure
//! arithmetic on the in-memory index (no I/O), so the check stays cheap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::cursor::{self, CursorRecord};
use super::cursor_recovery::flags_of;
use super::error::LogError;
use super::manifest;
use super::segment::fsync_dir;
use super::state::Shared;
use super::writer::WriterMsg;
use super::{FsyncPolicy, Inner, now_ms};

/// Starts the flusher/housekeeping task and, for `Interval`, the sync timer.
pub(crate) fn spawn(inner: &Arc<Inner>) {
    let opts = &inner.shared.opts;
    let flush_every = opts.cursor_flush_interval.max(Duration::from_millis(1));
    let hk_every = opts.housekeeping_interval;
    let weak = Arc::downgrade(inner);
    let mut stop = inner.shutdown.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_hk = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let Some(inner) = weak.upgrade() else { break };
            if let Err(e) = flush(&inner).await {
                tracing::error!(error = %e, "persisting log cursors failed");
            }
            if last_hk.elapsed() >= hk_every {
                last_hk = Instant::now();
                enforce_limits(&inner.shared);
                if let Err(e) = cleanup(&inner).await {
                    tracing::error!(error = %e, "deleting old log segments failed");
                }
            }
        }
    });

    if let FsyncPolicy::Interval(every) = opts.fsync {
        let weak = Arc::downgrade(inner);
        let mut stop = inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let Some(inner) = weak.upgrade() else { break };
                // A full queue means the writer is busy; the next tick retries.
                let _ = inner.tx.try_send(WriterMsg::Sync);
            }
        });
    }
}

/// Persists every cursor whose in-memory record differs from its file.
pub(crate) async fn flush(inner: &Inner) -> Result<(), LogError> {
    let _serial = inner.flush_lock.lock().await;
    let (dirty, nodes) = {
        let st = inner.shared.lock();
        let dirty: Vec<(String, CursorRecord)> = st
            .cursors
            .iter()
            .filter(|(_, c)| c.cur != c.persisted)
            .map(|(n, c)| (n.clone(), c.cur))
            .collect();
        let mut nodes = st.nodes.clone();
        for (n, rec) in &dirty {
            nodes.insert(n.clone(), flags_of(rec));
        }
        // Only rewrite the manifest when a flag changed.
        let changed = nodes != st.nodes;
        (dirty, changed.then_some(nodes))
    };
    if dirty.is_empty() {
        return Ok(());
    }
    let dir = inner.shared.opts.dir.clone();
    let cdir = dir.join("cursors");
    let fs = inner.shared.opts.fs.clone();
    let todo = dirty.clone();
    let manifest = nodes.clone();
    tokio::task::spawn_blocking(move || -> Result<(), LogError> {
        // Manifest first: a crash in between leaves a flag set in one of
        // the two copies, and open ORs them, so a flag is never lost.
        if let Some(nodes) = &manifest {
            manifest::store(&*fs, &dir, nodes)
                .map_err(|e| LogError::io("write manifest", &dir, e))?;
            fsync_dir(&*fs, &dir).map_err(|e| LogError::io("fsync dir", &dir, e))?;
        }
        for (name, rec) in &todo {
            cursor::store(&*fs, &cdir, name, rec)
                .map_err(|e| LogError::io("write cursor", &cdir, e))?;
        }
        fsync_dir(&*fs, &cdir).map_err(|e| LogError::io("fsync dir", &cdir, e))
    })
    .await??;
    let mut st = inner.shared.lock();
    if let Some(nodes) = nodes {
        st.nodes = nodes;
    }
    for (name, rec) in dirty {
        if let Some(c) = st.cursors.get_mut(&name) {
            c.persisted = rec;
        }
    }
    Ok(())
}

/// Forces cursors over `max_backlog_bytes` / `max_age` forward. Returns how
/// many were moved.
///
/// Each move also widens the cursor's `skipped_range`, the append times the
/// skipped records span (for `repair.auto`). Both ends err wide, never
/// narrow: `from` is the append time of the sparse index point at or before
/// the first skipped record; `until` is the age cut-off (`now - max_age`)
/// when only the age limit moved the cursor (every skipped record is older),
/// else `now` (no skipped record was appended later).
pub(crate) fn enforce_limits(shared: &Shared) -> usize {
    let opts = &shared.opts;
    let max_bytes = opts.max_backlog_bytes;
    let max_age_ms = u64::try_from(opts.max_age.as_millis()).unwrap_or(u64::MAX);
    let now = now_ms();
    let mut st = shared.lock();
    let end = st.next_seq;
    let end_logical = st.end_logical();
    let mut moves = Vec::new();
    for (name, c) in &st.cursors {
        let pos = c.cur.next.max(c.floor);
        if pos >= end {
            continue;
        }
        let loc = st.locate(pos);
        let mut target = pos;
        let mut why = "";
        let mut until = now;
        if end_logical.saturating_sub(loc.logical) > max_bytes {
            target = target.max(st.first_seq_at_logical(end_logical - max_bytes));
            why = "max_backlog_bytes";
        }
        if let Some(ts) = loc.appended_at_ms
            && now.saturating_sub(ts) > max_age_ms
        {
            let cutoff = now.saturating_sub(max_age_ms);
            let by_age = st.first_seq_since(cutoff);
            if by_age >= target {
                until = cutoff;
            }
            target = target.max(by_age);
            why = "max_age";
        }
        if target > pos {
            let from = loc.appended_at_ms.unwrap_or(now).min(until);
            moves.push((name.clone(), pos, target, why, (from, until)));
        }
    }
    for (name, pos, target, why, (from, until)) in &moves {
        if let Some(c) = st.cursors.get_mut(name) {
            let skipped = target - pos;
            c.cur.next = c.cur.next.max(*target);
            c.floor = c.floor.max(*target);
            c.cur.skipped += skipped;
            // A flag set without a known range (lost cursor, damage) stays
            // "range unknown": widening it would pretend to know.
            c.cur.skipped_range = match (c.cur.needs_repair, c.cur.skipped_range) {
                (false, _) => Some((*from, *until)),
                (true, Some((a, b))) => Some((a.min(*from), b.max(*until))),
                (true, None) => None,
            };
            c.cur.needs_repair = true;
            tracing::warn!(
                cursor = %name, from = pos, to = target, skipped, limit = why,
                "log cursor over its limit; oldest records skipped, node needs repair"
            );
        }
    }
    moves.len()
}

/// Deletes sealed segments whose last seq every persisted cursor is past.
pub(crate) async fn cleanup(inner: &Inner) -> Result<usize, LogError> {
    let victims: Vec<PathBuf> = {
        let mut st = inner.shared.lock();
        let min_persisted = st
            .cursors
            .values()
            .map(|c| c.persisted.next)
            .min()
            .unwrap_or(u64::MAX);
        let active = st.segments.keys().next_back().copied();
        let doomed: Vec<u64> = st
            .segments
            .iter()
            .filter(|(k, s)| Some(**k) != active && s.end_seq <= min_persisted)
            .map(|(k, _)| *k)
            .collect();
        doomed
            .iter()
            .filter_map(|k| st.segments.remove(k).map(|s| s.path))
            .collect()
    };
    if victims.is_empty() {
        return Ok(0);
    }
    let n = victims.len();
    let dir = inner.shared.opts.dir.clone();
    let fs = inner.shared.opts.fs.clone();
    tokio::task::spawn_blocking(move || -> Result<(), LogError> {
        for p in &victims {
            match fs.remove_file(p) {
                Ok(()) => tracing::debug!(path = %p.display(), "deleted log segment"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("delete segment", p, e)),
            }
        }
        fsync_dir(&*fs, &dir).map_err(|e| LogError::io("fsync dir", &dir, e))
    })
    .await??;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use crate::log::tests::{append_n, names, test_opts};
    use crate::log::{Log, LogOptions, now_ms};

    #[tokio::test]
    async fn a_skip_records_its_append_time_range_durably() {
        let d = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            max_backlog_bytes: 1000,
            cache_bytes: 1 << 20,
            ..test_opts(d.path())
        };
        let log = Log::open(opts.clone(), &names(&["slow"])).await.unwrap();
        let before = now_ms();
        append_n(&log, 1, 51).await;
        assert_eq!(log.stats("slow").unwrap().skipped_range, None);
        assert_eq!(log.enforce_limits(), 1);
        let after = now_ms();
        let s = log.stats("slow").unwrap();
        let (from, until) = s.skipped_range.expect("a skip records its range");
        assert!(before <= from && from <= until && until <= after, "{s:?}");
        // A second skip widens the range and bumps the count, so a repair
        // of the first range must not clear the flag.
        let seen = s.skipped_records;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        append_n(&log, 51, 61).await;
        assert_eq!(log.enforce_limits(), 1);
        let s2 = log.stats("slow").unwrap();
        let (from2, until2) = s2.skipped_range.unwrap();
        assert_eq!(from2, from);
        assert!(until2 > until, "{s2:?}");
        assert!(!log.clear_repaired("slow", seen));
        assert!(log.stats("slow").unwrap().needs_repair);
        // Persisted with the cursor: a reopened log still knows it.
        log.flush_cursors().await.unwrap();
        log.close().await.unwrap();
        let log = Log::open(opts, &names(&["slow"])).await.unwrap();
        let s3 = log.stats("slow").unwrap();
        assert_eq!(s3.skipped_range, Some((from2, until2)));
        assert!(s3.needs_repair);
        assert!(log.clear_repaired("slow", s3.skipped_records));
        let s4 = log.stats("slow").unwrap();
        assert!(!s4.needs_repair && s4.skipped_range.is_none(), "{s4:?}");
        log.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_flag_of_unknown_range_is_never_cleared_automatically() {
        let d = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            max_backlog_bytes: 1000,
            cache_bytes: 1 << 20,
            ..test_opts(d.path())
        };
        let log = Log::open(opts.clone(), &names(&["a", "b"])).await.unwrap();
        append_n(&log, 1, 5).await;
        log.advance("a", 5);
        log.advance("b", 5);
        log.flush_cursors().await.unwrap();
        log.close().await.unwrap();
        // A lost cursor file of a known node: flagged, range unknown.
        std::fs::remove_file(d.path().join("cursors").join("b.cur")).unwrap();
        let log = Log::open(opts, &names(&["a", "b"])).await.unwrap();
        let s = log.stats("b").unwrap();
        assert!(s.needs_repair && s.skipped_range.is_none(), "{s:?}");
        append_n(&log, 5, 60).await;
        assert!(log.enforce_limits() >= 1);
        let s = log.stats("b").unwrap();
        assert!(s.skipped_range.is_none(), "must not pretend to know: {s:?}");
        assert!(!log.clear_repaired("b", s.skipped_records));
        assert!(log.stats("b").unwrap().needs_repair);
        log.close().await.unwrap();
    }
}
