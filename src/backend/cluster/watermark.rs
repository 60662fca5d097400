//! Read-your-writes watermarks: per database, the log sequence of the last
//! entry touching it, and one global mark for entries that change what
//! exists (databases, retention policies, users).
//!
//! They are recorded right after an entry is appended, before the client
//! hears 2xx, so a read that arrives after the answer sees the mark. They
//! live in memory: at start the global mark covers the whole existing log,
//! so after a restart reads wait as they would without marks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::scope::Scope;

#[derive(Debug, Default)]
pub struct Watermarks {
    /// `seq + 1` of the last global entry; 0 for none.
    global_next: AtomicU64,
    /// Per database: the sequence of the last entry touching it.
    databases: Mutex<HashMap<String, u64>>,
}

impl Watermarks {
    /// Marks where every entry before `next_seq` (the log's end at start)
    /// counts as global.
    pub fn starting_at(next_seq: u64) -> Watermarks {
        Watermarks {
            global_next: AtomicU64::new(next_seq),
            databases: Mutex::new(HashMap::new()),
        }
    }

    fn global(&self) -> Option<u64> {
        self.global_next.load(Ordering::Acquire).checked_sub(1)
    }

    /// Records that log entry `seq` touches `scope`.
    pub fn touch(&self, scope: &Scope, seq: u64) {
        match scope {
            Scope::Databases(names) => {
                if let Ok(mut m) = self.databases.lock() {
                    for n in names {
                        let e = m.entry(n.clone()).or_insert(seq);
                        *e = (*e).max(seq);
                    }
                }
            }
            Scope::Global | Scope::All => {
                self.global_next.fetch_max(seq + 1, Ordering::AcqRel);
            }
        }
    }

    /// The sequence a node must have applied to answer a read of `scope`
    /// (`None`: nothing to wait for). `last` is the log's last sequence,
    /// what a read of everything needs.
    pub fn needed(&self, scope: &Scope, last: Option<u64>) -> Option<u64> {
        match scope {
            Scope::All => last,
            Scope::Global => self.global(),
            Scope::Databases(names) => {
                let m = self.databases.lock().ok();
                let own = names
                    .iter()
                    .filter_map(|n| m.as_ref().and_then(|m| m.get(n).copied()))
                    .max();
                own.max(self.global())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_their_databases_and_what_exists() {
        let w = Watermarks::starting_at(0);
        let a = Scope::Databases(vec!["a".into()]);
        let b = Scope::Databases(vec!["b".into()]);
        assert_eq!(w.needed(&a, Some(9)), None);
        w.touch(&a, 5);
        w.touch(&a, 3);
        assert_eq!(w.needed(&a, Some(9)), Some(5));
        assert_eq!(w.needed(&b, Some(9)), None);
        assert_eq!(w.needed(&Scope::All, Some(9)), Some(9));
        w.touch(&Scope::Global, 2);
        assert_eq!(w.needed(&b, Some(9)), Some(2));
        assert_eq!(w.needed(&a, Some(9)), Some(5));
        assert_eq!(w.needed(&Scope::Global, Some(9)), Some(2));
        assert_eq!(Watermarks::starting_at(7).needed(&b, Some(6)), Some(6));
    }
}
