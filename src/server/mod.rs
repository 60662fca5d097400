//! The gateway's HTTP server: InfluxDB's API in front of several nodes.
//!
//! [`serve`] is the whole gateway: it opens the durable log under `data_dir`,
//! starts one replicator and one health checker per node, and serves HTTP on
//! a listener the caller bound (tests bind port 0) until `shutdown` resolves.
//! Shutdown is graceful: stop accepting, let in-flight requests finish (up to
//! `shutdown_timeout`), stop the replicators, then close the log (final fsync,
//! cursors persisted).
//!
//! Request flow, one file per concern, imports running one way
//! (routes → handlers → respond → request):
//! - `routes.rs`: gateway token, routing, access log (masked by
//!   [`crate::redact`]); renders a handler's error in the path's flavour;
//! - `write.rs`: `/write` and `/api/v2/write`: decode, validate, stamp, log;
//! - `query.rs`: `/query`: classify the InfluxQL, then read or mutate;
//! - `read.rs`: reads to one healthy, caught-up node, with fallback, streamed;
//! - `mutate.rs`: mutations through the log, with every node's answer merged;
//! - `status.rs`: `/ping`, `/health`, `/ready`, `/`;
//! - `respond.rs`: InfluxDB's v1 and v2 error shapes, and [`respond::ApiError`],
//!   the error every handler returns;
//! - `request.rs`: the client's request, its bounded body reader, typed
//!   parameters, and the API flavour of a path.
//!
//! The wall clock (write stamps, pinned `now()`) is the gateway's
//! [`Clock`]: [`serve`] uses the system's, [`serve_with_clock`] takes one
//! (tests freeze time with [`Clock::manual`]).

pub mod auth;
mod mutate;
mod query;
mod read;
pub mod request;
pub mod respond;
mod routes;
mod status;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::backend::Node;
use crate::backend::client::{self, HttpClient};
use crate::backend::cluster::Cluster;
use crate::backend::deadletter::DeadLetters;
use crate::backend::health::{self, Health};
use crate::backend::orgs::Orgs;
use crate::backend::replicator::Replicator;
use crate::clock::Clock;
use crate::config::{Config, FsyncMode};
use crate::log::{FsyncPolicy, Log, LogOptions};

/// Shared state of a running gateway.
pub struct Gateway {
    pub config: Arc<Config>,
    pub log: Log,
    /// The nodes, their positions, and the read-your-writes watermarks.
    pub cluster: Cluster,
    pub http: HttpClient,
    pub orgs: Arc<Orgs>,
    /// The wall clock for write stamps and pinned `now()`.
    pub clock: Clock,
    /// The gateway's credentials and scopes (`auth_token`, `clients`).
    pub auth: auth::Authenticator,
    /// RFC 3339 start time and a monotonic clock, for `/ready`.
    pub started: String,
    pub started_at: std::time::Instant,
}

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `data_dir` could not be created.
    #[error("cannot create data_dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// The durable log could not be opened or recovered.
    #[error("cannot open the durable log: {0}")]
    Log(#[from] crate::log::LogError),
    /// The listener failed.
    #[error("listener: {0}")]
    Listener(std::io::Error),
}

fn log_options(config: &Config) -> LogOptions {
    let q = &config.queue;
    LogOptions {
        dir: config.data_dir.join("log"),
        segment_bytes: q.segment_bytes,
        fsync: match q.fsync {
            FsyncMode::Always => FsyncPolicy::Always,
            FsyncMode::Interval => FsyncPolicy::Interval(q.fsync_interval),
            FsyncMode::Never => FsyncPolicy::Never,
        },
        cache_bytes: q.cache_bytes,
        max_backlog_bytes: q.max_bytes,
        max_age: q.max_age,
        ..LogOptions::default()
    }
}

/// Runs the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    serve_with_clock(listener, config, Clock::system(), shutdown).await
}

/// [`serve`] with a given wall clock.
pub async fn serve_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let config = Arc::new(config);
    create_private_dir(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
    let log = Log::open(log_options(&config), &names).await?;
    let http = client::new_client();
    let nodes: Vec<Arc<Node>> = config
        .nodes
        .iter()
        .map(|n| {
            let next = log.cursor(&n.name).unwrap_or_else(|| log.next_seq());
            let health = Health::new(config.health_threshold_up, config.health_threshold_down);
            Arc::new(Node::new(n.clone(), health, next))
        })
        .collect();

    let orgs = Arc::new(Orgs::new(config.nodes.clone(), http.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for node in &nodes {
        tasks.push(tokio::spawn(health::run_checks(
            node.config.clone(),
            node.health.clone(),
            http.clone(),
            config.health_check_interval,
            config.health_check_timeout,
            stop_rx.clone(),
        )));
        let rep = Replicator {
            node: node.clone(),
            log: log.clone(),
            http: http.clone(),
            dead: DeadLetters::new(&config.data_dir, node.name()),
            max_batch_bytes: config.queue.max_batch_bytes,
            max_records: config.channel_size,
            first_delay: config.retry_delay,
            max_delay: config.queue.retry_max_delay,
            timeout: config.write_timeout,
            retry_count: config.retry_count,
            orgs: orgs.clone(),
        };
        tasks.push(tokio::spawn(rep.run(stop_rx.clone())));
    }

    let gw = Arc::new(Gateway {
        config: config.clone(),
        log: log.clone(),
        cluster: Cluster::new(nodes, log.next_seq()),
        http,
        orgs,
        clock,
        auth: auth::Authenticator::new(&config),
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        started_at: std::time::Instant::now(),
    });
    crate::metrics::attach(&gw);
    let addr = listener.local_addr().map_err(ServerError::Listener)?;
    tracing::info!(addr = %addr, nodes = ?names, version = env!("CARGO_PKG_VERSION"), "listening");

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.request_timeout);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                let svc = hyper::service::service_fn(move |req| routes::handle(gw.clone(), req, peer));
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?config.shutdown_timeout, "in-flight requests did not finish in time");
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    if let Err(e) = log.close().await {
        tracing::error!(error = %e, "closing the log failed");
    }
    tracing::info!("stopped");
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // The log holds client credentials for replay: keep it private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
