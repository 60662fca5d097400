//! Turns a [`RawConfig`] into the immutable [`Config`]: applies defaults,
//! parses durations and sizes, and rejects anything out of range with the
//! path of the offending key.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawDuration, RawGzip, RawSize};
use super::{Config, Consistency, FsyncMode, NodeConfig, QueueConfig, WireGzip};

/// One validation failure: the key's path (`addresses[1].url`) and what is wrong.
pub type Problem = (String, String);

fn problem(path: impl Into<String>, msg: impl Into<String>) -> Problem {
    (path.into(), msg.into())
}

pub fn duration(
    path: &str,
    raw: Option<RawDuration>,
    default: Duration,
) -> Result<Duration, Problem> {
    match raw {
        None => Ok(default),
        Some(RawDuration::Seconds(s)) => {
            if !s.is_finite() || s < 0.0 {
                return Err(problem(
                    path,
                    format!("must be a non-negative number of seconds, got {s}"),
                ));
            }
            Ok(Duration::from_secs_f64(s))
        }
        Some(RawDuration::Text(t)) => humantime::parse_duration(t.trim()).map_err(|e| {
            problem(
                path,
                format!("invalid duration {t:?}: {e} (use e.g. 1.5, \"100ms\", \"30s\", \"7d\")"),
            )
        }),
    }
}

pub fn size(path: &str, raw: Option<RawSize>, default: u64) -> Result<u64, Problem> {
    match raw {
        None => Ok(default),
        Some(RawSize::Bytes(b)) => Ok(b),
        Some(RawSize::Text(t)) => parse_size(&t).ok_or_else(|| {
            problem(
                path,
                format!("invalid size {t:?} (use e.g. 1048576, \"1MiB\", \"10GiB\")"),
            )
        }),
    }
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

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    path: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, Problem> {
    if v < lo || v > hi {
        return Err(problem(path, format!("{v} is out of range ({lo}..={hi})")));
    }
    Ok(v)
}

fn dur_range(path: &str, v: Duration, lo: Duration, hi: Duration) -> Result<Duration, Problem> {
    if v < lo || v > hi {
        return Err(problem(
            path,
            format!(
                "{} is out of range ({}..={})",
                humantime::format_duration(v),
                humantime::format_duration(lo),
                humantime::format_duration(hi)
            ),
        ));
    }
    Ok(v)
}

/// Validates a node URL: http(s), a host, no query or fragment. A trailing
/// slash is dropped so path joins are uniform.
fn node_url(path: &str, raw: &str) -> Result<url::Url, Problem> {
    let bad = || problem(path, format!("invalid URL {raw:?}"));
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(problem(
            path,
            format!("invalid URL {raw:?}: scheme must be http or https"),
        ));
    }
    if url.scheme() == "https" {
        // Refuse rather than fail every request at runtime: this build's
        // node client has no TLS connector yet.
        return Err(problem(
            path,
            format!(
                "invalid URL {raw:?}: https node URLs are not supported yet (use http, or a TLS-terminating proxy)"
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem(
            path,
            format!("invalid URL {raw:?}: must not have a query or fragment"),
        ));
    }
    let mut url = url;
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
    Ok(url)
}

pub fn validate(
    raw: RawConfig,
    source: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problem> {
    let addresses = raw.addresses.unwrap_or_default();
    if addresses.is_empty() {
        return Err(problem("addresses", "at least one address is required"));
    }
    let mut nodes = Vec::with_capacity(addresses.len());
    let mut seen_urls = HashSet::new();
    let mut seen_names = HashSet::new();
    for (i, a) in addresses.into_iter().enumerate() {
        let p = format!("addresses[{i}]");
        let raw_url = a
            .url
            .ok_or_else(|| problem(format!("{p}.url"), "is required"))?;
        let url = node_url(&format!("{p}.url"), &raw_url)?;
        if !seen_urls.insert(url.as_str().to_string()) {
            return Err(problem(
                format!("{p}.url"),
                format!("duplicate address {raw_url:?}"),
            ));
        }
        let default_name = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(80)
        );
        let name = a.name.unwrap_or(default_name);
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err(problem(
                format!("{p}.name"),
                format!("invalid node name {name:?} (1-128 characters, no '/')"),
            ));
        }
        if !seen_names.insert(name.clone()) {
            return Err(problem(
                format!("{p}.name"),
                format!("duplicate node name {name:?}"),
            ));
        }
        let nonempty =
            |s: Option<super::raw::RawString>| s.map(|s| s.into_string()).filter(|s| !s.is_empty());
        let username = nonempty(a.username);
        let password = nonempty(a.password);
        if password.is_some() && username.is_none() {
            return Err(problem(format!("{p}.password"), "is set without username"));
        }
        let gzip = match a.gzip {
            None => WireGzip::Auto,
            Some(RawGzip::Bool(true)) => WireGzip::Always,
            Some(RawGzip::Bool(false)) => WireGzip::Never,
            Some(RawGzip::Word(w)) if w == "auto" => WireGzip::Auto,
            Some(RawGzip::Word(w)) => {
                return Err(problem(
                    format!("{p}.gzip"),
                    format!("invalid value {w:?}: use true, false or auto"),
                ));
            }
        };
        nodes.push(NodeConfig {
            name,
            url,
            token: nonempty(a.token),
            username,
            password,
            gzip,
        });
    }

    let port = in_range("port", raw.port.unwrap_or(8080), 0, 65535)? as u16;
    let bind_address = raw.bind_address.unwrap_or_else(|| "0.0.0.0".into());
    if bind_address.parse::<std::net::IpAddr>().is_err() && bind_address != "localhost" {
        return Err(problem(
            "bind_address",
            format!("invalid IP address {bind_address:?}"),
        ));
    }
    let retry_count = in_range("retry_count", raw.retry_count.unwrap_or(120), 0, 1_000_000)? as u32;
    let retry_delay = dur_range(
        "retry_delay",
        duration("retry_delay", raw.retry_delay, Duration::from_secs(1))?,
        Duration::ZERO,
        Duration::from_secs(3600),
    )?;
    let query_timeout = dur_range(
        "query_timeout",
        duration("query_timeout", raw.query_timeout, Duration::from_secs(5))?,
        Duration::from_millis(10),
        Duration::from_secs(24 * 3600),
    )?;
    let channel_size = in_range(
        "channel_size",
        raw.channel_size.unwrap_or(1000),
        1,
        10_000_000,
    )? as usize;

    // The original falls back to AUTH_TOKEN when the file leaves it empty.
    let auth_token = raw
        .auth_token
        .map(|t| t.into_string())
        .filter(|t| !t.is_empty())
        .or_else(|| env("AUTH_TOKEN").filter(|t| !t.is_empty()));
    let allow_anonymous = raw.allow_anonymous.unwrap_or(false);
    if auth_token.is_none()
        && !allow_anonymous
        && nodes
            .iter()
            .any(|n| n.token.is_some() || n.password.is_some())
    {
        return Err(problem(
            "auth_token",
            "node credentials are configured but the gateway has no auth_token (or AUTH_TOKEN): \
             anyone reaching the gateway would borrow them; set auth_token, or allow_anonymous: true",
        ));
    }

    let write_consistency = match raw.write_consistency.as_deref().unwrap_or("any") {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        other => {
            return Err(problem(
                "write_consistency",
                format!("invalid value {other:?} (any, one, quorum or all)"),
            ));
        }
    };
    let q = raw.queue.unwrap_or_default();
    let fsync = match q.fsync.as_deref().unwrap_or("always") {
        "always" => FsyncMode::Always,
        "interval" => FsyncMode::Interval,
        "never" => FsyncMode::Never,
        other => {
            return Err(problem(
                "queue.fsync",
                format!("invalid value {other:?} (always, interval or never)"),
            ));
        }
    };
    let queue = QueueConfig {
        fsync,
        fsync_interval: dur_range(
            "queue.fsync_interval",
            duration(
                "queue.fsync_interval",
                q.fsync_interval,
                Duration::from_millis(100),
            )?,
            Duration::from_millis(1),
            Duration::from_secs(60),
        )?,
        max_batch_bytes: in_range(
            "queue.max_batch_bytes",
            size("queue.max_batch_bytes", q.max_batch_bytes, 1 << 20)?,
            1024,
            256 << 20,
        )? as usize,
        max_bytes: in_range(
            "queue.max_bytes",
            size("queue.max_bytes", q.max_bytes, 10 << 30)?,
            1 << 20,
            u64::MAX,
        )?,
        max_age: dur_range(
            "queue.max_age",
            duration(
                "queue.max_age",
                q.max_age,
                Duration::from_secs(7 * 24 * 3600),
            )?,
            Duration::from_secs(1),
            Duration::from_secs(10 * 365 * 24 * 3600),
        )?,
        retry_max_delay: dur_range(
            "queue.retry_max_delay",
            duration(
                "queue.retry_max_delay",
                q.retry_max_delay,
                Duration::from_secs(30),
            )?,
            Duration::from_millis(10),
            Duration::from_secs(24 * 3600),
        )?,
        segment_bytes: in_range(
            "queue.segment_bytes",
            size("queue.segment_bytes", q.segment_bytes, 64 << 20)?,
            4096,
            4 << 30,
        )?,
        cache_bytes: in_range(
            "queue.cache_bytes",
            size("queue.cache_bytes", q.cache_bytes, 64 << 20)?,
            0,
            16 << 30,
        )? as usize,
    };

    Ok(Config {
        source,
        nodes,
        bind_address,
        port,
        retry_count,
        retry_delay,
        query_timeout,
        channel_size,
        auth_token,
        data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "./data".into())),
        allow_anonymous,
        write_consistency,
        write_timeout: dur_range(
            "write_timeout",
            duration("write_timeout", raw.write_timeout, Duration::from_secs(10))?,
            Duration::from_millis(10),
            Duration::from_secs(3600),
        )?,
        max_body_size: size("max_body_size", raw.max_body_size, 25_000_000)? as usize,
        request_timeout: dur_range(
            "request_timeout",
            duration(
                "request_timeout",
                raw.request_timeout,
                Duration::from_secs(30),
            )?,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?,
        health_check_interval: dur_range(
            "health_check_interval",
            duration(
                "health_check_interval",
                raw.health_check_interval,
                Duration::from_secs(1),
            )?,
            Duration::from_millis(50),
            Duration::from_secs(3600),
        )?,
        health_check_timeout: dur_range(
            "health_check_timeout",
            duration(
                "health_check_timeout",
                raw.health_check_timeout,
                Duration::from_secs(1),
            )?,
            Duration::from_millis(10),
            Duration::from_secs(600),
        )?,
        health_threshold: in_range(
            "health_threshold",
            raw.health_threshold.unwrap_or(2),
            1,
            100,
        )? as u32,
        read_lag_tolerance: in_range(
            "read_lag_tolerance",
            raw.read_lag_tolerance.unwrap_or(0),
            0,
            i64::MAX,
        )? as u64,
        shutdown_timeout: duration(
            "shutdown_timeout",
            raw.shutdown_timeout,
            Duration::from_secs(10),
        )?,
        log_level: raw.log_level.unwrap_or_else(|| "info".into()),
        queue,
    })
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
