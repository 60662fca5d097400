//! The accept loop: turns TCP connections into HTTP/1.1 connections served
//! by the router, and nothing else (the gateway itself is built by
//! [`crate::app::start`]).
//!
//! Why its own type (as mini-redis's `Listener`): every field is a defence
//! against a client that would otherwise hold the gateway's resources:
//! - a connection semaphore (`max_connections`): past it, a connection is
//!   accepted, answered a minimal `503` with `Retry-After`, and closed, so
//!   clients see "busy" instead of hanging in the kernel's backlog and the
//!   process keeps file descriptors for the clients it serves;
//! - hyper's header-read timeout (`request_timeout`), armed whenever the
//!   connection waits for a request head: at the start of a connection and
//!   between keep-alive requests. A client that sends nothing, or only part
//!   of a head, is closed within `request_timeout`;
//! - HTTP/1.1 only: InfluxDB OSS does not serve HTTP/2 without TLS either,
//!   and protocol detection would read a preface with no timeout;
//! - TLS (top-level `tls`): the handshake runs in the connection's task,
//!   bounded by `request_timeout` like a request head. The certificate is
//!   resolved per handshake from a [`ReloadableCert`] that SIGHUP reloads,
//!   so new connections see a new certificate while open ones keep theirs
//!   (a failed reload keeps the old certificate and logs why);
//! - graceful shutdown plus a hard stop, and a task tracker as the
//!   drop-guard: [`Listener::run`] returns only when every connection task
//!   has ended, within one `shutdown_timeout`.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Gateway, ServerError, routes};
use crate::config::tls::{ListenerTls, TlsError};

/// The answer to a connection past `max_connections`: complete, so the
/// client can read it without the gateway reading its request.
const BUSY: &str = "{\"error\":\"too many open connections, retry later\"}";
const BUSY_TEXT: &str = "too many open connections, retry later";

/// How many over-limit connections may be in the middle of being refused;
/// past that they are closed without an answer (each holds a descriptor).
const MAX_REFUSING: usize = 64;

/// How long refusing one connection may take (write the 503, drain a little).
const REFUSE_TIME: Duration = Duration::from_secs(1);

/// Accepts connections for one gateway until told to stop.
pub struct Listener {
    listener: TcpListener,
    gateway: Arc<Gateway>,
    /// One permit per open connection (`max_connections`; `None` = unlimited).
    /// The connection task holds it, so every way out frees the slot.
    limit: Option<Arc<Semaphore>>,
    /// Bounds the refusals in progress (see [`MAX_REFUSING`]).
    refusing: Arc<Semaphore>,
    /// Asks open connections to finish their request and close.
    graceful: GracefulShutdown,
    /// Cancelled at the shutdown deadline: connections still open are dropped.
    hard_stop: CancellationToken,
    /// Every connection task (served or refused): the drop-guard that says
    /// when all of them are gone.
    connections: TaskTracker,
    http: http1::Builder,
    /// Set when the listener serves HTTPS.
    tls: Option<Tls>,
}

/// The listener's TLS: the acceptor and the certificate it resolves.
struct Tls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadableCert>,
}

/// The listener's certificate, swapped whole by [`ReloadableCert::reload`]:
/// each handshake takes the `Arc` current at its start.
#[derive(Debug)]
pub struct ReloadableCert {
    files: ListenerTls,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads the certificate and key named by `files`.
    pub fn load(files: ListenerTls) -> Result<ReloadableCert, TlsError> {
        let current = RwLock::new(Arc::new(files.load()?));
        Ok(ReloadableCert { files, current })
    }

    /// Reads the files again; on failure the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(self.files.load()?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Tls {
    fn new(files: &ListenerTls) -> Result<Tls, TlsError> {
        let cert = Arc::new(ReloadableCert::load(files.clone())?);
        let mut config =
            rustls::ServerConfig::builder_with_provider(crate::config::tls::provider())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert,
        })
    }

    /// SIGHUP: reload the certificate, logging the outcome.
    fn reload(&self) {
        match self.cert.reload() {
            Ok(()) => tracing::info!(
                cert_file = %self.cert.files.cert_file.display(),
                "TLS certificate reloaded"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "TLS certificate reload failed; keeping the current certificate"
            ),
        }
    }
}

/// Resolves on each SIGHUP caught by `sig`; never when there is none (no
/// TLS, or the handler could not be installed).
async fn hangup(sig: &mut Option<tokio::signal::unix::Signal>) {
    match sig {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

impl Listener {
    /// Prepares to serve `gateway` on `listener` and logs the address.
    pub fn new(listener: TcpListener, gateway: Arc<Gateway>) -> Result<Listener, ServerError> {
        let config = &gateway.config;
        let addr = listener.local_addr().map_err(ServerError::Listener)?;
        let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        tracing::info!(
            addr = %addr,
            nodes = ?names,
            workers = tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_workers()),
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            // hyper's default, stated: `lineproto::scan_chunks` relies on it
            // to bound what a body chunk kept in the log's tail holds on to.
            .max_buf_size(crate::lineproto::READ_BUF_MAX);
        let limit =
            (config.max_connections > 0).then(|| Arc::new(Semaphore::new(config.max_connections)));
        let tls = match &config.tls {
            None => None,
            Some(files) => {
                let tls = Tls::new(files).map_err(|e| {
                    ServerError::Listener(std::io::Error::other(format!("tls: {e}")))
                })?;
                tracing::info!(cert_file = %files.cert_file.display(), "serving HTTPS; SIGHUP reloads the certificate");
                Some(tls)
            }
        };
        Ok(Listener {
            tls,
            listener,
            limit,
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            graceful: GracefulShutdown::new(),
            hard_stop: CancellationToken::new(),
            connections: TaskTracker::new(),
            http,
            gateway,
        })
    }

    /// Accepts until `shutdown` resolves, then drains: open connections get
    /// three quarters of `shutdown_timeout` (all but at most 1 s) to finish,
    /// then are dropped. Returns the deadline (`shutdown_timeout` from the
    /// signal), which the rest of the shutdown shares.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Instant {
        tokio::pin!(shutdown);
        let mut sighup = match &self.tls {
            Some(_) => tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::error!(error = %e, "cannot watch SIGHUP; the certificate will not be reloaded"))
                .ok(),
            None => None,
        };
        loop {
            tokio::select! {
                _ = hangup(&mut sighup) => {
                    if let Some(tls) = &self.tls {
                        tls.reload();
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, peer),
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = &mut shutdown => break,
            }
        }
        let timeout = self.gateway.config.shutdown_timeout;
        let deadline = Instant::now() + timeout;
        // Connections drain first (writes may wait for replicators), but not
        // up to the deadline itself: the background tasks get the last
        // quarter (at most 1 s) to stop on their own.
        let drained_by = deadline - (timeout / 4).min(Duration::from_secs(1));
        drop(self.listener);
        tracing::info!("shutting down: draining in-flight requests");
        if tokio::time::timeout_at(drained_by, self.graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.gateway.config.shutdown_timeout, "in-flight requests did not finish in time");
        }
        self.hard_stop.cancel();
        self.connections.close();
        self.connections.wait().await;
        deadline
    }

    /// Serves `stream` if a connection slot is free, else refuses it.
    fn admit(&self, stream: TcpStream, peer: std::net::SocketAddr) {
        let permit = match &self.limit {
            None => None,
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => return self.refuse(stream),
            },
        };
        self.serve(stream, peer, permit);
    }

    fn serve(
        &self,
        stream: TcpStream,
        peer: std::net::SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let _ = stream.set_nodelay(true);
        let gw = self.gateway.clone();
        let svc = hyper::service::service_fn(move |req| routes::handle(gw.clone(), req, peer));
        let http = self.http.clone();
        // Taken now, so a shutdown also waits for connections mid-handshake.
        let watcher = self.graceful.watcher();
        let acceptor = self.tls.as_ref().map(|t| t.acceptor.clone());
        let handshake_time = self.gateway.config.request_timeout;
        let hard_stop = self.hard_stop.clone();
        self.connections.spawn(async move {
            let _slot = permit;
            let served = async move {
                let Some(acceptor) = acceptor else {
                    let _ = watcher
                        .watch(http.serve_connection(TokioIo::new(stream), svc))
                        .await;
                    return;
                };
                match tokio::time::timeout(handshake_time, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = watcher
                            .watch(http.serve_connection(TokioIo::new(tls), svc))
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            };
            tokio::select! {
                _ = served => {}
                _ = hard_stop.cancelled() => {}
            }
        });
    }

    /// Answers `503` with `Retry-After` and closes. The request head is read
    /// first (a little, briefly: clients treat an answer before their
    /// request as broken), and what follows is drained so the close is not a
    /// reset. Over TLS, the refusal is sent after a handshake.
    fn refuse(&self, stream: TcpStream) {
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing without an answer");
            return;
        };
        tracing::warn!(
            max_connections = self.gateway.config.max_connections,
            "connection limit reached; answering 503"
        );
        let acceptor = self.tls.as_ref().map(|t| t.acceptor.clone());
        self.connections.spawn(async move {
            let _refusing = permit;
            let _ = tokio::time::timeout(REFUSE_TIME, async move {
                match acceptor {
                    None => answer_busy(stream).await,
                    Some(acceptor) => answer_busy(acceptor.accept(stream).await?).await,
                }
            })
            .await;
        });
    }
}

/// Writes the `503` to a refused connection (see [`Listener::refuse`]).
async fn answer_busy<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> std::io::Result<()> {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         X-Influxdb-Error: {BUSY_TEXT}\r\nRetry-After: 1\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{BUSY}",
        BUSY.len()
    );
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await? {
            0 => break,
            n => head.extend_from_slice(&chunk[..n]),
        }
    }
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await?;
    let mut left = 64usize << 10;
    while left > 0 {
        match stream.read(&mut chunk).await? {
            0 => break,
            n => left = left.saturating_sub(n),
        }
    }
    Ok(())
}
