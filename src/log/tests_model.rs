//! Model-based property test: random appends, advances, reads, cleanups,
//! reopens, crashes and injected faults against a trivial in-memory model (a
//! Vec of payloads and a map of cursor positions). Small segments and a tiny
//! cache make reads hit both the cache and the disk, and cleanup delete
//! segments under the readers.
//!
//! The invariant: every acknowledged append is readable, also after a crash
//! (drop without `close`) and reopen; an append that failed (full disk,
//! failed fsync, a write torn by a crash) never appears. After a crash a
//! cursor is back at its last persisted value.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::fs::{EIO, ENOSPC};
use super::tests::{names, test_opts};
use super::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    Advance(usize, u64),
    Read(usize, usize),
    Cleanup,
    Reopen,
    /// Drop without close, reopen.
    Crash,
    /// The append fails: a full disk (false) or a failed fsync (true).
    Fault(Vec<u8>, bool),
    /// The append's write is torn after `keep` bytes, then a crash.
    TornCrash(Vec<u8>, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..90).prop_map(Op::Append),
        1 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..4)
            .prop_map(Op::AppendBatch),
        2 => (0..2usize, 0..12u64).prop_map(|(c, d)| Op::Advance(c, d)),
        3 => (0..2usize, 1..8usize).prop_map(|(c, k)| Op::Read(c, k)),
        1 => Just(Op::Cleanup),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (proptest::collection::vec(any::<u8>(), 0..40), any::<bool>())
            .prop_map(|(p, s)| Op::Fault(p, s)),
        1 => (proptest::collection::vec(any::<u8>(), 0..40), 0..64usize)
            .prop_map(|(p, k)| Op::TornCrash(p, k)),
    ]
}

const CURSORS: [&str; 2] = ["n0", "n1"];

async fn open(dir: &std::path::Path, always: bool) -> (Log, Arc<FaultyFs>) {
    let fs = FaultyFs::new(".seg");
    let opts = LogOptions {
        fs: fs.clone(),
        segment_bytes: 200,
        cache_bytes: 300,
        fsync: if always {
            FsyncPolicy::Always
        } else {
            FsyncPolicy::Never
        },
        ..test_opts(dir)
    };
    (Log::open(opts, &names(&CURSORS)).await.unwrap(), fs)
}

/// A crash makes a cursor stale (back to a persisted value: at least what
/// the model knows was flushed, at most its in-memory value; the background
/// flusher may have run in between), never ahead.
fn after_crash(log: &Log, cur: &mut HashMap<&str, u64>, persisted: &mut HashMap<&str, u64>) {
    for c in CURSORS {
        let got = log.cursor(c).unwrap();
        assert!(persisted[c] <= got && got <= cur[c], "cursor {c}: {got}");
        cur.insert(c, got);
        persisted.insert(c, got);
    }
}

async fn run(ops: Vec<Op>, always: bool) {
    let d = tempfile::tempdir().unwrap();
    let (mut log, mut fs) = open(d.path(), always).await;
    let mut model: Vec<Bytes> = Vec::new();
    let mut cur: HashMap<&str, u64> = CURSORS.iter().map(|c| (*c, 1)).collect();
    let mut persisted = cur.clone();
    for op in ops {
        let end = model.len() as u64 + 1;
        match op {
            Op::Append(p) => {
                let seq = log.append(Bytes::from(p.clone())).await.unwrap();
                assert_eq!(seq, end);
                model.push(Bytes::from(p));
            }
            Op::AppendBatch(ps) => {
                let batch: Vec<Bytes> = ps.into_iter().map(Bytes::from).collect();
                let seq = log.append_batch(batch.clone()).await.unwrap();
                assert_eq!(seq, end);
                model.extend(batch);
            }
            Op::Advance(c, delta) => {
                let name = CURSORS[c];
                let m = cur.get_mut(name).unwrap();
                log.advance(name, *m + delta);
                *m = (*m + delta).min(end);
            }
            Op::Read(c, k) => {
                let name = CURSORS[c];
                let at = cur[name];
                if at < end {
                    let mut r = log.reader(name).unwrap();
                    let got = r.next(usize::MAX, k).await.unwrap();
                    // "Up to k": a disk read may stop early at a segment end.
                    let want_n = k.min((end - at) as usize);
                    assert!(!got.is_empty() && got.len() <= want_n);
                    for (i, e) in got.iter().enumerate() {
                        assert_eq!(e.seq, at + i as u64);
                        assert_eq!(e.payload, model[(e.seq - 1) as usize]);
                    }
                }
            }
            Op::Cleanup => {
                log.flush_cursors().await.unwrap();
                persisted = cur.clone();
                log.cleanup().await.unwrap();
            }
            Op::Reopen => {
                log.close().await.unwrap();
                persisted = cur.clone();
                (log, fs) = open(d.path(), always).await;
                let rep = log.recovery();
                assert!(rep.gaps.is_empty() && rep.torn_bytes_truncated == 0);
                assert!(rep.bad_regions == 0 && rep.corrupt_cursors.is_empty());
            }
            Op::Crash => {
                drop(log);
                (log, fs) = open(d.path(), always).await;
                after_crash(&log, &mut cur, &mut persisted);
                assert!(log.recovery().gaps.is_empty());
            }
            Op::Fault(p, sync) => {
                // Without `Always` an append does not fsync: fail its write.
                if sync && always {
                    fs.fail_syncs(0, EIO);
                } else {
                    fs.fail_writes(0, ENOSPC);
                }
                assert!(log.append(Bytes::from(p)).await.is_err());
                fs.clear();
            }
            Op::TornCrash(p, keep) => {
                // Torn inside its only frame (header 24 B + payload), so no
                // complete frame of the failed append can survive.
                let keep = keep % (frame::FRAME_HEADER_LEN + p.len());
                fs.tear_write(0, keep);
                assert!(log.append(Bytes::from(p)).await.is_err());
                drop(log);
                (log, fs) = open(d.path(), always).await;
                after_crash(&log, &mut cur, &mut persisted);
                let rep = log.recovery();
                assert!(rep.gaps.is_empty() && rep.bad_regions == 0, "{rep:?}");
            }
        }
        assert_eq!(log.next_seq(), model.len() as u64 + 1);
        for c in CURSORS {
            assert_eq!(log.cursor(c), Some(cur[c]), "cursor {c}");
        }
    }
    // Finally every cursor can read its whole backlog, in order.
    let end = model.len() as u64 + 1;
    for c in CURSORS {
        let mut r = log.reader(c).unwrap();
        let mut next = cur[c];
        while next < end {
            for e in r.next(100, 5).await.unwrap() {
                assert_eq!(e.seq, next);
                assert_eq!(e.payload, model[(e.seq - 1) as usize]);
                next += 1;
            }
        }
    }
    log.close().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60), always in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, always));
    }
}
