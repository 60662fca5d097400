//! The hot line of the fast path: numeric fields exactly as their
//! measurement's last layout has them, then a timestamp, checked from
//! byte-class masks of 64 bytes at a time.
//!
//! Exists because the field-by-field walk in `fast.rs` is a chain of
//! dependent loads: each value's end is found by loading the bytes after
//! the previous one, so a line costs the sum of their latencies and the
//! CPU has little else to do meanwhile. Here the bytes after the series
//! key are classified up front, 64 at a time (four independent 16-byte
//! loads: possible value ends and non-digits, see `block.rs`), and the walk
//! from value to value is bit arithmetic on those masks. The checks on the
//! bytes themselves (a key equal to the layout's, a `.` or `i` where the
//! mask allows one) load bytes too, but nothing waits on them, so they
//! overlap with the walk and with the next line.
//!
//! Same one-sided contract as the rest of the fast path: [`Walk::Line`]
//! only for a line that is valid (keys equal to ones that passed in this
//! body, values `D+`, `D+.D+` or `D+i` within `scan_simple_number`'s
//! limits, a nanosecond timestamp of at most 19 digits that is certainly in
//! range). Otherwise [`Walk::Fields`] when only the timestamp needs the
//! exact check, or how many fields matched, so that `fast.rs` goes on the
//! long way from there without walking them again. Booleans, signs,
//! exponents, strings and fields the layout does not have all go that way.

use super::ScanOptions;
use super::block::Block;
use super::line::surely_in_range;
use super::memo::Field;
use super::storage::FieldType;

/// Possible value ends and non-digits among the 64 bytes at `at`.
///
/// A value ends at its `,` or ` `; `delims` marks every byte up to `-`
/// (0x2D), which takes one compare instead of two. A false end (`-`, `+`,
/// `"`, a control byte, …) only cuts a value short: the byte found there is
/// then not the `,` or ` ` that [`field`] checks for, and the line goes the
/// long way.
#[derive(Clone, Copy)]
struct Window {
    at: usize,
    delims: u64,
    non_digits: u64,
}

impl Window {
    /// The masks of `buf[at..at + 64]`, if in bounds.
    #[inline(always)]
    fn load(buf: &[u8], at: usize) -> Option<Window> {
        let mut delims = 0;
        let mut digits = 0;
        for k in 0..4 {
            let b = Block::at(buf, at + 16 * k)?;
            delims |= u64::from(b.at_most(b'-')) << (16 * k);
            digits |= u64::from(b.digits()) << (16 * k);
        }
        Some(Window {
            at,
            delims,
            non_digits: !digits,
        })
    }

    /// `mask` of the bytes from `from` on, shifted so that bit 0 is `from`,
    /// and `from`'s offset in the window; the window is reloaded at `from`
    /// when this one has no set bit at or after it. `None` when even the
    /// reloaded one has none, or does not fit in `buf`.
    #[inline(always)]
    fn seek(
        &mut self,
        buf: &[u8],
        from: usize,
        mask: impl Fn(&Window) -> u64,
    ) -> Option<(u64, usize)> {
        let r = from - self.at;
        let ahead = if r < 64 { mask(self) >> r } else { 0 };
        if ahead != 0 {
            return Some((ahead, r));
        }
        *self = Window::load(buf, from)?;
        let ahead = mask(self);
        (ahead != 0).then_some((ahead, 0))
    }
}

/// How far [`walk`] got along a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Every field as the layout has it, then a valid timestamp: the
    /// indices of the space before it and of the `\n` ending the line.
    Line { space: usize, end: usize },
    /// Every field as the layout has it, then a space at `space`; the
    /// timestamp after it is for the exact check.
    Fields { space: usize },
    /// The first `matched` fields as the layout has them, each with its
    /// comma; the next one, at `at`, is for the long way.
    Partial { matched: usize, at: usize },
}

/// Walks the fields and timestamp at `fields_start` (just past the series
/// key's space) along `layout`: each field must have the layout's key and
/// type, with a plain number as its value (`D+`, `D+.D+` or `D+i`, within
/// `scan_simple_number`'s limits); the timestamp is confirmed only when it
/// is in nanoseconds and certainly in range. Near the end of the body,
/// where a window does not fit, nothing is matched.
#[inline(always)]
pub(crate) fn walk(buf: &[u8], fields_start: usize, layout: &[Field], opts: &ScanOptions) -> Walk {
    let mut at = fields_start;
    let Some(mut w) = Window::load(buf, at) else {
        return Walk::Partial { matched: 0, at };
    };
    let Some((last, rest)) = layout.split_last() else {
        return Walk::Partial { matched: 0, at };
    };
    for (k, f) in rest.iter().enumerate() {
        match field(buf, &mut w, at, f, b',') {
            Some(next) => at = next,
            None => return Walk::Partial { matched: k, at },
        }
    }
    let Some(ts) = field(buf, &mut w, at, last, b' ') else {
        return Walk::Partial {
            matched: rest.len(),
            at,
        };
    };
    let space = ts - 1;
    // The timestamp: digits up to the first non-digit, which must be the
    // line's `\n`, and certainly in range; anything else is left to the
    // exact check.
    let Some((ahead, _)) = w.seek(buf, ts, |w| w.non_digits) else {
        return Walk::Fields { space };
    };
    let digits = ahead.trailing_zeros() as usize;
    let end = ts + digits;
    let in_range = (1..=19).contains(&digits)
        && buf
            .get(ts)
            .is_some_and(|&c| surely_in_range(digits, c, opts));
    if in_range && buf.get(end) == Some(&b'\n') {
        Walk::Line { space, end }
    } else {
        Walk::Fields { space }
    }
}

/// One field at `i` as `f` has it, followed by `delim`; returns the index
/// just past that delimiter.
#[inline(always)]
fn field(buf: &[u8], w: &mut Window, i: usize, f: &Field, delim: u8) -> Option<usize> {
    if !f.matches(buf, i) {
        return None;
    }
    let v = i + f.key_len();
    let (ahead, r) = w.seek(buf, v, |w| w.delims)?;
    let len = ahead.trailing_zeros() as usize;
    // Non-digits within the value: the bits below `ahead`'s lowest.
    let nd = (w.non_digits >> r) & (ahead - 1) & !ahead;
    let ok = match f.ty {
        // `D+` or `D+.D+`, as `scan_simple_number` takes them.
        FieldType::Float => {
            (1..25).contains(&len)
                && (nd == 0
                    || (nd & (nd - 1) == 0
                        && nd & 1 == 0
                        && nd >> (len - 1) == 0
                        && buf.get(v + nd.trailing_zeros() as usize) == Some(&b'.')))
        }
        // `D+i`, under 19 characters so that it cannot overflow.
        FieldType::Integer => {
            (2..19).contains(&len) && nd == 1 << (len - 1) && buf.get(v + len - 1) == Some(&b'i')
        }
        _ => false,
    };
    let end = v + len;
    (ok && buf.get(end) == Some(&delim)).then_some(end + 1)
}
