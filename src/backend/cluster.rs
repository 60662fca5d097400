//! The cluster: every node, and the one place that decides what "caught up"
//! means.
//!
//! A node's position is [`Node::next_unapplied`]; the only question asked of
//! it is [`Node::applied_through`]. Everything that waits on nodes lives here:
//! - reads: [`Cluster::read_order`] yields nodes in the order a read tries
//!   them, in Pingora's style: a first choice, then fallbacks. The caller
//!   passes its accept rule (has the node applied what the read must see,
//!   see [`watermark`]); among nodes that accept, the first choice is the
//!   cheaper of two random ones by [`Load`] (in-flight reads × latency EWMA).
//!   Fallbacks: the other accepting nodes by cost, then up nodes that do not
//!   accept, freshest first (the caller marks those answers stale), then
//!   nodes marked down as a last resort. Nodes the operator paused or is
//!   draining ([`Admin`]) are never tried;
//! - [`Cluster::wait_for_reader`]: bounded wait until some node that may
//!   take reads has applied a sequence;
//! - [`Cluster::wait_applied_by`]: a write's consistency level;
//! - [`Cluster::collect_answers`]: a mutation's per-node answers;
//! - writes: [`Cluster::pace`] holds the write door back while every up node
//!   lags half the log's in-memory tail, so acknowledgements never outrun
//!   delivery when the gateway itself is the bottleneck.
//!
//! Replication: a draining node keeps applying the log; a paused node gets
//! no deliveries (its replicator waits, see [`super::replicator`]) and
//! catches up from its backlog when the operator resumes it. Mutations do
//! not wait for a paused node's answer.

mod laggard;
mod load;
mod scope;
mod watermark;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::RngExt;

use super::{Answer, Node};
pub use laggard::Laggard;
pub use load::{InFlight, Load};
pub use scope::Scope;
pub use watermark::Watermarks;

/// The operator's mode for a node (the admin API sets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Admin {
    /// Takes reads.
    Enabled = 0,
    /// Takes no reads and gets no deliveries (maintenance); its backlog
    /// grows in the log until it is enabled again.
    Paused = 1,
    /// Takes no new reads; the ones in flight finish ([`Load::in_flight`]
    /// tells when it is idle). Still replicated.
    Draining = 2,
}

impl Admin {
    pub(crate) fn from_u8(v: u8) -> Admin {
        match v {
            1 => Admin::Paused,
            2 => Admin::Draining,
            _ => Admin::Enabled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Admin::Enabled => "enabled",
            Admin::Paused => "paused",
            Admin::Draining => "draining",
        }
    }
}

pub struct Cluster {
    nodes: Vec<Arc<Node>>,
    marks: Watermarks,
}

/// A mutation's outcome: the nodes that answered in time, and the rest.
pub struct Collected {
    pub answers: Vec<(String, Answer)>,
    pub queued: Vec<String>,
}

impl Cluster {
    /// `next_seq` is the log's end at start (see [`Watermarks::starting_at`]).
    pub fn new(nodes: Vec<Arc<Node>>, next_seq: u64) -> Cluster {
        Cluster {
            nodes,
            marks: Watermarks::starting_at(next_seq),
        }
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Node>> {
        self.nodes.iter()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn marks(&self) -> &Watermarks {
        &self.marks
    }

    /// Pauses, drains or enables a node by name; false if there is none.
    pub fn set_admin(&self, name: &str, mode: Admin) -> bool {
        let node = self.nodes.iter().find(|n| n.name() == name);
        if let Some(n) = node {
            n.set_admin(mode);
            tracing::info!(node = %name, mode = mode.as_str(), "node mode changed by operator");
        }
        node.is_some()
    }

    /// Paces the write door to delivery: waits (up to `max_wait`) while
    /// every node that is up and not paused lags by at least half the log's
    /// in-memory tail ([`crate::log::Log::tail_lag`]), or while one of them
    /// is sliding out of the tail, for a bounded episode ([`Laggard`]).
    ///
    /// Why: past that point the fastest node would read its backlog back
    /// from disk, and a gateway that acknowledges faster than it can deliver
    /// only builds a backlog, which then costs more to deliver. So when the
    /// gateway itself (not a node) is the bottleneck, acknowledgements slow
    /// to the delivery rate. A slow or down node never paces anyone for more
    /// than an episode's 2 s while another node keeps up (a node past the
    /// tail not at all), and after `max_wait` the write is taken anyway:
    /// the log absorbs what the nodes cannot take yet.
    pub async fn pace(&self, log: &crate::log::Log, max_wait: Duration) {
        let deadline = tokio::time::Instant::now() + max_wait;
        while tokio::time::Instant::now() < deadline && self.behind(log) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every node that is up and not paused lags by half the tail or more,
    /// or one of them may pace as a [`Laggard`] (false when there is no
    /// such node).
    fn behind(&self, log: &crate::log::Log) -> bool {
        let now = std::time::Instant::now();
        let (mut any, mut all, mut laggard) = (false, true, false);
        for n in self.nodes.iter() {
            if !n.health.is_up() || n.admin() == Admin::Paused {
                continue;
            }
            let lag = log.tail_lag(n.next_unapplied());
            any = true;
            all &= lag >= 0.5;
            // Every node's episode is updated, so no short cut.
            laggard |= n.laggard.may_pace(lag, now);
        }
        any && (all || laggard)
    }

    /// Whether some node that may take reads satisfies `accept`.
    pub fn any_reader(&self, accept: impl Fn(&Node) -> bool) -> bool {
        self.nodes.iter().any(|n| n.serves_reads() && accept(n))
    }

    /// Waits until some node that may take reads has applied `seq`, or
    /// `deadline` passes; true if one has.
    pub async fn wait_for_reader(&self, seq: u64, deadline: tokio::time::Instant) -> bool {
        let waits: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.serves_reads())
            .map(|n| {
                Box::pin(async move {
                    if n.wait_applied(seq, deadline).await {
                        Ok(())
                    } else {
                        Err(())
                    }
                })
            })
            .collect();
        !waits.is_empty() && futures_util::future::select_ok(waits).await.is_ok()
    }

    /// The order a read tries nodes in (see the module doc); each item says
    /// whether that node's answer is stale (it does not `accept`).
    pub fn read_order(&self, accept: impl Fn(&Node) -> bool) -> ReadOrder {
        let mut tiers: [Vec<Arc<Node>>; 3] = Default::default();
        for n in &self.nodes {
            if n.admin() != Admin::Enabled {
                continue;
            }
            let tier = match (n.health.is_up(), accept(n)) {
                (true, true) => 0,
                (true, false) => 1,
                (false, _) => 2,
            };
            tiers[tier].push(n.clone());
        }
        // Stale fallbacks: the freshest first.
        tiers[1].sort_by_key(|n| std::cmp::Reverse(n.next_unapplied()));
        ReadOrder { tiers, tier: 0 }
    }

    /// Waits until `needed` nodes have applied `seq`; returns how many did.
    pub async fn wait_applied_by(&self, seq: u64, needed: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waits: futures_util::stream::FuturesUnordered<_> = self
            .nodes
            .iter()
            .map(|n| n.wait_applied(seq, deadline))
            .collect();
        let mut confirmed = 0;
        while let Some(ok) = waits.next().await {
            if ok {
                confirmed += 1;
                if confirmed >= needed {
                    break;
                }
            }
        }
        confirmed
    }

    /// Waits (until `timeout`) for the nodes that can apply mutation `seq`
    /// soon (up, and at most `window` entries behind it) and takes their
    /// answers; every other node is queued.
    pub async fn collect_answers(&self, seq: u64, window: u64, timeout: Duration) -> Collected {
        let deadline = tokio::time::Instant::now() + timeout;
        let waited: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.health.is_up() && n.admin() != Admin::Paused)
            .filter(|n| n.next_unapplied() + window >= seq)
            .collect();
        let applied =
            futures_util::future::join_all(waited.iter().map(|n| n.wait_applied(seq, deadline)))
                .await;
        let answers: Vec<(String, Answer)> = waited
            .iter()
            .zip(applied)
            .filter(|(_, applied)| *applied)
            .filter_map(|(n, _)| Some((n.name().to_string(), n.take_answer(seq)?)))
            .collect();
        let queued = self
            .nodes
            .iter()
            .map(|n| n.name())
            .filter(|n| !answers.iter().any(|(a, _)| a == n))
            .map(str::to_string)
            .collect();
        Collected { answers, queued }
    }
}

impl<'a> IntoIterator for &'a Cluster {
    type Item = &'a Arc<Node>;
    type IntoIter = std::slice::Iter<'a, Arc<Node>>;

    fn into_iter(self) -> Self::IntoIter {
        self.nodes.iter()
    }
}

/// Nodes in the order a read tries them: `(node, stale)`. The first choice
/// among the accepting nodes is made lazily, when asked, so a fallback sees
/// the load as it is then.
pub struct ReadOrder {
    tiers: [Vec<Arc<Node>>; 3],
    tier: usize,
}

impl ReadOrder {
    /// Takes the cheaper of two random accepting nodes (power of two choices).
    fn pick_by_load(nodes: &mut Vec<Arc<Node>>) -> Option<Arc<Node>> {
        let i = match nodes.len() {
            0 => return None,
            1 => 0,
            n => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                if nodes[b].load.cost() < nodes[a].load.cost() {
                    b
                } else {
                    a
                }
            }
        };
        Some(nodes.swap_remove(i))
    }
}

impl Iterator for ReadOrder {
    type Item = (Arc<Node>, bool);

    fn next(&mut self) -> Option<(Arc<Node>, bool)> {
        while self.tier < self.tiers.len() {
            let tier = &mut self.tiers[self.tier];
            let next = if self.tier == 0 {
                ReadOrder::pick_by_load(tier)
            } else if tier.is_empty() {
                None
            } else {
                Some(tier.remove(0))
            };
            match next {
                Some(n) => return Some((n, self.tier > 0)),
                None => self.tier += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::health::Health;

    fn node(name: &str, next: u64) -> Arc<Node> {
        let config = crate::config::NodeConfig {
            name: name.into(),
            url: url::Url::parse("http://127.0.0.1:1").unwrap(),
            token: None,
            username: None,
            password: None,
            gzip: crate::config::WireGzip::Auto,
            tls: Default::default(),
        };
        Arc::new(Node::new(config, Health::new(1, 1), next))
    }

    fn names(order: ReadOrder) -> Vec<(String, bool)> {
        order.map(|(n, s)| (n.name().to_string(), s)).collect()
    }

    #[test]
    fn read_order_tiers_and_admin() {
        let (a, b, c, d) = (node("a", 3), node("b", 9), node("c", 5), node("d", 9));
        d.health.failure("x");
        let cl = Cluster::new(vec![a.clone(), b.clone(), c.clone(), d.clone()], 0);
        let order = names(cl.read_order(|n| n.applied_through(6)));
        assert_eq!(
            order,
            [
                ("b".into(), false),
                ("c".into(), true),
                ("a".into(), true),
                ("d".into(), true)
            ]
        );
        assert!(cl.set_admin("b", Admin::Paused));
        assert!(!cl.set_admin("zz", Admin::Paused));
        let order = names(cl.read_order(|n| n.applied_through(6)));
        assert_eq!(order[0], ("c".into(), true), "a paused node takes no reads");
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn first_choice_prefers_the_cheaper_node() {
        let (fast, slow) = (node("fast", 0), node("slow", 0));
        let cl = Cluster::new(vec![fast.clone(), slow.clone()], 0);
        let _busy: Vec<_> = (0..3).map(|_| InFlight::begin(&slow)).collect();
        for _ in 0..20 {
            let first = cl.read_order(|_| true).next().unwrap().0;
            assert_eq!(first.name(), "fast");
        }
    }

    #[tokio::test]
    async fn waits_use_applied_through() {
        let a = node("a", 3);
        let cl = Cluster::new(vec![a.clone()], 0);
        let soon = tokio::time::Instant::now() + Duration::from_millis(20);
        assert!(
            !cl.wait_for_reader(3, soon).await,
            "next_unapplied 3 has not applied 3"
        );
        assert!(cl.wait_for_reader(2, soon).await);
        a.advance_next_unapplied(4);
        assert_eq!(cl.wait_applied_by(3, 1, Duration::from_millis(20)).await, 1);
    }
}
