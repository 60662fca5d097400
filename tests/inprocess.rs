//! The gateway's front door, served in-process (`inmate::app::serve` on a
//! port-0 listener) with no `influxd`: routing, `/ping`, the gateway token,
//! body limits, parameter checks and the v1/v2 error shapes.
//!
//! Why: these answers need no node at all (nodes point at a closed port or
//! an in-test v2 stand-in), so they can be checked in milliseconds and
//! stay black-box over HTTP while the internals change. The expected texts
//! are InfluxDB's own (see the reference notes) as the gateway answers them
//! today.

mod common;

use std::io::Write;
use std::time::Duration;

use common::inproc::{self, InProc};
use common::{V2Options, V2Stub, eventually, free_port};
use serde_json::{Value, json};

const TOKEN: &str = "front-door-secret";

/// A node URL on which nothing listens.
fn closed_node() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Starts the gateway for `nodes` with fast timings plus `extra` YAML.
async fn start(nodes: &[&str], extra: &str) -> InProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut yaml = String::from("addresses:\n");
    for n in nodes {
        yaml.push_str(&format!("  - url: {n}\n"));
    }
    yaml.push_str(&format!(
        "bind_address: 127.0.0.1\nport: 0\ndata_dir: {}\n\
         health_check_interval: 0.05\nhealth_check_timeout: 0.2\nhealth_threshold: 1\n\
         retry_delay: 0.05\nwrite_timeout: 1\nquery_timeout: 1\nshutdown_timeout: 0.2\n\
         queue:\n  retry_max_delay: 0.2\n  fsync: never\n{extra}",
        serde_json::to_string(&dir.path().to_string_lossy()).expect("quote")
    ));
    inproc::serve(&yaml, "inprocess.yaml", dir).await
}

fn http() -> reqwest::Client {
    common::client_with_timeout(Duration::from_secs(5))
}

/// Status, the headers the tests look at, and the body as JSON (or a string).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request to the in-process gateway");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Asserts a v1 error: `{"error": msg}` plus `X-Influxdb-Error` (not on 401).
fn assert_v1_error(a: &Answer, status: u16, msg: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body, json!({ "error": msg }));
    let header = if status == 401 { None } else { Some(msg) };
    assert_eq!(a.header("x-influxdb-error"), header);
    assert_eq!(a.header("x-platform-error-code"), None);
}

/// Asserts a v2 error: `{"code","message"}` plus `X-Platform-Error-Code`.
fn assert_v2_error(a: &Answer, status: u16, code: &str, msg: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body, json!({ "code": code, "message": msg }));
    assert_eq!(a.header("x-platform-error-code"), Some(code));
    assert_eq!(a.header("x-influxdb-error"), None);
}

#[tokio::test]
async fn unknown_routes_answer_501_and_known_ones_route() {
    let gw = start(&[&closed_node()], "").await;
    let c = http();
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/write"),
        ("DELETE", "/query"),
        ("PUT", "/ping"),
        ("GET", "/debug/vars"),
        ("GET", "/api/v2/nope"),
        ("DELETE", "/api/v2/write"),
    ] {
        let a = send(c.request(method.parse().unwrap(), format!("{}{path}", gw.url))).await;
        assert_eq!(a.status, 501, "{method} {path}");
        assert_eq!(
            a.body,
            json!({"error": "Feature not supported"}),
            "{method} {path}"
        );
    }
    let root = send(c.get(format!("{}/", gw.url))).await;
    assert_eq!(root.status, 200);
    for path in ["/write", "/query"] {
        let a = send(c.request(reqwest::Method::OPTIONS, format!("{}{path}", gw.url))).await;
        assert_eq!(a.status, 204, "OPTIONS {path}");
    }
    // /health is the gateway's own: it answers even with every node down.
    let h = send(c.get(format!("{}/health", gw.url))).await;
    assert!(h.body["nodes"].is_array(), "{}", h.body);
    assert_eq!(h.body["nodes"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn ping_answers_with_a_healthy_nodes_version_or_its_own() {
    // No node reachable: the gateway answers with its own version.
    let gw = start(&[&closed_node()], "").await;
    let c = http();
    for path in ["/ping", "/api/v2/ping"] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let a = send(c.request(method.clone(), format!("{}{path}", gw.url))).await;
            assert_eq!(a.status, 204, "{method} {path}");
            let v = a.header("x-influxdb-version").unwrap_or_default();
            assert!(v.starts_with("inmate-"), "{method} {path}: {v:?}");
            assert_eq!(a.header("x-influxdb-build"), Some("OSS"));
        }
    }
    let verbose = send(c.get(format!("{}/ping?verbose=true", gw.url))).await;
    assert_eq!(verbose.status, 200);
    assert!(
        verbose.body["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("inmate-")),
        "{}",
        verbose.body
    );

    // A reachable node: its version, once a health check has seen it.
    let stub = V2Stub::start(V2Options::default()).await;
    let gw = start(&[&stub.url], "").await;
    let url = format!("{}/ping", gw.url);
    eventually(
        Duration::from_secs(3),
        "the node's version on /ping",
        || {
            let req = c.get(&url);
            async move {
                let a = send(req).await;
                a.status == 204 && a.header("x-influxdb-version") == Some("v2.7.11")
            }
        },
    )
    .await;
}

#[tokio::test]
async fn the_gateway_token_is_required_in_either_scheme() {
    let gw = start(&[&closed_node()], &format!("auth_token: {TOKEN}\n")).await;
    let c = http();
    let v1 = format!("{}/write?db=d", gw.url);
    let v2 = format!("{}/api/v2/write?org=o&bucket=b", gw.url);
    let bad: [Option<String>; 6] = [
        None,
        Some(format!("Token {TOKEN}x")),
        Some(format!("Token {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
        Some("Token".to_string()),
    ];
    for auth in &bad {
        let with = |r: reqwest::RequestBuilder| match auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let a = send(with(c.post(&v1)).body("m v=1 1\n")).await;
        assert_v1_error(&a, 401, "authorization failed");
        let a = send(with(c.post(&v2)).body("m v=1 1\n")).await;
        assert_v2_error(&a, 401, "unauthorized", "unauthorized access");
        // Every route is behind the token, unknown ones too.
        let a = send(with(c.get(format!("{}/nope", gw.url)))).await;
        assert_eq!(a.status, 401, "{auth:?}");
    }
    for scheme in ["Token", "Bearer", "token", "BEARER"] {
        let auth = format!("{scheme} {TOKEN}");
        let a = send(c.post(&v1).header("Authorization", &auth).body("m v=1 1\n")).await;
        assert_eq!(a.status, 204, "{auth}: {}", a.body);
        let a = send(c.post(&v2).header("Authorization", &auth).body("m v=1 1\n")).await;
        assert_eq!(a.status, 204, "{auth}: {}", a.body);
    }
}

#[tokio::test]
async fn oversized_bodies_and_gzip_bombs_get_413() {
    let gw = start(&[&closed_node()], "max_body_size: 4096\n").await;
    let c = http();
    let v1 = format!("{}/write?db=d", gw.url);
    let v2 = format!("{}/api/v2/write?org=o&bucket=b", gw.url);
    let big = "m v=1i 1\n".repeat(1000);
    let a = send(c.post(&v1).body(big.clone())).await;
    assert_v1_error(&a, 413, "Request Entity Too Large");
    let a = send(c.post(&v2).body(big.clone())).await;
    assert_v2_error(&a, 413, "request too large", "Request Entity Too Large");

    // Small on the wire, 2 MiB once inflated.
    let bomb = gzip(&vec![b'#'; 2 << 20]);
    assert!(bomb.len() < 4096, "the bomb fits the raw limit");
    let gz = |url: &str| {
        c.post(url)
            .header("Content-Encoding", "gzip")
            .body(bomb.clone())
    };
    let a = send(gz(&v1)).await;
    assert_v1_error(&a, 413, "Request Entity Too Large");
    let a = send(gz(&v2)).await;
    assert_v2_error(&a, 413, "request too large", "Request Entity Too Large");
    // Within the limit, plain or gzip, the write is taken.
    let ok = "m v=1i 1\n".repeat(100);
    let a = send(c.post(&v1).body(ok.clone())).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let a = send(
        c.post(&v2)
            .header("Content-Encoding", "gzip")
            .body(gzip(ok.as_bytes())),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
}

#[tokio::test]
async fn bad_parameters_get_influxdbs_400s() {
    let gw = start(&[&closed_node()], "").await;
    let c = http();
    let w1 = |q: &str| c.post(format!("{}/write?{q}", gw.url)).body("m v=1 1\n");
    let w2 = |q: &str| {
        c.post(format!("{}/api/v2/write?{q}", gw.url))
            .body("m v=1 1\n")
    };

    assert_v1_error(&send(w1("")).await, 400, "database is required");
    assert_v1_error(&send(w1("db=")).await, 400, "database is required");
    assert_v1_error(
        &send(w1("db=d&precision=x")).await,
        400,
        r#"invalid precision "x" (use n, u, ms, s, m or h)"#,
    );
    assert_v1_error(
        &send(w1("db=d&consistency=most")).await,
        400,
        "invalid consistency level",
    );
    assert_v2_error(
        &send(w2("org=o&bucket=b&precision=m")).await,
        400,
        "invalid",
        "invalid precision; valid precision units are ns, us, ms, and s",
    );
    assert_v2_error(
        &send(w2("bucket=b")).await,
        400,
        "invalid",
        "Please provide either orgID or org",
    );
    assert_v2_error(
        &send(w2("org=o")).await,
        404,
        "not found",
        "bucket not found",
    );
    // Valid parameters in every precision each format accepts.
    for p in ["n", "ns", "u", "ms", "s", "m", "h"] {
        let a = send(w1(&format!("db=d&precision={p}"))).await;
        assert_eq!(a.status, 204, "v1 precision {p}: {}", a.body);
    }
    for p in ["ns", "us", "ms", "s"] {
        let a = send(w2(&format!("org=o&bucket=b&precision={p}"))).await;
        assert_eq!(a.status, 204, "v2 precision {p}: {}", a.body);
    }
}

#[tokio::test]
async fn bad_lines_get_each_apis_error_shape() {
    let gw = start(&[&closed_node()], "").await;
    let c = http();
    let body = "good v=1 1\nbad line here\n";
    // v1: the good line is kept and the answer is a partial write.
    let a = send(c.post(format!("{}/write?db=d", gw.url)).body(body)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    let msg = a.body["error"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.starts_with("partial write: unable to parse 'bad line here'")
            && msg.ends_with(" dropped=0"),
        "{msg}"
    );
    assert_eq!(a.header("x-influxdb-error"), Some(msg.as_str()));
    // Every line bad: no "partial write".
    let a = send(
        c.post(format!("{}/write?db=d", gw.url))
            .body("bad line here\n"),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let msg = a.body["error"].as_str().unwrap_or_default();
    assert!(msg.starts_with("unable to parse 'bad line here'"), "{msg}");
    // v2: the whole batch is refused, in the v2 shape.
    let a = send(
        c.post(format!("{}/api/v2/write?org=o&bucket=b", gw.url))
            .body(body),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["code"], "invalid", "{}", a.body);
    assert_eq!(a.header("x-platform-error-code"), Some("invalid"));
    let msg = a.body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("unable to parse 'bad line here'"), "{msg}");
    // Corrupt gzip is a 400 too.
    let a = send(
        c.post(format!("{}/write?db=d", gw.url))
            .header("Content-Encoding", "gzip")
            .body(b"\x1f\x8b\x08\x00garbage".to_vec()),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["error"].is_string(), "{}", a.body);
}
