//! Gzip on the write path: inflate what clients send, deflate what nodes get.
//!
//! # Why one module
//! Compression is the most expensive thing the gateway can do to a write
//! (see `BENCHMARKS.md`: deflate at level 1 runs at roughly a tenth of the
//! scanner's speed), so where and how often it happens is a design decision,
//! not a detail of the replicator:
//! - A client's gzip body is inflated **once** at the door, for validation.
//!   When the scanner hands back the body unchanged (every line valid and
//!   timestamped: Telegraf's default batch), the client's *compressed* bytes
//!   are what the log stores and what nodes receive. No deflate runs at all.
//! - A plain body is deflated at most **once**, at the door, and only when
//!   some node is configured `gzip: true`; every such node then gets the same
//!   bytes. Nothing is ever compressed once per node.
//! - A node that must not get gzip (`gzip: false`) has stored gzip records
//!   inflated for it at send time: the cost of that choice lands on it alone.
//!
//! Several stored bodies ride in one node request by concatenation. A gzip
//! stream of several members is one valid gzip stream (RFC 1952 §2.2); Go's
//! `compress/gzip` reader, which InfluxDB uses, reads all members by default
//! (`Reader.Multistream`), and so does [`decode`]. A test against real
//! `influxd` holds this. Because concatenation joins the *decoded* texts
//! too, every stored body's decoded text ends in `\n`; [`NEWLINE_MEMBER`]
//! supplies the newline where a client's compressed body lacks it.
//!
//! # Engines, chosen by measurement (`BENCHMARKS.md`, "deflate engines")
//! libdeflate compresses at level 1 as fast as zlib-rs with a better ratio,
//! and inflates about twice as fast as miniz_oxide or zlib-rs. It works on
//! whole buffers, which suits bodies that are already whole in memory. It
//! needs the decoded size up front: a single-member stream states it (mod
//! 2^32) in its trailer, so that is tried first, and a stream of several
//! members, a trailer that lies, or a body over the cap falls back to
//! flate2's streaming decoder, which reads at most `max + 1` bytes so a gzip
//! bomb costs no more memory than the cap.

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;

/// A complete gzip member whose decoded text is a single `\n`.
pub const NEWLINE_MEMBER: &[u8] = &[
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xe3, 0x02, 0x00, 0x93, 0x06, 0xd7,
    0x32, 0x01, 0x00, 0x00, 0x00,
];

/// Compression level for bodies the gateway deflates itself: level 1,
/// the fastest (see the module doc for why speed wins here).
const LEVEL: i32 = 1;

/// Why a gzip body could not be inflated.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GzipError {
    /// The decoded body is larger than the cap.
    #[error("decoded body exceeds the size limit")]
    TooLarge,
    /// The stream is malformed, truncated, or fails its CRC; carries the
    /// decoder's description.
    #[error("{0}")]
    Corrupt(String),
}

/// Inflates `body` (one or more gzip members), refusing more than `max`
/// decoded bytes (`0` = unlimited).
pub fn decode(body: &[u8], max: usize) -> Result<Bytes, GzipError> {
    if body.is_empty() {
        // Go's gzip.NewReader answers an empty body with "EOF".
        return Err(GzipError::Corrupt("EOF".into()));
    }
    if let Some(out) = decode_single_member(body, max) {
        return Ok(out);
    }
    decode_streaming(body, max)
}

/// The fast path: one member whose trailer states a size within the cap.
/// `None` sends the caller to the streaming decoder, which also produces
/// the error text for a corrupt stream.
///
/// libdeflate decodes the *first* member and ignores what follows it, so
/// the fast path must be sure there is nothing after it: no gzip magic may
/// appear past the first header (else a second member may follow; the
/// streaming decoder reads them all), and the output must match the size
/// and CRC in the body's last 8 bytes (else bytes follow the member).
fn decode_single_member(body: &[u8], max: usize) -> Option<Bytes> {
    let n = body.len();
    if n < 18 || memchr::memmem::find(&body[10..], &[0x1f, 0x8b, 0x08]).is_some() {
        return None;
    }
    let crc = u32::from_le_bytes([body[n - 8], body[n - 7], body[n - 6], body[n - 5]]);
    let isize = u32::from_le_bytes([body[n - 4], body[n - 3], body[n - 2], body[n - 1]]) as usize;
    if max != 0 && isize > max {
        return None;
    }
    // Allocation follows the trailer only up to what deflate can expand
    // to (1032:1), so a lying trailer cannot reserve unbounded memory.
    if isize > n.saturating_mul(1032) {
        return None;
    }
    let mut out = vec![0u8; isize];
    let mut d = libdeflater::Decompressor::new();
    match d.gzip_decompress(body, &mut out) {
        Ok(written) if written == isize && libdeflater::crc32(&out) == crc => {
            Some(Bytes::from(out))
        }
        _ => None,
    }
}

fn decode_streaming(body: &[u8], max: usize) -> Result<Bytes, GzipError> {
    let mut decoder = MultiGzDecoder::new(body);
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
        .map_err(|e| GzipError::Corrupt(e.to_string()))?;
    if max != 0 && read > max {
        return Err(GzipError::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// Deflates `body` into one gzip member at the gateway's level.
pub fn encode(body: &[u8]) -> Bytes {
    let level = libdeflater::CompressionLvl::new(LEVEL).unwrap_or_default();
    let mut c = libdeflater::Compressor::new(level);
    let mut out = vec![0u8; c.gzip_compress_bound(body.len())];
    match c.gzip_compress(body, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Bytes::from(out)
        }
        // The buffer is the compressor's own bound, so this cannot happen;
        // an empty result would fail loudly at the node rather than panic.
        Err(_) => Bytes::new(),
    }
}

/// What the log stores for a validated write body, and whether it is gzip.
///
/// - `client_gzip`: the client's compressed bytes, when it sent gzip;
///   `decoded`: what they inflated to; `validated`: the scanner's output.
/// - When the scanner changed nothing (or only added the final newline),
///   the client's compressed bytes are stored as they are.
/// - Otherwise, with `compress` (some node is `gzip: true`), the validated
///   text is deflated here, once for every node.
/// - Otherwise the validated text is stored plain.
pub fn for_log(
    client_gzip: Option<&Bytes>,
    decoded: &Bytes,
    validated: Bytes,
    compress: bool,
) -> (Bytes, bool) {
    if let Some(raw) = client_gzip {
        let unchanged = validated.len() == decoded.len() && validated.as_ptr() == decoded.as_ptr();
        if unchanged {
            return (raw.clone(), true);
        }
        let only_newline_added = validated.len() == decoded.len() + 1
            && validated.ends_with(b"\n")
            && validated[..decoded.len()] == decoded[..];
        if only_newline_added {
            let mut v = Vec::with_capacity(raw.len() + NEWLINE_MEMBER.len());
            v.extend_from_slice(raw);
            v.extend_from_slice(NEWLINE_MEMBER);
            return (Bytes::from(v), true);
        }
    }
    if compress && validated.len() > 512 {
        return (encode(&validated), true);
    }
    (validated, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("m,t=a f={i}i {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn newline_member_decodes_to_a_newline() {
        assert_eq!(&decode(NEWLINE_MEMBER, 0).unwrap()[..], b"\n");
    }

    #[test]
    fn round_trip_and_multi_member() {
        let a = text(1000);
        let b = text(7);
        let za = encode(&a);
        assert_eq!(decode(&za, 0).unwrap(), a);
        let mut both = za.to_vec();
        both.extend_from_slice(&encode(&b));
        both.extend_from_slice(NEWLINE_MEMBER);
        // The same member twice: size and CRC of the last match the first.
        let mut twice = za.to_vec();
        twice.extend_from_slice(&za);
        assert_eq!(decode(&twice, 0).unwrap(), [&a[..], &a[..]].concat());
        let mut want = a.clone();
        want.extend_from_slice(&b);
        want.push(b'\n');
        assert_eq!(decode(&both, 0).unwrap(), want);
    }

    #[test]
    fn cap_is_on_the_decoded_size() {
        let a = text(1000);
        let z = encode(&a);
        assert_eq!(decode(&z, a.len()).unwrap(), a);
        assert_eq!(decode(&z, a.len() - 1), Err(GzipError::TooLarge));
        // A trailer that lies small must not let a big body through.
        let mut lying = z.to_vec();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert!(decode(&lying, 100).is_err());
    }

    #[test]
    fn for_log_passes_client_gzip_through_only_when_unchanged() {
        let text = Bytes::from(text(50));
        let raw = encode(&text);
        let decoded = decode(&raw, 0).unwrap();
        // Unchanged: the client's own bytes.
        let (b, gz) = for_log(Some(&raw), &decoded, decoded.clone(), false);
        assert!(gz);
        assert_eq!(b.as_ptr(), raw.as_ptr());
        // Rewritten (e.g. a line dropped or stamped): not the client's bytes.
        let edited = decoded.slice(10..);
        let (b, gz) = for_log(Some(&raw), &decoded, edited.clone(), false);
        assert!(!gz);
        assert_eq!(b, edited);
        let (b, gz) = for_log(Some(&raw), &decoded, edited.clone(), true);
        assert!(gz);
        assert_eq!(decode(&b, 0).unwrap(), edited);
        // Only the final newline added: the client's bytes plus a newline member.
        let no_nl = encode(&text[..text.len() - 1]);
        let dec = decode(&no_nl, 0).unwrap();
        let (b, gz) = for_log(Some(&no_nl), &dec, text.clone(), false);
        assert!(gz);
        assert!(b.starts_with(&no_nl));
        assert_eq!(decode(&b, 0).unwrap(), text);
        // Plain bodies: stored plain unless some node wants gzip.
        assert_eq!(
            for_log(None, &text, text.clone(), false),
            (text.clone(), false)
        );
        assert!(for_log(None, &text, text.clone(), true).1);
        let tiny = Bytes::from_static(b"m f=1 1\n");
        assert!(!for_log(None, &tiny, tiny.clone(), true).1);
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let z = encode(&text(100));
        assert!(matches!(
            decode(&z[..z.len() - 3], 0),
            Err(GzipError::Corrupt(_))
        ));
        let mut flipped = z.to_vec();
        flipped[20] ^= 0x55;
        assert!(decode(&flipped, 0).is_err());
        assert!(matches!(decode(b"", 0), Err(GzipError::Corrupt(_))));
        assert!(decode(b"not gzip at all, not at all", 0).is_err());
        let mut trailing = z.to_vec();
        trailing.extend_from_slice(b"junk");
        assert!(decode(&trailing, 0).is_err());
    }
}
