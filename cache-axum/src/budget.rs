//! The byte budget: what this process stored, oldest first, so that past the budget
//! the oldest entries are deleted from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Budget {
    inner: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    /// (key, until_ms, serial), oldest write first; a record whose serial is not its
    /// key's latest is stale and skipped.
    order: VecDeque<(String, u64, u64)>,
    /// Each key's latest write: (serial, weight).
    latest: HashMap<String, (u64, usize)>,
    /// Bytes of the latest writes.
    total: usize,
    serial: u64,
}

impl Ledger {
    fn is_latest(&self, key: &str, serial: u64) -> bool {
        self.latest.get(key).is_some_and(|l| l.0 == serial)
    }
    fn drop_latest(&mut self, key: &str) {
        if let Some((_, w)) = self.latest.remove(key) {
            self.total -= w;
        }
    }
}

impl Budget {
    /// Record a write of `weight` bytes kept until `until_ms`; returns the keys to
    /// delete to come back under `max` bytes (never the key just written).
    pub fn record(
        &self,
        key: &str,
        weight: usize,
        until_ms: u64,
        now_ms: u64,
        max: usize,
    ) -> Vec<String> {
        let mut l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        l.serial += 1;
        let serial = l.serial;
        l.drop_latest(key);
        l.latest.insert(key.to_owned(), (serial, weight));
        l.total += weight;
        l.order.push_back((key.to_owned(), until_ms, serial));
        if l.order.len() > 2 * l.latest.len() + 64 {
            // Rewrites left stale records behind an old entry: keep the live ones.
            let Ledger { order, latest, .. } = &mut *l;
            order.retain(|(k, _, s)| latest.get(k).is_some_and(|x| x.0 == *s));
        }
        let mut evict = Vec::new();
        while let Some((k, until, s)) = l.order.front().cloned() {
            if s == serial {
                break;
            }
            let stale = !l.is_latest(&k, s);
            let expired = until <= now_ms;
            if !(stale || expired || l.total > max) {
                break;
            }
            l.order.pop_front();
            if !stale {
                l.drop_latest(&k);
                if !expired {
                    evict.push(k);
                }
            }
        }
        evict
    }

    /// Forget a key (deleted or invalidated).
    pub fn forget(&self, key: &str) {
        let mut l = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        l.drop_latest(key);
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.inner.lock().unwrap().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_go_first_and_rewrites_count_once() {
        let b = Budget::default();
        assert!(b.record("a", 40, 1000, 0, 100).is_empty());
        assert!(b.record("b", 40, 1000, 0, 100).is_empty());
        assert!(
            b.record("a", 40, 1000, 0, 100).is_empty(),
            "a rewrite replaces"
        );
        assert_eq!(b.total(), 80);
        assert_eq!(b.record("c", 40, 1000, 0, 100), vec!["b".to_owned()]);
        assert_eq!(b.total(), 80);
        // Expired records leave the ledger without a delete.
        assert!(b.record("d", 10, 5000, 2000, 100).is_empty());
        assert_eq!(b.total(), 10);
        b.forget("d");
        assert_eq!(b.total(), 0);
        // One entry over the budget stays (it is the one just written).
        assert!(b.record("huge", 500, 9000, 2000, 100).is_empty());
    }
}
