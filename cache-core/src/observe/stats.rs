//! [`CacheStats`]: counted in per-thread stripes, summed on demand.

use super::{kind_label, KINDS};
use crate::error::ErrorKind;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::Duration;

/// A snapshot of one cache's counters since it was built (clones share them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a fresh value (plain gets and get-or-compute).
    pub hits: u64,
    /// Reads that found none (absent, stale or undecodable).
    pub misses: u64,
    /// Stale or fail-safe values returned by get-or-compute instead of a fresh one.
    pub stale_served: u64,
    /// Computes run by get-or-compute (at most one per key at a time per process).
    pub computes: u64,
    /// Computes that failed or timed out.
    pub compute_errors: u64,
    /// Time spent in computes, summed.
    pub compute_time: Duration,
    /// Failed cache calls by kind (`("timeout", 3)`, ...), kinds with none left out.
    pub errors: Vec<(&'static str, u64)>,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `None` before the first read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }

    /// Failed calls of `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        let label = kind_label(kind);
        self.errors
            .iter()
            .find(|(k, _)| *k == label)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Default)]
#[repr(align(128))]
pub(super) struct Stripe {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) stale: AtomicU64,
    pub(super) computes: AtomicU64,
    pub(super) compute_errors: AtomicU64,
    pub(super) compute_ns: AtomicU64,
    pub(super) errors: [AtomicU64; KINDS.len()],
}

/// Stripes owned by one thread each (a plain load and store counts there: no locked
/// instruction on the hot path), and one more that threads beyond them share (counted
/// with `fetch_add`).
const OWNED: usize = 32;
pub(super) const STRIPES: usize = OWNED + 1;

/// Which stripes are taken, one bit each.
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// Claims a free stripe; the claim is given back when the thread ends.
struct Claim(usize);

impl Claim {
    fn take() -> usize {
        let mut taken = TAKEN.load(Relaxed);
        loop {
            let free = (!taken).trailing_zeros() as usize;
            if free >= OWNED {
                return OWNED;
            }
            match TAKEN.compare_exchange_weak(taken, taken | 1 << free, Acquire, Relaxed) {
                Ok(_) => return free,
                Err(now) => taken = now,
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // From here on this thread counts on the shared stripe.
        let _ = SLOT.try_with(|s| s.set(OWNED));
        if self.0 < OWNED {
            TAKEN.fetch_and(!(1 << self.0), Release);
        }
    }
}

const UNSET: usize = usize::MAX;

thread_local! {
    // Read on every call: a constant initialiser and no destructor keep it one load.
    static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(UNSET) };
    static CLAIM: std::cell::Cell<Option<Claim>> = const { std::cell::Cell::new(None) };
}

#[inline]
pub(super) fn stripe_index() -> usize {
    let i = SLOT.with(|s| s.get());
    if i != UNSET {
        return i;
    }
    claim_stripe()
}

/// A thread's first count: out of line, so the hot path above stays a load.
#[cold]
#[inline(never)]
fn claim_stripe() -> usize {
    let claimed = Claim::take();
    // If the thread is already ending, `CLAIM` is gone: give the stripe back now.
    match CLAIM.try_with(|c| c.set(Some(Claim(claimed)))) {
        Ok(()) => {
            SLOT.with(|s| s.set(claimed));
            claimed
        }
        Err(_) => {
            drop(Claim(claimed));
            OWNED
        }
    }
}

/// Add `n` to a counter of the stripe `i`.
#[inline]
pub(super) fn add(i: usize, c: &AtomicU64, n: u64) {
    if i < OWNED {
        // Only this thread writes the stripe; readers see whole values.
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    } else {
        c.fetch_add(n, Relaxed);
    }
}
