//! Write pacing against a slow node: the door may wait for delivery when
//! the gateway itself falls behind, but a node that is slow must not hold
//! writes to its own rate while another node keeps up.
//!
//! Why: the pacing rule lets a node that slides out of the log's in-memory
//! tail pace writes for a bounded episode (`backend::cluster::Laggard`). A
//! first version gave a fresh episode each time the node caught up, and a
//! slow node catches up precisely *because* writes wait for it: the door
//! ran at the slow node's rate (~50 instead of ~1,000 writes/s in a
//! throwaway benchmark). The margin here is wide (the slow node needs ~20 s
//! for what the writers send; the test allows 8 s), so it does not time the
//! machine, only which of the two behaviours happens.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::inproc::{self, InProc};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A node that takes every write after `delay` (pings at once); counts the
/// write requests it finished.
async fn sink(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let done = Arc::new(AtomicUsize::new(0));
    let count = done.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let count = count.clone();
                    async move {
                        let write = req.uri().path() != "/ping";
                        let _ = req.into_body().collect().await;
                        if write {
                            tokio::time::sleep(delay).await;
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        let resp = Response::builder()
                            .status(204)
                            .header("X-Influxdb-Version", "1.8.10-stub")
                            .body(Full::new(Bytes::new()))
                            .expect("response");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, done)
}

async fn gateway(nodes: &[&str]) -> InProc {
    // A 256 KiB tail, so the slow node slides out of it within a few writes.
    let rest = "log_level: warn\nqueue:\n  fsync: never\n  cache_bytes: 256KiB\n  \
                max_batch_bytes: 64KiB\n";
    inproc::serve_nodes(nodes, "    gzip: false\n", rest, "pacing.yaml").await
}

/// ~20 KB of timestamped lines, distinct per batch.
fn batch(n: usize) -> String {
    (0..200)
        .map(|i| {
            format!(
                "cpu,host=h{i},batch=b{n} usage=0.{i} {}\n",
                1_700_000_000_000_000_000u64 + i
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_does_not_hold_writes_to_its_rate() {
    let (fast, _) = sink(Duration::ZERO).await;
    // 64 KiB (~3 batches) per request, one every 200 ms: ~15 batches/s.
    let (slow, slow_done) = sink(Duration::from_millis(200)).await;
    let gw = gateway(&[&fast, &slow]).await;
    common::eventually(Duration::from_secs(10), "both nodes up", || async {
        let h = common::get_json(&format!("{}/health", gw.url)).await;
        h.to_string().matches("\"up\"").count() >= 2
    })
    .await;

    // 300 batches (~6 MB) from 4 writers: ~20 s at the slow node's rate.
    let start = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let url = gw.url.clone();
        writers.push(tokio::spawn(async move {
            for k in 0..75 {
                let (status, body) = common::write(&url, "db", &batch(w * 1000 + k)).await;
                assert_eq!(status, 204, "{body}");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let took = start.elapsed();
    let delivered = slow_done.load(Ordering::SeqCst);
    assert!(
        took < Duration::from_secs(8),
        "300 writes took {took:?}: the door ran at the slow node's pace \
         ({delivered} requests delivered to it meanwhile)"
    );
}
