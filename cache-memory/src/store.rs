//! The store: shards of entries with deadlines, an exact LRU order kept with read
//! stamps, and the sweeper thread.
//!
//! A read takes only the shard's shared lock: it finds the entry and stamps it with
//! the shard's clock (one atomic add). The order used for eviction is a `BTreeMap` from
//! each entry's *position* (the stamp it had when last placed) to the entry; it changes
//! under the exclusive lock only. To evict, the shard looks at the entry with the
//! smallest position: if its stamp is still its position (not read since it was
//! placed), no entry has an older stamp, so it is the least recently used and goes;
//! otherwise it is placed again at its stamp and the next one is looked at. Eviction
//! therefore always picks the entry with the oldest last use — exact LRU — while a
//! read costs a lookup and a stamp, and an entry read a thousand times between two
//! evictions is moved once, not a thousand times.

use crate::config::MemoryConfig;
use crate::error::config;
use cache_core::raw::{lock_state, overtaken, LockState, StoreKey, Ttl};
use cache_core::LockToken;
use cache_core::{Bytes, Expiry, Result};
use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A namespace of the store, with its share of every key's hash computed once.
#[derive(Clone)]
pub(crate) struct Namespace {
    name: Arc<str>,
    hasher: <DefaultHashBuilder as BuildHasher>::Hasher,
}

impl Namespace {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn is(&self, stored: &Arc<str>) -> bool {
        Arc::ptr_eq(&self.name, stored) || *self.name == **stored
    }
}

/// A store key looked up: namespace, kind and body (the core's layout, never joined)
/// and their hash.
pub(crate) struct Key<'a> {
    ns: &'a Namespace,
    lock: bool,
    body: &'a str,
    hash: u64,
}

impl Key<'_> {
    fn is(&self, e: &Entry) -> bool {
        // The body is held inline for keys up to 24 bytes: this touches the entry only.
        e.body.as_str() == self.body && e.lock == self.lock && self.ns.is(&e.ns)
    }

    /// The key's lock (same hash, so in the same shard: a value and its lock change
    /// under one shard lock).
    fn lock(&self) -> Key<'_> {
        Key {
            ns: self.ns,
            lock: true,
            body: self.body,
            hash: self.hash,
        }
    }
}

struct Entry {
    ns: Arc<str>,
    lock: bool,
    body: CompactString,
    hash: u64,
    value: Bytes,
    expires_at: Option<Instant>,
    /// The shard clock at the last use (read or write).
    stamp: AtomicU64,
    /// Where the entry sits in the shard's order (a stamp it had, ≤ `stamp`).
    pos: u64,
}

impl Entry {
    fn is_live_at(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    /// Reads the clock only for entries that can expire.
    #[inline]
    fn is_live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }
}

/// What the exclusive lock guards.
struct Table {
    entries: HashTable<Entry>,
    /// Position -> hash of the entry there; one item per entry.
    order: BTreeMap<u64, u64>,
    capacity: usize,
}

/// One independently locked part of the store, on its own cache lines so that
/// threads on different shards never share one.
#[repr(align(128))]
pub(crate) struct Shard {
    table: RwLock<Table>,
    clock: AtomicU64,
}

/// Entries a shard should be able to hold before the store is split into more
/// shards: below this, one shard (exact LRU over the whole bound).
const MIN_PER_SHARD: usize = 4096;

impl Shard {
    fn new(capacity: usize) -> Self {
        Shard {
            table: RwLock::new(Table {
                entries: HashTable::new(),
                order: BTreeMap::new(),
                capacity: capacity.max(1),
            }),
            clock: AtomicU64::new(1),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Relaxed)
    }

    /// Mark `e` as used now. An entry that already holds the newest stamp is left
    /// alone: stamping it again would not change the order (and saves the atomic add
    /// on a hot key read over and over).
    #[inline]
    fn touch(&self, e: &Entry) {
        if e.stamp.load(Relaxed) + 1 != self.clock.load(Relaxed) {
            e.stamp.store(self.tick(), Relaxed);
        }
    }

    fn len(&self) -> usize {
        self.table.read().entries.len()
    }
}

impl Table {
    #[inline]
    fn find(&self, key: &Key) -> Option<&Entry> {
        self.entries.find(key.hash, |e| key.is(e))
    }

    /// Mark the held lock of `key`'s value overtaken: its holder's fenced write
    /// stores nothing (see `CacheBackend::set_locked`).
    fn overtake(&mut self, key: &Key) {
        let lock = key.lock();
        if let Some(e) = self.entries.find_mut(lock.hash, |e| lock.is(e)) {
            if e.is_live() && !e.value.starts_with(b"!") {
                let token = std::str::from_utf8(&e.value).unwrap_or_default();
                e.value = Bytes::from(overtaken(token));
            }
        }
    }

    /// Remove the entry for `key`; the entry if there was one.
    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let (e, _) = self
            .entries
            .find_entry(key.hash, |e| key.is(e))
            .ok()?
            .remove();
        if !e.lock {
            self.order.remove(&e.pos);
        }
        Some(e)
    }

    /// Store `value` under `key`, stamped `now`; evicts the least recently used entry
    /// when a new key would go past the capacity.
    fn put(&mut self, key: &Key, value: Bytes, expires_at: Option<Instant>, now: u64) {
        if let Ok(mut found) = self.entries.find_entry(key.hash, |e| key.is(e)) {
            let e = found.get_mut();
            e.value = value;
            e.expires_at = expires_at;
            *e.stamp.get_mut() = now;
            return;
        }
        if self.entries.len() >= self.capacity {
            self.evict_one();
        }
        // Locks stay out of the LRU order: eviction never frees a held lock (its
        // holder's fenced write would then store nothing); they go when they expire
        // or are released, and a store full of values may hold its locks beyond its
        // bound (one per compute in progress).
        if !key.lock {
            self.order.insert(now, key.hash);
        }
        self.entries.insert_unique(
            key.hash,
            Entry {
                ns: key.ns.name.clone(),
                lock: key.lock,
                body: CompactString::from(key.body),
                hash: key.hash,
                value,
                expires_at,
                stamp: AtomicU64::new(now),
                pos: now,
            },
            |e| e.hash,
        );
    }

    fn evict_one(&mut self) {
        while let Some((pos, hash)) = self.order.pop_first() {
            let Ok(mut found) = self.entries.find_entry(hash, |e| e.pos == pos && !e.lock) else {
                continue; // cannot happen: every position names its entry
            };
            let e = found.get_mut();
            let stamp = *e.stamp.get_mut();
            if stamp == pos {
                found.remove();
                return;
            }
            // Used since it was placed: place it at its last use, look further.
            e.pos = stamp;
            self.order.insert(stamp, hash);
        }
    }

    /// Keep only the entries `keep` accepts; returns how many went.
    fn retain(&mut self, keep: &impl Fn(&Entry) -> bool) -> usize {
        let before = self.entries.len();
        let order = &mut self.order;
        self.entries.retain(|e| {
            let kept = keep(e);
            if !kept && !e.lock {
                order.remove(&e.pos);
            }
            kept
        });
        before - self.entries.len()
    }
}

pub(crate) struct Store {
    pub(crate) shards: Box<[Shard]>,
    hasher: DefaultHashBuilder,
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
            hasher: DefaultHashBuilder::default(),
            max_value_size: cfg.max_value_size,
            open_handles: AtomicUsize::new(0),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
        });
        if let Some(every) = cfg.sweep_interval {
            spawn_sweeper(Arc::downgrade(&store), store.stop.clone(), every)?;
        }
        Ok(store)
    }

    /// A namespace of this store.
    pub(crate) fn namespace(&self, name: &str) -> Namespace {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(name.as_bytes());
        Namespace {
            name: name.into(),
            hasher,
        }
    }

    /// The lookup form of a store key of `ns`: its kind and body, and the hash.
    #[inline]
    pub(crate) fn key<'a>(ns: &'a Namespace, key: &'a StoreKey<'a>) -> Key<'a> {
        let [_, _, marker, body] = key.parts();
        let lock = !marker.is_empty();
        // A value and its lock hash alike (they differ in `lock` only).
        let mut h = ns.hasher.clone();
        h.write(body.as_bytes());
        Key {
            ns,
            lock,
            body,
            hash: h.finish(),
        }
    }

    #[inline]
    fn shard(&self, key: &Key) -> &Shard {
        // 32 middle bits (the hash table uses the low ones for buckets, the top ones for
        // tags), scaled to the shard count by a multiply instead of a division.
        let bits = u64::from((key.hash >> 24) as u32);
        &self.shards[((bits * self.shards.len() as u64) >> 32) as usize]
    }

    pub(crate) fn stop_sweeper(&self) {
        let (flag, cv) = &*self.stop;
        *flag.lock() = true;
        cv.notify_all();
    }

    /// The live value under `key`; the read counts for the LRU order.
    pub(crate) fn get(&self, key: &Key) -> Option<Bytes> {
        self.with_live(key, Bytes::clone)
    }

    /// Lend the live value under `key` to `f` (under the shard's shared lock); true
    /// if there was one. The read counts for the LRU order.
    #[inline]
    pub(crate) fn read(&self, key: &Key, f: &mut dyn FnMut(&[u8])) -> bool {
        self.with_live(key, |v| f(v)).is_some()
    }

    #[inline]
    fn with_live<R>(&self, key: &Key, f: impl FnOnce(&Bytes) -> R) -> Option<R> {
        let shard = self.shard(key);
        {
            let t = shard.table.read();
            let e = t.find(key)?;
            if e.is_live() {
                shard.touch(e);
                return Some(f(&e.value));
            }
        }
        // Expired: drop it, unless it was replaced meanwhile.
        let mut t = shard.table.write();
        if t.find(key).is_some_and(|e| !e.is_live()) {
            t.remove(key);
        }
        None
    }

    pub(crate) fn has(&self, key: &Key) -> bool {
        self.shard(key)
            .table
            .read()
            .find(key)
            .is_some_and(Entry::is_live)
    }

    /// Store `value` (or remove the key when the expiry has passed).
    pub(crate) fn put(&self, key: &Key, value: Bytes, expiry: Expiry) {
        let shard = self.shard(key);
        let mut t = shard.table.write();
        t.overtake(key);
        match deadline(expiry) {
            Some(expires_at) => t.put(key, value, expires_at, shard.tick()),
            None => {
                t.remove(key);
            }
        }
    }

    /// The lock holder's write: store `value` (or remove the key when the expiry has
    /// passed) if `token` holds the key's lock, not overtaken; release the lock if
    /// `token` owns it. True if stored. One shard lock covers the check and the write.
    pub(crate) fn put_locked(
        &self,
        key: &Key,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> bool {
        let shard = self.shard(key);
        let mut t = shard.table.write();
        let lock = key.lock();
        let state = t
            .find(&lock)
            .filter(|e| e.is_live())
            .map_or(LockState::Other, |e| lock_state(&e.value, token));
        if state != LockState::Other {
            t.remove(&lock);
        }
        if state != LockState::Held {
            return false;
        }
        match deadline(expiry) {
            Some(expires_at) => t.put(key, value, expires_at, shard.tick()),
            None => {
                t.remove(key);
            }
        }
        true
    }

    /// Insert unless a live entry is there; true if stored.
    pub(crate) fn add(&self, key: &Key, value: Bytes, expiry: Expiry) -> bool {
        let shard = self.shard(key);
        let mut t = shard.table.write();
        if t.find(key).is_some_and(Entry::is_live) {
            return false;
        }
        match deadline(expiry) {
            Some(expires_at) => {
                if !key.lock {
                    t.overtake(key);
                }
                t.put(key, value, expires_at, shard.tick());
                true
            }
            None => false,
        }
    }

    /// Remove `key`; true if a live entry was there.
    pub(crate) fn remove(&self, key: &Key) -> bool {
        let mut t = self.shard(key).table.write();
        t.overtake(key);
        t.remove(key).is_some_and(|e| e.is_live())
    }

    /// Remove the lock `key` if `token` owns it (overtaken or not); true if removed.
    pub(crate) fn release(&self, key: &Key, token: &LockToken) -> bool {
        let mut t = self.shard(key).table.write();
        let owned = t
            .find(key)
            .is_some_and(|e| e.is_live() && lock_state(&e.value, token) != LockState::Other);
        if owned {
            t.remove(key);
        }
        owned
    }

    /// Remove the namespace's values; its locks stay (a clear during a compute must
    /// not let a second caller compute the same key), overtaken: what their holders
    /// computed before the clear is not stored.
    pub(crate) fn remove_namespace(&self, ns: &Namespace) {
        for shard in &*self.shards {
            let mut t = shard.table.write();
            t.retain(&|e: &Entry| !ns.is(&e.ns) || e.lock);
            for e in t.entries.iter_mut() {
                if e.lock && ns.is(&e.ns) && !e.value.starts_with(b"!") {
                    let token = std::str::from_utf8(&e.value).unwrap_or_default();
                    e.value = Bytes::from(overtaken(token));
                }
            }
        }
    }

    /// Remove expired entries, one shard at a time; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        let now = Instant::now();
        self.retain(|e| e.is_live_at(now))
    }

    /// Keep only the entries `keep` accepts, one shard at a time; returns how many went.
    fn retain(&self, keep: impl Fn(&Entry) -> bool) -> usize {
        self.shards
            .iter()
            .map(|s| s.table.write().retain(&keep))
            .sum()
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
