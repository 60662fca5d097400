//! The gateway's lifecycle: `app::start` builds it, `Running` stops it.
//!
//! Why: shutdown is a promise (every background task joined, the log closed,
//! no connection left behind) with one bound, `shutdown_timeout`. A stuck
//! client must not stretch it, and nothing may keep running after `serve`
//! has returned.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::free_port;
use inmate::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &Path, nodes: usize, extra: &str) -> Config {
    let mut yaml = String::from("addresses:\n");
    for _ in 0..nodes {
        yaml.push_str(&format!("  - url: http://127.0.0.1:{}\n", free_port()));
    }
    yaml.push_str(&format!(
        "bind_address: 127.0.0.1\nport: 0\ndata_dir: {}\nallow_anonymous: true\n\
         health_check_interval: 0.05\nretry_delay: 0.05\nqueue:\n  fsync: never\n{extra}",
        serde_json::to_string(&dir.to_string_lossy()).expect("quote")
    ));
    Config::from_yaml(&yaml, Path::new("lifecycle.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("config: {e}\n{yaml}"))
}

#[tokio::test]
async fn shutdown_joins_every_background_task_and_closes_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = inmate::app::start(config(dir.path(), 3, "shutdown_timeout: 2\n"))
        .await
        .expect("start");
    let log = running.gateway().log.clone();
    // Let the replicators and health checks get going (and fail: closed ports).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    let stopped = running.shutdown().await;
    // One replicator and one health checker per node, plus the stop bridge.
    assert_eq!(stopped.joined, 3 * 2 + 1, "{stopped:?}");
    assert_eq!(stopped.aborted, 0, "{stopped:?}");
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert!(
        log.append(bytes::Bytes::from_static(b"after close"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_stuck_request_does_not_stretch_the_shutdown_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(
        dir.path(),
        1,
        "shutdown_timeout: 0.5\nrequest_timeout: 30\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let running = inmate::app::start(cfg).await.expect("start");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(running.serve(listener, async {
        let _ = rx.await;
    }));
    // A write whose body never finishes: its handler waits in the reader.
    let mut stuck = TcpStream::connect(addr).await.expect("connect");
    stuck
        .write_all(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ncpu v=1")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let began = Instant::now();
    tx.send(()).expect("signal");
    let stopped = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("serve returned")
        .expect("task")
        .expect("serve");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
        "shutdown took {took:?} for a 0.5 s deadline"
    );
    assert_eq!(stopped.aborted, 0, "{stopped:?}");
    // Nothing is left serving the stuck client: its connection is closed.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(200), stuck.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the stuck connection outlived serve: {read:?}"
    );
}
