//! The gateway's HTTP server: InfluxDB's API in front of several nodes.
//!
//! The server is what one running gateway shares ([`Gateway`]) and how it
//! answers: [`crate::app`] builds the gateway (the composition root: the
//! durable log, one replicator and one health checker per node, all owned
//! by [`crate::app::Running`]) and hands it to [`listener::Listener`] (the
//! accept loop: connection limit, idle timeouts, graceful drain). Shutdown
//! is graceful and bounded by ONE `shutdown_timeout`: stop accepting, let
//! in-flight requests finish, stop the background tasks, then close the log
//! (final fsync, cursors persisted). The server never imports `app`.
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
//! - `auth.rs`: the gateway's credentials in every form, scopes;
//! - `admin.rs`: the admin API under `/inmate/v1/`;
//! - `udp.rs`: UDP line protocol (`udp[]`), stored like `/write`;
//! - `respond.rs`: InfluxDB's v1 and v2 error shapes, and [`respond::ApiError`],
//!   the error every handler returns;
//! - `request.rs`: the client's request, its bounded body reader, typed
//!   parameters, and the API flavour of a path.
//!
//! The wall clock (write stamps, pinned `now()`) is the gateway's
//! [`Clock`]: `app::serve` uses the system's, `app::serve_with_clock` takes
//! one (tests freeze time with [`Clock::manual`]).

mod admin;
pub mod auth;
pub mod listener;
mod mutate;
mod query;
mod read;
pub mod request;
pub mod respond;
mod routes;
mod status;
pub mod udp;
mod write;

use std::sync::Arc;

use crate::backend::client::HttpClient;
use crate::backend::cluster::Cluster;
use crate::backend::orgs::Orgs;
use crate::clock::Clock;
use crate::config::Config;
use crate::log::Log;
use request::BodyBudget;

/// Shared state of a running gateway.
pub struct Gateway {
    pub config: Arc<Config>,
    pub log: Log,
    /// The nodes, their positions, and the read-your-writes watermarks.
    pub cluster: Cluster,
    /// The databases and retention policies that exist, for the write door.
    pub catalog: crate::backend::catalog::Catalog,
    pub http: HttpClient,
    pub orgs: Arc<Orgs>,
    /// The wall clock for write stamps and pinned `now()`.
    pub clock: Clock,
    /// The gateway's credentials and scopes (`auth_token`, `clients`).
    pub auth: auth::Authenticator,
    /// RFC 3339 start time and a monotonic clock, for `/ready`.
    pub started: String,
    pub started_at: std::time::Instant,
    /// What is left of `max_inflight_bytes` for request bodies.
    pub body_budget: BodyBudget,
    /// One set of counters per UDP listener (`udp[]`), for `/health`.
    pub udp: Vec<Arc<udp::Counters>>,
    /// The automatic repair's progress (`repair.auto`), for `/health`.
    pub repair: Arc<crate::repair::auto::Status>,
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
