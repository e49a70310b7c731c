//! Get-or-compute: the cache as a decorator, with stampede protection; the rules
//! are on [`Cached`].

use crate::backend::{CacheBackend, LockToken};
use crate::cache::{Cache, Resilience};
use crate::checked::Checked;
use crate::codec::Codec;
use crate::envelope::{self, Opened};
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::{follow, Role};
use crate::key::KeyBuilder;
use crate::observe::{in_span, Op};
use crate::raw::{validate_key, validate_namespace};
use serde::{de::DeserializeOwned, Serialize};
use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Error of get-or-compute: the compute's own error (shared by every waiter), or a
/// cache error that no fail-open can skip (an invalid key or namespace), or a compute
/// given up after its hard timeout.
#[non_exhaustive]
pub enum ComputeError<E> {
    /// The compute function failed; every caller waiting on it gets the same error.
    Compute(Arc<E>),
    /// The call itself was invalid.
    Cache(Error),
    /// The compute ran past the hard timeout
    /// ([`Cached::hard_timeout`]) and no fail-safe value was there.
    TimedOut(Duration),
    /// The compute panicked (in another caller's flight: the panic itself went to the
    /// caller whose compute ran); it runs once per flight, not once per waiter.
    Panicked(String),
}

impl<E> ComputeError<E> {
    /// The compute function's error, if that is what this is.
    pub fn compute_error(&self) -> Option<&E> {
        match self {
            ComputeError::Compute(e) => Some(e),
            ComputeError::Cache(_) | ComputeError::TimedOut(_) | ComputeError::Panicked(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => f.debug_tuple("Compute").field(e).finish(),
            ComputeError::Cache(e) => f.debug_tuple("Cache").field(e).finish(),
            ComputeError::TimedOut(d) => f.debug_tuple("TimedOut").field(d).finish(),
            ComputeError::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => write!(f, "compute failed: {e}"),
            ComputeError::Cache(e) => e.fmt(f),
            ComputeError::TimedOut(d) => write!(
                f,
                "compute gave up after its hard timeout of {d:?} (raise it, or keep a fail-safe value)"
            ),
            ComputeError::Panicked(m) => write!(
                f,
                "the compute panicked in the flight this call waited on: {m} (fix the compute; the next call runs it again)"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ComputeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComputeError::Compute(e) => Some(e.as_ref()),
            ComputeError::Cache(e) => Some(e),
            ComputeError::TimedOut(_) | ComputeError::Panicked(_) => None,
        }
    }
}

/// The options of a call; a background refresh carries a copy.
#[derive(Clone, Copy)]
struct Settings {
    expiry: Expiry,
    timeout: Duration,
    stampede_protection: bool,
    lock_timeout: Duration,
    lock_wait: Duration,
    refresh: bool,
    policy: Resilience,
}

/// How a leader's compute ended badly; shared with its followers.
enum Failure<E> {
    Compute(Arc<E>),
    TimedOut(Duration),
    Panicked(String),
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        match self {
            Failure::Compute(e) => Failure::Compute(e.clone()),
            Failure::TimedOut(d) => Failure::TimedOut(*d),
            Failure::Panicked(m) => Failure::Panicked(m.clone()),
        }
    }
}

impl<E> From<Failure<E>> for ComputeError<E> {
    fn from(f: Failure<E>) -> Self {
        match f {
            Failure::Compute(e) => ComputeError::Compute(e),
            Failure::TimedOut(d) => ComputeError::TimedOut(d),
            Failure::Panicked(m) => ComputeError::Panicked(m),
        }
    }
}

type Outcome<T, E> = std::result::Result<T, Failure<E>>;

/// What a read found.
enum Found<T> {
    /// Fresh: return it (its header, if it has one).
    Fresh(T, Option<envelope::Meta>),
    /// Within its stale-while-revalidate window (or chosen for early refresh):
    /// servable, to be refreshed.
    Stale(T, envelope::Meta),
    /// Past that, kept for fail-safe: returned only if the compute fails.
    Kept(T, envelope::Meta),
    Miss,
}

/// How a compute ran.
enum Ran<T, E> {
    Done(std::result::Result<T, E>),
    /// It panicked: the payload, to hand to the followers as an error and to resume
    /// in the leader's caller.
    Panicked(Box<dyn std::any::Any + Send>),
    /// Past the soft timeout with a value to serve instead.
    Soft,
    /// Past the hard timeout.
    Hard(Duration),
}

impl<E> From<Error> for ComputeError<E> {
    fn from(e: Error) -> Self {
        ComputeError::Cache(e)
    }
}

/// What get-or-compute can cache and hand to every waiter: a serde value that is
/// `Clone + Send + Sync + 'static`. Implemented for every such type.
pub trait Cacheable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Cacheable for T {}

/// Anything that names a cache entry: a `&str`, a `String` or a [`KeyBuilder`].
pub trait IntoKey {
    /// The key, or why it cannot be built.
    fn into_key(self) -> Result<String>;
}

impl IntoKey for &str {
    fn into_key(self) -> Result<String> {
        Ok(self.to_owned())
    }
}
impl IntoKey for String {
    fn into_key(self) -> Result<String> {
        Ok(self)
    }
}
impl IntoKey for &String {
    fn into_key(self) -> Result<String> {
        Ok(self.clone())
    }
}
impl IntoKey for KeyBuilder {
    fn into_key(self) -> Result<String> {
        self.build()
    }
}

/// Options of one get-or-compute call; made by [`Cache::cached`].
///
/// 1. Read; a hit returns at once. A value that no longer decodes is a miss.
/// 2. On a miss, callers of one [`Cache`] asking for the same key (and type) wait for
///    one leader.
/// 3. With stampede protection, the leader takes the backend's lock (it frees itself
///    after the lock timeout), re-reads, computes, and writes with
///    [`CacheBackend::set_locked`](crate::CacheBackend::set_locked), which releases
///    the lock: the value is stored only while the lock is still the leader's and no
///    `set`, `delete` or `clear` of the key (by any process, on backends with
///    [`fenced_writes`](crate::Capabilities::fenced_writes)) came meanwhile; otherwise
///    it is returned, not stored. While another process holds the lock it polls the
///    value, and after the lock wait computes itself and returns its value unstored
///    (only a lock holder writes; so does a caller whose lock call failed).
/// 4. A compute error reaches every waiter; nothing is cached.
/// 5. Backend errors and timeouts fail open: the value is computed and returned and a
///    warning is logged through `tracing`.
#[must_use = "call .get_or_compute(...) to run it"]
pub struct Cached<'a, C: Codec> {
    cache: &'a Cache<C>,
    key: Result<String>,
    namespace: Option<String>,
    skip: bool,
    settings: Settings,
    /// Set after the first failed backend call: the rest of this call skips the
    /// backend, so a down store costs one timeout, not one per step.
    degraded: AtomicBool,
}

impl<C: Codec> Cache<C> {
    /// Get-or-compute with this cache's defaults: see [`Cached::get_or_compute`].
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// let v: u64 = cache
    ///     .get_or_compute("answer", || async { Ok::<_, std::io::Error>(42) })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn get_or_compute<T: Cacheable, E: Send + Sync + 'static, Fut>(
        &self,
        key: impl IntoKey,
        compute: impl FnOnce() -> Fut,
    ) -> Result<T, ComputeError<E>>
    where
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        self.cached(key).get_or_compute(compute).await
    }

    /// Start a get-or-compute call with per-call options: the Rust form of the
    /// Python library's `@cached(...)` decorator.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// use std::time::Duration;
    /// use cache_core::KeyBuilder;
    /// let user_id = 7;
    /// let name: String = cache
    ///     .cached(KeyBuilder::new("users::name").arg(&user_id))
    ///     .namespace("users")
    ///     .expiry(Duration::from_secs(30))
    ///     .lock_timeout(Duration::from_secs(5))
    ///     .get_or_compute(|| async { Ok::<_, std::io::Error>(format!("user {user_id}")) })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn cached(&self, key: impl IntoKey) -> Cached<'_, C> {
        let d = self.inner.compute;
        Cached {
            cache: self,
            key: key.into_key(),
            namespace: None,
            skip: false,
            settings: Settings {
                expiry: self.inner.default_expiry,
                timeout: d.timeout,
                stampede_protection: d.stampede_protection,
                lock_timeout: d.lock_timeout,
                lock_wait: d.lock_wait,
                refresh: false,
                policy: d.resilience,
            },
            degraded: AtomicBool::new(false),
        }
    }
}

impl<'a, C: Codec> Cached<'a, C> {
    /// Expiry of the computed value (default: the cache's default expiry).
    pub fn expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.settings.expiry = expiry.into();
        self
    }
    /// Prefix the key with `namespace:` (within the backend's own namespace).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
    /// Bound on each backend call; past it the call fails open.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }
    /// Take the backend's lock on a miss so one process computes (default on).
    pub fn stampede_protection(mut self, on: bool) -> Self {
        self.settings.stampede_protection = on;
        self
    }
    /// How long the lock lives before it frees itself.
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.settings.lock_timeout = d;
        self
    }
    /// How long to wait for another holder before computing anyway.
    pub fn lock_wait(mut self, d: Duration) -> Self {
        self.settings.lock_wait = d;
        self
    }
    /// Bypass the cache for this call: no read, no write, just compute.
    pub fn skip(mut self, skip: bool) -> Self {
        self.skip = skip;
        self
    }
    /// Do not read: compute and overwrite the cached value.
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.settings.refresh = refresh;
        self
    }
    /// Keep the value this long past its expiry and serve it while refreshing; see
    /// [`CacheBuilder::stale_while_revalidate`](crate::CacheBuilder::stale_while_revalidate).
    pub fn stale_while_revalidate(mut self, stale_for: Duration) -> Self {
        self.settings.policy.stale_for = stale_for;
        self
    }
    /// Keep the value this long past its expiry to return it when the compute fails;
    /// see [`CacheBuilder::fail_safe`](crate::CacheBuilder::fail_safe).
    pub fn fail_safe(mut self, keep_for: Duration) -> Self {
        self.settings.policy.fail_safe_for = keep_for;
        self
    }
    /// See [`CacheBuilder::soft_timeout`](crate::CacheBuilder::soft_timeout).
    pub fn soft_timeout(mut self, d: Duration) -> Self {
        self.settings.policy.soft_timeout = Some(d);
        self
    }
    /// See [`CacheBuilder::hard_timeout`](crate::CacheBuilder::hard_timeout).
    pub fn hard_timeout(mut self, d: Duration) -> Self {
        self.settings.policy.hard_timeout = Some(d);
        self
    }
    /// See [`CacheBuilder::fail_safe_throttle`](crate::CacheBuilder::fail_safe_throttle).
    pub fn fail_safe_throttle(mut self, d: Duration) -> Self {
        self.settings.policy.fail_safe_throttle = d;
        self
    }
    /// See [`CacheBuilder::early_refresh`](crate::CacheBuilder::early_refresh).
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.settings.policy.early_refresh = beta.max(0.0);
        self
    }

    /// A call with `s` on `cache`, for a background task (the key is already whole).
    fn with_settings(cache: &'a Cache<C>, settings: Settings) -> Self {
        Cached {
            cache,
            key: Ok(String::new()),
            namespace: None,
            skip: false,
            settings,
            degraded: AtomicBool::new(false),
        }
    }

    fn backend(&self) -> &Checked {
        &self.cache.inner.backend
    }

    /// The backend's own calls: the key is validated once, by [`Self::full_key`].
    fn store(&self) -> &Arc<dyn CacheBackend> {
        self.backend().inner()
    }

    fn full_key(&mut self) -> Result<String> {
        let backend = self.backend().name();
        let key = std::mem::replace(&mut self.key, Ok(String::new()))?;
        let key = match &self.namespace {
            Some(ns) => {
                validate_namespace(backend, ns)?;
                format!("{ns}:{key}")
            }
            None => key,
        };
        validate_key(backend, &key)?;
        if self.settings.stampede_protection && self.settings.lock_timeout.is_zero() {
            return Err(Error::invalid_input(
                backend,
                "lock_timeout must be positive (or turn stampede protection off)",
            ));
        }
        Ok(key)
    }

    /// Run a backend call bounded by the timeout; errors and timeouts become `None`
    /// with a warning (fail open).
    async fn guarded<T>(
        &self,
        op: Op,
        key: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Option<T> {
        if self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        let obs = &self.cache.inner.observe;
        let started = obs.start();
        let outcome = match self.backend().check_open(op.as_str()) {
            Ok(()) => tokio::time::timeout(self.settings.timeout, fut).await,
            Err(closed) => Ok(Err(closed)),
        };
        obs.latency(op, started);
        let err = match outcome {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.in_operation(op.as_str()),
            Err(_) => Error::timeout(self.backend().name(), self.settings.timeout)
                .in_operation(op.as_str()),
        };
        obs.error(err.kind());
        self.degraded.store(true, Ordering::Relaxed);
        let op = op.as_str();
        let key = self.cache.inner.observe.log_key(key);
        tracing::warn!(op, %key, error = %err, "cache call failed; continuing without the cache");
        None
    }

    /// A fresh value only (what lock holders wait for), with its header if it has
    /// one.
    async fn read<T: DeserializeOwned>(&self, key: &str) -> Option<(T, Option<envelope::Meta>)> {
        match self.lookup(key, false).await {
            Found::Fresh(v, meta) => Some((v, meta)),
            _ => None,
        }
    }

    /// Read and place the value: fresh, stale, kept for fail-safe, or a miss. A
    /// value with no header (written by [`Cache::set`], or before headers existed) is
    /// fresh until the store expires it; a header of another version, or a value
    /// that no longer decodes, is a miss.
    async fn lookup<T: DeserializeOwned>(&self, key: &str, early: bool) -> Found<T> {
        let Some(Some(bytes)) = self.guarded(Op::Get, key, self.store().get(key)).await else {
            return Found::Miss;
        };
        let (meta, payload) = match envelope::open(&bytes) {
            Opened::Enveloped(meta, payload) => (Some(meta), payload),
            Opened::Bare(payload) => (None, payload),
            Opened::Unknown => {
                tracing::debug!(
                    key = %self.cache.inner.observe.log_key(key),
                    "cached value has a header of another version; treating it as a miss"
                );
                return Found::Miss;
            }
        };
        let v = match self.cache.inner.codec.decode(payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(key = %self.cache.inner.observe.log_key(key), error = %e, "cached value no longer decodes; treating it as a miss");
                return Found::Miss;
            }
        };
        let Some(meta) = meta else {
            return Found::Fresh(v, None);
        };
        let now = self.cache.inner.clock.now_ms();
        if now < meta.fresh_until {
            if early && refresh_early(now, &meta, self.settings.policy.early_refresh) {
                Found::Stale(v, meta)
            } else {
                Found::Fresh(v, Some(meta))
            }
        } else if now < meta.stale_until {
            Found::Stale(v, meta)
        } else if now < meta.keep_until {
            Found::Kept(v, meta)
        } else {
            Found::Miss
        }
    }

    /// Look up the key; on a miss compute the value with `compute`, store it and
    /// return it. See [`Cached`] for the rules.
    pub async fn get_or_compute<T, E, F, Fut>(mut self, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let key = self.full_key()?;
        if self.skip {
            return compute()
                .await
                .map_err(|e| ComputeError::Compute(Arc::new(e)));
        }
        let span = self.cache.inner.observe.span(Op::GetOrCompute, &key);
        let body = async move {
            let flights = &self.cache.inner.flights;
            // Flights are keyed by the outcome's type too, so a follower's downcast holds.
            let ty = TypeId::of::<Outcome<T, E>>();
            let mut first = true;
            // Taken once: a caller that looks again after a superseded flight still
            // asked at this point.
            let since = flights.mark();
            loop {
                let mut fallback = None;
                if !self.settings.refresh {
                    let found = self.lookup::<T>(&key, true).await;
                    if std::mem::take(&mut first) {
                        self.count(&found);
                    }
                    match found {
                        Found::Fresh(v, _) => return Ok(v),
                        // Refreshed here, in the caller; served if the compute fails.
                        Found::Stale(v, m) | Found::Kept(v, m) => {
                            if self.cache.throttled(&key) {
                                self.cache.inner.observe.stale_served();
                                return Ok(v);
                            }
                            fallback = Some((v, m))
                        }
                        Found::Miss => {}
                    }
                }
                let read_failed = self.degraded.load(Ordering::Relaxed);
                match flights.join(ty, &key, since, read_failed) {
                    Role::Landed(out) => {
                        if let Some(out) = downcast::<T, E>(Some(out)) {
                            return self.or_own(out, fallback).map_err(Into::into);
                        }
                    }
                    Role::Follower(rx) => {
                        // `None`: the leader went away (dropped), or its value may be
                        // older than this caller; take over.
                        if let Some(out) = received::<T, E>(follow(rx).await, since) {
                            return self.or_own(out, fallback).map_err(Into::into);
                        }
                    }
                    Role::Leader(guard) => {
                        let led = self.lead(&key, compute, fallback, true, &guard).await;
                        return led.land(guard).map_err(Into::into);
                    }
                }
            }
        };
        in_span(span, body).await
    }

    /// A follower's answer from its flight: a failed compute is served from this
    /// caller's own fail-safe value when it has one. The leader's fail-safe value was
    /// read before this caller asked, and may be older than a write made since; this
    /// caller's own read is not.
    fn or_own<T, E>(
        &self,
        out: Outcome<T, E>,
        fallback: Option<(T, envelope::Meta)>,
    ) -> Outcome<T, E> {
        match (out, fallback) {
            (Err(Failure::Compute(_) | Failure::TimedOut(_)), Some((v, _))) => {
                self.cache.inner.observe.stale_served();
                Ok(v)
            }
            (out, _) => out,
        }
    }

    /// Count a lookup for the stats and on the current span: a fresh value is a hit,
    /// anything else (absent, stale, kept) a miss.
    fn count<T>(&self, found: &Found<T>) {
        let hit = matches!(found, Found::Fresh(..));
        let obs = &self.cache.inner.observe;
        obs.reads(u64::from(hit), u64::from(!hit));
        tracing::Span::current().record("hit", hit);
    }

    /// Like [`get_or_compute`](Self::get_or_compute), for a compute that can run on
    /// its own task (`Send + 'static`): a stale value (within
    /// [`stale_while_revalidate`](Self::stale_while_revalidate), or picked for
    /// [`early_refresh`](Self::early_refresh)) is returned at once and refreshed in the
    /// background; past the [`soft_timeout`](Self::soft_timeout) the kept value is
    /// returned and the compute goes on, caching its result. Single flight and the
    /// distributed lock hold for the background compute as for any other.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// use std::time::Duration;
    /// let rates: Vec<f64> = cache
    ///     .cached("rates")
    ///     .expiry(Duration::from_secs(60))
    ///     .stale_while_revalidate(Duration::from_secs(300))
    ///     .fail_safe(Duration::from_secs(3600))
    ///     .get_or_compute_detached(|| async { Ok::<_, std::io::Error>(vec![1.1, 0.9]) })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn get_or_compute_detached<T, E, F, Fut>(
        mut self,
        compute: F,
    ) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let key = self.full_key()?;
        if self.skip {
            return compute()
                .await
                .map_err(|e| ComputeError::Compute(Arc::new(e)));
        }
        let span = self.cache.inner.observe.span(Op::GetOrCompute, &key);
        in_span(span, self.detached(key, compute)).await
    }

    /// [`get_or_compute_detached`](Self::get_or_compute_detached) past the key checks.
    async fn detached<T, E, F, Fut>(self, key: String, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let (mut fallback, mut serve_now) = (None, false);
        let since = self.cache.inner.flights.mark();
        if !self.settings.refresh {
            let found = self.lookup::<T>(&key, true).await;
            self.count(&found);
            match found {
                Found::Fresh(v, _) => return Ok(v),
                // After a fail-safe answer, not refreshed again within the throttle.
                Found::Stale(v, _) | Found::Kept(v, _) if self.cache.throttled(&key) => {
                    self.cache.inner.observe.stale_served();
                    return Ok(v);
                }
                Found::Stale(v, m) => (fallback, serve_now) = (Some((v, m)), true),
                Found::Kept(v, m) => fallback = Some((v, m)),
                Found::Miss => {}
            }
        }
        let read_failed = self.degraded.load(Ordering::Relaxed);
        let task = self.spawn_leader(key, compute, fallback.clone(), (since, read_failed));
        let obs = &self.cache.inner.observe;
        let joined = match fallback {
            Some((v, _)) if serve_now => {
                obs.stale_served();
                return Ok(v);
            }
            Some((v, _)) if self.settings.policy.soft_timeout.is_some() => {
                let soft = self.settings.policy.soft_timeout.unwrap_or_default();
                match tokio::time::timeout(soft, task).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        tracing::debug!(?soft, "compute past its soft timeout; serving the kept value, the compute goes on");
                        obs.stale_served();
                        return Ok(v);
                    }
                }
            }
            _ => task.await,
        };
        match joined {
            Ok(out) => out.map_err(Into::into),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ComputeError::Cache(Error::new(
                crate::ErrorKind::Unavailable,
                self.backend().name(),
                "the runtime shut down while the value was computed",
            ))),
        }
    }

    /// The leader's work on a task of its own: join the single flight (or follow
    /// the one in progress), then lock, compute, write and release.
    fn spawn_leader<T, E, F, Fut>(
        &self,
        key: String,
        compute: F,
        fallback: Option<(T, envelope::Meta)>,
        (since, read_failed): (u64, bool),
    ) -> tokio::task::JoinHandle<Outcome<T, E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let cache = self.cache.clone();
        let settings = self.settings;
        tokio::spawn(async move {
            let call = Cached::with_settings(&cache, settings);
            let ty = TypeId::of::<Outcome<T, E>>();
            let guard = loop {
                match cache.inner.flights.join(ty, &key, since, read_failed) {
                    Role::Landed(out) => {
                        if let Some(out) = downcast::<T, E>(Some(out)) {
                            return call.or_own(out, fallback);
                        }
                    }
                    Role::Follower(rx) => {
                        if let Some(out) = received::<T, E>(follow(rx).await, since) {
                            return call.or_own(out, fallback);
                        }
                    }
                    Role::Leader(guard) => break guard,
                }
            };
            call.lead(&key, compute, fallback, false, &guard)
                .await
                .land(guard)
        })
    }

    /// Lock, re-read, compute, write, release. `fallback` is a stale or kept value
    /// (or a fresh one picked for early refresh): returned if the compute fails or
    /// times out (and, when `soft` allows, past the soft timeout).
    async fn lead<T, E, F, Fut>(
        &self,
        key: &str,
        compute: F,
        fallback: Option<(T, envelope::Meta)>,
        soft: bool,
        flight: &crate::flight::LeaderGuard<'_>,
    ) -> Led<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        // A value read from the store is there: callers that began before it was
        // found may take it for the length of one store call.
        let read_linger = later(self.settings.timeout + LINGER_MARGIN);
        let mut held = LockHold::default();
        // Another process held the lock for the whole wait.
        let mut waited_out = false;
        if self.settings.stampede_protection {
            let deadline = later(self.settings.lock_wait);
            let mut pause = Duration::from_millis(5);
            loop {
                let acquired = self
                    .guarded(
                        Op::AcquireLock,
                        key,
                        // Through the checks: the lock TTL is clamped with every other TTL.
                        self.backend().acquire_lock(key, self.settings.lock_timeout),
                    )
                    .await;
                match acquired {
                    Some(Some(token)) => {
                        held = LockHold::new(self.store().clone(), key.to_owned(), token);
                        break;
                    }
                    Some(None) => {
                        // Another process computes: watch for its value.
                        if !self.settings.refresh {
                            if let Some((v, _)) = self.read(key).await {
                                return Led::value(v, read_linger);
                            }
                        }
                        let now = Instant::now();
                        if now >= deadline {
                            waited_out = true;
                            tracing::warn!(key = %self.cache.inner.observe.log_key(key), wait = ?self.settings.lock_wait, "lock wait elapsed; computing without the lock (the value is returned, not stored)");
                            break;
                        }
                        tokio::time::sleep(pause.min(deadline - now)).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                    None => break,
                }
            }
            if held.is_held() && !self.settings.refresh {
                if let Some((v, meta)) = self.read(key).await {
                    // The value this leader was picked to refresh early is still the
                    // one stored: refresh it. Anything else was written meanwhile.
                    let same = matches!((&fallback, meta), (Some((_, f)), Some(m)) if f.written_at == m.written_at);
                    if !same {
                        held.release(self).await;
                        return Led::value(v, read_linger);
                    }
                }
            }
        }
        let clock = &self.cache.inner.clock;
        let started = clock.now_ms();
        // Callers that asked before this are not sure to be served by this compute's
        // value if it is superseded (see `received`).
        let began = self.cache.inner.flights.mark();
        let timer = std::time::Instant::now();
        // The closure is called inside the caught future: a panic before it returns
        // its future is caught too.
        let ran = self
            .run(async move { compute().await }, soft && fallback.is_some())
            .await;
        let took = Duration::from_millis(clock.now_ms().saturating_sub(started));
        let obs = &self.cache.inner.observe;
        match &ran {
            Ran::Done(r) => obs.computed(timer.elapsed(), r.is_err()),
            Ran::Hard(_) | Ran::Panicked(_) => obs.computed(timer.elapsed(), true),
            Ran::Soft => {}
        }
        let mut panic = None;
        let failure = match ran {
            Ran::Done(Ok(v)) if flight.overtaken() => {
                // This process wrote, deleted or cleared the key meanwhile: that
                // write wins; the value is returned, neither stored nor kept.
                tracing::debug!(key = %self.cache.inner.observe.log_key(key), "the key was written meanwhile; the computed value is not stored");
                held.release(self).await;
                return Led::superseded(v, began);
            }
            Ran::Done(Ok(v)) => {
                let mut written = None;
                match self
                    .cache
                    .encode_entry(&v, self.settings.expiry, &self.settings.policy, took)
                {
                    Ok((bytes, expiry)) => {
                        // Through the checks: the value's size, and an expiry already past.
                        let backend = self.backend();
                        written = match held.token() {
                            // Fenced: stored only while the lock is this leader's and
                            // nobody wrote, deleted or cleared the key meanwhile; the
                            // write releases the lock.
                            Some(token) => match self
                                .guarded(
                                    Op::Set,
                                    key,
                                    backend.set_locked(key, bytes, expiry, token),
                                )
                                .await
                            {
                                Some(stored) => {
                                    held.disarm();
                                    if !stored {
                                        tracing::debug!(key = %self.cache.inner.observe.log_key(key), "the lock expired or the key was written meanwhile; the computed value is not stored");
                                        return Led::superseded(v, began);
                                    }
                                    Some(())
                                }
                                None => None,
                            },
                            // With stampede protection, only the lock holder writes:
                            // a caller that computed without the lock (the wait
                            // elapsed, or the store did not answer) returns its value
                            // unstored, so it can never land over a newer write.
                            None if self.settings.stampede_protection => {
                                tracing::debug!(key = %self.cache.inner.observe.log_key(key), "computed without the lock; the value is not stored");
                                None
                            }
                            None => {
                                self.guarded(Op::Set, key, backend.set(key, bytes, expiry))
                                    .await
                            }
                        };
                    }
                    Err(e) => {
                        tracing::warn!(key = %self.cache.inner.observe.log_key(key), error = %e, "computed value cannot be encoded; not cached")
                    }
                }
                held.release(self).await;
                // Readable in process by the callers whose reads were already in
                // flight: with a slow store they end after this lands, and must not
                // compute again. Not stored: also by callers that cannot read the
                // store either, while the value is fresh.
                return match written {
                    Some(()) => Led::value(v, later(self.settings.timeout + LINGER_MARGIN)),
                    // Computed beside another process's compute: a write made
                    // meanwhile is not seen here, so followers look again.
                    None if waited_out => Led::superseded(v, began),
                    None => Led {
                        out: Ok(v),
                        linger: later(unconfirmed_linger(self.settings.expiry)),
                        open: true,
                        panic: None,
                        superseded: None,
                        shared: None,
                    },
                };
            }
            Ran::Done(Err(e)) => Failure::Compute(Arc::new(e)),
            Ran::Hard(d) => Failure::TimedOut(d),
            Ran::Panicked(payload) => {
                let message = panic_message(payload.as_ref());
                panic = Some(payload);
                Failure::Panicked(message)
            }
            Ran::Soft => {
                held.release(self).await;
                if fallback.is_some() {
                    obs.stale_served();
                }
                let timed_out =
                    Failure::TimedOut(self.settings.policy.soft_timeout.unwrap_or_default());
                let out = fallback.map(|(v, _)| v).ok_or(timed_out.clone());
                // Followers serve their own stale values (see `or_own`).
                return Led {
                    shared: Some(Err(timed_out)),
                    ..Led::failed(out, None)
                };
            }
        };
        held.release(self).await;
        // Followers get the failure, and serve their own fail-safe values (see
        // `or_own`): this one was read before they asked.
        let shared = Some(Err(failure.clone()));
        let out = match fallback {
            Some((v, _)) if panic.is_none() => {
                let why = match &failure {
                    Failure::Compute(_) => "the compute failed",
                    _ => "the compute timed out",
                };
                tracing::warn!(key = %self.cache.inner.observe.log_key(key), "{why}; serving the stale value kept for fail-safe");
                obs.stale_served();
                // Asked again once per throttle, not on every call; the throttle is
                // this process's own, so nothing is written over the store's value.
                self.cache
                    .throttle(key, self.settings.policy.fail_safe_throttle);
                Ok(v)
            }
            _ => Err(failure),
        };
        // The fail-safe answer, or the error, also reaches the callers whose reads were
        // under way when this landed: they are of this flight, and must not ask the
        // failing origin again (a panic is not kept).
        let linger = match panic {
            None => later(self.settings.timeout + LINGER_MARGIN),
            Some(_) => Instant::now(),
        };
        Led {
            shared: out.is_ok().then_some(shared).flatten(),
            out,
            linger,
            open: false,
            panic,
            superseded: None,
        }
    }

    /// Run the compute within the hard timeout, and the soft one when `soft`; a
    /// panic is caught, to reach the followers as an error.
    async fn run<T, E>(
        &self,
        fut: impl Future<Output = std::result::Result<T, E>>,
        soft: bool,
    ) -> Ran<T, E> {
        use futures::FutureExt;
        let mut fut = std::pin::pin!(std::panic::AssertUnwindSafe(fut).catch_unwind());
        let done = |r: std::thread::Result<std::result::Result<T, E>>| match r {
            Ok(r) => Ran::Done(r),
            Err(payload) => Ran::Panicked(payload),
        };
        let hard = self.settings.policy.hard_timeout;
        if let Some(s) = self
            .settings
            .policy
            .soft_timeout
            .filter(|s| soft && hard.is_none_or(|h| *s < h))
        {
            match tokio::time::timeout(s, &mut fut).await {
                Ok(r) => return done(r),
                Err(_) => return Ran::Soft,
            }
        }
        match hard {
            Some(h) => match tokio::time::timeout(h, fut).await {
                Ok(r) => done(r),
                Err(_) => Ran::Hard(h),
            },
            None => done(fut.await),
        }
    }
}

/// What a leader ends with: the outcome for every waiter, how long it stays readable
/// in process (see [`crate::flight`]), and a panic to resume in the leader's caller.
struct Led<T, E> {
    out: Outcome<T, E>,
    linger: Instant,
    open: bool,
    panic: Option<Box<dyn std::any::Any + Send>>,
    /// The value may be older than a write made while it was computed: the leader's
    /// own caller (who asked before that write) gets it; followers who asked after
    /// the compute began ([`Flights::mark`](crate::flight::Flights::mark) taken then)
    /// get it too, the others look again.
    superseded: Option<u64>,
    /// What followers get when it differs from `out`.
    shared: Option<Outcome<T, E>>,
}

impl<T, E> Led<T, E> {
    fn value(v: T, linger: Instant) -> Self {
        Led {
            out: Ok(v),
            linger,
            open: false,
            panic: None,
            superseded: None,
            shared: None,
        }
    }
    fn failed(out: Outcome<T, E>, panic: Option<Box<dyn std::any::Any + Send>>) -> Self {
        Led {
            out,
            linger: Instant::now(),
            open: false,
            panic,
            superseded: None,
            shared: None,
        }
    }
    fn superseded(v: T, began: u64) -> Self {
        Led {
            superseded: Some(began),
            ..Led::failed(Ok(v), None)
        }
    }
}

impl<T: Clone + Send + Sync + 'static, E: Send + Sync + 'static> Led<T, E> {
    /// Hand the outcome to the flight's followers; the leader's own caller gets it
    /// too, or the compute's panic.
    fn land(self, guard: crate::flight::LeaderGuard<'_>) -> Outcome<T, E> {
        if let Some(began) = self.superseded {
            guard.supersede(Arc::new(Later {
                began,
                out: self.out.clone(),
            }));
        } else {
            let shared = self.shared.unwrap_or_else(|| self.out.clone());
            guard.finish(Arc::new(shared), self.linger, self.open);
        }
        if let Some(payload) = self.panic {
            std::panic::resume_unwind(payload);
        }
        self.out
    }
}

/// `d` from now, saturating far in the future (a `Duration::MAX` timeout must not
/// overflow the clock).
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Added to the call timeout for how long a landed flight stays readable.
const LINGER_MARGIN: Duration = Duration::from_millis(50);

/// How long an outcome that could not be stored stays readable in process for
/// callers that cannot read the store either: the value's freshness, at most a
/// minute.
fn unconfirmed_linger(expiry: Expiry) -> Duration {
    const MOST: Duration = Duration::from_secs(60);
    match expiry.ttl() {
        crate::expiry::Ttl::For(d) => d.min(MOST),
        crate::expiry::Ttl::Forever => MOST,
        crate::expiry::Ttl::Expired => Duration::ZERO,
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A superseded flight's outcome (see [`Led::superseded`]): followers take it only if
/// its compute began after they asked.
struct Later<T, E> {
    began: u64,
    out: Outcome<T, E>,
}

/// A leader's outcome as a follower that asked at `since` (a [`Flights::mark`])
/// receives it; `None` if the leader went away, or if its value was superseded and
/// its compute began before this follower asked.
///
/// [`Flights::mark`]: crate::flight::Flights::mark
fn received<T: Clone + 'static, E: 'static>(
    outcome: Option<Arc<dyn std::any::Any + Send + Sync>>,
    since: u64,
) -> Option<Outcome<T, E>> {
    let outcome = outcome?;
    if let Some(later) = outcome.downcast_ref::<Later<T, E>>() {
        return (later.began > since).then(|| later.out.clone());
    }
    outcome.downcast_ref::<Outcome<T, E>>().cloned()
}

/// A leader's outcome as a follower receives it; `None` if the leader went away.
fn downcast<T: Clone + 'static, E: 'static>(
    outcome: Option<Arc<dyn std::any::Any + Send + Sync>>,
) -> Option<Outcome<T, E>> {
    outcome?.downcast_ref::<Outcome<T, E>>().cloned()
}

/// XFetch: refresh a fresh value early with a probability that rises as its expiry
/// nears, scaled by its compute's duration and `beta`.
fn refresh_early(now: u64, meta: &envelope::Meta, beta: f64) -> bool {
    if beta <= 0.0 || meta.fresh_until == envelope::NEVER || meta.compute_ms == 0 {
        return false;
    }
    let u = 1.0 - fastrand::f64(); // (0, 1]
    now as f64 - f64::from(meta.compute_ms) * beta * u.ln() >= meta.fresh_until as f64
}

/// A held lock; released explicitly, or in the background if the leader is dropped.
#[derive(Default)]
struct LockHold {
    inner: Option<(Arc<dyn CacheBackend>, String, LockToken)>,
}

impl LockHold {
    fn new(backend: Arc<dyn CacheBackend>, key: String, token: LockToken) -> Self {
        LockHold {
            inner: Some((backend, key, token)),
        }
    }
    fn is_held(&self) -> bool {
        self.inner.is_some()
    }
    fn token(&self) -> Option<&LockToken> {
        self.inner.as_ref().map(|(_, _, t)| t)
    }
    /// The lock was released by the fenced write: nothing left to do.
    fn disarm(&mut self) {
        self.inner = None;
    }
    async fn release<C: Codec>(&mut self, call: &Cached<'_, C>) {
        // Always attempted, even after a failed call: others wait on this lock.
        if let Some((backend, key, token)) = self.inner.take() {
            match tokio::time::timeout(call.settings.timeout, backend.release_lock(&key, &token))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "releasing the lock failed; it expires by itself")
                }
                Err(_) => tracing::warn!("releasing the lock timed out; it expires by itself"),
            }
        }
    }
}

impl Drop for LockHold {
    fn drop(&mut self) {
        if let Some((backend, key, token)) = self.inner.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = backend.release_lock(&key, &token).await {
                        tracing::warn!(error = %e, "releasing an abandoned lock failed; it expires by itself");
                    }
                });
            }
        }
    }
}
