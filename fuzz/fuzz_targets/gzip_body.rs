//! Fuzzes request-body decoding.
//!
//! Invariants: `decode_body` never panics, never returns more than `max`
//! bytes, and a body it decodes round-trips through `gzip`.
#![no_main]

use bytes::Bytes;
use inmate::lineproto::{decode_body, gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the cap (0 = unlimited).
    let (max, body) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let body = Bytes::copy_from_slice(body);
    if let Ok(out) = decode_body(body.clone(), Some("gzip"), max) {
        assert!(max == 0 || out.len() <= max);
        let z = Bytes::from(gzip(&out));
        let back = decode_body(z, Some("gzip"), 0).expect("own gzip decodes");
        assert_eq!(back, out);
    }
    if let Ok(out) = decode_body(body, None, max) {
        assert!(max == 0 || out.len() <= max);
    }
});
