//! Sequential, memory-bounded frame scanning of one segment file.
//!
//! Recovery and disk readers share this scanner so that both treat damage the
//! same way. It reads through a window (one `pread` per ~1 MiB, not per
//! record): a frame's payload is handed out as a [`Bytes`] slice of that
//! window, not a copy, so a disk reader allocates once per window instead of
//! once per record.
//!
//! Memory bound: every time the scanner needs bytes its window does not
//! cover it reads them into a *fresh* buffer and drops its reference to the
//! old one; a window is never reused or written after it was frozen. So a
//! scanner holds at most one window (~1 MiB, or one frame when a frame is
//! larger), and each payload slice handed out keeps at most its own window
//! alive until the slice is dropped. A reader therefore pins its current
//! window plus the windows its in-flight batch (and a carried-over frame)
//! points into. A frame of at least half a window that does not fit the
//! current window is read on its own (exactly its bytes), so a large record
//! does not pin much beyond itself.
//!
//! Damage handling: when the bytes at the current position are not a valid
//! frame, the scanner first tries the position the `len` field points to (the
//! common case of a flipped payload/CRC bit), then resynchronises byte by byte
//! until a frame validates: plausible `len`, a `seq` inside the expected range
//! (strictly above the previous frame, below the next segment), and a matching
//! CRC. The skipped range is reported as [`Scan::Corrupt`]; if nothing valid
//! follows, the rest is [`Scan::Tail`] (a torn write in the active segment).

use std::io;

use bytes::Bytes;

use super::frame::{FRAME_HEADER_LEN, FrameHeader, MAX_PAYLOAD_LEN, frame_crc, frame_size};
use super::fs::FileHandle;

/// How much the window reads at once; large enough to amortise syscalls.
const WINDOW_CHUNK: usize = 1024 * 1024;

/// How many bytes to read for a window that must cover `n` bytes: a whole
/// chunk, except that a large frame (half a chunk or more) is read on its own
/// so its slice pins little besides itself.
fn window_len(n: usize) -> usize {
    if n >= WINDOW_CHUNK / 2 {
        n
    } else {
        WINDOW_CHUNK
    }
}

/// One step of a scan.
#[derive(Debug)]
pub(crate) enum Scan {
    /// A valid frame at `offset`.
    Frame {
        offset: u64,
        seq: u64,
        appended_at_ms: u64,
        /// A slice of the scanner's window (shares its allocation).
        payload: Bytes,
    },
    /// Bytes `[from, to)` were not valid frames; a valid frame starts at `to`.
    Corrupt { from: u64, to: u64 },
    /// Bytes `[from, limit)` hold no valid frame (torn tail or trailing garbage).
    Tail { from: u64 },
    /// The scan reached `limit` cleanly.
    End,
}

/// Reads frames from one segment between a start offset and `limit`.
pub(crate) struct FrameScanner {
    file: FileHandle,
    /// Never read at or beyond this offset (file length, or the published end).
    limit: u64,
    /// The current window: file bytes `[buf_off, buf_off + buf.len())`.
    /// Replaced, never refilled, so slices handed out stay valid.
    buf: Bytes,
    buf_off: u64,
    pos: u64,
    /// The next frame's seq must be >= min_seq (seqs strictly increase).
    min_seq: u64,
    /// ...and < max_seq (the next segment's first seq, or the log's end).
    max_seq: u64,
}

impl FrameScanner {
    pub(crate) fn new(
        file: FileHandle,
        start: u64,
        limit: u64,
        min_seq: u64,
        max_seq: u64,
    ) -> Self {
        FrameScanner {
            file,
            limit,
            buf: Bytes::new(),
            buf_off: 0,
            pos: start,
            min_seq,
            max_seq,
        }
    }

    /// Raises the byte limit (the active segment grew) and the seq bound.
    pub(crate) fn extend(&mut self, limit: u64, max_seq: u64) {
        self.limit = self.limit.max(limit);
        self.max_seq = self.max_seq.max(max_seq);
    }

    /// Makes `buf` cover `[off, off + n)`; false if that range passes `limit`.
    fn ensure(&mut self, off: u64, n: usize) -> io::Result<bool> {
        let end = off.saturating_add(n as u64);
        if end > self.limit {
            return Ok(false);
        }
        if off >= self.buf_off && end <= self.buf_off + self.buf.len() as u64 {
            return Ok(true);
        }
        // Remaining bytes up to the limit, capped at the window size (never
        // below what this frame needs). A fresh buffer: the old window may be
        // shared by payload slices already handed out.
        let avail = (self.limit - off) as usize;
        let want = window_len(n).min(avail);
        self.buf = Bytes::new();
        let mut fresh = vec![0u8; want];
        self.file.read_exact_at(&mut fresh, off)?;
        self.buf = Bytes::from(fresh);
        self.buf_off = off;
        Ok(true)
    }

    /// Where file bytes `[off, off + n)` sit in the window.
    fn range(&self, off: u64, n: usize) -> std::ops::Range<usize> {
        let s = (off - self.buf_off) as usize;
        s..s + n
    }

    fn slice(&self, off: u64, n: usize) -> &[u8] {
        &self.buf[self.range(off, n)]
    }

    /// The header at `off` if a complete, in-range, CRC-valid frame starts there.
    fn valid_at(&mut self, off: u64) -> io::Result<Option<FrameHeader>> {
        if !self.ensure(off, FRAME_HEADER_LEN)? {
            return Ok(None);
        }
        let Some(h) = FrameHeader::decode(self.slice(off, FRAME_HEADER_LEN)) else {
            return Ok(None);
        };
        // Cheap plausibility checks first, so resync over garbage stays fast.
        if h.len as usize > MAX_PAYLOAD_LEN || h.seq < self.min_seq || h.seq >= self.max_seq {
            return Ok(None);
        }
        let total = FRAME_HEADER_LEN + h.len as usize;
        if !self.ensure(off, total)? {
            return Ok(None);
        }
        let payload = &self.slice(off, total)[FRAME_HEADER_LEN..];
        if frame_crc(h.seq, h.appended_at_ms, payload) != h.crc {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Returns the next frame, damaged range, or the end.
    pub(crate) fn next(&mut self) -> io::Result<Scan> {
        if self.pos >= self.limit {
            return Ok(Scan::End);
        }
        let at = self.pos;
        if let Some(h) = self.valid_at(at)? {
            self.pos = at + frame_size(h.len as usize);
            self.min_seq = h.seq + 1;
            let payload = self
                .buf
                .slice(self.range(at + FRAME_HEADER_LEN as u64, h.len as usize));
            return Ok(Scan::Frame {
                offset: at,
                seq: h.seq,
                appended_at_ms: h.appended_at_ms,
                payload,
            });
        }
        // Damaged. Fast path: trust the len field once (a flipped payload bit).
        if self.ensure(at, FRAME_HEADER_LEN)?
            && let Some(h) = FrameHeader::decode(self.slice(at, FRAME_HEADER_LEN))
            && (h.len as usize) <= MAX_PAYLOAD_LEN
        {
            let cand = at + frame_size(h.len as usize);
            if self.valid_at(cand)?.is_some() {
                self.pos = cand;
                return Ok(Scan::Corrupt { from: at, to: cand });
            }
        }
        // Slow path: resynchronise byte by byte.
        let mut c = at + 1;
        while c + FRAME_HEADER_LEN as u64 <= self.limit {
            if self.valid_at(c)?.is_some() {
                self.pos = c;
                return Ok(Scan::Corrupt { from: at, to: c });
            }
            c += 1;
        }
        self.pos = self.limit;
        Ok(Scan::Tail { from: at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::encode_frame;
    use std::io::Write;

    fn scan_all(bytes: &[u8]) -> Vec<String> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let f: FileHandle = std::sync::Arc::new(crate::log::fs::RealFile(f));
        let mut s = FrameScanner::new(f, 0, bytes.len() as u64, 1, u64::MAX);
        let mut out = Vec::new();
        loop {
            match s.next().unwrap() {
                Scan::Frame { seq, payload, .. } => {
                    out.push(format!("{seq}:{}", String::from_utf8_lossy(&payload)))
                }
                Scan::Corrupt { from, to } => out.push(format!("corrupt {from}..{to}")),
                Scan::Tail { from } => out.push(format!("tail {from}")),
                Scan::End => break,
            }
        }
        out
    }

    #[test]
    fn skips_flipped_bits_and_reports_tail() {
        let mut b = Vec::new();
        for (i, p) in ["aa", "bbb", "cccc"].iter().enumerate() {
            encode_frame(&mut b, i as u64 + 1, 7, p.as_bytes());
        }
        assert_eq!(scan_all(&b), vec!["1:aa", "2:bbb", "3:cccc"]);
        // Flip a payload bit of frame 2: skipped via its len field.
        let mut flipped = b.clone();
        flipped[26 + 24] ^= 1;
        assert_eq!(scan_all(&flipped), vec!["1:aa", "corrupt 26..53", "3:cccc"]);
        // Corrupt frame 2's len: resync byte by byte finds frame 3.
        let mut badlen = b.clone();
        badlen[26 + 3] = 0xff;
        assert_eq!(scan_all(&badlen), vec!["1:aa", "corrupt 26..53", "3:cccc"]);
        // Torn tail.
        let torn = &b[..b.len() - 2];
        assert_eq!(scan_all(torn), vec!["1:aa", "2:bbb", "tail 53"]);
    }
}
