//! Request-body decoding (the codec itself is [`crate::gzip`]).
//!
//! Exists because write bodies arrive gzip-compressed (Telegraf's default)
//! and must be validated decoded, and because InfluxDB 1.8–1.12 only limits
//! the *compressed* size of a gzip body: a few kilobytes can inflate to
//! gigabytes. The gateway caps the decoded size instead, so a gzip bomb is
//! refused with 413 before it costs memory.

use bytes::Bytes;

use super::error::BodyError;

/// Whether a `Content-Encoding` names gzip (`gzip` or `x-gzip`, any case,
/// as both InfluxDB 1.x and 2.x accept).
pub fn is_gzip(content_encoding: &str) -> bool {
    let e = content_encoding.trim();
    e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
}

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
    if !is_gzip(encoding) {
        return Err(BodyError::UnsupportedEncoding(encoding.to_string()));
    }
    crate::gzip::decode(&body, max).map_err(|e| match e {
        crate::gzip::GzipError::TooLarge => BodyError::TooLarge,
        crate::gzip::GzipError::Corrupt(m) => BodyError::Corrupt(m),
    })
}

/// Gzip-compresses `body` at the gateway's level (see [`crate::gzip`]).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    crate::gzip::encode(body).to_vec()
}
