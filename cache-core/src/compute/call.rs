//! The call builder, [`ComputeCall`], and a call's road: its key, its read, its single
//! flight.

use super::error::{ComputeError, Failure, Outcome};
use super::landing::{downcast, received};
use super::lookup::Found;
use super::options::{call_setters, Options};
use super::{Cacheable, Computed, IntoKey};
use crate::cache::Cache;
use crate::codec::Codec;
use crate::envelope;
use crate::error::{Error, Result};
use crate::expiry::Expiry;
use crate::flight::{follow, Role};
use crate::observe::{in_span, Op, Scope, Scoped};
use crate::raw::{validate_key, validate_namespace};
use crate::Checked;
use std::any::TypeId;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A call's settings; a background refresh carries a copy.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) expiry: Expiry,
    pub(crate) refresh: bool,
    pub(crate) options: Options,
}

/// One get-or-compute call with its options; made by [`Cache::cached`].
///
/// 1. Read; a hit returns at once. A value that no longer decodes is a miss.
/// 2. On a miss, callers of one [`Cache`] asking for the same key (and type) wait for
///    one leader.
/// 3. With stampede protection, the leader takes the backend's lock (it frees itself
///    after its TTL, [`lock_ttl`](Self::lock_ttl)), re-reads, computes, and writes with
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
pub struct ComputeCall<'a, C: Codec> {
    pub(super) cache: &'a Cache<C>,
    pub(super) key: Result<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) skip: bool,
    pub(crate) settings: Settings,
    /// Set after the first failed backend call: the rest of this call skips the
    /// backend, so a down store costs one timeout, not one per step.
    pub(super) degraded: AtomicBool,
    /// The labels of this call's metrics and span (its namespace's).
    pub(super) scope: Scope,
}

impl<C: Codec> Cache<C> {
    /// Get-or-compute with this cache's defaults: see [`ComputeCall::get_or_compute`].
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
    ///     .lock_ttl(Duration::from_secs(5))
    ///     .get_or_compute(|| async { Ok::<_, std::io::Error>(format!("user {user_id}")) })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub fn cached(&self, key: impl IntoKey) -> ComputeCall<'_, C> {
        ComputeCall {
            key: key.into_key(),
            ..ComputeCall::with_settings(
                self,
                Settings {
                    expiry: self.inner.default_expiry,
                    refresh: false,
                    options: self.inner.compute,
                },
            )
        }
    }
}

impl<'a, C: Codec> ComputeCall<'a, C> {
    call_setters!();

    /// A call with `settings` on `cache`, for a background task (the key is already
    /// whole).
    pub(super) fn with_settings(cache: &'a Cache<C>, settings: Settings) -> Self {
        ComputeCall {
            cache,
            key: Ok(String::new()),
            namespace: None,
            skip: false,
            settings,
            degraded: AtomicBool::new(false),
            scope: Scope::default(),
        }
    }

    /// This call's metrics, stats and span, under its namespace's labels.
    pub(super) fn observe(&self) -> Scoped<'_> {
        self.cache.inner.observe.scoped(&self.scope)
    }

    pub(super) fn options(&self) -> &Options {
        &self.settings.options
    }

    /// The store, behind the checks; get-or-compute's key is checked once, by
    /// [`Self::full_key`], and the calls made with it do not check it again.
    pub(super) fn backend(&self) -> &Checked {
        &self.cache.inner.backend
    }

    /// The key as stored (namespace and key), checked once for the whole call, with
    /// the options that would refuse it.
    pub(super) fn full_key(&mut self) -> Result<String> {
        let key = self.key_only()?;
        let backend = self.backend().name();
        let o = self.options();
        if o.stampede_protection && o.lock_ttl.is_zero() {
            return Err(Error::invalid_input(
                backend,
                "lock_ttl must be positive (or turn stampede protection off)",
            ));
        }
        Ok(key)
    }

    /// The key as stored (namespace and key), checked.
    pub(super) fn key_only(&mut self) -> Result<String> {
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
        Ok(key)
    }

    /// Run a backend call bounded by the timeout; errors and timeouts become `None`
    /// with a warning (fail open).
    pub(super) async fn guarded<T>(
        &self,
        op: Op,
        key: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Option<T> {
        if self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        let obs = self.observe();
        let started = obs.start();
        let timeout = self.options().store_timeout;
        let outcome = tokio::time::timeout(timeout, fut).await;
        obs.latency(op, started);
        let err = match outcome {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.in_operation(op.as_str()),
            Err(_) => Error::timeout(self.backend().name(), timeout).in_operation(op.as_str()),
        };
        obs.error(err.kind());
        self.degraded.store(true, Ordering::Relaxed);
        let op = op.as_str();
        let key = obs.log_key(key);
        tracing::warn!(op, %key, error = %err, "cache call failed; continuing without the cache");
        None
    }

    /// Look up the key; on a miss compute the value with `compute`, store it and
    /// return it. See [`ComputeCall`] for the rules.
    pub async fn get_or_compute<T, E, F, Fut>(self, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        self.get_or_compute_with(|| async move { compute().await.map(Computed::store) })
            .await
    }

    /// [`get_or_compute`](Self::get_or_compute) for a compute that decides, with its
    /// value, whether to store it and for how long (see [`Computed`]).
    pub async fn get_or_compute_with<T, E, F, Fut>(
        mut self,
        compute: F,
    ) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Computed<T>, E>>,
    {
        let key = self.full_key()?;
        if self.skip {
            return skipped(compute).await;
        }
        self.scope = self.cache.inner.observe.scope(self.namespace.as_deref());
        let span = self.observe().span(Op::GetOrCompute, &key);
        let body = async move {
            let flights = &self.cache.inner.flights;
            // Flights are keyed by the outcome's type too, so a follower's downcast holds.
            let ty = TypeId::of::<Outcome<T, E>>();
            let mut first = true;
            // The first read found no fresh value: a miss or coalesced, once known.
            let mut missed = false;
            // Taken once: a caller that looks again after a superseded flight still
            // asked at this point.
            let since = flights.mark();
            let refresh = self.settings.refresh.then(|| flights.refresh_mark());
            loop {
                let mut fallback = None;
                if !self.settings.refresh {
                    let found = self.lookup::<T>(&key, true).await;
                    if std::mem::take(&mut first) {
                        missed = self.count(&found);
                    }
                    match found {
                        Found::Fresh(v, _) => {
                            // After a flight this caller waited on went away.
                            self.settle(missed, true);
                            return Ok(v);
                        }
                        // Refreshed here, in the caller; served if the compute fails.
                        Found::Stale(v, m) | Found::Kept(v, m) => {
                            if self.cache.throttled(&key) {
                                self.settle(missed, false);
                                self.observe().stale_served();
                                return Ok(v);
                            }
                            fallback = Some((v, m))
                        }
                        Found::Miss => {}
                    }
                }
                let read_failed = self.degraded.load(Ordering::Relaxed);
                match flights.join(ty, &key, since, read_failed, refresh) {
                    // A refresh waits out a flight that may have computed before it.
                    Role::Busy(rx) => drop(follow(rx).await),
                    Role::Landed(out) => {
                        if let Some(out) = downcast::<T, E>(Some(out)) {
                            self.settle(missed, true);
                            return self.or_own(out, fallback).map_err(Into::into);
                        }
                    }
                    Role::Follower(rx) => {
                        // `None`: the leader went away (dropped), or its value may be
                        // older than this caller; take over.
                        if let Some(out) = received::<T, E>(follow(rx).await, since) {
                            self.settle(missed, true);
                            return self.or_own(out, fallback).map_err(Into::into);
                        }
                    }
                    Role::Leader(guard) => {
                        let led = self.lead(&key, compute, fallback, true, &guard).await;
                        self.settle(missed, led.coalesced);
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
    pub(super) fn or_own<T, E>(
        &self,
        out: Outcome<T, E>,
        fallback: Option<(T, envelope::Meta)>,
    ) -> Outcome<T, E> {
        match (out, fallback) {
            (Err(Failure::Compute(_) | Failure::TimedOut(_)), Some((v, _))) => {
                self.observe().stale_served();
                Ok(v)
            }
            (out, _) => out,
        }
    }

    /// Count a lookup for the stats and on the current span: a fresh value is a hit;
    /// anything else (absent, stale, kept) is left to [`settle`](Self::settle), and
    /// `true` says so.
    pub(super) fn count<T>(&self, found: &Found<T>) -> bool {
        let hit = matches!(found, Found::Fresh(..));
        if hit {
            self.observe().reads(1, 0);
            tracing::Span::current().record("hit", true);
        }
        !hit
    }

    /// Count a read [`count`](Self::count) left (`missed`): a miss, or coalesced when
    /// this caller took another caller's compute.
    pub(super) fn settle(&self, missed: bool, coalesced: bool) {
        if missed {
            self.observe().missed(coalesced);
        }
    }
}

/// A skipped call: the compute alone, its error as every waiter would get it.
pub(super) async fn skipped<T, E, Fut>(compute: impl FnOnce() -> Fut) -> Result<T, ComputeError<E>>
where
    Fut: Future<Output = std::result::Result<Computed<T>, E>>,
{
    compute()
        .await
        .map(Computed::into_value)
        .map_err(|e| ComputeError::Compute(Arc::new(e)))
}
