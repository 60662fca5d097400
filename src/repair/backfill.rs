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
//! lists the windows that hold points (and sizes the progress bar).
//!
//! Throughput: the source's raw read costs it about as much CPU as the
//! destination's ingest, so the copy asks for MessagePack (less work for
//! the source than JSON; [`super::points::msgpack`] turns it straight into
//! line protocol) and keeps both sides busy: each window is read as
//! `--concurrency` time slices at once, the next window is read while the
//! last bodies of the previous one are written (a few bodies in flight at
//! most), and writes go one request at a time in bodies of `--batch` points.
//! A database where a field key is an integer in one measurement and a float
//! in another is read measurement by measurement for those: InfluxDB would
//! otherwise return the integers as floats.
//!
//! Checkpoint: `data_dir/backfill/<node>.json` lists finished windows and
//! is replaced atomically after each one, so a killed backfill resumes with
//! the same cutoff and never copies a finished window again. Once all is
//! done the checkpoint is marked finished, and the next backfill starts
//! afresh.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::digest::shard_ranges;
use super::node::Node;
use super::node::RawReader;
use super::points::msgpack::{Lines, MsgpackError};
use super::points::{CHUNK, Types, decode, raw_query_from, raw_sources};
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

/// A window to copy: database, retention policy, `[start, end)`.
type Window = (String, String, i64, i64);

/// What the reading side hands the writing side.
enum Piece {
    /// A line-protocol body of the window at this index, with its points.
    Body(usize, String, u64),
    /// Every body of the window at this index has been handed over.
    Read(usize),
}

/// Line-protocol bodies in flight between reading and writing, at most
/// (bounds memory to a few MB at the default batch).
const IN_FLIGHT: usize = 8;

/// Reads `[a, b)` of `db`/`rp` from `from` (MessagePack when the node
/// speaks it) and hands it on as bodies of `batch` points.
async fn read_slice(
    from: &Node,
    (db, source, a, b): (&str, &str, i64, i64),
    mut types: Types,
    (batch, window): (usize, usize),
    tx: &mpsc::Sender<Piece>,
) -> Result<(), RepairError> {
    let q = raw_query_from(source, a, b);
    let mut lines = Lines::new(batch);
    let unknown = |f: String| RepairError::node(&from.name, format!("field {f} has no known type"));
    match from.query_raw(db, &q, CHUNK).await? {
        RawReader::Msgpack(mut reader) => {
            while let Some(obj) = reader.next().await? {
                let mut r = lines.chunk(&obj, &types);
                if let Err(MsgpackError::UnknownField(_)) = r {
                    types = schema::field_types(from, db).await?;
                    r = lines.chunk(&obj, &types);
                }
                r.map_err(|e| match e {
                    MsgpackError::UnknownField(f) => unknown(f),
                    e => RepairError::node(&from.name, e.to_string()),
                })?;
                if !send_full(&mut lines, window, tx).await {
                    return Ok(());
                }
            }
        }
        RawReader::Json(mut reader) => {
            while let Some(chunk) = reader.next().await? {
                for s in &chunk {
                    let mut encode = |m: &str, tags: &_, t: i64, f: _| {
                        encode_point(&mut lines.body, m, tags, &f, t);
                        lines.encoded();
                    };
                    if decode(s, &types, &mut encode).is_err() {
                        types = schema::field_types(from, db).await?;
                        decode(s, &types, &mut encode).map_err(unknown)?;
                    }
                }
                if !send_full(&mut lines, window, tx).await {
                    return Ok(());
                }
            }
        }
    }
    if lines.n > 0 {
        let _ = tx.send(Piece::Body(window, lines.body, lines.n)).await;
    }
    Ok(())
}

/// Hands on the full bodies; `false` once the writing side has stopped.
async fn send_full(lines: &mut Lines, window: usize, tx: &mpsc::Sender<Piece>) -> bool {
    for (body, n) in lines.full.drain(..) {
        if tx.send(Piece::Body(window, body, n)).await.is_err() {
            return false;
        }
    }
    true
}

/// Copies `windows` in order from `from` to `to` as a pipeline: window
/// N+1 is read while the bodies of window N are still being written (at
/// most [`IN_FLIGHT`] bodies wait), one write in flight. Each window is
/// read as `slices` time slices at once. `done(i, points)` runs once every
/// body of window `i` is written, in window order; returns all points.
async fn copy_windows(
    from: &Node,
    to: &Node,
    windows: &[Window],
    types_of: &dyn Fn(&str) -> Types,
    (batch, slices): (usize, usize),
    progress: &mut Progress,
    mut done: impl FnMut(usize, u64, &Progress) -> Result<(), RepairError>,
) -> Result<u64, RepairError> {
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let read = async move {
        for (i, (db, rp, a, b)) in windows.iter().enumerate() {
            let types = types_of(db);
            let sources = raw_sources(db, rp, &types);
            let k = slices.max(1) as i64;
            let span = ((b - a) + k - 1) / k;
            let reads = sources.iter().flat_map(|s| {
                (0..k)
                    .map(move |j| (s, a + j * span, (a + (j + 1) * span).min(*b)))
                    .filter(|(_, x, y)| x < y)
            });
            let types = &types;
            let tx = &tx;
            futures_util::stream::iter(reads)
                .map(|(s, x, y)| read_slice(from, (db, s, x, y), types.clone(), (batch, i), tx))
                .buffer_unordered(k as usize)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()?;
            if tx.send(Piece::Read(i)).await.is_err() {
                break;
            }
        }
        Ok::<(), RepairError>(())
    };
    let write = async move {
        let mut points = vec![0u64; windows.len()];
        while let Some(piece) = rx.recv().await {
            match piece {
                Piece::Body(i, body, n) => {
                    let (db, rp, _, _) = &windows[i];
                    to.write(db, rp, body.into(), n).await?;
                    points[i] += n;
                    progress.inc(n);
                }
                Piece::Read(i) => done(i, points[i], progress)?,
            }
        }
        Ok::<u64, RepairError>(points.iter().sum())
    };
    let (r, w) = tokio::join!(read, write);
    let total = w?;
    r?;
    Ok(total)
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
    // Field types as of now (after the cutoff was taken), so every
    // measurement holding points before the cutoff is known.
    let mut types = std::collections::BTreeMap::new();
    for db in src.dbs.keys() {
        types.insert(db.clone(), schema::field_types(from, db).await?);
    }
    let types_of = |db: &str| -> Types { types.get(db).cloned().unwrap_or_default() };
    let todo: Vec<Window> = todo
        .into_iter()
        .map(|(db, rp, a, b, _)| (db, rp, a, b))
        .collect();
    copy_windows(
        from,
        to,
        &todo,
        &types_of,
        (batch, common.concurrency),
        &mut progress,
        |i, n, progress| {
            let (db, rp, a, b) = &todo[i];
            progress.line(&format!(
                "backfill: copied window {db}.{rp} [{}, {}) {n} points",
                fmt_ns(*a),
                fmt_ns(*b)
            ));
            cp.done.insert(todo[i].clone());
            cp.windows_copied += 1;
            cp.points_copied += n;
            summary.windows += 1;
            summary.points += n;
            cp.save(&path)
        },
    )
    .await?;
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
    let tails: Vec<Window> = tails
        .into_iter()
        .map(|(db, rp)| (db, rp, tail_from, cp.cutoff))
        .collect();
    summary.points += copy_windows(
        from,
        to,
        &tails,
        &types_of,
        (batch, common.concurrency),
        &mut progress,
        |_, _, _| Ok(()),
    )
    .await?;
    progress.finish();
    summary.points_per_sec = progress.rate();
    cp.finished = true;
    cp.save(&path)?;
    Ok(summary)
}
