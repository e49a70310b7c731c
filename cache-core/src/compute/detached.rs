//! Get-or-compute with the compute on a task of its own: stale values served at once
//! and refreshed in the background, a soft timeout that lets the compute go on.

use super::call::{skipped, ComputeCall};
use super::error::{ComputeError, Outcome};
use super::landing::{downcast, received};
use super::lookup::Found;
use super::{Cacheable, Computed};
use crate::codec::Codec;
use crate::envelope;
use crate::error::{Error, Result};
use crate::flight::{follow, Role};
use crate::observe::{in_span, Op};
use std::any::TypeId;
use std::future::Future;
use std::sync::atomic::Ordering;

impl<C: Codec> ComputeCall<'_, C> {
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
        self,
        compute: F,
    ) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        self.get_or_compute_detached_with(|| async move { compute().await.map(Computed::store) })
            .await
    }

    /// [`get_or_compute_detached`](Self::get_or_compute_detached) for a compute that
    /// decides, with its value, whether to store it and for how long (see
    /// [`Computed`]).
    pub async fn get_or_compute_detached_with<T, E, F, Fut>(
        mut self,
        compute: F,
    ) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        let key = self.full_key()?;
        if self.skip {
            return skipped(compute).await;
        }
        self.scope = self.cache.inner.observe.scope(self.namespace.as_deref());
        let span = self.observe().span(Op::GetOrCompute, &key);
        in_span(span, self.detached(key, compute)).await
    }

    /// [`get_or_compute_detached`](Self::get_or_compute_detached) past the key checks.
    async fn detached<T, E, F, Fut>(self, key: String, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        let (mut fallback, mut serve_now, mut missed) = (None, false, false);
        let flights = &self.cache.inner.flights;
        let since = flights.mark();
        let refresh = self.settings.refresh.then(|| flights.refresh_mark());
        if !self.settings.refresh {
            let found = self.lookup::<T>(&key, true).await;
            missed = self.count(&found);
            match found {
                Found::Fresh(v, _) => return Ok(v),
                // After a fail-safe answer, not refreshed again within the throttle.
                Found::Stale(v, _) | Found::Kept(v, _) if self.cache.throttled(&key) => {
                    self.settle(missed, false);
                    self.observe().stale_served();
                    return Ok(v);
                }
                Found::Stale(v, m) => (fallback, serve_now) = (Some((v, m)), true),
                Found::Kept(v, m) => fallback = Some((v, m)),
                Found::Miss => {}
            }
        }
        let read_failed = self.degraded.load(Ordering::Relaxed);
        let task = self.spawn_leader(
            key,
            compute,
            fallback.clone(),
            (since, read_failed, refresh),
        );
        let obs = self.observe();
        let joined = match fallback {
            Some((v, _)) if serve_now => {
                self.settle(missed, false);
                obs.stale_served();
                return Ok(v);
            }
            Some((v, _)) if self.options().soft_timeout.is_some() => {
                let soft = self.options().soft_timeout.unwrap_or_default();
                match tokio::time::timeout(soft, task).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        tracing::debug!(?soft, "compute past its soft timeout; serving the kept value, the compute goes on");
                        self.settle(missed, false);
                        obs.stale_served();
                        return Ok(v);
                    }
                }
            }
            _ => task.await,
        };
        // Coalesced when the task took another caller's compute.
        self.settle(missed, matches!(joined, Ok((_, true))));
        match joined {
            Ok((out, _)) => out.map_err(Into::into),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ComputeError::Cache(Error::new(
                crate::ErrorKind::Unavailable,
                self.backend().name(),
                "the runtime shut down while the value was computed",
            ))),
        }
    }

    /// The leader's work on a task of its own: join the single flight (or follow
    /// the one in progress), then lock, compute, write and release; `true` with the
    /// outcome when it is another caller's compute's.
    fn spawn_leader<T, E, F, Fut>(
        &self,
        key: String,
        compute: F,
        fallback: Option<(T, envelope::Meta)>,
        (since, read_failed, refresh): (u64, bool, Option<u64>),
    ) -> tokio::task::JoinHandle<(Outcome<T, E>, bool)>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Computed<T>, E>> + Send + 'static,
    {
        let cache = self.cache.clone();
        let settings = self.settings;
        let scope = self.scope.clone();
        tokio::spawn(async move {
            let mut call = ComputeCall::with_settings(&cache, settings);
            call.scope = scope;
            let ty = TypeId::of::<Outcome<T, E>>();
            let guard = loop {
                match cache
                    .inner
                    .flights
                    .join(ty, &key, since, read_failed, refresh)
                {
                    Role::Busy(rx) => drop(follow(rx).await),
                    Role::Landed(out) => {
                        if let Some(out) = downcast::<T, E>(Some(out)) {
                            return (call.or_own(out, fallback), true);
                        }
                    }
                    Role::Follower(rx) => {
                        if let Some(out) = received::<T, E>(follow(rx).await, since) {
                            return (call.or_own(out, fallback), true);
                        }
                    }
                    Role::Leader(guard) => break guard,
                }
            };
            let led = call.lead(&key, compute, fallback, false, &guard).await;
            let coalesced = led.coalesced;
            (led.land(guard), coalesced)
        })
    }
}
