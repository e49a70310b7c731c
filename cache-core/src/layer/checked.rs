//! The checking layer: the contract enforced once, around any backend.

use crate::backend::{CacheBackend, Capabilities, LockToken};
use crate::error::{Error, Result};
use crate::expiry::{Expiry, Ttl};
use crate::raw::{clamp_expiry, validate_key, MAX_TTL};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A backend with the contract enforced in front of it.
///
/// Every [`Cache`](crate::Cache) (and the conformance suite) puts this layer around its
/// backend, so a backend holds store logic only. Before a call reaches the backend it
/// checks:
/// - keys: 1 to [`MAX_KEY_LEN`](crate::raw::MAX_KEY_LEN) bytes, on every call;
/// - values: not over the backend's [`Capabilities::max_value_size`];
/// - batches: every key and value of the batch before anything is written; an empty
///   batch never reaches the backend;
/// - expiry: a zero or past expiry becomes a delete (`set`, `set_many`) or a refusal
///   (`set_if_absent` stores nothing and returns false);
/// - locks: a zero lock TTL is an error;
/// - state: after [`close`](CacheBackend::close) every call is a
///   [`Closed`](crate::ErrorKind::Closed) error, and closing again is a no-op.
///
/// Errors that pass through it name the operation ([`Error::operation`]).
///
/// ```
/// use cache_core::{CacheBackend, Checked, ErrorKind, Expiry};
/// use std::sync::Arc;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let checked = Checked::new(Arc::new(cache_memory::MemoryBackend::builder().build().unwrap()));
/// let err = checked.set("", "v".into(), Expiry::Never).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert_eq!(err.operation(), Some("set"));
/// # }
/// ```
pub struct Checked {
    inner: Arc<dyn CacheBackend>,
    caps: Capabilities,
    closed: AtomicBool,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("backend", &self.caps.name)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Checked {
    /// Put the checking layer around `backend` (its capabilities are read once, here).
    pub fn new(backend: Arc<dyn CacheBackend>) -> Self {
        Checked {
            caps: backend.capabilities(),
            inner: backend,
            closed: AtomicBool::new(false),
        }
    }

    /// The backend behind the layer: calls on it are not checked.
    pub fn inner(&self) -> &Arc<dyn CacheBackend> {
        &self.inner
    }

    pub(crate) fn name(&self) -> &'static str {
        self.caps.name
    }

    #[inline]
    pub(crate) fn check_open(&self, op: &'static str) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed(self.caps.name).in_operation(op));
        }
        Ok(())
    }

    /// Check `key` for `op` (and that the layer is open): once per call; the
    /// `*_valid` calls take a key checked here.
    #[inline]
    pub(crate) fn valid(&self, op: &'static str, key: &str) -> Result<()> {
        self.check_open(op)?;
        validate_key(self.caps.name, key).map_err(|e| e.in_operation(op))
    }

    pub(crate) fn check_value(&self, op: &'static str, len: usize) -> Result<()> {
        match self.caps.max_value_size {
            Some(max) if len > max => {
                Err(Error::value_too_large(self.caps.name, len, max).in_operation(op))
            }
            _ => Ok(()),
        }
    }

    fn check_keys<'k>(&self, op: &'static str, keys: impl Iterator<Item = &'k str>) -> Result<()> {
        self.check_open(op)?;
        for k in keys {
            validate_key(self.caps.name, k).map_err(|e| e.in_operation(op))?;
        }
        Ok(())
    }
}

/// The hot calls without the trait's boxed future: [`Cache`](crate::Cache) calls these.
impl Checked {
    /// [`CacheBackend::get`] through the checks.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.valid("get", key)?;
        self.get_valid(key).await
    }

    /// [`CacheBackend::get_now`] through the checks: `None` when the backend must
    /// be awaited (call [`get`](Self::get)).
    pub fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        if let Err(e) = self.valid("get", key) {
            return Some(Err(e));
        }
        self.inner
            .get_now(key)
            .map(|answer| answer.map_err(|e| e.in_operation("get")))
    }

    /// [`CacheBackend::read_now`] through the checks.
    #[inline]
    pub fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        if let Err(e) = self.valid("get", key) {
            return Some(Err(e));
        }
        self.inner
            .read_now(key, read)
            .map(|answer| answer.map_err(|e| e.in_operation("get")))
    }

    /// `decode` of the value under `key`, read in place through
    /// [`read_now`](Self::read_now) (`Ok(None)` if there is none): `None` when the
    /// backend must be awaited. The key is checked, also when `None` is returned: the
    /// store's own `get` may follow without a second check.
    #[inline]
    pub fn decode_now<T>(
        &self,
        key: &str,
        decode: impl Fn(&[u8]) -> Result<Option<T>>,
    ) -> Option<Result<Option<T>>> {
        if let Err(e) = self.valid("get", key) {
            return Some(Err(e));
        }
        let mut answer = Ok(None);
        match self
            .inner
            .read_now(key, &mut |bytes| answer = decode(bytes))?
        {
            Err(e) => Some(Err(e.in_operation("get"))),
            Ok(_) => Some(answer),
        }
    }

    /// [`CacheBackend::set`] through the checks.
    pub async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.valid("set", key)?;
        self.set_valid(key, value, expiry).await
    }
}

/// The same calls for a key that already passed [`Checked::valid`] (the cache checks a
/// key once per call, get-or-compute once for all its store calls): every other
/// check still runs.
impl Checked {
    /// The store's `get` of a checked key, without asking the in-process probes
    /// (the caller asked them, or the store has none).
    pub(crate) async fn get_awaited_valid(&self, key: &str) -> Result<Option<Bytes>> {
        self.check_open("get")?;
        self.inner.get(key).await.map_err(|e| e.in_operation("get"))
    }

    /// [`get`](Self::get) of a checked key.
    pub(crate) async fn get_valid(&self, key: &str) -> Result<Option<Bytes>> {
        self.check_open("get")?;
        if let Some(answer) = self.inner.get_now(key) {
            return answer.map_err(|e| e.in_operation("get"));
        }
        self.inner.get(key).await.map_err(|e| e.in_operation("get"))
    }

    /// [`set`](Self::set) of a checked key.
    pub(crate) async fn set_valid(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.check_open("set")?;
        self.check_value("set", value.len())?;
        let done = if expired(expiry) {
            self.inner.delete(key).await.map(drop)
        } else {
            self.inner.set(key, value, clamp_expiry(expiry)).await
        };
        done.map_err(|e| e.in_operation("set"))
    }

    /// [`acquire_lock`](CacheBackend::acquire_lock) of a checked key.
    pub(crate) async fn acquire_lock_valid(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<LockToken>> {
        self.check_open("acquire_lock")?;
        if ttl.is_zero() {
            return Err(
                Error::invalid_input(self.caps.name, "lock ttl must be positive")
                    .in_operation("acquire_lock"),
            );
        }
        self.inner
            .acquire_lock(key, ttl.min(MAX_TTL))
            .await
            .map_err(|e| e.in_operation("acquire_lock"))
    }

    /// [`release_lock`](CacheBackend::release_lock) of a checked key.
    pub(crate) async fn release_lock_valid(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.check_open("release_lock")?;
        self.inner
            .release_lock(key, token)
            .await
            .map_err(|e| e.in_operation("release_lock"))
    }

    /// Release a lock this cache took, even after [`close`](CacheBackend::close): the
    /// one call that still reaches the store then, so that a lock held when the cache
    /// closed does not keep other processes waiting for its TTL.
    pub(crate) async fn release_held_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.inner
            .release_lock(key, token)
            .await
            .map_err(|e| e.in_operation("release_lock"))
    }

    /// [`set_locked`](CacheBackend::set_locked) of a checked key.
    pub(crate) async fn set_locked_valid(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.check_open("set_locked")?;
        self.check_value("set_locked", value.len())?;
        // A past expiry goes through too: the backend removes the value under the
        // same fence (see `CacheBackend::set_locked`).
        self.inner
            .set_locked(key, value, clamp_expiry(expiry), token)
            .await
            .map_err(|e| e.in_operation("set_locked"))
    }
}

fn expired(expiry: Expiry) -> bool {
    matches!(expiry.ttl(), Ttl::Expired)
}

#[async_trait]
impl CacheBackend for Checked {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        self.inner.namespace()
    }

    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        Checked::get_now(self, key)
    }

    fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        Checked::read_now(self, key, read)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Checked::get(self, key).await
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        Checked::set(self, key, value, expiry).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.valid("delete", key)?;
        self.inner
            .delete(key)
            .await
            .map_err(|e| e.in_operation("delete"))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        self.valid("has", key)?;
        self.inner.has(key).await.map_err(|e| e.in_operation("has"))
    }

    async fn clear(&self) -> Result<()> {
        self.check_open("clear")?;
        self.inner
            .clear()
            .await
            .map_err(|e| e.in_operation("clear"))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.check_keys("get_many", keys.iter().copied())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values = self
            .inner
            .get_many(keys)
            .await
            .map_err(|e| e.in_operation("get_many"))?;
        if values.len() != keys.len() {
            return Err(Error::new(
                crate::ErrorKind::Backend,
                self.caps.name,
                format!(
                    "get_many returned {} values for {} keys; this is a bug in the backend",
                    values.len(),
                    keys.len()
                ),
            )
            .in_operation("get_many"));
        }
        Ok(values)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        self.check_keys("set_many", items.iter().map(|(k, _)| *k))?;
        for (_, v) in items {
            self.check_value("set_many", v.len())?;
        }
        if items.is_empty() {
            return Ok(());
        }
        let done = if expired(expiry) {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            self.inner.delete_many(&keys).await.map(drop)
        } else {
            self.inner.set_many(items, clamp_expiry(expiry)).await
        };
        done.map_err(|e| e.in_operation("set_many"))
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.check_keys("delete_many", keys.iter().copied())?;
        if keys.is_empty() {
            return Ok(0);
        }
        self.inner
            .delete_many(keys)
            .await
            .map_err(|e| e.in_operation("delete_many"))
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.valid("set_if_absent", key)?;
        self.check_value("set_if_absent", value.len())?;
        if expired(expiry) {
            return Ok(false);
        }
        self.inner
            .set_if_absent(key, value, clamp_expiry(expiry))
            .await
            .map_err(|e| e.in_operation("set_if_absent"))
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        self.valid("acquire_lock", key)?;
        self.acquire_lock_valid(key, ttl).await
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.valid("release_lock", key)?;
        self.release_lock_valid(key, token).await
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.valid("set_locked", key)?;
        self.set_locked_valid(key, value, expiry, token).await
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner
            .close()
            .await
            .map_err(|e| e.in_operation("close"))
    }
}
