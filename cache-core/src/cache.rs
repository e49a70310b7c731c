//! The typed [`Cache`] handle.

use crate::backend::{CacheBackend, Capabilities};
use crate::builder::CacheBuilder;
use crate::clock::Clock;
use crate::codec::{Codec, MessagePack};
use crate::compute::Options;
use crate::envelope::{self, Meta, Opened};
use crate::error::Result;
use crate::expiry::Expiry;
use crate::flight::Flights;
use crate::observe::{in_span, CacheStats, Observer, Op};
use crate::{Checked, CircuitBreaker};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Inner<C> {
    pub(crate) backend: Checked,
    /// The breaker inside `backend`, if the cache has one.
    pub(crate) breaker: Option<Arc<CircuitBreaker>>,
    pub(crate) codec: C,
    pub(crate) default_expiry: Expiry,
    pub(crate) compute: Options,
    pub(crate) flights: Flights,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) observe: Observer,
    /// Keys whose compute failed and got a fail-safe answer: until when (on the
    /// clock) they are not computed again. In process, never written to the store.
    pub(crate) throttles: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
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
    /// A cache over `backend` with MessagePack values and the defaults of
    /// [`CacheBuilder`]: on a networked store a [`CircuitBreaker`] and a default
    /// expiry of 1 hour, on an in-process one neither.
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

/// Throttled keys kept at most; past it the expired go, then all (only the throttle
/// is lost: the origin is asked once more).
const MAX_THROTTLES: usize = 10_000;

impl<C: Codec> Cache<C> {
    /// Do not compute `key` again for `d` (after a fail-safe answer).
    pub(crate) fn throttle(&self, key: &str, d: Duration) {
        let now = self.inner.clock.now_ms();
        let mut t = self.inner.throttles.lock();
        if t.len() >= MAX_THROTTLES {
            t.retain(|_, until| *until > now);
            if t.len() >= MAX_THROTTLES {
                t.clear();
            }
        }
        t.insert(key.to_owned(), now.saturating_add(d.as_millis() as u64));
    }

    /// Whether `key` is throttled now.
    pub(crate) fn throttled(&self, key: &str) -> bool {
        let t = self.inner.throttles.lock();
        if t.is_empty() {
            return false;
        }
        t.get(key)
            .is_some_and(|until| self.inner.clock.now_ms() < *until)
    }

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

    /// The default expiry (see [`CacheBuilder::default_expiry`]).
    pub fn default_expiry(&self) -> Expiry {
        self.inner.default_expiry
    }

    /// The [`CircuitBreaker`] around the backend, if the cache has one (see
    /// [`CacheBuilder::circuit_breaker`]): its [`state`](CircuitBreaker::state) tells
    /// whether calls skip the store now, for a health check, say.
    pub fn circuit_breaker(&self) -> Option<&CircuitBreaker> {
        self.inner.breaker.as_deref()
    }

    /// The value under `key`, decoded as `T`. Bytes that do not decode as `T` are a
    /// [`Serialization`](crate::ErrorKind::Serialization) error. Values written by
    /// get-or-compute carry a small header (freshness, for stale-while-revalidate and
    /// fail-safe), which this reads past; one that get-or-compute keeps beyond its
    /// expiry (stale, or for fail-safe) reads as `None`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let backend = &self.inner.backend;
        // The key is checked once, here (a bad one answers at once); an in-process
        // store answers here too, without a future.
        if let Some(answer) = backend.decode_now(key, |b| self.decode_entry(b)) {
            self.inner.observe.outcome_now(Op::Get, key, &answer, found);
            return answer;
        }
        let read = async {
            match backend.get_awaited_valid(key).await? {
                Some(bytes) => self.decode_entry(&bytes),
                None => Ok(None),
            }
        };
        self.call(Op::Get, key, read, found).await
    }

    /// What this cache has counted since it was built (see [`CacheStats`]).
    pub fn stats(&self) -> CacheStats {
        self.inner.observe.stats()
    }

    /// Run one backend call of `op` in its span, timed and counted; `reads` says how
    /// many hits and misses a success is.
    pub(crate) async fn call<T>(
        &self,
        op: Op,
        key: &str,
        fut: impl Future<Output = Result<T>>,
        reads: impl FnOnce(&T) -> (u64, u64),
    ) -> Result<T> {
        let obs = &self.inner.observe;
        let span = obs.span(op, key);
        let started = obs.start();
        let out = in_span(span.clone(), fut).await;
        obs.latency(op, started);
        obs.outcome(&span, &out, reads);
        out
    }

    /// Decode a stored value: header or not (see the envelope module).
    #[inline]
    pub(crate) fn decode_entry<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Option<T>> {
        match envelope::open(bytes) {
            Opened::Bare(b) => self.inner.codec.decode(b).map(Some),
            Opened::Unknown => Err(crate::Error::from_origin(
                crate::ErrorKind::Serialization,
                crate::Origin::Codec(self.inner.codec.name()),
                "the stored value has a header this version does not know (written by a newer version of the library, or not by it)",
            )),
            Opened::Enveloped(meta, payload) => {
                // Kept past its expiry for get-or-compute (stale, or for fail-safe):
                // placed by the cache's clock; otherwise the store's expiry is its own.
                // (`Meta::age` is not `Fresh` past `fresh_until`.)
                if meta.outlives_freshness() && self.inner.clock.now_ms() >= meta.fresh_until {
                    return Ok(None);
                }
                self.inner.codec.decode(payload).map(Some)
            }
        }
    }

    /// The stored form of `value`: header and codec bytes, and the store's expiry.
    pub(crate) fn encode_entry<T: Serialize + ?Sized>(
        &self,
        value: &T,
        expiry: Expiry,
        options: &Options,
        compute: Duration,
    ) -> Result<(Bytes, Expiry)> {
        let now = self.inner.clock.now_ms();
        let (stale_for, keep_for) = (options.stale_for, options.keep_for());
        let Some(meta) = Meta::new(now, expiry, stale_for, keep_for, compute) else {
            // Already expired: the write becomes a delete.
            return Ok((Bytes::new(), Expiry::After(Duration::ZERO)));
        };
        self.encode_with(value, &meta, now, expiry)
    }

    /// `value` behind the header `meta`, and the store's expiry at `now` for a value
    /// written with `expiry`.
    pub(crate) fn encode_with<T: Serialize + ?Sized>(
        &self,
        value: &T,
        meta: &Meta,
        now: u64,
        expiry: Expiry,
    ) -> Result<(Bytes, Expiry)> {
        let mut out = Vec::with_capacity(envelope::HEADER + 64);
        meta.write_header(&mut out);
        self.inner.codec.encode_into(value, &mut out)?;
        Ok((Bytes::from(out), meta.store_expiry(now, expiry)))
    }

    /// Store `value` under `key` with `expiry` (a `Duration`, whole seconds as `u64`,
    /// an [`Expiry`], or `None::<Duration>` for no expiry). The stored bytes are the
    /// codec's alone, readable by other programs (get-or-compute reads them as fresh
    /// until the store expires them), for codecs whose bytes never start like the
    /// header ([`Codec::never_starts_with_header_mark`]: MessagePack and JSON); other
    /// codecs' values get the header too.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        let expiry = expiry.into();
        let write = async {
            let bytes = self.encode_plain(value, expiry)?;
            self.inner.flights.forget(key);
            self.inner.backend.set(key, bytes, expiry).await
        };
        self.call(Op::Set, key, write, none).await
    }

    /// A value as `set` stores it: the codec's bytes alone when the codec promises
    /// they never look like a header, else behind a plain header (fresh for the
    /// whole expiry), so that reads never mistake one for the other.
    fn encode_plain<T: Serialize + ?Sized>(&self, value: &T, expiry: Expiry) -> Result<Bytes> {
        if self.inner.codec.never_starts_with_header_mark() {
            return Ok(Bytes::from(self.inner.codec.encode(value)?));
        }
        let now = self.inner.clock.now_ms();
        match Meta::new(now, expiry, Duration::ZERO, Duration::ZERO, Duration::ZERO) {
            Some(meta) => Ok(self.encode_with(value, &meta, now, expiry)?.0),
            // Already expired: the checks make the write a delete.
            None => Ok(Bytes::from(self.inner.codec.encode(value)?)),
        }
    }

    /// Store `value` under `key` with the default expiry.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set(key, value, self.inner.default_expiry).await
    }

    /// Remove `key`; true if something was there.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.flights.forget(key);
        self.call(Op::Delete, key, self.inner.backend.delete(key), none)
            .await
    }

    /// Whether a value is stored under `key`.
    pub async fn has(&self, key: &str) -> Result<bool> {
        self.call(Op::Has, key, self.inner.backend.has(key), none)
            .await
    }

    /// Remove every value of this cache's namespace.
    pub async fn clear(&self) -> Result<()> {
        self.inner.flights.forget_all();
        self.call(Op::Clear, "", self.inner.backend.clear(), none)
            .await
    }

    /// Values for many keys, in order.
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let read = async {
            let raw = self.inner.backend.get_many(keys).await?;
            raw.into_iter()
                .map(|v| Ok(v.map(|b| self.decode_entry(&b)).transpose()?.flatten()))
                .collect::<Result<Vec<Option<T>>>>()
        };
        self.call(Op::GetMany, "", read, |vs| {
            let hits = vs.iter().filter(|v| v.is_some()).count() as u64;
            (hits, vs.len() as u64 - hits)
        })
        .await
    }

    /// Store many values with one expiry.
    pub async fn set_many<T: Serialize>(
        &self,
        items: &[(&str, T)],
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        let expiry = expiry.into();
        let write = async {
            let encoded = items
                .iter()
                .map(|(k, v)| Ok((*k, self.encode_plain(v, expiry)?)))
                .collect::<Result<Vec<_>>>()?;
            for (k, _) in items {
                self.inner.flights.forget(k);
            }
            self.inner.backend.set_many(&encoded, expiry).await
        };
        self.call(Op::SetMany, "", write, none).await
    }

    /// Remove many keys; returns how many were there.
    pub async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        for k in keys {
            self.inner.flights.forget(k);
        }
        self.call(
            Op::DeleteMany,
            "",
            self.inner.backend.delete_many(keys),
            none,
        )
        .await
    }

    /// Store `value` only if `key` holds nothing; true if stored.
    pub async fn set_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        let expiry = expiry.into();
        let write = async {
            let bytes = self.encode_plain(value, expiry)?;
            self.inner.flights.forget(key);
            self.inner.backend.set_if_absent(key, bytes, expiry).await
        };
        self.call(Op::SetIfAbsent, key, write, none).await
    }

    /// Close the backend.
    pub async fn close(&self) -> Result<()> {
        self.inner.backend.close().await
    }
}

/// A read's hits and misses: one value, found or not.
fn found<T>(v: &Option<T>) -> (u64, u64) {
    if v.is_some() {
        (1, 0)
    } else {
        (0, 1)
    }
}

/// A call that reads nothing.
fn none<T>(_: &T) -> (u64, u64) {
    (0, 0)
}
