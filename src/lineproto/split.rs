//! Large bodies scanned on several cores; bodies stored as their chunks.
//!
//! A body over [`PART_MIN`] bytes per core is cut at newlines into up to
//! [`MAX_PARTS`] parts; each part is scanned on its own thread
//! ([`scan_part`]: its own memo and field-type tracker) and the results are
//! merged into exactly the [`ScanOutput`] that one scan of the whole body
//! gives. The merge is exact, not approximate:
//!
//! - **Where lines end.** A newline inside a quoted string value, or right
//!   after a backslash, does not end a line, and only a scan from the start
//!   can tell. Each part reports whether its last line ended at its final
//!   newline; if some part's did not, the cut fell inside a line and the
//!   body is scanned again in one piece. Otherwise every cut is a true line
//!   boundary and each part sees exactly the lines the whole scan sees.
//! - **Field types.** The parts' trackers are merged; a field with two
//!   types in different parts makes the merge suspect, and the exact check
//!   runs on the merged body, as for one scan.
//! - **The body.** Unchanged parts give the input back as it is (zero
//!   copy). Once a part has changed, one scan would leave blank and comment
//!   lines out of everything after it, so a later part that kept one is
//!   scanned again in its rebuilt form (rare: comments in a multi-megabyte
//!   body that also has a line to fix).
//! - **Errors, counts and drop reasons** are taken in input order, so the
//!   first stored errors and the first drop reason are the same.
//!
//! The same machinery stores a Telegraf-sized body without joining the
//! chunks the server read it in ([`scan_chunks`]): the chunks are cut into
//! pieces of whole lines (large chunks kept as they are, small ones and the
//! lines that straddle two chunks copied), each piece is probed on this
//! thread, and the pieces are offered only when one scan of the joined body
//! would store it unchanged.
//!
//! The differential tests (`tests_split.rs`) compare the merge, and the
//! pieces, with one scan on generated bodies cut at every kind of place.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::scan::{Part, PartMode, ScanOutput, finish, scan_part, scan_with};
use super::storage::TypeTracker;
use super::{MAX_STORED_ERRORS, ScanOptions};

/// Smallest part worth a thread of its own (about 0.3 ms of scanning).
pub const PART_MIN: usize = 512 * 1024;

/// Most parts one body is cut into.
pub const MAX_PARTS: usize = 8;

/// Scans `input` on up to `cores` threads (parts of at least
/// [`PART_MIN`] bytes, at most [`MAX_PARTS`]); the same result as
/// [`scan_with`]. Blocks the calling thread: call it off the async workers.
pub fn scan_split(input: Bytes, now: i64, opts: &ScanOptions, cores: usize) -> ScanOutput {
    let parts = cores.min(MAX_PARTS).min(input.len() / PART_MIN);
    scan_in_parts(input, now, opts, parts)
}

/// The cores a large body may use: what the machine (or its cgroup)
/// offers, at most [`MAX_PARTS`]; read once.
pub fn scan_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_PARTS)))
}

/// [`scan_split`] with the number of parts given (tests cut small bodies).
pub(crate) fn scan_in_parts(
    input: Bytes,
    now: i64,
    opts: &ScanOptions,
    parts: usize,
) -> ScanOutput {
    let ranges = cut(&input, parts);
    if ranges.len() < 2 {
        return scan_with(input, now, opts);
    }
    let scan = |r: Range<usize>| scan_part(input.slice(r), now, opts, true, PartMode::Keep);
    let scanned: Vec<Part> = std::thread::scope(|s| {
        let spawned: Vec<_> = ranges[1..]
            .iter()
            .map(|r| {
                std::thread::Builder::new()
                    .name("inmate-scan".into())
                    .spawn_scoped(s, move || scan(r.clone()))
                    .map_err(|_| r.clone())
            })
            .collect();
        let mut out = vec![scan(ranges[0].clone())];
        for handle in spawned {
            out.push(match handle {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: scan that part here.
                Err(r) => scan(r),
            });
        }
        out
    });
    let last = scanned.len() - 1;
    if scanned[..last].iter().any(|p| !p.clean_end) {
        // A cut fell inside a quoted string (or after a backslash).
        return scan_with(input, now, opts);
    }
    merge(&input, &ranges, scanned, now, opts)
}

/// A plain body that arrived in several chunks, as pieces of whole lines
/// that can be stored as they are: the chunks' own bytes (no joined copy)
/// and, where a line straddles two chunks, a small copy of that line.
#[derive(Debug)]
pub struct Pieces {
    /// The pieces in order, each with its number of points; their
    /// concatenation is the body.
    pub pieces: Vec<(Bytes, usize)>,
    /// Totals of the body (its `body` field is empty).
    pub out: ScanOutput,
}

/// Scans a body given as `chunks` without joining them, when the body can be
/// stored exactly as it came: every line valid and timestamped, the last one
/// ending with a newline, no field with two types, some point. `None`
/// otherwise (or when a quoted string holds a newline where a piece would
/// end): the caller then joins the chunks and scans them in one piece,
/// which finds what to change.
///
/// A chunk under [`KEEP_MIN`] bytes is copied rather than kept: a kept
/// chunk holds on to the whole read buffer it was cut from, and the log's
/// in-memory tail keeps records for a while.
pub fn scan_chunks(chunks: &[Bytes], now: i64, opts: &ScanOptions) -> Option<Pieces> {
    scan_chunks_keeping(chunks, now, opts, KEEP_MIN)
}

/// The server's read buffer bound (hyper's default, set explicitly by the
/// listener): no request chunk's allocation is larger.
pub const READ_BUF_MAX: usize = 8192 + 4096 * 100;

/// Smallest chunk stored without a copy: at least 3/5 of [`READ_BUF_MAX`],
/// so a kept chunk's allocation is at most 1.67x its bytes.
pub const KEEP_MIN: usize = READ_BUF_MAX * 3 / 5;

/// [`scan_chunks`] keeping chunks of at least `keep_min` bytes.
pub(crate) fn scan_chunks_keeping(
    chunks: &[Bytes],
    now: i64,
    opts: &ScanOptions,
    keep_min: usize,
) -> Option<Pieces> {
    let mut pieces = Vec::with_capacity(chunks.len() * 2);
    // Bytes to copy: a line that began in an earlier chunk, or small chunks.
    let mut carry = BytesMut::new();
    for c in chunks.iter().filter(|c| !c.is_empty()) {
        if c.len() < keep_min {
            carry.extend_from_slice(c);
            continue;
        }
        let Some(first) = memchr::memchr(b'\n', c) else {
            carry.extend_from_slice(c);
            continue;
        };
        let last = memchr::memrchr(b'\n', c).unwrap_or(first);
        let whole_from = if carry.is_empty() {
            0
        } else {
            carry.extend_from_slice(&c[..=first]);
            pieces.push(carry.split().freeze());
            first + 1
        };
        if whole_from <= last {
            pieces.push(c.slice(whole_from..=last));
        }
        carry.extend_from_slice(&c[last + 1..]);
    }
    if !carry.is_empty() {
        if !carry.ends_with(b"\n") {
            // The last line has no newline: stored with one added.
            return None;
        }
        pieces.push(carry.freeze());
    }
    let mut out = ScanOutput::default();
    let mut types = TypeTracker::new();
    let mut counted = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let part = scan_part(piece.clone(), now, opts, true, PartMode::Probe);
        if part.changed || !part.clean_end {
            return None;
        }
        types.merge(&part.types);
        out.points += part.out.points;
        counted.push((piece, part.out.points));
    }
    // A possible type conflict needs the exact check over the whole body;
    // a body of comments alone stores nothing.
    (!types.suspect && out.points > 0).then_some(Pieces {
        pieces: counted,
        out,
    })
}

/// Cuts `buf` into at most `parts` ranges of about equal size, each ending
/// just after a newline (the last one at the end of `buf`).
fn cut(buf: &[u8], parts: usize) -> Vec<Range<usize>> {
    let len = buf.len();
    let mut ranges = Vec::with_capacity(parts.max(1));
    let mut start = 0;
    for i in 1..parts {
        let target = (len * i / parts).max(start);
        let Some(at) = memchr::memchr(b'\n', &buf[target..]) else {
            break;
        };
        let end = target + at + 1;
        if end >= len {
            break;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges.push(start..len);
    ranges
}

/// The one-scan result from the parts' results (all cuts at line ends).
fn merge(
    input: &Bytes,
    ranges: &[Range<usize>],
    parts: Vec<Part>,
    now: i64,
    opts: &ScanOptions,
) -> ScanOutput {
    let first_changed = parts.iter().position(|p| p.changed);
    let mut out = ScanOutput::default();
    let mut drops: [Option<String>; 2] = [None, None];
    let mut types: Option<TypeTracker> = None;
    let mut rebuilt: Option<BytesMut> = None;
    for (i, part) in parts.into_iter().enumerate() {
        match types.as_mut() {
            None => types = Some(part.types),
            Some(t) => t.merge(&part.types),
        }
        out.points += part.out.points;
        out.bad_lines += part.out.bad_lines;
        out.dropped += part.out.dropped;
        let room = MAX_STORED_ERRORS.saturating_sub(out.errors.len());
        out.errors.extend(part.out.errors.into_iter().take(room));
        for (mine, theirs) in drops.iter_mut().zip(part.drops) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        let Some(k) = first_changed.filter(|&k| i >= k) else {
            continue;
        };
        let body = if i > k && part.kept_blank {
            // After a change one scan leaves blank and comment lines out.
            scan_part(
                input.slice(ranges[i].clone()),
                now,
                opts,
                true,
                PartMode::Rebuild,
            )
            .out
            .body
        } else {
            part.out.body
        };
        rebuilt
            .get_or_insert_with(|| {
                let mut b = BytesMut::with_capacity(input.len() + input.len() / 4 + 32);
                b.extend_from_slice(&input[..ranges[k].start]);
                b
            })
            .extend_from_slice(&body);
    }
    out.body = rebuilt.map_or_else(|| input.clone(), BytesMut::freeze);
    finish(
        Part {
            out,
            types: types.unwrap_or_else(TypeTracker::new),
            drops,
            changed: first_changed.is_some(),
            kept_blank: false,
            clean_end: true,
        },
        opts,
    )
}
