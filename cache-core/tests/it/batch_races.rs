//! Races of batch get-or-compute found by review, each proved against the first
//! version: a flight landed during the batch's read, refreshes called together, a
//! compute that panics before its future, a polled value landed after a delete, and a
//! cancelled batch.

use cache_core::{
    async_trait, Bytes, Cache, CacheBackend, Capabilities, ComputeError, Expiry, LockToken, Result,
};
use cache_memory::MemoryBackend;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Memory store whose `hold_at`-th read (get or get_many, counted together) reads,
/// then waits for `release` before answering.
struct Held {
    inner: MemoryBackend,
    reads: AtomicUsize,
    hold_at: AtomicUsize,
    reached: Notify,
    release: Semaphore,
}

impl Held {
    fn new() -> Arc<Self> {
        Arc::new(Held {
            inner: MemoryBackend::builder().build().unwrap(),
            reads: AtomicUsize::new(0),
            hold_at: AtomicUsize::new(usize::MAX),
            reached: Notify::new(),
            release: Semaphore::new(0),
        })
    }
    /// Hold the next read (counting from now, `n` = 1 the next one).
    fn hold_read(&self, n: usize) {
        self.hold_at
            .store(self.reads.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }
    async fn maybe_hold(&self) {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.hold_at.load(Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.acquire().await.unwrap().forget();
        }
    }
}

#[async_trait]
impl CacheBackend for Held {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let r = self.inner.get(key).await;
        self.maybe_hold().await;
        r
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let r = self.inner.get_many(keys).await;
        self.maybe_hold().await;
        r
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.inner.set(key, value, expiry).await
    }
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.inner.set_locked(key, value, expiry, token).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.inner.set_if_absent(key, value, expiry).await
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        self.inner.acquire_lock(key, ttl).await
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.inner.release_lock(key, token).await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A single leader's compute fails while a later caller's read is under way. The
/// single caller takes the failure (one compute per flight); does the batch?
async fn failure_lands_during_read(batch: bool) -> usize {
    let store = Held::new();
    let cache = Cache::from_arc(store.clone());
    let computes = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let s = tokio::spawn({
        let (cache, gate, computes) = (cache.clone(), gate.clone(), computes.clone());
        async move {
            cache
                .get_or_compute::<u32, String, _>("k", || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    Err("origin down".to_string())
                })
                .await
        }
    });
    while computes.load(Ordering::SeqCst) == 0 {
        settle().await;
    }
    store.hold_read(1);
    let later = tokio::spawn({
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            if batch {
                cache
                    .cached_many([("k".to_string(), 1u32)])
                    .get_or_compute_many(|_ids: Vec<u32>| {
                        let computes = computes.clone();
                        async move {
                            computes.fetch_add(1, Ordering::SeqCst);
                            Err::<Vec<(u32, u32)>, _>("origin down".to_string())
                        }
                    })
                    .await
                    .map(|_| ())
            } else {
                cache
                    .get_or_compute::<u32, String, _>("k", || async {
                        computes.fetch_add(1, Ordering::SeqCst);
                        Err("origin down".to_string())
                    })
                    .await
                    .map(|_| ())
            }
        }
    });
    store.reached.notified().await;
    gate.add_permits(1);
    assert!(s.await.unwrap().is_err());
    store.release.add_permits(1);
    assert!(later.await.unwrap().is_err());
    computes.load(Ordering::SeqCst)
}

#[tokio::test]
async fn single_takes_a_failure_landed_during_its_read() {
    assert_eq!(failure_lands_during_read(false).await, 1);
}

#[tokio::test]
async fn batch_takes_a_failure_landed_during_its_read() {
    assert_eq!(
        failure_lands_during_read(true).await,
        1,
        "the failing origin was asked again"
    );
}

/// A batch's compute closure panics before returning its future; a single caller
/// following the batch's flight of that key should get the panic as an error (as a
/// single leader's followers do), not compute again.
#[tokio::test]
async fn sync_panic_in_batch_compute_reaches_followers() {
    let store = Held::new();
    let cache = Cache::from_arc(store.clone());
    // Hold the batch's re-read (its 2nd read), after it took off and locked.
    store.hold_read(2);
    let b = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .cached_many([("k".to_string(), 1u32)])
                .get_or_compute_many(|_ids: Vec<u32>| -> std::future::Ready<std::result::Result<Vec<(u32, u32)>, String>> {
                    panic!("sync panic")
                })
                .await
        }
    });
    store.reached.notified().await;
    let computes = Arc::new(AtomicUsize::new(0));
    let s = tokio::spawn({
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            cache
                .get_or_compute::<u32, String, _>("k", || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok(7)
                })
                .await
        }
    });
    settle().await;
    store.release.add_permits(1);
    assert!(b.await.is_err(), "the batch panics");
    let got = s.await.unwrap();
    assert!(
        matches!(got, Err(ComputeError::Panicked(_))),
        "follower got {got:?}, computes {}",
        computes.load(Ordering::SeqCst)
    );
}

/// Another process's value, found by the batch's poll, lands for this process's
/// followers only after the batch's own compute: a caller that asks after this
/// process deleted the key gets the deleted value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_value_landed_late_survives_a_delete() {
    let store: Arc<dyn CacheBackend> = Arc::new(MemoryBackend::builder().build().unwrap());
    let (p1, p2) = (
        Cache::from_arc(store.clone()),
        Cache::from_arc(store.clone()),
    );
    let g2 = Arc::new(Semaphore::new(0));
    let other = tokio::spawn({
        let (p2, g2) = (p2.clone(), g2.clone());
        async move {
            p2.get_or_compute::<u32, String, _>("k", || async move {
                g2.acquire().await.unwrap().forget();
                Ok(1)
            })
            .await
            .unwrap()
        }
    });
    settle().await; // p2 holds k's lock
    let gb = Arc::new(Semaphore::new(0));
    let batch = tokio::spawn({
        let (p1, gb) = (p1.clone(), gb.clone());
        async move {
            p1.cached_many([("k".to_string(), 100u32), ("j".to_string(), 200)])
                .get_or_compute_many(move |ids: Vec<u32>| {
                    let gb = gb.clone();
                    async move {
                        gb.acquire().await.unwrap().forget();
                        Ok::<_, String>(ids.into_iter().map(|i| (i, i)).collect::<Vec<_>>())
                    }
                })
                .await
                .unwrap()
        }
    });
    settle().await; // batch computes j, polls k
    g2.add_permits(1);
    assert_eq!(other.await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await; // the poll found k = 1
    assert!(p1.delete("k").await.unwrap());
    let s = tokio::spawn({
        let p1 = p1.clone();
        async move {
            p1.get_or_compute::<u32, String, _>("k", || async { Ok(99) })
                .await
                .unwrap()
        }
    });
    settle().await; // s read nothing and follows the batch's flight of k
    gb.add_permits(1);
    assert_eq!(batch.await.unwrap(), vec![Some(1), Some(200)]);
    assert_eq!(
        s.await.unwrap(),
        99,
        "asked after the delete, got the deleted value"
    );
}

/// Refreshes called together share one compute (ComputeCall::refresh docs).
async fn refreshes_share(batch: bool) -> usize {
    let store = Held::new();
    let cache = Cache::from_arc(store.clone());
    let gs = Arc::new(Semaphore::new(0));
    let s = tokio::spawn({
        let (cache, gs) = (cache.clone(), gs.clone());
        async move {
            cache
                .get_or_compute::<u32, String, _>("k", || async move {
                    gs.acquire().await.unwrap().forget();
                    Ok(1)
                })
                .await
        }
    });
    settle().await;
    let computes = Arc::new(AtomicUsize::new(0));
    let gr = Arc::new(Semaphore::new(0));
    let refresh = || {
        let (cache, computes, gr) = (cache.clone(), computes.clone(), gr.clone());
        tokio::spawn(async move {
            if batch {
                cache
                    .cached_many([("k".to_string(), 1u32)])
                    .refresh(true)
                    .get_or_compute_many(move |ids: Vec<u32>| {
                        let (computes, gr) = (computes.clone(), gr.clone());
                        async move {
                            computes.fetch_add(1, Ordering::SeqCst);
                            gr.acquire().await.unwrap().forget();
                            Ok::<_, String>(ids.into_iter().map(|i| (i, 2)).collect::<Vec<_>>())
                        }
                    })
                    .await
                    .unwrap()[0]
                    .unwrap()
            } else {
                cache
                    .cached("k")
                    .refresh(true)
                    .get_or_compute::<u32, String, _, _>(|| async move {
                        computes.fetch_add(1, Ordering::SeqCst);
                        gr.acquire().await.unwrap().forget();
                        Ok(2)
                    })
                    .await
                    .unwrap()
            }
        })
    };
    let (r1, r2) = (refresh(), refresh());
    settle().await; // both wait out s's flight
    gs.add_permits(1);
    s.await.unwrap().unwrap();
    settle().await;
    gr.add_permits(10);
    assert_eq!(r1.await.unwrap(), 2);
    assert_eq!(r2.await.unwrap(), 2);
    computes.load(Ordering::SeqCst)
}

#[tokio::test]
async fn single_refreshes_called_together_share_one_compute() {
    assert_eq!(refreshes_share(false).await, 1);
}

#[tokio::test]
async fn batch_refreshes_called_together_share_one_compute() {
    assert_eq!(refreshes_share(true).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_batch_frees_flight_and_lock() {
    let store = Held::new();
    let cache = Cache::from_arc(store.clone());
    let started = Arc::new(Notify::new());
    let b = tokio::spawn({
        let (cache, started) = (cache.clone(), started.clone());
        async move {
            cache
                .cached_many([("k".to_string(), 1u32), ("j".to_string(), 2)])
                .get_or_compute_many(move |_ids: Vec<u32>| {
                    let started = started.clone();
                    async move {
                        started.notify_one();
                        std::future::pending::<()>().await;
                        Ok::<Vec<(u32, u32)>, String>(vec![])
                    }
                })
                .await
        }
    });
    started.notified().await;
    let s = tokio::spawn({
        let cache = cache.clone();
        async move {
            cache
                .get_or_compute::<u32, String, _>("k", || async { Ok(5) })
                .await
        }
    });
    settle().await;
    b.abort();
    let t = std::time::Instant::now();
    assert_eq!(s.await.unwrap().unwrap(), 5);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // j's lock released too: a new call computes and stores without waiting.
    let t = std::time::Instant::now();
    assert_eq!(
        cache
            .get_or_compute::<u32, String, _>("j", || async { Ok(6) })
            .await
            .unwrap(),
        6
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(cache.get::<u32>("j").await.unwrap(), Some(6));
}
