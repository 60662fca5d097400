//! The batch scanner: splits a body into lines, validates each, and builds
//! the body that goes to the log.
//!
//! Exists as the hot loop of the write path. It splits lines exactly as
//! InfluxDB's `scanLine` does (a newline inside a quoted string value, or
//! right after a backslash, does not end a line), keeps the input `Bytes`
//! untouched when nothing needs changing, and otherwise copies the good lines
//! into one new buffer, appending the gateway's timestamp where a line has
//! none.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::error::LineError;
use super::fast::fast_line;
use super::fields::skip_whitespace;
use super::fields::walk_fields;
use super::line::{Point, parse_point};
use super::memo::Memo;
use super::storage::{Drop, FieldType, TypeTracker, hash_bytes, unescape_measurement, value_type};
use super::{MAX_STORED_ERRORS, ScanOptions};

/// The result of scanning one write body.
#[derive(Clone, Debug, Default)]
pub struct ScanOutput {
    /// The valid lines only, each newline-terminated and carrying a
    /// timestamp (the gateway's receive time where the client sent none).
    /// This is the input itself (zero copy) when every line was valid,
    /// timestamped, free of `\r` and the body ended with a newline; empty
    /// when no line was valid.
    pub body: Bytes,
    /// Number of valid lines (points) in `body`.
    pub points: usize,
    /// The first [`MAX_STORED_ERRORS`] rejected lines, in input order.
    pub errors: Vec<LineError>,
    /// Number of rejected lines (all of them, not only the stored ones).
    pub bad_lines: usize,
    /// Valid lines a 1.x shard drops (`time` tag, or only `time` fields);
    /// not in `body`, not counted in `points`.
    pub dropped: usize,
    /// The shard's reason for the drops: the first tag drop, else the first
    /// field drop (1.x checks every tag first).
    pub drop_reason: Option<String>,
    /// Some field has two types in this body (1.x: `field type conflict`,
    /// nothing written). `body` is then empty and `points` 0.
    pub type_conflict: bool,
}

/// Scans `input` with the default options (nanosecond precision, unsigned
/// integers accepted). `now` is the receive time in that precision.
pub fn scan(input: Bytes, now: i64) -> ScanOutput {
    scan_with(input, now, &ScanOptions::default())
}

/// Scans `input`; `now` is the request's receive time already converted to
/// `opts.precision` (take it once per request).
pub fn scan_with(input: Bytes, now: i64, opts: &ScanOptions) -> ScanOutput {
    scan_inner(input, now, opts, true)
}

/// [`scan_with`] without the fast path: the reference the differential
/// tests compare against.
#[cfg(test)]
pub(crate) fn scan_general_only(input: Bytes, now: i64, opts: &ScanOptions) -> ScanOutput {
    scan_inner(input, now, opts, false)
}

fn scan_inner(input: Bytes, now: i64, opts: &ScanOptions, fast: bool) -> ScanOutput {
    finish(scan_part(input, now, opts, fast, PartMode::Keep), opts)
}

/// One stretch of a body scanned on its own, before the body-wide checks
/// (drop reason, field-type conflict) that [`finish`] applies; the parts of
/// a large body are scanned on several cores and merged (`split.rs`).
pub(crate) struct Part {
    /// Counts and errors of this stretch; `body` is the stretch itself when
    /// nothing changed, else its rebuilt form (even with no valid line, so
    /// that kept comments are not lost in a merge).
    pub out: ScanOutput,
    pub types: TypeTracker,
    /// First tag drop, first field drop (see `ScanOutput::drop_reason`).
    pub drops: [Option<String>; 2],
    /// The body was rebuilt (lines dropped, stamped or cleaned).
    pub changed: bool,
    /// A blank or comment line was kept as it was, ahead of any change: in
    /// a rebuilt body it would have been left out.
    pub kept_blank: bool,
    /// The input ends with a newline that ended its last line (not one
    /// inside a quoted string or after a backslash).
    pub clean_end: bool,
}

/// Whole body: the drop reason, then the exact field-type check.
pub(crate) fn finish(part: Part, opts: &ScanOptions) -> ScanOutput {
    let mut out = part.out;
    let [tag_drop, field_drop] = part.drops;
    out.drop_reason = tag_drop.or(field_drop);
    if out.points == 0 {
        out.body = Bytes::new();
    }
    if part.types.suspect && has_type_conflict(&out.body, opts) {
        out.type_conflict = true;
        out.body = Bytes::new();
        out.points = 0;
    }
    out
}

/// How [`scan_part`] treats the body it builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PartMode {
    /// The stretch itself while nothing changes, else its rebuilt form.
    Keep,
    /// The rebuilt form from the first byte (the form a stretch takes after
    /// an earlier one changed).
    Rebuild,
    /// Stop at the first change: the result only says whether the stretch
    /// can be kept as it is.
    Probe,
}

/// Scans `input` as one stretch.
pub(crate) fn scan_part(
    input: Bytes,
    now: i64,
    opts: &ScanOptions,
    fast: bool,
    mode: PartMode,
) -> Part {
    let buf: &[u8] = &input;
    let len = buf.len();
    // " <now>" is the same for every line; format it once.
    let stamp = format!(" {now}");
    let mut out = ScanOutput::default();
    // None while the input can still be returned as-is.
    let mut rebuilt: Option<BytesMut> = (mode == PartMode::Rebuild).then(|| start_rebuild(buf, 0));
    let probe = mode == PartMode::Probe;
    let mut kept_blank = false;
    // End of the last line seen (its newline's position when it had one).
    let mut last_end = usize::MAX;
    let mut tags: Vec<(usize, usize)> = Vec::new();
    let mut types = TypeTracker::new();
    let mut memo = Memo::new();
    let mut name = Vec::new();
    let mut drops: [Option<String>; 2] = [None, None];

    let mut pos = 0;
    // Position of the next '"' or '\\' at or after `pos` (len if none):
    // found with one search for many lines, so quote-free bodies pay for it
    // once rather than per line; and only once a line needs the general
    // path (a body the fast path takes whole never searches at all).
    let mut next_special: Option<usize> = None;
    while pos < len {
        if probe && rebuilt.is_some() {
            break;
        }
        // The common line (see `fast.rs`): valid and plain; it ends at its
        // first newline and is copied as it is, with the gateway's
        // timestamp when it has none.
        if let Some(taken) = fast
            .then(|| fast_line(buf, pos, opts, &mut tags, &mut types, &mut memo))
            .flatten()
        {
            let end = taken.end;
            out.points += 1;
            last_end = end;
            if rebuilt.is_none() && (end == len || taken.stamp) {
                rebuilt = Some(start_rebuild(buf, pos));
            }
            if let Some(b) = rebuilt.as_mut() {
                b.extend_from_slice(&buf[pos..end]);
                if taken.stamp {
                    b.extend_from_slice(stamp.as_bytes());
                }
                b.extend_from_slice(b"\n");
            }
            pos = end + 1;
            continue;
        }
        let special = match next_special {
            Some(at) if at >= pos => at,
            _ => memchr::memchr2(b'"', b'\\', &buf[pos..]).map_or(len, |o| pos + o),
        };
        next_special = Some(special);
        let (line_end, next) = find_line_end(buf, pos, special);
        last_end = line_end;
        let block_start = pos;
        pos = next;

        let mut end = line_end;
        // A quoted newline can leave one at the very end of the last block;
        // InfluxDB strips it, as it strips the terminator.
        if end > block_start && buf[end - 1] == b'\n' {
            end -= 1;
        }
        // Deliberate deviation: InfluxDB rejects CRLF bodies ("bad
        // timestamp"/"invalid number"); the gateway drops the `\r` instead,
        // so nodes never see it.
        let had_cr = end > block_start && buf[end - 1] == b'\r';
        if had_cr {
            end -= 1;
        }
        let start = skip_whitespace(buf, block_start);
        if start >= end || buf[start] == b'#' {
            // Blank line or comment: harmless to nodes, so it never forces a
            // rebuild on its own, and is not copied into a rebuilt body.
            kept_blank |= rebuilt.is_none();
            continue;
        }

        let line = &buf[start..end];
        match parse_point(line, opts, &mut tags) {
            Ok(point) => {
                if let Some(drop) = storage_drop(line, &point, &tags, &mut types, &mut name) {
                    out.dropped += 1;
                    let first = &mut drops[drop as usize];
                    if first.is_none() {
                        *first = Some(drop.reason(&line[..point.name_end]));
                    }
                    if rebuilt.is_none() {
                        rebuilt = Some(start_rebuild(buf, block_start));
                    }
                    continue;
                }
                out.points += 1;
                let terminated = line_end < len;
                if rebuilt.is_none() && (!point.has_timestamp || had_cr || !terminated) {
                    rebuilt = Some(start_rebuild(buf, block_start));
                }
                if let Some(b) = rebuilt.as_mut() {
                    // Copy from the block start, leading whitespace included:
                    // it changes how `scanLine` tracks quotes, so removing it
                    // could re-split the body differently on the node.
                    b.extend_from_slice(&buf[block_start..end]);
                    if !point.has_timestamp {
                        b.extend_from_slice(stamp.as_bytes());
                    }
                    b.extend_from_slice(b"\n");
                }
            }
            Err(reason) => {
                out.bad_lines += 1;
                if out.errors.len() < MAX_STORED_ERRORS {
                    out.errors.push(LineError {
                        line: String::from_utf8_lossy(&buf[start..end]).into_owned(),
                        reason,
                    });
                }
                if rebuilt.is_none() {
                    rebuilt = Some(start_rebuild(buf, block_start));
                }
            }
        }
    }

    let clean_end = len > 0 && last_end == len - 1;
    let changed = rebuilt.is_some();
    out.body = match rebuilt {
        Some(b) => b.freeze(),
        None => input,
    };
    Part {
        out,
        types,
        drops,
        changed,
        kept_blank,
        clean_end,
    }
}

/// The 1.x storage rules for a valid line (see `storage.rs`): whether a
/// shard drops it; otherwise its field types are recorded in `types`.
fn storage_drop(
    line: &[u8],
    point: &Point,
    tags: &[(usize, usize)],
    types: &mut TypeTracker,
    name: &mut Vec<u8>,
) -> Option<Drop> {
    if tags.iter().any(|&(a, b)| &line[a..b] == b"time") {
        return Some(Drop::TimeTag);
    }
    let raw = &line[..point.name_end];
    let m = if raw.contains(&b'\\') {
        unescape_measurement(raw, name);
        hash_bytes(name, 0)
    } else {
        hash_bytes(raw, 0)
    };
    let mut kept = false;
    // Valid lines always walk cleanly; an error cannot happen here.
    let _ = walk_fields(&line[point.fields.0..point.fields.1], |k, v| {
        if k != b"time" {
            kept = true;
            types.add(m, k, value_type(v));
        }
        true
    });
    (!kept).then_some(Drop::TimeField)
}

/// The exact check behind a [`TypeTracker`] suspicion: does some
/// (measurement, field) of the (all-valid) `body` have two types?
fn has_type_conflict(body: &[u8], opts: &ScanOptions) -> bool {
    let mut seen: HashMap<(Vec<u8>, Vec<u8>), FieldType> = HashMap::new();
    let mut tags = Vec::new();
    let mut name = Vec::new();
    let mut conflict = false;
    let mut pos = 0;
    while pos < body.len() && !conflict {
        let special = memchr::memchr2(b'"', b'\\', &body[pos..]).map_or(body.len(), |o| pos + o);
        let (end, next) = find_line_end(body, pos, special);
        let line = &body[skip_whitespace(body, pos).min(end)..end];
        pos = next;
        let Ok(point) = parse_point(line, opts, &mut tags) else {
            continue;
        };
        unescape_measurement(&line[..point.name_end], &mut name);
        let _ = walk_fields(&line[point.fields.0..point.fields.1], |k, v| {
            if k != b"time" {
                let ty = value_type(v);
                let known = *seen.entry((name.clone(), k.to_vec())).or_insert(ty);
                conflict |= known != ty;
            }
            !conflict
        });
    }
    conflict
}

/// Starts a rebuilt body with everything before `upto` (lines already known
/// to be fine, copied in one go).
fn start_rebuild(buf: &[u8], upto: usize) -> BytesMut {
    // Room for the rest plus a timestamp on roughly every line.
    let mut b = BytesMut::with_capacity(buf.len() + buf.len() / 4 + 32);
    b.extend_from_slice(&buf[..upto]);
    b
}

/// Returns (end of the line, start of the next one).
///
/// Fast path: a line without `"` or `\` (`next_special` lies beyond the
/// next newline) ends at that newline. Otherwise
/// replay `scanLine`: `\` skips the next byte, and after the first space a
/// `"` seen while more `=` than `,` have passed toggles quoting, inside which
/// a newline does not end the line.
#[inline]
fn find_line_end(buf: &[u8], pos: usize, next_special: usize) -> (usize, usize) {
    let len = buf.len();
    let candidate = match memchr::memchr(b'\n', &buf[pos..]) {
        Some(off) => pos + off,
        None => len,
    };
    if next_special >= candidate {
        return (candidate, candidate + 1);
    }
    let end = scan_line_slow(buf, pos);
    (end, end + 1)
}

fn scan_line_slow(buf: &[u8], mut i: usize) -> usize {
    let len = buf.len();
    let mut quoted = false;
    let mut fields = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while i < len {
        let c = buf[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && c == b'=' {
                equals += 1;
                i += 1;
                continue;
            } else if !quoted && c == b',' {
                commas += 1;
                i += 1;
                continue;
            } else if c == b'"' && equals > commas {
                quoted = !quoted;
                i += 1;
                continue;
            }
        }
        if c == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    // A trailing backslash "skips" past the end; clamp.
    i.min(len)
}
