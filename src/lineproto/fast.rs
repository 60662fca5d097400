//! The fast path for the common line: plain names, numeric or boolean
//! fields, an explicit timestamp or none (the line then ends right after
//! its last value), no escapes and no quotes.
//!
//! Exists because that is what Telegraf and most client libraries send, and
//! the general validator (`line.rs`/`fields.rs`) pays for InfluxDB's
//! irregular corners on every byte: a separate newline search, a byte loop
//! per name, and a digit-by-digit timestamp. Here one forward pass over the
//! line finds each name's end eight bytes at a time (SWAR on `u64`, no
//! `unsafe`), checks timestamp digits sixteen at a time (`block.rs`; their
//! value is only computed when the range check needs it: not for
//! nanoseconds below 9 * 10^18), and finds the line end as a by-product.
//! Numbers of up to 15 characters (`0.5,`, `12i `) are checked within one
//! 16-byte block.
//!
//! Most of the rest is skipped on repeats (`memo.rs`): a series key whose
//! bytes equal one that passed before in the same body (guessed from the
//! line order of the last repeat, else found by one hashed search for the
//! space; confirmed by comparing bytes either way) is not validated again
//! (no name scan, no duplicate-tag check). A line whose numeric fields
//! follow its measurement's last layout is then walked from byte-class
//! masks (`window.rs`), and a field that does not is checked here: one
//! whose key bytes (with the `=`) and type equal the one at the same place
//! in the layout neither searches for its end nor touches the field-type
//! tracker.
//!
//! The contract is one-sided: [`fast_line`] answers either "valid, ending
//! here, with or without a timestamp" or "don't know" (`None`), never
//! "invalid". Any byte or shape it is not sure about (`\`, `"`, `\r`, tabs,
//! NUL, leading whitespace, strings, exponents, long numbers, duplicate
//! tags, a space with no timestamp after it, …) sends the line to the
//! general path, which gives the exact
//! InfluxDB answer. The differential tests in `tests_fast.rs` hold the two
//! paths to agreement.

use super::ScanOptions;
use super::block::Block;
use super::fields::scan_simple_number;
use super::line::{MAX_KEY_LENGTH, has_duplicate_keys, surely_in_range, time_in_range};
use super::memo::{Field, Known, Memo, probe_key, word};
use super::storage::{FieldType, TypeTracker, hash_bytes};
use super::window::{Walk, walk};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit of each byte of `x` that equals `c`, exactly (no false hits).
#[inline(always)]
pub(crate) fn eq_mask(x: u64, c: u8) -> u64 {
    let y = x ^ (ONES * u64::from(c));
    !(((y & !HIGHS) + !HIGHS) | y) & HIGHS
}

/// High bit of each byte of `x` below `n` (`1 <= n <= 0x80`), exactly.
#[inline(always)]
fn lt_mask(x: u64, n: u8) -> u64 {
    !(((x & !HIGHS) + ONES * u64::from(0x80 - n)) | x) & HIGHS
}

/// Bytes below `0` that may still appear inside a fast-path name.
static NAME_CONTINUES: [bool; 0x30] = {
    let mut t = [true; 0x30];
    let mut b = 0;
    // Controls (tab and NUL are whitespace to InfluxDB, \n and \r end
    // lines), space, `"` and `,` all stop a name or leave the fast path.
    while b < 0x20 {
        t[b] = false;
        b += 1;
    }
    t[b' ' as usize] = false;
    t[b'"' as usize] = false;
    t[b',' as usize] = false;
    t
};

/// Index of the first byte at or after `i` that can end a name (`,` ` `
/// `=`) or must leave the fast path (`\`, `"`, controls); `buf.len()` if
/// none. Bytes such as `-` `.` `/` are flagged by the word test but skipped.
#[inline(always)]
fn next_stop(buf: &[u8], mut i: usize) -> usize {
    while let Some(x) = word(buf, i) {
        let mut mask = lt_mask(x, b'0') | eq_mask(x, b'=') | eq_mask(x, b'\\');
        while mask != 0 {
            let j = i + (mask.trailing_zeros() / 8) as usize;
            let c = buf[j];
            if !(c < 0x30 && NAME_CONTINUES[c as usize]) {
                return j;
            }
            mask &= mask - 1;
        }
        i += 8;
    }
    while let Some(&c) = buf.get(i) {
        if c == b'=' || c == b'\\' || (c < 0x30 && !NAME_CONTINUES[c as usize]) {
            return i;
        }
        i += 1;
    }
    i
}

/// Parses the timestamp at `i` up to the `\n` ending the line (or the end
/// of `buf`); returns that index when the timestamp is valid and in range.
#[inline(always)]
fn timestamp(buf: &[u8], mut i: usize, opts: &ScanOptions) -> Option<usize> {
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let start = i;
    // Digits only, sixteen at a time, then one by one: 19 is the most any
    // timestamp can have.
    if let Some(b) = Block::at(buf, i) {
        let nd = b.non_digits();
        i += nd.trailing_zeros().min(16) as usize;
        if nd == 0
            && let Some(b) = Block::at(buf, i)
        {
            i += b.non_digits().trailing_zeros().min(16) as usize;
        }
    }
    while let Some(&c) = buf.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
    }
    if i - start > 19 {
        return None;
    }
    if i == start || !matches!(buf.get(i), None | Some(b'\n')) {
        return None;
    }
    let digits = &buf[start..i];
    if surely_in_range(digits.len(), digits[0], opts) {
        return Some(i);
    }
    let acc = digits
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    let ts = if negative {
        if acc > 1 << 63 {
            return None;
        }
        (acc as i64).wrapping_neg()
    } else {
        i64::try_from(acc).ok()?
    };
    time_in_range(ts, opts).then_some(i)
}

/// The number at `i` (`D+`, `D+.D+` or `D+i`, then `,`, ` ` or the line's
/// `\n`) when it fits one block of sixteen bytes, found from byte-class
/// masks; otherwise the byte-wise [`scan_simple_number`]. Returns the index
/// just past it and its type. Accepts a subset of what `scan_simple_number`
/// accepts on the line (the body cut at its `\n`), at the same end.
#[inline(always)]
pub(crate) fn number(buf: &[u8], i: usize) -> Option<(usize, FieldType)> {
    if let Some(b) = Block::at(buf, i) {
        let nd = b.non_digits();
        // The first delimiter, and the non-digits before it.
        let e = (b.eq(b',') | b.eq(b' ') | b.eq(b'\n')).trailing_zeros();
        let before = nd & 1u32.checked_shl(e).map_or(u32::MAX, |m| m - 1);
        let p = nd.trailing_zeros();
        if p > 0 && e < 16 {
            let end = i + e as usize;
            if before == 0 {
                return Some((end, FieldType::Float));
            }
            // Exactly one non-digit: a `.` with digits after it, or a
            // final `i`.
            if before & (before - 1) == 0 {
                if b.eq(b'.') & before != 0 && p + 1 < e {
                    return Some((end, FieldType::Float));
                }
                if b.eq(b'i') & before != 0 && p + 1 == e {
                    return Some((end, FieldType::Integer));
                }
            }
        }
    }
    let end = scan_simple_number(buf, i)?;
    let ty = if buf[end - 1] == b'i' {
        FieldType::Integer
    } else {
        FieldType::Float
    };
    Some((end, ty))
}

/// Validates a boolean value at `i`; returns the index just past it.
#[inline]
fn boolean(buf: &[u8], i: usize) -> Option<usize> {
    let end = next_stop(buf, i);
    matches!(
        &buf[i..end],
        b"t" | b"T" | b"f" | b"F" | b"true" | b"false" | b"TRUE" | b"True" | b"FALSE" | b"False"
    )
    .then_some(end)
}

/// The numeric or boolean value at `i`: the index just past it and its
/// type.
#[inline(always)]
fn value_at(buf: &[u8], i: usize) -> Option<(usize, FieldType)> {
    match *buf.get(i)? {
        b'0'..=b'9' | b'-' => number(buf, i),
        b't' | b'T' | b'f' | b'F' => Some((boolean(buf, i)?, FieldType::Boolean)),
        _ => None,
    }
}

/// A line the fast path takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The index of the `\n` ending the line, or `buf.len()` if the body
    /// ends without one.
    pub end: usize,
    /// The line has no timestamp: the gateway's goes after it.
    pub stamp: bool,
}

/// Tries the common line shape at `start` (which must be where the line's
/// block starts). Returns where the line ends, and whether it needs the
/// gateway's timestamp, when it is valid; `None` when the general path must
/// decide.
///
/// `tags` is scratch space, as for `parse_point`; indices are into `buf`.
/// `memo` must only ever have seen this `buf` (see `memo.rs`).
#[inline]
pub(crate) fn fast_line(
    buf: &[u8],
    start: usize,
    opts: &ScanOptions,
    tags: &mut Vec<(usize, usize)>,
    types: &mut TypeTracker,
    memo: &mut Memo,
) -> Option<Taken> {
    if buf.get(start) == Some(&b'#') {
        return None;
    }
    let (key_end, known) = match memo.series.predict(buf, start) {
        Some((sp, known, n)) => {
            memo.series.follow(n);
            (sp, known)
        }
        None => {
            let probe = probe_key(buf, start);
            let hit = probe.and_then(|(sp, h)| memo.series.find(buf, start, sp, h));
            match (probe, hit) {
                (Some((sp, _)), Some((known, n))) => {
                    memo.series.follow(n);
                    (sp, known)
                }
                _ => {
                    let (key_end, m) = series_key(buf, start, tags)?;
                    let known = Known {
                        m,
                        layout: memo.layouts.index(m),
                    };
                    if let Some((sp, h)) = probe.filter(|p| p.0 == key_end) {
                        let n = memo.series.insert(start, sp, h, known);
                        memo.series.follow(n);
                    }
                    (key_end, known)
                }
            }
        }
    };
    let m = known.m;
    let fields_start = key_end + 1;
    // The longest field key could break the series-key limit (fields
    // ending at `space`); let the general path measure it exactly.
    let key_fits = |space: usize| key_end - start + 4 + (space - fields_start) <= MAX_KEY_LENGTH;
    let slot = known.layout;
    let layout = memo.layouts.get(slot);
    // The hot line: numeric fields exactly as last time, from masks; the
    // loops below go on from where that walk stopped.
    let (mut idx, mut i) = match walk(buf, fields_start, layout, opts) {
        Walk::Line { space, end } => {
            return key_fits(space).then_some(Taken { end, stamp: false });
        }
        Walk::Fields { space } => {
            if !key_fits(space) {
                return None;
            }
            let end = timestamp(buf, space + 1, opts)?;
            return Some(Taken { end, stamp: false });
        }
        Walk::Partial { matched, at } => (matched, at),
    };

    // Fields: `key=number` or `key=bool`, comma-separated; their types go to
    // `types` as they pass (a line that then fails leaves at most a false
    // suspicion, which the exact check clears).
    // The line's fields are only recorded once they differ from the
    // layout (`cur` then starts with the layout's matching prefix).
    let cur = &mut memo.cur;
    cur.clear();
    let mut same_layout = true;
    // The common case first: field after field as the layout has it, key
    // and type; the first difference goes on below from that field.
    let mut ended = false;
    // The fields end at the line's end: no timestamp.
    let mut untimed = false;
    for f in layout.get(idx..).unwrap_or_default() {
        if !f.matches(buf, i) {
            break;
        }
        let value = i + f.key_len();
        let (end, ty) = value_at(buf, value)?;
        if ty != f.ty {
            break;
        }
        idx += 1;
        match buf.get(end) {
            Some(b',') => i = end + 1,
            Some(b' ') => {
                i = end;
                ended = true;
                break;
            }
            Some(b'\n') | None => {
                i = end;
                ended = true;
                untimed = true;
                break;
            }
            _ => return None,
        }
    }
    while !ended {
        let key = i;
        let expected = layout.get(idx);
        // Same bytes as a key that passed here before, then `=`: same
        // verdict, no search.
        // The remembered key is followed by its `=`: compare that too.
        let matched = expected.filter(|f| f.matches(buf, key));
        let field_end = match matched {
            Some(f) => key + (f.key_end - f.key),
            None => {
                let e = next_stop(buf, key);
                if e == key || buf.get(e) != Some(&b'=') || &buf[key..e] == b"time" {
                    return None;
                }
                e
            }
        };
        let ty;
        (i, ty) = value_at(buf, field_end + 1)?;
        // A field equal to the layout's (key and type) is in the tracker.
        if matched.is_none_or(|f| f.ty != ty) {
            if same_layout {
                same_layout = false;
                cur.extend_from_slice(layout.get(..idx).unwrap_or_default());
            }
            types.add(m, &buf[key..field_end], ty);
        }
        if !same_layout {
            cur.push(Field::new(buf, key, field_end, ty));
        }
        idx += 1;
        match buf.get(i) {
            Some(b',') => i += 1,
            Some(b' ') => ended = true,
            Some(b'\n') | None => {
                ended = true;
                untimed = true;
            }
            _ => return None,
        }
    }
    if !key_fits(i) {
        return None;
    }
    let end = if untimed {
        i
    } else {
        timestamp(buf, i + 1, opts)?
    };
    // A line that matched its layout all along leaves it as it is (a
    // longer layout's extra fields are still in the tracker).
    if !same_layout {
        memo.layouts.set(slot, &memo.cur);
    }
    Some(Taken {
        end,
        stamp: untimed,
    })
}

/// Validates the series key at `start` the long way; returns the index of
/// the space ending it and the measurement's hash.
#[inline]
fn series_key(buf: &[u8], start: usize, tags: &mut Vec<(usize, usize)>) -> Option<(usize, u64)> {
    // Measurement.
    let mut i = next_stop(buf, start);
    if i == start {
        return None;
    }
    let name_end = i;
    let mut c = *buf.get(i)?;
    tags.clear();
    while c == b',' {
        let key = i + 1;
        i = next_stop(buf, key);
        // A `time` tag is dropped by the shard: the general path reports it.
        if i == key || buf.get(i) != Some(&b'=') || &buf[key..i] == b"time" {
            return None;
        }
        tags.push((key, i));
        let value = i + 1;
        i = next_stop(buf, value);
        if i == value {
            return None;
        }
        c = *buf.get(i)?;
    }
    if c != b' ' || i - start > MAX_KEY_LENGTH || has_duplicate_keys(buf, tags) {
        return None;
    }
    Some((i, hash_bytes(&buf[start..name_end], 0)))
}
