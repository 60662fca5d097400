//! Where the gateway's own log lines go: a shared buffer that a background
//! thread writes out in batches.
//!
//! Exists because at the default `info` level every request writes an
//! access-log line, and what that line costs the request path showed up
//! in the read benchmark (BENCHMARKS.md 3i). A channel per line
//! (`tracing_appender::non_blocking`, used before) costs an allocation,
//! a futex wake of the writer thread and a `write(2)` for almost every
//! line, because the writer is idle again by the time the next line
//! comes: ~15 % of the gateway's CPU per read. Here a line is one
//! uncontended lock and a copy into a buffer; the writer thread is woken
//! only when it is idle and the first line arrives, sleeps
//! [`FLUSH_INTERVAL`] to let the buffer fill, and writes everything in one
//! call. Under load that is one wake-up and one `write(2)` per interval,
//! not per line.
//!
//! What it keeps from the channel it replaces:
//! - **Nothing is dropped.** Past [`MAX_BUFFERED`] bytes waiting, a line
//!   waits for room (a stuck stdout then slows logging callers, as the
//!   channel's non-lossy mode did at 128k lines); each such wait counts in
//!   `inmate_log_output_waits_total`, so it shows on `/metrics`.
//! - **Order.** Lines are written in the order their writes took the lock.
//! - **Flush at exit.** Dropping the [`LogSinkGuard`] writes what is left
//!   and joins the thread, waiting at most [`EXIT_WAIT`] (a stdout that
//!   takes nothing must not keep the process from exiting).
//!
//! Warnings and errors are not held for the interval: they wake the
//! writer at once, so the line an operator looks for after a failure is
//! out by the time the failure is answered. A line is delayed at most
//! [`FLUSH_INTERVAL`] otherwise, and a `kill -9` loses at most that much
//! of the log (the channel lost its queue the same way).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one arrives.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// How long dropping the guard waits for the last lines to be written.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);
/// Bytes waiting past which a new line waits for the writer.
pub const MAX_BUFFERED: usize = 8 << 20;
/// Bytes waiting at which the writer is woken before its interval ends.
const HIGH_WATER: usize = 256 << 10;

/// The three numbers above, as one value so tests can shrink them.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    interval: Duration,
    high_water: usize,
    max_buffered: usize,
}

const DEFAULT_TUNING: Tuning = Tuning {
    interval: FLUSH_INTERVAL,
    high_water: HIGH_WATER,
    max_buffered: MAX_BUFFERED,
};

/// The buffer and the writer's state, behind one lock.
#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The writer waits for a first line (no timer running).
    idle: bool,
    /// The writer should write now rather than at the end of its interval.
    urgent: bool,
    /// The guard was dropped: write what is left and stop.
    closed: bool,
    /// The writer thread has written everything and returned.
    done: bool,
}

struct Shared {
    tuning: Tuning,
    state: Mutex<State>,
    /// The writer waits here: for a first line, or for its interval.
    wake: Condvar,
    /// Lines wait here while the buffer is full.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a valid buffer: go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line (or part of one) and wakes the writer if needed.
    fn push(&self, bytes: &[u8], urgent: bool) {
        let mut st = self.lock();
        let mut waited = false;
        while st.buf.len() >= self.tuning.max_buffered && !st.closed {
            waited = true;
            st.urgent = true;
            self.wake.notify_one();
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.buf.extend_from_slice(bytes);
        let urgent = urgent || st.buf.len() >= self.tuning.high_water;
        if urgent && !st.urgent {
            st.urgent = true;
            self.wake.notify_one();
        } else if st.idle {
            st.idle = false;
            self.wake.notify_one();
        }
        drop(st);
        if waited {
            crate::metrics::log_output_wait();
        }
    }
}

/// Writes the buffer to `out` until the guard is dropped.
fn run_writer(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::new();
    let mut st = shared.lock();
    loop {
        if st.buf.is_empty() {
            if st.closed {
                break;
            }
            st.idle = true;
            while st.idle && !st.closed && !st.urgent {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            st.idle = false;
        }
        // Let more lines gather unless one is urgent (also after a write:
        // lines that came meanwhile wait for company too).
        if !st.urgent && !st.closed {
            st = shared
                .wake
                .wait_timeout_while(st, shared.tuning.interval, |s| !s.urgent && !s.closed)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.urgent = false;
        std::mem::swap(&mut st.buf, &mut spare);
        shared.room.notify_all();
        drop(st);
        // A failing stdout (closed pipe) cannot be reported anywhere
        // better than by losing these lines; the gateway goes on.
        let _ = out.write_all(&spare).and_then(|()| out.flush());
        spare.clear();
        // Give back memory a burst grew, keep a typical batch's worth.
        spare.shrink_to(shared.tuning.high_water);
        st = shared.lock();
    }
    st.done = true;
    shared.room.notify_all();
}

/// The `tracing_subscriber` writer: every line goes into the shared
/// buffer.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// One event's writer; lines at `warn` and `error` wake the writer at once.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.push(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

/// Keeps the writer thread running; dropping it writes what is buffered
/// and joins the thread.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogSinkGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogSinkGuard {
    /// Writes what is buffered, waiting at most [`EXIT_WAIT`]: a stdout
    /// that takes nothing (a stopped pipe reader) must not keep the process
    /// from exiting. The thread is joined when it finished in time and
    /// left behind otherwise.
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        self.shared.wake.notify_one();
        self.shared.room.notify_all();
        let (st, _) = self
            .shared
            .room
            .wait_timeout_while(st, EXIT_WAIT, |s| !s.done)
            .unwrap_or_else(PoisonError::into_inner);
        let done = st.done;
        drop(st);
        if let Some(t) = self.thread.take()
            && done
        {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread for `out` (stdout in the binary).
pub fn spawn(out: impl Write + Send + 'static) -> io::Result<(LogSink, LogSinkGuard)> {
    spawn_tuned(out, DEFAULT_TUNING)
}

fn spawn_tuned(
    out: impl Write + Send + 'static,
    tuning: Tuning,
) -> io::Result<(LogSink, LogSinkGuard)> {
    let shared = Arc::new(Shared {
        tuning,
        state: Mutex::default(),
        wake: Condvar::new(),
        room: Condvar::new(),
    });
    let s = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("inmate-log-out".into())
        .spawn(move || run_writer(&s, out))?;
    Ok((
        LogSink {
            shared: Arc::clone(&shared),
        },
        LogSinkGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

#[cfg(test)]
#[path = "tests_logsink.rs"]
mod tests;
