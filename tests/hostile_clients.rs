//! Clients that try to hold the gateway's resources: connections that send
//! nothing, bodies declared but never sent, more connections or more body
//! bytes than the gateway allows.
//!
//! Why: each of these once stopped all service (descriptors exhausted by
//! silent sockets, gigabytes reserved from `Content-Length`). The gateway is
//! served in-process (`inmate::app::start` on a port-0 listener, nodes on a
//! closed port): none of these answers needs a node, and the test process's
//! own `/proc/self/status` shows what the gateway's memory did.

mod common;

use std::time::{Duration, Instant};

use common::free_port;
use common::inproc::{self, InProc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One test at a time: the memory test reads the whole process's numbers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a gateway (anonymous, one node on a closed port) plus `extra` YAML.
async fn gateway(extra: &str) -> InProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        "addresses:\n  - url: http://127.0.0.1:{}\nbind_address: 127.0.0.1\nport: 0\n\
         data_dir: {}\nallow_anonymous: true\nhealth_check_interval: 0.05\n\
         shutdown_timeout: 0.2\nqueue:\n  fsync: never\n{extra}",
        free_port(),
        serde_json::to_string(&dir.path().to_string_lossy()).expect("quote")
    );
    inproc::serve(&yaml, "hostile.yaml", dir).await
}

/// Reads until the gateway closes the connection; returns what it sent.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A field of `/proc/self/status` in KiB (Linux).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing"))
}

async fn ping(addr: &str) -> reqwest::Response {
    common::client_with_timeout(Duration::from_secs(5))
        .get(format!("http://{addr}/ping"))
        .send()
        .await
        .expect("ping")
}

#[tokio::test]
async fn silent_and_half_open_connections_are_closed_within_request_timeout() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("request_timeout: 1\n").await;
    let openings: [&[u8]; 3] = [
        b"",                                  // says nothing at all
        b"GET /ping HTTP/1.1\r\nHost: x\r\n", // half a head, then silence
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  // HTTP/2 prior knowledge
    ];
    let mut conns = Vec::new();
    for _ in 0..10 {
        for opening in openings {
            let mut s = TcpStream::connect(&gw.addr).await.expect("connect");
            s.write_all(opening).await.expect("write");
            conns.push(s);
        }
    }
    let started = Instant::now();
    for (i, s) in conns.iter_mut().enumerate() {
        let left = Duration::from_millis(2500).saturating_sub(started.elapsed());
        assert!(
            read_to_close(s, left).await.is_some(),
            "connection {i} (opening {:?}) still open after {:?}",
            String::from_utf8_lossy(openings[i % 3]),
            started.elapsed()
        );
    }
    // The gateway still serves.
    assert_eq!(ping(&gw.addr).await.status().as_u16(), 204);
}

// One thread, so no new malloc arena muddies the address-space numbers.
#[tokio::test(flavor = "current_thread")]
async fn a_declared_content_length_reserves_nothing() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("request_timeout: 5\n").await;
    assert_eq!(ping(&gw.addr).await.status().as_u16(), 204);
    let (rss0, size0) = (status_kib("VmRSS:"), status_kib("VmSize:"));
    let mut conns = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(&gw.addr).await.expect("connect");
        s.write_all(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 25000000\r\n\r\n")
            .await
            .expect("write");
        conns.push(s);
    }
    // Let every handler reach its body reader.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, size1) = (status_kib("VmRSS:"), status_kib("VmSize:"));
    let grew_rss = rss1.saturating_sub(rss0) >> 10;
    let grew_size = size1.saturating_sub(size0) >> 10;
    // 40 × 25 MB reserved would be ~950 MiB of address space.
    assert!(grew_size < 200, "address space grew by {grew_size} MiB");
    assert!(grew_rss < 50, "RSS grew by {grew_rss} MiB");
    drop(conns);
}

#[tokio::test]
async fn past_max_connections_the_answer_is_503_with_retry_after() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("request_timeout: 5\nmax_connections: 2\n").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(&gw.addr).await.expect("connect"));
    }
    // Give the accept loop a moment to take both slots.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = ping(&gw.addr).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(
        resp.text().await.expect("body"),
        r#"{"error":"too many open connections, retry later"}"#
    );
    drop(held);
    common::eventually(
        Duration::from_secs(3),
        "slots freed when the connections closed",
        || async { ping(&gw.addr).await.status().as_u16() == 204 },
    )
    .await;
}

#[tokio::test]
async fn past_the_in_flight_budget_the_answer_is_503_with_retry_after() {
    let _serial = SERIAL.lock().await;
    let gw = gateway("request_timeout: 5\nmax_inflight_bytes: 1MiB\n").await;
    // One client holds 900 KB of a 2 MB body and stalls.
    let mut hog = TcpStream::connect(&gw.addr).await.expect("connect");
    hog.write_all(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        .await
        .expect("head");
    hog.write_all(&vec![b'#'; 900_000]).await.expect("body");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = common::client_with_timeout(Duration::from_secs(5));
    let resp = client
        .post(format!("http://{}/write?db=x", gw.addr))
        .body(vec![b'#'; 300_000])
        .send()
        .await
        .expect("write");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = resp.text().await.expect("body");
    assert!(body.contains("too many request bytes in flight"), "{body}");
    // Once the hog is gone, its bytes return to the budget.
    drop(hog);
    common::eventually(Duration::from_secs(3), "the budget returned", || async {
        let r = client
            .post(format!("http://{}/write?db=x", gw.addr))
            .body(vec![b'#'; 300_000])
            .send()
            .await
            .expect("write");
        r.status().as_u16() != 503
    })
    .await;
}
