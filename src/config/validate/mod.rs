//! Turns a [`RawConfig`] into the immutable [`Config`]: applies defaults,
//! parses durations and sizes, and rejects anything out of range with the
//! path of the offending key.
//!
//! Each key is read once through [`key!`], which takes the field and names it
//! (see `key.rs`); `nodes.rs` holds the `addresses` section. Keys are checked
//! in a fixed order, section by section, so of several problems the same one
//! is always reported.

mod clients;
mod key;
mod nodes;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use self::key::Key;
use super::raw::{RawConfig, RawCount, RawQueue};
use super::{Config, Consistency, FsyncMode, LogFormat, NodeConfig, QueueConfig, ReadConsistency};

/// One validation failure: the key's path (`addresses[1].url`) and what is wrong.
pub type Problem = (String, String);

/// `key!(raw.port)`: the field taken out of `raw`, its name as the key path.
/// `key!(section, q.fsync)`: the same under a section's path (`queue.fsync`).
macro_rules! key {
    ($raw:ident . $field:ident) => {
        Key::new(stringify!($field), $raw.$field.take())
    };
    ($section:expr, $raw:ident . $field:ident) => {
        Key::new(
            format!("{}.{}", $section, stringify!($field)),
            $raw.$field.take(),
        )
    };
}

// After `key!`, which they use.
mod repair;
mod udp;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const HOUR: Duration = secs(3600);
/// In-memory sizes are `usize`; this bound makes the cast lossless.
const MAX_USIZE: u64 = usize::MAX as u64;
const DAY: Duration = secs(24 * 3600);

pub fn validate(
    mut raw: RawConfig,
    source: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problem> {
    let nodes = nodes::nodes(key!(raw.addresses))?;

    // Listener.
    let port = key!(raw.port).int(8080, 0..=65535)? as u16;
    let bind_address = bind_address(key!(raw.bind_address))?;

    // Replication.
    let retry_count = key!(raw.retry_count).int(120, 0..=1_000_000)? as u32;
    let retry_delay = key!(raw.retry_delay).duration(secs(1), Duration::ZERO..=HOUR)?;
    let query_timeout = key!(raw.query_timeout).duration(secs(5), ms(10)..=DAY)?;
    let channel_size = key!(raw.channel_size).int(1000, 1..=10_000_000)? as usize;

    // Authentication.
    let allow_anonymous = raw.allow_anonymous.unwrap_or(false);
    let clients = clients::clients(key!(raw.clients))?;
    let public_health = raw.public_health.unwrap_or(false);
    let auth_token = auth_token(
        key!(raw.auth_token),
        allow_anonymous || !clients.is_empty(),
        &nodes,
        env,
    )?;

    // Writes and the log.
    let write_consistency = key!(raw.write_consistency).choice(Consistency::Any)?;
    let queue = queue(key!(raw.queue))?;
    let data_dir = PathBuf::from(raw.data_dir.take().unwrap_or_else(|| "./data".into()));
    let write_timeout = key!(raw.write_timeout).duration(secs(10), ms(10)..=HOUR)?;

    // Request limits (0 = unlimited).
    let max_body_size = key!(raw.max_body_size).size(25_000_000, 0..=MAX_USIZE)? as usize;
    let max_connections = key!(raw.max_connections).int(10_000, 0..=10_000_000)? as usize;
    let max_inflight_bytes = key!(raw.max_inflight_bytes).size(512 << 20, 0..=MAX_USIZE)? as usize;
    let request_timeout = key!(raw.request_timeout).duration(secs(30), ms(100)..=HOUR)?;

    // Health checks: `health_threshold` is the default of both directions.
    let health_check_interval = key!(raw.health_check_interval).duration(secs(1), ms(50)..=HOUR)?;
    let health_check_timeout =
        key!(raw.health_check_timeout).duration(secs(1), ms(10)..=secs(600))?;
    let threshold = key!(raw.health_threshold).int(2, 1..=100)?;
    let health_threshold_up = key!(raw.health_threshold_up).int(threshold, 1..=100)? as u32;
    let health_threshold_down = key!(raw.health_threshold_down).int(threshold, 1..=100)? as u32;

    // Reads.
    let read_lag_tolerance = key!(raw.read_lag_tolerance).int(0, 0..=i64::MAX)? as u64;
    let read_wait = key!(raw.read_wait).duration(secs(1), Duration::ZERO..=HOUR)?;
    let read_consistency = key!(raw.read_consistency).choice(ReadConsistency::Scoped)?;

    let shutdown_timeout =
        key!(raw.shutdown_timeout).duration(secs(10), Duration::ZERO..=Duration::MAX)?;

    // Logging and metrics.
    let log_level = raw.log_level.take().unwrap_or_else(|| "info".into());
    let log_format = key!(raw.log_format).choice(LogFormat::Auto)?;
    let metrics_bind = host_port(key!(raw.metrics_bind))?;
    let metrics_enabled = raw.metrics_enabled.unwrap_or(true);
    let tls = tls::listener_tls(key!(raw.tls))?;

    // UDP listeners.
    let udp = udp::listeners(key!(raw.udp))?;

    // Background repair.
    let repair = repair::repair(key!(raw.repair))?;

    // The async runtime.
    let worker_threads = worker_threads(key!(raw.worker_threads), env)?;

    Ok(Config {
        source,
        nodes,
        bind_address,
        port,
        failure_warn_after: retry_count,
        retry_delay,
        query_timeout,
        max_batch_records: channel_size,
        auth_token,
        data_dir,
        allow_anonymous,
        write_consistency,
        write_timeout,
        max_body_size,
        max_connections,
        max_inflight_bytes,
        request_timeout,
        health_check_interval,
        health_check_timeout,
        health_threshold: threshold as u32,
        health_threshold_up,
        health_threshold_down,
        read_lag_tolerance,
        read_wait,
        read_consistency,
        shutdown_timeout,
        log_level,
        log_format,
        metrics_bind,
        metrics_enabled,
        clients,
        public_health,
        tls,
        queue,
        udp,
        repair,
        worker_threads,
    })
}

/// `worker_threads`: a number of threads, or `auto` (the default: `None`).
/// Unless the file gives a number, `TOKIO_WORKER_THREADS` from the
/// environment does (what set the count before the key existed), checked
/// here so a bad value is a config error, not the runtime's panic.
fn worker_threads(
    key: Key<RawCount>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<usize>, Problem> {
    const RANGE: std::ops::RangeInclusive<i64> = 1..=1024;
    match &key.raw {
        Some(RawCount::Int(n)) if RANGE.contains(n) => Ok(Some(*n as usize)),
        Some(RawCount::Int(n)) => {
            Err(key.problem(format!("{n} is out of range (1..=1024, or auto)")))
        }
        Some(RawCount::Word(w)) if w != "auto" => Err(key.problem(format!(
            "invalid value {w:?} (a number of threads, or auto)"
        ))),
        _ => match env("TOKIO_WORKER_THREADS") {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if RANGE.contains(&n) => Ok(Some(n as usize)),
                _ => Err((
                    "TOKIO_WORKER_THREADS".into(),
                    format!("invalid value {v:?} in the environment (1..=1024)"),
                )),
            },
        },
    }
}

/// `bind_address`: an IP address or `localhost` (the port is its own key).
fn bind_address(key: Key<String>) -> Result<String, Problem> {
    match key.raw {
        None => Ok("0.0.0.0".into()),
        Some(addr) if addr == "localhost" || addr.parse::<std::net::IpAddr>().is_ok() => Ok(addr),
        Some(ref addr) => Err(key.problem(format!("invalid IP address {addr:?}"))),
    }
}

/// An optional `host:port` listen address (`127.0.0.1:9100`, `[::1]:9100`,
/// `metrics.local:9100`).
fn host_port(key: Key<String>) -> Result<Option<String>, Problem> {
    let Some(addr) = &key.raw else {
        return Ok(None);
    };
    let valid_host = |h: &str| match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    match addr.rsplit_once(':') {
        Some((host, port)) if valid_host(host) && port.parse::<u16>().is_ok() => {
            Ok(key.raw.clone())
        }
        _ => Err(key.problem(format!(
            "invalid address {addr:?} (use host:port, e.g. \"127.0.0.1:9100\" or \"[::1]:9100\")"
        ))),
    }
}

/// The gateway's token; the original falls back to `AUTH_TOKEN` when the file
/// leaves it empty. Node credentials without it need `allow_anonymous`.
fn auth_token(
    key: Key<super::raw::RawString>,
    allow_anonymous: bool,
    nodes: &[NodeConfig],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, Problem> {
    let token = key
        .raw
        .as_ref()
        .map(|t| t.clone().into_string())
        .filter(|t| !t.is_empty())
        .or_else(|| env("AUTH_TOKEN").filter(|t| !t.is_empty()));
    if token.is_none()
        && !allow_anonymous
        && nodes
            .iter()
            .any(|n| n.token.is_some() || n.password.is_some())
    {
        return Err(key.problem(
            "node credentials are configured but the gateway has no auth_token (or AUTH_TOKEN): \
             anyone reaching the gateway would borrow them; set auth_token, or allow_anonymous: true",
        ));
    }
    Ok(token)
}

/// The `queue` section: the durable log and each node's backlog limits.
fn queue(section: Key<RawQueue>) -> Result<QueueConfig, Problem> {
    let s = section.path.as_str();
    let mut q = section.raw.unwrap_or_default();
    Ok(QueueConfig {
        fsync: key!(s, q.fsync).choice(FsyncMode::Always)?,
        fsync_interval: key!(s, q.fsync_interval).duration(ms(100), ms(1)..=secs(60))?,
        max_batch_bytes: key!(s, q.max_batch_bytes).size(1 << 20, 1024..=256 << 20)? as usize,
        max_bytes: key!(s, q.max_bytes).size(10 << 30, 1 << 20..=u64::MAX)?,
        max_age: key!(s, q.max_age).duration(7 * DAY, secs(1)..=3650 * DAY)?,
        retry_max_delay: key!(s, q.retry_max_delay).duration(secs(30), ms(10)..=DAY)?,
        segment_bytes: key!(s, q.segment_bytes).size(64 << 20, 4096..=4 << 30)?,
        cache_bytes: key!(s, q.cache_bytes).size(64 << 20, 0..=16 << 30)? as usize,
        direct_io: q.direct_io.unwrap_or(true),
    })
}
