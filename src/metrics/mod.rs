//! Prometheus metrics: what an operator graphs and alerts on.
//!
//! `/metrics` serves the Prometheus text format (0.0.4) on the main port,
//! behind the gateway token like every route, and, when `metrics_bind` is
//! set, on a separate listener that needs no token ([`serve_metrics`]).
//!
//! # Crate
//! `metrics` (the facade's handle types) with `metrics-exporter-prometheus`
//! (the registry and the text encoder), rather than `prometheus-client`:
//! the exporter writes the classic Prometheus text format that `promtool
//! check metrics` and every scraper read (prometheus-client writes only
//! OpenMetrics text), and its per-event cost is low: a counter is one atomic add, a histogram
//! observation one lock-free push, folded into buckets at scrape time (and
//! every few seconds by an upkeep thread, so memory stays bounded without
//! scrapes). The facade's *global* recorder is not installed: the registry
//! is this module's own, behind [`registry`], and only this module names it.
//!
//! # Where numbers come from
//! - Events (deliveries, retries, failures, requests, log appends, fsyncs,
//!   read fallbacks) are recorded where they happen, through one-line calls
//!   into this module ([`events`]).
//! - State (backlog, oldest unsent age, node state, `needs_repair`, catch-up
//!   estimate, log size) is computed at scrape time from the log's `stats()`
//!   and the nodes' health, as `/health` does ([`scrape`]).
//!
//! # Names and labels
//! Every name starts `inmate_`, uses base units (`_seconds`, `_bytes`) and
//! counters end `_total` ([`CATALOG`] lists them all with their help text).
//! Labels are bounded: `node` is a configured node name, `route` one of the
//! gateway's routes (else `other`), `method` a standard HTTP method (else
//! `other`), `status` an HTTP status code, `class`/`state`/`result` fixed
//! sets. A client's database or bucket name is never a label.
//!
//! The registry is process-wide, so gateways started in one process (tests)
//! share counters; node-labelled series stay apart by node name.

mod events;
mod scrape;
mod serve;

pub use events::*;
pub use scrape::{attach, render};
pub use serve::{CONTENT_TYPE, response, serve_metrics};

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// The kind of a metric, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the gateway exposes: name, kind, help text.
pub const CATALOG: &[(&str, Kind, &str)] = &[
    // Per node.
    (
        "inmate_node_backlog_records",
        Kind::Gauge,
        "Log records not yet delivered to the node.",
    ),
    (
        "inmate_node_backlog_bytes",
        Kind::Gauge,
        "Stored bytes not yet delivered to the node.",
    ),
    (
        "inmate_node_oldest_unsent_age_seconds",
        Kind::Gauge,
        "Age of the oldest record not yet delivered to the node (0 when caught up).",
    ),
    (
        "inmate_node_delivered_records_total",
        Kind::Counter,
        "Log records the node accepted (2xx).",
    ),
    (
        "inmate_node_delivered_points_total",
        Kind::Counter,
        "Points in write bodies the node accepted; bodies stored gzip are not inflated to count them.",
    ),
    (
        "inmate_node_delivered_bytes_total",
        Kind::Counter,
        "Stored body bytes the node accepted.",
    ),
    (
        "inmate_node_request_duration_seconds",
        Kind::Histogram,
        "Replicated request latency to the node, until response headers.",
    ),
    (
        "inmate_node_retries_total",
        Kind::Counter,
        "Replicated requests retried after a failure.",
    ),
    (
        "inmate_node_failures_total",
        Kind::Counter,
        "Failed replicated requests by class: connect, timeout, 5xx, 4xx.",
    ),
    (
        "inmate_node_dead_lettered_records_total",
        Kind::Counter,
        "Records the node rejected for good, written to its dead-letter file.",
    ),
    (
        "inmate_node_skipped_records_total",
        Kind::Counter,
        "Records skipped for the node by queue.max_bytes / queue.max_age.",
    ),
    (
        "inmate_node_state",
        Kind::Gauge,
        "1 for the node's current state (up, catching_up, down, paused, draining), 0 for the others.",
    ),
    (
        "inmate_node_needs_repair",
        Kind::Gauge,
        "1 when records were skipped or lost for the node.",
    ),
    (
        "inmate_node_catchup_seconds",
        Kind::Gauge,
        "Estimated time to deliver the backlog at the recent delivery rate (+Inf when nothing is moving).",
    ),
    // Automatic repair (`repair.auto`).
    (
        "inmate_repair_runs_total",
        Kind::Counter,
        "Automatic repair runs by result: identical, repaired, conflicts, skipped, error.",
    ),
    (
        "inmate_repair_windows_total",
        Kind::Counter,
        "Differing windows the automatic repair repaired.",
    ),
    (
        "inmate_repair_points_total",
        Kind::Counter,
        "Points the automatic repair wrote to nodes.",
    ),
    // Gateway.
    (
        "inmate_http_requests_total",
        Kind::Counter,
        "Client requests by route, method and status.",
    ),
    (
        "inmate_http_request_duration_seconds",
        Kind::Histogram,
        "Client request latency by route, until response headers.",
    ),
    (
        "inmate_write_wire_bytes_total",
        Kind::Counter,
        "Write body bytes as received (compressed when the client sent gzip).",
    ),
    (
        "inmate_write_decoded_bytes_total",
        Kind::Counter,
        "Write body bytes after gunzip.",
    ),
    (
        "inmate_write_points_total",
        Kind::Counter,
        "Points by result: accepted (valid, sent to the log) or rejected (bad lines).",
    ),
    (
        "inmate_log_append_duration_seconds",
        Kind::Histogram,
        "Durable log group commit latency: write plus fsync when fsync is always.",
    ),
    (
        "inmate_log_fsync_duration_seconds",
        Kind::Histogram,
        "Durable log fdatasync latency.",
    ),
    (
        "inmate_log_size_bytes",
        Kind::Gauge,
        "Bytes in the durable log's segment files.",
    ),
    (
        "inmate_log_segments",
        Kind::Gauge,
        "Segment files in the durable log.",
    ),
    (
        "inmate_log_output_waits_total",
        Kind::Counter,
        "Log lines that waited because the gateway's own log output (stdout) fell 8 MiB behind.",
    ),
    (
        "inmate_read_fallbacks_total",
        Kind::Counter,
        "Reads a node failed (error, timeout, 5xx), so the next node was tried.",
    ),
    (
        "inmate_read_stale_total",
        Kind::Counter,
        "Reads answered by a node that had not applied every acknowledged write.",
    ),
    (
        "inmate_read_wait_duration_seconds",
        Kind::Histogram,
        "Reads that waited for a node to catch up (read-your-writes): count and duration.",
    ),
    (
        "inmate_build_info",
        Kind::Gauge,
        "Always 1; the version label says which build runs.",
    ),
];

/// Latency buckets (seconds) shared by every histogram: 100 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

const META: Metadata<'static> = Metadata::new("inmate", Level::INFO, None);

/// The process's metric registry and its text encoder.
pub struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The registry, created on first use with every metric described.
/// Whether events are recorded (`metrics_enabled`, default on). Off, every
/// event function returns at once; `/metrics` still answers, with the
/// state priced at scrape time and event counters at 0. Exists so the
/// cost of metrics can be measured (BENCHMARKS.md) and avoided.
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns event recording on or off for this process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::new)
}

impl Registry {
    fn new() -> Registry {
        let builder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        for (name, kind, help) in CATALOG {
            let name = KeyName::from_const_str(name);
            let help = SharedString::const_str(help);
            match kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, None, help),
            }
        }
        // Histogram samples wait in lock-free buckets until folded; fold them
        // even when nobody scrapes, so memory stays bounded.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        let r = Registry { recorder, handle };
        r.gauge(
            "inmate_build_info",
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        for result in ["accepted", "rejected"] {
            r.counter(
                "inmate_write_points_total",
                vec![Label::new("result", result)],
            )
            .increment(0);
        }
        for name in [
            "inmate_write_wire_bytes_total",
            "inmate_write_decoded_bytes_total",
            "inmate_read_stale_total",
        ] {
            r.counter(name, vec![]).increment(0);
        }
        r
    }

    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &META)
    }

    pub fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &META)
    }

    /// The exposition text of everything registered.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// A `node` label.
fn node_label(node: &str) -> Vec<Label> {
    vec![Label::new("node", node.to_string())]
}

#[cfg(test)]
mod tests;
