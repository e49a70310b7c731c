//! Get-or-compute: the cache as a decorator, with stampede protection; the rules
//! are on [`Cached`].

use crate::backend::{CacheBackend, LockToken};
use crate::cache::Cache;
use crate::checked::Checked;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::{follow, Role};
use crate::key::KeyBuilder;
use crate::raw::{validate_key, validate_namespace};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Error of get-or-compute: the compute's own error (shared by every waiter), or a
/// cache error that no fail-open can skip (an invalid key or namespace).
pub enum ComputeError<E> {
    /// The compute function failed; every caller waiting on it gets the same error.
    Compute(Arc<E>),
    /// The call itself was invalid.
    Cache(Error),
}

impl<E> ComputeError<E> {
    /// The compute function's error, if that is what this is.
    pub fn compute_error(&self) -> Option<&E> {
        match self {
            ComputeError::Compute(e) => Some(e),
            ComputeError::Cache(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => f.debug_tuple("Compute").field(e).finish(),
            ComputeError::Cache(e) => f.debug_tuple("Cache").field(e).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => write!(f, "compute failed: {e}"),
            ComputeError::Cache(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ComputeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComputeError::Compute(e) => Some(e.as_ref()),
            ComputeError::Cache(e) => Some(e),
        }
    }
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
///    after the lock timeout), re-reads, computes, writes and releases. While another
///    process holds the lock it polls the value, and after the lock wait computes itself.
/// 4. A compute error reaches every waiter; nothing is cached.
/// 5. Backend errors and timeouts fail open: the value is computed and returned and a
///    warning is logged through `tracing`.
#[must_use = "call .get_or_compute(...) to run it"]
pub struct Cached<'a, C: Codec> {
    cache: &'a Cache<C>,
    key: Result<String>,
    namespace: Option<String>,
    expiry: Expiry,
    timeout: Duration,
    stampede_protection: bool,
    lock_timeout: Duration,
    lock_wait: Duration,
    skip: bool,
    refresh: bool,
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
            expiry: self.inner.default_expiry,
            timeout: d.timeout,
            stampede_protection: d.stampede_protection,
            lock_timeout: d.lock_timeout,
            lock_wait: d.lock_wait,
            skip: false,
            refresh: false,
            degraded: AtomicBool::new(false),
        }
    }
}

impl<'a, C: Codec> Cached<'a, C> {
    /// Expiry of the computed value (default: the cache's default expiry).
    pub fn expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.expiry = expiry.into();
        self
    }
    /// Prefix the key with `namespace:` (within the backend's own namespace).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
    /// Bound on each backend call; past it the call fails open.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Take the backend's lock on a miss so one process computes (default on).
    pub fn stampede_protection(mut self, on: bool) -> Self {
        self.stampede_protection = on;
        self
    }
    /// How long the lock lives before it frees itself.
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }
    /// How long to wait for another holder before computing anyway.
    pub fn lock_wait(mut self, d: Duration) -> Self {
        self.lock_wait = d;
        self
    }
    /// Bypass the cache for this call: no read, no write, just compute.
    pub fn skip(mut self, skip: bool) -> Self {
        self.skip = skip;
        self
    }
    /// Do not read: compute and overwrite the cached value.
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
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
        if self.stampede_protection && self.lock_timeout.is_zero() {
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
        op: &'static str,
        key: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Option<T> {
        if self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        let outcome = match self.backend().check_open(op) {
            Ok(()) => tokio::time::timeout(self.timeout, fut).await,
            Err(closed) => Ok(Err(closed)),
        };
        let err = match outcome {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.in_operation(op),
            Err(_) => Error::timeout(self.backend().name(), self.timeout).in_operation(op),
        };
        self.degraded.store(true, Ordering::Relaxed);
        tracing::warn!(op, key, error = %err, "cache call failed; continuing without the cache");
        None
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.guarded("get", key, self.store().get(key)).await??;
        match self.cache.inner.codec.decode(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(key, error = %e, "cached value no longer decodes; treating it as a miss");
                None
            }
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
        let flights = &self.cache.inner.flights;
        // Flights are keyed by the outcome's type too, so a follower's downcast holds.
        let ty = TypeId::of::<std::result::Result<T, Arc<E>>>();
        loop {
            if !self.refresh {
                if let Some(v) = self.read::<T>(&key).await {
                    return Ok(v);
                }
            }
            match flights.join(ty, &key) {
                Role::Follower(rx) => {
                    // `None`: the leader went away (dropped or panicked); take over.
                    let outcome = follow(rx).await;
                    match outcome
                        .as_deref()
                        .and_then(|any| any.downcast_ref::<std::result::Result<T, Arc<E>>>())
                    {
                        Some(Ok(v)) => return Ok(v.clone()),
                        Some(Err(e)) => return Err(ComputeError::Compute(e.clone())),
                        None => {}
                    }
                }
                Role::Leader(guard) => {
                    let out = self.lead(&key, compute).await;
                    guard.finish(Arc::new(out.clone()));
                    return out.map_err(ComputeError::Compute);
                }
            }
        }
    }

    async fn lead<T, E, F, Fut>(&self, key: &str, compute: F) -> std::result::Result<T, Arc<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let mut held = LockHold::default();
        if self.stampede_protection {
            let deadline = Instant::now() + self.lock_wait;
            let mut pause = Duration::from_millis(5);
            loop {
                let acquired = self
                    .guarded(
                        "acquire_lock",
                        key,
                        self.store().acquire_lock(key, self.lock_timeout),
                    )
                    .await;
                match acquired {
                    Some(Some(token)) => {
                        held = LockHold::new(self.store().clone(), key.to_owned(), token);
                        break;
                    }
                    Some(None) => {
                        // Another process computes: watch for its value.
                        if !self.refresh {
                            if let Some(v) = self.read(key).await {
                                return Ok(v);
                            }
                        }
                        let now = Instant::now();
                        if now >= deadline {
                            tracing::warn!(key, wait = ?self.lock_wait, "lock wait elapsed; computing without the lock");
                            break;
                        }
                        tokio::time::sleep(pause.min(deadline - now)).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                    None => break,
                }
            }
            if held.is_held() && !self.refresh {
                if let Some(v) = self.read(key).await {
                    held.release(self).await;
                    return Ok(v);
                }
            }
        }
        let result = compute().await;
        if let Ok(v) = &result {
            match self.cache.inner.codec.encode(v) {
                Ok(bytes) => {
                    self.guarded(
                        "set",
                        key,
                        // Through the checks: the value's size, and an expiry already past.
                        self.backend().set(key, Bytes::from(bytes), self.expiry),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "computed value cannot be encoded; not cached")
                }
            }
        }
        held.release(self).await;
        result.map_err(Arc::new)
    }
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
    async fn release<C: Codec>(&mut self, call: &Cached<'_, C>) {
        // Always attempted, even after a failed call: others wait on this lock.
        if let Some((backend, key, token)) = self.inner.take() {
            match tokio::time::timeout(call.timeout, backend.release_lock(&key, &token)).await {
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
