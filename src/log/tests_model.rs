//! Model-based property test: random appends, advances, reads, cleanups and
//! reopens against a trivial in-memory model (a Vec of payloads and a map of
//! cursor positions). Small segments and a tiny cache make reads hit both the
//! cache and the disk, and cleanup delete segments under the readers.

use std::collections::HashMap;

use bytes::Bytes;
use proptest::prelude::*;

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
    ]
}

const CURSORS: [&str; 2] = ["n0", "n1"];

async fn open(dir: &std::path::Path, always: bool) -> Log {
    let opts = LogOptions {
        segment_bytes: 200,
        cache_bytes: 300,
        fsync: if always {
            FsyncPolicy::Always
        } else {
            FsyncPolicy::Never
        },
        ..test_opts(dir)
    };
    Log::open(opts, &names(&CURSORS)).await.unwrap()
}

async fn run(ops: Vec<Op>, always: bool) {
    let d = tempfile::tempdir().unwrap();
    let mut log = open(d.path(), always).await;
    let mut model: Vec<Bytes> = Vec::new();
    let mut cur: HashMap<&str, u64> = CURSORS.iter().map(|c| (*c, 1)).collect();
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
                log.cleanup().await.unwrap();
            }
            Op::Reopen => {
                log.close().await.unwrap();
                log = open(d.path(), always).await;
                let rep = log.recovery();
                assert!(rep.gaps.is_empty() && rep.torn_bytes_truncated == 0);
                assert!(rep.bad_regions == 0 && rep.corrupt_cursors.is_empty());
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
