//! The config file as written by an operator: every key optional, every
//! unknown key an error.
//!
//! This mirrors the original Go inmate's `config.yaml` key for key, plus the
//! keys Inmate adds. It is deliberately dumb: defaults and checks live in
//! `validate/`, so the file's shape and its meaning can be read separately.

use serde::Deserialize;

/// A duration written either as a number of seconds (the seed's style, e.g.
/// `retry_delay: 1`) or as a humantime string (`100ms`, `30s`, `7d`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(f64),
    Text(String),
}

/// A byte size written as a number of bytes or with a unit (`10GiB`, `1MB`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

/// A string that operators sometimes write as a bare number (`auth_token: 123456`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawString {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl RawString {
    pub fn into_string(self) -> String {
        match self {
            RawString::Text(s) => s,
            RawString::Int(i) => i.to_string(),
            RawString::Float(f) => f.to_string(),
            RawString::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAddress {
    pub url: Option<String>,
    pub token: Option<RawString>,
    pub name: Option<String>,
    pub username: Option<RawString>,
    pub password: Option<RawString>,
    pub gzip: Option<RawGzip>,
    pub tls: Option<RawNodeTls>,
}

/// `addresses[].tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodeTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

/// Top-level `tls`: the listener's certificate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub fsync: Option<String>,
    pub fsync_interval: Option<RawDuration>,
    pub max_batch_bytes: Option<RawSize>,
    pub max_bytes: Option<RawSize>,
    pub max_age: Option<RawDuration>,
    pub retry_max_delay: Option<RawDuration>,
    pub segment_bytes: Option<RawSize>,
    pub cache_bytes: Option<RawSize>,
    pub direct_io: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    // --- keys of the original inmate ---
    pub addresses: Option<Vec<RawAddress>>,
    pub bind_address: Option<String>,
    pub port: Option<i64>,
    pub retry_count: Option<i64>,
    pub retry_delay: Option<RawDuration>,
    pub query_timeout: Option<RawDuration>,
    pub channel_size: Option<i64>,
    pub auth_token: Option<RawString>,
    // --- keys Inmate adds ---
    pub data_dir: Option<String>,
    pub allow_anonymous: Option<bool>,
    pub write_consistency: Option<String>,
    pub write_timeout: Option<RawDuration>,
    pub max_body_size: Option<RawSize>,
    pub request_timeout: Option<RawDuration>,
    pub health_check_interval: Option<RawDuration>,
    pub health_check_timeout: Option<RawDuration>,
    pub health_threshold: Option<i64>,
    pub read_lag_tolerance: Option<i64>,
    pub shutdown_timeout: Option<RawDuration>,
    pub log_level: Option<String>,
    pub queue: Option<RawQueue>,
    pub read_wait: Option<RawDuration>,
    pub read_consistency: Option<String>,
    pub max_connections: Option<i64>,
    pub max_inflight_bytes: Option<RawSize>,
    pub health_threshold_up: Option<i64>,
    pub health_threshold_down: Option<i64>,
    pub log_format: Option<String>,
    pub metrics_bind: Option<String>,
    pub metrics_enabled: Option<bool>,
    pub clients: Option<Vec<RawClient>>,
    pub public_health: Option<bool>,
    pub tls: Option<RawListenerTls>,
    pub udp: Option<Vec<RawUdp>>,
    pub repair: Option<RawRepair>,
    pub worker_threads: Option<RawCount>,
}

/// A count that may also be a word (`worker_threads: 2` or `auto`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCount {
    Int(i64),
    Word(String),
}

/// `repair`: the opt-in background repair.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepair {
    pub auto: Option<bool>,
    pub interval: Option<RawDuration>,
    pub lookback: Option<RawDuration>,
}

/// One UDP line-protocol listener (`udp[]`), InfluxDB's `[[udp]]` keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdp {
    pub bind_address: Option<String>,
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub precision: Option<String>,
    pub batch_size: Option<i64>,
    pub batch_pending: Option<i64>,
    pub batch_timeout: Option<RawDuration>,
    pub read_buffer: Option<RawSize>,
    pub max_datagram_size: Option<RawSize>,
}

/// One named client of the gateway (`clients[]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub name: Option<String>,
    pub token: Option<RawString>,
    pub password_hash: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub databases: Option<Vec<String>>,
}

/// `addresses[].gzip`: `true`, `false`, or `"auto"`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawGzip {
    Bool(bool),
    Word(String),
}
