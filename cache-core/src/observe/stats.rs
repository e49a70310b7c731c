//! [`CacheStats`]: counted in per-thread stripes, summed on demand.

use super::{kind_label, KINDS};
use crate::error::ErrorKind;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::Duration;

/// A snapshot of one cache's counters since it was built (clones share them).
///
/// Every get-or-compute call that reads counts one of `hits`, `misses` or
/// `coalesced`; a plain read counts a hit or a miss per key.
///
/// Serialises (serde) as one JSON object, for a `/stats` endpoint:
/// `{"hits":4,"misses":1,"coalesced":49,"stale_served":0,"computes":1,
/// "compute_errors":0,"compute_seconds":0.05,"hit_ratio":0.8,"errors":{"timeout":2}}`
/// (`hit_ratio` is `null` before the first read; `errors` holds the kinds counted).
/// [`to_prometheus`](Self::to_prometheus) renders it in the Prometheus text format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a fresh value (plain gets and get-or-compute).
    pub hits: u64,
    /// Reads that found none (absent, stale or undecodable) and did not take another
    /// caller's compute: the value was computed by this call (or the stale value
    /// served, or the compute failed).
    pub misses: u64,
    /// Get-or-compute calls that found no fresh value and took the outcome of another
    /// caller's compute instead of computing: followers of the in-process single
    /// flight, and callers that waited on another process's lock and then found its
    /// value. 50 concurrent calls on one cold key count 1 miss, 1 compute and 49
    /// coalesced.
    pub coalesced: u64,
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
    /// `hits / (hits + misses)`, or `None` before the first read. Coalesced calls are
    /// in neither term: they are neither served from the store nor a compute of their
    /// own; `(hits + coalesced) / (hits + misses + coalesced)` is the share of calls
    /// that did not compute.
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

impl Serialize for CacheStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The errors as a JSON object, kind to count.
        struct Errors<'a>(&'a [(&'static str, u64)]);
        impl Serialize for Errors<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(k, n)| (*k, *n)))
            }
        }
        let mut s = serializer.serialize_struct("CacheStats", 9)?;
        s.serialize_field("hits", &self.hits)?;
        s.serialize_field("misses", &self.misses)?;
        s.serialize_field("coalesced", &self.coalesced)?;
        s.serialize_field("stale_served", &self.stale_served)?;
        s.serialize_field("computes", &self.computes)?;
        s.serialize_field("compute_errors", &self.compute_errors)?;
        s.serialize_field("compute_seconds", &self.compute_time.as_secs_f64())?;
        s.serialize_field("hit_ratio", &self.hit_ratio())?;
        s.serialize_field("errors", &Errors(&self.errors))?;
        s.end()
    }
}

#[derive(Default)]
#[repr(align(128))]
pub(super) struct Stripe {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) coalesced: AtomicU64,
    pub(super) stale: AtomicU64,
    pub(super) computes: AtomicU64,
    pub(super) compute_errors: AtomicU64,
    pub(super) compute_ns: AtomicU64,
    pub(super) errors: [AtomicU64; KINDS.len()],
    /// Counts while no `metrics` recorder is installed (see `series::LOOK_EVERY`).
    pub(super) ticks: AtomicU64,
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

/// Add 1 to a counter of the stripe `i`; its new value.
#[inline]
pub(super) fn tick(i: usize, c: &AtomicU64) -> u64 {
    if i < OWNED {
        let n = c.load(Relaxed).wrapping_add(1);
        c.store(n, Relaxed);
        n
    } else {
        c.fetch_add(1, Relaxed).wrapping_add(1)
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
