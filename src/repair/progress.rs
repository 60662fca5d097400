//! Progress of a long copy: an `indicatif` bar with throughput and ETA when
//! stderr is a terminal, plain lines (at most one every two seconds, plus
//! one per finished window) otherwise, so logs and tests can read it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// One line about work done: to the gateway's log (INFO) when the tools run
/// inside it (`repair.auto`: a tracing subscriber is installed), else to
/// stderr as the CLI's plain progress.
pub fn say(msg: std::fmt::Arguments<'_>) {
    if tracing::dispatcher::has_been_set() {
        tracing::info!("{msg}");
    } else {
        eprintln!("{msg}");
    }
}

/// Plain progress lines are at least this far apart.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress towards `total` points (an estimate; it may be exceeded).
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} points {per_sec} ETA {eta}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            done: 0,
            started: now,
            last_line: now,
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            if self.done > self.total {
                self.total = self.done;
                b.set_length(self.total);
            }
            b.inc(n);
        } else if self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            eprintln!("backfill: {}", self.summary());
        }
    }

    /// Points per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn summary(&self) -> String {
        let rate = self.rate();
        let left = self.total.saturating_sub(self.done);
        let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
        format!(
            "{}/{} points, {:.0} points/s, ETA {:.0}s",
            self.done, self.total, rate, eta
        )
    }

    /// A line of its own (above the bar on a terminal).
    pub fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        match &self.bar {
            Some(b) => b.finish(),
            None => eprintln!("backfill: done, {}", self.summary()),
        }
    }
}
