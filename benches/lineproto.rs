//! Throughput of the write-path scanner against `influxdb_line_protocol`.
//!
//! Exists to hold the scanner to its budget (>= 500 MB/s on one core for
//! Telegraf-like batches) and to show what a general-purpose parser costs on
//! the same input. Run: `cargo bench --bench lineproto`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inmate::lineproto::scan;

mod support;

fn bench(c: &mut Criterion) {
    let (text, _) = support::telegraf_batch();
    let input = Bytes::from(text.clone());
    let mut g = c.benchmark_group("lineproto");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);

    g.bench_function("inmate_scan_timestamped", |b| {
        b.iter(|| black_box(scan(black_box(input.clone()), 1)))
    });

    // Same lines without timestamps: the rebuild-and-stamp path.
    let untimed: String = text
        .lines()
        .map(|l| l.rsplit_once(' ').map_or(l, |(head, _)| head))
        .fold(String::new(), |mut acc, l| {
            acc.push_str(l);
            acc.push('\n');
            acc
        });
    let untimed = Bytes::from(untimed);
    g.bench_function("inmate_scan_stamping", |b| {
        b.iter(|| black_box(scan(black_box(untimed.clone()), 1_700_000_000_000_000_000)))
    });

    g.bench_function("influxdb_line_protocol_parse_lines", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in influxdb_line_protocol::parse_lines(black_box(&text)) {
                if line.is_ok() {
                    n += 1;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
