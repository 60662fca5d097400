//! The command-line face of `verify`, `repair` and `backfill`: arguments
//! (parsed by clap in the binary) and exit codes.
//!
//! Exit codes: 0 = identical / done; 1 = differences found (verify) or
//! conflicts left (repair); 2 = usage or config error; 3 = a node failed
//! (unreachable, or answered with an error) before the work was done.

use std::path::Path;
use std::time::Duration;

use super::node::Node;
use super::{Common, RepairError, backfill, fix, verify};
use crate::config::Config;

/// What every command compares or copies.
#[derive(clap::Args, Debug, Clone)]
pub struct Scope {
    /// Only this database (repeat for several; default: all but `_internal`).
    #[arg(long = "db")]
    pub dbs: Vec<String>,
    /// Start of the time range: RFC 3339, nanoseconds, or a duration ago (`7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// End of the time range (exclusive), same forms; default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Queries in flight at once (verify, repair; default 4); time slices
    /// of a window read at once (backfill; default 1: slices of one window
    /// make the source decode the same compressed blocks more than once).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Rate limit: points per second written to a node (repair, backfill)
    /// or queries per second (verify); 0 = unlimited.
    #[arg(long, default_value_t = super::DEFAULT_RATE)]
    pub rate: u64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// The finest window differing data is narrowed down to.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RepairArgs {
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// On conflicting values, this node's value wins (default: report, leave).
    #[arg(long)]
    pub prefer: Option<String>,
    /// Points per write request.
    #[arg(long, default_value_t = super::DEFAULT_BATCH)]
    pub batch: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub scope: Scope,
    /// The node to fill.
    #[arg(long)]
    pub to: String,
    /// The node to copy from (default: the first other node).
    #[arg(long)]
    pub from: Option<String>,
    /// The unit of copying and checkpointing.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Points per write request.
    #[arg(long, default_value_t = super::DEFAULT_BATCH)]
    pub batch: usize,
}

/// Time slices of one window a backfill reads at once, by default. One: a
/// window read as several slices at once made the source influxd decode the
/// same blocks more than once, and its CPU is what a backfill is short of
/// on a shared machine (BENCHMARKS.md, backfill at 1 M points).
const BACKFILL_SLICES: usize = 1;

fn common(scope: &Scope, window: Duration, concurrency: usize) -> Result<Common, RepairError> {
    let bound = |s: &Option<String>, default: i64| match s {
        Some(s) => super::time::parse_bound(s).map_err(RepairError::Usage),
        None => Ok(default),
    };
    let since = bound(&scope.since, i64::MIN / 2)?;
    let until = bound(&scope.until, super::time::now_ns())?;
    if since >= until {
        return Err(RepairError::Usage("--since must be before --until".into()));
    }
    if window.as_secs() == 0 {
        return Err(RepairError::Usage("--window must be at least 1s".into()));
    }
    Ok(Common {
        dbs: scope.dbs.clone(),
        since,
        until,
        window,
        concurrency: scope.concurrency.unwrap_or(concurrency).max(1),
        rate: scope.rate,
    })
}

/// Runs `work` on a fresh runtime and maps errors to exit codes.
fn run<F>(work: F) -> u8
where
    F: std::future::Future<Output = Result<u8, RepairError>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 3;
        }
    };
    match rt.block_on(work) {
        Ok(code) => code,
        Err(e @ RepairError::Usage(_)) => {
            eprintln!("inmate: {e}");
            2
        }
        Err(e) => {
            eprintln!("inmate: {e}");
            3
        }
    }
}

fn node_index(nodes: &[Node], name: &str) -> Result<usize, RepairError> {
    nodes.iter().position(|n| n.name == name).ok_or_else(|| {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        RepairError::Usage(format!(
            "no node named {name:?} (nodes: {})",
            names.join(", ")
        ))
    })
}

pub fn verify(config: &Config, args: &VerifyArgs) -> u8 {
    run(async {
        let common = common(&args.scope, args.window, super::DEFAULT_CONCURRENCY)?;
        let nodes = Node::all(&config.nodes, 0)?;
        let f = verify::compare(&nodes, &common).await?;
        if args.json {
            println!("{}", verify::to_json(&nodes, &f));
        } else {
            print!("{}", verify::table(&nodes, &f));
        }
        Ok(if f.identical() { 0 } else { 1 })
    })
}

pub fn repair(config: &Config, args: &RepairArgs) -> u8 {
    run(async {
        let common = common(
            &args.verify.scope,
            args.verify.window,
            super::DEFAULT_CONCURRENCY,
        )?;
        let nodes = Node::all(&config.nodes, common.rate)?;
        let prefer = args
            .prefer
            .as_deref()
            .map(|p| node_index(&nodes, p))
            .transpose()?;
        let f = verify::compare(&nodes, &common).await?;
        if f.identical() {
            println!("identical: nothing to repair");
            return Ok(0);
        }
        let r = fix::repair(
            &nodes,
            &f.schemas,
            &f.windows,
            prefer,
            args.batch,
            common.window,
        )
        .await?;
        if args.verify.json {
            println!(
                "{}",
                serde_json::json!({ "found": verify::to_json(&nodes, &f), "repair": r })
            );
        } else {
            print!("{}", verify::table(&nodes, &f));
            for line in &r.schema {
                println!("schema: {line}");
            }
            for c in &r.conflicts {
                let vals: Vec<String> = c.values.iter().map(|(n, v)| format!("{n}={v}")).collect();
                println!(
                    "conflict: {}.{}.{} {:?} {} field {}: {}{}",
                    c.db,
                    c.rp,
                    c.measurement,
                    c.tags,
                    super::time::fmt_ns(c.time),
                    c.field,
                    vals.join(" "),
                    if prefer.is_some() {
                        " (preferred value written)"
                    } else {
                        " (left alone)"
                    }
                );
            }
            let written: Vec<String> = nodes
                .iter()
                .zip(&r.written)
                .map(|(n, w)| format!("{}={w}", n.name))
                .collect();
            println!(
                "repaired {} windows; points written: {}; conflicts: {}",
                r.windows,
                written.join(" "),
                r.conflicts.len()
            );
        }
        Ok(if r.conflicts.is_empty() || prefer.is_some() {
            0
        } else {
            1
        })
    })
}

pub fn backfill(config: &Config, args: &BackfillArgs, data_dir: &Path) -> u8 {
    run(async {
        let mut common = common(&args.scope, args.window, BACKFILL_SLICES)?;
        let nodes = Node::all(&config.nodes, common.rate)?;
        let to = node_index(&nodes, &args.to)?;
        let from = match &args.from {
            Some(f) => node_index(&nodes, f)?,
            None => (0..nodes.len()).find(|&i| i != to).ok_or_else(|| {
                RepairError::Usage("backfill needs a second node to copy from".into())
            })?,
        };
        if from == to {
            return Err(RepairError::Usage(
                "--from and --to name the same node".into(),
            ));
        }
        let cutoff = args.scope.until.as_ref().map(|_| common.until);
        common.until = i64::MAX;
        let s = backfill::backfill(
            &nodes[from],
            &nodes[to],
            &common,
            cutoff,
            data_dir,
            args.batch,
        )
        .await?;
        println!(
            "backfill {} <- {}: {} windows copied ({} already done), {} points, {:.0} points/s",
            nodes[to].name,
            nodes[from].name,
            s.windows,
            s.windows_skipped,
            s.points,
            s.points_per_sec
        );
        Ok(0)
    })
}
