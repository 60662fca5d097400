//! One raw key and its path, read through typed helpers.
//!
//! Why: every error names the key it is about (`queue.max_bytes: ...`). When
//! the path string and the field lookup are written separately, a copy-paste
//! slip reports a problem under the wrong key. [`key!`](super::key) builds a
//! [`Key`] from the field expression itself, so each key is named once, and
//! the helpers here apply its default, parse units and check its range.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::Problem;
use crate::config::Choice;
use crate::config::raw::{RawDuration, RawSize};

/// A raw value (absent when the file leaves the key out) and its path.
pub struct Key<T> {
    pub path: String,
    pub raw: Option<T>,
}

impl<T> Key<T> {
    pub fn new(path: impl Into<String>, raw: Option<T>) -> Key<T> {
        Key {
            path: path.into(),
            raw,
        }
    }

    /// A problem with this key.
    pub fn problem(&self, msg: impl Into<String>) -> Problem {
        (self.path.clone(), msg.into())
    }

    /// The value, or "is required" when the file leaves it out.
    pub fn required(self) -> Result<T, Problem> {
        let problem = self.problem("is required");
        self.raw.ok_or(problem)
    }
}

impl Key<i64> {
    pub fn int(self, default: i64, range: RangeInclusive<i64>) -> Result<i64, Problem> {
        let v = self.raw.unwrap_or(default);
        in_range(&self.path, v, range)
    }
}

impl Key<RawDuration> {
    /// A duration in seconds (`1.5`) or humantime text (`"100ms"`, `"7d"`).
    pub fn duration(
        self,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, Problem> {
        let v = match self.raw {
            None => default,
            Some(RawDuration::Seconds(s)) => {
                if !s.is_finite() || s < 0.0 {
                    return Err(problem(
                        &self.path,
                        format!("must be a non-negative number of seconds, got {s}"),
                    ));
                }
                Duration::try_from_secs_f64(s)
                    .map_err(|_| problem(&self.path, format!("{s} seconds is too long")))?
            }
            Some(RawDuration::Text(t)) => humantime::parse_duration(t.trim()).map_err(|e| {
                problem(
                    &self.path,
                    format!(
                        "invalid duration {t:?}: {e} (use e.g. 1.5, \"100ms\", \"30s\", \"7d\")"
                    ),
                )
            })?,
        };
        if !range.contains(&v) {
            let f = humantime::format_duration;
            return Err(problem(
                &self.path,
                format!(
                    "{} is out of range ({}..={})",
                    f(v),
                    f(*range.start()),
                    f(*range.end())
                ),
            ));
        }
        Ok(v)
    }
}

impl Key<RawSize> {
    /// A byte count (`1048576`) or a size with a unit (`"1MiB"`, `"25MB"`).
    pub fn size(self, default: u64, range: RangeInclusive<u64>) -> Result<u64, Problem> {
        let v = match self.raw {
            None => default,
            Some(RawSize::Bytes(b)) => b,
            Some(RawSize::Text(t)) => parse_size(&t).ok_or_else(|| {
                problem(
                    &self.path,
                    format!("invalid size {t:?} (use e.g. 1048576, \"1MiB\", \"10GiB\")"),
                )
            })?,
        };
        in_range(&self.path, v, range)
    }
}

impl Key<String> {
    /// One of `T`'s names; the error lists them all.
    pub fn choice<T: Choice>(self, default: T) -> Result<T, Problem> {
        let Some(name) = self.raw else {
            return Ok(default);
        };
        T::parse(&name).ok_or_else(|| {
            let names: Vec<&str> = T::NAMES.iter().map(|(n, _)| *n).collect();
            let list = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            };
            problem(&self.path, format!("invalid value {name:?} ({list})"))
        })
    }
}

fn problem(path: &str, msg: String) -> Problem {
    (path.to_string(), msg)
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    path: &str,
    v: T,
    range: RangeInclusive<T>,
) -> Result<T, Problem> {
    if !range.contains(&v) {
        return Err(problem(
            path,
            format!("{v} is out of range ({}..={})", range.start(), range.end()),
        ));
    }
    Ok(v)
}

/// Parses `123`, `64KB`, `1MiB`, `10 GiB` (KB/MB/GB are decimal, KiB/MiB/GiB binary).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    let v = num * mult as f64;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("10 GiB"), Some(10 << 30));
        assert_eq!(parse_size("25MB"), Some(25_000_000));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
