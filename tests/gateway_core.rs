//! Gateway core against two real `influxd`: the original's own flow, token
//! enforcement, unknown routes, `/ping` and `/health`, and config errors.

mod common;

use std::time::Duration;

use common::api::{eventually, first_count, http, influxql, two_nodes, write_lp};
use common::gateway::{Gateway, config_yaml};
use common::influxd::Influxd;

const T0: i64 = 1_700_000_000_000_000_000;

/// The original's `small_test.py`: CREATE DATABASE, 10,000 points in batches
/// of 1,000, the London query; every node must hold all 10,000 points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_reaches_every_node() {
    let (a, b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], ""), dir.path()).await;

    let (status, body) = influxql(&gw.url, "", "CREATE DATABASE test", None).await;
    assert_eq!(status, 200, "{body}");
    let cities = ["London", "Paris", "Berlin", "Madrid"];
    for batch in 0..10 {
        let mut body = String::new();
        for i in 0..1000 {
            let n = batch * 1000 + i;
            body.push_str(&format!(
                "weather,location={} temperature={}.5,humidity={}i {}\n",
                cities[n % 4],
                n % 40,
                n % 100,
                T0 + n as i64 * 1_000_000
            ));
        }
        let (status, text) = write_lp(&gw.url, "db=test", body, None).await;
        assert_eq!(status, 204, "{text}");
    }
    for node in [&a, &b] {
        let ok = eventually(Duration::from_secs(20), || async {
            node.count("test", "weather", "temperature").await == 10_000
        })
        .await;
        assert!(
            ok,
            "node {} has {} points",
            node.url,
            node.count("test", "weather", "temperature").await
        );
    }
    let (status, v) = influxql(
        &gw.url,
        "test",
        "SELECT count(temperature) FROM weather WHERE location = 'London'",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first_count(&v), 2_500, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_token_is_enforced_and_not_forwarded() {
    let a = Influxd::start().await;
    a.create_db("db").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &config_yaml(&[&a.url], "auth_token: gw-secret\n"),
        dir.path(),
    )
    .await;

    let (s, body) = write_lp(&gw.url, "db=db", "m v=1 1", None).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("error"), "{body}");
    let (s, _) = write_lp(&gw.url, "db=db", "m v=1 1", Some("wrong")).await;
    assert_eq!(s, 401);
    let (s, _) = influxql(&gw.url, "db", "SHOW DATABASES", Some("gw-secre")).await;
    assert_eq!(s, 401);
    let r = http()
        .get(format!("{}/api/v2/buckets", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "unauthorized");

    let (s, body) = write_lp(&gw.url, "db=db", "m v=1 1", Some("gw-secret")).await;
    assert_eq!(s, 204, "{body}");
    let (s, v) = influxql(&gw.url, "db", "SHOW DATABASES", Some("gw-secret")).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.count("db", "m", "v").await == 1
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_501() {
    let a = Influxd::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config_yaml(&[&a.url], ""), dir.path()).await;
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/write"),
        ("DELETE", "/query"),
        ("GET", "/debug/vars"),
    ] {
        let r = http()
            .request(method.parse().unwrap(), format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 501, "{method} {path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v, serde_json::json!({"error": "Feature not supported"}));
    }
    let r = http().get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_health_reflect_the_nodes() {
    let (a, mut b) = tokio::join!(Influxd::start(), Influxd::start());
    let dir = tempfile::tempdir().unwrap();
    let extra = "health_check_interval: 0.2\nhealth_threshold: 2\n";
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], extra), dir.path()).await;

    // The version comes from a healthy node's /ping.
    let ok = eventually(Duration::from_secs(5), || async {
        let r = http().get(format!("{}/ping", gw.url)).send().await.unwrap();
        r.status() == 204
            && r.headers()
                .get("x-influxdb-version")
                .is_some_and(|v| v.to_str().unwrap().starts_with("1."))
    })
    .await;
    assert!(ok, "ping must carry the node's version");
    let r = http()
        .head(format!("{}/ping", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let r = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["nodes"][0]["state"], "up", "{v}");

    b.stop().await;
    let down = eventually(Duration::from_secs(10), || async {
        let v: serde_json::Value = http()
            .get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["nodes"][1]["state"] == "down" && v["nodes"][1]["last_error"].is_string()
    })
    .await;
    assert!(down, "a stopped node must show as down");
    let r = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "one usable node is enough");
    drop(a);
    let all_down = eventually(Duration::from_secs(10), || async {
        http()
            .get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap()
            .status()
            == 503
    })
    .await;
    assert!(all_down, "no usable node must give 503");
}

fn run_binary(args: &[&str], config: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inmate"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .env_remove("AUTH_TOKEN")
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "config.yaml");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn bad_configs_exit_2_with_one_precise_line() {
    let cases = [
        (
            "addresses:\n  - url: http://a:1\n  - url: 'htp:/x'\n",
            "config.yaml: addresses[1].url: invalid URL \"htp:/x\": scheme must be http or https\n",
        ),
        (
            "addresses: []\n",
            "config.yaml: addresses: at least one address is required\n",
        ),
        (
            "addresses: [{url: 'http://a:1'}]\nport: -1\n",
            "config.yaml: port: -1 is out of range (0..=65535)\n",
        ),
    ];
    for (config, want) in cases {
        for args in [&[][..], &["check-config"][..]] {
            let (code, _, stderr) = run_binary(args, config);
            assert_eq!(code, 2, "{config}");
            assert_eq!(stderr, want);
        }
    }
    let (code, _, stderr) = run_binary(&[], "addresses: [{url: 'http://a:1'}]\nretry_cout: 3\n");
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("config.yaml: retry_cout: unknown field `retry_cout`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn check_config_prints_redacted_effective_config() {
    let (code, stdout, stderr) = run_binary(
        &["check-config"],
        "addresses:\n  - url: http://a:8086\n    token: node-secret\nauth_token: gw-secret\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("a:8086"), "{stdout}");
    assert!(stdout.contains("<redacted>"));
    assert!(
        !stdout.contains("node-secret") && !stdout.contains("gw-secret"),
        "{stdout}"
    );
    assert!(stdout.contains("fsync: always"), "{stdout}");
}

#[test]
fn missing_config_file_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inmate"))
        .args(["--config", "/nonexistent/inmate.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("/nonexistent/inmate.yaml: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero_keeping_the_backlog() {
    let (a, mut b) = two_nodes("d").await;
    b.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "health_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n";
    let mut gw = Gateway::start(&config_yaml(&[&a.url, &b.url], extra), dir.path()).await;
    let (s, t) = write_lp(&gw.url, "db=d", common::api::lines("g", 0, 100, T0), None).await;
    assert_eq!(s, 204, "{t}");
    let status = gw.terminate().await.expect("exit status");
    assert!(
        status.success(),
        "SIGTERM must exit 0: {status:?}\n{}",
        gw.logs()
    );
    // The backlog for the down node survives the restart and is delivered.
    b.restart().await;
    gw.restart().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            b.count("d", "g", "v").await == 100
        })
        .await
    );
}
