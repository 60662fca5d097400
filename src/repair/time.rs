//! Times and durations as InfluxDB writes them and as the commands take them.
//!
//! InfluxDB reports durations in Go's format (`168h0m0s`) and times as
//! RFC 3339; InfluxQL wants duration literals (`604800s`) and time bounds in
//! nanoseconds. Windows are half-open `[start, end)` in nanoseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses Go's `time.Duration` text (`168h0m0s`, `1h30m`, `0s`, `500ms`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" || s == "0s" {
        return Some(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let num: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ns: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += (num * unit_ns) as u128;
    }
    Some(Duration::from_nanos(u64::try_from(total).ok()?))
}

/// An InfluxQL duration literal: `INF` for zero, else whole seconds (or
/// nanoseconds when not whole).
pub fn influxql_duration(d: Duration, zero_is_inf: bool) -> String {
    if d.is_zero() && zero_is_inf {
        "INF".into()
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}u", d.as_micros())
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Parses an RFC 3339 time into nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    // `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM]`, no zone meaning UTC.
    // Hand-written because InfluxDB's range starts in 1677: shard groups
    // and points before 1970 (`SHOW SHARDS` says `1969-12-29T00:00:00Z` for
    // the group holding timestamp 0) must parse, and `SystemTime`-based
    // parsers stop at the epoch.
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let t = b.get(from..to)?;
        t.iter()
            .all(u8::is_ascii_digit)
            .then(|| t.iter().fold(0i64, |a, &c| a * 10 + i64::from(c - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        frac = num(start, i)? * 10i64.pow(9 - n as u32);
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    // In i128: InfluxDB's earliest second times 1e9 is below i64::MIN until
    // its fraction is added.
    i64::try_from(i128::from(secs) * 1_000_000_000 + i128::from(frac)).ok()
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian), negative
/// before it (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `--since`/`--until` value: RFC 3339, an integer in nanoseconds, `now`,
/// or a duration meaning that long ago (`7d`, `90m`).
pub fn parse_bound(s: &str) -> Result<i64, String> {
    if s == "now" {
        return Ok(now_ns());
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now_ns() - d.as_nanos() as i64);
    }
    Err(format!(
        "{s:?} is not a time (RFC 3339, nanoseconds, `now`, or a duration ago like `7d`)"
    ))
}

/// RFC 3339 for a report (nanosecond precision when needed), before 1970
/// too (InfluxDB's range starts in 1677).
pub fn fmt_ns(ns: i64) -> String {
    let (secs, nanos) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, se) = (sod / 3600, sod % 3600 / 60, sod % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{nanos:09}Z")
    }
}

/// The civil date of a day count from 1970-01-01 (the inverse of
/// [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Splits `[start, end)` at multiples of `step` (aligned to the epoch, as
/// `GROUP BY time()` is), newest window first.
pub fn split_newest_first(start: i64, end: i64, step: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    if step <= 0 || start >= end {
        return out;
    }
    let mut hi = end;
    while hi > start {
        let aligned = (hi - 1).div_euclid(step) * step;
        let lo = aligned.max(start);
        out.push((lo, hi));
        hi = lo;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("168h0m0s"),
            Some(Duration::from_secs(604800))
        );
        assert_eq!(parse_go_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(influxql_duration(Duration::ZERO, true), "INF");
        assert_eq!(influxql_duration(Duration::from_secs(3600), true), "3600s");
    }

    #[test]
    fn bounds_and_windows() {
        assert_eq!(parse_bound("1000").unwrap(), 1000);
        assert_eq!(
            parse_bound("2020-01-01T00:00:00Z").unwrap(),
            1_577_836_800_000_000_000
        );
        assert!(parse_bound("yesterday-ish").is_err());
        // Before the epoch: InfluxDB's shard group holding timestamp 0.
        assert_eq!(
            parse_rfc3339("1969-12-29T00:00:00Z"),
            Some(-3 * 86_400 * 1_000_000_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000001Z"), Some(1));
        // InfluxDB's earliest time.
        assert_eq!(
            parse_rfc3339("1677-09-21T00:12:43.145224194Z"),
            Some(-9_223_372_036_854_775_806)
        );
        assert_eq!(
            parse_rfc3339("2020-01-01T01:30:00+01:30"),
            Some(1_577_836_800_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2020-01-01 00:00:00.5"),
            Some(1_577_836_800_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
        for ns in [
            0,
            1,
            -1,
            -3 * 86_400 * 1_000_000_000,
            -9_223_372_036_854_775_806,
            1_709_164_800_000_000_000,
            1_577_836_800_500_000_000,
        ] {
            assert_eq!(parse_rfc3339(&fmt_ns(ns)), Some(ns), "{}", fmt_ns(ns));
        }
        assert_eq!(fmt_ns(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(fmt_ns(1_577_836_800_000_000_000), "2020-01-01T00:00:00Z");
        for bad in [
            "2023-02-29T00:00:00Z",
            "2020-13-01T00:00:00Z",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:00:00.Z",
            "2020-01-01T00:00:00Zjunk",
            "2020-01-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(
            split_newest_first(5, 25, 10),
            vec![(20, 25), (10, 20), (5, 10)]
        );
        assert_eq!(split_newest_first(0, 20, 10), vec![(10, 20), (0, 10)]);
    }
}
