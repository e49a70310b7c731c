//! Lazy start on a real Redis: the application starts while Redis is down, computes
//! without it, and caches once Redis is up; wrong credentials become a `Config` error
//! on the calls.

use cache_core::BackendBuilder;
use cache_core::{Cache, ErrorKind};
use cache_redis::RedisBackend;
use conformance_tests::servers::OwnProcess;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down_and_caches_once_it_is_up() {
    let port = OwnProcess::free_port();
    let started = Instant::now();
    let backend = RedisBackend::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .namespace("lazy")
        .timeout(Duration::from_millis(300))
        .build_lazy()
        .expect("lazy build returns at once");
    assert!(started.elapsed() < Duration::from_millis(100));
    let cache = Cache::new(backend);
    let computes = Arc::new(AtomicUsize::new(0));
    let call = |key: String, v: u64| {
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            cache
                .get_or_compute(key, || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(v)
                })
                .await
                .expect("get-or-compute never fails because of the cache")
        }
    };
    for i in 0..10 {
        let t = Instant::now();
        assert_eq!(
            call(format!("down-{i}"), i).await,
            i,
            "computed while Redis is down"
        );
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "took {:?}",
            t.elapsed()
        );
    }
    // Asked again while Redis is down: what this process computed, once.
    assert_eq!(call("down-3".into(), 99).await, 3);
    assert_eq!(computes.load(Ordering::SeqCst), 10);
    let err = cache.get::<u64>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("still connecting"), "{err}");

    let _server = OwnProcess::redis(port, &[]);
    let up_at = Instant::now();
    let mut n = 100;
    let cached_after = loop {
        assert!(
            up_at.elapsed() < Duration::from_secs(5),
            "never started caching"
        );
        let key = format!("after-{n}");
        call(key.clone(), n).await;
        // Cached: the store itself has the value.
        if cache.get::<u64>(&key).await.ok().flatten() == Some(n) {
            break up_at.elapsed();
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("lazy start: caching began {cached_after:?} after Redis came up");
    assert!(cached_after < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_config_error_on_the_calls() {
    let port = OwnProcess::free_port();
    let _server = OwnProcess::redis(port, &["--requirepass", "right-secret"]);
    let backend = RedisBackend::builder()
        .url(format!("redis://:wrong-secret@127.0.0.1:{port}"))
        .build_lazy()
        .unwrap();
    let cache = Cache::new(backend);
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        let err = cache.get::<u64>("k").await.unwrap_err();
        if err.kind() == ErrorKind::Config || Instant::now() > deadline {
            break err;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
}
