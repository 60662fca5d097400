//! The fault-injection cases of `tests_faults` on the `O_DIRECT` layout
//! (groups written from the last block boundary, zero padding past the good
//! end; [`super::direct`]). [`FaultyFs`] opens direct files buffered, so
//! the layout and the writer's rollback and trimming run on any filesystem.

use std::path::Path;
use std::sync::Arc;

use super::direct::BLOCK;
use super::fs::{EINVAL, EIO, ENOSPC};
use super::tests::{append_n, names, payload, segment_files, test_opts};
use super::tests_faults::{assert_readable, eight_appends_fail_in_fsync};
use super::*;

fn direct_opts(dir: &Path, fs: Arc<FaultyFs>) -> LogOptions {
    LogOptions {
        segment_bytes: 1 << 20,
        direct_io: true,
        fs,
        ..test_opts(dir)
    }
}

fn active(dir: &Path) -> Vec<u8> {
    std::fs::read(segment_files(dir).pop().unwrap()).unwrap()
}

/// The active file without its padding (payloads never end in a zero byte).
fn good(dir: &Path) -> Vec<u8> {
    let mut b = active(dir);
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

/// A direct-layout log on a `FaultyFs` holding seqs `1..next`, and its
/// good bytes.
async fn open_faulty(dir: &Path, next: u64) -> (Log, Arc<FaultyFs>, Vec<u8>) {
    let fs = FaultyFs::new(".seg");
    let log = Log::open(direct_opts(dir, fs.clone()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, next).await;
    (log, fs, good(dir))
}

async fn reopen_clean(dir: &Path, next: u64) {
    let log = Log::open(test_opts(dir), &names(&["a"])).await.unwrap();
    let rep = log.recovery();
    assert_eq!((rep.torn_bytes_truncated, rep.bad_regions), (0, 0));
    assert_eq!(log.next_seq(), next);
    assert_readable(&log, next).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn direct_layout_pads_while_open_and_close_trims() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(
        direct_opts(d.path(), FaultyFs::new(".none")),
        &names(&["a"]),
    )
    .await
    .unwrap();
    append_n(&log, 1, 20).await;
    let open = active(d.path());
    assert_eq!(open.len() as u64 % BLOCK, 0, "padded to a block");
    let g = good(d.path());
    assert!(g.len() < open.len());
    log.close().await.unwrap();
    assert_eq!(active(d.path()), g, "close cuts the padding off");
    reopen_clean(d.path(), 20).await;
}

#[tokio::test]
async fn direct_sealed_segments_are_trimmed() {
    let d = tempfile::tempdir().unwrap();
    // 256-byte segments: every few appends seal one.
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 40).await;
    let files = segment_files(d.path());
    assert!(files.len() > 3);
    for f in &files[..files.len() - 1] {
        let b = std::fs::read(f).unwrap();
        assert_ne!(b.last(), Some(&0), "{} keeps padding", f.display());
    }
    log.close().await.unwrap();
    reopen_clean(d.path(), 40).await;
}

#[tokio::test]
async fn direct_full_disk_is_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let (log, fs, g) = open_faulty(d.path(), 6).await;
    fs.fail_writes(0, ENOSPC);
    let err = log.append(payload(6)).await.unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    assert_eq!(active(d.path()), g, "cut back to the good end, padding too");
    assert_eq!(log.next_seq(), 6);
    fs.clear();
    append_n(&log, 6, 9).await;
    assert_readable(&log, 9).await;
    log.close().await.unwrap();
    reopen_clean(d.path(), 9).await;
}

#[tokio::test]
async fn direct_fsync_failure_is_cut_back_before_waiters_hear() {
    let d = tempfile::tempdir().unwrap();
    let (log, fs, g) = open_faulty(d.path(), 4).await;
    fs.fail_syncs(0, EIO);
    eight_appends_fail_in_fsync(&log).await;
    // Checked as soon as the waiters heard: the stage answers them only
    // after the writer's rollback.
    assert_eq!(active(d.path()), g);
    assert_eq!(log.next_seq(), 4);
    fs.clear();
    append_n(&log, 4, 10).await;
    assert_readable(&log, 10).await;
    log.close().await.unwrap();
    reopen_clean(d.path(), 10).await;
}

#[tokio::test]
async fn direct_torn_write_then_crash_recovers() {
    let d = tempfile::tempdir().unwrap();
    let (log, fs, g) = open_faulty(d.path(), 6).await;
    let tail = g.len() as u64 % BLOCK;
    // The crash keeps the rewritten tail and 10 bytes of the new frame.
    fs.tear_write(0, tail as usize + 10);
    assert!(log.append(payload(6)).await.is_err());
    assert!(log.append(payload(6)).await.is_err());
    assert_eq!(log.next_seq(), 6);
    drop(log);
    let after = active(d.path());
    assert_eq!(
        &after[..g.len()],
        &g[..],
        "the good bytes survive the torn write"
    );

    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    let rep = log.recovery();
    assert_eq!(rep.next_seq, 6);
    assert_eq!(rep.torn_bytes_truncated, (after.len() - g.len()) as u64);
    assert!(rep.torn_bytes_truncated >= 10);
    assert_eq!(active(d.path()), g);
    assert_eq!(log.append(payload(6)).await.unwrap(), 6);
    assert_readable(&log, 7).await;
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_filesystem_without_direct_io_gets_buffered_writes() {
    let d = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(".none");
    fs.refuse_direct();
    let log = Log::open(direct_opts(d.path(), fs.clone()), &names(&["a"]))
        .await
        .unwrap();
    append_n(&log, 1, 30).await;
    // Buffered layout: the file ends at the good end, no padding.
    assert_eq!(active(d.path()), good(d.path()));
    assert_ne!(active(d.path()).len() as u64 % BLOCK, 0);
    log.close().await.unwrap();
    reopen_clean(d.path(), 30).await;
}

#[tokio::test]
async fn a_refused_direct_write_falls_back_to_buffered_writes() {
    let d = tempfile::tempdir().unwrap();
    let (log, fs, _) = open_faulty(d.path(), 5).await;
    assert_eq!(active(d.path()).len() as u64 % BLOCK, 0, "direct layout");
    // The next write is refused as O_DIRECT refuses a misaligned one.
    fs.fail_next_write(EINVAL);
    assert_eq!(log.append(payload(5)).await.unwrap(), 5, "not an error");
    append_n(&log, 6, 12).await;
    // Buffered from then on: no padding past the good end.
    assert_eq!(active(d.path()), good(d.path()));
    assert_readable(&log, 12).await;
    log.close().await.unwrap();
    reopen_clean(d.path(), 12).await;
}
