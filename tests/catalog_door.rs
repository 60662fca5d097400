//! The write door's catalog and the mutation parse probe, against two real
//! `influxd`: a write to a missing database gets InfluxDB's exact 404 and is
//! never logged (Telegraf then creates the database and the same write
//! succeeds on both nodes); a database created directly on the nodes is
//! found by the refresh on a miss; a missing `rp` gets InfluxDB's answer; a
//! mutation with a syntax error gets InfluxDB's 400 and leaves no dead
//! letter; with no node to ask, the write is accepted.

mod common;

use std::path::Path;
use std::time::Duration;

use common::api::{eventually, http, influxql, lines, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;

const T0: i64 = 1_700_000_000_000_000_000;
const FAST: &str = "health_check_interval: 0.2\nhealth_check_timeout: 0.3\nretry_delay: 0.1\nquery_timeout: 2\nqueue:\n  retry_max_delay: 0.5\n";

/// Dead-letter records parked for any node.
fn dead_letters(data_dir: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(data_dir.join("deadletter")) else {
        return 0;
    };
    dir.flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

/// The log's next sequence, from `/health`.
async fn log_next_seq(url: &str) -> u64 {
    let v: serde_json::Value = http()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["log_next_seq"].as_u64().unwrap()
}

/// Status, body and `X-Influxdb-Error` of a POST to `path?query`.
async fn post(url: &str, path_query: &str, body: &str) -> (u16, String, Option<String>) {
    let r = http()
        .post(format!("{url}{path_query}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let err = r
        .headers()
        .get("x-influxdb-error")
        .map(|v| v.to_str().unwrap().to_string());
    // The gateway's JSON errors carry no trailing newline (Go's encoder's).
    let status = r.status().as_u16();
    let text = r.text().await.unwrap().trim_end().to_string();
    (status, text, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegraf_flow_missing_database_then_create() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], FAST), dir.path()).await;
    let batch = lines("cpu", 0, 10, T0);

    // What InfluxDB 1.x itself answers, byte for byte.
    let real = post(&a.url, "/write?db=telegrf", &batch).await;
    assert_eq!(real.0, 404, "{real:?}");
    let seq = log_next_seq(&gw.url).await;
    let ours = post(&gw.url, "/write?db=telegrf", &batch).await;
    assert_eq!(ours, real, "the gateway answers as influxd does");
    assert_eq!(
        ours.1.trim(),
        r#"{"error":"database not found: \"telegrf\""}"#
    );
    assert_eq!(
        log_next_seq(&gw.url).await,
        seq,
        "a refused write is never logged"
    );

    // Telegraf's reaction: CREATE DATABASE, then the same write again.
    let (s, v) = influxql(&gw.url, "", "CREATE DATABASE telegrf", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, t) = write_lp(&gw.url, "db=telegrf", batch.clone(), None).await;
    assert_eq!(s, 204, "{t}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.count("telegrf", "cpu", "v").await == 10
            })
            .await,
            "{} did not get the write",
            n.url
        );
    }

    // A retention policy that does not exist: InfluxDB's own answer.
    let real = post(&a.url, "/write?db=telegrf&rp=nope", &batch).await;
    assert_eq!(real.0, 500, "{real:?}");
    let seq = log_next_seq(&gw.url).await;
    let ours = post(&gw.url, "/write?db=telegrf&rp=nope", &batch).await;
    assert_eq!(ours, real);
    assert_eq!(log_next_seq(&gw.url).await, seq);
    // One created through the gateway is accepted at once.
    let (s, v) = influxql(
        &gw.url,
        "",
        "CREATE RETENTION POLICY nope ON telegrf DURATION 1h REPLICATION 1",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let recent = lines("rp", 0, 4, now - 1_000_000_000);
    let (s, t) = write_lp(&gw.url, "db=telegrf&rp=nope", recent, None).await;
    assert_eq!(s, 204, "{t}");
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                let v = n.query("telegrf", "SELECT count(v) FROM nope.rp").await;
                common::api::first_count(&v) == 4
            })
            .await
        );
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dead_letters(dir.path()), 0, "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_created_on_the_nodes_is_found_on_a_miss() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], FAST), dir.path()).await;
    let batch = lines("mem", 0, 5, T0);
    let (s, t) = write_lp(&gw.url, "db=direct", batch.clone(), None).await;
    assert_eq!(s, 404, "{t}");
    // Created behind the gateway's back, on one node only.
    b.create_db("direct").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, t) = write_lp(&gw.url, "db=direct", batch, None).await;
    assert_eq!(s, 204, "{t}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.count("direct", "mem", "v").await == 5
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_syntax_error_is_the_clients_answer() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], FAST), dir.path()).await;
    for q in [
        "CREATE DATABASE",
        "CREATE DATABASE ok1; CREATE DATABSE typo",
        "DROP RETENTION POLICY r ON",
        "CREATE RETENTION POLICY r ON db DURATION 1h -- no replication",
    ] {
        let query = format!("/query?q={}", urlencode(q));
        let real = post(&a.url, &query, "").await;
        assert_eq!(real.0, 400, "{q}: {real:?}");
        let seq = log_next_seq(&gw.url).await;
        let ours = post(&gw.url, &query, "").await;
        assert_eq!(ours.0, real.0, "{q}");
        assert_eq!(ours.1, real.1, "{q}");
        assert_eq!(log_next_seq(&gw.url).await, seq, "{q} was logged");
    }
    // A valid mutation still reaches both nodes.
    let (s, v) = influxql(&gw.url, "", "CREATE DATABASE fine -- comment", None).await;
    assert_eq!(s, 200, "{v}");
    for n in [&a, &b] {
        assert!(n.databases().await.contains(&"fine".to_string()));
        assert!(!n.databases().await.contains(&"ok1".to_string()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dead_letters(dir.path()), 0, "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_node_to_ask_the_write_is_accepted() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let gw = Gateway::start(&config_yaml(&[&url], FAST), dir.path()).await;
    let (s, t) = write_lp(&gw.url, "db=anything", lines("m", 0, 3, T0), None).await;
    assert_eq!(s, 204, "{t}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
