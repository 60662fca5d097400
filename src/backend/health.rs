//! Node health: active `/ping` checks plus passive results from real traffic.
//!
//! A node changes state only after `threshold` consecutive results the other
//! way, so one lost ping does not flap it (the Pingora approach). A hung node
//! (accepting connections, never answering) fails its pings by timeout and is
//! marked down, which is what keeps reads from waiting on it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    successes: AtomicU32,
    failures: AtomicU32,
    threshold: u32,
    detail: Mutex<Detail>,
}

impl Health {
    /// Nodes start up: the first failed checks take them down, and until then
    /// the gateway behaves like a plain proxy rather than refusing traffic.
    pub fn new(threshold: u32) -> Health {
        Health {
            up: AtomicBool::new(true),
            successes: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            threshold: threshold.max(1),
            detail: Mutex::new(Detail::default()),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Records a good result; returns true when this flipped the node up.
    pub fn success(&self) -> bool {
        self.failures.store(0, Ordering::Release);
        let n = self.successes.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold && !self.up.swap(true, Ordering::AcqRel) {
            self.with_detail(|d| d.last_change = Some(SystemTime::now()));
            return true;
        }
        false
    }

    /// Records a failure; returns true when this flipped the node down.
    pub fn failure(&self, error: &str) -> bool {
        self.successes.store(0, Ordering::Release);
        self.with_detail(|d| d.last_error = Some(error.to_string()));
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold && self.up.swap(false, Ordering::AcqRel) {
            self.with_detail(|d| d.last_change = Some(SystemTime::now()));
            return true;
        }
        false
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
        match client::send(&http, req, timeout).await {
            Ok(resp) if resp.status().is_success() => {
                let h = resp.headers();
                let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (version, build) = (get("x-influxdb-version"), get("x-influxdb-build"));
                health.with_detail(|d| {
                    if version.is_some() {
                        d.version = version;
                        d.build = build;
                    }
                });
                if health.success() {
                    tracing::info!(node = %node.name, "node is up");
                }
            }
            Ok(resp) => {
                let msg = format!("ping answered {}", resp.status());
                if health.failure(&msg) {
                    tracing::warn!(node = %node.name, error = %msg, "node is down");
                }
            }
            Err(e) => {
                let msg = format!("ping failed: {e}");
                if health.failure(&msg) {
                    tracing::warn!(node = %node.name, error = %msg, "node is down");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_consecutive_results() {
        let h = Health::new(2);
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
}
