//! Fault-injection tests through [`FaultyFs`]: a full disk, a failing fsync,
//! a write torn by a crash, and the directory lock.

use std::path::Path;
use std::sync::Arc;

use super::fs::{EIO, ENOSPC};
use super::tests::{append_n, names, payload, read_n, segment_files, test_opts};
use super::*;

/// Test options with one big segment and the given fs.
pub(crate) fn faulty_opts(dir: &Path, fs: Arc<FaultyFs>) -> LogOptions {
    LogOptions {
        segment_bytes: 1 << 20,
        // The buffered layout (the file ends at the good end); the direct
        // one has the same cases in `tests_direct`.
        direct_io: false,
        fs,
        ..test_opts(dir)
    }
}

fn active_len(dir: &Path) -> u64 {
    let p = segment_files(dir).pop().unwrap();
    std::fs::metadata(p).unwrap().len()
}

/// Eight concurrent appends (one or more groups) all fail with the fsync's
/// EIO (armed by the caller).
pub(crate) async fn eight_appends_fail_in_fsync(log: &Log) {
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.append(payload(100 + i)).await },
        ));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("fsync") && err.contains("os error 5"), "{err}");
    }
}

/// Reads everything from seq 1 and checks seqs and payloads are 1..to.
pub(crate) async fn assert_readable(log: &Log, to: u64) {
    let mut r = log.reader("a").unwrap();
    let got = read_n(&mut r, (to - 1) as usize).await;
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.payload, payload(e.seq));
    }
}

#[tokio::test]
async fn full_disk_is_rolled_back_and_reported_as_storage_full() {
    let d = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(".seg");
    let log = Log::open(faulty_opts(d.path(), fs.clone()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 6).await;
    let good = active_len(d.path());
    let mut end = log.watch_end();
    end.mark_unchanged();

    fs.fail_writes(0, ENOSPC);
    let err = log.append(payload(6)).await.unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    // The short write was cut back; nothing was published.
    assert_eq!(active_len(d.path()), good);
    assert_eq!(log.next_seq(), 6);
    assert!(!end.has_changed().unwrap());
    let err = log.append_batch(vec![payload(6), payload(7)]).await;
    assert!(err.is_err());
    assert_eq!(active_len(d.path()), good);

    fs.clear();
    assert_eq!(log.append(payload(6)).await.unwrap(), 6);
    assert_readable(&log, 7).await;
    log.close().await.unwrap();

    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    assert_eq!(log.recovery().torn_bytes_truncated, 0);
    assert_eq!(log.next_seq(), 7);
    assert_readable(&log, 7).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn fsync_failure_fails_the_whole_group_and_publishes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(".seg");
    let log = Log::open(faulty_opts(d.path(), fs.clone()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 4).await;
    let good = active_len(d.path());

    fs.fail_syncs(0, EIO);
    eight_appends_fail_in_fsync(&log).await;
    assert_eq!(log.next_seq(), 4);
    assert_eq!(active_len(d.path()), good);
    assert!(log.stats("a").unwrap().backlog_records == 3);

    fs.clear();
    append_n(&log, 4, 10).await;
    assert_readable(&log, 10).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn torn_write_then_crash_recovers_the_last_complete_frame() {
    let d = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(".seg");
    let log = Log::open(faulty_opts(d.path(), fs.clone()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 6).await;
    let good = active_len(d.path());
    fs.tear_write(0, 10);
    assert!(log.append(payload(6)).await.is_err());
    // The rollback could not run: the torn bytes are still there.
    assert_eq!(active_len(d.path()), good + 10);
    // Later appends fail too (the fs is "crashed"), nothing is published.
    assert!(log.append(payload(6)).await.is_err());
    assert_eq!(log.next_seq(), 6);
    drop(log);

    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    let rep = log.recovery();
    assert_eq!((rep.torn_bytes_truncated, rep.next_seq), (10, 6));
    assert_eq!(active_len(d.path()), good);
    assert_eq!(log.append(payload(6)).await.unwrap(), 6);
    assert_readable(&log, 7).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn second_open_of_the_same_dir_is_refused_until_close() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    let err = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Locked(_)), "{err}");
    assert!(err.to_string().contains("another inmate process"), "{err}");
    // The refused open changed nothing.
    append_n(&log, 1, 3).await;
    log.close().await.unwrap();
    // close releases the lock even while handles remain.
    let again = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    assert_eq!(again.next_seq(), 3);
    drop(log);
    again.close().await.unwrap();
}
