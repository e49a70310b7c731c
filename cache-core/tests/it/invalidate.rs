//! Invalidating after a write: `invalidate` on the call builder (the same key rules as
//! get-or-compute) and `refresh(true)`, which never returns a value computed before it
//! was called.

use cache_core::{Cache, ErrorKind, KeyBuilder};
use cache_memory::MemoryBackend;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

fn cache() -> Cache {
    Cache::new(MemoryBackend::builder().build().unwrap())
}

/// A compute that counts its runs and returns the count, each run waiting for a
/// permit of `gate` first.
#[derive(Clone)]
struct Source {
    runs: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Source {
    fn open() -> Self {
        Source {
            runs: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }
    fn gated() -> Self {
        Source {
            gate: Arc::new(Semaphore::new(0)),
            ..Source::open()
        }
    }
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
    async fn call(&self, cache: &Cache, refresh: bool) -> usize {
        let s = self.clone();
        cache
            .cached(KeyBuilder::new("user").arg(&7))
            .namespace("users")
            .refresh(refresh)
            .get_or_compute(|| async move {
                let n = s.runs.fetch_add(1, Ordering::SeqCst) + 1;
                s.gate.acquire().await.unwrap().forget();
                Ok::<_, std::io::Error>(n)
            })
            .await
            .unwrap()
    }
    /// Until `n` computes have begun.
    async fn begun(&self, n: usize) {
        while self.runs() < n {
            tokio::task::yield_now().await;
        }
    }
}

fn invalidate(cache: &Cache) -> cache_core::ComputeCall<'_, cache_core::MessagePack> {
    cache
        .cached(KeyBuilder::new("user").arg(&7))
        .namespace("users")
}

#[tokio::test]
async fn invalidate_removes_what_get_or_compute_reads() {
    let (cache, src) = (cache(), Source::open());
    assert_eq!(src.call(&cache, false).await, 1);
    assert_eq!(src.call(&cache, false).await, 1, "a hit does not recompute");
    assert!(invalidate(&cache).invalidate().await.unwrap());
    assert_eq!(src.call(&cache, false).await, 2);
    assert_eq!(src.runs(), 2);
    // The same stored key as the call's: namespace, then the built key.
    let stored = format!("users:{}", KeyBuilder::new("user").arg(&7).build().unwrap());
    assert_eq!(cache.get::<usize>(&stored).await.unwrap(), Some(2));
    assert!(invalidate(&cache).invalidate().await.unwrap());
    assert!(
        !invalidate(&cache).invalidate().await.unwrap(),
        "nothing left"
    );
}

#[tokio::test]
async fn invalidate_refuses_what_get_or_compute_refuses() {
    let cache = cache();
    cache.insert("k", &1).await.unwrap();
    let long = "k".repeat(100_000);
    for (call, kind) in [
        (cache.cached(long), ErrorKind::InvalidInput),
        (cache.cached(""), ErrorKind::InvalidInput),
        (cache.cached("k").namespace("bad ns"), ErrorKind::Config),
    ] {
        let err = call.invalidate().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
}

/// A compute in flight when the key is invalidated returns its value to its callers
/// but does not store it: the next call computes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_in_flight_when_invalidated_is_not_stored() {
    let (cache, src) = (cache(), Source::gated());
    let first = tokio::spawn({
        let (cache, src) = (cache.clone(), src.clone());
        async move { src.call(&cache, false).await }
    });
    src.begun(1).await;
    assert!(!invalidate(&cache).invalidate().await.unwrap());
    src.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(src.call(&cache, false).await, 2);
}

/// Let the spawned tasks of this (current-thread) runtime run until they wait.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// `refresh(true)` during another caller's compute does not take that compute's value
/// (it may have read the data before the write the refresh follows): it computes
/// again, and its value is the one stored.
#[tokio::test]
async fn a_refresh_never_returns_a_value_computed_before_it_was_called() {
    let (cache, src) = (cache(), Source::gated());
    let first = tokio::spawn({
        let (cache, src) = (cache.clone(), src.clone());
        async move { src.call(&cache, false).await }
    });
    src.begun(1).await;
    let refresh = tokio::spawn({
        let (cache, src) = (cache.clone(), src.clone());
        async move { src.call(&cache, true).await }
    });
    // The refresh reaches the flight before the first compute ends.
    settle().await;
    src.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(
        refresh.await.unwrap(),
        2,
        "the refresh computed after its call"
    );
    assert_eq!(src.call(&cache, false).await, 2, "and its value is stored");
    assert_eq!(src.runs(), 2);
}

/// Refreshes called while an earlier refresh computes wait it out and then share one
/// compute of their own.
#[tokio::test]
async fn refreshes_share_only_a_compute_begun_after_them() {
    let (cache, src) = (cache(), Source::gated());
    let spawn = |refresh| {
        let (cache, src) = (cache.clone(), src.clone());
        tokio::spawn(async move { src.call(&cache, refresh).await })
    };
    let early = spawn(true);
    src.begun(1).await;
    let late: Vec<_> = (0..5).map(|_| spawn(true)).collect();
    settle().await;
    assert_eq!(src.runs(), 1, "the late refreshes wait");
    src.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    assert_eq!(early.await.unwrap(), 1);
    for r in late {
        assert_eq!(r.await.unwrap(), 2);
    }
    assert_eq!(src.runs(), 2, "one compute for the five late refreshes");
}
