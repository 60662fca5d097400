//! On-disk byte layout: the segment header and the record frame.
//!
//! Kept apart from the I/O code so the format is defined in exactly one place
//! and can be unit-tested without files (see the layout table in `mod.rs`).

use super::Payload;

/// First 8 bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"INMATELG";
/// Format version written after the magic; bumped on any layout change.
pub(crate) const VERSION: u32 = 1;
/// Segment header: magic (8) + version u32 LE (4) + zero padding (4).
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
/// Frame header: len u32 + crc32c u32 + seq u64 + appended_at_ms u64, all LE.
pub(crate) const FRAME_HEADER_LEN: usize = 24;
/// Largest payload one frame may carry. Bounds what a reader must hold in
/// memory for one record and makes a corrupted `len` field recognisable.
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024 * 1024;

/// The 16-byte header every segment starts with.
pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Why a segment header was rejected.
pub(crate) fn check_segment_header(h: &[u8]) -> Result<(), String> {
    if h.len() < SEGMENT_HEADER_LEN as usize {
        return Err(format!("short header ({} bytes)", h.len()));
    }
    if &h[..8] != MAGIC {
        return Err("bad magic".to_string());
    }
    let v = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if v != VERSION {
        return Err(format!("unsupported version {v}"));
    }
    Ok(())
}

/// CRC32C over seq, timestamp and payload (the fields a reader trusts).
pub(crate) fn frame_crc(seq: u64, appended_at_ms: u64, payload: &[u8]) -> u32 {
    frame_crc_parts(seq, appended_at_ms, &[payload])
}

/// [`frame_crc`] of a payload given in parts (the same value as over their
/// concatenation).
fn frame_crc_parts(seq: u64, appended_at_ms: u64, parts: &[&[u8]]) -> u32 {
    let mut c = crc32c::crc32c(&seq.to_le_bytes());
    c = crc32c::crc32c_append(c, &appended_at_ms.to_le_bytes());
    for p in parts {
        c = crc32c::crc32c_append(c, p);
    }
    c
}

/// The header of the frame carrying `payload`; the payload's bytes follow it
/// on disk (written from their own buffers, never copied into a frame).
pub(crate) fn frame_header(
    seq: u64,
    appended_at_ms: u64,
    payload: &Payload,
) -> [u8; FRAME_HEADER_LEN] {
    // Callers reject payloads above MAX_PAYLOAD_LEN before encoding, so the
    // length always fits in u32.
    let len = payload.len() as u32;
    let crc = frame_crc_parts(seq, appended_at_ms, &payload.parts());
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..].copy_from_slice(&appended_at_ms.to_le_bytes());
    h
}

/// Appends one encoded frame to `buf` (tests build segments with it).
#[cfg(test)]
pub(crate) fn encode_frame(buf: &mut Vec<u8>, seq: u64, appended_at_ms: u64, payload: &[u8]) {
    let p = Payload::from(bytes::Bytes::copy_from_slice(payload));
    buf.extend_from_slice(&frame_header(seq, appended_at_ms, &p));
    buf.extend_from_slice(payload);
}

/// Total on-disk size of a frame carrying `payload_len` bytes.
pub(crate) fn frame_size(payload_len: usize) -> u64 {
    (FRAME_HEADER_LEN + payload_len) as u64
}

/// A decoded (not yet CRC-checked) frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub len: u32,
    pub crc: u32,
    pub seq: u64,
    pub appended_at_ms: u64,
}

impl FrameHeader {
    /// Decodes the first FRAME_HEADER_LEN bytes of `b` (caller ensures length).
    pub(crate) fn decode(b: &[u8]) -> Option<FrameHeader> {
        let b = b.get(..FRAME_HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Some(FrameHeader {
            len: u32_at(0),
            crc: u32_at(4),
            seq: u64_at(8),
            appended_at_ms: u64_at(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip_and_crc_detects_flip() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 42, 1_700_000_000_000, b"hello");
        assert_eq!(buf.len() as u64, frame_size(5));
        let h = FrameHeader::decode(&buf).unwrap();
        assert_eq!((h.len, h.seq, h.appended_at_ms), (5, 42, 1_700_000_000_000));
        assert_eq!(
            h.crc,
            frame_crc(h.seq, h.appended_at_ms, &buf[FRAME_HEADER_LEN..])
        );
        // The same frame from a payload in two parts.
        let split = Payload::from_parts(
            bytes::Bytes::from_static(b"he"),
            bytes::Bytes::from_static(b"llo"),
        );
        assert_eq!(
            frame_header(42, 1_700_000_000_000, &split)[..],
            buf[..FRAME_HEADER_LEN]
        );
        buf[FRAME_HEADER_LEN + 1] ^= 0x10;
        assert_ne!(
            h.crc,
            frame_crc(h.seq, h.appended_at_ms, &buf[FRAME_HEADER_LEN..])
        );
    }

    #[test]
    fn segment_header_checks() {
        let h = segment_header();
        assert!(check_segment_header(&h).is_ok());
        let mut bad = h;
        bad[0] = b'X';
        assert!(check_segment_header(&bad).is_err());
        assert!(check_segment_header(&h[..10]).is_err());
        let mut v2 = h;
        v2[8] = 2;
        assert!(check_segment_header(&v2).is_err());
    }
}
