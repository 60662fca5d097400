//! Small HTTP helpers shared by the integration tests: talk to the gateway as
//! a client would, and poll real nodes until they converge.

#![allow(dead_code)]

use std::time::Duration;

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// POST /write through `url`; returns (status, body).
pub async fn write_lp(
    url: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> (u16, String) {
    let mut r = http().post(format!("{url}/write?{query}")).body(body);
    if let Some(t) = token {
        r = r.header("Authorization", format!("Token {t}"));
    }
    let resp = r.send().await.expect("write request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// POST /query with q in the URL (as the influx CLI does); returns (status, json).
pub async fn influxql(
    url: &str,
    db: &str,
    q: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut r = http()
        .post(format!("{url}/query"))
        .query(&[("db", db), ("q", q), ("epoch", "ns")]);
    if let Some(t) = token {
        r = r.header("Authorization", format!("Token {t}"));
    }
    let resp = r.send().await.expect("query request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The first value of the first series of the first result, as u64.
pub fn first_count(v: &serde_json::Value) -> u64 {
    v["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` lines of `m,host=h<i%5> v=<i>i <base+i>` (timestamps in ns).
pub fn lines(measurement: &str, from: usize, n: usize, base: i64) -> String {
    let mut s = String::with_capacity(n * 48);
    for i in from..from + n {
        s.push_str(&format!(
            "{measurement},host=h{} v={}i {}\n",
            i % 5,
            i,
            base + i as i64
        ));
    }
    s
}

/// Two real `influxd` nodes, each with database `db` created directly.
pub async fn two_nodes(db: &str) -> (super::Influxd, super::Influxd) {
    let (a, b) = tokio::join!(super::Influxd::start(), super::Influxd::start());
    a.create_db(db).await;
    b.create_db(db).await;
    (a, b)
}

/// Two v2 stand-in nodes with their own tokens behind a gateway protected
/// by `gw_token`, with fast health checks and retries. The temp dir holds
/// the gateway's data and must outlive the test.
pub async fn v2_cluster(
    token_a: &str,
    token_b: &str,
    gw_token: &str,
) -> (
    super::V2Stub,
    super::V2Stub,
    super::Gateway,
    tempfile::TempDir,
) {
    let stub = |token: &str| {
        super::V2Stub::start(super::V2Options {
            token: token.into(),
            ..Default::default()
        })
    };
    let (a, b) = tokio::join!(stub(token_a), stub(token_b));
    assert_ne!(a.org_id, b.org_id, "each stand-in has its own IDs");
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = super::config_yaml_with_tokens(
        &[(&a.url, token_a), (&b.url, token_b)],
        &format!(
            "auth_token: {gw_token}\nhealth_check_interval: 0.2\nretry_delay: 0.1\nqueue:\n  retry_max_delay: 0.5\n"
        ),
    );
    let gw = super::Gateway::start(&yaml, dir.path()).await;
    (a, b, gw, dir)
}
