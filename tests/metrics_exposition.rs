//! `/metrics` as a scraper sees it: the exposition passes `promtool check
//! metrics`, the main port's `/metrics` is behind the gateway token while the
//! `metrics_bind` listener needs none, and the shipped alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`).
//!
//! promtool comes with Debian's `prometheus` package (scripts/test.sh installs
//! it). Without it these tests say so and skip, unless `CI` is set: then they
//! fail, so CI can never pass them silently.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Gateway, Influxd, api, config_yaml, have_prometheus_tool};

/// Runs promtool with `args` (and `stdin`); returns (success, output).
fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to promtool");
    }
    drop(input);
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn exposition_passes_promtool_and_only_the_main_port_needs_the_token() {
    if !have_prometheus_tool("promtool") {
        return;
    }
    let node = Influxd::start().await;
    node.create_db("m").await;
    let mport = free_port();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("auth_token: s3cret\nmetrics_bind: '127.0.0.1:{mport}'\n");
    let gw = Gateway::start(&config_yaml(&[&node.url], &extra), dir.path()).await;
    let (status, body) = api::write_lp(
        &gw.url,
        "db=m",
        "cpu v=1 1\ncpu v=2 2\nbad\n",
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, 400, "partial write expected: {body}");
    let name = node.url.trim_start_matches("http://").to_string();
    let delivered = format!("inmate_node_delivered_points_total{{node=\"{name}\"}} 2");

    let http = api::http();
    let main = format!("{}/metrics", gw.url);
    let r = http.get(&main).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "the main port's /metrics needs the token"
    );

    let side = format!("http://127.0.0.1:{mport}/metrics");
    let r = http.get(&side).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "metrics_bind needs no token");
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    // Delivery is asynchronous: wait until the node's points show up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut text = String::new();
    while std::time::Instant::now() < deadline && !text.lines().any(|l| l == delivered) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = http.get(&side).send().await.unwrap().text().await.unwrap();
    }
    assert!(
        text.lines().any(|l| l == delivered),
        "no `{delivered}` in:\n{text}"
    );

    let r = http
        .get(&main)
        .header("Authorization", "Token s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let main_text = r.text().await.unwrap();
    for want in [
        "inmate_write_points_total{result=\"accepted\"} 2",
        "inmate_write_points_total{result=\"rejected\"} 1",
        "inmate_http_requests_total{route=\"/write\",method=\"POST\",status=\"400\"} 1",
        "inmate_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 1",
        &format!("inmate_node_state{{node=\"{name}\",state=\"up\"}} 1"),
        &format!("inmate_node_backlog_records{{node=\"{name}\"}} 0"),
        "# TYPE inmate_log_fsync_duration_seconds histogram",
    ] {
        assert!(
            main_text.lines().any(|l| l == want),
            "no `{want}` in:\n{main_text}"
        );
    }
    let (ok, out) = promtool(&["check", "metrics"], Some(&main_text));
    assert!(
        ok,
        "promtool check metrics:\n{out}\n--- exposition:\n{main_text}"
    );
}

#[test]
fn promtool_lints_a_bad_exposition() {
    // The check above can fail: promtool rejects names against convention.
    if !have_prometheus_tool("promtool") {
        return;
    }
    let bad =
        "# HELP inmate_x_ms a counter in milliseconds\n# TYPE inmate_x_ms counter\ninmate_x_ms 1\n";
    let (ok, out) = promtool(&["check", "metrics"], Some(bad));
    assert!(!ok, "promtool accepted a bad exposition:\n{out}");
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    if !have_prometheus_tool("promtool") {
        return;
    }
    let (ok, out) = promtool(
        &["check", "rules", "contrib/prometheus/inmate-rules.yml"],
        None,
    );
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("4 rules found"), "{out}");
    let (ok, out) = promtool(
        &["test", "rules", "contrib/prometheus/inmate-rules.test.yml"],
        None,
    );
    assert!(ok, "promtool test rules:\n{out}");
}
