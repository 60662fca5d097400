//! `inmate repair`: copies, for every differing window, the union of points
//! to the nodes that lack them.
//!
//! Each window found by [`super::digest::search`] is read raw from every
//! node and merged point by point, field by field:
//! - a field some nodes have and others lack is written to those that lack
//!   it (all nodes that have it agree);
//! - a field with different values on different nodes is a conflict: it is
//!   reported and left alone, unless `--prefer NODE` names the node whose
//!   value wins (then it is written to the others).
//!
//! Nothing is ever deleted: a point only one node has is copied to the
//! others, never removed from that one. Missing databases and retention
//! policies are created first (never altered: which node is right is not
//! for repair to guess).

use std::collections::BTreeMap;

use futures_util::future::join_all;

use super::RepairError;
use super::digest::WindowDiff;
use super::lp::FieldValue;
use super::node::Node;
use super::points::{Fields, Key, Points, Types, batches, read_window};
use super::schema::{self, Schema};
use super::time::{fmt_ns, split_newest_first};

/// A field whose value differs between nodes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Conflict {
    pub db: String,
    pub rp: String,
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    pub time: i64,
    pub field: String,
    /// `(node, value)` for every node that has the field.
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub schema: Vec<String>,
    pub windows: usize,
    /// Points written per node, in config order.
    pub written: Vec<u64>,
    pub conflicts: Vec<Conflict>,
}

fn show(v: &FieldValue) -> String {
    match v {
        FieldValue::Float(f) => f.to_string(),
        FieldValue::Integer(i) => format!("{i}i"),
        FieldValue::Unsigned(u) => format!("{u}u"),
        FieldValue::String(s) => format!("{s:?}"),
        FieldValue::Boolean(b) => b.to_string(),
    }
}

/// What each node must receive so that all hold the union of `per_node`,
/// and the conflicts found on the way.
pub fn merge(
    names: &[String],
    per_node: &[Points],
    prefer: Option<usize>,
    w: &WindowDiff,
) -> (Vec<Points>, Vec<Conflict>) {
    let mut sends: Vec<Points> = vec![Points::new(); per_node.len()];
    let mut conflicts = Vec::new();
    let mut keys: Vec<&Key> = per_node.iter().flat_map(|p| p.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let have: Vec<Option<&Fields>> = per_node.iter().map(|p| p.get(key)).collect();
        let mut fields: Vec<&String> = have.iter().flatten().flat_map(|f| f.keys()).collect();
        fields.sort();
        fields.dedup();
        for field in fields {
            let vals: Vec<Option<&FieldValue>> =
                have.iter().map(|f| f.and_then(|f| f.get(field))).collect();
            let present: Vec<&FieldValue> = vals.iter().flatten().copied().collect();
            let agree = present.windows(2).all(|p| p[0].same(p[1]));
            let winner = if agree {
                present.first().copied()
            } else {
                conflicts.push(Conflict {
                    db: w.db.clone(),
                    rp: w.rp.clone(),
                    measurement: key.0.clone(),
                    tags: key.1.clone(),
                    time: key.2,
                    field: field.clone(),
                    values: vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (names[i].clone(), show(v))))
                        .collect(),
                });
                prefer.and_then(|p| vals[p])
            };
            let Some(winner) = winner else { continue };
            for (i, v) in vals.iter().enumerate() {
                if v.is_none_or(|v| !v.same(winner)) {
                    sends[i]
                        .entry(key.clone())
                        .or_default()
                        .insert(field.clone(), winner.clone());
                }
            }
        }
    }
    (sends, conflicts)
}

/// Creates on every node the databases and policies another node has.
pub async fn sync_schema(nodes: &[Node], schemas: &[Schema]) -> Result<Vec<String>, RepairError> {
    let mut done = Vec::new();
    for (i, to) in nodes.iter().enumerate() {
        let mut have = schemas[i].clone();
        for (j, from) in schemas.iter().enumerate() {
            if i == j {
                continue;
            }
            for line in schema::apply(from, to, &have, false).await? {
                if !line.starts_with("cannot copy user") {
                    done.push(format!("{}: {line}", to.name));
                }
            }
            // What was just created is there now.
            for (name, db) in &from.dbs {
                let h = have.dbs.entry(name.clone()).or_default();
                for (rp, r) in &db.rps {
                    h.rps.entry(rp.clone()).or_insert_with(|| r.clone());
                }
                for (cq, q) in &db.cqs {
                    h.cqs.entry(cq.clone()).or_insert_with(|| q.clone());
                }
            }
        }
    }
    Ok(done)
}

/// Reads one window from every node and writes what each lacks.
async fn repair_window(
    nodes: &[Node],
    names: &[String],
    types: &BTreeMap<String, Types>,
    w: &WindowDiff,
    prefer: Option<usize>,
    batch: usize,
    report: &mut Report,
) -> Result<(), RepairError> {
    let base = types.get(&w.db).cloned().unwrap_or_default();
    let reads = nodes.iter().map(|n| {
        let mut t = base.clone();
        async move {
            read_window(
                n,
                &w.db,
                &w.rp,
                Some(&w.measurement),
                (w.start, w.end),
                &mut t,
            )
            .await
        }
    });
    let per_node: Vec<Points> = join_all(reads)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let (sends, conflicts) = merge(names, &per_node, prefer, w);
    report.conflicts.extend(conflicts);
    for (i, points) in sends.iter().enumerate() {
        for (body, n) in batches(points.iter(), batch) {
            let dropped = nodes[i].write(&w.db, &w.rp, body.into(), n).await?;
            report.written[i] += n - dropped.min(n);
        }
        if !points.is_empty() {
            super::progress::say(format_args!(
                "repair: {} {}.{}.{} [{}, {}): wrote {} points",
                nodes[i].name,
                w.db,
                w.rp,
                w.measurement,
                fmt_ns(w.start),
                fmt_ns(w.end),
                points.len()
            ));
        }
    }
    Ok(())
}

/// Repairs every window in `diffs`, reading at most `window` at a time.
pub async fn repair(
    nodes: &[Node],
    schemas: &[Schema],
    diffs: &[WindowDiff],
    prefer: Option<usize>,
    batch: usize,
    window: std::time::Duration,
) -> Result<Report, RepairError> {
    let mut report = Report {
        schema: sync_schema(nodes, schemas).await?,
        written: vec![0; nodes.len()],
        ..Default::default()
    };
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut types: BTreeMap<String, Types> = BTreeMap::new();
    for s in schemas {
        for (db, d) in &s.dbs {
            let t = types.entry(db.clone()).or_default();
            for (m, f) in &d.fields {
                let e = t.entry(m.clone()).or_default();
                for (k, v) in f {
                    e.entry(k.clone()).or_insert(*v);
                }
            }
        }
    }
    for w in diffs {
        // Large windows (one a node lacks entirely) are read in pieces of
        // `window`, so memory holds one piece at a time.
        for (a, b) in split_newest_first(w.start, w.end, window.as_nanos() as i64) {
            let piece = WindowDiff {
                start: a,
                end: b,
                ..w.clone()
            };
            repair_window(nodes, &names, &types, &piece, prefer, batch, &mut report).await?;
        }
        report.windows += 1;
    }
    Ok(report)
}
