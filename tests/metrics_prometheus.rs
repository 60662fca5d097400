//! A real Prometheus scrapes the gateway's `metrics_bind` listener (loopback,
//! free port, temp dir, 1 s scrape interval), and the tests ask it, through
//! its HTTP API, what an operator's dashboards and alerts would see:
//! - a node that is down builds a backlog, which drains to 0 once it returns;
//! - every PromQL expression of `contrib/grafana/inmate.json` parses and
//!   names only metrics the gateway exposes.
//!
//! Prometheus is Debian's `prometheus` package (scripts/test.sh installs
//! it). Without it the tests say so and skip, unless `CI` is set: then they
//! fail.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Gateway, Influxd, api, config_yaml};
use serde_json::Value;

/// A Prometheus server scraping one target, killed on drop.
struct Prometheus {
    url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("inmate-prometheus-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: inmate\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let http = api::http();
        let ready = api::eventually(Duration::from_secs(30), || {
            let r = http.get(format!("{}/-/ready", p.url)).send();
            async move { r.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(ready, "prometheus did not get ready:\n{}", p.log());
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query`: Ok(data) or Err(the error Prometheus gave).
    async fn query(&self, expr: &str) -> Result<Value, String> {
        let r = api::http()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// The first sample's value of an instant query, if any.
    async fn value(&self, expr: &str) -> Option<f64> {
        let data = self.query(expr).await.ok()?;
        data["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Every metric name Prometheus has scraped.
    async fn names(&self) -> HashSet<String> {
        let v: Value = api::http()
            .get(format!("{}/api/v1/label/__name__/values", self.url))
            .send()
            .await
            .expect("label values")
            .json()
            .await
            .expect("label values json");
        v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Polls `expr` until `ok(value)` holds; returns the last value.
async fn wait_value(
    p: &Prometheus,
    expr: &str,
    within: Duration,
    ok: impl Fn(f64) -> bool,
) -> Option<f64> {
    let deadline = Instant::now() + within;
    loop {
        let v = p.value(expr).await;
        if v.is_some_and(&ok) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const FAST: &str = "health_check_interval: 0.2\nhealth_threshold: 1\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n";

#[tokio::test]
async fn prometheus_sees_a_down_nodes_backlog_rise_then_drain() {
    if !common::have_prometheus_tool("prometheus") {
        return;
    }
    let (a, mut b) = api::two_nodes("m").await;
    let mport = free_port();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{FAST}metrics_bind: '127.0.0.1:{mport}'\n");
    let gw = Gateway::start(&config_yaml(&[&a.url, &b.url], &extra), dir.path()).await;
    let prom = Prometheus::start(&format!("127.0.0.1:{mport}")).await;
    let name = |n: &Influxd| n.url.trim_start_matches("http://").to_string();
    let backlog = |n: &Influxd| format!("inmate_node_backlog_records{{node=\"{}\"}}", name(n));

    b.stop().await;
    let down = format!("inmate_node_state{{node=\"{}\",state=\"down\"}}", name(&b));
    let v = wait_value(&prom, &down, Duration::from_secs(20), |v| v == 1.0).await;
    assert_eq!(v, Some(1.0), "node b never reported down\n{}", gw.logs());
    for i in 0..5 {
        let (status, body) =
            api::write_lp(&gw.url, "db=m", api::lines("cpu", i * 20, 20, 1_000), None).await;
        assert_eq!(status, 204, "{body}");
    }
    let v = wait_value(&prom, &backlog(&b), Duration::from_secs(20), |v| v >= 5.0).await;
    assert_eq!(
        v,
        Some(5.0),
        "backlog of the down node did not rise\n{}",
        prom.log()
    );
    let v = wait_value(&prom, &backlog(&a), Duration::from_secs(20), |v| v == 0.0).await;
    assert_eq!(v, Some(0.0), "the up node should have no backlog");
    let age = format!(
        "inmate_node_oldest_unsent_age_seconds{{node=\"{}\"}}",
        name(&b)
    );
    assert!(prom.value(&age).await.is_some_and(|v| v >= 0.0));
    let failures = format!("sum(inmate_node_failures_total{{node=\"{}\"}})", name(&b));
    let v = wait_value(&prom, &failures, Duration::from_secs(10), |v| v > 0.0).await;
    assert!(
        v.is_some_and(|v| v > 0.0),
        "no delivery failures counted for the down node"
    );

    b.restart().await;
    let v = wait_value(&prom, &backlog(&b), Duration::from_secs(30), |v| v == 0.0).await;
    assert_eq!(
        v,
        Some(0.0),
        "backlog did not drain after the node returned\n{}",
        gw.logs()
    );
    assert_eq!(b.count("m", "cpu", "v").await, 100);
    let delivered = format!(
        "inmate_node_delivered_points_total{{node=\"{}\"}}",
        name(&b)
    );
    let v = wait_value(&prom, &delivered, Duration::from_secs(10), |v| v == 100.0).await;
    assert_eq!(v, Some(100.0));
}

/// Every `expr` in the dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana/inmate.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "1m")
                .replace("$__range", "1h")
                .replace("$node", ".*");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

/// The `inmate_*` metric names an expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("inmate_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn every_dashboard_query_parses_and_names_known_metrics() {
    if !common::have_prometheus_tool("prometheus") {
        return;
    }
    let node = Influxd::start().await;
    node.create_db("m").await;
    let mport = free_port();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{FAST}metrics_bind: '127.0.0.1:{mport}'\n");
    let gw = Gateway::start(&config_yaml(&[&node.url], &extra), dir.path()).await;
    let prom = Prometheus::start(&format!("127.0.0.1:{mport}")).await;
    let (status, _) = api::write_lp(&gw.url, "db=m", "cpu v=1 1\n", None).await;
    assert_eq!(status, 204);
    let (status, _) = api::influxql(&gw.url, "m", "SELECT * FROM cpu", None).await;
    assert_eq!(status, 200);
    let v = wait_value(
        &prom,
        "sum(inmate_node_delivered_records_total)",
        Duration::from_secs(20),
        |v| v >= 1.0,
    )
    .await;
    assert!(
        v.is_some_and(|v| v >= 1.0),
        "prometheus never scraped a delivery\n{}",
        prom.log()
    );
    let _ = wait_value(
        &prom,
        "sum(inmate_http_requests_total{route=\"/query\"})",
        Duration::from_secs(10),
        |v| v >= 1.0,
    )
    .await;

    // Known: what Prometheus scraped, plus the series a histogram that has no
    // observation yet will have (the catalog names it).
    let mut known = prom.names().await;
    assert!(known.contains("inmate_build_info"), "{known:?}");
    for (name, kind, _) in inmate::metrics::CATALOG {
        known.insert(name.to_string());
        if *kind == inmate::metrics::Kind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                known.insert(format!("{name}{suffix}"));
            }
        }
    }
    let queries = dashboard_queries();
    assert!(
        queries.len() >= 20,
        "the dashboard lost its panels: {}",
        queries.len()
    );
    let mut problems = Vec::new();
    for (title, expr) in &queries {
        if let Err(e) = prom.query(expr).await {
            problems.push(format!("{title}: {expr}: {e}"));
        }
        let names = metric_names(expr);
        if names.is_empty() {
            problems.push(format!("{title}: {expr}: names no inmate_ metric"));
        }
        for n in names {
            if !known.contains(&n) {
                problems.push(format!("{title}: {expr}: unknown metric {n}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn the_dashboard_check_catches_bad_queries() {
    // The check above can fail: a typo'd name and a syntax error are caught.
    if !common::have_prometheus_tool("prometheus") {
        return;
    }
    assert_eq!(
        metric_names("rate(inmate_a_total[1m]) / inmate_b"),
        ["inmate_a_total", "inmate_b"]
    );
    let prom = Prometheus::start("127.0.0.1:1").await;
    assert!(prom.query("sum(rate(inmate_x_total[1m])").await.is_err());
    assert!(prom.query("sum(rate(inmate_x_total[1m]))").await.is_ok());
}
