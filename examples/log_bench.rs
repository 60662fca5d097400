//! Append-throughput benchmark of `inmate::log` (group commit, fsync Always
//! by default), for comparison with `dd ... conv=fdatasync` on the same disk
//! (see `scripts/bench-log.sh`).
//!
//! `cargo run --release --example log_bench -- --dir <path> --batch-bytes 65536 --total-mb 1024`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use inmate::log::{FsyncPolicy, Log, LogOptions};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Fsync {
    Always,
    Interval,
    Never,
}

#[derive(Parser, Debug)]
#[command(about = "Measure durable log append throughput")]
struct Args {
    /// Directory for the log (created; removed afterwards unless --keep).
    #[arg(long)]
    dir: PathBuf,
    /// Payload bytes per append.
    #[arg(long, default_value_t = 65536)]
    batch_bytes: usize,
    /// Total payload to append, in MiB.
    #[arg(long, default_value_t = 1024)]
    total_mb: u64,
    /// Concurrent appending tasks.
    #[arg(long, default_value_t = 4)]
    appenders: usize,
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// Keep the log directory after the run.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.dir.exists() {
        return Err(format!(
            "{} already exists; pass a fresh directory",
            args.dir.display()
        )
        .into());
    }
    let opts = LogOptions {
        dir: args.dir.clone(),
        fsync: match args.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Interval => FsyncPolicy::Interval(Duration::from_millis(100)),
            Fsync::Never => FsyncPolicy::Never,
        },
        ..LogOptions::default()
    };
    // One cursor that never advances, so no segment is deleted mid-run.
    let log = Log::open(opts, &["bench".to_string()]).await?;
    let total = args.total_mb * 1024 * 1024;
    let payload = Bytes::from(vec![0x5au8; args.batch_bytes.max(1)]);
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.appenders.max(1) {
        let (log, payload, claimed) = (log.clone(), payload.clone(), claimed.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while claimed.fetch_add(payload.len() as u64, Ordering::Relaxed) < total {
                log.append(payload.clone()).await?;
                n += 1;
            }
            Ok::<u64, inmate::log::LogError>(n)
        }));
    }
    let mut appends = 0;
    for t in tasks {
        appends += t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    log.close().await?;
    let bytes = appends * payload.len() as u64;
    let mbps = bytes as f64 / secs / 1e6;
    println!(
        "log_bench: {appends} appends x {} B ({:.1} MiB) with {} appenders, fsync {:?}: {secs:.2} s, {:.0} appends/s, MBps={mbps:.1}",
        payload.len(),
        bytes as f64 / 1048576.0,
        args.appenders,
        args.fsync,
        appends as f64 / secs,
    );
    if !args.keep {
        std::fs::remove_dir_all(&args.dir)?;
    }
    Ok(())
}
