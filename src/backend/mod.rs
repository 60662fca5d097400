//! The nodes behind the gateway: one [`Node`] per configured InfluxDB,
//! grouped in a [`cluster::Cluster`].
//!
//! Each node has
//! - a [`health::Health`] fed by active `/ping` checks and by the outcome of
//!   real requests (passive): one state word, separate up/down thresholds;
//! - a replicator task ([`replicator`]) that reads the shared durable log from
//!   the node's cursor, coalesces consecutive writes with the same target into
//!   large requests (stored bodies back to back; a client's gzip passed
//!   through, see [`crate::gzip`]), retries with capped exponential backoff,
//!   dead-letters what the node permanently rejects ([`deadletter`], never
//!   passing a record it could not park) and only then advances the cursor;
//! - its position: [`Node::next_unapplied`], the first log sequence the node
//!   has not applied. [`Node::applied_through`] is the only question asked of
//!   it ("has it applied `seq`?"); write consistency levels, read-your-writes
//!   routing and mutation answers all wait on it through the cluster;
//! - an operator mode ([`cluster::Admin`]) and its read load
//!   ([`cluster::Load`]);
//! - for a plain-http node, its idle read connections ([`h1::Pool`]: reads
//!   run in the caller's task instead of through the shared hyper client).
//!
//! Across nodes, [`catalog::Catalog`] keeps which databases and retention
//! policies exist, so the write door can answer InfluxDB's 404.
//!
//! The cluster also paces the write door to delivery
//! ([`cluster::Cluster::pace`]): when every up node lags half the log's
//! in-memory tail, new writes wait briefly, so the gateway never
//! acknowledges faster than it can deliver.
//!
//! Mutations travel through the same log, so a node applies them in order
//! with the writes around them. The node's answer to a mutation is kept in a
//! small map (`answers`) for the client request that is waiting on it.

pub mod catalog;
pub mod client;
pub mod cluster;
pub mod deadletter;
pub mod h1;
pub mod health;
pub mod orgs;
pub mod replicator;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;

use crate::config::NodeConfig;
use health::Health;

/// A node's answer to a replicated mutation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Most mutation answers kept per node; older ones are dropped (nobody can
/// still be waiting for them after `query_timeout`).
const MAX_ANSWERS: usize = 1024;

pub struct Node {
    pub config: NodeConfig,
    pub health: Arc<Health>,
    /// Read load, for choosing among nodes that may answer a read.
    pub load: cluster::Load,
    /// Idle connections for reads when the node is plain http ([`h1`]).
    pub h1: h1::Pool,
    /// Its episode of sliding out of the log's tail ([`cluster::Laggard`]).
    pub laggard: cluster::Laggard,
    next_unapplied: tokio::sync::watch::Sender<u64>,
    admin: std::sync::atomic::AtomicU8,
    answers: Mutex<BTreeMap<u64, Answer>>,
}

impl Node {
    /// A node whose first unapplied log sequence is `next_unapplied`.
    pub fn new(config: NodeConfig, health: Health, next_unapplied: u64) -> Node {
        Node {
            config,
            health: Arc::new(health),
            load: cluster::Load::default(),
            h1: h1::Pool::default(),
            laggard: cluster::Laggard::default(),
            next_unapplied: tokio::sync::watch::Sender::new(next_unapplied),
            admin: std::sync::atomic::AtomicU8::new(cluster::Admin::Enabled as u8),
            answers: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The first log sequence this node has not applied yet.
    pub fn next_unapplied(&self) -> u64 {
        *self.next_unapplied.borrow()
    }

    /// Whether this node has applied log entry `seq` (and all before it).
    pub fn applied_through(&self, seq: u64) -> bool {
        self.next_unapplied() > seq
    }

    /// Records that every entry below `next` is applied (or passed) here.
    pub(crate) fn advance_next_unapplied(&self, next: u64) {
        self.next_unapplied.send_if_modified(|v| {
            if next > *v {
                *v = next;
                true
            } else {
                false
            }
        });
    }

    /// The operator's mode for this node.
    pub fn admin(&self) -> cluster::Admin {
        cluster::Admin::from_u8(self.admin.load(std::sync::atomic::Ordering::Acquire))
    }

    pub(crate) fn set_admin(&self, mode: cluster::Admin) {
        self.admin
            .store(mode as u8, std::sync::atomic::Ordering::Release);
    }

    /// Up and not paused or drained by the operator: may take new reads.
    pub fn serves_reads(&self) -> bool {
        self.health.is_up() && self.admin() == cluster::Admin::Enabled
    }

    /// Stores the node's answer for mutation `seq`; called before the
    /// position advances past it, so a waiter that sees `applied_through`
    /// always finds the answer.
    pub(crate) fn put_answer(&self, seq: u64, answer: Answer) {
        if let Ok(mut m) = self.answers.lock() {
            m.insert(seq, answer);
            while m.len() > MAX_ANSWERS {
                m.pop_first();
            }
        }
    }

    pub fn take_answer(&self, seq: u64) -> Option<Answer> {
        self.answers.lock().ok()?.remove(&seq)
    }

    /// Waits until the node has applied `seq` (or `deadline` passes).
    pub async fn wait_applied(&self, seq: u64, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.next_unapplied.subscribe();
        tokio::time::timeout_at(deadline, rx.wait_for(|next| *next > seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
