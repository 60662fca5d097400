//! The UDP door (`udp[]`) with real senders and two real `influxd` behind
//! the gateway: Python's own `socket` (raw datagrams: timed, untimed, bad
//! lines, an oversized one) and influxdb-python's UDP mode
//! (`InfluxDBClient(use_udp=True)`, `send_packet`, `write_points`).
//!
//! Why: a UDP sender aimed at one node reaches one node; through the
//! gateway every point must land on every node, with the same stamp where
//! the sender gave none, batches cut by size, and what cannot be stored
//! counted in `/health` (UDP has no answer to carry an error).

mod common;

use std::time::Duration;

use common::api::{eventually, http, two_nodes};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;
use serde_json::Value;

const DB: &str = "udpdb";
const T0: i64 = 1_700_000_000_000_000_000;

use common::python_with_clients as python;

/// A UDP port on loopback that was free a moment ago.
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    s.local_addr().expect("addr").port()
}

/// Runs a Python snippet with `PORT` set; panics with its stderr on failure.
async fn py(code: &str, port: u16) {
    let out = tokio::process::Command::new(python())
        .arg("-c")
        .arg(code)
        .env("PORT", port.to_string())
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn health(gw: &Gateway) -> Value {
    let r = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .expect("health");
    r.json().await.expect("health json")
}

/// The timestamps of `measurement` on one node, in order.
async fn times(node: &Influxd, measurement: &str) -> Vec<i64> {
    let q = format!("SELECT * FROM \"{measurement}\"");
    let v = node.query(DB, &q).await;
    v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r[0].as_i64()).collect())
        .unwrap_or_default()
}

async fn both_have(a: &Influxd, b: &Influxd, measurement: &str, field: &str, n: u64) {
    for node in [a, b] {
        let ok = eventually(Duration::from_secs(20), || async {
            node.count(DB, measurement, field).await == n
        })
        .await;
        assert!(
            ok,
            "{} has {} of {n} {measurement} points",
            node.url,
            node.count(DB, measurement, field).await
        );
    }
}

const RAW_SENDER: &str = r#"
import os, socket, time
port = int(os.environ["PORT"])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(text):
    s.sendto(text.encode(), ("127.0.0.1", port))
    time.sleep(0.02)
T0 = 1700000000000000000
# 60 timed points in one datagram.
send("".join("timed,host=h%d v=%di %d\n" % (i % 3, i, T0 + i) for i in range(60)))
# Three untimed points: stamped once, by the gateway.
send("stamped,k=a v=1i\nstamped,k=b v=2i\nstamped,k=c v=3i")
# One bad line among good ones: the good ones are stored.
send("mixed v=1i %d\nmixed v= %d\nmixed v=3i %d\n" % (T0, T0 + 1, T0 + 2))
# Over max_datagram_size (4096): dropped whole, nothing stored.
send("".join("huge v=%di %d\n" % (i, T0 + i) for i in range(300)))
"#;

const INFLUXDB_PYTHON: &str = r#"
import os
from influxdb import InfluxDBClient
port = int(os.environ["PORT"])
c = InfluxDBClient(host="127.0.0.1", use_udp=True, udp_port=port)
T0 = 1700000000000000000
c.send_packet(["pyline,src=line v=%di %d" % (i, T0 + i) for i in range(25)], protocol="line")
c.write_points([{"measurement": "pyjson", "tags": {"src": "json"},
                 "fields": {"v": i}, "time": T0 + i} for i in range(25)])
"#;

/// Every point sent over UDP, by Python's socket and by influxdb-python,
/// lands on both nodes; untimed points carry the same stamp on both; bad
/// lines and the oversized datagram are counted in `/health`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_points_land_on_both_nodes() {
    let (a, b) = two_nodes(DB).await;
    let port = free_udp_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!(
        "health_check_interval: 0.2\nretry_delay: 0.1\nudp:\n  - bind_address: 127.0.0.1:{port}\n    \
         database: {DB}\n    batch_size: 1000\n    batch_timeout: 50ms\n    max_datagram_size: 4096\n"
    );
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], &extra), dir.path()).await;

    py(RAW_SENDER, port).await;
    both_have(&a, &b, "timed", "v", 60).await;
    both_have(&a, &b, "stamped", "v", 3).await;
    both_have(&a, &b, "mixed", "v", 2).await;
    let (ta, tb) = (times(&a, "stamped").await, times(&b, "stamped").await);
    assert_eq!(ta, tb, "both nodes store the gateway's stamp");
    assert!(
        ta.iter().all(|t| *t > T0),
        "stamped at receive time: {ta:?}"
    );

    py(INFLUXDB_PYTHON, port).await;
    both_have(&a, &b, "pyline", "v", 25).await;
    both_have(&a, &b, "pyjson", "v", 25).await;
    for node in [&a, &b] {
        assert_eq!(node.count(DB, "huge", "v").await, 0, "oversized is dropped");
    }

    let h = health(&gw).await;
    let u = &h["udp"][0];
    assert_eq!(u["database"], DB, "{h}");
    assert_eq!(u["points"], 60 + 3 + 2 + 25 + 25, "{h}");
    assert_eq!(u["datagrams"], 6, "{h}");
    assert_eq!(u["dropped"]["bad_lines"], 1, "{h}");
    assert_eq!(u["dropped"]["oversized_datagrams"], 1, "{h}");
    assert_eq!(u["dropped"]["log_refused_points"], 0, "{h}");
}

/// A batch is cut at `batch_size` points without waiting for the timeout,
/// and what is pending at shutdown is still stored (and delivered after a
/// restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_cut_by_size_and_flushed_on_shutdown() {
    let (a, b) = two_nodes(DB).await;
    let port = free_udp_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!(
        "health_check_interval: 0.2\nretry_delay: 0.1\nudp:\n  - bind_address: 127.0.0.1:{port}\n    \
         database: {DB}\n    precision: s\n    batch_size: 5\n    batch_timeout: 1h\n"
    );
    let mut gw = Gateway::start(&config_yaml(&[&a.url, &b.url], &extra), dir.path()).await;
    let sender = r#"
import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(13):
    s.sendto(b"sized v=%di %d" % (i, 1700000000 + i), ("127.0.0.1", int(os.environ["PORT"])))
    time.sleep(0.01)
"#;
    py(sender, port).await;
    // Two full batches go out at once; the last three wait for the hour.
    both_have(&a, &b, "sized", "v", 10).await;
    assert_eq!(health(&gw).await["udp"][0]["batches"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.count(DB, "sized", "v").await, 10, "no early flush");

    gw.restart().await;
    both_have(&a, &b, "sized", "v", 13).await;
    // Precision `s`: the explicit second timestamps were kept as seconds.
    let t = times(&a, "sized").await;
    assert_eq!(t.first(), Some(&(1_700_000_000 * 1_000_000_000)), "{t:?}");
}
