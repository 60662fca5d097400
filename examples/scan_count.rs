//! Runs the write-path scanner over a fixed Telegraf-like body, for
//! instruction counting: `valgrind --tool=callgrind target/release/examples/scan_count`
//! gives a figure free of machine noise (the wall-clock figure is
//! `cargo bench --bench lineproto`). Same lines as that benchmark.

use bytes::Bytes;
use inmate::lineproto::scan;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "cpu,host=server{:02},region=us-west,cpu=cpu{} usage_user=0.5,usage_system=0.25,\
             usage_idle=99.1,usage_iowait=0i {}\n",
            i % 50,
            i % 8,
            1_700_000_000_000_000_000u64 + i
        ));
        i += 1;
    }
    let input = Bytes::from(s);
    let mut points = 0;
    for _ in 0..reps {
        points += std::hint::black_box(scan(std::hint::black_box(input.clone()), 1)).points;
    }
    println!("{} lines x {reps}: {points} points", i);
}
