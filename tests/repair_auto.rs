//! `repair.auto` against real `influxd` nodes: a node that fell behind past
//! `queue.max_bytes` had records skipped; with automatic repair on, the
//! gateway copies the skipped points to it and clears `needs_repair`; with
//! it off (the default), the flag stays and the points stay missing.
//!
//! Why end to end: the skip, the range kept with the cursor, the verify and
//! repair library calls and `/health` only prove anything together, on real
//! nodes that really lack the points.

mod common;

use std::time::Duration;

use common::api::{eventually, lines, two_nodes, write_lp};
use common::{Gateway, Influxd};
use serde_json::Value;

const DB: &str = "db";
/// Requests of this many points each; 4 of them are ~3 MB of log records,
/// three times `queue.max_bytes` (1 MiB, its smallest value).
const BATCH: usize = 20_000;
const BATCHES: usize = 4;
const TOTAL: u64 = (BATCH * BATCHES) as u64;

fn yaml(a: &Influxd, b: &Influxd, auto: bool) -> String {
    format!(
        "addresses:\n  - url: {}\n    name: a\n  - url: {}\n    name: b\n\
         bind_address: 127.0.0.1\nport: 0\n\
         health_check_interval: 0.2\nhealth_threshold: 1\nretry_delay: 0.1\n\
         queue:\n  max_bytes: 1MiB\n  retry_max_delay: 0.5\n\
         repair:\n  auto: {auto}\n  interval: 1s\n  lookback: 1s\n",
        a.url, b.url
    )
}

async fn health(gw: &Gateway) -> Value {
    reqwest::get(format!("{}/health", gw.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn node<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {h}"))
}

/// Two nodes; `b` is down while four large requests force its cursor past
/// `queue.max_bytes`; then `b` comes back. Returns once `b` is flagged and
/// has caught up on what the log kept for it.
async fn skip_on_b(auto: bool, dir: &std::path::Path) -> (Influxd, Influxd, Gateway) {
    let (a, mut b) = two_nodes(DB).await;
    let gw = Gateway::start(&yaml(&a, &b, auto), dir).await;
    b.stop().await;
    // Timestamps a minute ago: the points were stamped close to when the
    // gateway received them, as live data is.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let base = now - 60_000_000_000;
    for i in 0..BATCHES {
        let body = lines("m", i * BATCH, BATCH, base);
        let (code, text) = write_lp(&gw.url, "db=db", body, None).await;
        assert_eq!(code, 204, "{text}");
    }
    let flagged = eventually(Duration::from_secs(15), || async {
        node(&health(&gw).await, "b")["needs_repair"] == true
    })
    .await;
    assert!(flagged, "b was never flagged\n{}", gw.logs());
    let h = health(&gw).await;
    let b_state = node(&h, "b");
    assert!(b_state["skipped_records"].as_u64().unwrap() > 0, "{h}");
    assert!(b_state["skipped_range"]["from"].is_string(), "{h}");
    b.restart().await;
    let caught_up = eventually(Duration::from_secs(30), || async {
        let h = health(&gw).await;
        let b = node(&h, "b");
        b["state"] == "up" && b["backlog_records"] == 0
    })
    .await;
    assert!(caught_up, "b never caught up\n{}", gw.logs());
    let a_has_all = eventually(Duration::from_secs(30), || async {
        a.count(DB, "m", "v").await == TOTAL
    })
    .await;
    assert!(a_has_all, "a never got every point\n{}", gw.logs());
    (a, b, gw)
}

#[tokio::test]
async fn a_node_skipped_past_max_bytes_is_repaired_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, mut gw) = skip_on_b(true, dir.path()).await;
    let repaired = eventually(Duration::from_secs(60), || async {
        let h = health(&gw).await;
        node(&h, "b")["needs_repair"] == false
            && h["repair"]["flags_cleared"].as_u64() >= Some(1)
            // Counted when the run ends.
            && h["repair"]["windows_repaired"].as_u64() >= Some(1)
            && b.count(DB, "m", "v").await == TOTAL
    })
    .await;
    let h = health(&gw).await;
    assert!(
        repaired,
        "b has {} of {TOTAL} points; /health: {h}\n{}",
        b.count(DB, "m", "v").await,
        gw.logs()
    );
    let r = &h["repair"];
    assert_eq!(r["auto"], true, "{h}");
    assert!(r["flags_cleared"].as_u64().unwrap() >= 1, "{h}");
    assert!(r["windows_repaired"].as_u64().unwrap() >= 1, "{h}");
    assert!(r["points_written"].as_u64().unwrap() >= 1, "{h}");
    assert!(r["runs"].as_u64().unwrap() >= 1, "{h}");
    assert!(node(&h, "b")["skipped_range"].is_null(), "{h}");
    // Nothing was deleted: a still has every point.
    assert_eq!(a.count(DB, "m", "v").await, TOTAL);
    // The repair task stops with the gateway, within the deadline.
    let exit = gw.terminate().await.expect("gateway was running");
    assert!(exit.success(), "{exit:?}\n{}", gw.logs());
    assert!(!gw.logs().contains("did not stop in time"), "{}", gw.logs());
}

#[tokio::test]
async fn without_repair_auto_the_flag_stays_and_points_stay_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, gw) = skip_on_b(false, dir.path()).await;
    // Several would-be intervals.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let h = health(&gw).await;
    assert_eq!(node(&h, "b")["needs_repair"], true, "{h}");
    assert_eq!(h["repair"]["auto"], false, "{h}");
    assert_eq!(h["repair"]["runs"], 0, "{h}");
    assert_eq!(a.count(DB, "m", "v").await, TOTAL);
    let on_b = b.count(DB, "m", "v").await;
    assert!(on_b < TOTAL, "b has {on_b} of {TOTAL} without any repair");
}
