//! Events: the calls the gateway's code paths make, one line each at the
//! call site, so instrumentation never reshapes the code it watches.
//!
//! Every function maps its arguments to bounded labels here (a path to its
//! route, a send error to its class), so call sites pass what they have.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram, Label};

use super::{node_label, registry, scrape};
use crate::backend::client::SendError;
use crate::lineproto::ScanOutput;
use crate::record::{Kind as RecordKind, Record};

/// Records the time since it was made into a histogram when dropped.
#[must_use = "the timer records when dropped"]
pub struct Timer {
    hist: Option<Histogram>,
    start: Instant,
}

impl Timer {
    /// Times into histogram `name`; does nothing while metrics are off.
    fn start(name: &'static str) -> Timer {
        Timer {
            hist: super::enabled().then(|| registry().histogram(name, vec![])),
            start: Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(h) = &self.hist {
            h.record(self.start.elapsed().as_secs_f64());
        }
    }
}

/// The bounded `route` label of a request path.
pub fn route_of(path: &str) -> &'static str {
    match path {
        "/write" => "/write",
        "/api/v2/write" => "/api/v2/write",
        "/query" => "/query",
        "/api/v2/query" => "/api/v2/query",
        "/ping" | "/api/v2/ping" => "/ping",
        "/health" | "/api/v2/health" => "/health",
        "/ready" => "/ready",
        "/" => "/",
        "/metrics" => "/metrics",
        "/api/v2/delete" => "/api/v2/delete",
        "/api/v2/buckets" | "/api/v2/bucket" => "/api/v2/buckets",
        p if p == "/api/v2/tasks" || p.starts_with("/api/v2/tasks/") => "/api/v2/tasks",
        p if p == "/api/v2/orgs" || p.starts_with("/api/v2/orgs/") => "/api/v2/orgs",
        _ => "other",
    }
}

fn method_of(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// A client request answered with `status`, `start` being its arrival.
pub fn request(method: &Method, path: &str, status: StatusCode, start: Instant) {
    if !super::enabled() {
        return;
    }
    let key = (route_of(path), method_of(method), status.as_u16());
    let cached = request_handles()
        .read()
        .ok()
        .and_then(|m| m.get(&key).cloned());
    let (count, duration) = cached.unwrap_or_else(|| {
        let (route, method, status) = key;
        let r = registry();
        let labels = vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        let handles = (
            r.counter("inmate_http_requests_total", labels),
            r.histogram(
                "inmate_http_request_duration_seconds",
                vec![Label::new("route", route)],
            ),
        );
        if let Ok(mut m) = request_handles().write() {
            m.insert(key, handles.clone());
        }
        handles
    });
    count.increment(1);
    duration.record(start.elapsed().as_secs_f64());
}

/// Route, method and status of a request: all bounded (`route_of`,
/// `method_of`, a `u16`), so the cache below stays small.
type RequestKey = (&'static str, &'static str, u16);

/// The request metrics' handles by labels, so a request costs one read lock
/// and a small-key lookup instead of building labels (and a status string)
/// and hashing them in the registry twice. Every request pays this, reads
/// included, which the read benchmark measured at ~1.7 % of the gateway.
fn request_handles() -> &'static RwLock<HashMap<RequestKey, (Counter, Histogram)>> {
    static HANDLES: OnceLock<RwLock<HashMap<RequestKey, (Counter, Histogram)>>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

/// A write body as received (`len` bytes on the wire).
pub fn write_wire_bytes(len: usize) {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_write_wire_bytes_total", vec![])
        .increment(len as u64);
}

/// A write body after gunzip (`len` bytes).
pub fn write_decoded_bytes(len: usize) {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_write_decoded_bytes_total", vec![])
        .increment(len as u64);
}

/// A scanned write body; `rejected_all` when its valid points are refused
/// too (v2 refuses a batch with any bad line).
pub fn points(scanned: &ScanOutput, rejected_all: bool) {
    if !super::enabled() {
        return;
    }
    let (accepted, rejected) = if rejected_all {
        (0, scanned.points + scanned.bad_lines)
    } else {
        (scanned.points, scanned.bad_lines)
    };
    let r = registry();
    let result = |v: &'static str| vec![Label::new("result", v)];
    r.counter("inmate_write_points_total", result("accepted"))
        .increment(accepted as u64);
    r.counter("inmate_write_points_total", result("rejected"))
        .increment(rejected as u64);
}

/// Times one durable-log group commit (write, plus fsync per policy).
pub fn log_append_timer() -> Timer {
    Timer::start("inmate_log_append_duration_seconds")
}

/// `file.sync_data()`, timed.
pub fn fsync(sync: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    let _t = Timer::start("inmate_log_fsync_duration_seconds");
    sync()
}

/// The moment a replicated request is sent, for [`delivery_error`] and
/// [`delivery_answer`].
pub fn send_started() -> Instant {
    Instant::now()
}

fn delivery_latency(node: &str, since: Instant) {
    registry()
        .histogram("inmate_node_request_duration_seconds", node_label(node))
        .record(since.elapsed().as_secs_f64());
}

fn failure(node: &str, class: &'static str) {
    let mut labels = node_label(node);
    labels.push(Label::new("class", class));
    registry()
        .counter("inmate_node_failures_total", labels)
        .increment(1);
}

/// A replicated request that got no answer.
pub fn delivery_error(node: &str, error: &SendError, since: Instant) {
    if !super::enabled() {
        return;
    }
    delivery_latency(node, since);
    failure(
        node,
        match error {
            SendError::Timeout(_) => "timeout",
            SendError::Connect(_) | SendError::Build(_) => "connect",
        },
    );
}

/// A replicated request answered with `status` for `group`.
pub fn delivery_answer(node: &str, status: StatusCode, since: Instant, group: &[(u64, Record)]) {
    if !super::enabled() {
        return;
    }
    delivery_latency(node, since);
    if status.is_server_error() {
        return failure(node, "5xx");
    }
    if status.is_client_error() {
        return failure(node, "4xx");
    }
    if !status.is_success() {
        return;
    }
    let (mut points, mut bytes) = (0u64, 0u64);
    for (_, rec) in group {
        bytes += rec.body.len() as u64;
        if rec.kind == RecordKind::Write {
            // Counted at the door; records of older logs carry 0, and only
            // their plain bodies are counted here.
            points += if rec.points > 0 || rec.gzip {
                u64::from(rec.points)
            } else {
                memchr::memchr_iter(b'\n', &rec.body).count() as u64
            };
        }
    }
    let r = registry();
    let records = group.len() as u64;
    r.counter("inmate_node_delivered_records_total", node_label(node))
        .increment(records);
    r.counter("inmate_node_delivered_points_total", node_label(node))
        .increment(points);
    r.counter("inmate_node_delivered_bytes_total", node_label(node))
        .increment(bytes);
    scrape::delivered(node, records);
}

/// A replicated request is about to be retried.
pub fn retry(node: &str) {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_node_retries_total", node_label(node))
        .increment(1);
}

/// `records` records went to the node's dead-letter file.
pub fn dead_lettered(node: &str, records: usize) {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_node_dead_lettered_records_total", node_label(node))
        .increment(records as u64);
}

/// A read to `node` failed and the next node is tried.
pub fn read_fallback(node: &str) {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_read_fallbacks_total", node_label(node))
        .increment(1);
}

/// A read answered by a node; `stale` when it lagged.
pub fn read_served(stale: bool) {
    if !super::enabled() {
        return;
    }
    if stale {
        registry()
            .counter("inmate_read_stale_total", vec![])
            .increment(1);
    }
}

/// A log line had to wait for the log output to take the buffer (a stdout
/// that does not keep up slows whatever logs, requests included).
pub fn log_output_wait() {
    if !super::enabled() {
        return;
    }
    registry()
        .counter("inmate_log_output_waits_total", vec![])
        .increment(1);
}

/// Times a read's wait for a caught-up node (read-your-writes).
pub fn read_wait() -> Timer {
    Timer::start("inmate_read_wait_duration_seconds")
}

/// One automatic repair run ended with `result` (its `/health` text; the
/// label is its first word), having repaired `windows` and written `points`.
pub fn repair_run(result: &str, windows: u64, points: u64) {
    if !super::enabled() {
        return;
    }
    let class = match result.split(':').next().unwrap_or("") {
        "identical" => "identical",
        "repaired" => "repaired",
        "conflicts" => "conflicts",
        "skipped" => "skipped",
        _ => "error",
    };
    let r = registry();
    r.counter(
        "inmate_repair_runs_total",
        vec![Label::new("result", class)],
    )
    .increment(1);
    r.counter("inmate_repair_windows_total", vec![])
        .increment(windows);
    r.counter("inmate_repair_points_total", vec![])
        .increment(points);
}
