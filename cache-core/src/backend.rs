//! The object-safe backend trait every store implements.

use crate::error::Result;
use crate::expiry::Expiry;
use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;
use std::time::Duration;

/// What a backend can do and where its limits are. Read it through
/// [`CacheBackend::capabilities`]; the [`Checked`](crate::Checked) layer enforces the
/// value size from it and the conformance suite adapts to it. Build it once, when the
/// backend is built, and return the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend's short name (`"memory"`, `"redis"`, ...): in errors, spans and
    /// metrics labels.
    pub name: &'static str,
    /// Smallest TTL step the store honours (1 ms for most, 1 s for Memcached).
    pub ttl_precision: Duration,
    /// The store's own key length limit in bytes, if any. Longer keys still work:
    /// the backend maps them to a digest (see [`KeyLayout`](crate::raw::KeyLayout)).
    pub max_key_len: Option<usize>,
    /// Largest value accepted, in bytes; larger ones are an `InvalidInput` error.
    pub max_value_size: Option<usize>,
    /// Whether the batch calls use the store's own batch operations.
    pub native_batch: bool,
    /// Whether `acquire_lock`/`release_lock` give a lock shared by every process
    /// using the same store (false for a process-local store).
    pub distributed_locks: bool,
    /// Whether writes of get-or-compute are fenced against every handle (see
    /// [`CacheBackend::set_locked`]): `set_locked` checks and writes in one atomic step,
    /// and `set`, `set_many`, `set_if_absent` (when it stores), `delete`, `delete_many`
    /// and `clear` mark a held lock of the keys they touch as overtaken. False for the
    /// default `set_locked`, which is fenced against lock expiry only.
    pub fenced_writes: bool,
}

impl Capabilities {
    /// Capabilities with millisecond TTLs, no limits, no native batch.
    pub const fn new(name: &'static str) -> Self {
        Capabilities {
            name,
            ttl_precision: Duration::from_millis(1),
            max_key_len: None,
            max_value_size: None,
            native_batch: false,
            distributed_locks: false,
            fenced_writes: false,
        }
    }
    /// Capabilities of a store that processes share over the network, as every
    /// networked backend of this workspace declares them: millisecond TTLs, the store's
    /// key length limit (if any) and the largest value accepted, native batch calls,
    /// distributed locks and fenced writes. Adjust with the setters.
    pub const fn networked(
        name: &'static str,
        max_key_len: Option<usize>,
        max_value_size: usize,
    ) -> Self {
        Capabilities::new(name)
            .max_key_len(max_key_len)
            .max_value_size(Some(max_value_size))
            .native_batch(true)
            .distributed_locks(true)
            .fenced_writes(true)
    }
    /// Set [`Capabilities::ttl_precision`].
    pub const fn ttl_precision(mut self, d: Duration) -> Self {
        self.ttl_precision = d;
        self
    }
    /// Set [`Capabilities::max_key_len`].
    pub const fn max_key_len(mut self, n: Option<usize>) -> Self {
        self.max_key_len = n;
        self
    }
    /// Set [`Capabilities::max_value_size`].
    pub const fn max_value_size(mut self, n: Option<usize>) -> Self {
        self.max_value_size = n;
        self
    }
    /// Set [`Capabilities::native_batch`].
    pub const fn native_batch(mut self, yes: bool) -> Self {
        self.native_batch = yes;
        self
    }
    /// Set [`Capabilities::distributed_locks`].
    pub const fn distributed_locks(mut self, yes: bool) -> Self {
        self.distributed_locks = yes;
        self
    }
    /// Set [`Capabilities::fenced_writes`].
    pub const fn fenced_writes(mut self, yes: bool) -> Self {
        self.fenced_writes = yes;
        self
    }
}

/// Proof of holding a lock: a random token that only the holder knows.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LockToken(String);

impl LockToken {
    /// A fresh random token (128 random bits).
    pub fn random() -> Self {
        LockToken(uuid::Uuid::new_v4().simple().to_string())
    }
    /// Rebuild a token from its text (for backends that read it back from the store).
    pub fn from_string(s: impl Into<String>) -> Self {
        LockToken(s.into())
    }
    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only a prefix: enough to correlate in logs, not enough to steal the lock.
        write!(f, "LockToken({}…)", &self.0[..self.0.len().min(6)])
    }
}

/// A cache store: bytes in, bytes out.
///
/// Implement store logic only: [`Cache`](crate::Cache) and the conformance suite call a
/// backend through the [`Checked`](crate::Checked) layer, so every key is valid (1 to
/// [`MAX_KEY_LEN`](crate::raw::MAX_KEY_LEN) bytes), every value fits
/// [`Capabilities::max_value_size`], a batch is non-empty and wholly valid, `set` and
/// `set_many` never get an expiry already past (`Expiry::At` can still pass while the
/// call runs: treat [`Ttl::Expired`](crate::raw::Ttl) as a delete), lock TTLs are
/// positive, and nothing is called after `close`. Lay out store keys with
/// [`KeyLayout`](crate::raw::KeyLayout) (values and locks apart, namespaces apart).
/// The conformance suite (`conformance-tests`) checks the rest: isolation, atomicity,
/// expiry.
#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// Limits and features of this backend.
    fn capabilities(&self) -> Capabilities;

    /// The namespace this backend's keys live in, for spans and metrics labels
    /// (default empty).
    fn namespace(&self) -> &str {
        ""
    }

    /// The value stored under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// [`get`](Self::get) without waiting, for backends whose store lives in this
    /// process: `Some(answer)`, the same answer `get` would give; or `None` when the
    /// answer needs I/O, and the caller awaits `get` instead. [`Cache`](crate::Cache)
    /// tries it first, which saves the boxed future of the async call on every hit and
    /// miss of an in-process store. The default, for network stores, is `None`.
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        let _ = key;
        None
    }

    /// Like [`get_now`](Self::get_now), but lends the stored bytes to `read` instead of
    /// handing out a copy: `Some(Ok(true))` when `read` was called with the live value,
    /// `Some(Ok(false))` on a miss, `None` when the caller must await
    /// [`get`](Self::get). The typed [`Cache::get`](crate::Cache::get) decodes through
    /// it, so an in-process hit costs no reference count. Answer it only when
    /// [`get_now`](Self::get_now) is answered too, and keep `read` short: it may run
    /// under the store's lock. The default is `None`.
    fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        let _ = (key, read);
        None
    }

    /// Store `value` under `key`. A zero or past expiry removes the key instead.
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()>;

    /// Remove `key`; true if something was there.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Whether a live value is stored under `key`.
    async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Remove every key of this backend's namespace, and nothing else.
    async fn clear(&self) -> Result<()>;

    /// Values for many keys, in the same order.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Store many values with one expiry.
    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        for (k, v) in items {
            self.set(k, v.clone(), expiry).await?;
        }
        Ok(())
    }

    /// Remove many keys; returns how many were there.
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let mut n = 0;
        for k in keys {
            n += usize::from(self.delete(k).await?);
        }
        Ok(n)
    }

    /// Store `value` only if no live value is under `key` (atomic add); true if stored.
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool>;

    /// Try to take the lock `key` for at most `ttl`; `None` if someone else holds it.
    /// The lock frees itself after `ttl` even if never released.
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>>;

    /// Release the lock if `token` still owns it (overtaken or not); true if released.
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool>;

    /// The lock holder's write: store `value` under `key` only while `token` owns the
    /// key's lock and the lock is not overtaken, and release the lock if `token` owns
    /// it, stored or not. `Ok(true)` if stored. Get-or-compute writes its value with it
    /// when it holds the lock, so that a compute that outlived its lock, or whose key
    /// the application wrote, deleted or cleared meanwhile, stores nothing.
    ///
    /// A lock is *overtaken* when a `set`, `set_many`, `set_if_absent` that stores,
    /// `delete`, `delete_many` or `clear` of any handle touched its key while it was
    /// held: those calls leave the lock held (other processes keep waiting on it, not
    /// computing) but mark it, for instance by storing
    /// [`raw::overtaken`](crate::raw::overtaken) of the token in place of the token
    /// (and [`raw::lock_state`](crate::raw::lock_state) reads it back). Backends that
    /// do this and check and write in one atomic step declare
    /// [`Capabilities::fenced_writes`].
    ///
    /// An expiry that has passed (zero, or an `Expiry::At` in the past) removes the
    /// value instead, under the same fence, as `set` does.
    ///
    /// The default releases, then writes if the release proved ownership: fenced
    /// against a lock that expired and was taken by another caller, not against the
    /// writes of other handles, and not atomic (a process that polls between the two
    /// finds neither the lock nor the value, and may compute again). A backend that
    /// can check the lock without releasing it does better by writing first and
    /// releasing last.
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        if self.release_lock(key, token).await? {
            if matches!(expiry.ttl(), crate::raw::Ttl::Expired) {
                self.delete(key).await?;
            } else {
                self.set(key, value, expiry).await?;
            }
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Release connections and background work; called once.
    async fn close(&self) -> Result<()>;
}
