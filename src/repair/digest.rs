//! Finding the time windows in which nodes hold different points, cheaply.
//!
//! A window's digest, per measurement, is one aggregate query per node:
//! `count()` of every field and `sum()` of every numeric field,
//! `GROUP BY time(step)`. The search is adaptive: it starts with buckets of
//! one day, or of the retention policy's shard duration when that is
//! shorter (over the shard groups any node has, clipped to
//! `--since/--until`), and only buckets
//! whose digests differ are queried again with a finer step (1d, 1h, 10m,
//! 1m, 10s, 1s), down to `--window`. Identical data therefore costs one
//! query per node, measurement and level-0 range. A window of at least
//! 1000 values that a node lacks entirely is reported whole (a wiped node
//! yields one row per day, not one per minute).
//!
//! What the digest catches: missing or extra points or fields (counts),
//! changed numeric values (sums; float sums compare with a relative
//! tolerance of 1e-12, as summation order may differ between nodes).
//! What it cannot catch: a changed string or boolean value, numeric changes
//! that cancel out within one window, and tag differences that keep the
//! counts (a point moved to another series with the same timestamp);
//! `repair` compares raw points and finds those within the windows it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;

use super::lp::FieldType;
use super::node::{Node, Pacer};
use super::schema::Schema;
use super::time::parse_rfc3339;
use super::{Common, RepairError, ident, source};

/// Finer steps the search splits into, coarsest first.
const LADDER: [u64; 6] = [86_400, 3_600, 600, 60, 10, 1];
/// Values in a window one node lacks entirely above which the window is
/// reported as it is, not narrowed further.
const WHOLE_WINDOW: u64 = 1_000;
/// The coarsest step: a first query in shard-sized buckets would have to
/// be repeated over the same points in day buckets as soon as anything
/// differs (measured: 77 s instead of 31 s to find one point among 10 M),
/// while day buckets cost the node the same scan.
const LEVEL0_MAX: u64 = 86_400;
/// The level-0 step when a policy has no shard duration.
const DEFAULT_SHARD: Duration = Duration::from_secs(7 * 86_400);

/// A measurement in one retention policy, with the union of its fields.
#[derive(Debug, Clone)]
pub struct Target {
    pub db: String,
    pub rp: String,
    pub measurement: String,
    pub fields: Vec<(String, FieldType)>,
}

/// One window whose digests differ.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WindowDiff {
    pub db: String,
    pub rp: String,
    pub measurement: String,
    pub start: i64,
    pub end: i64,
    /// Field values (sum of per-field counts) per node, in config order.
    pub counts: Vec<u64>,
}

/// The measurements of every database and retention policy on any node.
pub fn targets(schemas: &[Schema]) -> Vec<Target> {
    let mut map: BTreeMap<(String, String, String), BTreeMap<String, FieldType>> = BTreeMap::new();
    for s in schemas {
        for (db, d) in &s.dbs {
            let rps: BTreeSet<&String> = schemas
                .iter()
                .filter_map(|o| o.dbs.get(db))
                .flat_map(|o| o.rps.keys())
                .collect();
            for (m, fields) in &d.fields {
                for rp in &rps {
                    let e = map
                        .entry((db.clone(), (*rp).clone(), m.clone()))
                        .or_default();
                    for (f, t) in fields {
                        e.entry(f.clone()).or_insert(*t);
                    }
                }
            }
        }
    }
    map.into_iter()
        .map(|((db, rp, measurement), f)| Target {
            db,
            rp,
            measurement,
            fields: f.into_iter().collect(),
        })
        .collect()
}

/// `[start, end)` of the shard groups of every `(db, rp)` on any node.
pub async fn shard_ranges(
    nodes: &[Node],
) -> Result<BTreeMap<(String, String), (i64, i64)>, RepairError> {
    let mut out: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for n in nodes {
        let r = n.query("", "SHOW SHARDS", false).await?;
        for s in &r.series {
            let col = |c: &str| s.columns.iter().position(|x| x == c);
            let (Some(rp), Some(st), Some(en)) =
                (col("retention_policy"), col("start_time"), col("end_time"))
            else {
                continue;
            };
            for row in &s.values {
                let get = |i: usize| row.get(i).and_then(|v| v.as_str()).unwrap_or("");
                let (Some(a), Some(b)) = (parse_rfc3339(get(st)), parse_rfc3339(get(en))) else {
                    continue;
                };
                let e = out
                    .entry((s.name.clone(), get(rp).to_string()))
                    .or_insert((a, b));
                e.0 = e.0.min(a);
                e.1 = e.1.max(b);
            }
        }
    }
    Ok(out)
}

/// The next finer step after `step` (seconds), not finer than `min`.
fn finer(step: u64, min: u64) -> Option<u64> {
    if step <= min {
        return None;
    }
    Some(
        LADDER
            .iter()
            .copied()
            .find(|&s| s < step && s >= min)
            .unwrap_or(min),
    )
}

/// The digest query of `t` over `[a, b)` in buckets of `step` seconds.
fn digest_query(t: &Target, a: i64, b: i64, step: u64) -> String {
    let mut cols = Vec::new();
    for (f, ty) in &t.fields {
        cols.push(format!("count({})", ident(f)));
        if ty.is_numeric() {
            cols.push(format!("sum({})", ident(f)));
        }
    }
    format!(
        "SELECT {} FROM {} WHERE time >= {a} AND time < {b} GROUP BY time({step}s) fill(none)",
        cols.join(", "),
        source(&t.db, &t.rp, Some(&t.measurement))
    )
}

type Rows = BTreeMap<i64, Vec<serde_json::Value>>;

fn cells_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a.is_null() == b.is_null() && (a.is_null() || a == b),
    }
}

fn rows_equal(a: Option<&Vec<serde_json::Value>>, b: Option<&Vec<serde_json::Value>>) -> bool {
    // An absent row or cell is all counts zero and all sums null.
    let blank =
        |v: Option<&serde_json::Value>| v.is_none_or(|v| v.is_null() || v.as_f64() == Some(0.0));
    let empty = Vec::new();
    let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
    (0..a.len().max(b.len())).all(|i| match (a.get(i), b.get(i)) {
        (Some(x), Some(y)) if cells_equal(x, y) => true,
        (x, y) => blank(x) && blank(y),
    })
}

fn count_of(t: &Target, row: Option<&Vec<serde_json::Value>>) -> u64 {
    let Some(row) = row else { return 0 };
    let mut i = 0;
    let mut total = 0;
    for (_, ty) in &t.fields {
        total += row.get(i).and_then(|v| v.as_u64()).unwrap_or(0);
        i += if ty.is_numeric() { 2 } else { 1 };
    }
    total
}

/// One piece of the search: a target's range, queried in buckets of `step`.
struct Probe {
    target: usize,
    start: i64,
    end: i64,
    step: u64,
}

/// Runs the adaptive search and returns the finest differing windows.
pub async fn search(
    nodes: &[Node],
    schemas: &[Schema],
    common: &Common,
) -> Result<Vec<WindowDiff>, RepairError> {
    let targets = targets(schemas);
    let ranges = shard_ranges(nodes).await?;
    let min_step = common.window.as_secs().max(1);
    let pacer = Pacer::new(common.rate);
    let mut probes = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let Some(&(a, b)) = ranges.get(&(t.db.clone(), t.rp.clone())) else {
            continue;
        };
        let (a, b) = (a.max(common.since), b.min(common.until));
        if a >= b || t.fields.is_empty() {
            continue;
        }
        let shard = schemas
            .iter()
            .find_map(|s| s.dbs.get(&t.db)?.rps.get(&t.rp).map(|r| r.shard_duration))
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_SHARD);
        probes.push(Probe {
            target: i,
            start: a,
            end: b,
            step: shard.as_secs().min(LEVEL0_MAX).max(min_step),
        });
    }
    let mut found = Vec::new();
    while !probes.is_empty() {
        // Collected, so the future stays `Send` for the gateway's spawned
        // automatic repair (a lazy iterator of closures over `&Probe` trips
        // the compiler's higher-ranked `Send` check).
        let jobs: Vec<(usize, usize)> = (0..probes.len())
            .flat_map(|p| (0..nodes.len()).map(move |n| (p, n)))
            .collect();
        let results: Vec<Result<(usize, usize, Rows), RepairError>> =
            futures_util::stream::iter(jobs)
                .map(|(p, n)| {
                    let probe = &probes[p];
                    let t = &targets[probe.target];
                    let q = digest_query(t, probe.start, probe.end, probe.step);
                    let pacer = &pacer;
                    async move {
                        pacer.take(1).await;
                        let r = nodes[n].query(&t.db, &q, false).await?;
                        let mut rows = Rows::new();
                        for s in r.series {
                            for mut v in s.values {
                                if v.is_empty() {
                                    continue;
                                }
                                let time = v.remove(0).as_i64().unwrap_or(0);
                                rows.insert(time, v);
                            }
                        }
                        Ok((p, n, rows))
                    }
                })
                .buffer_unordered(common.concurrency.max(1))
                .collect()
                .await;
        let mut per: Vec<Vec<Rows>> = probes
            .iter()
            .map(|_| vec![Rows::new(); nodes.len()])
            .collect();
        for r in results {
            let (p, n, rows) = r?;
            per[p][n] = rows;
        }
        let mut next = Vec::new();
        for (probe, node_rows) in probes.iter().zip(per) {
            let t = &targets[probe.target];
            let buckets: BTreeSet<i64> = node_rows.iter().flat_map(|r| r.keys().copied()).collect();
            for bt in buckets {
                let first = node_rows[0].get(&bt);
                if node_rows.iter().all(|r| rows_equal(first, r.get(&bt))) {
                    continue;
                }
                let start = bt.max(probe.start);
                let end = (bt + probe.step as i64 * 1_000_000_000).min(probe.end);
                let counts: Vec<u64> = node_rows.iter().map(|r| count_of(t, r.get(&bt))).collect();
                // A node that lacks a large window entirely lacks all of it:
                // narrowing further would only multiply rows and queries.
                let lacks_all = counts.contains(&0)
                    && counts.iter().copied().max().unwrap_or(0) >= WHOLE_WINDOW;
                match finer(probe.step, min_step).filter(|_| !lacks_all) {
                    Some(step) => next.push(Probe {
                        target: probe.target,
                        start,
                        end,
                        step,
                    }),
                    None => found.push(WindowDiff {
                        db: t.db.clone(),
                        rp: t.rp.clone(),
                        measurement: t.measurement.clone(),
                        start,
                        end,
                        counts,
                    }),
                }
            }
        }
        probes = next;
    }
    found.sort_by(|a, b| {
        (&a.db, &a.rp, &a.measurement, a.start).cmp(&(&b.db, &b.rp, &b.measurement, b.start))
    });
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_get_finer_down_to_the_window() {
        assert_eq!(finer(604_800, 1), Some(86_400));
        assert_eq!(finer(86_400, 60), Some(3_600));
        assert_eq!(finer(60, 60), None);
        assert_eq!(finer(3_600, 1_800), Some(1_800));
    }

    #[test]
    fn absent_rows_equal_zero_counts() {
        let a = vec![serde_json::json!(0), serde_json::Value::Null];
        assert!(rows_equal(Some(&a), None));
        let b = vec![serde_json::json!(2), serde_json::json!(3.5)];
        assert!(!rows_equal(Some(&b), None));
        let c = vec![serde_json::json!(2), serde_json::json!(3.5 + 1e-15)];
        assert!(rows_equal(Some(&b), Some(&c)));
        let d = vec![serde_json::json!(2), serde_json::json!(3.6)];
        assert!(!rows_equal(Some(&b), Some(&d)));
    }
}
