//! The nodes behind the gateway: one [`Node`] per configured InfluxDB.
//!
//! Each node has
//! - a [`health::Health`] fed by active `/ping` checks and by the outcome of
//!   real requests (passive);
//! - a replicator task ([`replicator`]) that reads the shared durable log from
//!   the node's cursor, coalesces consecutive writes with the same target into
//!   large gzip requests, retries with capped exponential backoff, dead-letters
//!   what the node permanently rejects ([`deadletter`]) and only then advances
//!   the cursor;
//! - an `acked` watch: the next log sequence the node has not yet applied.
//!   Write consistency levels, read-your-writes routing and mutation answers
//!   all wait on it.
//!
//! Mutations travel through the same log, so a node applies them in order
//! with the writes around them. The node's answer to a mutation is kept in a
//! small map (`answers`) for the client request that is waiting on it.

pub mod client;
pub mod deadletter;
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
    acked: tokio::sync::watch::Sender<u64>,
    answers: Mutex<BTreeMap<u64, Answer>>,
}

impl Node {
    pub fn new(config: NodeConfig, threshold: u32, acked: u64) -> Node {
        Node {
            config,
            health: Arc::new(Health::new(threshold)),
            acked: tokio::sync::watch::Sender::new(acked),
            answers: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The next log sequence this node has not applied yet.
    pub fn acked(&self) -> u64 {
        *self.acked.borrow()
    }

    pub fn watch_acked(&self) -> tokio::sync::watch::Receiver<u64> {
        self.acked.subscribe()
    }

    /// Marks everything below `next` as applied on this node.
    pub(crate) fn set_acked(&self, next: u64) {
        self.acked.send_if_modified(|v| {
            if next > *v {
                *v = next;
                true
            } else {
                false
            }
        });
    }

    /// Stores the node's answer for mutation `seq`; called before `set_acked`
    /// so a waiter that sees the ack always finds the answer.
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
        let mut rx = self.watch_acked();
        tokio::time::timeout_at(deadline, rx.wait_for(|v| *v > seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
