//! The store: LRU shards of entries with deadlines, and the sweeper thread.

use crate::config::MemoryConfig;
use crate::error::config;
use cache_core::raw::Ttl;
use cache_core::{Bytes, Expiry, Result};
use lru::LruCache;
use parking_lot::{Condvar, Mutex, RwLock};
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) expires_at: Option<Instant>,
    /// The map's key, shared, so a read can record it without copying.
    key: Arc<str>,
}

impl Entry {
    fn is_live_at(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    /// Reads the clock only for entries that can expire.
    pub(crate) fn is_live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }
}

/// One independently locked part of the store: an LRU map, and the reads not yet
/// applied to its order. A read takes only the shared lock and records its key; the
/// recorded reads are applied, in order, under the exclusive lock before any write
/// (so before any eviction) and whenever the buffer fills. Eviction therefore always
/// sees every read: the order is exact LRU, without a write lock per read.
pub(crate) struct Shard {
    map: RwLock<LruCache<Arc<str>, Entry>>,
    reads: Mutex<Vec<Arc<str>>>,
}

/// Reads recorded before they are applied.
const READ_BUFFER: usize = 64;

/// Entries a shard should be able to hold before the store is split into more
/// shards: below this, one shard (exact LRU over the whole bound).
const MIN_PER_SHARD: usize = 4096;

impl Shard {
    fn new(capacity: usize) -> Self {
        Shard {
            map: RwLock::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            reads: Mutex::new(Vec::with_capacity(READ_BUFFER)),
        }
    }

    /// Record a read of `key`; true when the buffer is full and should be applied.
    /// Under contention for the buffer the read goes unrecorded: concurrent reads
    /// have no single order anyway.
    fn record(&self, key: &Arc<str>) -> bool {
        match self.reads.try_lock() {
            Some(mut buf) => {
                buf.push(key.clone());
                buf.len() >= READ_BUFFER
            }
            None => false,
        }
    }

    /// The map for writing, with every recorded read applied first.
    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, LruCache<Arc<str>, Entry>> {
        let mut map = self.map.write();
        // Readers hold the shared lock while they record, so nobody holds the buffer now.
        for k in self.reads.lock().drain(..) {
            map.promote(&k);
        }
        map
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }
}

pub(crate) struct Store {
    pub(crate) shards: Box<[Shard]>,
    hasher: lru::DefaultHasher,
    pub(crate) max_value_size: usize,
    /// Backend handles on this store; the sweep stops when the last one goes.
    pub(crate) open_handles: AtomicUsize,
    pub(crate) stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Store {
    pub(crate) fn new(cfg: &MemoryConfig) -> Result<Arc<Self>> {
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
        // As many shards as asked for, but never so many that a shard holds fewer
        // than MIN_PER_SHARD entries: a small cache is one shard, an exact LRU over
        // its whole bound. max_entries is split exactly, so the total never exceeds it.
        let n = cfg.shards.min((cfg.max_entries / MIN_PER_SHARD).max(1));
        let shards = (0..n)
            .map(|i| Shard::new(cfg.max_entries / n + usize::from(i < cfg.max_entries % n)))
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

    fn shard(&self, key: &str) -> &Shard {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % self.shards.len()]
    }

    pub(crate) fn stop_sweeper(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock() = true;
        cv.notify_all();
    }

    /// The live value under `key`; the read counts for the LRU order.
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let shard = self.shard(key);
        let (value, full) = {
            let map = shard.map.read();
            match map.peek(key) {
                None => return None,
                Some(e) if e.is_live() => (e.value.clone(), shard.record(&e.key)),
                Some(_) => {
                    drop(map);
                    let mut map = shard.write();
                    if map.peek(key).is_some_and(|e| !e.is_live()) {
                        map.pop(key);
                    }
                    return None;
                }
            }
        };
        if full {
            drop(shard.write());
        }
        Some(value)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.shard(key)
            .map
            .read()
            .peek(key)
            .is_some_and(Entry::is_live)
    }

    /// Store `value` (or remove the key when the expiry has passed).
    pub(crate) fn put(&self, key: &str, value: Bytes, expiry: Expiry) {
        let mut s = self.shard(key).write();
        match deadline(expiry) {
            Some(expires_at) => {
                let key: Arc<str> = key.into();
                s.put(
                    key.clone(),
                    Entry {
                        value,
                        expires_at,
                        key,
                    },
                );
            }
            None => {
                s.pop(key);
            }
        }
    }

    /// Insert unless a live entry is there; true if stored.
    pub(crate) fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> bool {
        let mut s = self.shard(key).write();
        if s.peek(key).is_some_and(Entry::is_live) {
            return false;
        }
        match deadline(expiry) {
            Some(expires_at) => {
                let key: Arc<str> = key.into();
                s.put(
                    key.clone(),
                    Entry {
                        value,
                        expires_at,
                        key,
                    },
                );
                true
            }
            None => false,
        }
    }

    /// Remove `key`; true if a live entry was there.
    pub(crate) fn remove(&self, key: &str) -> bool {
        self.shard(key)
            .write()
            .pop(key)
            .is_some_and(|e| e.is_live())
    }

    /// Remove `key` if it holds exactly `value` (a lock's token); true if removed.
    pub(crate) fn remove_if(&self, key: &str, value: &[u8]) -> bool {
        let mut s = self.shard(key).write();
        let owned = s.peek(key).is_some_and(|e| e.is_live() && e.value == value);
        if owned {
            s.pop(key);
        }
        owned
    }

    /// Remove every entry whose key starts with `prefix`.
    pub(crate) fn remove_prefix(&self, prefix: &str) {
        self.retain(|k, _| !k.starts_with(prefix));
    }

    /// Remove expired entries, one shard at a time; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        let now = Instant::now();
        self.retain(|_, e| e.is_live_at(now))
    }

    /// Keep only the entries `keep` accepts, one shard at a time; returns how many went.
    fn retain(&self, keep: impl Fn(&str, &Entry) -> bool) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut s = shard.write();
            let dead: Vec<Arc<str>> = s
                .iter()
                .filter(|(k, e)| !keep(k, e))
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                s.pop(&k);
                removed += 1;
            }
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_sweeper();
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
