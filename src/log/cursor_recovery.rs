//! Open-time recovery of the cursors, after the segments are known.
//!
//! Each configured node gets a position and flags from its cursor file, the
//! manifest of known nodes (`manifest.rs`) and what segment recovery lost:
//!
//! | cursor file | node in manifest | position            | flags                      |
//! |-------------|------------------|---------------------|----------------------------|
//! | valid       | any              | the file's value    | file's, OR manifest's, OR `needs_repair` if it needed lost records |
//! | missing     | yes              | oldest record       | `needs_repair` (the backlog would else be skipped silently) |
//! | missing     | no (new node)    | log end             | `needs_backfill` if the log ever held a record |
//! | corrupt     | any              | oldest record       | manifest's, OR `needs_repair` if any records were lost |
//!
//! "No manifest" (a brand-new log, or a log written by a version without
//! one) makes every node without a cursor file a new node: on a first start
//! the log is empty, so nobody is flagged; on an upgrade the nodes that have
//! cursor files keep them unflagged. Every event is logged naming the node.

use std::path::Path;

use super::cursor::{self, CursorRecord, Loaded};
use super::error::LogError;
use super::fs::Fs;
use super::manifest::{self, NodeFlags, Nodes};
use super::recovery::RecoveryReport;
use super::segment::fsync_dir;

/// Where segment recovery left the log.
pub(crate) struct LogSpan {
    /// Oldest retained seq and the next seq to append.
    pub oldest: u64,
    pub next_seq: u64,
}

/// Resolves every configured cursor, persists what changed (manifest first,
/// then cursor files), removes cursor files of unconfigured nodes. Returns
/// the cursors in `names` order and the manifest as written.
pub(crate) fn resolve(
    fs: &dyn Fs,
    dir: &Path,
    loaded: Vec<(String, Loaded)>,
    span: LogSpan,
    report: &mut RecoveryReport,
) -> Result<(Vec<(String, CursorRecord)>, Nodes), LogError> {
    let cdir = dir.join("cursors");
    let io_err = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| LogError::io(op, p, e)
    };
    let LogSpan { oldest, next_seq } = span;
    let saved = match manifest::load(fs, dir).map_err(io_err("read manifest", dir))? {
        Ok(m) => m,
        Err(why) => {
            tracing::error!(reason = %why, "log manifest of known nodes is corrupt; treating it as missing");
            None
        }
    };
    let had_manifest = saved.is_some();
    let mut nodes = saved.unwrap_or_default();
    let before = nodes.clone();
    // Records lost anywhere (gaps cover damaged frames and missing files;
    // a moved-aside segment may lie before or after any position).
    let lost_any = !report.gaps.is_empty() || !report.corrupt_segments.is_empty();

    let mut cursors = Vec::new();
    let mut to_store = Vec::new();
    for (name, l) in loaded {
        let known = nodes.get(&name).copied();
        let kept = known.unwrap_or_default();
        let rec = match l {
            Loaded::Found(mut r) => {
                if r.next > next_seq {
                    tracing::warn!(cursor = %name, at = r.next, end = next_seq, "cursor beyond the log end; clamped");
                    r.next = next_seq;
                    to_store.push(name.clone());
                }
                r.needs_repair |= kept.needs_repair;
                r.needs_backfill = kept.needs_backfill;
                let lost = r.next < oldest || report.gaps.iter().any(|(_, to)| *to > r.next);
                if lost && !r.needs_repair {
                    tracing::warn!(cursor = %name, at = r.next, oldest, "cursor lost records; needs repair");
                    r.needs_repair = true;
                    report.damaged_cursors.push(name.clone());
                    to_store.push(name.clone());
                }
                r
            }
            Loaded::Missing if known.is_some() => {
                tracing::error!(
                    cursor = %name, oldest,
                    "cursor file of a known node is missing; re-delivering from the oldest record, node needs repair"
                );
                report.missing_cursors.push(name.clone());
                to_store.push(name.clone());
                CursorRecord {
                    next: oldest,
                    needs_repair: true,
                    needs_backfill: kept.needs_backfill,
                    ..CursorRecord::default()
                }
            }
            Loaded::Missing => {
                // A log that never held a record has nothing to backfill.
                let backfill = next_seq > 1;
                if backfill {
                    tracing::warn!(
                        cursor = %name, at = next_seq,
                        "node new to the log starts at its end; it lacks the older data and needs a backfill"
                    );
                    report.backfill_cursors.push(name.clone());
                }
                report.new_cursors.push(name.clone());
                to_store.push(name.clone());
                CursorRecord {
                    next: next_seq,
                    needs_backfill: backfill,
                    ..CursorRecord::default()
                }
            }
            Loaded::Corrupt(why) => {
                let repair = kept.needs_repair || lost_any;
                tracing::error!(
                    cursor = %name, reason = %why, oldest, needs_repair = repair,
                    "corrupt cursor file; re-delivering from the oldest record"
                );
                if lost_any && !kept.needs_repair {
                    report.damaged_cursors.push(name.clone());
                }
                report.corrupt_cursors.push(name.clone());
                to_store.push(name.clone());
                CursorRecord {
                    next: oldest,
                    needs_repair: repair,
                    needs_backfill: kept.needs_backfill,
                    ..CursorRecord::default()
                }
            }
        };
        nodes.insert(name.clone(), flags_of(&rec));
        cursors.push((name, rec));
    }
    if !had_manifest || nodes != before {
        manifest::store(fs, dir, &nodes).map_err(io_err("write manifest", dir))?;
        fsync_dir(fs, dir).map_err(io_err("fsync dir", dir))?;
    }
    for (name, rec) in &cursors {
        if to_store.contains(name) {
            cursor::store(fs, &cdir, name, rec).map_err(io_err("write cursor", &cdir))?;
        }
    }
    let names: Vec<String> = cursors.iter().map(|(n, _)| n.clone()).collect();
    report.removed_cursors =
        cursor::remove_unlisted(fs, &cdir, &names).map_err(io_err("remove cursor", &cdir))?;
    fsync_dir(fs, &cdir).map_err(io_err("fsync dir", &cdir))?;
    Ok((cursors, nodes))
}

/// The flags a cursor record carries.
pub(crate) fn flags_of(r: &CursorRecord) -> NodeFlags {
    NodeFlags {
        needs_repair: r.needs_repair,
        needs_backfill: r.needs_backfill,
    }
}
