//! Behavioural tests of the log through its public API: appends, readers,
//! cursors, cleanup, limits, reopen. Damage/recovery tests live in
//! `tests_damage.rs`, the model-based proptest in `tests_model.rs`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::*;

/// Small segments, explicit housekeeping (long intervals) for determinism.
pub(crate) fn test_opts(dir: &Path) -> LogOptions {
    LogOptions {
        dir: dir.to_path_buf(),
        segment_bytes: 256,
        cache_bytes: 1024,
        cursor_flush_interval: Duration::from_secs(3600),
        housekeeping_interval: Duration::from_secs(3600),
        ..LogOptions::default()
    }
}

pub(crate) fn payload(i: u64) -> Bytes {
    Bytes::from(format!(
        "record-{i:04}-{}",
        "x".repeat((i % 7) as usize * 5)
    ))
}

pub(crate) fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

pub(crate) async fn append_n(log: &Log, from: u64, to: u64) {
    for i in from..to {
        assert_eq!(log.append(payload(i)).await.unwrap(), i);
    }
}

/// Reads `n` entries from the reader, in whatever batches it returns.
pub(crate) async fn read_n(r: &mut LogReader, n: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    while out.len() < n {
        let got = tokio::time::timeout(Duration::from_secs(10), r.next(1 << 20, n - out.len()))
            .await
            .expect("reader stalled")
            .unwrap();
        assert!(!got.is_empty());
        out.extend(got);
    }
    out
}

pub(crate) fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    segment::list_segments(&RealFs, dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn seqs(v: &[Entry]) -> Vec<u64> {
    v.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn append_and_read_across_rotation_from_cache_and_disk() {
    for cache_bytes in [0usize, 1 << 20] {
        let d = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            cache_bytes,
            ..test_opts(d.path())
        };
        let log = Log::open(opts, &names(&["a"])).await.unwrap();
        assert_eq!(log.next_seq(), 1);
        // New cursor at the end of an empty log: 1.
        assert_eq!(log.cursor("a"), Some(1));
        let mut r = log.reader("a").unwrap();
        append_n(&log, 1, 61).await;
        assert_eq!(log.next_seq(), 61);
        assert!(segment_files(d.path()).len() > 5, "rotation happened");
        let got = read_n(&mut r, 60).await;
        assert_eq!(seqs(&got), (1..61).collect::<Vec<_>>());
        for e in &got {
            assert_eq!(e.payload, payload(e.seq));
            assert!(e.appended_at_ms > 0);
        }
        assert_eq!(r.position(), 61);
        // Rewind mid-log and read again (a failed send).
        r.seek(17);
        let again = read_n(&mut r, 3).await;
        assert_eq!(seqs(&again), vec![17, 18, 19]);
        log.close().await.unwrap();
    }
}

#[tokio::test]
async fn batch_append_and_byte_limits() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    let big = Bytes::from(vec![7u8; 1000]);
    let first = log
        .append_batch(vec![payload(1), big.clone(), payload(3)])
        .await
        .unwrap();
    assert_eq!(first, 1);
    assert_eq!(log.next_seq(), 4);
    for cache in [true, false] {
        let mut r = log.reader("a").unwrap();
        if !cache {
            // Tiny cache (1 KiB) cannot hold the big record: force a disk read.
            assert!(!log.inner.shared.lock().cache.covers(1));
        }
        // A byte limit smaller than a record still yields one record.
        assert_eq!(seqs(&r.next(1, 10).await.unwrap()), vec![1]);
        assert_eq!(r.next(10, 10).await.unwrap()[0].payload, big);
        assert_eq!(seqs(&r.next(1 << 20, 10).await.unwrap()), vec![3]);
    }
    let too_big = Bytes::from(vec![0u8; frame::MAX_PAYLOAD_LEN + 1]);
    assert!(matches!(
        log.append(too_big).await,
        Err(LogError::PayloadTooLarge { .. })
    ));
    log.close().await.unwrap();
}

#[tokio::test]
async fn several_cursors_at_different_positions() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "b", "c"]))
        .await
        .unwrap();
    append_n(&log, 1, 41).await;
    log.advance("a", 10);
    log.advance("b", 30);
    log.advance("b", 5); // never moves back
    log.advance("c", 1000); // never past the end
    assert_eq!(log.cursor("a"), Some(10));
    assert_eq!(log.cursor("b"), Some(30));
    assert_eq!(log.cursor("c"), Some(41));
    assert_eq!(log.cursor("zz"), None);
    assert!(matches!(log.reader("zz"), Err(LogError::UnknownCursor(_))));
    let mut ra = log.reader("a").unwrap();
    let mut rb = log.reader("b").unwrap();
    assert_eq!(seqs(&read_n(&mut ra, 3).await), vec![10, 11, 12]);
    assert_eq!(seqs(&read_n(&mut rb, 3).await), vec![30, 31, 32]);
    let sa = log.stats("a").unwrap();
    assert_eq!(sa.backlog_records, 31);
    assert!(sa.backlog_bytes > 0 && sa.oldest_age.is_some());
    let sc = log.stats("c").unwrap();
    assert_eq!(
        (sc.backlog_records, sc.backlog_bytes, sc.oldest_age),
        (0, 0, None)
    );
    assert!(log.stats("b").unwrap().backlog_bytes < sa.backlog_bytes);
    log.close().await.unwrap();
}

#[tokio::test]
async fn reader_waits_for_appends_and_sees_close() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    let mut r = log.reader("a").unwrap();
    let waiter = tokio::spawn(async move {
        let got = r.next(1024, 10).await.unwrap();
        (got, r)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    let mut end = log.watch_end();
    log.append(payload(1)).await.unwrap();
    assert_eq!(*end.borrow_and_update(), 2);
    let (got, mut r) = waiter.await.unwrap();
    assert_eq!(seqs(&got), vec![1]);
    let closing = tokio::spawn(async move { r.next(1024, 10).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    log.close().await.unwrap();
    assert!(matches!(closing.await.unwrap(), Err(LogError::Closed)));
    assert!(matches!(
        log.append(payload(2)).await,
        Err(LogError::Closed)
    ));
    log.close().await.unwrap(); // idempotent
}

#[tokio::test]
async fn deletes_only_below_the_slowest_persisted_cursor() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "b"]))
        .await
        .unwrap();
    append_n(&log, 1, 101).await;
    let before = segment_files(d.path()).len();
    log.advance("a", 101);
    log.advance("b", 40);
    // Nothing persisted yet: nothing may go.
    assert_eq!(log.cleanup().await.unwrap(), 0);
    log.flush_cursors().await.unwrap();
    let removed = log.cleanup().await.unwrap();
    assert!(removed > 0);
    assert_eq!(segment_files(d.path()).len(), before - removed);
    // Every remaining segment still holds something b needs, or is active.
    let first_left = segment::list_segments(&RealFs, d.path()).unwrap()[0].0;
    assert!(first_left <= 40, "segment holding seq 40 kept");
    // b moves in memory only: still nothing more to delete.
    log.advance("b", 90);
    assert_eq!(log.cleanup().await.unwrap(), 0);
    assert_eq!(log.stats("b").unwrap().persisted, 40);
    log.flush_cursors().await.unwrap();
    assert!(log.cleanup().await.unwrap() > 0);
    let mut rb = log.reader("b").unwrap();
    assert_eq!(
        seqs(&read_n(&mut rb, 11).await),
        (90..101).collect::<Vec<_>>()
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn reopen_after_close_yields_same_records_and_cursors() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "b"]))
        .await
        .unwrap();
    append_n(&log, 1, 31).await;
    log.advance("a", 12);
    log.close().await.unwrap();
    drop(log);
    let log = Log::open(test_opts(d.path()), &names(&["a", "b"]))
        .await
        .unwrap();
    let rep = log.recovery().clone();
    assert_eq!((rep.records, rep.next_seq, rep.first_seq), (30, 31, 1));
    assert_eq!(rep.torn_bytes_truncated + rep.bad_regions, 0);
    assert!(rep.gaps.is_empty());
    assert_eq!(log.cursor("a"), Some(12));
    assert_eq!(log.cursor("b"), Some(1));
    let mut r = log.reader("b").unwrap();
    let got = read_n(&mut r, 30).await;
    assert!(got.iter().all(|e| e.payload == payload(e.seq)));
    assert_eq!(seqs(&got), (1..31).collect::<Vec<_>>());
    append_n(&log, 31, 35).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn new_cursor_starts_at_end_and_removed_cursor_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 11).await;
    log.close().await.unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "node.b/x"]))
        .await
        .unwrap();
    assert_eq!(log.recovery().new_cursors, names(&["node.b/x"]));
    assert_eq!(log.cursor("a"), Some(1));
    assert_eq!(log.cursor("node.b/x"), Some(11));
    assert!(d.path().join("cursors").join("node%2Eb%2Fx.cur").exists());
    log.close().await.unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["node.b/x"]))
        .await
        .unwrap();
    assert_eq!(log.recovery().removed_cursors, vec!["a.cur".to_string()]);
    assert_eq!(log.cursor("a"), None);
    assert!(!d.path().join("cursors").join("a.cur").exists());
    // With `a` gone, only b's position holds segments back.
    log.advance("node.b/x", 11);
    log.flush_cursors().await.unwrap();
    assert!(log.cleanup().await.unwrap() > 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn max_backlog_bytes_forces_a_skip_for_that_cursor_only() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        max_backlog_bytes: 1000,
        cache_bytes: 1 << 20,
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["slow", "fast"])).await.unwrap();
    let mut r = log.reader("slow").unwrap();
    for i in 1..=50u64 {
        log.append(Bytes::from(vec![i as u8; 100])).await.unwrap();
    }
    log.advance("fast", 51);
    assert_eq!(log.stats("slow").unwrap().backlog_bytes, 50 * 124);
    assert_eq!(log.enforce_limits(), 1);
    let s = log.stats("slow").unwrap();
    assert!(s.backlog_bytes <= 1000, "{s:?}");
    assert!(
        s.backlog_bytes > 1000 - 124,
        "skips no more than needed: {s:?}"
    );
    assert!(s.needs_repair);
    assert_eq!(s.skipped_records, s.position - 1);
    assert_eq!(s.position, 51 - 8);
    // The existing reader jumps forward with the cursor.
    let got = r.next(1 << 20, 1).await.unwrap();
    assert_eq!(got[0].seq, s.position);
    let f = log.stats("fast").unwrap();
    assert!(!f.needs_repair && f.skipped_records == 0);
    // Persisted with the flag; clearing it is an explicit operator action.
    log.flush_cursors().await.unwrap();
    log.close().await.unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["slow", "fast"]))
        .await
        .unwrap();
    let s2 = log.stats("slow").unwrap();
    assert!(s2.needs_repair && s2.skipped_records == s.skipped_records);
    assert!(log.clear_needs_repair("slow"));
    assert!(!log.stats("slow").unwrap().needs_repair);
    log.close().await.unwrap();
}

#[tokio::test]
async fn max_age_forces_a_skip_from_disk_index() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        max_age: Duration::from_millis(1000),
        cache_bytes: 0,
        segment_bytes: 1 << 20,
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["a"])).await.unwrap();
    append_n(&log, 1, 21).await;
    assert_eq!(log.enforce_limits(), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    append_n(&log, 21, 26).await;
    assert_eq!(log.enforce_limits(), 1);
    // One segment, no cache: the time-spaced index point at 21 is exact.
    let s = log.stats("a").unwrap();
    assert_eq!((s.position, s.skipped_records), (21, 20), "{s:?}");
    assert!(s.needs_repair);
    assert!(s.oldest_age.unwrap() < Duration::from_millis(1000));
    log.close().await.unwrap();
}

#[tokio::test]
async fn background_flusher_and_interval_fsync() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        fsync: FsyncPolicy::Interval(Duration::from_millis(10)),
        cursor_flush_interval: Duration::from_millis(10),
        housekeeping_interval: Duration::from_millis(10),
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["a"])).await.unwrap();
    append_n(&log, 1, 51).await;
    log.advance("a", 51);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.stats("a").unwrap().persisted != 51 || segment_files(d.path()).len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "flusher/cleanup did not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(log); // without close: the writer still syncs and exits
    let opts = LogOptions {
        fsync: FsyncPolicy::Never,
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["a"])).await.unwrap();
    assert_eq!(log.next_seq(), 51);
    assert_eq!(log.cursor("a"), Some(51));
    append_n(&log, 51, 60).await;
    log.close().await.unwrap();
}

/// Records read from disk are slices of the scanner's read window, not
/// copies; a window the scanner moved past is held only by those slices.
#[tokio::test]
async fn disk_reads_slice_the_window() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        segment_bytes: 64 << 20,
        cache_bytes: 0,
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["a"])).await.unwrap();
    append_n(&log, 1, 11).await;
    // Two records of 600 KB: each is read in a window of its own.
    let big = |b: u8| Bytes::from(vec![b; 600_000]);
    log.append_batch(vec![big(1), big(2)]).await.unwrap();
    let mut r = log.reader("a").unwrap();
    let small = r.next(1 << 20, 10).await.unwrap();
    assert_eq!(seqs(&small), (1..11).collect::<Vec<_>>());
    for (e, next) in small.iter().zip(&small[1..]) {
        assert_eq!(e.payload, payload(e.seq));
        let (a, b) = (e.payload.head(), next.payload.head());
        // Consecutive frames on disk: the next payload starts one frame
        // header after this one ends, in the same buffer.
        assert_eq!(
            a.as_ptr() as usize + a.len() + frame::FRAME_HEADER_LEN,
            b.as_ptr() as usize,
            "records {} and {} are not slices of one window",
            e.seq,
            next.seq
        );
    }
    drop(small);
    let first = r.next(1, 1).await.unwrap().remove(0);
    assert_eq!(first.payload, big(1));
    assert!(
        !first.payload.head().is_unique(),
        "the scanner holds its window"
    );
    let second = r.next(1, 1).await.unwrap().remove(0);
    assert_eq!(second.payload, big(2));
    assert!(
        first.payload.head().is_unique(),
        "the scanner kept an old window"
    );
    log.close().await.unwrap();
}
