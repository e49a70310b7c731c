//! A circuit breaker around any backend: a store that keeps failing is skipped at once
//! instead of being waited for on every call.

use crate::backend::{CacheBackend, Capabilities, LockToken};
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Expiry;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of a [`CircuitBreaker`], loadable with serde (durations in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Failed calls in a row (errors that [`Error::is_transient`] calls transient:
    /// the store unreachable or too slow) that open the breaker. Default 5.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe call may try the store
    /// again. Default 500 ms, so caching resumes within about half a second of the
    /// store coming back.
    #[serde(with = "crate::raw::millis")]
    pub retry_after: Duration,
    /// A bound of the breaker's own on each call (a call past it is a `Timeout`
    /// failure); `None` (the default) leaves the bound to the backend's own timeout and
    /// to get-or-compute's. A call abandoned by its caller while in flight counts as a
    /// failure either way.
    #[serde(with = "crate::raw::opt_millis")]
    pub call_timeout: Option<Duration>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            retry_after: Duration::from_millis(500),
            call_timeout: None,
        }
    }
}

impl BreakerConfig {
    /// See [`BreakerConfig::failure_threshold`].
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n.max(1);
        self
    }
    /// See [`BreakerConfig::retry_after`].
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
    /// See [`BreakerConfig::call_timeout`].
    pub fn call_timeout(mut self, d: Option<Duration>) -> Self {
        self.call_timeout = d;
        self
    }
}

/// Where a [`CircuitBreaker`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go to the store.
    Closed,
    /// Calls fail at once with [`Unavailable`](ErrorKind::Unavailable); `retry_in` is
    /// how long until a probe may go (zero: the next call is the probe).
    Open {
        /// Since the breaker opened.
        since: Duration,
        /// Until a probe call may try the store.
        retry_in: Duration,
    },
}

/// A [`CacheBackend`] that stops calling a failing store for a while.
///
/// After [`failure_threshold`](BreakerConfig::failure_threshold) transient failures
/// in a row it *opens*: every call fails at once with an
/// [`Unavailable`](ErrorKind::Unavailable) error that says since when and until when,
/// so get-or-compute skips the store without waiting (it fails open: computes and
/// returns) and plain calls return the error at once. After
/// [`retry_after`](BreakerConfig::retry_after) one call goes through as a probe (the
/// others still fail fast): success closes the breaker, failure opens it again.
/// Errors that say nothing of the store's health (invalid input, a value that does
/// not decode) neither open nor close it. `close` always reaches the store.
///
/// A [`Cache`](crate::Cache) over a networked store has one with
/// [`BreakerConfig::default()`] unless told otherwise;
/// [`CacheBuilder::circuit_breaker`](crate::CacheBuilder::circuit_breaker) sets its
/// configuration (or puts one around any backend), and
/// [`without_circuit_breaker`](crate::CacheBuilder::without_circuit_breaker) leaves it
/// out. The calls it fails fast say what the store said last.
///
/// ```
/// use cache_core::{BreakerConfig, Cache};
/// use std::time::Duration;
/// # fn demo(backend: impl cache_core::CacheBackend) {
/// let cache = Cache::builder(backend)
///     .circuit_breaker(BreakerConfig::default().retry_after(Duration::from_millis(250)))
///     .build();
/// # }
/// ```
pub struct CircuitBreaker {
    inner: Arc<dyn CacheBackend>,
    config: BreakerConfig,
    /// Time base of the fields below (milliseconds since `epoch`).
    epoch: Instant,
    failures: AtomicU32,
    /// 0 while closed; else when the breaker opened (ms since `epoch`, at least 1).
    opened_at: AtomicU64,
    /// While open: when the next probe may go.
    retry_at: AtomicU64,
    /// A probe call is in flight.
    probing: AtomicBool,
    /// The failure that opened the breaker (or failed its last probe), for the
    /// errors of the calls it fails fast: what the store last said.
    last_failure: parking_lot::Mutex<Option<String>>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("backend", &self.inner.capabilities().name)
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

/// How a call was let through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Admit {
    Normal,
    Probe,
}

/// How a call ended, for the breaker.
#[derive(Clone, Copy)]
enum Outcome<'a> {
    Succeeded,
    Failed(&'a Error),
    /// Dropped by its caller before it ended (a timeout above the breaker, say).
    Abandoned,
}

/// Records a call's outcome; a call dropped before it finished counts as failed.
struct Pending<'a> {
    breaker: &'a CircuitBreaker,
    admit: Admit,
    done: bool,
}

impl Pending<'_> {
    fn finish<T>(mut self, outcome: &Result<T>) {
        self.done = true;
        match outcome {
            Ok(_) => self.breaker.record(self.admit, Outcome::Succeeded),
            Err(e) if e.is_transient() => self.breaker.record(self.admit, Outcome::Failed(e)),
            // Says nothing of the store's health: neither opens nor closes it.
            Err(_) => self.breaker.neutral(self.admit),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record(self.admit, Outcome::Abandoned);
        }
    }
}

impl CircuitBreaker {
    /// Put a breaker with `config` around `backend`.
    pub fn new(backend: Arc<dyn CacheBackend>, config: BreakerConfig) -> Self {
        CircuitBreaker {
            inner: backend,
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                ..config
            },
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            retry_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            last_failure: parking_lot::Mutex::new(None),
        }
    }

    /// The backend behind the breaker.
    pub fn inner(&self) -> &Arc<dyn CacheBackend> {
        &self.inner
    }

    /// Its settings.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Open or closed, and for how long.
    pub fn state(&self) -> BreakerState {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            return BreakerState::Closed;
        }
        let now = self.now_ms();
        BreakerState::Open {
            since: Duration::from_millis(now.saturating_sub(opened)),
            retry_in: Duration::from_millis(
                self.retry_at.load(Ordering::Acquire).saturating_sub(now),
            ),
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1, so that 0 can mean "closed".
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }

    fn name(&self) -> &'static str {
        self.inner.capabilities().name
    }

    fn admit(&self) -> Result<Admit> {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            return Ok(Admit::Normal);
        }
        let now = self.now_ms();
        let retry_at = self.retry_at.load(Ordering::Acquire);
        if now >= retry_at && !self.probing.swap(true, Ordering::AcqRel) {
            return Ok(Admit::Probe);
        }
        let last = match self.last_failure.lock().as_deref() {
            Some(why) => format!(" (the last: {why})"),
            None => String::new(),
        };
        Err(Error::new(
            ErrorKind::Unavailable,
            self.name(),
            format!(
                "circuit breaker open for {} ms after {} failed calls in a row{last}; the \
                 next call tries the store again in {} ms (check that the store is up and \
                 reachable; calls fail fast meanwhile)",
                now.saturating_sub(opened),
                self.config.failure_threshold,
                retry_at.saturating_sub(now)
            ),
        ))
    }

    /// A call that ended in an error saying nothing of the store's health (invalid
    /// input, a value that does not decode): the failure run stays as it is; a probe
    /// ends without closing the breaker, and the next call may probe at once.
    fn neutral(&self, admit: Admit) {
        if admit == Admit::Probe {
            self.retry_at.store(self.now_ms(), Ordering::Release);
            self.probing.store(false, Ordering::Release);
        }
    }

    /// Keep what the store said last, for the errors of the calls failed fast.
    fn remember(&self, outcome: Outcome<'_>) {
        let why = match outcome {
            Outcome::Failed(e) => e.to_string(),
            Outcome::Abandoned => "a call abandoned by its caller before the store answered \
                 (a timeout above the breaker)"
                .to_owned(),
            Outcome::Succeeded => return,
        };
        *self.last_failure.lock() = Some(why);
    }

    fn record(&self, admit: Admit, outcome: Outcome<'_>) {
        let now = self.now_ms();
        let retry_at = now + self.config.retry_after.as_millis() as u64;
        let failed = !matches!(outcome, Outcome::Succeeded);
        match (admit, failed) {
            (Admit::Probe, false) => {
                self.failures.store(0, Ordering::Release);
                self.opened_at.store(0, Ordering::Release);
                self.probing.store(false, Ordering::Release);
                tracing::info!(
                    backend = self.name(),
                    "the store answers again; circuit breaker closed"
                );
            }
            (Admit::Probe, true) => {
                self.remember(outcome);
                self.retry_at.store(retry_at, Ordering::Release);
                self.probing.store(false, Ordering::Release);
            }
            (Admit::Normal, false) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            (Admit::Normal, true) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= self.config.failure_threshold
                    && self
                        .opened_at
                        .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.remember(outcome);
                    self.retry_at.store(retry_at, Ordering::Release);
                    tracing::warn!(
                        backend = self.name(),
                        failures = n,
                        retry_after_ms = self.config.retry_after.as_millis() as u64,
                        "circuit breaker opened: calls skip the store until a probe succeeds"
                    );
                }
            }
        }
    }

    async fn call<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let pending = Pending {
            breaker: self,
            admit: self.admit()?,
            done: false,
        };
        let outcome = match self.config.call_timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .unwrap_or_else(|_| Err(Error::timeout(self.name(), t))),
            None => fut.await,
        };
        pending.finish(&outcome);
        outcome
    }

    fn call_now<T>(&self, call: impl FnOnce() -> Option<Result<T>>) -> Option<Result<T>> {
        let pending = match self.admit() {
            Ok(admit) => Pending {
                breaker: self,
                admit,
                done: false,
            },
            Err(e) => return Some(Err(e)),
        };
        match call() {
            Some(outcome) => {
                pending.finish(&outcome);
                Some(outcome)
            }
            None => {
                // Not answered here: the awaited call that follows is the one counted.
                let mut pending = pending;
                pending.done = true;
                if pending.admit == Admit::Probe {
                    self.probing.store(false, Ordering::Release);
                }
                None
            }
        }
    }
}

#[async_trait]
impl CacheBackend for CircuitBreaker {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn namespace(&self) -> &str {
        self.inner.namespace()
    }
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        self.call_now(|| self.inner.get_now(key))
    }
    fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        self.call_now(|| self.inner.read_now(key, read))
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.call(self.inner.get(key)).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.call(self.inner.set(key, value, expiry)).await
    }
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.call(self.inner.set_locked(key, value, expiry, token))
            .await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.call(self.inner.delete(key)).await
    }
    async fn has(&self, key: &str) -> Result<bool> {
        self.call(self.inner.has(key)).await
    }
    async fn clear(&self) -> Result<()> {
        self.call(self.inner.clear()).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.call(self.inner.get_many(keys)).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        self.call(self.inner.set_many(items, expiry)).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.call(self.inner.delete_many(keys)).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.call(self.inner.set_if_absent(key, value, expiry))
            .await
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        self.call(self.inner.acquire_lock(key, ttl)).await
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.call(self.inner.release_lock(key, token)).await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests;
