//! The defaults a `CacheBuilder` picks by where the store lives: a networked store (one
//! with distributed locks) gets a circuit breaker and a default expiry of one hour;
//! an in-process store gets neither. Each can be set or turned off.

use cache_core::{
    async_trait, BreakerConfig, BreakerState, Bytes, Cache, CacheBackend, CacheBuilder,
    Capabilities, Error, ErrorKind, Expiry, LazyBackend, LockToken, Result,
};
use cache_memory::MemoryBackend;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A store in a map that can be down; counts the calls that reach it and keeps the
/// expiry of each write.
struct Store {
    caps: Capabilities,
    down: AtomicBool,
    calls: AtomicUsize,
    values: Mutex<HashMap<String, (Bytes, Expiry)>>,
}

impl Store {
    fn networked() -> Arc<Self> {
        // As every networked backend declares itself (fenced writes left to the
        // trait's default `set_locked`, which this map does not override).
        Self::with(Capabilities::networked("net", None, 1 << 20).fenced_writes(false))
    }
    fn in_process() -> Arc<Self> {
        Self::with(Capabilities::new("local"))
    }
    fn with(caps: Capabilities) -> Arc<Self> {
        Arc::new(Store {
            caps,
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            values: Mutex::new(HashMap::new()),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn expiry_of(&self, key: &str) -> Option<Expiry> {
        self.values.lock().get(key).map(|(_, e)| *e)
    }
    fn call(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                self.caps.name,
                "connection refused (the test's store is down)",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl CacheBackend for Store {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.call()?;
        Ok(self.values.lock().get(key).map(|(v, _)| v.clone()))
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.call()?;
        self.values.lock().insert(key.to_owned(), (value, expiry));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.call()?;
        Ok(self.values.lock().remove(key).is_some())
    }
    async fn clear(&self) -> Result<()> {
        self.call()?;
        self.values.lock().clear();
        Ok(())
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.call()?;
        let mut values = self.values.lock();
        if values.contains_key(key) {
            return Ok(false);
        }
        values.insert(key.to_owned(), (value, expiry));
        Ok(true)
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let lock = format!("#lock:{key}");
        let taken = self
            .set_if_absent(&lock, Bytes::from(token.as_str().to_owned()), ttl.into())
            .await?;
        Ok(taken.then_some(token))
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.call()?;
        let lock = format!("#lock:{key}");
        let mut values = self.values.lock();
        if values
            .get(&lock)
            .is_some_and(|(t, _)| t[..] == *token.as_str().as_bytes())
        {
            values.remove(&lock);
            return Ok(true);
        }
        Ok(false)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// `n` plain gets of a down store, each an error.
async fn failing_gets(cache: &Cache, n: usize) -> Vec<Error> {
    let mut errors = vec![];
    for i in 0..n {
        errors.push(cache.get::<u32>(&format!("k{i}")).await.unwrap_err());
    }
    errors
}

#[tokio::test]
async fn a_networked_store_gets_a_breaker_by_default() {
    let store = Store::networked();
    let cache = Cache::from_arc(store.clone());
    let breaker = cache.circuit_breaker().expect("a breaker by default");
    assert_eq!(breaker.state(), BreakerState::Closed);
    store.down.store(true, Ordering::SeqCst);
    let threshold = BreakerConfig::default().failure_threshold as usize;
    failing_gets(&cache, threshold).await;
    assert_eq!(store.calls(), threshold);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    // Open: the store is skipped at once, and the error says what it said last.
    let errors = failing_gets(&cache, 20).await;
    assert_eq!(
        store.calls(),
        threshold,
        "a call reached the open breaker's store"
    );
    let e = &errors[0];
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.message().contains("circuit breaker open"), "{e}");
    assert!(e.message().contains("the test's store is down"), "{e}");
    // get-or-compute computes without the store.
    let v: u32 = cache
        .get_or_compute("gc", || async { Ok::<_, std::io::Error>(7) })
        .await
        .unwrap();
    assert_eq!((v, store.calls()), (7, threshold));
}

#[tokio::test]
async fn the_default_breaker_can_be_turned_off_or_configured() {
    let store = Store::networked();
    let cache = CacheBuilder::from_arc(store.clone())
        .without_circuit_breaker()
        .build();
    assert!(cache.circuit_breaker().is_none());
    store.down.store(true, Ordering::SeqCst);
    failing_gets(&cache, 20).await;
    assert_eq!(store.calls(), 20, "every call reaches the store");

    let store = Store::networked();
    let cache = CacheBuilder::from_arc(store.clone())
        .without_circuit_breaker()
        .circuit_breaker(BreakerConfig::default().failure_threshold(2))
        .build();
    store.down.store(true, Ordering::SeqCst);
    failing_gets(&cache, 10).await;
    assert_eq!(
        store.calls(),
        2,
        "the configured threshold; the last setting wins"
    );
}

#[tokio::test]
async fn an_in_process_store_gets_no_breaker_unless_asked() {
    let memory = Cache::new(MemoryBackend::builder().build().unwrap());
    assert!(memory.circuit_breaker().is_none());

    let store = Store::in_process();
    let cache = Cache::from_arc(store.clone());
    assert!(cache.circuit_breaker().is_none());
    store.down.store(true, Ordering::SeqCst);
    failing_gets(&cache, 20).await;
    assert_eq!(store.calls(), 20, "every call reaches the store");

    let store = Store::in_process();
    let cache = CacheBuilder::from_arc(store.clone())
        .circuit_breaker(BreakerConfig::default())
        .build();
    assert!(cache.circuit_breaker().is_some());
}

#[tokio::test]
async fn a_networked_store_gets_a_stated_default_expiry() {
    let hour = Expiry::After(Duration::from_secs(3600));
    assert_eq!(Expiry::After(CacheBuilder::NETWORKED_DEFAULT_EXPIRY), hour);
    let store = Store::networked();
    let cache = Cache::from_arc(store.clone());
    assert_eq!(cache.default_expiry(), hour);
    // Get-or-compute without `.expiry`, and `insert`, write with it.
    let v: u32 = cache
        .get_or_compute("computed", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(store.expiry_of("computed"), Some(hour));
    cache.insert("inserted", &2u32).await.unwrap();
    assert_eq!(store.expiry_of("inserted"), Some(hour));

    // Never when asked.
    let store = Store::networked();
    let cache = CacheBuilder::from_arc(store.clone())
        .default_expiry(Expiry::Never)
        .build();
    assert_eq!(cache.default_expiry(), Expiry::Never);
    cache.insert("forever", &3u32).await.unwrap();
    assert_eq!(store.expiry_of("forever"), Some(Expiry::Never));
}

#[tokio::test]
async fn an_in_process_store_keeps_never_as_its_default_expiry() {
    let memory = Cache::new(MemoryBackend::builder().build().unwrap());
    assert_eq!(memory.default_expiry(), Expiry::Never);
    let store = Store::in_process();
    let cache = Cache::from_arc(store.clone());
    cache.insert("k", &1u32).await.unwrap();
    assert_eq!(store.expiry_of("k"), Some(Expiry::Never));
}

/// A lazy backend still connecting fails fast with "still connecting"; once the
/// default breaker opens over those failures, its errors still say so.
#[tokio::test]
async fn the_breaker_over_a_lazy_start_says_it_is_still_connecting() {
    let lazy = LazyBackend::spawn(
        Capabilities::networked("net", None, 1 << 20),
        "ns",
        || async {
            Err::<cache_core::Checked, _>(Error::new(ErrorKind::Unavailable, "net", "down"))
        },
    )
    .unwrap();
    let cache = Cache::new(lazy);
    for e in failing_gets(&cache, 10).await {
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("still connecting"), "{e}");
    }
    assert!(matches!(
        cache.circuit_breaker().unwrap().state(),
        BreakerState::Open { .. }
    ));
}
