//! Validation of one point: measurement, tag set, field set, timestamp.
//!
//! Exists to answer, for one line, "would an InfluxDB 1.x node accept this,
//! and if not, with which reason text?" without building the point. It
//! mirrors `parsePoint`/`scanKey`/`scanTime` of `models/points.go` (1.8),
//! including their escape rule (a byte preceded by a backslash is escaped,
//! whatever escapes the backslash) and their check order, since the first
//! failing check decides the reason a client sees.

use super::fields::{parse_i64, scan_fields, skip_whitespace, walk_fields};
use super::{Precision, ScanOptions};

/// InfluxDB's `MaxKeyLength`: the series key (measurement + tags) limit.
pub(crate) const MAX_KEY_LENGTH: usize = 65535;
/// `MinNanoTime`/`MaxNanoTime` of InfluxDB's `models/time.go`.
const MIN_NANO_TIME: i64 = i64::MIN + 2;
const MAX_NANO_TIME: i64 = i64::MAX - 1;

/// Outcome of a valid line.
pub(crate) struct Point {
    /// The line carries its own timestamp.
    pub has_timestamp: bool,
    /// End of the measurement name.
    pub name_end: usize,
    /// The field set's range in the line.
    pub fields: (usize, usize),
}

/// Validates one line (leading whitespace and terminator already removed).
/// `tags` is scratch space reused across lines so the hot path does not
/// allocate; its contents on return are meaningless.
pub(crate) fn parse_point(
    buf: &[u8],
    opts: &ScanOptions,
    tags: &mut Vec<(usize, usize)>,
) -> Result<Point, String> {
    let (name_end, key_end) = scan_key(buf, tags)?;
    if key_end > MAX_KEY_LENGTH {
        return Err(format!(
            "max key length exceeded: {key_end} > {MAX_KEY_LENGTH}"
        ));
    }

    let fields = scan_fields(buf, key_end, opts.allow_unsigned)?;
    if fields.start == fields.end {
        return Err("missing fields".into());
    }
    // Series key + "#!~#" + field key must also fit. Walking the fields is
    // only needed when that sum could exceed the limit or when the field set
    // holds quotes/backslashes (see `walk_fields`).
    let field_bytes = &buf[fields.start..fields.end];
    if fields.needs_walk || key_end + 4 + field_bytes.len() > MAX_KEY_LENGTH {
        let mut too_long = None;
        walk_fields(field_bytes, |k, _| {
            let size = key_end + 4 + k.len();
            if size > MAX_KEY_LENGTH {
                too_long = Some(size);
                return false;
            }
            true
        })?;
        if let Some(size) = too_long {
            return Err(format!(
                "max key length exceeded: {size} > {MAX_KEY_LENGTH}"
            ));
        }
    }

    let has_timestamp = scan_time(buf, fields.end, opts)?;
    if !has_timestamp && fields.dangling_backslash {
        // Deliberate deviation, see `scan_fields`.
        return Err("invalid field format".into());
    }
    Ok(Point {
        has_timestamp,
        name_end,
        fields: (fields.start, fields.end),
    })
}

/// Bytes that can end a name token: `,` ` ` `=`.
static NAME_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b' ' as usize] = true;
    t[b'=' as usize] = true;
    t
};

/// Advances from `i` to the next `,`, ` ` or `=` (or the end). Whether that
/// byte is escaped is the caller's question: only those three bytes ever
/// change the key scanner's state.
#[inline(always)]
fn skip_plain(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && !NAME_STOP[buf[i] as usize] {
        i += 1;
    }
    i
}

/// Mirrors `scanKey`: returns the end of the measurement name and the index
/// of the space ending the series key. `tags` ends up holding the tag keys.
fn scan_key(buf: &[u8], tags: &mut Vec<(usize, usize)>) -> Result<(usize, usize), String> {
    tags.clear();
    let len = buf.len();
    if len == 0 || buf[0] == b',' {
        return Err("missing measurement".into());
    }

    // Measurement: ends at an unescaped ',' (tags follow) or ' ' (fields).
    let mut i = 0;
    loop {
        i = skip_plain(buf, i + 1);
        if i >= len {
            return Err("missing fields".into());
        }
        if buf[i - 1] == b'\\' {
            continue;
        }
        match buf[i] {
            b',' => break,
            b' ' => return Ok((i, i)),
            _ => {}
        }
    }

    let name_end = i;
    i += 1;
    loop {
        // Tag key: non-empty, ends at an unescaped '='.
        let key_start = i;
        if i >= len || matches!(buf[i], b' ' | b',' | b'=') {
            return Err("missing tag key".into());
        }
        loop {
            i = skip_plain(buf, i + 1);
            if i >= len {
                return Err("missing tag value".into());
            }
            let c = buf[i];
            if matches!(c, b' ' | b',' | b'=') && buf[i - 1] != b'\\' {
                if c == b'=' {
                    break;
                }
                return Err("missing tag value".into());
            }
        }
        tags.push((key_start, i));
        i += 1;

        // Tag value: non-empty, ends at an unescaped ',' or ' '.
        if i >= len || buf[i] == b',' || buf[i] == b' ' {
            return Err("missing tag value".into());
        }
        let end_of_tags = loop {
            i = skip_plain(buf, i + 1);
            if i >= len {
                return Err("missing fields".into());
            }
            let c = buf[i];
            if matches!(c, b' ' | b',' | b'=') && buf[i - 1] != b'\\' {
                match c {
                    b'=' => return Err("invalid tag format".into()),
                    b',' => break false,
                    _ => break true,
                }
            }
        };
        if end_of_tags {
            break;
        }
        i += 1;
    }

    if has_duplicate_keys(buf, tags) {
        return Err("duplicate tags".into());
    }
    Ok((name_end, i))
}

/// InfluxDB checks adjacent keys when the tags arrive sorted and sorts them
/// otherwise; either way any two equal raw (still escaped) keys are a
/// "duplicate tags" error. Senders almost always sort, so the common case is
/// one linear pass.
pub(crate) fn has_duplicate_keys(buf: &[u8], tags: &mut [(usize, usize)]) -> bool {
    let key = |t: (usize, usize)| &buf[t.0..t.1];
    let mut sorted = true;
    for w in tags.windows(2) {
        match cmp_keys(key(w[0]), key(w[1])) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Greater => {
                sorted = false;
                break;
            }
        }
    }
    if sorted {
        return false;
    }
    if tags.len() <= 16 {
        // A handful of pairwise checks beats sorting for typical tag counts.
        for (i, a) in tags.iter().enumerate() {
            for b in &tags[i + 1..] {
                if key(*a) == key(*b) {
                    return true;
                }
            }
        }
        return false;
    }
    // Sorting the scratch ranges in place needs no allocation.
    tags.sort_unstable_by(|a, b| cmp_keys(key(*a), key(*b)));
    tags.windows(2).any(|w| key(w[0]) == key(w[1]))
}

/// Byte-wise order; the first byte usually decides, which avoids a
/// `memcmp` call per pair.
#[inline]
fn cmp_keys(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Mirrors `scanTime` plus the timestamp checks of `parsePoint`. Returns
/// whether a timestamp is present.
fn scan_time(buf: &[u8], i: usize, opts: &ScanOptions) -> Result<bool, String> {
    let len = buf.len();
    let start = skip_whitespace(buf, i);
    let mut i = start;
    if i < len && buf[i] == b'-' {
        i += 1;
    }
    // Validate and accumulate in one pass; 19 digits fit a u64 unchecked.
    let digits_start = i;
    let mut acc: u64 = 0;
    while i < len {
        let c = buf[i];
        if c == b'\n' || c == b' ' {
            break;
        }
        if !c.is_ascii_digit() {
            return Err("bad timestamp".into());
        }
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    if i == start {
        if start < len {
            // Only a newline can stop the scan here (the block holds one
            // that `scanLine` saw as quoted). InfluxDB ignores what follows
            // it, but a stamp appended at the end of the block would land
            // after it and be ignored too. Deliberate deviation: reject.
            return Err("point is invalid".into());
        }
        return Ok(false);
    }

    let text = &buf[start..i];
    let negative = digits_start > start;
    let fast = match i - digits_start {
        1..=19 if negative => (acc <= 1 << 63).then(|| (acc as i64).wrapping_neg()),
        1..=19 => i64::try_from(acc).ok(),
        // "-" alone, or 20+ characters (leading zeros): the checked parser.
        _ => None,
    };
    let Some(ts) = fast.or_else(|| parse_i64(text)) else {
        // Only "-" alone is a syntax error; anything else overflowed.
        let s = String::from_utf8_lossy(text);
        let why = if text == b"-" {
            "invalid syntax"
        } else {
            "value out of range"
        };
        return Err(format!("strconv.ParseInt: parsing \"{s}\": {why}"));
    };
    if !time_in_range(ts, opts) {
        return Err(format!(
            "time outside range {MIN_NANO_TIME} - {MAX_NANO_TIME}"
        ));
    }
    // Only spaces may follow the timestamp.
    if buf[i..].iter().any(|&c| c != b' ') {
        return Err("point is invalid".into());
    }
    Ok(true)
}

/// Whether a timestamp of `n` digits (1 to 19, after any sign) whose first
/// digit is `first` is within InfluxDB's range whatever its other digits,
/// so its value need not be computed. True for nanoseconds below 9 * 10^18
/// in size (2^63 - 2 > 9.2 * 10^18): every timestamp of this century has
/// 19 digits and starts with 1.
#[inline(always)]
pub(crate) fn surely_in_range(n: usize, first: u8, opts: &ScanOptions) -> bool {
    opts.precision == Precision::Nanosecond && (n < 19 || first < b'9')
}

/// Whether `ts`, in the request's precision, lies in InfluxDB's time range.
#[inline]
pub(crate) fn time_in_range(ts: i64, opts: &ScanOptions) -> bool {
    ts.checked_mul(opts.precision.nanos_per_unit())
        .is_some_and(|ns| (MIN_NANO_TIME..=MAX_NANO_TIME).contains(&ns))
}
