//! The typed [`Cache`] handle.

use crate::backend::{CacheBackend, Capabilities};
use crate::checked::Checked;
use crate::codec::{Codec, MessagePack};
use crate::error::Result;
use crate::expiry::Expiry;
use crate::flight::Flights;
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Defaults for get-or-compute, set on the [`CacheBuilder`] and overridable per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComputeDefaults {
    pub(crate) timeout: Duration,
    pub(crate) stampede_protection: bool,
    pub(crate) lock_timeout: Duration,
    pub(crate) lock_wait: Duration,
}

pub(crate) struct Inner<C> {
    pub(crate) backend: Checked,
    pub(crate) codec: C,
    pub(crate) default_expiry: Expiry,
    pub(crate) compute: ComputeDefaults,
    pub(crate) flights: Flights,
}

/// A cheap-to-clone typed handle over any [`CacheBackend`].
///
/// Values are encoded with the codec `C` ([`MessagePack`] by default). Clones share the
/// backend and the in-process single flight of [`Cache::get_or_compute`].
///
/// ```
/// # use cache_core::{Cache, CacheBackend};
/// # async fn demo(backend: impl CacheBackend) -> cache_core::Result<()> {
/// use std::time::Duration;
/// let cache = Cache::builder(backend).default_expiry(Duration::from_secs(60)).build();
/// cache.set("user:1", &"ada", Duration::from_secs(5)).await?;
/// assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("ada"));
/// # Ok(()) }
/// ```
pub struct Cache<C: Codec = MessagePack> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C: Codec> Clone for Cache<C> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Codec> fmt::Debug for Cache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.inner.backend.name())
            .field("codec", &self.inner.codec.name())
            .field("default_expiry", &self.inner.default_expiry)
            .finish()
    }
}

impl Cache<MessagePack> {
    /// A cache over `backend` with MessagePack values and no default expiry.
    pub fn new(backend: impl CacheBackend) -> Self {
        Self::builder(backend).build()
    }

    /// A cache over a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        CacheBuilder::from_arc(backend).build()
    }

    /// Configure a cache over `backend`.
    pub fn builder(backend: impl CacheBackend) -> CacheBuilder<MessagePack> {
        CacheBuilder::from_arc(Arc::new(backend))
    }
}

/// Builder for [`Cache`].
#[must_use]
pub struct CacheBuilder<C: Codec = MessagePack> {
    backend: Arc<dyn CacheBackend>,
    codec: C,
    default_expiry: Expiry,
    compute: ComputeDefaults,
}

impl CacheBuilder<MessagePack> {
    /// Start from a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        CacheBuilder {
            backend,
            codec: MessagePack,
            default_expiry: Expiry::Never,
            compute: ComputeDefaults {
                timeout: Duration::from_secs(1),
                stampede_protection: true,
                lock_timeout: Duration::from_secs(30),
                lock_wait: Duration::from_secs(5),
            },
        }
    }
}

impl<C: Codec> CacheBuilder<C> {
    /// Use another codec.
    pub fn codec<C2: Codec>(self, codec: C2) -> CacheBuilder<C2> {
        CacheBuilder {
            backend: self.backend,
            codec,
            default_expiry: self.default_expiry,
            compute: self.compute,
        }
    }
    /// Expiry used by [`Cache::insert`] and get-or-compute when none is given.
    pub fn default_expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.default_expiry = expiry.into();
        self
    }
    /// Bound on each backend call made by get-or-compute (default 1 s); past it the
    /// call fails open: the value is computed and returned, a warning is logged.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.compute.timeout = timeout;
        self
    }
    /// Whether get-or-compute takes the backend's lock on a miss (default on).
    pub fn stampede_protection(mut self, on: bool) -> Self {
        self.compute.stampede_protection = on;
        self
    }
    /// How long a get-or-compute lock lives before it frees itself (default 30 s, as in the Python library).
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.compute.lock_timeout = d;
        self
    }
    /// How long get-or-compute waits for another holder before computing itself (default 5 s, as in the Python library).
    pub fn lock_wait(mut self, d: Duration) -> Self {
        self.compute.lock_wait = d;
        self
    }
    /// Put a [`CircuitBreaker`](crate::CircuitBreaker) with `config` around the
    /// backend (default: none): after a run of failed calls the store is skipped at
    /// once — get-or-compute computes without waiting for it, plain calls return
    /// [`Unavailable`](crate::ErrorKind::Unavailable) — until a probe call succeeds.
    pub fn circuit_breaker(mut self, config: crate::BreakerConfig) -> Self {
        self.backend = Arc::new(crate::CircuitBreaker::new(self.backend, config));
        self
    }
    /// Finish.
    pub fn build(self) -> Cache<C> {
        Cache {
            inner: Arc::new(Inner {
                backend: Checked::new(self.backend),
                codec: self.codec,
                default_expiry: self.default_expiry,
                compute: self.compute,
                flights: Flights::default(),
            }),
        }
    }
}

impl<C: Codec> Cache<C> {
    /// The backend under this handle, behind its [`Checked`] layer.
    pub fn backend(&self) -> &Checked {
        &self.inner.backend
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.inner.codec
    }

    /// The backend's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.backend.capabilities()
    }

    /// The default expiry.
    pub fn default_expiry(&self) -> Expiry {
        self.inner.default_expiry
    }

    /// The value under `key`, decoded as `T`. Bytes that do not decode as `T` are a
    /// [`Serialization`](crate::ErrorKind::Serialization) error.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let codec = &self.inner.codec;
        if let Some(answer) = self.inner.backend.decode_now(key, |b| codec.decode(b)) {
            return answer;
        }
        match self.inner.backend.get(key).await? {
            Some(bytes) => self.inner.codec.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Store `value` under `key` with `expiry` (a `Duration`, whole seconds as `u64`,
    /// an [`Expiry`], or `None::<Duration>` for no expiry).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        let bytes = Bytes::from(self.inner.codec.encode(value)?);
        self.inner.backend.set(key, bytes, expiry.into()).await
    }

    /// Store `value` under `key` with the default expiry.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set(key, value, self.inner.default_expiry).await
    }

    /// Remove `key`; true if something was there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.backend.delete(key).await
    }

    /// Whether a value is stored under `key`.
    pub async fn has(&self, key: &str) -> Result<bool> {
        self.inner.backend.has(key).await
    }

    /// Remove every value of this cache's namespace.
    pub async fn clear(&self) -> Result<()> {
        self.inner.backend.clear().await
    }

    /// Values for many keys, in order.
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let raw = self.inner.backend.get_many(keys).await?;
        raw.into_iter()
            .map(|v| v.map(|b| self.inner.codec.decode(&b)).transpose())
            .collect()
    }

    /// Store many values with one expiry.
    pub async fn set_many<T: Serialize>(
        &self,
        items: &[(&str, T)],
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        let encoded = items
            .iter()
            .map(|(k, v)| Ok((*k, Bytes::from(self.inner.codec.encode(v)?))))
            .collect::<Result<Vec<_>>>()?;
        self.inner.backend.set_many(&encoded, expiry.into()).await
    }

    /// Remove many keys; returns how many were there.
    pub async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.inner.backend.delete_many(keys).await
    }

    /// Store `value` only if `key` holds nothing; true if stored.
    pub async fn set_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        let bytes = Bytes::from(self.inner.codec.encode(value)?);
        self.inner
            .backend
            .set_if_absent(key, bytes, expiry.into())
            .await
    }

    /// Close the backend.
    pub async fn close(&self) -> Result<()> {
        self.inner.backend.close().await
    }
}
