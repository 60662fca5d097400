//! Throughput of the write-path scanner against `influxdb_line_protocol`.
//!
//! Exists to hold the scanner to its budget (>= 500 MB/s on one core for
//! Telegraf-like batches) and to show what a general-purpose parser costs on
//! the same input, and what cutting a large body over all cores
//! (`scan_split`) gains over one core. Run: `cargo bench --bench lineproto`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use inmate::lineproto::{ScanOptions, scan, scan_cores, scan_split};

mod support;

/// A group measuring `bytes` per iteration, with this file's timings.
fn group<'a>(c: &'a mut Criterion, name: &str, bytes: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);
    g
}

fn bench(c: &mut Criterion) {
    let (text, _) = support::telegraf_batch();
    let input = Bytes::from(text.clone());
    let mut g = group(c, "lineproto", text.len());

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

    // A 4 MiB body (a bulk load): one core against all of them.
    let large = Bytes::from(text.repeat(4));
    let cores = scan_cores();
    let opts = ScanOptions::default();
    let mut g = group(c, "lineproto_4mib", large.len());
    g.bench_function("one_core", |b| {
        b.iter(|| black_box(scan(black_box(large.clone()), 1)))
    });
    g.bench_function(format!("split_{cores}_cores"), |b| {
        b.iter(|| black_box(scan_split(black_box(large.clone()), 1, &opts, cores)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
