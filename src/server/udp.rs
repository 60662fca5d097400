//! UDP line protocol (InfluxDB 1.x's `[[udp]]` inputs): the durable write
//! path for senders that cannot speak HTTP (collectd-style agents, Telegraf
//! UDP outputs).
//!
//! Why here and not left to a node: a UDP sender aimed at one node reaches
//! only that node. Behind the gateway a datagram takes the same road as a
//! `/write`: each one is scanned with 1.x's rules
//! ([`crate::lineproto::scan_with`], [`ScanOptions::v1`]), untimed points
//! are stamped with the receive time (in the listener's precision) from the
//! gateway's clock, and valid points are gathered into a batch that is
//! appended ONCE to the log as a `/write` record (`db=…&rp=…&precision=…`,
//! no credentials) through [`super::write::append_write`]; the replicators
//! then deliver it to every node.
//!
//! A batch is cut at `batch_size` points or `batch_timeout` after its first
//! point. Receiving and appending are two loops joined by a channel of
//! `batch_pending` batches, so an fsync does not stall the socket; when the
//! channel is full the receive loop waits and the kernel's buffer
//! (`read_buffer`) absorbs the burst.
//!
//! UDP has no answer, so what cannot be stored is counted instead, per
//! listener, and shown in `/health` ([`Counters`]): bad lines (the lines
//! `/write` would drop, plus datagrams refused whole for a field type
//! conflict), points the log refused, and datagrams over
//! `max_datagram_size` (dropped whole: a truncated datagram would store a
//! cut line). On shutdown the pending batch is appended before the task
//! ends, so the log is closed after it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::write::append_write;
use crate::config::UdpConfig;
use crate::lineproto::{self, Precision, ScanOptions};
use crate::record::Record;

/// What one listener has received and dropped, for `/health`.
#[derive(Debug, Default)]
pub struct Counters {
    /// The configured `bind_address`.
    pub bind: String,
    pub database: String,
    pub datagrams: AtomicU64,
    /// Valid points appended to the log.
    pub points: AtomicU64,
    pub batches: AtomicU64,
    /// Lines dropped by validation (as `/write` would drop them).
    pub bad_lines: AtomicU64,
    /// Valid points lost because the log refused their batch.
    pub log_refused_points: AtomicU64,
    /// Datagrams over `max_datagram_size`, dropped unread.
    pub oversized_datagrams: AtomicU64,
}

impl Counters {
    pub fn new(config: &UdpConfig) -> Counters {
        Counters {
            bind: config.bind_address.clone(),
            database: config.database.clone(),
            ..Counters::default()
        }
    }

    /// The counters as `/health` shows them.
    pub fn to_json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "bind_address": self.bind,
            "database": self.database,
            "datagrams": get(&self.datagrams),
            "points": get(&self.points),
            "batches": get(&self.batches),
            "dropped": {
                "bad_lines": get(&self.bad_lines),
                "log_refused_points": get(&self.log_refused_points),
                "oversized_datagrams": get(&self.oversized_datagrams),
            },
        })
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Binds a listener's socket, with `read_buffer` as its `SO_RCVBUF`.
pub async fn bind(config: &UdpConfig) -> std::io::Result<UdpSocket> {
    let addr: SocketAddr = tokio::net::lookup_host(config.bind_address.as_str())
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::other(format!("{} resolves to nothing", config.bind_address))
        })?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if config.read_buffer > 0 {
        socket.set_recv_buffer_size(config.read_buffer)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    tracing::info!(addr = %socket.local_addr()?, database = %config.database, "udp socket bound");
    Ok(socket)
}

/// A cut batch on its way to the log.
struct Batch {
    body: Bytes,
    points: usize,
}

/// The batch being filled, and when its first point arrived.
#[derive(Default)]
struct Pending {
    body: BytesMut,
    points: usize,
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self) -> Option<Batch> {
        self.since = None;
        let points = std::mem::take(&mut self.points);
        let body = std::mem::take(&mut self.body).freeze();
        (points > 0).then_some(Batch { body, points })
    }
}

/// The query every record of this listener carries: `db`, `rp` when set,
/// and the precision its timestamps are in.
fn forward_query(config: &UdpConfig, precision: Precision) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("db", &config.database);
    if !config.retention_policy.is_empty() {
        q.append_pair("rp", &config.retention_policy);
    }
    q.append_pair("precision", precision.as_v1_param());
    q.finish()
}

/// Receives, validates, batches and appends until `cancel`, then appends
/// what is pending and returns.
pub async fn run(
    gw: Arc<Gateway>,
    socket: UdpSocket,
    config: UdpConfig,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) {
    let precision = Precision::parse_v1(&config.precision).unwrap_or_default();
    let query = forward_query(&config, precision);
    let (tx, rx) = mpsc::channel(config.batch_pending.max(1));
    let receive = receive(&gw, &socket, &config, precision, &counters, tx, cancel);
    let append = append(&gw, &query, &counters, rx);
    tokio::join!(receive, append);
}

async fn receive(
    gw: &Gateway,
    socket: &UdpSocket,
    config: &UdpConfig,
    precision: Precision,
    counters: &Counters,
    tx: mpsc::Sender<Batch>,
    cancel: CancellationToken,
) {
    let opts = ScanOptions::v1(precision);
    // One byte more than allowed: a datagram that fills it is oversized.
    let mut buf = vec![0u8; config.max_datagram_size + 1];
    let mut pending = Pending::default();
    loop {
        let deadline = pending.since.map(|t| t + config.batch_timeout);
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = timeout => {
                if let Some(b) = pending.take() && tx.send(b).await.is_err() {
                    return;
                }
                continue;
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(e) => {
                    // ICMP errors and the like: nothing to do but go on.
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        add(&counters.datagrams, 1);
        if n > config.max_datagram_size {
            add(&counters.oversized_datagrams, 1);
            continue;
        }
        let now = precision.from_unix_nanos(gw.clock.now_nanos());
        let scanned = lineproto::scan_with(Bytes::copy_from_slice(&buf[..n]), now, &opts);
        crate::metrics::points(&scanned, false);
        add(
            &counters.bad_lines,
            scanned.bad_lines + scanned.dropped + usize::from(scanned.type_conflict),
        );
        if scanned.points == 0 {
            continue;
        }
        pending.body.extend_from_slice(&scanned.body);
        pending.points += scanned.points;
        pending.since.get_or_insert_with(Instant::now);
        if pending.points >= config.batch_size
            && let Some(b) = pending.take()
            && tx.send(b).await.is_err()
        {
            return;
        }
    }
    if let Some(b) = pending.take() {
        let _ = tx.send(b).await;
    }
}

async fn append(gw: &Gateway, query: &str, counters: &Counters, mut rx: mpsc::Receiver<Batch>) {
    while let Some(batch) = rx.recv().await {
        let record =
            Record::write("/write", query.to_string(), None, batch.body).with_points(batch.points);
        match append_write(gw, &record, query).await {
            Ok(_) => {
                add(&counters.points, batch.points);
                add(&counters.batches, 1);
            }
            Err(e) => {
                add(&counters.log_refused_points, batch.points);
                tracing::error!(error = %e, points = batch.points, "log append failed; udp batch dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp: &str) -> UdpConfig {
        UdpConfig {
            bind_address: "127.0.0.1:0".into(),
            database: "a b&c".into(),
            retention_policy: rp.into(),
            precision: "s".into(),
            batch_size: 10,
            batch_pending: 1,
            batch_timeout: std::time::Duration::from_secs(1),
            read_buffer: 0,
            max_datagram_size: 100,
        }
    }

    #[test]
    fn query_names_the_target_encoded() {
        assert_eq!(
            forward_query(&config(""), Precision::Second),
            "db=a+b%26c&precision=s"
        );
        assert_eq!(
            forward_query(&config("week"), Precision::Nanosecond),
            "db=a+b%26c&rp=week&precision=n"
        );
    }

    #[test]
    fn pending_takes_only_what_it_has() {
        let mut p = Pending::default();
        assert!(p.take().is_none());
        p.body.extend_from_slice(b"m f=1 1\n");
        p.points = 1;
        p.since = Some(Instant::now());
        let b = p.take().expect("a batch");
        assert_eq!((b.points, &b.body[..]), (1, &b"m f=1 1\n"[..]));
        assert!(p.since.is_none() && p.take().is_none());
    }
}
