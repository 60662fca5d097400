//! The replicator's failure paths, end to end: the gateway binary in front of
//! one v2 stand-in that is scripted to answer 413, 429 + `Retry-After`,
//! 500 `retention policy not found`, 408 and 503 (reference notes §5).
//!
//! Why: these answers decide whether a point is split, retried, parked or
//! lost. Each test checks what the node finally received, point by point, so
//! it fails if the gateway drops, duplicates, or does not wait.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::v2stub::Canned;
use common::{Gateway, V2Options, V2Stub, eventually};

const GW_TOKEN: &str = "gw-secret";
const NODE_TOKEN: &str = "node-token";
const WRITE: &str = "/api/v2/write";
/// Generous bound for "eventually": a loaded 2-core machine, never reached
/// when the gateway works (deliveries take milliseconds).
const PATIENCE: Duration = Duration::from_secs(15);

/// One stand-in node named `n1` behind a gateway with fast retries.
async fn setup() -> (V2Stub, Gateway, tempfile::TempDir) {
    let stub = V2Stub::start(V2Options {
        token: NODE_TOKEN.into(),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        "addresses:\n  - url: {}\n    name: n1\n    token: {NODE_TOKEN}\n\
         bind_address: 127.0.0.1\nport: 0\nauth_token: {GW_TOKEN}\n\
         health_check_interval: 0.1\nhealth_check_timeout: 0.5\nretry_delay: 0.05\n\
         queue:\n  retry_max_delay: 0.2\n",
        stub.url
    );
    let gw = Gateway::start(&yaml, dir.path()).await;
    (stub, gw, dir)
}

/// `n` distinct lines tagged with `batch` (second precision).
fn batch(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("m,batch={tag} v={i}i {}", 1_700_000_000 + i))
        .collect()
}

/// Writes `lines` through the gateway as one v2 request; expects 204.
async fn write(gw: &Gateway, lines: &[String]) {
    let resp = common::client()
        .post(format!(
            "{}/api/v2/write?org=inmate&bucket=telegraf&precision=s",
            gw.url
        ))
        .header("Authorization", format!("Token {GW_TOKEN}"))
        .body(lines.join("\n") + "\n")
        .send()
        .await
        .expect("write through the gateway");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 204, "{text}");
}

/// Waits until the node stored `expected.len()` lines, then asserts it holds
/// exactly `expected`, each once.
async fn assert_stored_once(stub: &V2Stub, expected: &[String]) {
    eventually(PATIENCE, "the node stores every point", || async {
        stub.lines("telegraf").len() >= expected.len()
    })
    .await;
    // Give a duplicate delivery a moment to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in stub.lines("telegraf") {
        *seen.entry(l).or_default() += 1;
    }
    for l in expected {
        assert_eq!(seen.get(l), Some(&1), "{l:?} must arrive exactly once");
    }
    assert_eq!(seen.len(), expected.len(), "no unexpected points: {seen:?}");
}

fn dead_letters(data_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(data_dir.join("deadletter").join("n1.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead-letter line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_batches_are_split_until_each_part_fits() {
    let (stub, gw, dir) = setup().await;
    // A node that refuses any body of more than 20 points (decoded: the
    // gateway gzips its batches).
    stub.script_when(
        WRITE,
        None,
        |r| r.lines().len() > 20,
        Canned::v2_error(
            413,
            "request too large",
            "unable to read data: points batch is too large",
        ),
    );
    // Hold deliveries back so the writes pile up and get coalesced.
    stub.set_down(true);
    let mut all = Vec::new();
    for b in 0..6 {
        let lines = batch(&format!("b{b}"), 10);
        write(&gw, &lines).await;
        all.extend(lines);
    }
    stub.set_down(false);
    assert_stored_once(&stub, &all).await;

    let got = stub.received(WRITE);
    assert!(
        got.iter().any(|r| r.status == 413),
        "the coalesced batch must have been refused at least once: {:?}",
        got.iter()
            .map(|r| (r.status, r.lines().len()))
            .collect::<Vec<_>>()
    );
    for r in got.iter().filter(|r| r.status == 204) {
        assert!(r.lines().len() <= 20, "accepted bodies fit the limit");
    }
    assert!(dead_letters(dir.path()).is_empty(), "nothing is parked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_413_splits_the_batch_and_the_halves_are_delivered_once() {
    let (stub, gw, dir) = setup().await;
    // 413 once, for the first body holding several writes; then 204s.
    stub.script_when(
        WRITE,
        Some(1),
        |r| r.lines().len() > 10,
        Canned::v2_error(413, "request too large", "points batch is too large"),
    );
    stub.set_down(true);
    let mut all = Vec::new();
    for b in 0..4 {
        let lines = batch(&format!("s{b}"), 10);
        write(&gw, &lines).await;
        all.extend(lines);
    }
    stub.set_down(false);
    assert_stored_once(&stub, &all).await;

    let got = stub.received(WRITE);
    let refused = got
        .iter()
        .position(|r| r.status == 413)
        .expect("one coalesced body was refused");
    let big = got[refused].lines();
    let next = got[refused + 1].lines();
    assert!(
        !next.is_empty() && next.len() < big.len() && big.starts_with(&next),
        "the retry after a 413 must carry the first part of the batch, not the whole: {} of {}",
        next.len(),
        big.len()
    );
    assert!(dead_letters(dir.path()).is_empty(), "nothing is parked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_before_the_retry() {
    let (stub, gw, _dir) = setup().await;
    stub.script(
        WRITE,
        Canned::v2_error(429, "too many requests", "too many requests").header("Retry-After", "2"),
    );
    let lines = batch("r", 5);
    write(&gw, &lines).await;
    assert_stored_once(&stub, &lines).await;

    let got = stub.received(WRITE);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 204], "one refusal, one delivery");
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}, before the node's Retry-After of 2 s"
    );
    assert_eq!(got[1].lines(), lines, "the retry resends the same points");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_retention_policy_is_dead_lettered_and_later_writes_flow() {
    let (stub, gw, dir) = setup().await;
    stub.script(
        WRITE,
        Canned::v2_error(500, "internal error", "retention policy not found: x"),
    );
    let parked = batch("parked", 3);
    write(&gw, &parked).await;
    eventually(PATIENCE, "the refused write is dead-lettered", || async {
        !dead_letters(dir.path()).is_empty()
    })
    .await;
    let later = batch("later", 3);
    write(&gw, &later).await;
    // Only the later write is stored: the parked one was not retried (the
    // script answers once, so a retry would have stored it).
    assert_stored_once(&stub, &later).await;
    assert_eq!(stub.count(WRITE), 2, "the refused write was sent once");

    let dl = dead_letters(dir.path());
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert_eq!(dl[0]["status"], 500, "{}", dl[0]);
    assert_eq!(dl[0]["path"], WRITE, "{}", dl[0]);
    let err = dl[0]["error"].as_str().unwrap_or_default();
    assert!(err.contains("retention policy not found: x"), "{err}");
    let body = dl[0]["body"].as_str().unwrap_or_default();
    for l in &parked {
        assert!(body.contains(l.as_str()), "{l:?} kept in {body:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_unavailable_are_retried_until_delivered() {
    let (stub, gw, dir) = setup().await;
    stub.script_all(
        WRITE,
        [
            Canned::status(408),
            Canned::v2_error(503, "unavailable", "service unavailable"),
            Canned::status(408),
            Canned::v2_error(503, "unavailable", "service unavailable"),
        ],
    );
    let lines = batch("t", 5);
    write(&gw, &lines).await;
    assert_stored_once(&stub, &lines).await;

    let got = stub.received(WRITE);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![408, 503, 408, 503, 204]);
    for r in &got {
        assert_eq!(r.lines(), lines, "every attempt carries the same points");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Token {NODE_TOKEN}").as_str())
        );
    }
    // Backoff, not a spin: retry_delay 0.05 jittered to at least 25 ms.
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(20), "retried after {gap:?}");
    }
    // The queue moves on afterwards.
    let more = batch("t2", 2);
    write(&gw, &more).await;
    let both: Vec<String> = lines.iter().chain(&more).cloned().collect();
    assert_stored_once(&stub, &both).await;
    assert!(dead_letters(dir.path()).is_empty(), "nothing is parked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dead_letter_write_keeps_the_record_queued_until_it_succeeds() {
    let (stub, gw, dir) = setup().await;
    // The dead-letter file cannot be written: its path is a directory.
    let blocked = dir.path().join("deadletter").join("n1.jsonl");
    std::fs::create_dir_all(&blocked).expect("block the dead-letter path");
    stub.script(WRITE, Canned::v2_error(400, "invalid", "unable to parse"));
    let parked = batch("parked", 2);
    write(&gw, &parked).await;
    let later = batch("later", 2);
    write(&gw, &later).await;
    // The refused write cannot be parked, so the queue must not move past
    // it: the later write is not delivered while the file is unwritable.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        stub.lines("telegraf").is_empty(),
        "the queue moved past a record it could not park: {:?}",
        stub.lines("telegraf")
    );
    std::fs::remove_dir(&blocked).expect("unblock");
    eventually(
        PATIENCE,
        "the record is parked once the file is writable",
        || async { !dead_letters(dir.path()).is_empty() },
    )
    .await;
    assert_stored_once(&stub, &later).await;
    let dl = dead_letters(dir.path());
    assert_eq!(dl.len(), 1, "parked once: {dl:?}");
    let body = dl[0]["body"].as_str().unwrap_or_default();
    for l in &parked {
        assert!(body.contains(l.as_str()), "{l:?} kept in {body:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_to_a_write_is_not_stored_and_is_retried() {
    let (stub, gw, _dir) = setup().await;
    // Something that is not InfluxDB answers 200 with a page; only a 204
    // means the node stored the write.
    stub.script(WRITE, Canned::status(200).body("<html>welcome</html>"));
    let lines = batch("lying", 3);
    write(&gw, &lines).await;
    assert_stored_once(&stub, &lines).await;
    assert_eq!(
        stub.count(WRITE),
        2,
        "the write was sent again after the 200"
    );
}
