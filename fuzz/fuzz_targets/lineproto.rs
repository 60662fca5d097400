//! Fuzzes the line-protocol scanner.
//!
//! Invariants: `scan` never panics; the body it returns re-scans with zero
//! errors, the same point count, and is a fixed point (scanning it again
//! returns it unchanged, so nothing is stamped twice).
#![no_main]

use bytes::Bytes;
use inmate::lineproto::{Precision, ScanOptions, scan_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so both rule sets get exercised.
    let (opts, body) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => (ScanOptions::v1(Precision::Second), rest),
        Some((_, rest)) => (ScanOptions::v2(Precision::Nanosecond), rest),
        None => (ScanOptions::default(), data),
    };
    let out = scan_with(Bytes::copy_from_slice(body), 1_700_000_000, &opts);
    assert!(out.errors.len() <= out.bad_lines);
    let again = scan_with(out.body.clone(), 42, &opts);
    assert_eq!(again.bad_lines, 0, "rescan errors: {:?}", again.errors);
    assert_eq!(again.dropped, 0);
    assert!(!again.type_conflict);
    assert_eq!(again.points, out.points);
    assert_eq!(again.body, out.body);
    let _ = out.v1_error();
    let _ = out.v2_error();
});
