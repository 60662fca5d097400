//! Request-body decoding and wire compression.
//!
//! Exists because write bodies arrive gzip-compressed (Telegraf's default)
//! and must be validated decoded, and because InfluxDB 1.8–1.12 only limits
//! the *compressed* size of a gzip body: a few kilobytes can inflate to
//! gigabytes. The gateway caps the decoded size instead, so a gzip bomb is
//! refused with 413 before it costs memory.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::error::BodyError;

/// Decodes a request body according to its `Content-Encoding`.
///
/// `None`, empty and `identity` pass the body through; `gzip` and `x-gzip`
/// (case-insensitive, as both 1.x and 2.x accept) are inflated, including
/// concatenated gzip members as Go's reader does. The decoded size is capped
/// at `max` bytes (`0` = unlimited): one byte more is [`BodyError::TooLarge`].
/// A malformed or truncated stream is [`BodyError::Corrupt`]; any other
/// encoding is [`BodyError::UnsupportedEncoding`].
pub fn decode_body(
    body: Bytes,
    content_encoding: Option<&str>,
    max: usize,
) -> Result<Bytes, BodyError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        if max != 0 && body.len() > max {
            return Err(BodyError::TooLarge);
        }
        return Ok(body);
    }
    if !(encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip")) {
        return Err(BodyError::UnsupportedEncoding(encoding.to_string()));
    }
    if body.is_empty() {
        // Go's gzip.NewReader answers an empty body with "EOF".
        return Err(BodyError::Corrupt("EOF".into()));
    }

    let mut decoder = MultiGzDecoder::new(&body[..]);
    // Start from a guess (line protocol compresses ~5-10x) but never
    // pre-allocate past the cap.
    let guess = body.len().saturating_mul(8);
    let cap = if max == 0 { guess } else { guess.min(max) };
    let mut out = Vec::with_capacity(cap.min(64 << 20));
    // Read at most max+1 bytes: the extra byte proves the body is too large
    // without inflating the rest of a bomb.
    let limit = if max == 0 { u64::MAX } else { max as u64 + 1 };
    let read = (&mut decoder)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt(e.to_string()))?;
    if max != 0 && read > max {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// Gzip-compresses `body` at the fastest level, for sending to a node.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail; the fallback keeps this total anyway.
    if enc.write_all(body).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}
