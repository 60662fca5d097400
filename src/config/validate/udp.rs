//! The `udp` section: UDP line-protocol listeners, with InfluxDB 1.x's
//! `[[udp]]` keys and defaults (`batch_size` 5000, `batch_pending` 10,
//! `batch_timeout` 1 s, `read_buffer` 0 = the OS default), so an operator
//! can move a collectd- or Telegraf-over-UDP setup onto the gateway by
//! renaming the keys to snake_case. Checked here so a bad address, precision
//! or a second listener on the same address stops the gateway at start.

use std::collections::HashSet;

use super::key::Key;
use super::{Problem, ms, secs};
use crate::config::UdpConfig;
use crate::config::raw::RawUdp;
use crate::lineproto::Precision;

/// The largest UDP payload there is (IPv6 without jumbograms).
const MAX_DATAGRAM: u64 = 65_535;

pub fn listeners(section: Key<Vec<RawUdp>>) -> Result<Vec<UdpConfig>, Problem> {
    let Some(list) = section.raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    let mut binds = HashSet::new();
    for (i, mut u) in list.into_iter().enumerate() {
        let s = format!("{}[{i}]", section.path);
        let path = |field: &str| format!("{s}.{field}");
        let bind_key = Key::new(path("bind_address"), u.bind_address.take());
        let bind_address = bind_address(bind_key)?;
        if !binds.insert(bind_address.clone()) {
            return Err((
                path("bind_address"),
                format!("duplicate UDP address {bind_address:?}"),
            ));
        }
        let database = u
            .database
            .take()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| (path("database"), "is required".to_string()))?;
        let precision = u.precision.take().unwrap_or_default();
        if Precision::parse_v1(&precision).is_none() {
            return Err((
                path("precision"),
                format!("invalid precision {precision:?} (use n, u, ms, s, m or h)"),
            ));
        }
        out.push(UdpConfig {
            bind_address,
            database,
            retention_policy: u.retention_policy.take().unwrap_or_default(),
            precision,
            batch_size: key!(s, u.batch_size).int(5000, 1..=1_000_000)? as usize,
            batch_pending: key!(s, u.batch_pending).int(10, 1..=10_000)? as usize,
            batch_timeout: key!(s, u.batch_timeout).duration(secs(1), ms(1)..=secs(3600))?,
            read_buffer: key!(s, u.read_buffer).size(0, 0..=1 << 30)? as usize,
            max_datagram_size: key!(s, u.max_datagram_size).size(MAX_DATAGRAM, 64..=MAX_DATAGRAM)?
                as usize,
        });
    }
    Ok(out)
}

/// `host:port`, `[v6]:port`, or InfluxDB's `:port` (every IPv4 address).
fn bind_address(key: Key<String>) -> Result<String, Problem> {
    let given = key.raw.clone().unwrap_or_else(|| ":8089".into());
    let addr = match given.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => given.clone(),
    };
    let ok = match addr.rsplit_once(':') {
        Some((host, port)) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            port.parse::<u16>().is_ok()
                && (host == "localhost" || host.parse::<std::net::IpAddr>().is_ok())
        }
        None => false,
    };
    if ok {
        Ok(addr)
    } else {
        Err(key.problem(format!(
            "invalid address {given:?} (use ip:port, e.g. \":8089\" or \"127.0.0.1:8089\")"
        )))
    }
}
