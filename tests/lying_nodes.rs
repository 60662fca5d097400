//! Nodes that lie or break, as in-test stub HTTP servers behind an
//! in-process gateway: one answers 200 with garbage to everything
//! (including `/ping`), one answers `/ping` properly but cuts every query
//! body short after the headers.
//!
//! Why: a health check that takes any 2xx as "up" keeps the liar in the
//! read rotation forever, and a passive check that only sees headers never
//! notices the cutter, so about half the reads fail indefinitely. The
//! gateway must keep the liar down, mark the cutter down, and send the
//! reads the cutter broke to the good node without the client noticing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::eventually;
use common::inproc::{self, InProc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The query answer of the good node (and what the cutter starts to send).
const RESULT: &str = r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","columns":["time","v"],"values":[[0,1],[1,2],[2,3]]}]}]}"#;

const PING_OK: &str =
    "HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.8.10\r\nX-Influxdb-Build: OSS\r\n\r\n";

/// How a stub answers a request for `path`: the raw bytes it writes before
/// closing the connection.
type Script = fn(&str) -> String;

fn good(path: &str) -> String {
    if path == "/ping" {
        return PING_OK.into();
    }
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Influxdb-Version: 1.8.10\r\n\
         Content-Length: {}\r\n\r\n{RESULT}",
        RESULT.len()
    )
}

/// Pings fine; query bodies stop halfway, then the connection closes.
fn cutter(path: &str) -> String {
    if path == "/ping" {
        return PING_OK.into();
    }
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Influxdb-Version: 1.8.10\r\n\
         Content-Length: {}\r\n\r\n{}",
        RESULT.len(),
        &RESULT[..RESULT.len() / 2]
    )
}

/// Pings fine; query answers are 200 KiB long but stop after 100 KiB,
/// past what the gateway holds back before committing the headers.
fn long_cutter(path: &str) -> String {
    if path == "/ping" {
        return PING_OK.into();
    }
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Influxdb-Version: 1.8.10\r\n\
         Content-Length: {}\r\n\r\n{}",
        200 * 1024,
        "x".repeat(100 * 1024)
    )
}

/// 200 and an HTML page, whatever is asked.
fn liar(_: &str) -> String {
    let page = "<html>garbage</html>";
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    )
}

/// A stub node: its URL and how many requests other than `/ping` it got.
struct Stub {
    url: String,
    hits: Arc<AtomicUsize>,
}

async fn stub(script: Script) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let target = text.split(' ').nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                if path != "/ping" {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let _ = conn.write_all(script(path).as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Stub { url, hits }
}

async fn gateway(nodes: &[&str], extra: &str) -> InProc {
    let rest = format!(
        "read_consistency: any\nhealth_check_timeout: 0.5\nquery_timeout: 2\n\
         shutdown_timeout: 0.2\nqueue:\n  fsync: never\n{extra}"
    );
    inproc::serve_nodes(nodes, "", &rest, "lying.yaml").await
}

/// `/health`'s entry for the node at `url`.
async fn node_health(gw: &InProc, url: &str) -> Value {
    let h = common::get_json(&format!("{}/health", gw.url)).await;
    h["nodes"]
        .as_array()
        .and_then(|ns| {
            ns.iter()
                .find(|n| n["url"].as_str().unwrap_or("").starts_with(url))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{url} not in {h}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_answering_200_garbage_to_ping_stays_down() {
    let (bad, ok) = (stub(liar).await, stub(good).await);
    let gw = gateway(
        &[&bad.url, &ok.url],
        "health_check_interval: 0.05\nhealth_threshold: 1\n",
    )
    .await;
    eventually(Duration::from_secs(5), "the liar marked down", || async {
        node_health(&gw, &bad.url).await["state"] == "down"
    })
    .await;
    // Many more checks later it is still down, and says why.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = node_health(&gw, &bad.url).await;
    assert_eq!(h["state"], "down", "{h}");
    let why = h["last_error"].as_str().unwrap_or("");
    assert!(why.contains("X-Influxdb-Version"), "{h}");
    assert_eq!(node_health(&gw, &ok.url).await["state"], "up");
    assert_eq!(node_health(&gw, &ok.url).await["version"], "1.8.10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cutting_query_bodies_short_is_marked_down_and_reads_fall_back() {
    let (bad, ok) = (stub(cutter).await, stub(good).await);
    // Pings pass on both; a single broken read takes a node down, and it
    // needs three good pings (3 s) to come back.
    let gw = gateway(
        &[&bad.url, &ok.url],
        "health_check_interval: 1\nhealth_threshold_down: 1\nhealth_threshold_up: 3\n",
    )
    .await;
    let client = common::client();
    // Nodes are picked by load, so read until the cutter has been tried.
    for i in 0..50 {
        if bad.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        let resp = client
            .get(format!("{}/query", gw.url))
            .query(&[("db", "d"), ("q", "SELECT v FROM cpu")])
            .send()
            .await
            .expect("query");
        assert_eq!(resp.status().as_u16(), 200, "read {i}");
        let node = resp.headers()["x-inmate-node"]
            .to_str()
            .unwrap()
            .to_string();
        let body = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("read {i} broke: {e}"));
        assert_eq!(body, RESULT, "read {i}");
        assert!(ok.url.ends_with(&node), "read {i} answered by {node}");
    }
    assert!(bad.hits.load(Ordering::SeqCst) >= 1, "the cutter was tried");
    let h = node_health(&gw, &bad.url).await;
    assert_eq!(h["state"], "down", "{h}");
    assert!(
        h["last_error"].as_str().unwrap_or("").contains("body"),
        "{h}"
    );
}

/// A break past the held-back window cannot be hidden from that client,
/// but it still takes the node down, so the next reads go elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_after_the_headers_were_sent_still_counts_against_the_node() {
    let (bad, ok) = (stub(long_cutter).await, stub(good).await);
    let gw = gateway(
        &[&bad.url, &ok.url],
        "health_check_interval: 1\nhealth_threshold_down: 1\nhealth_threshold_up: 3\n",
    )
    .await;
    // A broken read shows as a cut body, or as a connection closed before
    // the headers when the break comes before the gateway flushed them.
    let read = || async {
        let resp = common::client()
            .get(format!("{}/query", gw.url))
            .query(&[("db", "d"), ("q", "SELECT v FROM cpu")])
            .send()
            .await
            .ok()?;
        resp.text().await.ok()
    };
    // Nodes are picked by load: read until the cutter answers one (the
    // good node's answers come whole).
    let mut broke = false;
    for _ in 0..50 {
        match read().await {
            Some(body) => assert_eq!(body, RESULT),
            None => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the cutter was never chosen");
    let h = node_health(&gw, &bad.url).await;
    assert_eq!(h["state"], "down", "{h}");
    for i in 0..5 {
        assert_eq!(read().await.as_deref(), Some(RESULT), "read {i}");
    }
    assert_eq!(
        bad.hits.load(Ordering::SeqCst),
        1,
        "the cutter was tried once"
    );
}
