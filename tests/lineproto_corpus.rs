//! Runs the committed fuzz corpus through the scanner and the body decoder
//! with the fuzz targets' invariants, so CI exercises it on stable Rust
//! without libFuzzer.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use inmate::lineproto::{Precision, ScanOptions, decode_body, gzip, scan_with};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "corpus {target} looks empty");
    files
}

#[test]
fn lineproto_corpus_keeps_the_scan_invariants() {
    let mut points = 0;
    let mut bad = 0;
    for (name, data) in corpus("lineproto") {
        // Same option selection as fuzz/fuzz_targets/lineproto.rs.
        let (opts, body) = match data.split_first() {
            Some((b, rest)) if b % 2 == 0 => (ScanOptions::v1(Precision::Second), rest),
            Some((_, rest)) => (ScanOptions::v2(Precision::Nanosecond), rest),
            None => (ScanOptions::default(), &data[..]),
        };
        let out = scan_with(Bytes::copy_from_slice(body), 1_700_000_000, &opts);
        let again = scan_with(out.body.clone(), 42, &opts);
        assert_eq!(
            again.bad_lines, 0,
            "{name}: rescan errors {:?}",
            again.errors
        );
        assert_eq!(again.points, out.points, "{name}");
        assert_eq!(again.body, out.body, "{name}: not a fixed point");
        assert_eq!(out.v1_error().is_some(), out.bad_lines > 0, "{name}");
        points += out.points;
        bad += out.bad_lines;
    }
    // The corpus holds both kinds on purpose.
    assert!(points >= 15 && bad >= 10, "points={points} bad={bad}");
}

#[test]
fn gzip_corpus_keeps_the_decode_invariants() {
    let mut decoded = 0;
    let mut refused = 0;
    for (name, data) in corpus("gzip_body") {
        let (max, body) = match &data[..] {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (0, &data[..]),
        };
        match decode_body(Bytes::copy_from_slice(body), Some("gzip"), max) {
            Ok(out) => {
                assert!(max == 0 || out.len() <= max, "{name}");
                let back = decode_body(Bytes::from(gzip(&out)), Some("gzip"), 0).unwrap();
                assert_eq!(back, out, "{name}");
                decoded += 1;
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        decoded >= 2 && refused >= 3,
        "decoded={decoded} refused={refused}"
    );
}
