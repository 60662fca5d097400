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
