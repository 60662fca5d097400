//! Read load per node: reads in flight and a decaying latency average.
//!
//! The read order's first choice is the cheaper of two random candidates
//! (power of two choices), where cost is `(latency EWMA + 100 µs) × (reads in
//! flight + 1)`: a slow node builds up in-flight reads and a high average,
//! and gets fewer new ones. The average halves every 2 s without a sample, so
//! a node that was slow once is probed again instead of starving forever.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::super::Node;

/// How long without a sample halves a node's latency average.
const HALF_LIFE_MS: u64 = 2_000;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicU32,
    ewma_us: AtomicU64,
    last_sample_ms: AtomicU64,
}

impl Load {
    /// Reads sent to this node that have not finished (body included).
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The latency average in µs, decayed by the time since its last sample.
    pub fn latency_us(&self) -> u64 {
        let age = now_ms().saturating_sub(self.last_sample_ms.load(Ordering::Acquire));
        self.ewma_us.load(Ordering::Acquire) >> (age / HALF_LIFE_MS).min(63)
    }

    /// The cost of sending this node one more read (lower is better).
    pub fn cost(&self) -> u64 {
        (self.latency_us() + 100).saturating_mul(u64::from(self.in_flight()) + 1)
    }

    fn sample(&self, us: u64) {
        let decayed = self.latency_us();
        let next = if decayed == 0 {
            us
        } else {
            (decayed * 7 + us) / 8
        };
        self.ewma_us.store(next, Ordering::Release);
        self.last_sample_ms.store(now_ms(), Ordering::Release);
    }
}

/// One read in flight on a node: counted until dropped (keep it alive as
/// long as the response body streams); [`InFlight::answered`] records the
/// time to the response headers in the node's average.
pub struct InFlight {
    node: Arc<Node>,
    started: Instant,
    sampled: bool,
}

impl InFlight {
    pub fn begin(node: &Arc<Node>) -> InFlight {
        node.load.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            node: node.clone(),
            started: Instant::now(),
            sampled: false,
        }
    }

    /// The node answered (headers arrived, or it failed): sample the latency.
    pub fn answered(&mut self) {
        if !self.sampled {
            self.sampled = true;
            let us = self.started.elapsed().as_micros() as u64;
            self.node.load.sample(us.max(1));
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.answered();
        self.node.load.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_and_latency_raise_the_cost() {
        let l = Load::default();
        assert_eq!(l.cost(), 100);
        l.sample(5_000);
        assert_eq!(l.latency_us(), 5_000);
        l.sample(13_000);
        assert_eq!(l.latency_us(), 6_000);
        l.in_flight.store(2, Ordering::Release);
        assert_eq!(l.cost(), 6_100 * 3);
    }
}
