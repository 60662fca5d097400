//! TLS out: the gateway replicates to and reads from a real `influxd`
//! serving HTTPS with a certificate from a CA made in the test.

mod common;

use std::time::Duration;

use common::api::eventually;
use common::gateway::Gateway;
use common::influxd::Influxd;
use common::tls::TestCa;
use common::{query, write};

fn config(node_url: &str, tls: &str) -> String {
    format!("addresses:\n  - url: {node_url}\n    tls: {tls}\nbind_address: 127.0.0.1\nport: 0\n")
}

/// Writes through the gateway and waits until a read through it counts them.
async fn writes_and_reads_land(gw: &Gateway, db: &str) {
    let (status, body) = query(&gw.url, "", &format!("CREATE DATABASE {db}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, text) = write(&gw.url, db, "m v=1 1\nm v=2 2\nm v=3 3\n").await;
    assert_eq!(status, 204, "{text}");
    let landed = eventually(Duration::from_secs(15), || async {
        let (status, v) = query(&gw.url, db, "SELECT count(v) FROM m").await;
        status == 200 && v["results"][0]["series"][0]["values"][0][1] == 3
    })
    .await;
    assert!(landed, "the three points never read back:\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_node_with_the_test_ca_takes_writes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("node CA");
    let (crt, key) = ca.write_leaf(dir.path(), "influxd");
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    let node = Influxd::start_https(&crt, &key).await;
    assert!(node.url.starts_with("https://"));
    let data = tempfile::tempdir().unwrap();
    let tls = format!("{{ca_file: {}}}", ca_file.display());
    let gw = Gateway::start(&config(&node.url, &tls), data.path()).await;
    writes_and_reads_land(&gw, "tlsdb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_keeps_the_node_down_with_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = TestCa::new("node CA").write_leaf(dir.path(), "influxd");
    let wrong = TestCa::new("another CA").write_ca(dir.path(), "wrong.pem");
    let node = Influxd::start_https(&crt, &key).await;
    let data = tempfile::tempdir().unwrap();
    let tls = format!("{{ca_file: {}}}", wrong.display());
    let gw = Gateway::start(&config(&node.url, &tls), data.path()).await;
    let logged = eventually(Duration::from_secs(10), || async {
        gw.logs().contains("invalid peer certificate")
    })
    .await;
    assert!(logged, "no TLS error in the logs:\n{}", gw.logs());
    // Never healthy: a read finds no node to answer it.
    let (status, body) = query(&gw.url, "", "SHOW DATABASES").await;
    assert_ne!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_works_and_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = TestCa::new("unknown CA").write_leaf(dir.path(), "influxd");
    let node = Influxd::start_https(&crt, &key).await;
    let data = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &config(&node.url, "{insecure_skip_verify: true}"),
        data.path(),
    )
    .await;
    writes_and_reads_land(&gw, "insecure").await;
    assert!(
        gw.logs()
            .contains("TLS CERTIFICATE VERIFICATION IS DISABLED"),
        "{}",
        gw.logs()
    );
}
