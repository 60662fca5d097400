//! The fast path for the common line: plain names, numeric or boolean
//! fields, an explicit timestamp, no escapes and no quotes.
//!
//! Exists because that is what Telegraf and most client libraries send, and
//! the general validator (`line.rs`/`fields.rs`) pays for InfluxDB's
//! irregular corners on every byte: a separate newline search, a byte loop
//! per name, and a digit-by-digit timestamp. Here one forward pass over the
//! line finds each token's end eight bytes at a time (SWAR on `u64`, no
//! `unsafe`), parses timestamps eight digits at a time, and finds the line
//! end as a by-product.
//!
//! The contract is one-sided: [`fast_line`] answers either "valid and
//! timestamped, ending here" or "don't know" (`None`), never "invalid". Any
//! byte or shape it is not sure about (`\`, `"`, `\r`, tabs, NUL, leading
//! whitespace, strings, exponents, long numbers, duplicate tags, a missing
//! timestamp, …) sends the line to the general path, which gives the exact
//! InfluxDB answer. The differential tests in `tests_fast.rs` hold the two
//! paths to agreement.

use super::ScanOptions;
use super::fields::scan_simple_number;
use super::line::{MAX_KEY_LENGTH, has_duplicate_keys, time_in_range};
use super::storage::{FieldType, TypeTracker, hash_bytes};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit of each byte of `x` that equals `c`, exactly (no false hits).
#[inline(always)]
fn eq_mask(x: u64, c: u8) -> u64 {
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
    while let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let x = u64::from_le_bytes(word);
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

/// The value of eight ASCII digits (first digit in the lowest byte), or
/// `None` if any byte is not a digit.
#[inline(always)]
fn eight_digits(x: u64) -> Option<u64> {
    let all_digits = (x & (ONES * 0xF0)) == ONES * 0x30
        && (x.wrapping_add(ONES * 0x06) & (ONES * 0xF0)) == ONES * 0x30;
    if !all_digits {
        return None;
    }
    // Pairs, then quads, then all eight (Lemire's SWAR digit parsing).
    let v = x - ONES * 0x30;
    let v = (v.wrapping_mul(10 * 256 + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100 * 65_536 + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(v.wrapping_mul(10_000 * (1 << 32) + 1) >> 32)
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
    let mut acc: u64 = 0;
    // At most two words: 19 digits is the longest accepted here.
    for _ in 0..2 {
        let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            break;
        };
        let Some(v) = eight_digits(u64::from_le_bytes(word)) else {
            break;
        };
        acc = acc * 100_000_000 + v;
        i += 8;
    }
    while let Some(&c) = buf.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if i - start == 19 {
            return None;
        }
        acc = acc * 10 + u64::from(c - b'0');
        i += 1;
    }
    if i == start || !matches!(buf.get(i), None | Some(b'\n')) {
        return None;
    }
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

/// Tries the common line shape at `start` (which must be where the line's
/// block starts). Returns the index of the `\n` ending the line, or
/// `buf.len()` if the body ends without one, when the line is valid and
/// timestamped; `None` when the general path must decide.
///
/// `tags` is scratch space, as for `parse_point`; indices are into `buf`.
#[inline]
pub(crate) fn fast_line(
    buf: &[u8],
    start: usize,
    opts: &ScanOptions,
    tags: &mut Vec<(usize, usize)>,
    types: &mut TypeTracker,
) -> Option<usize> {
    if buf.get(start) == Some(&b'#') {
        return None;
    }
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
    if c != b' ' {
        return None;
    }
    let key_end = i;
    if key_end - start > MAX_KEY_LENGTH || has_duplicate_keys(buf, tags) {
        return None;
    }

    // Fields: `key=number` or `key=bool`, comma-separated; their types go to
    // `types` as they pass (a line that then fails leaves at most a false
    // suspicion, which the exact check clears).
    let m = hash_bytes(&buf[start..name_end], 0);
    let fields_start = i + 1;
    i = fields_start;
    types.begin_line();
    let mut idx = 0;
    loop {
        let key = i;
        i = next_stop(buf, key);
        if i == key || buf.get(i) != Some(&b'=') || &buf[key..i] == b"time" {
            return None;
        }
        let key_end = i;
        let value = i + 1;
        let ty;
        (i, ty) = match *buf.get(value)? {
            b'0'..=b'9' | b'-' => {
                let end = scan_simple_number(buf, value)?;
                let ty = if buf[end - 1] == b'i' {
                    FieldType::Integer
                } else {
                    FieldType::Float
                };
                (end, ty)
            }
            b't' | b'T' | b'f' | b'F' => (boolean(buf, value)?, FieldType::Boolean),
            _ => return None,
        };
        types.add_at(buf, m, idx, (key, key_end), ty);
        idx += 1;
        match buf.get(i) {
            Some(b',') => i += 1,
            Some(b' ') => break,
            _ => return None,
        }
    }
    // The longest field key could break the series-key limit; let the
    // general path measure it exactly.
    if key_end - start + 4 + (i - fields_start) > MAX_KEY_LENGTH {
        return None;
    }
    let end = timestamp(buf, i + 1, opts)?;
    types.end_line(m);
    Some(end)
}
