//! The gateway's one wall clock, in Unix nanoseconds.
//!
//! Two things depend on "now" and must agree: the timestamp stamped on
//! untimed points at the door (`server::write`), and the `now()` pinned into
//! mutations before they enter the log (`server::query`), so a node that
//! replays either tomorrow stores and deletes exactly what the others did.
//! Keeping the clock in one value (carried by the gateway's state) also lets
//! tests freeze or move time instead of racing the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A wall clock: the system's, or a manual one that tests set.
///
/// Cloning shares the clock: setting a manual clock is seen by every clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stays at `unix_nanos` until [`Clock::set`] moves it.
    pub fn manual(unix_nanos: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(unix_nanos))),
        }
    }

    /// Moves a manual clock (and its clones); a no-op on the system clock.
    pub fn set(&self, unix_nanos: i64) {
        if let Some(m) = &self.manual {
            m.store(unix_nanos, Ordering::Relaxed);
        }
    }

    /// Now, in Unix nanoseconds clamped into `i64` (0 before 1970).
    pub fn now_nanos(&self) -> i64 {
        match &self.manual {
            Some(m) => m.load(Ordering::Relaxed),
            None => system_nanos(),
        }
    }
}

fn system_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::system().now_nanos() > 1_577_836_800_000_000_000);
    }

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let c = Clock::manual(5);
        let d = c.clone();
        assert_eq!(d.now_nanos(), 5);
        c.set(7);
        assert_eq!(d.now_nanos(), 7);
        // Setting the system clock does nothing.
        let s = Clock::system();
        s.set(1);
        assert_ne!(s.now_nanos(), 1);
    }
}
