//! The gateway's composition root and process-level glue.
//!
//! Also binds the metrics listener when `metrics_bind` is set.
//!
//! Why a composition root apart from the server: building the gateway (the
//! durable log, one replicator and one health checker per node) and stopping
//! it are one job; accepting connections is another
//! ([`crate::server::listener`]). [`start`] builds everything and returns a
//! [`Running`] gateway whose background tasks all live in one [`JoinSet`]
//! and stop on one [`CancellationToken`]; [`Running::shutdown_by`] cancels
//! them and joins them all against ONE deadline, then closes the log. Nothing
//! is detached, so "stopped" means stopped.
//!
//! Also here, so `src/main.rs` stays a thin CLI parser: logging setup and
//! turning SIGINT/SIGTERM into the shutdown future ([`run`]).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backend::Node;
use crate::backend::client;
use crate::backend::cluster::Cluster;
use crate::backend::deadletter::DeadLetters;
use crate::backend::health::{self, Health};
use crate::backend::orgs::Orgs;
use crate::backend::replicator::Replicator;
use crate::clock::Clock;
use crate::config::{Config, FsyncMode, LogFormat};
use crate::log::{FsyncPolicy, Log, LogOptions};
use crate::server::request::BodyBudget;
use crate::server::{self, Gateway, ServerError};

/// Installs the log subscriber per `log_format` (`auto`: text on a terminal,
/// JSON otherwise). `RUST_LOG` overrides the config's level.
///
/// Lines are formatted on the calling thread into a shared buffer that a
/// background thread writes out in batches (`logsink`): at the default
/// `info` level every request writes an access-log line, and a write, or
/// a thread wake-up, per line cost the read path measurably. Not lossy:
/// past 8 MiB waiting, logging waits rather than dropping lines. Keep the
/// returned guard alive until exit: dropping it writes what is buffered.
/// If the writer thread cannot start, lines go straight to stdout.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_logging(level: &str, format: LogFormat) -> Option<crate::logsink::LogSinkGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    match crate::logsink::spawn(std::io::stdout()) {
        Ok((sink, guard)) => {
            install_subscriber(filter, json, sink);
            Some(guard)
        }
        Err(e) => {
            install_subscriber(filter, json, std::io::stdout);
            tracing::warn!(error = %e, "log writer thread did not start; logging straight to stdout");
            None
        }
    }
}

/// The global subscriber: `filter`, JSON or text lines, to `writer`.
fn install_subscriber<W>(filter: tracing_subscriber::EnvFilter, json: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        fmt.event_format(crate::logfmt::JsonLine).try_init()
    } else {
        fmt.try_init()
    };
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown signal received");
}

/// Binds the configured address and runs the gateway until a signal.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.listen_addr())
        .await
        .map_err(ServerError::Listener)?;
    if let Some(addr) = &config.metrics_bind {
        let metrics = TcpListener::bind(addr.as_str())
            .await
            .map_err(ServerError::Listener)?;
        tokio::spawn(crate::metrics::serve_metrics(metrics));
    }
    serve(listener, config, shutdown_signal()).await
}

/// Runs the gateway on `listener` until `shutdown` resolves: [`start`],
/// then a [`crate::server::listener::Listener`] until `shutdown`, then one
/// deadline for the drain and [`Running::shutdown_by`]. Tests run the
/// gateway in-process with it.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    serve_with_clock(listener, config, Clock::system(), shutdown).await
}

/// [`serve`] with a given wall clock (tests freeze time with
/// [`Clock::manual`]).
pub async fn serve_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let running = start_with_clock(config, clock).await?;
    running.serve(listener, shutdown).await?;
    Ok(())
}

/// A started gateway: its shared state and every background task it owns.
pub struct Running {
    gateway: Arc<Gateway>,
    /// Cancelled once, by [`Running::shutdown_by`]; every task stops on it.
    cancel: CancellationToken,
    /// Replicators, health checkers, UDP listeners, the automatic repair and
    /// the stop bridge: joined (or, past
    /// the deadline, aborted) at shutdown, never detached.
    tasks: JoinSet<()>,
}

/// How a shutdown went: what finished on its own and what had to be aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Background tasks that ended within the deadline.
    pub joined: usize,
    /// Background tasks still running at the deadline, aborted.
    pub aborted: usize,
}

/// Starts the gateway (system clock): see [`start_with_clock`].
pub async fn start(config: Config) -> Result<Running, ServerError> {
    start_with_clock(config, Clock::system()).await
}

/// Opens the log under `data_dir`, spawns one replicator and one health
/// checker per node, the automatic repair when `repair.auto` is on, and binds and spawns the UDP listeners (`udp[]`). Connections are not accepted here: hand
/// [`Running::gateway`] to a [`crate::server::listener::Listener`].
pub async fn start_with_clock(config: Config, clock: Clock) -> Result<Running, ServerError> {
    start_with(config, clock, Arc::new(crate::log::fs::RealFs)).await
}

/// [`start_with_clock`] with the log on a given filesystem: the seam tests
/// use to make the disk fill up or fail ([`crate::log::fs::FaultyFs`]).
pub async fn start_with(
    config: Config,
    clock: Clock,
    fs: Arc<dyn crate::log::fs::Fs>,
) -> Result<Running, ServerError> {
    let config = Arc::new(config);
    create_private_dir(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    // UDP sockets first: a taken port fails the start before the log opens.
    let mut udp = Vec::with_capacity(config.udp.len());
    for u in &config.udp {
        let socket = server::udp::bind(u).await.map_err(ServerError::Listener)?;
        udp.push((socket, u.clone(), Arc::new(server::udp::Counters::new(u))));
    }
    let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
    let log = Log::open(
        LogOptions {
            fs,
            ..log_options(&config)
        },
        &names,
    )
    .await?;
    let http = client::new_client(&config.nodes)
        .map_err(|e| ServerError::Listener(std::io::Error::other(format!("node TLS: {e}"))))?;
    let nodes: Vec<Arc<Node>> = config
        .nodes
        .iter()
        .map(|n| {
            let next = log.cursor(&n.name).unwrap_or_else(|| log.next_seq());
            let health = Health::new(config.health_threshold_up, config.health_threshold_down);
            Arc::new(Node::new(n.clone(), health, next))
        })
        .collect();
    // Paused/draining modes survive a restart: set before any replicator runs.
    crate::admin::state::restore(&config.data_dir, &nodes);
    let orgs = Arc::new(Orgs::new(config.nodes.clone(), http.clone()));

    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let stop = stop_signal(&cancel, &mut tasks);
    for node in &nodes {
        tasks.spawn(health::run_checks(
            node.config.clone(),
            node.health.clone(),
            http.clone(),
            config.health_check_interval,
            config.health_check_timeout,
            stop.clone(),
        ));
        let rep = Replicator {
            node: node.clone(),
            log: log.clone(),
            http: http.clone(),
            dead: DeadLetters::new(&config.data_dir, node.name()),
            max_batch_bytes: config.queue.max_batch_bytes,
            max_records: config.max_batch_records,
            first_delay: config.retry_delay,
            max_delay: config.queue.retry_max_delay,
            timeout: config.write_timeout,
            failure_warn_after: config.failure_warn_after,
            orgs: orgs.clone(),
        };
        tasks.spawn(rep.run(stop.clone()));
    }
    tracing::info!(nodes = ?names, version = env!("CARGO_PKG_VERSION"), "gateway started");

    let repair = Arc::new(crate::repair::auto::Status::new(
        &config.repair,
        &config.nodes,
    ));
    let auto = crate::repair::auto::AutoRepair {
        config: config.repair.clone(),
        log: log.clone(),
        nodes: nodes.clone(),
        http: http.clone(),
        status: repair.clone(),
    };
    if auto.config.auto {
        tasks.spawn(auto.run(cancel.clone()));
    }
    let gateway = Arc::new(Gateway {
        body_budget: BodyBudget::new(config.max_inflight_bytes),
        auth: server::auth::Authenticator::new(&config),
        cluster: Cluster::new(nodes, log.next_seq()),
        catalog: Default::default(),
        config,
        log,
        http,
        orgs,
        clock,
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        started_at: std::time::Instant::now(),
        udp: udp.iter().map(|(_, _, c)| c.clone()).collect(),
        repair,
    });
    for (socket, u, counters) in udp {
        let udp = server::udp::run(gateway.clone(), socket, u, counters, cancel.clone());
        tasks.spawn(udp);
    }
    crate::metrics::set_enabled(gateway.config.metrics_enabled);
    crate::metrics::attach(&gateway);
    Ok(Running {
        gateway,
        cancel,
        tasks,
    })
}

/// The replicators and health checkers stop on a `watch<bool>`; this bridges
/// the token to it, so the token stays the one source of "stop".
fn stop_signal(
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let cancel = cancel.clone();
    tasks.spawn(async move {
        cancel.cancelled().await;
        let _ = tx.send(true);
    });
    rx
}

impl Running {
    /// The shared state handlers serve from.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// A token cancelled when shutdown begins (for tasks a caller adds).
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.child_token()
    }

    /// Serves `listener` until `shutdown` resolves, drains connections, then
    /// stops everything; one `shutdown_timeout` covers the whole drain.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<Stopped, ServerError> {
        let listener = server::listener::Listener::new(listener, self.gateway.clone())?;
        let deadline = listener.run(shutdown).await;
        Ok(self.shutdown_by(deadline).await)
    }

    /// [`Running::shutdown_by`] with the deadline `shutdown_timeout` from now.
    pub async fn shutdown(self) -> Stopped {
        let deadline = Instant::now() + self.gateway.config.shutdown_timeout;
        self.shutdown_by(deadline).await
    }

    /// Cancels every background task, joins them until `deadline`, aborts
    /// what is left, then closes the log (final fsync, cursors persisted).
    pub async fn shutdown_by(mut self, deadline: Instant) -> Stopped {
        self.cancel.cancel();
        let mut stopped = Stopped {
            joined: 0,
            aborted: 0,
        };
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
            stopped.joined += 1;
        }
        stopped.aborted = self.tasks.len();
        if stopped.aborted > 0 {
            tracing::warn!(
                aborted = stopped.aborted,
                timeout = ?self.gateway.config.shutdown_timeout,
                "background tasks did not stop in time"
            );
            self.tasks.shutdown().await;
        }
        if let Err(e) = self.gateway.log.close().await {
            tracing::error!(error = %e, "closing the log failed");
        }
        tracing::info!(
            joined = stopped.joined,
            aborted = stopped.aborted,
            "stopped"
        );
        stopped
    }
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
        direct_io: q.direct_io,
        max_backlog_bytes: q.max_bytes,
        max_age: q.max_age,
        ..LogOptions::default()
    }
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
