//! Compressed writes end to end, against real `influxd` 1.6: the gateway
//! stores a client's gzip as sent, concatenates stored gzip bodies into one
//! node request (multi-member gzip), converts only for nodes that ask for
//! another encoding, and never lets a corrupt gzip body into the log.

mod common;

use std::io::Write;
use std::time::Duration;

use common::api::{eventually, write_lp};
use common::gateway::{Gateway, config_yaml_with_tokens};
use common::influxd::Influxd;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn post_gzip(url: &str, body: Vec<u8>) -> (u16, String) {
    let resp = common::api::http()
        .post(format!("{url}/write?db=d"))
        .header("Content-Encoding", "gzip")
        .body(body)
        .send()
        .await
        .expect("write");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

/// `n` timestamped lines of measurement `m`, numbered from `from`.
fn batch(from: usize, n: usize) -> String {
    common::api::lines("m", from, n, 1_600_000_000_000_000_000)
}

/// Three real nodes, one per `gzip` setting (`auto` is the default, then
/// `true`, then `false`), with database `d`, behind one gateway.
async fn three_nodes(dir: &std::path::Path) -> (Vec<Influxd>, Gateway) {
    let (a, b, c) = tokio::join!(Influxd::start(), Influxd::start(), Influxd::start());
    for n in [&a, &b, &c] {
        n.create_db("d").await;
    }
    let mut yaml = config_yaml_with_tokens(&[(&a.url, "")], "");
    yaml = yaml.replace(
        "bind_address:",
        &format!(
            "  - url: {}\n    gzip: true\n  - url: {}\n    gzip: false\nbind_address:",
            b.url, c.url
        ),
    );
    yaml.push_str("health_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n");
    let gw = Gateway::start(&yaml, dir).await;
    (vec![a, b, c], gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concatenated_members_are_accepted_by_influxd_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, gw) = three_nodes(dir.path()).await;
    // Hold every node so the backlog builds and each replicator coalesces
    // many stored bodies (gzip members and plain text) into one request.
    for n in &nodes {
        n.pause();
    }
    let mut expected = 0;
    for i in 0..24 {
        let text = batch(i * 100, 100);
        let (s, t) = match i % 3 {
            // The client's gzip, passed through as stored.
            0 => post_gzip(&gw.url, gzip(text.as_bytes())).await,
            // The client's gzip without the final newline: stored with a
            // newline member appended, so the next body cannot join its
            // last line.
            1 => post_gzip(&gw.url, gzip(text.trim_end().as_bytes())).await,
            // Plain text: stored plain (or compressed once for `gzip: true`).
            _ => write_lp(&gw.url, "db=d", text, None).await,
        };
        assert_eq!(s, 204, "batch {i}: {t}");
        expected += 100;
    }
    for n in &nodes {
        n.resume();
    }
    for (i, n) in nodes.iter().enumerate() {
        let ok = eventually(Duration::from_secs(30), || async {
            n.count("d", "m", "v").await == expected
        })
        .await;
        assert!(
            ok,
            "node {i} holds {} of {expected} points",
            n.count("d", "m", "v").await
        );
    }
    // Nothing was rejected anywhere: no dead letters.
    let dead = dir.path().join("deadletter");
    let rejected: u64 = std::fs::read_dir(&dead)
        .map(|d| {
            d.flatten()
                .map(|f| std::fs::metadata(f.path()).map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(rejected, 0, "dead letters were written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_client_gzip_never_enters_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, gw) = three_nodes(dir.path()).await;
    let good = gzip(batch(0, 50).as_bytes());

    let mut truncated = good.clone();
    truncated.truncate(good.len() - 5);
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0xff;
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 6] ^= 0x01;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"not gzip");
    for (what, body) in [
        ("truncated", truncated),
        ("flipped", flipped),
        ("bad crc", bad_crc),
        ("trailing junk", trailing),
    ] {
        let (s, t) = post_gzip(&gw.url, body).await;
        assert_eq!(s, 400, "{what}: {t}");
    }
    // A second member of the same client body is not lost.
    let mut two = good.clone();
    two.extend_from_slice(&gzip(batch(50, 50).as_bytes()));
    let (s, t) = post_gzip(&gw.url, two).await;
    assert_eq!(s, 204, "{t}");

    for (i, n) in nodes.iter().enumerate() {
        let ok = eventually(Duration::from_secs(20), || async {
            n.count("d", "m", "v").await == 100
        })
        .await;
        assert!(ok, "node {i}: {}", n.count("d", "m", "v").await);
    }
    // Only the one good write was logged: every node is at the same point
    // and nothing is queued or dead-lettered.
    assert!(
        !dir.path().join("deadletter").exists()
            || std::fs::read_dir(dir.path().join("deadletter"))
                .unwrap()
                .flatten()
                .all(|f| f.metadata().unwrap().len() == 0),
        "no dead letters"
    );
}
