//! Automatic repair (`repair.auto`, off by default): the gateway runs
//! `verify` + `repair` on its own, as library calls, in one background task.
//!
//! Why: a node that fell behind past `queue.max_bytes`/`queue.max_age` had
//! records skipped and is flagged `needs_repair`; without this an operator
//! has to notice the flag and run `inmate repair`. With it, every
//! `repair.interval` the task:
//! 1. for each flagged node whose skipped range is known (the append times
//!    of the skipped records, kept with its log cursor) repairs that range,
//!    widened by [`SKIP_MARGIN`] on both sides, among the up v1 nodes, then
//!    verifies the range again; only when no window differs and no conflict
//!    was left does it clear the flag ([`Log::clear_repaired`], which also
//!    refuses when more records were skipped meanwhile). A flag of unknown
//!    range (a lost cursor file, damaged segments) is left for an operator.
//! 2. verifies `[now - repair.lookback, now)` among the up v1 nodes and
//!    repairs what differs.
//!
//! Limits, on purpose:
//! - It never deletes (it only calls [`fix::repair`], which copies the union
//!   of points) and never resolves a conflict: conflicts are counted,
//!   logged and shown in `/health`, and keep the flag set.
//! - One task, one run at a time: runs never overlap (a run longer than the
//!   interval delays the next). An operator's `inmate repair` in another
//!   process is not excluded; both only ever add points, so they cannot undo
//!   each other.
//! - Load: the CLI's defaults (`--concurrency`, `--rate`, `--batch`,
//!   `--window`), and nodes that are down or paused are left out of a run; a
//!   run needs two up v1 nodes.
//! - Points whose client timestamps lie far (more than [`SKIP_MARGIN`])
//!   from the time the gateway received them are not in the skipped range;
//!   only the scheduled lookback (if long enough) or a full `inmate repair`
//!   finds them.
//! - Nodes with a `token` (InfluxDB 2.x) are not supported by the repair
//!   code: they are left out with a warning.
//!
//! Cancellation: shutdown drops a run in progress at its next await; a
//! half-done repair is harmless (writes of points are idempotent).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::node::Node;
use super::time::now_ns;
use super::{Common, DEFAULT_BATCH, DEFAULT_CONCURRENCY, DEFAULT_RATE, DEFAULT_WINDOW};
use super::{RepairError, fix, verify};
use crate::backend::Node as Backend;
use crate::backend::client::HttpClient;
use crate::backend::cluster::Admin;
use crate::config::RepairConfig;
use crate::log::Log;

/// How far a skipped range is widened on both sides before it is repaired:
/// covers the time between a client stamping a point and the gateway
/// receiving it, and modest clock skew between clients and the gateway.
pub const SKIP_MARGIN: Duration = Duration::from_secs(300);

/// What `/health` shows under `"repair"`.
#[derive(Debug, Clone, Default, Serialize)]
struct State {
    auto: bool,
    interval: String,
    lookback: String,
    running: bool,
    runs: u64,
    /// Start of the last finished run (RFC 3339).
    last_run: Option<String>,
    /// `identical`, `repaired`, `conflicts`, `skipped: …` or `error: …`.
    last_result: Option<String>,
    /// Differing windows repaired, in total.
    windows_repaired: u64,
    /// Points written to nodes, in total.
    points_written: u64,
    /// Conflicts the last run left alone.
    conflicts: u64,
    /// `needs_repair` flags cleared, in total.
    flags_cleared: u64,
    /// Nodes left out because the repair code does not support them (v2).
    unsupported_nodes: Vec<String>,
}

/// The task's progress, shared with `/health`.
#[derive(Debug, Default)]
pub struct Status(Mutex<State>);

impl Status {
    pub fn new(cfg: &RepairConfig, nodes: &[crate::config::NodeConfig]) -> Status {
        let f = |d| humantime::format_duration(d).to_string();
        Status(Mutex::new(State {
            auto: cfg.auto,
            interval: f(cfg.interval),
            lookback: f(cfg.lookback),
            unsupported_nodes: nodes
                .iter()
                .filter(|n| n.token.is_some())
                .map(|n| n.name.clone())
                .collect(),
            ..State::default()
        }))
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The `"repair"` object of `/health`.
    pub fn to_json(&self) -> serde_json::Value {
        let st = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        serde_json::to_value(st).unwrap_or(serde_json::Value::Null)
    }
}

/// What one run did.
#[derive(Debug, Default)]
struct Outcome {
    windows: u64,
    points: u64,
    conflicts: u64,
    cleared: u64,
    skipped: Option<String>,
    errors: Vec<String>,
}

impl Outcome {
    fn result(&self) -> String {
        if let Some(e) = self.errors.first() {
            format!("error: {e}")
        } else if let Some(s) = &self.skipped {
            format!("skipped: {s}")
        } else if self.conflicts > 0 {
            "conflicts".into()
        } else if self.windows > 0 || self.cleared > 0 {
            "repaired".into()
        } else {
            "identical".into()
        }
    }

    fn add(&mut self, r: &Ranged) {
        self.windows += r.windows;
        self.points += r.points;
        self.conflicts += r.conflicts;
    }
}

/// The result of repairing one time range.
struct Ranged {
    windows: u64,
    points: u64,
    conflicts: u64,
    /// After the repair, no window of the range differs.
    clean: bool,
}

/// The background task.
pub struct AutoRepair {
    pub config: RepairConfig,
    pub log: Log,
    pub nodes: Vec<Arc<Backend>>,
    pub http: HttpClient,
    pub status: Arc<Status>,
}

impl AutoRepair {
    /// Runs every `interval` until `cancel`; returns at once when
    /// `repair.auto` is off.
    pub async fn run(self, cancel: CancellationToken) {
        if !self.config.auto {
            return;
        }
        for n in self.nodes.iter().filter(|n| n.config.token.is_some()) {
            tracing::warn!(
                node = %n.name(),
                "repair.auto: InfluxDB 2.x nodes (with a token) are not supported by repair; node left out"
            );
        }
        let every = self.config.interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let started = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            self.status.update(|s| s.running = true);
            let outcome = tokio::select! {
                _ = cancel.cancelled() => {
                    self.status.update(|s| s.running = false);
                    break;
                }
                o = self.run_once() => o,
            };
            crate::metrics::repair_run(&outcome.result(), outcome.windows, outcome.points);
            self.status.update(|s| {
                s.running = false;
                s.runs += 1;
                s.last_run = Some(started);
                s.last_result = Some(outcome.result());
                s.windows_repaired += outcome.windows;
                s.points_written += outcome.points;
                s.conflicts = outcome.conflicts;
            });
        }
    }

    /// The nodes a run may read and write: v1, up, not paused.
    fn participants(&self) -> Vec<Arc<Backend>> {
        let mut up = Vec::new();
        for n in &self.nodes {
            if n.config.token.is_none() && n.health.is_up() && n.admin() != Admin::Paused {
                up.push(n.clone());
            }
        }
        up
    }

    async fn run_once(&self) -> Outcome {
        let mut out = Outcome::default();
        let up = self.participants();
        if up.len() < 2 {
            out.skipped = Some(format!("{} v1 nodes up, a repair needs two", up.len()));
            return out;
        }
        let mut nodes = Vec::with_capacity(up.len());
        for n in &up {
            match Node::new(&n.config, self.http.clone(), DEFAULT_RATE) {
                Ok(node) => nodes.push(node),
                Err(e) => {
                    out.errors.push(e.to_string());
                    return out;
                }
            }
        }
        // 1. Flagged nodes with a known skipped range.
        for n in &up {
            let Some(s) = self.log.stats(n.name()) else {
                continue;
            };
            let Some((from, until)) = s.skipped_range.filter(|_| s.needs_repair) else {
                continue;
            };
            let margin = SKIP_MARGIN.as_millis() as u64;
            let since = ms_to_ns(from.saturating_sub(margin));
            let until = ms_to_ns(until.saturating_add(margin));
            match repair_range(&nodes, since, until, true).await {
                Ok(r) => {
                    out.add(&r);
                    if r.clean
                        && r.conflicts == 0
                        && self.log.clear_repaired(n.name(), s.skipped_records)
                    {
                        out.cleared += 1;
                        self.status.update(|s| s.flags_cleared += 1);
                        tracing::info!(
                            node = %n.name(), windows = r.windows, points = r.points,
                            "repair.auto: skipped range repaired; needs_repair cleared"
                        );
                    } else {
                        tracing::warn!(
                            node = %n.name(), conflicts = r.conflicts, clean = r.clean,
                            "repair.auto: skipped range not fully repaired; needs_repair stays"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %n.name(), error = %e, "repair.auto: repairing the skipped range failed");
                    out.errors.push(e.to_string());
                }
            }
        }
        // 2. The scheduled lookback.
        let now = now_ns();
        let lookback = i64::try_from(self.config.lookback.as_nanos()).unwrap_or(i64::MAX);
        match repair_range(&nodes, now.saturating_sub(lookback), now, false).await {
            Ok(r) => {
                if r.windows > 0 || r.conflicts > 0 {
                    tracing::info!(
                        windows = r.windows,
                        points = r.points,
                        conflicts = r.conflicts,
                        "repair.auto: lookback window repaired"
                    );
                }
                out.add(&r);
            }
            Err(e) => {
                tracing::warn!(error = %e, "repair.auto: lookback run failed");
                out.errors.push(e.to_string());
            }
        }
        out
    }
}

fn ms_to_ns(ms: u64) -> i64 {
    i64::try_from(ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}

/// Verifies `[since, until)` and repairs what differs; with `confirm`,
/// verifies again afterwards to tell whether the range is now clean.
async fn repair_range(
    nodes: &[Node],
    since: i64,
    until: i64,
    confirm: bool,
) -> Result<Ranged, RepairError> {
    let common = Common {
        dbs: Vec::new(),
        since,
        until,
        window: DEFAULT_WINDOW,
        concurrency: DEFAULT_CONCURRENCY,
        rate: DEFAULT_RATE,
    };
    let found = verify::compare(nodes, &common).await?;
    if found.identical() {
        return Ok(Ranged {
            windows: 0,
            points: 0,
            conflicts: 0,
            clean: true,
        });
    }
    let r = fix::repair(
        nodes,
        &found.schemas,
        &found.windows,
        None,
        DEFAULT_BATCH,
        common.window,
    )
    .await?;
    let clean = confirm && verify::compare(nodes, &common).await?.windows.is_empty();
    Ok(Ranged {
        windows: r.windows as u64,
        points: r.written.iter().sum(),
        conflicts: r.conflicts.len() as u64,
        clean,
    })
}
