//! The log sink's promises: every line, in order, written at exit; urgent
//! lines and a full high-water mark do not wait for the interval; a full
//! buffer makes lines wait rather than drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::*;

/// An output the test can read while the writer runs; `gate` closed makes
/// every write wait (a stuck stdout).
#[derive(Clone, Default)]
struct Out {
    bytes: Arc<Mutex<Vec<u8>>>,
    stuck: Arc<AtomicBool>,
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        while self.stuck.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bytes.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }

    /// Waits (up to 10 s) until the output holds `n` lines.
    fn wait_lines(&self, n: usize) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.text().lines().count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }
}

/// A tuning under which only urgency, the high-water mark or the end
/// writes anything (the interval is an hour).
const SLOW: Tuning = Tuning {
    interval: Duration::from_secs(3600),
    high_water: 1 << 20,
    max_buffered: 4 << 20,
};

fn line(sink: &LogSink, text: &str, urgent: bool) {
    let mut w = if urgent {
        LineWriter {
            shared: &sink.shared,
            urgent: true,
        }
    } else {
        sink.make_writer()
    };
    w.write_all(format!("{text}\n").as_bytes()).unwrap();
}

#[test]
fn every_line_from_every_thread_arrives_in_order_at_exit() {
    let out = Out::default();
    let (sink, guard) = spawn(out.clone()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let sink = sink.clone();
            s.spawn(move || {
                for i in 0..5_000 {
                    line(&sink, &format!("{t} {i}"), i % 1000 == 0);
                }
            });
        }
    });
    drop(guard);
    let text = out.text();
    let mut next = [0u32; 4];
    for l in text.lines() {
        let (t, i) = l.split_once(' ').unwrap();
        let t: usize = t.parse().unwrap();
        assert_eq!(
            i.parse::<u32>().unwrap(),
            next[t],
            "thread {t} out of order"
        );
        next[t] += 1;
    }
    assert_eq!(next, [5_000; 4]);
}

#[test]
fn plain_lines_wait_for_the_interval_and_warnings_do_not() {
    let out = Out::default();
    let (sink, guard) = spawn_tuned(out.clone(), SLOW).unwrap();
    line(&sink, "info one", false);
    line(&sink, "info two", false);
    // The writer is inside its hour: nothing is out yet.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(out.text(), "");
    line(&sink, "warn three", true);
    assert!(
        out.wait_lines(3),
        "an urgent line did not flush: {:?}",
        out.text()
    );
    assert_eq!(out.text(), "info one\ninfo two\nwarn three\n");
    drop(guard);
}

#[test]
fn a_buffer_at_high_water_is_written_before_the_interval_ends() {
    let out = Out::default();
    let (sink, guard) = spawn_tuned(out.clone(), SLOW).unwrap();
    let text = "x".repeat(1000);
    for _ in 0..1100 {
        line(&sink, &text, false);
    }
    // 1.1 MB passed the 1 MiB mark: at least that much is out.
    assert!(out.wait_lines(1000), "high water did not wake the writer");
    drop(guard);
    assert_eq!(out.text().lines().count(), 1100);
}

#[test]
fn a_stuck_output_makes_lines_wait_and_loses_none() {
    let out = Out::default();
    out.stuck.store(true, Ordering::Release);
    let tuning = Tuning {
        interval: Duration::from_millis(1),
        high_water: 1 << 10,
        max_buffered: 8 << 10,
    };
    let (sink, guard) = spawn_tuned(out.clone(), tuning).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // 100 KB against an 8 KiB buffer and an output that takes
            // nothing: the writer holds one batch, then lines must wait.
            for i in 0..1_000 {
                line(&sink, &format!("{i:099}"), false);
            }
            done.store(true, Ordering::Release);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!done.load(Ordering::Acquire), "lines did not wait for room");
        out.stuck.store(false, Ordering::Release);
    });
    drop(guard);
    let text = out.text();
    let got: Vec<usize> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, (0..1_000).collect::<Vec<_>>());
    // The waits show on /metrics.
    let waits = crate::metrics::render(None).lines().find_map(|l| {
        l.strip_prefix("inmate_log_output_waits_total ")?
            .parse::<f64>()
            .ok()
    });
    assert!(waits.is_some_and(|n| n >= 1.0), "{waits:?}");
}

#[test]
fn exit_does_not_hang_on_a_stdout_that_takes_nothing() {
    let out = Out::default();
    out.stuck.store(true, Ordering::Release);
    let (sink, guard) = spawn(out.clone()).unwrap();
    line(&sink, "last words", true);
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    let returned = rx.recv_timeout(EXIT_WAIT * 5);
    let waited = started.elapsed();
    // Let the writer (and a hung drop, if any) finish either way.
    out.stuck.store(false, Ordering::Release);
    assert!(returned.is_ok(), "dropping the guard hung");
    assert!(waited >= EXIT_WAIT, "gave up after {waited:?}");
    assert!(out.wait_lines(1));
}
