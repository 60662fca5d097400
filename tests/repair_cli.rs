//! `inmate verify`, `repair` and `backfill` against real `influxd` nodes.
//!
//! Why end to end: these commands exist to make real nodes identical again,
//! so each test damages real nodes the way production does (a wiped disk, a
//! write straight to one node, a backfill killed halfway, writes arriving
//! through the gateway during a backfill) and checks the built binary's
//! exit codes, output and the nodes' contents.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Gateway, Influxd, api::two_nodes};

const DB: &str = "db";
const HOUR: i64 = 3_600_000_000_000;

/// The start of the hour six hours ago: test data spans the hours after it.
fn base() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    (now / HOUR - 6) * HOUR
}

/// A config naming the nodes `a` and `b`, with its data dir.
fn config(dir: &Path, a: &Influxd, b: &Influxd) -> std::path::PathBuf {
    let yaml = format!(
        "addresses:\n  - url: {}\n    name: a\n  - url: {}\n    name: b\nbind_address: 127.0.0.1\nport: 0\ndata_dir: {:?}\n",
        a.url,
        b.url,
        dir.join("data").display().to_string()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn inmate(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inmate"));
    c.arg("--config").arg(config).args(args);
    c.env_remove("RUST_LOG").stdin(Stdio::null());
    c
}

/// Runs the CLI to completion off the async runtime.
async fn run(config: &Path, args: &[&str]) -> Output {
    let mut cmd = inmate(config, args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    eprintln!(
        "inmate {args:?} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `n` points per measurement over six hours: every field type, and
/// measurement names, tag keys and tag values with spaces, commas, `=`
/// and quotes.
fn dataset(n: usize) -> String {
    let tags = [
        "plain",
        "with space",
        "comma,here",
        "eq=uals",
        "quote\"d",
        "all ,=\"",
    ];
    let esc = |s: &str| {
        s.replace(',', "\\,")
            .replace('=', "\\=")
            .replace(' ', "\\ ")
    };
    let mut body = String::new();
    let step = 6 * HOUR / n as i64;
    for i in 0..n {
        let t = base() + i as i64 * step;
        let tag = esc(tags[i % tags.len()]);
        body.push_str(&format!(
            "cpu,host={tag},dc=x load={}.25,n={i}i {t}\n",
            i % 17
        ));
        body.push_str(&format!(
            "ev\\ ents\\,x,kind={tag},\"k\\ y\"=v msg=\"say \\\"hi\\\" {i}\",ok={} {t}\n",
            i % 2 == 0
        ));
        body.push_str(&format!("whole v={}.0 {t}\n", i % 5));
    }
    body
}

async fn write_ok(node: &Influxd, body: &str) {
    let (status, text) = node.write(DB, body).await;
    assert_eq!(status, 204, "write to {}: {text}", node.url);
}

/// Stops the node, deletes everything it stored, and starts it again empty.
async fn wipe(node: &mut Influxd) {
    node.stop().await;
    for sub in ["data", "wal", "meta"] {
        let _ = std::fs::remove_dir_all(node.dir().join(sub));
    }
    node.restart().await;
    assert!(node.databases().await.is_empty());
}

fn field_keys(v: &serde_json::Value) -> String {
    v["results"][0]["series"].to_string()
}

#[tokio::test]
async fn backfill_restores_a_wiped_node_and_verify_agrees() {
    let (a, mut b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    for n in [&a, &b] {
        n.exec("CREATE RETENTION POLICY \"short one\" ON db DURATION 30d REPLICATION 1 SHARD DURATION 1d")
            .await;
        n.exec("CREATE CONTINUOUS QUERY cq1 ON db BEGIN SELECT mean(load) INTO cpu_1h FROM cpu GROUP BY time(1h) END")
            .await;
    }
    let data = dataset(1000);
    write_ok(&a, &data).await;
    write_ok(&b, &data).await;
    let short = format!("cpu,host=s load=1.5 {}\n", base() + HOUR);
    for n in [&a, &b] {
        let resp = common::client()
            .post(format!("{}/write", n.url))
            .query(&[("db", DB), ("rp", "short one")])
            .body(short.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
    }

    let before = run(&cfg, &["verify"]).await;
    assert_eq!(
        before.status.code(),
        Some(0),
        "identical nodes verify clean"
    );
    assert!(stdout(&before).contains("identical"));

    wipe(&mut b).await;
    let broken = run(&cfg, &["verify"]).await;
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).contains("database db: on a, missing on b"));

    let fill = run(&cfg, &["backfill", "--to", "b"]).await;
    assert_eq!(fill.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&fill.stderr).contains("created continuous query db.cq1"));

    let after = run(&cfg, &["verify"]).await;
    assert_eq!(after.status.code(), Some(0), "verify after backfill");
    for m in ["cpu", "ev ents,x", "whole"] {
        let q = format!("SHOW FIELD KEYS FROM \"{m}\"");
        assert_eq!(
            field_keys(&a.query(DB, &q).await),
            field_keys(&b.query(DB, &q).await)
        );
    }
    assert_eq!(b.count(DB, "cpu", "n").await, 1000);
    assert_eq!(b.count(DB, "ev ents,x", "msg").await, 1000);
    let tags = "SHOW TAG VALUES FROM \"ev ents,x\" WITH KEY = \"kind\"";
    assert_eq!(a.query(DB, tags).await, b.query(DB, tags).await);
    let rps = "SHOW RETENTION POLICIES ON db";
    assert_eq!(a.query(DB, rps).await, b.query(DB, rps).await);
}

/// A backfill reads the source as MessagePack: values come back exact
/// (integers beyond 2^53, i64::MIN, unicode and escapes in strings) even
/// when another measurement has a float field of the same name, and reads
/// spanning several chunks lose nothing.
#[tokio::test]
async fn backfill_copies_exact_values_across_chunks() {
    let (a, mut b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    let t = base() + HOUR;
    let mut body = format!(
        "whole v=1.5 {t}\nbig,k=\u{fc}\\ x v=9007199254740993i,min=-9223372036854775808i,s=\"\u{fc}n \\\"q\\\" \\\\\",b=false {t}\n"
    );
    for i in 0..25_000 {
        body.push_str(&format!(
            "many,h=h{} n={i}i {}\n",
            i % 3,
            t + i as i64 * 1000
        ));
    }
    write_ok(&a, &body).await;
    wipe(&mut b).await;
    let fill = run(&cfg, &["backfill", "--to", "b"]).await;
    assert_eq!(fill.status.code(), Some(0));
    for m in ["whole", "big", "many"] {
        let q = format!("SELECT * FROM \"{m}\" GROUP BY *");
        assert_eq!(a.query(DB, &q).await, b.query(DB, &q).await, "{m}");
    }
    let v = b.query(DB, "SELECT v, min, s FROM big").await;
    let row = &v["results"][0]["series"][0]["values"][0];
    assert_eq!(row[1].as_i64(), Some(9_007_199_254_740_993), "{v}");
    assert_eq!(row[2].as_i64(), Some(i64::MIN), "{v}");
    assert_eq!(row[3].as_str(), Some("\u{fc}n \"q\" \\"), "{v}");
    assert_eq!(b.count(DB, "many", "n").await, 25_000);
}

#[tokio::test]
async fn a_direct_write_is_found_in_its_window_and_repaired() {
    let (a, b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    let data = dataset(500);
    write_ok(&a, &data).await;
    write_ok(&b, &data).await;
    // One extra point straight to b, 2h30m17s after the base.
    let t = base() + 2 * HOUR + 30 * 60_000_000_000 + 17_000_000_123;
    write_ok(&b, &format!("cpu,host=rogue\\ node load=9.5,n=7i {t}\n")).await;

    let found = run(&cfg, &["verify", "--json"]).await;
    assert_eq!(found.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "exactly one window: {v}");
    let w = &windows[0];
    assert_eq!(w["measurement"], "cpu");
    assert_eq!(w["more"], "b");
    let (start, end) = (w["start"].as_i64().unwrap(), w["end"].as_i64().unwrap());
    assert!(start <= t && t < end, "window [{start}, {end}) holds {t}");
    assert_eq!(end - start, 60_000_000_000, "narrowed to the 1m window");

    let fixed = run(&cfg, &["repair"]).await;
    assert_eq!(fixed.status.code(), Some(0));
    assert!(stdout(&fixed).contains("a=1 b=0"), "one point written to a");
    let q = format!("SELECT load, n FROM cpu WHERE host = 'rogue node' AND time = {t}");
    assert_eq!(a.query(DB, &q).await, b.query(DB, &q).await);
    let n = &a.query(DB, &q).await["results"][0]["series"][0]["values"][0][2];
    assert_eq!(n, 7, "the integer stays an integer");
    assert_eq!(run(&cfg, &["verify"]).await.status.code(), Some(0));
}

/// Points around and before 1970 live in shard groups that start before
/// the epoch (`SHOW SHARDS`: `1969-12-29T00:00:00Z`); verify and backfill
/// once skipped those groups, so such points were neither compared nor
/// copied.
#[tokio::test]
async fn points_before_1970_are_verified_and_backfilled() {
    let (a, b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    let body = "m v=1 1\nm v=2 5000000000\nm v=4 -5000000000\nm v=5 -86400000000000000\n";
    write_ok(&a, body).await;

    let found = run(&cfg, &["verify"]).await;
    assert_eq!(found.status.code(), Some(1), "verify sees the early points");
    let copied = run(&cfg, &["backfill", "--to", "b", "--from", "a"]).await;
    assert_eq!(copied.status.code(), Some(0));
    let q = "SELECT v FROM m";
    let got = b.query(DB, q).await;
    assert_eq!(got, a.query(DB, q).await);
    assert_eq!(
        got["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "{got}"
    );
    assert_eq!(run(&cfg, &["verify"]).await.status.code(), Some(0));
}

#[tokio::test]
async fn conflicts_are_reported_and_left_unless_a_node_is_preferred() {
    let (a, b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    let t = base() + HOUR;
    write_ok(&a, &format!("m,k=v x=1.5,s=\"same\" {t}\n")).await;
    write_ok(&b, &format!("m,k=v x=2.5,s=\"same\" {t}\n")).await;
    assert_eq!(run(&cfg, &["verify"]).await.status.code(), Some(1));
    let left = run(&cfg, &["repair"]).await;
    assert_eq!(left.status.code(), Some(1));
    assert!(stdout(&left).contains("field x: a=1.5 b=2.5 (left alone)"));
    assert_eq!(
        b.query(DB, "SELECT x FROM m").await["results"][0]["series"][0]["values"][0][1],
        2.5
    );

    let preferred = run(&cfg, &["repair", "--prefer", "a"]).await;
    assert_eq!(preferred.status.code(), Some(0));
    assert_eq!(
        b.query(DB, "SELECT x FROM m").await["results"][0]["series"][0]["values"][0][1],
        1.5
    );
    assert_eq!(run(&cfg, &["verify"]).await.status.code(), Some(0));
}

/// Finished windows recorded in the checkpoint.
fn done_windows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["done"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_killed_backfill_resumes_without_copying_finished_windows() {
    let (a, mut b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    write_ok(&a, &dataset(600)).await;
    wipe(&mut b).await;
    let checkpoint = dir.path().join("data/backfill/b.json");

    // Slow (600 points/s, 60-point batches) so the kill lands halfway.
    let args = ["backfill", "--to", "b", "--rate", "600", "--batch", "60"];
    let mut child = inmate(&cfg, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while done_windows(&checkpoint).len() < 2 {
        assert!(Instant::now() < deadline, "backfill made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = done_windows(&checkpoint);
    assert!(
        before.len() < 7,
        "killed halfway, not at the end: {before:?}"
    );

    let resumed = run(&cfg, &["backfill", "--to", "b"]).await;
    assert_eq!(resumed.status.code(), Some(0));
    let log = String::from_utf8_lossy(&resumed.stderr).to_string();
    assert!(log.contains("resuming"));
    let copied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("copied window"))
        .collect();
    for w in &before {
        let start = w[2].as_i64().unwrap();
        let shown = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_nanos(start as u64),
        )
        .to_string();
        assert!(
            !copied.iter().any(|l| l.contains(&format!("[{shown},"))),
            "window {shown} copied again: {copied:?}"
        );
    }
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let total = cp["done"].as_array().unwrap().len() as u64;
    assert_eq!(copied.len() + before.len(), total as usize);
    assert_eq!(cp["windows_copied"], total, "each window copied once");
    assert_eq!(cp["finished"], true);
    assert_eq!(run(&cfg, &["verify"]).await.status.code(), Some(0));
}

#[tokio::test]
async fn writes_through_the_gateway_during_a_backfill_end_identical() {
    let (a, mut b) = two_nodes(DB).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &a, &b);
    write_ok(&a, &dataset(600)).await;
    wipe(&mut b).await;
    let yaml = std::fs::read_to_string(&cfg).unwrap();
    let gw_dir = dir.path().join("gw");
    let gw = Gateway::start(&yaml.replace("data_dir:", "#data_dir:"), &gw_dir).await;

    let url = gw.url.clone();
    let writer = tokio::spawn(async move {
        let mut i = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            let body = format!("live,src=gw v={i}i\n");
            let (s, t) = common::write(&url, DB, &body).await;
            assert_eq!(s, 204, "{t}");
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        i
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fill = run(&cfg, &["backfill", "--to", "b", "--rate", "1000"]).await;
    assert_eq!(fill.status.code(), Some(0));
    let sent = writer.await.unwrap();
    common::eventually(
        Duration::from_secs(30),
        "b has every live write",
        || async { b.count(DB, "live", "v").await == sent },
    )
    .await;
    assert_eq!(a.count(DB, "live", "v").await, sent);
    let v = run(&cfg, &["verify"]).await;
    assert_eq!(v.status.code(), Some(0));
    drop(gw);
}

#[tokio::test]
async fn usage_errors_exit_2_and_node_failures_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.yaml");
    std::fs::write(
        &v2,
        "addresses:\n  - url: http://127.0.0.1:1\n    token: t\n  - url: http://127.0.0.1:2\n    token: u\nallow_anonymous: true\n",
    )
    .unwrap();
    let refused = run(&v2, &["verify"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("2.x nodes"));

    let v1 = dir.path().join("v1.yaml");
    std::fs::write(
        &v1,
        "addresses:\n  - url: http://127.0.0.1:1\n    name: a\n  - url: http://127.0.0.1:2\n    name: b\n",
    )
    .unwrap();
    assert_eq!(
        run(&v1, &["backfill", "--to", "nope"]).await.status.code(),
        Some(2)
    );
    assert_eq!(
        run(&v1, &["verify", "--since", "soon"]).await.status.code(),
        Some(2)
    );
    // Nothing listens on these ports: a node failure, not a usage error.
    assert_eq!(run(&v1, &["verify"]).await.status.code(), Some(3));
}
