//! Process-level glue for the binary: logging setup, binding the listeners
//! (the gateway's, and the metrics one when `metrics_bind` is set),
//! and turning SIGINT/SIGTERM into the server's shutdown future.
//!
//! Kept in the library so `src/main.rs` stays a thin CLI parser.

use tokio::net::TcpListener;

use crate::config::{Config, LogFormat};
use crate::server::{self, ServerError};

/// Installs the log subscriber per `log_format` (`auto`: text on a terminal,
/// JSON otherwise). `RUST_LOG` overrides the config's level.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    let _ = if json {
        fmt.json().with_current_span(false).try_init()
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
    server::serve(listener, config, shutdown_signal()).await
}
