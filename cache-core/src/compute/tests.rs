//! Get-or-compute's own tests, on a small in-crate store that counts its calls (the
//! stores' own behaviour is the conformance suite's job).

use super::landing::{received, unconfirmed_linger, Later};
use super::lookup::refresh_early;
use crate::envelope::{Meta, NEVER};
use crate::{
    async_trait, Cache, CacheBackend, Capabilities, Computed, ErrorKind, Expiry, LockToken,
    ManualClock, Result,
};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A map with a lock per key and a count of every call (expiry is not kept: these
/// tests read freshness from the header, on a manual clock).
#[derive(Default)]
struct Counting {
    values: Mutex<HashMap<String, Bytes>>,
    locks: Mutex<HashMap<String, String>>,
    calls: Mutex<HashMap<&'static str, usize>>,
    next: AtomicUsize,
}

impl Counting {
    fn count(&self, op: &'static str) {
        *self.calls.lock().entry(op).or_default() += 1;
    }
    fn calls(&self, op: &'static str) -> usize {
        self.calls.lock().get(op).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.calls.lock().values().sum()
    }
}

#[async_trait]
impl CacheBackend for Counting {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("counting")
            .distributed_locks(true)
            .fenced_writes(true)
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.count("get");
        Ok(self.values.lock().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Bytes, _: Expiry) -> Result<()> {
        self.count("set");
        self.values.lock().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.count("delete");
        Ok(self.values.lock().remove(key).is_some())
    }
    async fn clear(&self) -> Result<()> {
        self.count("clear");
        self.values.lock().clear();
        Ok(())
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, _: Expiry) -> Result<bool> {
        self.count("set_if_absent");
        let mut v = self.values.lock();
        if v.contains_key(key) {
            return Ok(false);
        }
        v.insert(key.to_owned(), value);
        Ok(true)
    }
    async fn acquire_lock(&self, key: &str, _: Duration) -> Result<Option<LockToken>> {
        self.count("acquire_lock");
        let mut locks = self.locks.lock();
        if locks.contains_key(key) {
            return Ok(None);
        }
        let token = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        locks.insert(key.to_owned(), token.clone());
        Ok(Some(LockToken::from_string(token)))
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.count("release_lock");
        let mut locks = self.locks.lock();
        if locks.get(key).map(String::as_str) == Some(token.as_str()) {
            locks.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        _: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.count("set_locked");
        let mut locks = self.locks.lock();
        if locks.get(key).map(String::as_str) != Some(token.as_str()) {
            return Ok(false);
        }
        locks.remove(key);
        self.values.lock().insert(key.to_owned(), value);
        Ok(true)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn cache() -> (Cache, Arc<Counting>, Arc<ManualClock>) {
    let store = Arc::new(Counting::default());
    let clock = Arc::new(ManualClock::new());
    let cache = crate::CacheBuilder::from_arc(store.clone())
        .clock(clock.clone())
        .build();
    (cache, store, clock)
}

fn computes() -> (
    Arc<AtomicUsize>,
    impl Fn() -> std::future::Ready<Result<u32, Infallible>>,
) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (n, move || {
        m.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(7))
    })
}

#[tokio::test]
async fn a_miss_costs_four_store_calls_and_a_hit_one() {
    let (cache, store, _) = cache();
    let (n, compute) = computes();
    let v = cache.get_or_compute("k", &compute).await.unwrap();
    assert_eq!((v, n.load(Ordering::SeqCst)), (7, 1));
    // Read, lock, re-read, fenced write (which releases the lock).
    assert_eq!(
        (
            store.calls("get"),
            store.calls("acquire_lock"),
            store.calls("set_locked")
        ),
        (2, 1, 1)
    );
    assert_eq!(store.total(), 4);
    let v = cache.get_or_compute("k", &compute).await.unwrap();
    assert_eq!((v, n.load(Ordering::SeqCst), store.total()), (7, 1, 5));
}

#[tokio::test]
async fn a_bad_key_or_namespace_reaches_no_store_call() {
    let (cache, store, _) = cache();
    let (n, compute) = computes();
    let err = cache.get_or_compute("", &compute).await.unwrap_err();
    assert!(
        matches!(err, crate::ComputeError::Cache(ref e) if e.kind() == ErrorKind::InvalidInput)
    );
    let err = cache
        .cached("k")
        .namespace("a:b")
        .get_or_compute(&compute)
        .await
        .unwrap_err();
    assert!(matches!(err, crate::ComputeError::Cache(_)), "{err:?}");
    let err = cache
        .cached("k")
        .lock_ttl(Duration::ZERO)
        .get_or_compute(&compute)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock_ttl"), "{err}");
    assert_eq!((store.total(), n.load(Ordering::SeqCst)), (0, 0));
}

#[tokio::test]
async fn options_set_on_the_builder_are_defaults_and_a_call_overrides_them() {
    let store = Arc::new(Counting::default());
    let cache = crate::CacheBuilder::from_arc(store.clone())
        .stampede_protection(false)
        .early_refresh(-3.0)
        .build();
    assert!(!cache.inner.compute.stampede_protection);
    assert_eq!(
        cache.inner.compute.early_refresh, 0.0,
        "a negative beta is off"
    );
    let (_, compute) = computes();
    // Without stampede protection: read, plain write.
    cache.get_or_compute("a", &compute).await.unwrap();
    assert_eq!((store.calls("acquire_lock"), store.calls("set")), (0, 1));
    // The call turns it back on: locked and fenced.
    cache
        .cached("b")
        .stampede_protection(true)
        .get_or_compute(&compute)
        .await
        .unwrap();
    assert_eq!(
        (store.calls("acquire_lock"), store.calls("set_locked")),
        (1, 1)
    );
    let call = cache.cached("c").fail_safe(Duration::from_secs(9));
    assert_eq!(call.settings.options.fail_safe_for, Duration::from_secs(9));
    assert!(!call.settings.options.stampede_protection);
}

#[tokio::test]
async fn plain_get_reads_a_kept_value_by_the_clock_and_an_unkept_one_by_the_store() {
    let (cache, _, clock) = cache();
    let (_, compute) = computes();
    cache
        .cached("kept")
        .expiry(Duration::from_secs(10))
        .fail_safe(Duration::from_secs(60))
        .get_or_compute(&compute)
        .await
        .unwrap();
    cache
        .cached("unkept")
        .expiry(Duration::from_secs(10))
        .get_or_compute(&compute)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    // Kept for fail-safe past its expiry on the cache's clock: not served by plain get.
    assert_eq!(cache.get::<u32>("kept").await.unwrap(), None);
    // Not kept: its lifetime is the store's (this store never expires anything).
    assert_eq!(cache.get::<u32>("unkept").await.unwrap(), Some(7));
}

#[tokio::test]
async fn a_stale_value_is_served_while_the_caller_refreshes_it_and_on_failure() {
    let (cache, _, clock) = cache();
    let call = || {
        cache
            .cached("k")
            .expiry(Duration::from_secs(10))
            .fail_safe(Duration::from_secs(60))
    };
    let v: u32 = call()
        .get_or_compute(|| async { Ok::<_, Infallible>(1) })
        .await
        .unwrap();
    assert_eq!(v, 1);
    clock.advance(Duration::from_secs(20));
    // Kept for fail-safe: plain get does not serve it, a failing compute does.
    assert_eq!(cache.get::<u32>("k").await.unwrap(), None);
    let v: u32 = call()
        .get_or_compute(|| async { Err::<u32, _>("down") })
        .await
        .unwrap();
    assert_eq!(v, 1);
    // Throttled: the failing origin is not asked again within the throttle.
    let asked = AtomicUsize::new(0);
    let v: u32 = call()
        .get_or_compute(|| async {
            asked.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>("down")
        })
        .await
        .unwrap();
    assert_eq!((v, asked.load(Ordering::SeqCst)), (1, 0));
}

#[test]
fn early_refresh_never_fires_without_a_beta_a_compute_time_or_an_expiry() {
    let meta = |fresh_until, compute_ms| Meta {
        fresh_until,
        stale_until: fresh_until,
        keep_until: fresh_until,
        written_at: 0,
        compute_ms,
    };
    for _ in 0..100 {
        assert!(!refresh_early(999, &meta(1_000, 100), 0.0));
        assert!(!refresh_early(999, &meta(1_000, 0), 1.0));
        assert!(!refresh_early(999, &meta(NEVER, 100), 1.0));
        // At its expiry it always fires; far before, with a short compute, never.
        assert!(refresh_early(1_000, &meta(1_000, 1), 1.0));
        assert!(!refresh_early(0, &meta(1_000_000_000, 1), 1.0));
    }
}

#[test]
fn a_superseded_outcome_reaches_only_callers_who_asked_before_its_compute_began() {
    type Out = super::error::Outcome<u32, ()>;
    let later: Arc<dyn std::any::Any + Send + Sync> = Arc::new(Later::<u32, ()> {
        began: 5,
        out: Ok(1),
    });
    assert!(matches!(
        received::<u32, ()>(Some(later.clone()), 4),
        Some(Ok(1))
    ));
    assert!(received::<u32, ()>(Some(later.clone()), 5).is_none());
    assert!(received::<u32, ()>(Some(later), 6).is_none());
    let plain: Arc<dyn std::any::Any + Send + Sync> = Arc::new(Out::Ok(2));
    assert!(matches!(received::<u32, ()>(Some(plain), 9), Some(Ok(2))));
    assert!(received::<u32, ()>(None, 0).is_none());
}

#[test]
fn an_unstored_value_lingers_for_its_freshness_at_most_a_minute() {
    let s = Duration::from_secs;
    assert_eq!(unconfirmed_linger(Expiry::After(s(10))), s(10));
    assert_eq!(unconfirmed_linger(Expiry::After(s(600))), s(60));
    assert_eq!(unconfirmed_linger(Expiry::Never), s(60));
    assert_eq!(
        unconfirmed_linger(Expiry::After(Duration::ZERO)),
        Duration::ZERO
    );
}

#[tokio::test]
async fn a_compute_chooses_its_expiry_or_not_to_store() {
    let (cache, store, clock) = cache();
    let runs = AtomicUsize::new(0);
    let short = || {
        cache
            .cached("k")
            .expiry(Duration::from_secs(60))
            .get_or_compute_with(|| async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Computed::store(1u32).expiry(Duration::from_secs(5)))
            })
    };
    assert_eq!(short().await.unwrap(), 1);
    assert_eq!(short().await.unwrap(), 1);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a hit within the compute's expiry"
    );
    clock.advance(Duration::from_secs(6));
    assert_eq!(short().await.unwrap(), 1);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the compute's 5 s, not the call's 60 s"
    );

    let writes = store.calls("set_locked");
    let pass = || {
        cache.cached("p").get_or_compute_with(|| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(Computed::pass(2u32))
        })
    };
    assert_eq!(pass().await.unwrap(), 2);
    assert_eq!(pass().await.unwrap(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 4, "not stored: computed again");
    assert_eq!(store.calls("set_locked"), writes, "nothing written");
    assert!(store.locks.lock().is_empty(), "the lock was released");
    assert_eq!(cache.get::<u32>("p").await.unwrap(), None);
}

#[tokio::test]
async fn callers_waiting_on_a_compute_that_passes_get_its_value() {
    let (cache, _, _) = cache();
    let runs = Arc::new(AtomicUsize::new(0));
    let (gate, open) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (cache, runs) = (cache.clone(), runs.clone());
        tokio::spawn(async move {
            cache
                .cached("k")
                .get_or_compute_with(|| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    open.await.ok();
                    Ok::<_, Infallible>(Computed::pass(3u32))
                })
                .await
        })
    };
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let follower = {
        let (cache, runs) = (cache.clone(), runs.clone());
        tokio::spawn(async move {
            cache
                .cached("k")
                .get_or_compute_with(|| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(Computed::pass(4u32))
                })
                .await
        })
    };
    // The follower is waiting on the flight before the leader lands.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate.send(()).unwrap();
    assert_eq!(leader.await.unwrap().unwrap(), 3);
    assert_eq!(follower.await.unwrap().unwrap(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_passed_value_superseded_by_a_delete_reaches_only_those_who_asked_before() {
    let (cache, _, _) = cache();
    let started = Arc::new(AtomicUsize::new(0));
    let (gate, open) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .cached("k")
                .get_or_compute_with(|| async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    open.await.ok();
                    Ok::<_, Infallible>(Computed::pass(3u32))
                })
                .await
        })
    };
    while started.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The application deletes the key while the compute runs; a caller asking after
    // that must not get the value computed before it.
    cache.delete("k").await.unwrap();
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .cached("k")
                .get_or_compute_with(|| async { Ok::<_, Infallible>(Computed::pass(4u32)) })
                .await
        })
    };
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate.send(()).unwrap();
    assert_eq!(leader.await.unwrap().unwrap(), 3, "its own caller gets it");
    assert_eq!(follower.await.unwrap().unwrap(), 4, "computed again");
}

#[tokio::test]
async fn a_lock_held_when_the_cache_closes_is_still_released() {
    let (cache, store, _) = cache();
    let (gate, open) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    open.await.ok();
                    Ok::<_, Infallible>(1u32)
                })
                .await
        })
    };
    while store.locks.lock().is_empty() {
        tokio::task::yield_now().await;
    }
    cache.close().await.unwrap();
    gate.send(()).unwrap();
    assert_eq!(leader.await.unwrap().unwrap(), 1, "computed, not stored");
    assert!(
        store.locks.lock().is_empty(),
        "other processes do not wait out its TTL"
    );
}
