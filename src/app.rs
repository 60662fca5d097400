//! Process-level glue for the binary: logging setup, binding the listener,
//! and turning SIGINT/SIGTERM into the server's shutdown future.
//!
//! Kept in the library so `src/main.rs` stays a thin CLI parser.

use tokio::net::TcpListener;

use crate::config::Config;
use crate::server::{self, ServerError};

/// Installs the JSON log subscriber. `RUST_LOG` overrides the config's level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_writer(std::io::stdout)
        .try_init();
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
    server::serve(listener, config, shutdown_signal()).await
}
