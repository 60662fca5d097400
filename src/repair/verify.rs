//! `inmate verify`: compares every node's schema and data and reports what
//! differs, as a table or as JSON (`--json`).
//!
//! Schema differences come from [`super::schema::diff_both`] (first node
//! against each other node); data differences are the windows found by
//! [`super::digest::search`], each with every node's field-value count and
//! the node that holds more ("values differ" when the counts agree but the
//! sums do not).

use futures_util::future::join_all;
use serde_json::json;

use super::digest::{WindowDiff, search};
use super::node::Node;
use super::schema::{self, Schema};
use super::time::fmt_ns;
use super::{Common, RepairError};

/// The outcome of a comparison.
pub struct Findings {
    pub schemas: Vec<Schema>,
    pub schema_diffs: Vec<String>,
    pub windows: Vec<WindowDiff>,
}

impl Findings {
    pub fn identical(&self) -> bool {
        self.schema_diffs.is_empty() && self.windows.is_empty()
    }
}

/// Loads every node's schema and searches for differing windows.
pub async fn compare(nodes: &[Node], common: &Common) -> Result<Findings, RepairError> {
    let schemas: Vec<Schema> = join_all(nodes.iter().map(|n| schema::load(n, common)))
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut schema_diffs = Vec::new();
    for i in 1..nodes.len() {
        schema_diffs.extend(schema::diff_both(
            &nodes[0].name,
            &schemas[0],
            &nodes[i].name,
            &schemas[i],
        ));
    }
    let windows = search(nodes, &schemas, common).await?;
    Ok(Findings {
        schemas,
        schema_diffs,
        windows,
    })
}

/// The node holding the most values in `w`, if one holds more than another.
pub fn more(nodes: &[Node], w: &WindowDiff) -> Option<String> {
    let max = w.counts.iter().copied().max()?;
    let min = w.counts.iter().copied().min()?;
    (max > min)
        .then(|| w.counts.iter().position(|&c| c == max))
        .flatten()
        .map(|i| nodes[i].name.clone())
}

/// The findings as a human-readable report.
pub fn table(nodes: &[Node], f: &Findings) -> String {
    let mut out = String::new();
    if f.identical() {
        out.push_str(&format!("identical: {} nodes agree\n", nodes.len()));
        return out;
    }
    for d in &f.schema_diffs {
        out.push_str(&format!("schema: {d}\n"));
    }
    if !f.windows.is_empty() {
        let mut rows = vec![vec![
            "DATABASE".to_string(),
            "RP".into(),
            "MEASUREMENT".into(),
            "START".into(),
            "END".into(),
        ]];
        rows[0].extend(nodes.iter().map(|n| n.name.clone()));
        rows[0].push("MORE".into());
        for w in &f.windows {
            let mut r = vec![
                w.db.clone(),
                w.rp.clone(),
                w.measurement.clone(),
                fmt_ns(w.start),
                fmt_ns(w.end),
            ];
            r.extend(w.counts.iter().map(u64::to_string));
            r.push(more(nodes, w).unwrap_or_else(|| "values differ".into()));
            rows.push(r);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in rows {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "differences: {} schema, {} windows\n",
        f.schema_diffs.len(),
        f.windows.len()
    ));
    out
}

/// The findings as JSON.
pub fn to_json(nodes: &[Node], f: &Findings) -> serde_json::Value {
    let windows: Vec<serde_json::Value> = f
        .windows
        .iter()
        .map(|w| {
            let counts: serde_json::Map<String, serde_json::Value> = nodes
                .iter()
                .zip(&w.counts)
                .map(|(n, c)| (n.name.clone(), json!(c)))
                .collect();
            json!({
                "db": w.db, "rp": w.rp, "measurement": w.measurement,
                "start": w.start, "end": w.end,
                "start_time": fmt_ns(w.start), "end_time": fmt_ns(w.end),
                "counts": counts, "more": more(nodes, w),
            })
        })
        .collect();
    json!({
        "identical": f.identical(),
        "nodes": nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        "schema": f.schema_diffs,
        "windows": windows,
    })
}
