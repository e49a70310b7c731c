//! Get-or-compute's options, written once: set on the
//! [`CacheBuilder`](crate::CacheBuilder) they are the cache's defaults, set on a
//! [`ComputeCall`](crate::ComputeCall) (async or
//! [blocking](crate::blocking::ComputeCall)) they hold for that call.

use std::time::Duration;

/// The options every get-or-compute call carries (a background refresh a copy).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) store_timeout: Duration,
    pub(crate) stampede_protection: bool,
    pub(crate) lock_ttl: Duration,
    pub(crate) lock_wait: Duration,
    pub(crate) stale_for: Duration,
    pub(crate) fail_safe_for: Duration,
    pub(crate) fail_safe_throttle: Duration,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
    pub(crate) early_refresh: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            store_timeout: Duration::from_secs(1),
            stampede_protection: true,
            lock_ttl: Duration::from_secs(30),
            lock_wait: Duration::from_secs(5),
            stale_for: Duration::ZERO,
            fail_safe_for: Duration::ZERO,
            fail_safe_throttle: Duration::from_secs(1),
            soft_timeout: None,
            hard_timeout: None,
            early_refresh: 0.0,
        }
    }
}

impl Options {
    /// How long a value is kept past its freshness: for stale-while-revalidate or
    /// fail-safe, whichever is longer.
    pub(crate) fn keep_for(&self) -> Duration {
        self.stale_for.max(self.fail_safe_for)
    }
}

/// The setters of [`Options`] on a builder whose `self.<path>` is one.
macro_rules! option_setters {
    ($($path:ident).+) => {
        /// Bound on each store call get-or-compute makes (default 1 s); past it the
        /// call fails open: the value is computed and returned, a warning is logged.
        /// Plain calls (`get`, `set`, ...) are bounded by the backend's own timeout.
        pub fn store_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$($path).+.store_timeout = timeout;
            self
        }
        /// Whether get-or-compute takes the store's lock on a miss, so that one
        /// process computes (default on).
        pub fn stampede_protection(mut self, on: bool) -> Self {
            self.$($path).+.stampede_protection = on;
            self
        }
        /// How long get-or-compute's lock lives before it frees itself (default 30 s,
        /// the Python library's `lock_timeout`); it must be positive while stampede
        /// protection is on. A compute that outlives it stores nothing.
        pub fn lock_ttl(mut self, d: std::time::Duration) -> Self {
            self.$($path).+.lock_ttl = d;
            self
        }
        /// How long get-or-compute waits for another holder of the lock before
        /// computing itself, returning that value unstored (default 5 s, as in the
        /// Python library).
        pub fn lock_wait(mut self, d: std::time::Duration) -> Self {
            self.$($path).+.lock_wait = d;
            self
        }
        /// Keep a value this long past its expiry and, while it is stale, return it at
        /// once and refresh it (in the background with
        /// [`get_or_compute_detached`](crate::ComputeCall::get_or_compute_detached); in
        /// the caller, which waits, with
        /// [`get_or_compute`](crate::ComputeCall::get_or_compute)). Default zero: off.
        /// Plain [`get`](crate::Cache::get) never returns a stale value.
        pub fn stale_while_revalidate(mut self, stale_for: std::time::Duration) -> Self {
            self.$($path).+.stale_for = stale_for;
            self
        }
        /// Fail-safe: keep a value this long past its expiry and return it, with a
        /// warning, when the compute fails or times out. Default zero: off.
        pub fn fail_safe(mut self, keep_for: std::time::Duration) -> Self {
            self.$($path).+.fail_safe_for = keep_for;
            self
        }
        /// After a fail-safe answer this process serves the kept value without
        /// computing for this long, so a failing origin is asked again once per
        /// throttle and key, not on every call. The throttle is the process's own:
        /// nothing is written back to the store. Default 1 s.
        pub fn fail_safe_throttle(mut self, d: std::time::Duration) -> Self {
            self.$($path).+.fail_safe_throttle = d;
            self
        }
        /// Soft compute timeout: when a stale or fail-safe value exists and the
        /// compute takes longer, return that value (with `get_or_compute_detached` the
        /// compute finishes in the background and its result is cached; with
        /// `get_or_compute` it is dropped). Default none.
        pub fn soft_timeout(mut self, d: std::time::Duration) -> Self {
            self.$($path).+.soft_timeout = Some(d);
            self
        }
        /// Hard compute timeout: give up a compute that takes longer (the fail-safe
        /// value if there is one, else
        /// [`ComputeError::TimedOut`](crate::ComputeError::TimedOut)). Default none.
        pub fn hard_timeout(mut self, d: std::time::Duration) -> Self {
            self.$($path).+.hard_timeout = Some(d);
            self
        }
        /// Probabilistic early refresh (XFetch): a fresh value is refreshed early, as
        /// if stale, with a probability that rises as its expiry nears, scaled by how
        /// long its compute took and by `beta` (1.0 is the usual choice; higher
        /// refreshes earlier). Default 0: off.
        pub fn early_refresh(mut self, beta: f64) -> Self {
            self.$($path).+.early_refresh = beta.max(0.0);
            self
        }
    };
}

/// The per-call setters of a call builder whose `self.<path>` is a
/// [`ComputeCall`](crate::ComputeCall) (empty: the builder is one).
macro_rules! call_setters {
    ($($path:ident).*) => {
        /// Expiry of the computed value (default: the cache's default expiry).
        pub fn expiry(mut self, expiry: impl Into<$crate::Expiry>) -> Self {
            self$(.$path)*.settings.expiry = expiry.into();
            self
        }
        /// Prefix the key with `namespace:` (within the backend's own namespace). The
        /// call's metrics and span carry it as their `namespace` label: choose it in
        /// code from a small fixed set, never from request data (each namespace is a
        /// set of series for the life of the process; see [`crate::observe`]).
        pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
            self$(.$path)*.namespace = Some(namespace.into());
            self
        }
        /// Bypass the cache for this call: no read, no write, just compute.
        pub fn skip(mut self, skip: bool) -> Self {
            self$(.$path)*.skip = skip;
            self
        }
        /// Do not read: compute and overwrite the cached value (after a write to
        /// what it is computed from). The value returned was computed after the call
        /// began: a refresh never takes the value of a compute begun before it (it
        /// waits that one out); refreshes of one key called meanwhile share one compute.
        /// While other calls keep starting computes of the key whose values are not
        /// stored (a compute that fails, or passes), a refresh may wait out several.
        pub fn refresh(mut self, refresh: bool) -> Self {
            self$(.$path)*.settings.refresh = refresh;
            self
        }
        $crate::compute::options::option_setters!($($path.)* settings.options);
    };
}

pub(crate) use call_setters;
pub(crate) use option_setters;
