//! Inmate: a high-availability gateway for InfluxDB OSS (v1 and v2).
//!
//! Clients speak the InfluxDB HTTP API to Inmate; Inmate validates writes at
//! the door, appends them once to a durable shared log, and replicates that log
//! to every configured node with a cursor per node. Reads go to one healthy,
//! caught-up node; mutations travel through the same log so every node applies
//! them in order with the writes around them.
//!
//! Module map (each module's `//!` header is its design doc):
//! - [`clock`]: the one wall clock (write stamps, pinned `now()`).
//! - [`config`]: seed-compatible YAML config, validated into an immutable struct.
//! - [`lineproto`]: line-protocol scanner, gateway timestamps, body decoding.
//! - [`gzip`]: where writes are compressed, once (client gzip passed through).
//! - [`log`]: the durable segmented log with per-node cursors.
//! - [`record`]: what one log entry means (target, credentials, body).
//! - [`query`]: the InfluxQL tokenizer/classifier.
//! - [`backend`]: per-node HTTP clients, health, replicators.
//! - [`server`]: HTTP routes, auth, the gateway entry point.
//! - [`redact`]: the one rule that masks secrets in logs and dead letters.
//! - [`repair`]: `verify`, `repair` and `backfill`: finding and copying what nodes lack.

pub mod app;
pub mod backend;
pub mod clock;
pub mod config;
pub mod gzip;
pub mod lineproto;
pub mod log;
pub mod query;
pub mod record;
pub mod redact;
pub mod repair;
pub mod server;
