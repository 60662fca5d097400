//! `inmate backfill --to NODE`: brings an empty or new node up to date
//! while live writes keep flowing through the gateway.
//!
//! Why this split of work is safe: from the moment the node is in the
//! config, new writes reach it through the gateway's log. Those that reach
//! it before the backfill has created their database are dead-lettered by
//! the gateway (404), but their points are older than the cutoff: the
//! backfill copies everything older than its cutoff (taken once the schema
//! exists on the node), so between the two every point arrives; a point that arrives both ways is written twice with the same
//! value, which InfluxDB merges. Writes stamped in the last two seconds
//! before the cutoff may reach the source after their window was read, so
//! that tail is copied once more at the end (waiting until two seconds past
//! the cutoff if the backfill was quicker).
//! The one race: a point overwritten with a new value during the backfill
//! may be copied back with its old value; `verify` finds such windows when
//! the field is numeric, `repair` when it reads the window.
//!
//! Order of work: schema first (databases, retention policies with the same
//! duration, replication, shard duration and default flag, continuous
//! queries; users are reported, as passwords cannot be read), then window
//! by window (`--window`, default 1h), newest first so recent data (what is
//! most read) is there soonest. Empty windows are skipped: one
//! `count(*) … GROUP BY time(window)` per database and retention policy
//! lists the windows that hold points (and sizes the progress bar). Each
//! window is read as `--concurrency` time slices at once (the source's
//! query engine is the slow side) and written with one request in flight.
//!
//! Checkpoint: `data_dir/backfill/<node>.json` lists finished windows and
//! is replaced atomically after each one, so a killed backfill resumes with
//! the same cutoff and never copies a finished window again. Once all is
//! done the checkpoint is marked finished, and the next backfill starts
//! afresh.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use super::digest::shard_ranges;
use super::node::Node;
use super::points::{CHUNK, Types, decode, raw_query};
use super::progress::Progress;
use super::time::{fmt_ns, split_newest_first};
use super::{Common, RepairError, schema, source};
use crate::repair::lp::encode_point;

/// How long after its cutoff a backfill copies the last moments before it
/// again, so writes the gateway stamped just before the cutoff but delivered
/// to the source later are not missed.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Progress of one node's backfill, as stored on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub to: String,
    pub from: String,
    /// Everything before this (ns) is the backfill's job.
    pub cutoff: i64,
    /// Finished windows: `(db, rp, start, end)`.
    pub done: BTreeSet<(String, String, i64, i64)>,
    /// Windows copied, over all runs (each window once).
    pub windows_copied: u64,
    pub points_copied: u64,
    pub finished: bool,
}

impl Checkpoint {
    pub fn path(data_dir: &Path, node: &str) -> PathBuf {
        data_dir.join("backfill").join(format!("{node}.json"))
    }

    fn load(path: &Path) -> Result<Option<Checkpoint>, RepairError> {
        let err = |msg: String| RepairError::Checkpoint {
            path: path.display().to_string(),
            msg,
        };
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Replaces the file atomically (write, fsync, rename).
    fn save(&self, path: &Path) -> Result<(), RepairError> {
        let err = |msg: String| RepairError::Checkpoint {
            path: path.display().to_string(),
            msg,
        };
        let dir = path
            .parent()
            .ok_or_else(|| err("no parent directory".into()))?;
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| err(e.to_string()))
    }
}

/// What a backfill run did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub schema: Vec<String>,
    pub windows: usize,
    pub windows_skipped: usize,
    pub points: u64,
    pub points_per_sec: f64,
}

/// Non-empty windows of `db`/`rp` in `[a, b)` with their estimated points
/// (the largest per-field count of each measurement, summed).
async fn windows(
    from: &Node,
    db: &str,
    rp: &str,
    (a, b): (i64, i64),
    step: u64,
) -> Result<Vec<(i64, i64, u64)>, RepairError> {
    let q = format!(
        "SELECT count(*) FROM {} WHERE time >= {a} AND time < {b} GROUP BY time({step}s) fill(none)",
        source(db, rp, None)
    );
    let r = from.query(db, &q, false).await?;
    let mut est: std::collections::BTreeMap<i64, u64> = Default::default();
    for s in r.series {
        for row in s.values {
            let t = row.first().and_then(|v| v.as_i64()).unwrap_or(0);
            let most = row
                .iter()
                .skip(1)
                .filter_map(|v| v.as_u64())
                .max()
                .unwrap_or(0);
            *est.entry(t).or_default() += most;
        }
    }
    let step_ns = step as i64 * 1_000_000_000;
    let mut out = Vec::new();
    for (t, n) in est.into_iter().rev() {
        for (lo, hi) in split_newest_first(t.max(a), (t + step_ns).min(b), step_ns) {
            out.push((lo, hi, n));
        }
    }
    Ok(out)
}

/// Reads `[a, b)` of `db`/`rp` from `from` and sends it on as line-protocol
/// bodies of `batch` points.
async fn read_slice(
    from: &Node,
    (db, rp, a, b): (&str, &str, i64, i64),
    mut types: Types,
    batch: usize,
    tx: tokio::sync::mpsc::Sender<(String, u64)>,
) -> Result<(), RepairError> {
    let mut reader = from
        .query_chunked(db, &raw_query(db, rp, None, a, b), CHUNK)
        .await?;
    let mut body = String::new();
    let mut n = 0u64;
    while let Some(chunk) = reader.next().await? {
        for s in &chunk {
            let mut encode = |m: &str, tags: &_, t: i64, f: _| {
                encode_point(&mut body, m, tags, &f, t);
                n += 1;
            };
            if decode(s, &types, &mut encode).is_err() {
                types = schema::field_types(from, db).await?;
                decode(s, &types, &mut encode).map_err(|f| {
                    RepairError::node(&from.name, format!("field {f} has no known type"))
                })?;
            }
            if n as usize >= batch {
                let full = (std::mem::take(&mut body), std::mem::take(&mut n));
                if tx.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    if n > 0 {
        let _ = tx.send((body, n)).await;
    }
    Ok(())
}

/// Copies one window from `from` to `to`. The source's query engine is
/// the slow side (one raw query yields well under what a node ingests), so
/// the window is read as `slices` time slices at once, their batches
/// written as they come, one write in flight.
async fn copy_window(
    from: &Node,
    to: &Node,
    (db, rp, a, b): (&str, &str, i64, i64),
    types: &Types,
    (batch, slices): (usize, usize),
    progress: &mut Progress,
) -> Result<u64, RepairError> {
    let k = slices.max(1) as i64;
    let span = ((b - a) + k - 1) / k;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, u64)>(4 * k as usize);
    let readers: Vec<_> = (0..k)
        .map(|i| (a + i * span, (a + (i + 1) * span).min(b)))
        .filter(|(x, y)| x < y)
        .map(|(x, y)| read_slice(from, (db, rp, x, y), types.clone(), batch, tx.clone()))
        .collect();
    drop(tx);
    let read = join_all(readers);
    let mut written = 0u64;
    let write = async {
        while let Some((body, n)) = rx.recv().await {
            to.write(db, rp, body.into(), n).await?;
            written += n;
            progress.inc(n);
        }
        Ok::<(), RepairError>(())
    };
    let (r, w) = tokio::join!(read, write);
    w?;
    r.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(written)
}

/// Runs (or resumes) a backfill of `to` from `from`.
pub async fn backfill(
    from: &Node,
    to: &Node,
    common: &Common,
    cutoff_arg: Option<i64>,
    data_dir: &Path,
    batch: usize,
) -> Result<Summary, RepairError> {
    let path = Checkpoint::path(data_dir, &to.name);
    // Schema first, so the gateway's live writes find their database.
    let src = schema::load(from, common).await?;
    let have = schema::load(to, common).await?;
    let mut summary = Summary {
        schema: schema::apply(&src, to, &have, true).await?,
        ..Default::default()
    };
    for line in &summary.schema {
        eprintln!("backfill: {line}");
    }
    let mut cp = match Checkpoint::load(&path)? {
        Some(cp) if !cp.finished => {
            if cp.from != from.name {
                return Err(RepairError::Usage(format!(
                    "{} holds an unfinished backfill from {}; pass --from {} or delete it",
                    path.display(),
                    cp.from,
                    cp.from
                )));
            }
            eprintln!(
                "backfill: resuming ({} windows done, cutoff {})",
                cp.done.len(),
                fmt_ns(cp.cutoff)
            );
            cp
        }
        _ => Checkpoint {
            to: to.name.clone(),
            from: from.name.clone(),
            cutoff: cutoff_arg.unwrap_or_else(super::time::now_ns),
            ..Default::default()
        },
    };
    cp.save(&path)?;
    let step = common.window.as_secs().max(1);
    let ranges = shard_ranges(std::slice::from_ref(from)).await?;
    let mut todo = Vec::new();
    for (db, d) in &src.dbs {
        for rp in d.rps.keys() {
            let Some(&(a, b)) = ranges.get(&(db.clone(), rp.clone())) else {
                continue;
            };
            let (a, b) = (a.max(common.since), b.min(cp.cutoff).min(common.until));
            if a < b {
                for (lo, hi, n) in windows(from, db, rp, (a, b), step).await? {
                    todo.push((db.clone(), rp.clone(), lo, hi, n));
                }
            }
        }
    }
    // Newest first across all databases.
    todo.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1))));
    let (done, todo): (Vec<_>, Vec<_>) = todo
        .into_iter()
        .partition(|(db, rp, a, b, _)| cp.done.contains(&(db.clone(), rp.clone(), *a, *b)));
    summary.windows_skipped = done.len();
    let mut progress = Progress::new(todo.iter().map(|w| w.4).sum());
    let types_of = |db: &str| -> Types {
        src.dbs
            .get(db)
            .map(|d| d.fields.clone())
            .unwrap_or_default()
    };
    for (db, rp, a, b, _) in todo {
        let t = types_of(&db);
        let n = copy_window(
            from,
            to,
            (&db, &rp, a, b),
            &t,
            (batch, common.concurrency),
            &mut progress,
        )
        .await?;
        progress.line(&format!(
            "backfill: copied window {db}.{rp} [{}, {}) {n} points",
            fmt_ns(a),
            fmt_ns(b)
        ));
        cp.done.insert((db, rp, a, b));
        cp.windows_copied += 1;
        cp.points_copied += n;
        cp.save(&path)?;
        summary.windows += 1;
        summary.points += n;
    }
    // Live writes stamped just before the cutoff may have reached the
    // source only after their window was read: copy that tail once more,
    // once they have had time to land (writes are idempotent).
    let wait = cp.cutoff.saturating_add(SETTLE.as_nanos() as i64) - super::time::now_ns();
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_nanos(wait as u64)).await;
    }
    let tail_from = cp.cutoff - SETTLE.as_nanos() as i64;
    let tails: BTreeSet<(String, String)> = cp
        .done
        .iter()
        .filter(|w| w.3 > tail_from)
        .map(|w| (w.0.clone(), w.1.clone()))
        .collect();
    for (db, rp) in tails {
        let t = types_of(&db);
        let window = (db.as_str(), rp.as_str(), tail_from, cp.cutoff);
        let n = copy_window(
            from,
            to,
            window,
            &t,
            (batch, common.concurrency),
            &mut progress,
        )
        .await?;
        summary.points += n;
    }
    progress.finish();
    summary.points_per_sec = progress.rate();
    cp.finished = true;
    cp.save(&path)?;
    Ok(summary)
}
