//! Recovery tests: damaged, truncated and missing files on reopen.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::tests::{append_n, names, payload, read_n, segment_files, test_opts};
use super::*;

async fn make_log(dir: &Path, n: u64) {
    let log = Log::open(test_opts(dir), &names(&["a"])).await.unwrap();
    append_n(&log, 1, n + 1).await;
    log.close().await.unwrap();
}

async fn reopen(dir: &Path) -> Log {
    Log::open(test_opts(dir), &names(&["a"])).await.unwrap()
}

fn seqs(v: &[Entry]) -> Vec<u64> {
    v.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn torn_tail_is_truncated_on_reopen() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 10).await;
    let active = segment_files(d.path()).pop().unwrap();
    let good_len = fs::metadata(&active).unwrap().len();
    // A frame whose write was torn: header and half the payload.
    let mut torn = Vec::new();
    frame::encode_frame(&mut torn, 11, 1, b"a payload that never completed");
    torn.truncate(torn.len() / 2);
    OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    let log = reopen(d.path()).await;
    let rep = log.recovery();
    assert_eq!(rep.torn_bytes_truncated, torn.len() as u64);
    assert_eq!((rep.bad_regions, rep.next_seq), (0, 11));
    assert_eq!(fs::metadata(&active).unwrap().len(), good_len);
    assert_eq!(log.append(payload(11)).await.unwrap(), 11);
    let mut r = log.reader("a").unwrap();
    let got = read_n(&mut r, 11).await;
    assert_eq!(seqs(&got), (1..12).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.payload == payload(e.seq)));
    log.close().await.unwrap();
}

#[tokio::test]
async fn zeroed_tail_and_torn_header_are_repaired() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 5).await;
    let active = segment_files(d.path()).pop().unwrap();
    let mut f = OpenOptions::new().append(true).open(&active).unwrap();
    f.write_all(&[0u8; 300]).unwrap();
    drop(f);
    let log = reopen(d.path()).await;
    assert_eq!(log.recovery().torn_bytes_truncated, 300);
    assert_eq!(log.next_seq(), 6);
    log.close().await.unwrap();
    // A segment created but torn before its header was complete.
    let torn = segment::segment_path(d.path(), 6);
    fs::write(&torn, b"INMA").unwrap();
    let log = reopen(d.path()).await;
    assert_eq!(log.recovery().torn_bytes_truncated, 4);
    assert_eq!(log.append(payload(6)).await.unwrap(), 6);
    log.close().await.unwrap();
}

/// Byte offset of the frame with `seq` in a segment file.
pub(crate) fn frame_offset(path: &Path, seq: u64) -> usize {
    let b = fs::read(path).unwrap();
    let mut off = frame::SEGMENT_HEADER_LEN as usize;
    loop {
        let h = frame::FrameHeader::decode(&b[off..]).unwrap();
        if h.seq == seq {
            return off;
        }
        off += frame::FRAME_HEADER_LEN + h.len as usize;
    }
}

#[tokio::test]
async fn flipped_bit_in_sealed_segment_is_skipped_and_counted() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 30).await;
    let first = segment_files(d.path()).remove(0);
    // Seq 2 is the second frame of the first segment.
    let off = frame_offset(&first, 2);
    let mut b = fs::read(&first).unwrap();
    b[off + frame::FRAME_HEADER_LEN + 3] ^= 0x04;
    fs::write(&first, &b).unwrap();
    let log = reopen(d.path()).await;
    let rep = log.recovery().clone();
    assert_eq!((rep.bad_regions, rep.bad_frames_skipped), (1, 1));
    assert_eq!(rep.gaps, vec![(2, 3)]);
    assert_eq!(rep.records, 29);
    assert_eq!(rep.damaged_cursors, names(&["a"]));
    assert!(log.stats("a").unwrap().needs_repair);
    // The sealed file is left as it was (evidence), readers step over it.
    assert_eq!(fs::read(&first).unwrap(), b);
    let mut r = log.reader("a").unwrap();
    let got = read_n(&mut r, 29).await;
    let want: Vec<u64> = (1..31).filter(|s| *s != 2).collect();
    assert_eq!(seqs(&got), want);
    log.close().await.unwrap();
}

#[tokio::test]
async fn corrupted_length_in_sealed_segment_resyncs() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 30).await;
    let first = segment_files(d.path()).remove(0);
    let off = frame_offset(&first, 1);
    let mut b = fs::read(&first).unwrap();
    b[off + 2] = 0x7f; // len of seq 1 becomes huge
    fs::write(&first, &b).unwrap();
    let log = reopen(d.path()).await;
    let rep = log.recovery().clone();
    assert_eq!((rep.bad_regions, rep.bad_frames_skipped), (1, 1));
    assert_eq!(rep.gaps, vec![(1, 2)]);
    let mut r = log.reader("a").unwrap();
    assert_eq!(seqs(&read_n(&mut r, 29).await), (2..31).collect::<Vec<_>>());
    log.close().await.unwrap();
}

#[tokio::test]
async fn missing_segment_file_is_tolerated() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 40).await;
    let files = segment::list_segments(&RealFs, d.path()).unwrap();
    assert!(files.len() >= 4);
    let (gone_first, gone) = files[1].clone();
    let next_first = files[2].0;
    fs::remove_file(&gone).unwrap();
    let log = reopen(d.path()).await;
    let rep = log.recovery().clone();
    assert_eq!(rep.gaps, vec![(gone_first, next_first)]);
    assert_eq!(rep.segments, files.len() - 1);
    let mut r = log.reader("a").unwrap();
    let n = 40 - (next_first - gone_first) as usize;
    let got = read_n(&mut r, n).await;
    let want: Vec<u64> = (1..41)
        .filter(|s| *s < gone_first || *s >= next_first)
        .collect();
    assert_eq!(seqs(&got), want);
    log.close().await.unwrap();
}

#[tokio::test]
async fn segment_with_bad_header_is_moved_aside() {
    let d = tempfile::tempdir().unwrap();
    make_log(d.path(), 20).await;
    let first = segment_files(d.path()).remove(0);
    let mut b = fs::read(&first).unwrap();
    b[0] = b'X';
    fs::write(&first, &b).unwrap();
    let log = reopen(d.path()).await;
    let rep = log.recovery().clone();
    assert_eq!(rep.corrupt_segments.len(), 1);
    assert!(rep.corrupt_segments[0].exists() && !first.exists());
    assert!(rep.first_seq > 1);
    // The cursor pointed into the lost segment: flagged, and the reader jumps.
    assert!(log.stats("a").unwrap().needs_repair);
    let mut r = log.reader("a").unwrap();
    assert_eq!(r.next(1 << 20, 1).await.unwrap()[0].seq, rep.first_seq);
    log.close().await.unwrap();
}

#[tokio::test]
async fn stale_corrupt_and_missing_cursor_files() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "b"]))
        .await
        .unwrap();
    append_n(&log, 1, 51).await;
    log.advance("a", 20);
    log.advance("b", 30);
    log.flush_cursors().await.unwrap();
    let a_file = d.path().join("cursors").join("a.cur");
    let stale = fs::read(&a_file).unwrap();
    log.advance("a", 45);
    log.close().await.unwrap();

    // Stale: an older but valid file means re-delivery from its value.
    fs::write(&a_file, &stale).unwrap();
    // Corrupt: garbage means re-delivery from the oldest record.
    fs::write(d.path().join("cursors").join("b.cur"), b"{\"next\": 3").unwrap();
    let log = Log::open(test_opts(d.path()), &names(&["a", "b", "c"]))
        .await
        .unwrap();
    let rep = log.recovery().clone();
    assert_eq!(log.cursor("a"), Some(20));
    assert_eq!(rep.corrupt_cursors, names(&["b"]));
    assert_eq!(log.cursor("b"), Some(1));
    // Missing (new name): starts at the end.
    assert_eq!(rep.new_cursors, names(&["c"]));
    assert_eq!(log.cursor("c"), Some(51));
    // The repaired values are persisted immediately.
    assert!(d.path().join("cursors").join("c.cur").exists());
    let mut rb = log.reader("b").unwrap();
    assert_eq!(seqs(&read_n(&mut rb, 2).await), vec![1, 2]);
    log.close().await.unwrap();

    // A cursor file beyond the end (log files lost) is clamped to the end.
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    log.advance("a", 51);
    log.close().await.unwrap();
    for p in segment_files(d.path()) {
        fs::remove_file(p).unwrap();
    }
    let log = Log::open(test_opts(d.path()), &names(&["a"]))
        .await
        .unwrap();
    // Seqs never go backwards for a node: the log restarts at its cursor.
    assert_eq!(log.next_seq(), 51);
    assert_eq!(log.append(payload(51)).await.unwrap(), 51);
    log.close().await.unwrap();
}
