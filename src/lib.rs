//! Inmate: a high-availability gateway for InfluxDB OSS (v1 and v2).
//!
//! Clients speak the InfluxDB HTTP API to Inmate; Inmate validates writes at
//! the door, appends them once to a durable shared log, and replicates that log
//! to every configured node with a cursor per node. Reads go to one healthy,
//! caught-up node; mutations travel through the same log so every node applies
//! them in order with the writes around them.
//!
//! Data flow (each module's `//!` header is its design doc):
//!
//! ```text
//! writes:  server (routes, auth, request) ─► lineproto (validate, stamp)
//!          ─► gzip (stored form: client's gzip, or once) ─► log (append, fsync)
//!          ─► backend::replicator (one per node, coalesce, retry, dead letters)
//!          ─► node
//! reads:   server (routes, auth) ─► query (classify InfluxQL)
//!          ─► backend::cluster (watermarks, read order, load) ─► node
//! mutations: like writes, through the log; answers collected by the cluster
//! ```
//!
//! Modules:
//! - [`app`]: the composition root: `start(config) -> Running`, one
//!   cancellation token and one deadline for every background task.
//! - [`server`]: routes, credentials and scopes (`server::auth`), request
//!   decoding, the accept loop (`server::listener`), handlers.
//! - [`lineproto`]: line-protocol scanner, gateway timestamps, body decoding.
//! - [`gzip`]: where writes are compressed, once (client gzip passed through).
//! - [`log`]: the durable segmented log with per-node cursors, its
//!   filesystem seam, the node manifest, recovery.
//! - [`record`]: what one log entry means (target, credentials, body).
//! - [`backend`]: per-node HTTP client, health, replicators, and the
//!   [`backend::cluster`] façade (the one "applied up to", read order).
//! - [`query`]: the InfluxQL tokenizer, classifier and name scan.
//! - [`config`]: seed-compatible YAML config, validated into an immutable struct.
//! - [`clock`]: the one wall clock (write stamps, pinned `now()`).
//! - [`metrics`]: Prometheus `/metrics` (events where they happen, state at scrape).
//! - [`redact`]: the one rule that masks secrets in logs and dead letters.
//! - [`logfmt`]: how a log line is written (JSON, same shape as
//!   `tracing_subscriber`'s, without its per-field serializer).
//! - [`logsink`]: where the gateway's own log lines go (batched to stdout).
//! - [`admin`]: the admin API (`/inmate/v1/`) and the operator's CLI commands.
//! - [`repair`]: `verify`, `repair` and `backfill`: finding and copying what nodes lack.

// The crate has no `unsafe` of its own (SIMD, syscalls and TLS come from
// audited dependencies); keep it that way.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod backend;
pub mod clock;
pub mod config;
pub mod gzip;
pub mod lineproto;
pub mod log;
pub mod logfmt;
pub mod logsink;
pub mod metrics;
pub mod query;
pub mod record;
pub mod redact;
pub mod repair;
pub mod server;
