//! Get-or-compute: hits, single flight, locks, errors, fail-open.

use super::*;

/// A hit does not recompute.
pub async fn compute_hit_does_not_recompute<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    for _ in 0..3 {
        let calls = calls.clone();
        let v: String = cache
            .get_or_compute("k", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>("computed".to_string())
            })
            .await
            .unwrap();
        assert_eq!(v, "computed");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("computed")
    );
}

/// 100 concurrent misses compute once, and all get the value.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_concurrent_misses_compute_once<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            spawn_counted(
                &cache,
                "hot",
                &calls,
                Duration::from_millis(100),
                vec![1u32, 2, 3],
            )
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute for 100 callers"
    );
}

/// A compute error reaches every waiter, and nothing is cached.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_error_reaches_waiters_and_is_not_cached<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("k", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<u32, _>(std::io::Error::other("db down"))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(
            err.compute_error().map(|e| e.to_string()).as_deref(),
            Some("db down")
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "waiters share the leader's error"
    );
    assert!(!cache.has("k").await.unwrap(), "an error is never cached");
    let v = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(5u32) })
        .await
        .unwrap();
    assert_eq!(v, 5, "the next call computes again");
}

/// `skip` neither reads nor writes.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_skip_bypasses_cache<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let run = |skip: bool, value: u32| {
        let (cache, calls) = (cache.clone(), calls.clone());
        async move {
            cache
                .cached("k")
                .skip(skip)
                .get_or_compute(|| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(value)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(run(true, 1).await, 1);
    assert!(!cache.has("k").await.unwrap(), "skip wrote nothing");
    assert_eq!(run(false, 2).await, 2);
    assert_eq!(run(true, 3).await, 3, "skip ignores the cached value");
    assert_eq!(
        cache.get::<u32>("k").await.unwrap(),
        Some(2),
        "skip left the cached value alone"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// `refresh` recomputes and overwrites.
pub async fn compute_refresh_overwrites<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let v1: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let v2: u32 = cache
        .cached("k")
        .refresh(true)
        .get_or_compute(|| async { Ok::<_, std::io::Error>(2) })
        .await
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
    let v3: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(3) })
        .await
        .unwrap();
    assert_eq!(v3, 2, "the refreshed value is now cached");
}

/// The expiry given to get-or-compute applies: after it, the value is computed again.
pub async fn compute_expiry_is_honoured<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    let (ttl, grace) = short_ttl(h, backend.as_ref());
    let cache = cache_of(backend);
    let calls = counter();
    let run = || {
        let (cache, calls) = (cache.clone(), calls.clone());
        async move {
            cache
                .cached("k")
                .expiry(ttl)
                .get_or_compute(|| async move {
                    Ok::<_, std::io::Error>(calls.fetch_add(1, Ordering::SeqCst) as u32)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(run().await, 0);
    assert_eq!(run().await, 0, "a hit before the expiry");
    let recomputed = eventually(ttl + grace, || async { run().await == 1 }).await;
    assert!(recomputed, "the value was not recomputed after its expiry");
}

/// A cached `None` is a hit, not a miss.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_cached_none_is_a_hit<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    for _ in 0..2 {
        let calls = calls.clone();
        let v: Option<u32> = cache
            .get_or_compute("nothing", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(None)
            })
            .await
            .unwrap();
        assert_eq!(v, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A value that no longer decodes counts as a miss and is overwritten; plain `get`
/// reports it as a `Serialization` error.
pub async fn compute_undecodable_is_a_miss<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    backend
        .set(
            "k",
            Bytes::from_static(b"\xc1\xc1 not msgpack"),
            Expiry::Never,
        )
        .await
        .unwrap();
    let cache = cache_of(backend);
    let err = cache.get::<u32>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    let v: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(9) })
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(9));
}

/// Spawn a get-or-compute leader of `key` whose compute signals that it started, then
/// sleeps `hold` and panics if `panics`; returns once the compute runs.
async fn spawn_leader(
    cache: &Cache,
    hold: Duration,
    panics: bool,
) -> tokio::task::JoinHandle<Result<u32, ComputeError<std::io::Error>>> {
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    started.notify_one();
                    tokio::time::sleep(hold).await;
                    if panics {
                        panic!("compute panicked (expected by the test)");
                    }
                    Ok::<_, std::io::Error>(1u32)
                })
                .await
        })
    };
    started.notified().await;
    leader
}

/// Wait for a follower that must get its own value (2) after its leader went away.
async fn follower_takes_over(follower: tokio::task::JoinHandle<u32>, why: &str) {
    let v = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .unwrap_or_else(|_| panic!("the waiter hung after its leader {why}"))
        .unwrap();
    assert_eq!(v, 2);
}

/// When the leader's future is dropped mid-compute, a waiter takes over.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_leader_dropped_waiters_take_over<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let leader = spawn_leader(&cache, Duration::from_secs(60), false).await;
    let follower = spawn_counted(&cache, "k", &counter(), Duration::ZERO, 2u32);
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    follower_takes_over(follower, "was dropped").await;
}

/// When the compute panics, it runs once: its waiters get the panic as an error
/// (they neither hang nor run the compute again), its caller the panic itself.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_panic_reaches_waiters_once<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let leader = spawn_leader(&cache, Duration::from_millis(100), true).await;
    let calls = counter();
    let follower = {
        let (cache, calls) = (cache.clone(), calls.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(2u32)
                })
                .await
        })
    };
    assert!(leader.await.unwrap_err().is_panic());
    let got = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the waiter hung after its leader panicked")
        .expect("the waiter itself does not panic");
    assert!(matches!(got, Err(ComputeError::Panicked(_))), "{got:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the compute ran once");
}

/// Two caches (two processes' worth of handles) on one namespace compute once:
/// the backend's lock spans them.
pub async fn compute_lock_spans_caches<H: Harness>(h: &H) {
    let ns = random_namespace();
    let caches = [cache_of(open(h, &ns).await), cache_of(open(h, &ns).await)];
    let calls = counter();
    let mut tasks = vec![];
    for cache in &caches {
        for _ in 0..20 {
            tasks.push(spawn_counted(
                cache,
                "hot",
                &calls,
                Duration::from_millis(200),
                42u32,
            ));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute across both caches"
    );
}

/// A failing backend does not fail get-or-compute: it computes and returns (once:
/// while the store cannot be read, the process keeps what it computed for the
/// value's freshness, at most a minute), and caching resumes when the backend
/// recovers. Plain calls return the error.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_fails_open_on_errors<H: Harness>(h: &H) {
    let faulty = Arc::new(FaultyBackend::new(fresh(h).await));
    let cache = cache_of(faulty.clone());
    let calls = counter();
    let compute = |v: u32| {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(v)
        }
    };
    faulty.set_failing(true);
    assert_eq!(cache.get_or_compute("k", compute(1)).await.unwrap(), 1);
    assert_eq!(cache.get_or_compute("k", compute(2)).await.unwrap(), 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute while the store is down"
    );
    let err = cache.get::<u32>("k").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    faulty.set_failing(false);
    assert_eq!(cache.get_or_compute("k", compute(3)).await.unwrap(), 3);
    assert_eq!(
        cache.get_or_compute("k", compute(4)).await.unwrap(),
        3,
        "cached again after recovery"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A single failed write is skipped over as well.
    faulty.fail_next(1);
    let v: u32 = cache.get_or_compute("other", compute(5)).await.unwrap();
    assert_eq!(v, 5);
}

/// A backend slower than the per-call timeout does not hold get-or-compute up.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_fails_open_on_slow_backend<H: Harness>(h: &H) {
    let faulty = Arc::new(FaultyBackend::new(fresh(h).await));
    let cache = cache_core::CacheBuilder::from_arc(faulty.clone())
        .store_timeout(Duration::from_millis(100))
        .build();
    faulty.set_delay(Duration::from_secs(30));
    let v = tokio::time::timeout(
        Duration::from_secs(5),
        cache.get_or_compute("k", || async { Ok::<_, std::io::Error>(7u32) }),
    )
    .await
    .expect("get-or-compute waited on a slow backend instead of failing open")
    .unwrap();
    assert_eq!(v, 7);
}

/// Two callers asking one key for two different types at once never share a result:
/// each gets a value of its own type.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn compute_same_key_two_types<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let (n_calls, s_calls) = (counter(), counter());
    let number = spawn_counted(&cache, "k", &n_calls, Duration::from_millis(100), 7u32);
    let text = spawn_counted(
        &cache,
        "k",
        &s_calls,
        Duration::from_millis(100),
        "seven".to_string(),
    );
    assert_eq!(number.await.unwrap(), 7);
    assert_eq!(text.await.unwrap(), "seven");
    assert_eq!(n_calls.load(Ordering::SeqCst), 1);
}
