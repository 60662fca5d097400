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
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos() as i64)
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

/// RFC 3339 for a report (nanosecond precision when needed).
pub fn fmt_ns(ns: i64) -> String {
    if ns <= 0 {
        return ns.to_string();
    }
    let t = UNIX_EPOCH + Duration::from_nanos(ns as u64);
    if ns % 1_000_000_000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_nanos(t).to_string()
    }
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
        assert_eq!(
            split_newest_first(5, 25, 10),
            vec![(20, 25), (10, 20), (5, 10)]
        );
        assert_eq!(split_newest_first(0, 20, 10), vec![(10, 20), (0, 10)]);
    }
}
