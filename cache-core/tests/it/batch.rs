//! Batch get-or-compute (`Cache::cached_many`): one read, one compute of the misses,
//! per-key single flight shared with other batches and single calls; store calls
//! counted with the fault wrapper.

use cache_core::{Cache, ComputeError, ErrorKind, KeyBuilder, ManualClock};
use cache_memory::MemoryBackend;
use conformance_tests::FaultyBackend;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

fn counted() -> (Cache, Arc<FaultyBackend>) {
    let store = Arc::new(FaultyBackend::new(Arc::new(
        MemoryBackend::builder().build().unwrap(),
    )));
    (Cache::from_arc(store.clone()), store)
}

fn key(id: u32) -> KeyBuilder {
    KeyBuilder::new("item").arg(&id)
}

/// The origin: records each call's arguments, answers `id * 10` for the ids it
/// knows (all by default), each call waiting for a permit of `gate` first.
#[derive(Clone)]
struct Origin {
    calls: Arc<Mutex<Vec<Vec<u32>>>>,
    gate: Arc<Semaphore>,
    knows: fn(u32) -> bool,
}

impl Origin {
    fn new() -> Self {
        Origin {
            calls: Arc::default(),
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            knows: |_| true,
        }
    }
    fn gated() -> Self {
        Origin {
            gate: Arc::new(Semaphore::new(0)),
            ..Origin::new()
        }
    }
    fn calls(&self) -> Vec<Vec<u32>> {
        self.calls.lock().clone()
    }
    async fn get(
        &self,
        cache: &Cache,
        ids: &[u32],
    ) -> Result<Vec<Option<u32>>, ComputeError<String>> {
        let o = self.clone();
        cache
            .cached_many(ids.iter().map(|id| (key(*id), *id)))
            .namespace("items")
            .expiry(Duration::from_secs(60))
            .get_or_compute_many(move |missing: Vec<u32>| {
                let o = o.clone();
                async move {
                    o.calls.lock().push(missing.clone());
                    o.gate.acquire().await.unwrap().forget();
                    Ok::<_, String>(
                        missing
                            .into_iter()
                            .filter(|id| (o.knows)(*id))
                            .map(|id| (id, id * 10))
                            .collect::<Vec<_>>(),
                    )
                }
            })
            .await
    }
}

#[tokio::test]
async fn values_in_request_order_duplicates_once_one_compute_of_the_misses() {
    let (cache, store) = counted();
    let origin = Origin::new();
    assert_eq!(origin.get(&cache, &[5]).await.unwrap(), vec![Some(50)]);
    let before = store.calls();
    let got = origin.get(&cache, &[3, 5, 3, 7, 1]).await.unwrap();
    assert_eq!(got, vec![Some(30), Some(50), Some(30), Some(70), Some(10)]);
    assert_eq!(
        origin.calls(),
        vec![vec![5], vec![3, 7, 1]],
        "one compute, the misses once each, in request order"
    );
    // One read for all, a lock per cold key, one re-read of the locked keys, a
    // fenced write per cold key.
    assert_eq!(store.calls() - before, 1 + 3 + 1 + 3);
    // All warm: one store call, no compute.
    let before = store.calls();
    let again = origin.get(&cache, &[1, 3, 5, 7]).await.unwrap();
    assert_eq!(again, vec![Some(10), Some(30), Some(50), Some(70)]);
    assert_eq!(store.calls() - before, 1);
    assert_eq!(origin.calls().len(), 2);
}

#[tokio::test]
async fn a_key_the_compute_does_not_return_is_none_and_not_cached() {
    let (cache, _) = counted();
    let origin = Origin {
        knows: |id| id != 2,
        ..Origin::new()
    };
    assert_eq!(
        origin.get(&cache, &[1, 2, 3]).await.unwrap(),
        vec![Some(10), None, Some(30)]
    );
    assert_eq!(origin.get(&cache, &[1, 2, 3]).await.unwrap()[1], None);
    assert_eq!(origin.calls(), vec![vec![1, 2, 3], vec![2]], "asked again");
}

#[tokio::test]
async fn a_bad_key_fails_the_call_before_any_store_call_or_compute() {
    let (cache, store) = counted();
    let origin = Origin::new();
    let err = cache
        .cached_many([("ok".to_string(), 1u32), (String::new(), 2)])
        .get_or_compute_many(|ids: Vec<u32>| async move {
            Ok::<_, String>(ids.into_iter().map(|i| (i, i)))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Cache(ref e) if e.kind() == ErrorKind::InvalidInput));
    assert_eq!(store.calls(), 0);
    assert!(origin.calls().is_empty());
}

#[tokio::test]
async fn a_failed_compute_fails_the_call_but_fail_safe_serves_stale_values() {
    let clock = Arc::new(ManualClock::new());
    let cache = Cache::builder(MemoryBackend::builder().build().unwrap())
        .clock(clock.clone())
        .fail_safe(Duration::from_secs(3600))
        .build();
    let ok = Origin::new();
    assert_eq!(
        ok.get(&cache, &[1, 2]).await.unwrap(),
        vec![Some(10), Some(20)]
    );
    clock.advance(Duration::from_secs(61));
    let failing = |ids: Vec<u32>| async move {
        let _ = ids;
        Err::<Vec<(u32, u32)>, _>("origin down".to_string())
    };
    // Both past their freshness, kept for fail-safe: served.
    let stale = cache
        .cached_many([(key(1), 1u32), (key(2), 2)])
        .namespace("items")
        .get_or_compute_many(failing)
        .await
        .unwrap();
    assert_eq!(stale, vec![Some(10), Some(20)]);
    // A key with nothing to serve fails the call.
    let err = cache
        .cached_many([(key(1), 1u32), (key(9), 9)])
        .namespace("items")
        .fail_safe_throttle(Duration::ZERO)
        .get_or_compute_many(failing)
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Compute(ref e) if **e == "origin down"));
}

/// Two batches overlapping in time share the keys they have in common: every key is
/// computed once in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_compute_each_key_once() {
    let (cache, _) = counted();
    let origin = Origin::gated();
    let a = tokio::spawn({
        let (cache, origin) = (cache.clone(), origin.clone());
        async move { origin.get(&cache, &[1, 2, 3]).await.unwrap() }
    });
    while origin.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    let b = tokio::spawn({
        let (cache, origin) = (cache.clone(), origin.clone());
        async move { origin.get(&cache, &[2, 3, 4]).await.unwrap() }
    });
    while origin.calls().len() < 2 {
        tokio::task::yield_now().await;
    }
    origin.gate.add_permits(2);
    assert_eq!(a.await.unwrap(), vec![Some(10), Some(20), Some(30)]);
    assert_eq!(b.await.unwrap(), vec![Some(20), Some(30), Some(40)]);
    assert_eq!(origin.calls(), vec![vec![1, 2, 3], vec![4]]);
}

/// A single get-or-compute in flight and a batch share the key: the batch waits for
/// it beside its own compute of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_follows_a_single_call_in_flight() {
    let (cache, _) = counted();
    let gate = Arc::new(Semaphore::new(0));
    let single = tokio::spawn({
        let (cache, gate) = (cache.clone(), gate.clone());
        async move {
            cache
                .cached(key(2))
                .namespace("items")
                .get_or_compute(|| async move {
                    gate.acquire().await.unwrap().forget();
                    Ok::<_, String>(222u32)
                })
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let origin = Origin::new();
    let batch = tokio::spawn({
        let (cache, origin) = (cache.clone(), origin.clone());
        async move { origin.get(&cache, &[1, 2]).await.unwrap() }
    });
    while origin.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    assert_eq!(single.await.unwrap(), 222);
    assert_eq!(batch.await.unwrap(), vec![Some(10), Some(222)]);
    assert_eq!(origin.calls(), vec![vec![1]], "key 2 was the single call's");
    assert_eq!(cache.stats().coalesced, 1);
}

#[tokio::test]
async fn skip_computes_everything_and_touches_no_store() {
    let (cache, store) = counted();
    let origin = Origin::new();
    origin.get(&cache, &[1]).await.unwrap();
    let before = store.calls();
    let got = cache
        .cached_many([(key(1), 1u32), (key(2), 2)])
        .namespace("items")
        .skip(true)
        .get_or_compute_many(|ids: Vec<u32>| async move {
            Ok::<_, String>(ids.into_iter().map(|i| (i, i + 1)))
        })
        .await
        .unwrap();
    assert_eq!(got, vec![Some(2), Some(3)]);
    assert_eq!(store.calls(), before);
}
