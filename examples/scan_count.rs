//! Runs the write-path scanner over a fixed Telegraf-like body, for
//! instruction counting: `valgrind --tool=callgrind target/release/examples/scan_count`
//! gives a figure free of machine noise (the wall-clock figure is
//! `cargo bench --bench lineproto`). Same lines as that benchmark.

use bytes::Bytes;
use inmate::lineproto::scan;

#[path = "../benches/support/mod.rs"]
mod support;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (s, lines) = support::telegraf_batch();
    let input = Bytes::from(s);
    let mut points = 0;
    for _ in 0..reps {
        points += std::hint::black_box(scan(std::hint::black_box(input.clone()), 1)).points;
    }
    println!("{lines} lines x {reps}: {points} points");
}
