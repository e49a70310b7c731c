//! Core rules of "trust the values" as they meet a real Redis: a lock TTL of
//! `Duration::MAX` is clamped like every other TTL, and a Redis that answers `BUSY`
//! (as it does while a script runs, and `LOADING` while it loads its data) is
//! transient: lazy start keeps trying, and calls fail open meanwhile.

use crate::common;
use cache_core::BackendBuilder;
use cache_core::{Cache, ErrorKind};
use cache_redis::RedisBackend;
use conformance_tests::servers::OwnProcess;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_of_duration_max_still_caches() {
    let backend = common::backend(
        &common::Target::Single,
        &conformance_tests::random_namespace(),
    )
    .await;
    let cache = Cache::builder(backend).lock_ttl(Duration::MAX).build();
    let computes = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let c = computes.clone();
        let v: u32 = cache
            .get_or_compute("k", || async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(5)
            })
            .await
            .unwrap();
        assert_eq!(v, 5);
    }
    assert_eq!(computes.load(Ordering::SeqCst), 1, "the value was cached");
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(5));
}

/// Keep Redis busy in a script for `for_ms` (it answers `BUSY` to others meanwhile).
fn busy_script(port: u16, for_ms: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut conn = client.get_connection().unwrap();
        let script = format!(
            "local t = redis.call('TIME') local start = t[1] * 1000 + t[2] / 1000 \
             while true do local n = redis.call('TIME') \
             if n[1] * 1000 + n[2] / 1000 - start > {for_ms} then break end end return 1"
        );
        let _: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query(&mut conn)
            .unwrap();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_redis_is_transient_and_lazy_start_waits_it_out() {
    let port = OwnProcess::free_port();
    let _server = OwnProcess::redis(port, &["--busy-reply-threshold", "10"]);
    let script = busy_script(port, 1500);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // An eager client meets BUSY: a transient error, not a configuration one.
    let eager = RedisBackend::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .timeout(Duration::from_millis(500))
        .build()
        .await;
    if let Err(e) = &eager {
        assert!(e.is_transient(), "{e}");
    }
    if let Ok(b) = eager {
        let err = Cache::new(b).get::<u32>("k").await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
    // Lazy start keeps trying through BUSY, and connects once the script ends.
    let lazy = RedisBackend::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .timeout(Duration::from_millis(500))
        .build_lazy()
        .unwrap();
    let cache = Cache::new(lazy);
    script.join().unwrap();
    let t = Instant::now();
    loop {
        match cache.set("k", &1u32, Duration::from_secs(60)).await {
            Ok(()) => break,
            Err(e) => {
                assert_ne!(e.kind(), ErrorKind::Config, "lazy start gave up: {e}");
                assert!(t.elapsed() < Duration::from_secs(5), "never connected: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
}

/// On a cluster, a namespace with a `{` but no whole hash tag puts a value and its
/// lock in different slots: writes are still fenced (in two steps), and a namespace
/// with a whole tag keeps them in one slot (one script).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_writes_hold_on_a_cluster_whatever_the_namespace() {
    use cache_core::{Bytes, CacheBackend, Expiry};
    let base = conformance_tests::random_namespace();
    for ns in [
        format!("{base}{{"),
        format!("{base}{{}}"),
        format!("{{{base}}}"),
    ] {
        let holder = common::backend(&common::Target::Cluster, &ns).await;
        let app = common::backend(&common::Target::Cluster, &ns).await;
        let e = Expiry::After(Duration::from_secs(60));
        let v = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        for (i, delete) in [(0, false), (1, true)] {
            let key = format!("k{i}");
            let token = holder
                .acquire_lock(&key, Duration::from_secs(30))
                .await
                .unwrap()
                .expect("free");
            if delete {
                app.delete(&key).await.unwrap();
            } else {
                app.set(&key, v("app"), e).await.unwrap();
            }
            assert!(
                !holder.set_locked(&key, v("late"), e, &token).await.unwrap(),
                "{ns}: overtaken"
            );
            let want = (!delete).then(|| v("app"));
            assert_eq!(app.get(&key).await.unwrap(), want, "{ns}");
            let again = app
                .acquire_lock(&key, Duration::from_secs(30))
                .await
                .unwrap();
            let again = again.expect("the holder's write released the lock");
            assert!(app.set_locked(&key, v("new"), e, &again).await.unwrap());
            assert_eq!(holder.get(&key).await.unwrap(), Some(v("new")), "{ns}");
        }
        holder.clear().await.unwrap();
    }
}
