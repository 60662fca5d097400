//! A node sliding out of the log's in-memory tail while another node keeps
//! up: whether, and for how long, it may pace the write door
//! ([`super::Cluster::pace`]).
//!
//! Why: at the saturating rate a node can fall behind by a hiccup (its
//! replicator starved of CPU for a moment) while the other node keeps up.
//! Once past the tail cache it reads its records back from disk, which is
//! more work per record on the same busy cores, so it does not catch up
//! while the load lasts (BENCHMARKS 1j: one node 3,685 records behind at
//! the end of a 10 s run). Pacing only while *every* node lags cannot see
//! it. So a node whose lag is between half the tail and the whole tail may
//! pace writes too, for at most [`BUDGET`] in any [`WINDOW`] (a bucket
//! that refills at that rate): enough for a fast node to get back, a few
//! times over, and a small share for a node that is really slow, which
//! then slides out of the tail and catches up from disk without holding
//! anyone back. A node already past the tail (back from an outage, say)
//! never paces. A budget per slide would not do: a slow node that catches
//! up *because* writes wait for it slides again at once, and a fresh budget
//! each time held the door to its rate (measured: ~50 writes/s instead of
//! ~1,000 behind a node taking 20 ms per request; `tests/pacing.rs`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most a node may pace writes within [`WINDOW`], all slides together.
pub const BUDGET: Duration = Duration::from_secs(2);
/// The budget refills at `BUDGET` per `WINDOW`.
pub const WINDOW: Duration = Duration::from_secs(30);
/// The most one call charges: a gap between calls is time no write waited.
const MAX_CHARGE: Duration = Duration::from_millis(50);

/// One node's pacing budget.
#[derive(Debug)]
pub struct Laggard {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Pacing time left.
    left: Duration,
    /// The last call, and whether it paced.
    last: Option<(Instant, bool)>,
}

impl Default for Laggard {
    fn default() -> Self {
        Laggard {
            state: Mutex::new(Bucket {
                left: BUDGET,
                last: None,
            }),
        }
    }
}

impl Laggard {
    /// Whether this node, `lag` tails behind (see
    /// [`crate::log::Log::tail_lag`]), may pace writes at `now`.
    pub fn may_pace(&self, lag: f64, now: Instant) -> bool {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, paced)) = b.last {
            let gap = now.saturating_duration_since(at);
            if paced {
                b.left = b.left.saturating_sub(gap.min(MAX_CHARGE));
            }
            let refill = gap.mul_f64(BUDGET.as_secs_f64() / WINDOW.as_secs_f64());
            b.left = (b.left + refill).min(BUDGET);
        }
        // Not down to the last crumb: a call that paces is charged for the
        // gap to the next one, up to `MAX_CHARGE`.
        let pace = (0.5..1.0).contains(&lag) && b.left >= MAX_CHARGE;
        b.last = Some((now, pace));
        pace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls every 10 ms from `from` to `to` ms at `lag`; how many paced.
    fn run(l: &Laggard, t0: Instant, from: u64, to: u64, lag: f64) -> usize {
        (from..to)
            .step_by(10)
            .filter(|ms| l.may_pace(lag, t0 + Duration::from_millis(*ms)))
            .count()
    }

    #[test]
    fn a_slide_paces_for_the_budget_then_not() {
        let l = Laggard::default();
        let t0 = Instant::now();
        assert_eq!(run(&l, t0, 0, 1_000, 0.2), 0, "keeping up");
        // 3 s in the zone: ~2 s of budget (plus what refills meanwhile).
        let paced = run(&l, t0, 1_000, 4_000, 0.7);
        assert!((200..=215).contains(&paced), "{paced}");
        // Spent: what refills (2 s per 30 s) is all it gets, ~0.4 s of 6 s.
        let later = run(&l, t0, 4_000, 10_000, 0.7);
        assert!((30..=50).contains(&later), "{later}");
    }

    #[test]
    fn past_the_tail_never_paces() {
        let l = Laggard::default();
        let t0 = Instant::now();
        assert_eq!(run(&l, t0, 0, 1_000, 1.0), 0);
        assert_eq!(run(&l, t0, 1_000, 2_000, f64::INFINITY), 0);
        // On its way back from disk it may pace once it is in the zone.
        assert!(l.may_pace(0.95, t0 + Duration::from_millis(2_000)));
    }

    #[test]
    fn a_slow_node_sliding_again_and_again_gets_a_small_share() {
        // Catches up within 100 ms whenever writes wait, then slides again.
        let l = Laggard::default();
        let t0 = Instant::now();
        let mut paced = 0;
        for k in 0..600u64 {
            paced += run(&l, t0, k * 200, k * 200 + 100, 0.7);
            paced += run(&l, t0, k * 200 + 100, k * 200 + 200, 0.3);
        }
        // 120 s in all, half of it in the zone: at most the budget plus
        // 2 s per 30 s refilled, i.e. ~10 s (1,000 calls), not 60 s.
        assert!(paced <= 1_010, "{paced} of 6,000 calls paced");
        assert!(paced >= 900, "{paced}");
    }

    #[test]
    fn short_slides_of_a_fast_node_are_all_paced() {
        // 50 ms slides, one a second: far inside the refill rate.
        let l = Laggard::default();
        let t0 = Instant::now();
        for k in 0..60u64 {
            assert_eq!(run(&l, t0, k * 1_000, k * 1_000 + 50, 0.6), 5, "slide {k}");
            run(&l, t0, k * 1_000 + 50, k * 1_000 + 1_000, 0.1);
        }
    }
}
