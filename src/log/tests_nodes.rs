//! Damaged cursor state on reopen: deleted and corrupt cursor files, the
//! manifest of known nodes, new nodes, records lost to damaged segments, and
//! the modes of the files the log creates.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::tests::{append_n, names, read_n, segment_files, test_opts};
use super::tests_damage::frame_offset;
use super::*;

async fn open(dir: &Path, n: &[&str]) -> Log {
    Log::open(test_opts(dir), &names(n)).await.unwrap()
}

fn cursor_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("cursors").join(format!("{name}.cur"))
}

#[tokio::test]
async fn deleted_cursor_of_a_known_node_redelivers_its_backlog_and_flags_it() {
    let d = tempfile::tempdir().unwrap();
    let log = open(d.path(), &["a", "b"]).await;
    append_n(&log, 1, 41).await;
    log.advance("a", 41);
    log.close().await.unwrap();
    fs::remove_file(cursor_file(d.path(), "b")).unwrap();

    let log = open(d.path(), &["a", "b"]).await;
    let rep = log.recovery().clone();
    assert_eq!(rep.missing_cursors, names(&["b"]));
    assert!(rep.new_cursors.is_empty() && rep.backfill_cursors.is_empty());
    // Nothing of the backlog is skipped, and the loss of the file is flagged.
    assert_eq!(log.cursor("b"), Some(1));
    let s = log.stats("b").unwrap();
    assert!(s.needs_repair && !s.needs_backfill, "{s:?}");
    assert_eq!(s.backlog_records, 40);
    let mut r = log.reader("b").unwrap();
    assert_eq!(read_n(&mut r, 40).await.len(), 40);
    let a = log.stats("a").unwrap();
    assert!(!a.needs_repair && !a.needs_backfill && a.position == 41);
    log.close().await.unwrap();
    // The flag is durable.
    let log = open(d.path(), &["a", "b"]).await;
    assert!(log.stats("b").unwrap().needs_repair);
    log.close().await.unwrap();
}

#[tokio::test]
async fn new_node_starts_at_the_end_flagged_for_backfill_until_cleared() {
    let d = tempfile::tempdir().unwrap();
    // A brand-new log flags nobody.
    let log = open(d.path(), &["a", "b"]).await;
    let rep = log.recovery().clone();
    assert_eq!(rep.new_cursors, names(&["a", "b"]));
    assert!(rep.backfill_cursors.is_empty() && rep.missing_cursors.is_empty());
    for n in ["a", "b"] {
        let s = log.stats(n).unwrap();
        assert!(!s.needs_repair && !s.needs_backfill, "{s:?}");
    }
    append_n(&log, 1, 11).await;
    log.close().await.unwrap();

    let log = open(d.path(), &["a", "b", "c"]).await;
    assert_eq!(log.recovery().backfill_cursors, names(&["c"]));
    assert_eq!(log.cursor("c"), Some(11));
    let s = log.stats("c").unwrap();
    assert!(s.needs_backfill && !s.needs_repair, "{s:?}");
    assert!(!log.stats("a").unwrap().needs_backfill);
    log.close().await.unwrap();

    // Durable across reopen, cleared by the operator.
    let log = open(d.path(), &["a", "b", "c"]).await;
    assert!(log.stats("c").unwrap().needs_backfill);
    assert!(log.clear_needs_repair("c"));
    log.close().await.unwrap();
    let log = open(d.path(), &["a", "b", "c"]).await;
    assert!(!log.stats("c").unwrap().needs_backfill);
    log.close().await.unwrap();
}

#[tokio::test]
async fn upgrade_without_a_manifest_flags_only_nodes_without_a_cursor() {
    let d = tempfile::tempdir().unwrap();
    let log = open(d.path(), &["a"]).await;
    append_n(&log, 1, 6).await;
    log.advance("a", 3);
    log.close().await.unwrap();
    fs::remove_file(manifest::manifest_path(d.path())).unwrap();

    let log = open(d.path(), &["a", "c"]).await;
    let a = log.stats("a").unwrap();
    assert!(
        !a.needs_repair && !a.needs_backfill && a.position == 3,
        "{a:?}"
    );
    assert!(log.stats("c").unwrap().needs_backfill);
    log.close().await.unwrap();
    assert!(manifest::manifest_path(d.path()).exists());
}

#[tokio::test]
async fn corrupt_cursor_keeps_a_saved_needs_repair() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        max_backlog_bytes: 100,
        ..test_opts(d.path())
    };
    let log = Log::open(opts, &names(&["a"])).await.unwrap();
    append_n(&log, 1, 21).await;
    assert_eq!(log.enforce_limits(), 1);
    assert!(log.stats("a").unwrap().needs_repair);
    log.close().await.unwrap();
    fs::write(cursor_file(d.path(), "a"), b"{\"next\": 3").unwrap();

    let log = open(d.path(), &["a"]).await;
    assert_eq!(log.recovery().corrupt_cursors, names(&["a"]));
    assert_eq!(log.cursor("a"), Some(1));
    assert!(log.stats("a").unwrap().needs_repair);
    log.close().await.unwrap();
}

#[tokio::test]
async fn records_lost_to_damage_flag_every_node_that_had_not_passed_them() {
    let d = tempfile::tempdir().unwrap();
    let log = open(d.path(), &["a", "b", "c"]).await;
    append_n(&log, 1, 31).await;
    log.advance("b", 31);
    log.advance("c", 10);
    log.close().await.unwrap();
    // Damage seq 2 in the first (sealed) segment; corrupt a's cursor file.
    let first = segment_files(d.path()).remove(0);
    let off = frame_offset(&first, 2);
    let mut b = fs::read(&first).unwrap();
    b[off + frame::FRAME_HEADER_LEN + 3] ^= 0x04;
    fs::write(&first, &b).unwrap();
    fs::write(cursor_file(d.path(), "a"), b"garbage").unwrap();

    let log = open(d.path(), &["a", "b", "c"]).await;
    let rep = log.recovery().clone();
    assert_eq!(rep.gaps, vec![(2, 3)]);
    assert_eq!(rep.corrupt_cursors, names(&["a"]));
    // a (corrupt: position unknown) lost seq 2; b had passed it; c at 10 too.
    assert!(log.stats("a").unwrap().needs_repair);
    assert!(!log.stats("b").unwrap().needs_repair);
    assert!(!log.stats("c").unwrap().needs_repair);
    assert!(rep.damaged_cursors.contains(&"a".to_string()));
    log.close().await.unwrap();
}

#[tokio::test]
async fn files_are_private() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data").join("log");
    let log = open(&dir, &["a"]).await;
    append_n(&log, 1, 31).await;
    log.advance("a", 5);
    log.flush_cursors().await.unwrap();
    log.close().await.unwrap();
    let mut seen = 0;
    let mut todo = vec![dir.clone()];
    while let Some(p) = todo.pop() {
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", p.display());
            seen += 1;
        }
    }
    // Segments, LOCK, manifest, cursor.
    assert!(seen >= 5, "{seen}");
}

#[tokio::test]
async fn corrupt_manifest_counts_as_missing_and_is_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let log = open(d.path(), &["a", "b"]).await;
    append_n(&log, 1, 6).await;
    log.close().await.unwrap();
    let m = manifest::manifest_path(d.path());
    fs::write(&m, b"{\"version\":1,\"nodes\":{}}").unwrap();
    fs::remove_file(cursor_file(d.path(), "b")).unwrap();

    let log = open(d.path(), &["a", "b"]).await;
    // b cannot be told from a new node: at the end, flagged for backfill.
    assert_eq!(log.recovery().backfill_cursors, names(&["b"]));
    assert_eq!(log.cursor("b"), Some(6));
    assert!(!log.stats("a").unwrap().needs_backfill);
    log.close().await.unwrap();
    assert_eq!(
        manifest::load(&RealFs, d.path())
            .unwrap()
            .unwrap()
            .unwrap()
            .len(),
        2
    );
}
