//! The field set: `key=value[,key=value…]` and the typed values in it.
//!
//! Exists separately from the key scanner because the field set is where
//! InfluxDB 1.x's grammar is most irregular (quote tracking that depends on
//! `=`/`,` counts, numbers that are only range-checked past a digit count,
//! booleans matched by length first). Every rule below mirrors
//! `scanFields`/`scanNumber`/`scanBoolean` of `models/points.go` (1.8) so a
//! line is accepted here exactly when a node would accept it.

/// Where the field section ended, plus whether it ends in an unpaired
/// backslash (see [`scan_fields`]).
pub(crate) struct FieldSpan {
    pub start: usize,
    pub end: usize,
    pub dangling_backslash: bool,
    /// A `\\` or `"` occurred, so `walk_fields` may split differently.
    pub needs_walk: bool,
}

/// Bytes InfluxDB's `skipWhitespace` skips: space, tab and NUL.
#[inline]
pub(crate) fn skip_whitespace(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | 0) {
        i += 1;
    }
    i
}

/// Bytes that matter to the unquoted field scanner.
static FIELD_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    t[b'"' as usize] = true;
    t[b'=' as usize] = true;
    t[b',' as usize] = true;
    t[b' ' as usize] = true;
    t
};

#[inline]
fn is_numeric(c: u8) -> bool {
    c.is_ascii_digit() || c == b'.'
}

/// Scans the field section starting at `i` (just past the key).
///
/// `dangling_backslash` reports a final `\` that escapes nothing (only
/// possible at the very end of a body). InfluxDB accepts it, but appending a
/// gateway timestamp after it would turn ` <ts>` into an escaped space and
/// silently lose the timestamp, so the caller rejects such untimestamped
/// lines (a documented deviation).
pub(crate) fn scan_fields(buf: &[u8], i: usize, allow_unsigned: bool) -> Result<FieldSpan, String> {
    let len = buf.len();
    let start = skip_whitespace(buf, i);
    let mut i = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    let mut dangling = false;
    let mut needs_walk = false;

    while i < len {
        let c = buf[i];
        if quoted {
            // Inside a string only `\` (skips the next byte) and `"` matter,
            // and the `equals > commas` condition cannot change while quoted,
            // so jump straight to the next one of them.
            match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                None => {
                    i = len;
                    break;
                }
                Some(off) => {
                    i += off;
                    if buf[i] == b'\\' {
                        if i + 1 < len {
                            i += 2;
                        } else {
                            i += 1;
                        }
                    } else {
                        quoted = false;
                        i += 1;
                    }
                    continue;
                }
            }
        }
        match c {
            b'\\' => {
                needs_walk = true;
                if i + 1 < len {
                    i += 2;
                } else {
                    dangling = true;
                    i += 1;
                }
            }
            b'"' => {
                needs_walk = true;
                if equals > commas {
                    quoted = true;
                }
                i += 1;
            }
            b'=' => {
                equals += 1;
                let prev = buf[i - 1];
                let prev2_escaped = i >= 2 && buf[i - 2] == b'\\';
                // "… =1" and "a=1,=2" lack a key, but "a\ =1" / "a\,=1" do not.
                if (prev == b' ' || prev == b',') && !prev2_escaped {
                    return Err("missing field key".into());
                }
                if i + 1 >= len {
                    return Err("missing field value".into());
                }
                let next = buf[i + 1];
                if next == b',' || next == b' ' {
                    return Err("missing field value".into());
                }
                if is_numeric(next) || next == b'-' || next == b'N' || next == b'n' {
                    i = scan_number(buf, i + 1, allow_unsigned)?;
                    continue;
                }
                if next != b'"' {
                    i = scan_boolean(buf, i + 1)?;
                    continue;
                }
                i += 1;
            }
            b',' => {
                commas += 1;
                i += 1;
            }
            b' ' => break,
            _ => {
                i += 1;
                // Plain key bytes change nothing; skip them in bulk.
                while i < len && !FIELD_STOP[buf[i] as usize] {
                    i += 1;
                }
            }
        }
    }

    if quoted {
        return Err("unbalanced quotes".into());
    }
    // Every `key=value` needs its `=`; "a=1,b" has one comma too many.
    if equals == 0 || commas + 1 != equals {
        return Err("invalid field format".into());
    }
    Ok(FieldSpan {
        start,
        end: i,
        dangling_backslash: dangling,
        needs_walk,
    })
}

/// Mirrors `scanNumber`: validates an integer (`i`), unsigned (`u`) or float
/// value starting at `i`; returns the index just past it.
fn scan_number(buf: &[u8], i: usize, allow_unsigned: bool) -> Result<usize, String> {
    if let Some(end) = scan_simple_number(buf, i) {
        return Ok(end);
    }
    scan_number_general(buf, i, allow_unsigned)
}

/// Fast path for the shapes senders actually emit: `-?D+(.D+)?` or `-?D+i`
/// followed by `,`, ` ` or the end, short enough that InfluxDB skips its
/// range check. `None` means "take the general path", never "invalid".
#[inline(always)]
pub(crate) fn scan_simple_number(buf: &[u8], start: usize) -> Option<usize> {
    let len = buf.len();
    let mut i = start;
    if i < len && buf[i] == b'-' {
        i += 1;
    }
    let int_start = i;
    while i < len && buf[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start {
        return None;
    }
    let is_end = |j: usize| j >= len || buf[j] == b',' || buf[j] == b' ';
    if i < len && buf[i] == b'i' {
        // Under 19 characters an integer cannot overflow.
        return (is_end(i + 1) && i - start < 19).then_some(i + 1);
    }
    if i < len && buf[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < len && buf[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac_start {
            return None;
        }
    }
    (is_end(i) && i - start < 25).then_some(i)
}

/// The full `scanNumber` state machine, for everything the fast path does
/// not cover (exponents, unsigned, long or malformed numbers).
fn scan_number_general(buf: &[u8], mut i: usize, allow_unsigned: bool) -> Result<usize, String> {
    const INVALID: &str = "invalid number";
    let len = buf.len();
    let start = i;
    let mut is_int = false;
    let mut is_unsigned = false;

    if i < len && buf[i] == b'-' {
        i += 1;
        if i == len {
            return Err(INVALID.into());
        }
    }
    let mut decimal = false;
    let mut scientific = false;

    while i < len {
        let c = buf[i];
        if c.is_ascii_digit() {
            // Digits never change the state below; the common case.
            i += 1;
            continue;
        }
        if c == b',' || c == b' ' {
            break;
        }
        if i > start && !(is_int || is_unsigned) {
            if c == b'i' {
                is_int = true;
                i += 1;
                continue;
            }
            if c == b'u' {
                is_unsigned = true;
                i += 1;
                continue;
            }
        }
        if c == b'.' {
            if decimal {
                return Err(INVALID.into());
            }
            decimal = true;
        }
        if i > start && (c == b'e' || c == b'E') {
            scientific = true;
            i += 1;
            continue;
        }
        if (c == b'+' || c == b'-') && matches!(buf[i - 1], b'e' | b'E') {
            i += 1;
            continue;
        }
        // NaN and anything else non-numeric ("1a", "42+3") is rejected.
        if !is_numeric(c) {
            return Err(INVALID.into());
        }
        i += 1;
    }

    if (is_int || is_unsigned) && (decimal || scientific) {
        return Err(INVALID.into());
    }
    let mut digits = (i - start) as isize;
    if is_int {
        digits -= 1;
    }
    if decimal {
        digits -= 1;
    }
    if buf[start] == b'-' {
        digits -= 1;
    }
    if digits == 0 {
        return Err(INVALID.into());
    }

    if is_int {
        // "9i10" set the flag but does not end in it.
        if buf[i - 1] != b'i' {
            return Err(INVALID.into());
        }
        let text = &buf[start..i - 1];
        // Fewer than 19 characters always fit an i64; InfluxDB only parses
        // longer ones, and so do we (that is where its error text comes from).
        if text.len() >= 19 && parse_i64(text).is_none() {
            let s = String::from_utf8_lossy(text);
            return Err(format!(
                "unable to parse integer {s}: strconv.ParseInt: parsing \"{s}\": value out of range"
            ));
        }
    } else if is_unsigned {
        if !allow_unsigned {
            // InfluxDB 1.x ships with unsigned support disabled.
            return Err(INVALID.into());
        }
        if buf[i - 1] != b'u' || buf[start] == b'-' {
            return Err(INVALID.into());
        }
        let text = &buf[start..i - 1];
        if text.len() >= 20 && parse_u64(text).is_none() {
            let s = String::from_utf8_lossy(text);
            return Err(format!(
                "unable to parse unsigned {s}: strconv.ParseUint: parsing \"{s}\": value out of range"
            ));
        }
    } else if scientific || i - start >= 25 {
        // Only these can be malformed ("1e") or overflow ("1e400").
        if !float_in_range(&buf[start..i]) {
            return Err("invalid float".into());
        }
    }
    Ok(i)
}

/// Go's `strconv.ParseFloat(s, 64)` succeeds on the characters `scanNumber`
/// lets through exactly when Rust's parser does and the result is finite
/// (Go reports overflow as an error; underflow to zero is fine in both).
fn float_in_range(text: &[u8]) -> bool {
    match std::str::from_utf8(text) {
        Ok(s) => s.parse::<f64>().is_ok_and(f64::is_finite),
        Err(_) => false,
    }
}

/// Parses `-?[0-9]+` (the only shape reaching here) as an i64, `None` on
/// overflow or bad syntax. Leading zeros are fine, as in Go.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses without overflow.
    let mut acc: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg { Some(acc) } else { acc.checked_neg() }
}

fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut acc: u64 = 0;
    for &d in text {
        if !d.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(acc)
}

/// Mirrors `scanBoolean`: `t T true True TRUE f F false False FALSE`.
fn scan_boolean(buf: &[u8], i: usize) -> Result<usize, String> {
    let start = i;
    let first = buf[start];
    if !matches!(first, b't' | b'T' | b'f' | b'F') {
        return Err("invalid boolean".into());
    }
    let mut i = i + 1;
    while i < buf.len() && buf[i] != b',' && buf[i] != b' ' {
        i += 1;
    }
    let word = &buf[start..i];
    let valid = matches!(
        word,
        [_] | b"true" | b"false" | b"TRUE" | b"True" | b"FALSE" | b"False"
    );
    if valid {
        Ok(i)
    } else {
        Err("invalid boolean".into())
    }
}

/// Mirrors 1.8's `walkFields` (`scanTo` for the key, `scanFieldValue` for
/// the value), calling `f` with each key and value until it returns false.
/// This is also how 1.x's field iterator splits a field set for storage.
///
/// `scanFields` and `walkFields` split a field set differently when it holds
/// a backslash or a quote (`f="x"=1,r`, or a key ending in `\`), and 1.8
/// rejects the line when `walkFields` finds a key with no value after it:
/// `invalid value: field-key=<rest>`.
pub(crate) fn walk_fields(
    fields: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), String> {
    let mut buf = fields;
    while !buf.is_empty() {
        // Key: up to the first '=' not preceded by a backslash.
        let mut k = 0;
        while k < buf.len() && !(buf[k] == b'=' && (k == 0 || buf[k - 1] != b'\\')) {
            k += 1;
        }
        // Go: `if i > len(buf)-2` (the '=' is missing or is the last byte).
        if k + 2 > buf.len() {
            return Err(format!(
                "invalid value: field-key={}",
                String::from_utf8_lossy(&buf[..k])
            ));
        }
        let key = &buf[..k];
        buf = &buf[k + 1..];
        // Value: up to the first unquoted comma; only \" and \\ are escapes.
        let mut v = 0;
        let mut quoted = false;
        while v < buf.len() {
            if buf[v] == b'\\' && v + 1 < buf.len() && matches!(buf[v + 1], b'"' | b'\\') {
                v += 2;
                continue;
            }
            if buf[v] == b'"' {
                quoted = !quoted;
            } else if buf[v] == b',' && !quoted {
                break;
            }
            v += 1;
        }
        if !f(key, &buf[..v]) {
            return Ok(());
        }
        buf = buf.get(v + 1..).unwrap_or(&[]);
    }
    Ok(())
}
