//! Reads and mutations against two real `influxd`: disguised mutations reach
//! every node, mutations for a down node are applied in order when it returns,
//! reads see the client's own writes and avoid a hung node, and chunked
//! results stream.

mod common;

use std::time::{Duration, Instant};

use common::api::{eventually, first_count, http, influxql, lines, two_nodes, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;

const T0: i64 = 1_700_000_000_000_000_000;
const FAST: &str = "health_check_interval: 0.2\nhealth_check_timeout: 0.3\nretry_delay: 0.1\nquery_timeout: 1\nqueue:\n  retry_max_delay: 0.5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disguised_mutations_reach_both_nodes() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    for q in [
        "create database lower1",
        "  -- a comment; with a semicolon\n /* block */ CREATE DATABASE commented2",
        "SHOW DATABASES; CREATE DATABASE multi3",
    ] {
        let (s, v) = influxql(&gw.url, "", q, None).await;
        assert_eq!(s, 200, "{q}: {v}");
    }
    // q in a form body, as Grafana and Telegraf send it.
    let r = http()
        .post(format!("{}/query", gw.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("q=CREATE+DATABASE+form4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for n in [&a, &b] {
        let dbs = n.databases().await;
        for db in ["lower1", "commented2", "multi3", "form4"] {
            assert!(
                dbs.contains(&db.to_string()),
                "{} lacks {db}: {dbs:?}",
                n.url
            );
        }
    }
    // SELECT … INTO copies on every node.
    let (s, t) = write_lp(&gw.url, "db=lower1", lines("src", 0, 10, T0), None).await;
    assert_eq!(s, 204, "{t}");
    let (s, v) = influxql(
        &gw.url,
        "lower1",
        "SELECT * INTO dst FROM src GROUP BY *",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("lower1", "dst", "v").await == 10
            })
            .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_for_a_down_node_apply_in_order_when_it_returns() {
    let (a, mut b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], FAST), dir.path()).await;
    let (s, v) = influxql(&gw.url, "", "CREATE DATABASE keep", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = write_lp(&gw.url, "db=keep", lines("gone", 0, 5, T0), None).await;
    assert_eq!(s, 204);
    let (s, _) = write_lp(&gw.url, "db=keep", lines("stays", 0, 5, T0), None).await;
    assert_eq!(s, 204);
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.count("keep", "gone", "v").await == 5
        })
        .await
    );

    b.stop().await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            let v: serde_json::Value = http()
                .get(format!("{}/health", gw.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["nodes"][1]["state"] == "down"
        })
        .await
    );
    let r = http()
        .post(format!("{}/query", gw.url))
        .query(&[("q", "CREATE DATABASE late")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let queued = r
        .headers()
        .get("x-inmate-queued")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        queued.is_some_and(|q| q.contains(b.url.rsplit(':').next().unwrap())),
        "queued header must name b"
    );
    for i in 0..5 {
        let (s, t) = write_lp(&gw.url, "db=late", lines("m", i * 100, 100, T0), None).await;
        assert_eq!(s, 204, "{t}");
    }
    let (s, v) = influxql(&gw.url, "keep", "DROP MEASUREMENT gone", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(a.count("late", "m", "v").await, 500);

    b.restart().await;
    let ok = eventually(Duration::from_secs(30), || async {
        b.count("late", "m", "v").await == 500
    })
    .await;
    assert!(ok, "returning node must have `late` with all points");
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.count("keep", "gone", "v").await == 0
        })
        .await
    );
    assert_eq!(b.count("keep", "stays", "v").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_own_writes_and_avoid_a_hung_node() {
    let (a, b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], FAST), dir.path()).await;
    b.pause();
    let mut slowest = Duration::ZERO;
    for i in 0..20u64 {
        let (s, t) = write_lp(
            &gw.url,
            "db=d",
            format!("ryw v={i}i {}\n", T0 + i as i64),
            None,
        )
        .await;
        assert_eq!(s, 204, "{t}");
        let started = Instant::now();
        let (s, v) = influxql(&gw.url, "d", "SELECT count(v) FROM ryw", None).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            first_count(&v),
            i + 1,
            "cycle {i} must see its own write: {v}"
        );
    }
    b.resume();
    assert!(
        slowest < Duration::from_secs(2),
        "a read took {slowest:?} while a node hung"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_results_stream_in_chunks() {
    let a = Influxd::start().await;
    a.create_db("d").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url], ""), dir.path()).await;
    for i in 0..4 {
        let (s, t) = write_lp(&gw.url, "db=d", lines("big", i * 5000, 5000, T0), None).await;
        assert_eq!(s, 204, "{t}");
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.count("d", "big", "v").await == 20_000
        })
        .await
    );
    let r = http()
        .get(format!("{}/query", gw.url))
        .query(&[
            ("db", "d"),
            ("q", "SELECT v FROM big"),
            ("chunked", "true"),
            ("chunk_size", "1000"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let chunks = text
        .lines()
        .filter(|l| l.starts_with("{\"results\""))
        .count();
    assert!(chunks >= 20, "got {chunks} chunks");
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A large result streams through: the gateway's memory does not grow with
/// the size of the answer, even when the client reads it slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_stream_with_flat_memory() {
    let a = Influxd::start().await;
    a.create_db("d").await;
    for i in 0..25 {
        let (s, t) = a.write("d", &lines("huge", i * 40_000, 40_000, T0)).await;
        assert_eq!(s, 204, "{t}");
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url], ""), dir.path()).await;
    let pid = gw.pid().expect("gateway pid");
    let before = rss_kb(pid);
    let mut resp = http()
        .get(format!("{}/query", gw.url))
        .query(&[("db", "d"), ("q", "SELECT v FROM huge")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (mut total, mut peak) = (0usize, before);
    while let Some(chunk) = resp.chunk().await.unwrap() {
        total += chunk.len();
        peak = peak.max(rss_kb(pid));
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert!(
        total > 30 << 20,
        "the result should be large: {total} bytes"
    );
    let grew_kb = peak.saturating_sub(before);
    // A gateway that buffered the answer would grow by at least its size
    // (> 30 MiB); the allocator's own granularity (mimalloc reserves in MiB
    // segments) and the connection buffers account for under 12 MiB.
    assert!(
        (grew_kb as usize) * 1024 < 12 << 20,
        "gateway RSS grew {grew_kb} KiB while streaming {total} bytes"
    );
}
