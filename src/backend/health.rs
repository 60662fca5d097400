//! Node health: active `/ping` checks plus passive results from real traffic.
//!
//! Each node has ONE state value, an atomic word holding "up or down" and
//! the streak of consecutive results that disagree with it. Active pings and
//! passive request outcomes update it with the same compare-and-swap, so the
//! two feeds cannot race each other into a lost flip (two separate counters
//! did). A node goes down after `threshold_down` consecutive failures and
//! comes back after `threshold_up` consecutive successes, so one lost ping
//! does not flap it (the Pingora approach). A hung node (accepting
//! connections, never answering) fails its pings by timeout and is marked
//! down, which is what keeps reads from waiting on it.
//!
//! A check passes only when the answer is InfluxDB's: 204 (or 200 with a
//! JSON object, as `?verbose` answers) with an `X-Influxdb-Version` header.
//! A node answering 200 with garbage to everything (a captive portal, a
//! wrong service on the port) therefore stays down. Passive results come
//! from writes (stored only on 204) and reads, including a read whose body
//! breaks mid-stream (`crate::server` counts that as a failure).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use http::Request;

use super::client::{self, HttpClient};
use crate::config::NodeConfig;

#[derive(Debug, Default)]
struct Detail {
    last_error: Option<String>,
    last_change: Option<SystemTime>,
    version: Option<String>,
    build: Option<String>,
}

/// The top bit of the state word: the node is up.
const UP: u32 = 1 << 31;
/// The rest: consecutive results that disagree with the current state.
const STREAK: u32 = UP - 1;

#[derive(Debug)]
pub struct Health {
    state: AtomicU32,
    threshold_up: u32,
    threshold_down: u32,
    detail: Mutex<Detail>,
}

impl Health {
    /// Nodes start up: the first failed checks take them down, and until then
    /// the gateway behaves like a plain proxy rather than refusing traffic.
    pub fn new(threshold_up: u32, threshold_down: u32) -> Health {
        Health {
            state: AtomicU32::new(UP),
            threshold_up: threshold_up.max(1),
            threshold_down: threshold_down.max(1),
            detail: Mutex::new(Detail::default()),
        }
    }

    pub fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) & UP != 0
    }

    /// Applies one result to the state word; returns true when it flipped it.
    fn record(&self, good: bool) -> bool {
        let mut flipped = false;
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                let up = s & UP != 0;
                flipped = false;
                if up == good {
                    // Agrees with the state: the contrary streak is broken.
                    return Some(s & UP);
                }
                let streak = (s & STREAK).saturating_add(1);
                let threshold = if up {
                    self.threshold_down
                } else {
                    self.threshold_up
                };
                if streak >= threshold {
                    flipped = true;
                    Some(if good { UP } else { 0 })
                } else {
                    Some((s & UP) | streak)
                }
            });
        if flipped {
            self.with_detail(|d| d.last_change = Some(SystemTime::now()));
        }
        flipped
    }

    /// Records a good result; returns true when this flipped the node up.
    pub fn success(&self) -> bool {
        self.record(true)
    }

    /// Records a failure; returns true when this flipped the node down.
    pub fn failure(&self, error: &str) -> bool {
        self.with_detail(|d| d.last_error = Some(error.to_string()));
        self.record(false)
    }

    pub fn last_error(&self) -> Option<String> {
        self.detail.lock().ok().and_then(|d| d.last_error.clone())
    }

    pub fn last_change(&self) -> Option<SystemTime> {
        self.detail.lock().ok().and_then(|d| d.last_change)
    }

    /// `X-Influxdb-Version` / `X-Influxdb-Build` last seen on this node's `/ping`.
    pub fn version(&self) -> Option<(String, Option<String>)> {
        let d = self.detail.lock().ok()?;
        d.version.clone().map(|v| (v, d.build.clone()))
    }

    fn with_detail(&self, f: impl FnOnce(&mut Detail)) {
        if let Ok(mut d) = self.detail.lock() {
            f(&mut d);
        }
    }
}

/// Pings the node every `interval` until `stop` fires, logging state changes.
pub async fn run_checks(
    node: NodeConfig,
    health: std::sync::Arc<Health>,
    http: HttpClient,
    interval: Duration,
    timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let base = node.url.as_str().trim_end_matches('/').to_string();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let req = Request::get(format!("{base}/ping")).body(client::Chunks::default());
        let Ok(req) = req else { return };
        let result = match client::send(&http, req, timeout).await {
            Ok(resp) => influxdb_ping(resp, timeout).await,
            Err(e) => Err(format!("ping failed: {e}")),
        };
        match result {
            Ok((version, build)) => {
                health.with_detail(|d| {
                    d.version = Some(version);
                    d.build = build;
                });
                if health.success() {
                    tracing::info!(node = %node.name, "node is up");
                }
            }
            Err(msg) => {
                if health.failure(&msg) {
                    tracing::warn!(node = %node.name, error = %msg, "node is down");
                }
            }
        }
    }
}

/// The most of a `/ping` body read (InfluxDB's verbose answer is ~30 bytes).
const PING_BODY_LIMIT: usize = 4096;

/// Whether a `/ping` answer comes from InfluxDB: 204 (or 200 with a JSON
/// object, the `verbose` form) carrying `X-Influxdb-Version`. Anything else
/// (a proxy's 200 page, a wrong service on the port) is a failed check, so
/// a node that answers everything with 200 never counts as up. Returns the
/// version and build.
async fn influxdb_ping(
    resp: http::Response<hyper::body::Incoming>,
    timeout: Duration,
) -> Result<(String, Option<String>), String> {
    let status = resp.status();
    let h = resp.headers();
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (version, build) = (get("x-influxdb-version"), get("x-influxdb-build"));
    let json_ok = || async {
        let body = http_body_util::Limited::new(resp.into_body(), PING_BODY_LIMIT);
        let body = tokio::time::timeout(timeout, http_body_util::BodyExt::collect(body)).await;
        let Ok(Ok(body)) = body else { return false };
        serde_json::from_slice::<serde_json::Value>(&body.to_bytes()).is_ok_and(|v| v.is_object())
    };
    let valid = match status {
        http::StatusCode::NO_CONTENT => true,
        http::StatusCode::OK => json_ok().await,
        _ => return Err(format!("ping answered {status}")),
    };
    match version.filter(|v| !v.is_empty()) {
        Some(v) if valid => Ok((v, build)),
        Some(_) => Err(format!(
            "ping answered {status} without a JSON body: not InfluxDB"
        )),
        None => Err(format!(
            "ping answered {status} without X-Influxdb-Version: not InfluxDB"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_consecutive_results() {
        let h = Health::new(2, 2);
        assert!(h.is_up());
        assert!(!h.failure("x"));
        assert!(h.is_up(), "one failure must not flap the node");
        assert!(!h.success());
        assert!(!h.failure("x"));
        assert!(h.failure("x"), "second consecutive failure flips it");
        assert!(!h.is_up());
        assert_eq!(h.last_error().as_deref(), Some("x"));
        assert!(!h.success());
        assert!(!h.is_up());
        assert!(h.success());
        assert!(h.is_up());
    }

    #[test]
    fn separate_thresholds_per_direction() {
        let h = Health::new(3, 1);
        assert!(
            h.failure("x"),
            "one failure takes it down (threshold_down 1)"
        );
        assert!(!h.success());
        assert!(!h.success());
        assert!(!h.failure("y"), "a failure while down breaks the up streak");
        assert!(!h.success());
        assert!(!h.success());
        assert!(h.success(), "three consecutive successes bring it up");
        assert!(h.is_up());
    }

    #[test]
    fn concurrent_feeds_flip_exactly_once() {
        let h = std::sync::Arc::new(Health::new(1000, 1000));
        let flips: usize = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || (0..500).filter(|_| h.failure("x")).count())
            })
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(flips, 1);
        assert!(!h.is_up());
    }
}
