//! `MemoryBuilder` and `MemoryBackend`: per-namespace handles on a shared store.

use crate::config::MemoryConfig;
use crate::error::BACKEND;
use crate::store::{Key, Namespace, Store};
use cache_core::raw::{validate_namespace, KeyKind, KeyLayout};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Builder for [`MemoryBackend`].
///
/// ```
/// use std::time::Duration;
/// let backend = cache_memory::MemoryBackend::builder()
///     .max_entries(10_000)
///     .namespace("sessions")
///     .sweep_interval(Some(Duration::from_millis(500)))
///     .build()
///     .unwrap();
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MemoryBuilder {
    config: MemoryConfig,
}

impl MemoryBuilder {
    cache_core::builder_setters! { config: MemoryConfig;
        from_config,
        max_entries(n: usize),
        namespace,
        sweep_interval(every: Option<Duration>),
        shards(n: usize),
        max_value_size,
    }
    /// Create a new store and a backend on it. Errors are [`Config`](cache_core::ErrorKind::Config)
    /// errors for invalid settings.
    pub fn build(self) -> Result<MemoryBackend> {
        validate_namespace(BACKEND, &self.config.namespace)?;
        let store = Store::new(&self.config)?;
        Ok(MemoryBackend::on_store(store, &self.config.namespace))
    }
}

/// An in-process cache backend: a sharded LRU with millisecond TTLs.
///
/// Several namespaces can share one store ([`MemoryBackend::with_namespace`]); each
/// clears only its own keys. Locks are process-local.
pub struct MemoryBackend {
    store: Arc<Store>,
    namespace: Namespace,
    caps: Capabilities,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("namespace", &self.namespace.name())
            .field("shards", &self.store.shards.len())
            .finish()
    }
}

impl MemoryBackend {
    /// A builder with the defaults of [`MemoryConfig`].
    pub fn builder() -> MemoryBuilder {
        MemoryBuilder::default()
    }

    fn on_store(store: Arc<Store>, namespace: &str) -> Self {
        store.open_handles.fetch_add(1, Ordering::AcqRel);
        MemoryBackend {
            caps: Capabilities::new(BACKEND)
                .max_value_size(Some(store.max_value_size))
                .native_batch(true)
                .fenced_writes(true),
            namespace: store.namespace(namespace),
            store,
            closed: AtomicBool::new(false),
        }
    }

    /// Another backend on the same store with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<MemoryBackend> {
        validate_namespace(BACKEND, namespace)?;
        Ok(MemoryBackend::on_store(self.store.clone(), namespace))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        self.namespace.name()
    }

    /// Entries held by the store, all namespaces, expired-but-unswept ones included.
    pub fn store_len(&self) -> usize {
        self.store.len()
    }

    /// Sweep expired entries now; returns how many were removed.
    pub fn sweep_now(&self) -> usize {
        self.store.sweep()
    }

    /// Run `f` with the store key of `key` (the core's layout), looked up by its
    /// pieces: a read joins and allocates nothing.
    #[inline]
    fn with_key<R>(&self, kind: KeyKind, key: &str, f: impl FnOnce(&Store, &Key<'_>) -> R) -> R {
        let key = KeyLayout::ANY.key(self.namespace.name(), kind, key);
        f(&self.store, &Store::key(&self.namespace, &key))
    }

    fn release(&self) {
        if !self.closed.swap(true, Ordering::AcqRel)
            && self.store.open_handles.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.store.stop_sweeper();
        }
    }
}

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        self.release();
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    cache_core::backend_identity!(caps);

    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        Some(Ok(self.with_key(KeyKind::Value, key, Store::get)))
    }

    #[inline]
    fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        Some(Ok(
            self.with_key(KeyKind::Value, key, |s, k| s.read(k, read))
        ))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.with_key(KeyKind::Value, key, Store::get))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.with_key(KeyKind::Value, key, |s, k| s.put(k, value, expiry));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.with_key(KeyKind::Value, key, Store::remove))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.with_key(KeyKind::Value, key, Store::has))
    }

    async fn clear(&self) -> Result<()> {
        self.store.remove_namespace(&self.namespace);
        Ok(())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(keys
            .iter()
            .map(|k| self.with_key(KeyKind::Value, k, Store::get))
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        for (k, v) in items {
            self.with_key(KeyKind::Value, k, |s, k| s.put(k, v.clone(), expiry));
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        Ok(keys
            .iter()
            .filter(|k| self.with_key(KeyKind::Value, k, Store::remove))
            .count())
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        Ok(self.with_key(KeyKind::Value, key, |s, k| s.add(k, value, expiry)))
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let stored = Bytes::copy_from_slice(token.as_str().as_bytes());
        let won = self.with_key(KeyKind::Lock, key, |s, k| {
            s.add(k, stored, Expiry::After(ttl))
        });
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        Ok(self.with_key(KeyKind::Lock, key, |s, k| s.release(k, token)))
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        Ok(self.with_key(KeyKind::Value, key, |s, k| {
            s.put_locked(k, value, expiry, token)
        }))
    }

    async fn close(&self) -> Result<()> {
        self.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn backend(max: usize) -> MemoryBackend {
        MemoryBackend::builder()
            .max_entries(max)
            .shards(4)
            .sweep_interval(None)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn evicts_least_recently_used_and_never_exceeds_max() {
        let b = backend(8);
        for i in 0..100 {
            b.set(&format!("k{i}"), Bytes::from_static(b"v"), Expiry::Never)
                .await
                .unwrap();
        }
        assert!(b.store_len() <= 8, "len {}", b.store_len());
        assert!(b.get("k99").await.unwrap().is_some());
        assert!(b.get("k0").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_key_read_often_survives_eviction() {
        let b = MemoryBackend::builder()
            .max_entries(8)
            .shards(1)
            .sweep_interval(None)
            .build()
            .unwrap();
        for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            b.set(k, Bytes::from_static(b"v"), Expiry::Never)
                .await
                .unwrap();
        }
        // Every read counts (recorded, applied before the next write).
        for _ in 0..16 {
            assert!(b.get("a").await.unwrap().is_some());
        }
        b.set("i", Bytes::from_static(b"v"), Expiry::Never)
            .await
            .unwrap();
        assert!(
            b.get("a").await.unwrap().is_some(),
            "a recently read key was evicted"
        );
        assert!(
            b.get("b").await.unwrap().is_none(),
            "the least recently used key goes first"
        );
    }

    #[tokio::test]
    async fn sweep_removes_expired_entries() {
        let b = backend(100);
        b.set("a", Bytes::from_static(b"1"), Expiry::millis(1))
            .await
            .unwrap();
        b.set("b", Bytes::from_static(b"2"), Expiry::Never)
            .await
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(b.sweep_now(), 1);
        assert_eq!(b.store_len(), 1);
    }

    #[tokio::test]
    async fn background_sweep_runs_and_stops_on_close() {
        let b = MemoryBackend::builder()
            .sweep_interval(Some(Duration::from_millis(10)))
            .build()
            .unwrap();
        b.set("a", Bytes::from_static(b"1"), Expiry::millis(1))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while b.store_len() > 0 {
            assert!(
                Instant::now() < deadline,
                "sweep never removed the expired entry"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        b.close().await.unwrap();
        assert!(
            *b.store.stop.0.lock(),
            "closing the last handle stops the sweep"
        );
    }

    #[test]
    fn dropping_the_last_handle_stops_the_sweep() {
        let b = MemoryBackend::builder()
            .sweep_interval(Some(Duration::from_millis(10)))
            .build()
            .unwrap();
        let other = b.with_namespace("other").unwrap();
        let stop = b.store.stop.clone();
        drop(b);
        assert!(!*stop.0.lock(), "another handle still uses the store");
        drop(other);
        assert!(*stop.0.lock(), "the sweep was told to stop");
    }

    #[test]
    fn bad_config_is_a_config_error() {
        for b in [
            MemoryBackend::builder().max_entries(0),
            MemoryBackend::builder().shards(0),
            MemoryBackend::builder().namespace("a b"),
            MemoryBackend::builder().sweep_interval(Some(Duration::ZERO)),
        ] {
            assert_eq!(b.build().unwrap_err().kind(), cache_core::ErrorKind::Config);
        }
    }

    /// A held lock is never evicted to make room (its holder's write would then store
    /// nothing), and a lock never evicts a value.
    #[tokio::test]
    async fn eviction_leaves_held_locks_alone() {
        let b = MemoryBackend::builder()
            .max_entries(16)
            .shards(1)
            .build()
            .unwrap();
        let e = Expiry::After(Duration::from_secs(60));
        let t = b
            .acquire_lock("k", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        for i in 0..40 {
            b.set(&format!("v{i}"), Bytes::from_static(b"x"), e)
                .await
                .unwrap();
        }
        assert!(b
            .set_locked("k", Bytes::from_static(b"v"), e, &t)
            .await
            .unwrap());
        assert_eq!(b.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
        let held = b.acquire_lock("l", Duration::from_secs(5)).await.unwrap();
        assert!(held.is_some());
        assert!(
            b.get("v39").await.unwrap().is_some(),
            "the lock evicted nothing new"
        );
    }

    #[tokio::test]
    async fn values_and_locks_do_not_share_keys() {
        let b = backend(100);
        b.set("k", Bytes::from_static(b"v"), Expiry::Never)
            .await
            .unwrap();
        let t = b
            .acquire_lock("k", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(b.release_lock("k", &t).await.unwrap());
    }
}
