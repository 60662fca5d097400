//! Scrape-time state: what the gateway *is* rather than what happened.
//!
//! Backlog, oldest unsent age, skipped records and `needs_repair` come from
//! the log's `stats()` per node, the node state from its health and cursor,
//! exactly as `/health` computes them (`server/status.rs`), so the two never
//! disagree. The catch-up estimate divides the backlog by the delivery rate
//! seen between scrapes (smoothed). Log size and segment count are read from
//! the log directory (`data_dir/log/*.seg`).
//!
//! A gateway [`attach`]es itself when it starts, so the separate
//! `metrics_bind` listener, which has no gateway handle of its own, can price
//! every running gateway at scrape time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use metrics::Label;

use super::{node_label, registry};
use crate::server::Gateway;

/// States a node can be reported in; the current one is 1, the others 0.
pub const STATES: &[&str] = &["up", "catching_up", "down", "paused", "draining"];

/// Shortest interval a delivery rate is measured over.
const RATE_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Records delivered per node, and the rate seen by the last scrapes.
#[derive(Default)]
struct Progress {
    total: u64,
    seen_total: u64,
    seen_at: Option<Instant>,
    /// Records per second, smoothed; `None` before two scrapes.
    rate: Option<f64>,
}

static PROGRESS: Mutex<Option<HashMap<String, Progress>>> = Mutex::new(None);
static GATEWAYS: Mutex<Vec<Weak<Gateway>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts `records` delivered to `node`, for the catch-up estimate.
pub(super) fn delivered(node: &str, records: u64) {
    let mut map = lock(&PROGRESS);
    let map = map.get_or_insert_with(HashMap::new);
    match map.get_mut(node) {
        Some(p) => p.total += records,
        None => {
            map.insert(
                node.to_string(),
                Progress {
                    total: records,
                    ..Progress::default()
                },
            );
        }
    }
}

/// The node's recent delivery rate in records per second, if known.
fn rate(node: &str, now: Instant) -> Option<f64> {
    let mut map = lock(&PROGRESS);
    let p = map
        .get_or_insert_with(HashMap::new)
        .entry(node.to_string())
        .or_default();
    match p.seen_at {
        None => {
            p.seen_at = Some(now);
            p.seen_total = p.total;
        }
        Some(at) if now.duration_since(at) >= RATE_MIN_INTERVAL => {
            let r = (p.total - p.seen_total) as f64 / now.duration_since(at).as_secs_f64();
            p.rate = Some(p.rate.map_or(r, |old| 0.5 * old + 0.5 * r));
            p.seen_at = Some(now);
            p.seen_total = p.total;
        }
        Some(_) => {}
    }
    p.rate
}

/// Seconds to deliver `backlog` records at `rate` (+Inf when nothing moves).
pub fn catchup_seconds(backlog: u64, rate: Option<f64>) -> f64 {
    match rate {
        _ if backlog == 0 => 0.0,
        Some(r) if r > 0.0 => backlog as f64 / r,
        _ => f64::INFINITY,
    }
}

/// Makes `gw` visible to the separate metrics listener, and registers its
/// nodes' series so they exist (at 0) before the first event.
pub fn attach(gw: &Arc<Gateway>) {
    let r = registry();
    r.counter("inmate_log_output_waits_total", vec![])
        .increment(0);
    for n in gw.cluster.iter() {
        let node = n.name();
        for name in [
            "inmate_node_delivered_records_total",
            "inmate_node_delivered_points_total",
            "inmate_node_delivered_bytes_total",
            "inmate_node_retries_total",
            "inmate_node_dead_lettered_records_total",
            "inmate_read_fallbacks_total",
        ] {
            r.counter(name, node_label(node)).increment(0);
        }
        for class in ["connect", "timeout", "5xx", "4xx"] {
            let mut labels = node_label(node);
            labels.push(Label::new("class", class));
            r.counter("inmate_node_failures_total", labels).increment(0);
        }
    }
    let mut all = lock(&GATEWAYS);
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(gw));
}

/// The exposition text, with scrape-time state priced from `gw`, or from
/// every attached gateway when `None`.
pub fn render(gw: Option<&Gateway>) -> String {
    match gw {
        Some(gw) => update(gw),
        None => {
            let live: Vec<Arc<Gateway>> =
                lock(&GATEWAYS).iter().filter_map(Weak::upgrade).collect();
            for gw in live {
                update(&gw);
            }
        }
    }
    registry().render()
}

fn update(gw: &Gateway) {
    let r = registry();
    let end = gw.log.next_seq();
    let now = Instant::now();
    for n in gw.cluster.iter() {
        let node = n.name();
        let up = n.health.is_up();
        let acked = n.next_unapplied();
        let state = match n.admin() {
            crate::backend::cluster::Admin::Paused => "paused",
            crate::backend::cluster::Admin::Draining => "draining",
            crate::backend::cluster::Admin::Enabled if !up => "down",
            crate::backend::cluster::Admin::Enabled if acked < end => "catching_up",
            crate::backend::cluster::Admin::Enabled => "up",
        };
        let (records, bytes, age, skipped, repair) = match gw.log.stats(node) {
            Some(s) => (
                s.backlog_records,
                s.backlog_bytes,
                s.oldest_age.map_or(0.0, |d| d.as_secs_f64()),
                s.skipped_records,
                s.needs_repair,
            ),
            None => (end.saturating_sub(acked), 0, 0.0, 0, false),
        };
        let gauge = |name| r.gauge(name, node_label(node));
        gauge("inmate_node_backlog_records").set(records as f64);
        gauge("inmate_node_backlog_bytes").set(bytes as f64);
        gauge("inmate_node_oldest_unsent_age_seconds").set(age);
        gauge("inmate_node_needs_repair").set(if repair { 1.0 } else { 0.0 });
        gauge("inmate_node_catchup_seconds").set(catchup_seconds(records, rate(node, now)));
        r.counter("inmate_node_skipped_records_total", node_label(node))
            .absolute(skipped);
        for s in STATES {
            let mut labels = node_label(node);
            labels.push(Label::new("state", *s));
            r.gauge("inmate_node_state", labels)
                .set(if *s == state { 1.0 } else { 0.0 });
        }
    }
    let (size, segments) = log_files(&gw.config.data_dir.join("log"));
    r.gauge("inmate_log_size_bytes", vec![]).set(size as f64);
    r.gauge("inmate_log_segments", vec![]).set(segments as f64);
}

/// Total size and number of `*.seg` files in `dir` (0, 0 when unreadable).
fn log_files(dir: &std::path::Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .fold((0, 0), |(size, n), e| {
            (size + e.metadata().map_or(0, |m| m.len()), n + 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catchup_is_zero_when_caught_up_and_infinite_when_stuck() {
        assert_eq!(catchup_seconds(0, None), 0.0);
        assert_eq!(catchup_seconds(0, Some(0.0)), 0.0);
        assert_eq!(catchup_seconds(10, None), f64::INFINITY);
        assert_eq!(catchup_seconds(10, Some(0.0)), f64::INFINITY);
        assert_eq!(catchup_seconds(100, Some(50.0)), 2.0);
    }

    #[test]
    fn rate_is_measured_between_scrapes() {
        let t0 = Instant::now();
        let node = "rate-test-node";
        assert_eq!(rate(node, t0), None);
        delivered(node, 100);
        // Too soon to measure.
        assert_eq!(rate(node, t0 + Duration::from_millis(10)), None);
        assert_eq!(rate(node, t0 + Duration::from_secs(2)), Some(50.0));
        // Nothing delivered for 2 s: the smoothed rate halves.
        assert_eq!(rate(node, t0 + Duration::from_secs(4)), Some(25.0));
    }

    #[test]
    fn log_files_counts_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.seg"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("2.seg"), [0u8; 5]).unwrap();
        std::fs::write(dir.path().join("x.cur"), [0u8; 7]).unwrap();
        assert_eq!(log_files(dir.path()), (15, 2));
        assert_eq!(log_files(&dir.path().join("missing")), (0, 0));
    }
}
