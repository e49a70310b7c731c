//! The in-memory store and its per-namespace backend handles.

use crate::config::MemoryConfig;
use crate::error::{config, BACKEND};
use cache_core::key::{validate_key, validate_namespace};
use cache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, Expiry, LockToken, Result, Ttl,
};
use lru::LruCache;
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Separator between namespace and key for values; namespaces are printable ASCII,
/// so neither separator can occur in them and the key spaces never overlap.
const VALUE_SEP: char = '\0';
/// Separator between namespace and key for locks.
const LOCK_SEP: char = '\u{1}';

struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live_at(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    /// Reads the clock only for entries that can expire.
    fn is_live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }
}

type Shard = RwLock<LruCache<Box<str>, Entry>>;

struct Store {
    shards: Box<[Shard]>,
    hasher: lru::DefaultHasher,
    max_value_size: usize,
    open_handles: AtomicUsize,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Store {
    fn new(cfg: &MemoryConfig) -> Result<Arc<Self>> {
        if cfg.max_entries == 0 {
            return Err(config("max_entries must be at least 1"));
        }
        if cfg.shards == 0 {
            return Err(config("shards must be at least 1"));
        }
        if cfg.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(config(
                "sweep_interval must be positive, or None to turn the sweep off",
            ));
        }
        // Split max_entries exactly across the shards so the total never exceeds it.
        let n = cfg.shards.min(cfg.max_entries);
        let shards = (0..n)
            .map(|i| {
                let cap = cfg.max_entries / n + usize::from(i < cfg.max_entries % n);
                RwLock::new(LruCache::new(
                    NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN),
                ))
            })
            .collect();
        let store = Arc::new(Store {
            shards,
            hasher: lru::DefaultHasher::default(),
            max_value_size: cfg.max_value_size,
            open_handles: AtomicUsize::new(0),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
        });
        if let Some(every) = cfg.sweep_interval {
            spawn_sweeper(Arc::downgrade(&store), store.stop.clone(), every)?;
        }
        Ok(store)
    }

    fn shard(&self, full_key: &str) -> &Shard {
        let h = self.hasher.hash_one(full_key) as usize;
        &self.shards[h % self.shards.len()]
    }

    fn stop_sweeper(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock() = true;
        cv.notify_all();
    }

    /// Remove expired entries, one shard at a time; returns how many.
    fn sweep(&self) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let now = Instant::now();
            let mut s = shard.write();
            let dead: Vec<Box<str>> = s
                .iter()
                .filter(|(_, e)| !e.is_live_at(now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                s.pop(&k);
                removed += 1;
            }
        }
        removed
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_sweeper();
    }
}

fn spawn_sweeper(
    store: Weak<Store>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    every: Duration,
) -> Result<()> {
    std::thread::Builder::new()
        .name("cache-memory-sweep".into())
        .spawn(move || loop {
            {
                let (flag, cv) = &*stop;
                let mut stopped = flag.lock();
                if !*stopped {
                    cv.wait_for(&mut stopped, every);
                }
                if *stopped {
                    return;
                }
            }
            match store.upgrade() {
                Some(s) => {
                    let n = s.sweep();
                    if n > 0 {
                        tracing::trace!(removed = n, "swept expired entries");
                    }
                }
                None => return,
            }
        })
        .map(|_| ())
        .map_err(|e| config("cannot start the sweep thread").with_source(e))
}

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
    /// Start from a full configuration.
    pub fn from_config(config: MemoryConfig) -> Self {
        MemoryBuilder { config }
    }
    /// See [`MemoryConfig::max_entries`].
    pub fn max_entries(mut self, n: usize) -> Self {
        self.config.max_entries = n;
        self
    }
    /// See [`MemoryConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`MemoryConfig::sweep_interval`].
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.config.sweep_interval = every;
        self
    }
    /// See [`MemoryConfig::shards`].
    pub fn shards(mut self, n: usize) -> Self {
        self.config.shards = n;
        self
    }
    /// See [`MemoryConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
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
    namespace: Arc<str>,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("namespace", &self.namespace)
            .field("shards", &self.store.shards.len())
            .finish()
    }
}

thread_local! {
    static KEY_BUF: RefCell<String> = const { RefCell::new(String::new()) };
    static PROMOTE_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One read in this many moves its entry to the front of the LRU order.
const PROMOTE_EVERY: u32 = 8;

impl MemoryBackend {
    /// A builder with the defaults of [`MemoryConfig`].
    pub fn builder() -> MemoryBuilder {
        MemoryBuilder::default()
    }

    fn on_store(store: Arc<Store>, namespace: &str) -> Self {
        store.open_handles.fetch_add(1, Ordering::AcqRel);
        MemoryBackend {
            store,
            namespace: namespace.into(),
            closed: AtomicBool::new(false),
        }
    }

    /// Another backend on the same store with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<MemoryBackend> {
        validate_namespace(BACKEND, namespace)?;
        self.check_open()?;
        Ok(MemoryBackend::on_store(self.store.clone(), namespace))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Entries held by the store, all namespaces, expired-but-unswept ones included.
    pub fn store_len(&self) -> usize {
        self.store.len()
    }

    /// Sweep expired entries now; returns how many were removed.
    pub fn sweep_now(&self) -> usize {
        self.store.sweep()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed(BACKEND));
        }
        Ok(())
    }

    /// Validate, then run `f` on the shard of `key` with the composed store key,
    /// built in a thread-local buffer so reads allocate nothing.
    fn with_key<R>(&self, sep: char, key: &str, f: impl FnOnce(&Shard, &str) -> R) -> Result<R> {
        self.check_open()?;
        validate_key(BACKEND, key)?;
        Ok(KEY_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.push_str(&self.namespace);
            buf.push(sep);
            buf.push_str(key);
            f(self.store.shard(&buf), &buf)
        }))
    }

    fn check_value(&self, value: &Bytes) -> Result<()> {
        if value.len() > self.store.max_value_size {
            return Err(Error::value_too_large(
                BACKEND,
                value.len(),
                self.store.max_value_size,
            ));
        }
        Ok(())
    }

    fn get_sync(&self, key: &str) -> Result<Option<Bytes>> {
        self.with_key(VALUE_SEP, key, |shard, k| {
            // Most reads share the shard's read lock; one in PROMOTE_EVERY takes the
            // write lock to move the entry to the front (sampled LRU), so hot keys
            // read from many threads do not queue on one lock.
            let promote = PROMOTE_TICK.with(|t| {
                let n = t.get().wrapping_add(1);
                t.set(n);
                n % PROMOTE_EVERY == 0
            });
            {
                let s = shard.read();
                match s.peek(k) {
                    None => return None,
                    Some(e) if e.is_live() && !promote => return Some(e.value.clone()),
                    Some(_) => {}
                }
            }
            let mut s = shard.write();
            match s.get(k) {
                Some(e) if e.is_live() => Some(e.value.clone()),
                Some(_) => {
                    s.pop(k);
                    None
                }
                None => None,
            }
        })
    }

    fn set_sync(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.check_value(&value)?;
        let deadline = deadline(expiry);
        self.with_key(VALUE_SEP, key, |shard, k| {
            let mut s = shard.write();
            match deadline {
                Some(expires_at) => {
                    s.put(k.into(), Entry { value, expires_at });
                }
                None => {
                    s.pop(k);
                }
            }
        })
    }

    fn delete_sync(&self, key: &str) -> Result<bool> {
        self.with_key(VALUE_SEP, key, |shard, k| {
            shard.write().pop(k).is_some_and(|e| e.is_live())
        })
    }

    /// Insert unless a live entry is there (shared by `set_if_absent` and locks).
    fn add(&self, sep: char, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let deadline = deadline(expiry);
        self.with_key(sep, key, |shard, k| {
            let mut s = shard.write();
            if s.peek(k).is_some_and(|e| e.is_live()) {
                return false;
            }
            match deadline {
                Some(expires_at) => {
                    s.put(k.into(), Entry { value, expires_at });
                    true
                }
                None => {
                    s.pop(k);
                    false
                }
            }
        })
    }
}

/// `Some(expires_at)` to store, `None` when the expiry already passed.
fn deadline(expiry: Expiry) -> Option<Option<Instant>> {
    match expiry.ttl() {
        Ttl::Forever => Some(None),
        // A TTL too far out to represent is as good as none.
        Ttl::For(d) => Some(Instant::now().checked_add(d)),
        Ttl::Expired => None,
    }
}

impl Drop for MemoryBackend {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel)
            && self.store.open_handles.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.store.stop_sweeper();
        }
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND)
            .ttl_precision(Duration::from_millis(1))
            .max_value_size(Some(self.store.max_value_size))
            .native_batch(true)
            .distributed_locks(false)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_sync(key)
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.set_sync(key, value, expiry)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.delete_sync(key)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        self.with_key(VALUE_SEP, key, |shard, k| {
            shard.read().peek(k).is_some_and(|e| e.is_live())
        })
    }

    async fn clear(&self) -> Result<()> {
        self.check_open()?;
        let prefix = format!("{}{VALUE_SEP}", self.namespace);
        for shard in self.store.shards.iter() {
            let mut s = shard.write();
            let mine: Vec<Box<str>> = s
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in mine {
                s.pop(&k);
            }
        }
        Ok(())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.get_sync(k)).collect()
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        // Validate everything first so a bad item stores nothing.
        for (k, v) in items {
            validate_key(BACKEND, k)?;
            self.check_value(v)?;
        }
        for (k, v) in items {
            self.set_sync(k, v.clone(), expiry)?;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        for k in keys {
            validate_key(BACKEND, k)?;
        }
        let mut n = 0;
        for k in keys {
            n += usize::from(self.delete_sync(k)?);
        }
        Ok(n)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.check_value(&value)?;
        self.add(VALUE_SEP, key, value, expiry)
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        if ttl.is_zero() {
            return Err(Error::invalid_input(BACKEND, "lock ttl must be positive"));
        }
        let token = LockToken::random();
        let stored = Bytes::copy_from_slice(token.as_str().as_bytes());
        Ok(self
            .add(LOCK_SEP, key, stored, Expiry::After(ttl))?
            .then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.with_key(LOCK_SEP, key, |shard, k| {
            let mut s = shard.write();
            let owned = s
                .peek(k)
                .is_some_and(|e| e.is_live() && e.value == token.as_str().as_bytes());
            if owned {
                s.pop(k);
            }
            owned
        })
    }

    async fn close(&self) -> Result<()> {
        if !self.closed.swap(true, Ordering::AcqRel)
            && self.store.open_handles.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.store.stop_sweeper();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Sampled promotion: 16 reads on one thread promote `a` at least twice.
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
