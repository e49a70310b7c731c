//! The blocking API: without any async runtime, inside `spawn_blocking` and on the
//! workers of a multi-thread runtime, and refused on a current-thread runtime.

use cache::{blocking, ErrorKind, MemoryBackend};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn cache() -> blocking::Cache {
    blocking::Cache::new(MemoryBackend::builder().build().unwrap()).unwrap()
}

#[test]
fn blocking_calls_work_without_a_runtime() {
    let c = cache();
    c.set("k", &vec![1u8, 2], Duration::from_secs(60)).unwrap();
    assert_eq!(c.get::<Vec<u8>>("k").unwrap(), Some(vec![1, 2]));
    assert!(c.has("k").unwrap());
    assert!(c.set_if_absent("n", &1u8, 60u64).unwrap());
    assert!(!c.set_if_absent("n", &2u8, 60u64).unwrap());
    c.set_many(&[("a", 1u32), ("b", 2u32)], None::<Duration>)
        .unwrap();
    assert_eq!(
        c.get_many::<u32>(&["a", "x", "b"]).unwrap(),
        vec![Some(1), None, Some(2)]
    );
    assert_eq!(c.delete_many(&["a", "b", "x"]).unwrap(), 2);
    assert!(c.delete("k").unwrap());
    c.clear().unwrap();
    assert_eq!(c.get::<u8>("n").unwrap(), None);
}

#[test]
fn blocking_get_or_compute_computes_once_across_threads() {
    let c = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (c, calls) = (c.clone(), calls.clone());
            std::thread::spawn(move || {
                c.cached("slow")
                    .expiry(Duration::from_secs(60))
                    .get_or_compute(|| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok::<_, std::io::Error>("value".to_string())
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn blocking_on_a_current_thread_runtime_is_a_clear_error_not_a_deadlock() {
    let c = std::thread::spawn(cache).join().unwrap();
    let err = c.get::<u8>("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("current-thread"), "{err}");
    assert!(err.to_string().contains("async"), "{err}");
    // spawn_blocking threads of a current-thread runtime cannot be told from its
    // worker: refused too (the documented limit).
    let c2 = c.clone();
    let err = tokio::task::spawn_blocking(move || c2.get::<u8>("k"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = c
        .get_or_compute("k", || Ok::<_, std::io::Error>(1u8))
        .unwrap_err();
    assert!(matches!(err, cache::ComputeError::Cache(ref e) if e.kind() == ErrorKind::Unsupported));
    let err = blocking::Cache::new(MemoryBackend::builder().build().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    drop(c); // dropping inside a runtime must not panic
}

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn blocking_works_inside_spawn_blocking() {
    let rt = multi_thread(2);
    let c = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (c, calls) = (c.clone(), calls.clone());
                tokio::task::spawn_blocking(move || {
                    c.cached("sync-endpoint")
                        .expiry(Duration::from_secs(60))
                        .get_or_compute(|| {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok::<_, std::io::Error>(11u32)
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 11);
        }
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute for four sync handlers"
    );
}

#[test]
fn from_async_shares_the_async_cache_and_its_runtime() {
    let rt = multi_thread(2);
    rt.block_on(async {
        let cache = cache::Cache::new(MemoryBackend::builder().build().unwrap());
        cache.set("k", &5u8, Duration::from_secs(60)).await.unwrap();
        let sync_cache = blocking::Cache::from_async(cache.clone()).unwrap();
        let got = tokio::task::spawn_blocking(move || {
            let v = sync_cache.get::<u8>("k").unwrap();
            sync_cache.set("from-sync", &6u8, 60u64).unwrap();
            v
        })
        .await
        .unwrap();
        assert_eq!(got, Some(5));
        assert_eq!(cache.get::<u8>("from-sync").await.unwrap(), Some(6));
        assert_eq!(
            cache.stats().hits,
            2,
            "one set of counters for both handles"
        );
    });
    let err =
        blocking::Cache::from_async(cache::Cache::new(MemoryBackend::builder().build().unwrap()))
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn blocking_on_a_multi_thread_worker_does_not_stall_its_other_tasks() {
    // One worker: had the call blocked it, the ticker could not run meanwhile.
    let rt = multi_thread(1);
    rt.block_on(async {
        let sync_cache = blocking::Cache::from_async(cache::Cache::new(
            MemoryBackend::builder().build().unwrap(),
        ))
        .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        tokio::task::yield_now().await;
        let during = tokio::spawn(async move {
            let before = ticks.load(Ordering::SeqCst);
            let v: u8 = sync_cache
                .get_or_compute("slow", || {
                    std::thread::sleep(Duration::from_millis(200));
                    Ok::<_, std::io::Error>(1)
                })
                .unwrap();
            (v, ticks.load(Ordering::SeqCst) - before)
        })
        .await
        .unwrap();
        ticker.abort();
        assert_eq!(during.0, 1);
        assert!(
            during.1 >= 10,
            "the runtime's other task ran {} times in 200 ms",
            during.1
        );
    });
}
