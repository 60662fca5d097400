//! Deflate engines on a 5,000-line Telegraf-like batch: compression at
//! levels 1 and 6 (MB/s of input, and ratio), and gzip inflate (MB/s of
//! output). Exists to choose the gateway's codec by measurement; the
//! figures and the choice are in BENCHMARKS.md.

use std::io::{Read, Write};
use std::time::Instant;

fn batch(lines: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..lines as u64 {
        s.push_str(&format!(
            "cpu,host=server{:02},region=us-west,cpu=cpu{} usage_user={:.3},usage_system={:.3},\
             usage_idle={:.3},usage_iowait={}i {}\n",
            i % 50,
            i % 8,
            (i * 7919 % 1000) as f64 / 10.0,
            (i * 104729 % 1000) as f64 / 10.0,
            99.0 - (i % 100) as f64 / 10.0,
            i % 13,
            1_700_000_000_000_000_000u64 + i * 10_000_000_000
        ));
    }
    s.into_bytes()
}

/// Runs `f` for 2 s; prints input MB/s and the size ratio `f` reports.
fn time<F: FnMut() -> usize>(name: &str, input: usize, mut f: F) {
    let (mut out, mut n) = (0, 0);
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < 2.0 {
        out = f();
        n += 1;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:30} {:8.0} MB/s   ratio {:5.2}",
        (input * n) as f64 / s / 1e6,
        input as f64 / out as f64
    );
}

fn main() {
    let b = batch(5000);
    println!("batch: {} bytes", b.len());
    for lvl in [1u32, 6] {
        time(&format!("miniz_oxide deflate L{lvl}"), b.len(), || {
            miniz_oxide::deflate::compress_to_vec(&b, lvl as u8).len()
        });
        time(&format!("flate2/zlib-rs gzip L{lvl}"), b.len(), || {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(b.len() / 4),
                flate2::Compression::new(lvl),
            );
            e.write_all(&b).expect("in memory");
            e.finish().expect("in memory").len()
        });
        time(&format!("libdeflate gzip L{lvl}"), b.len(), || {
            let lv = libdeflater::CompressionLvl::new(lvl as i32).expect("valid level");
            let mut c = libdeflater::Compressor::new(lv);
            let mut out = vec![0u8; c.gzip_compress_bound(b.len())];
            c.gzip_compress(&b, &mut out).expect("bound is enough")
        });
    }
    let lv = libdeflater::CompressionLvl::new(6).expect("valid level");
    let mut c = libdeflater::Compressor::new(lv);
    let mut gz = vec![0u8; c.gzip_compress_bound(b.len())];
    let n = c.gzip_compress(&b, &mut gz).expect("bound is enough");
    gz.truncate(n);
    time("inflate flate2/zlib-rs", b.len(), || {
        let mut d = flate2::read::MultiGzDecoder::new(&gz[..]);
        let mut o = Vec::with_capacity(b.len());
        d.read_to_end(&mut o).expect("valid gzip")
    });
    time("inflate miniz_oxide", b.len(), || {
        miniz_oxide::inflate::decompress_to_vec(&gz[10..gz.len() - 8])
            .expect("valid deflate")
            .len()
    });
    time("inflate libdeflate", b.len(), || {
        let mut d = libdeflater::Decompressor::new();
        let mut o = vec![0u8; b.len()];
        d.gzip_decompress(&gz, &mut o).expect("valid gzip")
    });
}
