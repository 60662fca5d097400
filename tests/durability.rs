//! The durable write path against real `influxd`: a down node never blocks
//! the others, acknowledged writes survive SIGKILL of the gateway, and a
//! node's permanent rejection is dead-lettered instead of blocking its queue.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::api::{eventually, influxql, lines, two_nodes, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;
use tokio::sync::{Mutex, RwLock};

const T0: i64 = 1_700_000_000_000_000_000;

/// Every timestamp stored on `node` for measurement `m` in `db`.
async fn times(node: &Influxd, db: &str, m: &str) -> HashSet<i64> {
    let v = node.query(db, &format!("SELECT v FROM {m}")).await;
    let mut out = HashSet::new();
    if let Some(values) = v["results"][0]["series"][0]["values"].as_array() {
        for row in values {
            if let Some(t) = row[0].as_i64() {
                out.insert(t);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_node_blocks_nothing_and_catches_up() {
    let (a, mut b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "health_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n";
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], extra), dir.path()).await;
    b.stop().await;

    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let (s, body) = write_lp(&gw.url, "db=d", lines("m", i * 100, 100, T0), None).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(s, 204, "{body}");
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a write took {slowest:?} with one node down"
    );
    // The healthy node has everything promptly, and reads are served.
    assert!(
        eventually(Duration::from_secs(3), || async {
            a.count("d", "m", "v").await == 2000
        })
        .await
    );
    let started = Instant::now();
    let (s, v) = influxql(&gw.url, "d", "SELECT count(v) FROM m", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(started.elapsed() < Duration::from_secs(2));

    b.restart().await;
    let ok = eventually(Duration::from_secs(30), || async {
        b.count("d", "m", "v").await == 2000
    })
    .await;
    assert!(
        ok,
        "returning node must catch up; has {}",
        b.count("d", "m", "v").await
    );
}

/// Four clients write continuously with one node down; the gateway is killed
/// with SIGKILL twice and restarted; then the node returns. Every
/// acknowledged point must be on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_twice_loses_no_acknowledged_write() {
    let (a, mut b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "health_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n";
    let mut gw = Gateway::start(&config_yaml(&[&a.url, &b.url], extra), dir.path()).await;
    b.stop().await;

    let url = Arc::new(RwLock::new(gw.url.clone()));
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4i64 {
        let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut batch = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // Unique timestamps per client and batch: 50 points each.
                let base = T0 + (c * 1_000_000 + batch * 50) * 1000;
                let body: String = (0..50)
                    .map(|i| format!("k,c=c{c} v={batch}i {}\n", base + i * 1000))
                    .collect();
                let target = url.read().await.clone();
                let resp = common::api::http()
                    .post(format!("{target}/write?db=d"))
                    .body(body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                if let Ok(r) = resp
                    && r.status().as_u16() == 204
                {
                    acked.lock().await.extend((0..50).map(|i| base + i * 1000));
                }
                batch += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        gw.kill9();
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.restart().await;
        *url.write().await = gw.url.clone();
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acked: HashSet<i64> = acked.lock().await.iter().copied().collect();
    assert!(
        acked.len() > 1000,
        "the clients should have written plenty, got {}",
        acked.len()
    );

    b.restart().await;
    for node in [&a, &b] {
        let ok = eventually(Duration::from_secs(60), || async {
            let have = times(node, "d", "k").await;
            acked.iter().all(|t| have.contains(t))
        })
        .await;
        let have = times(node, "d", "k").await;
        let missing = acked.iter().filter(|t| !have.contains(t)).count();
        assert!(
            ok,
            "node {} is missing {missing} of {} acknowledged points",
            node.url,
            acked.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_not_found_is_dead_lettered_and_the_queue_moves_on() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    a.create_db("only_a").await;
    a.create_db("both").await;
    b.create_db("both").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let (s, body) = write_lp(&gw.url, "db=only_a", lines("m", 0, 10, T0), None).await;
    assert_eq!(s, 204, "{body}");
    let (s, body) = write_lp(&gw.url, "db=both", lines("m", 0, 10, T0), None).await;
    assert_eq!(s, 204, "{body}");
    // B rejected only_a with 404, but its queue moved on to `both`.
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.count("both", "m", "v").await == 10
        })
        .await
    );
    assert_eq!(a.count("only_a", "m", "v").await, 10);

    let dl_dir = dir.path().join("deadletter");
    let found = eventually(Duration::from_secs(5), || async {
        std::fs::read_dir(&dl_dir)
            .map(|d| d.count() == 1)
            .unwrap_or(false)
    })
    .await;
    assert!(found, "one node's dead-letter file must exist");
    let file = std::fs::read_dir(&dl_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    let entry: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(entry["status"], 404, "{entry}");
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .contains("database not found"),
        "{entry}"
    );
    assert!(
        entry["body"].as_str().unwrap().contains("m,host=h0 v=0i"),
        "{entry}"
    );
    let port = b.url.rsplit(':').next().unwrap();
    assert!(
        file.to_string_lossy().contains(port),
        "dead letters belong to node b: {file:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_levels_wait_for_nodes_and_never_lie() {
    let (a, mut b) = two_nodes("d").await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "write_timeout: 1\nhealth_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n";
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], extra), dir.path()).await;

    // Both up: `all` returns once both nodes have applied the write.
    let (s, t) = write_lp(&gw.url, "db=d&consistency=all", lines("c", 0, 10, T0), None).await;
    assert_eq!(s, 204, "{t}");
    assert_eq!(a.count("d", "c", "v").await, 10);
    assert_eq!(b.count("d", "c", "v").await, 10);

    b.stop().await;
    let (s, t) = write_lp(
        &gw.url,
        "db=d&consistency=one",
        lines("c", 10, 10, T0),
        None,
    )
    .await;
    assert_eq!(s, 204, "{t}");
    let (s, t) = write_lp(
        &gw.url,
        "db=d&consistency=all",
        lines("c", 20, 10, T0),
        None,
    )
    .await;
    assert_eq!(s, 500, "{t}");
    assert!(t.contains("1 of 2 required nodes confirmed"), "{t}");
    assert!(t.contains("stays queued"), "{t}");
    assert!(!t.contains("partial write"), "Telegraf would drop it: {t}");
    let (s, t) = write_lp(&gw.url, "db=d&consistency=sometimes", "c v=1i 1\n", None).await;
    assert_eq!(s, 400, "{t}");
    assert!(t.contains("invalid consistency level"), "{t}");

    // The 500'd write was durable all along: b gets everything on return.
    b.restart().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            b.count("d", "c", "v").await == 30
        })
        .await
    );
}
