//! The wall clock get-or-compute reads for freshness, replaceable in tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a [`Cache`](crate::Cache) reads the time of day for the freshness of values
/// (fresh-until, stale-until, early refresh). The store's own TTLs are durations and
/// do not read it. Set with [`CacheBuilder::clock`](crate::CacheBuilder::clock).
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told: for tests of expiry, staleness and early
/// refresh without sleeping.
///
/// ```
/// use cache_core::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let t0 = clock.now_ms();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now_ms(), t0 + 5_000);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock stopped at the system's time of now.
    pub fn new() -> Self {
        ManualClock {
            now_ms: AtomicU64::new(SystemClock.now_ms()),
        }
    }
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
